//! Paging (server-driven page size, absolute `@odata.nextLink` with `$skiptoken`, `$top`,
//! `$skip`, `$count`, `/$count`, X-Forwarded-*: graph-behaviours.md "Paging") and `$select`
//! / `$expand=assignments` with their `@odata.context` forms (graph-behaviours.md
//! "Responses"; OData JSON Format §10). `$filter`/`$orderby` are being built elsewhere.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{BETA, Server, TENANT, Value, expect_error, get_ok, ids, json, list_all};

const CFG: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";

/// A server with page size 5 and one configuration holding 23 assignments (groups g00..g22).
fn with_23() -> (Server, String, Vec<String>) {
    // The tests here act as a proxy on loopback: X-Forwarded-* counts only from one trusted.
    let s = Server::start_with(&["--page-size", "5", "--trusted-proxies", "127.0.0.1,::1"]);
    let c = s.create(
        CFG,
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "P", "limit": 1}),
    );
    let cid = c["id"].as_str().unwrap().to_owned();
    let mut made = Vec::new();
    for i in 0..23 {
        let a = s.create(
            &format!("{CFG}/{cid}/assignments"),
            &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": format!("g{i:02}")}}),
        );
        made.push(a["id"].as_str().unwrap().to_owned());
    }
    (s, cid, made)
}

/// Follows nextLinks; returns the page sizes and all ids.
fn walk(s: &Server, first: &str) -> (Vec<usize>, Vec<String>, Vec<Value>) {
    let mut sizes = Vec::new();
    let mut all = Vec::new();
    let mut pages = Vec::new();
    let mut page = get_ok(s, first);
    loop {
        sizes.push(page["value"].as_array().unwrap().len());
        all.extend(ids(&page));
        let next = page["@odata.nextLink"].as_str().map(str::to_owned);
        pages.push(page);
        let Some(next) = next else { break };
        assert!(
            next.starts_with(&format!("{}/beta/deviceManagement/deviceEnrollmentConfigurations", s.base)),
            "nextLink is absolute: {next}"
        );
        assert!(next.contains("$skiptoken=") || next.contains("%24skiptoken="), "{next}");
        let r = s.raw().get(&next).header("accept", "*/*").send().unwrap();
        assert_eq!(r.status(), 200, "{next}");
        page = r.json().unwrap();
        assert!(sizes.len() < 50, "nextLink loop");
    }
    (sizes, all, pages)
}

#[test]
fn server_driven_paging_lists_each_item_exactly_once() {
    let (s, cid, made) = with_23();
    let path = format!("{CFG}/{cid}/assignments");
    let (sizes, all, pages) = walk(&s, &path);
    assert_eq!(sizes, [5, 5, 5, 5, 3]);
    assert_eq!(all, made, "every item once, in creation order");
    let context =
        format!("{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('{cid}')/assignments", s.base);
    for p in &pages {
        assert_eq!(p["@odata.context"], context.as_str());
    }
    assert!(pages.last().unwrap().get("@odata.nextLink").is_none());
    // Writes between pages do not make the walk repeat or skip what was already there.
    let first = get_ok(&s, &path);
    s.create(&path, &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "late"}}));
    let (_, rest, _) = walk_from(&s, first["@odata.nextLink"].as_str().unwrap());
    let mut seen: Vec<String> = ids(&first);
    seen.extend(rest);
    assert_eq!(seen.len(), 24);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 24);
}

fn walk_from(s: &Server, next: &str) -> (Vec<usize>, Vec<String>, Vec<Value>) {
    let r = s.raw().get(next).send().unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().unwrap();
    let mut sizes = vec![page["value"].as_array().unwrap().len()];
    let mut all = ids(&page);
    let mut pages = vec![page.clone()];
    if let Some(n) = page["@odata.nextLink"].as_str() {
        let (a, b, c) = walk_from(s, n);
        sizes.extend(a);
        all.extend(b);
        pages.extend(c);
    }
    (sizes, all, pages)
}

#[test]
fn top_is_the_page_size() {
    let (s, cid, made) = with_23();
    let (sizes, all, _) = walk(&s, &format!("{CFG}/{cid}/assignments?$top=3"));
    assert_eq!(sizes, [3, 3, 3, 3, 3, 3, 3, 2]);
    assert_eq!(all, made);
    // On beta the `$` is optional (graph-behaviours.md "Paging").
    let page = get_ok(&s, &format!("{CFG}/{cid}/assignments?top=2"));
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
}

#[test]
fn skip_and_count() {
    let (s, cid, made) = with_23();
    let path = format!("{CFG}/{cid}/assignments");
    let page = get_ok(&s, &format!("{path}?$skip=20"));
    assert_eq!(ids(&page), made[20..]);
    assert!(page.get("@odata.nextLink").is_none());
    let page = get_ok(&s, &format!("{path}?$count=true"));
    assert_eq!(page["@odata.count"], 23);
    assert_eq!(page["value"].as_array().unwrap().len(), 5);
    let page = get_ok(&s, &format!("{path}?$count=true&$top=2&$skip=4"));
    assert_eq!(page["@odata.count"], 23);
    assert_eq!(ids(&page), made[4..6]);
    // /$count is a bare number as text.
    let r = s.get(&format!("{path}/$count"));
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"),
        "{:?}",
        r.headers()["content-type"]
    );
    assert_eq!(r.text().unwrap(), "23");
    let r = s.get(&format!("{CFG}/$count"));
    assert_eq!(r.text().unwrap(), "6");
    let r = s.get("/v1.0/deviceManagement/deviceEnrollmentConfigurations/$count");
    // v1.0 has no windowsRestore type: its default is not in the v1.0 view (rulings.md 6).
    assert_eq!(r.text().unwrap(), "5");
}

#[test]
fn a_page_of_exactly_the_page_size_has_no_next_link() {
    let s = Server::start_with(&["--page-size", "5"]);
    let page = get_ok(&s, CFG);
    assert_eq!(page["value"].as_array().unwrap().len(), 5);
    assert!(page.get("@odata.nextLink").is_none(), "{page}");
    s.create(CFG, &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "6th"}));
    let all = list_all(&s, CFG);
    assert_eq!(all.len(), 6);
}

#[test]
fn next_link_honours_forwarded_origin() {
    let (s, cid, made) = with_23();
    let path = format!("{CFG}/{cid}/assignments");
    let r = s
        .raw()
        .get(s.url(&format!("{path}?$top=4")))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "graph.example.test")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().unwrap();
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with("https://graph.example.test/beta/deviceManagement/deviceEnrollmentConfigurations"),
        "{next}"
    );
    assert!(page["@odata.context"].as_str().unwrap().starts_with("https://graph.example.test/beta/$metadata#"));
    // The link works when the proxy forwards it back here.
    let local = next.replacen("https://graph.example.test", &s.base, 1);
    let r = s
        .raw()
        .get(&local)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "graph.example.test")
        .send()
        .unwrap();
    let second: Value = r.json().unwrap();
    assert_eq!(ids(&second), made[4..8]);
    assert!(second["@odata.nextLink"].as_str().unwrap().starts_with("https://graph.example.test/"));
}

#[test]
fn bad_paging_options_are_400() {
    let (s, cid, _) = with_23();
    let path = format!("{CFG}/{cid}/assignments");
    for q in ["$skiptoken=not-a-token", "$top=-1", "$top=abc", "$skip=x"] {
        expect_error(s.get(&format!("{path}?{q}")), 400, "BadRequest");
    }
}

// --- $select and $expand ----------------------------------------------------------------

#[test]
fn select_on_a_list_and_an_entity() {
    let s = Server::start();
    let list = get_ok(&s, &format!("{CFG}?$select=displayName,priority"));
    // OData JSON Format §10.9: the context names the selected properties.
    assert_eq!(
        list["@odata.context"],
        format!("{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations(displayName,priority)", s.base)
            .as_str()
    );
    assert_eq!(list["value"].as_array().unwrap().len(), 5);
    for v in list["value"].as_array().unwrap() {
        assert_eq!(v["displayName"], "All users and all devices");
        assert_eq!(v["priority"], 0);
        for absent in ["description", "limit", "createdDateTime", "roleScopeTagIds", "version"] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
    }
    let one = get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit?$select=limit"));
    assert_eq!(
        one["@odata.context"],
        format!("{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations(limit)/$entity", s.base).as_str()
    );
    assert_eq!(one["limit"], 5);
    assert!(one.get("displayName").is_none());
}

#[test]
fn select_of_an_unknown_property_is_400() {
    // OData URL Conventions §5.1.3: $select names properties of the type; Graph answers
    // 400 "Could not find a property named 'x' on type ...".
    let s = Server::start();
    expect_error(s.get(&format!("{CFG}?$select=noSuchProperty")), 400, "BadRequest");
    expect_error(s.get(&format!("{CFG}/{TENANT}_DefaultLimit?$select=noSuchProperty")), 400, "BadRequest");
}

#[test]
fn expand_assignments_on_an_entity() {
    let s = Server::start();
    let one = get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit?$expand=assignments"));
    assert_eq!(
        one["@odata.context"],
        format!("{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations(assignments())/$entity", s.base)
            .as_str()
    );
    assert_eq!(
        one["assignments@odata.context"],
        format!(
            "{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('{TENANT}_DefaultLimit')/assignments",
            s.base
        )
        .as_str()
    );
    let list = get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit/assignments"));
    assert_eq!(one["assignments"], list["value"]);
    assert_eq!(one["limit"], 5);
    // Through the other key form, the same.
    assert_eq!(get_ok(&s, &format!("{CFG}('{TENANT}_DefaultLimit')?$expand=assignments")), one);
}

#[test]
fn expand_assignments_on_a_list() {
    let s = Server::start();
    let c = s.create(
        CFG,
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "E"}),
    );
    let cid = c["id"].as_str().unwrap();
    s.create(
        &format!("{CFG}/{cid}/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1"}}),
    );
    s.create(
        &format!("{CFG}/{cid}/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g2"}}),
    );
    let list = get_ok(&s, &format!("{CFG}?$expand=assignments"));
    assert_eq!(
        list["@odata.context"],
        format!("{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations(assignments())", s.base).as_str()
    );
    let items = list["value"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    for v in items {
        let id = v["id"].as_str().unwrap();
        // IntuneCD matches assignments to parents by the key in the context (clients.md §0).
        assert_eq!(
            v["assignments@odata.context"],
            format!("{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('{id}')/assignments", s.base)
                .as_str()
        );
        assert_eq!(v["assignments"], get_ok(&s, &format!("{CFG}/{id}/assignments"))["value"], "{id}");
    }
    let mine = items.iter().find(|v| v["id"] == cid).unwrap();
    assert_eq!(mine["assignments"].as_array().unwrap().len(), 2);
}

#[test]
fn select_with_expand() {
    let s = Server::start();
    let one = get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit?$select=displayName&$expand=assignments"));
    assert_eq!(
        one["@odata.context"],
        format!(
            "{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations(displayName,assignments())/$entity",
            s.base
        )
        .as_str()
    );
    assert_eq!(one["displayName"], "All users and all devices");
    assert!(one.get("limit").is_none());
    assert_eq!(one["assignments"].as_array().unwrap().len(), 1);
}

#[test]
fn expand_of_an_unknown_navigation_is_400() {
    // OData URL Conventions §5.1.2: $expand names navigation properties; Graph answers 400
    // "Could not find a property named 'x' on type ...".
    let s = Server::start();
    expect_error(s.get(&format!("{CFG}?$expand=noSuchNavigation")), 400, "BadRequest");
    expect_error(s.get(&format!("{CFG}/{TENANT}_DefaultLimit?$expand=displayName")), 400, "BadRequest");
}

#[test]
fn expand_on_autopilot_and_apple() {
    let s = Server::start();
    let p = s.create(
        &format!("{BETA}/windowsAutopilotDeploymentProfiles"),
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "P"}),
    );
    let pid = p["id"].as_str().unwrap();
    s.create(
        &format!("{BETA}/windowsAutopilotDeploymentProfiles/{pid}/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g"}}),
    );
    let got = get_ok(&s, &format!("{BETA}/windowsAutopilotDeploymentProfiles/{pid}?$expand=assignments"));
    assert_eq!(got["assignments"].as_array().unwrap().len(), 1);
    assert_eq!(
        got["assignments@odata.context"],
        format!("{}/beta/$metadata#deviceManagement/windowsAutopilotDeploymentProfiles('{pid}')/assignments", s.base)
            .as_str()
    );
    let a = s.create(
        &format!("{BETA}/appleUserInitiatedEnrollmentProfiles"),
        &json!({"displayName": "A", "platform": "iOS"}),
    );
    let list = get_ok(&s, &format!("{BETA}/appleUserInitiatedEnrollmentProfiles?$expand=assignments"));
    assert_eq!(list["value"][0]["id"], a["id"]);
    assert_eq!(list["value"][0]["assignments"], json!([]));
}

#[test]
fn public_url_and_forwarded_headers_shape_every_absolute_url() {
    let s = Server::start_with(&["--page-size", "2", "--public-url", "https://graph.contoso.test/"]);
    let page = get_ok(&s, CFG);
    assert!(
        page["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with("https://graph.contoso.test/beta/deviceManagement/deviceEnrollmentConfigurations?"),
        "{page}"
    );
    assert_eq!(
        page["@odata.context"],
        "https://graph.contoso.test/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations"
    );
    let r =
        s.post(CFG, &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "x"}));
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("https://graph.contoso.test/beta/deviceManagement/deviceEnrollmentConfigurations('"),
        "{location}"
    );
    // Without a public URL, the forwarded origin (from a trusted proxy) is used for Location too.
    let s = Server::start_with(&["--trusted-proxies", "127.0.0.1/32"]);
    let r = s
        .raw()
        .post(s.url(CFG))
        .header("content-type", "application/json")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "proxy.example.test")
        .body(
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "y"})
                .to_string(),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("https://proxy.example.test/beta/"));
}
