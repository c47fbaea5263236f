"""DataFrame bulk insert and query_as_dataframe, timed; the same script runs on 0.11.0.

The pandas surface is the same in both packages, so one script measures both::

    PYTHONPATH=python .venv/bin/python benches/pandas_workload.py --n 100000 --backend sqlite
    /path/to/venv-with-0.11.0/bin/python benches/pandas_workload.py --n 100000 --backend sqlite

It prints one JSON line: the seconds each step took (best of ``--repeat``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dataknobs_data import Query
from dataknobs_data.factory import DatabaseFactory
from dataknobs_data.pandas import BatchConfig, BatchOperations


def frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "id": [f"k{i}" for i in range(n)],
            "name": [f"name {i}" for i in range(n)],
            "age": rng.integers(18, 90, n),
            "score": rng.random(n),
            "active": rng.random(n) > 0.5,
            "city": rng.choice(["Rome", "Oslo", "Lima", "Pune"], n),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--backend", default="sqlite", choices=["memory", "sqlite"])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    df = frame(args.n)
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            config = {"path": str(Path(tmp) / "bench.db")} if args.backend == "sqlite" else {}
            db = DatabaseFactory().create(backend=args.backend, **config)
            db.connect()
            ops = BatchOperations(db)
            started = time.perf_counter()
            stats = ops.bulk_insert_dataframe(df, BatchConfig(chunk_size=10_000))
            insert = time.perf_counter() - started
            assert stats["inserted"] == args.n, stats
            started = time.perf_counter()
            out = ops.query_as_dataframe(Query())
            query = time.perf_counter() - started
            assert len(out) == args.n
            db.close()
        for name, took in (("bulk_insert_dataframe", insert), ("query_as_dataframe", query)):
            best[name] = min(best.get(name, took), took)
    print(json.dumps({"n": args.n, "backend": args.backend, **best}))


if __name__ == "__main__":
    main()
