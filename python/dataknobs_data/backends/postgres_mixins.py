"""PostgreSQL helpers under 0.11.0's module name: identifier checks and error translation.

The PostgreSQL backend's SQL, pool and table creation live in the Rust core
(``rust/core/src/postgres``); these are the pieces of 0.11.0's mixins that make sense on
their own. The identifier rule is the Rust core's: ASCII letters, digits and ``_``, not
starting with a digit, at most 63 characters (PostgreSQL's limit).
"""

from __future__ import annotations

import logging
import re
from typing import Any, NoReturn

from ..exceptions import ConfigurationError, DatabaseConnectionError, DatabaseOperationError

__all__ = [
    "ConfigurationError",
    "PostgresErrorHandler",
    "validate_database_name",
    "validate_pg_identifier",
]

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def validate_pg_identifier(value: Any, key: str) -> str:
    """``value`` when it is a valid identifier for config key ``key`` (a table, a schema).

    Raises:
        ConfigurationError: naming ``key``, for a non-string or an invalid identifier.
    """
    if not isinstance(value, str):
        raise ConfigurationError(key, f"expected an identifier string, got {type(value).__name__}")
    if not _IDENTIFIER.match(value):
        raise ConfigurationError(
            key,
            f"invalid identifier {value!r}: use letters, digits and _, not starting with a "
            "digit, at most 63 characters",
        )
    return value


def validate_database_name(name: str) -> None:
    """Raise ConfigurationError (for ``database``) unless ``name`` is a valid identifier."""
    validate_pg_identifier(name, "database")


class PostgresErrorHandler:
    """Turn driver exceptions into this package's typed errors (and log them)."""

    @staticmethod
    def handle_connection_error(e: Exception) -> NoReturn:
        """Log and raise DatabaseConnectionError for a failed connection."""
        logger.error("PostgreSQL connection error: %s", e)
        raise DatabaseConnectionError("postgres", str(e)) from e

    @staticmethod
    def handle_query_error(e: Exception, operation: str) -> NoReturn:
        """Log and raise DatabaseOperationError naming ``operation``."""
        logger.error("PostgreSQL %s error: %s", operation, e)
        raise DatabaseOperationError(operation, str(e)) from e

    @staticmethod
    def log_operation(operation: str, details: str = "") -> None:
        """Log an operation at debug level."""
        if details:
            logger.debug("PostgreSQL %s: %s", operation, details)
        else:
            logger.debug("PostgreSQL %s", operation)
