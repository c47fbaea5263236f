"""``demo``: sample records in SQLite, queried, then exported to JSONL and Parquet."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import random
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar
from urllib.parse import quote

from rich.console import Console

from ._common import DEFAULT_BATCH_SIZE, PROG, UsageError, _print_error, _stdout
from .copying import copy_records
from .databases import open_database
from .output import _write_table

if TYPE_CHECKING:
    from dataknobs_data.records import Record

_T = TypeVar("_T")

_FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "zoe",
)  # fmt: skip
_CITIES = ("Paris", "London", "Berlin", "Madrid", "Rome", "Lisbon", "Vienna", "Oslo")
_TAGS = ("python", "rust", "data", "ml", "web", "ops", "cloud", "db")


def _demo_records(n: int, seed: int = 42) -> Iterator[Record]:
    """Deterministic sample people: the same ``n`` always gives the same data."""
    from dataknobs_data.records import Record

    rng = random.Random(seed)
    epoch = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    for i in range(n):
        name = rng.choice(_FIRST_NAMES)
        yield Record(
            {
                "name": name,
                "age": rng.randint(18, 79),
                "city": rng.choice(_CITIES),
                "email": f"{name}{i}@example.com",
                "score": round(rng.uniform(0, 100), 2),
                "active": rng.random() < 0.7,
                "joined": epoch + dt.timedelta(minutes=rng.randrange(5 * 365 * 24 * 60)),
                "tags": rng.sample(_TAGS, rng.randint(1, 3)),
            },
            id=f"person-{i:06d}",
        )


def _thousands(n: int) -> str:
    return f"{n:,}"


def _file_url(path: Path, query: str = "") -> str:
    return "file://" + quote(str(path.resolve())) + (f"?{query}" if query else "")


class _Timer:
    """Prints one aligned timing line per demo step."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.started = time.perf_counter()

    def step(self, label: str, fn: Callable[[], _T], show: Callable[[_T], str]) -> _T:
        t0 = time.perf_counter()
        value = fn()
        elapsed = time.perf_counter() - t0
        print(f"  {elapsed:8.3f}s  {label:<56} {show(value)}", file=self.out, flush=True)
        return value


def _cmd_demo(args: argparse.Namespace) -> int:
    from dataknobs_data.query import Query

    path = Path(args.path)
    if path.suffix.lower() in (".jsonl", ".parquet"):
        raise UsageError(f"--path {path} would be overwritten by the demo's own output files")
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonl_path = path.with_suffix(".jsonl")
    parquet_path = path.with_suffix(".parquet")
    # The JSONL file backend appends on create, so stale outputs are removed, not reused.
    for stale in (jsonl_path, parquet_path):
        stale.unlink(missing_ok=True)

    n = args.n
    out = _stdout()
    console = Console(file=out)
    sqlite_url = "sqlite://" + quote(str(path.resolve())) + "?table=people"
    print(f"{PROG} demo: {n:,} records in {path}", file=out)
    timer = _Timer(out)

    db = open_database(sqlite_url)
    try:
        timer.step("clear table 'people'", db.clear, lambda k: f"{k:,} removed")

        def create() -> int:
            batch: list[Record] = []
            stored = 0
            for record in _demo_records(n):
                batch.append(record)
                if len(batch) >= DEFAULT_BATCH_SIZE:
                    stored += len(db.create_batch(batch))
                    batch = []
            if batch:
                stored += len(db.create_batch(batch))
            return stored

        t0 = time.perf_counter()
        timer.step(f"create {n:,} records (create_batch)", create, lambda k: f"{k:,} stored")
        rate = n / max(time.perf_counter() - t0, 1e-9)
        print(f"  {'':9}  {'':<56} {rate:,.0f} records/s", file=out)

        timer.step("count()", db.count, _thousands)
        active = Query().filter("active", "=", True).filter("age", ">=", 30)
        timer.step("count(active = true AND age >= 30)", lambda: db.count(active), _thousands)
        like = Query().filter("name", "like", "a%")
        timer.step("count(name LIKE 'a%')", lambda: db.count(like), _thousands)
        top = (
            Query()
            .filter("city", "=", "Paris")
            .filter("age", "between", [30, 40])
            .sort_by("score", "desc")
            .limit(5)
        )
        rows = timer.step(
            "search(city = Paris, age 30..40, sort -score, limit 5)",
            lambda: db.search(top),
            lambda rs: f"{len(rs)} rows",
        )
        _write_table(rows, ["name", "age", "city", "score", "active"], console)

        for target_path, label in ((jsonl_path, "JSONL"), (parquet_path, "Parquet")):
            target = open_database(_file_url(target_path))
            try:
                stats = timer.step(
                    f"stream to {label}: {target_path.name}",
                    functools.partial(copy_records, db, target),
                    lambda s: f"{s.successful:,} records ({s.rate:,.0f}/s)",
                )
            finally:
                target.close()
            if stats.failed:
                _print_error(f"{stats.failed:,} record(s) could not be written to {target_path}")
                return 1
    finally:
        db.close()

    for target_path in (jsonl_path, parquet_path):
        check = open_database(_file_url(target_path), read_only=True)
        try:
            timer.step(f"count() of {target_path.name}", check.count, _thousands)
        finally:
            check.close()
    total = time.perf_counter() - timer.started
    print(f"Done in {total:.2f}s: {path}, {jsonl_path}, {parquet_path}", file=out)
    # The table is "people", not the default "records": without these a first
    # `count sqlite:///...` would name a table the demo never wrote.
    print("Query what it wrote:", file=out)
    for url in (sqlite_url, _file_url(jsonl_path), _file_url(parquet_path)):
        print(f"  {PROG} count {shlex.quote(url)}", file=out)
    print(f"  {PROG} query {shlex.quote(sqlite_url)} --where 'age>=30' --limit 5", file=out)
    return 0
