"""PostgreSQL -> pandas for N records: ``to_pandas()`` (``to_arrow()`` then
``Table.to_pandas``) against ConnectorX,
``pandas.read_sql`` over psycopg and 0.11.0's ``BatchOperations.query_as_dataframe``; and the
peak RSS of ``stream_arrow`` over the same rows.

Usage (after ``make release``; ConnectorX, psycopg and SQLAlchemy in .venv)::

    .venv/bin/python benches/arrow_postgres.py [--n 1000000] [--repeat 3] [--ref PYTHON]
        [--out benches/results/arrow_postgres.json]

Loads N records ``{"n": int, "name": str, "score": float, "active": bool}`` with
``create_batch`` into a fresh table of the tests' throwaway cluster (or ``--dsn``). Our layout
keeps each record as one JSONB document, so ConnectorX and ``read_sql`` run the SQL that
extracts the same four fields as typed columns (printed in the results); every contestant
ends with a DataFrame of N rows and the columns id, n, name, score, active. Each run is a
fresh interpreter; the time is the best of ``--repeat`` (0.11.0: one run).

Then DataFrame -> PostgreSQL for ``--write-n`` rows of the same four columns, each into a
fresh table: ``write_arrow(pa.Table.from_pandas(df))`` and our ``bulk_insert_dataframe``,
against 0.11.0's ``bulk_insert_dataframe`` and ``DataFrame.to_sql`` with a COPY method
(psycopg; a plain typed table, not our JSONB layout). Last, ``write_arrow`` of
``--write-stream-n`` rows from a RecordBatchReader of 10,000-row batches, with its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REF_PYTHON = "/tmp/ref011/bin/python"

PRELUDE = """
import json, sys, time, urllib.parse
# Every contestant ends in pandas: its import is not part of any one's time.
import pandas
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0
dsn, table, sql = sys.argv[1], sys.argv[2], sys.argv[3]
url = urllib.parse.urlparse(dsn)
config = {"host": url.hostname, "port": url.port or 5432, "user": url.username or "postgres",
          "password": url.password, "database": (url.path or "/postgres").lstrip("/"),
          "table": table}
start_rss = rss_mb()
"""

CONTESTANTS = {
    "ours_to_pandas": """
from dataknobs_data.backends.postgres import SyncPostgresDatabase
db = SyncPostgresDatabase(config); db.connect()
t = time.perf_counter()
df = db.to_pandas()
took = time.perf_counter() - t
db.close()
""",
    "ours_to_arrow": """
from dataknobs_data.backends.postgres import SyncPostgresDatabase
db = SyncPostgresDatabase(config); db.connect()
t = time.perf_counter()
df = db.to_arrow()
took = time.perf_counter() - t
db.close()
""",
    "connectorx": """
import connectorx as cx
t = time.perf_counter()
df = cx.read_sql(dsn, sql, return_type="pandas")
took = time.perf_counter() - t
""",
    "pandas_read_sql_psycopg": """
import pandas as pd, sqlalchemy
engine = sqlalchemy.create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
t = time.perf_counter()
with engine.connect() as conn:
    df = pd.read_sql(sqlalchemy.text(sql), conn)
took = time.perf_counter() - t
""",
    "dataknobs_0_11_query_as_dataframe": """
from dataknobs_data import Query
from dataknobs_data.backends.postgres import SyncPostgresDatabase
from dataknobs_data.pandas import BatchOperations
db = SyncPostgresDatabase(config); db.connect()
t = time.perf_counter()
df = BatchOperations(db).query_as_dataframe(Query())
took = time.perf_counter() - t
db.close()
""",
    "ours_stream_arrow_rss": """
from dataknobs_data.backends.postgres import SyncPostgresDatabase
import pyarrow
db = SyncPostgresDatabase(config); db.connect()
# The start is the process ready to stream (interpreter, pyarrow and the package loaded).
start_rss = peak = rss_mb()
rows = 0
t = time.perf_counter()
for batch in db.stream_arrow(batch_size=10_000):
    rows += batch.num_rows
    peak = max(peak, rss_mb())
took = time.perf_counter() - t
db.close()
print(json.dumps({"seconds": took, "rows": rows, "rss_start_mb": round(start_rss, 1),
                  "rss_peak_mb": round(peak, 1), "rss_growth_mb": round(peak - start_rss, 1)}))
raise SystemExit(0)
""",
}

#: DataFrame -> PostgreSQL: each writes the same frame into a fresh table (``sys.argv[2]``
#: names it); the frame is built before the clock starts.
FRAME = """
import pandas as pd
N = int(sys.argv[4])
df = pd.DataFrame({"n": range(N), "name": [f"user{i}" for i in range(N)],
                   "score": [i / 7 for i in range(N)], "active": [i % 3 == 0 for i in range(N)]})
"""

WRITERS = {
    "ours_write_arrow": FRAME
    + """
import pyarrow as pa
from dataknobs_data.backends.postgres import SyncPostgresDatabase
db = SyncPostgresDatabase(config); db.connect()
t = time.perf_counter()
ids = db.write_arrow(pa.Table.from_pandas(df, preserve_index=False))
took = time.perf_counter() - t
db.close()
""",
    "ours_bulk_insert_dataframe": FRAME
    + """
from dataknobs_data.backends.postgres import SyncPostgresDatabase
from dataknobs_data.pandas import BatchOperations, BatchConfig
db = SyncPostgresDatabase(config); db.connect()
t = time.perf_counter()
stats = BatchOperations(db).bulk_insert_dataframe(df, BatchConfig(chunk_size=100_000))
took = time.perf_counter() - t
assert stats["inserted"] == N, stats
db.close()
""",
    "pandas_to_sql_copy_psycopg": FRAME
    + """
import csv, io, sqlalchemy
def copy(table, conn, keys, rows):
    buf = io.StringIO(); csv.writer(buf).writerows(rows); buf.seek(0)
    cols = ", ".join(keys)
    with conn.connection.cursor() as cur:
        with cur.copy(f"COPY {table.name} ({cols}) FROM STDIN WITH (FORMAT csv)") as cp:
            cp.write(buf.read())
engine = sqlalchemy.create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
t = time.perf_counter()
df.to_sql(sys.argv[2], engine, index=False, method=copy, chunksize=100_000)
took = time.perf_counter() - t
""",
    "dataknobs_0_11_bulk_insert_dataframe": FRAME
    + """
from dataknobs_data.backends.postgres import SyncPostgresDatabase
from dataknobs_data.pandas import BatchOperations
db = SyncPostgresDatabase(config); db.connect()
t = time.perf_counter()
stats = BatchOperations(db).bulk_insert_dataframe(df)
took = time.perf_counter() - t
db.close()
""",
}

#: ``write_arrow`` of ``--write-stream-n`` rows as a reader of 10,000-row batches made as they
#: are pulled (the source holds one batch): the peak RSS over the write, from the kernel's
#: high-water mark, against the process ready to write.
STREAM_WRITERS = {
    "ours_write_arrow_stream_rss": """
import resource
import pyarrow as pa
from dataknobs_data.backends.postgres import SyncPostgresDatabase
N = int(sys.argv[4])
schema = pa.schema([("id", pa.string()), ("n", pa.int64()), ("name", pa.string()),
                    ("score", pa.float64()), ("active", pa.bool_())])
def batches():
    for start in range(0, N, 10_000):
        r = range(start, min(N, start + 10_000))
        yield pa.record_batch([pa.array([f"s{i:08d}" for i in r]), pa.array(r),
                               pa.array([f"user{i}" for i in r]), pa.array([i / 7 for i in r]),
                               pa.array([i % 3 == 0 for i in r])], schema=schema)
db = SyncPostgresDatabase(config); db.connect()
next(batches())  # pyarrow's builders warmed, as the start of the write finds them
start_rss = rss_mb()
base_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
ids = db.write_arrow(pa.RecordBatchReader.from_batches(schema, batches()))
took = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
assert len(ids) == N
db.close()
print(json.dumps({"seconds": took, "rows": N, "rss_start_mb": round(start_rss, 1),
                  "rss_peak_mb": round(peak, 1), "rss_growth_mb": round(peak - start_rss, 1),
                  "peak_before_write_mb": round(base_peak, 1)}))
""",
}

WRITE_EPILOGUE = """
print(json.dumps({"seconds": took, "rows": N, "rss_peak_mb": round(rss_mb(), 1)}))
"""

EPILOGUE = """
types = (dict(zip(df.schema.names, map(str, df.schema.types))) if hasattr(df, "schema")
         else {str(k): str(v) for k, v in df.dtypes.items()})
print(json.dumps({"seconds": took, "rows": len(df), "types": types,
                  "rss_peak_mb": round(rss_mb(), 1)}))
"""


def run(python: str, name: str, dsn: str, table: str, sql: str, n: int = 0) -> dict[str, Any]:
    if name in WRITERS:
        code = PRELUDE + WRITERS[name] + WRITE_EPILOGUE
        table = f"w_{uuid.uuid4().hex[:8]}"
    elif name in STREAM_WRITERS:
        code = PRELUDE + STREAM_WRITERS[name]
        table = f"w_{uuid.uuid4().hex[:8]}"
    else:
        code = PRELUDE + CONTESTANTS[name] + EPILOGUE
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [python, "-c", code, dsn, table, sql, str(n)],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dsn", default=os.environ.get("DKDATA_PG_DSN"))
    parser.add_argument("--ref", default=REF_PYTHON, help="the interpreter with 0.11.0")
    parser.add_argument("--write-n", type=int, default=100_000, help="rows per DataFrame write")
    parser.add_argument(
        "--write-stream-n",
        type=int,
        default=1_000_000,
        help="rows of the streamed write_arrow whose peak RSS is measured (0: none)",
    )
    parser.add_argument("--skip", action="append", default=[], help="a contestant to leave out")
    parser.add_argument("--out", default=str(ROOT / "benches/results/arrow_postgres.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.services import postgres

    from dataknobs_data import Record
    from dataknobs_data.backends.postgres import SyncPostgresDatabase

    svc = postgres._from_dsn(args.dsn) if args.dsn else postgres.start_cluster()
    table = f"arrow_{uuid.uuid4().hex[:8]}"
    sql = (
        "SELECT id, (data->>'n')::bigint AS n, data->>'name' AS name, "
        "(data->>'score')::float8 AS score, (data->>'active')::boolean AS active "
        f"FROM {table} ORDER BY seq"
    )
    results: dict[str, Any] = {"n": args.n, "connectorx_and_read_sql_query": sql, "runs": {}}
    try:
        db = SyncPostgresDatabase({"connection_string": svc.dsn, "table": table})
        db.connect()
        for start in range(0, args.n, 100_000):
            stop = min(args.n, start + 100_000)
            db.create_batch(
                [
                    Record(
                        {"n": i, "name": f"user{i}", "score": i / 7, "active": i % 3 == 0},
                        id=f"r{i:08d}",
                    )
                    for i in range(start, stop)
                ]
            )
        db.close()
        for name in CONTESTANTS:
            if name in args.skip:
                continue
            python = args.ref if name.startswith("dataknobs_0_11") else sys.executable
            repeat = 1 if name.startswith("dataknobs_0_11") else args.repeat
            runs = [run(python, name, svc.dsn, table, sql) for _ in range(repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            best["all_seconds"] = [round(r["seconds"], 3) for r in runs]
            results["runs"][name] = best
            print(f"{name:40s} {best['seconds']:8.3f} s  {json.dumps(best)}", flush=True)
        results["write_n"] = args.write_n
        results["writes"] = {}
        for name in WRITERS:
            if name in args.skip:
                continue
            python = args.ref if name.startswith("dataknobs_0_11") else sys.executable
            repeat = 1 if name.startswith("dataknobs_0_11") else args.repeat
            runs = [run(python, name, svc.dsn, table, sql, args.write_n) for _ in range(repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            best["all_seconds"] = [round(r["seconds"], 3) for r in runs]
            results["writes"][name] = best
            print(f"{name:40s} {best['seconds']:8.3f} s  {json.dumps(best)}", flush=True)
        results["write_stream_n"] = args.write_stream_n
        for name in STREAM_WRITERS:
            if name in args.skip or not args.write_stream_n:
                continue
            best = run(sys.executable, name, svc.dsn, table, sql, args.write_stream_n)
            results["write_stream"] = {name: best}
            print(f"{name:40s} {best['seconds']:8.3f} s  {json.dumps(best)}", flush=True)
    finally:
        svc.stop()
    writes = results["writes"]
    ours_w = writes.get("ours_write_arrow", {}).get("seconds")
    if ours_w:
        results["write_ratios_vs_ours_write_arrow"] = {
            k: round(v["seconds"] / ours_w, 2) for k, v in writes.items() if k != "ours_write_arrow"
        }
        print(json.dumps(results["write_ratios_vs_ours_write_arrow"], indent=1))
    runs = results["runs"]
    ours = runs.get("ours_to_pandas", {}).get("seconds")
    if ours:
        results["ratios_vs_ours_to_pandas"] = {
            k: round(v["seconds"] / ours, 2)
            for k, v in runs.items()
            if k not in ("ours_to_pandas", "ours_stream_arrow_rss")
        }
        print(json.dumps(results["ratios_vs_ours_to_pandas"], indent=1))
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
