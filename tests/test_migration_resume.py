"""Resumable migrations: checkpoints, crashes mid-batch, and a SIGKILLed copy resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from dataknobs_data import MigrationError, Record, StreamConfig, StreamResult, SyncDatabase
from dataknobs_data.backends.sqlite import SyncSQLiteDatabase
from dataknobs_data.migration import Checkpoint, Migrator, Transformer


class _Crash(BaseException):
    """Stands in for the process dying: nothing after it runs."""


class CrashingTarget(SyncSQLiteDatabase):
    """Dies on the n-th batch write, after (or before) the write reached the database."""

    def __init__(self, config: dict[str, Any], crash_on: int, after_write: bool) -> None:
        super().__init__(config)
        self.calls = 0
        self.crash_on = crash_on
        self.after_write = after_write

    def stream_write(self, records: Any, config: StreamConfig | None = None) -> StreamResult:
        self.calls += 1
        if self.calls == self.crash_on and not self.after_write:
            raise _Crash()
        result = super().stream_write(records, config)
        if self.calls == self.crash_on:
            raise _Crash()
        return result


def make_source(n: int) -> SyncDatabase:
    src = SyncDatabase.from_backend("memory")
    src.create_batch([Record({"i": i, "name": f"n{i}"}, id=f"id-{i:06d}") for i in range(n)])
    return src


TRANSFORM = Transformer().rename("name", "label").add("copied", True)


def assert_exact(target: SyncDatabase, source: SyncDatabase) -> None:
    stored = target.all()
    ids = [r.id for r in stored]
    assert len(ids) == len(set(ids)), "duplicates in the target"
    expected = {r.id: TRANSFORM.transform(r) for r in source.all()}
    assert set(ids) == set(expected)
    for record in stored:
        want = expected[record.id]
        assert want is not None and record.data == want.data, record.id


def state(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.mark.parametrize("after_write", [True, False], ids=["written", "not-written"])
@pytest.mark.parametrize("partitions", [1, 3])
def test_crash_mid_run_then_resume(tmp_path: Path, after_write: bool, partitions: int) -> None:
    source = make_source(2_000)
    cp = tmp_path / "cp.json"
    config = {"path": str(tmp_path / "t.db")}
    crashing = CrashingTarget(config, crash_on=4, after_write=after_write)
    with pytest.raises(_Crash):
        if partitions == 1:
            Migrator().migrate(source, crashing, TRANSFORM, batch_size=150, checkpoint=cp)
        else:
            Migrator().migrate_parallel(
                source, crashing, TRANSFORM, partitions, batch_size=150, checkpoint=cp
            )
    crashing.close()
    saved = state(cp)
    committed = sum(saved["committed"])
    assert not saved["done"] and saved["partitions"] == partitions

    target = SyncDatabase.from_backend("sqlite", config)
    written_before = target.count()
    if partitions == 1:
        assert committed == 3 * 150
        assert written_before == (4 if after_write else 3) * 150
    else:
        # The other partitions' writers finish the batch they hold before stopping.
        assert 3 * 150 <= committed <= written_before <= committed + partitions * 150
    if partitions == 1:
        progress = Migrator().migrate(
            source, target, TRANSFORM, batch_size=150, checkpoint=cp, resume=True
        )
    else:
        progress = Migrator().migrate_parallel(
            source, target, TRANSFORM, partitions, batch_size=150, checkpoint=cp, resume=True
        )
    assert progress.failed == 0
    assert progress.metadata["resumed_from"] == committed
    assert progress.total == 2_000 - committed
    assert state(cp)["done"]
    assert_exact(target, source)

    # A finished job resumes as a no-op.
    again = Migrator().migrate_parallel(
        source, target, TRANSFORM, partitions, checkpoint=cp, resume=True
    )
    assert again.metadata.get("already_complete") and again.processed == 0
    target.close()


def test_resume_without_checkpoint_file_starts_over(tmp_path: Path) -> None:
    source = make_source(100)
    target = SyncDatabase.from_backend("memory")
    cp = tmp_path / "none.json"
    progress = Migrator().migrate(source, target, TRANSFORM, checkpoint=cp, resume=True)
    assert progress.succeeded == 100 and state(cp)["done"]
    assert_exact(target, source)


def test_checkpoint_mismatch_and_garbage(tmp_path: Path) -> None:
    cp = tmp_path / "cp.json"
    Checkpoint.open(cp, 2, 10, resume=False).commit(1, 10)
    with pytest.raises(MigrationError, match="2 partition"):
        Checkpoint.open(cp, 4, 10, resume=True)
    cp.write_text("{not json")
    with pytest.raises(MigrationError, match="unreadable"):
        Checkpoint.open(cp, 2, 10, resume=True)
    # Without resume an old file is simply replaced.
    assert Checkpoint.open(cp, 2, 10, resume=False).committed == [0, 0]


def test_resume_with_query_that_cannot_be_pushed_down(tmp_path: Path) -> None:
    from dataknobs_data import Query

    source = make_source(500)
    cp = tmp_path / "cp.json"
    query = Query().filter("i", ">=", 100).limit(300)
    crashing = CrashingTarget({"path": str(tmp_path / "t.db")}, crash_on=2, after_write=True)
    with pytest.raises(_Crash):
        Migrator().migrate(source, crashing, query=query, batch_size=100, checkpoint=cp)
    crashing.close()
    target = SyncDatabase.from_backend("sqlite", {"path": str(tmp_path / "t.db")})
    Migrator().migrate(source, target, query=query, batch_size=100, checkpoint=cp, resume=True)
    ids = sorted(r.id or "" for r in target.all())
    assert ids == [f"id-{i:06d}" for i in range(100, 400)]
    target.close()


CHILD = textwrap.dedent(
    """
    import sys, time
    from dataknobs_data import SyncDatabase
    from dataknobs_data.migration import Migrator, Transformer

    src_path, dst_path, cp = sys.argv[1:4]
    source = SyncDatabase.from_backend("sqlite", {"path": src_path})
    target = SyncDatabase.from_backend("sqlite", {"path": dst_path})
    transform = Transformer().rename("name", "label").add("copied", True)
    # Slow enough that the parent can kill it mid-copy.
    Migrator().migrate(
        source, target, transform, batch_size=500, checkpoint=cp,
        on_progress=lambda p: time.sleep(0.02),
    )
    """
)


def test_sigkill_then_resume(tmp_path: Path) -> None:
    n = 50_000
    src_path = str(tmp_path / "src.db")
    dst_path = str(tmp_path / "dst.db")
    cp = tmp_path / "copy.json"
    source = SyncDatabase.from_backend("sqlite", {"path": src_path})
    source.create_batch([Record({"i": i, "name": f"n{i}"}, id=f"id-{i:06d}") for i in range(n)])

    child = subprocess.Popen([sys.executable, "-c", CHILD, src_path, dst_path, str(cp)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if cp.exists():
                try:
                    if state(cp)["committed"][0] >= 5_000:
                        break
                except (ValueError, KeyError):
                    pass  # the file is replaced atomically, but be lenient while polling
            if child.poll() is not None:
                pytest.fail(f"the copy ended before it was killed (exit {child.returncode})")
            time.sleep(0.01)
        else:
            pytest.fail("the copy made no progress")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    saved = state(cp)
    assert not saved["done"] and 5_000 <= saved["committed"][0] < n

    target = SyncDatabase.from_backend("sqlite", {"path": dst_path})
    progress = Migrator().migrate(
        source, target, TRANSFORM, batch_size=500, checkpoint=cp, resume=True
    )
    assert progress.failed == 0
    assert progress.metadata["resumed_from"] == saved["committed"][0]
    assert state(cp)["done"]
    assert target.count() == n
    assert_exact(target, source)
    source.close()
    target.close()


async def test_async_crash_then_resume(tmp_path: Path) -> None:
    from dataknobs_data import AsyncDatabase
    from dataknobs_data.backends.sqlite import AsyncSQLiteDatabase

    class Dying(AsyncSQLiteDatabase):
        calls = 0

        async def stream_write(self, records: Any, config: Any = None) -> StreamResult:
            result = await super().stream_write(records, config)
            Dying.calls += 1
            if Dying.calls == 2:
                raise _Crash()
            return result

    source: AsyncDatabase = await AsyncDatabase.from_backend("memory")
    await source.create_batch([Record({"i": i, "name": "x"}, id=f"a{i:04d}") for i in range(900)])
    cp = tmp_path / "cp.json"
    config = {"path": str(tmp_path / "t.db")}
    dying = Dying(config)
    with pytest.raises(_Crash):
        await Migrator().migrate_async(source, dying, TRANSFORM, batch_size=200, checkpoint=cp)
    await dying.close()
    assert state(cp)["committed"] == [200]
    target: AsyncDatabase = await AsyncDatabase.from_backend("sqlite", config)
    assert await target.count() == 400
    progress = await Migrator().migrate_async(
        source, target, TRANSFORM, batch_size=200, checkpoint=cp, resume=True
    )
    assert progress.failed == 0 and progress.total == 700 and state(cp)["done"]
    stored = await target.all()
    assert sorted(r.id or "" for r in stored) == [f"a{i:04d}" for i in range(900)]
    assert all(r["label"] == "x" and r["copied"] for r in stored)
    await source.close()
    await target.close()


@pytest.mark.parametrize("partitions", [1, 2])
def test_resume_when_the_transform_drops_records(tmp_path: Path, partitions: int) -> None:
    # A batch of 100 written records spans ~300 source records here, more than batch_size.
    source = make_source(3_000)
    keep_thirds = Transformer().add_rule(lambda r: r if r["i"] % 3 == 0 else None)
    cp = tmp_path / "cp.json"
    config = {"path": str(tmp_path / "t.db")}
    crashing = CrashingTarget(config, crash_on=3, after_write=True)
    with pytest.raises(_Crash):
        Migrator().migrate_parallel(
            source, crashing, keep_thirds, partitions, batch_size=100, checkpoint=cp
        )
    crashing.close()
    target = SyncDatabase.from_backend("sqlite", config)
    # Smaller batches on resume: the interrupted batch's reach must come from the checkpoint.
    progress = Migrator().migrate_parallel(
        source, target, keep_thirds, partitions, batch_size=40, checkpoint=cp, resume=True
    )
    assert progress.failed == 0
    ids = sorted(r.id or "" for r in target.all())
    assert ids == [f"id-{i:06d}" for i in range(0, 3_000, 3)]
    target.close()
