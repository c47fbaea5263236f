"""Which pandas dtype holds which :class:`~dataknobs_data.fields.FieldType`, and back.

Every scalar type maps to a *nullable* extension dtype (``Int64``, ``Float64``, ``boolean``,
``string``), so a missing value is ``pd.NA`` and never turns an integer column into floats.
JSON and binary values live in ``object`` columns. The string helpers (``infer_field_type``,
``get_pandas_dtype``, ``convert_value``) speak the schema vocabulary of 0.11.0
("integer", "number", "datetime", ...).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, cast

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from dataknobs_data.fields import TEXT_THRESHOLD, FieldType

__all__ = ["PandasTypeMapping", "TypeMapper"]


@dataclass
class PandasTypeMapping:
    """How one field type is held in pandas.

    Args:
        field_type: The field type described.
        pandas_dtype: The dtype of a column of that type (a dtype name, class or numpy dtype).
        nullable: Whether the dtype holds missing values as ``pd.NA``/``NaT``.
        converter: Turns a field value into the value stored in the column.
        reverse_converter: Turns a column value back into a field value.
    """

    field_type: FieldType
    pandas_dtype: str | type | np.dtype[Any]
    nullable: bool = True
    converter: Callable[[Any], Any] | None = None
    reverse_converter: Callable[[Any], Any] | None = None


def is_missing(value: Any) -> bool:
    """True for None, ``pd.NA``, ``NaT`` and float NaN; False for containers and the rest."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return False


class TypeMapper:
    """Maps field types to pandas dtypes and converts single values between the two."""

    def __init__(self) -> None:
        self._field_to_pandas: dict[FieldType, PandasTypeMapping] = {
            FieldType.STRING: PandasTypeMapping(FieldType.STRING, "string"),
            FieldType.TEXT: PandasTypeMapping(FieldType.TEXT, "string"),
            FieldType.INTEGER: PandasTypeMapping(FieldType.INTEGER, "Int64"),
            FieldType.FLOAT: PandasTypeMapping(FieldType.FLOAT, "Float64"),
            FieldType.BOOLEAN: PandasTypeMapping(FieldType.BOOLEAN, "boolean"),
            FieldType.DATETIME: PandasTypeMapping(
                FieldType.DATETIME,
                "datetime64[ns]",
                converter=self._to_datetime,
                reverse_converter=self._from_datetime,
            ),
            FieldType.JSON: PandasTypeMapping(
                FieldType.JSON,
                "object",
                converter=self._to_json_object,
                reverse_converter=self._from_json_object,
            ),
            FieldType.BINARY: PandasTypeMapping(FieldType.BINARY, "object"),
        }
        # Dtype names (lower case) with one obvious field type; anything else is matched by
        # the family its name says (see pandas_to_field_type).
        self._pandas_to_field: dict[str, FieldType] = {
            "string": FieldType.STRING,
            "str": FieldType.STRING,
            "object": FieldType.STRING,
            "int64": FieldType.INTEGER,
            "float64": FieldType.FLOAT,
            "boolean": FieldType.BOOLEAN,
            "bool": FieldType.BOOLEAN,
            "datetime64[ns]": FieldType.DATETIME,
        }

    # ------------------------------------------------------------------ dtypes

    def field_type_to_pandas(self, field_type: FieldType) -> str | type | np.dtype[Any]:
        """The dtype of a column holding ``field_type`` values (``"object"`` if unknown)."""
        mapping = self._field_to_pandas.get(field_type)
        return mapping.pandas_dtype if mapping is not None else "object"

    def pandas_to_field_type(self, dtype: str | np.dtype[Any] | type) -> FieldType:
        """The field type of a column of ``dtype`` (STRING when nothing more specific fits)."""
        name = str(dtype).lower()
        known = self._pandas_to_field.get(name)
        if known is not None:
            return known
        families = (
            ("bool", FieldType.BOOLEAN),
            ("int", FieldType.INTEGER),
            ("float", FieldType.FLOAT),
            ("datetime", FieldType.DATETIME),
            ("timestamp", FieldType.DATETIME),
            ("bytes", FieldType.BINARY),
        )
        for word, field_type in families:
            if word in name:
                return field_type
        return FieldType.STRING

    # ------------------------------------------------------------------ single values

    def convert_value_to_pandas(self, value: Any, field_type: FieldType) -> Any:
        """``value`` as a column of ``field_type`` holds it (None becomes ``pd.NA``)."""
        if value is None:
            return pd.NA
        mapping = self._field_to_pandas.get(field_type)
        if mapping is not None and mapping.converter is not None:
            return mapping.converter(value)
        return value

    def convert_value_from_pandas(self, value: Any, field_type: FieldType) -> Any:
        """A plain Python field value for a column value: NA/NaT/NaN become None, numpy
        scalars their Python equivalent, Timestamps datetimes."""
        if is_missing(value):
            return None
        mapping = self._field_to_pandas.get(field_type)
        if mapping is not None and mapping.reverse_converter is not None:
            return mapping.reverse_converter(value)
        return to_python(value)

    def infer_field_type_from_value(self, value: Any) -> FieldType:
        """The field type of a single (Python, numpy or pandas) value; missing is STRING."""
        if is_missing(value):
            return FieldType.STRING
        if isinstance(value, bool | np.bool_):
            return FieldType.BOOLEAN
        if isinstance(value, int | np.integer):
            return FieldType.INTEGER
        if isinstance(value, float | np.floating):
            return FieldType.FLOAT
        if isinstance(value, datetime):  # pd.Timestamp is a datetime
            return FieldType.DATETIME
        if isinstance(value, bytes):
            return FieldType.BINARY
        if isinstance(value, str):
            return FieldType.TEXT if len(value) > TEXT_THRESHOLD else FieldType.STRING
        return FieldType.JSON

    # ------------------------------------------------------------------ series

    def cast_series(self, series: pd.Series, field_type: FieldType) -> pd.Series:
        """``series`` cast to the dtype of ``field_type``; an ``object`` series if it does not
        fit. Datetimes that do not parse become NaT; JSON text is parsed."""
        try:
            if field_type is FieldType.DATETIME:
                return pd.to_datetime(series, errors="coerce")
            if field_type is FieldType.JSON:
                return series.map(self._ensure_json_serializable).astype(object)
            return series.astype(self.field_type_to_pandas(field_type))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return series.astype(object)

    def cast_dataframe_dtypes(self, df: pd.DataFrame, dtype_map: dict[str, str]) -> pd.DataFrame:
        """A copy of ``df`` with the named columns cast; a column that does not fit is kept."""
        result = df.copy()
        for column, dtype in dtype_map.items():
            if column not in result.columns:
                continue
            with contextlib.suppress(TypeError, ValueError):
                result[column] = result[column].astype(dtype)  # type: ignore[call-overload]
        return result

    def normalize_timezone(self, series: pd.Series, target_tz: str) -> pd.Series:
        """Datetimes in ``target_tz``: naive values are taken as local to it, aware ones are
        converted. Values that do not parse become NaT."""
        if not is_datetime64_any_dtype(series):
            series = pd.to_datetime(series, errors="coerce")
        times: Any = series.dt
        if times.tz is None:
            return cast("pd.Series", times.tz_localize(target_tz))
        return cast("pd.Series", times.tz_convert(target_tz))

    def infer_field_type(self, series: pd.Series) -> str:
        """The schema type name of a series: "boolean", "datetime", "date", "time",
        "integer", "number" or "string" (also for an all-missing series)."""
        present = series.dropna()
        if len(present) == 0:
            return "string"
        if is_bool_dtype(present):
            return "boolean"
        if is_datetime64_any_dtype(present):
            return "datetime"
        if is_numeric_dtype(present):
            return "integer" if all(_is_whole(v) for v in present) else "number"
        sample = present.iloc[0]
        if isinstance(sample, datetime):
            return "datetime"
        if isinstance(sample, date):
            return "date"
        if isinstance(sample, time):
            return "time"
        return "string"

    def get_pandas_dtype(self, field_type: str) -> str:
        """The numpy-backed dtype name for a schema type name (``"object"`` if unknown)."""
        names = {
            "integer": "int64",
            "number": "float64",
            "float": "float64",
            "boolean": "bool",
            "datetime": "datetime64[ns]",
        }
        return names.get(field_type.lower(), "object")

    def convert_value(self, value: Any, target_type: str) -> Any:
        """``value`` converted to a schema type name; missing values are None.

        Strings convert too: "integer" reads ``"3.0"`` as 3, "boolean" is True for "true",
        "1" and "yes", "datetime"/"date"/"time" parse ISO text.
        """
        if is_missing(value):
            return None
        target = target_type.lower()
        if target == "integer":
            return int(float(value)) if isinstance(value, str) else int(value)
        if target in ("number", "float"):
            return float(value)
        if target == "string":
            return str(value)
        if target == "boolean":
            if isinstance(value, str):
                return value.strip().lower() in ("true", "1", "yes")
            return bool(value)
        if target == "datetime":
            return pd.Timestamp(value) if isinstance(value, str) else value
        if target == "date":
            if isinstance(value, str):
                return pd.Timestamp(value).date()
            return value.date() if isinstance(value, datetime) else value
        if target == "time":
            if isinstance(value, str):
                return pd.Timestamp(value).time()
            return value.time() if isinstance(value, datetime) else value
        return value

    def get_optimal_dtype(self, series: pd.Series) -> str:
        """The smallest numpy dtype that holds every present value of ``series``.

        bool, the narrowest int8/16/32/64 for whole numbers, float32/float64, datetime64[ns]
        for parseable datetimes, else ``"object"``; ``"string"`` for an all-missing series.
        """
        present = series.dropna()
        if len(present) == 0:
            return "string"
        values = list(present)
        if all(isinstance(v, bool | np.bool_) for v in values):
            return "bool"
        if all(_is_whole(v) for v in values):
            low, high = min(values), max(values)
            for name in ("int8", "int16", "int32"):
                info = np.iinfo(name)
                if info.min <= low and high <= info.max:
                    return name
            return "int64"
        if all(isinstance(v, int | float | np.number) for v in values):
            largest = max(abs(float(v)) for v in values)
            return "float32" if largest <= float(np.finfo(np.float32).max) else "float64"
        try:
            pd.to_datetime(present, format="mixed")
        except (TypeError, ValueError):
            return "object"
        return "datetime64[ns]"

    # ------------------------------------------------------------------ converters

    @staticmethod
    def _to_datetime(value: Any) -> Any:
        # Numbers are read as Unix seconds, as 0.11.0 does.
        if isinstance(value, str | datetime):
            return pd.Timestamp(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return pd.Timestamp(value, unit="s")
        return value

    @staticmethod
    def _from_datetime(value: Any) -> Any:
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
        if isinstance(value, str):
            return pd.Timestamp(value).to_pydatetime()
        return value

    @staticmethod
    def _to_json_object(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    @staticmethod
    def _from_json_object(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return to_python(value)

    @staticmethod
    def _ensure_json_serializable(value: Any) -> Any:
        if isinstance(value, dict | list):
            return value
        if is_missing(value):
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return str(value)


def _is_whole(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | np.integer):
        return True
    return isinstance(value, float | np.floating) and float(value).is_integer()


def to_python(value: Any) -> Any:
    """A plain Python value for a numpy/pandas scalar or array; other values unchanged.

    numpy scalars become int/float/bool/str, Timestamps datetimes, numpy arrays lists; the
    items of lists and dicts are converted too (a JSON cell may hold numpy values).
    """
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else pd.Timestamp(value).to_pydatetime()
        return value.item()
    if isinstance(value, np.ndarray):
        return [to_python(v) for v in value.tolist()]
    if isinstance(value, list):
        return [to_python(v) for v in value]
    if isinstance(value, dict):
        return {k: to_python(v) for k, v in value.items()}
    if value is pd.NA or value is pd.NaT:
        return None
    return value
