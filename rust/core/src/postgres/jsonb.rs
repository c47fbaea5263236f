//! JSONB in the binary wire format: a version byte (1) and the JSON text.
//!
//! Values are the tagged JSON of docs/internals.md §3, with one twist on the way in: JSONB
//! stores numbers as `numeric`, which prints an integral float written in exponent form
//! (`1e16`) back as an integer, so such floats are written out in full with a `.0` to keep
//! their type.

use std::error::Error as StdError;
use std::io;

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::Value as J;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};

use crate::codec;
use crate::row::Row;
use crate::value::Map;

const JSONB_VERSION: u8 = 1;
const TAG_KEYS: [&str; 6] = ["$datetime", "$date", "$decimal", "$bytes", "$float", "$map"];

struct PgFormatter;

impl Formatter for PgFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        if value.is_finite() && value.fract() == 0.0 && value.abs() >= 1e15 {
            // Rust prints the exact decimal expansion, which reads back as the same double.
            write!(writer, "{value:.1}")
        } else {
            CompactFormatter.write_f64(writer, value)
        }
    }
}

/// The tagged JSON tree of a record's data or metadata (a `$map` escape when the whole map looks
/// like a tag, as `codec::encode_map` does).
fn map_tree(m: &Map) -> J {
    let mut obj = serde_json::Map::with_capacity(m.len());
    for (k, v) in m {
        obj.insert(k.clone(), codec::to_json(v));
    }
    if m.len() == 1 && m.keys().all(|k| TAG_KEYS.contains(&k.as_str())) {
        let mut outer = serde_json::Map::with_capacity(1);
        outer.insert("$map".into(), J::Object(obj));
        J::Object(outer)
    } else {
        J::Object(obj)
    }
}

/// JSON text of a map as stored in a JSONB column.
pub(crate) fn write_map(m: &Map, out: &mut impl io::Write) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, PgFormatter);
    map_tree(m).serialize(&mut ser).map_err(io::Error::other)
}

#[cfg(test)]
pub(crate) fn map_text(m: &Map) -> String {
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_map(m, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// Bytes of binary COPY data per message handed to the driver: large enough that a batch of
/// 1,000 workload rows (~200 KB) goes in one or two messages (each one a hand-off to the
/// connection task), small enough that a huge batch is not encoded twice over in memory.
pub(crate) const COPY_CHUNK: usize = 256 * 1024;

/// The binary COPY stream (`COPY t (id, data, metadata) FROM STDIN (FORMAT binary)`) of `rows`,
/// in pieces of about [`COPY_CHUNK`] bytes: the header, then per row the field count, each
/// field's length and bytes (id as UTF-8, data and metadata as JSONB), and the trailer.
/// Written straight into the buffers: no per-row parameter machinery, one message per piece.
pub(crate) struct CopyStream<'a> {
    rows: std::slice::Iter<'a, Row>,
    header: bool,
    done: bool,
}

/// The pieces of the binary COPY of `rows` (see [`CopyStream`]).
pub(crate) fn copy_stream(rows: &[Row]) -> CopyStream<'_> {
    CopyStream {
        rows: rows.iter(),
        header: true,
        done: false,
    }
}

/// A field's `i32` length prefix, patched in once the field is written.
fn put_sized(
    out: &mut BytesMut,
    write: impl FnOnce(&mut BytesMut) -> io::Result<()>,
) -> io::Result<()> {
    let at = out.len();
    out.put_i32(0);
    write(out)?;
    let len = i32::try_from(out.len() - at - 4)
        .map_err(|_| io::Error::other("a record is larger than PostgreSQL's 1 GB field limit"))?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

impl Iterator for CopyStream<'_> {
    type Item = io::Result<bytes::Bytes>;

    fn next(&mut self) -> Option<io::Result<bytes::Bytes>> {
        if self.done {
            return None;
        }
        let mut out = BytesMut::with_capacity(COPY_CHUNK + COPY_CHUNK / 4);
        if std::mem::take(&mut self.header) {
            out.put_slice(b"PGCOPY\n\xff\r\n\0");
            out.put_i32(0); // flags
            out.put_i32(0); // header extension length
        }
        while out.len() < COPY_CHUNK {
            let Some(Row { id, data, metadata }) = self.rows.next() else {
                out.put_i16(-1);
                self.done = true;
                break;
            };
            out.put_i16(3);
            let fields = put_sized(&mut out, |o| {
                o.put_slice(id.as_bytes());
                Ok(())
            })
            .and_then(|()| {
                put_sized(&mut out, |o| {
                    o.put_u8(JSONB_VERSION);
                    write_map(data, &mut o.writer())
                })
            })
            .and_then(|()| {
                put_sized(&mut out, |o| {
                    o.put_u8(JSONB_VERSION);
                    write_map(metadata, &mut o.writer())
                })
            });
            if let Err(e) = fields {
                self.done = true;
                return Some(Err(e));
            }
        }
        Some(Ok(out.freeze()))
    }
}

/// A map bound as a JSONB parameter (or COPY field), serialised straight into the wire buffer.
#[derive(Debug)]
pub(crate) struct JsonbMap<'a>(pub &'a Map);

impl ToSql for JsonbMap<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_u8(JSONB_VERSION);
        write_map(self.0, &mut out.writer())?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A JSONB (or JSON / text) column read as its JSON text, without copying.
pub(crate) struct JsonText<'a>(pub &'a str);

impl<'a> FromSql<'a> for JsonText<'a> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn StdError + Sync + Send>> {
        let body = if *ty == Type::JSONB {
            match raw.split_first() {
                Some((&JSONB_VERSION, rest)) => rest,
                Some((v, _)) => return Err(format!("unsupported jsonb version {v}").into()),
                None => return Err("empty jsonb value".into()),
            }
        } else {
            raw
        };
        Ok(JsonText(std::str::from_utf8(body)?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::JSON || *ty == Type::TEXT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn integral_floats_keep_a_decimal_point() {
        for f in [1e15, 1e16, -3e20, 1e300, f64::MAX] {
            let mut m = Map::new();
            m.insert("f".into(), Value::Float(f));
            let text = map_text(&m);
            assert!(text.contains(".0"), "{text}");
            assert!(!text.contains('e'), "{text}");
            assert_eq!(codec::decode_map(&text).unwrap(), m);
        }
        let mut m = Map::new();
        m.insert("f".into(), Value::Float(0.1));
        m.insert("g".into(), Value::Float(f64::NAN));
        m.insert("i".into(), Value::Int(i64::MAX));
        let text = map_text(&m);
        assert_eq!(
            text,
            r#"{"f":0.1,"g":{"$float":"nan"},"i":9223372036854775807}"#
        );
    }

    #[test]
    fn copy_stream_reads_back_as_the_rows_in_pieces() {
        // Enough rows for several pieces: a row may not straddle two of them, and the
        // concatenation must be one binary COPY stream that reads back as the rows.
        let rows: Vec<Row> = (0..3000)
            .map(|i| {
                let mut data = Map::new();
                data.insert("n".into(), Value::Int(i));
                data.insert("s".into(), Value::Str("é".repeat(100)));
                Row {
                    id: format!("r{i}"),
                    data,
                    metadata: Map::new(),
                }
            })
            .collect();
        let pieces: Vec<bytes::Bytes> = copy_stream(&rows).map(|p| p.unwrap()).collect();
        assert!(pieces.len() > 1, "{} piece(s)", pieces.len());
        let all: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(&all[..11], b"PGCOPY\n\xff\r\n\0");
        let mut at = 19;
        let mut take = |n: usize| {
            let out = &all[at..at + n];
            at += n;
            out
        };
        for row in &rows {
            assert_eq!(take(2), 3i16.to_be_bytes());
            let mut field = || {
                let len = i32::from_be_bytes(take(4).try_into().unwrap());
                take(usize::try_from(len).unwrap()).to_vec()
            };
            assert_eq!(field(), row.id.as_bytes());
            let data = field();
            assert_eq!(data[0], JSONB_VERSION);
            assert_eq!(
                codec::decode_map(std::str::from_utf8(&data[1..]).unwrap()).unwrap(),
                row.data
            );
            assert_eq!(field(), b"\x01{}");
        }
        assert_eq!(take(2), (-1i16).to_be_bytes());
        assert_eq!(at, all.len());
    }

    #[test]
    fn tag_like_map_is_escaped() {
        let mut m = Map::new();
        m.insert("$date".into(), Value::Str("x".into()));
        assert_eq!(map_text(&m), codec::encode_map(&m));
        assert_eq!(codec::decode_map(&map_text(&m)).unwrap(), m);
    }
}
