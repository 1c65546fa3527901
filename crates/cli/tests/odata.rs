//! The OData query language over HTTP (issue "The OData query language"; README "Query
//! options"; OData 4.01 URL Conventions §5; graph-behaviours.md "Paging"): `$filter`,
//! `$select`, `$expand`, `$orderby`, `$top`, `$skip`, `$count`, `/$count`, server-driven
//! paging, both key forms, and the `400` answers of bad queries, on every enrollment
//! collection and navigation, beta and v1.0. Every expected result is exact: the data is
//! made by each test, and results come in insertion order unless `$orderby` says otherwise.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Server, TENANT, Value, expect_empty_200, expect_error, get_ok, ids, json};

const CFG: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";
const V1_CFG: &str = "/v1.0/deviceManagement/deviceEnrollmentConfigurations";
const APPLE: &str = "/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles";
const PROFILES: &str = "/beta/deviceManagement/windowsAutopilotDeploymentProfiles";
const DEVICES: &str = "/beta/deviceManagement/windowsAutopilotDeviceIdentities";

// --- helpers ---------------------------------------------------------------------------

/// The ids of `GET {path}?{query}` (one page; the sets here are smaller than a page).
fn query_ids(s: &Server, path: &str, query: &str) -> Vec<String> {
    ids(&get_ok(s, &format!("{path}?{query}")))
}

/// The ids that `$filter={filter}` selects from `path`.
fn filtered(s: &Server, path: &str, filter: &str) -> Vec<String> {
    query_ids(s, path, &format!("$filter={filter}"))
}

/// Owned copies of the given ids, in the given order.
fn owned(v: &[&String]) -> Vec<String> {
    v.iter().map(|s| (*s).clone()).collect()
}

fn group(group_id: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id})
}

/// The target's `groupId` of an assignment in a response.
fn group_id(a: &Value) -> String {
    a["target"]["groupId"].as_str().unwrap_or_default().to_owned()
}

/// A GET of an absolute URL (a nextLink) that must answer 200.
fn get_abs(s: &Server, url: &str) -> Value {
    let r = s.raw().get(url).send().unwrap();
    let status = r.status();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "GET {url}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// `/$count` of `path` with `query`, as the bare number Graph answers.
fn count_segment(s: &Server, path: &str, query: &str) -> String {
    let r = s.get(&format!("{path}/$count?{query}"));
    let status = r.status();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "{path}/$count?{query}: {text}");
    text
}

/// A `400 BadRequest` whose message contains every one of `needles`.
fn bad_query(s: &Server, path_and_query: &str, needles: &[&str]) {
    let body = expect_error(s.get(path_and_query), 400, "BadRequest");
    let message = body["error"]["message"].as_str().unwrap();
    for n in needles {
        assert!(message.contains(n), "GET {path_and_query}: message {message:?} does not name {n:?}");
    }
}

/// The five beta defaults, in the order the tenant lists them (defaults.md).
fn beta_defaults() -> Vec<String> {
    common::default_ids()
}

/// Configurations of four derived types, created in this order (a few ms apart, so that
/// their `createdDateTime`s are increasing):
///
/// | key        | type                  | displayName  | description      | limit | roleScopeTagIds |
/// |------------|-----------------------|--------------|------------------|-------|-----------------|
/// | kiosk      | limit                 | `Kiosk`      | `it's`           | 3     | `0`             |
/// | kiosk_plus | limit                 | `Kiosk Plus` | null             | 10    | `0`, `7`        |
/// | corp       | platformRestrictions  | `Corporate`  | `A+B devices`    |       | `7`             |
/// | hello      | windowsHelloForBusiness | `Hello`    | `50% off & more` |       | (none)          |
/// | esp        | enrollmentCompletionPage | `ESP`     | `Café`           |       | `0`             |
///
/// Priorities: kiosk 1, kiosk_plus 2 (same kind), the others 1; the defaults 0.
struct Configs {
    defaults: Vec<String>,
    kiosk: String,
    kiosk_plus: String,
    corp: String,
    hello: String,
    esp: String,
    /// `createdDateTime` of `corp`, as the server wrote it.
    corp_created: String,
}

impl Configs {
    fn create(s: &Server) -> Configs {
        let bodies = [
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Kiosk",
                "description": "it's", "limit": 3, "roleScopeTagIds": ["0"]}),
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Kiosk Plus",
                "description": null, "limit": 10, "roleScopeTagIds": ["0", "7"]}),
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration",
                "displayName": "Corporate", "description": "A+B devices", "roleScopeTagIds": ["7"]}),
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration",
                "displayName": "Hello", "description": "50% off & more", "roleScopeTagIds": [],
                "securityDeviceRequired": true}),
            json!({"@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration",
                "displayName": "ESP", "description": "Café", "roleScopeTagIds": ["0"]}),
        ];
        let mut made = Vec::new();
        for b in &bodies {
            std::thread::sleep(std::time::Duration::from_millis(3));
            made.push(s.create(CFG, b));
        }
        let id = |i: usize| made[i]["id"].as_str().unwrap().to_owned();
        let c = Configs {
            defaults: beta_defaults(),
            kiosk: id(0),
            kiosk_plus: id(1),
            corp: id(2),
            hello: id(3),
            esp: id(4),
            corp_created: made[2]["createdDateTime"].as_str().unwrap().to_owned(),
        };
        assert_eq!(
            made.iter().map(|m| m["priority"].as_i64().unwrap()).collect::<Vec<_>>(),
            [1, 2, 1, 1, 1],
            "priorities (rulings.md 7)"
        );
        c
    }

    fn created(&self) -> Vec<String> {
        owned(&[&self.kiosk, &self.kiosk_plus, &self.corp, &self.hello, &self.esp])
    }

    /// The defaults followed by `more`.
    fn defaults_and(&self, more: &[&String]) -> Vec<String> {
        let mut v = self.defaults.clone();
        v.extend(owned(more));
        v
    }
}

/// Assignments of one new limit configuration, one per target type (every filter type):
///
/// | #  | target type                | groupId / other | filter type | filter id |
/// |----|----------------------------|-----------------|-------------|-----------|
/// | a1 | group                      | g1              | include     | f1        |
/// | a2 | exclusionGroup             | g2              | none        | null      |
/// | a3 | allDevices                 |                 | exclude     | f2        |
/// | a4 | allLicensedUsers           |                 | none        | null      |
/// | a5 | configurationManagerCollection | collectionId c1 | none    | null      |
/// | a6 | exclusionGroup             | g1              | none        | null      |
/// | a7 | group                      | g3              | exclude     | f1        |
/// | a8 | scopeTagGroup              | entraObjectId e1, targetType device | none | null |
/// | a9 | the abstract base          |                 | none        | null      |
struct Assignments {
    config: String,
    /// a1..a9 at indexes 1..=9 (index 0 unused).
    a: Vec<String>,
}

impl Assignments {
    fn create(s: &Server) -> Assignments {
        let c = s.create(
            CFG,
            &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Targets"}),
        );
        let config = c["id"].as_str().unwrap().to_owned();
        let g = "#microsoft.graph.";
        let targets = [
            json!({"@odata.type": format!("{g}groupAssignmentTarget"), "groupId": "g1",
                "deviceAndAppManagementAssignmentFilterType": "include", "deviceAndAppManagementAssignmentFilterId": "f1"}),
            json!({"@odata.type": format!("{g}exclusionGroupAssignmentTarget"), "groupId": "g2"}),
            json!({"@odata.type": format!("{g}allDevicesAssignmentTarget"),
                "deviceAndAppManagementAssignmentFilterType": "exclude", "deviceAndAppManagementAssignmentFilterId": "f2"}),
            json!({"@odata.type": format!("{g}allLicensedUsersAssignmentTarget")}),
            json!({"@odata.type": format!("{g}configurationManagerCollectionAssignmentTarget"), "collectionId": "c1"}),
            json!({"@odata.type": format!("{g}exclusionGroupAssignmentTarget"), "groupId": "g1"}),
            json!({"@odata.type": format!("{g}groupAssignmentTarget"), "groupId": "g3",
                "deviceAndAppManagementAssignmentFilterType": "exclude", "deviceAndAppManagementAssignmentFilterId": "f1"}),
            json!({"@odata.type": format!("{g}scopeTagGroupAssignmentTarget"), "entraObjectId": "e1", "targetType": "device"}),
            json!({"@odata.type": format!("{g}deviceAndAppManagementAssignmentTarget")}),
        ];
        let mut a = vec![String::new()];
        for t in targets {
            let made = s.create(&format!("{CFG}/{config}/assignments"), &json!({"target": t}));
            a.push(made["id"].as_str().unwrap().to_owned());
        }
        Assignments { config, a }
    }

    fn path(&self) -> String {
        format!("{CFG}/{}/assignments", self.config)
    }

    /// The ids of the given assignment numbers, in the given order.
    fn pick(&self, which: &[usize]) -> Vec<String> {
        which.iter().map(|&i| self.a[i].clone()).collect()
    }
}

// --- $filter on configurations -----------------------------------------------------------

/// Every filter construct of the issue over configurations of several derived types.
fn check_configuration_filters(s: &Server) {
    let c = Configs::create(s);
    let d = &c.defaults;
    let f = |filter: &str| filtered(s, CFG, filter);
    // Comparison operators on strings, numbers.
    assert_eq!(f("displayName eq 'Kiosk'"), owned(&[&c.kiosk]));
    assert_eq!(f("displayName ne 'All users and all devices'"), c.created());
    assert_eq!(f("priority gt 1"), owned(&[&c.kiosk_plus]));
    assert_eq!(f("priority ge 1"), c.created());
    assert_eq!(f("priority lt 1"), *d);
    assert_eq!(f("priority le 0"), *d);
    assert_eq!(f("priority gt -1"), c.defaults_and(&[&c.kiosk, &c.kiosk_plus, &c.corp, &c.hello, &c.esp]));
    assert_eq!(f("displayName gt 'Hello'"), owned(&[&c.kiosk, &c.kiosk_plus]), "by code point");
    // and / or / not, precedence and parentheses.
    assert_eq!(f("priority eq 1 and displayName ne 'Hello'"), owned(&[&c.kiosk, &c.corp, &c.esp]));
    assert_eq!(f("displayName eq 'Hello' or priority eq 2"), owned(&[&c.kiosk_plus, &c.hello]));
    assert_eq!(
        f("displayName eq 'Hello' or displayName eq 'Corporate' and priority eq 2"),
        owned(&[&c.hello]),
        "and binds tighter than or"
    );
    assert_eq!(
        f("(displayName eq 'Hello' or displayName eq 'Corporate') and priority eq 1"),
        owned(&[&c.corp, &c.hello])
    );
    assert_eq!(f("not (priority eq 0)"), c.created());
    assert_eq!(f("not startswith(displayName,'Ki')"), c.defaults_and(&[&c.corp, &c.hello, &c.esp]));
    assert_eq!(f("not(displayName eq 'ESP' or priority eq 0)"), owned(&[&c.kiosk, &c.kiosk_plus, &c.corp, &c.hello]));
    // in
    assert_eq!(f("displayName in ('Kiosk','Hello','nope')"), owned(&[&c.kiosk, &c.hello]));
    assert_eq!(f("priority in (2, 5)"), owned(&[&c.kiosk_plus]));
    // String functions.
    assert_eq!(f("startswith(displayName,'Ki')"), owned(&[&c.kiosk, &c.kiosk_plus]));
    assert_eq!(f("endswith(displayName,'Plus')"), owned(&[&c.kiosk_plus]));
    assert_eq!(f("contains(displayName,'or')"), owned(&[&c.corp]));
    assert_eq!(f("startswith(displayName,'ki')"), Vec::<String>::new(), "string functions are case-sensitive");
    assert_eq!(f("tolower(displayName) eq 'kiosk'"), owned(&[&c.kiosk]));
    assert_eq!(f("toupper(displayName) eq 'HELLO'"), owned(&[&c.hello]));
    assert_eq!(f("startswith(tolower(displayName),'kiosk')"), owned(&[&c.kiosk, &c.kiosk_plus]));
    assert_eq!(f("length(displayName) gt 3"), c.defaults_and(&[&c.kiosk, &c.kiosk_plus, &c.corp, &c.hello]));
    assert_eq!(f("length(displayName) eq 3"), owned(&[&c.esp]));
    assert_eq!(f("startswith(displayName,'Ki') eq true"), owned(&[&c.kiosk, &c.kiosk_plus]));
    // null
    assert_eq!(f("description eq null"), owned(&[&c.kiosk_plus]));
    assert_eq!(f("description ne null"), c.defaults_and(&[&c.kiosk, &c.corp, &c.hello, &c.esp]));
    assert_eq!(f("null eq description"), owned(&[&c.kiosk_plus]));
    // DateTimeOffset literals: Z, other offsets, the server's own 7 fractional digits.
    assert_eq!(f("createdDateTime gt 0001-01-01T00:00:00Z"), c.created());
    assert_eq!(f("createdDateTime eq 0001-01-01T00:00:00Z"), *d);
    assert_eq!(f("createdDateTime lt 2000-01-01T00:00:00-01:00"), *d);
    assert_eq!(f("createdDateTime lt 2000-01-01T01:00:00%2B01:00"), *d, "an encoded + in the offset");
    let at = &c.corp_created;
    assert_eq!(f(&format!("createdDateTime ge {at}")), owned(&[&c.corp, &c.hello, &c.esp]));
    assert_eq!(f(&format!("createdDateTime lt {at}")), c.defaults_and(&[&c.kiosk, &c.kiosk_plus]));
    assert_eq!(f(&format!("createdDateTime eq {at}")), owned(&[&c.corp]));
    // Ids (created configurations have `<guid>_<Suffix>` ids).
    assert_eq!(f(&format!("id eq '{}'", c.hello)), owned(&[&c.hello]));
    assert_eq!(f(&format!("id in ('{}','{}')", c.esp, c.kiosk)), owned(&[&c.kiosk, &c.esp]));
    // Enums, in both literal forms.
    assert_eq!(f("deviceEnrollmentConfigurationType eq 'limit'"), owned(&[&d[0], &c.kiosk, &c.kiosk_plus]));
    assert_eq!(
        f(
            "deviceEnrollmentConfigurationType eq microsoft.graph.deviceEnrollmentConfigurationType'windowsHelloForBusiness'"
        ),
        owned(&[&d[2], &c.hello])
    );
    // Derived types: isof, and properties behind a type segment.
    assert_eq!(
        f("isof('microsoft.graph.deviceEnrollmentLimitConfiguration')"),
        owned(&[&d[0], &c.kiosk, &c.kiosk_plus])
    );
    assert_eq!(
        f("isof(microsoft.graph.deviceEnrollmentLimitConfiguration) and priority gt 0"),
        owned(&[&c.kiosk, &c.kiosk_plus])
    );
    assert_eq!(
        f("not isof('microsoft.graph.deviceEnrollmentLimitConfiguration') and priority gt 0"),
        owned(&[&c.corp, &c.hello, &c.esp])
    );
    assert_eq!(f("microsoft.graph.deviceEnrollmentLimitConfiguration/limit gt 5"), owned(&[&c.kiosk_plus]));
    assert_eq!(
        f("microsoft.graph.deviceEnrollmentLimitConfiguration/limit ge 5"),
        owned(&[&d[0], &c.kiosk_plus]),
        "the default limit is 5"
    );
    // Booleans.
    assert_eq!(
        f("microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration/securityDeviceRequired eq true"),
        owned(&[&c.hello])
    );
    assert_eq!(
        f("microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration/securityDeviceRequired eq false"),
        owned(&[&d[2]])
    );
    // any / all over a collection of strings.
    assert_eq!(f("roleScopeTagIds/any(t: t eq '0')"), owned(&[&c.kiosk, &c.kiosk_plus, &c.esp]));
    assert_eq!(f("roleScopeTagIds/any(t:t eq '7') and roleScopeTagIds/any(x:x eq '0')"), owned(&[&c.kiosk_plus]));
    assert_eq!(f("roleScopeTagIds/any()"), owned(&[&c.kiosk, &c.kiosk_plus, &c.corp, &c.esp]));
    assert_eq!(f("not roleScopeTagIds/any()"), c.defaults_and(&[&c.hello]));
    assert_eq!(
        f("roleScopeTagIds/all(t: t eq '0')"),
        c.defaults_and(&[&c.kiosk, &c.hello, &c.esp]),
        "all() over an empty collection is true"
    );
    assert_eq!(
        f("roleScopeTagIds/all(t: t eq '0' or t eq '7') and roleScopeTagIds/any()"),
        owned(&[&c.kiosk, &c.kiosk_plus, &c.corp, &c.esp])
    );
    assert_eq!(f("roleScopeTagIds/any(t: t in ('5','7'))"), owned(&[&c.kiosk_plus, &c.corp]));
}

#[test]
fn filter_on_configurations() {
    check_configuration_filters(&Server::start());
}

/// The same answers when nothing is pushed down to SQL (README "How it runs": "never a
/// different answer").
#[test]
fn filter_on_configurations_evaluated_in_memory() {
    // One argument: the harness reads a bare "off" as `--auth off`.
    check_configuration_filters(&Server::start_with(&["--query-push-down=off"]));
}

#[test]
fn string_literals_escapes_and_percent_encoding() {
    let s = Server::start();
    let c = Configs::create(&s);
    let f = |raw_filter: &str| query_ids(&s, CFG, raw_filter);
    // '' inside a string literal is one quote (URL Conventions §5.1.1.6.1 / ABNF SQUOTE-in-string).
    assert_eq!(f("$filter=description eq 'it''s'"), owned(&[&c.kiosk]));
    // Fully percent-encoded, `$` included.
    assert_eq!(f("%24filter=description%20eq%20%27it%27%27s%27"), owned(&[&c.kiosk]));
    // `+` is a space; an encoded `%2B` is a plus.
    assert_eq!(f("$filter=displayName+eq+'Kiosk+Plus'"), owned(&[&c.kiosk_plus]));
    assert_eq!(f("$filter=description+eq+'A%2BB+devices'"), owned(&[&c.corp]));
    assert_eq!(f("$filter=description eq 'A+B devices'"), Vec::<String>::new(), "a raw + is a space");
    // `%` and `&` inside a value must be encoded; UTF-8 is percent-decoded.
    assert_eq!(f("$filter=description%20eq%20'50%25%20off%20%26%20more'"), owned(&[&c.hello]));
    assert_eq!(f("$filter=description eq 'Caf%C3%A9'"), owned(&[&c.esp]));
    assert_eq!(f("$filter=startswith(description,'Caf%C3%A9')"), owned(&[&c.esp]));
    assert_eq!(f("$filter=length(description) eq 4 and endswith(description,'%C3%A9')"), owned(&[&c.esp]));
    // Option names are case-insensitive; whitespace around tokens is free.
    assert_eq!(f("$FILTER=displayName   eq   'Kiosk'"), owned(&[&c.kiosk]));
    // Encoded quotes: `%27%27` inside a literal is one quote; a single one ends it.
    assert_eq!(f("$filter=contains(description,'%27%27')"), owned(&[&c.kiosk]));
    bad_query(&s, &format!("{CFG}?$filter=contains(description,'%27')"), &["unterminated", "position 21"]);
}

#[test]
fn dollar_is_optional_on_beta_and_required_on_v1() {
    // graph-behaviours.md "Paging": "On beta the `$` of query options is optional." On v1.0
    // Graph documents the `$` as required ("always include $ if using the v1 endpoint"): a
    // name without `$` is a custom query option (URL Conventions §5.2), which is ignored.
    let s = Server::start();
    let c = Configs::create(&s);
    assert_eq!(query_ids(&s, CFG, "filter=displayName eq 'Kiosk'"), owned(&[&c.kiosk]));
    assert_eq!(query_ids(&s, CFG, "Filter=startswith(displayName,'Ki')&select=id"), owned(&[&c.kiosk, &c.kiosk_plus]));
    let page = get_ok(&s, &format!("{CFG}?filter=priority gt 0&orderby=displayName desc&top=2&count=true"));
    assert_eq!(ids(&page), owned(&[&c.kiosk_plus, &c.kiosk]));
    assert_eq!(page["@odata.count"], 5);
    let expanded = get_ok(&s, &format!("{CFG}/{}?select=id&expand=assignments(select=id)", c.kiosk));
    assert_eq!(expanded["assignments"], json!([]));
    assert!(expanded.get("displayName").is_none(), "{expanded}");
    // A name that is no system option is a custom option, and ignored.
    assert_eq!(query_ids(&s, CFG, "foo=1&filter=displayName eq 'ESP'"), owned(&[&c.esp]));
    // v1.0: without `$` these are custom options and ignored; with `$` they apply.
    let v1_all = query_ids(&s, V1_CFG, "");
    assert_eq!(v1_all.len(), 9, "4 v1.0 defaults + 5 created");
    assert_eq!(query_ids(&s, V1_CFG, "filter=displayName eq 'Kiosk'"), v1_all);
    assert_eq!(query_ids(&s, V1_CFG, "top=1"), v1_all);
    assert_eq!(query_ids(&s, V1_CFG, "$filter=displayName eq 'Kiosk'"), owned(&[&c.kiosk]));
}

// --- $filter on assignments ---------------------------------------------------------------

#[test]
fn filter_on_assignments_by_target_type_and_assignment_filter() {
    let s = Server::start();
    let a = Assignments::create(&s);
    let p = a.path();
    let f = |filter: &str| filtered(&s, &p, filter);
    assert_eq!(f("isof(target,'microsoft.graph.exclusionGroupAssignmentTarget')"), a.pick(&[2, 6]));
    assert_eq!(f("isof(target,'%23microsoft.graph.exclusionGroupAssignmentTarget')"), a.pick(&[2, 6]));
    assert_eq!(f("isof(target,'microsoft.graph.groupAssignmentTarget')"), a.pick(&[1, 2, 6, 7]), "derived types too");
    assert_eq!(f("isof(target,microsoft.graph.allDevicesAssignmentTarget)"), a.pick(&[3]));
    assert_eq!(f("isof(target,'microsoft.graph.scopeTagGroupAssignmentTarget')"), a.pick(&[8]));
    assert_eq!(
        f("isof(target,'microsoft.graph.deviceAndAppManagementAssignmentTarget')"),
        a.pick(&[1, 2, 3, 4, 5, 6, 7, 8, 9])
    );
    assert_eq!(f("not isof(target,'microsoft.graph.groupAssignmentTarget')"), a.pick(&[3, 4, 5, 8, 9]));
    assert_eq!(f("cast(target,'microsoft.graph.groupAssignmentTarget') ne null"), a.pick(&[1, 2, 6, 7]));
    assert_eq!(
        f("cast(target,microsoft.graph.allLicensedUsersAssignmentTarget) eq null"),
        a.pick(&[1, 2, 3, 5, 6, 7, 8, 9])
    );
    // Paths into the complex target, with and without a type segment.
    assert_eq!(f("target/groupId eq 'g1'"), a.pick(&[1, 6]));
    assert_eq!(f("target/microsoft.graph.groupAssignmentTarget/groupId eq 'g1'"), a.pick(&[1, 6]));
    assert_eq!(f("target/microsoft.graph.exclusionGroupAssignmentTarget/groupId eq 'g1'"), a.pick(&[6]));
    assert_eq!(
        f("target/microsoft.graph.configurationManagerCollectionAssignmentTarget/collectionId eq 'c1'"),
        a.pick(&[5])
    );
    assert_eq!(
        f("target/microsoft.graph.scopeTagGroupAssignmentTarget/targetType eq 'device'"),
        a.pick(&[8]),
        "an enum of a derived complex type"
    );
    assert_eq!(f("target/groupId in ('g2','g3')"), a.pick(&[2, 7]));
    assert_eq!(f("startswith(target/groupId,'g')"), a.pick(&[1, 2, 6, 7]));
    assert_eq!(f("target/groupId eq null"), a.pick(&[3, 4, 5, 8, 9]));
    assert_eq!(
        f("target/groupId eq 'g1' and isof(target,'microsoft.graph.exclusionGroupAssignmentTarget')"),
        a.pick(&[6])
    );
    // The assignment-filter type, as a plain and as a qualified enum literal.
    assert_eq!(f("target/deviceAndAppManagementAssignmentFilterType eq 'include'"), a.pick(&[1]));
    assert_eq!(
        f(
            "target/deviceAndAppManagementAssignmentFilterType eq microsoft.graph.deviceAndAppManagementAssignmentFilterType'include'"
        ),
        a.pick(&[1])
    );
    assert_eq!(
        f(
            "target/deviceAndAppManagementAssignmentFilterType eq microsoft.graph.deviceAndAppManagementAssignmentFilterType'exclude'"
        ),
        a.pick(&[3, 7])
    );
    assert_eq!(f("target/deviceAndAppManagementAssignmentFilterType ne 'none'"), a.pick(&[1, 3, 7]));
    assert_eq!(f("target/deviceAndAppManagementAssignmentFilterType in ('include','exclude')"), a.pick(&[1, 3, 7]));
    assert_eq!(
        f("target/deviceAndAppManagementAssignmentFilterType gt 'none'"),
        a.pick(&[1, 3, 7]),
        "enums order by declaration"
    );
    assert_eq!(f("target/deviceAndAppManagementAssignmentFilterId eq 'f1'"), a.pick(&[1, 7]));
    assert_eq!(f("target/deviceAndAppManagementAssignmentFilterId eq null"), a.pick(&[2, 4, 5, 6, 8, 9]));
    // Entity properties: ids as quoted strings and as GUID literals; the source enum.
    assert_eq!(f(&format!("id eq '{}'", a.a[5])), a.pick(&[5]));
    assert_eq!(f(&format!("id eq {}", a.a[3])), a.pick(&[3]));
    assert_eq!(f("source eq 'direct'"), a.pick(&[1, 2, 3, 4, 5, 6, 7, 8, 9]));
    assert_eq!(f("sourceId eq null"), a.pick(&[1, 2, 3, 4, 5, 6, 7, 8, 9]));
}

/// Issue: "`cast(target,'microsoft.graph.groupAssignmentTarget')/groupId eq 'g1'`". OData.net
/// (the parser behind Graph) accepts a path after `cast(...)` (it parses `cast` as a
/// primary expression followed by `/segment`s) and binds it to the cast's type.
#[test]
fn cast_followed_by_a_property_path() {
    let s = Server::start();
    let a = Assignments::create(&s);
    let p = a.path();
    assert_eq!(
        filtered(&s, &p, "cast(target,'microsoft.graph.groupAssignmentTarget')/groupId eq 'g1'"),
        a.pick(&[1, 6])
    );
    assert_eq!(
        filtered(&s, &p, "cast(target,microsoft.graph.exclusionGroupAssignmentTarget)/groupId eq 'g1'"),
        a.pick(&[6])
    );
}

// --- $select, $expand, @odata.context --------------------------------------------------------

#[test]
fn select_including_properties_of_derived_types() {
    let s = Server::start();
    let c = Configs::create(&s);
    let base = &s.base;
    let page = get_ok(
        &s,
        &format!(
            "{CFG}?$select=displayName,microsoft.graph.deviceEnrollmentLimitConfiguration/limit&$filter=priority gt 0"
        ),
    );
    assert_eq!(
        page["@odata.context"],
        format!(
            "{base}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations(displayName,microsoft.graph.deviceEnrollmentLimitConfiguration/limit)"
        )
        .as_str()
    );
    let t = |n: &str| format!("#microsoft.graph.{n}");
    assert_eq!(
        page["value"],
        json!([
            {"@odata.type": t("deviceEnrollmentLimitConfiguration"), "displayName": "Kiosk", "limit": 3},
            {"@odata.type": t("deviceEnrollmentLimitConfiguration"), "displayName": "Kiosk Plus", "limit": 10},
            {"@odata.type": t("deviceEnrollmentPlatformRestrictionsConfiguration"), "displayName": "Corporate"},
            {"@odata.type": t("deviceEnrollmentWindowsHelloForBusinessConfiguration"), "displayName": "Hello"},
            {"@odata.type": t("windows10EnrollmentCompletionPageConfiguration"), "displayName": "ESP"},
        ])
    );
    // A derived property of another derived type, on one entity; and the key-in-parens form.
    let one = get_ok(
        &s,
        &format!(
            "{CFG}('{}')?$select=id,roleScopeTagIds,microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration/securityDeviceRequired",
            c.hello
        ),
    );
    assert_eq!(
        one,
        json!({
            "@odata.context": format!("{base}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations(id,roleScopeTagIds,microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration/securityDeviceRequired)/$entity"),
            "@odata.type": t("deviceEnrollmentWindowsHelloForBusinessConfiguration"),
            "id": c.hello,
            "roleScopeTagIds": [],
            "securityDeviceRequired": true,
        })
    );
    // $select on assignments: a complex property whole.
    let a = Assignments::create(&s);
    let page = get_ok(&s, &format!("{}?$select=target&$filter=target/groupId eq 'g3'", a.path()));
    assert_eq!(
        page,
        json!({
            "@odata.context": format!("{base}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('{}')/assignments(target)", a.config),
            "value": [{"target": {
                "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g3",
                "deviceAndAppManagementAssignmentFilterId": "f1", "deviceAndAppManagementAssignmentFilterType": "exclude"}}],
        })
    );
}

#[test]
fn expand_assignments_with_nested_select_filter_orderby_top() {
    let s = Server::start();
    let a = Assignments::create(&s);
    let base = &s.base;
    let cid = &a.config;
    let assignments_context =
        format!("{base}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('{cid}')/assignments");
    // Expanded items of the declared type carry no @odata.type (rulings.md 4).
    // On the collection, filtered to the one configuration.
    let page = get_ok(
        &s,
        &format!(
            "{CFG}?$filter=id eq '{cid}'&$select=id&$expand=assignments($select=id;$filter=isof(target,'microsoft.graph.exclusionGroupAssignmentTarget'))"
        ),
    );
    assert_eq!(page["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["value"][0],
        json!({
            "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration",
            "id": cid,
            "assignments@odata.context": assignments_context,
            "assignments": [{"id": a.a[2]}, {"id": a.a[6]}],
        })
    );
    // On the entity, with nested $orderby and $top.
    let one = get_ok(
        &s,
        &format!(
            "{CFG}/{cid}?$select=displayName&$expand=assignments($select=id;$filter=target/deviceAndAppManagementAssignmentFilterType ne 'none';$orderby=target/groupId desc;$top=2)"
        ),
    );
    assert_eq!(
        one["assignments"],
        json!([{"id": a.a[7]}, {"id": a.a[1]}]),
        "g3, then g1 (the allDevices target has no groupId and sorts last descending)"
    );
    assert_eq!(one["displayName"], "Targets");
    assert_eq!(one["assignments@odata.context"], assignments_context.as_str());
    // Nested $filter without $select keeps whole assignments, equal to the filtered list.
    let one = get_ok(&s, &format!("{CFG}/{cid}?$expand=assignments($filter=target/groupId eq 'g1')"));
    let listed = get_ok(&s, &format!("{}?$filter=target/groupId eq 'g1'", a.path()));
    assert_eq!(one["assignments"], listed["value"]);
    assert_eq!(ids(&json!({"value": one["assignments"]})), a.pick(&[1, 6]));
    assert_eq!(one["displayName"], "Targets", "no $select: the whole entity");
}

/// OData JSON Format §10.9: an expanded navigation property with a nested `$select` is
/// followed by the parenthesized selected properties in the context URL
/// (`Customers(Name,Orders(OrderID))`); empty parentheses only without a nested
/// `$select`/`$expand`.
#[test]
fn expand_context_names_the_nested_select() {
    let s = Server::start();
    let base = &s.base;
    let one = get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit?$select=id&$expand=assignments($select=id)"));
    assert_eq!(
        one["@odata.context"],
        format!("{base}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations(id,assignments(id))/$entity")
            .as_str()
    );
}

#[test]
fn expand_star_and_context_forms() {
    let s = Server::start();
    let base = &s.base;
    let a = Assignments::create(&s);
    let cid = &a.config;
    // `$expand=*` expands every navigation; contexts name them with `()`.
    let one = get_ok(&s, &format!("{CFG}('{cid}')?$select=id&$expand=*"));
    assert_eq!(
        one["@odata.context"],
        format!("{base}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations(id,assignments())/$entity")
            .as_str()
    );
    assert_eq!(ids(&json!({"value": one["assignments"]})), a.pick(&[1, 2, 3, 4, 5, 6, 7, 8, 9]));
    // A filter does not change the context; $select of a list does; an entity adds /$entity.
    let list = get_ok(&s, &format!("{}?$filter=target/groupId eq 'g2'", a.path()));
    assert_eq!(
        list["@odata.context"],
        format!("{base}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('{cid}')/assignments").as_str()
    );
    let one = get_ok(&s, &format!("{}('{}')?$select=id,target", a.path(), a.a[2]));
    assert_eq!(
        one["@odata.context"],
        format!(
            "{base}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('{cid}')/assignments(id,target)/$entity"
        )
        .as_str()
    );
    let v1 = get_ok(&s, &format!("{V1_CFG}?$filter=priority eq 0&$select=displayName"));
    assert_eq!(
        v1["@odata.context"],
        format!("{base}/v1.0/$metadata#deviceManagement/deviceEnrollmentConfigurations(displayName)").as_str()
    );
}

// --- $orderby, $top, $skip, $count, /$count ------------------------------------------------

#[test]
fn orderby_several_keys_asc_and_desc() {
    let s = Server::start();
    let c = Configs::create(&s);
    let mut defaults_by_id = c.defaults.clone();
    defaults_by_id.sort();
    let with_defaults = |first: &[&String]| {
        let mut v = owned(first);
        v.extend(defaults_by_id.iter().cloned());
        v
    };
    let o = |q: &str| query_ids(&s, CFG, &format!("$select=id&{q}"));
    assert_eq!(o("$orderby=displayName desc,id"), with_defaults(&[&c.kiosk_plus, &c.kiosk, &c.hello, &c.esp, &c.corp]));
    assert_eq!(o("$orderby=displayName desc,id asc"), o("$orderby=displayName desc,id"));
    let mut asc = defaults_by_id.clone();
    asc.extend(owned(&[&c.corp, &c.esp, &c.hello, &c.kiosk, &c.kiosk_plus]));
    assert_eq!(o("$orderby=displayName asc,id"), asc);
    assert_eq!(
        o("$orderby=priority desc,displayName,id"),
        with_defaults(&[&c.kiosk_plus, &c.corp, &c.esp, &c.hello, &c.kiosk])
    );
    assert_eq!(
        o("$orderby=createdDateTime desc,id"),
        with_defaults(&[&c.esp, &c.hello, &c.corp, &c.kiosk_plus, &c.kiosk])
    );
    // null sorts first ascending and last descending; code-point order.
    assert_eq!(
        o("$filter=priority gt 0&$orderby=description"),
        owned(&[&c.kiosk_plus, &c.hello, &c.corp, &c.esp, &c.kiosk])
    );
    assert_eq!(
        o("$filter=priority gt 0&$orderby=description desc"),
        owned(&[&c.kiosk, &c.esp, &c.corp, &c.hello, &c.kiosk_plus])
    );
    // A key that only runs in memory (tolower) and a key of a derived type.
    assert_eq!(
        o("$filter=priority gt 0&$orderby=tolower(displayName) desc"),
        owned(&[&c.kiosk_plus, &c.kiosk, &c.hello, &c.esp, &c.corp])
    );
    assert_eq!(
        o(
            "$filter=isof('microsoft.graph.deviceEnrollmentLimitConfiguration')&$orderby=microsoft.graph.deviceEnrollmentLimitConfiguration/limit desc"
        ),
        owned(&[&c.kiosk_plus, &c.defaults[0], &c.kiosk])
    );
    // On assignments: a path into the target, an enum (declaration order), then the id.
    let a = Assignments::create(&s);
    let by_id = |v: &[usize]| {
        let mut x = a.pick(v);
        x.sort();
        x
    };
    let mut want = a.pick(&[7, 2]);
    want.extend(by_id(&[1, 6]));
    want.extend(by_id(&[3, 4, 5, 8, 9]));
    assert_eq!(query_ids(&s, &a.path(), "$orderby=target/groupId desc,id"), want);
    let mut want = by_id(&[3, 7]);
    want.extend(a.pick(&[1]));
    want.extend(by_id(&[2, 4, 5, 6, 8, 9]));
    assert_eq!(query_ids(&s, &a.path(), "$orderby=target/deviceAndAppManagementAssignmentFilterType desc,id"), want);
}

#[test]
fn top_and_skip_with_next_links() {
    let s = Server::start();
    let c = Configs::create(&s);
    let all = c.defaults_and(&[&c.kiosk, &c.kiosk_plus, &c.corp, &c.hello, &c.esp]);
    assert_eq!(query_ids(&s, CFG, ""), all);
    // Default order (keyset): $skip then $top pages; the nextLink drops $skip.
    let page = get_ok(&s, &format!("{CFG}?$select=id&$top=4&$skip=3"));
    assert_eq!(ids(&page), all[3..7]);
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with(&format!("{}{CFG}?", s.base)), "{next}");
    assert!(next.contains("$skiptoken=") && !next.contains("$skip=") && next.contains("$top=4"), "{next}");
    let page = get_abs(&s, next);
    assert_eq!(ids(&page), all[7..10]);
    assert!(page.get("@odata.nextLink").is_none());
    assert_eq!(query_ids(&s, CFG, "$skip=10"), Vec::<String>::new());
    assert_eq!(query_ids(&s, CFG, "$skip=9"), all[9..]);
    // With $orderby (offset tokens): three pages of 3, 3 and 2.
    let mut sorted = owned(&[&c.kiosk_plus, &c.kiosk, &c.hello, &c.esp, &c.corp]);
    let mut defaults_by_id = c.defaults.clone();
    defaults_by_id.sort();
    sorted.extend(defaults_by_id);
    let page = get_ok(&s, &format!("{CFG}?$orderby=displayName desc,id&$top=3&$skip=2&$select=id"));
    assert_eq!(ids(&page), sorted[2..5]);
    let next = page["@odata.nextLink"].as_str().unwrap().to_owned();
    assert!(next.contains("$orderby=") && !next.contains("$skip="), "{next}");
    let page = get_abs(&s, &next);
    assert_eq!(ids(&page), sorted[5..8]);
    let page = get_abs(&s, page["@odata.nextLink"].as_str().unwrap());
    assert_eq!(ids(&page), sorted[8..10]);
    assert!(page.get("@odata.nextLink").is_none());
    // With a filter, on assignments.
    let a = Assignments::create(&s);
    let page = get_ok(&s, &format!("{}?$top=2&$filter=isof(target,'microsoft.graph.groupAssignmentTarget')", a.path()));
    assert_eq!(ids(&page), a.pick(&[1, 2]));
    let page = get_abs(&s, page["@odata.nextLink"].as_str().unwrap());
    assert_eq!(ids(&page), a.pick(&[6, 7]));
    assert!(page.get("@odata.nextLink").is_none(), "exactly two pages: {page}");
}

#[test]
fn count_of_the_filtered_set_and_the_count_segment() {
    let s = Server::start();
    let c = Configs::create(&s);
    // @odata.count is the size of the filtered set, not of the page, on every page.
    let page = get_ok(&s, &format!("{CFG}?$count=true&$filter=priority eq 0&$top=2&$select=id"));
    assert_eq!(page["@odata.count"], 5);
    assert_eq!(ids(&page), c.defaults[..2]);
    let page = get_abs(&s, page["@odata.nextLink"].as_str().unwrap());
    assert_eq!(page["@odata.count"], 5);
    assert_eq!(ids(&page), c.defaults[2..4]);
    let page = get_ok(&s, &format!("{CFG}?$count=true&$filter=startswith(displayName,'Ki')"));
    assert_eq!(page["@odata.count"], 2);
    let page = get_ok(&s, &format!("{CFG}?$count=true&$filter=tolower(displayName) eq 'kiosk'"));
    assert_eq!(page["@odata.count"], 1, "a filter evaluated in memory");
    let page = get_ok(&s, &format!("{CFG}?$count=true&$orderby=displayName&$top=1&$skip=3"));
    assert_eq!(page["@odata.count"], 10);
    assert!(get_ok(&s, &format!("{CFG}?$count=false")).get("@odata.count").is_none());
    // /$count: a bare number as text/plain; it takes $filter.
    let r = s.get(&format!("{CFG}/$count?$filter=startswith(displayName,'Ki')"));
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(r.text().unwrap(), "2");
    assert_eq!(count_segment(&s, CFG, ""), "10");
    assert_eq!(count_segment(&s, CFG, "$filter=tolower(displayName) eq 'kiosk'"), "1");
    assert_eq!(count_segment(&s, CFG, "$filter=roleScopeTagIds/any(t: t eq '0')"), "3");
    assert_eq!(count_segment(&s, CFG, "filter=priority eq 0"), "5", "beta: without $");
    assert_eq!(count_segment(&s, V1_CFG, "$filter=priority eq 0"), "4");
    let a = Assignments::create(&s);
    assert_eq!(count_segment(&s, &a.path(), "$filter=isof(target,'microsoft.graph.groupAssignmentTarget')"), "4");
    assert_eq!(count_segment(&s, &a.path(), ""), "9");
    let page = get_ok(&s, &format!("{}?$count=true&$top=1&$filter=target/groupId ne null", a.path()));
    assert_eq!(page["@odata.count"], 4);
    assert_eq!(ids(&page), a.pick(&[1]));
}

// --- keys ----------------------------------------------------------------------------------

#[test]
fn key_syntax_both_forms() {
    let s = Server::start();
    let c = Configs::create(&s);
    let a = Assignments::create(&s);
    let pairs = [
        (format!("{CFG}/{}", c.kiosk), format!("{CFG}('{}')", c.kiosk)),
        (format!("{CFG}/{}", c.kiosk), format!("{CFG}(%27{}%27)", c.kiosk)),
        (format!("{V1_CFG}/{}", c.hello), format!("{V1_CFG}('{}')", c.hello)),
        (
            format!("{CFG}/{}/assignments/{}", a.config, a.a[3]),
            format!("{CFG}('{}')/assignments('{}')", a.config, a.a[3]),
        ),
        (format!("{CFG}/{}/assignments", a.config), format!("{CFG}('{}')/assignments", a.config)),
        (
            format!("{CFG}/{}?$select=displayName&$expand=assignments($select=id)", a.config),
            format!("{CFG}('{}')?$select=displayName&$expand=assignments($select=id)", a.config),
        ),
    ];
    for (slash, parens) in &pairs {
        let x = get_ok(&s, slash);
        assert_eq!(x, get_ok(&s, parens), "{slash} vs {parens}");
    }
    let one = get_ok(&s, &format!("{CFG}('{}')", c.kiosk));
    assert_eq!(one["id"], c.kiosk.as_str());
    assert_eq!(
        one["@odata.context"],
        format!("{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations/$entity", s.base).as_str()
    );
    let one = get_ok(&s, &format!("{CFG}('{}')/assignments('{}')", a.config, a.a[3]));
    assert_eq!(one["target"]["@odata.type"], "#microsoft.graph.allDevicesAssignmentTarget");
    // An unknown key is 404 in both forms.
    expect_error(s.get(&format!("{CFG}/nope")), 404, "ResourceNotFound");
    expect_error(s.get(&format!("{CFG}('nope')")), 404, "ResourceNotFound");
}

// --- v1.0 ----------------------------------------------------------------------------------

#[test]
fn v1_configurations_and_assignments() {
    let s = Server::start();
    let c = Configs::create(&s);
    let base = &s.base;
    // v1.0 has no windowsRestore type: its default is not in the v1.0 view (rulings.md 6).
    let d: Vec<String> = c.defaults[..4].to_vec();
    let f = |filter: &str| filtered(&s, V1_CFG, filter);
    assert_eq!(f("priority eq 0"), d);
    assert_eq!(f("displayName eq 'Kiosk'"), owned(&[&c.kiosk]));
    assert_eq!(f("startswith(displayName,'Ki') or displayName eq 'ESP'"), owned(&[&c.kiosk, &c.kiosk_plus, &c.esp]));
    assert_eq!(
        f("isof('microsoft.graph.deviceEnrollmentLimitConfiguration')"),
        owned(&[&d[0], &c.kiosk, &c.kiosk_plus])
    );
    assert_eq!(f("microsoft.graph.deviceEnrollmentLimitConfiguration/limit lt 5"), owned(&[&c.kiosk]));
    assert_eq!(
        f("createdDateTime ge 2000-01-01T00:00:00Z and description ne null"),
        owned(&[&c.kiosk, &c.corp, &c.hello, &c.esp])
    );
    assert_eq!(f("not (displayName in ('Kiosk','Kiosk Plus')) and priority gt 0"), owned(&[&c.corp, &c.hello, &c.esp]));
    assert_eq!(
        query_ids(&s, V1_CFG, "$filter=priority gt 0&$orderby=displayName desc&$top=2&$skip=1"),
        owned(&[&c.kiosk, &c.hello])
    );
    let page = get_ok(
        &s,
        &format!(
            "{V1_CFG}?$select=displayName,microsoft.graph.deviceEnrollmentLimitConfiguration/limit&$filter=startswith(displayName,'Ki')&$count=true"
        ),
    );
    assert_eq!(
        page,
        json!({
            "@odata.context": format!("{base}/v1.0/$metadata#deviceManagement/deviceEnrollmentConfigurations(displayName,microsoft.graph.deviceEnrollmentLimitConfiguration/limit)"),
            "@odata.count": 2,
            "value": [
                {"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Kiosk", "limit": 3},
                {"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Kiosk Plus", "limit": 10},
            ],
        })
    );
    // Assignments through v1.0.
    let a = Assignments::create(&s);
    let p = format!("{V1_CFG}/{}/assignments", a.config);
    assert_eq!(filtered(&s, &p, "isof(target,'microsoft.graph.exclusionGroupAssignmentTarget')"), a.pick(&[2, 6]));
    assert_eq!(filtered(&s, &p, "target/groupId eq 'g1'"), a.pick(&[1, 6]));
    assert_eq!(
        filtered(&s, &p, "target/microsoft.graph.configurationManagerCollectionAssignmentTarget/collectionId eq 'c1'"),
        a.pick(&[5])
    );
    assert_eq!(filtered(&s, &p, &format!("id eq '{}'", a.a[4])), a.pick(&[4]));
    assert_eq!(count_segment(&s, &p, "$filter=target/groupId ne null"), "4");
    let one = get_ok(
        &s,
        &format!("{V1_CFG}('{}')?$select=id&$expand=assignments($select=id;$filter=target/groupId eq 'g3')", a.config),
    );
    assert_eq!(one["assignments"], json!([{"id": a.a[7]}]));
    assert_eq!(
        one["assignments@odata.context"],
        format!("{base}/v1.0/$metadata#deviceManagement/deviceEnrollmentConfigurations('{}')/assignments", a.config)
            .as_str()
    );
    // What v1.0 does not have is unknown there (rulings.md 6), and named.
    bad_query(
        &s,
        &format!("{V1_CFG}?$filter=roleScopeTagIds/any(t: t eq '0')"),
        &["'roleScopeTagIds'", "'microsoft.graph.deviceEnrollmentConfiguration'"],
    );
    bad_query(
        &s,
        &format!("{p}?$filter=target/deviceAndAppManagementAssignmentFilterType eq 'include'"),
        &["'deviceAndAppManagementAssignmentFilterType'", "'microsoft.graph.deviceAndAppManagementAssignmentTarget'"],
    );
    bad_query(
        &s,
        &format!("{p}?$filter=source eq 'direct'"),
        &["'source'", "'microsoft.graph.enrollmentConfigurationAssignment'"],
    );
    bad_query(
        &s,
        &format!("{V1_CFG}?$filter=isof('microsoft.graph.windowsRestoreDeviceEnrollmentConfiguration')"),
        &["'microsoft.graph.windowsRestoreDeviceEnrollmentConfiguration'"],
    );
    bad_query(&s, &format!("{V1_CFG}?$select=roleScopeTagIds"), &["'roleScopeTagIds'"]);
}

// --- Apple and Autopilot -------------------------------------------------------------------

#[test]
fn apple_profiles_and_their_assignments() {
    let s = Server::start();
    let base = &s.base;
    let mk = |b: Value| s.create(APPLE, &b)["id"].as_str().unwrap().to_owned();
    let byod = mk(json!({"displayName": "iOS BYOD", "platform": "iOS", "description": "byod"}));
    let mac = mk(json!({"displayName": "Mac corp", "platform": "macOS"}));
    let ipad = mk(json!({"displayName": "iPad shared", "platform": "iOS", "description": "it's shared"}));
    let f = |filter: &str| filtered(&s, APPLE, filter);
    assert_eq!(f("platform eq 'iOS'"), owned(&[&byod, &ipad]));
    assert_eq!(f("platform eq microsoft.graph.devicePlatformType'macOS'"), owned(&[&mac]));
    assert_eq!(f("not (platform eq 'iOS')"), owned(&[&mac]));
    assert_eq!(f("priority ge 2"), owned(&[&mac, &ipad]));
    assert_eq!(f("startswith(displayName,'i')"), owned(&[&byod, &ipad]));
    assert_eq!(f("tolower(displayName) eq 'mac corp'"), owned(&[&mac]));
    assert_eq!(f("description eq null"), owned(&[&mac]));
    assert_eq!(f("description eq 'it''s shared'"), owned(&[&ipad]));
    assert_eq!(f("displayName in ('Mac corp','iOS BYOD')"), owned(&[&byod, &mac]));
    assert_eq!(f("createdDateTime gt 2000-01-01T00:00:00Z and length(displayName) eq 8"), owned(&[&byod, &mac]));
    assert_eq!(f(&format!("id eq {ipad}")), owned(&[&ipad]));
    assert_eq!(query_ids(&s, APPLE, "$orderby=displayName desc"), owned(&[&ipad, &byod, &mac]));
    assert_eq!(query_ids(&s, APPLE, "$orderby=platform,priority desc"), owned(&[&ipad, &byod, &mac]));
    let page = get_ok(&s, &format!("{APPLE}?$top=2&$count=true&$select=displayName,platform"));
    assert_eq!(page["@odata.count"], 3);
    assert_eq!(
        page["@odata.context"],
        format!("{base}/beta/$metadata#deviceManagement/appleUserInitiatedEnrollmentProfiles(displayName,platform)")
            .as_str()
    );
    // Items of the collection's exact declared type: no @odata.type (rulings.md 4).
    assert_eq!(
        page["value"],
        json!([{"displayName": "iOS BYOD", "platform": "iOS"}, {"displayName": "Mac corp", "platform": "macOS"}])
    );
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert_eq!(get_abs(&s, next)["value"], json!([{"displayName": "iPad shared", "platform": "iOS"}]));
    assert_eq!(count_segment(&s, APPLE, "$filter=platform eq 'iOS'"), "2");
    // Assignments of a profile.
    let ap = format!("{APPLE}/{byod}/assignments");
    let mut a = Vec::new();
    for t in [
        json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1",
            "deviceAndAppManagementAssignmentFilterType": "include", "deviceAndAppManagementAssignmentFilterId": "f1"}),
        json!({"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "g2"}),
        json!({"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}),
    ] {
        a.push(s.create(&ap, &json!({"target": t}))["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(filtered(&s, &ap, "isof(target,'microsoft.graph.exclusionGroupAssignmentTarget')"), owned(&[&a[1]]));
    assert_eq!(filtered(&s, &ap, "isof(target,'microsoft.graph.groupAssignmentTarget')"), a[..2]);
    assert_eq!(filtered(&s, &ap, "target/groupId eq 'g1'"), owned(&[&a[0]]));
    assert_eq!(
        filtered(
            &s,
            &ap,
            "target/deviceAndAppManagementAssignmentFilterType eq microsoft.graph.deviceAndAppManagementAssignmentFilterType'include'"
        ),
        owned(&[&a[0]])
    );
    assert_eq!(filtered(&s, &ap, "target/groupId eq null"), owned(&[&a[2]]));
    assert_eq!(count_segment(&s, &ap, "$filter=target/groupId ne null"), "2");
    assert_eq!(query_ids(&s, &ap, "$orderby=target/groupId desc"), owned(&[&a[1], &a[0], &a[2]]));
    let page = get_ok(
        &s,
        &format!(
            "{APPLE}?$filter=platform eq 'iOS'&$select=id&$expand=assignments($select=id;$filter=target/groupId eq 'g2')"
        ),
    );
    assert_eq!(
        page["value"],
        json!([
            {"id": byod,
             "assignments@odata.context": format!("{base}/beta/$metadata#deviceManagement/appleUserInitiatedEnrollmentProfiles('{byod}')/assignments"),
             "assignments": [{"id": a[1]}]},
            {"id": ipad,
             "assignments@odata.context": format!("{base}/beta/$metadata#deviceManagement/appleUserInitiatedEnrollmentProfiles('{ipad}')/assignments"),
             "assignments": []},
        ])
    );
    assert_eq!(
        get_ok(&s, &format!("{APPLE}('{byod}')/assignments('{}')", a[2])),
        get_ok(&s, &format!("{ap}/{}", a[2]))
    );
}

/// Three Autopilot profiles (two derived types), their assignments, and three devices, two
/// of them bound to the first profile.
struct Autopilot {
    p: Vec<String>,
    /// Assignments of p[0]: group g1, exclusion g2, all devices.
    a: Vec<String>,
    d: Vec<String>,
}

impl Autopilot {
    fn create(s: &Server) -> Autopilot {
        let mut p = Vec::new();
        for b in [
            json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "AAD kiosk",
                "extractHardwareHash": true, "roleScopeTagIds": ["0"], "description": "kiosk"}),
            json!({"@odata.type": "#microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile", "displayName": "Hybrid",
                "hybridAzureADJoinSkipConnectivityCheck": true, "roleScopeTagIds": ["0", "5"]}),
            json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "AAD shared",
                "roleScopeTagIds": [], "deviceNameTemplate": "SH-%SERIAL%"}),
        ] {
            p.push(s.create(PROFILES, &b)["id"].as_str().unwrap().to_owned());
        }
        let mut a = Vec::new();
        for t in [
            group("g1"),
            json!({"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "g2"}),
            json!({"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}),
        ] {
            let made = s.create(&format!("{PROFILES}/{}/assignments", p[0]), &json!({"target": t}));
            a.push(made["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(a[0], format!("{}_g1_0", p[0]), "graph-behaviours.md: {{profileId}}_{{groupId}}_0");
        let mut d = Vec::new();
        for b in [
            json!({"serialNumber": "SN-A", "groupTag": "kiosk", "displayName": "dev a"}),
            json!({"serialNumber": "SN-B", "groupTag": "lab"}),
            json!({"serialNumber": "SN-C"}),
        ] {
            d.push(s.create(DEVICES, &b)["id"].as_str().unwrap().to_owned());
        }
        expect_empty_200(s.post(&format!("{PROFILES}/{}/assign", p[0]), &json!({"deviceIds": [d[0], d[1]]})));
        Autopilot { p, a, d }
    }
}

#[test]
fn autopilot_profiles_and_their_assignments() {
    let s = Server::start();
    let base = &s.base;
    let x = Autopilot::create(&s);
    let p = &x.p;
    let f = |filter: &str| filtered(&s, PROFILES, filter);
    assert_eq!(f("isof('microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile')"), owned(&[&p[1]]));
    assert_eq!(f("isof('microsoft.graph.azureADWindowsAutopilotDeploymentProfile')"), owned(&[&p[0], &p[2]]));
    assert_eq!(f("extractHardwareHash eq true"), owned(&[&p[0]]));
    assert_eq!(f("extractHardwareHash eq false"), owned(&[&p[1], &p[2]]));
    assert_eq!(
        f(
            "microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile/hybridAzureADJoinSkipConnectivityCheck eq true"
        ),
        owned(&[&p[1]])
    );
    assert_eq!(f("roleScopeTagIds/any(t: t eq '5')"), owned(&[&p[1]]));
    assert_eq!(f("roleScopeTagIds/any(t: t eq '0')"), owned(&[&p[0], &p[1]]));
    assert_eq!(f("roleScopeTagIds/all(t: t eq '0')"), owned(&[&p[0], &p[2]]));
    assert_eq!(f("deviceType eq 'windowsPc'"), p.clone());
    assert_eq!(f("deviceNameTemplate eq 'SH-%25SERIAL%25'"), owned(&[&p[2]]));
    assert_eq!(f("startswith(displayName,'AAD') and description eq null"), owned(&[&p[2]]));
    assert_eq!(query_ids(&s, PROFILES, "$orderby=displayName desc"), owned(&[&p[1], &p[2], &p[0]]));
    let page = get_ok(
        &s,
        &format!(
            "{PROFILES}?$select=displayName,microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile/hybridAzureADJoinSkipConnectivityCheck&$filter=roleScopeTagIds/any()"
        ),
    );
    assert_eq!(
        page["value"],
        json!([
            {"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "AAD kiosk"},
            {"@odata.type": "#microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile", "displayName": "Hybrid",
             "hybridAzureADJoinSkipConnectivityCheck": true},
        ])
    );
    // Assignments.
    let ap = format!("{PROFILES}/{}/assignments", p[0]);
    assert_eq!(filtered(&s, &ap, "target/groupId eq 'g1'"), owned(&[&x.a[0]]));
    assert_eq!(filtered(&s, &ap, "isof(target,'microsoft.graph.exclusionGroupAssignmentTarget')"), owned(&[&x.a[1]]));
    assert_eq!(filtered(&s, &ap, &format!("sourceId eq '{}' and source eq 'direct'", p[0])), x.a);
    assert_eq!(filtered(&s, &ap, &format!("id eq '{}_g2_0'", p[0])), owned(&[&x.a[1]]));
    assert_eq!(count_segment(&s, &ap, "$filter=target/groupId ne null"), "2");
    let page = get_ok(&s, &format!("{ap}?$top=2&$count=true&$select=id"));
    assert_eq!((ids(&page), &page["@odata.count"]), (x.a[..2].to_vec(), &json!(3)));
    assert_eq!(ids(&get_abs(&s, page["@odata.nextLink"].as_str().unwrap())), x.a[2..]);
    let one = get_ok(
        &s,
        &format!(
            "{PROFILES}('{}')?$select=id&$expand=assignments($select=id;$filter=isof(target,'microsoft.graph.allDevicesAssignmentTarget'))",
            p[0]
        ),
    );
    assert_eq!(
        one,
        json!({
            "@odata.context": format!("{base}/beta/$metadata#deviceManagement/windowsAutopilotDeploymentProfiles(id,assignments(id))/$entity"),
            "@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile",
            "id": p[0],
            "assignments@odata.context": format!("{base}/beta/$metadata#deviceManagement/windowsAutopilotDeploymentProfiles('{}')/assignments", p[0]),
            "assignments": [{"id": x.a[2]}],
        })
    );
    assert_eq!(
        get_ok(&s, &format!("{PROFILES}('{}')/assignments('{}')", p[0], x.a[0])),
        get_ok(&s, &format!("{ap}/{}", x.a[0]))
    );
}

#[test]
fn autopilot_devices_and_their_profile() {
    let s = Server::start();
    let base = &s.base;
    let x = Autopilot::create(&s);
    let d = &x.d;
    let f = |filter: &str| filtered(&s, DEVICES, filter);
    assert_eq!(f("groupTag eq 'kiosk'"), owned(&[&d[0]]));
    assert_eq!(f("groupTag eq null"), owned(&[&d[2]]));
    assert_eq!(f("groupTag ne null"), d[..2]);
    assert_eq!(f("startswith(serialNumber,'SN-')"), d.clone());
    assert_eq!(f("serialNumber in ('SN-A','SN-C')"), owned(&[&d[0], &d[2]]));
    assert_eq!(f("enrollmentState eq 'unknown'"), d.clone());
    assert_eq!(f("deploymentProfileAssignedDateTime gt 0001-01-01T00:00:00Z"), d[..2], "set by assign");
    assert_eq!(f("lastContactedDateTime eq 0001-01-01T00:00:00Z"), d.clone());
    assert_eq!(f(&format!("id eq {}", d[1])), owned(&[&d[1]]));
    assert_eq!(f("displayName eq 'dev a' or tolower(groupTag) eq 'lab'"), d[..2]);
    assert_eq!(query_ids(&s, DEVICES, "$orderby=serialNumber desc"), owned(&[&d[2], &d[1], &d[0]]));
    assert_eq!(count_segment(&s, DEVICES, "$filter=groupTag ne null"), "2");
    // $expand of the single-valued deploymentProfile, with a nested $select.
    let page = get_ok(&s, &format!("{DEVICES}?$select=serialNumber&$expand=deploymentProfile($select=displayName)"));
    assert_eq!(
        page["@odata.context"],
        format!(
            "{base}/beta/$metadata#deviceManagement/windowsAutopilotDeviceIdentities(serialNumber,deploymentProfile(displayName))"
        )
        .as_str()
    );
    // Devices (the declared type exactly) carry no @odata.type as items; the expanded
    // profile, of a derived type, does (rulings.md 4).
    let prof =
        json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "AAD kiosk"});
    assert_eq!(
        page["value"],
        json!([
            {"serialNumber": "SN-A", "deploymentProfile": prof},
            {"serialNumber": "SN-B", "deploymentProfile": prof},
            {"serialNumber": "SN-C", "deploymentProfile": null},
        ])
    );
    // Through the device's profile.
    let via = format!("{DEVICES}('{}')/deploymentProfile", d[0]);
    assert_eq!(get_ok(&s, &format!("{via}?$select=displayName"))["displayName"], "AAD kiosk");
    assert_eq!(filtered(&s, &format!("{via}/assignments"), "target/groupId eq 'g1'"), owned(&[&x.a[0]]));
    assert_eq!(
        filtered(
            &s,
            &format!("{DEVICES}/{}/deploymentProfile/assignments", d[1]),
            "isof(target,'microsoft.graph.groupAssignmentTarget')"
        ),
        x.a[..2]
    );
    // The profile's assignedDevices: the devices bound to it (rulings.md 5); what works today.
    let nav = format!("{PROFILES}/{}/assignedDevices", x.p[0]);
    assert_eq!(query_ids(&s, &nav, "$select=id"), d[..2]);
    // A reverse list's items are of its declared type: no @odata.type (rulings.md 4).
    let listed = get_ok(&s, &nav);
    assert!(listed["value"].as_array().unwrap().iter().all(|d| d.get("@odata.type").is_none()), "{listed}");
    assert_eq!(query_ids(&s, &nav, "$orderby=serialNumber desc"), owned(&[&d[1], &d[0]]));
    assert_eq!(filtered(&s, &nav, "tolower(groupTag) eq 'lab'"), owned(&[&d[1]]));
    assert_eq!(get_ok(&s, &format!("{nav}?$count=true"))["@odata.count"], 2);
    assert_eq!(query_ids(&s, &format!("{PROFILES}/{}/assignedDevices", x.p[1]), ""), Vec::<String>::new());
}

#[test]
fn assigned_devices_honour_filter_top_and_skip() {
    let s = Server::start();
    let x = Autopilot::create(&s);
    let nav = format!("{PROFILES}/{}/assignedDevices", x.p[0]);
    assert_eq!(filtered(&s, &nav, "groupTag eq 'lab'"), owned(&[&x.d[1]]));
    assert_eq!(filtered(&s, &nav, "startswith(serialNumber,'SN-A')"), owned(&[&x.d[0]]));
    let page = get_ok(&s, &format!("{nav}?$top=1&$count=true&$filter=groupTag ne null"));
    assert_eq!(ids(&page), owned(&[&x.d[0]]));
    assert_eq!(page["@odata.count"], 2);
    assert_eq!(ids(&get_abs(&s, page["@odata.nextLink"].as_str().unwrap())), owned(&[&x.d[1]]));
    assert_eq!(query_ids(&s, &nav, "$skip=1"), owned(&[&x.d[1]]));
}

#[test]
fn assigned_devices_count_segment() {
    let s = Server::start();
    let x = Autopilot::create(&s);
    let nav = format!("{PROFILES}/{}/assignedDevices", x.p[0]);
    assert_eq!(count_segment(&s, &nav, ""), "2");
    assert_eq!(count_segment(&s, &nav, "$filter=groupTag eq 'kiosk'"), "1");
}

#[test]
fn expand_assigned_devices() {
    let s = Server::start();
    let x = Autopilot::create(&s);
    let one = get_ok(&s, &format!("{PROFILES}/{}?$select=id&$expand=assignedDevices($select=id)", x.p[0]));
    assert_eq!(ids(&json!({"value": one["assignedDevices"]})), x.d[..2]);
    let all = get_ok(&s, &format!("{PROFILES}?$select=id&$expand=*"));
    assert_eq!(ids(&json!({"value": all["value"][0]["assignedDevices"]})), x.d[..2]);
}

// --- errors --------------------------------------------------------------------------------

#[test]
fn bad_queries_are_400_and_name_the_problem() {
    let s = Server::start();
    let a = Assignments::create(&s);
    let ap = a.path();
    let cfg_type = "'microsoft.graph.deviceEnrollmentConfiguration'";
    let cases: Vec<(String, Vec<&str>)> = vec![
        // Unknown properties, naming the property and the type.
        (format!("{CFG}?$filter=foo eq 'x'"), vec!["'foo'", cfg_type]),
        (format!("{CFG}?$filter=displayName eq 'x' or nope eq 1"), vec!["'nope'", cfg_type]),
        (format!("{CFG}?$select=noSuchProperty"), vec!["'noSuchProperty'", cfg_type]),
        (
            format!("{CFG}?$select=microsoft.graph.deviceEnrollmentLimitConfiguration/nope"),
            vec!["'nope'", "'microsoft.graph.deviceEnrollmentLimitConfiguration'"],
        ),
        (format!("{CFG}?$orderby=nope desc"), vec!["'nope'", cfg_type]),
        (format!("{CFG}?$expand=nope"), vec!["'nope'", cfg_type]),
        (
            format!("{CFG}?$expand=assignments($filter=nope eq 1)"),
            vec!["'nope'", "'microsoft.graph.enrollmentConfigurationAssignment'"],
        ),
        (format!("{CFG}/{TENANT}_DefaultLimit?$select=nope"), vec!["'nope'"]),
        (
            format!("{ap}?$filter=target/nope eq 'x'"),
            vec!["'nope'", "'microsoft.graph.deviceAndAppManagementAssignmentTarget'"],
        ),
        (format!("{CFG}?$filter=roleScopeTagIds/any(t: t/x eq '0')"), vec!["'x'", "'Edm.String'"]),
        (format!("{APPLE}?$filter=nope eq 1"), vec!["'nope'", "'microsoft.graph.appleUserInitiatedEnrollmentProfile'"]),
        (format!("{DEVICES}?$orderby=nope"), vec!["'nope'", "'microsoft.graph.windowsAutopilotDeviceIdentity'"]),
        (
            format!("{PROFILES}?$filter=nope eq 1"),
            vec!["'nope'", "'microsoft.graph.windowsAutopilotDeploymentProfile'"],
        ),
        // Syntax: the position of the unexpected token.
        (format!("{CFG}?$filter=displayName eqq 'x'"), vec!["position 12", "displayName eqq 'x'"]),
        (format!("{CFG}?$filter=displayName eq 'x' and"), vec!["position 22"]),
        (format!("{CFG}?$filter=displayName eq"), vec!["position 14"]),
        (format!("{CFG}?$filter=displayName eq 'x')"), vec!["position 18"]),
        (format!("{CFG}?$filter=((displayName eq 'x')"), vec!["position 21"]),
        (format!("{CFG}?$filter=displayName eq 'unterminated"), vec!["unterminated", "position 15"]),
        (format!("{CFG}?$filter=@p1 eq 'x'"), vec!["'@'", "position 0"]),
        (format!("{CFG}?$orderby=displayName sideways"), vec!["position 12"]),
        (format!("{ap}?$filter=cast(target,'microsoft.graph.groupAssignmentTarget') eq"), vec!["position"]),
        // Functions: unknown ones and wrong arguments, by name.
        (format!("{CFG}?$filter=frob(displayName)"), vec!["'frob'"]),
        (format!("{CFG}?$filter=startswith(displayName)"), vec!["'startswith'"]),
        (format!("{CFG}?$filter=startswith(displayName,1)"), vec!["'startswith'"]),
        (format!("{CFG}?$filter=length(displayName,'x') eq 1"), vec!["'length'"]),
        // Types.
        (format!("{CFG}?$filter=displayName eq 1"), vec!["'Edm.String'", "'Edm.Int32'", "'Equal'"]),
        (format!("{CFG}?$filter=roleScopeTagIds/any(t: t eq 1)"), vec!["'Edm.String'", "'Edm.Int32'"]),
        (format!("{CFG}?$filter=displayName"), vec!["boolean"]),
        (format!("{CFG}?$filter=deviceEnrollmentConfigurationType eq 'bogus'"), vec!["'bogus'"]),
        (format!("{ap}?$filter=target/deviceAndAppManagementAssignmentFilterType eq 'sometimes'"), vec!["'sometimes'"]),
        (format!("{CFG}?$filter=isof('microsoft.graph.nope')"), vec!["'microsoft.graph.nope'"]),
        (format!("{ap}?$filter=isof(target,'microsoft.graph.nope')"), vec!["'microsoft.graph.nope'"]),
        (
            format!("{ap}?$filter=cast(target,'microsoft.graph.deviceEnrollmentLimitConfiguration') ne null"),
            vec![
                "'microsoft.graph.deviceEnrollmentLimitConfiguration'",
                "'microsoft.graph.deviceAndAppManagementAssignmentTarget'",
            ],
        ),
        (format!("{CFG}?$filter=isof(target,'microsoft.graph.groupAssignmentTarget')"), vec!["'target'", cfg_type]),
        (format!("{CFG}?$expand=displayName"), vec!["'displayName'"]),
        // System query options: unknown, repeated, bad values.
        (format!("{CFG}?$foo=1"), vec!["'$foo'"]),
        (format!("{CFG}?$apply=groupby((displayName))"), vec!["'$apply'"]),
        (format!("{CFG}?$expand=assignments($foo=1)"), vec!["'$foo'"]),
        (format!("{V1_CFG}?$foo=1"), vec!["'$foo'"]),
        (format!("{CFG}?$top=1&$top=2"), vec!["'$top'", "more than once"]),
        (format!("{CFG}?$filter=priority eq 0&filter=priority eq 1"), vec!["'$filter'", "more than once"]),
        (format!("{CFG}?$top=-1"), vec!["'-1'", "$top"]),
        (format!("{CFG}?$top=abc"), vec!["'abc'", "$top"]),
        (format!("{CFG}?$skip=x"), vec!["'x'", "$skip"]),
        (format!("{CFG}?$count=maybe"), vec!["'maybe'"]),
        (format!("{CFG}?$skiptoken=not-a-token"), vec!["'not-a-token'"]),
        (format!("{CFG}/$count?$filter=nope eq 1"), vec!["'nope'", cfg_type]),
        (format!("{ap}/$count?$filter=displayName eq 'x'"), vec!["'displayName'"]),
    ];
    for (path, needles) in &cases {
        bad_query(&s, path, needles);
    }
}

/// Valid OData that enrollgraph does not implement: `400 BadRequest` naming it (issue 3: "a bad
/// query answers 400 ... whose message names the problem (... unsupported function)"), never a 500.
#[test]
fn unsupported_query_features_are_400_and_name_the_feature() {
    let s = Server::start();
    let cases = [
        (format!("{CFG}?$filter=year(createdDateTime) eq 2020"), "'year'"),
        (format!("{CFG}?$filter=round(priority) eq 1"), "'round'"),
        (format!("{CFG}?$filter=priority add 1 eq 2"), "'add'"),
        (format!("{CFG}?$filter=displayName has 'x'"), "'has'"),
        (format!("{CFG}?$search=kiosk"), "$search"),
        (format!("{DEVICES}?$filter=deploymentProfile/displayName eq 'x'"), "'deploymentProfile'"),
    ];
    for (path, needle) in &cases {
        let body = expect_error(s.get(path), 400, "BadRequest");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "GET {path}: {message:?} does not name {needle}");
    }
}

// --- paging at scale -----------------------------------------------------------------------

/// A new limit configuration with 10,000 group assignments (`g00000`..`g09999`, in this
/// order), made by one `assign` (about 0.9 MB, under the 4 MiB body limit).
fn ten_thousand(s: &Server) -> String {
    let c = s.create(
        CFG,
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Big"}),
    );
    let cid = c["id"].as_str().unwrap().to_owned();
    let items: Vec<Value> = (0..10_000).map(|i| json!({"target": group(&format!("g{i:05}"))})).collect();
    let body = json!({"enrollmentConfigurationAssignments": items});
    assert!(body.to_string().len() < 4 * 1024 * 1024);
    expect_empty_200(s.post(&format!("{CFG}/{cid}/assign"), &body));
    assert_eq!(count_segment(s, &format!("{CFG}/{cid}/assignments"), ""), "10000");
    cid
}

/// Follows nextLinks from `first`; calls `between` after each page that has a nextLink.
/// Returns the pages' items.
fn walk(s: &Server, first: &str, max_page: usize, mut between: impl FnMut(usize)) -> Vec<Value> {
    let mut out = Vec::new();
    let mut page = get_ok(s, first);
    let mut n = 0;
    loop {
        let items = page["value"].as_array().unwrap();
        assert!(items.len() <= max_page, "page {n} has {} items", items.len());
        out.extend(items.iter().cloned());
        let Some(next) = page["@odata.nextLink"].as_str().map(str::to_owned) else { break };
        assert_eq!(items.len(), max_page, "a page with a nextLink is full (page {n})");
        assert!(next.starts_with(&s.base) && next.contains("$skiptoken="), "{next}");
        between(n);
        page = get_abs(s, &next);
        n += 1;
        assert!(n < 2_000, "nextLink loop");
    }
    out
}

/// Issue: "paging through 10,000 assignments with `$top` and nextLinks returns each exactly
/// once while inserts happen between pages" (keyset pagination). Inserts come both from
/// another thread and inline between page fetches.
#[test]
fn paging_10000_assignments_exactly_once_under_concurrent_inserts() {
    let s = Server::start(); // page size 100: `$top=250` gives pages of 100.
    let cid = ten_thousand(&s);
    let path = format!("{CFG}/{cid}/assignments");
    let stop = AtomicBool::new(false);
    let from_thread = Mutex::new(Vec::new());
    let mut inline = Vec::new();
    let items = std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 0..300 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let g = format!("bg{n}");
                s.create(&path, &json!({"target": group(&g)}));
                from_thread.lock().unwrap().push(g);
            }
        });
        let items = walk(&s, &format!("{path}?$top=250&$select=id,target"), 100, |n| {
            let g = format!("inline{n}");
            s.create(&path, &json!({"target": group(&g)}));
            inline.push(g);
        });
        stop.store(true, Ordering::Relaxed);
        items
    });
    let all_ids: Vec<&str> = items.iter().map(|a| a["id"].as_str().unwrap()).collect();
    let distinct: BTreeSet<&str> = all_ids.iter().copied().collect();
    assert_eq!(distinct.len(), all_ids.len(), "no assignment is listed twice");
    let groups: Vec<String> = items.iter().map(group_id).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for g in &groups {
        *seen.entry(g.as_str()).or_default() += 1;
    }
    let originals: Vec<&String> = groups.iter().filter(|g| g.starts_with("g0")).collect();
    let want: Vec<String> = (0..10_000).map(|i| format!("g{i:05}")).collect();
    assert_eq!(originals, want.iter().collect::<Vec<_>>(), "each original once, in insertion order");
    let from_thread = from_thread.into_inner().unwrap();
    for g in from_thread.iter().chain(&inline) {
        assert!(seen.get(g.as_str()).copied().unwrap_or(0) <= 1, "{g} listed twice");
    }
    // Keyset paging continues after the last row seen: whatever was inserted before the next
    // page was fetched shows up later in the walk.
    for g in &inline {
        assert_eq!(seen.get(g.as_str()), Some(&1), "{g} was inserted before the next page and must be listed");
    }
    assert_eq!(groups.len(), 10_000 + seen.keys().filter(|g| !g.starts_with("g0")).count());
    assert!(!inline.is_empty() && groups.len() > 10_000);
}

/// Paging with `$filter` + `$top` (keyset, in SQL and in memory), and with `$orderby` +
/// `$top`, where the skiptoken names the last row in the sort order: inserts between pages,
/// before and after the position reached, shift nothing across a page boundary.
#[test]
fn paging_10000_assignments_with_filter_and_with_orderby() {
    let s = Server::start_with(&["--page-size", "500"]); // `$top=250` is the page size.
    let cid = ten_thousand(&s);
    let path = format!("{CFG}/{cid}/assignments");
    // $orderby (SQL order, key tokens): every original exactly once, in the requested order,
    // while rows that sort before ("h…", already passed) and after ("a…") are inserted.
    let mut n = 0;
    let items = walk(&s, &format!("{path}?$orderby=target/groupId desc&$top=250&$select=id,target"), 250, |_| {
        s.create(&path, &json!({"target": group(&format!("h-new{n:03}"))}));
        s.create(&path, &json!({"target": group(&format!("a-new{n:03}"))}));
        n += 1;
    });
    let got: Vec<String> = items.iter().map(group_id).collect();
    let originals: Vec<String> = got.iter().filter(|g| !g.contains("-new")).cloned().collect();
    let want: Vec<String> = (0..10_000).rev().map(|i| format!("g{i:05}")).collect();
    assert_eq!(originals, want);
    assert!(got.iter().all(|g| !g.starts_with("h-new")), "rows sorting before the position reached never appear");
    assert_eq!(got.iter().filter(|g| g.starts_with("a-new")).count(), n, "rows sorting after it appear once each");
    let distinct: BTreeSet<&str> = items.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), items.len());
    // $filter (keyset, SQL) with inserts between pages, matching and not matching.
    let first = format!("{path}?$filter=startswith(target/groupId,'g01')&$top=250&$count=true&$select=id,target");
    assert_eq!(get_ok(&s, &first)["@odata.count"], 1000);
    let mut n = 0;
    let items = walk(&s, &first, 250, |_| {
        s.create(&path, &json!({"target": group(&format!("g01-new{n}"))}));
        s.create(&path, &json!({"target": group(&format!("x-new{n}"))}));
        n += 1;
    });
    let got: Vec<String> = items.iter().map(group_id).collect();
    let originals: Vec<String> = got.iter().filter(|g| !g.contains("-new")).cloned().collect();
    let want: Vec<String> = (1000..2000).map(|i| format!("g{i:05}")).collect();
    assert_eq!(originals, want, "each matching original once, in insertion order");
    let new: Vec<&String> = got.iter().filter(|g| g.contains("-new")).collect();
    assert!(new.iter().all(|g| g.starts_with("g01-new")), "only matching rows: {new:?}");
    assert_eq!(new.len(), new.iter().collect::<BTreeSet<_>>().len(), "new rows at most once");
    // $filter evaluated in memory (tolower), keyset.
    let items = walk(
        &s,
        &format!(
            "{path}?$filter=tolower(target/groupId) ge 'g09500' and tolower(target/groupId) le 'g09999'&$top=250&$select=target"
        ),
        250,
        |_| {},
    );
    let got: Vec<String> = items.iter().map(group_id).collect();
    let want: Vec<String> = (9500..10_000).map(|i| format!("g{i:05}")).collect();
    assert_eq!(got, want);
}
