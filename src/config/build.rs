//! Directive tree → typed, validated `Config`.
//!
//! Three steps: `walk` checks every directive against the table (name,
//! block, argument count, duplicates) and parses its value into a `Block`;
//! `finish` resolves inheritance (top level → server → location), adds each
//! server's implicit `location /` and default `listen`; `validate` checks
//! what spans servers (listen addresses, names, default servers). Errors are
//! collected, never returned early, so one run reports all of them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::directives::{
    Block, Kind, LOCATION, LocDraft, MAIN, Place, Pos, SERVER, Scope, ServerDraft, invalid, lookup,
};
use super::mime::DEFAULT_TYPE;
use super::tree::{Node, Reader};
use super::{
    AccessLog, Config, ConfigError, DEFAULT_SESSION_MAX, Level, Listen, Location, LogTarget,
    MimeTypes, Server, values,
};
use crate::http::MethodSet;

/// `client_max_body_size` default: 1m.
const DEFAULT_BODY_SIZE: u64 = 1 << 20;

/// Reads, walks and validates one configuration text.
pub(crate) fn build(
    text: &str,
    shown: &str,
    dir: &Path,
    includes: bool,
) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
    let mut reader = Reader::new(includes);
    let nodes = reader.read_text(text, shown.to_string(), dir.to_path_buf());
    let mut b = Builder {
        reader,
        warnings: Vec::new(),
    };
    let mut main = Block::new(MAIN);
    b.walk(&nodes, &mut main);
    let config = b.finish(main, shown, dir);
    if b.reader.errors.is_empty() {
        Ok((config, b.warnings))
    } else {
        Err(b.reader.errors)
    }
}

/// The built-in configuration: one server on 127.0.0.1:8080 serving `<cwd>/www`.
pub(crate) fn builtin(cwd: &Path) -> Config {
    let mut b = Builder {
        reader: Reader::new(false),
        warnings: Vec::new(),
    };
    let pos = Pos { src: 0, line: 0 };
    let mut main = Block::new(MAIN);
    main.servers.push(ServerDraft {
        pos,
        scope: Scope {
            root: Some(cwd.join("www")),
            ..Scope::default()
        },
        listen: vec![(
            Listen {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
                default_server: false,
                proxy_protocol: false,
                line: 0,
            },
            pos,
        )],
        names: None,
        locations: Vec::new(),
    });
    b.finish(main, "(built-in default)", cwd)
}

/// The state of one build: the reader (sources and errors) and the warnings.
struct Builder {
    reader: Reader,
    warnings: Vec<String>,
}

impl Builder {
    fn err(&mut self, src: usize, line: u32, message: String) {
        self.reader.error(src, line, message);
    }

    fn warn(&mut self, src: usize, line: u32, message: &str) {
        let file = self.reader.sources.get(src).map_or("", |s| s.name.as_str());
        self.warnings.push(format!("{message} in {file}:{line}"));
    }

    /// Checks and applies every directive of one block.
    fn walk(&mut self, nodes: &[Node], block: &mut Block) {
        for node in nodes {
            let name = node.name.as_str();
            let (src, line) = (node.src, node.line);
            let Some(spec) = lookup(name) else {
                self.err(src, line, format!("unknown directive \"{name}\""));
                continue;
            };
            if spec.ctx & block.ctx == 0 {
                self.err(
                    src,
                    line,
                    format!("\"{name}\" directive is not allowed here"),
                );
                continue;
            }
            match (spec.takes_block(), node.block.is_some()) {
                (true, false) => {
                    self.err(
                        src,
                        line,
                        format!("directive \"{name}\" has no opening \"{{\""),
                    );
                    continue;
                }
                (false, true) => {
                    self.err(
                        src,
                        line,
                        format!("directive \"{name}\" is not terminated by \";\""),
                    );
                    continue;
                }
                _ => {}
            }
            let n = node.args.len();
            if n < spec.min || n > spec.max {
                self.err(
                    src,
                    line,
                    format!("invalid number of arguments in \"{name}\" directive"),
                );
                continue;
            }
            if !spec.repeat {
                if block.seen.contains(&spec.name) {
                    self.err(src, line, format!("\"{name}\" directive is duplicate"));
                    continue;
                }
                block.seen.push(spec.name);
            }
            let first = node.args.first().map_or("", String::as_str);
            let children = node.block.as_deref().unwrap_or_default();
            let result = match &spec.kind {
                Kind::Flag(field) => values::flag(first)
                    .map(|v| *field(block) = Some(v))
                    .ok_or_else(|| invalid(first, name, "it must be \"on\" or \"off\"")),
                Kind::Time(field) => values::duration(first)
                    .map(|v| *field(block) = Some(v))
                    .ok_or_else(|| invalid(first, name, "")),
                Kind::Count(min, field) => values::number(first)
                    .filter(|v| v >= min)
                    .map(|v| *field(block) = Some(v))
                    .ok_or_else(|| invalid(first, name, "")),
                Kind::Custom(handler) => {
                    let (dir, file) = self
                        .reader
                        .sources
                        .get(src)
                        .map_or((Path::new(""), ""), |s| (s.dir.as_path(), s.name.as_str()));
                    let mut env = Place {
                        dir,
                        file,
                        line,
                        src,
                        warnings: &mut self.warnings,
                    };
                    handler(&mut env, name, &node.args, block)
                }
                Kind::Server => {
                    let mut s = Block::new(SERVER);
                    self.walk(children, &mut s);
                    block.servers.push(ServerDraft {
                        pos: Pos { src, line },
                        scope: s.scope,
                        listen: s.listen,
                        names: s.names,
                        locations: s.locations,
                    });
                    Ok(())
                }
                Kind::Location => {
                    self.location(node, children, block);
                    Ok(())
                }
                Kind::Types => {
                    self.types(children, block);
                    Ok(())
                }
                // Expanded while reading; one with a block was refused above.
                Kind::Include => Ok(()),
            };
            if let Err(message) = result {
                self.err(src, line, message);
            }
        }
    }

    /// `location [=|^~] PREFIX { ... }` inside a server.
    fn location(&mut self, node: &Node, children: &[Node], server: &mut Block) {
        let (src, line) = (node.src, node.line);
        let (exact, prefix) = match node.args.as_slice() {
            [p] => (false, p),
            [m, p] if m == "=" => (true, p),
            // Without regular expressions `^~` is a plain prefix.
            [m, p] if m == "^~" => (false, p),
            [m, _] => {
                self.err(src, line, format!("invalid location modifier \"{m}\""));
                return;
            }
            _ => return,
        };
        if !prefix.starts_with('/') {
            self.err(
                src,
                line,
                invalid(prefix, "location", "a prefix must start with \"/\""),
            );
            return;
        }
        if server
            .locations
            .iter()
            .any(|l| l.prefix == *prefix && l.exact == exact)
        {
            self.err(src, line, format!("duplicate location \"{prefix}\""));
            return;
        }
        let mut b = Block::new(LOCATION);
        self.walk(children, &mut b);
        server.locations.push(LocDraft {
            prefix: prefix.clone(),
            exact,
            scope: b.scope,
        });
    }

    /// `types { TYPE EXT ...; }`: the first block replaces the built-in
    /// table, later ones add to it; a repeated extension takes the later type.
    fn types(&mut self, children: &[Node], main: &mut Block) {
        let table = main.types.get_or_insert_with(BTreeMap::new);
        for child in children {
            let (src, line) = (child.src, child.line);
            if child.block.is_some() {
                self.err(src, line, "unexpected \"{\"".to_string());
                continue;
            }
            if child.args.is_empty() {
                self.err(
                    src,
                    line,
                    "invalid number of arguments in \"types\" directive".to_string(),
                );
                continue;
            }
            if !values::is_field_value(&child.name) || child.name.is_empty() {
                self.err(src, line, invalid(&child.name, "types", ""));
                continue;
            }
            for ext in &child.args {
                let ext = ext.to_ascii_lowercase();
                if let Some(old) = table.insert(ext.clone(), child.name.clone())
                    && old != child.name
                {
                    let msg = format!(
                        "duplicate extension \"{ext}\", content type: \"{}\", previous content type: \"{old}\"",
                        child.name
                    );
                    self.warn(src, line, &msg);
                }
            }
        }
    }

    /// Resolves inheritance into the final `Config` and validates across servers.
    fn finish(&mut self, main: Block, shown: &str, dir: &Path) -> Config {
        self.check_log_formats(&main);
        let mut servers = Vec::with_capacity(main.servers.len());
        let mut listen_pos: Vec<Vec<(Listen, Pos)>> = Vec::with_capacity(main.servers.len());
        let mut name_pos: Vec<Option<Pos>> = Vec::with_capacity(main.servers.len());
        for draft in &main.servers {
            let eff = draft.scope.inherit(&main.scope);
            let mut locations: Vec<Location> = Vec::with_capacity(draft.locations.len() + 1);
            for l in &draft.locations {
                let s = l.scope.inherit(&eff);
                let log = self.access_log(&main, &s);
                locations.push(location(&l.prefix, l.exact, false, &s, log));
            }
            if !locations.iter().any(|l| !l.exact && l.prefix == "/") {
                let log = self.access_log(&main, &eff);
                locations.push(location("/", false, true, &eff, log));
            }
            let listen = if draft.listen.is_empty() {
                vec![(
                    Listen {
                        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80),
                        default_server: false,
                        proxy_protocol: false,
                        line: draft.pos.line,
                    },
                    draft.pos,
                )]
            } else {
                draft.listen.clone()
            };
            let names = draft
                .names
                .as_ref()
                .map_or_else(|| vec![String::new()], |(n, _)| n.clone());
            // The names, and which block of those names this is: stable when
            // ports change (a restart on other ports keeps its sessions), and
            // distinct for two nameless blocks on two ports.
            let twin = servers
                .iter()
                .filter(|s: &&Server| s.names == names)
                .count();
            let session_scope = format!("{}#{twin}", names.join(" "));
            servers.push(Server {
                listen: listen.iter().map(|(l, _)| l.clone()).collect(),
                names,
                session_scope,
                real_ip_from: eff.real_ip_from.clone().unwrap_or_default(),
                real_ip_header: eff
                    .real_ip_header
                    .clone()
                    .unwrap_or_else(|| "x-real-ip".to_string()),
                access_log: self.access_log(&main, &eff),
                session: eff.session.unwrap_or(false),
                session_timeout: eff.session_timeout.unwrap_or(Duration::from_secs(30 * 60)),
                locations,
            });
            listen_pos.push(listen);
            name_pos.push(draft.names.as_ref().map(|(_, p)| *p));
        }
        self.validate(&servers, &listen_pos, &name_pos);
        let session_store = match &main.session_store {
            Some((p, _)) => p.clone(),
            None => dir.join("sessions"),
        };
        if servers
            .iter()
            .any(|s| s.session || s.locations.iter().any(|l| l.session))
        {
            self.check_session_store(&main, &session_store);
        }

        let default_type = main
            .default_type
            .unwrap_or_else(|| DEFAULT_TYPE.to_string());
        let types = match main.types {
            Some(table) => MimeTypes {
                by_ext: table.into_iter().collect(),
                default_type,
            },
            None => MimeTypes {
                default_type,
                ..MimeTypes::builtin()
            },
        };
        let (error_log, error_log_level) =
            main.error_log.unwrap_or((LogTarget::Stderr, Level::Warn));
        let secs = Duration::from_secs;
        let size =
            |v: Option<u64>, d: usize| v.map_or(d, |n| usize::try_from(n).unwrap_or(usize::MAX));
        Config {
            file: shown.to_string(),
            error_log,
            error_log_level,
            keepalive_timeout: main.keepalive_timeout.unwrap_or(secs(75)),
            keepalive_requests: main.keepalive_requests.unwrap_or(10_000),
            client_header_timeout: main.client_header_timeout.unwrap_or(secs(60)),
            client_body_timeout: main.client_body_timeout.unwrap_or(secs(60)),
            send_timeout: main.send_timeout.unwrap_or(secs(60)),
            cgi_timeout: main.cgi_timeout.unwrap_or(secs(30)),
            worker_processes: size(main.worker_processes, 1),
            worker_connections: size(main.worker_connections, 16_384),
            cgi_max: size(main.cgi_max, 64),
            shutdown_timeout: main.shutdown_timeout.unwrap_or(secs(30)),
            user: main.user,
            session_store,
            session_max: size(main.session_max, DEFAULT_SESSION_MAX),
            types,
            servers,
        }
    }

    /// The effective `access_log` of scope `s`, its format looked up among
    /// the `log_format`s (an unknown one is reported at its `access_log`).
    fn access_log(&mut self, main: &Block, s: &Scope) -> AccessLog {
        let Some((target, name, _)) = &s.access_log else {
            return AccessLog::off();
        };
        let format = name.as_ref().and_then(|n| {
            let found = main.log_formats.iter().find(|(f, _)| f.name == *n);
            found.map(|(f, _)| Arc::clone(f))
        });
        AccessLog {
            target: target.clone(),
            format,
        }
    }

    /// Every `access_log` that names a format no `log_format` defines, at
    /// its line (once, however many blocks inherit it).
    fn check_log_formats(&mut self, main: &Block) {
        let scopes =
            std::iter::once(&main.scope).chain(main.servers.iter().flat_map(|d| {
                std::iter::once(&d.scope).chain(d.locations.iter().map(|l| &l.scope))
            }));
        let mut unknown = Vec::new();
        for s in scopes {
            if let Some((_, Some(n), pos)) = &s.access_log
                && !main.log_formats.iter().any(|(f, _)| f.name == *n)
            {
                unknown.push((n.clone(), *pos));
            }
        }
        for (n, pos) in unknown {
            self.err(pos.src, pos.line, format!("unknown log format \"{n}\""));
        }
    }

    /// CONFIG.md: a `session_store` inside a folder that a `root`, `alias`
    /// or `upload_store` serves would publish every session (and the MAC
    /// key): refused, at the `session_store` line, or for the default store
    /// at the line of the folder that holds it.
    fn check_session_store(&mut self, main: &Block, store: &Path) {
        let served = main
            .scope
            .served
            .iter()
            .chain(main.servers.iter().flat_map(|d| {
                d.scope
                    .served
                    .iter()
                    .chain(d.locations.iter().flat_map(|l| l.scope.served.iter()))
            }));
        for (folder, directive, pos) in served {
            if !within(store, folder) {
                continue;
            }
            let (at, message) = match &main.session_store {
                Some((_, at)) => (
                    *at,
                    format!(
                        "\"session_store\" folder \"{}\" is inside \"{}\", which \"{directive}\" serves",
                        store.display(),
                        folder.display()
                    ),
                ),
                None => (
                    *pos,
                    format!(
                        "\"{directive}\" serves \"{}\", which holds the default session_store \"{}\": set \"session_store\" outside every served folder",
                        folder.display(),
                        store.display()
                    ),
                ),
            };
            self.err(at.src, at.line, message);
            return;
        }
    }

    /// Checks across servers: an address twice in one server, two default
    /// servers for one address, a name shared by two servers on one address
    /// (an error, or a warning for the empty name, as nginx).
    fn validate(
        &mut self,
        servers: &[Server],
        listen: &[Vec<(Listen, Pos)>],
        names: &[Option<Pos>],
    ) {
        // (address, [(server, listen, pos)]) in order of first appearance.
        type Group<'a> = (SocketAddr, Vec<(usize, &'a Listen, Pos)>);
        let mut groups: Vec<Group<'_>> = Vec::new();
        for (si, list) in listen.iter().enumerate() {
            for (i, (l, pos)) in list.iter().enumerate() {
                if list.iter().take(i).any(|(m, _)| m.addr == l.addr) {
                    self.err(pos.src, pos.line, format!("duplicate listen {}", l.addr));
                    continue;
                }
                match groups.iter_mut().find(|(a, _)| *a == l.addr) {
                    Some((_, members)) => members.push((si, l, *pos)),
                    None => groups.push((l.addr, vec![(si, l, *pos)])),
                }
            }
        }
        for (addr, members) in &groups {
            let mut have_default = false;
            let mut owners: BTreeMap<&str, usize> = BTreeMap::new();
            // `proxy_protocol` is the socket's: nginx takes it from any
            // listen of the address (and warns since 1.25); here they must
            // agree, so that no server asks for a header without saying so.
            let proxied = members.first().map(|(_, l, _)| l.proxy_protocol);
            for &(si, l, pos) in members {
                if Some(l.proxy_protocol) != proxied {
                    self.err(
                        pos.src,
                        pos.line,
                        format!(
                            "conflicting \"proxy_protocol\" on {addr}: every listen of an \
                             address has it, or none does"
                        ),
                    );
                }
                if l.default_server {
                    if have_default {
                        self.err(
                            pos.src,
                            pos.line,
                            format!("duplicate default server for {addr}"),
                        );
                    }
                    have_default = true;
                }
                let Some(server) = servers.get(si) else {
                    continue;
                };
                let at = names.get(si).copied().flatten().unwrap_or(pos);
                for name in &server.names {
                    match owners.get(name.as_str()) {
                        Some(&first) if first != si => {
                            if name.is_empty() {
                                let msg =
                                    format!("conflicting server name \"\" on {addr}, ignored");
                                self.warn(pos.src, pos.line, &msg);
                            } else {
                                self.err(
                                    at.src,
                                    at.line,
                                    format!("conflicting server name \"{name}\" on {addr}"),
                                );
                            }
                        }
                        Some(_) => {}
                        None => {
                            owners.insert(name, si);
                        }
                    }
                }
            }
        }
    }
}

/// A `Location` with every value resolved from the effective scope `s`
/// (and its access log, whose format needs the `log_format`s).
fn location(prefix: &str, exact: bool, implicit: bool, s: &Scope, log: AccessLog) -> Location {
    Location {
        prefix: prefix.to_string(),
        exact,
        implicit,
        methods: s.methods.unwrap_or_else(MethodSet::get_head),
        root: s.root.clone(),
        alias: s.alias.clone(),
        index: s
            .index
            .clone()
            .unwrap_or_else(|| vec!["index.html".to_string()]),
        autoindex: s.autoindex.unwrap_or(false),
        ret: s.ret.clone(),
        error_pages: s.error_pages.clone(),
        client_max_body_size: s.client_max_body_size.unwrap_or(DEFAULT_BODY_SIZE),
        cgi: s.cgi.clone(),
        upload_store: s.upload_store.clone(),
        gzip_static: s.gzip_static.unwrap_or(false),
        brotli_static: s.brotli_static.unwrap_or(false),
        zstd_static: s.zstd_static.unwrap_or(false),
        max_ranges: s.max_ranges,
        add_headers: s.add_headers.clone(),
        expires: s.expires.flatten(),
        status: s.status.unwrap_or_default(),
        session: s.session.unwrap_or(false),
        server_tokens: s.server_tokens.unwrap_or(true),
        access: s.access.clone().unwrap_or_default(),
        internal: s.internal,
        try_files: s.try_files.clone().unwrap_or_default(),
        access_log: log,
        limit_rate: s.limit_rate.unwrap_or(0),
        limit_rate_after: s.limit_rate_after.unwrap_or(0),
        limit_conn: s.limit_conn,
        limit_req: s.limit_req,
        limit_conn_status: s.limit_conn_status.unwrap_or(503),
        limit_req_status: s.limit_req_status.unwrap_or(503),
    }
}

/// A location with every value at its default (route lookup's last resort
/// for a hand-built `Server` without locations).
pub(crate) fn default_location() -> Location {
    location("/", false, true, &Scope::default(), AccessLog::off())
}

/// Whether `inner` is `outer` or lies inside it, comparing the paths both
/// as written (`.` and `..` resolved) and as the filesystem resolves them
/// (symlinks) where they exist.
fn within(inner: &Path, outer: &Path) -> bool {
    let (a, b) = (lexical(inner), lexical(outer));
    if a.starts_with(&b) {
        return true;
    }
    match (resolved(&a), std::fs::canonicalize(&b)) {
        (Some(a), Ok(b)) => a.starts_with(b),
        _ => false,
    }
}

/// `p` with `.` and `..` components resolved without the filesystem.
fn lexical(p: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `p` with its longest existing ancestor canonicalized (the store may not
/// exist yet).
fn resolved(p: &Path) -> Option<std::path::PathBuf> {
    let mut rest = Vec::new();
    let mut cur = p;
    loop {
        if let Ok(c) = std::fs::canonicalize(cur) {
            let mut out = c;
            out.extend(rest.iter().rev());
            return Some(out);
        }
        rest.push(cur.file_name()?);
        cur = cur.parent()?;
    }
}
