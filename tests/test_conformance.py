"""The conformance suite: API.md §3 to §4 and §7 against every backend of conftest.BACKENDS."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from dataknobs_data import (
    ComplexQuery,
    ConfigurationError,
    DuplicateRecordError,
    Filter,
    Operator,
    Query,
    QueryError,
    Record,
    SerializationError,
    StreamConfig,
    SyncDatabase,
)
from dataknobs_data.factory import database_factory
from dataknobs_data.query import apply_query
from dataknobs_data.query_logic import FilterCondition, LogicCondition, LogicOperator
from dataknobs_data.streaming import ConflictPolicy

from .conftest import PERSISTENT, BackendSpec

PEOPLE: list[dict[str, Any]] = [
    {"id": "p1", "name": "Alice", "age": 31, "city": "Paris", "score": 9.5, "tags": ["a", "b"]},
    {"id": "p2", "name": "bob", "age": 25, "city": "Berlin", "score": 7.0, "tags": ["b"]},
    {"id": "p3", "name": "Carol", "age": 47, "city": "Paris", "active": True},
    {"id": "p4", "name": "dave", "age": None, "city": "Rome", "score": 3},
    {"id": "p5", "name": "Eve", "age": 31, "city": "berlin", "nested": {"x": 1, "y": "z"}},
    {"id": "p6", "name": "Al_x%", "age": 19.5, "born": "2001-02-03T04:05:06Z"},
]


def people() -> list[Record]:
    records = []
    for item in PEOPLE:
        data = {k: v for k, v in item.items() if k != "id"}
        records.append(Record(data, metadata={"source": "test"}, id=item["id"]))
    return records


def ids(records: list[Record]) -> list[str | None]:
    return [r.id for r in records]


@pytest.fixture
def filled(db: SyncDatabase) -> SyncDatabase:
    db.create_batch(people())
    return db


def reopen(backend: BackendSpec) -> SyncDatabase:
    name, config = backend
    database = database_factory.create(backend=name, **config)
    database.connect()
    return database


# --- CRUD -------------------------------------------------------------------------------


def test_create_read_returns_an_independent_copy(db: SyncDatabase) -> None:
    original = Record({"name": "Ann", "age": 40})
    new_id = db.create(original)
    assert original.id is None, "create must not mutate the caller's record"
    got = db.read(new_id)
    assert got is not None and got.id == new_id
    assert got["name"] == "Ann" and got["age"] == 40
    got["name"] = "changed"
    again = db.read(new_id)
    assert again is not None and again["name"] == "Ann"


def test_create_uses_explicit_id_and_data_id_field(db: SyncDatabase) -> None:
    assert db.create(Record({"v": 1}, id="x1")) == "x1"
    assert db.create(Record({"id": "from-data", "v": 2})) == "from-data"
    record = db.read("from-data")
    assert record is not None and record["v"] == 2


def test_create_duplicate_raises_and_keeps_the_stored_record(db: SyncDatabase) -> None:
    db.create(Record({"v": 1}, id="k"))
    with pytest.raises(DuplicateRecordError, match="Record with ID 'k' already exists"):
        db.create(Record({"v": 2}, id="k"))
    kept = db.read("k")
    assert kept is not None and kept["v"] == 1


def test_read_missing_update_delete_exists(filled: SyncDatabase) -> None:
    db = filled
    assert db.read("nope") is None
    assert db.update("nope", Record({"a": 1})) is False
    assert db.update("p1", Record({"name": "Alicia"})) is True
    updated = db.read("p1")
    assert updated is not None and updated.data == {"name": "Alicia"}
    assert db.exists("p2") is True
    assert db.delete("p2") is True
    assert db.delete("p2") is False
    assert db.exists("p2") is False
    assert db.count() == len(PEOPLE) - 1


def test_update_keeps_storage_order(filled: SyncDatabase) -> None:
    filled.update("p2", Record({"name": "B"}))
    filled.upsert("p3", Record({"name": "C"}))
    assert ids(filled.all()) == [p["id"] for p in PEOPLE]


def test_upsert_both_forms(db: SyncDatabase) -> None:
    assert db.upsert("u1", Record({"v": 1})) == "u1"
    assert db.upsert("u1", Record({"v": 2})) == "u1"
    assert db.upsert(Record({"v": 3}, id="u2")) == "u2"
    got = db.read("u1")
    assert got is not None and got["v"] == 2
    assert db.count() == 2


def test_clear_and_all(filled: SyncDatabase) -> None:
    assert len(filled.all()) == len(PEOPLE)
    assert filled.clear() == len(PEOPLE)
    assert filled.count() == 0 and filled.all() == []


# --- batches -------------------------------------------------------------------------------


def test_batch_verbs_keep_input_order(filled: SyncDatabase) -> None:
    db = filled
    got = db.read_batch(["p3", "zz", "p1"])
    assert [r.id if r else None for r in got] == ["p3", None, "p1"]
    assert db.update_batch([("zz", Record({"a": 1})), ("p2", Record({"a": 2}))]) == [False, True]
    assert db.upsert_batch([Record({"a": 3}, id="p2"), Record({"a": 4}, id="new")]) == [
        "p2",
        "new",
    ]
    assert db.delete_batch(["new", "zz", "p1"]) == [True, False, True]
    p2 = db.read("p2")
    assert p2 is not None and p2.data == {"a": 3}


def test_create_batch_fails_closed_on_collision_with_storage(filled: SyncDatabase) -> None:
    batch = [Record({"v": 1}, id="fresh1"), Record({"v": 2}, id="p4"), Record({"v": 3})]
    with pytest.raises(DuplicateRecordError, match="'p4'"):
        filled.create_batch(batch)
    assert filled.count() == len(PEOPLE)
    assert filled.read("fresh1") is None


def test_create_batch_fails_closed_on_collision_inside_the_batch(db: SyncDatabase) -> None:
    batch = [Record({"v": 1}, id="a"), Record({"v": 2}, id="b"), Record({"v": 3}, id="a")]
    with pytest.raises(DuplicateRecordError, match="'a'"):
        db.create_batch(batch)
    assert db.count() == 0


def test_create_batch_of_100000(db: SyncDatabase, backend: BackendSpec) -> None:
    n = 100_000
    records = [Record({"n": i, "even": i % 2 == 0}, id=f"r{i:06d}") for i in range(n)]
    created = db.create_batch(records)
    assert len(created) == n and created[0] == "r000000"
    assert db.count() == n
    assert db.count(Query().filter("even", "=", True)) == n // 2
    if backend[0] != "memory":
        again = reopen(backend)
        try:
            assert again.count() == n
            last = again.read("r099999")
            assert last is not None and last["n"] == 99_999
        finally:
            again.close()


# --- queries -------------------------------------------------------------------------------

QUERIES: list[Query] = [
    Query().filter("city", Operator.EQ, "Paris"),
    Query().filter("city", "!=", "Paris"),
    Query().filter("age", ">", 30),
    Query().filter("age", ">=", 31),
    Query().filter("age", "<", 31),
    Query().filter("age", "<=", 25),
    Query().filter("city", "in", ["Paris", "Rome"]),
    Query().filter("city", "not_in", ["Paris", "Rome"]),
    Query().filter("name", "like", "a%"),
    Query().filter("name", "not_like", "%o%"),
    Query().filter("name", "like", "al\\_x%"),
    Query().filter("name", "like", "Al_x_"),
    Query().filter("name", "regex", "^[A-C]"),
    Query().filter("score", "exists"),
    Query().filter("score", "not_exists"),
    Query().filter("age", "between", [25, 31]),
    Query().filter("age", "not_between", [25, 31]),
    Query().filter("name", "starts_with", "Ca"),
    Query().filter("nested.x", "=", 1),
    Query().filter("metadata.source", "=", "test"),
    Query().filter("id", "in", ["p2", "p5"]),
    Query().filter("born", ">", dt.datetime(2000, 1, 1, tzinfo=dt.UTC)),
    Query().filter("tags", "=", ["b"]),
    Query().filter("age", "=", 31).filter("city", "=", "Paris"),
    Query().filter("age", "==", 31.0),
    Query().filter("active", "=", 1),
    Query().sort_by("age", "desc"),
    Query().sort_by("city").sort_by("age", "desc"),
    Query().sort_by("name").offset(2).limit(2),
    Query().sort_by("score", "asc").limit(0),
    Query().filter("age", "exists").sort_by("age").select("name"),
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(q.to_dict()) for q in QUERIES])
def test_search_matches_the_python_reference(filled: SyncDatabase, query: Query) -> None:
    expected = apply_query(people(), query)
    got = filled.search(query)
    assert ids(got) == ids(expected)
    assert [r.data for r in got] == [r.data for r in expected]
    assert filled.count(query) == len(apply_query(people(), _unshaped(query)))


def _unshaped(query: Query) -> Query:
    plain = query.copy()
    plain.clear_sort()
    plain.limit_value = None
    plain.offset_value = None
    return plain


def test_sort_puts_none_last_in_both_directions(filled: SyncDatabase) -> None:
    asc = filled.search(Query().sort_by("age"))
    desc = filled.search(Query().sort_by("age", "desc"))
    ages_asc = [r.get_value("age") for r in asc]
    ages_desc = [r.get_value("age") for r in desc]
    assert ages_asc[-1] is None and ages_desc[-1] is None
    assert ages_asc[:-1] == sorted(a for a in ages_asc if a is not None)
    assert ages_desc[:-1] == sorted((a for a in ages_desc if a is not None), reverse=True)


def test_complex_queries(filled: SyncDatabase) -> None:
    either = Query().or_(Filter("city", Operator.EQ, "Rome"), Filter("age", Operator.GT, 40))
    assert sorted(ids(filled.search(either))) == ["p3", "p4"]
    narrowed = (
        Query()
        .filter("city", "=", "Paris")
        .or_(Filter("age", Operator.GT, 40), Filter("name", Operator.EQ, "Alice"))
    )
    assert sorted(ids(filled.search(narrowed))) == ["p1", "p3"]
    negated = Query().filter("city", "exists").not_(Filter("city", Operator.EQ, "Paris"))
    assert sorted(ids(filled.search(negated))) == ["p2", "p4", "p5"]
    tree = ComplexQuery(
        condition=LogicCondition(
            LogicOperator.OR,
            [
                FilterCondition(Filter("city", Operator.LIKE, "BERLIN")),
                LogicCondition(
                    LogicOperator.NOT,
                    [FilterCondition(Filter("age", Operator.EXISTS))],
                ),
            ],
        )
    )
    assert ids(filled.search(tree)) == ["p2", "p4", "p5"]
    assert filled.count(tree) == 3


def test_unknown_operator_is_a_query_error(db: SyncDatabase) -> None:
    with pytest.raises(QueryError):
        Query().filter("a", "~~", 1)
    with pytest.raises(ValueError):
        Query().filter("a", "bogus", 1)


def test_invalid_regex_is_a_query_error(filled: SyncDatabase) -> None:
    with pytest.raises(QueryError):
        filled.search(Query().filter("name", "regex", "("))


def test_results_are_independent_copies(filled: SyncDatabase) -> None:
    first = filled.search(Query().filter("id", "=", "p1"))[0]
    first["tags"].append("mutated")
    second = filled.search(Query().filter("id", "=", "p1"))[0]
    assert second["tags"] == ["a", "b"]


# --- values -------------------------------------------------------------------------------

ODD_VALUES: dict[str, Any] = {
    "naive": dt.datetime(2024, 5, 1, 10, 30, 15, 123456),
    "aware": dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "utc": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    "day": dt.date(1999, 12, 31),
    "money": Decimal("1234.50"),
    "blob": b"\x00\x01binary\xff",
    "empty": "",
    "numeric_text": "42",
    "json_text": '{"a": 1}',
    "nothing": None,
    "big": 2**62,
    "ratio": 0.1,
    "flag": False,
    "nested": {"when": dt.date(2020, 2, 29), "items": [Decimal("0.1"), b"x", None]},
    "tag_like": {"$date": "not a tag"},
    "unicode": 'héllo \u2603\n\t,;"quoted"',
}


def test_every_value_type_round_trips(db: SyncDatabase, backend: BackendSpec) -> None:
    db.create(Record(dict(ODD_VALUES), metadata={"at": ODD_VALUES["aware"]}, id="odd"))
    got = db.read("odd")
    assert got is not None
    assert got.data == ODD_VALUES
    assert got.metadata == {"at": ODD_VALUES["aware"]}
    if backend[0] != "memory":
        db.close()
        again = reopen(backend)
        try:
            stored = again.read("odd")
            assert stored is not None and stored.data == ODD_VALUES
        finally:
            again.close()


def test_unserializable_value_is_rejected_and_nothing_stored(filled: SyncDatabase) -> None:
    bad = [Record({"ok": 1}, id="good"), Record({"tags": {1, 2}}, id="bad")]
    with pytest.raises(SerializationError, match="set"):
        filled.create_batch(bad)
    assert filled.count() == len(PEOPLE)
    with pytest.raises(SerializationError):
        filled.update("p1", Record({"obj": object()}))
    kept = filled.read("p1")
    assert kept is not None and kept["name"] == "Alice"


def test_reopen_sees_what_was_stored(
    filled: SyncDatabase, backend: BackendSpec, backend_id: str
) -> None:
    filled.delete("p6")
    filled.close()
    again = reopen(backend)
    try:
        if backend_id in PERSISTENT:
            assert ids(again.all()) == ["p1", "p2", "p3", "p4", "p5"]
            assert again.search(Query().filter("nested.y", "=", "z"))[0].id == "p5"
        else:
            assert again.count() == 0, "a new memory database starts empty"
    finally:
        again.close()


# --- configuration ------------------------------------------------------------------------


def test_unknown_config_key_names_the_accepted_keys(backend: BackendSpec) -> None:
    name, config = backend
    with pytest.raises(ConfigurationError, match="colour") as info:
        database_factory.create(backend=name, colour="blue", **config)
    assert isinstance(info.value, ValueError)


# --- streaming ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", QUERIES[:26], ids=[str(q.to_dict()) for q in QUERIES[:26]])
def test_stream_read_honours_every_operator(filled: SyncDatabase, query: Query) -> None:
    streamed = list(filled.stream_read(query, StreamConfig(batch_size=2, prefetch=1)))
    assert ids(streamed) == ids(filled.search(query))


def test_stream_read_early_exit_leaves_the_database_usable(filled: SyncDatabase) -> None:
    stream = filled.stream_read(None, StreamConfig(batch_size=1, prefetch=0))
    first = next(iter(stream))
    assert first.id == "p1"
    del stream
    filled.create(Record({"v": 1}, id="after"))
    assert filled.count() == len(PEOPLE) + 1


def test_stream_write_counts_batches_and_failures(filled: SyncDatabase) -> None:
    incoming = [Record({"v": i}, id=f"s{i}") for i in range(5)] + [Record({"v": 9}, id="p1")]
    incoming += [Record({"v": 10}, id="s10")]
    seen: list[tuple[str, str | None]] = []

    def keep_going(exc: Exception, record: Record) -> bool:
        seen.append((type(exc).__name__, record.id))
        return True

    result = filled.stream_write(incoming, StreamConfig(batch_size=3, on_error=keep_going))
    assert result.total_processed == 7
    assert result.successful == 6 and result.failed == 1
    assert result.failed_indices == [5]
    assert result.errors[0]["record_id"] == "p1" and result.errors[0]["index"] == 5
    assert seen == [("DuplicateRecordError", "p1")]
    assert filled.read("s10") is not None
    original = filled.read("p1")
    assert original is not None and original["name"] == "Alice"
    assert "success_rate=85.7%" in str(result)


def test_stream_write_stops_at_the_first_failure_without_on_error(db: SyncDatabase) -> None:
    db.create(Record({"v": 0}, id="b"))
    incoming = [Record({"v": 1}, id="a"), Record({"v": 2}, id="b"), Record({"v": 3}, id="c")]
    result = db.stream_write(incoming, StreamConfig(batch_size=10))
    assert result.failed == 1 and result.successful == 1
    assert db.read("c") is None


def test_stream_write_conflict_policies(filled: SyncDatabase) -> None:
    incoming = [Record({"name": "new"}, id="p1"), Record({"name": "n2"}, id="n2")]
    skip = filled.stream_write(incoming, StreamConfig(on_conflict=ConflictPolicy.SKIP))
    assert (skip.successful, skip.skipped, skip.failed) == (1, 1, 0)
    kept = filled.read("p1")
    assert kept is not None and kept["name"] == "Alice"
    upsert = filled.stream_write(incoming, StreamConfig(on_conflict=ConflictPolicy.UPSERT))
    assert upsert.successful == 2
    replaced = filled.read("p1")
    assert replaced is not None and replaced["name"] == "new"


def test_stream_transform_rewrites_matching_records(filled: SyncDatabase) -> None:
    def shout(record: Record) -> Record | None:
        if record["name"] == "bob":
            return None
        out = record.copy()
        out["name"] = str(record["name"]).upper()
        return out

    result = filled.stream_transform(Query().filter("city", "like", "%i%"), shout)
    assert result.skipped == 1 and result.successful == 3
    names = {r.id: r["name"] for r in filled.all()}
    assert names["p1"] == "ALICE" and names["p2"] == "bob" and names["p4"] == "dave"


def test_stream_config_validation() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        StreamConfig(batch_size=0)
    with pytest.raises(ValueError, match="prefetch"):
        StreamConfig(prefetch=-1)
    with pytest.raises(ValueError, match="timeout"):
        StreamConfig(timeout=0)


# ---------------------------------------------------------------- version tokens (0.11.0)


def test_conditional_writes_with_version_tokens(db: SyncDatabase) -> None:
    from dataknobs_data.exceptions import ConcurrencyError

    db.create(Record({"n": 1}, id="v"))
    token = db.get_version("v")
    assert token is not None and db.get_version("missing") is None
    assert db.update("v", Record({"n": 2}), expected_version=token)
    # The token read before that update is stale now: the write is refused, nothing changes.
    with pytest.raises(ConcurrencyError) as info:
        db.update("v", Record({"n": 3}), expected_version=token)
    assert info.value.context["id"] == "v"
    assert info.value.context["expected_version"] == token
    assert db.read("v")["n"] == 2  # type: ignore[index]
    with pytest.raises(ConcurrencyError):
        db.delete("v", expected_version=token)
    # A conditional upsert never inserts.
    with pytest.raises(ConcurrencyError):
        db.upsert("new", Record({"n": 0}), expected_version=token)
    assert not db.exists("new")
    assert not db.update("missing", Record({"n": 0}), expected_version=token)
    fresh = db.get_version("v")
    assert db.upsert("v", Record({"n": 4}), expected_version=fresh) == "v"
    assert db.delete("v", expected_version=db.get_version("v"))
    assert not db.exists("v")
