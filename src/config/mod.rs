//! The configuration: lexer → directive table → typed, validated `Config`.
//! Pure apart from reading the files named by `-c` and `include` (and
//! checking that `root`/`alias`/`upload_store` folders exist, for warnings).
//!
//! `lexer` makes tokens, `tree` builds directive trees and expands
//! `include`, `directives` is the table of every directive and its value
//! parser, `build` resolves inheritance and validates, `route` answers the
//! per-request questions (listener, virtual host, location), `mime` holds the
//! types table. The CONFIG.md contract is the reference for all of it.
//!
//! Invariants of a built `Config`: every `Location` carries its effective
//! values (nothing left to inherit at request time); every `Server` has at
//! least one `listen` and a prefix `location /`; paths are absolute when the
//! configuration's folder was; `alias` and `root` are never both set on one
//! location.

mod build;
mod directives;
mod lexer;
mod mime;
mod route;
mod tree;
mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http::MethodSet;

pub use route::ListenerSpec;

/// Load and validate a file; `shown` is the name as given on the command line (used in messages).
///
/// Relative paths in it resolve against its folder (made absolute with the
/// current folder when `path` is relative). `Ok` carries the warnings, each
/// formatted `MESSAGE in FILE:LINE`; `Err` carries every error found.
pub fn load(path: &Path, shown: &str) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
    let bytes = std::fs::read(path).map_err(|e| {
        vec![ConfigError {
            message: format!("open() \"{}\" failed ({e})", path.display()),
            file: shown.to_string(),
            line: 0,
        }]
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let parent = path.parent().unwrap_or(Path::new(""));
    let dir = if parent.is_absolute() {
        parent.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| parent.to_path_buf(), |cwd| cwd.join(parent))
    };
    build::build(&text, shown, &dir, true)
}

/// Parse from text (tests), `dir` is the folder relative paths resolve against.
pub fn parse_str(
    text: &str,
    shown: &str,
    dir: &Path,
) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
    build::build(text, shown, dir, true)
}

/// The built-in default: serves `<cwd>/www` on 127.0.0.1:8080 (everything else at its default).
pub fn builtin_default(cwd: &Path) -> Config {
    build::builtin(cwd)
}

/// Where a log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Off,
    Stdout,
    Stderr,
    File(PathBuf),
}

/// `error_log` levels, most verbose first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Notice,
    Warn,
    Error,
    Crit,
}

/// The whole, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The configuration file as named on the command line (or
    /// `"(built-in default)"`), for messages.
    pub file: String,
    pub error_log: LogTarget,
    pub error_log_level: Level,
    pub keepalive_timeout: Duration,
    pub keepalive_requests: u64,
    pub client_header_timeout: Duration,
    pub client_body_timeout: Duration,
    pub send_timeout: Duration,
    pub cgi_timeout: Duration,
    /// `0` means `auto` (one per CPU).
    pub worker_processes: usize,
    pub worker_connections: usize,
    pub cgi_max: usize,
    pub shutdown_timeout: Duration,
    pub user: Option<String>,
    pub session_store: PathBuf,
    pub types: MimeTypes,
    pub servers: Vec<Server>,
}

/// The `types { }` table: extension (lowercase, no dot) → MIME type, and the
/// type for anything else. Starts as the built-in table; a `types` block
/// replaces it, as in nginx.
#[derive(Clone, Debug)]
pub struct MimeTypes {
    /// Sorted by extension for binary search.
    pub by_ext: Vec<(String, String)>,
    pub default_type: String,
}

/// One `listen` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    pub default_server: bool,
    /// Source line, for messages.
    pub line: u32,
}

/// One `server { }` block.
#[derive(Clone, Debug)]
pub struct Server {
    pub listen: Vec<Listen>,
    /// Lowercased, trailing dot removed; `""` is a name too.
    pub names: Vec<String>,
    pub access_log: LogTarget,
    pub session: bool,
    pub session_timeout: Duration,
    /// Locations, with an implicit `location /` built from the server-level
    /// directives appended when the block has no `location /` of its own.
    pub locations: Vec<Location>,
}

/// `return CODE [URL|TEXT]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Return {
    pub code: u16,
    /// For 301/302/303/307/308 the URL, otherwise the optional body text.
    pub text: Option<String>,
}

/// One `location [=] PREFIX { }` block, with every inherited value resolved.
#[derive(Clone, Debug)]
pub struct Location {
    pub prefix: String,
    /// `location = PREFIX`.
    pub exact: bool,
    /// Not written by the user: stands for the server-level directives.
    pub implicit: bool,
    pub methods: MethodSet,
    pub root: Option<PathBuf>,
    pub alias: Option<PathBuf>,
    pub index: Vec<String>,
    pub autoindex: bool,
    pub ret: Option<Return>,
    /// Status code → URI; location entries override server ones per code.
    pub error_pages: Vec<(u16, String)>,
    /// Bytes; `0` means no limit.
    pub client_max_body_size: u64,
    /// Extension with its dot (`.py`) → interpreter; location wins per extension.
    pub cgi: Vec<(String, PathBuf)>,
    pub upload_store: Option<PathBuf>,
    pub gzip_static: bool,
    /// Server entries first, then the location's own.
    pub add_headers: Vec<(String, String)>,
    pub expires: Option<Duration>,
    pub status: bool,
    pub session: bool,
}

/// One problem found in a configuration, reported as
/// `localserver: [emerg] MESSAGE in FILE:LINE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
    pub file: String,
    pub line: u32,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}:{}", self.message, self.file, self.line)
    }
}
