//! PostgreSQL store: table `id VARCHAR(255) PRIMARY KEY, data JSONB, metadata JSONB,
//! created_at, updated_at, seq` on a shared deadpool of tokio-postgres connections.
//!
//! Every verb is an async fn; the bridge blocks on it (sync face) or awaits it (async face).
//! Storage order is `seq`, an identity assigned at first insertion (an upsert of an existing id
//! keeps it). Conditions go to SQL through `sql::translate`: exact where the translation is
//! exact, otherwise as a superset that the compiled query (the reference semantics) narrows
//! down in Rust. A sort with a limit goes to SQL with `LIMIT offset + limit` whatever the
//! condition (`search_sorted_in_sql`); a sort without one is done in Rust; offset and limit in
//! storage order go to SQL when the condition is exact.

mod config;
mod errors;
mod jsonb;
mod pool;
mod sql;
pub(crate) mod tls;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deadpool_postgres::{Object, Transaction};
use futures_util::{pin_mut, SinkExt, TryStreamExt};
use parking_lot::RwLock;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Statement;

pub use config::PgSettings;
use pool::Guarded;
pub use pool::{live_pools, PoolStats, SharedPool};
pub use tls::SslMode;

use crate::aggregate::{self, AggRow, AggSpec};
use crate::cursor::{Cursor, PageSender, Pager};
use crate::error::{Error, Result};
use crate::memory;
use crate::query::{CompiledQuery, Cond, QuerySpec};
use crate::row::{Reads, Row, TextRow};
use crate::store::WriteOp;
use errors::{duplicate_id, is_unique_violation, pg_err};
use jsonb::{JsonText, JsonbMap};

/// Rows fetched per round trip when scanning for a query.
const SCAN_PAGE: i32 = 2000;

pub struct PostgresStore {
    pool: RwLock<Option<Arc<SharedPool>>>,
    statements: Statements,
    /// `"schema"."table"`, validated and quoted.
    table: String,
    /// `table "schema"."table"`, naming it in errors.
    source: Arc<str>,
    /// `SELECT id, data, metadata FROM table`.
    sel_all: String,
    /// The binary COPY every `create_batch` runs.
    copy_in: String,
    /// The GIN index on `data`: its qualified name and the statement that builds it.
    gin_name: String,
    gin_ddl: String,
}

/// A statement parameter and the type the server reads it as. The type matters only for
/// unnamed statements, which the server does not describe to us before they run.
type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// A driver result, before it becomes the core's error (which names the operation).
type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

fn untyped<'a>(params: &[Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|(v, _)| *v).collect()
}

/// How statements reach the server (`PgSettings::prepared_statements`): the one place that
/// decides it.
///
/// PgBouncer in transaction pooling (1.18, Debian 12's, has no protocol-level prepared
/// statements) hands each transaction to any server connection. A statement prepared in one
/// transaction may then be missing where the next one runs, or a stale one with the same name
/// may be there. So `Unnamed` never lets a named statement outlive its transaction: a statement
/// on its own goes as one unnamed Parse/Bind/Execute (`query_typed`), and one prepared inside
/// a transaction (for a portal, or COPY) is never cached and is closed before COMMIT or
/// ROLLBACK (the callers drop it first, which queues its Close ahead of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Statements {
    /// Named statements prepared once per connection and kept (deadpool's cache).
    Prepared,
    /// Unnamed statements only (asyncpg's `statement_cache_size=0`).
    Unnamed,
}

impl Statements {
    fn new(prepared_statements: bool) -> Statements {
        if prepared_statements {
            Statements::Prepared
        } else {
            Statements::Unnamed
        }
    }

    /// Rows of `sql`, a text the store runs again and again.
    async fn query(
        self,
        client: &Object,
        sql: &str,
        params: &[Param<'_>],
    ) -> PgResult<Vec<tokio_postgres::Row>> {
        match self {
            Statements::Prepared => {
                let stmt = client.prepare_cached(sql).await?;
                client.query(&stmt, &untyped(params)).await
            }
            Statements::Unnamed => client.query_typed(sql, params).await,
        }
    }

    /// The rows of `sql`, a text built for this call: one unnamed Parse/Bind/Execute in either
    /// mode, one round trip and nothing left in the statement cache.
    async fn query_once(
        self,
        client: &Object,
        sql: &str,
        params: &[Param<'_>],
    ) -> PgResult<Vec<tokio_postgres::Row>> {
        client.query_typed(sql, params).await
    }

    /// The one row of `sql`, a text built for this call (as `query_once`).
    async fn query_one(
        self,
        client: &Object,
        sql: &str,
        params: &[Param<'_>],
    ) -> PgResult<tokio_postgres::Row> {
        client.query_typed_one(sql, params).await
    }

    /// Rows changed by `sql`, a text built for this call (as `query_once`).
    async fn execute(self, client: &Object, sql: &str, params: &[Param<'_>]) -> PgResult<u64> {
        client.execute_typed(sql, params).await
    }

    /// Ends `tx`, whose work stopped early or failed. The prepared mode drops it, which queues
    /// the ROLLBACK without waiting: the next statement on the connection waits behind it
    /// instead. Behind PgBouncer that statement's answer would be lost, since PgBouncer gives
    /// the server connection to another client as soon as the ROLLBACK completes; so without
    /// prepared statements the ROLLBACK is awaited. A failed ROLLBACK means a broken
    /// connection, which the pool discards; the caller's own outcome stands.
    async fn rollback(self, tx: Transaction<'_>) {
        match self {
            Statements::Prepared => drop(tx),
            Statements::Unnamed => {
                let _ = tx.rollback().await;
            }
        }
    }

    /// The statement a portal in `tx` is bound to. `repeats`: the text is run again and again,
    /// so the prepared mode caches it. Without prepared statements it is named (portals need a
    /// prepared statement) but never cached: the caller drops it, and its portal, before the
    /// transaction ends.
    async fn for_portal(
        self,
        tx: &Transaction<'_>,
        sql: &str,
        repeats: bool,
    ) -> PgResult<Statement> {
        if repeats && self == Statements::Prepared {
            tx.prepare_cached(sql).await
        } else {
            tx.prepare(sql).await
        }
    }
}

/// Input positions grouped by id: each id's first position, in input order, and its last
/// position (whose row wins).
struct Dedup<'a> {
    first: Vec<(&'a str, usize)>,
    last: HashMap<&'a str, usize>,
}

fn dedup(rows: &[Row]) -> Dedup<'_> {
    let mut first = Vec::with_capacity(rows.len());
    let mut last = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        if last.insert(r.id.as_str(), i).is_none() {
            first.push((r.id.as_str(), i));
        }
    }
    Dedup { first, last }
}

impl PostgresStore {
    /// Connects (sharing a pool with stores of the same settings) and creates the schema and
    /// table when `auto_create_table` is set.
    pub async fn open(settings: PgSettings) -> Result<PostgresStore> {
        let resolved = config::resolve(&settings)?;
        let table = format!("\"{}\".\"{}\"", settings.schema_name, settings.table);
        let pool = SharedPool::acquire(&resolved).await?;
        let stem = &settings.table[..settings.table.len().min(55)];
        let store = PostgresStore {
            sel_all: format!("SELECT id, data, metadata FROM {table}"),
            copy_in: format!("COPY {table} (id, data, metadata) FROM STDIN (FORMAT binary)"),
            gin_name: format!("\"{}\".\"{stem}_data\"", settings.schema_name),
            gin_ddl: format!(
                "CREATE INDEX IF NOT EXISTS \"{stem}_data\" ON {table} USING gin (data jsonb_path_ops)"
            ),
            source: format!("table {table}").into(),
            table,
            pool: RwLock::new(Some(pool.clone())),
            statements: Statements::new(settings.prepared_statements),
        };
        let client = pool.get().await?;
        store
            .prepare_table(&client, &settings)
            .await
            .inspect_err(|_| pool.note_error())?;
        Ok(store)
    }

    async fn prepare_table(&self, client: &Object, s: &PgSettings) -> Result<()> {
        let op = |e| pg_err("create_table", e);
        let regclass = self.table.clone();
        let row = self
            .statements
            .query_one(
                client,
                "SELECT to_regclass($1) IS NOT NULL, EXISTS (SELECT 1 FROM pg_attribute \
                 WHERE attrelid = to_regclass($1) AND attname = 'seq' AND NOT attisdropped), \
                 to_regclass($2) IS NOT NULL",
                &[(&regclass, Type::TEXT), (&self.gin_name, Type::TEXT)],
            )
            .await
            .map_err(op)?;
        let (exists, has_seq, has_gin): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
        if exists && has_seq {
            // Tables made before the index was part of the layout get it once.
            if !has_gin && s.auto_create_table {
                client.batch_execute(&self.gin_ddl).await.map_err(op)?;
            }
            return Ok(());
        }
        if !s.auto_create_table {
            return Err(Error::operation(
                "connect",
                if exists {
                    format!(
                        "table {} has no seq column and auto_create_table is false",
                        self.table
                    )
                } else {
                    format!(
                        "table {} does not exist and auto_create_table is false",
                        self.table
                    )
                },
            ));
        }
        let index = format!("\"{}_seq\"", &s.table[..s.table.len().min(55)]);
        let ddl = format!(
            "SELECT pg_advisory_xact_lock(hashtext('dataknobs:' || {lit}));
             CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS {t} (
                 id VARCHAR(255) PRIMARY KEY,
                 data JSONB NOT NULL,
                 metadata JSONB NOT NULL DEFAULT '{{}}',
                 created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                 updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
             ALTER TABLE {t} ADD COLUMN IF NOT EXISTS seq BIGINT GENERATED BY DEFAULT AS IDENTITY;
             CREATE INDEX IF NOT EXISTS {index} ON {t} (seq);
             {gin};",
            gin = self.gin_ddl,
            lit = sql::quote_literal(&self.table),
            schema = s.schema_name,
            t = self.table,
        );
        // One transaction, so that the advisory lock serialises concurrent openers.
        if let Err(e) = client.batch_execute(&format!("BEGIN; {ddl} COMMIT;")).await {
            // A statement that failed left the transaction aborted: end it before the
            // connection goes back to the pool that other stores share.
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(op(e));
        }
        Ok(())
    }

    fn shared(&self) -> Result<Arc<SharedPool>> {
        self.pool
            .read()
            .clone()
            .ok_or_else(|| Error::Closed("PostgresStore".into()))
    }

    /// Runs `attempt` a second time when the first failed on a dead connection (a server
    /// restart, killed backends). Whatever killed one connection likely killed its idle
    /// siblings too, before the client noticed: the pool drops them all so the second attempt
    /// opens a fresh one. Only for operations that change nothing or are idempotent, and whose
    /// answer a repeat does not change.
    async fn retry_once<T, F, Fut>(&self, attempt: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        match attempt().await {
            Err(Error::Connection { .. }) => {
                if let Ok(pool) = self.shared() {
                    pool.drop_idle();
                }
                attempt().await
            }
            other => other,
        }
    }

    async fn conn(&self) -> Result<(Arc<SharedPool>, Guarded)> {
        let pool = self.shared()?;
        let client = pool.get_guarded().await?;
        Ok((pool, client))
    }

    /// The pool's counters and the settings it is keyed by (no password).
    pub fn pool_stats(&self) -> Result<PoolStats> {
        // Read in place: a cloned handle would count itself as a store.
        self.pool
            .read()
            .as_ref()
            .map(SharedPool::stats)
            .ok_or_else(|| Error::Closed("PostgresStore".into()))
    }

    fn decode_row(&self, r: &tokio_postgres::Row) -> Result<Row> {
        decode_row(r, &self.source)
    }

    pub async fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        if rows.is_empty() {
            self.shared()?;
            return Ok(Vec::new());
        }
        let mut seen = HashSet::with_capacity(rows.len());
        for r in &rows {
            if !seen.insert(r.id.as_str()) {
                return Err(Error::Duplicate(r.id.clone()));
            }
        }
        drop(seen);
        let (pool, mut client) = self.conn().await?;
        let copied = self.copy_rows(&mut client, &rows).await;
        match copied {
            Ok(_) => {
                client.done();
                Ok(rows.into_iter().map(|r| r.id).collect())
            }
            Err(CopyFailed::Encode(e)) => {
                client.done();
                Err(Error::operation("create", e))
            }
            Err(CopyFailed::Pg(e)) if is_unique_violation(&e) => {
                // COPY inserts in input order, so the violation names the first stored id the
                // batch repeats; look it up anyway in case the detail text is not ours to parse.
                let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
                let stored = self.stored_ids(&client, &ids).await;
                client.done();
                let stored = stored?;
                let first = ids.iter().find(|id| stored.contains(**id));
                Err(Error::Duplicate(match (first, duplicate_id(&e)) {
                    (Some(id), _) => id.to_string(),
                    (None, Some(id)) => id,
                    (None, None) => return Err(pg_err("create", e)),
                }))
            }
            Err(CopyFailed::Pg(e)) => {
                pool.note_error();
                client.done();
                Err(pg_err("create", e))
            }
        }
    }

    /// The binary COPY of `rows` (jsonb.rs `copy_stream`), all or nothing.
    ///
    /// With prepared statements the COPY is one statement in its own implicit transaction,
    /// which a failure (a stored id, a dropped connection) rolls back whole: its statement is
    /// prepared once per connection, so a batch costs two round trips (Bind/Execute answered by
    /// CopyInResponse, then the data answered by CommandComplete). Before, BEGIN, a Parse per
    /// batch, the COPY and COMMIT made five, each a wake-up of this task on a loaded machine
    /// (log_min_duration_statement showed up to 17 ms between the COPY's end and the COMMIT).
    /// Without prepared statements (PgBouncer) the statement COPY needs must not outlive a
    /// transaction, so it runs inside one (see `Statements`).
    async fn copy_rows(
        &self,
        client: &mut Object,
        rows: &[Row],
    ) -> std::result::Result<u64, CopyFailed> {
        match self.statements {
            Statements::Prepared => {
                let stmt = client.prepare_cached(&self.copy_in).await?;
                let sink = client.copy_in(&stmt).await?;
                send_copy(sink, rows).await
            }
            Statements::Unnamed => {
                let tx = client.transaction().await?;
                // The driver closes the statement it prepares as soon as the COPY has started,
                // ahead of the COMMIT.
                let copied =
                    async { send_copy(tx.copy_in(self.copy_in.as_str()).await?, rows).await }.await;
                match copied {
                    Ok(n) => Ok(tx.commit().await.map(|()| n)?),
                    Err(e) => {
                        self.statements.rollback(tx).await;
                        Err(e)
                    }
                }
            }
        }
    }

    async fn stored_ids(&self, client: &Object, ids: &[&str]) -> Result<HashSet<String>> {
        let rows = self
            .statements
            .query(
                client,
                &format!(
                    "SELECT id FROM {} WHERE id = ANY($1::varchar[])",
                    self.table
                ),
                &[(&ids, Type::VARCHAR_ARRAY)],
            )
            .await
            .map_err(|e| pg_err("read", e))?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(|e| pg_err("read", e)))
            .collect()
    }

    /// Runs `sql` with the arrays (ids, data, metadata) of the given rows bound as $1..$3 and
    /// returns the ids of the RETURNING clause.
    async fn write_arrays(
        &self,
        operation: &'static str,
        sql: &str,
        rows: &[&Row],
    ) -> Result<HashSet<String>> {
        let (pool, client) = self.conn().await?;
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let data: Vec<JsonbMap<'_>> = rows.iter().map(|r| JsonbMap(&r.data)).collect();
        let meta: Vec<JsonbMap<'_>> = rows.iter().map(|r| JsonbMap(&r.metadata)).collect();
        let out = self
            .statements
            .query(
                &client,
                sql,
                &[
                    (&ids, Type::VARCHAR_ARRAY),
                    (&data, Type::JSONB_ARRAY),
                    (&meta, Type::JSONB_ARRAY),
                ],
            )
            .await;
        client.done();
        let out = out.map_err(|e| {
            pool.note_error();
            pg_err(operation, e)
        })?;
        out.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(|e| pg_err(operation, e)))
            .collect()
    }

    fn unnest(&self) -> &'static str {
        "unnest($1::varchar[], $2::jsonb[], $3::jsonb[]) WITH ORDINALITY AS s(id, data, metadata, ord)"
    }

    pub async fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        if rows.is_empty() {
            self.shared()?;
            return Ok(Vec::new());
        }
        let d = dedup(&rows);
        let first: Vec<&Row> = d.first.iter().filter_map(|(_, i)| rows.get(*i)).collect();
        let sql = format!(
            "INSERT INTO {} (id, data, metadata) SELECT id, data, metadata FROM {} ORDER BY ord \
             ON CONFLICT (id) DO NOTHING RETURNING id",
            self.table,
            self.unnest()
        );
        let stored = self.write_arrays("create", &sql, &first).await?;
        let mut claimed = HashSet::with_capacity(rows.len());
        Ok(rows
            .iter()
            .map(|r| stored.contains(&r.id) && claimed.insert(r.id.as_str()))
            .collect())
    }

    /// Rows in first-occurrence order, each carrying the last value given for its id.
    fn last_values<'a>(rows: &'a [Row], d: &Dedup<'a>) -> Vec<&'a Row> {
        d.first
            .iter()
            .filter_map(|(id, _)| d.last.get(id).and_then(|i| rows.get(*i)))
            .collect()
    }

    pub async fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        if rows.is_empty() {
            self.shared()?;
            return Ok(Vec::new());
        }
        let d = dedup(&rows);
        let sql = format!(
            "INSERT INTO {} (id, data, metadata) SELECT id, data, metadata FROM {} ORDER BY ord \
             ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, metadata = EXCLUDED.metadata, \
             updated_at = now() RETURNING id",
            self.table,
            self.unnest()
        );
        let last = Self::last_values(&rows, &d);
        let (sql, last) = (&sql, &last);
        self.retry_once(move || self.write_arrays("upsert", sql, last))
            .await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    pub async fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        if rows.is_empty() {
            self.shared()?;
            return Ok(Vec::new());
        }
        let d = dedup(&rows);
        let sql = format!(
            "UPDATE {} AS t SET data = s.data, metadata = s.metadata, updated_at = now() \
             FROM {} WHERE t.id = s.id RETURNING t.id",
            self.table,
            self.unnest()
        );
        let last = Self::last_values(&rows, &d);
        let (sql, last) = (&sql, &last);
        let found = self
            .retry_once(move || self.write_arrays("update", sql, last))
            .await?;
        Ok(rows.iter().map(|r| found.contains(&r.id)).collect())
    }

    /// Every write of `ops` in one transaction: all of them or, on the first failure, none.
    /// Returns how many records they wrote or removed.
    pub async fn apply(&self, ops: Vec<WriteOp>) -> Result<usize> {
        let (pool, mut client) = self.conn().await?;
        let outcome = async {
            let op = |e| pg_err("transaction", e);
            let tx = client.transaction().await.map_err(op)?;
            match self.apply_in(&tx, &ops).await {
                Ok(n) => {
                    tx.commit().await.map_err(op)?;
                    Ok(n)
                }
                Err(e) => {
                    self.statements.rollback(tx).await;
                    Err(e)
                }
            }
        }
        .await;
        if matches!(
            outcome,
            Err(Error::Connection { .. } | Error::Operation { .. })
        ) {
            pool.note_error();
        }
        client.done();
        outcome
    }

    /// The statements of [`Self::apply`], each one unnamed inside `tx` (so in either
    /// statement mode, and behind PgBouncer, nothing outlives the transaction).
    async fn apply_in(&self, tx: &Transaction<'_>, ops: &[WriteOp]) -> Result<usize> {
        let mut affected = 0;
        for op in ops {
            affected += match op {
                WriteOp::Create(rows) => {
                    let mut seen = HashSet::with_capacity(rows.len());
                    if let Some(r) = rows.iter().find(|r| !seen.insert(r.id.as_str())) {
                        return Err(Error::Duplicate(r.id.clone()));
                    }
                    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
                    // Sees what earlier batches of this transaction wrote.
                    let found = tx
                        .query_typed(
                            &format!(
                                "SELECT id FROM {} WHERE id = ANY($1::varchar[])",
                                self.table
                            ),
                            &[(&ids, Type::VARCHAR_ARRAY)],
                        )
                        .await
                        .map_err(|e| pg_err("create", e))?;
                    let stored: HashSet<String> = found
                        .iter()
                        .map(|r| r.try_get::<_, String>(0).map_err(|e| pg_err("create", e)))
                        .collect::<Result<_>>()?;
                    if let Some(id) = ids.iter().find(|id| stored.contains(**id)) {
                        return Err(Error::Duplicate(id.to_string()));
                    }
                    let sql = format!(
                        "INSERT INTO {} (id, data, metadata) SELECT id, data, metadata FROM {} \
                         ORDER BY ord",
                        self.table,
                        self.unnest()
                    );
                    let refs: Vec<&Row> = rows.iter().collect();
                    self.execute_arrays(tx, &sql, &refs).await.map_err(|e| {
                        match (is_unique_violation(&e), duplicate_id(&e)) {
                            // Written meanwhile by another session.
                            (true, Some(id)) => Error::Duplicate(id),
                            _ => pg_err("create", e),
                        }
                    })?;
                    rows.len()
                }
                WriteOp::Upsert(rows) => {
                    let d = dedup(rows);
                    let sql = format!(
                        "INSERT INTO {} (id, data, metadata) SELECT id, data, metadata FROM {} \
                         ORDER BY ord ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, \
                         metadata = EXCLUDED.metadata, updated_at = now()",
                        self.table,
                        self.unnest()
                    );
                    let last = Self::last_values(rows, &d);
                    self.execute_arrays(tx, &sql, &last)
                        .await
                        .map_err(|e| pg_err("upsert", e))?;
                    rows.len()
                }
                WriteOp::Delete(ids) => {
                    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                    let removed = tx
                        .execute_typed(
                            &format!("DELETE FROM {} WHERE id = ANY($1::varchar[])", self.table),
                            &[(&refs, Type::VARCHAR_ARRAY)],
                        )
                        .await
                        .map_err(|e| pg_err("delete", e))?;
                    usize::try_from(removed).unwrap_or(usize::MAX)
                }
            };
        }
        Ok(affected)
    }

    /// Runs `sql` inside `tx` with the rows' (ids, data, metadata) arrays bound as $1..$3.
    async fn execute_arrays(
        &self,
        tx: &Transaction<'_>,
        sql: &str,
        rows: &[&Row],
    ) -> PgResult<u64> {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let data: Vec<JsonbMap<'_>> = rows.iter().map(|r| JsonbMap(&r.data)).collect();
        let meta: Vec<JsonbMap<'_>> = rows.iter().map(|r| JsonbMap(&r.metadata)).collect();
        tx.execute_typed(
            sql,
            &[
                (&ids, Type::VARCHAR_ARRAY),
                (&data, Type::JSONB_ARRAY),
                (&meta, Type::JSONB_ARRAY),
            ],
        )
        .await
    }

    /// Stored rows among `ids`, in storage order.
    async fn rows_by_id(&self, client: &Object, ids: &[&str]) -> Result<Vec<Row>> {
        let rows = self
            .statements
            .query(
                client,
                &format!(
                    "{} WHERE id = ANY($1::varchar[]) ORDER BY seq",
                    self.sel_all
                ),
                &[(&ids, Type::VARCHAR_ARRAY)],
            )
            .await
            .map_err(|e| pg_err("read", e))?;
        rows.iter().map(|r| self.decode_row(r)).collect()
    }

    pub async fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>> {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let refs = &refs;
        let found: HashMap<String, Row> = self
            .retry_once(move || async move {
                let (_pool, client) = self.conn().await?;
                let rows = self.rows_by_id(&client, refs).await;
                client.done();
                rows
            })
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    pub async fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let refs = &refs;
        let stored = self
            .retry_once(move || async move {
                let (_pool, client) = self.conn().await?;
                let stored = self.stored_ids(&client, refs).await;
                client.done();
                stored
            })
            .await?;
        Ok(ids.iter().map(|id| stored.contains(id)).collect())
    }

    pub async fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        let (pool, client) = self.conn().await?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let rows = self
            .statements
            .query(
                &client,
                &format!(
                    "DELETE FROM {} WHERE id = ANY($1::varchar[]) RETURNING id",
                    self.table
                ),
                &[(&refs, Type::VARCHAR_ARRAY)],
            )
            .await;
        client.done();
        let rows = rows.map_err(|e| {
            pool.note_error();
            pg_err("delete", e)
        })?;
        let mut removed: HashSet<String> = rows
            .iter()
            .map(|r| r.try_get::<_, String>(0).map_err(|e| pg_err("delete", e)))
            .collect::<Result<_>>()?;
        // A repeated id was removed once: by its first occurrence.
        Ok(ids.iter().map(|id| removed.remove(id)).collect())
    }

    /// Runs `sql` (a `Plan::select`) and hands each fetched row to `each`, a page of
    /// `SCAN_PAGE` rows per round trip (a portal in a read-only transaction), until `each`
    /// returns false.
    async fn scan(
        &self,
        client: &mut Object,
        sql: &str,
        plan: &Plan,
        mut each: impl FnMut(&tokio_postgres::Row) -> Result<bool> + Send,
    ) -> Result<()> {
        let op = |e| pg_err("search", e);
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(op)?;
        // True when every row was seen. The statement and portal live inside: they are dropped,
        // which queues their Close, before the transaction ends (see `Statements`).
        let read = async {
            // A text without parameters is one of the few plain scans; the others vary.
            let stmt = self
                .statements
                .for_portal(&tx, sql, plan.params.is_empty())
                .await
                .map_err(op)?;
            let portal = tx.bind(&stmt, &plan.args()).await.map_err(op)?;
            loop {
                let page = tx.query_portal(&portal, SCAN_PAGE).await.map_err(op)?;
                let last = page.len() < SCAN_PAGE as usize;
                for r in &page {
                    if !each(r)? {
                        return Ok(false);
                    }
                }
                if last {
                    return Ok(true);
                }
            }
        }
        .await;
        match read {
            Ok(true) => tx.commit().await.map_err(op),
            Ok(false) => {
                self.statements.rollback(tx).await;
                Ok(())
            }
            Err(e) => {
                self.statements.rollback(tx).await;
                Err(e)
            }
        }
    }

    /// Hands every row of `sql` (a `Plan::select` in `Order::Scan`) to `each` as the server
    /// sends it: one statement, no portal, so the server's scan and the decoding here overlap
    /// (a portal stops the scan at every page until the next is asked for).
    async fn scan_all(
        &self,
        client: &Object,
        sql: &str,
        plan: &Plan,
        mut each: impl FnMut(&tokio_postgres::Row) -> Result<()> + Send,
    ) -> Result<()> {
        self.scan_window(client, sql, plan, |r| each(r).map(|()| true))
            .await
    }

    /// Hands the rows of `sql`, a statement whose LIMIT bounds them, to `each` until it returns
    /// false: one unnamed statement, one round trip, where a portal in a read-only transaction
    /// (`scan`) costs BEGIN, Parse, Bind, Execute and COMMIT. Rows left unread when `each`
    /// stops are at most the LIMIT; the driver discards them.
    async fn scan_window(
        &self,
        client: &Object,
        sql: &str,
        plan: &Plan,
        mut each: impl FnMut(&tokio_postgres::Row) -> Result<bool> + Send,
    ) -> Result<()> {
        let op = |e| pg_err("search", e);
        let rows = client
            .query_typed_raw(sql, plan.typed_args())
            .await
            .map_err(op)?;
        pin_mut!(rows);
        while let Some(r) = rows.try_next().await.map_err(op)? {
            if !each(&r)? {
                break;
            }
        }
        Ok(())
    }

    pub async fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>> {
        let q = CompiledQuery::new(spec)?;
        let q = &q;
        self.retry_once(move || async move {
            let (_pool, mut client) = self.conn().await?;
            let rows = self.search_with(&mut client, q, spec).await;
            client.done();
            rows
        })
        .await
    }

    async fn search_with(
        &self,
        client: &mut Object,
        q: &CompiledQuery,
        spec: &QuerySpec,
    ) -> Result<Vec<Row>> {
        if let Some(ids) = q.id_candidates() {
            let rows = self.rows_by_id(client, &ids).await?;
            return q.apply_owned(rows);
        }
        if q.limit() == Some(0) {
            return Ok(Vec::new());
        }
        let plan = Plan::new(spec.cond.as_ref());
        if q.has_sort() {
            // The server sorts only to cut a window: without a limit every match comes back
            // anyway, and rows taken in scan order (decoded while the server scans) then sorted
            // here beat a server sort that must finish before the first row leaves.
            if let Some(sort) = q.limit().and(sql::sort_sql(&spec.sort)) {
                let mut hits = Vec::new();
                if self
                    .search_sorted_in_sql(client, q, &plan, &sort, &mut hits)
                    .await?
                {
                    return Ok(hits);
                }
            }
            return Ok(q.shape(self.every_match(client, q, &plan).await?));
        }
        if q.limit().is_none() {
            let hits = self.every_match(client, q, &plan).await?;
            return Ok(hits
                .into_iter()
                .skip(q.offset())
                .map(|r| q.project_row(r))
                .collect());
        }
        let mut hits = Vec::new();
        if plan.exact {
            // The server selects exactly the window: reading the seq index until it is full
            // beats any index hint on a common value.
            let plan = Plan::build(spec.cond.as_ref(), false);
            let sql = plan.select(
                &self.table,
                Rows::Candidates,
                Order::Storage,
                Some((q.offset(), q.limit())),
            );
            self.scan_window(client, &sql, &plan, |r| {
                hits.push(q.project_row(self.decode_row(r)?));
                Ok(true)
            })
            .await?;
            return Ok(hits);
        }
        // Storage order, so stop as soon as the window is full.
        let mut skip = q.offset();
        let sql = plan.select(&self.table, Rows::Candidates, Order::Storage, None);
        self.scan(client, &sql, &plan, |r| {
            let row = self.decode_row(r)?;
            if is_sure(r)? || q.matches(&row)? {
                if skip > 0 {
                    skip -= 1;
                } else {
                    hits.push(q.project_row(row));
                }
            }
            Ok(Some(hits.len()) != q.limit())
        })
        .await?;
        Ok(hits)
    }

    /// Every row matching `q`, whole (not projected), in storage order.
    async fn every_match(
        &self,
        client: &Object,
        q: &CompiledQuery,
        plan: &Plan,
    ) -> Result<Vec<Row>> {
        let sql = plan.select(&self.table, Rows::Candidates, Order::Scan, None);
        let mut found = Vec::new();
        self.scan_all(client, &sql, plan, |r| {
            let row = self.decode_row(r)?;
            if is_sure(r)? || q.matches(&row)? {
                found.push((seq_of(r)?, row));
            }
            Ok(())
        })
        .await?;
        found.sort_unstable_by_key(|(seq, _)| *seq);
        Ok(found.into_iter().map(|(_, row)| row).collect())
    }

    /// The sorted window with the server doing the sort and the limit. False when a sort value
    /// only the reference can order turned up: `hits` is then incomplete and the caller sorts
    /// in Rust.
    ///
    /// The server returns the first `offset + limit` candidates in the query's order, one
    /// statement. Every match is a candidate and both are in the same order, so the matches
    /// among those candidates are the first matches overall: when the predicate is exact they
    /// are the window, and when it is not, they are still the window unless rows the reference
    /// rejected left it short while the server had more candidates to give. Only then are the
    /// candidates read again without a limit (a portal, stopping when the window is full).
    /// Before, an inexact predicate (any number comparison: odd Decimals are the reference's
    /// to decide) sent no LIMIT, so the server sorted every candidate and sent pages of 2,000.
    async fn search_sorted_in_sql(
        &self,
        client: &mut Object,
        q: &CompiledQuery,
        plan: &Plan,
        sort: &sql::SortSql,
        hits: &mut Vec<Row>,
    ) -> Result<bool> {
        let Some(limit) = q.limit() else {
            return Ok(false);
        };
        let wanted = limit.saturating_add(q.offset());
        let sql = plan.select(
            &self.table,
            Rows::Candidates,
            Order::Sql(sort),
            Some((0, Some(wanted))),
        );
        let mut window = Window::new(q, limit);
        let mut fetched = 0;
        self.scan_window(client, &sql, plan, |r| {
            fetched += 1;
            window.take(r, &self.source, hits)
        })
        .await?;
        if !window.in_sql {
            return Ok(false);
        }
        if plan.exact || fetched < wanted || hits.len() == limit {
            return Ok(true);
        }
        hits.clear();
        let sql = plan.select(&self.table, Rows::Candidates, Order::Sql(sort), None);
        let mut window = Window::new(q, limit);
        self.scan(client, &sql, plan, |r| window.take(r, &self.source, hits))
            .await?;
        Ok(window.in_sql)
    }

    pub async fn count(&self, spec: &QuerySpec) -> Result<usize> {
        let q = CompiledQuery::new(spec)?;
        let q = &q;
        self.retry_once(move || self.count_once(q, spec)).await
    }

    async fn count_once(&self, q: &CompiledQuery, spec: &QuerySpec) -> Result<usize> {
        let (_pool, mut client) = self.conn().await?;
        let n = self.count_with(&mut client, q, spec).await;
        client.done();
        n
    }

    async fn count_with(
        &self,
        client: &mut Object,
        q: &CompiledQuery,
        spec: &QuerySpec,
    ) -> Result<usize> {
        let op = |e| pg_err("count", e);
        let as_count = |n: i64| usize::try_from(n).unwrap_or(0);
        if let Some(ids) = q.id_candidates() {
            let n: i64 = self
                .statements
                .query_one(
                    client,
                    &format!(
                        "SELECT count(*) FROM {} WHERE id = ANY($1::varchar[])",
                        self.table
                    ),
                    &[(&ids, Type::VARCHAR_ARRAY)],
                )
                .await
                .map_err(op)?
                .get(0);
            return Ok(as_count(n));
        }
        let plan = Plan::new(spec.cond.as_ref());
        let (mut sure, mut unsure) = (0, 0);
        for row in self
            .statements
            .query_once(client, &plan.count(&self.table), &plan.typed_args())
            .await
            .map_err(op)?
        {
            let n = as_count(row.try_get(1).map_err(op)?);
            match row.try_get::<_, Option<bool>>(0).map_err(op)? {
                Some(true) => sure = n,
                Some(false) => {}
                None => unsure = n,
            }
        }
        if unsure == 0 {
            return Ok(sure);
        }
        // Only the rows SQL could not decide go through the reference.
        let mut n = sure;
        let sql = plan.select(&self.table, Rows::Doubtful, Order::Scan, None);
        self.scan_all(client, &sql, &plan, |r| {
            if q.matches(&self.decode_row(r)?)? {
                n += 1;
            }
            Ok(())
        })
        .await?;
        Ok(n)
    }

    /// The groups and metrics of the matching rows (docs/aggregations.md), computed by the
    /// core's accumulators over one scan of the candidates (rows SQL decided are not
    /// re-checked): memory holds the groups, not the rows.
    pub async fn aggregate(&self, spec: &QuerySpec, agg: &Arc<AggSpec>) -> Result<Vec<AggRow>> {
        let q = aggregate::condition_of(spec)?;
        let q = &q;
        self.retry_once(move || async move {
            let (_pool, mut client) = self.conn().await?;
            let rows = self.aggregate_with(&mut client, q, spec, agg).await;
            client.done();
            rows
        })
        .await
    }

    async fn aggregate_with(
        &self,
        client: &mut Object,
        q: &CompiledQuery,
        spec: &QuerySpec,
        agg: &Arc<AggSpec>,
    ) -> Result<Vec<AggRow>> {
        if let Some(ids) = q.id_candidates() {
            let rows = self.rows_by_id(client, &ids).await?;
            return aggregate::over_rows(spec, agg, &rows);
        }
        let plan = Plan::new(spec.cond.as_ref());
        let sql = plan.select(&self.table, Rows::Candidates, Order::Scan, None);
        let mut acc = aggregate::Aggregator::new(Arc::clone(agg));
        self.scan_all(client, &sql, &plan, |r| {
            let row = self.decode_row(r)?;
            if is_sure(r)? || q.matches(&row)? {
                acc.push(&row);
            }
            Ok(())
        })
        .await?;
        Ok(acc.finish())
    }

    pub async fn clear(&self) -> Result<usize> {
        let (pool, client) = self.conn().await?;
        let n = self
            .statements
            .execute(&client, &format!("DELETE FROM {}", self.table), &[])
            .await;
        client.done();
        let n = n.map_err(|e| {
            pool.note_error();
            pg_err("clear", e)
        })?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Pages of at most `batch_size` rows. Unsorted queries stream from a portal on a
    /// connection the producer task owns; dropping the cursor stops the task, which rolls back
    /// its read-only transaction and returns the connection. Sorted (and id) queries are
    /// evaluated first and then paged.
    pub async fn stream(
        &self,
        spec: QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<Streamed> {
        let batch_size = batch_size.max(1);
        let q = CompiledQuery::new(&spec)?;
        let (pool, mut client) = self.conn().await?;
        if q.has_sort() || q.id_candidates().is_some() {
            let rows = self.search_with(&mut client, &q, &spec).await;
            client.done();
            return Ok(Streamed::Rows(memory::stream_rows(
                rows?, batch_size, prefetch,
            )?));
        }
        // Whole rows go out as their stored text: a projection needs them decoded.
        if q.projects() {
            let (tx, cursor) = Cursor::channel(prefetch);
            self.spawn_producer(spec, q, pool, client, batch_size, tx);
            Ok(Streamed::Rows(cursor))
        } else {
            let (tx, cursor) = Cursor::channel(prefetch);
            self.spawn_producer(spec, q, pool, client, batch_size, tx);
            Ok(Streamed::Text(cursor))
        }
    }

    fn spawn_producer<T: Fetched>(
        &self,
        spec: QuerySpec,
        q: CompiledQuery,
        pool: Arc<SharedPool>,
        mut client: Guarded,
        batch_size: usize,
        tx: PageSender<T>,
    ) {
        let plan = Plan::new(spec.cond.as_ref());
        let window = plan.exact.then_some((q.offset(), q.limit()));
        let producer = Producer {
            sql: plan.select(&self.table, Rows::Candidates, Order::Storage, window),
            statements: self.statements,
            plan,
            source: Arc::clone(&self.source),
            _pool: pool,
        };
        tokio::spawn(async move {
            let outcome = producer.run(&mut client, q, batch_size, &tx).await;
            // The connection goes back to the pool before the last page waits for a reader.
            client.done();
            match outcome {
                Ok(Some(last)) => {
                    if last.is_empty() || tx.send(last).await {
                        tx.end().await;
                    }
                }
                // The consumer went away.
                Ok(None) => {}
                Err(e) => {
                    tx.send_result(Err(e)).await;
                }
            }
        });
    }

    /// A search delivered as it is found, for a sorted query without a limit (whose every
    /// match comes back anyway): the matches leave as text pages in the order the scan meets
    /// them, so the consumer makes its objects while the server still scans, and once every page
    /// is out, `order` gives the result as positions among them (sort, offset and projection
    /// are the caller's to apply: a projected query should use `search`).
    pub async fn search_paged(
        &self,
        spec: QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<PagedSearch> {
        let q = CompiledQuery::new(&spec)?;
        let sort_reads = Reads::new(&spec, false, true);
        let (pool, client) = self.conn().await?;
        let plan = Plan::new(spec.cond.as_ref());
        let sql = plan.select(&self.table, Rows::Candidates, Order::Scan, None);
        let (tx, pages) = Cursor::channel(prefetch);
        let (order_tx, order) = tokio::sync::oneshot::channel();
        let source = Arc::clone(&self.source);
        tokio::spawn(async move {
            let _pool = pool;
            let found = async {
                let op = |e| pg_err("search", e);
                let rows = client
                    .query_typed_raw(&sql, plan.typed_args())
                    .await
                    .map_err(op)?;
                pin_mut!(rows);
                let mut keys = Vec::new();
                let mut pager: Pager<TextRow> = Pager::new(0, None, batch_size);
                while let Some(r) = rows.try_next().await.map_err(op)? {
                    // A decided row is read only for its sort keys: decoding all of it held
                    // up reading the socket, and with it the server's scan.
                    let row = if is_sure(&r)? {
                        let text = |i: usize| r.try_get::<_, JsonText<'_>>(i).map_err(read_err);
                        let id: &str = r.try_get(0).map_err(read_err)?;
                        sort_reads.partial(id, text(1)?.0, text(2)?.0, &*source)?
                    } else {
                        let row = decode_row(&r, &source)?;
                        if !q.matches(&row)? {
                            continue;
                        }
                        row
                    };
                    keys.push((seq_of(&r)?, q.owned_sort_keys(&row)));
                    if let Some(full) = pager.push(TextRow::make(&r, None, &q, &source)?) {
                        if !tx.send(full).await {
                            return Ok(None);
                        }
                    }
                }
                if let Some(last) = pager.finish() {
                    if !tx.send(last).await {
                        return Ok(None);
                    }
                }
                Ok(Some(q.window_of(&keys)))
            }
            .await;
            match found {
                Ok(Some(order)) => {
                    client.done();
                    let _ = order_tx.send(Ok(order));
                    tx.end().await;
                }
                // The consumer went away: the guard cancels what the server still runs.
                Ok(None) => {}
                Err(e) => {
                    client.done();
                    tx.send_result(Err(e)).await;
                }
            }
        });
        Ok(PagedSearch { pages, order })
    }

    /// Idempotent; releases this store's hold on the shared pool.
    pub fn close(&self) -> Result<()> {
        let pool = self.pool.write().take();
        drop(pool);
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.pool.read().is_none()
    }
}

/// See [`PostgresStore::search_paged`].
pub struct PagedSearch {
    pub pages: Cursor<TextRow>,
    /// Positions among the rows of `pages` of the result, in its order; an error travels on
    /// `pages` instead.
    pub order: tokio::sync::oneshot::Receiver<Result<Vec<usize>>>,
}

/// A stream's pages: decoded rows, or rows as stored for the consumer to decode.
pub enum Streamed {
    Rows(Cursor),
    Text(Cursor<TextRow>),
}

/// What a stream producer makes of a fetched row that matched; `decoded` is the row when the
/// reference had to decode it to check it.
trait Fetched: Sized + Send + 'static {
    fn make(
        r: &tokio_postgres::Row,
        decoded: Option<Row>,
        q: &CompiledQuery,
        source: &Arc<str>,
    ) -> Result<Self>;
}

impl Fetched for Row {
    fn make(
        r: &tokio_postgres::Row,
        decoded: Option<Row>,
        q: &CompiledQuery,
        source: &Arc<str>,
    ) -> Result<Row> {
        let row = match decoded {
            Some(row) => row,
            None => decode_row(r, source)?,
        };
        Ok(q.project_row(row))
    }
}

impl Fetched for TextRow {
    fn make(
        r: &tokio_postgres::Row,
        _decoded: Option<Row>,
        _q: &CompiledQuery,
        source: &Arc<str>,
    ) -> Result<TextRow> {
        let text = |i: usize| -> Result<String> {
            Ok(r.try_get::<_, JsonText<'_>>(i)
                .map_err(read_err)?
                .0
                .to_owned())
        };
        Ok(TextRow {
            id: r.try_get(0).map_err(read_err)?,
            data: text(1)?,
            metadata: text(2)?,
            source: Arc::clone(source),
        })
    }
}

/// The stream producer: owns what it needs so it outlives the call that started it.
struct Producer {
    sql: String,
    statements: Statements,
    plan: Plan,
    /// `table "schema"."name"`, for errors.
    source: Arc<str>,
    /// Keeps the pool alive while the stream runs, even if the store closes.
    _pool: Arc<SharedPool>,
}

impl Producer {
    async fn run<T: Fetched>(
        &self,
        client: &mut Object,
        q: CompiledQuery,
        batch_size: usize,
        out: &PageSender<T>,
    ) -> Result<Option<Vec<T>>> {
        let op = |e| pg_err("stream_read", e);
        let fetch = i32::try_from(batch_size.clamp(256, 10_000)).unwrap_or(10_000);
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(op)?;
        // The last page when every row was seen, None when the consumer went away. The
        // statement and portal live inside: they are dropped, which queues their Close, before
        // the transaction ends (see `Statements`).
        let read = async {
            let stmt = self
                .statements
                .for_portal(&tx, &self.sql, false)
                .await
                .map_err(op)?;
            let portal = tx.bind(&stmt, &self.plan.args()).await.map_err(op)?;
            // An exact plan already applied the condition and the window on the server.
            let mut pager = if self.plan.exact {
                Pager::new(0, None, batch_size)
            } else {
                Pager::new(q.offset(), q.limit(), batch_size)
            };
            while pager.wants_more() {
                if out.is_closed() {
                    return Ok(None);
                }
                let rows = tx.query_portal(&portal, fetch).await.map_err(op)?;
                let last = rows.len() < fetch as usize;
                for r in &rows {
                    if !pager.wants_more() {
                        break;
                    }
                    let decoded = if is_sure(r)? {
                        None
                    } else {
                        let row = decode_row(r, &self.source)?;
                        if !q.matches(&row)? {
                            continue;
                        }
                        Some(row)
                    };
                    if let Some(full) = pager.push(T::make(r, decoded, &q, &self.source)?) {
                        if !out.send(full).await {
                            return Ok(None);
                        }
                    }
                }
                if last {
                    break;
                }
            }
            Ok(Some(pager.finish().unwrap_or_default()))
        }
        .await;
        match read {
            Ok(Some(page)) => {
                tx.commit().await.map_err(op)?;
                Ok(Some(page))
            }
            // The consumer is gone: nothing more to read.
            Ok(None) => {
                self.statements.rollback(tx).await;
                Ok(None)
            }
            Err(e) => {
                self.statements.rollback(tx).await;
                Err(e)
            }
        }
    }
}

/// How a condition reaches the server: a three-valued predicate (sql.rs), an index hint it
/// implies, and the text parameters they bind.
struct Plan {
    pred: String,
    hint: String,
    params: Vec<String>,
    /// The predicate is never NULL: every row it keeps matches.
    exact: bool,
}

/// The order `Plan::select` asks the server for.
#[derive(Clone, Copy)]
enum Order<'a> {
    /// Storage order (`seq`), which a window or a page can be cut from.
    Storage,
    /// The query's sort, translated (sql::sort_sql).
    Sql(&'a sql::SortSql),
    /// Whatever order the scan finds rows in, for reads that take every row: with no sort to
    /// finish first, rows leave while the server still scans, and `seq` restores storage
    /// order here (`in_storage_order`).
    Scan,
}

/// Which rows a non-exact plan fetches.
#[derive(Clone, Copy)]
enum Rows {
    /// Every row that may match.
    Candidates,
    /// Only the rows SQL could not decide.
    Doubtful,
}

impl Plan {
    fn new(cond: Option<&Cond>) -> Plan {
        Plan::build(cond, true)
    }

    /// `with_hint`: whether to add the index hint (sql.rs `containment`).
    fn build(cond: Option<&Cond>, with_hint: bool) -> Plan {
        match cond {
            None => Plan {
                pred: "true".into(),
                hint: "true".into(),
                params: Vec::new(),
                exact: true,
            },
            Some(c) => {
                let t = sql::translate(c);
                let (pred, hint, params) = t.numbered(with_hint);
                Plan {
                    pred,
                    hint,
                    params,
                    exact: t.pred.is_exact(),
                }
            }
        }
    }

    fn where_clause(&self, pred: &str) -> String {
        match (self.hint.as_str(), pred) {
            ("true", "true") => String::new(),
            ("true", p) => format!(" WHERE {p}"),
            (h, "true") => format!(" WHERE {h}"),
            (h, p) => format!(" WHERE {h} AND {p}"),
        }
    }

    /// `id, data, metadata, sure, complex, seq`: `sure` is true for a row the predicate
    /// decided and NULL for one the reference must check; `complex` flags a sort value only the
    /// reference can order (sql::sort_sql). The window (offset, limit) applies on the server. A
    /// non-exact predicate is evaluated in the WHERE clause for every row and again in the
    /// select list only for the rows kept, which costs less than evaluating it once in a
    /// subquery the planner may not flatten (`OFFSET 0`), since that copies every row (10,000
    /// of 100,000 rows fetched: 34 ms against 37).
    fn select(
        &self,
        table: &str,
        rows: Rows,
        order: Order<'_>,
        window: Option<(usize, Option<usize>)>,
    ) -> String {
        let complex = match order {
            Order::Sql(s) => s.complex.as_str(),
            Order::Storage | Order::Scan => "false",
        };
        let mut sql = if self.exact {
            format!(
                "SELECT id, data, metadata, true, {complex}, seq FROM {table}{}",
                self.where_clause(&self.pred)
            )
        } else {
            let keep = match rows {
                Rows::Candidates => format!("({}) IS NOT FALSE", self.pred),
                Rows::Doubtful => format!("({}) IS NULL", self.pred),
            };
            format!(
                "SELECT id, data, metadata, ({}) AS p, {complex}, seq FROM {table}{}",
                self.pred,
                self.where_clause(&keep)
            )
        };
        match order {
            Order::Sql(s) => sql.push_str(&format!(" ORDER BY 5 DESC, {}", s.terms)),
            Order::Storage => sql.push_str(" ORDER BY seq"),
            Order::Scan => {}
        }
        if let Some((offset, limit)) = window {
            if let Some(l) = limit {
                sql.push_str(&format!(" LIMIT {l}"));
            }
            if offset > 0 {
                sql.push_str(&format!(" OFFSET {offset}"));
            }
        }
        sql
    }

    /// `SELECT p, count(*)`: a row per outcome of the predicate (true, false, NULL for
    /// undecided). Grouping evaluates the predicate once per row without the `OFFSET 0` fence,
    /// whose copy of every row cost more than the predicate (100,000 rows: 29 ms against 39
    /// for two filtered counts over a fenced subquery).
    fn count(&self, table: &str) -> String {
        if self.exact {
            format!(
                "SELECT true, count(*) FROM {table}{}",
                self.where_clause(&self.pred)
            )
        } else {
            format!(
                "SELECT p, count(*) FROM (SELECT ({}) AS p FROM {table}{}) s GROUP BY p",
                self.pred,
                self.where_clause("true")
            )
        }
    }

    fn args(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect()
    }

    /// The parameters with their type: every one is a `$n::text` (sql.rs `numbered`).
    fn typed_args(&self) -> Vec<Param<'_>> {
        self.params
            .iter()
            .map(|p| (p as &(dyn ToSql + Sync), Type::TEXT))
            .collect()
    }
}

/// The reading of a sorted window the server ordered (`search_sorted_in_sql`): skips the
/// offset, checks the rows the predicate left undecided, stops when `limit` rows are in.
struct Window<'q> {
    q: &'q CompiledQuery,
    limit: usize,
    skip: usize,
    first: bool,
    /// False when the first row's sort values are ones only the reference orders.
    in_sql: bool,
}

impl<'q> Window<'q> {
    fn new(q: &'q CompiledQuery, limit: usize) -> Window<'q> {
        Window {
            q,
            limit,
            skip: q.offset(),
            first: true,
            in_sql: true,
        }
    }

    /// Takes one fetched row; false when no more are wanted.
    fn take(&mut self, r: &tokio_postgres::Row, source: &str, hits: &mut Vec<Row>) -> Result<bool> {
        // The first row must be seen to know the order holds, so the offset is skipped here.
        if std::mem::take(&mut self.first) && r.try_get::<_, bool>(4).map_err(read_err)? {
            self.in_sql = false;
            return Ok(false);
        }
        let sure = is_sure(r)?;
        if sure && self.skip > 0 {
            self.skip -= 1;
            return Ok(true);
        }
        let row = decode_row(r, source)?;
        if !sure && !self.q.matches(&row)? {
            return Ok(true);
        }
        if self.skip > 0 {
            self.skip -= 1;
            return Ok(true);
        }
        hits.push(self.q.project_row(row));
        Ok(hits.len() != self.limit)
    }
}

/// Sends the binary COPY of `rows` into `sink` and waits for the server's count. A row that
/// cannot be encoded aborts the COPY (the sink dropped unfinished sends CopyFail).
async fn send_copy(
    sink: tokio_postgres::CopyInSink<bytes::Bytes>,
    rows: &[Row],
) -> std::result::Result<u64, CopyFailed> {
    pin_mut!(sink);
    for piece in jsonb::copy_stream(rows) {
        sink.feed(piece.map_err(CopyFailed::Encode)?).await?;
    }
    Ok(sink.finish().await?)
}

/// Why a COPY failed: the server or the wire, or a row that could not be encoded.
enum CopyFailed {
    Pg(tokio_postgres::Error),
    Encode(std::io::Error),
}

impl From<tokio_postgres::Error> for CopyFailed {
    fn from(e: tokio_postgres::Error) -> CopyFailed {
        CopyFailed::Pg(e)
    }
}

fn read_err(e: tokio_postgres::Error) -> Error {
    pg_err("read", e)
}

/// Whether the predicate decided a fetched row (column 3 of `Plan::select`).
fn is_sure(r: &tokio_postgres::Row) -> Result<bool> {
    Ok(r.try_get::<_, Option<bool>>(3).map_err(read_err)? == Some(true))
}

/// The storage position of a fetched row (column 5 of `Plan::select`).
fn seq_of(r: &tokio_postgres::Row) -> Result<i64> {
    r.try_get(5).map_err(read_err)
}

/// A fetched `id, data, metadata` row as a core row; a failure names the record and `source`.
fn decode_row(r: &tokio_postgres::Row, source: &str) -> Result<Row> {
    let id: String = r.try_get(0).map_err(read_err)?;
    let data: JsonText<'_> = r.try_get(1).map_err(read_err)?;
    let meta: JsonText<'_> = r.try_get(2).map_err(read_err)?;
    let data = crate::row::decode_stored(&id, "data", data.0, source)?;
    let metadata = crate::row::decode_stored(&id, "metadata", meta.0, source)?;
    Ok(Row { id, data, metadata })
}

#[cfg(test)]
mod tests;
