//! Store tests against a live server, the one `DKDATA_PG_DSN` names: `make test-rust` starts
//! the tests' throwaway cluster for them (scripts/with_services.py). Without a server they fail:
//! a test that did not run must not count as passed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;
use crate::store::Store;
use crate::testutil::{conformance, row};

fn dsn() -> String {
    match std::env::var("DKDATA_PG_DSN") {
        Ok(dsn) if !dsn.is_empty() => dsn,
        _ => panic!(
            "DKDATA_PG_DSN names no PostgreSQL server: run `make test-rust`, which starts one, \
             or `python scripts/with_services.py cargo test`"
        ),
    }
}

fn settings(dsn: &str) -> PgSettings {
    static N: AtomicUsize = AtomicUsize::new(0);
    PgSettings {
        connection_string: Some(dsn.to_string()),
        table: format!(
            "rs_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ),
        min_pool_size: 1,
        ..PgSettings::new()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The blocking `Store` face the shared conformance run expects.
struct Blocking {
    rt: tokio::runtime::Runtime,
    s: PostgresStore,
}

impl Store for Blocking {
    crate::testutil::blocking_verbs!();
    fn stream(self: Arc<Self>, spec: QuerySpec, b: usize, p: usize) -> Result<Cursor> {
        let _entered = self.rt.enter();
        Ok(match self.rt.block_on(self.s.stream(spec, b, p))? {
            Streamed::Rows(cursor) => cursor,
            Streamed::Text(text) => decoded(text, p),
        })
    }
}

/// Text pages decoded by a task, as rows.
fn decoded(mut text: Cursor<TextRow>, prefetch: usize) -> Cursor {
    let (tx, rows) = Cursor::channel(prefetch);
    tokio::spawn(async move {
        loop {
            let page = match text.next_page().await {
                Ok(Some(page)) => page.iter().map(TextRow::decode).collect(),
                Ok(None) => {
                    tx.end().await;
                    break;
                }
                Err(e) => Err(e),
            };
            let failed = page.is_err();
            if !tx.send_result(page).await || failed {
                break;
            }
        }
    });
    rows
}

#[test]
fn conformance_against_a_server() {
    let dsn = dsn();
    let rt = rt();
    let s = rt.block_on(PostgresStore::open(settings(&dsn))).unwrap();
    conformance(Arc::new(Blocking { rt, s }));
}

#[test]
fn pools_are_shared_and_released() {
    let dsn = dsn();
    let rt = rt();
    // A pool size no other test uses, so the pool is this test's alone.
    let own = || PgSettings {
        max_pool_size: 4,
        ..settings(&dsn)
    };
    rt.block_on(async {
        let a = PostgresStore::open(own()).await.unwrap();
        let b = PostgresStore::open(own()).await.unwrap();
        let stats = a.pool_stats().unwrap();
        assert_eq!(stats.stores, 2, "{stats:?}");
        assert!(!stats.key.contains("password"));
        a.create_batch(vec![row("x", 1)]).await.unwrap();
        a.close().unwrap();
        assert_eq!(b.pool_stats().unwrap().stores, 1);
        assert!(matches!(
            a.count(&QuerySpec::default()).await,
            Err(Error::Closed(_))
        ));
        b.close().unwrap();
    });
}

#[test]
fn wrong_port_is_a_connection_error() {
    let rt = rt();
    let s = PgSettings {
        host: Some("127.0.0.1".into()),
        port: Some(1),
        ..PgSettings::new()
    };
    let e = rt.block_on(PostgresStore::open(s)).err();
    assert!(matches!(e, Some(Error::Connection { .. })), "{e:?}");
}

#[test]
fn repeated_ids_in_a_batch_behave_as_on_the_memory_store() {
    let dsn = dsn();
    let rt = rt();
    let pg = Blocking {
        s: rt.block_on(PostgresStore::open(settings(&dsn))).unwrap(),
        rt,
    };
    let mem = crate::memory::MemoryStore::new();
    let stores: [&dyn crate::testutil::StoreObj; 2] = [&pg, &mem];
    let mut outcomes = Vec::new();
    for s in stores {
        let created = s
            .create_missing(vec![row("a", 1), row("b", 2), row("a", 3)])
            .unwrap();
        let upserted = s
            .upsert_batch(vec![row("c", 4), row("a", 5), row("c", 6)])
            .unwrap();
        let updated = s
            .update_batch(vec![row("b", 7), row("x", 0), row("b", 8)])
            .unwrap();
        let deleted = s.delete_batch(&["x".to_string(), "c".to_string(), "c".to_string()]);
        let all = s.search(&QuerySpec::default()).unwrap();
        outcomes.push(format!(
            "{created:?} {upserted:?} {updated:?} {deleted:?} {all:?}"
        ));
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

#[test]
fn apply_is_one_server_transaction() {
    let rt = rt();
    let dsn = dsn();
    rt.block_on(async {
        let s = PostgresStore::open(settings(&dsn)).await.unwrap();
        s.create_batch(vec![row("keep", 0), row("gone", 1)])
            .await
            .unwrap();
        let failing = vec![
            WriteOp::Delete(vec!["gone".into()]),
            WriteOp::Upsert(vec![row("keep", 5), row("new", 6)]),
            WriteOp::Create(vec![row("fresh", 7), row("new", 8)]),
        ];
        assert_eq!(s.apply(failing).await, Err(Error::Duplicate("new".into())));
        let all = s.search(&QuerySpec::default()).await.unwrap();
        assert_eq!(all, vec![row("keep", 0), row("gone", 1)]);
        let ok = vec![
            WriteOp::Delete(vec!["gone".into(), "missing".into()]),
            WriteOp::Create(vec![row("gone", 9)]),
            WriteOp::Upsert(vec![row("keep", 5), row("keep", 6)]),
        ];
        assert_eq!(s.apply(ok).await, Ok(4));
        let all = s.search(&QuerySpec::default()).await.unwrap();
        assert_eq!(all, vec![row("keep", 6), row("gone", 9)]);
        s.close().unwrap();
    });
}
