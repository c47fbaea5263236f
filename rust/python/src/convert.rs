//! Python objects <-> the core value model (docs/internals.md §1, §2).
//!
//! All of this runs with the GIL held, once per batch or page; the store work in between runs
//! without it.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use dataknobs_core::row::TextRow;
use dataknobs_core::sqlite::EncodedRow;
use dataknobs_core::value::{too_deep_message, MAX_DEPTH};
use dataknobs_core::{codec, iso, Cond, DateTimeValue, Map, Op, QuerySpec, Row, Value, WriteOp};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMemoryView, PySet,
    PyString, PyTuple,
};

use crate::errors::{core_to_py, query_error, serialization_error};

/// Python classes looked up once: the `datetime` and `decimal` modules are pure Python under
/// abi3, so type checks and construction go through these objects.
struct Classes {
    datetime: Py<PyAny>,
    date: Py<PyAny>,
    decimal: Py<PyAny>,
    timezone: Py<PyAny>,
    timedelta: Py<PyAny>,
    utc: Py<PyAny>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&'static Classes> {
    CLASSES.get_or_try_init(py, || {
        let datetime = py.import("datetime")?;
        let decimal = py.import("decimal")?;
        let timezone = datetime.getattr("timezone")?;
        Ok::<_, PyErr>(Classes {
            datetime: datetime.getattr("datetime")?.unbind(),
            date: datetime.getattr("date")?.unbind(),
            decimal: decimal.getattr("Decimal")?.unbind(),
            utc: timezone.getattr("utc")?.unbind(),
            timezone: timezone.unbind(),
            timedelta: datetime.getattr("timedelta")?.unbind(),
        })
    })
}

/// Where a value sits in a record, rendered only when an error needs it.
#[derive(Clone, Copy)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

#[derive(Clone, Copy)]
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
    depth: usize,
}

impl<'a> Path<'a> {
    pub fn root(key: &'a str) -> Self {
        Path {
            parent: None,
            seg: Seg::Key(key),
            depth: 0,
        }
    }

    fn child(&'a self, seg: Seg<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            seg,
            depth: self.depth + 1,
        }
    }

    fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            segs.push(match p.seg {
                Seg::Key(k) => k.to_string(),
                Seg::Index(i) => i.to_string(),
            });
            cur = p.parent;
        }
        segs.reverse();
        segs.join(".")
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string())
}

fn unsupported(obj: &Bound<'_, PyAny>, path: &Path<'_>) -> PyErr {
    serialization_error(
        obj.py(),
        format!(
            "cannot store value of type '{}' at '{}'",
            type_name(obj),
            path.render()
        ),
    )
}

/// Options for [`value_from_py`]: filter values may be sets (`in` accepts any collection).
#[derive(Clone, Copy)]
pub struct Accept {
    pub sets: bool,
}

pub const STORED: Accept = Accept { sets: false };
pub const FILTER: Accept = Accept { sets: true };

pub fn value_from_py(obj: &Bound<'_, PyAny>, path: &Path<'_>, accept: Accept) -> PyResult<Value> {
    let py = obj.py();
    if path.depth > MAX_DEPTH {
        return Err(serialization_error(
            py,
            format!("{} at '{}'", too_deep_message(), path.render()),
        ));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool is a subclass of int: test it first.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return match obj.extract::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => Err(serialization_error(
                py,
                format!(
                    "cannot store value of type '{}' at '{}': integer does not fit in 64 bits",
                    type_name(obj),
                    path.render()
                ),
            )),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(s.to_str()?.to_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return map_from_dict(d, path, accept).map(Value::Map);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return seq_from_iter(l.iter(), l.len(), path, accept);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return seq_from_iter(t.iter(), t.len(), path, accept);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::Bytes(b.to_vec()));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let bytes = obj.call_method0("tobytes")?;
        return Ok(Value::Bytes(bytes.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    let cls = classes(py)?;
    // datetime is a subclass of date: test it first.
    if obj.is_instance(cls.datetime.bind(py))? {
        return datetime_from_py(obj, path).map(Value::DateTime);
    }
    if obj.is_instance(cls.date.bind(py))? {
        return date_from_py(obj, path).map(Value::Date);
    }
    if obj.is_instance(cls.decimal.bind(py))? {
        return Ok(Value::Decimal(obj.str()?.to_str()?.to_owned()));
    }
    if accept.sets && (obj.is_instance_of::<PySet>() || obj.is_instance_of::<PyFrozenSet>()) {
        let mut items = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            items.push(value_from_py(&item?, &path.child(Seg::Index(i)), accept)?);
        }
        return Ok(Value::List(items));
    }
    Err(unsupported(obj, path))
}

fn seq_from_iter<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    len: usize,
    path: &Path<'_>,
    accept: Accept,
) -> PyResult<Value> {
    let mut out = Vec::with_capacity(len);
    for (i, item) in items.enumerate() {
        out.push(value_from_py(&item, &path.child(Seg::Index(i)), accept)?);
    }
    Ok(Value::List(out))
}

fn map_from_dict(d: &Bound<'_, PyDict>, path: &Path<'_>, accept: Accept) -> PyResult<Map> {
    let mut map = Map::with_capacity(d.len());
    for (k, v) in d.iter() {
        let key = dict_key(&k, path)?;
        let value = value_from_py(&v, &path.child(Seg::Key(&key)), accept)?;
        map.insert(key, value);
    }
    Ok(map)
}

fn dict_key(k: &Bound<'_, PyAny>, path: &Path<'_>) -> PyResult<String> {
    match k.cast::<PyString>() {
        Ok(s) => Ok(s.to_str()?.to_owned()),
        Err(_) => Err(serialization_error(
            k.py(),
            format!(
                "cannot store dict key of type '{}' at '{}'",
                type_name(k),
                path.render()
            ),
        )),
    }
}

/// A top-level mapping (record data or metadata): its keys start the field paths.
fn fields_from_dict(d: &Bound<'_, PyAny>, prefix: Option<&str>, what: &str) -> PyResult<Map> {
    let py = d.py();
    if d.is_none() {
        return Ok(Map::new());
    }
    let dict = d.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!("row {what} must be a dict, not '{}'", type_name(d)))
    })?;
    let mut map = Map::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key = match k.cast::<PyString>() {
            Ok(s) => s.to_str()?.to_owned(),
            Err(_) => {
                return Err(serialization_error(
                    py,
                    format!(
                        "cannot store field name of type '{}' in {what}",
                        type_name(&k)
                    ),
                ))
            }
        };
        let value = match prefix {
            Some(p) => {
                let root = Path::root(p);
                value_from_py(&v, &root.child(Seg::Key(&key)), STORED)?
            }
            None => value_from_py(&v, &Path::root(&key), STORED)?,
        };
        map.insert(key, value);
    }
    Ok(map)
}

fn datetime_from_py(obj: &Bound<'_, PyAny>, path: &Path<'_>) -> PyResult<DateTimeValue> {
    let date = date_from_py(obj, path)?;
    let time = NaiveTime::from_hms_micro_opt(
        obj.getattr("hour")?.extract()?,
        obj.getattr("minute")?.extract()?,
        obj.getattr("second")?.extract()?,
        obj.getattr("microsecond")?.extract()?,
    )
    .ok_or_else(|| unsupported(obj, path))?;
    let offset = obj.call_method0("utcoffset")?;
    let offset_seconds = if offset.is_none() {
        None
    } else {
        let days: i64 = offset.getattr("days")?.extract()?;
        let seconds: i64 = offset.getattr("seconds")?.extract()?;
        let total = days * 86_400 + seconds;
        Some(i32::try_from(total).map_err(|_| unsupported(obj, path))?)
    };
    Ok(DateTimeValue {
        naive: NaiveDateTime::new(date, time),
        offset_seconds,
    })
}

fn date_from_py(obj: &Bound<'_, PyAny>, path: &Path<'_>) -> PyResult<NaiveDate> {
    NaiveDate::from_ymd_opt(
        obj.getattr("year")?.extract()?,
        obj.getattr("month")?.extract()?,
        obj.getattr("day")?.extract()?,
    )
    .ok_or_else(|| unsupported(obj, path))
}

/// Makes Python objects of core values. The maps of one batch repeat the same few keys, so
/// each distinct key becomes one Python str shared by every dict that has it, as the json
/// module's decoder does: no str made, hashed and freed again for every row.
pub struct ToPy<'py> {
    py: Python<'py>,
    /// None for a single row or value, whose keys would not repeat enough to pay for it.
    keys: Option<HashMap<Box<str>, Bound<'py, PyString>>>,
    /// A Python error met while reading JSON (see `fail`).
    failed: Option<PyErr>,
}

impl<'py> ToPy<'py> {
    /// Keys beyond this many distinct ones (maps keyed by data, not by a schema) are made
    /// afresh each time instead of filling the cache.
    const MAX_KEYS: usize = 4096;

    /// For one value or row: keys made as they come.
    pub fn new(py: Python<'py>) -> Self {
        ToPy {
            py,
            keys: None,
            failed: None,
        }
    }

    /// For a batch of `items` rows or values: keys shared across them.
    pub fn for_batch(py: Python<'py>, items: usize) -> Self {
        ToPy {
            keys: (items > 1).then(HashMap::new),
            ..ToPy::new(py)
        }
    }

    fn key(&mut self, k: &str) -> Bound<'py, PyString> {
        let Some(keys) = self.keys.as_mut() else {
            return PyString::new(self.py, k);
        };
        if let Some(s) = keys.get(k) {
            return s.clone();
        }
        let s = PyString::new(self.py, k);
        if keys.len() < Self::MAX_KEYS {
            keys.insert(k.into(), s.clone());
        }
        s
    }

    pub fn value(&mut self, value: &Value) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        Ok(match value {
            Value::Null => py.None().into_bound(py),
            Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
            Value::Int(i) => i.into_pyobject(py)?.into_any(),
            Value::Float(f) => PyFloat::new(py, *f).into_any(),
            Value::Str(s) => PyString::new(py, s).into_any(),
            Value::Bytes(b) => PyBytes::new(py, b).into_any(),
            Value::DateTime(dt) => datetime_to_py(py, dt)?,
            Value::Date(d) => classes(py)?
                .date
                .bind(py)
                .call1((d.year(), d.month(), d.day()))?,
            Value::Decimal(text) => classes(py)?.decimal.bind(py).call1((text.as_str(),))?,
            Value::List(items) => {
                let converted = items
                    .iter()
                    .map(|v| self.value(v))
                    .collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, converted)?.into_any()
            }
            Value::Map(map) => self.map(map)?.into_any(),
        })
    }

    fn map(&mut self, map: &Map) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(self.py);
        for (k, v) in map {
            dict.set_item(self.key(k), self.value(v)?)?;
        }
        Ok(dict)
    }

    /// A row as the tuple `(id, data, metadata)`.
    pub fn row(&mut self, row: &Row) -> PyResult<Bound<'py, PyAny>> {
        let items: [Bound<'py, PyAny>; 3] = [
            PyString::new(self.py, &row.id).into_any(),
            self.map(&row.data)?.into_any(),
            self.map(&row.metadata)?.into_any(),
        ];
        Ok(PyTuple::new(self.py, items)?.into_any())
    }
}

impl<'py> ToPy<'py> {
    /// A stored row's tagged JSON text straight to Python objects: what decoding it to a
    /// `Row` and converting that makes, without building the `Value`s in between. Any text the
    /// direct reading does not take (bad JSON, a bad tag, a top level that is not a map) goes
    /// through `TextRow::decode`, whose error names the record.
    pub fn text_row(&mut self, row: &TextRow) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let (data, metadata) = match (self.stored_map(&row.data), self.stored_map(&row.metadata)) {
            (Ok(Some(d)), Ok(Some(m))) => (d, m),
            (Err(e), _) | (_, Err(e)) => return Err(e),
            _ => {
                let decoded = row.decode().map_err(|e| core_to_py(py, e))?;
                return self.row(&decoded);
            }
        };
        let items: [Bound<'py, PyAny>; 3] = [
            PyString::new(py, &row.id).into_any(),
            data.into_any(),
            metadata.into_any(),
        ];
        Ok(PyTuple::new(py, items)?.into_any())
    }

    /// The dict a stored map's text reads as; None when the text is not one the direct
    /// reading takes (the caller decodes it the long way for the error).
    fn stored_map(&mut self, text: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        Ok(self
            .json_at(text, RECORD_LEVEL)?
            .and_then(|v| v.cast_into::<PyDict>().ok()))
    }

    /// The Python object tagged JSON text reads as; None when the direct reading does not
    /// take the text (malformed, a bad tag, an integer beyond 64 bits), for which the long
    /// way (`codec::decode_json`) has the error.
    pub fn json(&mut self, text: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.json_at(text, RECORD_LEVEL + 1)
    }

    /// [`Self::json`] for text whose root sits at `level` (see `PySeed::level`).
    fn json_at(&mut self, text: &str, level: usize) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.failed = None;
        let read = codec::read_text(text, PySeed { cx: self, level });
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        Ok(read.ok())
    }

    /// Notes a Python error met inside the JSON reader, which can only carry its own.
    fn fail<E: serde::de::Error>(&mut self, e: PyErr) -> E {
        self.failed = Some(e);
        E::custom("a Python object could not be made")
    }
}

/// The level a record's data or metadata map is read at: its fields are at depth 0.
const RECORD_LEVEL: usize = 0;

/// Reads one tagged JSON value into a Python object (see `ToPy::text_row`); the tag rules and
/// the depth limit are `codec::decode_json`'s.
struct PySeed<'a, 'py> {
    cx: &'a mut ToPy<'py>,
    /// The value's depth plus one (`RECORD_LEVEL` for a record's own map).
    level: usize,
}

impl<'py> PySeed<'_, 'py> {
    fn child(&mut self) -> PySeed<'_, 'py> {
        PySeed {
            cx: &mut *self.cx,
            level: self.level + 1,
        }
    }
}

impl<'de, 'py> serde::de::DeserializeSeed<'de> for PySeed<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.level > MAX_DEPTH + 1 {
            // The long way words the error.
            return Err(serde::de::Error::custom("too deep"));
        }
        d.deserialize_any(self)
    }
}

impl<'de, 'py> serde::de::Visitor<'de> for PySeed<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tagged JSON")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.cx.py.None().into_bound(self.cx.py))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.cx.py, b).to_owned().into_any())
    }

    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        match i.into_pyobject(self.cx.py) {
            Ok(v) => Ok(v.into_any()),
            Err(never) => match never {},
        }
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Self::Value, E> {
        // Out of range for the value model: the long way reports it.
        let i = i64::try_from(u).map_err(|_| E::custom("integer out of range"))?;
        self.visit_i64(i)
    }

    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.cx.py, f).into_any())
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.cx.py, s).into_any())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        mut self,
        mut seq: A,
    ) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self.child())? {
            items.push(v);
        }
        PyList::new(self.cx.py, items)
            .map(Bound::into_any)
            .map_err(|e| self.cx.fail(e))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (cx, level) = (self.cx, self.level);
        let child = level + 1;
        let dict = PyDict::new(cx.py);
        let Some(first) = map.next_key_seed(KeySeed { cx: &mut *cx })? else {
            return Ok(dict.into_any());
        };
        if let Some(tag) = first.tag {
            // A tag only if it is the object's one key: its value is read as plain JSON and
            // decoded by the core's rules, like the rest of the long way.
            let raw_seed = codec::RawSeed::for_depth(level.saturating_sub(1));
            let raw = map.next_value_seed(raw_seed)?;
            let second = map.next_key_seed(KeySeed { cx: &mut *cx })?;
            let value = codec::decode_tagged_member(tag, raw, second.is_none(), level)
                .map_err(|e| serde::de::Error::custom(e.to_string()))?;
            let value = cx.value(&value).map_err(|e| cx.fail(e))?;
            let Some(second) = second else {
                return Ok(value);
            };
            dict.set_item(first.name, value).map_err(|e| cx.fail(e))?;
            let v = map.next_value_seed(PySeed {
                cx: &mut *cx,
                level: child,
            })?;
            dict.set_item(second.name, v).map_err(|e| cx.fail(e))?;
        } else {
            let v = map.next_value_seed(PySeed {
                cx: &mut *cx,
                level: child,
            })?;
            dict.set_item(first.name, v).map_err(|e| cx.fail(e))?;
        }
        while let Some(k) = map.next_key_seed(KeySeed { cx: &mut *cx })? {
            let v = map.next_value_seed(PySeed {
                cx: &mut *cx,
                level: child,
            })?;
            dict.set_item(k.name, v).map_err(|e| cx.fail(e))?;
        }
        Ok(dict.into_any())
    }
}

/// A map key as its shared Python str, and the tag it names, if it is one.
struct Key<'py> {
    name: Bound<'py, PyString>,
    tag: Option<&'static str>,
}

struct KeySeed<'a, 'py> {
    cx: &'a mut ToPy<'py>,
}

impl<'de, 'py> serde::de::DeserializeSeed<'de> for KeySeed<'_, 'py> {
    type Value = Key<'py>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'py> serde::de::Visitor<'de> for KeySeed<'_, 'py> {
    type Value = Key<'py>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map key")
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Key {
            name: self.cx.key(s),
            tag: codec::tag_name(s),
        })
    }
}

pub fn value_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    ToPy::new(py).value(value)
}

fn datetime_to_py<'py>(py: Python<'py>, dt: &DateTimeValue) -> PyResult<Bound<'py, PyAny>> {
    let cls = classes(py)?;
    let tz = match dt.offset_seconds {
        None => py.None().into_bound(py),
        Some(0) => cls.utc.bind(py).clone(),
        Some(secs) => {
            let delta = cls
                .timedelta
                .bind(py)
                .call((), Some(&[("seconds", secs)].into_py_dict(py)?))?;
            cls.timezone.bind(py).call1((delta,))?
        }
    };
    let n = &dt.naive;
    // chrono keeps a leap second as nanos >= 1e9; Python has no such value.
    let micro = (n.nanosecond() / 1_000).min(999_999);
    cls.datetime.bind(py).call1((
        n.year(),
        n.month(),
        n.day(),
        n.hour(),
        n.minute(),
        n.second(),
        micro,
        tz,
    ))
}

use pyo3::types::IntoPyDict;

/// A row tuple's parts: the id (a str) and the data and metadata objects, unchecked.
fn row_parts<'py>(
    item: &Bound<'py, PyAny>,
) -> PyResult<(String, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let tuple = item.cast::<PyTuple>().map_err(|_| {
        PyTypeError::new_err(format!(
            "a row must be a tuple (id, data, metadata), not '{}'",
            type_name(item)
        ))
    })?;
    if tuple.len() != 3 {
        return Err(PyTypeError::new_err(format!(
            "a row must be a tuple (id, data, metadata), got {} items",
            tuple.len()
        )));
    }
    let id_obj = tuple.get_item(0)?;
    let id = match id_obj.cast::<PyString>() {
        Ok(s) => s.to_str()?.to_owned(),
        Err(_) => return Err(unsupported(&id_obj, &Path::root("id"))),
    };
    Ok((id, tuple.get_item(1)?, tuple.get_item(2)?))
}

pub fn row_from_py(item: &Bound<'_, PyAny>) -> PyResult<Row> {
    let (id, data, metadata) = row_parts(item)?;
    let data = fields_from_dict(&data, None, "data")?;
    let metadata = fields_from_dict(&metadata, Some("metadata"), "metadata")?;
    Ok(Row { id, data, metadata })
}

// ---------------------------------------------------------------------------------------------
// Python objects straight to tagged JSON text, for stores that keep rows as text (SQLite).
// Same checks, same errors and the same bytes as `value_from_py` followed by
// `codec::encode_map`, without building the `Value` tree in between.

fn push_py(out: &mut String, obj: &Bound<'_, PyAny>, path: &Path<'_>) -> PyResult<()> {
    let py = obj.py();
    if path.depth > MAX_DEPTH {
        return Err(serialization_error(
            py,
            format!("{} at '{}'", too_deep_message(), path.render()),
        ));
    }
    if obj.is_none() {
        out.push_str("null");
        return Ok(());
    }
    // bool is a subclass of int: test it first.
    if let Ok(b) = obj.cast::<PyBool>() {
        out.push_str(if b.is_true() { "true" } else { "false" });
        return Ok(());
    }
    if obj.is_instance_of::<PyInt>() {
        return match obj.extract::<i64>() {
            Ok(i) => {
                codec::push_int(out, i);
                Ok(())
            }
            Err(_) => Err(serialization_error(
                py,
                format!(
                    "cannot store value of type '{}' at '{}': integer does not fit in 64 bits",
                    type_name(obj),
                    path.render()
                ),
            )),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        codec::push_float(out, f.value());
        return Ok(());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        codec::push_json_str(out, s.to_str()?);
        return Ok(());
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return push_dict(out, d, path);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return push_seq(out, l.iter(), path);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return push_seq(out, t.iter(), path);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        codec::push_bytes(out, b.as_bytes());
        return Ok(());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        codec::push_bytes(out, &b.to_vec());
        return Ok(());
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let bytes = obj.call_method0("tobytes")?;
        codec::push_bytes(out, bytes.cast::<PyBytes>()?.as_bytes());
        return Ok(());
    }
    let cls = classes(py)?;
    // datetime is a subclass of date: test it first.
    if obj.is_instance(cls.datetime.bind(py))? {
        let dt = datetime_from_py(obj, path)?;
        codec::push_tagged(out, "$datetime", &iso::format_datetime(&dt));
        return Ok(());
    }
    if obj.is_instance(cls.date.bind(py))? {
        let d = date_from_py(obj, path)?;
        codec::push_tagged(out, "$date", &iso::format_date(d));
        return Ok(());
    }
    if obj.is_instance(cls.decimal.bind(py))? {
        codec::push_tagged(out, "$decimal", obj.str()?.to_str()?);
        return Ok(());
    }
    Err(unsupported(obj, path))
}

fn push_seq<'py>(
    out: &mut String,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    path: &Path<'_>,
) -> PyResult<()> {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_py(out, &item, &path.child(Seg::Index(i)))?;
    }
    out.push(']');
    Ok(())
}

/// Whether a dict must be written inside `{"$map": ...}`: one key, and that key a tag.
fn dict_looks_tagged(d: &Bound<'_, PyDict>) -> bool {
    d.len() == 1
        && d.keys().iter().all(|k| {
            k.cast::<PyString>()
                .ok()
                .and_then(|s| s.to_str().ok().map(codec::is_tag_key))
                .unwrap_or(false)
        })
}

fn push_dict(out: &mut String, d: &Bound<'_, PyDict>, path: &Path<'_>) -> PyResult<()> {
    let tagged = dict_looks_tagged(d);
    if tagged {
        out.push_str("{\"$map\":");
    }
    out.push('{');
    for (i, (k, v)) in d.iter().enumerate() {
        let key = match k.cast::<PyString>() {
            Ok(s) => s.to_str()?,
            Err(_) => {
                return Err(serialization_error(
                    k.py(),
                    format!(
                        "cannot store dict key of type '{}' at '{}'",
                        type_name(&k),
                        path.render()
                    ),
                ))
            }
        };
        if i > 0 {
            out.push(',');
        }
        codec::push_json_str(out, key);
        out.push(':');
        push_py(out, &v, &path.child(Seg::Key(key)))?;
    }
    out.push('}');
    if tagged {
        out.push('}');
    }
    Ok(())
}

/// `fields_from_dict` followed by `codec::encode_map`, in one pass.
fn encode_fields(d: &Bound<'_, PyAny>, prefix: Option<&str>, what: &str) -> PyResult<String> {
    let py = d.py();
    if d.is_none() {
        return Ok("{}".to_string());
    }
    let dict = d.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!("row {what} must be a dict, not '{}'", type_name(d)))
    })?;
    let mut out = String::with_capacity(32 + 24 * dict.len());
    let tagged = dict_looks_tagged(dict);
    if tagged {
        out.push_str("{\"$map\":");
    }
    out.push('{');
    for (i, (k, v)) in dict.iter().enumerate() {
        let key = match k.cast::<PyString>() {
            Ok(s) => s.to_str()?,
            Err(_) => {
                return Err(serialization_error(
                    py,
                    format!(
                        "cannot store field name of type '{}' in {what}",
                        type_name(&k)
                    ),
                ))
            }
        };
        if i > 0 {
            out.push(',');
        }
        codec::push_json_str(&mut out, key);
        out.push(':');
        match prefix {
            Some(p) => {
                let root = Path::root(p);
                push_py(&mut out, &v, &root.child(Seg::Key(key)))?;
            }
            None => push_py(&mut out, &v, &Path::root(key))?,
        }
    }
    out.push('}');
    if tagged {
        out.push('}');
    }
    Ok(out)
}

fn encoded_row_from_py(item: &Bound<'_, PyAny>) -> PyResult<EncodedRow> {
    let (id, data, metadata) = row_parts(item)?;
    let data = encode_fields(&data, None, "data")?;
    let metadata = encode_fields(&metadata, Some("metadata"), "metadata")?;
    Ok(EncodedRow { id, data, metadata })
}

/// `rows_from_py` for stores that keep tagged JSON text: each row encoded straight from the
/// Python objects, the whole batch before any of it is stored.
pub fn encoded_rows_from_py(rows: &Bound<'_, PyAny>) -> PyResult<Vec<EncodedRow>> {
    let mut out = Vec::with_capacity(rows.len().unwrap_or(0));
    for item in rows.try_iter()? {
        out.push(encoded_row_from_py(&item?)?);
    }
    Ok(out)
}

/// A whole batch, converted before any of it is stored (so a bad row stores nothing).
pub fn rows_from_py(rows: &Bound<'_, PyAny>) -> PyResult<Vec<Row>> {
    let mut out = Vec::with_capacity(rows.len().unwrap_or(0));
    for item in rows.try_iter()? {
        out.push(row_from_py(&item?)?);
    }
    Ok(out)
}

/// A transaction's batches: `[(kind, payload), ...]` with kind "create" or "upsert" (payload:
/// rows) or "delete" (payload: ids), in the order they are to be applied.
pub fn write_ops_from_py(ops: &Bound<'_, PyAny>) -> PyResult<Vec<WriteOp>> {
    let mut out = Vec::with_capacity(ops.len().unwrap_or(0));
    for item in ops.try_iter()? {
        let (kind, payload): (String, Bound<'_, PyAny>) = item?.extract()?;
        out.push(match kind.as_str() {
            "create" => WriteOp::Create(rows_from_py(&payload)?),
            "upsert" => WriteOp::Upsert(rows_from_py(&payload)?),
            "delete" => WriteOp::Delete(ids_from_py(&payload)?),
            other => {
                return Err(PyTypeError::new_err(format!(
                    "a transaction batch is create, upsert or delete, not {other:?}"
                )))
            }
        });
    }
    Ok(out)
}

pub fn ids_from_py(ids: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if ids.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("ids must be a list of str, not a str"));
    }
    let mut out = Vec::with_capacity(ids.len().unwrap_or(0));
    for item in ids.try_iter()? {
        let item = item?;
        match item.cast::<PyString>() {
            Ok(s) => out.push(s.to_str()?.to_owned()),
            Err(_) => {
                return Err(PyTypeError::new_err(format!(
                    "an id must be a str, not '{}'",
                    type_name(&item)
                )))
            }
        }
    }
    Ok(out)
}

fn non_negative(
    py: Python<'_>,
    obj: Option<Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Option<usize>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(query_error(
            py,
            format!("{what} must be an int or None, not '{}'", type_name(&obj)),
        ));
    }
    let n: i64 = obj
        .extract()
        .map_err(|_| query_error(py, format!("{what} is out of range")))?;
    if n < 0 {
        return Err(query_error(
            py,
            format!("{what} must not be negative, got {n}"),
        ));
    }
    usize::try_from(n)
        .map(Some)
        .map_err(|_| query_error(py, format!("{what} is out of range")))
}

/// A spec dict (internals §2); `None` means everything.
pub fn spec_from_py(spec: Option<&Bound<'_, PyAny>>) -> PyResult<QuerySpec> {
    let Some(spec) = spec else {
        return Ok(QuerySpec::default());
    };
    let py = spec.py();
    if spec.is_none() {
        return Ok(QuerySpec::default());
    }
    let dict = spec.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "a query spec must be a dict, not '{}'",
            type_name(spec)
        ))
    })?;
    let mut out = QuerySpec::default();
    if let Some(w) = dict.get_item("where")? {
        if !w.is_none() {
            out.cond = Some(cond_from_py(&w)?);
        }
    }
    if let Some(sort) = dict.get_item("sort")? {
        if !sort.is_none() {
            for key in sort.try_iter()? {
                let key = key?;
                let bad = || {
                    query_error(
                        py,
                        format!("a sort key must be (field: str, descending: bool), got {key}"),
                    )
                };
                match seq_items(&key).as_deref() {
                    Some([field, descending]) => out.sort.push((
                        field.extract().map_err(|_| bad())?,
                        descending.extract().map_err(|_| bad())?,
                    )),
                    _ => return Err(bad()),
                }
            }
        }
    }
    out.offset = non_negative(py, dict.get_item("offset")?, "offset")?;
    out.limit = non_negative(py, dict.get_item("limit")?, "limit")?;
    if let Some(fields) = dict.get_item("fields")? {
        if !fields.is_none() {
            let names = ids_from_py(&fields)
                .map_err(|_| query_error(py, "fields must be a list of str"))?;
            if !names.is_empty() {
                out.fields = Some(names);
            }
        }
    }
    Ok(out)
}

/// The items of a tuple or list (specs may arrive as either, e.g. after a JSON round trip).
fn seq_items<'py>(obj: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    if let Ok(t) = obj.cast::<PyTuple>() {
        Some(t.iter().collect())
    } else if let Ok(l) = obj.cast::<PyList>() {
        Some(l.iter().collect())
    } else {
        None
    }
}

pub fn cond_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Cond> {
    let py = obj.py();
    let bad = || {
        query_error(
            py,
            format!(
                "a condition must be ('filter', field, op, value), ('and', [...]), \
                 ('or', [...]) or ('not', cond), got {}",
                obj.repr().map(|r| r.to_string()).unwrap_or_default()
            ),
        )
    };
    let items = seq_items(obj).ok_or_else(bad)?;
    let tag: String = match items.first() {
        Some(first) => first.extract().map_err(|_| bad())?,
        None => return Err(bad()),
    };
    match (tag.as_str(), items.as_slice()) {
        ("filter", [_, field, op, value]) => {
            let field: String = field.extract().map_err(|_| bad())?;
            let op_text: String = op.extract().map_err(|_| bad())?;
            let op = Op::parse(&op_text)
                .map_err(|_| query_error(py, format!("unknown operator '{op_text}'")))?;
            let value = value_from_py(value, &Path::root(&field), FILTER)?;
            Ok(Cond::Filter { field, op, value })
        }
        ("and", [_, children]) | ("or", [_, children]) => {
            let mut conds = Vec::new();
            for child in children.try_iter().map_err(|_| bad())? {
                conds.push(cond_from_py(&child?)?);
            }
            Ok(if tag == "and" {
                Cond::And(conds)
            } else {
                Cond::Or(conds)
            })
        }
        ("not", [_, inner]) => Ok(Cond::Not(Box::new(cond_from_py(inner)?))),
        _ => Err(bad()),
    }
}

/// Rust results that become Python objects under the GIL, a whole batch or page at a time.
pub trait ToPython {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;

    /// As `to_python`, as one item of a batch sharing `cx` (its map keys).
    fn to_python_in<'py>(self, cx: &mut ToPy<'py>) -> PyResult<Bound<'py, PyAny>>
    where
        Self: Sized,
    {
        self.to_python(cx.py)
    }
}

impl ToPython for () {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(py.None().into_bound(py))
    }
}

impl ToPython for bool {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyBool::new(py, self).to_owned().into_any())
    }
}

impl ToPython for usize {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.into_pyobject(py)?.into_any())
    }
}

impl ToPython for String {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyString::new(py, &self).into_any())
    }
}

impl ToPython for TextRow {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        ToPy::new(py).text_row(&self)
    }

    fn to_python_in<'py>(self, cx: &mut ToPy<'py>) -> PyResult<Bound<'py, PyAny>> {
        cx.text_row(&self)
    }
}

impl ToPython for Row {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        ToPy::new(py).row(&self)
    }

    fn to_python_in<'py>(self, cx: &mut ToPy<'py>) -> PyResult<Bound<'py, PyAny>> {
        cx.row(&self)
    }
}

impl ToPython for Value {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        ToPy::new(py).value(&self)
    }

    fn to_python_in<'py>(self, cx: &mut ToPy<'py>) -> PyResult<Bound<'py, PyAny>> {
        cx.value(&self)
    }
}

impl<T: ToPython> ToPython for Option<T> {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.to_python_in(&mut ToPy::new(py))
    }

    fn to_python_in<'py>(self, cx: &mut ToPy<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Some(v) => v.to_python_in(cx),
            None => Ok(cx.py.None().into_bound(cx.py)),
        }
    }
}

/// Python's cyclic GC paused while a large batch becomes Python objects: every dict and list
/// made counts toward a collection, so a page of thousands of rows would run several passes
/// over objects that cannot be garbage yet (a tenth of a profiled stream_read). Restores the
/// previous state on drop, also on error.
struct GcPause {
    was_enabled: bool,
}

impl GcPause {
    /// Batches smaller than this make too few objects to trigger a collection worth skipping.
    const MIN_ITEMS: usize = 256;

    fn new(_py: Python<'_>) -> GcPause {
        // SAFETY: called with the GIL held (the token proves it); returns the previous state.
        let was_enabled = unsafe { pyo3::ffi::PyGC_Disable() } == 1;
        GcPause { was_enabled }
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        if self.was_enabled {
            // SAFETY: the GIL is still held: the pause lives inside a to_python call.
            unsafe {
                pyo3::ffi::PyGC_Enable();
            }
        }
    }
}

impl<T: ToPython> ToPython for Vec<T> {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let items = self.len();
        self.to_python_in(&mut ToPy::for_batch(py, items))
    }

    fn to_python_in<'py>(self, cx: &mut ToPy<'py>) -> PyResult<Bound<'py, PyAny>> {
        let py = cx.py;
        let _pause = (self.len() >= GcPause::MIN_ITEMS).then(|| GcPause::new(py));
        let items = self
            .into_iter()
            .map(|v| v.to_python_in(cx))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, items)?.into_any())
    }
}

impl<A: ToPython, B: ToPython, C: ToPython> ToPython for (A, B, C) {
    fn to_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let items = [
            self.0.to_python(py)?,
            self.1.to_python(py)?,
            self.2.to_python(py)?,
        ];
        Ok(PyTuple::new(py, items)?.into_any())
    }
}
