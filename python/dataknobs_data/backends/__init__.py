"""The backend registry: names, aliases and the sync/async classes behind them.

Backend modules are imported on first use, so an unavailable optional dependency only matters
to the backend that needs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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
    #: Further facts a registrant gave (``backend_selection.register_backend``'s metadata).
    metadata: dict[str, Any] = field(default_factory=dict)

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
    name: Any,
    sync_class: type[SyncDatabase] | str | None = None,
    async_class: type[AsyncDatabase] | Callable[[], Any] | None = None,
    *,
    aliases: tuple[str, ...] = (),
    description: str = "",
    **selection: Any,
) -> None:
    """Register (or replace) a backend under ``name`` and its aliases.

    0.11.0's form is accepted too: ``register_backend(sync_backends, "custom", loader,
    metadata={...})`` registers the class ``loader()`` returns in that registry (see
    :func:`dataknobs_data.backend_selection.register_backend`).
    """
    if isinstance(name, BackendRegistry):
        from ..backend_selection import register_backend as register_in

        if not isinstance(sync_class, str) or async_class is None:
            raise TypeError(
                "register_backend(registry, key, loader, metadata=...) needs a key and a loader"
            )
        register_in(name, sync_class, async_class, aliases=aliases, **selection)
        return
    if isinstance(sync_class, str):
        raise TypeError("register_backend(name, sync_class, async_class): sync_class is a class")
    if selection:
        raise TypeError(f"register_backend() got unexpected keywords: {sorted(selection)}")
    info = BackendInfo(name=name, description=description, aliases=aliases)
    if sync_class is not None:
        info.loaded["sync"] = sync_class
        info.sync_class = sync_class.__name__
    if async_class is not None:
        if not isinstance(async_class, type):
            raise TypeError(
                "register_backend(name, sync_class, async_class): async_class is a class"
            )
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
    if not info.module:
        return False  # declared unavailable, or registered without classes
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
    BackendInfo(
        "s3",
        "One JSON object per record in an S3 bucket (aws-sdk-s3, conditional creates)",
        "dataknobs_data.backends.s3",
        "SyncS3Database",
        "AsyncS3Database",
    ),
    BackendInfo(
        "elasticsearch",
        "Elasticsearch / OpenSearch index, bulk NDJSON writes, point-in-time streams",
        "dataknobs_data.backends.elasticsearch",
        "SyncElasticsearchDatabase",
        "AsyncElasticsearchDatabase",
        aliases=("es", "opensearch"),
    ),
):
    _add(_info)


class BackendRegistry:
    """The sync or async classes of the registered backends, as 0.11.0's plugin registries
    (``sync_backends``, ``async_backends``) offer them: look up, create, register."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"{kind}_backends"
        self._cache: dict[str, Any] = {}

    def list_canonical_keys(self) -> list[str]:
        """The backend names (no aliases), sorted."""
        return sorted(n for n, info in _REGISTRY.items() if self._has_class(info))

    def list_keys(self) -> list[str]:
        """Every name and alias a backend answers to."""
        return [
            key
            for name, info in _REGISTRY.items()
            if self._has_class(info)
            for key in (name, *info.aliases)
        ]

    def has(self, key: str) -> bool:
        """Whether ``key`` names a backend of this kind."""
        name = _ALIASES.get(str(key).lower())
        return name is not None and self._has_class(_REGISTRY[name])

    is_registered = has

    def get_factory(self, key: str) -> type[Any] | None:
        """The backend class for ``key``, or None when there is none."""
        if not self.has(key):
            return None
        return backend_class(key, self.kind)

    def create(
        self, key: str | None = None, config: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        """A new, unconnected database of backend ``key`` (default: memory)."""
        cls = backend_class(key or "memory", self.kind)
        return cls({**(config or {}), **kwargs})

    def get(self, key: str, config: dict[str, Any] | None = None, use_cache: bool = True) -> Any:
        """A database of backend ``key``; with ``use_cache`` the same one for the same name
        when no config is given."""
        if not use_cache or config:
            return self.create(key, config)
        name = resolve(key).name
        if name not in self._cache:
            self._cache[name] = self.create(name)
        return self._cache[name]

    def register(
        self,
        key: str,
        factory: type[Any],
        override: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Register ``factory`` (a database class) as this kind of backend ``key``.

        Raises:
            ConfigurationError: ``key`` already has a class of this kind and not ``override``.
        """
        name = _ALIASES.get(key.lower())
        info = _REGISTRY.get(name) if name is not None else None
        if info is not None and self._has_class(info) and not override:
            raise ConfigurationError(key, f"a {self.kind} backend is already registered")
        if info is None:
            description = str((metadata or {}).get("description", ""))
            info = BackendInfo(name=key, description=description, metadata=dict(metadata or {}))
            _add(info)
        elif metadata:
            info.metadata.update(metadata)
        info.loaded[self.kind] = factory
        if self.kind == "sync":
            info.sync_class = factory.__name__
        else:
            info.async_class = factory.__name__
        self._cache.pop(info.name, None)

    def is_known(self, key: str) -> bool:
        """Whether ``key`` names a backend, usable here or declared unavailable."""
        return str(key).lower() in _ALIASES

    def get_metadata(self, key: str, follow_alias: bool = True) -> dict[str, Any]:
        """What is known about backend ``key`` (description, persistence, install hint); {}
        for an unknown name."""
        name = _ALIASES.get(str(key).lower())
        if name is None or (not follow_alias and name != str(key).lower()):
            return {}
        info = _REGISTRY[name]
        return {
            "description": info.description,
            "aliases": list(info.aliases),
            "requires_install": info.install_hint or False,
            **info.metadata,
        }

    def declare_unavailable(
        self,
        key: str,
        metadata: dict[str, Any] | None = None,
        reason: str = "",
        aliases: tuple[str, ...] | list[str] = (),
        type_loader: Any = None,
    ) -> None:
        """Make ``key`` known without a class: lookups say why it cannot be used here."""
        meta = dict(metadata or {})
        hint = meta.get("requires_install")
        info = BackendInfo(
            name=key,
            description=str(meta.get("description", "")),
            aliases=tuple(aliases),
            install_hint=hint if isinstance(hint, str) else None,
            metadata={**meta, "unavailable_reason": reason},
        )
        _add(info)

    def _has_class(self, info: BackendInfo) -> bool:
        return bool(info.sync_class if self.kind == "sync" else info.async_class)


sync_backends = BackendRegistry("sync")
async_backends = BackendRegistry("async")


def __getattr__(name: str) -> Any:
    # The memory classes are re-exported as 0.11.0 does, imported when first asked for.
    if name in ("SyncMemoryDatabase", "AsyncMemoryDatabase"):
        from . import memory

        return getattr(memory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AsyncMemoryDatabase",
    "BackendInfo",
    "BackendRegistry",
    "SyncMemoryDatabase",
    "async_backends",
    "backend_class",
    "get_available_backends",
    "get_backend_info",
    "is_backend_available",
    "register_backend",
    "resolve",
    "sync_backends",
]
