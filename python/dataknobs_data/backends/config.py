"""Typed configuration of each backend, as dataknobs-data 0.11.0 names it.

Every backend class accepts its config as a plain mapping, keyword arguments, or one of these
dataclasses (``SyncSQLiteDatabase(SyncSQLiteDatabaseConfig(path="a.db"))``); the class's
``CONFIG_CLS`` names its own. Fields and defaults are 0.11.0's (its vector-search fields are
out of scope and absent). A field the backend here does not implement may stay at its default;
set to anything else, the backend refuses it with ``ConfigurationError`` naming the keys it
accepts, rather than ignoring it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from ..exceptions import ConfigurationError
from ..schema import DatabaseSchema

__all__ = [
    "AsyncDuckDBDatabaseConfig",
    "AsyncElasticsearchDatabaseConfig",
    "AsyncS3DatabaseConfig",
    "AsyncSQLiteDatabaseConfig",
    "DatabaseConfig",
    "DuckDBDatabaseConfigBase",
    "ElasticsearchDatabaseConfigBase",
    "FileDatabaseConfig",
    "MemoryDatabaseConfig",
    "PostgresDatabaseConfig",
    "S3DatabaseConfigBase",
    "SQLiteDatabaseConfigBase",
    "SyncDuckDBDatabaseConfig",
    "SyncElasticsearchDatabaseConfig",
    "SyncS3DatabaseConfig",
    "SyncSQLiteDatabaseConfig",
]


@dataclass
class DatabaseConfig:
    """Configuration every backend shares: an optional declarative ``schema``."""

    schema: DatabaseSchema | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a mapping of field names.

        Raises:
            ConfigurationError: (also a ValueError) for a key that is not a field, naming the
                accepted keys.
        """
        accepted = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in accepted:
                names = ", ".join(sorted(accepted))
                raise ConfigurationError(
                    key, f"{cls.__name__} has no such key; accepted keys: {names}"
                )
        values = dict(data)
        schema = values.get("schema")
        if isinstance(schema, Mapping):
            values["schema"] = DatabaseSchema.from_dict(schema)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every field by name (the schema as its dict form)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if isinstance(self.schema, DatabaseSchema):
            out["schema"] = self.schema.to_dict()
        return out


@dataclass
class MemoryDatabaseConfig(DatabaseConfig):
    """The memory backend: nothing to configure."""


@dataclass
class FileDatabaseConfig(DatabaseConfig):
    """The file backend: ``path`` (None: a temporary file), ``format``, ``compression``."""

    path: str | None = None
    format: str | None = None
    compression: str | None = None


@dataclass
class SQLiteDatabaseConfigBase(DatabaseConfig):
    """SQLite settings both faces share."""

    path: str = ":memory:"
    table: str = "records"
    timeout: float = 5.0
    journal_mode: str | None = None
    synchronous: str | None = None
    auto_create_table: bool = True


@dataclass
class SyncSQLiteDatabaseConfig(SQLiteDatabaseConfigBase):
    """The sync SQLite backend."""

    check_same_thread: bool = False


@dataclass
class AsyncSQLiteDatabaseConfig(SQLiteDatabaseConfigBase):
    """The async SQLite backend."""

    synchronous: str | None = "NORMAL"
    pool_size: int = 5


@dataclass
class PostgresDatabaseConfig(DatabaseConfig):
    """The PostgreSQL backend (both faces); ``connection_string`` is read before the parts."""

    host: str = "localhost"
    port: int = 5432
    database: str = "postgres"
    user: str = "postgres"
    password: str = ""
    ssl: Any = None
    command_timeout: float | None = None
    min_pool_size: int = 2
    max_pool_size: int = 5
    table: str = "records"
    schema_name: str = "public"
    ensure_database: bool = True
    auto_create_table: bool = True
    connection_string: str | None = None


@dataclass
class DuckDBDatabaseConfigBase(DatabaseConfig):
    """DuckDB settings both faces share."""

    path: str = ":memory:"
    table: str = "records"
    timeout: float = 5.0
    read_only: bool = False
    auto_create_table: bool = True


@dataclass
class SyncDuckDBDatabaseConfig(DuckDBDatabaseConfigBase):
    """The sync DuckDB backend."""


@dataclass
class AsyncDuckDBDatabaseConfig(DuckDBDatabaseConfigBase):
    """The async DuckDB backend."""

    max_workers: int = 4


@dataclass
class ElasticsearchDatabaseConfigBase(DatabaseConfig):
    """Elasticsearch settings both faces share."""

    index: str = "records"
    refresh: bool = True


@dataclass
class SyncElasticsearchDatabaseConfig(ElasticsearchDatabaseConfigBase):
    """The sync Elasticsearch backend."""

    host: str = "localhost"
    port: int = 9200
    mappings: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None


@dataclass
class AsyncElasticsearchDatabaseConfig(ElasticsearchDatabaseConfigBase):
    """The async Elasticsearch backend."""

    hosts: list[str] | None = None
    host: str | None = None
    port: int | None = None
    api_key: str | None = None
    basic_auth: Any = None
    verify_certs: bool = True
    ca_certs: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    ssl_show_warn: bool = True


@dataclass
class S3DatabaseConfigBase(DatabaseConfig):
    """S3 settings both faces share."""

    bucket: str | None = None
    region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    endpoint_url: str | None = None


@dataclass
class SyncS3DatabaseConfig(S3DatabaseConfigBase):
    """The sync S3 backend."""

    prefix: str = "records/"
    multipart_threshold: int = 8 * 1024 * 1024
    multipart_chunksize: int = 8 * 1024 * 1024
    max_pool_connections: int = 10
    max_attempts: int = 3
    retry_mode: str = "standard"
    extra_client_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class AsyncS3DatabaseConfig(S3DatabaseConfigBase):
    """The async S3 backend."""

    prefix: str = ""
