"""Compare this package with the pure-Python dataknobs-data 0.4.13 from PyPI, same workload.

Usage (from the repository root, after ``make release``)::

    .venv/bin/python benches/compare.py [--suite core] [--n 10000 100000]
                                        [--backends memory file sqlite] [--repeat 3]
                                        [--budget 60] [--side both|ours|theirs]

"ours" is the interpreter running this script (with this package installed, release build);
"theirs" is ``benches/.venv-anchor``, a Python 3.12 venv made here on first use with
``dataknobs-data==0.4.13 aiosqlite pyarrow``. Each (backend, N, op) runs ``benches/workload.py``
in a fresh subprocess of each interpreter, which prints JSON timings (median of ``--repeat``
runs). An op that fails or times out is reported as ``failed: <error>``, never a crash.

``--suite`` picks the workload script (``SUITES``): ``core`` is ``workload.py`` (the database
verbs); ``validation`` is ``validation_workload.py`` (no database: backend ``-``, N = records);
``migration`` is ``migration_workload.py`` (memory databases; N = records, or applications of
the 4-operation Migration to one record).
Every suite script takes the same options and prints the same JSON lines.
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
WORKLOAD = HERE / "workload.py"
ANCHOR_VENV = HERE / ".venv-anchor"
ANCHOR_PYTHON = ANCHOR_VENV / "bin" / "python"
ANCHOR_BASE = Path.home() / ".pyenv" / "versions" / "3.12.1" / "bin" / "python"
ANCHOR_PACKAGES = ["dataknobs-data==0.4.13", "aiosqlite", "pyarrow"]
ANCHOR_VERSION = "0.4.13"
BACKENDS = ("memory", "file", "sqlite")
OPS = ("create_batch", "read_by_id", "search", "count", "stream_read", "update_batch")
VALIDATION_OPS = ("schema_simple", "schema_complex", "unique", "validate_many")
MIGRATION_OPS = ("migration_one_record", "transformer", "migrator")
# suite -> (workload script, default backends, default ops, default N)
SUITES: dict[str, tuple[Path, tuple[str, ...], tuple[str, ...], tuple[int, ...]]] = {
    "core": (WORKLOAD, BACKENDS, OPS, (10_000, 100_000)),
    "validation": (HERE / "validation_workload.py", ("-",), VALIDATION_OPS, (1_000,)),
    "migration": (HERE / "migration_workload.py", ("memory",), MIGRATION_OPS, (1_000,)),
}


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(key, None)
    return env


def anchor_ready() -> bool:
    if not ANCHOR_PYTHON.exists():
        return False
    probe = "import importlib.metadata as m; print(m.version('dataknobs-data'))"
    proc = subprocess.run(
        [str(ANCHOR_PYTHON), "-c", probe],
        capture_output=True,
        text=True,
        env=_clean_env(),
        check=False,
    )
    return proc.returncode == 0 and proc.stdout.strip() == ANCHOR_VERSION


def ensure_anchor(base_python: Path) -> None:
    """Create benches/.venv-anchor with the original package unless it is already there."""
    if anchor_ready():
        return
    if not base_python.exists():
        raise SystemExit(f"compare: need Python 3.12 for the original package at {base_python}")
    print(f"compare: creating {ANCHOR_VENV} ...", file=sys.stderr, flush=True)
    env = _clean_env()
    subprocess.run([str(base_python), "-m", "venv", str(ANCHOR_VENV)], check=True, env=env)
    pip = [str(ANCHOR_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-U", "pip"], check=True, env=env)
    subprocess.run([*pip, *ANCHOR_PACKAGES], check=True, env=env)
    if not anchor_ready():
        raise SystemExit("compare: the anchor venv does not import dataknobs-data 0.4.13")


def check_ours(python: str) -> str | None:
    """None when ``python`` imports our package (with its Rust extension), else the reason."""
    proc = subprocess.run(
        [python, "-c", "import dataknobs_data._native"],
        capture_output=True,
        text=True,
        cwd=HERE,
        env=_clean_env(),
        check=False,
    )
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ["import failed"])[-1]
    return f"not installed ({last}); run `make release`"


def run_side(
    python: str,
    backend: str,
    n: int,
    op: str,
    repeat: int,
    budget: float,
    timeout: float,
    script: Path = WORKLOAD,
) -> dict[str, Any]:
    cmd = [python, str(script), "--backends", backend, "--n", str(n), "--ops", op]
    cmd += ["--repeat", str(repeat), "--budget", str(budget)]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HERE,
            env=_clean_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    return {"error": tail[:200]}


def fmt_ms(res: dict[str, Any]) -> str:
    if res.get("error"):
        text = f"failed: {res['error']}"
        return text if len(text) <= 60 else text[:57] + "..."
    value = f"{res['median_ms']:.2f}"
    return f"~{value}" if res.get("estimated_from") else value


def fmt_ratio(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    if ours.get("error") or theirs.get("error"):
        return "-"
    if not ours.get("median_ms"):
        return "-"
    ratio = theirs["median_ms"] / ours["median_ms"]
    approx = "~" if ours.get("estimated_from") or theirs.get("estimated_from") else ""
    return f"{approx}{ratio:.1f}x faster" if ratio >= 1 else f"{approx}{1 / ratio:.1f}x slower"


def print_table(rows: list[list[str]]) -> None:
    header = ["backend", "op", "N", "ours (ms)", "theirs (ms)", "theirs/ours"]
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for k, row in enumerate(table):
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [
            c.ljust(w) if i < 2 or c.startswith("failed") else c.rjust(w) for i, (c, w) in pairs
        ]
        print("  ".join(cells).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="core")
    parser.add_argument("--n", nargs="+", type=int, help="default: the suite's")
    all_backends = sorted({b for suite in SUITES.values() for b in suite[1]})
    all_ops = sorted({o for suite in SUITES.values() for o in suite[2]})
    parser.add_argument("--backends", nargs="+", choices=all_backends, help="default: the suite's")
    parser.add_argument("--ops", nargs="+", choices=all_ops, help="default: the suite's")
    parser.add_argument("--repeat", type=int, default=3, help="runs per op (median reported)")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds per op; per-record ops past it are timed on a sample and scaled (~)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="hard limit per op run")
    parser.add_argument("--side", choices=("both", "ours", "theirs"), default="both")
    parser.add_argument("--ours-python", default=sys.executable)
    parser.add_argument("--anchor-base-python", type=Path, default=ANCHOR_BASE)
    parser.add_argument("--json", type=Path, help="also write all results to this file")
    args = parser.parse_args(argv)
    script, suite_backends, suite_ops, suite_n = SUITES[args.suite]
    args.n = args.n or list(suite_n)
    args.backends = args.backends or list(suite_backends)
    args.ops = args.ops or list(suite_ops)

    sides: dict[str, str] = {}
    skipped: dict[str, str] = {}
    if args.side in ("both", "ours"):
        reason = check_ours(args.ours_python)
        if reason is None:
            sides["ours"] = args.ours_python
        else:
            skipped["ours"] = "not installed; run `make release`"
            print(f"compare: ours {reason}", file=sys.stderr)
    if args.side in ("both", "theirs"):
        ensure_anchor(args.anchor_base_python)
        sides["theirs"] = str(ANCHOR_PYTHON)

    rows: list[list[str]] = []
    records: list[dict[str, Any]] = []
    repeat = max(1, args.repeat)
    for n in args.n:
        for backend in args.backends:
            for op in args.ops:
                got: dict[str, dict[str, Any]] = {}
                for side in ("ours", "theirs"):
                    if side in sides:
                        got[side] = run_side(
                            sides[side], backend, n, op, repeat, args.budget, args.timeout, script
                        )
                    else:
                        got[side] = {"error": skipped.get(side, "not run")}
                    print(
                        f"{side:<6} {backend:<6} {op:<12} N={n:<7} {fmt_ms(got[side])}",
                        file=sys.stderr,
                        flush=True,
                    )
                rows.append(
                    [
                        backend,
                        op,
                        str(n),
                        fmt_ms(got["ours"]),
                        fmt_ms(got["theirs"]),
                        fmt_ratio(got["ours"], got["theirs"]),
                    ]
                )
                records.append({"backend": backend, "op": op, "n": n, **got})
    print()
    print_table(rows)
    print("\n~ = estimated: per-record op timed on a sample within --budget and scaled to 1,000.")
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
