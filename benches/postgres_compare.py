"""PostgreSQL: this package against the pure-Python dataknobs-data and raw asyncpg.

Usage (from the repository root, after ``make release`` and ``make compare`` once, which makes
the anchor venv; both venvs need ``asyncpg``)::

    .venv/bin/python benches/postgres_compare.py [--n 100000] [--dsn postgresql://...]

Without ``--dsn`` (or ``DKDATA_PG_DSN``) it starts the tests' throwaway cluster. Each side runs
``postgres_workload.py`` in its own interpreter; the table shows seconds and the ratio
(their time / our time: above 1 means we are faster).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKLOAD = HERE / "postgres_workload.py"
ANCHOR_PYTHON = HERE / ".venv-anchor" / "bin" / "python"


def run(python: str, side: str, dsn: str, n: int, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [python, str(WORKLOAD), "--side", side, "--dsn", dsn, "--n", str(n)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(HERE),
    )
    results: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            results[item["op"]] = item
    if done.returncode != 0 and not results:
        results["error"] = done.stderr.strip().splitlines()[-1:] or ["failed"]
    return results


def _secs(x: float | None) -> str:
    return f"{x:.3f}" if x else "-"


def _ratio(theirs: float | None, ours: float | None) -> str:
    return f"{theirs / ours:.1f}x" if theirs and ours else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dsn", default=os.environ.get("DKDATA_PG_DSN"))
    parser.add_argument("--no-theirs", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.services import postgres

    svc = postgres._from_dsn(args.dsn) if args.dsn else postgres.start_cluster()
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        ours = run(sys.executable, "ours", svc.dsn, args.n, {**os.environ})
        raw = run(sys.executable, "asyncpg", svc.dsn, args.n, {**os.environ})
        theirs: dict[str, Any] = {}
        if not args.no_theirs and ANCHOR_PYTHON.exists():
            theirs = run(str(ANCHOR_PYTHON), "theirs", svc.dsn, args.n, env)
    finally:
        svc.stop()
    print(f"N = {args.n}")
    head = ("op", "ours s", "theirs s", "vs theirs", "asyncpg s", "vs asyncpg")
    print("".join(f"{h:>12}" for h in head))
    for op in ("create_batch", "bulk_create", "stream_read", "search", "count", "read_by_id"):
        o = ours.get(op, {}).get("seconds")
        t = theirs.get(op, {}).get("seconds")
        r = raw.get(op, {}).get("seconds")
        cells = (op, _secs(o), _secs(t), _ratio(t, o), _secs(r), _ratio(r, o))
        print("".join(f"{c:>12}" for c in cells))
    if theirs:
        print("theirs stream_read: its stream_read raises TypeError; timed search(Query()) instead")
    for side, res in (("ours", ours), ("theirs", theirs), ("asyncpg", raw)):
        for op, item in res.items():
            err = item.get("error") if isinstance(item, dict) else item
            if err:
                print(f"{side} {op}: {err}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
