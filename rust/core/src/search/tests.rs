//! Unit tests of the pieces that need no server (DSL narrowing, bulk bodies and answers, the
//! document layout), and a round trip against a live node when `DKDATA_ES_URL` names one
//! (the Python suites start one and run every verb there).

use serde_json::json;

use super::bulk::{self, Action, Item};
use super::doc;
use super::dsl;
use crate::query::{Cond, Op};
use crate::row::Row;
use crate::value::{Map, Value};

fn f(field: &str, op: Op, value: Value) -> Cond {
    Cond::Filter {
        field: field.into(),
        op,
        value,
    }
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn row_with(data: Vec<(&str, Value)>) -> Row {
    Row {
        id: "r".into(),
        data: data.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        metadata: Map::new(),
    }
}

fn has(terms: &[String], t: &str) -> bool {
    terms.iter().any(|x| x == t)
}

#[test]
fn terms_cover_every_path_the_evaluator_resolves() {
    let mut inner = Map::new();
    inner.insert("b".into(), Value::Int(2));
    let mut r = row_with(vec![
        ("a.b", Value::Int(1)),
        ("a", Value::Map(inner)),
        ("s", s("Ann")),
        ("long", Value::Str("x".repeat(9000))),
        ("tags", Value::List(vec![s("x")])),
        ("none", Value::Null),
        ("f", Value::Float(-0.0)),
    ]);
    r.metadata.insert("m".into(), Value::Bool(true));
    let t = dsl::terms(&r);
    assert!(has(&t, "e\0a.b") && has(&t, "e\0a") && has(&t, "e\0tags"));
    assert!(has(&t, &format!("n\0a.b\0{}", dsl::sortable(1.0))));
    assert!(has(&t, &format!("n\0a.b\0{}", dsl::sortable(2.0))));
    assert!(has(&t, "s\0s\0Ann"));
    assert!(has(&t, "L\0long") && !t.iter().any(|x| x.starts_with("s\0long")));
    assert!(!has(&t, "e\0none"), "None is missing");
    assert!(
        !t.iter().any(|x| x.ends_with("\0x")),
        "list items are not indexed"
    );
    assert!(has(&t, &format!("n\0metadata.m\0{}", dsl::sortable(1.0))));
    // -0.0 is 0.0.
    assert!(has(&t, &format!("n\0f\0{}", dsl::sortable(0.0))));
    // A record with too many paths is matched by every narrowed clause.
    let names: Vec<String> = (0..5000).map(|i| format!("k{i}")).collect();
    let many = row_with(
        names
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), Value::Int(i as i64)))
            .collect(),
    );
    assert_eq!(dsl::terms(&many), vec!["*".to_string()]);
}

#[test]
fn sortable_numbers_keep_numeric_order() {
    let xs = [
        f64::NEG_INFINITY,
        -1e300,
        -2.5,
        -1.0,
        0.0,
        1e-300,
        1.0,
        2.5,
        1e300,
        f64::INFINITY,
    ];
    let keys: Vec<String> = xs.iter().map(|x| dsl::sortable(*x)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(dsl::sortable(-0.0), dsl::sortable(0.0));
}

#[test]
fn id_filters_are_exact() {
    let n = dsl::narrow(Some(&f("id", Op::Eq, s("a"))), true);
    assert!(n.exact);
    assert_eq!(n.to_query(), json!({"ids": {"values": ["a"]}}));
    // A non-str id never equals: nothing matches, exactly.
    let n = dsl::narrow(Some(&f("id", Op::Eq, Value::Int(1))), true);
    assert!(n.exact);
    assert_eq!(n.to_query(), json!({"match_none": {}}));
    let not_in = Cond::Not(Box::new(f("id", Op::In, Value::List(vec![s("a"), s("b")]))));
    assert!(dsl::narrow(Some(&not_in), false).exact);
    let n = dsl::narrow(None, true);
    assert!(n.exact && n.query.is_none());
}

#[test]
fn data_filters_narrow_but_the_evaluator_decides() {
    let n = dsl::narrow(Some(&f("name", Op::Eq, s("Ann"))), true);
    assert!(!n.exact);
    let q = n.to_query();
    assert_eq!(
        q["bool"]["should"][0],
        json!({"term": {"dk_terms": "s\0name\0Ann"}})
    );
    assert_eq!(q["bool"]["should"][1], json!({"term": {"dk_terms": "*"}}));
    // An index without terms narrows nothing but ids.
    assert_eq!(
        dsl::narrow(Some(&f("name", Op::Eq, s("Ann"))), false).query,
        None
    );
    // A prefix also finds the strings too long for a term.
    let q = dsl::narrow(Some(&f("name", Op::StartsWith, s("A"))), true).to_query();
    let inner = &q["bool"]["should"][0]["bool"]["should"];
    assert_eq!(inner[0], json!({"prefix": {"dk_terms": "s\0name\0A"}}));
    assert_eq!(inner[1], json!({"term": {"dk_terms": "L\0name"}}));
    // Never narrowed: negations, list positions, regexes, NaN.
    for c in [
        f("name", Op::Neq, s("Ann")),
        f("tags.0", Op::Eq, s("x")),
        f("name", Op::Regex, s("^A")),
        f("name", Op::NotExists, Value::Null),
        f("age", Op::Eq, Value::Float(f64::NAN)),
    ] {
        let n = dsl::narrow(Some(&c), true);
        assert_eq!(n.query, None, "{c:?}");
        assert!(!n.exact);
    }
}

#[test]
fn numeric_ranges_are_inclusive_over_sortable_keys() {
    let q = dsl::narrow(Some(&f("age", Op::Gt, Value::Float(5.5))), true).to_query();
    let r = &q["bool"]["should"][0]["range"]["dk_terms"];
    assert_eq!(r["gte"], json!(format!("n\0age\0{}", dsl::sortable(5.5))));
    assert_eq!(r["lt"], json!("n\0age\u{1}"));
    // Bools compare as numbers.
    let q = dsl::narrow(Some(&f("age", Op::Eq, Value::Bool(true))), true).to_query();
    assert_eq!(
        q["bool"]["should"][0]["range"]["dk_terms"]["lte"],
        json!(format!("n\0age\0{}", dsl::sortable(1.0)))
    );
    // Mixed bounds are not narrowed.
    let mixed = f("age", Op::Between, Value::List(vec![Value::Int(1), s("z")]));
    assert_eq!(dsl::narrow(Some(&mixed), true).query, None);
}

#[test]
fn like_becomes_an_escaped_case_insensitive_wildcard() {
    assert_eq!(dsl::like_wildcard("a%b_c*?\\"), "a*b?c\\*\\?\\\\");
    let q = dsl::narrow(Some(&f("code", Op::Like, s("Al_x%"))), true).to_query();
    assert_eq!(
        q["bool"]["should"][0]["bool"]["should"][0],
        json!({"wildcard": {"dk_terms": {"value": "s\0code\0Al?x*", "case_insensitive": true}}})
    );
    // Unicode folds 'k', 's' and 'i' onto non-ASCII letters that Lucene's ASCII folding
    // would miss.
    assert_eq!(
        dsl::narrow(Some(&f("code", Op::Like, s("kim%"))), true).query,
        None
    );
}

#[test]
fn boolean_logic_keeps_supersets() {
    let a = f("name", Op::Eq, s("Ann"));
    let b = f("name", Op::Regex, s("x"));
    // OR with a branch that cannot narrow: everything.
    let either = Cond::Or(vec![a.clone(), b.clone()]);
    assert_eq!(dsl::narrow(Some(&either), true).query, None);
    // AND keeps the branch that narrows.
    let q = dsl::narrow(Some(&Cond::And(vec![a.clone(), b.clone()])), true).to_query();
    assert_eq!(
        q["bool"]["should"][0],
        json!({"term": {"dk_terms": "s\0name\0Ann"}})
    );
    // NOT of a superset is not a superset: everything.
    let rounded = f("age", Op::Gt, Value::Int(3));
    assert_eq!(
        dsl::narrow(Some(&Cond::Not(Box::new(rounded))), true).query,
        None
    );
    let _ = a;
    // Or of nothing is false; and of nothing is true.
    assert!(dsl::narrow(Some(&Cond::Or(vec![])), true).exact);
    assert_eq!(dsl::narrow(Some(&Cond::And(vec![])), true).query, None);
    // OR with an exact match-all branch is exactly everything.
    let n = dsl::narrow(
        Some(&Cond::Or(vec![b, f("id", Op::Exists, Value::Null)])),
        true,
    );
    assert!(n.exact && n.query.is_none());
}

#[test]
fn str_equality_on_a_plain_field_is_exact_on_documents_with_terms() {
    let ann = f("name", Op::Eq, s("Ann"));
    let term = json!({"term": {"dk_terms": "s\0name\0Ann"}});
    let n = dsl::narrow(Some(&ann), true);
    // Not exact (the `*` documents are still fetched for the evaluator) but exact on the rest.
    assert!(!n.exact);
    assert_eq!(n.on_terms, Some(term.clone()));
    assert_eq!(n.to_query()["bool"]["should"][1], dsl::everything());
    let not = dsl::narrow(Some(&Cond::Not(Box::new(ann.clone()))), true);
    assert_eq!(
        not.on_terms,
        Some(json!({"bool": {"must_not": [term.clone()]}}))
    );
    let with_id = Cond::And(vec![ann.clone(), f("id", Op::Neq, s("x"))]);
    let n = dsl::narrow(Some(&with_id), true);
    assert_eq!(
        n.on_terms.unwrap()["bool"]["filter"][0],
        term,
        "an exact id clause joins"
    );
    let exists = dsl::narrow(Some(&f("name", Op::Exists, Value::Null)), true);
    assert_eq!(
        exists.on_terms,
        Some(json!({"term": {"dk_terms": "e\0name"}}))
    );
    let members = Value::List(vec![s("a"), Value::Null]);
    assert!(dsl::narrow(Some(&f("name", Op::In, members)), true)
        .on_terms
        .is_some());
    // Walks, numbers (rounded into their terms), long strs and any inexact part: not exact.
    for c in [
        f("a.b", Op::Eq, s("x")),
        f("age", Op::Eq, Value::Int(3)),
        f("name", Op::Eq, s(&"x".repeat(9000))),
        f("name", Op::In, Value::List(vec![s("a"), Value::Int(1)])),
        Cond::And(vec![ann.clone(), f("age", Op::Gt, Value::Int(1))]),
        Cond::Or(vec![ann, f("name", Op::StartsWith, s("A"))]),
    ] {
        assert_eq!(dsl::narrow(Some(&c), true).on_terms, None, "{c:?}");
    }
}

#[test]
fn sorted_windows_use_the_number_terms_of_plain_fields() {
    assert!(dsl::windowable("age"));
    for field in ["id", "a.b", "0", ""] {
        assert!(!dsl::windowable(field), "{field}");
    }
    let agg = dsl::top_terms_agg("a-b", 7, true);
    assert_eq!(agg["terms"]["include"], "n\\\0a\\-b\\\0[0-9a-f]{16}");
    assert_eq!(agg["terms"]["size"], 7);
    assert_eq!(agg["terms"]["order"]["_key"], "desc");
    let bound = dsl::number_term("age", &Value::Int(40)).unwrap();
    assert_eq!(bound, format!("n\0age\0{}", dsl::sortable(40.0)));
    assert_eq!(dsl::number_term("age", &Value::Float(f64::NAN)), None);
    assert_eq!(dsl::number_term("age", &s("40")), None);
    let q = json!({"match_all": {}});
    let w = dsl::window_clause(&q, "age", &bound, true);
    let either = &w["bool"]["filter"][1]["bool"]["should"];
    assert_eq!(either[0]["range"]["dk_terms"]["gte"], bound.as_str());
    assert_eq!(either[0]["range"]["dk_terms"]["lt"], "n\0age\u{1}");
    assert_eq!(
        either[1]["bool"]["must_not"][0]["range"]["dk_terms"]["gte"],
        "n\0age\0"
    );
    let w = dsl::window_clause(&q, "age", &bound, false);
    let side = &w["bool"]["filter"][1]["bool"]["should"][0]["range"]["dk_terms"];
    assert_eq!(side["gte"], "n\0age\0");
    assert_eq!(side["lte"], bound.as_str());
}

fn row(id: &str, n: i64) -> Row {
    let mut data = Map::new();
    data.insert("n".into(), Value::Int(n));
    data.insert("b".into(), Value::Bytes(vec![0, 1]));
    Row {
        id: id.into(),
        data,
        metadata: Map::new(),
    }
}

#[test]
fn bulk_bodies_are_ndjson_cut_by_bytes_and_count() {
    let rows: Vec<Row> = (0..5).map(|i| row(&format!("r\"{i}"), i)).collect();
    let now = "2024-01-01T00:00:00+00:00";
    let actions: Vec<Action<'_>> = rows.iter().map(|row| Action::Create { row, now }).collect();
    let one = bulk::encode_for_test(&actions, 1 << 20, 100);
    assert_eq!(one.len(), 1);
    let body = &one[0].2;
    assert!(body.ends_with('\n'));
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[0], r#"{"create":{"_id":"r\"0"}}"#);
    let src: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(src["data"]["b"], json!({"$bytes": "AAE="}));
    assert_eq!(src["id"], json!("r\"0"));
    let by_count = bulk::encode_for_test(&actions, 1 << 20, 2);
    assert_eq!(
        by_count.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>(),
        vec![(0, 2), (2, 2), (4, 1)]
    );
    // A budget smaller than one item: each item alone, none dropped.
    let by_bytes = bulk::encode_for_test(&actions, 10, 100);
    assert_eq!(by_bytes.len(), 5);
    let del = [Action::Delete { id: "x" }];
    assert_eq!(
        bulk::encode_for_test(&del, 1024, 10)[0].2,
        "{\"delete\":{\"_id\":\"x\"}}\n"
    );
}

#[test]
fn bulk_answers_are_reconciled_item_by_item() {
    let answer = json!({"errors": true, "items": [
        {"create": {"_id": "a", "status": 201}},
        {"create": {"_id": "b", "status": 409, "error": {"type": "version_conflict_engine_exception"}}},
        {"create": {"_id": "c", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [data.n]"}}},
        {"create": {"_id": "d", "status": 429, "error": {"type": "es_rejected_execution_exception"}}}
    ]});
    let items = bulk::parse_items(answer.to_string().as_bytes(), 4).unwrap();
    assert_eq!(items[0], Item::Status(201));
    assert_eq!(items[1], Item::Status(409));
    match &items[2] {
        Item::Failed(e) => assert!(e.to_string().contains("mapper_parsing_exception"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(items[3], Item::Status(429));
    // An answer that does not account for every item sent is no answer.
    assert!(bulk::parse_items(answer.to_string().as_bytes(), 5).is_err());
    assert!(bulk::parse_items(b"not json", 1).is_err());
}

#[test]
fn documents_of_both_layouts_decode() {
    let ours = r#"{"id":"a","data":{"when":{"$datetime":"2024-05-01T10:00:00+00:00"},"b":{"$bytes":"AAE="}},"metadata":{"m":1},"created_at":"x","updated_at":"x"}"#;
    let r = doc::decode_source("a", ours, "index \"t\"").unwrap();
    assert!(matches!(r.data["when"], Value::DateTime(_)));
    assert_eq!(r.data["b"], Value::Bytes(vec![0, 1]));
    assert_eq!(r.metadata["m"], Value::Int(1));
    // 0.11.0: plain JSON, metadata possibly null.
    let old = r#"{"data":{"name":"Ann","age":3},"metadata":null,"id":"b"}"#;
    let r = doc::decode_source("b", old, "index \"t\"").unwrap();
    assert_eq!(r.data["name"], s("Ann"));
    assert!(r.metadata.is_empty());
    let err = doc::decode_source("c", "[1]", "index \"t\"").unwrap_err();
    assert!(err.to_string().contains("record \"c\""), "{err}");
    let hit = doc::scan_hit(r#"{"_index":"t","_id":"a\"b","_seq_no":7,"_primary_term":2,"found":true,"_source":{"x":1},"sort":["a"]}"#).unwrap();
    assert_eq!(hit.id.as_deref(), Some("a\"b"));
    assert_eq!(
        (hit.seq_no, hit.primary_term, hit.found),
        (Some(7), Some(2), Some(true))
    );
    assert_eq!(hit.source, Some(r#"{"x":1}"#));
    assert_eq!(hit.sort, Some(r#"["a"]"#));
}

#[test]
fn ids_the_server_cannot_take_are_refused_before_writing() {
    assert!(doc::check_ids(["ok", "also ok"]).is_ok());
    let e = doc::check_ids([""]).unwrap_err();
    assert!(matches!(e, crate::Error::Serialization { .. }), "{e}");
    assert!(doc::check_ids([&*"x".repeat(513)]).is_err());
}

#[test]
fn settings_are_validated() {
    use super::SearchSettings;
    let ok = SearchSettings::new("http://127.0.0.1:9200", "records");
    assert!(ok.validate().is_ok());
    for (bad, param) in [
        (SearchSettings::new("127.0.0.1:9200", "records"), "hosts"),
        (SearchSettings::new("http://h", "Upper"), "index"),
        (SearchSettings::new("http://h", "a/b"), "index"),
        (SearchSettings::new("http://h", "_x"), "index"),
    ] {
        match bad.validate() {
            Err(crate::Error::Config { parameter, .. }) => assert_eq!(parameter, param),
            other => panic!("{other:?}"),
        }
    }
    // No secret in the registry key.
    let mut s = SearchSettings::new("http://h", "records");
    s.basic_auth = Some(("user".into(), "hunter2".into()));
    s.api_key = Some("sekrit".into());
    let key = s.client_key();
    assert!(!key.contains("hunter2") && !key.contains("sekrit"), "{key}");
}

#[test]
fn backoff_is_capped_and_jittered() {
    for attempt in 1..40 {
        let d = super::client::backoff(attempt);
        assert!(d <= std::time::Duration::from_secs(5), "{d:?}");
        assert!(d >= std::time::Duration::from_millis(50), "{d:?}");
    }
}

/// Against a live node (`DKDATA_ES_URL`): every verb once, and a stream past 10,000 hits.
#[test]
fn live_round_trip() {
    let Ok(url) = std::env::var("DKDATA_ES_URL") else {
        // `make test-rust` (scripts/with_services.py) starts a node and sets it; under CI a
        // run without one fails instead of passing unrun.
        let ci = std::env::var("CI").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        assert!(
            !ci,
            "DKDATA_ES_URL names no node: run `make test-rust`, which starts one"
        );
        eprintln!("DKDATA_ES_URL not set: live search test skipped");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(crate::value::THREAD_STACK)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let index = format!("rust-live-{}", std::process::id());
        let store = std::sync::Arc::new(
            super::SearchStore::open(super::SearchSettings::new(url, index.clone()))
                .await
                .unwrap(),
        );
        let rows: Vec<Row> = (0..12_000).map(|i| row(&format!("k{i:05}"), i)).collect();
        assert_eq!(store.create_batch(rows).await.unwrap().len(), 12_000);
        assert!(matches!(
            store.create_batch(vec![row("k00001", 1), row("new", 2)]).await,
            Err(crate::Error::Duplicate(id)) if id == "k00001"
        ));
        assert_eq!(store.count(&Default::default()).await.unwrap(), 12_000);
        let spec = crate::QuerySpec {
            cond: Some(f("n", Op::Gte, Value::Int(11_990))),
            ..Default::default()
        };
        assert_eq!(store.count(&spec).await.unwrap(), 10);
        let got = store.search(&spec).await.unwrap();
        assert_eq!(got[0].id, "k11990");
        assert_eq!(got[0].data["b"], Value::Bytes(vec![0, 1]));
        let mut cursor = std::sync::Arc::clone(&store)
            .stream(Default::default(), 1000, 2)
            .await
            .unwrap();
        let mut n = 0;
        while let Some(page) = cursor.next_page().await.unwrap() {
            n += page.len();
        }
        assert_eq!(n, 12_000);
        assert_eq!(
            store
                .update_batch(vec![row("k00002", -1), row("zz", 0)])
                .await
                .unwrap(),
            vec![true, false]
        );
        assert_eq!(
            store
                .read_batch(&["k00002".into(), "zz".into()])
                .await
                .unwrap()[0]
                .as_ref()
                .unwrap()
                .data["n"],
            Value::Int(-1)
        );
        assert_eq!(
            store
                .delete_batch(&["k00003".into(), "k00003".into()])
                .await
                .unwrap(),
            vec![true, false]
        );
        assert_eq!(store.clear().await.unwrap(), 11_999);
        store.close().unwrap();
    });
}
