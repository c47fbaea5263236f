"""The read verbs: ``validate``, ``count`` and ``query``."""

from __future__ import annotations

import argparse

from rich.console import Console

from ._common import DEFAULT_BATCH_SIZE, _stdout
from .copying import _load_schema
from .databases import open_database
from .output import _write_csv, _write_json, _write_table
from .where import _parse_fields, build_query


def _cmd_validate(args: argparse.Namespace) -> int:
    from dataknobs_data.streaming import StreamConfig
    from dataknobs_data.validation import ValidationContext

    schema = _load_schema(args.schema)
    query = build_query(args.where) if args.where else None
    context = ValidationContext()
    checked = invalid = 0
    out = _stdout()
    db = open_database(args.url, read_only=True)
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
    db = open_database(args.url, read_only=True)
    try:
        n = db.count(query)
    finally:
        db.close()
    print(n, file=_stdout())
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    fields = _parse_fields(args.fields) if args.fields else None
    query = build_query(args.where, args.sort, args.limit, args.offset, fields)
    db = open_database(args.url, read_only=True)
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
