//! Uploads into an `upload_store` folder, and DELETE (CONFIG.md "Request
//! bodies and uploads").
//!
//! An upload is written under a hidden temporary name (`.upload-*.part`,
//! created `O_EXCL` in the upload folder itself, so the final `rename` is
//! atomic) and renamed into place only once the whole body has arrived:
//! a half-received file never appears under its name. Every temporary file
//! not yet renamed is unlinked when the sink is dropped, so a client that
//! goes away, a body over the limit or a failed `finish` leaves nothing
//! behind. The temporary name is not there for clients: GET/HEAD and
//! DELETE of it answer 404 (CONFIG.md "Serving what users uploaded"), so no
//! one can read or remove an upload in progress. What a crash left behind
//! is removed at start ([`remove_leftovers`]).
//!
//! Names: a raw `POST`/`PUT PREFIX/NAME` stores exactly NAME, which must be
//! a single, plain file name ([`sanitize`] must leave it unchanged, else
//! 400); a multipart file part is stored under its file name made safe by
//! [`sanitize`] (`upload-<random hex>` when nothing is left of it). Every
//! file operation goes through `sys::Dir`, beneath the upload folder: no
//! name can leave it.
//!
//! Multipart (`POST` of `multipart/form-data`, to the prefix or any path
//! of the route: files always land in the folder itself) is all or
//! nothing: each file part is written to a temporary file of its own, and
//! only when the whole body has arrived and parsed are they all renamed
//! into place; a malformed or truncated body (400), a full disk (507) or a
//! client gone leaves no file (only a `rename` failing halfway through,
//! which the checks made before the first one leave unlikely, keeps the
//! files already renamed). Parts without a `filename` (form fields) and
//! parts with an empty one (a file input left empty) are skipped; a body
//! with no file at all answers 400. Two parts with one name: the later
//! wins, and the name is listed once.

use crate::handlers::Refusal;
use std::borrow::Cow;

use super::static_file;
use super::{Action, Body, Ctx, Reply, RootCache, Route, encode, error_page};
use crate::config::{Location, Server};
use crate::http::bytes::trim_ows;
use crate::http::multipart::{Multipart, MultipartError, PartInfo, PartSink};
use crate::http::{Method, MethodSet, Request};
use crate::sys::{Dir, File, FileKind};

/// Longest file name stored (`NAME_MAX` of Linux file systems), in bytes.
pub const MAX_NAME: usize = 255;

/// Most files one multipart body may store (each holds a temporary file
/// until the end of the body).
pub const MAX_FILES: usize = 1000;

/// `Content-Type` of the list of stored names.
const TEXT: &str = "text/plain; charset=utf-8";

/// Where an upload's decoded body bytes go. Files are written under a
/// temporary hidden name and renamed into place by `finish`; dropping an
/// unfinished sink removes every temporary file (client gone, limit hit).
#[derive(Debug)]
pub struct UploadSink {
    /// The upload folder, opened for this upload alone (`Dir` is not
    /// `Clone`, and the root cache is not the sink's to keep).
    dir: Dir,
    /// The normalised request path: at `finish`, its location gives the
    /// `add_header`s and `error_page`s (the sink holds no borrow of the
    /// configuration).
    path: String,
    /// The route's prefix with one trailing `/`: stored files are at
    /// `base_url` + their name (for `Location`).
    base_url: String,
    /// Body bytes taken so far (written or spliced).
    bytes: u64,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// The body is the file: `temp` until renamed to `name`.
    Raw { temp: Option<Temp>, name: String },
    /// A multipart body: the parser (boxed: it holds an 8 KiB header
    /// buffer) and the parts written so far.
    Multipart(Box<Multipart>, Parts),
}

/// The file parts of a multipart body.
#[derive(Debug, Default)]
struct Parts {
    /// The file part being written, and its final name.
    current: Option<(Temp, String)>,
    /// Complete parts, in body order: (temporary name, final name).
    done: Vec<(String, String)>,
}

/// The parser's view of the upload folder: one temporary file per file part.
struct PartWriter<'a> {
    dir: &'a Dir,
    parts: &'a mut Parts,
}

impl PartSink for PartWriter<'_> {
    type Error = Refusal;

    fn start(&mut self, part: &PartInfo<'_>) -> Result<(), Refusal> {
        let Some(filename) = part.filename.filter(|f| !f.is_empty()) else {
            // A form field, or a file input left empty: not stored.
            return Ok(());
        };
        if self.parts.done.len() >= MAX_FILES {
            return Err(Refusal::BadRequest);
        }
        if let Some((t, _)) = self.parts.current.take() {
            // A part not ended (the parser always ends one first): never
            // leave its file behind.
            let _ = self.dir.unlink(t.name.as_bytes());
        }
        let (file, temp) = self
            .dir
            .create_temp(b"")
            .map_err(|e| Refusal::of_write(&e))?;
        let name = sanitize(filename).unwrap_or_else(|| generated_name(&temp));
        self.parts.current = Some((Temp { file, name: temp }, name));
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        match &self.parts.current {
            Some((t, _)) => t.file.write_all(bytes).map_err(|e| Refusal::of_write(&e)),
            None => Ok(()),
        }
    }

    fn end(&mut self) -> Result<(), Refusal> {
        if let Some((t, name)) = self.parts.current.take() {
            // The descriptor closes here; the name waits for `finish`.
            self.parts.done.push((t.name, name));
        }
        Ok(())
    }
}

/// A name for a file part whose file name leaves nothing once sanitised:
/// `upload-<hex>`, from the random part of its temporary name
/// (`.upload-<hex>.part`), so it is unique in the folder.
fn generated_name(temp: &str) -> String {
    let core = temp.trim_start_matches('.');
    core.strip_suffix(".part").unwrap_or(core).to_string()
}

/// The refusal for a multipart error: the sink's own, else 400.
fn multipart_refusal(e: MultipartError<Refusal>) -> Refusal {
    match e {
        MultipartError::Sink(r) => r,
        _ => Refusal::BadRequest,
    }
}

/// A temporary file being written, and its name in the upload folder.
#[derive(Debug)]
struct Temp {
    file: File,
    name: String,
}

impl UploadSink {
    /// Take the next decoded body bytes. `Err(status)` aborts the upload:
    /// 507 when the disk is full, 400 for a malformed multipart body, 500
    /// for another I/O error.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Refusal> {
        match &mut self.kind {
            Kind::Raw { temp, .. } => {
                let t = temp.as_ref().ok_or(Refusal::Internal)?;
                t.file.write_all(data).map_err(|e| Refusal::of_write(&e))?;
            }
            Kind::Multipart(parser, parts) => {
                let mut sink = PartWriter {
                    dir: &self.dir,
                    parts,
                };
                parser.feed(data, &mut sink).map_err(multipart_refusal)?;
            }
        }
        self.bytes = self.bytes.saturating_add(data.len() as u64);
        Ok(())
    }

    /// For a raw (not multipart) upload: the file being written, so the
    /// server may `splice` socket → pipe → file without copying.
    pub fn raw_file(&self) -> Option<&File> {
        match &self.kind {
            Kind::Raw { temp, .. } => temp.as_ref().map(|t| &t.file),
            Kind::Multipart(..) => None,
        }
    }

    /// Account for `n` bytes the server spliced into `raw_file()`.
    pub fn spliced(&mut self, n: u64) {
        self.bytes = self.bytes.saturating_add(n);
    }

    /// Body bytes taken so far (written or spliced).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The body is complete: rename into place and answer (201 + Location
    /// for a new file, 204 when one was replaced; multipart: 201 with the
    /// Location of the first file and every stored name in the body).
    ///
    /// On failure the error page of the route is returned and every
    /// temporary file is removed (by `Drop`).
    pub fn finish<'c>(mut self, ctx: &mut Ctx<'c>) -> Reply<'c> {
        // Files change under the open-file cache: forget it.
        ctx.roots.files.clear();
        let server: &'c Server = ctx.server;
        let loc = server.find_location(&self.path);
        match self.commit() {
            Ok(Done::Replaced) => {
                let mut r = Reply::status(204);
                r.headers = &loc.add_headers;
                r
            }
            Ok(Done::Created(names)) => self.created(loc, &names),
            Err(status) => error_page::reply(ctx, status.status(), loc),
        }
    }

    /// Rename what was written into place.
    fn commit(&mut self) -> Result<Done, Refusal> {
        match &mut self.kind {
            Kind::Raw { temp, name } => {
                let t = temp.as_ref().ok_or(Refusal::Internal)?;
                let existed = target_exists(&self.dir, name.as_bytes())?;
                self.dir
                    .rename(b"", t.name.as_bytes(), name.as_bytes())
                    .map_err(|e| Refusal::of_write(&e))?;
                // Renamed: nothing is left for `Drop` to remove.
                *temp = None;
                if existed {
                    Ok(Done::Replaced)
                } else {
                    Ok(Done::Created(vec![name.clone()]))
                }
            }
            Kind::Multipart(parser, parts) => {
                let mut sink = PartWriter {
                    dir: &self.dir,
                    parts,
                };
                parser.finish(&mut sink).map_err(multipart_refusal)?;
                if parts.done.is_empty() {
                    return Err(Refusal::BadRequest);
                }
                // Refuse before renaming anything, so a folder in the way
                // of one file does not leave the others stored.
                for (_, name) in &parts.done {
                    target_exists(&self.dir, name.as_bytes())?;
                }
                let mut stored: Vec<String> = Vec::with_capacity(parts.done.len());
                // Oldest first, so a later part of the same name wins.
                let mut rest = std::mem::take(&mut parts.done).into_iter();
                while let Some((temp, name)) = rest.next() {
                    if let Err(e) = self.dir.rename(b"", temp.as_bytes(), name.as_bytes()) {
                        // Unlink this one now, the others by `Drop`; the
                        // files already renamed stay (nothing to undo a
                        // replacement with).
                        let _ = self.dir.unlink(temp.as_bytes());
                        parts.done.extend(rest);
                        return Err(Refusal::of_write(&e));
                    }
                    if !stored.contains(&name) {
                        stored.push(name);
                    }
                }
                Ok(Done::Created(stored))
            }
        }
    }

    /// 201 with the `Location` of the first stored file and every stored
    /// name, one per line, as `text/plain`.
    fn created<'c>(&self, loc: &'c Location, names: &[String]) -> Reply<'c> {
        let mut r = Reply::status(201);
        if let Some(first) = names.first() {
            let mut url = String::with_capacity(self.base_url.len() + first.len() + 8);
            encode::path(&mut url, self.base_url.as_bytes());
            encode::href(&mut url, first.as_bytes());
            r.location = Some(Cow::Owned(url));
        }
        let mut body = String::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        for n in names {
            body.push_str(n);
            body.push('\n');
        }
        r.content_type = Some(Cow::Borrowed(TEXT));
        r.body = Body::Bytes(body.into_bytes());
        r.headers = &loc.add_headers;
        r
    }
}

impl Drop for UploadSink {
    /// Remove every temporary file not renamed into place.
    fn drop(&mut self) {
        match &mut self.kind {
            // Nothing more can be done about a failure here (the names are
            // hidden and unique, so they harm no one).
            Kind::Raw { temp, .. } => {
                if let Some(t) = temp.take() {
                    let _ = self.dir.unlink(t.name.as_bytes());
                }
            }
            Kind::Multipart(_, parts) => {
                if let Some((t, _)) = parts.current.take() {
                    let _ = self.dir.unlink(t.name.as_bytes());
                }
                for (temp, _) in parts.done.drain(..) {
                    let _ = self.dir.unlink(temp.as_bytes());
                }
            }
        }
    }
}

/// What `commit` achieved.
enum Done {
    /// A raw upload replaced an existing file.
    Replaced,
    /// New files, in the order stored.
    Created(Vec<String>),
}

/// Whether `name` exists in the upload folder: a folder there cannot be
/// replaced (409, as nginx's dav module answers a PUT to a collection).
/// A symlink that leads out of the folder exists too (the rename replaces
/// the link itself, never what it points to).
fn target_exists(dir: &Dir, name: &[u8]) -> Result<bool, Refusal> {
    match dir.stat(name) {
        Ok(meta) if meta.kind == FileKind::Directory => Err(Refusal::Conflict),
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(_) => Ok(true),
    }
}

/// A file name made safe to store: the last component of `raw` (after the
/// last `/` or `\`, as browsers on Windows may send a whole path), invalid
/// UTF-8 replaced by U+FFFD, control characters (NUL included) and bidi
/// controls removed, leading dots and white space removed (no hidden file,
/// no `.`/`..`, no clash with `.upload-*.part`), trailing white space
/// removed, cut to [`MAX_NAME`] bytes on a character boundary. `None` when
/// nothing is left.
pub fn sanitize(raw: &[u8]) -> Option<String> {
    let last = raw
        .rsplit(|&b| b == b'/' || b == b'\\')
        .next()
        .unwrap_or(raw);
    let text = String::from_utf8_lossy(last);
    let kept: String = text.chars().filter(|&c| !unwanted(c)).collect();
    let name = kept
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end();
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let name = name.get(..end).unwrap_or("").trim_end();
    (!name.is_empty()).then(|| name.to_string())
}

/// Characters never kept in a stored name: controls (C0, DEL, C1) and the
/// bidi formatting characters that can make `gpj.exe` read as `exe.jpg`.
fn unwanted(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// What an `upload_store` route does with a routed request: DELETE removes
/// a file of its folder, POST/PUT store the body, GET/HEAD/OPTIONS are
/// answered from the folder as by `alias DIR` (never as CGI).
pub(super) fn dispatch<'c>(
    ctx: &mut Ctx<'c>,
    req: &Request<'_>,
    route: &Route<'c, '_>,
) -> Action<'c> {
    let loc = route.location;
    match req.method {
        Method::Delete => Action::Reply(delete(ctx, route)),
        Method::Post | Method::Put => match start(req, route) {
            Ok(sink) => Action::Upload(sink),
            Err(status) => Action::Reply(error_page::reply(ctx, status.status(), loc)),
        },
        Method::Get | Method::Head | Method::Options => {
            Action::Reply(super::serve_static(ctx, req, route))
        }
        _ => {
            let mut r = error_page::reply(ctx, 405, loc);
            r.allow = Some(upload_methods(loc.methods));
            Action::Reply(r)
        }
    }
}

/// What an upload route can answer among the methods it allows.
fn upload_methods(allowed: MethodSet) -> MethodSet {
    [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Options,
    ]
    .into_iter()
    .filter(|m| allowed.contains(*m))
    .fold(MethodSet::EMPTY, MethodSet::with)
}

/// Open the sink for a POST/PUT on an upload route: a `POST` of
/// `multipart/form-data` is parsed (a bad boundary is 400 before the body
/// is read), any other body is the file NAME.
fn start(req: &Request<'_>, route: &Route<'_, '_>) -> Result<UploadSink, Refusal> {
    let loc = route.location;
    let store = loc.upload_store.as_ref().ok_or(Refusal::Internal)?;
    let multipart = match req.header("content-type") {
        Some(ct) if req.method == Method::Post && is_form_data(ct) => {
            Some(Multipart::new(ct).map_err(|_| Refusal::BadRequest)?)
        }
        _ => None,
    };
    let (dir, kind) = match multipart {
        Some(parser) => {
            let dir = Dir::open(store).map_err(|e| Refusal::of_write(&e))?;
            (dir, Kind::Multipart(Box::new(parser), Parts::default()))
        }
        None => {
            let rest = route
                .path
                .strip_prefix(loc.prefix.as_str())
                .ok_or(Refusal::NotFound)?
                .trim_start_matches('/');
            let name = raw_name(rest)?;
            let dir = Dir::open(store).map_err(|e| Refusal::of_write(&e))?;
            // A folder in the way is refused before the body is read.
            target_exists(&dir, name.as_bytes())?;
            let (file, temp) = dir.create_temp(b"").map_err(|e| Refusal::of_write(&e))?;
            let raw = Kind::Raw {
                temp: Some(Temp { file, name: temp }),
                name: name.to_string(),
            };
            (dir, raw)
        }
    };
    let mut base_url = loc.prefix.trim_end_matches('/').to_string();
    base_url.push('/');
    Ok(UploadSink {
        dir,
        path: route.path.to_string(),
        base_url,
        bytes: 0,
        kind,
    })
}

/// Whether a `Content-Type` value's media type is `multipart/form-data`.
fn is_form_data(content_type: &[u8]) -> bool {
    let media = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or(content_type);
    trim_ows(media).eq_ignore_ascii_case(b"multipart/form-data")
}

/// The NAME of a raw `POST`/`PUT PREFIX/NAME`: one plain file name that
/// [`sanitize`] leaves as it is (400 otherwise: no folder, no hidden file,
/// nothing the client did not ask for), so the file lands at exactly the
/// URL the client named. The bare prefix names no file: 400.
fn raw_name(rest: &str) -> Result<&str, Refusal> {
    match sanitize(rest.as_bytes()) {
        Some(clean) if clean == rest => Ok(rest),
        _ => Err(Refusal::BadRequest),
    }
}

/// DELETE of the file that the route maps (root, alias or upload folder):
/// 204; missing 404; a folder (or the route's folder itself) 403.
pub(super) fn delete<'c>(ctx: &mut Ctx<'c>, route: &Route<'c, '_>) -> Reply<'c> {
    ctx.roots.files.clear();
    let loc = route.location;
    match remove(ctx.roots, loc, route.path) {
        Ok(()) => {
            let mut r = Reply::status(204);
            r.headers = &loc.add_headers;
            r
        }
        Err(status) => error_page::reply(ctx, status.status(), loc),
    }
}

/// Unlink the file at the normalised `path` of `loc`, beneath its anchor.
/// The file of an upload in progress is not there (404). Nothing is
/// opened: a FIFO or a device is unlinked like any file, never opened.
fn remove(roots: &mut RootCache, loc: &Location, path: &str) -> Result<(), Refusal> {
    let (base, rel, alias) = static_file::map(loc, path).ok_or(Refusal::NotFound)?;
    if static_file::hidden(rel) {
        return Err(Refusal::NotFound);
    }
    let want_folder = path.ends_with('/');
    let (dir, rel) = static_file::anchor(roots, base, rel.as_bytes(), alias && !want_folder)
        .map_err(|e| Refusal::of_lookup(&e))?;
    let meta = dir.stat(rel).map_err(|e| Refusal::of_lookup(&e))?;
    if meta.kind == FileKind::Directory {
        return Err(Refusal::Forbidden);
    }
    if want_folder {
        // `a.txt/` names a folder, and there is none.
        return Err(Refusal::NotFound);
    }
    dir.unlink(rel).map_err(|e| match e.raw_os_error() {
        Some(libc::EISDIR) => Refusal::Forbidden,
        _ => Refusal::of_lookup(&e),
    })
}

/// Remove the temporary files of uploads that were in progress when the
/// server last stopped without finishing them (a crash, `SIGKILL`): every
/// regular file named like one ([`crate::sys::file::is_temp_name`]) at the
/// top of every `upload_store` of `config`, where uploads write them, and
/// nothing else. Call it once at start, before any worker serves: at a
/// reload, another worker's upload may be in progress. Returns one message
/// per store or file that could not be cleaned, for the error log.
pub fn remove_leftovers(config: &crate::config::Config) -> Vec<String> {
    let mut stores: Vec<&std::path::Path> = config
        .servers
        .iter()
        .flat_map(|s| s.locations.iter())
        .filter_map(|l| l.upload_store.as_deref())
        .collect();
    stores.sort_unstable();
    stores.dedup();
    let mut errors = Vec::new();
    for store in stores {
        let listed = Dir::open(store).and_then(|dir| dir.list(b"").map(|e| (dir, e)));
        let (dir, entries) = match listed {
            Ok(found) => found,
            // A store that does not exist (yet) holds nothing to remove.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => {
                errors.push(format!("upload_store \"{}\": {e}", store.display()));
                continue;
            }
        };
        for entry in entries {
            if entry.meta.kind != FileKind::Regular || !crate::sys::file::is_temp_name(&entry.name)
            {
                continue;
            }
            if let Err(e) = dir.unlink(&entry.name) {
                errors.push(format!(
                    "cannot remove \"{}/{}\" ({e})",
                    store.display(),
                    String::from_utf8_lossy(&entry.name)
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_table() {
        let long = "é".repeat(200);
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"a.txt", Some("a.txt")),
            (b"../../etc/passwd", Some("passwd")),
            (b"a/b", Some("b")),
            (b"a\\b", Some("b")),
            (b"C:\\Users\\me\\photo.jpg", Some("photo.jpg")),
            (b".hidden", Some("hidden")),
            (b".upload-0123.part", Some("upload-0123.part")),
            (b"...", None),
            (b".", None),
            (b"..", None),
            (b"", None),
            (b"dir/", None),
            (b"  . x.txt ", Some("x.txt")),
            (b"a\0b.txt", Some("ab.txt")),
            (b"a\r\nb\x7f", Some("ab")),
            (b"\0", None),
            (
                "caf\u{e9} \u{65e5}\u{672c}.txt".as_bytes(),
                Some("caf\u{e9} \u{65e5}\u{672c}.txt"),
            ),
            ("gpj.\u{202e}exe".as_bytes(), Some("gpj.exe")),
            (b"bad\xffutf8", Some("bad\u{fffd}utf8")),
        ];
        for (raw, want) in cases {
            assert_eq!(
                sanitize(raw).as_deref(),
                *want,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let a300 = "a".repeat(300);
        assert_eq!(sanitize(a300.as_bytes()).unwrap().len(), MAX_NAME);
        // 200 two-byte characters: cut at 254 bytes, never inside one.
        let cut = sanitize(long.as_bytes()).unwrap();
        assert_eq!(cut.len(), 254);
        assert_eq!(cut, "é".repeat(127));
    }

    #[test]
    fn raw_names() {
        assert_eq!(raw_name("a.txt"), Ok("a.txt"));
        assert_eq!(raw_name("caf\u{e9}.txt"), Ok("caf\u{e9}.txt"));
        for bad in ["", "a/b", ".hidden", "a\\b", " a", "..", &"x".repeat(256)] {
            assert_eq!(raw_name(bad), Err(Refusal::BadRequest), "{bad:?}");
        }
        assert_eq!(raw_name(&"x".repeat(255)).map(str::len), Ok(255));
    }
}
