//! Static resources: the normalised request path mapped onto the route's
//! `root` (root + whole path) or `alias` (alias + path without the location
//! prefix), then opened *relative to* that anchor folder through `sys::Dir`,
//! whose `openat2(RESOLVE_BENEATH)` refuses `..` and symlinks that lead out
//! (HTTP.md rules 28-29). A path is `stat`ed first and opened only when it
//! names a regular file (rule 30): a FIFO, socket or device gets 403 without
//! ever being opened (an open wakes a FIFO's writer, runs a device's driver).
//!
//! Everything served from an `upload_store` carries `nosniff` and
//! `Content-Security-Policy: sandbox` (CONFIG.md "Serving what users
//! uploaded"): an uploaded page can be viewed, never run as the site. The
//! name of an upload in progress (`sys::file::is_temp_name`) answers 404 in
//! every route, as if it were not there.
//!
//! A path ending in `/` is a folder: its first regular `index` file, else an
//! `autoindex` listing, else 403. A folder asked for without the slash is
//! redirected (301) to the path with it. Under `brotli_static`,
//! `zstd_static` and `gzip_static`, a client gets the regular file
//! `FILE.br`, `FILE.zst` or `FILE.gz` beside `FILE` of the best coding its
//! `Accept-Encoding` accepts (`validators::negotiate`) that exists, looked
//! up like any file (beneath the anchor, through the cache); its `ETag`
//! names the coding.

use crate::handlers::Refusal;
use std::borrow::Cow;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::file_cache::Cached;
use super::{Body, Reply, RootCache, content_type, encode, error_page, listing};
use crate::config::{Location, MimeTypes};
use crate::http::request::MAX_REQUEST_LINE;
use crate::http::validators::{Coding, ETag, Preference};
use crate::sys::file::{Opened, is_temp_name};
use crate::sys::{Dir, FileKind};
use std::rc::Rc;

/// Room for a folder path plus one index file name.
const INDEX_PATH: usize = MAX_REQUEST_LINE + 512;

/// Why a static lookup is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A client's GET/HEAD: folders may redirect or be listed; `codings`:
    /// the precompressed siblings to try, best first (those the route
    /// enables and the client accepts), sent instead of `FILE` when one
    /// exists.
    Request { codings: Preference },
    /// The file of an `error_page`: only a regular file will do.
    ErrorPage,
}

/// The anchor folder, the path relative to it (no leading `/`) and whether
/// the anchor is an `alias` (which may name a file), or `None` when the
/// route maps to no folder (→ 404). An `upload_store DIR` route maps like
/// `alias DIR` (CONFIG.md: it "serves GET/DELETE from DIR"), whatever its
/// `root` or `alias`; its folder is never a file.
pub(super) fn map<'a>(loc: &'a Location, path: &'a str) -> Option<(&'a Path, &'a str, bool)> {
    if let Some(store) = &loc.upload_store {
        let rest = path.strip_prefix(loc.prefix.as_str())?;
        Some((store.as_path(), rest.trim_start_matches('/'), false))
    } else if let Some(alias) = &loc.alias {
        let rest = path.strip_prefix(loc.prefix.as_str())?;
        Some((alias.as_path(), rest.trim_start_matches('/'), true))
    } else {
        let root = loc.root.as_ref()?;
        Some((root.as_path(), path.trim_start_matches('/'), false))
    }
}

/// The open anchor for `base`. An `alias` may name a file itself
/// (`location = /favicon.ico { alias icons/site.ico; }`): then, unless a
/// folder is asked for, the anchor is its folder and the lookup is its name.
pub(super) fn anchor<'r>(
    roots: &'r mut RootCache,
    base: &'r Path,
    rel: &'r [u8],
    file_alias: bool,
) -> io::Result<(&'r Dir, &'r [u8])> {
    if file_alias
        && rel.is_empty()
        && let Err(e) = roots.get(base)
    {
        if e.raw_os_error() == Some(libc::ENOTDIR)
            && let (Some(parent), Some(name)) = (base.parent(), base.file_name())
        {
            return Ok((roots.get(parent)?, name.as_bytes()));
        }
        return Err(e);
    }
    Ok((roots.get(base)?, rel))
}

/// Serve the static resource at the normalised `path` of route `loc`.
/// `Err` carries the error status (404, 403, 500) for the caller to turn
/// into an error page.
pub(super) fn serve<'c>(
    roots: &mut RootCache,
    types: &'c MimeTypes,
    loc: &'c Location,
    path: &str,
    query: Option<&[u8]>,
    purpose: Purpose,
) -> Result<Reply<'c>, Refusal> {
    let (base, rel, alias) = map(loc, path).ok_or(Refusal::NotFound)?;
    if hidden(rel) {
        return Err(Refusal::NotFound);
    }
    if path.ends_with('/') {
        let (dir, anchored) =
            anchor(roots, base, rel.as_bytes(), false).map_err(|e| Refusal::of_lookup(&e))?;
        return folder(dir, types, loc, path, anchored, purpose);
    }
    if let Purpose::Request { codings } = purpose
        && !rel.is_empty()
    {
        for coding in codings.iter() {
            let mut sibling = String::with_capacity(rel.len() + 4);
            sibling.push_str(rel);
            sibling.push_str(coding.suffix());
            // Anything but a regular sibling (missing, a folder, refused):
            // the next coding, then the plain file, as nginx's gzip_static
            // does.
            if let Ok(Found::File(f)) = lookup(roots, base, &sibling, false) {
                return Ok(file_reply(types, loc, path, f, Some(coding)));
            }
        }
    }
    match (lookup(roots, base, rel, alias)?, purpose) {
        (Found::File(f), _) => Ok(file_reply(types, loc, path, f, None)),
        (Found::Folder, Purpose::Request { .. }) => Ok(slash_redirect(loc, path, query)),
        (Found::Folder, Purpose::ErrorPage) => Err(Refusal::NotFound),
        (Found::Other, _) => Err(Refusal::Forbidden),
    }
}

/// Whether the normalised `path` of route `loc` exists for `try_files`: a
/// folder when `path` ends in `/`, otherwise anything but a folder (a FIFO
/// then gets its 403 when served). Nothing is opened but an `O_PATH`.
pub(super) fn exists(roots: &mut RootCache, loc: &Location, path: &str) -> bool {
    let Some((base, rel, alias)) = map(loc, path) else {
        return false;
    };
    if hidden(rel) {
        return false;
    }
    let folder = path.ends_with('/');
    let Ok((dir, anchored)) = anchor(roots, base, rel.as_bytes(), alias && !folder) else {
        return false;
    };
    dir.stat(anchored)
        .is_ok_and(|m| (m.kind == FileKind::Directory) == folder)
}

/// What a path that does not end in `/` names.
enum Found {
    File(Cached),
    Folder,
    /// A FIFO, device or socket (HTTP.md rule 30).
    Other,
}

/// Whether the last component of `rel` is the name of an upload in
/// progress: such a file is not there for clients (CONFIG.md "Serving what
/// users uploaded"), whatever route reaches it.
pub(super) fn hidden(rel: &str) -> bool {
    let rel = rel.strip_suffix('/').unwrap_or(rel);
    let last = rel.rsplit('/').next().unwrap_or(rel);
    is_temp_name(last.as_bytes())
}

/// Look `rel` up beneath `base` through the open-file cache: a fresh entry
/// as it is, a stale one revalidated with `stat`, else the file opened and
/// remembered. Only a regular file is ever opened: what the `stat` says is
/// a folder or a FIFO, socket or device is answered from the `stat` alone.
/// `Err` is the status of the failure.
fn lookup(roots: &mut RootCache, base: &Path, rel: &str, alias: bool) -> Result<Found, Refusal> {
    let base_key = base.as_os_str().as_bytes();
    if let Some(hit) = roots.files.fresh(base_key, rel.as_bytes()) {
        return Ok(Found::File(hit));
    }
    let (dir, anchored) =
        anchor(roots, base, rel.as_bytes(), alias).map_err(|e| Refusal::of_lookup(&e))?;
    let now = dir.stat(anchored).map_err(|e| Refusal::of_lookup(&e))?;
    match now.kind {
        FileKind::Regular => {}
        FileKind::Directory => return Ok(Found::Folder),
        FileKind::Other => return Ok(Found::Other),
    }
    // A cached entry from an earlier second: still the same file?
    let anchored = anchored.to_vec();
    if let Some(hit) = roots.files.revalidate(base_key, rel.as_bytes(), &now) {
        return Ok(Found::File(hit));
    }
    let (dir, _) =
        anchor(roots, base, rel.as_bytes(), alias).map_err(|e| Refusal::of_lookup(&e))?;
    Ok(
        // Replaced since the `stat` by something else: that is the answer.
        match dir
            .open_regular(&anchored)
            .map_err(|e| Refusal::of_lookup(&e))?
        {
            Opened::File(file, meta) => {
                Found::File(roots.files.insert(base_key, rel.as_bytes(), file, meta))
            }
            Opened::Not(meta) if meta.kind == FileKind::Directory => Found::Folder,
            Opened::Not(_) => Found::Other,
        },
    )
}

/// A folder (`rel` is empty or ends in `/`): its index file, or its listing.
fn folder<'c>(
    dir: &Dir,
    types: &'c MimeTypes,
    loc: &'c Location,
    path: &str,
    rel: &[u8],
    purpose: Purpose,
) -> Result<Reply<'c>, Refusal> {
    for index in &loc.index {
        let index = index.trim_start_matches('/');
        let mut name = arrayvec::ArrayVec::<u8, INDEX_PATH>::new();
        if index.is_empty()
            || name.try_extend_from_slice(rel).is_err()
            || name.try_extend_from_slice(index.as_bytes()).is_err()
        {
            continue;
        }
        match dir.open_regular(&name) {
            Ok(Opened::File(file, meta)) => {
                let cached = Cached {
                    file: Rc::new(file),
                    meta,
                    bytes: None,
                };
                return Ok(file_reply(types, loc, index, cached, None));
            }
            // A folder or a FIFO named like the index is not an index (and
            // was not opened).
            Ok(Opened::Not(_)) => {}
            // Missing (or the folder itself is missing): try the next one.
            Err(e) if Refusal::of_lookup(&e) == Refusal::NotFound => {}
            Err(e) => return Err(Refusal::of_lookup(&e)),
        }
    }
    let meta = dir.stat(rel).map_err(|e| Refusal::of_lookup(&e))?;
    if meta.kind != FileKind::Directory {
        return Err(Refusal::NotFound);
    }
    if purpose == Purpose::ErrorPage || !loc.autoindex {
        return Err(Refusal::Forbidden);
    }
    let entries = dir.list(rel).map_err(|e| Refusal::of_lookup(&e))?;
    let mut r = Reply::status(200);
    r.content_type = Some(Cow::Borrowed(error_page::HTML));
    r.headers = &loc.add_headers;
    r.sandbox = loc.upload_store.is_some();
    r.body = Body::Bytes(listing::render(path, entries));
    Ok(r)
}

/// 200 with the whole regular `file`; its type from the extension of
/// `name`, its validators (`Last-Modified`, `ETag`) from its `fstat`;
/// `coding`: it is the precompressed sibling of `name` in that coding.
fn file_reply<'c>(
    types: &'c MimeTypes,
    loc: &'c Location,
    name: &str,
    f: Cached,
    coding: Option<Coding>,
) -> Reply<'c> {
    let mut r = Reply::status(200);
    r.content_type = Some(content_type::content_type(types, name));
    r.last_modified = Some(f.meta.mtime);
    r.etag = Some(ETag {
        mtime: f.meta.mtime,
        size: f.meta.size,
        coding,
    });
    r.encoding = coding;
    r.accept_ranges = true;
    // nginx's gzip_static says `Vary` whichever file it sends.
    r.vary_encoding = loc.gzip_static || loc.brotli_static || loc.zstd_static;
    r.headers = &loc.add_headers;
    r.sandbox = loc.upload_store.is_some();
    r.body = match f.bytes {
        Some(bytes) => Body::Shared {
            start: 0,
            len: bytes.len(),
            data: bytes,
        },
        None => Body::File {
            file: f.file,
            start: 0,
            len: f.meta.size,
        },
    };
    r
}

/// 301 to the folder's path with its slash, the query kept (CONFIG.md).
fn slash_redirect<'c>(loc: &'c Location, path: &str, query: Option<&[u8]>) -> Reply<'c> {
    let mut to = String::with_capacity(path.len() + 2 + query.map_or(0, <[u8]>::len));
    encode::path(&mut to, path.as_bytes());
    to.push('/');
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        to.push('?');
        encode::query(&mut to, q);
    }
    let mut r = error_page::builtin(301);
    r.location = Some(Cow::Owned(to));
    r.headers = &loc.add_headers;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_hidden_anywhere_in_a_path() {
        let part = ".upload-0123456789abcdef.part";
        for (rel, want) in [
            (part.to_string(), true),
            (format!("a/b/{part}"), true),
            (format!("{part}/"), true),
            (format!("{part}.txt"), false),
            (format!("{part}/x"), false),
            (".upload-.part".to_string(), false),
            ("upload-0123456789abcdef.part".to_string(), false),
            (String::new(), false),
        ] {
            assert_eq!(hidden(&rel), want, "{rel:?}");
        }
    }
}
