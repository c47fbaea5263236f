"""Resumable migrations: a small JSON file saying how far each partition got.

The file holds, per partition, how many records of that partition's source stream (storage
order, filtered by the query and the partition hash) have been written to the target for
good (``committed``), and where the batch being written ends (``in_flight``: a batch whose
transform dropped records spans more source records than its size). It is rewritten
through a temp file and ``os.replace``, so a crash at any moment leaves either the old or
the new version.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from dataknobs_data.exceptions import MigrationError

__all__ = ["Checkpoint"]

FORMAT_VERSION = 1


class Checkpoint:
    """The progress file of one migration job.

    Args:
        path: The JSON file.
        partitions: Number of partitions of the job (a resumed job must use the same).
        batch_size: Records per write batch; on resume, that many records after each
            partition's committed count may have been written by the interrupted batch.
    """

    def __init__(self, path: str | os.PathLike[str], partitions: int, batch_size: int) -> None:
        self.path = Path(path)
        self.partitions = partitions
        self.batch_size = batch_size
        self.committed = [0] * partitions
        self.in_flight = [0] * partitions
        self.done = False
        #: Per partition, the stream position before which writes may already be in the
        #: target (from an interrupted run) and must be idempotent.
        self.in_flight_until = [0] * partitions
        self.resumed = False
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        partitions: int,
        batch_size: int,
        resume: bool,
    ) -> Checkpoint:
        """Start a job's checkpoint: fresh, or loaded from ``path`` when resuming.

        Resuming without a file starts from the beginning (nothing was written, since the
        file is created before the first write).

        Raises:
            MigrationError: the file is unreadable or was written for another partition count.
        """
        cp = cls(path, partitions, batch_size)
        if resume and cp.path.exists():
            state = cp._read()
            saved = int(state.get("partitions", 0))
            if saved != partitions:
                raise MigrationError(
                    "checkpoint",
                    str(cp.path),
                    f"it was written for {saved} partition(s), not {partitions}",
                )
            cp.committed = [int(n) for n in state["committed"]]
            cp.done = bool(state.get("done", False))
            previous = int(state.get("batch_size", batch_size))
            marked = [int(n) for n in state.get("in_flight") or [0] * partitions]
            cp.in_flight_until = [
                max(n + previous, m) for n, m in zip(cp.committed, marked, strict=True)
            ]
            cp.resumed = True
        if not cp.done:
            cp.save()
        return cp

    def _read(self) -> dict[str, Any]:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(state, dict) or not isinstance(state.get("committed"), list):
                raise ValueError("no 'committed' list")
            return state
        except (OSError, ValueError) as exc:
            raise MigrationError("checkpoint", str(self.path), f"unreadable: {exc}") from exc

    def commit(self, partition: int, position: int) -> None:
        """Record that ``position`` records of ``partition`` are in the target; save."""
        with self._lock:
            self.committed[partition] = position
            self._write()

    def begin(self, partition: int, end: int) -> None:
        """Record that a batch reaching source position ``end`` is about to be written; save."""
        with self._lock:
            self.in_flight[partition] = end
            self._write()

    def finish(self) -> None:
        """Mark the job complete; save."""
        with self._lock:
            self.done = True
            self._write()

    def save(self) -> None:
        """Write the current state."""
        with self._lock:
            self._write()

    def _write(self) -> None:
        state = {
            "version": FORMAT_VERSION,
            "partitions": self.partitions,
            "batch_size": self.batch_size,
            "committed": self.committed,
            "in_flight": self.in_flight,
            "done": self.done,
            "updated_at": time.time(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(state, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            # Interrupted (Ctrl-C lands here often: the fsync is the slow part) or failed:
            # the previous file is intact, and the half-written temp file must not stay.
            tmp.unlink(missing_ok=True)
            raise
