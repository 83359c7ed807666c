//! Pure HTTP/1.1 protocol code over `&[u8]`: the request head parser, the
//! chunked decoder, the multipart/form-data parser, a CGI script's header
//! block, path normalisation, the PROXY protocol header, the
//! response head writer, dates, the status table, `Range` and the
//! validators of conditional requests.
//! Nothing here touches a file descriptor or allocates on the hot path.

pub mod bytes;
pub mod cgi;
pub mod chunked;
pub mod cookie;
pub mod date;
pub mod multipart;
pub mod path;
pub mod proxy_protocol;
pub mod range;
pub mod request;
pub mod response;
pub mod status;
pub mod validators;

pub use request::{HeadError, Header, Parse, ParseState, Request, parse_head};

/// The request methods the server knows by name (RFC 9110 §9). Any other
/// token is `Method::Other` and gets 501 once routing has been done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
    /// A syntactically valid method token that is not one of the above.
    Other,
}

impl Method {
    /// All known methods, in the order used for `Allow` headers.
    pub const KNOWN: [Method; 9] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Options,
        Method::Patch,
        Method::Trace,
        Method::Connect,
    ];

    /// Case-sensitive lookup (RFC 9110 §9.1: methods are case-sensitive).
    pub fn from_bytes(b: &[u8]) -> Method {
        match b {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// The canonical name; `Other` has none and returns "".
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
            Method::Connect => "CONNECT",
            Method::Other => "",
        }
    }

    fn bit(self) -> u16 {
        match self {
            Method::Other => 0,
            m => 1 << (m as u16),
        }
    }
}

/// A set of known methods, as allowed by a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MethodSet(u16);

impl MethodSet {
    /// The empty set.
    pub const EMPTY: MethodSet = MethodSet(0);

    /// `GET HEAD`, the default of `allowed_methods`.
    pub fn get_head() -> MethodSet {
        MethodSet::EMPTY.with(Method::Get).with(Method::Head)
    }

    /// The set plus `m`. Adding GET adds HEAD too (CONFIG.md: "Allowing GET allows HEAD").
    #[must_use]
    pub fn with(self, m: Method) -> MethodSet {
        let s = MethodSet(self.0 | m.bit());
        if m == Method::Get {
            MethodSet(s.0 | Method::Head.bit())
        } else {
            s
        }
    }

    /// Whether `m` is in the set (`Other` never is).
    pub fn contains(self, m: Method) -> bool {
        m != Method::Other && self.0 & m.bit() != 0
    }

    /// The members, in `Method::KNOWN` order.
    pub fn iter(self) -> impl Iterator<Item = Method> {
        Method::KNOWN.into_iter().filter(move |m| self.contains(*m))
    }
}

/// The protocol version of a request (HTTP/1.x with x ≥ 2 is served as 1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The string used in a response status line for this version.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}
