//! Provisioning a tenant with what a new Intune tenant holds (reference/defaults.md):
//! the five default enrollment configurations, priority 0, each with one all-devices
//! assignment whose id is the configuration's own. Also the test-suite operations on a
//! whole tenant (issue 9): create with apps, delete, reset to the defaults, export a
//! snapshot and restore one, each in one write transaction, built only on the `Tx`
//! primitives (`export`, `drop_tenant`), so every store backend has them.

use std::collections::HashMap;

use enrollgraph_csdl::{WriteMode, validate_entity};
use enrollgraph_store::{ROOT, Row, Seq, StoreExt, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{Result, ServiceError};
use crate::resolve::{View, home_collection};
use crate::{App, Service};

/// `schema/defaults.beta.json`, `{tenantId}` standing for the tenant's id.
pub const DEFAULTS_JSON: &str = include_str!("../../../schema/defaults.beta.json");

pub(crate) async fn provision(service: &Service, tenant: &str) -> Result<bool> {
    create(service, tenant, Vec::new()).await
}

/// Creates `tenant` with its defaults and `apps`, unless it exists (false then).
pub(crate) async fn create(service: &Service, tenant: &str, apps: Vec<App>) -> Result<bool> {
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
            for app in &apps {
                crate::directory::insert_app(tx, app)?;
            }
            Ok(true)
        })
        .await
}

/// The snapshot format's name and version; a restore refuses any other.
pub const SNAPSHOT_FORMAT: &str = "enrollgraph.snapshot/1";

/// A whole tenant as JSON: every row (Graph entities and the tenant's directory: app
/// registrations and users, secrets only as their hashes) in storage order, and every
/// link. Keys are the rows' storage keys at export time; a restore gives rows new keys
/// and maps parents and links onto them, so only ids and order are kept (reads are the
/// same; `$skiptoken` values, which are storage keys, differ).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    /// [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// The tenant it was taken from (informational: a snapshot restores into any tenant).
    pub tenant: String,
    /// Rows, parents before what they contain.
    pub entities: Vec<SnapshotEntity>,
    /// Single-valued links between rows.
    #[serde(default)]
    pub links: Vec<SnapshotLink>,
}

/// One row of a [`Snapshot`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotEntity {
    /// The row's key in the snapshot.
    pub key: Seq,
    /// The containing row's key (0: the tenant's root).
    pub parent: Seq,
    /// The containing navigation.
    pub nav: String,
    /// The Graph id.
    pub id: String,
    /// The qualified type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The stored properties, kept as the exact text stored (so a restore writes the
    /// same bytes back and reads are byte-identical).
    pub body: Box<RawValue>,
}

/// One link of a [`Snapshot`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotLink {
    /// The source row's key.
    pub source: Seq,
    /// The navigation.
    pub nav: String,
    /// The target row's key.
    pub target: Seq,
}

/// A tenant id the admin operations accept: 1 to 100 characters from `A-Z a-z 0-9 . _ -`
/// (it is a path segment of the token endpoint). Ids starting with `$` are the server's
/// own pseudo-tenants (signing keys, admin key) and never a Graph tenant.
///
/// # Errors
/// `BadRequest` naming the id.
pub fn check_tenant_id(tenant: &str) -> Result<()> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 100
        && tenant.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::BadRequest(format!(
            "The tenant id '{tenant}' is not valid: use 1 to 100 characters from A-Z, a-z, 0-9, '.', '_' and '-'."
        )))
    }
}

fn missing(tenant: &str) -> ServiceError {
    ServiceError::ResourceNotFound(format!("The tenant '{tenant}' does not exist."))
}

/// Rows whose navigation starts with `$` (the tenant's directory: apps, users), with
/// whatever they contain: what a reset keeps, so a test's credentials survive it.
fn directory_rows(rows: &[Row]) -> Vec<&Row> {
    let mut kept: Vec<&Row> = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for r in rows {
        if (r.parent == ROOT && r.nav.starts_with('$')) || keys.contains(&r.parent) {
            keys.insert(r.seq);
            kept.push(r);
        }
    }
    kept
}

/// Inserts `rows` (parents first) under new keys; returns old key → new key.
fn reinsert<'a>(tx: &mut dyn Tx, rows: impl Iterator<Item = (&'a Row, &'a str)>) -> Result<HashMap<Seq, Seq>> {
    let mut keys: HashMap<Seq, Seq> = HashMap::new();
    for (row, raw) in rows {
        let parent = if row.parent == ROOT {
            ROOT
        } else {
            *keys.get(&row.parent).ok_or_else(|| {
                ServiceError::BadRequest(format!(
                    "The parent {} of '{}' comes later or is missing.",
                    row.parent, row.id
                ))
            })?
        };
        let seq = tx.insert(parent, &row.nav, &row.id, &row.type_name, raw)?;
        keys.insert(row.seq, seq);
    }
    Ok(keys)
}

impl Service {
    /// Creates `tenant` with its defaults and the given app registrations in one
    /// transaction. Returns false (and changes nothing) when the tenant exists.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn create_tenant(&self, tenant: &str, apps: Vec<App>) -> Result<bool> {
        check_tenant_id(tenant)?;
        create(self, tenant, apps).await
    }

    /// Deletes `tenant`: every entity, link and directory row.
    ///
    /// # Errors
    /// `ResourceNotFound` for an unknown tenant; storage failures.
    pub async fn delete_tenant(&self, tenant: &str) -> Result<()> {
        check_tenant_id(tenant)?;
        let name = tenant.to_owned();
        self.store
            .write(tenant, move |tx: &mut dyn Tx| {
                if !tx.tenant_exists()? {
                    return Err(missing(&name));
                }
                Ok(tx.drop_tenant()?)
            })
            .await
    }

    /// Puts `tenant` back to what a new tenant holds (reference/defaults.md), keeping its
    /// app registrations and users (their ids and secrets).
    ///
    /// # Errors
    /// `ResourceNotFound` for an unknown tenant; storage failures.
    pub async fn reset_tenant(&self, tenant: &str) -> Result<()> {
        check_tenant_id(tenant)?;
        let model = self.model.clone();
        let name = tenant.to_owned();
        self.store
            .write(tenant, move |tx: &mut dyn Tx| {
                if !tx.tenant_exists()? {
                    return Err(missing(&name));
                }
                let (rows, _) = tx.export()?;
                let kept: Vec<Row> = directory_rows(&rows).into_iter().cloned().collect();
                tx.drop_tenant()?;
                tx.create_tenant()?;
                seed(View { model: &model, schema: &model.beta }, tx, &name)?;
                reinsert(tx, kept.iter().map(|r| (r, r.raw.as_str())))?;
                Ok(())
            })
            .await
    }

    /// A snapshot of `tenant`, or `None` when it does not exist.
    ///
    /// # Errors
    /// Storage failures.
    pub fn export_tenant(&self, tenant: &str) -> Result<Option<Snapshot>> {
        check_tenant_id(tenant)?;
        let (exists, rows, links) = self.store.read(tenant, |tx| {
            if !tx.tenant_exists()? {
                return Ok::<_, ServiceError>((false, Vec::new(), Vec::new()));
            }
            let (rows, links) = tx.export()?;
            Ok((true, rows, links))
        })?;
        if !exists {
            return Ok(None);
        }
        let mut entities = Vec::with_capacity(rows.len());
        for r in rows {
            let body = RawValue::from_string(r.raw)
                .map_err(|e| ServiceError::Internal(format!("row {} holds invalid JSON: {e}", r.seq)))?;
            entities.push(SnapshotEntity {
                key: r.seq,
                parent: r.parent,
                nav: r.nav,
                id: r.id,
                type_name: r.type_name,
                body,
            });
        }
        let links = links.into_iter().map(|(source, nav, target)| SnapshotLink { source, nav, target }).collect();
        Ok(Some(Snapshot { format: SNAPSHOT_FORMAT.to_owned(), tenant: tenant.to_owned(), entities, links }))
    }

    /// Replaces everything `tenant` holds with `snapshot` (creating the tenant if needed),
    /// keeping every id, body and the order of rows.
    ///
    /// # Errors
    /// `BadRequest` for a snapshot that is not well formed (nothing changes then);
    /// storage failures.
    pub async fn restore_tenant(&self, tenant: &str, snapshot: Snapshot) -> Result<()> {
        check_tenant_id(tenant)?;
        check_snapshot(&snapshot)?;
        self.store
            .write(tenant, move |tx: &mut dyn Tx| {
                tx.drop_tenant()?;
                tx.create_tenant()?;
                let rows: Vec<Row> = snapshot
                    .entities
                    .iter()
                    .map(|e| Row {
                        seq: e.key,
                        parent: e.parent,
                        nav: e.nav.clone(),
                        id: e.id.clone(),
                        type_name: e.type_name.clone(),
                        raw: String::new(),
                    })
                    .collect();
                let keys = reinsert(tx, rows.iter().zip(snapshot.entities.iter().map(|e| e.body.get()))).map_err(
                    |e| match e {
                        ServiceError::Conflict(m) => {
                            ServiceError::BadRequest(format!("The snapshot repeats an id: {m}"))
                        }
                        other => other,
                    },
                )?;
                for l in &snapshot.links {
                    let (Some(source), Some(target)) = (keys.get(&l.source), keys.get(&l.target)) else {
                        return Err(ServiceError::BadRequest(format!(
                            "The link {} -{}-> {} names a key the snapshot does not hold.",
                            l.source, l.nav, l.target
                        )));
                    };
                    tx.set_link(*source, &l.nav, Some(*target))?;
                }
                Ok(())
            })
            .await
    }
}

/// Structural checks before any write, so a bad snapshot is a 400 and changes nothing.
fn check_snapshot(s: &Snapshot) -> Result<()> {
    let bad = |m: String| Err(ServiceError::BadRequest(m));
    if s.format != SNAPSHOT_FORMAT {
        return bad(format!("The snapshot format '{}' is not '{SNAPSHOT_FORMAT}'.", s.format));
    }
    let mut seen = std::collections::HashSet::new();
    for e in &s.entities {
        if e.key == ROOT || !seen.insert(e.key) {
            return bad(format!("The snapshot key {} is 0 or repeated.", e.key));
        }
        if e.parent != ROOT && !seen.contains(&e.parent) {
            return bad(format!("The parent {} of key {} is not an earlier entity.", e.parent, e.key));
        }
        if e.nav.is_empty() || e.id.is_empty() || e.type_name.is_empty() {
            return bad(format!("The entity with key {} needs a nav, an id and a type.", e.key));
        }
        if !e.body.get().trim_start().starts_with('{') {
            return bad(format!("The body of key {} is not a JSON object.", e.key));
        }
    }
    for l in &s.links {
        if !seen.contains(&l.source) || !seen.contains(&l.target) || l.nav.is_empty() {
            return bad(format!(
                "The link {} -{}-> {} names a key the snapshot does not hold.",
                l.source, l.nav, l.target
            ));
        }
    }
    Ok(())
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
