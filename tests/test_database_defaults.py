"""The verbs SyncDatabase and AsyncDatabase give a user backend that implements only the five
abstract ones (create, read, update, delete, search): one scenario, run on both faces."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

import pytest

from dataknobs_data import AsyncDatabase, Query, Record, SyncDatabase
from dataknobs_data.database import config_mapping, enforce_content_version
from dataknobs_data.exceptions import (
    CapabilityNotSupportedError,
    ConcurrencyError,
    ConfigurationError,
    DuplicateRecordError,
)
from dataknobs_data.fields import FieldType
from dataknobs_data.query import apply_query
from dataknobs_data.schema import FieldSchema
from dataknobs_data.streaming import ConflictPolicy, StreamConfig

T = TypeVar("T")


class _Rows:
    """The five verbs over a dict, honouring ``expected_version`` as a backend must."""

    def __init__(self) -> None:
        self.rows: dict[str, Record] = {}

    def _create(self, record: Record) -> str:
        rid = record.id or f"id{len(self.rows)}"
        if rid in self.rows:
            raise DuplicateRecordError(rid)
        self.rows[rid] = record.copy(deep=True)
        self.rows[rid].id = rid
        return rid

    def _read(self, id: str) -> Record | None:
        found = self.rows.get(id)
        return found.copy(deep=True) if found is not None else None

    def _update(self, id: str, record: Record, expected_version: str | None) -> bool:
        enforce_content_version(id, expected_version, self.rows.get(id))
        if id not in self.rows:
            return False
        self.rows[id] = record.copy(deep=True)
        self.rows[id].id = id
        return True

    def _delete(self, id: str, expected_version: str | None) -> bool:
        enforce_content_version(id, expected_version, self.rows.get(id))
        return self.rows.pop(id, None) is not None


class SyncDict(SyncDatabase):
    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.store = _Rows()

    def create(self, record: Record) -> str:
        return self.store._create(record)

    def read(self, id: str) -> Record | None:
        return self.store._read(id)

    def update(self, id: str, record: Record, *, expected_version: str | None = None) -> bool:
        return self.store._update(id, record, expected_version)

    def delete(self, id: str, *, expected_version: str | None = None) -> bool:
        return self.store._delete(id, expected_version)

    def search(self, query: Any) -> list[Record]:
        return apply_query(list(self.store.rows.values()), query)


class AsyncDict(AsyncDatabase):
    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.store = _Rows()

    async def create(self, record: Record) -> str:
        return self.store._create(record)

    async def read(self, id: str) -> Record | None:
        return self.store._read(id)

    async def update(self, id: str, record: Record, *, expected_version: str | None = None) -> bool:
        return self.store._update(id, record, expected_version)

    async def delete(self, id: str, *, expected_version: str | None = None) -> bool:
        return self.store._delete(id, expected_version)

    async def search(self, query: Any) -> list[Record]:
        return apply_query(list(self.store.rows.values()), query)


async def aw(value: Awaitable[T] | T) -> T:
    """The value of a sync call, or the awaited value of an async one."""
    if inspect.isawaitable(value):
        return await value
    return value  # type: ignore[return-value]


async def collect(stream: Iterator[Record] | AsyncIterator[Record]) -> list[Record]:
    if isinstance(stream, Iterator):
        return list(stream)
    return [r async for r in stream]


def run_on(face: str, scenario: Any) -> None:
    db: SyncDatabase | AsyncDatabase = SyncDict() if face == "sync" else AsyncDict()
    asyncio.run(scenario(db))


FACES = pytest.mark.parametrize("face", ["sync", "async"])


@FACES
def test_single_record_verbs(face: str) -> None:
    async def scenario(db: Any) -> None:
        assert await aw(db.upsert(Record({"v": 1}, id="a"))) == "a"
        assert await aw(db.upsert("b", Record({"v": 2}))) == "b"
        assert (await aw(db.read("b"))).get_value("v") == 2
        with pytest.raises(TypeError, match="needs a record"):
            await aw(db.upsert("c"))
        assert await aw(db.exists("a")) and not await aw(db.exists("zz"))

        token = await aw(db.get_version("a"))
        assert token is not None and await aw(db.get_version("zz")) is None
        assert await aw(db.upsert("a", Record({"v": 10}), expected_version=token)) == "a"
        # The token is now stale: the record changed since it was read.
        with pytest.raises(ConcurrencyError) as stale:
            await aw(db.upsert("a", Record({"v": 11}), expected_version=token))
        assert stale.value.context["expected_version"] == token
        # A conditional upsert of a missing record is a conflict too, not a create.
        with pytest.raises(ConcurrencyError):
            await aw(db.upsert("new", Record({"v": 0}), expected_version=token))
        assert not await aw(db.exists("new"))
        assert (await aw(db.read("a"))).get_value("v") == 10
        assert await aw(db.count()) == 2
        assert await aw(db.count(Query().filter("v", ">", 5))) == 1

    run_on(face, scenario)


@FACES
def test_batch_verbs(face: str) -> None:
    async def scenario(db: Any) -> None:
        ids = await aw(db.create_batch([Record({"v": i}, id=str(i)) for i in range(4)]))
        assert ids == ["0", "1", "2", "3"]
        # All or nothing: a repeated id or a stored one raises before any write.
        with pytest.raises(DuplicateRecordError, match="'x'"):
            await aw(db.create_batch([Record({}, id="x"), Record({}, id="x")]))
        with pytest.raises(DuplicateRecordError, match="'2'"):
            await aw(db.create_batch([Record({}, id="y"), Record({}, id="2")]))
        assert not await aw(db.exists("x")) and not await aw(db.exists("y"))

        found = await aw(db.read_batch(["1", "nope", "3"]))
        assert [r.get_value("v") if r else None for r in found] == [1, None, 3]
        assert await aw(db.update_batch([("1", Record({"v": 100})), ("nope", Record({}))])) == [
            True,
            False,
        ]
        assert await aw(db.upsert_batch([Record({"v": 5}, id="3"), Record({"v": 6}, id="9")])) == [
            "3",
            "9",
        ]
        assert await aw(db.delete_batch(["0", "nope"])) == [True, False]
        assert sorted(r.id for r in await aw(db.all())) == ["1", "2", "3", "9"]
        assert await aw(db.clear()) == 4 and await aw(db.count()) == 0

    run_on(face, scenario)


@FACES
def test_aggregate_over_more_records_than_one_batch(face: str) -> None:
    # More than the 1,000 records fed to the core per crossing, so several batches are fed.
    async def scenario(db: Any) -> None:
        await aw(db.create_batch([Record({"g": i % 3, "v": i}, id=str(i)) for i in range(2500)]))
        rows = await aw(
            db.aggregate(
                Query().filter("v", ">=", 100),
                group_by="g",
                metrics={"n": ("count", None), "total": ("sum", "v")},
            )
        )
        expected = [
            {"g": g, "n": sum(1 for i in range(100, 2500) if i % 3 == g)}
            | {"total": sum(i for i in range(100, 2500) if i % 3 == g)}
            for g in range(3)
        ]
        assert rows == expected
        assert await aw(db.aggregate()) == [{"count": 2500}]

    run_on(face, scenario)


@FACES
def test_stream_write_conflict_policies(face: str) -> None:
    async def scenario(db: Any) -> None:
        await aw(db.create(Record({"v": 0}, id="a")))
        batch = [Record({"v": 1}, id="a"), Record({"v": 2}, id="b")]

        skipped = await aw(db.stream_write(batch, StreamConfig(on_conflict=ConflictPolicy.SKIP)))
        assert (skipped.successful, skipped.skipped, skipped.failed) == (1, 1, 0)
        assert (await aw(db.read("a"))).get_value("v") == 0  # kept, not overwritten

        upserted = await aw(db.stream_write(batch, StreamConfig(on_conflict=ConflictPolicy.UPSERT)))
        assert (upserted.successful, upserted.failed) == (2, 0)
        assert (await aw(db.read("a"))).get_value("v") == 1

        # The default (INSERT): the batch fails, each record is retried; "c" is stored and the
        # two existing ids are reported with their positions.
        again = [*batch, Record({"v": 3}, id="c")]
        inserted = await aw(db.stream_write(again, StreamConfig(on_error=lambda e, r: True)))
        assert (inserted.successful, inserted.failed) == (1, 2)
        assert inserted.failed_indices == [0, 1]
        assert [r.id for r in await collect(db.stream_read(Query().sort_by("v")))] == [
            "a",
            "b",
            "c",
        ]

    run_on(face, scenario)


@FACES
def test_stream_transform(face: str) -> None:
    def halve(record: Record) -> Record | None:
        v = record.get_value("v")
        if v % 2:
            return None  # odd records are dropped from the write (and left as they were)
        return Record({"v": v // 2})  # no id: the source record's id is kept

    async def scenario(db: Any) -> None:
        await aw(db.create_batch([Record({"v": i}, id=str(i)) for i in range(6)]))
        result = await aw(db.stream_transform(Query().filter("v", ">", 0), halve))
        assert (result.total_processed, result.successful, result.skipped) == (5, 2, 3)
        values = {r.id: r.get_value("v") for r in await aw(db.all())}
        assert values == {"0": 0, "1": 1, "2": 1, "3": 3, "4": 2, "5": 5}
        unchanged = await aw(db.stream_transform())
        assert unchanged.successful == 6 and await aw(db.count()) == 6

    run_on(face, scenario)


def test_async_transactions_on_a_backend_without_them() -> None:
    async def scenario() -> None:
        db = AsyncDict()
        assert not db.supports_transactions()
        with pytest.raises(CapabilityNotSupportedError, match="does not support 'transactions'"):
            await db.begin_transaction()
        with pytest.raises(ConfigurationError, match="unknown transaction policy 'loose'"):
            await db.begin_transaction(policy="loose")
        # "emulate": writes are staged and applied batch by batch on commit.
        async with db.transaction(policy="emulate") as tx:
            await tx.create(Record({"v": 1}, id="a"))
            await tx.upsert(Record({"v": 2}, id="b"))
            await tx.delete("a")
            assert await db.count() == 0
        assert [r.id for r in await db.all()] == ["b"]
        # An error inside the block discards what was staged.
        with pytest.raises(RuntimeError):
            async with db.transaction(policy="emulate") as tx:
                await tx.create(Record({"v": 3}, id="c"))
                raise RuntimeError("boom")
        assert not await db.exists("c")

    asyncio.run(scenario())


def test_connect_close_and_from_backend() -> None:
    async def scenario() -> None:
        async with AsyncDict() as db:
            await db.create(Record({"v": 1}, id="a"))
            await db.disconnect()
        opened = await AsyncDatabase.from_backend("memory")
        try:
            assert await opened.count() == 0
        finally:
            await opened.close()

    asyncio.run(scenario())
    with SyncDict() as db:
        db.create(Record({"v": 1}, id="a"))
        db.disconnect()
    opened = SyncDatabase.from_backend("sqlite", {"path": ":memory:"})
    try:
        assert opened.count() == 0
    finally:
        opened.close()


def test_declared_schema_helpers() -> None:
    db = SyncDict().with_schema(name=FieldType.STRING, age=(FieldType.INTEGER, {"required": True}))
    assert set(db.schema.fields) == {"name", "age"}
    db.add_field_schema(FieldSchema("city", FieldType.STRING))
    assert set(db.schema.fields) == {"name", "age", "city"}
    assert db.validation_schema is None
    assert isinstance(SyncDict.from_config({}), SyncDict)


@dataclasses.dataclass
class _Typed:
    path: str = ":memory:"
    tags: list[str] = dataclasses.field(default_factory=list)
    required: int = dataclasses.field(default=0)


def test_config_mapping() -> None:
    assert config_mapping(None) == {}
    assert config_mapping({"a": 1}) == {"a": 1}
    # Fields left at their defaults are omitted: the backend applies its own.
    assert config_mapping(_Typed()) == {}
    assert config_mapping(_Typed(path="x.db", tags=["t"])) == {"path": "x.db", "tags": ["t"]}
    with pytest.raises(ConfigurationError, match="expected a mapping or a backend config"):
        config_mapping(["not", "a", "config"])
    with pytest.raises(ConfigurationError, match="got type"):
        config_mapping(_Typed)  # the class, not an instance
