//! Byte classes and small number parsers shared by the HTTP code.
//!
//! Every class is one bit in a single `const` 256-entry table built from the
//! member lists of the grammar it comes from, so a lookup is one load and can
//! never go out of bounds (a `u8` always indexes a 256-entry array). A test
//! checks all 256 bytes of every class against a predicate written
//! independently. The number parsers accept exactly `1*DIGIT` / `1*HEXDIG`
//! and report overflow, unlike `str::parse` (which accepts a leading `+`).

/// `tchar` (RFC 9110 §5.6.2): the bytes of a token (method, field name, coding).
const TCHAR: u8 = 1 << 0;
/// A byte allowed inside a field value (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text.
const VALUE: u8 = 1 << 1;
/// A byte allowed in a request-target as sent (RFC 9112 §3.2): VCHAR only.
const TARGET: u8 = 1 << 2;
/// `HEXDIG` (RFC 5234 §B.1), either case.
const HEX: u8 = 1 << 3;
/// `unreserved / sub-delims` (RFC 3986 §3.2.2 reg-name, without `%`).
const REG_NAME: u8 = 1 << 4;

const ALPHA_DIGIT: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Sets `bit` for every byte of `members`.
// Only evaluated at compile time: an index out of range is a build error.
#[allow(clippy::indexing_slicing)]
const fn with_members(mut t: [u8; 256], members: &[u8], bit: u8) -> [u8; 256] {
    let mut i = 0;
    while i < members.len() {
        t[members[i] as usize] |= bit;
        i += 1;
    }
    t
}

/// Sets `bit` for every byte in `lo..=hi`.
// Only evaluated at compile time: an index out of range is a build error.
#[allow(clippy::indexing_slicing)]
const fn with_range(mut t: [u8; 256], lo: u8, hi: u8, bit: u8) -> [u8; 256] {
    let mut b = lo as usize;
    while b <= hi as usize {
        t[b] |= bit;
        b += 1;
    }
    t
}

const fn build() -> [u8; 256] {
    let t = [0u8; 256];
    let t = with_members(t, ALPHA_DIGIT, TCHAR);
    let t = with_members(t, b"!#$%&'*+-.^_`|~", TCHAR);
    let t = with_members(t, b"\t ", VALUE);
    let t = with_range(t, 0x21, 0x7E, VALUE);
    let t = with_range(t, 0x80, 0xFF, VALUE);
    let t = with_range(t, 0x21, 0x7E, TARGET);
    let t = with_members(t, b"0123456789abcdefABCDEF", HEX);
    let t = with_members(t, ALPHA_DIGIT, REG_NAME);
    with_members(t, b"-._~!$&'()*+,;=", REG_NAME)
}

/// The class bits of every byte.
const CLASS: [u8; 256] = build();

#[inline]
fn has(b: u8, bit: u8) -> bool {
    // A u8 always indexes a 256-entry table, so `get` never misses (and the
    // compiler drops the check).
    CLASS.get(usize::from(b)).is_some_and(|c| c & bit != 0)
}

/// `tchar` (RFC 9110 §5.6.2).
#[inline]
pub fn is_tchar(b: u8) -> bool {
    has(b, TCHAR)
}

/// A byte allowed in a field value: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5).
/// NUL, CR, LF and the other controls are not.
#[inline]
pub fn is_field_value_byte(b: u8) -> bool {
    has(b, VALUE)
}

/// A byte allowed in a request-target as received: 0x21..=0x7E (RFC 9112 §3.2;
/// no spaces, controls or raw non-ASCII).
#[inline]
pub fn is_target_byte(b: u8) -> bool {
    has(b, TARGET)
}

/// `HEXDIG`, either case.
#[inline]
pub fn is_hex(b: u8) -> bool {
    has(b, HEX)
}

/// A reg-name byte other than `%` (RFC 3986 §3.2.2: unreserved / sub-delims).
#[inline]
pub fn is_reg_name_byte(b: u8) -> bool {
    has(b, REG_NAME)
}

/// `1*tchar` (RFC 9110 §5.6.2).
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// The value of one hex digit.
#[inline]
pub fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `1*DIGIT` as a u64; `None` if empty, any other byte (`+`, `-`, SP...) or
/// overflow (RFC 9112 §6.3 needs exactly this for Content-Length).
pub fn parse_u64_digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// `1*HEXDIG` as a u64; `None` if empty, any other byte (`0x`, `+`, SP...) or
/// overflow (RFC 9112 §7.1 chunk-size).
pub fn parse_hex_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = hex_val(b)?;
        acc.checked_mul(16)?.checked_add(u64::from(d))
    })
}

/// `s[range]` where the caller's arithmetic keeps `range` inside `s`:
/// checked in debug builds (a broken invariant fails the tests), an empty
/// slice rather than a panic in the server.
#[inline]
pub fn within<R>(s: &[u8], range: R) -> &[u8]
where
    R: std::slice::SliceIndex<[u8], Output = [u8]> + std::fmt::Debug + Clone,
{
    match s.get(range.clone()) {
        Some(part) => part,
        None => {
            debug_assert!(false, "{range:?} outside a slice of {} bytes", s.len());
            &[]
        }
    }
}

/// The slice without leading and trailing SP/HTAB (OWS, RFC 9110 §5.6.3).
pub fn trim_ows(s: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    within(s, start..end)
}

/// The elements of a comma-separated list field value, each trimmed of OWS
/// (RFC 9110 §5.6.1). Empty elements are yielded as empty slices so that each
/// caller decides whether they are an error.
pub fn list_elements(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == b',').map(trim_ows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_slices_what_is_inside() {
        assert_eq!(within(b"abcdef", 1..3), b"bc");
        assert_eq!(within(b"abcdef", 6..), b"");
        assert_eq!(within(b"abcdef", ..6), b"abcdef");
    }

    /// A range outside the slice is a broken invariant: the tests (debug
    /// builds) fail loudly; a release build answers an empty slice.
    #[test]
    #[cfg_attr(
        debug_assertions,
        should_panic(expected = "outside a slice of 3 bytes")
    )]
    fn within_outside_is_caught_in_debug_builds() {
        assert_eq!(within(b"abc", 2..5), b"");
    }

    #[test]
    fn tables_match_plain_predicates_for_all_256_bytes() {
        for b in 0..=255u8 {
            let tchar = matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
                    | b'0'..=b'9'
                    | b'a'..=b'z'
                    | b'A'..=b'Z'
            );
            assert_eq!(is_tchar(b), tchar, "tchar {b:#04x}");
            let value = b == 9 || (32..127).contains(&b) || b >= 128;
            assert_eq!(is_field_value_byte(b), value, "value {b:#04x}");
            let target = b.is_ascii_graphic();
            assert_eq!(is_target_byte(b), target, "target {b:#04x}");
            assert_eq!(is_hex(b), b.is_ascii_hexdigit(), "hex {b:#04x}");
            assert_eq!(
                hex_val(b).is_some(),
                b.is_ascii_hexdigit(),
                "hex_val {b:#04x}"
            );
            let reg = b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                );
            assert_eq!(is_reg_name_byte(b), reg, "reg-name {b:#04x}");
        }
    }

    #[test]
    fn hex_values() {
        for (i, c) in b"0123456789abcdef".iter().enumerate() {
            assert_eq!(hex_val(*c), Some(i as u8));
            assert_eq!(hex_val(c.to_ascii_uppercase()), Some(i as u8));
        }
    }

    #[test]
    fn decimal_digits() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"5", Some(5)),
            (b"000123", Some(123)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
            (b"99999999999999999999", None),
            (b"", None),
            (b"+5", None),
            (b"-1", None),
            (b"0x5", None),
            (b"1 0", None),
            (b" 1", None),
            (b"1 ", None),
            (b"1a", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_u64_digits(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn hex_digits() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"a", Some(10)),
            (b"FF", Some(255)),
            (b"00000000000000000001", Some(1)),
            (b"ffffffffffffffff", Some(u64::MAX)),
            (b"10000000000000000", None),
            (b"", None),
            (b"0x1", None),
            (b"+1", None),
            (b" 1", None),
            (b"1;", None),
            (b"g", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_hex_u64(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn ows_and_lists() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b"x"), b"x");
        let v: Vec<&[u8]> = list_elements(b" a ,b,, c\t").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"", b"c"]);
        assert!(is_token(b"chunked"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
    }
}
