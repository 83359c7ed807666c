//! One client connection: an explicit state machine advanced by [`Conn::drive`]
//! until it has to wait for the socket, a timer, or the next loop turn.
//!
//! ```text
//!            first byte                 head complete          body read
//!   Idle ───────────────▶ Head ───────────────────▶ Discard ────────────▶ Send
//!    ▲  keep-alive          │ (no unread body) ──────────────────────────▶ │
//!    └──────────────────────┼──────────────────────────────────────────────┤ sent
//!                           │ bad head / timeout: error reply (close) ────▶│
//!                           ▼                                              ▼
//!                         Close ◀──────── EOF / timeout ──────── Linger (after an error)
//! ```
//!
//! Invariants: each call does at most one read and one write step (the
//! reactor's fairness budget); readiness flags are cleared only by `EAGAIN`
//! or a short read/write; an `Idle` connection holds no buffer; the unread
//! body of a request is never parsed as the next request (HTTP.md rule 19).

use std::io::IoSlice;

use crate::config::{Config, ListenerSpec};
use crate::handlers::{self, Body, Ctx, Reply, RootCache};
use crate::http::response::{HeadBuf, HeadWriter};
use crate::http::{Method, Parse, ParseState, Request, Version, parse_head};
use crate::sys::{ErrorKind, File, classify};

use super::buffer::{Buf, BufPool};
use super::timer::Millis;
use super::transport::Transport;

/// Most bytes one `sendfile` call may move: keeps one large download from
/// holding the loop while others wait.
pub const SENDFILE_CHUNK: usize = 512 * 1024;
/// How long a connection lingers after an error reply, reading and
/// discarding, so the client reads the reply instead of a reset.
pub const LINGER_MS: Millis = 5_000;
/// A body that no handler takes is read and discarded up to this size (the
/// connection then stays open); a larger one closes the connection instead.
pub const MAX_DISCARD: u64 = 1 << 20;

/// What the loop hands a connection for one `drive`.
pub struct Env<'a> {
    pub config: &'a Config,
    pub specs: &'a [ListenerSpec],
    pub pool: &'a mut BufPool,
    pub roots: &'a mut RootCache,
    /// Monotonic clock, milliseconds.
    pub now: Millis,
    /// Wall clock, seconds since the epoch.
    pub unix_now: i64,
    /// `Date` header value for this second.
    pub date: &'a [u8; 29],
    /// Response heads are built here, then copied into the connection's buffer.
    pub scratch: &'a mut HeadBuf,
    /// The server is stopping: finish this response, keep nothing alive.
    pub draining: bool,
}

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Between keep-alive requests; no buffer held.
    Idle,
    /// Receiving a request head (`client_header_timeout` runs from its start).
    Head,
    /// Reading and dropping a body no handler takes; the reply waits in `out`.
    Discard(u64),
    /// Writing the reply.
    Send,
    /// Write side shut down after a closing reply; reading until EOF.
    Linger,
}

/// The result of one `drive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drive {
    /// Nothing more to do until the socket is ready again or a timer fires.
    Wait,
    /// Still ready, but the turn's budget is spent: come back next turn.
    Again,
    /// Close the connection now.
    Close,
}

enum Step {
    Continue,
    Wait,
    Budget,
    Close,
}

/// The body still to send after the head.
#[derive(Debug)]
enum OutBody {
    None,
    Bytes { data: Vec<u8>, pos: usize },
    File { file: File, off: u64, end: u64 },
}

/// How the current exchange ends.
#[derive(Clone, Copy, Debug, Default)]
struct Ending {
    close: bool,
    linger: bool,
}

/// One client connection over a transport `T`.
pub struct Conn<T> {
    pub io: T,
    state: State,
    inbuf: Option<Buf>,
    out: Option<Buf>,
    body: OutBody,
    parse: ParseState,
    ending: Ending,
    /// The socket may have bytes to read (cleared on `EAGAIN` or a short read).
    pub readable: bool,
    /// The socket may take bytes (cleared on `EAGAIN` or a short write).
    pub writable: bool,
    /// When the current timeout expires.
    pub deadline: Millis,
    /// Index of the listener's `ListenerSpec` (for virtual hosts).
    spec: usize,
    requests: u64,
}

impl<T: Transport> Conn<T> {
    /// A new connection, waiting for its first head until `deadline`.
    pub fn new(io: T, spec: usize, deadline: Millis) -> Conn<T> {
        Conn {
            io,
            state: State::Head,
            inbuf: None,
            out: None,
            body: OutBody::None,
            parse: ParseState::default(),
            ending: Ending::default(),
            readable: false,
            writable: false,
            deadline,
            spec,
            requests: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the connection holds any pooled buffer.
    pub fn holds_buffers(&self) -> bool {
        self.inbuf.is_some() || self.out.is_some()
    }

    /// Advance as far as possible with one read and one write.
    pub fn drive(&mut self, env: &mut Env<'_>) -> Drive {
        let mut reads = 1u8;
        let mut writes = 1u8;
        loop {
            let step = match self.state {
                State::Idle | State::Head => self.step_head(env, &mut reads),
                State::Discard(left) => self.step_discard(env, left, &mut reads),
                State::Send => self.step_send(env, &mut writes),
                State::Linger => self.step_linger(&mut reads),
            };
            match step {
                Step::Continue => {}
                Step::Wait => return Drive::Wait,
                Step::Budget => return Drive::Again,
                Step::Close => {
                    self.release(env.pool);
                    return Drive::Close;
                }
            }
        }
    }

    /// The deadline passed: say 408 to a slow head, otherwise close.
    pub fn on_timeout(&mut self, env: &mut Env<'_>) -> Drive {
        match self.state {
            State::Head => {
                // RFC 9110 §15.5.9: the head did not arrive in time.
                self.reply_error(env, 408);
                self.drive(env)
            }
            State::Idle | State::Discard(_) | State::Send | State::Linger => {
                self.release(env.pool);
                Drive::Close
            }
        }
    }

    /// Give every pooled buffer back (the connection is closing).
    pub fn release(&mut self, pool: &mut BufPool) {
        if let Some(b) = self.inbuf.take() {
            pool.put(b);
        }
        if let Some(b) = self.out.take() {
            pool.put(b);
        }
        self.body = OutBody::None;
    }

    fn step_head(&mut self, env: &mut Env<'_>, reads: &mut u8) -> Step {
        if let Some(buf) = self.inbuf.as_mut().filter(|b| !b.is_empty()) {
            if self.state == State::Idle {
                self.state = State::Head;
                self.deadline = env.now + ms(env.config.client_header_timeout);
            }
            buf.make_contiguous();
            let full = buf.is_full();
            let outcome = match parse_head(buf.readable(), &mut self.parse) {
                Ok(Parse::Complete(req, used)) => {
                    Ok((prepare(env, self.spec, self.requests, &req), used))
                }
                // A full buffer without the end of the head: over MAX_HEAD (rule 14).
                Ok(Parse::Partial) if full => Err(431),
                Ok(Parse::Partial) => Err(0),
                Err(e) => Err(e.status()),
            };
            match outcome {
                Ok((prepared, used)) => {
                    buf.consume(used);
                    self.parse = ParseState::default();
                    self.install(env, prepared);
                    return Step::Continue;
                }
                Err(0) => {}
                Err(status) => {
                    self.reply_error(env, status);
                    return Step::Continue;
                }
            }
        } else {
            self.drop_empty_inbuf(env.pool);
        }
        match self.read_in(env.pool, reads) {
            ReadOutcome::Got => Step::Continue,
            ReadOutcome::Wait => {
                self.drop_empty_inbuf(env.pool);
                Step::Wait
            }
            ReadOutcome::Budget => Step::Budget,
            ReadOutcome::Closed => Step::Close,
        }
    }

    fn step_discard(&mut self, env: &mut Env<'_>, mut left: u64, reads: &mut u8) -> Step {
        if let Some(buf) = self.inbuf.as_mut() {
            while left > 0 && !buf.is_empty() {
                let take = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(buf.readable().len());
                buf.consume(take);
                left -= take as u64;
            }
        }
        if left == 0 {
            self.drop_empty_inbuf(env.pool);
            self.state = State::Send;
            return Step::Continue;
        }
        self.state = State::Discard(left);
        match self.read_in(env.pool, reads) {
            ReadOutcome::Got => {
                self.deadline = env.now + ms(env.config.client_body_timeout);
                Step::Continue
            }
            ReadOutcome::Wait => Step::Wait,
            ReadOutcome::Budget => Step::Budget,
            ReadOutcome::Closed => Step::Close,
        }
    }

    fn step_send(&mut self, env: &mut Env<'_>, writes: &mut u8) -> Step {
        if !self.writable {
            return Step::Wait;
        }
        if *writes == 0 {
            return Step::Budget;
        }
        *writes -= 1;
        match self.write_out(env) {
            WriteOutcome::Done => self.finish_exchange(env),
            WriteOutcome::Partial => {
                self.deadline = env.now + ms(env.config.send_timeout);
                if self.writable {
                    Step::Budget
                } else {
                    Step::Wait
                }
            }
            WriteOutcome::Closed => Step::Close,
        }
    }

    fn step_linger(&mut self, reads: &mut u8) -> Step {
        if !self.readable {
            return Step::Wait;
        }
        if *reads == 0 {
            return Step::Budget;
        }
        *reads -= 1;
        let mut sink = [0u8; 4096];
        match self.io.read(&mut sink) {
            Ok(0) => Step::Close,
            Ok(n) => {
                if n < sink.len() {
                    self.readable = false;
                }
                Step::Continue
            }
            Err(e) => match classify(&e) {
                ErrorKind::WouldBlock => {
                    self.readable = false;
                    Step::Wait
                }
                ErrorKind::Interrupted => Step::Continue,
                _ => Step::Close,
            },
        }
    }

    /// One read into the input buffer (taken from the pool if needed).
    fn read_in(&mut self, pool: &mut BufPool, reads: &mut u8) -> ReadOutcome {
        if !self.readable {
            return ReadOutcome::Wait;
        }
        if *reads == 0 {
            return ReadOutcome::Budget;
        }
        *reads -= 1;
        let buf = self.inbuf.get_or_insert_with(|| pool.get());
        let space = buf.writable();
        let want = space.len();
        if want == 0 {
            // Cannot happen in Head (a full buffer is answered 431) nor in
            // Discard (it drains the buffer first); wait rather than spin.
            return ReadOutcome::Wait;
        }
        match self.io.read(space) {
            Ok(0) => ReadOutcome::Closed,
            Ok(n) => {
                buf.commit(n);
                if n < want {
                    self.readable = false;
                }
                ReadOutcome::Got
            }
            Err(e) => match classify(&e) {
                ErrorKind::WouldBlock => {
                    self.readable = false;
                    ReadOutcome::Wait
                }
                ErrorKind::Interrupted => {
                    *reads += 1;
                    ReadOutcome::Got
                }
                _ => ReadOutcome::Closed,
            },
        }
    }

    /// One write step: the head (and an in-memory body) with one `writev`,
    /// then at most one capped `sendfile`.
    fn write_out(&mut self, env: &mut Env<'_>) -> WriteOutcome {
        if let Some(out) = self.out.as_mut() {
            let head = out.readable();
            let extra: &[u8] = match &self.body {
                OutBody::Bytes { data, pos } => data.get(*pos..).unwrap_or(&[]),
                _ => &[],
            };
            let total = head.len() + extra.len();
            let more = matches!(self.body, OutBody::File { .. });
            let n = match self
                .io
                .writev(&[IoSlice::new(head), IoSlice::new(extra)], more)
            {
                Ok(n) => n,
                Err(e) => return self.write_error(&e),
            };
            let from_head = n.min(head.len());
            out.consume(from_head);
            if let OutBody::Bytes { pos, .. } = &mut self.body {
                *pos += n - from_head;
            }
            if n < total {
                self.writable = false;
                return WriteOutcome::Partial;
            }
            if let Some(b) = self.out.take() {
                env.pool.put(b);
            }
        } else if let OutBody::Bytes { data, pos } = &mut self.body {
            let rest = data.get(*pos..).unwrap_or(&[]);
            let n = match self.io.writev(&[IoSlice::new(rest)], false) {
                Ok(n) => n,
                Err(e) => return self.write_error(&e),
            };
            *pos += n;
            if n < rest.len() {
                self.writable = false;
                return WriteOutcome::Partial;
            }
        }
        if let OutBody::File { file, off, end } = &mut self.body {
            let want = usize::try_from(*end - *off)
                .unwrap_or(usize::MAX)
                .min(SENDFILE_CHUNK);
            if want > 0 {
                match self.io.sendfile(file, off, want) {
                    // The file shrank under us: the promised length cannot be
                    // kept, so the only honest ending is to close.
                    Ok(0) => return WriteOutcome::Closed,
                    Ok(n) if n < want => {
                        self.writable = false;
                        return WriteOutcome::Partial;
                    }
                    Ok(_) => {}
                    Err(e) => return self.write_error(&e),
                }
            }
            if *off < *end {
                return WriteOutcome::Partial;
            }
        }
        self.body = OutBody::None;
        WriteOutcome::Done
    }

    fn write_error(&mut self, e: &std::io::Error) -> WriteOutcome {
        match classify(e) {
            ErrorKind::WouldBlock => {
                self.writable = false;
                WriteOutcome::Partial
            }
            ErrorKind::Interrupted => WriteOutcome::Partial,
            _ => WriteOutcome::Closed,
        }
    }

    /// The reply is out: keep the connection for the next request, linger,
    /// or close.
    fn finish_exchange(&mut self, env: &mut Env<'_>) -> Step {
        self.requests += 1;
        let mut ending = std::mem::take(&mut self.ending);
        // Closing with unread bytes would send a reset that can destroy the
        // reply in flight (rule 18: they are not read as requests either).
        ending.linger |= self.readable || self.inbuf.as_ref().is_some_and(|b| !b.is_empty());
        if ending.close {
            if !ending.linger {
                return Step::Close;
            }
            // HTTP.md "Close": shut the write side, then read and drop what
            // the client still sends, so it reads our reply, not a reset.
            if self.io.shutdown_write().is_err() {
                return Step::Close;
            }
            if let Some(b) = self.inbuf.take() {
                env.pool.put(b);
            }
            self.state = State::Linger;
            self.deadline = env.now + LINGER_MS;
            return Step::Continue;
        }
        self.state = State::Idle;
        self.deadline = env.now + ms(env.config.keepalive_timeout);
        Step::Continue
    }

    /// Queue an error reply that closes the connection.
    fn reply_error(&mut self, env: &mut Env<'_>, status: u16) {
        let prepared = prepare_error(env, self.spec, status);
        // Whatever was buffered can no longer be trusted as a request.
        if let Some(b) = self.inbuf.take() {
            env.pool.put(b);
        }
        self.install(env, prepared);
    }

    /// Put a prepared reply in place: head (and a small body) into the
    /// output buffer, the rest as the body to stream.
    fn install(&mut self, env: &mut Env<'_>, p: Prepared) {
        let mut out = self.out.take().unwrap_or_else(|| env.pool.get());
        out.push(env.scratch);
        self.body = match p.body {
            Body::Empty => OutBody::None,
            Body::Static(b) if b.len() <= out.free() => {
                out.push(b);
                OutBody::None
            }
            Body::Static(b) => OutBody::Bytes {
                data: b.to_vec(),
                pos: 0,
            },
            Body::Bytes(v) => OutBody::Bytes { data: v, pos: 0 },
            Body::File { file, start, len } => OutBody::File {
                file,
                off: start,
                end: start.saturating_add(len),
            },
        };
        self.out = Some(out);
        self.ending = p.ending;
        self.state = if p.discard > 0 {
            State::Discard(p.discard)
        } else {
            State::Send
        };
        if p.discard > 0 {
            self.deadline = env.now + ms(env.config.client_body_timeout);
        }
    }

    fn drop_empty_inbuf(&mut self, pool: &mut BufPool) {
        if self.inbuf.as_ref().is_some_and(Buf::is_empty)
            && let Some(b) = self.inbuf.take()
        {
            pool.put(b);
        }
    }
}

enum ReadOutcome {
    Got,
    Wait,
    Budget,
    Closed,
}

enum WriteOutcome {
    Done,
    Partial,
    Closed,
}

/// A reply turned into a head (in `Env::scratch`) and what follows it.
struct Prepared {
    body: Body,
    ending: Ending,
    /// Body bytes to read and drop before the reply is sent.
    discard: u64,
}

/// A duration in timer milliseconds.
pub fn ms(d: std::time::Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2)
}

/// Route a parsed request to its handler and build the reply's head.
fn prepare(env: &mut Env<'_>, spec: usize, served: u64, req: &Request<'_>) -> Prepared {
    let config = env.config;
    let server = env
        .specs
        .get(spec)
        .map(|s| s.select(config, req.host))
        .and_then(|i| config.servers.get(i));
    let Some(server) = server else {
        return prepare_error(env, spec, 500);
    };
    let mut ctx = Ctx {
        config,
        server,
        roots: env.roots,
        now: env.unix_now,
        conn: Default::default(),
    };
    let reply = handlers::handle(&mut ctx, req);

    let mut ending = Ending {
        close: reply.close
            || !req.keep_alive
            || served + 1 >= config.keepalive_requests
            || env.draining,
        linger: reply.close,
    };
    // No handler takes a body yet (the next issue adds them): a chunked one
    // closes the connection; a small declared one is read and dropped first
    // so the connection stays in step (HTTP.md rule 19).
    let declared = req.content_length.unwrap_or(0);
    let mut discard = 0;
    if req.chunked {
        ending = Ending {
            close: true,
            linger: true,
        };
    } else if declared > 0 {
        if ending.close || req.expect_continue || declared > MAX_DISCARD {
            ending = Ending {
                close: true,
                linger: true,
            };
        } else {
            discard = declared;
        }
    }
    let keep_alive_10 = req.version == Version::Http10 && !ending.close;
    if !write_head(
        env.scratch,
        env.date,
        &reply,
        req.version,
        ending.close,
        keep_alive_10,
    ) {
        return Prepared {
            body: Body::Empty,
            ending: Ending {
                close: true,
                linger: true,
            },
            discard: 0,
        };
    }
    let body = if req.method == Method::Head {
        Body::Empty
    } else {
        reply.body
    };
    Prepared {
        body,
        ending,
        discard,
    }
}

/// An error reply that closes the connection, for when there is no request
/// to route (bad head, timeout): the listener's default server answers.
fn prepare_error(env: &mut Env<'_>, spec: usize, status: u16) -> Prepared {
    let config = env.config;
    let server = env
        .specs
        .get(spec)
        .and_then(|s| config.servers.get(s.default));
    let reply = match server {
        Some(server) => {
            let mut ctx = Ctx {
                config,
                server,
                roots: env.roots,
                now: env.unix_now,
                conn: Default::default(),
            };
            handlers::error_reply(&mut ctx, status)
        }
        None => Reply::status(status),
    };
    let body = if write_head(env.scratch, env.date, &reply, Version::Http11, true, false) {
        reply.body
    } else {
        Body::Empty
    };
    Prepared {
        body,
        ending: Ending {
            close: true,
            linger: true,
        },
        discard: 0,
    }
}

/// Serialise the reply's head into `env.scratch`. `false` when it did not fit
/// and a bodiless 500 head was written instead.
fn write_head(
    scratch: &mut HeadBuf,
    date: &[u8; 29],
    reply: &Reply<'_>,
    version: Version,
    close: bool,
    keep_alive_10: bool,
) -> bool {
    let mut w = HeadWriter::new(scratch, version, reply.status, date);
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
    for (name, value) in reply.headers {
        w.header(name, value.as_bytes());
    }
    if close {
        w.header("Connection", b"close");
    } else if keep_alive_10 {
        w.header("Connection", b"keep-alive");
    }
    if w.finish().is_err() {
        // The head outgrew its buffer (huge add_header values): answer 500
        // with a minimal head rather than a truncated one.
        let mut w = HeadWriter::new(scratch, version, 500, date);
        w.header_u64("Content-Length", 0);
        w.header("Connection", b"close");
        let _ = w.finish();
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    //! The whole state machine driven over an in-memory transport.
    use super::*;
    use crate::config;
    use crate::server::transport::MemTransport;
    use std::path::PathBuf;

    struct World {
        config: Config,
        specs: Vec<ListenerSpec>,
        pool: BufPool,
        roots: RootCache,
        scratch: HeadBuf,
        now: Millis,
        dir: PathBuf,
    }

    impl World {
        fn new(name: &str, extra: &str) -> World {
            let dir = std::env::temp_dir().join(format!("ls-conn-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("www/sub")).unwrap();
            std::fs::write(dir.join("www/index.html"), b"<h1>home</h1>").unwrap();
            let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
            std::fs::write(dir.join("www/big.bin"), &big).unwrap();
            let text = format!(
                "keepalive_timeout 5s; client_header_timeout 2s; keepalive_requests 100;\n\
                 server {{ listen 127.0.0.1:8080; root {}; {extra} }}\n",
                dir.join("www").display()
            );
            let (config, _) = config::parse_str(&text, "test.conf", &dir).unwrap();
            let specs = config.listeners();
            World {
                config,
                specs,
                pool: BufPool::new(8),
                roots: RootCache::default(),
                scratch: HeadBuf::new(),
                now: 1_000,
                dir,
            }
        }

        fn conn(&self) -> Conn<MemTransport> {
            let mut c = Conn::new(MemTransport::default(), 0, self.now + 2_000);
            c.writable = true;
            c
        }

        fn env(&mut self) -> Env<'_> {
            Env {
                config: &self.config,
                specs: &self.specs,
                pool: &mut self.pool,
                roots: &mut self.roots,
                now: self.now,
                unix_now: 1_700_000_000,
                date: b"Tue, 14 Nov 2023 22:13:20 GMT",
                scratch: &mut self.scratch,
                draining: false,
            }
        }

        /// Feed `bytes` and drive until the connection waits or closes.
        fn run(&mut self, c: &mut Conn<MemTransport>, bytes: &[u8]) -> Drive {
            if !bytes.is_empty() {
                c.io.feed(bytes);
                c.readable = true;
            }
            for _ in 0..10_000 {
                match c.drive(&mut self.env()) {
                    Drive::Again => continue,
                    d => {
                        if d == Drive::Wait && c.writable && c.state() == State::Send {
                            continue;
                        }
                        return d;
                    }
                }
            }
            panic!("connection never settled");
        }
    }

    impl Drop for World {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Split a byte stream into responses (heads + Content-Length bodies).
    fn responses(out: &[u8]) -> Vec<(u16, String, Vec<u8>)> {
        let mut v = Vec::new();
        let mut rest = out;
        while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&rest[..end]).to_string();
            let status: u16 = head[9..12].parse().unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |n| n.trim().parse().unwrap());
            let body_end = (end + 4 + len).min(rest.len());
            v.push((status, head, rest[end + 4..body_end].to_vec()));
            rest = &rest[body_end..];
        }
        v
    }

    #[test]
    fn get_then_idle_holds_no_buffer() {
        let mut w = World::new("get", "");
        let mut c = w.conn();
        let d = w.run(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(d, Drive::Wait);
        let r = responses(&c.io.output);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, 200);
        assert_eq!(r[0].2, b"<h1>home</h1>");
        assert_eq!(c.state(), State::Idle);
        assert!(
            !c.holds_buffers(),
            "an idle keep-alive connection holds no buffer"
        );
        assert_eq!(w.pool.out, 0);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let mut w = World::new("pipe", "");
        let mut c = w.conn();
        let d = w.run(
            &mut c,
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(d, Drive::Wait);
        let out = String::from_utf8_lossy(&c.io.output).to_string();
        let a = out.find("200 OK").unwrap();
        let b = out[a + 1..].find("200 OK").unwrap() + a + 1;
        let nf = out.find(" 404 ").unwrap();
        assert!(a < b && b < nf, "{out}");
        assert_eq!(
            out.matches("<h1>home</h1>").count(),
            1,
            "HEAD sends no body"
        );
        assert!(!c.holds_buffers());
    }

    #[test]
    fn request_split_at_every_byte_gives_the_same_answer() {
        let req = b"GET /index.html HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        let mut w = World::new("split", "");
        let mut whole = w.conn();
        w.run(&mut whole, req);
        for cut in 1..req.len() {
            let mut c = w.conn();
            assert_eq!(w.run(&mut c, &req[..cut]), Drive::Wait);
            assert!(
                c.io.output.is_empty(),
                "no answer before the head ends (cut {cut})"
            );
            w.run(&mut c, &req[cut..]);
            assert_eq!(c.io.output, whole.io.output, "cut at {cut}");
        }
    }

    #[test]
    fn short_writes_deliver_every_byte() {
        let mut w = World::new("short", "");
        let mut c = w.conn();
        c.io.write_limit = Some(777);
        let mut d = w.run(&mut c, b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        // The transport never blocks, so "Wait" only happens once done; a
        // real socket would clear `writable` on a short write and wait.
        for _ in 0..1000 {
            if c.state() == State::Idle {
                break;
            }
            c.writable = true;
            d = w.run(&mut c, b"");
        }
        assert_eq!(d, Drive::Wait);
        let r = responses(&c.io.output);
        let want: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].2, want);
    }

    #[test]
    fn bad_head_gets_400_then_lingers() {
        let mut w = World::new("bad", "");
        let mut c = w.conn();
        let d = w.run(&mut c, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n");
        assert_eq!(d, Drive::Wait);
        let r = responses(&c.io.output);
        assert_eq!(r[0].0, 400);
        assert!(r[0].1.contains("Connection: close"));
        assert_eq!(c.state(), State::Linger);
        assert!(c.io.shut, "write side shut down");
        c.io.eof = true;
        c.readable = true;
        assert_eq!(w.run(&mut c, b""), Drive::Close);
        assert_eq!(w.pool.out, 0, "every buffer back in the pool");
    }

    #[test]
    fn unread_body_is_discarded_not_parsed() {
        let mut w = World::new("discard", "");
        let mut c = w.conn();
        w.run(
            &mut c,
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\nGET /evil HTTP/1.1\r\nX: y\r\n\r\n",
        );
        w.run(&mut c, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = responses(&c.io.output);
        assert_eq!(r.iter().map(|r| r.0).collect::<Vec<_>>(), vec![200, 404]);
    }

    #[test]
    fn slow_head_times_out_with_408() {
        let mut w = World::new("slow", "");
        let mut c = w.conn();
        assert_eq!(w.run(&mut c, b"GET / HT"), Drive::Wait);
        w.now += 2_001;
        assert!(c.deadline <= w.now);
        let d = c.on_timeout(&mut w.env());
        assert_eq!(d, Drive::Wait);
        assert_eq!(responses(&c.io.output)[0].0, 408);
        assert_eq!(c.state(), State::Linger);
    }

    #[test]
    fn http10_closes_and_keep_alive_10_stays() {
        let mut w = World::new("h10", "");
        let mut c = w.conn();
        assert_eq!(w.run(&mut c, b"GET / HTTP/1.0\r\n\r\n"), Drive::Close);
        let mut c = w.conn();
        assert_eq!(
            w.run(&mut c, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            Drive::Wait
        );
        let r = responses(&c.io.output);
        assert!(r[0].1.contains("Connection: keep-alive"), "{}", r[0].1);
    }

    #[test]
    fn keepalive_requests_limit_closes() {
        let mut w = World::new("limit", "");
        w.config.keepalive_requests = 2;
        let mut c = w.conn();
        assert_eq!(
            w.run(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Drive::Wait
        );
        assert_eq!(
            w.run(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Drive::Close
        );
        let r = responses(&c.io.output);
        assert!(r[1].1.contains("Connection: close"));
    }

    #[test]
    fn oversized_head_gets_431() {
        let mut w = World::new("big", "");
        let mut c = w.conn();
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..400 {
            req.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(40)).as_bytes());
        }
        w.run(&mut c, &req);
        assert_eq!(responses(&c.io.output)[0].0, 431);
    }
}
