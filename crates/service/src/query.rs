//! System query options of one request, planned against the model: what is pushed down
//! to storage, what is evaluated in memory, how the page continues (OData URL §5, §11.2.6.7).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enrollgraph_csdl::ApiVersion;
use enrollgraph_store::{Row, Seq, SqlFragment};

use crate::error::{Result, ServiceError};
use crate::resolve::View;

/// Where the next page starts; opaque to clients (`$skiptoken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// After this row in insertion order (keyset).
    After(Seq),
    /// After this many rows of a sorted result.
    Offset(usize),
}

impl Token {
    /// The opaque text.
    pub fn encode(self) -> String {
        let raw = match self {
            Token::After(s) => format!("a{s}"),
            Token::Offset(o) => format!("o{o}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode(text: &str) -> Result<Token> {
        let bad = || ServiceError::BadQuery(format!("The skip token '{text}' is not valid."));
        let raw = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        match raw.split_at_checked(1) {
            Some(("a", n)) => n.parse().map(Token::After).map_err(|_| bad()),
            Some(("o", n)) => n.parse().map(Token::Offset).map_err(|_| bad()),
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
    /// `$select`.
    pub select: Option<Vec<String>>,
    /// `$expand`.
    pub expand: Vec<ExpandPlan>,
    /// `$top` (Graph: the page size; nextLinks continue).
    pub top: Option<usize>,
    /// `$skip`.
    pub skip: Option<usize>,
    /// `$count=true`.
    pub count: bool,
    /// `$skiptoken`.
    pub token: Option<Token>,
}

impl QueryPlan {
    /// Parses and checks the raw query string against `type_name`.
    ///
    /// # Errors
    /// `BadQuery` naming the problem.
    pub fn parse(_view: View<'_>, raw: &str, _type_name: &str, version: ApiVersion) -> Result<QueryPlan> {
        let mut plan = QueryPlan::default();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            // On beta the `$` of system query options is optional (graph-behaviours.md).
            let bare = name.strip_prefix('$');
            let option = match (bare, version) {
                (Some(b), _) => b.to_ascii_lowercase(),
                (None, ApiVersion::Beta) => name.to_ascii_lowercase(),
                (None, ApiVersion::V1) => continue,
            };
            match option.as_str() {
                "top" => plan.top = Some(number(&name, &value)?),
                "skip" => plan.skip = Some(number(&name, &value)?),
                "count" => plan.count = value.eq_ignore_ascii_case("true"),
                "skiptoken" => plan.token = Some(Token::decode(&value)?),
                "select" => plan.select = Some(value.split(',').map(|s| s.trim().to_owned()).collect()),
                "expand" => {
                    plan.expand = value
                        .split(',')
                        .map(|s| ExpandPlan { nav: s.trim().to_owned(), plan: QueryPlan::default() })
                        .collect();
                }
                "filter" | "orderby" | "search" => {
                    return Err(ServiceError::NotImplemented(format!("${option}")));
                }
                _ if bare.is_some() => {
                    return Err(ServiceError::BadQuery(format!("Query option '{name}' is not supported.")));
                }
                _ => {}
            }
        }
        Ok(plan)
    }

    /// The part of the filter pushed down to SQL.
    pub fn sql_filter(&self) -> Option<SqlFragment> {
        None
    }

    /// True when the whole filter runs in SQL (so SQL may limit and count).
    pub fn all_pushed_down(&self) -> bool {
        true
    }

    /// True when rows come in key order (no `$orderby`), so paging can be keyset.
    pub fn keyset(&self) -> bool {
        true
    }

    /// The in-memory part of the filter.
    pub fn matches(&self, _row: &Row) -> bool {
        true
    }

    /// Sorts by `$orderby` (stable; ties keep insertion order).
    pub fn sort(&self, _rows: &mut [Row]) {}

    /// The `@odata.context` path with `$select`/`$expand` (OData JSON §10.9).
    pub fn context_path(&self, path: &str) -> String {
        let mut items: Vec<String> = self.select.clone().unwrap_or_default();
        items.extend(self.expand.iter().map(|e| format!("{}()", e.nav)));
        if items.is_empty() { path.to_owned() } else { format!("{path}({})", items.join(",")) }
    }
}

fn decode(s: &str) -> Result<String> {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| ServiceError::BadQuery("The query string is not valid UTF-8.".into()))
}

fn number(name: &str, value: &str) -> Result<usize> {
    value.trim().parse().map_err(|_| {
        ServiceError::BadQuery(format!(
            "Invalid value '{value}' for query option '{name}': a non-negative integer is required."
        ))
    })
}
