"""What the S3 backend does beyond the conformance suite: its config keys (0.11.0's spellings
included), ids that cannot be keys, the shared client, key-only counts and bounded streams."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataknobs_data import Query, Record, StreamConfig, SyncDatabase
from dataknobs_data.backends.s3 import AsyncS3Database, SyncS3Database
from dataknobs_data.backends.s3_async import AsyncS3Database as FromOldModule
from dataknobs_data.exceptions import ConfigurationError, SerializationError
from dataknobs_data.factory import async_database_factory, database_factory

from .http_proxy import FaultProxy
from .services.seaweedfs import SeaweedService, service


@pytest.fixture
def server() -> SeaweedService:
    return service()


@pytest.fixture
def proxy(server: SeaweedService) -> Iterator[FaultProxy]:
    p = FaultProxy(server.endpoint)
    yield p
    p.close()


def test_old_names_and_spellings_of_the_config(server: SeaweedService) -> None:
    assert FromOldModule is AsyncS3Database
    assert isinstance(database_factory.create(backend="s3", bucket="b-x"), SyncS3Database)
    assert isinstance(async_database_factory.create(backend="s3", bucket="b-x"), AsyncS3Database)
    plain = server.config()
    old_style = {
        "bucket": plain["bucket"],
        "prefix": str(plain["prefix"]).rstrip("/"),
        "endpoint_url": plain["endpoint_url"],
        "aws_access_key_id": plain["access_key_id"],
        "aws_secret_access_key": plain["secret_access_key"],
        "region_name": plain["region"],
        "max_workers": 8,
        "max_retries": 2,
        "retry_mode": "adaptive",
        "multipart_threshold": 1 << 20,
    }
    db = SyncDatabase.from_backend("s3", old_style)
    assert db.prefix == plain["prefix"]
    db.create(Record({"v": 1}, id="k"))
    assert db.pool_stats()["max_concurrency"] == 8
    again = SyncDatabase.from_backend("s3", plain)
    got = again.read("k")
    assert got is not None and got["v"] == 1, "the normalised prefix is the same place"
    db.close()
    again.close()


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({}, "bucket"),
        ({"bucket": "b-x", "max_concurrency": 0}, "max_concurrency"),
        ({"bucket": "b-x", "retry_mode": "eager"}, "retry_mode"),
        ({"bucket": "b-x", "request_timeout": -1}, "request_timeout"),
        ({"bucket": "b-x", "extra_client_kwargs": {"verify": False}}, "extra_client_kwargs"),
        ({"bucket": "Not_A_Bucket"}, "bucket"),
        ({"bucket": "b-x", "access_key_id": "only-the-id"}, "secret_access_key"),
    ],
)
def test_bad_config_is_a_configuration_error_naming_the_key(
    config: dict[str, object], key: str
) -> None:
    db = database_factory.create(backend="s3", **config)
    with pytest.raises(ConfigurationError) as info:
        db.connect()
    assert info.value.parameter == key


def test_ids_that_cannot_be_keys_are_refused_and_nothing_is_written(
    server: SeaweedService,
) -> None:
    db = SyncDatabase.from_backend("s3", server.config())
    for bad in ["a/b", "../up", "x..y", "tab\there", "z" * 513, ""]:
        with pytest.raises(SerializationError, match="cannot be an S3 key"):
            db.create_batch([Record({"v": 1}, id="fine"), Record({"v": 2}, id=bad)])
        assert db.read(bad) is None and db.exists(bad) is False
        assert db.delete(bad) is False and db.update(bad, Record({})) is False
    assert db.count() == 0
    db.create(Record({"v": 3}, id="héllo wörld.v2"))
    assert [r.id for r in db.all()] == ["héllo wörld.v2"]
    db.close()


def test_databases_of_one_config_share_one_client(server: SeaweedService) -> None:
    cfg = {**server.config(), "max_concurrency": 5}
    a = SyncDatabase.from_backend("s3", cfg)
    b = SyncDatabase.from_backend("s3", {**cfg, "prefix": "other/"})
    stats = a.pool_stats()
    assert stats["stores"] == 2 and stats["max_concurrency"] == 5
    assert server.secret_key not in stats["key"]
    b.close()
    assert a.pool_stats()["stores"] == 1
    a.close()


def test_count_without_a_filter_lists_keys_only(server: SeaweedService, proxy: FaultProxy) -> None:
    cfg = server.config()
    SyncDatabase.from_backend("s3", cfg).create_batch(
        [Record({"i": i}, id=f"c{i:04d}") for i in range(2500)]
    )
    db = SyncDatabase.from_backend("s3", {**cfg, "endpoint_url": proxy.endpoint})
    before = proxy.forwarded
    assert db.count() == 2500
    assert proxy.forwarded - before == 3, "three listing pages, no GET"
    assert db.count(Query().filter("i", "<", 10)) == 10
    db.close()


def test_stream_read_holds_a_bounded_window(server: SeaweedService, proxy: FaultProxy) -> None:
    cfg = server.config()
    SyncDatabase.from_backend("s3", cfg).create_batch(
        [Record({"i": i}, id=f"s{i:04d}") for i in range(3000)]
    )
    db = SyncDatabase.from_backend("s3", {**cfg, "endpoint_url": proxy.endpoint, "max_workers": 8})
    before = proxy.forwarded
    stream = iter(db.stream_read(None, StreamConfig(batch_size=10, prefetch=1)))
    assert next(stream).id == "s0000"
    time.sleep(0.5)
    # A listing page, the pages waiting in the channel and the GETs in flight: not 3,000.
    fetched = proxy.forwarded - before
    assert fetched < 60, fetched
    rest = [r.id for r in stream]
    assert len(rest) == 2999 and rest[-1] == "s2999"
    db.close()


def test_list_all_gives_every_id_in_key_order(tmp_path: Path) -> None:
    from .conftest import BACKENDS

    name, config = BACKENDS["s3"](tmp_path)
    db = database_factory.create(backend=name, **config)
    db.connect()
    try:
        db.create_batch([Record({"n": i}, id=f"id{i}") for i in (3, 1, 2)])
        assert db.list_all() == ["id1", "id2", "id3"]
    finally:
        db.close()
