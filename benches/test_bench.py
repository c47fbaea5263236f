"""pytest-benchmark cases: memory, file (JSON Lines), sqlite and duckdb x the workload's ops.

Run with ``make bench`` (all) or ``make bench-quick`` (skips the ``slow`` N=100,000 cases).
The workload itself lives in ``workload.py`` and uses only the public API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from workload import LOCAL_BACKENDS, OPS, Workload

SIZES = [10_000, pytest.param(100_000, marks=pytest.mark.slow)]
ROUNDS = {10_000: 5, 100_000: 3}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
@pytest.mark.parametrize("n", SIZES)
def test_op(
    benchmark: Any,
    workloads: Callable[[str, int], Workload],
    n: int,
    backend: str,
    op: str,
) -> None:
    workload = workloads(backend, n)
    benchmark.group = f"{op} N={n}"
    benchmark.extra_info.update(backend=backend, n=n, op=op)
    results: list[tuple[Any, int]] = []

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        return (workload.prepare(op),), {}

    def run(arg: Any) -> None:
        results.append((arg, workload.run(op, arg)))

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS[n], iterations=1, warmup_rounds=0)
    for arg, got in results:
        assert workload.check(op, arg, got) is None, workload.check(op, arg, got)
    if op == "search":
        assert workload.check_search_order() is None
