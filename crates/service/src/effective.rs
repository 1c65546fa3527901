//! Effective assignments (issue 15): for a group, or a set of groups (a user or a device that
//! is a member of several), which enrollment configuration of each kind applies and why, and
//! which Windows Autopilot deployment profile a device in those groups gets. Read-only, one
//! snapshot of the tenant; the admin API (`GET /_enrollgraph/tenants/{t}/effective`), the CLI
//! (`enrollgraph effective`) and the inspector all call [`Service::effective_assignments`].
//!
//! The rules, each from MicrosoftDocs/memdocs (file, heading), are listed in
//! `docs/effective-assignments.md` and cited where they are applied below:
//!
//! - **R1 priority** (`memdocs/intune/enrollment/enrollment-restrictions-set.md`, "Change
//!   enrollment restriction priority"; `memdocs/intune/enrollment/windows-enrollment-status.md`,
//!   "Prioritize profiles"): of the configurations of one kind assigned to a group the member
//!   is in, the one with the highest priority (the lowest number, 1 first) applies.
//! - **R2 default** (`enrollment-restrictions-set.md`, "Default restrictions";
//!   `windows-enrollment-status.md`, "Edit default profile"; `memdocs/intune/protect/windows-hello.md`,
//!   "Configure Windows Hello for Business on devices when they enroll with Intune": the
//!   tenant-wide policy "targets your entire organization"): the default of a kind (priority 0)
//!   applies to everyone, when nothing else of that kind does.
//! - **R3 exclusion** (`memdocs/intune/apps/apps-inc-exl-assignments.md`, "Exclusion takes
//!   precedence over inclusion"): a configuration assigned to one of the groups and excluded
//!   for another does not apply.
//! - **R4 audience** (`enrollment-restrictions-set.md`, "Change enrollment restriction
//!   priority", note: "Enrollment restrictions are applied to users"): restrictions (device
//!   limit, platform) and enrollment notifications are user-targeted, so `allLicensedUsers`
//!   reaches them and `allDevices` does not; the enrollment status page takes user and device
//!   groups (`windows-enrollment-status.md`, "Prioritize profiles"), as do the other kinds.
//! - **R5 Autopilot** (`memdocs/autopilot/profiles.md`, "Autopilot profile priority"): a device
//!   whose groups are assigned several profiles gets the oldest created one; with none, the
//!   profile assigned to all devices (the "default profile"); exclusions of groups are
//!   supported except under All Devices (`profiles.md`, "Create an Autopilot deployment
//!   profile", note on exclusions).
//! - **R6 filters** (`memdocs/intune/fundamentals/filters.md`, "Edit filter" options; rule
//!   language: `memdocs/intune/fundamentals/filters-device-properties.md`, "Advanced rule
//!   editing"): an include filter lets only matching devices have the assignment, an exclude
//!   filter only the others. Without device properties a filter is the *condition* under
//!   which the answer holds; with them, its rule is evaluated ([`crate::filter_rule`]).
//!
//! User-targeted and device-targeted kinds are told apart by `audience`; which of the given
//! groups are user groups and which device groups is not known here (a group is a group), so
//! the ESP's "device profiles before user profiles" order is reported, not applied.

use std::collections::{BTreeMap, HashMap};

use enrollgraph_store::{ListSpec, ROOT, ReadTx, Row, StoreExt};
use serde_json::{Map, Value, json};

use crate::filter_rule::Rule;
use crate::resolve::View;
use crate::{Result, Service, ServiceError};

/// The most groups one question may name (a member of more groups is asked about in parts).
pub const MAX_GROUPS: usize = 50;
/// The most device properties one question may give.
pub const MAX_DEVICE_PROPERTIES: usize = 32;
/// The longest group id or property value accepted.
const MAX_VALUE_LEN: usize = 1024;

/// What is asked: the groups the user or device is a member of, and optionally the device's
/// properties (for assignment filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectiveQuery {
    /// Group ids (deduplicated, case-insensitively, in the order given).
    pub groups: Vec<String>,
    /// Device properties, names in lower case (`deviceownership` → `Corporate`).
    pub device: BTreeMap<String, String>,
}

impl EffectiveQuery {
    /// A question from groups and `name=value` device properties, checked.
    ///
    /// # Errors
    /// `BadRequest` for no group, too many, an empty or overlong id or value.
    pub fn new(
        groups: impl IntoIterator<Item = String>,
        device: impl IntoIterator<Item = (String, String)>,
    ) -> Result<EffectiveQuery> {
        let mut q = EffectiveQuery::default();
        for g in groups {
            let g = g.trim().to_owned();
            if g.is_empty() || g.len() > MAX_VALUE_LEN {
                return Err(ServiceError::BadRequest(format!("A group id must be 1 to {MAX_VALUE_LEN} characters.")));
            }
            if !q.groups.iter().any(|h| h.eq_ignore_ascii_case(&g)) {
                q.groups.push(g);
            }
            if q.groups.len() > MAX_GROUPS {
                return Err(ServiceError::BadRequest(format!(
                    "At most {MAX_GROUPS} groups may be named in one question."
                )));
            }
        }
        if q.groups.is_empty() {
            return Err(ServiceError::BadRequest("Name at least one group ('group={groupId}').".into()));
        }
        for (name, value) in device {
            if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ServiceError::BadRequest(format!(
                    "'device.{name}' is not a device property name (letters and digits, up to 64)."
                )));
            }
            if value.len() > MAX_VALUE_LEN {
                return Err(ServiceError::BadRequest(format!(
                    "The value of 'device.{name}' is longer than {MAX_VALUE_LEN} characters."
                )));
            }
            q.device.insert(name.to_ascii_lowercase(), value);
            if q.device.len() > MAX_DEVICE_PROPERTIES {
                return Err(ServiceError::BadRequest(format!(
                    "At most {MAX_DEVICE_PROPERTIES} device properties may be given."
                )));
            }
        }
        Ok(q)
    }

    /// A question from a URL query string: `group={id}` (repeated) and `device.{property}={value}`.
    ///
    /// # Errors
    /// `BadRequest` for another parameter or what [`EffectiveQuery::new`] refuses.
    pub fn from_query_string(query: &str) -> Result<EffectiveQuery> {
        let mut groups = Vec::new();
        let mut device = Vec::new();
        let mut n = 0usize;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            n += 1;
            // Bounded before anything is decoded: a query of thousands of parameters is
            // refused, not collected.
            if n > MAX_GROUPS + MAX_DEVICE_PROPERTIES + 1 {
                return Err(ServiceError::BadRequest(format!(
                    "Too many parameters: at most {MAX_GROUPS} groups and {MAX_DEVICE_PROPERTIES} device properties."
                )));
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k)?, decode(v)?);
            if k == "group" {
                groups.push(v);
            } else if let Some(p) = k.strip_prefix("device.") {
                device.push((p.to_owned(), v));
            } else {
                return Err(ServiceError::BadRequest(format!(
                    "Unknown parameter '{k}': give 'group' (repeated) and 'device.{{property}}'."
                )));
            }
        }
        EffectiveQuery::new(groups, device)
    }
}

fn decode(s: &str) -> Result<String> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ServiceError::BadRequest("The query is not UTF-8 once percent-decoded.".into()))
}

/// A kind of enrollment configuration: its `priorityGroup` (behaviour.json), who it targets,
/// and which virtual groups reach it (R4).
struct Kind {
    kind: &'static str,
    audience: &'static str,
    title: &'static str,
    all_users: bool,
    all_devices: bool,
}

/// The kinds, in the order the Intune admin center lists them.
const KINDS: [Kind; 7] = [
    Kind { kind: "limit", audience: "user", title: "Device limit restrictions", all_users: true, all_devices: false },
    Kind {
        kind: "platformRestrictions",
        audience: "user",
        title: "Device platform restrictions",
        all_users: true,
        all_devices: false,
    },
    Kind {
        kind: "windowsHelloForBusiness",
        audience: "device",
        title: "Windows Hello for Business",
        all_users: true,
        all_devices: true,
    },
    Kind {
        kind: "windows10EnrollmentCompletionPageConfiguration",
        audience: "device",
        title: "Enrollment Status Page",
        all_users: true,
        all_devices: true,
    },
    Kind {
        kind: "deviceComanagementAuthorityConfiguration",
        audience: "device",
        title: "Co-management authority",
        all_users: true,
        all_devices: true,
    },
    Kind {
        kind: "enrollmentNotificationsConfiguration",
        audience: "user",
        title: "Enrollment notifications",
        all_users: true,
        all_devices: false,
    },
    Kind { kind: "windowsRestore", audience: "user", title: "Windows restore", all_users: true, all_devices: true },
];

const ALL_USERS: &str = "allLicensedUsersAssignmentTarget";
const ALL_DEVICES: &str = "allDevicesAssignmentTarget";
const GROUP: &str = "groupAssignmentTarget";
const EXCLUSION: &str = "exclusionGroupAssignmentTarget";

/// A configuration or profile, its body read once (the resolution reads these fields many
/// times: parsing the body each time was most of the cost).
struct Item {
    id: String,
    type_name: String,
    display_name: Value,
    priority: i64,
    created: String,
}

impl From<Row> for Item {
    fn from(row: Row) -> Item {
        let b = row.body();
        Item {
            display_name: b.get("displayName").cloned().unwrap_or(Value::Null),
            priority: b.get("priority").and_then(Value::as_i64).unwrap_or(0),
            created: b.get("createdDateTime").and_then(Value::as_str).unwrap_or_default().to_owned(),
            id: row.id,
            type_name: row.type_name,
        }
    }
}

/// A configuration or profile with its assignments' targets.
type Assigned = (Item, Vec<Map<String, Value>>);

/// What was read from the tenant, in one snapshot.
struct Data {
    /// Configurations with their assignments' targets.
    configs: Vec<Assigned>,
    profiles: Vec<Assigned>,
    /// Assignment filters by lower-case id: (displayName, rule).
    filters: HashMap<String, (Option<String>, Option<String>)>,
    /// The named groups' display names (`None`: not in this tenant's `groups`).
    groups: Vec<(String, Option<String>)>,
}

fn with_targets(tx: &dyn ReadTx, nav: &str) -> std::result::Result<Vec<Assigned>, ServiceError> {
    let spec = ListSpec::default();
    let mut out = Vec::new();
    for row in tx.list(ROOT, nav, &spec)? {
        let targets = tx
            .list(row.seq, "assignments", &spec)?
            .iter()
            .filter_map(|a| match a.body().remove("target") {
                Some(Value::Object(t)) => Some(t),
                _ => None,
            })
            .collect();
        out.push((Item::from(row), targets));
    }
    Ok(out)
}

/// The unqualified name of a target's type (`#microsoft.graph.groupAssignmentTarget` →
/// `groupAssignmentTarget`).
fn target_type(t: &Map<String, Value>) -> &str {
    let s = t.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    let s = s.trim_start_matches('#');
    s.strip_prefix("microsoft.graph.").unwrap_or(s)
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// How an assignment set reaches the member.
enum Reach {
    /// An exclusion of one of the groups (R3).
    Excluded(String),
    /// An inclusion: `via` and the target (for its filter).
    Included { via: String, target: Map<String, Value> },
    /// Nothing reaches; why.
    NotTargeted(String),
}

fn reach(
    targets: &[Map<String, Value>],
    groups: &[(String, Option<String>)],
    all_users: bool,
    all_devices: bool,
) -> Reach {
    let in_groups = |t: &Map<String, Value>| {
        str_of(t, "groupId")
            .and_then(|g| groups.iter().find(|(h, _)| h.eq_ignore_ascii_case(g)))
            .map(|(h, _)| h.clone())
    };
    // R3: an exclusion of any of the member's groups beats every inclusion.
    if let Some(g) = targets.iter().filter(|t| target_type(t) == EXCLUSION).find_map(in_groups) {
        return Reach::Excluded(g);
    }
    let mut included: Vec<(String, &Map<String, Value>)> = Vec::new();
    let mut unreached = None;
    for t in targets {
        match target_type(t) {
            GROUP => {
                if let Some(g) = in_groups(t) {
                    included.push((format!("group {g}"), t));
                }
            }
            ALL_USERS if all_users => included.push(("allLicensedUsers".into(), t)),
            ALL_DEVICES if all_devices => included.push(("allDevices".into(), t)),
            ALL_USERS => unreached = Some("It is assigned to all licensed users, which does not reach this kind."),
            // R4: restrictions are applied to users.
            ALL_DEVICES => {
                unreached = Some("It is assigned to all devices, but this kind is applied to users, not devices.");
            }
            _ => {}
        }
    }
    // Of several inclusions, one without a filter decides; else the first.
    let pick = included
        .iter()
        .find(|(_, t)| filter_of(t).is_none())
        .or_else(|| included.first())
        .map(|(via, t)| (via.clone(), (*t).clone()));
    match pick {
        Some((via, target)) => Reach::Included { via, target },
        None => Reach::NotTargeted(unreached.unwrap_or("It is not assigned to any of these groups.").to_owned()),
    }
}

/// A target's filter: (id, "include"|"exclude"), when it has one.
fn filter_of(t: &Map<String, Value>) -> Option<(String, String)> {
    let id = str_of(t, "deviceAndAppManagementAssignmentFilterId").filter(|s| !s.is_empty())?;
    let kind = str_of(t, "deviceAndAppManagementAssignmentFilterType").unwrap_or("none");
    matches!(kind, "include" | "exclude").then(|| (id.to_owned(), kind.to_owned()))
}

/// A filter as a condition, and whether the assignment holds for the given device: `Some`
/// when the rule was evaluated (R6).
/// Whether `target`'s assignment filter lets the assignment hold for the described device
/// (`Some(true)` without a filter, `None` when it cannot be evaluated); the filter's
/// condition goes into `conditions`.
fn filter_holds(
    data: &Data,
    q: &EffectiveQuery,
    target: &Map<String, Value>,
    conditions: &mut Vec<Value>,
) -> Option<bool> {
    let Some((fid, ftype)) = filter_of(target) else { return Some(true) };
    let (c, h) = condition(data, q, &fid, &ftype);
    conditions.push(c);
    h
}

fn condition(data: &Data, q: &EffectiveQuery, id: &str, kind: &str) -> (Value, Option<bool>) {
    let (name, rule) = data.filters.get(&id.to_ascii_lowercase()).cloned().unwrap_or((None, None));
    let evaluated = if q.device.is_empty() {
        None
    } else {
        rule.as_deref().and_then(Rule::parse).and_then(|r| r.evaluate(&q.device))
    };
    let holds = evaluated.map(|m| if kind == "include" { m } else { !m });
    (json!({"filterId": id, "filterName": name, "filterType": kind, "rule": rule, "evaluated": evaluated}), holds)
}

fn odata_type(row: &Item) -> String {
    format!("#{}", row.type_name)
}

fn name_of(row: &Item) -> Value {
    row.display_name.clone()
}

fn priority_of(row: &Item) -> i64 {
    row.priority
}

fn candidate(row: &Item, priority: Value, outcome: &str, via: Option<&str>, reason: &str) -> Value {
    json!({"id": row.id, "displayName": name_of(row), "priority": priority, "outcome": outcome, "via": via, "reason": reason})
}

impl Service {
    /// Which enrollment configuration of each kind, and which Autopilot profile, applies to
    /// a member of `q.groups` in `tenant`, and why (the module's rules R1–R6), as the JSON the
    /// admin API serves.
    ///
    /// # Errors
    /// `BadRequest` for a malformed tenant id; `ResourceNotFound` for an unknown tenant;
    /// storage failures.
    pub fn effective_assignments(&self, tenant: &str, q: &EffectiveQuery) -> Result<Value> {
        let tenant = crate::canonical_tenant_id(tenant)?;
        let names = q.groups.clone();
        let data = self.store.read(&tenant, |tx| {
            if !tx.tenant_exists()? {
                return Err(ServiceError::ResourceNotFound(format!("The tenant '{tenant}' does not exist.")));
            }
            let mut filters = HashMap::new();
            for f in tx.list(ROOT, "assignmentFilters", &ListSpec::default())? {
                let b = f.body();
                let s = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_owned);
                filters.insert(f.id.to_ascii_lowercase(), (s("displayName"), s("rule")));
            }
            let mut groups = Vec::new();
            for g in &names {
                let row = tx.get(ROOT, "groups", g)?;
                let name = row.and_then(|r| r.body().get("displayName").and_then(Value::as_str).map(str::to_owned));
                groups.push((g.clone(), name));
            }
            Ok(Data {
                configs: with_targets(tx, "deviceEnrollmentConfigurations")?,
                profiles: with_targets(tx, "windowsAutopilotDeploymentProfiles")?,
                filters,
                groups,
            })
        })?;
        let view = View { model: &self.model, schema: &self.model.beta };
        // Each configuration's kind, looked up once (by type: few distinct ones).
        let mut by_type: HashMap<&str, Option<String>> = HashMap::new();
        let kind_of: Vec<Option<String>> = data
            .configs
            .iter()
            .map(|(r, _)| {
                by_type
                    .entry(r.type_name.as_str())
                    .or_insert_with(|| self.model.behaviour.for_type(view.lineage(&r.type_name)).priority_group.clone())
                    .clone()
            })
            .collect();
        let mut kinds = Vec::new();
        for kind in &KINDS {
            let mut of_kind: Vec<&Assigned> = data
                .configs
                .iter()
                .zip(&kind_of)
                .filter(|(_, k)| k.as_deref() == Some(kind.kind))
                .map(|(c, _)| c)
                .collect();
            if of_kind.is_empty() {
                continue;
            }
            // R1: priority 1 first; R2: the default (priority 0) last.
            of_kind.sort_by_key(|(r, _)| {
                let p = priority_of(r);
                (p == 0, p, r.id.to_ascii_lowercase())
            });
            kinds.push(resolve_kind(kind, &of_kind, &data, q));
        }
        let autopilot = resolve_autopilot(&data, q);
        let groups: Vec<Value> = data.groups.iter().map(|(id, name)| json!({"id": id, "displayName": name})).collect();
        Ok(json!({"tenant": tenant, "groups": groups, "kinds": kinds, "autopilot": autopilot}))
    }
}

fn resolve_kind(kind: &Kind, configs: &[&Assigned], data: &Data, q: &EffectiveQuery) -> Value {
    let mut applied: Option<(&Item, String)> = None;
    let mut conditions = Vec::new();
    let mut reasons = Vec::new();
    let mut candidates = Vec::new();
    for (row, targets) in configs {
        let p = priority_of(row);
        let name = name_of(row);
        let label = format!("'{}' (priority {p})", name.as_str().unwrap_or(&row.id));
        if p == 0 {
            // R2: the default reaches everyone and applies when nothing else does.
            if let Some((a, _)) = applied {
                candidates.push(candidate(
                    row,
                    json!(p),
                    "lowerPriority",
                    Some("default"),
                    &format!(
                        "The default applies only when no other {} applies; '{}' does.",
                        kind.title,
                        name_of(a).as_str().unwrap_or(&a.id)
                    ),
                ));
            } else {
                let why = format!(
                    "{label} is the tenant default: no other {} is assigned to these groups{}, so the default (priority 0) applies to everyone.",
                    kind.title,
                    if conditions.is_empty() { "" } else { " and passes its filters" }
                );
                candidates.push(candidate(row, json!(p), "applies", Some("default"), &why));
                reasons.push(why);
                applied = Some((row, "default".into()));
            }
            continue;
        }
        match reach(targets, &data.groups, kind.all_users, kind.all_devices) {
            Reach::Excluded(g) => candidates.push(candidate(
                row,
                json!(p),
                "excluded",
                Some(format!("group {g}").as_str()),
                &format!("It excludes group {g}; an exclusion beats any inclusion."),
            )),
            Reach::NotTargeted(why) => candidates.push(candidate(row, json!(p), "notTargeted", None, &why)),
            Reach::Included { via, target } => {
                if let Some((a, _)) = applied {
                    candidates.push(candidate(
                        row,
                        json!(p),
                        "lowerPriority",
                        Some(via.as_str()),
                        &format!(
                            "It reaches these groups through {via}, but '{}' has a higher priority (priority {}).",
                            name_of(a).as_str().unwrap_or(&a.id),
                            priority_of(a)
                        ),
                    ));
                    continue;
                }
                let holds = filter_holds(data, q, &target, &mut conditions);
                if holds == Some(false) {
                    candidates.push(candidate(
                        row,
                        json!(p),
                        "filteredOut",
                        Some(via.as_str()),
                        &format!(
                            "It reaches these groups through {via}, but its assignment filter leaves this device out."
                        ),
                    ));
                    continue;
                }
                let mut why = format!(
                    "{label} is the highest-priority {} assigned to these groups (through {via}); priority 1 is the highest.",
                    kind.title
                );
                if holds.is_none() {
                    why.push_str(
                        " Its assignment filter is not evaluated: this holds only for devices the filter lets through (see conditions).",
                    );
                }
                candidates.push(candidate(row, json!(p), "applies", Some(via.as_str()), &why));
                reasons.push(why);
                applied = Some((row, via));
            }
        }
    }
    if kind.kind == "windows10EnrollmentCompletionPageConfiguration" {
        reasons.push(
            "Intune applies the highest-priority profile assigned to the device before one assigned to the user; these groups are not told apart as user or device groups here.".into(),
        );
    }
    let applies = applied.map(|(r, via)| {
        json!({"id": r.id, "displayName": name_of(r), "priority": priority_of(r),
               "@odata.type": odata_type(r), "isDefault": via == "default"})
    });
    json!({"kind": kind.kind, "audience": kind.audience, "title": kind.title, "applies": applies,
           "conditions": conditions, "reasons": reasons, "candidates": candidates})
}

fn created_of(row: &Item) -> String {
    row.created.clone()
}

/// R5: the oldest created profile assigned to one of the groups; else the profile assigned to
/// all devices.
fn resolve_autopilot(data: &Data, q: &EffectiveQuery) -> Value {
    let mut profiles: Vec<&Assigned> = data.profiles.iter().collect();
    profiles.sort_by_key(|(r, _)| (created_of(r), r.id.to_ascii_lowercase()));
    let mut applied: Option<(&Item, bool)> = None;
    let mut conditions = Vec::new();
    let mut reasons = Vec::new();
    let mut outcome: Vec<Option<Value>> = vec![None; profiles.len()];
    // Two passes: profiles assigned to the groups, then the all-devices default.
    for default_pass in [false, true] {
        for (i, (row, targets)) in profiles.iter().enumerate() {
            if outcome[i].is_some() {
                continue;
            }
            let r = reach(targets, &data.groups, false, default_pass);
            let created = created_of(row);
            let via = match r {
                Reach::Excluded(g) => {
                    outcome[i] = Some(candidate(
                        row,
                        Value::Null,
                        "excluded",
                        Some(format!("group {g}").as_str()),
                        &format!("It excludes group {g}; an exclusion beats any inclusion."),
                    ));
                    continue;
                }
                Reach::NotTargeted(_) if !default_pass => continue,
                Reach::NotTargeted(_) => {
                    outcome[i] = Some(candidate(
                        row,
                        Value::Null,
                        "notTargeted",
                        None,
                        "It is assigned neither to these groups nor to all devices.",
                    ));
                    continue;
                }
                Reach::Included { via, target } => (via, target),
            };
            let (via, target) = via;
            if let Some((a, _)) = applied {
                let why = if default_pass {
                    format!(
                        "It is assigned to all devices, but '{}' is assigned to these groups; the all-devices profile applies only when no other does.",
                        name_of(a).as_str().unwrap_or(&a.id)
                    )
                } else {
                    format!(
                        "It is assigned to these groups (through {via}), but '{}' was created earlier ({}): the oldest created profile wins.",
                        name_of(a).as_str().unwrap_or(&a.id),
                        created_of(a)
                    )
                };
                outcome[i] = Some(candidate(row, Value::Null, "lowerPriority", Some(via.as_str()), &why));
                continue;
            }
            let holds = filter_holds(data, q, &target, &mut conditions);
            if holds == Some(false) {
                outcome[i] = Some(candidate(
                    row,
                    Value::Null,
                    "filteredOut",
                    Some(via.as_str()),
                    "Its assignment filter leaves this device out.",
                ));
                continue;
            }
            let label = format!("'{}' (created {created})", name_of(row).as_str().unwrap_or(&row.id));
            let mut why = if default_pass {
                format!(
                    "{label} is assigned to all devices and no profile is assigned to these groups, so this default profile applies."
                )
            } else {
                format!("{label} is the oldest created profile assigned to these groups (through {via}).")
            };
            if holds.is_none() {
                why.push_str(
                    " Its assignment filter is not evaluated: this holds only for devices the filter lets through.",
                );
            }
            outcome[i] = Some(candidate(row, Value::Null, "applies", Some(via.as_str()), &why));
            reasons.push(why);
            applied = Some((row, default_pass));
        }
    }
    if applied.is_none() {
        reasons.push("No Autopilot profile is assigned to these groups or to all devices.".into());
    }
    let applies = applied.map(|(r, default)| {
        json!({"id": r.id, "displayName": name_of(r), "createdDateTime": created_of(r),
               "@odata.type": odata_type(r), "isDefault": default})
    });
    json!({"applies": applies, "conditions": conditions, "reasons": reasons,
           "candidates": outcome.into_iter().flatten().collect::<Vec<_>>()})
}
