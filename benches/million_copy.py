"""Copy a million records from a JSON Lines file into SQLite (and on into PostgreSQL) with the
Migrator; report the time and the peak RSS of the process (goal: under 300 MB).

Usage (from the repository root)::

    .venv/bin/python benches/million_copy.py [--n 1000000] [--batch-size 1000]
                                             [--partitions 1] [--source jsonl|sqlite]
                                             [--postgres [DSN]] [--dir DIR] [--keep]

``--postgres`` adds a second copy, SQLite -> PostgreSQL (a new table), in the same process, so
the peak covers file -> sqlite -> postgres; without a DSN it starts the tests' throwaway cluster.

The JSON Lines source is written line by line in the file backend's layout
(``{"id", "data", "metadata"}``, docs/internals.md §3), so generating it costs no memory;
the copy then goes through the public API only: the file backend, the SQLite backend and
``Migrator.migrate`` with a small Transformer. Peak RSS is ``ru_maxrss`` of this process.

``--source sqlite`` generates the records into a SQLite file instead (``create_batch`` in
batches) and copies SQLite -> SQLite: both ends stream, so the peak RSS shows what the
Migrator itself holds. With ``--source jsonl`` the file backend does not load the file: its
stream parses it line by line in a producer thread (docs/internals.md §3, "How FileStore uses
the file"), so the peak adds only the ids the scan has seen (for its duplicate check).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dataknobs_data import Record, SyncDatabase
from dataknobs_data.migration import Migrator, Transformer

CITIES = ("Amsterdam", "Berlin", "Cairo", "Denver", "Edinburgh", "Florence", "Geneva")


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def generate(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            data = {
                "name": f"person-{rng.randrange(1_000_000):06d}",
                "age": rng.randint(18, 90),
                "score": round(rng.uniform(0.0, 100.0), 3),
                "city": CITIES[rng.randrange(len(CITIES))],
                "active": rng.random() < 0.5,
                "tags": rng.sample(["red", "green", "blue", "vip"], rng.randint(0, 2)),
            }
            fh.write(json.dumps({"id": f"rec-{i:08d}", "data": data, "metadata": {}}))
            fh.write("\n")


def generate_sqlite(path: Path, n: int, batch_size: int) -> None:
    """The same records in a SQLite file, written batch by batch (bounded memory)."""
    scratch = Path(str(path) + ".jsonl")
    generate(scratch, n)
    db = SyncDatabase.from_backend("sqlite", {"path": str(path)})
    batch: list[Record] = []
    with open(scratch, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            batch.append(Record(row["data"], id=row["id"]))
            if len(batch) >= batch_size:
                db.create_batch(batch)
                batch = []
    if batch:
        db.create_batch(batch)
    db.close()
    scratch.unlink()


def copy_to_postgres(source: SyncDatabase, dsn: str, batch_size: int) -> tuple[float, int]:
    """Copies ``source`` into a new PostgreSQL table: (seconds, rows stored)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.services import postgres

    svc = postgres._from_dsn(dsn) if dsn else postgres.start_cluster()
    try:
        table = f"million_{random.randrange(1 << 32):08x}"
        config = {"connection_string": svc.dsn, "table": table}
        target = SyncDatabase.from_backend("postgres", config)
        t0 = time.perf_counter()
        progress = Migrator().migrate(source, target, batch_size=batch_size)
        seconds = time.perf_counter() - t0
        count = target.count()
        target.clear()
        target.close()
        if progress.failed:
            print(f"postgres copy: {progress.failed} failed", file=sys.stderr)
        return seconds, count
    finally:
        if not dsn:
            svc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--source", choices=("jsonl", "sqlite"), default="jsonl")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="",
        help="then copy sqlite -> postgres (DSN; empty: start a throwaway cluster)",
    )
    parser.add_argument("--dir", type=Path, help="work folder (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    args = parser.parse_args(argv)

    work = args.dir or Path(tempfile.mkdtemp(prefix="dkdata-million-"))
    work.mkdir(parents=True, exist_ok=True)
    src_path = work / ("source.jsonl" if args.source == "jsonl" else "source.db")
    dst_path = work / "target.db"
    src_path.unlink(missing_ok=True)
    dst_path.unlink(missing_ok=True)
    try:
        t0 = time.perf_counter()
        if args.source == "jsonl":
            generate(src_path, args.n)
        else:
            generate_sqlite(src_path, args.n, args.batch_size)
        gen_s = time.perf_counter() - t0
        size_mb = src_path.stat().st_size / 1e6
        print(f"generated {args.n:,} records ({size_mb:,.0f} MB) in {gen_s:.1f}s", flush=True)
        rss_before = peak_rss_mb()

        backend = "file" if args.source == "jsonl" else "sqlite"
        source = SyncDatabase.from_backend(backend, {"path": str(src_path)})
        target = SyncDatabase.from_backend("sqlite", {"path": str(dst_path)})
        transform = Transformer().rename("name", "full_name").add("migrated", True)
        t0 = time.perf_counter()
        if args.partitions > 1:
            progress = Migrator().migrate_parallel(
                source, target, transform, args.partitions, batch_size=args.batch_size
            )
        else:
            progress = Migrator().migrate(source, target, transform, batch_size=args.batch_size)
        copy_s = time.perf_counter() - t0
        count = target.count()
        source.close()
        ok = progress.succeeded == args.n == count and progress.failed == 0
        report: dict[str, object] = {
            "n": args.n,
            "source": args.source,
            "batch_size": args.batch_size,
            "partitions": args.partitions,
            "copy_seconds": round(copy_s, 2),
            "records_per_second": round(args.n / copy_s),
            "target_count": count,
        }
        if args.postgres is not None:
            pg_s, pg_count = copy_to_postgres(target, args.postgres, args.batch_size)
            ok = ok and pg_count == args.n
            report.update(
                postgres_copy_seconds=round(pg_s, 2),
                postgres_records_per_second=round(args.n / pg_s),
                postgres_count=pg_count,
            )
        target.close()
        peak = peak_rss_mb()
        report.update(
            peak_rss_mb_before_copy=round(rss_before, 1),
            peak_rss_mb=round(peak, 1),
            rss_goal_met=peak < 300,
            ok=ok,
        )
        print(json.dumps(report))
        return 0 if ok else 1
    finally:
        if not args.keep:
            if args.dir is None:
                shutil.rmtree(work, ignore_errors=True)
            else:
                src_path.unlink(missing_ok=True)
                dst_path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
