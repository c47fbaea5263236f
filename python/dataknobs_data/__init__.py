"""dataknobs-data: one API for records, queries and streaming across storage backends.

The storage, query evaluation and bulk encoding run in a Rust core (``dataknobs_data._native``);
this package is the typed Python face. See API.md for the contract.
"""

import importlib.metadata as _metadata
import warnings as _warnings
from typing import Any

from .allocation import DEFAULT_MAX_ATTEMPTS, allocate, allocate_sync
from .backend_selection import (
    DEFAULT_BACKEND,
    available_backends,
    backend_available,
    backend_info,
    build_backend,
    is_default_backend,
    module_installed,
    normalize_backend,
    register_backend,
    select_backend,
)
from .database import AsyncDatabase, SyncDatabase
from .dedup import DedupChecker, DedupConfig, DedupResult
from .exceptions import (
    BackendNotFoundError,
    ConcurrencyError,
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    DatabaseOperationError,
    DataFormatError,
    DataknobsDataError,
    DuplicateRecordError,
    FieldTypeError,
    MigrationError,
    QueryError,
    RecordNotFoundError,
    RecordValidationError,
    SerializationError,
    TransactionError,
)
from .factory import (
    AsyncDatabaseFactory,
    DatabaseFactory,
    async_database_factory,
    database_factory,
    get_available_backends,
    get_backend_info,
    is_backend_available,
)
from .fields import Field, FieldType
from .keyed_store import AsyncKeyedRecordStore, SyncKeyedRecordStore
from .query import (
    RESERVED_KEY_FIELD,
    Filter,
    Operator,
    Query,
    SortOrder,
    SortSpec,
    coerce_operator,
    coerce_sort_order,
    is_storage_key_field,
)
from .query_logic import (
    ComplexQuery,
    Condition,
    FilterCondition,
    LogicCondition,
    LogicOperator,
    QueryBuilder,
)
from .records import Record
from .streaming import ConflictPolicy, StreamConfig, StreamProcessor, StreamResult
from .transactions import VALID_TRANSACTION_POLICIES, BufferedTransaction

# This package's distribution name on PyPI; it installs the import package ``dataknobs_data``.
_DISTRIBUTION = "dataknobs-data-rs"
# The pure-Python original's distribution name; it installs the same import package.
_ORIGINAL_DISTRIBUTION = "dataknobs-data"


def _installed_version(distribution: str) -> str | None:
    try:
        return _metadata.version(distribution)
    except _metadata.PackageNotFoundError:
        return None


# A source checkout on sys.path without an install has no metadata: say so rather than guess.
__version__: str = _installed_version(_DISTRIBUTION) or "0+unknown"


def _warn_if_original_installed() -> None:
    """Warn when the pure-Python distribution is installed beside this one.

    Both put their files in ``site-packages/dataknobs_data/``: whichever was installed last
    overwrote the other's files, so the imported package is a mixture of the two, and
    uninstalling either removes files the other needs.
    """
    original = _installed_version(_ORIGINAL_DISTRIBUTION)
    if original is None:
        return
    _warnings.warn(
        f"both {_DISTRIBUTION} {__version__} and {_ORIGINAL_DISTRIBUTION} {original} (the "
        f"pure-Python package) are installed; they share the import package dataknobs_data "
        f"and overwrite each other's files. Keep one: `pip uninstall -y {_ORIGINAL_DISTRIBUTION} "
        f"{_DISTRIBUTION} && pip install {_DISTRIBUTION}`",
        RuntimeWarning,
        stacklevel=2,
    )


_warn_if_original_installed()


def __getattr__(name: str) -> Any:
    # ``dataknobs_data.migration`` / ``.validation`` as attributes (0.11.0 imports them
    # eagerly); imported on first use so that ``import dataknobs_data`` stays light.
    if name in ("migration", "validation"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_MAX_ATTEMPTS",
    "RESERVED_KEY_FIELD",
    "VALID_TRANSACTION_POLICIES",
    "AsyncDatabase",
    "AsyncDatabaseFactory",
    "AsyncKeyedRecordStore",
    "BackendNotFoundError",
    "BufferedTransaction",
    "ComplexQuery",
    "ConcurrencyError",
    "Condition",
    "ConfigurationError",
    "ConflictPolicy",
    "DataFormatError",
    "DatabaseConnectionError",
    "DatabaseError",
    "DatabaseFactory",
    "DatabaseOperationError",
    "DataknobsDataError",
    "DedupChecker",
    "DedupConfig",
    "DedupResult",
    "DuplicateRecordError",
    "Field",
    "FieldType",
    "FieldTypeError",
    "Filter",
    "FilterCondition",
    "LogicCondition",
    "LogicOperator",
    "MigrationError",
    "Operator",
    "Query",
    "QueryBuilder",
    "QueryError",
    "Record",
    "RecordNotFoundError",
    "RecordValidationError",
    "SerializationError",
    "SortOrder",
    "SortSpec",
    "StreamConfig",
    "StreamProcessor",
    "StreamResult",
    "SyncDatabase",
    "SyncKeyedRecordStore",
    "TransactionError",
    "__version__",
    "allocate",
    "allocate_sync",
    "async_database_factory",
    "available_backends",
    "backend_available",
    "backend_info",
    "build_backend",
    "coerce_operator",
    "coerce_sort_order",
    "database_factory",
    "get_available_backends",
    "get_backend_info",
    "is_backend_available",
    "is_default_backend",
    "is_storage_key_field",
    # 0.11.0's star import brings the two subpackages too (loaded then, by __getattr__).
    "migration",
    "module_installed",
    "normalize_backend",
    "register_backend",
    "select_backend",
    "validation",
]
