"""Counters, log lines and OpenTelemetry spans around every database operation."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dataknobs_data import (
    AsyncDatabase,
    DuplicateRecordError,
    Query,
    Record,
    SyncDatabase,
    observability,
)
from dataknobs_data.database import hash_record_version
from dataknobs_data.streaming import StreamConfig

_EXPORTER = InMemorySpanExporter()


def _install_provider() -> None:
    # The global provider can be set once per process; every test shares this exporter.
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))


_install_provider()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def _records(n: int, start: int = 0) -> list[Record]:
    return [Record({"id": f"r{i}", "n": i}) for i in range(start, start + n)]


def test_counters_per_operation() -> None:
    db = SyncDatabase.from_backend("memory")
    db.create_batch(_records(50))
    db.read("r1")
    db.read("missing")
    assert len(db.search(Query().filter("n", "<", 5))) == 5
    with pytest.raises(DuplicateRecordError):
        db.create(Record({"id": "r1"}))
    stats = db.stats()
    assert stats["create_batch"]["calls"] == 1 and stats["create_batch"]["records"] == 50
    assert stats["read"]["calls"] == 2 and stats["read"]["records"] == 1
    assert stats["search"]["records"] == 5
    assert stats["create"] == {**stats["create"], "calls": 1, "errors": 1, "records": 0}
    for entry in stats.values():
        assert sum(entry["latency_histogram"].values()) == entry["calls"]
        assert 0 < entry["max_seconds"] <= entry["total_seconds"]
    observability.reset_stats(db)
    assert db.stats() == {}


def test_counts_from_many_threads_add_up() -> None:
    # Each thread counts into its own table; stats() sums them.
    db = SyncDatabase.from_backend("memory")
    db.create_batch(_records(10))
    observability.reset_stats(db)
    barrier = threading.Barrier(4)

    def reader() -> None:
        barrier.wait()
        for i in range(250):
            db.read(f"r{i % 12}")  # r10 and r11 are missing

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    read = db.stats()["read"]
    assert read["calls"] == 1000
    assert read["records"] == 4 * sum(1 for i in range(250) if i % 12 < 10)
    assert sum(read["latency_histogram"].values()) == 1000
    assert read["max_seconds"] <= read["total_seconds"]
    observability.reset_stats(db)
    assert db.stats() == {}
    db.read("r1")
    assert db.stats()["read"]["calls"] == 1


def test_a_verb_that_calls_verbs_counts_once() -> None:
    db = SyncDatabase.from_backend("memory")
    db.create(Record({"id": "a", "n": 1}))
    token = hash_record_version(db.read("a"))  # type: ignore[arg-type]
    observability.reset_stats(db)
    assert db.update("a", Record({"n": 2}), expected_version=token)
    result = db.stream_write(iter(_records(30)))
    assert result.successful == 30
    stats = db.stats()
    # update read the record first and stream_write wrote batches: neither is counted apart.
    assert sorted(stats) == ["stream_write", "update"]
    assert stats["stream_write"]["records"] == 30


def test_streams_count_what_the_consumer_took() -> None:
    db = SyncDatabase.from_backend("memory")
    db.create_batch(_records(20))
    assert len(list(db.stream_read())) == 20
    stream = db.stream_read()
    next(stream)
    next(stream)
    stream.close()
    entry = db.stats()["stream_read"]
    assert entry["calls"] == 2 and entry["records"] == 22 and entry["errors"] == 0


async def test_async_counters_and_streams() -> None:
    db = await AsyncDatabase.from_backend("sqlite", {"path": ":memory:"})
    await db.create_batch(_records(10))
    assert await db.count(Query().filter("n", ">=", 5)) == 5
    assert len([r async for r in db.stream_read()]) == 10
    stats = db.stats()
    assert stats["create_batch"]["records"] == 10
    assert stats["count"]["calls"] == 1
    assert stats["stream_read"]["records"] == 10
    await db.close()


def test_a_span_per_operation_on_every_backend(
    db: SyncDatabase, spans: InMemorySpanExporter
) -> None:
    backend = type(db).BACKEND_NAME
    db.create_batch(_records(3))
    db.read("r0")
    db.search(Query().filter("n", ">", 0))
    with pytest.raises(DuplicateRecordError):
        db.create(Record({"id": "r0"}))
    finished = [s for s in spans.get_finished_spans() if s.attributes is not None]
    ops = [(s.name, s.attributes["dataknobs.record_count"]) for s in finished]
    assert ops == [
        (f"create_batch {backend}", 3),
        (f"read {backend}", 1),
        (f"search {backend}", 2),
        (f"create {backend}", 0),
    ]
    for span in finished:
        attrs: Any = span.attributes
        assert span.kind is trace.SpanKind.CLIENT
        assert attrs["dataknobs.backend"] == backend
        assert attrs["db.operation.name"] == attrs["dataknobs.operation"]
        assert attrs["db.system.name"]
    assert [s.attributes["dataknobs.outcome"] for s in finished] == ["ok", "ok", "ok", "error"]  # type: ignore[index]
    failed = finished[-1]
    assert failed.attributes["error.type"] == "DuplicateRecordError"  # type: ignore[index]
    assert failed.status.status_code is trace.StatusCode.ERROR
    assert [e.name for e in failed.events] == ["exception"]


async def test_async_spans_name_the_system_and_table(spans: InMemorySpanExporter) -> None:
    db = await AsyncDatabase.from_backend("sqlite", {"path": ":memory:", "table": "people"})
    await db.upsert(Record({"id": "a"}))
    await db.close()
    (span,) = spans.get_finished_spans()
    assert span.name == "upsert sqlite"
    assert span.attributes == {
        "db.system.name": "sqlite",
        "db.operation.name": "upsert",
        "db.collection.name": "people",
        "dataknobs.backend": "sqlite",
        "dataknobs.operation": "upsert",
        "dataknobs.record_count": 1,
        "dataknobs.outcome": "ok",
    }


def test_tracing_can_be_turned_off(spans: InMemorySpanExporter) -> None:
    db = SyncDatabase.from_backend("memory")
    observability.set_tracing(False)
    try:
        db.count()
    finally:
        observability.set_tracing(True)
    assert spans.get_finished_spans() == ()
    assert db.stats()["count"]["calls"] == 1


def test_debug_log_line(caplog: pytest.LogCaptureFixture) -> None:
    db = SyncDatabase.from_backend("memory")
    with caplog.at_level(logging.DEBUG, logger="dataknobs_data.observability"):
        db.create_batch(_records(4))
    (line,) = [r for r in caplog.records if r.name == "dataknobs_data.observability"]
    assert line.levelno == logging.DEBUG
    assert (line.backend, line.operation, line.records, line.outcome) == (  # type: ignore[attr-defined]
        "memory",
        "create_batch",
        4,
        "ok",
    )
    assert line.getMessage().startswith("memory create_batch: 4 records, ok, ")


def test_without_opentelemetry_no_span_code_runs() -> None:
    # A fresh interpreter where `import opentelemetry` fails, as without the otel extra.
    script = textwrap.dedent(
        """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ImportError(name)

        sys.meta_path.insert(0, Block())
        from dataknobs_data import Record, SyncDatabase, observability

        assert observability._tracer is None and not observability.tracing_enabled()
        db = SyncDatabase.from_backend("memory")
        db.create(Record({"id": "a"}))
        assert db.stats()["create"]["calls"] == 1
        try:
            observability.set_tracing(True)
        except RuntimeError as exc:
            assert "otel" in str(exc)
        else:
            raise AssertionError("set_tracing(True) without opentelemetry")
        assert not any(m.startswith("opentelemetry") for m in sys.modules)
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_user_subclasses_are_instrumented() -> None:
    class Listing(SyncDatabase):
        BACKEND_NAME = "listing"

        def __init__(self) -> None:
            super().__init__()
            self.rows: dict[str, Record] = {}

        def create(self, record: Record) -> str:
            self.rows[str(record.id)] = record
            return str(record.id)

        def read(self, id: str) -> Record | None:
            return self.rows.get(id)

        def update(self, id: str, record: Record, *, expected_version: str | None = None) -> bool:
            return False

        def delete(self, id: str, *, expected_version: str | None = None) -> bool:
            return self.rows.pop(id, None) is not None

        def search(self, query: Any) -> list[Record]:
            return [r for r in self.rows.values() if query.matches(r)]

    db = Listing()
    db.create(Record({"id": "a"}))
    # count() is the base class's default over search(): one operation, counted once.
    assert db.count() == 1
    assert sorted(db.stats()) == ["count", "create"]


async def test_a_transaction_commit_is_one_operation() -> None:
    db = await AsyncDatabase.from_backend("sqlite", {"path": ":memory:"})
    async with db.transaction() as tx:
        await tx.create_batch(_records(3))
        await tx.delete("r0")
    stats = db.stats()
    assert stats["commit"]["calls"] == 1 and stats["commit"]["errors"] == 0
    assert stats["commit"]["records"] == 4  # three creates and a delete, staged
    assert await db.count() == 2
    await db.close()


def _bad_regex() -> Query:
    return Query().filter("n", "regex", "(")


async def test_async_errors_and_nested_verbs_count_once(spans: InMemorySpanExporter) -> None:
    db = await AsyncDatabase.from_backend("memory")
    await db.create(Record({"id": "a", "n": 1}))
    with pytest.raises(DuplicateRecordError):
        await db.create(Record({"id": "a"}))
    token = hash_record_version(await db.read("a"))  # type: ignore[arg-type]
    assert await db.update("a", Record({"n": 2}), expected_version=token)
    stats = db.stats()
    assert stats["create"]["calls"] == 2 and stats["create"]["errors"] == 1
    # update's own read of the record is not an operation of its own.
    assert stats["read"]["calls"] == 1 and stats["update"]["calls"] == 1
    outcomes = [s.attributes["dataknobs.outcome"] for s in spans.get_finished_spans()]  # type: ignore[index]
    assert outcomes == ["ok", "error", "ok", "ok"]


def test_a_stream_that_fails_counts_an_error(spans: InMemorySpanExporter) -> None:
    db = SyncDatabase.from_backend("memory")
    db.create_batch(_records(3))
    with pytest.raises(ValueError):
        list(db.stream_read(_bad_regex()))
    entry = db.stats()["stream_read"]
    assert (entry["calls"], entry["errors"]) == (1, 1)
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("stream_read")]
    assert span.attributes["dataknobs.outcome"] == "error"  # type: ignore[index]


async def test_async_streams_that_fail_or_stop_early() -> None:
    db = await AsyncDatabase.from_backend("sqlite", {"path": ":memory:"})
    await db.create_batch(_records(5))
    with pytest.raises(ValueError):
        async for _ in db.stream_read(_bad_regex()):
            pass
    stream = db.stream_read()
    assert (await stream.__anext__()).id == "r0"
    await stream.aclose()  # type: ignore[attr-defined]
    entry = db.stats()["stream_read"]
    assert (entry["calls"], entry["errors"], entry["records"]) == (2, 1, 1)
    await db.close()


def test_leaf_verbs_take_keywords_and_count_records_and_errors() -> None:
    # The native verbs' wrappers are compiled with each verb's own signature.
    db = SyncDatabase.from_backend("memory")
    assert db.create_batch(records=_records(5)) == [f"r{i}" for i in range(5)]
    assert db.read(id="r1") is not None and db.read("nope") is None
    assert db.count(query=None) == 5 and db.count() == 5
    assert len(db.search(query=Query().filter("n", ">", 1))) == 3
    assert db.read_batch(ids=["r0", "x"])[1] is None
    with pytest.raises(DuplicateRecordError):
        db.create_batch([Record({"id": "r0"})])
    stats = db.stats()
    assert stats["create_batch"] == {
        **stats["create_batch"],
        "calls": 2,
        "errors": 1,
        "records": 5,
    }
    assert (stats["read"]["calls"], stats["read"]["records"]) == (2, 1)
    assert (stats["count"]["calls"], stats["search"]["records"]) == (2, 3)
    assert stats["read_batch"]["records"] == 2
    assert type(db).read.__name__ == "read" and type(db).read.__wrapped__ is not None


def test_streams_count_records_taken_across_native_chunks() -> None:
    # Records come from the store a few at a time; what counts is what the consumer took.
    db = SyncDatabase.from_backend("memory")
    db.create_batch(_records(300))
    stream = db.stream_read(config=StreamConfig(batch_size=100))
    taken = [next(stream).id for _ in range(150)]
    stream.close()
    assert taken == [f"r{i}" for i in range(150)]
    assert [r.id for r in db.stream_read()] == [f"r{i}" for i in range(300)]
    entry = db.stats()["stream_read"]
    assert (entry["calls"], entry["records"]) == (2, 450)


async def test_async_memory_stream_counts_what_was_taken() -> None:
    db = await AsyncDatabase.from_backend("memory")
    await db.create_batch(_records(200))
    stream = db.stream_read(config=StreamConfig(batch_size=70))
    seen = [(await stream.__anext__()).id for _ in range(130)]
    await stream.aclose()  # type: ignore[attr-defined]
    assert seen == [f"r{i}" for i in range(130)]
    assert [r.id async for r in db.stream_read()] == [f"r{i}" for i in range(200)]
    entry = db.stats()["stream_read"]
    assert (entry["calls"], entry["records"]) == (2, 330)


def test_spans_start_once_an_exporting_provider_is_set() -> None:
    # With the API installed but no SDK provider set, spans would only be dropped, so none
    # is made; setting one later turns them on without anything else to call.
    script = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
        from dataknobs_data import Record, SyncDatabase, observability

        db = SyncDatabase.from_backend("memory")
        db.create(Record({"id": "a"}))
        assert observability.tracing_enabled() and not observability._spans_exported()
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        db.read("a")
        db.count()
        names = [s.name for s in exporter.get_finished_spans()]
        assert names == ["read memory", "count memory"], names
        assert db.stats()["read"]["calls"] == 1 and db.stats()["create"]["calls"] == 1
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_python_dash_m_runs_the_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import runpy

    monkeypatch.setattr(sys, "argv", ["dataknobs-data", "count", "memory://"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("dataknobs_data", run_name="__main__")
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == "0"
