//! Create (POST, 201), update (PATCH, 200 with the entity: seed 004), delete (DELETE, 204),
//! and `$ref` writes, for any entity type of the schema.

use enrollgraph_csdl::{Payload, WriteMode, keep_hidden_members, validate_entity};
use enrollgraph_store::{ListSpec, Row, Tx};
use serde_json::{Map, Value};

use super::{WriteCtx, context_url, empty};
use crate::error::{Result, ServiceError};
use crate::resolve::{CollectionRef, EntityRef, Target, View, home_collection, resolve_reference};
use crate::{Body, Method, Response};

/// The stored text of an entity: `serde_json::to_string`, not `Value`'s `Display`, which
/// writes through the formatting machinery (7.8 k instructions for an assignment against
/// about 2 k; callgrind, issue 17's W1). A map of JSON values always serialises.
pub(crate) fn stored_text(body: &Map<String, Value>) -> String {
    serde_json::to_string(body).unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS.fffffffZ`, the precision Graph writes timestamps in.
pub(crate) fn now_stamp() -> String {
    stamp(time::OffsetDateTime::now_utc())
}

/// [`now_stamp`]'s form of `t`, written digit by digit: `time`'s formatter, driven by a
/// format description, cost 2 k instructions per create (callgrind, issue 17's W1).
fn stamp(t: time::OffsetDateTime) -> String {
    fn digits(out: &mut String, n: u32, width: u32) {
        for place in (0..width).rev() {
            let d = (n / 10u32.pow(place)) % 10;
            out.push(char::from(b'0' + u8::try_from(d).unwrap_or(0)));
        }
    }
    let mut out = String::with_capacity(28);
    // Years past 9999 are not Graph's (DateTimeOffset is four digits); clamp, do not widen.
    digits(&mut out, u32::try_from(t.year().clamp(0, 9999)).unwrap_or(0), 4);
    out.push('-');
    digits(&mut out, u32::from(u8::from(t.month())), 2);
    out.push('-');
    digits(&mut out, u32::from(t.day()), 2);
    out.push('T');
    digits(&mut out, u32::from(t.hour()), 2);
    out.push(':');
    digits(&mut out, u32::from(t.minute()), 2);
    out.push(':');
    digits(&mut out, u32::from(t.second()), 2);
    out.push('.');
    digits(&mut out, t.nanosecond() / 100, 7);
    out.push('Z');
    out
}

/// Fills what the server owns on a new or changed entity: fixed values, `fill`
/// templates, stamps, and every property either version declares (stored whole).
fn server_fields(
    view: View<'_>,
    type_name: &str,
    body: &mut Map<String, Value>,
    parent_id: Option<&str>,
    created: bool,
    now: &str,
) {
    let lineage = view.lineage(type_name);
    let behaviour = view.model.behaviour.for_type(lineage);
    for (k, v) in &behaviour.fixed {
        body.insert(k.clone(), v.clone());
    }
    for (k, v) in &behaviour.fill {
        if body.get(k).is_none_or(Value::is_null) {
            let filled = match (v.as_str(), parent_id) {
                (Some("{parentId}"), Some(p)) => Value::String(p.to_owned()),
                _ => v.clone(),
            };
            body.insert(k.clone(), filled);
        }
    }
    let stamps = &view.model.behaviour.stamps;
    let now = Value::String(now.to_owned());
    let has = |p: &str| view.model.beta.find_property(type_name, p).is_some();
    if has(&stamps.modified) {
        body.insert(stamps.modified.clone(), now.clone());
    }
    if created && has(&stamps.created) {
        body.insert(stamps.created.clone(), now);
    }
    if has(&stamps.version) {
        let next = if created { 0 } else { body.get(&stamps.version).and_then(Value::as_i64).unwrap_or(0) + 1 };
        body.insert(stamps.version.clone(), Value::from(next));
    }
    view.model.complete_both(type_name, body);
}

/// Keeps each renamed property's two names in step (behaviour.json `types` `renamed`): the
/// name the client wrote (the current one when it wrote both) is copied to the other; on
/// create, when it wrote neither, the current name takes the legacy one's default.
fn keep_renamed_in_step(
    view: View<'_>,
    type_name: &str,
    sent: &[String],
    body: &mut Map<String, Value>,
    created: bool,
) {
    let behaviour = view.model.behaviour.for_type(view.lineage(type_name));
    for pair in &behaviour.renamed {
        let wrote = |name: &str| sent.iter().any(|s| s == name);
        let (from, to, to_current) = if wrote(&pair.current) {
            (&pair.current, &pair.legacy, false)
        } else if wrote(&pair.legacy) || created {
            (&pair.legacy, &pair.current, true)
        } else {
            continue;
        };
        let value = match body.get(from) {
            Some(Value::Object(obj)) if !pair.members.is_empty() => {
                let rename = |k: &str| {
                    if to_current {
                        pair.members.get(k).cloned()
                    } else {
                        pair.members.iter().find(|(_, c)| c.as_str() == k).map(|(l, _)| l.clone())
                    }
                };
                // The other complex type: its own members, no `@odata.type` of the first.
                Value::Object(obj.iter().filter_map(|(k, v)| rename(k).map(|n| (n, v.clone()))).collect())
            }
            Some(v) => v.clone(),
            None => continue,
        };
        body.insert(to.clone(), value);
    }
}

/// behaviour.json `uniqueTarget`: refuses an item whose target type another parent among
/// the collection's parent's siblings already holds (one Autopilot profile assigned to All
/// Devices, graph-behaviours.md "Shapes").
fn refuse_second_unique_target(
    view: View<'_>,
    tx: &dyn Tx,
    coll: &CollectionRef,
    type_name: &str,
    body: &Map<String, Value>,
) -> Result<()> {
    let Some(unique) = view.model.behaviour.for_type(view.lineage(type_name)).unique_target.clone() else {
        return Ok(());
    };
    let target_type = |b: &Map<String, Value>| {
        b.get("target").and_then(|t| t.get("@odata.type")).and_then(Value::as_str).map(enrollgraph_csdl::qualify)
    };
    if target_type(body).as_deref() != Some(unique.type_name.as_str()) {
        return Ok(());
    }
    let Some(parent) = tx.get_seq(coll.parent)? else { return Ok(()) };
    for sibling in tx.list(parent.parent, &parent.nav, &ListSpec::default())? {
        if sibling.seq == parent.seq {
            continue;
        }
        let holds = tx
            .list(sibling.seq, &coll.nav, &ListSpec::default())?
            .iter()
            .any(|r| target_type(&r.body()).as_deref() == Some(unique.type_name.as_str()));
        if holds {
            return Err(ServiceError::BadRequest(unique.message.replace("{otherParentId}", &sibling.id)));
        }
    }
    Ok(())
}

/// A server-made id: `<guid>_<suffix>`, a template, or a GUID (graph-behaviours.md "Ids").
fn new_id(view: View<'_>, type_name: &str, body: &Map<String, Value>, parent_id: Option<&str>) -> String {
    let guid = uuid::Uuid::new_v4().to_string();
    let behaviour = view.model.behaviour.for_type(view.lineage(type_name));
    if let Some(suffix) = &behaviour.id_suffix {
        return format!("{guid}_{suffix}");
    }
    if let Some(template) = &behaviour.id_template {
        let target = body.get("target").and_then(Value::as_object);
        let group = target
            .and_then(|t| t.get("groupId").and_then(Value::as_str).map(str::to_owned))
            .or_else(|| {
                let t = target?.get("@odata.type")?.as_str()?;
                view.model.behaviour.virtual_group(&enrollgraph_csdl::qualify(t)).map(str::to_owned)
            })
            .unwrap_or_else(|| guid.clone());
        return template.replace("{parentId}", parent_id.unwrap_or_default()).replace("{targetGroupId}", &group);
    }
    guid
}

/// The priority group of a stored row, if its type keeps priorities.
pub(crate) fn priority_group(view: View<'_>, type_name: &str) -> Option<String> {
    view.model.behaviour.for_type(view.lineage(type_name)).priority_group.clone()
}

/// The rows of `coll` in the same priority group as `group`, by priority (defaults excluded).
pub(crate) fn group_members(view: View<'_>, tx: &dyn Tx, parent: i64, nav: &str, group: &str) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = tx
        .list(parent, nav, &ListSpec::default())?
        .into_iter()
        .filter(|r| priority_group(view, &r.type_name).as_deref() == Some(group) && priority(r) > 0)
        .collect();
    rows.sort_by_key(|r| (priority(r), r.seq));
    Ok(rows)
}

pub(crate) fn priority(row: &Row) -> i64 {
    row.body().get("priority").and_then(Value::as_i64).unwrap_or(0)
}

/// Renumbers `rows` 1..n in their order, writing only the rows that changed.
pub(crate) fn renumber(tx: &mut dyn Tx, rows: &mut [Row]) -> Result<()> {
    for (i, row) in rows.iter_mut().enumerate() {
        let want = i64::try_from(i + 1).unwrap_or(i64::MAX);
        let mut body = row.body();
        if body.get("priority").and_then(Value::as_i64) != Some(want) {
            body.insert("priority".into(), Value::from(want));
            row.raw = stored_text(&body);
            tx.update(row.seq, &row.type_name, &row.raw)?;
        }
    }
    Ok(())
}

/// Validates a new entity for `coll` (done before the write transaction where possible, so
/// that the single writer thread only writes: bench W1).
pub(crate) fn validate_new(view: View<'_>, coll: &CollectionRef, json: &Value) -> Result<Payload> {
    validate_as(view, coll.effective_type(), json)
}

/// Validates a new entity of the collection element type `element`.
pub(crate) fn validate_as(view: View<'_>, element: &str, json: &Value) -> Result<Payload> {
    Ok(validate_entity(view.schema, &view.model.behaviour, element, None, json, WriteMode::Create)?)
}

/// Creates one entity from its JSON (and any deep-inserted children) in `coll`.
pub(crate) fn create_entity(view: View<'_>, tx: &mut dyn Tx, coll: &CollectionRef, json: &Value) -> Result<EntityRef> {
    let payload = validate_new(view, coll, json)?;
    create_validated(view, tx, coll, payload)
}

/// A create whose stored form needs nothing from the transaction, made on the worker
/// before the write is queued: the single writer thread then only inserts it (bench W1 at
/// c=32: the writer's work per create was most of what could not overlap the fsync;
/// issue 17, docs/performance.md).
pub(crate) struct Filled {
    id: String,
    type_name: String,
    raw: String,
}

/// The stored form of `payload`, when nothing in it depends on the transaction; otherwise
/// the payload as it came, for [`create_validated`] to do inside it. A type with a priority group
/// (the next priority), a unique target (its siblings), `{parentId}` in its id or fills
/// (the parent's stored id), binds or deep inserts needs the transaction.
pub(super) fn prefill(view: View<'_>, payload: Payload) -> super::Prepared {
    let behaviour = view.model.behaviour.for_type(view.lineage(&payload.type_name));
    let parent_id_used = behaviour.id_template.as_deref().is_some_and(|t| t.contains("{parentId}"))
        || behaviour.fill.values().any(|v| v.as_str().is_some_and(|t| t.contains("{parentId}")));
    if parent_id_used
        || behaviour.priority_group.is_some()
        || behaviour.unique_target.is_some()
        || !payload.binds.is_empty()
        || !payload.deep.is_empty()
    {
        return super::Prepared::Payload(payload);
    }
    let Payload { type_name, body, .. } = payload;
    let id = new_id(view, &type_name, &body, None);
    let raw = filled_text(view, &type_name, body, &id, &now_stamp());
    super::Prepared::Filled(Filled { id, type_name, raw })
}

/// The stored text of a new entity made outside the transaction: by the type's create plan
/// (one pass, no map inserts: `csdl::CreatePlan`), or, for a type with renamed properties,
/// by the general path.
fn filled_text(view: View<'_>, type_name: &str, body: Map<String, Value>, id: &str, now: &str) -> String {
    match view.model.create_plan(type_name) {
        Some(plan) if plan.behaviour().renamed.is_empty() => plan.stored_text(view.model, &body, id, now),
        _ => stored_text(&filled_general(view, type_name, body, id, None, now)),
    }
}

/// A new entity's body, filled by the general path: the id, the server's values, every
/// absent property and renamed pairs kept in step (the plan's reference, and the path of
/// creates made inside the transaction).
fn filled_general(
    view: View<'_>,
    type_name: &str,
    mut body: Map<String, Value>,
    id: &str,
    parent_id: Option<&str>,
    now: &str,
) -> Map<String, Value> {
    let sent: Vec<String> = body.keys().cloned().collect();
    body.insert("id".into(), Value::String(id.to_owned()));
    server_fields(view, type_name, &mut body, parent_id, true, now);
    keep_renamed_in_step(view, type_name, &sent, &mut body, true);
    body
}

/// Inserts a [`Filled`] create into `coll`.
pub(super) fn create_filled(coll: &CollectionRef, tx: &mut dyn Tx, filled: Filled, ctx: &WriteCtx) -> Result<Written> {
    let Filled { id, type_name, raw } = filled;
    let seq = tx.insert(coll.parent, &coll.nav, &id, &type_name, &raw)?;
    let row = Row { seq, parent: coll.parent, nav: coll.nav.clone(), id, type_name, raw };
    let entity = EntityRef { row, declared: coll.element.clone(), collection_path: coll.path.clone() };
    let location = format!("{}/{}/{}", ctx.base_url, ctx.version.as_str(), entity.path());
    Ok(Written::Entity { status: 201, entity, location: Some(location) })
}

/// Creates one entity from a validated payload.
pub(crate) fn create_validated(
    view: View<'_>,
    tx: &mut dyn Tx,
    coll: &CollectionRef,
    payload: Payload,
) -> Result<EntityRef> {
    let parent_id = coll.parent_id.clone();
    let type_name = payload.type_name.clone();
    refuse_second_unique_target(view, tx, coll, &type_name, &payload.body)?;
    let id = new_id(view, &type_name, &payload.body, parent_id.as_deref());
    let mut body = filled_general(view, &type_name, payload.body, &id, parent_id.as_deref(), &now_stamp());
    if let Some(group) = priority_group(view, &type_name) {
        // The next free priority within the group (rulings.md 7).
        let next = group_members(view, tx, coll.parent, &coll.nav, &group)?.last().map_or(1, |r| priority(r) + 1);
        body.insert("priority".into(), Value::from(next));
    }
    let raw = stored_text(&body);
    let seq = tx.insert(coll.parent, &coll.nav, &id, &type_name, &raw)?;
    let row = Row { seq, parent: coll.parent, nav: coll.nav.clone(), id, type_name, raw };
    let entity = EntityRef { row, declared: coll.element.clone(), collection_path: coll.path.clone() };
    for (nav, reference) in &payload.binds {
        bind(view, tx, &entity, nav, reference)?;
    }
    for (nav, children) in &payload.deep {
        let child_coll = CollectionRef {
            parent: seq,
            parent_id: Some(entity.row.id.clone()),
            nav: nav.clone(),
            element: view
                .schema
                .find_navigation(&entity.row.type_name, nav)
                .map(|n| n.target.clone())
                .unwrap_or_default(),
            cast: None,
            path: format!("{}/{nav}", entity.path()),
        };
        for child in children {
            create_entity(view, tx, &child_coll, child)?;
        }
    }
    Ok(entity)
}

/// Points the single-valued link `nav` of `source` at the entity `reference` names.
fn bind(view: View<'_>, tx: &mut dyn Tx, source: &EntityRef, nav: &str, reference: &str) -> Result<()> {
    let Some(n) = view.schema.find_navigation(&source.row.type_name, nav).cloned() else {
        return Err(ServiceError::BadRequest(format!("The navigation property '{nav}' does not exist.")));
    };
    if n.collection || n.contains_target {
        return Err(ServiceError::BadRequest(format!("The navigation property '{nav}' cannot be bound by reference.")));
    }
    let target = resolve_reference(view, &*tx, reference)?;
    if !view.schema.derives_from(&target.row.type_name, &n.target) {
        return Err(ServiceError::BadRequest(format!(
            "The entity '{reference}' is not a '{}' and cannot be bound to '{nav}'.",
            n.target
        )));
    }
    tx.set_link(source.row.seq, &n.name, Some(target.row.seq))?;
    Ok(())
}

pub(super) fn create(
    view: View<'_>,
    tx: &mut dyn Tx,
    coll: &CollectionRef,
    payload: Payload,
    ctx: &WriteCtx,
) -> Result<Written> {
    let entity = create_validated(view, tx, coll, payload)?;
    let location = format!("{}/{}/{}", ctx.base_url, ctx.version.as_str(), entity.path());
    Ok(Written::Entity { status: 201, entity, location: Some(location) })
}

/// What a write produced; the wire form of an entity is written after the transaction,
/// off the writer thread.
pub(super) enum Written {
    /// An entity to answer with.
    Entity {
        /// 201 or 200.
        status: u16,
        /// The entity as stored.
        entity: EntityRef,
        /// `Location`.
        location: Option<String>,
    },
    /// A complete response (empty bodies).
    Response(Response),
}

/// The wire form of an entity with its `@odata.context` (`.../{collection}/$entity`).
pub(super) fn entity_response(
    view: View<'_>,
    status: u16,
    entity: &EntityRef,
    location: Option<String>,
    ctx: &WriteCtx,
) -> Result<Response> {
    let context = context_url(&ctx.base_url, ctx.version, &format!("{}/$entity", entity.collection_path));
    let mut out = String::with_capacity(1024);
    out.push_str("{\"@odata.context\":");
    super::read::push_str(&mut out, &context);
    out.push(',');
    if !enrollgraph_csdl::write_entity_members(
        view.schema,
        &entity.row.type_name,
        &entity.row.raw,
        &Default::default(),
        None,
        &mut out,
    ) {
        return Err(ServiceError::Internal(format!("type {} missing from the schema", entity.row.type_name)));
    }
    out.push('}');
    Ok(Response { status, body: Body::Raw(out), location })
}

/// Validates a PATCH body for `entity` (before the write transaction).
pub(crate) fn validate_update(view: View<'_>, entity: &EntityRef, json: &Value) -> Result<Payload> {
    let payload = validate_entity(
        view.schema,
        &view.model.behaviour,
        &entity.declared,
        Some(&entity.row.type_name),
        json,
        WriteMode::Update,
    )?;
    if !payload.deep.is_empty() {
        return Err(ServiceError::BadRequest("Navigation properties cannot be updated inline.".into()));
    }
    Ok(payload)
}

pub(super) fn update(view: View<'_>, tx: &mut dyn Tx, mut entity: EntityRef, payload: Payload) -> Result<Written> {
    let row = &mut entity.row;
    let mut body = row.body();
    let sent: Vec<String> = payload.body.keys().cloned().collect();
    // Top-level properties replace (complex values whole); beta-only properties not in a
    // v1.0 body stay as they were (rulings.md 6).
    for (key, mut value) in payload.body {
        if let (Some(prop), Some(old)) = (view.model.beta.find_property(&row.type_name, &key), body.get(&key)) {
            keep_hidden_members(view.schema, &view.model.beta, &prop.type_ref, old, &mut value);
        }
        body.insert(key, value);
    }
    let parent_id = tx.get_seq(row.parent)?.map(|r| r.id);
    server_fields(view, &row.type_name.clone(), &mut body, parent_id.as_deref(), false, &now_stamp());
    keep_renamed_in_step(view, &row.type_name.clone(), &sent, &mut body, false);
    row.raw = stored_text(&body);
    tx.update(row.seq, &row.type_name, &row.raw)?;
    for (nav, reference) in &payload.binds {
        bind(view, tx, &entity, nav, reference)?;
    }
    Ok(Written::Entity { status: 200, entity, location: None })
}

/// DELETE on a clearable collection (behaviour.json `clearableCollections`): every item
/// goes; 200 with an empty body, as the client that sends it expects.
pub(super) fn clear(tx: &mut dyn Tx, coll: &CollectionRef) -> Result<Response> {
    for row in tx.list(coll.parent, &coll.nav, &ListSpec::default())? {
        tx.delete(row.seq)?;
    }
    Ok(empty(200))
}

pub(super) fn delete(view: View<'_>, tx: &mut dyn Tx, entity: &EntityRef) -> Result<Response> {
    let row = &entity.row;
    if let Some(group) = priority_group(view, &row.type_name) {
        if priority(row) == 0 {
            // Tenant defaults cannot be deleted (defaults.md: Microsoft365DSC refuses; 400 BadRequest).
            return Err(ServiceError::BadRequest(format!("The default configuration '{}' cannot be deleted.", row.id)));
        }
        tx.delete(row.seq)?;
        let mut rest = group_members(view, tx, row.parent, &row.nav, &group)?;
        renumber(tx, &mut rest)?;
    } else {
        tx.delete(row.seq)?;
    }
    Ok(empty(204))
}

/// `PUT .../{nav}/$ref`, `DELETE .../{nav}/$ref`, `POST .../{reverse}/$ref` (rulings.md 5).
pub(super) fn set_ref(
    view: View<'_>,
    tx: &mut dyn Tx,
    method: &Method,
    target: Target,
    json: &Value,
) -> Result<Response> {
    let reference = || {
        json.get("@odata.id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ServiceError::BadRequest("The request body must carry '@odata.id'.".into()))
    };
    match (method, target) {
        (Method::Put, Target::SingleNav { source, nav, .. }) => {
            bind(view, tx, &source, &nav.name, &reference()?)?;
            Ok(empty(204))
        }
        (Method::Delete, Target::SingleNav { source, nav, .. }) => {
            tx.set_link(source.row.seq, &nav.name, None)?;
            Ok(empty(204))
        }
        (Method::Post, Target::Reverse { target, link, element, .. }) => {
            let source = resolve_reference(view, &*tx, &reference()?)?;
            let home = home_collection(view, &element)?;
            if !view.schema.derives_from(&source.row.type_name, &element) || source.collection_path != home.path {
                return Err(ServiceError::BadRequest(format!("The reference does not address a '{element}'.")));
            }
            tx.set_link(source.row.seq, &link, Some(target.row.seq))?;
            Ok(empty(204))
        }
        (m, t) => Err(super::method_not_allowed(m, &Target::Ref(Box::new(t)))),
    }
}

#[cfg(test)]
mod stamp_tests {
    #[test]
    fn stamps_are_what_the_time_crate_writes() {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z");
        let mut t = time::OffsetDateTime::UNIX_EPOCH;
        for step in 0..2_000i64 {
            // Steps that visit every field's carries, leap days and sub-second digits.
            t += time::Duration::nanoseconds(step * 987_654_321_987 + 123);
            assert_eq!(super::stamp(t), t.format(format).unwrap_or_default(), "{t}");
        }
    }
}

/// The create plan (`csdl::CreatePlan`) against the general path it replaces on the
/// worker: the same stored entity for every entity type of the schema, on bodies that leave
/// members out, send every member, null the filled ones and nest partial complex values.
#[cfg(test)]
mod plan_tests {
    use enrollgraph_csdl::{Model, WriteMode, validate_entity};
    use serde_json::{Map, Value, json};

    use super::{filled_general, stored_text};
    use crate::resolve::View;

    /// The members of a JSON object, counted as written (a duplicate counts twice).
    fn member_count(text: &str) -> usize {
        struct Count(usize);
        impl<'de> serde::Deserialize<'de> for Count {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Count;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
                        let mut n = 0;
                        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {
                            n += 1;
                        }
                        Ok(Count(n))
                    }
                }
                d.deserialize_map(V)
            }
        }
        serde_json::from_str::<Count>(text).map(|c| c.0).unwrap_or(usize::MAX)
    }

    fn general(view: View<'_>, type_name: &str, body: Map<String, Value>, id: &str, now: &str) -> Value {
        Value::Object(filled_general(view, type_name, body, id, None, now))
    }

    fn bodies(model: &Model, type_name: &str) -> Vec<Map<String, Value>> {
        let mut whole = Map::new();
        model.complete_both(type_name, &mut whole);
        let mut partial = whole.clone();
        for value in partial.values_mut() {
            if let Value::Object(inner) = value {
                // Keep one member: completion must add the others.
                let first = inner.iter().next().map(|(k, v)| (k.clone(), v.clone()));
                *inner = first.into_iter().collect();
            }
        }
        let behaviour = model.behaviour.for_type(model.beta.lineage_names(type_name));
        for k in behaviour.fill.keys() {
            partial.insert(k.clone(), Value::Null);
        }
        // Every complex member present but empty (complex defaults are mostly null).
        let nested: Map<String, Value> = model
            .beta
            .all_properties(type_name)
            .iter()
            .filter(|p| matches!(p.type_ref, enrollgraph_csdl::TypeRef::Complex(_)))
            .map(|p| (p.name.clone(), if p.collection { json!([{}]) } else { json!({}) }))
            .collect();
        let mut out = vec![Map::new(), whole, partial, nested];
        if let Some(first) = model.beta.all_properties(type_name).first() {
            // One member only.
            out.push(std::iter::once((first.name.clone(), Value::Null)).collect());
        }
        out
    }

    #[test]
    fn a_plan_stores_what_the_general_path_stores_for_every_type() {
        let model = Model::load().expect("the schema loads");
        let view = View { model: &model, schema: &model.beta };
        let (id, now) = ("00000000-0000-4000-8000-0000000000aa", "2026-12-06T01:02:03.4567890Z");
        let (mut checked, mut types) = (0, 0);
        for type_name in model.beta.self_and_derived("microsoft.graph.entity") {
            let Some(plan) = model.create_plan(&type_name) else { continue };
            if !plan.behaviour().renamed.is_empty() {
                continue; // made by the general path (`filled_text`)
            }
            types += 1;
            for body in bodies(&model, &type_name) {
                let text = plan.stored_text(&model, &body, id, now);
                let stored: Value = serde_json::from_str(&text).expect("the plan writes JSON");
                let want = general(view, &type_name, body.clone(), id, now);
                assert_eq!(stored, want, "{type_name}, body {}", Value::Object(body));
                assert_eq!(member_count(&text), want.as_object().map_or(0, Map::len), "{type_name}: {text}");
                checked += 1;
            }
        }
        // The schema's entity types (the trimmed CSDL has about twenty), each with its bodies.
        assert!(types >= 20 && checked >= 3 * types, "only {checked} bodies of {types} types checked");
    }

    /// W1's body and the other targets an assignment takes, through validation as served.
    #[test]
    fn a_plan_stores_validated_assignments_as_the_general_path_does() {
        let model = Model::load().expect("the schema loads");
        let view = View { model: &model, schema: &model.beta };
        let (id, now) = ("00000000-0000-4000-8000-0000000000bb", "2026-12-06T01:02:03.4567890Z");
        let group = "0f0f0f0f-5e1e-4c71-8e00-00000000f117";
        let targets = [
            json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group}),
            json!({"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": group,
                   "deviceAndAppManagementAssignmentFilterType": "include"}),
            json!({"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}),
            json!({"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}),
            json!({}),
        ];
        for element in
            ["microsoft.graph.enrollmentConfigurationAssignment", "microsoft.graph.appleEnrollmentProfileAssignment"]
        {
            for target in &targets {
                for schema in [&model.beta, &model.v1] {
                    let Ok(payload) = validate_entity(
                        schema,
                        &model.behaviour,
                        element,
                        None,
                        &json!({"target": target}),
                        WriteMode::Create,
                    ) else {
                        continue; // not a type of that version
                    };
                    let plan = model.create_plan(&payload.type_name).expect("a plan");
                    let text = plan.stored_text(&model, &payload.body, id, now);
                    let stored: Value = serde_json::from_str(&text).expect("JSON");
                    let want = general(view, &payload.type_name, payload.body.clone(), id, now);
                    assert_eq!(stored, want, "{element} {target}");
                    assert_eq!(stored["target"]["groupId"].as_str().is_some(), target.get("groupId").is_some());
                    let general_text = stored_text(want.as_object().expect("an object"));
                    assert_eq!(member_count(&text), member_count(&general_text), "{text}");
                }
            }
        }
    }
}
