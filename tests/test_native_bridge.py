"""The PyO3 bridge: runtime, async/sync plumbing, fork guard, value conversion, error mapping."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

native = pytest.importorskip("dataknobs_data._native")
exceptions = pytest.importorskip("dataknobs_data.exceptions")


def _memory(_tmp: Path) -> Any:
    return native.MemoryStore()


def _sqlite(tmp: Path) -> Any:
    return native.SqliteStore(str(tmp / "bridge.db"))


def _jsonl_gzip(tmp: Path) -> Any:
    return native.FileStore(tmp / "bridge.jsonl.gz", "jsonl", "gzip")


def _json(tmp: Path) -> Any:
    return native.FileStore(str(tmp / "bridge.json"), "json")


STORES = {"memory": _memory, "sqlite": _sqlite, "jsonl_gzip": _jsonl_gzip, "json": _json}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    s = STORES[request.param](tmp_path)
    yield s
    s.close()


def rows(n: int, prefix: str = "r") -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(f"{prefix}{i}", {"n": i, "name": f"item {i}"}, {"src": prefix}) for i in range(n)]


# --- runtime and async plumbing -------------------------------------------------------------


async def _call(make: Any) -> Any:
    return await make()


def test_one_store_across_two_event_loops(store: Any) -> None:
    # The awaitable binds to the loop running when it is created, hence the lambda.
    assert asyncio.run(_call(lambda: store.create_batch_async(rows(3)))) == ["r0", "r1", "r2"]
    # A second asyncio.run is a new event loop; the store must not be tied to the first.
    assert asyncio.run(_call(lambda: store.count_async(None))) == 3
    got = asyncio.run(_call(lambda: store.read_batch_async(["r2", "missing"])))
    assert got == [("r2", {"n": 2, "name": "item 2"}, {"src": "r"}), None]
    assert native.runtime_pid() == os.getpid()


async def test_async_verbs(store: Any) -> None:
    assert await store.create_missing_async(rows(2)) == [True, True]
    assert await store.create_missing_async(rows(3)) == [False, False, True]
    assert await store.upsert_batch_async([("r0", {"n": 10}, {})]) == ["r0"]
    assert await store.update_batch_async([("r1", {"n": 11}, {}), ("zz", {}, {})]) == [True, False]
    assert await store.exists_batch_async(["r0", "zz"]) == [True, False]
    assert [r[0] for r in await store.search_async(None)] == ["r0", "r1", "r2"]
    assert await store.delete_batch_async(["r2", "zz"]) == [True, False]
    assert await store.clear_async() == 2
    assert await store.count_async() == 0
    await store.close_async()
    with pytest.raises(exceptions.DatabaseError):
        await store.count_async()


async def test_cancelling_an_await_drops_the_rust_future() -> None:
    before = native._cancelled_count()
    task = asyncio.ensure_future(native._sleep_async(10))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0
    deadline = time.monotonic() + 5
    while native._cancelled_count() <= before and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert native._cancelled_count() > before


async def test_sleep_async_completes() -> None:
    before = native._cancelled_count()
    assert await native._sleep_async(0.01) is None
    assert native._cancelled_count() == before


def test_concurrent_sync_calls_from_threads(tmp_path: Path) -> None:
    store = native.SqliteStore(str(tmp_path / "threads.db"))
    per_thread = 50
    barrier = threading.Barrier(8)

    def work(t: int) -> tuple[list[str], int, list[bool]]:
        barrier.wait()
        ids = store.create_batch(rows(per_thread, prefix=f"t{t}-"))
        total = store.count(None)
        found = store.exists_batch(ids)
        return ids, total, found

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    for t, (ids, total, found) in enumerate(results):
        assert ids == [f"t{t}-{i}" for i in range(per_thread)]
        assert per_thread <= total <= 8 * per_thread
        assert all(found)
    assert store.count(None) == 8 * per_thread
    store.close()


def _wait_child(pid: int, limit: float) -> int | None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _fork_and_call(call: Any) -> tuple[int | None, float]:
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child: report through the exit code only
        code = 4
        try:
            call()
        except exceptions.DatabaseError as e:
            code = 0 if "after fork" in str(e) else 2
        except BaseException:
            code = 3
        os._exit(code)
    code = _wait_child(pid, 10.0)
    return code, time.monotonic() - started


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("kind", sorted(STORES))
def test_forked_child_fails_fast(tmp_path: Path, kind: str) -> None:
    store = STORES[kind](tmp_path)
    store.create_batch(rows(2))
    asyncio.run(_call(lambda: native._sleep_async(0)))  # make sure the runtime exists in the parent
    code, elapsed = _fork_and_call(lambda: store.count(None))
    assert code == 0, "child did not get DatabaseError('... after fork ...')"
    assert elapsed < 5
    code, _ = _fork_and_call(lambda: asyncio.run(_call(lambda: native._sleep_async(0))))
    assert code == 0
    assert store.count(None) == 2  # the parent is unaffected
    store.close()


# --- value conversion -----------------------------------------------------------------------

VALUES: dict[str, Any] = {
    "none": None,
    "true": True,
    "false": False,
    "int": 2**63 - 1,
    "neg": -(2**63),
    "float": 1.5,
    "str": "héllo ✓",
    "empty": "",
    "bytes": b"\x00\xffdata",
    "naive": datetime(2024, 5, 1, 10, 0, 0, 123456),
    "utc": datetime(2024, 5, 1, 10, 0, 0, 654321, tzinfo=UTC),
    "offset": datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    "west": datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-8))),
    "date": date(2024, 2, 29),
    "decimal": Decimal("1.10"),
    "list": [1, "a", [2.5, {"x": None}], b"b"],
    "nested": {"a": {"b": [date(2020, 1, 1), Decimal("-0.001")], "c": {}}, "d": []},
}


def _assert_same(got: Any, want: Any, where: str) -> None:
    assert type(got) is type(want), f"{where}: {type(got)} != {type(want)}"
    if isinstance(want, dict):
        assert list(got) == list(want), where
        for k in want:
            _assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same(g, w, f"{where}.{i}")
    elif isinstance(want, Decimal):
        assert str(got) == str(want), where
    elif isinstance(want, datetime):
        assert got == want, where
        assert got.utcoffset() == want.utcoffset(), where
        assert got.microsecond == want.microsecond, where
    elif isinstance(want, float) and want != want:
        assert got != got, f"{where}: {got} is not nan"
    else:
        assert got == want, where


def test_round_trip_every_value_type(store: Any) -> None:
    meta = {"when": VALUES["utc"], "tags": ["a", "b"], "price": Decimal("1.10")}
    store.create_batch([("v", VALUES, meta)])
    [(rid, data, metadata)] = store.read_batch(["v"])
    assert rid == "v"
    _assert_same(data, VALUES, "data")
    _assert_same(metadata, meta, "metadata")
    assert data["utc"].tzinfo is UTC
    [(_, data2, _)] = store.search(None)
    _assert_same(data2, VALUES, "search")


def test_inputs_read_back_canonically(store: Any) -> None:
    data = {"tuple": (1, (2, 3)), "ba": bytearray(b"xy"), "mv": memoryview(b"zz")}
    store.create_batch([("c", data, {})])
    [(_, got, _)] = store.read_batch(["c"])
    assert got == {"tuple": [1, [2, 3]], "ba": b"xy", "mv": b"zz"}


@pytest.mark.parametrize(
    ("data", "path", "type_name"),
    [
        ({"tags": [{1, 2}]}, "tags.0", "set"),
        ({"a": {"b": object()}}, "a.b", "object"),
        ({"big": 2**64}, "big", "int"),
        ({"c": 1j}, "c", "complex"),
    ],
)
def test_unserializable_value_names_the_field_and_stores_nothing(
    store: Any, data: dict[str, Any], path: str, type_name: str
) -> None:
    batch = [("ok", {"x": 1}, {}), ("bad", data, {})]
    with pytest.raises(exceptions.SerializationError) as info:
        store.create_batch(batch)
    assert f"'{path}'" in str(info.value)
    assert f"'{type_name}'" in str(info.value)
    with pytest.raises(exceptions.SerializationError):
        store.upsert_batch(batch)
    assert store.count(None) == 0


def test_non_str_dict_key_is_rejected(store: Any) -> None:
    with pytest.raises(exceptions.SerializationError) as info:
        store.create_batch([("k", {"m": {1: "x"}}, {})])
    assert "'m'" in str(info.value) and "'int'" in str(info.value)
    with pytest.raises(exceptions.SerializationError) as info:
        store.create_batch([("k", {"x": 1}, {"deep": [set()]})])
    assert "metadata.deep.0" in str(info.value)
    assert store.count() == 0


# --- errors, specs and cursors --------------------------------------------------------------


def test_duplicate_fails_closed(store: Any) -> None:
    store.create_batch(rows(2))
    with pytest.raises(exceptions.DuplicateRecordError) as info:
        store.create_batch([("new", {}, {}), ("r1", {}, {})])
    assert info.value.args[0] == "r1" or "r1" in str(info.value)
    with pytest.raises(exceptions.DuplicateRecordError):
        store.create_batch([("x", {}, {}), ("x", {}, {})])
    assert store.count() == 2


def test_bad_specs_raise_query_error(store: Any) -> None:
    with pytest.raises(exceptions.QueryError, match="bogus"):
        store.search({"where": ("filter", "n", "bogus", 1)})
    with pytest.raises(exceptions.QueryError):
        store.search({"limit": -1})
    with pytest.raises(exceptions.QueryError):
        store.count({"offset": -3})
    with pytest.raises(exceptions.QueryError):
        store.search({"where": ("xor", [])})


def test_closed_store_raises_database_error(store: Any) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(exceptions.DatabaseError):
        store.count(None)


def test_cursor_pages_sync(store: Any) -> None:
    store.create_batch(rows(5))
    cursor = store.stream(None, 2, 1)
    sizes = []
    while (page := cursor.next_page(timeout=5)) is not None:
        sizes.append(len(page))
    assert sizes == [2, 2, 1]
    assert cursor.next_page() is None
    cursor.close()
    cursor.close()


async def test_cursor_pages_async(store: Any) -> None:
    await store.create_batch_async(rows(5))
    cursor = await store.stream_async(None, batch_size=3, prefetch=2)
    ids = []
    while (page := await cursor.next_page_async(timeout=5)) is not None:
        ids.extend(r[0] for r in page.take())
        with pytest.raises(ValueError, match="already taken"):
            page.take()
    assert ids == [f"r{i}" for i in range(5)]
    cursor.close()


def test_cursor_takes_records_a_few_at_a_time(store: Any) -> None:
    from dataknobs_data import Record

    store.create_batch(rows(7))
    cursor = store.stream({"where": None, "sort": [("n", True)]}, 3, 1)
    first = cursor.take_records(Record, 2, timeout=5)
    assert [(r.id, r["n"], r.metadata) for r in first] == [
        ("r6", 6, {"src": "r"}),
        ("r5", 5, {"src": "r"}),
    ]
    # What take_records left of a page comes first from next_page, then the pages go on.
    assert [row[0] for row in cursor.next_page()] == ["r4"]
    rest = []
    while (chunk := cursor.take_records(Record, 5)) is not None:
        assert 0 < len(chunk) <= 5
        rest.extend(r.id for r in chunk)
    assert rest == ["r3", "r2", "r1", "r0"]
    assert cursor.take_records(Record, 5) is None and cursor.next_page() is None
    cursor.close()


def test_cursor_close_midway(store: Any) -> None:
    store.create_batch(rows(10))
    cursor = store.stream(None, batch_size=1, prefetch=1)
    assert cursor.next_page() is not None
    cursor.close()
    assert cursor.next_page() is None


def test_memory_store_len(tmp_path: Path) -> None:
    store = native.MemoryStore()
    assert len(store) == 0
    store.create_batch(rows(4))
    assert len(store) == 4


# --- module functions -----------------------------------------------------------------------


def test_tagged_json_round_trip() -> None:
    text = native.encode_json(VALUES)
    _assert_same(native.decode_json(text), VALUES, "json")
    assert native.encode_json({"$date": "x"}) != native.encode_json(date(2024, 1, 1))
    _assert_same(native.decode_json(native.encode_json({"$date": "x"})), {"$date": "x"}, "tag")
    with pytest.raises(exceptions.SerializationError, match="'set'"):
        native.encode_json({"s": {1}})


def test_matches_uses_the_rust_evaluator() -> None:
    row = ("id1", {"n": 5, "tags": ["a", "b"], "when": VALUES["utc"]}, {"src": "x"})
    assert native.matches(("filter", "n", ">", 3), row)
    assert not native.matches(("filter", "n", "<", 3), row)
    assert native.matches(("filter", "n", "in", {4, 5}), row)
    assert native.matches(
        ("and", [("filter", "tags.0", "=", "a"), ("not", ("filter", "id", "=", "x"))]), row
    )
    assert not native.matches(("or", []), row)
    assert native.matches(("filter", "metadata.src", "=", "x"), row)
    assert native.matches(None, row)
    with pytest.raises(exceptions.QueryError, match="nope"):
        native.matches(("filter", "n", "nope", 1), row)


def test_search_spec_shapes(store: Any) -> None:
    store.create_batch(rows(5))
    spec = {
        "where": ("or", [("filter", "n", ">=", 3), ("filter", "n", "=", 0)]),
        "sort": [("n", True)],
        "offset": 1,
        "limit": 2,
        "fields": ["n"],
    }
    assert store.search(spec) == [("r3", {"n": 3}, {"src": "r"}), ("r0", {"n": 0}, {"src": "r"})]
    # Lists where tuples are expected (a spec that went through JSON) mean the same.
    as_lists = {"where": ["filter", "n", "in", [1, 2]], "sort": [["n", False]]}
    assert [r[0] for r in store.search(as_lists)] == ["r1", "r2"]
    assert store.count({"where": ("not", ("filter", "n", "<", 2)), "limit": 1}) == 3
    assert store.search({"limit": 0}) == []


def test_records_from_rows_builds_what_from_row_builds() -> None:
    from dataknobs_data.records import Record

    # The native builder sets exactly these slots: a slot added to Record must be set there too.
    assert set(Record.__slots__) == {"_values", "_fields", "_id", "metadata"}
    rows = [("a", {"x": 1, "y": [1, 2]}, {"m": 1}), ("b", {}, {})]
    built = native.records_from_rows(Record, rows)
    assert len(built) == 2
    for rec, (rid, data, meta) in zip(built, rows, strict=True):
        ref = Record._from_row(rid, data, meta)
        assert type(rec) is Record
        for slot in Record.__slots__:
            assert getattr(rec, slot) == getattr(ref, slot), slot
        # Taken as they are, like _from_row: the rows were made for these records.
        assert rec._values is data and rec.metadata is meta
        assert rec == ref and rec.id == rid and rec.to_dict() == ref.to_dict()
    built[0]["x"] = 5
    assert built[0].get_value("x") == 5 and [f.name for f in built[0].fields.values()] == ["x", "y"]
    with pytest.raises(TypeError, match="tuple of 2"):
        native.records_from_rows(Record, [("a", {})])
    with pytest.raises(TypeError):
        native.records_from_rows(Record, ["not a row"])


def test_rows_with_many_distinct_keys_read_back_whole() -> None:
    # A batch shares one str per distinct key up to a cap; past it keys are made one by one.
    store = native.MemoryStore()
    wide = {f"k{i}": i for i in range(5000)}
    batch = [("wide", wide, {"m": 1}), *((f"r{i}", {"k1": i, "k4999": -i}, {}) for i in range(50))]
    store.create_batch(batch)
    got = {rid: (data, meta) for rid, data, meta in store.search(None)}
    assert got["wide"] == (wide, {"m": 1})
    assert list(got["wide"][0]) == list(wide)
    for i in range(50):
        assert got[f"r{i}"] == ({"k1": i, "k4999": -i}, {})


# Texts the direct JSON reader must read exactly as the reference (codec -> Value -> Python)
# does, or fail with the same typed error: edge cases the encoder never writes included.
_DIRECT_JSON_CASES = [
    '{"a": 1, "b": [1, 2.5, "x", null, true, false], "c": {"d": {}}}',
    '{"$date": "2024-01-02"}',
    '{"$datetime": "2024-01-02T03:04:05.000006+05:30"}',
    '{"$decimal": "1.50"}',
    '{"$bytes": "AP9k"}',
    '{"$float": "nan"}',
    '{"$float": "-inf"}',
    '{"$map": {"$date": "x"}}',
    '{"$map": {"$map": {"a": {"$date": "2024-01-02"}}}}',
    '{"$date": "2024-01-02", "x": {"$float": "inf"}}',
    '{"x": 1, "$date": "2024-01-02"}',
    '{"$other": 1}',
    '{"a": 1, "a": 2, "b": 3}',
    '{"k\\u00e9y\\n": "v\\ud83d\\ude00\\"", "": ""}',
    '{"big": 9223372036854775807, "small": -9223372036854775808, "f": 1e300, "g": -0.0}',
    '{"f": 0.1, "g": 1.0000000000000002, "h": 5e-324, "i": 10000000000000000.0}',
    '[{"$float": "inf"}, [], [[{"$date": "2024-01-02"}]]]',
    '"text"',
    "12",
    "null",
    # Errors: the reference's message and exception type.
    '{"too_big": 9223372036854775808}',
    '{"$float": "bogus"}',
    '{"$date": 5}',
    '{"$datetime": "not a date"}',
    '{"$decimal": "1.2.3"}',
    '{"$bytes": "***"}',
    '{"$map": 5}',
    '{"a": 1e400}',
    '{"a": 1,}',
    '{"a": 1} trailing',
    "",
]


@pytest.mark.parametrize("text", _DIRECT_JSON_CASES)
def test_direct_json_reading_agrees_with_the_reference(text: str) -> None:
    try:
        want = native._decode_json_reference(text)
    except Exception as exc:  # the reference's error is the expectation
        with pytest.raises(type(exc)) as got:
            native.decode_json(text)
        assert str(got.value) == str(exc)
        return
    _assert_same(native.decode_json(text), want, text)


def test_direct_json_reading_round_trips_every_value() -> None:
    text = native.encode_json({"values": VALUES, "nested": [VALUES, {"$date": "x"}]})
    _assert_same(native.decode_json(text), native._decode_json_reference(text), "round trip")
