//! The S3 store: one object per record, `{prefix}{id}.json` (object.rs), on a client shared by
//! every store with the same endpoint, region, credentials and bucket (client.rs).
//!
//! Every batch fans out inside one call, at most `max_concurrency` requests in flight per
//! client. Storage order is key order, the order S3 lists keys in (an update keeps a record's
//! place; a create takes the place of its id). Scans list a page of keys at a time and GET the
//! objects concurrently while the listing goes on; each object is decoded and tested with the
//! core's evaluator, then sorted, windowed and projected as every store does.

mod client;
mod config;
mod errors;
pub mod object;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier,
};
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use parking_lot::RwLock;

pub use client::{live_clients, ClientStats, SharedClient};
pub use config::S3Settings;
use errors::{connection_err, is_not_found, is_precondition, s3_err, status};

use crate::aggregate::{self, AggRow, AggSpec};
use crate::cursor::{Cursor, PageSender, Pager};
use crate::error::{Error, Result};
use crate::memory;
use crate::outcome::{last_of_each, partial, settle, Outcome};
use crate::query::{CompiledQuery, QuerySpec};
use crate::row::Row;
use crate::store::WriteOp;

/// Keys per ListObjectsV2 page and per DeleteObjects request (the API's maximum for both).
const PAGE_KEYS: i32 = 1000;
/// From this many ids a create's existence check lists the prefix before it HEADs every key.
const LIST_CHECK_MIN: usize = 200;
/// Attempts of a read-then-conditional-write when someone else keeps changing the object.
const CAS_ATTEMPTS: usize = 4;
/// User metadata on each object: when the record was first created (a HEAD reads it back,
/// so an update keeps it without a GET).
const CREATED_META: &str = "dkdata-created-at";

pub struct S3Store {
    client: RwLock<Option<Arc<SharedClient>>>,
    bucket: String,
    prefix: String,
    /// `s3://bucket/prefix`, for errors.
    source: Arc<str>,
}

/// What a HEAD learns about an object.
struct Head {
    etag: Option<String>,
    created_at: Option<String>,
}

/// The precondition of a PUT.
enum Precondition {
    /// Only when no object has the key (a create).
    Absent,
    /// Only over the object with this ETag (an update).
    Matches(Option<String>),
}

impl S3Store {
    /// Validates the settings, gets the shared client and checks the bucket (creating it when
    /// missing and allowed): bad credentials or an unreachable server fail here.
    pub async fn open(settings: S3Settings) -> Result<S3Store> {
        settings.validate()?;
        let client = SharedClient::acquire(&settings).await?;
        let store = S3Store {
            source: format!("s3://{}/{}", settings.bucket, settings.prefix).into(),
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
            client: RwLock::new(Some(Arc::clone(&client))),
        };
        store.ensure_bucket(&client, &settings).await?;
        Ok(store)
    }

    async fn ensure_bucket(&self, c: &SharedClient, s: &S3Settings) -> Result<()> {
        let what = format!("bucket {:?}", self.bucket);
        let head = {
            let _p = c.permit().await?;
            c.s3.head_bucket().bucket(&self.bucket).send().await
        };
        match head {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) && s.create_bucket => {
                let region = c.s3.config().region().map(|r| r.to_string());
                let mut req = c.s3.create_bucket().bucket(&self.bucket);
                if let Some(r) = region.filter(|r| r != "us-east-1") {
                    req = req.create_bucket_configuration(
                        CreateBucketConfiguration::builder()
                            .location_constraint(BucketLocationConstraint::from(r.as_str()))
                            .build(),
                    );
                }
                let _p = c.permit().await?;
                match req.send().await {
                    Ok(_) => Ok(()),
                    // Created by someone else meanwhile.
                    Err(e) if status(&e) == Some(409) => Ok(()),
                    Err(e) => Err(open_err(s3_err("create_bucket", &what, e))),
                }
            }
            Err(e) if is_not_found(&e) => Err(connection_err(format!(
                "{what} does not exist (and creating it is off)"
            ))),
            Err(e) => Err(open_err(s3_err("connect", &what, e))),
        }
    }

    fn client(&self) -> Result<Arc<SharedClient>> {
        self.client
            .read()
            .clone()
            .ok_or_else(|| Error::Closed("s3 store".into()))
    }

    fn key(&self, id: &str) -> String {
        object::key_for(&self.prefix, id)
    }

    fn addr(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    // --- one request each -----------------------------------------------------------------

    async fn head(&self, c: &SharedClient, key: &str) -> Result<Option<Head>> {
        let _p = c.permit().await?;
        match c
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(Head {
                etag: out.e_tag().map(str::to_string),
                created_at: out.metadata().and_then(|m| m.get(CREATED_META)).cloned(),
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(s3_err("head", &self.addr(key), e)),
        }
    }

    async fn get(&self, c: &SharedClient, key: &str) -> Result<Option<bytes::Bytes>> {
        let _p = c.permit().await?;
        let out = match c.s3.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(s3_err("get", &self.addr(key), e)),
        };
        let body = out.body.collect().await.map_err(|e| {
            connection_err(format!("get {}: reading the body: {e}", self.addr(key)))
        })?;
        Ok(Some(body.into_bytes()))
    }

    /// The record under `key`, or None when there is none (deleted since it was listed).
    async fn fetch(&self, c: &SharedClient, key: &str, id: &str) -> Result<Option<Row>> {
        match self.get(c, key).await? {
            None => Ok(None),
            Some(body) => object::decode(id, &body, &self.addr(key)).map(Some),
        }
    }

    /// True when written, false when the precondition did not hold.
    async fn put(
        &self,
        c: &SharedClient,
        key: &str,
        body: String,
        created_at: &str,
        pre: Precondition,
    ) -> Result<bool> {
        let mut req =
            c.s3.put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type("application/json")
                .metadata(CREATED_META, created_at)
                .body(ByteStream::from(body.into_bytes()));
        req = match pre {
            Precondition::Absent => req.if_none_match("*"),
            Precondition::Matches(Some(etag)) => req.if_match(etag),
            // A server that gives no ETag cannot be held to one.
            Precondition::Matches(None) => req,
        };
        let _p = c.permit().await?;
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_precondition(&e) => Ok(false),
            Err(e) => Err(s3_err("put", &self.addr(key), e)),
        }
    }

    /// One page of keys under the prefix, and the token of the next (None: the last page).
    async fn list_page(
        &self,
        c: &SharedClient,
        under: &str,
        token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let _p = c.permit().await?;
        let out =
            c.s3.list_objects_v2()
                .bucket(&self.bucket)
                .prefix(under)
                .max_keys(PAGE_KEYS)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| s3_err("list", &self.source, e))?;
        let keys = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        let next = if out.is_truncated() == Some(true) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok((keys, next))
    }

    /// Deletes up to 1,000 keys in one request; the keys it could not delete, with why.
    async fn delete_keys(
        &self,
        c: &SharedClient,
        keys: &[String],
    ) -> Result<Vec<(String, String)>> {
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::operation("delete", e))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| Error::operation("delete", e))?;
        let _p = c.permit().await?;
        let out =
            c.s3.delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| s3_err("delete", &self.source, e))?;
        Ok(out
            .errors()
            .iter()
            .map(|e| {
                (
                    e.key().unwrap_or_default().to_string(),
                    format!(
                        "{}: {}",
                        e.code().unwrap_or("error"),
                        e.message().unwrap_or_default()
                    ),
                )
            })
            .collect())
    }

    // --- streams over the prefix ------------------------------------------------------------

    /// Every record key under the prefix with its id, in key order, a listing page at a time.
    fn keys(&self, c: Arc<SharedClient>) -> BoxStream<'_, Result<(String, String)>> {
        enum At {
            Next(Option<String>),
            Done,
        }
        stream::unfold(At::Next(None), move |at| {
            let c = Arc::clone(&c);
            async move {
                let At::Next(token) = at else {
                    return None;
                };
                match self.list_page(&c, &self.prefix, token).await {
                    Ok((keys, next)) => {
                        let ids: Vec<Result<(String, String)>> = keys
                            .into_iter()
                            .filter_map(|k| {
                                let id = object::id_of_key(&self.prefix, &k)?.to_string();
                                Some(Ok((k, id)))
                            })
                            .collect();
                        let at = match next {
                            Some(t) => At::Next(Some(t)),
                            None => At::Done,
                        };
                        Some((stream::iter(ids), at))
                    }
                    Err(e) => Some((stream::iter(vec![Err(e)]), At::Done)),
                }
            }
        })
        .flatten()
        .boxed()
    }

    /// Every record under the prefix in key order, fetched `max_concurrency` at a time while
    /// the listing goes on. A malformed object ends the stream with an error naming its key.
    fn records(&self, c: Arc<SharedClient>) -> BoxStream<'_, Result<Row>> {
        let width = c.max_concurrency;
        let fetcher = Arc::clone(&c);
        self.keys(c)
            .map(move |item| {
                let c = Arc::clone(&fetcher);
                async move {
                    let (key, id) = item?;
                    self.fetch(&c, &key, &id).await
                }
            })
            .buffered(width)
            .try_filter_map(|row| async move { Ok(row) })
            .boxed()
    }

    // --- verbs ----------------------------------------------------------------------------

    /// Fails closed: an id already stored or repeated in `rows` gives `Error::Duplicate` and
    /// nothing is written. A put that still finds its key taken (a race) or fails ends the
    /// batch with `Error::Partial` listing the ids written and not.
    pub async fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        let c = self.client()?;
        check_ids(&rows)?;
        let mut seen = HashSet::with_capacity(rows.len());
        if let Some(r) = rows.iter().find(|r| !seen.insert(r.id.as_str())) {
            return Err(Error::Duplicate(r.id.clone()));
        }
        let keys: Vec<String> = rows.iter().map(|r| self.key(&r.id)).collect();
        // One record needs no check: its conditional put is one, and writes nothing if taken.
        if rows.len() > 1 {
            let existing = self.existing(&c, &keys).await?;
            if let Some(i) = existing.iter().position(|e| *e) {
                return Err(Error::Duplicate(rows[i].id.clone()));
            }
        }
        let now = object::now_text();
        let outcomes = self
            .fan_out(&c, rows.len(), |i| {
                let body = object::encode(&rows[i], &now, &now);
                let (c, now, key) = (&c, &now, &keys[i]);
                async move { self.put(c, key, body, now, Precondition::Absent).await }
            })
            .await;
        let ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
        settle("create_batch", &ids, outcomes, true)?;
        Ok(ids)
    }

    /// Stores the rows whose id is absent (the first of a repeated id); true where stored.
    pub async fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        let c = self.client()?;
        check_ids(&rows)?;
        let mut seen = HashSet::with_capacity(rows.len());
        let first: Vec<bool> = rows.iter().map(|r| seen.insert(r.id.clone())).collect();
        let now = object::now_text();
        let outcomes = self
            .fan_out(&c, rows.len(), |i| {
                let body = object::encode(&rows[i], &now, &now);
                let key = self.key(&rows[i].id);
                let (c, now, first) = (&c, &now, first[i]);
                async move {
                    if !first {
                        return Ok(false);
                    }
                    self.put(c, &key, body, now, Precondition::Absent).await
                }
            })
            .await;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        settle("create_missing", &ids, outcomes, false)
    }

    /// Insert or replace each row (the last of a repeated id wins).
    pub async fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        let c = self.client()?;
        check_ids(&rows)?;
        let last = last_of_each(&rows);
        let outcomes = self
            .fan_out(&c, rows.len(), |i| {
                let (c, row, last) = (&c, &rows[i], last[i]);
                async move {
                    if !last {
                        return Ok(true);
                    }
                    self.upsert_one(c, row).await.map(|()| true)
                }
            })
            .await;
        let ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
        settle("upsert_batch", &ids, outcomes, false)?;
        Ok(ids)
    }

    /// A create when the key is free, else a replace that keeps `created_at`.
    async fn upsert_one(&self, c: &SharedClient, row: &Row) -> Result<()> {
        let key = self.key(&row.id);
        for _ in 0..CAS_ATTEMPTS {
            let now = object::now_text();
            let body = object::encode(row, &now, &now);
            if self.put(c, &key, body, &now, Precondition::Absent).await? {
                return Ok(());
            }
            if self.replace(c, &key, row).await? {
                return Ok(());
            }
        }
        Err(contended("upsert", &self.addr(&key)))
    }

    /// Replaces the object under `key` if there is one: false when there is none. The PUT
    /// holds on to the ETag the HEAD read, so a record deleted or rewritten meanwhile is
    /// neither resurrected nor overwritten blindly (it is read again).
    async fn replace(&self, c: &SharedClient, key: &str, row: &Row) -> Result<bool> {
        for _ in 0..CAS_ATTEMPTS {
            let Some(head) = self.head(c, key).await? else {
                return Ok(false);
            };
            let now = object::now_text();
            let created = head.created_at.unwrap_or_else(|| now.clone());
            let body = object::encode(row, &created, &now);
            if self
                .put(c, key, body, &created, Precondition::Matches(head.etag))
                .await?
            {
                return Ok(true);
            }
        }
        Err(contended("update", &self.addr(key)))
    }

    /// Replace existing rows; false where the id is missing (a repeated id: the last wins and
    /// every occurrence reports its outcome).
    pub async fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        let c = self.client()?;
        let last = last_of_each(&rows);
        let outcomes = self
            .fan_out(&c, rows.len(), |i| {
                let (c, row, last) = (&c, &rows[i], last[i]);
                async move {
                    if !last || object::unsafe_id(&row.id).is_some() {
                        return Ok(false);
                    }
                    self.replace(c, &self.key(&row.id), row).await
                }
            })
            .await;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut out = settle("update_batch", &ids, outcomes, false)?;
        // An earlier occurrence of a repeated id reports what its last occurrence did.
        let mut by_id: HashMap<&str, bool> = HashMap::new();
        for (i, r) in rows.iter().enumerate().rev() {
            match by_id.get(r.id.as_str()) {
                Some(done) => out[i] = *done,
                None => {
                    by_id.insert(&r.id, out[i]);
                }
            }
        }
        Ok(out)
    }

    pub async fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>> {
        let c = self.client()?;
        let width = c.max_concurrency;
        stream::iter(0..ids.len())
            .map(|i| {
                let (c, id) = (&c, &ids[i]);
                async move {
                    if object::unsafe_id(id).is_some() {
                        return Ok(None);
                    }
                    self.fetch(c, &self.key(id), id).await
                }
            })
            .buffered(width)
            .try_collect()
            .await
    }

    pub async fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        let c = self.client()?;
        let keys: Vec<Option<String>> = ids
            .iter()
            .map(|id| object::unsafe_id(id).is_none().then(|| self.key(id)))
            .collect();
        self.heads(&c, &keys).await
    }

    /// A transaction's batches, each applied on its own (S3 has no transactions: the batches
    /// before a failing one stay applied, as `Store::apply` documents).
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

    /// True where a record was removed (a repeated id removes once). The existing keys go in
    /// multi-object deletes of 1,000.
    pub async fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        let c = self.client()?;
        let mut seen = HashSet::with_capacity(ids.len());
        let keys: Vec<Option<String>> = ids
            .iter()
            .map(|id| {
                (object::unsafe_id(id).is_none() && seen.insert(id.as_str())).then(|| self.key(id))
            })
            .collect();
        let found = self.heads(&c, &keys).await?;
        let doomed: Vec<(usize, &String)> = keys
            .iter()
            .zip(&found)
            .enumerate()
            .filter_map(|(i, (k, f))| k.as_ref().filter(|_| *f).map(|k| (i, k)))
            .collect();
        let mut failed: HashMap<String, String> = HashMap::new();
        let mut first_error = None;
        for chunk in doomed.chunks(PAGE_KEYS as usize) {
            let batch: Vec<String> = chunk.iter().map(|(_, k)| (*k).clone()).collect();
            match self.delete_keys(&c, &batch).await {
                Ok(errors) => failed.extend(errors),
                Err(e) => {
                    first_error.get_or_insert(e);
                    failed.extend(batch.into_iter().map(|k| (k, "not sent".to_string())));
                }
            }
        }
        if failed.is_empty() {
            return Ok(found);
        }
        let written: Vec<String> = doomed
            .iter()
            .filter(|(_, k)| !failed.contains_key(*k))
            .map(|(i, _)| ids[*i].clone())
            .collect();
        let not_written: Vec<String> = doomed
            .iter()
            .filter(|(_, k)| failed.contains_key(*k))
            .map(|(i, _)| ids[*i].clone())
            .collect();
        let cause = match first_error {
            Some(e) => crate::error::detail(&e),
            None => {
                let (k, why) = failed
                    .iter()
                    .next()
                    .map(|(k, w)| (k.clone(), w.clone()))
                    .unwrap_or_default();
                format!("{}: {why}", self.addr(&k))
            }
        };
        Err(partial("delete_batch", cause, written, not_written))
    }

    /// Filter, sort, offset, limit, project. An unsorted query stops listing once its window
    /// is full.
    pub async fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>> {
        let c = self.client()?;
        let q = CompiledQuery::new(spec)?;
        if q.limit() == Some(0) {
            return Ok(Vec::new());
        }
        if let Some(rows) = self.candidates(&c, &q).await? {
            return q.apply_owned(rows);
        }
        let mut records = self.records(c);
        if q.has_sort() {
            let mut hits = Vec::new();
            while let Some(row) = records.try_next().await? {
                if q.matches(&row)? {
                    hits.push(row);
                }
            }
            return Ok(q.shape(hits));
        }
        let mut pager = Pager::new(q.offset(), q.limit(), usize::MAX);
        while pager.wants_more() {
            let Some(row) = records.try_next().await? else {
                break;
            };
            if q.matches(&row)? {
                let _ = pager.push(q.project_row(row));
            }
        }
        Ok(pager.finish().unwrap_or_default())
    }

    /// The rows a query on `id` alone can match, read by key in key order (None: scan).
    async fn candidates(&self, c: &SharedClient, q: &CompiledQuery) -> Result<Option<Vec<Row>>> {
        let Some(ids) = q.id_candidates() else {
            return Ok(None);
        };
        let mut keyed: Vec<(String, String)> = ids
            .into_iter()
            .filter(|id| object::unsafe_id(id).is_none())
            .map(|id| (self.key(id), id.to_string()))
            .collect();
        keyed.sort();
        keyed.dedup();
        let rows: Vec<Option<Row>> = stream::iter(0..keyed.len())
            .map(|i| self.fetch(c, &keyed[i].0, &keyed[i].1))
            .buffered(c.max_concurrency)
            .try_collect()
            .await?;
        Ok(Some(rows.into_iter().flatten().collect()))
    }

    /// Number of rows matching `spec.cond`; without a condition, keys are counted (no GET).
    pub async fn count(&self, spec: &QuerySpec) -> Result<usize> {
        let c = self.client()?;
        let q = CompiledQuery::new(&QuerySpec {
            cond: spec.cond.clone(),
            ..QuerySpec::default()
        })?;
        if !q.has_cond() {
            return self
                .keys(c)
                .try_fold(0usize, |n, _| async move { Ok(n + 1) })
                .await;
        }
        if let Some(rows) = self.candidates(&c, &q).await? {
            return q.count(&rows);
        }
        let mut records = self.records(c);
        let mut n = 0;
        while let Some(row) = records.try_next().await? {
            if q.matches(&row)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The groups and metrics of the matching rows (docs/aggregations.md), computed by the
    /// core's accumulators as the records are listed and fetched: memory holds the groups.
    pub async fn aggregate(&self, spec: &QuerySpec, agg: &Arc<AggSpec>) -> Result<Vec<AggRow>> {
        let c = self.client()?;
        let q = aggregate::condition_of(spec)?;
        if let Some(rows) = self.candidates(&c, &q).await? {
            return aggregate::over_rows(spec, agg, &rows);
        }
        let mut acc = aggregate::Aggregator::new(Arc::clone(agg));
        let mut records = self.records(c);
        while let Some(row) = records.try_next().await? {
            if q.matches(&row)? {
                acc.push(&row);
            }
        }
        Ok(acc.finish())
    }

    /// Removes every record under the prefix, 1,000 keys a request; how many were removed.
    pub async fn clear(&self) -> Result<usize> {
        let c = self.client()?;
        let mut keys = self.keys(Arc::clone(&c)).chunks(PAGE_KEYS as usize);
        let mut n = 0;
        while let Some(chunk) = keys.next().await {
            let chunk: Vec<String> = chunk
                .into_iter()
                .map(|k| k.map(|(key, _)| key))
                .collect::<Result<_>>()?;
            let failed = self.delete_keys(&c, &chunk).await?;
            if let Some((key, why)) = failed.first() {
                return Err(Error::operation(
                    "clear",
                    format!(
                        "{} removed, then {} could not be deleted ({why})",
                        n + chunk.len() - failed.len(),
                        self.addr(key)
                    ),
                ));
            }
            n += chunk.len();
        }
        Ok(n)
    }

    /// Pages of at most `batch_size` rows. An unsorted query streams from a producer task that
    /// lists and fetches ahead of the consumer by at most `prefetch` pages; a sorted (or id)
    /// query is evaluated first and then paged.
    pub async fn stream(
        self: Arc<Self>,
        spec: QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<Cursor> {
        let batch_size = batch_size.max(1);
        let q = CompiledQuery::new(&spec)?;
        if q.has_sort() || q.id_candidates().is_some() {
            let rows = self.search(&spec).await?;
            return memory::stream_rows(rows, batch_size, prefetch);
        }
        let c = self.client()?;
        let (tx, cursor) = Cursor::channel(prefetch);
        tokio::spawn(async move {
            match self.produce(c, &q, batch_size, &tx).await {
                Ok(true) => tx.end().await,
                // The consumer went away.
                Ok(false) => {}
                Err(e) => {
                    tx.send_result(Err(e)).await;
                }
            }
        });
        Ok(cursor)
    }

    /// The stream producer: pages go out as they are cut. True when every page went out,
    /// false when the consumer went away first.
    async fn produce(
        &self,
        c: Arc<SharedClient>,
        q: &CompiledQuery,
        batch_size: usize,
        tx: &PageSender,
    ) -> Result<bool> {
        let mut pager = Pager::new(q.offset(), q.limit(), batch_size);
        let mut records = self.records(c);
        while pager.wants_more() {
            if tx.is_closed() {
                return Ok(false);
            }
            let Some(row) = records.try_next().await? else {
                break;
            };
            if !q.matches(&row)? {
                continue;
            }
            if let Some(full) = pager.push(q.project_row(row)) {
                if !tx.send(full).await {
                    return Ok(false);
                }
            }
        }
        match pager.finish() {
            Some(last) => Ok(tx.send(last).await),
            None => Ok(true),
        }
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
        // Read through the lock: a clone of the handle would count as one more store.
        match self.client.read().as_ref() {
            Some(c) => Ok(c.stats()),
            None => Err(Error::Closed("s3 store".into())),
        }
    }

    // --- helpers ----------------------------------------------------------------------------

    /// Runs `each` over the items `0..n`, `max_concurrency` at a time, outcomes in input order. Every
    /// item runs to its end (a failure does not cancel the others), so the caller knows
    /// exactly what was written.
    async fn fan_out<F, Fut>(&self, c: &SharedClient, n: usize, each: F) -> Vec<Outcome>
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = Outcome>,
    {
        // Items go by index: closures over borrowed items trip rustc's higher-ranked lifetime
        // checks once the future must be Send.
        stream::iter(0..n)
            .map(each)
            .buffered(c.max_concurrency)
            .collect()
            .await
    }

    /// Whether each key has an object, by HEAD (None: known absent, no request).
    async fn heads(&self, c: &SharedClient, keys: &[Option<String>]) -> Result<Vec<bool>> {
        stream::iter(0..keys.len())
            .map(|i| async move {
                match &keys[i] {
                    None => Ok(false),
                    Some(k) => Ok(self.head(c, k).await?.is_some()),
                }
            })
            .buffered(c.max_concurrency)
            .try_collect()
            .await
    }

    /// Whether each key has an object. A large batch lists the keys that share the batch's
    /// longest common prefix (1,000 a request: ids made in sequence share most of it) as long
    /// as that costs at most one listing page per 100 ids, else HEADs every key.
    async fn existing(&self, c: &Arc<SharedClient>, keys: &[String]) -> Result<Vec<bool>> {
        if keys.len() >= LIST_CHECK_MIN {
            let wanted: HashSet<&str> = keys.iter().map(String::as_str).collect();
            let under = common_prefix(keys);
            let budget = keys.len() / 100 + 1;
            let mut found: HashSet<String> = HashSet::new();
            let mut token = None;
            for _ in 0..budget {
                let (page, next) = self.list_page(c, under, token).await?;
                found.extend(page.into_iter().filter(|k| wanted.contains(k.as_str())));
                match next {
                    None => return Ok(keys.iter().map(|k| found.contains(k)).collect()),
                    Some(t) => token = Some(t),
                }
            }
        }
        let keys: Vec<Option<String>> = keys.iter().cloned().map(Some).collect();
        self.heads(c, &keys).await
    }
}

/// The longest prefix all `keys` share, cut at a character boundary.
fn common_prefix(keys: &[String]) -> &str {
    let (Some(lo), Some(hi)) = (keys.iter().min(), keys.iter().max()) else {
        return "";
    };
    // The common prefix of the least and greatest key is everyone's.
    let n = lo
        .char_indices()
        .zip(hi.chars())
        .find(|((_, a), b)| a != b)
        .map_or(lo.len().min(hi.len()), |((i, _), _)| i);
    &lo[..n]
}

/// Every id must be usable as a key before anything is written.
fn check_ids(rows: &[Row]) -> Result<()> {
    for r in rows {
        if let Some(why) = object::unsafe_id(&r.id) {
            return Err(object::id_error(&r.id, why));
        }
    }
    Ok(())
}

fn contended(operation: &str, addr: &str) -> Error {
    Error::operation(
        operation,
        format!("{addr} kept changing under {CAS_ATTEMPTS} conditional writes; try again"),
    )
}

/// A failure at open is a connection failure whatever the server said (bad keys included).
fn open_err(e: Error) -> Error {
    match e {
        Error::Operation { message, .. } => connection_err(message),
        other => other,
    }
}

#[cfg(test)]
mod tests;
