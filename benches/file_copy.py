"""Copy records from a JSON Lines file into a file of every format with the Migrator (as
``dataknobs-data copy`` does) and report records/s and peak RSS per target format.

Usage (from the repository root)::

    .venv/bin/python benches/file_copy.py [--n 1000000] [--batch-size 1000]
                                          [--formats jsonl csv tsv json jsonl.gz csv.gz parquet]
                                          [--json benches/results/file_copy.json]

Each target format is copied in a fresh subprocess, so each peak RSS (``ru_maxrss``) is that
copy's own. A copy costs O(batch) per create where the layout appends (docs/file.md); the
ratio column is records/s against the jsonl target's. Issue 13's goal: every format at
>= 0.8x the jsonl rate, memory flat.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from million_copy import generate, peak_rss_mb

FORMATS = ("jsonl", "csv", "tsv", "json", "jsonl.gz", "csv.gz", "parquet")


def copy_one(source: Path, target: Path, batch_size: int) -> dict[str, float]:
    """Copies ``source`` into ``target`` in this process: seconds, records, peak RSS."""
    from dataknobs_data import SyncDatabase
    from dataknobs_data.migration import Migrator

    rss_before = peak_rss_mb()
    src = SyncDatabase.from_backend("file", {"path": str(source)})
    dst = SyncDatabase.from_backend("file", {"path": str(target)})
    t0 = time.perf_counter()
    progress = Migrator().migrate(src, dst, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    src.close()
    dst.close()
    # Before the check below: reading a json array back parses it whole.
    copy_peak = peak_rss_mb()
    if progress.failed:
        raise SystemExit(f"{target.name}: {progress.failed} records failed")
    check = SyncDatabase.from_backend("file", {"path": str(target)})
    stored = check.count()
    check.close()
    return {
        "seconds": seconds,
        "records": float(stored),
        "peak_rss_mb": copy_peak,
        "rss_at_start_mb": rss_before,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = copy_one(Path(args.child[0]), Path(args.child[1]), args.batch_size)
        print(json.dumps(result))
        return 0

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="dk-file-copy-") as tmp:
        source = Path(tmp) / "source.jsonl"
        generate(source, args.n)
        for fmt in args.formats:
            target = Path(tmp) / f"target.{fmt}"
            out = subprocess.run(
                [
                    *(sys.executable, __file__, "--batch-size", str(args.batch_size)),
                    *("--child", str(source), str(target)),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[fmt] = json.loads(out.stdout.strip().splitlines()[-1])
            results[fmt]["bytes"] = float(target.stat().st_size)
            target.unlink()
    base = results.get("jsonl")
    print(f"copy of {args.n:,} records, batches of {args.batch_size:,}")
    print(f"{'target':<10} {'seconds':>9} {'records/s':>11} {'vs jsonl':>9} {'peak RSS MB':>12}")
    for fmt, r in results.items():
        rate = r["records"] / r["seconds"]
        ratio = f"{rate / (base['records'] / base['seconds']):.2f}x" if base else "-"
        print(f"{fmt:<10} {r['seconds']:>9.2f} {rate:>11,.0f} {ratio:>9} {r['peak_rss_mb']:>12.0f}")
        if r["records"] != args.n:
            print(f"{fmt}: {r['records']:.0f} records stored, expected {args.n}", file=sys.stderr)
            return 1
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"n": args.n, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
