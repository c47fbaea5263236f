"""The Elasticsearch / OpenSearch backend: one document per record in one index.

Documents have 0.11.0's layout: ``_id`` is the record id and ``_source`` is
``{"id", "data", "metadata", "created_at", "updated_at"}``, the values in the tagged JSON of the
other backends (datetimes, dates, Decimals, bytes and non-finite floats as one-key objects), so
every value round-trips and indexes 0.11.0 wrote read as they are. The HTTP client lives in the
Rust core (reqwest on rustls, plain ``application/json``, so the same code talks to OpenSearch
2.x and Elasticsearch 8.x): one per hosts, credentials and TLS settings, shared by every
database using them from any thread or event loop.

- Writes go through ``_bulk``, encoded in Rust, cut at ``bulk_bytes`` (8 MiB) and ``bulk_docs``
  (10,000) per request, ``max_concurrency`` requests in flight. 429 and 503 answers (and
  requests cut before an answer) are retried with capped backoff and jitter, ``max_retries``
  attempts: ids are the record ids, so a retry never duplicates a record.
- ``create`` / ``create_batch`` use ``create`` ops: a taken id raises ``DuplicateRecordError``;
  a batch checks every id first and writes nothing on a known collision. A batch that still
  fails part-way (a mapping conflict on one document, a node gone) raises
  ``DatabaseOperationError`` listing ``written`` and ``not_written`` ids, exactly as the server
  reported them; a request that failed as a whole counts every one of its records as not
  written.
- ``update`` replaces only the version it read (``if_seq_no``), keeping ``created_at``; a
  record deleted meanwhile is not brought back.
- Queries are narrowed in the query DSL where that is provably a superset of the matches and
  decided by the same evaluator as every other backend (``Filter.matches`` semantics); sort,
  offset, limit and projection are applied after. ``count`` uses ``_count`` when the DSL is
  exact (no filter, or filters on ``id``). Storage order is id order.
- ``stream_read`` pages through a point in time with ``search_after``: no 10,000-hit window,
  memory bounded by ``prefetch`` pages; the point in time is closed when the stream ends.
- ``refresh`` (True, as in 0.11.0): each write batch is followed by an index refresh, so the
  next search sees it. :meth:`bulk_load` turns refreshing off for a large load.
- The index is created when missing (``settings`` and ``mappings`` from the config, else one
  shard, no replicas, and mappings that keep values queryable: strings as text with a keyword
  sub-field, numbers as double, no date detection, metadata stored but not indexed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, ClassVar

from .. import _native
from ..config_values import config_bool, positive_int, positive_seconds
from ..exceptions import ConfigurationError
from ..pooling.elasticsearch import ElasticsearchPoolConfig
from .config import AsyncElasticsearchDatabaseConfig, SyncElasticsearchDatabaseConfig
from .elasticsearch_mixins import (
    ElasticsearchBaseConfig,
    ElasticsearchErrorHandler,
    ElasticsearchIndexManager,
    ElasticsearchQueryBuilder,
    ElasticsearchRecordSerializer,
)
from .native import NativeAsyncDatabase, NativeSyncDatabase

#: 0.11.0's keys (both faces) and this backend's own.
CONFIG_KEYS: frozenset[str] = frozenset(
    {
        "hosts",
        "host",
        "port",
        "index",
        "api_key",
        "basic_auth",
        "verify_certs",
        "ca_certs",
        "client_cert",
        "client_key",
        "ssl_show_warn",
        "refresh",
        "settings",
        "mappings",
        "create_index",
        "bulk_bytes",
        "bulk_docs",
        "max_concurrency",
        "max_retries",
        "connect_timeout",
        "request_timeout",
    }
)


def _mapping_json(cfg: Mapping[str, Any], key: str) -> str | None:
    """A mapping-valued key as JSON text, the form the native store reads it in."""
    value = cfg.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigurationError(key, f"expected a mapping, got {type(value).__name__}")
    try:
        return json.dumps(dict(value))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(key, f"not JSON: {exc}") from exc


def store_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The native store's arguments for a backend config (API.md §5, elasticsearch)."""
    for key in ("client_cert", "client_key"):
        if cfg.get(key) is not None:
            raise ConfigurationError(
                key, "client certificates are not supported; use api_key or basic_auth"
            )
    auth = cfg.get("basic_auth")
    if auth is not None and not (
        isinstance(auth, (tuple, list)) and len(auth) == 2 and all(isinstance(a, str) for a in auth)
    ):
        raise ConfigurationError("basic_auth", "expected a (user, password) pair of strings")
    api_key = cfg.get("api_key")
    if isinstance(api_key, (tuple, list)) and len(api_key) == 2:
        # elasticsearch-py also takes (id, key); the header carries base64("id:key").
        import base64

        api_key = base64.b64encode(f"{api_key[0]}:{api_key[1]}".encode()).decode()
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigurationError("api_key", f"expected a string, got {type(api_key).__name__}")
    pool = ElasticsearchPoolConfig.from_dict(cfg)
    index = cfg.get("index", "records")
    if not isinstance(index, str):
        raise ConfigurationError("index", f"expected a string, got {type(index).__name__}")
    return {
        "hosts": list(pool.hosts or []),
        "index": index,
        "api_key": api_key,
        "basic_auth": None if auth is None else (str(auth[0]), str(auth[1])),
        "verify_certs": config_bool(cfg, "verify_certs", True),
        "ca_certs": cfg.get("ca_certs"),
        "refresh": config_bool(cfg, "refresh", True),
        "settings": _mapping_json(cfg, "settings"),
        "mappings": _mapping_json(cfg, "mappings"),
        "create_index": config_bool(cfg, "create_index", True),
        "bulk_bytes": positive_int("bulk_bytes", cfg.get("bulk_bytes"), 8 << 20),
        "bulk_docs": positive_int("bulk_docs", cfg.get("bulk_docs"), 10_000),
        "max_concurrency": positive_int("max_concurrency", cfg.get("max_concurrency"), 4),
        "max_attempts": positive_int("max_retries", cfg.get("max_retries"), 5),
        "connect_timeout": positive_seconds("connect_timeout", cfg.get("connect_timeout"), 5.0),
        "request_timeout": positive_seconds("request_timeout", cfg.get("request_timeout"), 60.0),
    }


class _SearchStore(
    ElasticsearchBaseConfig,
    ElasticsearchErrorHandler,
    ElasticsearchIndexManager,
    ElasticsearchQueryBuilder,
    ElasticsearchRecordSerializer,
):
    BACKEND_NAME: ClassVar[str] = "elasticsearch"
    CONFIG_KEYS: ClassVar[frozenset[str] | None] = CONFIG_KEYS
    config: dict[str, Any]
    _store: Any

    def _open_store(self) -> Any:
        return _native.SearchStore(**store_settings(self.config))

    @property
    def index_name(self) -> str:
        """The index the records live in."""
        return str(self.config.get("index", "records"))

    @property
    def hosts(self) -> list[str]:
        """The node URLs requests go to (round-robin)."""
        return list(ElasticsearchPoolConfig.from_dict(self.config).hosts or [])

    @property
    def refresh(self) -> bool:
        """Whether each write batch is followed by an index refresh."""
        return config_bool(self.config, "refresh", True)

    def pool_stats(self) -> dict[str, Any]:
        """The shared client's settings key (no secret), the server's flavour and version,
        requests made and retried, and the stores holding it."""
        stats: dict[str, Any] = self._ensure_store().pool_stats()  # type: ignore[attr-defined]
        return stats


class SyncElasticsearchDatabase(_SearchStore, NativeSyncDatabase):
    """Records as documents in an Elasticsearch or OpenSearch index."""

    CONFIG_CLS: ClassVar[type | None] = SyncElasticsearchDatabaseConfig

    @contextlib.contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Within the block the index does not refresh (``refresh_interval: -1``) and writes
        ask for no refresh; on leaving, the interval is restored and the index refreshed once."""
        store = self._ensure_store()
        store.set_bulk_load(True)
        try:
            yield
        finally:
            store.set_bulk_load(False)

    def refresh_index(self) -> None:
        """Make every write so far visible to searches now."""
        self._ensure_store().refresh()


class AsyncElasticsearchDatabase(_SearchStore, NativeAsyncDatabase):
    """Records as documents in an Elasticsearch or OpenSearch index, async face: each call
    awaits the Rust future."""

    CONFIG_CLS: ClassVar[type | None] = AsyncElasticsearchDatabaseConfig

    async def connect(self) -> None:
        """Open the client and check the index off the event loop (also done on first use)."""
        self._closed = False
        if self._store is None:
            store = await asyncio.to_thread(self._open_store)
            if self._store is None:
                self._store = store
            else:
                # Another task connected meanwhile; keep its store.
                store.close()

    @contextlib.asynccontextmanager
    async def bulk_load(self) -> AsyncIterator[None]:
        """As :meth:`SyncElasticsearchDatabase.bulk_load`."""
        store = self._ensure_store()
        await store.set_bulk_load_async(True)
        try:
            yield
        finally:
            await store.set_bulk_load_async(False)

    async def refresh_index(self) -> None:
        """Make every write so far visible to searches now."""
        await self._ensure_store().refresh_async()


__all__ = ["AsyncElasticsearchDatabase", "SyncElasticsearchDatabase"]
