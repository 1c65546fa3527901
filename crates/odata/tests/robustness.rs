//! No input makes parsing, binding, evaluation or translation panic; printed syntax
//! trees parse back to equal trees.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use enrollgraph_odata::*;
use proptest::prelude::*;
use serde_json::json;

const SEEDS: &[&str] = &[
    "target/microsoft.graph.groupAssignmentTarget/groupId eq '6f1e' and target/deviceAndAppManagementAssignmentFilterType eq 'include'",
    "roleScopeTagIds/any(t: t eq '0') or not (priority gt 3)",
    "targets/all(x: isof(x, microsoft.graph.groupAssignmentTarget) and roleScopeTagIds/any(r: r eq x/deviceAndAppManagementAssignmentFilterId))",
    "createdDateTime ge 2024-01-01T00:00:00.5+01:00 and tenantGuid eq 01234567-89ab-cdef-0123-456789abcdef",
    "substring(displayName, 1, 2) eq 'in' and length(trim(concat(displayName, ' '))) gt 2 and indexof(displayName,'x') eq -1",
    "deviceEnrollmentConfigurationType in ('limit', microsoft.graph.deviceEnrollmentConfigurationType'defaultLimit') and cast(target, microsoft.graph.allDevicesAssignmentTarget) eq null",
    "isof(microsoft.graph.deviceEnrollmentLimitConfiguration) and microsoft.graph.deviceEnrollmentLimitConfiguration/limit le 2.5e1",
];

fn exercise(filter: &str) {
    let m = model();
    let cfg = ParseConfig::default();
    let _ = parse_query(filter, &cfg);
    let _ = parse_query(&format!("$filter={filter}&$orderby={filter}&$select={filter}&$expand={filter}"), &cfg);
    let _ = parse_orderby(filter, &cfg);
    if let Ok(e) = parse_filter(filter, &cfg) {
        let printed = e.to_string();
        assert_eq!(parse_filter(&printed, &cfg).as_ref(), Ok(&e), "{printed}");
        if let Ok(f) = bind_filter(&e, &m, CONFIG) {
            let entity = json!({"id": "1", "displayName": "Win", "roleScopeTagIds": ["0"], "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget"}, "targets": [{}, null, 3]});
            let _ = eval(&f, LIMIT, &entity);
            let _ = eval(&f, CONFIG, &json!(null));
            let _ = filter_to_sql(&f, &Sqlite::default(), 1);
            let _ = filter_to_sql(&f, &Postgres::default(), 1);
        }
    }
}

fn mutated() -> impl Strategy<Value = String> {
    (prop::sample::select(SEEDS), prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6))
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (idx, op, c) in edits {
                let i = idx.index(chars.len() + 1);
                match op {
                    0 => chars.insert(i, c),
                    1 if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ if i < chars.len() => chars[i] = "()',/: eq1".chars().nth(c as usize % 10).unwrap_or(' '),
                    _ => {}
                }
            }
            chars.into_iter().collect()
        })
}

fn ident() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("keyword", |s| {
        !matches!(
            s.to_ascii_lowercase().as_str(),
            "null"
                | "true"
                | "false"
                | "not"
                | "and"
                | "or"
                | "eq"
                | "ne"
                | "gt"
                | "ge"
                | "lt"
                | "le"
                | "in"
                | "has"
                | "add"
                | "sub"
                | "mul"
                | "div"
                | "divby"
                | "mod"
                | "any"
                | "all"
                | "asc"
                | "desc"
                | "isof"
                | "cast"
        ) && Function::from_name(s).is_none()
    })
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        any::<i64>().prop_map(Literal::Int),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Literal::Double),
        any::<String>().prop_map(Literal::String),
        Just(Literal::Guid("01234567-89ab-CDEF-0123-456789abcdef".into())),
        Just(Literal::DateTimeOffset("2024-01-01T00:00:00.123+05:30".into())),
        Just(Literal::Date("2024-02-29".into())),
        (ident(), ident(), any::<String>())
            .prop_map(|(a, b, member)| Literal::Enum { type_name: format!("{a}.{b}"), member }),
    ]
}

fn path() -> impl Strategy<Value = Vec<Segment>> {
    prop::collection::vec(
        prop_oneof![3 => ident().prop_map(Segment::Property), 1 => (ident(), ident()).prop_map(|(a, b)| Segment::Cast(format!("{a}.{b}")))],
        1..4,
    )
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![literal().prop_map(Expr::Literal), path().prop_map(Expr::Path)];
    leaf.prop_recursive(4, 40, 4, |inner| {
        let op = prop::sample::select(
            &[
                BinaryOp::And,
                BinaryOp::Or,
                BinaryOp::Eq,
                BinaryOp::Ne,
                BinaryOp::Gt,
                BinaryOp::Ge,
                BinaryOp::Lt,
                BinaryOp::Le,
            ][..],
        );
        let func =
            prop::sample::select(&[Function::StartsWith, Function::ToLower, Function::Substring, Function::Concat][..]);
        prop_oneof![
            (op, inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::Binary {
                op,
                left: Box::new(l),
                right: Box::new(r)
            }),
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (inner.clone(), prop::collection::vec(literal().prop_map(Expr::Literal), 1..3))
                .prop_map(|(e, list)| Expr::In { expr: Box::new(e), list }),
            (func, prop::collection::vec(inner.clone(), 1..3)).prop_filter_map("arity", |(function, mut args)| {
                let (min, _) = match function {
                    Function::ToLower => (1, 1),
                    Function::Substring => (2, 3),
                    _ => (2, 2),
                };
                args.truncate(if min == 1 { 1 } else { 2 });
                (args.len() >= min).then_some(Expr::Call { function, args })
            }),
            (path(), prop::sample::select(&[LambdaKind::Any, LambdaKind::All][..]), ident(), inner.clone()).prop_map(
                |(path, kind, var, body)| Expr::Lambda { path, kind, predicate: Some((var, Box::new(body))) }
            ),
            path().prop_map(|path| Expr::Lambda { path, kind: LambdaKind::Any, predicate: None }),
            (prop::option::of(inner), ident(), ident(), any::<bool>()).prop_map(|(e, a, b, isof)| {
                let (expr, type_name) = (e.map(Box::new), format!("{a}.{b}"));
                if isof { Expr::IsOf { expr, type_name } } else { Expr::Cast { expr, type_name } }
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        exercise(&s);
    }

    #[test]
    fn mutated_filters_never_panic(s in mutated()) {
        exercise(&s);
    }

    #[test]
    fn ast_round_trip(e in expr()) {
        let printed = e.to_string();
        let parsed = parse_filter(&printed, &ParseConfig { max_depth: 1000, ..ParseConfig::default() });
        prop_assert_eq!(parsed, Ok(e), "{}", printed);
    }

    #[test]
    fn query_string_round_trip(f in expr(), top in prop::option::of(any::<u64>()), search in prop::option::of("[a-z\" &=%+#]{0,8}")) {
        let q = QueryOptions {
            filter: Some(f.clone()),
            orderby: vec![OrderByItem { expr: f, descending: true }],
            top,
            search,
            expand: Some(vec![ExpandItem { path: "a".into(), options: QueryOptions { top: Some(1), select: Some(vec![SelectItem::All]), ..QueryOptions::default() } }]),
            ..QueryOptions::default()
        };
        let text = q.to_query_string();
        prop_assert_eq!(parse_query(&text, &ParseConfig { max_depth: 1000, ..ParseConfig::default() }), Ok(q), "{}", text);
    }
}
