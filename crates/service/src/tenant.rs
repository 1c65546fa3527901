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
    let tenant = &canonical_tenant_id(tenant)?;
    let created = create(service, tenant, Vec::new()).await?;
    if created {
        service.add_default_domain(tenant).await;
    }
    Ok(created)
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
            crate::directory::new_incarnation(tx)?;
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

/// Names Entra gives meanings of its own in the tenant segment of its endpoints
/// ("Microsoft identity platform and OAuth 2.0 authorization code flow", `tenant`:
/// `common`, `organizations`, `consumers`): never the id of a tenant.
const RESERVED_TENANT_NAMES: [&str; 3] = ["common", "organizations", "consumers"];

/// The canonical form of a tenant id: a GUID or a domain name, as Entra's tenant ids and
/// verified domains are, in lower case (both are case-insensitive, so `Contoso.COM` and
/// `contoso.com` are one tenant). A domain name is dot-separated labels of 1 to 63
/// characters from `a-z 0-9 -`, not starting or ending with `-` (RFC 1035 §2.3.1, RFC 1123
/// §2.1), 253 characters at most; a single label (`contoso-test`) is accepted, as tests
/// name tenants so. Never `.`, `..` or an empty label (the id is a path segment of the
/// token endpoint), never `common`, `organizations` or `consumers`, never the server's `$`
/// pseudo-tenants.
///
/// # Errors
/// `BadRequest` naming the id.
pub fn canonical_tenant_id(tenant: &str) -> Result<String> {
    let lower = tenant.to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let guid = lower.len() == 36 && uuid::Uuid::try_parse(&lower).is_ok();
    let domain = lower.len() <= 253 && lower.split('.').all(label_ok);
    if (guid || domain) && !RESERVED_TENANT_NAMES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(ServiceError::BadRequest(format!(
            "The tenant id '{tenant}' is not valid: use a GUID or a domain name (labels of A-Z, a-z, 0-9 and '-', \
             separated by '.'), not 'common', 'organizations' or 'consumers'."
        )))
    }
}

/// Checks a tenant id; see [`canonical_tenant_id`].
///
/// # Errors
/// `BadRequest` naming the id.
pub fn check_tenant_id(tenant: &str) -> Result<()> {
    canonical_tenant_id(tenant).map(drop)
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
        let tenant = &canonical_tenant_id(tenant)?;
        let created = create(self, tenant, apps).await?;
        if created {
            self.add_default_domain(tenant).await;
        }
        Ok(created)
    }

    /// Deletes `tenant`: every entity, link and directory row.
    ///
    /// # Errors
    /// `ResourceNotFound` for an unknown tenant; storage failures.
    pub async fn delete_tenant(&self, tenant: &str) -> Result<()> {
        let tenant = &canonical_tenant_id(tenant)?;
        let name = tenant.to_owned();
        self.store
            .write(tenant, move |tx: &mut dyn Tx| {
                if !tx.tenant_exists()? {
                    return Err(missing(&name));
                }
                Ok(tx.drop_tenant()?)
            })
            .await?;
        self.drop_domains(tenant).await
    }

    /// Puts `tenant` back to what a new tenant holds (reference/defaults.md), keeping its
    /// app registrations and users (their ids and secrets).
    ///
    /// # Errors
    /// `ResourceNotFound` for an unknown tenant; storage failures.
    pub async fn reset_tenant(&self, tenant: &str) -> Result<()> {
        let tenant = &canonical_tenant_id(tenant)?;
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
        let tenant = &canonical_tenant_id(tenant)?;
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
        // The incarnation belongs to this tenant, not to its data: a restore never takes it.
        for r in rows.into_iter().filter(|r| !crate::directory::is_incarnation_row(r.parent, &r.nav)) {
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
        let tenant = &canonical_tenant_id(tenant)?;
        check_snapshot(&snapshot)?;
        check_snapshot_schema(&self.model, &snapshot)?;
        check_snapshot_hashes(&snapshot)?;
        self.store
            .write(tenant, move |tx: &mut dyn Tx| {
                // Restoring into an existing tenant keeps its incarnation (its tokens stay
                // valid); restoring creates a new one otherwise.
                let incarnation = if tx.tenant_exists()? { crate::directory::incarnation_row(&*tx)? } else { None };
                tx.drop_tenant()?;
                tx.create_tenant()?;
                match incarnation {
                    Some(raw) => crate::directory::put_incarnation_row(tx, &raw)?,
                    None => crate::directory::new_incarnation(tx)?,
                }
                let taken: Vec<&SnapshotEntity> = snapshot
                    .entities
                    .iter()
                    .filter(|e| !crate::directory::is_incarnation_row(e.parent, &e.nav))
                    .collect();
                let rows: Vec<Row> = taken
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
                let keys = reinsert(tx, rows.iter().zip(taken.iter().map(|e| e.body.get()))).map_err(|e| match e {
                    ServiceError::Conflict(m) => ServiceError::BadRequest(format!("The snapshot repeats an id: {m}")),
                    other => other,
                })?;
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

/// The most PBKDF2 rounds a restored secret or password hash may ask for
/// (`enrollgraph_auth::MAX_ITERATIONS`, which verification enforces too): a snapshot is
/// a file anyone could have edited, and a hash of 10,000,000 rounds would make every
/// sign-in attempt against it cost seconds of CPU (issue 18 item 9).
pub const MAX_RESTORED_HASH_ITERATIONS: u32 = enrollgraph_auth::MAX_ITERATIONS;

/// Refuses (400, nothing changed) a snapshot whose app secrets or user passwords are
/// hashed with more than [`MAX_RESTORED_HASH_ITERATIONS`] rounds.
fn check_snapshot_hashes(s: &Snapshot) -> Result<()> {
    for e in s.entities.iter().filter(|e| e.parent == ROOT && e.nav.starts_with('$')) {
        let Ok(body) = serde_json::from_str::<serde_json::Map<String, Value>>(e.body.get()) else {
            continue;
        };
        let hashes = body
            .get("secretHashes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(body.get("passwordHash"))
            .filter_map(Value::as_str);
        for h in hashes {
            if enrollgraph_auth::hash_iterations(h).is_some_and(|i| i > MAX_RESTORED_HASH_ITERATIONS) {
                return Err(ServiceError::BadRequest(format!(
                    "The snapshot entity '{}' holds a hash of more than {MAX_RESTORED_HASH_ITERATIONS} rounds.",
                    e.id
                )));
            }
        }
    }
    Ok(())
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

/// Schema checks of a snapshot's Graph rows (not the `$` directory rows, which are read
/// leniently): each sits in a collection the schema has, with a type that collection holds
/// and a body the schema accepts whose `id` is the row's; each link is a navigation of its
/// source's type to a row of the type it targets. A snapshot of another shape (a hand-edited
/// file, another server's) is then a 400 that changes nothing, instead of rows that reads
/// would show against the schema (a `priority` of `"high"`, an assignment that is a
/// configuration).
fn check_snapshot_schema(model: &enrollgraph_csdl::Model, s: &Snapshot) -> Result<()> {
    let schema = &model.beta;
    let mut types: HashMap<Seq, &str> = HashMap::new();
    let mut directory = std::collections::HashSet::new();
    for e in &s.entities {
        let bad = |m: String| Err(ServiceError::BadRequest(format!("The snapshot entity with key {}: {m}", e.key)));
        if (e.parent == ROOT && e.nav.starts_with('$')) || directory.contains(&e.parent) {
            directory.insert(e.key);
            continue;
        }
        let declared = if e.parent == ROOT {
            schema
                .contained_collections()
                .into_iter()
                .map(|(_, n)| n)
                .chain(schema.entity_sets())
                .find(|n| n.name == e.nav)
                .map(|n| n.target.clone())
        } else {
            types.get(&e.parent).and_then(|p| schema.find_navigation(p, &e.nav)).map(|n| n.target.clone())
        };
        let Some(declared) = declared else {
            return bad(format!("'{}' is not a collection the schema has there.", e.nav));
        };
        if !schema.derives_from(&e.type_name, &declared) {
            return bad(format!("the type '{}' is not held by '{}' ({declared}).", e.type_name, e.nav));
        }
        let body: Value =
            serde_json::from_str(e.body.get()).map_err(|err| ServiceError::BadRequest(err.to_string()))?;
        if body.get("id").and_then(Value::as_str) != Some(e.id.as_str()) {
            return bad(format!("its body's id is not '{}'.", e.id));
        }
        if let Err(err) =
            validate_entity(schema, &model.behaviour, &declared, Some(&e.type_name), &body, WriteMode::Update)
        {
            return bad(ServiceError::from(err).to_string());
        }
        types.insert(e.key, e.type_name.as_str());
    }
    for l in &s.links {
        let (Some(source), Some(target)) = (types.get(&l.source), types.get(&l.target)) else {
            return Err(ServiceError::BadRequest(format!(
                "The link {} -{}-> {} joins directory rows.",
                l.source, l.nav, l.target
            )));
        };
        if !schema.find_navigation(source, &l.nav).is_some_and(|n| schema.derives_from(target, &n.target)) {
            return Err(ServiceError::BadRequest(format!(
                "The link {} -{}-> {} is not a navigation of '{source}' to '{target}'.",
                l.source, l.nav, l.target
            )));
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
    view.model.complete_both(&payload.type_name, &mut body);
    let id = body.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(tx.insert(parent, nav, &id, &payload.type_name, &Value::Object(body).to_string())?)
}

#[cfg(test)]
mod tests {
    use super::canonical_tenant_id;

    #[test]
    fn tenant_ids_are_guids_or_domain_names_in_lower_case() {
        for (id, canonical) in [
            ("D7C5E0A4-6F1B-4C3E-9A2D-5B8E7F0C1A93", "d7c5e0a4-6f1b-4c3e-9a2d-5b8e7f0c1a93"),
            ("Contoso.OnMicrosoft.com", "contoso.onmicrosoft.com"),
            ("contoso-test-1", "contoso-test-1"),
        ] {
            assert_eq!(canonical_tenant_id(id).ok().as_deref(), Some(canonical), "{id}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["abc"; 64].join(".");
        for bad in [
            "",
            ".",
            "..",
            "a..b",
            ".a",
            "a.",
            "-a",
            "a-",
            "a_b",
            "a/b",
            "a b",
            "$system",
            "common",
            "Organizations",
            "CONSUMERS",
            &long_label,
            &long_name,
            "é.com",
        ] {
            assert!(canonical_tenant_id(bad).is_err(), "{bad:?}");
        }
    }
}
