//! A create's stored form, written in one pass by a per-type plan computed once from the
//! schema (issue 17).
//!
//! The general path (`server_fields` in the service) inserts the id, the server-owned
//! values and a default for every absent property into the body's `serde_json::Map`, one
//! SipHash-keyed `IndexMap` insert each, computing each default anew, then serialises the
//! map. For an assignment that was 12 k of a create's ~174 k instructions (callgrind, W1
//! at c=1). The plan holds what does not depend on the body: every member a stored entity
//! of the type has, with the JSON text its value takes when absent (made by
//! [`Model::complete_both`] itself on an empty body, so the two cannot differ), and which
//! stamps the type carries. Writing then copies the client's members, the server's
//! values and the absent members' texts straight into the stored text.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::behaviour::TypeBehaviour;
use crate::payload::complete_member;
use crate::{Model, Property, TypeRef};

/// One member of a stored entity (or complex value) of the plan's type.
#[derive(Debug)]
struct PlanMember {
    name: String,
    /// The JSON text of the member when the body lacks it.
    absent: String,
    /// How a present value is completed.
    nested: Nested,
}

/// How a present member's value is completed.
#[derive(Debug)]
enum Nested {
    /// Not complex: written as it is.
    No,
    /// Complex, declared as this type in both versions (or only in the one that has the
    /// member): written by the plan of its runtime type.
    Plan(String),
    /// Complex, declared as different types in beta and v1.0: completed by the general
    /// path (`complete`, both passes), then written.
    General { beta: Option<Property>, v1: Option<Property> },
}

/// What a create of one type stores besides the client's members (see the module's doc).
/// Complex types have plans too, for the values nested in an entity.
#[derive(Debug)]
pub struct CreatePlan {
    members: Vec<PlanMember>,
    behaviour: Arc<TypeBehaviour>,
    /// The type has the creation stamp, the modification stamp, the version counter.
    created: bool,
    modified: bool,
    version: bool,
}

impl CreatePlan {
    pub(crate) fn new(model: &Model, type_name: &str) -> Self {
        let v1_pass = model.v1_pass(type_name);
        let mut whole = Map::new();
        model.complete_both(type_name, &mut whole);
        let members = whole
            .into_iter()
            .map(|(name, value)| {
                let complex = |schema: &'_ crate::Schema| {
                    schema.find_property(type_name, &name).filter(|p| complex_type(p).is_some()).cloned()
                };
                let beta = complex(&model.beta);
                let v1 = if v1_pass { complex(&model.v1) } else { None };
                let nested = match (beta.as_ref().and_then(complex_type), v1.as_ref().and_then(complex_type)) {
                    (None, None) => Nested::No,
                    (Some(t), None) | (None, Some(t)) => Nested::Plan(t.to_owned()),
                    (Some(b), Some(v)) if b == v => Nested::Plan(b.to_owned()),
                    _ => Nested::General { beta, v1 },
                };
                PlanMember { absent: serde_json::to_string(&value).unwrap_or_else(|_| "null".into()), nested, name }
            })
            .collect();
        let behaviour = model.behaviour.for_type(model.beta.lineage_names(type_name));
        let stamps = &model.behaviour.stamps;
        let has = |p: &str| model.beta.find_property(type_name, p).is_some();
        CreatePlan {
            members,
            behaviour,
            created: has(&stamps.created),
            modified: has(&stamps.modified),
            version: has(&stamps.version),
        }
    }

    /// The merged behaviour of the plan's type.
    #[must_use]
    pub fn behaviour(&self) -> &TypeBehaviour {
        &self.behaviour
    }

    /// The stored text of a new entity: the validated `body` with `id`, the type's fixed
    /// and filled values, the stamps (`now`, version 0) and every absent member, as the
    /// general path makes it (a test in the service compares the two for every type).
    /// Fills are taken as they are: a type whose fills or id use `{parentId}` (or whose
    /// properties are renamed) is made by the general path.
    #[must_use]
    pub fn stored_text(&self, model: &Model, body: &Map<String, Value>, id: &str, now: &str) -> String {
        // The server's values, later ones replacing earlier ones, as `server_fields` inserts them.
        let mut server: Vec<(&str, Value)> = Vec::with_capacity(4 + self.behaviour.fixed.len());
        fn set<'a>(server: &mut Vec<(&'a str, Value)>, name: &'a str, value: Value) {
            match server.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => server.push((name, value)),
            }
        }
        set(&mut server, "id", Value::String(id.to_owned()));
        for (k, v) in &self.behaviour.fixed {
            set(&mut server, k, v.clone());
        }
        for (k, v) in &self.behaviour.fill {
            let current = server.iter().find(|(n, _)| n == k).map(|(_, v)| v).or_else(|| body.get(k));
            if current.is_none_or(Value::is_null) {
                set(&mut server, k, v.clone());
            }
        }
        let stamps = &model.behaviour.stamps;
        if self.modified {
            set(&mut server, &stamps.modified, Value::String(now.to_owned()));
        }
        if self.created {
            set(&mut server, &stamps.created, Value::String(now.to_owned()));
        }
        if self.version {
            set(&mut server, &stamps.version, Value::from(0));
        }
        let mut out =
            Vec::with_capacity(64 + self.members.iter().map(|m| m.name.len() + m.absent.len() + 4).sum::<usize>());
        self.write_object(model, body, &server, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// `obj` (with `server`'s members in place of its own of the same names) and every
    /// absent member, as one JSON object.
    fn write_object(&self, model: &Model, obj: &Map<String, Value>, server: &[(&str, Value)], out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for (name, value) in obj {
            if server.iter().any(|(n, _)| n == name) {
                continue;
            }
            key(out, &mut first, name);
            self.write_member(model, name, value, out);
        }
        for (name, value) in server {
            key(out, &mut first, name);
            self.write_member(model, name, value, out);
        }
        for m in &self.members {
            // Bodies are small: a scan is cheaper than the map's SipHash.
            let present = |n: &str| obj.keys().any(|k| k == n);
            if server.iter().any(|(n, _)| *n == m.name) || present(&m.name) {
                continue;
            }
            key(out, &mut first, &m.name);
            out.extend_from_slice(m.absent.as_bytes());
        }
        out.push(b'}');
    }

    /// A present member's value, completed.
    fn write_member(&self, model: &Model, name: &str, value: &Value, out: &mut Vec<u8>) {
        match self.members.iter().find(|m| m.name == name).map(|m| &m.nested) {
            Some(Nested::Plan(declared)) => match value {
                Value::Object(obj) => write_complex(model, declared, obj, out),
                Value::Array(items) => {
                    out.push(b'[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        match item {
                            Value::Object(obj) => write_complex(model, declared, obj, out),
                            other => json(out, other),
                        }
                    }
                    out.push(b']');
                }
                other => json(out, other),
            },
            Some(Nested::General { beta, v1 }) => {
                let mut value = value.clone();
                if let Some(p) = beta {
                    complete_member(&model.beta, p, &mut value);
                }
                if let Some(p) = v1 {
                    complete_member(&model.v1, p, &mut value);
                }
                json(out, &value);
            }
            Some(Nested::No) | None => json(out, value),
        }
    }
}

/// The complex type a property is declared as, if it is complex.
fn complex_type(p: &Property) -> Option<&str> {
    match &p.type_ref {
        TypeRef::Complex(t) => Some(t),
        _ => None,
    }
}

/// A complex value declared as `declared`, completed as its runtime type (`@odata.type`).
fn write_complex(model: &Model, declared: &str, obj: &Map<String, Value>, out: &mut Vec<u8>) {
    let actual = match obj.get("@odata.type").and_then(Value::as_str) {
        // Stored bodies carry qualified names (validation writes them so).
        Some(t) if t.starts_with('#') || t.starts_with("graph.") => std::borrow::Cow::Owned(crate::qualify(t)),
        Some(t) => std::borrow::Cow::Borrowed(t),
        None => std::borrow::Cow::Borrowed(declared),
    };
    match model.create_plan(&actual) {
        Some(plan) => plan.write_object(model, obj, &[], out),
        None => {
            // A type beta does not have: the general path's two passes.
            let mut obj = obj.clone();
            model.complete_both(&actual, &mut obj);
            json(out, &Value::Object(obj));
        }
    }
}

fn json(out: &mut Vec<u8>, value: &Value) {
    // A `Value` always serialises.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// `,"name":` (no comma first).
fn key(out: &mut Vec<u8>, first: &mut bool, name: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    // A string always serialises.
    let _ = serde_json::to_writer(&mut *out, name);
    out.push(b':');
}
