"""Peak RSS while streaming N rows from PostgreSQL (issue: within 100 MB of the start at 1M).

Usage (after ``make release``)::

    .venv/bin/python benches/postgres_stream_rss.py [--n 1000000] [--dsn postgresql://...]

Loads N records in batches of 100,000 (the tests' throwaway cluster unless ``--dsn`` or
``DKDATA_PG_DSN``), then streams them all in a fresh interpreter, sampling VmRSS every 10,000
records.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STREAM = """
import sys, time
from dataknobs_data.backends.postgres import SyncPostgresDatabase

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0

db = SyncPostgresDatabase({"connection_string": sys.argv[1], "table": sys.argv[2]})
db.connect()
start = peak = rss_mb()
n = 0
t = time.perf_counter()
for _ in db.stream_read():
    n += 1
    if n % 10000 == 0:
        peak = max(peak, rss_mb())
took = time.perf_counter() - t
print(f"streamed {n} rows in {took:.2f}s; RSS start {start} MB, peak {peak} MB, "
      f"growth {peak - start} MB")
db.close()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dsn", default=os.environ.get("DKDATA_PG_DSN"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.services import postgres

    from dataknobs_data import Record
    from dataknobs_data.backends.postgres import SyncPostgresDatabase

    svc = postgres._from_dsn(args.dsn) if args.dsn else postgres.start_cluster()
    table = f"rss_{uuid.uuid4().hex[:8]}"
    try:
        db = SyncPostgresDatabase({"connection_string": svc.dsn, "table": table})
        db.connect()
        for start in range(0, args.n, 100_000):
            stop = min(args.n, start + 100_000)
            db.create_batch(
                [
                    Record({"n": i, "name": f"user{i}", "tags": ["a", "b"]}, id=f"r{i:08d}")
                    for i in range(start, stop)
                ]
            )
        db.close()
        subprocess.run([sys.executable, "-c", STREAM, svc.dsn, table], check=True)
    finally:
        svc.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
