"""Filter semantics (docs/internals.md §1), Query building and apply_query shaping."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from dataknobs_data.exceptions import QueryError
from dataknobs_data.query import (
    Filter,
    Operator,
    Query,
    SortOrder,
    SortSpec,
    apply_query,
    compare,
    py_eq,
    resolve_path,
    sort_key,
    sort_records,
)
from dataknobs_data.query_logic import ComplexQuery
from dataknobs_data.records import Record

UTC = UTC
NAN = float("nan")


def m(op: str, value: Any, x: Any = None) -> bool:
    return Filter("f", op, x).matches(value)


# --------------------------------------------------------------------------- operators


def test_operator_values() -> None:
    assert {op.name: op.value for op in Operator} == {
        "EQ": "=", "NEQ": "!=", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=",
        "IN": "in", "NOT_IN": "not_in", "LIKE": "like", "NOT_LIKE": "not_like",
        "REGEX": "regex", "EXISTS": "exists", "NOT_EXISTS": "not_exists",
        "BETWEEN": "between", "NOT_BETWEEN": "not_between", "STARTS_WITH": "starts_with",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("=", Operator.EQ), ("==", Operator.EQ), ("EQ", Operator.EQ),
        ("!=", Operator.NEQ), (">", Operator.GT), (">=", Operator.GTE),
        ("<", Operator.LT), ("<=", Operator.LTE), ("IN", Operator.IN),
        ("not in", Operator.NOT_IN), ("NOT IN", Operator.NOT_IN), ("not_in", Operator.NOT_IN),
        ("Like", Operator.LIKE), ("not_like", Operator.NOT_LIKE), ("REGEX", Operator.REGEX),
        ("exists", Operator.EXISTS), ("Not_Exists", Operator.NOT_EXISTS),
        ("between", Operator.BETWEEN), ("NOT_BETWEEN", Operator.NOT_BETWEEN),
        ("starts_with", Operator.STARTS_WITH),
    ],
)  # fmt: skip
def test_operator_strings_are_case_insensitive(text: str, op: Operator) -> None:
    assert Filter("f", text, 1).operator is op
    assert Query().filter("f", text, 1).filters[0].operator is op


@pytest.mark.parametrize("bad", ["~=", "equals", "", "contains"])
def test_unknown_operator_raises_query_error_and_value_error(bad: str) -> None:
    with pytest.raises(QueryError, match="Unknown operator"):
        Filter("f", bad, 1)
    with pytest.raises(ValueError):
        Query().filter("f", bad, 1)


def test_missing_or_none_value() -> None:
    assert m("exists", 0) and not m("exists", None)
    assert m("not_exists", None) and not m("not_exists", "")
    for op in ["=", "!=", ">", ">=", "<", "<=", "in", "not_in", "like", "not_like",
               "regex", "between", "not_between", "starts_with"]:  # fmt: skip
        assert not m(op, None, None), op
        assert not m(op, None, [1, 2]), op


def test_eq_neq() -> None:
    assert m("=", 1, 1) and m("=", 1, 1.0) and m("=", True, 1) and m("=", Decimal("2"), 2)
    assert not m("=", "1", 1) and not m("=", b"a", "a")
    assert not m("=", NAN, NAN)
    assert not m("=", [NAN], [NAN])  # no identity shortcut inside lists
    assert m("=", [1, {"a": 2}], (1, {"a": 2.0}))
    assert not m("=", {"a": 1}, {"a": 1, "b": 2})
    assert m("!=", 1, 2) and not m("!=", 1, 1) and m("!=", "a", 1)
    aware = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert m("=", aware, datetime(2024, 1, 1, 13, tzinfo=timezone(timedelta(hours=1))))
    assert not m("=", aware, datetime(2024, 1, 1, 12))  # naive vs aware
    assert not m("=", date(2024, 1, 1), datetime(2024, 1, 1))
    assert m("=", date(2024, 1, 1), date(2024, 1, 1))


def test_ordering_numbers_and_strings() -> None:
    assert m(">", 5, 3) and m(">=", 3, 3.0) and m("<", 2, Decimal("2.5")) and m("<=", True, 1)
    assert not m(">", "5", 3) and not m("<", 3, "5")  # incomparable
    assert m(">", "b", "a") and m("<", "B", "a")  # code points
    assert not m(">", NAN, 1) and not m("<", NAN, 1) and not m(">=", 1, NAN)
    assert not m(">", [2], [1]) and not m(">", b"b", b"a")


def test_ordering_datetimes_and_iso_strings() -> None:
    aware = datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert m(">", aware, "2024-05-01T09:00:00Z")
    assert m("<", aware, "2024-05-01T11:00:00+00:00")
    assert m(">=", "2024-05-01T10:00:00Z", aware)  # the string may be the field value
    naive = datetime(2024, 5, 1, 10)
    assert m(">", naive, "2024-05-01") and m("=", naive, naive)
    assert not m(">", naive, "2024-05-01T09:00:00Z")  # naive vs aware: incomparable
    assert not m(">", aware, naive)
    assert not m(">", aware, "not a date")
    assert m(">", date(2024, 5, 2), "2024-05-01") and m("<", "2024-04-30", date(2024, 5, 1))
    assert not m(">", date(2024, 5, 2), datetime(2024, 5, 1))
    assert not m(">", date(2024, 5, 2), "garbage")


def test_compare_and_py_eq_helpers() -> None:
    assert compare(1, 2) == -1 and compare(2, 2.0) == 0 and compare("b", "a") == 1
    assert compare(1, "1") is None and compare(NAN, 1) is None
    assert compare(Decimal("NaN"), 1) is None
    assert py_eq({"a": [1, 2]}, {"a": [1, 2]}) and not py_eq(1, "1")


def test_in_not_in() -> None:
    assert m("in", 2, [1, 2]) and m("in", 2, (2.0,)) and m("in", "a", {"a", "b"})
    assert m("in", 3, 3)  # a scalar is treated as [x]
    assert not m("in", 3, [1, 2]) and not m("in", [1], [1, 2])
    assert m("in", [1], [[1], [2]])
    assert m("not_in", 3, [1, 2]) and not m("not_in", 1, [1, 2]) and m("not_in", 3, 4)


def test_between() -> None:
    assert m("between", 5, [1, 10]) and m("between", 1, (1, 10)) and m("between", 10, [1, 10])
    assert not m("between", 11, [1, 10]) and not m("between", "5", [1, 10])
    assert m("between", "b", ["a", "c"])
    assert m(
        "between", datetime(2024, 5, 1, tzinfo=UTC), ["2024-01-01T00:00Z", "2024-12-31T00:00:00Z"]
    )
    assert not m("between", datetime(2024, 5, 1, tzinfo=UTC), ["2024-01-01Z", "2025-01-01Z"])
    for malformed in ([1], [1, 2, 3], 5, "ab", None):
        assert not m("between", 1, malformed)
        assert m("not_between", 1, malformed)
    assert m("not_between", 11, [1, 10]) and not m("not_between", 5, [1, 10])
    assert m("not_between", "x", [1, 10])  # incomparable is not between


def test_like() -> None:
    assert m("like", "Hello World", "hello%") and m("like", "hello", "HELLO")
    assert m("like", "abc", "a_c") and not m("like", "abbc", "a_c")
    assert not m("like", "xhello", "hello%")  # anchored at both ends
    assert not m("like", "hello!", "hello")
    assert m("like", "a.c", "a.c") and not m("like", "abc", "a.c")  # '.' is literal
    assert m("like", "line1\nline2", "line1%line2") and m("like", "a\nb", "a_b")
    assert m("like", "50% off", "50\\% off") is False  # no escape character: '\' is literal
    assert m("like", "50\\x off", "50\\% off")
    assert m("like", "[x]", "[x]") and m("like", "a+b", "a+b")
    assert not m("like", 5, "5") and not m("like", "5", 5)
    assert m("not_like", "abc", "x%") and not m("not_like", "abc", "A%")
    assert not m("not_like", 5, "x%")  # non-strings: False for both


def test_regex_and_starts_with() -> None:
    assert m("regex", "order-123", r"\d+") and not m("regex", "order", r"^\d+$")
    assert m("regex", "abc", "b")  # search, not match
    assert not m("regex", 123, r"\d")
    with pytest.raises(QueryError, match="regex"):
        m("regex", "abc", "(unclosed")
    assert m("starts_with", "prefix-x", "prefix") and not m("starts_with", "x-prefix", "prefix")
    assert not m("starts_with", "Prefix", "prefix") and not m("starts_with", 12, "1")


def test_filter_to_dict_round_trip() -> None:
    f = Filter("age", ">=", 18)
    assert f.to_dict() == {"field": "age", "operator": ">=", "value": 18}
    assert Filter.from_dict(f.to_dict()) == f


# --------------------------------------------------------------------------- paths


def test_resolve_path() -> None:
    r = Record(
        {"a": {"b": [10, {"c": 3}]}, "x.y": 1, "x": {"y": 2}},
        metadata={"owner": "ann"},
        id="r1",
    )
    assert resolve_path(r, "id") == "r1"
    assert resolve_path(r, "x.y") == 1
    assert resolve_path(r, "a.b.0") == 10
    assert resolve_path(r, "a.b.1.c") == 3
    assert resolve_path(r, "a.b.2") is None
    assert resolve_path(r, "a.b.x") is None
    assert resolve_path(r, "a.b.0.z") is None
    assert resolve_path(r, "metadata.owner") == "ann"
    assert resolve_path(r, "missing") is None
    assert resolve_path(Record({"metadata": {"owner": "field"}}), "metadata.owner") == "field"
    assert resolve_path(Record({"id": 7}), "id") == "7"


def test_query_on_id_targets_record_id() -> None:
    records = [Record({"id": "data-id"}, id="real"), Record({"v": 1}, id="other")]
    found = apply_query(records, Query().filter("id", "=", "real"))
    assert [r.id for r in found] == ["real"]


# --------------------------------------------------------------------------- sorting


def test_sort_key_total_order_ascending() -> None:
    aware = datetime(2024, 1, 1, 1, tzinfo=UTC)
    naive = datetime(2024, 1, 1, 0)  # read as UTC for sorting only
    values: list[Any] = [
        None, {"k": 1}, b"b", date(2024, 1, 1), aware, "b", NAN, 3, b"a", naive, "a",
        -1.5, True, [1], Decimal("2.5"),
    ]  # fmt: skip
    ordered = sorted(values, key=sort_key)
    assert ordered[:5] == [-1.5, True, Decimal("2.5"), 3, ordered[4]]
    assert math.isnan(ordered[4])
    assert ordered[5:13] == ["a", "b", naive, aware, date(2024, 1, 1), b"a", b"b", {"k": 1}]
    assert ordered[13] == [1] and ordered[14] is None


def test_sort_descending_keeps_none_last_and_is_stable() -> None:
    records = [
        Record({"v": None}, id="n1"), Record({"v": 1}, id="a"), Record({"v": "s"}, id="s"),
        Record({"v": 3}, id="c"), Record({}, id="n2"), Record({"v": 1}, id="b"),
    ]  # fmt: skip
    asc = sort_records(records, [SortSpec("v")])
    assert [r.id for r in asc] == ["a", "b", "c", "s", "n1", "n2"]
    desc = sort_records(records, [SortSpec("v", SortOrder.DESC)])
    assert [r.id for r in desc] == ["s", "c", "a", "b", "n1", "n2"]


def test_multi_key_sort() -> None:
    records = [
        Record({"g": 1, "n": "b"}, id="1"), Record({"g": 2, "n": "a"}, id="2"),
        Record({"g": 1, "n": "a"}, id="3"), Record({"g": 2, "n": "c"}, id="4"),
    ]  # fmt: skip
    q = Query().sort_by("g", "desc").sort_by("n")
    assert [r.id for r in apply_query(records, q)] == ["2", "4", "3", "1"]


def test_sort_order_strings() -> None:
    assert SortSpec("a", "DESC").order is SortOrder.DESC
    assert SortSpec("a").order is SortOrder.ASC
    with pytest.raises(QueryError):
        SortSpec("a", "sideways")


# --------------------------------------------------------------------------- Query


def test_query_fluent_methods() -> None:
    q = Query()
    assert q.filter("a", "=", 1) is q
    assert q.sort_by("a") is q and q.sort("b", SortOrder.DESC) is q
    assert q.limit(5) is q and q.offset(2) is q and q.select("a", "b") is q
    assert [f.field for f in q.filters] == ["a"]
    assert q.sort_specs == [SortSpec("a"), SortSpec("b", SortOrder.DESC)]
    assert (q.limit_value, q.offset_value, q.fields) == (5, 2, ["a", "b"])
    q.select()
    assert q.fields is None
    q.clear_filters().clear_sort()
    assert q.filters == [] and q.sort_specs == []


def test_query_negative_paging_is_an_error() -> None:
    with pytest.raises(QueryError):
        Query().limit(-1)
    with pytest.raises(QueryError):
        Query().offset(-3)


def test_query_copy_is_independent() -> None:
    q = Query().filter("a", "in", [1, 2]).sort_by("a")
    c = q.copy()
    assert c == q
    c.filter("b", "=", 1)
    c.filters[0].value.append(3)
    assert len(q.filters) == 1 and q.filters[0].value == [1, 2]


def test_query_to_dict_round_trip() -> None:
    q = Query().filter("a", ">", 1).filter("b", "like", "x%").sort_by("a", "desc")
    q.limit(10).offset(5).select("a")
    d = q.to_dict()
    assert d == {
        "filters": [
            {"field": "a", "operator": ">", "value": 1},
            {"field": "b", "operator": "like", "value": "x%"},
        ],
        "sort": [{"field": "a", "order": "desc"}],
        "limit": 10,
        "offset": 5,
        "fields": ["a"],
    }
    assert Query.from_dict(d) == q
    assert Query.from_dict({}) == Query()


def test_and_appends() -> None:
    q = Query().filter("a", "=", 1)
    same = q.and_(Filter("b", "=", 2), Query().filter("c", "=", 3))
    assert same is q
    assert [f.field for f in q.filters] == ["a", "b", "c"]


def test_or_and_not_semantics() -> None:
    records = [Record({"a": a, "b": b}, id=f"{a}{b}") for a in (1, 2) for b in (1, 2)]
    either = Query().or_(Filter("a", "=", 1), Filter("b", "=", 1))
    assert isinstance(either, ComplexQuery)
    assert [r.id for r in apply_query(records, either)] == ["11", "12", "21"]
    scoped = Query().filter("a", "=", 2).or_(Filter("b", "=", 1), Filter("b", "=", 5))
    assert [r.id for r in apply_query(records, scoped)] == ["21"]
    negated = Query().filter("a", "=", 1).not_(Filter("b", "=", 1))
    assert [r.id for r in apply_query(records, negated)] == ["12"]
    kept = Query().sort_by("b", "desc").limit(1).or_(Filter("a", "=", 1))
    assert [r.id for r in apply_query(records, kept)] == ["12"]


# --------------------------------------------------------------------------- apply_query


def people() -> list[Record]:
    return [
        Record({"name": "ann", "age": 30, "city": "Oslo"}, id="p1"),
        Record({"name": "bob", "age": 25}, id="p2"),
        Record({"name": "cid", "age": 35, "city": "Rome"}, id="p3"),
        Record({"name": "dee", "age": 25, "city": "Oslo"}, id="p4"),
    ]


def test_apply_query_shaping_order() -> None:
    q = Query().filter("age", ">=", 25).sort_by("age").sort_by("name", "desc")
    assert [r.id for r in apply_query(people(), q)] == ["p4", "p2", "p1", "p3"]
    assert [r.id for r in apply_query(people(), q.offset(1).limit(2))] == ["p2", "p1"]
    assert apply_query(people(), Query().limit(0)) == []
    assert [r.id for r in apply_query(people(), Query().offset(3))] == ["p4"]
    assert [r.id for r in apply_query(people(), None)] == ["p1", "p2", "p3", "p4"]


def test_apply_query_projection_and_copies() -> None:
    source = people()
    found = apply_query(source, Query().filter("city", "exists").select("name"))
    assert [(r.id, r.data) for r in found] == [
        ("p1", {"name": "ann"}), ("p3", {"name": "cid"}), ("p4", {"name": "dee"}),
    ]  # fmt: skip
    found[0]["name"] = "changed"
    assert source[0]["name"] == "ann"
    unprojected = apply_query(source, Query())
    unprojected[0]["age"] = 99
    assert source[0]["age"] == 30


def test_apply_query_rejects_negative_paging() -> None:
    q = Query()
    q.limit_value = -1
    with pytest.raises(QueryError):
        apply_query(people(), q)


# ---------------------------------------------------------------------------- 0.11.0 surface


def test_set_limit_and_offset_and_their_readers() -> None:
    q = Query().filter("a", ">", 1).set_limit(5).set_offset(2)
    assert (q.limit_value, q.offset_value) == (5, 2)
    assert (q.limit_property, q.offset_property) == (5, 2)
    q.sort_by("b", "desc")
    assert q.sort_property == [SortSpec("b", SortOrder.DESC)]
    assert Query().limit(value=3).offset(value=1).to_dict()["limit"] == 3
    with pytest.raises(QueryError):
        Query().set_limit(-1)


def test_to_dict_leaves_out_unset_keys() -> None:
    assert Query().to_dict() == {"filters": [], "sort": []}
    full = Query().filter("a", "=", 1).sort_by("b", "desc").set_limit(5).set_offset(2)
    full.select("a")
    assert full.to_dict() == {
        "filters": [{"field": "a", "operator": "=", "value": 1}],
        "sort": [{"field": "b", "order": "desc"}],
        "limit": 5,
        "offset": 2,
        "fields": ["a"],
    }
    assert Query.from_dict(full.to_dict()).to_dict() == full.to_dict()


def test_filter_value_and_record_value_keyword() -> None:
    f = Filter("age", Operator.GT, 30)
    assert f.value == 30
    assert f.matches(record_value=31) and not f.matches(record_value=30)


def test_coerce_operator_and_sort_order() -> None:
    from dataknobs_data.query import coerce_operator, coerce_sort_order

    assert coerce_operator("==") is Operator.EQ
    assert coerce_operator("NOT BETWEEN") is Operator.NOT_BETWEEN
    assert coerce_operator(Operator.IN) is Operator.IN
    with pytest.raises(ValueError, match="bogus"):
        coerce_operator("bogus")
    assert coerce_sort_order("DESC") is SortOrder.DESC
    assert coerce_sort_order(SortOrder.ASC) is SortOrder.ASC
    with pytest.raises(ValueError, match="sideways"):
        coerce_sort_order("sideways")


def test_storage_key_field() -> None:
    from dataknobs_data.query import RESERVED_KEY_FIELD, is_storage_key_field

    assert RESERVED_KEY_FIELD == "id"
    assert is_storage_key_field("id") and not is_storage_key_field("user_id")


def test_empty_or_adds_nothing() -> None:
    # As 0.11.0: Query().or_() is the query itself, not "OR of nothing" (which is False).
    rows = [Record({"a": 1}), Record({"a": 2})]
    assert len(apply_query(rows, Query().or_())) == 2
    assert [r["a"] for r in apply_query(rows, Query().filter("a", "=", 1).or_())] == [1]
