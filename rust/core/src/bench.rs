//! Rough timings, run by hand: `cargo test -p dataknobs-core --release -- --ignored --nocapture bench`.

use std::sync::Arc;
use std::time::Instant;

use crate::memory::MemoryStore;
use crate::query::{Cond, Op, QuerySpec};
use crate::row::Row;
use crate::store::Store;
use crate::value::{Map, Value};

pub(crate) fn rows(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let mut data = Map::new();
            data.insert("n".into(), Value::Int(i as i64));
            data.insert("bucket".into(), Value::Int((i % 10) as i64));
            data.insert("name".into(), Value::Str(format!("name-{i}")));
            data.insert(
                "score".into(),
                Value::Float((i * 7919 % 1000) as f64 / 10.0),
            );
            let mut metadata = Map::new();
            metadata.insert("src".into(), Value::Str("bench".into()));
            Row {
                id: format!("id-{i:06}"),
                data,
                metadata,
            }
        })
        .collect()
}

pub(crate) fn selective_sorted() -> QuerySpec {
    QuerySpec {
        cond: Some(Cond::Filter {
            field: "bucket".into(),
            op: Op::Eq,
            value: Value::Int(3),
        }),
        sort: vec![("score".into(), true)],
        offset: None,
        limit: Some(100),
        fields: None,
    }
}

pub(crate) fn time<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    eprintln!("{label}: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    out
}

#[test]
#[ignore]
fn bench_memory() {
    let data = rows(100_000);
    let store = Arc::new(MemoryStore::new());
    time("memory create_batch 100k", || store.create_batch(data)).unwrap();
    let spec = selective_sorted();
    let r = time("memory search 10% + sort + limit 100", || {
        store.search(&spec)
    })
    .unwrap();
    assert_eq!(r.len(), 100);
    let n = time("memory count 10%", || store.count(&spec)).unwrap();
    assert_eq!(n, 10_000);
    let all = time("memory search all (clone 100k)", || {
        store.search(&QuerySpec::default())
    })
    .unwrap();
    assert_eq!(all.len(), 100_000);
}

#[test]
#[ignore]
fn bench_sqlite() {
    let path = std::env::temp_dir().join(format!("dk-bench-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store = Arc::new(
        crate::sqlite::SqliteStore::open(&path.to_string_lossy(), "records", 5.0, None, None, true)
            .unwrap(),
    );
    let data = rows(100_000);
    time("sqlite create_batch 100k (file on /tmp)", || {
        store.create_batch(data)
    })
    .unwrap();
    let spec = selective_sorted();
    let r = time("sqlite search 10% + sort + limit 100", || {
        store.search(&spec)
    })
    .unwrap();
    assert_eq!(r.len(), 100);
    let n = time("sqlite count 10%", || store.count(&spec)).unwrap();
    assert_eq!(n, 10_000);
    let _ = std::fs::remove_file(&path);
}

#[test]
#[ignore]
fn bench_micro() {
    let data = rows(100_000);
    let store = MemoryStore::new();
    store.create_batch(data).unwrap();
    let g = store.read_guard().unwrap();
    let n = time("iterate values", || {
        g.values().filter(|r| r.id.len() == 9).count()
    });
    assert_eq!(n, 100_000);
    let n = time("data.get(bucket)", || {
        g.values()
            .filter(|r| crate::query::map_get(&r.data, "bucket").is_some())
            .count()
    });
    assert_eq!(n, 100_000);
    let n = time("data.get_index(1)", || {
        g.values()
            .filter(|r| matches!(r.data.get_index(1), Some((_, Value::Int(3)))))
            .count()
    });
    assert_eq!(n, 10_000);
    let q = crate::query::CompiledQuery::new(&selective_sorted()).unwrap();
    let n = time("compiled count", || q.count(g.values())).unwrap();
    assert_eq!(n, 10_000);
}
