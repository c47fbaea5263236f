//! SQLite store: one table `id, data, metadata, created_at, updated_at` with tagged JSON text.
//! Storage order is rowid order. A condition becomes a three-valued predicate over SQLite's JSON
//! functions (sqlite/sql.rs): where it decides every row, `count` runs in the engine, and a
//! sorted, limited search without a condition is sorted there, so only the rows returned are
//! decoded; rows it leaves undecided go to the compiled query (the reference semantics), which
//! decodes just the fields it reads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::aggregate::{self, AggOp, AggRow, AggSpec};
use crate::codec;
use crate::cursor::{Cursor, PageSender, Pager};
use crate::error::detail;
use crate::error::{Error, Result};
use crate::memory;
use crate::query::{CompiledQuery, QuerySpec};
use crate::row::{Reads, Row};
use crate::store::{Store, WriteOp};
use crate::value::Value;

mod sql;

/// Parameters per `IN (...)` statement, well under SQLite's variable limit.
const IN_CHUNK: usize = 500;

pub struct SqliteStore {
    conn: Mutex<Option<Connection>>,
    /// The table name, validated and double-quoted.
    table: String,
    /// Whether `id` is the table's whole primary key, so an insert of a stored id fails on the
    /// constraint and `create_batch` needs no separate duplicate lookup. A table made elsewhere
    /// may lack that key; it gets the lookup.
    id_is_key: bool,
}

fn config(parameter: &str, message: impl std::fmt::Display) -> Error {
    Error::Config {
        parameter: parameter.to_string(),
        message: message.to_string(),
    }
}

fn op_err(operation: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| Error::operation(operation, e)
}

fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

/// A row as stored: id and the tagged JSON text of data and metadata. The Python bridge
/// builds these straight from Python objects, skipping the `Value` tree.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedRow {
    pub id: String,
    pub data: String,
    pub metadata: String,
}

/// Something a write can bind: a decoded row is encoded into reused buffers, so a batch costs
/// no allocation per row.
trait Source {
    fn id(&self) -> &str;
    fn texts<'a>(&'a self, data: &'a mut String, meta: &'a mut String) -> (&'a str, &'a str);
}

impl Source for Row {
    fn id(&self) -> &str {
        &self.id
    }

    fn texts<'a>(&'a self, data: &'a mut String, meta: &'a mut String) -> (&'a str, &'a str) {
        data.clear();
        codec::push_map(data, &self.data);
        meta.clear();
        codec::push_map(meta, &self.metadata);
        (data.as_str(), meta.as_str())
    }
}

impl Source for EncodedRow {
    fn id(&self) -> &str {
        &self.id
    }

    fn texts<'a>(&'a self, _: &'a mut String, _: &'a mut String) -> (&'a str, &'a str) {
        (&self.data, &self.metadata)
    }
}

fn is_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

// ---------------------------------------------------------------------------------------------
// Query plans

/// A query ready to run: the compiled query, its condition in SQL and what each row must
/// decode for the compiled query to decide it.
struct Prepared {
    q: CompiledQuery,
    /// The condition as SQL (None without one).
    cond: Option<sql::Where>,
    /// The sort as SQL, for a search without a condition whose sort has a SQL reading.
    sort: Option<sql::SortSql>,
    plan: Reads,
}

/// The weight of an undecided row in the one-pass count (`count_in_engine`): the count of
/// undecided rows rides in the high bits of the same sum.
const UNDECIDED: i64 = 1 << 32;

impl Prepared {
    fn new(spec: &QuerySpec, with_sort: bool) -> Result<Prepared> {
        let q = CompiledQuery::new(spec)?;
        let cond = spec.cond.as_ref().map(sql::translate);
        // SQLite sorts only an unconditioned search, where it saves decoding every row: with
        // a condition, the core's sort of the kept rows' partial decode measured faster than
        // SQLite's ORDER BY over the JSON functions (docs/performance.md).
        let sort = if with_sort && cond.is_none() && !spec.sort.is_empty() {
            sql::sort_sql(&spec.sort)
        } else {
            None
        };
        Ok(Prepared {
            q,
            cond,
            sort,
            plan: Reads::new(spec, true, with_sort),
        })
    }

    /// The predicate: 1, 0, or NULL where the compiled query must decide.
    fn pred(&self) -> &str {
        self.cond.as_ref().map_or("true", |c| c.sql.as_str())
    }

    /// ` WHERE` keeping the rows the predicate does not rule out, or nothing.
    fn where_sql(&self) -> String {
        match &self.cond {
            Some(c) => format!(" WHERE ({}) IS NOT false", c.sql),
            None => String::new(),
        }
    }

    /// A result column: whether the compiled query must decide the row.
    fn undecided_sql(&self) -> String {
        match &self.cond {
            Some(c) => format!("({}) IS NULL", c.sql),
            None => "false".into(),
        }
    }

    fn params(&self) -> Vec<&dyn rusqlite::ToSql> {
        self.cond.as_ref().map_or_else(Vec::new, |c| {
            c.params.iter().map(|a| a as &dyn rusqlite::ToSql).collect()
        })
    }
}

impl SqliteStore {
    pub fn open(
        path: &str,
        table: &str,
        timeout_secs: f64,
        journal_mode: Option<&str>,
        synchronous: Option<&str>,
        auto_create_table: bool,
    ) -> Result<SqliteStore> {
        if !valid_identifier(table) {
            return Err(config(
                "table",
                format!("invalid table name {table:?}: use letters, digits and _, not starting with a digit"),
            ));
        }
        if !timeout_secs.is_finite() || timeout_secs < 0.0 {
            return Err(config(
                "timeout",
                format!("must be a non-negative number of seconds, got {timeout_secs}"),
            ));
        }
        let journal_mode = journal_mode
            .map(|j| {
                let up = j.to_ascii_uppercase();
                if ["DELETE", "TRUNCATE", "PERSIST", "MEMORY", "WAL", "OFF"].contains(&up.as_str())
                {
                    Ok(up)
                } else {
                    Err(config(
                        "journal_mode",
                        format!("{j:?} is not one of DELETE, TRUNCATE, PERSIST, MEMORY, WAL, OFF"),
                    ))
                }
            })
            .transpose()?;
        let synchronous = synchronous
            .map(|s| {
                let up = s.to_ascii_uppercase();
                if ["OFF", "NORMAL", "FULL", "EXTRA", "0", "1", "2", "3"].contains(&up.as_str()) {
                    Ok(up)
                } else {
                    Err(config(
                        "synchronous",
                        format!("{s:?} is not one of OFF, NORMAL, FULL, EXTRA"),
                    ))
                }
            })
            .transpose()?;
        let conn = Connection::open(path).map_err(|e| Error::Connection {
            backend: "sqlite".into(),
            message: format!("{path}: {e}"),
        })?;
        conn.busy_timeout(Duration::from_secs_f64(timeout_secs))
            .map_err(op_err("connect"))?;
        if let Some(j) = journal_mode {
            conn.query_row(&format!("PRAGMA journal_mode={j}"), [], |r| {
                r.get::<_, String>(0)
            })
            .map_err(op_err("connect"))?;
        }
        if let Some(s) = synchronous {
            conn.execute_batch(&format!("PRAGMA synchronous={s}"))
                .map_err(op_err("connect"))?;
        }
        let quoted = format!("\"{table}\"");
        if auto_create_table {
            conn.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {quoted} (id TEXT PRIMARY KEY, data TEXT NOT NULL, \
                 metadata TEXT NOT NULL, created_at TEXT, updated_at TEXT)"
            ))
            .map_err(op_err("create_table"))?;
        } else {
            let found: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .optional()
                .map_err(op_err("connect"))?;
            if found.is_none() {
                return Err(Error::operation(
                    "connect",
                    format!("table {table:?} does not exist and auto_create_table is false"),
                ));
            }
        }
        let id_is_key = conn
            .query_row(
                "SELECT COUNT(*) = 1 AND SUM(name = 'id') = 1 FROM pragma_table_info(?1) \
                 WHERE pk > 0",
                [table],
                |r| r.get::<_, Option<bool>>(0),
            )
            .map_err(op_err("connect"))?
            .unwrap_or(false);
        Ok(SqliteStore {
            conn: Mutex::new(Some(conn)),
            table: quoted,
            id_is_key,
        })
    }

    fn with_conn<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R>) -> Result<R> {
        let mut g = self.conn.lock();
        match g.as_mut() {
            Some(c) => f(c),
            None => Err(Error::Closed("SqliteStore".into())),
        }
    }

    fn decode(&self, id: String, data: &str, metadata: &str) -> Result<Row> {
        let name = |what: &str, e: Error| {
            Error::data_format(
                "json",
                format!(
                    "record {id:?} in table {}: {what}: {}",
                    self.table,
                    detail(&e)
                ),
            )
        };
        let data = codec::decode_map(data).map_err(|e| name("data", e))?;
        let metadata = codec::decode_map(metadata).map_err(|e| name("metadata", e))?;
        Ok(Row { id, data, metadata })
    }

    /// Runs `sql` (selecting rowid, id, data, metadata) and hands each row's stored text to
    /// `each`, which returns false to stop early.
    fn scan_raw(
        &self,
        conn: &Connection,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
        mut each: impl FnMut(i64, &str, &str, &str) -> Result<bool>,
    ) -> Result<()> {
        self.scan_flagged(conn, sql, args, |rowid, id, data, meta, _| {
            each(rowid, id, data, meta)
        })
    }

    /// `scan_raw` for a statement with a fifth column, the row's flag (`Prepared::undecided_sql`
    /// or the sort's `complex`).
    fn scan_flagged(
        &self,
        conn: &Connection,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
        mut each: impl FnMut(i64, &str, &str, &str, bool) -> Result<bool>,
    ) -> Result<()> {
        let mut stmt = conn.prepare_cached(sql).map_err(op_err("search"))?;
        let flagged = stmt.column_count() > 4;
        let mut rows = stmt.query(args).map_err(op_err("search"))?;
        while let Some(r) = rows.next().map_err(op_err("search"))? {
            let rowid: i64 = r.get(0).map_err(op_err("search"))?;
            let id = r.get_ref(1).map_err(op_err("search"))?;
            let id = id.as_str().map_err(|e| self.not_text("?", e))?;
            let data = r.get_ref(2).map_err(op_err("search"))?;
            let data = data.as_str().map_err(|e| self.not_text(id, e))?;
            let meta = r.get_ref(3).map_err(op_err("search"))?;
            let meta = meta.as_str().map_err(|e| self.not_text(id, e))?;
            let flag =
                flagged && r.get::<_, Option<bool>>(4).map_err(op_err("search"))? == Some(true);
            if !each(rowid, id, data, meta, flag)? {
                break;
            }
        }
        Ok(())
    }

    /// `scan_raw`, decoding every row.
    fn scan(
        &self,
        conn: &Connection,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
        mut each: impl FnMut(i64, Row) -> Result<bool>,
    ) -> Result<()> {
        self.scan_raw(conn, sql, args, |rowid, id, data, meta| {
            let row = self.decode(id.to_string(), data, meta)?;
            each(rowid, row)
        })
    }

    /// The part of a stored row that `plan` reads (`Reads::partial`).
    fn partial(&self, plan: &Reads, id: &str, data: &str, meta: &str) -> Result<Row> {
        plan.partial(id, data, meta, format_args!("table {}", self.table))
    }

    fn not_text(&self, id: &str, e: impl std::fmt::Display) -> Error {
        Error::data_format(
            "json",
            format!("record {id:?} in table {}: {e}", self.table),
        )
    }

    /// The aggregation as one `GROUP BY`, when SQLite's answer is the core's exactly: every
    /// metric a count, every group and metric field `id` or a plain top-level name (for which
    /// `data -> '$."name"'` is the core's path lookup), and `exact_where` (SQL and its
    /// parameters) a condition that keeps exactly the matching rows. Groups are the keys'
    /// JSON text, decoded and merged by the core (`aggregate::from_group_counts`). None when
    /// the core must do it: the aggregation is of another kind, or a row's data is a `$map`
    /// escape, whose fields the JSON paths cannot see.
    fn aggregate_in_sql(
        &self,
        conn: &Connection,
        exact_where: Option<(&str, &[&dyn rusqlite::ToSql])>,
        agg: &AggSpec,
    ) -> Result<Option<Vec<AggRow>>> {
        let plain = |f: &str| {
            !f.is_empty()
                && f != "metadata"
                && f.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        };
        let countable = agg.metrics().iter().all(|m| {
            m.op == AggOp::Count && m.field.as_deref().is_none_or(|f| f != "id" && plain(f))
        });
        if !countable || !agg.group_by().iter().all(|g| g == "id" || plain(g)) {
            return Ok(None);
        }
        let mut cols: Vec<String> = agg
            .group_by()
            .iter()
            .map(|g| match g.as_str() {
                "id" => "json_quote(id)".to_string(),
                g => format!("data -> '$.\"{g}\"'"),
            })
            .collect();
        let keys = cols.len();
        cols.push("max(json_type(data, '$.\"$map\"') IS NOT NULL)".into());
        cols.extend(agg.metrics().iter().map(|m| match &m.field {
            None => "count(*)".to_string(),
            Some(f) => {
                format!("count(CASE WHEN json_type(data, '$.\"{f}\"') <> 'null' THEN 1 END)")
            }
        }));
        let (where_sql, args) = match exact_where {
            Some((w, a)) => (format!(" WHERE {w}"), a),
            None => (String::new(), &[][..]),
        };
        let group = if keys == 0 {
            String::new()
        } else {
            format!(
                " GROUP BY {}",
                (1..=keys)
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let sql = format!(
            "SELECT {} FROM {}{where_sql}{group}",
            cols.join(", "),
            self.table
        );
        let mut stmt = conn.prepare(&sql).map_err(op_err("aggregate"))?;
        let mut rows = stmt.query(args).map_err(op_err("aggregate"))?;
        let mut groups = Vec::new();
        while let Some(r) = rows.next().map_err(op_err("aggregate"))? {
            if r.get::<_, Option<bool>>(keys)
                .map_err(op_err("aggregate"))?
                == Some(true)
            {
                return Ok(None);
            }
            let mut key = Vec::with_capacity(keys);
            for i in 0..keys {
                key.push(
                    match r.get::<_, Option<String>>(i).map_err(op_err("aggregate"))? {
                        Some(text) => {
                            codec::decode_json(&text).map_err(|e| self.not_text("?", detail(&e)))?
                        }
                        None => Value::Null,
                    },
                );
            }
            let counts = (0..agg.metrics().len())
                .map(|j| {
                    let n: i64 = r.get(keys + 1 + j).map_err(op_err("aggregate"))?;
                    Ok(u64::try_from(n).unwrap_or(0))
                })
                .collect::<Result<Vec<u64>>>()?;
            groups.push((key, counts));
        }
        Ok(Some(aggregate::from_group_counts(agg, groups)))
    }

    /// The stored rows among `ids`, in rowid order (each once).
    fn rows_by_id(&self, conn: &Connection, ids: &[&str]) -> Result<Vec<(i64, Row)>> {
        let mut unique: Vec<&str> = Vec::with_capacity(ids.len());
        let mut seen = HashSet::with_capacity(ids.len());
        for id in ids {
            if seen.insert(*id) {
                unique.push(id);
            }
        }
        let mut out = Vec::new();
        for chunk in unique.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT rowid, id, data, metadata FROM {} WHERE id IN ({})",
                self.table,
                placeholders(chunk.len())
            );
            let args: Vec<&dyn rusqlite::ToSql> =
                chunk.iter().map(|s| s as &dyn rusqlite::ToSql).collect();
            self.scan(conn, &sql, &args, |rowid, row| {
                out.push((rowid, row));
                Ok(true)
            })?;
        }
        out.sort_by_key(|(rowid, _)| *rowid);
        Ok(out)
    }

    /// The rows the predicate does not rule out, in rowid order, each with its flag: true
    /// where the compiled query must decide. `metadata` false selects `'{}'` for it (a count
    /// whose condition does not read it).
    fn select_sql(&self, p: &Prepared, metadata: bool) -> String {
        let meta = if metadata { "metadata" } else { "'{}'" };
        format!(
            "SELECT rowid, id, data, {meta}, {} FROM {}{} ORDER BY rowid",
            p.undecided_sql(),
            self.table,
            p.where_sql()
        )
    }

    /// The statement of `sorted_in_engine`: its last parameter is the number of rows wanted.
    fn sorted_sql(&self, p: &Prepared, sort: &sql::SortSql) -> String {
        let pred = p.pred();
        format!(
            "SELECT rowid, id, data, metadata, ({pred}) IS NULL OR {} FROM {} \
             WHERE ({pred}) IS NOT false ORDER BY 5 DESC, {} LIMIT ?{}",
            sort.complex,
            self.table,
            sort.terms,
            p.params().len() + 1
        )
    }

    /// A sorted search decided and ordered by SQLite, None when a row of the result needs the
    /// core (its condition or sort value is one SQL cannot decide): the rows the predicate
    /// keeps, those with such a row first, sorted and cut to `offset + limit`, so only the
    /// rows returned are decoded.
    fn sorted_in_engine(
        &self,
        conn: &Connection,
        p: &Prepared,
        sort: &sql::SortSql,
    ) -> Result<Option<Vec<Row>>> {
        let q = &p.q;
        let mut args = p.params();
        let end = match q.limit() {
            Some(l) => i64::try_from(q.offset().saturating_add(l)).unwrap_or(i64::MAX),
            None => -1,
        };
        let sql = self.sorted_sql(p, sort);
        args.push(&end);
        let mut out = Vec::new();
        let mut needs_core = false;
        let mut skip = q.offset();
        self.scan_flagged(conn, &sql, &args, |_, id, data, meta, flag| {
            if flag {
                needs_core = true;
                return Ok(false);
            }
            if skip > 0 {
                skip -= 1;
            } else {
                out.push(q.project_row(self.decode(id.to_string(), data, meta)?));
            }
            Ok(true)
        })?;
        Ok((!needs_core).then_some(out))
    }

    fn search_locked(&self, conn: &Connection, p: &Prepared) -> Result<Vec<Row>> {
        let q = &p.q;
        if let Some(ids) = q.id_candidates() {
            let rows = self.rows_by_id(conn, &ids)?;
            return q.apply_owned(rows.into_iter().map(|(_, r)| r));
        }
        if q.limit() == Some(0) {
            return Ok(Vec::new());
        }
        if let Some(sort) = &p.sort {
            if let Some(rows) = self.sorted_in_engine(conn, p, sort)? {
                return Ok(rows);
            }
        }
        // The partial rows decide (those SQLite could not); only the rows returned are decoded
        // whole, from the full metadata.
        let sql = self.select_sql(p, true);
        let args = p.params();
        if q.has_sort() {
            let mut keys: Vec<Row> = Vec::new();
            let mut texts: Vec<Option<(String, String, String)>> = Vec::new();
            self.scan_flagged(conn, &sql, &args, |_, id, data, meta, undecided| {
                let part = self.partial(&p.plan, id, data, meta)?;
                if !undecided || q.matches(&part)? {
                    keys.push(part);
                    texts.push(Some((id.to_string(), data.to_string(), meta.to_string())));
                }
                Ok(true)
            })?;
            let refs: Vec<&Row> = keys.iter().collect();
            let mut out = Vec::new();
            for i in q.window(&refs) {
                if let Some((id, data, meta)) = texts.get_mut(i).and_then(Option::take) {
                    out.push(q.project_row(self.decode(id, &data, &meta)?));
                }
            }
            return Ok(out);
        }
        // Unsorted: storage order, so stop as soon as the window is full.
        let mut hits = Vec::new();
        let mut skip = q.offset();
        self.scan_flagged(conn, &sql, &args, |_, id, data, meta, undecided| {
            if undecided && !q.matches(&self.partial(&p.plan, id, data, meta)?)? {
                return Ok(true);
            }
            if skip > 0 {
                skip -= 1;
            } else {
                hits.push(q.project_row(self.decode(id.to_string(), data, meta)?));
            }
            Ok(Some(hits.len()) != q.limit())
        })?;
        Ok(hits)
    }

    /// Duplicate check for `create_batch` on a table whose `id` is not its primary key: the
    /// first id, in input order, that is stored or repeats an earlier one.
    fn first_duplicate(&self, conn: &Connection, ids: &[&str]) -> Result<Option<String>> {
        let mut stored: HashSet<String> = HashSet::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT id FROM {} WHERE id IN ({})",
                self.table,
                placeholders(chunk.len())
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(op_err("create"))?;
            let found = stmt
                .query_map(params_from_iter(chunk.iter()), |r| r.get::<_, String>(0))
                .map_err(op_err("create"))?;
            for id in found {
                stored.insert(id.map_err(op_err("create"))?);
            }
        }
        let mut seen = HashSet::with_capacity(ids.len());
        Ok(ids
            .iter()
            .find(|id| stored.contains(**id) || !seen.insert(**id))
            .map(|id| id.to_string()))
    }

    /// Runs `write` in one transaction of its own, committed when it succeeds (dropping the
    /// transaction on an error rolls everything it did back).
    fn in_transaction<T>(
        &self,
        operation: &'static str,
        write: impl FnOnce(&rusqlite::Transaction<'_>, &str) -> Result<T>,
    ) -> Result<T> {
        let now = now_iso();
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(op_err(operation))?;
            let out = write(&tx, &now)?;
            tx.commit().map_err(op_err(operation))?;
            Ok(out)
        })
    }

    /// Inserts every row; on the first id already stored (or repeated in the batch) it stops
    /// with that id, and the caller's transaction rolls the batch back, as the memory store
    /// writes nothing.
    fn create_in<R: Source>(&self, tx: &Connection, now: &str, rows: &[R]) -> Result<Vec<String>> {
        let sql = format!(
            "INSERT INTO {} (id, data, metadata, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            self.table
        );
        if !self.id_is_key {
            let ids: Vec<&str> = rows.iter().map(Source::id).collect();
            if let Some(id) = self.first_duplicate(tx, &ids)? {
                return Err(Error::Duplicate(id));
            }
        }
        let mut stmt = tx.prepare_cached(&sql).map_err(op_err("create"))?;
        let (mut dbuf, mut mbuf) = (String::new(), String::new());
        for r in rows {
            let (data, meta) = r.texts(&mut dbuf, &mut mbuf);
            match stmt.execute(params![r.id(), data, meta, now]) {
                Ok(_) => {}
                Err(e) if self.id_is_key && is_key_violation(&e) => {
                    return Err(Error::Duplicate(r.id().to_string()))
                }
                Err(e) => return Err(op_err("create")(e)),
            }
        }
        Ok(rows.iter().map(|r| r.id().to_string()).collect())
    }

    fn create_rows<R: Source>(&self, rows: &[R]) -> Result<Vec<String>> {
        self.in_transaction("create", |tx, now| self.create_in(tx, now, rows))
    }

    /// Runs `sql` once per row; `per_row` gets the number of rows the statement changed.
    fn write_each_in<R: Source, T>(
        tx: &Connection,
        now: &str,
        operation: &'static str,
        sql: &str,
        rows: &[R],
        per_row: impl Fn(&R, usize) -> T,
    ) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(rows.len());
        let mut stmt = tx.prepare_cached(sql).map_err(op_err(operation))?;
        let (mut dbuf, mut mbuf) = (String::new(), String::new());
        for r in rows {
            let (data, meta) = r.texts(&mut dbuf, &mut mbuf);
            let n = stmt
                .execute(params![r.id(), data, meta, now])
                .map_err(op_err(operation))?;
            out.push(per_row(r, n));
        }
        Ok(out)
    }

    fn create_missing_rows<R: Source>(&self, rows: &[R]) -> Result<Vec<bool>> {
        let sql = format!(
            "INSERT INTO {} (id, data, metadata, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT(id) DO NOTHING",
            self.table
        );
        self.in_transaction("create", |tx, now| {
            Self::write_each_in(tx, now, "create", &sql, rows, |_, n| n > 0)
        })
    }

    fn upsert_in<R: Source>(&self, tx: &Connection, now: &str, rows: &[R]) -> Result<Vec<String>> {
        let sql = format!(
            "INSERT INTO {} (id, data, metadata, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT(id) DO UPDATE SET data = excluded.data, metadata = excluded.metadata, \
             updated_at = excluded.updated_at",
            self.table
        );
        Self::write_each_in(tx, now, "upsert", &sql, rows, |r, _| r.id().to_string())
    }

    fn upsert_rows<R: Source>(&self, rows: &[R]) -> Result<Vec<String>> {
        self.in_transaction("upsert", |tx, now| self.upsert_in(tx, now, rows))
    }

    fn update_rows<R: Source>(&self, rows: &[R]) -> Result<Vec<bool>> {
        let sql = format!(
            "UPDATE {} SET data = ?2, metadata = ?3, updated_at = ?4 WHERE id = ?1",
            self.table
        );
        self.in_transaction("update", |tx, now| {
            Self::write_each_in(tx, now, "update", &sql, rows, |_, n| n > 0)
        })
    }

    fn delete_in(&self, tx: &Connection, ids: &[String]) -> Result<Vec<bool>> {
        let sql = format!("DELETE FROM {} WHERE id = ?1", self.table);
        let mut stmt = tx.prepare_cached(&sql).map_err(op_err("delete"))?;
        ids.iter()
            .map(|id| Ok(stmt.execute([id]).map_err(op_err("delete"))? > 0))
            .collect()
    }

    /// Every write of `ops` in one transaction: all of them, or on the first failure none.
    fn apply_in<R: Source>(&self, ops: &[WriteOp<R>]) -> Result<usize> {
        self.in_transaction("transaction", |tx, now| {
            let mut affected = 0;
            for op in ops {
                affected += match op {
                    WriteOp::Create(rows) => self.create_in(tx, now, rows)?.len(),
                    WriteOp::Upsert(rows) => self.upsert_in(tx, now, rows)?.len(),
                    WriteOp::Delete(ids) => {
                        self.delete_in(tx, ids)?.into_iter().filter(|d| *d).count()
                    }
                };
            }
            Ok(affected)
        })
    }

    /// [`Store::apply`] for rows already in tagged JSON.
    pub fn apply_encoded(&self, ops: Vec<WriteOp<EncodedRow>>) -> Result<usize> {
        self.apply_in(&ops)
    }

    /// `create_batch` for rows already in tagged JSON (each text must be an object).
    pub fn create_batch_encoded(&self, rows: Vec<EncodedRow>) -> Result<Vec<String>> {
        self.create_rows(&rows)
    }

    /// `create_missing` for rows already in tagged JSON.
    pub fn create_missing_encoded(&self, rows: Vec<EncodedRow>) -> Result<Vec<bool>> {
        self.create_missing_rows(&rows)
    }

    /// `upsert_batch` for rows already in tagged JSON.
    pub fn upsert_batch_encoded(&self, rows: Vec<EncodedRow>) -> Result<Vec<String>> {
        self.upsert_rows(&rows)
    }

    /// `update_batch` for rows already in tagged JSON.
    pub fn update_batch_encoded(&self, rows: Vec<EncodedRow>) -> Result<Vec<bool>> {
        self.update_rows(&rows)
    }

    /// The statement of `count_in_engine`.
    fn count_sql(&self, p: &Prepared) -> String {
        format!(
            "SELECT sum(ifnull(({}), {UNDECIDED})) FROM {}",
            p.pred(),
            self.table
        )
    }

    /// The number of rows the predicate holds for, in one pass that also counts the rows it
    /// leaves undecided (weighted by `UNDECIDED`, so both come from one sum and one evaluation
    /// of the predicate per row); None when there are any, for the core to decide.
    fn count_in_engine(&self, conn: &Connection, p: &Prepared) -> Result<Option<usize>> {
        let sum: Option<i64> = conn
            .prepare_cached(&self.count_sql(p))
            .and_then(|mut stmt| stmt.query_row(p.params().as_slice(), |r| r.get(0)))
            .map_err(op_err("count"))?;
        let sum = sum.unwrap_or(0);
        if sum >= UNDECIDED {
            return Ok(None);
        }
        Ok(Some(usize::try_from(sum).unwrap_or(0)))
    }

    /// The next page of at most `n` rows after rowid `after` that the predicate does not rule
    /// out, each decoded, with its flag (the compiled query must decide it).
    fn page_after(
        &self,
        conn: &Connection,
        p: &Prepared,
        after: i64,
        n: usize,
    ) -> Result<Vec<(i64, Row, bool)>> {
        let mut args = p.params();
        let filter = match &p.cond {
            Some(c) => format!(" AND ({}) IS NOT false", c.sql),
            None => String::new(),
        };
        let sql = format!(
            "SELECT rowid, id, data, metadata, {} FROM {} WHERE rowid > ?{}{filter} \
             ORDER BY rowid LIMIT ?{}",
            p.undecided_sql(),
            self.table,
            args.len() + 1,
            args.len() + 2
        );
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        args.push(&after);
        args.push(&limit);
        let mut out = Vec::with_capacity(n.min(4096));
        self.scan_flagged(conn, &sql, &args, |rowid, id, data, meta, undecided| {
            out.push((rowid, self.decode(id.to_string(), data, meta)?, undecided));
            Ok(true)
        })?;
        Ok(out)
    }

    /// The producer of an unsorted stream: pages through the table by rowid, taking the lock
    /// once per page, and sends filtered rows in messages of at most `batch_size`.
    fn produce(&self, p: &Prepared, batch_size: usize, tx: &PageSender) -> Result<()> {
        let q = &p.q;
        let mut after = i64::MIN;
        let mut pager = Pager::new(q.offset(), q.limit(), batch_size);
        while pager.wants_more() {
            let page = self.with_conn(|c| self.page_after(c, p, after, batch_size))?;
            let Some((last, _, _)) = page.last() else {
                break;
            };
            after = *last;
            for (_, row, undecided) in page {
                if !pager.wants_more() {
                    break;
                }
                if undecided && !q.matches(&row)? {
                    continue;
                }
                if let Some(full) = pager.push(q.project_row(row)) {
                    if !tx.blocking_send(full) {
                        return Ok(());
                    }
                }
            }
        }
        if let Some(last) = pager.finish() {
            tx.blocking_send(last);
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        self.create_rows(&rows)
    }

    fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        self.create_missing_rows(&rows)
    }

    fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        self.upsert_rows(&rows)
    }

    fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        self.update_rows(&rows)
    }

    fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>> {
        self.with_conn(|conn| {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let mut found: HashMap<String, Row> = self
                .rows_by_id(conn, &refs)?
                .into_iter()
                .map(|(_, r)| (r.id.clone(), r))
                .collect();
            // A repeated id gets its own copy each time.
            let mut out = Vec::with_capacity(ids.len());
            let mut left: HashMap<&str, usize> = HashMap::new();
            for id in ids {
                *left.entry(id.as_str()).or_default() += 1;
            }
            for id in ids {
                let n = left.entry(id.as_str()).or_default();
                *n -= 1;
                out.push(if *n == 0 {
                    found.remove(id)
                } else {
                    found.get(id).cloned()
                });
            }
            Ok(out)
        })
    }

    fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        let sql = format!("SELECT 1 FROM {} WHERE id = ?1", self.table);
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(op_err("exists"))?;
            ids.iter()
                .map(|id| stmt.exists([id]).map_err(op_err("exists")))
                .collect()
        })
    }

    fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        self.in_transaction("delete", |tx, _| self.delete_in(tx, ids))
    }

    fn apply(&self, ops: Vec<WriteOp>) -> Result<usize> {
        self.apply_in(&ops)
    }

    fn is_transactional(&self) -> bool {
        true
    }

    fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>> {
        let p = Prepared::new(spec, true)?;
        self.with_conn(|conn| self.search_locked(conn, &p))
    }

    fn count(&self, spec: &QuerySpec) -> Result<usize> {
        let p = Prepared::new(spec, false)?;
        let q = &p.q;
        self.with_conn(|conn| {
            if !q.has_cond() {
                let n: i64 = conn
                    .prepare_cached(&format!("SELECT count(*) FROM {}", self.table))
                    .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
                    .map_err(op_err("count"))?;
                return Ok(usize::try_from(n).unwrap_or(0));
            }
            if let Some(ids) = q.id_candidates() {
                return Ok(self.rows_by_id(conn, &ids)?.len());
            }
            if p.cond.as_ref().is_some_and(|c| c.exact) {
                if let Some(n) = self.count_in_engine(conn, &p)? {
                    return Ok(n);
                }
            }
            // Never a full decode: only the fields the condition reads, of the rows SQLite
            // left undecided.
            let mut n = 0;
            self.scan_flagged(
                conn,
                &self.select_sql(&p, p.plan.metadata),
                &p.params(),
                |_, id, data, meta, undecided| {
                    if !undecided || q.matches(&self.partial(&p.plan, id, data, meta)?)? {
                        n += 1;
                    }
                    Ok(true)
                },
            )?;
            Ok(n)
        })
    }

    fn for_each_match(&self, spec: &QuerySpec, each: &mut dyn FnMut(&Row)) -> Result<()> {
        // The sort keys only widen what the partial rows decode (the caller's fields).
        let p = Prepared::new(spec, true)?;
        let q = &p.q;
        self.with_conn(|conn| {
            if let Some(ids) = q.id_candidates() {
                for (_, row) in self.rows_by_id(conn, &ids)? {
                    if q.matches(&row)? {
                        each(&row);
                    }
                }
                return Ok(());
            }
            // Rows SQLite decided need no second look; the undecided ones go to the core.
            self.scan_flagged(
                conn,
                &self.select_sql(&p, p.plan.metadata),
                &p.params(),
                |_, id, data, meta, undecided| {
                    let part = self.partial(&p.plan, id, data, meta)?;
                    if !undecided || q.matches(&part)? {
                        each(&part);
                    }
                    Ok(true)
                },
            )
        })
    }

    fn aggregate(&self, spec: &QuerySpec, agg: &Arc<AggSpec>) -> Result<Vec<AggRow>> {
        // Until the exact WHERE translation is wired in, only an unconditioned aggregation
        // is pushed down.
        if spec.cond.is_none() {
            if let Some(rows) = self.with_conn(|conn| self.aggregate_in_sql(conn, None, agg))? {
                return Ok(rows);
            }
        }
        let mut acc = aggregate::Aggregator::new(Arc::clone(agg));
        self.for_each_match(&agg.reading(spec), &mut |row| acc.push(row))?;
        Ok(acc.finish())
    }

    fn clear(&self) -> Result<usize> {
        self.with_conn(|conn| {
            conn.execute(&format!("DELETE FROM {}", self.table), [])
                .map_err(op_err("clear"))
        })
    }

    fn stream(
        self: Arc<Self>,
        spec: QuerySpec,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<Cursor> {
        let batch_size = batch_size.max(1);
        let p = Prepared::new(&spec, true)?;
        // Fail now, not on the first page, when the store is closed.
        self.with_conn(|_| Ok(()))?;
        if p.q.has_sort() || p.q.id_candidates().is_some() {
            let rows = self.with_conn(|conn| self.search_locked(conn, &p))?;
            return memory::stream_rows(rows, batch_size, prefetch);
        }
        let (tx, cursor) = Cursor::channel(prefetch);
        let store = self;
        std::thread::Builder::new()
            .stack_size(crate::value::THREAD_STACK)
            .name("dataknobs-sqlite-stream".into())
            .spawn(move || match store.produce(&p, batch_size, &tx) {
                Ok(()) => tx.blocking_end(),
                Err(e) => {
                    tx.blocking_send_result(Err(e));
                }
            })
            .map_err(|e| Error::Other(format!("cannot start stream producer: {e}")))?;
        Ok(cursor)
    }

    fn close(&self) -> Result<()> {
        // Dropping the connection closes it; a second close finds nothing to drop.
        let conn = self.conn.lock().take();
        drop(conn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Cond, Op};
    use crate::testutil::{conformance, drain, filt, ids_of, row, strs};
    use crate::value::Map;
    use crate::value::Value;

    fn mem() -> SqliteStore {
        SqliteStore::open(":memory:", "records", 5.0, None, None, true).unwrap()
    }

    fn tmpfile(tag: &str) -> String {
        let p = std::env::temp_dir().join(format!("dk-sqlite-{tag}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn conformance_memory_and_file() {
        conformance(Arc::new(mem()));
        let path = tmpfile("conf");
        conformance(Arc::new(
            SqliteStore::open(&path, "t_1", 1.0, Some("wal"), Some("normal"), true).unwrap(),
        ));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn open_validation() {
        for bad in ["", "1abc", "a-b", "a b", "x\"y", "t;drop"] {
            let e = SqliteStore::open(":memory:", bad, 1.0, None, None, true).err();
            assert!(
                matches!(e, Some(Error::Config { parameter, .. }) if parameter == "table"),
                "{bad}"
            );
        }
        let e = SqliteStore::open(":memory:", "t", 1.0, Some("fast"), None, true).err();
        assert!(matches!(e, Some(Error::Config { parameter, .. }) if parameter == "journal_mode"));
        let e = SqliteStore::open(":memory:", "t", 1.0, None, Some("sometimes"), true).err();
        assert!(matches!(e, Some(Error::Config { parameter, .. }) if parameter == "synchronous"));
        let e = SqliteStore::open(":memory:", "t", -1.0, None, None, true).err();
        assert!(matches!(e, Some(Error::Config { parameter, .. }) if parameter == "timeout"));
        let e = SqliteStore::open(":memory:", "t", 1.0, None, None, false).err();
        assert!(matches!(e, Some(Error::Operation { .. })), "{e:?}");
        let e = SqliteStore::open("/nonexistent-dir/x/y.db", "t", 1.0, None, None, true).err();
        assert!(matches!(e, Some(Error::Connection { .. })), "{e:?}");
        assert!(SqliteStore::open(":memory:", "_T9", 0.0, Some("MEMORY"), Some("0"), true).is_ok());
    }

    #[test]
    fn persists_and_keeps_rowid_order() {
        let path = tmpfile("persist");
        let s = SqliteStore::open(&path, "records", 1.0, None, None, true).unwrap();
        s.create_batch(vec![row("a", 1), row("b", 2), row("c", 3)])
            .unwrap();
        s.upsert_batch(vec![row("a", 10), row("d", 4)]).unwrap();
        s.close().unwrap();
        s.close().unwrap();
        assert!(matches!(
            s.search(&QuerySpec::default()),
            Err(Error::Closed(_))
        ));
        let t = SqliteStore::open(&path, "records", 1.0, None, None, false).unwrap();
        let all = t.search(&QuerySpec::default()).unwrap();
        assert_eq!(ids_of(&all), strs(&["a", "b", "c", "d"]));
        assert_eq!(all[0], row("a", 10));
        let got = t.read_batch(&strs(&["d", "d", "x"])).unwrap();
        assert_eq!(got, vec![Some(row("d", 4)), Some(row("d", 4)), None]);
        let _ = std::fs::remove_file(&path);
    }

    fn sample_values() -> Vec<Value> {
        let dt = |t: &str| Value::DateTime(crate::iso::parse_datetime(t).unwrap());
        let mut m = Map::new();
        m.insert("a".into(), Value::Int(1));
        let mut tagish = Map::new();
        tagish.insert("$date".into(), Value::Str("x".into()));
        vec![
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(1),
            Value::Int(-5),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            Value::Int(9_007_199_254_740_993),
            Value::Float(0.1),
            Value::Float(0.30000000000000004),
            Value::Float(1.0),
            Value::Float(-0.0),
            Value::Float(1e300),
            Value::Float(5e-324),
            Value::Float(1.7976931348623157e308),
            Value::Float(f64::NAN),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NEG_INFINITY),
            Value::Str(String::new()),
            Value::Str("a".into()),
            Value::Str("a\0b".into()),
            Value::Str("a\0".into()),
            Value::Str("\0".into()),
            Value::Str("ab".into()),
            Value::Str("b".into()),
            Value::Str("Denver".into()),
            Value::Str("1".into()),
            Value::Str("2024-05-01".into()),
            Value::Str("2024-05-01T10:00:00".into()),
            Value::Str("2024-05-01T10:00:00+00:00".into()),
            Value::Str("é\u{10FFFF}".into()),
            Value::Str("\"q\\\n".into()),
            Value::Decimal("1.0".into()),
            Value::Decimal("0.1".into()),
            Value::Decimal("NaN".into()),
            Value::Decimal("-1E+3".into()),
            dt("2024-05-01T10:00:00"),
            dt("2024-05-01T10:00:00+02:00"),
            Value::Date(crate::iso::parse_date("2024-05-01").unwrap()),
            Value::Bytes(vec![0, 1]),
            Value::List(vec![Value::Int(1)]),
            Value::List(vec![]),
            Value::Map(m),
            Value::Map(tagish),
        ]
    }

    /// SQLite reads the codec's spelling of a float (the shortest that round-trips) back to
    /// the same double for magnitudes within `sql::REAL_READS_EXACTLY`, which the translation's
    /// numeric comparisons and sorts rely on (beyond about 1e-84 and 1e118 it misses by an ulp,
    /// so those reals are left to the core): every exponent in the range, random mantissas.
    #[test]
    fn floats_read_back_exactly() {
        let conn = Connection::open_in_memory().unwrap();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT json_extract(?1, '$.f'), json_extract(?1, '$.f') = ?2, \
                 {}",
                sql::real_reads_exactly("json_extract(?1, '$.f')")
            ))
            .unwrap();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let mut floats = vec![0.1, 0.3, 0.300_000_000_000_000_04, 1e-80, 1e110, 123.456];
        // Biased exponents 758 (from 1.7e-80) to 1386 (below 3.8e109), any sign and mantissa.
        for _ in 0..300_000 {
            let bits = next();
            let exponent = 758 + (bits >> 52) % (1387 - 758);
            floats.push(f64::from_bits(
                (bits & 0x800F_FFFF_FFFF_FFFF) | (exponent << 52),
            ));
        }
        let mut misses = Vec::new();
        for f in floats {
            let mut data = crate::value::Map::new();
            data.insert("f".into(), Value::Float(f));
            let text = codec::encode_map(&data);
            let (back, same, in_range): (f64, bool, bool) = stmt
                .query_row(params![text, f], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap();
            assert!(in_range, "{text}");
            if back.to_bits() != f.to_bits() || !same {
                misses.push(text);
            }
        }
        assert!(
            misses.is_empty(),
            "{} misread, e.g. {:?}",
            misses.len(),
            &misses[..1]
        );
    }

    /// Every operator and filter value on a store holding every kind of value agrees with the
    /// memory store (the reference), for search, sorted search and count: what SQLite decides
    /// and the rows it leaves to the compiled query.
    #[test]
    fn sql_and_partial_decode_agree_with_memory() {
        let vals = sample_values();
        let mut rows = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            for (j, w) in [(0, v), (1, &vals[(i * 7 + 3) % vals.len()])] {
                let mut data = Map::new();
                data.insert("f".into(), w.clone());
                data.insert("g".into(), vals[(i + j) % vals.len()].clone());
                data.insert("k".into(), Value::Int(i as i64 % 4));
                let mut metadata = Map::new();
                metadata.insert("m".into(), Value::Int(i as i64));
                rows.push(Row {
                    id: format!("r{i:03}-{j}"),
                    data,
                    metadata,
                });
            }
        }
        // Missing fields, a lone-tag data map, and a hand-written `$map` record.
        let mut only_g = Map::new();
        only_g.insert("g".into(), Value::Int(1));
        rows.push(Row {
            id: "missing".into(),
            data: only_g,
            metadata: Map::new(),
        });
        let mut lone = Map::new();
        lone.insert("$decimal".into(), Value::Str("1".into()));
        rows.push(Row {
            id: "lone".into(),
            data: lone,
            metadata: Map::new(),
        });
        let sql = mem();
        let mem = crate::memory::MemoryStore::new();
        mem.create_batch(rows.clone()).unwrap();
        sql.create_batch(rows).unwrap();
        let mut hand = Map::new();
        hand.insert("f".into(), Value::Str("a".into()));
        hand.insert("k".into(), Value::Int(1));
        mem.create_batch(vec![
            Row {
                id: "hand".into(),
                data: hand.clone(),
                metadata: Map::new(),
            },
            Row {
                id: "spaced".into(),
                data: hand.clone(),
                metadata: Map::new(),
            },
        ])
        .unwrap();
        mem.create_batch(
            ["hand2", "hand3", "hand4", "hand5"]
                .iter()
                .map(|id| Row {
                    id: id.to_string(),
                    data: hand.clone(),
                    metadata: Map::new(),
                })
                .collect(),
        )
        .unwrap();
        sql.with_conn(|c| {
            c.execute(
                "INSERT INTO \"records\" (id, data, metadata) VALUES \
                 ('hand', '{\"$map\": {\"f\": \"a\", \"k\": 1}}', '{}'), \
                 ('spaced', ' { \"f\" :\t\"a\" ,\n \"k\" : 1 } ', ' { } '), \
                 ('hand2', ' {\"$map\": {\"f\": \"a\", \"k\": 1}}', '{}'), \
                 ('hand3', '{ \"$map\": {\"f\": \"a\", \"k\": 1}}', '{}'), \
                 ('hand4', '{\"\\u0024map\": {\"f\": \"a\", \"k\": 1}}', '{}'), \
                 ('hand5', '{\"$m\\u0061p\": {\"f\": \"a\", \"k\": 1}}', '{}')",
                [],
            )
            .map_err(op_err("test"))
        })
        .unwrap();

        let ops = [
            Op::Eq,
            Op::Neq,
            Op::Gt,
            Op::Gte,
            Op::Lt,
            Op::Lte,
            Op::In,
            Op::NotIn,
            Op::Exists,
            Op::NotExists,
            Op::Between,
            Op::NotBetween,
            Op::StartsWith,
            Op::Like,
        ];
        let mut xs = vals.clone();
        xs.push(Value::List(vec![
            Value::Str("a".into()),
            Value::Int(1),
            Value::Null,
        ]));
        xs.push(Value::List(vec![Value::Int(0), Value::Float(0.5)]));
        xs.push(Value::List(vec![
            Value::Str("a".into()),
            Value::Str("b".into()),
        ]));
        xs.push(Value::List(vec![
            Value::Str("2024-01-01".into()),
            Value::Int(9),
        ]));
        let mut conds = Vec::new();
        for op in ops {
            for x in &xs {
                for field in ["f", "metadata.m", "f.0", "f.a"] {
                    conds.push(Cond::Filter {
                        field: field.into(),
                        op,
                        value: x.clone(),
                    });
                }
            }
        }
        let f = |op, x: Value| Cond::Filter {
            field: "f".into(),
            op,
            value: x,
        };
        let k = |n| Cond::Filter {
            field: "k".into(),
            op: Op::Eq,
            value: Value::Int(n),
        };
        conds.push(Cond::And(vec![f(Op::Gte, Value::Int(0)), k(1)]));
        conds.push(Cond::And(vec![f(Op::Like, Value::Str("a%".into())), k(1)]));
        conds.push(Cond::Or(vec![f(Op::Eq, Value::Str("a".into())), k(2)]));
        conds.push(Cond::Or(vec![f(Op::Like, Value::Str("a%".into())), k(2)]));
        conds.push(Cond::Or(vec![]));
        conds.push(Cond::And(vec![]));
        conds.push(Cond::Not(Box::new(f(Op::Eq, Value::Str("a".into())))));
        conds.push(Cond::Not(Box::new(Cond::Or(vec![k(1), k(2)]))));
        for (n, cond) in conds.into_iter().enumerate() {
            let plain = QuerySpec {
                cond: Some(cond.clone()),
                ..Default::default()
            };
            let sorted = QuerySpec {
                cond: Some(cond.clone()),
                sort: vec![("f".into(), n % 2 == 0), ("g".into(), false)],
                offset: Some(1),
                limit: Some(7),
                fields: None,
            };
            let windowed = QuerySpec {
                cond: Some(cond.clone()),
                offset: Some(2),
                limit: Some(3),
                fields: Some(vec!["g".into()]),
                ..Default::default()
            };
            // As text, since NaN != NaN.
            let text = |rows: Vec<Row>| -> Vec<(String, String, String)> {
                rows.iter()
                    .map(|r| {
                        (
                            r.id.clone(),
                            codec::encode_map(&r.data),
                            codec::encode_map(&r.metadata),
                        )
                    })
                    .collect()
            };
            for spec in [&plain, &sorted, &windowed] {
                assert_eq!(
                    text(sql.search(spec).unwrap()),
                    text(mem.search(spec).unwrap()),
                    "{cond:?}"
                );
            }
            assert_eq!(
                sql.count(&plain).unwrap(),
                mem.count(&plain).unwrap(),
                "{cond:?}"
            );
        }
    }

    #[test]
    fn duplicates_report_the_first_collision_in_input_order() {
        for keyed in [true, false] {
            let path = tmpfile(if keyed { "keyed" } else { "loose" });
            if !keyed {
                // A table made elsewhere, without a key on id: the lookup path.
                Connection::open(&path)
                    .unwrap()
                    .execute_batch(
                        "CREATE TABLE records (id TEXT, data TEXT NOT NULL, \
                         metadata TEXT NOT NULL, created_at TEXT, updated_at TEXT)",
                    )
                    .unwrap();
            }
            let s = SqliteStore::open(&path, "records", 1.0, None, None, true).unwrap();
            assert_eq!(s.id_is_key, keyed);
            s.create_batch(vec![row("x", 0)]).unwrap();
            let e = s.create_batch(vec![row("a", 1), row("b", 1), row("a", 2), row("x", 1)]);
            assert_eq!(e, Err(Error::Duplicate("a".into())), "keyed {keyed}");
            let e = s.create_batch(vec![row("c", 1), row("x", 1), row("c", 2)]);
            assert_eq!(e, Err(Error::Duplicate("x".into())), "keyed {keyed}");
            assert_eq!(s.count(&QuerySpec::default()).unwrap(), 1);
            let enc = vec![EncodedRow {
                id: "e".into(),
                data: "{\"n\":1}".into(),
                metadata: "{}".into(),
            }];
            assert_eq!(s.create_batch_encoded(enc.clone()).unwrap(), strs(&["e"]));
            assert_eq!(
                s.create_batch_encoded(enc.clone()),
                Err(Error::Duplicate("e".into()))
            );
            assert_eq!(s.update_batch_encoded(enc.clone()).unwrap(), vec![true]);
            // ON CONFLICT needs a key on id.
            if keyed {
                assert_eq!(s.create_missing_encoded(enc.clone()).unwrap(), vec![false]);
                assert_eq!(s.upsert_batch_encoded(enc).unwrap(), strs(&["e"]));
            }
            assert_eq!(
                s.search(&filt("n", Op::Eq, Value::Int(1))).unwrap()[0].id,
                "e"
            );
            drop(s);
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Rough timings of the benchmark workload's SQLite ops, run by hand:
    /// `cargo test -p dataknobs-core --release -- --ignored --nocapture sqlite_bench`.
    #[test]
    #[ignore]
    fn sqlite_bench() {
        const CITIES: [&str; 10] = [
            "Amsterdam",
            "Berlin",
            "Cairo",
            "Denver",
            "Edinburgh",
            "Florence",
            "Geneva",
            "Havana",
            "Istanbul",
            "Jakarta",
        ];
        let n = 10_000usize;
        let rows: Vec<Row> = (0..n)
            .map(|i| {
                let mut d = Map::new();
                d.insert(
                    "name".into(),
                    Value::Str(format!("person-{:06}", i * 7919 % 1_000_000)),
                );
                d.insert("age".into(), Value::Int(18 + (i * 31 % 73) as i64));
                d.insert(
                    "score".into(),
                    Value::Float((i * 7919 % 100_000) as f64 / 1000.0),
                );
                d.insert("city".into(), Value::Str(CITIES[i * 13 % 10].into()));
                d.insert("active".into(), Value::Bool(i % 2 == 0));
                d.insert(
                    "tags".into(),
                    Value::List(vec![Value::Str("red".into()), Value::Str("vip".into())]),
                );
                Row {
                    id: format!("rec-{i:08}"),
                    data: d,
                    metadata: Map::new(),
                }
            })
            .collect();
        let path = tmpfile("bench");
        let time = |label: &str, f: &mut dyn FnMut()| {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                f();
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
            println!("{label:<24} {best:8.2} ms");
        };
        let mut k = 0;
        time("create_batch", &mut || {
            k += 1;
            let p = format!("{path}.{k}");
            let s = SqliteStore::open(&p, "records", 5.0, None, None, true).unwrap();
            s.create_batch(rows.clone()).unwrap();
            drop(s);
            let _ = std::fs::remove_file(&p);
        });
        let s = SqliteStore::open(&path, "records", 5.0, None, None, true).unwrap();
        s.create_batch(rows.clone()).unwrap();
        let spec = filt("city", Op::Eq, Value::Str("Denver".into()));
        let mut search = spec.clone();
        search.sort = vec![("age".into(), true)];
        search.limit = Some(100);
        time("count city", &mut || {
            assert_eq!(s.count(&spec).unwrap(), 1000);
        });
        time("search city -age 100", &mut || {
            assert_eq!(s.search(&search).unwrap().len(), 100);
        });
        let ups: Vec<Row> = rows.iter().take(1000).cloned().collect();
        time("update_batch 1000", &mut || {
            s.update_batch(ups.clone()).unwrap();
        });
        time("search all", &mut || {
            assert_eq!(s.search(&QuerySpec::default()).unwrap().len(), n);
        });
        let _ = std::fs::remove_file(&path);
    }

    /// Engine time (SQLite alone, rows stepped but not decoded) of the statements the store
    /// runs for the benchmark workload's count and search, beside the store's own time, at
    /// the workload's shape: run by hand with
    /// `DK_BENCH_N=100000 cargo test -p dataknobs-core --release -- --ignored --nocapture sqlite_engine_time`.
    #[test]
    #[ignore]
    fn sqlite_engine_time() {
        const CITIES: [&str; 10] = [
            "Amsterdam",
            "Berlin",
            "Cairo",
            "Denver",
            "Edinburgh",
            "Florence",
            "Geneva",
            "Havana",
            "Istanbul",
            "Jakarta",
        ];
        const TAGS: [&str; 5] = ["red", "green", "blue", "vip", "eu"];
        let n: usize = std::env::var("DK_BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000);
        // A small LCG: the rows only need the workload's spread of values, not its exact ones.
        let mut seed: u64 = 42;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % m
        };
        let rows: Vec<Row> = (0..n)
            .map(|i| {
                let mut d = Map::new();
                d.insert(
                    "name".into(),
                    Value::Str(format!("person-{:06}", next(1_000_000))),
                );
                d.insert("age".into(), Value::Int(18 + next(73) as i64));
                d.insert("score".into(), Value::Float(next(100_000) as f64 / 1000.0));
                d.insert("city".into(), Value::Str(CITIES[next(10) as usize].into()));
                d.insert("active".into(), Value::Bool(next(2) == 0));
                let tags = (0..next(4))
                    .map(|_| Value::Str(TAGS[next(5) as usize].into()))
                    .collect();
                d.insert("tags".into(), Value::List(tags));
                Row {
                    id: format!("rec-{i:08}"),
                    data: d,
                    metadata: Map::new(),
                }
            })
            .collect();
        let path = tmpfile("engine");
        let s = SqliteStore::open(&path, "records", 5.0, None, None, true).unwrap();
        for chunk in rows.chunks(1000) {
            s.create_batch(chunk.to_vec()).unwrap();
        }
        let best = |f: &mut dyn FnMut() -> usize| {
            let mut best = f64::MAX;
            let mut got = 0;
            for _ in 0..7 {
                let t = std::time::Instant::now();
                got = f();
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
            (best, got)
        };
        // Steps a statement to the end, reading nothing: SQLite's own time.
        let engine = |sql: &str, args: &[&dyn rusqlite::ToSql]| {
            s.with_conn(|c| {
                let mut stmt = c.prepare(sql).map_err(op_err("bench"))?;
                let mut rows = stmt.query(args).map_err(op_err("bench"))?;
                let mut k = 0;
                while rows.next().map_err(op_err("bench"))?.is_some() {
                    k += 1;
                }
                Ok(k)
            })
            .unwrap()
        };
        let report =
            |label: &str, (ms, got): (f64, usize)| println!("{label:<44} {ms:8.2} ms  ({got})");
        let city = filt("city", Op::Eq, Value::Str("Denver".into()));
        let two = QuerySpec {
            cond: Some(Cond::And(vec![
                filt("city", Op::Eq, Value::Str("Denver".into()))
                    .cond
                    .unwrap(),
                filt("age", Op::Gt, Value::Int(60)).cond.unwrap(),
            ])),
            ..QuerySpec::default()
        };
        let t = &s.table;
        report(
            "engine: count(*)",
            best(&mut || engine(&format!("SELECT count(*) FROM {t}"), &[])),
        );
        report(
            "engine: bare json_extract city",
            best(&mut || {
                engine(
                    &format!(
                        "SELECT count(*) FROM {t} WHERE json_extract(data, '$.\"city\"') = 'Denver'"
                    ),
                    &[],
                )
            }),
        );
        report(
            "engine: instr city",
            best(&mut || {
                engine(
                    &format!("SELECT count(*) FROM {t} WHERE instr(data, '\"Denver\"') > 0"),
                    &[],
                )
            }),
        );
        for (name, spec) in [("city", &city), ("city+age", &two)] {
            let p = Prepared::new(spec, false).unwrap();
            report(
                &format!("engine: count {name}"),
                best(&mut || engine(&s.count_sql(&p), &p.params())),
            );
            report(
                &format!("store: count {name}"),
                best(&mut || s.count(spec).unwrap()),
            );
            let mut search = spec.clone();
            search.sort = vec![("age".into(), true)];
            search.limit = Some(100);
            let p = Prepared::new(&search, true).unwrap();
            if let Some(sort) = &p.sort {
                let sql = s.sorted_sql(&p, sort);
                let mut args = p.params();
                let end = 100i64;
                args.push(&end);
                report(
                    &format!("engine: search {name} -age 100"),
                    best(&mut || engine(&sql, &args)),
                );
            }
            report(
                &format!("store: search {name} -age 100"),
                best(&mut || s.search(&search).unwrap().len()),
            );
        }
        report(
            "store: count all",
            best(&mut || s.count(&QuerySpec::default()).unwrap()),
        );
        drop(s);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn create_batch_is_all_or_nothing() {
        let s = mem();
        s.create_batch(vec![row("x", 0)]).unwrap();
        // The duplicate is late in a batch larger than one IN chunk.
        let mut rows: Vec<Row> = (0..1200).map(|n| row(&format!("r{n}"), n)).collect();
        rows.push(row("x", 1));
        assert_eq!(s.create_batch(rows), Err(Error::Duplicate("x".into())));
        assert_eq!(s.count(&QuerySpec::default()).unwrap(), 1);
    }

    #[test]
    fn apply_is_one_transaction() {
        let s = mem();
        s.create_batch(vec![row("keep", 0), row("gone", 1)])
            .unwrap();
        let ids = |s: &SqliteStore| -> Vec<String> {
            s.search(&QuerySpec::default())
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        // A later batch fails: the delete and the upsert before it are rolled back.
        let failing = vec![
            WriteOp::Delete(vec!["gone".into()]),
            WriteOp::Upsert(vec![row("keep", 5), row("new", 6)]),
            WriteOp::Create(vec![row("fresh", 7), row("new", 8)]),
        ];
        assert_eq!(s.apply(failing), Err(Error::Duplicate("new".into())));
        assert_eq!(ids(&s), ["keep", "gone"]);
        assert_eq!(
            s.read_batch(&["keep".into()]).unwrap()[0],
            Some(row("keep", 0))
        );
        let ok = vec![
            WriteOp::Delete(vec!["gone".into(), "missing".into()]),
            WriteOp::Create(vec![row("gone", 9)]),
            WriteOp::Upsert(vec![row("keep", 5)]),
        ];
        assert_eq!(s.apply(ok), Ok(3));
        assert_eq!(ids(&s), ["keep", "gone"]);
        assert!(s.is_transactional());
        let memory = crate::memory::MemoryStore::new();
        assert!(!memory.is_transactional());
    }

    #[test]
    fn corrupt_rows_name_the_id() {
        let s = mem();
        s.create_batch(vec![row("good", 1)]).unwrap();
        s.with_conn(|c| {
            c.execute(
                "INSERT INTO \"records\" (id, data, metadata) VALUES ('bad', '{\"n\":', '{}')",
                [],
            )
            .map_err(op_err("test"))
        })
        .unwrap();
        match s.search(&QuerySpec::default()) {
            Err(Error::DataFormat { message, .. }) => {
                assert!(message.contains("\"bad\""), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(s.count(&filt("n", Op::Eq, Value::Int(1))).is_err());
        // The id fast path never touches the bad row.
        assert_eq!(
            s.search(&filt("id", Op::Eq, Value::Str("good".into())))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn streams_in_pages_with_filter_offset_limit() {
        let s = Arc::new(mem());
        let rows: Vec<Row> = (0..1000).map(|n| row(&format!("r{n:04}"), n)).collect();
        s.create_batch(rows).unwrap();
        let spec = QuerySpec {
            cond: Some(Cond::Filter {
                field: "n".into(),
                op: Op::Lt,
                value: Value::Int(500),
            }),
            offset: Some(10),
            limit: Some(333),
            fields: Some(vec!["n".into()]),
            ..Default::default()
        };
        let pages = drain(s.clone().stream(spec.clone(), 100, 2).unwrap()).unwrap();
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 100, 33]
        );
        let flat: Vec<Row> = pages.into_iter().flatten().collect();
        assert_eq!(flat, s.search(&spec).unwrap());
        assert_eq!(flat[0].id, "r0010");
        assert_eq!(flat[0].data.len(), 1);
        let mut sorted = spec.clone();
        sorted.sort = vec![("n".into(), true)];
        let flat: Vec<Row> = drain(s.clone().stream(sorted.clone(), 64, 1).unwrap())
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(flat, s.search(&sorted).unwrap());
        assert_eq!(flat[0].id, "r0489");
        // A dropped cursor stops the producer; the store stays usable.
        let c = s.clone().stream(QuerySpec::default(), 1, 1).unwrap();
        drop(c);
        assert_eq!(s.count(&QuerySpec::default()).unwrap(), 1000);
        // Closing mid-stream ends the stream with Closed.
        let mut c = s.clone().stream(QuerySpec::default(), 10, 1).unwrap();
        s.close().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt.block_on(async {
            loop {
                match c.next_page().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return None,
                    Err(e) => return Some(e),
                }
            }
        });
        assert!(matches!(err, Some(Error::Closed(_))), "{err:?}");
    }
}
