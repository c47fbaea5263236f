"""The copy engine behind ``copy``: a Migrator run with a progress bar, checkpoints and an
optional transform and schema check."""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ._common import DEFAULT_BATCH_SIZE, PROG, UsageError, _print_error, _stdout
from .databases import open_database
from .where import build_query

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dataknobs_data.database import SyncDatabase
    from dataknobs_data.migration import MigrationProgress, TransformLike
    from dataknobs_data.query import Query
    from dataknobs_data.records import Record
    from dataknobs_data.validation import Schema


class _RateColumn(ProgressColumn):
    """Records per second."""

    def render(self, task: Task) -> Text:
        """Render the current rate of ``task``."""
        speed = task.finished_speed or task.speed
        if speed is None and task.elapsed:
            # rich needs two samples for a speed; a short copy never gets them.
            speed = task.completed / task.elapsed
        shown = "-" if speed is None else f"{speed:,.0f}"
        return Text(f"{shown} rec/s", style="progress.data.speed")


def _progress(enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


@dataclass
class CopyStats:
    """What a copy did."""

    total: int | None
    successful: int
    failed: int
    skipped: int
    seconds: float
    errors: list[dict[str, Any]]
    resumed: int = 0
    already_complete: bool = False

    @property
    def rate(self) -> float:
        """Records written per second."""
        return self.successful / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """The one-line summary printed after a copy."""
        if self.already_complete:
            return "Nothing to copy: the checkpoint says this copy already completed"
        line = (
            f"Copied {self.successful:,} records in {self.seconds:.2f}s "
            f"({self.rate:,.0f} records/s)"
        )
        if self.resumed:
            line += f"; resumed after {self.resumed:,}"
        if self.skipped:
            line += f"; {self.skipped:,} skipped"
        if self.failed:
            line += f"; {self.failed:,} failed"
        return line


def default_checkpoint_path(source: str, target: str, where: Sequence[str] = ()) -> Path:
    """Where ``copy`` keeps its progress unless told otherwise:
    ``.dkdata-copy-<hash>.json`` in the current folder.

    The hash covers the two URLs and the ``--where`` filters, since a position in one
    filtered stream means nothing in another.
    """
    key = "\n".join([source, target, *where]).encode("utf-8")
    return Path.cwd() / f".dkdata-copy-{hashlib.sha256(key).hexdigest()[:16]}.json"


def copy_records(
    source: SyncDatabase,
    target: SyncDatabase,
    *,
    query: Query | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_conflict: str = "insert",
    progress: bool = False,
    description: str = "copying",
    transform: TransformLike | None = None,
    partitions: int = 1,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> CopyStats:
    """Stream the records of ``source`` (matching ``query``) into ``target``.

    Reads and writes in batches of ``batch_size``; a record that cannot be transformed or
    written is counted and the copy goes on, so every failure is reported at the end.
    ``transform`` (a Transformer, Migration, Operation or function) changes each record on
    the way; ``partitions`` > 1 writes through that many hash partitions in parallel;
    ``checkpoint`` records progress after every batch and ``resume`` continues from it
    (see :class:`~dataknobs_data.migration.Migrator`).
    """
    from dataknobs_data.migration import Migrator

    started = time.perf_counter()
    with _progress(progress) as bar:
        task = bar.add_task(description, total=None)

        def show(p: MigrationProgress) -> None:
            # Called once per batch, so the bar costs nothing per record.
            bar.update(task, total=p.total or None, completed=p.processed)

        migrator = Migrator()
        options: dict[str, Any] = {
            "query": query,
            "batch_size": batch_size,
            "on_error": lambda _exc, _record: True,
            "on_conflict": on_conflict,
            "checkpoint": checkpoint,
            "resume": resume,
        }
        if partitions > 1:
            result = migrator.migrate_parallel(
                source, target, transform, partitions, on_progress=show, **options
            )
        else:
            result = migrator.migrate(source, target, transform, on_progress=show, **options)
    return CopyStats(
        total=result.total,
        successful=result.succeeded,
        failed=result.failed,
        skipped=result.skipped,
        seconds=time.perf_counter() - started,
        errors=list(result.errors),
        resumed=int(result.metadata.get("resumed_from", 0)),
        already_complete=bool(result.metadata.get("already_complete", False)),
    )


def _load_transform(path: str) -> TransformLike:
    from dataknobs_data.migration import load_transform

    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    try:
        return load_transform(path)
    except ValueError as exc:
        raise UsageError(f"--transform {path}: {exc}") from None


def _load_schema(path: str) -> Schema:
    from dataknobs_data.migration import load_spec
    from dataknobs_data.validation import schema_factory

    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    try:
        return schema_factory.build(load_spec(path))
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"--schema {path}: {exc}") from None


def _validated(transform: TransformLike | None, schema: Schema) -> TransformLike:
    """``transform`` followed by a schema check; an invalid record raises, so the copy
    counts it as failed and does not write it."""
    from dataknobs_data.exceptions import RecordValidationError
    from dataknobs_data.migration import as_record_function
    from dataknobs_data.validation import ValidationContext

    fn = as_record_function(transform)
    # One context for the whole copy, so Unique constraints span every record.
    context = ValidationContext()

    def check(record: Record) -> Record | None:
        out = fn(record) if fn is not None else record
        if out is None:
            return None
        result = schema.validate(out, context=context)
        if not result.valid:
            raise RecordValidationError("; ".join(result.errors) or "invalid record")
        return out

    return check


def _interrupted(args: argparse.Namespace, checkpoint: Path | None) -> str:
    """What to tell the user when a copy is interrupted: where its progress is and the
    command that continues it."""
    if checkpoint is None or not checkpoint.exists():
        return "copy interrupted; no checkpoint was kept, so a new copy starts from the beginning"
    argv = [str(a) for a in getattr(args, "argv", None) or ["copy", args.source, args.target]]
    if "--resume" not in argv:
        argv.append("--resume")
    return (
        f"copy interrupted; progress is saved in {checkpoint}. "
        f"To continue: {shlex.join([PROG, *argv])}"
    )


def _cmd_copy(args: argparse.Namespace) -> int:
    query = build_query(args.where) if args.where else None
    transform = _load_transform(args.transform) if args.transform else None
    if args.schema:
        transform = _validated(transform, _load_schema(args.schema))
    checkpoint: Path | None
    own_checkpoint = False
    if args.checkpoint:
        checkpoint = Path(args.checkpoint)
    elif args.target.lower().startswith(("memory:", "mem:")):
        # Nothing survives a memory target, so there is nothing to resume.
        checkpoint = None
    else:
        checkpoint = default_checkpoint_path(args.source, args.target, args.where)
        own_checkpoint = True
        if not args.resume and not os.access(checkpoint.parent, os.W_OK):
            checkpoint, own_checkpoint = None, False
    if args.resume and checkpoint is None:
        raise UsageError("--resume needs a checkpoint: give --checkpoint FILE")
    if args.resume and checkpoint is not None and not checkpoint.exists() and not args.restart:
        # Starting over here would silently redo (or duplicate) work the user believes done.
        raise UsageError(
            f"--resume: no checkpoint at {checkpoint} for this copy (same SRC, DST and "
            "--where); nothing to resume. Check the arguments, or add --restart to copy "
            "from the beginning"
        )
    source = open_database(args.source, read_only=True)
    try:
        target = open_database(args.target)
        try:
            stats = copy_records(
                source,
                target,
                query=query,
                batch_size=args.batch_size,
                on_conflict=args.on_conflict,
                progress=not args.no_progress,
                transform=transform,
                partitions=args.partitions,
                checkpoint=checkpoint,
                resume=args.resume,
            )
        except KeyboardInterrupt:
            _print_error(_interrupted(args, checkpoint))
            return 130
        finally:
            target.close()
    finally:
        source.close()
    if own_checkpoint and checkpoint is not None:
        # The copy finished: the default checkpoint has nothing left to resume.
        checkpoint.unlink(missing_ok=True)
    print(stats.summary(), file=_stdout())
    if stats.failed:
        first = stats.errors[0] if stats.errors else {}
        detail = ""
        if first:
            detail = f" (first: record {first.get('record_id')!r}: {first.get('error')})"
        _print_error(f"{stats.failed:,} record(s) could not be written{detail}")
        return 1
    return 0
