"""How records sit in a SQL row, as 0.11.0's ``sql_base`` names it.

Our SQLite and PostgreSQL tables hold ``id`` and the record's ``data`` and ``metadata`` as
tagged JSON text (docs/internals.md §3: JSON, with datetimes, bytes and the like tagged so they
round-trip). :class:`SQLRecordSerializer` converts with the Rust core's own encoder, so what it
writes is what the backends write and what it reads is what they read. The SQL itself is built
in the Rust core; 0.11.0's query builders and table managers are not offered (see
tests/data/api_exclusions.toml).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from .. import _native
from ..exceptions import RecordValidationError
from ..query import is_storage_key_field
from ..records import Record

__all__ = [
    "SQLRecordSerializer",
    "constraint_violation_error",
    "escape_like_prefix",
    "is_duplicate_key_error",
    "prefix_upper_bound",
    "resolve_json_column_and_path",
    "validate_field_name",
]

_METADATA_PREFIX = "metadata."
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LAST_CODE_POINT = 0x10FFFF


def resolve_json_column_and_path(field: str) -> tuple[str, str]:
    """The JSON column (``"data"`` or ``"metadata"``) and the path inside it for a field.

    ``"metadata.x"`` is ``x`` in the metadata column; anything else is in ``data``.

    Raises:
        ValueError: for ``"id"``, which is the id column, not a JSON path.
    """
    if is_storage_key_field(field):
        raise ValueError(
            f"{field!r} is the record id (the id column), not a path in a JSON column; "
            "check is_storage_key_field() first"
        )
    if field.startswith(_METADATA_PREFIX):
        return "metadata", field[len(_METADATA_PREFIX) :]
    return "data", field


def validate_field_name(field: str) -> None:
    """Raise ValueError unless ``field`` is a plain identifier (``[A-Za-z_][A-Za-z0-9_]*``).

    For code that splices a field name into SQL text; our backends bind every value and walk
    JSON paths in the Rust core, so they accept any field name.
    """
    if not _IDENTIFIER.match(field):
        raise ValueError(
            f"Invalid field name: {field!r}. Field names must match [A-Za-z_][A-Za-z0-9_]*."
        )


def escape_like_prefix(prefix: str) -> str:
    """``prefix`` with LIKE's wildcards and escape character escaped (escape char ``\\``)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string above every string that starts with ``prefix`` (for a range scan
    ``>= prefix AND < bound``); None when there is none (empty, or only the last code point)."""
    for i in range(len(prefix) - 1, -1, -1):
        if ord(prefix[i]) < _LAST_CODE_POINT:
            return prefix[:i] + chr(ord(prefix[i]) + 1)
    return None


def is_duplicate_key_error(exc: BaseException) -> bool:
    """Whether a driver error says a unique or primary key was violated."""
    text = str(exc).lower()
    return any(
        marker in text for marker in ("unique constraint failed", "primary key", "duplicate key")
    )


def constraint_violation_error(record_id: str | None = None) -> RecordValidationError:
    """The error for a record the database refused by one of its constraints."""
    if record_id:
        return RecordValidationError(f"Record '{record_id}' was rejected by a database constraint")
    return RecordValidationError("A record was rejected by a database constraint")


class SQLRecordSerializer:
    """Records to and from the ``(id, data, metadata)`` text of our SQL tables."""

    @staticmethod
    def record_to_json(record: Record) -> str:
        """The record's data as the ``data`` column holds it (tagged JSON).

        Raises:
            SerializationError: a value has no place in the value model (a set, an object).
        """
        return _native.encode_json(record.data)

    @staticmethod
    def json_to_record(data_json: str, metadata_json: str | None = None) -> Record:
        """The record for a ``data`` (and ``metadata``) column's text."""
        data = _native.decode_json(data_json)
        metadata = _native.decode_json(metadata_json) if metadata_json else {}
        return Record(
            data if isinstance(data, dict) else {},
            metadata if isinstance(metadata, dict) else {},
        )

    @staticmethod
    def record_to_row(record: Record, id: str | None = None) -> dict[str, Any]:
        """``{"id", "data", "metadata"}`` as the table holds them: the id is ``id``, else the
        record's, else a new uuid4."""
        rid = id if id is not None else record.id
        return {
            "id": rid if rid is not None else str(uuid.uuid4()),
            "data": _native.encode_json(record.data),
            "metadata": _native.encode_json(dict(record.metadata)),
        }

    @staticmethod
    def row_to_record(row: Mapping[str, Any]) -> Record:
        """The record for a table row (columns as text, or already decoded)."""
        data = row.get("data")
        metadata = row.get("metadata")
        if isinstance(data, str | bytes):
            data = _native.decode_json(data if isinstance(data, str) else data.decode())
        if isinstance(metadata, str | bytes):
            metadata = _native.decode_json(
                metadata if isinstance(metadata, str) else metadata.decode()
            )
        return Record(
            data if isinstance(data, dict) else {},
            metadata if isinstance(metadata, dict) else {},
            storage_id=row.get("id"),
        )
