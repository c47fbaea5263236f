"""Validation: results, constraints, composition, schemas, coercion and factories (API.md §8)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataknobs_data import Record
from dataknobs_data.fields import Field as RecordField
from dataknobs_data.fields import FieldType
from dataknobs_data.validation import (
    All,
    AnyOf,
    Coercer,
    CoercerFactory,
    Constraint,
    Custom,
    Enum,
    Field,
    Length,
    Not,
    Pattern,
    Range,
    Required,
    Schema,
    SchemaFactory,
    Unique,
    ValidationContext,
    ValidationResult,
    coercer_factory,
    constraint_types,
    schema_factory,
)


def is_even(value: Any) -> bool:
    """Importable, so a Custom constraint using it survives to_dict/from_dict."""
    return isinstance(value, int) and value % 2 == 0


# ---------------------------------------------------------------- ValidationResult


def test_result_bool_success_failure() -> None:
    ok = ValidationResult.success(1, warnings=["w"])
    bad = ValidationResult.failure(2, ["e"])
    assert ok and not bad
    assert (ok.valid, ok.value, ok.errors, ok.warnings) == (True, 1, [], ["w"])
    assert (bad.valid, bad.value, bad.errors, bad.warnings) == (False, 2, ["e"], [])
    assert ValidationResult(True, 0) == ValidationResult(True, 0, [], [])


def test_result_merge_and_fluent_adders() -> None:
    a = ValidationResult.success(1, ["w1"])
    b = ValidationResult.failure(2, ["e2"], ["w2"])
    merged = a.merge(b)
    assert not merged.valid and merged.value == 1
    assert merged.errors == ["e2"] and merged.warnings == ["w1", "w2"]
    assert a.merge(ValidationResult.success(5)).value == 5
    r = ValidationResult.success(1)
    assert r.add_warning("w") is r and r.valid
    assert r.add_error("e") is r and not r.valid and r.errors == ["e"]


def test_result_lists_are_not_shared() -> None:
    a, b = ValidationResult(True, 1), ValidationResult(True, 2)
    a.add_error("x")
    assert b.errors == []
    errors = ["e"]
    failed = ValidationResult.failure(0, errors)
    failed.add_error("f")
    assert errors == ["e"]


def test_context_seen_values_and_clear() -> None:
    ctx = ValidationContext()
    assert not ctx.has_seen("a", 1)
    ctx.mark_seen("a", 1)
    ctx.mark_seen("b", {"x": [1]})
    assert ctx.has_seen("a", 1) and ctx.has_seen("b", {"x": [1]}) and not ctx.has_seen("b", 1)
    ctx.clear("a")
    assert not ctx.has_seen("a", 1) and ctx.has_seen("b", {"x": [1]})
    ctx.clear()
    assert ctx.seen_values == {}
    ctx.set_metadata("k", 3)
    assert ctx.get_metadata("k") == 3 and ctx.get_metadata("nope", 9) == 9


# ---------------------------------------------------------------- constraints


ALL_BUT_REQUIRED: list[Constraint] = [
    Range(0, 1),
    Range(0, 1, min_exclusive=True, max_exclusive=True),
    Length(1, 2),
    Pattern("^x$"),
    Enum(["a"]),
    Unique("f"),
    Custom(lambda v: False),
    All([Range(0, 1), Length(5)]),
    AnyOf([Range(5, 6), Length(9)]),
    Not(Range(0, 1)),
    ~Required(),
]


@pytest.mark.parametrize("constraint", ALL_BUT_REQUIRED, ids=repr)
def test_none_passes_everything_but_required(constraint: Constraint) -> None:
    assert constraint.check(None).valid
    assert constraint.check(None, ValidationContext()).valid


def test_required() -> None:
    assert Required().check(None).errors == ["Value is required"]
    for empty in ("", [], {}, set(), ()):
        assert Required().check(empty).errors == ["Value cannot be empty"]
        assert Required(allow_empty=True).check(empty).valid
    assert Required(allow_empty=True).check(None).errors == ["Value is required"]
    assert Required().check(0).valid and Required().check(False).valid


def test_range_inclusive_and_exclusive_bounds() -> None:
    r = Range(min=1, max=10)
    assert r.check(1) and r.check(10) and r.check(5.5)
    assert r.check(0).errors == ["Value 0 is less than minimum 1"]
    assert r.check(11).errors == ["Value 11 is greater than maximum 10"]
    ex = Range(min=1, max=10, min_exclusive=True, max_exclusive=True)
    assert ex.check(2) and ex.check(9.999)
    assert ex.check(1).errors == ["Value 1 must be greater than 1"]
    assert ex.check(10).errors == ["Value 10 must be less than 10"]
    assert Range(min=0).check(10**30) and not Range(max=0).check(10**30)
    assert Range(min=Decimal("0.5")).check(Decimal("0.6"))


def test_range_rejects_non_numbers_bools_and_nan() -> None:
    r = Range(0, 10)
    assert r.check("5").errors == ["Value must be a number, got str"]
    assert r.check(True).errors == ["Value must be a number, got bool"]
    assert r.check(float("nan")).errors == [
        "Value is NaN (Not a Number), which is not valid for range comparisons"
    ]
    with pytest.raises(ValueError, match="cannot be greater"):
        Range(5, 1)


def test_range_over_datetimes() -> None:
    lo, hi = datetime(2024, 1, 1), datetime(2024, 12, 31)
    r = Range(lo, hi)
    assert r.check(datetime(2024, 6, 1))
    assert not r.check(datetime(2025, 1, 1))
    assert r.check(5).errors[0].startswith("Value must be comparable with")


def test_length() -> None:
    c = Length(min=2, max=3)
    assert c.check("ab") and c.check([1, 2, 3]) and c.check({"a": 1, "b": 2})
    assert c.check("a").errors == ["Length 1 is less than minimum 2"]
    assert c.check("abcd").errors == ["Length 4 is greater than maximum 3"]
    assert c.check(5).errors == ["Value does not have a length: int"]
    with pytest.raises(ValueError):
        Length(min=-1)
    with pytest.raises(ValueError):
        Length(3, 2)


def test_pattern_matches_at_the_start_like_the_original() -> None:
    p = Pattern(r"\d+")
    assert p.check("123abc")  # re.match: anchored at the start only
    assert p.check("abc123").errors == ["Value 'abc123' does not match pattern '\\d+'"]
    assert Pattern(r"^\d+$").check("123") and not Pattern(r"^\d+$").check("123a")
    assert p.check(5).errors == ["Value must be a string for pattern matching, got int"]
    assert Pattern(re.compile("a", re.I)).check("ABC")
    assert Pattern(regex="x").pattern == "x"


def test_enum() -> None:
    e = Enum(["red", "green"])
    assert e.check("red")
    assert e.check("RED").errors == ["Value 'RED' is not in allowed values: 'red', 'green'"]
    assert Enum(["red"], case_sensitive=False).check("RED")
    assert Enum([{"a": 1}, [1, 2]]).check([1, 2])
    with pytest.raises(ValueError):
        Enum([])


def test_unique_tracks_values_in_the_context() -> None:
    u = Unique("email")
    ctx = ValidationContext()
    assert u.check("a", ctx) and u.check("b", ctx)
    assert u.check("a", ctx).errors == ["Duplicate value 'a' for field 'email'"]
    assert u.check([1, 2], ctx) and not u.check([1, 2], ctx)
    alone = u.check("a")
    assert alone.valid and alone.warnings == ["Unique constraint requires context for tracking"]
    ctx.clear()
    assert u.check("a", ctx)


def test_unique_over_many_values() -> None:
    u = Unique()
    ctx = ValidationContext()
    assert all(u.check(i, ctx) for i in range(1000))
    assert not any(u.check(i, ctx) for i in range(1000))


def test_custom() -> None:
    assert Custom(is_even).check(2)
    assert Custom(is_even, "odd!").check(3).errors == ["odd!"]
    assert Custom(is_even).check(3).errors == ["Custom validation failed"]
    boom = Custom(lambda v: 1 / 0)
    assert boom.check(1).errors == ["Custom validation error: division by zero"]
    odd = Custom(lambda v: "yes")
    assert odd.check(1).errors == ["Custom validator returned unexpected type: str"]
    passthrough = Custom(lambda v: ValidationResult.failure(v, ["mine"]))
    assert passthrough.check(1).errors == ["mine"]


# ---------------------------------------------------------------- composition


def test_operators_build_flattened_composites() -> None:
    a, b, c, d = Range(0, 10), Length(1), Pattern("x"), Enum([1])
    both = a & b
    assert isinstance(both, All) and both.constraints == [a, b]
    three = (a & b) & c
    assert isinstance(three, All) and three.constraints == [a, b, c]
    assert (a & (b & c)).constraints == [a, b, c]
    assert ((a & b) & (c & d)).constraints == [a, b, c, d]
    either = (a | b) | (c | d)
    assert isinstance(either, AnyOf) and either.constraints == [a, b, c, d]
    mixed = (a & b) | c
    assert isinstance(mixed, AnyOf) and isinstance(mixed.constraints[0], All)
    neg = ~a
    assert isinstance(neg, Not) and neg.constraint is a
    assert ~neg is a


def test_all_reports_every_failure() -> None:
    c = Range(0, 10) & Custom(is_even, "not even")
    assert c.check(4)
    assert c.check(11).errors == ["Value 11 is greater than maximum 10", "not even"]


def test_any_of_and_not() -> None:
    c = Range(0, 1) | Range(10, 11)
    assert c.check(0.5) and c.check(10)
    assert c.check(5).errors == [
        "None of the constraints passed: Value 5 is greater than maximum 1, "
        "Value 5 is less than minimum 10"
    ]
    n = ~Range(0, 10)
    assert n.check(11) and not n.check(5)
    assert n.check(5).errors == ["Value should not satisfy constraint but it does"]


@given(st.integers(-20, 20))
def test_de_morgan(value: int) -> None:
    a, b = Range(0, 10), Custom(is_even)
    assert bool((~(a & b)).check(value)) == bool((~a | ~b).check(value))
    assert bool((~(a | b)).check(value)) == bool((~a & ~b).check(value))
    assert bool((~~a).check(value)) == bool(a.check(value))


def test_composition_with_non_constraint_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Range(0, 1) & 5  # type: ignore[operator]


# ---------------------------------------------------------------- constraint serialisation


ROUND_TRIP: list[Constraint] = [
    Required(allow_empty=True),
    Range(1, 5, min_exclusive=True),
    Length(max=3),
    Pattern("^a+$"),
    Pattern(re.compile("abc", re.IGNORECASE)),
    Enum(["x", "y"], case_sensitive=False),
    Unique("code"),
    Custom(is_even, "odd"),
    (Range(0, 9) & Length(1)) | ~Pattern("z"),
]


@pytest.mark.parametrize("constraint", ROUND_TRIP, ids=repr)
def test_constraint_round_trip(constraint: Constraint) -> None:
    data = constraint.to_dict()
    back = Constraint.from_dict(data)
    assert type(back) is type(constraint)
    assert back.to_dict() == data
    for value in (None, 0, 2, 3, "a", "aa", "Z", "ABC", [1]):
        assert bool(back.check(value)) == bool(constraint.check(value)), value


def test_custom_lambda_cannot_be_restored() -> None:
    data = Custom(lambda v: True).to_dict()
    assert data["function"] is None
    with pytest.raises(ValueError, match="cannot be restored"):
        Constraint.from_dict(data)


def test_registry_and_unknown_type() -> None:
    assert {"required", "range", "length", "pattern", "enum", "unique", "custom"} <= set(
        constraint_types()
    )
    assert {"all", "any_of", "not"} <= set(constraint_types())
    assert isinstance(Constraint.from_dict({"type": "ANY", "constraints": []}), AnyOf)
    with pytest.raises(ValueError, match="Unknown constraint type"):
        Constraint.from_dict({"type": "bogus"})


class Positive(Constraint):
    """A user constraint: registered by its class name, serialised by its attributes."""

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict

    def check(self, value: Any, context: ValidationContext | None = None) -> ValidationResult:
        if value is None or value > 0 or (not self.strict and value == 0):
            return ValidationResult.success(value)
        return ValidationResult.failure(value, ["not positive"])


def test_user_constraint_registers_and_round_trips() -> None:
    c = Positive(strict=False)
    assert c.to_dict() == {"type": "positive", "strict": False}
    back = Constraint.from_dict(c.to_dict())
    assert isinstance(back, Positive) and not back.strict
    schema = Schema("s").field("n", "integer", constraints=[Positive() & Range(max=5)])
    assert schema.validate({"n": 3}) and not schema.validate({"n": 0})
    again = Schema.from_dict(schema.to_dict())
    assert again.validate({"n": -1}).errors == ["Field 'n': not positive"]


# ---------------------------------------------------------------- schema


def users() -> Schema:
    return (
        Schema("users")
        .field("name", FieldType.STRING, required=True, constraints=[Length(2, 20)])
        .field("age", "integer", constraints=[Range(0, 150)])
        .field("score", "FLOAT")
        .field("active", "boolean", default=True)
        .field("joined", "datetime")
        .field("tags", "json")
    )


def test_schema_valid_record_and_result_value() -> None:
    rec = Record(
        {"name": "ada", "age": 36, "score": 1, "extra": "kept"}, metadata={"m": 1}, id="u1"
    )
    result = users().validate(rec)
    assert result.valid and result.errors == []
    out = result.value
    assert isinstance(out, Record) and out is not rec
    assert out.id == "u1" and out.metadata == {"m": 1}
    assert out.to_dict() == {
        "name": "ada",
        "age": 36,
        "score": 1,
        "extra": "kept",
        "active": True,
        "_id": "u1",
    }
    assert "joined" not in out  # a missing optional field is not added
    assert "active" not in rec  # the input is not modified


def test_schema_accepts_dicts_and_reports_every_problem() -> None:
    result = users().validate({"age": "36", "score": True, "joined": "2024-01-01", "tags": 5})
    assert not result.valid
    assert result.errors == [
        "Field 'name' is required",
        "Field 'age' expects type INTEGER, got str",
        "Field 'score' expects type FLOAT, got bool",
        "Field 'joined' expects type DATETIME, got str",
        "Field 'tags' expects type JSON, got int",
    ]
    assert isinstance(result.value, Record) and result.value["age"] == "36"


def test_schema_constraint_errors_name_the_field() -> None:
    result = users().validate({"name": "a", "age": 200})
    assert result.errors == [
        "Field 'name': Length 1 is less than minimum 2",
        "Field 'age': Value 200 is greater than maximum 150",
    ]
    assert users().validate({"name": ""}).errors[0] == "Field 'name': Value cannot be empty"


def test_schema_type_rules() -> None:
    s = Schema("t").field("i", "integer").field("f", "float").field("b", "binary")
    assert not s.validate({"i": True}) and not s.validate({"i": 1.0})
    assert s.validate({"f": 3}) and s.validate({"f": 3.5}) and not s.validate({"f": "3"})
    assert s.validate({"b": b"x"}) and s.validate({"b": bytearray(b"x")})
    dt = Schema("d").field("at", "datetime")
    assert dt.validate({"at": datetime(2024, 1, 1, tzinfo=UTC)})
    assert dt.validate({"at": None})
    assert not dt.validate({"at": "2024-01-01T00:00:00"})


def test_schema_datetime_coerces_iso_strings() -> None:
    dt = Schema("d").field("at", "datetime")
    result = dt.validate({"at": "2024-05-01T10:00:00Z"}, coerce=True)
    assert result.valid
    assert result.value["at"] == datetime(2024, 5, 1, 10, tzinfo=UTC)
    bad = dt.validate({"at": "not a date"}, coerce=True)
    assert bad.errors == [
        "Field 'at': Cannot coerce str to datetime: Could not parse datetime from 'not a date'"
    ]


def test_schema_coercion_fills_values_and_keeps_order() -> None:
    rec = {"tags": '["a"]', "name": "bob", "age": " 41 ", "active": "no", "score": "2.5"}
    out = users().validate(rec, coerce=True).value
    assert list(out.data) == ["tags", "name", "age", "active", "score"]
    assert out.data == {"tags": ["a"], "name": "bob", "age": 41, "active": False, "score": 2.5}


def test_schema_field_objects_keep_metadata() -> None:
    rec = Record([RecordField("name", "zoe", metadata={"src": "x"}), RecordField("age", "7")])
    out = users().validate(rec, coerce=True).value
    assert out.get_field("name").metadata == {"src": "x"}
    assert out.get_field("age").value == 7 and out.get_field("age").type is FieldType.INTEGER


def test_schema_defaults() -> None:
    s = (
        Schema("d")
        .field("tags", "json", default=[])
        .field("n", "integer", required=True, default=1)
    )
    a = s.validate({}).value
    b = s.validate({"n": None}).value
    assert a.data == {"tags": [], "n": 1} and b.data == {"n": 1, "tags": []}
    a["tags"].append("x")
    assert s.validate({}).value["tags"] == []  # defaults are not shared between records


def test_strict_mode_rejects_unknown_fields() -> None:
    s = Schema("s", strict=True).field("a", "integer")
    assert s.validate({"a": 1})
    assert s.validate({"a": 1, "z": 2, "b": 3}).errors == ["Unknown fields in strict mode: b, z"]
    assert Schema("loose").field("a", "integer").validate({"a": 1, "z": 2})


def test_validate_many_shares_one_context_for_unique() -> None:
    s = Schema("u").field("email", "string", constraints=[Unique()]).field("n", "integer")
    rows = [{"email": "a"}, {"email": "b"}, {"email": "a"}, {"email": None}, {"email": None}]
    results = s.validate_many(rows)
    assert [r.valid for r in results] == [True, True, False, True, True]
    assert results[2].errors == ["Field 'email': Duplicate value 'a' for field 'email'"]
    stopped = s.validate_many([{"n": "x"}, {"n": 1}], stop_on_error=True)
    assert len(stopped) == 1
    assert [r.valid for r in s.validate_many([{"n": "1"}, {"n": "2"}], coerce=True)] == [True] * 2
    # each call starts afresh
    assert all(s.validate_many(rows[:2]))


def test_unique_without_field_name_is_per_field() -> None:
    s = Schema("u").field("a", "integer", constraints=[Unique()])
    s.field("b", "integer", constraints=[Unique()])
    results = s.validate_many([{"a": 1, "b": 1}, {"a": 2, "b": 2}, {"a": 3, "b": 1}])
    assert [r.valid for r in results] == [True, True, False]
    assert results[2].errors == ["Field 'b': Duplicate value '1' for field 'b'"]


def test_field_definition_validate() -> None:
    f = Field("n", "integer", required=True, constraints=[Range(0, 5)])
    assert f.validate(3).value == 3
    assert f.validate(None).errors == ["Field 'n' is required"]
    assert f.validate("4", coerce=True).value == 4
    assert f.validate(9).errors == ["Field 'n': Value 9 is greater than maximum 5"]
    assert isinstance(f.constraints[0], Required)
    assert f.add_constraint(Custom(is_even)) is f
    assert not f.validate(3)


def test_schema_field_types_and_errors() -> None:
    s = Schema("x").field("a", "INTEGER").field("b", "text").field("c", FieldType.JSON)
    assert [f.field_type for f in s.fields.values()] == [
        FieldType.INTEGER,
        FieldType.TEXT,
        FieldType.JSON,
    ]
    with pytest.raises(ValueError, match="Invalid field type"):
        s.field("d", "decimal")


def test_required_constraint_is_added_without_mutating_the_callers_list() -> None:
    constraints: list[Constraint] = [Length(1)]
    Schema("x").field("a", "string", required=True, constraints=constraints)
    assert len(constraints) == 1


def test_schema_round_trip_with_composed_constraints() -> None:
    schema = (
        Schema("orders", strict=True, description="all orders")
        .field(
            "code",
            "string",
            required=True,
            constraints=[Pattern("^[A-Z]{3}-\\d+$") & Length(max=12), Unique()],
            description="order code",
        )
        .field("qty", "integer", default=1, constraints=[Range(1, 99) | Enum([1000])])
        .field("kind", "string", constraints=[~Enum(["test", "demo"])])
        .field("even", "integer", constraints=[Custom(is_even, "must be even")])
        .field("at", "datetime")
    )
    data = schema.to_dict()
    assert data["fields"]["code"]["type"] == "STRING"
    assert data["fields"]["qty"]["constraints"][0]["type"] == "any_of"
    back = Schema.from_dict(data)
    assert back.to_dict() == data
    assert (back.name, back.strict, back.description) == ("orders", True, "all orders")
    rows: list[dict[str, Any]] = [
        {"code": "ABC-1", "qty": 5, "kind": "real", "even": 2},
        {"code": "ABC-1", "qty": 1000},
        {"code": "abc", "qty": 100, "kind": "demo", "even": 3, "z": 1},
        {"qty": None},
        {"code": "ABC-22", "at": "2024-01-01"},
    ]
    expected = [r.errors for r in schema.validate_many(rows)]
    assert [r.errors for r in back.validate_many(rows)] == expected
    assert [bool(e) for e in expected] == [False, True, True, True, True]


def test_schema_from_dict_accepts_original_and_list_shapes() -> None:
    original_shape = {
        "name": "legacy",
        "fields": {"a": {"type": "INTEGER", "required": True, "constraints": 1}},
    }
    legacy = Schema.from_dict(original_shape)
    assert legacy.validate({"a": 1}) and not legacy.validate({})
    listed = Schema.from_dict(
        {
            "name": "l",
            "fields": [
                {"name": "a", "type": "string", "constraints": [{"type": "enum", "values": ["x"]}]}
            ],
        }
    )
    assert listed.validate({"a": "x"}) and not listed.validate({"a": "y"})


# ---------------------------------------------------------------- coercion


C = Coercer()


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [
        ("true", bool, True),
        (" Yes ", FieldType.BOOLEAN, True),
        ("on", "boolean", True),
        ("1", bool, True),
        ("y", bool, True),
        ("T", bool, True),
        ("false", bool, False),
        ("no", bool, False),
        ("OFF", bool, False),
        ("0", bool, False),
        ("n", bool, False),
        ("f", bool, False),
        (1, bool, True),
        (0, bool, False),
        (1.0, bool, True),
        (True, bool, True),
        ("42", int, 42),
        (" 42 ", int, 42),
        ("-7", int, -7),
        ("1_000", int, 1000),
        ("0x1f", int, 31),
        ("0X1F", int, 31),
        ("0o17", int, 15),
        ("0b101", int, 5),
        ("-0x10", int, -16),
        ("42.0", int, 42),
        ("1e3", int, 1000),
        (3.0, int, 3),
        (Decimal("4"), int, 4),
        (True, int, 1),
        (False, "integer", 0),
        ("true", int, 1),
        ("2.5", float, 2.5),
        (" 1_000.5 ", float, 1000.5),
        (3, float, 3.0),
        (True, float, 1.0),
        ("0x10", float, 16.0),
        (Decimal("0.25"), FieldType.FLOAT, 0.25),
        (42, str, "42"),
        (True, str, "true"),
        (b"caf\xc3\xa9", str, "café"),
        (datetime(2024, 1, 31, 10), FieldType.STRING, "2024-01-31T10:00:00"),
        ({"a": 1}, FieldType.TEXT, '{"a": 1}'),
        ("2024-01-31", datetime, datetime(2024, 1, 31)),
        ("2024-01-31T10:00:00", datetime, datetime(2024, 1, 31, 10)),
        ("2024-01-31T10:00:00Z", datetime, datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31 10:00", datetime, datetime(2024, 1, 31, 10)),
        (
            "2024-01-31T10:00:00.5+02:00",
            datetime,
            datetime(2024, 1, 31, 10, 0, 0, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2024/01/31", datetime, datetime(2024, 1, 31)),
        ("01/31/2024", datetime, datetime(2024, 1, 31)),
        ("31/01/2024", datetime, datetime(2024, 1, 31)),
        ("01/02/2024", datetime, datetime(2024, 2, 1)),  # day first, as the original
        ("31.01.2024", datetime, datetime(2024, 1, 31)),
        ("31.01.2024 10:30", datetime, datetime(2024, 1, 31, 10, 30)),
        ("31-01-2024", datetime, datetime(2024, 1, 31)),
        (date(2024, 1, 31), FieldType.DATETIME, datetime(2024, 1, 31)),
        (0, datetime, datetime.fromtimestamp(0)),
        (1.5, datetime, datetime.fromtimestamp(1.5)),
        ('{"a": [1]}', dict, {"a": [1]}),
        ([("a", 1)], dict, {"a": 1}),
        ("[1, 2]", list, [1, 2]),
        ((1, 2), list, [1, 2]),
        ('{"a": 1}', FieldType.JSON, {"a": 1}),
        ("[1]", FieldType.JSON, [1]),
        ((1,), "json", [1]),
        ("hé", bytes, "hé".encode()),
        (bytearray(b"x"), FieldType.BINARY, b"x"),
        ([104, 105], bytes, b"hi"),
    ],
)
def test_coercion_table(value: Any, target: Any, expected: Any) -> None:
    result = C.coerce(value, target)
    assert result.valid, result.errors
    assert result.value == expected
    assert type(result.value) is type(expected)


@pytest.mark.parametrize(
    ("value", "target", "message"),
    [
        (None, int, "Cannot coerce None to int"),
        (None, FieldType.INTEGER, "Cannot coerce None to INTEGER"),
        ("maybe", bool, "Cannot coerce str to bool: String 'maybe' is not a valid boolean"),
        (2, bool, "Cannot coerce int to bool: only 0 and 1 are booleans, got 2"),
        # The failures are worded as 0.11.0 words them (Python's own messages where it uses them).
        ("abc", int, "Cannot coerce str to int: invalid literal for int() with base 10: 'abc'"),
        (2.5, int, "Cannot coerce float to int: Float 2.5 cannot be losslessly converted to int"),
        (
            "2.5",
            FieldType.INTEGER,
            "Cannot coerce str to int: invalid literal for int() with base 10: '2.5'",
        ),
        (float("inf"), int, "Cannot coerce float to int: cannot convert float infinity to integer"),
        ("x", float, "Cannot coerce str to float: could not convert string to float: 'x'"),
        ("31/31/2024", datetime, "Cannot coerce str to datetime: Could not parse datetime from"),
        (True, datetime, "Cannot coerce bool to datetime: no conversion from bool"),
        ("[1]", dict, "Cannot coerce str to dict: JSON text is a list, not an object"),
        ("{x", dict, "Cannot coerce str to dict: Expecting property name enclosed in double"),
        ("3", FieldType.JSON, "Cannot coerce str to dict: JSON text is a int"),
        (b"\xff", str, "Cannot coerce bytes to str: not valid UTF-8"),
        (5, bytes, "Cannot coerce int to bytes: no conversion from int"),
    ],
)
def test_coercion_failures_are_results(value: Any, target: Any, message: str) -> None:
    result = C.coerce(value, target)
    assert not result.valid
    assert result.errors[0].startswith(message), result.errors


def test_coercion_unknown_target_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        C.coerce(1, set)
    with pytest.raises(ValueError):
        C.coerce(1, "decimal")


def test_coerce_many() -> None:
    results = C.coerce_many({"a": "1", "b": "x", "c": 3}, {"a": int, "b": FieldType.FLOAT})
    assert results["a"].value == 1 and not results["b"].valid and results["c"].value == 3


def test_already_right_type_is_unchanged() -> None:
    d = {"a": 1}
    assert C.coerce(d, dict).value is d
    assert C.coerce("s", str).value == "s"
    assert C.coerce(False, bool).value is False


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_int_str_round_trip(value: int) -> None:
    assert C.coerce(str(value), int).value == value
    assert C.coerce(f" {value:_} ", FieldType.INTEGER).value == value
    assert C.coerce(hex(value), int).value == value


@given(st.floats(allow_nan=False))
def test_float_str_round_trip(value: float) -> None:
    assert C.coerce(str(value), float).value == value
    assert C.coerce(repr(value), FieldType.FLOAT).value == value


@given(st.booleans())
def test_bool_str_round_trip(value: bool) -> None:
    assert C.coerce(str(value), bool).value is value
    assert C.coerce(str(value).upper(), FieldType.BOOLEAN).value is value
    assert C.coerce(C.coerce(value, str).value, bool).value is value


@given(
    st.datetimes(min_value=datetime(1, 1, 2), timezones=st.none() | st.just(UTC))
    | st.datetimes(timezones=st.sampled_from([timezone(timedelta(hours=-5)), UTC]))
)
def test_datetime_str_round_trip(value: datetime) -> None:
    assert C.coerce(str(value), datetime).value == value
    assert C.coerce(value.isoformat(), FieldType.DATETIME).value == value
    if value.tzinfo is UTC:
        z = value.replace(tzinfo=None).isoformat() + "Z"
        assert C.coerce(z, datetime).value == value


# ---------------------------------------------------------------- factories


def test_schema_factory_from_spec_with_shorthand() -> None:
    schema = schema_factory.create(
        name="users",
        strict=True,
        description="d",
        fields=[
            {
                "name": "username",
                "type": "STRING",
                "required": True,
                "constraints": [
                    {"type": "length", "min": 3, "max": 20},
                    {"type": "pattern", "pattern": "^[a-z0-9_]+$"},
                ],
            },
            {"name": "age", "type": "integer", "constraints": {"range": {"min": 13, "max": 120}}},
            {"name": "role", "constraints": ["unique", {"enum": ["admin", "user"]}]},
            {
                "name": "code",
                "constraints": [
                    {"type": "any", "constraints": [{"type": "length", "max": 2}, "required"]},
                    {"not": {"type": "pattern", "pattern": "x"}},
                ],
            },
        ],
    )
    assert isinstance(schema, Schema) and schema.strict and schema.description == "d"
    assert schema.validate({"username": "ada_1", "age": 30, "role": "user", "code": "ab"})
    bad = schema.validate({"username": "A", "age": 5, "role": "root", "code": "xyz"})
    assert len(bad.errors) == 5
    assert schema.fields["role"].field_type is FieldType.STRING
    assert Schema.from_dict(schema.to_dict()).to_dict() == schema.to_dict()


def test_schema_factory_errors_and_mapping_fields() -> None:
    s = SchemaFactory().create(name="m", fields={"a": {"type": "integer"}, "b": None})
    assert list(s.fields) == ["a", "b"]
    with pytest.raises(ValueError):
        schema_factory.create(fields=[{"type": "integer"}])
    with pytest.raises(ValueError):
        schema_factory.create(fields=[{"name": "a", "constraints": [{"type": "nope"}]}])
    assert schema_factory.build(s) is s


def test_coercer_factory() -> None:
    assert isinstance(coercer_factory.create(), Coercer)
    assert isinstance(CoercerFactory().create(anything=1), Coercer)


def test_original_readme_example_runs() -> None:
    from dataknobs_data.validation import FieldType as ReexportedFieldType
    from dataknobs_data.validation.constraints import Enum, Pattern, Range, Unique

    assert ReexportedFieldType is FieldType
    user_schema = Schema("UserSchema")
    user_schema.field(
        "email", FieldType.STRING, required=True, constraints=[Pattern(r"^.+@.+\..+$"), Unique()]
    )
    user_schema.field("age", FieldType.INTEGER, constraints=[Range(min=0, max=150)])
    user_schema.field(
        "status",
        FieldType.STRING,
        default="active",
        constraints=[Enum(["active", "inactive", "suspended"])],
    )
    record = Record({"email": "a@b.io", "age": "30"})
    assert not user_schema.validate(record)
    result = user_schema.validate(record, coerce=True)
    assert result.valid
    assert result.value.get_value("age") == 30
    assert result.value.get_value("status") == "active"


def test_results_are_dataclasses() -> None:
    import dataclasses

    assert dataclasses.asdict(ValidationResult.failure(1, ["e"])) == {
        "valid": False,
        "value": 1,
        "errors": ["e"],
        "warnings": [],
    }
    assert dataclasses.replace(ValidationResult(True, 1), valid=False).valid is False
    assert ValidationContext().seen_values == {}


def test_user_class_named_like_a_builtin_does_not_replace_it() -> None:
    class Range(Constraint):  # shadows the built-in on purpose
        def check(self, value: Any, context: ValidationContext | None = None) -> ValidationResult:
            return ValidationResult.success(value)

    restored = Constraint.from_dict({"type": "range", "min": 1})
    assert type(restored).__module__ == "dataknobs_data.validation.constraints"

    class Mine(Constraint):
        type_name = "mine_v2"

        def check(self, value: Any, context: ValidationContext | None = None) -> ValidationResult:
            return ValidationResult.success(value)

    assert isinstance(Constraint.from_dict({"type": "mine_v2"}), Mine)
    assert "_builtin" not in constraint_types()


def test_enum_exposes_its_allowed_values() -> None:
    from dataknobs_data.validation.constraints import Enum as EnumConstraint

    exact = EnumConstraint(["A", "b", 3])
    assert exact.allowed == {"A", "b", 3} and exact.allowed_str == "'A', 'b', 3"
    folded = EnumConstraint(["A", "b"], case_sensitive=False)
    assert folded.allowed_lower == {"a", "b"}
    assert folded.check("a").valid and not exact.check("a").valid
