//! The SQL text emitted for each dialect (the PostgreSQL text is also checked against a
//! real server by `differential.rs`, on the test harness's throwaway cluster or `ENROLLGRAPH_TEST_PG_URL`).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use enrollgraph_odata::*;

fn bound(filter: &str) -> BoundFilter {
    bind_filter(&parse_filter(filter, &ParseConfig::default()).unwrap(), &model(), CONFIG).unwrap()
}

fn sql(filter: &str, d: &dyn SqlDialect) -> Sql {
    filter_to_sql(&bound(filter), d, 3).unwrap()
}

#[test]
fn postgres_text() {
    let pg = Postgres::default();
    let s = sql("displayName eq 'a' and priority gt 2", &pg);
    assert_eq!(
        s.text,
        "(((CASE WHEN jsonb_typeof((body #> '{\"displayName\"}')) = 'string' THEN ((body #> '{\"displayName\"}') #>> '{}') END) IS NOT DISTINCT FROM $3::text) \
         AND COALESCE(((CASE WHEN jsonb_typeof((body #> '{\"priority\"}')) = 'number' THEN (((body #> '{\"priority\"}') #>> '{}')::numeric) END) > $4::bigint), FALSE))"
    );
    assert_eq!(s.params, vec![SqlValue::Text("a".into()), SqlValue::Int(2)]);
    let s = sql("not (description lt 'b')", &pg);
    assert!(s.text.starts_with("(NOT COALESCE(("), "{}", s.text);
    assert!(s.text.contains("COLLATE \"C\") < ($3::text COLLATE \"C\")"), "{}", s.text);
    let s = sql("roleScopeTagIds/any(t: t eq '0')", &pg);
    assert!(s.text.contains("FROM jsonb_array_elements(CASE WHEN jsonb_typeof((body #> '{\"roleScopeTagIds\"}')) = 'array' THEN (body #> '{\"roleScopeTagIds\"}') END) AS j1(value)"), "{}", s.text);
    let s = sql("isof(target, microsoft.graph.groupAssignmentTarget)", &pg);
    assert!(s.text.contains("COALESCE(ltrim("), "{}", s.text);
    assert!(s.params.contains(&SqlValue::Text(GROUP.into())) && s.params.contains(&SqlValue::Text(EXCLUSION.into())));
    let s = sql("createdDateTime ge 2024-01-01T00:00:00+01:00", &pg);
    assert!(s.text.contains("lpad(CAST(") && s.text.contains("~ '^[0-9]{4}-"), "{}", s.text);
    assert_eq!(s.params, vec![SqlValue::Text("101704063600.".into())]);
    let s = sql("isof(microsoft.graph.deviceEnrollmentLimitConfiguration)", &pg);
    assert_eq!(s.text, "COALESCE((type IN ($3::text)), FALSE)");

    let ob =
        parse_orderby("displayName desc,priority,deviceEnrollmentConfigurationType", &ParseConfig::default()).unwrap();
    let ob = bind_orderby(&ob, &model(), CONFIG).unwrap();
    let o = orderby_to_sql(&ob, &pg, 1).unwrap();
    assert!(o.terms[0].term.ends_with("COLLATE \"C\") DESC NULLS LAST"), "{}", o.terms[0].term);
    assert!(o.terms[1].term.ends_with(" ASC NULLS FIRST"));
    assert!(o.terms[2].expr.starts_with("(CASE (CASE WHEN"), "{}", o.terms[2].expr);
    assert_eq!(o.params.len(), 5);
    assert!(o.clause().contains(", "));
}

#[test]
fn sqlite_text() {
    let lite = Sqlite { body: "e.body".into(), ..Sqlite::default() };
    let s = sql("target/microsoft.graph.groupAssignmentTarget/groupId eq 'g' and isEnabled", &lite);
    assert_eq!(
        s.text,
        "(((CASE WHEN (CASE WHEN json_type(e.body, '$.\"target\"') IN ('object') THEN COALESCE(ltrim(CASE WHEN json_type(e.body, '$.\"target\".\"@odata.type\"') IN ('text') THEN json_extract(e.body, '$.\"target\".\"@odata.type\"') END, '#'), ?5) END) IN (?3, ?4) \
         THEN (CASE WHEN json_type(e.body, '$.\"target\".\"groupId\"') IN ('text') THEN json_extract(e.body, '$.\"target\".\"groupId\"') END) END) IS ?6) \
         AND ((CASE WHEN json_type(e.body, '$.\"isEnabled\"') IN ('true', 'false') THEN json_extract(e.body, '$.\"isEnabled\"') END) IS 1))"
    );
    assert_eq!(sql("id eq 'x'", &lite).text, "(id IS ?3)");
    assert_eq!(
        sql("description eq null", &lite).text,
        "((CASE WHEN json_type(e.body, '$.\"description\"') IN ('text') THEN json_extract(e.body, '$.\"description\"') END) IS NULL)"
    );
    assert_eq!(sql("description gt null", &lite).text, "(1 = 0)");
    // Not translatable: evaluate in memory.
    assert!(filter_to_sql(&bound("tolower(displayName) eq 'a'"), &lite, 1).is_none());
    assert!(filter_to_sql(&bound("substring(displayName, -1) eq 'a'"), &lite, 1).is_none());
}
