"""S3: this package against the pure-Python dataknobs-data 0.11.0 and raw aioboto3, on SeaweedFS.

Usage (from the repository root; "theirs" needs a Python with dataknobs-data 0.11.0, boto3 and
aioboto3, by default /tmp/ref011/bin/python)::

    .venv/bin/python benches/s3_compare.py [--n 10000] [--theirs-python PATH]

It starts the tests' SeaweedFS (``tests/services/seaweedfs.py``) unless ``--endpoint`` names
one, runs each side of ``s3_workload.py`` in its own interpreter, one after the other, and
prints records/s per op and side, the ratios (ours / theirs), and the server's CPU seconds per
side (its own ceiling: requests per CPU-second of ``weed``, on a machine with ``os.cpu_count()``
cores).
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
WORKLOAD = HERE / "s3_workload.py"
OPS = ("create_batch", "read_batch", "search", "stream_read", "count", "put", "get")


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU of a process so far (Linux /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(python: str, side: str, args: argparse.Namespace, extra: list[str]) -> list[dict[str, Any]]:
    cmd = [python, str(WORKLOAD), "--side", side, "--endpoint", args.endpoint,
           "--bucket", args.bucket, "--access-key", args.access_key,
           "--secret-key", args.secret_key, "--n", str(args.n), *extra]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(HERE))
    out = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 and not out:
        out.append({"side": side, "op": "run", "error": done.stderr.strip()[-300:]})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--theirs-python", default="/tmp/ref011/bin/python")
    p.add_argument("--theirs-write-n", type=int, default=1000)
    p.add_argument("--theirs-async-write-n", type=int, default=300)
    p.add_argument("--theirs-read-n", type=int, default=2000)
    p.add_argument("--endpoint")
    p.add_argument("--bucket", default="dkdata-bench")
    p.add_argument("--access-key", default="dkdata-test-key")
    p.add_argument("--secret-key", default="dkdata-test-secret")
    p.add_argument("--sides", default="aioboto3,ours-sync,ours-async,theirs-sync,theirs-async")
    args = p.parse_args()
    server = None
    if args.endpoint is None:
        sys.path.insert(0, str(ROOT))
        from tests.services.seaweedfs import start_server

        server = start_server()
        args.endpoint, args.bucket = server.endpoint, server.bucket
    weed_pid = server.pid if server is not None else None
    results: list[dict[str, Any]] = []
    try:
        for side in args.sides.split(","):
            extra: list[str] = []
            python = sys.executable
            if side == "aioboto3" or side.startswith("theirs"):
                python = args.theirs_python
            if side == "theirs-sync":
                extra = ["--write-n", str(args.theirs_write_n), "--read-n", str(args.theirs_read_n)]
            elif side == "theirs-async":
                extra = ["--write-n", str(args.theirs_async_write_n),
                         "--read-n", str(args.theirs_read_n)]  # fmt: skip
            before = cpu_seconds(weed_pid)
            got = run(python, side, args, extra)
            after = cpu_seconds(weed_pid)
            for item in got:
                print(json.dumps(item), flush=True)
            results.extend(got)
            if before is not None and after is not None:
                results.append({"side": side, "op": "server_cpu", "seconds": after - before})
                print(json.dumps(results[-1]), flush=True)
    finally:
        if server is not None:
            server.stop()
    table(results)
    return 0


def table(results: list[dict[str, Any]]) -> None:
    rate: dict[tuple[str, str], float] = {}
    for r in results:
        if r.get("seconds") and r.get("n") and r["op"] in OPS:
            rate[(r["side"], r["op"])] = r["n"] / r["seconds"]
    print("\nrecords/s; ratios: ours-async / 0.11 async, ours-async / raw aioboto3")
    heads = ("ours-sync", "ours-async", "0.11 sync", "0.11 async")
    print(f"{'op':<14}" + "".join(f"{h:>11}" for h in heads) + f"{'aioboto3':>10}")
    for op in OPS[:5]:
        row = [rate.get((s, op)) for s in
               ("ours-sync", "ours-async", "theirs-sync", "theirs-async")]  # fmt: skip
        raw = rate.get(("aioboto3", "put" if op == "create_batch" else "get"))
        cells = "".join(f"{v:>11.0f}" if v else f"{'-':>11}" for v in row)
        ratio = f"{row[1] / row[3]:.0f}x" if row[1] and row[3] else "-"
        vs_raw = f"{row[1] / raw:.1f}x" if row[1] and raw and op != "count" else "-"
        print(f"{op:<14}{cells}{raw or 0:>10.0f}   {ratio:>6} {vs_raw:>6}")


if __name__ == "__main__":
    raise SystemExit(main())
