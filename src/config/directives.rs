//! The directive table: for each name, the blocks it may stand in, how many
//! arguments it takes, whether it may repeat, and how its value is parsed.
//!
//! A directive writes into the `Block` it stands in. The three kinds of
//! block (top level, `server`, `location`) share one `Block` type: the table
//! guarantees each directive only reaches the fields meant for its blocks.
//! Values that flow down (top level → server → location) live in `Scope`,
//! and are merged by `Scope::inherit` once the whole file has been read.
//! A handler returns the message of what is wrong; the walker adds FILE:LINE.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::log_format::{Escape, LogFormat, compile, escape_arg};
use super::values;
use super::{
    AccessRule, AddHeader, ErrorPage, ErrorStatus, Level, LimitReq, Listen, LogTarget, Net, Return,
    StatusPage, TryFile,
};
use crate::http::{Method, MethodSet};

/// The top level.
pub(crate) const MAIN: u8 = 1;
/// A `server { }` block.
pub(crate) const SERVER: u8 = 2;
/// A `location { }` block.
pub(crate) const LOCATION: u8 = 4;
/// Where a location directive may stand: its own block and those enclosing it.
const ANY: u8 = MAIN | SERVER | LOCATION;

/// "No upper bound" for an argument count.
const MANY: usize = usize::MAX;

/// The values that are inherited top level → server → location. `None` /
/// empty means "not set in this block".
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope {
    pub methods: Option<MethodSet>,
    pub root: Option<PathBuf>,
    pub alias: Option<PathBuf>,
    pub index: Option<Vec<String>>,
    pub autoindex: Option<bool>,
    pub ret: Option<Return>,
    pub error_pages: Vec<(u16, ErrorPage)>,
    pub client_max_body_size: Option<u64>,
    pub cgi: Vec<(String, PathBuf)>,
    pub upload_store: Option<PathBuf>,
    pub gzip_static: Option<bool>,
    pub brotli_static: Option<bool>,
    pub zstd_static: Option<bool>,
    pub max_ranges: Option<u64>,
    pub add_headers: Vec<AddHeader>,
    /// `Some(None)` is `expires off`.
    pub expires: Option<Option<Duration>>,
    pub status: Option<StatusPage>,
    pub server_tokens: Option<bool>,
    /// `allow`/`deny` rules given in this block, in order.
    pub access: Option<Vec<AccessRule>>,
    pub session: Option<bool>,
    pub session_timeout: Option<Duration>,
    /// `set_real_ip_from` entries given in this block.
    pub real_ip_from: Option<Vec<Net>>,
    pub real_ip_header: Option<String>,
    /// `access_log TARGET [FORMAT]`, and where it stands (an unknown
    /// format is reported there).
    pub access_log: Option<(LogTarget, Option<String>, Pos)>,
    /// `internal` (a location's own, never inherited).
    pub internal: bool,
    pub try_files: Option<Vec<TryFile>>,
    pub limit_rate: Option<u64>,
    pub limit_rate_after: Option<u64>,
    pub limit_conn: Option<u32>,
    pub limit_req: Option<LimitReq>,
    pub limit_conn_status: Option<u16>,
    pub limit_req_status: Option<u16>,
    /// The folders this block's own `root`, `alias` and `upload_store`
    /// serve, with the directive's name and place (not inherited: for the
    /// check that no `session_store` lies inside one).
    pub served: Vec<(PathBuf, &'static str, Pos)>,
}

/// Replaces or appends `(key, value)` entries of `inner` into `outer`'s list:
/// the inner block wins per key, outer order is kept.
fn merge_by_key<K: PartialEq + Clone, V: Clone>(outer: &[(K, V)], inner: &[(K, V)]) -> Vec<(K, V)> {
    let mut out = outer.to_vec();
    for (k, v) in inner {
        match out.iter_mut().find(|(ok, _)| ok == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

impl Scope {
    /// The effective values of an inner block: its own, else the outer ones.
    /// `error_page` and `cgi` merge per code / extension (inner wins);
    /// `add_header` lists outer entries first. `alias` never flows down (it
    /// is only allowed in a location), and a location with `alias` has no
    /// `root`: the two are exclusive.
    pub(crate) fn inherit(&self, outer: &Scope) -> Scope {
        Scope {
            methods: self.methods.or(outer.methods),
            root: if self.alias.is_some() {
                None
            } else {
                self.root.clone().or_else(|| outer.root.clone())
            },
            alias: self.alias.clone(),
            index: self.index.clone().or_else(|| outer.index.clone()),
            autoindex: self.autoindex.or(outer.autoindex),
            ret: self.ret.clone().or_else(|| outer.ret.clone()),
            error_pages: merge_by_key(&outer.error_pages, &self.error_pages),
            client_max_body_size: self.client_max_body_size.or(outer.client_max_body_size),
            cgi: merge_by_key(&outer.cgi, &self.cgi),
            upload_store: self
                .upload_store
                .clone()
                .or_else(|| outer.upload_store.clone()),
            gzip_static: self.gzip_static.or(outer.gzip_static),
            brotli_static: self.brotli_static.or(outer.brotli_static),
            zstd_static: self.zstd_static.or(outer.zstd_static),
            max_ranges: self.max_ranges.or(outer.max_ranges),
            add_headers: outer
                .add_headers
                .iter()
                .chain(&self.add_headers)
                .cloned()
                .collect(),
            expires: self.expires.or(outer.expires),
            status: self.status.or(outer.status),
            server_tokens: self.server_tokens.or(outer.server_tokens),
            access: self.access.clone().or_else(|| outer.access.clone()),
            session: self.session.or(outer.session),
            session_timeout: self.session_timeout.or(outer.session_timeout),
            real_ip_from: self
                .real_ip_from
                .clone()
                .or_else(|| outer.real_ip_from.clone()),
            real_ip_header: self
                .real_ip_header
                .clone()
                .or_else(|| outer.real_ip_header.clone()),
            access_log: self.access_log.clone().or_else(|| outer.access_log.clone()),
            internal: self.internal,
            try_files: self.try_files.clone().or_else(|| outer.try_files.clone()),
            limit_rate: self.limit_rate.or(outer.limit_rate),
            limit_rate_after: self.limit_rate_after.or(outer.limit_rate_after),
            limit_conn: self.limit_conn.or(outer.limit_conn),
            limit_req: self.limit_req.or(outer.limit_req),
            limit_conn_status: self.limit_conn_status.or(outer.limit_conn_status),
            limit_req_status: self.limit_req_status.or(outer.limit_req_status),
            served: self.served.clone(),
        }
    }
}

/// Where a `listen` or `server_name` stood, for later messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pos {
    pub src: usize,
    pub line: u32,
}

/// A `location` block as read, before inheritance.
#[derive(Clone, Debug)]
pub(crate) struct LocDraft {
    pub prefix: String,
    pub exact: bool,
    pub scope: Scope,
}

/// A `server` block as read, before inheritance and validation.
#[derive(Clone, Debug)]
pub(crate) struct ServerDraft {
    pub pos: Pos,
    pub scope: Scope,
    pub listen: Vec<(Listen, Pos)>,
    pub names: Option<(Vec<String>, Pos)>,
    pub locations: Vec<LocDraft>,
}

/// Everything a block may set. Top-level fields stay `None` in other blocks.
#[derive(Clone, Debug, Default)]
pub(crate) struct Block {
    /// `MAIN`, `SERVER` or `LOCATION`.
    pub ctx: u8,
    /// Non-repeatable directives already given here.
    pub seen: Vec<&'static str>,
    pub scope: Scope,
    pub error_log: Option<(LogTarget, Level)>,
    /// `log_format`s, in order.
    pub log_formats: Vec<(std::sync::Arc<LogFormat>, Pos)>,
    pub keepalive_timeout: Option<Duration>,
    pub keepalive_requests: Option<u64>,
    pub client_header_timeout: Option<Duration>,
    pub client_body_timeout: Option<Duration>,
    pub send_timeout: Option<Duration>,
    pub cgi_timeout: Option<Duration>,
    /// `Some(0)` is `auto`.
    pub worker_processes: Option<u64>,
    pub worker_connections: Option<u64>,
    pub cgi_max: Option<u64>,
    pub shutdown_timeout: Option<Duration>,
    pub user: Option<String>,
    pub session_store: Option<(PathBuf, Pos)>,
    pub session_max: Option<u64>,
    /// Set once a `types` block is seen: it replaces the built-in table.
    pub types: Option<BTreeMap<String, String>>,
    pub default_type: Option<String>,
    pub servers: Vec<ServerDraft>,
    pub listen: Vec<(Listen, Pos)>,
    pub names: Option<(Vec<String>, Pos)>,
    pub locations: Vec<LocDraft>,
}

impl Block {
    /// An empty block of kind `ctx`.
    pub(crate) fn new(ctx: u8) -> Block {
        Block {
            ctx,
            ..Block::default()
        }
    }
}

/// What a handler knows about where its directive stands.
pub(crate) struct Place<'a> {
    /// The folder relative paths resolve against.
    pub dir: &'a Path,
    pub file: &'a str,
    pub line: u32,
    pub src: usize,
    pub warnings: &'a mut Vec<String>,
}

impl Place<'_> {
    /// Where this directive stands.
    pub(crate) fn pos(&self) -> Pos {
        Pos {
            src: self.src,
            line: self.line,
        }
    }

    /// Records a warning at this directive.
    pub(crate) fn warn(&mut self, message: String) {
        self.warnings
            .push(format!("{message} in {}:{}", self.file, self.line));
    }
}

/// Parses a directive's arguments (`name` is the directive's name) into the block.
pub(crate) type Handler = fn(&mut Place<'_>, &str, &[String], &mut Block) -> Result<(), String>;

/// How a directive's value is handled.
pub(crate) enum Kind {
    /// `on|off` into a field.
    Flag(fn(&mut Block) -> &mut Option<bool>),
    /// A duration into a field.
    Time(fn(&mut Block) -> &mut Option<Duration>),
    /// A number, at least the given minimum, into a field.
    Count(u64, fn(&mut Block) -> &mut Option<u64>),
    /// Anything else.
    Custom(Handler),
    /// `server { }`, walked by the builder.
    Server,
    /// `location [=] PREFIX { }`, walked by the builder.
    Location,
    /// `types { }`, read by the builder.
    Types,
    /// `include`, expanded while reading; one reaching the builder had a block.
    Include,
}

/// One row of the table.
pub(crate) struct Spec {
    pub name: &'static str,
    /// The blocks it may stand in (`MAIN | SERVER | LOCATION` bits).
    pub ctx: u8,
    pub min: usize,
    pub max: usize,
    /// Whether it may be given more than once in one block.
    pub repeat: bool,
    pub kind: Kind,
}

impl Spec {
    /// Whether this directive takes a `{ }` block.
    pub(crate) fn takes_block(&self) -> bool {
        matches!(self.kind, Kind::Server | Kind::Location | Kind::Types)
    }
}

const fn directive(
    name: &'static str,
    ctx: u8,
    min: usize,
    max: usize,
    repeat: bool,
    kind: Kind,
) -> Spec {
    Spec {
        name,
        ctx,
        min,
        max,
        repeat,
        kind,
    }
}

/// Every directive. CONFIG.md: a directive may stand in the blocks enclosing
/// the one its table names (as a default), except `listen`, `server_name`
/// and `location`; `alias` is also kept to `location`, where alone it means
/// something.
pub(crate) static TABLE: &[Spec] = &[
    // Top level.
    directive("error_log", MAIN, 1, 2, false, Kind::Custom(error_log)),
    directive(
        "access_log",
        MAIN | SERVER | LOCATION,
        1,
        2,
        false,
        Kind::Custom(access_log),
    ),
    directive("log_format", MAIN, 2, MANY, true, Kind::Custom(log_format)),
    directive(
        "keepalive_timeout",
        MAIN,
        1,
        1,
        false,
        Kind::Time(|b| &mut b.keepalive_timeout),
    ),
    directive(
        "keepalive_requests",
        MAIN,
        1,
        1,
        false,
        Kind::Count(0, |b| &mut b.keepalive_requests),
    ),
    directive(
        "client_header_timeout",
        MAIN,
        1,
        1,
        false,
        Kind::Time(|b| &mut b.client_header_timeout),
    ),
    directive(
        "client_body_timeout",
        MAIN,
        1,
        1,
        false,
        Kind::Time(|b| &mut b.client_body_timeout),
    ),
    directive(
        "send_timeout",
        MAIN,
        1,
        1,
        false,
        Kind::Time(|b| &mut b.send_timeout),
    ),
    directive(
        "cgi_timeout",
        MAIN,
        1,
        1,
        false,
        Kind::Time(|b| &mut b.cgi_timeout),
    ),
    directive(
        "worker_processes",
        MAIN,
        1,
        1,
        false,
        Kind::Custom(worker_processes),
    ),
    directive(
        "worker_connections",
        MAIN,
        1,
        1,
        false,
        Kind::Count(1, |b| &mut b.worker_connections),
    ),
    directive(
        "cgi_max",
        MAIN,
        1,
        1,
        false,
        Kind::Count(0, |b| &mut b.cgi_max),
    ),
    directive(
        "shutdown_timeout",
        MAIN,
        1,
        1,
        false,
        Kind::Time(|b| &mut b.shutdown_timeout),
    ),
    directive("user", MAIN, 1, 1, false, Kind::Custom(user)),
    directive(
        "session_store",
        MAIN,
        1,
        1,
        false,
        Kind::Custom(session_store),
    ),
    directive(
        "session_max",
        MAIN,
        1,
        1,
        false,
        Kind::Count(1, |b| &mut b.session_max),
    ),
    directive("types", MAIN, 0, 0, true, Kind::Types),
    directive(
        "default_type",
        MAIN,
        1,
        1,
        false,
        Kind::Custom(default_type),
    ),
    directive("server", MAIN, 0, 0, true, Kind::Server),
    directive("include", ANY, 1, 1, true, Kind::Include),
    // Server.
    directive("listen", SERVER, 1, 3, true, Kind::Custom(listen)),
    directive(
        "server_name",
        SERVER,
        1,
        MANY,
        true,
        Kind::Custom(server_name),
    ),
    directive(
        "client_max_body_size",
        ANY,
        1,
        1,
        false,
        Kind::Custom(client_max_body_size),
    ),
    directive(
        "server_tokens",
        ANY,
        1,
        1,
        false,
        Kind::Flag(|b| &mut b.scope.server_tokens),
    ),
    directive(
        "session",
        ANY,
        1,
        1,
        false,
        Kind::Flag(|b| &mut b.scope.session),
    ),
    directive(
        "session_timeout",
        MAIN | SERVER,
        1,
        1,
        false,
        Kind::Time(|b| &mut b.scope.session_timeout),
    ),
    directive(
        "set_real_ip_from",
        MAIN | SERVER,
        1,
        1,
        true,
        Kind::Custom(set_real_ip_from),
    ),
    directive(
        "real_ip_header",
        MAIN | SERVER,
        1,
        1,
        false,
        Kind::Custom(real_ip_header),
    ),
    directive("location", SERVER, 1, 2, true, Kind::Location),
    // Location.
    directive(
        "allowed_methods",
        ANY,
        1,
        MANY,
        false,
        Kind::Custom(allowed_methods),
    ),
    directive("root", ANY, 1, 1, false, Kind::Custom(root)),
    directive("alias", LOCATION, 1, 1, false, Kind::Custom(alias)),
    directive("index", ANY, 1, MANY, true, Kind::Custom(index)),
    directive(
        "autoindex",
        ANY,
        1,
        1,
        false,
        Kind::Flag(|b| &mut b.scope.autoindex),
    ),
    directive("return", ANY, 1, 2, false, Kind::Custom(return_)),
    directive("error_page", ANY, 2, MANY, true, Kind::Custom(error_page)),
    directive("cgi", ANY, 2, 2, true, Kind::Custom(cgi)),
    directive("upload_store", ANY, 1, 1, false, Kind::Custom(upload_store)),
    directive(
        "gzip_static",
        ANY,
        1,
        1,
        false,
        Kind::Flag(|b| &mut b.scope.gzip_static),
    ),
    directive(
        "brotli_static",
        ANY,
        1,
        1,
        false,
        Kind::Flag(|b| &mut b.scope.brotli_static),
    ),
    directive(
        "zstd_static",
        ANY,
        1,
        1,
        false,
        Kind::Flag(|b| &mut b.scope.zstd_static),
    ),
    directive(
        "max_ranges",
        ANY,
        1,
        1,
        false,
        Kind::Count(0, |b| &mut b.scope.max_ranges),
    ),
    directive("add_header", ANY, 2, 3, true, Kind::Custom(add_header)),
    directive(
        "allow",
        SERVER | LOCATION,
        1,
        1,
        true,
        Kind::Custom(access_rule),
    ),
    directive(
        "deny",
        SERVER | LOCATION,
        1,
        1,
        true,
        Kind::Custom(access_rule),
    ),
    directive("expires", ANY, 1, 1, false, Kind::Custom(expires)),
    directive("status", ANY, 1, 1, false, Kind::Custom(status)),
    directive("internal", LOCATION, 0, 0, false, Kind::Custom(internal)),
    directive(
        "try_files",
        SERVER | LOCATION,
        2,
        MANY,
        false,
        Kind::Custom(try_files),
    ),
    // Traffic control (CONFIG.md "More directives").
    directive("limit_rate", ANY, 1, 1, false, Kind::Custom(limit_rate)),
    directive(
        "limit_rate_after",
        ANY,
        1,
        1,
        false,
        Kind::Custom(limit_rate),
    ),
    directive(
        "limit_conn",
        SERVER | LOCATION,
        1,
        1,
        false,
        Kind::Custom(limit_conn),
    ),
    directive(
        "limit_req",
        SERVER | LOCATION,
        1,
        3,
        false,
        Kind::Custom(limit_req),
    ),
    directive(
        "limit_conn_status",
        ANY,
        1,
        1,
        false,
        Kind::Custom(limit_status),
    ),
    directive(
        "limit_req_status",
        ANY,
        1,
        1,
        false,
        Kind::Custom(limit_status),
    ),
];

/// The table row for `name`.
pub(crate) fn lookup(name: &str) -> Option<&'static Spec> {
    TABLE.iter().find(|s| s.name == name)
}

/// `invalid value "V" in "NAME" directive[, WHY]`.
pub(crate) fn invalid(value: &str, name: &str, why: &str) -> String {
    if why.is_empty() {
        format!("invalid value \"{value}\" in \"{name}\" directive")
    } else {
        format!("invalid value \"{value}\" in \"{name}\" directive, {why}")
    }
}

/// The argument at `i`, or "" (the table has checked the count).
fn arg(args: &[String], i: usize) -> &str {
    args.get(i).map_or("", String::as_str)
}

/// A non-empty path argument, made absolute against the file's folder.
fn path_arg(env: &Place<'_>, name: &str, s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err(invalid(s, name, ""));
    }
    Ok(values::path(env.dir, s))
}

/// A folder that should exist: warn (not fail) when it does not.
fn folder_arg(env: &mut Place<'_>, name: &str, s: &str) -> Result<PathBuf, String> {
    let p = path_arg(env, name, s)?;
    match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => env.warn(format!(
            "\"{name}\" folder \"{}\" is not a folder",
            p.display()
        )),
        Err(_) => env.warn(format!(
            "\"{name}\" folder \"{}\" does not exist",
            p.display()
        )),
    }
    Ok(p)
}

/// The level names of `error_log`.
fn level(s: &str) -> Option<Level> {
    Some(match s {
        "debug" => Level::Debug,
        "info" => Level::Info,
        "notice" => Level::Notice,
        "warn" => Level::Warn,
        "error" => Level::Error,
        // nginx's two levels above crit; the most severe one here.
        "crit" | "alert" | "emerg" => Level::Crit,
        _ => return None,
    })
}

fn error_log(
    env: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let target = match arg(args, 0) {
        "stderr" => LogTarget::Stderr,
        p => LogTarget::File(path_arg(env, name, p)?),
    };
    let lvl = match args.get(1) {
        None => Level::Warn,
        Some(l) => level(l).ok_or_else(|| {
            invalid(
                l,
                name,
                "it must be debug, info, notice, warn, error or crit",
            )
        })?,
    };
    b.error_log = Some((target, lvl));
    Ok(())
}

fn access_log(
    env: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let target = match arg(args, 0) {
        "off" => LogTarget::Off,
        "stdout" => LogTarget::Stdout,
        "stderr" => LogTarget::Stderr,
        p => LogTarget::File(path_arg(env, name, p)?),
    };
    // `combined` is built in; another name must be a `log_format`
    // (looked up once the whole file is read).
    let format = match args.get(1) {
        Some(f) if target == LogTarget::Off => {
            return Err(invalid(f, name, "\"off\" takes no format"));
        }
        Some(f) if f != "combined" => Some(f.clone()),
        _ => None,
    };
    b.scope.access_log = Some((target, format, env.pos()));
    Ok(())
}

/// `log_format NAME [escape=default|json|none] STRING ...;`
fn log_format(
    env: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let fname = arg(args, 0);
    if fname == "combined" || b.log_formats.iter().any(|(f, _)| f.name == fname) {
        return Err(format!("duplicate \"log_format\" name \"{fname}\""));
    }
    let mut rest = args.get(1..).unwrap_or(&[]);
    let mut escape = Escape::Default;
    if let Some(e) = rest.first().and_then(|a| escape_arg(a)) {
        escape = e?;
        rest = rest.get(1..).unwrap_or(&[]);
    }
    if rest.is_empty() {
        return Err(format!(
            "invalid number of arguments in \"{name}\" directive"
        ));
    }
    let items = compile(&rest.concat()).map_err(|e| format!("{e} in \"{name}\""))?;
    let format = LogFormat::new(fname, escape, items);
    b.log_formats.push((std::sync::Arc::new(format), env.pos()));
    Ok(())
}

fn worker_processes(
    _: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let v = arg(args, 0);
    let n = if v == "auto" {
        0
    } else {
        values::number(v)
            .filter(|&n| n >= 1)
            .ok_or_else(|| invalid(v, name, "it must be a number of at least 1 or \"auto\""))?
    };
    b.worker_processes = Some(n);
    Ok(())
}

fn user(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let v = arg(args, 0);
    if v.is_empty() {
        return Err(invalid(v, name, ""));
    }
    b.user = Some(v.to_string());
    Ok(())
}

fn session_store(
    env: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    b.session_store = Some((path_arg(env, name, arg(args, 0))?, env.pos()));
    Ok(())
}

fn default_type(
    _: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let v = arg(args, 0);
    if v.is_empty() || !values::is_field_value(v) {
        return Err(invalid(v, name, ""));
    }
    b.default_type = Some(v.to_string());
    Ok(())
}

fn listen(env: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let a = arg(args, 0);
    let addr = values::listen_addr(a).map_err(|why| invalid(a, name, why))?;
    // The flags, in any order (nginx's).
    let mut default_server = false;
    let mut proxy_protocol = false;
    for flag in args.iter().skip(1) {
        match flag.as_str() {
            "default_server" | "default" => default_server = true,
            "proxy_protocol" => proxy_protocol = true,
            other => {
                return Err(format!(
                    "invalid parameter \"{other}\" in \"{name}\" directive"
                ));
            }
        }
    }
    let pos = Pos {
        src: env.src,
        line: env.line,
    };
    b.listen.push((
        Listen {
            addr,
            default_server,
            proxy_protocol,
            line: env.line,
        },
        pos,
    ));
    Ok(())
}

fn server_name(env: &mut Place<'_>, _: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let mut names = Vec::with_capacity(args.len());
    for a in args {
        let n = values::server_name(a)
            .ok_or_else(|| format!("invalid server name or wildcard \"{a}\""))?;
        names.push(n);
    }
    let pos = Pos {
        src: env.src,
        line: env.line,
    };
    match &mut b.names {
        Some((list, _)) => list.extend(names),
        None => b.names = Some((names, pos)),
    }
    Ok(())
}

fn client_max_body_size(
    _: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let v = arg(args, 0);
    b.scope.client_max_body_size = Some(values::size(v).ok_or_else(|| invalid(v, name, ""))?);
    Ok(())
}

fn allowed_methods(
    _: &mut Place<'_>,
    _: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let mut set = MethodSet::EMPTY;
    for a in args {
        // Accepted in any case here; requests are still matched case-sensitively.
        match Method::from_bytes(a.to_ascii_uppercase().as_bytes()) {
            Method::Other => return Err(format!("invalid method \"{a}\"")),
            m => set = set.with(m),
        }
    }
    b.scope.methods = Some(set);
    Ok(())
}

fn root(env: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    if b.scope.alias.is_some() {
        return Err(format!(
            "\"{name}\" directive is duplicate, \"alias\" directive was specified earlier"
        ));
    }
    let p = folder_arg(env, name, arg(args, 0))?;
    b.scope.served.push((p.clone(), "root", env.pos()));
    b.scope.root = Some(p);
    Ok(())
}

fn alias(env: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    if b.scope.root.is_some() {
        return Err(format!(
            "\"{name}\" directive is duplicate, \"root\" directive was specified earlier"
        ));
    }
    let p = folder_arg(env, name, arg(args, 0))?;
    b.scope.served.push((p.clone(), "alias", env.pos()));
    b.scope.alias = Some(p);
    Ok(())
}

fn index(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    if let Some(bad) = args.iter().find(|a| a.is_empty() || a.contains('\0')) {
        return Err(invalid(bad, name, ""));
    }
    // Several `index` lines in one block add up; an inner block's list
    // replaces the outer one (nginx).
    b.scope
        .index
        .get_or_insert_with(Vec::new)
        .extend(args.iter().cloned());
    Ok(())
}

/// The redirect codes, which need a URL.
pub(crate) const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

fn return_(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let a = arg(args, 0);
    let text = args.get(1).cloned();
    // nginx: `return URL;` is a 302 to URL.
    let ret = if args.len() == 1 && (a.starts_with("http://") || a.starts_with("https://")) {
        Return {
            code: 302,
            text: Some(a.to_string()),
        }
    } else {
        // Codes are kept to 100..=599, the range HTTP defines (RFC 9110 §15);
        // nginx's 0..=999 (and its 444 "close") has no meaning here.
        let code = values::number(a)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| invalid(a, name, "it must be a status code from 100 to 599"))?;
        if REDIRECTS.contains(&code) {
            match &text {
                Some(url) if !url.is_empty() && values::is_field_value(url) => {}
                Some(url) => return Err(invalid(url, name, "it must be a URL")),
                None => return Err(format!("\"{name}\" directive with code {code} needs a URL")),
            }
        }
        Return { code, text }
    };
    b.scope.ret = Some(ret);
    Ok(())
}

fn error_page(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let Some((uri, rest)) = args.split_last() else {
        return Err(format!(
            "invalid number of arguments in \"{name}\" directive"
        ));
    };
    if uri.is_empty() || uri.starts_with('=') {
        return Err(invalid(uri, name, ""));
    }
    // nginx: `=` or `=NEW` stands just before the URI.
    let (status, codes) = match rest.split_last() {
        Some((last, codes)) if last.starts_with('=') => (error_status(last, name)?, codes),
        _ => (ErrorStatus::Original, rest),
    };
    if codes.is_empty() {
        return Err(format!(
            "invalid number of arguments in \"{name}\" directive"
        ));
    }
    for c in codes {
        let code = values::number(c)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|c| (300..=599).contains(c))
            .ok_or_else(|| invalid(c, name, "it must be a status code from 300 to 599"))?;
        let page = ErrorPage {
            uri: uri.clone(),
            status,
        };
        match b.scope.error_pages.iter_mut().find(|(k, _)| *k == code) {
            Some(slot) => slot.1 = page,
            None => b.scope.error_pages.push((code, page)),
        }
    }
    Ok(())
}

/// `=` (the redirected answer's status) or `=NEW` of an `error_page`.
fn error_status(arg: &str, name: &str) -> Result<ErrorStatus, String> {
    let code = arg.strip_prefix('=').unwrap_or(arg);
    if code.is_empty() {
        return Ok(ErrorStatus::Target);
    }
    values::number(code)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|c| (200..=599).contains(c))
        .map(ErrorStatus::Set)
        .ok_or_else(|| invalid(arg, name, "it must be \"=\" or \"=CODE\" from 200 to 599"))
}

fn internal(_: &mut Place<'_>, _: &str, _: &[String], b: &mut Block) -> Result<(), String> {
    b.scope.internal = true;
    Ok(())
}

/// `try_files FILE ... =CODE|URI`: each FILE and URI a local path in which
/// `$uri` is the only variable.
fn try_files(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let Some((last, files)) = args.split_last() else {
        return Err(format!(
            "invalid number of arguments in \"{name}\" directive"
        ));
    };
    let mut list = Vec::with_capacity(args.len());
    for f in files {
        try_path(f, name)?;
        list.push(TryFile::File(f.clone()));
    }
    list.push(if let Some(code) = last.strip_prefix('=') {
        let code = values::number(code)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| invalid(last, name, "it must be =CODE from 100 to 599"))?;
        TryFile::Status(code)
    } else {
        try_path(last, name)?;
        TryFile::Redirect(last.clone())
    });
    b.scope.try_files = Some(list);
    Ok(())
}

/// A `try_files` path: starts with `/` or `$uri`, names no other variable,
/// and is a field value.
fn try_path(p: &str, name: &str) -> Result<(), String> {
    let mut rest = p;
    while let Some(i) = rest.find('$') {
        let var = rest.get(i + 1..).unwrap_or("");
        let known = var.strip_prefix("uri").is_some_and(|after| {
            !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        });
        if !known {
            return Err(invalid(p, name, "\"$uri\" is the only variable"));
        }
        rest = var;
    }
    if !(p.starts_with('/') || p.starts_with("$uri")) || !values::is_field_value(p) {
        return Err(invalid(p, name, "it must start with \"/\" or \"$uri\""));
    }
    Ok(())
}

fn cgi(env: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let ext = arg(args, 0);
    if ext.len() < 2 || !ext.starts_with('.') || ext.contains('/') {
        return Err(invalid(ext, name, "the extension must start with \".\""));
    }
    let interp = arg(args, 1);
    if interp.is_empty() {
        return Err(invalid(interp, name, ""));
    }
    // A bare name is looked up in PATH when run; a path is made absolute.
    let interp = if interp.contains('/') {
        values::path(env.dir, interp)
    } else {
        PathBuf::from(interp)
    };
    match b.scope.cgi.iter_mut().find(|(e, _)| e == ext) {
        Some(slot) => slot.1 = interp,
        None => b.scope.cgi.push((ext.to_string(), interp)),
    }
    Ok(())
}

fn upload_store(
    env: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let p = folder_arg(env, name, arg(args, 0))?;
    b.scope.served.push((p.clone(), "upload_store", env.pos()));
    b.scope.upload_store = Some(p);
    Ok(())
}

fn add_header(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let (field, value) = (arg(args, 0), arg(args, 1));
    if !values::is_token(field) {
        return Err(invalid(field, name, "it must be a header field name"));
    }
    if !values::is_field_value(value) {
        return Err(invalid(
            value,
            name,
            "a header value may not hold CR, LF or NUL",
        ));
    }
    let always = match args.get(2).map(String::as_str) {
        None => false,
        Some("always") => true,
        Some(a) => return Err(invalid(a, name, "")),
    };
    b.scope.add_headers.push(AddHeader {
        name: field.to_string(),
        value: value.to_string(),
        always,
    });
    Ok(())
}

/// `set_real_ip_from ADDR|CIDR;` (repeatable).
fn set_real_ip_from(
    _: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let v = arg(args, 0);
    let net = Net::parse(v)
        .filter(|n| *n != Net::All)
        .ok_or_else(|| invalid(v, name, ""))?;
    b.scope.real_ip_from.get_or_insert_with(Vec::new).push(net);
    Ok(())
}

/// `real_ip_header NAME|proxy_protocol;`
fn real_ip_header(
    _: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let v = arg(args, 0);
    // `proxy_protocol` (the address of a `listen ... proxy_protocol`
    // connection's header) is a token too, kept as it is.
    if !values::is_token(v) {
        return Err(invalid(v, name, "it must be a header field name"));
    }
    b.scope.real_ip_header = Some(v.to_ascii_lowercase());
    Ok(())
}

/// `allow ADDR|CIDR|all;` and `deny ...;`, kept in order.
fn access_rule(
    _: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let v = arg(args, 0);
    let net = Net::parse(v).ok_or_else(|| invalid(v, name, ""))?;
    b.scope
        .access
        .get_or_insert_with(Vec::new)
        .push(AccessRule {
            allow: name == "allow",
            net,
        });
    Ok(())
}

fn expires(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let v = arg(args, 0);
    b.scope.expires = Some(if v == "off" {
        None
    } else {
        Some(values::duration(v).ok_or_else(|| invalid(v, name, ""))?)
    });
    Ok(())
}

/// `status on|off|prometheus;`
fn status(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let v = arg(args, 0);
    b.scope.status = Some(match v {
        "on" => StatusPage::Text,
        "off" => StatusPage::Off,
        "prometheus" => StatusPage::Prometheus,
        _ => {
            return Err(invalid(
                v,
                name,
                "it must be \"on\", \"off\" or \"prometheus\"",
            ));
        }
    });
    Ok(())
}

/// `limit_rate RATE;` and `limit_rate_after SIZE;`: a size (`0` is off).
fn limit_rate(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let v = arg(args, 0);
    let n =
        values::size(v).ok_or_else(|| invalid(v, name, "it must be a size such as 500k or 2m"))?;
    if name == "limit_rate" {
        b.scope.limit_rate = Some(n);
    } else {
        b.scope.limit_rate_after = Some(n);
    }
    Ok(())
}

/// `limit_conn N;`: connections at once from one client address.
fn limit_conn(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let v = arg(args, 0);
    let n = values::number(v)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n >= 1)
        .ok_or_else(|| invalid(v, name, "it must be a number of at least 1"))?;
    b.scope.limit_conn = Some(n);
    Ok(())
}

/// `limit_req RATE [burst=N] [nodelay];`.
fn limit_req(_: &mut Place<'_>, name: &str, args: &[String], b: &mut Block) -> Result<(), String> {
    let v = arg(args, 0);
    let rate = values::request_rate(v)
        .ok_or_else(|| invalid(v, name, "the rate must be like 10r/s or 600r/m"))?;
    let mut req = LimitReq {
        rate,
        burst: 0,
        nodelay: false,
    };
    for a in args.iter().skip(1) {
        if a == "nodelay" && !req.nodelay {
            req.nodelay = true;
        } else if let Some(n) = a.strip_prefix("burst=") {
            req.burst = values::number(n)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n <= 1_000_000)
                .ok_or_else(|| invalid(a, name, "burst must be a number"))?;
        } else {
            return Err(invalid(a, name, ""));
        }
    }
    b.scope.limit_req = Some(req);
    Ok(())
}

/// `limit_conn_status CODE;` and `limit_req_status CODE;` (400..=599, as nginx).
fn limit_status(
    _: &mut Place<'_>,
    name: &str,
    args: &[String],
    b: &mut Block,
) -> Result<(), String> {
    let v = arg(args, 0);
    let code = values::number(v)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|c| (400..=599).contains(c))
        .ok_or_else(|| invalid(v, name, "the code must be between 400 and 599"))?;
    if name == "limit_conn_status" {
        b.scope.limit_conn_status = Some(code);
    } else {
        b.scope.limit_req_status = Some(code);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_unique_and_counts_sane() {
        for (i, s) in TABLE.iter().enumerate() {
            assert!(
                TABLE.iter().skip(i + 1).all(|t| t.name != s.name),
                "{}",
                s.name
            );
            assert!(s.min <= s.max, "{}", s.name);
            assert!(s.ctx != 0 && s.ctx & !ANY == 0, "{}", s.name);
        }
        assert!(lookup("root").is_some());
        assert!(lookup("nope").is_none());
    }

    fn hdr(name: &str, value: &str, always: bool) -> AddHeader {
        AddHeader {
            name: name.into(),
            value: value.into(),
            always,
        }
    }

    #[test]
    fn inherit_merges() {
        let outer = Scope {
            root: Some(PathBuf::from("/o")),
            error_pages: vec![
                (404, ErrorPage::original("/o404")),
                (500, ErrorPage::original("/o500")),
            ],
            cgi: vec![(".py".into(), "python3".into())],
            add_headers: vec![hdr("A", "1", false)],
            autoindex: Some(true),
            ..Scope::default()
        };
        let inner = Scope {
            error_pages: vec![
                (404, ErrorPage::original("/i404")),
                (403, ErrorPage::original("/i403")),
            ],
            cgi: vec![
                (".py".into(), "/usr/bin/python".into()),
                (".sh".into(), "sh".into()),
            ],
            add_headers: vec![hdr("B", "2", true)],
            autoindex: Some(false),
            ..Scope::default()
        };
        let s = inner.inherit(&outer);
        assert_eq!(s.root, Some(PathBuf::from("/o")));
        assert_eq!(s.autoindex, Some(false));
        assert_eq!(
            s.error_pages,
            vec![
                (404, ErrorPage::original("/i404")),
                (500, ErrorPage::original("/o500")),
                (403, ErrorPage::original("/i403"))
            ]
        );
        assert_eq!(
            s.cgi,
            vec![
                (".py".into(), PathBuf::from("/usr/bin/python")),
                (".sh".into(), PathBuf::from("sh"))
            ]
        );
        assert_eq!(
            s.add_headers,
            vec![hdr("A", "1", false), hdr("B", "2", true)]
        );
        let aliased = Scope {
            alias: Some(PathBuf::from("/a")),
            ..Scope::default()
        };
        let s = aliased.inherit(&outer);
        assert_eq!(s.root, None);
        assert_eq!(s.alias, Some(PathBuf::from("/a")));
    }
}
