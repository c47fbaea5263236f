"""StreamConfig validation, StreamResult bookkeeping and StreamProcessor helpers (API.md §7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from dataknobs_data.exceptions import DuplicateRecordError
from dataknobs_data.records import Record
from dataknobs_data.streaming import ConflictPolicy, StreamConfig, StreamProcessor, StreamResult


def test_stream_config_defaults() -> None:
    cfg = StreamConfig()
    assert (cfg.batch_size, cfg.prefetch, cfg.timeout, cfg.on_error) == (1000, 2, None, None)
    assert cfg.on_conflict is ConflictPolicy.INSERT
    assert StreamConfig(on_conflict="upsert").on_conflict is ConflictPolicy.UPSERT  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -5}, "batch_size"),
        ({"prefetch": -1}, "prefetch"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.5}, "timeout"),
        ({"on_conflict": "merge"}, "on_conflict"),
    ],
)
def test_stream_config_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        StreamConfig(**kwargs)  # type: ignore[arg-type]


def test_stream_config_accepts_edge_values() -> None:
    assert StreamConfig(batch_size=1, prefetch=0, timeout=0.01).prefetch == 0


def test_conflict_policy_values() -> None:
    assert [p.value for p in ConflictPolicy] == ["insert", "upsert", "skip"]


def test_stream_result_success_rate_and_str() -> None:
    empty = StreamResult()
    assert empty.success_rate == 100.0
    assert str(empty) == (
        "StreamResult(processed=0, successful=0, failed=0, success_rate=100.0%, duration=0.00s)"
    )
    r = StreamResult(total_processed=7, successful=6, failed=1, duration=1.234)
    assert r.success_rate == pytest.approx(600 / 7)
    assert str(r) == (
        "StreamResult(processed=7, successful=6, failed=1, success_rate=85.7%, duration=1.23s)"
    )


def test_add_error_records_details() -> None:
    r = StreamResult()
    r.add_error("r1", KeyError("nope"), 4)
    r.add_error(None, "plain message")
    assert r.errors == [
        {"record_id": "r1", "error": "'nope'", "type": "KeyError", "index": 4},
        {"record_id": None, "error": "plain message", "type": "Error", "index": None},
    ]
    assert r.failed_indices == [4]
    assert r.failed == 0  # counters belong to the caller


def test_merge_adds_everything() -> None:
    a = StreamResult(total_processed=3, successful=2, failed=1, skipped=0, duration=1.0,
                     total_batches=1)  # fmt: skip
    a.add_error("x", ValueError("bad"), 2)
    b = StreamResult(total_processed=4, successful=3, failed=0, skipped=1, duration=0.5,
                     total_batches=2)  # fmt: skip
    b.add_error("y", ValueError("worse"), 6)
    merged = a.merge(b)
    assert merged is a
    assert (a.total_processed, a.successful, a.failed, a.skipped) == (7, 5, 1, 1)
    assert a.duration == 1.5 and a.total_batches == 3
    assert [e["record_id"] for e in a.errors] == ["x", "y"]
    assert a.failed_indices == [2, 6]


def test_batch_filter_transform() -> None:
    batches = list(StreamProcessor.batch_iterator(range(7), 3))
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(StreamProcessor.batch_iterator([], 3)) == []
    assert list(StreamProcessor.filter_stream(range(6), lambda x: x % 2 == 0)) == [0, 2, 4]
    out = StreamProcessor.transform_stream(range(5), lambda x: None if x == 2 else x * 10)
    assert list(out) == [0, 10, 30, 40]
    with pytest.raises(ValueError, match="batch_size"):
        list(StreamProcessor.batch_iterator(range(3), 0))


def test_helpers_are_lazy() -> None:
    def endless() -> object:
        n = 0
        while True:
            yield n
            n += 1

    batches = StreamProcessor.batch_iterator(endless(), 2)  # type: ignore[call-overload]
    assert next(batches) == [0, 1]


async def agen(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def test_async_twins_accept_sync_and_async_iterables() -> None:
    got = [b async for b in StreamProcessor.async_batch_iterator(agen(5), 2)]
    assert got == [[0, 1], [2, 3], [4]]
    got = [b async for b in StreamProcessor.async_batch_iterator(range(3), 5)]
    assert got == [[0, 1, 2]]

    async def is_odd(x: int) -> bool:
        return x % 2 == 1

    odds = [x async for x in StreamProcessor.async_filter_stream(agen(6), is_odd)]
    assert odds == [1, 3, 5]
    evens = [x async for x in StreamProcessor.async_filter_stream(range(5), lambda x: x % 2 == 0)]
    assert evens == [0, 2, 4]

    async def double(x: int) -> int | None:
        return None if x == 0 else x * 2

    doubled = [x async for x in StreamProcessor.async_transform_stream(agen(3), double)]
    assert doubled == [2, 4]
    plus = [x async for x in StreamProcessor.async_transform_stream([1, 2], lambda x: x + 1)]
    assert plus == [2, 3]


# ----------------------------------------- batch-first writes with per-record fallback (0.11.0)


def _store() -> tuple[dict[str, Record], Any, Any]:
    stored: dict[str, Record] = {}

    def single(record: Record) -> str:
        if record.id in stored:
            raise DuplicateRecordError(str(record.id))
        if record.get("bad"):
            raise ValueError(f"bad record {record.id}")
        stored[str(record.id)] = record
        return str(record.id)

    def bulk(batch: list[Record]) -> list[str]:
        if any(r.id in stored or r.get("bad") for r in batch):
            raise ValueError("batch refused")
        return [single(r) for r in batch]

    return stored, single, bulk


def test_drive_writes_the_batch_in_one_call() -> None:
    from dataknobs_data.streaming import StreamResultAccountant, drive_batch_with_fallback

    stored, single, bulk = _store()
    result = StreamResult()
    batch = [Record({"n": i}, id=f"r{i}") for i in range(3)]
    assert drive_batch_with_fallback(
        batch, bulk, single, StreamResultAccountant(result, StreamConfig())
    )
    assert (result.total_batches, result.successful, result.failed) == (1, 3, 0)
    assert set(stored) == {"r0", "r1", "r2"}


def test_drive_falls_back_record_by_record_with_global_indices() -> None:
    from dataknobs_data.streaming import process_batch_with_fallback

    stored, single, bulk = _store()
    stored["r1"] = Record({}, id="r1")
    batch = [Record({"n": 0}, id="r0"), Record({}, id="r1"), Record({"bad": True}, id="r2")]
    result = StreamResult()
    cfg = StreamConfig(batch_size=3, on_error=lambda exc, rec: True)
    assert process_batch_with_fallback(batch, bulk, single, result, cfg, batch_index=2)
    assert (result.successful, result.failed) == (1, 2)
    assert [e["index"] for e in result.errors] == [7, 8]
    # Skip-on-duplicate counts the existing id as skipped, not failed.
    skipped = StreamResult()
    process_batch_with_fallback(
        [Record({}, id="r1")], None, single, skipped, StreamConfig(), skip_on_duplicate=True
    )
    assert (skipped.skipped, skipped.failed) == (1, 0)


def test_drive_stops_without_an_error_handler() -> None:
    from dataknobs_data.streaming import run_stream_write

    stored, single, bulk = _store()
    records = [Record({"bad": i == 1}, id=f"r{i}") for i in range(5)]
    result = run_stream_write(
        iter(records),
        batch_write_func=bulk,
        single_write_func=single,
        skip_on_duplicate=False,
        config=StreamConfig(batch_size=2),
    )
    # The first batch fails in bulk, r0 is written alone, r1 fails: the write stops there.
    assert (result.successful, result.failed, result.total_processed) == (1, 1, 2)
    assert set(stored) == {"r0"}


def test_shortfall_is_one_aggregate_failure() -> None:
    from dataknobs_data.exceptions import OperationError
    from dataknobs_data.streaming import StreamResultAccountant, build_shortfall_error

    error = build_shortfall_error(2, 5)
    assert isinstance(error, OperationError)
    assert str(error) == "batch write confirmed 2 of 5 records; 3 failed to write"
    result = StreamResult()
    quits: list[bool] = []
    accountant = StreamResultAccountant(result, StreamConfig(), lambda: quits.append(True))
    batch = [Record({}, id=str(i)) for i in range(5)]
    assert not accountant.on_batch_success(batch, ["0", "1"])
    assert (result.successful, result.failed, len(result.errors), quits) == (2, 3, 1, [True])


async def test_async_drive_and_run() -> None:
    from dataknobs_data.streaming import async_run_stream_write

    stored, single, bulk = _store()

    async def abulk(batch: list[Record]) -> list[str]:
        return bulk(batch)

    records = [Record({"n": i}, id=f"a{i}") for i in range(5)]
    result = await async_run_stream_write(
        StreamProcessor.list_to_async_iterator(records),
        batch_write_func=abulk,
        single_write_func=single,
        skip_on_duplicate=False,
        config=StreamConfig(batch_size=2),
    )
    assert (result.successful, result.total_batches) == (5, 3)
    assert len(stored) == 5


def test_resolve_conflict_write() -> None:
    from dataknobs_data.streaming import resolve_conflict_write

    def create(r: Record) -> None: ...
    def upsert(r: Record) -> None: ...
    def create_many(rs: list[Record]) -> None: ...
    def upsert_many(rs: list[Record]) -> None: ...

    funcs = {
        "insert_batch_func": create_many,
        "single_create_func": create,
        "upsert_func": upsert,
        "upsert_batch_func": upsert_many,
    }
    assert resolve_conflict_write(ConflictPolicy.INSERT, **funcs) == (create_many, create, False)
    assert resolve_conflict_write(ConflictPolicy.UPSERT, **funcs) == (upsert_many, upsert, False)
    assert resolve_conflict_write(ConflictPolicy.SKIP, **funcs) == (None, create, True)


async def test_list_and_iterator_adapters() -> None:
    assert list(StreamProcessor.list_to_iterator([1, 2])) == [1, 2]
    assert [x async for x in StreamProcessor.iterator_to_async_iterator(iter([3, 4]))] == [3, 4]
