//! Effective assignments (issue 15) on a real SQLite store, the tenant built through Graph
//! requests: one table of cases per rule of `docs/effective-assignments.md` (R1–R6).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use enrollgraph_csdl::{ApiVersion, Model};
use enrollgraph_service::{Config, EffectiveQuery, Method, Request, Service, ServiceError};
use enrollgraph_store::SqliteStore;
use serde_json::{Value, json};

const T: &str = "contoso.example";
const CFG: &str = "deviceManagement/deviceEnrollmentConfigurations";
const AP: &str = "deviceManagement/windowsAutopilotDeploymentProfiles";

struct Fixture {
    service: Service,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = std::env::temp_dir().join(format!("eg-effective-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("enrollgraph.sqlite")).unwrap();
        let service = Service::new(Arc::new(Model::load().unwrap()), Arc::new(store), Config::default());
        assert!(service.provision_tenant(T).await.unwrap());
        Fixture { service, dir }
    }

    async fn send(&self, tenant: &str, method: Method, path: &str, body: Value) -> Value {
        let r = self
            .service
            .handle(Request {
                method,
                version: ApiVersion::Beta,
                path: path.into(),
                query: String::new(),
                body: Some(body),
                tenant: tenant.into(),
                base_url: "http://127.0.0.1".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(r.status < 300, "{path}: {}", r.status);
        r.body.json().unwrap_or(Value::Null)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.send(T, Method::Post, path, body).await
    }

    async fn group(&self, name: &str) -> String {
        let g = self.post("groups", json!({"displayName": name, "groupTypes": []})).await;
        g["id"].as_str().unwrap().to_owned()
    }

    async fn config(&self, odata_type: &str, name: &str, extra: Value) -> String {
        let mut body = json!({"@odata.type": odata_type, "displayName": name});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let c = self.post(CFG, body).await;
        c["id"].as_str().unwrap().to_owned()
    }

    async fn limit(&self, name: &str) -> String {
        self.config("#microsoft.graph.deviceEnrollmentLimitConfiguration", name, json!({"limit": 3})).await
    }

    async fn esp(&self, name: &str) -> String {
        self.config("#microsoft.graph.windows10EnrollmentCompletionPageConfiguration", name, json!({})).await
    }

    async fn assign(&self, config: &str, targets: Vec<Value>) {
        let list: Vec<Value> = targets.into_iter().map(|t| json!({"target": t})).collect();
        self.post(&format!("{CFG}/{config}/assign"), json!({"enrollmentConfigurationAssignments": list})).await;
    }

    async fn filter(&self, name: &str, rule: &str) -> String {
        let f = self
            .post(
                "deviceManagement/assignmentFilters",
                json!({"displayName": name, "platform": "windows10AndLater", "rule": rule}),
            )
            .await;
        f["id"].as_str().unwrap().to_owned()
    }

    async fn profile(&self, name: &str, targets: Vec<Value>) -> String {
        let p = self
            .post(AP, json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": name}))
            .await;
        let id = p["id"].as_str().unwrap().to_owned();
        for t in targets {
            self.post(&format!("{AP}/{id}/assignments"), json!({"target": t})).await;
        }
        id
    }

    fn ask(&self, groups: &[&str], device: &[(&str, &str)]) -> Value {
        let q = EffectiveQuery::new(
            groups.iter().map(|g| (*g).to_owned()),
            device.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .unwrap();
        self.service.effective_assignments(T, &q).unwrap()
    }
}

fn include(g: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g})
}

fn exclude(g: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": g})
}

fn filtered(g: &str, filter: &str, mode: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g,
           "deviceAndAppManagementAssignmentFilterId": filter, "deviceAndAppManagementAssignmentFilterType": mode})
}

fn all_users() -> Value {
    json!({"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"})
}

fn all_devices() -> Value {
    json!({"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"})
}

fn kind<'a>(answer: &'a Value, kind: &str) -> &'a Value {
    answer["kinds"].as_array().unwrap().iter().find(|k| k["kind"] == kind).unwrap_or_else(|| panic!("no kind {kind}"))
}

/// The id that applies for `kind` (`"autopilot"` for the profile), or "" when none.
fn applied(answer: &Value, which: &str) -> String {
    let a = if which == "autopilot" { &answer["autopilot"] } else { kind(answer, which) };
    a["applies"]["id"].as_str().unwrap_or_default().to_owned()
}

fn outcome(answer: &Value, which: &str, id: &str) -> (String, Value) {
    let a = if which == "autopilot" { &answer["autopilot"] } else { kind(answer, which) };
    let c = a["candidates"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("{id}"));
    (c["outcome"].as_str().unwrap().to_owned(), c["via"].clone())
}

#[tokio::test]
async fn a_new_tenant_gets_each_default_and_the_kinds_are_told_apart() {
    let f = Fixture::new().await;
    let g = f.group("Anyone").await;
    let a = f.ask(&[&g], &[]);
    assert_eq!(a["tenant"], T);
    assert_eq!(a["groups"], json!([{"id": g, "displayName": "Anyone"}]));
    for (k, audience, default) in [
        ("limit", "user", format!("{T}_DefaultLimit")),
        ("platformRestrictions", "user", format!("{T}_DefaultPlatformRestrictions")),
        ("windowsHelloForBusiness", "device", format!("{T}_DefaultWindowsHelloForBusiness")),
        (
            "windows10EnrollmentCompletionPageConfiguration",
            "device",
            format!("{T}_DefaultWindows10EnrollmentCompletionPageConfiguration"),
        ),
    ] {
        let k = kind(&a, k);
        assert_eq!(k["audience"], audience);
        assert_eq!(k["applies"]["id"], default.as_str(), "{k}");
        assert_eq!(k["applies"]["priority"], 0);
        assert_eq!(k["applies"]["isDefault"], true);
        assert_eq!(k["candidates"][0]["via"], "default");
        assert_eq!(k["candidates"][0]["outcome"], "applies");
        assert!(!k["reasons"].as_array().unwrap().is_empty());
    }
    assert_eq!(a["autopilot"]["applies"], Value::Null);
}

#[tokio::test]
async fn r1_the_highest_priority_assigned_to_any_of_the_groups_applies() {
    let f = Fixture::new().await;
    let (g1, g2, g3) = (f.group("G1").await, f.group("G2").await, f.group("G3").await);
    let a = f.limit("A").await; // priority 1
    let b = f.limit("B").await; // priority 2
    f.assign(&a, vec![include(&g1)]).await;
    f.assign(&b, vec![include(&g2)]).await;
    let default = format!("{T}_DefaultLimit");
    for (groups, want, a_outcome, b_outcome) in [
        (vec![g1.as_str()], a.as_str(), "applies", "notTargeted"),
        (vec![g2.as_str()], b.as_str(), "notTargeted", "applies"),
        (vec![g1.as_str(), g2.as_str()], a.as_str(), "applies", "lowerPriority"),
        (vec![g2.as_str(), g1.as_str()], a.as_str(), "applies", "lowerPriority"),
        (vec![g3.as_str()], default.as_str(), "notTargeted", "notTargeted"),
    ] {
        let ans = f.ask(&groups, &[]);
        assert_eq!(applied(&ans, "limit"), want, "{groups:?}");
        assert_eq!(outcome(&ans, "limit", &a).0, a_outcome, "{groups:?}");
        assert_eq!(outcome(&ans, "limit", &b).0, b_outcome, "{groups:?}");
        let lim = kind(&ans, "limit");
        let order: Vec<i64> =
            lim["candidates"].as_array().unwrap().iter().map(|c| c["priority"].as_i64().unwrap()).collect();
        assert_eq!(order, vec![1, 2, 0], "priority order, the default last");
    }
    // setPriority changes the answer.
    f.post(&format!("{CFG}/{b}/setPriority"), json!({"priority": 1})).await;
    assert_eq!(applied(&f.ask(&[&g1, &g2], &[]), "limit"), b);
}

#[tokio::test]
async fn r3_an_exclusion_beats_an_inclusion() {
    let f = Fixture::new().await;
    let (g1, g2, g3) = (f.group("G1").await, f.group("G2").await, f.group("G3").await);
    let a = f.limit("A").await;
    let b = f.limit("B").await;
    f.assign(&a, vec![include(&g1), exclude(&g3)]).await;
    f.assign(&b, vec![include(&g2)]).await;
    let default = format!("{T}_DefaultLimit");
    for (groups, want, a_outcome) in [
        (vec![g1.as_str()], a.as_str(), "applies"),
        (vec![g1.as_str(), g3.as_str()], default.as_str(), "excluded"),
        (vec![g1.as_str(), g2.as_str(), g3.as_str()], b.as_str(), "excluded"),
        (vec![g3.as_str()], default.as_str(), "excluded"),
    ] {
        let ans = f.ask(&groups, &[]);
        assert_eq!(applied(&ans, "limit"), want, "{groups:?}");
        let (o, via) = outcome(&ans, "limit", &a);
        assert_eq!(o, a_outcome, "{groups:?}");
        if o == "excluded" {
            assert_eq!(via, json!(format!("group {g3}")));
        }
    }
}

#[tokio::test]
async fn r4_all_users_reaches_user_kinds_and_all_devices_only_device_kinds() {
    let f = Fixture::new().await;
    let g = f.group("Somebody").await;
    let by_users = f.limit("to all users").await;
    let by_devices = f.limit("to all devices").await;
    f.assign(&by_users, vec![all_users()]).await;
    f.assign(&by_devices, vec![all_devices()]).await;
    let esp = f.esp("ESP to all devices").await;
    f.assign(&esp, vec![all_devices()]).await;
    let ans = f.ask(&[&g], &[]);
    assert_eq!(applied(&ans, "limit"), by_users);
    assert_eq!(outcome(&ans, "limit", &by_users), ("applies".into(), json!("allLicensedUsers")));
    assert_eq!(outcome(&ans, "limit", &by_devices).0, "notTargeted");
    assert_eq!(applied(&ans, "windows10EnrollmentCompletionPageConfiguration"), esp);
    assert_eq!(outcome(&ans, "windows10EnrollmentCompletionPageConfiguration", &esp).1, json!("allDevices"));
    // Moving the all-devices restriction first changes nothing: it does not reach users.
    f.post(&format!("{CFG}/{by_devices}/setPriority"), json!({"priority": 1})).await;
    assert_eq!(applied(&f.ask(&[&g], &[]), "limit"), by_users);
}

#[tokio::test]
async fn r6_filters_are_conditions_and_are_evaluated_when_the_device_is_described() {
    let f = Fixture::new().await;
    let g = f.group("Windows devices").await;
    let corporate = f
        .filter(
            "Corporate 10.0",
            r#"(device.deviceOwnership -eq "Corporate") and (device.osVersion -startsWith "10.0")"#,
        )
        .await;
    let broken = f.filter("Broken", "(device.deviceOwnership -eq").await;
    let inc = f.esp("ESP include corporate").await;
    let exc = f.esp("ESP exclude corporate").await;
    f.assign(&inc, vec![filtered(&g, &corporate, "include")]).await;
    f.assign(&exc, vec![filtered(&g, &corporate, "exclude")]).await;
    let esp = "windows10EnrollmentCompletionPageConfiguration";
    let corp = [("deviceOwnership", "Corporate"), ("osVersion", "10.0.22631")];
    let personal = [("deviceOwnership", "Personal"), ("osVersion", "10.0.22631")];
    let partial = [("deviceOwnership", "Corporate")];
    for (device, want, inc_outcome, evaluated) in [
        (&[][..], inc.as_str(), "applies", Value::Null),
        (&corp[..], inc.as_str(), "applies", json!(true)),
        (&personal[..], exc.as_str(), "filteredOut", json!(false)),
        (&partial[..], inc.as_str(), "applies", Value::Null),
    ] {
        let ans = f.ask(&[&g], device);
        assert_eq!(applied(&ans, esp), want, "{device:?}");
        assert_eq!(outcome(&ans, esp, &inc).0, inc_outcome, "{device:?}");
        let c = &kind(&ans, esp)["conditions"][0];
        assert_eq!(c["filterId"], corporate.as_str());
        assert_eq!(c["filterName"], "Corporate 10.0");
        assert_eq!(c["filterType"], "include");
        assert_eq!(c["evaluated"], evaluated, "{device:?}");
        assert!(c["rule"].as_str().unwrap().contains("deviceOwnership"));
    }
    // A personal device is left out by the include filter and let through by the exclude one.
    let ans = f.ask(&[&g], &personal);
    let conds = kind(&ans, esp)["conditions"].as_array().unwrap().clone();
    assert_eq!(conds.len(), 2);
    assert_eq!(conds[1]["filterType"], "exclude");
    // A rule that does not parse is never evaluated, never an error.
    f.assign(&inc, vec![filtered(&g, &broken, "include")]).await;
    let ans = f.ask(&[&g], &corp);
    assert_eq!(applied(&ans, esp), inc);
    assert_eq!(kind(&ans, esp)["conditions"][0]["evaluated"], Value::Null);
    // A filter id that names no filter: a condition with no name and no rule.
    f.assign(&inc, vec![filtered(&g, "00000000-0000-0000-0000-000000000000", "include")]).await;
    let ans = f.ask(&[&g], &corp);
    let c = &kind(&ans, esp)["conditions"][0];
    assert_eq!(
        (c["filterName"].clone(), c["rule"].clone(), c["evaluated"].clone()),
        (Value::Null, Value::Null, Value::Null)
    );
}

#[tokio::test]
async fn r5_autopilot_the_oldest_created_profile_then_the_all_devices_one() {
    let f = Fixture::new().await;
    let (g1, g2, g3, g4) = (f.group("G1").await, f.group("G2").await, f.group("G3").await, f.group("G4").await);
    let oldest = f.profile("oldest", vec![include(&g1)]).await;
    let newer = f.profile("newer", vec![include(&g1), include(&g2), exclude(&g4)]).await;
    let everyone = f.profile("all devices", vec![all_devices()]).await;
    for (groups, want, newer_outcome, default) in [
        (vec![g1.as_str()], oldest.as_str(), "lowerPriority", false),
        (vec![g2.as_str()], newer.as_str(), "applies", false),
        (vec![g2.as_str(), g1.as_str()], oldest.as_str(), "lowerPriority", false),
        (vec![g3.as_str()], everyone.as_str(), "notTargeted", true),
        (vec![g2.as_str(), g4.as_str()], everyone.as_str(), "excluded", true),
    ] {
        let ans = f.ask(&groups, &[]);
        assert_eq!(applied(&ans, "autopilot"), want, "{groups:?}");
        assert_eq!(outcome(&ans, "autopilot", &newer).0, newer_outcome, "{groups:?}");
        assert_eq!(ans["autopilot"]["applies"]["isDefault"], default, "{groups:?}");
        assert_eq!(
            ans["autopilot"]["applies"]["@odata.type"],
            "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile"
        );
    }
    let ans = f.ask(&[&g1], &[]);
    assert_eq!(outcome(&ans, "autopilot", &everyone).0, "lowerPriority");
}

#[tokio::test]
async fn another_tenants_groups_reach_nothing_here_and_leak_no_name() {
    let f = Fixture::new().await;
    let other = "fabrikam.example";
    assert!(f.service.provision_tenant(other).await.unwrap());
    let theirs = f.send(other, Method::Post, "groups", json!({"displayName": "Secret name", "groupTypes": []})).await;
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    let ans = f.ask(&[&theirs], &[]);
    assert_eq!(ans["groups"], json!([{"id": theirs, "displayName": null}]));
    assert_eq!(kind(&ans, "limit")["applies"]["isDefault"], true);
    assert!(!ans.to_string().contains("Secret name"));
}

#[tokio::test]
async fn bad_questions_are_refused_and_an_unknown_tenant_is_not_found() {
    let f = Fixture::new().await;
    let q = EffectiveQuery::new(["g".to_owned()], Vec::new()).unwrap();
    assert!(matches!(f.service.effective_assignments("nobody.example", &q), Err(ServiceError::ResourceNotFound(_))));
    assert!(matches!(f.service.effective_assignments("not a tenant", &q), Err(ServiceError::BadRequest(_))));
    let many: Vec<String> = (0..51).map(|i| format!("g{i}")).collect();
    for (query, ok) in [
        ("group=a", true),
        ("group=a&group=A", true),
        ("group=a&device.deviceOwnership=Corporate", true),
        ("group=a%20b&device.osVersion=10.0%2E1", true),
        ("", false),
        ("device.model=x", false),
        ("group=", false),
        ("group=a&other=1", false),
        ("group=a&device.=x", false),
        ("group=a&device.bad-name=x", false),
        ("group=%FF", false),
        (&many.iter().map(|g| format!("group={g}")).collect::<Vec<_>>().join("&"), false),
        (&(0..10_000).map(|_| "group=a").collect::<Vec<_>>().join("&"), false),
    ] {
        assert_eq!(EffectiveQuery::from_query_string(query).is_ok(), ok, "{query:.60}");
    }
    let q = EffectiveQuery::from_query_string("group=a&group=A&device.DeviceOwnership=Corporate").unwrap();
    assert_eq!(q.groups, vec!["a".to_owned()]);
    assert_eq!(q.device.get("deviceownership").map(String::as_str), Some("Corporate"));
}
