//! The header block a CGI script writes before its body (RFC 3875 §6):
//! parsed as it arrives, over `&[u8]`, like the request head. What the
//! server makes of it (framing, the session headers) is decided above.

use memchr::memchr;

use crate::http::bytes::{is_field_value_byte, is_tchar, is_token, parse_u64_digits, trim_ows};

/// Largest CGI header block read (the blank line included).
pub const MAX_CGI_HEAD: usize = 16 * 1024;

/// Most header fields passed on from a CGI response.
pub const MAX_CGI_HEADERS: usize = 64;

/// The header block of a CGI response (RFC 3875 §6).
#[derive(Debug, PartialEq, Eq)]
pub struct CgiHead<'a> {
    /// From `Status:`, else 302 with a `Location`, else 200.
    pub status: u16,
    pub content_type: Option<&'a [u8]>,
    pub location: Option<&'a [u8]>,
    pub content_length: Option<u64>,
    /// Every other header, passed on to the client as is.
    pub headers: arrayvec::ArrayVec<(&'a [u8], &'a [u8]), 64>,
}

/// Why a CGI header block is refused (→ 502).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadCgiHead(pub &'static str);

/// Header fields of a script that the server never passes on: hop-by-hop
/// fields (RFC 9110 §7.6.1: the server frames the response itself) and
/// `Date`/`Server`, which the server writes.
const DROPPED: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "date",
    "server",
];

/// Parse the header block at the start of `buf`: `Ok(None)` until the blank
/// line arrives, then the head and the number of bytes it took.
///
/// Lines end with CRLF or a bare LF. Each is `Name: value` with a token
/// name and a value of field-value bytes (no CR, NUL or other control);
/// `Status`, `Location`, `Content-Type` and `Content-Length` may appear
/// once each. `Status` is three digits in 200..=599 (a 1xx cannot be a
/// final response) and an optional reason, which is dropped. A head with
/// none of `Status`, `Location`, `Content-Type` is taken leniently as 200,
/// and so is an empty one (a blank first line). A first line without a
/// colon means the script sent no head at all: refused, as is a block
/// that has not ended within [`MAX_CGI_HEAD`] bytes or holds more than
/// [`MAX_CGI_HEADERS`] other fields. Hop-by-hop fields (`Connection`,
/// `Transfer-Encoding`, ...) and `Date`/`Server` are skipped. A line that can no longer become valid is refused as soon as
/// it is seen, before its end arrives.
pub fn parse_head(buf: &[u8]) -> Result<Option<(CgiHead<'_>, usize)>, BadCgiHead> {
    let window = buf.get(..buf.len().min(MAX_CGI_HEAD)).unwrap_or(buf);
    let mut head = CgiHead {
        status: 200,
        content_type: None,
        location: None,
        content_length: None,
        headers: arrayvec::ArrayVec::new(),
    };
    let mut status = None;
    let mut pos = 0;
    loop {
        let rest = window.get(pos..).unwrap_or(&[]);
        let Some(lf) = memchr(b'\n', rest) else {
            check_partial(rest, pos == 0)?;
            return if buf.len() > MAX_CGI_HEAD {
                Err(BadCgiHead("header block too large"))
            } else {
                Ok(None)
            };
        };
        let line = rest.get(..lf).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let first = pos == 0;
        pos += lf + 1;
        if line.is_empty() {
            break;
        }
        let Some(colon) = memchr(b':', line) else {
            return Err(BadCgiHead(if first {
                "no header block"
            } else {
                "header line without a colon"
            }));
        };
        let name = line.get(..colon).unwrap_or(&[]);
        let value = trim_ows(line.get(colon + 1..).unwrap_or(&[]));
        if !is_token(name) {
            return Err(BadCgiHead("bad header name"));
        }
        if !value.iter().all(|&b| is_field_value_byte(b)) {
            return Err(BadCgiHead("bad header value"));
        }
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if is("status") {
            if status.is_some() {
                return Err(BadCgiHead("Status given twice"));
            }
            status = Some(parse_status(value)?);
        } else if is("location") {
            head.location = Some(once(head.location, value, "Location")?);
        } else if is("content-type") {
            head.content_type = Some(once(head.content_type, value, "Content-Type")?);
        } else if is("content-length") {
            if head.content_length.is_some() {
                return Err(BadCgiHead("Content-Length given twice"));
            }
            head.content_length =
                Some(parse_u64_digits(value).ok_or(BadCgiHead("bad Content-Length"))?);
        } else if !DROPPED.iter().any(|d| is(d)) {
            head.headers
                .try_push((name, value))
                .map_err(|_| BadCgiHead("too many header fields"))?;
        }
    }
    head.status = match (status, head.location) {
        (Some(s), _) => s,
        (None, Some(_)) => 302,
        (None, None) => 200,
    };
    Ok(Some((head, pos)))
}

/// A special field's value, refused when empty or given twice.
fn once<'a>(
    seen: Option<&'a [u8]>,
    value: &'a [u8],
    what: &'static str,
) -> Result<&'a [u8], BadCgiHead> {
    match (seen, value.is_empty()) {
        (Some(_), _) => Err(BadCgiHead(what)),
        (None, true) => Err(BadCgiHead(what)),
        (None, false) => Ok(value),
    }
}

/// `Status: 404 Not Found` → 404.
fn parse_status(value: &[u8]) -> Result<u16, BadCgiHead> {
    let bad = BadCgiHead("bad Status");
    let (code, reason) = value.split_at_checked(3).ok_or(bad)?;
    if !(reason.is_empty() || reason.starts_with(b" ") || reason.starts_with(b"\t")) {
        return Err(bad);
    }
    let code = parse_u64_digits(code).ok_or(bad)?;
    u16::try_from(code)
        .ok()
        .filter(|c| (200..=599).contains(c))
        .ok_or(bad)
}

/// The unfinished last line `rest`: refused at once when no ending can make
/// it valid, i.e. its name part (before any colon) holds a byte that is not
/// a `tchar` (a trailing CR may still be the start of a CRLF).
fn check_partial(rest: &[u8], first: bool) -> Result<(), BadCgiHead> {
    let name = match memchr(b':', rest) {
        Some(colon) => rest.get(..colon).unwrap_or(&[]),
        None => rest.strip_suffix(b"\r").unwrap_or(rest),
    };
    if name.iter().all(|&b| is_tchar(b)) {
        Ok(())
    } else if first {
        Err(BadCgiHead("no header block"))
    } else {
        Err(BadCgiHead("bad header name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (
        &'static str,
        &'static [u8],
        Result<Option<(u16, usize)>, BadCgiHead>,
    );

    #[test]
    fn parse_head_table() {
        let bad = |w| Err(BadCgiHead(w));
        let cases: &[Case] = &[
            (
                "content type only",
                b"Content-Type: text/html\r\n\r\nbody",
                Ok(Some((200, 27))),
            ),
            (
                "status",
                b"Status: 404 Not Found\r\n\r\n",
                Ok(Some((404, 25))),
            ),
            (
                "status without reason",
                b"Status: 201\n\n",
                Ok(Some((201, 13))),
            ),
            ("location → 302", b"Location: /x\n\n", Ok(Some((302, 14)))),
            (
                "location + status",
                b"Location: http://a/\nStatus: 301\n\n",
                Ok(Some((301, 33))),
            ),
            (
                "LF only",
                b"Content-Type: a/b\nX: y\n\nrest",
                Ok(Some((200, 24))),
            ),
            ("empty head", b"\r\nbody", Ok(Some((200, 2)))),
            ("no special field", b"X-A: 1\r\n\r\n", Ok(Some((200, 10)))),
            ("partial", b"Content-Type: text/html\r\n", Ok(None)),
            ("partial line", b"Content-Ty", Ok(None)),
            ("partial CR", b"Status: 200\r\n\r", Ok(None)),
            ("empty", b"", Ok(None)),
            ("no head", b"<html>\n", bad("no header block")),
            ("no head, unfinished", b"<html", bad("no header block")),
            (
                "no colon later",
                b"A: b\nfoo\n\n",
                bad("header line without a colon"),
            ),
            (
                "space in name",
                b"Content Type: x\n\n",
                bad("bad header name"),
            ),
            ("obs-fold", b"A: b\n c: d\n\n", bad("bad header name")),
            ("CR in value", b"A: b\rc\n\n", bad("bad header value")),
            ("NUL in value", b"A: b\0c\n\n", bad("bad header value")),
            ("status letters", b"Status: abc\n\n", bad("bad Status")),
            ("status too big", b"Status: 600\n\n", bad("bad Status")),
            (
                "status 1xx",
                b"Status: 101 Switching\n\n",
                bad("bad Status"),
            ),
            ("status 4 digits", b"Status: 2000\n\n", bad("bad Status")),
            ("status short", b"Status: 20\n\n", bad("bad Status")),
            (
                "status twice",
                b"Status: 200\nStatus: 200\n\n",
                bad("Status given twice"),
            ),
            (
                "bad length",
                b"Content-Length: 1x\n\n",
                bad("bad Content-Length"),
            ),
            (
                "negative length",
                b"Content-Length: -1\n\n",
                bad("bad Content-Length"),
            ),
            (
                "length twice",
                b"Content-Length: 1\nContent-Length: 1\n\n",
                bad("Content-Length given twice"),
            ),
            ("empty location", b"Location:\n\n", bad("Location")),
            (
                "two types",
                b"Content-Type: a/b\nContent-type: a/c\n\n",
                bad("Content-Type"),
            ),
        ];
        for (name, input, want) in cases {
            let got = parse_head(input).map(|o| o.map(|(h, n)| (h.status, n)));
            assert_eq!(got, *want, "{name}");
            // Every prefix of a complete head is partial (or already refused).
            if let Ok(Some((_, n))) = want {
                for cut in 0..*n {
                    assert_eq!(parse_head(&input[..cut]), Ok(None), "{name} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn parse_head_fields() {
        let input = b"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
            Content-Length: 12\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\n\
            Connection: close\r\nTransfer-Encoding: chunked\r\nDate: x\r\nServer: y\r\n\r\nhello";
        let (h, n) = parse_head(input).unwrap().unwrap();
        assert_eq!(&input[n..], b"hello");
        assert_eq!(h.status, 200);
        assert_eq!(h.content_type, Some(&b"text/plain; charset=utf-8"[..]));
        assert_eq!(h.content_length, Some(12));
        assert_eq!(h.location, None);
        let kept: Vec<_> = h.headers.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(
            kept,
            vec![
                (&b"Set-Cookie"[..], &b"a=1"[..]),
                (b"Set-Cookie", b"b=2"),
                (b"X-Empty", b""),
            ]
        );
        let (h, _) = parse_head(b"location:  /a?b  \n\n").unwrap().unwrap();
        assert_eq!((h.status, h.location), (302, Some(&b"/a?b"[..])));
    }

    #[test]
    fn parse_head_limits() {
        // 64 other fields are fine, 65 are not.
        let mut ok = String::new();
        for i in 0..MAX_CGI_HEADERS {
            ok.push_str(&format!("X-{i}: v\n"));
        }
        let mut over = ok.clone();
        over.push_str("X-last: v\n\n");
        ok.push('\n');
        assert_eq!(
            parse_head(ok.as_bytes()).unwrap().unwrap().0.headers.len(),
            64
        );
        assert_eq!(
            parse_head(over.as_bytes()),
            Err(BadCgiHead("too many header fields"))
        );
        // Up to 16 KiB without a blank line: still waiting; beyond: refused.
        let mut long = b"X-Long: ".to_vec();
        long.resize(MAX_CGI_HEAD, b'a');
        assert_eq!(parse_head(&long), Ok(None));
        long.push(b'a');
        assert_eq!(parse_head(&long), Err(BadCgiHead("header block too large")));
        // A head ending exactly at the limit is accepted, whatever follows.
        let mut exact = b"X-Long: ".to_vec();
        exact.resize(MAX_CGI_HEAD - 2, b'a');
        exact.extend_from_slice(b"\n\nbody");
        assert_eq!(parse_head(&exact).unwrap().unwrap().1, MAX_CGI_HEAD);
    }

    #[test]
    fn parse_head_byte_at_a_time_agrees() {
        let inputs: &[&[u8]] = &[
            b"Status: 404 Nope\r\nContent-Type: text/plain\r\n\r\nbody",
            b"Location: /x\n\n",
            b"<html>",
            b"A: b\rc\n\n",
            b"A: b\nfoo\n\n",
        ];
        for input in inputs {
            let whole = parse_head(input).map(|o| o.map(|(h, n)| (h.status, n)));
            let mut seen = Ok(None);
            for cut in 1..=input.len() {
                seen = parse_head(&input[..cut]).map(|o| o.map(|(h, n)| (h.status, n)));
                if !matches!(seen, Ok(None)) {
                    break;
                }
            }
            // Refusals may come early, but they are the same refusal.
            match (&whole, &seen) {
                (Ok(Some(w)), Ok(Some(s))) => assert_eq!(w, s),
                (Err(_), Err(_)) | (Ok(None), Ok(None)) => {}
                _ => panic!("{input:?}: {whole:?} vs {seen:?}"),
            }
        }
    }
}
