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
pub mod log_format;
mod mime;
mod route;
mod tree;
mod values;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http::MethodSet;

pub use route::ListenerSpec;

/// Default `session_max`: session files kept before the oldest go.
pub const DEFAULT_SESSION_MAX: usize = 100_000;

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
    let dir = if parent.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_default()
    } else if parent.is_absolute() {
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
    /// Not logged (`access_log off`).
    Off,
    /// Standard output (`access_log stdout`).
    Stdout,
    /// Standard error (`stderr`).
    Stderr,
    /// A file, absolute when the configuration's folder was.
    File(PathBuf),
}

/// Where a server's or location's access log goes, and in which format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLog {
    pub target: LogTarget,
    /// A `log_format`; `None` is nginx's `combined`, built in.
    pub format: Option<std::sync::Arc<log_format::LogFormat>>,
}

impl AccessLog {
    /// `access_log off`.
    pub fn off() -> AccessLog {
        AccessLog {
            target: LogTarget::Off,
            format: None,
        }
    }
}

/// One `allow` or `deny` rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRule {
    /// `allow` (else `deny`).
    pub allow: bool,
    pub net: Net,
}

/// The addresses a rule names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// `all`.
    All,
    /// An IPv4 network: the address (its host bits zero) and prefix length.
    V4(u32, u8),
    /// An IPv6 network.
    V6(u128, u8),
}

impl Net {
    /// `all`, `ADDR` or `ADDR/BITS` (IPv4 or IPv6); the host bits of a
    /// network are ignored. `None` when it is none of these.
    pub fn parse(s: &str) -> Option<Net> {
        if s == "all" {
            return Some(Net::All);
        }
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (s, None),
        };
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => {
                let bits = bits.unwrap_or(32);
                (bits <= 32).then(|| Net::V4(u32::from(a) & mask32(bits), bits))
            }
            IpAddr::V6(a) => {
                let bits = bits.unwrap_or(128);
                (bits <= 128).then(|| Net::V6(u128::from(a) & mask128(bits), bits))
            }
        }
    }

    /// Whether `ip` lies in the network. An IPv4-mapped IPv6 address (a
    /// v4 client of a `[::]` listener) is its IPv4 address, as nginx takes it.
    pub fn contains(self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self, ip) {
            (Net::All, _) => true,
            (Net::V4(net, bits), IpAddr::V4(a)) => u32::from(a) & mask32(bits) == net,
            (Net::V6(net, bits), IpAddr::V6(a)) => u128::from(a) & mask128(bits) == net,
            _ => false,
        }
    }
}

fn mask32(bits: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(bits.min(32)))
        .unwrap_or(0)
}

fn mask128(bits: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(bits.min(128)))
        .unwrap_or(0)
}

/// Whether `rules` let `ip` in: the first rule that matches decides;
/// none matching (or no rules) allows.
pub fn access_allows(rules: &[AccessRule], ip: IpAddr) -> bool {
    rules
        .iter()
        .find(|r| r.net.contains(ip))
        .is_none_or(|r| r.allow)
}

/// `error_log` levels, most verbose first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `notice`
    Notice,
    /// `warn` (the default)
    Warn,
    /// `error`
    Error,
    /// `crit` (also given as `alert` or `emerg`)
    Crit,
}

/// The whole, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The configuration file as named on the command line (or
    /// `"(built-in default)"`), for messages.
    pub file: String,
    /// `error_log` target; default `stderr`.
    pub error_log: LogTarget,
    /// `error_log` level; default `warn`.
    pub error_log_level: Level,
    /// Default 75s.
    pub keepalive_timeout: Duration,
    /// Default 10000.
    pub keepalive_requests: u64,
    /// Default 60s.
    pub client_header_timeout: Duration,
    /// Default 60s.
    pub client_body_timeout: Duration,
    /// Default 60s.
    pub send_timeout: Duration,
    /// Default 30s.
    pub cgi_timeout: Duration,
    /// `0` means `auto` (one per CPU).
    pub worker_processes: usize,
    /// Default 16384.
    pub worker_connections: usize,
    /// Default 64.
    pub cgi_max: usize,
    /// Default 30s.
    pub shutdown_timeout: Duration,
    /// `user NAME`; none by default.
    pub user: Option<String>,
    /// Default `sessions` beside the configuration file (`<cwd>/sessions`
    /// for the built-in default).
    pub session_store: PathBuf,
    /// `session_max N`: most session files the store keeps; default
    /// `DEFAULT_SESSION_MAX`. Past it, creating a session removes the one
    /// used longest ago (expired ones first).
    pub session_max: usize,
    /// Extension → MIME type.
    pub types: MimeTypes,
    /// In configuration order; `ListenerSpec::servers` indexes into it.
    pub servers: Vec<Server>,
}

/// The `types { }` table: extension (lowercase, no dot) → MIME type, and the
/// type for anything else. Starts as the built-in table; a `types` block
/// replaces it, as in nginx.
#[derive(Clone, Debug)]
pub struct MimeTypes {
    /// Sorted by extension for binary search.
    pub by_ext: Vec<(String, String)>,
    /// `default_type`; `application/octet-stream` by default.
    pub default_type: String,
}

/// One `listen` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// The address to bind.
    pub addr: SocketAddr,
    /// `listen ... default_server`.
    pub default_server: bool,
    /// `listen ... proxy_protocol`: connections start with a PROXY
    /// protocol header (the same on every `listen` of the address).
    pub proxy_protocol: bool,
    /// Source line, for messages.
    pub line: u32,
}

/// One `server { }` block.
#[derive(Clone, Debug)]
pub struct Server {
    /// Never empty: `0.0.0.0:80` when the block has no `listen`.
    pub listen: Vec<Listen>,
    /// Lowercased, trailing dot removed; `""` is a name too.
    pub names: Vec<String>,
    /// Default `off` (the server level's: for a head that could not be
    /// routed; each location has its effective one).
    pub access_log: AccessLog,
    /// The server-level `session` (each location has its effective value).
    pub session: bool,
    /// Default 30m.
    pub session_timeout: Duration,
    /// What a session id of this server is signed with, so that another
    /// server block treats it as unknown: its names, and its rank among the
    /// blocks with the same names (stable across restarts and reloads that
    /// keep them, whatever the ports).
    pub session_scope: String,
    /// `set_real_ip_from`: the proxies trusted to name the client.
    pub real_ip_from: Vec<Net>,
    /// `real_ip_header`, lowercased (default `x-real-ip`); `proxy_protocol`
    /// names the connection's PROXY header instead of a field.
    pub real_ip_header: String,
    /// Locations, with an implicit `location /` built from the server-level
    /// directives appended when the block has no `location /` of its own.
    pub locations: Vec<Location>,
}

/// `return CODE [URL|TEXT]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Return {
    /// 100..=599.
    pub code: u16,
    /// For 301/302/303/307/308 the URL, otherwise the optional body text.
    pub text: Option<String>,
}

/// What a `status` route answers (CONFIG.md `status on|prometheus`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusPage {
    /// Not a status route.
    #[default]
    Off,
    /// `on`: nginx `stub_status` text.
    Text,
    /// `prometheus`: the same counters, and more, for a Prometheus scrape.
    Prometheus,
}

/// One `location [=] PREFIX { }` block, with every inherited value resolved.
#[derive(Clone, Debug)]
pub struct Location {
    /// Starts with `/`.
    pub prefix: String,
    /// `location = PREFIX`.
    pub exact: bool,
    /// Not written by the user: stands for the server-level directives.
    pub implicit: bool,
    /// `allowed_methods`; default `GET HEAD`.
    pub methods: MethodSet,
    /// Inherited; `None` when the location has `alias` (they are exclusive).
    pub root: Option<PathBuf>,
    /// Only ever set by the location itself.
    pub alias: Option<PathBuf>,
    /// Default `["index.html"]`; an inner block's list replaces the outer one.
    pub index: Vec<String>,
    /// Default off.
    pub autoindex: bool,
    /// `return`, if any.
    pub ret: Option<Return>,
    /// Status code → page; location entries override server ones per code.
    pub error_pages: Vec<(u16, ErrorPage)>,
    /// Bytes; `0` means no limit.
    pub client_max_body_size: u64,
    /// Extension with its dot (`.py`) → interpreter; location wins per extension.
    pub cgi: Vec<(String, PathBuf)>,
    /// `upload_store DIR`.
    pub upload_store: Option<PathBuf>,
    /// Default off.
    pub gzip_static: bool,
    /// `brotli_static`: `FILE.br` for clients that accept br. Default off.
    pub brotli_static: bool,
    /// `zstd_static`: `FILE.zst` for clients that accept zstd. Default off.
    pub zstd_static: bool,
    /// `max_ranges N`: more satisfiable ranges than N get the whole file;
    /// `None` (the default) is no limit.
    pub max_ranges: Option<u64>,
    /// Server entries first, then the location's own.
    pub add_headers: Vec<AddHeader>,
    /// `None` is `expires off` (the default).
    pub expires: Option<Duration>,
    /// `status on|prometheus`: answer with the server's counters.
    pub status: StatusPage,
    /// `session on`.
    pub session: bool,
    /// `internal`: a client's own request answers 404; only `error_page`,
    /// `try_files` and `X-Accel-Redirect` reach it. Never inherited.
    pub internal: bool,
    /// `try_files FILE ... LAST`; empty when not set.
    pub try_files: Vec<TryFile>,
    /// The effective `access_log` (a location's replaces its server's).
    pub access_log: AccessLog,
    /// `server_tokens` (default on): the `Server` header names the version.
    pub server_tokens: bool,
    /// `allow`/`deny` rules, in order (a block's own replace its outer
    /// block's, as in nginx); empty: everyone.
    pub access: Vec<AccessRule>,
    /// `limit_rate`: bytes per second of a response body; 0 is no limit.
    pub limit_rate: u64,
    /// `limit_rate_after`: bytes of a body sent at full speed first.
    pub limit_rate_after: u64,
    /// `limit_conn N`: connections at once per client address.
    pub limit_conn: Option<u32>,
    /// `limit_req RATE [burst=N] [nodelay]`.
    pub limit_req: Option<LimitReq>,
    /// Default 503.
    pub limit_conn_status: u16,
    /// Default 503.
    pub limit_req_status: u16,
}

/// The target of one `error_page CODE ... [=[NEW]] URI`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorPage {
    pub uri: String,
    /// The status the answer takes.
    pub status: ErrorStatus,
}

/// The status of an `error_page` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStatus {
    /// No `=`: the original error's.
    Original,
    /// `=NEW`.
    Set(u16),
    /// `=` alone: the status of the redirected answer.
    Target,
}

impl ErrorPage {
    /// A page answered with the original status.
    pub fn original(uri: &str) -> ErrorPage {
        ErrorPage {
            uri: uri.to_string(),
            status: ErrorStatus::Original,
        }
    }
}

/// One argument of `try_files`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TryFile {
    /// A FILE to test (`$uri` not yet substituted); it names a folder when
    /// it ends in `/`.
    File(String),
    /// The last argument `=CODE`.
    Status(u16),
    /// The last argument URI: an internal redirect.
    Redirect(String),
}

/// `limit_req RATE [burst=N] [nodelay];` (nginx's leaky bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitReq {
    /// Thousandths of a request per second (`10r/s` and `600r/m` are 10000).
    pub rate: u64,
    /// Requests beyond the rate that may wait (or, with `nodelay`, pass).
    pub burst: u32,
    /// Excess requests within the burst are answered at once.
    pub nodelay: bool,
}

/// One `add_header NAME VALUE [always];`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddHeader {
    pub name: String,
    pub value: String,
    /// nginx's `always`, accepted so nginx configurations read unchanged.
    /// It changes nothing: CONFIG.md adds the header to every response of
    /// the route, errors included, where nginx without it adds only to
    /// 200, 201, 204, 206, 301, 302, 303, 304, 307 and 308.
    pub always: bool,
}

/// One problem found in a configuration, reported as
/// `localserver: [emerg] MESSAGE in FILE:LINE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// nginx-style text, e.g. `unknown directive "x"`.
    pub message: String,
    /// The main file as given on the command line, or an included file's path.
    pub file: String,
    /// 1-based; 0 when the file itself could not be read.
    pub line: u32,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}:{}", self.message, self.file, self.line)
    }
}

#[cfg(test)]
mod tests;
