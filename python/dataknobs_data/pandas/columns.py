"""Columns of field values to pandas arrays and back (the dtype rules of ``converter``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype
from pandas.core.arrays.masked import BaseMaskedArray

from .type_mapper import is_missing, to_python

__all__ = ["column_array", "object_array", "python_values"]


def column_array(values: list[Any]) -> Any:
    """The array for one column of field values (None = missing); see the module table."""
    present = [v for v in values if v is not None]
    if not present:
        return object_array(values)
    classes = {v.__class__ for v in present}
    full = len(present) == len(values)
    if full:
        mask = np.zeros(len(values), dtype=bool)
        filled = values
    else:
        mask = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    if classes == {bool}:
        if not full:
            filled = [v is True for v in values]
        return pd.arrays.BooleanArray(np.array(filled, dtype=bool), mask)
    if classes == {int}:
        if not full:
            filled = [0 if v is None else v for v in values]
        try:
            return pd.arrays.IntegerArray(np.array(filled, dtype=np.int64), mask)
        except OverflowError:
            return object_array(values)
    if classes <= {int, float}:
        if not full:
            filled = [0.0 if v is None else v for v in values]
        return pd.arrays.FloatingArray(np.array(filled, dtype=np.float64), mask)
    if classes == {str}:
        return pd.array(values, dtype=pd.StringDtype())
    if all(issubclass(c, datetime) for c in classes):
        return _datetime_array(values, present)
    return object_array(values)


def _datetime_array(values: list[Any], present: list[datetime]) -> Any:
    zones = {v.tzinfo for v in present}
    naive = None in zones
    if naive and len(zones) > 1:
        return object_array(values)  # naive and aware instants cannot share a column
    try:
        series = pd.to_datetime(pd.Series(object_array(values)), utc=len(zones) > 1)
        return series.dt.as_unit("us").array
    except (ValueError, TypeError, OverflowError):
        # Out of the range pandas holds: keep the datetimes as objects.
        return object_array(values)


def object_array(values: list[Any]) -> np.ndarray[Any, np.dtype[Any]]:
    """A 1-D ``object`` array of ``values``."""
    # fromiter keeps each list or tuple as one cell; np.array would make a 2-D array.
    return np.fromiter(values, dtype=object, count=len(values))


def python_values(series: pd.Series) -> list[Any]:
    """The cells of ``series`` as plain Python values, missing ones as None."""
    dtype = series.dtype
    array = series.array
    if is_datetime64_any_dtype(dtype):
        missing = series.isna().to_numpy()
        stamps = pd.DatetimeIndex(series).to_pydatetime()
        return [None if m else v for v, m in zip(stamps.tolist(), missing.tolist(), strict=True)]
    if isinstance(array, BaseMaskedArray) or isinstance(dtype, pd.StringDtype):
        return array.to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[no-any-return]
    kind = getattr(dtype, "kind", "O")
    if isinstance(dtype, np.dtype) and kind in "iub":
        return series.to_numpy().tolist()
    if isinstance(dtype, np.dtype) and kind == "f":
        # In a numpy float column NaN is pandas' missing value.
        return [None if v != v else v for v in series.to_numpy().tolist()]
    return [None if is_missing(v) else to_python(v) for v in series.to_numpy(dtype=object)]
