"""Field type detection, validation, conversion and serialisation (API.md §2)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from dataknobs_data.fields import Field, FieldType


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, FieldType.STRING),
        (True, FieldType.BOOLEAN),
        (False, FieldType.BOOLEAN),
        (3, FieldType.INTEGER),
        (2.5, FieldType.FLOAT),
        (datetime(2024, 5, 1, tzinfo=UTC), FieldType.DATETIME),
        ({"a": 1}, FieldType.JSON),
        ([1, 2], FieldType.JSON),
        (b"\x00\x01", FieldType.BINARY),
        ("x" * 1000, FieldType.STRING),
        ("x" * 1001, FieldType.TEXT),
        ("hello", FieldType.STRING),
        (date(2024, 5, 1), FieldType.JSON),
        (Decimal("1.10"), FieldType.JSON),
        ((1, 2), FieldType.JSON),
    ],
)
def test_type_detection(value: Any, expected: FieldType) -> None:
    assert Field("f", value).type is expected


def test_field_type_values_are_lowercase() -> None:
    assert [t.value for t in FieldType] == [
        "string",
        "integer",
        "float",
        "boolean",
        "datetime",
        "json",
        "binary",
        "text",
    ]


def test_explicit_type_wins_and_string_type_is_accepted() -> None:
    assert Field("f", 1, FieldType.FLOAT).type is FieldType.FLOAT
    assert Field("f", "x", "text").type is FieldType.TEXT  # type: ignore[arg-type]


def test_equality_compares_all_four_attributes() -> None:
    base = Field("a", 1, FieldType.INTEGER, {"unit": "m"})
    assert base == Field("a", 1, FieldType.INTEGER, {"unit": "m"})
    assert base != Field("b", 1, FieldType.INTEGER, {"unit": "m"})
    assert base != Field("a", 2, FieldType.INTEGER, {"unit": "m"})
    assert base != Field("a", 1, FieldType.FLOAT, {"unit": "m"})
    assert base != Field("a", 1, FieldType.INTEGER, {"unit": "cm"})
    assert Field("a", 1).metadata == {}


def test_repr_is_dataclass_like() -> None:
    assert repr(Field("a", 1)) == (
        "Field(name='a', value=1, type=<FieldType.INTEGER: 'integer'>, metadata={})"
    )


def test_slots_keep_fields_small() -> None:
    f = Field("a", 1)
    with pytest.raises(AttributeError):
        f.other = 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "ftype", "valid"),
    [
        (None, FieldType.INTEGER, True),
        (1, FieldType.INTEGER, True),
        (True, FieldType.INTEGER, False),
        (1.5, FieldType.INTEGER, False),
        (1, FieldType.FLOAT, True),
        (1.5, FieldType.FLOAT, True),
        ("1.5", FieldType.FLOAT, False),
        ("x", FieldType.STRING, True),
        (1, FieldType.STRING, False),
        ("x", FieldType.TEXT, True),
        (b"x", FieldType.TEXT, False),
        (True, FieldType.BOOLEAN, True),
        (1, FieldType.BOOLEAN, False),
        (datetime(2024, 1, 1), FieldType.DATETIME, True),
        ("2024-01-01", FieldType.DATETIME, False),
        (b"x", FieldType.BINARY, True),
        ("x", FieldType.BINARY, False),
        ({"a": 1}, FieldType.JSON, True),
    ],
)
def test_validate(value: Any, ftype: FieldType, valid: bool) -> None:
    assert Field("f", value, ftype).validate() is valid


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (3, FieldType.INTEGER, FieldType.STRING, "3"),
        (3, FieldType.INTEGER, FieldType.FLOAT, 3.0),
        (2.7, FieldType.FLOAT, FieldType.STRING, "2.7"),
        (2.7, FieldType.FLOAT, FieldType.INTEGER, 2),
        (True, FieldType.BOOLEAN, FieldType.STRING, "true"),
        (False, FieldType.BOOLEAN, FieldType.STRING, "false"),
        (True, FieldType.BOOLEAN, FieldType.INTEGER, 1),
        ("42", FieldType.STRING, FieldType.INTEGER, 42),
        ("4.5", FieldType.STRING, FieldType.FLOAT, 4.5),
        ("true", FieldType.STRING, FieldType.BOOLEAN, True),
        ("1", FieldType.STRING, FieldType.BOOLEAN, True),
        ("YES", FieldType.STRING, FieldType.BOOLEAN, True),
        ("no", FieldType.STRING, FieldType.BOOLEAN, False),
        ("abc", FieldType.STRING, FieldType.TEXT, "abc"),
        ("abc", FieldType.TEXT, FieldType.STRING, "abc"),
    ],
)
def test_convert_to(value: Any, source: FieldType, target: FieldType, expected: Any) -> None:
    original = Field("f", value, source, {"k": "v"})
    converted = original.convert_to(target)
    assert converted.type is target
    assert converted.value == expected and type(converted.value) is type(expected)
    assert converted.name == "f" and converted.metadata == {"k": "v"}
    assert original.value == value and original.type is source


def test_convert_to_same_type_returns_self() -> None:
    f = Field("f", 1)
    assert f.convert_to(FieldType.INTEGER) is f


def test_convert_failure_names_field_and_types() -> None:
    with pytest.raises(ValueError, match=r"'age'.*string.*integer"):
        Field("age", "abc").convert_to(FieldType.INTEGER)
    with pytest.raises(ValueError, match=r"'when'.*integer.*datetime"):
        Field("when", 5).convert_to(FieldType.DATETIME)


def test_copy_is_deep() -> None:
    f = Field("f", {"a": [1]}, metadata={"m": [1]})
    c = f.copy()
    assert c == f
    c.value["a"].append(2)
    c.metadata["m"].append(2)
    assert f.value == {"a": [1]} and f.metadata == {"m": [1]}


def test_to_dict_from_dict_round_trip() -> None:
    f = Field("f", 2.5, FieldType.FLOAT, {"unit": "kg"})
    d = f.to_dict()
    assert d == {"name": "f", "value": 2.5, "type": "float", "metadata": {"unit": "kg"}}
    assert Field.from_dict(d) == f
    assert Field.from_dict({"name": "g", "value": 1}) == Field("g", 1)
