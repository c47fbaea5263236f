"""S3 client settings (the client itself lives in the Rust core)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigurationError
from .base import BasePoolConfig, config_int

__all__ = ["AwsSessionConfig", "S3PoolConfig", "S3SessionConfig"]


def _first(config: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return None


@dataclass
class AwsSessionConfig:
    """AWS session and client settings shared by S3 users (0.11.0's fields)."""

    region_name: str | None = None
    endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    max_pool_connections: int = 10
    max_attempts: int = 3
    retry_mode: str = "standard"
    extra_client_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> AwsSessionConfig:
        """From config keys, with API.md §5's aliases (``region``, ``access_key_id``, ...)."""
        connections = config_int(config, "max_pool_connections", 10)
        attempts = config_int(config, "max_attempts", config_int(config, "max_retries", 3))
        return cls(
            region_name=_first(config, "region_name", "region"),
            endpoint_url=config.get("endpoint_url"),
            aws_access_key_id=_first(config, "aws_access_key_id", "access_key_id"),
            aws_secret_access_key=_first(config, "aws_secret_access_key", "secret_access_key"),
            aws_session_token=_first(config, "aws_session_token", "session_token"),
            max_pool_connections=10 if connections is None else connections,
            max_attempts=3 if attempts is None else attempts,
            retry_mode=str(config.get("retry_mode", "standard")),
            extra_client_kwargs=dict(config.get("extra_client_kwargs") or {}),
        )


S3SessionConfig = AwsSessionConfig
"""0.11.0's earlier name of :class:`AwsSessionConfig`."""


@dataclass
class S3PoolConfig(BasePoolConfig):
    """Settings of an S3 client (0.11.0's fields; ``max_concurrency`` is ours: the bound on
    requests in flight)."""

    bucket: str
    prefix: str = ""
    region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    max_concurrency: int = 10

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> S3PoolConfig:
        """From backend config keys (API.md §5's aliases accepted).

        Raises:
            ConfigurationError: (also a ValueError) without a ``bucket``.
        """
        bucket = config.get("bucket")
        if not bucket:
            raise ConfigurationError("bucket", "S3 bucket configuration is required")
        session = AwsSessionConfig.from_dict(config)
        concurrency = config_int(config, "max_concurrency", config_int(config, "max_workers", 10))
        return cls(
            bucket=str(bucket),
            prefix=str(config.get("prefix", "")),
            region_name=session.region_name,
            aws_access_key_id=session.aws_access_key_id,
            aws_secret_access_key=session.aws_secret_access_key,
            aws_session_token=session.aws_session_token,
            endpoint_url=session.endpoint_url,
            max_concurrency=10 if concurrency is None else concurrency,
        )

    def to_connection_string(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}"

    def to_hash_key(self) -> tuple[Any, ...]:
        """Bucket, prefix, region, endpoint, key id and concurrency; never a secret."""
        return (
            "s3",
            self.bucket,
            self.prefix,
            self.region_name,
            self.endpoint_url,
            self.aws_access_key_id,
            self.max_concurrency,
        )

    def to_session_config(self) -> AwsSessionConfig:
        """The session settings of this client."""
        return AwsSessionConfig(
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
        )
