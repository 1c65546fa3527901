//! Effective assignments over HTTP on the real binary (issue 15):
//! `GET /_enrollgraph/tenants/{tenant}/effective`, its contract and its attacks, and the
//! same answer from `enrollgraph effective` on the data dir. Runs on PostgreSQL too
//! (`ENROLLGRAPH_TEST_BACKEND=postgres`).
#![allow(clippy::unwrap_used)]

mod common;

use common::{BETA, Server, TENANT, Value, json};
use reqwest::blocking::{Client, Response};

const KEY: &str = "egadm_test-admin-key";
const CFG: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";

fn start() -> Server {
    Server::start_with(&["--admin-key", KEY])
}

fn effective(s: &Server, tenant: &str, query: &str) -> Response {
    Client::new()
        .get(s.url(&format!("/_enrollgraph/tenants/{tenant}/effective?{query}")))
        .bearer_auth(KEY)
        .send()
        .unwrap()
}

fn ok(r: Response) -> Value {
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(ct.as_deref(), Some("application/json"));
    serde_json::from_str(&text).unwrap()
}

/// An admin-shaped error: status and `error.code`.
fn err(r: Response, status: u16, code: &str) -> String {
    let got = r.status().as_u16();
    let text = r.text().unwrap();
    assert_eq!(got, status, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], code, "{text}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

fn group(s: &Server, name: &str) -> String {
    s.create("/beta/groups", &json!({"displayName": name, "groupTypes": []}))["id"].as_str().unwrap().to_owned()
}

fn kind<'a>(v: &'a Value, k: &str) -> &'a Value {
    v["kinds"].as_array().unwrap().iter().find(|x| x["kind"] == k).unwrap()
}

#[test]
fn the_contract_over_http_and_the_cli_answer_the_same() {
    let s = start();
    let g1 = group(&s, "Pilot users");
    let g2 = group(&s, "Everyone else");
    let filter = s.create(
        &format!("{BETA}/assignmentFilters"),
        &json!({"displayName": "Corporate", "platform": "windows10AndLater",
                "rule": "(device.deviceOwnership -eq \"Corporate\") and (device.osVersion -startsWith \"10.0\")"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let limit = s.create(
        CFG,
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Pilot limit", "limit": 2}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.post(
        &format!("{CFG}/{limit}/assign"),
        &json!({"enrollmentConfigurationAssignments": [{"target": {
            "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g1,
            "deviceAndAppManagementAssignmentFilterId": filter,
            "deviceAndAppManagementAssignmentFilterType": "include"}}]}),
    );
    assert_eq!(r.status(), 200);
    let profile = s.create(
        &format!("{BETA}/windowsAutopilotDeploymentProfiles"),
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "Kiosk"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.create(
        &format!("{BETA}/windowsAutopilotDeploymentProfiles/{profile}/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g2}}),
    );

    let v = ok(effective(&s, TENANT, &format!("group={g1}&group={g2}")));
    assert_eq!(v["tenant"], TENANT);
    assert_eq!(
        v["groups"],
        json!([{"id": g1, "displayName": "Pilot users"}, {"id": g2, "displayName": "Everyone else"}])
    );
    let lim = kind(&v, "limit");
    assert_eq!(lim["audience"], "user");
    assert_eq!(lim["title"], "Device limit restrictions");
    assert_eq!(
        lim["applies"],
        json!({"id": limit, "displayName": "Pilot limit", "priority": 1,
               "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "isDefault": false})
    );
    assert_eq!(
        lim["conditions"],
        json!([{"filterId": filter, "filterName": "Corporate", "filterType": "include",
                "rule": "(device.deviceOwnership -eq \"Corporate\") and (device.osVersion -startsWith \"10.0\")",
                "evaluated": null}])
    );
    assert_eq!(lim["candidates"][0]["outcome"], "applies");
    assert_eq!(lim["candidates"][0]["via"], format!("group {g1}"));
    assert_eq!(lim["candidates"][1]["outcome"], "lowerPriority");
    assert_eq!(lim["candidates"][1]["via"], "default");
    for c in lim["candidates"].as_array().unwrap() {
        assert!(c["reason"].as_str().is_some_and(|r| !r.is_empty()), "{c}");
    }
    assert!(!lim["reasons"].as_array().unwrap().is_empty());
    assert_eq!(v["autopilot"]["applies"]["id"], profile.as_str());
    assert_eq!(v["autopilot"]["applies"]["displayName"], "Kiosk");
    assert_eq!(v["autopilot"]["candidates"][0]["via"], format!("group {g2}"));

    // Device properties evaluate the filter: a personal device gets the default.
    let personal =
        ok(effective(&s, TENANT, &format!("group={g1}&device.deviceOwnership=Personal&device.osVersion=10.0.22631")));
    let lim = kind(&personal, "limit");
    assert_eq!(lim["applies"]["isDefault"], true);
    assert_eq!(lim["conditions"][0]["evaluated"], false);
    assert_eq!(lim["candidates"][0]["outcome"], "filteredOut");
    let corporate =
        ok(effective(&s, TENANT, &format!("group={g1}&device.deviceOwnership=Corporate&device.osVersion=10.0.22631")));
    assert_eq!(kind(&corporate, "limit")["applies"]["id"], limit.as_str());
    assert_eq!(kind(&corporate, "limit")["conditions"][0]["evaluated"], true);

    // The CLI, on the same data (SQLite file or PostgreSQL database), answers the same.
    let out = s.cli(&["effective", "--tenant", TENANT, "--group", &g1, "--group", &g2]);
    let from_cli: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(from_cli, v);
    let out = s.cli(&[
        "effective",
        "--tenant",
        TENANT,
        "--group",
        &g1,
        "--device",
        "deviceOwnership=Personal",
        "--device",
        "device.osVersion=10.0.22631",
    ]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), personal);
}

#[test]
fn attacks_are_refused_with_the_admin_apis_errors() {
    let s = start();
    let g = group(&s, "G");
    let url = s.url(&format!("/_enrollgraph/tenants/{TENANT}/effective?group={g}"));
    // No admin key; a wrong one; a Graph token.
    err(Client::new().get(&url).send().unwrap(), 401, "Unauthorized");
    err(Client::new().get(&url).bearer_auth("egadm_wrong-key-0000000").send().unwrap(), 403, "Forbidden");
    err(Client::new().get(&url).bearer_auth(&s.token).send().unwrap(), 403, "Forbidden");
    // An unknown tenant; a malformed one; no group; an unknown parameter; a POST.
    assert!(err(effective(&s, "nobody.example", &format!("group={g}")), 404, "NotFound").contains("nobody.example"));
    err(effective(&s, "not%20a%20tenant", &format!("group={g}")), 400, "BadRequest");
    err(effective(&s, TENANT, ""), 400, "BadRequest");
    err(effective(&s, TENANT, "group="), 400, "BadRequest");
    err(effective(&s, TENANT, &format!("group={g}&top=5")), 400, "BadRequest");
    err(effective(&s, TENANT, "group=%FF"), 400, "BadRequest");
    let r = Client::new().post(&url).bearer_auth(KEY).send().unwrap();
    assert_eq!(r.status(), 405);
    // Many groups: 50 are answered, 51 and a flood are refused.
    let fifty: Vec<String> = (0..50).map(|i| format!("group=g{i}")).collect();
    assert_eq!(ok(effective(&s, TENANT, &fifty.join("&")))["groups"].as_array().unwrap().len(), 50);
    let msg = err(effective(&s, TENANT, &format!("{}&group=g50", fifty.join("&"))), 400, "BadRequest");
    assert!(msg.contains("50"), "{msg}");
    let flood: Vec<&str> = (0..1000).map(|_| "group=a").collect();
    err(effective(&s, TENANT, &flood.join("&")), 400, "BadRequest");
}

#[test]
fn a_malformed_stored_rule_and_another_tenants_groups_are_answered_not_failed() {
    let s = start();
    let g = group(&s, "G");
    let filter = s.create(
        &format!("{BETA}/assignmentFilters"),
        &json!({"displayName": "Broken", "platform": "windows10AndLater", "rule": "((device.model -eq \"x\" or ]["}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let esp = s.create(
        CFG,
        &json!({"@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration", "displayName": "ESP"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.post(
        &format!("{CFG}/{esp}/assign"),
        &json!({"enrollmentConfigurationAssignments": [{"target": {
            "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g,
            "deviceAndAppManagementAssignmentFilterId": filter,
            "deviceAndAppManagementAssignmentFilterType": "exclude"}}]}),
    );
    assert_eq!(r.status(), 200);
    let v = ok(effective(&s, TENANT, &format!("group={g}&device.model=x")));
    let k = kind(&v, "windows10EnrollmentCompletionPageConfiguration");
    assert_eq!(k["applies"]["id"], esp.as_str());
    assert_eq!(k["conditions"][0]["evaluated"], Value::Null);
    assert_eq!(k["conditions"][0]["filterType"], "exclude");

    // A group of another tenant: no name leaks, nothing of it applies here.
    let other = Client::new()
        .post(s.url("/_enrollgraph/tenants"))
        .bearer_auth(KEY)
        .json(&json!({"id": "fabrikam.example", "roles": ["Group.ReadWrite.All"]}))
        .send()
        .unwrap();
    assert_eq!(other.status(), 201);
    let creds: Value = other.json().unwrap();
    let token = s.client_credentials_token(
        "fabrikam.example",
        creds["clientId"].as_str().unwrap(),
        creds["clientSecret"].as_str().unwrap(),
    );
    let theirs: Value = Client::new()
        .post(s.url("/beta/groups"))
        .bearer_auth(token)
        .json(&json!({"displayName": "Fabrikam secret", "groupTypes": []}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let theirs = theirs["id"].as_str().unwrap();
    let v = ok(effective(&s, TENANT, &format!("group={theirs}")));
    assert_eq!(v["groups"], json!([{"id": theirs, "displayName": null}]));
    assert!(!v.to_string().contains("Fabrikam secret"));
    assert_eq!(kind(&v, "windows10EnrollmentCompletionPageConfiguration")["applies"]["isDefault"], true);
    // In its own tenant it has its name.
    let v = ok(effective(&s, "fabrikam.example", &format!("group={theirs}")));
    assert_eq!(v["groups"][0]["displayName"], "Fabrikam secret");
}

#[test]
fn the_cli_refuses_what_the_api_refuses() {
    let s = start();
    let g = group(&s, "G");
    for (args, says) in [
        (vec!["effective", "--tenant", "nobody.example", "--group", g.as_str()], "does not exist"),
        (vec!["effective", "--tenant", TENANT], "--group"),
        (vec!["effective", "--tenant", TENANT, "--group", ""], "group id"),
        (vec!["effective", "--tenant", TENANT, "--group", g.as_str(), "--device", "noequals"], "NAME=VALUE"),
        (vec!["effective", "--tenant", TENANT, "--group", g.as_str(), "--device", "bad-name=x"], "device property"),
    ] {
        let out = std::process::Command::new(common::bin())
            .args(&args)
            .arg("--data-dir")
            .arg(&s.data_dir)
            .env_remove("ENROLLGRAPH_DATABASE")
            .envs(s.database.iter().map(|d| ("ENROLLGRAPH_DATABASE", d)))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
