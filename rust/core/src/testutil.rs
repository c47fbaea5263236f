//! Helpers shared by the store tests: sample rows and one conformance run every store passes.

use std::sync::Arc;

use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::query::{Cond, Op, QuerySpec};
use crate::row::Row;
use crate::value::{Map, Value};

/// The verbs of a blocking `Store` over an async store, for a test type with fields `rt` (a
/// tokio runtime, or a reference to one) and `s` (the store): every verb but `stream`, which
/// each store's tests write for its own cursor type.
macro_rules! blocking_verbs {
    () => {
        fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
            self.rt.block_on(self.s.create_batch(rows))
        }
        fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
            self.rt.block_on(self.s.create_missing(rows))
        }
        fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
            self.rt.block_on(self.s.upsert_batch(rows))
        }
        fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
            self.rt.block_on(self.s.update_batch(rows))
        }
        fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>> {
            self.rt.block_on(self.s.read_batch(ids))
        }
        fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
            self.rt.block_on(self.s.exists_batch(ids))
        }
        fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
            self.rt.block_on(self.s.delete_batch(ids))
        }
        fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>> {
            self.rt.block_on(self.s.search(spec))
        }
        fn count(&self, spec: &QuerySpec) -> Result<usize> {
            self.rt.block_on(self.s.count(spec))
        }
        fn clear(&self) -> Result<usize> {
            self.rt.block_on(self.s.clear())
        }
        fn for_each_match(&self, spec: &QuerySpec, each: &mut dyn FnMut(&Row)) -> Result<()> {
            self.search(&crate::aggregate::condition_spec(spec))?
                .iter()
                .for_each(each);
            Ok(())
        }
        fn aggregate(
            &self,
            spec: &QuerySpec,
            agg: &std::sync::Arc<crate::AggSpec>,
        ) -> Result<Vec<crate::AggRow>> {
            self.rt.block_on(self.s.aggregate(spec, agg))
        }
        fn close(&self) -> Result<()> {
            self.s.close()
        }
    };
}
pub(crate) use blocking_verbs;

pub fn row(id: &str, n: i64) -> Row {
    let mut data = Map::new();
    data.insert("n".into(), Value::Int(n));
    data.insert("s".into(), Value::Str(format!("v{n}")));
    let mut metadata = Map::new();
    metadata.insert("m".into(), Value::Bool(n % 2 == 0));
    Row {
        id: id.into(),
        data,
        metadata,
    }
}

pub fn ids_of(rows: &[Row]) -> Vec<String> {
    rows.iter().map(|r| r.id.clone()).collect()
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn filt(field: &str, op: Op, value: Value) -> QuerySpec {
    QuerySpec {
        cond: Some(Cond::Filter {
            field: field.into(),
            op,
            value,
        }),
        ..Default::default()
    }
}

pub fn drain(cursor: Cursor) -> Result<Vec<Vec<Row>>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(e.to_string()))?;
    rt.block_on(async move {
        let mut c = cursor;
        let mut pages = Vec::new();
        while let Some(p) = c.next_page().await? {
            pages.push(p);
        }
        Ok(pages)
    })
}

/// The shared behaviour every store must show; run by each store's tests.
pub fn conformance(s: Arc<dyn StoreDyn>) {
    let store = s.as_store();
    assert_eq!(
        store
            .create_batch(vec![row("a", 1), row("b", 2), row("c", 3)])
            .unwrap(),
        strs(&["a", "b", "c"])
    );
    // Fails closed on a stored id and on a repeat inside the batch.
    assert_eq!(
        store.create_batch(vec![row("d", 4), row("a", 9)]),
        Err(Error::Duplicate("a".into()))
    );
    assert_eq!(
        store.create_batch(vec![row("d", 4), row("d", 5)]),
        Err(Error::Duplicate("d".into()))
    );
    assert_eq!(store.exists_batch(&strs(&["d"])).unwrap(), vec![false]);
    assert_eq!(
        store
            .create_missing(vec![row("b", 20), row("d", 4), row("d", 40)])
            .unwrap(),
        vec![false, true, false]
    );
    assert_eq!(
        store.upsert_batch(vec![row("b", 22), row("e", 5)]).unwrap(),
        strs(&["b", "e"])
    );
    assert_eq!(
        store
            .update_batch(vec![row("a", 11), row("zz", 0)])
            .unwrap(),
        vec![true, false]
    );
    let all = store.search(&QuerySpec::default()).unwrap();
    assert_eq!(ids_of(&all), strs(&["a", "b", "c", "d", "e"]));
    assert_eq!(all[0], row("a", 11));
    assert_eq!(all[1], row("b", 22));
    let got = store.read_batch(&strs(&["e", "x", "a"])).unwrap();
    assert_eq!(got, vec![Some(row("e", 5)), None, Some(row("a", 11))]);
    assert_eq!(
        store.exists_batch(&strs(&["e", "x"])).unwrap(),
        vec![true, false]
    );
    // Queries.
    let q = filt("n", Op::Gte, Value::Int(5));
    assert_eq!(store.count(&q).unwrap(), 3);
    assert_eq!(ids_of(&store.search(&q).unwrap()), strs(&["a", "b", "e"]));
    let mut sorted = q.clone();
    sorted.sort = vec![("n".into(), true)];
    sorted.limit = Some(2);
    sorted.fields = Some(vec!["s".into()]);
    let r = store.search(&sorted).unwrap();
    assert_eq!(ids_of(&r), strs(&["b", "a"]));
    assert_eq!(r[0].data.len(), 1);
    assert_eq!(r[0].metadata, row("b", 22).metadata);
    let by_id = filt(
        "id",
        Op::In,
        Value::List(vec![
            Value::Str("e".into()),
            Value::Str("a".into()),
            Value::Str("e".into()),
            Value::Str("zz".into()),
        ]),
    );
    assert_eq!(ids_of(&store.search(&by_id).unwrap()), strs(&["a", "e"]));
    assert_eq!(store.count(&by_id).unwrap(), 2);
    let one = filt("id", Op::Eq, Value::Str("c".into()));
    assert_eq!(ids_of(&store.search(&one).unwrap()), strs(&["c"]));
    assert_eq!(
        store
            .count(&filt("metadata.m", Op::Eq, Value::Bool(true)))
            .unwrap(),
        2
    );
    assert!(matches!(
        store.search(&filt("s", Op::Regex, Value::Str("(".into()))),
        Err(Error::Query(_))
    ));
    // Stream pages.
    let pages = drain(s.clone().stream_dyn(QuerySpec::default(), 2, 1).unwrap()).unwrap();
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    let pages = drain(s.clone().stream_dyn(sorted.clone(), 1, 0).unwrap()).unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0][0].id, "b");
    // Deletes keep order.
    assert_eq!(
        store.delete_batch(&strs(&["b", "zz", "b"])).unwrap(),
        vec![true, false, false]
    );
    assert_eq!(
        ids_of(&store.search(&QuerySpec::default()).unwrap()),
        strs(&["a", "c", "d", "e"])
    );
    store.upsert_batch(vec![row("b", 2)]).unwrap();
    assert_eq!(
        ids_of(&store.search(&QuerySpec::default()).unwrap()),
        strs(&["a", "c", "d", "e", "b"])
    );
    // The store's aggregation is the core's over its rows, with and without a condition.
    let agg = Arc::new(
        crate::AggSpec::new(
            strs(&["metadata.m"]),
            vec![
                ("rows".into(), "count".into(), None),
                ("total".into(), "sum".into(), Some("n".into())),
                ("top".into(), "max".into(), Some("s".into())),
                ("kinds".into(), "cardinality".into(), Some("s".into())),
            ],
        )
        .unwrap(),
    );
    let every = store.search(&QuerySpec::default()).unwrap();
    for spec in [
        QuerySpec::default(),
        filt("n", Op::Gt, Value::Int(2)),
        filt("s", Op::Regex, Value::Str("[13]$".into())),
    ] {
        let want = crate::aggregate::over_rows(&spec, &agg, &every).unwrap();
        assert!(!want.is_empty());
        assert_eq!(store.aggregate(&spec, &agg).unwrap(), want);
    }
    assert_eq!(store.clear().unwrap(), 5);
    let empty = store.aggregate(&QuerySpec::default(), &agg).unwrap();
    assert!(empty.is_empty());
    assert_eq!(store.count(&QuerySpec::default()).unwrap(), 0);
    assert_eq!(store.clear().unwrap(), 0);
    store.close().unwrap();
    store.close().unwrap();
    assert!(matches!(
        store.count(&QuerySpec::default()),
        Err(Error::Closed(_))
    ));
    assert!(matches!(
        store.create_batch(vec![row("z", 1)]),
        Err(Error::Closed(_))
    ));
    assert!(matches!(
        s.clone().stream_dyn(QuerySpec::default(), 1, 1),
        Err(Error::Closed(_))
    ));
}

/// Object-safe view of a store for the shared tests (`Store::stream` takes `Arc<Self>`).
pub trait StoreDyn: Send + Sync {
    fn as_store(&self) -> &dyn StoreObj;
    fn stream_dyn(self: Arc<Self>, spec: QuerySpec, b: usize, p: usize) -> Result<Cursor>;
}

/// The non-streaming part of `Store`, object safe.
pub trait StoreObj {
    fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>>;
    fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>>;
    fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>>;
    fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>>;
    fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>>;
    fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>>;
    fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>>;
    fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>>;
    fn count(&self, spec: &QuerySpec) -> Result<usize>;
    fn clear(&self) -> Result<usize>;
    fn aggregate(&self, spec: &QuerySpec, agg: &Arc<crate::AggSpec>) -> Result<Vec<crate::AggRow>>;
    fn close(&self) -> Result<()>;
}

impl<T: crate::store::Store> StoreObj for T {
    fn create_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        crate::store::Store::create_batch(self, rows)
    }
    fn create_missing(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        crate::store::Store::create_missing(self, rows)
    }
    fn upsert_batch(&self, rows: Vec<Row>) -> Result<Vec<String>> {
        crate::store::Store::upsert_batch(self, rows)
    }
    fn update_batch(&self, rows: Vec<Row>) -> Result<Vec<bool>> {
        crate::store::Store::update_batch(self, rows)
    }
    fn read_batch(&self, ids: &[String]) -> Result<Vec<Option<Row>>> {
        crate::store::Store::read_batch(self, ids)
    }
    fn exists_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        crate::store::Store::exists_batch(self, ids)
    }
    fn delete_batch(&self, ids: &[String]) -> Result<Vec<bool>> {
        crate::store::Store::delete_batch(self, ids)
    }
    fn search(&self, spec: &QuerySpec) -> Result<Vec<Row>> {
        crate::store::Store::search(self, spec)
    }
    fn count(&self, spec: &QuerySpec) -> Result<usize> {
        crate::store::Store::count(self, spec)
    }
    fn clear(&self) -> Result<usize> {
        crate::store::Store::clear(self)
    }
    fn aggregate(&self, spec: &QuerySpec, agg: &Arc<crate::AggSpec>) -> Result<Vec<crate::AggRow>> {
        crate::store::Store::aggregate(self, spec, agg)
    }
    fn close(&self) -> Result<()> {
        crate::store::Store::close(self)
    }
}

impl<T: crate::store::Store> StoreDyn for T {
    fn as_store(&self) -> &dyn StoreObj {
        self
    }
    fn stream_dyn(self: Arc<Self>, spec: QuerySpec, b: usize, p: usize) -> Result<Cursor> {
        crate::store::Store::stream(self, spec, b, p)
    }
}
