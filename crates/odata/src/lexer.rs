//! Tokens of the common expression syntax (OData ABNF `commonExpr`, URL Conventions §5.1.1).

use crate::datetime;
use crate::error::{Error, ErrorKind};

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An identifier, possibly namespace-qualified (`a`, `microsoft.graph.x`, `$it`).
    Ident(String),
    /// `'text'` with `''` unescaped.
    Str(String),
    /// `qualifiedName'text'` (enumeration or other typed literal).
    Typed(String, String),
    Int(i64),
    Double(f64),
    Guid(String),
    DateTimeOffset(String),
    Date(String),
    LParen,
    RParen,
    Comma,
    Slash,
    Colon,
    Star,
    Eof,
}

/// A token and the character position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// True for `8-4-4-4-12` hexadecimal digits (ABNF `guidValue`).
pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(
            |(i, c)| {
                if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() }
            },
        )
}

/// Splits `text` into tokens, ending with [`Tok::Eof`].
pub(crate) fn lex(text: &str) -> Result<Vec<Token>, Error> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let slice = |a: usize, b: usize| chars[a..b.min(n)].iter().collect::<String>();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '/' => Some(Tok::Slash),
            ':' => Some(Tok::Colon),
            '*' => Some(Tok::Star),
            _ => None,
        };
        if let Some(tok) = single {
            out.push(Token { tok, pos: i });
            i += 1;
            continue;
        }
        if c == '\'' {
            let (s, next) = lex_string(&chars, i, text)?;
            out.push(Token { tok: Tok::Str(s), pos: start });
            i = next;
            continue;
        }
        // GUID (may start with a letter) before identifiers and numbers.
        if i + 36 <= n && !ident_char(at(i + 36)) && at(i + 36) != '-' {
            let s = slice(i, i + 36);
            if is_guid(&s) {
                out.push(Token { tok: Tok::Guid(s), pos: start });
                i += 36;
                continue;
            }
        }
        if c.is_ascii_digit()
            && (0..4).all(|k| at(i + k).is_ascii_digit())
            && at(i + 4) == '-'
            && at(i + 5).is_ascii_digit()
        {
            // Date or DateTimeOffset literal.
            let mut j = i;
            while j < n && (chars[j].is_ascii_digit() || matches!(chars[j], '-' | ':' | '.' | 'T' | 'Z' | '+')) {
                j += 1;
            }
            let s = slice(i, j);
            if ident_char(at(j)) {
                return Err(Error::syntax(start, text));
            }
            let tok = if s.contains('T') {
                if datetime::literal_key(&s).is_none() {
                    return Err(Error::at(
                        ErrorKind::Syntax,
                        start,
                        format!("Unrecognized 'Edm.DateTimeOffset' literal '{s}' at '{start}' in '{text}'."),
                    ));
                }
                Tok::DateTimeOffset(s)
            } else if datetime::is_date(&s) {
                Tok::Date(s)
            } else {
                return Err(Error::at(
                    ErrorKind::Syntax,
                    start,
                    format!("Unrecognized 'Edm.Date' literal '{s}' at '{start}' in '{text}'."),
                ));
            };
            out.push(Token { tok, pos: start });
            i = j;
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && at(i + 1).is_ascii_digit()) {
            let mut j = i + 1;
            while at(j).is_ascii_digit() {
                j += 1;
            }
            let mut float = false;
            if at(j) == '.' && at(j + 1).is_ascii_digit() {
                float = true;
                j += 1;
                while at(j).is_ascii_digit() {
                    j += 1;
                }
            }
            if matches!(at(j), 'e' | 'E') {
                let k = if matches!(at(j + 1), '+' | '-') { j + 2 } else { j + 1 };
                if at(k).is_ascii_digit() {
                    float = true;
                    j = k;
                    while at(j).is_ascii_digit() {
                        j += 1;
                    }
                }
            }
            let s = slice(i, j);
            match at(j) {
                'l' | 'L' if !float => j += 1,
                'd' | 'D' | 'f' | 'F' | 'm' | 'M' => {
                    float = true;
                    j += 1;
                }
                _ => {}
            }
            if ident_char(at(j)) || at(j) == '.' {
                return Err(Error::syntax(start, text));
            }
            let int = if float { None } else { s.parse::<i64>().ok() };
            let tok = match int {
                Some(v) => Tok::Int(v),
                None => match s.parse::<f64>() {
                    Ok(v) if v.is_finite() => Tok::Double(v),
                    _ => {
                        return Err(Error::at(
                            ErrorKind::Syntax,
                            start,
                            format!("Numeric literal '{s}' is out of range at position {start} in '{text}'."),
                        ));
                    }
                },
            };
            out.push(Token { tok, pos: start });
            i = j;
            continue;
        }
        if ident_start(c) {
            let mut j = i + 1;
            loop {
                while ident_char(at(j)) {
                    j += 1;
                }
                if at(j) == '.' && ident_start(at(j + 1)) && at(j + 1) != '$' {
                    j += 1;
                } else {
                    break;
                }
            }
            let name = slice(i, j);
            if at(j) == '\'' {
                let (s, next) = lex_string(&chars, j, text)?;
                out.push(Token { tok: Tok::Typed(name, s), pos: start });
                i = next;
            } else {
                out.push(Token { tok: Tok::Ident(name), pos: start });
                i = j;
            }
            continue;
        }
        return Err(Error::at(
            ErrorKind::Syntax,
            start,
            format!("Invalid character '{c}' at position {start} in '{text}'."),
        ));
    }
    out.push(Token { tok: Tok::Eof, pos: n });
    Ok(out)
}

fn lex_string(chars: &[char], open: usize, text: &str) -> Result<(String, usize), Error> {
    let mut s = String::new();
    let mut j = open + 1;
    loop {
        match chars.get(j) {
            None => {
                return Err(Error::at(
                    ErrorKind::Syntax,
                    open,
                    format!("There is an unterminated string literal at position {open} in '{text}'."),
                ));
            }
            Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                s.push('\'');
                j += 2;
            }
            Some('\'') => return Ok((s, j + 1)),
            Some(c) => {
                s.push(*c);
                j += 1;
            }
        }
    }
}
