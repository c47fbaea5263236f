"""The argument parser of ``dataknobs-data``."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import DEFAULT_BATCH_SIZE, DEFAULT_DEMO_N, DEFAULT_DEMO_PATH, PROG, _ArgumentParser
from .commands import _cmd_count, _cmd_query, _cmd_validate
from .copying import _cmd_copy
from .demo import _cmd_demo
from .where import WHERE_RULES


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
        "sqlite:///path.db?table=T, postgresql://user:pw@host:port/db?table=T"
        "[&sslmode=verify-full&sslrootcert=CA.pem], "
        "s3://bucket/prefix, elasticsearch://host:port/index"
    )
    where_help = (
        "filter, repeatable (ANDed): 'age>=30', 'name=alice', 'city!=Paris', 'name~a%%', "
        "'city in Paris,Rome', 'field exists', 'age between 20,30', 'name starts_with al', "
        "'name regex ^a' (value rules below)"
    )
    # The where-language rules keep their line breaks below each command's options.
    where_epilog: dict[str, Any] = {
        "epilog": "--where values:\n" + WHERE_RULES,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
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

    copy = commands.add_parser("copy", help="stream every record from SRC to DST", **where_epilog)
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
        "--partitions); the source must be unchanged. Without a checkpoint it stops, "
        "unless --restart is given",
    )
    copy.add_argument(
        "--restart",
        action="store_true",
        help="with --resume: copy from the beginning when there is no checkpoint to resume",
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
        "validate",
        help="check every record against a schema; exit 1 if any is invalid",
        **where_epilog,
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

    count = commands.add_parser(
        "count", help="print the number of matching records", **where_epilog
    )
    count.add_argument("url", metavar="URL", help=url_help)
    count.add_argument("--where", action="append", default=[], metavar="EXPR", help=where_help)
    count.set_defaults(func=_cmd_count)

    query = commands.add_parser("query", help="print matching records", **where_epilog)
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
