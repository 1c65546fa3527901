//! Graph semantics without HTTP. The server turns an HTTP request into a [`Request`],
//! calls [`Service::handle`], and writes the [`Response`] or maps the [`ServiceError`].
//!
//! Every resource is served by the same code: the path is resolved against the CSDL
//! model ([`resolve`]), bodies are validated and shaped by `enrollgraph-csdl`, and rows
//! are read and written through one tenant-scoped `enrollgraph-store` transaction.

pub mod directory;
pub mod effective;
pub mod error;
pub mod filter_rule;
mod graph_paths;
mod ops;
pub mod path;
mod query;
pub mod resolve;
mod tenant;

use std::sync::{Arc, OnceLock};

use enrollgraph_csdl::{ApiVersion, Model};
use enrollgraph_store::Store;
use serde_json::Value;

pub use directory::{App, Incarnation, User};
pub use effective::EffectiveQuery;
pub use error::{Result, ServiceError};
pub use tenant::{
    DEFAULTS_JSON, SNAPSHOT_FORMAT, Snapshot, SnapshotEntity, SnapshotLink, canonical_tenant_id, check_tenant_id,
};

/// An HTTP method as the service sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// GET (and HEAD)
    Get,
    /// POST
    Post,
    /// PATCH
    Patch,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// Anything else.
    Other(String),
}

impl Method {
    /// The method's name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Other(m) => m,
        }
    }
}

/// A Graph request, already authenticated and with its body parsed.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The API version of the URL.
    pub version: ApiVersion,
    /// The path after the version segment, still percent-encoded.
    pub path: String,
    /// The raw query string (after `?`), still percent-encoded.
    pub query: String,
    /// The parsed JSON body, if any.
    pub body: Option<Value>,
    /// The tenant every read and write is scoped to.
    pub tenant: String,
    /// The origin the client used (`http://127.0.0.1:5080`), for `@odata.context`,
    /// `@odata.nextLink` and `Location` (graph-behaviours.md "Paging").
    pub base_url: String,
}

/// The body of a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No content.
    Empty,
    /// A JSON document.
    Json(Value),
    /// A JSON document already written as text (the read path writes entities straight
    /// from their stored text).
    Raw(String),
    /// `text/plain` (`/$count`).
    Text(String),
}

impl Body {
    /// The body as a JSON value (parsing [`Body::Raw`]); `None` for empty and text bodies.
    #[must_use]
    pub fn json(&self) -> Option<Value> {
        match self {
            Body::Json(v) => Some(v.clone()),
            Body::Raw(text) => serde_json::from_str(text).ok(),
            Body::Empty | Body::Text(_) => None,
        }
    }
}

/// A Graph response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Body,
    /// `Location` header (201 Created).
    pub location: Option<String>,
}

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server-driven page size (OData URL §11.2.6.7 `odata.maxpagesize`).
    pub page_size: usize,
    /// Translate `$filter`/`$orderby` to SQL where exact (off: everything in memory; for
    /// the benchmark's with/without comparison and for diagnosis).
    pub push_down: bool,
    /// The largest answer a GET builds in memory, in bytes; a query whose answer would be
    /// larger is a `400` (issue 18 item 1: an answer is never larger than a fixed bound).
    pub max_answer_bytes: usize,
}

/// The default of [`Config::max_answer_bytes`]: 64 MiB, sixteen times the largest body a
/// client may send (rulings.md 12).
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 64 << 20;

impl Default for Config {
    fn default() -> Self {
        Config { page_size: 100, push_down: true, max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES }
    }
}

/// The Graph service over one model and one store.
#[derive(Clone)]
pub struct Service {
    model: Arc<Model>,
    store: Arc<dyn Store>,
    config: Arc<Config>,
    /// The `$skiptoken` key, loaded from the database once (shared by `with_config` copies).
    paging_key: Arc<OnceLock<Arc<query::PagingKey>>>,
}

impl Service {
    /// Builds the service.
    #[must_use]
    pub fn new(model: Arc<Model>, store: Arc<dyn Store>, config: Config) -> Self {
        Service { model, store, config: Arc::new(config), paging_key: Arc::default() }
    }

    /// The same model and store with other tunables.
    #[must_use]
    pub fn with_config(&self, config: Config) -> Service {
        Service {
            model: self.model.clone(),
            store: self.store.clone(),
            config: Arc::new(config),
            paging_key: self.paging_key.clone(),
        }
    }

    /// The key that seals this database's `$skiptoken`s, made on first use.
    pub(crate) async fn paging_key(&self) -> Result<Arc<query::PagingKey>> {
        if let Some(k) = self.paging_key.get() {
            return Ok(k.clone());
        }
        let bytes = self.load_or_create_paging_key().await?;
        let key = Arc::new(query::PagingKey::new(&bytes)?);
        Ok(self.paging_key.get_or_init(|| key).clone())
    }

    /// The tunables.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The model.
    #[must_use]
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Serves one request.
    ///
    /// # Errors
    /// Any [`ServiceError`]; the server maps it to a Graph error body.
    pub async fn handle(&self, req: Request) -> Result<Response> {
        ops::handle(self, req).await
    }

    /// Creates `tenant` with what a new Intune tenant holds (reference/defaults.md),
    /// unless it exists. Returns true when it was created.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn provision_tenant(&self, tenant: &str) -> Result<bool> {
        // The paging key is made with the first tenant, so reads never wait for a write.
        self.paging_key().await?;
        tenant::provision(self, tenant).await
    }
}
