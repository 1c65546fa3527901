//! Parsing of system query options (URL Conventions §5.1) and of common expressions
//! (URL Conventions §5.1.1, ABNF `commonExpr`) into the syntax tree of [`crate::ast`].

use crate::ast::*;
use crate::error::{Error, ErrorKind};
use crate::lexer::{Tok, Token, lex};

/// How lenient [`parse_query`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseConfig {
    /// Accept system query options without the `$` prefix (`filter=...`), as Microsoft
    /// Graph beta does (OData 4.01 URL Conventions §5: "the $ prefix is optional").
    pub dollar_optional: bool,
    /// The maximum nesting depth of expressions and `$expand`s (each operator of a
    /// chain like `a and b and c` counts as one level).
    pub max_depth: usize,
    /// The maximum nesting of `$expand` inside `$expand` (`$expand=a` is 1). Checked
    /// before a nested `$expand` is scanned, so deep nesting costs nothing.
    pub max_expand_depth: usize,
    /// The maximum number of values of one `in (...)` list.
    pub max_in_values: usize,
}

impl Default for ParseConfig {
    fn default() -> Self {
        ParseConfig { dollar_optional: false, max_depth: 100, max_expand_depth: 100, max_in_values: 10_000 }
    }
}

const SYSTEM_OPTIONS: [&str; 9] =
    ["filter", "select", "expand", "orderby", "top", "skip", "count", "search", "skiptoken"];

/// Decodes `%XX` escapes and `+` (as a space, like ASP.NET) of a query string part
/// (RFC 3986 §2.1); invalid escapes are kept literally, invalid UTF-8 is replaced.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a raw, still percent-encoded URL query string (the part after `?`) into
/// [`QueryOptions`] (URL Conventions §5 system query options; custom query options,
/// §5.2, and parameter aliases are ignored).
///
/// Option names are case-insensitive; an unknown `$` option or an option given twice is
/// an error. Errors in option values carry the 0-based character position inside the
/// decoded value.
pub fn parse_query(raw: &str, cfg: &ParseConfig) -> Result<QueryOptions, Error> {
    let mut pairs = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((percent_decode(name), percent_decode(value)));
    }
    let mut p = Parser::new(cfg);
    p.options(pairs.iter().map(|(n, v)| (n.trim(), v.as_str())), false)
}

/// Parses a `$filter` value (URL Conventions §5.1.1) that is already percent-decoded.
pub fn parse_filter(text: &str, cfg: &ParseConfig) -> Result<Expr, Error> {
    Parser::new(cfg).filter(text)
}

/// Parses an `$orderby` value (URL Conventions §5.1.5) that is already percent-decoded.
pub fn parse_orderby(text: &str, cfg: &ParseConfig) -> Result<Vec<OrderByItem>, Error> {
    Parser::new(cfg).orderby(text)
}

struct Parser {
    cfg: ParseConfig,
    depth: usize,
    /// How many `$expand`s enclose the one being parsed.
    expand_depth: usize,
}

impl Parser {
    fn new(cfg: &ParseConfig) -> Self {
        Parser { cfg: *cfg, depth: 0, expand_depth: 0 }
    }

    fn options<'s>(
        &mut self,
        pairs: impl Iterator<Item = (&'s str, &'s str)>,
        nested: bool,
    ) -> Result<QueryOptions, Error> {
        let mut q = QueryOptions::default();
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in pairs {
            let lower = name.to_ascii_lowercase();
            let bare = match lower.strip_prefix('$') {
                Some(b) => b,
                None if self.cfg.dollar_optional => lower.as_str(),
                None if nested => {
                    return Err(Error::new(
                        ErrorKind::UnknownQueryOption,
                        format!("The query parameter '{name}' is not supported."),
                    ));
                }
                None => continue,
            };
            if !SYSTEM_OPTIONS.contains(&bare) || (nested && bare == "skiptoken") {
                if !lower.starts_with('$') && !nested {
                    continue;
                }
                return Err(Error::new(
                    ErrorKind::UnknownQueryOption,
                    format!("The query parameter '{name}' is not supported."),
                ));
            }
            if seen.iter().any(|s| s == bare) {
                return Err(Error::new(
                    ErrorKind::DuplicateQueryOption,
                    format!(
                        "Query option '${bare}' was specified more than once, but it must be specified at most once."
                    ),
                ));
            }
            seen.push(bare.to_string());
            match bare {
                "filter" => q.filter = Some(self.filter(value)?),
                "select" => q.select = Some(self.select(value)?),
                "expand" => q.expand = Some(self.expand(value)?),
                "orderby" => q.orderby = self.orderby(value)?,
                "top" | "skip" => {
                    let v = value.trim().parse::<u64>().map_err(|_| {
                        Error::new(
                            ErrorKind::InvalidOptionValue,
                            format!(
                                "Invalid value '{value}' for ${bare} query option found. The ${bare} query option requires a non-negative integer value."
                            ),
                        )
                    })?;
                    if bare == "top" {
                        q.top = Some(v);
                    } else {
                        q.skip = Some(v);
                    }
                }
                "count" => {
                    q.count = Some(match value.trim() {
                        v if v.eq_ignore_ascii_case("true") => true,
                        v if v.eq_ignore_ascii_case("false") => false,
                        _ => {
                            return Err(Error::new(
                                ErrorKind::InvalidOptionValue,
                                format!("'{value}' is not a valid count option."),
                            ));
                        }
                    })
                }
                "search" => q.search = Some(value.to_string()),
                _ => q.skiptoken = Some(value.to_string()),
            }
        }
        Ok(q)
    }

    fn enter(&mut self, pos: usize) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > self.cfg.max_depth {
            return Err(Error::at(
                ErrorKind::TooDeep,
                pos,
                format!("The recursion limit of {} was exceeded at position {pos}.", self.cfg.max_depth),
            ));
        }
        Ok(())
    }

    fn filter(&mut self, text: &str) -> Result<Expr, Error> {
        let toks = lex(text)?;
        let mut c = Cursor { toks: &toks, i: 0, text, p: self };
        let e = c.expr()?;
        c.expect_eof()?;
        Ok(e)
    }

    fn orderby(&mut self, text: &str) -> Result<Vec<OrderByItem>, Error> {
        let toks = lex(text)?;
        let mut c = Cursor { toks: &toks, i: 0, text, p: self };
        let mut items = Vec::new();
        loop {
            let expr = c.expr()?;
            let mut descending = false;
            if c.keyword("desc") {
                descending = true;
                c.i += 1;
            } else if c.keyword("asc") {
                c.i += 1;
            }
            items.push(OrderByItem { expr, descending });
            match c.peek() {
                Tok::Comma => c.i += 1,
                Tok::Eof => return Ok(items),
                _ => return Err(Error::syntax(c.pos(), text)),
            }
        }
    }

    fn select(&mut self, text: &str) -> Result<Vec<SelectItem>, Error> {
        let toks = lex(text)?;
        let mut items = Vec::new();
        let mut i = 0;
        let tok = |i: usize| toks.get(i).map_or(&Tok::Eof, |t| &t.tok);
        let pos = |i: usize| toks.get(i).map_or(0, |t| t.pos);
        loop {
            if *tok(i) == Tok::Star {
                items.push(SelectItem::All);
                i += 1;
            } else {
                let mut path = Vec::new();
                loop {
                    match tok(i) {
                        Tok::Ident(n) if !n.starts_with('$') => path.push(segment(n)),
                        _ => return Err(Error::syntax(pos(i), text)),
                    }
                    i += 1;
                    if *tok(i) == Tok::Slash {
                        i += 1;
                    } else {
                        break;
                    }
                }
                items.push(SelectItem::Path(path));
            }
            match tok(i) {
                Tok::Comma => i += 1,
                Tok::Eof => return Ok(items),
                _ => return Err(Error::syntax(pos(i), text)),
            }
        }
    }

    fn expand(&mut self, text: &str) -> Result<Vec<ExpandItem>, Error> {
        if self.expand_depth >= self.cfg.max_expand_depth {
            // ODataLib's own wording (UriParser_ExpandDepthExceeded).
            return Err(Error::new(
                ErrorKind::TooDeep,
                format!(
                    "The request includes a $expand path which is too deep. The maximum depth allowed is {}.",
                    self.cfg.max_expand_depth
                ),
            ));
        }
        self.expand_depth += 1;
        let items = self.expand_items(text);
        self.expand_depth -= 1;
        items
    }

    fn expand_items(&mut self, text: &str) -> Result<Vec<ExpandItem>, Error> {
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let mut items = Vec::new();
        let mut i = 0;
        loop {
            while i < n && chars[i].is_whitespace() {
                i += 1;
            }
            let start = i;
            while i < n && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '*') {
                i += 1;
            }
            let path: String = chars[start..i].iter().collect();
            let valid = path == "*"
                || path.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && !path.contains('*');
            if !valid {
                return Err(Error::syntax(start, text));
            }
            while i < n && chars[i].is_whitespace() {
                i += 1;
            }
            let mut options = QueryOptions::default();
            if i < n && chars[i] == '(' {
                let open = i;
                let mut depth = 0usize;
                let mut quoted = false;
                let mut parts = Vec::new();
                let mut part_start = i + 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(Error::at(
                            ErrorKind::Syntax,
                            open,
                            format!("Syntax error: missing ')' for the '(' at position {open} in '{text}'."),
                        ));
                    };
                    match c {
                        '\'' => quoted = !quoted,
                        '(' if !quoted => depth += 1,
                        ')' if !quoted => {
                            depth -= 1;
                            if depth == 0 {
                                parts.push(chars[part_start..i].iter().collect::<String>());
                                i += 1;
                                break;
                            }
                        }
                        ';' if !quoted && depth == 1 => {
                            parts.push(chars[part_start..i].iter().collect::<String>());
                            part_start = i + 1;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                self.enter(open)?;
                let pairs: Vec<(String, String)> = parts
                    .iter()
                    .filter(|p| !p.trim().is_empty())
                    .map(|p| {
                        let (a, b) = p.split_once('=').unwrap_or((p.as_str(), ""));
                        (a.trim().to_string(), b.to_string())
                    })
                    .collect();
                options = self.options(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())), true)?;
                self.depth -= 1;
                while i < n && chars[i].is_whitespace() {
                    i += 1;
                }
            }
            items.push(ExpandItem { path, options });
            if i >= n {
                return Ok(items);
            }
            if chars[i] != ',' {
                return Err(Error::syntax(i, text));
            }
            i += 1;
        }
    }
}

fn segment(name: &str) -> Segment {
    if name.contains('.') { Segment::Cast(name.to_string()) } else { Segment::Property(name.to_string()) }
}

struct Cursor<'a> {
    toks: &'a [Token],
    i: usize,
    text: &'a str,
    p: &'a mut Parser,
}

const UNSUPPORTED_OPERATORS: [&str; 7] = ["has", "add", "sub", "mul", "div", "divby", "mod"];
const UNSUPPORTED_FUNCTIONS: [&str; 20] = [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "fractionalseconds",
    "totalseconds",
    "date",
    "time",
    "totaloffsetminutes",
    "now",
    "mindatetime",
    "maxdatetime",
    "round",
    "floor",
    "ceiling",
    "geo.distance",
    "geo.intersects",
    "matchespattern",
];

impl Cursor<'_> {
    fn peek(&self) -> &Tok {
        self.toks.get(self.i).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> &Tok {
        self.toks.get(self.i + k).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.i).or(self.toks.last()).map_or(0, |t| t.pos)
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn syntax(&self) -> Error {
        Error::syntax(self.pos(), self.text)
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), Error> {
        if *self.peek() == tok {
            self.i += 1;
            Ok(())
        } else {
            let pos = self.pos();
            Err(Error::at(ErrorKind::Syntax, pos, format!("{what} expected at position {pos} in '{}'.", self.text)))
        }
    }

    fn expect_eof(&self) -> Result<(), Error> {
        if *self.peek() == Tok::Eof { Ok(()) } else { Err(self.syntax()) }
    }

    fn expr(&mut self) -> Result<Expr, Error> {
        self.binary_chain(1)
    }

    /// Left-associative chains: level 1 `or`, level 2 `and`, level 3 comparisons.
    fn binary_chain(&mut self, level: u8) -> Result<Expr, Error> {
        let mut left = if level < 3 { self.binary_chain(level + 1)? } else { self.unary()? };
        let mut entered = 0;
        loop {
            let pos = self.pos();
            let op = match self.peek() {
                Tok::Ident(s) => {
                    let s = s.to_ascii_lowercase();
                    match (level, s.as_str()) {
                        (1, "or") => BinaryOp::Or,
                        (2, "and") => BinaryOp::And,
                        (3, "eq") => BinaryOp::Eq,
                        (3, "ne") => BinaryOp::Ne,
                        (3, "gt") => BinaryOp::Gt,
                        (3, "ge") => BinaryOp::Ge,
                        (3, "lt") => BinaryOp::Lt,
                        (3, "le") => BinaryOp::Le,
                        (3, "in") => {
                            self.i += 1;
                            self.p.enter(pos)?;
                            entered += 1;
                            let list = self.in_list()?;
                            left = Expr::In { expr: Box::new(left), list };
                            continue;
                        }
                        (3, op) if UNSUPPORTED_OPERATORS.contains(&op) => {
                            return Err(Error::at(
                                ErrorKind::NotSupported,
                                pos,
                                format!("The operator '{op}' at position {pos} is not supported."),
                            ));
                        }
                        _ => break,
                    }
                }
                _ => break,
            };
            self.i += 1;
            self.p.enter(pos)?;
            entered += 1;
            let right = if level < 3 { self.binary_chain(level + 1)? } else { self.unary()? };
            left = Expr::Binary { op, left: Box::new(left), right: Box::new(right) };
        }
        self.p.depth -= entered;
        Ok(left)
    }

    fn in_list(&mut self) -> Result<Vec<Expr>, Error> {
        self.expect(Tok::LParen, "'('")?;
        let mut list = Vec::new();
        loop {
            if list.len() >= self.p.cfg.max_in_values {
                return Err(Error::at(
                    ErrorKind::TooDeep,
                    self.pos(),
                    format!(
                        "The 'in' list at position {} has more than the {} values allowed.",
                        self.pos(),
                        self.p.cfg.max_in_values
                    ),
                ));
            }
            list.push(self.primary()?);
            match self.peek() {
                Tok::Comma => self.i += 1,
                Tok::RParen => {
                    self.i += 1;
                    return Ok(list);
                }
                _ => return self.expect(Tok::RParen, "')' or ','").map(|_| list),
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, Error> {
        if self.keyword("not") && *self.peek_at(1) != Tok::Slash {
            let pos = self.pos();
            self.i += 1;
            self.p.enter(pos)?;
            let e = self.unary()?;
            self.p.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, Error> {
        let pos = self.pos();
        self.p.enter(pos)?;
        let e = self.primary_inner()?;
        self.p.depth -= 1;
        Ok(e)
    }

    fn primary_inner(&mut self) -> Result<Expr, Error> {
        let pos = self.pos();
        let tok = self.peek().clone();
        self.i += 1;
        let lit = |l| Ok(Expr::Literal(l));
        match tok {
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(Tok::RParen, "')' or operator")?;
                Ok(e)
            }
            Tok::Str(s) => lit(Literal::String(s)),
            Tok::Int(v) => lit(Literal::Int(v)),
            Tok::Double(v) => lit(Literal::Double(v)),
            Tok::Guid(s) => lit(Literal::Guid(s)),
            Tok::DateTimeOffset(s) => lit(Literal::DateTimeOffset(s)),
            Tok::Date(s) => lit(Literal::Date(s)),
            Tok::Typed(t, member) => {
                if t.contains('.') {
                    lit(Literal::Enum { type_name: t, member })
                } else {
                    Err(Error::at(
                        ErrorKind::NotSupported,
                        pos,
                        format!("The literal of type '{t}' at position {pos} is not supported."),
                    ))
                }
            }
            Tok::Ident(name) => {
                if *self.peek() == Tok::LParen {
                    return self.call(&name, pos);
                }
                if *self.peek() != Tok::Slash {
                    match name.as_str() {
                        "null" => return lit(Literal::Null),
                        "true" => return lit(Literal::Bool(true)),
                        "false" => return lit(Literal::Bool(false)),
                        _ => {}
                    }
                }
                self.path(name)
            }
            Tok::Eof | Tok::RParen | Tok::Comma | Tok::Slash | Tok::Colon | Tok::Star => Err(Error::at(
                ErrorKind::Syntax,
                pos,
                format!("Expression expected at position {pos} in '{}'.", self.text),
            )),
        }
    }

    fn path(&mut self, first: String) -> Result<Expr, Error> {
        self.path_from(vec![segment(&first)])
    }

    /// Continues a member path (`/name`, `/any(...)`) after `path`.
    fn path_from(&mut self, mut path: Vec<Segment>) -> Result<Expr, Error> {
        while *self.peek() == Tok::Slash {
            self.i += 1;
            let Tok::Ident(name) = self.peek().clone() else {
                return Err(self.syntax());
            };
            self.i += 1;
            let lambda = match name.as_str() {
                "any" => Some(LambdaKind::Any),
                "all" => Some(LambdaKind::All),
                _ => None,
            };
            if let (Some(kind), Tok::LParen) = (lambda, self.peek()) {
                self.i += 1;
                if kind == LambdaKind::Any && *self.peek() == Tok::RParen {
                    self.i += 1;
                    return Ok(Expr::Lambda { path, kind, predicate: None });
                }
                let Tok::Ident(var) = self.peek().clone() else {
                    return Err(self.syntax());
                };
                if var.contains('.') || var.starts_with('$') {
                    return Err(self.syntax());
                }
                self.i += 1;
                self.expect(Tok::Colon, "':'")?;
                let body = self.expr()?;
                self.expect(Tok::RParen, "')' or operator")?;
                return Ok(Expr::Lambda { path, kind, predicate: Some((var, Box::new(body))) });
            }
            path.push(segment(&name));
        }
        Ok(Expr::Path(path))
    }

    fn type_name(&mut self) -> Result<String, Error> {
        let name = match self.peek().clone() {
            Tok::Ident(n) if n.contains('.') => n,
            Tok::Str(s) => s.trim_start_matches('#').to_string(),
            _ => return Err(self.syntax()),
        };
        self.i += 1;
        Ok(name)
    }

    fn call(&mut self, name: &str, pos: usize) -> Result<Expr, Error> {
        self.i += 1; // '('
        let lower = name.to_ascii_lowercase();
        if lower == "isof" || lower == "cast" {
            let single = matches!(self.peek(), Tok::Str(_)) || matches!(self.peek(), Tok::Ident(n) if n.contains('.'));
            let expr = if single && *self.peek_at(1) == Tok::RParen {
                None
            } else {
                let e = self.expr()?;
                self.expect(Tok::Comma, "','")?;
                Some(Box::new(e))
            };
            let type_name = self.type_name()?;
            self.expect(Tok::RParen, "')'")?;
            if lower == "cast" && *self.peek() == Tok::Slash {
                // `cast(target, T)/groupId` is the path `target/T/groupId` (URL Conventions
                // §5.1.1.12.3; OData.net accepts a member path after cast).
                let mut path = match expr.as_deref() {
                    None => Vec::new(),
                    Some(Expr::Path(p)) => p.clone(),
                    Some(_) => return Err(self.syntax()),
                };
                path.push(Segment::Cast(type_name));
                return self.path_from(path);
            }
            return Ok(if lower == "isof" { Expr::IsOf { expr, type_name } } else { Expr::Cast { expr, type_name } });
        }
        let Some(function) = Function::from_name(name) else {
            let (kind, msg) = if UNSUPPORTED_FUNCTIONS.contains(&lower.as_str()) {
                (ErrorKind::NotSupported, format!("The function '{name}' is not supported."))
            } else {
                (ErrorKind::UnknownFunction, format!("Unknown function '{name}'."))
            };
            return Err(Error::at(kind, pos, msg));
        };
        let mut args = Vec::new();
        if *self.peek() == Tok::RParen {
            self.i += 1;
        } else {
            loop {
                args.push(self.expr()?);
                match self.peek() {
                    Tok::Comma => self.i += 1,
                    _ => {
                        self.expect(Tok::RParen, "')' or ','")?;
                        break;
                    }
                }
            }
        }
        let (min, max) = function.arity();
        if args.len() < min || args.len() > max {
            return Err(Error::at(
                ErrorKind::FunctionSignature,
                pos,
                format!(
                    "No function signature for the function with name '{}' matches the specified arguments.",
                    function.name()
                ),
            ));
        }
        Ok(Expr::Call { function, args })
    }
}
