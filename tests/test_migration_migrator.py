"""The Migrator: conflict policies, errors, cross-backend copies, parallel and async runs."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dataknobs_data import (
    AsyncDatabase,
    ConflictPolicy,
    DuplicateRecordError,
    Query,
    Record,
    StreamConfig,
    SyncDatabase,
)
from dataknobs_data.factory import async_database_factory, database_factory
from dataknobs_data.migration import (
    AddField,
    Migration,
    MigrationProgress,
    Migrator,
    RenameField,
    Transformer,
    TransformField,
    partition_of,
)

BACKENDS: dict[str, Callable[[Path], tuple[str, dict[str, Any]]]] = {
    "memory": lambda tmp: ("memory", {}),
    "jsonl": lambda tmp: ("file", {"path": str(tmp / "db.jsonl")}),
    "csv": lambda tmp: ("file", {"path": str(tmp / "db.csv")}),
    "parquet": lambda tmp: ("file", {"path": str(tmp / "db.parquet")}),
    "sqlite": lambda tmp: ("sqlite", {"path": str(tmp / "db.sqlite")}),
    "postgres": lambda tmp: ("postgres", postgres_config(tmp)),
}


def postgres_config(folder: Path) -> dict[str, Any]:
    """The test server, with a table named after ``folder`` (so a reopen finds it again)."""
    from .services.postgres import service

    table = "m_" + hashlib.blake2b(str(folder).encode(), digest_size=8).hexdigest()
    return {**service().config(), "table": table}


EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def make_records(n: int, prefix: str = "r") -> list[Record]:
    return [
        Record(
            {
                "name": f"  person {i} ",
                "age": 18 + i % 60,
                "score": i / 8,
                "active": i % 3 == 0,
                "tags": ["a", "b"][: i % 3],
                "address": {"city": ["Paris", "Oslo"][i % 2], "zip": f"{i:05d}"},
                "joined": EPOCH + dt.timedelta(hours=i),
                "tmp": i,
            },
            id=f"{prefix}{i:05d}",
        )
        for i in range(n)
    ]


def open_sync(kind: str, folder: Path) -> SyncDatabase:
    folder.mkdir(parents=True, exist_ok=True)
    name, config = BACKENDS[kind](folder)
    db = database_factory.create(backend=name, **config)
    db.connect()
    return db


@pytest.fixture
def memory_pair() -> Iterator[tuple[SyncDatabase, SyncDatabase]]:
    src = SyncDatabase.from_backend("memory")
    dst = SyncDatabase.from_backend("memory")
    src.create_batch(make_records(50))
    yield src, dst
    src.close()
    dst.close()


def sample_migration() -> Migration:
    return (
        Migration("1", "2", "tidy")
        .add(RenameField("name", "full_name"))
        .add(TransformField("full_name", str.strip, lambda v: f"  {v} "))
        .add(AddField("migrated", True))
    )


def sample_transformer() -> Transformer:
    return (
        Transformer()
        .map("name", transform=str.upper)
        .rename("age", "years")
        .exclude("tmp")
        .add("source", "copy")
    )


def assert_same(target: SyncDatabase, expected: list[Record]) -> None:
    stored = {r.id: r for r in target.all()}
    assert len(stored) == target.count() == len(expected)
    assert set(stored) == {r.id for r in expected}
    for want in expected:
        got = stored[want.id]
        assert got.data == want.data, want.id
        assert got.metadata == want.metadata, want.id


@pytest.mark.parametrize("src_kind", sorted(BACKENDS))
@pytest.mark.parametrize("dst_kind", sorted(BACKENDS))
def test_cross_backend_migration(tmp_path: Path, src_kind: str, dst_kind: str) -> None:
    records = make_records(230)
    src = open_sync(src_kind, tmp_path / "src")
    src.create_batch(records)
    dst = open_sync(dst_kind, tmp_path / "dst")
    migration = sample_migration()
    seen: list[int] = []
    progress = Migrator().migrate(
        src, dst, migration, batch_size=64, on_progress=lambda p: seen.append(p.processed)
    )
    assert (progress.total, progress.succeeded, progress.failed) == (230, 230, 0)
    assert seen[-1] == 230 and len(seen) >= 4
    expected = [migration.apply(r) for r in records]
    assert expected[0].metadata == {"version": "2"}
    assert_same(dst, expected)
    assert Migrator().validate_migration(src, dst, transform=migration) == (True, [])
    src.close()
    dst.close()
    if dst_kind != "memory":
        # What was written is what a fresh reader finds.
        reopened = open_sync(dst_kind, tmp_path / "dst")
        assert_same(reopened, expected)
        reopened.close()


@pytest.mark.parametrize(
    "transform",
    [
        sample_transformer(),
        sample_migration(),
        RenameField("name", "n"),
        lambda r: r.project(["age"]),
    ],
    ids=["transformer", "migration", "operation", "function"],
)
def test_transform_kinds(memory_pair: tuple[SyncDatabase, SyncDatabase], transform: Any) -> None:
    src, dst = memory_pair
    Migrator().migrate(src, dst, transform)
    fn = transform.transform if isinstance(transform, Transformer) else transform
    assert_same(dst, [fn(r) for r in src.all()])


def test_migrate_with_query_and_filtering_transform(
    memory_pair: tuple[SyncDatabase, SyncDatabase],
) -> None:
    src, dst = memory_pair
    drop_young = Transformer().add_rule(lambda r: r if r["age"] >= 40 else None)
    query = Query().filter("active", "=", True)
    progress = Migrator().migrate(src, dst, drop_young, query=query, batch_size=7)
    matching = [r for r in src.all() if r["active"]]
    kept = [r for r in matching if r["age"] >= 40]
    assert progress.total == len(matching)
    assert progress.succeeded == len(kept) and progress.skipped == len(matching) - len(kept)
    assert progress.processed == len(matching)
    assert_same(dst, kept)
    assert Migrator().validate_migration(src, dst, query=query, transform=drop_young)[0]


def test_conflict_insert_raises_without_handler(
    memory_pair: tuple[SyncDatabase, SyncDatabase],
) -> None:
    src, dst = memory_pair
    dst.create(Record({"old": True}, id="r00030"))
    with pytest.raises(DuplicateRecordError):
        Migrator().migrate(src, dst, batch_size=20)
    # The batch before the collision is in; the one holding it stops at the collision.
    assert dst.count() == 20 + 10 + 1


def test_conflict_insert_with_on_error_continues(
    memory_pair: tuple[SyncDatabase, SyncDatabase],
) -> None:
    src, dst = memory_pair
    dst.create_batch([Record({"old": True}, id="r00010"), Record({"old": True}, id="r00033")])
    seen: list[str | None] = []

    def keep_going(exc: Exception, record: Record) -> bool:
        assert isinstance(exc, DuplicateRecordError)
        seen.append(record.id)
        return True

    progress = Migrator().migrate(src, dst, batch_size=20, on_error=keep_going)
    assert seen == ["r00010", "r00033"]
    assert (progress.succeeded, progress.failed, progress.processed) == (48, 2, 50)
    assert {e["record_id"] for e in progress.errors} == {"r00010", "r00033"}
    assert dst.read("r00010").data == {"old": True}  # type: ignore[union-attr]
    assert dst.count() == 50


def test_conflict_on_error_false_stops(memory_pair: tuple[SyncDatabase, SyncDatabase]) -> None:
    src, dst = memory_pair
    dst.create(Record({"old": True}, id="r00005"))
    with pytest.raises(DuplicateRecordError):
        Migrator().migrate(src, dst, batch_size=10, on_error=lambda e, r: False)


@pytest.mark.parametrize("policy", [ConflictPolicy.UPSERT, "upsert"])
def test_conflict_upsert(memory_pair: tuple[SyncDatabase, SyncDatabase], policy: Any) -> None:
    src, dst = memory_pair
    dst.create(Record({"old": True}, id="r00010"))
    progress = Migrator().migrate(src, dst, on_conflict=policy)
    assert (progress.succeeded, progress.failed) == (50, 0)
    assert_same(dst, src.all())


def test_conflict_skip(memory_pair: tuple[SyncDatabase, SyncDatabase]) -> None:
    src, dst = memory_pair
    dst.create_batch([Record({"old": True}, id="r00010"), Record({"old": 1}, id="r00011")])
    progress = Migrator().migrate(src, dst, on_conflict=ConflictPolicy.SKIP, batch_size=8)
    assert (progress.succeeded, progress.skipped, progress.failed) == (48, 2, 0)
    assert dst.read("r00010").data == {"old": True}  # type: ignore[union-attr]
    assert dst.count() == 50


def test_transform_errors_and_on_error(memory_pair: tuple[SyncDatabase, SyncDatabase]) -> None:
    src, dst = memory_pair

    def picky(record: Record) -> Record:
        if record["age"] == 20:
            raise ValueError("no twenties")
        return record

    with pytest.raises(ValueError, match="no twenties"):
        Migrator().migrate(src, dst, picky)
    dst.clear()
    progress = Migrator().migrate(src, dst, picky, on_error=lambda e, r: True)
    assert progress.failed == 1 and progress.succeeded == 49
    assert progress.errors[0]["exception_type"] == "ValueError"
    assert dst.count() == 49


def test_migrate_stream_config(memory_pair: tuple[SyncDatabase, SyncDatabase]) -> None:
    src, dst = memory_pair
    cfg = StreamConfig(batch_size=9, on_conflict=ConflictPolicy.UPSERT)
    progress = Migrator().migrate_stream(src, dst, sample_transformer(), None, cfg)
    assert progress.succeeded == 50
    assert_same(dst, sample_transformer().transform_many(src.all()))


def test_ids_kept_when_transform_drops_them(
    memory_pair: tuple[SyncDatabase, SyncDatabase],
) -> None:
    src, dst = memory_pair
    Migrator().migrate(src, dst, lambda r: Record({"age": r["age"]}))
    assert {r.id for r in dst.all()} == {r.id for r in src.all()}


def test_validate_migration_reports_problems(
    memory_pair: tuple[SyncDatabase, SyncDatabase],
) -> None:
    src, dst = memory_pair
    Migrator().migrate(src, dst)
    assert Migrator().validate_migration(src, dst, sample_size=5) == (True, [])
    dst.delete("r00003")
    dst.update("r00001", Record({"age": -1}, id="r00001"))
    ok, issues = Migrator().validate_migration(src, dst)
    assert not ok
    assert issues[0] == "Record count mismatch: source=50, target=49"
    assert any("r00003 not found" in i for i in issues)
    assert any("r00001 differs" in i for i in issues)
    ok, issues = Migrator().validate_migration(src, dst, sample_size=1)
    assert issues == ["Record count mismatch: source=50, target=49"]


def test_wrong_database_kinds() -> None:
    adb = async_database_factory.create(backend="memory")
    sdb = database_factory.create(backend="memory")
    with pytest.raises(TypeError, match="migrate_async"):
        Migrator().migrate(adb, sdb)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="partitions"):
        Migrator().migrate_parallel(sdb, sdb, partitions=0)


def test_partition_hash_is_stable() -> None:
    # Fixed values: a resumed job in another process must route ids the same way.
    assert [partition_of(f"id-{i}", 4) for i in range(8)] == [
        partition_of(f"id-{i}", 4) for i in range(8)
    ]
    assert {partition_of(f"k{i}", 4) for i in range(100)} == {0, 1, 2, 3}
    assert partition_of("abc", 1) == 0


@pytest.mark.parametrize("dst_kind", ["memory", "sqlite", "parquet", "postgres"])
def test_migrate_parallel_exactly_once(tmp_path: Path, dst_kind: str) -> None:
    n = 5_000
    src = open_sync("memory", tmp_path / "src")
    src.create_batch(make_records(n))
    dst = open_sync(dst_kind, tmp_path / "dst")
    calls: list[MigrationProgress] = []
    progress = Migrator().migrate_parallel(
        src, dst, sample_transformer(), partitions=4, on_progress=calls.append, batch_size=300
    )
    assert (progress.total, progress.processed, progress.succeeded) == (n, n, n)
    assert progress.failed == 0 and calls
    ids = [r.id for r in dst.all()]
    assert len(ids) == len(set(ids)) == dst.count() == n
    assert set(ids) == {r.id for r in src.all()}
    assert Migrator().validate_migration(src, dst, transform=sample_transformer()) == (True, [])


def test_migrate_parallel_partition_field_and_errors(
    memory_pair: tuple[SyncDatabase, SyncDatabase],
) -> None:
    src, dst = memory_pair
    progress = Migrator().migrate_parallel(src, dst, partitions=3, partition_field="age")
    assert progress.succeeded == 50 and dst.count() == 50
    with pytest.raises(DuplicateRecordError):
        Migrator().migrate_parallel(src, dst, partitions=3, batch_size=5)
    progress = Migrator().migrate_parallel(src, dst, partitions=3, on_conflict="skip")
    assert progress.skipped == 50


async def test_migrate_async_across_backends(tmp_path: Path) -> None:
    src: AsyncDatabase = await AsyncDatabase.from_backend("memory")
    dst: AsyncDatabase = await AsyncDatabase.from_backend(
        "sqlite", {"path": str(tmp_path / "a.db")}
    )
    records = make_records(700)
    await src.create_batch(records)
    migration = sample_migration()
    progress = await Migrator().migrate_async(
        src, dst, migration, config=StreamConfig(batch_size=128)
    )
    assert (progress.total, progress.succeeded) == (700, 700)
    stored = {r.id: r for r in await dst.all()}
    for record in records:
        want = migration.apply(record)
        assert stored[want.id].data == want.data
        assert stored[want.id].metadata == want.metadata
    assert await Migrator().validate_migration_async(src, dst, transform=migration) == (True, [])

    # Parallel, async: one task per partition over its own filtered stream.
    other: AsyncDatabase = await AsyncDatabase.from_backend(
        "file", {"path": str(tmp_path / "b.jsonl")}
    )
    progress = await Migrator().migrate_parallel(src, other, migration, partitions=4)
    assert progress.succeeded == 700
    ids = [r.id for r in await other.all()]
    assert len(ids) == len(set(ids)) == 700
    again = await Migrator().migrate_parallel_async(
        src, other, partitions=2, on_conflict=ConflictPolicy.SKIP
    )
    assert again.skipped == 700
    for db in (src, dst, other):
        await db.close()


async def test_migrate_async_errors() -> None:
    src: AsyncDatabase = await AsyncDatabase.from_backend("memory")
    dst: AsyncDatabase = await AsyncDatabase.from_backend("memory")
    await src.create_batch(make_records(30))
    await dst.create(Record({"x": 1}, id="r00004"))
    with pytest.raises(DuplicateRecordError):
        await Migrator().migrate_async(src, dst)
    with pytest.raises(DuplicateRecordError):
        await Migrator().migrate_parallel(src, dst, partitions=3, batch_size=2)
    progress = await Migrator().migrate_async(src, dst, on_conflict="upsert", batch_size=7)
    assert progress.succeeded == 30 and await dst.count() == 30


def test_limited_query_totals_and_validation(
    memory_pair: tuple[SyncDatabase, SyncDatabase],
) -> None:
    src, dst = memory_pair
    query = Query().filter("age", ">=", 20).offset(5).limit(10)
    progress = Migrator().migrate(src, dst, query=query, batch_size=4)
    assert progress.total == 10 and progress.succeeded == 10 and progress.percent == 100.0
    assert Migrator().validate_migration(src, dst, query=query) == (True, [])


def test_migration_progress_accountant_and_batch_failure() -> None:
    from dataknobs_data.migration.migrator import MigrationProgressAccountant
    from dataknobs_data.streaming import drive_batch_with_fallback

    progress = MigrationProgress()
    progress.record_batch_failure(3, "bulk lost 3", ValueError("x"))
    progress.record_batch_failure(0, "nothing")
    assert (progress.processed, progress.failed, len(progress.errors)) == (3, 3, 1)
    assert progress.errors[0]["count"] == 3 and progress.errors[0]["exception_type"] == "ValueError"

    written: list[str] = []

    def single(record: Record) -> None:
        if record.get("bad"):
            raise ValueError("no")
        written.append(str(record.id))

    batch = [Record({}, id="a"), Record({"bad": True}, id="b"), Record({}, id="c")]
    # Fail-fast without a handler: the failure re-raises and "c" is not written.
    strict = MigrationProgress()
    with pytest.raises(ValueError):
        drive_batch_with_fallback(batch, None, single, MigrationProgressAccountant(strict))
    assert written == ["a"] and (strict.succeeded, strict.failed) == (1, 1)
    # With a handler that says go on, every other record is written.
    lenient = MigrationProgress()
    accountant = MigrationProgressAccountant(lenient, on_error=lambda exc, rec: True)
    assert drive_batch_with_fallback(batch, None, single, accountant)
    assert (lenient.succeeded, lenient.failed) == (2, 1)
