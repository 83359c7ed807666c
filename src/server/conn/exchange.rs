//! The executor: from a parsed head to what the connection does next. The
//! handlers decide (`handlers::decide`, once per request); this module
//! carries the decision out: a reply head in `Shared::scratch`, a body to
//! receive, or a CGI to start (admitted here, under `cgi_max`), and later
//! the head of a CGI's answer or an upload's.

use std::fmt::Write as _;

use crate::config::{Config, Server};
use crate::handlers::cgi::CgiPlan;
use crate::handlers::session;
use crate::handlers::stub_status::Stats;
use crate::handlers::{self, Action, Body, ConnInfo, Ctx, Reply};
use crate::http::cgi::CgiHead;
use crate::http::response::{HeadBuf, HeadWriter};
use crate::http::{Method, Request, Version, cookie};
use crate::sys::File;

use super::super::cgi::{CgiProc, OutFraming, Stdin};
use super::super::inbound::{Inbound, Sink};
use super::env::{Heads, Site};
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

/// Start what the handlers decide for a parsed request on virtual server
/// `server` (its index in `config.servers`).
pub(super) fn start(
    env: &mut Env<'_>,
    server: usize,
    served: u64,
    info: ConnInfo,
    req: &Request<'_>,
) -> Started {
    let config = env.config;
    env.shared.stats.requests += 1;
    let Some(vhost) = config.servers.get(server) else {
        debug_assert!(false, "server {server} chosen but not configured");
        return Started::Reply(prepare_error(env, None, 500));
    };
    // Counting connections walks them all: only for a server with a
    // `status` route.
    let stats = if vhost.locations.iter().any(|l| l.status) {
        snapshot(env)
    } else {
        Stats::default()
    };
    let mut ctx = lend(config, &mut env.shared.site, vhost, info, env.unix_now);
    ctx.stats = stats;
    let decision = handlers::decide(&mut ctx, req);
    let x = Exchange {
        version: req.version,
        head_only: req.method == Method::Head,
        keep_alive: req.keep_alive
            && served + 1 < config.keepalive_requests
            && !env.shared.draining,
        server,
        session: decision.session,
    };
    let limit = decision.limit;
    let body = |sink, cgi| Started::Body {
        inbound: Box::new(Inbound::new(
            req.chunked,
            req.content_length.unwrap_or(0),
            limit,
            sink,
        )),
        cgi,
        exchange: x,
        // RFC 9110 §10.1.1; ignored for HTTP/1.0 (HTTP.md rule 20).
        expect_continue: req.expect_continue
            && (req.chunked || req.content_length.unwrap_or(0) > 0)
            && req.version == Version::Http11,
    };
    match decision.action {
        Action::Reply(reply) => {
            Started::Reply(prepare(&mut env.shared.heads, env.unix_now, req, x, reply))
        }
        Action::Upload(sink) => body(Sink::Upload(sink), None),
        // CONFIG.md: a chunked body is decoded into an unlinked temporary
        // file first, so CONTENT_LENGTH is always set; the script starts
        // once it is in.
        Action::Cgi(plan) if req.chunked => match File::temporary(&std::env::temp_dir()) {
            Ok(f) => body(Sink::Spool(f, Box::new(plan)), None),
            Err(_) => Started::Reply(prepare_error(env, Some(server), 500)),
        },
        Action::Cgi(plan) => {
            let declared = req.content_length.unwrap_or(0) > 0;
            let stdin = if declared { Stdin::Pipe } else { Stdin::Empty };
            match spawn(env, &plan, stdin) {
                Ok(mut cgi) if declared => {
                    let pipe = cgi.stdin.take();
                    body(Sink::CgiStdin(pipe), Some(Box::new(cgi)))
                }
                Ok(cgi) => Started::Cgi {
                    cgi: Box::new(cgi),
                    exchange: x,
                },
                Err(NotStarted::Busy) => {
                    let mut ctx = lend(config, &mut env.shared.site, vhost, info, env.unix_now);
                    let mut reply = handlers::error_reply(&mut ctx, 503);
                    reply.set_cookie = ctx.new_cookie(x.session);
                    Started::Reply(prepare(&mut env.shared.heads, env.unix_now, req, x, reply))
                }
                Err(NotStarted::Failed) => Started::Reply(prepare_error(env, Some(server), 502)),
            }
        }
    }
}

/// The handlers' view of the loop for a request on `server` (borrowing
/// only `Shared::site`, so the reply can be written to `Shared::heads`).
fn lend<'a>(
    config: &'a Config,
    site: &'a mut Site,
    server: &'a Server,
    conn: ConnInfo,
    now: i64,
) -> Ctx<'a> {
    Ctx {
        config,
        server,
        roots: &mut site.roots,
        now,
        conn,
        stats: Stats::default(),
        sessions: site.sessions.as_mut(),
    }
}

/// The counters for `status`: this connection is writing its answer.
fn snapshot(env: &Env<'_>) -> Stats {
    let g = (env.gauges)();
    let s = &env.shared.stats;
    Stats {
        accepted: s.accepted,
        handled: s.handled,
        requests: s.requests,
        active: g.active,
        reading: g.reading,
        writing: g.writing + 1,
        waiting: g.waiting,
        deferred: s.deferred,
    }
}

/// Why no CGI process was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NotStarted {
    /// `cgi_max` scripts are running already (503).
    Busy,
    /// The process or its pipes could not be made (502).
    Failed,
}

impl NotStarted {
    /// The status that answers the request.
    pub(super) fn status(self) -> u16 {
        match self {
            NotStarted::Busy => 503,
            NotStarted::Failed => 502,
        }
    }
}

/// Start a CGI process and count it as running: the one place where
/// `cgi_max` admits a script or not.
pub(super) fn spawn(
    env: &mut Env<'_>,
    plan: &CgiPlan,
    stdin: Stdin<'_>,
) -> Result<CgiProc, NotStarted> {
    if env.shared.cgi.running.len() >= env.config.cgi_max {
        return Err(NotStarted::Busy);
    }
    let deadline = env.now + ms(env.config.cgi_timeout);
    let timeout = env.config.cgi_timeout;
    let shared = &mut *env.shared;
    let cgi = CgiProc::spawn(
        plan,
        stdin,
        shared.log.fd(),
        &shared.epoll,
        env.id,
        deadline,
        timeout,
    )
    .map_err(|_| NotStarted::Failed)?;
    shared.cgi.running.insert(cgi.pid, env.id);
    Ok(cgi)
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

/// Apply a CGI's session headers (see `handlers::session`), logging what
/// could not be done; the answer is otherwise unchanged.
fn apply_session_headers(env: &mut Env<'_>, x: &mut Exchange, head: &CgiHead<'_>) {
    let (Some(held), Some(store)) = (x.session.as_mut(), env.shared.site.sessions.as_mut()) else {
        return;
    };
    let refused = session::apply_cgi_headers(store, held, head, env.unix_now);
    let log = &env.shared.log;
    if let Some(e) = refused.rotate {
        log.error(format_args!(
            "session not rotated ({e}): the answer keeps its id"
        ));
    }
    for key in refused.full {
        log.error(format_args!(
            "session_max ({}) stored sessions reached: a new session's \"{key}\" was not stored",
            env.config.session_max,
        ));
    }
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
    heads: &mut Heads,
    now: i64,
    req: &Request<'_>,
    x: Exchange,
    reply: Reply<'_>,
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
    finish_prepare(heads, now, x, reply, (ending, discard))
}

/// Write the head of `reply` and keep its body unless the request was HEAD.
fn finish_prepare(
    heads: &mut Heads,
    now: i64,
    x: Exchange,
    reply: Reply<'_>,
    (ending, discard): (Ending, u64),
) -> Prepared {
    let keep_alive_10 = x.version == Version::Http10 && !ending.close;
    if !write_head(heads, now, &reply, x.version, (ending.close, keep_alive_10)) {
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
            let site = &mut env.shared.site;
            handlers::error_reply(
                &mut lend(config, site, server, ConnInfo::default(), env.unix_now),
                status,
            )
        }
        None => Reply::status(status),
    };
    let (status, body) = if write_head(
        &mut env.shared.heads,
        env.unix_now,
        &reply,
        Version::Http11,
        (true, false),
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

/// An upload's answer once its body is in.
pub(super) fn finish_upload(
    env: &mut Env<'_>,
    x: Exchange,
    info: ConnInfo,
    sink: crate::handlers::upload::UploadSink,
) -> Prepared {
    let config = env.config;
    let Some(server) = config.servers.get(x.server) else {
        debug_assert!(false, "server {} of an exchange not configured", x.server);
        return prepare_error(env, None, 500);
    };
    let mut ctx = lend(config, &mut env.shared.site, server, info, env.unix_now);
    let reply = handlers::finish_upload(&mut ctx, sink, x.session);
    let ending = Ending {
        close: reply.close || !x.keep_alive,
        linger: reply.close,
    };
    finish_prepare(&mut env.shared.heads, env.unix_now, x, reply, (ending, 0))
}

/// Serialise the reply's head into `Shared::scratch`. `false` when it did
/// not fit and a bodiless 500 head was written instead.
fn write_head(
    heads: &mut Heads,
    now: i64,
    reply: &Reply<'_>,
    version: Version,
    (close, keep_alive_10): (bool, bool),
) -> bool {
    let date = heads.dates.get(now);
    let mut w = HeadWriter::new(&mut heads.scratch, version, reply.status, date);
    set_cookie_header(&mut w, reply.set_cookie.as_deref());
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
    overflow_head(&mut heads.scratch, version, date);
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
    let shared = &mut *env.shared;
    let c = match (
        shared.site.sessions.as_ref(),
        env.config.servers.get(x.server),
        x.session,
    ) {
        (Some(store), Some(server), Some(held)) => session::new_cookie(store, server, held),
        _ => None,
    };
    let date = shared.heads.dates.get(env.unix_now);
    let mut w = HeadWriter::new(&mut shared.heads.scratch, x.version, head.status, date);
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
    for (name, value) in head
        .headers
        .iter()
        .filter(|(n, v)| !session::is_server_header(n, v))
    {
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
        overflow_head(&mut shared.heads.scratch, x.version, date);
        return (OutFraming::Drop, true);
    }
    let framing = if bodiless { OutFraming::Drop } else { framing };
    (framing, close)
}
