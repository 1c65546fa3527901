//! Parsing: canonical printing, error messages with positions, query options.
#![allow(clippy::unwrap_used)]

use enrollgraph_odata::*;

fn cfg() -> ParseConfig {
    ParseConfig::default()
}

fn canon(filter: &str) -> String {
    match parse_filter(filter, &cfg()) {
        Ok(e) => {
            let printed = e.to_string();
            let again = parse_filter(&printed, &cfg()).unwrap_or_else(|err| panic!("{printed}: {err}"));
            assert_eq!(again, e, "round trip of {printed}");
            printed
        }
        Err(e) => format!("ERR {:?}@{:?}: {}", e.kind, e.position, e.message),
    }
}

#[test]
fn canonical_print() {
    let cases = [
        ("displayName eq 'x'", "displayName eq 'x'"),
        ("  displayName   eq   'it''s'  ", "displayName eq 'it''s'"),
        ("(a eq 1) and (b eq 2 or c eq 3)", "a eq 1 and (b eq 2 or c eq 3)"),
        ("a eq 1 or b eq 2 and c eq 3", "a eq 1 or b eq 2 and c eq 3"),
        ("(a eq 1 or b eq 2) and c eq 3", "(a eq 1 or b eq 2) and c eq 3"),
        ("a and (b and c)", "a and (b and c)"),
        ("not (a eq 1)", "not (a eq 1)"),
        ("not(isEnabled)", "not isEnabled"),
        ("not not isEnabled", "not not isEnabled"),
        ("x in ('a', 'b')", "x in ('a','b')"),
        ("priority gt -5 and score le 1.5", "priority gt -5 and score le 1.5"),
        ("score eq 1e3", "score eq 1000.0"),
        ("score eq 2.0d", "score eq 2.0"),
        ("priority eq 10L", "priority eq 10"),
        ("priority eq 99999999999999999999", "priority eq 1e20"),
        ("tenantGuid eq 01234567-89ab-cdef-0123-456789ABCDEF", "tenantGuid eq 01234567-89ab-cdef-0123-456789ABCDEF"),
        ("tenantGuid eq deadbeef-0000-0000-0000-000000000000", "tenantGuid eq deadbeef-0000-0000-0000-000000000000"),
        ("createdDateTime gt 2024-01-01T00:00:00Z", "createdDateTime gt 2024-01-01T00:00:00Z"),
        (
            "createdDateTime gt 2024-01-01T00:00:00.1234567-05:30",
            "createdDateTime gt 2024-01-01T00:00:00.1234567-05:30",
        ),
        ("createdDateTime gt 2024-01-01T10:00Z", "createdDateTime gt 2024-01-01T10:00Z"),
        ("releaseDate eq 2024-02-29", "releaseDate eq 2024-02-29"),
        (
            "target/deviceAndAppManagementAssignmentFilterType eq microsoft.graph.deviceAndAppManagementAssignmentFilterType'include'",
            "target/deviceAndAppManagementAssignmentFilterType eq microsoft.graph.deviceAndAppManagementAssignmentFilterType'include'",
        ),
        (
            "target/microsoft.graph.groupAssignmentTarget/groupId eq 'g'",
            "target/microsoft.graph.groupAssignmentTarget/groupId eq 'g'",
        ),
        ("roleScopeTagIds/any(t: t eq '0')", "roleScopeTagIds/any(t:t eq '0')"),
        ("roleScopeTagIds/any()", "roleScopeTagIds/any()"),
        (
            "targets/all(t: isof(t, microsoft.graph.groupAssignmentTarget))",
            "targets/all(t:isof(t,microsoft.graph.groupAssignmentTarget))",
        ),
        (
            "isof('microsoft.graph.deviceEnrollmentLimitConfiguration')",
            "isof(microsoft.graph.deviceEnrollmentLimitConfiguration)",
        ),
        ("isof(target,'#microsoft.graph.groupAssignmentTarget')", "isof(target,microsoft.graph.groupAssignmentTarget)"),
        (
            "cast(target, microsoft.graph.groupAssignmentTarget) ne null",
            "cast(target,microsoft.graph.groupAssignmentTarget) ne null",
        ),
        ("startswith(displayName,'Win') eq true", "startswith(displayName,'Win') eq true"),
        ("StartsWith(displayName, 'Win')", "startswith(displayName,'Win')"),
        ("contains(tolower(displayName), 'x')", "contains(tolower(displayName),'x')"),
        ("substring(displayName, 1, 2) eq 'ab'", "substring(displayName,1,2) eq 'ab'"),
        ("concat(concat(a, ' '), b) eq 'x y'", "concat(concat(a,' '),b) eq 'x y'"),
        ("length(trim(displayName)) ge 3", "length(trim(displayName)) ge 3"),
        ("indexof(displayName, 'x') eq -1", "indexof(displayName,'x') eq -1"),
        ("description eq null", "description eq null"),
        ("isEnabled eq false", "isEnabled eq false"),
        ("a eq b eq c", "a eq b eq c"),
        ("a eq (b eq c)", "a eq (b eq c)"),
        ("displayName EQ 'x' AND isEnabled", "displayName eq 'x' and isEnabled"),
        ("$it/displayName eq 'x'", "$it/displayName eq 'x'"),
        (
            "microsoft.graph.deviceEnrollmentLimitConfiguration/limit gt 5",
            "microsoft.graph.deviceEnrollmentLimitConfiguration/limit gt 5",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(canon(input), expected, "input: {input}");
    }
}

#[test]
fn syntax_errors() {
    let cases = [
        ("displayName eqq 'x'", "ERR Syntax@Some(12): Syntax error at position 12 in 'displayName eqq 'x''."),
        (
            "displayName eq 'x",
            "ERR Syntax@Some(15): There is an unterminated string literal at position 15 in 'displayName eq 'x'.",
        ),
        ("displayName eq", "ERR Syntax@Some(14): Expression expected at position 14 in 'displayName eq'."),
        ("", "ERR Syntax@Some(0): Expression expected at position 0 in ''."),
        ("(a eq 1", "ERR Syntax@Some(7): ')' or operator expected at position 7 in '(a eq 1'."),
        ("foo(a)", "ERR UnknownFunction@Some(0): Unknown function 'foo'."),
        ("a eq 1 and year(d) eq 2", "ERR NotSupported@Some(11): The function 'year' is not supported."),
        (
            "startswith(a)",
            "ERR FunctionSignature@Some(0): No function signature for the function with name 'startswith' matches the specified arguments.",
        ),
        ("a eq #", "ERR Syntax@Some(5): Invalid character '#' at position 5 in 'a eq #'."),
        ("a add 1 eq 2", "ERR NotSupported@Some(2): The operator 'add' at position 2 is not supported."),
        (
            "d gt 2024-13-01T00:00:00Z",
            "ERR Syntax@Some(5): Unrecognized 'Edm.DateTimeOffset' literal '2024-13-01T00:00:00Z' at '5' in 'd gt 2024-13-01T00:00:00Z'.",
        ),
        ("c/all()", "ERR Syntax@Some(6): Syntax error at position 6 in 'c/all()'."),
        ("a eq 12abc", "ERR Syntax@Some(5): Syntax error at position 5 in 'a eq 12abc'."),
        ("x in ()", "ERR Syntax@Some(6): Expression expected at position 6 in 'x in ()'."),
        (
            "a eq duration'P1D'",
            "ERR NotSupported@Some(5): The literal of type 'duration' at position 5 is not supported.",
        ),
        ("a eq 1e999", "ERR Syntax@Some(5): Numeric literal '1e999' is out of range at position 5 in 'a eq 1e999'."),
    ];
    for (input, expected) in cases {
        assert_eq!(canon(input), expected, "input: {input}");
    }
}

#[test]
fn recursion_limit() {
    let deep = format!("{}a eq 1{}", "(".repeat(150), ")".repeat(150));
    let err = parse_filter(&deep, &cfg()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooDeep);
    let nots = format!("{}a", "not ".repeat(500));
    assert_eq!(parse_filter(&nots, &cfg()).unwrap_err().kind, ErrorKind::TooDeep);
    let chain = vec!["a eq 1"; 200].join(" and ");
    assert_eq!(parse_filter(&chain, &cfg()).unwrap_err().kind, ErrorKind::TooDeep);
    let ok = vec!["a eq 1"; 40].join(" and ");
    assert!(parse_filter(&ok, &cfg()).is_ok());
    let expand = format!("{}{}", "a($expand=".repeat(120), ")".repeat(120));
    assert_eq!(parse_query(&format!("$expand={expand}"), &cfg()).unwrap_err().kind, ErrorKind::TooDeep);
    // A million characters of nesting fail cleanly, without exhausting the stack.
    let huge = "(".repeat(1_000_000);
    assert_eq!(parse_filter(&huge, &cfg()).unwrap_err().kind, ErrorKind::TooDeep);
}

#[test]
fn query_options() {
    let q = parse_query(
        "$filter=displayName%20eq%20'a+b'&$Select=id,displayName,microsoft.graph.deviceEnrollmentLimitConfiguration/limit&$top=5&$skip=10&$count=true&$orderby=priority%20desc,displayName&custom=1&$skiptoken=abc&$search=%22x%22",
        &cfg(),
    )
    .unwrap();
    assert_eq!(q.filter.as_ref().unwrap().to_string(), "displayName eq 'a b'");
    assert_eq!(q.select.as_ref().unwrap().len(), 3);
    assert_eq!(
        q.select.as_ref().unwrap()[2],
        SelectItem::Path(vec![
            Segment::Cast("microsoft.graph.deviceEnrollmentLimitConfiguration".into()),
            Segment::Property("limit".into())
        ])
    );
    assert_eq!((q.top, q.skip, q.count), (Some(5), Some(10), Some(true)));
    assert_eq!(q.orderby.len(), 2);
    assert!(q.orderby[0].descending && !q.orderby[1].descending);
    assert_eq!(q.skiptoken.as_deref(), Some("abc"));
    assert_eq!(q.search.as_deref(), Some("\"x\""));
    let text = q.to_query_string();
    assert_eq!(parse_query(&text, &cfg()).unwrap(), q, "{text}");
    assert_eq!(
        q.to_string(),
        "$filter=displayName eq 'a b'&$select=id,displayName,microsoft.graph.deviceEnrollmentLimitConfiguration/limit&$orderby=priority desc,displayName&$top=5&$skip=10&$count=true&$search=\"x\"&$skiptoken=abc"
    );

    // $ optional (Graph beta) and custom options.
    let loose = ParseConfig { dollar_optional: true, ..cfg() };
    let q = parse_query("filter=a eq 1&top=2&other=x", &loose).unwrap();
    assert_eq!((q.filter.is_some(), q.top), (true, Some(2)));
    let q = parse_query("filter=a eq 1&top=2", &cfg()).unwrap();
    assert!(q.is_empty());
}

#[test]
fn query_option_errors() {
    let err = |raw: &str| {
        let e = parse_query(raw, &ParseConfig { dollar_optional: true, ..cfg() }).unwrap_err();
        format!("{:?}: {}", e.kind, e.message)
    };
    assert_eq!(err("$foo=1"), "UnknownQueryOption: The query parameter '$foo' is not supported.");
    assert_eq!(
        err("$filter=a eq 1&filter=b eq 2"),
        "DuplicateQueryOption: Query option '$filter' was specified more than once, but it must be specified at most once."
    );
    assert_eq!(
        err("$TOP=1&$top=2"),
        "DuplicateQueryOption: Query option '$top' was specified more than once, but it must be specified at most once."
    );
    assert_eq!(
        err("$top=-1"),
        "InvalidOptionValue: Invalid value '-1' for $top query option found. The $top query option requires a non-negative integer value."
    );
    assert_eq!(
        err("$skip=x"),
        "InvalidOptionValue: Invalid value 'x' for $skip query option found. The $skip query option requires a non-negative integer value."
    );
    assert_eq!(err("$count=yes"), "InvalidOptionValue: 'yes' is not a valid count option.");
    assert_eq!(err("$select=a,"), "Syntax: Syntax error at position 2 in 'a,'.");
    assert_eq!(err("$expand=a(b=1)"), "UnknownQueryOption: The query parameter 'b' is not supported.");
    assert_eq!(
        err("$expand=a($skiptoken=1)"),
        "UnknownQueryOption: The query parameter '$skiptoken' is not supported."
    );
    assert_eq!(err("$expand=a($top=1"), "Syntax: Syntax error: missing ')' for the '(' at position 1 in 'a($top=1'.");
}

#[test]
fn expand_nested() {
    let raw = "$expand=assignments($select=id,target;$filter=target/microsoft.graph.groupAssignmentTarget/groupId eq 'a;b)';$top=5;$orderby=id desc;$expand=x($count=true)),other";
    let q = parse_query(raw, &cfg()).unwrap();
    let e = q.expand.as_ref().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].path, "assignments");
    assert_eq!(e[0].options.top, Some(5));
    assert_eq!(
        e[0].options.filter.as_ref().unwrap().to_string(),
        "target/microsoft.graph.groupAssignmentTarget/groupId eq 'a;b)'"
    );
    assert_eq!(e[0].options.expand.as_ref().unwrap()[0].options.count, Some(true));
    assert_eq!(e[1].path, "other");
    assert_eq!(
        e[0].to_string(),
        "assignments($filter=target/microsoft.graph.groupAssignmentTarget/groupId eq 'a;b)';$select=id,target;$expand=x($count=true);$orderby=id desc;$top=5)"
    );
    assert_eq!(parse_query(&q.to_query_string(), &cfg()).unwrap(), q);
    let star = parse_query("$expand=*", &cfg()).unwrap();
    assert_eq!(star.expand.unwrap()[0].path, "*");
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("a%20b+c%2B%zz%"), "a b c+%zz%");
    assert_eq!(percent_decode("%E2%82%AC%FF"), "€\u{FFFD}");
}

#[test]
fn expand_depth_and_in_list_bounds() {
    let one = ParseConfig { max_expand_depth: 1, max_in_values: 3, ..cfg() };
    assert!(parse_query("$expand=a($select=b),c", &one).is_ok());
    let err = parse_query("$expand=a($expand=b)", &one).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooDeep);
    assert_eq!(err.message, "The request includes a $expand path which is too deep. The maximum depth allowed is 1.");
    // Refused at the second level, whatever follows (no scan of the rest, no recursion).
    let deep = format!("$expand={}{}", "a($expand=".repeat(100_000), ")".repeat(100_000));
    assert_eq!(parse_query(&deep, &one).unwrap_err().kind, ErrorKind::TooDeep);
    assert!(parse_filter("x in (1,2,3)", &one).is_ok());
    let err = parse_filter("x in (1,2,3,4)", &one).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooDeep);
    assert_eq!(err.message, "The 'in' list at position 12 has more than the 3 values allowed.");
}
