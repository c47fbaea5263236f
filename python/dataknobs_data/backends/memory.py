"""The in-memory backend: records live in a Rust index; queries run in Rust."""

from __future__ import annotations

from typing import Any, ClassVar

from .. import _native
from ..database import AnyQuery
from ..observability import runs_inline
from ..query_logic import to_spec
from ..records import Record
from .config import MemoryDatabaseConfig
from .native import NativeAsyncDatabase, NativeSyncDatabase


class _MemoryStore:
    BACKEND_NAME: ClassVar[str] = "memory"
    CONFIG_KEYS: ClassVar[frozenset[str] | None] = frozenset()
    CONFIG_CLS: ClassVar[type | None] = MemoryDatabaseConfig
    # Every memory operation is a short in-process computation: awaiting a runtime hop would
    # cost more than the work itself.
    ASYNC_INLINE: ClassVar[bool] = True

    def _open_store(self) -> Any:
        return _native.MemoryStore()

    def _shut(self) -> None:
        # As in 0.11.0, closing a memory database keeps its records and leaves it usable
        # (``with db:`` again sees the same records); ``clear()`` is what frees them.
        pass


class SyncMemoryDatabase(_MemoryStore, NativeSyncDatabase):
    """Records in process memory (kept through close; gone with the object)."""


def _read_now(db: AsyncMemoryDatabase, id: str) -> Record | None:
    store = db._store
    if store is None:
        store = db._ensure_store()
    record: Record | None = _native.record_or_none(Record, store.read_batch([id])[0])
    return record


def _exists_now(db: AsyncMemoryDatabase, id: str) -> bool:
    store = db._store
    if store is None:
        store = db._ensure_store()
    return bool(store.exists_batch([id])[0])


def _count_now(db: AsyncMemoryDatabase, query: AnyQuery | None = None) -> int:
    store = db._store
    if store is None:
        store = db._ensure_store()
    if query is None:
        # Everything is the store's length: no spec to read, no query to compile.
        return len(store)
    return int(store.count(to_spec(query)))


class AsyncMemoryDatabase(_MemoryStore, NativeAsyncDatabase):
    """Records in process memory (kept through close; gone with the object), async face."""

    # The single-record calls are a few µs of work, so a second coroutine around them costs
    # a tenth of the call: their wrappers run these sync bodies directly (``runs_inline``).
    LEAF_VERBS: ClassVar[frozenset[str]] = frozenset({"read", "exists", "count"})

    @runs_inline(_read_now)
    async def read(self, id: str) -> Record | None:
        """The record under ``id`` or None."""
        return _read_now(self, id)

    @runs_inline(_exists_now)
    async def exists(self, id: str) -> bool:
        """Whether ``id`` is stored."""
        return _exists_now(self, id)

    @runs_inline(_count_now)
    async def count(self, query: AnyQuery | None = None) -> int:
        """Number of matching records (no record is built)."""
        return _count_now(self, query)
