//! Differential test: for random entities and random well-typed `$filter`/`$orderby`,
//! the rows and order that SQLite returns for the SQL translation equal the in-memory
//! evaluation, whenever a translation exists.
#![allow(clippy::unwrap_used)]

mod common;

use std::cmp::Ordering;

use common::*;
use enrollgraph_odata::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

const STRINGS: &[&str] = &["", "a", "A", "ab", "abc", "b", "Win", "Windows", "é", "ß", "x'y", " a ", "\ta", "0", "7"];

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn string_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::sample::select(STRINGS).prop_map(|s| json!(s)),
        1 => Just(Value::Null),
        1 => Just(json!(5)),
    ]
}

fn datetime_text(valid_only: bool) -> impl Strategy<Value = String> {
    let day = prop::sample::select(&["2023-12-31", "2024-01-01", "2024-02-29", "2024-02-31", "0001-01-01"][..]);
    let hour = prop::sample::select(&["00", "01", "23", "24"][..]);
    let min = prop::sample::select(&["00", "30", "59"][..]);
    let sec = prop::sample::select(&["00", "59"][..]);
    let frac = prop::sample::select(&["", ".0", ".5", ".50", ".1234567", ".9999999", ".000"][..]);
    let tz = prop::sample::select(&["Z", "+00:00", "+01:00", "-01:00", "+14:00", "-05:30"][..]);
    let valid = (day, hour, min, sec, frac, tz).prop_map(|(d, h, m, s, f, z)| format!("{d}T{h}:{m}:{s}{f}{z}"));
    if valid_only {
        valid.boxed()
    } else {
        prop_oneof![
            8 => valid,
            1 => prop::sample::select(&["2024-01-01", "garbage", "2024-01-01T00:00:00", "2024-01-01t00:00:00z", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00+15:00", "2024-01-01T00:00:00.Z"][..]).prop_map(String::from),
        ]
        .boxed()
    }
}

const GUIDS: &[&str] = &[
    "01234567-89ab-cdef-0123-456789abcdef",
    "01234567-89AB-CDEF-0123-456789ABCDEF",
    "fedcba98-7654-3210-fedc-ba9876543210",
    "00000000-0000-0000-0000-000000000000",
];
const TARGET_TYPES: &[&str] = &[TARGET, GROUP, EXCLUSION, ALL_DEVICES, ALL_USERS];
const FILTER_TYPES: &[&str] = &["none", "include", "exclude"];
const CONFIG_TYPES: &[&str] = &["unknown", "limit", "platformRestrictions", "windowsHelloForBusiness", "defaultLimit"];

fn target() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(&[GROUP, EXCLUSION, ALL_DEVICES, ALL_USERS][..])),
        any::<bool>(),
        string_value(),
        prop::option::of(prop::sample::select(FILTER_TYPES)),
        string_value(),
    )
        .prop_map(|(ty, hash, group, ft, fid)| {
            let mut m = Map::new();
            if let Some(t) = ty {
                m.insert("@odata.type".into(), json!(if hash { format!("#{t}") } else { t.to_string() }));
            }
            m.insert("groupId".into(), group);
            if let Some(f) = ft {
                m.insert("deviceAndAppManagementAssignmentFilterType".into(), json!(f));
            }
            m.insert("deviceAndAppManagementAssignmentFilterId".into(), fid);
            Value::Object(m)
        })
}

fn maybe(v: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![6 => v.prop_map(Some), 1 => Just(Some(Value::Null)), 1 => Just(None)]
}

fn entity() -> impl Strategy<Value = (String, Value)> {
    let a = (
        prop::sample::select(&[CONFIG, LIMIT, RESTRICT][..]),
        maybe(string_value()),
        maybe(string_value()),
        maybe(prop_oneof![(-3i64..4).prop_map(|i| json!(i)), Just(json!(2.0)), Just(json!("3"))]),
        maybe(prop::sample::select(&[-1.5, 0.0, 0.5, 2.0, 2.5][..]).prop_map(|f| json!(f))),
        maybe(prop_oneof![any::<bool>().prop_map(|b| json!(b)), Just(json!(1))]),
        maybe(datetime_text(false).prop_map(|s| json!(s))),
    );
    let b = (
        maybe(prop::sample::select(GUIDS).prop_map(|s| json!(s))),
        maybe(prop::sample::select(&["2024-01-01", "2024-02-29", "2023-12-31"][..]).prop_map(|s| json!(s))),
        maybe(prop_oneof![prop::sample::select(CONFIG_TYPES).prop_map(|s| json!(s)), Just(json!("weird"))]),
        maybe(
            prop::collection::vec(prop::sample::select(&["0", "1", "7", "a"][..]).prop_map(|s| json!(s)), 0..4)
                .prop_map(Value::Array),
        ),
        maybe(target()),
        maybe(prop::collection::vec(target(), 0..3).prop_map(Value::Array)),
        maybe((0i64..20).prop_map(|i| json!(i))),
        maybe(string_value()),
    );
    (a, b).prop_map(|((ty, dn, desc, prio, score, en, created), (guid, date, ct, tags, tgt, tgts, limit, platform))| {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put("displayName", dn);
        put("description", desc);
        put("priority", prio);
        put("score", score);
        put("isEnabled", en);
        put("createdDateTime", created);
        put("tenantGuid", guid);
        put("releaseDate", date);
        put("deviceEnrollmentConfigurationType", ct);
        put("roleScopeTagIds", tags);
        put("target", tgt);
        put("targets", tgts);
        if ty == LIMIT {
            put("limit", limit);
        }
        if ty == RESTRICT {
            put("platformType", platform);
        }
        (ty.to_string(), Value::Object(m))
    })
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> + Clone {
    prop::sample::select(items)
}

fn op() -> impl Strategy<Value = &'static str> + Clone {
    pick(&["eq", "ne", "gt", "ge", "lt", "le"])
}

fn str_lit() -> impl Strategy<Value = String> + Clone {
    prop_oneof![6 => pick(STRINGS).prop_map(quoted), 1 => Just("null".to_string())]
}

/// Leaf predicates over a value `t` of the target complex type (prefix like `target/`).
fn target_pred(prefix: &'static str) -> impl Strategy<Value = String> + Clone {
    let p = prefix;
    prop_oneof![
        (op(), str_lit()).prop_map(move |(o, l)| format!("{p}deviceAndAppManagementAssignmentFilterId {o} {l}")),
        (op(), str_lit()).prop_map(move |(o, l)| format!("{p}microsoft.graph.groupAssignmentTarget/groupId {o} {l}")),
        (op(), pick(FILTER_TYPES), any::<bool>()).prop_map(move |(o, f, q)| if q {
            format!("{p}deviceAndAppManagementAssignmentFilterType {o} microsoft.graph.deviceAndAppManagementAssignmentFilterType'{f}'")
        } else {
            format!("{p}deviceAndAppManagementAssignmentFilterType {o} '{f}'")
        }),
        (pick(TARGET_TYPES), any::<bool>()).prop_map(move |(t, q)| {
            let subject = p.trim_end_matches('/');
            if q { format!("isof({subject}, '{t}')") } else { format!("isof({subject},{t})") }
        }),
        (pick(TARGET_TYPES), pick(&["eq", "ne"])).prop_map(move |(t, o)| format!("cast({}, {t}) {o} null", p.trim_end_matches('/'))),
        pick(&["eq", "ne"]).prop_map(move |o| format!("{} {o} null", p.trim_end_matches('/'))),
    ]
}

const STR_PROPS: &[&str] = &[
    "displayName",
    "description",
    "id",
    "target/deviceAndAppManagementAssignmentFilterId",
    "target/microsoft.graph.groupAssignmentTarget/groupId",
    "microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration/platformType",
];

fn leaf() -> impl Strategy<Value = String> + Clone {
    let str_prop = pick(STR_PROPS);
    let num_prop = pick(&["priority", "score", "microsoft.graph.deviceEnrollmentLimitConfiguration/limit"][..]);
    let num_lit = prop_oneof![
        (-3i64..5).prop_map(|i| i.to_string()),
        pick(&["-1.5", "0.5", "2.0", "2.5", "null"][..]).prop_map(String::from)
    ];
    prop_oneof![
        (str_prop.clone(), op(), str_lit()).prop_map(|(p, o, l)| format!("{p} {o} {l}")),
        (str_prop.clone(), op(), str_prop.clone()).prop_map(|(p, o, q)| format!("{p} {o} {q}")),
        (num_prop.clone(), op(), num_lit.clone()).prop_map(|(p, o, l)| format!("{p} {o} {l}")),
        (num_prop.clone(), op(), num_prop).prop_map(|(p, o, q)| format!("{p} {o} {q}")),
        Just("isEnabled".to_string()),
        (op(), pick(&["true", "false", "null"][..])).prop_map(|(o, l)| format!("isEnabled {o} {l}")),
        (op(), datetime_text(true)).prop_map(|(o, l)| format!("createdDateTime {o} {l}")),
        (op(), datetime_text(true)).prop_map(|(o, l)| format!("createdDateTime {o} '{l}'")),
        (op(), pick(GUIDS)).prop_map(|(o, l)| format!("tenantGuid {o} {l}")),
        (op(), pick(&["2024-01-01", "2024-02-29", "2024-06-01"][..])).prop_map(|(o, l)| format!("releaseDate {o} {l}")),
        (op(), pick(CONFIG_TYPES)).prop_map(|(o, l)| format!("deviceEnrollmentConfigurationType {o} '{l}'")),
        prop::collection::vec(pick(CONFIG_TYPES), 1..3).prop_map(|v| format!(
            "deviceEnrollmentConfigurationType in ({})",
            v.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(",")
        )),
        prop::collection::vec(str_lit(), 1..4).prop_map(|v| format!("displayName in ({})", v.join(","))),
        (pick(&["startswith", "endswith", "contains"][..]), str_prop.clone(), str_lit())
            .prop_map(|(f, p, l)| format!("{f}({p},{l})")),
        (str_prop.clone(), op(), -1i64..5).prop_map(|(p, o, n)| format!("length({p}) {o} {n}")),
        (str_prop.clone(), str_lit(), op(), -1i64..4).prop_map(|(p, l, o, n)| format!("indexof({p},{l}) {o} {n}")),
        (str_prop.clone(), -1i64..4, prop::option::of(-1i64..3), str_lit()).prop_map(|(p, s, n, l)| match n {
            Some(n) => format!("substring({p},{s},{n}) eq {l}"),
            None => format!("substring({p},{s}) eq {l}"),
        }),
        (str_prop.clone(), str_lit()).prop_map(|(p, l)| format!("trim({p}) eq {l}")),
        (str_prop.clone(), str_lit(), str_lit()).prop_map(|(p, a, b)| format!("concat({p},{a}) eq {b}")),
        (str_prop, str_lit()).prop_map(|(p, l)| format!("tolower({p}) eq {l}")),
        pick(&[CONFIG, LIMIT, RESTRICT][..]).prop_map(|t| format!("isof({t})")),
        target_pred("target/"),
        (pick(&["any", "all"][..]), op(), str_lit()).prop_map(|(q, o, l)| format!("roleScopeTagIds/{q}(t: t {o} {l})")),
        Just("roleScopeTagIds/any()".to_string()),
        Just("targets/any()".to_string()),
        (pick(&["any", "all"][..]), target_pred("x/")).prop_map(|(q, p)| format!("targets/{q}(x: {p})")),
        (pick(&["any", "all"][..]), op()).prop_map(|(q, o)| format!(
            "targets/{q}(x: roleScopeTagIds/any(r: r {o} x/deviceAndAppManagementAssignmentFilterId))"
        )),
    ]
}

fn filter() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) eq ({b})")),
        ]
    })
}

fn orderby() -> impl Strategy<Value = String> {
    let key = pick(&[
        "displayName",
        "description",
        "priority",
        "score",
        "isEnabled",
        "createdDateTime",
        "tenantGuid",
        "releaseDate",
        "deviceEnrollmentConfigurationType",
        "target/deviceAndAppManagementAssignmentFilterType",
        "target/microsoft.graph.groupAssignmentTarget/groupId",
        "length(displayName)",
        "microsoft.graph.deviceEnrollmentLimitConfiguration/limit",
        "priority gt 0",
    ]);
    prop::collection::vec((key, any::<bool>()), 1..3).prop_map(|keys| {
        keys.iter().map(|(k, d)| if *d { format!("{k} desc") } else { k.to_string() }).collect::<Vec<_>>().join(",")
    })
}

fn to_sql(v: &SqlValue) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        SqlValue::Null => V::Null,
        SqlValue::Bool(b) => V::Integer(i64::from(*b)),
        SqlValue::Int(i) => V::Integer(*i),
        SqlValue::Double(d) => V::Real(*d),
        SqlValue::Text(t) => V::Text(t.clone()),
    }
}

#[derive(Default)]
struct Stats {
    cases: usize,
    filters_translated: usize,
    orderbys_translated: usize,
}

fn run_case(entities: &[(String, Value)], filter_text: &str, orderby_text: &str, stats: &mut Stats) {
    let m = model();
    let cfg = ParseConfig::default();
    let parsed = parse_filter(filter_text, &cfg).unwrap_or_else(|e| panic!("{filter_text}: {e}"));
    assert_eq!(parse_filter(&parsed.to_string(), &cfg).unwrap(), parsed, "round trip of {parsed}");
    let filter = bind_filter(&parsed, &m, CONFIG).unwrap_or_else(|e| panic!("{filter_text}: {e}"));
    let ob = parse_orderby(orderby_text, &cfg).unwrap();
    let ob = bind_orderby(&ob, &m, CONFIG).unwrap_or_else(|e| panic!("{orderby_text}: {e}"));

    let with_ids: Vec<(String, String, Value)> = entities
        .iter()
        .enumerate()
        .map(|(i, (t, b))| {
            let id = format!("e{i:02}");
            let mut b = b.clone();
            b["id"] = json!(id.clone());
            (id, t.clone(), b)
        })
        .collect();
    let mut expected: Vec<&(String, String, Value)> = with_ids.iter().filter(|(_, t, b)| eval(&filter, t, b)).collect();
    expected.sort_by(|a, b| compare(&ob, (&a.1, &a.2), (&b.1, &b.2)).then_with(|| a.0.cmp(&b.0)));
    let expected: Vec<&str> = expected.iter().map(|e| e.0.as_str()).collect();

    stats.cases += 1;
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute("CREATE TABLE t (tenant TEXT, id TEXT, type TEXT, body TEXT)", []).unwrap();
    for (id, t, b) in &with_ids {
        conn.execute("INSERT INTO t VALUES ('x', ?1, ?2, ?3)", rusqlite::params![id, t, b.to_string()]).unwrap();
    }
    let fsql = filter_to_sql(&filter, &Sqlite::default(), 2);
    let osql = fsql.as_ref().and_then(|f| orderby_to_sql(&ob, &Sqlite::default(), 2 + f.params.len()));
    let Some(fsql) = fsql else { return };
    stats.filters_translated += 1;
    let mut params = vec![rusqlite::types::Value::Text("x".into())];
    params.extend(fsql.params.iter().map(to_sql));
    let order = match &osql {
        Some(o) => {
            stats.orderbys_translated += 1;
            params.extend(o.params.iter().map(to_sql));
            format!("{}, id", o.clause())
        }
        None => "id".into(),
    };
    let query = format!("SELECT id FROM t WHERE tenant = ?1 AND {} ORDER BY {order}", fsql.text);
    let mut stmt = conn.prepare(&query).unwrap_or_else(|e| panic!("{filter_text}: {e}\n{query}"));
    let got: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(params), |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{filter_text}: {e}\n{query}"));
    if osql.is_some() {
        assert_eq!(got, expected, "filter {filter_text} orderby {orderby_text}\nSQL: {query}");
    } else {
        let mut exp: Vec<&str> = expected.clone();
        exp.sort();
        assert_eq!(got, exp, "filter {filter_text}\nSQL: {query}");
    }
}

#[test]
fn sql_agrees_with_memory() {
    let cases = std::env::var("ODATA_DIFF_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(400);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let stats = std::cell::RefCell::new(Stats::default());
    runner
        .run(&(prop::collection::vec(entity(), 0..14), filter(), orderby()), |(entities, f, o)| {
            run_case(&entities, &f, &o, &mut stats.borrow_mut());
            Ok(())
        })
        .unwrap();
    let s = stats.borrow();
    eprintln!(
        "differential: {} cases, {} filters translated, {} orderbys translated",
        s.cases, s.filters_translated, s.orderbys_translated
    );
    assert!(s.filters_translated * 10 >= s.cases * 6, "too few filters translate");
    assert!(s.orderbys_translated * 10 >= s.filters_translated * 9, "too few orderbys translate");
}

fn pg_literal(v: &SqlValue) -> String {
    match v {
        SqlValue::Null => "NULL".into(),
        SqlValue::Bool(b) => b.to_string(),
        SqlValue::Int(i) => i.to_string(),
        SqlValue::Double(d) => format!("'{d:?}'::float8"),
        SqlValue::Text(t) => format!("'{}'", t.replace('\'', "''")),
    }
}

/// Like `run_case`, against a real PostgreSQL through `psql` (values are passed to a
/// prepared statement as literals, which only this test writes).
fn run_case_pg(
    psql: &std::path::Path,
    url: &str,
    entities: &[(String, Value)],
    filter_text: &str,
    orderby_text: &str,
    stats: &mut Stats,
) {
    let m = model();
    let cfg = ParseConfig::default();
    let filter = bind_filter(&parse_filter(filter_text, &cfg).unwrap(), &m, CONFIG).unwrap();
    let ob = bind_orderby(&parse_orderby(orderby_text, &cfg).unwrap(), &m, CONFIG).unwrap();
    let rows: Vec<(String, String, Value)> = entities
        .iter()
        .enumerate()
        .map(|(i, (t, b))| {
            let mut b = b.clone();
            b["id"] = json!(format!("e{i:02}"));
            (format!("e{i:02}"), t.clone(), b)
        })
        .collect();
    let mut expected: Vec<&(String, String, Value)> = rows.iter().filter(|(_, t, b)| eval(&filter, t, b)).collect();
    expected.sort_by(|a, b| compare(&ob, (&a.1, &a.2), (&b.1, &b.2)).then_with(|| a.0.cmp(&b.0)));
    let expected: Vec<String> = expected.iter().map(|e| e.0.clone()).collect();
    stats.cases += 1;
    let pg = Postgres::default();
    let Some(fsql) = filter_to_sql(&filter, &pg, 2) else {
        return;
    };
    stats.filters_translated += 1;
    let Some(osql) = orderby_to_sql(&ob, &pg, 2 + fsql.params.len()) else {
        return;
    };
    stats.orderbys_translated += 1;
    let mut script =
        String::from("BEGIN;\nCREATE TEMP TABLE t (tenant text, id text, type text, body jsonb) ON COMMIT DROP;\n");
    for (id, t, b) in &rows {
        script.push_str(&format!(
            "INSERT INTO t VALUES ('x', '{id}', '{t}', '{}'::jsonb);\n",
            b.to_string().replace('\'', "''")
        ));
    }
    let query =
        format!("SELECT id FROM t WHERE tenant = $1 AND {} ORDER BY {}, id COLLATE \"C\"", fsql.text, osql.clause());
    let args: Vec<String> =
        std::iter::once("'x'".to_string()).chain(fsql.params.iter().chain(&osql.params).map(pg_literal)).collect();
    script.push_str(&format!("PREPARE q AS {query};\nEXECUTE q({});\nCOMMIT;\n", args.join(", ")));
    let out = std::process::Command::new(psql)
        .args([url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{filter_text}: {}\n{query}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<String> = stdout.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    assert_eq!(got, expected, "filter {filter_text} orderby {orderby_text}\nSQL: {query}");
}

/// Runs against `ENROLLGRAPH_TEST_PG_URL` when set (a `psql` connection string), else on a
/// fresh database of the harness's throwaway cluster (enrollgraph-testpg); skipped only
/// where PostgreSQL is absent and not required (rulings.md 11: never in CI).
#[test]
fn postgres_agrees_with_memory() {
    let (psql, url) = match std::env::var("ENROLLGRAPH_TEST_PG_URL") {
        Ok(url) => (std::path::PathBuf::from("psql"), url),
        Err(_) => {
            let Some(cluster) = enrollgraph_testpg::cluster_or_skip("postgres differential") else {
                return;
            };
            let psql = cluster.bin.join("psql");
            (if psql.is_file() { psql } else { "psql".into() }, cluster.create_database())
        }
    };
    let cases = std::env::var("ODATA_DIFF_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let stats = std::cell::RefCell::new(Stats::default());
    runner
        .run(&(prop::collection::vec(entity(), 0..10), filter(), orderby()), |(entities, f, o)| {
            run_case_pg(&psql, &url, &entities, &f, &o, &mut stats.borrow_mut());
            Ok(())
        })
        .unwrap();
    let s = stats.borrow();
    eprintln!(
        "postgres differential: {} cases, {} filters translated, {} orderbys translated",
        s.cases, s.filters_translated, s.orderbys_translated
    );
    assert!(s.filters_translated * 10 >= s.cases * 6, "too few filters translate");
}

#[test]
fn memory_order_is_total_and_consistent() {
    // compare() is a consistent ordering: sorting twice in different input orders agrees.
    let m = model();
    let ob = parse_orderby("createdDateTime desc,priority", &ParseConfig::default()).unwrap();
    let ob = bind_orderby(&ob, &m, CONFIG).unwrap();
    let a = json!({"createdDateTime": "2024-01-01T01:00:00+01:00", "priority": 1});
    let b = json!({"createdDateTime": "2024-01-01T00:00:00Z", "priority": 0});
    let c = json!({"createdDateTime": null, "priority": 0});
    assert_eq!(compare(&ob, (CONFIG, &a), (CONFIG, &b)), Ordering::Greater);
    assert_eq!(compare(&ob, (CONFIG, &c), (CONFIG, &b)), Ordering::Greater);
    assert_eq!(compare(&ob, (CONFIG, &a), (CONFIG, &a)), Ordering::Equal);
}
