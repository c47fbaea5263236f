"""The ``dataknobs-data`` command line: copy, validate, count and query any backend by URL.

Usage::

    dataknobs-data copy file:///tmp/people.jsonl "sqlite:///tmp/people.db?table=people"
    dataknobs-data copy file:///tmp/a.jsonl sqlite:///tmp/a.db --transform tidy.yaml \
        --schema people.yaml --partitions 4 --resume
    dataknobs-data validate sqlite:///tmp/a.db --schema people.yaml
    dataknobs-data count sqlite:///tmp/people.db --where "age>=30" --where "city=Paris"
    dataknobs-data query sqlite:///tmp/people.db --where "name~a%" --sort -age --limit 5
    dataknobs-data query file:///tmp/people.csv --fields name,age --format json
    dataknobs-data demo --n 10000

Backend URLs are described in :mod:`dataknobs_data.urls`; ``--where`` expressions in
:func:`parse_where`. User errors (a bad URL, option or expression) print one line
``dataknobs-data: error: ...`` on stderr and exit 2; other failures exit 1.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import decimal
import functools
import hashlib
import json
import math
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import quote

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
from rich.table import Table
from rich.text import Text

from dataknobs_data.urls import parse_url

if TYPE_CHECKING:
    from dataknobs_data.database import SyncDatabase
    from dataknobs_data.migration import MigrationProgress, TransformLike
    from dataknobs_data.query import Operator, Query
    from dataknobs_data.records import Record
    from dataknobs_data.validation import Schema

__all__ = [
    "CopyStats",
    "build_parser",
    "build_query",
    "copy_records",
    "default_checkpoint_path",
    "main",
    "open_database",
    "parse_sort",
    "parse_where",
    "to_jsonable",
]

PROG = "dataknobs-data"
DEFAULT_BATCH_SIZE = 1000
DEFAULT_DEMO_PATH = "./dataknobs-demo.db"
DEFAULT_DEMO_N = 10_000

_T = TypeVar("_T")


class UsageError(Exception):
    """A mistake in the command line; reported on one line with exit status 2."""


class _ArgumentParser(argparse.ArgumentParser):
    # argparse prints the whole usage block and exits; we want one line and a return value
    # from main(), so errors are raised and handled there.
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# --------------------------------------------------------------------------- --where

_WORD_OPS: dict[str, str] = {
    "exists": "exists",
    "not_exists": "not_exists",
    "not exists": "not_exists",
    "in": "in",
    "not_in": "not_in",
    "not in": "not_in",
    "between": "between",
    "not_between": "not_between",
    "not between": "not_between",
    "like": "like",
    "not_like": "not_like",
    "not like": "not_like",
    "regex": "regex",
    "starts_with": "starts_with",
    "startswith": "starts_with",
}
_SYMBOL_OPS: dict[str, str] = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    ">": ">",
    ">=": ">=",
    "<": "<",
    "<=": "<=",
    "~": "like",
    "!~": "not_like",
}
_NO_VALUE_OPS = frozenset({"exists", "not_exists"})
_STRING_OPS = frozenset({"like", "not_like", "regex", "starts_with"})
_LIST_OPS = frozenset({"in", "not_in"})
_RANGE_OPS = frozenset({"between", "not_between"})

# A field name in the word form cannot hold an operator character, so "a=b in c" reads as
# a = "b in c" rather than a field called "a=b".
_WORD_RE = re.compile(
    r"^\s*(?P<field>[^\s=<>!~]+)\s+"
    r"(?P<op>not[ _]exists|exists|not[ _]in|in|not[ _]between|between|not[ _]like|like"
    r"|regex|starts_?with)"
    r"(?:\s+(?P<value>.*?))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SYMBOL_RE = re.compile(
    r"^\s*(?P<field>[^=<>!~]*?)\s*(?P<op>>=|<=|!=|==|!~|=|>|<|~)\s*(?P<value>.*?)\s*$",
    re.DOTALL,
)


def _reject_constant(name: str) -> NoReturn:
    # NaN/Infinity are not JSON; "x=NaN" should compare with the string.
    raise ValueError(name)


def _parse_value(text: str) -> Any:
    """JSON when it parses (30 -> int, true -> bool, "x" -> str), else the raw string."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def _parse_string(text: str) -> str:
    """Like _parse_value, but only a quoted JSON string is unquoted: patterns stay text."""
    value = _parse_value(text)
    return value if isinstance(value, str) else text


def _split_list(text: str) -> list[Any]:
    stripped = text.strip()
    if stripped.startswith("["):
        value = _parse_value(stripped)
        if isinstance(value, list):
            return value
    return [_parse_value(part.strip()) for part in text.split(",")]


def parse_where(expr: str) -> tuple[str, Operator, Any]:
    """Parse one ``--where`` expression into ``(field, Operator, value)``.

    Forms (several ``--where`` are ANDed)::

        age>=30   age>30   age<=30   age<30   name=alice   name==alice   city!=Paris
        name~a%            (LIKE: % any run, _ one char, case-insensitive)   name!~a%
        tags in a,b        tags not_in a,b     (or a JSON list: tags in ["a,b", "c"])
        age between 20,30  age not_between 20,30
        field exists       field not_exists
        name starts_with al                    name regex ^a
        name like a%       name not_like a%

    Values are JSON when they parse (``30`` is an int, ``true`` a bool, ``"30"`` a str),
    else the raw text; patterns (like, regex, starts_with) are always text.

    Raises:
        ValueError: one-line message naming the problem.
    """
    from dataknobs_data.query import Operator

    if not expr or not expr.strip():
        raise ValueError("empty --where expression")
    match = _WORD_RE.match(expr)
    if match:
        op = _WORD_OPS[" ".join(match["op"].lower().replace("_", " ").split()).replace(" ", "_")]
        raw = match["value"]
    else:
        match = _SYMBOL_RE.match(expr)
        if not match:
            raise ValueError(
                f"cannot parse --where {expr!r}: expected FIELD OP VALUE "
                "(e.g. 'age>=30', 'name=alice', 'tags in a,b', 'email exists')"
            )
        op = _SYMBOL_OPS[match["op"]]
        raw = match["value"]
    field = match["field"].strip()
    if not field:
        raise ValueError(f"missing field name in --where {expr!r}")

    value: Any
    if op in _NO_VALUE_OPS:
        if raw:
            raise ValueError(f"'{op}' takes no value in --where {expr!r}")
        value = None
    elif raw is None or raw == "":
        raise ValueError(f'missing value in --where {expr!r} (use "" for an empty string)')
    elif op in _STRING_OPS:
        value = _parse_string(raw)
        if op == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r} in --where {expr!r}: {exc}") from None
    elif op in _LIST_OPS:
        value = _split_list(raw)
    elif op in _RANGE_OPS:
        value = _split_list(raw)
        if len(value) != 2:
            raise ValueError(f"'{op}' needs two values LO,HI in --where {expr!r}")
    else:
        value = _parse_value(raw)
        if value is None:
            # Every operator but exists/not_exists is False on None, so this matches nothing.
            hint = "exists" if op == "!=" else "not_exists"
            raise ValueError(f"null never compares in --where {expr!r}: use '{field} {hint}'")
    return field, Operator(op), value


def parse_sort(spec: str) -> tuple[str, str]:
    """Parse a ``--sort`` value: ``FIELD`` or ``+FIELD`` (ascending), ``-FIELD`` or
    ``FIELD:desc`` (descending). Returns ``(field, "asc" | "desc")``."""
    text = spec.strip()
    order = "asc"
    if ":" in text:
        head, _, tail = text.rpartition(":")
        if tail.lower() in ("asc", "desc"):
            text, order = head.strip(), tail.lower()
    if text.startswith("-"):
        text, order = text[1:].strip(), "desc"
    elif text.startswith("+"):
        text = text[1:].strip()
    if not text:
        raise ValueError(f"missing field name in --sort {spec!r}")
    return text, order


def _parse_fields(spec: str) -> list[str]:
    fields = [f.strip() for f in spec.split(",")]
    if not all(fields):
        raise ValueError(f"empty field name in --fields {spec!r}")
    return fields


def build_query(
    where: Sequence[str] = (),
    sort: Sequence[str] = (),
    limit: int | None = None,
    offset: int | None = None,
    fields: Sequence[str] | None = None,
) -> Query:
    """Build a :class:`~dataknobs_data.query.Query` from command-line pieces."""
    from dataknobs_data.query import Query

    query = Query()
    for expr in where:
        field, op, value = parse_where(expr)
        query.filter(field, op, value)
    for spec in sort:
        field, order = parse_sort(spec)
        query.sort_by(field, order)
    if offset is not None:
        query.offset(offset)
    if limit is not None:
        query.limit(limit)
    if fields:
        query.select(*fields)
    return query


# --------------------------------------------------------------------------- databases

_LOCAL_BACKENDS = frozenset({"file", "sqlite"})


def open_database(url: str, *, must_exist: bool = False) -> SyncDatabase:
    """Open and connect the database a backend URL names.

    With ``must_exist``, a local file that is not there is an error instead of being
    created empty, so a typo in a source path is not read as "0 records".
    """
    from dataknobs_data.factory import DatabaseFactory

    backend, config = parse_url(url)
    if must_exist and backend in _LOCAL_BACKENDS:
        path = str(config.get("path", ""))
        if path != ":memory:" and not os.path.exists(path):
            raise UsageError(f"no such file: {path}")
    db = DatabaseFactory().create(backend=backend, **config)
    try:
        db.connect()
    except BaseException:
        db.close()
        raise
    return db


# --------------------------------------------------------------------------- output


def to_jsonable(value: Any) -> Any:
    """Convert a record value into plain JSON types.

    datetimes, dates and times become ISO strings, Decimal a str, bytes base64, tuples and
    sets lists; NaN and infinities become the strings "NaN", "Infinity", "-Infinity"
    (strict JSON has no token for them).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return str(value)


def _cell(value: Any) -> str:
    """One value as text for CSV and table cells."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    plain = to_jsonable(value)
    if isinstance(plain, str):
        return plain
    return json.dumps(plain, ensure_ascii=False)


def _row(record: Record, fields: Sequence[str] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": record.id, **record.data}
    if fields:
        row = {"id": row["id"], **{f: row[f] for f in fields if f in row and f != "id"}}
    return row


def _columns(rows: Iterable[dict[str, Any]], fields: Sequence[str] | None) -> list[str]:
    if fields:
        return ["id", *(f for f in fields if f != "id")]
    seen: dict[str, None] = {"id": None}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _write_json(records: Iterable[Record], fields: Sequence[str] | None, out: IO[str]) -> int:
    # Written item by item so a large result never sits in memory as one JSON string.
    n = 0
    out.write("[")
    for record in records:
        out.write(",\n" if n else "\n")
        out.write(json.dumps(to_jsonable(_row(record, fields)), ensure_ascii=False))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _write_csv(records: Iterable[Record], fields: Sequence[str] | None, out: IO[str]) -> int:
    rows = [_row(r, fields) for r in records]
    columns = _columns(rows, fields)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return len(rows)


def _write_table(records: Iterable[Record], fields: Sequence[str] | None, console: Console) -> int:
    rows = [_row(r, fields) for r in records]
    columns = _columns(rows, fields)
    table = Table(show_lines=False, caption=f"{len(rows):,} record(s)")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)
    return len(rows)


# --------------------------------------------------------------------------- copy


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


# --------------------------------------------------------------------------- commands


def _stdout() -> IO[str]:
    # Looked up at call time so redirected/captured stdout is honoured.
    return sys.stdout


def _print_error(message: str) -> None:
    text = " ".join(message.splitlines()).strip() or "unknown error"
    print(f"{PROG}: error: {text}", file=sys.stderr)


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
    source = open_database(args.source, must_exist=True)
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


def _cmd_validate(args: argparse.Namespace) -> int:
    from dataknobs_data.streaming import StreamConfig
    from dataknobs_data.validation import ValidationContext

    schema = _load_schema(args.schema)
    query = build_query(args.where) if args.where else None
    context = ValidationContext()
    checked = invalid = 0
    out = _stdout()
    db = open_database(args.url, must_exist=True)
    try:
        for record in db.stream_read(query, StreamConfig(batch_size=DEFAULT_BATCH_SIZE)):
            checked += 1
            result = schema.validate(record, context=context)
            if not result.valid:
                invalid += 1
                if invalid <= args.max_errors:
                    print(f"{record.id}: {'; '.join(result.errors)}", file=out)
    finally:
        db.close()
    if invalid > args.max_errors:
        print(f"... and {invalid - args.max_errors:,} more invalid record(s)", file=out)
    print(
        f"Checked {checked:,} records against schema '{schema.name}': "
        f"{checked - invalid:,} valid, {invalid:,} invalid",
        file=out,
    )
    return 1 if invalid else 0


def _cmd_count(args: argparse.Namespace) -> int:
    query = build_query(args.where) if args.where else None
    db = open_database(args.url, must_exist=True)
    try:
        n = db.count(query)
    finally:
        db.close()
    print(n, file=_stdout())
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    fields = _parse_fields(args.fields) if args.fields else None
    query = build_query(args.where, args.sort, args.limit, args.offset, fields)
    db = open_database(args.url, must_exist=True)
    try:
        records = db.search(query)
    finally:
        db.close()
    out = _stdout()
    if args.format == "json":
        _write_json(records, fields, out)
    elif args.format == "csv":
        _write_csv(records, fields, out)
    else:
        _write_table(records, fields, Console(file=out))
    return 0


# --------------------------------------------------------------------------- demo

_FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "zoe",
)  # fmt: skip
_CITIES = ("Paris", "London", "Berlin", "Madrid", "Rome", "Lisbon", "Vienna", "Oslo")
_TAGS = ("python", "rust", "data", "ml", "web", "ops", "cloud", "db")


def _demo_records(n: int, seed: int = 42) -> Iterator[Record]:
    """Deterministic sample people: the same ``n`` always gives the same data."""
    from dataknobs_data.records import Record

    rng = random.Random(seed)
    epoch = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    for i in range(n):
        name = rng.choice(_FIRST_NAMES)
        yield Record(
            {
                "name": name,
                "age": rng.randint(18, 79),
                "city": rng.choice(_CITIES),
                "email": f"{name}{i}@example.com",
                "score": round(rng.uniform(0, 100), 2),
                "active": rng.random() < 0.7,
                "joined": epoch + dt.timedelta(minutes=rng.randrange(5 * 365 * 24 * 60)),
                "tags": rng.sample(_TAGS, rng.randint(1, 3)),
            },
            id=f"person-{i:06d}",
        )


def _thousands(n: int) -> str:
    return f"{n:,}"


def _file_url(path: Path, query: str = "") -> str:
    return "file://" + quote(str(path.resolve())) + (f"?{query}" if query else "")


class _Timer:
    """Prints one aligned timing line per demo step."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.started = time.perf_counter()

    def step(self, label: str, fn: Callable[[], _T], show: Callable[[_T], str]) -> _T:
        t0 = time.perf_counter()
        value = fn()
        elapsed = time.perf_counter() - t0
        print(f"  {elapsed:8.3f}s  {label:<56} {show(value)}", file=self.out, flush=True)
        return value


def _cmd_demo(args: argparse.Namespace) -> int:
    from dataknobs_data.query import Query

    path = Path(args.path)
    if path.suffix.lower() in (".jsonl", ".parquet"):
        raise UsageError(f"--path {path} would be overwritten by the demo's own output files")
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonl_path = path.with_suffix(".jsonl")
    parquet_path = path.with_suffix(".parquet")
    # The JSONL file backend appends on create, so stale outputs are removed, not reused.
    for stale in (jsonl_path, parquet_path):
        stale.unlink(missing_ok=True)

    n = args.n
    out = _stdout()
    console = Console(file=out)
    sqlite_url = "sqlite://" + quote(str(path.resolve())) + "?table=people"
    print(f"{PROG} demo: {n:,} records in {path}", file=out)
    timer = _Timer(out)

    db = open_database(sqlite_url)
    try:
        timer.step("clear table 'people'", db.clear, lambda k: f"{k:,} removed")

        def create() -> int:
            batch: list[Record] = []
            stored = 0
            for record in _demo_records(n):
                batch.append(record)
                if len(batch) >= DEFAULT_BATCH_SIZE:
                    stored += len(db.create_batch(batch))
                    batch = []
            if batch:
                stored += len(db.create_batch(batch))
            return stored

        t0 = time.perf_counter()
        timer.step(f"create {n:,} records (create_batch)", create, lambda k: f"{k:,} stored")
        rate = n / max(time.perf_counter() - t0, 1e-9)
        print(f"  {'':9}  {'':<56} {rate:,.0f} records/s", file=out)

        timer.step("count()", db.count, _thousands)
        active = Query().filter("active", "=", True).filter("age", ">=", 30)
        timer.step("count(active = true AND age >= 30)", lambda: db.count(active), _thousands)
        like = Query().filter("name", "like", "a%")
        timer.step("count(name LIKE 'a%')", lambda: db.count(like), _thousands)
        top = (
            Query()
            .filter("city", "=", "Paris")
            .filter("age", "between", [30, 40])
            .sort_by("score", "desc")
            .limit(5)
        )
        rows = timer.step(
            "search(city = Paris, age 30..40, sort -score, limit 5)",
            lambda: db.search(top),
            lambda rs: f"{len(rs)} rows",
        )
        _write_table(rows, ["name", "age", "city", "score", "active"], console)

        for target_path, label in ((jsonl_path, "JSONL"), (parquet_path, "Parquet")):
            target = open_database(_file_url(target_path))
            try:
                stats = timer.step(
                    f"stream to {label}: {target_path.name}",
                    functools.partial(copy_records, db, target),
                    lambda s: f"{s.successful:,} records ({s.rate:,.0f}/s)",
                )
            finally:
                target.close()
            if stats.failed:
                _print_error(f"{stats.failed:,} record(s) could not be written to {target_path}")
                return 1
    finally:
        db.close()

    for target_path in (jsonl_path, parquet_path):
        check = open_database(_file_url(target_path), must_exist=True)
        try:
            timer.step(f"count() of {target_path.name}", check.count, _thousands)
        finally:
            check.close()
    total = time.perf_counter() - timer.started
    print(f"Done in {total:.2f}s: {path}, {jsonl_path}, {parquet_path}", file=out)
    return 0


# --------------------------------------------------------------------------- parser


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dataknobs-data")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dataknobs-data`` (errors raise :class:`UsageError`)."""
    url_help = (
        "backend URL: memory://, file:///path.jsonl|.json|.csv|.tsv|.parquet[.gz], "
        "sqlite:///path.db?table=T, postgresql://user:pw@host:port/db?table=T, "
        "s3://bucket/prefix, elasticsearch://host:port/index"
    )
    where_help = (
        "filter, repeatable (ANDed): 'age>=30', 'name=alice', 'city!=Paris', 'name~a%%', "
        "'tags in a,b', 'field exists', 'age between 20,30', 'name starts_with al', "
        "'name regex ^a'"
    )
    parser = _ArgumentParser(
        prog=PROG,
        description="Copy, validate, count and query dataknobs-data backends by URL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show the full traceback of an error (for bug reports)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    copy = commands.add_parser("copy", help="stream every record from SRC to DST")
    copy.add_argument("source", metavar="SRC", help=url_help)
    copy.add_argument("target", metavar="DST", help="target backend URL")
    copy.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"records per read/write batch (default {DEFAULT_BATCH_SIZE})",
    )
    copy.add_argument("--where", action="append", default=[], metavar="EXPR", help=where_help)
    copy.add_argument(
        "--on-conflict",
        choices=("insert", "upsert", "skip"),
        default="insert",
        help="when an id exists in DST: insert (count as failure), upsert, skip",
    )
    copy.add_argument(
        "--transform",
        metavar="FILE",
        help="YAML/JSON spec of a Transformer (rules: ...) or a Migration (operations: ...) "
        "applied to every record",
    )
    copy.add_argument(
        "--partitions",
        type=_positive_int,
        default=1,
        metavar="N",
        help="copy through N hash partitions in parallel (default 1)",
    )
    copy.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="progress file, written after every batch (default: .dkdata-copy-<hash>.json "
        "in the current folder, removed when the copy completes)",
    )
    copy.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted copy from its checkpoint (same SRC, DST, --where, "
        "--partitions); the source must be unchanged",
    )
    copy.add_argument(
        "--schema",
        metavar="FILE",
        help="YAML/JSON schema spec; records failing it (after --transform) are counted "
        "as failed and not written",
    )
    copy.add_argument("--no-progress", action="store_true", help="no progress bar")
    copy.set_defaults(func=_cmd_copy)

    validate = commands.add_parser(
        "validate", help="check every record against a schema; exit 1 if any is invalid"
    )
    validate.add_argument("url", metavar="URL", help=url_help)
    validate.add_argument(
        "--schema", required=True, metavar="FILE", help="YAML/JSON schema spec (name, fields)"
    )
    validate.add_argument("--where", action="append", default=[], metavar="EXPR", help=where_help)
    validate.add_argument(
        "--max-errors",
        type=_non_negative_int,
        default=20,
        metavar="N",
        help="print at most N invalid records (default 20)",
    )
    validate.set_defaults(func=_cmd_validate)

    count = commands.add_parser("count", help="print the number of matching records")
    count.add_argument("url", metavar="URL", help=url_help)
    count.add_argument("--where", action="append", default=[], metavar="EXPR", help=where_help)
    count.set_defaults(func=_cmd_count)

    query = commands.add_parser("query", help="print matching records")
    query.add_argument("url", metavar="URL", help=url_help)
    query.add_argument("--where", action="append", default=[], metavar="EXPR", help=where_help)
    query.add_argument(
        "--sort",
        action="append",
        default=[],
        metavar="FIELD|-FIELD",
        help="sort key, repeatable; '-' prefix for descending",
    )
    query.add_argument("--limit", type=_non_negative_int, metavar="N", help="at most N records")
    query.add_argument(
        "--offset", type=_non_negative_int, metavar="N", help="skip the first N matches"
    )
    query.add_argument("--fields", metavar="a,b", help="only these fields (and the id)")
    query.add_argument("--format", choices=("table", "json", "csv"), default="table")
    query.set_defaults(func=_cmd_query)

    demo = commands.add_parser(
        "demo",
        help="create sample records in SQLite, query them and export JSONL and Parquet",
    )
    demo.add_argument(
        "--path",
        default=DEFAULT_DEMO_PATH,
        metavar="FILE",
        help=f"SQLite file (default {DEFAULT_DEMO_PATH}); FILE.jsonl and FILE.parquet "
        "are written beside it",
    )
    demo.add_argument(
        "--n",
        type=_positive_int,
        default=DEFAULT_DEMO_N,
        metavar="N",
        help=f"number of records (default {DEFAULT_DEMO_N:,})",
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


_VALUE_OPTIONS = frozenset({"--sort", "--where"})


def _attach_dash_values(argv: list[str]) -> list[str]:
    # argparse reads "--sort -age" as two options; "--sort=-age" is what the user meant.
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if (
            token in _VALUE_OPTIONS
            and i + 1 < len(argv)
            and argv[i + 1].startswith("-")
            and not argv[i + 1].startswith("--")
        ):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        if token == "--":
            out.extend(argv[i:])
            break
        out.append(token)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status.

    0 on success, 1 when the operation failed (e.g. records that could not be written),
    2 for a bad command line, URL, ``--where`` expression or backend configuration.
    """
    args_list = _attach_dash_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except UsageError as exc:
        _print_error(str(exc))
        return 2
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0

    try:
        from dataknobs_data.exceptions import (
            BackendNotFoundError,
            ConfigurationError,
            DataknobsDataError,
            QueryError,
        )
    except ImportError as exc:
        _print_error(f"cannot load dataknobs_data: {exc}")
        return 1

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); point stdout at devnull so the interpreter's
        # final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:
        if args.traceback:
            raise
        user_errors: tuple[type[BaseException], ...] = (
            UsageError,
            ConfigurationError,
            BackendNotFoundError,
            QueryError,
        )
        if isinstance(exc, user_errors):
            _print_error(str(exc))
            return 2
        if isinstance(exc, DataknobsDataError | OSError):
            # DuplicateRecordError is also a ValueError, but it is a data problem, not
            # a usage one: checked before ValueError.
            _print_error(str(exc) or type(exc).__name__)
            return 1
        if isinstance(exc, ValueError):
            _print_error(str(exc))
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
