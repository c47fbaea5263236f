"""A schema attached to a database: config keys ``schema`` and ``schema_coerce`` (API.md §8)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dataknobs_data import AsyncDatabase, Query, Record, SyncDatabase
from dataknobs_data.exceptions import ConfigurationError, RecordValidationError
from dataknobs_data.factory import async_database_factory, database_factory
from dataknobs_data.streaming import ConflictPolicy, StreamConfig
from dataknobs_data.validation import Enum, Range, Schema, Unique

BACKENDS: dict[str, Callable[[Path], tuple[str, dict[str, Any]]]] = {
    "memory": lambda tmp: ("memory", {}),
    "sqlite": lambda tmp: ("sqlite", {"path": str(tmp / "db.sqlite")}),
    "file-jsonl": lambda tmp: ("file", {"path": str(tmp / "db.jsonl")}),
    "file-json": lambda tmp: ("file", {"path": str(tmp / "db.json")}),
    "file-csv": lambda tmp: ("file", {"path": str(tmp / "db.csv")}),
}


def people() -> Schema:
    return (
        Schema("people")
        .field("name", "string", required=True)
        .field("age", "integer", constraints=[Range(0, 150)])
        .field("email", "string", constraints=[Unique()])
        .field("joined", "datetime")
        .field("active", "boolean", default=True)
    )


SPEC: dict[str, Any] = {
    "name": "people",
    "fields": [
        {"name": "name", "type": "string", "required": True},
        {
            "name": "age",
            "type": "integer",
            "constraints": [{"type": "range", "min": 0, "max": 150}],
        },
        {"name": "email", "type": "string", "constraints": ["unique"]},
        {"name": "joined", "type": "datetime"},
        {"name": "active", "type": "boolean", "default": True},
    ],
}


@pytest.fixture(params=sorted(BACKENDS))
def make_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., SyncDatabase]]:
    made: list[SyncDatabase] = []

    def make(**extra: Any) -> SyncDatabase:
        backend, config = BACKENDS[request.param](tmp_path)
        db = database_factory.create(backend=backend, **config, **extra)
        db.connect()
        made.append(db)
        return db

    yield make
    for db in made:
        db.close()


@pytest.fixture(params=sorted(BACKENDS))
async def make_adb(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., AsyncDatabase]]:
    made: list[AsyncDatabase] = []

    def make(**extra: Any) -> AsyncDatabase:
        backend, config = BACKENDS[request.param](tmp_path)
        db = async_database_factory.create(backend=backend, **config, **extra)
        made.append(db)
        return db

    yield make
    for db in made:
        await db.close()


def test_valid_records_are_written(make_db: Callable[..., SyncDatabase]) -> None:
    db = make_db(schema=people())
    rid = db.create(Record({"name": "ada", "age": 36}, id="a"))
    assert rid == "a"
    stored = db.read("a")
    assert stored is not None and stored.data == {"name": "ada", "age": 36, "active": True}


def test_invalid_create_raises_and_writes_nothing(make_db: Callable[..., SyncDatabase]) -> None:
    db = make_db(schema=people())
    with pytest.raises(RecordValidationError) as info:
        db.create(Record({"name": "ada", "age": "36"}, id="a"))
    exc = info.value
    assert exc.field_name == "age"
    assert str(exc) == "Field 'age': expects type INTEGER, got str"
    with pytest.raises(RecordValidationError, match="Field 'name': value is required"):
        db.create(Record({"age": 3}))
    with pytest.raises(RecordValidationError) as info:
        db.create(Record({"age": 200, "joined": "2024-01-01"}))
    assert info.value.field_name == "name"
    assert str(info.value) == "Field 'name': value is required (also invalid: age, joined)"
    assert info.value.details["invalid"][0]["errors"] == [
        "Field 'name' is required",
        "Field 'age': Value 200 is greater than maximum 150",
        "Field 'joined' expects type DATETIME, got str",
    ]
    assert db.count() == 0


def test_coerced_values_are_stored_coerced(make_db: Callable[..., SyncDatabase]) -> None:
    db = make_db(schema=people(), schema_coerce=True)
    original = Record({"name": "bo", "age": " 41 ", "joined": "2024-05-01T10:00:00Z"}, id="b")
    db.create(original)
    stored = db.read("b")
    assert stored is not None
    assert stored["age"] == 41
    assert stored["joined"] == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert stored["active"] is True
    assert original["age"] == " 41 " and "active" not in original  # the caller's record
    assert db.search(Query().filter("age", ">", 40))[0].id == "b"
    with pytest.raises(RecordValidationError, match="Cannot coerce str to int"):
        db.create(Record({"name": "x", "age": "old"}))
    assert db.count() == 1


def test_update_and_upsert_are_validated(make_db: Callable[..., SyncDatabase]) -> None:
    db = make_db(schema=people(), schema_coerce=True)
    db.create(Record({"name": "a", "age": 1}, id="a"))
    with pytest.raises(RecordValidationError):
        db.update("a", Record({"name": "a", "age": -1}))
    with pytest.raises(RecordValidationError):
        db.upsert("a", Record({"age": 2}))
    with pytest.raises(RecordValidationError):
        db.upsert(Record({"name": "n", "age": "x"}, id="new"))
    assert db.read("a") == Record({"name": "a", "age": 1, "active": True}, id="a")
    assert not db.exists("new")
    assert db.update("a", Record({"name": "a", "age": "2"}))
    assert db.upsert(Record({"name": "n", "age": "3"}, id="new")) == "new"
    assert db.upsert(id_or_record="z", record=Record({"name": "z", "age": "4"})) == "z"
    ages = {r.id: r["age"] for r in db.all()}
    assert ages == {"a": 2, "new": 3, "z": 4}


def test_batch_verbs_list_invalid_records_and_write_nothing(
    make_db: Callable[..., SyncDatabase],
) -> None:
    db = make_db(schema=people())
    batch = [
        Record({"name": "a", "email": "x@y"}, id="a"),
        Record({"name": "b", "age": "old"}, id="b"),
        Record({"name": "c", "email": "x@y"}, id="c"),
        Record({"age": 1}),
    ]
    with pytest.raises(RecordValidationError) as info:
        db.create_batch(batch)
    assert str(info.value) == (
        "3 of 4 records failed schema 'people': "
        "#1 (id 'b'): Field 'age' expects type INTEGER, got str; "
        "#2 (id 'c'): Field 'email': Duplicate value 'x@y' for field 'email'; "
        "#3: Field 'name' is required"
    )
    assert [i["index"] for i in info.value.details["invalid"]] == [1, 2, 3]
    assert db.count() == 0
    with pytest.raises(RecordValidationError):
        db.upsert_batch(batch)
    assert db.count() == 0
    db.create(Record({"name": "a"}, id="a"))
    with pytest.raises(RecordValidationError, match="1 of 2 records"):
        db.update_batch([("a", Record({"name": "a2"})), ("a", Record({"name": ""}))])
    stored = db.read("a")
    assert stored is not None and stored["name"] == "a"
    assert db.create_batch([Record({"name": "d"}, id="d"), Record({"name": "e"}, id="e")]) == [
        "d",
        "e",
    ]
    assert db.update_batch([("d", Record({"name": "d2"}))]) == [True]
    assert db.count() == 3


def test_unique_spans_a_batch_not_the_stored_data(make_db: Callable[..., SyncDatabase]) -> None:
    db = make_db(schema=people())
    db.create_batch([Record({"name": "a", "email": "e"}), Record({"name": "b", "email": "f"})])
    db.create(Record({"name": "c", "email": "e"}))
    assert db.count() == 3


def test_stream_write_reports_each_invalid_record(make_db: Callable[..., SyncDatabase]) -> None:
    db = make_db(schema=people(), schema_coerce=True)
    records = [Record({"name": f"n{i}", "age": str(i)}, id=f"r{i}") for i in range(7)]
    records[2] = Record({"name": "bad", "age": "x"}, id="r2")
    records[5] = Record({"age": 5}, id="r5")
    result = db.stream_write(iter(records), StreamConfig(batch_size=3, on_error=lambda e, r: True))
    assert (result.successful, result.failed) == (5, 2)
    assert result.failed_indices == [2, 5]
    assert [e["index"] for e in result.errors] == [2, 5]
    assert {e["type"] for e in result.errors} == {"RecordValidationError"}
    assert db.count() == 5
    stored = db.read("r4")
    assert stored is not None and stored["age"] == 4
    skip = db.stream_write(
        [Record({"name": "r0 again"}, id="r0"), Record({"name": "new", "age": "9"}, id="r9")],
        StreamConfig(on_conflict=ConflictPolicy.SKIP),
    )
    assert (skip.successful, skip.skipped) == (1, 1)
    stored = db.read("r9")
    assert stored is not None and stored["age"] == 9


def test_dict_spec_is_accepted(make_db: Callable[..., SyncDatabase]) -> None:
    db = make_db(schema=SPEC)
    assert isinstance(db.validation_schema, Schema)
    assert db.validation_schema.name == "people"
    with pytest.raises(RecordValidationError, match="Field 'age'"):
        db.create(Record({"name": "x", "age": 999}))


def test_without_schema_nothing_changes(make_db: Callable[..., SyncDatabase]) -> None:
    db = make_db()
    assert db.validation_schema is None
    assert "create" not in vars(db)
    db.create(Record({"age": "anything"}))
    assert db.count() == 1


def test_config_errors() -> None:
    with pytest.raises(ConfigurationError, match="'schema'"):
        database_factory.create(backend="memory", schema=42)
    with pytest.raises(ConfigurationError, match="'schema'"):
        database_factory.create(backend="memory", schema={"fields": [{"name": "a", "type": "?"}]})
    with pytest.raises(ConfigurationError, match="'schema_coerce'"):
        database_factory.create(backend="memory", schema=people(), schema_coerce="yes")
    with pytest.raises(ConfigurationError, match="bogus"):
        database_factory.create(backend="sqlite", schema=people(), bogus=1)
    with pytest.raises(ConfigurationError, match="needs a 'schema'"):
        database_factory.create(backend="memory", schema_coerce=True)
    assert database_factory.create(backend="memory", schema=None).validation_schema is None
    db = database_factory.create(backend="sqlite", schema=people(), schema_coerce=False)
    assert "schema" not in db.config and "schema_coerce" not in db.config


def test_user_subclass_gets_validation_too() -> None:
    class DictDB(SyncDatabase):
        def __init__(self, config: dict[str, Any] | None = None) -> None:
            super().__init__(config)
            self.rows: dict[str, Record] = {}

        def create(self, record: Record) -> str:
            rid = record.id or str(len(self.rows))
            self.rows[rid] = record.copy()
            return rid

        def read(self, id: str) -> Record | None:
            return self.rows.get(id)

        def update(self, id: str, record: Record) -> bool:
            if id not in self.rows:
                return False
            self.rows[id] = record.copy()
            return True

        def delete(self, id: str) -> bool:
            return self.rows.pop(id, None) is not None

        def search(self, query: Any) -> list[Record]:
            return list(self.rows.values())

    db = DictDB({"schema": people(), "schema_coerce": True})
    db.upsert("a", Record({"name": "a", "age": "5"}))  # the default upsert calls update, create
    assert db.rows["a"]["age"] == 5
    with pytest.raises(RecordValidationError):
        db.create_batch([Record({"name": "b"}), Record({"age": 1})])
    assert list(db.rows) == ["a"]


def test_enum_schema_on_sqlite_with_reopen(tmp_path: Path) -> None:
    schema = Schema("s", strict=True).field("kind", "string", constraints=[Enum(["a", "b"])])
    path = str(tmp_path / "s.db")
    with SyncDatabase.from_backend("sqlite", {"path": path, "schema": schema}) as db:
        db.create(Record({"kind": "a"}, id="1"))
        with pytest.raises(RecordValidationError, match="unknown field in strict schema 's'"):
            db.create(Record({"kind": "a", "extra": 1}))
    with SyncDatabase.from_backend("sqlite", {"path": path}) as db:
        assert db.count() == 1


# ---------------------------------------------------------------- async


async def test_async_verbs_validate(make_adb: Callable[..., AsyncDatabase]) -> None:
    db = make_adb(schema=people(), schema_coerce=True)
    await db.connect()
    assert await db.create(Record({"name": "a", "age": "1"}, id="a")) == "a"
    with pytest.raises(RecordValidationError) as info:
        await db.create(Record({"name": "b", "age": "x"}))
    assert info.value.field_name == "age"
    with pytest.raises(RecordValidationError, match="1 of 2 records"):
        await db.create_batch([Record({"name": "c"}), Record({"name": ""})])
    with pytest.raises(RecordValidationError):
        await db.update("a", Record({"name": None}))
    with pytest.raises(RecordValidationError):
        await db.upsert_batch([Record({"age": 1})])
    with pytest.raises(RecordValidationError):
        await db.update_batch([("a", Record({"age": -5, "name": "a"}))])
    assert await db.count() == 1
    assert await db.upsert(Record({"name": "z", "age": "7"}, id="z")) == "z"
    assert await db.update("a", Record({"name": "a", "age": "3"}))
    stored = await db.read("a")
    assert stored is not None and stored["age"] == 3
    result = await db.stream_write(
        [Record({"name": "s1"}), Record({"name": None}), Record({"name": "s3"})],
        StreamConfig(batch_size=10, on_error=lambda e, r: True),
    )
    assert (result.successful, result.failed) == (2, 1)
    assert [e["index"] for e in result.errors] == [1]
    assert await db.count() == 4


async def test_async_without_coercion(tmp_path: Path) -> None:
    db = await AsyncDatabase.from_backend(
        "sqlite", {"path": str(tmp_path / "a.db"), "schema": SPEC}
    )
    try:
        with pytest.raises(RecordValidationError, match="expects type INTEGER, got str"):
            await db.create(Record({"name": "a", "age": "1"}))
        assert await db.count() == 0
    finally:
        await db.close()
