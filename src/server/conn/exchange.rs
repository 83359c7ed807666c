//! The executor: from a parsed head to what the connection does next. The
//! handlers decide (`handlers::decide`, once per request); this module
//! carries the decision out: a reply head in `Shared::scratch`, a body to
//! receive, or a CGI to start (admitted here, under `cgi_max`), and later
//! the head of a CGI's answer or an upload's.

use std::fmt::Write as _;

use crate::config::{Config, Server};
use crate::handlers::limits::LimitTable;
use crate::handlers::stub_status::Stats;
use crate::handlers::{self, Action, Body, ConnInfo, Ctx, Reply, Throttle};
use crate::http::response::{HeadBuf, HeadWriter};
use crate::http::{Method, Request, Version, cookie};

use super::super::access::{Meta, Pending};
use super::super::board::{Board, Field};
use super::super::cgi::CgiProc;
use super::super::inbound::{Inbound, Sink};
use super::super::timer::Millis;
use super::cgi::start_cgi;
use super::env::{Heads, Site};
use super::{Ending, Env, Exchange, MAX_DISCARD, Phase, ms};

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

/// What the connection knows of a request besides its head.
pub(super) struct Arrival {
    /// Requests answered on the connection before this one.
    pub served: u64,
    /// Bytes of the head.
    pub head_len: usize,
    /// The head's deadline: `client_header_timeout` after its first byte
    /// (so when that byte arrived, for `$request_time`).
    pub deadline: Millis,
    /// The connection's serial number.
    pub serial: u64,
    /// The client the connection's PROXY protocol header named (`listen
    /// ... proxy_protocol`), if any: the client's address only as
    /// `real_ip_header proxy_protocol` says.
    pub proxied: Option<std::net::SocketAddr>,
}

/// Start what the handlers decide for a parsed request on virtual server
/// `server` (its index in `config.servers`), its access log line and the
/// route's limits.
pub(super) fn start(
    env: &mut Env<'_>,
    server: usize,
    info: ConnInfo,
    req: &Request<'_>,
    (arrival, line): (&Arrival, &mut Option<Box<Pending>>),
) -> (Started, Throttle) {
    let served = arrival.served;
    let config = env.config;
    env.shared.board.add(Field::Requests, 1);
    let Some(vhost) = config.servers.get(server) else {
        debug_assert!(false, "server {server} chosen but not configured");
        return (
            Started::Reply(prepare_error(env, None, 500)),
            Throttle::default(),
        );
    };
    // Behind a trusted proxy the client is the one it names: for the
    // handlers (allow/deny, REMOTE_ADDR) and the log line alike.
    let info = ConnInfo {
        peer: handlers::real_client(vhost, req, info.peer, arrival.proxied),
        ..info
    };
    // Read only if a `status` route answers.
    let (board, limits, counted) = (&env.shared.board, env.shared.limits, env.counted);
    let stats = move || snapshot(board, limits, counted);
    let mut ctx = lend(config, &mut env.shared.site, vhost, info, env.unix_now);
    ctx.stats = Some(&stats);
    ctx.limits = limits;
    let decision = handlers::decide(&mut ctx, req);
    let access = &mut env.shared.access;
    if access.is_on() {
        if let Some(old) = line.take() {
            access.recycle(old);
        }
        let meta = Meta {
            server_name: vhost.names.first().map_or("", String::as_str),
            port: info.local.port(),
            head_len: arrival.head_len,
            began: arrival
                .deadline
                .saturating_sub(ms(config.client_header_timeout)),
            serial: arrival.serial,
            nth: u32::try_from(served + 1).unwrap_or(u32::MAX),
            client: Some(info.peer.ip()),
        };
        *line = access.begin(decision.log, req, &meta);
    }
    let x = Exchange {
        version: req.version,
        head_only: req.method == Method::Head,
        keep_alive: req.keep_alive
            && served + 1 < config.keepalive_requests
            && !env.shared.draining,
        server,
        session: decision.session,
        tokens: decision.tokens,
    };
    let limit = decision.limit;
    let throttle = decision.throttle;
    let started = match decision.action {
        Action::Reply(reply) => {
            Started::Reply(prepare(&mut env.shared.heads, env.unix_now, req, x, reply))
        }
        Action::Upload(sink) => receive(req, x, limit, Sink::Upload(sink), None),
        Action::Cgi(plan) => start_cgi(env, req, x, (plan, limit), info),
    };
    (started, throttle)
}

/// A request body to receive into `sink` (with the CGI it feeds, if one
/// is running already).
pub(super) fn receive(
    req: &Request<'_>,
    x: Exchange,
    limit: u64,
    sink: Sink,
    cgi: Option<Box<CgiProc>>,
) -> Started {
    let declared = req.content_length.unwrap_or(0);
    Started::Body {
        inbound: Box::new(Inbound::new(req.chunked, declared, limit, sink)),
        cgi,
        exchange: x,
        // RFC 9110 §10.1.1; ignored for HTTP/1.0 (HTTP.md rule 20).
        expect_continue: req.expect_continue
            && (req.chunked || declared > 0)
            && req.version == Version::Http11,
    }
}

/// The 503 of a CGI that `cgi_max` does not admit: an answer like any
/// other of the route's server (it carries a new session's cookie).
pub(super) fn refuse_busy(
    env: &mut Env<'_>,
    req: &Request<'_>,
    x: Exchange,
    info: ConnInfo,
) -> Started {
    let Some(mut ctx) = lend_again(env.config, &mut env.shared.site, &x, (info, env.unix_now))
    else {
        return Started::Reply(prepare_error(env, None, 503));
    };
    let mut reply = handlers::error_reply(&mut ctx, 503);
    reply.set_cookie = ctx.new_cookie(x.session);
    Started::Reply(prepare(&mut env.shared.heads, env.unix_now, req, x, reply))
}

/// [`lend`] for a later answer of exchange `x` (an upload's, a refusal, a
/// hand-over), on its server; `None` if that server is gone, which the
/// exchange's configuration generation rules out.
fn lend_again<'a>(
    config: &'a Config,
    site: &'a mut Site,
    x: &Exchange,
    (conn, now): (ConnInfo, i64),
) -> Option<Ctx<'a>> {
    let Some(server) = config.servers.get(x.server) else {
        debug_assert!(false, "server {} of an exchange not configured", x.server);
        return None;
    };
    Some(lend(config, site, server, conn, now))
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
        stats: None,
        sessions: site.sessions.as_mut(),
        limits: None,
    }
}

/// The counters for `status`, summed over the workers: this connection,
/// counted on the board as `counted`, is writing its answer.
fn snapshot(board: &Board, limits: Option<LimitTable>, counted: Phase) -> Stats {
    let mut s = board.totals();
    match counted {
        Phase::Reading => s.reading = s.reading.saturating_sub(1),
        Phase::Waiting => s.waiting = s.waiting.saturating_sub(1),
        Phase::Writing => s.writing = s.writing.saturating_sub(1),
    }
    s.writing += 1;
    // The board counts this connection, except where no loop does (tests).
    s.active = s.active.max(1);
    (
        s.limit_conn_rejected,
        s.limit_req_rejected,
        s.limit_req_delayed,
    ) = limits.map_or((0, 0, 0), |t| t.counters());
    s
}

/// `Set-Cookie` for a session made (or rotated) by this request.
pub(super) fn set_cookie_header(w: &mut HeadWriter<'_>, sid: Option<&str>) {
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
    let mut ending = Ending::of(&x, reply.close);
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
    finish_prepare_with(heads, now, x, reply, (ending, discard), &[])
}

/// [`finish_prepare`] with `extra` header fields (a CGI's, on the answer
/// to its `X-Accel-Redirect`).
fn finish_prepare_with(
    heads: &mut Heads,
    now: i64,
    x: Exchange,
    reply: Reply<'_>,
    (ending, discard): (Ending, u64),
    extra: &[(&'static str, Vec<u8>)],
) -> Prepared {
    let keep_alive_10 = x.version == Version::Http10 && !ending.close;
    let flags = (ending.close, keep_alive_10, x.tokens);
    if !write_head_with(heads, now, &reply, x.version, flags, extra) {
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
    let vhost = server.and_then(|i| config.servers.get(i));
    let tokens = vhost.is_none_or(handlers::server_tokens);
    let reply = match vhost {
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
        (true, false, tokens),
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
    let Some(mut ctx) = lend_again(env.config, &mut env.shared.site, &x, (info, env.unix_now))
    else {
        return prepare_error(env, None, 500);
    };
    let reply = handlers::finish_upload(&mut ctx, sink, x.session);
    let ending = Ending::of(&x, reply.close);
    finish_prepare(&mut env.shared.heads, env.unix_now, x, reply, (ending, 0))
}

/// The answer to a CGI's `X-Accel-Redirect: uri` (its script already
/// gone): the static answer the handlers make of the target with what the
/// request kept (`handlers::accel`), the script's `extra` fields (those it
/// keeps: `Content-Disposition`, `Cache-Control`, `Set-Cookie`), and the
/// cookie of a session this exchange made or rotated.
pub(super) fn accel(
    env: &mut Env<'_>,
    x: Exchange,
    info: ConnInfo,
    (uri, kept): (&[u8], &crate::handlers::internal::Kept),
    extra: &[(&'static str, Vec<u8>)],
) -> Prepared {
    let Some(mut ctx) = lend_again(env.config, &mut env.shared.site, &x, (info, env.unix_now))
    else {
        return prepare_error(env, None, 500);
    };
    let mut reply = handlers::accel(&mut ctx, uri, kept);
    reply.set_cookie = ctx.new_cookie(x.session);
    // The script's own Cache-Control wins over the route's `expires`.
    if extra.iter().any(|(n, _)| *n == "Cache-Control") {
        reply.expires = None;
    }
    let ending = Ending::of(&x, reply.close);
    finish_prepare_with(
        &mut env.shared.heads,
        env.unix_now,
        x,
        reply,
        (ending, 0),
        extra,
    )
}

/// Serialise the reply's head into `Shared::scratch`. `false` when it did
/// not fit and a bodiless 500 head was written instead.
fn write_head(
    heads: &mut Heads,
    now: i64,
    reply: &Reply<'_>,
    version: Version,
    flags: (bool, bool, bool),
) -> bool {
    write_head_with(heads, now, reply, version, flags, &[])
}

/// [`write_head`] with `extra` fields before the route's `add_header`s.
fn write_head_with(
    heads: &mut Heads,
    now: i64,
    reply: &Reply<'_>,
    version: Version,
    (close, keep_alive_10, tokens): (bool, bool, bool),
    extra: &[(&'static str, Vec<u8>)],
) -> bool {
    let date = heads.dates.get(now);
    let mut w = HeadWriter::start(&mut heads.scratch, version, reply.status, date, tokens);
    set_cookie_header(&mut w, reply.set_cookie.as_deref().map(|c| c.as_str()));
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
        match etag.coding {
            None => w.header_etag(etag.mtime, etag.size),
            Some(_) => w.header("ETag", etag.text().as_bytes()),
        }
    }
    if let Some(cr) = reply.content_range {
        w.header("Content-Range", cr.text().as_bytes());
    }
    if reply.accept_ranges {
        w.line(b"Accept-Ranges: bytes\r\n");
    }
    if let Some(coding) = reply.encoding {
        w.header("Content-Encoding", coding.name().as_bytes());
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
    for (name, value) in extra {
        w.header(name, value);
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
    overflow_head(&mut heads.scratch, version, date, tokens);
    false
}

/// Close the head with `Connection` and the blank line; `false` if the head
/// did not fit its buffer.
pub(super) fn finish_head(mut w: HeadWriter<'_>, close: bool, keep_alive_10: bool) -> bool {
    if close {
        w.header("Connection", b"close");
    } else if keep_alive_10 {
        w.header("Connection", b"keep-alive");
    }
    w.finish().is_ok()
}

/// A head outgrew its buffer (huge header values): a minimal bodiless 500
/// that closes, rather than a truncated head.
pub(super) fn overflow_head(
    scratch: &mut HeadBuf,
    version: Version,
    date: &[u8; 29],
    tokens: bool,
) {
    let mut w = HeadWriter::start(scratch, version, 500, date, tokens);
    w.header_u64("Content-Length", 0);
    w.header("Connection", b"close");
    let _ = w.finish();
}
