"""pandas for dataknobs-data: records as DataFrames and DataFrames into databases.

``DataFrameConverter`` turns records into a DataFrame with nullable dtypes and back;
``BatchOperations`` loads a DataFrame into a database, queries one out, updates from one and
exports query results, through the databases' batch and streaming verbs. Needs pandas
(``pip install dataknobs-data[pandas]``).
"""

from .batch_ops import BatchConfig, BatchOperations, ChunkedProcessor
from .converter import ConversionOptions, DataFrameConverter
from .metadata import MetadataConfig, MetadataHandler, MetadataStrategy
from .type_mapper import PandasTypeMapping, TypeMapper

__all__ = [
    "BatchConfig",
    "BatchOperations",
    "ChunkedProcessor",
    "ConversionOptions",
    "DataFrameConverter",
    "MetadataConfig",
    "MetadataHandler",
    "MetadataStrategy",
    "PandasTypeMapping",
    "TypeMapper",
]
