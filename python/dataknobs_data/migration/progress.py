"""Counters and timing of a migration, kept apart from the migration logic."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MigrationProgress"]


@dataclass
class MigrationProgress:
    """What a migration has done so far.

    ``processed`` = ``succeeded`` + ``failed`` + ``skipped``. ``errors`` holds one dict per
    failure: ``error`` (message), ``record_id``, ``timestamp`` and, when known, ``exception``
    and ``exception_type``.
    """

    total: int = 0
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    start_time: float | None = None
    end_time: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def start(self) -> MigrationProgress:
        """Mark the start (wall clock); return self."""
        self.start_time = time.time()
        return self

    def finish(self) -> MigrationProgress:
        """Mark the end; return self."""
        self.end_time = time.time()
        return self

    @property
    def duration(self) -> float:
        """Seconds from start to end (or to now while running); 0.0 before start."""
        if self.start_time is None:
            return 0.0
        end = self.end_time if self.end_time is not None else time.time()
        return end - self.start_time

    @property
    def percent(self) -> float:
        """Processed records as a percentage of ``total`` (0.0 when the total is unknown)."""
        if self.total <= 0:
            return 0.0
        return self.processed / self.total * 100.0

    @property
    def success_rate(self) -> float:
        """Succeeded records as a percentage of those processed (0.0 before any)."""
        if self.processed == 0:
            return 0.0
        return self.succeeded / self.processed * 100.0

    @property
    def rate(self) -> float:
        """Processed records per second."""
        seconds = self.duration
        return self.processed / seconds if seconds > 0 else 0.0

    @property
    def is_complete(self) -> bool:
        """Whether every one of a known, non-zero total was processed."""
        return self.total > 0 and self.processed >= self.total

    @property
    def has_errors(self) -> bool:
        """Whether any record failed."""
        return self.failed > 0 or bool(self.errors)

    def record_success(self, record_id: str | None = None) -> MigrationProgress:
        """Count one migrated record."""
        self.processed += 1
        self.succeeded += 1
        return self

    def record_failure(
        self,
        error: str,
        record_id: str | None = None,
        exception: BaseException | None = None,
    ) -> MigrationProgress:
        """Count one failed record and keep the error."""
        self.processed += 1
        self.failed += 1
        info: dict[str, Any] = {"error": error, "record_id": record_id, "timestamp": time.time()}
        if exception is not None:
            info["exception"] = str(exception)
            info["exception_type"] = type(exception).__name__
        self.errors.append(info)
        return self

    def record_batch_failure(
        self, count: int, error: str, exception: BaseException | None = None
    ) -> MigrationProgress:
        """Count ``count`` failed records that share one error, kept once.

        For a bulk write that stored fewer records than given: which ones failed is not
        known, so one error entry (with ``"count"``) stands for all of them. A count of zero
        or less changes nothing.
        """
        if count <= 0:
            return self
        self.processed += count
        self.failed += count
        info: dict[str, Any] = {
            "error": error,
            "record_id": None,
            "count": count,
            "timestamp": time.time(),
        }
        if exception is not None:
            info["exception"] = str(exception)
            info["exception_type"] = type(exception).__name__
        self.errors.append(info)
        return self

    def record_skip(self, reason: str, record_id: str | None = None) -> MigrationProgress:
        """Count one skipped record and note why."""
        self.processed += 1
        self.skipped += 1
        self.warnings.append(f"Skipped record {record_id}: {reason}")
        return self

    def add_warning(self, warning: str) -> MigrationProgress:
        """Keep a warning."""
        self.warnings.append(warning)
        return self

    def set_metadata(self, key: str, value: Any) -> MigrationProgress:
        """Keep a piece of information about the migration."""
        self.metadata[key] = value
        return self

    def merge(self, other: MigrationProgress) -> MigrationProgress:
        """Add ``other``'s counts, errors, warnings and metadata (e.g. of a partition)."""
        self.total += other.total
        self.processed += other.processed
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.skipped += other.skipped
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)
        for key, value in other.metadata.items():
            if key not in self.metadata:
                self.metadata[key] = value
            elif isinstance(self.metadata[key], list):
                if isinstance(value, list):
                    self.metadata[key].extend(value)
                else:
                    self.metadata[key].append(value)
            else:
                self.metadata[key] = [self.metadata[key], value]
        return self

    def get_summary(self) -> str:
        """A few lines for people: counts, percent, duration and records per second."""
        lines = [
            f"Migration Progress: {self.percent:.1f}% complete",
            f"Total: {self.total} | Processed: {self.processed}",
            f"Succeeded: {self.succeeded} | Failed: {self.failed} | Skipped: {self.skipped}",
            f"Duration: {self.duration:.2f}s | Rate: {self.rate:.1f} records/s",
        ]
        if self.has_errors:
            lines.append(f"Errors: {len(self.errors)}")
        if self.warnings:
            lines.append(f"Warnings: {len(self.warnings)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for JSON)."""
        return {
            "total": self.total,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "percent": self.percent,
            "success_rate": self.success_rate,
            "duration": self.duration,
            "rate": self.rate,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "metadata": dict(self.metadata),
            "is_complete": self.is_complete,
            "has_errors": self.has_errors,
        }

    def __str__(self) -> str:
        return self.get_summary()

    def __repr__(self) -> str:
        return (
            f"MigrationProgress(total={self.total}, processed={self.processed}, "
            f"succeeded={self.succeeded}, failed={self.failed}, skipped={self.skipped})"
        )
