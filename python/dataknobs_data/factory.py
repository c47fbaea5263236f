"""Factories that build databases by backend name (API.md §4)."""

from __future__ import annotations

from typing import Any

from .backends import (
    backend_class,
    get_available_backends,
    get_backend_info,
    is_backend_available,
)
from .database import AsyncDatabase, SyncDatabase


def _split(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    options = dict(config)
    return str(options.pop("backend", "memory")), options


class _BackendQueries:
    """What both factories can tell about the registered backends."""

    def get_backend_info(self, backend_type: str) -> dict[str, Any]:
        """Description of a backend."""
        return get_backend_info(backend_type)

    def get_available_backends(self) -> list[str]:
        """Names of the backends that can be built here."""
        return get_available_backends()

    def is_backend_available(self, backend_type: str) -> bool:
        """Whether ``backend`` can be built here."""
        return is_backend_available(backend_type)


class DatabaseFactory(_BackendQueries):
    """Builds sync databases: ``DatabaseFactory().create(backend="sqlite", path="a.db")``."""

    def create(self, **config: Any) -> SyncDatabase:
        """A new, not yet connected, sync database for ``backend`` (default memory)."""
        name, options = _split(config)
        cls: type[SyncDatabase] = backend_class(name, "sync")
        return cls.from_config(options)


class AsyncDatabaseFactory(_BackendQueries):
    """Builds async databases: ``AsyncDatabaseFactory().create(backend="sqlite", ...)``."""

    def create(self, **config: Any) -> AsyncDatabase:
        """A new, not yet connected, async database for ``backend`` (default memory)."""
        name, options = _split(config)
        cls: type[AsyncDatabase] = backend_class(name, "async")
        return cls.from_config(options)


database_factory = DatabaseFactory()
async_database_factory = AsyncDatabaseFactory()

__all__ = [
    "AsyncDatabaseFactory",
    "DatabaseFactory",
    "async_database_factory",
    "database_factory",
    "get_available_backends",
    "get_backend_info",
    "is_backend_available",
]
