"""PostgreSQL under faults: killed connections, a restarted server, timeouts and a crowd.

After each fault the test checks what was stored, and that the same database object goes on
working (the pool drops dead connections and opens new ones).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dataknobs_data import (
    DatabaseConnectionError,
    DatabaseOperationError,
    Query,
    Record,
)
from dataknobs_data.backends.postgres import AsyncPostgresDatabase, SyncPostgresDatabase

from .services.postgres import PostgresService, service


@pytest.fixture
def pg() -> PostgresService:
    return service()


def config(pg: PostgresService, **extra: Any) -> dict[str, Any]:
    return {**pg.config(), "table": f"f_{uuid.uuid4().hex}", **extra}


@pytest.fixture
def db(pg: PostgresService) -> Iterator[SyncPostgresDatabase]:
    database = SyncPostgresDatabase(config(pg, min_pool_size=1, max_pool_size=3))
    database.connect()
    yield database
    database.close()


def test_connection_killed_mid_copy_writes_nothing_and_the_pool_recovers(
    pg: PostgresService, db: SyncPostgresDatabase
) -> None:
    table = db.config["table"]
    records = [Record({"n": i, "pad": "x" * 200}, id=f"r{i:06d}") for i in range(50_000)]
    outcome: dict[str, BaseException | None] = {}

    def load() -> None:
        try:
            db.create_batch(records)
            outcome["error"] = None
        except BaseException as exc:
            outcome["error"] = exc

    # A lock held elsewhere parks the COPY inside the server, so the kill always lands mid-COPY
    # however fast the machine is.
    holder = pg.psql_background(
        f'BEGIN; LOCK TABLE "public"."{table}" IN ACCESS EXCLUSIVE MODE; '
        "SELECT pg_sleep(30); COMMIT;"
    )
    loader = threading.Thread(target=load)
    try:
        wait_until(
            pg,
            "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' "
            f'AND relation = to_regclass(\'"public"."{table}"\') AND granted',
        )
        loader.start()
        killed = wait_until(
            pg,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE query LIKE 'COPY \"public\".\"{table}\"%' AND wait_event_type = 'Lock'",
        )
        assert killed != "0", "the COPY never started"
    finally:
        pg.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()"
        )
        holder.wait(30)
        if loader.ident is not None:  # started
            loader.join(60)
    assert isinstance(outcome["error"], DatabaseConnectionError), outcome
    assert db.count() == 0, "a failed batch must leave nothing behind"
    db.create_batch(records[:10])
    assert db.count() == 10


def wait_until(pg: PostgresService, sql: str, seconds: float = 20) -> str:
    """Run ``sql`` until it returns something other than "0" (or time runs out)."""
    deadline = time.monotonic() + seconds
    answer = pg.psql(sql)
    while answer == "0" and time.monotonic() < deadline:
        time.sleep(0.02)
        answer = pg.psql(sql)
    return answer


def test_server_restart_while_idle_next_call_succeeds(
    pg: PostgresService, db: SyncPostgresDatabase
) -> None:
    if not pg.owned:
        pytest.skip("DKDATA_PG_DSN server: not ours to restart")
    db.create_batch([Record({"n": i}, id=f"r{i}") for i in range(5)])
    pg.restart()
    assert db.count() == 5
    assert db.read("r3") is not None
    db.upsert(Record({"n": 9}, id="r9"))
    assert [r.id for r in db.all()] == ["r0", "r1", "r2", "r3", "r4", "r9"]


def test_statement_timeout_is_a_typed_error(pg: PostgresService) -> None:
    database = SyncPostgresDatabase(config(pg, command_timeout=0.3, min_pool_size=1))
    database.connect()
    try:
        database.create(Record({"n": 1}, id="a"))
        table = database.config["table"]
        holder = pg.psql_background(
            f'BEGIN; LOCK TABLE "public"."{table}" IN ACCESS EXCLUSIVE MODE; '
            "SELECT pg_sleep(2); COMMIT;"
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                held = pg.psql(
                    "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' "
                    f'AND relation = to_regclass(\'"public"."{table}"\') AND granted'
                )
                if held != "0":
                    break
                time.sleep(0.02)
            # Without the timeout the count would wait for the lock and then succeed.
            with pytest.raises(DatabaseOperationError, match="timeout"):
                database.count(Query().filter("n", "=", 1))
        finally:
            holder.wait(30)
        assert database.count() == 1
    finally:
        database.close()


def test_two_hundred_tasks_on_a_pool_of_five(pg: PostgresService) -> None:
    database = AsyncPostgresDatabase(config(pg, min_pool_size=1, max_pool_size=5))

    async def task(k: int) -> bool:
        await database.upsert(Record({"k": k}, id=f"k{k}"))
        await database.count(Query().filter("k", ">=", 0))
        return await database.exists(f"k{k}")

    async def main() -> list[bool]:
        await database.connect()
        try:
            return await asyncio.wait_for(asyncio.gather(*(task(k) for k in range(200))), 120)
        finally:
            assert database.pool_stats()["size"] <= 5
            await database.close()

    assert all(asyncio.run(main()))


def test_idle_connections_killed_next_calls_succeed(
    pg: PostgresService, db: SyncPostgresDatabase
) -> None:
    db.create_batch([Record({"n": i}, id=f"r{i}") for i in range(3)])
    for _ in range(3):
        pg.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'dataknobs-data' AND pid <> pg_backend_pid()"
        )
        # Right away: the pool may still hold the dead connections.
        assert db.count(Query().filter("n", ">=", 1)) == 2
        assert db.read("r0") is not None
        db.upsert(Record({"n": 5}, id="r2"))
    assert [r["n"] for r in db.all()] == [0, 1, 5]


def test_cancelled_task_cancels_the_server_query(pg: PostgresService) -> None:
    database = AsyncPostgresDatabase(config(pg, min_pool_size=1, max_pool_size=2))
    table = database.config["table"]

    def waiting() -> int:
        return int(
            pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                f"'dataknobs-data' AND state = 'active' AND query LIKE '%\"{table}\"%'"
            )
        )

    async def main() -> None:
        await database.connect()
        await database.create(Record({"n": 1}, id="a"))
        holder = pg.psql_background(
            f'BEGIN; LOCK TABLE "public"."{table}" IN ACCESS EXCLUSIVE MODE; '
            "SELECT pg_sleep(3); COMMIT;"
        )
        try:
            await asyncio.sleep(0.3)
            task = asyncio.ensure_future(database.count(Query().filter("n", "=", 1)))
            deadline = time.monotonic() + 5
            while waiting() == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert waiting() == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            deadline = time.monotonic() + 2
            while waiting() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert waiting() == 0, "the server query outlived its task"
        finally:
            holder.wait(30)
        assert await database.count() == 1
        await database.close()

    asyncio.run(main())


def test_connection_killed_mid_stream_raises_instead_of_ending(
    pg: PostgresService, db: SyncPostgresDatabase
) -> None:
    from dataknobs_data import StreamConfig

    table = db.config["table"]
    db.create_batch([Record({"n": i, "pad": "x" * 100}, id=f"r{i:05d}") for i in range(20_000)])
    seen = 0
    with pytest.raises((DatabaseConnectionError, DatabaseOperationError)):
        for _ in db.stream_read(config=StreamConfig(batch_size=100, prefetch=1)):
            seen += 1
            if seen == 150:
                killed = pg.psql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    f"WHERE query LIKE '%\"{table}\"%' AND pid <> pg_backend_pid()"
                )
                assert killed != "0", "no server process was streaming"
    assert 150 <= seen < 20_000, "the stream neither stopped quietly nor ran to the end"
    assert db.count() == 20_000, "the same database goes on working"


def test_two_hundred_tasks_mixing_every_verb_on_a_pool_of_five(pg: PostgresService) -> None:
    database = AsyncPostgresDatabase(config(pg, min_pool_size=1, max_pool_size=5))

    async def task(k: int) -> None:
        mine = f"k{k}"
        await database.create(Record({"k": k, "v": 0}, id=mine))
        assert (await database.read(mine)) is not None
        assert await database.update(mine, Record({"k": k, "v": 1}))
        await database.upsert(Record({"k": k, "v": 2}, id=mine))
        await database.create_batch([Record({"k": k, "v": j}, id=f"{mine}-{j}") for j in range(3)])
        got = await database.read_batch([f"{mine}-{j}" for j in range(3)])
        assert [r["v"] for r in got if r is not None] == [0, 1, 2]
        assert await database.update_batch([(f"{mine}-0", Record({"k": k, "v": 9}))]) == [True]
        assert await database.delete_batch([f"{mine}-1", f"{mine}-missing"]) == [True, False]
        assert await database.count(Query().filter("k", "=", k)) == 3
        found = await database.search(Query().filter("k", "=", k).sort_by("v"))
        assert [r.id for r in found] == [mine, f"{mine}-2", f"{mine}-0"]
        streamed = [r.id async for r in database.stream_read(Query().filter("k", "=", k))]
        assert sorted(streamed) == sorted([mine, f"{mine}-0", f"{mine}-2"])
        assert await database.exists(mine)
        if k % 2:
            assert await database.delete(mine)

    async def main() -> None:
        await database.connect()
        try:
            await asyncio.wait_for(asyncio.gather(*(task(k) for k in range(200))), 180)
            assert database.pool_stats()["size"] <= 5
            # What is stored is exactly what the tasks did.
            assert await database.count() == 200 * 3 - 100
            assert await database.count(Query().filter("v", "=", 2)) == 200 + 100
        finally:
            await database.close()

    asyncio.run(main())
