//! A store kept in one file (json, jsonl, csv, tsv; optionally gzip).
//!
//! Opening reads nothing but the path and the config. The rows stay on disk until a verb needs
//! them by id: read, exists, update, upsert, delete, clear, and creates the file cannot take
//! by appending. That verb loads the whole file into an in-memory index once; from then on reads
//! never touch the file and every change rewrites it atomically (temp file + rename), except
//! creates, which append wherever the layout allows (append.rs: every layout but a gzip json
//! array; csv/tsv while the header has the new rows' columns), so a create costs O(batch). A
//! stream over the loaded index fixes the ids of its result up front and copies the rows a page
//! at a time.
//!
//! A file under 8 MiB (1 MiB gzip-compressed) is small enough to be loaded by the first verb
//! of any kind. Until a bigger one is loaded, `search`, `count` and `stream` scan the file: it
//! is parsed one row at a time (line by line for jsonl, the csv reader's records for csv/tsv,
//! through a streaming gzip decoder) and each row is evaluated by `CompiledQuery`, so memory holds the current row, the
//! ids seen (a repeated id is a `DataFormat` error, as when loading) and the result. A json
//! array is the exception: it is parsed whole for each scan. `stream` scans in a producer
//! thread feeding the cursor's bounded channel. Creates that append do so without loading: their
//! duplicate check uses a set of the file's ids, built by one scan when first needed and kept up
//! to date by later creates.
//!
//! A scan reads the file as it is when the verb starts (through its own descriptor, up to the
//! length seen then), so appends and rewrites by this store do not disturb a running stream.
//! A malformed file opens fine and fails, naming the file and line, on the first verb that
//! reads it.

mod append;
mod layout;

use std::collections::HashSet;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use flate2::write::GzEncoder;
use parking_lot::{
    MappedRwLockReadGuard, MappedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

use crate::cursor::{Cursor, PageSender, Pager};
use crate::error::{Error, Result};
use crate::memory::{self, Index, Undo};
use crate::query::{CompiledQuery, QuerySpec};
use crate::row::Row;
use crate::store::Store;

use layout::{Format, IdSet, Layout, RowReader};

enum State {
    /// The rows are on disk only. `ids` holds the file's ids once an appending create needed
    /// them.
    OnDisk {
        ids: Option<IdSet>,
    },
    Loaded(Index),
}

/// A file smaller than this (on disk; an eighth of it for gzip) is loaded by the first verb
/// that reads it, even a search: its index costs at most ~100 MB, and scanning it again for
/// every search would cost far more time than that memory.
const LOAD_BELOW: u64 = 8 << 20;

pub struct FileStore {
    layout: Layout,
    /// Files at least this big are scanned rather than loaded by search, count and stream.
    load_below: u64,
    state: RwLock<State>,
    closed: AtomicBool,
    tmp_counter: AtomicU64,
}

fn config(parameter: &str, message: impl std::fmt::Display) -> Error {
    Error::Config {
        parameter: parameter.to_string(),
        message: message.to_string(),
    }
}

impl FileStore {
    /// Checks the config and opens the store without reading the file (see the module doc).
    /// A missing or empty file is an empty store.
    pub fn open(path: &str, format: &str, compression: Option<&str>) -> Result<FileStore> {
        let format = Format::parse(format).ok_or_else(|| {
            config(
                "format",
                format!("unsupported format {format:?}; expected json, jsonl, csv or tsv"),
            )
        })?;
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
        let layout = Layout {
            path: PathBuf::from(path),
            format,
            gzip,
        };
        // The rows are read later, but a path that cannot be read fails now, as it did when
        // opening loaded the file.
        match File::open(&layout.path).and_then(|f| f.metadata()) {
            Ok(m) if m.is_dir() => return Err(layout.io_err("read", "is a directory")),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(layout.io_err("read", e)),
        }
        let load_below = if gzip { LOAD_BELOW / 8 } else { LOAD_BELOW };
        Ok(FileStore {
            layout,
            load_below,
            state: RwLock::new(State::OnDisk { ids: None }),
            closed: AtomicBool::new(false),
            tmp_counter: AtomicU64::new(0),
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed("FileStore".into()))
        } else {
            Ok(())
        }
    }

    fn read_state(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.check_open()?;
        let g = self.state.read();
        // A close that raced the lock wins.
        self.check_open()?;
        Ok(g)
    }

    fn write_state(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.check_open()?;
        let g = self.state.write();
        self.check_open()?;
        Ok(g)
    }

    /// Reads the whole file into an index.
    fn load_index(&self) -> Result<Index> {
        let mut reader = self.layout.reader(false)?;
        let mut index = Index::new();
        while let Some(row) = reader.next_row()? {
            match index.entry(row.id.clone()) {
                indexmap::map::Entry::Occupied(_) => return Err(reader.duplicate(&row.id)),
                indexmap::map::Entry::Vacant(slot) => {
                    slot.insert(row);
                }
            }
        }
        Ok(index)
    }

    /// The index, loading it first if the rows are still on disk.
    fn index_mut(&self) -> Result<MappedRwLockWriteGuard<'_, Index>> {
        let mut g = self.write_state()?;
        if let State::OnDisk { .. } = &*g {
            *g = State::Loaded(self.load_index()?);
        }
        RwLockWriteGuard::try_map(g, |s| match s {
            State::Loaded(index) => Some(index),
            State::OnDisk { .. } => None,
        })
        .map_err(|_| Error::Other("the file store's index did not load".into()))
    }

    fn index(&self) -> Result<MappedRwLockReadGuard<'_, Index>> {
        loop {
            let g = self.read_state()?;
            match RwLockReadGuard::try_map(g, |s| match s {
                State::Loaded(index) => Some(index),
                State::OnDisk { .. } => None,
            }) {
                Ok(index) => return Ok(index),
                Err(g) => {
                    drop(g);
                    drop(self.index_mut()?);
                }
            }
        }
    }

    /// The loaded index (read-locked), or a reader over the file when the rows are on disk
    /// and the file is too big to load.
    fn index_or_scan(
        &self,
    ) -> Result<std::result::Result<MappedRwLockReadGuard<'_, Index>, RowReader>> {
        let g = self.read_state()?;
        let g = match RwLockReadGuard::try_map(g, |s| match s {
            State::Loaded(index) => Some(index),
            State::OnDisk { .. } => None,
        }) {
            Ok(index) => return Ok(Ok(index)),
            Err(g) => g,
        };
        let size = std::fs::metadata(&self.layout.path).map_or(0, |m| m.len());
        if size < self.load_below {
            drop(g);
            return Ok(Ok(self.index()?));
        }
        // The reader is opened under the lock, so it sees no half-done append.
        Ok(Err(self.layout.reader(true)?))
    }

    /// Whether a create on `state` appends to the file without loading it.
    fn appends_unloaded(&self, state: &State) -> bool {
        self.layout.appends() && matches!(state, State::OnDisk { .. })
    }

    /// The ids in the file, scanning it the first time. Only for a state still on disk.
    fn file_ids<'a>(&self, state: &'a mut State) -> Result<&'a mut IdSet> {
        let State::OnDisk { ids } = state else {
            return Err(Error::Other("the file store's index is loaded".into()));
        };
        if ids.is_none() {
            let mut reader = self.layout.reader(true)?;
            while reader.next_row()?.is_some() {}
            *ids = Some(reader.into_ids());
        }
        Ok(ids.get_or_insert_with(IdSet::new))
    }

    /// Appends `rows` (already checked against `ids`) and records their ids; false when the
    /// file needs a rewrite to take them (nothing was written).
    fn append_unloaded(&self, ids: &mut IdSet, rows: &[&Row]) -> Result<bool> {
        if !self.layout.append(rows)? {
            return Ok(false);
        }
        ids.extend(rows.iter().map(|r| Box::<str>::from(r.id.as_str())));
        Ok(true)
    }

    fn tmp_path(&self) -> PathBuf {
        let name = self
            .layout
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "store".into());
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.dir()
            .join(format!(".{name}.tmp-{}-{n}", std::process::id()))
    }

    fn dir(&self) -> PathBuf {
        match self.layout.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Writes the whole index to a temp file beside the target, then renames it over.
    fn rewrite(&self, rows: &Index) -> Result<()> {
        let l = &self.layout;
        std::fs::create_dir_all(self.dir()).map_err(|e| l.io_err("write", e))?;
        let tmp = self.tmp_path();
        let result = self
            .write_to(&tmp, rows)
            .and_then(|()| std::fs::rename(&tmp, &l.path).map_err(|e| l.io_err("write", e)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn write_to(&self, tmp: &Path, rows: &Index) -> Result<()> {
        let l = &self.layout;
        let file = File::create(tmp).map_err(|e| l.io_err("write", e))?;
        let mut buf = BufWriter::with_capacity(1 << 16, file);
        let written = if l.gzip {
            let mut gz = GzEncoder::new(&mut buf, flate2::Compression::default());
            l.serialize(rows, &mut gz)
                .and_then(|()| gz.finish().map(|_| ()))
        } else {
            l.serialize(rows, &mut buf)
        };
        written
            .and_then(|()| buf.into_inner().map_err(|e| e.into_error()))
            // Durable before the rename makes it visible: a crash leaves the old file or the
            // whole new one.
            .and_then(|f| f.sync_all())
            .map_err(|e| l.io_err("write", e))
    }

    /// Applies a verb to the index (loading it first) and persists it; if the file write
    /// fails the index is put back, so memory and file never disagree.
    fn mutate<R>(
        &self,
        appends: bool,
        op: impl FnOnce(&mut Index, &mut Undo) -> Result<R>,
    ) -> Result<R> {
        let mut g = self.index_mut()?;
        let mut undo = Undo::new(&g);
        let out = op(&mut g, &mut undo)?;
        if !undo.changed(&g) {
            return Ok(out);
        }
        let appended = if appends && self.layout.appends() {
            let new_rows: Vec<&Row> = g.values().skip(undo.len_before()).collect();
            self.layout.append(&new_rows)
        } else {
            Ok(false)
        };
        let written = match appended {
            Ok(true) => Ok(()),
            Ok(false) => self.rewrite(&g),
            Err(e) => Err(e),
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
        &self.layout.path
    }
}

/// `search` over a file scan: `apply_owned` stops reading once an unsorted result is full.
fn scan_search(reader: &mut RowReader, q: &CompiledQuery) -> Result<Vec<Row>> {
    let mut failed = None;
    let rows = std::iter::from_fn(|| match reader.next_row() {
        Ok(row) => row,
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    let out = q.apply_owned(rows)?;
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

impl FileStore {
    /// Feeds the unsorted result of a file scan to `tx` in pages of `batch_size`.
    fn produce(
        &self,
        mut reader: RowReader,
        q: &CompiledQuery,
        batch_size: usize,
        tx: &PageSender,
    ) -> Result<()> {
        let mut pager = Pager::new(q.offset(), q.limit(), batch_size);
        while pager.wants_more() {
            let Some(row) = reader.next_row()? else {
                break;
            };
            if !q.matches(&row)? {
                continue;
            }
            if let Some(full) = pager.push(q.project_row(row)) {
                self.check_open()?;
                // A failed send means the cursor was dropped or closed: stop reading.
                if !tx.blocking_send(full) {
                    return Ok(());
                }
            }
        }
        if let Some(last) = pager.finish() {
            self.check_open()?;
            tx.blocking_send(last);
        }
        Ok(())
    }

    /// Feeds the result `ids` (fixed when the stream started) in pages copied from the index
    /// under the read lock one page at a time: a row deleted since is left out, a row
    /// updated since comes as it is now.
    fn produce_from_index(
        &self,
        ids: &[String],
        q: &CompiledQuery,
        batch_size: usize,
        tx: &PageSender,
    ) -> Result<()> {
        for chunk in ids.chunks(batch_size) {
            let page: Vec<Row> = {
                let g = self.read_state()?;
                let State::Loaded(index) = &*g else {
                    return Err(Error::Other("the file store's index was dropped".into()));
                };
                chunk
                    .iter()
                    .filter_map(|id| index.get(id))
                    .map(|r| q.project(r))
                    .collect()
            };
            if !page.is_empty() && !tx.blocking_send(page) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// A cursor fed by `produce` on its own thread; an error ends the stream with it.
    fn spawn_producer(
        self: Arc<Self>,
        prefetch: usize,
        produce: impl FnOnce(&FileStore, &PageSender) -> Result<()> + Send + 'static,
    ) -> Result<Cursor> {
        let (tx, cursor) = Cursor::channel(prefetch);
        std::thread::Builder::new()
            .stack_size(crate::value::THREAD_STACK)
            .name("dataknobs-file-stream".into())
            .spawn(move || match produce(&self, &tx) {
                Ok(()) => tx.blocking_end(),
                Err(e) => {
                    tx.blocking_send_result(Err(e));
                }
            })
            .map_err(|e| Error::Other(format!("cannot start stream producer: {e}")))?;
        Ok(cursor)
    }
}

impl Store for FileStore {
    fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        let mut g = self.write_state()?;
        if self.appends_unloaded(&g) {
            let ids = self.file_ids(&mut g)?;
            let mut batch: HashSet<&str> = HashSet::with_capacity(rows.len());
            for r in &rows {
                if ids.contains(r.id.as_str()) || !batch.insert(r.id.as_str()) {
                    return Err(Error::Duplicate(r.id.clone()));
                }
            }
            let refs: Vec<&Row> = rows.iter().collect();
            if self.append_unloaded(ids, &refs)? {
                return Ok(rows.into_iter().map(|r| r.id).collect());
            }
        }
        drop(g);
        self.mutate(true, |g, u| memory::create_batch(g, rows, u))
    }

    fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        let mut g = self.write_state()?;
        if self.appends_unloaded(&g) {
            let ids = self.file_ids(&mut g)?;
            let mut batch: HashSet<&str> = HashSet::with_capacity(rows.len());
            let stored: Vec<bool> = rows
                .iter()
                .map(|r| !ids.contains(r.id.as_str()) && batch.insert(r.id.as_str()))
                .collect();
            let refs: Vec<&Row> = rows
                .iter()
                .zip(&stored)
                .filter_map(|(r, s)| s.then_some(r))
                .collect();
            if self.append_unloaded(ids, &refs)? {
                return Ok(stored);
            }
        }
        drop(g);
        self.mutate(true, |g, u| Ok(memory::create_missing(g, rows, u)))
    }

    fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        self.mutate(false, |g, u| Ok(memory::upsert_batch(g, rows, u)))
    }

    fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        self.mutate(false, |g, u| Ok(memory::update_batch(g, rows, u)))
    }

    fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>> {
        Ok(memory::read_batch(&*self.index()?, ids))
    }

    fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        Ok(memory::exists_batch(&*self.index()?, ids))
    }

    fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        self.mutate(false, |g, u| Ok(memory::delete_batch(g, ids, u)))
    }

    fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>> {
        let q = CompiledQuery::new(spec)?;
        match self.index_or_scan()? {
            Ok(index) => memory::search(&index, spec),
            Err(mut reader) => scan_search(&mut reader, &q),
        }
    }

    fn count(&self, spec: &QuerySpec) -> Result<usize> {
        let q = CompiledQuery::new(spec)?;
        match self.index_or_scan()? {
            Ok(index) => memory::count(&index, spec),
            Err(mut reader) => {
                let mut n = 0;
                while let Some(row) = reader.next_row()? {
                    if q.matches(&row)? {
                        n += 1;
                    }
                }
                Ok(n)
            }
        }
    }

    fn clear(&self) -> Result<usize> {
        self.mutate(false, |g, u| Ok(memory::clear(g, u)))
    }

    fn for_each_match(&self, spec: &QuerySpec, each: &mut dyn FnMut(&Row)) -> Result<()> {
        let q = crate::aggregate::condition_of(spec)?;
        match self.index_or_scan()? {
            Ok(index) => memory::for_each_match(&index, spec, each),
            // A file too big to load is read one row at a time, as a count reads it.
            Err(mut reader) => {
                while let Some(row) = reader.next_row()? {
                    if q.matches(&row)? {
                        each(&row);
                    }
                }
                Ok(())
            }
        }
    }

    fn stream(
        self: Arc<Self>,
        spec: QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<Cursor> {
        let batch_size = batch_size.max(1);
        let q = CompiledQuery::new(&spec)?;
        let source = match self.index_or_scan()? {
            // Only the ids are copied up front; the rows are copied a page at a time.
            Ok(index) => Ok(memory::result_rows(&index, &q)?
                .into_iter()
                .map(|r| r.id.clone())
                .collect::<Vec<String>>()),
            Err(reader) => Err(reader),
        };
        let mut reader = match source {
            Ok(ids) => {
                return self.spawn_producer(prefetch, move |store, tx| {
                    store.produce_from_index(&ids, &q, batch_size, tx)
                })
            }
            Err(reader) => reader,
        };
        if q.has_sort() {
            // A sort needs every match before the first page.
            let rows = scan_search(&mut reader, &q)?;
            return memory::stream_rows(rows, batch_size, prefetch);
        }
        self.spawn_producer(prefetch, move |store, tx| {
            store.produce(reader, &q, batch_size, tx)
        })
    }

    fn close(&self) -> Result<()> {
        if !self.closed.swap(true, Ordering::AcqRel) {
            // Frees the rows (or the ids) at once.
            *self.state.write() = State::OnDisk { ids: None };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
