"""Exceptions raised by dataknobs-data.

Every exception derives from :class:`DataknobsDataError` (alias ``DataknobsError``) through the
same categories as dataknobs-data 0.11.0: ``NotFoundError``, ``OperationError``,
``ResourceError``, ``ValidationError``; a duplicate id is also a ``ConcurrencyError``. The
messages are part of the public contract. Constructor arguments are kept as attributes of the
same name, and ``context`` (alias ``details``) holds the structured facts. Exceptions that the
original pure-Python package raised as plain ``ValueError`` (duplicate ids, configuration errors,
unknown backends, unknown query operators) are also ``ValueError`` subclasses so that existing
``except ValueError`` handlers keep working.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "BackendNotFoundError",
    "CapabilityNotSupportedError",
    "ConcurrencyError",
    "ConfigurationError",
    "DataFormatError",
    "DatabaseConnectionError",
    "DatabaseError",
    "DatabaseOperationError",
    "DataknobsDataError",
    "DataknobsError",
    "DuplicateRecordError",
    "FieldTypeError",
    "MigrationError",
    "NotFoundError",
    "OperationError",
    "QueryError",
    "RecordNotFoundError",
    "RecordValidationError",
    "ResourceError",
    "SerializationError",
    "TransactionError",
    "ValidationError",
]


class DataknobsDataError(Exception):
    """Base class of every dataknobs-data error (also reachable as ``DataknobsError``).

    Args:
        message: Human-readable description; ``str(error)`` is this text.
        context: Optional structured context (ids, names) about the failure.
        details: Alternative spelling of ``context``; the first non-empty of ``details`` and
            ``context`` becomes both attributes (they are the same dict, never merged).
    """

    # The arguments the constructor was called with, so that pickling (e.g. across
    # process pools) rebuilds the exception with its formatted message intact.
    _init_args: tuple[Any, ...]

    def __init__(
        self,
        message: str,
        context: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = dict(details or context or {})
        self.details: dict[str, Any] = self.context
        self._init_args = (message, context, details) if (context or details) else (message,)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._init_args, self.__dict__)


DataknobsError = DataknobsDataError


class NotFoundError(DataknobsDataError):
    """Something looked up (a record, a backend) does not exist."""


class OperationError(DataknobsDataError):
    """An operation (a query, a transaction, a migration) failed."""


class ResourceError(DataknobsDataError):
    """A resource (a database, a connection) is unavailable or failed."""


class ValidationError(DataknobsDataError):
    """Data does not have the shape or type it must have."""


class RecordNotFoundError(NotFoundError):
    """A record with the given id does not exist."""

    def __init__(self, id: str) -> None:
        super().__init__(f"Record with ID '{id}' not found", context={"id": id})
        self.id = id
        self.record_id = id
        self._init_args = (id,)


class RecordValidationError(ValidationError):
    """A record (or one of its fields) failed validation."""

    def __init__(self, message: str, field_name: str | None = None) -> None:
        full = f"Field '{field_name}': {message}" if field_name else message
        super().__init__(full, context={"field_name": field_name} if field_name else None)
        self.message = message
        self.field_name = field_name
        self._init_args = (message, field_name)


class FieldTypeError(ValidationError):
    """A field value does not have the expected type."""

    def __init__(self, field_name: str, expected_type: Any, actual_type: Any) -> None:
        super().__init__(
            f"Field '{field_name}' type mismatch: expected {expected_type}, got {actual_type}",
            context={
                "field_name": field_name,
                "expected_type": expected_type,
                "actual_type": actual_type,
            },
        )
        self.field_name = field_name
        self.expected_type = expected_type
        self.actual_type = actual_type
        self._init_args = (field_name, expected_type, actual_type)


class DatabaseError(ResourceError):
    """A storage backend failed."""


class DatabaseConnectionError(DatabaseError):
    """Connecting to a backend failed."""

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(
            f"Failed to connect to {backend} backend: {message}", context={"backend": backend}
        )
        self.backend = backend
        self.message = message
        self._init_args = (backend, message)


class DatabaseOperationError(DatabaseError, OperationError):
    """A database operation failed."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(
            f"Database operation '{operation}' failed: {message}",
            context={"operation": operation},
        )
        self.operation = operation
        self.message = message
        self._init_args = (operation, message)


class QueryError(OperationError, ValueError):
    """A query is malformed (unknown operator, invalid regex, negative limit...)."""

    def __init__(self, message: str, query: Any = None) -> None:
        super().__init__(
            f"Query error: {message}", context={"query": str(query)} if query else None
        )
        self.message = message
        self.query = query
        self._init_args = (message, query)


class SerializationError(DataknobsDataError):
    """A value cannot be serialised to (or read from) a storage format."""

    def __init__(self, format: str, message: str) -> None:
        super().__init__(f"Serialization error ({format}): {message}", context={"format": format})
        self.format = format
        self.message = message
        self._init_args = (format, message)


class DataFormatError(SerializationError, ValidationError):
    """Stored data is malformed (e.g. a corrupt file)."""

    def __init__(self, format: str, message: str) -> None:
        # Bypass SerializationError's message formatting; this class has its own wording.
        DataknobsDataError.__init__(
            self, f"Data format error ({format}): {message}", context={"format": format}
        )
        self.format = format
        self.message = message
        self._init_args = (format, message)


class BackendNotFoundError(NotFoundError, ValueError):
    """No backend is registered under the requested name."""

    def __init__(self, backend: str, available: Iterable[str] | None = None) -> None:
        names = list(available) if available is not None else []
        message = f"Backend '{backend}' not found"
        if names:
            message += f". Available backends: {', '.join(names)}"
        super().__init__(message, context={"backend": backend, "available": names})
        self.backend = backend
        self.available = names
        self._init_args = (backend, names)


class ConfigurationError(DataknobsDataError, ValueError):
    """A configuration value is missing, unknown or invalid."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(
            f"Configuration error for '{parameter}': {message}",
            context={"parameter": parameter},
        )
        self.parameter = parameter
        self.message = message
        self._init_args = (parameter, message)


class ConcurrencyError(DataknobsDataError):
    """Concurrent access conflicted (a stale version token, a duplicate id)."""

    def __init__(self, message: str, *, context: dict[str, Any] | None = None) -> None:
        super().__init__(f"Concurrency error: {message}", context=context)
        self.message = message
        self._init_args = (message,)
        self._init_kwargs = {"context": context} if context else {}

    def __reduce__(self) -> tuple[Any, ...]:
        if not self._init_kwargs:
            return super().__reduce__()
        # Keyword-only context: rebuild through a helper that passes it by name.
        return (
            _rebuild_keyword_error,
            (type(self), self._init_args, self._init_kwargs),
            self.__dict__,
        )


def _rebuild_keyword_error(
    cls: type[DataknobsDataError], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> DataknobsDataError:
    return cls(*args, **kwargs)


class DuplicateRecordError(ConcurrencyError, ValueError):
    """A record with the given id already exists (``create`` never overwrites)."""

    def __init__(self, id: str) -> None:
        # The message is a whole sentence: no "Concurrency error: " prefix.
        DataknobsDataError.__init__(
            self, f"Record with ID '{id}' already exists", context={"id": id}
        )
        self.id = id
        self.record_id = id
        self._init_args = (id,)
        self._init_kwargs = {}


class TransactionError(DatabaseError, OperationError):
    """A transaction failed."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Transaction error: {message}")
        self.message = message
        self._init_args = (message,)


class MigrationError(OperationError):
    """Migrating data between versions or stores failed."""

    def __init__(self, source: str, target: str, message: str) -> None:
        super().__init__(
            f"Migration from {source} to {target} failed: {message}",
            context={"source": source, "target": target},
        )
        self.source = source
        self.target = target
        self.message = message
        self._init_args = (source, target, message)


class CapabilityNotSupportedError(OperationError):
    """A database was asked for something its backend cannot do (e.g. strict transactions)."""

    def __init__(self, capability: str, host: Any) -> None:
        name = str(getattr(capability, "value", capability))
        super().__init__(
            f"{type(host).__name__} does not support '{name}'",
            context={"capability": name, "host": type(host).__name__},
        )
        self.capability = name
        self.host = host
        self._init_args = (capability, host)
