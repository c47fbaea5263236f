//! Tagged JSON (docs/internals.md §3): plain JSON for the JSON types, one-key tag objects for
//! the rest, and a `$map` escape so a user dict that looks like a tag reads back as a dict.

use base64::Engine as _;
use serde_json::Value as J;

use crate::error::{detail, Error, Result};
use crate::iso;
use crate::value::{exceeds_depth, too_deep_message, Map, Value, MAX_DEPTH};

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

/// Calls `each(raw_value_text)` for every item of the JSON array `text`, in order, without
/// recursing (as [`scan_object`]). Returns the number of items.
pub fn scan_array<'a>(text: &'a str, mut each: impl FnMut(&'a str)) -> Result<usize> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return Err(bad("expected an array"));
    }
    i = skip_ws(b, i + 1);
    let mut n = 0;
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            let stop = skip_value(b, i)?;
            each(slice(text, i, stop)?);
            n += 1;
            i = skip_ws(b, stop);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b']') => {
                    i += 1;
                    break;
                }
                _ => return Err(scan_err("expected ',' or ']'")),
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

/// Decodes tagged JSON text: one value, at depth 0 (see [`MAX_DEPTH`]).
pub fn decode_json(s: &str) -> Result<Value> {
    read_text(s, TaggedSeed { level: 1 })
}

/// Runs `seed` over `text` as its whole content. serde_json's own recursion limit (128 levels)
/// is off: it would refuse text that values within [`MAX_DEPTH`] encode to (each level may
/// take two, with a `$map` escape). The seeds here count levels themselves and stop before
/// the native stack is at risk.
pub fn read_text<'de, S: serde::de::DeserializeSeed<'de>>(
    text: &'de str,
    seed: S,
) -> Result<S::Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    seed.deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| match e.classify() {
            // Our own message (a bad tag or integer, too deep): the position adds nothing.
            serde_json::error::Category::Data => {
                let text = e.to_string();
                let cut = text.rfind(" at line ").unwrap_or(text.len());
                bad(&text[..cut])
            }
            _ => bad(e.to_string()),
        })
}

/// Plain JSON text as a tree, refusing nesting deeper than values within [`MAX_DEPTH`] can
/// need inside `levels` enclosing ones (a file's array and record objects).
pub fn parse_json(text: &str, levels: usize) -> Result<J> {
    read_text(text, RawSeed::for_depth(0).with_extra(levels))
}

/// JSON nesting that a value at `depth` and everything within [`MAX_DEPTH`] inside it can
/// take: two levels per value level (a `$map` escape around each map) and one for a leaf tag.
fn json_levels_from(depth: usize) -> usize {
    2 * (MAX_DEPTH + 1).saturating_sub(depth) + 1
}

/// Reads plain JSON into a tree (tag values and `$map` contents), with a bound on nesting in
/// place of serde_json's.
pub struct RawSeed {
    remaining: usize,
}

impl RawSeed {
    /// For the tag value of a value at `depth`.
    pub fn for_depth(depth: usize) -> RawSeed {
        RawSeed {
            remaining: json_levels_from(depth),
        }
    }

    fn with_extra(self, levels: usize) -> RawSeed {
        RawSeed {
            remaining: self.remaining + levels,
        }
    }

    fn child<E: serde::de::Error>(&self) -> std::result::Result<RawSeed, E> {
        match self.remaining.checked_sub(1) {
            Some(remaining) => Ok(RawSeed { remaining }),
            None => Err(E::custom(too_deep_message())),
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for RawSeed {
    type Value = J;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<J, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RawSeed {
    type Value = J;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_unit<E>(self) -> std::result::Result<J, E> {
        Ok(J::Null)
    }

    fn visit_bool<E>(self, b: bool) -> std::result::Result<J, E> {
        Ok(J::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> std::result::Result<J, E> {
        Ok(J::from(i))
    }

    fn visit_u64<E>(self, u: u64) -> std::result::Result<J, E> {
        Ok(J::from(u))
    }

    fn visit_f64<E>(self, f: f64) -> std::result::Result<J, E> {
        Ok(serde_json::Number::from_f64(f).map_or(J::Null, J::Number))
    }

    fn visit_str<E>(self, s: &str) -> std::result::Result<J, E> {
        Ok(J::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> std::result::Result<J, E> {
        Ok(J::String(s))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<J, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self.child()?)? {
            items.push(v);
        }
        Ok(J::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<J, A::Error> {
        let mut obj = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(self.child()?)?;
            obj.insert(k, v);
        }
        Ok(J::Object(obj))
    }
}

/// The value a one-key tag object `{tag: raw}` at `level` (a value's depth plus one; 0 is a
/// record's own map) stands for, or, when the object has more keys (`tag_only` false), what
/// `raw` reads as for its member `tag`; with the depth of what it holds checked, since `raw`
/// was read as plain JSON.
pub fn decode_tagged_member(tag: &str, raw: J, tag_only: bool, level: usize) -> Result<Value> {
    let (value, at) = if tag_only {
        (decode_tag(tag, raw)?, level.saturating_sub(1))
    } else {
        (from_json(raw)?, level)
    };
    if exceeds_depth(&value, at) {
        return Err(bad(too_deep_message()));
    }
    Ok(value)
}

/// Reads one tagged JSON value straight into a [`Value`]. Going through a
/// `serde_json::Value` first built every object twice (serde_json's own ordered map, then
/// ours), which was most of the cost of reading rows back.
#[derive(Clone, Copy)]
struct TaggedSeed {
    /// The value's depth plus one: a record's data or metadata map is read at level 0, so its
    /// fields are at depth 0 as the writer counts them.
    level: usize,
}

impl TaggedSeed {
    fn child(self) -> TaggedSeed {
        TaggedSeed {
            level: self.level + 1,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for TaggedSeed {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Value, D::Error> {
        if self.level > MAX_DEPTH + 1 {
            use serde::de::Error as _;
            return Err(D::Error::custom(too_deep_message()));
        }
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TaggedSeed {
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
        while let Some(v) = seq.next_element_seed(self.child())? {
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
        if let Some(tag) = tag_name(&first) {
            // A tag only if it is the object's one key: read its value as plain JSON.
            let raw = map.next_value_seed(RawSeed::for_depth(self.level.saturating_sub(1)))?;
            let second = map.next_key::<String>()?;
            let value = decode_tagged_member(tag, raw, second.is_none(), self.level)
                .map_err(|e| A::Error::custom(detail(&e)))?;
            let Some(second) = second else {
                return Ok(value);
            };
            m.insert(first, value);
            let v = map.next_value_seed(self.child())?;
            m.insert(second, v);
        } else {
            let v = map.next_value_seed(self.child())?;
            m.insert(first, v);
        }
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(self.child())?;
            m.insert(k, v);
        }
        Ok(Value::Map(m))
    }
}

/// Decodes tagged JSON text that must be an object (a record's data or metadata).
pub fn decode_map(s: &str) -> Result<Map> {
    match read_text(s, TaggedSeed { level: 0 })? {
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
                // The tree came from `parse_json`, bounded but not by value depth.
                Value::Map(m) if m.values().any(|v| exceeds_depth(v, 0)) => {
                    Err(bad(too_deep_message()))
                }
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

    /// A list nested `depth` levels below a field whose innermost item is `leaf`.
    fn nested(depth: usize, leaf: Value, as_map: bool) -> Value {
        (0..depth).fold(leaf, |inner, _| {
            if as_map {
                // A tag-like key forces the `$map` escape: two JSON levels per value level.
                Value::Map(Map::from_iter([("$date".to_string(), inner)]))
            } else {
                Value::List(vec![inner])
            }
        })
    }

    fn record_text(field: Value) -> String {
        encode_map(&Map::from_iter([("f".to_string(), field)]))
    }

    /// Runs `f` on a thread with the stack the crate gives every thread that decodes
    /// (`value::THREAD_STACK`): cargo's test threads have 2 MiB, which values at the depth limit
    /// overflow in unoptimised builds.
    fn on_decoding_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(crate::value::THREAD_STACK)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn every_depth_the_writer_allows_reads_back() {
        on_decoding_thread(every_depth_reads_back);
    }

    fn every_depth_reads_back() {
        // Deeper than serde_json's own limit of 128, which made such records unreadable.
        for as_map in [false, true] {
            let deepest = nested(
                MAX_DEPTH,
                Value::Date(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()),
                as_map,
            );
            assert!(!exceeds_depth(&deepest, 0));
            let text = record_text(deepest.clone());
            let back = decode_map(&text).unwrap();
            assert_eq!(back["f"], deepest);
            assert_eq!(decode_json(&encode_json(&deepest)).unwrap(), deepest);
            // Files add their array and record objects around the data map.
            let j = parse_json(&format!("[{{\"data\": {text}}}]"), 3).unwrap();
            let data = j[0]["data"].clone();
            assert_eq!(map_from_json(data).unwrap()["f"], deepest);
        }
    }

    #[test]
    fn deeper_than_the_limit_is_a_data_format_error_naming_it() {
        on_decoding_thread(deeper_is_refused);
    }

    fn deeper_is_refused() {
        for as_map in [false, true] {
            let too_deep = nested(MAX_DEPTH + 1, Value::Int(1), as_map);
            assert!(exceeds_depth(&too_deep, 0));
            let text = record_text(too_deep.clone());
            for err in [
                decode_map(&text).unwrap_err(),
                decode_json(&encode_json(&too_deep)).unwrap_err(),
                map_from_json(parse_json(&text, 0).unwrap()).unwrap_err(),
            ] {
                assert!(
                    matches!(&err, Error::DataFormat { message, .. } if message.contains("nested more than 256 levels")),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn hostile_nesting_is_refused_without_exhausting_the_stack() {
        // Text written by another program: a million levels, in plain JSON and inside a tag.
        let n = 1_000_000;
        let plain = format!("{{\"f\": {}{}}}", "[".repeat(n), "]".repeat(n));
        let tagged = format!(
            "{{\"f\": {{\"$map\": {{\"a\": {}{}}}}}}}",
            "[".repeat(n),
            "]".repeat(n)
        );
        let worker = std::thread::Builder::new()
            .stack_size(2 << 20) // tokio's worker default
            .spawn(move || {
                for text in [plain, tagged] {
                    assert!(decode_map(&text).is_err());
                    assert!(parse_json(&text, 0).is_err());
                }
            })
            .unwrap();
        worker.join().unwrap();
    }
}
