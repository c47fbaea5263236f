"""Factories, the registry, and the default behaviours a user subclass inherits."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dataknobs_data import (
    AsyncDatabase,
    BackendNotFoundError,
    ConfigurationError,
    DatabaseError,
    DuplicateRecordError,
    Query,
    Record,
    StreamConfig,
    SyncDatabase,
    async_database_factory,
    database_factory,
    get_available_backends,
    get_backend_info,
    is_backend_available,
)
from dataknobs_data.backends.memory import AsyncMemoryDatabase, SyncMemoryDatabase
from dataknobs_data.backends.sqlite import SyncSQLiteDatabase
from dataknobs_data.query import apply_query


def test_names_and_aliases() -> None:
    assert isinstance(database_factory.create(backend="mem"), SyncMemoryDatabase)
    assert isinstance(database_factory.create(backend="SQLite3"), SyncSQLiteDatabase)
    assert isinstance(async_database_factory.create(backend="memory"), AsyncMemoryDatabase)
    assert isinstance(database_factory.create(), SyncMemoryDatabase)
    assert {"memory", "file", "sqlite"} <= set(get_available_backends())
    assert is_backend_available("sqlite3") and not is_backend_available("nosuch")
    info = get_backend_info("mem")
    assert info["name"] == "memory" and "mem" in info["aliases"]


def test_unknown_backend_lists_the_available_ones() -> None:
    with pytest.raises(BackendNotFoundError) as info:
        database_factory.create(backend="cassandra")
    message = str(info.value)
    assert message.startswith("Backend 'cassandra' not found. Available backends: ")
    assert "file, memory, postgres, s3, sqlite" in message
    assert isinstance(info.value, ValueError)


def test_unknown_config_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        database_factory.create(backend="sqlite", path=":memory:", tabel="x")
    assert "tabel" in str(info.value) and "table" in str(info.value)


def test_bad_sqlite_table_name_is_a_configuration_error() -> None:
    db = database_factory.create(backend="sqlite", table="x; drop table y")
    with pytest.raises(ConfigurationError, match="table"):
        db.connect()


def test_from_backend_connects_sync_and_async() -> None:
    db = SyncDatabase.from_backend("memory")
    db.create(Record({"a": 1}, id="a"))
    assert db.count() == 1

    async def run() -> int:
        async with await AsyncDatabase.from_backend("sqlite", {"path": ":memory:"}) as adb:
            await adb.create(Record({"a": 1}))
            return await adb.count()

    import asyncio

    assert asyncio.run(run()) == 1


def test_closed_database_refuses_work_until_reconnected() -> None:
    db = database_factory.create(backend="sqlite", path=":memory:")
    db.connect()
    db.close()
    with pytest.raises(DatabaseError, match="closed"):
        db.count()
    db.connect()
    assert db.count() == 0


class DictDatabase(SyncDatabase):
    """A user backend implementing only the five abstract verbs."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, Record] = {}

    def create(self, record: Record) -> str:
        rid = record.id or f"id{len(self.rows)}"
        if rid in self.rows:
            raise DuplicateRecordError(rid)
        copy = record.copy()
        copy.id = rid
        self.rows[rid] = copy
        return rid

    def read(self, id: str) -> Record | None:
        found = self.rows.get(id)
        return found.copy() if found else None

    def update(self, id: str, record: Record) -> bool:
        if id not in self.rows:
            return False
        copy = record.copy()
        copy.id = id
        self.rows[id] = copy
        return True

    def delete(self, id: str) -> bool:
        return self.rows.pop(id, None) is not None

    def search(self, query: Query) -> list[Record]:  # type: ignore[override]
        return apply_query(list(self.rows.values()), query)


def test_user_subclass_inherits_batches_and_streaming() -> None:
    db = DictDatabase()
    assert db.create_batch([Record({"v": i}, id=str(i)) for i in range(5)]) == list("01234")
    with pytest.raises(DuplicateRecordError):
        db.create_batch([Record({}, id="9"), Record({}, id="0")])
    assert db.count() == 5 and db.read("9") is None
    assert db.upsert("0", Record({"v": 10})) == "0"
    result = db.stream_write(
        [Record({"v": 7}, id="7"), Record({"v": 1}, id="1")],
        StreamConfig(on_error=lambda e, r: True),
    )
    assert (result.successful, result.failed) == (1, 1)
    assert [r.id for r in db.stream_read(Query().filter("v", ">", 3))] == ["0", "4", "7"]
    ids: Sequence[str | None] = [r.id for r in db.all()]
    assert len(ids) == 6 and db.clear() == 6
