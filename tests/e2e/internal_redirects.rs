//! Internal redirects (CONFIG.md "More directives"): `internal` locations
//! answer 404 to clients yet serve `error_page`, `try_files` and a CGI's
//! `X-Accel-Redirect`; `try_files` chains (`$uri`, `$uri/`, `=CODE`, a URI
//! fallback, the single-page-app 200, a redirect loop → 500); `error_page`
//! with `=NEW` and `=`; `X-Accel-Redirect` with the client's `Range` and
//! preconditions, missing and out-of-location targets, header filtering,
//! a 256 MiB download that outlives `cgi_timeout` with its script reaped
//! at once, and the demo site's members-only download.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::*;

const TRY_CONF: &str = "server {
    listen 127.0.0.1:$P0;
    root www;
    error_page 404 /private/404.html;
    location / { }
    location /private/ { internal; alias private/; }
    location /app/ { try_files $uri $uri/ /app/index.html; }
    location /spa/ { try_files $uri $uri/ /index.html; }
    location /strict/ { try_files $uri =404; }
    location /teapot/ { try_files $uri.txt =418; }
    location /chain/ { try_files $uri /private/p.txt; }
    location /loop/ { try_files $uri /loop/again; }
    location /ok/ { error_page 404 =200 /private/ok.html; }
    location /same/ { error_page 404 = /private/ok.html; }
    location /gone/ { error_page 404 =410 /private/ok.html; }
}
";

fn try_site(name: &str) -> Server {
    let dir = TempDir::new(name);
    dir.write("www/index.html", "home\n");
    dir.write("www/app/index.html", "app shell\n");
    dir.write("www/app/real.txt", "real\n");
    dir.write("www/app/sub/index.html", "sub index\n");
    dir.write("www/spa/real.txt", "spa real\n");
    dir.write("www/strict/s.txt", "strict\n");
    dir.write("www/teapot/pot.txt", "pot\n");
    dir.write("private/404.html", "custom 404\n");
    dir.write("private/ok.html", "ok page\n");
    dir.write("private/p.txt", "private p\n");
    Server::start(dir, TRY_CONF)
}

#[track_caller]
fn expect(srv: &Server, path: &str, status: u16, body: &str) {
    let r = srv.get(path);
    assert_eq!(r.status, status, "{path}: {}", r.describe());
    assert_eq!(r.body_str(), body, "{path}");
}

#[test]
fn internal_locations_are_404_to_clients_and_serve_error_pages() {
    let srv = try_site("internal-404");
    // The location exists and holds the file, but a client never reaches it;
    // its 404 is the error page the internal location itself serves.
    expect(&srv, "/private/p.txt", 404, "custom 404\n");
    expect(&srv, "/private/", 404, "custom 404\n");
    expect(&srv, "/private", 404, "custom 404\n");
    expect(&srv, "/private/404.html", 404, "custom 404\n");
    expect(&srv, "/nothing-here", 404, "custom 404\n");
    let r = srv.raw("HEAD /private/p.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.body.len()), (404, 0), "{}", r.describe());
}

#[test]
fn try_files_chains() {
    let srv = try_site("internal-try-files");
    // $uri, $uri/ (a folder with its index), then the URI fallback.
    expect(&srv, "/app/real.txt", 200, "real\n");
    expect(&srv, "/app/sub", 200, "sub index\n");
    expect(&srv, "/app/sub/", 200, "sub index\n");
    expect(&srv, "/app/no/such/route", 200, "app shell\n");
    // The single-page-app fallback answers 200 with index.html.
    expect(&srv, "/spa/real.txt", 200, "spa real\n");
    let r = srv.get("/spa/users/42");
    assert_status(&r, 200);
    assert_eq!(r.body, b"home\n");
    assert_content_type(&r, &["text/html; charset=utf-8"]);
    // =CODE, through error_page.
    expect(&srv, "/strict/s.txt", 200, "strict\n");
    expect(&srv, "/strict/none", 404, "custom 404\n");
    expect(&srv, "/teapot/pot", 200, "pot\n");
    let r = srv.get("/teapot/kettle");
    assert_eq!(r.status, 418, "{}", r.describe());
    // A fallback into an internal location.
    expect(&srv, "/chain/whatever", 200, "private p\n");
    // A redirect that comes back to itself, bounded → 500.
    let r = srv.get("/loop/x");
    assert_eq!(r.status, 500, "{}", r.describe());
    // The file the loop's own $uri names is still served.
    srv.dir.write("www/loop/x", "found\n");
    expect(&srv, "/loop/x", 200, "found\n");
}

#[test]
fn error_page_takes_the_status_it_is_told() {
    let srv = try_site("internal-error-page-status");
    let r = srv.get("/ok/missing");
    assert_eq!((r.status, r.body_str().as_str()), (200, "ok page\n"));
    // The page is not the resource asked for: no validators on it.
    assert_eq!(r.header("etag"), None, "{}", r.describe());
    let r = srv.get("/same/missing");
    assert_eq!((r.status, r.body_str().as_str()), (200, "ok page\n"));
    let r = srv.get("/gone/missing");
    assert_eq!((r.status, r.body_str().as_str()), (410, "ok page\n"));
}

/// Answers `X-Accel-Redirect: $QUERY_STRING` with headers to keep and to
/// drop, writes its pid, then holds its stdout open for a minute: the
/// server must not wait for it.
const ACCEL_SH: &str = "#!/bin/sh
echo $$ > \"$(dirname \"$0\")/accel.pid\"
printf 'X-Accel-Redirect: %s\\r\\n' \"$QUERY_STRING\"
printf 'Content-Disposition: attachment; filename=\"f.bin\"\\r\\n'
printf 'Cache-Control: private\\r\\n'
printf 'Set-Cookie: kept=1; Path=/\\r\\n'
printf 'X-Accel-Limit-Rate: 0\\r\\n'
printf 'X-Accel-Buffering: no\\r\\n'
printf 'X-Other: not passed on\\r\\n'
printf 'Content-Type: text/x-script\\r\\n'
printf '\\r\\n'
exec sleep 60
";

const HELLO_SH: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\r\\nX-Accel-Redirect-Not: a\\r\\nX-Accel-Other: b\\r\\n\\r\\nhello\\n'
";

/// A site with an `internal` location of files, a file outside every
/// location, and the scripts above; `cgi_timeout 1s`, `cgi_max 1`.
fn accel_site(name: &str) -> Server {
    let dir = TempDir::new(name);
    dir.write_script("www/cgi-bin/accel.sh", ACCEL_SH);
    dir.write_script("www/cgi-bin/hello.sh", HELLO_SH);
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    dir.write("protected/f.bin", &data);
    dir.write("protected/g.txt", "plain text\n");
    dir.write("protected/g.txt.gz", b"\x1f\x8b not really gzip");
    dir.write("www/outside.txt", "outside\n");
    Server::start(
        dir,
        "cgi_timeout 1s;
cgi_max 1;
server {
    listen 127.0.0.1:$P0;
    root www;
    location /cgi-bin/ { cgi .sh /bin/sh; allowed_methods GET HEAD POST; }
    location /protected/ { internal; alias protected/; gzip_static on; }
}
",
    )
}

fn accel(srv: &Server, target: &str, extra: &str) -> Response {
    srv.raw(&format!(
        "GET /cgi-bin/accel.sh?{target} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"
    ))
}

#[test]
fn accel_serves_the_target_with_the_clients_range_and_preconditions() {
    let srv = accel_site("internal-accel");
    let script = srv.dir.join("www/cgi-bin/accel.sh");
    let _reaper = Reaper(script.to_str().unwrap().to_string());
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    // A client cannot ask for the file itself.
    assert_status(&srv.get("/protected/f.bin"), 404);

    let r = accel(&srv, "/protected/f.bin", "");
    assert_status(&r, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_content_type(&r, &["application/octet-stream"]);
    let etag = r.must_header("etag").to_string();
    assert!(r.header("last-modified").is_some());
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    // What the script said that the client still gets, and nothing else.
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"f.bin\"")
    );
    assert_eq!(r.header("cache-control"), Some("private"));
    assert_eq!(r.header("set-cookie"), Some("kept=1; Path=/"));
    for (name, _) in &r.headers {
        assert!(
            !name.to_ascii_lowercase().starts_with("x-accel-"),
            "{name} reached the client: {}",
            r.describe()
        );
    }
    assert_eq!(r.header("x-other"), None, "{}", r.describe());

    // Range → 206 with the right bytes.
    let r = accel(&srv, "/protected/f.bin", "Range: bytes=100-199\r\n");
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.body, &data[100..200]);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/1000"));
    assert!(r.header("content-disposition").is_some());
    let r = accel(&srv, "/protected/f.bin", "Range: bytes=-10\r\n");
    assert_eq!((r.status, &r.body[..]), (206, &data[990..]));
    let r = accel(&srv, "/protected/f.bin", "Range: bytes=5000-\r\n");
    assert_eq!(r.status, 416, "{}", r.describe());
    // If-Range naming another validator → the whole file.
    let r = accel(
        &srv,
        "/protected/f.bin",
        "Range: bytes=0-9\r\nIf-Range: \"other\"\r\n",
    );
    assert_eq!((r.status, r.body.len()), (200, 1000));
    // If-None-Match → 304 without a body.
    let r = accel(
        &srv,
        "/protected/f.bin",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(r.status, 304, "{}", r.describe());
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    // HEAD: the head GET would get.
    let r = srv.raw(
        "HEAD /cgi-bin/accel.sh?/protected/f.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((r.status, r.body.len()), (200, 0), "{}", r.describe());
    assert_eq!(r.header("content-length"), Some("1000"));
    // The precompressed sibling, for a client that accepts gzip.
    let r = accel(&srv, "/protected/g.txt", "Accept-Encoding: gzip\r\n");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"\x1f\x8b not really gzip");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    let r = accel(&srv, "/protected/g.txt", "");
    assert_eq!(
        (r.body.as_slice(), r.header("content-encoding")),
        (&b"plain text\n"[..], None)
    );
    // Kept alive and pipelined: two handed-over answers, then a file.
    let mut c = srv.connect(0);
    c.send(
        b"GET /cgi-bin/accel.sh?/protected/f.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-4\r\n\r\n\
          GET /cgi-bin/accel.sh?/protected/f.bin HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(
        (r.status, &r.body[..]),
        (206, &data[..5]),
        "{}",
        r.describe()
    );
    assert!(!r.connection_has("close"), "{}", r.describe());
    let r = c.read_response();
    assert_eq!((r.status, &r.body[..]), (200, &data[..]));
    let r = c.read_response();
    assert_eq!((r.status, &r.body[..]), (200, &b"hello\n"[..]));
    assert_no_children(&srv, Duration::from_secs(3));
}

#[test]
fn accel_to_a_missing_or_unlocated_target_is_404() {
    let srv = accel_site("internal-accel-404");
    let script = srv.dir.join("www/cgi-bin/accel.sh");
    let _reaper = Reaper(script.to_str().unwrap().to_string());
    let r = accel(&srv, "/protected/none.bin", "");
    assert_eq!(r.status, 404, "{}", r.describe());
    // The file exists, and a client gets it by its own URL, but it lies
    // outside every location: a script cannot hand it over.
    assert_eq!(srv.get("/outside.txt").body, b"outside\n");
    let r = accel(&srv, "/outside.txt", "");
    assert_eq!(r.status, 404, "{}", r.describe());
    // Climbing out of the root is no target either.
    let r = accel(&srv, "/protected/../../test.conf", "");
    assert_eq!(r.status, 404, "{}", r.describe());
    for (name, _) in &r.headers {
        assert!(!name.to_ascii_lowercase().starts_with("x-accel-"));
    }
    // A plain answer passes no X-Accel-* either.
    let r = srv.get("/cgi-bin/hello.sh");
    assert_eq!(r.body, b"hello\n");
    assert_eq!(r.header("x-accel-other"), None, "{}", r.describe());
    assert_eq!(r.header("x-accel-redirect-not"), None);
    assert_no_children(&srv, Duration::from_secs(3));
}

/// The script's pid, from the file it writes.
fn script_pid(srv: &Server) -> u32 {
    let p = srv.dir.join("www/cgi-bin/accel.pid");
    let mut pid = 0;
    assert!(
        wait_until(Duration::from_secs(5), || {
            pid = std::fs::read_to_string(&p)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            pid != 0
        }),
        "the script wrote no pid"
    );
    pid
}

/// Whether `pid` exists at all (a zombie counts: it was not reaped).
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_256_mib_accel_download_outlives_cgi_timeout_and_its_script() {
    let srv = accel_site("internal-accel-big");
    let script = srv.dir.join("www/cgi-bin/accel.sh");
    let _reaper = Reaper(script.to_str().unwrap().to_string());
    const SIZE: u64 = 256 << 20;
    let big = srv.dir.join("protected/big.bin");
    let made = std::process::Command::new("fallocate")
        .args(["-l", &SIZE.to_string()])
        .arg(&big)
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("fallocate failed: a sparse file instead");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(SIZE).unwrap();
    }

    let mut s = TcpStream::connect(("127.0.0.1", srv.port(0))).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let started = Instant::now();
    s.write_all(
        b"GET /cgi-bin/accel.sh?/protected/big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let head_end = loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head");
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = find(&got, b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {SIZE}\r\n")),
        "{head}"
    );
    let mut body = (got.len() - head_end) as u64;

    // The script is gone while the download has only begun: killed, and
    // reaped (no zombie left).
    let pid = script_pid(&srv);
    assert!(
        wait_until(Duration::from_secs(2), || !exists(pid)),
        "the script (pid {pid}) still exists during the download"
    );
    // Nor does it count against cgi_max 1 any more.
    assert!(
        wait_until(Duration::from_secs(2), || srv
            .get("/cgi-bin/hello.sh")
            .status
            == 200),
        "another script is refused while the download runs"
    );

    // Read at a pace that makes the download last 1.5 s, past cgi_timeout.
    while body < SIZE {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {body} of {SIZE} bytes");
        body += n as u64;
        let due = Duration::from_secs_f64(1.5 * body as f64 / SIZE as f64);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
    assert_eq!(body, SIZE);
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(1),
        "the download took only {took:?}: it did not outlive cgi_timeout"
    );
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{} bytes past the body", rest.len());
    assert_no_children(&srv, Duration::from_secs(2));
    assert_no_process(script.to_str().unwrap(), Duration::from_secs(2));
    let _ = std::fs::remove_file(&big);
}

#[test]
fn the_demo_members_download_needs_a_signed_in_session() {
    let srv = start_shipped_site("internal-demo-members");
    let handbook = std::fs::read(srv.dir.join("www/members/handbook.txt")).unwrap();
    // The file has no URL of its own.
    let r = srv.get("/members/handbook.txt");
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_ne!(r.body, handbook);
    // Signed out: 403 with a way to sign in.
    let r = srv.get("/cgi-bin/download.py");
    assert_eq!(r.status, 403, "{}", r.describe());
    assert!(
        r.body_str().contains("/cgi-bin/login.py"),
        "{}",
        r.body_str()
    );
    // The demo's page links to it.
    assert!(
        srv.get("/")
            .body_str()
            .contains("href=\"/cgi-bin/download.py\"")
    );

    // Sign in, then download with the session's cookie.
    let r = srv.raw(
        "POST /cgi-bin/login.py HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8\r\nConnection: close\r\n\r\nname=Ada",
    );
    assert_eq!(r.status, 303, "{}", r.describe());
    let sid = r
        .must_header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = srv.raw(&format!(
        "GET /cgi-bin/download.py HTTP/1.1\r\nHost: localhost\r\nCookie: {sid}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, handbook);
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"handbook.txt\"")
    );
    assert!(r.header("etag").is_some());
    assert_eq!(r.header("x-accel-redirect"), None);
    // A download resumed with Range.
    let r = srv.raw(&format!(
        "GET /cgi-bin/download.py HTTP/1.1\r\nHost: localhost\r\nCookie: {sid}\r\nRange: bytes=4-12\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.body, &handbook[4..13]);
    assert_no_children(&srv, Duration::from_secs(3));
}

#[test]
fn test_flag_reports_misused_directives_with_file_and_line() {
    let dir = TempDir::new("internal-cli");
    let conf = dir.write(
        "bad.conf",
        "server {
    listen 127.0.0.1:8080;
    internal;
    try_files $uri;
    location /a/ { try_files $uri $args =404; }
    location /b/ { try_files $uri =99; internal on; }
    error_page 404 =abc /e.html;
    error_page =200 /e.html;
}
try_files $uri =404;
",
    );
    let conf = conf.to_str().unwrap();
    let out = run_cli(&["-t", "-c", conf], dir.path(), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1), "stderr: {}", out.stderr);
    for (message, line) in [
        ("\"internal\" directive is not allowed here", 3),
        ("invalid number of arguments in \"try_files\" directive", 4),
        (
            "invalid value \"$args\" in \"try_files\" directive, \"$uri\" is the only variable",
            5,
        ),
        (
            "invalid value \"=99\" in \"try_files\" directive, it must be =CODE from 100 to 599",
            6,
        ),
        ("invalid number of arguments in \"internal\" directive", 6),
        (
            "invalid value \"=abc\" in \"error_page\" directive, it must be \"=\" or \"=CODE\" from 200 to 599",
            7,
        ),
        ("invalid number of arguments in \"error_page\" directive", 8),
        ("\"try_files\" directive is not allowed here", 10),
    ] {
        let want = format!("localserver: [emerg] {message} in {conf}:{line}");
        assert!(
            out.stderr.lines().any(|l| l == want),
            "missing {want:?} in:\n{}",
            out.stderr
        );
    }
    // The same directives, well used, pass.
    let good = dir.write(
        "good.conf",
        "server {
    listen 127.0.0.1:8080;
    try_files $uri $uri/ /index.html;
    error_page 404 =200 /e.html;
    error_page 500 = /e.html;
    location /a/ { internal; try_files $uri =404; }
}
",
    );
    let out = run_cli(
        &["-t", "-c", good.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", out.stderr);
}

/// Stores a value in the session and hands a file over, trying to set the
/// server's own cookie on the way.
const ACCEL_SESSION_SH: &str = "#!/bin/sh
printf 'X-Session: fetched=%s\\r\\n' \"${SESSION_fetched:-0}1\"
printf 'Set-Cookie: SID=forged; Path=/\\r\\n'
printf 'Set-Cookie: theme=dark\\r\\n'
printf 'X-Accel-Redirect: /protected/f.txt\\r\\n\\r\\n'
";

const SEEN_SH: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\nfetched=%s\\n' \"$SESSION_fetched\"
";

#[test]
fn accel_answers_apply_session_headers_and_never_send_them() {
    let dir = TempDir::new("internal-accel-session");
    dir.write_script("www/cgi-bin/get.sh", ACCEL_SESSION_SH);
    dir.write_script("www/cgi-bin/seen.sh", SEEN_SH);
    dir.write("protected/f.txt", "members\n");
    let srv = Server::start(
        dir,
        "server {
    listen 127.0.0.1:$P0;
    root www;
    session on;
    location /cgi-bin/ { cgi .sh /bin/sh; }
    location /protected/ { internal; alias protected/; }
}
",
    );
    // A first visit: the handed-over answer carries the new session's cookie.
    let r = srv.get("/cgi-bin/get.sh");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"members\n"[..]));
    let cookies = r.headers_named("set-cookie");
    let sid = cookies
        .iter()
        .find(|c| c.starts_with("SID="))
        .unwrap_or_else(|| panic!("no SID cookie: {}", r.describe()))
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(sid, "SID=forged");
    assert!(cookies.contains(&"theme=dark"), "{}", r.describe());
    assert_eq!(cookies.len(), 2, "{}", r.describe());
    assert_eq!(r.header("x-session"), None, "{}", r.describe());
    // The stored value is there for the next script of the session.
    let ask = |path: &str| {
        srv.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {sid}\r\nConnection: close\r\n\r\n"
        ))
    };
    assert_eq!(ask("/cgi-bin/seen.sh").body, b"fetched=01\n");
    let r = ask("/cgi-bin/get.sh");
    assert_eq!(r.body, b"members\n");
    assert_eq!(r.headers_named("set-cookie"), vec!["theme=dark"]);
    assert_eq!(ask("/cgi-bin/seen.sh").body, b"fetched=011\n");
}
