//! A store kept in one file (json, jsonl, csv, tsv; optionally gzip). The rows live in an
//! in-memory index, so reads never touch the file; every change rewrites the file atomically
//! (temp file + rename), except creates on plain jsonl, which append.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use indexmap::IndexSet;
use serde_json::Value as J;

use crate::codec;
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::memory::{self, detail, Index, MemoryStore, Undo};
use crate::query::QuerySpec;
use crate::row::Row;
use crate::store::Store;
use crate::value::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Jsonl,
    Csv,
    Tsv,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
        }
    }

    fn delimiter(self) -> u8 {
        if self == Format::Tsv {
            b'\t'
        } else {
            b','
        }
    }
}

pub struct FileStore {
    mem: MemoryStore,
    path: PathBuf,
    format: Format,
    gzip: bool,
    tmp_counter: AtomicU64,
}

fn config(parameter: &str, message: impl std::fmt::Display) -> Error {
    Error::Config {
        parameter: parameter.to_string(),
        message: message.to_string(),
    }
}

impl FileStore {
    /// Opens (and loads, when it exists) the file at `path`. A missing or empty file is an
    /// empty store.
    pub fn open(path: &str, format: &str, compression: Option<&str>) -> Result<FileStore> {
        let format = match format {
            "json" => Format::Json,
            "jsonl" => Format::Jsonl,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            other => {
                return Err(config(
                    "format",
                    format!("unsupported format {other:?}; expected json, jsonl, csv or tsv"),
                ))
            }
        };
        let gzip = match compression {
            None => false,
            Some("gzip") => true,
            Some(other) => {
                return Err(config(
                    "compression",
                    format!("unsupported compression {other:?}; expected None or \"gzip\""),
                ))
            }
        };
        if path.is_empty() {
            return Err(config("path", "the path is empty"));
        }
        let store = FileStore {
            mem: MemoryStore::named("FileStore"),
            path: PathBuf::from(path),
            format,
            gzip,
            tmp_counter: AtomicU64::new(0),
        };
        let rows = store.load()?;
        {
            let mut g = store.mem.write_guard()?;
            let mut undo = Undo::new(&g);
            memory::create_batch(&mut g, rows, &mut undo).map_err(|e| match e {
                Error::Duplicate(id) => store.bad(format!("duplicate id {id:?}")),
                other => other,
            })?;
        }
        Ok(store)
    }

    fn bad(&self, message: impl std::fmt::Display) -> Error {
        Error::data_format(
            self.format.name(),
            format!("{}: {message}", self.path.display()),
        )
    }

    fn io_err(&self, operation: &str, e: impl std::fmt::Display) -> Error {
        Error::operation(operation, format!("{}: {e}", self.path.display()))
    }

    fn load(&self) -> Result<Vec<Row>> {
        let raw = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_err("read", e)),
        };
        if raw.is_empty() {
            return Ok(Vec::new());
        }
        let bytes = if self.gzip {
            let mut out = Vec::new();
            MultiGzDecoder::new(raw.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| self.bad(format!("not valid gzip: {e}")))?;
            out
        } else {
            raw
        };
        let text = String::from_utf8(bytes).map_err(|e| self.bad(format!("not UTF-8: {e}")))?;
        match self.format {
            Format::Json => self.parse_json(&text),
            Format::Jsonl => self.parse_jsonl(&text),
            Format::Csv | Format::Tsv => self.parse_csv(&text),
        }
    }

    fn parse_json(&self, text: &str) -> Result<Vec<Row>> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let j: J = serde_json::from_str(text)
            .map_err(|e| self.bad(format!("line {} column {}: {e}", e.line(), e.column())))?;
        let J::Array(items) = j else {
            return Err(self.bad("expected a JSON array of records"));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                record_from_json(item).map_err(|m| self.bad(format!("record {i}: {m}")))
            })
            .collect()
    }

    fn parse_jsonl(&self, text: &str) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = |m: String| self.bad(format!("line {}: {m}", i + 1));
            let j: J = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
            rows.push(record_from_json(j).map_err(at)?);
        }
        Ok(rows)
    }

    fn parse_csv(&self, text: &str) -> Result<Vec<Row>> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(self.format.delimiter())
            .has_headers(true)
            .flexible(true)
            .from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| self.bad(format!("line 1: {e}")))?
            .iter()
            .map(str::to_string)
            .collect();
        if header.len() == 1 && header[0].is_empty() {
            return Ok(Vec::new());
        }
        let id_col = header
            .iter()
            .position(|h| h == "id")
            .ok_or_else(|| self.bad("line 1: the header has no \"id\" column"))?;
        let meta_col = (header.len() > 1 && header.last().is_some_and(|h| h == "_metadata"))
            .then(|| header.len() - 1);
        let mut rows = Vec::new();
        for rec in reader.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                self.bad(format!("line {line}: {e}"))
            })?;
            let line = rec.position().map_or(0, |p| p.line());
            let at = |m: String| self.bad(format!("line {line}: {m}"));
            if rec.len() > header.len() {
                return Err(at(format!(
                    "{} cells for {} columns",
                    rec.len(),
                    header.len()
                )));
            }
            if rec.len() == 1 && rec.get(0) == Some("") {
                continue;
            }
            let id = rec.get(id_col).unwrap_or_default().to_string();
            let mut data = Map::new();
            let mut metadata = Map::new();
            for (col, cell) in rec.iter().enumerate() {
                if col == id_col || cell.is_empty() {
                    continue;
                }
                if Some(col) == meta_col {
                    metadata = codec::decode_map(cell)
                        .map_err(|e| at(format!("_metadata: {}", detail(&e))))?;
                    continue;
                }
                data.insert(header[col].clone(), read_cell(cell));
            }
            rows.push(Row { id, data, metadata });
        }
        Ok(rows)
    }

    fn serialize(&self, rows: &Index, out: &mut dyn Write) -> std::io::Result<()> {
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

    fn tmp_path(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "store".into());
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.dir()
            .join(format!(".{name}.tmp-{}-{n}", std::process::id()))
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Writes the whole index to a temp file beside the target, then renames it over.
    fn rewrite(&self, rows: &Index) -> Result<()> {
        std::fs::create_dir_all(self.dir()).map_err(|e| self.io_err("write", e))?;
        let tmp = self.tmp_path();
        let result = self
            .write_to(&tmp, rows)
            .and_then(|()| std::fs::rename(&tmp, &self.path).map_err(|e| self.io_err("write", e)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn write_to(&self, tmp: &Path, rows: &Index) -> Result<()> {
        let file = File::create(tmp).map_err(|e| self.io_err("write", e))?;
        let mut buf = BufWriter::with_capacity(1 << 16, file);
        let written = if self.gzip {
            let mut gz = GzEncoder::new(&mut buf, flate2::Compression::default());
            self.serialize(rows, &mut gz)
                .and_then(|()| gz.finish().map(|_| ()))
        } else {
            self.serialize(rows, &mut buf)
        };
        written
            .and_then(|()| buf.into_inner().map_err(|e| e.into_error()))
            // Durable before the rename makes it visible: a crash leaves the old file or the
            // whole new one.
            .and_then(|f| f.sync_all())
            .map_err(|e| self.io_err("write", e))
    }

    /// Appends `rows` as jsonl lines; on failure cuts the file back to its old length.
    fn append(&self, rows: &[&Row]) -> Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io_err("write", e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| self.io_err("write", e))?;
        let len = file.metadata().map_err(|e| self.io_err("write", e))?.len();
        let mut text = String::new();
        if len > 0 {
            // A hand-edited file may lack its final newline; do not glue a record onto it.
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(|e| self.io_err("write", e))?;
            if last[0] != b'\n' {
                text.push('\n');
            }
        }
        for r in rows {
            text.push_str(&record_line(r));
            text.push('\n');
        }
        if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
            let _ = file.set_len(len);
            return Err(self.io_err("write", e));
        }
        Ok(())
    }

    /// Applies a verb to the index and persists it; if the file write fails the index is put
    /// back, so memory and file never disagree.
    fn mutate<R>(
        &self,
        appends: bool,
        op: impl FnOnce(&mut Index, &mut Undo) -> Result<R>,
    ) -> Result<R> {
        let mut g = self.mem.write_guard()?;
        let mut undo = Undo::new(&g);
        let out = op(&mut g, &mut undo)?;
        if !undo.changed(&g) {
            return Ok(out);
        }
        let written = if appends && self.format == Format::Jsonl && !self.gzip {
            let new_rows: Vec<&Row> = g.values().skip(undo.len_before()).collect();
            self.append(&new_rows)
        } else {
            self.rewrite(&g)
        };
        match written {
            Ok(()) => Ok(out),
            Err(e) => {
                undo.rollback(&mut g);
                Err(e)
            }
        }
    }

    /// The file this store persists to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn record_line(r: &Row) -> String {
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
fn write_cell(v: &Value) -> String {
    match v {
        Value::Str(s) if !s.is_empty() && serde_json::from_str::<J>(s).is_err() => s.clone(),
        other => codec::encode_json(other),
    }
}

fn read_cell(cell: &str) -> Value {
    codec::decode_json(cell).unwrap_or_else(|_| Value::Str(cell.to_string()))
}

impl Store for FileStore {
    fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        self.mutate(true, |g, u| memory::create_batch(g, rows, u))
    }

    fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        self.mutate(true, |g, u| Ok(memory::create_missing(g, rows, u)))
    }

    fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        self.mutate(false, |g, u| Ok(memory::upsert_batch(g, rows, u)))
    }

    fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        self.mutate(false, |g, u| Ok(memory::update_batch(g, rows, u)))
    }

    fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>> {
        Store::read_batch(&self.mem, ids)
    }

    fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        Store::exists_batch(&self.mem, ids)
    }

    fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        self.mutate(false, |g, u| Ok(memory::delete_batch(g, ids, u)))
    }

    fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>> {
        Store::search(&self.mem, spec)
    }

    fn count(&self, spec: &QuerySpec) -> Result<usize> {
        Store::count(&self.mem, spec)
    }

    fn clear(&self) -> Result<usize> {
        self.mutate(false, |g, u| Ok(memory::clear(g, u)))
    }

    fn stream(
        self: Arc<Self>,
        spec: QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<Cursor> {
        let rows = Store::search(&self.mem, &spec)?;
        memory::stream_rows(rows, batch_size, prefetch)
    }

    fn close(&self) -> Result<()> {
        self.mem.mark_closed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{conformance, row, strs};
    use crate::value::DateTimeValue;

    fn tmpdir(tag: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!(
            "dk-file-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const FORMATS: [(&str, Option<&str>); 8] = [
        ("json", None),
        ("jsonl", None),
        ("csv", None),
        ("tsv", None),
        ("json", Some("gzip")),
        ("jsonl", Some("gzip")),
        ("csv", Some("gzip")),
        ("tsv", Some("gzip")),
    ];

    fn rich_row(id: &str) -> Row {
        let mut r = row(id, 7);
        let d = &mut r.data;
        d.insert("empty".into(), Value::Str(String::new()));
        d.insert("numstr".into(), Value::Str("123".into()));
        d.insert("nullstr".into(), Value::Str("null".into()));
        d.insert("jsonish".into(), Value::Str("{\"a\": 1}".into()));
        d.insert("spaced".into(), Value::Str(" 1 ".into()));
        d.insert("text".into(), Value::Str("a, b\t\"c\"\nd".into()));
        d.insert("none".into(), Value::Null);
        d.insert("f".into(), Value::Float(1.5));
        d.insert("nan".into(), Value::Float(f64::NAN));
        d.insert("b".into(), Value::Bytes(vec![0, 255]));
        d.insert("dec".into(), Value::Decimal("1.10".into()));
        d.insert(
            "when".into(),
            Value::DateTime(DateTimeValue {
                naive: chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
                    .and_then(|x| x.and_hms_micro_opt(10, 0, 0, 5))
                    .unwrap_or_default(),
                offset_seconds: Some(3600),
            }),
        );
        d.insert(
            "list".into(),
            Value::List(vec![Value::Int(1), Value::Str("x".into())]),
        );
        let mut tagged = Map::new();
        tagged.insert("$date".into(), Value::Str("not a date".into()));
        d.insert("tagged".into(), Value::Map(tagged));
        r
    }

    fn same(a: &Row, b: &Row) -> bool {
        // NaN never equals itself; compare the text form instead.
        a.id == b.id
            && codec::encode_map(&a.metadata) == codec::encode_map(&b.metadata)
            && a.data.len() == b.data.len()
            && a.data.iter().all(|(k, v)| {
                b.data
                    .get(k)
                    .is_some_and(|w| codec::encode_json(v) == codec::encode_json(w))
            })
    }

    #[test]
    fn conformance_every_format() {
        for (fmt, comp) in FORMATS {
            let dir = tmpdir("conf");
            let path = dir.join(format!("db.{fmt}"));
            let s = FileStore::open(path.to_str().unwrap(), fmt, comp).unwrap();
            conformance(Arc::new(s));
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn persists_and_reloads_every_format() {
        for (fmt, comp) in FORMATS {
            let dir = tmpdir("reload");
            let path = dir.join(format!("sub/db.{fmt}"));
            let p = path.to_str().unwrap();
            let s = FileStore::open(p, fmt, comp).unwrap();
            s.create_batch(vec![rich_row("a"), row("b", 2)]).unwrap();
            s.create_missing(vec![row("c", 3), row("a", 0)]).unwrap();
            s.upsert_batch(vec![row("b", 20)]).unwrap();
            s.delete_batch(&strs(&["zz"])).unwrap();
            s.close().unwrap();
            let t = FileStore::open(p, fmt, comp).unwrap();
            let all = t.search(&QuerySpec::default()).unwrap();
            assert_eq!(all.len(), 3, "{fmt} {comp:?}");
            assert!(
                same(&all[0], &rich_row("a")),
                "{fmt} {comp:?}: {:?}",
                all[0]
            );
            assert!(same(&all[1], &row("b", 20)), "{fmt} {comp:?}: {:?}", all[1]);
            assert!(same(&all[2], &row("c", 3)));
            t.delete_batch(&strs(&["a"])).unwrap();
            t.close().unwrap();
            let u = FileStore::open(p, fmt, comp).unwrap();
            assert_eq!(u.count(&QuerySpec::default()).unwrap(), 2);
            u.clear().unwrap();
            let v = FileStore::open(p, fmt, comp).unwrap();
            assert_eq!(v.count(&QuerySpec::default()).unwrap(), 0);
            // No temp files left behind.
            let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
                .collect();
            assert!(leftovers.is_empty());
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn jsonl_creates_append() {
        let dir = tmpdir("append");
        let path = dir.join("db.jsonl");
        std::fs::write(&path, "{\"id\":\"x\",\"data\":{},\"metadata\":{}}").unwrap();
        let s = FileStore::open(path.to_str().unwrap(), "jsonl", None).unwrap();
        s.create_batch(vec![row("a", 1)]).unwrap();
        s.create_missing(vec![row("b", 1), row("a", 2)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.starts_with("{\"id\":\"x\""));
        let t = FileStore::open(path.to_str().unwrap(), "jsonl", None).unwrap();
        assert_eq!(t.count(&QuerySpec::default()).unwrap(), 3);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn failed_write_changes_nothing() {
        for (fmt, comp) in FORMATS {
            let dir = tmpdir("fail");
            let path = dir.join(format!("db.{fmt}"));
            let s = FileStore::open(path.to_str().unwrap(), fmt, comp).unwrap();
            s.create_batch(vec![row("a", 1), row("b", 2), row("c", 3)])
                .unwrap();
            // A directory where the file should be makes every write fail.
            std::fs::remove_file(&path).unwrap();
            std::fs::create_dir(&path).unwrap();
            let before = s.search(&QuerySpec::default()).unwrap();
            assert!(matches!(
                s.create_batch(vec![row("d", 4)]),
                Err(Error::Operation { .. })
            ));
            assert!(s.create_missing(vec![row("d", 4)]).is_err());
            assert!(s.upsert_batch(vec![row("a", 9), row("e", 5)]).is_err());
            assert!(s.update_batch(vec![row("b", 9)]).is_err());
            assert!(s.delete_batch(&strs(&["a", "c"])).is_err());
            assert!(s.clear().is_err());
            assert_eq!(s.search(&QuerySpec::default()).unwrap(), before, "{fmt}");
            // Verbs that change nothing do not write.
            assert_eq!(s.update_batch(vec![row("zz", 1)]).unwrap(), vec![false]);
            assert_eq!(s.delete_batch(&strs(&["zz"])).unwrap(), vec![false]);
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn config_errors() {
        let e = FileStore::open("/tmp/x.xml", "xml", None).err();
        assert!(matches!(e, Some(Error::Config { parameter, .. }) if parameter == "format"));
        let e = FileStore::open("/tmp/x.json", "json", Some("zip")).err();
        assert!(matches!(e, Some(Error::Config { parameter, .. }) if parameter == "compression"));
    }

    fn load_err(fmt: &str, comp: Option<&str>, content: &[u8]) -> String {
        let dir = tmpdir("bad");
        let path = dir.join(format!("bad.{fmt}"));
        std::fs::write(&path, content).unwrap();
        let r = FileStore::open(path.to_str().unwrap(), fmt, comp);
        let _ = std::fs::remove_dir_all(dir);
        match r {
            Err(Error::DataFormat { format, message }) => {
                assert_eq!(format, fmt);
                assert!(message.contains("bad."), "{message}");
                message
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("loaded {:?}", String::from_utf8_lossy(content)),
        }
    }

    #[test]
    fn malformed_files() {
        let m = load_err("json", None, b"[{\"id\":\"a\",\"data\":{}},\n{\"id\":5}]");
        assert!(m.contains("record 1"), "{m}");
        let m = load_err("json", None, b"[{\"id\":\"a\",\n\"data\":{]");
        assert!(m.contains("line 2"), "{m}");
        let m = load_err("json", None, b"{\"id\":\"a\"}");
        assert!(m.contains("array"), "{m}");
        let m = load_err(
            "json",
            None,
            b"[{\"id\":\"a\",\"data\":{\"d\":{\"$date\":\"x\"}}}]",
        );
        assert!(m.contains("record 0") && m.contains("$date"), "{m}");
        let m = load_err("json", None, b"[{\"id\":\"a\"},{\"id\":\"a\"}]");
        assert!(m.contains("duplicate"), "{m}");
        let m = load_err(
            "jsonl",
            None,
            b"{\"id\":\"a\",\"data\":{}}\n\n{\"id\":\"b\",\"data\":[]}\n",
        );
        assert!(m.contains("line 3"), "{m}");
        let m = load_err("jsonl", None, b"{\"id\":\"a\"}\nnot json\n");
        assert!(m.contains("line 2"), "{m}");
        let m = load_err("csv", None, b"id,x,_metadata\na,1,{}\nb,2,[1]\n");
        assert!(m.contains("line 3"), "{m}");
        let m = load_err("csv", None, b"id,x,_metadata\na,1,{},extra\n");
        assert!(m.contains("line 2"), "{m}");
        let m = load_err("tsv", None, b"name\tx\na\t1\n");
        assert!(m.contains("id"), "{m}");
        let m = load_err("json", Some("gzip"), b"not gzip at all");
        assert!(m.contains("gzip"), "{m}");
    }

    #[test]
    fn empty_and_foreign_files() {
        let dir = tmpdir("empty");
        for (fmt, comp) in FORMATS {
            let path = dir.join(format!("e.{fmt}.{}", comp.unwrap_or("plain")));
            std::fs::write(&path, b"").unwrap();
            let s = FileStore::open(path.to_str().unwrap(), fmt, comp).unwrap();
            assert_eq!(s.count(&QuerySpec::default()).unwrap(), 0);
        }
        // A CSV written elsewhere: no _metadata column, cells typed by JSON.
        let path = dir.join("plain.csv");
        std::fs::write(&path, "id,name,age\n1,Ann,30\n2,\"Bob, Jr\",\n").unwrap();
        let s = FileStore::open(path.to_str().unwrap(), "csv", None).unwrap();
        let all = s.search(&QuerySpec::default()).unwrap();
        assert_eq!(all[0].data.get("age"), Some(&Value::Int(30)));
        assert_eq!(all[1].data.get("name"), Some(&Value::Str("Bob, Jr".into())));
        assert!(!all[1].data.contains_key("age"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
