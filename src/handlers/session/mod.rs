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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Config};
    use crate::http::cgi::parse_head as parse_cgi_head;
    use crate::http::{Parse, ParseState, parse_head};

    const NOW: i64 = 1_700_000_000;

    /// A store in a fresh folder, and a configuration of two servers (the
    /// second one a different session scope).
    struct World {
        dir: std::path::PathBuf,
        store: SessionStore,
        config: Config,
    }

    impl World {
        fn new(name: &str) -> World {
            let dir = std::env::temp_dir().join(format!("ls-policy-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("www")).unwrap();
            let text = format!(
                "server {{ listen 127.0.0.1:8080; server_name a; root {0}/www; \
                 location / {{ session on; }} }}\n\
                 server {{ listen 127.0.0.1:8080; server_name b; root {0}/www; \
                 location / {{ session on; }} }}\n",
                dir.display()
            );
            let (config, _) = config::parse_str(&text, "t.conf", &dir).unwrap();
            let store = SessionStore::open(&dir.join("store"), 3600, 100, 100, NOW).unwrap();
            World { dir, store, config }
        }

        /// The session `find_or_issue` gives a GET on server `i` with these
        /// `Cookie` field values.
        fn find(&mut self, i: usize, cookies: &[&str]) -> Option<Held> {
            let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
            for c in cookies {
                raw.push_str(&format!("Cookie: {c}\r\n"));
            }
            raw.push_str("\r\n");
            let Ok(Parse::Complete(req, _)) =
                parse_head(raw.as_bytes(), &mut ParseState::default())
            else {
                panic!("unparsed");
            };
            find_or_issue(&mut self.store, &req, &self.config.servers[i], NOW)
        }
    }

    impl Drop for World {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_request_without_a_live_sid_gets_a_new_session_and_its_cookie() {
        let mut w = World::new("new");
        let held = w.find(0, &[]).unwrap();
        assert!(held.new);
        let cookie = new_cookie(&w.store, &w.config.servers[0], held).unwrap();
        assert_eq!(cookie.len(), SID_HEX_LEN);
        // Presented again, it names the same session, and no cookie is sent.
        let again = w.find(0, &[&format!("SID={cookie}")]).unwrap();
        assert_eq!(again.sid, held.sid);
        assert!(!again.new);
        assert_eq!(new_cookie(&w.store, &w.config.servers[0], again), None);
    }

    #[test]
    fn the_first_live_sid_among_several_wins_and_other_scopes_do_not_count() {
        let mut w = World::new("several");
        let held = w.find(0, &[]).unwrap();
        let good = new_cookie(&w.store, &w.config.servers[0], held).unwrap();
        let other = w.find(1, &[]).unwrap();
        let foreign = new_cookie(&w.store, &w.config.servers[1], other).unwrap();
        let found = w
            .find(
                0,
                &[
                    &format!("SID=garbage; SID={foreign}"),
                    &format!("SID={good}"),
                ],
            )
            .unwrap();
        assert_eq!(found.sid, held.sid);
        // Server b's id means nothing to server a: a new session.
        assert!(w.find(0, &[&format!("SID={foreign}")]).unwrap().new);
    }

    #[test]
    fn cgi_session_headers_set_rotate_and_destroy() {
        let mut w = World::new("cgi");
        let mut held = w.find(0, &[]).unwrap();
        held.new = false;
        let server = &w.config.servers[0];
        let head = b"X-Session: user=ann\r\nX-Session: n=1\r\nContent-Type: text/plain\r\n\r\n";
        let (head, _) = parse_cgi_head(head).unwrap().unwrap();
        let refused = apply_cgi_headers(&mut w.store, &mut held, &head, NOW);
        assert!(refused.rotate.is_none() && refused.full.is_empty());
        assert_eq!(w.store.value(&held.sid, "user"), Some("ann"));
        let mut env = Vec::new();
        cgi_env(&w.store, server, held, |k, v| {
            env.push((k.to_string(), v.to_vec()))
        });
        assert_eq!(env[0].0, "SESSION_ID");
        assert!(env.contains(&("SESSION_user".to_string(), b"ann".to_vec())));

        let old = held.sid;
        let (head, _) = parse_cgi_head(b"X-Session-Rotate: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        apply_cgi_headers(&mut w.store, &mut held, &head, NOW);
        assert_ne!(held.sid, old);
        assert!(held.new, "a rotated session's cookie goes on the answer");
        assert_eq!(w.store.value(&held.sid, "user"), Some("ann"));

        let (head, _) = parse_cgi_head(b"X-Session-Destroy: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        apply_cgi_headers(&mut w.store, &mut held, &head, NOW);
        assert_eq!(w.store.value(&held.sid, "user"), None);
    }

    #[test]
    fn only_session_headers_and_a_sid_set_cookie_are_the_servers() {
        for (name, value, mine) in [
            ("X-Session", "a=b", true),
            ("x-session-destroy", "1", true),
            ("X-Session-Rotate", "1", true),
            ("Set-Cookie", "SID=abc; Path=/", true),
            ("Set-Cookie", " SID = abc", true),
            ("Set-Cookie", "SIDE=abc", false),
            ("Set-Cookie", "theme=dark", false),
            ("X-Sessions", "1", false),
        ] {
            assert_eq!(
                is_server_header(name.as_bytes(), value.as_bytes()),
                mine,
                "{name}: {value}"
            );
        }
    }
}
