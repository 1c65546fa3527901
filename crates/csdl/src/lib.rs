//! The Microsoft Graph entity data model that enrollgraph serves, read once at start
//! from the CSDL documents committed under `schema/` (OData CSDL XML v4.01) and the
//! behaviour annotations in `schema/behaviour.json`.
//!
//! One code path validates and shapes every type: adding a resource is adding schema.

mod behaviour;
mod load;
pub(crate) mod memo;
mod payload;
mod plan;
mod shape;

/// Type lookups run on every request; FxHash is several times cheaper than SipHash on
/// these long, trusted names (profiled: issue 8).
type HashMap<K, V> = rustc_hash::FxHashMap<K, V>;

pub use behaviour::{ActionKind, Behaviour, Permissions, RenamedProperty, SingleObject, TypeBehaviour, UniqueTarget};
pub use enrollgraph_odata::{Primitive, PropertyInfo, TypeRef};
pub use memo::WireMemo;
pub use payload::{
    Payload, ValidationError, WriteMode, complete, default_value, is_guid, keep_hidden_members,
    validate_action_parameters, validate_entity,
};
pub use plan::CreatePlan;
pub use shape::{Selection, shape_entity, shape_object, write_entity_members, write_entity_members_remembered};

/// A Graph API version; each has its own CSDL document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// `/beta`
    Beta,
    /// `/v1.0`
    V1,
}

impl ApiVersion {
    /// The URL segment (`beta`, `v1.0`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::Beta => "beta",
            ApiVersion::V1 => "v1.0",
        }
    }

    /// Parses a URL segment; Graph matches versions case-insensitively.
    #[must_use]
    pub fn parse(segment: &str) -> Option<Self> {
        if segment.eq_ignore_ascii_case("beta") {
            Some(ApiVersion::Beta)
        } else if segment.eq_ignore_ascii_case("v1.0") {
            Some(ApiVersion::V1)
        } else {
            None
        }
    }
}

/// Errors found while reading the embedded schema (a build defect, never a client's).
#[derive(Debug, thiserror::Error)]
pub enum CsdlError {
    /// The XML could not be parsed.
    #[error("CSDL {0}: {1}")]
    Xml(&'static str, String),
    /// The document is well-formed but refers to something it does not define.
    #[error("CSDL {0}: {1}")]
    Model(&'static str, String),
}

/// Whether a structured type is an entity type (CSDL §8) or a complex type (CSDL §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    /// `EntityType`
    Entity,
    /// `ComplexType`
    Complex,
}

/// A structural property (CSDL §6).
#[derive(Debug, Clone)]
pub struct Property {
    /// The property name, verbatim.
    pub name: String,
    /// The element type.
    pub type_ref: TypeRef,
    /// `Collection(...)`.
    pub collection: bool,
    /// CSDL `Nullable` (default true).
    pub nullable: bool,
}

/// A navigation property (CSDL §7).
#[derive(Debug, Clone)]
pub struct Navigation {
    /// The property name, verbatim.
    pub name: String,
    /// The target entity type, qualified.
    pub target: String,
    /// `Collection(...)`.
    pub collection: bool,
    /// CSDL `ContainsTarget` (§7.1.5): the targets live inside the source entity.
    pub contains_target: bool,
}

/// An entity or complex type (CSDL §8, §9).
#[derive(Debug, Clone)]
pub struct StructuredType {
    /// Qualified name (`microsoft.graph.groupAssignmentTarget`).
    pub name: String,
    /// Entity or complex.
    pub kind: TypeKind,
    /// Qualified base type name.
    pub base: Option<String>,
    /// CSDL `Abstract`.
    pub is_abstract: bool,
    /// Structural properties declared on this type (not inherited), in document order.
    pub properties: Vec<Property>,
    /// Navigation properties declared on this type.
    pub navigations: Vec<Navigation>,
}

/// An enumeration type (CSDL §10).
#[derive(Debug, Clone)]
pub struct EnumType {
    /// Qualified name.
    pub name: String,
    /// Member names in declaration order.
    pub members: Vec<String>,
    /// CSDL `IsFlags`: values are comma-separated member lists.
    pub is_flags: bool,
}

/// An action parameter (CSDL §12.5).
#[derive(Debug, Clone)]
pub struct Parameter {
    /// The parameter name.
    pub name: String,
    /// The element type.
    pub type_ref: TypeRef,
    /// `Collection(...)`.
    pub collection: bool,
    /// CSDL `Nullable`.
    pub nullable: bool,
}

/// A bound action (CSDL §12).
#[derive(Debug, Clone)]
pub struct Action {
    /// The action name.
    pub name: String,
    /// The binding parameter's type (qualified).
    pub binding_type: String,
    /// True when bound to a collection of the binding type.
    pub binding_collection: bool,
    /// The other parameters, in order.
    pub parameters: Vec<Parameter>,
}

/// One version's model: the CSDL document as data, with lookups.
#[derive(Debug)]
pub struct Schema {
    /// The version this document describes.
    pub version: ApiVersion,
    /// The CSDL XML itself, served as `$metadata`.
    pub xml: &'static str,
    types: HashMap<String, StructuredType>,
    enums: HashMap<String, EnumType>,
    actions: Vec<Action>,
    singletons: Vec<(String, String)>,
    entity_sets: Vec<Navigation>,
    derived: HashMap<String, Vec<String>>,
    /// Per type by qualified name, precomputed at load (these lookups are on every
    /// request's path, so each is one hash look-up).
    flat: HashMap<String, Flat>,
    /// Wire forms of stored rows already shaped for this version (`memo.rs`).
    pub memo: WireMemo,
}

/// A type with everything it inherits, root first.
#[derive(Debug)]
struct Flat {
    /// The lineage's names.
    lineage: Vec<String>,
    /// All structural properties, inherited ones first, in document order.
    properties: Vec<Property>,
    /// All navigation properties, inherited ones first.
    navigations: Vec<Navigation>,
}

/// Both versions' schemas plus the behaviour that CSDL cannot express.
#[derive(Debug)]
pub struct Model {
    /// `/beta`
    pub beta: Schema,
    /// `/v1.0`
    pub v1: Schema,
    /// Server-side behaviour annotations (`schema/behaviour.json`).
    pub behaviour: Behaviour,
    /// Types whose completion with v1.0 after beta adds nothing ([`Model::complete_both`]).
    v1_within_beta: rustc_hash::FxHashSet<String>,
    /// Create plans by type, made on first use ([`Model::create_plan`]); bounded by the
    /// schema's types.
    plans: std::sync::RwLock<HashMap<String, std::sync::Arc<CreatePlan>>>,
}

impl Model {
    /// Loads the schemas embedded in the binary at build time.
    ///
    /// # Errors
    /// Only if the committed schema files are defective; tests guard against that.
    pub fn load() -> Result<Self, CsdlError> {
        let beta = Schema::parse(ApiVersion::Beta, include_str!("../../../schema/beta.csdl.xml"))?;
        let v1 = Schema::parse(ApiVersion::V1, include_str!("../../../schema/v1.0.csdl.xml"))?;
        let v1_within_beta = completes_within(&beta, &v1);
        Ok(Model {
            beta,
            v1,
            behaviour: Behaviour::parse(include_str!("../../../schema/behaviour.json"))?,
            v1_within_beta,
            plans: std::sync::RwLock::default(),
        })
    }

    /// Adds every property either version declares for `type_name` and `body` lacks
    /// ([`complete`] with beta, then with v1.0). The v1.0 pass is skipped for types where it
    /// can add nothing (v1.0 is mostly a subset of beta): it cost 4 k instructions per
    /// create (callgrind, issue 17's W1).
    pub fn complete_both(&self, type_name: &str, body: &mut serde_json::Map<String, serde_json::Value>) {
        complete(&self.beta, type_name, body);
        if self.v1_pass(type_name) {
            complete(&self.v1, type_name, body);
        }
    }

    /// Whether [`Model::complete_both`]'s v1.0 pass can add anything for `type_name`.
    fn v1_pass(&self, type_name: &str) -> bool {
        !self.v1_within_beta.contains(type_name)
    }

    /// The create plan of the structured type `type_name` (qualified), made once.
    #[must_use]
    pub fn create_plan(&self, type_name: &str) -> Option<std::sync::Arc<CreatePlan>> {
        if let Some(known) = self.plans.read().ok().and_then(|p| p.get(type_name).cloned()) {
            return Some(known);
        }
        // Only the schema's types get a plan, so the map is bounded by the schema.
        let name = self.beta.structured(type_name)?.name.clone();
        let plan = std::sync::Arc::new(CreatePlan::new(self, &name));
        if let Ok(mut p) = self.plans.write() {
            p.insert(name, plan.clone());
        }
        Some(plan)
    }

    /// The schema of one version.
    #[must_use]
    pub fn schema(&self, version: ApiVersion) -> &Schema {
        match version {
            ApiVersion::Beta => &self.beta,
            ApiVersion::V1 => &self.v1,
        }
    }
}

impl Schema {
    /// A structured type by qualified name (alias `graph.` and a leading `#` accepted).
    #[must_use]
    pub fn structured(&self, name: &str) -> Option<&StructuredType> {
        match self.types.get(name) {
            Some(t) => Some(t),
            None if name.starts_with('#') || name.starts_with("graph.") => self.types.get(&qualify(name)),
            None => None,
        }
    }

    /// An enumeration type by qualified name.
    #[must_use]
    pub fn enum_type(&self, name: &str) -> Option<&EnumType> {
        match self.enums.get(name) {
            Some(e) => Some(e),
            None => self.enums.get(&qualify(name)),
        }
    }

    /// The entity-container singletons as (name, qualified type).
    #[must_use]
    pub fn singletons(&self) -> &[(String, String)] {
        &self.singletons
    }

    /// The entity-container entity sets (`groups`), each as the collection navigation of
    /// the service root it is for addressing (rows live under the store's root row).
    #[must_use]
    pub fn entity_sets(&self) -> &[Navigation] {
        &self.entity_sets
    }

    /// The entity set named `name` (case-insensitive, like navigations: clients.md §0).
    #[must_use]
    pub fn entity_set(&self, name: &str) -> Option<&Navigation> {
        self.entity_sets.iter().find(|n| n.name.eq_ignore_ascii_case(name))
    }

    /// The chain from the root base type down to `name` (inclusive).
    #[must_use]
    pub fn lineage(&self, name: &str) -> Vec<&StructuredType> {
        let mut chain = Vec::new();
        let mut cur = self.structured(name);
        while let Some(t) = cur {
            chain.push(t);
            cur = t.base.as_deref().and_then(|b| self.types.get(b));
        }
        chain.reverse();
        chain
    }

    /// Every structural property of `name`, inherited ones first, in document order.
    #[must_use]
    pub fn all_properties(&self, name: &str) -> &[Property] {
        // Qualified names (the hot path: shaping every row) in one look-up.
        self.flat_of(name).map_or(&[], |f| f.properties.as_slice())
    }

    /// `name`'s [`Flat`]: one look-up for a qualified name (the hot path), else qualified
    /// first (`#microsoft.graph.x`, `graph.x`).
    fn flat_of(&self, name: &str) -> Option<&Flat> {
        match self.flat.get(name) {
            Some(f) => Some(f),
            None => self.flat.get(self.structured(name)?.name.as_str()),
        }
    }

    /// A structural property of `name` or its bases.
    #[must_use]
    pub fn find_property(&self, type_name: &str, prop: &str) -> Option<&Property> {
        self.all_properties(type_name).iter().find(|p| p.name == prop)
    }

    /// A navigation property of `name` or its bases; Graph matches these case-insensitively
    /// (reference/clients.md §0: IntuneCD sends lower-case segments).
    #[must_use]
    pub fn find_navigation(&self, type_name: &str, nav: &str) -> Option<&Navigation> {
        // Flattened at load: one look-up of the type, not one per type of its lineage
        // (every path segment asks; callgrind: 0.66 k instructions a call before).
        self.flat_of(type_name)?.navigations.iter().find(|n| n.name.eq_ignore_ascii_case(nav))
    }

    /// True when `derived` is `base` or (transitively) derives from it.
    #[must_use]
    pub fn derives_from(&self, derived: &str, base: &str) -> bool {
        // Both qualified (every stored row's type against its collection's): one look-up.
        if self.flat.get(derived).is_some_and(|f| f.lineage.iter().any(|t| t == base)) {
            return true;
        }
        let (Some(d), Some(b)) = (self.structured(derived), self.structured(base)) else { return false };
        self.flat.get(&d.name).is_some_and(|f| f.lineage.contains(&b.name))
    }

    /// The names of `name`'s lineage, root first (no allocation).
    #[must_use]
    pub fn lineage_names(&self, name: &str) -> &[String] {
        self.flat_of(name).map_or(&[], |f| f.lineage.as_slice())
    }

    /// `name` and every type derived from it.
    #[must_use]
    pub fn self_and_derived(&self, name: &str) -> Vec<String> {
        let mut out = vec![qualify(name)];
        let mut i = 0;
        while i < out.len() {
            if let Some(children) = self.derived.get(&out[i]) {
                out.extend(children.iter().cloned());
            }
            i += 1;
        }
        out
    }

    /// Bound actions named `name` (case-insensitive, clients.md §0) that bind to `type_name`
    /// or one of its bases, on an entity (`collection == false`) or a collection.
    #[must_use]
    pub fn find_action(&self, type_name: &str, name: &str, collection: bool) -> Option<&Action> {
        // Path resolution asks this of every key segment, and almost no name is an
        // action: rule those out before walking the lineage (callgrind, issue 8's W2).
        if !self.actions.iter().any(|a| a.name.eq_ignore_ascii_case(name)) {
            return None;
        }
        // The most derived binding wins (OData CSDL §12.1 overload resolution).
        self.lineage_names(type_name).iter().rev().find_map(|t| {
            self.actions.iter().find(|a| {
                a.binding_type == *t && a.binding_collection == collection && a.name.eq_ignore_ascii_case(name)
            })
        })
    }

    /// The collections whose rows live under the store's root row, as (path prefix,
    /// navigation): those contained in a singleton (prefix: the singleton's name) and the
    /// container's entity sets (prefix: empty). Used to find where a non-contained
    /// navigation's targets live (the schema has no NavigationPropertyBinding).
    #[must_use]
    pub fn contained_collections(&self) -> Vec<(&str, &Navigation)> {
        self.singletons
            .iter()
            .flat_map(|(name, ty)| {
                self.lineage(ty)
                    .into_iter()
                    .flat_map(|t| t.navigations.iter())
                    .filter(|n| n.contains_target && n.collection)
                    .map(move |n| (name.as_str(), n))
            })
            .chain(self.entity_sets.iter().map(|n| ("", n)))
            .collect()
    }
}

/// Expands the `graph.` alias and strips a leading `#`.
#[must_use]
pub fn qualify(name: &str) -> String {
    let name = name.strip_prefix('#').unwrap_or(name);
    match name.strip_prefix("graph.") {
        Some(rest) => format!("microsoft.graph.{rest}"),
        None => name.to_owned(),
    }
}

impl enrollgraph_odata::Model for Schema {
    fn property(&self, type_name: &str, name: &str) -> Option<PropertyInfo> {
        if let Some(p) = self.find_property(type_name, name) {
            return Some(PropertyInfo {
                type_ref: p.type_ref.clone(),
                is_collection: p.collection,
                is_navigation: false,
                nullable: p.nullable,
            });
        }
        self.lineage(type_name).into_iter().flat_map(|t| t.navigations.iter()).find(|n| n.name == name).map(|n| {
            PropertyInfo {
                type_ref: TypeRef::Entity(n.target.clone()),
                is_collection: n.collection,
                is_navigation: true,
                nullable: true,
            }
        })
    }

    fn is_structured_type(&self, type_name: &str) -> bool {
        self.structured(type_name).is_some()
    }

    fn derives_from(&self, derived: &str, base: &str) -> bool {
        Schema::derives_from(self, derived, base)
    }

    fn self_and_derived(&self, type_name: &str) -> Vec<String> {
        Schema::self_and_derived(self, type_name)
    }

    fn enum_members(&self, enum_type: &str) -> Option<Vec<String>> {
        self.enum_type(enum_type).map(|e| e.members.clone())
    }
}

#[cfg(test)]
mod tests;

/// The types whose [`complete`] with `inner` after `outer` can add nothing: `outer`
/// declares (by name) every property `inner` declares for them, and every complex type of
/// `inner`, whatever value a body nests, has its properties in `outer`'s type of the same
/// name (checked for all of them at once, so that no nesting or derivation is missed:
/// when one fails, no type is skipped).
fn completes_within(outer: &Schema, inner: &Schema) -> rustc_hash::FxHashSet<String> {
    let within = |t: &str| {
        let outer_props = outer.all_properties(t);
        inner.all_properties(t).iter().all(|p| outer_props.iter().any(|o| o.name == p.name))
    };
    let complex_within = inner.types.values().filter(|t| matches!(t.kind, TypeKind::Complex)).all(|t| within(&t.name));
    if !complex_within {
        return rustc_hash::FxHashSet::default();
    }
    inner.types.keys().filter(|t| within(t)).cloned().collect()
}
