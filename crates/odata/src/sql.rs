//! Translation of bound `$filter` / `$orderby` to SQL over rows `(id, type, body)`,
//! where `body` holds the entity as a JSON document (URL Conventions §5.1.1, §5.1.5).
//!
//! Values are always bound parameters. The translation has the same two-valued
//! semantics as [`crate::eval`]: every predicate yields TRUE or FALSE, never NULL
//! (comparisons are wrapped in `COALESCE(..., FALSE)`, equality is null-safe), JSON
//! values of an unexpected JSON type read as NULL, DateTimeOffsets compare as instants
//! through the same key as [`crate::eval`]. What cannot be translated with certainty
//! (`tolower`/`toupper`, whose Unicode case mapping differs between engines, negative
//! `substring` arguments) yields `None`, and the caller evaluates in memory.

use crate::ast::Function;
use crate::bind::{BoundExpr, BoundFilter, BoundOrderBy, BoundPath, CompareOp, Const, Kind, Root, Step};
use crate::datetime::KEY_OFFSET;

/// A parameter value (bind it in order, starting at the `first_param` index).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// NULL
    Null,
    /// A boolean (SQLite: bind as integer 0/1).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// Text.
    Text(String),
}

/// An SQL fragment and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    /// The SQL text, with placeholders numbered from the `first_param` given.
    pub text: String,
    /// The parameter values, in placeholder order.
    pub params: Vec<SqlValue>,
}

/// One `ORDER BY` key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderTerm {
    /// The sort expression.
    pub expr: String,
    /// Descending.
    pub descending: bool,
    /// The full term: `expr ASC|DESC` plus the null placement the dialect needs so
    /// that nulls sort first ascending and last descending (URL Conventions §5.1.5).
    pub term: String,
}

/// A translated `$orderby`.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlOrderBy {
    /// The keys, in order.
    pub terms: Vec<OrderTerm>,
    /// Parameters referenced by the terms.
    pub params: Vec<SqlValue>,
}

impl SqlOrderBy {
    /// The terms joined with `, ` (without `ORDER BY`).
    pub fn clause(&self) -> String {
        self.terms.iter().map(|t| t.term.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// The JSON value types that translation distinguishes (RFC 8259 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// A string.
    Text,
    /// A number.
    Number,
    /// `true` / `false`.
    Bool,
    /// An object.
    Object,
    /// An array.
    Array,
}

/// What a JSON location starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonBase {
    /// The row's body column.
    Body,
    /// The current element of the lambda iteration with this alias.
    Element(String),
}

/// A location inside a JSON document: a base and a path of member names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonNode {
    /// Where the path starts.
    pub base: JsonBase,
    /// Member names.
    pub path: Vec<String>,
}

/// The SQL engine specifics that translation needs.
pub trait SqlDialect {
    /// The entity id column (text).
    fn id_column(&self) -> &str;
    /// The entity type column (qualified name, no `#`).
    fn type_column(&self) -> &str;
    /// The JSON body column.
    fn body_column(&self) -> &str;
    /// The placeholder for parameter number `index` holding `value`.
    fn placeholder(&self, index: usize, value: &SqlValue) -> String;
    /// A predicate: the node exists and has JSON type `kind` (never NULL not required).
    fn json_is(&self, node: &JsonNode, kind: JsonKind) -> String;
    /// The node's value as SQL text/number/boolean (only meaningful when `json_is`).
    fn json_get(&self, node: &JsonNode, kind: JsonKind) -> String;
    /// A FROM item iterating the elements of the array at `node` (none if not an array).
    fn json_elements(&self, node: &JsonNode, alias: &str) -> String;
    /// The FALSE literal.
    fn false_literal(&self) -> &'static str;
    /// A predicate from a nullable boolean value: true only when it is TRUE.
    fn is_true(&self, value: &str) -> String;
    /// Null-safe equality (`IS` / `IS NOT DISTINCT FROM`).
    fn null_safe_eq(&self, a: &str, b: &str) -> String;
    /// Makes a text operand compare by code point.
    fn binary_text(&self, text: &str) -> String;
    /// 1-based position of `needle` in `hay`, 0 when absent (1 for an empty needle).
    fn position(&self, hay: &str, needle: &str) -> String;
    /// Removes any of the characters of `chars` from both ends of `text`.
    fn trim_chars(&self, text: &str, chars: &str) -> String;
    /// Unicode case mapping, when the engine does it exactly like Rust; `None` otherwise.
    fn case_map(&self, text: &str, upper: bool) -> Option<String>;
    /// The DateTimeOffset comparison key of a nullable text value (see `datetime`).
    fn datetime_key(&self, text: &str) -> String;
    /// What follows `ASC`/`DESC` so that nulls sort first ascending, last descending.
    fn nulls(&self, descending: bool) -> &'static str;
}

/// SQLite 3.38+ with the JSON1 functions; `body` is JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sqlite {
    /// Id column name (default `id`).
    pub id: String,
    /// Type column name (default `type`).
    pub type_: String,
    /// Body column name (default `body`).
    pub body: String,
}

/// PostgreSQL 12+; `body` is `jsonb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postgres {
    /// Id column name (default `id`).
    pub id: String,
    /// Type column name (default `type`).
    pub type_: String,
    /// Body column name (default `body`).
    pub body: String,
}

impl Default for Sqlite {
    fn default() -> Self {
        Sqlite { id: "id".into(), type_: "type".into(), body: "body".into() }
    }
}

impl Default for Postgres {
    fn default() -> Self {
        Postgres { id: "id".into(), type_: "type".into(), body: "body".into() }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn datetime_key_sql(x: &str, sqlite: bool) -> String {
    let last = if sqlite { "substr(v, -1)" } else { "right(v, 1)" };
    let (shape, digits, tzshape) = if sqlite {
        (
            "substr(v, 1, 19) GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]'",
            "fr NOT GLOB '*[^0-9]*'",
            "tz GLOB '[+-][0-9][0-9]:[0-9][0-9]'",
        )
    } else {
        (
            "substr(v, 1, 19) ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$'",
            "fr ~ '^[0-9]+$'",
            "tz ~ '^[+-][0-9]{2}:[0-9]{2}$'",
        )
    };
    let c = |from: usize, len: usize| format!("CAST(substr(v, {from}, {len}) AS BIGINT)");
    let yy = format!("({} + 400 - (CASE WHEN {} <= 2 THEN 1 ELSE 0 END))", c(1, 4), c(6, 2));
    let yoe = format!("({yy} % 400)");
    let doy = format!("((153 * (({} + 9) % 12) + 2) / 5 + {} - 1)", c(6, 2), c(9, 2));
    let days = format!("(({yy} / 400) * 146097 + {yoe} * 365 + {yoe} / 4 - {yoe} / 100 + {doy} - 719468 - 146097)");
    let tz = "(CASE WHEN tz = 'Z' THEN 0 ELSE (CASE WHEN substr(tz, 1, 1) = '-' THEN -1 ELSE 1 END) \
              * (CAST(substr(tz, 2, 2) AS BIGINT) * 3600 + CAST(substr(tz, 5, 2) AS BIGINT) * 60) END)";
    let secs =
        format!("({days} * 86400 + {} * 3600 + {} * 60 + {} - {tz} + {KEY_OFFSET})", c(12, 2), c(15, 2), c(18, 2));
    let pad = if sqlite { format!("printf('%012d', {secs})") } else { format!("lpad(CAST({secs} AS TEXT), 12, '0')") };
    let ok = format!(
        "l >= 20 AND {shape} AND (l - tzl = 19 OR (substr(v, 20, 1) = '.' AND l - tzl >= 21 AND {digits})) \
         AND (tz = 'Z' OR ({tzshape} AND substr(tz, 2, 2) <= '14' AND substr(tz, 5, 2) <= '59')) \
         AND substr(v, 6, 2) BETWEEN '01' AND '12' AND substr(v, 9, 2) BETWEEN '01' AND '31' \
         AND substr(v, 12, 2) <= '24' AND substr(v, 15, 2) <= '59' AND substr(v, 18, 2) <= '59'"
    );
    format!(
        "(SELECT CASE WHEN {ok} THEN {pad} || '.' || rtrim(fr, '0') END FROM \
         (SELECT v, l, tzl, substr(v, l - tzl + 1) AS tz, \
         CASE WHEN l - tzl > 20 THEN substr(v, 21, l - tzl - 20) ELSE '' END AS fr FROM \
         (SELECT v, length(v) AS l, CASE WHEN {last} = 'Z' THEN 1 ELSE 6 END AS tzl FROM \
         (SELECT {x} AS v) AS dt0) AS dt1) AS dt2)"
    )
}

impl Sqlite {
    fn doc(&self, base: &JsonBase) -> String {
        match base {
            JsonBase::Body => self.body.clone(),
            JsonBase::Element(a) => {
                format!("(CASE WHEN {a}.type IN ('object', 'array') THEN {a}.value END)")
            }
        }
    }

    fn path(path: &[String]) -> String {
        let mut p = String::from("$");
        for s in path {
            p.push_str(&format!(".\"{}\"", s.replace('"', "")));
        }
        quote(&p)
    }
}

impl SqlDialect for Sqlite {
    fn id_column(&self) -> &str {
        &self.id
    }
    fn type_column(&self) -> &str {
        &self.type_
    }
    fn body_column(&self) -> &str {
        &self.body
    }
    fn placeholder(&self, index: usize, _value: &SqlValue) -> String {
        format!("?{index}")
    }
    fn json_is(&self, node: &JsonNode, kind: JsonKind) -> String {
        let types = match kind {
            JsonKind::Text => "('text')",
            JsonKind::Number => "('integer', 'real')",
            JsonKind::Bool => "('true', 'false')",
            JsonKind::Object => "('object')",
            JsonKind::Array => "('array')",
        };
        match (&node.base, node.path.is_empty()) {
            (JsonBase::Element(a), true) => format!("{a}.type IN {types}"),
            (base, _) => format!("json_type({}, {}) IN {types}", self.doc(base), Self::path(&node.path)),
        }
    }
    fn json_get(&self, node: &JsonNode, _kind: JsonKind) -> String {
        match (&node.base, node.path.is_empty()) {
            (JsonBase::Element(a), true) => format!("{a}.value"),
            (base, _) => format!("json_extract({}, {})", self.doc(base), Self::path(&node.path)),
        }
    }
    fn json_elements(&self, node: &JsonNode, alias: &str) -> String {
        format!(
            "json_each(CASE WHEN {} THEN {} END) AS {alias}",
            self.json_is(node, JsonKind::Array),
            self.json_get(node, JsonKind::Array)
        )
    }
    fn false_literal(&self) -> &'static str {
        "0"
    }
    fn is_true(&self, value: &str) -> String {
        format!("({value} IS 1)")
    }
    fn null_safe_eq(&self, a: &str, b: &str) -> String {
        format!("({a} IS {b})")
    }
    fn binary_text(&self, text: &str) -> String {
        text.to_string()
    }
    fn position(&self, hay: &str, needle: &str) -> String {
        format!("instr({hay}, {needle})")
    }
    fn trim_chars(&self, text: &str, chars: &str) -> String {
        format!("trim({text}, {chars})")
    }
    fn case_map(&self, _text: &str, _upper: bool) -> Option<String> {
        None
    }
    fn datetime_key(&self, text: &str) -> String {
        datetime_key_sql(text, true)
    }
    fn nulls(&self, _descending: bool) -> &'static str {
        ""
    }
}

impl Postgres {
    fn jsonb(&self, node: &JsonNode) -> String {
        let base = match &node.base {
            JsonBase::Body => self.body.clone(),
            JsonBase::Element(a) => format!("{a}.value"),
        };
        if node.path.is_empty() {
            return base;
        }
        let items: Vec<String> =
            node.path.iter().map(|s| format!("\"{}\"", s.replace(['"', '\\', '\''], ""))).collect();
        format!("({base} #> '{{{}}}')", items.join(","))
    }
}

impl SqlDialect for Postgres {
    fn id_column(&self) -> &str {
        &self.id
    }
    fn type_column(&self) -> &str {
        &self.type_
    }
    fn body_column(&self) -> &str {
        &self.body
    }
    fn placeholder(&self, index: usize, value: &SqlValue) -> String {
        let cast = match value {
            SqlValue::Null => "",
            SqlValue::Bool(_) => "::boolean",
            SqlValue::Int(_) => "::bigint",
            SqlValue::Double(_) => "::float8",
            SqlValue::Text(_) => "::text",
        };
        format!("${index}{cast}")
    }
    fn json_is(&self, node: &JsonNode, kind: JsonKind) -> String {
        let t = match kind {
            JsonKind::Text => "string",
            JsonKind::Number => "number",
            JsonKind::Bool => "boolean",
            JsonKind::Object => "object",
            JsonKind::Array => "array",
        };
        format!("jsonb_typeof({}) = '{t}'", self.jsonb(node))
    }
    fn json_get(&self, node: &JsonNode, kind: JsonKind) -> String {
        let j = self.jsonb(node);
        match kind {
            JsonKind::Text => format!("({j} #>> '{{}}')"),
            JsonKind::Number => format!("(({j} #>> '{{}}')::numeric)"),
            JsonKind::Bool => format!("(({j} #>> '{{}}')::boolean)"),
            JsonKind::Object | JsonKind::Array => j,
        }
    }
    fn json_elements(&self, node: &JsonNode, alias: &str) -> String {
        format!(
            "jsonb_array_elements(CASE WHEN {} THEN {} END) AS {alias}(value)",
            self.json_is(node, JsonKind::Array),
            self.jsonb(node)
        )
    }
    fn false_literal(&self) -> &'static str {
        "FALSE"
    }
    fn is_true(&self, value: &str) -> String {
        format!("({value} IS TRUE)")
    }
    fn null_safe_eq(&self, a: &str, b: &str) -> String {
        format!("({a} IS NOT DISTINCT FROM {b})")
    }
    fn binary_text(&self, text: &str) -> String {
        format!("({text} COLLATE \"C\")")
    }
    fn position(&self, hay: &str, needle: &str) -> String {
        format!("strpos({hay}, {needle})")
    }
    fn trim_chars(&self, text: &str, chars: &str) -> String {
        format!("btrim({text}, {chars})")
    }
    fn case_map(&self, _text: &str, _upper: bool) -> Option<String> {
        None
    }
    fn datetime_key(&self, text: &str) -> String {
        datetime_key_sql(text, false)
    }
    fn nulls(&self, descending: bool) -> &'static str {
        if descending { " NULLS LAST" } else { " NULLS FIRST" }
    }
}

/// Translates a bound `$filter` to an SQL predicate over one row, with placeholders
/// numbered from `first_param`; `None` when some part cannot be translated exactly
/// (then evaluate in memory with [`crate::eval`]).
pub fn filter_to_sql(filter: &BoundFilter, dialect: &dyn SqlDialect, first_param: usize) -> Option<Sql> {
    let mut t = Tr::new(dialect, first_param);
    let text = t.pred(&filter.expr)?;
    Some(Sql { text, params: t.params })
}

/// Translates bound `$orderby` items to `ORDER BY` keys (URL Conventions §5.1.5), with
/// placeholders numbered from `first_param`; `None` when one cannot be translated.
pub fn orderby_to_sql(orderby: &[BoundOrderBy], dialect: &dyn SqlDialect, first_param: usize) -> Option<SqlOrderBy> {
    let mut t = Tr::new(dialect, first_param);
    let mut terms = Vec::new();
    for o in orderby {
        let v = t.value(&o.expr, &o.kind)?;
        let expr = t.sortable(v, &o.kind);
        let term = format!("{expr} {}{}", if o.descending { "DESC" } else { "ASC" }, dialect.nulls(o.descending));
        terms.push(OrderTerm { expr, descending: o.descending, term });
    }
    Some(SqlOrderBy { terms, params: t.params })
}

/// The characters that `char::is_whitespace` (Unicode White_Space) trims.
fn whitespace_chars() -> String {
    (0..=0x3000u32).filter_map(char::from_u32).filter(|c| c.is_whitespace()).collect()
}

struct Tr<'d> {
    d: &'d dyn SqlDialect,
    params: Vec<SqlValue>,
    next: usize,
    vars: Vec<String>,
    aliases: usize,
}

fn json_kind(kind: &Kind) -> JsonKind {
    match kind {
        Kind::Bool => JsonKind::Bool,
        Kind::Number => JsonKind::Number,
        _ => JsonKind::Text,
    }
}

impl<'d> Tr<'d> {
    fn new(d: &'d dyn SqlDialect, first: usize) -> Self {
        Tr { d, params: Vec::new(), next: first, vars: Vec::new(), aliases: 0 }
    }

    fn param(&mut self, v: SqlValue) -> String {
        let s = self.d.placeholder(self.next, &v);
        self.next += 1;
        self.params.push(v);
        s
    }

    fn param_list(&mut self, items: &[String]) -> String {
        let ps: Vec<String> = items.iter().map(|t| self.param(SqlValue::Text(t.clone()))).collect();
        format!("({})", ps.join(", "))
    }

    fn false_(&self) -> String {
        "(1 = 0)".into()
    }

    fn coalesce(&self, p: &str) -> String {
        format!("COALESCE({p}, {})", self.d.false_literal())
    }

    fn base(&self, root: Root) -> Option<JsonBase> {
        Some(match root {
            Root::It => JsonBase::Body,
            Root::Var(i) => JsonBase::Element(self.vars.get(i)?.clone()),
        })
    }

    /// The JSON node of `path` and the conditions its type-cast steps impose.
    fn locate(&mut self, path: &BoundPath) -> Option<(JsonNode, Vec<String>)> {
        let mut node = JsonNode { base: self.base(path.root)?, path: Vec::new() };
        let mut conds = Vec::new();
        for step in &path.steps {
            match step {
                Step::Property(n) => node.path.push(n.clone()),
                Step::Cast { declared, allowed, .. } => {
                    let list = self.param_list(allowed);
                    let t = if path.root == Root::It && node.path.is_empty() {
                        self.d.type_column().to_string()
                    } else {
                        self.runtime_type(&node, declared)
                    };
                    conds.push(format!("{t} IN {list}"));
                }
            }
        }
        Some((node, conds))
    }

    fn runtime_type(&mut self, node: &JsonNode, declared: &str) -> String {
        let mut t = node.clone();
        t.path.push("@odata.type".into());
        let text = format!(
            "CASE WHEN {} THEN {} END",
            self.d.json_is(&t, JsonKind::Text),
            self.d.json_get(&t, JsonKind::Text)
        );
        let declared = self.param(SqlValue::Text(declared.to_string()));
        format!(
            "(CASE WHEN {} THEN COALESCE(ltrim({text}, '#'), {declared}) END)",
            self.d.json_is(node, JsonKind::Object)
        )
    }

    fn guarded(conds: &[String], value: String) -> String {
        if conds.is_empty() { value } else { format!("(CASE WHEN {} THEN {value} END)", conds.join(" AND ")) }
    }

    fn path_value(&mut self, path: &BoundPath, kind: &Kind) -> Option<String> {
        if path.root == Root::It
            && matches!(path.steps.as_slice(), [Step::Property(n)] if n == "id")
            && matches!(kind, Kind::String | Kind::Guid)
        {
            let id = self.d.id_column().to_string();
            return Some(if *kind == Kind::Guid { format!("lower({id})") } else { id });
        }
        let (node, conds) = self.locate(path)?;
        let jk = json_kind(kind);
        let raw = format!("(CASE WHEN {} THEN {} END)", self.d.json_is(&node, jk), self.d.json_get(&node, jk));
        let v = match kind {
            Kind::Guid => format!("lower({raw})"),
            Kind::DateTimeOffset => self.d.datetime_key(&raw),
            _ => raw,
        };
        Some(Self::guarded(&conds, v))
    }

    /// Enum values as ordinals and text as code-point ordered, for ordering.
    fn sortable(&mut self, v: String, kind: &Kind) -> String {
        match kind {
            Kind::Enum(e) => {
                let mut s = format!("(CASE {v}");
                for (i, m) in e.members.iter().enumerate() {
                    let p = self.param(SqlValue::Text(m.clone()));
                    s.push_str(&format!(" WHEN {p} THEN {i}"));
                }
                s.push_str(" END)");
                s
            }
            Kind::String | Kind::Guid | Kind::DateTimeOffset | Kind::Date => self.d.binary_text(&v),
            Kind::Bool | Kind::Number => v,
        }
    }

    fn text_arg(&mut self, args: &[BoundExpr], i: usize) -> Option<String> {
        self.value(args.get(i)?, &Kind::String)
    }

    fn value(&mut self, e: &BoundExpr, _kind: &Kind) -> Option<String> {
        Some(match e {
            BoundExpr::Null => "NULL".into(),
            BoundExpr::Const(c) => {
                let v = match c {
                    Const::Bool(b) => SqlValue::Bool(*b),
                    Const::Int(i) => SqlValue::Int(*i),
                    Const::Double(d) => SqlValue::Double(*d),
                    Const::Text(t) => SqlValue::Text(t.clone()),
                };
                self.param(v)
            }
            BoundExpr::Value { path, kind } => self.path_value(path, kind)?,
            BoundExpr::Call { function, args } => match function {
                Function::Length => format!("length({})", self.text_arg(args, 0)?),
                Function::IndexOf => {
                    let a = self.text_arg(args, 0)?;
                    let b = self.text_arg(args, 1)?;
                    format!("({} - 1)", self.d.position(&a, &b))
                }
                Function::Substring => {
                    let s = self.text_arg(args, 0)?;
                    // Non-negative 32-bit constants only (PostgreSQL's substr takes int).
                    let int = |e: Option<&BoundExpr>| match e {
                        Some(BoundExpr::Const(Const::Int(i))) if (0..i64::from(i32::MAX)).contains(i) => Some(*i),
                        _ => None,
                    };
                    let start = int(args.get(1))? + 1;
                    let start = self.param(SqlValue::Int(start));
                    match args.get(2) {
                        None => format!("substr({s}, CAST({start} AS INTEGER))"),
                        Some(l) => {
                            let len = self.param(SqlValue::Int(int(Some(l))?));
                            format!("substr({s}, CAST({start} AS INTEGER), CAST({len} AS INTEGER))")
                        }
                    }
                }
                Function::Trim => {
                    let s = self.text_arg(args, 0)?;
                    let ws = self.param(SqlValue::Text(whitespace_chars()));
                    self.d.trim_chars(&s, &ws)
                }
                Function::Concat => {
                    let a = self.text_arg(args, 0)?;
                    let b = self.text_arg(args, 1)?;
                    format!("({a} || {b})")
                }
                Function::ToLower | Function::ToUpper => {
                    let a = self.text_arg(args, 0)?;
                    self.d.case_map(&a, *function == Function::ToUpper)?
                }
                Function::StartsWith | Function::EndsWith | Function::Contains => self.pred(e)?,
            },
            _ => self.pred(e)?,
        })
    }

    fn pred(&mut self, e: &BoundExpr) -> Option<String> {
        Some(match e {
            BoundExpr::Null => self.false_(),
            BoundExpr::Const(c) => {
                if *c == Const::Bool(true) {
                    "(1 = 1)".into()
                } else {
                    self.false_()
                }
            }
            BoundExpr::Value { path, kind } => {
                let v = self.path_value(path, kind)?;
                self.d.is_true(&v)
            }
            BoundExpr::Exists(path) => {
                let (node, mut conds) = self.locate(path)?;
                conds.push(self.d.json_is(&node, JsonKind::Object));
                self.coalesce(&format!("({})", conds.join(" AND ")))
            }
            BoundExpr::Not(x) => format!("(NOT {})", self.pred(x)?),
            BoundExpr::And(a, b) => format!("({} AND {})", self.pred(a)?, self.pred(b)?),
            BoundExpr::Or(a, b) => format!("({} OR {})", self.pred(a)?, self.pred(b)?),
            BoundExpr::Compare { op, kind, left, right } => {
                let (ln, rn) = (**left == BoundExpr::Null, **right == BoundExpr::Null);
                if (ln || rn) && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                    return Some(self.false_());
                }
                let l = self.value(left, kind)?;
                let r = self.value(right, kind)?;
                match op {
                    CompareOp::Eq | CompareOp::Ne => {
                        let eq = match (ln, rn) {
                            (true, true) => "(1 = 1)".to_string(),
                            (true, false) => format!("({r} IS NULL)"),
                            (false, true) => format!("({l} IS NULL)"),
                            (false, false) => self.d.null_safe_eq(&l, &r),
                        };
                        if *op == CompareOp::Eq { eq } else { format!("(NOT {eq})") }
                    }
                    _ => {
                        let l = self.sortable(l, kind);
                        let r = self.sortable(r, kind);
                        let sym = match op {
                            CompareOp::Gt => ">",
                            CompareOp::Ge => ">=",
                            CompareOp::Lt => "<",
                            _ => "<=",
                        };
                        self.coalesce(&format!("({l} {sym} {r})"))
                    }
                }
            }
            BoundExpr::In { kind, expr, list } => {
                // One flat `IN (…)`, not a chain of `OR`s: SQLite parses `a OR b OR …` into
                // a tree as deep as the list and refuses past 1,000 levels (issue 18 item 7).
                // The values are literals; `null` among them matches a null value, and
                // `COALESCE` keeps the result two-valued, as the null-safe equality was.
                let v = self.value(expr, kind)?;
                let mut values = Vec::new();
                let mut has_null = false;
                for item in list {
                    if *item == BoundExpr::Null {
                        has_null = true;
                    } else {
                        values.push(self.value(item, kind)?);
                    }
                }
                let mut alts = Vec::new();
                if has_null {
                    alts.push(format!("({v} IS NULL)"));
                }
                if !values.is_empty() {
                    alts.push(self.coalesce(&format!("({v} IN ({}))", values.join(", "))));
                }
                if alts.is_empty() { self.false_() } else { format!("({})", alts.join(" OR ")) }
            }
            BoundExpr::Call { function, args } => {
                let a = self.text_arg(args, 0)?;
                let b = self.text_arg(args, 1)?;
                let p = match function {
                    Function::StartsWith => format!("({} = 1)", self.d.position(&a, &b)),
                    Function::Contains => format!("({} > 0)", self.d.position(&a, &b)),
                    Function::EndsWith => {
                        format!("(substr({a}, length({a}) - length({b}) + 1) = {b})")
                    }
                    _ => return None,
                };
                self.coalesce(&p)
            }
            BoundExpr::IsOf { path, declared, types } => {
                let t = if path.root == Root::It && path.steps.is_empty() {
                    self.d.type_column().to_string()
                } else {
                    let (node, conds) = self.locate(path)?;
                    let rt = self.runtime_type(&node, declared);
                    Self::guarded(&conds, rt)
                };
                let list = self.param_list(types);
                self.coalesce(&format!("({t} IN {list})"))
            }
            BoundExpr::Any { collection, predicate, .. } => {
                let from = self.elements(collection)?;
                let body = match predicate {
                    Some(p) => self.lambda_body(p)?,
                    None => {
                        self.vars.pop();
                        "(1 = 1)".into()
                    }
                };
                format!("(EXISTS (SELECT 1 FROM {} WHERE {} AND {body}))", from.0, from.1)
            }
            BoundExpr::All { collection, predicate, .. } => {
                let from = self.elements(collection)?;
                let body = self.lambda_body(predicate)?;
                format!("(NOT EXISTS (SELECT 1 FROM {} WHERE {} AND NOT {body}))", from.0, from.1)
            }
        })
    }

    /// The FROM item of a lambda (pushing its alias) and its cast conditions.
    fn elements(&mut self, collection: &BoundPath) -> Option<(String, String)> {
        let (node, conds) = self.locate(collection)?;
        self.aliases += 1;
        let alias = format!("j{}", self.aliases);
        let from = self.d.json_elements(&node, &alias);
        self.vars.push(alias);
        let cond = if conds.is_empty() { "(1 = 1)".to_string() } else { format!("({})", conds.join(" AND ")) };
        Some((from, cond))
    }

    fn lambda_body(&mut self, p: &BoundExpr) -> Option<String> {
        let body = self.pred(p);
        self.vars.pop();
        body
    }
}
