//! The on-disk layouts (docs/internals.md §3): reading a file one row at a time and writing
//! an index back out.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use flate2::read::MultiGzDecoder;
use indexmap::IndexSet;
use serde_json::Value as J;

use crate::codec;
use crate::error::detail;
use crate::error::{Error, Result};
use crate::memory::Index;
use crate::row::Row;
use crate::value::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Jsonl,
    Csv,
    Tsv,
}

impl Format {
    pub(super) fn parse(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "jsonl" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
        }
    }

    pub(super) fn delimiter(self) -> u8 {
        if self == Format::Tsv {
            b'\t'
        } else {
            b','
        }
    }
}

/// Which file, in which layout; every error about the content names the file.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) path: PathBuf,
    pub(super) format: Format,
    pub(super) gzip: bool,
}

/// The ids a reader has returned; a set of ids only, never rows.
pub(super) type IdSet = HashSet<Box<str>>;

impl Layout {
    pub(super) fn bad(&self, message: impl std::fmt::Display) -> Error {
        Error::data_format(
            self.format.name(),
            format!("{}: {message}", self.path.display()),
        )
    }

    pub(super) fn io_err(&self, operation: &str, e: impl std::fmt::Display) -> Error {
        Error::operation(operation, format!("{}: {e}", self.path.display()))
    }

    /// Whether creates may append to the file instead of rewriting it (append.rs decides
    /// for each batch whether this file can take it).
    pub(super) fn appends(&self) -> bool {
        !(self.format == Format::Json && self.gzip)
    }

    /// A read error: through gzip, bad compressed data surfaces as an I/O error of one of
    /// these kinds, and is the file's fault rather than the disk's.
    fn read_err(&self, e: std::io::Error) -> Error {
        use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
        if self.gzip && matches!(e.kind(), InvalidData | InvalidInput | UnexpectedEof) {
            self.bad(format!("not valid gzip: {e}"))
        } else {
            self.io_err("read", e)
        }
    }

    /// A reader over the file as it is now. It holds its own descriptor and stops at the
    /// length seen here, so a later append or atomic rewrite by this store never shows it a
    /// half-written line. A missing or empty file reads as no rows. With `track_ids` it keeps
    /// the ids it has returned and reports a repeated one.
    pub(super) fn reader(&self, track_ids: bool) -> Result<RowReader> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(self.reader_over(Source::Empty, track_ids))
            }
            Err(e) => return Err(self.io_err("read", e)),
        };
        let len = file.metadata().map_err(|e| self.io_err("read", e))?.len();
        if len == 0 {
            return Ok(self.reader_over(Source::Empty, track_ids));
        }
        let raw = file.take(len);
        let input: Box<dyn Read + Send> = if self.gzip {
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, raw)))
        } else {
            Box::new(raw)
        };
        let source = match self.format {
            Format::Json => Source::Items(self.parse_json(input)?.into_iter().enumerate()),
            Format::Jsonl => Source::Lines {
                input: BufReader::with_capacity(1 << 16, input),
                line: 0,
                buf: Vec::new(),
            },
            Format::Csv | Format::Tsv => self.open_csv(input)?,
        };
        Ok(self.reader_over(source, track_ids))
    }

    fn reader_over(&self, source: Source, track_ids: bool) -> RowReader {
        RowReader {
            layout: self.clone(),
            source,
            seen: track_ids.then(IdSet::new),
            at: String::new(),
        }
    }

    /// A JSON array is parsed whole: its records are not delimited without parsing it.
    fn parse_json(&self, mut input: Box<dyn Read + Send>) -> Result<Vec<J>> {
        let mut bytes = Vec::new();
        input
            .read_to_end(&mut bytes)
            .map_err(|e| self.read_err(e))?;
        let text = String::from_utf8(bytes).map_err(|e| self.bad(format!("not UTF-8: {e}")))?;
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        // The array and each record's object enclose the data and metadata maps.
        let j: J = codec::parse_json(&text, 3).map_err(|e| self.bad(detail(&e)))?;
        match j {
            J::Array(items) => Ok(items),
            _ => Err(self.bad("expected a JSON array of records")),
        }
    }

    /// A csv error at `line` unless it knows its own position.
    fn csv_err(&self, e: csv::Error, line: u64) -> Error {
        let line = e.position().map_or(line, |p| p.line());
        if !e.is_io_error() {
            return self.bad(format!("line {line}: {e}"));
        }
        match e.into_kind() {
            csv::ErrorKind::Io(io) => self.read_err(io),
            other => self.bad(format!("line {line}: {other:?}")),
        }
    }

    fn open_csv(&self, input: Box<dyn Read + Send>) -> Result<Source> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(self.format.delimiter())
            .has_headers(true)
            .flexible(true)
            .from_reader(input);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| self.csv_err(e, 1))?
            .iter()
            .map(str::to_string)
            .collect();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Ok(Source::Empty);
        }
        let id_col = header
            .iter()
            .position(|h| h == "id")
            .ok_or_else(|| self.bad("line 1: the header has no \"id\" column"))?;
        let meta_col = (header.len() > 1 && header.last().is_some_and(|h| h == "_metadata"))
            .then(|| header.len() - 1);
        Ok(Source::Csv(Box::new(CsvSource {
            reader,
            header,
            id_col,
            meta_col,
            rec: csv::StringRecord::new(),
        })))
    }

    pub(super) fn serialize(&self, rows: &Index, out: &mut dyn Write) -> std::io::Result<()> {
        match self.format {
            Format::Json => {
                out.write_all(b"[")?;
                for (i, r) in rows.values().enumerate() {
                    out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                    out.write_all(record_line(r).as_bytes())?;
                }
                out.write_all(b"\n]\n")
            }
            Format::Jsonl => {
                for r in rows.values() {
                    out.write_all(record_line(r).as_bytes())?;
                    out.write_all(b"\n")?;
                }
                Ok(())
            }
            Format::Csv | Format::Tsv => {
                let mut fields: IndexSet<&str> = IndexSet::new();
                for r in rows.values() {
                    for k in r.data.keys() {
                        fields.insert(k.as_str());
                    }
                }
                let mut w = csv::WriterBuilder::new()
                    .delimiter(self.format.delimiter())
                    .from_writer(out);
                let mut header = Vec::with_capacity(fields.len() + 2);
                header.push("id");
                header.extend(fields.iter().copied());
                header.push("_metadata");
                w.write_record(&header)?;
                let mut cells: Vec<String> = Vec::with_capacity(header.len());
                for r in rows.values() {
                    cells.clear();
                    cells.push(r.id.clone());
                    for f in &fields {
                        cells.push(r.data.get(*f).map(write_cell).unwrap_or_default());
                    }
                    cells.push(codec::encode_map(&r.metadata));
                    w.write_record(&cells)?;
                }
                w.flush()
            }
        }
    }
}

struct CsvSource {
    reader: csv::Reader<Box<dyn Read + Send>>,
    header: Vec<String>,
    id_col: usize,
    meta_col: Option<usize>,
    rec: csv::StringRecord,
}

enum Source {
    Empty,
    Items(std::iter::Enumerate<std::vec::IntoIter<J>>),
    Lines {
        input: BufReader<Box<dyn Read + Send>>,
        line: usize,
        buf: Vec<u8>,
    },
    Csv(Box<CsvSource>),
}

/// The rows of a file, parsed one at a time in file order.
pub(super) struct RowReader {
    layout: Layout,
    source: Source,
    seen: Option<IdSet>,
    /// Where the last row came from ("line 3", "record 2"), for errors about it.
    at: String,
}

impl RowReader {
    /// The next row, None at the end; a malformed one is a `DataFormat` error naming the file
    /// and the line (record, for json).
    pub(super) fn next_row(&mut self) -> Result<Option<Row>> {
        let Some(row) = self.parse_next()? else {
            return Ok(None);
        };
        if let Some(seen) = &mut self.seen {
            if !seen.insert(row.id.as_str().into()) {
                return Err(self.duplicate(&row.id));
            }
        }
        Ok(Some(row))
    }

    /// The error for a second row with the id `id`, at the row just read.
    pub(super) fn duplicate(&self, id: &str) -> Error {
        self.layout.bad(format!("{}: duplicate id {id:?}", self.at))
    }

    /// A csv/tsv file's header, its id column and its `_metadata` column; None for other
    /// layouts and for a file without a header.
    pub(super) fn csv_columns(&self) -> Option<(&[String], usize, Option<usize>)> {
        match &self.source {
            Source::Csv(src) => Some((&src.header, src.id_col, src.meta_col)),
            _ => None,
        }
    }

    /// The ids returned so far (all of them once `next_row` gave None).
    pub(super) fn into_ids(self) -> IdSet {
        self.seen.unwrap_or_default()
    }

    fn parse_next(&mut self) -> Result<Option<Row>> {
        let layout = &self.layout;
        match &mut self.source {
            Source::Empty => Ok(None),
            Source::Items(items) => {
                let Some((i, item)) = items.next() else {
                    return Ok(None);
                };
                self.at = format!("record {i}");
                record_from_json(item)
                    .map(Some)
                    .map_err(|m| layout.bad(format!("record {i}: {m}")))
            }
            Source::Lines { input, line, buf } => loop {
                buf.clear();
                let n = input
                    .read_until(b'\n', buf)
                    .map_err(|e| layout.read_err(e))?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                let at = |m: String| layout.bad(format!("line {line}: {m}"));
                let text = std::str::from_utf8(buf).map_err(|e| at(format!("not UTF-8: {e}")))?;
                if text.trim().is_empty() {
                    continue;
                }
                let j: J = codec::parse_json(text, 2).map_err(|e| at(detail(&e)))?;
                let row = record_from_json(j).map_err(at)?;
                self.at = format!("line {line}");
                return Ok(Some(row));
            },
            Source::Csv(src) => loop {
                let more = src
                    .reader
                    .read_record(&mut src.rec)
                    .map_err(|e| layout.csv_err(e, 0))?;
                if !more {
                    return Ok(None);
                }
                let rec = &src.rec;
                let line = rec.position().map_or(0, |p| p.line());
                let at = |m: String| layout.bad(format!("line {line}: {m}"));
                if rec.len() > src.header.len() {
                    return Err(at(format!(
                        "{} cells for {} columns",
                        rec.len(),
                        src.header.len()
                    )));
                }
                if rec.len() == 1 && rec.get(0) == Some("") {
                    continue;
                }
                let id = rec.get(src.id_col).unwrap_or_default().to_string();
                let mut data = Map::new();
                let mut metadata = Map::new();
                for (col, cell) in rec.iter().enumerate() {
                    if col == src.id_col || cell.is_empty() {
                        continue;
                    }
                    if Some(col) == src.meta_col {
                        metadata = codec::decode_map(cell)
                            .map_err(|e| at(format!("_metadata: {}", detail(&e))))?;
                        continue;
                    }
                    data.insert(src.header[col].clone(), read_cell(cell));
                }
                self.at = format!("line {line}");
                return Ok(Some(Row { id, data, metadata }));
            },
        }
    }
}

pub(super) fn record_line(r: &Row) -> String {
    let id = serde_json::to_string(&r.id).unwrap_or_else(|_| "\"\"".into());
    format!(
        "{{\"id\":{id},\"data\":{},\"metadata\":{}}}",
        codec::encode_map(&r.data),
        codec::encode_map(&r.metadata)
    )
}

fn record_from_json(j: J) -> std::result::Result<Row, String> {
    let J::Object(mut obj) = j else {
        return Err("expected an object with id, data and metadata".into());
    };
    let id = match obj.remove("id") {
        Some(J::String(s)) => s,
        Some(other) => return Err(format!("id must be a string, got {other}")),
        None => return Err("missing \"id\"".into()),
    };
    let part = |name: &str, v: Option<J>| -> std::result::Result<Map, String> {
        match v {
            None | Some(J::Null) => Ok(Map::new()),
            Some(v) => {
                codec::map_from_json(v).map_err(|e| format!("id {id:?}: {name}: {}", detail(&e)))
            }
        }
    };
    let data = part("data", obj.remove("data"))?;
    let metadata = part("metadata", obj.remove("metadata"))?;
    Ok(Row { id, data, metadata })
}

/// A str cell is raw unless reading it back would give something else.
pub(super) fn write_cell(v: &Value) -> String {
    match v {
        Value::Str(s) if !s.is_empty() && serde_json::from_str::<J>(s).is_err() => s.clone(),
        other => codec::encode_json(other),
    }
}

fn read_cell(cell: &str) -> Value {
    codec::decode_json(cell).unwrap_or_else(|_| Value::Str(cell.to_string()))
}
