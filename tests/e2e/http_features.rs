//! Ranges (HTTP.md rule 26), conditional requests (rule 27), `gzip_static`,
//! `expires`, `add_header` (with and without `always`) and `status`
//! (CONFIG.md's location table), against the real binary.

use std::fs;
use std::time::{Duration, Instant, SystemTime};

use crate::common::*;
use localserver::http::date::parse_http_date;

/// 2001-09-09T01:46:40Z.
const MTIME_SECS: u64 = 1_000_000_000;
const MTIME_HTTP: &str = "Sun, 09 Sep 2001 01:46:40 GMT";

/// 100 000 bytes: beyond the open-file cache's in-memory limit (sendfile).
const BIG_LEN: usize = 100_000;
/// 1 000 bytes: held in memory by the open-file cache (writev).
const SMALL_LEN: usize = 1_000;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(37))
        .collect()
}

fn set_mtime(path: &std::path::Path, secs: u64) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

const CONFIG: &str = "
server {
    listen 127.0.0.1:$P0;
    root $DIR/www;
    add_header X-Server s;
    add_header X-Always a always;
    location /gz/ { gzip_static on; }
    location /cache/ { expires 1h; add_header X-Loc l; }
    location /off/ { expires off; }
    location = /status { status on; }
}
";

fn site() -> Server {
    let dir = TempDir::new("http-features");
    let big = dir.write("www/big.bin", pattern(BIG_LEN, 1));
    let small = dir.write("www/small.txt", pattern(SMALL_LEN, 2));
    set_mtime(&big, MTIME_SECS);
    set_mtime(&small, MTIME_SECS);
    dir.write("www/gz/app.css", "body { color: red }\n");
    dir.write("www/gz/app.css.gz", "GZIPPED-BYTES-OF-APP-CSS");
    dir.write("www/gz/plain.css", "plain {}\n");
    dir.write("www/gz/dir.css.gz/inner", "a folder named like a .gz");
    dir.write("www/gz/dir.css", "dir plain\n");
    dir.write("www/nogz.css", "not gzip_static\n");
    dir.write("www/nogz.css.gz", "SHOULD NOT BE SENT");
    dir.write("www/cache/a.txt", "cached\n");
    dir.write("www/off/b.txt", "off\n");
    dir.mkdir("www/folder");
    Server::start(dir, CONFIG)
}

fn req(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n")
}

fn get_with(srv: &Server, path: &str, extra: &str) -> Response {
    srv.raw(&req(path, extra))
}

fn file_bytes(path: &str) -> Vec<u8> {
    match path {
        "/big.bin" => pattern(BIG_LEN, 1),
        "/small.txt" => pattern(SMALL_LEN, 2),
        _ => unreachable!(),
    }
}

// ---------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------

#[test]
fn single_ranges_get_206_with_the_right_bytes() {
    let srv = site();
    for path in ["/big.bin", "/small.txt"] {
        let data = file_bytes(path);
        let len = data.len();
        let full = srv.get(path);
        assert_status(&full, 200);
        assert_eq!(full.must_header("Accept-Ranges"), "bytes");
        assert_eq!(full.body, data);
        let cases = [
            ("bytes=0-99".to_string(), 0, 99),
            ("bytes=100-199".to_string(), 100, 199),
            (format!("bytes={}-", len - 300), len - 300, len - 1),
            ("bytes=-500".to_string(), len - 500, len - 1),
            (format!("bytes=10-{}", len + 5000), 10, len - 1),
            ("bytes=0-0".to_string(), 0, 0),
            (format!("bytes=-{}", len * 2), 0, len - 1),
        ];
        for (range, first, last) in cases {
            let r = get_with(&srv, path, &format!("Range: {range}\r\n"));
            assert_status(&r, 206);
            assert_eq!(
                r.must_header("Content-Range"),
                format!("bytes {first}-{last}/{len}"),
                "{path} {range}"
            );
            assert_eq!(
                r.must_header("Content-Length"),
                (last - first + 1).to_string(),
                "{path} {range}"
            );
            assert_eq!(r.body, data[first..=last], "{path} {range}");
            assert_eq!(r.must_header("Accept-Ranges"), "bytes");
            assert_eq!(r.header("ETag"), full.header("ETag"));
        }
    }
}

#[test]
fn unsatisfiable_ranges_get_416_with_the_length() {
    let srv = site();
    for path in ["/big.bin", "/small.txt"] {
        let len = file_bytes(path).len();
        for range in [
            format!("bytes={len}-"),
            format!("bytes={}-{}", len + 10, len + 20),
            "bytes=-0".to_string(),
        ] {
            let r = get_with(&srv, path, &format!("Range: {range}\r\n"));
            assert_status(&r, 416);
            assert_eq!(
                r.must_header("Content-Range"),
                format!("bytes */{len}"),
                "{path} {range}"
            );
            assert_eq!(
                r.must_header("Content-Length"),
                r.body.len().to_string(),
                "{path} {range}"
            );
        }
    }
}

#[test]
fn malformed_ranges_get_200_with_the_whole_file() {
    let srv = site();
    for path in ["/big.bin", "/small.txt"] {
        let data = file_bytes(path);
        for range in [
            "bytes=5-2",
            "items=0-1",
            "bytes=x-y",
            "bytes 0-1",
            "bytes=0-1,x",
        ] {
            let r = get_with(&srv, path, &format!("Range: {range}\r\n"));
            assert_status(&r, 200);
            assert!(r.header("Content-Range").is_none(), "{path} {range}");
            assert_eq!(
                r.must_header("Content-Length"),
                data.len().to_string(),
                "{path} {range}"
            );
            assert_eq!(r.body, data, "{path} {range}");
        }
    }
}

#[test]
fn if_range_serves_the_range_only_for_the_current_validator() {
    let srv = site();
    let path = "/big.bin";
    let data = file_bytes(path);
    let full = srv.get(path);
    let etag = full.must_header("ETag").to_string();
    assert_eq!(full.must_header("Last-Modified"), MTIME_HTTP);
    let cases = [
        (etag.clone(), 206),
        (MTIME_HTTP.to_string(), 206),
        (format!("W/{etag}"), 200),
        ("\"other\"".to_string(), 200),
        ("Sun, 09 Sep 2001 01:46:39 GMT".to_string(), 200),
        ("Sun, 09 Sep 2001 01:46:41 GMT".to_string(), 200),
    ];
    for (validator, status) in cases {
        let r = get_with(
            &srv,
            path,
            &format!("Range: bytes=10-19\r\nIf-Range: {validator}\r\n"),
        );
        assert_status(&r, status);
        if status == 206 {
            assert_eq!(r.body, data[10..20], "{validator}");
        } else {
            assert_eq!(r.body, data, "{validator}");
        }
    }
}

#[test]
fn head_with_a_range_gets_the_206_head_and_the_connection_goes_on() {
    let srv = site();
    let data = file_bytes("/small.txt");
    let mut c = srv.connect(0);
    c.send(b"HEAD /small.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=100-199\r\n\r\n");
    let h = c.read_head_response();
    assert_status(&h, 206);
    assert_eq!(h.must_header("Content-Range"), "bytes 100-199/1000");
    assert_eq!(h.must_header("Content-Length"), "100");
    c.send(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=-10\r\n\r\n");
    let g = c.read_response();
    assert_status(&g, 206);
    assert_eq!(g.body, data[990..]);
    c.send(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let g = c.read_response();
    assert_status(&g, 200);
    assert_eq!(g.body, data);
}

#[test]
fn ranges_do_not_apply_to_listings_or_errors() {
    let srv = site();
    let r = get_with(&srv, "/nope.bin", "Range: bytes=0-1\r\n");
    assert_status(&r, 404);
    assert!(r.header("Content-Range").is_none());
    assert!(r.header("Accept-Ranges").is_none());
    // A folder without an index and autoindex off: 403, not a range.
    let r = get_with(&srv, "/folder/", "Range: bytes=0-1\r\n");
    assert_status(&r, 403);
    assert!(r.header("Content-Range").is_none());
}

// ---------------------------------------------------------------------------
// Conditional requests
// ---------------------------------------------------------------------------

#[test]
fn if_none_match_and_if_modified_since_give_304_and_keep_alive_survives() {
    let srv = site();
    let data = file_bytes("/big.bin");
    let full = srv.get("/big.bin");
    let etag = full.must_header("ETag").to_string();
    let cases = [
        (format!("If-None-Match: {etag}\r\n"), 304),
        (format!("If-None-Match: W/{etag}\r\n"), 304),
        (format!("If-None-Match: \"a\", {etag}\r\n"), 304),
        ("If-None-Match: *\r\n".to_string(), 304),
        ("If-None-Match: \"other\"\r\n".to_string(), 200),
        (format!("If-Modified-Since: {MTIME_HTTP}\r\n"), 304),
        (
            "If-Modified-Since: Mon, 01 Jan 2035 00:00:00 GMT\r\n".to_string(),
            304,
        ),
        (
            "If-Modified-Since: Sun, 09 Sep 2001 01:46:39 GMT\r\n".to_string(),
            200,
        ),
        ("If-Modified-Since: garbage\r\n".to_string(), 200),
        // If-None-Match wins over If-Modified-Since (RFC 9110 §13.1.3).
        (
            format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {MTIME_HTTP}\r\n"),
            200,
        ),
        // Conditionals come before Range (§13.2.2).
        (
            format!("If-None-Match: {etag}\r\nRange: bytes=0-9\r\n"),
            304,
        ),
    ];
    let mut c = srv.connect(0);
    for (extra, status) in &cases {
        c.send(format!("GET /big.bin HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n").as_bytes());
        let r = c.read_response();
        assert_status(&r, *status);
        assert_date_and_server(&r);
        assert_eq!(r.must_header("ETag"), etag, "{extra}");
        assert_eq!(r.must_header("Last-Modified"), MTIME_HTTP, "{extra}");
        if *status == 304 {
            assert!(r.body.is_empty(), "{extra}");
            assert!(r.header("Content-Length").is_none(), "{extra}");
            assert!(r.header("Content-Type").is_none(), "{extra}");
        } else {
            assert_eq!(r.body, data, "{extra}");
        }
    }
    // HEAD gets the same 304.
    c.send(
        format!("HEAD /big.bin HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: {etag}\r\n\r\n")
            .as_bytes(),
    );
    let r = c.read_head_response();
    assert_status(&r, 304);
    assert!(
        r.body.is_empty(),
        "a body after a HEAD's 304: {}",
        r.body_str()
    );
    // And the connection is still in step after all of it.
    c.send(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, file_bytes("/small.txt"));
}

#[test]
fn etag_is_stable_and_changes_with_the_file() {
    let srv = site();
    let a = srv.get("/small.txt");
    let b = srv.get("/small.txt");
    let etag = a.must_header("ETag").to_string();
    assert_eq!(b.must_header("ETag"), etag);
    // nginx's strong "<mtime hex>-<size hex>".
    assert_eq!(etag, format!("\"{MTIME_SECS:x}-{SMALL_LEN:x}\""));

    let path = srv.dir.join("www/small.txt");
    fs::write(&path, b"a new and shorter body\n").unwrap();
    set_mtime(&path, MTIME_SECS + 100);
    // The open-file cache trusts an entry for the rest of its second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let changed = loop {
        let r = srv.get("/small.txt");
        if r.header("ETag") != Some(etag.as_str()) || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(changed.body_str(), "a new and shorter body\n");
    assert_eq!(
        changed.must_header("ETag"),
        format!("\"{:x}-{:x}\"", MTIME_SECS + 100, 23)
    );
    // The old tag no longer matches, nor does the old date.
    let r = get_with(&srv, "/small.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_status(&r, 200);
    let r = get_with(
        &srv,
        "/small.txt",
        &format!("If-Modified-Since: {MTIME_HTTP}\r\n"),
    );
    assert_status(&r, 200);
    let r = get_with(
        &srv,
        "/small.txt",
        &format!("Range: bytes=0-1\r\nIf-Range: {etag}\r\n"),
    );
    assert_status(&r, 200);
}

// ---------------------------------------------------------------------------
// gzip_static
// ---------------------------------------------------------------------------

#[test]
fn gzip_static_sends_the_gz_file_to_clients_that_accept_gzip() {
    let srv = site();
    let gz = b"GZIPPED-BYTES-OF-APP-CSS";
    let plain = b"body { color: red }\n";
    for (ae, want_gz) in [
        (Some("gzip"), true),
        (Some("gzip, deflate, br"), true),
        (Some("br;q=1.0, gzip;q=0.5"), true),
        (Some("*"), true),
        (Some("gzip;q=0"), false),
        (Some("gzip;q=0, *"), false),
        (Some("deflate"), false),
        (None, false),
    ] {
        let extra = ae.map_or(String::new(), |v| format!("Accept-Encoding: {v}\r\n"));
        let r = get_with(&srv, "/gz/app.css", &extra);
        assert_status(&r, 200);
        assert_content_type(&r, &["text/css; charset=utf-8"]);
        assert_eq!(r.must_header("Vary"), "Accept-Encoding", "{ae:?}");
        if want_gz {
            assert_eq!(r.body, gz, "{ae:?}");
            assert_eq!(r.must_header("Content-Encoding"), "gzip", "{ae:?}");
            assert!(
                r.must_header("ETag")
                    .ends_with(&format!("-{:x}-gzip\"", gz.len()))
            );
        } else {
            assert_eq!(r.body, plain, "{ae:?}");
            assert!(r.header("Content-Encoding").is_none(), "{ae:?}");
            assert!(
                r.must_header("ETag")
                    .ends_with(&format!("-{:x}\"", plain.len()))
            );
        }
    }
    // A range refers to the file actually sent.
    let r = get_with(
        &srv,
        "/gz/app.css",
        "Accept-Encoding: gzip\r\nRange: bytes=0-6\r\n",
    );
    assert_status(&r, 206);
    assert_eq!(r.body, b"GZIPPED");
    assert_eq!(
        r.must_header("Content-Range"),
        format!("bytes 0-6/{}", gz.len())
    );
    // HEAD: the same head.
    let h = srv.raw("HEAD /gz/app.css HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
    assert_eq!(h.must_header("Content-Encoding"), "gzip");
    assert_eq!(h.must_header("Content-Length"), gz.len().to_string());
}

#[test]
fn gzip_static_without_a_gz_file_or_outside_the_route() {
    let srv = site();
    let r = get_with(&srv, "/gz/plain.css", "Accept-Encoding: gzip\r\n");
    assert_status(&r, 200);
    assert_eq!(r.body_str(), "plain {}\n");
    assert!(r.header("Content-Encoding").is_none());
    assert_eq!(r.must_header("Vary"), "Accept-Encoding");
    // A folder named FILE.gz is not a gzip file.
    let r = get_with(&srv, "/gz/dir.css", "Accept-Encoding: gzip\r\n");
    assert_status(&r, 200);
    assert_eq!(r.body_str(), "dir plain\n");
    assert!(r.header("Content-Encoding").is_none());
    // gzip_static is off outside /gz/.
    let r = get_with(&srv, "/nogz.css", "Accept-Encoding: gzip\r\n");
    assert_status(&r, 200);
    assert_eq!(r.body_str(), "not gzip_static\n");
    assert!(r.header("Content-Encoding").is_none());
    assert!(r.header("Vary").is_none());
    // A missing file with a client that accepts gzip is still a 404.
    let r = get_with(&srv, "/gz/none.css", "Accept-Encoding: gzip\r\n");
    assert_status(&r, 404);
}

// ---------------------------------------------------------------------------
// expires and add_header
// ---------------------------------------------------------------------------

#[test]
fn expires_sets_cache_control_and_expires_on_files() {
    let srv = site();
    let r = srv.get("/cache/a.txt");
    assert_status(&r, 200);
    assert_eq!(r.must_header("Cache-Control"), "max-age=3600");
    let date = parse_http_date(r.must_header("Date").as_bytes()).unwrap();
    let expires = parse_http_date(r.must_header("Expires").as_bytes()).unwrap();
    assert!(
        (3599..=3601).contains(&(expires - date)),
        "{}",
        r.describe()
    );
    // Kept on a 304 and a 206.
    let etag = r.must_header("ETag").to_string();
    let r = get_with(&srv, "/cache/a.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_status(&r, 304);
    assert_eq!(r.must_header("Cache-Control"), "max-age=3600");
    assert!(r.header("Expires").is_some());
    let r = get_with(&srv, "/cache/a.txt", "Range: bytes=0-1\r\n");
    assert_status(&r, 206);
    assert_eq!(r.must_header("Cache-Control"), "max-age=3600");
    // Not on an error, not where expires is off or not set.
    let r = srv.get("/cache/none.txt");
    assert_status(&r, 404);
    assert!(r.header("Cache-Control").is_none());
    assert!(r.header("Expires").is_none());
    for path in ["/off/b.txt", "/small.txt"] {
        let r = srv.get(path);
        assert_status(&r, 200);
        assert!(r.header("Cache-Control").is_none(), "{path}");
        assert!(r.header("Expires").is_none(), "{path}");
    }
}

#[test]
fn add_header_at_server_and_location_level_goes_on_every_response() {
    let srv = site();
    let r = srv.get("/small.txt");
    assert_status(&r, 200);
    assert_eq!(r.headers_named("X-Server"), ["s"]);
    assert_eq!(r.headers_named("X-Always"), ["a"]);
    assert!(r.header("X-Loc").is_none());
    // The location's entries add to the server's.
    let r = srv.get("/cache/a.txt");
    assert_eq!(r.headers_named("X-Server"), ["s"]);
    assert_eq!(r.headers_named("X-Loc"), ["l"]);
    assert_eq!(r.headers_named("X-Always"), ["a"]);
    // Every status: CONFIG.md's "every response of the route" (nginx would
    // add to errors only the `always` ones; here `always` changes nothing).
    let r = get_with(&srv, "/small.txt", "Range: bytes=0-1\r\n");
    assert_status(&r, 206);
    assert_eq!(r.headers_named("X-Server"), ["s"]);
    let etag = r.must_header("ETag").to_string();
    let r = get_with(&srv, "/small.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_status(&r, 304);
    assert_eq!(r.headers_named("X-Server"), ["s"]);
    let r = srv.get("/folder");
    assert_status(&r, 301);
    assert_eq!(r.headers_named("X-Server"), ["s"]);
    for (path, status, loc) in [
        ("/nope", 404, false),
        ("/cache/nope", 404, true),
        ("/folder/", 403, false),
    ] {
        let r = srv.get(path);
        assert_status(&r, status);
        assert_eq!(r.headers_named("X-Server"), ["s"], "{path}");
        assert_eq!(r.header("X-Loc").is_some(), loc, "{path}");
        assert_eq!(r.headers_named("X-Always"), ["a"], "{path}");
    }
    let r = get_with(&srv, "/small.txt", "Range: bytes=5000-\r\n");
    assert_status(&r, 416);
    assert_eq!(r.headers_named("X-Server"), ["s"]);
    assert_eq!(r.headers_named("X-Always"), ["a"]);
}

// ---------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------

/// The numbers of a stub_status page, checking its exact shape (nginx's
/// trailing spaces included): active, accepts, handled, requests, reading,
/// writing, waiting; then localserver's own lines after nginx's four:
/// deferred reads, and the limits' refusals (`limits::status_limited`).
pub fn status_numbers(body: &str) -> [u64; 8] {
    let lines: Vec<&str> = body.split('\n').collect();
    assert_eq!(lines.len(), 7, "{body:?}");
    assert!(lines[5].starts_with("Limited: conn "), "{body:?}");
    assert_eq!(lines[6], "", "{body:?}");
    let num = |s: &str| {
        s.parse::<u64>()
            .unwrap_or_else(|_| panic!("{s:?} in {body:?}"))
    };
    let active = lines[0]
        .strip_prefix("Active connections: ")
        .and_then(|s| s.strip_suffix(' '))
        .unwrap_or_else(|| panic!("{body:?}"));
    assert_eq!(lines[1], "server accepts handled requests");
    let counts: Vec<u64> = lines[2]
        .strip_prefix(' ')
        .and_then(|s| s.strip_suffix(' '))
        .unwrap_or_else(|| panic!("{body:?}"))
        .split(' ')
        .map(num)
        .collect();
    let rww: Vec<&str> = lines[3]
        .strip_suffix(' ')
        .unwrap_or_else(|| panic!("{body:?}"))
        .split(' ')
        .collect();
    assert_eq!(rww.len(), 6, "{body:?}");
    assert_eq!(
        (rww[0], rww[2], rww[4]),
        ("Reading:", "Writing:", "Waiting:")
    );
    assert_eq!(counts.len(), 3, "{body:?}");
    let deferred = lines[4]
        .strip_prefix("Deferred reads: ")
        .and_then(|s| s.strip_suffix(' '))
        .unwrap_or_else(|| panic!("{body:?}"));
    [
        num(active),
        counts[0],
        counts[1],
        counts[2],
        num(rww[1]),
        num(rww[3]),
        num(rww[5]),
        num(deferred),
    ]
}

const STATUS_REQ: &[u8] = b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[test]
fn status_page_has_nginx_stub_status_text_and_live_counters() {
    let srv = site();
    // One silent connection (waiting) and one with half a head (reading).
    let _idle = srv.connect(0);
    let mut partial = srv.connect(0);
    partial.send(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n");
    let mut c = srv.connect(0);
    let deadline = Instant::now() + Duration::from_secs(5);
    let (first, r) = loop {
        c.send(STATUS_REQ);
        let r = c.read_response();
        let n = status_numbers(&r.body_str());
        if n[4] == 1 || Instant::now() > deadline {
            break (n, r);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_status(&r, 200);
    assert_content_type(&r, &["text/plain"]);
    assert_eq!(r.headers_named("X-Server"), ["s"]);
    let [
        active,
        accepts,
        handled,
        requests,
        reading,
        writing,
        waiting,
        deferred,
    ] = first;
    assert_eq!(active, 3, "{}", r.body_str());
    assert_eq!((reading, writing, waiting), (1, 1, 1), "{}", r.body_str());
    // The harness's readiness probe was accepted too.
    assert!(accepts >= 3 && handled == accepts, "{}", r.body_str());
    assert!(requests >= 1);
    // Every file here was just written, so in memory: no read waited.
    assert_eq!(deferred, 0, "{}", r.body_str());

    // One more request on the same connection: requests move, accepts do not.
    c.send(STATUS_REQ);
    let n = status_numbers(&c.read_response().body_str());
    assert_eq!((n[1], n[2], n[3]), (accepts, handled, requests + 1));

    // A new connection: one more accepted; `c` now waits between requests.
    let n = status_numbers(&srv.get("/status").body_str());
    assert_eq!(n[0], 4);
    assert_eq!((n[1], n[2], n[3]), (accepts + 1, handled + 1, requests + 2));
    assert_eq!((n[4], n[5], n[6]), (1, 1, 2));

    // HEAD gets the head only, with the same length as a GET would.
    let h = srv.raw("HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_status(&h, 200);
    assert!(h.body.is_empty());
    // Other routes are not status pages.
    assert_eq!(srv.get("/small.txt").body, file_bytes("/small.txt"));
}

#[test]
fn server_tokens_off_hides_the_version_on_normal_and_error_answers() {
    let dir = TempDir::new("tokens");
    dir.write("www/a.txt", "a");
    dir.write("www/v/b.txt", "b");
    let srv = Server::start(
        dir,
        "server_tokens off;\n\
         server { listen 127.0.0.1:$P0; root www; location /v/ { server_tokens on; } }",
    );
    let versioned = format!("localserver/{}", env!("CARGO_PKG_VERSION"));
    let ok = srv.get("/a.txt");
    assert_status(&ok, 200);
    assert_eq!(ok.header("Server"), Some("localserver"));
    let missing = srv.get("/nope");
    assert_status(&missing, 404);
    assert_eq!(missing.header("Server"), Some("localserver"));
    assert!(!String::from_utf8_lossy(&missing.body).contains(&versioned));
    // A head that is not a request is answered by the server's own setting.
    let bad = srv.raw("GET /a.txt HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n");
    assert_status(&bad, 400);
    assert_eq!(bad.header("Server"), Some("localserver"));
    // A location may turn it back on.
    let on = srv.get("/v/b.txt");
    assert_eq!(on.header("Server"), Some(versioned.as_str()));
}

#[test]
fn allow_and_deny_by_client_address_ipv4_and_ipv6() {
    if !has_ipv6("allow_and_deny_by_client_address_ipv4_and_ipv6") {
        return;
    }
    let dir = TempDir::new("access-rules");
    dir.write("www/a.txt", "a");
    dir.write("www/six/b.txt", "b");
    dir.write("www/status/x", "");
    let srv = Server::start(
        dir,
        "server { listen 127.0.0.1:$P0; listen [::1]:$P0; root www;\n\
           allow 127.0.0.1; deny all;\n\
           location /six/ { deny 127.0.0.0/8; allow ::1; }\n\
           location = /status { status on; allow 127.0.0.1; allow ::1; deny all; }\n\
           error_page 403 /a.txt; }",
    );
    let port = srv.port(0);
    let v6 = |path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("::1", port)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    };
    // The server's rules: 127.0.0.1 in, ::1 out (with its error_page).
    assert_status(&srv.get("/a.txt"), 200);
    let denied = v6("/a.txt");
    assert!(denied.starts_with("HTTP/1.1 403 "), "{denied}");
    assert!(
        denied.ends_with("\r\n\r\na"),
        "the error_page serves 403: {denied}"
    );
    // A location's own rules replace them: the other way round.
    assert_status(&srv.get("/six/b.txt"), 403);
    assert!(v6("/six/b.txt").starts_with("HTTP/1.1 200 "));
    // The README's example: the status page for loopback only.
    assert_status(&srv.get("/status"), 200);
    assert!(v6("/status").starts_with("HTTP/1.1 200 "));
}
