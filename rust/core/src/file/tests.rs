//! The file store's own tests (the shared conformance suite runs every layout too).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::*;
use crate::codec;
use crate::testutil::{conformance, row, strs};
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
    let s = FileStore::open(path.to_str().unwrap(), fmt, comp).unwrap();
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
