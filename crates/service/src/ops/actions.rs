//! Bound actions. What each does is data (`schema/behaviour.json` "actions"); an action
//! the schema has but the behaviour file does not describe answers 501 (design.md rule 2).
//! Success is `200` with no body: the pages say 204, the live service and IntuneCD use
//! 200 (graph-behaviours.md "Status codes"; rulings.md 2).

use enrollgraph_csdl::{Action, ActionKind, validate_action_parameters};
use enrollgraph_store::{ROOT, Tx};
use serde_json::Value;

use super::empty;
use super::write::{create_entity, group_members, now_stamp, priority, priority_group, renumber};
use crate::Response;
use crate::error::{Result, ServiceError};
use crate::resolve::{CollectionRef, EntityRef, Target, View, home_collection};

pub(super) fn invoke(
    view: View<'_>,
    tx: &mut dyn Tx,
    binding: Target,
    action: &Action,
    body: &Value,
) -> Result<Response> {
    let Target::Entity(entity) = binding else {
        return Err(ServiceError::NotImplemented(action.name.clone()));
    };
    let entity = entity.loaded(&*tx)?;
    let lineage = view.lineage(&entity.row.type_name);
    let Some(kind) = view.model.behaviour.action(lineage, &action.name).cloned() else {
        return Err(ServiceError::NotImplemented(format!("{}/{}", action.binding_type, action.name)));
    };
    let params = validate_action_parameters(view.schema, &action.name, &action.parameters, body)?;
    match kind {
        ActionKind::ReplaceContained { navigation, parameter } => {
            replace_contained(view, tx, &entity, &navigation, params.get(&parameter))
        }
        ActionKind::SetPriority { parameter } => set_priority(view, tx, entity, params.get(&parameter)),
        ActionKind::BindDevices { parameter, navigation, set } => {
            bind_devices(view, tx, &entity, &navigation, params.get(&parameter), &set)
        }
        ActionKind::SetProperties => {
            let row = entity.row;
            let mut body = row.body();
            for (k, v) in params {
                if view.schema.find_property(&row.type_name, &k).is_some() {
                    body.insert(k, v);
                }
            }
            tx.update(row.seq, &row.type_name, &super::write::stored_text(&body))?;
            Ok(empty(200))
        }
        ActionKind::ClearProperties { properties } => {
            let row = entity.row;
            let mut body = row.body();
            for p in properties {
                body.insert(p, Value::Null);
            }
            tx.update(row.seq, &row.type_name, &super::write::stored_text(&body))?;
            Ok(empty(200))
        }
    }
}

/// `assign`: the given list becomes the whole set, in one transaction (operations.md).
fn replace_contained(
    view: View<'_>,
    tx: &mut dyn Tx,
    entity: &EntityRef,
    nav: &str,
    items: Option<&Value>,
) -> Result<Response> {
    let items = match items {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(ServiceError::BadRequest(format!("The parameter for '{nav}' must be an array."))),
    };
    let Some(navigation) = view.schema.find_navigation(&entity.row.type_name, nav) else {
        return Err(ServiceError::NotImplemented(format!("assign of {nav}")));
    };
    let coll = CollectionRef {
        parent: entity.row.seq,
        parent_id: Some(entity.row.id.clone()),
        nav: navigation.name.clone(),
        element: navigation.target.clone(),
        cast: None,
        path: format!("{}/{}", entity.path(), navigation.name),
    };
    for old in tx.list(coll.parent, &coll.nav, &Default::default())? {
        tx.delete(old.seq)?;
    }
    for item in &items {
        create_entity(view, tx, &coll, item)?;
    }
    Ok(empty(200))
}

/// `setPriority`: move to `n`, shifting the group so priorities stay unique and
/// contiguous from 1; defaults (priority 0) cannot move (rulings.md 7).
fn set_priority(view: View<'_>, tx: &mut dyn Tx, entity: EntityRef, value: Option<&Value>) -> Result<Response> {
    let wanted = value.and_then(Value::as_i64).unwrap_or(0);
    let row = entity.row;
    let Some(group) = priority_group(view, &row.type_name) else {
        return Err(ServiceError::BadRequest("This entity has no priority.".into()));
    };
    if priority(&row) == 0 {
        return Err(ServiceError::BadRequest(format!(
            "The priority of the default configuration '{}' cannot be changed.",
            row.id
        )));
    }
    if wanted < 1 {
        return Err(ServiceError::BadRequest(format!("Priority {wanted} is out of range; priorities start at 1.")));
    }
    let mut members = group_members(view, tx, row.parent, &row.nav, &group)?;
    let Some(pos) = members.iter().position(|r| r.seq == row.seq) else {
        return Err(ServiceError::Internal("entity missing from its priority group".into()));
    };
    let moving = members.remove(pos);
    let at = usize::try_from(wanted - 1).unwrap_or(usize::MAX).min(members.len());
    members.insert(at, moving);
    renumber(tx, &mut members)?;
    Ok(empty(200))
}

/// Autopilot profile `assign(deviceIds)`: each device's `deploymentProfile` becomes this profile.
fn bind_devices(
    view: View<'_>,
    tx: &mut dyn Tx,
    profile: &EntityRef,
    nav: &str,
    ids: Option<&Value>,
    set: &serde_json::Map<String, Value>,
) -> Result<Response> {
    let ids: Vec<String> = ids
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    // The devices live in the one collection whose type declares the link `nav` to this
    // profile's type (windowsAutopilotDeviceIdentities for deploymentProfile).
    let home = view
        .schema
        .contained_collections()
        .into_iter()
        .find(|(_, n)| {
            view.schema
                .find_navigation(&n.target, nav)
                .is_some_and(|link| view.schema.derives_from(&profile.row.type_name, &link.target))
        })
        .map(|(_, n)| n.target.clone())
        .ok_or_else(|| ServiceError::NotImplemented(format!("no collection links '{nav}'")))
        .and_then(|t| home_collection(view, &t))?;
    let mut devices = Vec::with_capacity(ids.len());
    for id in &ids {
        let Some(device) = tx.get(ROOT, &home.nav, id)? else {
            return Err(ServiceError::ResourceNotFound(format!("The device '{id}' does not exist.")));
        };
        devices.push(device);
    }
    for device in devices {
        tx.set_link(device.seq, nav, Some(profile.row.seq))?;
        let mut body = device.body();
        for (k, v) in set {
            let v = if v == "{now}" { Value::String(now_stamp()) } else { v.clone() };
            body.insert(k.clone(), v);
        }
        tx.update(device.seq, &device.type_name, &super::write::stored_text(&body))?;
    }
    Ok(empty(200))
}
