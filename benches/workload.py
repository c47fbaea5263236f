"""The benchmark workload, written only against the public API (shared API.md).

It uses nothing but ``SyncDatabase.from_backend``, ``Record``, ``Query`` and the database
verbs, so the same file runs unchanged against this package and against the pure-Python
``dataknobs-data`` from PyPI. ``benches/test_bench.py`` drives it with pytest-benchmark;
``benches/compare.py`` runs it as a script in two interpreters and compares the timings.

As a script it prints one JSON object per line and per (backend, N, op):
``{"backend", "n", "op", "times_ms": [...], "median_ms", "error"}`` (``error`` is None or the
message of the exception the op raised, or a wrong-result note).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from dataknobs_data import Query, Record, SyncDatabase

#: Backends that need no server (the pytest-benchmark cases run these).
LOCAL_BACKENDS = ("memory", "file", "sqlite", "duckdb")
BACKENDS = (*LOCAL_BACKENDS, "postgres")
#: The PostgreSQL server of the ``postgres`` backend (compare.py sets it to its throwaway one).
PG_DSN_ENV = "DKDATA_PG_DSN"
OPS = ("create_batch", "read_by_id", "search", "count", "stream_read", "update_batch")
CITIES = (
    "Amsterdam",
    "Berlin",
    "Cairo",
    "Denver",
    "Edinburgh",
    "Florence",
    "Geneva",
    "Havana",
    "Istanbul",
    "Jakarta",
)
TAGS = ("red", "green", "blue", "new", "vip", "archived", "beta", "eu", "us", "asia")
# Ops made of one call per record; under a time budget they are timed on a sample of the
# records and scaled up (reported as estimates).
PER_CALL_OPS = ("read_by_id", "update_batch")
READS = 1_000
UPDATES = 1_000
SEARCH_LIMIT = 100
#: Records per create_batch call, as users load data (0.11.0's SQLite backend binds a whole
#: batch in one statement and fails past SQLite's variable limit on larger ones).
CREATE_CHUNK = 1_000


def create_in_chunks(db: Any, records: list[Any]) -> list[str]:
    """``db.create_batch`` over ``records`` in chunks of ``CREATE_CHUNK``; the ids, in order."""
    ids: list[str] = []
    for start in range(0, len(records), CREATE_CHUNK):
        ids.extend(db.create_batch(records[start : start + CREATE_CHUNK]))
    return ids


def generate_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """N deterministic rows: id, name, age (int), score (float), city (1 of 10), active, tags."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": f"rec-{i:08d}",
                "name": f"person-{rng.randrange(1_000_000):06d}",
                "age": rng.randint(18, 90),
                "score": round(rng.uniform(0.0, 100.0), 3),
                "city": CITIES[rng.randrange(len(CITIES))],
                "active": rng.random() < 0.5,
                "tags": rng.sample(TAGS, rng.randint(0, 3)),
            }
        )
    return rows


class Workload:
    """One backend and one N: a populated database plus a prepare/run pair per op.

    ``prepare(op)`` does the untimed set-up and returns the argument of ``run(op, arg)``,
    which is the timed part and returns a number that ``check`` compares with the expected one.
    """

    def __init__(self, backend: str, n: int, workdir: str | Path | None = None, seed: int = 0):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {BACKENDS}")
        self.backend = backend
        self.n = n
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="dk-bench-") if workdir is None else workdir)
        self.rows = generate_rows(n, seed)
        rng = random.Random(seed + 1)
        # Positions, not ids: the ids used are the ones create_batch returned (the original's
        # sqlite backend stores batches under fresh uuids instead of the records' ids).
        self.read_positions = [rng.randrange(n) for _ in range(min(READS, n))]
        self.update_positions = rng.sample(range(n), min(UPDATES, n))
        self.city = CITIES[3]
        self.city_count = sum(1 for row in self.rows if row["city"] == self.city)
        self.ids: list[str] = []
        self.db: Any = None
        self._scratch: list[Any] = []
        self._serial = 0

    # -- databases -------------------------------------------------------------------------
    def open_db(self) -> Any:
        """A new, empty, connected database of this backend (a fresh file each time)."""
        self._serial += 1
        config: dict[str, Any]
        if self.backend == "memory":
            config = {}
        elif self.backend == "file":
            config = {"path": str(self.workdir / f"db{self._serial}.jsonl"), "format": "jsonl"}
        elif self.backend == "duckdb":
            config = {"path": str(self.workdir / f"db{self._serial}.duckdb")}
        elif self.backend == "postgres":
            config = {**_pg_config(), "table": f"dkbench_{uuid.uuid4().hex[:12]}"}
        else:
            config = {"path": str(self.workdir / f"db{self._serial}.sqlite")}
        return SyncDatabase.from_backend(self.backend, config)

    def records(self, rows: list[dict[str, Any]] | None = None) -> list[Any]:
        return [Record(dict(row)) for row in (self.rows if rows is None else rows)]

    def populate(self) -> None:
        """Open ``self.db`` and load the N records into it (untimed)."""
        if self.db is None:
            self.db = self.open_db()
            self.ids = create_in_chunks(self.db, self.records())

    def _drop_scratch(self) -> None:
        while self._scratch:
            _close(self._scratch.pop())

    def close(self) -> None:
        self._drop_scratch()
        if self.db is not None:
            _close(self.db)
            self.db = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- ops -------------------------------------------------------------------------------
    def prepare(self, op: str) -> Any:
        if op == "create_batch":
            self._drop_scratch()
            db = self.open_db()
            self._scratch.append(db)
            return (db, self.records())
        self.populate()
        if op == "read_by_id":
            return [self.ids[i] for i in self.read_positions]
        if op in ("search", "count"):
            query = Query().filter("city", "=", self.city)
            if op == "search":
                query = query.sort_by("age", "desc").limit(SEARCH_LIMIT)
            return query
        if op == "stream_read":
            return None
        if op == "update_batch":
            updates = []
            for i in self.update_positions:
                row = self.rows[i]
                changed = {**row, "age": row["age"] + 1, "score": row["score"] + 0.5}
                updates.append((self.ids[i], Record(changed)))
            return updates
        raise ValueError(f"unknown op {op!r}; choose from {OPS}")

    def run(self, op: str, arg: Any) -> int:
        db = self.db
        if op == "create_batch":
            target, records = arg
            return len(create_in_chunks(target, records))
        if op == "read_by_id":
            return sum(1 for rid in arg if db.read(rid) is not None)
        if op == "search":
            return len(db.search(arg))
        if op == "count":
            return int(db.count(arg))
        if op == "stream_read":
            return sum(1 for _ in db.stream_read())
        if op == "update_batch":
            if hasattr(db, "update_batch"):
                return sum(1 for ok in db.update_batch(arg) if ok)
            return sum(1 for rid, rec in arg if db.update(rid, rec))
        raise ValueError(f"unknown op {op!r}; choose from {OPS}")

    def expected(self, op: str, arg: Any) -> int:
        if op in PER_CALL_OPS:
            return len(arg)
        return {
            "create_batch": self.n,
            "search": min(SEARCH_LIMIT, self.city_count),
            "count": self.city_count,
            "stream_read": self.n,
        }[op]

    def check(self, op: str, arg: Any, got: int) -> str | None:
        want = self.expected(op, arg)
        return None if got == want else f"wrong result: expected {want}, got {got}"

    def check_search_order(self) -> str | None:
        """The search result must be sorted by age, descending, all in the chosen city."""
        found = self.db.search(self.prepare("search"))
        ages = [r.get_value("age") for r in found]
        if ages != sorted(ages, reverse=True):
            return "wrong result: search not sorted by -age"
        if any(r.get_value("city") != self.city for r in found):
            return "wrong result: search returned another city"
        return None


def _pg_config() -> dict[str, Any]:
    """Connection keys (host, port, database, user, password) from ``DKDATA_PG_DSN``."""
    from urllib.parse import unquote, urlsplit

    dsn = os.environ.get(PG_DSN_ENV)
    if not dsn:
        raise RuntimeError(f"the postgres backend needs {PG_DSN_ENV} (compare.py sets it)")
    parts = urlsplit(dsn)
    config: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "database": unquote(parts.path.lstrip("/")) or "postgres",
    }
    if parts.username:
        config["user"] = unquote(parts.username)
    if parts.password:
        config["password"] = unquote(parts.password)
    return config


def _close(db: Any) -> None:
    with contextlib.suppress(Exception):
        db.close()


def _error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 200 else text[:197] + "..."


def _fit(workload: Workload, op: str, arg: list[Any], budget: float) -> int:
    """How many of ``arg``'s records to time so that one run takes about ``budget / 4``.

    Pilot runs of 1, 10, 100 ... records (while cheap) estimate the cost per record, so a
    fixed cost per call is not mistaken for a cost per record; ``len(arg)`` means all.
    """
    size = 1
    while True:
        start = time.perf_counter()
        workload.run(op, arg[:size])
        per_item = max((time.perf_counter() - start) / size, 1e-9)
        if per_item * len(arg) <= budget / 4:
            return len(arg)
        if size * 10 >= len(arg) or per_item * size * 10 > budget / 16:
            break
        size *= 10
    return max(2, min(len(arg), int(budget / 4 / per_item)))


def measure(
    workload: Workload, op: str, repeat: int, budget: float | None = None
) -> dict[str, Any]:
    """Time ``op`` up to ``repeat`` times (fewer past ``budget`` seconds); never raises."""
    result: dict[str, Any] = {"backend": workload.backend, "n": workload.n, "op": op}
    times: list[float] = []
    error: str | None = None
    sample: int | None = None
    scaled = False
    try:
        for _ in range(repeat):
            arg = workload.prepare(op)
            scale = 1.0
            if budget is not None and op in PER_CALL_OPS:
                if sample is None:
                    sample = _fit(workload, op, arg, budget)
                if sample < len(arg):
                    scale = len(arg) / sample
                    arg = arg[:sample]
                    scaled = True
            start = time.perf_counter()
            got = workload.run(op, arg)
            times.append((time.perf_counter() - start) * 1000.0 * scale)
            error = error or workload.check(op, arg, got)
            if budget is not None and sum(times) / 1000.0 > budget:
                break
        if op == "search" and error is None:
            error = workload.check_search_order()
    except Exception as exc:
        error = _error(exc)
        if "--debug" in sys.argv:
            traceback.print_exc()
    result["times_ms"] = [round(t, 3) for t in times]
    result["median_ms"] = round(statistics.median(times), 3) if times and not error else None
    result["estimated_from"] = sample if scaled else None
    result["error"] = error
    return result


def run_all(
    backends: list[str],
    sizes: list[int],
    ops: list[str],
    repeat: int,
    budget: float | None = None,
) -> list[dict[str, Any]]:
    results = []
    for n in sizes:
        for backend in backends:
            workload = Workload(backend, n)
            try:
                for op in ops:
                    res = measure(workload, op, repeat, budget)
                    results.append(res)
                    print(json.dumps(res), flush=True)
                    print(_describe(res), file=sys.stderr, flush=True)
            finally:
                workload.close()
    return results


def _describe(res: dict[str, Any]) -> str:
    where = f"{res['backend']:<7} {res['op']:<13} N={res['n']:<7}"
    if res["error"]:
        return f"{where} {res['error']}"
    note = f" (estimated from {res['estimated_from']} records)" if res["estimated_from"] else ""
    return f"{where} {res['median_ms']:>10.2f} ms{note}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--n", nargs="+", type=int, default=[10_000])
    parser.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds per op; per-record ops past it are timed on a sample and scaled",
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks of failed ops")
    args = parser.parse_args(argv)
    run_all(args.backends, args.n, args.ops, max(1, args.repeat), args.budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
