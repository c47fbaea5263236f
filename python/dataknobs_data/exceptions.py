"""Exceptions raised by dataknobs-data.

Every exception derives from :class:`DataknobsDataError`. The messages are part of the public
contract. Constructor arguments are kept as attributes of the same name. Exceptions that the
original pure-Python package raised as plain ``ValueError`` (duplicate ids, configuration errors,
unknown backends, unknown query operators) are also ``ValueError`` subclasses so that existing
``except ValueError`` handlers keep working.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "BackendNotFoundError",
    "ConcurrencyError",
    "ConfigurationError",
    "DataFormatError",
    "DatabaseConnectionError",
    "DatabaseError",
    "DatabaseOperationError",
    "DataknobsDataError",
    "DuplicateRecordError",
    "FieldTypeError",
    "MigrationError",
    "QueryError",
    "RecordNotFoundError",
    "RecordValidationError",
    "SerializationError",
    "TransactionError",
]


class DataknobsDataError(Exception):
    """Base class of every dataknobs-data error.

    Args:
        message: Human-readable description.
        details: Optional structured context.
    """

    # The arguments the constructor was called with, so that pickling (e.g. across
    # process pools) rebuilds the exception with its formatted message intact.
    _init_args: tuple[Any, ...]

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details) if details else {}
        self._init_args = (message, details) if details else (message,)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._init_args, self.__dict__)


class RecordNotFoundError(DataknobsDataError):
    """A record with the given id does not exist."""

    def __init__(self, record_id: str) -> None:
        super().__init__(f"Record with ID '{record_id}' not found")
        self.record_id = record_id
        self.id = record_id
        self._init_args = (record_id,)


class DuplicateRecordError(DataknobsDataError, ValueError):
    """A record with the given id already exists."""

    def __init__(self, record_id: str) -> None:
        super().__init__(f"Record with ID '{record_id}' already exists")
        self.record_id = record_id
        self.id = record_id
        self._init_args = (record_id,)


class RecordValidationError(DataknobsDataError):
    """A record (or one of its fields) failed validation."""

    def __init__(self, message: str, field_name: str | None = None) -> None:
        full = f"Field '{field_name}': {message}" if field_name else message
        super().__init__(full)
        self.message = message
        self.field_name = field_name
        self._init_args = (message, field_name)


class FieldTypeError(DataknobsDataError):
    """A field value does not have the expected type."""

    def __init__(self, field_name: str, expected_type: Any, actual_type: Any) -> None:
        super().__init__(
            f"Field '{field_name}' type mismatch: expected {expected_type}, got {actual_type}"
        )
        self.field_name = field_name
        self.expected_type = expected_type
        self.actual_type = actual_type
        self._init_args = (field_name, expected_type, actual_type)


class DatabaseError(DataknobsDataError):
    """A storage backend failed."""


class DatabaseConnectionError(DatabaseError):
    """Connecting to a backend failed."""

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"Failed to connect to {backend} backend: {message}")
        self.backend = backend
        self.message = message
        self._init_args = (backend, message)


class DatabaseOperationError(DatabaseError):
    """A database operation failed."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"Database operation '{operation}' failed: {message}")
        self.operation = operation
        self.message = message
        self._init_args = (operation, message)


class QueryError(DataknobsDataError, ValueError):
    """A query is malformed (unknown operator, invalid regex, negative limit...)."""

    def __init__(self, message: str, query: Any = None) -> None:
        super().__init__(f"Query error: {message}")
        self.message = message
        self.query = query
        self._init_args = (message, query)


class SerializationError(DataknobsDataError):
    """A value cannot be serialised to (or read from) a storage format."""

    def __init__(self, format: str, message: str) -> None:
        super().__init__(f"Serialization error ({format}): {message}")
        self.format = format
        self.message = message
        self._init_args = (format, message)


class DataFormatError(SerializationError):
    """Stored data is malformed (e.g. a corrupt file)."""

    def __init__(self, format: str, message: str) -> None:
        # Bypass SerializationError's message formatting; this class has its own wording.
        DataknobsDataError.__init__(self, f"Data format error ({format}): {message}")
        self.format = format
        self.message = message
        self._init_args = (format, message)


class BackendNotFoundError(DataknobsDataError, ValueError):
    """No backend is registered under the requested name."""

    def __init__(self, backend: str, available: Iterable[str] | None = None) -> None:
        names = list(available) if available is not None else []
        message = f"Backend '{backend}' not found"
        if names:
            message += f". Available backends: {', '.join(names)}"
        super().__init__(message)
        self.backend = backend
        self.available = names
        self._init_args = (backend, names)


class ConfigurationError(DataknobsDataError, ValueError):
    """A configuration value is missing, unknown or invalid."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"Configuration error for '{parameter}': {message}")
        self.parameter = parameter
        self.message = message
        self._init_args = (parameter, message)


class ConcurrencyError(DataknobsDataError):
    """Concurrent access conflicted."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Concurrency error: {message}")
        self.message = message
        self._init_args = (message,)


class TransactionError(DatabaseError):
    """A transaction failed."""


class MigrationError(DataknobsDataError):
    """Migrating data between versions or stores failed."""

    def __init__(self, source: str, target: str, message: str) -> None:
        super().__init__(f"Migration from {source} to {target} failed: {message}")
        self.source = source
        self.target = target
        self.message = message
        self._init_args = (source, target, message)
