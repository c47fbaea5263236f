"""Nothing a write accepts is unreadable later, and no stream ends early without an error.

Each backend of the conformance suite stores the deepest value a write accepts and reads it
back by every read verb; one level deeper is refused before anything is stored. Rows that
another program wrote past the limit, or that no reader accepts, are reported by name, and a
stream that meets one raises instead of ending as if the results were complete.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dataknobs_data import Query, Record, SyncDatabase
from dataknobs_data.exceptions import DataFormatError, SerializationError
from dataknobs_data.factory import database_factory

from .conftest import BACKENDS

LIMIT = 256


def nested(depth: int, leaf: Any = 1, as_dict: bool = False) -> Any:
    """A value with ``depth`` containers below the field, ``leaf`` innermost."""
    value = leaf
    for _ in range(depth):
        # "$date" as a key makes every level need the codec's `$map` escape.
        value = {"$date": value} if as_dict else [value]
    return value


@pytest.mark.parametrize("as_dict", [False, True], ids=["lists", "tag-like-dicts"])
def test_the_deepest_value_a_write_accepts_reads_back_everywhere(
    db: SyncDatabase, as_dict: bool
) -> None:
    deepest = nested(LIMIT, "leaf", as_dict)
    db.create(Record({"deep": deepest, "n": 1}, id="deep"))
    db.create(Record({"n": 2}, id="flat"))
    got = db.read("deep")
    assert got is not None and got["deep"] == deepest
    assert [r.id for r in db.search(Query().filter("n", ">=", 1))] == ["deep", "flat"]
    assert [r.id for r in db.stream_read()] == ["deep", "flat"]
    assert [r["deep"] for r in db.search(Query().filter("n", "=", 1))] == [deepest]
    assert db.count() == 2


def test_one_level_deeper_is_refused_and_nothing_is_stored(db: SyncDatabase) -> None:
    db.create(Record({"n": 0}, id="kept"))
    too_deep = nested(LIMIT + 1)
    with pytest.raises(SerializationError, match=f"nested more than {LIMIT} levels"):
        db.create(Record({"deep": too_deep}, id="deep"))
    with pytest.raises(SerializationError, match=f"nested more than {LIMIT} levels"):
        db.create_batch([Record({"n": 1}, id="a"), Record({"deep": too_deep}, id="b")])
    with pytest.raises(SerializationError, match=f"nested more than {LIMIT} levels"):
        db.upsert(Record({"deep": too_deep}, id="kept"))
    assert [r.to_dict() for r in db.search(Query())] == [{"n": 0, "_id": "kept"}]


def _sqlite_with_rows(tmp_path: Path, bad: dict[str, str]) -> SyncDatabase:
    """A SQLite database holding r0..r9, then rows written by another program."""
    path = tmp_path / "other.sqlite"
    database = database_factory.create(backend="sqlite", path=str(path))
    database.connect()
    database.create_batch([Record({"n": i}, id=f"r{i}") for i in range(10)])
    with sqlite3.connect(path) as raw:
        raw.executemany(
            "INSERT INTO records (id, data, metadata) VALUES (?, ?, '{}')", list(bad.items())
        )
    return database


def test_a_row_written_too_deep_elsewhere_is_reported_by_name(tmp_path: Path) -> None:
    deep = json.dumps({"deep": nested(LIMIT + 50)})
    database = _sqlite_with_rows(tmp_path, {"elsewhere": deep})
    for read in (
        lambda: database.read("elsewhere"),
        lambda: database.search(Query()),
        lambda: list(database.stream_read()),
    ):
        with pytest.raises(DataFormatError, match=r"elsewhere.*nested more than 256 levels"):
            read()
    # The other rows are still there and readable.
    assert database.count(Query().filter("n", ">=", 0)) == 10
    database.close()


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_a_stream_that_meets_an_unreadable_row_raises_after_the_good_pages(
    tmp_path: Path, batch_size: int
) -> None:
    database = _sqlite_with_rows(tmp_path, {"broken": '{"n": 11, "d": {"$date": "nope"}}'})
    database.create_batch([Record({"n": 20 + i}, id=f"after{i}") for i in range(5)])
    from dataknobs_data.streaming import StreamConfig

    seen: list[str] = []
    with pytest.raises((DataFormatError, SerializationError), match="broken"):
        for record in database.stream_read(config=StreamConfig(batch_size=batch_size)):
            seen.append(str(record.id))
    # Rows before the bad one may come in pages that precede it, never rows after it quietly.
    assert seen == [f"r{i}" for i in range(len(seen))]
    assert len(seen) <= 10
    database.close()


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_producer_says_where_its_stream_ends(name: str, tmp_path: Path) -> None:
    backend, config = BACKENDS[name](tmp_path)
    database = database_factory.create(backend=backend, **config)
    database.connect()
    try:
        database.create_batch([Record({"n": i}, id=f"r{i:04d}") for i in range(2_500)])
        from dataknobs_data.streaming import StreamConfig

        for batch_size in (1, 7, 1000):
            got = [r.id for r in database.stream_read(config=StreamConfig(batch_size=batch_size))]
            assert got == [f"r{i:04d}" for i in range(2_500)]
    finally:
        database.close()


@pytest.mark.parametrize(
    ("data", "record_id", "what"),
    [
        ({"s": "a\x00b"}, "r", "NUL"),
        ({"nested": {"k": ["ok", "a\x00"]}}, "r", "NUL"),
        ({"a\x00b": 1}, "r", "NUL"),
        ({"d": {"k\x00": 1}}, "r", "NUL"),
        ({"s": "x"}, "id\x00", "NUL"),
        ({"s": "\ud800"}, "r", "lone surrogate"),
        ({"d": {"\udfff": 1}}, "r", "lone surrogate"),
        ({"n": 2**64}, "r", "int"),
        ({"n": [-(2**63) - 1]}, "r", "int"),
    ],
    ids=[
        "nul",
        "nul-nested",
        "nul-field",
        "nul-key",
        "nul-id",
        "surrogate",
        "surrogate-key",
        "big-int",
        "big-negative-int",
    ],
)
def test_values_some_backend_cannot_store_are_refused_by_all(
    db: SyncDatabase, data: dict[str, Any], record_id: str, what: str
) -> None:
    db.create(Record({"n": 0}, id="kept"))
    writes = [
        lambda: db.create(Record(data, id=record_id)),
        lambda: db.create_batch([Record({"n": 1}, id="a"), Record(data, id=record_id)]),
        lambda: db.upsert(Record(data, id=record_id)),
    ]
    if record_id == "r":
        writes.append(lambda: db.update("kept", Record(data)))
    for write in writes:
        with pytest.raises(SerializationError, match=what):
            write()
    if record_id != "r":
        # An update of an id no write accepts finds nothing, or refuses the id; never stores.
        try:
            assert db.update(record_id, Record(data)) is False
        except SerializationError as exc:
            assert what in str(exc)
    assert [r.to_dict() for r in db.search(Query())] == [{"n": 0, "_id": "kept"}]


def test_what_a_filter_holds_is_never_refused(db: SyncDatabase) -> None:
    # Filter values are not stored: a NUL or a 64-bit overflow there just matches nothing.
    db.create(Record({"s": "ab", "n": 1}, id="r"))
    assert db.search(Query().filter("s", "=", "a\x00b")) == []
    assert db.count(Query().filter("s", "in", ["ab", "a\x00"])) == 1


def test_negative_zero_keeps_its_value_everywhere(db: SyncDatabase) -> None:
    # -0.0 == 0.0 in Python; PostgreSQL's JSONB keeps no sign of zero (README: differences).
    db.create(Record({"z": -0.0}, id="r"))
    got = db.read("r")
    assert got is not None and got["z"] == 0.0 and isinstance(got["z"], float)
    assert db.count(Query().filter("z", "=", 0)) == 1
