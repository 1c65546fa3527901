//! `Edm.DateTimeOffset` values as comparable keys (OData ABNF `dateTimeOffsetValue`,
//! CSDL §4.4). The same key is computed in SQL by [`crate::sql`], so both must agree.
//!
//! A stored value is accepted only in the strict RFC 3339 shape
//! `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)` (month 01-12, day 01-31, hour 00-24, minute and
//! second 00-59, offset hour 00-14); a day past the month's end or hour 24 roll over.
//! Anything else is treated as null. The key is the UTC instant as
//! `{epoch seconds + 10^11, 12 digits}.{fraction without trailing zeros}`, which orders
//! like the instant when compared as text.

/// Seconds added so that every key's integer part is positive and 12 digits wide.
pub(crate) const KEY_OFFSET: i64 = 100_000_000_000;

/// The comparison key of a stored DateTimeOffset string, or `None` when not well-formed.
pub(crate) fn key(s: &str) -> Option<String> {
    if !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    let l = b.len();
    let tzl = if s.ends_with('Z') { 1 } else { 6 };
    if l < 20 || l < tzl + 19 {
        return None;
    }
    let digit = |i: usize| b[i].is_ascii_digit();
    let shape = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18].iter().all(|&i| digit(i))
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':';
    if !shape {
        return None;
    }
    let frac = if l - tzl == 19 {
        ""
    } else if b[19] == b'.' && l - tzl >= 21 && b[20..l - tzl].iter().all(u8::is_ascii_digit) {
        &s[20..l - tzl]
    } else {
        return None;
    };
    let tz = &s[l - tzl..];
    let tb = tz.as_bytes();
    let tz_ok = tz == "Z"
        || (tb.len() == 6
            && (tb[0] == b'+' || tb[0] == b'-')
            && tb[1].is_ascii_digit()
            && tb[2].is_ascii_digit()
            && tb[3] == b':'
            && tb[4].is_ascii_digit()
            && tb[5].is_ascii_digit()
            && &tz[1..3] <= "14"
            && &tz[4..6] <= "59");
    let part = |from: usize, to: usize| &s[from..to];
    let ranges = ("01"..="12").contains(&part(5, 7))
        && ("01"..="31").contains(&part(8, 10))
        && part(11, 13) <= "24"
        && part(14, 16) <= "59"
        && part(17, 19) <= "59";
    if !tz_ok || !ranges {
        return None;
    }
    let num =
        |from: usize, to: usize| -> i64 { b[from..to].iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')) };
    let (y, mo, d) = (num(0, 4), num(5, 7), num(8, 10));
    let (h, mi, sec) = (num(11, 13), num(14, 16), num(17, 19));
    let (sign, tzh, tzm) =
        if tz == "Z" { (0, 0, 0) } else { (if tb[0] == b'-' { -1 } else { 1 }, num(l - 5, l - 3), num(l - 2, l)) };
    let yy = y + 400 - i64::from(mo <= 2);
    let era = yy / 400;
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468 - 146_097;
    let secs = days * 86_400 + h * 3_600 + mi * 60 + sec - sign * (tzh * 3_600 + tzm * 60);
    Some(format!("{:012}.{}", secs + KEY_OFFSET, frac.trim_end_matches('0')))
}

/// The key of a DateTimeOffset *literal*, which may also omit the seconds
/// (ABNF `timeOfDayValue = hour ":" minute [ ":" second [ "." fractionalSeconds ] ]`).
pub(crate) fn literal_key(s: &str) -> Option<String> {
    key(s).or_else(|| {
        let b = s.as_bytes();
        if s.is_ascii() && b.len() >= 17 && b.get(10) == Some(&b'T') && b.get(13) == Some(&b':') {
            let rest = &s[16..];
            if rest.starts_with(['Z', '+', '-']) {
                return key(&format!("{}:00{}", &s[..16], rest));
            }
        }
        None
    })
}

/// True for an `Edm.Date` literal `YYYY-MM-DD` (ABNF `dateValue`).
pub(crate) fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && [0, 1, 2, 3, 5, 6, 8, 9].iter().all(|&i| b[i].is_ascii_digit())
        && b[4] == b'-'
        && b[7] == b'-'
        && ("01"..="12").contains(&&s[5..7])
        && ("01"..="31").contains(&&s[8..10])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_instants() {
        let a = key("2024-01-01T00:00:00Z");
        assert_eq!(a, key("2024-01-01T01:00:00+01:00"));
        assert_eq!(a, key("2023-12-31T23:00:00.000-01:00"));
        assert!(key("2024-01-01T00:00:00.0000001Z") > a);
        assert!(key("2023-12-31T23:59:59.9999999Z") < a);
        assert_eq!(key("1970-01-01T00:00:00Z").as_deref(), Some("100000000000."));
        assert_eq!(key("2024-02-31T00:00:00Z"), key("2024-03-02T00:00:00Z"));
        assert_eq!(key("2024-01-01T24:00:00Z"), key("2024-01-02T00:00:00Z"));
        assert_eq!(key("0000-01-01T00:00:00+14:00").map(|k| k.len()), Some(13));
        for bad in [
            "2024-01-01",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00+15:00",
            "2024-01-01T00:00:00é",
        ] {
            assert_eq!(key(bad), None, "{bad}");
        }
        assert_eq!(literal_key("2024-01-01T00:00Z"), a);
        assert!(is_date("2024-01-31") && !is_date("2024-1-31"));
    }
}
