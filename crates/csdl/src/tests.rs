#![allow(clippy::unwrap_used)]

use serde_json::json;

use crate::{ApiVersion, Model, Selection, TypeRef, WriteMode, shape_entity, validate_entity};

fn model() -> Model {
    Model::load().unwrap()
}

#[test]
fn both_schemas_load_with_their_inheritance() {
    let m = model();
    assert!(m.beta.structured("microsoft.graph.deviceEnrollmentConfiguration").unwrap().is_abstract);
    assert!(m.beta.derives_from(
        "microsoft.graph.exclusionGroupAssignmentTarget",
        "graph.deviceAndAppManagementAssignmentTarget"
    ));
    let derived = m.v1.self_and_derived("microsoft.graph.deviceEnrollmentConfiguration");
    assert_eq!(derived.len(), 5, "{derived:?}");
    assert_eq!(m.beta.self_and_derived("microsoft.graph.deviceEnrollmentConfiguration").len(), 9);
    assert!(m.v1.structured("microsoft.graph.scopeTagGroupAssignmentTarget").is_none());
    assert!(m.beta.find_action("microsoft.graph.deviceEnrollmentLimitConfiguration", "setpriority", false).is_some());
    assert_eq!(ApiVersion::parse("V1.0"), Some(ApiVersion::V1));
}

#[test]
fn target_filter_properties_exist_only_in_beta() {
    let m = model();
    let t = "microsoft.graph.groupAssignmentTarget";
    assert!(m.beta.find_property(t, "deviceAndAppManagementAssignmentFilterType").is_some());
    assert!(m.v1.find_property(t, "deviceAndAppManagementAssignmentFilterType").is_none());
    assert!(matches!(m.beta.find_property(t, "groupId").unwrap().type_ref, TypeRef::Primitive(_)));
}

#[test]
fn validation_rejects_what_graph_rejects() {
    let m = model();
    let a = "microsoft.graph.enrollmentConfigurationAssignment";
    let check = |body| validate_entity(&m.beta, &m.behaviour, a, None, &body, WriteMode::Create);
    assert!(check(json!({"target": {"@odata.type": "microsoft.graph.groupAssignmentTarget", "groupId": "g"}})).is_ok());
    assert!(
        check(json!({"target": {"@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentTarget"}})).is_ok()
    );
    let unknown = check(json!({"bogus": 1})).unwrap_err();
    assert!(unknown.0.contains("'bogus' does not exist on type 'microsoft.graph.enrollmentConfigurationAssignment'"));
    assert!(check(json!({"target": {"@odata.type": "microsoft.graph.nope"}})).is_err());
    assert!(check(json!({"target": {"@odata.type": "microsoft.graph.deviceEnrollmentPlatformRestriction"}})).is_err());
    assert!(check(json!({"target": {"@odata.type": "microsoft.graph.groupAssignmentTarget", "deviceAndAppManagementAssignmentFilterType": "sometimes"}})).is_err());
    assert!(check(json!({"source": null})).is_err());
    assert!(check(json!({"sourceId": 5})).is_err());
    assert!(check(json!([1])).is_err());
    // server-owned `id` is accepted and ignored (rulings.md 3)
    assert!(check(json!({"id": "client"})).unwrap().body.get("id").is_none());
    let abstract_config = validate_entity(
        &m.beta,
        &m.behaviour,
        "microsoft.graph.deviceEnrollmentConfiguration",
        None,
        &json!({"displayName": "x"}),
        WriteMode::Create,
    );
    assert!(abstract_config.unwrap_err().0.contains("abstract"));
}

#[test]
fn shaping_follows_minimal_metadata_and_the_version() {
    let m = model();
    let a = "microsoft.graph.enrollmentConfigurationAssignment";
    let body = json!({"id": "1", "source": "direct", "target": {"@odata.type": "microsoft.graph.groupAssignmentTarget", "groupId": "g"}});
    let beta = shape_entity(&m.beta, a, body.as_object().unwrap(), &Selection::default(), None).unwrap();
    assert_eq!(
        serde_json::Value::Object(beta),
        json!({"@odata.type": "#microsoft.graph.enrollmentConfigurationAssignment", "id": "1", "source": "direct", "sourceId": null,
               "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "deviceAndAppManagementAssignmentFilterId": null,
                          "deviceAndAppManagementAssignmentFilterType": "none", "groupId": "g"}})
    );
    let v1 = shape_entity(&m.v1, a, body.as_object().unwrap(), &Selection::default(), None).unwrap();
    assert_eq!(
        serde_json::Value::Object(v1),
        json!({"@odata.type": "#microsoft.graph.enrollmentConfigurationAssignment", "id": "1",
        "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g"}})
    );
    assert!(
        shape_entity(
            &m.v1,
            "microsoft.graph.windowsRestoreDeviceEnrollmentConfiguration",
            body.as_object().unwrap(),
            &Selection::default(),
            None
        )
        .is_none()
    );
}

#[test]
fn writing_from_stored_text_matches_shaping_the_tree() {
    use crate::write_entity_members;
    let m = model();
    let cases = [
        (
            "microsoft.graph.enrollmentConfigurationAssignment",
            json!({"id": "1", "source": "direct", "target": {"@odata.type": "microsoft.graph.groupAssignmentTarget", "groupId": "g", "deviceAndAppManagementAssignmentFilterType": "include"}}),
        ),
        ("microsoft.graph.enrollmentConfigurationAssignment", json!({"id": "2", "target": {}})),
        ("microsoft.graph.enrollmentConfigurationAssignment", json!({"id": "3", "target": null})),
        (
            "microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration",
            json!({"id": "4", "iosRestriction": {"platformBlocked": true, "blockedSkus": ["a"]}, "roleScopeTagIds": ["0"]}),
        ),
        (
            "microsoft.graph.appleUserInitiatedEnrollmentProfile",
            json!({"id": "5", "availableEnrollmentTypeOptions": [{"enrollmentType": "device", "ownerType": "company"}]}),
        ),
        (
            "microsoft.graph.enrollmentConfigurationAssignment",
            json!({"id": "6", "target": {"@odata.type": "#microsoft.graph.scopeTagGroupAssignmentTarget", "targetType": "user"}}),
        ),
    ];
    let selections = [
        Selection::default(),
        Selection { properties: Some(vec!["id".into(), "target".into()]) },
        Selection { properties: Some(vec!["nothing".into()]) },
    ];
    for schema in [&m.beta, &m.v1] {
        for select in &selections {
            // Alone, as an item of its exact type, as an item of a base type's collection.
            for item_of in
                [None, Some("microsoft.graph.enrollmentConfigurationAssignment"), Some("microsoft.graph.entity")]
            {
                for (t, body) in &cases {
                    let tree = shape_entity(schema, t, body.as_object().unwrap(), select, item_of);
                    let mut out = String::from("{");
                    let known = write_entity_members(schema, t, &body.to_string(), select, item_of, &mut out);
                    out.push('}');
                    assert_eq!(known, tree.is_some());
                    if let Some(tree) = tree {
                        assert_eq!(out, serde_json::Value::Object(tree).to_string(), "{t} {body} {item_of:?}");
                    }
                    // Remembered (memo.rs): the first write shapes and keeps, the second is
                    // the memo's; both exactly the tree's.
                    for pass in ["shaped", "remembered"] {
                        let mut again = String::from("{");
                        let known_again = crate::write_entity_members_remembered(
                            schema,
                            t,
                            &body.to_string(),
                            select,
                            item_of,
                            &mut again,
                        );
                        again.push('}');
                        assert_eq!(known_again, known, "{pass} {t}");
                        if known {
                            assert_eq!(again, out, "{pass} {t} {body} {item_of:?}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn collection_items_carry_odata_type_only_where_not_the_declared_type() {
    // rulings.md 4 (amended): live `.../assignments` lists carry no @odata.type on their
    // items; a derived item of a base-typed collection does; an entity alone always does;
    // a nested target (abstract declared type) always does.
    let m = model();
    let a = "microsoft.graph.enrollmentConfigurationAssignment";
    let body = json!({"id": "1", "target": {"@odata.type": "microsoft.graph.allDevicesAssignmentTarget"}});
    let body = body.as_object().unwrap();
    let item = shape_entity(&m.beta, a, body, &Selection::default(), Some(a)).unwrap();
    assert!(!item.contains_key("@odata.type"), "{item:?}");
    assert_eq!(item["target"]["@odata.type"], "#microsoft.graph.allDevicesAssignmentTarget");
    let alone = shape_entity(&m.beta, a, body, &Selection::default(), None).unwrap();
    assert_eq!(alone["@odata.type"], format!("#{a}"));
    let limit = "microsoft.graph.deviceEnrollmentLimitConfiguration";
    let derived = shape_entity(
        &m.beta,
        limit,
        &serde_json::Map::new(),
        &Selection::default(),
        Some("microsoft.graph.deviceEnrollmentConfiguration"),
    )
    .unwrap();
    assert_eq!(derived["@odata.type"], format!("#{limit}"));
}

#[test]
fn entity_sets_and_the_client_neighbourhood_are_schema() {
    let m = model();
    for schema in [&m.beta, &m.v1] {
        let set = schema.entity_set("GROUPS").unwrap();
        assert_eq!((set.name.as_str(), set.target.as_str()), ("groups", "microsoft.graph.group"));
        assert!(schema.derives_from("microsoft.graph.group", "microsoft.graph.directoryObject"));
        // Entity sets are found where non-contained navigations look for a home.
        assert!(schema.contained_collections().iter().any(|(prefix, n)| prefix.is_empty() && n.name == "groups"));
    }
    assert!(m.beta.find_navigation("microsoft.graph.deviceManagement", "assignmentFilters").is_some());
    assert!(m.v1.find_navigation("microsoft.graph.deviceManagement", "assignmentFilters").is_none());
    let b = &m.behaviour;
    let path = ["deviceManagement", "roleScopeTags", "x"];
    let names = |i: usize| path.get(i).copied();
    assert_eq!(b.empty_collection("beta", names).unwrap(), ["deviceManagement", "roleScopeTags"]);
    assert!(b.empty_collection("v1.0", names).is_none());
    assert!(b.empty_collection("beta", |i| ["deviceManagement"].get(i).copied()).is_none());
    assert_eq!(b.permissions("Groups", true).unwrap(), ["Group.ReadWrite.All", "Directory.ReadWrite.All"]);
    assert!(b.permissions("deviceManagement", false).is_none());
    assert!(b.key_always_selected(m.beta.lineage_names("microsoft.graph.deviceAndAppManagementAssignmentFilter")));
    assert!(!b.key_always_selected(m.beta.lineage_names("microsoft.graph.group")));
}

#[test]
fn completing_both_versions_skips_only_a_v1_pass_that_adds_nothing() {
    let m = model();
    let assignment = "microsoft.graph.enrollmentConfigurationAssignment";
    assert!(m.v1_within_beta.contains(assignment), "the W1 assignment's v1.0 pass is skipped");
    // For every type either version knows, with an empty body and with each target type
    // nested, the shortcut gives what both passes give.
    let targets: Vec<String> = m.beta.self_and_derived("microsoft.graph.deviceAndAppManagementAssignmentTarget");
    let types: Vec<String> = m.beta.types.keys().chain(m.v1.types.keys()).cloned().collect();
    for t in &types {
        let mut bodies = vec![serde_json::Map::new()];
        for target in &targets {
            let mut b = serde_json::Map::new();
            b.insert("target".into(), json!({"@odata.type": format!("#{target}")}));
            bodies.push(b);
        }
        for body in bodies {
            let (mut both, mut quick) = (body.clone(), body);
            crate::complete(&m.beta, t, &mut both);
            crate::complete(&m.v1, t, &mut both);
            m.complete_both(t, &mut quick);
            assert_eq!(serde_json::Value::Object(quick), serde_json::Value::Object(both), "{t}");
        }
    }
}

#[test]
fn the_wire_memo_stays_within_its_bound_and_never_answers_for_another_text() {
    // A fresh model: its memo is this test's alone.
    let Ok(m) = crate::Model::load() else { panic!("the model loads") };
    let a = "microsoft.graph.enrollmentConfigurationAssignment";
    let filler = "x".repeat(400);
    let shaped = |i: usize, item_of: Option<&str>| {
        let body = json!({"id": format!("{i}-{filler}"), "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": format!("g{i}")}});
        let mut out = String::new();
        assert!(crate::write_entity_members_remembered(
            &m.beta,
            a,
            &body.to_string(),
            &Selection::default(),
            item_of,
            &mut out
        ));
        out
    };
    // Far more than the memo holds: about 1 KiB kept per row.
    let rows = 3 * crate::memo::CAPACITY / 1024;
    for i in 0..rows {
        let out = shaped(i, Some(a));
        assert!(out.contains(&format!("\"groupId\":\"g{i}\"")), "{out}");
        assert!(m.beta.memo.bytes() <= crate::memo::CAPACITY, "bound held at row {i}");
    }
    assert!(m.beta.memo.bytes() > crate::memo::CAPACITY / 4, "the memo was used");
    // The same text as an item of its own type and alone: two entries, two answers.
    let item = shaped(7, Some(a));
    let alone = shaped(7, None);
    assert!(!item.contains("@odata.type\":\"#microsoft.graph.enrollmentConfigurationAssignment"), "{item}");
    assert!(alone.starts_with("\"@odata.type\":\"#microsoft.graph.enrollmentConfigurationAssignment\""), "{alone}");
    assert_eq!(shaped(7, Some(a)), item);
    // v1.0 has its own memo: a beta answer is never given for v1.0.
    assert_eq!(m.v1.memo.bytes(), 0);
}
