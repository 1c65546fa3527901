//! One store, two views (rulings.md 6): what v1.0 shows of beta data, what it refuses, and
//! that a v1.0 write keeps what only beta knows; plus `$metadata` of both versions and
//! `/health`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{BETA, Server, TENANT, V1, Value, expect_error, get_ok, ids, json};

#[test]
fn metadata_of_both_versions_is_the_csdl() {
    let s = Server::start();
    for (version, has, lacks) in [
        (
            "beta",
            vec![
                "appleUserInitiatedEnrollmentProfile",
                "windowsRestoreDeviceEnrollmentConfiguration",
                "scopeTagGroupAssignmentTarget",
                "deviceAndAppManagementAssignmentFilterType",
            ],
            vec![],
        ),
        (
            "v1.0",
            vec!["deviceEnrollmentLimitConfiguration", "windowsAutopilotDeviceIdentity"],
            vec![
                "appleUserInitiatedEnrollmentProfile",
                "windowsRestoreDeviceEnrollmentConfiguration",
                "deviceAndAppManagementAssignmentFilterType",
            ],
        ),
    ] {
        let r = s.get(&format!("/{version}/$metadata"));
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/xml"), "{ct}");
        let xml = r.text().unwrap();
        assert!(xml.starts_with("<?xml"), "{version}");
        assert!(xml.contains("<edmx:Edmx") && xml.contains("<EntityContainer"), "{version}");
        assert!(xml.contains(r#"<Singleton Name="deviceManagement""#));
        for name in has {
            assert!(xml.contains(&format!("Name=\"{name}\"")), "{version} lacks {name}");
        }
        for name in lacks {
            assert!(!xml.contains(&format!("Name=\"{name}\"")), "{version} has {name}");
        }
    }
    // The same file the server is built from.
    let beta = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/beta.csdl.xml")).unwrap();
    assert_eq!(s.get("/beta/$metadata").text().unwrap(), beta);
    let v1 = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/v1.0.csdl.xml")).unwrap();
    assert_eq!(s.get("/v1.0/$metadata").text().unwrap(), v1);
    // An unknown version is the gateway's 404 (graph-behaviours.md "Shapes").
    let body = expect_error(s.get("/v2.0/$metadata"), 404, "ResourceNotFound");
    assert_eq!(body["error"]["message"], "Invalid version: v2.0");
}

#[test]
fn health_is_200() {
    let s = Server::start();
    let r = s.get("/health");
    assert_eq!(r.status(), 200);
}

#[test]
fn v1_lists_only_what_v1_has() {
    let s = Server::start();
    let list = get_ok(&s, &format!("{V1}/deviceEnrollmentConfigurations"));
    assert_eq!(
        list["@odata.context"],
        format!("{}/v1.0/$metadata#deviceManagement/deviceEnrollmentConfigurations", s.base).as_str()
    );
    let mut got = ids(&list);
    got.sort();
    let mut want: Vec<String> =
        common::default_ids().into_iter().filter(|id| !id.ends_with("_WindowsRestore")).collect();
    want.sort();
    assert_eq!(got, want, "v1.0 has no windowsRestore type (rulings.md 6)");
    for v in list["value"].as_array().unwrap() {
        assert!(v.get("deviceEnrollmentConfigurationType").is_none() && v.get("roleScopeTagIds").is_none(), "{v}");
    }
    // v1.0 ESP has one property of its own; beta's others are not shown.
    let esp = get_ok(
        &s,
        &format!("{V1}/deviceEnrollmentConfigurations/{TENANT}_DefaultWindows10EnrollmentCompletionPageConfiguration"),
    );
    let mut keys: Vec<&str> = esp.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "@odata.context",
            "@odata.type",
            "allowNonBlockingAppInstallation",
            "createdDateTime",
            "description",
            "displayName",
            "id",
            "lastModifiedDateTime",
            "priority",
            "version"
        ]
    );
    // v1.0 platform restrictions: no blocked lists, no mac/tvos/visionOS/windowsHomeSku.
    let p = get_ok(&s, &format!("{V1}/deviceEnrollmentConfigurations/{TENANT}_DefaultPlatformRestrictions"));
    assert!(p.get("macRestriction").is_none() && p.get("tvosRestriction").is_none());
    assert_eq!(
        p["windowsMobileRestriction"],
        json!({"osMaximumVersion": "", "osMinimumVersion": "", "personalDeviceEnrollmentBlocked": false, "platformBlocked": true})
    );
    // The default's assignment, v1.0 view.
    let a = get_ok(&s, &format!("{V1}/deviceEnrollmentConfigurations/{TENANT}_DefaultLimit/assignments"));
    assert_eq!(
        a["value"],
        // Items of the declared type: no @odata.type; the abstract-typed target keeps it (rulings.md 4).
        json!([{"id": format!("{TENANT}_DefaultLimit"), "target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}])
    );
}

#[test]
fn beta_only_objects_are_404_in_v1() {
    let s = Server::start();
    expect_error(
        s.get(&format!("{V1}/deviceEnrollmentConfigurations/{TENANT}_WindowsRestore")),
        404,
        "ResourceNotFound",
    );
    expect_error(
        s.get(&format!("{V1}/deviceEnrollmentConfigurations('{TENANT}_WindowsRestore')/assignments")),
        404,
        "ResourceNotFound",
    );
    expect_error(
        s.patch(&format!("{V1}/deviceEnrollmentConfigurations/{TENANT}_WindowsRestore"), &json!({"displayName": "x"})),
        404,
        "ResourceNotFound",
    );
    for ty in [
        "deviceEnrollmentPlatformRestrictionConfiguration",
        "deviceComanagementAuthorityConfiguration",
        "deviceEnrollmentNotificationConfiguration",
        "windowsRestoreDeviceEnrollmentConfiguration",
    ] {
        let c = s.create(
            &format!("{BETA}/deviceEnrollmentConfigurations"),
            &json!({"@odata.type": format!("#microsoft.graph.{ty}"), "displayName": ty}),
        );
        let id = c["id"].as_str().unwrap();
        expect_error(s.get(&format!("{V1}/deviceEnrollmentConfigurations/{id}")), 404, "ResourceNotFound");
        assert!(!ids(&get_ok(&s, &format!("{V1}/deviceEnrollmentConfigurations"))).contains(&id.to_owned()), "{ty}");
        // Refused as a type on create in v1.0 (rulings.md 3: not the entity's type or derived).
        expect_error(
            s.post(
                &format!("{V1}/deviceEnrollmentConfigurations"),
                &json!({"@odata.type": format!("#microsoft.graph.{ty}"), "displayName": ty}),
            ),
            400,
            "BadRequest",
        );
    }
    // Beta-only collections are unknown segments in v1.0.
    expect_error(s.get(&format!("{V1}/appleUserInitiatedEnrollmentProfiles")), 400, "BadRequest");
    // A v1.0 device has no deploymentProfile navigation.
    let d = s.create(&format!("{BETA}/windowsAutopilotDeviceIdentities"), &json!({"serialNumber": "S"}));
    expect_error(
        s.get(&format!("{V1}/windowsAutopilotDeviceIdentities/{}/deploymentProfile", d["id"].as_str().unwrap())),
        400,
        "BadRequest",
    );
}

#[test]
fn beta_only_properties_are_refused_in_a_v1_body() {
    let s = Server::start();
    let coll = format!("{V1}/deviceEnrollmentConfigurations");
    let before = get_ok(&s, &coll);
    for body in [
        json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "limit": 1, "roleScopeTagIds": ["0"]}),
        json!({"@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration", "showInstallationProgress": true}),
    ] {
        expect_error(s.post(&coll, &body), 400, "BadRequest");
    }
    expect_error(
        s.patch(&format!("{coll}/{TENANT}_DefaultLimit"), &json!({"roleScopeTagIds": ["0"]})),
        400,
        "BadRequest",
    );
    assert_eq!(get_ok(&s, &coll), before);
}

#[test]
fn a_v1_write_keeps_beta_only_properties() {
    let s = Server::start();
    let c = s.create(
        &format!("{BETA}/deviceEnrollmentConfigurations"),
        &json!({"@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration", "displayName": "ESP", "roleScopeTagIds": ["0", "5"],
            "showInstallationProgress": true, "customErrorMessage": "call IT", "allowNonBlockingAppInstallation": false}),
    );
    let id = c["id"].as_str().unwrap();
    let r = s.patch(
        &format!("{V1}/deviceEnrollmentConfigurations/{id}"),
        &json!({"displayName": "ESP v1", "allowNonBlockingAppInstallation": true}),
    );
    assert_eq!(r.status(), 200);
    let v1: Value = r.json().unwrap();
    assert_eq!(v1["displayName"], "ESP v1");
    assert!(v1.get("roleScopeTagIds").is_none() && v1.get("showInstallationProgress").is_none(), "{v1}");
    assert_eq!(
        v1["@odata.context"],
        format!("{}/v1.0/$metadata#deviceManagement/deviceEnrollmentConfigurations/$entity", s.base).as_str()
    );
    let beta = get_ok(&s, &format!("{BETA}/deviceEnrollmentConfigurations/{id}"));
    assert_eq!(beta["displayName"], "ESP v1");
    assert_eq!(beta["allowNonBlockingAppInstallation"], true);
    assert_eq!(beta["roleScopeTagIds"], json!(["0", "5"]));
    assert_eq!(beta["showInstallationProgress"], true);
    assert_eq!(beta["customErrorMessage"], "call IT");
    assert_eq!(beta["deviceEnrollmentConfigurationType"], "windows10EnrollmentCompletionPageConfiguration");

    // An assignment's source/sourceId survive a v1.0 PATCH of its target.
    let coll = format!("{BETA}/deviceEnrollmentConfigurations/{id}/assignments");
    let a = s.create(&coll, &json!({"source": "policySets", "sourceId": "ps-1", "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1"}}));
    let aid = a["id"].as_str().unwrap();
    let r = s.patch(
        &format!("{V1}/deviceEnrollmentConfigurations/{id}/assignments/{aid}"),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g2"}}),
    );
    assert_eq!(r.status(), 200);
    let got = get_ok(&s, &format!("{coll}/{aid}"));
    assert_eq!(got["source"], "policySets");
    assert_eq!(got["sourceId"], "ps-1");
    assert_eq!(got["target"]["groupId"], "g2");
}

/// rulings.md 6, read for nested values: the assignment-filter properties of a target and the
/// blocked-lists of a platform restriction are beta-only properties; a v1.0 client cannot
/// see or send them, so a v1.0 write of the enclosing value should leave them as they were.
#[test]
fn a_v1_write_of_a_complex_value_keeps_its_beta_only_members() {
    let s = Server::start();
    let c = s.create(
        &format!("{BETA}/deviceEnrollmentConfigurations"),
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration", "displayName": "R",
            "windowsRestriction": {"platformBlocked": false, "personalDeviceEnrollmentBlocked": false, "osMinimumVersion": "10.0", "osMaximumVersion": null, "blockedManufacturers": ["Acme"], "blockedSkus": ["SKU1"]}}),
    );
    let id = c["id"].as_str().unwrap();
    let r = s.patch(
        &format!("{V1}/deviceEnrollmentConfigurations/{id}"),
        &json!({"windowsRestriction": {"platformBlocked": false, "personalDeviceEnrollmentBlocked": true, "osMinimumVersion": "10.0", "osMaximumVersion": null}}),
    );
    assert_eq!(r.status(), 200);
    let beta = get_ok(&s, &format!("{BETA}/deviceEnrollmentConfigurations/{id}"));
    assert_eq!(beta["windowsRestriction"]["personalDeviceEnrollmentBlocked"], true);
    assert_eq!(beta["windowsRestriction"]["blockedManufacturers"], json!(["Acme"]));
    assert_eq!(beta["windowsRestriction"]["blockedSkus"], json!(["SKU1"]));
}

/// rulings.md 6 for nested values (see above): the filter of a target.
#[test]
fn a_v1_write_of_a_target_keeps_its_filter() {
    let s = Server::start();
    let c = s.create(
        &format!("{BETA}/deviceEnrollmentConfigurations"),
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "L"}),
    );
    let id = c["id"].as_str().unwrap();
    let coll = format!("{BETA}/deviceEnrollmentConfigurations/{id}/assignments");
    let a = s.create(&coll, &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1", "deviceAndAppManagementAssignmentFilterId": "f-1", "deviceAndAppManagementAssignmentFilterType": "include"}}));
    let aid = a["id"].as_str().unwrap();
    let r = s.patch(
        &format!("{V1}/deviceEnrollmentConfigurations/{id}/assignments/{aid}"),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g2"}}),
    );
    assert_eq!(r.status(), 200);
    let got = get_ok(&s, &format!("{coll}/{aid}"));
    assert_eq!(got["target"]["groupId"], "g2");
    assert_eq!(got["target"]["deviceAndAppManagementAssignmentFilterType"], "include");
    assert_eq!(got["target"]["deviceAndAppManagementAssignmentFilterId"], "f-1");
}

#[test]
fn v1_assign_keeps_nothing_of_the_old_set_but_reads_back_in_beta() {
    let s = Server::start();
    let c = s.create(
        &format!("{BETA}/deviceEnrollmentConfigurations"),
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "L"}),
    );
    let id = c["id"].as_str().unwrap();
    s.create(&format!("{BETA}/deviceEnrollmentConfigurations/{id}/assignments"), &json!({"target": {"@odata.type": "#microsoft.graph.scopeTagGroupAssignmentTarget", "entraObjectId": "e", "targetType": "user"}}));
    let r = s.post(&format!("{V1}/deviceEnrollmentConfigurations/{id}/assign"), &json!({"enrollmentConfigurationAssignments": [{"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}]}));
    assert_eq!(r.status(), 200);
    let beta = get_ok(&s, &format!("{BETA}/deviceEnrollmentConfigurations/{id}/assignments"));
    assert_eq!(beta["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        beta["value"][0]["target"],
        json!({"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget", "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none"})
    );
    assert_eq!(beta["value"][0]["source"], "direct");
}
