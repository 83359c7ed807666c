//! Escaping for what handlers write into responses: percent-encoding for
//! URLs (`Location` headers, listing links) and HTML escaping for text.
//! Byte classes are 256-entry tables built at compile time (an index out of
//! range there would fail the build) and looked up with a `u8`, which can
//! never be out of bounds; the tests check all 256 bytes against plain
//! predicates.

use std::borrow::Cow;

/// A table with `true` for every byte listed in `allowed` and every ASCII
/// letter or digit.
const fn class(allowed: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < allowed.len() {
        t[allowed[i] as usize] = true;
        i += 1;
    }
    t
}

/// RFC 3986 §2.3 unreserved: the only bytes left as they are in a listing
/// link, so a name can never be read as a scheme (`a:b`), a query (`?`), a
/// fragment (`#`) or an HTML entity (`&`).
static UNRESERVED: [bool; 256] = class(b"-._~");

/// RFC 3986 §3.3 `pchar` plus `/`: what a decoded path keeps in a `Location`.
static PATH: [bool; 256] = class(b"-._~!$&'()*+,;=:@/");

/// What a query, still percent-encoded as the client sent it, keeps: `pchar`,
/// `/`, `?` and `%` (RFC 3986 §3.4).
static QUERY: [bool; 256] = class(b"-._~!$&'()*+,;=:@/?%");

/// Visible ASCII (`%x21-7E`): what a configured URL keeps in a `Location`
/// header; controls (no CR/LF can split the head), spaces and non-ASCII are
/// encoded.
static VISIBLE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        t[b] = true;
        b += 1;
    }
    t
};

/// Append `bytes` to `out`, percent-encoding each byte outside `keep`.
fn encode_into(out: &mut String, bytes: &[u8], keep: &[bool; 256]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if keep[usize::from(b)] {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// A listing link to the entry `name`: every byte but the unreserved ones
/// percent-encoded, `/` appended for a folder.
pub(super) fn href(out: &mut String, name: &[u8]) {
    encode_into(out, name, &UNRESERVED);
}

/// A decoded, normalised path made fit for a `Location` header.
pub(super) fn path(out: &mut String, path: &[u8]) {
    encode_into(out, path, &PATH);
}

/// A raw query made fit for a `Location` header (it normally is already).
pub(super) fn query(out: &mut String, query: &[u8]) {
    encode_into(out, query, &QUERY);
}

/// A configured URL made fit for a `Location` header: borrowed as it is
/// unless it holds a byte that is not visible ASCII.
pub(super) fn url(url: &str) -> Cow<'_, str> {
    if url.bytes().all(|b| VISIBLE[usize::from(b)]) {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len() + 8);
    encode_into(&mut out, url.as_bytes(), &VISIBLE);
    Cow::Owned(out)
}

/// Append `text` to `out` with `&`, `<`, `>`, `"` and `'` escaped, so it is
/// safe both as element text and inside a quoted attribute.
pub(super) fn html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_predicates() {
        for b in 0..=255u8 {
            let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
            let sub_delim = b"!$&'()*+,;=".contains(&b);
            let pchar = unreserved || sub_delim || b == b':' || b == b'@';
            assert_eq!(UNRESERVED[usize::from(b)], unreserved, "{b}");
            assert_eq!(PATH[usize::from(b)], pchar || b == b'/', "{b}");
            assert_eq!(QUERY[usize::from(b)], pchar || b"/?%".contains(&b), "{b}");
        }
    }

    #[test]
    fn encodes() {
        let mut s = String::new();
        href(&mut s, "a&b <c>%#?/é".as_bytes());
        assert_eq!(s, "a%26b%20%3Cc%3E%25%23%3F%2F%C3%A9");
        let mut s = String::new();
        path(&mut s, "/a b/%é?#".as_bytes());
        assert_eq!(s, "/a%20b/%25%C3%A9%3F%23");
        let mut s = String::new();
        query(&mut s, b"a=1&b=%20 x\"");
        assert_eq!(s, "a=1&b=%20%20x%22");
        assert!(matches!(url("/a?b=%20#c"), Cow::Borrowed("/a?b=%20#c")));
        assert_eq!(url("/a b\r\nX: é"), "/a%20b%0D%0AX:%20%C3%A9");
        let mut s = String::new();
        html(&mut s, "x\"y <a&b> 'z'");
        assert_eq!(s, "x&quot;y &lt;a&amp;b&gt; &#39;z&#39;");
    }
}
