//! Tagged JSON (docs/internals.md §3): plain JSON for the JSON types, one-key tag objects for
//! the rest, and a `$map` escape so a user dict that looks like a tag reads back as a dict.

use base64::Engine as _;
use serde_json::Value as J;

use crate::error::{Error, Result};
use crate::iso;
use crate::value::{Map, Value};

const TAGS: [&str; 6] = ["$datetime", "$date", "$decimal", "$bytes", "$float", "$map"];

fn tagged(tag: &str, text: String) -> J {
    let mut obj = serde_json::Map::with_capacity(1);
    obj.insert(tag.to_string(), J::String(text));
    J::Object(obj)
}

/// The tagged JSON tree of a value.
pub fn to_json(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => J::Number(n),
            None => {
                let text = if f.is_nan() {
                    "nan"
                } else if *f > 0.0 {
                    "inf"
                } else {
                    "-inf"
                };
                tagged("$float", text.to_string())
            }
        },
        Value::Str(s) => J::String(s.clone()),
        Value::Bytes(b) => tagged(
            "$bytes",
            base64::engine::general_purpose::STANDARD.encode(b),
        ),
        Value::DateTime(dt) => tagged("$datetime", iso::format_datetime(dt)),
        Value::Date(d) => tagged("$date", iso::format_date(*d)),
        Value::Decimal(s) => tagged("$decimal", s.clone()),
        Value::List(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(m) => map_to_json(m),
    }
}

fn map_to_json(m: &Map) -> J {
    let mut obj = serde_json::Map::with_capacity(m.len());
    for (k, v) in m {
        obj.insert(k.clone(), to_json(v));
    }
    let looks_tagged = m.len() == 1 && m.keys().all(|k| TAGS.contains(&k.as_str()));
    if looks_tagged {
        let mut outer = serde_json::Map::with_capacity(1);
        outer.insert("$map".to_string(), J::Object(obj));
        J::Object(outer)
    } else {
        J::Object(obj)
    }
}

/// The tagged JSON text of a value.
pub fn encode_json(v: &Value) -> String {
    to_json(v).to_string()
}

/// The tagged JSON text of a whole mapping (a record's data or metadata).
pub fn encode_map(m: &Map) -> String {
    map_to_json(m).to_string()
}

fn bad(message: impl std::fmt::Display) -> Error {
    Error::data_format("json", message)
}

fn tag_text<'a>(tag: &str, j: &'a J) -> Result<&'a str> {
    j.as_str()
        .ok_or_else(|| bad(format!("{tag} expects a string, got {j}")))
}

/// Decodes a tagged JSON tree.
pub fn from_json(j: J) -> Result<Value> {
    Ok(match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if n.is_u64() {
                return Err(bad(format!("integer {n} does not fit in 64 bits")));
            } else {
                Value::Float(
                    n.as_f64()
                        .ok_or_else(|| bad(format!("unreadable number {n}")))?,
                )
            }
        }
        J::String(s) => Value::Str(s),
        J::Array(items) => Value::List(
            items
                .into_iter()
                .map(from_json)
                .collect::<Result<Vec<_>>>()?,
        ),
        J::Object(obj) => {
            let is_tag = obj.len() == 1 && obj.keys().all(|k| TAGS.contains(&k.as_str()));
            let mut it = obj.into_iter();
            if is_tag {
                if let Some((k, v)) = it.next() {
                    return decode_tag(&k, v);
                }
            }
            Value::Map(object_to_map(it)?)
        }
    })
}

fn object_to_map(it: impl Iterator<Item = (String, J)>) -> Result<Map> {
    let mut m = Map::with_capacity(it.size_hint().0);
    for (k, v) in it {
        m.insert(k, from_json(v)?);
    }
    Ok(m)
}

fn decode_tag(tag: &str, v: J) -> Result<Value> {
    Ok(match tag {
        "$map" => match v {
            J::Object(inner) => Value::Map(object_to_map(inner.into_iter())?),
            other => return Err(bad(format!("$map expects an object, got {other}"))),
        },
        "$datetime" => {
            let s = tag_text(tag, &v)?;
            Value::DateTime(
                iso::parse_datetime(s).ok_or_else(|| bad(format!("invalid $datetime {s:?}")))?,
            )
        }
        "$date" => {
            let s = tag_text(tag, &v)?;
            Value::Date(iso::parse_date(s).ok_or_else(|| bad(format!("invalid $date {s:?}")))?)
        }
        "$decimal" => {
            let s = tag_text(tag, &v)?;
            if crate::num::parse_decimal(s).is_none() {
                return Err(bad(format!("invalid $decimal {s:?}")));
            }
            Value::Decimal(s.to_string())
        }
        "$bytes" => {
            let s = tag_text(tag, &v)?;
            Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| bad(format!("invalid $bytes: {e}")))?,
            )
        }
        "$float" => {
            let s = tag_text(tag, &v)?;
            Value::Float(match s {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => return Err(bad(format!("invalid $float {s:?}"))),
            })
        }
        _ => return Err(bad(format!("unknown tag {tag}"))),
    })
}

/// Decodes tagged JSON text.
pub fn decode_json(s: &str) -> Result<Value> {
    let j: J = serde_json::from_str(s).map_err(|e| bad(e.to_string()))?;
    from_json(j)
}

/// Decodes tagged JSON text that must be an object (a record's data or metadata).
pub fn decode_map(s: &str) -> Result<Map> {
    match decode_json(s)? {
        Value::Map(m) => Ok(m),
        other => Err(bad(format!(
            "expected an object, got {}",
            encode_json(&other)
        ))),
    }
}

/// Decodes a tagged JSON tree that must be an object.
pub fn map_from_json(j: J) -> Result<Map> {
    match j {
        J::Object(obj) => {
            // A top-level tag object is a value, not a mapping.
            match from_json(J::Object(obj))? {
                Value::Map(m) => Ok(m),
                other => Err(bad(format!(
                    "expected an object, got {}",
                    encode_json(&other)
                ))),
            }
        }
        other => Err(bad(format!("expected an object, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::DateTimeValue;
    use chrono::NaiveDate;

    fn rt(v: Value) {
        let text = encode_json(&v);
        let back = decode_json(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        match (&v, &back) {
            (Value::Float(a), Value::Float(b)) if a.is_nan() => assert!(b.is_nan()),
            _ => assert_eq!(v, back, "{text}"),
        }
    }

    fn naive(h: u32, us: u32) -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 5, 1)
            .and_then(|d| d.and_hms_micro_opt(h, 0, 0, us))
            .unwrap()
    }

    #[test]
    fn round_trips_every_variant() {
        rt(Value::Null);
        rt(Value::Bool(true));
        rt(Value::Bool(false));
        rt(Value::Int(0));
        rt(Value::Int(i64::MAX));
        rt(Value::Int(i64::MIN));
        rt(Value::Float(1.0));
        rt(Value::Float(-0.1));
        rt(Value::Float(1e300));
        rt(Value::Float(5e-324));
        rt(Value::Float(f64::NAN));
        rt(Value::Float(f64::INFINITY));
        rt(Value::Float(f64::NEG_INFINITY));
        rt(Value::Str(String::new()));
        rt(Value::Str("héllo \"x\"\n".into()));
        rt(Value::Bytes(vec![]));
        rt(Value::Bytes(vec![0, 1, 255, 128]));
        rt(Value::Date(NaiveDate::from_ymd_opt(2024, 5, 1).unwrap()));
        rt(Value::Decimal("1.10".into()));
        rt(Value::Decimal("-1E+3".into()));
        rt(Value::Decimal("NaN".into()));
        for off in [None, Some(0), Some(19800), Some(-3600), Some(-3601)] {
            for us in [0, 1, 500_000] {
                rt(Value::DateTime(DateTimeValue {
                    naive: naive(10, us),
                    offset_seconds: off,
                }));
            }
        }
        rt(Value::List(vec![
            Value::Int(1),
            Value::Str("a".into()),
            Value::List(vec![]),
        ]));
        let mut m = Map::new();
        m.insert("b".into(), Value::Int(1));
        m.insert("a".into(), Value::Bytes(vec![1]));
        rt(Value::Map(m));
        rt(Value::Map(Map::new()));
    }

    #[test]
    fn escapes_tag_like_dicts() {
        for tag in TAGS {
            let mut m = Map::new();
            m.insert(tag.to_string(), Value::Str("x".into()));
            let text = encode_json(&Value::Map(m.clone()));
            assert!(text.starts_with("{\"$map\":"), "{text}");
            rt(Value::Map(m.clone()));
            // Nested inside another escape.
            let mut outer = Map::new();
            outer.insert("$map".into(), Value::Map(m));
            rt(Value::Map(outer));
        }
        // Two keys never look like a tag.
        let mut m = Map::new();
        m.insert("$date".into(), Value::Str("x".into()));
        m.insert("y".into(), Value::Int(1));
        assert!(!encode_json(&Value::Map(m.clone())).contains("$map"));
        rt(Value::Map(m));
    }

    #[test]
    fn exact_text() {
        let dt = Value::DateTime(DateTimeValue {
            naive: naive(10, 0),
            offset_seconds: Some(0),
        });
        assert_eq!(
            encode_json(&dt),
            r#"{"$datetime":"2024-05-01T10:00:00+00:00"}"#
        );
        assert_eq!(encode_json(&Value::Float(1.0)), "1.0");
        assert_eq!(encode_json(&Value::Float(f64::NAN)), r#"{"$float":"nan"}"#);
        assert_eq!(
            encode_json(&Value::Bytes(b"hi".to_vec())),
            r#"{"$bytes":"aGk="}"#
        );
        let mut m = Map::new();
        m.insert("z".into(), Value::Int(1));
        m.insert("a".into(), Value::Int(2));
        assert_eq!(encode_map(&m), r#"{"z":1,"a":2}"#);
        assert_eq!(decode_map(r#"{"z":1,"a":2}"#), Ok(m));
    }

    #[test]
    fn decode_errors() {
        for s in [
            "{",
            r#"{"$date":"2024-13-01"}"#,
            r#"{"$date":5}"#,
            r#"{"$datetime":"nope"}"#,
            r#"{"$bytes":"!!"}"#,
            r#"{"$float":"NaN"}"#,
            r#"{"$decimal":"abc"}"#,
            r#"{"$map":[1]}"#,
            "18446744073709551615",
        ] {
            assert!(
                matches!(decode_json(s), Err(Error::DataFormat { .. })),
                "{s}"
            );
        }
        assert!(decode_map("[1]").is_err());
        assert!(decode_map(r#"{"$date":"2024-01-01"}"#).is_err());
        assert_eq!(decode_json("1.5"), Ok(Value::Float(1.5)));
        assert_eq!(decode_json("-7"), Ok(Value::Int(-7)));
    }
}
