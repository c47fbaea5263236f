"""docs/benchmarks.md is what benches/report.py writes from benches/results/, images included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_page_matches_the_results() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benches" / "report.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_page_has_measurements() -> None:
    # The results files exist: the page shows measured numbers, not the "no results" stub.
    assert (ROOT / "benches" / "results" / "compare.json").exists()
    assert (ROOT / "benches" / "results" / "observability.json").exists()
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    assert "img/bench-speedup.png" in text and "## Instrumentation overhead" in text
