//! The in-memory store, and the index the file store keeps in memory. Storage order is
//! first-insertion order; replacing a row keeps its place.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indexmap::IndexMap;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::codec;
use crate::cursor::Cursor;
use crate::error::{detail, Error, Result};
use crate::query::{CompiledQuery, QuerySpec};
use crate::row::Row;
use crate::store::Store;

pub(crate) type Index = IndexMap<String, Row>;

/// What a mutation displaced, so that a store whose write to disk failed can put the index
/// back exactly as it was.
#[derive(Default)]
pub(crate) struct Undo {
    len_before: usize,
    /// (position, previous row) for rows replaced in place, in the order replaced.
    replaced: Vec<(usize, Row)>,
    /// (original position, id, row) for removed rows, in ascending position.
    removed: Vec<(usize, String, Row)>,
    cleared: Option<Index>,
}

impl Undo {
    pub(crate) fn new(index: &Index) -> Undo {
        Undo {
            len_before: index.len(),
            ..Undo::default()
        }
    }

    /// Whether the mutation changed anything.
    pub(crate) fn changed(&self, index: &Index) -> bool {
        index.len() != self.len_before
            || !self.replaced.is_empty()
            || !self.removed.is_empty()
            || self.cleared.as_ref().is_some_and(|c| !c.is_empty())
    }

    pub(crate) fn len_before(&self) -> usize {
        self.len_before
    }

    /// Restores `index` to its state before the mutation.
    pub(crate) fn rollback(self, index: &mut Index) {
        if let Some(old) = self.cleared {
            *index = old;
            return;
        }
        for (pos, row) in self.replaced.into_iter().rev() {
            if let Some((_, slot)) = index.get_index_mut(pos) {
                *slot = row;
            }
        }
        index.truncate(self.len_before);
        if self.removed.is_empty() {
            return;
        }
        // Merge the survivors and the removed rows back by original position.
        let survivors = std::mem::take(index);
        let mut out = Index::with_capacity(survivors.len() + self.removed.len());
        let mut removed = self.removed.into_iter().peekable();
        for (id, row) in survivors {
            while let Some((_, rid, rrow)) = removed.next_if(|(pos, _, _)| *pos <= out.len()) {
                out.insert(rid, rrow);
            }
            out.insert(id, row);
        }
        for (_, rid, rrow) in removed {
            out.insert(rid, rrow);
        }
        *index = out;
    }
}

// The verbs on a bare index. Each either fails before changing anything or records what it
// changed in `undo`.

pub(crate) fn create_batch(
    index: &mut Index,
    rows: Vec<Row>,
    undo: &mut Undo,
) -> Result<Vec<String>> {
    // New rows only ever append, so on a duplicate truncating back undoes the batch: one hash
    // per row instead of a separate duplicate pass.
    let _ = undo;
    let len_before = index.len();
    index.reserve(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    for r in rows {
        match index.entry(r.id.clone()) {
            indexmap::map::Entry::Occupied(_) => {
                index.truncate(len_before);
                return Err(Error::Duplicate(r.id));
            }
            indexmap::map::Entry::Vacant(slot) => {
                ids.push(r.id.clone());
                slot.insert(r);
            }
        }
    }
    Ok(ids)
}

pub(crate) fn create_missing(index: &mut Index, rows: Vec<Row>, undo: &mut Undo) -> Vec<bool> {
    let _ = undo;
    index.reserve(rows.len());
    rows.into_iter()
        .map(|r| {
            if index.contains_key(&r.id) {
                false
            } else {
                index.insert(r.id.clone(), r);
                true
            }
        })
        .collect()
}

pub(crate) fn upsert_batch(index: &mut Index, rows: Vec<Row>, undo: &mut Undo) -> Vec<String> {
    index.reserve(rows.len());
    rows.into_iter()
        .map(|r| {
            let id = r.id.clone();
            match index.get_full_mut(&r.id) {
                Some((pos, _, slot)) => undo.replaced.push((pos, std::mem::replace(slot, r))),
                None => {
                    index.insert(id.clone(), r);
                }
            }
            id
        })
        .collect()
}

pub(crate) fn update_batch(index: &mut Index, rows: Vec<Row>, undo: &mut Undo) -> Vec<bool> {
    rows.into_iter()
        .map(|r| match index.get_full_mut(&r.id) {
            Some((pos, _, slot)) => {
                undo.replaced.push((pos, std::mem::replace(slot, r)));
                true
            }
            None => false,
        })
        .collect()
}

pub(crate) fn delete_batch(index: &mut Index, ids: &[String], undo: &mut Undo) -> Vec<bool> {
    // Mark first (a repeated id deletes once), then drop the marked rows in one pass so a
    // large batch costs O(n), not O(n) per id.
    let mut doomed: HashSet<usize> = HashSet::with_capacity(ids.len());
    let out: Vec<bool> = ids
        .iter()
        .map(|id| index.get_index_of(id).is_some_and(|pos| doomed.insert(pos)))
        .collect();
    if doomed.is_empty() {
        return out;
    }
    if doomed.len() <= 8 {
        let mut positions: Vec<usize> = doomed.into_iter().collect();
        positions.sort_unstable();
        // Remove from the back so earlier positions stay valid.
        let mut removed = Vec::with_capacity(positions.len());
        for &pos in positions.iter().rev() {
            if let Some((id, row)) = index.shift_remove_index(pos) {
                removed.push((pos, id, row));
            }
        }
        removed.reverse();
        undo.removed = removed;
    } else {
        let old = std::mem::take(index);
        let mut kept = Index::with_capacity(old.len() - doomed.len());
        for (pos, (id, row)) in old.into_iter().enumerate() {
            if doomed.contains(&pos) {
                undo.removed.push((pos, id, row));
            } else {
                kept.insert(id, row);
            }
        }
        *index = kept;
    }
    undo.len_before = index.len();
    out
}

pub(crate) fn clear(index: &mut Index, undo: &mut Undo) -> usize {
    let old = std::mem::take(index);
    let n = old.len();
    undo.cleared = Some(old);
    n
}

pub(crate) fn read_batch(index: &Index, ids: &[String]) -> Vec<Option<Row>> {
    ids.iter().map(|id| index.get(id).cloned()).collect()
}

pub(crate) fn exists_batch(index: &Index, ids: &[String]) -> Vec<bool> {
    ids.iter().map(|id| index.contains_key(id)).collect()
}

/// The rows an `id = x` / `id in [...]` condition names, in storage order, or None when the
/// condition is not of that shape.
fn id_lookup<'a>(index: &'a Index, q: &CompiledQuery) -> Option<Vec<&'a Row>> {
    let ids = q.id_candidates()?;
    let mut positions: Vec<usize> = ids
        .iter()
        .filter_map(|id| index.get_index_of(*id))
        .collect();
    positions.sort_unstable();
    positions.dedup();
    Some(
        positions
            .into_iter()
            .filter_map(|p| index.get_index(p).map(|(_, r)| r))
            .collect(),
    )
}

pub(crate) fn search(index: &Index, spec: &QuerySpec) -> Result<Vec<Row>> {
    let q = CompiledQuery::new(spec)?;
    match id_lookup(index, &q) {
        Some(rows) => q.apply(rows),
        None => q.apply(index.values()),
    }
}

/// The rows of `q`'s result over `index` (filter, sort, offset, limit; not projected), in
/// result order, without cloning any: a stream can fix its result and copy it page by page.
pub(crate) fn result_rows<'a>(index: &'a Index, q: &CompiledQuery) -> Result<Vec<&'a Row>> {
    let mut hits = Vec::new();
    match id_lookup(index, q) {
        Some(rows) => hits = rows,
        None => {
            for r in index.values() {
                if q.matches(r)? {
                    hits.push(r);
                }
            }
        }
    }
    if q.has_sort() {
        let window = q.window(&hits);
        return Ok(window.into_iter().map(|i| hits[i]).collect());
    }
    let end = q
        .limit()
        .map_or(hits.len(), |l| q.offset().saturating_add(l).min(hits.len()));
    Ok(hits.drain(q.offset().min(end)..end).collect())
}

/// Hands each row of `index` matching `spec.cond` to `each`, in storage order, uncloned.
pub(crate) fn for_each_match(
    index: &Index,
    spec: &QuerySpec,
    each: &mut dyn FnMut(&Row),
) -> Result<()> {
    let q = crate::aggregate::condition_of(spec)?;
    let rows = match id_lookup(index, &q) {
        Some(rows) => rows,
        None if !q.has_cond() => {
            index.values().for_each(each);
            return Ok(());
        }
        None => {
            for r in index.values() {
                if q.matches(r)? {
                    each(r);
                }
            }
            return Ok(());
        }
    };
    rows.into_iter().for_each(each);
    Ok(())
}

pub(crate) fn count(index: &Index, spec: &QuerySpec) -> Result<usize> {
    let q = CompiledQuery::new(spec)?;
    if !q.has_cond() {
        return Ok(index.len());
    }
    match id_lookup(index, &q) {
        Some(rows) => Ok(rows.len()),
        None => q.count(index.values()),
    }
}

/// Feeds `rows` to a new cursor in pages of `batch_size` from a producer thread.
pub(crate) fn stream_rows(rows: Vec<Row>, batch_size: usize, prefetch: usize) -> Result<Cursor> {
    let batch_size = batch_size.max(1);
    let (tx, cursor) = Cursor::channel(prefetch);
    std::thread::Builder::new()
        .stack_size(crate::value::THREAD_STACK)
        .name("dataknobs-stream".into())
        .spawn(move || {
            let mut it = rows.into_iter();
            loop {
                let page: Vec<Row> = it.by_ref().take(batch_size).collect();
                if page.is_empty() {
                    tx.blocking_end();
                    break;
                }
                // A failed send means the cursor was dropped or closed: stop producing.
                if !tx.blocking_send(page) {
                    break;
                }
            }
        })
        .map_err(|e| Error::Other(format!("cannot start stream producer: {e}")))?;
    Ok(cursor)
}

/// Rows in insertion order, behind a lock; the reference backend.
pub struct MemoryStore {
    rows: RwLock<Index>,
    closed: AtomicBool,
    name: &'static str,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::named("MemoryStore")
    }

    /// A store whose `Error::Closed` names `name`.
    pub(crate) fn named(name: &'static str) -> MemoryStore {
        MemoryStore {
            rows: RwLock::new(Index::new()),
            closed: AtomicBool::new(false),
            name,
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed(self.name.to_string()))
        } else {
            Ok(())
        }
    }

    pub(crate) fn read_guard(&self) -> Result<RwLockReadGuard<'_, Index>> {
        self.check_open()?;
        let g = self.rows.read();
        // A close that raced the lock wins.
        self.check_open()?;
        Ok(g)
    }

    pub(crate) fn write_guard(&self) -> Result<RwLockWriteGuard<'_, Index>> {
        self.check_open()?;
        let g = self.rows.write();
        self.check_open()?;
        Ok(g)
    }

    /// Marks the store closed and frees its rows; true the first time.
    pub(crate) fn mark_closed(&self) -> bool {
        let first = !self.closed.swap(true, Ordering::AcqRel);
        if first {
            self.rows.write().clear();
        }
        first
    }

    fn mutate<R>(&self, f: impl FnOnce(&mut Index, &mut Undo) -> Result<R>) -> Result<R> {
        let mut g = self.write_guard()?;
        let mut undo = Undo::new(&g);
        f(&mut g, &mut undo)
    }

    /// Number of rows stored.
    pub fn len(&self) -> Result<usize> {
        Ok(self.read_guard()?.len())
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Every row as (ids, data, metadata), the last two in tagged JSON, in storage order.
    pub fn export_json(&self) -> Result<(Vec<String>, Vec<String>, Vec<String>)> {
        let g = self.read_guard()?;
        let mut ids = Vec::with_capacity(g.len());
        let mut datas = Vec::with_capacity(g.len());
        let mut metas = Vec::with_capacity(g.len());
        for (id, r) in g.iter() {
            ids.push(id.clone());
            datas.push(codec::encode_map(&r.data));
            metas.push(codec::encode_map(&r.metadata));
        }
        Ok((ids, datas, metas))
    }

    /// Inserts or replaces rows given in tagged JSON. Everything is decoded before anything is
    /// stored, so a malformed entry (`Error::DataFormat` naming it) stores nothing.
    pub fn import_json(
        &self,
        ids: Vec<String>,
        datas: Vec<String>,
        metas: Vec<String>,
    ) -> Result<()> {
        if ids.len() != datas.len() || ids.len() != metas.len() {
            return Err(Error::data_format(
                "json",
                format!(
                    "import_json needs equal lengths, got {} ids, {} data, {} metadata",
                    ids.len(),
                    datas.len(),
                    metas.len()
                ),
            ));
        }
        let mut rows = Vec::with_capacity(ids.len());
        for (i, ((id, d), m)) in ids.into_iter().zip(&datas).zip(&metas).enumerate() {
            let name = |what: &str, e: Error| {
                Error::data_format(
                    "json",
                    format!("record {i} (id {id:?}) {what}: {}", detail(&e)),
                )
            };
            let data = codec::decode_map(d).map_err(|e| name("data", e))?;
            let metadata = codec::decode_map(m).map_err(|e| name("metadata", e))?;
            rows.push(Row { id, data, metadata });
        }
        self.mutate(|index, undo| {
            upsert_batch(index, rows, undo);
            Ok(())
        })
    }
}

/// The message inside an error, without its variant's prefix.
impl Store for MemoryStore {
    fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        self.mutate(|index, undo| create_batch(index, rows, undo))
    }

    fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        self.mutate(|index, undo| Ok(create_missing(index, rows, undo)))
    }

    fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        self.mutate(|index, undo| Ok(upsert_batch(index, rows, undo)))
    }

    fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        self.mutate(|index, undo| Ok(update_batch(index, rows, undo)))
    }

    fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>> {
        Ok(read_batch(&*self.read_guard()?, ids))
    }

    fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        Ok(exists_batch(&*self.read_guard()?, ids))
    }

    fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        self.mutate(|index, undo| Ok(delete_batch(index, ids, undo)))
    }

    fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>> {
        search(&*self.read_guard()?, spec)
    }

    fn count(&self, spec: &QuerySpec) -> Result<usize> {
        count(&*self.read_guard()?, spec)
    }

    fn for_each_match(&self, spec: &QuerySpec, each: &mut dyn FnMut(&Row)) -> Result<()> {
        for_each_match(&*self.read_guard()?, spec, each)
    }

    fn clear(&self) -> Result<usize> {
        self.mutate(|index, undo| Ok(clear(index, undo)))
    }

    fn stream(
        self: Arc<Self>,
        spec: QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<Cursor> {
        let rows = self.search(&spec)?;
        stream_rows(rows, batch_size, prefetch)
    }

    fn close(&self) -> Result<()> {
        self.mark_closed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{drain, row, strs};
    use crate::value::Value;

    #[test]
    fn memory_conformance() {
        crate::testutil::conformance(Arc::new(MemoryStore::new()));
    }

    #[test]
    fn bulk_delete_and_rollback() {
        let mut index = Index::new();
        let mut undo = Undo::new(&index);
        let rows: Vec<Row> = (0..100).map(|n| row(&format!("r{n}"), n)).collect();
        create_batch(&mut index, rows, &mut undo).unwrap();
        let before = index.clone();
        for doomed in [
            vec!["r0", "r50", "r99"],
            (0..100)
                .step_by(3)
                .map(|n| if n % 2 == 0 { "r0" } else { "r1" })
                .collect::<Vec<_>>(),
        ] {
            let _ = doomed;
        }
        for picks in [
            vec![0usize, 50, 99],
            (0..100).step_by(3).collect(),
            (0..100).collect(),
        ] {
            let ids: Vec<String> = picks.iter().map(|n| format!("r{n}")).collect();
            let mut undo = Undo::new(&index);
            let out = delete_batch(&mut index, &ids, &mut undo);
            assert!(out.iter().all(|b| *b));
            assert_eq!(index.len(), 100 - picks.len());
            assert!(undo.changed(&index));
            undo.rollback(&mut index);
            assert_eq!(index, before);
        }
        let mut undo = Undo::new(&index);
        upsert_batch(
            &mut index,
            vec![row("r5", 500), row("new", 1), row("new", 2)],
            &mut undo,
        );
        assert_eq!(index.len(), 101);
        undo.rollback(&mut index);
        assert_eq!(index, before);
        let mut undo = Undo::new(&index);
        clear(&mut index, &mut undo);
        undo.rollback(&mut index);
        assert_eq!(index, before);
    }

    #[test]
    fn export_import() {
        let store = MemoryStore::new();
        let mut r = row("a", 1);
        r.data.insert(
            "when".into(),
            Value::Date(chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default()),
        );
        r.data.insert("f".into(), Value::Float(f64::INFINITY));
        store.create_batch(vec![r.clone(), row("b", 2)]).unwrap();
        let (ids, datas, metas) = store.export_json().unwrap();
        assert_eq!(ids, strs(&["a", "b"]));
        let other = MemoryStore::new();
        other
            .import_json(ids.clone(), datas.clone(), metas.clone())
            .unwrap();
        assert_eq!(other.len().unwrap(), 2);
        assert_eq!(other.read_batch(&strs(&["a"])).unwrap(), vec![Some(r)]);
        let mut bad = datas.clone();
        bad[1] = "{\"x\":".into();
        let third = MemoryStore::new();
        match third.import_json(ids.clone(), bad, metas.clone()) {
            Err(Error::DataFormat { message, .. }) => {
                assert!(message.contains("\"b\""), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(third.len().unwrap(), 0);
        assert!(third.import_json(ids, datas, vec![]).is_err());
    }

    #[test]
    fn stream_stops_when_dropped() {
        let store = Arc::new(MemoryStore::new());
        let rows: Vec<Row> = (0..1000).map(|n| row(&format!("r{n}"), n)).collect();
        store.create_batch(rows).unwrap();
        let cursor = store.clone().stream(QuerySpec::default(), 1, 1).unwrap();
        drop(cursor);
        // The producer sees the closed channel and exits; nothing to assert but no hang.
        let mut c = store.clone().stream(QuerySpec::default(), 300, 0).unwrap();
        c.close();
        let pages = drain(store.stream(QuerySpec::default(), 300, 4).unwrap()).unwrap();
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![300, 300, 300, 100]
        );
    }
}
