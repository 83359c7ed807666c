//! Internal redirects: what `try_files` settles on, and what a CGI's
//! `X-Accel-Redirect` keeps of the client's request to serve its target.
//! A request reaches an `internal` location only through these (and
//! `error_page`); [`super::decide`] answers a client's own request for one
//! with 404. Every redirect is counted, and one past [`MAX_REDIRECTS`]
//! answers 500, as nginx does for a rewrite cycle.

use crate::config::{Location, TryFile};
use crate::http::{Method, ParseState, Request, parse_head};

use super::{RootCache, static_file};

/// nginx's bound on internal redirects of one request
/// (`NGX_HTTP_MAX_URI_CHANGES`).
pub(super) const MAX_REDIRECTS: u8 = 10;

/// What `try_files` settles on.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Tried {
    /// This path exists: served in the same location.
    Path(String),
    /// `=CODE`.
    Status(u16),
    /// The last URI: looked up through the locations again.
    Redirect(String),
}

/// The `try_files` of `loc` for the normalised `path`: the first FILE that
/// exists (a regular file, or with a trailing `/` a folder), else the last
/// argument. `None` when the location has no `try_files`.
pub(super) fn try_files(roots: &mut RootCache, loc: &Location, path: &str) -> Option<Tried> {
    let (last, files) = loc.try_files.split_last()?;
    for f in files {
        if let TryFile::File(f) = f {
            let candidate = expand(f, path);
            if static_file::exists(roots, loc, &candidate) {
                return Some(Tried::Path(candidate));
            }
        }
    }
    Some(match last {
        TryFile::Status(code) => Tried::Status(*code),
        // The URI is decoded again when it is looked up: the decoded path
        // goes in encoded, so `%`, `?` and `#` in a file name stay themselves.
        TryFile::Redirect(uri) | TryFile::File(uri) => {
            Tried::Redirect(expand(uri, &reencode(path)))
        }
    })
}

/// `pattern` with each `$uri` replaced by `path`, runs of `/` merged (so
/// `$uri/` of `/` is `/`).
fn expand(pattern: &str, path: &str) -> String {
    let full = pattern.replace("$uri", path);
    let mut out = String::with_capacity(full.len());
    for c in full.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}

/// A decoded path made a URI again: `%`, `?` and `#` percent-encoded (the
/// only bytes of a normalised path that decoding or parsing would change).
fn reencode(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains(['%', '?', '#']) {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The request headers that the static path reads (ranges, preconditions,
/// content codings), in the order they are written into [`Kept::request`].
const KEPT_FIELDS: [&str; 5] = [
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "accept-encoding",
];

/// What a CGI request keeps of its client's head, so that an
/// `X-Accel-Redirect` answer is served as if the client had asked for its
/// target: HEAD or not, and the fields the static path reads. Owned and
/// bounded (a subset of a head of at most `MAX_HEAD` bytes); made only for
/// requests that run a script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    head_only: bool,
    /// `Name: value\r\n` lines of [`KEPT_FIELDS`] present in the request.
    fields: Vec<u8>,
}

impl Kept {
    /// What `req` keeps.
    pub fn of(req: &Request<'_>) -> Kept {
        let mut fields = Vec::new();
        for name in KEPT_FIELDS {
            if let Some(v) = req.header(name) {
                fields.extend_from_slice(name.as_bytes());
                fields.extend_from_slice(b": ");
                fields.extend_from_slice(v);
                fields.extend_from_slice(b"\r\n");
            }
        }
        Kept {
            head_only: req.method == Method::Head,
            fields,
        }
    }

    /// The head of a request for `uri` with the kept fields: GET, or HEAD
    /// for a HEAD (nginx turns the method of an `X-Accel-Redirect` into GET).
    /// `None` when `uri` is not a local path.
    pub(super) fn request(&self, uri: &[u8]) -> Option<Vec<u8>> {
        if !uri.starts_with(b"/") {
            return None;
        }
        let method: &[u8] = if self.head_only { b"HEAD " } else { b"GET " };
        let mut head = Vec::with_capacity(uri.len() + self.fields.len() + 48);
        head.extend_from_slice(method);
        head.extend_from_slice(uri);
        head.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\n");
        head.extend_from_slice(&self.fields);
        head.extend_from_slice(b"\r\n");
        Some(head)
    }
}

/// Parse a head made by [`Kept::request`]; `None` when the URI was not a
/// valid request target.
pub(super) fn parse(head: &[u8]) -> Option<Request<'_>> {
    match parse_head(head, &mut ParseState::default()) {
        Ok(crate::http::Parse::Complete(req, _)) => Some(req),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Got, Site, owned};
    use super::super::{Action, Ctx, RootCache, decide};
    use super::*;
    use crate::config::Config;

    /// What `decide` makes of `GET target` (with `extra` header lines).
    fn decided(cfg: &Config, target: &str, extra: &str) -> Got {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: test\r\n{extra}\r\n");
        let Ok(crate::http::Parse::Complete(req, _)) =
            parse_head(raw.as_bytes(), &mut ParseState::default())
        else {
            panic!("unparsed: {raw:?}");
        };
        let mut roots = RootCache::default();
        let mut ctx = Ctx::for_tests(cfg, &mut roots, Default::default());
        match decide(&mut ctx, &req).action {
            Action::Reply(r) => owned(r),
            other => panic!("{target}: {other:?}"),
        }
    }

    /// What `accel` makes of `X-Accel-Redirect: uri` for a GET with `extra`.
    fn accelerated(cfg: &Config, uri: &str, extra: &str) -> Got {
        let raw = format!("POST /cgi HTTP/1.1\r\nHost: test\r\n{extra}\r\n");
        let Ok(crate::http::Parse::Complete(req, _)) =
            parse_head(raw.as_bytes(), &mut ParseState::default())
        else {
            panic!("unparsed: {raw:?}");
        };
        let kept = Kept::of(&req);
        let mut roots = RootCache::default();
        let mut ctx = Ctx::for_tests(cfg, &mut roots, Default::default());
        owned(super::super::accel(&mut ctx, uri.as_bytes(), &kept))
    }

    const SITE: &str = "server {
        listen 127.0.0.1:8080;
        root @/www;
        location / { try_files $uri $uri/ /index.html; }
        location /strict/ { try_files $uri =404; }
        location /html/ { try_files $uri $uri.html =410; }
        location /fallback/ { try_files $uri /private/fallback.txt; }
        location /private/ { internal; alias @/private/; }
        location /loop/ { try_files $uri /loop/again; }
        location /deny/ { try_files $uri =403; error_page 403 = /a.html; }
        location /errs/ {
            error_page 404 =200 /a.html;
            error_page 403 = /a.html;
            error_page 500 =204 /a.html;
        }
        location /errs/broken/ { try_files $uri =500; error_page 500 =204 /a.html; }
        location /secret/ { error_page 404 /private/oops.html; }
        location /shut/ { internal; return 302 /; }
        location /r/ { try_files $uri /r$uri; }
        location /s/ { try_files $uri /s$uri; }
    }";

    fn site(name: &str) -> Site {
        let s = Site::new(name);
        s.file("www/a.html", "A")
            .file("www/index.html", "I")
            .file("www/dir/index.html", "D")
            .file("www/strict/s.txt", "S")
            .file("www/html/page.html", "P")
            .file("www/loop/here.txt", "L")
            .mkdir("www/errs/list")
            .file("private/fallback.txt", "F")
            .file("private/oops.html", "O")
            .file("private/f.bin", "0123456789")
            // Ten redirects from /r/x (allowed), eleven from /s/x (not).
            .file(&format!("www/{}x", "r/".repeat(11)), "R")
            .file(&format!("www/{}x", "s/".repeat(12)), "S");
        s
    }

    #[test]
    fn try_files_internal_and_error_page_table() {
        let s = site("internal-table");
        let cfg = s.config(SITE);
        let cases: &[(&str, u16, &str)] = &[
            // (target, status, body)
            ("/a.html", 200, "A"),
            ("/dir", 200, "D"),
            ("/dir/", 200, "D"),
            ("/", 200, "I"),
            ("/no/such/page", 200, "I"),
            ("/strict/s.txt", 200, "S"),
            ("/strict/none", 404, ""),
            // A folder exists for `$uri` of a path ending in `/` (nginx).
            ("/strict/", 403, ""),
            ("/html/page", 200, "P"),
            ("/html/page.html", 200, "P"),
            ("/html/zzz", 410, ""),
            ("/fallback/x", 200, "F"),
            ("/loop/here.txt", 200, "L"),
            ("/loop/x", 500, ""),
            ("/deny/x", 200, "A"),
            ("/private/fallback.txt", 404, ""),
            ("/private/", 404, ""),
            ("/shut/x", 404, ""),
            ("/errs/missing", 200, "A"),
            ("/errs/list/", 200, "A"),
            ("/errs/broken/x", 204, ""),
            ("/secret/none", 404, "O"),
            ("/r/x", 200, "R"),
            ("/s/x", 500, ""),
        ];
        for (target, status, body) in cases {
            let r = decided(&cfg, target, "");
            assert_eq!(r.status, *status, "{target}");
            if !body.is_empty() || r.status == 204 {
                assert_eq!(r.text(), *body, "{target}");
            }
        }
        // An internal location's own 404 is a built-in page, not its file.
        assert!(decided(&cfg, "/private/f.bin", "").text().contains("404"));
        // A page answered with another status carries no validators.
        let r = decided(&cfg, "/errs/missing", "If-None-Match: *\r\n");
        assert_eq!((r.status, r.etag), (200, None));
    }

    #[test]
    fn accel_targets() {
        let s = site("internal-accel");
        let cfg = s.config(SITE);
        let r = accelerated(&cfg, "/private/f.bin", "");
        assert_eq!((r.status, r.text().as_str()), (200, "0123456789"));
        assert!(r.etag.is_some());
        let r = accelerated(&cfg, "/private/f.bin", "Range: bytes=2-4\r\n");
        assert_eq!((r.status, r.text().as_str()), (206, "234"), "{r:?}");
        assert_eq!(r.content_range.as_deref(), Some("bytes 2-4/10"));
        let etag = r.etag.unwrap();
        let r = accelerated(
            &cfg,
            "/private/f.bin",
            &format!("If-None-Match: {etag}\r\n"),
        );
        assert_eq!((r.status, r.len), (304, 0));
        let r = accelerated(
            &cfg,
            "/private/f.bin",
            "Range: bytes=2-4\r\nIf-Range: \"other\"\r\n",
        );
        assert_eq!(r.status, 200);
        assert_eq!(accelerated(&cfg, "/private/none", "").status, 404);
        assert_eq!(
            accelerated(&cfg, "/private/../../etc/passwd", "").status,
            404
        );
        assert_eq!(accelerated(&cfg, "http://x/", "").status, 502);
        assert_eq!(accelerated(&cfg, "/a b", "").status, 502);
        // Through the target's try_files and its redirects.
        assert_eq!(accelerated(&cfg, "/nothing", "").text(), "I");
        assert_eq!(accelerated(&cfg, "/fallback/q", "").text(), "F");
        assert_eq!(accelerated(&cfg, "/strict/none", "").status, 404);
        assert_eq!(accelerated(&cfg, "/loop/x", "").status, 500);
    }

    #[test]
    fn accel_outside_every_location_is_404() {
        let s = site("internal-outside");
        let cfg = s.config(
            "server { listen 127.0.0.1:8080; root @/www;
                location /private/ { internal; alias @/private/; } }",
        );
        assert_eq!(accelerated(&cfg, "/a.html", "").status, 404);
        assert_eq!(accelerated(&cfg, "/private/f.bin", "").status, 200);
        // A client gets the server-level file, never the internal one.
        assert_eq!(decided(&cfg, "/a.html", "").status, 200);
        assert_eq!(decided(&cfg, "/private/f.bin", "").status, 404);
    }

    #[test]
    fn try_files_resolution_table() {
        let s = site("internal-resolve");
        let cfg = s.config(SITE);
        let server = &cfg.servers[0];
        let mut roots = RootCache::default();
        let cases: &[(&str, Option<Tried>)] = &[
            ("/a.html", Some(Tried::Path("/a.html".into()))),
            ("/dir", Some(Tried::Path("/dir/".into()))),
            ("/", Some(Tried::Path("/".into()))),
            ("/x", Some(Tried::Redirect("/index.html".into()))),
            ("/strict/none", Some(Tried::Status(404))),
            ("/html/page", Some(Tried::Path("/html/page.html".into()))),
            (
                "/fallback/q",
                Some(Tried::Redirect("/private/fallback.txt".into())),
            ),
            ("/private/f.bin", None),
            ("/errs/x", None),
        ];
        for (path, want) in cases {
            let loc = server.find_location(path);
            assert_eq!(&try_files(&mut roots, loc, path), want, "{path}");
        }
    }

    #[test]
    fn expand_table() {
        for (pattern, path, want) in [
            ("$uri", "/a/b.html", "/a/b.html"),
            ("$uri/", "/a", "/a/"),
            ("$uri/", "/", "/"),
            ("$uri.html", "/about", "/about.html"),
            ("/index.html", "/x", "/index.html"),
            ("/fallback$uri", "/x", "/fallback/x"),
            ("$uri$uri", "/x", "/x/x"),
        ] {
            assert_eq!(expand(pattern, path), want, "{pattern} {path}");
        }
    }

    #[test]
    fn a_decoded_path_goes_into_a_redirect_encoded() {
        assert_eq!(reencode("/plain/a.txt"), "/plain/a.txt");
        assert_eq!(reencode("/a%41?b#c"), "/a%2541%3Fb%23c");
        // Decoding it again gives the path back.
        let mut room = [0u8; 64];
        let back = crate::http::path::normalize(reencode("/a%41?b#c").as_bytes(), &mut room);
        assert_eq!(back.ok(), Some("/a%41?b#c"));
    }

    #[test]
    fn kept_fields_make_a_request() {
        let src = b"POST /cgi-bin/get.py HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\n\
            If-None-Match: \"x\"\r\nCookie: SID=1\r\nAccept-Encoding: gzip\r\n\r\n";
        let Ok(crate::http::Parse::Complete(req, _)) = parse_head(src, &mut ParseState::default())
        else {
            panic!("test head");
        };
        let kept = Kept::of(&req);
        let head = kept.request(b"/private/f.bin").unwrap();
        let r = parse(&head).unwrap();
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, b"/private/f.bin");
        assert_eq!(r.header("range"), Some(&b"bytes=0-9"[..]));
        assert_eq!(r.header("if-none-match"), Some(&b"\"x\""[..]));
        assert_eq!(r.header("accept-encoding"), Some(&b"gzip"[..]));
        assert_eq!(r.header("cookie"), None);
        assert!(kept.request(b"http://elsewhere/").is_none());
        assert!(kept.request(b"").is_none());
        // A target the parser refuses is no request.
        assert!(parse(&kept.request(b"/a b").unwrap()).is_none());
        let head_req = Kept {
            head_only: true,
            fields: Vec::new(),
        };
        let h = head_req.request(b"/x").unwrap();
        assert_eq!(parse(&h).unwrap().method, Method::Head);
    }
}
