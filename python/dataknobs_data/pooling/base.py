"""What every pool configuration offers, and a manager for pools you create yourself.

Our backends' pools live in the Rust core (keyed by settings, shared across event loops).
:class:`ConnectionPoolManager` is for pools that user code makes (an asyncpg pool, an HTTP
client): one per configuration and event loop, reference-counted, validated on reuse.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..exceptions import ConfigurationError

__all__ = ["BasePoolConfig", "ConnectionPoolManager", "PoolProtocol", "PoolType"]

logger = logging.getLogger(__name__)


def config_int(cfg: Mapping[str, Any], key: str, default: int | None) -> int | None:
    """``cfg[key]`` as an int (ConfigurationError naming the key when it is not one)."""
    value = cfg.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(key, f"expected an integer, got {value!r}") from exc
    return int(value)


class BasePoolConfig(ABC):
    """A pool's settings: how to connect, and the key that identifies the pool."""

    @abstractmethod
    def to_connection_string(self) -> str:
        """The settings as one connection string (with any secret it needs)."""

    @abstractmethod
    def to_hash_key(self) -> tuple[Any, ...]:
        """The pool's identity: the settings that make two pools different (never a secret)."""


class PoolProtocol(Protocol):
    """What the manager needs of a pool: ``acquire`` and ``close``."""

    async def acquire(self) -> Any: ...

    async def close(self) -> Any: ...


PoolType = TypeVar("PoolType")


@dataclass
class _Held:
    pool: Any
    close: Callable[[Any], Awaitable[None]] | None
    holders: int


class ConnectionPoolManager(Generic[PoolType]):
    """One pool per (configuration, event loop), shared by whoever asks for the same one.

    ``get_pool`` hands out the pool for a configuration (creating it on first request and
    validating it on later ones, recreating it when validation fails); ``release_pool`` gives
    one hand-out back, and the pool is closed when none is left.
    """

    def __init__(self) -> None:
        self._pools: dict[tuple[int, int], _Held] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    @staticmethod
    def _key(config: BasePoolConfig) -> tuple[int, int]:
        return hash(config.to_hash_key()), id(asyncio.get_running_loop())

    def _lock(self, loop_id: int) -> asyncio.Lock:
        lock = self._locks.get(loop_id)
        if lock is None:
            lock = self._locks[loop_id] = asyncio.Lock()
        return lock

    async def get_pool(
        self,
        config: BasePoolConfig,
        create_pool_func: Callable[[BasePoolConfig], Awaitable[PoolType]],
        validate_pool_func: Callable[[PoolType], Awaitable[None]] | None = None,
        close_pool_func: Callable[[PoolType], Awaitable[None]] | None = None,
    ) -> PoolType:
        """The pool for ``config`` on the running loop (one more hand-out of it)."""
        key = self._key(config)
        async with self._lock(key[1]):
            held = self._pools.get(key)
            carried = 0
            if held is not None:
                try:
                    if validate_pool_func is not None:
                        await validate_pool_func(held.pool)
                except Exception as exc:
                    logger.warning("Pool %s failed validation (%s); recreating it", key, exc)
                    carried = held.holders
                    await self._close(key)
                else:
                    held.holders += 1
                    pool: PoolType = held.pool
                    return pool
            created = await create_pool_func(config)
            self._pools[key] = _Held(created, close_pool_func, carried + 1)
            return created

    async def release_pool(self, config: BasePoolConfig) -> None:
        """Give one hand-out back; the last one closes the pool."""
        key = self._key(config)
        async with self._lock(key[1]):
            held = self._pools.get(key)
            if held is None:
                return
            held.holders -= 1
            if held.holders <= 0:
                await self._close(key)

    async def remove_pool(self, config: BasePoolConfig) -> bool:
        """Close the pool for ``config`` on this loop whoever holds it; False if none."""
        key = self._key(config)
        if key not in self._pools:
            return False
        await self._close(key)
        return True

    async def close_all(self) -> None:
        """Close every pool this manager holds."""
        for key in list(self._pools):
            await self._close(key)
        self._locks.clear()

    def get_pool_count(self) -> int:
        """How many pools are open."""
        return len(self._pools)

    def get_pool_info(self) -> dict[str, Any]:
        """For each open pool: its loop, configuration hash and holder count."""
        return {
            f"config_{config_hash}_loop_{loop_id}": {
                "loop_id": loop_id,
                "config_hash": config_hash,
                "holders": held.holders,
                "pool": str(held.pool),
            }
            for (config_hash, loop_id), held in self._pools.items()
        }

    async def _close(self, key: tuple[int, int]) -> None:
        held = self._pools.pop(key, None)
        if held is None:
            return
        try:
            if held.close is not None:
                await held.close(held.pool)
            elif hasattr(held.pool, "close"):
                result = held.pool.close()
                if asyncio.iscoroutine(result):
                    await result
        except Exception:
            # Closing is best effort: the pool is forgotten either way.
            logger.exception("Closing pool %s failed", key)
