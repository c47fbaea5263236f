"""The in-memory backend: records live in a Rust index; queries run in Rust."""

from __future__ import annotations

from typing import Any, ClassVar

from .. import _native
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


class AsyncMemoryDatabase(_MemoryStore, NativeAsyncDatabase):
    """Records in process memory (kept through close; gone with the object), async face."""
