"""Shared fixtures: every backend of the conformance suite, sync and async.

A backend joins the suite by adding one entry to BACKENDS (name -> factory of (backend, config)
for a fresh, empty database in a temp folder).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dataknobs_data import AsyncDatabase, SyncDatabase
from dataknobs_data.factory import async_database_factory, database_factory

BackendSpec = tuple[str, dict[str, Any]]


def _file(name: str) -> Callable[[Path], BackendSpec]:
    return lambda tmp: ("file", {"path": str(tmp / name)})


def _postgres(tmp: Path) -> BackendSpec:
    # A fresh table on the session's server; the cluster (and so the table) goes at the end.
    from .services.postgres import service

    return "postgres", {**service().config(), "table": f"t_{uuid.uuid4().hex}"}


def _postgres_pgbouncer(tmp: Path) -> BackendSpec:
    # The same server through PgBouncer in transaction pooling, which needs the mode without
    # named prepared statements.
    from .services.pgbouncer import service

    return "postgres", {
        **service().config(),
        "table": f"t_{uuid.uuid4().hex}",
        "prepared_statements": False,
    }


def _s3(tmp: Path) -> BackendSpec:
    # A fresh prefix in the session's bucket on the session's SeaweedFS.
    from .services.seaweedfs import service

    return "s3", service().config()


def _elasticsearch(tmp: Path) -> BackendSpec:
    # A fresh index on the session's OpenSearch node.
    from .services.opensearch import service

    return "elasticsearch", service().config()


BACKENDS: dict[str, Callable[[Path], BackendSpec]] = {
    "memory": lambda tmp: ("memory", {}),
    "file-json": _file("db.json"),
    "file-jsonl": _file("db.jsonl"),
    "file-csv": _file("db.csv"),
    "file-tsv": _file("db.tsv"),
    "file-parquet": _file("db.parquet"),
    "file-jsonl-gzip": _file("db.jsonl.gz"),
    "sqlite": lambda tmp: ("sqlite", {"path": str(tmp / "db.sqlite")}),
    "duckdb": lambda tmp: ("duckdb", {"path": str(tmp / "db.duckdb")}),
    "postgres": _postgres,
    "postgres-pgbouncer": _postgres_pgbouncer,
    "s3": _s3,
    "elasticsearch": _elasticsearch,
}

#: Backends whose data outlives the database object (reopened from the same config).
PERSISTENT = {name for name in BACKENDS if name != "memory"}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the servers the session started."""
    from .services import opensearch, pgbouncer, postgres, seaweedfs

    # PgBouncer first: it holds connections to the server.
    pgbouncer.stop()
    postgres.stop()
    seaweedfs.stop()
    opensearch.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The OpenSearch node's start time, in the run's log (its stderr line is captured)."""
    from .services import opensearch

    for seconds in opensearch.START_TIMES:
        terminalreporter.write_line(f"opensearch: green in {seconds:.1f} s")


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> BackendSpec:
    """(backend name, config) of a fresh empty database."""
    spec = BACKENDS[request.param](tmp_path)
    return spec[0], dict(spec[1])


@pytest.fixture
def backend_id(backend: BackendSpec, request: pytest.FixtureRequest) -> str:
    """The suite's name for the current backend (e.g. ``file-csv``)."""
    return str(request.node.callspec.params["backend"])


@pytest.fixture
def db(backend: BackendSpec) -> Iterator[SyncDatabase]:
    """A connected sync database of the current backend."""
    name, config = backend
    database = database_factory.create(backend=name, **config)
    database.connect()
    yield database
    database.close()


@pytest.fixture
async def adb(backend: BackendSpec) -> AsyncIterator[AsyncDatabase]:
    """A connected async database of the current backend."""
    name, config = backend
    database = async_database_factory.create(backend=name, **config)
    await database.connect()
    yield database
    await database.close()
