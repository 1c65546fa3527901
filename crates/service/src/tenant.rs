//! Provisioning a tenant with what a new Intune tenant holds (reference/defaults.md):
//! the five default enrollment configurations, priority 0, each with one all-devices
//! assignment whose id is the configuration's own.

use enrollgraph_csdl::{WriteMode, validate_entity};
use enrollgraph_store::{ROOT, StoreExt, Tx};
use serde_json::Value;

use crate::Service;
use crate::error::{Result, ServiceError};
use crate::resolve::{View, home_collection};

/// `schema/defaults.beta.json`, `{tenantId}` standing for the tenant's id.
pub const DEFAULTS_JSON: &str = include_str!("../../../schema/defaults.beta.json");

pub(crate) async fn provision(service: &Service, tenant: &str) -> Result<bool> {
    let model = service.model.clone();
    let tenant_id = tenant.to_owned();
    service
        .store
        .write(tenant, move |tx: &mut dyn Tx| {
            if tx.tenant_exists()? {
                return Ok(false);
            }
            tx.create_tenant()?;
            let view = View { model: &model, schema: &model.beta };
            seed(view, tx, &tenant_id)?;
            Ok(true)
        })
        .await
}

/// Inserts the defaults exactly as the reference shows them (ids, priorities, dates).
fn seed(view: View<'_>, tx: &mut dyn Tx, tenant: &str) -> Result<()> {
    let text = DEFAULTS_JSON.replace("{tenantId}", tenant);
    let defaults: Value = serde_json::from_str(&text).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let empty = Vec::new();
    let configs = defaults.get("deviceEnrollmentConfigurations").and_then(Value::as_array).unwrap_or(&empty);
    for config in configs {
        let Some(type_name) = config.get("@odata.type").and_then(Value::as_str) else { continue };
        let home = home_collection(view, &enrollgraph_csdl::qualify(type_name))?;
        let seq = import(view, tx, ROOT, &home.nav, &home.element, config)?;
        let id = config.get("id").and_then(Value::as_str).unwrap_or_default();
        let assignments = defaults.pointer(&format!("/assignments/{}", id.replace('~', "~0").replace('/', "~1")));
        let parent_type = enrollgraph_csdl::qualify(type_name);
        for a in assignments.and_then(Value::as_array).unwrap_or(&empty) {
            let Some(nav) = view.schema.find_navigation(&parent_type, "assignments") else { continue };
            import(view, tx, seq, &nav.name.clone(), &nav.target.clone(), a)?;
        }
    }
    Ok(())
}

/// Stores a wire-form entity keeping its server-owned values (id, dates, priority).
fn import(view: View<'_>, tx: &mut dyn Tx, parent: i64, nav: &str, declared: &str, wire: &Value) -> Result<i64> {
    let payload = validate_entity(view.schema, &view.model.behaviour, declared, None, wire, WriteMode::Create)?;
    let mut body = payload.body;
    if let Some(obj) = wire.as_object() {
        for (k, v) in obj.iter().filter(|(k, _)| !k.starts_with('@')) {
            body.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    enrollgraph_csdl::complete(&view.model.beta, &payload.type_name, &mut body);
    enrollgraph_csdl::complete(&view.model.v1, &payload.type_name, &mut body);
    let id = body.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(tx.insert(parent, nav, &id, &payload.type_name, &Value::Object(body).to_string())?)
}
