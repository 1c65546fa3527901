//! Bound actions and the rules around them: `assign` replaces the whole set (operations.md),
//! `setPriority` keeps priorities unique and contiguous from 1 within a kind (rulings.md 7),
//! defaults cannot be deleted or re-prioritised, action segments match in any case
//! (rulings.md 12), and the Autopilot device → profile link (rulings.md 5).
#![allow(clippy::unwrap_used)]

mod common;

use common::{BETA, Server, TENANT, V1, Value, expect_empty_200, expect_error, get_ok, ids, json};

const CFG: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";

fn limit(s: &Server, name: &str) -> String {
    let c = s.create(
        CFG,
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": name, "limit": 2}),
    );
    c["id"].as_str().unwrap().to_owned()
}

fn priority(s: &Server, id: &str) -> i64 {
    get_ok(s, &format!("{CFG}/{id}"))["priority"].as_i64().unwrap()
}

fn priorities(s: &Server, ids: &[&String]) -> Vec<i64> {
    ids.iter().map(|id| priority(s, id)).collect()
}

fn group(id: &str) -> Value {
    json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": id}})
}

fn targets(list: &Value) -> Vec<Value> {
    list["value"].as_array().unwrap().iter().map(|a| a["target"].clone()).collect()
}

// --- assign ---------------------------------------------------------------------------

#[test]
fn assign_replaces_the_whole_set() {
    let s = Server::start();
    let cid = limit(&s, "A");
    let coll = format!("{CFG}/{cid}/assignments");
    s.create(&coll, &group("old-1"));
    s.create(&coll, &group("old-2"));
    let new = json!({"enrollmentConfigurationAssignments": [
        {"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "new-1", "deviceAndAppManagementAssignmentFilterId": "f", "deviceAndAppManagementAssignmentFilterType": "include"}},
        {"@odata.type": "#microsoft.graph.enrollmentConfigurationAssignment", "target": {"@odata.type": "microsoft.graph.allLicensedUsersAssignmentTarget"}},
        {"target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "new-3"}, "source": "policySets", "sourceId": "ps"}
    ]});
    expect_empty_200(s.post(&format!("{CFG}/{cid}/assign"), &new));
    let list = get_ok(&s, &coll);
    assert_eq!(
        targets(&list),
        vec![
            json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "new-1", "deviceAndAppManagementAssignmentFilterId": "f", "deviceAndAppManagementAssignmentFilterType": "include"}),
            json!({"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget", "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none"}),
            json!({"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "new-3", "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none"}),
        ]
    );
    assert_eq!(list["value"][2]["source"], "policySets");
    // Each new assignment is addressable by its id.
    for id in ids(&list) {
        assert_eq!(get_ok(&s, &format!("{coll}/{id}"))["id"], id.as_str());
    }
    // Assigning again replaces again (not appends).
    expect_empty_200(
        s.post(&format!("{CFG}/{cid}/assign"), &json!({"enrollmentConfigurationAssignments": [group("only")]})),
    );
    let list = get_ok(&s, &coll);
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["target"]["groupId"], "only");
}

#[test]
fn assign_with_an_empty_list_clears() {
    let s = Server::start();
    let cid = limit(&s, "A");
    let coll = format!("{CFG}/{cid}/assignments");
    s.create(&coll, &group("g1"));
    expect_empty_200(s.post(&format!("{CFG}/{cid}/assign"), &json!({"enrollmentConfigurationAssignments": []})));
    assert_eq!(get_ok(&s, &coll)["value"], json!([]));
}

#[test]
fn assign_with_an_invalid_item_changes_nothing() {
    let s = Server::start();
    let cid = limit(&s, "A");
    let coll = format!("{CFG}/{cid}/assignments");
    s.create(&coll, &group("keep-1"));
    s.create(&coll, &group("keep-2"));
    let before = get_ok(&s, &coll);
    let bad_items = [
        json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "deviceAndAppManagementAssignmentFilterType": "sometimes"}}),
        json!({"target": {"@odata.type": "#microsoft.graph.noSuchTarget"}}),
        json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "x"}, "unknownProperty": 1}),
        // IntuneCD's unresolved group: groupName/groupType, no groupId (clients.md §1).
        json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupName": "Sales", "groupType": "StaticMembership"}}),
        json!("not an object"),
    ];
    for bad in bad_items {
        // The invalid item comes after a valid one: nothing of the call may stick.
        let body = json!({"enrollmentConfigurationAssignments": [group("new-valid"), bad]});
        expect_error(s.post(&format!("{CFG}/{cid}/assign"), &body), 400, "BadRequest");
        assert_eq!(get_ok(&s, &coll), before);
    }
    for body in [
        json!({"enrollmentConfigurationAssignments": "nope"}),
        json!({"enrollmentConfigurationAssignments": [group("x")], "extra": true}),
        json!({"assignments": [group("x")]}),
        json!([group("x")]),
    ] {
        expect_error(s.post(&format!("{CFG}/{cid}/assign"), &body), 400, "BadRequest");
        assert_eq!(get_ok(&s, &coll), before);
    }
}

#[test]
fn assign_through_v1() {
    let s = Server::start();
    let cid = limit(&s, "A");
    expect_empty_200(s.post(
        &format!("{V1}/deviceEnrollmentConfigurations/{cid}/assign"),
        &json!({"enrollmentConfigurationAssignments": [{"target": {"@odata.type": "#microsoft.graph.configurationManagerCollectionAssignmentTarget", "collectionId": "SMS1"}}]}),
    ));
    let list = get_ok(&s, &format!("{V1}/deviceEnrollmentConfigurations/{cid}/assignments"));
    assert_eq!(
        targets(&list),
        vec![
            json!({"@odata.type": "#microsoft.graph.configurationManagerCollectionAssignmentTarget", "collectionId": "SMS1"})
        ]
    );
}

#[test]
fn assign_on_a_missing_configuration_is_404() {
    let s = Server::start();
    expect_error(
        s.post(
            &format!("{CFG}/00000000-0000-4000-8000-000000000000_Limit/assign"),
            &json!({"enrollmentConfigurationAssignments": []}),
        ),
        404,
        "ResourceNotFound",
    );
}

// --- setPriority ----------------------------------------------------------------------

#[test]
fn created_configurations_get_the_next_priority_within_their_kind() {
    let s = Server::start();
    let a = limit(&s, "a");
    let b = limit(&s, "b");
    let c = limit(&s, "c");
    assert_eq!(priorities(&s, &[&a, &b, &c]), [1, 2, 3]);
    // Another kind counts from 1 on its own (rulings.md 7).
    let w = s.create(CFG, &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration", "displayName": "w"}));
    assert_eq!(w["priority"], 1);
    // A client-sent priority on create is ignored (rulings.md 3).
    let d = s.create(CFG, &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "d", "priority": 1}));
    assert_eq!(d["priority"], 4);
    // Defaults stay 0.
    assert_eq!(priority(&s, &format!("{TENANT}_DefaultLimit")), 0);
}

#[test]
fn set_priority_moves_and_shifts_the_others() {
    let s = Server::start();
    let a = limit(&s, "a");
    let b = limit(&s, "b");
    let c = limit(&s, "c");
    expect_empty_200(s.post(&format!("{CFG}/{c}/setPriority"), &json!({"priority": 1})));
    assert_eq!(priorities(&s, &[&a, &b, &c]), [2, 3, 1]);
    expect_empty_200(s.post(&format!("{CFG}('{a}')/setPriority"), &json!({"priority": 3})));
    assert_eq!(priorities(&s, &[&a, &b, &c]), [3, 2, 1]);
    expect_empty_200(s.post(&format!("{CFG}/{b}/setPriority"), &json!({"priority": 2})));
    assert_eq!(priorities(&s, &[&a, &b, &c]), [3, 2, 1]);
    // The list agrees, and the defaults are untouched.
    let list = get_ok(&s, CFG);
    for v in list["value"].as_array().unwrap() {
        if v["id"].as_str().unwrap().starts_with(TENANT) {
            assert_eq!(v["priority"], 0);
        }
    }
    // Another kind is not shifted.
    let w = s.create(CFG, &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration", "displayName": "w"}));
    expect_empty_200(s.post(&format!("{CFG}/{a}/setPriority"), &json!({"priority": 1})));
    assert_eq!(priority(&s, w["id"].as_str().unwrap()), 1);
    assert_eq!(priorities(&s, &[&a, &b, &c]), [1, 3, 2]);
}

#[test]
fn set_priority_beyond_the_last_keeps_priorities_contiguous() {
    // rulings.md 7: priorities stay unique and contiguous from 1, whatever n is.
    let s = Server::start();
    let a = limit(&s, "a");
    let b = limit(&s, "b");
    let c = limit(&s, "c");
    let r = s.post(&format!("{CFG}/{a}/setPriority"), &json!({"priority": 99}));
    assert!(r.status() == 200 || r.status() == 400, "{}", r.status());
    let mut p = priorities(&s, &[&a, &b, &c]);
    p.sort_unstable();
    assert_eq!(p, [1, 2, 3]);
}

#[test]
fn set_priority_refusals() {
    let s = Server::start();
    let a = limit(&s, "a");
    let b = limit(&s, "b");
    let before = get_ok(&s, CFG);
    for (path, body) in [
        // Defaults cannot be re-prioritised (rulings.md 7).
        (format!("{CFG}/{TENANT}_DefaultLimit/setPriority"), json!({"priority": 1})),
        (format!("{CFG}/{TENANT}_WindowsRestore/setPriority"), json!({"priority": 2})),
        // Priorities start at 1.
        (format!("{CFG}/{a}/setPriority"), json!({"priority": 0})),
        (format!("{CFG}/{a}/setPriority"), json!({"priority": -1})),
        // Parameter checks.
        (format!("{CFG}/{a}/setPriority"), json!({"priority": "1"})),
        (format!("{CFG}/{a}/setPriority"), json!({"priority": 1.5})),
        (format!("{CFG}/{a}/setPriority"), json!({"priority": null})),
        (format!("{CFG}/{a}/setPriority"), json!({})),
        (format!("{CFG}/{a}/setPriority"), json!({"priority": 1, "other": 2})),
        (format!("{CFG}/{a}/setPriority"), json!({"priority": 4_294_967_296_i64})),
    ] {
        expect_error(s.post(&path, &body), 400, "BadRequest");
    }
    assert_eq!(get_ok(&s, CFG), before);
    assert_eq!(priorities(&s, &[&a, &b]), [1, 2]);
    expect_error(s.post(&format!("{CFG}/nope_Limit/setPriority"), &json!({"priority": 1})), 404, "ResourceNotFound");
}

#[test]
fn set_priority_through_v1() {
    let s = Server::start();
    let a = limit(&s, "a");
    let b = limit(&s, "b");
    expect_empty_200(s.post(&format!("{V1}/deviceEnrollmentConfigurations/{b}/setPriority"), &json!({"priority": 1})));
    assert_eq!(priorities(&s, &[&a, &b]), [2, 1]);
}

#[test]
fn apple_profile_set_priority() {
    let s = Server::start();
    let coll = format!("{BETA}/appleUserInitiatedEnrollmentProfiles");
    let p1 = s.create(&coll, &json!({"displayName": "1", "platform": "iOS"}));
    let p2 = s.create(&coll, &json!({"displayName": "2", "platform": "macOS"}));
    let (id1, id2) = (p1["id"].as_str().unwrap(), p2["id"].as_str().unwrap());
    // The doc example's body (examples/...-setpriority.request.json).
    let body = common::example("beta.intune-enrollment-appleuserinitiatedenrollmentprofile-setpriority.request.json");
    assert!(body["priority"].is_i64());
    expect_empty_200(s.post(&format!("{coll}/{id2}/setPriority"), &json!({"priority": 1})));
    assert_eq!(get_ok(&s, &format!("{coll}/{id2}"))["priority"], 1);
    assert_eq!(get_ok(&s, &format!("{coll}/{id1}"))["priority"], 2);
    expect_error(s.post(&format!("{coll}/{id1}/setPriority"), &json!({"priority": 0})), 400, "BadRequest");
}

// --- deletion and priorities -----------------------------------------------------------

#[test]
fn defaults_cannot_be_deleted() {
    let s = Server::start();
    let before = get_ok(&s, CFG);
    for suffix in [
        "DefaultLimit",
        "DefaultPlatformRestrictions",
        "DefaultWindowsHelloForBusiness",
        "DefaultWindows10EnrollmentCompletionPageConfiguration",
        "WindowsRestore",
    ] {
        expect_error(s.delete(&format!("{CFG}/{TENANT}_{suffix}")), 400, "BadRequest");
        expect_error(
            s.delete(&format!("{V1}/deviceEnrollmentConfigurations('{TENANT}_{suffix}')")),
            if suffix == "WindowsRestore" { 404 } else { 400 },
            if suffix == "WindowsRestore" { "ResourceNotFound" } else { "BadRequest" },
        );
    }
    assert_eq!(get_ok(&s, CFG), before);
}

#[test]
fn deleting_a_configuration_renumbers_the_rest() {
    let s = Server::start();
    let a = limit(&s, "a");
    let b = limit(&s, "b");
    let c = limit(&s, "c");
    let d = limit(&s, "d");
    assert_eq!(s.delete(&format!("{CFG}/{b}")).status(), 204);
    assert_eq!(priorities(&s, &[&a, &c, &d]), [1, 2, 3]);
    assert_eq!(s.delete(&format!("{CFG}/{a}")).status(), 204);
    assert_eq!(priorities(&s, &[&c, &d]), [1, 2]);
    // The next one created goes last.
    let e = limit(&s, "e");
    assert_eq!(priorities(&s, &[&c, &d, &e]), [1, 2, 3]);
    assert_eq!(priority(&s, &format!("{TENANT}_DefaultLimit")), 0);
}

// --- case-insensitive action segments (rulings.md 12; IntuneCD posts /setpriority) ------

#[test]
fn action_segments_match_in_any_case() {
    let s = Server::start();
    let a = limit(&s, "a");
    let b = limit(&s, "b");
    expect_empty_200(s.post(&format!("{CFG}/{b}/setpriority"), &json!({"priority": 1})));
    assert_eq!(priorities(&s, &[&a, &b]), [2, 1]);
    expect_empty_200(s.post(&format!("{CFG}/{a}/SETPRIORITY"), &json!({"priority": 1})));
    assert_eq!(priorities(&s, &[&a, &b]), [1, 2]);
    expect_empty_200(
        s.post(&format!("{CFG}/{a}/ASSIGN"), &json!({"enrollmentConfigurationAssignments": [group("g-upper")]})),
    );
    expect_empty_200(
        s.post(&format!("{CFG}/{b}/Assign"), &json!({"enrollmentConfigurationAssignments": [group("g-mixed")]})),
    );
    assert_eq!(get_ok(&s, &format!("{CFG}/{a}/assignments"))["value"][0]["target"]["groupId"], "g-upper");
    assert_eq!(get_ok(&s, &format!("{CFG}/{b}/assignments"))["value"][0]["target"]["groupId"], "g-mixed");
    // Navigation segments too.
    assert_eq!(get_ok(&s, &format!("{CFG}/{a}/ASSIGNMENTS"))["value"].as_array().unwrap().len(), 1);
}

#[test]
fn actions_answer_405_to_get() {
    let s = Server::start();
    let a = limit(&s, "a");
    let r = s.get(&format!("{CFG}/{a}/setPriority"));
    let allow = r.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
    expect_error(r, 405, "MethodNotAllowed");
    assert_eq!(allow.as_deref(), Some("POST"));
}

// --- Autopilot: device → profile (rulings.md 5) -----------------------------------------

const PROFILES: &str = "/beta/deviceManagement/windowsAutopilotDeploymentProfiles";
const DEVICES: &str = "/beta/deviceManagement/windowsAutopilotDeviceIdentities";

fn profile(s: &Server, name: &str) -> String {
    let p = s.create(
        PROFILES,
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": name}),
    );
    p["id"].as_str().unwrap().to_owned()
}

fn device(s: &Server, serial: &str) -> String {
    let d = s.create(DEVICES, &json!({"serialNumber": serial}));
    d["id"].as_str().unwrap().to_owned()
}

fn device_profile_id(s: &Server, did: &str) -> Option<String> {
    let r = s.get(&format!("{DEVICES}/{did}/deploymentProfile"));
    match r.status().as_u16() {
        200 => Some(r.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()),
        _ => {
            expect_error(r, 404, "ResourceNotFound");
            None
        }
    }
}

#[test]
fn a_device_without_a_profile_is_404_on_its_profile_paths() {
    let s = Server::start();
    let did = device(&s, "SN-1");
    expect_error(s.get(&format!("{DEVICES}/{did}/deploymentProfile")), 404, "ResourceNotFound");
    expect_error(s.get(&format!("{DEVICES}/{did}/deploymentProfile/assignments")), 404, "ResourceNotFound");
    expect_error(
        s.post(&format!("{DEVICES}/{did}/deploymentProfile/assignments"), &group("g")),
        404,
        "ResourceNotFound",
    );
    expect_error(s.get(&format!("{DEVICES}('{did}')/deploymentProfile/assignments")), 404, "ResourceNotFound");
}

#[test]
fn deployment_profile_bind_on_create() {
    let s = Server::start();
    let pid = profile(&s, "P");
    // Relative and absolute references both name the profile.
    for reference in [
        format!("{}{PROFILES}('{pid}')", s.base),
        format!("{PROFILES}/{pid}"),
        format!("deviceManagement/windowsAutopilotDeploymentProfiles('{pid}')"),
    ] {
        let d = s.create(DEVICES, &json!({"serialNumber": "SN", "deploymentProfile@odata.bind": reference}));
        let did = d["id"].as_str().unwrap();
        let got = get_ok(&s, &format!("{DEVICES}/{did}/deploymentProfile"));
        assert_eq!(got["id"], pid.as_str());
        assert_eq!(got["@odata.type"], "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile");
    }
    // A bind to something that is not a profile, or to nothing, is refused and creates nothing.
    let before = get_ok(&s, DEVICES);
    let r =
        s.post(DEVICES, &json!({"serialNumber": "X", "deploymentProfile@odata.bind": format!("{PROFILES}('nope')")}));
    assert!(r.status() == 400 || r.status() == 404, "{}", r.status());
    expect_error(
        s.post(
            DEVICES,
            &json!({"serialNumber": "X", "deploymentProfile@odata.bind": format!("{CFG}('{TENANT}_DefaultLimit')")}),
        ),
        400,
        "BadRequest",
    );
    assert_eq!(get_ok(&s, DEVICES), before);
}

#[test]
fn deployment_profile_ref_put_sets_the_link() {
    let s = Server::start();
    let p1 = profile(&s, "P1");
    let p2 = profile(&s, "P2");
    let did = device(&s, "SN-1");
    let r = s.send(
        "PUT",
        &format!("{DEVICES}/{did}/deploymentProfile/$ref"),
        &json!({"@odata.id": format!("{}{PROFILES}('{p1}')", s.base)}),
    );
    // OData 4.01 Protocol §11.4.6.3: a successful $ref update answers 204.
    assert_eq!(r.status(), 204, "{}", r.text().unwrap());
    assert_eq!(device_profile_id(&s, &did).as_deref(), Some(p1.as_str()));
    let r = s.send(
        "PUT",
        &format!("{DEVICES}('{did}')/deploymentProfile/$ref"),
        &json!({"@odata.id": format!("{PROFILES}/{p2}")}),
    );
    assert_eq!(r.status(), 204);
    assert_eq!(device_profile_id(&s, &did).as_deref(), Some(p2.as_str()));
    // No @odata.id: 400, link unchanged.
    expect_error(s.send("PUT", &format!("{DEVICES}/{did}/deploymentProfile/$ref"), &json!({})), 400, "BadRequest");
    assert_eq!(device_profile_id(&s, &did).as_deref(), Some(p2.as_str()));
}

#[test]
fn profile_assign_with_device_ids() {
    let s = Server::start();
    let pid = profile(&s, "P");
    let d1 = device(&s, "SN-1");
    let d2 = device(&s, "SN-2");
    let d3 = device(&s, "SN-3");
    let mut body = common::example("beta.intune-enrollment-windowsautopilotdeploymentprofile-assign.request.json");
    body["deviceIds"] = json!([d1, d2]);
    expect_empty_200(s.post(&format!("{PROFILES}/{pid}/assign"), &body));
    assert_eq!(device_profile_id(&s, &d1).as_deref(), Some(pid.as_str()));
    assert_eq!(device_profile_id(&s, &d2).as_deref(), Some(pid.as_str()));
    assert_eq!(device_profile_id(&s, &d3), None);
    // assignedDevices lists exactly the devices linked to the profile.
    let mut got = ids(&get_ok(&s, &format!("{PROFILES}/{pid}/assignedDevices")));
    got.sort();
    let mut want = vec![d1.clone(), d2.clone()];
    want.sort();
    assert_eq!(got, want);
    // Case-insensitive too.
    expect_empty_200(s.post(&format!("{PROFILES}/{pid}/ASSIGN"), &json!({"deviceIds": [d3]})));
    assert_eq!(device_profile_id(&s, &d3).as_deref(), Some(pid.as_str()));
}

#[test]
fn profile_assign_with_an_unknown_device_changes_nothing() {
    let s = Server::start();
    let pid = profile(&s, "P");
    let d1 = device(&s, "SN-1");
    let r = s.post(&format!("{PROFILES}/{pid}/assign"), &json!({"deviceIds": [d1, "no-such-device"]}));
    assert!(r.status() == 400 || r.status() == 404, "{}", r.status());
    assert_eq!(device_profile_id(&s, &d1), None);
    expect_error(s.post(&format!("{PROFILES}/{pid}/assign"), &json!({"deviceIds": "x"})), 400, "BadRequest");
    // The Autopilot assign takes deviceIds, not an assignment list (operations.md).
    expect_error(
        s.post(&format!("{PROFILES}/{pid}/assign"), &json!({"enrollmentConfigurationAssignments": []})),
        400,
        "BadRequest",
    );
}

#[test]
fn assigned_devices_ref_post_links_a_device() {
    let s = Server::start();
    let pid = profile(&s, "P");
    let did = device(&s, "SN-1");
    let r = s.post(
        &format!("{PROFILES}/{pid}/assignedDevices/$ref"),
        &json!({"@odata.id": format!("{}{DEVICES}('{did}')", s.base)}),
    );
    assert_eq!(r.status(), 204, "{}", r.text().unwrap());
    assert_eq!(device_profile_id(&s, &did).as_deref(), Some(pid.as_str()));
    assert_eq!(ids(&get_ok(&s, &format!("{PROFILES}/{pid}/assignedDevices"))), vec![did.clone()]);
    // A reference to something that is not a device is refused.
    expect_error(
        s.post(
            &format!("{PROFILES}/{pid}/assignedDevices/$ref"),
            &json!({"@odata.id": format!("{PROFILES}('{pid}')")}),
        ),
        400,
        "BadRequest",
    );
}

#[test]
fn device_path_and_profile_path_show_one_assignment_set() {
    let s = Server::start();
    let pid = profile(&s, "P");
    let did = device(&s, "SN-1");
    expect_empty_200(s.post(&format!("{PROFILES}/{pid}/assign"), &json!({"deviceIds": [did]})));
    let via_profile = format!("{PROFILES}/{pid}/assignments");
    let via_device = format!("{DEVICES}/{did}/deploymentProfile/assignments");
    let g1 = "44444444-4444-4444-8444-444444444441";
    let g2 = "44444444-4444-4444-8444-444444444442";
    let a1 = s.create(&via_profile, &group(g1));
    let a2 = s.create(&via_device, &group(g2));
    // Ids are {profileId}_{groupId}_0 whichever path made them (graph-behaviours.md "Shapes").
    assert_eq!(a1["id"], format!("{pid}_{g1}_0").as_str());
    assert_eq!(a2["id"], format!("{pid}_{g2}_0").as_str());
    let mut p = ids(&get_ok(&s, &via_profile));
    let mut d = ids(&get_ok(&s, &via_device));
    p.sort();
    d.sort();
    assert_eq!(p, d);
    assert_eq!(p.len(), 2);
    // Same items (the bodies, not only the ids).
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("@odata.context");
        v
    };
    assert_eq!(
        strip(get_ok(&s, &format!("{via_device}/{}", a1["id"].as_str().unwrap()))),
        strip(get_ok(&s, &format!("{via_profile}/{}", a1["id"].as_str().unwrap())))
    );
    // Deleting through the device path removes it from the profile.
    assert_eq!(s.delete(&format!("{via_device}/{}", a1["id"].as_str().unwrap())).status(), 204);
    assert_eq!(ids(&get_ok(&s, &via_profile)), vec![a2["id"].as_str().unwrap().to_owned()]);
    // PATCH through the profile is seen through the device.
    let r = s.patch(&format!("{via_profile}/{}", a2["id"].as_str().unwrap()), &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g2, "deviceAndAppManagementAssignmentFilterType": "include", "deviceAndAppManagementAssignmentFilterId": "f"}}));
    assert_eq!(r.status(), 200);
    assert_eq!(get_ok(&s, &via_device)["value"][0]["target"]["deviceAndAppManagementAssignmentFilterType"], "include");
}

#[test]
fn autopilot_device_actions_answer_200_empty() {
    let s = Server::start();
    let did = device(&s, "SN-1");
    expect_empty_200(s.post(
        &format!("{DEVICES}/{did}/assignUserToDevice"),
        &common::example("beta.intune-enrollment-windowsautopilotdeviceidentity-assignusertodevice.request.json"),
    ));
    let d = get_ok(&s, &format!("{DEVICES}/{did}"));
    assert!(d["userPrincipalName"].is_string(), "{d}");
    expect_empty_200(
        s.post(&format!("{DEVICES}/{did}/updateDeviceProperties"), &json!({"groupTag": "Kiosk", "displayName": "K1"})),
    );
    let d = get_ok(&s, &format!("{DEVICES}/{did}"));
    assert_eq!(d["groupTag"], "Kiosk");
    assert_eq!(d["displayName"], "K1");
    expect_empty_200(s.post(&format!("{DEVICES}/{did}/unassignUserFromDevice"), &json!({})));
    assert_eq!(get_ok(&s, &format!("{DEVICES}/{did}"))["userPrincipalName"], Value::Null);
}

#[test]
fn concurrent_set_priority_keeps_priorities_unique_and_contiguous() {
    let s = Server::start();
    let all: Vec<String> = (0..6).map(|i| limit(&s, &format!("c{i}"))).collect();
    std::thread::scope(|scope| {
        for t in 0..4_usize {
            let s = &s;
            let all = &all;
            scope.spawn(move || {
                for i in 0..10_usize {
                    let id = &all[(t * 7 + i * 5) % all.len()];
                    let p = (t + i) % all.len() + 1;
                    expect_empty_200(s.post(&format!("{CFG}/{id}/setPriority"), &json!({"priority": p})));
                }
            });
        }
    });
    let mut p = priorities(&s, &all.iter().collect::<Vec<_>>());
    p.sort_unstable();
    assert_eq!(p, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn device_path_create_answers_the_canonical_profile_url() {
    let s = Server::start();
    let pid = profile(&s, "P");
    let did = device(&s, "SN-1");
    expect_empty_200(s.post(&format!("{PROFILES}/{pid}/assign"), &json!({"deviceIds": [did]})));
    let gid = "55555555-5555-4555-8555-555555555555";
    let r = s.post(&format!("{DEVICES}/{did}/deploymentProfile/assignments"), &group(gid));
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = r.json().unwrap();
    // The assignment is contained in the profile: its canonical URL is profile-rooted
    // (operations.md "Path note"; OData CSDL §8.1 containment).
    assert_eq!(location, format!("{}{PROFILES}('{pid}')/assignments('{pid}_{gid}_0')", s.base));
    assert_eq!(
        body["@odata.context"],
        format!(
            "{}/beta/$metadata#deviceManagement/windowsAutopilotDeploymentProfiles('{pid}')/assignments/$entity",
            s.base
        )
        .as_str()
    );
    // The device shows its profile inline with $expand.
    let d = get_ok(&s, &format!("{DEVICES}/{did}?$expand=deploymentProfile"));
    assert_eq!(d["deploymentProfile"]["id"], pid.as_str());
}
