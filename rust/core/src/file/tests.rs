//! The file store's own tests (the shared conformance suite runs every layout too).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::layout::record_line;
use super::*;
use crate::codec;
use crate::query::{Cond, Op};
use crate::testutil::{conformance, drain, filt, ids_of, row, strs};
use crate::value::DateTimeValue;
use crate::value::{Map, Value};

fn tmpdir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "dk-file-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const FORMATS: [(&str, Option<&str>); 8] = [
    ("json", None),
    ("jsonl", None),
    ("csv", None),
    ("tsv", None),
    ("json", Some("gzip")),
    ("jsonl", Some("gzip")),
    ("csv", Some("gzip")),
    ("tsv", Some("gzip")),
];

fn rich_row(id: &str) -> Row {
    let mut r = row(id, 7);
    let d = &mut r.data;
    d.insert("empty".into(), Value::Str(String::new()));
    d.insert("numstr".into(), Value::Str("123".into()));
    d.insert("nullstr".into(), Value::Str("null".into()));
    d.insert("jsonish".into(), Value::Str("{\"a\": 1}".into()));
    d.insert("spaced".into(), Value::Str(" 1 ".into()));
    d.insert("text".into(), Value::Str("a, b\t\"c\"\nd".into()));
    d.insert("none".into(), Value::Null);
    d.insert("f".into(), Value::Float(1.5));
    d.insert("nan".into(), Value::Float(f64::NAN));
    d.insert("b".into(), Value::Bytes(vec![0, 255]));
    d.insert("dec".into(), Value::Decimal("1.10".into()));
    d.insert(
        "when".into(),
        Value::DateTime(DateTimeValue {
            naive: chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
                .and_then(|x| x.and_hms_micro_opt(10, 0, 0, 5))
                .unwrap_or_default(),
            offset_seconds: Some(3600),
        }),
    );
    d.insert(
        "list".into(),
        Value::List(vec![Value::Int(1), Value::Str("x".into())]),
    );
    let mut tagged = Map::new();
    tagged.insert("$date".into(), Value::Str("not a date".into()));
    d.insert("tagged".into(), Value::Map(tagged));
    r
}

fn same(a: &Row, b: &Row) -> bool {
    // NaN never equals itself; compare the text form instead.
    a.id == b.id
        && codec::encode_map(&a.metadata) == codec::encode_map(&b.metadata)
        && a.data.len() == b.data.len()
        && a.data.iter().all(|(k, v)| {
            b.data
                .get(k)
                .is_some_and(|w| codec::encode_json(v) == codec::encode_json(w))
        })
}

#[test]
fn conformance_every_format() {
    for (fmt, comp) in FORMATS {
        let dir = tmpdir("conf");
        let path = dir.join(format!("db.{fmt}"));
        let s = FileStore::open(path.to_str().unwrap(), fmt, comp).unwrap();
        conformance(Arc::new(s));
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn persists_and_reloads_every_format() {
    for (fmt, comp) in FORMATS {
        let dir = tmpdir("reload");
        let path = dir.join(format!("sub/db.{fmt}"));
        let p = path.to_str().unwrap();
        let s = FileStore::open(p, fmt, comp).unwrap();
        s.create_batch(vec![rich_row("a"), row("b", 2)]).unwrap();
        s.create_missing(vec![row("c", 3), row("a", 0)]).unwrap();
        s.upsert_batch(vec![row("b", 20)]).unwrap();
        s.delete_batch(&strs(&["zz"])).unwrap();
        s.close().unwrap();
        let t = FileStore::open(p, fmt, comp).unwrap();
        let all = t.search(&QuerySpec::default()).unwrap();
        assert_eq!(all.len(), 3, "{fmt} {comp:?}");
        assert!(
            same(&all[0], &rich_row("a")),
            "{fmt} {comp:?}: {:?}",
            all[0]
        );
        assert!(same(&all[1], &row("b", 20)), "{fmt} {comp:?}: {:?}", all[1]);
        assert!(same(&all[2], &row("c", 3)));
        t.delete_batch(&strs(&["a"])).unwrap();
        t.close().unwrap();
        let u = FileStore::open(p, fmt, comp).unwrap();
        assert_eq!(u.count(&QuerySpec::default()).unwrap(), 2);
        u.clear().unwrap();
        let v = FileStore::open(p, fmt, comp).unwrap();
        assert_eq!(v.count(&QuerySpec::default()).unwrap(), 0);
        // No temp files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn jsonl_creates_append() {
    let dir = tmpdir("append");
    let path = dir.join("db.jsonl");
    std::fs::write(&path, "{\"id\":\"x\",\"data\":{},\"metadata\":{}}").unwrap();
    let s = FileStore::open(path.to_str().unwrap(), "jsonl", None).unwrap();
    s.create_batch(vec![row("a", 1)]).unwrap();
    s.create_missing(vec![row("b", 1), row("a", 2)]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("{\"id\":\"x\""));
    let t = FileStore::open(path.to_str().unwrap(), "jsonl", None).unwrap();
    assert_eq!(t.count(&QuerySpec::default()).unwrap(), 3);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn failed_write_changes_nothing() {
    for (fmt, comp) in FORMATS {
        let dir = tmpdir("fail");
        let path = dir.join(format!("db.{fmt}"));
        let s = FileStore::open(path.to_str().unwrap(), fmt, comp).unwrap();
        s.create_batch(vec![row("a", 1), row("b", 2), row("c", 3)])
            .unwrap();
        // Loaded, so the rows outlive the file (a jsonl create only appended).
        s.exists_batch(&strs(&["a"])).unwrap();
        // A directory where the file should be makes every write fail.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let before = s.search(&QuerySpec::default()).unwrap();
        assert!(matches!(
            s.create_batch(vec![row("d", 4)]),
            Err(Error::Operation { .. })
        ));
        assert!(s.create_missing(vec![row("d", 4)]).is_err());
        assert!(s.upsert_batch(vec![row("a", 9), row("e", 5)]).is_err());
        assert!(s.update_batch(vec![row("b", 9)]).is_err());
        assert!(s.delete_batch(&strs(&["a", "c"])).is_err());
        assert!(s.clear().is_err());
        assert_eq!(s.search(&QuerySpec::default()).unwrap(), before, "{fmt}");
        // Verbs that change nothing do not write.
        assert_eq!(s.update_batch(vec![row("zz", 1)]).unwrap(), vec![false]);
        assert_eq!(s.delete_batch(&strs(&["zz"])).unwrap(), vec![false]);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn config_errors() {
    let e = FileStore::open("/tmp/x.xml", "xml", None).err();
    assert!(matches!(e, Some(Error::Config { parameter, .. }) if parameter == "format"));
    let e = FileStore::open("/tmp/x.json", "json", Some("zip")).err();
    assert!(matches!(e, Some(Error::Config { parameter, .. }) if parameter == "compression"));
}

fn load_err(fmt: &str, comp: Option<&str>, content: &[u8]) -> String {
    let dir = tmpdir("bad");
    let path = dir.join(format!("bad.{fmt}"));
    std::fs::write(&path, content).unwrap();
    // Opening reads nothing; a scan and a load must each report the same error.
    let s = scanning(path.to_str().unwrap(), fmt, comp);
    let scanned = s.count(&QuerySpec::default());
    let loaded = s.exists_batch(&strs(&["a"])).map(|_| 0);
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(format!("{scanned:?}"), format!("{loaded:?}"));
    match scanned {
        Err(Error::DataFormat { format, message }) => {
            assert_eq!(format, fmt);
            assert!(message.contains("bad."), "{message}");
            message
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("loaded {:?}", String::from_utf8_lossy(content)),
    }
}

#[test]
fn malformed_files() {
    let m = load_err("json", None, b"[{\"id\":\"a\",\"data\":{}},\n{\"id\":5}]");
    assert!(m.contains("record 1"), "{m}");
    let m = load_err("json", None, b"[{\"id\":\"a\",\n\"data\":{]");
    assert!(m.contains("line 2"), "{m}");
    let m = load_err("json", None, b"{\"id\":\"a\"}");
    assert!(m.contains("array"), "{m}");
    let m = load_err(
        "json",
        None,
        b"[{\"id\":\"a\",\"data\":{\"d\":{\"$date\":\"x\"}}}]",
    );
    assert!(m.contains("record 0") && m.contains("$date"), "{m}");
    let m = load_err("json", None, b"[{\"id\":\"a\"},{\"id\":\"a\"}]");
    assert!(m.contains("duplicate"), "{m}");
    let m = load_err(
        "jsonl",
        None,
        b"{\"id\":\"a\",\"data\":{}}\n\n{\"id\":\"b\",\"data\":[]}\n",
    );
    assert!(m.contains("line 3"), "{m}");
    let m = load_err("jsonl", None, b"{\"id\":\"a\"}\nnot json\n");
    assert!(m.contains("line 2"), "{m}");
    let m = load_err("csv", None, b"id,x,_metadata\na,1,{}\nb,2,[1]\n");
    assert!(m.contains("line 3"), "{m}");
    let m = load_err("csv", None, b"id,x,_metadata\na,1,{},extra\n");
    assert!(m.contains("line 2"), "{m}");
    let m = load_err("tsv", None, b"name\tx\na\t1\n");
    assert!(m.contains("id"), "{m}");
    let m = load_err("json", Some("gzip"), b"not gzip at all");
    assert!(m.contains("gzip"), "{m}");
}

#[test]
fn empty_and_foreign_files() {
    let dir = tmpdir("empty");
    for (fmt, comp) in FORMATS {
        let path = dir.join(format!("e.{fmt}.{}", comp.unwrap_or("plain")));
        std::fs::write(&path, b"").unwrap();
        let s = FileStore::open(path.to_str().unwrap(), fmt, comp).unwrap();
        assert_eq!(s.count(&QuerySpec::default()).unwrap(), 0);
    }
    // A CSV written elsewhere: no _metadata column, cells typed by JSON.
    let path = dir.join("plain.csv");
    std::fs::write(&path, "id,name,age\n1,Ann,30\n2,\"Bob, Jr\",\n").unwrap();
    let s = FileStore::open(path.to_str().unwrap(), "csv", None).unwrap();
    let all = s.search(&QuerySpec::default()).unwrap();
    assert_eq!(all[0].data.get("age"), Some(&Value::Int(30)));
    assert_eq!(all[1].data.get("name"), Some(&Value::Str("Bob, Jr".into())));
    assert!(!all[1].data.contains_key("age"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A store that scans its file however small it is.
fn scanning(path: &str, fmt: &str, comp: Option<&str>) -> FileStore {
    let mut s = FileStore::open(path, fmt, comp).unwrap();
    s.load_below = 0;
    s
}

fn on_disk(s: &FileStore) -> bool {
    matches!(*s.state.read(), State::OnDisk { .. })
}

/// A jsonl file of `n` rows `r00000`.. written by hand, with a blank line and no final newline.
fn jsonl_file(dir: &Path, n: i64) -> PathBuf {
    let path = dir.join("big.jsonl");
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&record_line(&row(&format!("r{i:05}"), i % 97)));
        text.push('\n');
        if i == 10 {
            text.push('\n');
        }
    }
    text.pop();
    std::fs::write(&path, text).unwrap();
    path
}

fn flat(cursor: Cursor) -> Result<Vec<Row>> {
    Ok(drain(cursor)?.into_iter().flatten().collect())
}

#[test]
fn scans_give_what_the_loaded_index_gives() {
    let dir = tmpdir("scan");
    let path = jsonl_file(&dir, 3000);
    let p = path.to_str().unwrap();
    let scanned = Arc::new(scanning(p, "jsonl", None));
    let loaded = Arc::new(FileStore::open(p, "jsonl", None).unwrap());
    loaded.exists_batch(&strs(&["r00000"])).unwrap();
    assert!(!on_disk(&loaded));
    let mut specs = vec![
        QuerySpec::default(),
        filt("n", Op::Lt, Value::Int(10)),
        filt("id", Op::Eq, Value::Str("r02999".into())),
        filt("s", Op::Like, Value::Str("v9%".into())),
    ];
    let mut windowed = filt("n", Op::Gte, Value::Int(50));
    windowed.offset = Some(7);
    windowed.limit = Some(450);
    windowed.fields = Some(vec!["s".into()]);
    specs.push(windowed.clone());
    windowed.sort = vec![("n".into(), true), ("id".into(), false)];
    specs.push(windowed);
    specs.push(QuerySpec {
        cond: Some(Cond::Not(Box::new(Cond::Filter {
            field: "n".into(),
            op: Op::Between,
            value: Value::List(vec![Value::Int(3), Value::Int(90)]),
        }))),
        limit: Some(0),
        ..Default::default()
    });
    for spec in &specs {
        let want = loaded.search(spec).unwrap();
        assert_eq!(scanned.search(spec).unwrap(), want, "{spec:?}");
        assert_eq!(
            scanned.count(spec).unwrap(),
            loaded.count(spec).unwrap(),
            "{spec:?}"
        );
        let streamed = flat(scanned.clone().stream(spec.clone(), 64, 2).unwrap()).unwrap();
        assert_eq!(streamed, want, "{spec:?}");
        assert_eq!(
            flat(loaded.clone().stream(spec.clone(), 64, 2).unwrap()).unwrap(),
            want
        );
    }
    assert!(
        on_disk(&scanned),
        "search, count and stream do not load the file"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_layout_scans_like_it_loads() {
    for (fmt, comp) in FORMATS {
        let dir = tmpdir("layouts");
        let p = dir.join(format!("db.{fmt}"));
        let p = p.to_str().unwrap();
        let writer = FileStore::open(p, fmt, comp).unwrap();
        writer
            .create_batch((0..300).map(|i| row(&format!("k{i}"), i % 7)).collect())
            .unwrap();
        writer.create_batch(vec![rich_row("rich")]).unwrap();
        let scanned = Arc::new(scanning(p, fmt, comp));
        let spec = filt("n", Op::Eq, Value::Int(3));
        let want = writer.search(&spec).unwrap();
        assert_eq!(scanned.search(&spec).unwrap(), want, "{fmt} {comp:?}");
        assert_eq!(
            flat(scanned.clone().stream(spec, 10, 1).unwrap()).unwrap(),
            want
        );
        let all = scanned.search(&QuerySpec::default()).unwrap();
        assert_eq!(all.len(), 301);
        assert!(same(&all[300], &rich_row("rich")), "{fmt} {comp:?}");
        assert!(on_disk(&scanned));
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn data_format_message(r: Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::DataFormat { message, .. }) => message,
        other => panic!("{other:?}"),
    }
}

#[test]
fn stream_reports_a_malformed_line_after_the_good_pages() {
    let dir = tmpdir("badline");
    let path = jsonl_file(&dir, 2000);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n{\"id\": \"oops\", \"data\": [1]}\n");
    std::fs::write(&path, &text).unwrap();
    let s = Arc::new(scanning(path.to_str().unwrap(), "jsonl", None));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut cursor = s.clone().stream(QuerySpec::default(), 100, 1).unwrap();
    let mut got = 0;
    let err = rt.block_on(async {
        loop {
            match cursor.next_page().await {
                Ok(Some(page)) => got += page.len(),
                Ok(None) => return None,
                Err(e) => return Some(e),
            }
        }
    });
    assert_eq!(got, 2000, "the good rows come first");
    let m = data_format_message(err.map_or(Ok(()), Err));
    assert!(m.contains("big.jsonl") && m.contains("line 2002"), "{m}");
    let m = data_format_message(s.count(&QuerySpec::default()));
    assert!(m.contains("line 2002"), "{m}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_repeated_id_in_the_file_is_reported_by_every_path() {
    let dir = tmpdir("dup");
    let path = jsonl_file(&dir, 50);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push('\n');
    text.push_str(&record_line(&row("r00007", 1)));
    std::fs::write(&path, &text).unwrap();
    let s = Arc::new(scanning(path.to_str().unwrap(), "jsonl", None));
    let sorted = QuerySpec {
        sort: vec![("n".into(), false)],
        ..Default::default()
    };
    for m in [
        data_format_message(s.count(&QuerySpec::default())),
        data_format_message(s.search(&sorted)),
        data_format_message(s.clone().stream(sorted, 10, 1).map(|_| ())),
        data_format_message(flat(s.clone().stream(QuerySpec::default(), 10, 1).unwrap())),
        data_format_message(s.create_batch(vec![row("new", 1)])),
        data_format_message(s.read_batch(&strs(&["r00001"]))),
    ] {
        assert!(
            m.contains("line 52") && m.contains("duplicate id \"r00007\""),
            "{m}"
        );
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn creates_append_to_an_unloaded_jsonl() {
    let dir = tmpdir("append-unloaded");
    let path = jsonl_file(&dir, 100);
    let p = path.to_str().unwrap();
    let s = scanning(p, "jsonl", None);
    let before = std::fs::read_to_string(&path).unwrap();
    // Fails closed against the file's ids and within the batch; the file is untouched.
    assert!(matches!(
        s.create_batch(vec![row("x1", 1), row("r00042", 1)]),
        Err(Error::Duplicate(id)) if id == "r00042"
    ));
    assert!(matches!(
        s.create_batch(vec![row("x1", 1), row("x1", 2)]),
        Err(Error::Duplicate(id)) if id == "x1"
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    assert_eq!(
        s.create_batch(vec![row("x1", 1), row("x2", 2)]).unwrap(),
        strs(&["x1", "x2"])
    );
    assert_eq!(
        s.create_missing(vec![
            row("x2", 0),
            row("x3", 3),
            row("r00000", 0),
            row("x3", 4)
        ])
        .unwrap(),
        vec![false, true, false, false]
    );
    assert!(matches!(
        s.create_batch(vec![row("x3", 1)]),
        Err(Error::Duplicate(_))
    ));
    assert!(on_disk(&s), "creates only appended");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(&before), "appended, not rewritten");
    assert_eq!(s.count(&QuerySpec::default()).unwrap(), 103);
    let got = s.read_batch(&strs(&["x3", "x1", "r00099"])).unwrap();
    assert_eq!(got[0], Some(row("x3", 3)));
    assert_eq!(got[1], Some(row("x1", 1)));
    assert!(got[2].is_some());
    assert!(!on_disk(&s));
    let all = s.search(&QuerySpec::default()).unwrap();
    assert_eq!(ids_of(&all[100..]), strs(&["x1", "x2", "x3"]));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_stream_reads_the_file_as_it_was_when_it_started() {
    let dir = tmpdir("snapshot");
    let path = jsonl_file(&dir, 1000);
    let s = Arc::new(scanning(path.to_str().unwrap(), "jsonl", None));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut appended = s.clone().stream(QuerySpec::default(), 10, 1).unwrap();
    let rewritten = s.clone().stream(QuerySpec::default(), 10, 1).unwrap();
    let first = rt.block_on(appended.next_page()).unwrap().unwrap();
    assert_eq!(first[0].id, "r00000");
    // An append while the store is still on disk, then a rewrite (which loads it).
    s.create_batch(vec![row("late", 1)]).unwrap();
    assert!(on_disk(&s));
    let rest = flat(appended).unwrap();
    assert_eq!(rest.len(), 990);
    assert!(rest.iter().all(|r| r.id != "late"));
    s.upsert_batch(vec![row("r00500", -1)]).unwrap();
    s.delete_batch(&strs(&["r00999"])).unwrap();
    let old = flat(rewritten).unwrap();
    assert_eq!(old.len(), 1000);
    assert_eq!(old[500], row("r00500", 500 % 97));
    // A new stream sees the changes.
    let now = flat(s.clone().stream(QuerySpec::default(), 10, 1).unwrap()).unwrap();
    assert_eq!(now.len(), 1000);
    assert_eq!(now[500], row("r00500", -1));
    assert_eq!(now[999].id, "late");
    // A dropped cursor stops its producer; closing the store ends a live stream.
    drop(s.clone().stream(QuerySpec::default(), 1, 1).unwrap());
    let reopened = Arc::new(scanning(path.to_str().unwrap(), "jsonl", None));
    let mut live = reopened
        .clone()
        .stream(QuerySpec::default(), 10, 1)
        .unwrap();
    rt.block_on(live.next_page()).unwrap().unwrap();
    reopened.close().unwrap();
    let err = rt.block_on(async {
        loop {
            match live.next_page().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(e) => return Some(e),
            }
        }
    });
    assert!(matches!(err, Some(Error::Closed(_))), "{err:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unreadable_path_fails_at_open() {
    let dir = tmpdir("dirpath");
    let e = FileStore::open(dir.to_str().unwrap(), "jsonl", None).err();
    assert!(matches!(e, Some(Error::Operation { .. })), "{e:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_stream_over_the_loaded_index_copies_each_page_when_it_is_produced() {
    let dir = tmpdir("loaded-stream");
    let path = jsonl_file(&dir, 1000);
    let s = Arc::new(FileStore::open(path.to_str().unwrap(), "jsonl", None).unwrap());
    s.exists_batch(&strs(&["r00000"])).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut c = s
        .clone()
        .stream(filt("n", Op::Lt, Value::Int(50)), 10, 1)
        .unwrap();
    let first = rt.block_on(c.next_page()).unwrap().unwrap();
    assert_eq!(first.len(), 10);
    // The result is fixed at the start: a row created later is not in it, a row deleted later
    // is left out, a row updated later comes as it is now.
    s.create_batch(vec![row("late", 1)]).unwrap();
    s.delete_batch(&strs(&["r00900"])).unwrap();
    s.update_batch(vec![row("r00901", 1000)]).unwrap();
    let rest = flat(c).unwrap();
    assert!(rest.iter().all(|r| r.id != "late" && r.id != "r00900"));
    let updated = rest.iter().find(|r| r.id == "r00901").unwrap();
    assert_eq!(updated.data.get("n"), Some(&Value::Int(1000)));
    let total = (0..1000).filter(|i| i % 97 < 50).count();
    assert_eq!(first.len() + rest.len(), total - 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_small_file_is_loaded_by_its_first_search() {
    let dir = tmpdir("small");
    let path = jsonl_file(&dir, 100);
    let s = FileStore::open(path.to_str().unwrap(), "jsonl", None).unwrap();
    assert!(on_disk(&s));
    assert_eq!(s.count(&QuerySpec::default()).unwrap(), 100);
    assert!(!on_disk(&s));
    let _ = std::fs::remove_dir_all(dir);
}

/// Reopens the file and reads every row, as a later process would.
fn reread(path: &Path, fmt: &str, comp: Option<&str>) -> Vec<Row> {
    let t = FileStore::open(path.to_str().unwrap(), fmt, comp).unwrap();
    t.search(&QuerySpec::default()).unwrap()
}

#[test]
fn creates_append_on_every_layout_but_a_gzip_json_array() {
    for (fmt, comp) in FORMATS {
        let dir = tmpdir("append-all");
        let path = dir.join(format!("db.{fmt}"));
        let s = FileStore::open(path.to_str().unwrap(), fmt, comp).unwrap();
        s.create_batch(vec![rich_row("a"), row("b", 2)]).unwrap();
        let before = std::fs::read(&path).unwrap();
        // The second batch has only columns the first one gave the csv header.
        s.create_batch(vec![row("c", 3), rich_row("d")]).unwrap();
        s.create_missing(vec![row("a", 0), row("e", 5)]).unwrap();
        let after = std::fs::read(&path).unwrap();
        let rewrites = fmt == "json" && comp.is_some();
        assert_eq!(
            on_disk(&s),
            !rewrites,
            "{fmt} {comp:?}: creates did not load the file"
        );
        if !rewrites {
            // Everything written before stays as it was, but a json array's closing bracket.
            let kept = if fmt == "json" {
                before.len() - b"\n]\n".len()
            } else {
                before.len()
            };
            assert_eq!(after[..kept], before[..kept], "{fmt} {comp:?}: rewritten");
        }
        let all = reread(&path, fmt, comp);
        assert_eq!(
            ids_of(&all),
            strs(&["a", "b", "c", "d", "e"]),
            "{fmt} {comp:?}"
        );
        assert!(
            same(&all[0], &rich_row("a")),
            "{fmt} {comp:?}: {:?}",
            all[0]
        );
        assert!(
            same(&all[3], &rich_row("d")),
            "{fmt} {comp:?}: {:?}",
            all[3]
        );
        assert!(same(&all[4], &row("e", 5)), "{fmt} {comp:?}: {:?}", all[4]);
        // Once loaded, creates still append, and the index and the file agree.
        s.read_batch(&strs(&["a"])).unwrap();
        s.create_batch(vec![row("f", 6)]).unwrap();
        let (file, index) = (
            reread(&path, fmt, comp),
            s.search(&QuerySpec::default()).unwrap(),
        );
        assert_eq!(file.len(), 6, "{fmt} {comp:?}");
        assert!(
            file.iter().zip(&index).all(|(a, b)| same(a, b)),
            "{fmt} {comp:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_csv_batch_with_a_new_column_rewrites_the_file() {
    for fmt in ["csv", "tsv"] {
        let dir = tmpdir("csv-grow");
        let path = dir.join(format!("db.{fmt}"));
        let s = scanning(path.to_str().unwrap(), fmt, None);
        s.create_batch(vec![row("a", 1)]).unwrap();
        let mut wider = row("b", 2);
        wider.data.insert("extra".into(), Value::Str("x".into()));
        s.create_batch(vec![wider.clone()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().next().unwrap().contains("extra"), "{text}");
        assert_eq!(reread(&path, fmt, None), vec![row("a", 1), wider.clone()]);
        // A header without `_metadata` takes rows without metadata only.
        let sep = if fmt == "tsv" { "\t" } else { "," };
        let hand = format!("id{sep}n\nx{sep}1\n");
        std::fs::write(&path, &hand).unwrap();
        let t = scanning(path.to_str().unwrap(), fmt, None);
        let mut bare = row("y", 2);
        bare.data.shift_remove("s");
        bare.metadata.clear();
        t.create_batch(vec![bare.clone()]).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().starts_with(&hand));
        assert!(on_disk(&t));
        t.create_batch(vec![row("z", 3)]).unwrap();
        let all = reread(&path, fmt, None);
        assert_eq!(all.len(), 3);
        assert_eq!(all[1], bare);
        assert_eq!(all[2], row("z", 3));
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_json_array_takes_items_before_its_closing_bracket() {
    let dir = tmpdir("json-append");
    let path = dir.join("db.json");
    for (text, kept) in [
        ("[]", "[\n{"),
        ("[ ]\n\n", "[\n{"),
        (
            "[{\"id\":\"x\",\"data\":{},\"metadata\":{}}]  \n",
            "[{\"id\":\"x\",\"data\":{},\"metadata\":{}},\n{",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let s = scanning(path.to_str().unwrap(), "json", None);
        s.create_batch(vec![row("a", 1)]).unwrap();
        s.create_batch(vec![row("b", 2), row("c", 3)]).unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        assert!(now.starts_with(kept) && now.ends_with("\n]\n"), "{now}");
        let ids = ids_of(&reread(&path, "json", None));
        assert_eq!(ids.len(), if text.contains('x') { 4 } else { 3 }, "{now}");
        assert_eq!(ids[ids.len() - 3..], strs(&["a", "b", "c"]));
    }
    // A file that does not end its array is not patched: the create fails naming the file,
    // and the file is left as it was.
    std::fs::write(&path, "[{\"id\":\"x\",\"data\":{},\"metadata\":{}}").unwrap();
    let s = scanning(path.to_str().unwrap(), "json", None);
    assert!(matches!(
        s.create_batch(vec![row("a", 1)]),
        Err(Error::DataFormat { .. })
    ));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "[{\"id\":\"x\",\"data\":{},\"metadata\":{}}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
