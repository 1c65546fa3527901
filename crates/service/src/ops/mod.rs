//! Operations: what each (target, method) pair does. Reads run inline against a
//! snapshot; writes run resolution and the change together in one transaction, so a
//! parent deleted meanwhile is a 404, never a dangling child.

mod actions;
mod read;
mod write;

use enrollgraph_csdl::ApiVersion;
use enrollgraph_store::{StoreExt, Tx};
use serde_json::Value;

use crate::error::{Result, ServiceError};
use crate::path::{Segment, parse_path};
use crate::resolve::{Target, View, creatable_type, resolve};
use crate::{Body, Method, Request, Response, Service};

/// The parts of a request a write job needs, owned so the job can move to the writer.
struct WriteCtx {
    version: ApiVersion,
    segments: Vec<Segment<'static>>,
    body: Value,
    base_url: String,
}

pub(crate) async fn handle(service: &Service, req: Request) -> Result<Response> {
    let segments = parse_path(&req.path)?;
    if segments.is_empty() {
        return Ok(read::service_document(service, &req));
    }
    match req.method {
        Method::Get => {
            let key = service.paging_key().await?;
            read::get(service, &req, &segments, &key)
        }
        Method::Post | Method::Patch | Method::Put | Method::Delete => {
            // Announced before the work below, so that a commit starting meanwhile waits
            // for this write and shares its fsync (enrollgraph_store::gather).
            let intent = service.store.announce_write(&req.tenant);
            let body = req.body.clone().unwrap_or(Value::Null);
            // 1. Resolve and validate on this worker, against a snapshot: the single writer
            //    thread then only writes (bench W1), and a bad body never queues.
            let view = service.view(req.version);
            //    A create on a plain containment path needs no snapshot at all: the schema
            //    gives the type to validate against, and the transaction finds the parent.
            let fast = match req.method {
                Method::Post => creatable_type(view, &segments).map(|t| write::validate_as(view, &t, &body)),
                _ => None,
            };
            let (prepared, known) = match fast {
                Some(Ok(payload)) => (write::prefill(view, payload), None),
                // A bad body on a path that may not exist: the snapshot decides which error
                // a client sees first (a missing parent is 404 before the body is read).
                _ => service.store.read(&req.tenant, |tx| {
                    let target = resolve(view, tx, &segments)?;
                    let prepared = prepare(view, &req.method, &target, &body)?;
                    Ok::<_, ServiceError>((prepared, Known::from_target(target)))
                })?,
            };
            let segments = segments.into_iter().map(Segment::into_owned).collect();
            let ctx = WriteCtx { version: req.version, segments, body, base_url: req.base_url.clone() };
            let method = req.method.clone();
            let model = service.model.clone();
            // 2. Check the target again inside the transaction (it may be gone) and write.
            let (written, ctx) = service
                .store
                .write(&req.tenant, move |tx: &mut dyn Tx| {
                    drop(intent);
                    let view = View { model: &model, schema: model.schema(ctx.version) };
                    let target = match known.and_then(|k| k.refresh(&*tx).transpose()) {
                        Some(target) => target?,
                        None => resolve(view, &*tx, &ctx.segments)?,
                    };
                    let written = dispatch_write(view, tx, &method, target, &ctx, prepared)?;
                    Ok::<_, ServiceError>((written, ctx))
                })
                .await?;
            // 3. Write the answer after the commit, off the writer thread.
            match written {
                write::Written::Entity { status, entity, location } => {
                    write::entity_response(view, status, &entity, location, &ctx)
                }
                write::Written::Response(r) => Ok(r),
            }
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
        Target::Singleton { .. } | Target::Count(_) | Target::Empty { .. } | Target::Single { .. } => vec!["GET"],
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

/// What the snapshot resolved, for the write transaction to check by key instead of
/// walking the path again: one row read by `seq` where a path walk reads every segment's
/// row by id (callgrind, issue 8's W1: the second walk was a tenth of a create).
enum Known {
    /// A collection; its containing row must still exist.
    Collection(crate::resolve::CollectionRef),
    /// An entity; re-read, since another write may have changed it.
    Entity(crate::resolve::EntityRef),
}

impl Known {
    fn from_target(target: Target) -> Option<Known> {
        match target {
            Target::Collection(c) => Some(Known::Collection(c)),
            Target::Entity(e) => Some(Known::Entity(e)),
            _ => None,
        }
    }

    /// The target as it is in this transaction; `None` when it changed (deleted, or
    /// re-created under another key), and the path is resolved again to say how.
    fn refresh(self, tx: &dyn Tx) -> Result<Option<Target>> {
        Ok(match self {
            Known::Collection(c) if c.parent == enrollgraph_store::ROOT => Some(Target::Collection(c)),
            Known::Collection(c) => tx.get_seq(c.parent)?.map(|_| Target::Collection(c)),
            Known::Entity(mut e) => match tx.get_seq(e.row.seq)? {
                Some(row) if row.type_name == e.row.type_name => {
                    e.row = row;
                    Some(Target::Entity(e))
                }
                _ => None,
            },
        })
    }
}

/// True for a DELETE on a collection behaviour.json `clearableCollections` names.
fn clears(view: View<'_>, method: &Method, target: &Target) -> bool {
    matches!((method, target), (Method::Delete, Target::Collection(c)) if c.cast.is_none() && view.model.behaviour.clearable(&c.element))
}

/// A validated body, ready for the write transaction.
enum Prepared {
    /// Nothing to validate ahead (actions, `$ref`, deletes).
    Nothing,
    /// A create or update body.
    Payload(enrollgraph_csdl::Payload),
    /// A create's stored form, made before the transaction (`write::prefill`).
    Filled(write::Filled),
}

fn prepare(view: View<'_>, method: &Method, target: &Target, body: &Value) -> Result<Prepared> {
    // A method the resource does not have is refused before any transaction starts.
    if !matches!(target, Target::Singleton { .. })
        && !allowed(target).contains(&method.as_str())
        && !clears(view, method, target)
    {
        return Err(method_not_allowed(method, target));
    }
    Ok(match (method, target) {
        (Method::Post, Target::Collection(c)) => Prepared::Payload(write::validate_new(view, c, body)?),
        (Method::Patch, Target::Entity(e)) => Prepared::Payload(write::validate_update(view, e, body)?),
        _ => Prepared::Nothing,
    })
}

fn dispatch_write(
    view: View<'_>,
    tx: &mut dyn Tx,
    method: &Method,
    target: Target,
    ctx: &WriteCtx,
    prepared: Prepared,
) -> Result<write::Written> {
    let done = write::Written::Response;
    match (method, target, prepared) {
        (Method::Post, Target::Collection(c), Prepared::Payload(p)) => write::create(view, tx, &c, p, ctx),
        (Method::Post, Target::Collection(c), Prepared::Filled(f)) => write::create_filled(&c, tx, f, ctx),
        (Method::Patch, Target::Entity(e), Prepared::Payload(p)) => write::update(view, tx, e, p),
        (Method::Delete, Target::Entity(e), _) => write::delete(view, tx, &e).map(done),
        (Method::Delete, Target::Collection(c), _) if clears(view, method, &Target::Collection(c.clone())) => {
            write::clear(tx, &c).map(done)
        }
        (Method::Post, Target::Action { binding, action }, _) => {
            actions::invoke(view, tx, *binding, &action, &ctx.body).map(done)
        }
        (Method::Put | Method::Post | Method::Delete, Target::Ref(inner), _) => {
            write::set_ref(view, tx, method, *inner, &ctx.body).map(done)
        }
        (Method::Patch, Target::Singleton { name, .. }, _) => {
            Err(ServiceError::NotImplemented(format!("update {name}")))
        }
        // The target changed kind between validation and the transaction (it cannot, but
        // the type system does not know): refuse rather than guess.
        (Method::Post, Target::Collection(_), _) | (Method::Patch, Target::Entity(_), _) => {
            Err(ServiceError::Conflict("The resource changed while the request was processed; retry.".into()))
        }
        (m, t, _) => Err(method_not_allowed(m, &t)),
    }
}

/// `{base}/{version}/$metadata#{fragment}` (OData JSON Format §10).
pub(crate) fn context_url(base_url: &str, version: ApiVersion, fragment: &str) -> String {
    // Pushed, not `format!`: once per answer, and the formatting machinery cost more than
    // the copying (callgrind, W2).
    let version = version.as_str();
    let mut url = String::with_capacity(base_url.len() + version.len() + fragment.len() + 12);
    url.push_str(base_url);
    url.push('/');
    url.push_str(version);
    url.push_str("/$metadata#");
    url.push_str(fragment);
    url
}

pub(crate) fn empty(status: u16) -> Response {
    Response { status, body: Body::Empty, location: None }
}
