"""Boolean condition trees, ComplexQuery, QueryBuilder and the native spec (internals §2)."""

from __future__ import annotations

import pytest

from dataknobs_data.exceptions import QueryError
from dataknobs_data.query import Filter, Operator, Query, SortOrder, SortSpec, apply_query
from dataknobs_data.query_logic import (
    ComplexQuery,
    Condition,
    FilterCondition,
    LogicCondition,
    LogicOperator,
    QueryBuilder,
    to_spec,
)
from dataknobs_data.records import Record

A1 = FilterCondition(Filter("a", "=", 1))
B1 = FilterCondition(Filter("b", "=", 1))


def grid() -> list[Record]:
    return [Record({"a": a, "b": b}, id=f"{a}{b}") for a in (1, 2) for b in (1, 2)]


def ids(query: ComplexQuery | Query) -> list[str]:
    return [r.id or "" for r in apply_query(grid(), query)]


def test_logic_operator_values() -> None:
    assert [op.value for op in LogicOperator] == ["and", "or", "not"]


def test_condition_matching() -> None:
    r = Record({"a": 1, "b": 2})
    assert A1.matches(r) and not B1.matches(r)
    assert not LogicCondition(LogicOperator.AND, [A1, B1]).matches(r)
    assert LogicCondition(LogicOperator.OR, [A1, B1]).matches(r)
    assert LogicCondition(LogicOperator.NOT, [B1]).matches(r)
    assert LogicCondition(LogicOperator.AND, []).matches(r)  # AND of nothing is True
    assert not LogicCondition(LogicOperator.OR, []).matches(r)  # OR of nothing is False
    with pytest.raises(TypeError):
        Condition()  # type: ignore[abstract]


def test_complex_query_matches_and_defaults() -> None:
    cq = ComplexQuery()
    assert cq.condition is None and cq.sort_specs == [] and cq.fields is None
    assert cq.limit_value is None and cq.offset_value is None
    assert cq.matches(Record({"x": 1}))
    assert ids(ComplexQuery(LogicCondition(LogicOperator.OR, [A1, B1]))) == ["11", "12", "21"]


def test_complex_query_and_or_combinators() -> None:
    qa = Query().filter("a", "=", 1)
    qb = Query().filter("b", "=", 1)
    assert ids(ComplexQuery.OR([qa, qb])) == ["11", "12", "21"]
    assert ids(ComplexQuery.AND([qa, qb])) == ["11"]
    assert ids(ComplexQuery.OR(Filter("a", "=", 2), B1)) == ["11", "21", "22"]
    base = ComplexQuery(A1, sort_specs=[SortSpec("b", SortOrder.DESC)], limit_value=5)
    combined = base.OR(Filter("b", "=", 1))
    assert combined.limit_value == 5 and combined.sort_specs == base.sort_specs
    assert ids(combined) == ["12", "11", "21"]
    assert ids(base.AND(B1)) == ["11"]


def test_to_simple_query() -> None:
    cq = ComplexQuery(
        LogicCondition(LogicOperator.AND, [A1, LogicCondition(LogicOperator.AND, [B1])]),
        sort_specs=[SortSpec("a")],
        limit_value=3,
        offset_value=1,
        fields=["a"],
    )
    simple = cq.to_simple_query()
    assert simple.filters == [A1.filter, B1.filter]
    assert (simple.limit_value, simple.offset_value, simple.fields) == (3, 1, ["a"])
    assert ComplexQuery().to_simple_query() == Query()
    with pytest.raises(QueryError):
        ComplexQuery(LogicCondition(LogicOperator.OR, [A1, B1])).to_simple_query()


def test_to_dict_from_dict_round_trip() -> None:
    cq = ComplexQuery(
        LogicCondition(LogicOperator.OR, [A1, LogicCondition(LogicOperator.NOT, [B1])]),
        sort_specs=[SortSpec("a", SortOrder.DESC)],
        limit_value=2,
        offset_value=1,
        fields=["a", "b"],
    )
    d = cq.to_dict()
    assert d["condition"]["type"] == "logic" and d["condition"]["operator"] == "or"
    assert d["condition"]["conditions"][0] == {
        "type": "filter",
        "filter": {"field": "a", "operator": "=", "value": 1},
    }
    back = ComplexQuery.from_dict(d)
    assert back == cq
    assert ids(back) == ids(cq)
    assert ComplexQuery.from_dict(ComplexQuery().to_dict()) == ComplexQuery()


def test_query_builder() -> None:
    built = QueryBuilder().where("a", "=", 1).where("b", ">=", 2).build()
    assert ids(built) == ["12"]
    either = QueryBuilder().where("a", "=", 1).or_(Filter("b", "=", 1)).build()
    assert ids(either) == ["11", "12", "21"]
    neg = QueryBuilder().where("a", "=", 2).not_(Filter("b", "=", 1)).build()
    assert ids(neg) == ["22"]
    grouped = QueryBuilder().and_(Query().or_(Filter("a", "=", 2), Filter("b", "=", 2)))
    shaped = grouped.sort_by("a", "desc").sort_by("b").offset(1).limit(2).select("a").build()
    assert ids(shaped) == ["22", "12"]
    assert [r.data for r in apply_query(grid(), shaped)] == [{"a": 2}, {"a": 1}]
    assert QueryBuilder().build() == ComplexQuery()


def test_builder_build_is_detached() -> None:
    builder = QueryBuilder().where("a", "=", 1)
    first = builder.build()
    builder.where("b", "=", 1)
    assert ids(first) == ["11", "12"]


# --------------------------------------------------------------------------- spec


def test_to_spec_none_and_simple_query() -> None:
    assert to_spec(None) is None
    assert to_spec(Query()) == {
        "where": None, "sort": [], "offset": None, "limit": None, "fields": None,
    }  # fmt: skip
    q = Query().filter("age", ">", 30).filter("tags", "not in", ("x", "y"))
    q.sort_by("age", "desc").sort_by("name").offset(5).limit(10).select("name")
    assert to_spec(q) == {
        "where": (
            "and",
            [("filter", "age", ">", 30), ("filter", "tags", "not_in", ["x", "y"])],
        ),
        "sort": [("age", True), ("name", False)],
        "offset": 5,
        "limit": 10,
        "fields": ["name"],
    }


def test_to_spec_complex_query() -> None:
    cq = Query().filter("a", "=", 1).or_(Filter("b", "in", {3}), Filter("c", "exists"))
    spec = to_spec(cq)
    assert spec is not None
    assert spec["where"] == (
        "and",
        [
            ("filter", "a", "=", 1),
            ("or", [("filter", "b", "in", [3]), ("filter", "c", "exists", None)]),
        ],
    )
    neg = to_spec(Query().not_(Filter("d", "between", (1, 2))))
    assert neg is not None
    assert neg["where"] == ("not", ("filter", "d", "between", [1, 2]))
    multi = to_spec(ComplexQuery(LogicCondition(LogicOperator.NOT, [A1, B1])))
    assert multi is not None
    assert multi["where"] == (
        "not", ("and", [("filter", "a", "=", 1), ("filter", "b", "=", 1)])
    )  # fmt: skip


def test_to_spec_uses_operator_values() -> None:
    for op in Operator:
        spec = to_spec(Query().filter("f", op, 1))
        assert spec is not None
        assert spec["where"] == ("and", [("filter", "f", op.value, 1)])


def test_to_spec_rejects_negative_paging() -> None:
    q = Query()
    q.offset_value = -1
    with pytest.raises(QueryError):
        to_spec(q)
    cq = ComplexQuery()
    cq.limit_value = -2
    with pytest.raises(QueryError):
        to_spec(cq)


# ---------------------------------------------------------------------------- 0.11.0 surface


def test_condition_from_dict() -> None:
    from dataknobs_data.query_logic import condition_from_dict

    tree = LogicCondition(LogicOperator.OR, [A1, FilterCondition(Filter("b", ">", 2))])
    back = condition_from_dict(tree.to_dict())
    assert isinstance(back, LogicCondition) and back.to_dict() == tree.to_dict()
    assert back.matches(Record({"b": 3})) and not back.matches(Record({"b": 1}))
    with pytest.raises(ValueError, match="nonsense"):
        condition_from_dict({"type": "nonsense"})


def test_complex_query_attributes_and_sparse_to_dict() -> None:
    cq = Query().filter("a", "=", 1).sort_by("a").set_limit(3).or_(Filter("b", "=", 2))
    assert cq.condition is not None
    assert (cq.limit_value, cq.offset_value, cq.fields) == (3, None, None)
    assert ComplexQuery().to_dict() == {}
    assert set(cq.to_dict()) == {"condition", "sort", "limit"}
    assert ComplexQuery.from_dict(cq.to_dict()).to_dict() == cq.to_dict()


def test_and_or_take_queries_by_keyword() -> None:
    either = ComplexQuery.OR(queries=[Query().filter("a", "=", 1), Query().filter("a", "=", 2)])
    both = ComplexQuery.AND(queries=[Query().filter("a", ">", 0), Query().filter("a", "<", 2)])
    rows = [Record({"a": n}) for n in (1, 2, 3)]
    assert [r["a"] for r in rows if either.matches(r)] == [1, 2]
    assert [r["a"] for r in rows if both.matches(r)] == [1]


def test_builder_keywords_of_0_11_0() -> None:
    built = QueryBuilder().where("a", ">", 0).not_(condition=Filter("a", "=", 2)).limit(value=5)
    cq = built.build()
    rows = [Record({"a": n}) for n in (1, 2, 3)]
    assert [r["a"] for r in rows if cq.matches(r)] == [1, 3]
    assert cq.limit_value == 5
