"""TypeMapper, value by value: the answers dataknobs-data 0.11.0 gives (checked against it),
except where noted, where ours hands back plain Python values instead of numpy ones."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dataknobs_data.fields import FieldType
from dataknobs_data.pandas import TypeMapper
from dataknobs_data.pandas.type_mapper import to_python

MAPPER = TypeMapper()
STAMP = pd.Timestamp("2024-01-02 03:04:05")
PYSTAMP = dt.datetime(2024, 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("category", FieldType.STRING),  # no family matches: STRING
        ("bytes", FieldType.BINARY),
        ("timestamp[ns]", FieldType.DATETIME),
        ("float32", FieldType.FLOAT),
        ("Int8", FieldType.INTEGER),
        ("object", FieldType.STRING),
    ],
)
def test_pandas_to_field_type(dtype: str, expected: FieldType) -> None:
    assert MAPPER.pandas_to_field_type(dtype) is expected


def test_field_type_to_pandas_of_an_unmapped_type_is_object() -> None:
    assert MAPPER.field_type_to_pandas("no such type") == "object"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "field_type", "expected"),
    [
        ("2024-01-02T03:04:05", FieldType.DATETIME, STAMP),
        (PYSTAMP, FieldType.DATETIME, STAMP),
        ('{"a": [1]}', FieldType.JSON, {"a": [1]}),
        ("not json", FieldType.JSON, "not json"),
        ([1, 2], FieldType.JSON, [1, 2]),
        ("text", FieldType.STRING, "text"),
    ],
)
def test_convert_value_to_pandas(value: Any, field_type: FieldType, expected: Any) -> None:
    assert MAPPER.convert_value_to_pandas(value, field_type) == expected


@pytest.mark.parametrize(
    ("value", "field_type", "expected"),
    [
        (STAMP, FieldType.DATETIME, PYSTAMP),
        ("2024-01-02 03:04:05", FieldType.DATETIME, PYSTAMP),
        (PYSTAMP, FieldType.DATETIME, PYSTAMP),
        ("nope", FieldType.JSON, "nope"),
        (np.float64("nan"), FieldType.FLOAT, None),
        (np.datetime64("NaT", "s"), FieldType.DATETIME, None),
        (pd.NA, FieldType.STRING, None),
        # 0.11.0 returns these numpy values unchanged; ours are plain Python.
        (np.array([1, 2]), FieldType.JSON, [1, 2]),
        ({"a": np.int64(1), "b": [np.float64(2.5)]}, FieldType.JSON, {"a": 1, "b": [2.5]}),
        (np.datetime64("2024-01-02T03:04:05"), FieldType.STRING, PYSTAMP),
    ],
)
def test_convert_value_from_pandas(value: Any, field_type: FieldType, expected: Any) -> None:
    result = MAPPER.convert_value_from_pandas(value, field_type)
    assert result == expected
    assert type(result) is type(expected)


def test_values_from_pandas_are_plain_python() -> None:
    assert type(to_python(np.int32(3))) is int
    assert type(to_python(np.bool_(True))) is bool
    assert to_python(np.datetime64("NaT", "s")) is None
    assert to_python(pd.NaT) is None
    assert to_python(pd.NA) is None
    assert to_python(STAMP) == PYSTAMP and type(to_python(STAMP)) is dt.datetime


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.float32(1.5), FieldType.FLOAT),
        (1.5, FieldType.FLOAT),
        (STAMP, FieldType.DATETIME),
        (b"x", FieldType.BINARY),
        ("abc", FieldType.STRING),
        ({"a": 1}, FieldType.JSON),
        ([1], FieldType.JSON),
        (None, FieldType.STRING),
        (float("nan"), FieldType.STRING),
        (np.int32(3), FieldType.INTEGER),
        (True, FieldType.BOOLEAN),
    ],
)
def test_infer_field_type_from_value(value: Any, expected: FieldType) -> None:
    assert MAPPER.infer_field_type_from_value(value) is expected


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pd.Series([None, None]), "string"),
        (pd.Series([True, False]), "boolean"),
        (pd.Series(pd.to_datetime(["2024-01-01"])), "datetime"),
        (pd.Series([dt.date(2024, 1, 1)]), "date"),
        (pd.Series([dt.time(1, 2)]), "time"),
        (pd.Series([dt.datetime(2024, 1, 1, tzinfo=dt.UTC)], dtype=object), "datetime"),
        (pd.Series(["a"]), "string"),
        (pd.Series([1, 2]), "integer"),
    ],
)
def test_infer_field_type(series: pd.Series, expected: str) -> None:
    assert MAPPER.infer_field_type(series) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("weird", "object"), ("DateTime", "datetime64[ns]"), ("integer", "int64"), ("bool", "object")],
)
def test_get_pandas_dtype(name: str, expected: str) -> None:
    assert MAPPER.get_pandas_dtype(name) == expected


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [
        (None, "integer", None),
        (float("nan"), "number", None),
        (2.7, "integer", 2),
        ("2.5", "number", 2.5),
        (3, "Float", 3.0),
        (5, "string", "5"),
        (0, "boolean", False),
        ("no", "boolean", False),
        ("YES", "boolean", True),
        ("2024-01-02T03:04:05", "datetime", STAMP),
        (PYSTAMP, "datetime", PYSTAMP),
        ("2024-01-02T03:04:05", "date", dt.date(2024, 1, 2)),
        (PYSTAMP, "date", dt.date(2024, 1, 2)),
        (dt.date(2024, 1, 2), "date", dt.date(2024, 1, 2)),
        ("2024-01-02T03:04:05", "time", dt.time(3, 4, 5)),
        (PYSTAMP, "time", dt.time(3, 4, 5)),
        (dt.time(3, 4), "time", dt.time(3, 4)),
        ([1], "other", [1]),
    ],
)
def test_convert_value(value: Any, target: str, expected: Any) -> None:
    result = MAPPER.convert_value(value, target)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([None], "string"),
        ([True, False], "bool"),
        ([1, 2], "int8"),
        ([-129, 2], "int16"),
        ([1, 70000], "int32"),
        ([1, 2**40], "int64"),
        ([1.0, 2.0], "int8"),  # whole floats fit an integer dtype
        ([1.5, 1e300], "float64"),
        (["2024-01-01", "2024-02-01T03:00"], "datetime64[ns]"),
        (["a", "b"], "object"),
    ],
)
def test_get_optimal_dtype(values: list[Any], expected: str) -> None:
    assert MAPPER.get_optimal_dtype(pd.Series(values)) == expected


def test_cast_series() -> None:
    times = MAPPER.cast_series(pd.Series(["2024-01-01", "nope"]), FieldType.DATETIME)
    assert times.iloc[0] == pd.Timestamp("2024-01-01") and times.iloc[1] is pd.NaT
    # Text that is no integer leaves the column as it was, in an object series.
    bad = MAPPER.cast_series(pd.Series(["x", "1"]), FieldType.INTEGER)
    assert str(bad.dtype) == "object" and bad.tolist() == ["x", "1"]
    # JSON cells: containers kept, text parsed when it is JSON, anything else as text.
    cells = MAPPER.cast_series(pd.Series([{"a": 1}, None, "nj", "[2]", 5]), FieldType.JSON)
    assert cells.tolist() == [{"a": 1}, None, "nj", [2], "5"]
    assert str(cells.dtype) == "object"
    floats = MAPPER.cast_series(pd.Series([1.5, None]), FieldType.FLOAT)
    assert str(floats.dtype) == "Float64" and floats.iloc[1] is pd.NA


def test_cast_dataframe_dtypes_keeps_columns_that_do_not_fit() -> None:
    df = pd.DataFrame({"a": ["x"], "b": ["1"]})
    cast = MAPPER.cast_dataframe_dtypes(df, {"a": "int64", "b": "int64", "missing": "int64"})
    assert cast["a"].tolist() == ["x"]
    assert str(cast["b"].dtype) == "int64" and cast["b"].tolist() == [1]
    assert "missing" not in cast.columns
    assert df["b"].tolist() == ["1"]  # the input is not changed


def test_normalize_timezone() -> None:
    aware = pd.Series(pd.to_datetime(["2024-06-01 12:00+00:00"]))
    eastern = MAPPER.normalize_timezone(aware, "US/Eastern")
    assert eastern.iloc[0] == pd.Timestamp("2024-06-01 08:00", tz="US/Eastern")
    # Text is parsed first; what does not parse becomes NaT.
    text = MAPPER.normalize_timezone(pd.Series(["2024-06-01 12:00", "bad"]), "UTC")
    assert text.iloc[0] == pd.Timestamp("2024-06-01 12:00", tz="UTC")
    assert text.iloc[1] is pd.NaT
