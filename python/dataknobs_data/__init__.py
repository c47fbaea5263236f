"""dataknobs-data: one API for records, queries and streaming across storage backends.

The storage, query evaluation and bulk encoding run in a Rust core (``dataknobs_data._native``);
this package is the typed Python face. See API.md for the contract.
"""

from .database import AsyncDatabase, SyncDatabase
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
from .query import Filter, Operator, Query, SortOrder, SortSpec
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

__version__ = "0.1.0"

__all__ = [
    "VALID_TRANSACTION_POLICIES",
    "AsyncDatabase",
    "AsyncDatabaseFactory",
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
    "TransactionError",
    "__version__",
    "async_database_factory",
    "database_factory",
    "get_available_backends",
    "get_backend_info",
    "is_backend_available",
]
