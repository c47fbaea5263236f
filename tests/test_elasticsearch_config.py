"""The Elasticsearch / OpenSearch backend's config checks (each wrong value names its key, no
server needed) and its async face's connect, bulk load and refresh against the test node."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from dataknobs_data import Record
from dataknobs_data.backends.elasticsearch import (
    AsyncElasticsearchDatabase,
    SyncElasticsearchDatabase,
    store_settings,
)
from dataknobs_data.exceptions import ConfigurationError

from .services.opensearch import OpenSearchService, service


@pytest.fixture
def node() -> OpenSearchService:
    return service()


def test_defaults() -> None:
    settings = store_settings({})
    assert settings["index"] == "records"
    assert settings["hosts"] == ["http://localhost:9200"]
    assert (settings["refresh"], settings["create_index"], settings["verify_certs"]) == (
        True,
        True,
        True,
    )
    assert (settings["bulk_bytes"], settings["bulk_docs"]) == (8 << 20, 10_000)
    assert (settings["max_concurrency"], settings["max_attempts"]) == (4, 5)
    assert (settings["connect_timeout"], settings["request_timeout"]) == (5.0, 60.0)
    assert settings["settings"] is None and settings["mappings"] is None


def test_values_given_as_text_are_read() -> None:
    settings = store_settings(
        {"bulk_docs": "500", "request_timeout": "2.5", "refresh": "false", "settings": {"a": 1}}
    )
    assert settings["bulk_docs"] == 500 and settings["request_timeout"] == 2.5
    assert settings["refresh"] is False and settings["settings"] == '{"a": 1}'


def test_an_api_key_pair_is_sent_as_elasticsearch_py_sends_it() -> None:
    settings = store_settings({"api_key": ("id1", "secret")})
    assert settings["api_key"] == base64.b64encode(b"id1:secret").decode()
    assert store_settings({"api_key": "a2V5"})["api_key"] == "a2V5"


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        ({"bulk_docs": "many"}, "bulk_docs", "expected a positive integer, got 'many'"),
        ({"bulk_bytes": True}, "bulk_bytes", "expected a positive integer, got True"),
        ({"max_concurrency": -1}, "max_concurrency", "expected a positive integer, got -1"),
        ({"connect_timeout": 0}, "connect_timeout", "positive number of seconds, got 0"),
        ({"request_timeout": "soon"}, "request_timeout", "positive number of seconds, got 'soon'"),
        ({"request_timeout": True}, "request_timeout", "positive number of seconds, got True"),
        ({"settings": "refresh=1s"}, "settings", "expected a mapping, got str"),
        ({"mappings": {"x": object()}}, "mappings", "not JSON"),
        ({"api_key": 123}, "api_key", "expected a string, got int"),
        ({"index": 5}, "index", "expected a string, got int"),
        ({"client_key": "/k.pem"}, "client_key", "client certificates are not supported"),
        ({"basic_auth": ("ann", 1)}, "basic_auth", "(user, password) pair of strings"),
    ],
)
def test_a_wrong_value_names_its_key(config: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        store_settings(config)
    assert caught.value.parameter == key
    assert message in str(caught.value)
    # The database's constructor does not check values; connecting does, with the same error.
    db = SyncElasticsearchDatabase(config)
    with pytest.raises(ConfigurationError, match=key):
        db.connect()


def test_properties(node: OpenSearchService) -> None:
    cfg = node.config(refresh=False)
    db = SyncElasticsearchDatabase(cfg)
    assert db.index_name == cfg["index"]
    assert db.hosts == [node.url]
    assert db.refresh is False
    assert SyncElasticsearchDatabase({}).index_name == "records"


def test_refresh_index_makes_writes_visible(node: OpenSearchService) -> None:
    db = SyncElasticsearchDatabase(node.config(refresh=False))
    db.connect()
    try:
        db.create_batch([Record({"i": i}, id=f"r{i}") for i in range(20)])
        db.refresh_index()
        assert db.count() == 20
    finally:
        db.close()


def test_async_connect_bulk_load_and_refresh(node: OpenSearchService) -> None:
    cfg = node.config(refresh=False)
    index = cfg["index"]

    async def scenario() -> None:
        db = AsyncElasticsearchDatabase(cfg)
        # Tasks connecting at once end with one store between them.
        await asyncio.gather(*(db.connect() for _ in range(4)))
        assert db.pool_stats()["flavour"] == "opensearch"
        try:
            async with db.bulk_load():
                settings = node.request("GET", f"/{index}/_settings")
                assert settings[index]["settings"]["index"]["refresh_interval"] == "-1"
                await db.create_batch([Record({"i": i}) for i in range(30)])
            after = node.request("GET", f"/{index}/_settings")
            assert "refresh_interval" not in after[index]["settings"]["index"]
            assert await db.count() == 30
            await db.create(Record({"i": 99}, id="late"))
            await db.refresh_index()
            assert await db.count() == 31
        finally:
            await db.close()
        # Connecting again after a close opens a fresh store.
        await db.connect()
        try:
            assert await db.exists("late")
        finally:
            await db.close()

    asyncio.run(scenario())
