"""The backend registry: names, aliases and the sync/async classes behind them.

Backend modules are imported on first use, so an unavailable optional dependency only matters
to the backend that needs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..database import AsyncDatabase, SyncDatabase
from ..exceptions import BackendNotFoundError, ConfigurationError


@dataclass
class BackendInfo:
    """One registered backend."""

    name: str
    description: str
    module: str = ""
    sync_class: str = ""
    async_class: str = ""
    aliases: tuple[str, ...] = ()
    install_hint: str | None = None
    loaded: dict[str, type[Any]] = field(default_factory=dict)

    def load(self, kind: str) -> type[Any]:
        """The sync or async class, importing its module on first use."""
        cls = self.loaded.get(kind)
        if cls is None:
            try:
                module = importlib.import_module(self.module)
            except ImportError as exc:
                hint = self.install_hint or f"pip install 'dataknobs-data[{self.name}]'"
                raise ConfigurationError(
                    "backend", f"the {self.name} backend needs {exc.name}; install it with: {hint}"
                ) from exc
            cls = getattr(module, self.sync_class if kind == "sync" else self.async_class)
            self.loaded[kind] = cls
        return cls

    def to_dict(self) -> dict[str, Any]:
        """Plain description for ``get_backend_info``."""
        return {
            "name": self.name,
            "description": self.description,
            "aliases": list(self.aliases),
            "sync_class": self.sync_class,
            "async_class": self.async_class,
            "available": is_backend_available(self.name),
        }


_REGISTRY: dict[str, BackendInfo] = {}
_ALIASES: dict[str, str] = {}


def register_backend(
    name: str,
    sync_class: type[SyncDatabase] | None = None,
    async_class: type[AsyncDatabase] | None = None,
    *,
    aliases: tuple[str, ...] = (),
    description: str = "",
) -> None:
    """Register (or replace) a backend under ``name`` and its aliases."""
    info = BackendInfo(name=name, description=description, aliases=aliases)
    if sync_class is not None:
        info.loaded["sync"] = sync_class
        info.sync_class = sync_class.__name__
    if async_class is not None:
        info.loaded["async"] = async_class
        info.async_class = async_class.__name__
    _add(info)


def _add(info: BackendInfo) -> None:
    _REGISTRY[info.name] = info
    for key in (info.name, *info.aliases):
        _ALIASES[key.lower()] = info.name


def resolve(name: str) -> BackendInfo:
    """The backend registered under ``name`` or an alias; BackendNotFoundError otherwise."""
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise BackendNotFoundError(str(name), get_available_backends())
    return _REGISTRY[key]


def backend_class(name: str, kind: str) -> type[Any]:
    """The ``"sync"`` or ``"async"`` class of a backend."""
    info = resolve(name)
    if (kind == "sync" and not info.sync_class) or (kind == "async" and not info.async_class):
        raise BackendNotFoundError(str(name), get_available_backends())
    return info.load(kind)


def get_available_backends() -> list[str]:
    """Names of the registered backends whose modules import."""
    return sorted(n for n in _REGISTRY if is_backend_available(n))


def is_backend_available(name: str) -> bool:
    """Whether ``name`` is registered and its module imports."""
    key = _ALIASES.get(str(name).lower())
    if key is None:
        return False
    info = _REGISTRY[key]
    if info.loaded:
        return True
    try:
        importlib.import_module(info.module)
    except ImportError:
        return False
    return True


def get_backend_info(name: str) -> dict[str, Any]:
    """Description of a backend (name, aliases, classes, availability)."""
    return resolve(name).to_dict()


for _info in (
    BackendInfo(
        "memory",
        "In-process records, queries evaluated in Rust",
        "dataknobs_data.backends.memory",
        "SyncMemoryDatabase",
        "AsyncMemoryDatabase",
        aliases=("mem",),
    ),
    BackendInfo(
        "file",
        "One JSON, JSON Lines, CSV, TSV or Parquet file (optionally gzip)",
        "dataknobs_data.backends.file",
        "SyncFileDatabase",
        "AsyncFileDatabase",
    ),
    BackendInfo(
        "sqlite",
        "Embedded SQLite database (the persistent default)",
        "dataknobs_data.backends.sqlite",
        "SyncSQLiteDatabase",
        "AsyncSQLiteDatabase",
        aliases=("sqlite3",),
    ),
    BackendInfo(
        "duckdb",
        "Embedded DuckDB database (file or :memory:), batches exchanged as Arrow",
        "dataknobs_data.backends.duckdb",
        "SyncDuckDBDatabase",
        "AsyncDuckDBDatabase",
        install_hint="pip install 'dataknobs-data[duckdb]'",
    ),
    BackendInfo(
        "postgres",
        "PostgreSQL table with JSONB columns, pooled connections and binary COPY",
        "dataknobs_data.backends.postgres",
        "SyncPostgresDatabase",
        "AsyncPostgresDatabase",
        aliases=("postgresql", "pg"),
    ),
):
    _add(_info)

__all__ = [
    "BackendInfo",
    "backend_class",
    "get_available_backends",
    "get_backend_info",
    "is_backend_available",
    "register_backend",
    "resolve",
]
