"""Connection pool settings (API.md §11).

The pools themselves live in the Rust core: keyed by connection settings (never the password),
refcounted by the databases that use them, and shared across event loops and threads. These
classes describe the settings a pool is keyed by; ``to_hash_key`` is that key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config_values import config_bool
from .exceptions import ConfigurationError


def _int(cfg: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = cfg.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(key, f"expected an integer, got {value!r}") from exc
    return int(value)


@dataclass
class PostgresPoolConfig:
    """Settings of a PostgreSQL pool; ``port`` None means 5432 unless the connection string
    names one."""

    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    connection_string: str | None = field(default=None, repr=False)
    min_size: int = 2
    max_size: int = 5
    command_timeout: float | None = None
    ssl: Any = None
    #: False for PgBouncer in transaction pooling (asyncpg's ``statement_cache_size=0``).
    prepared_statements: bool = True

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> PostgresPoolConfig:
        """From backend config keys (``min_pool_size``/``max_pool_size`` or
        ``min_size``/``max_size``); other keys are ignored."""
        min_size = _int(config, "min_pool_size", _int(config, "min_size", 2))
        max_size = _int(config, "max_pool_size", _int(config, "max_size", 5))
        timeout = config.get("command_timeout")
        return cls(
            host=config.get("host"),
            port=_int(config, "port", None),
            database=config.get("database"),
            user=config.get("user"),
            password=config.get("password"),
            connection_string=config.get("connection_string"),
            min_size=2 if min_size is None else min_size,
            max_size=5 if max_size is None else max_size,
            command_timeout=None if timeout is None else float(timeout),
            ssl=config.get("ssl"),
            prepared_statements=config_bool(config, "prepared_statements", True),
        )

    def to_hash_key(self) -> tuple[Any, ...]:
        """The pool key: every setting but the password (a connection string is keyed
        with its password removed)."""
        return (
            "postgres",
            self.host,
            self.port,
            self.database,
            self.user,
            _without_password(self.connection_string),
            self.min_size,
            self.max_size,
            self.command_timeout,
            self.ssl,
            self.prepared_statements,
        )


def _without_password(dsn: str | None) -> str | None:
    if not dsn or "://" not in dsn:
        # key=value form: drop the password=... pair.
        if dsn:
            return " ".join(p for p in dsn.split() if not p.lower().startswith("password="))
        return dsn
    import urllib.parse

    url = urllib.parse.urlsplit(dsn)
    netloc = url.netloc
    if "@" in netloc:
        auth, _, hostpart = netloc.rpartition("@")
        netloc = auth.split(":", 1)[0] + "@" + hostpart
    query = "&".join(p for p in url.query.split("&") if p and not p.lower().startswith("password="))
    return urllib.parse.urlunsplit((url.scheme, netloc, url.path, query, url.fragment))


@dataclass
class S3PoolConfig:
    """Settings of an S3 client pool."""

    bucket: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    max_concurrency: int = 10

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> S3PoolConfig:
        """From backend config keys (aliases of API.md §5 accepted)."""
        conc = _int(config, "max_concurrency", _int(config, "max_workers", 10))
        return cls(
            bucket=str(config.get("bucket", "")),
            region=config.get("region", config.get("region_name")),
            endpoint_url=config.get("endpoint_url"),
            access_key_id=config.get("access_key_id", config.get("aws_access_key_id")),
            secret_access_key=config.get("secret_access_key", config.get("aws_secret_access_key")),
            max_concurrency=10 if conc is None else conc,
        )

    def to_hash_key(self) -> tuple[Any, ...]:
        """Every setting but the secret key."""
        return ("s3", self.region, self.endpoint_url, self.access_key_id, self.max_concurrency)


@dataclass
class ElasticsearchPoolConfig:
    """Settings of an Elasticsearch / OpenSearch client pool."""

    hosts: tuple[str, ...] = ("http://localhost:9200",)
    api_key: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    verify_certs: bool = True
    ca_certs: str | None = None

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> ElasticsearchPoolConfig:
        """From backend config keys: ``hosts`` or ``host`` + ``port``."""
        hosts = config.get("hosts")
        if hosts is None:
            host = config.get("host", "localhost")
            port = config.get("port", 9200)
            hosts = [host if "://" in str(host) else f"http://{host}:{port}"]
        elif isinstance(hosts, str):
            hosts = [hosts]
        auth = config.get("basic_auth")
        return cls(
            hosts=tuple(str(h) for h in hosts),
            api_key=config.get("api_key"),
            basic_auth=None if auth is None else (str(auth[0]), str(auth[1])),
            verify_certs=config_bool(config, "verify_certs", True),
            ca_certs=config.get("ca_certs"),
        )

    def to_hash_key(self) -> tuple[Any, ...]:
        """Hosts, TLS settings and the user name; never the API key or password."""
        user = None if self.basic_auth is None else self.basic_auth[0]
        return ("elasticsearch", self.hosts, user, self.verify_certs, self.ca_certs)


__all__ = ["ElasticsearchPoolConfig", "PostgresPoolConfig", "S3PoolConfig"]
