//! Durability: whatever the server acknowledged survives SIGKILL, and restarting does not
//! provision the defaults twice.
#![allow(clippy::unwrap_used)]

mod common;

use common::{BETA, Server, TENANT, Value, expect_empty_200, get_ok, json, list_all};

const CFG: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";

/// Every object reachable in the tenant, with `base` replaced so two server runs compare.
fn dump(s: &Server) -> Value {
    let mut out = serde_json::Map::new();
    let mut add = |path: String, v: Value| {
        let text = v.to_string().replace(&s.base, "{base}");
        out.insert(path, serde_json::from_str(&text).unwrap());
    };
    for version in ["beta", "v1.0"] {
        let coll = format!("/{version}/deviceManagement/deviceEnrollmentConfigurations");
        for c in list_all(s, &coll) {
            let id = c["id"].as_str().unwrap().to_owned();
            add(format!("{coll}/{id}"), get_ok(s, &format!("{coll}/{id}")));
            add(format!("{coll}/{id}/assignments"), Value::Array(list_all(s, &format!("{coll}/{id}/assignments"))));
        }
    }
    for p in list_all(s, &format!("{BETA}/appleUserInitiatedEnrollmentProfiles")) {
        let id = p["id"].as_str().unwrap().to_owned();
        add(format!("apple/{id}"), p);
        add(
            format!("apple/{id}/assignments"),
            Value::Array(list_all(s, &format!("{BETA}/appleUserInitiatedEnrollmentProfiles/{id}/assignments"))),
        );
    }
    for p in list_all(s, &format!("{BETA}/windowsAutopilotDeploymentProfiles")) {
        let id = p["id"].as_str().unwrap().to_owned();
        add(format!("profile/{id}"), p);
        add(
            format!("profile/{id}/assignments"),
            Value::Array(list_all(s, &format!("{BETA}/windowsAutopilotDeploymentProfiles/{id}/assignments"))),
        );
    }
    for d in list_all(s, &format!("{BETA}/windowsAutopilotDeviceIdentities")) {
        let id = d["id"].as_str().unwrap().to_owned();
        add(format!("device/{id}"), d);
        let r = s.get(&format!("{BETA}/windowsAutopilotDeviceIdentities/{id}/deploymentProfile"));
        let linked = if r.status() == 200 { r.json::<Value>().unwrap()["id"].clone() } else { Value::Null };
        add(format!("device/{id}/deploymentProfile"), linked);
    }
    Value::Object(out)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let mut s = Server::start();
    // Configurations of several kinds, with priorities moved and one deleted.
    let mut limits = Vec::new();
    for i in 0..4 {
        let c = s.create(CFG, &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": format!("L{i}"), "limit": i + 1}));
        limits.push(c["id"].as_str().unwrap().to_owned());
    }
    expect_empty_200(s.post(&format!("{CFG}/{}/setPriority", limits[3]), &json!({"priority": 1})));
    assert_eq!(s.delete(&format!("{CFG}/{}", limits[1])).status(), 204);
    let esp = s.create(CFG, &json!({"@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration", "displayName": "ESP", "roleScopeTagIds": ["0"]}));
    let esp_id = esp["id"].as_str().unwrap();
    expect_empty_200(s.post(
        &format!("{CFG}/{esp_id}/assign"),
        &json!({"enrollmentConfigurationAssignments": [
            {"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1", "deviceAndAppManagementAssignmentFilterId": "f", "deviceAndAppManagementAssignmentFilterType": "include"}},
            {"target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "g2"}}
        ]}),
    ));
    assert_eq!(s.patch(&format!("{CFG}/{TENANT}_DefaultLimit"), &json!({"limit": 15})).status(), 200);
    // Apple and Autopilot.
    let apple = s.create(
        &format!("{BETA}/appleUserInitiatedEnrollmentProfiles"),
        &json!({"displayName": "A", "platform": "iOS"}),
    );
    s.create(
        &format!("{BETA}/appleUserInitiatedEnrollmentProfiles/{}/assignments", apple["id"].as_str().unwrap()),
        &json!({"target": {"@odata.type": "#microsoft.graph.scopeTagGroupAssignmentTarget", "entraObjectId": "e", "targetType": "device"}}),
    );
    let p = s.create(&format!("{BETA}/windowsAutopilotDeploymentProfiles"), &json!({"@odata.type": "#microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile", "displayName": "H"}));
    let pid = p["id"].as_str().unwrap().to_owned();
    s.create(
        &format!("{BETA}/windowsAutopilotDeploymentProfiles/{pid}/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "gg"}}),
    );
    let d1 = s.create(&format!("{BETA}/windowsAutopilotDeviceIdentities"), &json!({"serialNumber": "S1"}));
    s.create(&format!("{BETA}/windowsAutopilotDeviceIdentities"), &json!({"serialNumber": "S2"}));
    expect_empty_200(
        s.post(&format!("{BETA}/windowsAutopilotDeploymentProfiles/{pid}/assign"), &json!({"deviceIds": [d1["id"]]})),
    );

    let before = dump(&s);
    s.kill_and_restart();
    let after = dump(&s);
    assert_eq!(after, before);
    assert_eq!(get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit"))["limit"], 15);

    // Still writable, and new ids do not collide; a second SIGKILL keeps that too.
    let c = s.create(
        CFG,
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "after"}),
    );
    assert_eq!(c["priority"], 4);
    let before = dump(&s);
    s.kill_and_restart();
    assert_eq!(dump(&s), before);
}

#[test]
fn defaults_are_not_duplicated_by_restarts() {
    let mut s = Server::start();
    for _ in 0..3 {
        s.kill_and_restart();
    }
    let list = list_all(&s, CFG);
    assert_eq!(list.len(), 5);
    for c in &list {
        let id = c["id"].as_str().unwrap();
        assert_eq!(c["priority"], 0);
        let a = list_all(&s, &format!("{CFG}/{id}/assignments"));
        assert_eq!(a.len(), 1, "{id}");
        assert_eq!(a[0]["id"], id);
    }
    // A changed default is not reset by provisioning on restart.
    assert_eq!(s.patch(&format!("{CFG}/{TENANT}_DefaultLimit"), &json!({"displayName": "mine"})).status(), 200);
    expect_empty_200(
        s.post(&format!("{CFG}/{TENANT}_DefaultLimit/assign"), &json!({"enrollmentConfigurationAssignments": []})),
    );
    s.kill_and_restart();
    assert_eq!(get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit"))["displayName"], "mine");
    assert_eq!(list_all(&s, &format!("{CFG}/{TENANT}_DefaultLimit/assignments")).len(), 0);
    assert_eq!(list_all(&s, CFG).len(), 5);
}

#[test]
fn a_burst_of_writes_then_sigkill_loses_nothing() {
    let mut s = Server::start();
    let c = s.create(
        CFG,
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "burst"}),
    );
    let cid = c["id"].as_str().unwrap().to_owned();
    let coll = format!("{CFG}/{cid}/assignments");
    // Concurrent writers, each waiting for its 201 before counting the write as acknowledged.
    let acked: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let s = &s;
                let coll = &coll;
                scope.spawn(move || {
                    (0..15)
                        .map(|i| {
                            let a = s.create(coll, &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": format!("t{t}-{i}")}}));
                            a["id"].as_str().unwrap().to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(acked.len(), 60);
    s.kill_and_restart();
    let mut got: Vec<String> = list_all(&s, &coll).iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    got.sort();
    let mut want = acked;
    want.sort();
    assert_eq!(got, want);
}
