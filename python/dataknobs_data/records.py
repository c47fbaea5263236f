"""Records: ordered collections of named fields with an id and metadata."""

from __future__ import annotations

import copy as _copy
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dataknobs_data.fields import Field, FieldType, detect_type

__all__ = ["Record"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


# Distinguishes "no such field" from "field whose value is None".
MISSING: Any = _Missing()

_osa = object.__setattr__
_new = object.__new__


def walk_path(value: Any, segments: list[str]) -> Any:
    """Walk ``segments`` into nested dicts/lists (internals §1 step 3); MISSING when absent.

    A dict step takes the key; a list step takes a decimal integer index in range; any other
    step reads as missing.
    """
    for seg in segments:
        if isinstance(value, dict):
            value = value.get(seg, MISSING)
            if value is MISSING:
                return MISSING
        elif isinstance(value, (list, tuple)):
            if not (seg.isascii() and seg.isdigit()):
                return MISSING
            idx = int(seg)
            if idx >= len(value):
                return MISSING
            value = value[idx]
        else:
            return MISSING
    return value


class Record:
    """An ordered set of named :class:`~dataknobs_data.fields.Field` objects.

    Args:
        data: A mapping of name → value or name → Field (an iterable of Field objects is
            accepted too). Fields keep insertion order.
        metadata: Free-form record metadata (copied shallowly).
        id: The record id.
        storage_id: The backend key; when given it is the record's id.

    Values are reachable as ``record["x"]``, ``record.x`` (real attributes and methods win),
    ``record.get_value("x")``; ``record[i]`` is the i-th Field.
    """

    # Fields are materialised lazily: a record built from a storage row keeps the plain
    # name→value dict in ``_values`` and only creates Field objects when someone asks for
    # them. Exactly one of ``_values`` / ``_fields`` is not None at any time.
    __slots__ = ("_fields", "_id", "_values", "metadata")

    _fields: dict[str, Field] | None
    _values: dict[str, Any] | None
    _id: str | None
    metadata: dict[str, Any]

    def __init__(
        self,
        data: Mapping[str, Any] | Iterable[Field] | None = None,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
        storage_id: str | None = None,
    ) -> None:
        values: dict[str, Any] | None = None
        fields: dict[str, Field] | None = None
        if data is None:
            values = {}
        elif isinstance(data, Mapping):
            if any(isinstance(v, Field) for v in data.values()):
                fields = {}
                for name, v in data.items():
                    fields[name] = _as_field(name, v)
            else:
                values = dict(data)
        else:
            fields = {}
            for f in data:
                if not isinstance(f, Field):
                    raise TypeError(
                        f"Record data must be a mapping or Field objects, got {type(f).__name__}"
                    )
                fields[f.name] = f
        rid = storage_id if storage_id is not None else id
        _osa(self, "_values", values)
        _osa(self, "_fields", fields)
        _osa(self, "_id", None if rid is None else str(rid))
        _osa(self, "metadata", dict(metadata) if metadata else {})

    # ----------------------------------------------------------------- fast paths

    @classmethod
    def _from_row(cls, id: str | None, data: dict[str, Any], metadata: dict[str, Any]) -> Record:
        """Build a record from a storage row, taking ownership of ``data`` and ``metadata``."""
        rec = _new(cls)
        _osa(rec, "_values", data)
        _osa(rec, "_fields", None)
        _osa(rec, "_id", id)
        _osa(rec, "metadata", metadata)
        return rec

    def _to_row(self) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
        """Return ``(id or None, new name→value dict, new shallow metadata dict)``."""
        values = self._values
        rid = self._id
        if rid is None:
            rid = self.id
        if values is not None:
            return rid, dict(values), dict(self.metadata)
        assert self._fields is not None
        return rid, {name: f.value for name, f in self._fields.items()}, dict(self.metadata)

    def _materialize(self) -> dict[str, Field]:
        fields = self._fields
        if fields is None:
            values = self._values
            assert values is not None
            make = Field._make
            fields = {name: make(name, v) for name, v in values.items()}
            _osa(self, "_fields", fields)
            _osa(self, "_values", None)
        return fields

    def _lookup(self, name: str) -> Any:
        """Value of the data field called exactly ``name``, or MISSING."""
        values = self._values
        if values is not None:
            return values.get(name, MISSING)
        assert self._fields is not None
        f = self._fields.get(name)
        return MISSING if f is None else f.value

    def _resolve(self, path: str) -> Any:
        """Resolve a field path (internals §1); MISSING when absent. ``"id"`` is not special."""
        value = self._lookup(path)
        if value is not MISSING or "." not in path:
            return value
        first, *rest = path.split(".")
        root = self._lookup(first)
        if root is MISSING:
            if first == "metadata":
                return walk_path(self.metadata, rest)
            return MISSING
        return walk_path(root, rest)

    # ----------------------------------------------------------------- properties

    @property
    def fields(self) -> dict[str, Field]:
        """The ordered name → Field mapping (live: changes affect the record)."""
        return self._materialize()

    @fields.setter
    def fields(self, value: Mapping[str, Any]) -> None:
        _osa(self, "_fields", {name: _as_field(name, v) for name, v in value.items()})
        _osa(self, "_values", None)

    @property
    def id(self) -> str | None:
        """The explicit id, else a data field named "id" (as str), else ``metadata["id"]``,
        else a data field named "record_id" (as DataFrames often carry it)."""
        if self._id is not None:
            return self._id
        v = self._lookup("id")
        if v is not MISSING and v is not None:
            return str(v)
        m = self.metadata.get("id")
        if m is not None:
            return str(m)
        v = self._lookup("record_id")
        return None if v is MISSING or v is None else str(v)

    @id.setter
    def id(self, value: str | None) -> None:
        _osa(self, "_id", None if value is None else str(value))

    @property
    def storage_id(self) -> str | None:
        """The backend key (the explicit id)."""
        return self._id

    @storage_id.setter
    def storage_id(self, value: str | None) -> None:
        _osa(self, "_id", None if value is None else str(value))

    @property
    def data(self) -> dict[str, Any]:
        """A new name → value dict."""
        values = self._values
        if values is not None:
            return dict(values)
        assert self._fields is not None
        return {name: f.value for name, f in self._fields.items()}

    # ----------------------------------------------------------------- mapping protocol

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, str):
            value = self._lookup(key)
            if value is MISSING:
                raise KeyError(f"Field '{key}' not found")
            return value
        if isinstance(key, int):
            return list(self._materialize().values())[key]
        raise TypeError(f"Record indices must be str or int, not {type(key).__name__}")

    def __setitem__(self, key: str, value: Any) -> None:
        self.set_value(key, value)

    def __delitem__(self, key: str) -> None:
        if not self.remove_field(key):
            raise KeyError(f"Field '{key}' not found")

    def __contains__(self, key: object) -> bool:
        values = self._values
        if values is not None:
            return key in values
        assert self._fields is not None
        return key in self._fields

    def __iter__(self) -> Iterator[str]:
        values = self._values
        if values is not None:
            return iter(list(values))
        assert self._fields is not None
        return iter(list(self._fields))

    def __len__(self) -> int:
        values = self._values
        if values is not None:
            return len(values)
        assert self._fields is not None
        return len(self._fields)

    # ----------------------------------------------------------------- attribute access

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails, so real attributes and methods win.
        if name.startswith("_"):
            raise AttributeError(name)
        value = self._lookup(name)
        if value is MISSING:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name.startswith("_")
            or hasattr(type(self), name)
            or name in getattr(self, "__dict__", ())
        ):
            _osa(self, name, value)
        else:
            self.set_value(name, value)

    def __delattr__(self, name: str) -> None:
        if name.startswith("_") or hasattr(type(self), name):
            object.__delattr__(self, name)
        elif not self.remove_field(name):
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    # ----------------------------------------------------------------- comparison, repr

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        if self._id != other._id or self.metadata != other.metadata:
            return False
        if self._values is not None and other._values is not None:
            if self._values.keys() != other._values.keys():
                return False
            # Equal values of different types (1 vs 1.0) detect as different Field types.
            return all(
                v == other._values[k] and detect_type(v) is detect_type(other._values[k])
                for k, v in self._values.items()
            )
        return self._materialize() == other._materialize()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Record(id={self.id!r}, data={self.data!r}, metadata={self.metadata!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "_fields": self._fields,
            "_values": self._values,
            "_id": self._id,
            "metadata": self.metadata,
            **getattr(self, "__dict__", {}),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            _osa(self, key, value)

    # ----------------------------------------------------------------- field API

    def get_field(self, name: str) -> Field | None:
        """Return the Field called ``name`` or None."""
        return self._materialize().get(name)

    def get_value(self, name: str, default: Any = None) -> Any:
        """Return the value of ``name`` or ``default``.

        A field called exactly ``name`` wins; otherwise dotted paths are read as
        :meth:`get_nested_value` reads them (``"a.b"``, ``"tags.0"``, ``"metadata.x"``,
        ``"fields.x"``).
        """
        value = self._lookup(name)
        if value is not MISSING:
            return value
        if "." in name:
            return self.get_nested_value(name, default)
        return default

    def get(self, key: str, default: Any = None) -> Any:
        """The value of the field called exactly ``key``, or ``default``.

        No path walking: ``get("a.b")`` looks for a field named "a.b", as ``record["a.b"]``
        does (use :meth:`get_value` for paths).
        """
        value = self._lookup(key)
        return default if value is MISSING else value

    def get_nested_value(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path, or ``default``.

        ``"a.b"`` walks the dict (or list) value of field "a"; ``"metadata.x"`` walks the
        record metadata unless a field is called "metadata"; ``"fields.x"`` names the data
        field "x" (unless a field is called "fields").
        """
        first, _, rest = path.partition(".")
        if first == "fields" and rest and self._lookup("fields") is MISSING:
            path = rest
        value = self._resolve(path)
        return default if value is MISSING else value

    def get_field_object(self, key: str) -> Field:
        """The :class:`Field` called ``key``.

        Raises:
            KeyError: ``"Field 'key' not found"`` when there is none.
        """
        found = self._materialize().get(key)
        if found is None:
            raise KeyError(f"Field '{key}' not found")
        return found

    def get_user_id(self) -> str | None:
        """The value of the data field named "id" (as str), ignoring the storage id."""
        v = self._lookup("id")
        return None if v is MISSING or v is None else str(v)

    def has_storage_id(self) -> bool:
        """Whether the record carries an explicit id (a storage key), not a derived one."""
        return self._id is not None

    def set_value(self, name: str, value: Any) -> None:
        """Set the value of ``name``, creating the field if needed.

        An existing field keeps its metadata, and its type when the new value fits it.
        """
        if isinstance(value, Field):
            self._materialize()[name] = _as_field(name, value)
            return
        values = self._values
        if values is not None:
            values[name] = value
            return
        fields = self._fields
        assert fields is not None
        old = fields.get(name)
        if old is None:
            fields[name] = Field._make(name, value)
            return
        new = Field(name, value, old.type, old.metadata)
        if not new.validate():
            new.type = detect_type(value)
        fields[name] = new

    def set_field(
        self,
        name: str,
        value: Any,
        field_type: FieldType | None = None,
        field_metadata: dict[str, Any] | None = None,
    ) -> None:
        """Set ``name`` to a new Field with the given type (detected when None) and metadata."""
        self._materialize()[name] = Field(name, value, field_type, field_metadata)

    def remove_field(self, name: str) -> bool:
        """Remove ``name``; return whether it existed."""
        values = self._values
        target: dict[str, Any] = values if values is not None else self._materialize()
        if name in target:
            del target[name]
            return True
        return False

    def has_field(self, name: str) -> bool:
        """Whether a field called ``name`` exists."""
        return name in self

    def field_names(self) -> list[str]:
        """The field names in order."""
        return list(self)

    def field_count(self) -> int:
        """The number of fields."""
        return len(self)

    def validate(self) -> bool:
        """Whether every field value fits its field type."""
        if self._values is not None:
            # Lazily-built fields get detected types, which always fit their values.
            return True
        return all(f.validate() for f in self._materialize().values())

    def generate_id(self) -> str:
        """Give the record a new uuid4 id and return it."""
        new_id = str(uuid.uuid4())
        _osa(self, "_id", new_id)
        return new_id

    # ----------------------------------------------------------------- derived records

    def copy(self, deep: bool = True) -> Record:
        """Return a copy; ``deep`` also copies values and metadata recursively."""
        values = self._values
        cls = type(self)
        if values is not None:
            if deep:
                return cls._from_row(
                    self._id, _copy.deepcopy(values), _copy.deepcopy(self.metadata)
                )
            return cls._from_row(self._id, dict(values), dict(self.metadata))
        assert self._fields is not None
        rec = cls._from_row(self._id, {}, {})
        if deep:
            fields = {name: f.copy() for name, f in self._fields.items()}
            meta = _copy.deepcopy(self.metadata)
        else:
            fields = {
                name: Field(name, f.value, f.type, dict(f.metadata))
                for name, f in self._fields.items()
            }
            meta = dict(self.metadata)
        _osa(rec, "_fields", fields)
        _osa(rec, "_values", None)
        _osa(rec, "metadata", meta)
        return rec

    def project(self, field_names: Iterable[str] | str) -> Record:
        """Return a new record with only the named fields (in the given order), id kept."""
        names = field_names
        if isinstance(names, str):
            names = [names]
        cls = type(self)
        values = self._values
        if values is not None:
            data = {n: values[n] for n in names if n in values}
            return cls._from_row(self.id, data, dict(self.metadata))
        assert self._fields is not None
        src = self._fields
        rec = cls._from_row(self.id, {}, dict(self.metadata))
        _osa(
            rec,
            "_fields",
            {
                n: Field(n, src[n].value, src[n].type, dict(src[n].metadata))
                for n in names
                if n in src
            },
        )
        _osa(rec, "_values", None)
        return rec

    def merge(self, other: Record, overwrite: bool = True) -> Record:
        """Return a new record with this record's fields and ``other``'s.

        With ``overwrite`` the other record's fields and metadata win on conflicts.
        """
        fields = dict(self._materialize())
        for name, f in other._materialize().items():
            if overwrite or name not in fields:
                fields[name] = f
        if overwrite:
            metadata = {**self.metadata, **other.metadata}
        else:
            metadata = {**other.metadata, **self.metadata}
        merged = type(self)(fields, metadata, id=self._id if self._id is not None else other._id)
        return merged.copy(deep=False)

    # ----------------------------------------------------------------- serialisation

    def to_dict(
        self,
        include_metadata: bool = False,
        flatten: bool = True,
        include_field_objects: bool = True,
    ) -> dict[str, Any]:
        """Serialise the record.

        Flat (default): ``{name: value}`` plus ``"_id"`` when the record has an id (its
        :attr:`id`, whatever supplies it) and ``"_metadata"`` when ``include_metadata`` and the
        metadata is not empty. ``flatten=False``: ``{"fields": {name: Field.to_dict()}}`` plus
        ``"id"`` when there is one and ``"metadata"`` when ``include_metadata`` (plain values
        instead of field dicts with ``include_field_objects=False``), as 0.11.0 does.
        """
        rid = self.id
        if flatten:
            result = self.data
            if rid:
                result["_id"] = rid
            if include_metadata and self.metadata:
                result["_metadata"] = dict(self.metadata)
            return result
        if include_field_objects:
            fields: dict[str, Any] = {n: f.to_dict() for n, f in self._materialize().items()}
        else:
            fields = self.data
        structured: dict[str, Any] = {"fields": fields}
        if rid:
            structured["id"] = rid
        if include_metadata:
            structured["metadata"] = dict(self.metadata)
        return structured

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """Build a record from :meth:`to_dict` output (flat or structured).

        The caller's dict is not modified.
        """
        raw_fields = data.get("fields")
        if "fields" in data and isinstance(raw_fields, Mapping):
            fields: dict[str, Field] = {}
            for name, fv in raw_fields.items():
                if isinstance(fv, Mapping) and "value" in fv and set(fv) <= _FIELD_DICT_KEYS:
                    t = fv.get("type")
                    fields[name] = Field(
                        name,
                        fv.get("value"),
                        FieldType(t) if t is not None else None,
                        dict(fv.get("metadata") or {}),
                    )
                else:
                    fields[name] = Field(name, fv)
            rid = data.get("id", data.get("_id"))
            return cls(fields, data.get("metadata") or {}, id=rid)
        values = {k: v for k, v in data.items() if k != "_id" and k != "_metadata"}
        return cls(values, data.get("_metadata") or {}, id=data.get("_id"))


_FIELD_DICT_KEYS = frozenset({"name", "value", "type", "metadata"})


def _as_field(name: str, value: Any) -> Field:
    if isinstance(value, Field):
        if value.name == name:
            return value
        return Field(name, value.value, value.type, value.metadata)
    return Field._make(name, value)
