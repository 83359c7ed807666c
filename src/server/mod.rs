//! The reactor: the event loop, the token slab, timers, buffers and the
//! connection state machine. `run` is the whole server once the
//! configuration is loaded.

pub mod access;
pub mod buffer;
pub mod cgi;
pub mod conn;
pub mod inbound;
pub mod log;
pub mod reactor;
pub mod session;
pub mod timer;
pub mod transport;

use crate::config::Config;
use crate::sys;

/// Serve `config` until a stop signal. Returns the process exit code.
pub fn run(config: Config) -> i32 {
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
    if config.worker_processes != 1 {
        log.warn(format_args!(
            "worker_processes other than 1 is not supported yet; running one"
        ));
    }
    let mut reactor = match reactor::Reactor::new(config, log) {
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
