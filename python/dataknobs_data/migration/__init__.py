"""Data migration: reversible operations, versioned migrations, transformers, and a
streaming, parallel, resumable migrator between any two databases (API.md §9).

Example::

    from dataknobs_data.migration import Migrator, Transformer

    t = Transformer().rename("name", "full_name").exclude("tmp")
    progress = Migrator().migrate(source_db, target_db, transform=t, batch_size=1000)
    print(progress.get_summary())
"""

from dataknobs_data.streaming import ConflictPolicy

from .checkpoint import Checkpoint
from .factory import (
    MigrationFactory,
    MigratorFactory,
    TransformerFactory,
    build_transform,
    load_spec,
    load_transform,
    migration_factory,
    migrator_factory,
    transform_function,
    transformer_factory,
)
from .migration import Migration
from .migrator import Migrator, TransformLike, as_record_function, partition_of
from .operations import (
    AddField,
    CompositeOperation,
    Operation,
    RemoveField,
    RenameField,
    TransformField,
)
from .progress import MigrationProgress
from .transformer import AddRule, ExcludeRule, MapRule, Transformer, TransformRule

__all__ = [
    "AddField",
    "AddRule",
    "Checkpoint",
    "CompositeOperation",
    "ConflictPolicy",
    "ExcludeRule",
    "MapRule",
    "Migration",
    "MigrationFactory",
    "MigrationProgress",
    "Migrator",
    "MigratorFactory",
    "Operation",
    "RemoveField",
    "RenameField",
    "TransformField",
    "TransformLike",
    "TransformRule",
    "Transformer",
    "TransformerFactory",
    "as_record_function",
    "build_transform",
    "load_spec",
    "load_transform",
    "migration_factory",
    "migrator_factory",
    "partition_of",
    "transform_function",
    "transformer_factory",
]
