//! Sessions (CONFIG.md "Sessions and cookies"): the policy here, the store
//! in [`store`], its MAC in [`hmac`].
//!
//! A request on a `session on` route has a session: the first of its `SID`
//! cookies that names a live session of its server, else a new one, whose
//! cookie the answer carries (issuing costs no write until a value is
//! stored). A CGI sees the session in its environment and changes it with
//! `X-Session*` headers, which are for the server and never reach the
//! client; so is a `Set-Cookie` of `SID`, which the server owns.

pub mod hmac;
pub mod store;

use arrayvec::ArrayString;

use crate::config::Server;
use crate::http::cgi::CgiHead;
use crate::http::{Request, cookie};
pub use store::{DEFAULT_MAX_MEMORY, SID_HEX_LEN, SessionStore, SetError, Sid};

/// The session of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub sid: Sid,
    /// Made (or rotated) by this request: its cookie goes on the answer.
    pub new: bool,
}

/// A `SID` cookie value.
pub type CookieValue = ArrayString<SID_HEX_LEN>;

/// The request's session on `server`: the first of its `SID` cookies that
/// names a live session, else a new one. `None` when no id could be made.
pub fn find_or_issue(
    store: &mut SessionStore,
    req: &Request<'_>,
    server: &Server,
    now: i64,
) -> Option<Held> {
    let sids = req
        .headers()
        .filter(|h| h.name.eq_ignore_ascii_case(b"cookie"))
        .flat_map(|h| cookie::cookies(h.value))
        .filter(|(name, _)| *name == cookie::SESSION_COOKIE.as_bytes())
        .map(|(_, value)| value);
    let timeout = i64::try_from(server.session_timeout.as_secs()).unwrap_or(i64::MAX);
    if let Some(sid) = store.get(sids, server.session_scope.as_bytes(), timeout, now) {
        return Some(Held { sid, new: false });
    }
    let sid = store.issue(now).ok()?;
    Some(Held { sid, new: true })
}

/// The `SID` cookie value an answer carries: only for a session this
/// request made or rotated.
pub fn new_cookie(store: &SessionStore, server: &Server, held: Held) -> Option<CookieValue> {
    held.new
        .then(|| store.cookie(&held.sid, server.session_scope.as_bytes()))
}

/// The session as a CGI's environment sees it (README "Sessions"):
/// `SESSION_ID`, then `SESSION_<key>` for each value.
pub fn cgi_env(
    store: &SessionStore,
    server: &Server,
    held: Held,
    mut set: impl FnMut(&str, &[u8]),
) {
    let id = store.cookie(&held.sid, server.session_scope.as_bytes());
    set("SESSION_ID", id.as_bytes());
    for (key, value) in store.values(&held.sid) {
        let mut name = ArrayString::<80>::new();
        if name.try_push_str("SESSION_").is_ok() && name.try_push_str(key).is_ok() {
            set(&name, value.as_bytes());
        }
    }
}

/// What applying a script's session headers could not do (the answer is
/// sent all the same; the server logs these).
#[derive(Debug, Default)]
pub struct Refused {
    /// `X-Session-Rotate` failed: the answer keeps the old id.
    pub rotate: Option<std::io::Error>,
    /// The keys a new session could not store, `session_max` sessions
    /// being stored already.
    pub full: Vec<String>,
}

/// Apply a CGI's session headers to `held`: `X-Session-Rotate: 1` first
/// (the values move to a new id, whose cookie this answer carries), then
/// each `X-Session: key=value` (an empty value removes the key) and
/// `X-Session-Destroy` in order.
pub fn apply_cgi_headers(
    store: &mut SessionStore,
    held: &mut Held,
    head: &CgiHead<'_>,
    now: i64,
) -> Refused {
    let mut refused = Refused::default();
    let rotate = head
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(b"x-session-rotate") && v.trim_ascii() == b"1");
    if rotate {
        match store.rotate(&held.sid, !held.new, now) {
            Ok(new) => {
                *held = Held {
                    sid: new,
                    new: true,
                }
            }
            Err(e) => refused.rotate = Some(e),
        }
    }
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case(b"x-session") {
            let text = std::str::from_utf8(value).unwrap_or("");
            let Some((k, v)) = text.split_once('=') else {
                continue;
            };
            if store.set(&held.sid, k.trim(), v.trim(), now) == Err(SetError::Full) {
                refused.full.push(k.trim().to_string());
            }
        } else if name.eq_ignore_ascii_case(b"x-session-destroy") {
            store.destroy(&held.sid, !held.new, now);
        }
    }
    refused
}

/// Whether a CGI header is for the server only: the session headers, and a
/// `Set-Cookie` of the `SID` cookie, which the server owns.
pub fn is_server_header(name: &[u8], value: &[u8]) -> bool {
    if name.eq_ignore_ascii_case(b"set-cookie") {
        let v = value.trim_ascii_start();
        let n = cookie::SESSION_COOKIE.as_bytes();
        return v.starts_with(n)
            && v.get(n.len()..)
                .is_some_and(|r| r.trim_ascii_start().starts_with(b"="));
    }
    name.eq_ignore_ascii_case(b"x-session")
        || name.eq_ignore_ascii_case(b"x-session-destroy")
        || name.eq_ignore_ascii_case(b"x-session-rotate")
}
