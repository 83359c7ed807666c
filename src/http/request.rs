//! The request head parser: pure, incremental, zero-copy (RFC 9112 §2-§7).
//!
//! `parse_head` is called with the bytes received so far, always from the
//! same start. A first pass (`scan`) finds line ends with `memchr`, resuming
//! where the previous call stopped (`ParseState`), and enforces the size
//! limits of rule 14 as soon as they are crossed, before the head is complete.
//! Once the blank line ending the head is found, the lines are parsed once
//! into a `Request` whose slices borrow the input.
//!
//! Invariant: the answer depends only on the bytes, never on how they were
//! split across calls. Every event (a line end, a limit crossed) is acted on
//! in byte order, so a head fed whole or one byte at a time gives the same
//! result; the tests and the fuzz loop check exactly this.

use arrayvec::ArrayVec;
use memchr::{memchr, memchr2};

use super::bytes::{
    is_field_value_byte, is_hex, is_reg_name_byte, is_target_byte, is_token, list_elements,
    parse_u64_digits, trim_ows,
};
use super::{Method, Version};

/// Limits of HTTP.md rule 14.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Largest head (request line + fields + blank line) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most field lines accepted.
pub const MAX_FIELDS: usize = 100;

/// One field line, name and value borrowed from the input (value trimmed of
/// leading/trailing SP/HTAB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// A parsed request head; every slice borrows the input buffer.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: Method,
    /// The method token as sent (for logs and CGI).
    pub method_raw: &'a [u8],
    /// The request-target as sent.
    pub target: &'a [u8],
    /// The path part of the target, still percent-encoded (`/` for an
    /// absolute-form target without a path; `*` for `OPTIONS *`, which is
    /// not a path and must not be looked up as one).
    pub path: &'a [u8],
    /// The query without its `?`, if the target had one.
    pub query: Option<&'a [u8]>,
    pub version: Version,
    /// The host name (from the absolute-form authority, else the Host field)
    /// without port and trailing dot, as sent (compare case-insensitively).
    /// `None` when the request has no usable host (HTTP/1.0 without Host).
    pub host: Option<&'a [u8]>,
    /// The port from the authority/Host, if one was given.
    pub port: Option<u16>,
    /// Declared body length (validated per rule 4).
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked` (the only coding accepted, rule 2).
    pub chunked: bool,
    /// Whether the connection stays open after this exchange (rule 17).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request (rule 20).
    pub expect_continue: bool,
    /// The head's bytes, which the field spans point into.
    src: &'a [u8],
    /// Every field line, in order, as offsets into `src`: 8 bytes a field
    /// rather than two slices (32), so a `Request` moves cheaply.
    fields: arrayvec::ArrayVec<FieldSpan, MAX_FIELDS>,
}

/// Where one field's name and value lie in the head (a head is at most
/// `MAX_HEAD` bytes, so `u16` offsets suffice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FieldSpan {
    name: u16,
    name_len: u16,
    value: u16,
    value_len: u16,
}

impl<'a> Request<'a> {
    /// The first field with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value)
    }

    /// Every field line, in order.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = Header<'a>> + '_ {
        let src = self.src;
        self.fields.iter().map(move |f| Header {
            name: slice(src, f.name, f.name_len),
            value: slice(src, f.value, f.value_len),
        })
    }

    /// The request line as received, without its line end (nginx's
    /// `$request`, for the access log).
    pub fn request_line(&self) -> &'a [u8] {
        let start = (self.method_raw.as_ptr() as usize).saturating_sub(self.src.as_ptr() as usize);
        let rest = self.src.get(start..).unwrap_or(&[]);
        let end = memchr2(CR, LF, rest).unwrap_or(rest.len());
        rest.get(..end).unwrap_or(&[])
    }

    /// Record a field whose slices lie inside `src`; `false` when they do
    /// not (never for fields parsed from `src`) or there are too many.
    fn push_field(&mut self, h: Header<'a>) -> bool {
        let (Some(name), Some(value)) = (offset(self.src, h.name), offset(self.src, h.value))
        else {
            return false;
        };
        let (Ok(name_len), Ok(value_len)) =
            (u16::try_from(h.name.len()), u16::try_from(h.value.len()))
        else {
            return false;
        };
        self.fields
            .try_push(FieldSpan {
                name,
                name_len,
                value,
                value_len,
            })
            .is_ok()
    }
}

/// `len` bytes of `src` from `at` (empty if out of range, which spans made
/// by `push_field` never are).
fn slice(src: &[u8], at: u16, len: u16) -> &[u8] {
    let at = usize::from(at);
    src.get(at..at + usize::from(len)).unwrap_or(&[])
}

/// The offset of `part` within `src`, if it lies inside it.
fn offset(src: &[u8], part: &[u8]) -> Option<u16> {
    let start = (part.as_ptr() as usize).checked_sub(src.as_ptr() as usize)?;
    (start + part.len() <= src.len()).then_some(())?;
    u16::try_from(start).ok()
}

/// Why a head was refused; each maps to one status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Malformed syntax (rules 1-5, 8-11, 13, 15, 16) → 400.
    BadRequest(&'static str),
    /// Request line over `MAX_REQUEST_LINE` → 414.
    UriTooLong,
    /// Head over `MAX_HEAD` or more than `MAX_FIELDS` fields → 431.
    HeaderTooLarge,
    /// A transfer coding other than chunked (rule 2) → 501.
    NotImplemented,
    /// Major version other than 1 → 505.
    VersionNotSupported,
}

impl HeadError {
    /// The status code this error is answered with.
    pub fn status(self) -> u16 {
        match self {
            HeadError::BadRequest(_) => 400,
            HeadError::UriTooLong => 414,
            HeadError::HeaderTooLarge => 431,
            HeadError::NotImplemented => 501,
            HeadError::VersionNotSupported => 505,
        }
    }
}

/// Scanning state kept between calls so that a head arriving in pieces is
/// never re-scanned from byte 0.
///
/// It is reset to its default whenever `parse_head` returns anything but
/// `Partial`, so after a `Complete` the caller can go straight on with the
/// bytes that follow the head (pipelining).
#[derive(Clone, Copy, Debug, Default)]
pub struct ParseState {
    /// Bytes already scanned without finding the end of the head.
    pub scanned: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// The request line, once its line end has been seen.
    request_line: Option<LineSpan>,
    /// Whether the request line has already been checked (see `check_early`).
    request_checked: bool,
    /// Field lines seen so far.
    fields: usize,
}

/// Where the request line lies in the buffer.
#[derive(Clone, Copy, Debug)]
struct LineSpan {
    start: usize,
    /// End of the line without its CRLF or LF.
    end: usize,
    /// First byte after the line end: where the field lines start.
    next: usize,
}

/// The outcome of feeding the bytes received so far.
// The Request (with its fixed array of fields) is deliberately returned by
// value: boxing it would allocate once per request on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parse<'a> {
    /// A whole head: the request and the number of bytes it took (including
    /// empty lines before it and the final blank line).
    Complete(Request<'a>, usize),
    /// More bytes are needed.
    Partial,
}

const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// The size limits, a parameter so that tests can move them close to the
/// input and check how they interact.
#[derive(Clone, Copy, Debug)]
struct Limits {
    line: usize,
    head: usize,
    fields: usize,
}

const LIMITS: Limits = Limits {
    line: MAX_REQUEST_LINE,
    head: MAX_HEAD,
    fields: MAX_FIELDS,
};

fn bad(why: &'static str) -> HeadError {
    HeadError::BadRequest(why)
}

/// Parse the head at the start of `buf`.
///
/// `buf` must start at the same byte on every call for one head and may only
/// grow; `st` carries the scan position between calls. Errors are final: the
/// caller answers `err.status()` and closes (rule 19).
pub fn parse_head<'a>(buf: &'a [u8], st: &mut ParseState) -> Result<Parse<'a>, HeadError> {
    parse_with(buf, st, LIMITS)
}

fn parse_with<'a>(buf: &'a [u8], st: &mut ParseState, lim: Limits) -> Result<Parse<'a>, HeadError> {
    let out = match scan(buf, st, lim) {
        Ok(None) => return Ok(Parse::Partial),
        Ok(Some(end)) => parse_complete(buf, st, end).map(|req| Parse::Complete(req, end)),
        Err(e) => Err(e),
    };
    *st = ParseState::default();
    out
}

/// Finds the end of the head; `Ok(Some(len))` once the blank line is in
/// `buf`, `Ok(None)` if more bytes are needed.
///
/// Positions at or beyond `lim.head` are never searched: any byte there means
/// the head is over the limit (431), whether or not it is a LF.
fn scan(buf: &[u8], st: &mut ParseState, lim: Limits) -> Result<Option<usize>, HeadError> {
    // A caller that handed a shorter buffer than before broke the contract;
    // start over rather than trust positions that no longer exist.
    if st.scanned > buf.len() || st.line_start > st.scanned {
        *st = ParseState::default();
    }
    let region_end = buf.len().min(lim.head);
    loop {
        let pos = st.scanned;
        let lf = buf
            .get(pos..region_end)
            .and_then(|hay| memchr(LF, hay))
            .map(|i| pos + i);
        if st.request_line.is_none() && first_line_too_long(buf, st.line_start, lf, lim) {
            return Err(HeadError::UriTooLong);
        }
        let Some(p) = lf else {
            st.scanned = region_end.max(pos);
            check_early(buf, st)?;
            return if buf.len() > lim.head {
                Err(HeadError::HeaderTooLarge)
            } else {
                Ok(None)
            };
        };
        let start = st.line_start;
        st.scanned = p + 1;
        st.line_start = p + 1;
        // RFC 9112 §2.2: a bare LF ends a line as well as CRLF does.
        let end = if p > start && buf.get(p - 1) == Some(&CR) {
            p - 1
        } else {
            p
        };
        match st.request_line {
            // RFC 9112 §2.2: empty lines before the request line are skipped.
            None if end == start => {}
            None => {
                st.request_line = Some(LineSpan {
                    start,
                    end,
                    next: p + 1,
                })
            }
            Some(_) if end == start => return Ok(Some(p + 1)),
            Some(_) => {
                st.fields += 1;
                if st.fields > lim.fields {
                    check_early(buf, st)?;
                    return Err(HeadError::HeaderTooLarge);
                }
                // Rule 8: a field line ending in CR CR LF (or CR LF when the
                // LF alone ended it) holds a bare CR. Refused at its line end:
                // such a line looks blank to a peer that drops CRs, and
                // waiting for a real blank line would turn a 400 into a 408.
                // (A bare CR elsewhere in a line is found by `parse_complete`.)
                if end > start && buf.get(end - 1) == Some(&CR) {
                    check_early(buf, st)?;
                    return Err(bad("bare CR ending a field line"));
                }
            }
        }
    }
}

/// Whether the first non-empty line, starting at `start` and not yet ended
/// (its LF, if any, is `lf`), is over the limit at a position before both its
/// LF and the head limit (rule 14, RFC 9112 §3).
///
/// The line is too long once `lim.line + 1` bytes of it are buffered, except
/// that a CR in that last place may still be the start of its CRLF: then it
/// is the byte after the CR that decides (a LF ends a line of exactly
/// `lim.line` bytes). On a tie with the head limit, 414 wins.
fn first_line_too_long(buf: &[u8], start: usize, lf: Option<usize>, lim: Limits) -> bool {
    let mut t = start + lim.line;
    if buf.get(t) == Some(&CR) {
        t += 1;
    }
    match buf.get(t) {
        None | Some(&LF) => false,
        Some(_) => lf.is_none_or(|p| t < p) && t <= lim.head,
    }
}

/// Checks the request line as soon as it has ended if the head is not
/// complete yet, so that a garbage first line is refused at its line end
/// rather than after a blank line that may never come. (A head that arrives
/// whole is parsed once, by `parse_complete`, which checks the same line
/// first; so both orders give the same answer.)
fn check_early(buf: &[u8], st: &mut ParseState) -> Result<(), HeadError> {
    if let Some(span) = st.request_line
        && !st.request_checked
    {
        parse_request_line(buf.get(span.start..span.end).unwrap_or(&[]))?;
        st.request_checked = true;
    }
    Ok(())
}

/// `(before, after)` around the first `c`, which belongs to neither.
fn split_at_byte(s: &[u8], c: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr(c, s)?;
    let (before, rest) = s.split_at_checked(i)?;
    Some((before, rest.get(1..).unwrap_or(&[])))
}

/// The parts of a request line, borrowed from it.
#[derive(Debug)]
struct RequestLine<'a> {
    method: Method,
    method_raw: &'a [u8],
    target: &'a [u8],
    version: Version,
    path: &'a [u8],
    query: Option<&'a [u8]>,
    /// Host and port of an absolute-form target.
    authority: Option<(&'a [u8], Option<u16>)>,
}

/// RFC 9112 §3: `request-line = method SP request-target SP HTTP-version`,
/// with exactly one SP each (rule 11).
fn parse_request_line(line: &[u8]) -> Result<RequestLine<'_>, HeadError> {
    let (method_raw, rest) = split_at_byte(line, b' ').ok_or(bad("request line without SP"))?;
    if !is_token(method_raw) {
        return Err(bad("method is not a token"));
    }
    let (target, version) = split_at_byte(rest, b' ').ok_or(bad("request line without version"))?;
    let version = parse_version(version)?;
    if target.is_empty() {
        return Err(bad("empty request-target"));
    }
    let method = Method::from_bytes(method_raw);
    let (path, query, authority) = parse_target(method, target)?;
    Ok(RequestLine {
        method,
        method_raw,
        target,
        version,
        path,
        query,
        authority,
    })
}

/// RFC 9112 §2.3: `HTTP-version = "HTTP" "/" DIGIT "." DIGIT`, case-sensitive.
/// 1.x above 1.1 is served as 1.1; another major version is 505 (rule 13).
fn parse_version(v: &[u8]) -> Result<Version, HeadError> {
    match v {
        b"HTTP/1.0" => Ok(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major == b'1' {
                Ok(Version::Http11)
            } else {
                Err(HeadError::VersionNotSupported)
            }
        }
        _ => Err(bad("malformed HTTP version")),
    }
}

/// `path` and `query` of a target, and the authority of an absolute-form.
type Target<'a> = (&'a [u8], Option<&'a [u8]>, Option<(&'a [u8], Option<u16>)>);

/// RFC 9112 §3.2: origin-form, absolute-form (http/https only) and
/// asterisk-form (OPTIONS only). Authority-form is for CONNECT, which this
/// server does not proxy, so it is refused with the rest (rule 15).
fn parse_target(method: Method, t: &[u8]) -> Result<Target<'_>, HeadError> {
    check_target_bytes(t)?;
    if t.first() == Some(&b'/') {
        let (path, query) = split_query(t);
        return Ok((path, query, None));
    }
    if t == b"*" {
        // RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS.
        return if method == Method::Options {
            Ok((b"*", None, None))
        } else {
            Err(bad("'*' target without OPTIONS"))
        };
    }
    let rest = strip_prefix_ignore_case(t, b"http://")
        .or_else(|| strip_prefix_ignore_case(t, b"https://"))
        .ok_or(bad("target is neither origin- nor absolute-form"))?;
    let end = memchr2(b'/', b'?', rest).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at_checked(end).unwrap_or((rest, &[]));
    let (host, port) = parse_host(authority)?;
    // RFC 9110 §4.2.3: an empty path is "/".
    let (path, query) = match rest.first() {
        Some(b'/') => split_query(rest),
        Some(_) => (&b"/"[..], rest.get(1..)),
        None => (&b"/"[..], None),
    };
    Ok((path, query, Some((host, port))))
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let (head, rest) = s.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

/// Splits at the first `?`; the query excludes it (RFC 3986 §3.4).
fn split_query(t: &[u8]) -> (&[u8], Option<&[u8]>) {
    match split_at_byte(t, b'?') {
        Some((path, query)) => (path, Some(query)),
        None => (t, None),
    }
}

/// Rule 15: only VCHAR (no control bytes, spaces or raw non-ASCII), and every
/// `%` followed by two hex digits (RFC 3986 §2.1).
fn check_target_bytes(t: &[u8]) -> Result<(), HeadError> {
    let mut it = t.iter();
    while let Some(&b) = it.next() {
        if !is_target_byte(b) {
            return Err(bad("control, space or non-ASCII byte in target"));
        }
        if b == b'%'
            && !(it.next().is_some_and(|&h| is_hex(h)) && it.next().is_some_and(|&l| is_hex(l)))
        {
            return Err(bad("bad percent-escape in target"));
        }
    }
    Ok(())
}

/// A Host value or absolute-form authority (RFC 9110 §7.2, RFC 3986 §3.2.2):
/// `reg-name` or `[IP-literal]`, then an optional `:port` of 1-5 digits up to
/// 65535. No userinfo. Returns the name without port and without one
/// trailing dot (brackets kept for an IP-literal), as sent.
fn parse_host(v: &[u8]) -> Result<(&[u8], Option<u16>), HeadError> {
    let (name, after) = if v.first() == Some(&b'[') {
        let close = memchr(b']', v).ok_or(bad("unclosed IP-literal in host"))?;
        let (literal, after) = v
            .split_at_checked(close + 1)
            .ok_or(bad("unclosed IP-literal in host"))?;
        let inner = literal.get(1..close).unwrap_or(&[]);
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(bad("bad IP-literal in host"));
        }
        (literal, after)
    } else {
        let end = memchr(b':', v).unwrap_or(v.len());
        let (name, after) = v.split_at_checked(end).unwrap_or((v, &[]));
        check_reg_name(name)?;
        // A trailing dot names the same host (RFC 1034 §3.1).
        let name = name.strip_suffix(b".").unwrap_or(name);
        if name.is_empty() {
            return Err(bad("empty host"));
        }
        (name, after)
    };
    let port = match after {
        [] => None,
        [b':', digits @ ..] if (1..=5).contains(&digits.len()) => Some(
            parse_u64_digits(digits)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or(bad("bad port in host"))?,
        ),
        _ => return Err(bad("bad port in host")),
    };
    Ok((name, port))
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn check_reg_name(name: &[u8]) -> Result<(), HeadError> {
    let mut it = name.iter();
    while let Some(&b) = it.next() {
        let ok = if b == b'%' {
            it.next().is_some_and(|&h| is_hex(h)) && it.next().is_some_and(|&l| is_hex(l))
        } else {
            is_reg_name_byte(b)
        };
        if !ok {
            return Err(bad("bad byte in host"));
        }
    }
    Ok(())
}

/// The field lines of a complete head, each without its line end; ends at
/// the blank line.
struct FieldLines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for FieldLines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let i = memchr(LF, self.rest)?;
        let (line, tail) = self.rest.split_at_checked(i)?;
        self.rest = tail.get(1..).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.rest = &[];
            return None;
        }
        Some(line)
    }
}

/// RFC 9112 §5: `field-line = field-name ":" OWS field-value OWS`.
fn parse_field(line: &[u8]) -> Result<Header<'_>, HeadError> {
    // RFC 9112 §5.2: obs-fold is refused (rule 9). This also covers
    // whitespace right after the request line (RFC 9112 §2.2).
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(bad("obs-fold"));
    }
    let (name, value) = split_at_byte(line, b':').ok_or(bad("field line without colon"))?;
    if name.is_empty() {
        return Err(bad("empty field name"));
    }
    if !is_token(name) {
        // RFC 9112 §5.1: no whitespace between name and colon (rule 10).
        return Err(if matches!(name.last(), Some(b' ' | b'\t')) {
            bad("whitespace before colon")
        } else {
            bad("bad byte in field name")
        });
    }
    let value = trim_ows(value);
    // RFC 9110 §5.5: NUL, CR, LF and other controls are refused (rules 8, 10).
    if !value.iter().all(|&b| is_field_value_byte(b)) {
        return Err(bad("control byte in field value"));
    }
    Ok(Header { name, value })
}

/// Rule 4 (RFC 9110 §8.6): `1*DIGIT`, or a list of identical such values.
fn parse_content_length(v: &[u8]) -> Result<u64, HeadError> {
    let mut len = None;
    for el in list_elements(v) {
        let n = parse_u64_digits(el).ok_or(bad("Content-Length is not 1*DIGIT"))?;
        if len.is_some_and(|old| old != n) {
            return Err(bad("differing Content-Length values"));
        }
        len = Some(n);
    }
    len.ok_or(bad("empty Content-Length"))
}

/// Whether a well-formed Transfer-Encoding is exactly `chunked` (`true`) or
/// names another coding (`false`, 501). Rule 2 and RFC 9112 §6.1, §6.3.
fn transfer_coding_is_chunked(v: &[u8]) -> Result<bool, HeadError> {
    let mut chunked = false;
    let mut other = false;
    for el in list_elements(v) {
        if !is_token(el) {
            return Err(bad("empty or malformed transfer coding"));
        }
        if chunked {
            // RFC 9112 §6.3: chunked that is not the final coding of a
            // request leaves its length unknowable; chunked twice is
            // forbidden (RFC 9112 §6.1). Both are 400.
            return Err(bad("chunked is not the final transfer coding"));
        }
        if el.eq_ignore_ascii_case(b"chunked") {
            chunked = true;
        } else {
            other = true;
        }
    }
    Ok(chunked && !other)
}

/// Parses a complete head ending at `end`, whose request line is in `st`.
fn parse_complete<'a>(
    buf: &'a [u8],
    st: &ParseState,
    end: usize,
) -> Result<Request<'a>, HeadError> {
    let span = st.request_line.ok_or(bad("no request line"))?;
    let rl = parse_request_line(buf.get(span.start..span.end).unwrap_or(&[]))?;
    let mut req = Request {
        method: rl.method,
        method_raw: rl.method_raw,
        target: rl.target,
        path: rl.path,
        query: rl.query,
        version: rl.version,
        host: None,
        port: None,
        content_length: None,
        chunked: false,
        keep_alive: false,
        expect_continue: false,
        src: buf.get(..end).unwrap_or(buf),
        fields: ArrayVec::new(),
    };
    let mut host_field = None;
    let mut transfer_encoding = None;
    let (mut close, mut keep_alive) = (false, false);
    let lines = FieldLines {
        rest: buf.get(span.next..end).unwrap_or(&[]),
    };
    for line in lines {
        let h = parse_field(line)?;
        if !req.push_field(h) {
            return Err(HeadError::HeaderTooLarge);
        }
        let name = h.name;
        if name.eq_ignore_ascii_case(b"host") {
            // RFC 9112 §3.2: more than one Host line is 400 (rule 16).
            if host_field.is_some() {
                return Err(bad("two Host fields"));
            }
            host_field = Some(parse_host(h.value)?);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(h.value)?;
            if req.content_length.is_some_and(|old| old != n) {
                return Err(bad("differing Content-Length fields"));
            }
            req.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Two lines are refused rather than combined (rule 2): a proxy
            // in front might have read only one of them.
            if transfer_encoding.is_some() {
                return Err(bad("two Transfer-Encoding fields"));
            }
            transfer_encoding = Some(h.value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            // RFC 9110 §7.6.1: a list of case-insensitive options.
            for opt in list_elements(h.value) {
                close |= opt.eq_ignore_ascii_case(b"close");
                keep_alive |= opt.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            req.expect_continue |= h.value.eq_ignore_ascii_case(b"100-continue");
        }
    }

    // RFC 9112 §3.2: an HTTP/1.1 request must carry Host, even in
    // absolute-form (rule 16).
    if req.version == Version::Http11 && host_field.is_none() {
        return Err(bad("HTTP/1.1 request without Host"));
    }
    // RFC 9112 §3.2.2: the absolute-form authority wins over Host.
    if let Some((host, port)) = rl.authority.or(host_field) {
        req.host = Some(host);
        req.port = port;
    }

    let mut other_coding = false;
    if let Some(te) = transfer_encoding {
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing
        // (rule 3); together with Content-Length it is a smuggling attempt
        // (rule 1). Both are 400 before the coding itself is looked at.
        if req.version == Version::Http10 {
            return Err(bad("Transfer-Encoding in HTTP/1.0"));
        }
        if req.content_length.is_some() {
            return Err(bad("Transfer-Encoding with Content-Length"));
        }
        if transfer_coding_is_chunked(te)? {
            req.chunked = true;
        } else {
            other_coding = true;
        }
    }

    // Rule 17 (RFC 9112 §9.3).
    req.keep_alive = match req.version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive && !close,
    };
    // Rule 20: Expect is an HTTP/1.1 feature (RFC 9110 §10.1.1).
    req.expect_continue &= req.version == Version::Http11;

    // Last, so that every 400 above wins over it (rule 2).
    if other_coding {
        return Err(HeadError::NotImplemented);
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::xorshift;

    /// The fields of a parsed request a case checks.
    #[derive(Clone, Copy, Debug)]
    struct Exp {
        method: Method,
        path: &'static [u8],
        query: Option<&'static [u8]>,
        version: Version,
        host: Option<&'static [u8]>,
        port: Option<u16>,
        content_length: Option<u64>,
        chunked: bool,
        keep_alive: bool,
        expect_continue: bool,
        fields: usize,
    }

    /// `GET / HTTP/1.1` with `Host: h` and nothing else.
    const GET: Exp = Exp {
        method: Method::Get,
        path: b"/",
        query: None,
        version: Version::Http11,
        host: Some(b"h"),
        port: None,
        content_length: None,
        chunked: false,
        keep_alive: true,
        expect_continue: false,
        fields: 1,
    };

    /// HTTP/1.0 without fields.
    const GET10: Exp = Exp {
        version: Version::Http10,
        host: None,
        keep_alive: false,
        fields: 0,
        ..GET
    };

    #[derive(Debug)]
    enum Want {
        Ok(Exp),
        Status(u16),
    }
    use Want::{Ok as Req, Status};

    #[rustfmt::skip]
    const CASES: &[(&str, &[u8], Want)] = &[
        // Valid requests.
        ("basic", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", Req(GET)),
        ("rule 8 bare LF line ends", b"GET / HTTP/1.1\nHost: h\n\n", Req(GET)),
        ("rule 8 mixed line ends", b"GET / HTTP/1.1\r\nHost: h\n\r\n", Req(GET)),
        ("rule 11 empty lines before request line", b"\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", Req(GET)),
        ("path and query", b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n\r\n",
            Req(Exp { path: b"/a/b", query: Some(b"x=1&y=%20"), ..GET })),
        ("empty query", b"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", Req(Exp { path: b"/a", query: Some(b""), ..GET })),
        ("second ? is in the query", b"GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n",
            Req(Exp { path: b"/a", query: Some(b"b?c"), ..GET })),
        ("encoded path kept encoded", b"GET /%41%2f HTTP/1.1\r\nHost: h\r\n\r\n", Req(Exp { path: b"/%41%2f", ..GET })),
        ("target punctuation", b"GET /a-._~!$&'()*+,;=:@[]{}|^`\"<>\\# HTTP/1.1\r\nHost: h\r\n\r\n",
            Req(Exp { path: b"/a-._~!$&'()*+,;=:@[]{}|^`\"<>\\#", ..GET })),
        ("rule 17 HTTP/1.0 closes by default", b"GET / HTTP/1.0\r\n\r\n", Req(GET10)),
        ("rule 17 HTTP/1.0 keep-alive", b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            Req(Exp { keep_alive: true, fields: 1, ..GET10 })),
        ("rule 17 HTTP/1.0 keep-alive and close", b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
            Req(Exp { fields: 1, ..GET10 })),
        ("rule 17 HTTP/1.1 close", b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            Req(Exp { keep_alive: false, fields: 2, ..GET })),
        ("rule 17 close in a list", b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade ,\tCLOSE\r\n\r\n",
            Req(Exp { keep_alive: false, fields: 2, ..GET })),
        ("rule 17 close in a second field", b"GET / HTTP/1.1\r\nConnection: te\r\nHost: h\r\nconnection: close\r\n\r\n",
            Req(Exp { keep_alive: false, fields: 3, ..GET })),
        ("rule 17 other options keep HTTP/1.1 open", b"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n",
            Req(Exp { fields: 2, ..GET })),
        ("rule 13 HTTP/1.2 is served as 1.1", b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", Req(GET)),
        ("rule 13 HTTP/1.9 is served as 1.1", b"GET / HTTP/1.9\r\nHost: h\r\n\r\n", Req(GET)),
        ("rule 12 unknown method is Other", b"FOO / HTTP/1.1\r\nHost: h\r\n\r\n", Req(Exp { method: Method::Other, ..GET })),
        ("rule 12 methods are case-sensitive", b"get / HTTP/1.1\r\nHost: h\r\n\r\n", Req(Exp { method: Method::Other, ..GET })),
        ("rule 12 token method", b"M-SEARCH! / HTTP/1.1\r\nHost: h\r\n\r\n", Req(Exp { method: Method::Other, ..GET })),
        ("HEAD", b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", Req(Exp { method: Method::Head, ..GET })),
        ("DELETE", b"DELETE /f HTTP/1.1\r\nHost: h\r\n\r\n", Req(Exp { method: Method::Delete, path: b"/f", ..GET })),
        ("rule 16 host with port", b"GET / HTTP/1.1\r\nHost: h:8080\r\n\r\n", Req(Exp { port: Some(8080), ..GET })),
        ("rule 16 trailing dot removed", b"GET / HTTP/1.1\r\nHost: h.\r\n\r\n", Req(GET)),
        ("rule 16 case kept, dot and port removed", b"GET / HTTP/1.1\r\nHost: Ex.COM.:80\r\n\r\n",
            Req(Exp { host: Some(b"Ex.COM"), port: Some(80), ..GET })),
        ("rule 16 IPv6 literal", b"GET / HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
            Req(Exp { host: Some(b"[::1]"), port: Some(443), ..GET })),
        ("rule 16 IPv6 mapped", b"GET / HTTP/1.1\r\nHost: [::ffff:1.2.3.4]\r\n\r\n",
            Req(Exp { host: Some(b"[::ffff:1.2.3.4]"), ..GET })),
        ("rule 16 IPv4", b"GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
            Req(Exp { host: Some(b"127.0.0.1"), port: Some(1), ..GET })),
        ("rule 16 port 65535", b"GET / HTTP/1.1\r\nHost: h:65535\r\n\r\n", Req(Exp { port: Some(65535), ..GET })),
        ("rule 16 port 00080", b"GET / HTTP/1.1\r\nHost: h:00080\r\n\r\n", Req(Exp { port: Some(80), ..GET })),
        ("rule 16 pct-encoded and sub-delims", b"GET / HTTP/1.1\r\nHost: a%41!$&'()*+,;=~_-b\r\n\r\n",
            Req(Exp { host: Some(b"a%41!$&'()*+,;=~_-b"), ..GET })),
        ("rule 16 HTTP/1.0 with Host", b"GET / HTTP/1.0\r\nHost: h:1\r\n\r\n",
            Req(Exp { host: Some(b"h"), port: Some(1), fields: 1, ..GET10 })),
        ("rule 15 absolute-form wins over Host", b"GET http://a.example:81/p?q HTTP/1.1\r\nHost: h:9\r\n\r\n",
            Req(Exp { host: Some(b"a.example"), port: Some(81), path: b"/p", query: Some(b"q"), ..GET })),
        ("rule 15 absolute-form https, any case", b"GET HTTPS://A./x HTTP/1.1\r\nHost: h\r\n\r\n",
            Req(Exp { host: Some(b"A"), path: b"/x", ..GET })),
        ("rule 15 absolute-form empty path", b"GET http://a HTTP/1.1\r\nHost: h\r\n\r\n",
            Req(Exp { host: Some(b"a"), ..GET })),
        ("rule 15 absolute-form query without path", b"GET http://a?x HTTP/1.1\r\nHost: h\r\n\r\n",
            Req(Exp { host: Some(b"a"), query: Some(b"x"), ..GET })),
        ("rule 15 absolute-form in HTTP/1.0", b"GET http://a/ HTTP/1.0\r\n\r\n", Req(Exp { host: Some(b"a"), ..GET10 })),
        ("rule 15 OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", Req(Exp { method: Method::Options, path: b"*", ..GET })),
        ("rule 4 content-length", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
            Req(Exp { method: Method::Post, content_length: Some(5), fields: 2, ..GET })),
        ("rule 4 content-length 0", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            Req(Exp { method: Method::Post, content_length: Some(0), fields: 2, ..GET })),
        ("rule 4 content-length u64::MAX", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n",
            Req(Exp { method: Method::Post, content_length: Some(u64::MAX), fields: 2, ..GET })),
        ("rule 4 identical list", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 ,5\r\n\r\n",
            Req(Exp { method: Method::Post, content_length: Some(5), fields: 2, ..GET })),
        ("rule 4 identical repeats", b"POST / HTTP/1.1\r\nContent-Length: 5\r\nHost: h\r\ncontent-length: 05\r\n\r\n",
            Req(Exp { method: Method::Post, content_length: Some(5), fields: 3, ..GET })),
        ("rule 2 chunked", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            Req(Exp { method: Method::Post, chunked: true, fields: 2, ..GET })),
        ("rule 2 chunked any case", b"POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding:\tChUnKeD \r\n\r\n",
            Req(Exp { method: Method::Post, chunked: true, fields: 2, ..GET })),
        ("rule 20 expect 100-continue", b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
            Req(Exp { method: Method::Put, path: b"/f", expect_continue: true, content_length: Some(1), fields: 3, ..GET })),
        ("rule 20 expect ignored in HTTP/1.0", b"PUT /f HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
            Req(Exp { method: Method::Put, path: b"/f", fields: 1, ..GET10 })),
        ("rule 20 other expectations are not 100-continue", b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue2\r\n\r\n",
            Req(Exp { fields: 2, ..GET })),
        ("OWS trimmed", b"GET / HTTP/1.1\r\nHost: \t h \t\r\n\r\n", Req(GET)),
        ("no OWS", b"GET / HTTP/1.1\r\nHost:h\r\n\r\n", Req(GET)),
        ("obs-text and inner spaces in values", b"GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9 \t x\r\nX-B:\r\n\r\n",
            Req(Exp { fields: 3, ..GET })),
        ("token punctuation in names", b"GET / HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^_`|~09aZ: v\r\n\r\n",
            Req(Exp { fields: 2, ..GET })),

        // Rule 8: bare CR.
        ("rule 8 bare CR in request line", b"GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 8 bare CR before request line", b"\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 8 CR CR LF before request line", b"\r\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 8 bare CR in value", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", Status(400)),
        ("rule 8 bare CR ending a value", b"GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", Status(400)),
        ("rule 8 bare CR in name", b"GET / HTTP/1.1\r\nHost: h\r\nX\r: a\r\n\r\n", Status(400)),
        ("rule 8 CR CR LF as blank line", b"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n\r\n", Status(400)),
        // ... refused at that line's end, without waiting for a blank line.
        ("rule 8 CR CR LF line, nothing after", b"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", Status(400)),
        ("rule 8 CR CR LF value end, nothing after", b"GET / HTTP/1.1\r\nHost: h\r\r\n", Status(400)),
        ("rule 8 CR CR LF with a bad version still 505", b"GET / HTTP/2.0\r\nHost: h\r\r\n", Status(505)),
        // Rule 9: obs-fold.
        ("rule 9 obs-fold SP", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", Status(400)),
        ("rule 9 obs-fold HTAB", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", Status(400)),
        ("rule 9 whitespace after request line", b"GET / HTTP/1.1\r\n Host: h\r\n\r\n", Status(400)),
        // Rule 10: names and values.
        ("rule 10 SP before colon", b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", Status(400)),
        ("rule 10 HTAB before colon", b"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", Status(400)),
        ("rule 10 empty name", b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", Status(400)),
        ("rule 10 non-token name", b"GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n", Status(400)),
        ("rule 10 NUL in name", b"GET / HTTP/1.1\r\nHost: h\r\nX\0: v\r\n\r\n", Status(400)),
        ("rule 10 non-ASCII name", b"GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: v\r\n\r\n", Status(400)),
        ("rule 10 no colon", b"GET / HTTP/1.1\r\nHost: h\r\nX v\r\n\r\n", Status(400)),
        ("rule 10 NUL in value", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", Status(400)),
        ("rule 10 DEL in value", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", Status(400)),
        ("rule 10 control in value", b"GET / HTTP/1.1\r\nHost: h\r\nX: \x01\r\n\r\n", Status(400)),
        // Rule 11: request line shape.
        ("rule 11 double SP", b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 SP before version", b"GET /  HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 leading SP", b" GET / HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 trailing SP", b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 HTAB separator", b"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 HTAB before version", b"GET /\tHTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 no version", b"GET /\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 no target", b"GET HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 three SP", b"GET / x HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 non-token method", b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 non-token method bracket", b"GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 11 non-ASCII method", b"G\xc3\x89T / HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        // Rule 13: versions.
        ("rule 13 lowercase", b"GET / http/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 13 HTTP/1.11", b"GET / HTTP/1.11\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 13 HTTP/1", b"GET / HTTP/1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 13 HTTP/1.x", b"GET / HTTP/1.x\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 13 HTTP/01.1", b"GET / HTTP/01.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 13 HTTP/2.0", b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", Status(505)),
        ("rule 13 HTTP/0.9", b"GET / HTTP/0.9\r\nHost: h\r\n\r\n", Status(505)),
        ("rule 13 HTTP/3.1", b"GET / HTTP/3.1\r\n\r\n", Status(505)),
        // Rule 15: targets.
        ("rule 15 control byte", b"GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 DEL", b"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 raw non-ASCII", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 bad escape", b"GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 short escape", b"GET /a%4 HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 bare percent", b"GET /a% HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 bad escape in query", b"GET /a?%g0 HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 * with GET", b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 *x with OPTIONS", b"OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 authority-form", b"CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 relative", b"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 other scheme", b"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 scheme without //", b"GET http:h/ HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 userinfo", b"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 empty authority", b"GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 15 bad authority port", b"GET http://h:x/ HTTP/1.1\r\nHost: h\r\n\r\n", Status(400)),
        // Rule 16: Host.
        ("rule 16 HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n", Status(400)),
        ("rule 16 absolute-form still needs Host", b"GET http://a/ HTTP/1.1\r\n\r\n", Status(400)),
        ("rule 16 two Host fields", b"GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", Status(400)),
        ("rule 16 two Host fields in HTTP/1.0", b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", Status(400)),
        ("rule 16 invalid Host with absolute-form", b"GET http://a/ HTTP/1.1\r\nHost: u@h\r\n\r\n", Status(400)),
        ("rule 16 empty Host", b"GET / HTTP/1.1\r\nHost: \r\n\r\n", Status(400)),
        ("rule 16 userinfo", b"GET / HTTP/1.1\r\nHost: user@h\r\n\r\n", Status(400)),
        ("rule 16 slash", b"GET / HTTP/1.1\r\nHost: h/x\r\n\r\n", Status(400)),
        ("rule 16 empty port", b"GET / HTTP/1.1\r\nHost: h:\r\n\r\n", Status(400)),
        ("rule 16 port over 65535", b"GET / HTTP/1.1\r\nHost: h:65536\r\n\r\n", Status(400)),
        ("rule 16 six-digit port", b"GET / HTTP/1.1\r\nHost: h:000080\r\n\r\n", Status(400)),
        ("rule 16 signed port", b"GET / HTTP/1.1\r\nHost: h:+80\r\n\r\n", Status(400)),
        ("rule 16 two ports", b"GET / HTTP/1.1\r\nHost: h:80:80\r\n\r\n", Status(400)),
        ("rule 16 port only", b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", Status(400)),
        ("rule 16 only a dot", b"GET / HTTP/1.1\r\nHost: .\r\n\r\n", Status(400)),
        ("rule 16 space inside", b"GET / HTTP/1.1\r\nHost: h h\r\n\r\n", Status(400)),
        ("rule 16 bad escape", b"GET / HTTP/1.1\r\nHost: h%zz\r\n\r\n", Status(400)),
        ("rule 16 unclosed literal", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", Status(400)),
        ("rule 16 empty literal", b"GET / HTTP/1.1\r\nHost: []\r\n\r\n", Status(400)),
        ("rule 16 bad literal", b"GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", Status(400)),
        ("rule 16 junk after literal", b"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", Status(400)),
        // Rules 1-3: Transfer-Encoding.
        ("rule 1 TE with CL", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", Status(400)),
        ("rule 1 CL then TE", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Status(400)),
        ("rule 1 unknown TE with CL is 400", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n", Status(400)),
        ("rule 2 gzip", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", Status(501)),
        ("rule 2 identity", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", Status(501)),
        ("rule 2 gzip, chunked", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Status(501)),
        ("rule 2 chunkedx", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunkedx\r\n\r\n", Status(501)),
        ("rule 2 chunked, chunked", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Status(400)),
        ("rule 2 chunked not last", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Status(400)),
        ("rule 2 leading comma", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n", Status(400)),
        ("rule 2 trailing comma", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n", Status(400)),
        ("rule 2 empty value", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", Status(400)),
        ("rule 2 parameter", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", Status(400)),
        ("rule 2 two TE lines", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Status(400)),
        ("rule 2 two TE lines, other coding", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", Status(400)),
        ("rule 3 TE in HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Status(400)),
        ("rule 3 unknown TE in HTTP/1.0 is 400", b"POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", Status(400)),
        ("rule 2 a 400 elsewhere wins over 501", b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", Status(400)),
        // Rule 4: Content-Length.
        ("rule 4 plus", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", Status(400)),
        ("rule 4 minus", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", Status(400)),
        ("rule 4 hex", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", Status(400)),
        ("rule 4 inner space", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\n", Status(400)),
        ("rule 4 empty", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", Status(400)),
        ("rule 4 overflow", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", Status(400)),
        ("rule 4 differing list", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", Status(400)),
        ("rule 4 differing fields", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", Status(400)),
        ("rule 4 empty list element", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n", Status(400)),
    ];

    fn show(r: &Result<Parse<'_>, HeadError>) -> String {
        format!("{r:?}")
    }

    fn whole(input: &[u8]) -> String {
        show(&parse_head(input, &mut ParseState::default()))
    }

    /// Feeds `input` through a growing buffer, `step` more bytes per call,
    /// keeping one `ParseState`; the first non-`Partial` answer, or `Partial`.
    fn stepped(input: &[u8], step: usize, lim: Limits) -> String {
        let mut st = ParseState::default();
        let mut n = 0;
        loop {
            let r = parse_with(&input[..n], &mut st, lim);
            if !matches!(r, Ok(Parse::Partial)) || n == input.len() {
                return show(&r);
            }
            n = (n + step).min(input.len());
        }
    }

    fn check(name: &str, r: Result<Parse<'_>, HeadError>, len: usize, want: &Want) {
        match (r, want) {
            (Err(e), Status(code)) => assert_eq!(e.status(), *code, "{name}: {e:?}"),
            (Ok(Parse::Complete(req, used)), Req(w)) => {
                assert_eq!(used, len, "{name}: consumed");
                assert_eq!(req.method, w.method, "{name}: method");
                assert_eq!(req.path, w.path, "{name}: path");
                assert_eq!(req.query, w.query, "{name}: query");
                assert_eq!(req.version, w.version, "{name}: version");
                assert_eq!(req.host, w.host, "{name}: host");
                assert_eq!(req.port, w.port, "{name}: port");
                assert_eq!(
                    req.content_length, w.content_length,
                    "{name}: content_length"
                );
                assert_eq!(req.chunked, w.chunked, "{name}: chunked");
                assert_eq!(req.keep_alive, w.keep_alive, "{name}: keep_alive");
                assert_eq!(req.expect_continue, w.expect_continue, "{name}: expect");
                assert_eq!(req.headers().len(), w.fields, "{name}: fields");
            }
            (r, want) => panic!("{name}: got {r:?}, want {want:?}"),
        }
    }

    #[test]
    fn table() {
        for (name, input, want) in CASES {
            let r = parse_head(input, &mut ParseState::default());
            check(name, r, input.len(), want);
        }
    }

    #[test]
    fn every_proper_prefix_of_a_valid_request_is_partial() {
        for (name, input, want) in CASES {
            if let Req(_) = want {
                for n in 0..input.len() {
                    let r = parse_head(&input[..n], &mut ParseState::default());
                    assert!(matches!(r, Ok(Parse::Partial)), "{name}: prefix {n}: {r:?}");
                }
            }
        }
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        for (name, input, _) in CASES {
            let w = whole(input);
            for step in [1, 2, 3, 7] {
                assert_eq!(stepped(input, step, LIMITS), w, "{name}: step {step}");
            }
        }
    }

    #[test]
    fn request_line_as_received() {
        let cases: &[(&str, &[u8], &[u8])] = &[
            (
                "plain",
                b"GET /p?q HTTP/1.1\r\nHost: h\r\n\r\n",
                b"GET /p?q HTTP/1.1",
            ),
            (
                "leading empty lines",
                b"\r\n\nHEAD / HTTP/1.0\r\n\r\n",
                b"HEAD / HTTP/1.0",
            ),
            (
                "bare LF",
                b"GET /x HTTP/1.1\nHost: h\n\n",
                b"GET /x HTTP/1.1",
            ),
            (
                "absolute form",
                b"GET http://h/a%20b HTTP/1.1\r\nHost: h\r\n\r\n",
                b"GET http://h/a%20b HTTP/1.1",
            ),
        ];
        for &(name, input, want) in cases {
            let Ok(Parse::Complete(req, _)) = parse_head(input, &mut ParseState::default()) else {
                panic!("{name}: does not parse")
            };
            assert_eq!(req.request_line(), want, "{name}");
        }
    }

    #[test]
    fn borrowed_slices_and_header_lookup() {
        let input = b"GET /p?q HTTP/1.1\r\nHost: h\r\nX-Long:  a  b \r\nx-long: second\r\n\r\n";
        let Ok(Parse::Complete(req, _)) = parse_head(input, &mut ParseState::default()) else {
            panic!()
        };
        assert_eq!(req.method_raw, b"GET");
        assert_eq!(req.target, b"/p?q");
        assert_eq!(req.header("x-LONG"), Some(&b"a  b"[..]));
        assert_eq!(req.header("missing"), None);
        assert_eq!(
            req.headers().nth(2).unwrap(),
            Header {
                name: b"x-long",
                value: b"second"
            }
        );
        // Slices point into the input, not into copies.
        let range = input.as_ptr_range();
        assert!(range.contains(&req.path.as_ptr()));
        assert!(range.contains(&req.host.unwrap().as_ptr()));
    }

    #[test]
    fn absolute_form_target_is_kept_as_sent() {
        let input = b"GET http://a/b?c HTTP/1.1\r\nHost: h\r\n\r\n";
        let Ok(Parse::Complete(req, _)) = parse_head(input, &mut ParseState::default()) else {
            panic!()
        };
        assert_eq!(req.target, b"http://a/b?c");
        assert_eq!(req.path, b"/b");
        let input = b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
        let Ok(Parse::Complete(req, _)) = parse_head(input, &mut ParseState::default()) else {
            panic!()
        };
        assert_eq!(
            (req.target, req.path, req.query),
            (&b"*"[..], &b"*"[..], None)
        );
    }

    #[test]
    fn rule_18_pipelined_requests_come_out_one_at_a_time() {
        let input = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.0\n\n";
        let mut st = ParseState::default();
        let Ok(Parse::Complete(a, n1)) = parse_head(input, &mut st) else {
            panic!()
        };
        assert_eq!((a.path, n1), (&b"/a"[..], 28));
        assert_eq!(st.scanned, 0, "state is reset after Complete");
        let rest = &input[n1..];
        let Ok(Parse::Complete(b, n2)) = parse_head(rest, &mut st) else {
            panic!()
        };
        assert_eq!(b.path, b"/b");
        assert_eq!(&rest[n2..n2 + 2], b"hi");
        let rest = &rest[n2 + 2..];
        let Ok(Parse::Complete(c, n3)) = parse_head(rest, &mut st) else {
            panic!()
        };
        assert_eq!(
            (c.path, c.version, n3),
            (&b"/c"[..], Version::Http10, rest.len())
        );
        // The same buffer fed again parses the same way.
        let Ok(Parse::Complete(_, again)) = parse_head(input, &mut st) else {
            panic!()
        };
        assert_eq!(again, n1);
    }

    #[test]
    fn a_garbage_first_line_is_refused_at_its_line_end() {
        let mut st = ParseState::default();
        let r = parse_head(b"\x16\x03\x01 hello\r\n", &mut st);
        assert_eq!(r.unwrap_err().status(), 400);
        let r = parse_head(b"GET / HTTP/2.0\r\nHost: h\r\n", &mut ParseState::default());
        assert_eq!(r.unwrap_err().status(), 505);
        // A valid request line with a partial field section waits.
        let r = parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n", &mut ParseState::default());
        assert!(matches!(r, Ok(Parse::Partial)));
    }

    #[test]
    fn a_shorter_buffer_than_last_time_does_not_panic() {
        let mut st = ParseState::default();
        let input = b"GET / HTTP/1.1\r\nHost: h\r\n";
        assert!(matches!(parse_head(input, &mut st), Ok(Parse::Partial)));
        assert!(matches!(
            parse_head(&input[..3], &mut st),
            Ok(Parse::Partial)
        ));
        let full = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(matches!(parse_head(full, &mut st), Ok(Parse::Complete(..))));
    }

    /// `GET /aaa... HTTP/1.1` whose request line is `len` bytes long.
    fn request_line_of(len: usize) -> Vec<u8> {
        let fixed = "GET / HTTP/1.1".len();
        let mut v = b"GET /".to_vec();
        v.resize(len - fixed + 5, b'a');
        v.extend_from_slice(b" HTTP/1.1");
        assert_eq!(v.len(), len);
        v
    }

    #[test]
    fn rule_14_request_line_limit() {
        // Exactly at the limit: served.
        let mut ok = request_line_of(MAX_REQUEST_LINE);
        ok.extend_from_slice(b"\r\nHost: h\r\n\r\n");
        assert!(matches!(
            parse_head(&ok, &mut ParseState::default()),
            Ok(Parse::Complete(..))
        ));
        // One over: 414, with CRLF or bare LF.
        for end in [&b"\r\nHost: h\r\n\r\n"[..], b"\nHost: h\n\n"] {
            let mut long = request_line_of(MAX_REQUEST_LINE + 1);
            long.extend_from_slice(end);
            let r = parse_head(&long, &mut ParseState::default());
            assert_eq!(r.unwrap_err(), HeadError::UriTooLong);
            assert_eq!(stepped(&long, 1, LIMITS), whole(&long));
        }
        // Detected while partial: no LF yet, limit + 1 bytes buffered.
        let line = request_line_of(MAX_REQUEST_LINE + 1);
        let mut st = ParseState::default();
        assert!(matches!(
            parse_head(&line[..MAX_REQUEST_LINE], &mut st),
            Ok(Parse::Partial)
        ));
        assert_eq!(
            parse_head(&line, &mut st).unwrap_err(),
            HeadError::UriTooLong
        );
        // A CR right after a full-length line may still be its CRLF.
        let mut cr = request_line_of(MAX_REQUEST_LINE);
        cr.push(b'\r');
        assert!(matches!(
            parse_head(&cr, &mut ParseState::default()),
            Ok(Parse::Partial)
        ));
        cr.push(b'x');
        assert_eq!(
            parse_head(&cr, &mut ParseState::default()).unwrap_err(),
            HeadError::UriTooLong
        );
        // Empty lines before the request line do not count towards it...
        let mut lead = b"\r\n\r\n".to_vec();
        lead.extend_from_slice(&ok);
        assert!(matches!(
            parse_head(&lead, &mut ParseState::default()),
            Ok(Parse::Complete(..))
        ));
        // ...and a long first line without any LF is 414 long before 431.
        let junk = vec![b'a'; MAX_REQUEST_LINE + 1];
        assert_eq!(
            parse_head(&junk, &mut ParseState::default()).unwrap_err(),
            HeadError::UriTooLong
        );
    }

    /// A head of exactly `len` bytes with `Host` and one padding field.
    fn head_of(len: usize) -> Vec<u8> {
        let mut v = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
        let pad = len - v.len() - 4;
        v.resize(v.len() + pad, b'x');
        v.extend_from_slice(b"\r\n\r\n");
        assert_eq!(v.len(), len);
        v
    }

    #[test]
    fn rule_14_head_limit() {
        let ok = head_of(MAX_HEAD);
        let r = parse_head(&ok, &mut ParseState::default());
        assert!(matches!(r, Ok(Parse::Complete(_, n)) if n == MAX_HEAD));
        let big = head_of(MAX_HEAD + 1);
        assert_eq!(
            parse_head(&big, &mut ParseState::default()).unwrap_err(),
            HeadError::HeaderTooLarge
        );
        assert_eq!(stepped(&big, 1, LIMITS), whole(&big));
        // Detected while partial: MAX_HEAD + 1 bytes and still no blank line.
        let mut st = ParseState::default();
        assert!(matches!(
            parse_head(&big[..MAX_HEAD], &mut st),
            Ok(Parse::Partial)
        ));
        assert_eq!(
            parse_head(&big[..MAX_HEAD + 1], &mut st).unwrap_err(),
            HeadError::HeaderTooLarge
        );
        // Empty lines before the request line count towards the head.
        let mut lead = b"\r\n".to_vec();
        lead.extend_from_slice(&head_of(MAX_HEAD - 2));
        assert!(matches!(
            parse_head(&lead, &mut ParseState::default()),
            Ok(Parse::Complete(..))
        ));
        let mut lead = b"\r\n".to_vec();
        lead.extend_from_slice(&head_of(MAX_HEAD));
        assert_eq!(
            parse_head(&lead, &mut ParseState::default()).unwrap_err(),
            HeadError::HeaderTooLarge
        );
        // An endless stream of empty lines is 431 too.
        let blank = b"\r\n".repeat(MAX_HEAD);
        assert_eq!(
            parse_head(&blank, &mut ParseState::default()).unwrap_err(),
            HeadError::HeaderTooLarge
        );
    }

    #[test]
    fn rule_14_field_count_limit() {
        let with_fields = |n: usize| {
            let mut v = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
            for i in 1..n {
                v.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
            }
            v.extend_from_slice(b"\r\n");
            v
        };
        let ok = with_fields(MAX_FIELDS);
        let Ok(Parse::Complete(req, _)) = parse_head(&ok, &mut ParseState::default()) else {
            panic!()
        };
        assert_eq!(req.headers().len(), MAX_FIELDS);
        let over = with_fields(MAX_FIELDS + 1);
        assert_eq!(
            parse_head(&over, &mut ParseState::default()).unwrap_err(),
            HeadError::HeaderTooLarge
        );
        assert_eq!(stepped(&over, 1, LIMITS), whole(&over));
        // Detected at the line end of field 101, before the blank line.
        let partial = &over[..over.len() - 2];
        assert_eq!(
            parse_head(partial, &mut ParseState::default()).unwrap_err(),
            HeadError::HeaderTooLarge
        );
    }

    #[test]
    fn error_statuses() {
        assert_eq!(HeadError::BadRequest("x").status(), 400);
        assert_eq!(HeadError::UriTooLong.status(), 414);
        assert_eq!(HeadError::HeaderTooLarge.status(), 431);
        assert_eq!(HeadError::NotImplemented.status(), 501);
        assert_eq!(HeadError::VersionNotSupported.status(), 505);
    }

    fn pick<T: Copy>(s: &mut u64, from: &[T]) -> T {
        from[(xorshift(s) as usize) % from.len()]
    }

    /// A random input: a mutated valid request, a request assembled from
    /// plausible parts, pieces of HTTP glued together, or random bytes.
    fn random_input(s: &mut u64) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"GET",
            b"OPTIONS",
            b" ",
            b"  ",
            b"\t",
            b"/",
            b"*",
            b"%2",
            b"%41",
            b"?",
            b"http://",
            b"h",
            b"[::1]",
            b":80",
            b"@",
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"HTTP/2.0",
            b"\r\n",
            b"\n",
            b"\r",
            b"\r\n\r\n",
            b"Host: ",
            b"Host:h",
            b"Content-Length: ",
            b"Transfer-Encoding: ",
            b"chunked",
            b"gzip",
            b",",
            b"5",
            b"Connection: close",
            b"Expect: 100-continue",
            b"\0",
            b"\xff",
            b":",
            b"X",
            b" :",
            b"\x7f",
        ];
        const LINES: &[&[u8]] = &[
            b"GET / HTTP/1.1",
            b"GET /a?b HTTP/1.0",
            b"OPTIONS * HTTP/1.1",
            b"POST http://a:1/x HTTP/1.1",
            b"PUT /%41 HTTP/1.2",
            b"FOO / HTTP/1.1",
            b"GET / HTTP/2.0",
            b"GET  / HTTP/1.1",
        ];
        const FIELDS: &[&[u8]] = &[
            b"Host: h",
            b"Host: h:80",
            b"host: [::1]",
            b"Host: u@h",
            b"Content-Length: 5",
            b"Content-Length: 5, 5",
            b"Content-Length: 6",
            b"Content-Length: +1",
            b"Transfer-Encoding: chunked",
            b"Transfer-Encoding: gzip",
            b"Transfer-Encoding: chunked, chunked",
            b"Connection: close",
            b"Connection: keep-alive",
            b"Expect: 100-continue",
            b"X: a\rb",
            b" folded",
            b"X : y",
            b"X-Y:  z ",
            b"\xffX: v",
        ];
        const ENDS: &[&[u8]] = &[b"\r\n", b"\r\n", b"\n", b"\r"];
        let mut v = Vec::new();
        match xorshift(s) % 6 {
            0 | 1 => {
                v.extend_from_slice(CASES[(xorshift(s) as usize) % CASES.len()].1);
                for _ in 0..=(xorshift(s) % 3) {
                    let at = (xorshift(s) as usize) % (v.len() + 1);
                    match xorshift(s) % 8 {
                        0 | 1 if at < v.len() => v[at] = (xorshift(s) % 256) as u8,
                        2 | 3 if at < v.len() => {
                            v.remove(at);
                        }
                        4 => v.truncate(at),
                        _ => {
                            v.splice(at..at, pick(s, PIECES).iter().copied());
                        }
                    }
                }
            }
            2 | 3 => {
                for _ in 0..(xorshift(s) % 3) {
                    v.extend_from_slice(pick(s, ENDS));
                }
                v.extend_from_slice(pick(s, LINES));
                v.extend_from_slice(pick(s, ENDS));
                for _ in 0..(xorshift(s) % 6) {
                    v.extend_from_slice(pick(s, FIELDS));
                    v.extend_from_slice(pick(s, ENDS));
                }
                v.extend_from_slice(pick(s, ENDS));
                if xorshift(s).is_multiple_of(4) {
                    v.extend_from_slice(b"GET / HTTP/1.1\r\n");
                }
            }
            4 => {
                for _ in 0..(xorshift(s) % 24) {
                    v.extend_from_slice(pick(s, PIECES));
                }
            }
            _ => {
                for _ in 0..(xorshift(s) % 64) {
                    v.push(match xorshift(s) % 4 {
                        0 => b'\n',
                        1 => b'\r',
                        _ => (xorshift(s) % 256) as u8,
                    });
                }
            }
        }
        v
    }

    #[test]
    fn fuzz_whole_equals_stepped() {
        let mut s = 0xDEAD_BEEF_CAFE_F00D;
        for _ in 0..4000 {
            let input = random_input(&mut s);
            let w = whole(&input);
            assert_eq!(
                stepped(&input, 1, LIMITS),
                w,
                "{:?}",
                String::from_utf8_lossy(&input)
            );
            let step = 1 + (xorshift(&mut s) % 9) as usize;
            assert_eq!(
                stepped(&input, step, LIMITS),
                w,
                "{:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    /// With limits close to the input sizes, the order in which 414, 431 and
    /// the line-level checks fire must still not depend on how the bytes
    /// arrive.
    #[test]
    fn fuzz_small_limits_whole_equals_stepped() {
        let mut s = 0x0123_4567_89AB_CDEF;
        for i in 0..4000 {
            let lim = Limits {
                line: 2 + (xorshift(&mut s) % 30) as usize,
                head: 2 + (xorshift(&mut s) % 80) as usize,
                fields: (xorshift(&mut s) % 4) as usize,
            };
            let mut input = random_input(&mut s);
            if i % 2 == 0 {
                // Leading empty lines and long lines near the limits.
                let mut lead = b"\r\n".repeat((xorshift(&mut s) % 4) as usize);
                lead.append(&mut input);
                input = lead;
            }
            let w = stepped(&input, input.len().max(1), lim);
            assert_eq!(
                stepped(&input, 1, lim),
                w,
                "{lim:?} {:?}",
                String::from_utf8_lossy(&input)
            );
            // Monotone: once a prefix gets an answer, a longer buffer gets
            // the same one.
            if !w.contains("Partial") {
                let mut more = input.clone();
                more.extend_from_slice(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
                assert_eq!(
                    stepped(&more, more.len(), lim),
                    w,
                    "{lim:?} {:?}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }
}
