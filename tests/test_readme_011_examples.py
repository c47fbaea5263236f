"""The examples of dataknobs-data 0.11.0's package description, run here (in our own words).

Each test follows one example of 0.11.0's README (its wheel's METADATA) that uses core names,
on the backends we have; the S3, Elasticsearch, pandas and dataknobs_config examples wait for
those (issues 10, 11, 12; dataknobs_config is another package).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dataknobs_data import (
    AsyncDatabase,
    DatabaseFactory,
    FieldType,
    Operator,
    Query,
    Record,
    SortOrder,
    StreamConfig,
    SyncDatabase,
)
from dataknobs_data.backends import register_backend, sync_backends
from dataknobs_data.migration import AddField, Migration, Migrator, RenameField, TransformField
from dataknobs_data.validation import Schema
from dataknobs_data.validation.constraints import Enum, Pattern, Range, Unique


async def test_quick_start_async_crud_and_search() -> None:
    db = await AsyncDatabase.from_backend("memory")
    person = Record({"name": "John Doe", "age": 30, "email": "john@example.com", "active": True})
    rid = await db.create(person)
    assert (await db.read(rid)).get_value("name") == "John Doe"  # type: ignore[union-attr]
    person.set_value("age", 31)
    assert await db.update(rid, person)
    assert (await db.read(rid)).get_value("age") == 31  # type: ignore[union-attr]
    await db.create(Record({"name": "Amy", "age": 26, "active": True}))
    await db.create(Record({"name": "Zed", "age": 40, "active": False}))
    query = (
        Query()
        .filter("age", Operator.GTE, 25)
        .filter("active", Operator.EQ, True)
        .sort("name")
        .limit(10)
    )
    assert [r.get_value("name") for r in await db.search(query)] == ["Amy", "John Doe"]
    assert await db.delete(rid)
    assert await db.read(rid) is None
    await db.close()


def test_quick_start_sync() -> None:
    db = SyncDatabase.from_backend("memory")
    rid = db.create(Record({"name": "Jane Doe", "age": 28}))
    assert db.read(rid).get_value("age") == 28  # type: ignore[union-attr]
    db.close()


async def test_file_and_sqlite_backend_configs(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    db = await AsyncDatabase.from_backend("file", {"path": str(path), "format": "json"})
    await db.create(Record({"a": 1}, id="one"))
    await db.close()
    assert "one" in path.read_text()
    lite = await AsyncDatabase.from_backend(
        "sqlite",
        {"path": str(tmp_path / "app.db"), "journal_mode": "WAL", "synchronous": "NORMAL"},
    )
    await lite.create(Record({"a": 1}, id="one"))
    assert await lite.exists("one")
    await lite.close()


def test_postgres_config_with_schema_key() -> None:
    from dataknobs_data.backends.postgres import SyncPostgresDatabase

    # 0.11.0's example names the PostgreSQL schema with "schema"; from_config builds it.
    db = SyncPostgresDatabase.from_config(
        {"host": "localhost", "database": "myapp", "user": "postgres", "password": "secret"}
    )
    assert db.config["database"] == "myapp"
    named = SyncPostgresDatabase.from_config({"table": "records", "schema": "public"})
    assert named.config["schema_name"] == "public" and "schema" not in named.config


def test_factory_example(tmp_path: Path) -> None:
    factory = DatabaseFactory()
    memory_db = factory.create(backend="memory")
    file_db = factory.create(backend="file", path=str(tmp_path / "data.json"), format="json")
    with memory_db, file_db:
        memory_db.create(Record({"n": 1}))
        file_db.create(Record({"n": 2}))
        assert memory_db.count() == file_db.count() == 1


def test_schema_validation_example() -> None:
    user_schema = Schema("UserSchema")
    user_schema.field(
        "email",
        FieldType.STRING,
        required=True,
        constraints=[Pattern(r"^.+@.+\..+$"), Unique()],
    )
    user_schema.field("age", FieldType.INTEGER, constraints=[Range(min=0, max=150)])
    user_schema.field(
        "status",
        FieldType.STRING,
        default="active",
        constraints=[Enum(["active", "inactive", "suspended"])],
    )
    bad = user_schema.validate(Record({"email": "nope", "age": 200}))
    assert not bad.valid
    assert any("email" in e for e in bad.errors) and any("age" in e for e in bad.errors)
    coerced = user_schema.validate(Record({"email": "a@b.co", "age": "30"}), coerce=True)
    assert coerced.valid
    assert coerced.value.get_value("age") == 30
    assert coerced.value.get_value("status") == "active"


async def test_migration_example() -> None:
    migration = Migration("1.0.0", "2.0.0", description="Upgrade user schema")
    migration.add(AddField("created_at", default_value=datetime(2024, 1, 1)))
    migration.add(RenameField("user_name", "username"))
    migration.add(TransformField("email", lambda x: x.lower()))
    source = await AsyncDatabase.from_backend("memory")
    target = await AsyncDatabase.from_backend("sqlite", {"path": ":memory:"})
    await source.create_batch(
        [Record({"user_name": f"u{i}", "email": f"U{i}@X.ORG"}, id=f"u{i}") for i in range(5)]
    )
    seen: list[float] = []
    progress = await Migrator().migrate_async(
        source, target, transform=migration, on_progress=lambda p: seen.append(p.percent)
    )
    assert (progress.succeeded, progress.failed) == (5, 0)
    assert seen and seen[-1] == pytest.approx(100.0)
    moved = await target.read("u3")
    assert moved is not None
    assert moved.get_value("username") == "u3" and moved.get_value("email") == "u3@x.org"
    assert moved.get_value("created_at") == datetime(2024, 1, 1)
    await source.close()
    await target.close()


async def test_advanced_query_example() -> None:
    db = await AsyncDatabase.from_backend("memory")
    await db.create_batch(
        [
            Record(
                {
                    "name": f"John {i:02d}",
                    "email": f"j{i}@x.org",
                    "status": "active" if i % 2 else "pending",
                    "priority": i % 3,
                    "created_at": f"2024-02-{i + 1:02d}",
                }
            )
            for i in range(25)
        ]
        + [Record({"name": "Ann", "status": "active", "priority": 9, "created_at": "2024-03-01"})]
    )
    query = (
        Query()
        .filter("status", Operator.IN, ["active", "pending"])
        .filter("created_at", Operator.GTE, "2024-01-01")
        .filter("name", Operator.LIKE, "John%")
        .sort("priority", SortOrder.DESC)
        .sort("created_at", SortOrder.ASC)
        .offset(5)
        .limit(10)
        .select(["name", "email", "status"])
    )
    results = await db.search(query)
    assert len(results) == 10
    assert all(set(r.data) == {"name", "email", "status"} for r in results)
    # Priority 2 comes first (i = 2, 5, ... 23: eight of them), so after skipping five, three of
    # those remain, then priority 1 in date order.
    assert [r.get_value("name") for r in results[:4]] == [
        "John 17",
        "John 20",
        "John 23",
        "John 01",
    ]
    await db.close()


async def test_streaming_example() -> None:
    db = await AsyncDatabase.from_backend("memory")

    def record_generator() -> Iterator[Record]:
        for i in range(250):
            yield Record({"n": i})

    config = StreamConfig(batch_size=100)
    result = await db.stream_write(record_generator(), config)
    assert (result.total_processed, result.successful) == (250, 250)
    seen = [r.get_value("n") async for r in db.stream_read(Query().filter("n", "<", 10), config)]
    assert seen == list(range(10))
    await db.close()


def test_custom_backend_example(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataknobs_data.backends as registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))

    class CustomBackend(SyncDatabase):
        def __init__(self, config: dict[str, Any] | None = None) -> None:
            super().__init__()
            self.rows: dict[str, Record] = {}

        def create(self, record: Record) -> str:
            rid = record.id or f"r{len(self.rows)}"
            self.rows[rid] = record.copy()
            return rid

        def read(self, id: str) -> Record | None:
            return self.rows.get(id)

        def update(self, id: str, record: Record, *, expected_version: str | None = None) -> bool:
            if id not in self.rows:
                return False
            self.rows[id] = record.copy()
            return True

        def delete(self, id: str, *, expected_version: str | None = None) -> bool:
            return self.rows.pop(id, None) is not None

        def search(self, query: Any) -> list[Record]:
            return [r for r in self.rows.values() if query.matches(r)]

    register_backend(
        sync_backends, "custom", lambda: CustomBackend, metadata={"description": "A custom backend"}
    )
    db = SyncDatabase.from_backend("custom", {})
    assert isinstance(db, CustomBackend)
    rid = db.create(Record({"a": 1}))
    assert db.read(rid) is not None and db.count() == 1
    assert sync_backends.get_metadata("custom")["description"] == "A custom backend"
