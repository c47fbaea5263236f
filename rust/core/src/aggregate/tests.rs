use super::*;
use crate::query::{Cond, Op};
use crate::value::{DateTimeValue, Map};

fn rec(id: &str, fields: Vec<(&str, Value)>) -> Row {
    let mut data = Map::new();
    for (k, v) in fields {
        data.insert(k.into(), v);
    }
    Row {
        id: id.into(),
        data,
        metadata: Map::new(),
    }
}

fn spec(group: &[&str], metrics: &[(&str, &str, Option<&str>)]) -> Arc<AggSpec> {
    Arc::new(
        AggSpec::new(
            group.iter().map(|g| g.to_string()).collect(),
            metrics
                .iter()
                .map(|(n, o, f)| (n.to_string(), o.to_string(), f.map(str::to_string)))
                .collect(),
        )
        .unwrap(),
    )
}

fn run(agg: &Arc<AggSpec>, rows: &[Row]) -> Vec<AggRow> {
    over_rows(&QuerySpec::default(), agg, rows).unwrap()
}

fn fsum(xs: &[f64]) -> f64 {
    let mut s = FSum::default();
    xs.iter().for_each(|x| s.add(*x));
    s.value()
}

#[test]
fn fsum_is_correctly_rounded_in_any_order() {
    assert_eq!(fsum(&[0.1; 10]), 1.0);
    assert_eq!(fsum(&[1e100, 1.0, -1e100]), 1.0);
    assert_eq!(fsum(&[1.0, 1e100, -1e100]), 1.0);
    // Python: math.fsum([0.1, 0.2]) == 0.30000000000000004 (the exact binary sum, rounded).
    assert_eq!(fsum(&[0.1, 0.2]), 0.30000000000000004);
    // The half-even correction: 1 + 2^-53 + 2^-106 rounds up, 1 + 2^-53 alone to even.
    let (h, q) = (2f64.powi(-53), 2f64.powi(-106));
    assert_eq!(fsum(&[1.0, h, q]), 1.0 + 2.0 * h);
    assert_eq!(fsum(&[1.0, h]), 1.0);
    let mut xs: Vec<f64> = (1..2000).map(|i| 1.0 / f64::from(i)).collect();
    let forward = fsum(&xs);
    xs.reverse();
    assert_eq!(fsum(&xs), forward);
    assert!(fsum(&[1.0, f64::NAN]).is_nan());
    assert!(fsum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
    assert_eq!(fsum(&[f64::INFINITY, 1.0]), f64::INFINITY);
    assert_eq!(fsum(&[]), 0.0);
}

#[test]
fn sums_ints_exactly_and_skips_what_is_not_a_number() {
    let agg = spec(
        &[],
        &[
            ("s", "sum", Some("x")),
            ("a", "avg", Some("x")),
            ("n", "count", Some("x")),
            ("rows", "count", None),
        ],
    );
    let rows = vec![
        rec("1", vec![("x", Value::Int(i64::MAX))]),
        rec("2", vec![("x", Value::Int(i64::MAX))]),
        rec("3", vec![("x", Value::Bool(true))]),
        rec("4", vec![("x", Value::Str("7".into()))]),
        rec("5", vec![("x", Value::Null)]),
        rec("6", vec![]),
    ];
    let out = run(&agg, &rows);
    assert_eq!(out.len(), 1);
    let big = 2 * i128::from(i64::MAX);
    assert_eq!(
        out[0].metrics,
        vec![
            AggValue::Int(big),
            AggValue::Float(big as f64 / 2.0),
            AggValue::Int(4),
            AggValue::Int(6),
        ]
    );
    // A float among the ints makes the sum a float: the exact sum of every term, rounded.
    let rows = vec![
        rec("1", vec![("x", Value::Int(1))]),
        rec("2", vec![("x", Value::Float(0.5))]),
        rec("3", vec![("x", Value::Decimal("0.25".into()))]),
    ];
    let out = run(&agg, &rows);
    assert_eq!(out[0].metrics[0], AggValue::Float(1.75));
    assert_eq!(out[0].metrics[1], AggValue::Float(1.75 / 3.0));
}

#[test]
fn no_groups_is_one_row_even_when_nothing_matched() {
    let agg = spec(
        &[],
        &[
            ("rows", "count", None),
            ("s", "sum", Some("x")),
            ("lo", "min", Some("x")),
            ("d", "cardinality", Some("x")),
        ],
    );
    let out = run(&agg, &[]);
    assert_eq!(
        out,
        vec![AggRow {
            keys: vec![],
            metrics: vec![
                AggValue::Int(0),
                AggValue::Null,
                AggValue::Null,
                AggValue::Int(0)
            ],
        }]
    );
    // With group fields, nothing matched is no group at all.
    assert!(run(&spec(&["x"], &[("rows", "count", None)]), &[]).is_empty());
}

#[test]
fn groups_are_exact_values_in_sort_order_with_none_last() {
    let agg = spec(&["k"], &[("rows", "count", None)]);
    let aware = |h: u32, off: i32| {
        Value::DateTime(DateTimeValue {
            naive: chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap(),
            offset_seconds: Some(off),
        })
    };
    let values = [
        Value::Str("b".into()),
        Value::Int(1),
        Value::Null,
        Value::Float(1.0),
        Value::Bool(true),
        Value::Str("a".into()),
        Value::Int(1),
        // The same instant at two offsets: two values.
        aware(10, 0),
        aware(11, 3600),
        Value::Float(-2.5),
    ];
    let mut rows: Vec<Row> = values
        .iter()
        .enumerate()
        .map(|(i, v)| rec(&i.to_string(), vec![("k", v.clone())]))
        .collect();
    rows.push(rec("missing", vec![]));
    let out = run(&agg, &rows);
    let keys: Vec<(Value, AggValue)> = out
        .into_iter()
        .map(|r| (r.keys[0].clone(), r.metrics[0].clone()))
        .collect();
    assert_eq!(
        keys,
        vec![
            (Value::Float(-2.5), AggValue::Int(1)),
            (Value::Bool(true), AggValue::Int(1)),
            (Value::Int(1), AggValue::Int(2)),
            (Value::Float(1.0), AggValue::Int(1)),
            (Value::Str("a".into()), AggValue::Int(1)),
            (Value::Str("b".into()), AggValue::Int(1)),
            (aware(10, 0), AggValue::Int(1)),
            (aware(11, 3600), AggValue::Int(1)),
            // A stored None and a missing field are one group.
            (Value::Null, AggValue::Int(2)),
        ]
    );
}

#[test]
fn min_max_follow_the_sort_order_and_cardinality_counts_distinct_values() {
    let agg = spec(
        &["g", "h"],
        &[
            ("lo", "min", Some("v")),
            ("hi", "max", Some("v")),
            ("d", "cardinality", Some("v")),
        ],
    );
    let row = |id: &str, g: i64, v: Value| {
        rec(
            id,
            vec![
                ("g", Value::Int(g)),
                ("h", Value::Str("x".into())),
                ("v", v),
            ],
        )
    };
    let rows = vec![
        row("1", 1, Value::Str("zeta".into())),
        row("2", 1, Value::Int(5)),
        row("3", 1, Value::Str("alpha".into())),
        row("4", 1, Value::Int(5)),
        row("5", 1, Value::Null),
        row("6", 0, Value::Float(2.5)),
    ];
    let out = run(&agg, &rows);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].keys, vec![Value::Int(0), Value::Str("x".into())]);
    assert_eq!(out[1].keys, vec![Value::Int(1), Value::Str("x".into())]);
    assert_eq!(
        out[1].metrics,
        vec![
            AggValue::Value(Value::Int(5)),
            AggValue::Value(Value::Str("zeta".into())),
            AggValue::Int(3),
        ]
    );
}

#[test]
fn a_condition_selects_the_rows() {
    let agg = spec(&[], &[("rows", "count", None)]);
    let rows: Vec<Row> = (0..10)
        .map(|i| rec(&i.to_string(), vec![("n", Value::Int(i))]))
        .collect();
    let q = QuerySpec {
        cond: Some(Cond::Filter {
            field: "n".into(),
            op: Op::Gte,
            value: Value::Int(7),
        }),
        // Ignored: an aggregation reads every match.
        limit: Some(1),
        ..QuerySpec::default()
    };
    let out = over_rows(&q, &agg, &rows).unwrap();
    assert_eq!(out[0].metrics, vec![AggValue::Int(3)]);
}

#[test]
fn a_bad_spec_names_what_is_wrong() {
    let bad = |group: Vec<&str>, m: Vec<(&str, &str, Option<&str>)>| match AggSpec::new(
        group.into_iter().map(String::from).collect(),
        m.into_iter()
            .map(|(n, o, f)| (n.to_string(), o.to_string(), f.map(String::from)))
            .collect(),
    ) {
        Err(Error::Query(msg)) => msg,
        other => panic!("expected a query error, got {other:?}"),
    };
    assert!(bad(vec![], vec![("m", "median", Some("x"))]).contains("\"median\""));
    assert!(bad(vec![], vec![("m", "sum", None)]).contains("sum needs a field"));
    assert!(bad(vec!["g"], vec![("g", "count", None)]).contains("\"g\""));
    assert!(bad(vec!["g", "g"], vec![]).contains("twice"));
    assert!(bad(vec![], vec![("m", "count", None), ("m", "max", Some("x"))]).contains("\"m\""));
}

#[test]
fn text_rows_aggregate_as_decoded_rows() {
    let agg = spec(&["k"], &[("s", "sum", Some("n")), ("rows", "count", None)]);
    let q = QuerySpec {
        cond: Some(Cond::Filter {
            field: "n".into(),
            op: Op::Gt,
            value: Value::Int(0),
        }),
        ..QuerySpec::default()
    };
    let mut t = TextAggregator::new(&q, Arc::clone(&agg), "test").unwrap();
    t.push("a", r#"{"k": "x", "n": 2, "big": [1, 2, 3]}"#, "{}")
        .unwrap();
    t.push("b", r#"{"k": "x", "n": 3}"#, "{}").unwrap();
    t.push("c", r#"{"n": 0}"#, "{}").unwrap();
    t.push("d", r#"{"n": 4}"#, "{}").unwrap();
    let out = t.finish();
    assert_eq!(
        out,
        vec![
            AggRow {
                keys: vec![Value::Str("x".into())],
                metrics: vec![AggValue::Int(5), AggValue::Int(2)],
            },
            AggRow {
                keys: vec![Value::Null],
                metrics: vec![AggValue::Int(4), AggValue::Int(1)],
            },
        ]
    );
}
