"""The async face of the conformance suite: the same behaviours through AsyncDatabase."""

from __future__ import annotations

import asyncio

import pytest

from dataknobs_data import (
    AsyncDatabase,
    DuplicateRecordError,
    Filter,
    Operator,
    Query,
    Record,
    StreamConfig,
)
from dataknobs_data.factory import async_database_factory
from dataknobs_data.query import apply_query
from dataknobs_data.streaming import ConflictPolicy

from .conftest import BackendSpec
from .test_conformance import ODD_VALUES, PEOPLE, QUERIES, ids, people


async def test_crud_and_batches(adb: AsyncDatabase) -> None:
    record = Record({"name": "Ann"})
    new_id = await adb.create(record)
    assert record.id is None
    got = await adb.read(new_id)
    assert got is not None and got["name"] == "Ann" and got.id == new_id
    with pytest.raises(DuplicateRecordError):
        await adb.create(Record({"name": "again"}, id=new_id))
    assert await adb.update(new_id, Record({"name": "Bea"})) is True
    assert await adb.update("missing", Record({})) is False
    assert await adb.upsert("u", Record({"v": 1})) == "u"
    assert await adb.exists("u") is True
    assert await adb.delete("u") is True and await adb.exists("u") is False
    with pytest.raises(DuplicateRecordError):
        await adb.create_batch([Record({}, id="x"), Record({}, id=new_id)])
    assert await adb.count() == 1
    assert [r.id if r else None for r in await adb.read_batch(["zz", new_id])] == [None, new_id]
    assert await adb.clear() == 1


@pytest.mark.parametrize("query", QUERIES, ids=[str(q.to_dict()) for q in QUERIES])
async def test_search_and_stream_match_the_reference(adb: AsyncDatabase, query: Query) -> None:
    await adb.create_batch(people())
    expected = ids(apply_query(people(), query))
    assert ids(await adb.search(query)) == expected
    streamed = [r async for r in adb.stream_read(query, StreamConfig(batch_size=2, prefetch=2))]
    assert ids(streamed) == expected


async def test_or_query_and_count(adb: AsyncDatabase) -> None:
    await adb.create_batch(people())
    either = Query().or_(Filter("city", Operator.EQ, "Rome"), Filter("age", Operator.GT, 40))
    assert sorted(ids(await adb.search(either))) == ["p3", "p4"]
    assert await adb.count(Query().filter("city", "like", "%R%")) == 5


async def test_values_round_trip(adb: AsyncDatabase) -> None:
    await adb.create(Record(dict(ODD_VALUES), id="odd"))
    got = await adb.read("odd")
    assert got is not None and got.data == ODD_VALUES


async def test_stream_write_async_source(adb: AsyncDatabase) -> None:
    async def source():  # type: ignore[no-untyped-def]
        for i in range(25):
            yield Record({"i": i}, id=f"a{i}")

    result = await adb.stream_write(source(), StreamConfig(batch_size=10))
    assert (result.successful, result.failed, result.total_batches) == (25, 0, 3)
    again = await adb.stream_write(
        [Record({"i": -1}, id="a0")], StreamConfig(on_conflict=ConflictPolicy.UPSERT)
    )
    assert again.successful == 1
    first = await adb.read("a0")
    assert first is not None and first["i"] == -1
    assert await adb.count() == 25


async def test_concurrent_tasks_share_one_database(adb: AsyncDatabase) -> None:
    async def writer(k: int) -> None:
        for i in range(20):
            await adb.create(Record({"k": k, "i": i}, id=f"{k}-{i}"))

    await asyncio.gather(*(writer(k) for k in range(5)))
    assert await adb.count() == 100
    assert await adb.count(Query().filter("k", "=", 3)) == 20


def test_one_database_across_two_event_loops(backend: BackendSpec) -> None:
    name, config = backend
    database = async_database_factory.create(backend=name, **config)

    async def first() -> None:
        await database.connect()
        await database.create_batch(people())

    async def second() -> int:
        try:
            return await database.count(Query().filter("age", ">", 20))
        finally:
            await database.close()

    asyncio.run(first())
    assert asyncio.run(second()) == sum(
        1 for p in PEOPLE if isinstance(p.get("age"), (int, float)) and p["age"] > 20
    )


async def test_conditional_writes_with_version_tokens(adb: AsyncDatabase) -> None:
    from dataknobs_data.exceptions import ConcurrencyError

    await adb.create(Record({"n": 1}, id="v"))
    token = await adb.get_version("v")
    assert token is not None and await adb.get_version("missing") is None
    assert await adb.update("v", Record({"n": 2}), expected_version=token)
    with pytest.raises(ConcurrencyError):
        await adb.update("v", Record({"n": 3}), expected_version=token)
    with pytest.raises(ConcurrencyError):
        await adb.upsert("new", Record({"n": 0}), expected_version=token)
    assert not await adb.exists("new")
    record = await adb.read("v")
    assert record is not None and record["n"] == 2
    assert await adb.delete("v", expected_version=await adb.get_version("v"))
