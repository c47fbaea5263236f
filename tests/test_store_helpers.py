"""keyed_store, dedup, allocation and backend_selection: 0.11.0's helpers over a database."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dataknobs_data import Record, SortSpec
from dataknobs_data.allocation import DEFAULT_MAX_ATTEMPTS, allocate, allocate_sync
from dataknobs_data.backend_selection import (
    DEFAULT_BACKEND,
    available_backends,
    backend_available,
    backend_info,
    build_backend,
    is_default_backend,
    module_installed,
    normalize_backend,
    register_backend,
    select_backend,
)
from dataknobs_data.backends import BackendRegistry, sync_backends
from dataknobs_data.backends.memory import AsyncMemoryDatabase, SyncMemoryDatabase
from dataknobs_data.backends.sqlite import SyncSQLiteDatabase
from dataknobs_data.dedup import DedupChecker, DedupConfig
from dataknobs_data.exceptions import ConfigurationError, DuplicateRecordError
from dataknobs_data.keyed_store import AsyncKeyedRecordStore, SyncKeyedRecordStore


@dataclass
class Note:
    title: str
    stars: int
    owner: str


def _to_record(note: Note) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"title": note.title, "stars": note.stars}, {"owner": note.owner}


def _from_record(record: Record) -> Note:
    return Note(record["title"], record["stars"], record.metadata["owner"])


def test_sync_keyed_store(tmp_path: Path) -> None:
    with SyncSQLiteDatabase({"path": str(tmp_path / "notes.db")}) as db:
        store = SyncKeyedRecordStore(db, serializer=_to_record, deserializer=_from_record)
        store.put("a", Note("alpha", 3, "ann"))
        store.put_batch({"b": Note("beta", 5, "bob"), "c": Note("gamma", 1, "ann")})
        assert store.get("a") == Note("alpha", 3, "ann")
        assert store.get("zz") is None and store.exists("b")
        store.put("a", Note("alpha", 4, "ann"))  # put replaces
        assert store.get_batch(["a", "zz"]) == [Note("alpha", 4, "ann"), None]
        mine = store.list(filter_metadata={"owner": "ann"}, sort=[SortSpec("stars")])
        assert [n.title for n in mine] == ["gamma", "alpha"]
        assert store.count() == 3 and store.count(filter_data={"stars": 5}) == 1
        assert [n.title for n in store.stream(filter_metadata={"owner": "bob"})] == ["beta"]
        assert store.list(limit=1, offset=1, sort=[SortSpec("stars")])[0].title == "alpha"
        assert store.delete_batch(["a", "zz"]) == 1 and not store.delete("a")
        assert store.clear() == 2 and store.count() == 0
        assert store.db is db


async def test_async_keyed_store() -> None:
    db = AsyncMemoryDatabase()
    store = AsyncKeyedRecordStore(db, serializer=_to_record, deserializer=_from_record)
    await store.put_batch({"a": Note("alpha", 3, "ann"), "b": Note("beta", 5, "bob")})
    assert await store.get("b") == Note("beta", 5, "bob")
    assert [n.title async for n in store.stream(filter_data={"stars": 3})] == ["alpha"]
    assert await store.count(filter_metadata={"owner": "bob"}) == 1
    assert len(await store.search(__import__("dataknobs_data").Query())) == 2
    assert await store.delete("a") and await store.clear() == 1


async def test_dedup_by_content_hash() -> None:
    checker = DedupChecker(AsyncMemoryDatabase(), DedupConfig(hash_fields=["title", "body"]))
    first = await checker.check({"title": "T", "body": "B"})
    assert not first.is_exact_duplicate and first.recommendation == "unique"
    await checker.register({"title": "T", "body": "B", "extra": 1}, "doc-1")
    again = await checker.check({"title": "T", "body": "B"})
    assert again.is_exact_duplicate and again.exact_match_id == "doc-1"
    assert again.recommendation == "exact_duplicate" and again.content_hash == first.content_hash
    assert not (await checker.check({"title": "T", "body": "other"})).is_exact_duplicate
    sha = DedupChecker(AsyncMemoryDatabase(), DedupConfig(hash_algorithm="sha256"))
    assert len(sha.compute_hash({"content": "x"})) == 64
    with pytest.raises(ConfigurationError, match="hash_algorithm"):
        DedupConfig(hash_algorithm="sha1")


def test_allocate_sync_retries_on_collision() -> None:
    db = SyncMemoryDatabase()
    db.create(Record({}, id="code-0"))
    counter = itertools.count()
    rid = allocate_sync(db, build=lambda: Record({"n": 1}, id=f"code-{next(counter)}"))
    assert rid == "code-1" and db.exists("code-1")
    with pytest.raises(DuplicateRecordError):
        allocate_sync(db, build=lambda: Record({}, id="code-0"), max_attempts=3)
    with pytest.raises(ValueError, match="max_attempts"):
        allocate_sync(db, build=lambda: Record({}), max_attempts=0)
    assert DEFAULT_MAX_ATTEMPTS == 16


async def test_allocate_async() -> None:
    db = AsyncMemoryDatabase()
    await db.create(Record({}, id="k0"))
    counter = itertools.count()

    async def build() -> Record:
        return Record({}, id=f"k{next(counter)}")

    assert await allocate(db, build=build) == "k1"


def test_select_and_build_backend(caplog: pytest.LogCaptureFixture) -> None:
    cls, name, rest = select_backend(
        {"backend": " SQLite ", "path": ":memory:"}, sync_backends, kind="database"
    )
    assert (cls, name, rest) == (SyncSQLiteDatabase, "sqlite", {"path": ":memory:"})
    db = build_backend(cls, rest, kind="database", backend_type=name)
    assert isinstance(db, SyncSQLiteDatabase)
    with caplog.at_level(logging.WARNING):
        cls, name, _ = select_backend({}, sync_backends, kind="database")
    assert name == DEFAULT_BACKEND and cls is SyncMemoryDatabase and "memory" in caplog.text
    with pytest.raises(ValueError, match="Unknown backend type: nope"):
        select_backend({"backend": "nope"}, sync_backends, kind="database")
    with pytest.raises(ValueError, match="custom nope"):
        select_backend(
            {"backend": "nope"},
            sync_backends,
            kind="db",
            unknown_message=lambda n, a: f"custom {n}",
        )
    with pytest.raises(ValueError, match="from_config"):
        build_backend(lambda: None, {}, kind="database", backend_type="x")
    for bad in (None, 3, "  "):
        with pytest.raises(ValueError, match="'backend' key"):
            normalize_backend(bad)


def test_registry_questions() -> None:
    assert is_default_backend({}) and is_default_backend({"backend": "memory"})
    assert is_default_backend({"backend": "mem"}, sync_backends)
    assert not is_default_backend({"backend": "sqlite"}, sync_backends)
    assert "sqlite" in available_backends(sync_backends)
    assert backend_available(sync_backends, "pg") and not backend_available(sync_backends, "zz")
    assert backend_info(sync_backends, "memory")["description"]
    assert backend_info(sync_backends, "zz")["error"] == "Backend 'zz' not recognized"
    assert module_installed("json") and not module_installed("no_such_module_here")


def test_register_backend_declares_missing_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataknobs_data.backends as registry_module

    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    monkeypatch.setattr(registry_module, "_ALIASES", dict(registry_module._ALIASES))
    registry = BackendRegistry("sync")
    register_backend(
        registry,
        "exotic",
        lambda: SyncMemoryDatabase,
        metadata={"requires_module": "no_such_module_here", "requires_install": "pip install x"},
    )
    assert registry.is_known("exotic") and not registry.has("exotic")
    with pytest.raises(ValueError, match=r"not available here\. Install with: pip install x"):
        select_backend({"backend": "exotic"}, registry, kind="database")
    register_backend(registry, "fine", lambda: SyncMemoryDatabase, metadata={}, aliases=["fn"])
    assert registry.get_factory("fn") is SyncMemoryDatabase
