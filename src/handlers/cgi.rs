//! CGI: what to run for a request, with which environment (RFC 3875,
//! CONFIG.md "CGI"). Reading the script's header block is `http::cgi`'s
//! job; running it is the server's.
//!
//! The script is found by walking the normalised path's segments: the
//! first prefix whose last segment ends with a configured `.EXT` and maps
//! (through `root` or `alias`, beneath the anchor) to a regular file is the
//! script, the rest of the path is `PATH_INFO`. A folder named like a script
//! is walked through; a FIFO, socket or device (or a folder at the end of
//! the path) is 403. A script that lies inside any `upload_store` folder of
//! the configuration is refused (403): uploaded files are never run, even
//! through another route whose root contains the upload folder. A folder
//! whose first existing `index` file is a script runs that script.
//!
//! Everything the child needs (program, argv, envp, cwd) is built here,
//! before `fork`, as `CString`s.

use crate::handlers::Refusal;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::static_file;
use super::{Ctx, RootCache, Route};
use crate::config::{Config, Location};
use crate::http::Request;
use crate::http::bytes::is_token;
use crate::sys::FileKind;

/// `PATH` in a script's environment.
const SCRIPT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Everything needed to start one CGI process, built before `fork`.
#[derive(Debug)]
pub struct CgiPlan {
    /// The interpreter (absolute path; a bare name is resolved through PATH).
    pub program: CString,
    /// `[interpreter, /abs/path/to/script]`.
    pub argv: Vec<CString>,
    /// `NAME=value` entries (CONFIG.md "CGI"); `CONTENT_LENGTH` included
    /// when the request has a declared length.
    pub envp: Vec<CString>,
    /// The script's folder (the child `chdir`s there).
    pub cwd: CString,
    /// Index in the server's `locations` of the route that runs it: its
    /// `add_header`s go on the script's answer.
    pub location: usize,
    /// What an `X-Accel-Redirect` answer needs of the client's request.
    pub kept: super::internal::Kept,
}

impl CgiPlan {
    /// Set (or replace) `CONTENT_LENGTH`, once a chunked body has been
    /// decoded into a temporary file and its size is known.
    pub fn set_content_length(&mut self, n: u64) {
        self.set_env("CONTENT_LENGTH", n.to_string().as_bytes());
    }

    /// Set (or replace) the variable `name` (e.g. `SESSION_ID`). `false`,
    /// and nothing changed, when `name` is empty or holds `=` or NUL, or
    /// `value` holds NUL.
    pub fn set_env(&mut self, name: &str, value: &[u8]) -> bool {
        if name.is_empty() || name.contains(['=', '\0']) {
            return false;
        }
        let Some(entry) = env_entry(name.as_bytes(), value) else {
            return false;
        };
        match self.envp.iter_mut().find(|e| key_of(e) == name.as_bytes()) {
            Some(slot) => *slot = entry,
            None => self.envp.push(entry),
        }
        true
    }

    /// The value of the variable `name`, if set.
    pub fn env(&self, name: &str) -> Option<&[u8]> {
        self.envp.iter().find_map(|e| {
            let b = e.as_bytes();
            (key_of(e) == name.as_bytes()).then(|| b.get(name.len() + 1..).unwrap_or(&[]))
        })
    }
}

/// The `NAME` of a `NAME=value` entry.
fn key_of(entry: &CString) -> &[u8] {
    let b = entry.as_bytes();
    b.split(|&c| c == b'=').next().unwrap_or(b)
}

/// `NAME=value` as a C string; `None` if either holds NUL.
fn env_entry(name: &[u8], value: &[u8]) -> Option<CString> {
    let mut v = Vec::with_capacity(name.len() + 1 + value.len());
    v.extend_from_slice(name);
    v.push(b'=');
    v.extend_from_slice(value);
    CString::new(v).ok()
}

/// A script found in the request path.
struct Script<'c, 'p> {
    /// `SCRIPT_NAME`: the URL path of the script.
    name: &'p str,
    /// `PATH_INFO`: the rest of the path (empty or starting with `/`).
    info: &'p str,
    interpreter: &'c Path,
    /// `SCRIPT_FILENAME`: root/alias + the script's relative path.
    file: PathBuf,
    /// `DOCUMENT_ROOT`: the route's root or alias folder.
    root: PathBuf,
}

/// The interpreter configured for a path segment: that of the longest
/// `.EXT` the segment ends with.
fn interpreter_for<'c>(loc: &'c Location, seg: &str) -> Option<&'c Path> {
    loc.cgi
        .iter()
        .filter(|(ext, _)| seg.ends_with(ext.as_str()))
        .max_by_key(|(ext, _)| ext.len())
        .map(|(_, interp)| interp.as_path())
}

/// `base` + `rel` (`rel` relative and normalised; empty means `base` itself).
fn join(base: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// Walk the segments of the normalised `path` for a script (see the module
/// docs). `Ok(None)`: no segment names a script; the request is static.
fn find_script<'c, 'p>(
    roots: &mut RootCache,
    loc: &'c Location,
    path: &'p str,
) -> Result<Option<Script<'c, 'p>>, Refusal> {
    // `path` starts with `/`; each turn looks at the segment after `at`.
    let mut at = 0;
    loop {
        let start = at + 1;
        let Some(tail) = path.get(start..) else {
            return Ok(None);
        };
        let end = tail.find('/').map_or(path.len(), |i| start + i);
        let seg = path.get(start..end).unwrap_or("");
        if let Some(interpreter) = interpreter_for(loc, seg) {
            let name = path.get(..end).unwrap_or(path);
            if let Some((base, rel, alias)) = static_file::map(loc, name) {
                let (dir, rel_b) = static_file::anchor(roots, base, rel.as_bytes(), alias)
                    .map_err(|e| Refusal::of_lookup(&e))?;
                let meta = dir.stat(rel_b).map_err(|e| Refusal::of_lookup(&e))?;
                match meta.kind {
                    FileKind::Regular => {
                        // An alias naming the script itself: its folder is the root.
                        let root = if rel.is_empty() {
                            base.parent().unwrap_or(base)
                        } else {
                            base
                        };
                        return Ok(Some(Script {
                            name,
                            info: path.get(end..).unwrap_or(""),
                            interpreter,
                            file: join(base, rel),
                            root: root.to_path_buf(),
                        }));
                    }
                    FileKind::Directory if end < path.len() => {}
                    _ => return Err(Refusal::Forbidden),
                }
            }
        }
        if end >= path.len() {
            return Ok(None);
        }
        at = end;
    }
}

/// For a folder path (ending in `/`): the path of its index file when the
/// first index that exists is a script, as nginx's `index` hands it to
/// FastCGI by an internal redirect (serving it as a file would disclose
/// the script's source).
fn index_script(roots: &mut RootCache, loc: &Location, path: &str) -> Option<String> {
    if !path.ends_with('/') {
        return None;
    }
    for index in &loc.index {
        let index = index.trim_start_matches('/');
        if index.is_empty() {
            continue;
        }
        let candidate = format!("{path}{index}");
        let Some((base, rel, alias)) = static_file::map(loc, &candidate) else {
            continue;
        };
        let regular = static_file::anchor(roots, base, rel.as_bytes(), alias)
            .and_then(|(dir, rel)| dir.stat(rel))
            .is_ok_and(|m| m.kind == FileKind::Regular);
        if regular {
            let last = index.rsplit('/').next().unwrap_or(index);
            return interpreter_for(loc, last).is_some().then_some(candidate);
        }
    }
    None
}

/// Whether `file` lies inside an `upload_store` folder of any route (an
/// unresolvable path counts as inside: refusing is the safe answer).
fn in_upload_store(config: &Config, file: &Path) -> bool {
    let Ok(real) = std::fs::canonicalize(file) else {
        return true;
    };
    config
        .servers
        .iter()
        .flat_map(|s| &s.locations)
        .filter_map(|l| l.upload_store.as_deref())
        .any(|store| std::fs::canonicalize(store).is_ok_and(|s| real.starts_with(s)))
}

/// Whether `p` is a regular file that someone may execute.
fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The interpreter as an absolute path: a path (the configuration made it
/// absolute) is taken as it is, a bare name is looked up in the server's
/// `PATH` (absolute entries only, as `execvp` would, minus the relative
/// ones that would depend on the server's folder). `None` when there is no
/// such executable file.
fn resolve_program(interp: &Path) -> Option<PathBuf> {
    if interp.as_os_str().as_bytes().contains(&b'/') {
        let p = std::path::absolute(interp).ok()?;
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH");
    let path = path
        .as_deref()
        .map_or(SCRIPT_PATH.as_bytes(), |p| p.as_bytes());
    path.split(|&b| b == b':')
        .map(|d| Path::new(std::ffi::OsStr::from_bytes(d)))
        .filter(|d| d.is_absolute())
        .map(|d| d.join(interp))
        .find(|p| executable(p))
}

fn cstring(p: &[u8]) -> Result<CString, Refusal> {
    CString::new(p).map_err(|_| Refusal::Internal)
}

/// The CGI plan for a routed request in a `cgi` route: `Ok(None)` when its
/// path names no script (it is then served as a static resource); `Err`:
/// 404/403 for a script that is missing or not a regular file (or lies in
/// an upload folder), 502 when the interpreter cannot be found (the
/// gateway is missing, as nginx answers for an unreachable upstream), 500
/// when a path cannot be passed to `execve`.
pub(super) fn plan(
    ctx: &mut Ctx<'_>,
    req: &Request<'_>,
    route: &Route<'_, '_>,
) -> Result<Option<CgiPlan>, Refusal> {
    let loc = route.location;
    let index;
    let script = match find_script(ctx.roots, loc, route.path)? {
        Some(script) => script,
        None => {
            let Some(path) = index_script(ctx.roots, loc, route.path) else {
                return Ok(None);
            };
            index = path;
            let Some(script) = find_script(ctx.roots, loc, &index)? else {
                return Ok(None);
            };
            script
        }
    };
    let file = std::path::absolute(&script.file).map_err(|_| Refusal::Internal)?;
    if in_upload_store(ctx.config, &file) {
        return Err(Refusal::Forbidden);
    }
    let program = resolve_program(script.interpreter).ok_or(Refusal::BadGateway)?;
    let folder = file.parent().ok_or(Refusal::Internal)?;
    let program = cstring(program.as_os_str().as_bytes())?;
    let argv = vec![program.clone(), cstring(file.as_os_str().as_bytes())?];
    let cwd = cstring(folder.as_os_str().as_bytes())?;
    let envp = environment(ctx, req, &script, &file);
    let location = ctx
        .server
        .locations
        .iter()
        .position(|l| std::ptr::eq(l, loc))
        .unwrap_or(usize::MAX);
    Ok(Some(CgiPlan {
        program,
        argv,
        envp,
        cwd,
        location,
        kept: super::internal::Kept::of(req),
    }))
}

/// The environment of CONFIG.md "CGI": the RFC 3875 §4.1 meta-variables,
/// `SCRIPT_FILENAME`, `REQUEST_URI`, `DOCUMENT_ROOT`, `REDIRECT_STATUS`,
/// `PATH`, then one `HTTP_*` per request header name (see [`header_vars`]).
/// A value that cannot be a C string (it holds NUL) is left out.
fn environment(
    ctx: &Ctx<'_>,
    req: &Request<'_>,
    script: &Script<'_, '_>,
    file: &Path,
) -> Vec<CString> {
    let mut vars: Vec<(&[u8], Vec<u8>)> = Vec::with_capacity(24 + req.headers().len());
    let mut set = |name: &'static str, value: &[u8]| vars.push((name.as_bytes(), value.to_vec()));
    set("GATEWAY_INTERFACE", b"CGI/1.1");
    set("SERVER_SOFTWARE", crate::SERVER_NAME.as_bytes());
    set("SERVER_PROTOCOL", req.version.as_str().as_bytes());
    set("SERVER_NAME", &server_name(ctx, req));
    set("SERVER_PORT", ctx.conn.local.port().to_string().as_bytes());
    set("REQUEST_METHOD", req.method_raw);
    let mut uri = req.path.to_vec();
    if let Some(q) = req.query {
        uri.push(b'?');
        uri.extend_from_slice(q);
    }
    set("REQUEST_URI", &uri);
    set("QUERY_STRING", req.query.unwrap_or(b""));
    set("SCRIPT_NAME", script.name.as_bytes());
    set("PATH_INFO", script.info.as_bytes());
    if !script.info.is_empty() {
        let server = ctx.server;
        let loc = server.find_location(script.info);
        if let Some((base, rel, _)) = static_file::map(loc, script.info) {
            let translated = std::path::absolute(join(base, rel)).unwrap_or_default();
            set("PATH_TRANSLATED", translated.as_os_str().as_bytes());
        }
    }
    set("SCRIPT_FILENAME", file.as_os_str().as_bytes());
    let root = std::path::absolute(&script.root).unwrap_or_default();
    set("DOCUMENT_ROOT", root.as_os_str().as_bytes());
    set(
        "REMOTE_ADDR",
        ctx.conn.peer.ip().to_canonical().to_string().as_bytes(),
    );
    set("REMOTE_PORT", ctx.conn.peer.port().to_string().as_bytes());
    if let Some(n) = req.content_length {
        set("CONTENT_LENGTH", n.to_string().as_bytes());
    }
    if let Some(t) = req.header("content-type") {
        set("CONTENT_TYPE", t);
    }
    // php-cgi (force-cgi-redirect) refuses to run without it.
    set("REDIRECT_STATUS", b"200");
    set("PATH", SCRIPT_PATH.as_bytes());
    let headers = header_vars(req);
    vars.iter()
        .map(|(k, v)| (*k, v.as_slice()))
        .chain(headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
        .filter_map(|(k, v)| env_entry(k, v))
        .collect()
}

/// `SERVER_NAME`: the request's host, else the server's first plain
/// `server_name`, else the local address.
fn server_name(ctx: &Ctx<'_>, req: &Request<'_>) -> Vec<u8> {
    if let Some(h) = req.host.filter(|h| !h.is_empty()) {
        return h.to_vec();
    }
    ctx.server
        .names
        .iter()
        .find(|n| !n.is_empty() && !n.contains('*') && !n.starts_with('.'))
        .map_or_else(
            || ctx.conn.local.ip().to_canonical().to_string().into_bytes(),
            |n| n.clone().into_bytes(),
        )
}

/// One `HTTP_NAME` variable per request header name (RFC 3875 §4.1.18):
/// the name uppercased with `-` as `_`, the values of repeated fields
/// joined with `, ` (`; ` for `Cookie`, RFC 6265 §5.4). Left out:
/// `Content-Length` and `Content-Type` (they have their own variables),
/// `Transfer-Encoding` (the script gets the decoded body and its length),
/// `Proxy` (httpoxy: `HTTP_PROXY` would pass for the proxy setting of the
/// script's HTTP clients), and names that are not tokens or that hold `_`
/// (nginx's `underscores_in_headers off`: `X_Forwarded` must not pass for
/// `X-Forwarded`).
fn header_vars(req: &Request<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for h in req.headers() {
        let skipped = [
            "content-length",
            "content-type",
            "transfer-encoding",
            "proxy",
        ]
        .iter()
        .any(|s| h.name.eq_ignore_ascii_case(s.as_bytes()));
        if skipped || !is_token(h.name) || h.name.contains(&b'_') {
            continue;
        }
        let mut key = b"HTTP_".to_vec();
        key.extend(h.name.iter().map(|&b| {
            if b == b'-' {
                b'_'
            } else {
                b.to_ascii_uppercase()
            }
        }));
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => {
                let sep: &[u8] = if key == b"HTTP_COOKIE" { b"; " } else { b", " };
                v.extend_from_slice(sep);
                v.extend_from_slice(h.value);
            }
            None => out.push((key, h.value.to_vec())),
        }
    }
    out
}
