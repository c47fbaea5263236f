"""`db.aggregate` on every backend equals a plain-Python reference (docs/aggregations.md).

The reference below is written from the documented rules alone: filter with the query's
`matches`, group by exact values (ordered as `sort_by` orders them, None last, ties between
kinds broken bool < int < float < Decimal), and compute each metric. Mixed data on purpose:
ints, floats, ints whose sum leaves 64 bits, bools, strings, Decimals, None, missing fields,
nested fields, metadata, datetimes (naive and aware) and non-ASCII text. The queries include
ones SQL can decide and ones only the core's evaluator can (REGEX, LIKE, OR), so both paths
of a backend that pushes work down are covered.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import Decimal
from typing import Any

import pytest

from dataknobs_data import AsyncDatabase, Query, Record, SyncDatabase
from dataknobs_data.exceptions import QueryError
from dataknobs_data.query import Filter, Operator, resolve_path, sort_key
from dataknobs_data.query_logic import ComplexQuery, FilterCondition, LogicCondition, LogicOperator

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))
MISSING = object()

# ------------------------------------------------------------------------------ the reference

_KIND = {bool: 0, int: 1, float: 2, Decimal: 3, list: 8, dict: 9}


def canon(v: Any) -> tuple[Any, ...]:
    """The documented identity and order of a value: sort_by's order, then the kind, then
    (datetimes) naive before aware, by offset; lists item by item, dicts by sorted key."""
    tie: tuple[Any, ...] = ()
    if isinstance(v, dt.datetime):
        off = v.utcoffset()
        tie = (0,) if off is None else (1, off.total_seconds())
    elif isinstance(v, list):
        tie = tuple(canon(x) for x in v)
    elif isinstance(v, dict):
        tie = tuple((k, canon(v[k])) for k in sorted(v))
    return (sort_key(v), _KIND.get(type(v), 7), tie)


def _number(v: Any) -> bool:
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def _sum(values: list[Any]) -> int | float | None:
    nums = [v for v in values if _number(v)]
    if not nums:
        return None
    if all(isinstance(v, int) for v in nums):
        return sum(nums)
    return math.fsum(float(v) for v in nums)


def _metric(op: str, field: str | None, group: list[Record]) -> Any:
    if field is None:
        return len(group)
    values = [v for v in (resolve_path(r, field) for r in group) if v is not None]
    if op == "count":
        return len(values)
    if op == "sum":
        return _sum(values)
    if op == "avg":
        s = _sum(values)
        return None if s is None else float(s) / sum(1 for v in values if _number(v))
    if op == "min":
        return min(values, key=canon) if values else None
    if op == "max":
        return max(values, key=canon) if values else None
    assert op == "cardinality"
    return len({canon(v) for v in values})


def reference(
    records: list[Record],
    query: Query | ComplexQuery | None,
    group_by: str | list[str] | None,
    metrics: dict[str, tuple[str, str | None]] | None,
) -> list[dict[str, Any]]:
    matched = [r for r in records if query is None or query.matches(r)]
    fields = [group_by] if isinstance(group_by, str) else list(group_by or [])
    metrics = metrics if metrics is not None else {"count": ("count", None)}
    groups: dict[tuple[Any, ...], tuple[list[Any], list[Record]]] = {}
    for r in matched:
        values = [resolve_path(r, f) for f in fields]
        key = tuple(canon(v) for v in values)
        groups.setdefault(key, (values, []))[1].append(r)
    if not fields and not groups:
        groups[()] = ([], [])
    out = []
    for key in sorted(groups):
        values, members = groups[key]
        row = dict(zip(fields, values, strict=True))
        for name, (op, field) in metrics.items():
            row[name] = _metric(op, field, members)
        out.append(row)
    return out


def typed(rows: list[dict[str, Any]]) -> list[list[tuple[str, str, Any]]]:
    """Rows with every value's type next to it: 1, 1.0 and True must not pass for each other."""
    return [[(k, type(v).__name__, v) for k, v in row.items()] for row in rows]


# ------------------------------------------------------------------------------ the data


def make_records(seed: int = 11, n: int = 90) -> list[Record]:
    rnd = random.Random(seed)
    cats = ["alpha", "beta", "gamma", "ünï", "日本", "Zeta", None, MISSING]
    kinds = [
        1,
        1.0,
        True,
        False,
        0,
        "1",
        None,
        MISSING,
        dt.datetime(2024, 1, 1, 12, tzinfo=UTC),
        dt.datetime(2024, 1, 1, 14, tzinfo=PLUS2),
        dt.datetime(2024, 1, 1, 12),
    ]
    ns = [0, 1, 2, -3, 7, 2.5, -0.75, 1e-3, True, False, "12", Decimal("2.5"), None, MISSING]
    whens = [
        dt.datetime(2023, 5, 1, 10, tzinfo=UTC),
        dt.datetime(2023, 5, 1, 13, tzinfo=PLUS2),
        dt.datetime(2022, 1, 2, 3),
        dt.datetime(2025, 12, 31, 23, 59),
        None,
        MISSING,
    ]
    names = ["ångström", "bob", "Émile", "zoë", "日本語", "a\nb", "", "m%n_o", "Ann", "😀x"]
    records = []
    for i in range(n):
        data: dict[str, Any] = {}
        for key, choices in (("cat", cats), ("kind", kinds), ("n", ns), ("when", whens)):
            v = rnd.choice(choices)
            if v is not MISSING:
                data[key] = v
        data["name"] = rnd.choice(names)
        data["x"] = rnd.choice([0.1, 0.2, 0.3, 1e16, -1e16, 3.0, 1 / 3])
        # Ints near the 64-bit edge: a group's sum leaves i64 (an exact Python int).
        data["big"] = rnd.choice([2**62, 2**63 - 1, -(2**62), 5])
        if rnd.random() < 0.7:
            inner = rnd.choice(["p", "q", 3, None])
            data["nested"] = rnd.choice(
                # The same dict in two key orders is one value.
                [
                    {"inner": {"k": inner}, "z": 1},
                    {"z": 1, "inner": {"k": inner}},
                    "flat",
                    [1, inner],
                    {"inner": {"k": inner}},
                ]
            )
        records.append(Record(data, metadata={"tag": rnd.choice(["t1", "t2"])}, id=f"r{i:03d}"))
    return records


RECORDS = make_records()

METRICS: dict[str, tuple[str, str | None]] = {
    "rows": ("count", None),
    "n_present": ("count", "n"),
    "n_sum": ("sum", "n"),
    "n_avg": ("avg", "n"),
    "n_min": ("min", "n"),
    "n_max": ("max", "n"),
    "n_card": ("cardinality", "n"),
    "x_sum": ("sum", "x"),
    "x_avg": ("avg", "x"),
    "big_sum": ("sum", "big"),
    "big_avg": ("avg", "big"),
    "when_min": ("min", "when"),
    "when_max": ("max", "when"),
    "name_min": ("min", "name"),
    "name_max": ("max", "name"),
    "name_card": ("cardinality", "name"),
    "kind_card": ("cardinality", "kind"),
    "kind_min": ("min", "kind"),
}


def _or() -> ComplexQuery:
    return ComplexQuery(
        condition=LogicCondition(
            LogicOperator.OR,
            [
                FilterCondition(Filter("cat", Operator.EQ, "beta")),
                FilterCondition(Filter("n", Operator.GT, 1)),
            ],
        )
    )


QUERIES: dict[str, Any] = {
    "all": None,
    "gt": Query().filter("n", ">", 0),
    "eq-str": Query().filter("cat", "=", "alpha"),
    "exists": Query().filter("kind", "exists"),
    # Only the core decides these exactly.
    "regex": Query().filter("name", "regex", "^[a-mÅ-ö]"),
    "like": Query().filter("cat", "like", "%a%"),
    "or": _or(),
    # Sort, offset and limit play no part in an aggregation.
    "shaped": Query().filter("big", ">", 0).sort_by("name").limit(3).offset(1),
    "none": Query().filter("cat", "=", "no such value"),
}

GROUPS: dict[str, Any] = {
    "no-group": None,
    "cat": "cat",
    "kind": "kind",
    "two": ["cat", "metadata.tag"],
    "nested": "nested.inner.k",
    "when": ["when"],
}


def _check(got: list[dict[str, Any]], records: list[Record], q: Any, g: Any, m: Any) -> None:
    want = reference(records, q, g, m)
    assert typed(got) == typed(want)


@pytest.fixture
def loaded(db: SyncDatabase) -> SyncDatabase:
    db.create_batch(RECORDS)
    return db


@pytest.mark.parametrize("qname", sorted(QUERIES))
def test_every_group_and_metric_equals_the_reference(loaded: SyncDatabase, qname: str) -> None:
    q = QUERIES[qname]
    for g in GROUPS.values():
        got = loaded.aggregate(q, group_by=g, metrics=METRICS)
        _check(got, RECORDS, q, g, METRICS)


async def test_async_face_equals_the_reference(adb: AsyncDatabase) -> None:
    await adb.create_batch(RECORDS)
    for qname in ("all", "gt", "regex", "or"):
        q = QUERIES[qname]
        for g in (None, "cat", ["cat", "metadata.tag"]):
            got = await adb.aggregate(q, group_by=g, metrics=METRICS)
            _check(got, RECORDS, q, g, METRICS)
    assert await adb.aggregate() == [{"count": len(RECORDS)}]


COUNTS: dict[str, tuple[str, str | None]] = {
    "rows": ("count", None),
    "n_present": ("count", "n"),
    "kind_present": ("count", "kind"),
}


@pytest.mark.parametrize("qname", ["all", "regex"])
def test_counts_equal_the_reference(loaded: SyncDatabase, qname: str) -> None:
    # Counts alone over plain fields and no condition are what SQLite's GROUP BY answers; the
    # same with a condition goes through the core.
    q = QUERIES[qname]
    for g in (None, "cat", "kind", "id", "when", "nested", ["cat", "kind"], ["kind", "nested"]):
        _check(loaded.aggregate(q, group_by=g, metrics=COUNTS), RECORDS, q, g, COUNTS)


def test_default_metrics_and_group_by_id(loaded: SyncDatabase) -> None:
    assert loaded.aggregate() == [{"count": len(RECORDS)}]
    by_id = loaded.aggregate(Query().filter("cat", "=", "beta"), group_by="id")
    assert by_id == reference(RECORDS, Query().filter("cat", "=", "beta"), "id", None)
    assert [r["id"] for r in by_id] == sorted(r["id"] for r in by_id)


def test_exact_sums_beyond_64_bits_and_correctly_rounded_floats(db: SyncDatabase) -> None:
    db.create_batch([Record({"i": 2**63 - 1, "f": 0.1}) for _ in range(10)])
    (row,) = db.aggregate(metrics={"i": ("sum", "i"), "f": ("sum", "f"), "a": ("avg", "i")})
    assert row == {"i": 10 * (2**63 - 1), "f": 1.0, "a": float(10 * (2**63 - 1)) / 10}
    assert type(row["i"]) is int


def test_an_empty_store(db: SyncDatabase) -> None:
    assert db.aggregate() == [{"count": 0}]
    assert db.aggregate(group_by="cat") == []
    assert db.aggregate(metrics=METRICS) == reference([], None, None, METRICS)
    (row,) = db.aggregate(metrics={"s": ("sum", "n"), "c": ("cardinality", "n")})
    assert row == {"s": None, "c": 0}


@pytest.mark.parametrize(
    ("group_by", "metrics", "named"),
    [
        (None, {"m": ("median", "n")}, '"median"'),
        (None, {"m": ("sum", None)}, "sum needs a field"),
        (None, {"m": ("sum", 3)}, "3"),
        (None, {"m": "count"}, "'m'"),
        (None, {"m": ("count",)}, "'m'"),
        (None, {3: ("count", None)}, "3"),
        (None, {"m": (None, "n")}, "None"),
        (7, None, "7"),
        (["cat", 2], None, "2"),
        ("", None, "''"),
        (["cat", "cat"], None, "twice"),
        ("cat", {"cat": ("count", None)}, '"cat"'),
        (None, [("count", None)], "dict"),
    ],
)
def test_a_bad_spec_raises_a_query_error_naming_it(
    loaded: SyncDatabase, group_by: Any, metrics: Any, named: str
) -> None:
    with pytest.raises(QueryError) as info:
        loaded.aggregate(None, group_by=group_by, metrics=metrics)
    assert named in str(info.value)


def test_a_bad_query_raises(loaded: SyncDatabase) -> None:
    with pytest.raises(QueryError):
        loaded.aggregate(Query().filter("name", "regex", "("))


class _FiveVerbs(SyncDatabase):
    """A user database with only the five verbs: aggregate falls back to feeding its
    records to the core's accumulators."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, Record] = {}

    def create(self, record: Record) -> str:
        rid = record.id or str(len(self._rows))
        self._rows[rid] = record.copy()
        return rid

    def read(self, id: str) -> Record | None:
        return self._rows.get(id)

    def update(self, id: str, record: Record, *, expected_version: str | None = None) -> bool:
        raise NotImplementedError

    def delete(self, id: str, *, expected_version: str | None = None) -> bool:
        raise NotImplementedError

    def search(self, query: Any) -> list[Record]:
        from dataknobs_data.query import apply_query

        return apply_query(self._rows.values(), query)


def test_a_database_without_a_native_store() -> None:
    db = _FiveVerbs()
    for r in RECORDS:
        db.create(r)
    for q in (None, QUERIES["regex"], QUERIES["gt"]):
        _check(db.aggregate(q, group_by="cat", metrics=METRICS), RECORDS, q, "cat", METRICS)


def test_sqlite_counts_see_a_map_escaped_row(tmp_path: Any) -> None:
    # Data written as a `$map` escape hides its fields from SQLite's JSON paths, so the GROUP BY
    # must not answer for it: the core does, and reads the escape as the dict it is.
    import sqlite3

    from dataknobs_data.factory import database_factory

    path = tmp_path / "escaped.sqlite"
    db = database_factory.create(backend="sqlite", path=str(path))
    db.connect()
    db.create_batch([Record({"cat": "a"}, id="r1"), Record({"cat": "b"}, id="r2")])
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO records (id, data, metadata) VALUES (?, ?, ?)",
            ("r3", '{"$map": {"cat": "a"}}', "{}"),
        )
    assert db.aggregate(group_by="cat") == [{"cat": "a", "count": 2}, {"cat": "b", "count": 1}]
    db.close()
