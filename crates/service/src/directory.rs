//! The built-in directory: tenants, app registrations (client id, hashed secrets, granted
//! application permissions), users (hashed password, consented delegated permissions,
//! personal-account flag) and the server's signing keys.
//!
//! These are stored as ordinary rows under navigation names that start with `$`, which no
//! CSDL navigation has, so no Graph URL can reach them; and they live in the tenant they
//! belong to, so deleting or exporting a tenant takes its directory along.

use enrollgraph_store::{ListSpec, ROOT, StoreExt, Tx};
use serde_json::{Map, Value, json};

use crate::Service;
use crate::error::{Result, ServiceError};

const APPS: &str = "$apps";
const USERS: &str = "$users";
const KEYS: &str = "$keys";
const ADMIN: &str = "$admin";
/// Domain names of tenants (issue 14): a row per domain in the `$system` pseudo-tenant,
/// naming its tenant, so any request can find a tenant by a domain in one read.
const DOMAINS: &str = "$domains";
/// Client assertions already used (their `jti`), until they expire: the replay cache of
/// the token endpoint. Rows of the tenant, so every replica of one database sees them
/// (PostgreSQL serialises a tenant's writes across replicas).
const ASSERTIONS: &str = "$assertions";
/// When a tenant holds this many remembered assertions, the expired ones are pruned; if
/// none has expired, new assertions are refused until some do (a bound on the rows).
const MAX_ASSERTIONS: u64 = 10_000;
/// The tenant's own row: its incarnation (see [`Incarnation`]).
const TENANT: &str = "$tenant";
const INCARNATION: &str = "incarnation";
/// Server-wide rows (signing keys) live in this pseudo-tenant, never a Graph tenant id.
const SYSTEM: &str = "$system";

/// An app registration.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// The client (application) id.
    pub app_id: String,
    /// A name for people.
    pub display_name: String,
    /// Granted application permissions (token `roles`).
    pub roles: Vec<String>,
    /// Hashes of the client secrets (never the secrets).
    pub secret_hashes: Vec<String>,
    /// Public certificates the app signs client assertions with (never a private key).
    pub certificates: Vec<enrollgraph_auth::ClientCertificate>,
}

/// A user who can sign in with a password (resource-owner password grant, for tests).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The object id.
    pub object_id: String,
    /// The sign-in name.
    pub user_principal_name: String,
    /// Hash of the password.
    pub password_hash: String,
    /// Consented delegated permissions (token `scp`).
    pub scopes: Vec<String>,
    /// A personal Microsoft account (refused by every Intune operation).
    pub personal: bool,
}

/// Which creation of a tenant id this is: a random id given each time the tenant is
/// created (not when it is reset or restored), and when (unix seconds). Tokens carry the
/// id (`xms_tinc`), so a tenant deleted and created again under the same id refuses the
/// tokens of the one before (issue 18 item 8). A tenant made before incarnations existed
/// has an empty id and `created` 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incarnation {
    /// The random id.
    pub id: String,
    /// When the tenant was created, unix seconds.
    pub created: i64,
}

/// Gives the tenant of `tx` a new incarnation (inside the transaction that creates it).
pub(crate) fn new_incarnation(tx: &mut dyn Tx) -> Result<()> {
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = json!({"id": uuid::Uuid::new_v4().to_string(), "created": created});
    upsert(tx, TENANT, INCARNATION, "enrollgraph.tenant", body.as_object().unwrap_or(&Map::new()))
}

/// The tenant's incarnation row as stored (its raw JSON), if any: a restore keeps it.
pub(crate) fn incarnation_row(tx: &dyn Tx) -> Result<Option<String>> {
    Ok(tx.get(ROOT, TENANT, INCARNATION)?.map(|r| r.raw))
}

/// Writes back a row read by [`incarnation_row`].
pub(crate) fn put_incarnation_row(tx: &mut dyn Tx, raw: &str) -> Result<()> {
    tx.insert(ROOT, TENANT, INCARNATION, "enrollgraph.tenant", raw)?;
    Ok(())
}

/// True for the rows of a snapshot that a restore does not take over (the incarnation
/// belongs to the tenant restored into, not to the one the snapshot came from).
pub(crate) fn is_incarnation_row(parent: i64, nav: &str) -> bool {
    parent == ROOT && nav == TENANT
}

/// Tenant ids are stored in lower case (`canonical_tenant_id`) and compared
/// case-insensitively: the directory's look-ups take any spelling.
fn canonical_case(tenant: &str) -> std::borrow::Cow<'_, str> {
    if tenant.bytes().any(|b| b.is_ascii_uppercase()) { tenant.to_ascii_lowercase().into() } else { tenant.into() }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn text(v: &Map<String, Value>, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned()
}

impl App {
    fn to_body(&self) -> Map<String, Value> {
        let v = json!({"appId": self.app_id, "displayName": self.display_name, "roles": self.roles, "secretHashes": self.secret_hashes,
                       "keyCredentials": self.certificates});
        v.as_object().cloned().unwrap_or_default()
    }

    fn from_body(b: &Map<String, Value>) -> App {
        App {
            app_id: text(b, "appId"),
            display_name: text(b, "displayName"),
            roles: strings(b.get("roles")),
            secret_hashes: strings(b.get("secretHashes")),
            certificates: b
                .get("keyCredentials")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
        }
    }
}

impl User {
    fn to_body(&self) -> Map<String, Value> {
        let v = json!({"id": self.object_id, "userPrincipalName": self.user_principal_name, "passwordHash": self.password_hash,
                       "scopes": self.scopes, "personal": self.personal});
        v.as_object().cloned().unwrap_or_default()
    }

    fn from_body(b: &Map<String, Value>) -> User {
        User {
            object_id: text(b, "id"),
            user_principal_name: text(b, "userPrincipalName"),
            password_hash: text(b, "passwordHash"),
            scopes: strings(b.get("scopes")),
            personal: b.get("personal").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

/// Stores a new app registration (inside a transaction that creates its tenant).
pub(crate) fn insert_app(tx: &mut dyn Tx, app: &App) -> Result<()> {
    upsert(tx, APPS, &app.app_id, "enrollgraph.app", &app.to_body())
}

/// Inserts or replaces the row `id` of `nav` at the tenant's root.
fn upsert(tx: &mut dyn Tx, nav: &str, id: &str, kind: &str, body: &Map<String, Value>) -> Result<()> {
    match tx.get(ROOT, nav, id)? {
        Some(row) => tx.update(row.seq, kind, &Value::Object(body.clone()).to_string())?,
        None => {
            tx.insert(ROOT, nav, id, kind, &Value::Object(body.clone()).to_string())?;
        }
    }
    Ok(())
}

impl Service {
    /// The tenants that exist.
    ///
    /// # Errors
    /// Storage failures.
    pub fn tenants(&self) -> Result<Vec<String>> {
        Ok(self.store.tenants()?.into_iter().filter(|t| t != SYSTEM).collect())
    }

    /// True when `tenant` exists.
    ///
    /// # Errors
    /// Storage failures.
    pub fn tenant_exists(&self, tenant: &str) -> Result<bool> {
        let tenant = &canonical_case(tenant);
        Ok(self.store.read(tenant, |tx| tx.tenant_exists())?)
    }

    /// The incarnation of `tenant`, `None` when it does not exist.
    ///
    /// # Errors
    /// Storage failures.
    pub fn tenant_incarnation(&self, tenant: &str) -> Result<Option<Incarnation>> {
        let tenant = &canonical_case(tenant);
        self.store.read(tenant, |tx| {
            if !tx.tenant_exists()? {
                return Ok(None);
            }
            let row = tx.get(ROOT, TENANT, INCARNATION)?;
            Ok(Some(row.map_or(Incarnation { id: String::new(), created: 0 }, |r| {
                let b = r.body();
                Incarnation { id: text(&b, "id"), created: b.get("created").and_then(Value::as_i64).unwrap_or(0) }
            })))
        })
    }

    /// Creates or replaces an app registration in `tenant` (which must exist).
    ///
    /// # Errors
    /// Unknown tenant, storage failures.
    pub async fn save_app(&self, tenant: &str, app: App) -> Result<()> {
        let tenant = &canonical_case(tenant);
        self.store
            .write(tenant, move |tx: &mut dyn Tx| {
                if !tx.tenant_exists()? {
                    return Err(ServiceError::ResourceNotFound("The tenant does not exist.".into()));
                }
                upsert(tx, APPS, &app.app_id, "enrollgraph.app", &app.to_body())
            })
            .await
    }

    /// An app registration by client id.
    ///
    /// # Errors
    /// Storage failures.
    pub fn find_app(&self, tenant: &str, app_id: &str) -> Result<Option<App>> {
        let tenant = &canonical_case(tenant);
        self.store.read(tenant, |tx| Ok(tx.get(ROOT, APPS, app_id)?.map(|r| App::from_body(&r.body()))))
    }

    /// Every app registration of `tenant`.
    ///
    /// # Errors
    /// Storage failures.
    pub fn apps(&self, tenant: &str) -> Result<Vec<App>> {
        let tenant = &canonical_case(tenant);
        self.store.read(tenant, |tx| {
            Ok(tx.list(ROOT, APPS, &ListSpec::default())?.iter().map(|r| App::from_body(&r.body())).collect())
        })
    }

    /// Creates or replaces a user in `tenant` (which must exist).
    ///
    /// # Errors
    /// Unknown tenant, storage failures.
    pub async fn save_user(&self, tenant: &str, user: User) -> Result<()> {
        let tenant = &canonical_case(tenant);
        self.store
            .write(tenant, move |tx: &mut dyn Tx| {
                if !tx.tenant_exists()? {
                    return Err(ServiceError::ResourceNotFound("The tenant does not exist.".into()));
                }
                let key = user.user_principal_name.to_ascii_lowercase();
                upsert(tx, USERS, &key, "enrollgraph.user", &user.to_body())
            })
            .await
    }

    /// A user by sign-in name (case-insensitive).
    ///
    /// # Errors
    /// Storage failures.
    pub fn find_user(&self, tenant: &str, upn: &str) -> Result<Option<User>> {
        let tenant = &canonical_case(tenant);
        self.store
            .read(tenant, |tx| Ok(tx.get(ROOT, USERS, &upn.to_ascii_lowercase())?.map(|r| User::from_body(&r.body()))))
    }

    /// The tenant `name` names: the tenant of that id when it exists, else the tenant that
    /// holds `name` as a domain (`contoso.onmicrosoft.com`); `None` for neither.
    ///
    /// # Errors
    /// Storage failures.
    pub fn resolve_tenant(&self, name: &str) -> Result<Option<String>> {
        let Ok(id) = crate::canonical_tenant_id(name) else { return Ok(None) };
        if self.store.read(&id, |tx| tx.tenant_exists())? {
            return Ok(Some(id));
        }
        let owner = self.store.read(SYSTEM, |tx| tx.get(ROOT, DOMAINS, &id))?.map(|r| text(&r.body(), "tenant"));
        match owner {
            Some(t) if self.store.read(&t, |tx| tx.tenant_exists())? => Ok(Some(t)),
            _ => Ok(None),
        }
    }

    /// Adds `domain` to `tenant` (which must exist). A domain is a domain name with at least
    /// two labels, held by one tenant only, and not the id of another tenant.
    ///
    /// # Errors
    /// `BadRequest` for a name that is not a domain, `Conflict` for one held elsewhere,
    /// `ResourceNotFound` for an unknown tenant; storage failures.
    pub async fn add_domain(&self, tenant: &str, domain: &str) -> Result<()> {
        let tenant = crate::canonical_tenant_id(tenant)?;
        let domain = crate::canonical_tenant_id(domain)?;
        if !domain.contains('.') || uuid::Uuid::try_parse(&domain).is_ok() {
            return Err(ServiceError::BadRequest(format!(
                "'{domain}' is not a domain name: give at least two labels, such as contoso.onmicrosoft.com."
            )));
        }
        if !self.tenant_exists(&tenant)? {
            return Err(ServiceError::ResourceNotFound(format!("The tenant '{tenant}' does not exist.")));
        }
        if domain != tenant && self.tenant_exists(&domain)? {
            return Err(ServiceError::Conflict(format!("'{domain}' is the id of another tenant.")));
        }
        self.store
            .write(SYSTEM, move |tx: &mut dyn Tx| match tx.get(ROOT, DOMAINS, &domain)? {
                Some(row) if text(&row.body(), "tenant") == tenant => Ok(()),
                Some(_) => Err(ServiceError::Conflict(format!("The domain '{domain}' belongs to another tenant."))),
                None => {
                    tx.insert(ROOT, DOMAINS, &domain, "enrollgraph.domain", &json!({"tenant": tenant}).to_string())?;
                    Ok(())
                }
            })
            .await
    }

    /// The domains of `tenant`, sorted.
    ///
    /// # Errors
    /// Storage failures.
    pub fn domains(&self, tenant: &str) -> Result<Vec<String>> {
        let tenant = canonical_case(tenant);
        let rows = self.store.read(SYSTEM, |tx| tx.list(ROOT, DOMAINS, &ListSpec::default()))?;
        let mut out: Vec<String> =
            rows.into_iter().filter(|r| text(&r.body(), "tenant") == tenant.as_ref()).map(|r| r.id).collect();
        out.sort();
        Ok(out)
    }

    /// Forgets the domains of `tenant` (after it was deleted).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn drop_domains(&self, tenant: &str) -> Result<()> {
        let tenant = canonical_case(tenant).into_owned();
        self.store
            .write(SYSTEM, move |tx: &mut dyn Tx| {
                for r in tx.list(ROOT, DOMAINS, &ListSpec::default())? {
                    if text(&r.body(), "tenant") == tenant {
                        tx.delete(r.seq)?;
                    }
                }
                Ok(())
            })
            .await
    }

    /// Gives a new tenant its default domain, `{name}.onmicrosoft.com` as Entra names a new
    /// tenant's initial domain: `name` is the first label of a domain-named tenant, else
    /// `enrollgraph` and the first 8 hex digits of the GUID. Skipped (with a log line) when
    /// another tenant holds that name already.
    pub(crate) async fn add_default_domain(&self, tenant: &str) {
        let first = tenant.split(['.', '-']).next().unwrap_or(tenant);
        let name = if uuid::Uuid::try_parse(tenant).is_ok() { format!("enrollgraph{first}") } else { first.to_owned() };
        if let Err(e) = self.add_domain(tenant, &format!("{name}.onmicrosoft.com")).await {
            tracing::info!(tenant, error = %e, "no default domain");
        }
    }

    /// Remembers a client assertion's `replay_key` until `expires` (unix seconds). True the
    /// first time; false when it is remembered and not yet expired (a replay), or when the
    /// tenant already remembers [`MAX_ASSERTIONS`] unexpired ones.
    ///
    /// # Errors
    /// Unknown tenant, storage failures.
    pub async fn record_assertion(&self, tenant: &str, replay_key: String, expires: i64, now: i64) -> Result<bool> {
        let tenant = &canonical_case(tenant);
        let expiry = |r: &enrollgraph_store::Row| r.body().get("exp").and_then(Value::as_i64).unwrap_or(0);
        self.store
            .write(tenant, move |tx: &mut dyn Tx| {
                if !tx.tenant_exists()? {
                    return Err(ServiceError::ResourceNotFound("The tenant does not exist.".into()));
                }
                if let Some(row) = tx.get(ROOT, ASSERTIONS, &replay_key)? {
                    if expiry(&row) >= now {
                        return Ok(false);
                    }
                    tx.delete(row.seq)?;
                }
                if tx.count(ROOT, ASSERTIONS, &ListSpec::default())? >= MAX_ASSERTIONS {
                    let mut left = 0u64;
                    for row in tx.list(ROOT, ASSERTIONS, &ListSpec::default())? {
                        if expiry(&row) < now {
                            tx.delete(row.seq)?;
                        } else {
                            left += 1;
                        }
                    }
                    if left >= MAX_ASSERTIONS {
                        return Ok(false);
                    }
                }
                tx.insert(
                    ROOT,
                    ASSERTIONS,
                    &replay_key,
                    "enrollgraph.assertion",
                    &json!({"exp": expires}).to_string(),
                )?;
                Ok(true)
            })
            .await
    }

    /// The signing keys as their persisted JSON, created by `generate` on first use (one
    /// transaction: two processes starting at once agree on one key set).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn load_or_create_keys(&self, generate: impl FnOnce() -> String + Send + 'static) -> Result<String> {
        self.store
            .write(SYSTEM, move |tx: &mut dyn Tx| {
                if let Some(row) = tx.get(ROOT, KEYS, "signing")? {
                    return Ok(text(&row.body(), "keySet"));
                }
                let keys = generate();
                let body = json!({"keySet": keys}).as_object().cloned().unwrap_or_default();
                tx.insert(ROOT, KEYS, "signing", "enrollgraph.keySet", &Value::Object(body).to_string())?;
                Ok(keys)
            })
            .await
    }

    /// The key that seals `$skiptoken`s (`query::PagingKey`), 32 random bytes made on first
    /// use and kept in the database, so that every replica of one database opens the tokens
    /// another issued. Read first (a write is taken only while there is none), in one write
    /// transaction when it is made: replicas starting together agree on one key.
    ///
    /// # Errors
    /// Storage failures; a stored key that is not 32 bytes of base64.
    pub(crate) async fn load_or_create_paging_key(&self) -> Result<Vec<u8>> {
        let stored = self.store.read(SYSTEM, |tx| tx.get(ROOT, KEYS, "paging"))?.map(|row| text(&row.body(), "key"));
        let encoded = match stored {
            Some(k) => k,
            None => {
                self.store
                    .write(SYSTEM, move |tx: &mut dyn Tx| {
                        if let Some(row) = tx.get(ROOT, KEYS, "paging")? {
                            return Ok::<_, ServiceError>(text(&row.body(), "key"));
                        }
                        let mut key = [0u8; 32];
                        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
                            .map_err(|_| ServiceError::Internal("no randomness for the paging key".into()))?;
                        let encoded = base64::engine::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
                        let body = json!({"key": encoded});
                        tx.insert(ROOT, KEYS, "paging", "enrollgraph.pagingKey", &body.to_string())?;
                        Ok::<_, ServiceError>(encoded)
                    })
                    .await?
            }
        };
        base64::engine::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded.as_bytes())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| ServiceError::Internal("the stored paging key is not 32 bytes of base64".into()))
    }

    /// The persisted signing keys, if any were made.
    ///
    /// # Errors
    /// Storage failures.
    pub fn keys(&self) -> Result<Option<String>> {
        Ok(self.store.read(SYSTEM, |tx| tx.get(ROOT, KEYS, "signing"))?.map(|row| text(&row.body(), "keySet")))
    }

    /// The admin API key (issue 9), kept only as a hash (issue 18 item 4: the database
    /// file, its WAL and backups must not hand out the key): `preset` when given (its hash
    /// stored, so a restart without it keeps accepting it), else the stored hash, else
    /// `generate()`'s key, stored hashed. Returns the hash to check requests against and
    /// the key itself when it was just generated (to show once, like a client secret).
    /// A key stored in clear by an earlier version is hashed in place.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn admin_key(
        &self,
        preset: Option<String>,
        generate: impl FnOnce() -> String + Send + 'static,
    ) -> Result<(String, Option<String>)> {
        self.store
            .write(SYSTEM, move |tx: &mut dyn Tx| {
                let stored = tx.get(ROOT, ADMIN, "key")?.map(|row| row.body());
                let hash = stored.as_ref().map(|b| text(b, "hash")).filter(|h| !h.is_empty());
                let legacy = stored.as_ref().map(|b| text(b, "key")).filter(|k| !k.is_empty());
                let (hash, shown) = match (preset, hash, legacy) {
                    (Some(p), Some(h), _) if enrollgraph_auth::verify_secret(&p, &h) => return Ok((h, None)),
                    (None, Some(h), _) => return Ok((h, None)),
                    (Some(p), _, _) => (enrollgraph_auth::hash_generated_secret(&p), None),
                    (None, None, Some(k)) => (enrollgraph_auth::hash_generated_secret(&k), None),
                    (None, None, None) => {
                        let key = generate();
                        (enrollgraph_auth::hash_generated_secret(&key), Some(key))
                    }
                };
                let body = json!({"hash": hash}).as_object().cloned().unwrap_or_default();
                upsert(tx, ADMIN, "key", "enrollgraph.adminKey", &body)?;
                Ok((hash, shown))
            })
            .await
    }

    /// Replaces the signing keys (after a rotation).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn save_keys(&self, keys: String) -> Result<()> {
        self.store
            .write(SYSTEM, move |tx: &mut dyn Tx| {
                let body = json!({"keySet": keys}).as_object().cloned().unwrap_or_default();
                upsert(tx, KEYS, "signing", "enrollgraph.keySet", &body)
            })
            .await
    }
}
