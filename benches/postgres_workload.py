"""PostgreSQL benchmark workload for one side, run as a script by ``postgres_compare.py``.

Sides: ``ours`` (this package), ``theirs`` (the pure-Python dataknobs-data in the anchor venv,
whose postgres backend runs on asyncpg) and ``asyncpg`` (raw driver: ``copy_records_to_table``
of the same rows into the same table layout and indexes, ``fetch`` of all rows plus
``json.loads``). Prints one JSON object per op: ``{"side", "n", "op", "seconds", "error"}``.

``create_batch`` writes N records into a table that already holds a row; ``bulk_create`` writes
them into a new, empty table (raw asyncpg there drops the GIN index, copies and rebuilds it, the
usual trick for bulk loads, which with ``jsonb_path_ops`` saves nothing measurable). The reads
then run on the bulk-created table. The original's ``stream_read`` fails, so
its side times ``search(Query())`` instead (the note in the output says so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

CITIES = ("Amsterdam", "Berlin", "Cairo", "Denver", "Edinburgh", "Florence", "Geneva", "Havana")


def rows(n: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    rnd = random.Random(7)
    return [
        (
            f"r{i:07d}",
            {
                "n": i,
                "name": f"user{i}",
                "score": round(rnd.random() * 100, 3),
                "city": CITIES[i % len(CITIES)],
                "tags": ["a", "b"] if i % 2 else ["c"],
            },
            {"source": "bench"},
        )
        for i in range(n)
    ]


def emit(side: str, n: int, op: str, seconds: float | None, error: str | None = None) -> None:
    print(json.dumps({"side": side, "n": n, "op": op, "seconds": seconds, "error": error}))
    sys.stdout.flush()


async def timed(side: str, n: int, op: str, fn: Callable[[], Awaitable[Any]]) -> None:
    try:
        start = time.perf_counter()
        await fn()
        emit(side, n, op, time.perf_counter() - start)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit(side, n, op, None, f"{type(exc).__name__}: {exc}")


def pg_config(dsn: str) -> dict[str, Any]:
    url = urlparse(dsn)
    return {
        "host": url.hostname,
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "database": (url.path or "/postgres").lstrip("/") or "postgres",
    }


async def run_database(side: str, dsn: str, n: int, reads: int) -> None:
    from dataknobs_data import Query, Record

    if side == "ours":
        from dataknobs_data.backends.postgres import AsyncPostgresDatabase
    else:
        from dataknobs_data.backends.postgres import AsyncPostgresDatabase  # type: ignore

    async def open_db() -> Any:
        db = AsyncPostgresDatabase({**pg_config(dsn), "table": f"bench_{uuid.uuid4().hex[:12]}"})
        await db.connect()
        return db

    records = [Record(d, metadata=m, id=i) for i, d, m in rows(n)]
    tenth = Query().filter("n", "<", n // 10)
    ids: list[str] = []

    async def create_into(db: Any) -> list[str]:
        # The original builds one INSERT with every value as a parameter, which PostgreSQL caps
        # at 32767: feed it batches it can take.
        step = n if side == "ours" else 5000
        out: list[str] = []
        for start in range(0, n, step):
            out.extend(await db.create_batch(records[start : start + step]))
        return out

    # Into a table that already holds a row, so its indexes are kept up row by row.
    kept = await open_db()
    await kept.create(Record({"seed": True}, id="seed"))

    async def create() -> None:
        await create_into(kept)

    # Into a new, empty table.
    db = await open_db()

    async def bulk_create() -> None:
        ids.extend(await create_into(db))

    async def stream() -> None:
        count = 0
        try:
            async for _ in db.stream_read():
                count += 1
        except TypeError:
            if side == "ours":
                raise
            # The original's stream_read fails (it iterates an asyncpg cursor without awaiting
            # it); reading everything with search() is what its users are left with.
            count = len(await db.search(Query()))
        assert count == n, count

    async def read_by_id() -> None:
        rnd = random.Random(1)
        for _ in range(reads):
            got = await db.read(ids[rnd.randrange(len(ids))])
            assert got is not None

    async def search() -> None:
        found = await db.search(tenth.copy().sort_by("score", "desc"))
        assert len(found) == n // 10, len(found)

    async def count() -> None:
        assert await db.count(tenth) == n // 10

    await timed(side, n, "create_batch", create)
    await timed(side, n, "bulk_create", bulk_create)
    await timed(side, n, "stream_read", stream)
    await timed(side, n, "search", search)
    await timed(side, n, "count", count)
    await timed(side, reads, "read_by_id", read_by_id)
    # The original shares one pool between the two: close both only at the end.
    await kept.close()
    await db.close()


async def run_asyncpg(dsn: str, n: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    data = rows(n)

    async def new_table() -> str:
        # The layout ours creates: the same columns and the same indexes.
        table = f"bench_asyncpg_{uuid.uuid4().hex[:8]}"
        await conn.execute(
            f"CREATE TABLE {table} (id VARCHAR(255) PRIMARY KEY, data JSONB NOT NULL, "
            "metadata JSONB NOT NULL DEFAULT '{}', created_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
            "updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
            "seq BIGINT GENERATED BY DEFAULT AS IDENTITY)"
        )
        await conn.execute(f"CREATE INDEX ON {table} (seq)")
        await conn.execute(f"CREATE INDEX {table}_data ON {table} USING gin (data jsonb_path_ops)")
        return table

    async def copy(table: str) -> None:
        # Encoding is part of the job, as it is for the databases.
        encoded = [(i, json.dumps(d), json.dumps(m)) for i, d, m in data]
        await conn.copy_records_to_table(table, records=encoded, columns=["id", "data", "metadata"])

    kept = await new_table()
    await conn.execute(f"INSERT INTO {kept} (id, data) VALUES ('seed', '{{}}')")
    table = await new_table()

    async def create() -> None:
        await copy(kept)

    async def bulk_create() -> None:
        # By hand, what ours does for an empty table: drop the GIN index, copy, rebuild it.
        async with conn.transaction():
            await conn.execute(f"DROP INDEX {table}_data")
            await copy(table)
            await conn.execute(
                f"CREATE INDEX {table}_data ON {table} USING gin (data jsonb_path_ops)"
            )

    async def fetch() -> None:
        got = await conn.fetch(f"SELECT id, data, metadata FROM {table} ORDER BY seq")
        decoded = [(r[0], json.loads(r[1]), json.loads(r[2])) for r in got]
        assert len(decoded) == n

    await timed("asyncpg", n, "create_batch", create)
    await timed("asyncpg", n, "bulk_create", bulk_create)
    await timed("asyncpg", n, "stream_read", fetch)
    await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--side", choices=("ours", "theirs", "asyncpg"), required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=1000)
    args = parser.parse_args()
    if args.side == "asyncpg":
        asyncio.run(run_asyncpg(args.dsn, args.n))
    else:
        asyncio.run(run_database(args.side, args.dsn, args.n, args.reads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
