"""The migration benchmark workload, written only against the public API (shared API.md §9).

It uses ``Record``, ``SyncDatabase.from_backend`` and ``dataknobs_data.migration`` (Migration,
the four basic operations, Transformer, Migrator) with the original package's argument
order, so the same file runs unchanged against this package and against the pure-Python
``dataknobs-data`` 0.4.13. ``benches/test_bench_migration.py`` drives it with
pytest-benchmark; ``benches/compare.py --suite migration`` runs it as a script in both
interpreters.

Ops (N = 1,000 by default):
    migration_one_record  one record through a Migration of 4 operations, N times
    transformer           a 4-rule Transformer over N records
    migrator              Migrator.migrate of N records, memory -> memory, transformed

As a script it takes the options every ``compare.py`` suite script takes (``--backends``
(only ``memory``), ``--n``, ``--ops``, ``--repeat``, ``--budget``) and prints one JSON
object per (N, op): ``{"suite", "backend", "n", "op", "times_ms", "median_ms", "error"}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
import traceback
from typing import Any

from dataknobs_data import Record, SyncDatabase
from dataknobs_data.migration import (
    AddField,
    Migration,
    Migrator,
    RemoveField,
    RenameField,
    Transformer,
    TransformField,
)

OPS = ("migration_one_record", "transformer", "migrator")
N = 1_000
CITIES = ("Amsterdam", "Berlin", "Cairo", "Denver", "Edinburgh")


def make_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "name": f"person-{rng.randrange(1_000_000):06d}",
            "age": rng.randint(18, 90),
            "score": round(rng.uniform(0.0, 100.0), 3),
            "city": CITIES[rng.randrange(len(CITIES))],
            "active": rng.random() < 0.5,
            "legacy": "x",
        }
        for _ in range(n)
    ]


def make_records(rows: list[dict[str, Any]]) -> list[Any]:
    return [Record(dict(row), id=f"rec-{i:06d}") for i, row in enumerate(rows)]


def four_op_migration() -> Any:
    return (
        Migration("1", "2", "bench")
        .add(AddField("migrated", True))
        .add(RenameField("name", "full_name"))
        .add(TransformField("score", lambda v: v * 2, lambda v: v / 2))
        .add(RemoveField("legacy"))
    )


def transformer() -> Any:
    return (
        Transformer()
        .map("city", transform=str.upper)
        .rename("name", "full_name")
        .exclude("legacy")
        .add("source", "bench")
    )


class MigrationWorkload:
    """Set-up (untimed) and the timed call of each op; ``check`` verifies the result."""

    def __init__(self, n: int = N) -> None:
        self.n = n
        self.rows = make_rows(n)
        self.records = make_records(self.rows)
        self.migration = four_op_migration()
        self.transformer = transformer()
        self.source: Any = None
        self._targets: list[Any] = []

    def prepare(self, op: str) -> Any:
        if op == "migration_one_record":
            return self.records[0]
        if op == "transformer":
            return self.records
        if op == "migrator":
            if self.source is None:
                self.source = SyncDatabase.from_backend("memory", {})
                self.source.create_batch(make_records(self.rows))
            self._close_targets()
            target = SyncDatabase.from_backend("memory", {})
            self._targets.append(target)
            return target
        raise ValueError(f"unknown op {op!r}; choose from {OPS}")

    def run(self, op: str, arg: Any) -> int:
        if op == "migration_one_record":
            apply = self.migration.apply
            out = None
            for _ in range(self.n):
                out = apply(arg)
            return len(out.fields) if out is not None else 0
        if op == "transformer":
            return len(self.transformer.transform_many(arg))
        if op == "migrator":
            progress = Migrator().migrate(self.source, arg, self.transformer, None, 1000)
            return int(progress.succeeded)
        raise ValueError(f"unknown op {op!r}; choose from {OPS}")

    def check(self, op: str, arg: Any, got: int) -> str | None:
        want = 6 if op == "migration_one_record" else self.n
        if op == "migrator" and got == want:
            stored = arg.count()
            if stored != want:
                return f"wrong result: target holds {stored}, expected {want}"
            sample = arg.read("rec-000000")
            if sample is None or sample.get_value("source") != "bench":
                return "wrong result: record rec-000000 not transformed"
        return None if got == want else f"wrong result: expected {want}, got {got}"

    def _close_targets(self) -> None:
        while self._targets:
            _close(self._targets.pop())

    def close(self) -> None:
        self._close_targets()
        if self.source is not None:
            _close(self.source)
            self.source = None


def _close(db: Any) -> None:
    with contextlib.suppress(Exception):
        db.close()


def time_op(
    workload: MigrationWorkload, op: str, repeat: int, budget: float = 60.0
) -> dict[str, Any]:
    times: list[float] = []
    error = None
    started = time.perf_counter()
    try:
        workload.run(op, workload.prepare(op))  # warm-up (imports, caches)
        for _ in range(repeat):
            if times and time.perf_counter() - started > budget:
                break
            arg = workload.prepare(op)
            t0 = time.perf_counter()
            got = workload.run(op, arg)
            times.append((time.perf_counter() - t0) * 1000)
            error = workload.check(op, arg, got)
            if error:
                break
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        error = f"{type(exc).__name__}: {exc}"
    return {
        "suite": "migration",
        "backend": "memory",
        "n": workload.n,
        "op": op,
        "times_ms": [round(t, 3) for t in times],
        "median_ms": statistics.median(times) if times and not error else None,
        "error": error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["memory"], choices=["memory"])
    parser.add_argument("--n", nargs="+", type=int, default=[N])
    parser.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per op (soft)")
    args = parser.parse_args(argv)
    for n in args.n:
        workload = MigrationWorkload(n)
        try:
            for op in args.ops:
                result = time_op(workload, op, max(1, args.repeat), args.budget)
                print(json.dumps(result), flush=True)
        finally:
            workload.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
