//! Splitting a resource path into segments (OData URL Conventions §4): percent-decoding,
//! key predicates in both `collection/{id}` and `collection('{id}')` forms, and the
//! leniencies real clients need (`//` and a trailing `/`, clients.md §0).

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::error::{Result, ServiceError};

/// One path segment: a name and an optional key predicate, borrowed from the request's
/// path where nothing had to be decoded (a segment's two `String`s were a twentieth of a
/// point read's allocations: callgrind, issue 8's W2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The decoded segment name (a navigation, action, cast, key, `$count`, `$ref`).
    pub name: Cow<'a, str>,
    /// The key inside `name(...)`, unquoted.
    pub key: Option<Cow<'a, str>>,
}

impl Segment<'_> {
    /// The segment with its own copies (a write job outlives the request's path).
    #[must_use]
    pub fn into_owned(self) -> Segment<'static> {
        Segment { name: Cow::Owned(self.name.into_owned()), key: self.key.map(|k| Cow::Owned(k.into_owned())) }
    }
}

/// Splits the path after the version segment.
///
/// # Errors
/// A segment that is not valid UTF-8 after decoding, or a malformed key predicate.
pub fn parse_path(raw: &str) -> Result<Vec<Segment<'_>>> {
    // One pass over the bytes: a segment with neither `%` nor `(` is its own name, as
    // `parse_segment` would find after searching it twice (`split`, `contains('%')` and
    // `find('(')` were 1.5 k instructions of a point read, callgrind).
    let mut out = Vec::with_capacity(8);
    let mut start = 0;
    let mut plain = true;
    for (i, b) in raw.bytes().enumerate() {
        match b {
            b'/' => {
                push_segment(&mut out, &raw[start..i], plain)?;
                start = i + 1;
                plain = true;
            }
            b'%' | b'(' => plain = false,
            _ => {}
        }
    }
    push_segment(&mut out, &raw[start..], plain)?;
    Ok(out)
}

/// Appends `raw` unless it is empty (`//` and a trailing `/` are lenient, clients.md §0).
fn push_segment<'a>(out: &mut Vec<Segment<'a>>, raw: &'a str, plain: bool) -> Result<()> {
    if raw.is_empty() {
        return Ok(());
    }
    out.push(if plain { Segment { name: Cow::Borrowed(raw), key: None } } else { parse_segment(raw)? });
    Ok(())
}

/// `d[range]`, borrowed when `d` is.
fn part<'a>(d: &Cow<'a, str>, range: std::ops::Range<usize>) -> Cow<'a, str> {
    match d {
        Cow::Borrowed(s) => Cow::Borrowed(&s[range]),
        Cow::Owned(s) => Cow::Owned(s[range].to_owned()),
    }
}

/// The resource a path starts at (`groups`, `deviceManagement`), decoded exactly as
/// [`parse_path`] decodes it for resolution: the server decides permissions on this name,
/// so `gr%6Fups`, `//groups` and `Groups('x')` are checked as the `groups` they resolve to
/// (issue 18 item 2). `None` for the service document.
///
/// # Errors
/// As [`parse_path`].
pub fn root_resource(raw: &str) -> Result<Option<Cow<'_, str>>> {
    match raw.split('/').find(|s| !s.is_empty()) {
        Some(first) => Ok(Some(parse_segment(first)?.name)),
        None => Ok(None),
    }
}

fn parse_segment(raw: &str) -> Result<Segment<'_>> {
    // Most segments have nothing to decode; percent-encoding's decoder walks every byte
    // through an iterator even then (4 % of a point read, callgrind, issue 8's W2).
    let decoded: Cow<'_, str> = if raw.contains('%') {
        Cow::Owned(
            percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| ServiceError::BadQuery(format!("The path segment '{raw}' is not valid UTF-8.")))?
                .into_owned(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    let Some(open) = decoded.find('(') else {
        return Ok(Segment { name: decoded, key: None });
    };
    if !decoded.ends_with(')') {
        return Err(ServiceError::BadQuery(format!(
            "Bad Request - Error in query syntax: the segment '{decoded}' has an unclosed key."
        )));
    }
    let name = part(&decoded, 0..open);
    // `('id')`, `(id)` and `(id='x')` all name the same key (OData URL §4.3.1).
    let mut start = open + 1;
    let mut end = decoded.len() - 1;
    if let Some(eq) = decoded[start..end].find('=') {
        start += eq + 1;
    }
    let inner = &decoded[start..end];
    let key = if inner.len() >= 2 && inner.starts_with('\'') && inner.ends_with('\'') {
        start += 1;
        end -= 1;
        let quoted = &decoded[start..end];
        if quoted.contains("''") { Cow::Owned(quoted.replace("''", "'")) } else { part(&decoded, start..end) }
    } else {
        part(&decoded, start..end)
    };
    if key.is_empty() {
        return Err(ServiceError::BadQuery(format!("The key in segment '{decoded}' is empty.")));
    }
    Ok(Segment { name, key: Some(key) })
}

/// Quotes a key for a canonical URL: `('a''b')` (OData URL §4.3.1).
#[must_use]
pub fn key_predicate(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 4);
    push_key_predicate(&mut out, id);
    out
}

/// Appends [`key_predicate`]`(id)` to `out` (paths are built on every request).
pub fn push_key_predicate(out: &mut String, id: &str) {
    out.push_str("('");
    // Ids are GUIDs or `{guid}_{name}` nearly always: nothing to escape, one copy instead
    // of the encoder's iterator (~0.9 k instructions of a point read, callgrind).
    if id.bytes().all(|b| PLAIN_KEY_BYTE[usize::from(b)]) {
        out.push_str(id);
        out.push_str("')");
        return;
    }
    for piece in percent_encoding::utf8_percent_encode(id, KEY_ENCODE) {
        if piece.contains('\'') {
            out.push_str(&piece.replace('\'', "''"));
        } else {
            out.push_str(piece);
        }
    }
    out.push_str("')");
}

/// Bytes a key keeps as they are in the fast path of [`push_key_predicate`]: letters,
/// digits, `-` and `_` (a table: one load per byte, not four comparisons).
static PLAIN_KEY_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    t
};

/// Characters escaped in a key: controls, space, and URL delimiters.
const KEY_ENCODE: &percent_encoding::AsciiSet =
    &percent_encoding::CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'/').add(b'?').add(b'<').add(b'>');

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn both_key_forms_and_lenient_slashes() {
        let a = parse_path("deviceManagement//deviceEnrollmentConfigurations('x_DefaultLimit')/assignments/").unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].key.as_deref(), Some("x_DefaultLimit"));
        let b = parse_path("deviceManagement/deviceEnrollmentConfigurations/x_DefaultLimit/assignments").unwrap();
        assert_eq!(b[2].name, "x_DefaultLimit");
        assert_eq!(parse_path("a('it''s%20x')").unwrap()[0].key.as_deref(), Some("it's x"));
        assert!(parse_path("a('x'").is_err());
        assert!(parse_path("a('')").is_err() && parse_path("a()").is_err());
        for (raw, key) in
            [("a(id='x')", "x"), ("a(x)", "x"), ("a('x%27')", "x'"), ("a(''')", "'"), ("a('a''''b')", "a''b")]
        {
            assert_eq!(parse_path(raw).unwrap()[0].key.as_deref(), Some(key), "{raw}");
            assert_eq!(parse_path(raw).unwrap()[0].name, "a", "{raw}");
        }
        // The one-pass split answers as splitting and parsing every segment does.
        for raw in [
            "",
            "/",
            "//",
            "a",
            "/a/",
            "a//b",
            "a/b('k')/c",
            "a/b%2Fc/d",
            "a/b)/c",
            "a/(k)",
            "x('a/b')",
            "%",
            "a/%zz",
            "deviceManagement/configs/k_1/assignments/g-2/",
        ] {
            let general: Result<Vec<Segment<'_>>> =
                raw.split('/').filter(|s| !s.is_empty()).map(parse_segment).collect();
            assert_eq!(parse_path(raw).ok(), general.ok(), "{raw}");
        }
        // Nothing decoded, nothing copied: the segments borrow the path.
        let borrowed = parse_path("deviceManagement/configs('k')").unwrap();
        assert!(matches!(borrowed[1].name, Cow::Borrowed("configs")));
        assert!(matches!(borrowed[1].key, Some(Cow::Borrowed("k"))));
        assert_eq!(borrowed[1].clone().into_owned(), borrowed[1]);
        assert_eq!(key_predicate("it's"), "('it''s')");
        // The plain fast path and the encoder agree where they meet.
        assert_eq!(key_predicate("0f1e-Ab_9"), "('0f1e-Ab_9')");
        assert_eq!(key_predicate("a b/c%"), "('a%20b%2Fc%25')");
        assert_eq!(key_predicate("é"), "('%C3%A9')");
    }
}
