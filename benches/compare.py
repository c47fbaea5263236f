"""Compare this package with the pure-Python dataknobs-data 0.11.0 from PyPI, same workload.

Usage (from the repository root, after ``make release``)::

    .venv/bin/python benches/compare.py [--suite core] [--n 10000 100000]
                                        [--backends memory file sqlite duckdb postgres]
                                        [--repeat 3] [--budget 60] [--side both|ours|theirs]
                                        [--refs 0.11.0 0.4.13]

"ours" is the interpreter running this script (with this package installed, release build).
Each reference (``--refs``, default 0.11.0; 0.4.13 may be added as a second column) runs in
its own Python 3.12 venv made here on first use: ``benches/.venv-anchor`` with
``dataknobs-data[postgres,s3,elasticsearch,sqlite,parquet]==0.11.0 duckdb``, and
``benches/.venv-anchor-0.4.13`` with ``dataknobs-data==0.4.13 aiosqlite pyarrow``. Python 3.12
is found through ``pyenv`` (its newest 3.12.x) or ``python3.12`` on PATH, unless
``--anchor-base-python`` names one; ``--anchor-python`` uses an interpreter that already has
0.11.0 instead of the venv.

The ``postgres`` backend runs against ``DKDATA_PG_DSN`` when it is set, else against the tests'
throwaway cluster (tests/services/postgres.py), started for the run and stopped after; each
database gets a fresh ``dkbench_*`` table.

Each (backend, N, op) runs ``benches/workload.py`` in a fresh subprocess of each interpreter,
which prints JSON timings (median of ``--repeat`` runs). An op that fails or times out is
reported as ``failed: <error>``, never a crash.

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
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKLOAD = HERE / "workload.py"
PG_DSN_ENV = "DKDATA_PG_DSN"


@dataclass(frozen=True)
class Reference:
    """A released dataknobs-data to compare with, installed in its own venv."""

    version: str
    venv: Path
    packages: tuple[str, ...]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


REFERENCES = {
    "0.11.0": Reference(
        "0.11.0",
        HERE / ".venv-anchor",
        ("dataknobs-data[postgres,s3,elasticsearch,sqlite,parquet]==0.11.0", "duckdb"),
    ),
    "0.4.13": Reference(
        "0.4.13",
        HERE / ".venv-anchor-0.4.13",
        ("dataknobs-data==0.4.13", "aiosqlite", "pyarrow"),
    ),
}
DEFAULT_REFS = ("0.11.0",)
BACKENDS = ("memory", "file", "sqlite", "duckdb", "postgres")
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


def _python_version(python: Path) -> tuple[int, int] | None:
    try:
        proc = subprocess.run(
            [str(python), "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            env=_clean_env(),
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = proc.stdout.split()
    if proc.returncode != 0 or len(parts) != 2:
        return None
    return int(parts[0]), int(parts[1])


def find_python312() -> Path | None:
    """A Python 3.12 interpreter: pyenv's newest 3.12.x, else ``python3.12`` on PATH."""
    candidates: list[Path] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        listed = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
        )
        found = [v for v in listed.stdout.split() if re.fullmatch(r"3\.12(\.\d+)?", v)]
        found.sort(key=lambda v: [int(x) for x in v.split(".")], reverse=True)
        base = Path(root.stdout.strip())
        candidates += [base / "versions" / v / "bin" / "python" for v in found]
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(Path(on_path))
    for python in candidates:
        if python.exists() and _python_version(python) == (3, 12):
            return python
    return None


def reference_ready(ref: Reference, python: Path) -> bool:
    """Whether ``python`` imports the reference's version of dataknobs-data."""
    if not python.exists():
        return False
    probe = "import importlib.metadata as m; print(m.version('dataknobs-data'))"
    proc = subprocess.run(
        [str(python), "-c", probe],
        capture_output=True,
        text=True,
        env=_clean_env(),
        check=False,
    )
    return proc.returncode == 0 and proc.stdout.strip() == ref.version


def ensure_reference(ref: Reference, base_python: Path | None) -> Path:
    """The interpreter of ``ref``'s venv, made (with ``base_python``) unless it is there."""
    if reference_ready(ref, ref.python):
        return ref.python
    base = base_python or find_python312()
    if base is None or not base.exists():
        raise SystemExit(
            f"compare: need Python 3.12 for dataknobs-data {ref.version}: none found through "
            "pyenv or as python3.12 on PATH (or pass --anchor-base-python)"
        )
    print(f"compare: creating {ref.venv} with {base} ...", file=sys.stderr, flush=True)
    env = _clean_env()
    subprocess.run([str(base), "-m", "venv", str(ref.venv)], check=True, env=env)
    pip = [str(ref.python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-U", "pip"], check=True, env=env)
    subprocess.run([*pip, *ref.packages], check=True, env=env)
    if not reference_ready(ref, ref.python):
        raise SystemExit(f"compare: {ref.venv} does not import dataknobs-data {ref.version}")
    return ref.python


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
    env: dict[str, str] | None = None,
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
            env=env if env is not None else _clean_env(),
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


def print_table(header: list[str], rows: list[list[str]]) -> None:
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


def start_postgres() -> tuple[str, Any]:
    """A DSN for the postgres backend: ``DKDATA_PG_DSN``, else the tests' throwaway cluster
    (returned too, to be stopped after the run)."""
    dsn = os.environ.get(PG_DSN_ENV)
    if dsn:
        return dsn, None
    sys.path.insert(0, str(ROOT))
    from tests.services import postgres

    service = postgres.start_cluster()
    return service.dsn, service


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
    parser.add_argument(
        "--refs",
        nargs="+",
        choices=sorted(REFERENCES),
        default=list(DEFAULT_REFS),
        help="released versions to compare with, one column each (default: 0.11.0)",
    )
    parser.add_argument("--ours-python", default=sys.executable)
    parser.add_argument(
        "--anchor-base-python",
        type=Path,
        help="the Python 3.12 that makes the reference venvs (default: found via pyenv / PATH)",
    )
    parser.add_argument(
        "--anchor-python",
        type=Path,
        help="an interpreter that already has dataknobs-data 0.11.0 (instead of its venv)",
    )
    parser.add_argument("--json", type=Path, help="also write all results to this file")
    parser.add_argument("--note", default="", help="a note kept with --json (e.g. the build)")
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
    refs: list[str] = list(dict.fromkeys(args.refs))
    if args.side in ("both", "theirs"):
        for version in refs:
            ref = REFERENCES[version]
            given = args.anchor_python if version == "0.11.0" else None
            if given is not None:
                if not reference_ready(ref, given):
                    raise SystemExit(f"compare: {given} does not import dataknobs-data {version}")
                sides[version] = str(given)
            else:
                sides[version] = str(ensure_reference(ref, args.anchor_base_python))

    env = _clean_env()
    service = None
    if "postgres" in args.backends:
        env[PG_DSN_ENV], service = start_postgres()

    rows: list[list[str]] = []
    records: list[dict[str, Any]] = []
    repeat = max(1, args.repeat)
    try:
        for n in args.n:
            for backend in args.backends:
                for op in args.ops:
                    got: dict[str, dict[str, Any]] = {}
                    for side in ("ours", *refs):
                        if side in sides:
                            got[side] = run_side(
                                sides[side],
                                backend,
                                n,
                                op,
                                repeat,
                                args.budget,
                                args.timeout,
                                script,
                                env,
                            )
                        else:
                            got[side] = {"error": skipped.get(side, "not run")}
                        print(
                            f"{side:<6} {backend:<8} {op:<12} N={n:<7} {fmt_ms(got[side])}",
                            file=sys.stderr,
                            flush=True,
                        )
                    row = [backend, op, str(n), fmt_ms(got["ours"])]
                    for version in refs:
                        row += [fmt_ms(got[version]), fmt_ratio(got["ours"], got[version])]
                    rows.append(row)
                    records.append({"backend": backend, "op": op, "n": n, **got})
    finally:
        if service is not None:
            service.stop()
    header = ["backend", "op", "N", "ours (ms)"]
    for version in refs:
        header += [f"{version} (ms)", f"{version}/ours"]
    print()
    print_table(header, rows)
    print("\n~ = estimated: per-record op timed on a sample within --budget and scaled to 1,000.")
    if args.json:
        # What benches/report.py draws the benchmarks page from: the runs and how they were made.
        args.json.parent.mkdir(parents=True, exist_ok=True)
        given = list(argv if argv is not None else sys.argv[1:])
        if "--note" in given:  # the note is kept on its own
            at = given.index("--note")
            del given[at : at + 2]
        meta = {
            "command": shlex.join(["benches/compare.py", *given]),
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "repeat": repeat,
            "refs": refs,
            "note": args.note,
        }
        args.json.write_text(json.dumps({"meta": meta, "results": records}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
