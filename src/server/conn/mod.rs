//! One client connection: an explicit state machine advanced by [`Conn::drive`]
//! until it has to wait for the socket, a timer, or the next loop turn.
//!
//! ```text
//!   Proxy ──▶ (a PROXY protocol header first, on a `proxy_protocol` listener)
//!     │ header complete (broken, cut short or late: closed, no answer)
//!     ▼
//!            first byte              head complete
//!   Idle ───────────────▶ Head ─────┬──────────────────────────────────▶ Send ──┐
//!    ▲  keep-alive                  ├─ body nobody takes ─▶ Discard ───▶ │      │
//!    │                              ├─ upload / CGI body ─▶ Body ──────▶ │      │
//!    │                              │                        │ (CGI)     │      │
//!    │                              └─ CGI, no body ───────▶ Cgi ──────▶ │      │
//!    └─────────────────────────────────────────────────────────── sent ◀─┘      │
//!     bad head / timeout: error reply with close ─▶ Send ─▶ Linger ─▶ closed ◀──┘
//! ```
//!
//! `exchange` carries out what the handlers decided (a reply head, a body
//! to receive, a CGI to start); `body` streams request bodies into uploads
//! and CGI stdin; `cgi` admits and starts a script and passes its output
//! to the client; `env` is what the loop lends a connection for a drive.
//!
//! Invariants: each call does at most one read and one write step (the
//! reactor's fairness budget); readiness flags are cleared only by `EAGAIN`
//! or a short read/write; an `Idle` connection holds no buffer; the unread
//! body of a request is never parsed as the next request (HTTP.md rule 19);
//! no `sendfile` reads from the disk: a file chunk goes only once its pages
//! are known to be in memory, else the connection starts their read-ahead
//! and waits in `Send` on its timer (`FileBody`).

use std::io::IoSlice;
use std::rc::Rc;

use crate::handlers::{Body, ConnInfo, Throttle};
use crate::http::proxy_protocol::{self, Broken, Header};
use crate::http::{Parse, Version, parse_head};
use crate::sys::socket::NOTSENT_LOWAT;
use crate::sys::{ErrorKind, File, Residency, classify};

use super::access::Pending;
use super::board::Field;
use super::buffer::{Buf, BufPool};
use super::cgi::CgiProc;
use super::inbound::Inbound;
use super::timer::Millis;
use super::transport::Transport;
use crate::handlers::session::Held;
pub use env::{Env, Shared};
use exchange::{Prepared, Started};
use pace::Pace;

/// Most bytes one `sendfile` call may move (nginx's `sendfile_max_chunk`
/// is 2m): half the per-turn budget ([`Env::sendfile_left`], shared by all
/// connections), so a turn serves at least two downloads. On a 1 GiB
/// download 256 KiB and 2 MiB chunks cost the same CPU per MB.
pub const SENDFILE_CHUNK: usize = 512 * 1024;
/// A body longer than this is corked only when another large body is being
/// sent too (see `begin_stream`): alone, its last segment's delay is
/// nothing beside its length.
pub const CORK_ALONE_MAX: usize = 32 << 20;
/// How long a connection lingers after an error reply, reading and
/// discarding, so the client reads the reply instead of a reset.
pub const LINGER_MS: Millis = 5_000;
/// Most bytes a lingering close reads and drops before it closes anyway.
/// nginx bounds lingering only by time; at loopback speed 5 s is gigabytes
/// (a GET declaring a 10 GiB body made the loop read 2 GiB, 4 KiB a turn,
/// tests/abuse.rs). A client reads its answer long before this much of its
/// refused body has gone out (the suite's largest is 4 MiB).
pub const LINGER_MAX_BYTES: u32 = 16 << 20;
/// Most bytes of a broken PROXY protocol header shown in its error-log
/// line (escaped): a whole v1 line and then some.
const PROXY_SHOWN: usize = 128;
/// A body that no handler takes is read and discarded up to this size (the
/// connection then stays open); a larger one closes the connection instead.
pub const MAX_DISCARD: u64 = 1 << 20;
/// Read-ahead of a file body whose pages were found on disk: the disk is
/// asked for this much at a time, and kept one window ahead of the sending
/// (between one and two windows are asked for and not yet sent). 2 MiB is
/// 21 ms of a 100 MB/s disk and 5 reads of a 400 IOPS one, so a download
/// that wakes a few ms late (`RETRY_MAX_MS`) finds the disk still busy with
/// its next window, and runs at the disk's speed; downloads sharing a disk
/// each have at most two windows queued, so they take turns. At most 4 MiB
/// per cold download is asked for ahead of its client (the kernel's own
/// read-ahead, which starts each window, may read up to the disk's
/// `read_ahead_kb` past its first page).
pub const READ_AHEAD: u64 = 2 << 20;
/// A connection whose next pages are on disk is tried again after this
/// long, doubled at each try that still finds them missing, up to
/// `RETRY_MAX_MS`. A 512 KiB chunk takes 5 ms at 100 MB/s and under 1 ms
/// on an SSD, so most waits end at the first or second try; a waiting
/// connection costs one timer and one probe per try, no CPU in between.
pub const RETRY_MIN_MS: Millis = 2;
/// The longest pause between two tries: below a window's time on a
/// 100 MB/s disk (21 ms), so the disk never runs out of work for a
/// download that is waiting on it.
pub const RETRY_MAX_MS: Millis = 16;
/// Every this many tries that find a chunk still missing, its read is asked
/// for again (after 2+4+8+16x4 = 78 ms, then every 128 ms): pages read
/// ahead may be evicted before they are sent when memory is short, and the
/// probe would then wait for them in vain. Asking at every try cost 2,800
/// `fadvise` calls per cold GiB for nothing.
const REASK_EVERY: u32 = 8;

/// What a connection is doing, as `stub_status` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Receiving a request head or body.
    Reading,
    /// Sending an answer, or running the CGI that makes it.
    Writing,
    /// Idle between requests, or new and silent.
    Waiting,
}

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// A new connection of a `listen ... proxy_protocol`, waiting for its
    /// PROXY protocol header (under the first head's deadline).
    Proxy,
    /// Between keep-alive requests; no buffer held.
    Idle,
    /// Receiving a request head (`client_header_timeout` runs from its start).
    Head,
    /// Reading and dropping a body no handler takes; the reply waits in `out`.
    Discard(u64),
    /// Receiving a body for an upload or a CGI (whose output may flow meanwhile).
    Body,
    /// Passing a CGI's output on; the request body, if any, is in.
    Cgi,
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

/// A file body still to send, `off..end`, and what is known of its pages.
#[derive(Debug)]
struct FileBody {
    file: Rc<File>,
    off: u64,
    end: u64,
    /// The disk was asked to read up to here. 0 until a page of this body
    /// is first found on disk: a warm file never pays for an `fadvise`.
    ahead: u64,
    /// Tries in a row that found the next pages on disk.
    waits: u32,
    /// Stepped aside until the connection's deadline, the next try. Cleared
    /// when that comes, not by the next probe: a try that finds the turn's
    /// file budget spent makes no probe, and must not be taken for a wait.
    parked: bool,
    /// Probe before each chunk; off once the filesystem said it cannot
    /// tell, so such a file pays for one failed probe, once.
    probe: bool,
}

/// What the probe before a `sendfile` chunk decided.
#[derive(Debug)]
enum Pages {
    /// In memory, or nothing can be known: send.
    Ready,
    /// On disk: step aside for `delay`; `first` for the first time in this body.
    Wait { delay: Millis, first: bool },
    /// Still on disk after `send_timeout` of waiting: sent anyway, as
    /// before the probe existed (the loop may then wait for this disk).
    GaveUp,
}

impl FileBody {
    /// Before `want` bytes go from `off`: keep the disk a window ahead of a
    /// body that has met it, then look whether the chunk's pages are in.
    /// `patience` is how many tries in a row may find them missing.
    fn pages<T: Transport>(&mut self, io: &mut T, want: usize, patience: u32) -> Pages {
        if !self.probe {
            return Pages::Ready;
        }
        let chunk_end = self.off.saturating_add(want as u64);
        if self.ahead > 0 {
            self.read_ahead(io, chunk_end);
        }
        match io.file_ready(&self.file, self.off, want) {
            Residency::InMemory => {
                self.waits = 0;
                Pages::Ready
            }
            Residency::Unknown => {
                self.probe = false;
                self.waits = 0;
                Pages::Ready
            }
            Residency::OnDisk if self.waits >= patience => {
                self.probe = false;
                self.waits = 0;
                Pages::GaveUp
            }
            Residency::OnDisk => {
                let first = self.ahead == 0;
                if first {
                    self.ahead = self.off;
                    self.read_ahead(io, chunk_end);
                } else if self.waits % REASK_EVERY == REASK_EVERY - 1 {
                    // Asked for long ago and still missing: ask again for
                    // the chunk itself, in case memory pressure evicted what
                    // was read (pages present or being read are skipped).
                    io.read_ahead(&self.file, self.off, want as u64);
                }
                self.waits = self.waits.saturating_add(1);
                self.parked = true;
                let delay = RETRY_MIN_MS
                    .checked_shl(self.waits - 1)
                    .map_or(RETRY_MAX_MS, |d| d.min(RETRY_MAX_MS));
                Pages::Wait { delay, first }
            }
        }
    }

    /// Whenever the chunk about to go reaches into the last window asked
    /// for, ask for the next one (on the first miss: this window and the next).
    fn read_ahead<T: Transport>(&mut self, io: &mut T, chunk_end: u64) {
        while self.ahead < self.end && chunk_end > self.ahead.saturating_sub(READ_AHEAD) {
            let len = READ_AHEAD.min(self.end - self.ahead);
            io.read_ahead(&self.file, self.ahead, len);
            self.ahead += len;
        }
    }
}

/// The body still to send after the head.
#[derive(Debug)]
enum OutBody {
    None,
    /// (Offsets are `u32`: an in-memory body is a page or a small file,
    /// and every connection pays for this enum's size.)
    Bytes {
        data: Box<[u8]>,
        pos: u32,
    },
    /// A small file's bytes from the open-file cache, `pos..end` to send.
    Shared {
        data: Rc<[u8]>,
        pos: u32,
        end: u32,
    },
    File(FileBody),
}

impl OutBody {
    /// The in-memory bytes still to send (empty for files and none).
    fn in_memory(&self) -> &[u8] {
        // `pos` never passes the end: `advance` moves it by bytes written
        // from this slice.
        debug_assert!(match self {
            OutBody::Bytes { data, pos } => *pos as usize <= data.len(),
            OutBody::Shared { data, pos, end } => pos <= end && *end as usize <= data.len(),
            OutBody::None | OutBody::File(_) => true,
        });
        match self {
            OutBody::Bytes { data, pos } => data.get(*pos as usize..).unwrap_or(&[]),
            OutBody::Shared { data, pos, end } => {
                data.get(*pos as usize..*end as usize).unwrap_or(&[])
            }
            OutBody::None | OutBody::File(_) => &[],
        }
    }

    /// A file body waiting on its timer for its pages to be read.
    fn is_parked(&self) -> bool {
        matches!(self, OutBody::File(f) if f.parked)
    }

    /// `n` in-memory bytes went out.
    fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.in_memory().len(), "advanced past the body");
        if let OutBody::Bytes { pos, .. } | OutBody::Shared { pos, .. } = self {
            *pos = pos.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        }
    }
}

/// How the current exchange ends.
#[derive(Clone, Copy, Debug, Default)]
struct Ending {
    close: bool,
    linger: bool,
}

impl Ending {
    /// The ending of an answer of exchange `x`: it closes when the reply
    /// demands it (and then lingers) or the connection may not be kept.
    fn of(x: &Exchange, reply_close: bool) -> Ending {
        Ending {
            close: reply_close || !x.keep_alive,
            linger: reply_close,
        }
    }
}

/// What is remembered of the request while its body or a CGI runs.
#[derive(Clone, Copy, Debug)]
struct Exchange {
    version: Version,
    /// A HEAD request: the head of the answer only.
    head_only: bool,
    /// The connection may stay open afterwards.
    keep_alive: bool,
    /// Index of the virtual server in `config.servers`.
    server: usize,
    /// The request's session (`session on` routes); a new one's cookie
    /// goes on the answer.
    session: Option<Held>,
    /// `server_tokens` of its route: the `Server` header names the version.
    tokens: bool,
}

/// What belongs to the exchange under way (all `None` between exchanges).
#[derive(Default)]
struct Current {
    /// What is remembered of the request while its body or a CGI runs.
    exchange: Option<Exchange>,
    /// How the exchange ends.
    ending: Ending,
    /// A request body being received.
    inbound: Option<Box<Inbound>>,
    /// The CGI answering the request.
    cgi: Option<Box<CgiProc>>,
    /// The access log line (only when its server logs).
    line: Option<Box<Pending>>,
    /// The segments of a multipart body after the one in `Conn::body`.
    parts: Option<Box<parts::PartQueue>>,
}

/// The socket options set so far, so each costs a `setsockopt` only when
/// it changes.
#[derive(Clone, Copy, Default)]
struct Tcp {
    /// Something was written already (so bytes may be unacknowledged).
    wrote: bool,
    /// `TCP_NODELAY` is set.
    nodelay: bool,
    /// `TCP_CORK` is set (see `begin_stream`).
    corked: bool,
    /// A large body is being sent, counted in `Shared::streams` (corked or
    /// not).
    streaming: bool,
    /// `TCP_NOTSENT_LOWAT` is set on the socket (kept across keep-alive
    /// exchanges, changed only when the next large body wants otherwise).
    capped: bool,
}

impl Tcp {
    /// A body longer than one `sendfile` call starts: counted in
    /// [`Shared::streams`], its unsent queue capped while another is being
    /// sent (`NOTSENT_LOWAT`), and corked as nginx's `tcp_nopush` does
    /// (with Nagle off, each capped call, and each turn that ran out of
    /// budget, would end in a short segment; uncorking at the end sends the
    /// last partial segment at once) when `cork` says so.
    fn begin_stream<T: Transport>(&mut self, io: &mut T, streams: &mut usize, cork: bool) {
        if self.streaming {
            return;
        }
        // Several large bodies at once: cap each one's unsent queue, so
        // the sending happens in our own `sendfile` calls; a lone one keeps
        // the kernel's deep queue, which costs it fewer wakeups.
        let cap = *streams > 0;
        if cap != self.capped {
            let bytes = if cap { NOTSENT_LOWAT } else { 0 };
            if io.set_notsent_lowat(bytes).is_ok() {
                self.capped = cap;
            }
        }
        if cork {
            self.corked = io.set_cork(true).is_ok();
        }
        self.streaming = true;
        *streams += 1;
    }

    /// The large body's last byte is queued: uncork (a failure leaves the
    /// tail to the kernel's cork timer, 200 ms; the bytes still go out).
    fn end_stream<T: Transport>(&mut self, io: &mut T, streams: &mut usize) {
        if self.corked {
            let _ = io.set_cork(false);
            self.corked = false;
        }
        if self.streaming {
            self.streaming = false;
            *streams = streams.saturating_sub(1);
        }
    }
}

/// One client connection over a transport `T`.
pub struct Conn<T> {
    pub io: T,
    state: State,
    inbuf: Option<Buf>,
    out: Option<Buf>,
    body: OutBody,
    /// The socket may have bytes to read (cleared on `EAGAIN` or a short read).
    pub readable: bool,
    /// The socket may take bytes (cleared on `EAGAIN` or a short write).
    pub writable: bool,
    /// The peer hung up: read on until end of stream even after a short
    /// read (the edge that said so will not come again).
    pub peer_hup: bool,
    /// When the current timeout expires.
    pub deadline: Millis,
    /// Index of the listener's `ListenerSpec` (for virtual hosts).
    spec: usize,
    requests: u32,
    /// The client's address (the local one is the listener's).
    peer: std::net::SocketAddr,
    /// The client the PROXY protocol header named, if any.
    proxied: Option<std::net::SocketAddr>,
    cur: Current,
    tcp: Tcp,
    /// Bytes read and dropped while lingering (see `LINGER_MAX_BYTES`).
    lingered: u32,
    /// The connection's serial number (`$connection`), given by the loop.
    serial: u64,
    /// `limit_rate` (or a `limit_req` delay) of the answer under way.
    pace: Option<Box<Pace>>,
    /// The `limit_conn` slot this exchange holds (`LimitTable::release`d
    /// when the exchange ends, or by the loop when the connection closes).
    counted: Option<u32>,
}

impl<T: Transport> Conn<T> {
    /// A new connection, waiting for its first head until `deadline`.
    pub fn new(io: T, spec: usize, peer: std::net::SocketAddr, deadline: Millis) -> Conn<T> {
        Conn {
            io,
            state: State::Head,
            inbuf: None,
            out: None,
            body: OutBody::None,
            readable: false,
            writable: false,
            peer_hup: false,
            deadline,
            spec,
            requests: 0,
            peer,
            proxied: None,
            cur: Current::default(),
            tcp: Tcp::default(),
            lingered: 0,
            serial: 0,
            pace: None,
            counted: None,
        }
    }

    /// Number the connection (`$connection` in access logs).
    pub fn set_serial(&mut self, serial: u64) {
        self.serial = serial;
    }

    /// The connection starts with a PROXY protocol header (its listener
    /// says `proxy_protocol`): it is read before the first request, once,
    /// within the first head's deadline.
    pub fn await_proxy_header(&mut self) {
        debug_assert!(self.state == State::Head && self.requests == 0);
        self.state = State::Proxy;
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Between requests: nothing of a request received, nothing to send.
    pub fn is_idle(&self) -> bool {
        self.phase() == Phase::Waiting
    }

    /// Idle after at least one answer: a kept-alive connection between
    /// requests, whose client expects that it may be closed (RFC 9112 §9.3)
    /// and retries. A graceful stop closes these at once. A new connection
    /// whose first request has not arrived yet is not one: it may already
    /// be on its way (a worker told to stop right after `accept`), so it is
    /// answered, then closed, as nginx does.
    pub fn is_kept_alive_idle(&self) -> bool {
        self.requests > 0 && self.is_idle()
    }

    /// The index of the listener's `ListenerSpec`.
    pub fn spec(&self) -> usize {
        self.spec
    }

    /// Move to another listener spec (after a reload, when idle).
    pub fn set_spec(&mut self, spec: usize) {
        self.spec = spec;
    }

    /// The state as `stub_status` counts it.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Proxy | State::Head if self.inbuf.as_ref().is_some_and(|b| !b.is_empty()) => {
                Phase::Reading
            }
            State::Proxy | State::Idle | State::Head => Phase::Waiting,
            State::Discard(_) | State::Body => Phase::Reading,
            State::Cgi | State::Send | State::Linger => Phase::Writing,
        }
    }

    /// Whether the connection waits for the pages of its file to be read
    /// (its deadline is then the time to look again, not a timeout).
    pub fn waits_for_disk(&self) -> bool {
        self.body.is_parked()
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
                State::Proxy => self.step_proxy(env, &mut reads),
                State::Discard(left) => self.step_discard(env, left, &mut reads),
                State::Body => self.step_body(env, &mut reads, &mut writes),
                State::Cgi => self.step_cgi(env, &mut reads, &mut writes),
                State::Send => self.step_send(env, &mut writes),
                State::Linger => self.step_linger(&mut reads),
            };
            match step {
                Step::Continue => {}
                Step::Wait => return Drive::Wait,
                Step::Budget => return Drive::Again,
                Step::Close => {
                    self.log_abandoned(env);
                    self.release(&mut env.shared.pool);
                    return Drive::Close;
                }
            }
        }
    }

    /// The deadline passed: say 408 to a slow head or body, 504 for a CGI
    /// that ran out of time before its headers, otherwise close.
    pub fn on_timeout(&mut self, env: &mut Env<'_>) -> Drive {
        let cgi_late = self
            .cur
            .cgi
            .as_ref()
            .is_some_and(|c| !c.eof && c.deadline <= env.now);
        let cgi_started = self.cur.cgi.as_ref().is_some_and(|c| c.has_answered());
        match self.state {
            // A PROXY protocol header that did not come in time: closed
            // without an answer (the bytes are no request), as nginx does.
            State::Proxy => {
                if let Some(got) = self.inbuf.as_ref().filter(|b| !b.is_empty()) {
                    let shown = escaped_excerpt(got.readable());
                    env.shared.log.info(format_args!(
                        "client timed out while reading PROXY protocol, after \"{shown}\", \
                         client: {}, server: {}",
                        self.peer.ip(),
                        self.listen_addr(env)
                    ));
                }
                self.release(&mut env.shared.pool);
                return Drive::Close;
            }
            // Not one byte of a request: close without an answer, as nginx
            // does. A 408 and a lingering close would cost a write, a
            // shutdown and a descriptor held 5 s more for each of the
            // thousands of connections an attacker opens and leaves silent.
            State::Head if self.is_idle() => {
                self.release(&mut env.shared.pool);
                return Drive::Close;
            }
            // RFC 9110 §15.5.9: the head (or body) did not arrive in time.
            State::Head => {
                self.begin_raw_line(env);
                self.reply_error(env, 408);
            }
            State::Body | State::Cgi if cgi_late && !cgi_started => {
                self.reply_error(env, 504);
            }
            // Not a timeout: the end of a `limit_rate` (or `limit_req`)
            // sleep. From now on the write side's timeout runs again. (A
            // script past `cgi_timeout` is not woken but ended, below.)
            State::Send | State::Cgi | State::Body if self.sleeping() && !cgi_late => {
                if let Some(p) = self.pace.as_mut() {
                    p.until = 0;
                }
                self.deadline = env.now + ms(env.config.send_timeout);
                if self.state != State::Send {
                    self.clamp_deadline_to_cgi();
                }
            }
            State::Body if !cgi_started => self.reply_error(env, 408),
            // Not a timeout: the time to look at a file's pages again.
            State::Send if self.body.is_parked() => {}
            _ => {
                self.log_abandoned(env);
                self.release(&mut env.shared.pool);
                return Drive::Close;
            }
        }
        self.drive(env)
    }

    /// Sending a large file body, counted in [`Env::streams`] (the loop
    /// takes it off the count when the connection closes mid-body).
    pub fn is_streaming(&self) -> bool {
        self.tcp.streaming
    }

    /// Asleep on the timer for `limit_rate` or a `limit_req` delay.
    fn sleeping(&self) -> bool {
        self.pace.as_ref().is_some_and(|p| p.until != 0)
    }

    /// The `limit_conn` slot still counted for this connection, taken (the
    /// loop gives it back when the connection closes: exactly once).
    pub fn take_counted(&mut self) -> Option<u32> {
        self.counted.take()
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
        self.cur.parts = None;
        self.cur.inbound = None;
        if let Some(mut c) = self.cur.cgi.take() {
            c.release(pool);
        }
    }

    fn step_head(&mut self, env: &mut Env<'_>, reads: &mut u8) -> Step {
        let info = self.info(env);
        if let Some(buf) = self.inbuf.as_mut().filter(|b| !b.is_empty()) {
            if self.state == State::Idle {
                self.state = State::Head;
                self.deadline = env.now + ms(env.config.client_header_timeout);
            }
            buf.make_contiguous();
            let full = buf.is_full();
            let (bytes, parse) = buf.for_parse();
            let outcome = match parse_head(bytes, parse) {
                Ok(Parse::Complete(req, used)) => {
                    // The virtual server, chosen once for the log and the answer.
                    let server = env
                        .specs
                        .get(self.spec)
                        .map_or(usize::MAX, |s| s.select(env.config, req.host));
                    let arrival = exchange::Arrival {
                        served: u64::from(self.requests),
                        head_len: used,
                        deadline: self.deadline,
                        serial: self.serial,
                        proxied: self.proxied,
                    };
                    let line = &mut self.cur.line;
                    let (started, throttle) =
                        exchange::start(env, server, info, &req, (&arrival, line));
                    HeadOutcome::Started(started, throttle, used)
                }
                // A full buffer without the end of the head: over MAX_HEAD (rule 14).
                Ok(Parse::Partial) if full => HeadOutcome::Refused(431),
                Ok(Parse::Partial) => HeadOutcome::More,
                Err(e) => HeadOutcome::Refused(e.status()),
            };
            match outcome {
                HeadOutcome::Started(started, throttle, used) => {
                    buf.consume(used);
                    buf.reset_parse();
                    self.begin(env, started, throttle);
                    return Step::Continue;
                }
                HeadOutcome::More => {}
                HeadOutcome::Refused(status) => {
                    if env.shared.access.is_on() {
                        // nginx logs a head it could not parse with the bytes it got.
                        if let Some(target) = default_log(env, self.spec) {
                            let meta =
                                raw_meta(env, self.spec, self.deadline, self.serial, self.requests);
                            self.cur.line = env.shared.access.begin_raw(target, bytes, &meta);
                        }
                    }
                    self.reply_error(env, status);
                    return Step::Continue;
                }
            }
        } else {
            self.drop_empty_inbuf(&mut env.shared.pool);
        }
        match self.read_in(&mut env.shared.pool, reads) {
            ReadOutcome::Got => Step::Continue,
            ReadOutcome::Wait => {
                self.drop_empty_inbuf(&mut env.shared.pool);
                Step::Wait
            }
            ReadOutcome::Budget => Step::Budget,
            ReadOutcome::Closed => Step::Close,
        }
    }

    /// `listen ... proxy_protocol`: the header before the first request.
    /// Its bytes are taken off the input; those after it are the request's,
    /// for `step_head`, under the same deadline (nginx reads both within
    /// one `client_header_timeout`). A header that is broken, or cut short
    /// by the client, closes the connection without an answer.
    // Once per connection, on some listeners only: kept out of `drive`,
    // whose every other state pays for what is inlined into it.
    #[cold]
    #[inline(never)]
    fn step_proxy(&mut self, env: &mut Env<'_>, reads: &mut u8) -> Step {
        if let Some(buf) = self.inbuf.as_mut().filter(|b| !b.is_empty()) {
            buf.make_contiguous();
            match proxy_protocol::parse(buf.readable()) {
                Header::Complete(len, client) => {
                    buf.consume(len);
                    self.proxied = client;
                    self.state = State::Head;
                    return Step::Continue;
                }
                // (Decided within `V2_MAX` bytes, far less than a buffer:
                // a read always has room.)
                Header::Partial => {}
                Header::Broken(why) => {
                    self.broken_header(env, why);
                    return Step::Close;
                }
            }
        }
        match self.read_in(&mut env.shared.pool, reads) {
            ReadOutcome::Got => Step::Continue,
            ReadOutcome::Wait => {
                self.drop_empty_inbuf(&mut env.shared.pool);
                Step::Wait
            }
            ReadOutcome::Budget => Step::Budget,
            ReadOutcome::Closed => {
                // A client that closes before sending anything (a health
                // check) is no news.
                if self.inbuf.as_ref().is_some_and(|b| !b.is_empty()) {
                    self.broken_header(env, Broken::Truncated);
                }
                Step::Close
            }
        }
    }

    /// The error-log line of a PROXY protocol header that is not one, in
    /// nginx's words, with what arrived (escaped, bounded).
    fn broken_header(&self, env: &Env<'_>, why: Broken) {
        let got = self.inbuf.as_ref().map_or(&[][..], Buf::readable);
        env.shared.log.error(format_args!(
            "broken header: \"{}\" ({}) while reading PROXY protocol, client: {}, server: {}",
            escaped_excerpt(got),
            why.reason(),
            self.peer.ip(),
            self.listen_addr(env)
        ));
    }

    /// The address of the connection's listener (for messages).
    fn listen_addr(&self, env: &Env<'_>) -> String {
        env.specs
            .get(self.spec)
            .map_or_else(|| "-".to_string(), |s| s.addr.to_string())
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
            self.drop_empty_inbuf(&mut env.shared.pool);
            self.state = State::Send;
            return Step::Continue;
        }
        self.state = State::Discard(left);
        match self.read_in(&mut env.shared.pool, reads) {
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
        if let Some(p) = self.pace.as_mut().filter(|p| p.until != 0) {
            if env.now < p.until {
                // Asleep (`limit_rate`, `limit_req`): an event is no
                // reason to write. A client that hung up is let go now,
                // a clean close (FIN) as well as a reset, as nginx ends a
                // paced answer whose client closed: waiting for the next
                // quantum's write to fail held its `limit_conn` slot (and
                // its descriptor) for a second or more.
                if self.peer_hup {
                    return Step::Close;
                }
                // The timer is the sleep's (a body read and dropped
                // first ran on its own timeout meanwhile).
                self.deadline = p.until;
                return Step::Wait;
            }
            p.until = 0;
            self.deadline = env.now + ms(env.config.send_timeout);
        }
        if let OutBody::File(body) = &mut self.body
            && body.parked
        {
            if env.now < self.deadline {
                // An event before the next try (the client sent more, or
                // hung up): nothing to look at yet. A client that left has
                // reset the connection by now (it had unread bytes) and an
                // empty `sendmsg` says so at no other cost, so it is let go
                // now rather than once its pages are in; a half-close still
                // gets its answer.
                if self.peer_hup && self.io.writev(&[], false).is_err() {
                    return Step::Close;
                }
                return Step::Wait;
            }
            body.parked = false;
        }
        if !self.writable {
            return Step::Wait;
        }
        if *writes == 0 {
            return Step::Budget;
        }
        *writes -= 1;
        match self.write_body(env) {
            WriteOutcome::Done => self.finish_exchange(env),
            WriteOutcome::Partial => {
                self.deadline = env.now + ms(env.config.send_timeout);
                if self.writable {
                    Step::Budget
                } else {
                    Step::Wait
                }
            }
            WriteOutcome::Deferred(delay) => {
                // Waits on its timer alone, off the pending list: the turn's
                // file budget and the other connections are not held up.
                self.deadline = env.now + delay;
                Step::Wait
            }
            WriteOutcome::Throttled(delay) => {
                // Likewise: `limit_rate` sleeps on the timer, at no CPU.
                self.sleep(env.now, delay);
                Step::Wait
            }
            WriteOutcome::Closed => Step::Close,
        }
    }

    /// Sleep `delay` ms on the timer (`limit_rate`).
    fn sleep(&mut self, now: Millis, delay: Millis) {
        if let Some(p) = self.pace.as_mut() {
            p.until = now + delay;
            self.deadline = p.until;
        }
    }

    /// Bytes of the answer still to send (for the size of a wake-up).
    fn left_to_send(&self) -> u64 {
        let held = self.out.as_ref().map_or(0, Buf::len) as u64;
        let body = match &self.body {
            OutBody::File(f) => f.end - f.off,
            b => b.in_memory().len() as u64,
        };
        held + body
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
                self.lingered = self
                    .lingered
                    .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
                if self.lingered >= LINGER_MAX_BYTES {
                    return Step::Close;
                }
                if n < sink.len() && !self.peer_hup {
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
                if n < want && !self.peer_hup {
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
        // `limit_rate`: what may go now (`None`: no limit).
        let mut cap = match self.pace.as_ref().and_then(|p| p.allowance(env.now)) {
            Some(0) => {
                let left = self.left_to_send();
                return WriteOutcome::Throttled(
                    self.pace.as_ref().map_or(1, |p| p.wait(env.now, left)),
                );
            }
            c => c.map(|c| usize::try_from(c).unwrap_or(usize::MAX)),
        };
        self.nagle_off_unless_one_shot();
        self.tcp.wrote = true;
        if let Some(out) = self.out.as_mut() {
            // Both segments of the ring: a CGI's output is pushed while
            // earlier bytes are still being written, so it wraps, and the
            // buffer goes back to the pool below once "all" was written.
            let (head, wrapped) = out.readable_parts();
            let extra = self.body.in_memory();
            let held = head.len() + wrapped.len();
            let total = held + extra.len();
            let more = matches!(self.body, OutBody::File(_));
            let parts = [head, wrapped, extra];
            // Cut to the allowance only under `limit_rate` (rare).
            let [head, wrapped, extra] = match cap {
                None => parts,
                Some(mut room) => parts.map(|s| {
                    let part = s.get(..s.len().min(room)).unwrap_or(s);
                    room -= part.len();
                    part
                }),
            };
            let allowed = head.len() + wrapped.len() + extra.len();
            let n = match self.io.writev(
                &[
                    IoSlice::new(head),
                    IoSlice::new(wrapped),
                    IoSlice::new(extra),
                ],
                more,
            ) {
                Ok(n) => n,
                Err(e) => return self.write_error(&e),
            };
            count_sent(&mut self.cur.line, n);
            if let Some(p) = self.pace.as_mut() {
                p.sent(n);
            }
            cap = cap.map(|c| c.saturating_sub(n));
            let from_head = n.min(held);
            out.consume(from_head);
            self.body.advance(n - from_head);
            if n < allowed {
                self.writable = false;
                return WriteOutcome::Partial;
            }
            if n < total {
                return self.throttled(env.now);
            }
            if let Some(b) = self.out.take() {
                env.shared.pool.put(b);
            }
        } else if !self.body.in_memory().is_empty() {
            let rest = self.body.in_memory();
            let left = rest.len();
            let allowed = left.min(cap.unwrap_or(usize::MAX));
            let n = match self
                .io
                .writev(&[IoSlice::new(rest.get(..allowed).unwrap_or(rest))], false)
            {
                Ok(n) => n,
                Err(e) => return self.write_error(&e),
            };
            count_sent(&mut self.cur.line, n);
            self.paced(&mut cap, n);
            self.body.advance(n);
            if n < allowed {
                self.writable = false;
                return WriteOutcome::Partial;
            }
            if n < left {
                return self.throttled(env.now);
            }
        }
        if cap == Some(0) && matches!(&self.body, OutBody::File(f) if f.off < f.end) {
            return self.throttled(env.now);
        }
        if let OutBody::File(body) = &mut self.body {
            let FileBody { off, end, .. } = *body;
            let left = usize::try_from(end - off).unwrap_or(usize::MAX);
            let unpaced = left.min(SENDFILE_CHUNK).min(env.shared.sendfile_left);
            let want = unpaced.min(cap.unwrap_or(usize::MAX));
            if want > 0 {
                // The loop never waits for the disk: `sendfile` of a page
                // that is not in memory would read it there and then.
                let patience = u32::try_from(ms(env.config.send_timeout) / RETRY_MAX_MS)
                    .unwrap_or(u32::MAX)
                    .max(1);
                match body.pages(&mut self.io, want, patience) {
                    Pages::Ready => {}
                    Pages::Wait { delay, first } => {
                        if body.waits == 1 {
                            env.shared.board.add(Field::Deferred, 1);
                        }
                        if first {
                            env.shared.log.info(format_args!(
                                "file read deferred: bytes {off}-{} not in memory, \
                                 read-ahead started, client: {}",
                                off + want as u64 - 1,
                                self.peer.ip()
                            ));
                        }
                        return WriteOutcome::Deferred(delay);
                    }
                    Pages::GaveUp => env.shared.log.warn(format_args!(
                        "file bytes from {off} still not in memory after send_timeout: \
                         sent without waiting for them, client: {}",
                        self.peer.ip()
                    )),
                }
                // A body that takes more than one call is corked, as nginx's
                // `tcp_nopush` does: with Nagle off, each capped call (and
                // each turn that ran out of budget) would end in a short
                // segment. Uncorked at its end below, which sends the last
                // partial segment at once.
                if left > SENDFILE_CHUNK && cap.is_none() {
                    // A lone very large body is not corked: it has no tail
                    // worth waiting for, and corked a lone 1 GiB download
                    // ran 1.14-1.28x slower (bench/raw/2026-12-03-issue13-
                    // measurements.md).
                    let cork = left <= CORK_ALONE_MAX || env.shared.streams > 0;
                    self.tcp
                        .begin_stream(&mut self.io, &mut env.shared.streams, cork);
                }
                let sent = self.io.sendfile(&body.file, &mut body.off, want);
                if let Ok(n) = &sent {
                    env.shared.sendfile_left = env.shared.sendfile_left.saturating_sub(*n);
                    count_sent(&mut self.cur.line, *n);
                    if let Some(p) = self.pace.as_mut() {
                        p.sent(*n);
                    }
                }
                match sent {
                    // The file shrank under us: the promised length cannot be
                    // kept, so the only honest ending is to close. The
                    // handlers' cache is told.
                    Ok(0) => {
                        env.shared.site.roots.file_shrank();
                        return WriteOutcome::Closed;
                    }
                    Ok(n) if n < want => {
                        self.writable = false;
                        return WriteOutcome::Partial;
                    }
                    Ok(_) => {}
                    Err(e) => return self.write_error(&e),
                }
            }
            if body.off < body.end {
                if want < unpaced || (want == 0 && cap == Some(0)) {
                    return self.throttled(env.now);
                }
                return WriteOutcome::Partial;
            }
            // A multipart body stays corked to its end (`write_body`).
            if self.cur.parts.is_none() {
                self.tcp.end_stream(&mut self.io, &mut env.shared.streams);
            }
        }
        self.body = OutBody::None;
        WriteOutcome::Done
    }

    /// `n` bytes went out under the pace (if any): counted, and taken off
    /// what this call may still write.
    fn paced(&mut self, cap: &mut Option<usize>, n: usize) {
        if let Some(p) = self.pace.as_mut() {
            p.sent(n);
        }
        if let Some(c) = cap.as_mut() {
            *c = c.saturating_sub(n);
        }
    }

    /// The allowance is spent: sleep until a quantum may go.
    fn throttled(&self, now: Millis) -> WriteOutcome {
        let left = self.left_to_send();
        WriteOutcome::Throttled(self.pace.as_ref().map_or(1, |p| p.wait(now, left)))
    }

    /// Nagle's algorithm holds a short segment back while earlier bytes are
    /// unacknowledged. A connection's first write, when it is the whole reply
    /// (head and in-memory body), has nothing in flight before it, and a
    /// `Connection: close` client of a small file is then spared a
    /// `setsockopt`; before any other write (a second reply, the rest of a
    /// short write, a file body, CGI output) Nagle is turned off, as nginx
    /// does on its keep-alive transition.
    fn nagle_off_unless_one_shot(&mut self) {
        if self.tcp.nodelay {
            return;
        }
        let one_shot = !self.tcp.wrote
            && self.cur.cgi.is_none()
            && !matches!(self.body, OutBody::File(_))
            && self.state == State::Send;
        if !one_shot {
            // A failure costs only latency; the reply still goes out.
            let _ = self.io.set_nodelay();
            self.tcp.nodelay = true;
        }
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
        self.requests = self.requests.saturating_add(1);
        // The next request may go to another route, with other limits.
        self.pace = None;
        if let (Some(slot), Some(table)) = (self.counted.take(), env.shared.limits) {
            table.release(slot);
        }
        if let Some(line) = self.cur.line.take() {
            env.shared
                .access
                .finish(line, self.peer.ip(), env.unix_now, env.now);
        }
        let mut ending = std::mem::take(&mut self.cur.ending);
        // An answer sent before its request's body was all read: the rest of
        // that body must never be parsed as a request (HTTP.md rule 19).
        if self.cur.inbound.take().is_some() {
            ending.close = true;
            ending.linger = true;
        }
        if let Some(mut c) = self.cur.cgi.take() {
            c.release(&mut env.shared.pool);
        }
        self.cur.exchange = None;
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
                env.shared.pool.put(b);
            }
            self.state = State::Linger;
            self.lingered = 0;
            self.deadline = env.now + LINGER_MS;
            return Step::Continue;
        }
        self.state = State::Idle;
        self.deadline = env.now + ms(env.config.keepalive_timeout);
        Step::Continue
    }

    /// Queue an error reply that closes the connection.
    fn reply_error(&mut self, env: &mut Env<'_>, status: u16) {
        let server = match self.cur.exchange {
            Some(x) => Some(x.server),
            None => env.specs.get(self.spec).map(|s| s.default),
        };
        let prepared = exchange::prepare_error(env, server, status);
        // Whatever was buffered can no longer be trusted as a request.
        if let Some(b) = self.inbuf.take() {
            env.shared.pool.put(b);
        }
        // An error goes out at once, not paced.
        self.pace = None;
        // A body in flight is abandoned (an upload's temporary file goes
        // with it) and a CGI still running is killed.
        self.cur.inbound = None;
        if let Some(mut c) = self.cur.cgi.take() {
            c.release(&mut env.shared.pool);
        }
        self.cur.exchange = None;
        self.install(env, prepared);
    }

    /// Start what the head asked for, under the route's limits.
    fn begin(&mut self, env: &mut Env<'_>, started: Started, throttle: Throttle) {
        debug_assert!(self.counted.is_none(), "a limit_conn slot left counted");
        if let (Some(slot), Some(table)) = (self.counted.take(), env.shared.limits) {
            table.release(slot);
        }
        self.counted = throttle.counted;
        // nginx delays a request before its content handler runs; here a
        // script or an upload has started already, so only a reply waits.
        let delay = match started {
            Started::Reply(_) => throttle.delay,
            _ => 0,
        };
        self.pace = (throttle.rate > 0 || delay > 0)
            .then(|| Box::new(Pace::new(throttle.rate, throttle.after, env.now, delay)));
        match started {
            Started::Reply(p) => {
                self.install(env, p);
                // (A body to discard first keeps its own timeout; the
                // sleep is looked at once it is read.)
                if delay > 0 && self.state == State::Send {
                    self.deadline = env.now + delay;
                }
            }
            Started::Body {
                inbound,
                cgi,
                exchange,
                expect_continue,
            } => {
                if expect_continue {
                    // RFC 9110 §10.1.1: the client waits for this before the body.
                    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
                    let out = self.out.get_or_insert_with(|| env.shared.pool.get());
                    out.push(CONTINUE);
                    self.count_head(None, CONTINUE.len());
                }
                self.cur.exchange = Some(exchange);
                self.cur.inbound = Some(inbound);
                self.cur.cgi = cgi;
                self.state = State::Body;
                self.deadline = env.now + ms(env.config.client_body_timeout);
                self.clamp_deadline_to_cgi();
            }
            Started::Cgi { cgi, exchange } => {
                self.cur.exchange = Some(exchange);
                self.deadline = cgi.deadline;
                self.cur.cgi = Some(cgi);
                self.state = State::Cgi;
            }
        }
    }

    /// A running CGI's own deadline comes first.
    fn clamp_deadline_to_cgi(&mut self) {
        if let Some(c) = self.cur.cgi.as_ref().filter(|c| !c.eof) {
            self.deadline = self.deadline.min(c.deadline);
        }
    }

    /// Both ends of the connection: the local one is the listener's address
    /// (its port is right, and it saves a getsockname per connection).
    fn info(&self, env: &Env<'_>) -> ConnInfo {
        let local = env.specs.get(self.spec).map_or(self.peer, |s| s.addr);
        ConnInfo {
            peer: self.peer,
            local,
        }
    }

    /// Readiness of this connection's CGI pipes, from the loop.
    pub fn cgi_event(&mut self, stdout: bool, stdin: bool) {
        if let Some(c) = self.cur.cgi.as_mut() {
            c.stdout_ready |= stdout;
            c.stdin_ready |= stdin;
        }
    }

    /// Put a prepared reply in place: head (and a small body) into the
    /// output buffer, the rest as the body to stream.
    fn install(&mut self, env: &mut Env<'_>, p: Prepared) {
        let mut out = self.out.take().unwrap_or_else(|| env.shared.pool.get());
        out.push(&env.shared.heads.scratch);
        self.count_head(Some(p.status), env.shared.heads.scratch.len());
        if let Some(line) = self.cur.line.as_mut() {
            env.shared.access.note_head(line, &env.shared.heads.scratch);
        }
        self.cur.parts = None;
        self.body = match p.body {
            Body::Empty => OutBody::None,
            Body::Static(b) if b.len() <= out.free() => {
                out.push(b);
                OutBody::None
            }
            Body::Static(b) => OutBody::Bytes {
                data: b.into(),
                pos: 0,
            },
            Body::Bytes(v) => OutBody::Bytes {
                data: v.into_boxed_slice(),
                pos: 0,
            },
            Body::Shared { data, start, len } => {
                // The file cache holds only files far below 4 GiB.
                debug_assert!(u32::try_from(start.saturating_add(len)).is_ok());
                OutBody::Shared {
                    data,
                    pos: u32::try_from(start).unwrap_or(u32::MAX),
                    end: u32::try_from(start.saturating_add(len)).unwrap_or(u32::MAX),
                }
            }
            Body::File { file, start, len } => OutBody::File(FileBody {
                file,
                off: start,
                end: start.saturating_add(len),
                ahead: 0,
                waits: 0,
                parked: false,
                probe: true,
            }),
            Body::Parts(parts) => self.start_parts(env, *parts),
        };
        self.out = Some(out);
        self.cur.ending = p.ending;
        self.state = if p.discard > 0 {
            State::Discard(p.discard)
        } else {
            State::Send
        };
        if p.discard > 0 {
            self.deadline = env.now + ms(env.config.client_body_timeout);
        }
    }

    /// A head that timed out: logged with what arrived, as nginx does; a
    /// connection that sent nothing at all is closed without a line.
    fn begin_raw_line(&mut self, env: &mut Env<'_>) {
        if !env.shared.access.is_on() {
            return;
        }
        let Some(buf) = self.inbuf.as_mut().filter(|b| !b.is_empty()) else {
            return;
        };
        buf.make_contiguous();
        if let Some(old) = self.cur.line.take() {
            env.shared.access.recycle(old);
        }
        if let Some(target) = default_log(env, self.spec) {
            let meta = raw_meta(env, self.spec, self.deadline, self.serial, self.requests);
            self.cur.line = env.shared.access.begin_raw(target, buf.readable(), &meta);
        }
    }

    /// The connection closes in the middle of an exchange: its line is
    /// still written (with what was sent). Without a reply yet, the status
    /// is nginx's: 400 while a body was being read, else 499 (the client
    /// went away first).
    fn log_abandoned(&mut self, env: &mut Env<'_>) {
        if let Some(mut line) = self.cur.line.take() {
            if line.status == 0 {
                line.status = if self.state == State::Body { 400 } else { 499 };
            }
            env.shared
                .access
                .finish(line, self.peer.ip(), env.unix_now, env.now);
        }
    }

    /// A head of `len` bytes went into the output buffer (with the final
    /// status, unless it is an interim `100 Continue`).
    fn count_head(&mut self, status: Option<u16>, len: usize) {
        if let Some(l) = self.cur.line.as_mut() {
            if let Some(s) = status {
                l.status = s;
            }
            l.head += len as u64;
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

/// The access log of the listener's default server (for a head that
/// could not be parsed, so has no host to choose by).
fn default_log<'c>(env: &Env<'c>, spec: usize) -> Option<&'c crate::config::AccessLog> {
    let config = env.config;
    let server = env.specs.get(spec)?.default;
    Some(&config.servers.get(server)?.access_log)
}

/// What the log line of a head that did not parse knows: the listener's
/// default server and port, and the connection's.
fn raw_meta<'c>(
    env: &Env<'c>,
    spec: usize,
    deadline: Millis,
    serial: u64,
    requests: u32,
) -> crate::server::access::Meta<'c> {
    let listener = env.specs.get(spec);
    let server_name = listener
        .and_then(|l| env.config.servers.get(l.default))
        .and_then(|s| s.names.first())
        .map_or("", String::as_str);
    crate::server::access::Meta {
        server_name,
        port: listener.map_or(0, |l| l.addr.port()),
        head_len: 0,
        began: deadline.saturating_sub(ms(env.config.client_header_timeout)),
        serial,
        nth: requests.saturating_add(1),
        client: None,
    }
}

/// The first [`PROXY_SHOWN`] bytes of `got`, escaped as the access log
/// escapes (no control byte reaches the log), `...` when there were more.
fn escaped_excerpt(got: &[u8]) -> String {
    let shown = got.get(..got.len().min(PROXY_SHOWN)).unwrap_or(got);
    let mut text = Vec::with_capacity(shown.len() + 8);
    super::access::push_escaped(&mut text, shown);
    if got.len() > PROXY_SHOWN {
        text.extend_from_slice(b"...");
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// `n` bytes of the exchange went to the client.
fn count_sent(line: &mut Option<Box<Pending>>, n: usize) {
    if let Some(l) = line.as_mut() {
        l.sent += n as u64;
    }
}

/// What the bytes of a head so far amount to.
enum HeadOutcome {
    /// A request, started, its route's limits, and the bytes its head took.
    Started(Started, Throttle, usize),
    /// Not a whole head yet.
    More,
    /// Not a request: answered with this status, then closed.
    Refused(u16),
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
    /// A file body's next pages are on disk: their reading has started;
    /// try again after this long.
    Deferred(Millis),
    /// `limit_rate`: nothing more may go before this long.
    Throttled(Millis),
    Closed,
}

mod body;
mod cgi;
mod env;
mod exchange;
mod pace;
mod parts;
#[cfg(test)]
mod tests;

/// A duration in timer milliseconds.
pub fn ms(d: std::time::Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2)
}
