"""The file backend: one file (JSON, JSON Lines, CSV, TSV or Parquet, optionally gzip).

Small files are loaded into a Rust index by their first verb; bigger ones are scanned from disk
by search, count and stream_read until a verb needs records by id (docs/internals.md §3), so
memory stays bounded however large the file. Every write rewrites the file atomically (temp
file, then rename); JSON Lines creates append. Parquet goes through pyarrow and is always
loaded whole.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from .. import _native
from ..exceptions import ConfigurationError, DataFormatError
from .config import FileDatabaseConfig
from .native import NativeAsyncDatabase, NativeSyncDatabase, Row

FORMATS = ("json", "jsonl", "csv", "tsv", "parquet")
_EXTENSIONS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: str, compression: str | None) -> tuple[str, str | None]:
    """(format, compression) from a file name such as ``people.jsonl.gz``."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        compression = compression or "gzip"
        suffixes = suffixes[:-1]
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    return fmt or "json", compression


def _replacement_mode(path: str) -> int:
    """The mode the rewritten file should have: the old file's, else what open() would give.

    ``mkstemp`` creates 0600 files; a rewrite must not make a shared file private.
    """
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


class ParquetStore:
    """A native memory index persisted to Parquet (columns id, data, metadata as tagged JSON).

    Offers the native store surface; writes rewrite the file atomically after the index
    changed, and the async twins run the same call in a worker thread.
    """

    _MUTATORS = (
        "create_batch",
        "create_missing",
        "upsert_batch",
        "update_batch",
        "delete_batch",
        "clear",
    )

    def __init__(self, path: str, compression: str | None) -> None:
        self._path = path
        self._compression = compression or "none"
        self._index = _native.MemoryStore()
        if os.path.exists(path) and os.path.getsize(path) > 0:
            self._load()

    def _load(self) -> None:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(self._path, columns=["id", "data", "metadata"])
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise DataFormatError("parquet", f"cannot read {self._path}: {exc}") from exc
        columns = table.to_pydict()
        self._index.import_json(columns["id"], columns["data"], columns["metadata"])

    def _persist(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        ids, data, metadata = self._index.export_json()
        table = pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "data": pa.array(data, pa.string()),
                "metadata": pa.array(metadata, pa.string()),
            }
        )
        folder = os.path.dirname(os.path.abspath(self._path))
        fd, tmp = tempfile.mkstemp(prefix=".dkdata-", suffix=".parquet", dir=folder)
        os.close(fd)
        try:
            pq.write_table(table, tmp, compression=self._compression)
            os.chmod(tmp, _replacement_mode(self._path))
            os.replace(tmp, self._path)
        except BaseException:
            os.unlink(tmp)
            raise

    def __getattr__(self, name: str) -> Any:
        if name.endswith("_async"):
            blocking = getattr(self, name[: -len("_async")])

            async def run(*args: Any) -> Any:
                return await asyncio.to_thread(blocking, *args)

            return run
        if name in self._MUTATORS:
            method = getattr(self._index, name)

            def mutate(*args: Any) -> Any:
                before = self._index.export_json()
                result = method(*args)
                try:
                    self._persist()
                except BaseException:
                    # The file is unchanged; put the index back so the two agree.
                    self._index.clear()
                    self._index.import_json(*before)
                    raise
                return result

            return mutate
        return getattr(self._index, name)


class _FileStore:
    BACKEND_NAME: ClassVar[str] = "file"
    CONFIG_KEYS: ClassVar[frozenset[str] | None] = frozenset({"path", "format", "compression"})
    CONFIG_CLS: ClassVar[type | None] = FileDatabaseConfig
    config: dict[str, Any]
    _temp_path: str | None = None
    _target: tuple[str, str, str | None] | None = None

    def _resolve_target(self) -> tuple[str, str, str | None]:
        """(path, format, compression), decided once; ``path=None`` makes a temporary file."""
        if self._target is not None:
            return self._target
        cfg = self.config
        path = cfg.get("path")
        compression = cfg.get("compression")
        if compression not in (None, "gzip"):
            raise ConfigurationError("compression", f"expected 'gzip' or None, got {compression!r}")
        if path is None:
            fmt = str(cfg.get("format") or "json")
            fd, path = tempfile.mkstemp(prefix="dkdata-", suffix="." + fmt)
            os.close(fd)
            self._temp_path = path
        path = str(path)
        detected, compression = detect_format(path, compression)
        fmt = str(cfg.get("format") or detected).lower()
        if fmt not in FORMATS:
            raise ConfigurationError("format", f"expected one of {', '.join(FORMATS)}, got {fmt!r}")
        self._target = (path, fmt, compression)
        return self._target

    @property
    def filepath(self) -> str:
        """The file the records live in (a temporary one when ``path`` was not given)."""
        return self._resolve_target()[0]

    @property
    def format(self) -> str:
        """The file format: ``json``, ``jsonl``, ``csv``, ``tsv`` or ``parquet``."""
        return self._resolve_target()[1]

    @property
    def compression(self) -> str | None:
        """``"gzip"`` or None."""
        return self._resolve_target()[2]

    def _open_store(self) -> Any:
        path, fmt, compression = self._resolve_target()
        if fmt == "parquet":
            return ParquetStore(path, compression)
        return _native.FileStore(path, fmt, compression)

    def _after_close(self) -> None:
        if self._temp_path is not None:
            Path(self._temp_path).unlink(missing_ok=True)
            self._temp_path = None
            self._target = None


class SyncFileDatabase(_FileStore, NativeSyncDatabase):
    """Records in one file; ``path=None`` uses a temporary file removed on close."""


class AsyncFileDatabase(_FileStore, NativeAsyncDatabase):
    """Records in one file, async face."""


__all__ = ["AsyncFileDatabase", "ParquetStore", "Row", "SyncFileDatabase", "detect_format"]
