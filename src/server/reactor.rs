//! The event loop: one thread, one edge-triggered epoll instance.
//!
//! Every descriptor is registered once. An event only sets the readiness
//! flags of its connection and puts it on the pending list; the list is then
//! worked through, each connection getting one `drive` (one read, one write)
//! per turn. A connection that is still ready stays on the list, and while
//! the list is not empty `epoll_wait` does not sleep, so a fast client never
//! starves the others. Timers live in a lazy heap (see `timer`).
//!
//! Tokens ([`Token`]): a connection's is its slot and generation, its CGI
//! pipes' the same with their kind; a late event for a slot that was closed
//! and reused carries the old generation and is dropped. A listening
//! socket's token is its index in `Reactor::listeners`, given by
//! `watch_listener` alone, at start and on every reload. That index is not
//! the listener's place in the configuration: an address that could not be
//! bound has no entry. Children are reaped when `SIGCHLD` arrives on the
//! signalfd, so no zombie remains.
//!
//! Signals (CONFIG.md): `SIGTERM`/`SIGINT` stop at once; `SIGQUIT` drains
//! (listeners closed, idle connections closed, each busy one finishes its
//! response and closes, for at most `shutdown_timeout`); `SIGHUP` reloads.
//!
//! Reload. Each configuration read is kept as a [`Loaded`]: a connection keeps the
//! one it started its request under (its exchange refers to its servers by
//! index) and moves to the newest when it goes idle, onto the listener with
//! the same address (or closes, when that address is no longer wanted). A
//! configuration no connection uses any more is dropped. Listening sockets
//! still wanted are kept as they are, so no queued connection is lost.

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::{Config, ListenerSpec};
use crate::handlers::limits::LimitTable;
use crate::sys::{Epoll, ErrorKind, Events, Interest, Listener, SignalFd, Socket, classify};

use super::Source;
use super::access::AccessLogs;
use super::board::{Board, Field, phase_field};
use super::conn::{Conn, Drive, Env, Phase, Shared, ms};
use super::log::Log;
use super::timer::{Millis, Timers, wait_ms};
use super::token::{ConnId, Token, next_generation};
use crate::handlers::session::{DEFAULT_MAX_MEMORY, SessionStore};

/// File bytes all connections together may send per turn of the loop. At
/// the ~1 ms per MB that filling fresh send buffers costs, a turn stays
/// near a millisecond: 500 window-starved readers (slowhttptest's slow read)
/// put a fresh client's p99 at 5 ms with 1 MiB, 25-30 ms with 4 MiB and
/// 70-460 ms with no such bound. The turn overhead it adds to one fast
/// download (an `epoll_wait` per MiB) is lost in the noise of 1 GiB runs.
const SENDFILE_PER_TURN: usize = 1024 * 1024;
/// Accepts per listener per turn, so a connection storm cannot starve the
/// connections already open.
const ACCEPTS_PER_TURN: usize = 64;
/// `listen(2)` backlog (nginx's default on Linux).
pub const LISTEN_BACKLOG: i32 = 511;
/// After `EMFILE`/`ENFILE`, accepting pauses this long (or until a
/// connection closes), so a full backlog never makes the loop spin.
const ACCEPT_BACKOFF_MS: Millis = 100;
/// Timeouts acted on per turn. Thousands of connections opened together
/// time out together; answering all of their 408s in one turn held the
/// loop for a second (10,000 idle connections, tests/abuse.rs) while a new
/// client waited. The rest stay due, so the next `epoll_wait` does not sleep.
const EXPIRES_PER_TURN: usize = 128;
/// How often expired sessions are swept.
const SWEEP_MS: Millis = 5_000;
/// Spare buffers kept in the pool.
const POOL_KEEP: usize = 1024;

/// A listening socket the loop accepts on. It is in the epoll set under the
/// token of its index in `Reactor::listeners` (`watch_listener`).
struct ListenerSlot {
    sock: Listener,
    /// The address it was bound to (what a reload matches on).
    addr: std::net::SocketAddr,
    /// Its index in the configuration's listener specs (which server blocks
    /// it serves); the unbound ones count, so this is not its token.
    spec: usize,
    ready: bool,
}

/// Put `l` in the epoll set (or move it there, when a reload keeps it)
/// under the token of the index it gets at the end of `listeners`, and add
/// it there. On failure `l` is dropped: this process no longer listens on
/// its address.
fn watch_listener(
    epoll: &Epoll,
    listeners: &mut Vec<ListenerSlot>,
    mut l: ListenerSlot,
) -> io::Result<()> {
    let token = Token::Listener(listeners.len()).encode();
    let fd = l.sock.as_raw_fd();
    match epoll.modify(fd, token, Interest::Read) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            epoll.add(fd, token, Interest::Read)?;
        }
        r => r?,
    }
    // Edge-triggered: a connection queued before this (or while the token
    // changed) gave no edge this token will see.
    l.ready = true;
    listeners.push(l);
    Ok(())
}

/// One loaded configuration and the listeners it wants.
struct Loaded {
    config: Config,
    specs: Vec<ListenerSpec>,
}

/// A listening socket bound before the loop starts (by `server::run`, or by
/// the master for its workers).
pub struct Bound {
    pub sock: Listener,
    pub addr: std::net::SocketAddr,
}

/// Bind a listener for each of `specs`, logging those that fail (CONFIG.md:
/// not fatal while another one binds). `reuse_port` for worker processes.
pub fn bind_all(specs: &[ListenerSpec], reuse_port: bool, log: &Log) -> Vec<Bound> {
    let mut out = Vec::new();
    for spec in specs {
        match Listener::bind(spec.addr, LISTEN_BACKLOG, reuse_port) {
            Ok(sock) => out.push(Bound {
                sock,
                addr: spec.addr,
            }),
            Err(e) => log.error(format_args!("bind() to {} failed ({e})", spec.addr)),
        }
    }
    out
}

/// How the loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The only process: it reloads on `SIGHUP` itself.
    Single,
    /// One of several workers: the master reloads (by starting new
    /// workers) and holds the listening sockets.
    Worker,
}

/// `Slot::armed` when no heap entry is live (a plain sentinel rather than an
/// `Option`: 8 bytes less for every connection).
const NOT_ARMED: Millis = Millis::MAX;

struct Slot {
    generation: u32,
    /// Index in `Reactor::loaded` of the configuration this connection uses.
    cfg: u16,
    conn: Option<Conn<Socket>>,
    /// On the pending list.
    pending: bool,
    /// The earliest live heap entry for this slot.
    armed: Millis,
    /// The socket is in the epoll set (added after its first drive).
    registered: bool,
    /// The phase the board counts the connection in, as of its last drive.
    phase: Phase,
}

impl Slot {
    /// Drop the connection (closing its socket, which leaves epoll) and
    /// retire the generation, so late events and timer entries for it
    /// never reach the slot's next connection.
    fn vacate(&mut self) {
        self.conn = None;
        self.generation = next_generation(self.generation);
        self.armed = NOT_ARMED;
        self.registered = false;
    }
}

/// The loop and everything it owns.
pub struct Reactor {
    mode: Mode,
    /// Configurations still in use: the last is the current one.
    loaded: Vec<Option<Rc<Loaded>>>,
    /// Connections using each of `loaded`.
    loaded_conns: Vec<usize>,
    cur: u16,
    /// `loaded[cur]`, the configuration new connections get.
    current: Rc<Loaded>,
    /// Where the configuration is read again on `SIGHUP`.
    source: Source,
    events: Events,
    listeners: Vec<ListenerSlot>,
    signals: SignalFd,
    /// The connections.
    slab: Slab,
    /// What every connection borrows for its drive, borrowed apart from
    /// `slab`.
    shared: Shared,
    timers: Timers,
    clock: Instant,
    accept_resume_at: Millis,
    /// Accepting is paused for want of descriptors: said once in the error
    /// log, not every `ACCEPT_BACKOFF_MS` (ten lines a second while an
    /// attacker holds every descriptor, tests/abuse.rs).
    out_of_fds: bool,
    stop: bool,
    /// A graceful stop (`SIGQUIT`) is under way; it ends at this instant.
    drain_until: Option<Millis>,
    /// When the session store is next swept of expired sessions.
    next_sweep: Millis,
}

/// The connections of the loop, by slot, and the lists that walk them.
#[derive(Default)]
struct Slab {
    slots: Vec<Slot>,
    /// Slots without a connection, to reuse first.
    free: Vec<u32>,
    /// Open connections.
    active: usize,
    /// Slots to drive in this turn.
    pending: Vec<u32>,
    /// The other pending list, swapped in at each turn (no allocation).
    spare: Vec<u32>,
}

/// The `Env` of one drive of the connection in slot `id` (under the
/// configuration `loaded`).
fn env<'a>(
    shared: &'a mut Shared,
    loaded: &'a Loaded,
    (now, unix_now): (Millis, i64),
    id: ConnId,
    counted: Phase,
) -> Env<'a> {
    Env {
        shared,
        config: &loaded.config,
        specs: &loaded.specs,
        now,
        unix_now,
        id,
        counted,
    }
}

impl Reactor {
    /// Bind every listener of `config` (logging those that fail) and set up
    /// the loop, counting `limit_conn` in `limits` (the master's table and
    /// this worker's column) and the status figures on `board` (the
    /// master's, on this worker's row); a single process makes its own
    /// when `None`. Fails only if no listener at all could be bound.
    pub fn new(
        config: Config,
        source: Source,
        log: Log,
        bound: Vec<Bound>,
        (mode, limits, board): (Mode, Option<LimitTable>, Option<Board>),
    ) -> io::Result<Reactor> {
        let epoll = Epoll::new()?;
        let signals = SignalFd::new(&[
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGQUIT,
            libc::SIGHUP,
            libc::SIGCHLD,
            libc::SIGUSR1,
        ])?;
        epoll.add(signals.as_raw_fd(), Token::Signal.encode(), Interest::Read)?;
        let specs = config.listeners();
        let mut listeners = Vec::new();
        for b in bound {
            let Some(spec) = specs.iter().position(|s| s.addr == b.addr) else {
                continue;
            };
            let l = ListenerSlot {
                sock: b.sock,
                addr: b.addr,
                spec,
                ready: true,
            };
            if let Err(e) = watch_listener(&epoll, &mut listeners, l) {
                log.error(format_args!("epoll_ctl() for {} failed ({e})", b.addr));
            }
        }
        let access = AccessLogs::open(&config, &log);
        if listeners.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "no listener could be bound",
            ));
        }
        let sessions = open_sessions(&config, &log);
        let first = Rc::new(Loaded { config, specs });
        let board = match board {
            Some(b) => b,
            None => Board::new()?,
        };
        let mut shared = Shared::new(epoll, log, POOL_KEEP, board);
        shared.sendfile_left = SENDFILE_PER_TURN;
        shared.access = access;
        shared.site.sessions = sessions;
        shared.splice = std::env::var_os("LOCALSERVER_SPLICE").is_none_or(|v| v != "0");
        shared.limits = limits.or_else(|| new_limit_table(&shared.log));
        Ok(Reactor {
            mode,
            loaded: vec![Some(Rc::clone(&first))],
            loaded_conns: vec![0],
            cur: 0,
            current: first,
            source,
            events: Events::with_capacity(512),
            listeners,
            signals,
            slab: Slab::default(),
            shared,
            timers: Timers::default(),
            clock: Instant::now(),
            accept_resume_at: 0,
            out_of_fds: false,
            stop: false,
            drain_until: None,
            next_sweep: 0,
        })
    }

    /// Run until SIGINT or SIGTERM, or until a SIGQUIT drain is over.
    pub fn run(&mut self) -> io::Result<()> {
        while !self.stop {
            let now = self.now();
            if let Some(until) = self.drain_until
                && (self.slab.active == 0 || now >= until)
            {
                if self.slab.active > 0 {
                    self.shared.log.warn(format_args!(
                        "shutdown_timeout passed: {} connection(s) dropped",
                        self.slab.active
                    ));
                }
                break;
            }
            let timeout = if !self.slab.pending.is_empty() || self.can_accept(now) {
                0
            } else {
                let mut next = self.timers.next();
                if let Some(f) = self.shared.access.next_flush() {
                    next = Some(next.map_or(f, |t| t.min(f)));
                }
                if let Some(until) = self.drain_until {
                    next = Some(next.map_or(until, |t| t.min(until)));
                }
                if self.listeners.iter().any(|l| l.ready) && self.accept_resume_at > now {
                    next =
                        Some(next.map_or(self.accept_resume_at, |t| t.min(self.accept_resume_at)));
                }
                wait_ms(next, now)
            };
            self.shared.epoll.wait(&mut self.events, timeout)?;
            self.dispatch_events();
            let now = self.now();
            self.accept(now);
            self.run_pending(now);
            self.expire(now);
            self.shared.publish_cgi();
            self.shared.access.tick(now, &self.shared.log);
            if now >= self.next_sweep {
                self.next_sweep = now + SWEEP_MS;
                if let Some(store) = self.shared.site.sessions.as_mut() {
                    store.sweep(unix_time());
                }
            }
        }
        self.shared.access.flush_all(&self.shared.log);
        // CONFIG.md: even a fast stop saves state such as sessions.
        if let Some(store) = self.shared.site.sessions.as_mut() {
            store.flush();
        }
        Ok(())
    }

    /// The configuration new connections get.
    fn current(&self) -> Rc<Loaded> {
        Rc::clone(&self.current)
    }

    /// Configuration `i` (the current one if `i` was dropped, which cannot
    /// happen while a connection uses it).
    fn loaded_at(&self, i: u16) -> Rc<Loaded> {
        match self.loaded.get(usize::from(i)).and_then(Option::as_ref) {
            Some(g) => Rc::clone(g),
            None => {
                debug_assert!(false, "configuration {i} dropped while in use");
                self.current()
            }
        }
    }

    /// One connection fewer on configuration `i`; drop it when unused and old.
    fn release_loaded(&mut self, i: u16) {
        let idx = usize::from(i);
        if let Some(n) = self.loaded_conns.get_mut(idx) {
            *n = n.saturating_sub(1);
            if *n == 0
                && i != self.cur
                && let Some(g) = self.loaded.get_mut(idx)
            {
                *g = None;
            }
        }
    }

    /// SIGHUP: read the configuration again; on any error keep the old one.
    fn reload(&mut self) {
        let Some(config) = self.source.reload(&self.shared.log) else {
            return;
        };
        // Where the new configuration goes, settled before anything changes.
        let idx = self
            .loaded
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.loaded.len());
        let Ok(idx16) = u16::try_from(idx) else {
            self.shared.log.error(format_args!(
                "reload failed: too many configurations in use"
            ));
            return;
        };
        let specs = config.listeners();
        // Keep the sockets of addresses still wanted, bind the new ones.
        let mut old = std::mem::take(&mut self.listeners);
        let mut fresh = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            if let Some(pos) = old.iter().position(|l| l.addr == spec.addr) {
                let mut l = old.swap_remove(pos);
                l.spec = i;
                fresh.push(l);
            } else {
                match Listener::bind(spec.addr, LISTEN_BACKLOG, false) {
                    Ok(sock) => fresh.push(ListenerSlot {
                        sock,
                        addr: spec.addr,
                        spec: i,
                        ready: true,
                    }),
                    Err(e) => self
                        .shared
                        .log
                        .error(format_args!("bind() to {} failed ({e})", spec.addr)),
                }
            }
        }
        if fresh.is_empty() {
            self.shared.log.error(format_args!(
                "reload failed: no listener could be bound; the configuration in use is kept"
            ));
            // The old sockets are still open: put them back.
            self.listeners = old;
            self.listeners.extend(fresh);
            return;
        }
        // Sockets no longer wanted close here (and leave epoll).
        drop(old);
        for l in fresh {
            let addr = l.addr;
            if let Err(e) = watch_listener(&self.shared.epoll, &mut self.listeners, l) {
                self.shared
                    .log
                    .error(format_args!("epoll_ctl() for {addr} failed ({e})"));
            }
        }
        // A new folder or bound: reopened, which trims to the new bound.
        if self.shared.site.sessions.is_none()
            || self.current.config.session_store != config.session_store
            || self.current.config.session_max != config.session_max
        {
            if let Some(store) = self.shared.site.sessions.as_mut() {
                store.flush();
            }
            self.shared.site.sessions = open_sessions(&config, &self.shared.log);
        }
        self.shared.site.roots.clear();
        self.shared.access.reconfigure(&config, &self.shared.log);
        let cfgs = Rc::new(Loaded { config, specs });
        if idx == self.loaded.len() {
            self.loaded.push(None);
            self.loaded_conns.push(0);
        }
        if let Some(g) = self.loaded.get_mut(idx) {
            *g = Some(Rc::clone(&cfgs));
        }
        self.current = cfgs;
        let old_cur = self.cur;
        self.cur = idx16;
        if self
            .loaded_conns
            .get(usize::from(old_cur))
            .is_some_and(|n| *n == 0)
            && let Some(g) = self.loaded.get_mut(usize::from(old_cur))
        {
            *g = None;
        }
        // Idle connections move to the new configuration now.
        for slot in 0..self.slab.slots.len() {
            if let Ok(slot) = u32::try_from(slot) {
                self.adopt(slot);
            }
        }
        self.shared
            .log
            .notice(format_args!("configuration reloaded"));
    }

    /// An idle connection on an old configuration moves to the current one,
    /// onto the listener of the same address; without one it closes.
    fn adopt(&mut self, slot: u32) {
        let cur = self.current();
        let Some(s) = self.slab.slots.get_mut(slot as usize) else {
            return;
        };
        if s.cfg == self.cur {
            return;
        }
        let Some(conn) = s.conn.as_mut() else { return };
        if !conn.is_idle() {
            return;
        }
        let old = s.cfg;
        let addr = self
            .loaded
            .get(usize::from(old))
            .and_then(Option::as_ref)
            .and_then(|g| g.specs.get(conn.spec()))
            .map(|spec| spec.addr);
        match addr.and_then(|a| cur.specs.iter().position(|spec| spec.addr == a)) {
            Some(i) => {
                conn.set_spec(i);
                s.cfg = self.cur;
                if let Some(n) = self.loaded_conns.get_mut(usize::from(self.cur)) {
                    *n += 1;
                }
                self.release_loaded(old);
            }
            None => self.close_slot(slot),
        }
    }

    /// Close the connection in `slot` now.
    fn close_slot(&mut self, slot: u32) {
        let Some(s) = self.slab.slots.get_mut(slot as usize) else {
            return;
        };
        if s.conn.is_none() {
            return;
        }
        let cfg = s.cfg;
        if let Some(conn) = s.conn.as_mut() {
            conn.release(&mut self.shared.pool);
            // However the connection ends, its limit_conn count goes once.
            if let (Some(slot), Some(table)) = (conn.take_counted(), self.shared.limits) {
                table.release(slot);
            }
            if conn.is_streaming() {
                self.shared.streams = self.shared.streams.saturating_sub(1);
            }
        }
        self.shared.board.sub(Field::Active, 1);
        self.shared.board.sub(phase_field(s.phase), 1);
        s.vacate();
        self.slab.free.push(slot);
        self.slab.active = self.slab.active.saturating_sub(1);
        self.release_loaded(cfg);
    }

    /// SIGQUIT: stop accepting, close idle connections, let the others
    /// finish their response (then close) within `shutdown_timeout`.
    fn start_drain(&mut self, now: Millis) {
        if self.drain_until.is_some() {
            return;
        }
        let timeout = self.current().config.shutdown_timeout;
        self.drain_until = Some(now + ms(timeout));
        self.shared.draining = true;
        self.listeners.clear();
        for slot in 0..self.slab.slots.len() {
            let Ok(slot) = u32::try_from(slot) else { break };
            let idle = self
                .slab
                .slots
                .get(slot as usize)
                .and_then(|s| s.conn.as_ref())
                .is_some_and(|c| c.is_kept_alive_idle());
            if idle {
                self.close_slot(slot);
            }
        }
    }

    fn now(&self) -> Millis {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX / 2)
    }

    fn worker_connections(&self) -> usize {
        self.current.config.worker_connections
    }

    fn can_accept(&self, now: Millis) -> bool {
        now >= self.accept_resume_at
            && self.slab.active < self.worker_connections()
            && self.listeners.iter().any(|l| l.ready)
    }

    fn dispatch_events(&mut self) {
        for i in 0..self.events.len() {
            let Some(ev) = self.events.get(i) else { break };
            let Some(token) = Token::decode(ev.token) else {
                continue;
            };
            let id = match token {
                Token::Conn(id) | Token::CgiStdout(id) | Token::CgiStdin(id) => id,
                Token::Signal => {
                    self.on_signals();
                    continue;
                }
                Token::Listener(idx) => {
                    // Past the end: an event of this batch from before a
                    // reload (a signal earlier in the batch) renumbered the
                    // listeners; each was marked ready then.
                    if let Some(l) = self.listeners.get_mut(idx) {
                        l.ready = true;
                    }
                    continue;
                }
            };
            let Some(s) = self.slab.slots.get_mut(id.slot as usize) else {
                continue;
            };
            if s.generation != id.generation {
                continue; // a late event for a closed connection
            }
            if let Some(c) = s.conn.as_mut() {
                match token {
                    Token::CgiStdout(_) => c.cgi_event(true, false),
                    Token::CgiStdin(_) => c.cgi_event(false, true),
                    Token::Conn(_) | Token::Listener(_) | Token::Signal => {
                        c.readable |= ev.readable();
                        c.writable |= ev.writable();
                        c.peer_hup |= ev.hangup();
                    }
                }
                if !s.pending {
                    s.pending = true;
                    self.slab.pending.push(id.slot);
                }
            }
        }
    }

    fn on_signals(&mut self) {
        while let Ok(Some(sig)) = self.signals.read() {
            match sig {
                libc::SIGINT | libc::SIGTERM => {
                    self.shared
                        .log
                        .notice(format_args!("signal {sig} received, exiting"));
                    self.stop = true;
                    self.shared.draining = true;
                }
                // CONFIG.md: SIGUSR1 reopens the logs (logrotate). What is
                // buffered goes to the old files first.
                libc::SIGUSR1 => {
                    self.shared.log.notice(format_args!(
                        "signal {sig} (SIGUSR1) received, reopening logs"
                    ));
                    self.shared.access.reopen(&self.shared.log);
                    self.shared.log.reopen();
                }
                libc::SIGQUIT => {
                    self.shared.log.notice(format_args!(
                        "signal {sig} received, shutting down gracefully"
                    ));
                    let now = self.now();
                    self.start_drain(now);
                }
                libc::SIGHUP => {
                    self.shared
                        .log
                        .notice(format_args!("signal {sig} received, reconfiguring"));
                    if self.mode == Mode::Worker {
                        self.shared.log.notice(format_args!(
                            "a worker does not reload: send SIGHUP to the master"
                        ));
                    } else if self.drain_until.is_none() {
                        self.reload();
                    }
                }
                libc::SIGCHLD => {
                    // A script's exit ends its answer: what it started
                    // in its group (a grandchild holding its stdout open)
                    // goes with it, so the output reaches EOF now rather
                    // than at cgi_timeout. The group is signalled while the
                    // leader is still an unreaped zombie (its id cannot be
                    // reused yet), then the leader is reaped.
                    while let Some(pid) = crate::sys::exited_child() {
                        if self.shared.cgi.running.remove(&pid).is_some() {
                            crate::sys::kill_group(pid, libc::SIGKILL);
                        }
                        if !crate::sys::reap_pid(pid) {
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn accept(&mut self, now: Millis) {
        if now < self.accept_resume_at {
            return;
        }
        for li in 0..self.listeners.len() {
            for _ in 0..ACCEPTS_PER_TURN {
                if self.slab.active >= self.worker_connections() {
                    return; // resumed when a connection closes
                }
                let Some(l) = self.listeners.get_mut(li) else {
                    break;
                };
                if !l.ready {
                    break;
                }
                match l.sock.accept() {
                    Ok((sock, peer)) => {
                        let spec = l.spec;
                        if self.out_of_fds {
                            self.out_of_fds = false;
                            self.shared.log.notice(format_args!("accepting again"));
                        }
                        self.shared.board.add(Field::Accepted, 1);
                        self.add_conn(sock, spec, peer, now);
                    }
                    Err(e) => match classify(&e) {
                        ErrorKind::WouldBlock => l.ready = false,
                        ErrorKind::Interrupted | ErrorKind::PeerGone => {}
                        ErrorKind::NoDescriptors => {
                            if !self.out_of_fds {
                                self.out_of_fds = true;
                                self.shared
                                    .log
                                    .error(format_args!("accept4() failed ({e}), pausing accepts"));
                            }
                            self.accept_resume_at = now + ACCEPT_BACKOFF_MS;
                            return;
                        }
                        ErrorKind::Other => {
                            self.shared
                                .log
                                .error(format_args!("accept4() failed ({e})"));
                            break;
                        }
                    },
                }
            }
        }
    }
    fn add_conn(&mut self, sock: Socket, spec: usize, peer: std::net::SocketAddr, now: Millis) {
        // TCP_NODELAY is set by the connection when its writes need it.
        let slot = match self.slab.free.pop() {
            Some(s) => s,
            None => {
                let Ok(s) = u32::try_from(self.slab.slots.len()) else {
                    return;
                };
                self.slab.slots.push(Slot {
                    generation: 0,
                    cfg: 0,
                    conn: None,
                    pending: false,
                    armed: NOT_ARMED,
                    registered: false,
                    phase: Phase::Waiting,
                });
                s
            }
        };
        let deadline = now + ms(self.current().config.client_header_timeout);
        let Some(s) = self.slab.slots.get_mut(slot as usize) else {
            return;
        };
        s.cfg = self.cur;
        if let Some(n) = self.loaded_conns.get_mut(usize::from(self.cur)) {
            *n += 1;
        }
        let mut conn = Conn::new(sock, spec, peer, deadline);
        if self
            .current
            .specs
            .get(spec)
            .is_some_and(|l| l.proxy_protocol)
        {
            conn.await_proxy_header();
        }
        conn.set_serial(self.shared.board.next_serial());
        let phase = conn.phase();
        s.phase = phase;
        // Most clients send their request with the handshake's last ACK:
        // try reading at once instead of waiting a turn for the event.
        conn.readable = true;
        conn.writable = true;
        s.conn = Some(conn);
        s.pending = true;
        s.armed = NOT_ARMED;
        self.slab.pending.push(slot);
        self.slab.active += 1;
        let board = &self.shared.board;
        board.add(Field::Handled, 1);
        board.add(Field::Active, 1);
        board.add(phase_field(phase), 1);
    }

    fn run_pending(&mut self, now: Millis) {
        let mut list =
            std::mem::replace(&mut self.slab.pending, std::mem::take(&mut self.slab.spare));
        let unix_now = unix_time();
        self.shared.sendfile_left = SENDFILE_PER_TURN;
        // Once the turn's file budget is spent, the connections after that
        // point get no file bytes; they go first next turn.
        let mut served = None;
        for &slot in &list {
            let Some(cfg) = self.slab.slots.get(slot as usize).map(|s| s.cfg) else {
                continue;
            };
            let cfgs = self.loaded_at(cfg);
            let Some(s) = self.slab.slots.get_mut(slot as usize) else {
                continue;
            };
            s.pending = false;
            let Some(conn) = s.conn.as_mut() else {
                continue;
            };
            let id = ConnId::new(slot, s.generation);
            let mut env = env(&mut self.shared, &cfgs, (now, unix_now), id, s.phase);
            let result = conn.drive(&mut env);
            self.after_drive(slot, result);
            if served.is_none() && self.shared.sendfile_left == 0 {
                served = Some(self.slab.pending.len());
            }
        }
        if let Some(n) = served {
            self.slab.pending.rotate_left(n);
        }
        list.clear();
        self.slab.spare = list;
    }

    /// Act on what a drive or a timeout said.
    fn after_drive(&mut self, slot: u32, result: Drive) {
        let Some(s) = self.slab.slots.get_mut(slot as usize) else {
            return;
        };
        match result {
            Drive::Close => {
                self.close_slot(slot);
                return;
            }
            Drive::Again => {
                if !s.pending {
                    s.pending = true;
                    self.slab.pending.push(slot);
                }
            }
            Drive::Wait => {}
        }
        let Some(conn) = s.conn.as_ref() else { return };
        // The board follows the connection's phase.
        let phase = conn.phase();
        if phase != s.phase {
            self.shared.board.moved(s.phase, phase);
            s.phase = phase;
        }
        if !s.registered {
            // Added only now: a `Connection: close` request answered in its
            // first drive never costs an epoll_ctl (nor the removal at close).
            // Edge-triggered ADD reports readiness that is already there.
            let token = Token::Conn(ConnId::new(slot, s.generation)).encode();
            if let Err(e) = self
                .shared
                .epoll
                .add(conn.io.as_raw_fd(), token, Interest::ReadWrite)
            {
                self.shared
                    .log
                    .error(format_args!("epoll_ctl() failed ({e})"));
                self.close_slot(slot);
                return;
            }
            s.registered = true;
        }
        // NOT_ARMED is later than any deadline.
        if conn.deadline < s.armed {
            s.armed = conn.deadline;
            self.timers.push(conn.deadline, slot, s.generation);
        }
        let finished = conn.is_kept_alive_idle();
        if s.cfg != self.cur {
            self.adopt(slot);
        } else if finished && self.drain_until.is_some() {
            // Draining: a connection that finished its response goes.
            self.close_slot(slot);
        }
    }

    fn expire(&mut self, now: Millis) {
        let mut budget = EXPIRES_PER_TURN;
        while budget > 0
            && let Some(e) = self.timers.pop_due(now)
        {
            let Some(cfg) = self.slab.slots.get(e.slot as usize).map(|s| s.cfg) else {
                continue;
            };
            let cfgs = self.loaded_at(cfg);
            let Some(s) = self.slab.slots.get_mut(e.slot as usize) else {
                continue;
            };
            if s.generation != e.generation {
                continue;
            }
            if s.armed == e.at {
                s.armed = NOT_ARMED;
            }
            let Some(conn) = s.conn.as_mut() else {
                continue;
            };
            if conn.deadline > now {
                // The deadline moved later since this entry was armed.
                if s.armed == NOT_ARMED {
                    s.armed = conn.deadline;
                    self.timers.push(conn.deadline, e.slot, e.generation);
                }
                continue;
            }
            budget -= 1;
            let unix_now = unix_time();
            let id = ConnId::new(e.slot, s.generation);
            let mut env = env(&mut self.shared, &cfgs, (now, unix_now), id, s.phase);
            let result = conn.on_timeout(&mut env);
            self.after_drive(e.slot, result);
        }
    }
}

/// A `limit_conn`/`limit_req` table with a random hash seed; `None` (no
/// limit applies, logged) if it cannot be mapped.
pub fn new_limit_table(log: &Log) -> Option<LimitTable> {
    let mut seed = [0u8; 8];
    if crate::sys::random_bytes(&mut seed).is_err() {
        seed = unix_time().to_le_bytes();
    }
    match LimitTable::new(u64::from_le_bytes(seed)) {
        Ok(t) => Some(t),
        Err(e) => {
            log.error(format_args!(
                "mmap() of the limit_conn/limit_req table failed ({e}): no such limit applies"
            ));
            None
        }
    }
}

/// Wall clock, seconds since the epoch.
fn unix_time() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Open the session store when some route uses sessions; its timeout is
/// the longest `session_timeout` among the servers that do.
fn open_sessions(config: &Config, log: &Log) -> Option<SessionStore> {
    let timeout = config
        .servers
        .iter()
        .filter(|s| s.session || s.locations.iter().any(|l| l.session))
        .map(|s| s.session_timeout.as_secs())
        .max()?;
    let timeout = i64::try_from(timeout).unwrap_or(i64::MAX);
    match SessionStore::open(
        &config.session_store,
        timeout,
        DEFAULT_MAX_MEMORY,
        config.session_max,
        unix_time(),
    ) {
        Ok(s) => {
            if let Some(mode) = s.loose_mode() {
                log.warn(format_args!(
                    "session store {} has mode {mode:o}: others than its owner can reach the sessions (chmod 700 it)",
                    config.session_store.display()
                ));
            }
            Some(s)
        }
        Err(e) => {
            log.error(format_args!(
                "session store {} cannot be opened ({e}); sessions are off",
                config.session_store.display()
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::token::GENERATION_MASK;
    use super::*;

    #[test]
    fn a_vacated_slot_retires_its_generation() {
        let mut s = Slot {
            generation: GENERATION_MASK,
            cfg: 0,
            conn: None,
            pending: false,
            armed: 5,
            registered: true,
            phase: Phase::Waiting,
        };
        let old = Token::Conn(ConnId::new(3, s.generation)).encode();
        s.vacate();
        // Wraps within the mask, so the token never collides with the kinds.
        assert_eq!(s.generation, 0);
        assert_ne!(Token::Conn(ConnId::new(3, s.generation)).encode(), old);
        assert_eq!(s.armed, NOT_ARMED);
        assert!(!s.registered);
        s.vacate();
        assert_eq!(s.generation, 1);
    }
}
