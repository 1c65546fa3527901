//! System query options of one request, planned against the model (OData URL §5,
//! §11.2.6.7): parsed and bound by `enrollgraph-odata`, the filter and order translated
//! to SQL where that is exact (pushed down) and evaluated in memory otherwise, and the
//! page continued by an opaque `$skiptoken`.

use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enrollgraph_csdl::ApiVersion;
use enrollgraph_odata::{
    self as odata, BoundExpand, BoundExpr, BoundFilter, BoundOrderBy, BoundQuery, BoundSelect, CompareOp, Const, Kind,
    ParseConfig, Root, SqlDialect, SqlValue, Step,
};
use enrollgraph_store::{Dialect, ListSpec, Row, Seq, SqlFragment, SqlParam};
use serde_json::Value;

use crate::error::{Result, ServiceError};
use crate::resolve::View;

/// How deep `$expand`s may nest: one level, as Graph documents ("No support for more than
/// one level of expand", Microsoft Graph known issue 13635, "Some limitations apply to query
/// parameters", https://developer.microsoft.com/en-us/graph/known-issues/?search=13635).
/// A nested `$expand` is a `400` from the parser, before anything is read: cyclic
/// navigations (`assignedDevices` ↔ `deploymentProfile`) cannot multiply an answer (issue 18).
pub const MAX_EXPAND_DEPTH: usize = 1;

/// The most values one `in (...)` list may hold. Graph allows 15 by default and, with
/// advanced queries, as many as fit a 2,048-character URL (known issue 13635, above), which
/// is under 1,000 values; a longer list is a `400`.
pub const MAX_IN_VALUES: usize = 1_000;

/// Where the next page starts; opaque to clients (`$skiptoken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// After this row in insertion order (keyset).
    After(Seq),
    /// After this many rows (reverse navigations, sorted in memory).
    Offset(usize),
    /// After this row in a `$orderby` order (its position then, if it is deleted).
    Key {
        /// The last row of the previous page.
        seq: Seq,
        /// Its position then.
        offset: usize,
    },
}

/// Seals continuation tokens (issue 18 item 12): a token is the position encrypted and
/// authenticated with ChaCha20-Poly1305 under a key kept in the database (so every replica
/// opens what another issued), with the tenant as associated data. A client sees neither
/// the row sequence (shared by all tenants: it would show another tenant's write rate) nor
/// can it forge, alter or carry a token to another tenant: each of those is a `400`.
pub struct PagingKey(ring::aead::LessSafeKey);

impl std::fmt::Debug for PagingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PagingKey(..)")
    }
}

const NONCE_LEN: usize = ring::aead::NONCE_LEN;

impl PagingKey {
    /// A key from 32 bytes.
    ///
    /// # Errors
    /// Any other length.
    pub fn new(bytes: &[u8]) -> Result<PagingKey> {
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, bytes)
            .map(|k| PagingKey(ring::aead::LessSafeKey::new(k)))
            .map_err(|_| ServiceError::Internal("the paging key is not 32 bytes".into()))
    }
}

impl Token {
    /// The opaque text, sealed for `tenant`: a random nonce, then the position encrypted.
    pub fn encode(self, key: &PagingKey, tenant: &str) -> String {
        let raw = match self {
            Token::After(s) => format!("a{s}"),
            Token::Offset(o) => format!("o{o}"),
            Token::Key { seq, offset } => format!("k{seq}.{offset}"),
        };
        let mut nonce = [0u8; NONCE_LEN];
        // A failed random source leaves the nonce zero: still sealed, only then repeatable.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce);
        let mut sealed = raw.into_bytes();
        let tenant = tenant.to_ascii_lowercase();
        let aad = ring::aead::Aad::from(tenant.as_bytes());
        if key.0.seal_in_place_append_tag(ring::aead::Nonce::assume_unique_for_key(nonce), aad, &mut sealed).is_err() {
            sealed.clear();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens a token sealed for `tenant`.
    ///
    /// # Errors
    /// `BadQuery` for anything this key did not seal for this tenant.
    pub fn decode(text: &str, key: &PagingKey, tenant: &str) -> Result<Token> {
        let bad = || ServiceError::BadQuery(format!("The skip token '{text}' is not valid."));
        let mut bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        if bytes.len() < NONCE_LEN {
            return Err(bad());
        }
        let sealed = bytes.split_off(NONCE_LEN);
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(&bytes).map_err(|_| bad())?;
        let mut sealed = sealed;
        // Tenant ids compare case-insensitively (GUIDs, domain names).
        let tenant = tenant.to_ascii_lowercase();
        let aad = ring::aead::Aad::from(tenant.as_bytes());
        let opened = key.0.open_in_place(nonce, aad, &mut sealed).map_err(|_| bad())?;
        let raw = String::from_utf8(opened.to_vec()).map_err(|_| bad())?;
        match raw.split_at_checked(1) {
            Some(("a", n)) => n.parse().map(Token::After).map_err(|_| bad()),
            Some(("o", n)) => n.parse().map(Token::Offset).map_err(|_| bad()),
            Some(("k", n)) => {
                let (seq, offset) = n.split_once('.').ok_or_else(bad)?;
                Ok(Token::Key { seq: seq.parse().map_err(|_| bad())?, offset: offset.parse().map_err(|_| bad())? })
            }
            _ => Err(bad()),
        }
    }
}

/// `$expand` of one navigation with its nested options.
#[derive(Debug, Clone)]
pub struct ExpandPlan {
    /// The navigation property.
    pub nav: String,
    /// Nested options.
    pub plan: QueryPlan,
}

/// The options of one request (or one `$expand` level).
#[derive(Debug, Clone, Default)]
pub struct QueryPlan {
    /// `$select`, as the top-level property names to keep (`None`: all).
    pub select: Option<Vec<String>>,
    /// `$select` as written, for `@odata.context`.
    select_text: Vec<String>,
    /// `$expand`.
    pub expand: Vec<ExpandPlan>,
    /// `$top` (Graph: the page size; nextLinks continue).
    pub top: Option<usize>,
    /// `$skip`.
    pub skip: Option<usize>,
    /// `$count=true`.
    pub count: bool,
    /// `$skiptoken`, once opened ([`QueryPlan::open_token`]).
    pub token: Option<Token>,
    /// `$skiptoken` as sent.
    skiptoken: Option<String>,
    filter: Option<BoundFilter>,
    /// The filter as SQL, when the whole filter translates.
    sql_filter: Option<SqlFragment>,
    orderby: Vec<BoundOrderBy>,
    /// The order as SQL keys, when every key translates.
    sql_order: Option<SqlFragment>,
    /// Equalities the filter implies on indexed paths (see [`index_hints`]).
    hints: Vec<(Vec<String>, SqlParam)>,
}

/// The `path eq 'text'` conjuncts at the top of `expr` whose path is indexed: redundant
/// with the exact predicate, but spelled so that the store can answer them from an
/// expression index (a selective filter over 100,000 rows reads only its matches).
fn index_hints(expr: &BoundExpr, indexed: &[Vec<String>], out: &mut Vec<(Vec<String>, SqlParam)>) {
    match expr {
        BoundExpr::And(a, b) => {
            index_hints(a, indexed, out);
            index_hints(b, indexed, out);
        }
        BoundExpr::Compare { op: CompareOp::Eq, kind: Kind::String | Kind::Enum(_), left, right } => {
            let (path, value) = match (left.as_ref(), right.as_ref()) {
                (BoundExpr::Value { path, .. }, BoundExpr::Const(Const::Text(v)))
                | (BoundExpr::Const(Const::Text(v)), BoundExpr::Value { path, .. }) => (path, v),
                _ => return,
            };
            if path.root != Root::It {
                return;
            }
            let names: Vec<String> = path
                .steps
                .iter()
                .filter_map(|s| match s {
                    Step::Property(p) => Some(p.clone()),
                    Step::Cast { .. } => None,
                })
                .collect();
            if indexed.contains(&names) {
                out.push((names, SqlParam::Text(value.clone())));
            }
        }
        _ => {}
    }
}

/// Every query error is a 400 whose message names the problem, unsupported functions and
/// options included (issue 3; Graph answers 400 for them too).
fn bad_query(e: &odata::Error) -> ServiceError {
    ServiceError::BadQuery(e.message.clone())
}

fn param(v: SqlValue) -> SqlParam {
    match v {
        SqlValue::Null => SqlParam::Null,
        SqlValue::Bool(b) => SqlParam::Bool(b),
        SqlValue::Int(i) => SqlParam::Int(i),
        SqlValue::Double(d) => SqlParam::Double(d),
        SqlValue::Text(t) => SqlParam::Text(t),
    }
}

impl QueryPlan {
    /// Parses, binds and plans the raw query string for entities of `type_name`.
    ///
    /// # Errors
    /// `BadQuery` naming the problem (unknown property on which type, unexpected token at
    /// which position, unsupported function).
    pub fn parse(
        view: View<'_>,
        raw: &str,
        type_name: &str,
        version: ApiVersion,
        push_down: bool,
        dialect: Dialect,
    ) -> Result<QueryPlan> {
        if raw.is_empty() {
            return Ok(QueryPlan::default());
        }
        // `$format=json` asks for what every answer is already (OData URL §5.1.10).
        let kept: Vec<&str> = raw
            .split('&')
            .filter(|p| {
                let (name, value) = p.split_once('=').unwrap_or((p, ""));
                let name = name.trim_start_matches("%24").trim_start_matches('$');
                !(name.eq_ignore_ascii_case("format")
                    && (value.eq_ignore_ascii_case("json") || value.eq_ignore_ascii_case("application%2Fjson")))
            })
            .collect();
        let raw = kept.join("&");
        let raw = raw.as_str();
        // On beta the `$` of system query options is optional (graph-behaviours.md "Paging").
        let cfg = ParseConfig {
            dollar_optional: version == ApiVersion::Beta,
            max_expand_depth: MAX_EXPAND_DEPTH,
            max_in_values: MAX_IN_VALUES,
            ..ParseConfig::default()
        };
        let options = odata::parse_query(raw, &cfg).map_err(|e| bad_query(&e))?;
        if options.search.is_some() {
            return Err(ServiceError::BadQuery("The query option '$search' is not supported on this resource.".into()));
        }
        let bound = odata::bind(&options, view.schema, type_name).map_err(|e| bad_query(&e))?;
        Self::from_bound(view, bound, type_name, push_down, dialect)
    }

    fn from_bound(
        view: View<'_>,
        bound: BoundQuery,
        type_name: &str,
        push_down: bool,
        store_dialect: Dialect,
    ) -> Result<QueryPlan> {
        // The store's SQL: both keep the JSON properties in `body` (jsonb on PostgreSQL).
        let dialect: Box<dyn SqlDialect> = match store_dialect {
            Dialect::Sqlite => Box::new(odata::Sqlite::default()),
            Dialect::Postgres => Box::new(odata::Postgres::default()),
        };
        let dialect = dialect.as_ref();
        let first = ListSpec::FIRST_PARAM;
        let sql_filter = bound
            .filter
            .as_ref()
            .and_then(|f| odata::filter_to_sql(f, dialect, first))
            .map(|s| SqlFragment { text: s.text, params: s.params.into_iter().map(param).collect() });
        let order_first = first + sql_filter.as_ref().map_or(0, |f| f.params.len());
        let sql_order = if bound.orderby.is_empty() || !push_down {
            None
        } else {
            odata::orderby_to_sql(&bound.orderby, dialect, order_first)
                .map(|o| SqlFragment { text: o.clause(), params: o.params.into_iter().map(param).collect() })
        };
        let (select, select_text) = match &bound.select {
            None => (None, Vec::new()),
            Some(items) => {
                let mut names = Vec::new();
                let mut text = Vec::new();
                for item in items {
                    match item {
                        BoundSelect::All => {
                            names.push("*".to_owned());
                            text.push("*".to_owned());
                        }
                        BoundSelect::Path(segments) => {
                            // A path selects its first property whole (`target/groupId` → `target`).
                            if let Some(odata::Segment::Property(p)) =
                                segments.iter().find(|s| matches!(s, odata::Segment::Property(_)))
                            {
                                names.push(p.clone());
                            }
                            text.push(
                                segments
                                    .iter()
                                    .map(|s| match s {
                                        odata::Segment::Property(p) | odata::Segment::Cast(p) => p.as_str(),
                                    })
                                    .collect::<Vec<_>>()
                                    .join("/"),
                            );
                        }
                    }
                }
                // Some services answer their key whatever `$select` says (behaviour.json
                // `keyAlwaysSelected`); the context URL still shows the `$select` as written.
                if !names.iter().any(|n| n == "*" || n == "id")
                    && view.model.behaviour.key_always_selected(view.lineage(type_name))
                {
                    names.push("id".to_owned());
                }
                (Some(names), text)
            }
        };
        let mut expand = Vec::new();
        for e in bound.expand {
            match e {
                BoundExpand::All => {
                    for t in view.schema.self_and_derived(type_name) {
                        for st in view.schema.lineage(&t) {
                            for n in &st.navigations {
                                if !expand.iter().any(|x: &ExpandPlan| x.nav == n.name) {
                                    expand.push(ExpandPlan { nav: n.name.clone(), plan: QueryPlan::default() });
                                }
                            }
                        }
                    }
                }
                BoundExpand::Navigation { name, target_type, options, .. } => {
                    let plan = Self::from_bound(view, *options, &target_type, push_down, store_dialect)?;
                    expand.push(ExpandPlan { nav: name, plan });
                }
            }
        }
        let mut hints = Vec::new();
        if let Some(f) = bound.filter.as_ref().filter(|_| push_down) {
            index_hints(&f.expr, &view.model.behaviour.indexes, &mut hints);
        }
        let to_usize = |v: Option<u64>| v.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        Ok(QueryPlan {
            select,
            select_text,
            expand,
            top: to_usize(bound.top),
            skip: to_usize(bound.skip),
            count: bound.count.unwrap_or(false),
            token: None,
            skiptoken: bound.skiptoken,
            filter: bound.filter,
            sql_filter,
            orderby: bound.orderby,
            sql_order,
            hints,
        })
    }

    /// Opens the `$skiptoken` sent, sealed for `tenant` (a `400` otherwise).
    ///
    /// # Errors
    /// `BadQuery` for a token this key did not seal for this tenant.
    pub fn open_token(&mut self, key: &PagingKey, tenant: &str) -> Result<()> {
        self.token = self.skiptoken.as_deref().map(|t| Token::decode(t, key, tenant)).transpose()?;
        Ok(())
    }

    /// The filter pushed down to SQL, if the whole filter translates.
    pub fn sql_filter(&self) -> Option<SqlFragment> {
        self.sql_filter.clone()
    }

    /// Redundant equalities for the store's expression indexes.
    pub fn hints(&self) -> Vec<(Vec<String>, SqlParam)> {
        self.hints.clone()
    }

    /// The order pushed down to SQL, if every key translates.
    pub fn sql_order(&self) -> Option<SqlFragment> {
        self.sql_order.clone()
    }

    /// True when the whole filter runs in SQL (so SQL may limit and count).
    pub fn all_pushed_down(&self) -> bool {
        self.filter.is_none() || self.sql_filter.is_some()
    }

    /// True when rows come in key order (no `$orderby`), so paging can be keyset.
    pub fn keyset(&self) -> bool {
        self.orderby.is_empty()
    }

    /// True when the order is applied by SQL (or there is none).
    pub fn order_pushed_down(&self) -> bool {
        self.orderby.is_empty() || self.sql_order.is_some()
    }

    /// The in-memory part of the filter (true when SQL already applied it).
    pub fn matches(&self, row: &Row) -> bool {
        match (&self.filter, &self.sql_filter) {
            (Some(f), None) => odata::eval(f, &row.type_name, &Value::Object(row.body())),
            _ => true,
        }
    }

    /// The whole filter, in memory (for rows the store did not filter).
    pub fn eval(&self, row: &Row) -> bool {
        self.filter.as_ref().is_none_or(|f| odata::eval(f, &row.type_name, &Value::Object(row.body())))
    }

    /// Sorts by `$orderby` in memory (stable; ties keep insertion order).
    pub fn sort(&self, rows: &mut Vec<Row>) {
        if self.orderby.is_empty() {
            return;
        }
        let mut keyed: Vec<(Value, Row)> = rows.drain(..).map(|r| (Value::Object(r.body()), r)).collect();
        keyed.sort_by(|(va, ra), (vb, rb)| {
            odata::compare(&self.orderby, (&ra.type_name, va), (&rb.type_name, vb)).then(Ordering::Equal)
        });
        rows.extend(keyed.into_iter().map(|(_, r)| r));
    }

    /// Where the rows after `anchor` start in `rows` (sorted by this plan, ties by seq).
    pub fn position_after(&self, rows: &[Row], anchor: &Row) -> usize {
        let anchor_value = Value::Object(anchor.body());
        rows.partition_point(|r| {
            let order = odata::compare(
                &self.orderby,
                (&r.type_name, &Value::Object(r.body())),
                (&anchor.type_name, &anchor_value),
            );
            order.then(r.seq.cmp(&anchor.seq)) != Ordering::Greater
        })
    }

    /// The `@odata.context` path with `$select`/`$expand` (OData JSON §10.9).
    pub fn context_path(&self, path: &str) -> String {
        let items = self.context_items();
        if items.is_empty() { path.to_owned() } else { format!("{path}({})", items.join(",")) }
    }

    fn context_items(&self) -> Vec<String> {
        let mut items: Vec<String> = self.select_text.clone();
        // An expansion shows its nested $select/$expand, else empty parentheses (OData JSON §10.9).
        items.extend(self.expand.iter().map(|e| format!("{}({})", e.nav, e.plan.context_items().join(","))));
        items
    }
}
