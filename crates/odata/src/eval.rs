//! In-memory evaluation of bound `$filter` and `$orderby` (URL Conventions §5.1.1,
//! §5.1.5) over entities stored as JSON objects.
//!
//! Logic is two-valued: a comparison other than `eq`/`ne` with a null operand is
//! false, `eq null` is true only for null, and `not` simply negates. [`crate::sql`]
//! translates with exactly the same semantics.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::ast::Function;
use crate::bind::{BoundExpr, BoundFilter, BoundOrderBy, BoundPath, CompareOp, Const, Kind, Root, Step};
use crate::datetime;

/// True when `entity` (a JSON object of all structural properties, of runtime type
/// `entity_type`) satisfies `filter` (URL Conventions §5.1.1).
pub fn eval(filter: &BoundFilter, entity_type: &str, entity: &Value) -> bool {
    Cx::new(entity_type, entity).pred(&filter.expr)
}

/// Orders two entities, each given as (runtime entity type, JSON object), by
/// `orderby` (URL Conventions §5.1.5): nulls first when ascending, last when
/// descending; ties are `Equal` (the caller adds a key such as `id`).
pub fn compare(orderby: &[BoundOrderBy], a: (&str, &Value), b: (&str, &Value)) -> Ordering {
    let mut ca = Cx::new(a.0, a.1);
    let mut cb = Cx::new(b.0, b.1);
    for o in orderby {
        let va = order_value(ca.value(&o.expr, &o.kind), &o.kind);
        let vb = order_value(cb.value(&o.expr, &o.kind), &o.kind);
        let ord = match (&va, &vb) {
            (V::Null, V::Null) => Ordering::Equal,
            (V::Null, _) => Ordering::Less,
            (_, V::Null) => Ordering::Greater,
            _ => cmp(&va, &vb).unwrap_or(Ordering::Equal),
        };
        let ord = if o.descending { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// Enum members order by declaration; other values stay.
fn order_value<'v>(v: V<'v>, kind: &Kind) -> V<'v> {
    match (kind, &v) {
        (Kind::Enum(e), V::Text(t)) => e.members.iter().position(|m| m == t).map_or(V::Null, |i| V::Int(i as i64)),
        _ => v,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum V<'v> {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(Cow<'v, str>),
}

/// Exact comparison of an integer with a float (as SQLite does).
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= i64::MAX as f64 {
        return Some(Ordering::Less);
    }
    if f < i64::MIN as f64 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    let ord = i.cmp(&(t as i64));
    if ord != Ordering::Equal {
        return Some(ord);
    }
    0.0f64.partial_cmp(&(f - t))
}

fn cmp(a: &V, b: &V) -> Option<Ordering> {
    match (a, b) {
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(y)),
        (V::Int(x), V::Int(y)) => Some(x.cmp(y)),
        (V::Int(x), V::Double(y)) => cmp_int_float(*x, *y),
        (V::Double(x), V::Int(y)) => cmp_int_float(*y, *x).map(Ordering::reverse),
        (V::Double(x), V::Double(y)) => x.partial_cmp(y),
        (V::Text(x), V::Text(y)) => Some(x.as_ref().cmp(y.as_ref())),
        _ => None,
    }
}

fn equal(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Null, V::Null) => true,
        (V::Null, _) | (_, V::Null) => false,
        _ => cmp(a, b) == Some(Ordering::Equal),
    }
}

/// The value of a JSON node read as `kind` (a node of another JSON type is null).
fn extract<'v>(v: &'v Value, kind: &Kind) -> V<'v> {
    match (kind, v) {
        (Kind::Bool, Value::Bool(b)) => V::Bool(*b),
        (Kind::Number, Value::Number(n)) => match n.as_i64() {
            Some(i) => V::Int(i),
            None => n.as_f64().map_or(V::Null, V::Double),
        },
        (Kind::String | Kind::Enum(_) | Kind::Date, Value::String(s)) => V::Text(Cow::Borrowed(s)),
        (Kind::Guid, Value::String(s)) => V::Text(Cow::Owned(s.to_ascii_lowercase())),
        (Kind::DateTimeOffset, Value::String(s)) => datetime::key(s).map_or(V::Null, |k| V::Text(Cow::Owned(k))),
        _ => V::Null,
    }
}

/// The runtime type of a structured JSON value (its `@odata.type`, else `declared`).
pub(crate) fn runtime_type<'v>(v: &'v Value, declared: &'v str) -> Option<&'v str> {
    let o = v.as_object()?;
    Some(match o.get("@odata.type") {
        Some(Value::String(t)) => t.trim_start_matches('#'),
        _ => declared,
    })
}

struct Cx<'v> {
    entity_type: &'v str,
    root: &'v Value,
    vars: Vec<&'v Value>,
}

impl<'v> Cx<'v> {
    fn new(entity_type: &'v str, root: &'v Value) -> Self {
        Cx { entity_type: entity_type.trim_start_matches('#'), root, vars: Vec::new() }
    }

    fn resolve(&self, path: &'v BoundPath) -> Option<&'v Value> {
        let (mut cur, mut at_root) = match path.root {
            Root::It => (self.root, true),
            Root::Var(i) => (*self.vars.get(i)?, false),
        };
        if cur.is_null() {
            return None;
        }
        for step in &path.steps {
            match step {
                Step::Property(n) => {
                    cur = cur.as_object()?.get(n)?;
                    if cur.is_null() {
                        return None;
                    }
                    at_root = false;
                }
                Step::Cast { declared, allowed, .. } => {
                    let t = if at_root { self.entity_type } else { runtime_type(cur, declared)? };
                    if !allowed.iter().any(|a| a == t) {
                        return None;
                    }
                }
            }
        }
        Some(cur)
    }

    fn text(&mut self, e: &'v BoundExpr) -> Option<Cow<'v, str>> {
        match self.value(e, &Kind::String) {
            V::Text(t) => Some(t),
            _ => None,
        }
    }

    fn int(&mut self, e: &'v BoundExpr) -> Option<i64> {
        match self.value(e, &Kind::Number) {
            V::Int(i) => Some(i),
            _ => None,
        }
    }

    fn value(&mut self, e: &'v BoundExpr, _kind: &Kind) -> V<'v> {
        match e {
            BoundExpr::Null => V::Null,
            BoundExpr::Const(c) => match c {
                Const::Bool(b) => V::Bool(*b),
                Const::Int(i) => V::Int(*i),
                Const::Double(d) => V::Double(*d),
                Const::Text(t) => V::Text(Cow::Borrowed(t)),
            },
            BoundExpr::Value { path, kind } => self.resolve(path).map_or(V::Null, |v| extract(v, kind)),
            BoundExpr::Call { function, args } => {
                let arg = |i: usize| args.get(i);
                match function {
                    Function::ToLower | Function::ToUpper | Function::Trim => {
                        let Some(s) = arg(0).and_then(|a| self.text(a)) else {
                            return V::Null;
                        };
                        V::Text(Cow::Owned(match function {
                            Function::ToLower => s.to_lowercase(),
                            Function::ToUpper => s.to_uppercase(),
                            _ => s.trim().to_string(),
                        }))
                    }
                    Function::Length => {
                        arg(0).and_then(|a| self.text(a)).map_or(V::Null, |s| V::Int(s.chars().count() as i64))
                    }
                    Function::IndexOf => {
                        let a = arg(0).and_then(|a| self.text(a));
                        let b = arg(1).and_then(|b| self.text(b));
                        match (a, b) {
                            (Some(a), Some(b)) => {
                                V::Int(a.find(b.as_ref()).map_or(-1, |i| a[..i].chars().count() as i64))
                            }
                            _ => V::Null,
                        }
                    }
                    Function::Substring => {
                        let s = arg(0).and_then(|a| self.text(a));
                        let start = arg(1).and_then(|a| self.int(a));
                        let len = match arg(2) {
                            Some(a) => self.int(a),
                            None => Some(i64::MAX),
                        };
                        match (s, start, len) {
                            (Some(s), Some(start), Some(len)) => {
                                let start = usize::try_from(start.max(0)).unwrap_or(usize::MAX);
                                let len = usize::try_from(len.max(0)).unwrap_or(usize::MAX);
                                V::Text(Cow::Owned(s.chars().skip(start).take(len).collect()))
                            }
                            _ => V::Null,
                        }
                    }
                    Function::Concat => {
                        let a = arg(0).and_then(|a| self.text(a));
                        let b = arg(1).and_then(|b| self.text(b));
                        match (a, b) {
                            (Some(a), Some(b)) => V::Text(Cow::Owned(format!("{a}{b}"))),
                            _ => V::Null,
                        }
                    }
                    Function::StartsWith | Function::EndsWith | Function::Contains => V::Bool(self.pred(e)),
                }
            }
            _ => V::Bool(self.pred(e)),
        }
    }

    fn pred(&mut self, e: &'v BoundExpr) -> bool {
        match e {
            BoundExpr::Null => false,
            BoundExpr::Const(c) => *c == Const::Bool(true),
            BoundExpr::Value { .. } => self.value(e, &Kind::Bool) == V::Bool(true),
            BoundExpr::Exists(p) => self.resolve(p).is_some_and(Value::is_object),
            BoundExpr::Not(x) => !self.pred(x),
            BoundExpr::And(a, b) => self.pred(a) && self.pred(b),
            BoundExpr::Or(a, b) => self.pred(a) || self.pred(b),
            BoundExpr::Compare { op, kind, left, right } => {
                let l = self.value(left, kind);
                let r = self.value(right, kind);
                match op {
                    CompareOp::Eq => equal(&l, &r),
                    CompareOp::Ne => !equal(&l, &r),
                    _ => {
                        let (l, r) = (order_value(l, kind), order_value(r, kind));
                        matches!(
                            (op, cmp(&l, &r)),
                            (CompareOp::Gt, Some(Ordering::Greater))
                                | (CompareOp::Ge, Some(Ordering::Greater | Ordering::Equal))
                                | (CompareOp::Lt, Some(Ordering::Less))
                                | (CompareOp::Le, Some(Ordering::Less | Ordering::Equal))
                        )
                    }
                }
            }
            BoundExpr::In { kind, expr, list } => {
                let v = self.value(expr, kind);
                list.iter().any(|item| {
                    let w = self.value(item, kind);
                    equal(&v, &w)
                })
            }
            BoundExpr::Call { function, args } => {
                let a = args.first().and_then(|a| self.text(a));
                let b = args.get(1).and_then(|b| self.text(b));
                let (Some(a), Some(b)) = (a, b) else {
                    return false;
                };
                match function {
                    Function::StartsWith => a.starts_with(b.as_ref()),
                    Function::EndsWith => a.ends_with(b.as_ref()),
                    Function::Contains => a.contains(b.as_ref()),
                    _ => false,
                }
            }
            BoundExpr::IsOf { path, declared, types } => {
                let t = if path.root == Root::It && path.steps.is_empty() {
                    Some(self.entity_type)
                } else {
                    self.resolve(path).and_then(|v| runtime_type(v, declared))
                };
                t.is_some_and(|t| types.iter().any(|x| x == t))
            }
            BoundExpr::Any { collection, predicate, .. } => {
                let items = self.items(collection);
                match predicate {
                    None => !items.is_empty(),
                    Some(p) => items.into_iter().any(|item| self.with_var(item, p)),
                }
            }
            BoundExpr::All { collection, predicate, .. } => {
                self.items(collection).into_iter().all(|item| self.with_var(item, predicate))
            }
        }
    }

    fn items(&self, collection: &'v BoundPath) -> Vec<&'v Value> {
        self.resolve(collection).and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default()
    }

    fn with_var(&mut self, item: &'v Value, predicate: &'v BoundExpr) -> bool {
        self.vars.push(item);
        let r = self.pred(predicate);
        self.vars.pop();
        r
    }
}
