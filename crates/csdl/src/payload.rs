//! Validating a request body against a type (OData JSON Format §4-§7) and turning it
//! into the stored form: structural properties only, nested `@odata.type` qualified
//! without `#` and kept only where the value's type is not the declared one.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Behaviour, Parameter, Primitive, Schema, TypeKind, TypeRef, qualify};

/// A body the client may not send; the message is Graph's wording where known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError(msg.into()))
}

/// Whether a body creates an entity or updates one (PATCH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// POST to a collection.
    Create,
    /// PATCH of an existing entity of the given type.
    Update,
}

/// A validated entity body.
#[derive(Debug, Clone, Default)]
pub struct Payload {
    /// The entity's type (qualified, no `#`).
    pub type_name: String,
    /// The structural properties the client set, in stored form (computed ones dropped).
    pub body: Map<String, Value>,
    /// `nav@odata.bind` references (OData JSON §8.5), as (navigation, reference).
    pub binds: Vec<(String, String)>,
    /// Inline entities for contained collection navigations (deep insert, OData JSON §8.4).
    pub deep: Vec<(String, Vec<Value>)>,
}

/// Resolves an `@odata.type` annotation: it must name a structured type of the schema
/// that is `declared` or derives from it (rulings.md 3).
fn resolve_type(schema: &Schema, declared: &str, annotation: Option<&Value>) -> Result<String, ValidationError> {
    let Some(v) = annotation else { return Ok(declared.to_owned()) };
    let Some(raw) = v.as_str() else {
        return err("The value of the '@odata.type' annotation must be a string.");
    };
    let name = qualify(raw);
    if schema.structured(&name).is_none() {
        return err(format!("A type named '{name}' could not be resolved by the model."));
    }
    if !schema.derives_from(&name, declared) {
        return err(format!(
            "A resource of type '{name}' was found, but a resource of type '{declared}' or a type derived from it was expected."
        ));
    }
    Ok(name)
}

/// Validates an entity body. `declared` is the type the URL addresses; on update,
/// `existing` is the stored entity's type.
///
/// # Errors
/// Unknown properties, wrong JSON types, bad enum values, an `@odata.type` that is not
/// `declared` or derived from it, an abstract type on create, null for a non-nullable property.
pub fn validate_entity(
    schema: &Schema,
    behaviour: &Behaviour,
    declared: &str,
    existing: Option<&str>,
    json: &Value,
    mode: WriteMode,
) -> Result<Payload, ValidationError> {
    let Some(obj) = json.as_object() else {
        return err("The request body must be a JSON object.");
    };
    let mut type_name = resolve_type(schema, declared, obj.get("@odata.type"))?;
    if let Some(existing) = existing {
        // A PATCH may name the stored type or one of its bases (IntuneCD round-trips
        // whole objects with their @odata.type), never a sibling type.
        if !schema.derives_from(existing, &type_name) {
            return err(format!(
                "A resource of type '{type_name}' was found, but a resource of type '{existing}' was expected."
            ));
        }
        type_name = existing.to_owned();
    }
    let lineage_types = schema.lineage(&type_name);
    if mode == WriteMode::Create && lineage_types.last().is_some_and(|t| t.is_abstract) {
        return err(format!(
            "Cannot create an instance of the abstract type '{type_name}'; specify a derived type in '@odata.type'."
        ));
    }
    let lineage = schema.lineage_names(&type_name);
    let mut payload = Payload { type_name: type_name.clone(), ..Payload::default() };
    for (key, value) in obj {
        if let Some((nav, annotation)) = key.split_once('@') {
            if nav.is_empty() {
                continue; // instance annotations (@odata.context, @odata.etag, ...) are not data
            }
            if annotation == "odata.bind" {
                let Some(n) = schema.find_navigation(&type_name, nav) else {
                    return err(format!("The property '{nav}' does not exist on type '{type_name}'."));
                };
                let Some(reference) = value.as_str() else {
                    return err(format!("The value of '{key}' must be a string URL."));
                };
                payload.binds.push((n.name.clone(), reference.to_owned()));
            }
            continue;
        }
        if let Some(prop) = schema.find_property(&type_name, key) {
            if behaviour.is_computed(lineage, &prop.name) {
                continue; // server-owned: accepted and ignored (rulings.md 3)
            }
            let stored = validate_value(schema, key, &prop.type_ref, prop.collection, prop.nullable, value)?;
            payload.body.insert(prop.name.clone(), stored);
        } else if let Some(nav) = schema.find_navigation(&type_name, key) {
            match (mode, nav.contains_target && nav.collection, value) {
                (WriteMode::Create, true, Value::Array(items)) => payload.deep.push((nav.name.clone(), items.clone())),
                _ => {
                    return err(format!("The navigation property '{key}' cannot be set inline here; use its own URL."));
                }
            }
        } else {
            return err(format!(
                "The property '{key}' does not exist on type '{type_name}'. Make sure to only use property names that are defined by the type or mark the type as open type."
            ));
        }
    }
    Ok(payload)
}

/// Validates the parameters of an action call (OData JSON §18).
///
/// # Errors
/// Unknown parameters, missing non-nullable ones, wrong types.
pub fn validate_action_parameters(
    schema: &Schema,
    action: &str,
    params: &[Parameter],
    json: &Value,
) -> Result<Map<String, Value>, ValidationError> {
    let empty = Map::new();
    let obj = match json {
        Value::Object(o) => o,
        Value::Null => &empty,
        _ => return err("The request body must be a JSON object."),
    };
    let mut out = Map::new();
    for (key, value) in obj {
        if key.starts_with('@') {
            continue;
        }
        let Some(p) = params.iter().find(|p| p.name == *key) else {
            return err(format!(
                "The parameter '{key}' in the request payload is not a valid parameter for the operation '{action}'."
            ));
        };
        let checked = match (&p.type_ref, value) {
            // Entity-typed parameters are validated by the caller against the target
            // collection (as a create would), so here they only need the right shape.
            (TypeRef::Entity(_), Value::Array(_) | Value::Null) if p.collection => value.clone(),
            (TypeRef::Entity(_), Value::Object(_)) if !p.collection => value.clone(),
            _ => validate_value(schema, key, &p.type_ref, p.collection, p.nullable, value)?,
        };
        out.insert(p.name.clone(), checked);
    }
    for p in params {
        if !out.contains_key(&p.name) && !p.nullable {
            return err(format!(
                "The parameter '{}' of the operation '{action}' is required and cannot be null.",
                p.name
            ));
        }
    }
    Ok(out)
}

fn type_label(type_ref: &TypeRef) -> String {
    match type_ref {
        TypeRef::Primitive(p) => format!("Edm.{p:?}"),
        TypeRef::Enum(n) | TypeRef::Complex(n) | TypeRef::Entity(n) => n.clone(),
    }
}

/// Validates one value of a property or parameter and returns its stored form.
fn validate_value(
    schema: &Schema,
    name: &str,
    type_ref: &TypeRef,
    collection: bool,
    nullable: bool,
    value: &Value,
) -> Result<Value, ValidationError> {
    if value.is_null() {
        if nullable || collection {
            return Ok(Value::Null);
        }
        let t = type_label(type_ref);
        return err(format!(
            "A null value was found for the property named '{name}', which has the expected type '{t}[Nullable=False]'. The expected type '{t}[Nullable=False]' does not allow null values."
        ));
    }
    if collection {
        let Value::Array(items) = value else {
            return err(format!(
                "The property '{name}' expects a collection (a JSON array) of '{}'.",
                type_label(type_ref)
            ));
        };
        return items
            .iter()
            .map(|item| {
                if item.is_null() {
                    return err(format!(
                        "A null value was found in the collection '{name}', which does not allow null elements."
                    ));
                }
                validate_value(schema, name, type_ref, false, false, item)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    match type_ref {
        TypeRef::Primitive(p) => validate_primitive(name, *p, value),
        TypeRef::Enum(e) => validate_enum(schema, name, e, value),
        TypeRef::Complex(declared) => validate_complex(schema, name, declared, value),
        TypeRef::Entity(_) => err(format!("The navigation property '{name}' cannot be set inline here.")),
    }
}

fn validate_primitive(name: &str, p: Primitive, value: &Value) -> Result<Value, ValidationError> {
    let bad = || {
        err(format!(
            "Cannot convert the literal '{}' to the expected type 'Edm.{p:?}' of the property '{name}'.",
            value.to_string().trim_matches('"')
        ))
    };
    let ok = match p {
        Primitive::Boolean => value.is_boolean(),
        Primitive::Int32 => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        Primitive::Int64 => value.is_i64() || value.is_u64(),
        Primitive::Double => value.is_number(),
        Primitive::String | Primitive::Date | Primitive::Duration | Primitive::Other => value.is_string(),
        Primitive::Guid => value.as_str().is_some_and(is_guid),
        Primitive::DateTimeOffset => value.as_str().is_some_and(|s| OffsetDateTime::parse(s, &Rfc3339).is_ok()),
    };
    if ok { Ok(value.clone()) } else { bad() }
}

/// `8-4-4-4-12` hexadecimal digits (OData ABNF `guidValue`).
#[must_use]
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn validate_enum(schema: &Schema, name: &str, enum_name: &str, value: &Value) -> Result<Value, ValidationError> {
    let Some(e) = schema.enum_type(enum_name) else {
        return err(format!("Unknown enumeration type '{enum_name}'."));
    };
    let Some(s) = value.as_str() else {
        return err(format!("The property '{name}' expects a string value of the enumeration '{enum_name}'."));
    };
    let ok = if e.is_flags {
        s.split(',').map(str::trim).all(|m| e.members.iter().any(|x| x == m))
    } else {
        e.members.iter().any(|m| m == s)
    };
    if ok {
        Ok(value.clone())
    } else {
        err(format!("Requested value '{s}' was not found in the enumeration '{enum_name}' of the property '{name}'."))
    }
}

fn validate_complex(schema: &Schema, name: &str, declared: &str, value: &Value) -> Result<Value, ValidationError> {
    let Some(obj) = value.as_object() else {
        return err(format!("The property '{name}' expects an object of type '{declared}'."));
    };
    let actual = resolve_type(schema, declared, obj.get("@odata.type"))?;
    if schema.structured(&actual).is_some_and(|t| t.kind != TypeKind::Complex) {
        return err(format!("The type '{actual}' is not a complex type."));
    }
    let mut out = Map::new();
    // The abstract base target is accepted as a value (seeds 001, 002; rulings.md 4).
    if actual != declared {
        out.insert("@odata.type".into(), Value::String(actual.clone()));
    }
    for (key, v) in obj {
        if key.contains('@') {
            continue;
        }
        let Some(prop) = schema.find_property(&actual, key) else {
            return err(format!(
                "The property '{key}' does not exist on type '{actual}'. Make sure to only use property names that are defined by the type or mark the type as open type."
            ));
        };
        out.insert(prop.name.clone(), validate_value(schema, key, &prop.type_ref, prop.collection, prop.nullable, v)?);
    }
    Ok(Value::Object(out))
}

/// The value a property takes when nobody set it: null where nullable, `[]` for
/// collections, and the type's zero value otherwise (graph-behaviours.md: every
/// property is present, absent values are null).
#[must_use]
pub fn default_value(schema: &Schema, type_ref: &TypeRef, collection: bool, nullable: bool) -> Value {
    if collection {
        return Value::Array(Vec::new());
    }
    if nullable {
        return Value::Null;
    }
    match type_ref {
        TypeRef::Primitive(Primitive::Boolean) => Value::Bool(false),
        TypeRef::Primitive(Primitive::Int32 | Primitive::Int64) => Value::from(0),
        TypeRef::Primitive(Primitive::Double) => Value::from(0.0),
        TypeRef::Primitive(Primitive::Guid) => Value::from("00000000-0000-0000-0000-000000000000"),
        TypeRef::Primitive(Primitive::DateTimeOffset) => Value::from("0001-01-01T00:00:00Z"),
        TypeRef::Primitive(_) => Value::from(""),
        TypeRef::Enum(e) => {
            schema.enum_type(e).and_then(|e| e.members.first().cloned()).map_or(Value::Null, Value::String)
        }
        TypeRef::Complex(c) => {
            let mut obj = Map::new();
            complete(schema, c, &mut obj);
            Value::Object(obj)
        }
        TypeRef::Entity(_) => Value::Null,
    }
}

/// Adds every property of `type_name` missing from `body`, recursing into complex
/// values, so that stored entities are whole (and filters see defaults).
pub fn complete(schema: &Schema, type_name: &str, body: &mut Map<String, Value>) {
    for prop in schema.all_properties(type_name) {
        match body.get_mut(&prop.name) {
            None => {
                body.insert(prop.name.clone(), default_value(schema, &prop.type_ref, prop.collection, prop.nullable));
            }
            Some(value) => complete_member(schema, prop, value),
        }
    }
}

/// [`complete`] of a present member's value: a complex value (or each of a collection's)
/// gets every property of its runtime type.
pub(crate) fn complete_member(schema: &Schema, prop: &crate::Property, value: &mut Value) {
    let TypeRef::Complex(declared) = &prop.type_ref else { return };
    match value {
        Value::Object(inner) => {
            let actual = inner.get("@odata.type").and_then(Value::as_str).map_or_else(|| declared.clone(), qualify);
            complete(schema, &actual, inner);
        }
        Value::Array(items) => {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                let actual = item.get("@odata.type").and_then(Value::as_str).map_or_else(|| declared.clone(), qualify);
                complete(schema, &actual, item);
            }
        }
        _ => {}
    }
}

/// Carries over, from `old` into `new`, the members of a complex value that the schema the
/// client wrote through (`write`) does not have but the full schema (`full`) does: a v1.0
/// PATCH of `target` keeps beta's assignment filter (rulings.md 6).
pub fn keep_hidden_members(write: &Schema, full: &Schema, type_ref: &TypeRef, old: &Value, new: &mut Value) {
    let (TypeRef::Complex(declared), Value::Object(old), Value::Object(new)) = (type_ref, old, new) else {
        return;
    };
    let runtime = new.get("@odata.type").and_then(Value::as_str).map_or_else(|| declared.clone(), qualify);
    for (key, old_value) in old {
        let Some(full_prop) = full.find_property(&runtime, key) else { continue };
        match (write.find_property(&runtime, key), new.get_mut(key)) {
            (None, None) => {
                new.insert(key.clone(), old_value.clone());
            }
            (Some(_), Some(new_value)) => keep_hidden_members(write, full, &full_prop.type_ref, old_value, new_value),
            _ => {}
        }
    }
}
