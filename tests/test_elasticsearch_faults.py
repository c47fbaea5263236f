"""The search backend under faults, against real OpenSearch nodes (behind the HTTP proxy of
http_proxy.py where the test must know which requests reached the node): the node killed
mid-bulk, throttling (429), and a mapping conflict on one document. Every test checks what the
index holds against what was reported, record by record."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dataknobs_data import Record, SyncDatabase
from dataknobs_data.exceptions import DatabaseOperationError

from .http_proxy import TOO_MANY_REQUESTS, FaultProxy
from .services.opensearch import OpenSearchService, service, start_node
from .test_elasticsearch import MAPPINGS_0_11_0


@pytest.fixture
def node() -> OpenSearchService:
    return service()


@pytest.fixture
def private_node() -> Iterator[OpenSearchService]:
    """A node of this test's own, which it may kill (not the session's)."""
    own = start_node()
    yield own
    own.stop()


def stored(cfg: dict[str, Any]) -> dict[str, Record]:
    """What the index holds, read straight from the node."""
    db = SyncDatabase.from_backend("es", cfg)
    try:
        return {r.id: r for r in db.all() if r.id is not None}
    finally:
        db.close()


def batch(n: int, tag: str = "f") -> list[Record]:
    return [Record({"i": i, "tag": tag}, id=f"{tag}{i:05d}") for i in range(n)]


def bulk_requests(proxy: FaultProxy) -> int:
    return proxy.count("forward", where=lambda r: r.path.endswith("/_bulk"))


def test_node_killed_mid_bulk_reports_exactly_what_the_index_holds(
    private_node: OpenSearchService,
) -> None:
    cfg = private_node.config()
    proxy = FaultProxy(private_node.url)
    # Each request waits in the proxy before it is forwarded, so the kill below lands while a
    # bulk request waits there: the ones before it were answered, it and the rest never reach
    # a live node.
    proxy.delay = 0.25
    db = SyncDatabase.from_backend(
        "es",
        {
            **cfg,
            "hosts": [proxy.endpoint],
            "bulk_docs": 100,
            "max_concurrency": 1,
            "max_retries": 2,
        },
    )
    records = batch(3_000)

    def kill_after_ten_bulks() -> None:
        while bulk_requests(proxy) < 10:
            time.sleep(0.01)
        private_node.kill()

    killer = threading.Thread(target=kill_after_ten_bulks)
    killer.start()
    with pytest.raises(DatabaseOperationError) as info:
        db.create_batch(records)
    killer.join()
    err = info.value
    written: list[str] = err.written  # type: ignore[attr-defined]
    not_written: list[str] = err.not_written  # type: ignore[attr-defined]
    assert sorted(written + not_written) == [r.id for r in records]
    assert 0 < len(written) < len(records)
    assert f"{len(written)} of 3000 records written" in str(err)
    db.close()
    proxy.close()
    private_node.restart()
    held = stored(cfg)
    assert set(held) == set(written), "the index must hold exactly the ids reported written"
    for rid in written:
        assert held[rid].data == {"i": int(rid[1:]), "tag": "f"}


def test_throttling_is_retried_without_duplicates_or_losses(node: OpenSearchService) -> None:
    cfg = node.config()
    proxy = FaultProxy(node.url)
    proxy.throttle_every = 3
    proxy.throttle_reply = TOO_MANY_REQUESTS
    db = SyncDatabase.from_backend(
        "es", {**cfg, "hosts": [proxy.endpoint], "bulk_docs": 50, "max_retries": 6}
    )
    records = batch(2_000, "t")
    assert db.create_batch(records) == [r.id for r in records]
    db.upsert_batch([Record({"i": -1, "tag": "t"}, id="t00000")])
    assert db.delete_batch(["t00001", "nope"]) == [True, False]
    assert db.count() == 1_999
    assert proxy.throttled > 10, proxy.throttled
    assert db.pool_stats()["retries"] >= proxy.throttled
    held = stored(cfg)
    assert sorted(held) == sorted(r.id for r in records if r.id != "t00001")
    assert held["t00000"].data == {"i": -1, "tag": "t"}
    assert all(held[r.id].data == r.data for r in records[2:] if r.id is not None)
    db.close()
    proxy.close()


def test_a_mapping_conflict_fails_that_record_only(node: OpenSearchService) -> None:
    cfg = node.config()
    # An index 0.11.0 made maps data fields dynamically: a number, then an object, conflict.
    # (An index made here stores data unindexed and takes any shape.)
    node.request("PUT", f"/{cfg['index']}", {"mappings": MAPPINGS_0_11_0})
    db = SyncDatabase.from_backend("es", cfg)
    db.create(Record({"n": 1}, id="first"))
    records = [Record({"n": i}, id=f"m{i}") for i in range(5)]
    records[2] = Record({"n": {"not": "a number"}}, id="m2")
    with pytest.raises(DatabaseOperationError) as info:
        db.create_batch(records)
    err = info.value
    assert err.not_written == ["m2"]  # type: ignore[attr-defined]
    assert err.written == ["m0", "m1", "m3", "m4"]  # type: ignore[attr-defined]
    assert "mapper_parsing_exception" in str(err) or "failed to parse" in str(err)
    assert sorted(stored(cfg)) == ["first", "m0", "m1", "m3", "m4"]
    # The same through an upsert: the other records are replaced, that one fails.
    with pytest.raises(DatabaseOperationError) as info:
        db.upsert_batch([Record({"n": 10}, id="m0"), Record({"n": [{"x": 1}]}, id="m9")])
    assert info.value.not_written == ["m9"]  # type: ignore[attr-defined]
    got = db.read("m0")
    assert got is not None and got["n"] == 10
    db.close()
