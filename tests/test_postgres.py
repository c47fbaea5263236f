"""PostgreSQL specifics: the shared pool, configuration errors and streaming clean-up.

The conformance and differential suites cover the semantics (conftest's "postgres" entry);
these tests cover what only this backend has.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from dataknobs_data import (
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseOperationError,
    DuplicateRecordError,
    Query,
    Record,
    SerializationError,
    StreamConfig,
)
from dataknobs_data.backends.postgres import AsyncPostgresDatabase, SyncPostgresDatabase
from dataknobs_data.factory import async_database_factory, database_factory
from dataknobs_data.pooling import PostgresPoolConfig
from dataknobs_data.query import apply_query

from .services.postgres import PostgresService, service


@pytest.fixture
def pg() -> PostgresService:
    return service()


def config(pg: PostgresService, **extra: Any) -> dict[str, Any]:
    return {**pg.config(), "table": f"t_{uuid.uuid4().hex}", **extra}


@pytest.fixture
def db(pg: PostgresService) -> Iterator[SyncPostgresDatabase]:
    database = SyncPostgresDatabase(config(pg))
    database.connect()
    yield database
    database.close()


def test_aliases_build_the_postgres_backend(pg: PostgresService) -> None:
    for name in ("postgres", "postgresql", "pg"):
        database = database_factory.create(backend=name, **config(pg))
        assert isinstance(database, SyncPostgresDatabase)
        adb = async_database_factory.create(backend=name, **config(pg))
        assert isinstance(adb, AsyncPostgresDatabase)


def test_one_database_across_two_event_loops_shares_its_pool(pg: PostgresService) -> None:
    database = AsyncPostgresDatabase(config(pg, min_pool_size=1, max_pool_size=3))

    async def write() -> None:
        await database.connect()
        await database.create_batch([Record({"n": i}, id=f"r{i}") for i in range(10)])

    async def read() -> int:
        return await database.count(Query().filter("n", ">=", 5))

    asyncio.run(write())
    assert asyncio.run(read()) == 5
    assert database.pool_stats()["max_size"] == 3
    asyncio.run(database.close())


def test_fifty_concurrent_tasks_on_a_pool_of_five(pg: PostgresService) -> None:
    database = AsyncPostgresDatabase(config(pg, min_pool_size=1, max_pool_size=5))

    async def task(k: int) -> int:
        await database.create(Record({"k": k}, id=f"k{k}"))
        got = await database.read(f"k{k}")
        assert got is not None and got["k"] == k
        return await database.count(Query().filter("k", "<", 1000))

    async def main() -> list[int]:
        await database.connect()
        try:
            return await asyncio.wait_for(asyncio.gather(*(task(k) for k in range(50))), 60)
        finally:
            stats = database.pool_stats()
            assert stats["size"] <= 5 and stats["max_size"] == 5
            await database.close()

    counts = asyncio.run(main())
    assert len(counts) == 50 and max(counts) == 50


def test_pool_stats_shared_by_settings_without_the_password(pg: PostgresService) -> None:
    settings = {**pg.config(), "min_pool_size": 1, "max_pool_size": 7}
    a = SyncPostgresDatabase({**settings, "table": "shared_a"})
    b = SyncPostgresDatabase({**settings, "table": "shared_b"})
    a.connect()
    b.connect()
    try:
        stats = a.pool_stats()
        assert set(stats) == {
            "key",
            "max_size",
            "size",
            "idle",
            "in_use",
            "waiting",
            "waits",
            "errors",
            "stores",
        }
        assert stats["stores"] == 2 and stats["max_size"] == 7 and stats["in_use"] == 0
        assert f":{pg.port}/" in stats["key"]
        b.close()
        assert a.pool_stats()["stores"] == 1
    finally:
        a.close()
        b.close()


def test_pool_config_key_has_no_password() -> None:
    cfg = PostgresPoolConfig.from_dict(
        {"host": "h", "user": "u", "password": "s3cret", "max_pool_size": 9}
    )
    assert cfg.max_size == 9 and cfg.password == "s3cret"
    assert "s3cret" not in repr(cfg.to_hash_key())
    url = PostgresPoolConfig.from_dict({"connection_string": "postgresql://u:s3cret@h:1/d"})
    assert "s3cret" not in repr(url.to_hash_key()) and "u@h:1" in repr(url.to_hash_key())
    assert "s3cret" not in repr(url)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("table", "bad-name"),
        ("table", "x; DROP TABLE y"),
        ("schema_name", '"quoted"'),
        ("min_pool_size", 9),
        ("command_timeout", -1),
        ("ssl", "sometimes"),
        ("ssl", 1),
    ],
)
def test_bad_settings_are_configuration_errors(pg: PostgresService, key: str, value: Any) -> None:
    database = SyncPostgresDatabase(config(pg, **{key: value}))
    with pytest.raises(ConfigurationError, match=key):
        database.connect()


def test_wrong_port_is_a_connection_error_fast(pg: PostgresService) -> None:
    cfg = config(pg)
    cfg["port"] = 1
    database = SyncPostgresDatabase(cfg)
    start = time.monotonic()
    with pytest.raises(DatabaseConnectionError, match="postgres"):
        database.connect()
    assert time.monotonic() - start < 5


def test_connection_string_and_schema(pg: PostgresService) -> None:
    schema = f"s_{uuid.uuid4().hex[:12]}"
    database = SyncPostgresDatabase(
        {"connection_string": pg.dsn, "schema_name": schema, "table": "records"}
    )
    database.connect()
    try:
        database.create(Record({"v": 1}, id="one"))
        assert database.read("one") is not None
        assert database.pool_stats()["key"].startswith(f"postgresql://{pg.user}@")
    finally:
        database.close()


def test_missing_table_without_auto_create(pg: PostgresService) -> None:
    database = SyncPostgresDatabase(config(pg, auto_create_table=False))
    with pytest.raises(DatabaseOperationError, match="does not exist"):
        database.connect()


def test_create_batch_names_the_first_stored_collision(db: SyncPostgresDatabase) -> None:
    db.create_batch([Record({"v": 1}, id="b"), Record({"v": 1}, id="d")])
    batch = [Record({"v": 2}, id=i) for i in ("a", "d", "c", "b")]
    with pytest.raises(DuplicateRecordError, match="'d'"):
        db.create_batch(batch)
    assert [r.id for r in db.all()] == ["b", "d"]


@pytest.mark.parametrize("prepared", [True, False])
def test_a_failed_create_batch_stores_nothing_of_it_in_either_statement_mode(
    pg: PostgresService, prepared: bool
) -> None:
    # The COPY runs as its own statement with prepared statements and inside a transaction
    # without them: a collision at the end of a batch leaves none of its earlier rows.
    database = SyncPostgresDatabase(config(pg, prepared_statements=prepared))
    database.connect()
    try:
        database.create_batch([Record({"v": 0}, id="z")])
        batch = [Record({"v": i, "s": "x" * 500}, id=f"k{i}") for i in range(2000)]
        with pytest.raises(DuplicateRecordError, match="'z'"):
            database.create_batch([*batch, Record({"v": 1}, id="z")])
        assert database.count() == 1
        # The connection it failed on serves the next batches, which the cached COPY reuses.
        for start in (0, 1000):
            database.create_batch(batch[start : start + 1000])
        assert database.count() == 2001
        assert database.read("k1999") == batch[1999]
    finally:
        database.close()


def test_a_sorted_window_whose_top_candidates_fail_the_reference_reads_on(
    db: SyncPostgresDatabase,
) -> None:
    # A Decimal with a five-digit exponent is too odd for SQL to compare, so the predicate
    # leaves it undecided; the top candidates by n are all such rows, and all fail `x > 60`.
    # The server's LIMIT then falls short and the window must be read on past it.
    records = [
        Record({"n": i, "x": Decimal("-1E+99999") if i >= 150 else 100}, id=f"r{i:03d}")
        for i in range(300)
    ]
    db.create_batch(records)
    for offset in (0, 5):
        query = Query().filter("x", ">", 60).sort_by("n", "desc").limit(10).offset(offset)
        want = [r.id for r in apply_query(records, query)]
        assert want[0] == f"r{149 - offset:03d}"
        assert [r.id for r in db.search(query)] == want
    # Undecided rows that do match are kept from the first, limited read.
    query = Query().filter("x", "<", 60).sort_by("n", "desc").limit(10)
    assert [r.id for r in db.search(query)] == [f"r{i:03d}" for i in range(299, 289, -1)]


def test_integral_floats_and_big_ints_keep_their_type(db: SyncPostgresDatabase) -> None:
    values = {"f": 1e16, "g": -3e300, "h": 2.0, "i": 2**63 - 1, "tiny": 5e-324}
    db.create(Record(values, id="x"))
    got = db.read("x")
    assert got is not None
    for name, value in values.items():
        assert got[name] == value and type(got[name]) is type(value), name


def test_number_comparisons_agree_with_the_reference_on_every_stored_type(
    db: SyncPostgresDatabase,
) -> None:
    # A top-level number is decided by one SQL/JSON path test; every other stored type falls
    # through to the full translation. Field names a path cannot spell take only the latter.
    stored: list[Any] = [
        5,
        -5,
        0,
        2.5,
        1e16,
        -3e300,
        5e-324,
        2**63 - 1,
        True,
        False,
        None,
        "5",
        "x",
        [5],
        {"a": 5},
        Decimal("5.0"),
        Decimal("1e-30"),
        math.inf,
        -math.inf,
        math.nan,
    ]
    records = [Record({"v": v, 'q"\\k': v}, id=f"r{i}") for i, v in enumerate(stored)] + [
        Record({"other": 1}, id="missing")
    ]
    db.create_batch(records)
    for field in ("v", 'q"\\k'):
        for op in ("=", "!=", "<", "<=", ">", ">="):
            for x in (5, -5, 0, 2.5, 1e16, 5e-324, 2**63 - 1, True, False, -0.0):
                query = Query().filter(field, op, x)
                want = [r.id for r in apply_query(records, query)]
                assert [r.id for r in db.search(query)] == want, (field, op, x)
                assert db.count(query) == len(want), (field, op, x)


def test_unsorted_reads_keep_insertion_order_after_updates_move_rows(
    db: SyncPostgresDatabase,
) -> None:
    # An update writes a new row version at the end of the table; the server's scan then
    # meets it last, but storage order is the order of creation.
    db.create_batch([Record({"n": i, "tag": "t"}, id=f"r{i}") for i in range(6)])
    db.update("r0", Record({"n": 0, "tag": "t", "touched": True}))
    db.update("r3", Record({"n": 3, "tag": "t", "touched": True}))
    want = [f"r{i}" for i in range(6)]
    assert [r.id for r in db.search(Query())] == want
    assert [r.id for r in db.search(Query().filter("n", ">=", 0))] == want
    assert [r.id for r in db.search(Query().filter("n", ">=", 0).offset(2))] == want[2:]
    assert [r.id for r in db.search(Query().filter("n", "in", [0, 3, 5]))] == ["r0", "r3", "r5"]
    assert [r.id for r in db.stream_read(Query().filter("n", ">=", 0))] == want
    # Sorted without a limit, the search is found page by page in scan order and put in order
    # at the end: ties still fall in insertion order, offsets apply, and rows the reference
    # decides (a regex) are kept or dropped as it says.
    by_tag = Query().filter("tag", "=", "t").sort_by("tag")
    assert [r.id for r in db.search(by_tag)] == want
    assert [r.id for r in db.search(by_tag.copy().offset(4))] == want[4:]
    desc = Query().filter("n", "in", [0, 3, 5]).sort_by("n", "desc")
    assert [r.id for r in db.search(desc)] == ["r5", "r3", "r0"]
    odd = Query().filter("tag", "regex", "^t$").filter("n", "<", 4).sort_by("touched")
    assert [r.id for r in db.search(odd)] == ["r0", "r3", "r1", "r2"]


def test_stream_early_exit_returns_the_connection(db: SyncPostgresDatabase) -> None:
    db.create_batch([Record({"n": i}, id=f"r{i:05d}") for i in range(5000)])
    for seen, _record in enumerate(db.stream_read(config=StreamConfig(batch_size=100, prefetch=1))):
        if seen == 149:
            break
    deadline = time.monotonic() + 5
    while db.pool_stats()["in_use"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert db.pool_stats()["in_use"] == 0
    streamed = list(db.stream_read(Query().filter("n", ">=", 4990)))
    assert [r["n"] for r in streamed] == list(range(4990, 5000))


def gin_index(pg: PostgresService, table: str) -> str:
    """The GIN index definition on ``table`` ('' when there is none)."""
    return pg.psql(
        "SELECT indexdef FROM pg_indexes WHERE tablename = "
        f"'{table}' AND indexdef LIKE '%USING gin%'"
    ).strip()


def test_tables_get_a_gin_index_on_data(pg: PostgresService) -> None:
    cfg = config(pg)
    database = SyncPostgresDatabase(cfg)
    database.connect()
    assert "jsonb_path_ops" in gin_index(pg, cfg["table"])
    database.create_batch([Record({"n": i}, id=f"r{i}") for i in range(10)])
    database.close()
    # A table from before the index was part of the layout gets it on the next open.
    pg.psql(f'DROP INDEX "{cfg["table"]}_data"')
    again = SyncPostgresDatabase(cfg)
    again.connect()
    assert "jsonb_path_ops" in gin_index(pg, cfg["table"])
    assert again.count(Query().filter("n", "<", 5)) == 5
    again.close()


def test_a_stored_value_no_reader_accepts_is_an_error_naming_the_record(
    pg: PostgresService,
) -> None:
    # Written by another program: a tag whose text is not a date.
    cfg = config(pg)
    database = SyncPostgresDatabase(cfg)
    database.connect()
    database.create_batch([Record({"n": i}, id=f"r{i}") for i in range(3)])
    bad = """'{"d": {"$date": "nope"}}'"""
    pg.psql(f"""INSERT INTO "{cfg["table"]}" (id, data) VALUES ('bad', {bad})""")
    for read in (
        lambda: list(database.stream_read()),
        lambda: database.search(Query()),
        lambda: database.search(Query().sort_by("n")),
        lambda: database.read("bad"),
    ):
        with pytest.raises(
            SerializationError, match=r'record "bad" in table .*: data: invalid \$date "nope"'
        ):
            read()
    assert [r.id for r in database.stream_read(Query().filter("n", ">=", 0))] == ["r0", "r1", "r2"]
    database.close()


# -- TLS ----------------------------------------------------------------------------------


def tls_config(pg: PostgresService, host: str, **params: str) -> dict[str, Any]:
    """Config through a connection string with libpq-style TLS parameters and a unique
    application_name, so the server's pg_stat_ssl tells this pool's connections apart."""
    if pg.ca_file is None:
        if pg.owned and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("the test cluster has no TLS: openssl is missing (make services)")
        pytest.skip("the server's TLS certificate is not known (external DKDATA_PG_DSN)")
    app = f"tls_{uuid.uuid4().hex[:12]}"
    query = "&".join(f"{k}={v}" for k, v in {"application_name": app, **params}.items())
    dsn = f"postgresql://{pg.user}@{host}:{pg.port}/{pg.database}?{query}"
    return {"connection_string": dsn, "table": f"t_{uuid.uuid4().hex}", "_app": app}


def encrypted(pg: PostgresService, app: str) -> list[str]:
    """'t' or 'f' per server connection of the pool named ``app``."""
    out = pg.psql(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        f"WHERE a.application_name = '{app}'"
    )
    return out.split()


@pytest.mark.parametrize(
    ("mode", "host", "want"),
    [
        ("require", "127.0.0.1", "t"),
        ("prefer", "127.0.0.1", "t"),
        ("disable", "127.0.0.1", "f"),
        # The certificate names localhost, not the address: verify-ca does not look.
        ("verify-ca", "127.0.0.1", "t"),
        ("verify-full", "localhost", "t"),
    ],
)
def test_tls_modes_reach_the_server(pg: PostgresService, mode: str, host: str, want: str) -> None:
    cfg = tls_config(pg, host, sslmode=mode, sslrootcert=str(pg.ca_file))
    app = cfg.pop("_app")
    database = SyncPostgresDatabase(cfg)
    database.connect()
    database.create(Record({"secret": "x"}, id="a"))
    assert database.read("a") is not None
    states = encrypted(pg, app)
    assert states and set(states) == {want}
    database.close()


def test_ssl_setting_overrides_the_connection_string(pg: PostgresService) -> None:
    cfg = tls_config(pg, "127.0.0.1", sslmode="disable")
    app = cfg.pop("_app")
    database = SyncPostgresDatabase({**cfg, "ssl": True})
    database.connect()
    assert set(encrypted(pg, app)) == {"t"}
    assert "sslmode=require" in database.pool_stats()["key"]
    database.close()


@pytest.mark.parametrize(
    ("mode", "host", "rootcert", "why"),
    [
        # An address the certificate does not name.
        ("verify-full", "127.0.0.1", True, "(?i)name|certificate"),
        # A CA nobody trusts: the bundled roots do not include it.
        ("verify-ca", "127.0.0.1", False, "(?i)issuer|certificate"),
    ],
)
def test_tls_verification_failures_are_connection_errors(
    pg: PostgresService, mode: str, host: str, rootcert: bool, why: str
) -> None:
    params = {"sslmode": mode}
    if rootcert:
        params["sslrootcert"] = str(pg.ca_file)
    cfg = tls_config(pg, host, **params)
    cfg.pop("_app")
    database = SyncPostgresDatabase(cfg)
    with pytest.raises(DatabaseConnectionError, match=why):
        database.connect()


def test_unreadable_root_certificate_is_a_configuration_error(pg: PostgresService) -> None:
    cfg = tls_config(pg, "localhost", sslmode="verify-full", sslrootcert="/no/such/ca.pem")
    cfg.pop("_app")
    with pytest.raises(ConfigurationError, match="sslrootcert"):
        SyncPostgresDatabase(cfg).connect()


STREAM_DEADLOCK_S = 120


def test_streams_outnumbering_the_pool_all_finish(pg: PostgresService) -> None:
    # Opening a stream waits for a pooled connection; it must wait without blocking the event
    # loop, or the streams that hold the connections are never read and never let them go.
    async def main() -> list[int]:
        database = AsyncPostgresDatabase(config(pg, min_pool_size=1, max_pool_size=3))
        await database.create_batch([Record({"n": i}, id=f"r{i:03d}") for i in range(300)])
        small = StreamConfig(batch_size=10, prefetch=1)

        async def task(k: int) -> int:
            seen = 0
            async for _ in database.stream_read(None, small):
                seen += 1
                if k % 2 and seen == 15:
                    break  # abandoned mid-stream
                await asyncio.sleep(0)
            return seen

        try:
            return await asyncio.gather(*(task(k) for k in range(20)))
        finally:
            await database.close()

    # A blocked loop cannot time itself out: watch it from another thread.
    results: list[list[int]] = []
    runner = threading.Thread(target=lambda: results.append(asyncio.run(main())), daemon=True)
    runner.start()
    runner.join(STREAM_DEADLOCK_S)
    assert not runner.is_alive(), "the streams deadlocked: the event loop was blocked"
    assert results == [[15 if k % 2 else 300 for k in range(20)]]


def test_failed_table_creation_leaves_the_shared_pool_usable(pg: PostgresService) -> None:
    single = {"min_pool_size": 1, "max_pool_size": 1}
    # Holds the pool (and its one connection) that the failing open below shares.
    database = SyncPostgresDatabase(config(pg, **single))
    database.connect()
    # A view where the table should be: the DDL fails halfway through its transaction.
    view = f"v_{uuid.uuid4().hex}"
    pg.psql(f"CREATE VIEW {view} AS SELECT 1 AS x")
    with pytest.raises(DatabaseOperationError, match=view):
        SyncPostgresDatabase(config(pg, table=view, **single)).connect()
    database.create(Record({"n": 1}, id="a"))
    assert database.count() == 1
    database.close()


async def test_cancelled_sorted_searches_give_their_connections_back(pg: PostgresService) -> None:
    database = AsyncPostgresDatabase(config(pg, max_pool_size=2))
    await database.connect()
    await database.create_batch([Record({"n": i}, id=f"r{i:05d}") for i in range(20_000)])
    everything = Query().sort_by("n", "desc")
    for delay in (0.0, 0.005, 0.01, 0.02, 0.05):
        task = asyncio.ensure_future(database.search(everything.copy()))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    found = await database.search(Query().filter("n", "<", 3).sort_by("n", "desc"))
    assert [r.id for r in found] == ["r00002", "r00001", "r00000"]
    deadline = time.monotonic() + 5
    while database.pool_stats()["in_use"] and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert database.pool_stats()["in_use"] == 0
    await database.close()


def test_field_names_with_quotes_and_backslashes_under_either_string_setting(
    pg: PostgresService,
) -> None:
    # Field paths are written into the SQL as literals; with standard_conforming_strings off a
    # backslash in a plain '...' literal would end it early.
    name = f"scs_off_{uuid.uuid4().hex[:8]}"
    pg.psql(f"CREATE DATABASE {name}")
    pg.psql(f"ALTER DATABASE {name} SET standard_conforming_strings = off")
    try:
        for database in (pg.database, name):
            cfg = {**config(pg), "database": database}
            db = SyncPostgresDatabase(cfg)
            db.connect()
            try:
                odd = "a\\'b"  # a backslash then a quote
                db.create_batch([Record({odd: i, "n": {odd: -i}}, id=f"r{i}") for i in range(5)])
                assert db.count(Query().filter(odd, ">=", 3)) == 2
                found = db.search(Query().filter(f"n.{odd}", "<", -2).sort_by(odd, "desc").limit(5))
                assert [r.id for r in found] == ["r4", "r3"]
                assert db.search(Query().filter(odd + "' OR '1'='1", "=", 1)) == []
            finally:
                db.close()
    finally:
        pg.psql(f"DROP DATABASE {name} WITH (FORCE)")


def test_connection_string_keyword_values_may_be_quoted(pg: PostgresService) -> None:
    cs = (
        f"host={pg.host} port = {pg.port} user='{pg.user}' dbname = '{pg.database}' "
        "application_name='with spaces' sslmode=prefer"
    )
    db = SyncPostgresDatabase({"connection_string": cs, "table": f"t_{uuid.uuid4().hex}"})
    db.connect()
    try:
        db.create(Record({"n": 1}, id="x"))
        assert db.count() == 1
    finally:
        db.close()
