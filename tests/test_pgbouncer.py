"""PostgreSQL behind PgBouncer in transaction pooling: ``prepared_statements=False``.

PgBouncer 1.18 (Debian 12's) in ``pool_mode = transaction`` gives each transaction whatever
server connection is free, so a statement prepared in one transaction is missing from the
server connection of the next. The conformance and differential suites run through it in the
unnamed mode (conftest's "postgres-pgbouncer"); these tests show that the default mode really
breaks there, that the unnamed mode holds under concurrency, and that the modes never share a
pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

from dataknobs_data import (
    ConfigurationError,
    DatabaseOperationError,
    DuplicateRecordError,
    Query,
    Record,
    StreamConfig,
)
from dataknobs_data.backends.postgres import AsyncPostgresDatabase, SyncPostgresDatabase
from dataknobs_data.pooling import PostgresPoolConfig

from .services.pgbouncer import PgBouncerService
from .services.pgbouncer import service as bouncer_service
from .services.postgres import PostgresService
from .services.postgres import service as pg_service


@pytest.fixture
def bouncer() -> PgBouncerService:
    return bouncer_service()


@pytest.fixture
def pg() -> PostgresService:
    return pg_service()


def table() -> str:
    return f"t_{uuid.uuid4().hex}"


def test_prepared_statements_break_behind_pgbouncer_and_unnamed_ones_do_not(
    bouncer: PgBouncerService,
) -> None:
    for prepared in (True, False):
        settings = {**bouncer.config(), "table": table(), "min_pool_size": 1, "max_pool_size": 1}
        db = SyncPostgresDatabase({**settings, "prepared_statements": prepared})
        db.connect()
        # Its stream below holds a server connection: an open transaction pins one. (Filling
        # the table also lets the default mode's opening statements finish: their Close is not
        # waited for, and a statement sent right behind it would lose its answer.)
        # (A pool of its own: in the unnamed round, db's only connection must stay free.)
        holder = SyncPostgresDatabase(
            {**settings, "max_pool_size": 2, "prepared_statements": False}
        )
        holder.create_batch([Record({"n": i}, id=f"r{i:04d}") for i in range(2000)])
        try:
            # The default mode prepares the read here, on the server connection PgBouncer
            # lends it (the most recently used one: PgBouncer reuses them last in, first out).
            assert db.read("r0001") is not None
            # That same server connection now goes to the stream's transaction...
            stream = holder.stream_read(config=StreamConfig(batch_size=1, prefetch=0))
            assert next(stream).id == "r0000"
            # ... so the next read runs on the other one, which never saw the statement.
            if prepared:
                with pytest.raises(DatabaseOperationError, match="prepared statement"):
                    db.read("r0001")
            else:
                got = db.read("r0001")
                assert got is not None and got["n"] == 1
            stream.close()
        finally:
            holder.close()
            db.close()


def test_fifty_concurrent_tasks_through_pgbouncer(bouncer: PgBouncerService) -> None:
    # As PgBouncer is meant to be used: many client connections over a few server ones
    # (POOL_SIZE), and fewer client connections than tasks, so tasks wait for them too.
    database = AsyncPostgresDatabase(
        {**bouncer.config(), "table": table(), "max_pool_size": 10, "prepared_statements": False}
    )
    seeded = [Record({"k": -1, "tag": "seed"}, id=f"seed{i:04d}") for i in range(3000)]

    async def task(k: int) -> tuple[int, int, int]:
        batch = [Record({"k": k, "i": i}, id=f"k{k}-{i}") for i in range(20)]
        assert await database.create_batch(batch) == [r.id for r in batch]
        # A failed COPY, rolled back, then a lookup of the colliding id on the same connection.
        with pytest.raises(DuplicateRecordError):
            await database.create_batch([Record({"k": k}, id=f"new{k}"), batch[3]])
        got = await database.read(f"k{k}-7")
        assert got is not None and got["i"] == 7
        found = await database.search(Query().filter("k", "=", k).sort_by("i", "desc"))
        assert [r["i"] for r in found] == list(range(19, -1, -1))
        # A scan that stops early (a limit over a condition SQL cannot decide: a regex) ends its
        # transaction before the next call.
        assert len(await database.search(Query().filter("tag", "regex", "^se").limit(3))) == 3
        mine = await database.count(Query().filter("k", "=", k))
        streamed = [r async for r in database.stream_read(Query().filter("k", "=", k))]
        # A stream abandoned early ends its transaction too.
        cfg = StreamConfig(batch_size=100, prefetch=1)
        async with contextlib.aclosing(database.stream_read(config=cfg)) as records:
            seen = 0
            async for _record in records:
                seen += 1
                if seen == 150:
                    break
        return mine, len(streamed), await database.count()

    async def main() -> list[tuple[int, int, int]]:
        await database.connect()
        try:
            await database.create_batch(seeded)
            return await asyncio.gather(*(task(k) for k in range(50)))
        finally:
            stats = database.pool_stats()
            assert stats["key"].endswith("prepared_statements=false")
            await database.close()

    results = asyncio.run(main())
    assert all(mine == 20 and streamed == 20 for mine, streamed, _ in results)
    assert max(total for _, _, total in results) == 3000 + 50 * 20


def test_the_two_modes_never_share_a_pool(pg: PostgresService) -> None:
    settings: dict[str, Any] = {**pg.config(), "password": "s3cret-pw", "min_pool_size": 1}
    prepared = SyncPostgresDatabase({**settings, "table": "modes_a"})
    unnamed = SyncPostgresDatabase({**settings, "table": "modes_b", "prepared_statements": False})
    prepared.connect()
    unnamed.connect()
    try:
        a, b = prepared.pool_stats(), unnamed.pool_stats()
        assert a["key"] != b["key"] and a["stores"] == 1 and b["stores"] == 1
        assert a["key"].endswith("prepared_statements=true")
        assert b["key"].endswith("prepared_statements=false")
        assert "s3cret-pw" not in a["key"] + b["key"]
    finally:
        prepared.close()
        unnamed.close()
    keys = {
        PostgresPoolConfig.from_dict({**settings, "prepared_statements": flag}).to_hash_key()
        for flag in (True, False)
    }
    assert len(keys) == 2 and "s3cret-pw" not in repr(keys)
    assert PostgresPoolConfig.from_dict(settings).prepared_statements is True


@pytest.mark.parametrize("value", ["sometimes", 2, None])
def test_prepared_statements_refuses_what_is_not_boolean(pg: PostgresService, value: Any) -> None:
    database = SyncPostgresDatabase({**pg.config(), "table": table(), "prepared_statements": value})
    with pytest.raises(ConfigurationError, match="prepared_statements"):
        database.connect()
