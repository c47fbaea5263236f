"""The in-memory backend: records live in a Rust index; queries run in Rust."""

from __future__ import annotations

from typing import Any, ClassVar

from .. import _native
from .native import NativeAsyncDatabase, NativeSyncDatabase


class _MemoryStore:
    BACKEND_NAME: ClassVar[str] = "memory"
    CONFIG_KEYS: ClassVar[frozenset[str] | None] = frozenset()
    # Every memory operation is a short in-process computation: awaiting a runtime hop would
    # cost more than the work itself.
    ASYNC_INLINE: ClassVar[bool] = True

    def _open_store(self) -> Any:
        return _native.MemoryStore()


class SyncMemoryDatabase(_MemoryStore, NativeSyncDatabase):
    """Records in process memory (lost on close)."""


class AsyncMemoryDatabase(_MemoryStore, NativeAsyncDatabase):
    """Records in process memory (lost on close), async face."""
