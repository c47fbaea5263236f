"""Arrow built in the Rust core: the PyCapsule hand-over, typed errors from stored text,
projection, and a stream abandoned midway."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from dataknobs_data import AsyncDatabase, Query, Record, SyncDatabase, _native
from dataknobs_data.exceptions import (
    DatabaseOperationError,
    DuplicateRecordError,
    SerializationError,
)
from dataknobs_data.factory import async_database_factory, database_factory

from .conftest import BACKENDS
from .test_pandas import by_id, typed_records


def _open(name: str, tmp_path: Path) -> SyncDatabase:
    backend, config = BACKENDS[name](tmp_path)
    db = database_factory.create(backend=backend, **config)
    db.connect()
    return db


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def native_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SyncDatabase]:
    """Stores whose pages are decoded rows (memory, SQLite) and stored text (PostgreSQL)."""
    db = _open(request.param, tmp_path)
    yield db
    db.clear()
    db.close()


def _rows(n: int) -> list[Record]:
    return [Record({"n": i, "name": f"v{i}", "half": i / 2}, id=f"k{i:03d}") for i in range(n)]


def test_a_cursor_goes_to_pyarrow_through_the_capsule_interface(native_db: SyncDatabase) -> None:
    native_db.create_batch(_rows(25))
    cursor = native_db._call("stream", None, 10, 1)  # type: ignore[attr-defined]
    stream = _native.ArrowStream(cursor)
    reader = pa.RecordBatchReader.from_stream(stream)
    # (JSONB keeps keys in its own order, so the fields' order is the store's.)
    types = {f.name: str(f.type) for f in reader.schema}
    assert types == {"id": "string", "n": "int64", "name": "string", "half": "double"}
    assert reader.schema.names[0] == "id"
    table = reader.read_all()
    assert table.num_rows == 25 and table.column("n").to_pylist() == list(range(25))
    # The same cursor again through pa.table: the stream is spent, the schema stays.
    cursor = native_db._call("stream", None, 7, 1)  # type: ignore[attr-defined]
    table = pa.table(_native.ArrowStream(cursor, None, ["name"]))
    assert table.schema.names == ["id", "name"] and table.num_rows == 25


def test_values_that_do_not_fit_name_the_record_and_field(native_db: SyncDatabase) -> None:
    native_db.create_batch([*_rows(3), Record({"n": "three", "late": 1}, id="k999")])
    with pytest.raises(SerializationError, match="record 'k999': field 'late' is not in the"):
        native_db.to_arrow(batch_size=3)
    wrong = pa.schema([pa.field("id", pa.string(), nullable=False), ("n", pa.int64())])
    with pytest.raises(SerializationError, match="record 'k999', field 'n': str value 'three'"):
        native_db.to_arrow(schema=wrong)
    # A consumer of the C stream gets the same message through Arrow's error channel.
    cursor = native_db._call("stream", None, 3, 1)  # type: ignore[attr-defined]
    with pytest.raises(pa.ArrowException, match="record 'k999', field 'n'"):
        pa.table(_native.ArrowStream(cursor, wrong))
    # columns= picks fields, so a field outside them is no error.
    table = native_db.to_arrow(columns=["late"])
    assert table.column("late").to_pylist() == [None, None, None, 1]
    assert table.column("id").to_pylist() == ["k000", "k001", "k002", "k999"]


def test_query_window_sort_and_projection(native_db: SyncDatabase) -> None:
    native_db.create_batch(_rows(30))
    query = Query().filter("n", ">=", 10).sort_by("n", "desc").offset(2).limit(5)
    table = native_db.to_arrow(query, columns=["n"], batch_size=2)
    assert table.to_pydict() == {
        "id": ["k027", "k026", "k025", "k024", "k023"],
        "n": [27, 26, 25, 24, 23],
    }
    assert native_db.to_arrow(Query().filter("n", "<", 0)).schema.names == ["id"]


def test_an_abandoned_stream_stops_its_producer(native_db: SyncDatabase) -> None:
    native_db.create_batch(_rows(50))
    batches = native_db.stream_arrow(batch_size=5)
    assert next(batches).num_rows == 5
    batches.close()  # type: ignore[attr-defined]
    # The store is usable at once (a PostgreSQL stream held a pooled connection).
    assert native_db.count() == 50
    assert sum(b.num_rows for b in native_db.stream_arrow(batch_size=7)) == 50


async def test_async_native_stream(tmp_path: Path) -> None:
    backend, config = BACKENDS["postgres"](tmp_path)
    adb: AsyncDatabase = async_database_factory.create(backend=backend, **config)
    await adb.connect()
    try:
        await adb.create_batch(_rows(12))
        sizes = [b.num_rows async for b in adb.stream_arrow(batch_size=5)]
        assert sizes == [5, 5, 2]
        table = await adb.to_arrow(columns=["half"])
        assert table.column("half").to_pylist() == [i / 2 for i in range(12)]
        await adb.clear()
    finally:
        await adb.close()


def test_write_arrow_builds_rows_in_rust(native_db: SyncDatabase) -> None:
    table = pa.table(
        {
            "id": pa.array(["a", None, "c"]),
            "n": pa.array([1, None, 3], pa.int32()),
            "when": pa.array([0, 1_000_000, None], pa.timestamp("us", tz="UTC")),
            "tags": pa.array([["x"], [], None], pa.list_(pa.string())),
        }
    )
    ids = native_db.write_arrow(table)
    assert ids[0] == "a" and ids[2] == "c" and len(ids[1]) == 36
    back = {r.id: r.data for r in native_db.all()}
    # A nullable id column stays a data field too (to_arrow's own id column does not).
    assert back["a"]["n"] == 1 and back["a"]["id"] == "a" and back["a"]["tags"] == ["x"]
    assert back[ids[1]]["n"] is None and back[ids[1]]["when"].timestamp() == 1.0
    # One create_batch per batch: a batch with a taken id writes nothing of itself, and the
    # error says what the batches before it stored.
    again = pa.table({"id": ["new", "a"], "n": [5, 6]}).to_batches(max_chunksize=1)
    with pytest.raises(DatabaseOperationError, match=r"Arrow batch 2 failed: .*'a'") as info:
        native_db.write_arrow(again)
    assert info.value.written == ["new"]  # type: ignore[attr-defined]
    assert info.value.not_written == ["a"]  # type: ignore[attr-defined]
    assert native_db.read("new") is not None and native_db.count() == 4
    # Nothing stored: the cause itself.
    with pytest.raises(DuplicateRecordError):
        native_db.write_arrow(pa.table({"id": ["a"], "n": [7]}))
    assert native_db.write_arrow([]) == []
    odd = pa.table({"id": ["z"], "c": pa.array(["v"]).dictionary_encode()})
    with pytest.raises(SerializationError, match="record 'z', field 'c': Arrow type"):
        native_db.write_arrow(odd)
    with pytest.raises(ValueError, match="__arrow_c_stream__"):
        native_db._ensure_store().create_from_arrow(object())  # type: ignore[attr-defined]


def _batches(pulled: list[int], bad_at: int, size: int = 4) -> Iterator[pa.RecordBatch]:
    """Batches of `size` rows, `pulled` counting those taken; batch `bad_at` holds a uint64
    beyond the signed range the value model holds."""
    for b in range(6):
        pulled.append(b)
        n = [b * size + i for i in range(size)]
        if b == bad_at:
            n[1] = 2**63
        ids = [f"w{v:03d}" for v in range(b * size, (b + 1) * size)]
        yield pa.record_batch({"id": ids, "n": pa.array(n, pa.uint64())})


def test_write_arrow_stores_batch_by_batch_up_to_a_bad_one(native_db: SyncDatabase) -> None:
    pulled: list[int] = []
    with pytest.raises(DatabaseOperationError) as info:
        native_db.write_arrow(_batches(pulled, bad_at=2))
    message = str(info.value)
    assert "Arrow batch 3 failed: record 'w009', field 'n': 9223372036854775808 is beyond" in (
        message
    )
    assert "8 records of the 2 batches before it stored" in message
    written: list[str] = info.value.written  # type: ignore[attr-defined]
    assert written == [f"w{v:03d}" for v in range(8)]
    assert info.value.not_written == []  # type: ignore[attr-defined]
    # The earlier batches are stored and readable; nothing of the bad one or after it.
    assert sorted(r.id for r in native_db.all()) == written
    assert native_db.read("w007").data["n"] == 7  # type: ignore[union-attr]
    # The generator was read as the writer went, not drained first: it stopped at the bad
    # batch (the reader converts one batch ahead of the writer, never further).
    assert pulled == [0, 1, 2]
    # A bad first batch stores nothing and raises the cause, naming the record and field.
    native_db.clear()
    with pytest.raises(SerializationError, match="record 'w001', field 'n'"):
        native_db.write_arrow(_batches([], bad_at=0))
    assert native_db.count() == 0


async def test_async_write_arrow_stops_at_a_bad_batch(tmp_path: Path) -> None:
    backend, config = BACKENDS["postgres"](tmp_path)
    adb: AsyncDatabase = async_database_factory.create(backend=backend, **config)
    await adb.connect()
    try:
        with pytest.raises(DatabaseOperationError, match="record 'w005', field 'n'") as info:
            await adb.write_arrow(_batches([], bad_at=1))
        assert info.value.written == [f"w{v:03d}" for v in range(4)]  # type: ignore[attr-defined]
        assert await adb.count() == 4
        await adb.clear()
        assert len(await adb.write_arrow(_batches([], bad_at=-1))) == 24
        assert await adb.count() == 24
        await adb.clear()
    finally:
        await adb.close()


def test_to_arrow_then_write_arrow_round_trips(native_db: SyncDatabase, tmp_path: Path) -> None:
    native_db.create_batch(typed_records())
    copy = _open("memory", tmp_path)
    assert copy.write_arrow(native_db.to_arrow()) == [f"r{i}" for i in range(10)]
    assert by_id(copy.all()) == by_id(typed_records())


def test_to_pandas_keeps_nulls_out_of_int_columns(native_db: SyncDatabase) -> None:
    native_db.create_batch([Record({"n": 1, "ok": True}, id="a"), Record({"n": None}, id="b")])
    df = native_db.to_pandas(Query().sort_by("n"))
    assert str(df["n"].dtype) == "Int64" and str(df["ok"].dtype) == "boolean"
    assert df["n"].isna().tolist() == [False, True] and list(df["id"]) == ["a", "b"]


def test_to_polars(native_db: SyncDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    import polars as pl

    native_db.create_batch(_rows(4))
    frame = native_db.to_polars(columns=["n"])
    assert isinstance(frame, pl.DataFrame) and frame["n"].to_list() == [0, 1, 2, 3]
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ImportError, match=r"dataknobs-data\[polars\]"):
        native_db.to_polars()
