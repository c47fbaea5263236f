"""Elasticsearch/OpenSearch: this package against 0.11.0 and a raw tuned client, at N=100,000.

Usage (from the repository root, after ``make release``; the raw side needs a Python with
aiohttp and orjson, the theirs side dataknobs-data 0.11.0, by default /tmp/ref011/bin/python)::

    .venv/bin/python benches/search_compare.py --raw-python PATH [--n 100000] \\
        [--json benches/results/search.json]

It starts the tests' OpenSearch node (``tests/services/opensearch.py``) unless ``--url`` or
``DKDATA_ES_URL`` names one, runs each side of ``search_workload.py`` in its own interpreter,
one after the other, prints each op's median, the ratios (ours / 0.11.0, ours / raw) and the
node's CPU seconds per side, and with ``--json`` writes a results file ``benches/report.py``
draws (``{"meta", "results": [{"backend", "op", "n", "ours", "0.11.0", "raw"}]}``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKLOAD = HERE / "search_workload.py"
OPS = ("create_batch_1000", "create_batch_one", "read_batch", "search", "count", "stream_read")
SIDES = {"ours": "ours", "theirs": "0.11.0", "raw": "raw"}


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU of a process so far (Linux /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(python: str, side: str, url: str, args: argparse.Namespace, extra: list[str]) -> list[Any]:
    cmd = [
        python,
        str(WORKLOAD),
        "--side",
        side,
        "--url",
        url,
        "--n",
        str(args.n),
        "--repeat",
        str(args.repeat),
        "--index-prefix",
        f"{args.prefix}-{side}",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(HERE))
    out = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        if not out:
            out.append({"side": side, "op": "run", "error": done.stderr.strip()[-300:]})
    return out


def delete_indexes(url: str, prefix: str) -> None:
    req = urllib.request.Request(f"{url}/{prefix}-*", method="DELETE")
    with contextlib.suppress(OSError):
        urllib.request.urlopen(req, timeout=60).read()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--url", default=os.environ.get("DKDATA_ES_URL"))
    p.add_argument("--theirs-python", default="/tmp/ref011/bin/python")
    p.add_argument("--raw-python", default=sys.executable)
    p.add_argument("--raw-chunks", default="1000,5000")
    p.add_argument("--raw-inflight", default="4,8")
    p.add_argument("--sides", default="ours,raw,theirs")
    p.add_argument("--node-pid", type=int, help="with --url: the node's pid, for its CPU time")
    p.add_argument("--json", help="write the results file here")
    p.add_argument("--note", help="a caveat shown with the results (load, build)")
    args = p.parse_args()
    args.prefix = f"bench-{uuid.uuid4().hex[:8]}"
    node = None
    if args.url is None:
        sys.path.insert(0, str(ROOT))
        from tests.services.opensearch import start_node

        node = start_node()
        args.url = node.url
    pid = node.pid if node is not None else args.node_pid
    results: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    try:
        for side in args.sides.split(","):
            python = {"ours": sys.executable, "theirs": args.theirs_python}.get(
                side, args.raw_python
            )
            extra: list[str] = []
            if side == "raw":
                extra = [
                    "--mapping-from",
                    f"{args.prefix}-ours-chunked",
                    "--raw-chunks",
                    *args.raw_chunks.split(","),
                    "--raw-inflight",
                    *args.raw_inflight.split(","),
                ]
            before = cpu_seconds(pid)
            got = run(python, side, args.url, args, extra)
            after = cpu_seconds(pid)
            for item in got:
                print(json.dumps(item), flush=True)
            results.extend(got)
            if before is not None and after is not None:
                results.append({"side": side, "op": "server_cpu", "seconds": after - before})
                print(json.dumps(results[-1]), flush=True)
    finally:
        delete_indexes(args.url, args.prefix)
        if node is not None:
            node.stop()
    load_after = os.getloadavg()
    rows = merge(results, args.n)
    table(rows)
    if args.json:
        meta = {
            "command": " ".join(["benches/search_compare.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "repeat": args.repeat,
            "refs": ["0.11.0", "raw"],
            "load_average": [round(load_before[0], 2), round(load_after[0], 2)],
            "server_cpu_s": {
                r["side"]: round(r["seconds"], 2) for r in results if r["op"] == "server_cpu"
            },
            "note": args.note,
        }
        Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    return 0


def merge(results: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """One row per op with each side's measurement; the raw create_batch_one is its best
    (chunk size, in-flight) setting."""
    rows: list[dict[str, Any]] = []
    for op in OPS:
        row: dict[str, Any] = {"backend": "elasticsearch", "op": op, "n": n}
        for side, label in SIDES.items():
            mine = [r for r in results if r["side"] == side and r["op"] == op]
            ok = [r for r in mine if r.get("median_ms") and not r.get("error")]
            if ok:
                row[label] = min(ok, key=lambda r: r["median_ms"])
            elif mine:
                row[label] = mine[0]
            if mine:
                # read_batch reads 1,000 of the N records.
                row["n"] = mine[0].get("n", n)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> None:
    def ms(side: dict[str, Any] | None) -> float | None:
        return side["median_ms"] if side and side.get("median_ms") else None

    print("\nmedian ms; ratios: 0.11.0 time / ours, raw time / ours")
    print(f"{'op':<19}{'ours':>11}{'0.11.0':>11}{'raw':>11}{'vs 0.11':>9}{'vs raw':>8}")
    for row in rows:
        a, b, c = ms(row.get("ours")), ms(row.get("0.11.0")), ms(row.get("raw"))
        cells = "".join(f"{v:>11.1f}" if v else f"{'-':>11}" for v in (a, b, c))
        r1 = f"{b / a:.1f}x" if a and b else "-"
        r2 = f"{c / a:.2f}x" if a and c else "-"
        print(f"{row['op']:<19}{cells}{r1:>9}{r2:>8}")
        for side in ("ours", "0.11.0", "raw"):
            err = (row.get(side) or {}).get("error")
            if err:
                print(f"    {side}: {err}")


if __name__ == "__main__":
    raise SystemExit(main())
