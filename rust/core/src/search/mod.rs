//! The Elasticsearch / OpenSearch store: one document per record (doc.rs) in one index, on an
//! HTTP client shared by every store with the same hosts and credentials (client.rs).
//!
//! Writes go through `_bulk` (bulk.rs) with per-item outcomes; reads by id through `_mget`.
//! Queries are narrowed in the query DSL (dsl.rs) and decided by the core's evaluator, then
//! sorted, windowed and projected as every store does. Storage order is id order (UTF-8 byte
//! order of the `id` keyword, which every page is sorted on): the index has no creation order,
//! and a unique sort key lets `search_after` page through any number of hits without the
//! 10,000-hit window. Streams page the same way inside a point in time, so a stream sees the
//! index as it was when it began.

mod bulk;
mod client;
mod config;
pub mod doc;
pub mod dsl;
mod errors;

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use parking_lot::{Mutex, RwLock};
use reqwest::Method;
use serde_json::{json, Value as J};

pub use client::{live_clients, ClientStats, Flavour};
pub use config::SearchSettings;

use bulk::{Action, Item};
use client::{Answer, SharedClient};
use errors::{http_err, reason_of};

use crate::aggregate::{self, AggRow, AggSpec};
use crate::cursor::{Cursor, PageSender, Pager};
use crate::error::{Error, Result};
use crate::memory;
use crate::outcome::{last_of_each, settle, Outcome};
use crate::query::{CompiledQuery, QuerySpec};
use crate::row::Row;
use crate::store::WriteOp;

/// Ids per `_mget` request.
const MGET_IDS: usize = 1000;
/// Hits per page of a search scan (the server's default `max_result_window` is 10,000).
const SCAN_PAGE: usize = 5000;
/// Largest `offset + limit` a sorted search fetches only the window of (`search_window`).
const WINDOW_MAX: usize = 10_000;
/// How long a stream's point in time lives between two pages.
const PIT_KEEP_ALIVE: &str = "5m";
/// Attempts of a read-then-conditional-write when someone else keeps changing the document.
const CAS_ATTEMPTS: usize = 4;

pub struct SearchStore {
    client: RwLock<Option<Arc<SharedClient>>>,
    settings: SearchSettings,
    /// The refresh interval to restore when bulk-load mode ends (None: not in that mode).
    bulk_load: Mutex<Option<J>>,
    /// Whether the index's documents carry `dk_terms` (dsl.rs): true for an index this crate
    /// made, false for one 0.11.0 made (then only filters on `id` narrow, and none are written).
    terms: std::sync::atomic::AtomicBool,
}

/// What `_mget` says of one id.
struct Found {
    seq_no: i64,
    primary_term: i64,
    created_at: Option<String>,
}

impl SearchStore {
    /// Validates the settings, gets the shared client (which asks the server who it is) and
    /// makes the index when it is missing and that is allowed.
    pub async fn open(settings: SearchSettings) -> Result<SearchStore> {
        settings.validate()?;
        let client = SharedClient::acquire(&settings).await?;
        let store = SearchStore {
            client: RwLock::new(Some(Arc::clone(&client))),
            settings,
            bulk_load: Mutex::new(None),
            terms: std::sync::atomic::AtomicBool::new(true),
        };
        store.ensure_index(&client).await?;
        store.read_mapping(&client).await?;
        Ok(store)
    }

    fn index(&self) -> &str {
        &self.settings.index
    }

    fn what(&self) -> String {
        format!("index {:?}", self.settings.index)
    }

    fn client(&self) -> Result<Arc<SharedClient>> {
        self.client
            .read()
            .clone()
            .ok_or_else(|| Error::Closed("elasticsearch store".into()))
    }

    pub fn flavour(&self) -> Result<Flavour> {
        Ok(self.client()?.flavour)
    }

    async fn ensure_index(&self, c: &SharedClient) -> Result<()> {
        let head = c
            .send(Method::HEAD, &format!("/{}", self.index()), None)
            .await?;
        match head.status {
            200 => return Ok(()),
            404 if self.settings.create_index => {}
            404 => {
                return Err(errors::connection_err(format!(
                    "{} does not exist (and create_index is off)",
                    self.what()
                )))
            }
            s => return Err(http_err("connect", &self.what(), s, &head.body)),
        }
        let body = json!({
            "settings": self.settings.settings.clone()
                .unwrap_or_else(|| json!({"number_of_shards": 1, "number_of_replicas": 0})),
            "mappings": self.settings.mappings.clone().unwrap_or_else(dsl::default_mappings),
        });
        let a = c
            .send(
                Method::PUT,
                &format!("/{}", self.index()),
                Some(json_body(&body)),
            )
            .await?;
        if a.ok() || (a.status == 400 && reason_of(&a.body).contains("already_exists")) {
            Ok(())
        } else {
            Err(http_err("create_index", &self.what(), a.status, &a.body))
        }
    }

    /// Whether an answer says the index does not exist (a reader opened on a missing index
    /// sees an empty one).
    fn missing_index(a: &Answer) -> bool {
        a.status == 404 && reason_of(&a.body).contains("index_not_found")
    }

    async fn refresh_after_write(&self, c: &SharedClient) -> Result<()> {
        if !self.settings.refresh || self.bulk_load.lock().is_some() {
            return Ok(());
        }
        self.refresh_now(c).await
    }

    async fn refresh_now(&self, c: &SharedClient) -> Result<()> {
        let a = c
            .send(Method::POST, &format!("/{}/_refresh", self.index()), None)
            .await?;
        if a.ok() || Self::missing_index(&a) {
            Ok(())
        } else {
            Err(http_err("refresh", &self.what(), a.status, &a.body))
        }
    }

    async fn bulk(&self, c: &SharedClient, actions: &[Action<'_>]) -> Vec<Item> {
        let s = &self.settings;
        bulk::run(
            c,
            self.index(),
            actions,
            s.bulk_bytes,
            s.bulk_docs,
            s.max_concurrency,
            self.has_terms(),
        )
        .await
    }

    // --- reads by id ------------------------------------------------------------------------

    /// `_mget` of `ids` (in chunks, concurrently); each doc object's raw text in input order.
    /// `params` selects what the server returns (`_source=false`, `_source_includes=...`).
    async fn mget<T, F>(
        &self,
        c: &SharedClient,
        ids: &[String],
        params: &str,
        each: F,
    ) -> Result<Vec<T>>
    where
        F: Fn(&str, doc::Hit<'_>) -> Result<T> + Sync,
        T: Send,
    {
        let path = format!("/{}/_mget{params}", self.index());
        let each = &each;
        // Chunks go by index: closures over borrowed slices trip rustc's higher-ranked
        // lifetime checks once the future must be Send.
        let n_chunks = ids.len().div_ceil(MGET_IDS);
        let pages: Vec<Vec<T>> = stream::iter(0..n_chunks)
            .map(|k| {
                let path = &path;
                let chunk = &ids[k * MGET_IDS..((k + 1) * MGET_IDS).min(ids.len())];
                async move {
                    let a = c
                        .send(
                            Method::POST,
                            path,
                            Some(json_body(&json!({ "ids": chunk }))),
                        )
                        .await?;
                    if Self::missing_index(&a) {
                        return chunk
                            .iter()
                            .map(|id| each(id, doc::Hit::default()))
                            .collect::<Result<Vec<T>>>();
                    }
                    if !a.ok() {
                        return Err(http_err("read", &self.what(), a.status, &a.body));
                    }
                    let text = a.text()?;
                    let docs = doc::member(text, "docs")?
                        .ok_or_else(|| Error::operation("read", "_mget answer without docs"))?;
                    let mut out = Vec::with_capacity(chunk.len());
                    let mut fail = None;
                    let mut k = 0;
                    crate::codec::scan_array(docs, |raw| {
                        if fail.is_some() {
                            return;
                        }
                        let r = doc::scan_hit(raw).and_then(|hit| match chunk.get(k) {
                            Some(id) => each(id, hit),
                            None => Err(Error::operation(
                                "read",
                                "_mget answered more docs than asked",
                            )),
                        });
                        k += 1;
                        match r {
                            Ok(v) => out.push(v),
                            Err(e) => fail = Some(e),
                        }
                    })?;
                    if let Some(e) = fail {
                        return Err(e);
                    }
                    if out.len() != chunk.len() {
                        return Err(Error::operation(
                            "read",
                            format!("_mget answered {} docs for {} ids", out.len(), chunk.len()),
                        ));
                    }
                    Ok(out)
                }
            })
            .buffered(self.settings.max_concurrency)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    pub async fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>> {
        let c = self.client()?;
        let source = self.what();
        self.mget(&c, ids, "", |id, hit| {
            if hit.found != Some(true) || doc::unsafe_id(id).is_some() {
                return Ok(None);
            }
            let raw = hit.source.unwrap_or("{}");
            doc::decode_source(id, raw, &source).map(Some)
        })
        .await
    }

    pub async fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        let c = self.client()?;
        self.mget(&c, ids, "?_source=false", |id, hit| {
            Ok(hit.found == Some(true) && doc::unsafe_id(id).is_none())
        })
        .await
    }

    /// Version and creation time of each id that exists.
    async fn versions(&self, c: &SharedClient, ids: &[String]) -> Result<Vec<Option<Found>>> {
        self.mget(c, ids, "?_source_includes=created_at", |_, hit| {
            if hit.found != Some(true) {
                return Ok(None);
            }
            let created_at = match hit.source.map(|s| doc::member(s, "created_at")) {
                Some(Ok(Some(raw))) => serde_json::from_str::<String>(raw).ok(),
                _ => None,
            };
            Ok(Some(Found {
                seq_no: hit.seq_no.unwrap_or(0),
                primary_term: hit.primary_term.unwrap_or(1),
                created_at,
            }))
        })
        .await
    }

    // --- writes -----------------------------------------------------------------------------

    /// Fails closed: an id already stored or repeated in `rows` gives `Error::Duplicate` and
    /// nothing is written. A create that still finds its id taken (a race) or fails ends the
    /// batch with `Error::Partial` listing the ids written and not.
    pub async fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        let c = self.client()?;
        doc::check_ids(rows.iter().map(|r| r.id.as_str()))?;
        let mut seen = HashSet::with_capacity(rows.len());
        if let Some(r) = rows.iter().find(|r| !seen.insert(r.id.as_str())) {
            return Err(Error::Duplicate(r.id.clone()));
        }
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        // One record needs no check: its `create` op is one, and writes nothing if taken.
        if rows.len() > 1 {
            let existing = self.exists_batch(&ids).await?;
            if let Some(i) = existing.iter().position(|e| *e) {
                return Err(Error::Duplicate(ids[i].clone()));
            }
        }
        let now = doc::now_text();
        let actions: Vec<Action<'_>> = rows
            .iter()
            .map(|row| Action::Create { row, now: &now })
            .collect();
        let outcomes = created(self.bulk(&c, &actions).await);
        let refreshed = self.refresh_after_write(&c).await;
        // What was written is the answer even when the refresh after it failed.
        settle("create_batch", &ids, outcomes, true)?;
        refreshed?;
        Ok(ids)
    }

    /// Stores the rows whose id is absent (the first of a repeated id); true where stored.
    pub async fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        let c = self.client()?;
        doc::check_ids(rows.iter().map(|r| r.id.as_str()))?;
        let mut seen = HashSet::with_capacity(rows.len());
        let first: Vec<bool> = rows.iter().map(|r| seen.insert(r.id.as_str())).collect();
        let now = doc::now_text();
        let sent: Vec<usize> = (0..rows.len()).filter(|&i| first[i]).collect();
        let actions: Vec<Action<'_>> = sent
            .iter()
            .map(|&i| Action::Create {
                row: &rows[i],
                now: &now,
            })
            .collect();
        let got = created(self.bulk(&c, &actions).await);
        let mut outcomes: Vec<Outcome> = (0..rows.len()).map(|_| Ok(false)).collect();
        for (&i, o) in sent.iter().zip(got) {
            outcomes[i] = o;
        }
        let refreshed = self.refresh_after_write(&c).await;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let flags = settle("create_missing", &ids, outcomes, false)?;
        refreshed?;
        Ok(flags)
    }

    /// Insert or replace each row (the last of a repeated id wins).
    pub async fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        let c = self.client()?;
        doc::check_ids(rows.iter().map(|r| r.id.as_str()))?;
        let last = last_of_each(&rows);
        let now = doc::now_text();
        let sent: Vec<usize> = (0..rows.len()).filter(|&i| last[i]).collect();
        let actions: Vec<Action<'_>> = sent
            .iter()
            .map(|&i| Action::Index {
                row: &rows[i],
                created_at: &now,
                now: &now,
            })
            .collect();
        let got = self.bulk(&c, &actions).await;
        let mut outcomes: Vec<Outcome> = (0..rows.len()).map(|_| Ok(true)).collect();
        for (&i, item) in sent.iter().zip(got) {
            outcomes[i] = match item {
                Item::Status(200..=299) => Ok(true),
                other => Err(item_error(other)),
            };
        }
        let refreshed = self.refresh_after_write(&c).await;
        let ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
        settle("upsert_batch", &ids, outcomes, false)?;
        refreshed?;
        Ok(ids)
    }

    /// Replaces the rows whose id exists (keeping their `created_at`); false where missing.
    /// Each replace is conditional on the version read, so a record deleted meanwhile is not
    /// brought back; one changed meanwhile is read again and replaced.
    pub async fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        let c = self.client()?;
        let mut outcomes: Vec<Outcome> = (0..rows.len()).map(|_| Ok(false)).collect();
        let mut todo: Vec<usize> = (0..rows.len())
            .filter(|&i| doc::unsafe_id(&rows[i].id).is_none())
            .collect();
        let now = doc::now_text();
        for attempt in 0..CAS_ATTEMPTS {
            if todo.is_empty() {
                break;
            }
            let ids: Vec<String> = todo.iter().map(|&i| rows[i].id.clone()).collect();
            let found = self.versions(&c, &ids).await?;
            let mut sent = Vec::new();
            let mut actions = Vec::new();
            for (&i, f) in todo.iter().zip(&found) {
                if let Some(f) = f {
                    sent.push(i);
                    actions.push(Action::Replace {
                        row: &rows[i],
                        created_at: f.created_at.as_deref().unwrap_or(&now),
                        now: &now,
                        seq_no: f.seq_no,
                        primary_term: f.primary_term,
                    });
                } else {
                    outcomes[i] = Ok(false);
                }
            }
            let got = self.bulk(&c, &actions).await;
            let mut again = Vec::new();
            for (&i, item) in sent.iter().zip(got) {
                outcomes[i] = match item {
                    Item::Status(200..=299) => Ok(true),
                    Item::Status(409) if attempt + 1 < CAS_ATTEMPTS => {
                        again.push(i);
                        Ok(false)
                    }
                    Item::Status(409) => Err(Error::operation(
                        "update_batch",
                        format!(
                            "document {:?} kept changing under {CAS_ATTEMPTS} conditional writes; \
                             try again",
                            rows[i].id
                        ),
                    )),
                    other => Err(item_error(other)),
                };
            }
            todo = again;
        }
        let refreshed = self.refresh_after_write(&c).await;
        let ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
        let flags = settle("update_batch", &ids, outcomes, false)?;
        refreshed?;
        Ok(flags)
    }

    pub async fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        let c = self.client()?;
        let sent: Vec<usize> = (0..ids.len())
            .filter(|&i| doc::unsafe_id(&ids[i]).is_none())
            .collect();
        let actions: Vec<Action<'_>> = sent
            .iter()
            .map(|&i| Action::Delete { id: &ids[i] })
            .collect();
        let got = self.bulk(&c, &actions).await;
        let mut outcomes: Vec<Outcome> = (0..ids.len()).map(|_| Ok(false)).collect();
        for (&i, item) in sent.iter().zip(got) {
            outcomes[i] = match item {
                Item::Status(200..=299) => Ok(true),
                Item::Status(404) => Ok(false),
                other => Err(item_error(other)),
            };
        }
        let refreshed = self.refresh_after_write(&c).await;
        let flags = settle("delete_batch", ids, outcomes, false)?;
        refreshed?;
        Ok(flags)
    }

    /// A transaction's batches, one after another (the engine has no transactions).
    pub async fn apply(&self, ops: Vec<WriteOp>) -> Result<usize> {
        let mut affected = 0;
        for op in ops {
            affected += match op {
                WriteOp::Create(rows) => self.create_batch(rows).await?.len(),
                WriteOp::Upsert(rows) => self.upsert_batch(rows).await?.len(),
                WriteOp::Delete(ids) => self
                    .delete_batch(&ids)
                    .await?
                    .into_iter()
                    .filter(|d| *d)
                    .count(),
            };
        }
        Ok(affected)
    }

    /// Removes every document; how many were removed.
    pub async fn clear(&self) -> Result<usize> {
        let c = self.client()?;
        let a = c
            .send(
                Method::POST,
                &format!(
                    "/{}/_delete_by_query?conflicts=proceed&refresh=true",
                    self.index()
                ),
                Some(json_body(&json!({"query": {"match_all": {}}}))),
            )
            .await?;
        if Self::missing_index(&a) {
            return Ok(0);
        }
        if !a.ok() {
            return Err(http_err("clear", &self.what(), a.status, &a.body));
        }
        let j = a.json()?;
        if let Some(f) = j["failures"].as_array().filter(|f| !f.is_empty()) {
            return Err(Error::operation(
                "clear",
                format!(
                    "{} removed, then: {}",
                    j["deleted"].as_u64().unwrap_or(0),
                    errors::error_text(&f[0])
                ),
            ));
        }
        Ok(j["deleted"].as_u64().unwrap_or(0) as usize)
    }

    // --- queries ----------------------------------------------------------------------------

    /// Learns whether the index carries query terms (an index made by 0.11.0 does not).
    async fn read_mapping(&self, c: &SharedClient) -> Result<()> {
        let a = c
            .send(Method::GET, &format!("/{}/_mapping", self.index()), None)
            .await?;
        if Self::missing_index(&a) {
            return Ok(());
        }
        if !a.ok() {
            return Err(http_err("connect", &self.what(), a.status, &a.body));
        }
        let has = dsl::mapping_has_terms(&a.json()?);
        self.terms.store(has, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn has_terms(&self) -> bool {
        self.terms.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn narrowed(&self, spec: &QuerySpec) -> dsl::Narrowed {
        dsl::narrow(spec.cond.as_ref(), self.has_terms())
    }

    /// One page of hits in id order after `after` (the raw `sort` of the last hit), inside
    /// `pit` when given; the rows and the raw `sort` of the last one (None: no more pages).
    async fn page(
        &self,
        c: &SharedClient,
        query: &str,
        size: usize,
        after: Option<&str>,
        pit: Option<&Mutex<String>>,
    ) -> Result<(Vec<Row>, Option<String>)> {
        let mut body = format!(
            "{{\"size\":{size},\"query\":{query},\"sort\":[{{\"id\":\"asc\"}}],\"track_total_hits\":false"
        );
        if let Some(a) = after {
            body.push_str(",\"search_after\":");
            body.push_str(a);
        }
        let path = match pit {
            Some(id) => {
                body.push_str(",\"pit\":");
                body.push_str(&json!({"id": *id.lock(), "keep_alive": PIT_KEEP_ALIVE}).to_string());
                "/_search".to_string()
            }
            None => format!("/{}/_search", self.index()),
        };
        body.push('}');
        let a = c
            .send(
                Method::POST,
                &path,
                Some((bytes::Bytes::from(body), "application/json")),
            )
            .await?;
        if pit.is_none() && Self::missing_index(&a) {
            return Ok((Vec::new(), None));
        }
        if !a.ok() {
            return Err(http_err("search", &self.what(), a.status, &a.body));
        }
        let text = a.text()?;
        let mut hits_raw = None;
        let mut pit_id = None;
        crate::codec::scan_object(text, |k, v| match k {
            "hits" => hits_raw = Some(v),
            "pit_id" => pit_id = serde_json::from_str::<String>(v).ok(),
            _ => {}
        })?;
        if let (Some(slot), Some(new)) = (pit, pit_id) {
            *slot.lock() = new;
        }
        let hits = match hits_raw {
            Some(h) => doc::member(h, "hits")?.unwrap_or("[]"),
            None => return Err(Error::operation("search", "answer without hits")),
        };
        let source = self.what();
        let mut rows = Vec::new();
        let mut last_sort = None;
        let mut fail = None;
        crate::codec::scan_array(hits, |raw| {
            if fail.is_some() {
                return;
            }
            let r = doc::scan_hit(raw).and_then(|hit| {
                let id = hit
                    .id
                    .ok_or_else(|| Error::operation("search", "a hit without _id"))?;
                last_sort = hit.sort.map(str::to_string);
                doc::decode_source(&id, hit.source.unwrap_or("{}"), &source)
            });
            match r {
                Ok(row) => rows.push(row),
                Err(e) => fail = Some(e),
            }
        })?;
        if let Some(e) = fail {
            return Err(e);
        }
        let more = rows.len() == size && last_sort.is_some();
        Ok((rows, if more { last_sort } else { None }))
    }

    /// Filter, sort, offset, limit, project. An unsorted query stops paging once its window
    /// is full.
    pub async fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>> {
        let c = self.client()?;
        let q = CompiledQuery::new(spec)?;
        if q.limit() == Some(0) {
            return Ok(Vec::new());
        }
        let narrowed = self.narrowed(spec);
        if let Some(rows) = self.search_window(&c, spec, &q, &narrowed).await? {
            return Ok(rows);
        }
        let query = narrowed.to_query().to_string();
        let mut pager = Pager::new(q.offset(), q.limit(), usize::MAX);
        let mut hits = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (rows, next) = self
                .page(&c, &query, SCAN_PAGE, after.as_deref(), None)
                .await?;
            for row in rows {
                if !q.matches(&row)? {
                    continue;
                }
                if q.has_sort() {
                    hits.push(row);
                } else {
                    let _ = pager.push(q.project_row(row));
                }
            }
            if !q.has_sort() && !pager.wants_more() {
                break;
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        if q.has_sort() {
            return Ok(q.shape(hits));
        }
        Ok(pager.finish().unwrap_or_default())
    }

    /// A sorted search with a limit whose first sort key is a plain data field, fetching only
    /// its window: a terms aggregation over that field's number terms (in sort order) finds
    /// the number the first `offset + limit` narrowed documents reach; then only documents at
    /// or beyond it, or without a number there, are fetched, decided and sorted by the core.
    /// Documents left out have a number short of it, so they sort after every fetched number
    /// (rounding to a term is monotone); the result is used only if at least `offset + limit`
    /// fetched matches have a number in the window (the narrowing may count non-matches),
    /// else None and the caller scans everything.
    async fn search_window(
        &self,
        c: &SharedClient,
        spec: &QuerySpec,
        q: &CompiledQuery,
        narrowed: &dsl::Narrowed,
    ) -> Result<Option<Vec<Row>>> {
        let (Some((field, descending)), Some(limit)) = (spec.sort.first(), q.limit()) else {
            return Ok(None);
        };
        let want = q.offset().saturating_add(limit);
        if !self.has_terms() || !dsl::windowable(field) || want > WINDOW_MAX {
            return Ok(None);
        }
        let query = narrowed.to_query();
        let body = json!({"size": 0, "track_total_hits": false, "query": query,
                          "aggs": {"dk_window": dsl::top_terms_agg(field, want, *descending)}});
        let a = c
            .send(
                Method::POST,
                &format!("/{}/_search", self.index()),
                Some(json_body(&body)),
            )
            .await?;
        if Self::missing_index(&a) {
            return Ok(Some(Vec::new()));
        }
        if !a.ok() {
            return Err(http_err("search", &self.what(), a.status, &a.body));
        }
        let answer = a.json()?;
        let mut seen = 0u64;
        let mut bound = None;
        for b in answer["aggregations"]["dk_window"]["buckets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            seen += b["doc_count"].as_u64().unwrap_or(0);
            if seen >= want as u64 {
                bound = b["key"].as_str().map(str::to_string);
                break;
            }
        }
        // Fewer numbers than the window: nothing to leave out.
        let Some(bound) = bound else {
            return Ok(None);
        };
        let window = dsl::window_clause(&query, field, &bound, *descending).to_string();
        let mut hits = Vec::new();
        let mut in_window = 0usize;
        let mut after: Option<String> = None;
        loop {
            let (rows, next) = self
                .page(c, &window, SCAN_PAGE, after.as_deref(), None)
                .await?;
            for row in rows {
                if !q.matches(&row)? {
                    continue;
                }
                let key =
                    crate::query::resolve(&row, field).and_then(|v| dsl::number_term(field, &v));
                let inside = |k: String| if *descending { k >= bound } else { k <= bound };
                if key.is_some_and(inside) {
                    in_window += 1;
                }
                hits.push(row);
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        Ok((in_window >= want).then(|| q.shape(hits)))
    }

    /// Number of rows matching `spec.cond`: `_count` when the DSL says exactly which, else the
    /// narrowed documents decided by the evaluator.
    pub async fn count(&self, spec: &QuerySpec) -> Result<usize> {
        let c = self.client()?;
        let cond_only = QuerySpec {
            cond: spec.cond.clone(),
            ..QuerySpec::default()
        };
        let q = CompiledQuery::new(&cond_only)?;
        let n = self.narrowed(&cond_only);
        let query = n.to_query();
        if n.exact {
            let a = c
                .send(
                    Method::POST,
                    &format!("/{}/_count", self.index()),
                    Some(json_body(&json!({ "query": query }))),
                )
                .await?;
            if Self::missing_index(&a) {
                return Ok(0);
            }
            if !a.ok() {
                return Err(http_err("count", &self.what(), a.status, &a.body));
            }
            return Ok(a.json()?["count"].as_u64().unwrap_or(0) as usize);
        }
        if let Some(on_terms) = &n.on_terms {
            // `_count` for the documents carrying terms, the evaluator for the `*` ones
            // (normally none), at once.
            let counted = json!({ "query": dsl::without_everything(on_terms) });
            let path = format!("/{}/_count", self.index());
            let everything = dsl::everything().to_string();
            let (exact, rest) = futures_util::future::join(
                c.send(Method::POST, &path, Some(json_body(&counted))),
                self.count_scan(&c, &q, &everything),
            )
            .await;
            let a = exact?;
            if Self::missing_index(&a) {
                return Ok(0);
            }
            if !a.ok() {
                return Err(http_err("count", &self.what(), a.status, &a.body));
            }
            return Ok(a.json()?["count"].as_u64().unwrap_or(0) as usize + rest?);
        }
        self.count_scan(&c, &q, &query.to_string()).await
    }

    /// The documents of `query` the evaluator accepts, paged in id order.
    async fn count_scan(&self, c: &SharedClient, q: &CompiledQuery, query: &str) -> Result<usize> {
        let mut total = 0;
        let mut after: Option<String> = None;
        loop {
            let (rows, next) = self
                .page(c, query, SCAN_PAGE, after.as_deref(), None)
                .await?;
            total += q.count(&rows)?;
            match next {
                Some(n) => after = Some(n),
                None => return Ok(total),
            }
        }
    }

    /// The groups and metrics of the matching documents (docs/aggregations.md): the narrowed
    /// documents, paged in id order, decided by the evaluator and fed to the core's
    /// accumulators, which hold the groups and never the documents. Not an ES aggregation:
    /// `data` is stored unindexed (see `doc.rs`), so only the core can group it exactly.
    pub async fn aggregate(&self, spec: &QuerySpec, agg: &Arc<AggSpec>) -> Result<Vec<AggRow>> {
        let c = self.client()?;
        let cond_only = aggregate::condition_spec(spec);
        let q = CompiledQuery::new(&cond_only)?;
        let query = self.narrowed(&cond_only).to_query().to_string();
        let mut acc = aggregate::Aggregator::new(Arc::clone(agg));
        let mut after: Option<String> = None;
        loop {
            let (rows, next) = self
                .page(&c, &query, SCAN_PAGE, after.as_deref(), None)
                .await?;
            for row in &rows {
                if q.matches(row)? {
                    acc.push(row);
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => return Ok(acc.finish()),
            }
        }
    }

    /// Pages of at most `batch_size` rows. An unsorted query streams from a producer task that
    /// pages through a point in time ahead of the consumer by at most `prefetch` pages; a
    /// sorted query is evaluated first and then paged.
    pub async fn stream(
        self: Arc<Self>,
        spec: QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<Cursor> {
        let batch_size = batch_size.max(1);
        let q = CompiledQuery::new(&spec)?;
        if q.has_sort() {
            let rows = self.search(&spec).await?;
            return memory::stream_rows(rows, batch_size, prefetch);
        }
        let c = self.client()?;
        let query = self.narrowed(&spec).to_query().to_string();
        let Some(pit) = self.open_pit(&c).await? else {
            // No index: nothing to stream.
            return memory::stream_rows(Vec::new(), batch_size, prefetch);
        };
        let (tx, cursor) = Cursor::channel(prefetch);
        tokio::spawn(async move {
            let pit = Mutex::new(pit);
            let outcome = self.produce(&c, &q, &query, batch_size, &pit, &tx).await;
            let pit_id = pit.lock().clone();
            let closed = self.close_pit(&c, &pit_id).await;
            match (outcome, closed) {
                (Ok(true), Ok(())) => tx.end().await,
                // The consumer went away.
                (Ok(false), _) => {}
                (Err(e), _) | (Ok(true), Err(e)) => {
                    tx.send_result(Err(e)).await;
                }
            }
        });
        Ok(cursor)
    }

    /// The stream producer. True when every page went out, false when the consumer went away.
    async fn produce(
        &self,
        c: &SharedClient,
        q: &CompiledQuery,
        query: &str,
        batch_size: usize,
        pit: &Mutex<String>,
        tx: &PageSender,
    ) -> Result<bool> {
        let mut pager = Pager::new(q.offset(), q.limit(), batch_size);
        let size = batch_size.clamp(100, 10_000);
        let mut after: Option<String> = None;
        while pager.wants_more() {
            if tx.is_closed() {
                return Ok(false);
            }
            let (rows, next) = self
                .page(c, query, size, after.as_deref(), Some(pit))
                .await?;
            for row in rows {
                if !q.matches(&row)? {
                    continue;
                }
                if let Some(full) = pager.push(q.project_row(row)) {
                    if !tx.send(full).await {
                        return Ok(false);
                    }
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        match pager.finish() {
            Some(last) => Ok(tx.send(last).await),
            None => Ok(true),
        }
    }

    /// Opens a point in time on the index (None when the index does not exist).
    async fn open_pit(&self, c: &SharedClient) -> Result<Option<String>> {
        let (path, key) = match c.flavour {
            Flavour::OpenSearch => (
                format!(
                    "/{}/_search/point_in_time?keep_alive={PIT_KEEP_ALIVE}",
                    self.index()
                ),
                "pit_id",
            ),
            Flavour::Elasticsearch => (
                format!("/{}/_pit?keep_alive={PIT_KEEP_ALIVE}", self.index()),
                "id",
            ),
        };
        let a = c.send(Method::POST, &path, None).await?;
        if Self::missing_index(&a) {
            return Ok(None);
        }
        if !a.ok() {
            return Err(http_err("stream", &self.what(), a.status, &a.body));
        }
        match a.json()?[key].as_str() {
            Some(id) => Ok(Some(id.to_string())),
            None => Err(Error::operation(
                "stream",
                "the point-in-time answer holds no id",
            )),
        }
    }

    async fn close_pit(&self, c: &SharedClient, id: &str) -> Result<()> {
        let (path, body) = match c.flavour {
            Flavour::OpenSearch => ("/_search/point_in_time", json!({"pit_id": [id]})),
            Flavour::Elasticsearch => ("/_pit", json!({ "id": id })),
        };
        let a = c.send(Method::DELETE, path, Some(json_body(&body))).await?;
        // 404: it expired or went with the index.
        if a.ok() || a.status == 404 {
            Ok(())
        } else {
            Err(http_err("stream", &self.what(), a.status, &a.body))
        }
    }

    /// Bulk-load mode on: the index stops refreshing (`refresh_interval: -1`) and writes stop
    /// asking for refreshes. Off: the interval is restored and the index refreshed once.
    pub async fn set_bulk_load(&self, on: bool) -> Result<()> {
        let c = self.client()?;
        let settings_path = format!("/{}/_settings", self.index());
        if on {
            if self.bulk_load.lock().is_some() {
                return Ok(());
            }
            let a = c
                .send(
                    Method::GET,
                    &format!("{settings_path}/index.refresh_interval"),
                    None,
                )
                .await?;
            if !a.ok() {
                return Err(http_err("bulk_load", &self.what(), a.status, &a.body));
            }
            let j = a.json()?;
            let before = j
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|v| v.pointer("/settings/index/refresh_interval"))
                .cloned()
                .unwrap_or(J::Null);
            self.put_refresh_interval(&c, &settings_path, json!("-1"))
                .await?;
            *self.bulk_load.lock() = Some(before);
        } else {
            let Some(before) = self.bulk_load.lock().take() else {
                return Ok(());
            };
            self.put_refresh_interval(&c, &settings_path, before)
                .await?;
            self.refresh_now(&c).await?;
        }
        Ok(())
    }

    async fn put_refresh_interval(&self, c: &SharedClient, path: &str, value: J) -> Result<()> {
        let body = json!({"index": {"refresh_interval": value}});
        let a = c.send(Method::PUT, path, Some(json_body(&body))).await?;
        if a.ok() {
            Ok(())
        } else {
            Err(http_err("bulk_load", &self.what(), a.status, &a.body))
        }
    }

    /// Asks the index to refresh now (every write so far becomes visible to searches).
    pub async fn refresh(&self) -> Result<()> {
        let c = self.client()?;
        self.refresh_now(&c).await
    }

    /// Idempotent; releases this store's hold on the shared client.
    pub fn close(&self) -> Result<()> {
        let client = self.client.write().take();
        drop(client);
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.client.read().is_none()
    }

    pub fn pool_stats(&self) -> Result<ClientStats> {
        match self.client.read().as_ref() {
            Some(c) => Ok(c.stats()),
            None => Err(Error::Closed("elasticsearch store".into())),
        }
    }
}

fn json_body(j: &J) -> (bytes::Bytes, &'static str) {
    (bytes::Bytes::from(j.to_string()), "application/json")
}

/// A bulk item that is neither a success nor an outcome its verb expects, as an error.
fn item_error(item: Item) -> Error {
    match item {
        Item::Failed(e) => e,
        Item::Status(s) => Error::operation("bulk", format!("item HTTP {s}")),
    }
}

/// `create` outcomes: written, taken (409), or failed.
fn created(items: Vec<Item>) -> Vec<Outcome> {
    items
        .into_iter()
        .map(|item| match item {
            Item::Status(200..=299) => Ok(true),
            Item::Status(409) => Ok(false),
            other => Err(item_error(other)),
        })
        .collect()
}

#[cfg(test)]
mod tests;
