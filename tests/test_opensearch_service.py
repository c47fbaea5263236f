"""The OpenSearch node the search tests run against (tests/services/opensearch.py) does what
they rely on, checked over plain HTTP with no client library: mappings, ``_bulk``, ``_count``,
bool/wildcard queries, point in time + ``search_after`` over every document, aggregations, the
by-query APIs of the reindex module; the fault proxy in front of it; and a clean stop."""

from __future__ import annotations

import json
import os
import urllib.error
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from .http_proxy import TOO_MANY_REQUESTS, FaultProxy
from .services.opensearch import OpenSearchService, http_json, service, start_node

N = 1000
COLORS = ("red", "green", "blue", "Teal")


def doc(i: int) -> dict[str, Any]:
    return {
        "name": f"Item-{i:04d}",
        "color": COLORS[i % len(COLORS)],
        "n": i,
        "body": f"document number {i}",
        "ts": f"2024-01-{1 + i % 28:02d}T00:00:00Z",
    }


def bulk_body(index: str, ids: range) -> str:
    lines = []
    for i in ids:
        lines.append(json.dumps({"index": {"_index": index, "_id": f"d{i}"}}))
        lines.append(json.dumps(doc(i)))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def node() -> OpenSearchService:
    return service()


@pytest.fixture(scope="module")
def index(node: OpenSearchService) -> Iterator[str]:
    """An index with N documents, refreshed."""
    name = str(node.config()["index"])
    node.request(
        "PUT",
        f"/{name}",
        {
            "settings": {"number_of_shards": 1},
            "mappings": {
                "properties": {
                    "name": {"type": "keyword"},
                    "color": {"type": "keyword"},
                    "n": {"type": "long"},
                    "body": {"type": "text"},
                    "ts": {"type": "date"},
                }
            },
        },
    )
    answer = node.request("POST", "/_bulk", bulk_body(name, range(N)))
    assert answer["errors"] is False and len(answer["items"]) == N
    node.request("POST", f"/{name}/_refresh")
    yield name
    node.request("DELETE", f"/{name}")


def test_config_names_the_node_and_a_fresh_index(node: OpenSearchService) -> None:
    a, b = node.config(), node.config(refresh=True)
    assert a["hosts"] == [node.url] and b["refresh"] is True
    assert a["index"] != b["index"] and str(a["index"]).startswith("t_")
    assert http_json(node.url, "GET", "/")["version"]["number"]


def test_an_index_without_settings_is_green(node: OpenSearchService) -> None:
    if not node.owned:
        pytest.skip("DKDATA_ES_URL names the node: its replicas are its own")
    name = str(node.config()["index"])
    node.request("PUT", f"/{name}")
    try:
        health = node.request("GET", f"/_cluster/health/{name}?wait_for_status=green&timeout=20s")
        assert health["status"] == "green"
        replicas = node.request("GET", f"/{name}/_settings")[name]["settings"]["index"]
        assert replicas["number_of_replicas"] == "0"
    finally:
        node.request("DELETE", f"/{name}")


def test_bulk_count_and_bool_wildcard_search(node: OpenSearchService, index: str) -> None:
    assert node.request("GET", f"/{index}/_count")["count"] == N
    query = {
        "bool": {
            "filter": [
                {"range": {"n": {"gte": 100, "lt": 900}}},
                # Case-insensitive like the library's LIKE: "Teal" matches "teal".
                {"wildcard": {"color": {"value": "te*", "case_insensitive": True}}},
            ],
            "must_not": [{"term": {"name": "Item-0103"}}],
        }
    }
    got = node.request("POST", f"/{index}/_search", {"query": query, "size": N})
    ids = {h["_id"] for h in got["hits"]["hits"]}
    want = {f"d{i}" for i in range(100, 900) if COLORS[i % 4] == "Teal" and i != 103}
    assert ids == want
    assert node.request("POST", f"/{index}/_count", {"query": query})["count"] == len(want)


def test_point_in_time_search_after_pages_every_document(
    node: OpenSearchService, index: str
) -> None:
    pit = node.request("POST", f"/{index}/_search/point_in_time?keep_alive=1m")["pit_id"]
    seen: list[str] = []
    after: list[Any] | None = None
    pages = 0
    try:
        while True:
            body: dict[str, Any] = {
                "size": 128,
                "pit": {"id": pit, "keep_alive": "1m"},
                "sort": [{"n": "asc"}],
            }
            if after is not None:
                body["search_after"] = after
            hits = node.request("POST", "/_search", body)["hits"]["hits"]
            if not hits:
                break
            pages += 1
            seen.extend(h["_id"] for h in hits)
            after = hits[-1]["sort"]
    finally:
        node.request("DELETE", "/_search/point_in_time", {"pit_id": [pit]})
    assert seen == [f"d{i}" for i in range(N)], "every document once, in sort order"
    assert pages == -(-N // 128)


def test_terms_aggregation(node: OpenSearchService, index: str) -> None:
    body = {
        "size": 0,
        "aggs": {
            "by_color": {
                "terms": {"field": "color", "size": 10},
                "aggs": {"avg_n": {"avg": {"field": "n"}}},
            }
        },
    }
    buckets = node.request("POST", f"/{index}/_search", body)["aggregations"]["by_color"]
    got = {b["key"]: (b["doc_count"], b["avg_n"]["value"]) for b in buckets["buckets"]}
    counts = Counter(COLORS[i % 4] for i in range(N))
    sums = Counter[str]()
    for i in range(N):
        sums[COLORS[i % 4]] += i
    assert got == {c: (counts[c], sums[c] / counts[c]) for c in COLORS}


def test_modules_by_query_and_painless(node: OpenSearchService) -> None:
    name = str(node.config()["index"])
    node.request("POST", "/_bulk?refresh=true", bulk_body(name, range(10)))
    try:
        # reindex module + painless: a scripted update, then a delete, both by query.
        updated = node.request(
            "POST",
            f"/{name}/_update_by_query?refresh=true",
            {
                "query": {"range": {"n": {"lt": 5}}},
                "script": {"source": "ctx._source.n += params.k", "params": {"k": 100}},
            },
        )
        assert updated["updated"] == 5 and not updated["failures"]
        deleted = node.request(
            "POST",
            f"/{name}/_delete_by_query?refresh=true",
            {"query": {"range": {"n": {"gte": 100}}}},
        )
        assert deleted["deleted"] == 5
        assert node.request("GET", f"/{name}/_count")["count"] == 5
    finally:
        node.request("DELETE", f"/{name}")


def test_proxy_answers_429_then_passes_through(node: OpenSearchService) -> None:
    name = str(node.config()["index"])
    proxy = FaultProxy(node.url)
    try:
        proxy.reject(TOO_MANY_REQUESTS, times=1, where=lambda r: r.path == "/_bulk")
        body = bulk_body(name, range(50))
        with pytest.raises(urllib.error.HTTPError) as info:
            http_json(proxy.endpoint, "POST", "/_bulk?refresh=true", body)
        assert info.value.code == 429
        assert "es_rejected_execution_exception" in str(info.value.reason)
        assert not _exists(node, name), "the rejected bulk never reached the node"
        answer = http_json(proxy.endpoint, "POST", "/_bulk?refresh=true", body)
        assert answer["errors"] is False and len(answer["items"]) == 50
        bulk = lambda r: r.path == "/_bulk"  # noqa: E731
        assert proxy.count("reject", bulk) == 1 and proxy.count("forward", bulk) == 1
        assert node.request("GET", f"/{name}/_count")["count"] == 50
    finally:
        proxy.close()
        node.request("DELETE", f"/{name}")


def _exists(node: OpenSearchService, name: str) -> bool:
    try:
        node.request("HEAD", f"/{name}")
        return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def test_a_started_node_survives_a_kill_and_stops_cleanly(node: OpenSearchService) -> None:
    if not node.owned:
        pytest.skip("DKDATA_ES_URL names the node; this test checks nodes the tests start")
    own = start_node()
    root, proc = own.root, own._proc
    assert root is not None and proc is not None and os.path.isdir(root)
    assert own.started_in is not None and own.started_in > 0
    name = f"t_{uuid.uuid4().hex}"
    own.request("PUT", f"/{name}/_doc/1?refresh=true", {"v": 1})
    own.kill()
    assert proc.returncode == -9
    with pytest.raises(OSError):
        own.request("GET", "/", timeout=2)
    # Same ports, same data: an acknowledged write outlives the kill.
    own.restart()
    proc = own._proc
    assert proc is not None
    assert own.request("GET", f"/{name}/_doc/1")["_source"] == {"v": 1}
    own.stop()
    # The JVM exits 0 when the node's shutdown hook finishes first, else 143 (128 + SIGTERM),
    # the JVM's own status for a SIGTERM it handled; both are a clean close, a kill is -9.
    assert proc.returncode in (0, 143), "SIGTERM closes the node cleanly"
    assert not os.path.exists(root)
    assert own.root is None and not own.owned
