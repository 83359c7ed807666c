//! Validators and content negotiation for static files: the `ETag` a file
//! gets (nginx's strong `"<mtime hex>-<size hex>"`), `If-None-Match`
//! (RFC 9110 §13.1.2, weak comparison), `If-Modified-Since` (§13.1.3),
//! `If-Range` (§13.1.5, strong comparison) and whether `Accept-Encoding`
//! (§12.5.3) accepts gzip.

use arrayvec::ArrayString;

use super::bytes::{list_elements, trim_ows};
use super::date::parse_http_date;
use super::response::hex_into;

/// A file's entity tag, from what `fstat` says of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ETag {
    pub mtime: i64,
    pub size: u64,
}

/// `"` + 16 + `-` + 16 + `"`.
pub type ETagText = ArrayString<36>;

impl ETag {
    /// The quoted tag as sent, e.g. `"5f1c2a3b-1a4"` (nginx's format; the
    /// mtime is printed as its two's complement, as nginx's cast does).
    pub fn text(self) -> ETagText {
        let mut bytes = arrayvec::ArrayVec::<u8, 36>::new();
        let _ = bytes.try_push(b'"');
        hex_into(self.mtime as u64, &mut bytes);
        let _ = bytes.try_push(b'-');
        hex_into(self.size, &mut bytes);
        let _ = bytes.try_push(b'"');
        let mut s = ETagText::new();
        // Only ASCII was written, and 36 bytes hold the longest form.
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = s.try_push_str(text);
        }
        s
    }
}

/// One entity-tag at the start of `s` (after OWS): whether it is weak, its
/// opaque-tag with the quotes, and the rest. `None` if `s` does not start
/// with one (RFC 9110 §8.8.3).
fn entity_tag(s: &[u8]) -> Option<(bool, &[u8], &[u8])> {
    let (weak, s) = match s.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if s.first() != Some(&b'"') {
        return None;
    }
    // etagc may hold a comma: find the closing quote, not the next comma.
    let close = s.iter().skip(1).position(|&b| b == b'"')? + 2;
    let (tag, rest) = s.split_at_checked(close)?;
    Some((weak, tag, rest))
}

/// `If-None-Match` against the current tag: true when `*` or any listed tag
/// matches by weak comparison (the answer is then 304 for GET/HEAD). A
/// malformed list matches nothing from the point it breaks.
pub fn none_match(value: &[u8], etag: ETag) -> bool {
    let value = trim_ows(value);
    if value == b"*" {
        return true;
    }
    let current = etag.text();
    let mut rest = value;
    loop {
        rest = trim_ows(rest);
        while let Some(r) = rest.strip_prefix(b",") {
            rest = trim_ows(r);
        }
        if rest.is_empty() {
            return false;
        }
        let Some((_weak, tag, r)) = entity_tag(rest) else {
            return false;
        };
        if tag == current.as_bytes() {
            return true;
        }
        rest = r;
    }
}

/// `If-Modified-Since`: true when the file is not newer than the date (the
/// answer is then 304). An unparsable date is ignored (§13.1.3).
pub fn not_modified_since(value: &[u8], mtime: i64) -> bool {
    parse_http_date(trim_ows(value)).is_some_and(|since| mtime <= since)
}

/// `If-Range`: true when the validator given is the current one, so the
/// range may be served. An entity-tag matches by strong comparison (a weak
/// one never does); a date must equal `Last-Modified` exactly (§13.1.5).
pub fn if_range_matches(value: &[u8], etag: ETag) -> bool {
    let value = trim_ows(value);
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        return match entity_tag(value) {
            Some((false, tag, rest)) => rest.is_empty() && tag == etag.text().as_bytes(),
            _ => false,
        };
    }
    parse_http_date(value) == Some(etag.mtime)
}

/// A qvalue in thousandths (`q=0.5` → 500); `None` when malformed.
fn qvalue(s: &[u8]) -> Option<u16> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (s.get(..i)?, s.get(i + 1..)?),
        None => (s, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether an `Accept-Encoding` value accepts gzip (RFC 9110 §12.5.3):
/// `gzip` (or `x-gzip`) with q > 0, or, when gzip is not named, `*` with
/// q > 0. `gzip;q=0` refuses it even beside `*`; a malformed qvalue counts
/// as 0.
pub fn accepts_gzip(value: &[u8]) -> bool {
    let mut gzip: Option<u16> = None;
    let mut star: Option<u16> = None;
    for elem in list_elements(value).filter(|e| !e.is_empty()) {
        let mut parts = elem.split(|&b| b == b';');
        let coding = trim_ows(parts.next().unwrap_or(&[]));
        let mut q = 1000;
        for p in parts {
            let p = trim_ows(p);
            if let Some((k, v)) = p.split_at_checked(2)
                && k.eq_ignore_ascii_case(b"q=")
            {
                q = qvalue(v).unwrap_or(0);
            }
        }
        if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
            gzip = Some(gzip.map_or(q, |g| g.max(q)));
        } else if coding == b"*" {
            star = Some(q);
        }
    }
    gzip.or(star).is_some_and(|q| q > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: ETag = ETag {
        mtime: 0x5f1c_2a3b,
        size: 0x1a4,
    };
    /// Sat, 25 Jul 2020 12:48:59 GMT
    const MTIME_DATE: &str = "Sat, 25 Jul 2020 12:48:59 GMT";

    #[test]
    fn etag_text() {
        assert_eq!(TAG.text().as_str(), "\"5f1c2a3b-1a4\"");
        assert_eq!(ETag { mtime: 0, size: 0 }.text().as_str(), "\"0-0\"");
        let max = ETag {
            mtime: -1,
            size: u64::MAX,
        };
        assert_eq!(max.text().as_str(), "\"ffffffffffffffff-ffffffffffffffff\"");
    }

    #[test]
    fn if_none_match_table() {
        let cases: &[(&str, bool)] = &[
            ("\"5f1c2a3b-1a4\"", true),
            ("W/\"5f1c2a3b-1a4\"", true),
            ("*", true),
            (" * ", true),
            ("\"x\", \"5f1c2a3b-1a4\"", true),
            ("\"a,b\", W/\"5f1c2a3b-1a4\"", true),
            (",,\"5f1c2a3b-1a4\",", true),
            ("\"5f1c2a3b-1a5\"", false),
            ("\"5f1c2a3b-1a4", false),
            ("5f1c2a3b-1a4", false),
            ("w/\"5f1c2a3b-1a4\"", false),
            ("\"x\" junk \"5f1c2a3b-1a4\"", false),
            ("", false),
            ("**", false),
        ];
        for (v, want) in cases {
            assert_eq!(none_match(v.as_bytes(), TAG), *want, "{v:?}");
        }
    }

    #[test]
    fn if_modified_since_table() {
        let cases: &[(&str, bool)] = &[
            (MTIME_DATE, true),
            ("Sat, 25 Jul 2020 12:49:00 GMT", true),
            ("Sat, 25 Jul 2020 12:48:58 GMT", false),
            ("Saturday, 25-Jul-20 12:48:59 GMT", true),
            ("Sat Jul 25 12:48:59 2020", true),
            ("yesterday", false),
            ("", false),
        ];
        for (v, want) in cases {
            assert_eq!(not_modified_since(v.as_bytes(), TAG.mtime), *want, "{v:?}");
        }
    }

    #[test]
    fn if_range_table() {
        let cases: &[(&str, bool)] = &[
            ("\"5f1c2a3b-1a4\"", true),
            (MTIME_DATE, true),
            ("W/\"5f1c2a3b-1a4\"", false),
            ("\"5f1c2a3b-1a5\"", false),
            ("\"5f1c2a3b-1a4\", \"x\"", false),
            ("Sat, 25 Jul 2020 12:49:00 GMT", false),
            ("Sat, 25 Jul 2020 12:48:58 GMT", false),
            ("*", false),
            ("", false),
        ];
        for (v, want) in cases {
            assert_eq!(if_range_matches(v.as_bytes(), TAG), *want, "{v:?}");
        }
    }

    #[test]
    fn accept_encoding_table() {
        let cases: &[(&str, bool)] = &[
            ("gzip", true),
            ("GZIP", true),
            ("x-gzip", true),
            ("gzip, deflate, br", true),
            ("br;q=1.0, gzip;q=0.8", true),
            ("gzip;q=0.001", true),
            ("gzip ; q=1", true),
            ("*", true),
            ("*;q=0.5", true),
            ("identity, *;q=0.1", true),
            ("gzip;q=0", false),
            ("gzip;q=0.000", false),
            ("gzip;q=0, *", false),
            ("*;q=0", false),
            ("gzip;q=2", false),
            ("gzip;q=1.5", false),
            ("gzip;q=0.5555", false),
            ("gzipx", false),
            ("deflate, br", false),
            ("identity", false),
            ("", false),
            ("gzip;q=0, gzip", true),
        ];
        for (v, want) in cases {
            assert_eq!(accepts_gzip(v.as_bytes()), *want, "{v:?}");
        }
    }

    #[test]
    fn qvalues() {
        assert_eq!(qvalue(b"1"), Some(1000));
        assert_eq!(qvalue(b"1.000"), Some(1000));
        assert_eq!(qvalue(b"0.5"), Some(500));
        assert_eq!(qvalue(b"0.05"), Some(50));
        assert_eq!(qvalue(b"0"), Some(0));
        assert_eq!(qvalue(b"0."), Some(0));
        assert_eq!(qvalue(b"1.001"), None);
        assert_eq!(qvalue(b".5"), None);
        assert_eq!(qvalue(b""), None);
    }
}
