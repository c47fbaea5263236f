"""The database surface of 0.11.0 beyond the verbs: schemas, typed configs, registries, ids."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dataknobs_data import Query, Record, SyncDatabase
from dataknobs_data.backends import async_backends, sync_backends
from dataknobs_data.backends.config import (
    AsyncSQLiteDatabaseConfig,
    FileDatabaseConfig,
    MemoryDatabaseConfig,
    PostgresDatabaseConfig,
    SyncSQLiteDatabaseConfig,
)
from dataknobs_data.backends.file import SyncFileDatabase
from dataknobs_data.backends.memory import AsyncMemoryDatabase, SyncMemoryDatabase
from dataknobs_data.backends.sqlite import SyncSQLiteDatabase
from dataknobs_data.exceptions import ConfigurationError
from dataknobs_data.fields import FieldType
from dataknobs_data.schema import DatabaseSchema, FieldSchema


def test_declared_schema_on_a_database() -> None:
    schema = DatabaseSchema.create(
        name=FieldType.STRING, age=(FieldType.INTEGER, {"required": True})
    )
    db = SyncMemoryDatabase(schema=schema)
    assert db.schema is schema
    assert db.schema.fields["age"].required
    # Descriptive, as in 0.11.0: a record that does not fit is still stored.
    rid = db.create(Record({"name": 5}))
    assert db.read(rid)["name"] == 5  # type: ignore[index]
    db.add_field_schema(FieldSchema("city", FieldType.STRING))
    assert list(db.schema.fields) == ["name", "age", "city"]
    assert db.with_schema(score=FieldType.FLOAT) is db
    assert list(db.schema.fields) == ["score"]
    db.set_schema(DatabaseSchema())
    assert db.schema.fields == {}


def test_declared_schema_from_config_dict() -> None:
    db = SyncMemoryDatabase({"schema": {"fields": {"age": "integer", "bio": {"type": "text"}}}})
    assert db.schema.fields["age"].type is FieldType.INTEGER
    assert db.schema.fields["bio"].type is FieldType.TEXT
    assert "schema" not in db.config
    assert SyncMemoryDatabase().schema.fields == {}


def test_database_schema_round_trip_and_errors() -> None:
    schema = DatabaseSchema.create(a=FieldType.STRING).add_text_field("body", required=True)
    back = DatabaseSchema.from_dict(schema.to_dict())
    assert back == schema
    assert back.remove_field("a") and not back.remove_field("a")
    with pytest.raises(ValueError, match="Invalid field definition"):
        DatabaseSchema.create(a="not a type")
    with pytest.raises(ValueError, match="Unknown field type"):
        FieldSchema("a", "nope")  # type: ignore[arg-type]


def test_typed_configs_and_keyword_config(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    db = SyncSQLiteDatabase(SyncSQLiteDatabaseConfig(path=path, table="people"))
    with db:
        db.create(Record({"a": 1}, id="x"))
    assert db.config["table"] == "people"
    with SyncSQLiteDatabase(path=path, table="people") as again:
        assert again.read("x") is not None
    assert SyncSQLiteDatabase.CONFIG_CLS is SyncSQLiteDatabaseConfig
    assert SyncMemoryDatabase.CONFIG_CLS is MemoryDatabaseConfig
    assert SyncFileDatabase.CONFIG_CLS is FileDatabaseConfig
    # A setting this backend does not implement is refused, not ignored.
    with pytest.raises(ConfigurationError, match="pool_size"):
        SyncSQLiteDatabase(AsyncSQLiteDatabaseConfig(path=path, pool_size=9))
    with pytest.raises(ConfigurationError, match="accepted keys"):
        SyncSQLiteDatabaseConfig.from_dict({"path": path, "bogus": 1})
    assert SyncSQLiteDatabaseConfig.from_dict({"path": path}).to_dict()["path"] == path
    assert PostgresDatabaseConfig().port == 5432


def test_capabilities_and_transactions_flag() -> None:
    db = SyncMemoryDatabase()
    assert "conditional_write" in db.SUPPORTED_CAPABILITIES
    assert db.supports_transactions() is False


def test_file_backend_attributes(tmp_path: Path) -> None:
    db = SyncFileDatabase({"path": str(tmp_path / "x.csv")})
    assert (db.filepath, db.format) == (str(tmp_path / "x.csv"), "csv")
    gz = SyncFileDatabase({"path": str(tmp_path / "x.json.gz")})
    assert (gz.format, gz.compression) == ("json", "gzip")
    forced = SyncFileDatabase({"path": str(tmp_path / "x.dat"), "format": "jsonl"})
    assert forced.format == "jsonl"
    temp = SyncFileDatabase()
    with temp:
        temp.create(Record({"a": 1}))
        assert Path(temp.filepath).exists()
        written = temp.filepath
    assert not Path(written).exists()  # the temporary file goes with close


def test_closed_memory_database_as_context_manager() -> None:
    # As 0.11.0: close keeps the records, and the database can be used again.
    db = SyncMemoryDatabase()
    db.create(Record({"a": 1}, id="x"))
    db.close()
    with db as again:
        assert again.read("x") is not None
    assert db.count() == 1

    async def run() -> int:
        adb = AsyncMemoryDatabase()
        await adb.create(Record({"a": 1}))
        await adb.close()
        async with adb as again:
            return await again.count()

    assert asyncio.run(run()) == 1


def test_backend_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataknobs_data.backends as registry

    # Registering below must not leak into other tests.
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    assert {"memory", "file", "sqlite", "postgres"} <= set(sync_backends.list_canonical_keys())
    assert "mem" in sync_backends.list_keys() and sync_backends.has("sqlite3")
    assert sync_backends.get_factory("memory") is SyncMemoryDatabase
    assert async_backends.get_factory("mem") is AsyncMemoryDatabase
    assert sync_backends.get_factory("nope") is None
    db = sync_backends.create("memory")
    assert isinstance(db, SyncMemoryDatabase)
    assert sync_backends.get("memory") is sync_backends.get("memory")

    class Custom(SyncMemoryDatabase):
        pass

    sync_backends.register("custom-mem", Custom)
    assert isinstance(sync_backends.create("custom-mem"), Custom)
    assert isinstance(SyncDatabase.from_backend("custom-mem"), Custom)
    with pytest.raises(ConfigurationError):
        sync_backends.register("custom-mem", Custom)


def test_backends_package_reexports() -> None:
    from dataknobs_data import backends
    from dataknobs_data.backends import sqlite_async
    from dataknobs_data.backends.sqlite import AsyncSQLiteDatabase

    assert backends.SyncMemoryDatabase is SyncMemoryDatabase
    assert sqlite_async.AsyncSQLiteDatabase is AsyncSQLiteDatabase


def test_database_utils() -> None:
    from dataknobs_data.database_utils import ensure_record_id, process_search_results

    plain = Record({"a": 1})
    stamped = ensure_record_id(plain, "r1")
    assert stamped.id == "r1" and stamped.has_storage_id() and not plain.has_storage_id()
    assert ensure_record_id(stamped, "r1") is stamped
    pairs = [("b", Record({"n": 2})), ("a", Record({"n": 1})), ("c", Record({"n": None}))]
    shaped = process_search_results(pairs, Query().sort_by("n").set_limit(2).select("n"))
    assert [(r.id, r.data) for r in shaped] == [("a", {"n": 1}), ("b", {"n": 2})]


def test_record_id_field_keys_a_stored_record() -> None:
    db = SyncMemoryDatabase()
    assert db.create(Record({"record_id": "R1", "a": 1})) == "R1"
    assert db.read("R1") is not None
