"""PostgreSQL pool settings (the pool itself lives in the Rust core)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config_values import config_bool
from .base import BasePoolConfig, config_int

__all__ = ["PostgresPoolConfig"]


@dataclass
class PostgresPoolConfig(BasePoolConfig):
    """Settings of a PostgreSQL pool (0.11.0's fields and defaults).

    ``connection_string`` and ``prepared_statements`` are ours: a DSN given as such (its parts
    fill the fields that were not given), and False for PgBouncer in transaction pooling.
    """

    host: str = "localhost"
    port: int = 5432
    database: str = "postgres"
    user: str = "postgres"
    password: str = field(default="", repr=False)
    min_size: int = 2
    max_size: int = 5
    command_timeout: float | None = None
    ssl: Any | None = None
    connection_string: str | None = field(default=None, repr=False)
    prepared_statements: bool = True

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> PostgresPoolConfig:
        """From backend config keys: ``host``, ``port``, ``database``, ``user``, ``password``
        or a ``connection_string``; ``min_pool_size``/``max_pool_size`` (or ``min_size``/
        ``max_size``), ``command_timeout``, ``ssl``, ``prepared_statements``. Other keys are
        ignored."""
        dsn = config.get("connection_string")
        parts = _dsn_parts(dsn) if dsn else {}
        merged = {**parts, **{k: v for k, v in config.items() if v is not None}}
        min_size = config_int(config, "min_pool_size", config_int(config, "min_size", 2))
        max_size = config_int(config, "max_pool_size", config_int(config, "max_size", 5))
        port = config_int(merged, "port", 5432)
        timeout = config.get("command_timeout")
        return cls(
            host=str(merged.get("host", "localhost")),
            port=5432 if port is None else port,
            database=str(merged.get("database", "postgres")),
            user=str(merged.get("user", "postgres")),
            password=str(merged.get("password", "")),
            min_size=2 if min_size is None else min_size,
            max_size=5 if max_size is None else max_size,
            command_timeout=None if timeout is None else float(timeout),
            ssl=config.get("ssl"),
            connection_string=dsn,
            prepared_statements=config_bool(config, "prepared_statements", True),
        )

    def to_connection_string(self) -> str:
        """``postgresql://user:password@host:port/database``."""
        user = urllib.parse.quote(self.user, safe="")
        auth = f"{user}:{urllib.parse.quote(self.password, safe='')}" if self.password else user
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.database}"

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


def _dsn_parts(dsn: str) -> dict[str, Any]:
    """host/port/database/user/password named by a ``postgresql://`` URL (else nothing)."""
    if "://" not in dsn:
        return {}
    url = urllib.parse.urlsplit(dsn)
    parts: dict[str, Any] = {}
    if url.hostname:
        parts["host"] = url.hostname
    try:
        if url.port is not None:
            parts["port"] = url.port
    except ValueError:
        pass  # the Rust core names the bad port when it connects
    if url.path.strip("/"):
        parts["database"] = urllib.parse.unquote(url.path.strip("/"))
    if url.username:
        parts["user"] = urllib.parse.unquote(url.username)
    if url.password:
        parts["password"] = urllib.parse.unquote(url.password)
    return parts


def _without_password(dsn: str | None) -> str | None:
    if not dsn or "://" not in dsn:
        # key=value form: drop the password=... pair.
        if dsn:
            return " ".join(p for p in dsn.split() if not p.lower().startswith("password="))
        return dsn
    url = urllib.parse.urlsplit(dsn)
    netloc = url.netloc
    if "@" in netloc:
        auth, _, hostpart = netloc.rpartition("@")
        netloc = auth.split(":", 1)[0] + "@" + hostpart
    query = "&".join(p for p in url.query.split("&") if p and not p.lower().startswith("password="))
    return urllib.parse.urlunsplit((url.scheme, netloc, url.path, query, url.fragment))
