//! Operations: what each (target, method) pair does. Reads run inline against a
//! snapshot; writes run resolution and the change together in one transaction, so a
//! parent deleted meanwhile is a 404, never a dangling child.

mod actions;
mod read;
mod write;

use enrollgraph_csdl::ApiVersion;
use enrollgraph_store::{StoreExt, Tx};
use serde_json::{Map, Value};

use crate::error::{Result, ServiceError};
use crate::path::{Segment, parse_path};
use crate::resolve::{Target, View, resolve};
use crate::{Body, Method, Request, Response, Service};

/// The parts of a request a write job needs, owned so the job can move to the writer.
struct WriteCtx {
    version: ApiVersion,
    segments: Vec<Segment>,
    body: Value,
    base_url: String,
}

pub(crate) async fn handle(service: &Service, req: Request) -> Result<Response> {
    let segments = parse_path(&req.path)?;
    if segments.is_empty() {
        return Ok(read::service_document(&req));
    }
    match req.method {
        Method::Get => read::get(service, &req, &segments),
        Method::Post | Method::Patch | Method::Put | Method::Delete => {
            let ctx = WriteCtx {
                version: req.version,
                segments,
                body: req.body.clone().unwrap_or(Value::Null),
                base_url: req.base_url.clone(),
            };
            let method = req.method.clone();
            let model = service.model.clone();
            service
                .store
                .write(&req.tenant, move |tx: &mut dyn Tx| {
                    let view = View { model: &model, schema: model.schema(ctx.version) };
                    let target = resolve(view, &*tx, &ctx.segments)?;
                    dispatch_write(view, tx, &method, target, &ctx)
                })
                .await
        }
        Method::Other(ref m) => {
            // Resolve first: an unknown path is a 400 whatever the method (rulings.md 8).
            let view = service.view(req.version);
            let target = service.store.read(&req.tenant, |tx| resolve(view, tx, &segments))?;
            Err(ServiceError::MethodNotAllowed { method: m.clone(), allow: allowed(&target) })
        }
    }
}

impl Service {
    pub(crate) fn view(&self, version: ApiVersion) -> View<'_> {
        View { model: &self.model, schema: self.model.schema(version) }
    }
}

/// The methods a target supports, for 405's `Allow`.
pub(crate) fn allowed(target: &Target) -> Vec<&'static str> {
    match target {
        Target::Singleton { .. } | Target::Count(_) => vec!["GET"],
        Target::Collection(_) => vec!["GET", "POST"],
        Target::Entity(_) => vec!["GET", "PATCH", "DELETE"],
        Target::SingleNav { .. } | Target::Reverse { .. } => vec!["GET"],
        Target::Action { .. } => vec!["POST"],
        Target::Ref(inner) => match **inner {
            Target::Reverse { .. } => vec!["GET", "POST"],
            _ => vec!["GET", "PUT", "DELETE"],
        },
    }
}

fn method_not_allowed(method: &Method, target: &Target) -> ServiceError {
    ServiceError::MethodNotAllowed { method: method.as_str().to_owned(), allow: allowed(target) }
}

fn dispatch_write(
    view: View<'_>,
    tx: &mut dyn Tx,
    method: &Method,
    target: Target,
    ctx: &WriteCtx,
) -> Result<Response> {
    match (method, target) {
        (Method::Post, Target::Collection(c)) => write::create(view, tx, &c, &ctx.body, ctx),
        (Method::Patch, Target::Entity(e)) => write::update(view, tx, e, &ctx.body, ctx),
        (Method::Delete, Target::Entity(e)) => write::delete(view, tx, &e),
        (Method::Post, Target::Action { binding, action }) => actions::invoke(view, tx, *binding, &action, &ctx.body),
        (Method::Put | Method::Post | Method::Delete, Target::Ref(inner)) => {
            write::set_ref(view, tx, method, *inner, &ctx.body)
        }
        (Method::Patch, Target::Singleton { name, .. }) => Err(ServiceError::NotImplemented(format!("update {name}"))),
        (m, t) => Err(method_not_allowed(m, &t)),
    }
}

/// `{base}/{version}/$metadata#{fragment}` (OData JSON Format §10).
pub(crate) fn context_url(base_url: &str, version: ApiVersion, fragment: &str) -> String {
    format!("{base_url}/{}/$metadata#{fragment}", version.as_str())
}

/// Puts `@odata.context` first, as Graph writes it.
pub(crate) fn with_context(context: String, entity: Map<String, Value>) -> Value {
    let mut out = Map::with_capacity(entity.len() + 1);
    out.insert("@odata.context".into(), Value::String(context));
    out.extend(entity);
    Value::Object(out)
}

pub(crate) fn empty(status: u16) -> Response {
    Response { status, body: Body::Empty, location: None }
}
