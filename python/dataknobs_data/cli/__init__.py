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
:func:`parse_where`.
The parts live in this package: ``parser`` (arguments), ``where`` (the expression
language), ``databases`` (opening URLs), ``output`` (formatters), ``copying`` (the copy
engine), ``commands`` (the read verbs) and ``demo``.

User errors (a bad URL, option or expression) print one line ``dataknobs-data: error: ...``
on stderr and exit 2; other failures exit 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from dataknobs_data.exceptions import (
    BackendNotFoundError,
    ConfigurationError,
    DataknobsDataError,
    QueryError,
)

from ._common import PROG, UsageError, _print_error
from .copying import CopyStats, copy_records, default_checkpoint_path
from .databases import open_database
from .output import to_jsonable
from .parser import _attach_dash_values, build_parser
from .where import build_query, parse_sort, parse_where

__all__ = [
    "PROG",
    "CopyStats",
    "UsageError",
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
    # Kept so a command can tell the user how to run it again (copy --resume).
    args.argv = args_list

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
