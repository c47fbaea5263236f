"""The async SQLite backend under 0.11.0's module name (the class lives in ``backends.sqlite``)."""

from __future__ import annotations

from .sqlite import AsyncSQLiteDatabase

__all__ = ["AsyncSQLiteDatabase"]
