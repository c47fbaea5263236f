"""Buffered transactions on every backend of the conformance suite.

A transaction stages writes and applies them on commit. Where the backend has server
transactions (SQLite, PostgreSQL) the commit is all or nothing; elsewhere the batches before a
failing one stay applied, and opening a transaction there needs ``policy="emulate"``.
"""

from __future__ import annotations

import pytest

from dataknobs_data import AsyncDatabase, BufferedTransaction, Query, Record
from dataknobs_data.exceptions import (
    CapabilityNotSupportedError,
    ConfigurationError,
    DuplicateRecordError,
    OperationError,
)
from dataknobs_data.factory import async_database_factory

#: The conformance backends whose commits run in one server transaction.
ATOMIC = {"sqlite", "postgres", "postgres-pgbouncer", "duckdb"}


class Boom(RuntimeError):
    pass


async def ids(db: AsyncDatabase) -> list[str]:
    return [str(r.id) for r in await db.search(Query())]


async def open_tx(db: AsyncDatabase) -> BufferedTransaction:
    policy = "strict" if db.supports_transactions() else "emulate"
    return await db.begin_transaction(policy=policy)


async def test_supports_transactions_is_what_the_backend_has(
    adb: AsyncDatabase, backend_id: str
) -> None:
    assert adb.supports_transactions() is (backend_id in ATOMIC)
    if backend_id in ATOMIC:
        tx = await adb.begin_transaction()
        assert tx.is_atomic and tx.policy == "strict"
        await tx.rollback()
    else:
        with pytest.raises(CapabilityNotSupportedError, match="transactions"):
            await adb.begin_transaction()
        with pytest.raises(CapabilityNotSupportedError):
            async with adb.transaction():
                pass
        tx = await adb.begin_transaction(policy="emulate")
        assert not tx.is_atomic and tx.policy == "emulate"


async def test_an_unknown_policy_is_a_configuration_error(adb: AsyncDatabase) -> None:
    with pytest.raises(ConfigurationError, match="policy"):
        await adb.begin_transaction(policy="sometimes")


async def test_nothing_is_written_before_commit_and_all_of_it_after(adb: AsyncDatabase) -> None:
    await adb.create_batch([Record({"n": 0}, id="old"), Record({"n": 1}, id="doomed")])
    tx = await open_tx(adb)
    await tx.create(Record({"n": 2}, id="a"))
    await tx.create_batch([Record({"n": 3}, id="b"), Record({"n": 4}, id="c")])
    await tx.upsert("old", Record({"n": 10}))
    await tx.delete("doomed")
    await tx.upsert_batch([Record({"n": 5}, id="d")])
    await tx.delete("never-there")
    assert await ids(adb) == ["old", "doomed"], "staged writes are not visible"
    assert await tx.commit() == {"affected_rows": 6}
    assert await ids(adb) == ["old", "a", "b", "c", "d"]
    old = await adb.read("old")
    assert old is not None and old["n"] == 10
    assert await tx.commit() == {"affected_rows": 0}, "a second commit does nothing"
    with pytest.raises(OperationError, match="already committed or rolled back"):
        await tx.create(Record({"n": 6}, id="late"))


async def test_an_exception_in_the_block_writes_nothing(adb: AsyncDatabase) -> None:
    await adb.create(Record({"n": 0}, id="kept"))
    policy = "strict" if adb.supports_transactions() else "emulate"
    with pytest.raises(Boom):
        async with adb.transaction(policy=policy) as tx:
            await tx.create(Record({"n": 1}, id="new"))
            await tx.delete("kept")
            raise Boom
    assert tx.closed
    assert await ids(adb) == ["kept"]


async def test_the_callers_records_are_not_touched(adb: AsyncDatabase) -> None:
    mine = Record({"n": 1})
    tx = await open_tx(adb)
    await tx.upsert("given-id", mine)
    await tx.commit()
    assert mine.id is None
    got = await adb.read("given-id")
    assert got is not None and got["n"] == 1


async def test_a_failing_batch_rolls_back_the_others_only_where_atomic(
    adb: AsyncDatabase, backend_id: str
) -> None:
    await adb.create_batch([Record({"n": 0}, id="keep"), Record({"n": 1}, id="gone")])
    tx = await open_tx(adb)
    await tx.delete("gone")
    await tx.upsert(Record({"n": 5}, id="keep"))
    await tx.create(Record({"n": 6}, id="fresh"))
    await tx.create(Record({"n": 7}, id="keep"))  # collides: the commit fails here
    with pytest.raises(DuplicateRecordError, match="keep"):
        await tx.commit()
    keep = await adb.read("keep")
    assert keep is not None
    if backend_id in ATOMIC:
        assert await ids(adb) == ["keep", "gone"]
        assert keep["n"] == 0
    else:
        # The delete and the upsert ran as batches of their own; the failing create_batch
        # wrote nothing, "fresh" included.
        assert await ids(adb) == ["keep"]
        assert keep["n"] == 5


async def test_a_schema_validates_what_a_transaction_commits(tmp_path: object) -> None:
    from dataknobs_data.exceptions import RecordValidationError
    from dataknobs_data.validation import Schema

    schema = Schema("people").field("age", "INTEGER", required=True)
    db = async_database_factory.create(backend="sqlite", path=":memory:", schema=schema)
    await db.connect()
    try:
        with pytest.raises(RecordValidationError):
            async with db.transaction() as tx:
                await tx.create(Record({"age": 3}, id="ok"))
                await tx.create(Record({"age": "old"}, id="bad"))
        assert await db.count() == 0
    finally:
        await db.close()
