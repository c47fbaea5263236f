"""Connection pool settings (API.md §11), as 0.11.0's ``pooling`` package names them.

The pools themselves live in the Rust core: keyed by connection settings (never the password),
refcounted by the databases that use them, and shared across event loops and threads. These
classes describe the settings a pool is keyed by; ``to_hash_key`` is that key.
:class:`ConnectionPoolManager` manages pools that user code creates.
"""

from __future__ import annotations

from .base import BasePoolConfig, ConnectionPoolManager, PoolProtocol, PoolType
from .elasticsearch import ElasticsearchPoolConfig
from .postgres import PostgresPoolConfig
from .s3 import AwsSessionConfig, S3PoolConfig, S3SessionConfig

__all__ = [
    "AwsSessionConfig",
    "BasePoolConfig",
    "ConnectionPoolManager",
    "ElasticsearchPoolConfig",
    "PoolProtocol",
    "PoolType",
    "PostgresPoolConfig",
    "S3PoolConfig",
    "S3SessionConfig",
]
