//! Resolving a resource path against the model and the tenant's data (OData URL
//! Conventions §4): singleton → contained collections → keys → navigations, casts,
//! bound actions, `$count` and `$ref`. One walk serves every resource in the schema.

use enrollgraph_csdl::{Action, Model, Navigation, Schema, qualify};
use enrollgraph_store::{ROOT, ReadTx, Row, Seq};

use crate::error::{Result, ServiceError};
use crate::path::Segment;

/// A collection of entities contained in `parent` under navigation `nav`.
#[derive(Debug, Clone)]
pub struct CollectionRef {
    /// The containing row ([`ROOT`] for the singleton).
    pub parent: Seq,
    /// The containing entity's id (`None` for the singleton).
    pub parent_id: Option<String>,
    /// The containing navigation, as the schema spells it.
    pub nav: String,
    /// The declared element type.
    pub element: String,
    /// A type-cast segment narrowing the element type.
    pub cast: Option<String>,
    /// Canonical path, e.g. `deviceManagement/deviceEnrollmentConfigurations('x')/assignments`.
    pub path: String,
}

impl CollectionRef {
    /// The element type after any cast.
    #[must_use]
    pub fn effective_type(&self) -> &str {
        self.cast.as_deref().unwrap_or(&self.element)
    }
}

/// One stored entity as addressed.
#[derive(Debug, Clone)]
pub struct EntityRef {
    /// The stored row.
    pub row: Row,
    /// The declared type of its collection.
    pub declared: String,
    /// The canonical path of its collection.
    pub collection_path: String,
}

impl EntityRef {
    /// The stored body, read now if the path only passed through this entity.
    ///
    /// # Errors
    /// Storage failures, or the row is gone.
    pub fn loaded(mut self, tx: &dyn ReadTx) -> Result<EntityRef> {
        if self.row.raw.is_empty() {
            self.row = tx.get_seq(self.row.seq)?.ok_or_else(|| not_found(&self.row.id))?;
        }
        Ok(self)
    }

    /// Canonical path of the entity itself.
    #[must_use]
    pub fn path(&self) -> String {
        let mut out = String::with_capacity(self.collection_path.len() + self.row.id.len() + 4);
        out.push_str(&self.collection_path);
        crate::path::push_key_predicate(&mut out, &self.row.id);
        out
    }
}

/// What a path addresses.
#[derive(Debug, Clone)]
pub enum Target {
    /// A singleton of the entity container (`deviceManagement`).
    Singleton {
        /// Its name.
        name: String,
        /// Its type.
        type_name: String,
    },
    /// A contained collection.
    Collection(CollectionRef),
    /// One entity.
    Entity(EntityRef),
    /// A single-valued, non-contained navigation (`deploymentProfile`), possibly unset.
    SingleNav {
        /// The entity the navigation starts from.
        source: EntityRef,
        /// The navigation.
        nav: Navigation,
        /// Its current target.
        target: Option<EntityRef>,
    },
    /// The entities whose link `link` points at `target` (`assignedDevices`).
    Reverse {
        /// The entity linked to.
        target: EntityRef,
        /// The link's name on the sources.
        link: String,
        /// The navigation name used in the path.
        nav: String,
        /// The sources' declared type.
        element: String,
    },
    /// A bound action.
    Action {
        /// What the action is bound to.
        binding: Box<Target>,
        /// The action.
        action: Action,
    },
    /// A collection outside enrollgraph's scope that a real client reads (behaviour.json
    /// `emptyCollections`): always empty, as in a tenant that has none of them.
    Empty {
        /// Canonical path, e.g. `deviceManagement/depOnboardingSettings`.
        path: String,
    },
    /// A single object every tenant has, outside what enrollgraph stores (behaviour.json
    /// `singleObjects`), answered as a tenant that never set it up.
    Single {
        /// Canonical path, e.g. `deviceManagement/settings`.
        path: String,
        /// Its type.
        type_name: String,
        /// What differs from the type's defaults.
        value: serde_json::Map<String, serde_json::Value>,
    },
    /// `/$count` of a collection.
    Count(Box<Target>),
    /// `/$ref` of a navigation.
    Ref(Box<Target>),
}

/// The model and version a request is resolved in.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// Both schemas and behaviour.
    pub model: &'a Model,
    /// The schema of the request's version.
    pub schema: &'a Schema,
}

impl View<'_> {
    /// The type chain of `t`, root first, as names (for behaviour lookups).
    #[must_use]
    pub fn lineage(&self, t: &str) -> &[String] {
        self.model.beta.lineage_names(t)
    }
}

/// Resolves `segments` (after the version) in one tenant.
///
/// # Errors
/// `SegmentNotFound` for names the schema does not have, `ResourceNotFound` for ids
/// that do not exist, `BadQuery` for misplaced `$count`/`$ref`.
pub fn resolve(view: View<'_>, tx: &dyn ReadTx, segments: &[Segment]) -> Result<Target> {
    resolve_planned(view, tx, segments, plain_chain(view, segments).as_ref())
}

/// [`resolve`] with the path's [`Chain`] already read from the schema ([`Chain::of`]).
///
/// # Errors
/// As [`resolve`].
pub fn resolve_planned(
    view: View<'_>,
    tx: &dyn ReadTx,
    segments: &[Segment],
    chain: Option<&Chain<'_>>,
) -> Result<Target> {
    if let Some(chain) = chain
        && let Some(target) = resolve_chain(view, tx, chain)
    {
        return target;
    }
    match resolve_schema(view, tx, segments) {
        // Only a path the schema does not serve can be an out-of-scope collection, a single
        // object or a path of the full Graph schema, so the common case pays nothing for them.
        Err(e @ (ServiceError::SegmentNotFound(_) | ServiceError::NotImplemented(_))) => {
            if let Some(target) = resolve_single(view, segments)? {
                return Ok(target);
            }
            match e {
                ServiceError::SegmentNotFound(name) => match resolve_empty(view, tx, segments)? {
                    Some(target) => Ok(target),
                    None => Err(crate::graph_paths::unserved(view.schema.version, segments)
                        .unwrap_or(ServiceError::SegmentNotFound(name))),
                },
                other => Err(other),
            }
        }
        other => other,
    }
}

/// A single object of behaviour.json `singleObjects` at exactly this path (no keys): its
/// value, or a 404 where the tenant has none (graph-behaviours.md "Single objects a tenant
/// always has").
fn resolve_single(view: View<'_>, segments: &[Segment]) -> Result<Option<Target>> {
    if segments.iter().any(|s| s.key.is_some()) {
        return Ok(None);
    }
    let names = |i: usize| segments.get(i).map(|s| s.name.as_ref());
    let Some((path, object)) = view.model.behaviour.single_object(view.schema.version.as_str(), segments.len(), names)
    else {
        return Ok(None);
    };
    let path = path.join("/");
    match &object.value {
        Some(value) => Ok(Some(Target::Single { path, type_name: object.type_name.clone(), value: value.clone() })),
        None => Err(ServiceError::ResourceNotFound(format!("The requested resource '{path}' does not exist."))),
    }
}

/// A collection outside our scope that real clients read (behaviour.json `emptyCollections`):
/// matched by the names of its segments, with no key inside it; what follows is stepped as
/// usual (and finds nothing).
fn resolve_empty(view: View<'_>, tx: &dyn ReadTx, segments: &[Segment]) -> Result<Option<Target>> {
    let names = |i: usize| segments.get(i).map(|s| s.name.as_ref());
    let Some(empty) = view.model.behaviour.empty_collection(view.schema.version.as_str(), names) else {
        return Ok(None);
    };
    let n = empty.len();
    if segments[..n - 1].iter().any(|s| s.key.is_some()) {
        return Ok(None);
    }
    if let Some(key) = &segments[n - 1].key {
        return Err(not_found(key));
    }
    let mut target = Target::Empty { path: empty.join("/") };
    for (i, seg) in segments[n..].iter().enumerate() {
        target = step(view, tx, target, seg, n + i + 1 == segments.len())?;
    }
    Ok(Some(target))
}

/// The element type a POST to `segments` would create, from the schema alone (no row is
/// read), when the path is plain containment (`deviceManagement/configs('x')/assignments`);
/// `None` for anything else, which [`resolve`] then decides. A create validates its body
/// against this type without a read transaction; the write transaction resolves the path
/// for real (callgrind, issue 8's W1: the read-side look-up was a fifth of a create).
#[must_use]
pub fn creatable_type(view: View<'_>, segments: &[Segment]) -> Option<String> {
    match plain_chain(view, segments)?.end {
        End::Collection { element, .. } => Some(element.to_owned()),
        End::Entity => None,
    }
}

/// One keyed level of a [`Chain`]: the collection's navigation, the key as given, and the
/// collection's declared element type.
struct Level<'a> {
    nav: &'a str,
    key: &'a str,
    element: &'a str,
}

/// What a [`Chain`] ends on.
enum End<'a> {
    /// The entity of the last level.
    Entity,
    /// A collection contained in the last level's entity (or in the root).
    Collection { nav: &'a str, element: &'a str },
}

/// A path of plain containment (`deviceManagement/configs/{id}/assignments[/{id}]`, keys in
/// either form), read from the schema alone: the singleton it starts from (empty for an
/// entity set), each keyed level, and what it ends on.
pub struct Chain<'a> {
    root_path: &'a str,
    levels: Vec<Level<'a>>,
    end: End<'a>,
}

impl<'a> Chain<'a> {
    /// The chain of `segments`, when the path is plain containment (else the step-by-step
    /// walk of [`resolve`] decides).
    #[must_use]
    pub fn of(view: View<'a>, segments: &'a [Segment]) -> Option<Chain<'a>> {
        plain_chain(view, segments)
    }

    /// Whether it addresses one entity (its last level), not a collection.
    #[must_use]
    pub fn ends_in_entity(&self) -> bool {
        matches!(self.end, End::Entity)
    }
}

/// The [`Chain`] of `segments`, or `None` for anything else (casts, actions, links, `$`
/// segments, navigations declared only on a derived type, a bare singleton), which the
/// step-by-step walk decides.
fn plain_chain<'a>(view: View<'a>, segments: &'a [Segment]) -> Option<Chain<'a>> {
    enum At<'a> {
        Entity(&'a str),
        Collection(&'a str, &'a str),
    }
    let (first, rest) = segments.split_first()?;
    let mut levels = Vec::with_capacity(2);
    let (root_path, mut at) =
        if let Some((name, t)) = view.schema.singletons().iter().find(|(n, _)| n.eq_ignore_ascii_case(&first.name)) {
            if first.key.is_some() {
                return None;
            }
            (name.as_str(), At::Entity(t.as_str()))
        } else {
            let set = view.schema.entity_set(&first.name)?;
            match &first.key {
                Some(key) => {
                    levels.push(Level { nav: &set.name, key, element: &set.target });
                    ("", At::Entity(set.target.as_str()))
                }
                None => ("", At::Collection(&set.name, &set.target)),
            }
        };
    for seg in rest {
        let name: &str = &seg.name;
        at = match at {
            At::Collection(nav, element) => {
                let special = name.starts_with('$')
                    || seg.key.is_some()
                    || view.schema.find_action(element, name, true).is_some()
                    || (name.contains('.') && view.schema.structured(name).is_some());
                if special {
                    return None;
                }
                levels.push(Level { nav, key: name, element });
                At::Entity(element)
            }
            At::Entity(t) => {
                let nav = view.schema.find_navigation(t, name)?;
                if !(nav.contains_target && nav.collection)
                    || view.model.behaviour.reverse_navigation(view.lineage(t), &nav.name).is_some()
                {
                    return None;
                }
                match &seg.key {
                    Some(key) => {
                        levels.push(Level { nav: &nav.name, key, element: &nav.target });
                        At::Entity(nav.target.as_str())
                    }
                    None => At::Collection(&nav.name, &nav.target),
                }
            }
        };
    }
    let end = match at {
        At::Entity(_) if levels.is_empty() => return None,
        At::Entity(_) => End::Entity,
        At::Collection(nav, element) => End::Collection { nav, element },
    };
    Some(Chain { root_path, levels, end })
}

/// Resolves a [`Chain`] with one read of the store ([`ReadTx::get_chain`]), with the same
/// answers as the step-by-step walk, which read each level on its own and looked every
/// segment up in the schema again (callgrind, issue 8: the second statement was a tenth
/// of a point read, the walk a seventh of a create on the writer thread). `None` when a
/// stored row's own type makes a level something else than containment (a link on a
/// derived type): the step-by-step walk decides then.
fn resolve_chain(view: View<'_>, tx: &dyn ReadTx, chain: &Chain<'_>) -> Option<Result<Target>> {
    let levels = &chain.levels;
    let steps: Vec<(&str, &str)> = levels.iter().map(|l| (l.nav, l.key)).collect();
    let body = matches!(chain.end, End::Entity);
    let rows = match if steps.is_empty() { Ok(Vec::new()) } else { tx.get_chain(ROOT, &steps, body) } {
        Ok(rows) => rows,
        Err(e) => return Some(Err(e.into())),
    };
    let final_nav = match chain.end {
        End::Collection { nav, .. } => Some(nav),
        End::Entity => None,
    };
    for (i, (row, level)) in rows.iter().zip(levels).enumerate() {
        // A level of a type this version does not know, or outside its collection's
        // type, does not exist here (rulings.md 6), as in `collection_step`.
        if view.schema.structured(&row.type_name).is_none() || !view.schema.derives_from(&row.type_name, level.element)
        {
            return Some(Err(not_found(level.key)));
        }
        if let Some(next) = levels.get(i + 1).map(|l| l.nav).or(final_nav)
            && view.model.behaviour.reverse_navigation(view.lineage(&row.type_name), next).is_some()
        {
            return None;
        }
    }
    Some(chain_target(rows, chain))
}

/// The target of a chain whose levels were all found, or the 404 of the first missing.
fn chain_target(mut rows: Vec<Row>, chain: &Chain<'_>) -> Result<Target> {
    let levels = &chain.levels;
    if rows.len() < levels.len() {
        return Err(not_found(levels[rows.len()].key));
    }
    // The canonical path, as the step-by-step walk spells it: schema names, stored ids.
    let mut path = chain.root_path.to_owned();
    let keyed = match chain.end {
        End::Entity => levels.len().saturating_sub(1),
        End::Collection { .. } => levels.len(),
    };
    for (row, level) in rows.iter().zip(levels).take(keyed) {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(level.nav);
        crate::path::push_key_predicate(&mut path, &row.id);
    }
    let (nav, element) = match chain.end {
        End::Entity => levels.last().map(|l| (l.nav, l.element)).ok_or_else(|| not_found(""))?,
        End::Collection { nav, element } => (nav, element),
    };
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(nav);
    Ok(match chain.end {
        End::Entity => {
            let row = rows.pop().ok_or_else(|| not_found(nav))?;
            Target::Entity(EntityRef { row, declared: element.to_owned(), collection_path: path })
        }
        End::Collection { .. } => {
            let container = rows.pop();
            Target::Collection(CollectionRef {
                parent: container.as_ref().map_or(ROOT, |r| r.seq),
                parent_id: container.map(|r| r.id),
                nav: nav.to_owned(),
                element: element.to_owned(),
                cast: None,
                path,
            })
        }
    })
}

fn resolve_schema(view: View<'_>, tx: &dyn ReadTx, segments: &[Segment]) -> Result<Target> {
    let Some((first, rest)) = segments.split_first() else {
        return Err(ServiceError::SegmentNotFound(String::new()));
    };
    let mut target = if let Some((name, type_name)) =
        view.schema.singletons().iter().find(|(n, _)| n.eq_ignore_ascii_case(&first.name))
    {
        Target::Singleton { name: name.clone(), type_name: type_name.clone() }
    } else if let Some(set) = view.schema.entity_set(&first.name) {
        // A top-level entity set (`groups`): its rows live under the root row (OData URL §4.1).
        let c = CollectionRef {
            parent: ROOT,
            parent_id: None,
            nav: set.name.clone(),
            element: set.target.clone(),
            cast: None,
            path: set.name.clone(),
        };
        if let Some(key) = &first.key {
            collection_step(view, tx, c, key, rest.is_empty())?
        } else {
            Target::Collection(c)
        }
    } else {
        return Err(ServiceError::SegmentNotFound(first.name.to_string()));
    };
    if first.key.is_some() && matches!(target, Target::Singleton { .. }) {
        return Err(ServiceError::SegmentNotFound(format!(
            "{}({})",
            first.name,
            first.key.clone().unwrap_or_default()
        )));
    }
    for (i, seg) in rest.iter().enumerate() {
        // Entities the path only passes through are read without their body.
        let last = i + 1 == rest.len();
        target = step(view, tx, target, seg, last)?;
    }
    Ok(target)
}

fn step(view: View<'_>, tx: &dyn ReadTx, target: Target, seg: &Segment, last: bool) -> Result<Target> {
    let name: &str = &seg.name;
    let next = match target {
        Target::Action { .. } | Target::Count(_) | Target::Ref(_) | Target::Single { .. } => {
            return Err(ServiceError::SegmentNotFound(name.to_owned()));
        }
        // Nothing is ever in an empty collection: any id under it does not exist.
        Target::Empty { path } => {
            if name == "$count" && seg.key.is_none() {
                Target::Count(Box::new(Target::Empty { path }))
            } else {
                return Err(not_found(seg.key.as_deref().unwrap_or(name)));
            }
        }
        Target::Collection(c) => collection_step(view, tx, c, name, last && seg.key.is_none())?,
        Target::Reverse { target, link, nav, element } => {
            if name == "$ref" {
                Target::Ref(Box::new(Target::Reverse { target, link, nav, element }))
            } else if name == "$count" {
                Target::Count(Box::new(Target::Reverse { target, link, nav, element }))
            } else {
                let home = home_collection(view, &element)?;
                let sources = tx.linked_from(target.row.seq, &link)?;
                let row = tx.get(ROOT, &home.nav, name)?.filter(|r| sources.contains(&r.seq));
                match row {
                    Some(row) => Target::Entity(EntityRef { row, declared: element, collection_path: home.path }),
                    None => return Err(not_found(name)),
                }
            }
        }
        Target::SingleNav { source, nav, target } => {
            if name == "$ref" {
                Target::Ref(Box::new(Target::SingleNav { source, nav, target }))
            } else {
                // Navigating through an unset link answers 404 (rulings.md 5).
                let Some(entity) = target else { return Err(not_found(&nav.name)) };
                entity_step(view, tx, Target::Entity(entity), name)?
            }
        }
        t @ (Target::Singleton { .. } | Target::Entity(_)) => entity_step(view, tx, t, name)?,
    };
    match (&seg.key, next) {
        (None, t) => Ok(t),
        (Some(key), Target::Collection(c)) => collection_step(view, tx, c, key, last),
        (Some(key), Target::Empty { .. }) => Err(not_found(key)),
        (Some(_), _) => Err(ServiceError::SegmentNotFound(format!("{name}({})", seg.key.clone().unwrap_or_default()))),
    }
}

fn not_found(what: &str) -> ServiceError {
    ServiceError::ResourceNotFound(format!("The requested resource '{what}' does not exist."))
}

fn collection_step(view: View<'_>, tx: &dyn ReadTx, c: CollectionRef, name: &str, last: bool) -> Result<Target> {
    if name == "$count" {
        return Ok(Target::Count(Box::new(Target::Collection(c))));
    }
    if let Some(action) = view.schema.find_action(c.effective_type(), name, true) {
        return Ok(Target::Action { binding: Box::new(Target::Collection(c)), action: action.clone() });
    }
    if name.contains('.')
        && let Some(t) = view.schema.structured(name)
        && view.schema.derives_from(&t.name, c.effective_type())
    {
        let cast = t.name.clone();
        return Ok(Target::Collection(CollectionRef { path: format!("{}/{cast}", c.path), cast: Some(cast), ..c }));
    }
    let row = if last { tx.get(c.parent, &c.nav, name)? } else { tx.get_head(c.parent, &c.nav, name)? };
    let Some(row) = row else {
        return Err(not_found(name));
    };
    // A type this version does not know, or outside a cast, does not exist here (rulings.md 6).
    if view.schema.structured(&row.type_name).is_none() || !view.schema.derives_from(&row.type_name, c.effective_type())
    {
        return Err(not_found(name));
    }
    Ok(Target::Entity(EntityRef { row, declared: c.element, collection_path: c.path }))
}

fn entity_step(view: View<'_>, tx: &dyn ReadTx, target: Target, name: &str) -> Result<Target> {
    let (type_name, seq, path, parent_id) = match &target {
        Target::Singleton { name, type_name } => (type_name.clone(), ROOT, name.clone(), None),
        Target::Entity(e) => (e.row.type_name.clone(), e.row.seq, e.path(), Some(e.row.id.clone())),
        _ => return Err(ServiceError::SegmentNotFound(name.to_owned())),
    };
    if let Some(nav) = view.schema.find_navigation(&type_name, name).cloned() {
        let lineage = view.lineage(&type_name);
        if let Some(link) = view.model.behaviour.reverse_navigation(lineage, &nav.name) {
            let Target::Entity(entity) = target else { return Err(ServiceError::SegmentNotFound(name.to_owned())) };
            return Ok(Target::Reverse { target: entity, link: link.to_owned(), nav: nav.name, element: nav.target });
        }
        if nav.contains_target && nav.collection {
            return Ok(Target::Collection(CollectionRef {
                parent: seq,
                parent_id,
                path: format!("{path}/{}", nav.name),
                nav: nav.name,
                element: nav.target,
                cast: None,
            }));
        }
        if !nav.collection && !nav.contains_target {
            let Target::Entity(source) = target else { return Err(ServiceError::SegmentNotFound(name.to_owned())) };
            let linked = match tx.link(source.row.seq, &nav.name)? {
                Some(s) => tx.get_seq(s)?,
                None => None,
            };
            let linked = match linked {
                Some(row) => Some(entity_for_row(view, tx, row)?),
                None => None,
            };
            return Ok(Target::SingleNav { source, nav, target: linked });
        }
        return Err(ServiceError::NotImplemented(format!("navigation {type_name}/{}", nav.name)));
    }
    if let Some(action) = view.schema.find_action(&type_name, name, false) {
        return Ok(Target::Action { binding: Box::new(target), action: action.clone() });
    }
    if name.contains('.') {
        let cast = qualify(name);
        if view.schema.structured(&cast).is_some() {
            // A cast to a type the entity is not of addresses nothing (OData URL §4.11).
            return if view.schema.derives_from(&type_name, &cast) { Ok(target) } else { Err(not_found(name)) };
        }
    }
    Err(ServiceError::SegmentNotFound(name.to_owned()))
}

/// Where entities of `element` type live: the singleton's contained collection of that
/// type (the schema has no NavigationPropertyBinding; each type has one home).
///
/// # Errors
/// When the schema has no such collection.
pub fn home_collection(view: View<'_>, element: &str) -> Result<CollectionRef> {
    view.schema
        .contained_collections()
        .into_iter()
        .find(|(_, n)| view.schema.derives_from(element, &n.target))
        .map(|(prefix, n)| CollectionRef {
            parent: ROOT,
            parent_id: None,
            nav: n.name.clone(),
            element: n.target.clone(),
            cast: None,
            path: root_collection_path(prefix, &n.name),
        })
        .ok_or_else(|| ServiceError::NotImplemented(format!("no collection holds {element}")))
}

/// The path of a collection under the root row: `deviceManagement/x`, or `groups` for an
/// entity set (empty prefix).
fn root_collection_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") }
}

/// The addressable form of any stored row, found by walking up its containers.
///
/// # Errors
/// When a container is missing (a defect) or the version lacks the type.
pub fn entity_for_row(view: View<'_>, tx: &dyn ReadTx, row: Row) -> Result<EntityRef> {
    let parent_type;
    let parent_path;
    if row.parent == ROOT
        && let Some(set) = view.schema.entity_sets().iter().find(|n| n.name == row.nav)
    {
        if view.schema.structured(&row.type_name).is_none() {
            return Err(not_found(&row.id));
        }
        return Ok(EntityRef { declared: set.target.clone(), collection_path: set.name.clone(), row });
    }
    if row.parent == ROOT {
        let Some((name, ty)) =
            view.schema.singletons().iter().find(|(_, ty)| view.schema.find_navigation(ty, &row.nav).is_some())
        else {
            return Err(not_found(&row.id));
        };
        parent_type = ty.clone();
        parent_path = name.clone();
    } else {
        let Some(parent) = tx.get_seq(row.parent)? else { return Err(not_found(&row.id)) };
        parent_type = parent.type_name.clone();
        parent_path = entity_for_row(view, tx, parent)?.path();
    }
    let Some(nav) = view.schema.find_navigation(&parent_type, &row.nav) else { return Err(not_found(&row.id)) };
    if view.schema.structured(&row.type_name).is_none() {
        return Err(not_found(&row.id));
    }
    Ok(EntityRef { declared: nav.target.clone(), collection_path: format!("{parent_path}/{}", nav.name), row })
}

/// Resolves an absolute or relative entity URL (`@odata.id`, `@odata.bind`) to a row.
///
/// # Errors
/// `BadRequest` when the URL does not address an entity of this tenant.
pub fn resolve_reference(view: View<'_>, tx: &dyn ReadTx, url: &str) -> Result<EntityRef> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let path = path.split_once("://").map_or(path, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let path = path.trim_start_matches('/');
    let path = ["beta/", "v1.0/"].iter().find_map(|v| path.strip_prefix(v)).unwrap_or(path);
    let segments = crate::path::parse_path(path)?;
    match resolve(view, tx, &segments) {
        Ok(Target::Entity(e)) => Ok(e),
        Err(ServiceError::ResourceNotFound(m)) => Err(ServiceError::ResourceNotFound(m)),
        _ => Err(ServiceError::BadRequest(format!("The reference '{url}' does not address an entity."))),
    }
}
