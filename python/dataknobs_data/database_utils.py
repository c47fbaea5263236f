"""Helpers for writing a backend in Python: stamping ids on results and shaping them.

Our own backends shape results in the Rust core; these serve user backends written as 0.11.0
backends were, and apply the same semantics as every backend (``query.apply_query``).
"""

from __future__ import annotations

from .query import Query, apply_query
from .records import Record

__all__ = ["ensure_record_id", "process_search_results"]


def ensure_record_id(record: Record, record_id: str) -> Record:
    """``record`` with ``record_id`` as its storage id (a copy when it had another or none)."""
    if record.has_storage_id() and record.storage_id == record_id:
        return record
    stamped = record.copy(deep=True)
    stamped.storage_id = record_id
    return stamped


def process_search_results(
    results: list[tuple[str, Record]], query: Query, deep_copy: bool = True
) -> list[Record]:
    """Records for ``(storage id, record)`` pairs, shaped by ``query``.

    Each record carries its storage id; then the query's sort (the total order of every
    backend), offset, limit and projection apply. Filters are not applied: the pairs are taken
    to be the matches already. With ``deep_copy`` the results share nothing with the inputs.
    """
    records = [ensure_record_id(record, rid) for rid, record in results]
    return apply_query(records, query.copy().clear_filters(), copy=deep_copy)
