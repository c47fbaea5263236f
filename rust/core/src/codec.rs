//! Tagged JSON (docs/internals.md §3): plain JSON for the JSON types, one-key tag objects for
//! the rest, and a `$map` escape so a user dict that looks like a tag reads back as a dict.

use base64::Engine as _;
use serde_json::Value as J;

use crate::error::{detail, Error, Result};
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
    let mut out = String::new();
    push_value(&mut out, v);
    out
}

/// The tagged JSON text of a whole mapping (a record's data or metadata).
pub fn encode_map(m: &Map) -> String {
    let mut out = String::with_capacity(64 + 24 * m.len());
    push_map(&mut out, m);
    out
}

// ---------------------------------------------------------------------------------------------
// Direct writer. Building a `serde_json::Value` tree first costs an allocation per node and
// per key; writing text straight into one buffer gives the same bytes (the tests compare it
// with `to_json(v).to_string()`) several times faster.

/// Whether a one-key object with this key reads back as a tagged value, so a user dict shaped
/// like that must be written inside `{"$map": ...}`.
pub fn is_tag_key(k: &str) -> bool {
    tag_name(k).is_some()
}

/// The tag `k` names, if it is one of the tag keys.
pub fn tag_name(k: &str) -> Option<&'static str> {
    if !k.starts_with('$') {
        return None;
    }
    TAGS.iter().copied().find(|t| *t == k)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal, escaped exactly as serde_json does.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte that needs escaping is ASCII, so these slice bounds are char boundaries.
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends an integer as JSON.
pub fn push_int(out: &mut String, i: i64) {
    use std::fmt::Write as _;
    // Writing into a String cannot fail.
    let _ = write!(out, "{i}");
}

/// Appends a float as tagged JSON: shortest round-trip text (as serde_json writes it) when
/// finite, else a `$float` tag.
pub fn push_float(out: &mut String, f: f64) {
    use std::fmt::Write as _;
    match serde_json::Number::from_f64(f) {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => {
            let text = if f.is_nan() {
                "nan"
            } else if f > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            push_tagged(out, "$float", text);
        }
    }
}

/// Appends `{"<tag>":"<text>"}`.
pub fn push_tagged(out: &mut String, tag: &str, text: &str) {
    out.push_str("{\"");
    out.push_str(tag);
    out.push_str("\":");
    push_json_str(out, text);
    out.push('}');
}

/// Appends `{"$bytes":"<base64>"}`.
pub fn push_bytes(out: &mut String, b: &[u8]) {
    push_tagged(
        out,
        "$bytes",
        &base64::engine::general_purpose::STANDARD.encode(b),
    );
}

/// Appends the tagged JSON text of a value.
pub fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(i) => push_int(out, *i),
        Value::Float(f) => push_float(out, *f),
        Value::Str(s) => push_json_str(out, s),
        Value::Bytes(b) => push_bytes(out, b),
        Value::DateTime(dt) => push_tagged(out, "$datetime", &iso::format_datetime(dt)),
        Value::Date(d) => push_tagged(out, "$date", &iso::format_date(*d)),
        Value::Decimal(s) => push_tagged(out, "$decimal", s),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push(']');
        }
        Value::Map(m) => push_map(out, m),
    }
}

/// Appends the tagged JSON text of a mapping (with the `$map` escape when it looks tagged).
pub fn push_map(out: &mut String, m: &Map) {
    let looks_tagged = m.len() == 1 && m.keys().all(|k| is_tag_key(k));
    if looks_tagged {
        out.push_str("{\"$map\":");
    }
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, k);
        out.push(':');
        push_value(out, v);
    }
    out.push('}');
    if looks_tagged {
        out.push('}');
    }
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

/// The value of a one-key tag object `{tag: v}` (`tag` one of the tag keys).
pub fn decode_tag(tag: &str, v: J) -> Result<Value> {
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

// ---------------------------------------------------------------------------------------------
// Top-level field scan. A query usually reads one or two fields of a record; finding their raw
// text and decoding only those skips building every other value of rows the filter rejects.

fn scan_err(message: &str) -> Error {
    bad(format!("malformed JSON object: {message}"))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// `i` is just past an opening quote; returns the index just past the closing one and whether
/// the literal has escapes.
fn skip_str(b: &[u8], mut i: usize) -> Result<(usize, bool)> {
    let mut escaped = false;
    while i < b.len() {
        match b[i] {
            b'"' => return Ok((i + 1, escaped)),
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    Err(scan_err("unterminated string"))
}

/// Returns the index just past the value starting at `i`. Only the nesting is checked here;
/// the values a caller decodes go through serde_json, which checks everything.
fn skip_value(b: &[u8], i: usize) -> Result<usize> {
    match b.get(i) {
        Some(b'"') => Ok(skip_str(b, i + 1)?.0),
        Some(b'{' | b'[') => {
            let mut depth = 1usize;
            let mut j = i + 1;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_str(b, j + 1)?.0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err(scan_err("unterminated object or array"))
        }
        Some(_) => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            if j == i {
                Err(scan_err("missing value"))
            } else {
                Ok(j)
            }
        }
        None => Err(scan_err("missing value")),
    }
}

fn slice(text: &str, a: usize, b: usize) -> Result<&str> {
    text.get(a..b)
        .ok_or_else(|| scan_err("bad character boundary"))
}

/// Calls `each(key, raw_value_text)` for every top-level member of the JSON object `text`, in
/// order (a repeated key is reported each time; decoding keeps the last, like `decode_map`).
/// Returns the number of members.
pub fn scan_object<'a>(text: &'a str, mut each: impl FnMut(&str, &'a str)) -> Result<usize> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(bad("expected an object"));
    }
    i = skip_ws(b, i + 1);
    let mut n = 0;
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return Err(scan_err("expected a key"));
            }
            let (end, escaped) = skip_str(b, i + 1)?;
            let unescaped;
            let key = if escaped {
                unescaped = serde_json::from_str::<String>(slice(text, i, end)?)
                    .map_err(|e| bad(e.to_string()))?;
                unescaped.as_str()
            } else {
                slice(text, i + 1, end - 1)?
            };
            i = skip_ws(b, end);
            if b.get(i) != Some(&b':') {
                return Err(scan_err("expected ':'"));
            }
            let start = skip_ws(b, i + 1);
            let stop = skip_value(b, start)?;
            each(key, slice(text, start, stop)?);
            n += 1;
            i = skip_ws(b, stop);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Err(scan_err("expected ',' or '}'")),
            }
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err(scan_err("trailing characters"));
    }
    Ok(n)
}

/// Decodes the raw text of one value found by [`scan_object`].
pub fn decode_raw(raw: &str) -> Result<Value> {
    // Most fields a query reads are plain strings: take them without a JSON parse when they
    // need no unescaping and hold no control character (which JSON forbids unescaped).
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        if !inner.bytes().any(|c| c == b'\\' || c == b'"' || c < 0x20) {
            return Ok(Value::Str(inner.to_string()));
        }
    }
    decode_json(raw)
}

/// Decodes tagged JSON text.
pub fn decode_json(s: &str) -> Result<Value> {
    serde_json::from_str::<Tagged>(s)
        .map(|t| t.0)
        .map_err(|e| match e.classify() {
            // Our own message (a bad tag or integer): the position adds nothing to it.
            serde_json::error::Category::Data => {
                let text = e.to_string();
                let cut = text.rfind(" at line ").unwrap_or(text.len());
                bad(&text[..cut])
            }
            _ => bad(e.to_string()),
        })
}

/// Tagged JSON read straight into a [`Value`]. Going through a `serde_json::Value` first
/// built every object twice (serde_json's own ordered map, then ours), which was most of the
/// cost of reading rows back.
struct Tagged(Value);

impl<'de> serde::Deserialize<'de> for Tagged {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(TaggedVisitor).map(Tagged)
    }
}

struct TaggedVisitor;

impl<'de> serde::de::Visitor<'de> for TaggedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tagged JSON")
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> std::result::Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> std::result::Result<Value, E> {
        i64::try_from(u)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {u} does not fit in 64 bits")))
    }

    fn visit_f64<E>(self, f: f64) -> std::result::Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E>(self, s: &str) -> std::result::Result<Value, E> {
        Ok(Value::Str(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> std::result::Result<Value, E> {
        Ok(Value::Str(s))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Tagged(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Value, A::Error> {
        use serde::de::Error as _;
        let Some(first) = map.next_key::<String>()? else {
            return Ok(Value::Map(Map::new()));
        };
        let mut m = Map::with_capacity(map.size_hint().unwrap_or(8));
        if TAGS.contains(&first.as_str()) {
            // A tag only if it is the object's one key: read its value as plain JSON.
            let raw: J = map.next_value()?;
            match map.next_key::<String>()? {
                None => return decode_tag(&first, raw).map_err(|e| A::Error::custom(detail(&e))),
                Some(second) => {
                    m.insert(
                        first,
                        from_json(raw).map_err(|e| A::Error::custom(detail(&e)))?,
                    );
                    let Tagged(v) = map.next_value()?;
                    m.insert(second, v);
                }
            }
        } else {
            let Tagged(v) = map.next_value()?;
            m.insert(first, v);
        }
        while let Some((k, Tagged(v))) = map.next_entry::<String, Tagged>()? {
            m.insert(k, v);
        }
        Ok(Value::Map(m))
    }
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

    /// The direct writer gives exactly the bytes of the serde_json tree it replaced.
    #[test]
    fn writer_matches_serde_json() {
        let mut vals = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::Float(0.1),
            Value::Float(-0.0),
            Value::Float(1e300),
            Value::Float(5e-324),
            Value::Float(123456789.0),
            Value::Float(1e16),
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::Decimal("1.10".into()),
            Value::Bytes(vec![0, 255]),
            Value::Date(NaiveDate::from_ymd_opt(2024, 5, 1).unwrap()),
            Value::DateTime(DateTimeValue {
                naive: naive(10, 5),
                offset_seconds: Some(-3601),
            }),
        ];
        let all: String = (0u32..0x80)
            .filter_map(char::from_u32)
            .chain("é€😀\u{7f}\u{2028}".chars())
            .collect();
        vals.push(Value::Str(all.clone()));
        vals.push(Value::Str(String::new()));
        for tag in TAGS.iter().chain(&["$other", "x"]) {
            let mut m = Map::new();
            m.insert(tag.to_string(), Value::Str("x".into()));
            vals.push(Value::Map(m.clone()));
            m.insert(all.clone(), Value::List(vals.clone()));
            vals.push(Value::Map(m));
        }
        vals.push(Value::List(vals.clone()));
        for v in &vals {
            assert_eq!(encode_json(v), to_json(v).to_string(), "{v:?}");
            if let Value::Map(m) = v {
                assert_eq!(encode_map(m), map_to_json(m).to_string());
            }
        }
    }

    #[test]
    fn scan_object_finds_raw_members() {
        let text = r#" { "a" : 1 , "b\"c":{"x":[1,"]}"]}, "s":"q\"}" ,"e":[] ,"a":"z"} "#;
        let mut seen = Vec::new();
        let n = scan_object(text, |k, raw| seen.push((k.to_string(), raw.to_string()))).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            seen,
            vec![
                ("a".to_string(), "1".to_string()),
                ("b\"c".to_string(), r#"{"x":[1,"]}"]}"#.to_string()),
                ("s".to_string(), r#""q\"}""#.to_string()),
                ("e".to_string(), "[]".to_string()),
                ("a".to_string(), r#""z""#.to_string()),
            ]
        );
        assert_eq!(scan_object("{}", |_, _| {}).unwrap(), 0);
        for bad in [
            "",
            "[]",
            "{",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1"#,
            r#"{"a":"x}"#,
            r#"{"a":1}x"#,
            r#"{"a":1,}"#,
            r#"{"a":[1}"#,
            r#"{a:1}"#,
        ] {
            assert!(scan_object(bad, |_, _| {}).is_err(), "{bad}");
        }
        assert_eq!(decode_raw(r#""plain""#), Ok(Value::Str("plain".into())));
        assert_eq!(decode_raw(r#""a\nb""#), Ok(Value::Str("a\nb".into())));
        assert_eq!(decode_raw(r#""\u0000""#), Ok(Value::Str("\0".into())));
        assert_eq!(
            decode_raw(r#"{"$decimal":"1.5"}"#),
            Ok(Value::Decimal("1.5".into()))
        );
        assert!(decode_raw(r#""a"#).is_err());
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
