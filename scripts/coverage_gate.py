"""Line coverage of python/ per module, from pytest-cov's JSON report, against the release gates.

    python scripts/coverage_gate.py target/coverage.json [--total 90] [--module 85] [--report-only]

Prints every module's line coverage (lowest first) and the total, then the modules under
``--module`` percent. Exits 1 when the total is under ``--total`` or any module is under
``--module``, unless ``--report-only`` (which still prints what would fail).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("report", type=Path, help="coverage JSON (pytest --cov-report=json:...)")
    parser.add_argument("--total", type=float, default=90.0, help="minimum total percent")
    parser.add_argument("--module", type=float, default=85.0, help="minimum percent per module")
    parser.add_argument("--report-only", action="store_true", help="never fail")
    args = parser.parse_args(argv)

    data = json.loads(args.report.read_text())
    files: dict[str, dict[str, float]] = {
        name: info["summary"] for name, info in data["files"].items()
    }
    if not files:
        print("coverage: the report has no file", file=sys.stderr)
        return 1
    width = max(len(name) for name in files)
    for name, summary in sorted(files.items(), key=lambda kv: kv[1]["percent_covered"]):
        print(
            f"{name:<{width}}  {summary['percent_covered']:6.2f}%  "
            f"({summary['covered_lines']}/{summary['num_statements']} lines)"
        )
    total = float(data["totals"]["percent_covered"])
    print(f"{'TOTAL':<{width}}  {total:6.2f}%")

    low = {n: s["percent_covered"] for n, s in files.items() if s["percent_covered"] < args.module}
    failed = total < args.total or bool(low)
    if total < args.total:
        print(f"coverage: total {total:.2f}% is under {args.total:g}%")
    for name, percent in sorted(low.items(), key=lambda kv: kv[1]):
        print(f"coverage: {name} at {percent:.2f}% is under {args.module:g}%")
    if failed and not args.report_only:
        return 1
    if not failed:
        print(f"coverage: total >= {args.total:g}% and every module >= {args.module:g}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
