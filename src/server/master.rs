//! `worker_processes N` (N > 1): a master process that owns the listening
//! sockets and N workers, each an ordinary single-threaded event loop
//! (`Reactor` in `Mode::Worker`).
//!
//! Sockets. For every address the master binds N sockets with
//! `SO_REUSEPORT`, one per worker slot, and keeps all of them open. Worker
//! `i` is forked with its own copy of socket `i` of each address. The kernel
//! spreads new connections over the N sockets; a connection waits in its
//! socket's queue until that slot's worker accepts it. Because the master
//! still holds the socket, a worker that dies loses nothing queued: its
//! replacement, forked onto the same sockets, accepts what is waiting.
//!
//! Signals go to the master. `SIGTERM`/`SIGINT` and `SIGQUIT` are forwarded
//! to every worker (fast and graceful stop); the master exits 0 when all
//! are gone (killing any still there after their bound). `SIGHUP` reads the
//! configuration again: on any error the old one stays; otherwise sockets of
//! addresses still wanted are kept, new ones bound, new workers forked with
//! the new configuration, and the old ones told to finish gracefully
//! (`SIGQUIT`), so no connection is dropped. `SIGUSR1` is forwarded (log
//! reopening). A worker that dies unexpectedly is replaced at once, or after
//! a second if it lived less than one (a worker that cannot start must not
//! make the master spin).
//!
//! `user NAME`: the master stays root (so a reload can bind ports below
//! 1024); each worker drops to NAME right after the fork, before it serves.
//! The master opens the error log as root and each worker starts with a
//! copy of that descriptor. Every log file (error and access) is created
//! and handed to NAME by the master (`log::hand_to_user`) before workers
//! are forked and before `SIGUSR1` is passed on, so a worker running as
//! NAME can open each file again by name even in a folder only root may
//! write.
//!
//! `limit_conn`/`limit_req`: the master maps their table once, before the
//! first fork, so every worker (of every configuration) shares it. Each
//! worker counts its connections in a column of its own; when the master
//! reaps a worker, it sweeps that column, so the connections of a worker
//! that died are not counted for ever.
//!
//! `status`: the master maps the status board (`board.rs`) before the first
//! fork too. A worker counts on the row of its `limit_conn` column; when it
//! is reaped, the row's gauges are zeroed and its counts stay in the totals.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::handlers::limits::{LimitTable, OWNERS};
use crate::sys::{self, Epoll, Events, Forked, Interest, Listener, SignalFd};

use super::Source;
use super::board::Board;
use super::log::Log;
use super::reactor::{Bound, LISTEN_BACKLOG, Mode, Reactor, new_limit_table};

/// Signals the master handles.
const SIGNALS: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGCHLD,
];
/// A worker that dies younger than this is replaced only after it.
const RESPAWN_DELAY: Duration = Duration::from_secs(1);
/// How long a fast stop waits for workers before killing them.
const FAST_STOP_GRACE: Duration = Duration::from_secs(5);

/// The N sockets of one address.
struct AddrSockets {
    addr: SocketAddr,
    socks: Vec<Listener>,
}

#[derive(Clone, Copy)]
struct Worker {
    pid: libc::pid_t,
    started: Instant,
}

struct Master {
    source: Source,
    config: Config,
    log: Log,
    sockets: Vec<AddrSockets>,
    /// Current workers by slot; `None` while a slot waits to be refilled.
    workers: Vec<Option<Worker>>,
    /// Slots to refill, and when.
    respawn: Vec<(usize, Instant)>,
    /// Workers of an older configuration, finishing gracefully.
    retiring: Vec<libc::pid_t>,
    /// Set once a stop began: when remaining workers get `SIGKILL`.
    stop_deadline: Option<Instant>,
    signals: Option<SignalFd>,
    epoll: Option<Epoll>,
    /// The `limit_conn`/`limit_req` table all workers share.
    limits: Option<LimitTable>,
    /// The worker counting in each column of `limits`, and on that row of
    /// `board` (the last column is shared by any worker past `OWNERS - 1`,
    /// and never swept).
    columns: Vec<Option<libc::pid_t>>,
    /// The status counters all workers share; a worker takes it with it.
    board: Option<Board>,
}

/// Run the master until every worker is gone after a stop. Returns the
/// process exit code.
pub fn run(config: Config, source: Source, log: Log) -> i32 {
    let signals = match SignalFd::new(&SIGNALS) {
        Ok(s) => s,
        Err(e) => {
            log.error(format_args!("signalfd() failed ({e})"));
            return 1;
        }
    };
    let epoll = match Epoll::new() {
        Ok(e) => e,
        Err(e) => {
            log.error(format_args!("epoll_create() failed ({e})"));
            return 1;
        }
    };
    if let Err(e) = epoll.add(signals.as_raw_fd(), 0, Interest::Read) {
        log.error(format_args!("epoll_ctl() failed ({e})"));
        return 1;
    }
    let board = match Board::new() {
        Ok(b) => b,
        Err(e) => {
            log.error(format_args!("mmap() of the status counters failed ({e})"));
            return 1;
        }
    };
    let n = config.worker_processes.max(1);
    let sockets = bind_sets(&config, n, &mut Vec::new(), &log);
    if sockets.is_empty() {
        eprintln!("localserver: [emerg] no listener could be bound");
        return 1;
    }
    if let Some(user) = &config.user
        && let Err(e) = sys::lookup_user(user)
    {
        eprintln!("localserver: [emerg] user \"{user}\": {e}");
        return 1;
    }
    let mut m = Master {
        source,
        config,
        log,
        sockets,
        workers: vec![None; n],
        respawn: Vec::new(),
        retiring: Vec::new(),
        stop_deadline: None,
        signals: Some(signals),
        epoll: Some(epoll),
        limits: None,
        columns: vec![None; OWNERS - 1],
        board: Some(board),
    };
    m.limits = new_limit_table(&m.log);
    for slot in 0..n {
        m.start_worker(slot);
    }
    m.log.notice(format_args!(
        "master {} started {n} worker processes",
        std::process::id()
    ));
    m.run()
}

/// For each listener address of `config`, `n` sockets: those of `old`
/// with the same address are moved over (extra ones closed), the rest bound.
/// What stays in `old` is what the new configuration does not want.
fn bind_sets(config: &Config, n: usize, old: &mut Vec<AddrSockets>, log: &Log) -> Vec<AddrSockets> {
    let mut out = Vec::new();
    for spec in config.listeners() {
        let mut set = match old.iter().position(|a| a.addr == spec.addr) {
            Some(pos) => old.swap_remove(pos),
            None => AddrSockets {
                addr: spec.addr,
                socks: Vec::new(),
            },
        };
        set.socks.truncate(n);
        while set.socks.len() < n {
            match Listener::bind(spec.addr, LISTEN_BACKLOG, true) {
                Ok(s) => set.socks.push(s),
                Err(e) => {
                    log.error(format_args!("bind() to {} failed ({e})", spec.addr));
                    break;
                }
            }
        }
        if set.socks.len() == n {
            out.push(set);
        }
    }
    out
}

impl Master {
    fn run(&mut self) -> i32 {
        let mut events = Events::with_capacity(8);
        loop {
            let now = Instant::now();
            if self.stop_deadline.is_some() && self.alive() == 0 {
                self.log.notice(format_args!("all workers gone, exiting"));
                return 0;
            }
            if let Some(deadline) = self.stop_deadline
                && now >= deadline
            {
                self.log.warn(format_args!(
                    "{} worker(s) still running at the stop bound: killed",
                    self.alive()
                ));
                self.signal_all(libc::SIGKILL);
                // Reap what the kill leaves (a short wait, never forever).
                let end = Instant::now() + Duration::from_secs(2);
                while self.alive() > 0 && Instant::now() < end {
                    self.reap();
                    std::thread::sleep(Duration::from_millis(10));
                }
                return 0;
            }
            self.refill(now);
            let wait = self.next_wake(now);
            if let Some(epoll) = &self.epoll {
                let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
                if let Err(e) = epoll.wait(&mut events, ms) {
                    self.log.error(format_args!("epoll_wait() failed ({e})"));
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            self.on_signals();
        }
    }

    /// Workers (current and retiring) still running.
    fn alive(&self) -> usize {
        self.workers.iter().flatten().count() + self.retiring.len()
    }

    fn next_wake(&self, now: Instant) -> Duration {
        let mut next = now + Duration::from_secs(60);
        for &(_, at) in &self.respawn {
            next = next.min(at);
        }
        if let Some(d) = self.stop_deadline {
            next = next.min(d);
        }
        next.saturating_duration_since(now)
    }

    fn signal_all(&self, sig: libc::c_int) {
        for w in self.workers.iter().flatten() {
            sys::kill(w.pid, sig);
        }
        for &pid in &self.retiring {
            sys::kill(pid, sig);
        }
    }

    fn on_signals(&mut self) {
        while let Some(Ok(Some(sig))) = self.signals.as_ref().map(SignalFd::read) {
            match sig {
                libc::SIGCHLD => self.reap(),
                libc::SIGTERM | libc::SIGINT => {
                    self.log
                        .notice(format_args!("signal {sig} received, exiting"));
                    self.respawn.clear();
                    self.signal_all(libc::SIGTERM);
                    let deadline = Instant::now() + FAST_STOP_GRACE;
                    self.stop_deadline =
                        Some(self.stop_deadline.map_or(deadline, |d| d.min(deadline)));
                }
                libc::SIGQUIT => {
                    self.log.notice(format_args!(
                        "signal {sig} received, shutting down gracefully"
                    ));
                    self.respawn.clear();
                    self.signal_all(libc::SIGQUIT);
                    if self.stop_deadline.is_none() {
                        self.stop_deadline =
                            Some(Instant::now() + self.config.shutdown_timeout + FAST_STOP_GRACE);
                    }
                }
                libc::SIGHUP => {
                    self.log
                        .notice(format_args!("signal {sig} received, reconfiguring"));
                    if self.stop_deadline.is_none() {
                        self.reload();
                    }
                }
                // Reopen as root first: the files logrotate moved away are
                // created again here and handed to `user`, and only then
                // can the workers open them by name.
                libc::SIGUSR1 => {
                    self.log.notice(format_args!(
                        "signal {sig} (SIGUSR1) received, reopening logs"
                    ));
                    super::log::hand_to_user(&self.config, &self.log);
                    self.log.reopen();
                    self.signal_all(libc::SIGUSR1);
                }
                _ => {}
            }
        }
    }

    /// Collect exited workers; replace current ones that died unexpectedly.
    fn reap(&mut self) {
        while let Some((pid, status)) = sys::reap() {
            self.free_column(pid);
            if let Some(pos) = self.retiring.iter().position(|&p| p == pid) {
                self.retiring.swap_remove(pos);
                continue;
            }
            let Some(slot) = self
                .workers
                .iter()
                .position(|w| w.is_some_and(|w| w.pid == pid))
            else {
                continue;
            };
            let started = self.workers.get(slot).copied().flatten().map(|w| w.started);
            if let Some(w) = self.workers.get_mut(slot) {
                *w = None;
            }
            if self.stop_deadline.is_some() {
                continue;
            }
            self.log.error(format_args!(
                "worker process {pid} exited ({}); starting a new one",
                describe_status(status)
            ));
            let young = started.is_some_and(|t| t.elapsed() < RESPAWN_DELAY);
            let at = if young {
                Instant::now() + RESPAWN_DELAY
            } else {
                Instant::now()
            };
            self.respawn.push((slot, at));
        }
    }

    fn refill(&mut self, now: Instant) {
        let due: Vec<usize> = self
            .respawn
            .iter()
            .filter(|&&(_, at)| at <= now)
            .map(|&(slot, _)| slot)
            .collect();
        self.respawn.retain(|&(_, at)| at > now);
        for slot in due {
            if self.workers.get(slot).is_some_and(Option::is_none) {
                self.start_worker(slot);
            }
        }
    }

    /// SIGHUP: new configuration, new sockets where needed, new workers;
    /// the old workers finish gracefully.
    fn reload(&mut self) {
        let Some(config) = self.source.reload(&self.log) else {
            return;
        };
        if let Some(user) = &config.user
            && let Err(e) = sys::lookup_user(user)
        {
            self.log.error(format_args!(
                "reload failed: user \"{user}\": {e}; the configuration in use is kept"
            ));
            return;
        }
        let n = config.worker_processes.max(1);
        let mut old = std::mem::take(&mut self.sockets);
        let sockets = bind_sets(&config, n, &mut old, &self.log);
        if sockets.is_empty() {
            self.log.error(format_args!(
                "reload failed: no listener could be bound; the configuration in use is kept"
            ));
            self.sockets = old;
            return;
        }
        // Addresses no longer wanted close here (the old workers' copies
        // close as they finish).
        drop(old);
        self.sockets = sockets;
        // The new workers start with the master's error log: the new one.
        if config.error_log != self.config.error_log
            || config.error_log_level != self.config.error_log_level
        {
            self.log = Log::open(&config.error_log, config.error_log_level);
        }
        super::log::hand_to_user(&config, &self.log);
        self.config = config;
        for w in std::mem::take(&mut self.workers).into_iter().flatten() {
            sys::kill(w.pid, libc::SIGQUIT);
            self.retiring.push(w.pid);
        }
        self.respawn.clear();
        self.workers = vec![None; n];
        for slot in 0..n {
            self.start_worker(slot);
        }
        self.log.notice(format_args!(
            "configuration reloaded: {n} new worker processes"
        ));
    }

    /// A reaped worker's column: swept, and free for the next worker.
    fn free_column(&mut self, pid: libc::pid_t) {
        if let Some(c) = self.columns.iter().position(|&p| p == Some(pid)) {
            if let Some(t) = self.limits {
                t.clear_owner(c);
            }
            if let Some(b) = &self.board {
                b.clear_gauges(c);
            }
            if let Some(col) = self.columns.get_mut(c) {
                *col = None;
            }
        }
    }

    fn start_worker(&mut self, slot: usize) {
        // Its column, swept before it starts (the last one is shared).
        let column = self
            .columns
            .iter()
            .position(Option::is_none)
            .unwrap_or(OWNERS - 1);
        if let Some(t) = self.limits {
            t.clear_owner(column);
        }
        match sys::fork() {
            Ok(Forked::Parent(pid)) => {
                if let Some(c) = self.columns.get_mut(column) {
                    *c = Some(pid);
                }
                if let Some(w) = self.workers.get_mut(slot) {
                    *w = Some(Worker {
                        pid,
                        started: Instant::now(),
                    });
                }
            }
            Ok(Forked::Child) => {
                self.limits = self.limits.map(|t| t.with_owner(column));
                if let Some(b) = self.board.as_mut() {
                    b.use_row(column);
                }
                let code = self.worker_main(slot);
                std::process::exit(code);
            }
            Err(e) => {
                self.log.error(format_args!("fork() failed ({e})"));
                self.respawn.push((slot, Instant::now() + RESPAWN_DELAY));
            }
        }
    }

    /// In the forked child: become worker `slot` and run its loop.
    fn worker_main(&mut self, slot: usize) -> i32 {
        // The master's own descriptors are not the worker's business.
        self.signals = None;
        self.epoll = None;
        // Just forked: the parent is the master (or init, if it died already).
        let master = std::os::unix::process::parent_id();
        let mut bound = Vec::new();
        for set in std::mem::take(&mut self.sockets) {
            let addr = set.addr;
            if let Some(sock) = set.socks.into_iter().nth(slot) {
                bound.push(Bound { sock, addr });
            }
        }
        if let Err(e) = super::become_user(&self.config, &self.log) {
            self.log.error(format_args!("{e}"));
            return 1;
        }
        // After `user`: a change of credentials clears the parent-death
        // signal (prctl(2)), which left workers of a `user` configuration
        // running after their master was killed. If the master died before
        // this point, no signal will come: leave now.
        if let Err(e) = sys::set_parent_death_signal(libc::SIGTERM) {
            self.log
                .warn(format_args!("prctl(PR_SET_PDEATHSIG) failed ({e})"));
        }
        if std::os::unix::process::parent_id() != master {
            return 0;
        }
        // The master's descriptor, opened as root: a worker running as
        // `user` may not be allowed to open the file itself.
        let log = self
            .log
            .try_clone()
            .unwrap_or_else(|| Log::open(&self.config.error_log, self.config.error_log_level));
        let config = self.config.clone();
        let limits = self.limits;
        let mut reactor = match Reactor::new(
            config,
            self.source.clone(),
            log,
            bound,
            (Mode::Worker, limits, self.board.take()),
        ) {
            Ok(r) => r,
            Err(e) => {
                self.log.error(format_args!("worker cannot start: {e}"));
                return 1;
            }
        };
        match reactor.run() {
            Ok(()) => 0,
            Err(e) => {
                self.log.error(format_args!("event loop failed: {e}"));
                1
            }
        }
    }
}

/// `exit code N` or `signal N` from a wait status.
fn describe_status(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit code {}", libc::WEXITSTATUS(status))
    }
}
