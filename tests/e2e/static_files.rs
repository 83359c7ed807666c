//! Static files: index files, directory listings, folder redirects, HEAD,
//! MIME types and dates, root vs alias, and a 64 MiB file that must arrive
//! byte for byte (CONFIG.md routes; HTTP.md "Responses").

use std::fs;
use std::time::{Duration, SystemTime};

use crate::common::*;

/// 2001-09-09T01:46:40Z, a round unix time whose HTTP date is known.
const MTIME_SECS: u64 = 1_000_000_000;
const MTIME_HTTP: &str = "Sun, 09 Sep 2001 01:46:40 GMT";

fn set_mtime(path: &std::path::Path, secs: u64) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn site() -> Server {
    let dir = TempDir::new("static");
    dir.write("www/index.html", "<h1>home</h1>\n");
    dir.write("www/page.html", "<p>page</p>\n");
    dir.write("www/sub/index.html", "sub index\n");
    dir.write("www/second/other.htm", "second choice\n");
    dir.write("www/noindex/file.txt", "x\n");
    dir.write("www/list/aa-file.txt", "aaaa\n");
    dir.write("www/list/nn-file.txt", "nnnnnnnnnn\n");
    dir.write("www/list/zz-folder/inner.txt", "inner\n");
    dir.write("www/list/mm-folder/inner.txt", "inner\n");
    dir.write("www/list/<b>&\"q\".txt", "escape me\n");
    dir.write("www/list/space name.txt", "space\n");
    dir.write("manual/guide.html", "<p>guide via alias</p>\n");
    dir.write("manual/deep/x.txt", "deep via alias\n");
    dir.write("www/docs/guide.html", "WRONG: root, not alias\n");
    dir.write("www/picsx/guide.html", "picsx from root\n");
    Server::start(
        dir,
        r#"
server {
    listen 127.0.0.1:$P0;
    root www;

    location /list/ { autoindex on; }
    location /second/ { index missing.html other.htm; }
    location /docs/ { alias manual/; }
    location /abs/ { alias $DIR/manual/; }
    location /pics { alias manual; }
}
"#,
    )
}

#[test]
fn index_file_for_root() {
    let srv = site();
    let r = srv.get("/");
    assert_status(&r, 200);
    assert_eq!(r.body, b"<h1>home</h1>\n");
    assert_content_type(&r, &["text/html; charset=utf-8"]);
    assert_eq!(r.must_header("content-length"), "14");
    assert_date_and_server(&r);
    assert!(r.header("last-modified").is_some());
}

#[test]
fn index_file_for_subfolder() {
    let srv = site();
    let r = srv.get("/sub/");
    assert_status(&r, 200);
    assert_eq!(r.body, b"sub index\n");
}

#[test]
fn first_existing_index_wins() {
    let srv = site();
    let r = srv.get("/second/");
    assert_status(&r, 200);
    assert_eq!(r.body, b"second choice\n");
}

#[test]
fn plain_file() {
    let srv = site();
    let r = srv.get("/page.html");
    assert_status(&r, 200);
    assert_eq!(r.body, b"<p>page</p>\n");
}

#[test]
fn query_string_is_not_part_of_the_path() {
    let srv = site();
    let r = srv.get("/page.html?v=1&x=%20y");
    assert_status(&r, 200);
    assert_eq!(r.body, b"<p>page</p>\n");
}

#[test]
fn percent_encoded_path_is_decoded() {
    let srv = site();
    let r = srv.get("/%70age.html");
    assert_status(&r, 200);
    assert_eq!(r.body, b"<p>page</p>\n");
    let r = srv.get("/list/space%20name.txt");
    assert_status(&r, 200);
    assert_eq!(r.body, b"space\n");
}

#[test]
fn dot_segments_inside_the_root_are_resolved() {
    // HTTP.md rule 28: dot-segments are removed; staying inside the root is fine.
    let srv = site();
    for path in [
        "/sub/../page.html",
        "/./page.html",
        "/sub/./../sub/../page.html",
        "/sub/%2e%2e/page.html",
    ] {
        let r = srv.get(path);
        assert_status(&r, 200);
        assert_eq!(r.body, b"<p>page</p>\n", "{path}");
    }
}

#[test]
fn autoindex_lists_names_escaped_folders_first() {
    let srv = site();
    let r = srv.get("/list/");
    assert_status(&r, 200);
    assert_content_type(&r, &["text/html; charset=utf-8"]);
    assert_eq!(r.must_header("content-length"), r.body.len().to_string());
    let body = r.body_str();
    for name in ["aa-file.txt", "nn-file.txt", "zz-folder", "mm-folder"] {
        assert!(body.contains(name), "listing lacks {name}:\n{body}");
    }
    // Escaped: the raw name would inject markup.
    assert!(
        !body.contains("<b>&\"q\""),
        "file name not HTML-escaped in the listing:\n{body}"
    );
    assert!(
        body.contains("&lt;b&gt;&amp;"),
        "escaped file name missing from the listing:\n{body}"
    );
    // Folders first.
    let pos = |s: &str| body.find(s).unwrap();
    for folder in ["zz-folder", "mm-folder"] {
        for file in ["aa-file.txt", "nn-file.txt"] {
            assert!(
                pos(folder) < pos(file),
                "folder {folder} should be listed before file {file}:\n{body}"
            );
        }
    }
    // Folders are linked with their slash.
    assert!(body.contains("zz-folder/"), "{body}");
}

#[test]
fn autoindex_subfolder_and_files_reachable() {
    let srv = site();
    let r = srv.get("/list/zz-folder/");
    assert_status(&r, 200);
    assert!(r.body_str().contains("inner.txt"));
    let r = srv.get("/list/zz-folder/inner.txt");
    assert_status(&r, 200);
    assert_eq!(r.body, b"inner\n");
    let r = srv.get("/list/%3Cb%3E%26%22q%22.txt");
    assert_status(&r, 200);
    assert_eq!(r.body, b"escape me\n");
}

#[test]
fn folder_without_index_and_autoindex_off_is_403() {
    let srv = site();
    let r = srv.get("/noindex/");
    assert_status(&r, 403);
    assert!(!r.body_str().contains("file.txt"), "403 must not list");
    assert_date_and_server(&r);
}

#[test]
fn folder_without_slash_redirects_keeping_the_query() {
    let srv = site();
    for (path, want) in [
        ("/sub", "/sub/"),
        ("/list?sort=name&x=1", "/list/?sort=name&x=1"),
        ("/list/zz-folder", "/list/zz-folder/"),
        ("/noindex?q", "/noindex/?q"),
    ] {
        let r = srv.get(path);
        assert_status(&r, 301);
        let loc = r.must_header("location");
        // Relative or absolute (http://host:port/...) are both allowed.
        let rel = match loc.strip_prefix("http://") {
            Some(rest) => &rest[rest.find('/').unwrap()..],
            None => loc,
        };
        assert_eq!(rel, want, "Location for {path}");
    }
}

#[test]
fn missing_file_404() {
    let srv = site();
    assert_status(&srv.get("/missing.html"), 404);
    assert_status(&srv.get("/sub/missing/"), 404);
    // A file used as a folder.
    assert_status(&srv.get("/page.html/x"), 404);
}

#[test]
fn alias_replaces_the_prefix() {
    let srv = site();
    let r = srv.get("/docs/guide.html");
    assert_status(&r, 200);
    assert_eq!(r.body, b"<p>guide via alias</p>\n");
    let r = srv.get("/docs/deep/x.txt");
    assert_status(&r, 200);
    assert_eq!(r.body, b"deep via alias\n");
    let r = srv.get("/abs/guide.html");
    assert_status(&r, 200);
    assert_eq!(r.body, b"<p>guide via alias</p>\n");
}

#[test]
fn location_prefix_matches_at_segment_boundary() {
    // `location /pics` matches /pics/... but never /picsx/..., which is
    // served from the server's root instead.
    let srv = site();
    let r = srv.get("/pics/guide.html");
    assert_status(&r, 200);
    assert_eq!(r.body, b"<p>guide via alias</p>\n");
    let r = srv.get("/picsx/guide.html");
    assert_status(&r, 200);
    assert_eq!(r.body, b"picsx from root\n");
}

#[test]
fn head_has_get_headers_and_no_body() {
    let srv = site();
    for path in ["/page.html", "/list/", "/missing", "/sub"] {
        let get = srv.get(path);
        let mut c = srv.connect(0);
        // HEAD then GET in one write: if the HEAD answer carried body bytes,
        // the GET answer would not parse.
        c.send(
            format!(
                "HEAD {path} HTTP/1.1\r\nHost: localhost\r\n\r\n\
                 GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        let head = c.read_head_response();
        assert_eq!(head.status_line, get.status_line, "{path}");
        for name in [
            "content-length",
            "content-type",
            "last-modified",
            "location",
            "server",
        ] {
            assert_eq!(
                head.header(name),
                get.header(name),
                "{name} for HEAD {path}"
            );
        }
        assert!(head.header("content-length").is_some(), "HEAD {path}");
        let get2 = c.read_response();
        assert_eq!(get2.status_line, get.status_line, "GET after HEAD {path}");
        assert_eq!(get2.body, get.body, "GET after HEAD {path}");
        c.expect_closed(Duration::from_secs(3));
    }
}

#[test]
fn mime_types() {
    let dir = TempDir::new("mime");
    let files: &[(&str, &[u8], &[&str])] = &[
        ("a.html", b"<p>x</p>", &["text/html; charset=utf-8"]),
        ("a.css", b"p{}", &["text/css; charset=utf-8"]),
        (
            "a.js",
            b"1;",
            &[
                "text/javascript; charset=utf-8",
                "application/javascript; charset=utf-8",
            ],
        ),
        ("a.txt", b"x", &["text/plain; charset=utf-8"]),
        (
            "a.json",
            b"{}",
            &["application/json", "application/json; charset=utf-8"],
        ),
        (
            "a.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            &["image/svg+xml", "image/svg+xml; charset=utf-8"],
        ),
        ("a.png", b"\x89PNG\r\n\x1a\n", &["image/png"]),
        ("a.jpg", b"\xff\xd8\xff", &["image/jpeg"]),
        ("a.gif", b"GIF89a", &["image/gif"]),
        ("a.webp", b"RIFF", &["image/webp"]),
        (
            "a.ico",
            b"\0\0\x01\0",
            &["image/x-icon", "image/vnd.microsoft.icon"],
        ),
        ("a.wasm", b"\0asm", &["application/wasm"]),
        ("a.woff2", b"wOF2", &["font/woff2"]),
        ("a.pdf", b"%PDF-", &["application/pdf"]),
        ("a.mp4", b"\0\0\0\x18ftyp", &["video/mp4"]),
        ("UPPER.HTML", b"<p>X</p>", &["text/html; charset=utf-8"]),
        // No extension in the table: nginx's `default_type` is text/plain,
        // its shipped mime.types says application/octet-stream; both are fine.
        (
            "unknown.zzqx",
            b"?",
            &[
                "application/octet-stream",
                "text/plain",
                "text/plain; charset=utf-8",
            ],
        ),
    ];
    for (name, body, _) in files {
        dir.write(&format!("www/{name}"), body);
    }
    let srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root www; }");
    for (name, body, types) in files {
        let r = srv.get(&format!("/{name}"));
        assert_status(&r, 200);
        assert_eq!(&r.body, body, "{name}");
        assert_content_type(&r, types);
    }
}

#[test]
fn last_modified_date_and_server_headers() {
    let dir = TempDir::new("dates");
    let p = dir.write("www/old.txt", "old\n");
    set_mtime(&p, MTIME_SECS);
    let srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root www; }");
    let r = srv.get("/old.txt");
    assert_status(&r, 200);
    assert_eq!(r.must_header("last-modified"), MTIME_HTTP);
    assert_date_and_server(&r);
    // Every response has Date and Server, errors and redirects too.
    for path in ["/nope", "/", "/old.txt"] {
        let r = srv.get(path);
        assert_date_and_server(&r);
    }
    let r = srv.raw("DELETE /old.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_status(&r, 405);
    assert_date_and_server(&r);
}

#[test]
fn empty_file() {
    let dir = TempDir::new("empty-file");
    dir.write("www/empty.txt", "");
    let srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root www; }");
    let mut c = srv.connect(0);
    c.send(
        b"GET /empty.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /empty.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..2 {
        let r = c.read_response();
        assert_status(&r, 200);
        assert_eq!(r.must_header("content-length"), "0");
        assert!(r.body.is_empty());
    }
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn large_file_arrives_intact() {
    const LEN: usize = 64 * 1024 * 1024;
    let dir = TempDir::new("large");
    let data = XorShift::new(0x10ca_15e7_7e57).bytes(LEN);
    let want_sum = checksum(&data);
    dir.write("www/big.bin", &data);
    dir.write("www/small.txt", "small\n");
    drop(data);
    let srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root www; }");

    let mut c = srv.connect(0);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.must_header("content-length"), LEN.to_string());
    assert_eq!(r.body.len(), LEN);
    if checksum(&r.body) != want_sum {
        let want = XorShift::new(0x10ca_15e7_7e57).bytes(LEN);
        let at = want.iter().zip(&r.body).position(|(a, b)| a != b);
        panic!("64 MiB body differs from the file, first at byte {at:?}");
    }
    drop(r);

    // The connection is still in step after 64 MiB.
    c.send(b"GET /small.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"small\n");
}

#[test]
fn large_file_to_two_clients_at_once() {
    // Two downloads interleaved on one thread: neither may corrupt the other.
    const LEN: usize = 16 * 1024 * 1024;
    let dir = TempDir::new("large-two");
    let data = XorShift::new(77).bytes(LEN);
    let want_sum = checksum(&data);
    dir.write("www/big.bin", &data);
    drop(data);
    let srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root www; }");
    let port = srv.port(0);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                c.send(b"GET /big.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
                let r = c.read_response();
                (r.status, r.body.len(), checksum(&r.body))
            })
        })
        .collect();
    for h in handles {
        let (status, len, sum) = h.join().unwrap();
        assert_eq!(status, 200);
        assert_eq!(len, LEN);
        assert_eq!(sum, want_sum, "body corrupted");
    }
}
