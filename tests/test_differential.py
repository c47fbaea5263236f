"""Differential test: every backend's results equal the Python reference on random data.

Random records and random queries (all 16 operators, AND/OR/NOT, multi-key sort, offset,
limit) go to each backend; `search`, `count` and `stream_read` must equal filtering the same
records with `ComplexQuery.matches` and shaping them in Python.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataknobs_data import (
    ComplexQuery,
    Filter,
    FilterCondition,
    LogicCondition,
    LogicOperator,
    Operator,
    Record,
    SortOrder,
    SortSpec,
    StreamConfig,
)
from dataknobs_data.factory import database_factory
from dataknobs_data.query import apply_query

from .conftest import BACKENDS

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))

datetimes = st.builds(
    dt.datetime,
    year=st.integers(2019, 2021),
    month=st.integers(1, 12),
    day=st.integers(1, 28),
    hour=st.integers(0, 23),
    tzinfo=st.sampled_from([UTC, PLUS2, None]),
)
tenths = st.floats(-5, 5, allow_nan=False).map(lambda f: round(f, 1))
decimals = st.decimals(-5, 5, places=1, allow_nan=False, allow_infinity=False)
special_floats = st.sampled_from([math.inf, -math.inf, math.nan])
short_text = st.text(alphabet="abAB_%.z", max_size=4)
iso_text = datetimes.map(lambda d: d.isoformat().replace("+00:00", "Z"))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    tenths,
    decimals,
    short_text,
    iso_text,
    datetimes,
)
field_values: dict[str, st.SearchStrategy[Any]] = {
    "a": st.one_of(st.integers(-5, 5), st.none()),
    "b": st.one_of(short_text, iso_text),
    "c": st.one_of(tenths, st.integers(-5, 5), decimals, special_floats),
    "d": st.booleans(),
    "e": st.one_of(datetimes, iso_text),
    "tags": st.lists(st.sampled_from(["x", "y", "z"]), max_size=3),
    "n": st.fixed_dictionaries({"x": st.integers(-2, 2)}),
}
FIELDS = ["a", "b", "c", "d", "e", "tags", "n.x", "id", "missing", "metadata.m"]


@st.composite
def records(draw: st.DrawFn) -> list[Record]:
    out = []
    for i in range(draw(st.integers(0, 10))):
        names = draw(st.sets(st.sampled_from(sorted(field_values))))
        data = {name: draw(field_values[name]) for name in sorted(names)}
        meta = {"m": draw(st.integers(0, 3))} if draw(st.booleans()) else {}
        out.append(Record(data, metadata=meta, id=f"r{i}"))
    return out


@st.composite
def filters(draw: st.DrawFn) -> Filter:
    op = draw(st.sampled_from(list(Operator)))
    field = draw(st.sampled_from(FIELDS))
    value: Any
    if op in (Operator.IN, Operator.NOT_IN):
        value = draw(st.lists(scalars, max_size=3))
    elif op in (Operator.BETWEEN, Operator.NOT_BETWEEN):
        value = draw(
            st.one_of(st.lists(scalars, min_size=2, max_size=2), st.lists(scalars, max_size=3))
        )
    elif op in (Operator.LIKE, Operator.NOT_LIKE):
        value = draw(st.text(alphabet="aAbB%_.z", max_size=4))
    elif op == Operator.REGEX:
        value = draw(st.sampled_from(["^a", "b$", "a|B", "[ab]", ".", "A.*b", "^$", "z"]))
    elif op in (Operator.EXISTS, Operator.NOT_EXISTS):
        value = None
    elif op == Operator.STARTS_WITH:
        value = draw(short_text)
    else:
        value = draw(scalars)
    return Filter(field, op, value)


conditions = st.recursive(
    filters().map(FilterCondition),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda cs: LogicCondition(LogicOperator.AND, cs)),
        st.lists(inner, max_size=3).map(lambda cs: LogicCondition(LogicOperator.OR, cs)),
        inner.map(lambda c: LogicCondition(LogicOperator.NOT, [c])),
    ),
    max_leaves=5,
)


@st.composite
def queries(draw: st.DrawFn) -> ComplexQuery:
    sorts = draw(
        st.lists(
            st.builds(SortSpec, st.sampled_from(FIELDS), st.sampled_from(list(SortOrder))),
            max_size=2,
        )
    )
    return ComplexQuery(
        condition=draw(st.one_of(st.none(), conditions)),
        sort_specs=sorts,
        limit_value=draw(st.one_of(st.none(), st.integers(0, 6))),
        offset_value=draw(st.one_of(st.none(), st.integers(0, 4))),
    )


def unshaped(query: ComplexQuery) -> ComplexQuery:
    return ComplexQuery(condition=query.condition)


@pytest.mark.parametrize("backend_name", sorted(BACKENDS))
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=records(), query=queries())
def test_backend_agrees_with_reference(
    backend_name: str, data: list[Record], query: ComplexQuery
) -> None:
    expected = [r.id for r in apply_query(data, query)]
    expected_count = len(apply_query(data, unshaped(query)))
    with tempfile.TemporaryDirectory() as tmp:
        name, config = BACKENDS[backend_name](Path(tmp))
        db = database_factory.create(backend=name, **config)
        db.connect()
        try:
            db.create_batch(data)
            assert [r.id for r in db.search(query)] == expected
            assert db.count(query) == expected_count
            streamed = db.stream_read(query, StreamConfig(batch_size=3, prefetch=1))
            assert [r.id for r in streamed] == expected
        finally:
            db.close()
