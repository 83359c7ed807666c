//! The `Cookie` request header (RFC 6265 §4.2.1, §5.4) and `Set-Cookie`
//! values (RFC 6265 §4.1).
//!
//! Parsing is lenient in what it skips and strict in what it yields: the
//! header is split at `;`, each piece is trimmed of SP/HTAB, and a piece is
//! yielded only when it is `token=value` with a value made of `cookie-octet`s
//! (optionally wrapped in one pair of DQUOTEs, which are stripped). Anything
//! else (no `=`, empty or non-token name, a space, comma, backslash or control
//! inside the value) is skipped, never an error: a browser sends whatever other
//! sites on the same host stored, and one bad cookie must not cost the others.
//! Every yielded slice borrows the input. Nothing here allocates or panics.

#![deny(clippy::indexing_slicing)]

use arrayvec::ArrayString;
use memchr::memchr;

use super::bytes::{is_token, trim_ows};

/// The name of the session cookie (CONFIG.md "Sessions and cookies").
pub const SESSION_COOKIE: &str = "SID";
/// The attributes of the session cookie: the whole site, not readable by
/// scripts, not sent on cross-site subrequests (CONFIG.md).
pub const SESSION_ATTRIBUTES: &str = "; Path=/; HttpOnly; SameSite=Lax";
/// Capacity of a session `Set-Cookie` value: `SID=` + 72 hex digits + the
/// attributes is 108 bytes; the rest is room for a longer id.
pub const SESSION_SET_COOKIE_CAP: usize = 128;

/// Sets `true` for every byte in `lo..=hi`.
// Only evaluated at compile time: an index out of range is a build error.
#[allow(clippy::indexing_slicing)]
const fn with_range(mut t: [bool; 256], lo: u8, hi: u8) -> [bool; 256] {
    let mut b = lo as usize;
    while b <= hi as usize {
        t[b] = true;
        b += 1;
    }
    t
}

/// `cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E` (RFC 6265
/// §4.1.1): US-ASCII visible characters except DQUOTE, comma, semicolon and
/// backslash.
const COOKIE_OCTET: [bool; 256] = {
    let t = [false; 256];
    let t = with_range(t, 0x21, 0x21);
    let t = with_range(t, 0x23, 0x2B);
    let t = with_range(t, 0x2D, 0x3A);
    let t = with_range(t, 0x3C, 0x5B);
    with_range(t, 0x5D, 0x7E)
};

/// A byte allowed in a cookie value (RFC 6265 §4.1.1 `cookie-octet`).
#[inline]
pub fn is_cookie_octet(b: u8) -> bool {
    // A u8 always indexes a 256-entry table: `get` never misses.
    COOKIE_OCTET.get(usize::from(b)).copied().unwrap_or(false)
}

/// The valid `(name, value)` pairs of one `Cookie` header value, in order,
/// quotes stripped from quoted values. Invalid pairs are skipped.
pub fn cookies(header_value: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header_value.split(|&b| b == b';').filter_map(pair)
}

/// One `name=value` piece, or `None` if it is not a valid cookie-pair.
fn pair(piece: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = memchr(b'=', piece)?;
    // RFC 6265 §5.2 step 5: a user agent trims whitespace around name and
    // value; doing the same here accepts `a = b` from hand-written clients.
    let name = trim_ows(piece.get(..eq)?);
    let value = trim_ows(piece.get(eq + 1..)?);
    if !is_token(name) {
        return None;
    }
    // RFC 6265 §4.1.1: cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE ).
    let value = match value {
        [b'"', inner @ .., b'"'] => inner,
        v => v,
    };
    value
        .iter()
        .all(|&b| is_cookie_octet(b))
        .then_some((name, value))
}

/// The value of the first valid cookie called `name` (case-sensitive, RFC 6265
/// §5.4) across the given `Cookie` header values, in order.
pub fn find<'a>(headers: impl IntoIterator<Item = &'a [u8]>, name: &[u8]) -> Option<&'a [u8]> {
    headers
        .into_iter()
        .flat_map(cookies)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` field value `name=value` followed by `attributes` (each
/// starting with `; `), or `None` if `name` is not a token, `value` holds a
/// byte that is not a `cookie-octet`, or the whole does not fit in `N` bytes.
pub fn set_cookie<const N: usize>(
    name: &str,
    value: &str,
    attributes: &str,
) -> Option<ArrayString<N>> {
    if !is_token(name.as_bytes()) || !value.bytes().all(is_cookie_octet) {
        return None;
    }
    let mut out = ArrayString::new();
    out.try_push_str(name).ok()?;
    out.try_push('=').ok()?;
    out.try_push_str(value).ok()?;
    out.try_push_str(attributes).ok()?;
    Some(out)
}

/// The `Set-Cookie` value of a new session: exactly
/// `SID=<sid_hex>; Path=/; HttpOnly; SameSite=Lax` (CONFIG.md). `None` if
/// `sid_hex` is empty, holds a byte that cannot stand in a cookie, or is too
/// long (a 32-digit id always fits).
pub fn session_cookie(sid_hex: &str) -> Option<ArrayString<SESSION_SET_COOKIE_CAP>> {
    if sid_hex.is_empty() {
        return None;
    }
    set_cookie(SESSION_COOKIE, sid_hex, SESSION_ATTRIBUTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::xorshift;

    fn all(h: &[u8]) -> Vec<(&[u8], &[u8])> {
        cookies(h).collect()
    }

    #[test]
    fn cookie_octet_table_matches_the_grammar_for_all_256_bytes() {
        for b in 0..=255u8 {
            let want = (0x21..=0x7E).contains(&b) && !matches!(b, b'"' | b',' | b';' | b'\\');
            assert_eq!(is_cookie_octet(b), want, "{b:#04x}");
        }
    }

    #[test]
    fn table_cases() {
        type Pairs = &'static [(&'static [u8], &'static [u8])];
        let cases: &[(&str, &[u8], Pairs)] = &[
            ("empty header", b"", &[]),
            ("only spaces", b"   ", &[]),
            ("one", b"a=1", &[(b"a", b"1")]),
            ("empty value", b"a=", &[(b"a", b"")]),
            (
                "several, RFC spacing",
                b"SID=abc; theme=dark; lang=en",
                &[(b"SID", b"abc"), (b"theme", b"dark"), (b"lang", b"en")],
            ),
            (
                "no space after ;",
                b"a=1;b=2",
                &[(b"a", b"1"), (b"b", b"2")],
            ),
            (
                "tabs and spaces",
                b" \ta=1 \t;\t b=2 ",
                &[(b"a", b"1"), (b"b", b"2")],
            ),
            ("spaces around =", b"a = 1", &[(b"a", b"1")]),
            ("quoted", b"a=\"xyz\"", &[(b"a", b"xyz")]),
            ("quoted empty", b"a=\"\"", &[(b"a", b"")]),
            ("lone quote", b"a=\"; b=2", &[(b"b", b"2")]),
            ("unbalanced quote", b"a=\"xyz; b=2", &[(b"b", b"2")]),
            ("quote inside", b"a=x\"y; b=2", &[(b"b", b"2")]),
            ("doubly quoted", b"a=\"\"x\"\"", &[]),
            ("= in value", b"a=b=c", &[(b"a", b"b=c")]),
            ("base64 padding", b"t=YWJj==", &[(b"t", b"YWJj==")]),
            ("no =", b"flag; a=1", &[(b"a", b"1")]),
            ("empty name", b"=1; a=2", &[(b"a", b"2")]),
            ("name with space", b"a b=1; c=2", &[(b"c", b"2")]),
            ("name with (", b"a(=1; c=2", &[(b"c", b"2")]),
            ("space in value", b"a=x y; c=2", &[(b"c", b"2")]),
            ("comma in value", b"a=x,y; c=2", &[(b"c", b"2")]),
            ("backslash in value", b"a=x\\y; c=2", &[(b"c", b"2")]),
            ("control in value", b"a=x\x01y; c=2", &[(b"c", b"2")]),
            ("DEL in value", b"a=x\x7Fy; c=2", &[(b"c", b"2")]),
            ("non-ASCII value", b"a=\xC3\xA9; c=2", &[(b"c", b"2")]),
            ("NUL", b"a=\x00; c=2", &[(b"c", b"2")]),
            ("double ;", b"a=1;; b=2", &[(b"a", b"1"), (b"b", b"2")]),
            ("trailing ;", b"a=1;", &[(b"a", b"1")]),
            ("leading ;", b"; a=1", &[(b"a", b"1")]),
            ("only ;", b";;;", &[]),
            (
                "duplicates kept in order",
                b"a=1; a=2",
                &[(b"a", b"1"), (b"a", b"2")],
            ),
            (
                "bad among good",
                b"good=1; bad value=2; =x; also good=3; ok=\"4\"; ;x",
                &[(b"good", b"1"), (b"ok", b"4")],
            ),
            (
                "token punctuation in name",
                b"__Host-id=1; a.b=2",
                &[(b"__Host-id", b"1"), (b"a.b", b"2")],
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(all(input), want.to_vec(), "{name}");
        }
    }

    #[test]
    fn find_first_valid_across_headers() {
        let h: [&[u8]; 3] = [
            b"x=1; SID=bad value",
            b"SID=first; SID=second",
            b"SID=third",
        ];
        assert_eq!(find(h, b"SID"), Some(&b"first"[..]));
        assert_eq!(find(h, b"x"), Some(&b"1"[..]));
        // Names are case-sensitive (RFC 6265 §5.4).
        assert_eq!(find(h, b"sid"), None);
        assert_eq!(find(h, b"nope"), None);
        assert_eq!(find(std::iter::empty(), b"SID"), None);
        assert_eq!(find([&b""[..]], b"SID"), None);
        // A quoted value is found unquoted.
        assert_eq!(find([&b"SID=\"q\""[..]], b"SID"), Some(&b"q"[..]));
    }

    #[test]
    fn session_cookie_exact() {
        let hex = "0123456789abcdef0123456789abcdef";
        let c = session_cookie(hex).unwrap();
        assert_eq!(
            c.as_str(),
            "SID=0123456789abcdef0123456789abcdef; Path=/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(session_cookie(""), None);
        assert_eq!(session_cookie("a b"), None);
        assert_eq!(session_cookie("a;b"), None);
        assert_eq!(session_cookie(&"a".repeat(200)), None);
        assert!(session_cookie(&"a".repeat(72)).is_some());
        assert_eq!(
            set_cookie::<32>("a", "b", "; Max-Age=0").unwrap().as_str(),
            "a=b; Max-Age=0"
        );
        assert_eq!(set_cookie::<32>("a b", "b", ""), None);
        assert_eq!(set_cookie::<4>("abc", "def", ""), None);
        // What we write, we read back.
        assert_eq!(find([c.as_bytes()], b"SID"), Some(hex.as_bytes()));
    }

    #[test]
    fn fuzz_never_panics_and_yields_only_valid_pairs() {
        const PIECES: &[&[u8]] = &[
            b"SID",
            b"a",
            b"=",
            b"==",
            b";",
            b"; ",
            b" ",
            b"\t",
            b"\"",
            b"\\",
            b",",
            b"\x00",
            b"\xFF",
            b"\r\n",
            b"0123456789abcdef",
            b"x y",
            b"(",
            b"%",
            b"\x7F",
        ];
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..50_000 {
            let mut input = Vec::new();
            let n = xorshift(&mut s) % 12;
            for _ in 0..n {
                if xorshift(&mut s).is_multiple_of(4) {
                    input.push(xorshift(&mut s) as u8);
                } else {
                    input.extend_from_slice(PIECES[(xorshift(&mut s) as usize) % PIECES.len()]);
                }
            }
            let pairs = all(&input);
            for (name, value) in &pairs {
                assert!(is_token(name), "{input:?}");
                assert!(value.iter().all(|&b| is_cookie_octet(b)), "{input:?}");
            }
            // Never more pairs than pieces; `find` agrees with the first pair.
            assert!(pairs.len() <= input.iter().filter(|&&b| b == b';').count() + 1);
            if let Some((name, value)) = pairs.first() {
                assert_eq!(find([&input[..]], name), Some(*value));
            }
        }
    }
}
