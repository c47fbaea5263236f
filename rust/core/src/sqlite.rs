//! SQLite store: one table `id, data, metadata, created_at, updated_at` with tagged JSON text.
//! Storage order is rowid order. Queries decode rows in Rust and filter with the compiled query,
//! so they mean exactly what they mean on the memory store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::codec;
use crate::cursor::{Cursor, Page};
use crate::error::{Error, Result};
use crate::memory::{self, detail};
use crate::query::{CompiledQuery, QuerySpec};
use crate::row::Row;
use crate::store::Store;

/// Parameters per `IN (...)` statement, well under SQLite's variable limit.
const IN_CHUNK: usize = 500;

pub struct SqliteStore {
    conn: Mutex<Option<Connection>>,
    /// The table name, validated and double-quoted.
    table: String,
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

/// A row as stored: id and the tagged JSON text of data and metadata.
struct Encoded {
    id: String,
    data: String,
    metadata: String,
}

fn encode_rows(rows: &[Row]) -> Vec<Encoded> {
    rows.iter()
        .map(|r| Encoded {
            id: r.id.clone(),
            data: codec::encode_map(&r.data),
            metadata: codec::encode_map(&r.metadata),
        })
        .collect()
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
        Ok(SqliteStore {
            conn: Mutex::new(Some(conn)),
            table: quoted,
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

    /// Runs `sql` (selecting rowid, id, data, metadata) and hands each decoded row to `each`,
    /// which returns false to stop early.
    fn scan(
        &self,
        conn: &Connection,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
        mut each: impl FnMut(i64, Row) -> Result<bool>,
    ) -> Result<()> {
        let mut stmt = conn.prepare_cached(sql).map_err(op_err("search"))?;
        let mut rows = stmt.query(args).map_err(op_err("search"))?;
        while let Some(r) = rows.next().map_err(op_err("search"))? {
            let rowid: i64 = r.get(0).map_err(op_err("search"))?;
            let id: String = r.get(1).map_err(op_err("search"))?;
            let data = r.get_ref(2).map_err(op_err("search"))?;
            let data = data.as_str().map_err(|e| self.not_text(&id, e))?;
            let meta = r.get_ref(3).map_err(op_err("search"))?;
            let meta = meta.as_str().map_err(|e| self.not_text(&id, e))?;
            let row = self.decode(id, data, meta)?;
            if !each(rowid, row)? {
                break;
            }
        }
        Ok(())
    }

    fn not_text(&self, id: &str, e: impl std::fmt::Display) -> Error {
        Error::data_format(
            "json",
            format!("record {id:?} in table {}: {e}", self.table),
        )
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

    fn search_locked(&self, conn: &Connection, q: &CompiledQuery) -> Result<Vec<Row>> {
        if let Some(ids) = q.id_candidates() {
            let rows = self.rows_by_id(conn, &ids)?;
            return q.apply_owned(rows.into_iter().map(|(_, r)| r));
        }
        if q.limit() == Some(0) {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT rowid, id, data, metadata FROM {} ORDER BY rowid",
            self.table
        );
        let mut hits = Vec::new();
        if q.has_sort() {
            self.scan(conn, &sql, &[], |_, row| {
                if q.matches(&row)? {
                    hits.push(row);
                }
                Ok(true)
            })?;
            return Ok(q.shape(hits));
        }
        // Unsorted: storage order, so stop as soon as the window is full.
        let mut skip = q.offset();
        self.scan(conn, &sql, &[], |_, row| {
            if q.matches(&row)? {
                if skip > 0 {
                    skip -= 1;
                } else {
                    hits.push(q.project_row(row));
                }
            }
            Ok(Some(hits.len()) != q.limit())
        })?;
        Ok(hits)
    }

    /// Duplicate check for `create_batch`: first the batch itself, then the table.
    fn first_duplicate(&self, conn: &Connection, rows: &[Encoded]) -> Result<Option<String>> {
        let mut seen = HashSet::with_capacity(rows.len());
        for r in rows {
            if !seen.insert(r.id.as_str()) {
                return Ok(Some(r.id.clone()));
            }
        }
        let mut stored: HashSet<String> = HashSet::new();
        for chunk in rows.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT id FROM {} WHERE id IN ({})",
                self.table,
                placeholders(chunk.len())
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(op_err("create"))?;
            let found = stmt
                .query_map(params_from_iter(chunk.iter().map(|r| r.id.as_str())), |r| {
                    r.get::<_, String>(0)
                })
                .map_err(op_err("create"))?;
            for id in found {
                stored.insert(id.map_err(op_err("create"))?);
            }
        }
        // Report the first in input order, as the memory store does.
        Ok(rows
            .iter()
            .find(|r| stored.contains(&r.id))
            .map(|r| r.id.clone()))
    }

    /// Runs one statement per row inside one transaction; `per_row` gets the number of rows
    /// the statement changed.
    fn write_each<T>(
        &self,
        operation: &'static str,
        sql: &str,
        rows: &[Encoded],
        per_row: impl Fn(&Encoded, usize) -> T,
    ) -> Result<Vec<T>> {
        let now = now_iso();
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(op_err(operation))?;
            let mut out = Vec::with_capacity(rows.len());
            {
                let mut stmt = tx.prepare_cached(sql).map_err(op_err(operation))?;
                for r in rows {
                    let n = stmt
                        .execute(params![r.id, r.data, r.metadata, now])
                        .map_err(op_err(operation))?;
                    out.push(per_row(r, n));
                }
            }
            tx.commit().map_err(op_err(operation))?;
            Ok(out)
        })
    }

    fn page_after(&self, conn: &Connection, after: i64, n: usize) -> Result<Vec<(i64, Row)>> {
        let sql = format!(
            "SELECT rowid, id, data, metadata FROM {} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            self.table
        );
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let mut out = Vec::with_capacity(n.min(4096));
        self.scan(conn, &sql, &[&after, &limit], |rowid, row| {
            out.push((rowid, row));
            Ok(true)
        })?;
        Ok(out)
    }

    /// The producer of an unsorted stream: pages through the table by rowid, taking the lock
    /// once per page, and sends filtered rows in messages of at most `batch_size`.
    fn produce(
        &self,
        q: &CompiledQuery,
        batch_size: usize,
        tx: &tokio::sync::mpsc::Sender<Page>,
    ) -> Result<()> {
        let mut after = i64::MIN;
        let mut skip = q.offset();
        let mut remaining = q.limit().unwrap_or(usize::MAX);
        let mut out: Vec<Row> = Vec::with_capacity(batch_size.min(4096));
        while remaining > 0 {
            let page = self.with_conn(|c| self.page_after(c, after, batch_size))?;
            let Some((last, _)) = page.last() else {
                break;
            };
            after = *last;
            for (_, row) in page {
                if remaining == 0 {
                    break;
                }
                if !q.matches(&row)? {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                out.push(q.project_row(row));
                remaining -= 1;
                if out.len() == batch_size {
                    let full =
                        std::mem::replace(&mut out, Vec::with_capacity(batch_size.min(4096)));
                    if tx.blocking_send(Ok(full)).is_err() {
                        return Ok(());
                    }
                }
            }
        }
        if !out.is_empty() {
            let _ = tx.blocking_send(Ok(out));
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        let enc = encode_rows(&rows);
        let now = now_iso();
        let sql = format!(
            "INSERT INTO {} (id, data, metadata, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            self.table
        );
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(op_err("create"))?;
            if let Some(id) = self.first_duplicate(&tx, &enc)? {
                return Err(Error::Duplicate(id));
            }
            {
                let mut stmt = tx.prepare_cached(&sql).map_err(op_err("create"))?;
                for r in &enc {
                    stmt.execute(params![r.id, r.data, r.metadata, now])
                        .map_err(op_err("create"))?;
                }
            }
            tx.commit().map_err(op_err("create"))?;
            Ok(enc.into_iter().map(|r| r.id).collect())
        })
    }

    fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        let sql = format!(
            "INSERT INTO {} (id, data, metadata, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT(id) DO NOTHING",
            self.table
        );
        self.write_each("create", &sql, &encode_rows(&rows), |_, n| n > 0)
    }

    fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        let sql = format!(
            "INSERT INTO {} (id, data, metadata, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT(id) DO UPDATE SET data = excluded.data, metadata = excluded.metadata, \
             updated_at = excluded.updated_at",
            self.table
        );
        self.write_each("upsert", &sql, &encode_rows(&rows), |r, _| r.id.clone())
    }

    fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        let sql = format!(
            "UPDATE {} SET data = ?2, metadata = ?3, updated_at = ?4 WHERE id = ?1",
            self.table
        );
        self.write_each("update", &sql, &encode_rows(&rows), |_, n| n > 0)
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
        let sql = format!("DELETE FROM {} WHERE id = ?1", self.table);
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(op_err("delete"))?;
            let mut out = Vec::with_capacity(ids.len());
            {
                let mut stmt = tx.prepare_cached(&sql).map_err(op_err("delete"))?;
                for id in ids {
                    out.push(stmt.execute([id]).map_err(op_err("delete"))? > 0);
                }
            }
            tx.commit().map_err(op_err("delete"))?;
            Ok(out)
        })
    }

    fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>> {
        let q = CompiledQuery::new(spec)?;
        self.with_conn(|conn| self.search_locked(conn, &q))
    }

    fn count(&self, spec: &QuerySpec) -> Result<usize> {
        let q = CompiledQuery::new(spec)?;
        self.with_conn(|conn| {
            if !q.has_cond() {
                let n: i64 = conn
                    .query_row(&format!("SELECT COUNT(*) FROM {}", self.table), [], |r| {
                        r.get(0)
                    })
                    .map_err(op_err("count"))?;
                return Ok(usize::try_from(n).unwrap_or(0));
            }
            if let Some(ids) = q.id_candidates() {
                return Ok(self.rows_by_id(conn, &ids)?.len());
            }
            let sql = format!(
                "SELECT rowid, id, data, metadata FROM {} ORDER BY rowid",
                self.table
            );
            let mut n = 0;
            self.scan(conn, &sql, &[], |_, row| {
                if q.matches(&row)? {
                    n += 1;
                }
                Ok(true)
            })?;
            Ok(n)
        })
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
        let q = CompiledQuery::new(&spec)?;
        // Fail now, not on the first page, when the store is closed.
        self.with_conn(|_| Ok(()))?;
        if q.has_sort() || q.id_candidates().is_some() {
            let rows = self.with_conn(|conn| self.search_locked(conn, &q))?;
            return memory::stream_rows(rows, batch_size, prefetch);
        }
        let (tx, cursor) = Cursor::channel(prefetch);
        let store = self;
        std::thread::Builder::new()
            .name("dataknobs-sqlite-stream".into())
            .spawn(move || {
                if let Err(e) = store.produce(&q, batch_size, &tx) {
                    let _ = tx.blocking_send(Err(e));
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
