//! Intune assignment filter rules (`(device.deviceOwnership -eq "Corporate") and
//! (device.osVersion -startsWith "10.0")`), parsed and evaluated against device properties
//! a caller supplies, for the effective-assignment view ([`crate::effective`]).
//!
//! The language is taken from MicrosoftDocs/memdocs
//! `memdocs/intune/fundamentals/filters-device-properties.md`:
//! - "Advanced rule editing": the form is `([entity].[property name] [operation] [value])`,
//!   "similar to Microsoft Entra dynamic groups"; "The properties, operations, and values are
//!   case insensitive"; "Parentheses and nested parentheses are supported"; `Null` or `$Null`
//!   is a value for the equality operators.
//! - "Supported operators": `or`, `and`, `-eq`, `-ne`, `-startsWith`, `-in`, `-notIn`,
//!   `-contains`, `-notContains`, each with or without its `-`. `-notStartsWith`, `-endsWith`
//!   and `-notEndsWith` are understood too (the issue lists them; Entra's dynamic-group rule
//!   language, which the page points to, has `-notStartsWith`).
//! - `and` binds tighter than `or`, as in the dynamic-group rules the page points to
//!   (their operator precedence lists `-or` below `-and`).
//!
//! Anything else (`-match`, `-gt` on `operatingSystemVersion`, `app.` rules, a property the
//! caller did not supply, a rule that does not parse) is *not evaluated*: the answer then
//! holds under the filter as a condition, never a guess.

use std::collections::BTreeMap;

/// The longest rule parsed; longer ones are not evaluated (Intune's editor limits rules
/// to a few thousand characters; this bounds the work a stored rule can cause).
pub const MAX_RULE_LEN: usize = 4096;
/// The deepest nesting of parentheses parsed.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    OpenList,
    CloseList,
    Comma,
    Str(String),
    Word(String),
}

fn lex(rule: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let mut chars = rule.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            '[' => {
                chars.next();
                out.push(Tok::OpenList);
            }
            ']' => {
                chars.next();
                out.push(Tok::CloseList);
            }
            ',' => {
                chars.next();
                out.push(Tok::Comma);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        // A quote inside a value is escaped with a backtick (the dynamic-group
                        // rule syntax: `"Sa`"les"`).
                        '`' => s.push(chars.next()?),
                        other => s.push(other),
                    }
                }
                out.push(Tok::Str(s));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "()[],\"".contains(c) {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Some(out)
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    In,
    NotIn,
}

fn op(word: &str) -> Option<Op> {
    let w = word.strip_prefix('-').unwrap_or(word).to_ascii_lowercase();
    Some(match w.as_str() {
        "eq" | "equals" => Op::Eq,
        "ne" | "notequals" => Op::Ne,
        "startswith" => Op::StartsWith,
        "notstartswith" => Op::NotStartsWith,
        "endswith" => Op::EndsWith,
        "notendswith" => Op::NotEndsWith,
        "contains" => Op::Contains,
        "notcontains" => Op::NotContains,
        "in" => Op::In,
        "notin" => Op::NotIn,
        _ => return None,
    })
}

/// A value on the right of an operator.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    One(String),
    Null,
    List(Vec<String>),
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Cmp { property: String, op: Op, value: Operand },
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn is_word(&self, names: &[&str]) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if names.iter().any(|n| w.eq_ignore_ascii_case(n)))
    }

    fn or(&mut self, depth: usize) -> Option<Expr> {
        let mut parts = vec![self.and(depth)?];
        while self.is_word(&["or", "-or"]) {
            self.at += 1;
            parts.push(self.and(depth)?);
        }
        Some(if parts.len() == 1 { parts.remove(0) } else { Expr::Or(parts) })
    }

    fn and(&mut self, depth: usize) -> Option<Expr> {
        let mut parts = vec![self.factor(depth)?];
        while self.is_word(&["and", "-and"]) {
            self.at += 1;
            parts.push(self.factor(depth)?);
        }
        Some(if parts.len() == 1 { parts.remove(0) } else { Expr::And(parts) })
    }

    fn factor(&mut self, depth: usize) -> Option<Expr> {
        if depth >= MAX_DEPTH {
            return None;
        }
        if self.peek() == Some(&Tok::Open) {
            self.at += 1;
            let e = self.or(depth + 1)?;
            return (self.next()? == Tok::Close).then_some(e);
        }
        let Tok::Word(name) = self.next()? else { return None };
        let (entity, property) = name.split_once('.')?;
        if !entity.eq_ignore_ascii_case("device") || property.is_empty() {
            return None;
        }
        let Tok::Word(o) = self.next()? else { return None };
        let op = op(&o)?;
        let value = match self.next()? {
            Tok::Str(s) => Operand::One(s),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") || w.eq_ignore_ascii_case("$null") => Operand::Null,
            Tok::Word(w) => Operand::One(w),
            Tok::OpenList => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        Tok::Str(s) => items.push(s),
                        Tok::CloseList if items.is_empty() => break,
                        _ => return None,
                    }
                    match self.next()? {
                        Tok::Comma => {}
                        Tok::CloseList => break,
                        _ => return None,
                    }
                }
                Operand::List(items)
            }
            _ => return None,
        };
        // Lists go with `-in`/`-notIn` only, and those take only lists.
        if matches!(op, Op::In | Op::NotIn) != matches!(value, Operand::List(_)) {
            return None;
        }
        if value == Operand::Null && !matches!(op, Op::Eq | Op::Ne) {
            return None;
        }
        Some(Expr::Cmp { property: property.to_ascii_lowercase(), op, value })
    }
}

/// A rule, parsed; `None` when it is not in the language above.
#[derive(Debug, Clone)]
pub struct Rule(Expr);

impl Rule {
    /// Parses `text`; `None` for anything this parser does not understand.
    #[must_use]
    pub fn parse(text: &str) -> Option<Rule> {
        if text.len() > MAX_RULE_LEN {
            return None;
        }
        let mut p = Parser { toks: lex(text)?, at: 0 };
        let e = p.or(0)?;
        (p.at == p.toks.len()).then_some(Rule(e))
    }

    /// The rule's answer for a device with `properties` (names in lower case, values as
    /// given); `None` when the rule names a property that is not given.
    #[must_use]
    pub fn evaluate(&self, properties: &BTreeMap<String, String>) -> Option<bool> {
        eval(&self.0, properties)
    }
}

fn eval(e: &Expr, props: &BTreeMap<String, String>) -> Option<bool> {
    match e {
        // Every branch is evaluated, so that a property missing anywhere makes the whole
        // rule "not evaluated" rather than an answer that depends on the order of terms.
        Expr::Or(parts) => parts.iter().map(|p| eval(p, props)).collect::<Option<Vec<_>>>().map(|v| v.contains(&true)),
        Expr::And(parts) => {
            parts.iter().map(|p| eval(p, props)).collect::<Option<Vec<_>>>().map(|v| !v.contains(&false))
        }
        Expr::Cmp { property, op, value } => {
            let actual = props.get(property)?.to_lowercase();
            let one = |s: &String| s.to_lowercase();
            Some(match (op, value) {
                (Op::Eq, Operand::Null) => actual.is_empty(),
                (Op::Ne, Operand::Null) => !actual.is_empty(),
                (Op::Eq, Operand::One(v)) => actual == one(v),
                (Op::Ne, Operand::One(v)) => actual != one(v),
                (Op::StartsWith, Operand::One(v)) => actual.starts_with(&one(v)),
                (Op::NotStartsWith, Operand::One(v)) => !actual.starts_with(&one(v)),
                (Op::EndsWith, Operand::One(v)) => actual.ends_with(&one(v)),
                (Op::NotEndsWith, Operand::One(v)) => !actual.ends_with(&one(v)),
                (Op::Contains, Operand::One(v)) => actual.contains(&one(v)),
                (Op::NotContains, Operand::One(v)) => !actual.contains(&one(v)),
                (Op::In, Operand::List(l)) => l.iter().any(|v| one(v) == actual),
                (Op::NotIn, Operand::List(l)) => !l.iter().any(|v| one(v) == actual),
                _ => return None,
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())).collect()
    }

    #[test]
    fn each_operator_against_a_table_of_devices() {
        let dev = props(&[
            ("deviceOwnership", "Corporate"),
            ("osVersion", "10.0.19045"),
            ("manufacturer", "Microsoft"),
            ("model", "Surface Book 3"),
        ]);
        for (rule, want) in [
            (r#"(device.deviceOwnership -eq "Corporate")"#, Some(true)),
            (r#"(device.deviceOwnership -eq "corporate")"#, Some(true)),
            (r#"(DEVICE.DEVICEOWNERSHIP EQ "Corporate")"#, Some(true)),
            (r#"(device.deviceOwnership -ne "Corporate")"#, Some(false)),
            (r#"(device.osVersion -startsWith "10.0")"#, Some(true)),
            (r#"(device.osVersion -notStartsWith "10.0")"#, Some(false)),
            (r#"(device.osVersion -endsWith "19045")"#, Some(true)),
            (r#"(device.osVersion -notEndsWith "19045")"#, Some(false)),
            (r#"(device.model -contains "Book")"#, Some(true)),
            (r#"(device.model -notContains "Book")"#, Some(false)),
            (r#"(device.manufacturer -in ["Samsung","Lenovo","Microsoft"])"#, Some(true)),
            (r#"(device.manufacturer -notIn ["Samsung","Lenovo","Microsoft"])"#, Some(false)),
            (r#"(device.manufacturer -in [])"#, Some(false)),
            (r#"(device.deviceOwnership -eq "Corporate") and (device.osVersion -startsWith "10.0")"#, Some(true)),
            (r#"(device.deviceOwnership -eq "Personal") and (device.osVersion -startsWith "10.0")"#, Some(false)),
            (r#"(device.deviceOwnership -eq "Personal") or (device.osVersion -startsWith "10.0")"#, Some(true)),
            (r#"(device.deviceOwnership -eq "Personal") -or (device.osVersion -startsWith "11")"#, Some(false)),
            // `and` binds tighter than `or`: true or (false and false).
            (r#"(device.model -contains "Book") or (device.model -eq "x") and (device.model -eq "y")"#, Some(true)),
            (
                r#"((device.model -eq "x") or (device.model -contains "Book")) and (device.manufacturer -eq "Microsoft")"#,
                Some(true),
            ),
            (r#"(device.deviceCategory -eq "Engineering")"#, None),
            (r#"(device.model -eq "x") or (device.deviceCategory -eq "y")"#, None),
            (r#"(device.enrollmentProfileName -ne $null)"#, None),
            (r#"(device.model -ne $null)"#, Some(true)),
            (r#"(device.model -eq Null)"#, Some(false)),
        ] {
            let parsed = Rule::parse(rule).unwrap_or_else(|| panic!("{rule} should parse"));
            assert_eq!(parsed.evaluate(&dev), want, "{rule}");
        }
    }

    #[test]
    fn what_it_does_not_understand_is_not_parsed() {
        for rule in [
            "",
            "(",
            "()",
            r#"(device.model -match "x")"#,
            r#"(device.operatingSystemVersion -gt 10.0.22000.1000)"#,
            r#"(app.appVersion -eq "1")"#,
            r#"(device.model -eq "unterminated)"#,
            r#"(device.model -in "notalist")"#,
            r#"(device.model -eq ["a"])"#,
            r#"(device.model -startsWith $null)"#,
            r#"(device.model -eq "a") (device.model -eq "b")"#,
            r#"(device.model -eq "a") and"#,
            r#"(device.model -in ["a",])"#,
            "device.",
        ] {
            assert!(Rule::parse(rule).is_none(), "{rule:?} should not parse");
        }
        let deep = format!("{}device.model -eq \"a\"{}", "(".repeat(100), ")".repeat(100));
        assert!(Rule::parse(&deep).is_none(), "nesting is bounded");
        let long = format!("(device.model -eq \"{}\")", "a".repeat(MAX_RULE_LEN));
        assert!(Rule::parse(&long).is_none(), "length is bounded");
    }

    #[test]
    fn a_backtick_escapes_a_quote() {
        let r = Rule::parse(r#"(device.deviceName -eq "Scott`"s")"#).unwrap();
        assert_eq!(r.evaluate(&props(&[("deviceName", "scott\"s")])), Some(true));
    }
}
