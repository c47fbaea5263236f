"""What the Elasticsearch / OpenSearch backend does beyond the conformance suite: its config
keys (0.11.0's included), credentials on the wire, the shared client, exact and narrowed
counts, streams past the 10,000-hit window (and the point in time they close), documents
0.11.0 wrote, and the DSL builders of 0.11.0's ``elasticsearch_query``."""

from __future__ import annotations

import base64
import json
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest

from dataknobs_data import Filter, Operator, Query, Record, StreamConfig, SyncDatabase
from dataknobs_data.backends.elasticsearch import (
    AsyncElasticsearchDatabase,
    SyncElasticsearchDatabase,
)
from dataknobs_data.backends.elasticsearch_async import AsyncElasticsearchDatabase as FromOld
from dataknobs_data.backends.elasticsearch_mixins import (
    ElasticsearchIndexManager,
    es_version_token,
    parse_es_version_token,
)
from dataknobs_data.backends.elasticsearch_query import (
    build_bool_query,
    build_complex_es_query,
    build_filter_es_query,
)
from dataknobs_data.exceptions import (
    ConfigurationError,
    DatabaseConnectionError,
    SerializationError,
)
from dataknobs_data.factory import async_database_factory, database_factory
from dataknobs_data.query_logic import FilterCondition, LogicCondition, LogicOperator

from .http_proxy import FaultProxy
from .services.opensearch import OpenSearchService, service


@pytest.fixture
def node() -> OpenSearchService:
    return service()


@pytest.fixture
def proxy(node: OpenSearchService) -> Iterator[FaultProxy]:
    p = FaultProxy(node.url)
    yield p
    p.close()


#: The index mapping 0.11.0's backend creates (strings, numbers and dates mapped dynamically).
MAPPINGS_0_11_0 = {
    "properties": {
        "id": {"type": "keyword"},
        "data": {"type": "object", "properties": {}},
        "metadata": {"type": "object", "enabled": True},
        "created_at": {"type": "date"},
        "updated_at": {"type": "date"},
    }
}


def open_pits(node: OpenSearchService) -> int:
    """Point-in-time searches open on the node (OpenSearch lists them all)."""
    return len(node.request("GET", "/_search/point_in_time/_all").get("pits", []))


def test_names_aliases_and_config_keys(node: OpenSearchService) -> None:
    assert FromOld is AsyncElasticsearchDatabase
    for name in ("elasticsearch", "es", "opensearch"):
        assert isinstance(database_factory.create(backend=name), SyncElasticsearchDatabase)
        assert isinstance(async_database_factory.create(backend=name), AsyncElasticsearchDatabase)
    with pytest.raises(ConfigurationError, match="accepted keys"):
        database_factory.create(backend="es", nope=1)
    host, port = node.url.removeprefix("http://").split(":")
    index = node.config()["index"]
    # 0.11.0's sync form: host and port.
    db = SyncDatabase.from_backend(
        "elasticsearch", {"host": host, "port": int(port), "index": index}
    )
    db.create(Record({"v": 1}, id="k"))
    assert db.pool_stats()["flavour"] == "opensearch"
    again = SyncDatabase.from_backend("es", {"hosts": [node.url], "index": index})
    got = again.read("k")
    assert got is not None and got["v"] == 1
    db.close()
    again.close()
    for bad in (
        {"client_cert": "/c.pem"},
        {"basic_auth": "user"},
        {"index": "Upper"},
        {"bulk_docs": 0},
    ):
        with pytest.raises(ConfigurationError):
            SyncDatabase.from_backend("es", {**node.config(), **bad})


def test_credentials_go_on_every_request(node: OpenSearchService, proxy: FaultProxy) -> None:
    cfg = node.config(hosts=[proxy.endpoint], basic_auth=("ann", "s3cret"))
    db = SyncDatabase.from_backend("es", cfg)
    db.create(Record({"v": 1}, id="a"))
    want = "Basic " + base64.b64encode(b"ann:s3cret").decode()
    assert proxy.history and all(r.header("authorization") == want for r, _ in proxy.history)
    # Plain JSON (OpenSearch refuses Elasticsearch's compatibility media type).
    assert all(
        (r.header("content-type") or "application/json").startswith(
            ("application/json", "application/x-ndjson")
        )
        for r, _ in proxy.history
    )
    assert "s3cret" not in db.pool_stats()["key"]
    db.close()
    seen = len(proxy.history)
    keyed = SyncDatabase.from_backend("es", node.config(hosts=[proxy.endpoint], api_key="a2V5"))
    keyed.count()
    assert all(r.header("authorization") == "ApiKey a2V5" for r, _ in proxy.history[seen:])
    keyed.close()


def test_unreachable_node_is_a_connection_error() -> None:
    with pytest.raises(DatabaseConnectionError):
        SyncDatabase.from_backend(
            "es", {"hosts": ["http://127.0.0.1:1"], "max_retries": 1, "connect_timeout": 0.5}
        )


def test_a_reader_does_not_create_the_index(node: OpenSearchService) -> None:
    cfg = node.config(create_index=False)
    with pytest.raises(DatabaseConnectionError, match="does not exist"):
        SyncDatabase.from_backend("es", cfg)
    with pytest.raises(urllib.error.HTTPError):
        node.request("GET", f"/{cfg['index']}")


def test_stores_of_the_same_node_share_one_client(node: OpenSearchService) -> None:
    a = SyncDatabase.from_backend("es", node.config())
    b = SyncDatabase.from_backend("es", node.config())
    a.count()
    b.count()
    assert a.pool_stats()["key"] == b.pool_stats()["key"]
    assert a.pool_stats()["stores"] >= 2
    a.close()
    b.close()


def test_more_than_ten_thousand_hits_stream_and_the_pit_closes(node: OpenSearchService) -> None:
    db = SyncDatabase.from_backend("es", node.config())
    n = 12_345
    db.create_batch([Record({"i": i, "even": i % 2 == 0}, id=f"r{i:06d}") for i in range(n)])
    assert db.count() == n
    before = open_pits(node)
    stream = iter(db.stream_read(None, StreamConfig(batch_size=1000)))
    ids = [next(stream).id]
    assert open_pits(node) == before + 1, "the stream reads through a point in time"
    ids += [r.id for r in stream]
    assert ids == [f"r{i:06d}" for i in range(n)]
    assert open_pits(node) == before, "the stream closed its point in time"
    evens = list(db.stream_read(Query().filter("even", "=", True), StreamConfig(batch_size=777)))
    assert len(evens) == (n + 1) // 2
    assert len(db.search(Query().filter("i", ">=", 2_000))) == n - 2_000
    assert db.count(Query().filter("i", "<", 11_000).filter("even", "=", False)) == 5_500
    db.close()


def test_values_that_mappings_would_coerce_are_decided_exactly(node: OpenSearchService) -> None:
    db = SyncDatabase.from_backend("es", node.config())
    long_text = "A" + "x" * 9_000
    db.create_batch(
        [
            Record({"n": 5, "s": "Ann"}, id="a"),
            Record({"n": 5.7, "s": ["Ann", "Bo"]}, id="b"),
            Record({"n": "5", "s": long_text}, id="c"),
            Record({"n": 2**60 + 1, "s": "ann"}, id="d"),
        ]
    )
    assert [r.id for r in db.search(Query().filter("n", "=", 5))] == ["a"]
    assert [r.id for r in db.search(Query().filter("n", ">", 5.5))] == ["b", "d"]
    assert [r.id for r in db.search(Query().filter("n", "=", 2**60 + 1))] == ["d"]
    assert [r.id for r in db.search(Query().filter("s", "=", "Ann"))] == ["a"]
    assert [r.id for r in db.search(Query().filter("s", "starts_with", "Ax"))] == ["c"]
    assert [r.id for r in db.search(Query().filter("s", "like", "an%"))] == ["a", "d"]
    assert db.count(Query().filter("s", "!=", "Ann")) == 3
    db.close()


def same_as_memory(db: Any, records: list[Record], queries: list[Any]) -> None:
    """Each query's search and count on ``db`` equal the memory backend's over ``records``."""
    mem = SyncDatabase.from_backend("memory", {})
    mem.create_batch([r.copy() for r in records])
    for q in queries:
        assert [r.id for r in db.search(q)] == [r.id for r in mem.search(q)], q
        assert db.count(q) == mem.count(q), q
    mem.close()


def test_counts_of_str_equality_use_the_terms_and_still_decide_wide_records(
    node: OpenSearchService,
) -> None:
    # A record with more paths than the terms hold carries `*` only: `_count` cannot see it,
    # the evaluator must.
    wide = {f"k{i}": i for i in range(5000)}
    records = [
        Record({"city": "Denver"}, id="a"),
        Record({"city": "Cairo", "x": 1}, id="b"),
        Record({"city": ["Denver"]}, id="c"),
        Record({"city": None}, id="d"),
        Record({"c": {"city": "Denver"}}, id="e"),
        Record({**wide, "city": "Denver"}, id="f"),
        Record({**wide, "city": "Cairo"}, id="g"),
        Record({"city": "denver"}, id="h"),
    ]
    db = SyncDatabase.from_backend("es", node.config())
    db.create_batch(records)

    def logic(op: LogicOperator, *filters: Filter) -> Any:
        from dataknobs_data.query_logic import ComplexQuery

        return ComplexQuery(LogicCondition(op, [FilterCondition(f) for f in filters]))

    same_as_memory(
        db,
        records,
        [
            Query().filter("city", "=", "Denver"),
            Query().filter("city", "in", ["Cairo", "Denver", None]),
            Query().filter("city", "in", [None]),
            Query().filter("city", "exists"),
            Query().filter("city", "=", "Denver").filter("x", "exists"),
            logic(LogicOperator.NOT, Filter("city", "=", "Denver")),
            logic(LogicOperator.OR, Filter("city", "=", "Cairo"), Filter("id", "=", "a")),
            logic(LogicOperator.AND, Filter("city", "=", "Cairo"), Filter("id", "!=", "b")),
            Query().filter("c.city", "=", "Denver"),
        ],
    )
    db.close()


def test_sorted_limited_searches_fetch_their_window_and_equal_the_full_sort(
    node: OpenSearchService,
) -> None:
    from decimal import Decimal

    odd: list[Any] = [True, False, 2.5, -0.0, float("nan"), "old", None, 2**60, 2**60 + 1,
                      Decimal("7.25"), -3]  # fmt: skip
    records = []
    for i in range(300):
        data: dict[str, Any] = {"name": f"n{i % 7}", "city": ("Denver", "Cairo")[i % 2]}
        if i % 29 == 0:
            pass  # no age at all
        elif i < len(odd) * 3 and i % 3 == 1:
            data["age"] = odd[i // 3]
        else:
            data["age"] = (i * 37) % 90
        records.append(Record(data, id=f"r{i:03d}"))
    db = SyncDatabase.from_backend("es", node.config())
    db.create_batch(records)
    queries: list[Any] = []
    for desc in ("desc", "asc"):
        for limit, offset in ((1, 0), (5, 0), (40, 3), (250, 0), (400, 0)):
            base = Query().sort_by("age", desc).limit(limit).offset(offset)
            queries.append(base)
            queries.append(base.copy().filter("city", "=", "Denver"))
            queries.append(base.copy().sort_by("name", "asc"))
            # Not narrowed: the window counts documents the evaluator then refuses.
            queries.append(base.copy().filter("name", "regex", "^n[12]$"))
    same_as_memory(db, records, queries)
    db.close()


def test_documents_written_by_0_11_0_read_back(node: OpenSearchService) -> None:
    cfg = node.config()
    index = cfg["index"]
    # 0.11.0's own index mapping and document layout, written over plain REST.
    node.request("PUT", f"/{index}", {"mappings": MAPPINGS_0_11_0})
    doc = {
        "data": {"name": "Ann", "age": 41, "tags": ["x"]},
        "metadata": {"src": "old"},
        "id": "old1",
    }
    node.request("PUT", f"/{index}/_doc/old1?refresh=true", doc)
    db = SyncDatabase.from_backend("es", cfg)
    got = db.read("old1")
    assert got is not None and got.data == {"name": "Ann", "age": 41, "tags": ["x"]}
    assert got.metadata == {"src": "old"}
    assert [r.id for r in db.search(Query().filter("name", "=", "Ann"))] == ["old1"]
    db.close()


def test_any_record_shape_is_accepted_by_an_index_made_here(node: OpenSearchService) -> None:
    db = SyncDatabase.from_backend("es", node.config())
    # A dynamic mapping would refuse these together: a number then an object, a field and a
    # dotted key under it, an ISO string then text, an empty field name.
    shapes = [
        {"x": 1, "a": 1, "when": "2024-01-01", "": "e"},
        {"x": {"y": [1, {"z": None}]}, "a.b": 2, "when": "not a date"},
        {"x": "text", "a": {"b": 3}, "when": None},
    ]
    db.create_batch([Record(d, id=f"s{i}") for i, d in enumerate(shapes)])
    assert [r.data for r in db.all()] == shapes
    assert [r.id for r in db.search(Query().filter("a.b", "=", 2))] == ["s1"]
    assert [r.id for r in db.search(Query().filter("x", "exists"))] == ["s0", "s1", "s2"]
    mappings = ElasticsearchIndexManager.get_index_mappings()
    assert mappings["properties"]["data"] == {"type": "object", "enabled": False}
    db.close()


def test_ids_the_server_cannot_take_are_refused(node: OpenSearchService) -> None:
    db = SyncDatabase.from_backend("es", node.config())
    with pytest.raises(SerializationError, match="512 bytes"):
        db.create_batch([Record({"v": 1}, id="ok"), Record({"v": 2}, id="x" * 513)])
    assert db.count() == 0
    db.close()


def test_bulk_load_mode_turns_refresh_off_then_restores_it(node: OpenSearchService) -> None:
    cfg = node.config()
    db = SyncElasticsearchDatabase(cfg)
    db.connect()
    index = cfg["index"]
    with db.bulk_load():
        settings = node.request("GET", f"/{index}/_settings")
        assert settings[index]["settings"]["index"]["refresh_interval"] == "-1"
        db.create_batch([Record({"i": i}) for i in range(50)])
    after = node.request("GET", f"/{index}/_settings")
    assert "refresh_interval" not in after[index]["settings"]["index"]
    assert db.count() == 50
    db.close()


def dsl(x: Any) -> str:
    return json.dumps(x, sort_keys=True)


def test_query_builders_show_the_narrowing_clause() -> None:
    anyone = {"term": {"dk_terms": "*"}}
    assert build_filter_es_query(Filter("name", Operator.EQ, "Ann")) == {
        "bool": {
            "should": [{"term": {"dk_terms": "s\0name\0Ann"}}, anyone],
            "minimum_should_match": 1,
        }
    }
    assert build_filter_es_query(Filter("id", Operator.IN, ["a", "b"])) == {
        "ids": {"values": ["a", "b"]}
    }
    assert build_bool_query([]) == {"match_all": {}}
    both = build_bool_query([Filter("age", ">", 3), Filter("name", "regex", "x")])
    assert both["bool"]["should"][0]["range"]["dk_terms"]["lt"] == "n\0age\x01"
    either = build_complex_es_query(
        LogicCondition(
            LogicOperator.OR,
            [FilterCondition(Filter("id", "=", "a")), FilterCondition(Filter("id", "=", "b"))],
        )
    )
    assert dsl(either) == dsl(
        {
            "bool": {
                "should": [{"ids": {"values": ["a"]}}, {"ids": {"values": ["b"]}}],
                "minimum_should_match": 1,
            }
        }
    )
    # A negation of a superset narrows nothing.
    assert build_filter_es_query(Filter("name", "!=", "Ann")) == {"match_all": {}}


def test_version_tokens() -> None:
    assert parse_es_version_token(es_version_token(7, 2)) == (7, 2)
    with pytest.raises(ValueError):
        parse_es_version_token("7")
