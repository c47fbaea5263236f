//! Adding rows to the end of a file without rewriting what is already there, so a create
//! costs O(batch) on every layout that allows it (docs/internals.md §3):
//!
//! - jsonl: lines at the end; gzip-compressed, one more gzip member (a reader decodes members
//!   back to back);
//! - csv/tsv: rows at the end, in the order of the file's own header, while that header has a
//!   column for every field of the new rows (and `_metadata` when they carry metadata); gzip as
//!   for jsonl;
//! - json: the array's closing bracket is overwritten by the new items and a new bracket.
//!
//! Everything else (a gzip json array, a csv batch with a field the header lacks, a file that
//! does not end the way this store writes it) answers "rewrite instead", and the caller writes
//! the whole file atomically as before. A failed append cuts the file back to what it was.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};

use flate2::write::GzEncoder;
use indexmap::IndexSet;

use super::layout::{record_line, write_cell, Format, Layout};
use crate::codec;
use crate::error::Result;
use crate::row::Row;

/// The tail of a json array read to find its closing bracket: files this store writes end in
/// `\n]\n`, and a hand-edited one rarely has more trailing white space than this.
const JSON_TAIL: u64 = 4096;

/// Where new items go in a json array file, and what they overwrite.
struct ArrayEnd {
    /// Offset just after the last item (or the opening `[`).
    at: u64,
    /// Whether the array has no item yet (no comma before the first new one).
    empty: bool,
    /// The bytes from `at` to the end, put back if the append fails.
    tail: Vec<u8>,
}

impl Layout {
    /// Appends `rows` in place; `Ok(false)` (nothing written) when this layout or this file
    /// needs a rewrite to take them.
    pub(super) fn append(&self, rows: &[&Row]) -> Result<bool> {
        if rows.is_empty() {
            return Ok(true);
        }
        if self.format == Format::Json && self.gzip {
            return Ok(false);
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io_err("write", e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| self.io_err("write", e))?;
        let len = file.metadata().map_err(|e| self.io_err("write", e))?.len();
        if self.format == Format::Json {
            return self.append_to_array(&mut file, len, rows);
        }
        let Some(body) = self.lines(len, rows)? else {
            return Ok(false);
        };
        let written = file.seek(SeekFrom::Start(len)).and_then(|_| {
            if self.gzip {
                let mut gz = GzEncoder::new(&mut file, flate2::Compression::default());
                gz.write_all(body.as_bytes())?;
                gz.finish()?.flush()
            } else {
                file.write_all(body.as_bytes())?;
                file.flush()
            }
        });
        if let Err(e) = written {
            let _ = file.set_len(len);
            return Err(self.io_err("write", e));
        }
        Ok(true)
    }

    /// The text to add for jsonl/csv/tsv, starting on a line of its own (with a header for a
    /// new csv file); None when a csv file's header cannot hold these rows.
    fn lines(&self, len: u64, rows: &[&Row]) -> Result<Option<String>> {
        let mut text = String::new();
        // A gzip member may follow one whose text lacks its final newline, and a hand-edited
        // plain file may lack it too; a blank line is skipped by every reader, a record glued
        // onto another is not.
        if len > 0 && (self.gzip || !self.ends_with_newline(len)?) {
            text.push('\n');
        }
        if self.format == Format::Jsonl {
            for r in rows {
                text.push_str(&record_line(r));
                text.push('\n');
            }
            return Ok(Some(text));
        }
        // A new file gets the header a rewrite would give these rows; otherwise the rows go
        // in the order of the header already there.
        let reader;
        let fresh: Vec<String>;
        let (header, id_col, meta_col, with_header) = if len == 0 {
            let mut names: IndexSet<&str> = IndexSet::new();
            names.insert("id");
            for r in rows {
                names.extend(r.data.keys().map(String::as_str));
            }
            fresh = names
                .into_iter()
                .chain(["_metadata"])
                .map(str::to_string)
                .collect();
            let meta = fresh.len() - 1;
            (&fresh[..], 0, Some(meta), true)
        } else {
            reader = self.reader(false)?;
            let Some((header, id_col, meta_col)) = reader.csv_columns() else {
                return Ok(None);
            };
            (header, id_col, meta_col, false)
        };
        let fields: HashMap<&str, usize> = header
            .iter()
            .enumerate()
            .filter(|&(col, _)| col != id_col && Some(col) != meta_col)
            .rev() // the first column of a name wins, as when reading
            .map(|(col, name)| (name.as_str(), col))
            .collect();
        let fits = |r: &Row| {
            r.data.keys().all(|k| fields.contains_key(k.as_str()))
                && (meta_col.is_some() || r.metadata.is_empty())
        };
        if !rows.iter().all(|r| fits(r)) {
            return Ok(None);
        }
        let mut w = csv::WriterBuilder::new()
            .delimiter(self.format.delimiter())
            .has_headers(false)
            .from_writer(Vec::new());
        if with_header {
            w.write_record(header)
                .map_err(|e| self.io_err("write", e))?;
        }
        let mut cells: Vec<String> = vec![String::new(); header.len()];
        for r in rows {
            for (col, cell) in cells.iter_mut().enumerate() {
                cell.clear();
                if col == id_col {
                    cell.push_str(&r.id);
                } else if Some(col) == meta_col {
                    cell.push_str(&codec::encode_map(&r.metadata));
                }
            }
            for (k, v) in &r.data {
                cells[fields[k.as_str()]] = write_cell(v);
            }
            w.write_record(&cells)
                .map_err(|e| self.io_err("write", e))?;
        }
        let bytes = w.into_inner().map_err(|e| self.io_err("write", e))?;
        text.push_str(&String::from_utf8_lossy(&bytes));
        Ok(Some(text))
    }

    fn ends_with_newline(&self, len: u64) -> Result<bool> {
        let mut file = File::open(&self.path).map_err(|e| self.io_err("write", e))?;
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(|e| self.io_err("write", e))?;
        Ok(last[0] == b'\n')
    }

    fn append_to_array(&self, file: &mut File, len: u64, rows: &[&Row]) -> Result<bool> {
        let end = if len == 0 {
            ArrayEnd {
                at: 0,
                empty: true,
                tail: Vec::new(),
            }
        } else {
            match self.array_end(file, len)? {
                Some(end) => end,
                None => return Ok(false),
            }
        };
        let mut text = String::from(match (len, end.empty) {
            (0, _) => "[\n",
            (_, true) => "\n",
            _ => ",\n",
        });
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                text.push_str(",\n");
            }
            text.push_str(&record_line(r));
        }
        text.push_str("\n]\n");
        let written = file
            .seek(SeekFrom::Start(end.at))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|()| file.set_len(end.at + text.len() as u64))
            .and_then(|()| file.flush());
        if let Err(e) = written {
            let _ = file
                .set_len(end.at)
                .and_then(|()| file.seek(SeekFrom::Start(end.at)))
                .and_then(|_| file.write_all(&end.tail));
            return Err(self.io_err("write", e));
        }
        Ok(true)
    }

    /// Where a json array file's items end, found in its last bytes: just after the last
    /// item (or the opening bracket), so new items continue the array as a rewrite would write
    /// it. None when the file does not end in `]` (malformed: the rewrite path loads it and
    /// reports that) or its last item is out of sight.
    fn array_end(&self, file: &mut File, len: u64) -> Result<Option<ArrayEnd>> {
        let start = len.saturating_sub(JSON_TAIL);
        let mut tail = Vec::with_capacity((len - start) as usize);
        file.seek(SeekFrom::Start(start))
            .and_then(|_| (&mut *file).take(len - start).read_to_end(&mut tail))
            .map_err(|e| self.io_err("write", e))?;
        let Some(close) = tail.iter().rposition(|b| !b.is_ascii_whitespace()) else {
            return Ok(None);
        };
        if tail[close] != b']' {
            return Ok(None);
        }
        let Some(last) = tail[..close].iter().rposition(|b| !b.is_ascii_whitespace()) else {
            return Ok(None);
        };
        Ok(Some(ArrayEnd {
            at: start + last as u64 + 1,
            empty: tail[last] == b'[',
            tail: tail[last + 1..].to_vec(),
        }))
    }
}
