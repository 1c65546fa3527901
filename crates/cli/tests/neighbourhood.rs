//! What real clients need around the enrollment resources (rulings.md 10): minimal
//! directory `groups` (a top-level entity set, beta and v1.0), Intune's
//! `deviceManagement/assignmentFilters` (beta), and the out-of-scope collections IntuneCD
//! reads, which answer empty (behaviour.json `emptyCollections`). All of it is schema.
#![allow(clippy::unwrap_used)]

mod common;

use common::{BETA, DEV_CLIENT_ID, DEV_CLIENT_SECRET, Server, TENANT, Value, error_code, expect_error, get_ok, json};

fn new_group(s: &Server, version: &str, name: &str, dynamic: bool) -> Value {
    let mut body = json!({
        "displayName": name, "mailEnabled": false, "securityEnabled": true,
        "mailNickname": name.replace(' ', "").to_lowercase(), "groupTypes": [],
    });
    if dynamic {
        body["groupTypes"] = json!(["DynamicMembership"]);
        body["membershipRule"] = json!("(device.deviceOSType -eq \"Windows\")");
    }
    let r = s.post(&format!("/{version}/groups"), &body);
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    let status = r.status();
    let v: Value = r.json().unwrap();
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    assert!(common::is_guid(id), "{id}");
    assert_eq!(location.as_deref(), Some(s.url(&format!("/{version}/groups('{id}')")).as_str()));
    assert_eq!(v["@odata.context"], s.url(&format!("/{version}/$metadata#groups/$entity")));
    assert_eq!(v["@odata.type"], "#microsoft.graph.group");
    v
}

#[test]
fn groups_are_a_top_level_entity_set_with_crud_filter_and_select() {
    let s = Server::start();
    for version in ["beta", "v1.0"] {
        let kiosks = new_group(&s, version, &format!("Kiosks {version}"), true);
        let sales = new_group(&s, version, &format!("Sales {version}"), false);
        assert_eq!(kiosks["groupTypes"], json!(["DynamicMembership"]));
        assert_eq!(kiosks["membershipRule"], "(device.deviceOSType -eq \"Windows\")");
        assert_eq!(sales["membershipRule"], Value::Null);
        assert!(kiosks["createdDateTime"].is_string(), "{kiosks}");
        let kid = kiosks["id"].as_str().unwrap();

        // IntuneCD's name resolution (clients.md §1): $filter=displayName eq '…'.
        let q = format!("/{version}/groups?$filter=displayName eq 'Kiosks {version}'");
        let found = get_ok(&s, &q);
        assert_eq!(found["@odata.context"], s.url(&format!("/{version}/$metadata#groups")));
        assert_eq!(common::ids(&found), vec![kid.to_owned()]);
        // IntuneCD's batch: groups/{id}?$select=displayName,id,groupTypes,membershipRule.
        let one = get_ok(&s, &format!("/{version}/groups/{kid}?$select=displayName,id,groupTypes,membershipRule"));
        assert_eq!(
            one,
            json!({
                "@odata.context": s.url(&format!("/{version}/$metadata#groups(displayName,id,groupTypes,membershipRule)/$entity")),
                "@odata.type": "#microsoft.graph.group",
                "id": kid,
                "displayName": format!("Kiosks {version}"),
                "groupTypes": ["DynamicMembership"],
                "membershipRule": "(device.deviceOSType -eq \"Windows\")",
            })
        );
        // A group without $select on id does not answer its id (directory objects do not).
        let named = get_ok(&s, &format!("/{version}/groups('{kid}')?$select=displayName"));
        assert_eq!(named.get("id"), None, "{named}");

        let r = s.patch(&format!("/{version}/groups/{kid}"), &json!({"description": "kiosk devices"}));
        assert_eq!(r.status(), 200);
        assert_eq!(get_ok(&s, &format!("/{version}/groups/{kid}"))["description"], "kiosk devices");
        let r = s.delete(&format!("/{version}/groups/{kid}"));
        assert_eq!(r.status(), 204);
        expect_error(s.get(&format!("/{version}/groups/{kid}")), 404, "ResourceNotFound");
        let all = get_ok(&s, &format!("/{version}/groups"));
        assert_eq!(common::ids(&all), vec![sales["id"].as_str().unwrap().to_owned()]);
        // Unknown members are refused like anywhere else (rulings.md 3).
        expect_error(s.post(&format!("/{version}/groups"), &json!({"displayName": "x", "nope": 1})), 400, "BadRequest");
        s.delete(&format!("/{version}/groups/{}", sales["id"].as_str().unwrap()));
    }
    // The service document lists the entity set.
    let doc = get_ok(&s, "/v1.0/");
    assert_eq!(
        doc["value"],
        json!([
            {"name": "deviceManagement", "kind": "Singleton", "url": "deviceManagement"},
            {"name": "groups", "kind": "EntitySet", "url": "groups"},
        ])
    );
}

#[test]
fn assignment_filters_are_served_on_beta_and_answer_their_id_whatever_the_select() {
    let s = Server::start();
    let f = s.create(
        &format!("{BETA}/assignmentFilters"),
        &json!({"displayName": "Corporate", "platform": "windows10AndLater",
                "rule": "(device.deviceOwnership -eq \"Corporate\")", "assignmentFilterManagementType": "devices"}),
    );
    let id = f["id"].as_str().unwrap();
    assert!(common::is_guid(id));
    assert_eq!(f["@odata.type"], "#microsoft.graph.deviceAndAppManagementAssignmentFilter");
    assert_eq!(f["payloads"], json!([]));
    assert_eq!(f["roleScopeTags"], json!([]));
    // IntuneCD asks for ?$select=displayName and matches the answers by id (behaviour.json
    // keyAlwaysSelected).
    let one = get_ok(&s, &format!("{BETA}/assignmentFilters/{id}?$select=displayName"));
    assert_eq!(
        one,
        json!({
            "@odata.context": s.url("/beta/$metadata#deviceManagement/assignmentFilters(displayName)/$entity"),
            "@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentFilter",
            "id": id,
            "displayName": "Corporate",
        })
    );
    // Listed, a filter carries no @odata.type: its type is the list's declared one (rulings.md
    // 4; seventy-odd live captures, graph-behaviours.md "Shapes"), on both paging paths.
    for query in ["", "?$orderby=displayName", "?$select=id,displayName"] {
        let list = get_ok(&s, &format!("{BETA}/assignmentFilters{query}"));
        let item = list["value"][0].as_object().unwrap();
        assert!(!item.contains_key("@odata.type") && item["id"] == id, "{query}: {list}");
    }
    let r = s.patch(&format!("{BETA}/assignmentFilters/{id}"), &json!({"rule": "(device.model -eq \"X\")"}));
    assert_eq!(r.status(), 200);
    assert_eq!(get_ok(&s, &format!("{BETA}/assignmentFilters/{id}"))["rule"], "(device.model -eq \"X\")");
    // Server-owned: payloads are accepted and ignored (rulings.md 3).
    let r = s.patch(&format!("{BETA}/assignmentFilters/{id}"), &json!({"payloads": [{"payloadId": "p"}]}));
    assert_eq!(r.status(), 200);
    assert_eq!(get_ok(&s, &format!("{BETA}/assignmentFilters/{id}"))["payloads"], json!([]));
    expect_error(
        s.post(&format!("{BETA}/assignmentFilters"), &json!({"displayName": "x", "platform": "plan9"})),
        400,
        "BadRequest",
    );
    // v1.0 has no assignment filters (reference README): an unknown segment.
    let body = expect_error(s.get("/v1.0/deviceManagement/assignmentFilters"), 400, "BadRequest");
    assert!(body["error"]["message"].as_str().unwrap().contains("assignmentFilters"), "{body}");
    assert_eq!(s.delete(&format!("{BETA}/assignmentFilters/{id}")).status(), 204);
    expect_error(s.get(&format!("{BETA}/assignmentFilters/{id}")), 404, "ResourceNotFound");
}

#[test]
fn out_of_scope_collections_real_clients_read_answer_empty() {
    let s = Server::start();
    for path in [
        "/beta/deviceManagement/depOnboardingSettings/",
        "/beta/deviceManagement/roleScopeTags",
        "/beta/deviceManagement/ROLESCOPETAGS",
        "/beta/deviceAppManagement/mobileApps",
        "/beta/identity/conditionalAccess/policies",
        "/v1.0/deviceManagement/auditEvents",
    ] {
        let v = get_ok(&s, path);
        let canonical = path.trim_end_matches('/').replace("ROLESCOPETAGS", "roleScopeTags");
        let (version, rest) = canonical.trim_start_matches('/').split_once('/').unwrap();
        assert_eq!(v, json!({"@odata.context": s.url(&format!("/{version}/$metadata#{rest}")), "value": []}), "{path}");
    }
    assert_eq!(s.get("/beta/deviceManagement/roleScopeTags/$count").text().unwrap(), "0");
    // Nothing is in them: an id is 404, as in a tenant that has none.
    expect_error(s.get("/beta/deviceManagement/depOnboardingSettings/x/enrollmentProfiles"), 404, "ResourceNotFound");
    expect_error(s.get("/beta/deviceManagement/roleScopeTags('0')"), 404, "ResourceNotFound");
    // They are read-only here.
    let r = s.post("/beta/deviceManagement/roleScopeTags", &json!({"displayName": "x"}));
    assert_eq!(r.status(), 405);
    // Not listed for v1.0, and any other unknown path, stays Graph's 400.
    expect_error(s.get("/v1.0/deviceManagement/roleScopeTags"), 400, "BadRequest");
    expect_error(s.get("/beta/deviceManagement/notACollection"), 400, "BadRequest");
    expect_error(s.get("/beta/deviceAppManagement/notACollection"), 400, "BadRequest");
}

#[test]
fn groups_take_directory_permissions() {
    let s = Server::start();
    let app = |roles: &[&str]| {
        let mut args = vec!["app", "create", "--tenant", TENANT];
        for r in roles {
            args.extend(["--role", r]);
        }
        let out = s.cli(&args);
        let field = |k: &str| out.lines().find_map(|l| l.strip_prefix(k)).unwrap().trim().to_owned();
        s.client_credentials_token(TENANT, &field("client id:"), &field("client secret:"))
    };
    let call = |token: &str, method: &str, path: &str| {
        s.raw()
            .request(method.parse().unwrap(), s.url(path))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(
                json!({"displayName": "g", "mailEnabled": false, "securityEnabled": true, "mailNickname": "g"})
                    .to_string(),
            )
            .send()
            .unwrap()
    };
    let intune_only = app(&["DeviceManagementServiceConfig.ReadWrite.All"]);
    let body: Value = call(&intune_only, "GET", "/beta/groups").json().unwrap();
    assert_eq!(error_code(&body), "Forbidden", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Group.Read.All"), "{body}");
    assert_eq!(call(&intune_only, "GET", "/beta/deviceManagement/assignmentFilters").status(), 200);
    let reader = app(&["Group.Read.All"]);
    assert_eq!(call(&reader, "GET", "/v1.0/groups").status(), 200);
    assert_eq!(call(&reader, "POST", "/v1.0/groups").status(), 403);
    assert_eq!(call(&reader, "GET", "/beta/deviceManagement/deviceEnrollmentConfigurations").status(), 403);
    let writer = app(&["Directory.ReadWrite.All"]);
    assert_eq!(call(&writer, "POST", "/beta/groups").status(), 201);
    // The same rule inside $batch.
    let batch = json!({"requests": [{"id": "1", "method": "GET", "url": "/groups"}]});
    let r = s
        .raw()
        .post(s.url("/beta/$batch"))
        .header("authorization", format!("Bearer {intune_only}"))
        .header("content-type", "application/json")
        .body(batch.to_string())
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    assert_eq!(v["responses"][0]["status"], 403, "{v}");
    // The development app may use groups (README).
    let dev = s.client_credentials_token(TENANT, DEV_CLIENT_ID, DEV_CLIENT_SECRET);
    assert_eq!(call(&dev, "POST", "/beta/groups").status(), 201);
}

#[test]
fn an_unset_management_service_app_id_reads_null_and_a_written_one_is_kept() {
    // rulings.md 14: live Autopilot profiles read "managementServiceAppId": null
    // (graph-behaviours.md "Shapes"); IntuneCD writes "" back, which is kept as written.
    let s = Server::start();
    let p = s.create(
        &format!("{BETA}/windowsAutopilotDeploymentProfiles"),
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "P"}),
    );
    assert_eq!(p["managementServiceAppId"], Value::Null, "{p}");
    let id = p["id"].as_str().unwrap();
    let read = get_ok(&s, &format!("{BETA}/windowsAutopilotDeploymentProfiles/{id}"));
    assert_eq!(read["managementServiceAppId"], Value::Null, "{read}");
    let list = get_ok(&s, &format!("{BETA}/windowsAutopilotDeploymentProfiles"));
    assert_eq!(list["value"][0]["managementServiceAppId"], Value::Null, "{list}");
    for (written, kept) in [(json!(""), json!("")), (json!("app"), json!("app"))] {
        let p = s.create(
            &format!("{BETA}/windowsAutopilotDeploymentProfiles"),
            &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "Q",
                    "managementServiceAppId": written}),
        );
        assert_eq!(p["managementServiceAppId"], kept);
    }
}

#[test]
fn single_objects_answer_as_a_tenant_that_never_set_them_up() {
    // graph-behaviours.md "Single objects a tenant always has" (behaviour.json singleObjects).
    let s = Server::start();
    let settings = get_ok(&s, &format!("{BETA}/settings"));
    assert_eq!(
        settings,
        json!({
            "@odata.context": s.url("/beta/$metadata#deviceManagement/settings"),
            "androidDeviceAdministratorEnrollmentEnabled": false,
            "derivedCredentialProvider": "notConfigured",
            "derivedCredentialUrl": null,
            "deviceComplianceCheckinThresholdDays": 30,
            "deviceInactivityBeforeRetirementInDay": 0,
            "enableAutopilotDiagnostics": true,
            "enableDeviceGroupMembershipReport": false,
            "enableEnhancedTroubleshootingExperience": false,
            "enableLogCollection": true,
            "enhancedJailBreak": false,
            "ignoreDevicesForUnsupportedSettingsEnabled": false,
            "isScheduledActionEnabled": true,
            "m365AppDiagnosticsEnabled": false,
            "secureByDefault": false,
        })
    );
    assert_eq!(
        get_ok(&s, "/v1.0/deviceManagement/settings"),
        json!({
            "@odata.context": s.url("/v1.0/$metadata#deviceManagement/settings"),
            "deviceComplianceCheckinThresholdDays": 30, "isScheduledActionEnabled": true, "secureByDefault": false,
        })
    );
    let play = get_ok(&s, &format!("{BETA}/androidManagedStoreAccountEnterpriseSettings"));
    assert_eq!(
        play["@odata.context"],
        s.url("/beta/$metadata#deviceManagement/androidManagedStoreAccountEnterpriseSettings/$entity")
    );
    assert_eq!(play["@odata.type"], "#microsoft.graph.androidManagedStoreAccountEnterpriseSettings");
    for (k, v) in [
        ("bindStatus", json!("notBound")),
        ("lastAppSyncStatus", json!("none")),
        ("enrollmentTarget", json!("none")),
        ("ownerOrganizationName", json!("")),
        ("ownerUserPrincipalName", json!("")),
        ("targetGroupIds", json!([])),
        ("companyCodes", json!([])),
        ("lastAppSyncDateTime", Value::Null),
        ("androidDeviceOwnerFullyManagedEnrollmentEnabled", json!(false)),
    ] {
        assert_eq!(play[k], v, "{k}: {play}");
    }
    // The case of the path does not matter, as for navigations (rulings.md 12).
    assert_eq!(get_ok(&s, "/beta/devicemanagement/SETTINGS")["deviceComplianceCheckinThresholdDays"], 30);
    // A tenant without APNs: 404 in Intune's JSON-in-message form, on both versions.
    for v in ["beta", "v1.0"] {
        let body = expect_error(
            s.get(&format!("/{v}/deviceManagement/applePushNotificationCertificate")),
            404,
            "ResourceNotFound",
        );
        let inner: Value = serde_json::from_str(body["error"]["message"].as_str().unwrap()).unwrap();
        assert!(inner["Message"].as_str().unwrap().contains("applePushNotificationCertificate"), "{inner}");
    }
    // v1.0 has no Managed Google Play settings; it exists in Graph's beta only.
    expect_error(s.get("/v1.0/deviceManagement/androidManagedStoreAccountEnterpriseSettings"), 400, "BadRequest");
    // Read-only: other methods are 405, and nothing is under them.
    let r = s.patch(&format!("{BETA}/settings"), &json!({"enableLogCollection": false}));
    assert_eq!(r.headers()["allow"], "GET");
    expect_error(r, 405, "MethodNotAllowed");
    expect_error(s.get(&format!("{BETA}/settings/x")), 400, "BadRequest");
    expect_error(s.get(&format!("{BETA}/settings('x')")), 400, "BadRequest");
}
