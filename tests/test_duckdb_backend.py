"""The DuckDB backend beyond the conformance suite: files, ``:memory:``, config, its table."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

duckdb = pytest.importorskip("duckdb")

from dataknobs_data import AsyncDatabase, Query, Record, SyncDatabase  # noqa: E402
from dataknobs_data.backends.duckdb import (  # noqa: E402
    AsyncDuckDBDatabase,
    SyncDuckDBDatabase,
    narrow,
)
from dataknobs_data.exceptions import (  # noqa: E402
    ConfigurationError,
    DatabaseError,
    DatabaseOperationError,
    DuplicateRecordError,
)
from dataknobs_data.factory import database_factory  # noqa: E402
from dataknobs_data.streaming import StreamConfig  # noqa: E402
from dataknobs_data.urls import parse_url  # noqa: E402

VALUES = {
    "when": datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
    "naive": datetime(2024, 5, 1, 10, 0, 0, 123456),
    "day": date(2024, 5, 1),
    "blob": b"\x00\xffbytes",
    "price": Decimal("1.10"),
    "nested": {"$date": "not a tag: a user key"},
    "nan": float("inf"),
    "tags": ["a", 1, None, {"k": [1.5]}],
}


def _db(tmp_path: Path, **config: object) -> SyncDatabase:
    db = database_factory.create(backend="duckdb", path=str(tmp_path / "db.duckdb"), **config)
    db.connect()
    return db


def test_a_file_persists_and_reopens_with_every_value_type(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.create(Record(VALUES, id="a"))
    db.create(Record({"n": 2}, id="b"))
    db.close()

    again = _db(tmp_path)
    got = again.read("a")
    assert got is not None
    assert {k: got.get_value(k) for k in VALUES} == VALUES
    assert [r.id for r in again.all()] == ["a", "b"]
    again.close()
    # The file is an ordinary DuckDB database with the 0.11.0 table layout.
    conn = duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True)
    columns = [r[0] for r in conn.execute("DESCRIBE records").fetchall()]
    conn.close()
    assert columns == ["id", "data", "metadata", "created_at", "updated_at"]


def test_memory_databases_are_separate_and_gone_on_close() -> None:
    one = SyncDatabase.from_backend("duckdb", {"path": ":memory:"})
    two = SyncDatabase.from_backend("duckdb", {})
    one.create(Record({"x": 1}, id="only-in-one"))
    assert two.read("only-in-one") is None
    assert one.count() == 1
    one.close()
    with pytest.raises(DatabaseError):
        one.count()
    two.close()


def test_config_keys_of_0_11_0(tmp_path: Path) -> None:
    path = str(tmp_path / "k.duckdb")
    db = SyncDuckDBDatabase({"path": path, "table": "people", "timeout": 1.5})
    db.connect()
    db.create(Record({"name": "Ada"}, id="p1"))
    assert db.db_path == path and db.table_name == "people"
    db.close()

    ro = SyncDuckDBDatabase({"path": path, "table": "people", "read_only": True})
    ro.connect()
    assert ro.read("p1") is not None
    with pytest.raises(DatabaseOperationError):
        ro.create(Record({"name": "Bob"}, id="p2"))
    ro.close()

    missing = SyncDuckDBDatabase({"path": path, "table": "nobody", "auto_create_table": "false"})
    with pytest.raises(DatabaseOperationError, match="does not exist"):
        missing.connect()

    # The async face also takes 0.11.0's thread-pool size.
    AsyncDuckDBDatabase({"path": path, "max_workers": 2})


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"path": ":memory:", "tabel": "x"}, "tabel"),
        ({"path": ":memory:", "max_workers": 2}, "max_workers"),
        ({"table": "bad-name"}, "table"),
        ({"timeout": -1}, "timeout"),
        ({"read_only": "maybe"}, "read_only"),
    ],
)
def test_bad_config_raises_configuration_error_naming_the_key(
    config: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        SyncDuckDBDatabase(config).connect()
    assert info.value.parameter == key


def test_create_batch_fails_closed_on_a_stored_id(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.create(Record({"v": 0}, id="r2"))
    batch = [Record({"v": i}, id=f"r{i}") for i in range(5)]
    with pytest.raises(DuplicateRecordError) as info:
        db.create_batch(batch)
    assert "r2" in str(info.value)
    assert db.count() == 1
    with pytest.raises(DuplicateRecordError):
        db.create_batch([Record({"v": 1}, id="x"), Record({"v": 2}, id="x")])
    assert not db.exists("x")
    db.close()


def test_storage_order_survives_updates_deletes_and_reopen(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.create_batch([Record({"i": i}, id=f"r{i}") for i in range(6)])
    db.update("r1", Record({"i": 10}))
    db.upsert("r3", Record({"i": 30}))
    db.delete("r0")
    db.create(Record({"i": 0}, id="r0"))
    expected = ["r1", "r2", "r3", "r4", "r5", "r0"]
    assert [r.id for r in db.all()] == expected
    db.close()
    again = _db(tmp_path)
    assert [r.id for r in again.all()] == expected
    assert [r.get_value("i") for r in again.all()] == [10, 2, 30, 4, 5, 0]
    again.close()


def test_stream_read_pages_through_a_table_bigger_than_a_page(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.create_batch([Record({"i": i, "even": i % 2 == 0}, id=f"r{i:05d}") for i in range(2500)])
    config = StreamConfig(batch_size=100)
    got = [r.get_value("i") for r in db.stream_read(Query().filter("even", "=", True), config)]
    assert got == list(range(0, 2500, 2))
    # Leaving a stream early closes it; the database stays usable.
    stream = db.stream_read(None, config)
    assert next(iter(stream)).id == "r00000"
    stream.close()
    assert db.count(Query().filter("i", ">=", 2400)) == 100
    db.close()


def test_a_table_written_by_0_11_0_reads_with_null_metadata(tmp_path: Path) -> None:
    path = str(tmp_path / "old.duckdb")
    conn = duckdb.connect(path)
    conn.execute(
        "CREATE TABLE records (id VARCHAR PRIMARY KEY, data JSON NOT NULL, metadata JSON, "
        "created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
        "updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
    )
    conn.execute("""INSERT INTO records (id, data) VALUES ('a', '{"name": "Ada", "n": 1}')""")
    conn.close()
    db = SyncDatabase.from_backend("duckdb", {"path": path})
    got = db.read("a")
    assert got is not None
    assert (got.get_value("name"), got.get_value("n")) == ("Ada", 1)
    assert got.metadata == {}
    assert [r.id for r in db.search(Query().filter("name", "=", "Ada"))] == ["a"]
    db.close()


def test_narrowing_is_only_a_superset() -> None:
    params: list[object] = []
    # A non-str comparison, a dotted path or a NOT reads every row: the core decides.
    assert narrow(("filter", "age", ">", 3), params) is None
    assert narrow(("filter", "a.b", "=", "x"), params) is None
    assert narrow(("not", ("filter", "city", "=", "x")), params) is None
    assert narrow(("or", [("filter", "city", "=", "x"), ("filter", "n", "=", 1)]), params) is None
    assert params == []
    sql = narrow(("and", [("filter", "city", "=", "x"), ("filter", "n", ">", 1)]), params)
    assert sql is not None and "city" in sql and params == ["x"]


def test_equal_str_filters_agree_with_the_core_on_mixed_types(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.create_batch(
        [
            Record({"city": "5"}, id="s"),
            Record({"city": 5}, id="n"),
            Record({"city": ["5"]}, id="l"),
            Record({"city": {"$map": "5"}}, id="m"),
            Record({"other": "5"}, id="none"),
        ]
    )
    assert [r.id for r in db.search(Query().filter("city", "=", "5"))] == ["s"]
    assert db.count(Query().filter("city", "=", 5)) == 1
    db.close()


def test_url_form() -> None:
    assert parse_url("duckdb:///tmp/a.duckdb?table=people&read_only=true") == (
        "duckdb",
        {"path": "/tmp/a.duckdb", "table": "people", "read_only": True},
    )
    assert parse_url("duckdb:///:memory:") == ("duckdb", {"path": ":memory:"})


async def test_async_calls_leave_the_event_loop_free(tmp_path: Path) -> None:
    db = await AsyncDatabase.from_backend("duckdb", {"path": str(tmp_path / "a.duckdb")})
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await db.create_batch([Record({"i": i}) for i in range(20_000)])
    found = await db.search(Query().filter("i", ">=", 19_990))
    task.cancel()
    assert len(found) == 10
    assert ticks > 1
    await db.close()


def test_apply_runs_a_commit_in_one_transaction(tmp_path: Path) -> None:
    from dataknobs_data.backends.duckdb import DuckDBStore

    store = DuckDBStore(str(tmp_path / "tx.duckdb"), "records", False, True)
    store.create_batch([("a", {"v": 1}, {})])
    done = store.apply(
        [
            ("create", [("b", {"v": 2}, {})]),
            ("upsert", [("a", {"v": 10}, {}), ("c", {"v": 3}, {})]),
            ("delete", ["b", "missing"]),
        ]
    )
    assert done == 4
    assert [r[0] for r in store.search(None)] == ["a", "c"]
    # A failure anywhere leaves nothing of the commit behind.
    with pytest.raises(DuplicateRecordError, match="c"):
        store.apply([("delete", ["a"]), ("create", [("d", {}, {}), ("c", {}, {})])])
    assert [(r[0], r[1]) for r in store.search(None)] == [("a", {"v": 10}), ("c", {"v": 3})]
    assert store.is_transactional()
    store.close()


def test_count_reads_metadata_only_when_the_condition_walks_it(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.create_batch(
        [Record({"n": i}, metadata={"owner": "ann" if i < 3 else "bob"}) for i in range(10)]
    )
    assert db.count(Query().filter("metadata.owner", "=", "ann")) == 3
    assert db.count(Query().filter("n", ">=", 4).filter("metadata.owner", "=", "bob")) == 6
    assert db.count(Query().filter("n", "<", 2)) == 2
    db.close()
