//! The `Range` request field (RFC 9110 §14.2) against a representation of
//! known length, and the `Content-Range` it leads to (§14.4).
//!
//! Only the `bytes` unit is known. One satisfiable range is served (206);
//! a field whose ranges are all unsatisfiable gets 416; several ranges are
//! answered with the whole representation (200, which §14.2 allows), so an
//! answer never holds more bytes than the file. A field that does not parse
//! is ignored (§14.2: "MAY ignore"), as nginx does.

use super::bytes::{list_elements, trim_ows};

/// What a `Range` field asks of a representation of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// Malformed, another unit, or several ranges: send the whole (200).
    Whole,
    /// One satisfiable range: `len` bytes from `start` (206).
    Part { start: u64, len: u64 },
    /// No range overlaps the representation (416).
    Unsatisfiable,
}

/// `Content-Range` of a 206 or a 416.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes FIRST-LAST/LEN`
    Part { first: u64, last: u64, len: u64 },
    /// `bytes */LEN`
    Unsatisfied { len: u64 },
}

impl ContentRange {
    /// The field value, e.g. `bytes 0-99/1000` or `bytes */1000`.
    pub fn text(self) -> arrayvec::ArrayString<72> {
        use std::fmt::Write;
        let mut s = arrayvec::ArrayString::new();
        // 72 bytes hold the longest form (three 20-digit numbers).
        let _ = match self {
            ContentRange::Part { first, last, len } => write!(s, "bytes {first}-{last}/{len}"),
            ContentRange::Unsatisfied { len } => write!(s, "bytes */{len}"),
        };
        s
    }
}

/// One range-spec, as written.
#[derive(Clone, Copy)]
enum Spec {
    /// `first-` (`last: None`) or `first-last`.
    From { first: u64, last: Option<u64> },
    /// `-suffix`
    Suffix(u64),
}

/// Decimal digits, saturating at `u64::MAX` (a huge last-byte-pos is valid
/// and clamped to the end, RFC 9110 §14.1.1); `None` if not 1*DIGIT.
fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |acc, &b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

fn parse_spec(s: &[u8]) -> Option<Spec> {
    let dash = s.iter().position(|&b| b == b'-')?;
    let (first, rest) = s.split_at(dash);
    let last = rest.get(1..)?;
    if first.is_empty() {
        return Some(Spec::Suffix(digits(last)?));
    }
    let first = digits(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(digits(last)?)
    };
    // §14.1.1: a last-byte-pos below the first-byte-pos is invalid.
    if last.is_some_and(|l| l < first) {
        return None;
    }
    Some(Spec::From { first, last })
}

/// The byte range `spec` selects from `len` bytes, if it is satisfiable.
fn resolve(spec: Spec, len: u64) -> Option<(u64, u64)> {
    match spec {
        Spec::From { first, last } if first < len => {
            let last = last.map_or(len - 1, |l| l.min(len - 1));
            Some((first, last))
        }
        Spec::From { .. } => None,
        // §14.1.3: a suffix of 0 (or of an empty file) is unsatisfiable.
        Spec::Suffix(n) if n > 0 && len > 0 => Some((len - n.min(len), len - 1)),
        Spec::Suffix(_) => None,
    }
}

/// Read a `Range` field value for a representation of `len` bytes.
pub fn parse(value: &[u8], len: u64) -> Range {
    let value = trim_ows(value);
    let Some((unit, set)) = value.split_at_checked(6) else {
        return Range::Whole;
    };
    // §14.1: range units are case-insensitive.
    if !unit.eq_ignore_ascii_case(b"bytes=") {
        return Range::Whole;
    }
    let mut count = 0usize;
    let mut first_ok = None;
    let mut any_ok = false;
    // §5.6.1: empty list elements are allowed and skipped.
    for elem in list_elements(set).filter(|e| !e.is_empty()) {
        let Some(s) = parse_spec(elem) else {
            return Range::Whole;
        };
        count += 1;
        let r = resolve(s, len);
        any_ok |= r.is_some();
        if count == 1 {
            first_ok = r;
        }
    }
    match (count, first_ok) {
        (0, _) => Range::Whole,
        (1, Some((first, last))) => Range::Part {
            start: first,
            len: last - first + 1,
        },
        _ if !any_ok => Range::Unsatisfiable,
        _ => Range::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use Range::*;
        let part = |start, len| Part { start, len };
        let cases: &[(&str, u64, Range)] = &[
            ("bytes=0-99", 1000, part(0, 100)),
            ("bytes=100-199", 1000, part(100, 100)),
            ("bytes=100-", 1000, part(100, 900)),
            ("bytes=-500", 1000, part(500, 500)),
            ("bytes=-5000", 1000, part(0, 1000)),
            ("bytes=990-2000", 1000, part(990, 10)),
            ("bytes=999-999", 1000, part(999, 1)),
            ("bytes=0-99999999999999999999999", 10, part(0, 10)),
            ("BYTES=0-0", 10, part(0, 1)),
            (" bytes=1-2 ", 10, part(1, 2)),
            ("bytes=,0-1,", 10, part(0, 2)),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=1000-", 1000, Unsatisfiable),
            ("bytes=1000-1001", 1000, Unsatisfiable),
            ("bytes=-0", 1000, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            ("bytes=99999999999999999999999-", 10, Unsatisfiable),
            ("bytes=5-2", 1000, Whole),
            ("bytes=0-1,5-6", 1000, Whole),
            ("bytes=0-1,2000-", 1000, Whole),
            ("bytes=2000-,3000-", 1000, Unsatisfiable),
            ("bytes=0-1,x", 1000, Whole),
            ("items=0-1", 1000, Whole),
            ("bytes 0-1", 1000, Whole),
            ("bytes=", 1000, Whole),
            ("bytes=-", 1000, Whole),
            ("bytes=a-b", 1000, Whole),
            ("bytes=+1-2", 1000, Whole),
            ("bytes=1 -2", 1000, Whole),
            ("bytes=0x1-2", 1000, Whole),
            ("", 1000, Whole),
            ("bytes", 1000, Whole),
        ];
        for (value, len, want) in cases {
            assert_eq!(parse(value.as_bytes(), *len), *want, "{value:?} of {len}");
        }
    }

    #[test]
    fn content_range_text() {
        let part = ContentRange::Part {
            first: 0,
            last: 99,
            len: 1000,
        };
        assert_eq!(part.text().as_str(), "bytes 0-99/1000");
        let none = ContentRange::Unsatisfied { len: 1000 };
        assert_eq!(none.text().as_str(), "bytes */1000");
        let max = ContentRange::Part {
            first: u64::MAX,
            last: u64::MAX,
            len: u64::MAX,
        };
        assert_eq!(max.text().len(), 6 + 20 + 1 + 20 + 1 + 20);
    }

    #[test]
    fn a_part_never_leaves_the_file() {
        for len in 0..20u64 {
            for a in 0..25u64 {
                for b in a..25u64 {
                    for v in [
                        format!("bytes={a}-{b}"),
                        format!("bytes={a}-"),
                        format!("bytes=-{a}"),
                    ] {
                        if let Range::Part { start, len: n } = parse(v.as_bytes(), len) {
                            assert!(n > 0 && start + n <= len, "{v} of {len}");
                        }
                    }
                }
            }
        }
    }
}
