"""The SQLite backend, the embedded default for persistence.

Table ``id, data, metadata, created_at, updated_at`` with data and metadata as tagged JSON text
(docs/internals.md §3). All I/O runs in Rust (rusqlite); the async face runs it on the runtime's
blocking pool, so the event loop is never blocked.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .. import _native
from .config import AsyncSQLiteDatabaseConfig, SyncSQLiteDatabaseConfig
from .native import NativeAsyncDatabase, NativeSyncDatabase


class _SqliteStore:
    BACKEND_NAME: ClassVar[str] = "sqlite"
    CONFIG_KEYS: ClassVar[frozenset[str] | None] = frozenset(
        {"path", "table", "timeout", "journal_mode", "synchronous", "auto_create_table"}
    )
    config: dict[str, Any]

    def _open_store(self) -> Any:
        cfg = self.config
        return _native.SqliteStore(
            str(cfg.get("path", ":memory:")),
            str(cfg.get("table", "records")),
            float(cfg.get("timeout", 5.0)),
            cfg.get("journal_mode"),
            cfg.get("synchronous"),
            bool(cfg.get("auto_create_table", True)),
        )


class SyncSQLiteDatabase(_SqliteStore, NativeSyncDatabase):
    """Records in a SQLite database file (``path``, default ``:memory:``)."""

    CONFIG_CLS: ClassVar[type | None] = SyncSQLiteDatabaseConfig


class AsyncSQLiteDatabase(_SqliteStore, NativeAsyncDatabase):
    """Records in a SQLite database file, async face (also ``backends.sqlite_async``)."""

    CONFIG_CLS: ClassVar[type | None] = AsyncSQLiteDatabaseConfig
