"""S3 under faults, through a proxy on 127.0.0.1 in front of the real server (http_proxy.py): the
server going away mid-batch, a slow server, throttling, and malformed objects in the bucket.
Every test checks what the bucket holds against what was reported, record by record."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from dataknobs_data import Query, Record, StreamConfig, SyncDatabase
from dataknobs_data.exceptions import (
    DatabaseConnectionError,
    DatabaseOperationError,
    DataFormatError,
)
from dataknobs_data.factory import async_database_factory

from .http_proxy import FaultProxy
from .services.seaweedfs import SeaweedService, owned, service


@pytest.fixture
def server() -> SeaweedService:
    return service()


@pytest.fixture
def proxy(server: SeaweedService) -> Iterator[FaultProxy]:
    p = FaultProxy(server.endpoint)
    yield p
    p.close()


def through(proxy: FaultProxy, cfg: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """``cfg`` with the proxy as the endpoint; retries and timeouts kept short."""
    return {**cfg, "endpoint_url": proxy.endpoint, "max_retries": 2, **extra}


def stored(cfg: dict[str, Any]) -> dict[str, Record]:
    """What the bucket holds under the config's prefix, read straight from the server."""
    db = SyncDatabase.from_backend("s3", cfg)
    try:
        return {r.id: r for r in db.all() if r.id is not None}
    finally:
        db.close()


def batch(n: int, tag: str = "f") -> list[Record]:
    return [Record({"i": i, "tag": tag}, id=f"{tag}{i:04d}") for i in range(n)]


def test_server_gone_mid_batch_names_exactly_what_was_written(
    server: SeaweedService, proxy: FaultProxy
) -> None:
    cfg = server.config()
    db = SyncDatabase.from_backend("s3", through(proxy, cfg, connect_timeout=1))
    # The bucket check at open and one listing page (the batch's existence check) go through;
    # then 150 puts, then the "server" refuses and cuts every connection.
    proxy.fail_after = proxy.forwarded + 1 + 150
    records = batch(500)
    with pytest.raises(DatabaseOperationError) as info:
        db.create_batch(records)
    err = info.value
    written: list[str] = err.written  # type: ignore[attr-defined]
    not_written: list[str] = err.not_written  # type: ignore[attr-defined]
    assert len(written) == 150 and len(not_written) == 350
    assert sorted(written + not_written) == [r.id for r in records]
    assert "150 of 500 records written" in str(err)
    held = stored(cfg)
    assert set(held) == set(written), "the bucket must hold exactly the ids reported written"
    for rid in written:
        assert held[rid].data == {"i": int(rid[1:]), "tag": "f"}
    db.close()


async def test_server_gone_mid_delete_batch_names_what_was_removed(
    server: SeaweedService, proxy: FaultProxy
) -> None:
    cfg = server.config()
    direct = SyncDatabase.from_backend("s3", cfg)
    records = batch(2500, "d")
    direct.create_batch(records)
    direct.close()
    db = async_database_factory.create(backend="s3", **through(proxy, cfg, connect_timeout=1))
    await db.connect()
    # 2,500 HEADs, then the first multi-object delete of 1,000 keys; the next two are refused.
    proxy.fail_after = proxy.forwarded + 2500 + 1
    with pytest.raises(DatabaseOperationError) as info:
        await db.delete_batch([r.id for r in records])
    removed: list[str] = info.value.written  # type: ignore[attr-defined]
    kept: list[str] = info.value.not_written  # type: ignore[attr-defined]
    assert len(removed) == 1000 and len(kept) == 1500
    assert set(stored(cfg)) == set(kept)
    await db.close()


def test_slow_server_timeouts_are_honoured(server: SeaweedService, proxy: FaultProxy) -> None:
    cfg = server.config()
    db = SyncDatabase.from_backend("s3", through(proxy, cfg, request_timeout=0.3))
    db.create(Record({"v": 1}, id="slow"))
    proxy.delay = 3.0
    started = time.monotonic()
    with pytest.raises(DatabaseConnectionError, match="timed out"):
        db.read("slow")
    elapsed = time.monotonic() - started
    # Two attempts of 0.3 s and the backoff between them; never the server's 3 s each.
    assert 0.3 <= elapsed < 2.5, elapsed
    db.close()


def test_slow_stream_page_raises_timeout(server: SeaweedService, proxy: FaultProxy) -> None:
    cfg = server.config()
    SyncDatabase.from_backend("s3", cfg).create_batch(batch(5, "s"))
    db = SyncDatabase.from_backend("s3", through(proxy, cfg))
    db.connect()
    proxy.delay = 2.0
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        list(db.stream_read(None, StreamConfig(batch_size=2, timeout=0.4)))
    assert time.monotonic() - started < 1.5
    db.close()


def test_throttling_is_retried_without_duplicates_or_losses(
    server: SeaweedService, proxy: FaultProxy
) -> None:
    cfg = server.config()
    db = SyncDatabase.from_backend("s3", through(proxy, cfg, max_retries=5))
    proxy.throttle_every = 5
    records = batch(400, "t")
    assert db.create_batch(records) == [r.id for r in records]
    db.upsert_batch([Record({"i": -1, "tag": "t"}, id="t0000")])
    assert db.delete_batch(["t0001", "nope"]) == [True, False]
    assert db.count() == 399
    assert proxy.throttled > 50, proxy.throttled
    held = stored(cfg)
    assert sorted(held) == sorted(r.id for r in records if r.id != "t0001")
    assert held["t0000"].data == {"i": -1, "tag": "t"}
    assert all(held[r.id].data == r.data for r in records[2:] if r.id is not None)
    db.close()


def test_malformed_object_is_reported_by_key_and_never_skipped() -> None:
    own = owned()
    cfg = own.config()
    db = SyncDatabase.from_backend("s3", cfg)
    db.create_batch([Record({"v": 1}, id="a1"), Record({"v": 2}, id="c1")])
    own.put_raw(f"{cfg['prefix']}b-bad.json", b'{"id": "b-bad", "data": [1')
    key = f"s3://{cfg['bucket']}/{cfg['prefix']}b-bad.json"
    with pytest.raises(DataFormatError, match=key):
        db.search(Query())
    with pytest.raises(DataFormatError, match=key):
        db.count(Query().filter("v", ">", 0))
    seen: list[str | None] = []
    with pytest.raises(DataFormatError, match=key):
        for record in db.stream_read(None, StreamConfig(batch_size=1)):
            seen.append(record.id)
    assert seen == ["a1"], "records before the bad one come out; the scan stops loudly there"
    # The good records are untouched and still readable one by one.
    good = db.read("c1")
    assert good is not None and good["v"] == 2
    db.close()


def test_objects_written_by_the_pure_python_backend_read_back() -> None:
    own = owned()
    cfg = own.config()
    # What dataknobs-data 0.11.0's s3 backend puts: Record.to_dict(flatten=False) as JSON.
    legacy = (
        b'{"fields": {"name": {"name": "name", "value": "Ann", "type": "string", "metadata": {}},'
        b' "tags": {"name": "tags", "value": ["x"], "type": "json", "metadata": {}}},'
        b' "id": "old", "metadata": {"id": "old", "created_at": "2024-01-01T00:00:00+00:00"}}'
    )
    own.put_raw(f"{cfg['prefix']}old.json", legacy)
    db = SyncDatabase.from_backend("s3", cfg)
    got = db.read("old")
    assert got is not None and got.data == {"name": "Ann", "tags": ["x"]}
    assert [r.id for r in db.search(Query().filter("name", "=", "Ann"))] == ["old"]
    assert db.update("old", Record({"name": "Bo"})) is True
    again = db.read("old")
    assert again is not None and again.data == {"name": "Bo"}
    db.close()
