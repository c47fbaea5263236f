"""Allocate a record under an id that must be new: build, create, and on a collision try again.

For ids chosen by the caller (a short code, a slug with a counter): ``build`` makes a fresh
candidate each attempt, ``create`` refuses an existing id with DuplicateRecordError (every
backend here creates atomically), and the next attempt builds another candidate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .exceptions import DuplicateRecordError

if TYPE_CHECKING:
    from .database import AsyncDatabase, SyncDatabase
    from .records import Record

__all__ = ["DEFAULT_MAX_ATTEMPTS", "allocate", "allocate_sync"]

DEFAULT_MAX_ATTEMPTS = 16
"""Attempts before the last collision is raised."""


def _check_attempts(max_attempts: int) -> None:
    if max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")


async def allocate(
    db: AsyncDatabase,
    *,
    build: Callable[[], Awaitable[Record]],
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> str:
    """Create the first record ``build()`` makes whose id is free; return that id.

    Raises:
        DuplicateRecordError: every one of ``max_attempts`` candidates collided (the last).
        ValueError: ``max_attempts`` is below 1.
    """
    _check_attempts(max_attempts)
    for attempt in range(max_attempts):
        try:
            return await db.create(await build())
        except DuplicateRecordError:
            if attempt == max_attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def allocate_sync(
    db: SyncDatabase,
    *,
    build: Callable[[], Record],
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> str:
    """Blocking twin of :func:`allocate`."""
    _check_attempts(max_attempts)
    for attempt in range(max_attempts):
        try:
            return db.create(build())
        except DuplicateRecordError:
            if attempt == max_attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
