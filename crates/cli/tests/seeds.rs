//! The five seed pages (`../shared/seeds/`), reproduced over HTTP against the real binary:
//! status, body (modulo server-made ids and times, and the `#` of `@odata.type`: rulings.md 4),
//! and headers.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, TENANT, Value, example, json, normalize};

fn assert_graph_headers(r: &common::Response) {
    let h = r.headers();
    assert_eq!(
        h["content-type"],
        "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
    );
    assert_eq!(h["odata-version"], "4.0");
    assert_eq!(h["request-id"].to_str().unwrap().len(), 36);
    assert!(h.contains_key("x-ms-ags-diagnostic"));
}

/// The seed's response body, with the seed's response for comparison.
fn check_create(server: &Server, path: &str, request: &str, response: &str) -> Value {
    let r = server
        .raw()
        .post(server.url(path))
        .header("content-type", "application/json")
        .header("client-request-id", "7d3a0b1c-0000-4000-8000-000000000001")
        .body(example(request).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_graph_headers(&r);
    assert_eq!(r.headers()["client-request-id"], "7d3a0b1c-0000-4000-8000-000000000001");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = r.json().unwrap();
    let id = body["id"].as_str().unwrap();
    assert!(location.starts_with(&server.url("/beta/")) || location.starts_with(&server.url("/v1.0/")));
    assert!(location.ends_with(&format!("('{id}')")), "{location}");
    assert!(body["@odata.context"].as_str().unwrap().ends_with("/assignments/$entity"));
    let mut expected = normalize(&example(response));
    let mut got = normalize(&body);
    // The docs' examples show what the client sent; the live service fills every property
    // (graph-behaviours.md "Shapes"): compare the example's keys, then check the rest is defaults.
    merge_defaults(&mut expected, &got);
    assert_eq!(got, expected);
    got.as_object_mut().unwrap().clear();
    body
}

/// Adds to `expected` the keys only `got` has, after checking they are defaults (null/none/direct).
fn merge_defaults(expected: &mut Value, got: &Value) {
    let (Value::Object(e), Value::Object(g)) = (expected, got) else { return };
    for (k, v) in g {
        match e.get_mut(k) {
            Some(ev) => merge_defaults(ev, v),
            None => {
                assert!(v.is_null() || v == "none" || v == "direct", "unexpected non-default value for {k}: {v}");
                e.insert(k.clone(), v.clone());
            }
        }
    }
}

#[test]
fn seed_000_create_apple_enrollment_profile_assignment() {
    let s = Server::start();
    let profile = s.create(
        "/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles",
        &json!({"displayName": "iOS", "platform": "iOS"}),
    );
    let pid = profile["id"].as_str().unwrap();
    let created = check_create(
        &s,
        &format!("/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles/{pid}/assignments"),
        "beta.intune-enrollment-appleenrollmentprofileassignment-create.request.json",
        "beta.intune-enrollment-appleenrollmentprofileassignment-create.response.json",
    );
    assert_eq!(created["target"]["collectionId"], "Collection Id value");
    assert_eq!(created["target"]["deviceAndAppManagementAssignmentFilterType"], "include");
}

#[test]
fn seed_001_create_enrollment_configuration_assignment_beta() {
    let s = Server::start();
    let created = check_create(
        &s,
        &format!("/beta/deviceManagement/deviceEnrollmentConfigurations/{TENANT}_DefaultLimit/assignments"),
        "beta.intune-onboarding-enrollmentconfigurationassignment-create.request.json",
        "beta.intune-onboarding-enrollmentconfigurationassignment-create.response.json",
    );
    // The abstract base target is accepted and stored as such (rulings.md 4).
    assert_eq!(created["target"]["@odata.type"], "#microsoft.graph.deviceAndAppManagementAssignmentTarget");
    assert_eq!(created["source"], "direct");
}

#[test]
fn seed_002_create_autopilot_assignment_through_the_device() {
    let s = Server::start();
    let profile = s.create(
        "/beta/deviceManagement/windowsAutopilotDeploymentProfiles",
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "P"}),
    );
    let pid = profile["id"].as_str().unwrap();
    let device = s.create(
        "/beta/deviceManagement/windowsAutopilotDeviceIdentities",
        &json!({"serialNumber": "SN-1", "deploymentProfile@odata.bind": format!("{}/beta/deviceManagement/windowsAutopilotDeploymentProfiles('{pid}')", s.base)}),
    );
    let did = device["id"].as_str().unwrap();
    let seed_request = json!({
        "@odata.type": "#microsoft.graph.windowsAutopilotDeploymentProfileAssignment",
        "target": {"@odata.type": "microsoft.graph.deviceAndAppManagementAssignmentTarget"}
    });
    let path = format!("/beta/deviceManagement/windowsAutopilotDeviceIdentities/{did}/deploymentProfile/assignments");
    let r = s.post(&path, &seed_request);
    assert_eq!(r.status(), 201);
    assert_graph_headers(&r);
    let body: Value = r.json().unwrap();
    assert_eq!(
        normalize(&body)["target"],
        json!({"@odata.type": "microsoft.graph.deviceAndAppManagementAssignmentTarget", "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none"})
    );
    assert_eq!(body["@odata.type"], "#microsoft.graph.windowsAutopilotDeploymentProfileAssignment");
    // The same set is the profile's own assignments (rulings.md 5).
    let own: Value =
        s.get(&format!("/beta/deviceManagement/windowsAutopilotDeploymentProfiles/{pid}/assignments")).json().unwrap();
    assert_eq!(own["value"][0]["id"], body["id"]);
    // And the stored page version with source/sourceId (examples/index.md).
    let newer = check_create(
        &s,
        &path,
        "beta.intune-enrollment-windowsautopilotdeploymentprofileassignment-create.request.json",
        "beta.intune-enrollment-windowsautopilotdeploymentprofileassignment-create.response.json",
    );
    assert_eq!(newer["source"], "policySets");
}

#[test]
fn seed_003_create_enrollment_configuration_assignment_v1() {
    let s = Server::start();
    let created = check_create(
        &s,
        &format!("/v1.0/deviceManagement/deviceEnrollmentConfigurations/{TENANT}_DefaultLimit/assignments"),
        "v1.0.intune-onboarding-enrollmentconfigurationassignment-create.request.json",
        "v1.0.intune-onboarding-enrollmentconfigurationassignment-create.response.json",
    );
    // v1.0 has no source/sourceId and no filter properties (reference/README.md).
    assert!(created.get("source").is_none());
    assert!(created["target"].get("deviceAndAppManagementAssignmentFilterType").is_none());
}

#[test]
fn seed_004_update_apple_enrollment_profile_assignment() {
    let s = Server::start();
    let profile = s.create(
        "/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles",
        &json!({"displayName": "iOS", "platform": "iOS"}),
    );
    let base = format!(
        "/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles/{}/assignments",
        profile["id"].as_str().unwrap()
    );
    let a = s.create(&base, &json!({"target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}}));
    let r = s.patch(
        &format!("{base}/{}", a["id"].as_str().unwrap()),
        &example("beta.intune-enrollment-appleenrollmentprofileassignment-update.request.json"),
    );
    assert_eq!(r.status(), 200);
    assert_graph_headers(&r);
    let body: Value = r.json().unwrap();
    assert_eq!(body["id"], a["id"]);
    assert_eq!(
        normalize(&body),
        normalize(&example("beta.intune-enrollment-appleenrollmentprofileassignment-update.response.json"))
    );
    // The update is stored.
    let again: Value = s.get(&format!("{base}/{}", a["id"].as_str().unwrap())).json().unwrap();
    assert_eq!(again["target"]["entraObjectId"], "Entra Object Id value");
}

/// The JSON paths (array indices as `*`) at which a body carries `@odata.type`.
fn annotated_paths(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "@odata.type" {
                    out.push(at.to_owned());
                } else {
                    annotated_paths(v, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| annotated_paths(v, &format!("{at}/*"), out)),
        _ => {}
    }
}

/// rulings.md 4 (amended) against the list examples of tests/golden, each edited to the
/// live service's lists (graph-behaviours.md "Shapes the live service returns"): an item
/// or a nested value carries `@odata.type` only where its type is not exactly the declared
/// one. Each list is made from the matching create example and compared at every level.
#[test]
fn list_items_carry_odata_type_where_the_list_examples_do() {
    let s = Server::start();
    let apple = s.create(
        "/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles",
        &json!({"displayName": "iOS", "platform": "iOS",
                "availableEnrollmentTypeOptions": [{"ownerType": "company", "enrollmentType": "device"}]}),
    );
    let apple = apple["id"].as_str().unwrap();
    let profile = s.create(
        "/beta/deviceManagement/windowsAutopilotDeploymentProfiles",
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "P"}),
    );
    let profile = profile["id"].as_str().unwrap();
    let limit = format!("deviceManagement/deviceEnrollmentConfigurations/{TENANT}_DefaultLimit");
    let cases = [
        (
            format!("/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles/{apple}/assignments"),
            "beta.intune-enrollment-appleenrollmentprofileassignment-create.request.json",
            "beta.intune-enrollment-appleenrollmentprofileassignment-list.response.json",
        ),
        (
            format!("/beta/deviceManagement/windowsAutopilotDeploymentProfiles/{profile}/assignments"),
            "beta.intune-enrollment-windowsautopilotdeploymentprofileassignment-create.request.json",
            "beta.intune-enrollment-windowsautopilotdeploymentprofileassignment-list.response.json",
        ),
        (
            format!("/beta/{limit}/assignments"),
            "beta.intune-onboarding-enrollmentconfigurationassignment-create.request.json",
            "beta.intune-onboarding-enrollmentconfigurationassignment-list.response.json",
        ),
        (
            format!("/v1.0/{limit}/assignments"),
            "v1.0.intune-onboarding-enrollmentconfigurationassignment-create.request.json",
            "v1.0.intune-onboarding-enrollmentconfigurationassignment-list.response.json",
        ),
    ];
    for (path, create, list) in cases {
        // Only the created item: the default's own assignment is cleared first.
        if path.contains("_DefaultLimit") {
            let r = s.post(&format!("/beta/{limit}/assign"), &json!({"enrollmentConfigurationAssignments": []}));
            assert_eq!(r.status(), 200);
        }
        let r = s.post(&path, &example(create));
        assert_eq!(r.status(), 201, "{path}");
        let got: Value = s.get(&path).json().unwrap();
        let (mut want, mut have) = (Vec::new(), Vec::new());
        annotated_paths(&example(list), "", &mut want);
        annotated_paths(&got, "", &mut have);
        assert_eq!(have, want, "{path}: {got}");
        // And the entity alone keeps its own, with `#` (seeds; rulings.md 4).
        let one: Value = s.get(&format!("{path}/{}", got["value"][0]["id"].as_str().unwrap())).json().unwrap();
        assert!(one["@odata.type"].as_str().unwrap().starts_with('#'), "{one}");
    }
    let got: Value = s.get("/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles").json().unwrap();
    let (mut want, mut have) = (Vec::new(), Vec::new());
    annotated_paths(
        &example("beta.intune-enrollment-appleuserinitiatedenrollmentprofile-list.response.json"),
        "",
        &mut want,
    );
    annotated_paths(&got, "", &mut have);
    assert_eq!(have, want, "{got}");
}
