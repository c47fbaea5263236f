"""Opening the database a backend URL names."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dataknobs_data.urls import parse_url

from ._common import UsageError

if TYPE_CHECKING:
    from dataknobs_data.database import SyncDatabase

_LOCAL_BACKENDS = frozenset({"file", "sqlite"})


def open_database(url: str, *, must_exist: bool = False) -> SyncDatabase:
    """Open and connect the database a backend URL names.

    With ``must_exist``, a local file that is not there is an error instead of being
    created empty, so a typo in a source path is not read as "0 records".
    """
    from dataknobs_data.factory import DatabaseFactory

    backend, config = parse_url(url)
    if must_exist and backend in _LOCAL_BACKENDS:
        path = str(config.get("path", ""))
        if path != ":memory:" and not os.path.exists(path):
            raise UsageError(f"no such file: {path}")
    db = DatabaseFactory().create(backend=backend, **config)
    try:
        db.connect()
    except BaseException:
        db.close()
        raise
    return db
