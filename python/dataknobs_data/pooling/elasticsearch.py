"""Elasticsearch / OpenSearch client settings (the client itself lives in the Rust core)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config_values import config_bool
from .base import BasePoolConfig

__all__ = ["ElasticsearchPoolConfig"]


@dataclass
class ElasticsearchPoolConfig(BasePoolConfig):
    """Settings of an Elasticsearch client (0.11.0's fields; ``hosts`` None means
    ``["http://localhost:9200"]``)."""

    hosts: list[str] | None = None
    index: str = "records"
    api_key: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    verify_certs: bool = True
    ca_certs: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    ssl_show_warn: bool = True

    def __post_init__(self) -> None:
        if self.hosts is None:
            self.hosts = ["http://localhost:9200"]
        elif isinstance(self.hosts, str):
            self.hosts = [self.hosts]

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> ElasticsearchPoolConfig:
        """From backend config keys: ``hosts``, or ``host`` (with a scheme or not) and
        ``port`` (9200)."""
        hosts = config.get("hosts")
        if hosts is None and config.get("host") is not None:
            host = str(config["host"])
            port = config.get("port", 9200)
            if "://" in host:
                hosts = [host if ":" in host.split("://", 1)[1] else f"{host}:{port}"]
            else:
                hosts = [f"http://{host}:{port}"]
        auth = config.get("basic_auth")
        return cls(
            hosts=None
            if hosts is None
            else [str(h) for h in ([hosts] if isinstance(hosts, str) else hosts)],
            index=str(config.get("index", "records")),
            api_key=config.get("api_key"),
            basic_auth=None if auth is None else (str(auth[0]), str(auth[1])),
            verify_certs=config_bool(config, "verify_certs", True),
            ca_certs=config.get("ca_certs"),
            client_cert=config.get("client_cert"),
            client_key=config.get("client_key"),
            ssl_show_warn=bool(config.get("ssl_show_warn", True)),
        )

    def _hosts(self) -> list[str]:
        return list(self.hosts or [])

    def to_connection_string(self) -> str:
        """The hosts joined with ``;``."""
        return ";".join(self._hosts())

    def to_hash_key(self) -> tuple[Any, ...]:
        """Hosts, index, TLS settings and the user name; never the API key or password."""
        user = None if self.basic_auth is None else self.basic_auth[0]
        return (
            "elasticsearch",
            tuple(self._hosts()),
            self.index,
            user,
            self.verify_certs,
            self.ca_certs,
            self.client_cert,
        )
