//! `schema/behaviour.json`: what the server does that CSDL cannot say (computed
//! properties, id formats, priorities, action semantics). Data, not code per type.

use crate::HashMap;
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::CsdlError;

/// Per-type facts (see the `_why` notes in the file).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeBehaviour {
    /// Created entities get `<guid>_<suffix>` ids.
    pub id_suffix: Option<String>,
    /// A template for server-made ids (`{parentId}`, `{targetGroupId}`).
    pub id_template: Option<String>,
    /// Property values the server sets whatever the client sends.
    #[serde(default)]
    pub fixed: Map<String, Value>,
    /// Property values the server sets when the client leaves them null (templates allowed).
    #[serde(default)]
    pub fill: Map<String, Value>,
    /// Priorities are unique and contiguous within this group.
    pub priority_group: Option<String>,
    /// Properties answered under a legacy and a current name, kept in step.
    #[serde(default)]
    pub renamed: Vec<RenamedProperty>,
    /// A target type at most one parent may have an item with (among its siblings).
    pub unique_target: Option<UniqueTarget>,
}

/// At most one parent among siblings may hold an item whose `target` is of `type`
/// (graph-behaviours.md: one Autopilot profile assigned to All Devices).
#[derive(Debug, Clone, Deserialize)]
pub struct UniqueTarget {
    /// The target's type (qualified, no `#`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// The refusal, `{otherParentId}` standing for the parent that has it.
    pub message: String,
}

/// A property the live service answers under two names, kept in step: a write to either
/// reads back under both (graph-behaviours.md "Shapes": Autopilot profiles since 2024).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RenamedProperty {
    /// The legacy name.
    pub legacy: String,
    /// The current name.
    pub current: String,
    /// For a complex value whose type was renamed too: legacy member name → current one.
    #[serde(default)]
    pub members: HashMap<String, String>,
}

/// What a bound action does.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ActionKind {
    /// Replace the contained collection `navigation` with the entities in `parameter`.
    ReplaceContained {
        /// The contained navigation to replace.
        navigation: String,
        /// The parameter holding the new set.
        parameter: String,
    },
    /// Move the entity to the priority in `parameter`, shifting its group.
    SetPriority {
        /// The parameter holding the priority.
        parameter: String,
    },
    /// Point `navigation` of each device in `parameter` at the bound entity.
    BindDevices {
        /// The parameter with the device ids.
        parameter: String,
        /// The single-valued navigation on the device.
        navigation: String,
        /// Properties set on each bound device (`{now}` is the current time).
        #[serde(default)]
        set: Map<String, Value>,
    },
    /// Copy each parameter onto the same-named property.
    SetProperties,
    /// Set the listed properties to null.
    ClearProperties {
        /// The properties to clear.
        properties: Vec<String>,
    },
}

/// A single object every tenant has, outside what enrollgraph stores: answered as a tenant
/// that never set it up answers (behaviour.json `singleObjects`).
#[derive(Debug, Clone, Deserialize)]
pub struct SingleObject {
    /// Its type (an entity or a complex type of the schema).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Its value; `None` (JSON null): the tenant has none, and reading it is a 404.
    pub value: Option<Map<String, Value>>,
}

/// Where the server stamps times and versions.
#[derive(Debug, Clone, Deserialize)]
pub struct Stamps {
    /// Set once, on create.
    pub created: String,
    /// Set on every write.
    pub modified: String,
    /// Incremented on every update.
    pub version: String,
}

/// The whole behaviour file.
#[derive(Debug, Clone)]
pub struct Behaviour {
    computed: HashMap<String, Vec<String>>,
    /// Timestamps and version counters.
    pub stamps: Stamps,
    types: HashMap<String, TypeBehaviour>,
    virtual_groups: HashMap<String, String>,
    actions: HashMap<String, ActionKind>,
    reverse: HashMap<String, String>,
    /// Property paths to index (segments), from the `indexes` section.
    pub indexes: Vec<Vec<String>>,
    /// Per version, the paths (as segments) of collections that always answer empty.
    empty: HashMap<String, Vec<Vec<String>>>,
    /// Types whose key is answered whatever `$select` says.
    key_always_selected: Vec<String>,
    /// Element types of collections a DELETE clears.
    clearable: Vec<String>,
    /// Per first path segment, the permissions that allow reads and writes there.
    permissions: HashMap<String, Permissions>,
    /// Per version, single objects by path (as segments).
    single: HashMap<String, Vec<(Vec<String>, SingleObject)>>,
    /// [`Behaviour::for_type`]'s answers by lineage: the merge clones maps, and a create
    /// asked for it four times (callgrind, issue 17's W1).
    merged: Arc<RwLock<rustc_hash::FxHashMap<Vec<String>, Arc<TypeBehaviour>>>>,
}

/// The permissions a resource outside Intune accepts (any one of a list will do).
#[derive(Debug, Clone, Deserialize)]
pub struct Permissions {
    /// For GET.
    pub read: Vec<String>,
    /// For every other method.
    pub write: Vec<String>,
}

/// Drops the `_why`/`_doc` notes that every section carries.
fn entries<T: serde::de::DeserializeOwned>(v: &Value, section: &str) -> Result<HashMap<String, T>, CsdlError> {
    let mut out = HashMap::default();
    if let Some(obj) = v.get(section).and_then(Value::as_object) {
        for (k, val) in obj.iter().filter(|(k, _)| !k.starts_with('_')) {
            let parsed = serde_json::from_value(val.clone())
                .map_err(|e| CsdlError::Model("behaviour", format!("{section}/{k}: {e}")))?;
            out.insert(k.clone(), parsed);
        }
    }
    Ok(out)
}

impl Behaviour {
    /// Parses the behaviour file.
    ///
    /// # Errors
    /// When the committed file is malformed.
    pub fn parse(json: &str) -> Result<Self, CsdlError> {
        let v: Value = serde_json::from_str(json).map_err(|e| CsdlError::Model("behaviour", e.to_string()))?;
        let stamps = v
            .get("stamps")
            .cloned()
            .ok_or_else(|| CsdlError::Model("behaviour", "missing stamps".into()))
            .and_then(|s| serde_json::from_value(s).map_err(|e| CsdlError::Model("behaviour", e.to_string())))?;
        Ok(Behaviour {
            merged: Arc::default(),
            computed: entries(&v, "computed")?,
            stamps,
            types: entries(&v, "types")?,
            virtual_groups: entries(&v, "virtualGroups")?,
            actions: entries(&v, "actions")?,
            reverse: entries(&v, "reverseNavigations")?,
            indexes: v
                .pointer("/indexes/paths")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter().filter_map(Value::as_str).map(|p| p.split('/').map(str::to_owned).collect()).collect()
                })
                .unwrap_or_default(),
            empty: entries::<Vec<String>>(&v, "emptyCollections")?
                .into_iter()
                .map(|(ver, paths)| (ver, paths.iter().map(|p| p.split('/').map(str::to_owned).collect()).collect()))
                .collect(),
            permissions: entries(&v, "permissions")?,
            single: entries::<HashMap<String, SingleObject>>(&v, "singleObjects")?
                .into_iter()
                .map(|(ver, objects)| {
                    (ver, objects.into_iter().map(|(p, o)| (p.split('/').map(str::to_owned).collect(), o)).collect())
                })
                .collect(),
            clearable: v
                .pointer("/clearableCollections/types")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            key_always_selected: v
                .pointer("/keyAlwaysSelected/types")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    }

    /// True when a DELETE on a collection of `element` (exactly) clears it.
    #[must_use]
    pub fn clearable(&self, element: &str) -> bool {
        self.clearable.iter().any(|t| t == element)
    }

    /// True when one of `lineage`'s types answers its key whatever `$select` says.
    #[must_use]
    pub fn key_always_selected(&self, lineage: &[String]) -> bool {
        lineage.iter().any(|t| self.key_always_selected.contains(t))
    }

    /// The permissions behaviour.json names for paths starting with `first` (case-insensitive),
    /// for a write or a read; `None` when the resource uses the Intune defaults.
    #[must_use]
    pub fn permissions(&self, first: &str, write: bool) -> Option<&[String]> {
        self.permissions
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(first))
            .map(|(_, p)| if write { p.write.as_slice() } else { p.read.as_slice() })
    }

    /// The always-empty collection of `version` that the path `names` starts with, as its
    /// segments (matched case-insensitively, like navigations).
    #[must_use]
    pub fn empty_collection<'a>(&self, version: &str, names: impl Fn(usize) -> Option<&'a str>) -> Option<&[String]> {
        self.empty
            .get(version)?
            .iter()
            .find(|p| p.iter().enumerate().all(|(i, seg)| names(i).is_some_and(|n| n.eq_ignore_ascii_case(seg))))
            .map(Vec::as_slice)
    }

    /// The single object of `version` at exactly the path `names` (matched
    /// case-insensitively, like navigations), with its canonical path.
    #[must_use]
    pub fn single_object<'a>(
        &self,
        version: &str,
        len: usize,
        names: impl Fn(usize) -> Option<&'a str>,
    ) -> Option<(&[String], &SingleObject)> {
        self.single
            .get(version)?
            .iter()
            .find(|(p, _)| {
                p.len() == len
                    && p.iter().enumerate().all(|(i, seg)| names(i).is_some_and(|n| n.eq_ignore_ascii_case(seg)))
            })
            .map(|(p, o)| (p.as_slice(), o))
    }

    /// True when `prop`, declared on one of `lineage`'s types, is server-owned.
    #[must_use]
    pub fn is_computed(&self, lineage: &[String], prop: &str) -> bool {
        lineage.iter().any(|t| self.computed.get(t).is_some_and(|ps| ps.iter().any(|p| p == prop)))
    }

    /// The behaviour of the most derived type in `lineage` that has one, merged
    /// with its bases' (derived wins).
    #[must_use]
    pub fn for_type(&self, lineage: &[String]) -> Arc<TypeBehaviour> {
        if let Some(known) = self.merged.read().ok().and_then(|m| m.get(lineage).cloned()) {
            return known;
        }
        let mut out = TypeBehaviour::default();
        for t in lineage {
            if let Some(b) = self.types.get(t) {
                out.id_suffix = b.id_suffix.clone().or(out.id_suffix);
                out.id_template = b.id_template.clone().or(out.id_template);
                out.priority_group = b.priority_group.clone().or(out.priority_group);
                out.fixed.extend(b.fixed.clone());
                out.fill.extend(b.fill.clone());
                out.renamed.extend(b.renamed.iter().cloned());
                out.unique_target = b.unique_target.clone().or(out.unique_target);
            }
        }
        let out = Arc::new(out);
        // Lineages are the schema's types: the map is bounded by the schema.
        if let Ok(mut m) = self.merged.write() {
            m.insert(lineage.to_vec(), out.clone());
        }
        out
    }

    /// The id of the virtual group that a target type stands for.
    #[must_use]
    pub fn virtual_group(&self, target_type: &str) -> Option<&str> {
        self.virtual_groups.get(target_type).map(String::as_str)
    }

    /// What the action `name` bound to one of `lineage`'s types does.
    #[must_use]
    pub fn action(&self, lineage: &[String], name: &str) -> Option<&ActionKind> {
        lineage
            .iter()
            .rev()
            .find_map(|t| self.actions.iter().find(|(k, _)| k.eq_ignore_ascii_case(&format!("{t}/{name}"))))
            .map(|(_, v)| v)
    }

    /// For a navigation that is the reverse of a link, the link's name on the target.
    #[must_use]
    pub fn reverse_navigation(&self, lineage: &[String], nav: &str) -> Option<&str> {
        lineage
            .iter()
            .find_map(|t| {
                self.reverse
                    .iter()
                    .find(|(k, _)| k.strip_prefix(t.as_str()).and_then(|r| r.strip_prefix('/')) == Some(nav))
            })
            .map(|(_, v)| v.as_str())
    }
}
