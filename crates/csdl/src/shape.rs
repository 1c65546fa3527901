//! Shaping a stored entity into its wire form for one version (OData JSON Format §4.5.3,
//! minimal metadata): `@odata.type` with `#` on a single entity, on an item of a collection
//! and on a nested value only where its type is not exactly the declared one (rulings.md 4,
//! amended: the live service's `.../assignments` lists carry none); every property of the type
//! present, unset ones null (graph-behaviours.md "Shapes"); properties the version does not
//! know left out (rulings.md 6).

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::payload::default_value;
use crate::{Schema, TypeRef, qualify};

/// Which properties a response carries (`$select`, OData URL Conventions §5.1.3).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `None` selects every structural property.
    pub properties: Option<Vec<String>>,
}

impl Selection {
    fn wants(&self, name: &str) -> bool {
        self.properties.as_ref().is_none_or(|ps| ps.iter().any(|p| p == "*" || p == name))
    }
}

/// Whether an entity answered as `Some(item of a collection of this declared type)` (or
/// alone, `None`) carries `@odata.type`: alone always, as the seeds show; as an item only
/// where its type is not exactly the collection's declared type (rulings.md 4,
/// graph-behaviours.md "Shapes the live service returns").
fn entity_annotated(type_name: &str, item_of: Option<&str>) -> bool {
    item_of.is_none_or(|declared| declared != type_name)
}

/// The wire form of a stored entity, or `None` when this version has no such type.
/// `item_of` is the declared type of the collection the entity is listed in (`None` for
/// an entity answered alone).
#[must_use]
pub fn shape_entity(
    schema: &Schema,
    type_name: &str,
    body: &Map<String, Value>,
    select: &Selection,
    item_of: Option<&str>,
) -> Option<Map<String, Value>> {
    schema.structured(type_name)?;
    let mut out = Map::new();
    if entity_annotated(type_name, item_of) {
        out.insert("@odata.type".into(), Value::String(format!("#{type_name}")));
    }
    let props = schema.all_properties(type_name);
    // `id` first, as Graph writes it; then the rest in schema order, base types first.
    for prop in props.iter().filter(|p| p.name == "id").chain(props.iter().filter(|p| p.name != "id")) {
        if !select.wants(&prop.name) {
            continue;
        }
        let value = match body.get(&prop.name) {
            Some(v) => shape_value(schema, &prop.type_ref, v),
            None => default_value(schema, &prop.type_ref, prop.collection, prop.nullable),
        };
        out.insert(prop.name.clone(), value);
    }
    Some(out)
}

/// The wire form of a value of an entity or complex type answered on its own (a single
/// object, behaviour.json `singleObjects`): every property of the type, unset ones at the
/// schema's defaults. An entity carries `@odata.type`, a complex value of its declared
/// type none. `None` when this version has no such type.
#[must_use]
pub fn shape_object(schema: &Schema, type_name: &str, body: &Map<String, Value>) -> Option<Map<String, Value>> {
    let t = schema.structured(type_name)?;
    if t.kind == crate::TypeKind::Entity {
        return shape_entity(schema, type_name, body, &Selection::default(), None);
    }
    Some(shape_complex(schema, type_name, body))
}

fn shape_value(schema: &Schema, type_ref: &TypeRef, value: &Value) -> Value {
    match (type_ref, value) {
        (TypeRef::Complex(declared), Value::Object(obj)) => Value::Object(shape_complex(schema, declared, obj)),
        (TypeRef::Complex(_), Value::Array(items)) => {
            Value::Array(items.iter().map(|v| shape_value(schema, type_ref, v)).collect())
        }
        _ => value.clone(),
    }
}

fn shape_complex(schema: &Schema, declared: &str, obj: &Map<String, Value>) -> Map<String, Value> {
    let stored = obj.get("@odata.type").and_then(Value::as_str).map(qualify);
    // A type this version lacks (beta-only scopeTagGroupAssignmentTarget in v1.0) is shown
    // through its nearest base that the version has.
    let mut actual = stored.unwrap_or_else(|| declared.to_owned());
    let beta_lineage_fallback = schema.structured(&actual).is_none();
    if beta_lineage_fallback {
        actual = declared.to_owned();
    }
    let mut out = Map::new();
    let declared_is_abstract = schema.structured(declared).is_some_and(|t| t.is_abstract);
    if actual != declared || declared_is_abstract {
        out.insert("@odata.type".into(), Value::String(format!("#{actual}")));
    }
    for prop in schema.all_properties(&actual) {
        let value = match obj.get(&prop.name) {
            Some(v) => shape_value(schema, &prop.type_ref, v),
            None => default_value(schema, &prop.type_ref, prop.collection, prop.nullable),
        };
        out.insert(prop.name.clone(), value);
    }
    out
}

/// Writes the members of an entity's wire form (no braces) straight from its stored JSON
/// text into `out`: no intermediate tree is built, stored values are copied verbatim and
/// only complex values are re-shaped. Same output as [`shape_entity`]; returns false when
/// this version has no such type. (Listing 100 assignments spent most of its time
/// parsing and rebuilding JSON trees: issue 8's W3.)
pub fn write_entity_members(
    schema: &Schema,
    type_name: &str,
    raw: &str,
    select: &Selection,
    item_of: Option<&str>,
    out: &mut String,
) -> bool {
    let Some(t) = schema.structured(type_name) else { return false };
    let parsed = Parsed::parse(raw);
    let fields = parsed.root();
    let mut first = true;
    if entity_annotated(&t.name, item_of) {
        out.push_str("\"@odata.type\":\"#");
        out.push_str(&t.name);
        out.push('"');
        first = false;
    }
    let props = schema.all_properties(type_name);
    for prop in props.iter().filter(|p| p.name == "id").chain(props.iter().filter(|p| p.name != "id")) {
        if !select.wants(&prop.name) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(&prop.name);
        out.push_str("\":");
        write_value(schema, prop, member(fields, &prop.name), &parsed, out);
    }
    true
}

/// [`write_entity_members`], remembering the wire forms of whole entities in the schema's
/// memo (`memo.rs`): for reads, whose rows are mostly shaped again unchanged. The same
/// output; `$select` answers are shaped each time.
pub fn write_entity_members_remembered(
    schema: &Schema,
    type_name: &str,
    raw: &str,
    select: &Selection,
    item_of: Option<&str>,
    out: &mut String,
) -> bool {
    if select.properties.is_some() {
        return write_entity_members(schema, type_name, raw, select, item_of, out);
    }
    // As `write_entity_members` decides it: on the schema's name of the type.
    let Some(t) = schema.structured(type_name) else { return false };
    let annotated = entity_annotated(&t.name, item_of);
    if schema.memo.write(annotated, type_name, raw, out) {
        return true;
    }
    let start = out.len();
    if !write_entity_members(schema, type_name, raw, select, item_of, out) {
        return false;
    }
    schema.memo.keep(annotated, type_name, raw, out.get(start..).unwrap_or_default());
    true
}

fn write_value(
    schema: &Schema,
    prop: &crate::Property,
    value: Option<Member<'_>>,
    parsed: &Parsed<'_>,
    out: &mut String,
) {
    let Some((_, raw, child)) = value else {
        out.push_str(&default_value(schema, &prop.type_ref, prop.collection, prop.nullable).to_string());
        return;
    };
    let TypeRef::Complex(declared) = &prop.type_ref else {
        out.push_str(raw);
        return;
    };
    if prop.collection {
        let items = scan_array(raw).unwrap_or_else(|| {
            serde_json::from_str::<Vec<&RawValue>>(raw).unwrap_or_default().into_iter().map(RawValue::get).collect()
        });
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let own = Parsed::parse(item);
            write_complex(schema, declared, item, own.object(0), &own, out);
        }
        out.push(']');
    } else {
        match child.and_then(|c| parsed.object(c)) {
            Some(fields) => write_complex(schema, declared, raw, Some(fields), parsed, out),
            None => {
                // Not read by the enclosing pass (its fallback): read on its own.
                let own = Parsed::parse(raw);
                write_complex(schema, declared, raw, own.object(0), &own, out);
            }
        }
    }
}

/// Writes a complex value; `fields` are its members when the enclosing pass read them.
fn write_complex(
    schema: &Schema,
    declared: &str,
    raw: &str,
    fields: Option<&[Member<'_>]>,
    parsed: &Parsed<'_>,
    out: &mut String,
) {
    let Some(fields) = fields else {
        out.push_str(raw); // null (or a value of another shape): as stored
        return;
    };
    let stored = member(fields, "@odata.type").and_then(|(_, v, _)| unquote(v));
    // A type this version lacks is shown through the declared type (rulings.md 6).
    let actual = stored.and_then(|t| schema.structured(t)).map_or(declared, |t| t.name.as_str());
    out.push('{');
    let declared_is_abstract = schema.structured(declared).is_some_and(|t| t.is_abstract);
    let mut first = true;
    if actual != declared || declared_is_abstract {
        out.push_str("\"@odata.type\":\"#");
        out.push_str(actual);
        out.push('"');
        first = false;
    }
    for prop in schema.all_properties(actual) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(&prop.name);
        out.push_str("\":");
        write_value(schema, prop, member(fields, &prop.name), parsed, out);
    }
    out.push('}');
}

/// A JSON string's text without its quotes, when it has no escapes (type names never do);
/// serde_json otherwise.
fn unquote(v: &str) -> Option<&str> {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Some(inner),
        _ => serde_json::from_str::<&str>(v).ok(),
    }
}

/// One member of a stored object: its name, its value's text, and where the value's own
/// members are in [`Parsed::objects`] when it is an object.
type Member<'a> = (&'a str, &'a str, Option<usize>);

/// A member by name. A linear search: objects have a few dozen members at most, and
/// hashing every name showed up in profiles (issue 8's W3).
fn member<'a>(fields: &[Member<'a>], name: &str) -> Option<Member<'a>> {
    fields.iter().find(|(k, _, _)| *k == name).copied()
}

/// The members of a stored JSON object, borrowed from its text, in stored order, with
/// nested objects read in the same pass, so each byte of a row is scanned once (scanning
/// a nested value to find its end and then again to read it was a third of W3). The text
/// is ours (serde_json's compact output), so a boundary scanner reads it; anything it does
/// not expect falls back to serde_json (one level at a time).
struct Parsed<'a> {
    /// `objects[0]` is the root; a member's third field indexes its object's members.
    /// Only the first `used` are this text's (the rest are pooled, empty).
    objects: Vec<Vec<Member<'a>>>,
    used: usize,
}

thread_local! {
    /// The member vectors of the last finished parse, for the next one on this thread:
    /// three allocations and frees per row were a twentieth of listing 100 (callgrind,
    /// issue 8's W3).
    static POOL: std::cell::RefCell<Vec<Vec<Member<'static>>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `v` emptied, with another lifetime, in the same allocation (an in-place collect of an
/// empty vector of a type with the same layout).
// `filter_map` because it changes the item type (the lifetime), which `filter` cannot.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b>(mut v: Vec<Member<'_>>) -> Vec<Member<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

impl<'a> Parsed<'a> {
    fn parse(raw: &'a str) -> Parsed<'a> {
        let pooled = POOL.try_with(|p| p.try_borrow_mut().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default());
        let mut objects: Vec<Vec<Member<'a>>> = pooled.unwrap_or_default().into_iter().map(recycle).collect();
        let mut used = 0;
        match scan_object_tree(raw, 0, &mut objects, &mut used) {
            Some((end, _)) if end == raw.len() => Parsed { objects, used },
            _ if raw.starts_with('{') => {
                Parsed { objects: vec![serde_parse(raw).into_iter().map(|(k, v)| (k, v, None)).collect()], used: 1 }
            }
            _ => Parsed { objects: Vec::new(), used: 0 },
        }
    }

    /// The members of object `i` (0 is the root).
    fn object(&self, i: usize) -> Option<&[Member<'a>]> {
        (i < self.used).then(|| self.objects.get(i).map(Vec::as_slice)).flatten()
    }

    /// The root object's members (none when the text is not an object).
    fn root(&self) -> &[Member<'a>] {
        self.object(0).unwrap_or(&[])
    }
}

impl Drop for Parsed<'_> {
    fn drop(&mut self) {
        let objects: Vec<Vec<Member<'static>>> = std::mem::take(&mut self.objects).into_iter().map(recycle).collect();
        // One set is kept (a nested parse's, dropped first, gives way to the outer one's).
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut()
                && p.len() <= objects.len()
            {
                *p = objects;
            }
        });
    }
}

/// Reads the compact object starting at `i` into `objects` (nested objects first-come, as
/// they are met); returns its end (exclusive) and its index.
fn scan_object_tree<'a>(
    raw: &'a str,
    i: usize,
    objects: &mut Vec<Vec<Member<'a>>>,
    used: &mut usize,
) -> Option<(usize, usize)> {
    let b = raw.as_bytes();
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let idx = *used;
    *used += 1;
    match objects.get_mut(idx) {
        Some(pooled) => pooled.clear(),
        None => objects.push(Vec::with_capacity(if idx == 0 { 24 } else { 8 })),
    }
    let mut i = i + 1;
    if b.get(i) == Some(&b'}') {
        return Some((i + 1, idx));
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        // A key with an escape is left to serde_json: found by the same scan that finds
        // the key's end (a second pass over every key was 4 % of W3).
        let key_end = i + 1 + memchr::memchr2(b'"', b'\\', b.get(i + 1..)?)?;
        if b[key_end] != b'"' || b.get(key_end + 1) != Some(&b':') {
            return None;
        }
        let key = raw.get(i + 1..key_end)?;
        let key_end = key_end + 1;
        let start = key_end + 1;
        let (end, child) = if b.get(start) == Some(&b'{') {
            let (end, child) = scan_object_tree(raw, start, objects, used)?;
            (end, Some(child))
        } else {
            (value_end(b, start)?, None)
        };
        objects[idx].push((key, raw.get(start..end)?, child));
        match b.get(end) {
            Some(b',') => i = end + 1,
            Some(b'}') => return Some((end + 1, idx)),
            _ => return None,
        }
    }
}

/// serde_json's reading of an object's members (the fallback).
fn serde_parse(raw: &str) -> Vec<(&str, &str)> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<(&'de str, &'de str)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
            while let Some((k, v)) = map.next_entry::<&'de str, &'de RawValue>()? {
                out.push((k, v.get()));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    serde::Deserializer::deserialize_map(&mut de, Visitor).unwrap_or_default()
}

/// What a byte means to [`value_end`] inside an object or array.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const OPEN: u8 = 2;
const CLOSE: u8 = 3;
static CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    t[b'"' as usize] = QUOTE;
    t[b'{' as usize] = OPEN;
    t[b'[' as usize] = OPEN;
    t[b'}' as usize] = CLOSE;
    t[b']' as usize] = CLOSE;
    t
};

/// The end (exclusive) of the JSON value starting at `i`, for compact JSON. Strings are
/// skipped with `memchr` and containers walked with a byte-class table: the byte-at-a-time
/// version was a fifth of listing 100 assignments (callgrind, issue 8's W3).
fn value_end(b: &[u8], mut i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            while i < b.len() {
                match CLASS[usize::from(b[i])] {
                    QUOTE => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    OPEN => depth += 1,
                    CLOSE => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let start = i;
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']') {
                if b[i].is_ascii_whitespace() {
                    return None;
                }
                i += 1;
            }
            (i > start).then_some(i)
        }
    }
}

/// The end (exclusive) of the string starting at the quote `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        j += 2; // an escape and the character it escapes
    }
}

/// `[v,...]` as value texts; `None` for anything but compact JSON.
fn scan_array(raw: &str) -> Option<Vec<&str>> {
    let b = raw.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 1;
    if b.get(i) == Some(&b']') {
        return (i + 1 == b.len()).then_some(out);
    }
    loop {
        let end = value_end(b, i)?;
        out.push(raw.get(i..end)?);
        match b.get(end) {
            Some(b',') => i = end + 1,
            Some(b']') if end + 1 == b.len() => return Some(out),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod scanner_tests {
    use super::{Parsed, scan_array, serde_parse};

    /// The tree scanner's root members, or `None` when it gave up (serde_json read them).
    fn scan_object(raw: &str) -> Option<Vec<(&str, &str)>> {
        let mut objects = Vec::new();
        let (end, _) = super::scan_object_tree(raw, 0, &mut objects, &mut 0)?;
        (end == raw.len()).then(|| objects[0].iter().map(|(k, v, _)| (*k, *v)).collect())
    }

    #[test]
    fn pooled_vectors_never_show_members_of_an_earlier_text() {
        drop(Parsed::parse(r#"{"a":{"b":{"c":1}},"d":2}"#));
        let p = Parsed::parse(r#"{"x":1}"#);
        assert_eq!(p.root(), [("x", "1", None)]);
        assert!(p.object(1).is_none(), "a pooled vector of the earlier text is not an object of this one");
        // A parse while another lives (a collection's items) has vectors of its own.
        let inner = Parsed::parse(r#"{"y":{"z":2}}"#);
        assert_eq!(inner.object(1), Some(&[("z", "2", None)][..]));
        assert_eq!(p.root(), [("x", "1", None)]);
        drop(inner);
        drop(p);
        let q = Parsed::parse("not an object");
        assert!(q.root().is_empty() && q.object(0).is_none());
    }

    #[test]
    fn the_scanner_reads_what_serde_json_reads() {
        let objects = [
            r#"{}"#,
            r#"{"a":1}"#,
            r#"{"id":"x","n":-1.5e3,"b":true,"z":null,"s":"q\"uo\\te,}]","o":{"@odata.type":"t","k":[1,{"x":"]"}]},"e":[],"u":"é☃"}"#,
            r#"{"target":{"@odata.type":"microsoft.graph.groupAssignmentTarget","groupId":"g","deviceAndAppManagementAssignmentFilterId":null}}"#,
        ];
        for o in objects {
            let scanned = scan_object(o).expect(o);
            assert_eq!(scanned, serde_parse(o), "{o}");
            // And every value is itself valid JSON.
            for (_, v) in &scanned {
                assert!(serde_json::from_str::<serde_json::Value>(v).is_ok(), "{v}");
            }
        }
        // Not compact or not an object: left to serde_json.
        for o in [r#"{ "a": 1 }"#, "[1]", "null", r#"{"a":1"#, r#"{"a\"b":1}"#, r#"{"a":1}x"#] {
            assert!(scan_object(o).is_none(), "{o}");
        }
        // Nested objects are read in the same pass, their members indexed.
        let parsed = Parsed::parse(r#"{"a":{"b":{"c":1}},"d":2}"#);
        assert_eq!(parsed.used, 3);
        assert_eq!(parsed.root()[0], ("a", r#"{"b":{"c":1}}"#, Some(1)));
        assert_eq!(parsed.objects[1][0], ("b", r#"{"c":1}"#, Some(2)));
        assert_eq!(parsed.objects[2][0], ("c", "1", None));
        assert_eq!(scan_array(r#"[{"a":[1,2]},"x,]",3]"#), Some(vec![r#"{"a":[1,2]}"#, r#""x,]""#, "3"]));
        assert_eq!(scan_array("[]"), Some(vec![]));
        assert!(scan_array("[1,]").is_none());
    }
}
