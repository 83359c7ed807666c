//! What a request becomes: a static file, a directory listing, a redirect,
//! an error page, a DELETE, an upload or a CGI. Handlers read and write the
//! filesystem (beneath a root, through `sys::Dir`) but never touch a socket
//! or epoll: [`decide`] routes a request once and returns a [`Decision`]:
//! an [`Action`] (a [`Reply`], an [`upload::UploadSink`] to stream the body
//! into, or a [`cgi::CgiPlan`] to run, with its environment), the route's
//! body limit and the request's session, which the server carries out.
//! Session policy lives here too ([`session`]).
//!
//! [`decide`] and [`handle`] follow CONFIG.md's order of decisions, head
//! syntax and the virtual host being settled already: path (400) → location
//! (404 for an `internal` one) → `return` → method (501, 405) → declared
//! body size (413) → `try_files` (another path, a status, or an internal
//! redirect: [`internal`]) → the resource (404, 403, the answer). [`route`]
//! is the first half, for callers that serve other kinds of routes;
//! [`serve_static`] the second. Every reply of a route carries the route's
//! `add_header`s; every error goes through its `error_page`s. [`accel`]
//! answers a CGI's `X-Accel-Redirect` from what its plan kept of the
//! request.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{AccessLog, AddHeader, Config, Location, Server, StatusPage};
use crate::http::range::ContentRange;
use crate::http::validators::{Coding, ETag, Enabled, negotiate};
use crate::http::{Method, MethodSet, Request};
use crate::sys::{Dir, File};

#[cfg(test)]
mod body_tests;
pub mod byteranges;
pub mod cgi;
mod conditional;
mod content_type;
mod encode;
mod error_page;
pub mod file_cache;
pub mod internal;
pub mod limits;
mod listing;
mod real_ip;
mod redirect;
pub mod refusal;
pub mod session;
mod static_file;
pub mod stub_status;
#[cfg(test)]
mod tests;
pub mod upload;

pub use real_ip::client as real_client;
pub use refusal::Refusal;
use static_file::Purpose;

/// Open root/alias folders, kept so each request needs no `open` of its root.
/// A folder that is missing is retried on the next request.
#[derive(Default)]
pub struct RootCache {
    dirs: HashMap<PathBuf, Dir>,
    /// Files served recently (see `file_cache`).
    pub files: file_cache::FileCache,
}

impl RootCache {
    /// The open folder for `path`, opening it on first use.
    pub fn get(&mut self, path: &Path) -> io::Result<&Dir> {
        if !self.dirs.contains_key(path) {
            let d = Dir::open(path)?;
            self.dirs.insert(path.to_path_buf(), d);
        }
        self.dirs
            .get(path)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    /// Forget every open folder and file (after a reload).
    pub fn clear(&mut self) {
        self.dirs.clear();
        self.files.clear();
    }

    /// The server found a file body shorter than the reply promised: the
    /// file changed under the cache, whose sizes can no longer be trusted
    /// (the rest of this second would promise the old length again).
    pub fn file_shrank(&mut self) {
        self.files.clear();
    }
}

/// What the handler needs besides the request.
pub struct Ctx<'c> {
    pub config: &'c Config,
    /// The virtual server chosen for the request.
    pub server: &'c Server,
    pub roots: &'c mut RootCache,
    /// Wall clock, seconds since the epoch (for listings).
    pub now: i64,
    /// The connection's addresses (for CGI and logs).
    pub conn: ConnInfo,
    /// The server's counters, read when a `status` route answers (`None`:
    /// all zero, as in unit tests).
    pub stats: Option<&'c dyn Fn() -> stub_status::Stats>,
    /// The session store, when some route has `session on` (and it could
    /// be opened).
    pub sessions: Option<&'c mut session::SessionStore>,
    /// The `limit_conn`/`limit_req` table shared by the workers (`None`
    /// where there is none, as in most unit tests: no limit applies).
    pub limits: Option<limits::LimitTable>,
}

#[cfg(test)]
impl<'c> Ctx<'c> {
    /// A unit test's context: the first server of `config`, the clock at
    /// 0, connection addresses `conn`, no status counters, sessions or limits.
    pub(crate) fn for_tests(config: &'c Config, roots: &'c mut RootCache, conn: ConnInfo) -> Self {
        Ctx {
            config,
            server: &config.servers[0],
            roots,
            now: 0,
            conn,
            stats: None,
            sessions: None,
            limits: None,
        }
    }
}

impl Ctx<'_> {
    /// The `SID` cookie an answer carries for `held`: one made or rotated
    /// by this request.
    pub fn new_cookie(&self, held: Option<session::Held>) -> Option<Box<session::CookieValue>> {
        session::new_cookie(self.sessions.as_deref()?, self.server, held?).map(Box::new)
    }
}

/// The two ends of the client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub peer: std::net::SocketAddr,
    pub local: std::net::SocketAddr,
}

impl Default for ConnInfo {
    fn default() -> ConnInfo {
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        ConnInfo {
            peer: any,
            local: any,
        }
    }
}

/// What the server does with a request. Only `Upload` and `Cgi` take the
/// request body; with `Reply` an unread body is discarded or the connection
/// closed (HTTP.md rule 19).
#[derive(Debug)]
pub enum Action<'c> {
    /// Answer at once.
    Reply(Reply<'c>),
    /// Stream the decoded body into the sink, then send `sink.finish()`.
    Upload(upload::UploadSink),
    /// Run a CGI script with the body on its stdin.
    Cgi(cgi::CgiPlan),
}

/// A response body.
#[derive(Debug)]
pub enum Body {
    Empty,
    /// A built-in page or fixed text.
    Static(&'static [u8]),
    /// A generated page (directory listing, `return` text).
    Bytes(Vec<u8>),
    /// `len` bytes of an open regular file from `start`, sent with sendfile
    /// (the descriptor may be shared with the open-file cache).
    File {
        file: std::rc::Rc<File>,
        start: u64,
        len: u64,
    },
    /// `len` bytes from `start` of a small file's bytes held by the
    /// open-file cache: sent with the head in one `writev`.
    Shared {
        data: std::rc::Rc<[u8]>,
        start: usize,
        len: usize,
    },
    /// A `multipart/byteranges` body: part heads from memory, ranges of a
    /// `File` or `Shared` body between them.
    Parts(Box<byteranges::Parts>),
}

impl Body {
    /// The number of body bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Static(b) => b.len() as u64,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
            Body::Shared { len, .. } => *len as u64,
            Body::Parts(p) => p.content_length(),
        }
    }

    /// The `len` bytes from `start` of a file body (a byte range), without
    /// copying: the same descriptor or the same shared bytes. `None` for
    /// other bodies or a range that is not inside the body.
    pub fn slice(self, start: u64, len: u64) -> Option<Body> {
        let end = start.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        match self {
            Body::File { file, start: s, .. } => Some(Body::File {
                file,
                start: s.checked_add(start)?,
                len,
            }),
            Body::Shared { data, start: s, .. } => Some(Body::Shared {
                data,
                start: s.checked_add(usize::try_from(start).ok()?)?,
                len: usize::try_from(len).ok()?,
            }),
            _ => None,
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What to answer. The server adds `Date`, `Server`, `Content-Length` (from
/// `body`, also for HEAD) and `Connection`, and drops the body for HEAD.
#[derive(Debug)]
pub struct Reply<'c> {
    pub status: u16,
    /// Full `Content-Type` value (charset included), if any.
    pub content_type: Option<Cow<'c, str>>,
    /// `Last-Modified`, unix seconds.
    pub last_modified: Option<i64>,
    /// `Location` for redirects.
    pub location: Option<Cow<'c, str>>,
    /// `Allow` for 405 (and OPTIONS).
    pub allow: Option<MethodSet>,
    /// Extra headers from the route (`add_header`; the server filters
    /// them by status).
    pub headers: &'c [AddHeader],
    /// `ETag` (static files; also marks a reply as a file's).
    pub etag: Option<ETag>,
    /// `Accept-Ranges: bytes` (static files).
    pub accept_ranges: bool,
    /// `Content-Range` of a 206 or a 416.
    pub content_range: Option<ContentRange>,
    /// `Content-Encoding` of a precompressed sibling (`gzip_static`,
    /// `brotli_static`, `zstd_static`).
    pub encoding: Option<Coding>,
    /// `Vary: Accept-Encoding` (a GET/HEAD answer of a route with one of
    /// them on).
    pub vary_encoding: bool,
    /// `expires`: `Cache-Control: max-age=SECONDS` and `Expires` at this
    /// unix time.
    pub expires: Option<(u64, i64)>,
    pub body: Body,
    /// The connection must close after this reply (the status demands it).
    pub close: bool,
    /// A file (or listing) of an `upload_store`: the answer carries
    /// [`SANDBOX_HEADERS`].
    pub sandbox: bool,
    /// `Set-Cookie` of a session made (or rotated) by this request.
    /// (Boxed: rare, and 76 bytes that every reply would carry and move.)
    pub set_cookie: Option<Box<session::CookieValue>>,
}

/// What every answer serving a file from an `upload_store` carries (CONFIG.md
/// "Serving what users uploaded"): `nosniff`, so a browser never reads a
/// `text/plain` upload as HTML or script, and the CSP `sandbox`, so an HTML
/// upload runs in an opaque origin, without the site's cookies or storage.
pub const SANDBOX_HEADERS: [(&str, &str); 2] = [
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "sandbox"),
];

impl<'c> Reply<'c> {
    /// A reply with just a status and no body.
    pub fn status(status: u16) -> Reply<'c> {
        Reply {
            status,
            content_type: None,
            last_modified: None,
            location: None,
            allow: None,
            headers: &[],
            etag: None,
            accept_ranges: false,
            content_range: None,
            encoding: None,
            vary_encoding: false,
            expires: None,
            body: Body::Empty,
            close: false,
            sandbox: false,
            set_cookie: None,
        }
    }
}

/// A request that passed routing: its normalised path and its route.
#[derive(Clone, Copy, Debug)]
pub struct Route<'c, 'p> {
    /// The path percent-decoded once, dot segments removed, slashes merged.
    pub path: &'p str,
    /// The location chosen for `path`.
    pub location: &'c Location,
}

/// Room to normalise a request path into (decoding never lengthens it): on
/// the stack for the usual short path, on the heap only for a long one.
/// Zeroing an 8 KiB array per request showed in profiles.
pub struct PathRoom {
    small: [u8; 512],
    big: Vec<u8>,
}

impl PathRoom {
    /// Empty room.
    pub fn new() -> PathRoom {
        PathRoom {
            small: [0; 512],
            big: Vec::new(),
        }
    }

    /// At least `len` bytes.
    pub fn get(&mut self, len: usize) -> &mut [u8] {
        if len <= self.small.len() {
            &mut self.small
        } else {
            self.big.resize(len, 0);
            &mut self.big
        }
    }
}

impl Default for PathRoom {
    fn default() -> PathRoom {
        PathRoom::new()
    }
}

/// What the connection is to do with a request, decided once.
#[derive(Debug)]
pub struct Decision<'c> {
    pub action: Action<'c>,
    /// The route's `client_max_body_size` for a body an `Upload` or a
    /// `Cgi` takes (0: no limit).
    pub limit: u64,
    /// The request's session (a `session on` route, a store open): an
    /// answer made later (an upload's, a CGI's) carries its cookie if new.
    pub session: Option<session::Held>,
    /// Where the request is logged: its location's `access_log` (its
    /// server's when no location was found).
    pub log: &'c AccessLog,
    /// The location's `server_tokens` (the server's when none was found).
    pub tokens: bool,
    /// What the route's `limit_*` directives ask of the connection.
    pub throttle: Throttle,
}

/// What a route's traffic limits ask of the connection for one request,
/// decided with the rest so that the connection never routes again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Throttle {
    /// `limit_rate`: bytes per second of the answer; 0 is no limit.
    pub rate: u64,
    /// `limit_rate_after`: bytes sent at full speed first.
    pub after: u64,
    /// `limit_req` without `nodelay`: milliseconds to wait before answering.
    pub delay: u64,
    /// The `limit_conn` slot counted for this request, given back when its
    /// exchange ends or its connection closes (`LimitTable::release`).
    pub counted: Option<u32>,
}

/// Decide what a parsed request becomes, routing it once: CONFIG.md's
/// order of decisions, the session of a `session on` route, then DELETE,
/// an upload (`upload_store` routes: POST/PUT), a CGI (`cgi .EXT` routes,
/// never inside an `upload_store`; its environment carries the session),
/// or a static answer. A `Reply` carries the cookie of a new session.
///
/// In a `cgi` route a path that leads to a script runs it, whatever the
/// (allowed) method, DELETE included: the script decides what its URLs
/// mean. Elsewhere DELETE removes the file the route maps.
pub fn decide<'c>(ctx: &mut Ctx<'c>, req: &Request<'_>) -> Decision<'c> {
    ctx.roots.files.set_now(ctx.now);
    let mut room = PathRoom::new();
    let server: &'c Server = ctx.server;
    // Built once at the end: a placeholder reply made and dropped on every
    // request showed in instruction counts.
    let mut limit_size = 0;
    let mut session = None;
    let mut log = &server.access_log;
    let tokens;
    let mut throttle = Throttle::default();
    let mut action = match locate(ctx, req, room.get(req.path.len())) {
        Ok(route) => {
            let loc = route.location;
            limit_size = loc.client_max_body_size;
            log = &loc.access_log;
            tokens = loc.server_tokens;
            throttle.rate = loc.limit_rate;
            throttle.after = loc.limit_rate_after;
            match limit(ctx, loc, &mut throttle) {
                Err(reply) => Action::Reply(reply),
                Ok(()) => {
                    if loc.session
                        && let Some(store) = ctx.sessions.as_deref_mut()
                    {
                        session = session::find_or_issue(store, req, ctx.server, ctx.now);
                    }
                    if loc.internal {
                        // Only error_page, try_files and X-Accel-Redirect reach it.
                        Action::Reply(error_page::reply(ctx, 404, loc))
                    } else {
                        match admit(ctx, req, loc) {
                            Ok(()) => act(ctx, req, &route, 0),
                            Err(reply) => Action::Reply(reply),
                        }
                    }
                }
            }
        }
        Err(reply) => {
            tokens = server_tokens(server);
            Action::Reply(reply)
        }
    };
    match &mut action {
        Action::Reply(reply) => reply.set_cookie = ctx.new_cookie(session),
        Action::Cgi(plan) => {
            if let (Some(store), Some(held)) = (ctx.sessions.as_deref(), session) {
                session::cgi_env(store, ctx.server, held, |k, v| {
                    plan.set_env(k, v);
                });
            }
        }
        Action::Upload(_) => {}
    }
    Decision {
        action,
        limit: limit_size,
        session,
        log,
        tokens,
        throttle,
    }
}

/// `limit_req`, then `limit_conn`, for the client's address on route
/// `loc` (after `return`, which answers before any limit, as nginx's
/// rewrite phase comes before its limits). `Err` is the refusal.
#[allow(clippy::result_large_err)]
fn limit<'c>(ctx: &mut Ctx<'c>, loc: &'c Location, t: &mut Throttle) -> Result<(), Reply<'c>> {
    let Some(table) = ctx.limits else {
        return Ok(());
    };
    if loc.ret.is_some() {
        return Ok(());
    }
    let ip = ctx.conn.peer.ip();
    if let Some(req) = &loc.limit_req {
        match table.request(ip, req, crate::sys::shared::monotonic_ms()) {
            limits::ReqVerdict::Pass => {}
            limits::ReqVerdict::Delay(ms) => t.delay = ms,
            limits::ReqVerdict::Reject => {
                return Err(error_page::reply(ctx, loc.limit_req_status, loc));
            }
        }
    }
    if let Some(max) = loc.limit_conn {
        match table.acquire(ip, max) {
            Some(slot) => t.counted = Some(slot),
            None => return Err(error_page::reply(ctx, loc.limit_conn_status, loc)),
        }
    }
    Ok(())
}

/// What a routed request becomes (see [`decide`]): first the route's
/// `try_files`, which may pick another path in it, answer a status, or
/// redirect (`depth` redirects made so far), then [`act_on`].
fn act<'c>(ctx: &mut Ctx<'c>, req: &Request<'_>, route: &Route<'c, '_>, depth: u8) -> Action<'c> {
    let loc = route.location;
    match internal::try_files(ctx.roots, loc, route.path) {
        None => act_on(ctx, req, route),
        Some(internal::Tried::Path(path)) => act_on(
            ctx,
            req,
            &Route {
                path: &path,
                location: loc,
            },
        ),
        Some(internal::Tried::Status(code)) => Action::Reply(error_page::reply(ctx, code, loc)),
        Some(internal::Tried::Redirect(uri)) => redirect(ctx, req, &uri, depth),
    }
}

/// An internal redirect to `uri` (`try_files`' last argument): looked up
/// through the locations again, `internal` ones included, and admitted
/// (`return`, methods) like a request. Past [`internal::MAX_REDIRECTS`]
/// the answer is 500 (a cycle), as nginx's.
fn redirect<'c>(ctx: &mut Ctx<'c>, req: &Request<'_>, uri: &str, depth: u8) -> Action<'c> {
    if depth >= internal::MAX_REDIRECTS {
        return Action::Reply(error_reply(ctx, 500));
    }
    // The query of the URI selects nothing for a file; a script keeps the
    // client's own.
    let raw = uri.split(['?', '#']).next().unwrap_or(uri);
    let mut room = PathRoom::new();
    let Ok(path) = crate::http::path::normalize(raw.as_bytes(), room.get(raw.len())) else {
        return Action::Reply(error_reply(ctx, 500));
    };
    let server: &'c Server = ctx.server;
    let loc = server.find_location(path);
    match admit(ctx, req, loc) {
        Ok(()) => act(
            ctx,
            req,
            &Route {
                path,
                location: loc,
            },
            depth + 1,
        ),
        Err(reply) => Action::Reply(reply),
    }
}

/// What a routed request becomes once its path is settled.
fn act_on<'c>(ctx: &mut Ctx<'c>, req: &Request<'_>, route: &Route<'c, '_>) -> Action<'c> {
    let loc = route.location;
    if loc.upload_store.is_some() {
        // Files in an upload folder are never run (CONFIG.md).
        return upload::dispatch(ctx, req, route);
    }
    if !loc.cgi.is_empty() {
        match cgi::plan(ctx, req, route) {
            Ok(Some(plan)) => return Action::Cgi(plan),
            Ok(None) => {}
            Err(status) => return Action::Reply(error_page::reply(ctx, status.status(), loc)),
        }
    }
    if req.method == Method::Delete {
        return Action::Reply(upload::delete(ctx, route));
    }
    Action::Reply(serve_static(ctx, req, route))
}

/// An upload's answer once its body is in, with the cookie of the
/// request's session if this request made it.
pub fn finish_upload<'c>(
    ctx: &mut Ctx<'c>,
    sink: upload::UploadSink,
    session: Option<session::Held>,
) -> Reply<'c> {
    let mut reply = sink.finish(ctx);
    reply.set_cookie = ctx.new_cookie(session);
    reply
}

/// Answer a parsed request on the chosen virtual server as a static route
/// would (no DELETE, upload or CGI: see [`dispatch`]).
pub fn handle<'c>(ctx: &mut Ctx<'c>, req: &Request<'_>) -> Reply<'c> {
    let mut room = PathRoom::new();
    match route(ctx, req, room.get(req.path.len())) {
        Ok(route) => serve_static(ctx, req, &route),
        Err(reply) => reply,
    }
}

/// The decisions made before the resource is looked at: [`locate`],
/// then [`admit`]. `Err` is the reply to send instead.
// The `Err` is a whole `Reply` (about 200 bytes with a file's header
// fields), moved once per request: boxing it would cost an allocation on
// every error and buy nothing on the hot path, where `Ok` is returned.
#[allow(clippy::result_large_err)]
pub fn route<'c, 'p>(
    ctx: &mut Ctx<'c>,
    req: &Request<'_>,
    buf: &'p mut [u8],
) -> Result<Route<'c, 'p>, Reply<'c>> {
    let route = locate(ctx, req, buf)?;
    if route.location.internal {
        return Err(error_page::reply(ctx, 404, route.location));
    }
    admit(ctx, req, route.location)?;
    Ok(route)
}

/// Normalise the path into `buf` (400, 414) and choose the location.
#[allow(clippy::result_large_err)]
fn locate<'c, 'p>(
    ctx: &mut Ctx<'c>,
    req: &Request<'_>,
    buf: &'p mut [u8],
) -> Result<Route<'c, 'p>, Reply<'c>> {
    if req.path.len() > buf.len() {
        return Err(error_reply(ctx, 414));
    }
    // RFC 9112 §3.2.4, HTTP.md rule 15: the parser lets `*` through with
    // OPTIONS only, a question about the server as a whole rather than a
    // path. It gets 204 with every method some route of it allows (as
    // Apache answers), not the 400 of a relative path.
    if req.path == b"*" {
        let server: &'c Server = ctx.server;
        let allow = server
            .locations
            .iter()
            .flat_map(|l| l.methods.iter())
            .fold(MethodSet::EMPTY.with(Method::Options), MethodSet::with);
        let mut r = Reply::status(204);
        r.allow = Some(allow);
        return Err(r);
    }
    // HTTP.md rule 28: a path that climbs above the root, `%2F` or `%00` → 400.
    let path = match crate::http::path::normalize(req.path, buf) {
        Ok(p) => p,
        Err(e) => return Err(error_reply(ctx, e.status())),
    };
    let server: &'c Server = ctx.server;
    Ok(Route {
        path,
        location: server.find_location(path),
    })
}

/// Apply the location's `return` and its `allow`/`deny` (403), check the
/// method (501, 405 with `Allow`) and the declared body size (413).
#[allow(clippy::result_large_err)]
fn admit<'c>(ctx: &mut Ctx<'c>, req: &Request<'_>, loc: &'c Location) -> Result<(), Reply<'c>> {
    if let Some(ret) = &loc.ret {
        return Err(redirect::reply(ctx, ret, loc));
    }
    // `allow`/`deny` come after `return`, as nginx's access phase follows
    // its rewrite phase.
    if !crate::config::access_allows(&loc.access, ctx.conn.peer.ip()) {
        return Err(error_page::reply(ctx, 403, loc));
    }
    if req.method == Method::Other {
        return Err(error_page::reply(ctx, 501, loc));
    }
    if !loc.methods.contains(req.method) {
        let mut r = error_page::reply(ctx, 405, loc);
        r.allow = Some(loc.methods);
        return Err(r);
    }
    let limit = loc.client_max_body_size;
    if limit != 0 && req.content_length.is_some_and(|n| n > limit) {
        return Err(error_page::reply(ctx, 413, loc));
    }
    Ok(())
}

/// Answer a routed request from the files beneath the route's `root` or
/// `alias`: GET and HEAD get the file (or the precompressed sibling that
/// `Accept-Encoding` chooses among those the route enables, then 304, 206
/// or 416 as its validators and `Range` say), index, listing
/// or folder redirect (the same reply for both; the server drops the body
/// for HEAD); OPTIONS
/// gets 204 with the route's methods; any other method 405, as nginx's
/// static module answers.
pub fn serve_static<'c>(ctx: &mut Ctx<'c>, req: &Request<'_>, route: &Route<'c, '_>) -> Reply<'c> {
    let loc = route.location;
    match req.method {
        Method::Get | Method::Head if loc.status != StatusPage::Off => {
            let stats = ctx.stats.map_or_else(Default::default, |read| read());
            stub_status::reply(&stats, loc)
        }
        Method::Get | Method::Head => {
            let config: &'c Config = ctx.config;
            let enabled = encodings(loc);
            // The header is looked for only on a route with a sibling coding.
            let codings = if enabled.any() {
                negotiate(req.header("accept-encoding").unwrap_or_default(), enabled)
            } else {
                Default::default()
            };
            let mut r = match static_file::serve(
                ctx.roots,
                &config.types,
                loc,
                route.path,
                req.query,
                Purpose::Request { codings },
            ) {
                Ok(r) => conditional::finish(ctx, req, loc, r),
                Err(status) => error_page::reply(ctx, status.status(), loc),
            };
            // Which file answers (even whether one does: `FILE.gz` may
            // exist alone) depends on `Accept-Encoding`.
            r.vary_encoding = enabled.any();
            r
        }
        Method::Options => {
            let mut r = Reply::status(204);
            r.allow = Some(loc.methods);
            r.headers = &loc.add_headers;
            r
        }
        _ => {
            let mut r = error_page::reply(ctx, 405, loc);
            r.allow = Some(static_methods(loc.methods));
            r
        }
    }
}

/// The codings whose precompressed siblings route `loc` serves.
fn encodings(loc: &Location) -> Enabled {
    Enabled {
        br: loc.brotli_static,
        zstd: loc.zstd_static,
        gzip: loc.gzip_static,
    }
}

/// What a static route can answer among the methods it allows: GET, HEAD
/// and OPTIONS (GET and HEAD when it allows none of them).
fn static_methods(allowed: MethodSet) -> MethodSet {
    let s = [Method::Get, Method::Head, Method::Options]
        .into_iter()
        .filter(|m| allowed.contains(*m))
        .fold(MethodSet::EMPTY, MethodSet::with);
    if s == MethodSet::EMPTY {
        MethodSet::get_head()
    } else {
        s
    }
}

/// The server's own `server_tokens` (its `location /`-level one), for an
/// answer that no location decides.
pub fn server_tokens(server: &Server) -> bool {
    error_page::server_level(server).server_tokens
}

/// The page for an error `status` on `ctx.server`: its `error_page` target
/// if one is configured and readable, else the built-in page. The server's
/// own (`location /`-level) `error_page`s and `add_header`s apply, as no
/// request path is known; `close` is set for statuses after which the
/// connection must close (HTTP.md rule 19).
pub fn error_reply<'c>(ctx: &mut Ctx<'c>, status: u16) -> Reply<'c> {
    let server: &'c Server = ctx.server;
    error_page::reply(ctx, status, error_page::server_level(server))
}

/// The answer to a CGI's `X-Accel-Redirect: uri` on `ctx.server`: the
/// static answer a GET (HEAD for a HEAD) of `uri` gets, with the client's
/// `Range`, preconditions and `Accept-Encoding` (`kept`), found through the
/// locations, `internal` ones included, and their `try_files`. The route's
/// `return` and methods do not apply: the script has decided. 404 for a
/// target that is missing, climbs out or lies outside every location (the
/// server-level directives: a script hands over files of a location named
/// for it); 502 for a URI that is not a local path; 500 past
/// [`internal::MAX_REDIRECTS`] redirects of `try_files`.
pub fn accel<'c>(ctx: &mut Ctx<'c>, uri: &[u8], kept: &internal::Kept) -> Reply<'c> {
    ctx.roots.files.set_now(ctx.now);
    let mut target = Cow::Borrowed(uri);
    for _ in 0..=internal::MAX_REDIRECTS {
        let Some(head) = kept.request(&target) else {
            return error_reply(ctx, 502);
        };
        let Some(req) = internal::parse(&head) else {
            return error_reply(ctx, 502);
        };
        let mut room = PathRoom::new();
        // A path that climbs above the root, or one outside every location
        // (the server's own directives), has no file to hand over.
        let route = match locate(ctx, &req, room.get(req.path.len())) {
            Ok(route) if !route.location.implicit => route,
            _ => return error_reply(ctx, 404),
        };
        let loc = route.location;
        let path = match internal::try_files(ctx.roots, loc, route.path) {
            None => None,
            Some(internal::Tried::Path(p)) => Some(p),
            Some(internal::Tried::Status(code)) => return error_page::reply(ctx, code, loc),
            Some(internal::Tried::Redirect(uri)) => {
                // A path again, as a request target.
                let mut t = String::with_capacity(uri.len());
                encode::path(&mut t, uri.as_bytes());
                target = Cow::Owned(t.into_bytes());
                continue;
            }
        };
        let route = Route {
            path: path.as_deref().unwrap_or(route.path),
            location: loc,
        };
        return serve_static(ctx, &req, &route);
    }
    error_reply(ctx, 500)
}

/// Like [`error_reply`], for a request whose normalised `path` is known
/// ([`Route::path`]): the `error_page`s and `add_header`s of its location apply.
pub fn error_reply_for<'c>(ctx: &mut Ctx<'c>, status: u16, path: &str) -> Reply<'c> {
    let server: &'c Server = ctx.server;
    error_page::reply(ctx, status, server.find_location(path))
}
