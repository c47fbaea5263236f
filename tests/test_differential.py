"""Differential test: every backend's results equal the Python reference on random data.

Random records and random queries (all 16 operators, AND/OR/NOT, multi-key sort, offset,
limit, projection; nested and dotted field paths; text from all of Unicode and ISO-8601 strings
of every form Python reads) go to each backend through the sync and the async API; `search`,
`count` and `stream_read` must equal filtering the same records with `ComplexQuery.matches`
and shaping them in Python.
"""

from __future__ import annotations

import asyncio
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
from dataknobs_data.factory import async_database_factory, database_factory
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
short_text = st.one_of(
    st.text(alphabet="abAB_%.z\n", max_size=4),
    # Any character a store accepts: every one but NUL and lone surrogates (test_reliability).
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=4),
)
iso_text = st.one_of(
    datetimes.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    datetimes.map(lambda d: d.isoformat(sep=" ", timespec="minutes")),
    # Forms Python 3.11 reads besides isoformat()'s (tests/test_iso_oracle.py has the rest).
    st.sampled_from(
        [
            "2020-W01-3",
            "2020W013T10",
            "2021-01-01 10:00:00 +00:00",
            "2020-06-01T10.5",
            "2020-06-01T10:00+0530",
            "2020-06-01Z",
            "20200601T100000,5-02",
        ]
    ),
)
# Strings that read like the JSON text of a list or dict (SQLite's json_extract returns that
# text for one, so string equality there also checks the stored type) or hold `"$` (the start
# of a tag, which lets rows past the SQLite translation's cheap numeric test).
json_like_text = st.sampled_from(["[0,1]", "[]", "[1]", "[0]", '{"y":0}', "{}", "$x", '"$'])
scalars = st.one_of(
    st.none(),
    json_like_text,
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
    "n": st.fixed_dictionaries(
        {"x": st.integers(-2, 2), "deep": st.fixed_dictionaries({"y": short_text})}
    ),
    "a.b": st.integers(-2, 2),
    # One field of every JSON type at once, so each operator meets each pairing of types (the
    # SQL translations decide by the stored type: 1 = "1" is false, True == 1, 1 == 1.0).
    "x": st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-2, 2),
        st.sampled_from([0.0, -0.0, 1.0, 0.5, 2**53 + 1, -(2**63), 2**63 - 1]),
        st.sampled_from(["1", "a", "A", "K", "\u212a", "\u017f", "\u0130", "ß", "", "a%"]),
        json_like_text,
        short_text,
        st.lists(st.integers(0, 1), max_size=2),
        st.fixed_dictionaries({"y": st.integers(0, 1)}),
    ),
}
FIELDS = [
    "a",
    "b",
    "c",
    "d",
    "e",
    "tags",
    "tags.0",
    "tags.2",
    "n.x",
    "n.deep.y",
    "n.nope",
    "a.b",
    "x",
    "x.y",
    "id",
    "missing",
    "metadata.m",
]


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
        # Letters whose case folds across ASCII (KELVIN SIGN, LONG S, dotted I) too.
        value = draw(st.text(alphabet="aAbB%_.zkKsSiI\u212a", max_size=4))
    elif op == Operator.REGEX:
        value = draw(
            st.sampled_from(
                [
                    "^a",
                    "b$",
                    "a|B",
                    "[ab]",
                    ".",
                    "A.*b",
                    "^$",
                    "z",
                    "a$",
                    "^a$",
                    "b\\Z",
                    "(?m)a$",
                    "a\n",
                    "[$]",
                    "\\w+$",
                    "^\\s",
                ]
            )
        )
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
        fields=draw(
            st.one_of(st.none(), st.lists(st.sampled_from(sorted(field_values)), max_size=3))
        ),
    )


def unshaped(query: ComplexQuery) -> ComplexQuery:
    return ComplexQuery(condition=query.condition)


def shaped(records: list[Record]) -> list[tuple[str | None, list[str]]]:
    """What a result is compared by: ids in order, and the fields each kept."""
    return [(r.id, sorted(r.field_names())) for r in records]


@pytest.mark.parametrize("backend_name", sorted(BACKENDS))
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=records(), query=queries(), use_async=st.booleans())
def test_backend_agrees_with_reference(
    backend_name: str, data: list[Record], query: ComplexQuery, use_async: bool
) -> None:
    expected = shaped(apply_query(data, query))
    expected_count = len(apply_query(data, unshaped(query)))
    with tempfile.TemporaryDirectory() as tmp:
        name, config = BACKENDS[backend_name](Path(tmp))
        if use_async:
            asyncio.run(_agrees_async(name, config, data, query, expected, expected_count))
            return
        db = database_factory.create(backend=name, **config)
        db.connect()
        try:
            db.create_batch(data)
            assert shaped(db.search(query)) == expected
            assert db.count(query) == expected_count
            streamed = db.stream_read(query, StreamConfig(batch_size=3, prefetch=1))
            assert shaped(list(streamed)) == expected
        finally:
            db.close()


async def _agrees_async(
    name: str,
    config: dict[str, Any],
    data: list[Record],
    query: ComplexQuery,
    expected: list[tuple[str | None, list[str]]],
    expected_count: int,
) -> None:
    db = async_database_factory.create(backend=name, **config)
    await db.connect()
    try:
        await db.create_batch(data)
        assert shaped(await db.search(query)) == expected
        assert await db.count(query) == expected_count
        streamed = db.stream_read(query, StreamConfig(batch_size=3, prefetch=1))
        assert shaped([r async for r in streamed]) == expected
    finally:
        await db.close()
