//! What a request becomes: a static file, a directory listing, a redirect or
//! an error page. Handlers read the filesystem (beneath a root, through
//! `sys::Dir`) but never touch a socket or epoll: they return a [`Reply`]
//! that the server turns into bytes on the wire.
//! (Interface fixed; the implementation is to be written.)

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{Config, Server};
use crate::http::{MethodSet, Request};
use crate::sys::{Dir, File};

/// Open root/alias folders, kept so each request needs no `open` of its root.
/// A folder that is missing is retried on the next request.
#[derive(Default)]
pub struct RootCache {
    dirs: HashMap<PathBuf, Dir>,
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

    /// Forget every open folder (after a reload).
    pub fn clear(&mut self) {
        self.dirs.clear();
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
}

/// A response body.
#[derive(Debug)]
pub enum Body {
    Empty,
    /// A built-in page or fixed text.
    Static(&'static [u8]),
    /// A generated page (directory listing, `return` text).
    Bytes(Vec<u8>),
    /// `len` bytes of an open regular file from `start`, sent with sendfile.
    File {
        file: File,
        start: u64,
        len: u64,
    },
}

impl Body {
    /// The number of body bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Static(b) => b.len() as u64,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
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
    /// Extra headers from the route (`add_header`).
    pub headers: &'c [(String, String)],
    pub body: Body,
    /// The connection must close after this reply (the status demands it).
    pub close: bool,
}

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
            body: Body::Empty,
            close: false,
        }
    }
}

/// Answer a parsed request on the chosen virtual server.
pub fn handle<'c>(ctx: &mut Ctx<'c>, req: &Request<'_>) -> Reply<'c> {
    let _ = req;
    error_reply(ctx, 404)
}

/// The page for an error `status` on `ctx.server`: its `error_page` target
/// if one is configured and readable, else the built-in page.
pub fn error_reply<'c>(ctx: &mut Ctx<'c>, status: u16) -> Reply<'c> {
    let _ = ctx;
    Reply::status(status)
}
