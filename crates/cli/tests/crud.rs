//! List, get (both key syntaxes), create, update and delete of every collection, in both
//! versions, against the real binary (operations.md "Parent resources" and "Assignment
//! collections"; rulings.md 2: create 201 + entity, PATCH 200 + entity, DELETE 204).
#![allow(clippy::unwrap_used)]

mod common;

use common::{BETA, GRAPH_JSON, Server, TENANT, V1, Value, expect_error, get_ok, ids, is_guid, json};

/// Recursively checks that every key of `expected` has the same value in `got`.
fn assert_subset(expected: &Value, got: &Value, at: &str) {
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => {
            for (k, v) in e {
                let Some(gv) = g.get(k) else { panic!("{at}.{k} missing in {got}") };
                assert_subset(v, gv, &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(got, expected, "at {at}"),
    }
}

/// `@odata.type` with the leading `#` (rulings.md 4: always on an entity, with `#`).
fn hash(t: &str) -> String {
    format!("#microsoft.graph.{t}")
}

/// One full cycle on a collection: create (201, Location, `$entity` context), get by
/// `coll/{id}` and `coll('{id}')`, list, PATCH (200 with the entity), DELETE (204),
/// then 404 on both key forms. `path` is the collection as requested; `canonical` its
/// canonical form after the version (`deviceManagement/x('id')/assignments`).
/// Returns the created body (after the PATCH, before the DELETE).
fn cycle(s: &Server, version: &str, path: &str, canonical: &str, create: &Value, patch: &Value) -> Value {
    let r = s.post(path, create);
    let status = r.status();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(r.headers()["content-type"], GRAPH_JSON);
    let text = r.text().unwrap();
    assert_eq!(status, 201, "POST {path}: {text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());
    // Client-sent ids are ignored (graph-behaviours.md "Responses"; rulings.md 3).
    assert_ne!(id, "client-chosen-id");
    let key = format!("('{id}')");
    assert_eq!(location.as_deref(), Some(format!("{}/{version}/{canonical}{key}", s.base).as_str()), "Location");
    let entity_context = format!("{}/{version}/$metadata#{canonical}/$entity", s.base);
    assert_eq!(created["@odata.context"], entity_context.as_str());
    let without_annotations = {
        let mut c = create.clone();
        let m = c.as_object_mut().unwrap();
        m.retain(|k, _| !k.contains('@') && k != "id");
        c
    };
    assert_subset(&without_annotations, &created, "created");

    // Both key syntaxes address it and answer the same body.
    let by_slash = get_ok(s, &format!("{path}/{id}"));
    let by_key = get_ok(s, &format!("{path}{key}"));
    assert_eq!(by_slash, created);
    assert_eq!(by_key, created);

    // The list holds it exactly once, under the collection's context.
    let list = get_ok(s, path);
    assert_eq!(list["@odata.context"], format!("{}/{version}/$metadata#{canonical}", s.base).as_str());
    assert_eq!(ids(&list).iter().filter(|i| **i == id).count(), 1, "{list}");
    let listed = list["value"].as_array().unwrap().iter().find(|v| v["id"] == id.as_str()).unwrap();
    let mut expected_item = created.clone();
    expected_item.as_object_mut().unwrap().remove("@odata.context");
    // An item carries @odata.type only where its type is not the collection's declared
    // type (rulings.md 4, amended); the entity alone always does.
    if created["@odata.type"] == hash(declared_item_type(canonical)).as_str() {
        expected_item.as_object_mut().unwrap().remove("@odata.type");
    }
    assert_eq!(listed, &expected_item);

    // PATCH answers 200 with the whole updated entity (seed 004), and it is stored.
    let r = s.patch(&format!("{path}{key}"), patch);
    let status = r.status();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "PATCH: {text}");
    let updated: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["@odata.context"], entity_context.as_str());
    assert_eq!(updated["@odata.type"], created["@odata.type"]);
    assert_subset(patch, &updated, "updated");
    // What the PATCH did not name is unchanged.
    for (k, v) in created.as_object().unwrap() {
        if patch.get(k).is_none() && !matches!(k.as_str(), "lastModifiedDateTime" | "version") {
            assert_eq!(&updated[k], v, "PATCH changed '{k}'");
        }
    }
    assert_eq!(get_ok(s, &format!("{path}/{id}")), updated);

    // DELETE: 204, no body; then 404 on both key forms, and gone from the list.
    let r = s.delete(&format!("{path}/{id}"));
    assert_eq!(r.status(), 204);
    assert_eq!(r.text().unwrap(), "");
    expect_error(s.get(&format!("{path}/{id}")), 404, "ResourceNotFound");
    expect_error(s.get(&format!("{path}{key}")), 404, "ResourceNotFound");
    expect_error(s.delete(&format!("{path}{key}")), 404, "ResourceNotFound");
    expect_error(s.patch(&format!("{path}{key}"), patch), 404, "ResourceNotFound");
    assert!(!ids(&get_ok(s, path)).contains(&id));
    updated
}

/// The declared item type of the collection at `canonical` (its last navigation, from the
/// schema: schema/beta.csdl.xml).
fn declared_item_type(canonical: &str) -> &'static str {
    match canonical.rsplit('/').next().unwrap() {
        "deviceEnrollmentConfigurations" => "deviceEnrollmentConfiguration",
        "windowsAutopilotDeploymentProfiles" => "windowsAutopilotDeploymentProfile",
        "windowsAutopilotDeviceIdentities" => "windowsAutopilotDeviceIdentity",
        "appleUserInitiatedEnrollmentProfiles" => "appleUserInitiatedEnrollmentProfile",
        "assignmentFilters" => "deviceAndAppManagementAssignmentFilter",
        "assignments" if canonical.contains("deviceEnrollmentConfigurations(") => "enrollmentConfigurationAssignment",
        "assignments" if canonical.contains("windowsAutopilotDeploymentProfiles(") => {
            "windowsAutopilotDeploymentProfileAssignment"
        }
        "assignments" if canonical.contains("appleUserInitiatedEnrollmentProfiles(") => {
            "appleEnrollmentProfileAssignment"
        }
        other => panic!("no declared type known for {other}"),
    }
}

/// `<guid>_<suffix>` (defaults.md "Ids of configurations users create").
fn assert_configuration_id(id: &str, suffix: Option<&str>) {
    let (guid, rest) = id.split_once('_').unwrap_or_else(|| panic!("id '{id}' is not <guid>_<Suffix>"));
    assert!(is_guid(guid), "id '{id}' does not start with a GUID");
    assert!(!rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()), "id '{id}'");
    if let Some(suffix) = suffix {
        assert_eq!(rest, suffix, "id '{id}'");
    }
}

/// Every derived type of the beta CSDL: (type, type-specific create body, patch body,
/// id suffix where defaults.md has evidence of it, deviceEnrollmentConfigurationType).
fn beta_configuration_cases() -> Vec<(&'static str, Value, Value, Option<&'static str>, &'static str)> {
    vec![
        ("deviceEnrollmentLimitConfiguration", json!({"limit": 3}), json!({"limit": 7}), Some("Limit"), "limit"),
        (
            "deviceEnrollmentPlatformRestrictionsConfiguration",
            json!({"iosRestriction": {"platformBlocked": true, "personalDeviceEnrollmentBlocked": false, "osMinimumVersion": "15.0", "osMaximumVersion": null, "blockedManufacturers": [], "blockedSkus": []}}),
            json!({"androidRestriction": {"platformBlocked": false, "personalDeviceEnrollmentBlocked": true, "osMinimumVersion": "", "osMaximumVersion": "", "blockedManufacturers": ["Acme"], "blockedSkus": []}}),
            Some("PlatformRestrictions"),
            "platformRestrictions",
        ),
        (
            "deviceEnrollmentPlatformRestrictionConfiguration",
            json!({"platformType": "ios", "platformRestriction": {"platformBlocked": false, "personalDeviceEnrollmentBlocked": true, "osMinimumVersion": null, "osMaximumVersion": null, "blockedManufacturers": [], "blockedSkus": []}}),
            json!({"description": "single platform"}),
            Some("SinglePlatformRestriction"),
            "singlePlatformRestriction",
        ),
        (
            "deviceEnrollmentWindowsHelloForBusinessConfiguration",
            json!({"pinMinimumLength": 8, "state": "enabled", "pinUppercaseCharactersUsage": "required"}),
            json!({"pinMaximumLength": 64, "securityKeyForSignIn": "disabled"}),
            None,
            "windowsHelloForBusiness",
        ),
        (
            "windows10EnrollmentCompletionPageConfiguration",
            json!({"showInstallationProgress": true, "customErrorMessage": "Call IT", "selectedMobileAppIds": ["app-1"]}),
            json!({"installProgressTimeoutInMinutes": 90}),
            Some("Windows10EnrollmentCompletionPageConfiguration"),
            // defaults.md and the enum member; graph-behaviours.md's "enrollmentCompletionPageConfiguration"
            // is not a member of deviceEnrollmentConfigurationType.
            "windows10EnrollmentCompletionPageConfiguration",
        ),
        (
            "deviceComanagementAuthorityConfiguration",
            json!({"managedDeviceAuthority": 1, "installConfigurationManagerAgent": true}),
            json!({"configurationManagerAgentCommandLineArgument": "/mp:x"}),
            None,
            "deviceComanagementAuthorityConfiguration",
        ),
        (
            "deviceEnrollmentNotificationConfiguration",
            json!({"platformType": "windows", "templateType": "email", "notificationMessageTemplateId": "6a1b2c3d-0000-4000-8000-00000000000a", "notificationTemplates": ["email_6a1b2c3d"], "brandingOptions": "includeCompanyLogo"}),
            json!({"defaultLocale": "en-US"}),
            None,
            "enrollmentNotificationsConfiguration",
        ),
        (
            "windowsRestoreDeviceEnrollmentConfiguration",
            json!({"state": "enabled"}),
            json!({"state": "disabled"}),
            None,
            "windowsRestore",
        ),
    ]
}

#[test]
fn beta_configurations_of_every_derived_type() {
    let s = Server::start();
    let coll = format!("{BETA}/deviceEnrollmentConfigurations");
    for (ty, specific, patch, suffix, kind) in beta_configuration_cases() {
        let mut body = json!({"@odata.type": hash(ty), "displayName": format!("{ty} one"), "description": "made by crud.rs", "id": "client-chosen-id"});
        body.as_object_mut().unwrap().extend(specific.as_object().unwrap().clone());
        let mut patch = patch;
        patch.as_object_mut().unwrap().insert("displayName".into(), json!(format!("{ty} renamed")));
        let done = cycle(&s, "beta", &coll, "deviceManagement/deviceEnrollmentConfigurations", &body, &patch);
        assert_eq!(done["@odata.type"], hash(ty).as_str());
        assert_eq!(done["deviceEnrollmentConfigurationType"], kind, "{ty}");
        assert_configuration_id(done["id"].as_str().unwrap(), suffix);
    }
}

#[test]
fn beta_configuration_ids_are_fresh_guid_and_suffix() {
    let s = Server::start();
    let coll = format!("{BETA}/deviceEnrollmentConfigurations");
    let body =
        json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "L", "limit": 1});
    let a = s.create(&coll, &body);
    let b = s.create(&coll, &body);
    assert_ne!(a["id"], b["id"]);
    assert_configuration_id(a["id"].as_str().unwrap(), Some("Limit"));
    assert_configuration_id(b["id"].as_str().unwrap(), Some("Limit"));
    // Every property of the type is present (graph-behaviours.md "Shapes").
    for p in [
        "createdDateTime",
        "description",
        "deviceEnrollmentConfigurationType",
        "displayName",
        "lastModifiedDateTime",
        "priority",
        "roleScopeTagIds",
        "version",
        "limit",
    ] {
        assert!(a.get(p).is_some(), "'{p}' missing from {a}");
    }
    assert_eq!(a["description"], Value::Null);
    assert_eq!(a["version"], 0);
}

#[test]
fn beta_configuration_assignments_crud_with_both_parent_key_forms() {
    let s = Server::start();
    let cfg = s.create(
        &format!("{BETA}/deviceEnrollmentConfigurations"),
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "L", "limit": 2}),
    );
    let cid = cfg["id"].as_str().unwrap();
    let canonical = format!("deviceManagement/deviceEnrollmentConfigurations('{cid}')/assignments");
    let create = json!({"id": "client-chosen-id", "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "11111111-1111-4111-8111-111111111111"}});
    let patch = json!({"target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "22222222-2222-4222-8222-222222222222", "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none"}});
    for path in [
        format!("{BETA}/deviceEnrollmentConfigurations/{cid}/assignments"),
        format!("{BETA}/deviceEnrollmentConfigurations('{cid}')/assignments"),
    ] {
        let done = cycle(&s, "beta", &path, &canonical, &create, &patch);
        assert_eq!(done["@odata.type"], "#microsoft.graph.enrollmentConfigurationAssignment");
        // source defaults to direct (operations.md "Rules"); sourceId null.
        assert_eq!(done["source"], "direct");
        assert_eq!(done["sourceId"], Value::Null);
    }
    // A default configuration's assignment is addressable too.
    let a = get_ok(
        &s,
        &format!("{BETA}/deviceEnrollmentConfigurations('{TENANT}_DefaultLimit')/assignments('{TENANT}_DefaultLimit')"),
    );
    assert_eq!(
        a["@odata.context"],
        format!("{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('{TENANT}_DefaultLimit')/assignments/$entity", s.base).as_str()
    );
}

#[test]
fn v1_configurations_and_assignments_crud() {
    let s = Server::start();
    let coll = format!("{V1}/deviceEnrollmentConfigurations");
    let cases = [
        ("deviceEnrollmentLimitConfiguration", json!({"limit": 4}), json!({"limit": 9})),
        (
            "deviceEnrollmentPlatformRestrictionsConfiguration",
            json!({"windowsRestriction": {"platformBlocked": false, "personalDeviceEnrollmentBlocked": true, "osMinimumVersion": "10.0", "osMaximumVersion": null}}),
            json!({"description": "d"}),
        ),
        (
            "deviceEnrollmentWindowsHelloForBusinessConfiguration",
            json!({"pinMinimumLength": 6, "state": "enabled"}),
            json!({"state": "disabled"}),
        ),
        (
            "windows10EnrollmentCompletionPageConfiguration",
            json!({"allowNonBlockingAppInstallation": true}),
            json!({"allowNonBlockingAppInstallation": false}),
        ),
    ];
    for (ty, specific, patch) in cases {
        let mut body = json!({"@odata.type": hash(ty), "displayName": ty});
        body.as_object_mut().unwrap().extend(specific.as_object().unwrap().clone());
        let done = cycle(&s, "v1.0", &coll, "deviceManagement/deviceEnrollmentConfigurations", &body, &patch);
        // v1.0 has neither of these (reference/README.md).
        assert!(done.get("deviceEnrollmentConfigurationType").is_none(), "{done}");
        assert!(done.get("roleScopeTagIds").is_none(), "{done}");
    }
    let cfg = s.create(
        &coll,
        &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "v1", "limit": 1}),
    );
    let cid = cfg["id"].as_str().unwrap();
    assert_eq!(cfg["priority"], 1);
    let done = cycle(
        &s,
        "v1.0",
        &format!("{coll}/{cid}/assignments"),
        &format!("deviceManagement/deviceEnrollmentConfigurations('{cid}')/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}}),
        &json!({"target": {"@odata.type": "#microsoft.graph.configurationManagerCollectionAssignmentTarget", "collectionId": "SMS00001"}}),
    );
    // v1.0 enrollmentConfigurationAssignment has only id and target.
    let mut keys: Vec<&str> = done.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["@odata.context", "@odata.type", "id", "target"]);
}

#[test]
fn apple_user_initiated_profiles_and_their_assignments() {
    let s = Server::start();
    let coll = format!("{BETA}/appleUserInitiatedEnrollmentProfiles");
    let body = json!({"displayName": "iOS BYOD", "description": "d", "platform": "iOS", "defaultEnrollmentType": "accountDrivenUserEnrollment",
        "availableEnrollmentTypeOptions": [{"enrollmentType": "user", "ownerType": "personal"}], "id": "client-chosen-id"});
    let done = cycle(
        &s,
        "beta",
        &coll,
        "deviceManagement/appleUserInitiatedEnrollmentProfiles",
        &body,
        &json!({"displayName": "renamed", "platform": "macOS"}),
    );
    assert_eq!(done["@odata.type"], "#microsoft.graph.appleUserInitiatedEnrollmentProfile");

    let p = s.create(&coll, &json!({"displayName": "P", "platform": "iOS"}));
    let pid = p["id"].as_str().unwrap();
    let done = cycle(
        &s,
        "beta",
        &format!("{coll}('{pid}')/assignments"),
        &format!("deviceManagement/appleUserInitiatedEnrollmentProfiles('{pid}')/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g-1", "deviceAndAppManagementAssignmentFilterId": "f-1", "deviceAndAppManagementAssignmentFilterType": "include"}}),
        &json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget", "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none"}}),
    );
    assert_eq!(done["@odata.type"], "#microsoft.graph.appleEnrollmentProfileAssignment");
    // appleEnrollmentProfileAssignment has only target (reference/README.md).
    assert!(done.get("source").is_none());
}

#[test]
fn autopilot_profiles_of_both_derived_types_and_their_assignments() {
    let s = Server::start();
    let coll = format!("{BETA}/windowsAutopilotDeploymentProfiles");
    let cases = [
        json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "AAD", "deviceNameTemplate": "PC-%SERIAL%", "deviceType": "windowsPc", "language": "os-default", "id": "client-chosen-id"}),
        json!({"@odata.type": "#microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile", "displayName": "Hybrid", "hybridAzureADJoinSkipConnectivityCheck": true,
            "outOfBoxExperienceSettings": {"hidePrivacySettings": true, "hideEULA": true, "userType": "standard", "deviceUsageType": "singleUser", "skipKeyboardSelectionPage": false, "hideEscapeLink": true}}),
    ];
    for body in cases {
        let done = cycle(
            &s,
            "beta",
            &coll,
            "deviceManagement/windowsAutopilotDeploymentProfiles",
            &body,
            &json!({"description": "patched", "roleScopeTagIds": ["0", "7"]}),
        );
        assert_eq!(done["@odata.type"], body["@odata.type"]);
    }
    let p = s.create(&coll, &cases_profile());
    let pid = p["id"].as_str().unwrap();
    let gid = "33333333-3333-4333-8333-333333333333";
    let done = cycle(
        &s,
        "beta",
        &format!("{coll}/{pid}/assignments"),
        &format!("deviceManagement/windowsAutopilotDeploymentProfiles('{pid}')/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid}}),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid, "deviceAndAppManagementAssignmentFilterId": "f-9", "deviceAndAppManagementAssignmentFilterType": "exclude"}}),
    );
    // Autopilot profile assignment ids are {profileId}_{groupId}_0, sourceId the profile
    // (graph-behaviours.md "Shapes").
    assert_eq!(done["id"], format!("{pid}_{gid}_0").as_str());
    assert_eq!(done["@odata.type"], "#microsoft.graph.windowsAutopilotDeploymentProfileAssignment");
    assert_eq!(done["source"], "direct");
    assert_eq!(done["sourceId"], pid);
}

fn cases_profile() -> Value {
    json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "P"})
}

#[test]
fn autopilot_device_identities_crud() {
    let s = Server::start();
    let coll = format!("{BETA}/windowsAutopilotDeviceIdentities");
    let done = cycle(
        &s,
        "beta",
        &coll,
        "deviceManagement/windowsAutopilotDeviceIdentities",
        &json!({"serialNumber": "SN-0001", "manufacturer": "Contoso", "model": "Surface", "groupTag": "Sales", "id": "client-chosen-id"}),
        // operations.md lists no update page for devices; Graph users PATCH them anyway
        // (and the action updateDeviceProperties does the same): 200 like every Intune PATCH.
        &json!({"groupTag": "Finance", "displayName": "Kiosk 1"}),
    );
    assert_eq!(done["@odata.type"], "#microsoft.graph.windowsAutopilotDeviceIdentity");
    let v1 = cycle(
        &s,
        "v1.0",
        &format!("{V1}/windowsAutopilotDeviceIdentities"),
        "deviceManagement/windowsAutopilotDeviceIdentities",
        &json!({"serialNumber": "SN-0002", "manufacturer": "Contoso"}),
        &json!({"groupTag": "Ops"}),
    );
    // beta-only properties are not in a v1.0 view (rulings.md 6).
    assert!(v1.get("deploymentProfileAssignmentStatus").is_none(), "{v1}");
    assert!(v1.get("userlessEnrollmentStatus").is_none(), "{v1}");
}

#[test]
fn a_new_tenant_has_empty_apple_and_autopilot_collections() {
    let s = Server::start();
    for c in [
        "appleUserInitiatedEnrollmentProfiles",
        "windowsAutopilotDeploymentProfiles",
        "windowsAutopilotDeviceIdentities",
    ] {
        let list = get_ok(&s, &format!("{BETA}/{c}"));
        assert_eq!(list["value"], json!([]), "{c}");
        assert_eq!(list["@odata.context"], format!("{}/beta/$metadata#deviceManagement/{c}", s.base).as_str());
    }
    assert_eq!(get_ok(&s, &format!("{V1}/windowsAutopilotDeviceIdentities"))["value"], json!([]));
}

/// The five defaults, exactly as defaults.md gives them (beta view).
#[test]
fn defaults_are_the_five_of_defaults_md() {
    let s = Server::start();
    let list = get_ok(&s, &format!("{BETA}/deviceEnrollmentConfigurations"));
    let mut got = ids(&list);
    got.sort();
    let mut want = common::default_ids();
    want.sort();
    assert_eq!(got, want);
    let common = |ty: &str, kind: &str, description: &str| {
        json!({"@odata.type": hash(ty), "displayName": "All users and all devices", "description": description, "priority": 0,
            "createdDateTime": "0001-01-01T00:00:00Z", "version": 0, "roleScopeTagIds": [], "deviceEnrollmentConfigurationType": kind})
    };
    let mut limit = common(
        "deviceEnrollmentLimitConfiguration",
        "limit",
        "This is the default Device Limit Restriction applied with the lowest priority to all users regardless of group membership.",
    );
    limit["limit"] = json!(5);
    let mut whfb = common(
        "deviceEnrollmentWindowsHelloForBusinessConfiguration",
        "windowsHelloForBusiness",
        "This is the default Windows Hello for Business configuration applied with the lowest priority to all users regardless of group membership.",
    );
    whfb.as_object_mut().unwrap().extend(
        json!({"pinMinimumLength": 6, "pinMaximumLength": 127, "pinUppercaseCharactersUsage": "disallowed", "pinLowercaseCharactersUsage": "disallowed",
            "pinSpecialCharactersUsage": "disallowed", "state": "notConfigured", "securityDeviceRequired": false, "unlockWithBiometricsEnabled": true,
            "remotePassportEnabled": true, "pinPreviousBlockCount": 0, "pinExpirationInDays": 0, "enhancedBiometricsState": "notConfigured",
            "securityKeyForSignIn": "notConfigured", "enhancedSignInSecurity": 0})
        .as_object()
        .unwrap()
        .clone(),
    );
    let mut esp = common(
        "windows10EnrollmentCompletionPageConfiguration",
        "windows10EnrollmentCompletionPageConfiguration",
        "This is the default enrollment status screen configuration applied with the lowest priority to all users and all devices regardless of group membership.",
    );
    esp.as_object_mut().unwrap().extend(
        json!({"showInstallationProgress": false, "blockDeviceSetupRetryByUser": true, "allowDeviceResetOnInstallFailure": false,
            "allowLogCollectionOnInstallFailure": false, "customErrorMessage": "", "installProgressTimeoutInMinutes": 0, "allowDeviceUseOnInstallFailure": false,
            "selectedMobileAppIds": [], "allowNonBlockingAppInstallation": false, "installQualityUpdates": false, "trackInstallProgressForAutopilotOnly": false,
            "disableUserStatusTrackingAfterFirstUser": false})
        .as_object()
        .unwrap()
        .clone(),
    );
    let mut restore = common(
        "windowsRestoreDeviceEnrollmentConfiguration",
        "windowsRestore",
        "This is the default Windows Restore configuration applied with the lowest priority to all users and all devices regardless of group membership.",
    );
    restore["state"] = json!("notConfigured");
    let platform = common(
        "deviceEnrollmentPlatformRestrictionsConfiguration",
        "platformRestrictions",
        "This is the default Device Type Restriction applied with the lowest priority to all users regardless of group membership.",
    );
    for (suffix, expected) in [
        ("DefaultLimit", limit),
        ("DefaultWindowsHelloForBusiness", whfb),
        ("DefaultWindows10EnrollmentCompletionPageConfiguration", esp),
        ("WindowsRestore", restore),
        ("DefaultPlatformRestrictions", platform),
    ] {
        let id = format!("{TENANT}_{suffix}");
        let got = get_ok(&s, &format!("{BETA}/deviceEnrollmentConfigurations/{id}"));
        assert_eq!(got["id"], id.as_str());
        assert_eq!(
            got["@odata.context"],
            format!("{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations/$entity", s.base).as_str()
        );
        assert_subset(&expected, &got, &id);
        // Its single assignment has the configuration's id and targets all devices.
        let list = get_ok(&s, &format!("{BETA}/deviceEnrollmentConfigurations/{id}/assignments"));
        assert_eq!(
            list["value"],
            json!([{"id": id, "source": "direct", "sourceId": null,
                "target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget", "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none"}}])
        );
    }
    // Platform restrictions: windowsMobile blocked, the others not; "" vs null per platform.
    let p = get_ok(&s, &format!("{BETA}/deviceEnrollmentConfigurations/{TENANT}_DefaultPlatformRestrictions"));
    assert_eq!(p["windowsMobileRestriction"]["platformBlocked"], true);
    for r in ["ios", "windows", "android", "androidForWork"] {
        let v = &p[format!("{r}Restriction")];
        assert_eq!(v["platformBlocked"], false, "{r}");
        assert_eq!(v["osMinimumVersion"], "", "{r}");
        assert_eq!(v["blockedManufacturers"], json!([]), "{r}");
    }
    for r in ["mac", "macOS", "windowsHomeSku"] {
        assert_eq!(p[format!("{r}Restriction")]["osMinimumVersion"], Value::Null, "{r}");
    }
}

/// graph-behaviours.md "Shapes": Autopilot profiles answer the legacy and the new names of
/// renamed properties, kept in step (behaviour.json `types` `renamed`).
#[test]
fn renamed_autopilot_properties_answer_under_both_names_in_step() {
    let s = Server::start();
    let coll = format!("{BETA}/windowsAutopilotDeploymentProfiles");
    let azure = "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile";
    // Created with neither: the new names hold the legacy defaults.
    let p = s.create(&coll, &json!({"@odata.type": azure, "displayName": "none"}));
    assert_eq!((&p["extractHardwareHash"], &p["hardwareHashExtractionEnabled"]), (&json!(false), &json!(false)));
    assert_eq!((&p["enableWhiteGlove"], &p["preprovisioningAllowed"]), (&json!(false), &json!(false)));
    assert_eq!((&p["language"], &p["locale"]), (&Value::Null, &Value::Null));
    assert_eq!((&p["outOfBoxExperienceSettings"], &p["outOfBoxExperienceSetting"]), (&Value::Null, &Value::Null));
    // Created with the legacy names (IntuneCD's backups, older tools).
    let p = s.create(
        &coll,
        &json!({"@odata.type": azure, "displayName": "legacy", "language": "os-default", "extractHardwareHash": true,
                "enableWhiteGlove": true,
                "outOfBoxExperienceSettings": {"hidePrivacySettings": true, "hideEULA": true, "userType": "standard",
                    "deviceUsageType": "shared", "skipKeyboardSelectionPage": true, "hideEscapeLink": false}}),
    );
    let id = p["id"].as_str().unwrap();
    let oobe = json!({"deviceUsageType": "shared", "escapeLinkHidden": false, "eulaHidden": true,
                      "keyboardSelectionPageSkipped": true, "privacySettingsHidden": true, "userType": "standard"});
    for read in [p.clone(), get_ok(&s, &format!("{coll}/{id}"))] {
        assert_eq!(read["locale"], "os-default");
        assert_eq!(read["hardwareHashExtractionEnabled"], true);
        assert_eq!(read["preprovisioningAllowed"], true);
        assert_eq!(read["outOfBoxExperienceSetting"], oobe, "{read}");
    }
    // A write to the new name reads back under the legacy one too.
    let r = s.patch(
        &format!("{coll}/{id}"),
        &json!({"locale": "en-US", "preprovisioningAllowed": false, "outOfBoxExperienceSetting": {"privacySettingsHidden": false,
                "eulaHidden": false, "userType": "administrator", "deviceUsageType": "singleUser",
                "keyboardSelectionPageSkipped": false, "escapeLinkHidden": true}}),
    );
    assert_eq!(r.status(), 200);
    let read = get_ok(&s, &format!("{coll}/{id}"));
    assert_eq!((&read["language"], &read["locale"]), (&json!("en-US"), &json!("en-US")));
    assert_eq!((&read["enableWhiteGlove"], &read["preprovisioningAllowed"]), (&json!(false), &json!(false)));
    assert_eq!(
        read["outOfBoxExperienceSettings"],
        json!({"deviceUsageType": "singleUser", "hideEscapeLink": true, "hideEULA": false, "hidePrivacySettings": false,
               "skipKeyboardSelectionPage": false, "userType": "administrator"})
    );
    // What a PATCH does not name stays in step as it was.
    assert_eq!((&read["extractHardwareHash"], &read["hardwareHashExtractionEnabled"]), (&json!(true), &json!(true)));
    // Both names with different values: the current one wins, under both.
    s.patch(&format!("{coll}/{id}"), &json!({"language": "fr-FR", "locale": "de-DE"}));
    let read = get_ok(&s, &format!("{coll}/{id}"));
    assert_eq!((&read["language"], &read["locale"]), (&json!("de-DE"), &json!("de-DE")));
}

/// IntuneCD's `--remove` clears a profile's assignments with a DELETE on the collection and
/// accepts only 200 (clients.md section 1; behaviour.json `clearableCollections`).
#[test]
fn delete_on_an_autopilot_profiles_assignments_clears_them() {
    let s = Server::start();
    let p = s.create(
        &format!("{BETA}/windowsAutopilotDeploymentProfiles"),
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "P"}),
    );
    let assignments = format!("{BETA}/windowsAutopilotDeploymentProfiles/{}/assignments", p["id"].as_str().unwrap());
    for g in ["g1", "g2"] {
        s.create(
            &assignments,
            &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g}}),
        );
    }
    assert_eq!(ids(&get_ok(&s, &assignments)).len(), 2);
    let r = s.delete(&assignments);
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "");
    assert_eq!(get_ok(&s, &assignments)["value"], json!([]));
    // Other collections are not cleared this way.
    let r = s.delete(&format!("{BETA}/deviceEnrollmentConfigurations/{TENANT}_DefaultLimit/assignments"));
    assert_eq!(r.headers()["allow"], "GET, POST");
    expect_error(r, 405, "MethodNotAllowed");
    expect_error(s.delete(&format!("{BETA}/windowsAutopilotDeploymentProfiles")), 405, "MethodNotAllowed");
}

/// graph-behaviours.md "Shapes": a second Autopilot profile assigned to All Devices is refused
/// with Intune's message in its JSON-in-message form; the status is not captured, 400 chosen
/// (behaviour.json `uniqueTarget`).
#[test]
fn a_second_autopilot_profile_assigned_to_all_devices_is_refused() {
    let s = Server::start();
    let coll = format!("{BETA}/windowsAutopilotDeploymentProfiles");
    let new = |name: &str| {
        let p = s.create(
            &coll,
            &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": name}),
        );
        p["id"].as_str().unwrap().to_owned()
    };
    let (first, second) = (new("first"), new("second"));
    let all = json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}});
    s.create(&format!("{coll}/{first}/assignments"), &all);
    let body = expect_error(s.post(&format!("{coll}/{second}/assignments"), &all), 400, "BadRequest");
    let inner: Value = serde_json::from_str(body["error"]["message"].as_str().unwrap()).unwrap();
    assert!(
        inner["Message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Another Profile {first} is already assigned to All Devices.")),
        "{inner}"
    );
    assert_eq!(get_ok(&s, &format!("{coll}/{second}/assignments"))["value"], json!([]));
    // Other targets are fine on the second profile; and once the first lets go, so is All Devices.
    s.create(
        &format!("{coll}/{second}/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g"}}),
    );
    assert_eq!(s.delete(&format!("{coll}/{first}/assignments")).status(), 200);
    s.create(&format!("{coll}/{second}/assignments"), &all);
}
