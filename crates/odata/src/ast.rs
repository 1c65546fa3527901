//! The syntax tree of system query options (URL Conventions §5.1) and its canonical
//! text form: `Display` prints text that [`crate::parse_query`] reads back to an equal tree.

use std::fmt::{self, Display, Formatter, Write};

/// The system query options of one request or of one expanded navigation property
/// (URL Conventions §5.1, §5.1.3 for the nested form).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryOptions {
    /// `$filter` (URL Conventions §5.1.1).
    pub filter: Option<Expr>,
    /// `$select` (URL Conventions §5.1.4).
    pub select: Option<Vec<SelectItem>>,
    /// `$expand` (URL Conventions §5.1.3).
    pub expand: Option<Vec<ExpandItem>>,
    /// `$orderby` (URL Conventions §5.1.5); empty when absent.
    pub orderby: Vec<OrderByItem>,
    /// `$top` (URL Conventions §5.1.6).
    pub top: Option<u64>,
    /// `$skip` (URL Conventions §5.1.7).
    pub skip: Option<u64>,
    /// `$count` (URL Conventions §5.1.8).
    pub count: Option<bool>,
    /// `$skiptoken` (URL Conventions §5.1.10), opaque.
    pub skiptoken: Option<String>,
    /// `$search` (URL Conventions §5.1.9), kept as text.
    pub search: Option<String>,
}

/// One `$select` item (URL Conventions §5.1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`: all structural properties.
    All,
    /// A property path, possibly with type-cast segments (`ns.Derived/prop`).
    Path(Vec<Segment>),
}

/// One `$expand` item (URL Conventions §5.1.3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExpandItem {
    /// The navigation property name, or `*`.
    pub path: String,
    /// The nested options given in parentheses (`$select`, `$filter`, ...).
    pub options: QueryOptions,
}

/// One `$orderby` item (URL Conventions §5.1.5).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderByItem {
    /// The expression sorted by.
    pub expr: Expr,
    /// `desc` rather than `asc`.
    pub descending: bool,
}

/// One segment of a member path (URL Conventions §5.1.1.15, type casts §5.1.1.12.3 /
/// ABNF `memberExpr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A property name (or, first in a lambda body, a lambda variable).
    Property(String),
    /// A qualified type name: a type cast.
    Cast(String),
}

/// `any` or `all` (URL Conventions §5.1.1.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaKind {
    /// `any`
    Any,
    /// `all`
    All,
}

/// Binary operators (URL Conventions §5.1.1.1 logical/comparison operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `and`
    And,
    /// `or`
    Or,
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

/// The canonical functions this crate implements (URL Conventions §5.1.1.5-§5.1.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `startswith(s, prefix)` §5.1.1.5.7
    StartsWith,
    /// `endswith(s, suffix)` §5.1.1.5.2
    EndsWith,
    /// `contains(s, part)` §5.1.1.5.1
    Contains,
    /// `tolower(s)` §5.1.1.5.9
    ToLower,
    /// `toupper(s)` §5.1.1.5.10
    ToUpper,
    /// `length(s)` §5.1.1.5.4
    Length,
    /// `indexof(s, part)` §5.1.1.5.3
    IndexOf,
    /// `substring(s, start[, length])` §5.1.1.5.8
    Substring,
    /// `trim(s)` §5.1.1.5.11
    Trim,
    /// `concat(a, b)` §5.1.1.5.12
    Concat,
}

impl Function {
    /// The function's name in the URL.
    pub fn name(self) -> &'static str {
        match self {
            Function::StartsWith => "startswith",
            Function::EndsWith => "endswith",
            Function::Contains => "contains",
            Function::ToLower => "tolower",
            Function::ToUpper => "toupper",
            Function::Length => "length",
            Function::IndexOf => "indexof",
            Function::Substring => "substring",
            Function::Trim => "trim",
            Function::Concat => "concat",
        }
    }

    /// The function called `name` (case-insensitive, OData 4.01 §5.1.1).
    pub fn from_name(name: &str) -> Option<Function> {
        use Function::*;
        [StartsWith, EndsWith, Contains, ToLower, ToUpper, Length, IndexOf, Substring, Trim, Concat]
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The accepted numbers of arguments.
    pub(crate) fn arity(self) -> (usize, usize) {
        match self {
            Function::ToLower | Function::ToUpper | Function::Length | Function::Trim => (1, 1),
            Function::Substring => (2, 3),
            _ => (2, 2),
        }
    }
}

/// A literal (ABNF `primitiveLiteral`, URL Conventions §5.1.1.16 / CSDL §4.4).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer literal (`Edm.Int32`/`Edm.Int64`).
    Int(i64),
    /// A decimal or double literal.
    Double(f64),
    /// `'text'`
    String(String),
    /// A bare GUID, as written.
    Guid(String),
    /// A DateTimeOffset literal, as written.
    DateTimeOffset(String),
    /// A Date literal `YYYY-MM-DD`.
    Date(String),
    /// `namespace.EnumType'member'`
    Enum {
        /// The qualified enumeration type name.
        type_name: String,
        /// The member name as written.
        member: String,
    },
}

/// A `$filter` / `$orderby` expression (URL Conventions §5.1.1, ABNF `commonExpr`).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Literal),
    /// A member path such as `target/microsoft.graph.groupAssignmentTarget/groupId`.
    Path(Vec<Segment>),
    /// `path/any(v: predicate)`, `path/any()`, `path/all(v: predicate)` (§5.1.1.13).
    Lambda {
        /// The collection path.
        path: Vec<Segment>,
        /// `any` or `all`.
        kind: LambdaKind,
        /// The lambda variable and predicate; `None` only for `any()`.
        predicate: Option<(String, Box<Expr>)>,
    },
    /// `not e` (§5.1.1.1.9).
    Not(Box<Expr>),
    /// A logical or comparison operator.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `e in (v1, v2, ...)` (§5.1.1.1.10).
    In {
        /// The tested value.
        expr: Box<Expr>,
        /// The listed values.
        list: Vec<Expr>,
    },
    /// A canonical function call.
    Call {
        /// The function.
        function: Function,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// `isof(T)` or `isof(e, T)` (§5.1.1.12.4).
    IsOf {
        /// The tested value; `None` for the current instance.
        expr: Option<Box<Expr>>,
        /// The qualified type name.
        type_name: String,
    },
    /// `cast(T)` or `cast(e, T)` (§5.1.1.12.3).
    Cast {
        /// The cast value; `None` for the current instance.
        expr: Option<Box<Expr>>,
        /// The qualified type name.
        type_name: String,
    },
}

impl BinaryOp {
    /// The operator keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
        }
    }

    fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            _ => 3,
        }
    }
}

fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Binary { op, .. } => op.precedence(),
        Expr::In { .. } => 3,
        Expr::Not(_) => 4,
        _ => 5,
    }
}

fn write_operand(f: &mut Formatter<'_>, e: &Expr, parens: bool) -> fmt::Result {
    if parens { write!(f, "({e})") } else { write!(f, "{e}") }
}

pub(crate) fn write_path(f: &mut impl Write, path: &[Segment]) -> fmt::Result {
    for (i, s) in path.iter().enumerate() {
        if i > 0 {
            f.write_char('/')?;
        }
        match s {
            Segment::Property(n) | Segment::Cast(n) => f.write_str(n)?,
        }
    }
    Ok(())
}

fn write_quoted(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    write!(f, "'{}'", s.replace('\'', "''"))
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Double(d) => write!(f, "{d:?}"),
            Literal::String(s) => write_quoted(f, s),
            Literal::Guid(s) | Literal::DateTimeOffset(s) | Literal::Date(s) => f.write_str(s),
            Literal::Enum { type_name, member } => {
                f.write_str(type_name)?;
                write_quoted(f, member)
            }
        }
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::Path(p) => write_path(f, p),
            Expr::Lambda { path, kind, predicate } => {
                write_path(f, path)?;
                f.write_str(match kind {
                    LambdaKind::Any => "/any(",
                    LambdaKind::All => "/all(",
                })?;
                if let Some((var, body)) = predicate {
                    write!(f, "{var}:{body}")?;
                }
                f.write_char(')')
            }
            Expr::Not(e) => {
                f.write_str("not ")?;
                write_operand(f, e, precedence(e) < 4)
            }
            Expr::Binary { op, left, right } => {
                let p = op.precedence();
                write_operand(f, left, precedence(left) < p)?;
                write!(f, " {} ", op.keyword())?;
                write_operand(f, right, precedence(right) <= p)
            }
            Expr::In { expr, list } => {
                write_operand(f, expr, precedence(expr) < 3)?;
                f.write_str(" in (")?;
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_char(')')
            }
            Expr::Call { function, args } => {
                write!(f, "{}(", function.name())?;
                for (i, e) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_char(')')
            }
            Expr::IsOf { expr, type_name } | Expr::Cast { expr, type_name } => {
                f.write_str(if matches!(self, Expr::IsOf { .. }) { "isof(" } else { "cast(" })?;
                if let Some(e) = expr {
                    write!(f, "{e},")?;
                }
                write!(f, "{type_name})")
            }
        }
    }
}

impl Display for SelectItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SelectItem::All => f.write_char('*'),
            SelectItem::Path(p) => write_path(f, p),
        }
    }
}

impl Display for OrderByItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)?;
        if self.descending {
            f.write_str(" desc")?;
        }
        Ok(())
    }
}

impl Display for ExpandItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        let inner = self.options.options_text(";", false);
        if !inner.is_empty() {
            write!(f, "({inner})")?;
        }
        Ok(())
    }
}

fn join<T: Display>(items: &[T]) -> String {
    items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

/// Characters left as they are by [`QueryOptions::to_query_string`]: RFC 3986
/// unreserved characters and sub-delimiters that are harmless inside a query value.
fn keep(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~$'()*,/:;@=!".contains(c)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if keep(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

impl QueryOptions {
    /// True when no option is set.
    pub fn is_empty(&self) -> bool {
        *self == QueryOptions::default()
    }

    fn options_text(&self, sep: &str, encode: bool) -> String {
        let mut parts: Vec<(&str, String)> = Vec::new();
        if let Some(f) = &self.filter {
            parts.push(("$filter", f.to_string()));
        }
        if let Some(s) = &self.select {
            parts.push(("$select", join(s)));
        }
        if let Some(e) = &self.expand {
            parts.push(("$expand", join(e)));
        }
        if !self.orderby.is_empty() {
            parts.push(("$orderby", join(&self.orderby)));
        }
        if let Some(t) = self.top {
            parts.push(("$top", t.to_string()));
        }
        if let Some(s) = self.skip {
            parts.push(("$skip", s.to_string()));
        }
        if let Some(c) = self.count {
            parts.push(("$count", c.to_string()));
        }
        if let Some(s) = &self.search {
            parts.push(("$search", s.clone()));
        }
        if let Some(s) = &self.skiptoken {
            parts.push(("$skiptoken", s.clone()));
        }
        parts
            .into_iter()
            .map(|(n, v)| if encode { format!("{n}={}", percent_encode(&v)) } else { format!("{n}={v}") })
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// The options as a percent-encoded URL query string (without `?`), e.g. for an
    /// `@odata.nextLink` (JSON Format §4.5.5); [`crate::parse_query`] reads it back to
    /// an equal value.
    pub fn to_query_string(&self) -> String {
        self.options_text("&", true)
    }
}

/// Prints the options unencoded, `&`-separated (URL Conventions §5).
impl Display for QueryOptions {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.options_text("&", false))
    }
}
