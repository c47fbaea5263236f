"""db.to_arrow / stream_arrow / write_arrow on every backend (Python over pyarrow)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from dataknobs_data import AsyncDatabase, Query, Record, SyncDatabase
from dataknobs_data.arrow import infer_schema
from dataknobs_data.exceptions import (
    DatabaseOperationError,
    DuplicateRecordError,
    SerializationError,
)

from .test_pandas import by_id, typed_records

SCHEMA = {
    "id": "string",
    "string": "string",
    "text": "string",
    "integer": "int64",
    "float": "double",
    "boolean": "bool",
    "utc": "timestamp[us, tz=UTC]",
    "naive": "timestamp[us]",
    "json_dict": "string",
    "json_list": "string",
    "binary": "binary",
}


def check_schema(schema: pa.Schema) -> None:
    types = {f.name: str(f.type) for f in schema}
    assert {k: types[k] for k in SCHEMA} == SCHEMA
    assert types["paris"].startswith("timestamp[us, tz=")
    assert schema.names[0] == "id" and not schema.field("id").nullable
    assert schema.field("json_dict").metadata == {b"dataknobs.type": b"json"}


def test_arrow_round_trip_every_field_type_with_nulls(db: SyncDatabase) -> None:
    db.create_batch(typed_records())
    table = db.to_arrow(batch_size=4)
    check_schema(table.schema)
    assert table.num_rows == 10 and table.column("integer").null_count == 3
    assert [b.num_rows for b in db.stream_arrow(batch_size=4)] == [4, 4, 2]
    db.clear()
    assert db.write_arrow(table) == [f"r{i}" for i in range(10)]
    assert by_id(db.all()) == by_id(typed_records())
    with pytest.raises(DuplicateRecordError):
        db.write_arrow(table.slice(0, 2))
    # A later batch that fails leaves the batches before it stored, and says which.
    later = pa.table({"id": ["x1", "r3"], "integer": [1, 2]}).to_batches(max_chunksize=1)
    with pytest.raises(DatabaseOperationError, match="Arrow batch 2 failed") as info:
        db.write_arrow(later)
    assert info.value.written == ["x1"]  # type: ignore[attr-defined]
    assert info.value.not_written == ["r3"]  # type: ignore[attr-defined]
    assert db.read("x1") is not None and db.count() == 11


async def test_arrow_round_trip_async(adb: AsyncDatabase) -> None:
    assert await adb.write_arrow(pa.Table.from_pylist([])) == []
    await adb.create_batch(typed_records())
    table = await adb.to_arrow(Query().filter("integer", ">=", 0).sort_by("integer"))
    check_schema(table.schema)
    assert table.column("id").to_pylist()[:3] == ["r0", "r2", "r3"]
    sizes = [b.num_rows async for b in adb.stream_arrow(batch_size=3)]
    assert sizes == [3, 3, 3, 1]
    await adb.clear()
    assert len(await adb.write_arrow(table.to_batches(max_chunksize=2))) == 7
    assert by_id(await adb.all()) == {
        k: v for k, v in by_id(typed_records()).items() if k not in ("r1", "r4", "r7")
    }


def test_columns_schema_and_values_that_do_not_fit() -> None:
    db = SyncDatabase.from_backend("memory")
    db.create_batch(
        [
            Record({"n": 1, "when": date(2024, 1, 2), "price": Decimal("1.10")}, id="a"),
            Record({"n": None, "when": None, "price": None, "late": "x"}, id="b"),
        ]
    )
    with pytest.raises(SerializationError, match="record 'b': field 'late' is not in the schema"):
        db.to_arrow(batch_size=1)
    table = db.to_arrow()
    assert str(table.schema.field("when").type) == "date32[day]"
    assert table.column("price").to_pylist() == ['{"$decimal":"1.10"}', None]
    assert db.to_arrow(columns=["n"]).to_pydict() == {"id": ["a", "b"], "n": [1, None]}
    as_text = pa.schema([pa.field("id", pa.string(), nullable=False), ("late", pa.string())])
    assert db.to_arrow(schema=as_text).column("late").to_pylist() == [None, "x"]
    wrong = pa.schema([pa.field("id", pa.string(), nullable=False), ("late", pa.int64())])
    with pytest.raises(SerializationError, match="record 'b', field 'late': str value 'x'"):
        db.to_arrow(schema=wrong)

    copy = SyncDatabase.from_backend("memory")
    copy.write_arrow(table)
    # A table has no "missing": the field record "a" lacks comes back as None.
    assert copy.read("a").data == {**db.read("a").data, "late": None}  # type: ignore[union-attr]
    assert copy.read("b").data == db.read("b").data  # type: ignore[union-attr]


def test_write_arrow_without_ids_and_with_a_data_id_field() -> None:
    db = SyncDatabase.from_backend("memory")
    ids = db.write_arrow(pa.table({"v": [1, 2]}))
    assert len(set(ids)) == 2 and sorted(r["v"] for r in db.all()) == [1, 2]
    carried = pa.table({"id": ["k1", None], "v": [3, 4]})
    new = db.write_arrow(carried)
    assert new[0] == "k1" and db.read("k1")["id"] == "k1"  # type: ignore[index]
    when = datetime(2024, 1, 1, tzinfo=UTC)
    schema = infer_schema([Record({"t": when, "b": True})])
    assert [str(f.type) for f in schema] == ["string", "timestamp[us, tz=UTC]", "bool"]
