"""The PostgreSQL backend.

Table ``id VARCHAR(255) PRIMARY KEY, data JSONB, metadata JSONB, created_at, updated_at`` plus a
``seq`` identity column that keeps storage order. Connections come from a pool in the Rust core
(tokio-postgres + deadpool), shared by every database with the same connection settings and
usable from any thread or event loop; bulk writes are binary COPY, encoded in Rust with the GIL
released. TLS (rustls) follows libpq's sslmode names: ``prefer`` (the default) and ``require``
encrypt without checking the certificate, ``verify-ca`` and ``verify-full`` check it against
``sslrootcert`` (connection string) or ``PGSSLROOTCERT``, else the bundled Mozilla roots.

``prepared_statements`` (default True) keeps each statement prepared on its connection. Set it
to False behind PgBouncer in ``pool_mode = transaction`` (before 1.21, or without
``max_prepared_statements``: such a PgBouncer gives each transaction any server connection, where
a statement prepared in another one is missing). Then every statement on its own runs unnamed
and a statement prepared inside a transaction (a scan, a COPY) is closed before it ends. It is
what ``statement_cache_size=0`` is to asyncpg. Stores of the two modes never share a pool.
PgBouncer refuses the startup parameter that carries ``command_timeout`` (``options``) unless its
``ignore_startup_parameters`` lists it, and then the timeout is not applied: set
``statement_timeout`` on the role or database instead.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from .. import _native
from ..database import AnyQuery
from ..exceptions import ConfigurationError
from ..pooling import PostgresPoolConfig
from ..query_logic import to_spec
from ..records import Record
from .config import PostgresDatabaseConfig
from .native import NativeAsyncDatabase, NativeSyncDatabase, Row, records_from_rows

#: libpq's sslmode names, which ``ssl`` takes (as asyncpg does) besides True and False.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _ssl_mode(value: Any) -> str | None:
    """The sslmode for the ``ssl`` setting: None leaves it to the connection string's
    ``sslmode``, then ``PGSSLMODE``, then ``prefer``; True is ``require``; False ``disable``."""
    if value is None:
        return None
    if value is True or value is False:
        return "require" if value else "disable"
    if isinstance(value, str) and value.lower() in SSL_MODES:
        return value.lower()
    raise ConfigurationError(
        "ssl",
        f"expected True, False or an sslmode name ({', '.join(SSL_MODES)}), got {value!r}; "
        "name a CA file with sslrootcert= in the connection string or PGSSLROOTCERT",
    )


class _PostgresStore:
    BACKEND_NAME: ClassVar[str] = "postgres"
    CONFIG_KEYS: ClassVar[frozenset[str] | None] = frozenset(
        {
            "host",
            "port",
            "database",
            "user",
            "password",
            "connection_string",
            "table",
            "schema_name",
            "min_pool_size",
            "max_pool_size",
            "command_timeout",
            "ssl",
            "auto_create_table",
            "prepared_statements",
        }
    )
    CONFIG_CLS: ClassVar[type | None] = PostgresDatabaseConfig
    config: dict[str, Any]
    _store: Any

    def _open_store(self) -> Any:
        cfg = self.config
        pool = PostgresPoolConfig.from_dict(cfg)
        timeout = cfg.get("command_timeout")
        return _native.PostgresStore(
            host=pool.host,
            port=pool.port,
            database=pool.database,
            user=pool.user,
            password=pool.password,
            connection_string=pool.connection_string,
            table=str(cfg.get("table", "records")),
            schema_name=str(cfg.get("schema_name", "public")),
            min_pool_size=pool.min_size,
            max_pool_size=pool.max_size,
            command_timeout=None if timeout is None else float(timeout),
            ssl=_ssl_mode(cfg.get("ssl")),
            auto_create_table=bool(cfg.get("auto_create_table", True)),
            prepared_statements=pool.prepared_statements,
        )

    def pool_stats(self) -> dict[str, Any]:
        """The shared pool's settings key (no password), size, idle, in use, waits and errors."""
        stats: dict[str, Any] = self._ensure_store().pool_stats()  # type: ignore[attr-defined]
        return stats


def _found_as_it_goes(spec: dict[str, Any] | None) -> bool:
    """Whether a search is one ``search_paged`` serves: sorted, without a limit (so every match
    comes back anyway) and whole records."""
    return bool(spec and spec.get("sort") and spec.get("limit") is None and not spec.get("fields"))


class SyncPostgresDatabase(_PostgresStore, NativeSyncDatabase):
    """Records in a PostgreSQL table."""

    def search(self, query: AnyQuery) -> list[Record]:
        """Matching records, shaped by the query."""
        spec = to_spec(query)
        if not _found_as_it_goes(spec):
            return records_from_rows(self._call("search", spec))
        found = self._call("search_paged", spec)
        rows: list[Row] = []
        while (page := found.pages.next_page()) is not None:
            rows.extend(page)
        return records_from_rows([rows[i] for i in found.order()])


class AsyncPostgresDatabase(_PostgresStore, NativeAsyncDatabase):
    """Records in a PostgreSQL table, async face: each call awaits the Rust future directly."""

    async def search(self, query: AnyQuery) -> list[Record]:
        """Matching records, shaped by the query. A sorted search without a limit makes its
        records from each page of matches while the server still scans for the next."""
        spec = to_spec(query)
        if not _found_as_it_goes(spec):
            return records_from_rows(await self._call("search", spec))
        found = await self._call("search_paged", spec)
        rows: list[Row] = []
        while (page := await found.pages.next_page_async()) is not None:
            rows.extend(page.take())
        return records_from_rows([rows[i] for i in await found.order_async()])

    async def connect(self) -> None:
        """Open the pool and the table off the event loop (also done on first use)."""
        self._closed = False
        if self._store is None:
            store = await asyncio.to_thread(self._open_store)
            if self._store is None:
                self._store = store
            else:
                # Another task connected meanwhile; keep its store.
                store.close()
