"""pytest-benchmark set-up for benches/ (run with ``make bench``, never part of ``make test``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import Workload


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: N=100,000 cases; skip with -m 'not slow'")


@pytest.fixture(scope="session")
def workloads(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str, int], Workload]]:
    """Populated workloads, one per (backend, N), kept for the whole session."""
    made: dict[tuple[str, int], Workload] = {}

    def get(backend: str, n: int) -> Workload:
        key = (backend, n)
        if key not in made:
            # Keep only one populated database at a time (100,000 records each).
            for old in made.values():
                old.close()
            made.clear()
            made[key] = Workload(backend, n, tmp_path_factory.mktemp(f"{backend}-{n}"))
        return made[key]

    yield get
    for workload in made.values():
        workload.close()
