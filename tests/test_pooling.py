"""The pooling package: pool settings as 0.11.0 names them, and the user-pool manager."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dataknobs_data.exceptions import ConfigurationError
from dataknobs_data.pooling import (
    AwsSessionConfig,
    ConnectionPoolManager,
    ElasticsearchPoolConfig,
    PostgresPoolConfig,
    S3PoolConfig,
    S3SessionConfig,
)
from dataknobs_data.pooling.base import BasePoolConfig


def test_postgres_pool_config_defaults_and_dsn() -> None:
    plain = PostgresPoolConfig()
    assert (plain.host, plain.port, plain.database, plain.user, plain.password) == (
        "localhost",
        5432,
        "postgres",
        "postgres",
        "",
    )
    assert (plain.min_size, plain.max_size) == (2, 5)
    cfg = PostgresPoolConfig.from_dict(
        {"connection_string": "postgresql://ann:p%40ss@db.example:6543/sales", "max_pool_size": 9}
    )
    assert (cfg.host, cfg.port, cfg.database, cfg.user, cfg.password) == (
        "db.example",
        6543,
        "sales",
        "ann",
        "p@ss",
    )
    assert cfg.max_size == 9
    assert cfg.to_connection_string() == "postgresql://ann:p%40ss@db.example:6543/sales"
    assert "p@ss" not in repr(cfg.to_hash_key()) and "p@ss" not in repr(cfg)
    # Explicit keys win over the connection string's parts.
    assert (
        PostgresPoolConfig.from_dict({"connection_string": "postgresql://a@h/d", "host": "x"}).host
        == "x"
    )
    with pytest.raises(ConfigurationError, match="port"):
        PostgresPoolConfig.from_dict({"port": "many"})


def test_s3_pool_config() -> None:
    cfg = S3PoolConfig.from_dict(
        {
            "bucket": "b",
            "prefix": "p/",
            "region": "eu-west-1",
            "access_key_id": "AK",
            "secret_access_key": "SK",
        }
    )
    assert (cfg.bucket, cfg.prefix, cfg.region_name, cfg.aws_access_key_id) == (
        "b",
        "p/",
        "eu-west-1",
        "AK",
    )
    assert cfg.to_connection_string() == "s3://b/p/"
    assert "SK" not in repr(cfg.to_hash_key()) and "SK" not in repr(cfg)
    session = cfg.to_session_config()
    assert isinstance(session, AwsSessionConfig) and session.aws_secret_access_key == "SK"
    assert S3SessionConfig is AwsSessionConfig
    assert AwsSessionConfig.from_dict({"max_retries": 7}).max_attempts == 7
    with pytest.raises(ConfigurationError, match="bucket"):
        S3PoolConfig.from_dict({"prefix": "x"})


def test_elasticsearch_pool_config() -> None:
    assert ElasticsearchPoolConfig().hosts == ["http://localhost:9200"]
    assert ElasticsearchPoolConfig.from_dict({"host": "es1", "port": 9201}).hosts == [
        "http://es1:9201"
    ]
    assert ElasticsearchPoolConfig.from_dict({"host": "https://es2"}).hosts == ["https://es2:9200"]
    cfg = ElasticsearchPoolConfig.from_dict(
        {"hosts": ["http://a:1", "http://b:2"], "index": "docs", "basic_auth": ("u", "pw")}
    )
    assert cfg.to_connection_string() == "http://a:1;http://b:2"
    assert "pw" not in repr(cfg.to_hash_key()) and cfg.to_hash_key()[2] == "docs"


class _Config(BasePoolConfig):
    def __init__(self, name: str) -> None:
        self.name = name

    def to_connection_string(self) -> str:
        return f"fake://{self.name}"

    def to_hash_key(self) -> tuple[Any, ...]:
        return ("fake", self.name)


class _Pool:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False
        self.healthy = True

    async def acquire(self) -> str:
        return self.name

    async def close(self) -> None:
        self.closed = True


async def test_connection_pool_manager() -> None:
    manager: ConnectionPoolManager[_Pool] = ConnectionPoolManager()
    made: list[_Pool] = []

    async def create(config: BasePoolConfig) -> _Pool:
        assert isinstance(config, _Config)
        made.append(_Pool(config.name))
        return made[-1]

    async def validate(pool: _Pool) -> None:
        if not pool.healthy:
            raise RuntimeError("dead")

    a = await manager.get_pool(_Config("a"), create, validate)
    assert await manager.get_pool(_Config("a"), create, validate) is a
    assert manager.get_pool_count() == 1 and len(made) == 1
    a.healthy = False
    fresh = await manager.get_pool(_Config("a"), create, validate)
    assert fresh is not a and a.closed and len(made) == 2
    await manager.release_pool(_Config("a"))
    assert not fresh.closed  # two more hand-outs are still out
    await manager.release_pool(_Config("a"))
    await manager.release_pool(_Config("a"))
    assert fresh.closed and manager.get_pool_count() == 0
    b = await manager.get_pool(_Config("b"), create)
    assert next(iter(manager.get_pool_info().values()))["holders"] == 1
    assert await manager.remove_pool(_Config("b")) and b.closed
    assert not await manager.remove_pool(_Config("b"))
    c = await manager.get_pool(_Config("c"), create)
    await manager.close_all()
    assert c.closed and manager.get_pool_count() == 0


def test_pools_are_per_event_loop() -> None:
    manager: ConnectionPoolManager[_Pool] = ConnectionPoolManager()

    async def create(config: BasePoolConfig) -> _Pool:
        return _Pool("x")

    first = asyncio.run(manager.get_pool(_Config("x"), create))
    second = asyncio.run(manager.get_pool(_Config("x"), create))
    assert first is not second and manager.get_pool_count() == 2
