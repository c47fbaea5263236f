"""The native Arrow helpers: rows to Arrow buffers and back, and TextShaper over batches."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest

from dataknobs_data import _native
from dataknobs_data.exceptions import DataFormatError, SerializationError

ROWS = [
    (f"r{i}", {"i": i, "city": "a" if i % 3 == 0 else "b", "d": date(2024, 1, 1 + i)}, {"m": i})
    for i in range(10)
]


def _batch(rows: list[tuple[str, dict[str, object], dict[str, object]]]) -> pa.RecordBatch:
    arrays = [
        pa.Array.from_buffers(
            pa.large_string(), len(rows), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        for offsets, data in _native.encode_rows_arrow(rows)
    ]
    return pa.RecordBatch.from_arrays(arrays, names=["id", "data", "metadata"])


def test_rows_round_trip_through_arrow_buffers() -> None:
    rows = [*ROWS, ("x", {"p": Decimal("1.10"), "b": b"\x00"}, {})]
    assert _native.rows_from_arrow(_batch(rows), "test") == rows


def test_sliced_small_string_arrays_with_nulls_are_read_in_place() -> None:
    batch = _batch(ROWS)
    small = pa.RecordBatch.from_arrays(
        [
            batch.column(0).cast(pa.string()),
            batch.column(1).cast(pa.string()),
            pa.array([None] * len(ROWS), pa.string()),
        ],
        names=["id", "data", "metadata"],
    ).slice(3, 4)
    got = _native.rows_from_arrow(small, "test")
    assert got == [(r[0], r[1], {}) for r in ROWS[3:7]]


@pytest.mark.parametrize("sort", [[], [("i", True)]])
def test_text_shaper_matches_the_evaluator_across_batches(sort: list[tuple[str, bool]]) -> None:
    cond = ("filter", "city", "=", "a")
    spec = {"where": cond, "sort": sort, "offset": 1, "limit": 2, "fields": ["i"]}
    shaper = _native.TextShaper(spec, "test")
    got = []
    for start in range(0, len(ROWS), 3):
        shaper.feed(_batch(ROWS[start : start + 3]))
        got += shaper.take()
    got += shaper.finish()
    hits = [r for r in ROWS if _native.matches(cond, r)]
    if sort:
        hits.sort(key=lambda r: r[1]["i"], reverse=True)
    assert got == [(r[0], {"i": r[1]["i"]}, r[2]) for r in hits[1:3]]
    assert _native.TextShaper({"where": cond}, "t").count(_batch(ROWS)) == len(hits)


def test_bad_input_raises_typed_errors() -> None:
    with pytest.raises(SerializationError):
        _native.encode_rows_arrow([("a", {"s": {1, 2}}, {})])
    bad = pa.RecordBatch.from_arrays(
        [pa.array(["a"]), pa.array(["{not json"]), pa.array(["{}"])],
        names=["id", "data", "metadata"],
    )
    with pytest.raises(DataFormatError, match=r'record "a" in duckdb table'):
        _native.TextShaper(None, "duckdb table").feed(bad)
    with pytest.raises(TypeError, match="string"):
        _native.rows_from_arrow(
            pa.RecordBatch.from_arrays([pa.array([1])] * 3, ["a", "b", "c"]), "t"
        )
