//! GET: entities, collections (server-driven paging with keyset skiptokens), `$count`,
//! navigations, `$ref`, and the service document.

use super::context_url;
use crate::error::{Result, ServiceError};
use crate::path::Segment;
use crate::query::{ExpandPlan, PagingKey, QueryPlan, Token};
use crate::resolve::{Chain, CollectionRef, EntityRef, Target, View, entity_for_row, home_collection, resolve_planned};
use crate::{Body, Request, Response, Service};
use enrollgraph_csdl::{Selection, write_entity_members_remembered};
use enrollgraph_store::{ListSpec, ReadTx, Row, StoreExt};

/// Where a collection's rows begin.
const VALUE_OPEN: &str = ",\"value\":[";

/// OData JSON Format §5: the service document lists the entity container's singletons
/// and entity sets, from the model.
pub(super) fn service_document(service: &Service, req: &Request) -> Response {
    let schema = service.view(req.version).schema;
    let singletons =
        schema.singletons().iter().map(|(n, _)| serde_json::json!({"name": n, "kind": "Singleton", "url": n}));
    let sets =
        schema.entity_sets().iter().map(|n| serde_json::json!({"name": n.name, "kind": "EntitySet", "url": n.name}));
    let body = serde_json::json!({
        "@odata.context": format!("{}/{}/$metadata", req.base_url, req.version.as_str()),
        "value": singletons.chain(sets).collect::<Vec<_>>(),
    });
    Response { status: 200, body: Body::Json(body), location: None }
}

pub(super) fn get(service: &Service, req: &Request, segments: &[Segment], key: &PagingKey) -> Result<Response> {
    let view = service.view(req.version);
    // The request's query options, bound against the type the path reached.
    let plan_for = |type_name: &str| {
        let mut plan = QueryPlan::parse(
            view,
            &req.query,
            type_name,
            req.version,
            service.config.push_down,
            service.store.dialect(),
        )?;
        plan.open_token(key, &req.tenant)?;
        Ok::<_, ServiceError>(plan)
    };
    // An entity by its key without `$expand` is mostly one statement (the path's chain
    // with the entity's body): read outside a transaction, in a transaction if it needs
    // more (StoreExt::read_single). Anything else runs in a transaction from the start.
    let chain = Chain::of(view, segments);
    let point = chain.as_ref().is_some_and(Chain::ends_in_entity) && !mentions_expand(&req.query);
    let job = |tx: &dyn ReadTx| {
        let target = resolve_planned(view, tx, segments, chain.as_ref())?;
        let out =
            Out { view, req, page_size: service.config.page_size, max_bytes: service.config.max_answer_bytes, key };
        match target {
            Target::Collection(c) => {
                let plan = plan_for(c.effective_type())?;
                out.list(tx, &c, &plan)
            }
            Target::Entity(e) => {
                let plan = plan_for(&e.row.type_name)?;
                out.entity(tx, &e, &plan)
            }
            Target::SingleNav { target: Some(e), .. } => {
                let plan = plan_for(&e.row.type_name)?;
                out.entity(tx, &e, &plan)
            }
            Target::SingleNav { nav, target: None, .. } => {
                Err(ServiceError::ResourceNotFound(format!("The navigation property '{}' has no value.", nav.name)))
            }
            Target::Reverse { target, link, element, .. } => {
                let plan = plan_for(&element)?;
                let home = home_collection(view, &element)?;
                let rows = linked_rows(tx, target.row.seq, &link)?;
                out.list_rows(tx, &home, &element, rows, &plan)
            }
            Target::Count(inner) => match *inner {
                Target::Collection(c) => {
                    let plan = plan_for(c.effective_type())?;
                    let n = out.count(tx, &c, &plan)?;
                    Ok(Response { status: 200, body: Body::Text(n.to_string()), location: None })
                }
                Target::Reverse { target, link, element, .. } => {
                    let plan = plan_for(&element)?;
                    let n = linked_rows(tx, target.row.seq, &link)?.iter().filter(|r| plan.eval(r)).count();
                    Ok(Response { status: 200, body: Body::Text(n.to_string()), location: None })
                }
                Target::Empty { .. } => Ok(Response { status: 200, body: Body::Text("0".into()), location: None }),
                _ => Err(ServiceError::BadQuery("$count is not supported on this resource.".into())),
            },
            Target::Ref(inner) => out.reference(&inner),
            Target::Empty { path } => Ok(Out::json(serde_json::json!({
                "@odata.context": context_url(&req.base_url, req.version, &path),
                "value": [],
            }))),
            Target::Single { path, type_name, value } => {
                let Some(shaped) = enrollgraph_csdl::shape_object(view.schema, &type_name, &value) else {
                    return Err(ServiceError::Internal(format!("type {type_name} missing from the schema")));
                };
                // An entity's context names `$entity`; a complex property's is its path.
                let fragment =
                    if shaped.contains_key("@odata.type") { format!("{path}/$entity") } else { path.clone() };
                let mut body = serde_json::Map::new();
                body.insert("@odata.context".into(), context_url(&req.base_url, req.version, &fragment).into());
                body.extend(shaped);
                Ok(Out::json(serde_json::Value::Object(body)))
            }
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
    };
    if point { service.store.read_single(&req.tenant, job) } else { service.store.read(&req.tenant, job) }
}

/// Whether a query string may hold `$expand` (in any case, or percent-encoded): such a
/// read runs more statements than its path's, so it starts in a transaction.
fn mentions_expand(query: &str) -> bool {
    query.as_bytes().windows(6).any(|w| w.eq_ignore_ascii_case(b"expand"))
}

struct Out<'a> {
    view: View<'a>,
    req: &'a Request,
    page_size: usize,
    /// The largest answer built in memory (`Config::max_answer_bytes`).
    max_bytes: usize,
    /// Seals the next link's `$skiptoken`.
    key: &'a PagingKey,
}

impl Out<'_> {
    /// Refuses an answer that has grown past the bound, before it grows further: whatever
    /// a query asks for, no answer larger than the bound is ever held (issue 18 item 1).
    fn within_bound(&self, out: &str) -> Result<()> {
        if out.len() > self.max_bytes {
            return Err(too_large(self.max_bytes));
        }
        Ok(())
    }

    fn json(body: serde_json::Value) -> Response {
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
            Some(Token::After(_) | Token::Offset(_)) | None if plan.keyset() => {
                if let Some(Token::After(seq)) = plan.token {
                    spec.after = Some(seq);
                }
                if plan.all_pushed_down() {
                    spec.limit = Some(skip.saturating_add(page).saturating_add(1));
                    if plan.expand.is_empty() {
                        return self.stream_page(tx, c, plan, &spec, skip, page);
                    }
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
            // With $orderby the page continues after the last row in the sort order (its
            // key and seq), not after an offset: stable while rows are inserted or deleted
            // before it. The sorted set is read whole (in SQL order when the order
            // translates), so every page costs what the first does.
            token => {
                let mut all = if plan.all_pushed_down() && plan.order_pushed_down() {
                    spec.order = plan.sql_order();
                    tx.list(c.parent, &c.nav, &spec)?
                } else {
                    let mut all: Vec<Row> =
                        tx.list(c.parent, &c.nav, &spec)?.into_iter().filter(|r| plan.matches(r)).collect();
                    plan.sort(&mut all);
                    all
                };
                let start = match token {
                    Some(Token::Key { seq, offset }) => match tx.get_seq(seq)? {
                        Some(anchor) => plan.position_after(&all, &anchor),
                        None => offset, // the anchor was deleted: its position is the best guess
                    },
                    Some(Token::Offset(o)) => o,
                    _ => skip,
                };
                let mut rows: Vec<Row> = all.drain(start.min(all.len())..).take(page.saturating_add(1)).collect();
                let next = if rows.len() > page {
                    rows.truncate(page);
                    rows.last().map(|r| Token::Key { seq: r.seq, offset: start.saturating_add(page) })
                } else {
                    None
                };
                (rows, next)
            }
        };
        let count = if plan.count { Some(self.count(tx, c, plan)?) } else { None };
        self.collection_body(tx, &c.path, c.effective_type(), rows, plan, count, next)
    }

    /// One keyset page when SQL does all the selecting and nothing is expanded: each row
    /// is shaped straight from the store's buffers as it is read, with no `Row` copied
    /// out (issue 8's W3). Pages exactly as the general path does: `skip` rows, then
    /// `page`, and a next link after the page's last row when one more exists.
    fn stream_page(
        &self,
        tx: &dyn ReadTx,
        c: &CollectionRef,
        plan: &QueryPlan,
        spec: &ListSpec,
        skip: usize,
        page: usize,
    ) -> Result<Response> {
        let selection = Selection { properties: plan.select.clone() };
        let schema = self.view.schema;
        let count = if plan.count { Some(self.count(tx, c, plan)?) } else { None };
        // Rows go straight after the head; a next link, known only at the end, is put in
        // the head then (a copy of the head's tail, not of the whole page).
        let mut out = self.collection_start(&c.path, plan, count, None, page.min(128) * 512);
        let link_at = out.len() - VALUE_OPEN.len();
        let start = out.len();
        let (mut seen, mut last, mut more) = (0usize, None, false);
        let (mut too_big, max_bytes) = (false, self.max_bytes);
        tx.list_each(c.parent, &c.nav, spec, &mut |r| {
            seen += 1;
            if seen <= skip {
                return Ok(());
            }
            if seen > skip.saturating_add(page) {
                more = true;
                return Ok(());
            }
            if too_big {
                return Ok(());
            }
            last = Some(r.seq);
            let mark = out.len();
            if mark > start {
                out.push(',');
            }
            out.push('{');
            if write_entity_members_remembered(
                schema,
                r.type_name,
                r.raw,
                &selection,
                Some(c.effective_type()),
                &mut out,
            ) {
                out.push('}');
            } else {
                out.truncate(mark);
            }
            too_big = out.len() > max_bytes;
            Ok(())
        })?;
        if too_big {
            return Err(too_large(max_bytes));
        }
        out.push_str("]}");
        if let (true, Some(seq)) = (more, last) {
            let mut link = String::from(",\"@odata.nextLink\":");
            push_str(&mut link, &self.next_link(&Token::After(seq)));
            out.insert_str(link_at, &link);
        }
        Ok(Response { status: 200, body: Body::Raw(out), location: None })
    }

    /// Lists rows the store did not filter (a reverse navigation): filter, order and page
    /// them in memory, by offset.
    fn list_rows(
        &self,
        tx: &dyn ReadTx,
        home: &CollectionRef,
        declared: &str,
        rows: Vec<Row>,
        plan: &QueryPlan,
    ) -> Result<Response> {
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
        self.collection_body(tx, &home.path, declared, rows, plan, count, next)
    }

    fn count(&self, tx: &dyn ReadTx, c: &CollectionRef, plan: &QueryPlan) -> Result<u64> {
        let spec = self.spec(c, plan);
        if plan.all_pushed_down() {
            return Ok(tx.count(c.parent, &c.nav, &spec)?);
        }
        Ok(tx.list(c.parent, &c.nav, &spec)?.iter().filter(|r| plan.matches(r)).count() as u64)
    }

    /// `declared` is the collection's declared item type (rulings.md 4).
    #[allow(clippy::too_many_arguments)]
    fn collection_body(
        &self,
        tx: &dyn ReadTx,
        path: &str,
        declared: &str,
        rows: Vec<Row>,
        plan: &QueryPlan,
        count: Option<u64>,
        next: Option<Token>,
    ) -> Result<Response> {
        let mut out = self.collection_start(path, plan, count, next, rows.len() * 512);
        let mut first = true;
        let selection = Selection { properties: plan.select.clone() };
        for row in rows {
            let mark = out.len();
            if !first {
                out.push(',');
            }
            let written = if plan.expand.is_empty() {
                // No expansion: the entity alone, without building an EntityRef per row.
                out.push('{');
                let known = write_entity_members_remembered(
                    self.view.schema,
                    &row.type_name,
                    &row.raw,
                    &selection,
                    Some(declared),
                    &mut out,
                );
                out.push('}');
                known
            } else {
                let e = EntityRef { row, declared: declared.to_owned(), collection_path: path.to_owned() };
                self.write_entity(tx, &e, plan, None, Some(declared), &mut out)?
            };
            if written {
                first = false;
            } else {
                out.truncate(mark);
            }
            self.within_bound(&out)?;
        }
        out.push_str("]}");
        Ok(Response { status: 200, body: Body::Raw(out), location: None })
    }

    /// A collection response up to the opening `[` of `value`.
    fn collection_start(
        &self,
        path: &str,
        plan: &QueryPlan,
        count: Option<u64>,
        next: Option<Token>,
        capacity: usize,
    ) -> String {
        let mut out = String::with_capacity(256 + capacity);
        out.push_str("{\"@odata.context\":");
        push_str(&mut out, &context_url(&self.req.base_url, self.req.version, &plan.context_path(path)));
        if let Some(n) = count {
            out.push_str(",\"@odata.count\":");
            out.push_str(&n.to_string());
        }
        if let Some(token) = next {
            out.push_str(",\"@odata.nextLink\":");
            push_str(&mut out, &self.next_link(&token));
        }
        out.push_str(VALUE_OPEN);
        out
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
        query.push_str(&token.encode(self.key, &self.req.tenant));
        format!("{}/{}/{}?{query}", self.req.base_url, self.req.version.as_str(), self.req.path.trim_matches('/'))
    }

    fn entity(&self, tx: &dyn ReadTx, e: &EntityRef, plan: &QueryPlan) -> Result<Response> {
        let mut fragment = plan.context_path(&e.collection_path);
        fragment.push_str("/$entity");
        let context = context_url(&self.req.base_url, self.req.version, &fragment);
        let mut out = String::with_capacity(1024);
        if !self.write_entity(tx, e, plan, Some(&context), None, &mut out)? {
            return Err(ServiceError::ResourceNotFound(format!(
                "The requested resource '{}' does not exist.",
                e.row.id
            )));
        }
        Ok(Response { status: 200, body: Body::Raw(out), location: None })
    }

    /// Writes an entity's wire form with `$select` and `$expand` applied (and an
    /// `@odata.context` first, when given); false when this version has no such type.
    /// `item_of` is the declared type of the collection it is an item of (rulings.md 4).
    fn write_entity(
        &self,
        tx: &dyn ReadTx,
        e: &EntityRef,
        plan: &QueryPlan,
        context: Option<&str>,
        item_of: Option<&str>,
        out: &mut String,
    ) -> Result<bool> {
        let selection = Selection { properties: plan.select.clone() };
        out.push('{');
        if let Some(c) = context {
            out.push_str("\"@odata.context\":");
            push_str(out, c);
            out.push(',');
        }
        // Not remembered (`write_entity_members_remembered`, used by lists): for one entity
        // the memo's hash and whole-text compare save ~3 k instructions but lost 4 % of W2's
        // wall-clock throughput against shaping (two paired bench runs, 2026-12-05:
        // 36.3/36.8 k req/s remembered, 37.9/38.2 k shaped; docs/performance.md, fifth round).
        if !enrollgraph_csdl::write_entity_members(
            self.view.schema,
            &e.row.type_name,
            &e.row.raw,
            &selection,
            item_of,
            out,
        ) {
            return Ok(false);
        }
        self.within_bound(out)?;
        for expand in &plan.expand {
            self.expand(tx, e, expand, out)?;
            self.within_bound(out)?;
        }
        out.push('}');
        Ok(true)
    }

    /// Writes `rows` as a JSON array of entities of `collection_path`.
    fn write_array(
        &self,
        tx: &dyn ReadTx,
        rows: impl Iterator<Item = Row>,
        declared: &str,
        collection_path: &str,
        plan: &QueryPlan,
        out: &mut String,
    ) -> Result<()> {
        out.push('[');
        let mut first = true;
        for row in rows {
            let child = EntityRef { row, declared: declared.to_owned(), collection_path: collection_path.to_owned() };
            let mark = out.len();
            if !first {
                out.push(',');
            }
            if self.write_entity(tx, &child, plan, None, Some(declared), out)? {
                first = false;
            } else {
                out.truncate(mark);
            }
        }
        out.push(']');
        Ok(())
    }

    fn expand(&self, tx: &dyn ReadTx, e: &EntityRef, expand: &ExpandPlan, out: &mut String) -> Result<()> {
        let Some(nav) = self.view.schema.find_navigation(&e.row.type_name, &expand.nav) else {
            return Ok(()); // declared on a derived type this entity is not of
        };
        let path = format!("{}/{}", e.path(), nav.name);
        let window = |rows: Vec<Row>| {
            rows.into_iter().skip(expand.plan.skip.unwrap_or(0)).take(expand.plan.top.unwrap_or(usize::MAX))
        };
        if let Some(link) = self.view.model.behaviour.reverse_navigation(self.view.lineage(&e.row.type_name), &nav.name)
        {
            let home = home_collection(self.view, &nav.target)?;
            let mut rows: Vec<Row> =
                linked_rows(tx, e.row.seq, link)?.into_iter().filter(|r| expand.plan.eval(r)).collect();
            expand.plan.sort(&mut rows);
            push_member(out, &nav.name);
            self.write_array(tx, window(rows), &nav.target, &home.path, &expand.plan, out)?;
        } else if nav.collection && nav.contains_target {
            let c = CollectionRef {
                parent: e.row.seq,
                parent_id: Some(e.row.id.clone()),
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
            push_member(out, &format!("{}@odata.context", nav.name));
            push_str(out, &context_url(&self.req.base_url, self.req.version, &c.path));
            push_member(out, &nav.name);
            self.write_array(tx, window(rows), &c.element, &c.path, &expand.plan, out)?;
        } else if !nav.collection {
            let linked = match tx.link(e.row.seq, &nav.name)? {
                Some(seq) => tx.get_seq(seq)?,
                None => None,
            };
            push_member(out, &nav.name);
            let mark = out.len();
            let written = match linked {
                Some(row) => {
                    let child = entity_for_row(self.view, tx, row)?;
                    self.write_entity(tx, &child, &expand.plan, None, None, out)?
                }
                None => false,
            };
            if !written {
                out.truncate(mark);
                out.push_str("null");
            }
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

fn too_large(max_bytes: usize) -> ServiceError {
    ServiceError::answer_too_large(max_bytes)
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

/// Appends `s` as a JSON string, escaped as serde_json escapes (quote, backslash, and
/// controls; nothing else), without the copy and second buffer that going through a
/// `Value` cost on every context URL and member name (callgrind, issue 8's W2).
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_to_escape(bytes, start) {
        // `i` is at an ASCII byte, so both slices end on character boundaries.
        out.push_str(s.get(start..i).unwrap_or_default());
        match bytes.get(i).copied().unwrap_or_default() {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b => out.push_str(&format!("\\u{b:04x}")),
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// The index of the first byte at or after `from` that a JSON string must escape: a
/// control (below 0x20), `"` or `\`.
///
/// Eight bytes at a time while none does: a context URL is ~130 bytes, and testing them one
/// by one was ~9 instructions a byte, 2.2 k of a point read's 64.0 k (callgrind, twelfth
/// round; 0.7 k now). The word tests are the classic "has a byte less than n" and "has a zero byte"
/// (`(x - 0x01…·n) & !x & 0x80…`), exact for "is there any": a borrow only crosses from
/// a byte that already matched, and bytes of 0x80 and above (UTF-8) never match.
fn next_to_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0;
    let mut i = from;
    while let Some(word) = bytes.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let x = u64::from_le_bytes(word);
        if has_below(x, 0x20)
            || has_below(x ^ (ONES * u64::from(b'"')), 1)
            || has_below(x ^ (ONES * u64::from(b'\\')), 1)
        {
            break;
        }
        i += 8;
    }
    bytes.get(i..)?.iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\').map(|p| i + p)
}

/// Appends `,"name":`.
fn push_member(out: &mut String, name: &str) {
    out.push(',');
    push_str(out, name);
    out.push(':');
}

#[cfg(test)]
mod push_str_tests {
    #[test]
    fn escapes_as_serde_json_does() {
        for s in [
            "",
            "plain",
            "a\"b\\c",
            "tab\there\nline\r",
            "\u{1}\u{8}\u{c}\u{1f} ",
            "ünïcödé ✓ /slash'quote'",
            "https://x/beta/$metadata#a('b')/c",
        ] {
            let mut out = String::new();
            super::push_str(&mut out, s);
            assert_eq!(out, serde_json::Value::String(s.to_owned()).to_string(), "{s:?}");
        }
    }

    /// The eight-byte scan against serde_json: every byte that needs escaping (and some that
    /// do not, beside them: 0x1f/0x20, `!`/`#` around `"`, `[`/`]` around `\`, 0x7f, 0x80,
    /// multi-byte characters) at every offset of strings long enough for one, two and three
    /// words, alone and in pairs, so each is found in the first, a middle and the last word
    /// and in the tail after the words.
    #[test]
    fn the_word_scan_finds_every_byte_at_every_offset() {
        let mut specials: Vec<String> = (0u8..0x20).map(|b| char::from(b).to_string()).collect();
        specials.extend(["\"", "\\", " ", "!", "#", "[", "]", "\u{7f}", "\u{80}", "é", "✓", "😀"].map(str::to_owned));
        let mut checked = 0;
        for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25] {
            for at in 0..=len {
                for (i, a) in specials.iter().enumerate() {
                    // One special, then a second one a few bytes later (or none).
                    for b in [None, Some(&specials[(i * 7 + 3) % specials.len()])] {
                        let mut s = "x".repeat(at);
                        s.push_str(a);
                        if let Some(b) = b {
                            s.push_str(&"y".repeat(len % 5));
                            s.push_str(b);
                        }
                        s.push_str(&"z".repeat(len - at));
                        let mut out = String::new();
                        super::push_str(&mut out, &s);
                        assert_eq!(out, serde_json::Value::String(s.clone()).to_string(), "{s:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }
}
