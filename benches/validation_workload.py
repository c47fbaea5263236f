"""The validation benchmark workload, written only against the public API (API.md §8).

It uses ``Schema``, the constraints, ``ValidationContext`` and ``validate``/``validate_many``
as the original pure-Python ``dataknobs-data`` 0.4.13 defines them, so the same file runs
against this package and the original. ``benches/compare.py --suite validation`` runs it in
both interpreters; ``benches/test_bench_validation.py`` drives it with pytest-benchmark.

Ops (N is ``--n``, default 1,000):

- ``schema_simple``: validate N flat records (4 typed fields, no constraints) one by one;
- ``schema_complex``: validate N records against a strict schema with composed constraints,
  coercing string values (every tenth record is invalid);
- ``unique``: one Unique constraint checking N values in one context (a tenth repeat);
- ``validate_many``: ``validate_many`` of N/10 records with a Unique field (a tenth repeat).

As a script it prints one JSON object per op:
``{"suite": "validation", "backend": "-", "n", "op", "times_ms", "median_ms", "error"}``
where ``median_ms`` is the median time of one op call over ``--repeat`` runs (each run loops
the op for at least ``--min-run`` seconds and divides).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from dataknobs_data.validation import (
    Enum,
    Length,
    Pattern,
    Range,
    Required,
    Schema,
    Unique,
    ValidationContext,
)

OPS = ("schema_simple", "schema_complex", "unique", "validate_many")
STATUSES = ["active", "pending", "suspended", "closed"]
EMAIL = r"^[^@\s]+@[^@\s]+\.[a-z]+$"


def simple_schema() -> Schema:
    """Four typed fields, one required."""
    return (
        Schema("simple")
        .field("name", "STRING", required=True)
        .field("age", "INTEGER")
        .field("score", "FLOAT")
        .field("active", "BOOLEAN")
    )


def simple_rows(n: int) -> list[dict[str, Any]]:
    """N valid flat rows for :func:`simple_schema`."""
    return [
        {"name": f"user{i}", "age": 20 + i % 50, "score": i * 0.5, "active": i % 2 == 0}
        for i in range(n)
    ]


def complex_schema() -> Schema:
    """Strict, with composed constraints on most fields."""
    return (
        Schema("complex", strict=True)
        .field(
            "username",
            "STRING",
            required=True,
            constraints=[Length(min=3, max=20) & Pattern("^[a-z0-9_]+$")],
        )
        .field("email", "STRING", required=True, constraints=[Pattern(EMAIL)])
        .field("age", "INTEGER", constraints=[Range(min=0, max=150)])
        .field("score", "FLOAT", constraints=[Range(min=0.0, max=100.0)])
        .field("status", "STRING", constraints=[Required(), Enum(STATUSES)])
        .field("active", "BOOLEAN")
        .field("tags", "JSON", constraints=[Length(max=5)])
    )


def complex_rows(n: int) -> list[dict[str, Any]]:
    """N rows with string values to coerce; every tenth has an out-of-range age."""
    return [
        {
            "username": f"user_{i}",
            "email": f"user{i}@example.com",
            "age": str(200 if i % 10 == 9 else 18 + i % 60),
            "score": str((i % 1000) / 10),
            "status": STATUSES[i % len(STATUSES)],
            "active": "yes" if i % 2 else "no",
            "tags": ["a", "b"][: i % 3],
        }
        for i in range(n)
    ]


def unique_values(n: int) -> list[str]:
    """N values whose last tenth repeats the first."""
    distinct = n - n // 10
    return [f"value-{i % distinct}" for i in range(n)]


def many_schema() -> Schema:
    """validate_many target: a unique email plus typed fields."""
    return (
        Schema("many")
        .field("email", "STRING", required=True, constraints=[Unique("email")])
        .field("age", "INTEGER", constraints=[Range(min=0, max=150)])
        .field("name", "STRING", constraints=[Length(min=1, max=50)])
    )


def many_rows(m: int) -> list[dict[str, Any]]:
    """M rows whose last tenth repeats an email of the first."""
    distinct = m - m // 10
    return [
        {"email": f"u{i % distinct}@example.com", "age": 20 + i % 60, "name": f"name {i}"}
        for i in range(m)
    ]


def make_op(op: str, n: int) -> tuple[Callable[[], int], int]:
    """(the timed call returning the number of valid items, the expected number)."""
    if op == "schema_simple":
        schema, rows = simple_schema(), simple_rows(n)
        return (lambda: sum(1 for r in rows if schema.validate(r).valid)), n
    if op == "schema_complex":
        schema, rows = complex_schema(), complex_rows(n)
        return (lambda: sum(1 for r in rows if schema.validate(r, coerce=True).valid)), n - n // 10
    if op == "unique":
        values = unique_values(n)
        constraint = Unique("code")

        def run_unique() -> int:
            context = ValidationContext()
            return sum(1 for v in values if constraint.check(v, context).valid)

        return run_unique, n - n // 10
    if op == "validate_many":
        m = max(1, n // 10)
        schema, rows = many_schema(), many_rows(m)
        return (lambda: sum(1 for r in schema.validate_many(rows) if r.valid)), m - m // 10
    raise ValueError(f"unknown op {op!r}")


def measure(op: str, n: int, repeat: int, min_run: float) -> dict[str, Any]:
    """Time ``op``: ``repeat`` runs, each looping the call for at least ``min_run`` seconds."""
    res: dict[str, Any] = {"suite": "validation", "backend": "-", "n": n, "op": op}
    try:
        call, expected = make_op(op, n)
        got = call()  # warm-up, and the correctness check
        if got != expected:
            return {**res, "times_ms": [], "median_ms": None, "error": f"got {got} != {expected}"}
        times = []
        for _ in range(repeat):
            loops = 0
            started = time.perf_counter()
            while True:
                call()
                loops += 1
                elapsed = time.perf_counter() - started
                if elapsed >= min_run:
                    break
            times.append(elapsed / loops * 1000)
    except Exception as exc:  # reported, never a crash: compare.py shows it in the table
        traceback.print_exc()
        return {**res, "times_ms": [], "median_ms": None, "error": f"{type(exc).__name__}: {exc}"}
    return {**res, "times_ms": times, "median_ms": statistics.median(times), "error": None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", nargs="+", type=int, default=[1_000])
    parser.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--min-run", type=float, default=0.2, help="seconds per timed run")
    # Accepted so compare.py can call every suite alike; validation uses no database.
    parser.add_argument("--backends", nargs="*", default=["-"])
    parser.add_argument("--budget", type=float, default=None)
    args = parser.parse_args(argv)
    for n in args.n:
        for op in args.ops:
            res = measure(op, n, max(1, args.repeat), args.min_run)
            print(json.dumps(res), flush=True)
            shown = "failed: " + res["error"] if res["error"] else f"{res['median_ms']:.3f} ms"
            print(f"validation {op:<15} N={n:<6} {shown}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
