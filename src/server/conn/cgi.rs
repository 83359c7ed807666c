//! A CGI from the connection's side: admitting and starting a script (the
//! one place `cgi_max` is checked), passing its output on to the client,
//! and the head of its answer. The script's header block is parsed in
//! `http::cgi`, planned in `handlers::cgi`, and the process and its pipes
//! are `server::cgi`'s.

use crate::handlers::ConnInfo;
use crate::handlers::cgi::CgiPlan;
use crate::handlers::session;
use crate::http::bytes::within;
use crate::http::cgi::{CgiHead, parse_head as parse_cgi_head};
use crate::http::response::HeadWriter;
use crate::http::{Request, Version};
use crate::sys::File;

use super::super::cgi::{CgiProc, OutFraming, Stdin};
use super::super::inbound::Sink;
use super::super::transport::Transport;
use super::exchange::{
    self, Started, finish_head, overflow_head, prepare_error, receive, refuse_busy,
    set_cookie_header,
};
use super::pace::Pace;
use super::{Conn, Env, Exchange, ReadOutcome, State, Step, WriteOutcome, ms};

/// Room kept in the output buffer for a chunk's size line and CRLFs.
const CHUNK_FRAME: usize = 16 + 4;

impl<T: Transport> Conn<T> {
    /// Pass a CGI's output on; the request body (if any) is all in. The
    /// socket is still read (into the input buffer, kept for the next
    /// request) so that a client who leaves is noticed and its script
    /// killed, as nginx does for an upstream.
    pub(super) fn step_cgi(&mut self, env: &mut Env<'_>, reads: &mut u8, writes: &mut u8) -> Step {
        let out = self.pump_output(env, writes).unwrap_or(Step::Wait);
        if !matches!(out, Step::Wait | Step::Budget) || self.state != State::Cgi {
            return out;
        }
        let room = self.inbuf.as_ref().is_none_or(|b| !b.is_full());
        if !room {
            return out;
        }
        match self.read_in(&mut env.shared.pool, reads) {
            ReadOutcome::Closed => Step::Close,
            ReadOutcome::Got => Step::Continue,
            ReadOutcome::Budget => Step::Budget,
            ReadOutcome::Wait => {
                self.drop_empty_inbuf(&mut env.shared.pool);
                out
            }
        }
    }

    /// Move output along: parse the CGI's header block, frame its body into
    /// the output buffer, write the output buffer, read more from the CGI.
    /// `None` when there is nothing to do at all (no CGI, nothing pending).
    pub(super) fn pump_output(&mut self, env: &mut Env<'_>, writes: &mut u8) -> Option<Step> {
        let mut progressed = false;
        let mut budget_left_over = false;
        let mut cgi_reads = 1u8;
        loop {
            if self.cur.cgi.is_some() {
                if let Some(step) = self.cgi_frame(env) {
                    return Some(step);
                }
                if self.cgi_finished() {
                    return Some(self.finish_exchange(env));
                }
            }
            let pending = self.out.as_ref().is_some_and(|b| !b.is_empty());
            // Asleep for `limit_rate`: the script's output waits in the
            // buffers (and, once they are full, in its pipe).
            let asleep = self.pace.as_ref().is_some_and(|p| p.until > env.now);
            if pending && self.writable && !asleep {
                if let Some(p) = self.pace.as_mut() {
                    p.until = 0;
                }
                if *writes == 0 {
                    budget_left_over = true;
                } else {
                    *writes -= 1;
                    match self.write_out(env) {
                        WriteOutcome::Closed => return Some(Step::Close),
                        WriteOutcome::Partial => {
                            self.deadline = env.now + ms(env.config.send_timeout);
                            self.clamp_deadline_to_cgi();
                        }
                        WriteOutcome::Throttled(delay) => {
                            self.sleep(env.now, delay);
                            self.clamp_deadline_to_cgi();
                        }
                        // A file body is only ever sent in `Send`, never
                        // beside a request body or CGI output.
                        WriteOutcome::Deferred(_) => {
                            debug_assert!(false, "a file body beside CGI output");
                            return Some(Step::Close);
                        }
                        WriteOutcome::Done => {
                            // Nothing left to send: the clock that runs is
                            // the body's (while it comes) or the script's.
                            let alive = self.cur.cgi.as_ref().filter(|c| !c.eof);
                            self.deadline = match alive {
                                _ if self.state == State::Body => {
                                    env.now + ms(env.config.client_body_timeout)
                                }
                                Some(c) => c.deadline,
                                None => env.now + ms(env.config.send_timeout),
                            };
                            self.clamp_deadline_to_cgi();
                        }
                    }
                    progressed = true;
                    continue;
                }
            }
            let Some(cgi) = self.cur.cgi.as_mut() else {
                break;
            };
            let room = cgi.buf.as_ref().is_none_or(|b| !b.is_full());
            if cgi.eof || !cgi.stdout_ready || !room {
                break;
            }
            if cgi_reads == 0 {
                budget_left_over = true;
                break;
            }
            cgi_reads -= 1;
            match cgi.read_output(&mut env.shared.pool) {
                Ok(true) => progressed = true,
                Ok(false) => break,
                Err(_) => {
                    cgi.eof = true;
                    progressed = true;
                }
            }
        }
        if budget_left_over {
            Some(Step::Budget)
        } else if progressed || self.cur.cgi.is_some() {
            Some(Step::Wait)
        } else {
            None
        }
    }

    /// Parse the CGI's header block once it is complete, and frame buffered
    /// body bytes into the output buffer. `Some(step)` when the exchange
    /// changed course (502).
    fn cgi_frame(&mut self, env: &mut Env<'_>) -> Option<Step> {
        let x = self.cur.exchange?;
        let cgi = self.cur.cgi.as_mut()?;
        if cgi.framing == OutFraming::Pending {
            let mut accel = None;
            let buf = cgi.buf.as_mut();
            let outcome = match buf {
                Some(b) if !b.is_empty() => {
                    b.make_contiguous();
                    match parse_cgi_head(b.readable()) {
                        Ok(Some((head, _))) if accel_target(&head).is_some() => {
                            let mut x = x;
                            apply_session_headers(env, &mut x, &head);
                            let uri = accel_target(&head).unwrap_or_default().to_vec();
                            let rate = accel_limit_rate(&head);
                            accel = Some((x, uri, accel_kept_headers(&head), rate));
                            None
                        }
                        Ok(Some((head, used))) => {
                            let (framing, close) = write_cgi_head(env, x, &head, cgi.location);
                            let rate = accel_limit_rate(&head);
                            Some(Ok((framing, close, used, head.status, rate)))
                        }
                        Ok(None) if b.is_full() || cgi.eof => Some(Err(())),
                        Ok(None) => None,
                        Err(_) => Some(Err(())),
                    }
                }
                _ if cgi.eof => Some(Err(())),
                _ => None,
            };
            if let Some((x, uri, extra, rate)) = accel {
                self.serve_accel(env, x, &uri, &extra);
                // CONFIG.md: `X-Accel-Limit-Rate` sets a `limit_rate` for
                // the handed-over answer too.
                if let Some(rate) = rate {
                    set_answer_rate(&mut self.pace, env.now, rate);
                }
                return Some(Step::Continue);
            }
            match outcome {
                None => return None,
                // RFC 3875 §6: no valid header block → the gateway failed.
                Some(Err(())) => {
                    self.reply_error(env, 502);
                    return Some(Step::Continue);
                }
                Some(Ok((framing, close, used, status, rate))) => {
                    if let Some(b) = cgi.buf.as_mut() {
                        b.consume(used);
                    }
                    // `X-Accel-Limit-Rate`: this answer's `limit_rate`.
                    if let Some(rate) = rate {
                        set_answer_rate(&mut self.pace, env.now, rate);
                    }
                    cgi.framing = framing;
                    self.cur.ending.close |= close;
                    let out = self.out.get_or_insert_with(|| env.shared.pool.get());
                    out.push(&env.shared.heads.scratch);
                    self.count_head(Some(status), env.shared.heads.scratch.len());
                    if let Some(line) = self.cur.line.as_mut() {
                        env.shared.access.note_head(line, &env.shared.heads.scratch);
                    }
                }
            }
        }
        self.frame_cgi_body(env);
        None
    }

    /// The script answered `X-Accel-Redirect`: it is done (killed with its
    /// group and its pipes closed now, so neither `cgi_timeout` nor
    /// `cgi_max` counts it any longer; SIGCHLD reaps it), and the client
    /// gets the static answer for the target, sent like any other.
    fn serve_accel(
        &mut self,
        env: &mut Env<'_>,
        x: Exchange,
        uri: &[u8],
        extra: &[(&'static str, Vec<u8>)],
    ) {
        let Some(mut cgi) = self.cur.cgi.take() else {
            return;
        };
        cgi.release(&mut env.shared.pool);
        let kept = std::mem::take(&mut cgi.kept);
        // Killed on drop: from now on it holds no place under `cgi_max`
        // (SIGCHLD still reaps it; its group is gone already).
        env.shared.cgi.running.remove(&cgi.pid);
        drop(cgi);
        let info = self.info(env);
        let prepared = exchange::accel(env, x, info, (uri, &kept), extra);
        self.install(env, prepared);
        self.deadline = env.now + ms(env.config.send_timeout);
    }

    /// Copy buffered CGI body bytes into the output buffer, framed.
    fn frame_cgi_body(&mut self, env: &mut Env<'_>) {
        let Some(cgi) = self.cur.cgi.as_mut() else {
            return;
        };
        while let Some(src) = cgi.buf.as_mut().filter(|b| !b.is_empty()) {
            let out = self.out.get_or_insert_with(|| env.shared.pool.get());
            let data = src.readable();
            let n = match cgi.framing {
                OutFraming::Pending => return,
                OutFraming::Drop => data.len(),
                OutFraming::Close => out.push(data),
                OutFraming::Length(left) => {
                    // Bytes past the declared length are dropped.
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    let pushed = out.push(within(data, ..take));
                    cgi.framing = OutFraming::Length(left - pushed as u64);
                    if pushed == take { data.len() } else { pushed }
                }
                OutFraming::Chunked => {
                    let room = out.free().saturating_sub(CHUNK_FRAME);
                    let take = room.min(data.len());
                    if take == 0 {
                        break;
                    }
                    let mut line = arrayvec::ArrayString::<20>::new();
                    let _ = std::fmt::Write::write_fmt(&mut line, format_args!("{take:x}\r\n"));
                    out.push(line.as_bytes());
                    out.push(within(data, ..take));
                    out.push(b"\r\n");
                    take
                }
            };
            if n == 0 {
                break;
            }
            src.consume(n);
        }
        if cgi.eof && cgi.buf.as_ref().is_none_or(|b| b.is_empty()) {
            if let Some(b) = cgi.buf.take() {
                env.shared.pool.put(b);
            }
            match cgi.framing {
                OutFraming::Chunked => {
                    let out = self.out.get_or_insert_with(|| env.shared.pool.get());
                    if out.free() >= 5 {
                        out.push(b"0\r\n\r\n");
                        cgi.framing = OutFraming::Drop;
                    }
                }
                // The script said more than it sent: the only honest end is
                // to close (the client sees a short body).
                OutFraming::Length(left) if left > 0 => {
                    self.cur.ending.close = true;
                    cgi.framing = OutFraming::Drop;
                }
                OutFraming::Close => {
                    self.cur.ending.close = true;
                    cgi.framing = OutFraming::Drop;
                }
                _ => {}
            }
        }
    }

    /// The script's output has all been framed and written.
    fn cgi_finished(&self) -> bool {
        let Some(cgi) = self.cur.cgi.as_ref() else {
            return false;
        };
        let done_framing = matches!(cgi.framing, OutFraming::Drop | OutFraming::Length(0));
        cgi.eof
            && done_framing
            && cgi.buf.as_ref().is_none_or(|b| b.is_empty())
            && self.out.as_ref().is_none_or(|b| b.is_empty())
            && self.state == State::Cgi
    }
}

/// Start the script `plan` for a request: at once with its body piped in
/// (or none), or once a chunked body is spooled (CONFIG.md: decoded into an
/// unlinked temporary file first, so `CONTENT_LENGTH` is always set).
pub(super) fn start_cgi(
    env: &mut Env<'_>,
    req: &Request<'_>,
    x: Exchange,
    (plan, limit): (CgiPlan, u64),
    info: ConnInfo,
) -> Started {
    if req.chunked {
        return match File::temporary(&std::env::temp_dir()) {
            Ok(f) => receive(req, x, limit, Sink::Spool(f, Box::new(plan)), None),
            Err(_) => Started::Reply(prepare_error(env, Some(x.server), 500)),
        };
    }
    let declared = req.content_length.unwrap_or(0) > 0;
    let stdin = if declared { Stdin::Pipe } else { Stdin::Empty };
    match spawn(env, &plan, stdin) {
        Ok(mut cgi) if declared => {
            let pipe = cgi.stdin.take();
            receive(req, x, limit, Sink::CgiStdin(pipe), Some(Box::new(cgi)))
        }
        Ok(cgi) => Started::Cgi {
            cgi: Box::new(cgi),
            exchange: x,
        },
        Err(NotStarted::Busy) => refuse_busy(env, req, x, info),
        Err(NotStarted::Failed) => Started::Reply(prepare_error(env, Some(x.server), 502)),
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

/// A script's `X-Accel-Limit-Rate`: the rest of its answer at `rate` bytes
/// per second (0: unlimited).
fn set_answer_rate(pace: &mut Option<Box<Pace>>, now: super::super::timer::Millis, rate: u64) {
    match pace.as_mut() {
        Some(p) => p.set_rate(rate),
        None => *pace = Some(Box::new(Pace::new(rate, 0, now, 0))),
    }
}

/// `X-Accel-Limit-Rate`, which never reaches the client.
fn is_accel_limit_rate(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"x-accel-limit-rate")
}

/// The rate a script's `X-Accel-Limit-Rate: N` sets for its answer (bytes
/// per second, `0` or `off` for none), as nginx reads it; a malformed value
/// is ignored.
fn accel_limit_rate(head: &CgiHead<'_>) -> Option<u64> {
    let (_, v) = head.headers.iter().find(|(n, _)| is_accel_limit_rate(n))?;
    let v = std::str::from_utf8(v).ok()?.trim();
    if v.eq_ignore_ascii_case("off") {
        return Some(0);
    }
    v.parse().ok()
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

/// The URI of a CGI answer's `X-Accel-Redirect`, if it has one.
fn accel_target<'h>(head: &CgiHead<'h>) -> Option<&'h [u8]> {
    head.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"x-accel-redirect"))
        .map(|(_, v)| *v)
}

/// Whether a CGI header is an `X-Accel-*` instruction to the server,
/// never sent to the client.
fn is_accel(name: &[u8]) -> bool {
    name.get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"x-accel-"))
}

/// The fields of an `X-Accel-Redirect` answer that its client still gets
/// (CONFIG.md): `Content-Disposition`, `Cache-Control` and the script's
/// own cookies (never `SID`, which the server owns).
fn accel_kept_headers(head: &CgiHead<'_>) -> Vec<(&'static str, Vec<u8>)> {
    const KEPT: [&str; 3] = ["Content-Disposition", "Cache-Control", "Set-Cookie"];
    let mut out = Vec::new();
    for (name, value) in &head.headers {
        let Some(canon) = KEPT
            .iter()
            .find(|k| name.eq_ignore_ascii_case(k.as_bytes()))
        else {
            continue;
        };
        if !session::is_server_header(name, value) {
            out.push((*canon, value.to_vec()));
        }
    }
    out
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
    let mut w = HeadWriter::start(
        &mut shared.heads.scratch,
        x.version,
        head.status,
        date,
        x.tokens,
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
    for (name, value) in head
        .headers
        .iter()
        .filter(|(n, v)| !session::is_server_header(n, v) && !is_accel(n))
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
        overflow_head(&mut shared.heads.scratch, x.version, date, x.tokens);
        return (OutFraming::Drop, true);
    }
    let framing = if bodiless { OutFraming::Drop } else { framing };
    (framing, close)
}
