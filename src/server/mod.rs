//! The reactor: the event loop, the token slab (`token` lays out what an
//! event carries), timers, buffers and the connection state machine. `run`
//! is the whole server once the configuration is loaded.

pub mod access;
pub mod board;
pub mod buffer;
pub mod cgi;
pub mod conn;
pub mod inbound;
pub mod log;
pub mod master;
pub mod reactor;
pub mod timer;
pub mod token;
pub mod transport;

use std::path::PathBuf;

use crate::config::{self, Config};
use crate::sys;

/// Where the configuration comes from, to read it again on `SIGHUP`.
#[derive(Clone, Debug)]
pub enum Source {
    /// A file, and its name as the user gave it (for messages).
    File { path: PathBuf, shown: String },
    /// The built-in default, serving `www` under this folder.
    Builtin { cwd: PathBuf },
}

impl Source {
    /// Read and check the configuration: the config and its warnings, or
    /// every error (as `-t` prints them).
    pub fn load(&self) -> Result<(Config, Vec<String>), Vec<String>> {
        match self {
            Source::File { path, shown } => config::load(path, shown)
                .map(|(c, w)| (c, w.into_iter().map(|w| w.to_string()).collect()))
                .map_err(|errors| errors.iter().map(ToString::to_string).collect()),
            Source::Builtin { cwd } => Ok((config::builtin_default(cwd), Vec::new())),
        }
    }

    /// For `SIGHUP`: the new configuration, its warnings logged; or `None`
    /// with every error logged and the reload declared failed.
    pub fn reload(&self, log: &log::Log) -> Option<Config> {
        match self.load() {
            Ok((config, warnings)) => {
                for w in warnings {
                    log.warn(format_args!("{w}"));
                }
                Some(config)
            }
            Err(errors) => {
                for e in errors {
                    log.error(format_args!("{e}"));
                }
                log.error(format_args!(
                    "reload failed: the configuration in use is kept"
                ));
                None
            }
        }
    }
}

/// Serve `config` until a stop signal. Returns the process exit code.
pub fn run(config: Config, source: Source) -> i32 {
    let log = log::Log::open(&config.error_log, config.error_log_level);
    if let Err(e) = sys::ignore_sigpipe() {
        log.error(format_args!("signal(SIGPIPE) failed ({e})"));
    }
    // CONFIG.md worker_connections: the soft fd limit is raised to the hard one.
    match sys::raise_nofile_limit() {
        Ok(n) if (n as usize) < config.worker_connections + 16 => log.warn(format_args!(
            "{n} descriptors allowed, fewer than worker_connections {}",
            config.worker_connections
        )),
        Ok(_) => {}
        Err(e) => log.warn(format_args!("getrlimit(RLIMIT_NOFILE) failed ({e})")),
    }
    if sys::is_root() && config.user.is_none() {
        log.warn(format_args!(
            "running as root: set `user NAME;` to serve (and run CGI) as another user"
        ));
    }
    if sys::is_root()
        && let Some(name) = &config.user
        && sys::lookup_user(name).is_ok_and(|(uid, _)| uid == 0)
    {
        log.warn(format_args!(
            "\"user {name}\" is root: the server (and every CGI) keeps running as root"
        ));
    }
    // Before any privilege is dropped: the log files exist and belong to
    // `user`, so the unprivileged process opens them (the access logs) and
    // can open them again on SIGUSR1 (a master does this again itself).
    log::hand_to_user(&config, &log);
    // Once, before any worker serves (CONFIG.md "Serving what users uploaded").
    for e in crate::handlers::upload::remove_leftovers(&config) {
        log.warn(format_args!("{e}"));
    }
    if config.worker_processes > 1 {
        return master::run(config, source, log);
    }
    let bound = reactor::bind_all(&config.listeners(), false, &log);
    if bound.is_empty() {
        eprintln!("localserver: [emerg] no listener could be bound");
        return 1;
    }
    if let Err(e) = become_user(&config, &log) {
        eprintln!("localserver: [emerg] {e}");
        return 1;
    }
    let mut reactor = match reactor::Reactor::new(
        config,
        source,
        log,
        bound,
        (reactor::Mode::Single, None, None),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("localserver: [emerg] {e}");
            return 1;
        }
    };
    match reactor.run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("localserver: [emerg] event loop failed: {e}");
            1
        }
    }
}

/// `user NAME;`: when running as root, become NAME (after the listeners are
/// bound). Not root: nothing to do (nginx warns and goes on likewise).
pub fn become_user(config: &Config, log: &log::Log) -> Result<(), String> {
    let Some(name) = &config.user else {
        return Ok(());
    };
    if !sys::is_root() {
        log.warn(format_args!(
            "the \"user\" directive makes sense only when started as root"
        ));
        return Ok(());
    }
    let (uid, gid) = sys::lookup_user(name).map_err(|e| format!("user \"{name}\": {e}"))?;
    sys::drop_privileges(uid, gid).map_err(|e| format!("cannot become user \"{name}\" ({e})"))
}
