"""Output formatters of ``query``: JSON, CSV and a rich table."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from dataknobs_data.records import Record


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
