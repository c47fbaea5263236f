"""The S3 backend: one object per record, ``{prefix}{id}.json``.

Each object holds ``{"id", "data", "metadata", "created_at", "updated_at"}`` in the tagged JSON
of the other backends, so datetimes, bytes and Decimals round-trip; objects the pure-Python
package wrote (``{"fields": ..., "metadata": ...}``) read as well. The client lives in the Rust
core (aws-sdk-s3): one per endpoint, region, credentials and bucket, shared by every database
using them from any thread or event loop, with at most ``max_concurrency`` requests in flight
(default 64). Every batch verb fans out inside Rust with the GIL released; ``search``,
``count`` and ``stream_read`` list keys a page at a time and fetch the objects concurrently.

- ``create`` and ``create_batch`` use a conditional put (``If-None-Match: *``): a taken id
  raises ``DuplicateRecordError``; a batch checks every id first and writes nothing on a known
  collision. If a put still fails mid-batch (a race, a server gone), the
  ``DatabaseOperationError`` it raises lists ``written`` and ``not_written`` ids.
- ``update`` replaces only the object its HEAD saw (``If-Match`` on its ETag), keeping its
  ``created_at``; ``delete_batch`` sends multi-object deletes of 1,000 keys.
- Storage order is key order (the order S3 lists keys in), not creation order.
- An id S3 cannot take safely as a key (empty, ``/``, ``..``, control characters, over 512
  bytes) is refused with ``SerializationError`` before anything is written.
- Credentials: the keys given, else the standard AWS chain (environment, shared files);
  region: the one given, else the chain's, else ``us-east-1``. A custom ``endpoint_url``
  (SeaweedFS, MinIO, LocalStack) is addressed path-style. Retries follow the SDK's standard
  mode (backoff with jitter on throttling, 5xx and transport errors), ``max_retries`` attempts
  per request, each bounded by ``request_timeout`` seconds.
- ``multipart_threshold`` / ``multipart_chunksize`` are accepted for 0.11.0 configs; a record
  is always one PUT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from .. import _native
from ..config_values import positive_int, positive_seconds
from ..exceptions import ConfigurationError
from .native import NativeAsyncDatabase, NativeSyncDatabase

#: The retry modes 0.11.0 passed to boto3; all three mean the SDK's standard mode here.
RETRY_MODES = ("standard", "adaptive", "legacy")

#: Each setting and the 0.11.0 spellings it also answers to (the first wins when both are given).
_ALIASES: dict[str, tuple[str, ...]] = {
    "region": ("region", "region_name"),
    "access_key_id": ("aws_access_key_id", "access_key_id"),
    "secret_access_key": ("aws_secret_access_key", "secret_access_key"),
    "session_token": ("aws_session_token", "session_token"),
    "max_concurrency": ("max_concurrency", "max_workers", "max_pool_connections"),
    "max_attempts": ("max_attempts", "max_retries"),
}


def _pick(cfg: Mapping[str, Any], setting: str) -> Any:
    for key in _ALIASES[setting]:
        if cfg.get(key) is not None:
            return cfg[key]
    return None


def _optional_str(cfg: Mapping[str, Any], setting: str) -> str | None:
    value = _pick(cfg, setting)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(setting, f"expected a string, got {type(value).__name__}")
    return value


def normalize_prefix(prefix: Any) -> str:
    """The key prefix: "" stays "", anything else ends in exactly one "/" (as 0.11.0 did)."""
    if prefix is None:
        return "records/"
    if not isinstance(prefix, str):
        raise ConfigurationError("prefix", f"expected a string, got {type(prefix).__name__}")
    return prefix.rstrip("/") + "/" if prefix else ""


def store_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The native store's arguments for a backend config (API.md §5, s3)."""
    bucket = cfg.get("bucket")
    if not bucket or not isinstance(bucket, str):
        raise ConfigurationError("bucket", "S3 backend requires 'bucket' in configuration")
    retry_mode = cfg.get("retry_mode", "standard")
    if retry_mode not in RETRY_MODES:
        raise ConfigurationError(
            "retry_mode", f"expected one of {', '.join(RETRY_MODES)}, got {retry_mode!r}"
        )
    if cfg.get("extra_client_kwargs"):
        raise ConfigurationError(
            "extra_client_kwargs",
            "boto3 client arguments do not apply to the native client; use endpoint_url, "
            "region, max_concurrency, max_retries, connect_timeout and request_timeout",
        )
    endpoint = cfg.get("endpoint_url")
    if endpoint is not None and not isinstance(endpoint, str):
        raise ConfigurationError("endpoint_url", f"expected a URL, got {endpoint!r}")
    return {
        "bucket": bucket,
        "prefix": normalize_prefix(cfg.get("prefix")),
        "region": _optional_str(cfg, "region"),
        "endpoint_url": endpoint,
        "access_key_id": _optional_str(cfg, "access_key_id"),
        "secret_access_key": _optional_str(cfg, "secret_access_key"),
        "session_token": _optional_str(cfg, "session_token"),
        "max_concurrency": positive_int("max_concurrency", _pick(cfg, "max_concurrency"), 64),
        "max_attempts": positive_int("max_attempts", _pick(cfg, "max_attempts"), 3),
        "connect_timeout": positive_seconds("connect_timeout", cfg.get("connect_timeout"), 5.0),
        "request_timeout": positive_seconds("request_timeout", cfg.get("request_timeout"), 30.0),
        "create_bucket": bool(cfg.get("create_bucket", True)),
    }


class _S3Store:
    BACKEND_NAME: ClassVar[str] = "s3"
    CONFIG_KEYS: ClassVar[frozenset[str] | None] = frozenset(
        {
            "bucket",
            "prefix",
            "endpoint_url",
            *(key for keys in _ALIASES.values() for key in keys),
            "retry_mode",
            "connect_timeout",
            "request_timeout",
            "create_bucket",
            "multipart_threshold",
            "multipart_chunksize",
            "extra_client_kwargs",
        }
    )
    config: dict[str, Any]
    _store: Any

    def _open_store(self) -> Any:
        return _native.S3Store(**store_settings(self.config))

    @property
    def bucket(self) -> str:
        """The bucket the records live in."""
        return str(self.config["bucket"])

    @property
    def prefix(self) -> str:
        """The key prefix, normalised (``records/`` by default)."""
        return normalize_prefix(self.config.get("prefix"))

    def pool_stats(self) -> dict[str, Any]:
        """The shared client's settings key (no secret), concurrency cap, requests in flight,
        requests made, waits for a slot and the stores holding it."""
        stats: dict[str, Any] = self._ensure_store().pool_stats()  # type: ignore[attr-defined]
        return stats


class SyncS3Database(_S3Store, NativeSyncDatabase):
    """Records as JSON objects in an S3 bucket."""

    def list_all(self) -> list[str]:
        """The ids of every record, in storage (key) order."""
        return [str(r.id) for r in self.all()]


class AsyncS3Database(_S3Store, NativeAsyncDatabase):
    """Records as JSON objects in an S3 bucket, async face: each call awaits the Rust future."""

    async def connect(self) -> None:
        """Open the client and check the bucket off the event loop (also done on first use)."""
        self._closed = False
        if self._store is None:
            store = await asyncio.to_thread(self._open_store)
            if self._store is None:
                self._store = store
            else:
                # Another task connected meanwhile; keep its store.
                store.close()

    async def list_all(self) -> list[str]:
        """The ids of every record, in storage (key) order."""
        return [str(r.id) for r in await self.all()]


__all__ = ["AsyncS3Database", "SyncS3Database"]
