"""pytest-benchmark cases for the migration workload (``migration_workload.py``).

Run with ``make bench`` or ``.venv/bin/python -m pytest benches/test_bench_migration.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from migration_workload import OPS, MigrationWorkload


@pytest.fixture(scope="module")
def workload() -> Iterator[MigrationWorkload]:
    made = MigrationWorkload()
    yield made
    made.close()


@pytest.mark.parametrize("op", OPS)
def test_migration_op(benchmark: Any, workload: MigrationWorkload, op: str) -> None:
    benchmark.group = f"migration {op}"
    benchmark.extra_info.update(suite="migration", op=op, n=workload.n)
    results: list[tuple[Any, int]] = []

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        return (workload.prepare(op),), {}

    def run(arg: Any) -> None:
        results.append((arg, workload.run(op, arg)))

    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1, warmup_rounds=1)
    for arg, got in results:
        assert workload.check(op, arg, got) is None, workload.check(op, arg, got)
