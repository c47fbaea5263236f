"""What every part of the command line shares: its name, defaults and how it reports errors."""

from __future__ import annotations

import argparse
import sys
from typing import IO, NoReturn

PROG = "dataknobs-data"
DEFAULT_BATCH_SIZE = 1000
DEFAULT_DEMO_PATH = "./dataknobs-demo.db"
DEFAULT_DEMO_N = 10_000


class UsageError(Exception):
    """A mistake in the command line; reported on one line with exit status 2."""


class _ArgumentParser(argparse.ArgumentParser):
    # argparse prints the whole usage block and exits; we want one line and a return value
    # from main(), so errors are raised and handled there.
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _stdout() -> IO[str]:
    # Looked up at call time so redirected/captured stdout is honoured.
    return sys.stdout


def _print_error(message: str) -> None:
    text = " ".join(message.splitlines()).strip() or "unknown error"
    print(f"{PROG}: error: {text}", file=sys.stderr)
