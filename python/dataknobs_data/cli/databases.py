"""Opening the database a backend URL names, for writing or for reading only.

Reading never writes: a read verb (count, query, validate, the source of copy) opened on a
URL whose file or table is not there reports that, naming what does exist, instead of
creating an empty file or table and printing 0.
"""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dataknobs_data.exceptions import DatabaseOperationError
from dataknobs_data.urls import parse_url, redact_url

from ._common import UsageError

if TYPE_CHECKING:
    from dataknobs_data.database import SyncDatabase

_LOCAL_BACKENDS = frozenset({"file", "sqlite", "duckdb"})
#: Backends whose store creates its table on open unless ``auto_create_table`` is False.
_TABLE_BACKENDS = frozenset({"sqlite", "postgres", "duckdb"})


def _sqlite_tables(path: str) -> list[str] | None:
    """The tables of the SQLite file at ``path``, read through a read-only connection;
    None when the file cannot be read that way (the store then decides)."""
    uri = "file:" + quote(os.path.abspath(path)) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            rows = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise UsageError(f"{path} is not a SQLite database") from None
        return None
    return [str(name) for (name,) in rows]


def _check_sqlite_table(path: str, table: str) -> None:
    tables = _sqlite_tables(path)
    if tables is None or table in tables:
        return
    if tables:
        shown = ", ".join(f'"{t}"' for t in tables)
        hint = f"; it has {shown} (name one with ?table={tables[0]})"
    else:
        hint = "; it has no tables"
    raise UsageError(f'table "{table}" does not exist in {path}{hint}')


def _for_reading(backend: str, config: dict[str, Any]) -> dict[str, Any]:
    """Check that what ``config`` names exists, and open it without creating anything."""
    if backend in _LOCAL_BACKENDS:
        path = str(config.get("path", ""))
        if path != ":memory:" and not os.path.exists(path):
            raise UsageError(f"no such file: {path}")
        if backend == "sqlite" and path != ":memory:":
            _check_sqlite_table(path, str(config.get("table", "records")))
    if backend in _TABLE_BACKENDS:
        # The store refuses a missing table instead of creating it.
        config = {**config, "auto_create_table": False}
    if backend == "elasticsearch":
        # The store refuses a missing index instead of creating it.
        config = {**config, "create_index": False}
    return config


def open_database(url: str, *, read_only: bool = False) -> SyncDatabase:
    """Open and connect the database a backend URL names.

    With ``read_only`` (what every read verb uses), nothing is created: a local file that
    is not there, or a table that is not in the database, is a :class:`UsageError` naming
    it (and, for SQLite, the tables that are there).
    """
    from dataknobs_data.factory import DatabaseFactory

    backend, config = parse_url(url)
    if read_only:
        config = _for_reading(backend, config)
    db = DatabaseFactory().create(backend=backend, **config)
    try:
        db.connect()
    except DatabaseOperationError as exc:
        db.close()
        if read_only and backend in _TABLE_BACKENDS and "does not exist" in exc.message:
            # The store's words name its auto_create_table setting, which the user never set.
            table = config.get("table", "records")
            raise UsageError(
                f'table "{table}" does not exist in {redact_url(url)}; read commands never '
                "create tables (name an existing one with ?table=NAME)"
            ) from None
        raise
    except BaseException:
        db.close()
        raise
    return db
