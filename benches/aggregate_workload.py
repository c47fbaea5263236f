"""`db.aggregate` timings per backend, against a pandas groupby of the same records.

    python benches/aggregate_workload.py --n 100000 --backends memory sqlite duckdb

The pandas line fetches the records (`db.search`) and groups them in pandas, the route 0.11.0
offers (`BatchOperations.query_as_dataframe`, then `groupby`), so it is the cost a user pays
without a database-level aggregate. Prints one JSON object per (backend, case). The postgres
backend reads its server from `DKDATA_PG_DSN` (benches/workload.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from workload import _pg_config, generate_rows

from dataknobs_data import Query, Record, SyncDatabase

CASES: dict[str, tuple[Any, Any, dict[str, tuple[str, str | None]]]] = {
    "count-by-city": (None, "city", {"n": ("count", None)}),
    "metrics-by-city": (
        None,
        "city",
        {"n": ("count", None), "age": ("avg", "age"), "top": ("max", "score")},
    ),
    "filtered-sum": (Query().filter("age", ">", 50), "active", {"s": ("sum", "score")}),
}


def _open(backend: str, workdir: Path) -> SyncDatabase:
    config: dict[str, Any] = {}
    if backend == "sqlite":
        config = {"path": str(workdir / "agg.sqlite")}
    elif backend == "duckdb":
        config = {"path": str(workdir / "agg.duckdb")}
    elif backend == "postgres":
        config = {**_pg_config(), "table": f"agg_{int(time.time())}"}
    return SyncDatabase.from_backend(backend, config)


def _pandas(db: SyncDatabase, query: Any, group: str) -> int:
    import pandas as pd

    records = db.search(query if query is not None else Query())
    frame = pd.DataFrame([r.data for r in records])
    return len(frame.groupby(group).agg({"age": "mean", "score": "max"}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["memory", "sqlite", "duckdb"])
    args = parser.parse_args()
    rows = generate_rows(args.n)
    for backend in args.backends:
        workdir = Path(tempfile.mkdtemp(prefix="dk-agg-"))
        db = _open(backend, workdir)
        try:
            db.clear()
            db.create_batch([Record(r, id=r["id"]) for r in rows])
            timed: dict[str, Any] = {
                name: (lambda c=case, d=db: d.aggregate(c[0], c[1], c[2]))
                for name, case in CASES.items()
            }
            timed["pandas-groupby"] = lambda d=db: _pandas(d, None, "city")
            for name, run in timed.items():
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    run()
                    times.append((time.perf_counter() - start) * 1000)
                print(
                    json.dumps(
                        {
                            "backend": backend,
                            "n": args.n,
                            "case": name,
                            "median_ms": round(statistics.median(times), 1),
                        }
                    )
                )
        finally:
            db.clear()
            db.close()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
