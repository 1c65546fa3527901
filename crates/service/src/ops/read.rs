//! GET: entities, collections (server-driven paging with keyset skiptokens), `$count`,
//! navigations, `$ref`, and the service document.

use enrollgraph_csdl::{Selection, shape_entity};
use enrollgraph_store::{ListSpec, ReadTx, Row, StoreExt};
use serde_json::{Map, Value};

use super::{context_url, with_context};
use crate::error::{Result, ServiceError};
use crate::path::Segment;
use crate::query::{ExpandPlan, QueryPlan, Token};
use crate::resolve::{CollectionRef, EntityRef, Target, View, entity_for_row, home_collection, resolve};
use crate::{Body, Request, Response, Service};

pub(super) fn service_document(req: &Request) -> Response {
    let body = serde_json::json!({
        "@odata.context": format!("{}/{}/$metadata", req.base_url, req.version.as_str()),
        "value": [{"name": "deviceManagement", "kind": "Singleton", "url": "deviceManagement"}],
    });
    Response { status: 200, body: Body::Json(body), location: None }
}

pub(super) fn get(service: &Service, req: &Request, segments: &[Segment]) -> Result<Response> {
    let view = service.view(req.version);
    service.store.read(&req.tenant, |tx| {
        let target = resolve(view, tx, segments)?;
        let out = Out { view, req, page_size: service.config.page_size };
        match target {
            Target::Collection(c) => {
                let plan =
                    QueryPlan::parse(view, &req.query, c.effective_type(), req.version, service.config.push_down)?;
                out.list(tx, &c, &plan)
            }
            Target::Entity(e) => {
                let plan = QueryPlan::parse(view, &req.query, &e.row.type_name, req.version, service.config.push_down)?;
                out.entity(tx, &e, &plan)
            }
            Target::SingleNav { target: Some(e), .. } => {
                let plan = QueryPlan::parse(view, &req.query, &e.row.type_name, req.version, service.config.push_down)?;
                out.entity(tx, &e, &plan)
            }
            Target::SingleNav { nav, target: None, .. } => {
                Err(ServiceError::ResourceNotFound(format!("The navigation property '{}' has no value.", nav.name)))
            }
            Target::Reverse { target, link, element, .. } => {
                let plan = QueryPlan::parse(view, &req.query, &element, req.version, service.config.push_down)?;
                let home = home_collection(view, &element)?;
                let rows = linked_rows(tx, target.row.seq, &link)?;
                out.list_rows(tx, &home, rows, &plan)
            }
            Target::Count(inner) => match *inner {
                Target::Collection(c) => {
                    let plan =
                        QueryPlan::parse(view, &req.query, c.effective_type(), req.version, service.config.push_down)?;
                    let n = out.count(tx, &c, &plan)?;
                    Ok(Response { status: 200, body: Body::Text(n.to_string()), location: None })
                }
                Target::Reverse { target, link, element, .. } => {
                    let plan = QueryPlan::parse(view, &req.query, &element, req.version, service.config.push_down)?;
                    let n = linked_rows(tx, target.row.seq, &link)?.iter().filter(|r| plan.eval(r)).count();
                    Ok(Response { status: 200, body: Body::Text(n.to_string()), location: None })
                }
                _ => Err(ServiceError::BadQuery("$count is not supported on this resource.".into())),
            },
            Target::Ref(inner) => out.reference(&inner),
            Target::Singleton { name, type_name } => {
                let body = serde_json::json!({
                    "@odata.context": context_url(&req.base_url, req.version, &format!("{name}/$entity")),
                    "@odata.type": format!("#{type_name}"),
                    "id": name,
                });
                Ok(Response { status: 200, body: Body::Json(body), location: None })
            }
            t @ Target::Action { .. } => Err(super::method_not_allowed(&req.method, &t)),
        }
    })
}

struct Out<'a> {
    view: View<'a>,
    req: &'a Request,
    page_size: usize,
}

impl Out<'_> {
    fn json(body: Value) -> Response {
        Response { status: 200, body: Body::Json(body), location: None }
    }

    /// The rows of `c` that `plan` selects, before paging; `spec` pushes down what it can.
    fn spec(&self, c: &CollectionRef, plan: &QueryPlan) -> ListSpec {
        let view = self.view;
        // A version or a cast sees only the types it has (rulings.md 6).
        let types = if c.cast.is_some() || view.schema.version != enrollgraph_csdl::ApiVersion::Beta {
            Some(view.schema.self_and_derived(c.effective_type()))
        } else {
            None
        };
        ListSpec { types, filter: plan.sql_filter(), hints: plan.hints(), ..ListSpec::default() }
    }

    fn list(&self, tx: &dyn ReadTx, c: &CollectionRef, plan: &QueryPlan) -> Result<Response> {
        let mut spec = self.spec(c, plan);
        let page = plan.top.map_or(self.page_size, |t| t.min(self.page_size));
        let skip = plan.skip.unwrap_or(0);
        let (rows, next) = match plan.token {
            // Keyset paging in insertion order: page N costs what page 1 costs (issue 3).
            Some(Token::After(_)) | None if plan.keyset() => {
                if let Some(Token::After(seq)) = plan.token {
                    spec.after = Some(seq);
                }
                if plan.all_pushed_down() {
                    spec.limit = Some(skip.saturating_add(page).saturating_add(1));
                }
                let rows = tx.list(c.parent, &c.nav, &spec)?;
                let mut rows: Vec<Row> = rows.into_iter().filter(|r| plan.matches(r)).skip(skip).collect();
                let next = if rows.len() > page {
                    rows.truncate(page);
                    rows.last().map(|r| Token::After(r.seq))
                } else {
                    None
                };
                (rows, next)
            }
            // With $orderby the order is not the key order: page by offset, in SQL when
            // both the filter and the order translate, else in memory.
            token => {
                let offset = match token {
                    Some(Token::Offset(o)) => o,
                    _ => skip,
                };
                let mut rows = if plan.all_pushed_down() && plan.order_pushed_down() {
                    spec.order = plan.sql_order();
                    spec.offset = Some(offset);
                    spec.limit = Some(page.saturating_add(1));
                    tx.list(c.parent, &c.nav, &spec)?
                } else {
                    let mut all: Vec<Row> =
                        tx.list(c.parent, &c.nav, &spec)?.into_iter().filter(|r| plan.matches(r)).collect();
                    plan.sort(&mut all);
                    all.into_iter().skip(offset).take(page.saturating_add(1)).collect()
                };
                let next = if rows.len() > page {
                    rows.truncate(page);
                    Some(Token::Offset(offset.saturating_add(page)))
                } else {
                    None
                };
                (rows, next)
            }
        };
        let count = if plan.count { Some(self.count(tx, c, plan)?) } else { None };
        self.collection_body(tx, &c.path, rows, plan, count, next)
    }

    /// Lists rows the store did not filter (a reverse navigation): filter, order and page
    /// them in memory, by offset.
    fn list_rows(&self, tx: &dyn ReadTx, home: &CollectionRef, rows: Vec<Row>, plan: &QueryPlan) -> Result<Response> {
        let mut rows: Vec<Row> = rows.into_iter().filter(|r| plan.eval(r)).collect();
        plan.sort(&mut rows);
        let count = plan.count.then_some(rows.len() as u64);
        let offset = match plan.token {
            Some(Token::Offset(o)) => o,
            _ => plan.skip.unwrap_or(0),
        };
        let page = plan.top.map_or(self.page_size, |t| t.min(self.page_size));
        let total = rows.len();
        let rows: Vec<Row> = rows.into_iter().skip(offset).take(page).collect();
        let next = (offset.saturating_add(page) < total).then_some(Token::Offset(offset.saturating_add(page)));
        self.collection_body(tx, &home.path, rows, plan, count, next)
    }

    fn count(&self, tx: &dyn ReadTx, c: &CollectionRef, plan: &QueryPlan) -> Result<u64> {
        let spec = self.spec(c, plan);
        if plan.all_pushed_down() {
            return Ok(tx.count(c.parent, &c.nav, &spec)?);
        }
        Ok(tx.list(c.parent, &c.nav, &spec)?.iter().filter(|r| plan.matches(r)).count() as u64)
    }

    fn collection_body(
        &self,
        tx: &dyn ReadTx,
        path: &str,
        rows: Vec<Row>,
        plan: &QueryPlan,
        count: Option<u64>,
        next: Option<Token>,
    ) -> Result<Response> {
        let mut out = Map::new();
        out.insert(
            "@odata.context".into(),
            Value::String(context_url(&self.req.base_url, self.req.version, &plan.context_path(path))),
        );
        if let Some(n) = count {
            out.insert("@odata.count".into(), Value::from(n));
        }
        if let Some(token) = next {
            out.insert("@odata.nextLink".into(), Value::String(self.next_link(&token)));
        }
        let mut value = Vec::with_capacity(rows.len());
        for row in rows {
            let collection_path = path.to_owned();
            if let Some(shaped) = self.shape(tx, &EntityRef { row, declared: String::new(), collection_path }, plan)? {
                value.push(Value::Object(shaped));
            }
        }
        out.insert("value".into(), Value::Array(value));
        Ok(Self::json(Value::Object(out)))
    }

    /// The same request with the new skiptoken (and no `$skip`: the token already counts it).
    fn next_link(&self, token: &Token) -> String {
        let kept: Vec<&str> = self
            .req
            .query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let name = p.split('=').next().unwrap_or_default().to_ascii_lowercase();
                let name = name.trim_start_matches('$').trim_start_matches("%24");
                name != "skiptoken" && name != "skip"
            })
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("$skiptoken=");
        query.push_str(&token.encode());
        format!("{}/{}/{}?{query}", self.req.base_url, self.req.version.as_str(), self.req.path.trim_matches('/'))
    }

    fn entity(&self, tx: &dyn ReadTx, e: &EntityRef, plan: &QueryPlan) -> Result<Response> {
        let Some(shaped) = self.shape(tx, e, plan)? else {
            return Err(ServiceError::ResourceNotFound(format!(
                "The requested resource '{}' does not exist.",
                e.row.id
            )));
        };
        let context = context_url(
            &self.req.base_url,
            self.req.version,
            &format!("{}/$entity", plan.context_path(&e.collection_path)),
        );
        Ok(Self::json(with_context(context, shaped)))
    }

    /// An entity's wire form with `$select` and `$expand` applied.
    fn shape(&self, tx: &dyn ReadTx, e: &EntityRef, plan: &QueryPlan) -> Result<Option<Map<String, Value>>> {
        let selection = Selection { properties: plan.select.clone() };
        let Some(mut shaped) = shape_entity(self.view.schema, &e.row.type_name, &e.row.body, &selection) else {
            return Ok(None);
        };
        for expand in &plan.expand {
            self.expand(tx, e, expand, &mut shaped)?;
        }
        Ok(Some(shaped))
    }

    fn expand(
        &self,
        tx: &dyn ReadTx,
        e: &EntityRef,
        expand: &ExpandPlan,
        shaped: &mut Map<String, Value>,
    ) -> Result<()> {
        let Some(nav) = self.view.schema.find_navigation(&e.row.type_name, &expand.nav) else {
            return Ok(()); // declared on a derived type this entity is not of
        };
        let path = format!("{}/{}", e.path(), nav.name);
        let context = context_url(&self.req.base_url, self.req.version, &path);
        if let Some(link) = self.view.model.behaviour.reverse_navigation(self.view.lineage(&e.row.type_name), &nav.name)
        {
            let home = home_collection(self.view, &nav.target)?;
            let mut rows: Vec<Row> =
                linked_rows(tx, e.row.seq, link)?.into_iter().filter(|r| expand.plan.eval(r)).collect();
            expand.plan.sort(&mut rows);
            let rows = rows.into_iter().skip(expand.plan.skip.unwrap_or(0)).take(expand.plan.top.unwrap_or(usize::MAX));
            let mut items = Vec::new();
            for row in rows {
                let child = EntityRef { row, declared: nav.target.clone(), collection_path: home.path.clone() };
                if let Some(s) = self.shape(tx, &child, &expand.plan)? {
                    items.push(Value::Object(s));
                }
            }
            shaped.insert(nav.name.clone(), Value::Array(items));
        } else if nav.collection && nav.contains_target {
            let c = CollectionRef {
                parent: e.row.seq,
                nav: nav.name.clone(),
                element: nav.target.clone(),
                cast: None,
                path,
            };
            let mut rows: Vec<Row> = tx
                .list(c.parent, &c.nav, &self.spec(&c, &expand.plan))?
                .into_iter()
                .filter(|r| expand.plan.matches(r))
                .collect();
            expand.plan.sort(&mut rows);
            let rows = rows.into_iter().skip(expand.plan.skip.unwrap_or(0)).take(expand.plan.top.unwrap_or(usize::MAX));
            let mut items = Vec::new();
            for row in rows {
                let child = EntityRef { row, declared: c.element.clone(), collection_path: c.path.clone() };
                if let Some(s) = self.shape(tx, &child, &expand.plan)? {
                    items.push(Value::Object(s));
                }
            }
            shaped.insert(format!("{}@odata.context", nav.name), Value::String(context));
            shaped.insert(nav.name.clone(), Value::Array(items));
        } else if !nav.collection {
            let linked = match tx.link(e.row.seq, &nav.name)? {
                Some(seq) => tx.get_seq(seq)?,
                None => None,
            };
            let value = match linked {
                Some(row) => {
                    let child = entity_for_row(self.view, tx, row)?;
                    self.shape(tx, &child, &expand.plan)?.map_or(Value::Null, Value::Object)
                }
                None => Value::Null,
            };
            shaped.insert(nav.name.clone(), value);
        }
        Ok(())
    }

    fn reference(&self, target: &Target) -> Result<Response> {
        let url = |e: &EntityRef| format!("{}/{}/{}", self.req.base_url, self.req.version.as_str(), e.path());
        match target {
            Target::SingleNav { target: Some(e), .. } => Ok(Self::json(serde_json::json!({
                "@odata.context": context_url(&self.req.base_url, self.req.version, "$ref"),
                "@odata.id": url(e),
            }))),
            Target::SingleNav { nav, target: None, .. } => {
                Err(ServiceError::ResourceNotFound(format!("The navigation property '{}' has no value.", nav.name)))
            }
            _ => Err(ServiceError::NotImplemented("GET of this $ref".into())),
        }
    }
}

/// The rows whose link `link` points at `target`, in link order.
fn linked_rows(tx: &dyn ReadTx, target: i64, link: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for seq in tx.linked_from(target, link)? {
        if let Some(r) = tx.get_seq(seq)? {
            rows.push(r);
        }
    }
    Ok(rows)
}
