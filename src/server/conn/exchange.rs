//! From a parsed head to what the connection does next: the handlers decide
//! (`dispatch`), then this module turns the decision into a reply head in
//! `Env::scratch`, a body to receive, or a CGI to start.

use std::fmt::Write as _;

use crate::config::{Config, Server};
use crate::handlers::cgi::CgiPlan;
use crate::handlers::status::Stats;
use crate::handlers::{self, Action, Body, ConnInfo, Ctx, Reply};
use crate::http::cgi::CgiHead;
use crate::http::response::{HeadBuf, HeadWriter};
use crate::http::{Method, Request, Version, cookie};
use crate::sys::File;
use arrayvec::ArrayString;

use super::super::cgi::{CgiProc, OutFraming, Stdin};
use super::super::inbound::{Inbound, Sink};
use super::super::session::{SID_HEX_LEN, SessionStore, SetError, Sid};
use super::{Ending, Env, Exchange, MAX_DISCARD, ms};

/// A reply turned into a head (in `Env::scratch`) and what follows it.
pub(super) struct Prepared {
    /// The status the head carries (for the access log).
    pub status: u16,
    pub body: Body,
    pub ending: Ending,
    /// Body bytes to read and drop before the reply is sent.
    pub discard: u64,
}

/// What a request starts.
pub(super) enum Started {
    /// An answer (head in `Env::scratch`).
    Reply(Prepared),
    /// A body to receive (for an upload or a CGI, maybe already running).
    Body {
        inbound: Box<Inbound>,
        cgi: Option<Box<CgiProc>>,
        exchange: Exchange,
        expect_continue: bool,
    },
    /// A CGI with no body to send it.
    Cgi {
        cgi: Box<CgiProc>,
        exchange: Exchange,
    },
}

/// Route a parsed request and start what it asks for.
pub(super) fn start(
    env: &mut Env<'_>,
    spec: usize,
    served: u64,
    info: ConnInfo,
    req: &Request<'_>,
) -> Started {
    let config = env.config;
    env.shared.stats.requests += 1;
    let Some((index, server)) = env
        .specs
        .get(spec)
        .map(|s| s.select(config, req.host))
        .and_then(|i| config.servers.get(i).map(|s| (i, s)))
    else {
        return Started::Reply(prepare_error(env, None, 500));
    };
    let declared = req.content_length.unwrap_or(0);
    let has_body = req.chunked || declared > 0;
    // The route is looked up again only when its body limit or session
    // matters, not on the hot path of a plain GET.
    let mut room = handlers::PathRoom::new();
    let route = if has_body || server.locations.iter().any(|l| l.session) {
        crate::http::path::normalize(req.path, room.get(req.path.len()))
            .ok()
            .map(|p| server.find_location(p))
    } else {
        None
    };
    let limit = route.map_or(0, |l| l.client_max_body_size);
    let (session, new_session) = match route.filter(|l| l.session) {
        Some(_) => session_of(env, req, server),
        None => (None, false),
    };
    env.shared.roots.files.set_now(env.unix_now);
    // Counting connections walks them all: only for a server with a
    // `status` route.
    let stats = if server.locations.iter().any(|l| l.status) {
        snapshot(env)
    } else {
        Stats::default()
    };
    let mut ctx = Ctx {
        config,
        server,
        roots: &mut env.shared.roots,
        now: env.unix_now,
        conn: info,
        stats,
    };
    let action = handlers::dispatch(&mut ctx, req);
    let exchange = Exchange {
        version: req.version,
        head_only: req.method == Method::Head,
        keep_alive: req.keep_alive
            && served + 1 < config.keepalive_requests
            && !env.shared.draining,
        server: index,
        session,
        new_session,
    };
    // RFC 9110 §10.1.1; ignored for HTTP/1.0 (HTTP.md rule 20).
    let expect_continue = req.expect_continue && has_body && req.version == Version::Http11;
    match action {
        Action::Reply(reply) => {
            let c = new_cookie(env.config, env.shared.sessions.as_ref(), &exchange);
            Started::Reply(prepare(
                &mut env.shared.scratch,
                env.shared.dates.get(env.unix_now),
                req,
                exchange,
                reply,
                c.as_deref(),
            ))
        }
        Action::Upload(sink) => Started::Body {
            inbound: Box::new(Inbound::new(
                req.chunked,
                declared,
                limit,
                Sink::Upload(sink),
            )),
            cgi: None,
            exchange,
            expect_continue,
        },
        Action::Cgi(mut plan) => {
            if let (Some(sid), Some(store)) = (session, env.shared.sessions.as_ref()) {
                // CGI sees the session (README "Sessions").
                let id = store.cookie(&sid, server.session_scope.as_bytes());
                plan.set_env("SESSION_ID", id.as_bytes());
                for (key, value) in store.values(&sid) {
                    let mut name = arrayvec::ArrayString::<80>::new();
                    if name.try_push_str("SESSION_").is_ok() && name.try_push_str(key).is_ok() {
                        plan.set_env(&name, value.as_bytes());
                    }
                }
            }
            if env.shared.cgi.running.len() >= config.cgi_max {
                let mut ctx = Ctx {
                    config,
                    server,
                    roots: &mut env.shared.roots,
                    now: env.unix_now,
                    conn: info,
                    stats: Default::default(),
                };
                let reply = handlers::error_reply(&mut ctx, 503);
                let c = new_cookie(env.config, env.shared.sessions.as_ref(), &exchange);
                return Started::Reply(prepare(
                    &mut env.shared.scratch,
                    env.shared.dates.get(env.unix_now),
                    req,
                    exchange,
                    reply,
                    c.as_deref(),
                ));
            }
            if req.chunked {
                // CONFIG.md: a chunked body is decoded into an unlinked
                // temporary file first, so CONTENT_LENGTH is always set.
                return match File::temporary(&std::env::temp_dir()) {
                    Ok(f) => Started::Body {
                        inbound: Box::new(Inbound::new(
                            true,
                            0,
                            limit,
                            Sink::Spool(f, Box::new(plan)),
                        )),
                        cgi: None,
                        exchange,
                        expect_continue,
                    },
                    Err(_) => Started::Reply(prepare_error(env, Some(index), 500)),
                };
            }
            let stdin = if declared > 0 {
                Stdin::Pipe
            } else {
                Stdin::Empty
            };
            match spawn(env, &plan, stdin) {
                Some(mut cgi) if declared > 0 => {
                    let pipe = cgi.stdin.take();
                    Started::Body {
                        inbound: Box::new(Inbound::new(
                            false,
                            declared,
                            limit,
                            Sink::CgiStdin(pipe),
                        )),
                        cgi: Some(Box::new(cgi)),
                        exchange,
                        expect_continue,
                    }
                }
                Some(cgi) => Started::Cgi {
                    cgi: Box::new(cgi),
                    exchange,
                },
                None => Started::Reply(prepare_error(env, Some(index), 502)),
            }
        }
    }
}

/// The counters for `status`: this connection is writing its answer.
fn snapshot(env: &Env<'_>) -> Stats {
    let g = (env.gauges)();
    Stats {
        accepted: env.shared.stats.accepted,
        handled: env.shared.stats.handled,
        requests: env.shared.stats.requests,
        active: g.active,
        reading: g.reading,
        writing: g.writing + 1,
        waiting: g.waiting,
        deferred: env.shared.stats.deferred,
    }
}

/// Start a CGI process and count it as running.
pub(super) fn spawn(env: &mut Env<'_>, plan: &CgiPlan, stdin: Stdin<'_>) -> Option<CgiProc> {
    let deadline = env.now + ms(env.config.cgi_timeout);
    let timeout = env.config.cgi_timeout;
    let cgi = CgiProc::spawn(
        plan,
        stdin,
        env.shared.log.fd(),
        &env.shared.epoll,
        env.id,
        deadline,
        timeout,
    )
    .ok()?;
    env.shared.cgi.running.insert(cgi.pid, env.id);
    Some(cgi)
}

/// The framing a CGI body gets when the script gives no `Content-Length`.
fn framing_for(x: Exchange) -> OutFraming {
    if x.head_only {
        OutFraming::Drop
    } else if x.version == Version::Http10 {
        OutFraming::Close
    } else {
        OutFraming::Chunked
    }
}

/// The request's session: the first of its `SID` cookies that names a live
/// session of this server, else a new one (whose cookie the answer
/// carries; it costs no write until a value is stored). None without a
/// store.
fn session_of(env: &mut Env<'_>, req: &Request<'_>, server: &Server) -> (Option<Sid>, bool) {
    let Some(store) = env.shared.sessions.as_mut() else {
        return (None, false);
    };
    let sids = req
        .headers()
        .filter(|h| h.name.eq_ignore_ascii_case(b"cookie"))
        .flat_map(|h| cookie::cookies(h.value))
        .filter(|(name, _)| *name == cookie::SESSION_COOKIE.as_bytes())
        .map(|(_, value)| value);
    let timeout = i64::try_from(server.session_timeout.as_secs()).unwrap_or(i64::MAX);
    let scope = server.session_scope.as_bytes();
    if let Some(sid) = store.get(sids, scope, timeout, env.unix_now) {
        return (Some(sid), false);
    }
    match store.issue(env.unix_now) {
        Ok(sid) => (Some(sid), true),
        Err(_) => (None, false),
    }
}

/// Apply a CGI's session headers to its session: `X-Session-Rotate: 1`
/// first (the values move to a new id, whose cookie this answer carries),
/// then each `X-Session: key=value` (an empty value removes the key) and
/// `X-Session-Destroy` in order. They are for the server and never reach
/// the client. A first value refused because `session_max` sessions are
/// stored is logged; the answer is otherwise unchanged.
fn apply_session_headers(env: &mut Env<'_>, x: &mut Exchange, head: &CgiHead<'_>) {
    let (Some(mut sid), Some(store)) = (x.session, env.shared.sessions.as_mut()) else {
        return;
    };
    let now = env.unix_now;
    let rotate = head
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(b"x-session-rotate") && v.trim_ascii() == b"1");
    if rotate {
        match store.rotate(&sid, !x.new_session, now) {
            Ok(new) => {
                sid = new;
                x.session = Some(new);
                x.new_session = true;
            }
            Err(e) => env.shared.log.error(format_args!(
                "session not rotated ({e}): the answer keeps its id"
            )),
        }
    }
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case(b"x-session") {
            let text = std::str::from_utf8(value).unwrap_or("");
            let Some((k, v)) = text.split_once('=') else {
                continue;
            };
            if store.set(&sid, k.trim(), v.trim(), now) == Err(SetError::Full) {
                env.shared.log.error(format_args!(
                    "session_max ({}) stored sessions reached: a new session's \"{}\" was not stored",
                    env.config.session_max,
                    k.trim()
                ));
            }
        } else if name.eq_ignore_ascii_case(b"x-session-destroy") {
            store.destroy(&sid, !x.new_session, now);
        }
    }
}

/// Whether a CGI header is for the server only: the session headers, and a
/// `Set-Cookie` of the `SID` cookie, which the server owns.
fn is_server_header(name: &[u8], value: &[u8]) -> bool {
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

/// The `SID` cookie value the answer of a session made (or rotated) by
/// this request sets.
fn new_cookie(
    config: &Config,
    sessions: Option<&SessionStore>,
    x: &Exchange,
) -> Option<ArrayString<SID_HEX_LEN>> {
    let sid = x.session.filter(|_| x.new_session)?;
    let server = config.servers.get(x.server)?;
    Some(sessions?.cookie(&sid, server.session_scope.as_bytes()))
}

/// `Set-Cookie` for a session made (or rotated) by this request.
fn set_cookie_header(w: &mut HeadWriter<'_>, sid: Option<&str>) {
    if let Some(c) = sid.and_then(cookie::session_cookie) {
        w.header("Set-Cookie", c.as_bytes());
    }
}

/// An answer to a request: its head, and whether the connection reads and
/// drops the request's body first, keeps going, or closes.
fn prepare(
    scratch: &mut HeadBuf,
    date: &[u8; 29],
    req: &Request<'_>,
    x: Exchange,
    reply: Reply<'_>,
    cookie: Option<&str>,
) -> Prepared {
    let closing = Ending {
        close: true,
        linger: true,
    };
    let mut ending = Ending {
        close: reply.close || !x.keep_alive,
        linger: reply.close,
    };
    // The handler took no body: a small declared one is read and dropped
    // first so the connection stays in step; anything else closes
    // (HTTP.md rule 19).
    let declared = req.content_length.unwrap_or(0);
    let mut discard = 0;
    if req.chunked {
        ending = closing;
    } else if declared > 0 {
        if ending.close || req.expect_continue || declared > MAX_DISCARD {
            ending = closing;
        } else {
            discard = declared;
        }
    }
    finish_prepare(scratch, date, x, reply, cookie, (ending, discard))
}

/// The answer once a body is in (an upload's reply).
fn prepare_after_body(
    scratch: &mut HeadBuf,
    date: &[u8; 29],
    x: Exchange,
    reply: Reply<'_>,
    cookie: Option<&str>,
) -> Prepared {
    let ending = Ending {
        close: reply.close || !x.keep_alive,
        linger: reply.close,
    };
    finish_prepare(scratch, date, x, reply, cookie, (ending, 0))
}

/// Write the head of `reply` and keep its body unless the request was HEAD.
fn finish_prepare(
    scratch: &mut HeadBuf,
    date: &[u8; 29],
    x: Exchange,
    reply: Reply<'_>,
    cookie: Option<&str>,
    (ending, discard): (Ending, u64),
) -> Prepared {
    let keep_alive_10 = x.version == Version::Http10 && !ending.close;
    if !write_head(
        scratch,
        date,
        &reply,
        Some((&x, cookie)),
        ending.close,
        keep_alive_10,
    ) {
        let closing = Ending {
            close: true,
            linger: true,
        };
        return Prepared {
            status: 500,
            body: Body::Empty,
            ending: closing,
            discard: 0,
        };
    }
    let body = if x.head_only { Body::Empty } else { reply.body };
    Prepared {
        status: reply.status,
        body,
        ending,
        discard,
    }
}

/// An error reply that closes the connection, from `server` (the
/// listener's default one when no request could be routed).
pub(super) fn prepare_error(env: &mut Env<'_>, server: Option<usize>, status: u16) -> Prepared {
    let config = env.config;
    let reply = match server.and_then(|i| config.servers.get(i)) {
        Some(server) => {
            let mut ctx = Ctx {
                config,
                server,
                roots: &mut env.shared.roots,
                now: env.unix_now,
                conn: ConnInfo::default(),
                stats: Default::default(),
            };
            handlers::error_reply(&mut ctx, status)
        }
        None => Reply::status(status),
    };
    let (status, body) = if write_head(
        &mut env.shared.scratch,
        env.shared.dates.get(env.unix_now),
        &reply,
        None,
        true,
        false,
    ) {
        (reply.status, reply.body)
    } else {
        (500, Body::Empty)
    };
    Prepared {
        status,
        body,
        ending: Ending {
            close: true,
            linger: true,
        },
        discard: 0,
    }
}

/// Run an upload's `finish` on its virtual server.
pub(super) fn finish_upload(
    env: &mut Env<'_>,
    x: Exchange,
    info: ConnInfo,
    sink: crate::handlers::upload::UploadSink,
) -> Prepared {
    let config = env.config;
    let Some(server) = config.servers.get(x.server) else {
        return prepare_error(env, None, 500);
    };
    let mut ctx = Ctx {
        config,
        server,
        roots: &mut env.shared.roots,
        now: env.unix_now,
        conn: info,
        stats: Default::default(),
    };
    let reply = sink.finish(&mut ctx);
    let c = new_cookie(env.config, env.shared.sessions.as_ref(), &x);
    prepare_after_body(
        &mut env.shared.scratch,
        env.shared.dates.get(env.unix_now),
        x,
        reply,
        c.as_deref(),
    )
}

/// Serialise the reply's head into `scratch`. `false` when it did not fit
/// and a bodiless 500 head was written instead.
fn write_head(
    scratch: &mut HeadBuf,
    date: &[u8; 29],
    reply: &Reply<'_>,
    x: Option<(&Exchange, Option<&str>)>,
    close: bool,
    keep_alive_10: bool,
) -> bool {
    let version = x.map_or(Version::Http11, |(x, _)| x.version);
    let mut w = HeadWriter::new(scratch, version, reply.status, date);
    if let Some((_, cookie)) = x {
        set_cookie_header(&mut w, cookie);
    }
    if let Some(ct) = &reply.content_type {
        w.header("Content-Type", ct.as_bytes());
    }
    // RFC 9110 §8.6: no Content-Length on 1xx and 204; a 304 sends none here.
    if !matches!(reply.status, 100..=199 | 204 | 304) {
        w.header_u64("Content-Length", reply.body.len());
    }
    if let Some(t) = reply.last_modified {
        w.header_date("Last-Modified", t);
    }
    if let Some(loc) = &reply.location {
        w.header("Location", loc.as_bytes());
    }
    if let Some(allow) = reply.allow {
        let mut list = arrayvec::ArrayString::<96>::new();
        for (i, m) in allow.iter().enumerate() {
            if i > 0 {
                list.push_str(", ");
            }
            list.push_str(m.as_str());
        }
        w.header("Allow", list.as_bytes());
    }
    if let Some(etag) = reply.etag {
        w.header_etag(etag.mtime, etag.size);
    }
    if let Some(cr) = reply.content_range {
        w.header("Content-Range", cr.text().as_bytes());
    }
    if reply.accept_ranges {
        w.line(b"Accept-Ranges: bytes\r\n");
    }
    if reply.gzip {
        w.line(b"Content-Encoding: gzip\r\n");
    }
    if reply.vary_encoding {
        w.line(b"Vary: Accept-Encoding\r\n");
    }
    if let Some((max_age, at)) = reply.expires {
        w.header_date("Expires", at);
        let mut cc = arrayvec::ArrayString::<32>::new();
        let _ = write!(cc, "max-age={max_age}");
        w.header("Cache-Control", cc.as_bytes());
    }
    // CONFIG.md: on every response of the route, whatever its status.
    for h in reply.headers {
        w.header(&h.name, h.value.as_bytes());
    }
    if reply.sandbox {
        for (name, value) in handlers::SANDBOX_HEADERS {
            w.header(name, value.as_bytes());
        }
    }
    if finish_head(w, close, keep_alive_10) {
        return true;
    }
    overflow_head(scratch, version, date);
    false
}

/// Close the head with `Connection` and the blank line; `false` if the head
/// did not fit its buffer.
fn finish_head(mut w: HeadWriter<'_>, close: bool, keep_alive_10: bool) -> bool {
    if close {
        w.header("Connection", b"close");
    } else if keep_alive_10 {
        w.header("Connection", b"keep-alive");
    }
    w.finish().is_ok()
}

/// A head outgrew its buffer (huge header values): a minimal bodiless 500
/// that closes, rather than a truncated head.
fn overflow_head(scratch: &mut HeadBuf, version: Version, date: &[u8; 29]) {
    let mut w = HeadWriter::new(scratch, version, 500, date);
    w.header_u64("Content-Length", 0);
    w.header("Connection", b"close");
    let _ = w.finish();
}

/// The head of a CGI's answer: its status and headers, with our framing,
/// then the `add_header`s of the route (`location`) that ran it, as on every
/// response of a route. Returns the framing of the body and whether the
/// connection must close.
pub(super) fn write_cgi_head(
    env: &mut Env<'_>,
    mut x: Exchange,
    head: &CgiHead<'_>,
    location: usize,
) -> (OutFraming, bool) {
    let (framing, mut close) = match head.content_length {
        Some(_) if x.head_only => (OutFraming::Drop, false),
        Some(n) => (OutFraming::Length(n), false),
        None => {
            let f = framing_for(x);
            (f, f == OutFraming::Close)
        }
    };
    close |= !x.keep_alive;
    apply_session_headers(env, &mut x, head);
    let c = new_cookie(env.config, env.shared.sessions.as_ref(), &x);
    let mut w = HeadWriter::new(
        &mut env.shared.scratch,
        x.version,
        head.status,
        env.shared.dates.get(env.unix_now),
    );
    set_cookie_header(&mut w, c.as_deref());
    if let Some(ct) = head.content_type {
        w.header("Content-Type", ct);
    }
    if let Some(loc) = head.location {
        w.header("Location", loc);
    }
    let bodiless = matches!(head.status, 100..=199 | 204 | 304);
    match (head.content_length, bodiless) {
        (_, true) => {}
        (Some(n), false) => w.header_u64("Content-Length", n),
        (None, false)
            if framing == OutFraming::Chunked || (x.head_only && x.version == Version::Http11) =>
        {
            w.header("Transfer-Encoding", b"chunked")
        }
        (None, false) => {}
    }
    for (name, value) in head.headers.iter().filter(|(n, v)| !is_server_header(n, v)) {
        if let Ok(name) = std::str::from_utf8(name) {
            w.header(name, value);
        }
    }
    let added = env
        .config
        .servers
        .get(x.server)
        .and_then(|s| s.locations.get(location))
        .map_or(&[][..], |l| &l.add_headers[..]);
    for h in added {
        w.header(&h.name, h.value.as_bytes());
    }
    let keep_alive_10 = x.version == Version::Http10 && !close;
    if !finish_head(w, close, keep_alive_10) {
        overflow_head(
            &mut env.shared.scratch,
            x.version,
            env.shared.dates.get(env.unix_now),
        );
        return (OutFraming::Drop, true);
    }
    let framing = if bodiless { OutFraming::Drop } else { framing };
    (framing, close)
}
