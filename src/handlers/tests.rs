//! End-to-end tests of the handlers: a real folder tree under the temporary
//! folder, a configuration parsed from text and requests parsed from bytes,
//! with assertions on the `Reply` fields (and the bytes of its body).

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;
use crate::http::{Parse, ParseState, parse_head};

/// A folder tree for one test, removed when dropped.
pub(super) struct Site {
    pub(super) dir: PathBuf,
}

impl Site {
    pub(super) fn new(name: &str) -> Site {
        let dir = std::env::temp_dir().join(format!("ls-handlers-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::write(dir.join("secret.txt"), "TOP SECRET").unwrap();
        Site { dir }
    }

    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub(super) fn file(&self, rel: &str, body: &str) -> &Site {
        let p = self.dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, body).unwrap();
        self
    }

    pub(super) fn mkdir(&self, rel: &str) -> &Site {
        std::fs::create_dir_all(self.dir.join(rel)).unwrap();
        self
    }

    /// A configuration whose `@` stand for this site's folder.
    pub(super) fn config(&self, text: &str) -> Config {
        let text = text.replace('@', self.dir.to_str().unwrap());
        match crate::config::parse_str(&text, "test.conf", &self.dir) {
            Ok((c, _warnings)) => c,
            Err(errs) => panic!("{errs:?}\n{text}"),
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `Reply` made owned, with the bytes of its body.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Got {
    pub(super) status: u16,
    pub(super) content_type: Option<String>,
    pub(super) last_modified: Option<i64>,
    pub(super) location: Option<String>,
    pub(super) allow: Option<Vec<&'static str>>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) etag: Option<String>,
    pub(super) content_range: Option<String>,
    pub(super) accept_ranges: bool,
    pub(super) encoding: Option<&'static str>,
    pub(super) vary: bool,
    pub(super) expires: Option<(u64, i64)>,
    pub(super) body: Vec<u8>,
    pub(super) len: u64,
    pub(super) close: bool,
}

impl Got {
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(super) fn owned(r: Reply<'_>) -> Got {
    let len = r.body.len();
    let body = match r.body {
        Body::Empty => Vec::new(),
        Body::Static(b) => b.to_vec(),
        Body::Bytes(b) => b,
        Body::Shared { data, start, len } => data[start..start + len].to_vec(),
        Body::Parts(p) => p.bytes(),
        Body::File { file, start, len } => {
            let mut buf = vec![0u8; usize::try_from(len).unwrap()];
            let n = file.read_at(&mut buf, start).unwrap();
            buf.truncate(n);
            buf
        }
    };
    Got {
        status: r.status,
        content_type: r.content_type.map(Cow::into_owned),
        last_modified: r.last_modified,
        location: r.location.map(Cow::into_owned),
        allow: r.allow.map(|s| s.iter().map(Method::as_str).collect()),
        // As the head writer puts them: the route's, then the sandbox's.
        headers: r
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .chain(
                super::SANDBOX_HEADERS
                    .iter()
                    .filter(|_| r.sandbox)
                    .map(|(n, v)| (n.to_string(), v.to_string())),
            )
            .collect(),
        etag: r.etag.map(|e| e.text().to_string()),
        content_range: r.content_range.map(|c| c.text().to_string()),
        accept_ranges: r.accept_ranges,
        encoding: r.encoding.map(|c| c.name()),
        vary: r.vary_encoding,
        expires: r.expires,
        body,
        len,
        close: r.close,
    }
}

/// Send `METHOD TARGET` (plus `extra` header lines) to the first server.
fn send(cfg: &Config, method: &str, target: &str, extra: &str) -> Got {
    let raw = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n{extra}\r\n");
    let Ok(Parse::Complete(req, _)) = parse_head(raw.as_bytes(), &mut ParseState::default()) else {
        panic!("unparsed: {raw:?}");
    };
    let mut roots = RootCache::default();
    let mut ctx = Ctx::for_tests(cfg, &mut roots, Default::default());
    owned(handle(&mut ctx, &req))
}

fn get(cfg: &Config, target: &str) -> Got {
    send(cfg, "GET", target, "")
}

const BASIC: &str = "server {\n listen 127.0.0.1:8080;\n root @/www;\n}\n";

#[test]
fn root_serves_files_with_type_and_mtime() {
    let s = Site::new("root");
    s.file("www/a.html", "<p>hi</p>")
        .file("www/sub/b.txt", "bee");
    let cfg = s.config(BASIC);
    let r = get(&cfg, "/a.html");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<p>hi</p>");
    assert_eq!(r.len, 9);
    assert_eq!(r.content_type.as_deref(), Some("text/html; charset=utf-8"));
    let mtime = std::fs::metadata(s.path("www/a.html")).unwrap();
    let mtime = std::os::unix::fs::MetadataExt::mtime(&mtime);
    assert_eq!(r.last_modified, Some(mtime));
    assert!(!r.close);
    assert_eq!(get(&cfg, "/sub/b.txt").body, b"bee");
    assert_eq!(get(&cfg, "//sub/./x/../b.txt").body, b"bee");
    assert_eq!(get(&cfg, "/%73ub/b.txt").body, b"bee");
}

#[test]
fn mime_types_and_charsets() {
    let s = Site::new("mime");
    for f in [
        "a.css", "a.js", "a.json", "a.svg", "a.png", "a.txt", "noext", "a.HTML", "a.weird",
    ] {
        s.file(&format!("www/{f}"), "x");
    }
    let cfg = s.config(BASIC);
    let ty = |p: &str| get(&cfg, p).content_type.unwrap();
    assert_eq!(ty("/a.css"), "text/css; charset=utf-8");
    assert!(ty("/a.js").ends_with("javascript; charset=utf-8"));
    assert_eq!(ty("/a.json"), "application/json; charset=utf-8");
    assert_eq!(ty("/a.svg"), "image/svg+xml; charset=utf-8");
    assert_eq!(ty("/a.png"), "image/png");
    assert_eq!(ty("/a.txt"), "text/plain; charset=utf-8");
    assert_eq!(ty("/noext"), "application/octet-stream");
    assert_eq!(ty("/a.HTML"), "text/html; charset=utf-8");
    assert_eq!(ty("/a.weird"), "application/octet-stream");

    let cfg = s.config(
        "types { text/x-weird weird; } default_type text/plain;\n\
         server { listen 127.0.0.1:8080; root @/www; }\n",
    );
    assert_eq!(
        get(&cfg, "/a.weird").content_type.unwrap(),
        "text/x-weird; charset=utf-8"
    );
    assert_eq!(
        get(&cfg, "/noext").content_type.unwrap(),
        "text/plain; charset=utf-8"
    );
}

#[test]
fn root_and_alias_mapping() {
    let s = Site::new("alias");
    s.file("www/img/x.png", "root-img")
        .file("pics/x.png", "alias-img")
        .file("pics/deep/y.png", "deep")
        .file("icons/site.ico", "icon")
        .file("other/img/x.png", "other-root");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n\
         location /img { root @/other; }\n\
         location /test { alias @/pics; }\n\
         location /t2/ { alias @/pics/; }\n\
         location = /favicon.ico { alias @/icons/site.ico; }\n\
         location /f { alias @/icons/site.ico; }\n}\n",
    );
    assert_eq!(get(&cfg, "/img/x.png").body, b"other-root");
    assert_eq!(get(&cfg, "/test/x.png").body, b"alias-img");
    assert_eq!(get(&cfg, "/test/deep/y.png").body, b"deep");
    assert_eq!(get(&cfg, "/t2/x.png").body, b"alias-img");
    assert_eq!(get(&cfg, "/favicon.ico").body, b"icon");
    assert_eq!(get(&cfg, "/f").body, b"icon");
    assert_eq!(get(&cfg, "/f/").status, 404);
    assert_eq!(get(&cfg, "/f/x").status, 404);
    // The alias folder itself, without its slash: redirect.
    let r = get(&cfg, "/test");
    assert_eq!((r.status, r.location.as_deref()), (301, Some("/test/")));
    // `/testx` is not under `/test` (segment boundary): the server root.
    assert_eq!(get(&cfg, "/testx/x.png").status, 404);
    // An alias never reaches above itself.
    assert_ne!(get(&cfg, "/test/../secret.txt").body, b"TOP SECRET");
    assert_ne!(get(&cfg, "/test/%2e%2e/secret.txt").body, b"TOP SECRET");
}

#[test]
fn location_without_root_is_404() {
    let s = Site::new("noroot");
    let cfg = s.config("server { listen 127.0.0.1:8080; }\n");
    let r = get(&cfg, "/anything");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("<h1>404 Not Found</h1>"));
    // A root that does not exist is not fatal: 404.
    let cfg = s.config("server { listen 127.0.0.1:8080; root @/missing; }\n");
    assert_eq!(get(&cfg, "/").status, 404);
    assert_eq!(get(&cfg, "/a.txt").status, 404);
}

#[test]
fn index_files_in_order() {
    let s = Site::new("index");
    s.file("www/second.txt", "second")
        .file("www/index.html", "first")
        .mkdir("www/dir.html")
        .file("www/sub/index.html", "sub index");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n\
         index missing.html dir.html second.txt index.html;\n\
         location /sub/ { index index.html; }\n}\n",
    );
    let r = get(&cfg, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"second");
    // The type comes from the index file's own name.
    assert_eq!(r.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    let r = get(&cfg, "/sub/");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"sub index"[..]));
    assert_eq!(r.content_type.as_deref(), Some("text/html; charset=utf-8"));
    // The index file is a file: with a trailing slash it is not a folder.
    assert_eq!(get(&cfg, "/second.txt/").status, 404);
    assert_eq!(get(&cfg, "/nope/").status, 404);
}

#[test]
fn autoindex_off_is_403_on_lists() {
    let s = Site::new("autoindex");
    s.file("www/list/b.txt", "12345")
        .file("www/list/a.txt", "1")
        .mkdir("www/list/zdir")
        .mkdir("www/list/adir")
        .file("www/list/.hidden", "h")
        .file("www/closed/a.txt", "1");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n\
         location /list/ { autoindex on; }\n}\n",
    );
    let r = get(&cfg, "/closed/");
    assert_eq!(r.status, 403);
    assert!(r.text().contains("403 Forbidden"));

    let r = get(&cfg, "/list/");
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<title>Index of /list/</title>"));
    assert!(page.contains("<a href=\"../\">../</a>"));
    assert!(!page.contains(".hidden"));
    let pos = |n: &str| page.find(&format!("href=\"{n}\"")).unwrap();
    assert!(pos("adir/") < pos("zdir/"));
    assert!(pos("zdir/") < pos("a.txt"));
    assert!(pos("a.txt") < pos("b.txt"));
    assert!(page.contains(">5</td>"));
    assert!(Regex::matches_date(&page));

    // The root listing has no `../`.
    let cfg = s.config("server { listen 127.0.0.1:8080; root @/www; autoindex on; }\n");
    let page = get(&cfg, "/").text();
    assert!(page.contains("<title>Index of /</title>"));
    assert!(!page.contains("../"));
    assert!(page.contains("href=\"list/\">list/</a>"));
}

/// A tiny check for `YYYY-MM-DD HH:MM` in a page (no regex crate).
struct Regex;

impl Regex {
    fn matches_date(page: &str) -> bool {
        page.as_bytes().windows(16).any(|w| {
            w.iter().enumerate().all(|(i, b)| match i {
                4 | 7 => *b == b'-',
                10 => *b == b' ',
                13 => *b == b':',
                _ => b.is_ascii_digit(),
            })
        })
    }
}

#[test]
fn listing_names_round_trip() {
    let s = Site::new("roundtrip");
    let names = [
        "a&b <c>.txt",
        "x\"y",
        "été.txt",
        "100%.txt",
        "#hash",
        "q?.txt",
        "it's",
        "a:b",
        "plus+sign",
    ];
    for n in names {
        s.file(&format!("www/list/{n}"), n);
    }
    s.mkdir("www/list/my dir");
    let cfg = s.config("server { listen 127.0.0.1:8080; root @/www; autoindex on; }\n");
    let page = get(&cfg, "/list/").text();
    assert!(page.contains("a&amp;b &lt;c&gt;.txt"));
    assert!(page.contains("x&quot;y"));
    assert!(page.contains(">été.txt<"));
    for n in names {
        // Find the link whose text is the escaped name and follow its href
        // as a browser would (relative to /list/).
        let mut shown = String::new();
        super::encode::html(&mut shown, n);
        let at = page.find(&format!("\">{shown}</a>")).unwrap();
        let start = page[..at].rfind("href=\"").unwrap() + 6;
        let href = &page[start..at];
        assert!(
            !href.contains(['&', '<', '"', '#', '?', ' ', ':']),
            "{href}"
        );
        let r = get(&cfg, &format!("/list/{href}"));
        assert_eq!((r.status, r.text()), (200, n.to_string()), "{n}");
    }
    assert!(page.contains("href=\"my%20dir/\">my dir/</a>"));
    let r = get(&cfg, "/list/my%20dir/");
    assert!(r.text().contains("<title>Index of /list/my dir/</title>"));
}

#[test]
fn folder_without_slash_redirects_with_query() {
    let s = Site::new("slash");
    s.mkdir("www/sub").mkdir("www/my dir");
    let cfg = s.config(BASIC);
    let r = get(&cfg, "/sub");
    assert_eq!((r.status, r.location.as_deref()), (301, Some("/sub/")));
    assert!(r.text().contains("301 Moved Permanently"));
    let r = get(&cfg, "/sub?x=1&y=%20");
    assert_eq!(r.location.as_deref(), Some("/sub/?x=1&y=%20"));
    let r = get(&cfg, "/my%20dir?q");
    assert_eq!(r.location.as_deref(), Some("/my%20dir/?q"));
}

#[test]
fn missing_is_404() {
    let s = Site::new("missing");
    let cfg = s.config(BASIC);
    let r = get(&cfg, "/nope.html");
    assert_eq!(r.status, 404);
    assert_eq!(r.content_type.as_deref(), Some("text/html; charset=utf-8"));
    assert!(r.text().contains("<h1>404 Not Found</h1>"));
    assert!(!r.close);
    assert_eq!(get(&cfg, "/nope/deeper.html").status, 404);
    // ENAMETOOLONG is a missing file too.
    assert_eq!(get(&cfg, &format!("/{}", "a".repeat(300))).status, 404);
}

#[test]
fn unreadable_is_403() {
    use std::os::unix::fs::PermissionsExt;
    let s = Site::new("eacces");
    s.file("www/locked.txt", "no").mkdir("www/locked");
    let mode = std::fs::Permissions::from_mode(0o000);
    std::fs::set_permissions(s.path("www/locked.txt"), mode.clone()).unwrap();
    std::fs::set_permissions(s.path("www/locked"), mode).unwrap();
    let cfg = s.config("server { listen 127.0.0.1:8080; root @/www; autoindex on; }\n");
    // root reads anything: only an unprivileged run can see EACCES.
    if std::fs::read(s.path("www/locked.txt")).is_err() {
        assert_eq!(get(&cfg, "/locked.txt").status, 403);
        assert_eq!(get(&cfg, "/locked/").status, 403);
    }
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(s.path("www/locked"), open).unwrap();
}

#[test]
fn fifo_and_socket_are_403_at_once() {
    let s = Site::new("fifo");
    let ok = std::process::Command::new("mkfifo")
        .arg(s.path("www/pipe"))
        .status()
        .unwrap();
    assert!(ok.success());
    let _sock = std::os::unix::net::UnixListener::bind(s.path("www/sock")).unwrap();
    let cfg = s.config("server { listen 127.0.0.1:8080; root @/www; autoindex on; index pipe; }\n");
    let t = Instant::now();
    assert_eq!(get(&cfg, "/pipe").status, 403);
    assert_eq!(get(&cfg, "/sock").status, 403);
    // A FIFO named like the index is no index: the listing is served.
    assert_eq!(get(&cfg, "/").status, 200);
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn symlinks_stay_beneath_the_root() {
    let s = Site::new("symlink");
    s.file("www/a.txt", "inside").mkdir("www/sub");
    symlink("../secret.txt", s.path("www/out")).unwrap();
    symlink(s.path("secret.txt"), s.path("www/abs")).unwrap();
    symlink("..", s.path("www/sub/up")).unwrap();
    symlink("../..", s.path("www/sub/up2")).unwrap();
    symlink("a.txt", s.path("www/in")).unwrap();
    symlink("../a.txt", s.path("www/sub/in")).unwrap();
    let cfg = s.config("server { listen 127.0.0.1:8080; root @/www; autoindex on; }\n");
    for p in [
        "/out",
        "/abs",
        "/sub/up2/secret.txt",
        "/sub/up2/",
        "/sub/up/out",
        "/sub/up/sub/up2/secret.txt",
    ] {
        let r = get(&cfg, p);
        assert!(matches!(r.status, 403 | 404), "{p}: {}", r.status);
        assert!(!r.text().contains("TOP SECRET"), "{p}");
    }
    assert_eq!(get(&cfg, "/in").body, b"inside");
    assert_eq!(get(&cfg, "/sub/in").body, b"inside");
    assert_eq!(get(&cfg, "/sub/up/a.txt").body, b"inside");
    // Links that lead out are not listed either.
    let page = get(&cfg, "/").text();
    assert!(page.contains("href=\"in\""));
    assert!(!page.contains("href=\"out\""));
}

#[test]
fn traversal_never_reaches_outside() {
    let s = Site::new("traversal");
    s.file("www/sub/a.txt", "a");
    let cfg = s.config(BASIC);
    for p in [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/sub/..%2F..%2Fsecret.txt",
        "/%2fsecret.txt",
        "/secret.txt%00",
        "/sub/a.txt%00.html",
    ] {
        let r = get(&cfg, p);
        assert!(matches!(r.status, 400 | 404), "{p}: {}", r.status);
        assert!(!r.text().contains("TOP SECRET"), "{p}");
        if r.status == 400 {
            assert!(r.close, "{p}");
        }
    }
    assert_eq!(get(&cfg, "/../secret.txt").status, 400);
}

#[test]
fn return_codes() {
    let s = Site::new("return");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n add_header X-Site yes;\n\
         location /old { return 301 /new; }\n\
         location /tmp { return 307 https://example.com/x?y=1; }\n\
         location /ok { return 200 \"ok\"; }\n\
         location /gone { return 410; }\n\
         location /teapot { return 418 'short and stout'; }\n\
         location /empty { return 204; }\n\
         location /sp { return 302 \"/a b\"; }\n\
         location /bad { return 400; }\n}\n",
    );
    let r = get(&cfg, "/old/page");
    assert_eq!((r.status, r.location.as_deref()), (301, Some("/new")));
    assert_eq!(r.headers, vec![("X-Site".to_string(), "yes".to_string())]);
    let r = get(&cfg, "/tmp");
    assert_eq!(
        (r.status, r.location.as_deref()),
        (307, Some("https://example.com/x?y=1"))
    );
    let r = get(&cfg, "/ok");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(r.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    let r = get(&cfg, "/gone");
    assert_eq!(r.status, 410);
    assert!(r.text().contains("410 Gone"));
    let r = get(&cfg, "/teapot");
    assert_eq!((r.status, r.text().as_str()), (418, "short and stout"));
    let r = get(&cfg, "/empty");
    assert_eq!((r.status, r.len), (204, 0));
    assert!(get(&cfg, "/bad").close);
    let r = get(&cfg, "/sp");
    assert_eq!((r.status, r.location.as_deref()), (302, Some("/a%20b")));
    // `return` comes before the method check.
    assert_eq!(send(&cfg, "POST", "/old", "").status, 301);
}

#[test]
fn methods_405_and_501() {
    let s = Site::new("methods");
    s.file("www/a.txt", "a");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n add_header X-A 1;\n\
         location /rw { allowed_methods GET POST DELETE OPTIONS; }\n}\n",
    );
    let r = send(&cfg, "POST", "/a.txt", "Content-Length: 0\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.allow, Some(vec!["GET", "HEAD"]));
    assert!(r.text().contains("405 Not Allowed"));
    assert_eq!(r.headers.len(), 1);
    let r = send(&cfg, "DELETE", "/rw/a", "");
    assert_eq!(r.status, 405);
    assert_eq!(r.allow, Some(vec!["GET", "HEAD", "OPTIONS"]));
    let r = send(&cfg, "OPTIONS", "/rw/", "");
    assert_eq!((r.status, r.len), (204, 0));
    assert_eq!(
        r.allow,
        Some(vec!["GET", "HEAD", "POST", "DELETE", "OPTIONS"])
    );
    // `OPTIONS *` asks about the server: every method a route allows.
    let r = send(&cfg, "OPTIONS", "*", "");
    assert_eq!((r.status, r.len), (204, 0));
    assert_eq!(
        r.allow,
        Some(vec!["GET", "HEAD", "POST", "DELETE", "OPTIONS"])
    );
    let r = send(&cfg, "BREW", "/a.txt", "");
    assert_eq!(r.status, 501);
    assert!(r.close);
    assert!(r.allow.is_none());
    let r = send(&cfg, "get", "/a.txt", "");
    assert_eq!(r.status, 501);
}

#[test]
fn declared_body_too_large_is_413() {
    let s = Site::new("413");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n client_max_body_size 10;\n\
         allowed_methods GET POST;\n location /free { client_max_body_size 0; }\n}\n",
    );
    let r = send(&cfg, "POST", "/x", "Content-Length: 11\r\n");
    assert_eq!(r.status, 413);
    assert!(r.close);
    assert!(r.text().contains("413 Request Entity Too Large"));
    // Within the limit, the static route refuses POST.
    assert_eq!(
        send(&cfg, "POST", "/x", "Content-Length: 10\r\n").status,
        405
    );
    assert_eq!(
        send(&cfg, "POST", "/free/x", "Content-Length: 999999\r\n").status,
        405
    );
}

#[test]
fn error_page_served_with_original_status() {
    let s = Site::new("errpage");
    s.file("www/errors/404.html", "custom 404")
        .file("www/errors/403.html", "custom 403")
        .file("pages/loc404.html", "location 404")
        .mkdir("www/closed");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n\
         error_page 404 /errors/404.html;\n error_page 403 405 /errors/403.html;\n\
         error_page 500 /errors/missing.html;\n\
         location /errors/ { alias @/www/errors/; }\n\
         location /api { error_page 404 /p/loc404.html; }\n\
         location /p/ { alias @/pages/; }\n\
         location /gone { error_page 404 /errors/missing.html; }\n}\n",
    );
    let r = get(&cfg, "/nope");
    assert_eq!((r.status, r.text().as_str()), (404, "custom 404"));
    assert_eq!(r.content_type.as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!(r.last_modified, None);
    let r = get(&cfg, "/closed/");
    assert_eq!((r.status, r.text().as_str()), (403, "custom 403"));
    let r = send(&cfg, "DELETE", "/x", "");
    assert_eq!((r.status, r.text().as_str()), (405, "custom 403"));
    assert!(r.allow.is_some());
    // A location's entries override the server's for the same code.
    let r = get(&cfg, "/api/x");
    assert_eq!((r.status, r.text().as_str()), (404, "location 404"));
    // A missing page: the built-in one, with the original status.
    let r = get(&cfg, "/gone/x");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("<h1>404 Not Found</h1>"));
    let mut roots = RootCache::default();
    let mut ctx = Ctx::for_tests(&cfg, &mut roots, Default::default());
    let r = owned(error_reply(&mut ctx, 500));
    assert_eq!(r.status, 500);
    assert!(r.text().contains("500 Internal Server Error"));
    let r = owned(error_reply(&mut ctx, 404));
    assert_eq!((r.status, r.text().as_str()), (404, "custom 404"));
    let r = owned(error_reply_for(&mut ctx, 404, "/api/q"));
    assert_eq!((r.status, r.text().as_str()), (404, "location 404"));
    let r = owned(error_reply(&mut ctx, 400));
    assert!(r.close);
}

#[test]
fn head_matches_get() {
    let s = Site::new("head");
    s.file("www/a.css", "body{}")
        .file("www/list/x", "x")
        .mkdir("www/dir");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n add_header X-H 1;\n\
         location /list/ { autoindex on; }\n}\n",
    );
    for p in ["/a.css", "/list/", "/dir", "/dir?q=1", "/nope", "/dir/"] {
        let g = get(&cfg, p);
        let h = send(&cfg, "HEAD", p, "");
        assert_eq!(
            (
                g.status,
                &g.content_type,
                g.last_modified,
                &g.location,
                &g.allow
            ),
            (
                h.status,
                &h.content_type,
                h.last_modified,
                &h.location,
                &h.allow
            ),
            "{p}"
        );
        assert_eq!(
            (g.len, &g.headers, g.close),
            (h.len, &h.headers, h.close),
            "{p}"
        );
    }
}

#[test]
fn add_headers_on_every_reply_of_a_route() {
    let s = Site::new("headers");
    s.file("www/a.txt", "a").file("www/in/b.txt", "b");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n add_header X-S s;\n\
         location /in/ { add_header X-L l; }\n}\n",
    );
    let both = vec![
        ("X-S".to_string(), "s".to_string()),
        ("X-L".to_string(), "l".to_string()),
    ];
    assert_eq!(get(&cfg, "/in/b.txt").headers, both);
    assert_eq!(get(&cfg, "/in/nope").headers, both);
    assert_eq!(get(&cfg, "/a.txt").headers.len(), 1);
    assert_eq!(get(&cfg, "/nope").headers.len(), 1);
}

#[test]
fn ranges_slice_cached_and_sendfile_bodies_alike() {
    let s = Site::new("ranges");
    let small: String = (0..100)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let big: String = (0..40_000)
        .map(|i| char::from(b'0' + (i % 10) as u8))
        .collect();
    s.file("www/small.txt", &small).file("www/big.txt", &big);
    let cfg = s.config(BASIC);
    for (name, text) in [("/small.txt", &small), ("/big.txt", &big)] {
        let total = text.len();
        let full = get(&cfg, name);
        assert_eq!((full.status, full.accept_ranges), (200, true), "{name}");
        let etag = full.etag.clone().unwrap();
        let cases = [
            ("bytes=0-9", 0, 10),
            ("bytes=5-14", 5, 10),
            ("bytes=-7", total - 7, 7),
            ("bytes=90-", 90, total - 90),
            ("bytes=95-100000", 95, total - 95),
        ];
        for (range, start, len) in cases {
            let r = send(&cfg, "GET", name, &format!("Range: {range}\r\n"));
            assert_eq!(r.status, 206, "{name} {range}");
            assert_eq!(
                r.body,
                text.as_bytes()[start..start + len],
                "{name} {range}"
            );
            assert_eq!(r.len, len as u64);
            let want = format!("bytes {}-{}/{total}", start, start + len - 1);
            assert_eq!(r.content_range.as_deref(), Some(want.as_str()));
            assert_eq!(r.etag.as_deref(), Some(etag.as_str()));
        }
        let r = send(&cfg, "GET", name, &format!("Range: bytes={total}-\r\n"));
        assert_eq!(r.status, 416);
        assert_eq!(r.content_range, Some(format!("bytes */{total}")));
        assert!(r.text().contains("416"));
        let r = send(&cfg, "GET", name, "If-None-Match: \"nope\"\r\n");
        assert_eq!(r.status, 200);
        let r = send(
            &cfg,
            "GET",
            name,
            &format!("If-None-Match: {etag}\r\nRange: bytes=0-1\r\n"),
        );
        assert_eq!((r.status, r.len, r.content_type.as_deref()), (304, 0, None));
        assert_eq!(r.etag.as_deref(), Some(etag.as_str()));
        assert!(r.last_modified.is_some());
    }
}

#[test]
fn ranges_and_validators_only_for_files() {
    let s = Site::new("ranges-only-files");
    s.file("www/d/a.txt", "a");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n autoindex on;\n expires 1h;\n}\n",
    );
    let r = send(
        &cfg,
        "GET",
        "/d/",
        "Range: bytes=0-1\r\nIf-None-Match: *\r\n",
    );
    assert_eq!(
        (r.status, r.etag, r.accept_ranges, r.expires),
        (200, None, false, None)
    );
    let r = send(&cfg, "GET", "/nope", "Range: bytes=0-1\r\n");
    assert_eq!((r.status, r.content_range, r.expires), (404, None, None));
    let r = send(&cfg, "GET", "/d/a.txt", "");
    assert_eq!(r.expires, Some((3600, 3600)));
}
