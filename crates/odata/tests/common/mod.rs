//! An Intune-like model for tests and benchmarks (not part of the crate).
#![allow(dead_code)]

use std::collections::HashMap;

use enrollgraph_odata::{Model, Primitive, PropertyInfo, TypeRef};

pub const CONFIG: &str = "microsoft.graph.deviceEnrollmentConfiguration";
pub const LIMIT: &str = "microsoft.graph.deviceEnrollmentLimitConfiguration";
pub const RESTRICT: &str = "microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration";
pub const ASSIGNMENT: &str = "microsoft.graph.enrollmentConfigurationAssignment";
pub const TARGET: &str = "microsoft.graph.deviceAndAppManagementAssignmentTarget";
pub const GROUP: &str = "microsoft.graph.groupAssignmentTarget";
pub const EXCLUSION: &str = "microsoft.graph.exclusionGroupAssignmentTarget";
pub const ALL_DEVICES: &str = "microsoft.graph.allDevicesAssignmentTarget";
pub const ALL_USERS: &str = "microsoft.graph.allLicensedUsersAssignmentTarget";
pub const FILTER_TYPE: &str = "microsoft.graph.deviceAndAppManagementAssignmentFilterType";
pub const CONFIG_TYPE: &str = "microsoft.graph.deviceEnrollmentConfigurationType";

/// A structured type: its base type and its own properties.
type TypeDef = (Option<String>, Vec<(String, PropertyInfo)>);

#[derive(Default)]
pub struct TestModel {
    types: HashMap<String, TypeDef>,
    enums: HashMap<String, Vec<String>>,
}

fn prim(p: Primitive) -> PropertyInfo {
    PropertyInfo { type_ref: TypeRef::Primitive(p), is_collection: false, is_navigation: false, nullable: true }
}

fn with(mut p: PropertyInfo, f: impl FnOnce(&mut PropertyInfo)) -> PropertyInfo {
    f(&mut p);
    p
}

impl TestModel {
    fn add(&mut self, name: &str, base: Option<&str>, props: Vec<(&str, PropertyInfo)>) {
        self.types.insert(
            name.to_string(),
            (base.map(str::to_string), props.into_iter().map(|(n, p)| (n.to_string(), p)).collect()),
        );
    }
}

pub fn model() -> TestModel {
    let mut m = TestModel::default();
    m.enums.insert(FILTER_TYPE.into(), vec!["none".into(), "include".into(), "exclude".into()]);
    m.enums.insert(
        CONFIG_TYPE.into(),
        ["unknown", "limit", "platformRestrictions", "windowsHelloForBusiness", "defaultLimit"]
            .map(String::from)
            .to_vec(),
    );
    let complex = |t: &str| PropertyInfo {
        type_ref: TypeRef::Complex(t.into()),
        is_collection: false,
        is_navigation: false,
        nullable: true,
    };
    m.add("microsoft.graph.entity", None, vec![("id", with(prim(Primitive::String), |p| p.nullable = false))]);
    m.add(
        CONFIG,
        Some("microsoft.graph.entity"),
        vec![
            ("displayName", prim(Primitive::String)),
            ("description", prim(Primitive::String)),
            ("priority", prim(Primitive::Int32)),
            ("score", prim(Primitive::Double)),
            ("isEnabled", prim(Primitive::Boolean)),
            ("createdDateTime", prim(Primitive::DateTimeOffset)),
            ("tenantGuid", prim(Primitive::Guid)),
            ("releaseDate", prim(Primitive::Date)),
            (
                "deviceEnrollmentConfigurationType",
                PropertyInfo {
                    type_ref: TypeRef::Enum(CONFIG_TYPE.into()),
                    is_collection: false,
                    is_navigation: false,
                    nullable: true,
                },
            ),
            ("roleScopeTagIds", with(prim(Primitive::String), |p| p.is_collection = true)),
            ("target", complex(TARGET)),
            ("targets", with(complex(TARGET), |p| p.is_collection = true)),
            (
                "assignments",
                PropertyInfo {
                    type_ref: TypeRef::Entity(ASSIGNMENT.into()),
                    is_collection: true,
                    is_navigation: true,
                    nullable: true,
                },
            ),
        ],
    );
    m.add(LIMIT, Some(CONFIG), vec![("limit", prim(Primitive::Int32))]);
    m.add(RESTRICT, Some(CONFIG), vec![("platformType", prim(Primitive::String))]);
    m.add(
        ASSIGNMENT,
        Some("microsoft.graph.entity"),
        vec![("target", complex(TARGET)), ("source", prim(Primitive::String))],
    );
    m.add(
        TARGET,
        None,
        vec![
            ("deviceAndAppManagementAssignmentFilterId", prim(Primitive::String)),
            (
                "deviceAndAppManagementAssignmentFilterType",
                PropertyInfo {
                    type_ref: TypeRef::Enum(FILTER_TYPE.into()),
                    is_collection: false,
                    is_navigation: false,
                    nullable: true,
                },
            ),
        ],
    );
    m.add(GROUP, Some(TARGET), vec![("groupId", prim(Primitive::String))]);
    m.add(EXCLUSION, Some(GROUP), vec![]);
    m.add(ALL_DEVICES, Some(TARGET), vec![]);
    m.add(ALL_USERS, Some(TARGET), vec![]);
    m
}

impl Model for TestModel {
    fn property(&self, type_name: &str, name: &str) -> Option<PropertyInfo> {
        let mut t = Some(type_name.to_string());
        while let Some(tn) = t {
            let (base, props) = self.types.get(&tn)?;
            if let Some((_, p)) = props.iter().find(|(n, _)| n == name) {
                return Some(p.clone());
            }
            t = base.clone();
        }
        None
    }

    fn is_structured_type(&self, type_name: &str) -> bool {
        self.types.contains_key(type_name)
    }

    fn derives_from(&self, derived: &str, base: &str) -> bool {
        let mut t = Some(derived.to_string());
        while let Some(tn) = t {
            if tn == base {
                return true;
            }
            t = self.types.get(&tn).and_then(|(b, _)| b.clone());
        }
        false
    }

    fn self_and_derived(&self, type_name: &str) -> Vec<String> {
        let mut v: Vec<String> = self.types.keys().filter(|t| self.derives_from(t, type_name)).cloned().collect();
        v.sort();
        v
    }

    fn enum_members(&self, enum_type: &str) -> Option<Vec<String>> {
        self.enums.get(enum_type).cloned()
    }
}
