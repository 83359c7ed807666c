//! The request head parser: pure, incremental, zero-copy.
//! (Interface fixed; the implementation is to be written.)

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
    /// The path part of the target, still percent-encoded (`/` for `*` and
    /// for an absolute-form target without a path).
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
    /// Every field line, in order.
    pub headers: arrayvec::ArrayVec<Header<'a>, MAX_FIELDS>,
}

impl<'a> Request<'a> {
    /// The first field with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value)
    }
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
#[derive(Clone, Copy, Debug, Default)]
pub struct ParseState {
    /// Bytes already scanned without finding the end of the head.
    pub scanned: usize,
}

/// The outcome of feeding the bytes received so far.
#[derive(Debug)]
pub enum Parse<'a> {
    /// A whole head: the request and the number of bytes it took (including
    /// empty lines before it and the final blank line).
    Complete(Request<'a>, usize),
    /// More bytes are needed.
    Partial,
}

/// Parse the head at the start of `buf`.
pub fn parse_head<'a>(buf: &'a [u8], st: &mut ParseState) -> Result<Parse<'a>, HeadError> {
    let _ = (buf, st);
    Ok(Parse::Partial)
}
