//! The `Range` request field (RFC 9110 §14.2) against a representation of
//! known length, and the `Content-Range` it leads to (§14.4).
//!
//! Only the `bytes` unit is known. One satisfiable range is served (206);
//! a field whose ranges are all unsatisfiable gets 416. Several satisfiable
//! ranges are sorted and those that overlap or touch are merged (§14.2
//! allows it; unlike nginx, CONFIG.md `max_ranges`), so a multipart answer
//! never holds a file byte twice: when one range is left it is a plain 206,
//! else a `multipart/byteranges` 206 (§14.6) whose part heads are written
//! here. More satisfiable ranges than the route's `max_ranges` (counted as
//! written, before merging, as nginx counts them) get the whole
//! representation (200). A field that does not parse is ignored (§14.2:
//! "MAY ignore"), as nginx does.

use super::bytes::{list_elements, trim_ows};

/// What a `Range` field asks of a representation of `len` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Range {
    /// Malformed, another unit, or more ranges than allowed: send the
    /// whole (200).
    Whole,
    /// One satisfiable range (or several merged into one): `len` bytes
    /// from `start` (206).
    Part { start: u64, len: u64 },
    /// Several satisfiable ranges, as `(start, len)`: ascending, disjoint
    /// and with at least one byte between two (206 `multipart/byteranges`).
    Several(Vec<(u64, u64)>),
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

/// Read a `Range` field value for a representation of `len` bytes, with
/// at most `max` satisfiable ranges (`max_ranges`; `u64::MAX`: no limit).
/// No allocation unless a second satisfiable range is seen.
pub fn parse(value: &[u8], len: u64, max: u64) -> Range {
    let value = trim_ows(value);
    let Some((unit, set)) = value.split_at_checked(6) else {
        return Range::Whole;
    };
    // §14.1: range units are case-insensitive.
    if !unit.eq_ignore_ascii_case(b"bytes=") {
        return Range::Whole;
    }
    let mut count = 0usize;
    let mut satisfiable = 0u64;
    let mut first = None;
    let mut more: Vec<(u64, u64)> = Vec::new();
    // §5.6.1: empty list elements are allowed and skipped.
    for elem in list_elements(set).filter(|e| !e.is_empty()) {
        let Some(s) = parse_spec(elem) else {
            return Range::Whole;
        };
        count += 1;
        // Unsatisfiable ranges are dropped (§14.2: the others are served).
        let Some(r) = resolve(s, len) else {
            continue;
        };
        satisfiable += 1;
        if satisfiable > max {
            return Range::Whole;
        }
        match first {
            None => first = Some(r),
            Some(_) => more.push(r),
        }
    }
    let Some(first) = first else {
        return if count == 0 {
            Range::Whole
        } else {
            Range::Unsatisfiable
        };
    };
    if more.is_empty() {
        return Range::Part {
            start: first.0,
            len: first.1 - first.0 + 1,
        };
    }
    more.push(first);
    let merged = merge(more);
    match merged.as_slice() {
        [(start, n)] => Range::Part {
            start: *start,
            len: *n,
        },
        _ => Range::Several(merged),
    }
}

/// Inclusive `(first, last)` ranges sorted, and those that overlap or
/// touch joined, as `(start, len)`.
fn merge(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    let mut cur: Option<(u64, u64)> = None;
    for (first, last) in ranges {
        cur = match cur {
            // Overlapping or adjacent (`last + 1 == first`): one range.
            Some((f, l)) if first <= l.saturating_add(1) => Some((f, l.max(last))),
            Some((f, l)) => {
                out.push((f, l - f + 1));
                Some((first, last))
            }
            None => Some((first, last)),
        };
    }
    if let Some((f, l)) = cur {
        out.push((f, l - f + 1));
    }
    out
}

/// The `Content-Type` of a multipart answer.
pub fn multipart_type(boundary: &str) -> String {
    format!("multipart/byteranges; boundary={boundary}")
}

/// The boundary made of 16 random bytes: 32 lowercase hex digits (RFC 2046
/// §5.1.1 allows up to 70 `bchars`).
pub fn boundary(random: [u8; 16]) -> arrayvec::ArrayString<32> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = arrayvec::ArrayString::new();
    for b in random {
        for nibble in [b >> 4, b & 15] {
            let _ = s.try_push(char::from(HEX[usize::from(nibble)]));
        }
    }
    s
}

/// Append the head of a part of a `multipart/byteranges` body (RFC 9110
/// §14.6): the delimiter (every one starts with CRLF, as nginx writes the
/// first one too), the part's `Content-Type` if any and its
/// `Content-Range` (`first..=last` of `len`), then the blank line.
pub fn part_head(
    out: &mut Vec<u8>,
    boundary: &str,
    content_type: Option<&str>,
    (first, last, len): (u64, u64, u64),
) {
    out.extend_from_slice(b"\r\n--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(t) = content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(t.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Range: ");
    out.extend_from_slice(ContentRange::Part { first, last, len }.text().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// Append the close-delimiter that ends a multipart body.
pub fn closing(out: &mut Vec<u8>, boundary: &str) {
    out.extend_from_slice(b"\r\n--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
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
            ("bytes=0-1,5-6", 1000, Several(vec![(0, 2), (5, 2)])),
            ("bytes=0-1,2000-", 1000, part(0, 2)),
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
            assert_eq!(
                &parse(value.as_bytes(), *len, u64::MAX),
                want,
                "{value:?} of {len}"
            );
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
                        if let Range::Part { start, len: n } = parse(v.as_bytes(), len, u64::MAX) {
                            assert!(n > 0 && start + n <= len, "{v} of {len}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn several_ranges_are_sorted_and_merged() {
        use Range::*;
        let cases: &[(&str, Range)] = &[
            // Disjoint: kept, in ascending order whatever the order asked.
            ("bytes=0-9,20-29", Several(vec![(0, 10), (20, 10)])),
            ("bytes=20-29,0-9", Several(vec![(0, 10), (20, 10)])),
            ("bytes=-10,0-0", Several(vec![(0, 1), (90, 10)])),
            // Overlapping: one range, a plain 206.
            ("bytes=0-49,25-74", Part { start: 0, len: 75 }),
            ("bytes=0-99,10-19", Part { start: 0, len: 100 }),
            ("bytes=10-19,0-99", Part { start: 0, len: 100 }),
            ("bytes=5-5,5-5,5-5", Part { start: 5, len: 1 }),
            // Touching (9 then 10): merged too, unlike nginx.
            ("bytes=0-9,10-19", Part { start: 0, len: 20 }),
            ("bytes=10-19,0-9,30-39", Several(vec![(0, 20), (30, 10)])),
            // One byte apart: not touching.
            ("bytes=0-9,11-19", Several(vec![(0, 10), (11, 9)])),
            // A chain that closes a gap.
            ("bytes=0-9,30-39,20-29,10-19", Part { start: 0, len: 40 }),
            ("bytes=0-9,50-,40-60", Several(vec![(0, 10), (40, 60)])),
            // Unsatisfiable ones dropped.
            ("bytes=0-9,500-,20-29", Several(vec![(0, 10), (20, 10)])),
            ("bytes=500-,20-29", Part { start: 20, len: 10 }),
            ("bytes=500-,600-", Unsatisfiable),
            // Clamped to the end, then merged.
            ("bytes=90-200,95-", Part { start: 90, len: 10 }),
            ("bytes=-5,-10", Part { start: 90, len: 10 }),
            // One malformed element: the whole.
            ("bytes=0-9,20-29,x", Whole),
        ];
        for (value, want) in cases {
            assert_eq!(&parse(value.as_bytes(), 100, u64::MAX), want, "{value:?}");
        }
    }

    #[test]
    fn max_ranges_counts_the_satisfiable_ranges_as_written() {
        use Range::*;
        let cases: &[(&str, u64, Range)] = &[
            ("bytes=0-9,20-29,40-49", 2, Whole),
            (
                "bytes=0-9,20-29,40-49",
                3,
                Several(vec![(0, 10), (20, 10), (40, 10)]),
            ),
            ("bytes=0-9,20-29", 2, Several(vec![(0, 10), (20, 10)])),
            // Counted before merging, as nginx counts them.
            ("bytes=0-9,5-14", 1, Whole),
            ("bytes=0-9", 1, Part { start: 0, len: 10 }),
            ("bytes=0-9", 0, Whole),
            // Unsatisfiable ones do not count.
            ("bytes=0-9,500-", 1, Part { start: 0, len: 10 }),
            ("bytes=500-", 0, Unsatisfiable),
        ];
        for (value, max, want) in cases {
            assert_eq!(
                &parse(value.as_bytes(), 100, *max),
                want,
                "{value:?} max {max}"
            );
        }
    }

    /// Every merged answer covers exactly the bytes asked for, never one
    /// twice, and so never more than the file.
    #[test]
    fn merged_ranges_cover_exactly_the_bytes_asked_for() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..2000 {
            let len = 1 + next(64);
            let specs: Vec<(u64, u64)> = (0..1 + next(6))
                .map(|_| {
                    let a = next(len + 4);
                    (a, a + next(12))
                })
                .collect();
            let value = specs
                .iter()
                .map(|(a, b)| format!("{a}-{b}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut want = vec![false; len as usize];
            for &(a, b) in &specs {
                for i in a..=b.min(len - 1) {
                    want[i as usize] = true;
                }
            }
            let got_ranges = match parse(format!("bytes={value}").as_bytes(), len, u64::MAX) {
                Range::Part { start, len } => vec![(start, len)],
                Range::Several(v) => {
                    assert!(v.len() >= 2, "{value}");
                    v
                }
                Range::Unsatisfiable => vec![],
                Range::Whole => panic!("{value} of {len}: whole"),
            };
            let mut got = vec![false; len as usize];
            let mut prev_end = None;
            for (start, n) in got_ranges {
                assert!(n > 0 && start + n <= len, "{value} of {len}");
                // Ascending, with a gap of at least one byte.
                if let Some(e) = prev_end {
                    assert!(start > e, "{value} of {len}");
                }
                prev_end = Some(start + n);
                for i in start..start + n {
                    got[i as usize] = true;
                }
            }
            assert_eq!(got, want, "{value} of {len}");
        }
    }

    #[test]
    fn part_heads_and_closing() {
        let b = boundary([0xab; 16]);
        assert_eq!(b.as_str(), "ab".repeat(16));
        assert_eq!(boundary([0; 16]).len(), 32);
        let mut out = Vec::new();
        part_head(&mut out, "XYZ", Some("text/plain"), (0, 9, 100));
        part_head(&mut out, "XYZ", None, (20, 29, 100));
        closing(&mut out, "XYZ");
        assert_eq!(
            out,
            b"\r\n--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-9/100\r\n\r\n\
              \r\n--XYZ\r\nContent-Range: bytes 20-29/100\r\n\r\n\
              \r\n--XYZ--\r\n"
        );
        assert_eq!(multipart_type("XYZ"), "multipart/byteranges; boundary=XYZ");
    }
}
