"""pytest-benchmark cases for validation: the ops of ``validation_workload.py`` at N=1,000.

Run with ``.venv/bin/python -m pytest benches/test_bench_validation.py`` (never part of the test
suite). The workload uses only the public API, so it also runs against the original package.
"""

from __future__ import annotations

from typing import Any

import pytest
from validation_workload import OPS, make_op

N = 1_000


@pytest.mark.parametrize("op", OPS)
def test_validation_op(benchmark: Any, op: str) -> None:
    call, expected = make_op(op, N)
    benchmark.group = f"validation N={N}"
    benchmark.extra_info.update(op=op, n=N)
    assert benchmark(call) == expected
