//! Records as Arrow RecordBatches (docs/pandas.md, "Arrow"): the schema a sample of rows
//! implies, and the batches of rows in a schema, built from the value model with no Python in
//! between. A value that does not fit its column is an error naming the record and the field;
//! nothing is dropped or coerced silently.
//!
//! The inference rule (one place; `dataknobs_data.arrow.infer_schema` calls it):
//!
//! | values of the field (None aside) | Arrow type |
//! |---|---|
//! | bool | `bool` |
//! | int | `int64` |
//! | int and float | `float64` |
//! | str | `string` |
//! | naive datetimes | `timestamp[us]` |
//! | aware datetimes | `timestamp[us, tz=UTC]` (the same instants) |
//! | dates | `date32` |
//! | bytes | `binary` |
//! | anything else, mixed types, no value | `string` of tagged JSON, field metadata `dataknobs.type = json` |
//!
//! The `id` column (first, not nullable) holds the record ids, unless a record of the batch
//! has a data field called `id`, which is then that column.

use std::collections::HashMap;
use std::sync::Arc;

pub use arrow_array;
pub use arrow_schema;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, LargeBinaryBuilder,
    LargeStringBuilder, StringBuilder,
};
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{ArrayRef, PrimitiveArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::codec;
use crate::error::{detail, Error, Result};
use crate::row::{Row, TextRow};
use crate::value::{Map, Value};

/// Field metadata marking a column of tagged JSON text.
pub const JSON_KEY: &str = "dataknobs.type";
pub const JSON_VALUE: &str = "json";
/// The record id column.
pub const ID_COLUMN: &str = "id";

const FORMAT: &str = "arrow";

/// What one field's values (None aside) have been so far.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    Date,
    Naive,
    Aware,
    Json,
}

fn kind_of(v: &Value) -> Option<Kind> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        Value::Bytes(_) => Kind::Bytes,
        Value::Date(_) => Kind::Date,
        Value::DateTime(dt) if dt.offset_seconds.is_none() => Kind::Naive,
        Value::DateTime(_) => Kind::Aware,
        Value::Decimal(_) | Value::List(_) | Value::Map(_) => Kind::Json,
    })
}

fn merge(seen: Option<Kind>, next: Kind) -> Kind {
    match seen {
        None => next,
        Some(a) if a == next => a,
        Some(Kind::Int | Kind::Float) if matches!(next, Kind::Int | Kind::Float) => Kind::Float,
        Some(_) => Kind::Json,
    }
}

/// A column of tagged JSON text.
pub fn json_field(name: &str) -> Field {
    let meta = HashMap::from([(JSON_KEY.to_string(), JSON_VALUE.to_string())]);
    Field::new(name, DataType::Utf8, true).with_metadata(meta)
}

/// Whether `field` holds tagged JSON text.
pub fn is_json(field: &Field) -> bool {
    field.metadata().get(JSON_KEY).map(String::as_str) == Some(JSON_VALUE)
}

fn record_id_field() -> Field {
    Field::new(ID_COLUMN, DataType::Utf8, false)
}

/// The schema of a table of `rows` (see the module table). `columns` picks and orders the
/// fields; without it they are every data field in first-seen order. The `id` column comes
/// first unless `columns` places it.
pub fn infer_schema(rows: &[Row], columns: Option<&[String]>) -> SchemaRef {
    let names: Vec<&str> = match columns {
        Some(cols) => {
            let mut seen: Vec<&str> = Vec::with_capacity(cols.len());
            for c in cols {
                if !seen.contains(&c.as_str()) {
                    seen.push(c);
                }
            }
            seen
        }
        None => {
            let mut seen: indexmap::IndexSet<&str> = indexmap::IndexSet::new();
            for r in rows {
                seen.extend(r.data.keys().map(String::as_str));
            }
            seen.into_iter().collect()
        }
    };
    let mut fields = Vec::with_capacity(names.len() + 1);
    if !names.contains(&ID_COLUMN) {
        fields.push(record_id_field());
    }
    for name in names {
        let mut seen = None;
        for r in rows {
            if let Some(k) = r.data.get(name).and_then(kind_of) {
                seen = Some(merge(seen, k));
            }
        }
        if name == ID_COLUMN && seen.is_none() && !rows.iter().any(|r| r.data.contains_key(name)) {
            fields.push(record_id_field());
            continue;
        }
        fields.push(match seen {
            Some(Kind::Bool) => Field::new(name, DataType::Boolean, true),
            Some(Kind::Int) => Field::new(name, DataType::Int64, true),
            Some(Kind::Float) => Field::new(name, DataType::Float64, true),
            Some(Kind::Str) => Field::new(name, DataType::Utf8, true),
            Some(Kind::Bytes) => Field::new(name, DataType::Binary, true),
            Some(Kind::Date) => Field::new(name, DataType::Date32, true),
            Some(Kind::Naive) => {
                Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), true)
            }
            Some(Kind::Aware) => Field::new(
                name,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Some(Kind::Json) | None => json_field(name),
        });
    }
    Arc::new(Schema::new(fields))
}

/// pyarrow's name for a type, so messages read as the user's schema does.
pub fn type_name(t: &DataType) -> String {
    let unit = |u: &TimeUnit| match u {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    };
    match t {
        DataType::Boolean => "bool".into(),
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 => "string".into(),
        DataType::LargeUtf8 => "large_string".into(),
        DataType::Binary => "binary".into(),
        DataType::LargeBinary => "large_binary".into(),
        DataType::Date32 => "date32[day]".into(),
        DataType::Timestamp(u, None) => format!("timestamp[{}]", unit(u)),
        DataType::Timestamp(u, Some(tz)) => format!("timestamp[{}, tz={tz}]", unit(u)),
        other => other.to_string(),
    }
}

/// Python's repr of a str (for messages).
fn py_str(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::DateTime(_) => "datetime",
        Value::Date(_) => "date",
        Value::Decimal(_) => "Decimal",
        Value::List(_) => "list",
        Value::Map(_) => "dict",
    }
}

/// A short text of a value for messages: a str quoted as Python does, the rest as tagged JSON,
/// cut at 80 characters.
fn describe(v: &Value) -> String {
    let text = match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Str(s) => py_str(s),
        other => codec::encode_json(other),
    };
    text.chars().take(80).collect()
}

const EPOCH_DAYS: i32 = 719_163; // days from 0001-01-01 (CE day 1) to 1970-01-01

/// Microseconds since the epoch of a datetime: the wall clock of a naive one, the instant of
/// an aware one.
fn micros(dt: &crate::value::DateTimeValue) -> Option<i64> {
    let utc = match dt.offset_seconds {
        None => dt.naive,
        Some(off) => dt
            .naive
            .checked_sub_signed(chrono::TimeDelta::seconds(i64::from(off)))?,
    };
    Some(utc.and_utc().timestamp_micros())
}

fn scaled(us: i64, unit: &TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => (us % 1_000_000 == 0).then_some(us / 1_000_000),
        TimeUnit::Millisecond => (us % 1_000 == 0).then_some(us / 1_000),
        TimeUnit::Microsecond => Some(us),
        TimeUnit::Nanosecond => us.checked_mul(1_000),
    }
}

/// One column being built. `Err(())` from `push`: the value does not fit.
enum Col {
    /// The record ids (not a data field).
    RecordId(StringBuilder),
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Str(StringBuilder),
    LargeStr(LargeStringBuilder),
    Json(StringBuilder, String),
    LargeJson(LargeStringBuilder, String),
    Bytes(BinaryBuilder),
    LargeBytes(LargeBinaryBuilder),
    Date(Date32Builder),
    Time {
        values: Vec<Option<i64>>,
        unit: TimeUnit,
        tz: Option<Arc<str>>,
    },
}

impl Col {
    fn new(field: &Field, record_ids: bool, cap: usize) -> Result<Col> {
        let json = is_json(field);
        Ok(match field.data_type() {
            DataType::Utf8 if record_ids => {
                Col::RecordId(StringBuilder::with_capacity(cap, cap * 8))
            }
            DataType::Utf8 if json => {
                Col::Json(StringBuilder::with_capacity(cap, cap * 16), String::new())
            }
            DataType::LargeUtf8 if json => Col::LargeJson(
                LargeStringBuilder::with_capacity(cap, cap * 16),
                String::new(),
            ),
            DataType::Utf8 => Col::Str(StringBuilder::with_capacity(cap, cap * 8)),
            DataType::LargeUtf8 => Col::LargeStr(LargeStringBuilder::with_capacity(cap, cap * 8)),
            DataType::Boolean => Col::Bool(BooleanBuilder::with_capacity(cap)),
            DataType::Int64 => Col::Int(Int64Builder::with_capacity(cap)),
            DataType::Float64 => Col::Float(Float64Builder::with_capacity(cap)),
            DataType::Binary => Col::Bytes(BinaryBuilder::with_capacity(cap, cap * 8)),
            DataType::LargeBinary => {
                Col::LargeBytes(LargeBinaryBuilder::with_capacity(cap, cap * 8))
            }
            DataType::Date32 => Col::Date(Date32Builder::with_capacity(cap)),
            DataType::Timestamp(unit, tz) => Col::Time {
                values: Vec::with_capacity(cap),
                unit: *unit,
                tz: tz.clone(),
            },
            other => {
                return Err(Error::serialization(
                    FORMAT,
                    format!(
                        "field {}: Arrow type {} is not supported (use bool, int64, double, \
                         string, large_string, binary, large_binary, date32 or timestamp)",
                        py_str(field.name()),
                        type_name(other)
                    ),
                ))
            }
        })
    }

    fn push_null(&mut self) {
        match self {
            Col::RecordId(b) | Col::Str(b) | Col::Json(b, _) => b.append_null(),
            Col::LargeStr(b) | Col::LargeJson(b, _) => b.append_null(),
            Col::Bool(b) => b.append_null(),
            Col::Int(b) => b.append_null(),
            Col::Float(b) => b.append_null(),
            Col::Bytes(b) => b.append_null(),
            Col::LargeBytes(b) => b.append_null(),
            Col::Date(b) => b.append_null(),
            Col::Time { values, .. } => values.push(None),
        }
    }

    fn push(&mut self, v: &Value) -> std::result::Result<(), ()> {
        match (self, v) {
            (Col::Json(b, buf), v) => {
                buf.clear();
                codec::push_value(buf, v);
                b.append_value(&*buf);
            }
            (Col::LargeJson(b, buf), v) => {
                buf.clear();
                codec::push_value(buf, v);
                b.append_value(&*buf);
            }
            (Col::RecordId(b) | Col::Str(b), Value::Str(s)) => b.append_value(s),
            (Col::LargeStr(b), Value::Str(s)) => b.append_value(s),
            (Col::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (Col::Int(b), Value::Int(i)) => b.append_value(*i),
            (Col::Float(b), Value::Float(f)) => b.append_value(*f),
            // An int in a float column is the same number (as pyarrow takes it).
            (Col::Float(b), Value::Int(i)) => b.append_value(*i as f64),
            (Col::Bytes(b), Value::Bytes(x)) => b.append_value(x),
            (Col::LargeBytes(b), Value::Bytes(x)) => b.append_value(x),
            (Col::Date(b), Value::Date(d)) => {
                let days = chrono::Datelike::num_days_from_ce(d) - EPOCH_DAYS;
                b.append_value(days);
            }
            (Col::Time { values, unit, tz }, Value::DateTime(dt)) => {
                // A naive value in a zoned column (or an aware one in a naive column) would
                // need a zone guessed for it: it does not fit.
                if dt.offset_seconds.is_some() != tz.is_some() {
                    return Err(());
                }
                let us = micros(dt).ok_or(())?;
                values.push(Some(scaled(us, unit).ok_or(())?));
            }
            _ => return Err(()),
        }
        Ok(())
    }

    fn finish(self) -> ArrayRef {
        fn time<T: arrow_array::types::ArrowTimestampType>(
            values: Vec<Option<i64>>,
            tz: Option<Arc<str>>,
        ) -> ArrayRef {
            Arc::new(
                values
                    .into_iter()
                    .collect::<PrimitiveArray<T>>()
                    .with_timezone_opt(tz),
            )
        }
        match self {
            Col::RecordId(mut b) | Col::Str(mut b) | Col::Json(mut b, _) => Arc::new(b.finish()),
            Col::LargeStr(mut b) | Col::LargeJson(mut b, _) => Arc::new(b.finish()),
            Col::Bool(mut b) => Arc::new(b.finish()),
            Col::Int(mut b) => Arc::new(b.finish()),
            Col::Float(mut b) => Arc::new(b.finish()),
            Col::Bytes(mut b) => Arc::new(b.finish()),
            Col::LargeBytes(mut b) => Arc::new(b.finish()),
            Col::Date(mut b) => Arc::new(b.finish()),
            Col::Time { values, unit, tz } => match unit {
                TimeUnit::Second => time::<TimestampSecondType>(values, tz),
                TimeUnit::Millisecond => time::<TimestampMillisecondType>(values, tz),
                TimeUnit::Microsecond => time::<TimestampMicrosecondType>(values, tz),
                TimeUnit::Nanosecond => time::<TimestampNanosecondType>(values, tz),
            },
        }
    }
}

/// Whether every data field of `row` is a column of `schema`; `strict` callers (a schema
/// inferred from the first page) refuse a row with one that is not.
fn check_fields<'a>(
    id: &str,
    keys: impl Iterator<Item = &'a String>,
    schema: &Schema,
) -> Result<()> {
    for k in keys {
        if schema.field_with_name(k).is_err() {
            return Err(Error::serialization(
                FORMAT,
                format!(
                    "record {}: field {} is not in the schema, which was inferred from the \
                     first page (pass schema= or columns=)",
                    py_str(id),
                    py_str(k)
                ),
            ));
        }
    }
    Ok(())
}

/// One RecordBatch of `rows` in `schema`. `strict`: a data field that is not a column is an
/// error (the schema was inferred, so the field appeared only after the sample); otherwise
/// such fields are left out (the caller picked the columns).
///
/// Errors (`Error::Serialization`): a value that does not fit its column's type, a null in a
/// column that is not nullable, or an Arrow type this module does not build, each naming the
/// record and the field.
pub fn rows_to_batch(rows: &[Row], schema: &SchemaRef, strict: bool) -> Result<RecordBatch> {
    if strict {
        for r in rows {
            check_fields(&r.id, r.data.keys(), schema)?;
        }
    }
    let data_id = rows.iter().any(|r| r.data.contains_key(ID_COLUMN));
    let mut arrays = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let record_ids = field.name() == ID_COLUMN && !data_id;
        let mut col = Col::new(field, record_ids, rows.len())?;
        for r in rows {
            let id_value;
            let value = if record_ids {
                id_value = Value::Str(r.id.clone());
                Some(&id_value)
            } else {
                r.data
                    .get(field.name())
                    .filter(|v| !matches!(v, Value::Null))
            };
            match value {
                Some(v) => col.push(v).map_err(|()| {
                    Error::serialization(
                        FORMAT,
                        format!(
                            "record {}, field {}: {} value {} does not fit {}",
                            py_str(&r.id),
                            py_str(field.name()),
                            py_type(v),
                            describe(v),
                            type_name(field.data_type())
                        ),
                    )
                })?,
                None if !field.is_nullable() => {
                    return Err(Error::serialization(
                        FORMAT,
                        format!(
                            "record {}, field {}: None value does not fit the column, which \
                             is not nullable",
                            py_str(&r.id),
                            py_str(field.name())
                        ),
                    ))
                }
                None => col.push_null(),
            }
        }
        arrays.push(col.finish());
    }
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(Arc::clone(schema), arrays, &options)
        .map_err(|e| Error::serialization(FORMAT, e))
}

/// Rows of stored text decoded as far as `schema` reads: its columns' fields only (the id
/// aside). `strict` refuses a data field the schema lacks, as [`rows_to_batch`] does.
pub fn decode_for_schema(rows: &[TextRow], schema: &Schema, strict: bool) -> Result<Vec<Row>> {
    let wanted: HashMap<&str, ()> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), ()))
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for t in rows {
        let name = |e: Error| {
            Error::data_format(
                "json",
                format!("record {:?} in {}: data: {}", t.id, t.source, detail(&e)),
            )
        };
        let mut found: Vec<(&str, &str)> = Vec::with_capacity(wanted.len());
        let mut extra: Option<String> = None;
        let mut first_is_tag = false;
        let n = codec::scan_object(&t.data, |k, raw| {
            if found.is_empty() && extra.is_none() {
                first_is_tag = codec::is_tag_key(k);
            }
            match wanted.get_key_value(k) {
                Some((k, ())) => found.push((k, raw)),
                None if extra.is_none() => extra = Some(k.to_string()),
                None => {}
            }
        })
        .map_err(name)?;
        let data = if n == 1 && first_is_tag {
            // A lone tag key is an escaped mapping (or an error): decode it whole.
            let full = codec::decode_map(&t.data).map_err(name)?;
            if strict {
                check_fields(&t.id, full.keys(), schema)?;
            }
            full.into_iter()
                .filter(|(k, _)| wanted.contains_key(k.as_str()))
                .collect()
        } else {
            if let (true, Some(k)) = (strict, &extra) {
                check_fields(&t.id, std::iter::once(k), schema)?;
            }
            let mut m = Map::with_capacity(found.len());
            for (k, raw) in found {
                m.insert(k.to_string(), codec::decode_raw(raw).map_err(name)?);
            }
            m
        };
        out.push(Row {
            id: t.id.clone(),
            data,
            metadata: Map::new(),
        });
    }
    Ok(out)
}

/// The UTC offset a timestamp column's zone names: `UTC`/`Z` or a fixed `+HH:MM` offset. A
/// named zone (`Europe/Paris`) needs a zone database this crate does not carry: its values
/// are read as the same instants at offset 0.
fn zone_offset(tz: &str) -> i32 {
    let t = tz.trim();
    if let Some(sign) = t.chars().next().filter(|c| *c == '+' || *c == '-') {
        let digits: String = t[1..].chars().filter(|c| c.is_ascii_digit()).collect();
        if digits.len() == 4 {
            let hours: i32 = digits[..2].parse().unwrap_or(0);
            let minutes: i32 = digits[2..].parse().unwrap_or(0);
            let secs = hours * 3600 + minutes * 60;
            return if sign == '-' { -secs } else { secs };
        }
    }
    0
}

fn timestamp_value(raw: i64, unit: &TimeUnit, tz: Option<&str>) -> Option<Value> {
    let utc = match unit {
        TimeUnit::Second => chrono::DateTime::from_timestamp(raw, 0),
        TimeUnit::Millisecond => chrono::DateTime::from_timestamp_millis(raw),
        TimeUnit::Microsecond => chrono::DateTime::from_timestamp_micros(raw),
        // The value model keeps microseconds, as Python's datetime does.
        TimeUnit::Nanosecond => chrono::DateTime::from_timestamp_micros(raw.div_euclid(1_000)),
    }?
    .naive_utc();
    let offset_seconds = tz.map(zone_offset);
    let naive = match offset_seconds {
        Some(off) => utc.checked_add_signed(chrono::TimeDelta::seconds(i64::from(off)))?,
        None => utc,
    };
    Some(Value::DateTime(crate::value::DateTimeValue {
        naive,
        offset_seconds,
    }))
}

/// The value at row `i` of `array`; `json`: the column holds tagged JSON text. `Err` carries
/// what went wrong, for the caller to name the record and field.
fn value_at(
    array: &dyn arrow_array::Array,
    i: usize,
    json: bool,
) -> std::result::Result<Value, String> {
    use arrow_array::cast::AsArray;
    use arrow_array::types as t;
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    let text = |s: &str| -> std::result::Result<Value, String> {
        if json {
            codec::decode_json(s).map_err(|e| detail(&e))
        } else {
            Ok(Value::Str(s.to_string()))
        }
    };
    let int = |v: i64| Ok(Value::Int(v));
    Ok(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => return int(array.as_primitive::<t::Int8Type>().value(i).into()),
        DataType::Int16 => return int(array.as_primitive::<t::Int16Type>().value(i).into()),
        DataType::Int32 => return int(array.as_primitive::<t::Int32Type>().value(i).into()),
        DataType::Int64 => return int(array.as_primitive::<t::Int64Type>().value(i)),
        DataType::UInt8 => return int(array.as_primitive::<t::UInt8Type>().value(i).into()),
        DataType::UInt16 => return int(array.as_primitive::<t::UInt16Type>().value(i).into()),
        DataType::UInt32 => return int(array.as_primitive::<t::UInt32Type>().value(i).into()),
        DataType::UInt64 => {
            let v = array.as_primitive::<t::UInt64Type>().value(i);
            return i64::try_from(v)
                .map(Value::Int)
                .map_err(|_| format!("{v} is beyond the 64-bit signed range"));
        }
        DataType::Float32 => Value::Float(array.as_primitive::<t::Float32Type>().value(i).into()),
        DataType::Float64 => Value::Float(array.as_primitive::<t::Float64Type>().value(i)),
        DataType::Utf8 => return text(array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => return text(array.as_string::<i64>().value(i)),
        DataType::Utf8View => return text(array.as_string_view().value(i)),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(i).to_vec()),
        DataType::LargeBinary => Value::Bytes(array.as_binary::<i64>().value(i).to_vec()),
        DataType::BinaryView => Value::Bytes(array.as_binary_view().value(i).to_vec()),
        DataType::FixedSizeBinary(_) => {
            Value::Bytes(array.as_fixed_size_binary().value(i).to_vec())
        }
        DataType::Date32 => {
            let days = array.as_primitive::<t::Date32Type>().value(i);
            chrono::NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS)
                .map(Value::Date)
                .ok_or_else(|| format!("day {days} is out of range"))?
        }
        DataType::Date64 => {
            let ms = array.as_primitive::<t::Date64Type>().value(i);
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|d| Value::Date(d.date_naive()))
                .ok_or_else(|| format!("{ms} ms is out of range"))?
        }
        DataType::Timestamp(unit, tz) => {
            let raw = match unit {
                TimeUnit::Second => array.as_primitive::<t::TimestampSecondType>().value(i),
                TimeUnit::Millisecond => {
                    array.as_primitive::<t::TimestampMillisecondType>().value(i)
                }
                TimeUnit::Microsecond => {
                    array.as_primitive::<t::TimestampMicrosecondType>().value(i)
                }
                TimeUnit::Nanosecond => array.as_primitive::<t::TimestampNanosecondType>().value(i),
            };
            timestamp_value(raw, unit, tz.as_deref())
                .ok_or_else(|| format!("timestamp {raw} is out of range"))?
        }
        DataType::Decimal128(_, _) => {
            Value::Decimal(array.as_primitive::<t::Decimal128Type>().value_as_string(i))
        }
        DataType::List(_) => list_value(array.as_list::<i32>().value(i).as_ref())?,
        DataType::LargeList(_) => list_value(array.as_list::<i64>().value(i).as_ref())?,
        DataType::FixedSizeList(_, _) => list_value(array.as_fixed_size_list().value(i).as_ref())?,
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut m = Map::with_capacity(fields.len());
            for (f, col) in fields.iter().zip(s.columns()) {
                m.insert(f.name().clone(), value_at(col.as_ref(), i, is_json(f))?);
            }
            Value::Map(m)
        }
        other => {
            return Err(format!(
                "Arrow type {} is not supported (cast it first, e.g. a dictionary column to \
                 its values)",
                type_name(other)
            ))
        }
    })
}

fn list_value(items: &dyn arrow_array::Array) -> std::result::Result<Value, String> {
    (0..items.len())
        .map(|j| value_at(items, j, false))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Value::List)
}

/// Rows of a RecordBatch, for writing: `id_column` (when the batch has it) gives each row's
/// id — a null one a new uuid4 — and every other column a data field (a null is a None
/// field; a tagged-JSON column its values back). The id column stays a data field as well
/// unless it is the record id column [`rows_to_batch`] writes (called `id`, string, not
/// nullable).
///
/// Errors (`Error::Serialization`) name the row (its id when it has one) and the column.
pub fn batch_to_rows(batch: &RecordBatch, id_column: &str) -> Result<Vec<Row>> {
    let schema = batch.schema();
    let id_index = schema.index_of(id_column).ok();
    let keep_id_field = id_index.is_some_and(|k| {
        let f = schema.field(k);
        id_column != ID_COLUMN || f.is_nullable() || f.data_type() != &DataType::Utf8
    });
    let n = batch.num_rows();
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let id = match id_index.map(|k| value_at(batch.column(k).as_ref(), i, false)) {
            Some(Ok(Value::Str(s))) => s,
            Some(Ok(Value::Int(v))) => v.to_string(),
            None | Some(Ok(Value::Null)) => uuid::Uuid::new_v4().to_string(),
            Some(Ok(other)) => {
                return Err(Error::serialization(
                    FORMAT,
                    format!(
                        "row {i}, column {}: a record id must be a str or an int, got {}",
                        py_str(id_column),
                        py_type(&other)
                    ),
                ))
            }
            Some(Err(why)) => {
                return Err(Error::serialization(
                    FORMAT,
                    format!("row {i}, column {}: {why}", py_str(id_column)),
                ))
            }
        };
        let mut data = Map::with_capacity(schema.fields().len());
        for (k, (field, col)) in schema.fields().iter().zip(batch.columns()).enumerate() {
            if Some(k) == id_index && !keep_id_field {
                continue;
            }
            let v = value_at(col.as_ref(), i, is_json(field)).map_err(|why| {
                Error::serialization(
                    FORMAT,
                    format!(
                        "record {}, field {}: {why}",
                        py_str(&id),
                        py_str(field.name())
                    ),
                )
            })?;
            data.insert(field.name().clone(), v);
        }
        rows.push(Row {
            id,
            data,
            metadata: Map::new(),
        });
    }
    Ok(rows)
}

/// The rows of each batch of an Arrow stream, converted ([`batch_to_rows`]) on a thread of
/// their own one batch ahead of the writer, so a write holds O(batch) rows however long the
/// stream is, and converting batch k+1 overlaps storing batch k. Empty batches are skipped.
/// The thread stops when the stream ends or fails, or when the receiver is dropped (the writer
/// gave up); a panic in it is an error, never a stream that ends early.
pub struct RowBatches {
    rx: tokio::sync::mpsc::Receiver<Result<Vec<Row>>>,
}

impl RowBatches {
    pub fn spawn<I>(batches: I, id_column: String) -> RowBatches
    where
        I: Iterator<Item = std::result::Result<RecordBatch, arrow_schema::ArrowError>>
            + Send
            + 'static,
    {
        // One batch waits in the channel while the next is built: at most three batches of
        // rows exist at once (being stored, waiting, being built).
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        std::thread::spawn(move || {
            let mut batches = batches;
            loop {
                let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    batches.next().map(|b| {
                        b.map_err(|e| Error::serialization(FORMAT, e))
                            .and_then(|b| batch_to_rows(&b, &id_column))
                    })
                }))
                .unwrap_or_else(|payload| {
                    Some(Err(Error::Other(format!(
                        "internal error in dataknobs_data native code reading an Arrow stream: {}",
                        crate::error::panic_message(payload.as_ref())
                    ))))
                });
                let item = match step {
                    None => break,
                    Some(Ok(rows)) if rows.is_empty() => continue,
                    Some(item) => item,
                };
                let failed = item.is_err();
                if tx.blocking_send(item).is_err() || failed {
                    break;
                }
            }
        });
        RowBatches { rx }
    }

    /// The next batch's rows (blocking: not from inside an async task).
    pub fn blocking_next(&mut self) -> Option<Result<Vec<Row>>> {
        self.rx.blocking_recv()
    }

    pub async fn next(&mut self) -> Option<Result<Vec<Row>>> {
        self.rx.recv().await
    }
}

/// What a write of an Arrow stream has stored so far. Each batch is one `create_batch` (all
/// or nothing, as the store's is); a failure at batch k leaves batches 0..k stored, stops
/// reading the stream, and raises [`ArrowWrite::failed`]'s error.
#[derive(Default)]
pub struct ArrowWrite {
    ids: Vec<String>,
    batches: usize,
}

impl ArrowWrite {
    /// A batch's rows and their ids (for the error, should storing them fail), or the error
    /// the stream's failure makes.
    pub fn take(&mut self, rows: Result<Vec<Row>>) -> Result<(Vec<Row>, Vec<String>)> {
        match rows {
            Ok(rows) => {
                let ids = rows.iter().map(|r| r.id.clone()).collect();
                Ok((rows, ids))
            }
            Err(e) => Err(self.failed(e, Vec::new())),
        }
    }

    /// What storing a batch with `ids` gave.
    pub fn stored(&mut self, outcome: Result<Vec<String>>, ids: Vec<String>) -> Result<()> {
        match outcome {
            Ok(stored) => {
                self.ids.extend(stored);
                self.batches += 1;
                Ok(())
            }
            Err(e) => Err(self.failed(e, ids)),
        }
    }

    pub fn ids(self) -> Vec<String> {
        self.ids
    }

    /// The cause itself when nothing was stored (so a bad value is still a
    /// `SerializationError`, a taken id a `DuplicateRecordError`), else `Partial` (the
    /// convention of a batch that stored part of itself): `written` the ids stored,
    /// `not_written` the failed batch's ids when its rows were built; the rest of the stream
    /// was not stored.
    fn failed(&mut self, cause: Error, batch_ids: Vec<String>) -> Error {
        let (mut written, not_written, cause) = match cause {
            // The batch itself stored part of its rows (S3, the search backend).
            Error::Partial {
                message,
                written,
                not_written,
                ..
            } => (written, not_written, message),
            other if self.ids.is_empty() => return other,
            other => (Vec::new(), batch_ids, detail(&other)),
        };
        let before = self.ids.len();
        let mut ids = std::mem::take(&mut self.ids);
        ids.append(&mut written);
        Error::Partial {
            operation: "write_arrow".to_string(),
            message: format!(
                "Arrow batch {} failed: {cause}; {before} records of the {} batches before it \
                 stored, the rest of the stream not stored (see .written and .not_written)",
                self.batches + 1,
                self.batches
            ),
            written: ids,
            not_written,
        }
    }
}

/// Every batch of `batches` stored with one `create` call each, in order; the ids.
pub fn write_batches(
    mut batches: RowBatches,
    mut create: impl FnMut(Vec<Row>) -> Result<Vec<String>>,
) -> Result<Vec<String>> {
    let mut done = ArrowWrite::default();
    while let Some(rows) = batches.blocking_next() {
        let (rows, ids) = done.take(rows)?;
        done.stored(create(rows), ids)?;
    }
    Ok(done.ids())
}

/// [`write_batches`] for an async store.
pub async fn write_batches_async<F, Fut>(
    mut batches: RowBatches,
    mut create: F,
) -> Result<Vec<String>>
where
    F: FnMut(Vec<Row>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>>>,
{
    let mut done = ArrowWrite::default();
    while let Some(rows) = batches.next().await {
        let (rows, ids) = done.take(rows)?;
        done.stored(create(rows).await, ids)?;
    }
    Ok(done.ids())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::DateTimeValue;
    use arrow_array::{Array, Date32Array, Float64Array, Int64Array, StringArray};

    fn row(id: &str, fields: Vec<(&str, Value)>) -> Row {
        Row {
            id: id.into(),
            data: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            metadata: Map::new(),
        }
    }

    fn dt(offset: Option<i32>) -> Value {
        Value::DateTime(DateTimeValue {
            naive: chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
                .unwrap()
                .and_hms_opt(10, 0, 0)
                .unwrap(),
            offset_seconds: offset,
        })
    }

    #[test]
    fn inference_follows_the_table() {
        let rows = vec![
            row(
                "a",
                vec![
                    ("b", Value::Bool(true)),
                    ("i", Value::Int(1)),
                    ("f", Value::Int(1)),
                    ("s", Value::Str("x".into())),
                    ("naive", dt(None)),
                    ("aware", dt(Some(3600))),
                    ("mixed", Value::Bool(true)),
                    ("dec", Value::Decimal("1.1".into())),
                    (
                        "d",
                        Value::Date(chrono::NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()),
                    ),
                ],
            ),
            row(
                "b",
                vec![
                    ("f", Value::Float(2.5)),
                    ("mixed", Value::Int(1)),
                    ("none", Value::Null),
                    ("i", Value::Null),
                ],
            ),
        ];
        let schema = infer_schema(&rows, None);
        let types: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{}:{}", f.name(), type_name(f.data_type())))
            .collect();
        assert_eq!(
            types,
            [
                "id:string",
                "b:bool",
                "i:int64",
                "f:double",
                "s:string",
                "naive:timestamp[us]",
                "aware:timestamp[us, tz=UTC]",
                "mixed:string",
                "dec:string",
                "d:date32[day]",
                "none:string"
            ]
        );
        assert!(is_json(schema.field_with_name("mixed").unwrap()));
        assert!(!schema.field(0).is_nullable());

        let batch = rows_to_batch(&rows, &schema, true).unwrap();
        let col = |n: &str| batch.column_by_name(n).unwrap().clone();
        let ids = col("id");
        let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((ids.value(0), ids.value(1)), ("a", "b"));
        let f = col("f");
        let f = f.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!((f.value(0), f.value(1)), (1.0, 2.5));
        let i = col("i");
        let i = i.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!((i.value(0), i.null_count()), (1, 1));
        let d = col("d");
        assert_eq!(
            d.as_any().downcast_ref::<Date32Array>().unwrap().value(0),
            1
        );
        let aware = col("aware");
        let aware = aware
            .as_any()
            .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
            .unwrap();
        // 10:00 at +01:00 is 09:00 UTC.
        assert_eq!(aware.value(0) % 86_400_000_000, 9 * 3_600_000_000);
        let mixed = col("mixed");
        let mixed = mixed.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((mixed.value(0), mixed.value(1)), ("true", "1"));
        let dec = col("dec");
        let dec = dec.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(dec.value(0), r#"{"$decimal":"1.1"}"#);
    }

    #[test]
    fn values_that_do_not_fit_name_the_record_and_field() {
        let first = vec![row("a", vec![("n", Value::Int(1))])];
        let schema = infer_schema(&first, None);
        let late = vec![row("b", vec![("late", Value::Str("x".into()))])];
        let err = rows_to_batch(&late, &schema, true).unwrap_err().to_string();
        assert!(
            err.contains("record 'b': field 'late' is not in the schema"),
            "{err}"
        );
        assert_eq!(rows_to_batch(&late, &schema, false).unwrap().num_rows(), 1);
        let wrong = vec![row("c", vec![("n", Value::Str("x".into()))])];
        let err = rows_to_batch(&wrong, &schema, true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("record 'c', field 'n': str value 'x' does not fit int64"),
            "{err}"
        );
        let naive_in_utc = Arc::new(Schema::new(vec![Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        )]));
        let err = rows_to_batch(&[row("d", vec![("t", dt(None))])], &naive_in_utc, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("record 'd', field 't': datetime value"),
            "{err}"
        );
        let odd = Arc::new(Schema::new(vec![Field::new("x", DataType::Int8, true)]));
        let err = rows_to_batch(&first, &odd, false).unwrap_err().to_string();
        assert!(err.contains("Arrow type Int8 is not supported"), "{err}");
    }

    #[test]
    fn batches_read_back_as_rows() {
        let rows = vec![
            row(
                "a",
                vec![
                    ("n", Value::Int(1)),
                    ("t", dt(Some(3600))),
                    ("j", Value::Decimal("2.5".into())),
                ],
            ),
            row(
                "b",
                vec![
                    ("n", Value::Null),
                    ("t", dt(Some(3600))),
                    ("j", Value::List(vec![Value::Int(1)])),
                ],
            ),
        ];
        let schema = infer_schema(&rows, None);
        let batch = rows_to_batch(&rows, &schema, true).unwrap();
        let back = batch_to_rows(&batch, ID_COLUMN).unwrap();
        assert_eq!(back[0].id, "a");
        assert_eq!(back[0].data["n"], Value::Int(1));
        assert_eq!(back[1].data["n"], Value::Null);
        assert_eq!(back[1].data["j"], rows[1].data["j"]);
        assert_eq!(back[0].data["j"], Value::Decimal("2.5".into()));
        // The same instant, read back at offset 0 (the column's zone is UTC).
        let Value::DateTime(t) = &back[0].data["t"] else {
            panic!()
        };
        assert_eq!(
            (t.offset_seconds, t.naive.time().to_string()),
            (Some(0), "09:00:00".into())
        );
        let no_ids = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let batch = rows_to_batch(&rows, &no_ids, false).unwrap();
        let back = batch_to_rows(&batch, ID_COLUMN).unwrap();
        assert_eq!(back[0].id.len(), 36);
        assert_ne!(back[0].id, back[1].id);
    }

    #[test]
    fn a_data_id_field_is_the_id_column() {
        let rows = vec![row("k", vec![("id", Value::Int(7))])];
        let schema = infer_schema(&rows, None);
        assert_eq!(schema.fields().len(), 1);
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        let batch = rows_to_batch(&rows, &schema, true).unwrap();
        assert_eq!(batch.num_rows(), 1);
        let picked = infer_schema(&[row("k", vec![])], Some(&["id".to_string()]));
        assert!(!picked.field(0).is_nullable());
    }

    fn id_batch(ids: &[&str]) -> std::result::Result<RecordBatch, arrow_schema::ArrowError> {
        let schema = Arc::new(Schema::new(vec![record_id_field()]));
        let ids: arrow_array::ArrayRef = Arc::new(StringArray::from(ids.to_vec()));
        RecordBatch::try_new(schema, vec![ids])
    }

    #[test]
    fn a_stream_is_written_batch_by_batch_until_one_fails() {
        let written = std::sync::Mutex::new(Vec::new());
        let create = |rows: Vec<Row>| -> Result<Vec<String>> {
            let ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
            if ids.iter().any(|i| i == "taken") {
                return Err(Error::Duplicate("taken".into()));
            }
            written.lock().unwrap().push(ids.clone());
            Ok(ids)
        };
        // An empty batch is no call; the stream's own failure stops the write after batch 1.
        let stream = vec![
            id_batch(&["a", "b"]),
            id_batch(&[]),
            Err(arrow_schema::ArrowError::ComputeError(
                "producer broke".into(),
            )),
            id_batch(&["never"]),
        ];
        let err =
            write_batches(RowBatches::spawn(stream.into_iter(), "id".into()), create).unwrap_err();
        let Error::Partial {
            operation,
            message,
            written: w,
            not_written,
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(
            (operation.as_str(), w, not_written),
            (
                "write_arrow",
                vec!["a".to_string(), "b".to_string()],
                vec![]
            )
        );
        assert!(message.starts_with("Arrow batch 2 failed: "), "{message}");
        assert!(
            message.contains("producer broke") && message.contains("2 records of the 1 batches"),
            "{message}"
        );
        assert_eq!(written.lock().unwrap().len(), 1);
        // A first batch that fails is the cause itself: nothing was stored.
        let stream = vec![id_batch(&["taken"]), id_batch(&["c"])];
        let err =
            write_batches(RowBatches::spawn(stream.into_iter(), "id".into()), create).unwrap_err();
        assert_eq!(err, Error::Duplicate("taken".into()));
        let stream = vec![id_batch(&["c"]), id_batch(&["d", "taken"])];
        let err =
            write_batches(RowBatches::spawn(stream.into_iter(), "id".into()), create).unwrap_err();
        assert!(
            matches!(&err, Error::Partial { written, not_written, .. }
            if written == &["c"] && not_written == &["d", "taken"]),
            "{err:?}"
        );
    }

    #[test]
    fn stored_text_decodes_only_the_schema_fields() {
        let text = |id: &str, data: &str| TextRow {
            id: id.into(),
            data: data.into(),
            metadata: "{}".into(),
            source: "test".into(),
        };
        let schema = Schema::new(vec![
            record_id_field(),
            Field::new("n", DataType::Int64, true),
        ]);
        let rows =
            decode_for_schema(&[text("a", r#"{"n":1,"skip":[1,2]}"#)], &schema, false).unwrap();
        assert_eq!(rows[0].data.len(), 1);
        let err = decode_for_schema(&[text("a", r#"{"n":1,"skip":2}"#)], &schema, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("field 'skip' is not in the schema"), "{err}");
        let err = decode_for_schema(&[text("a", r#"{"n":"#)], &schema, false).unwrap_err();
        assert!(err.to_string().contains("record \"a\" in test"), "{err}");
    }
}
