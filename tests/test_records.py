"""Record construction, access, ids, derived records and serialisation (API.md §2)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from dataknobs_data.fields import Field, FieldType
from dataknobs_data.records import Record


def make(**data: Any) -> Record:
    return Record(data)


# --------------------------------------------------------------------------- construction


def test_values_and_fields_keep_insertion_order() -> None:
    r = Record({"b": 1, "a": Field("a", "x", FieldType.TEXT), "c": None})
    assert r.field_names() == ["b", "a", "c"]
    assert list(r) == ["b", "a", "c"]
    assert list(r.fields) == ["b", "a", "c"]
    assert r.fields["a"].type is FieldType.TEXT
    assert r.fields["b"] == Field("b", 1)
    assert len(r) == 3 and r.field_count() == 3


def test_record_from_field_list() -> None:
    r = Record([Field("a", 1), Field("b", 2)])
    assert r.data == {"a": 1, "b": 2}


def test_metadata_is_copied() -> None:
    meta = {"source": "x"}
    r = Record({"a": 1}, metadata=meta)
    r.metadata["source"] = "y"
    assert meta == {"source": "x"}
    assert Record().metadata == {}


# --------------------------------------------------------------------------- ids


def test_id_resolution_order() -> None:
    assert Record({"a": 1}).id is None
    assert Record({"a": 1}, metadata={"id": 9}).id == "9"
    assert Record({"id": 42}, metadata={"id": 9}).id == "42"
    assert Record({"id": 42}, id="explicit").id == "explicit"
    assert Record({"id": 42}, id="explicit", storage_id="key").id == "key"
    assert Record(storage_id="key").storage_id == "key"


def test_id_setter_sets_only_the_id() -> None:
    r = Record({"id": 1, "a": 2})
    r.id = "new"
    assert r.id == "new"
    assert r["id"] == 1
    r.id = None
    assert r.id == "1"


def test_generate_id() -> None:
    r = Record({"a": 1})
    new_id = r.generate_id()
    assert r.id == new_id and len(new_id) == 36


# --------------------------------------------------------------------------- access


def test_item_access() -> None:
    r = Record({"a": 1, "b": 2})
    assert r["a"] == 1
    assert r[1] == Field("b", 2)
    r["c"] = 3
    assert r["c"] == 3
    del r["a"]
    assert "a" not in r and "b" in r
    with pytest.raises(KeyError) as info:
        r["missing"]
    assert info.value.args[0] == "Field 'missing' not found"
    with pytest.raises(KeyError, match="Field 'missing' not found"):
        del r["missing"]
    with pytest.raises(IndexError):
        r[5]


def test_attribute_access_reads_and_writes_fields() -> None:
    r = Record({"name": "Ann", "data": "shadowed", "copy": 1})
    assert r.name == "Ann"
    r.name = "Bob"
    assert r["name"] == "Bob"
    r.age = 30
    assert r["age"] == 30 and "age" in r
    # Real attributes and methods win over fields of the same name.
    assert r.data == {"name": "Bob", "data": "shadowed", "copy": 1, "age": 30}
    assert callable(r.copy)
    r.metadata = {"m": 1}
    assert r.metadata == {"m": 1} and "metadata" not in r
    with pytest.raises(AttributeError):
        r.nope  # noqa: B018
    del r.age
    assert "age" not in r


def test_get_value_paths() -> None:
    r = Record(
        {"a": {"b": {"c": 5}}, "tags": ["x", "y"], "a.b": "literal"},
        metadata={"owner": {"name": "ann"}},
    )
    assert r.get_value("a.b") == "literal"  # an exact field name wins
    assert r.get_value("a.b.c") == 5
    assert r.get_value("tags.1") == "y"
    assert r.get_value("tags.5", "dflt") == "dflt"
    assert r.get_value("tags.-1", "dflt") == "dflt"
    assert r.get_value("metadata.owner.name") == "ann"
    assert r.get_value("missing", 7) == 7
    # get() is the exact-key accessor (0.11.0): no path walking.
    assert r.get("a.b.c") is None
    assert r.get("a.b") == "literal"
    assert r.get("nope", "d") == "d"
    assert r.get_value("fields.a.b.c") == 5
    assert r.get_nested_value("metadata.owner.name") == "ann"
    assert r.get_nested_value("a.zz", "dflt") == "dflt"
    shadow = Record({"metadata": {"x": 1}}, metadata={"x": 2})
    assert shadow.get_value("metadata.x") == 1


def test_none_value_is_not_missing() -> None:
    r = Record({"a": None})
    assert r.get_value("a", "default") is None
    assert r["a"] is None


def test_set_value_set_field_remove_field() -> None:
    r = Record({"a": 1})
    r.set_field("b", 1, field_type=FieldType.FLOAT, field_metadata={"unit": "m"})
    assert r.get_field("b") == Field("b", 1, FieldType.FLOAT, {"unit": "m"})
    r.set_value("b", 2)
    # The existing field keeps its metadata, and its type when the value fits it.
    assert r.get_field("b") == Field("b", 2, FieldType.FLOAT, {"unit": "m"})
    r.set_value("b", "text")
    assert r.get_field("b") == Field("b", "text", FieldType.STRING, {"unit": "m"})
    assert r.remove_field("a") is True
    assert r.remove_field("a") is False
    assert r.has_field("b") and not r.has_field("a")
    assert r.get_field("zzz") is None


def test_validate() -> None:
    r = Record({"a": 1, "b": "x"})
    assert r.validate()
    r.set_field("c", "not a number", field_type=FieldType.INTEGER)
    assert not r.validate()


# --------------------------------------------------------------------------- derived records


def test_copy_deep_and_shallow() -> None:
    r = Record({"a": {"n": [1]}}, metadata={"m": [1]}, id="r1")
    deep = r.copy()
    assert deep == r and deep.id == "r1"
    deep["a"]["n"].append(2)
    deep.metadata["m"].append(2)
    assert r["a"] == {"n": [1]} and r.metadata == {"m": [1]}
    shallow = r.copy(deep=False)
    shallow["b"] = 1
    assert "b" not in r
    shallow["a"]["n"].append(3)
    assert r["a"]["n"] == [1, 3]


def test_copy_of_materialised_record() -> None:
    r = Record({"a": Field("a", [1], FieldType.JSON, {"k": 1})}, id="x")
    c = r.copy()
    assert c == r
    c.fields["a"].value.append(2)
    assert r["a"] == [1]


def test_project_keeps_id_and_named_fields() -> None:
    r = Record({"a": 1, "b": 2, "c": 3}, metadata={"m": 1}, id="r1")
    p = r.project(["c", "a", "missing"])
    assert p.data == {"c": 3, "a": 1}
    assert p.id == "r1" and p.metadata == {"m": 1}
    assert r.data == {"a": 1, "b": 2, "c": 3}
    assert Record({"id": "k", "a": 1}).project(["a"]).id == "k"


def test_merge() -> None:
    a = Record({"x": 1, "y": 2}, metadata={"m": "a"}, id="a")
    b = Record({"y": 20, "z": 30}, metadata={"m": "b", "n": 1}, id="b")
    merged = a.merge(b)
    assert merged.data == {"x": 1, "y": 20, "z": 30}
    assert merged.metadata == {"m": "b", "n": 1}
    assert merged.id == "a"
    kept = a.merge(b, overwrite=False)
    assert kept.data == {"x": 1, "y": 2, "z": 30}
    assert kept.metadata == {"m": "a", "n": 1}
    assert a.data == {"x": 1, "y": 2}  # inputs are untouched
    merged["z"] = 0
    assert b["z"] == 30


# --------------------------------------------------------------------------- serialisation


def test_to_dict_flat() -> None:
    r = Record({"a": 1}, metadata={"m": 1}, id="r1")
    assert r.to_dict() == {"a": 1, "_id": "r1"}
    assert r.to_dict(include_metadata=True) == {"a": 1, "_id": "r1", "_metadata": {"m": 1}}
    assert Record({"a": 1}).to_dict(include_metadata=True) == {"a": 1}


def test_to_dict_structured() -> None:
    r = Record({"a": 1}, metadata={"m": 1}, id="r1")
    # As 0.11.0: "metadata" only when include_metadata is asked for.
    assert r.to_dict(flatten=False) == {
        "fields": {"a": {"name": "a", "value": 1, "type": "integer", "metadata": {}}},
        "id": "r1",
    }
    assert r.to_dict(flatten=False, include_metadata=True)["metadata"] == {"m": 1}
    assert r.to_dict(flatten=False, include_field_objects=False)["fields"] == {"a": 1}


def test_from_dict_round_trips_and_does_not_mutate() -> None:
    r = Record({"a": 1, "b": Field("b", 2, FieldType.FLOAT)}, metadata={"m": 1}, id="r1")
    flat = r.to_dict(include_metadata=True)
    snapshot = dict(flat)
    back = Record.from_dict(flat)
    assert flat == snapshot
    assert back.id == "r1" and back.data == {"a": 1, "b": 2} and back.metadata == {"m": 1}
    structured = Record.from_dict(r.to_dict(flatten=False, include_metadata=True))
    assert structured == r
    assert structured.fields["b"].type is FieldType.FLOAT
    plain = Record.from_dict({"fields": {"a": 5}, "id": "q"})
    assert plain.id == "q" and plain["a"] == 5


def test_equality_and_repr() -> None:
    assert Record({"a": 1}, id="x") == Record({"a": 1}, id="x")
    assert Record({"a": 1}, id="x") != Record({"a": 1}, id="y")
    assert Record({"a": 1}) != Record({"a": 1.0})
    assert Record({"a": 1}) == Record({"a": Field("a", 1)})
    assert repr(Record({"a": 1}, id="x")) == "Record(id='x', data={'a': 1}, metadata={})"


def test_pickle_and_copy_module() -> None:
    for r in (Record({"a": [1]}, metadata={"m": 1}, id="x"), Record({"a": Field("a", 1)})):
        assert pickle.loads(pickle.dumps(r)) == r
        assert copy.deepcopy(r) == r
        assert copy.copy(r) == r


# --------------------------------------------------------------------------- row fast paths


def test_from_row_takes_ownership_and_to_row_returns_new_dicts() -> None:
    data = {"a": 1, "n": {"x": 1}}
    meta = {"m": 1}
    r = Record._from_row("r1", data, meta)
    assert r.id == "r1" and r["a"] == 1 and r.metadata is meta
    rid, out_data, out_meta = r._to_row()
    assert rid == "r1" and out_data == data and out_meta == meta
    assert out_data is not data and out_meta is not meta
    out_data["a"] = 2
    assert r["a"] == 1
    assert Record({"a": 1})._to_row() == (None, {"a": 1}, {})
    assert Record({"id": 5})._to_row()[0] == "5"


def test_row_fast_paths_agree_with_the_public_api() -> None:
    r = Record._from_row("r1", {"a": 1, "s": "x", "f": 1.5}, {})
    assert r.fields["s"] == Field("s", "x")
    assert r.get_field("f") == Field("f", 1.5, FieldType.FLOAT)
    r["b"] = True
    assert r._to_row() == ("r1", {"a": 1, "s": "x", "f": 1.5, "b": True}, {})


def test_rows_round_trip_100k() -> None:
    rows = [
        (f"id{i}", {"name": f"n{i}", "age": i, "score": i * 0.5, "tags": ["a"]}, {"v": 1})
        for i in range(100_000)
    ]
    records = [Record._from_row(i, d, m) for i, d, m in rows]
    back = [r._to_row() for r in records]
    assert back == rows
    assert records[-1].id == "id99999" and records[-1]["age"] == 99_999


def test_record_id_field_supplies_the_id() -> None:
    assert Record({"record_id": "r9", "a": 1}).id == "r9"
    # "id" in data, then metadata["id"], then "record_id" (0.11.0's order).
    assert Record({"id": "i1", "record_id": "r9"}).id == "i1"
    assert Record({"record_id": "r9"}, metadata={"id": "m"}).id == "m"
    assert Record({"record_id": "r9"}).to_dict() == {"record_id": "r9", "_id": "r9"}


def test_storage_and_user_ids() -> None:
    r = Record({"id": "user-1", "a": 1})
    assert r.get_user_id() == "user-1"
    assert not r.has_storage_id()
    r.id = "stored-1"
    assert r.has_storage_id() and r.id == "stored-1"
    assert r.get_user_id() == "user-1"
    assert Record({"a": 1}).get_user_id() is None
    assert Record({"a": 1}, storage_id="s").has_storage_id()


def test_get_field_object() -> None:
    r = Record({"name": "ann"})
    assert r.get_field_object("name").value == "ann"
    with pytest.raises(KeyError, match="Field 'zz' not found"):
        r.get_field_object("zz")


def test_to_dict_shapes_of_0_11_0() -> None:
    r = Record({"a": 1}, id="x", metadata={"k": 1})
    assert r.to_dict(flatten=False, include_field_objects=False) == {"fields": {"a": 1}, "id": "x"}
    assert r.to_dict(flatten=False, include_metadata=True)["metadata"] == {"k": 1}
    assert "id" not in Record({"a": 1}).to_dict(flatten=False)
    assert Record({"id": "ada"}).to_dict() == {"id": "ada", "_id": "ada"}
    back = Record.from_dict(r.to_dict(flatten=False, include_metadata=True))
    assert (back.id, back.metadata, back.data) == ("x", {"k": 1}, {"a": 1})
