//! Filesystem attacks (issue 7): encoded and overlong traversals, symlinks
//! leading out at several depths, a FIFO, a file truncated while it is sent,
//! a folder deleted around its listing, and upload names built to escape the
//! store. A marker file lives outside the root; no response may contain it,
//! and every upload must land inside the store.
//!
//! Layout: `DIR/marker.txt` and `DIR/out/marker.txt` (outside), `DIR/www`
//! (the root), `DIR/www/store` (the upload store, so a name that climbs one
//! level lands in the root and two levels in `DIR`, both checked).

use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

const MARKER: &str = "MARKER-outside-the-root-7f3a";

const CONFIG: &str = r#"
send_timeout 2s;
server {
    listen 127.0.0.1:$P0;
    root www;
    autoindex on;
    client_max_body_size 1m;
    location /store/ {
        upload_store www/store;
        allowed_methods GET HEAD POST PUT DELETE;
    }
}
"#;

fn setup(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("marker.txt", MARKER);
    dir.write("out/marker.txt", MARKER);
    dir.write("out/deep/marker.txt", MARKER);
    dir.write("www/index.html", "index\n");
    dir.write("www/a/b/c/ok.txt", "ok\n");
    dir.mkdir("www/store");
    dir
}

/// Send a raw request line, read one answer; it must not hold the marker.
#[track_caller]
fn fetch(srv: &Server, target: &str) -> Response {
    let mut c = srv.connect(0);
    c.send(format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes());
    let r = c.read_response();
    assert!(
        !contains(&r.body, MARKER.as_bytes()) && !contains(&r.body, b"root:x:0:0"),
        "GET {target} leaked a file outside the root:\n{}",
        r.describe()
    );
    r
}

#[track_caller]
fn assert_refused(srv: &Server, target: &str) {
    let r = fetch(srv, target);
    assert!(
        matches!(r.status, 400 | 403 | 404),
        "GET {target}: expected 400, 403 or 404, got:\n{}",
        r.describe()
    );
}

#[test]
fn encoded_and_overlong_traversals_never_leave_the_root() {
    let srv = Server::start(setup("fs-encodings"), CONFIG);
    for target in [
        "/../marker.txt",
        "/a/../../marker.txt",
        "/a/b/c/../../../../out/marker.txt",
        "/%2e%2e/marker.txt",
        "/%2E%2e/marker.txt",
        "/%2e%2E/%2E%2e/etc/passwd",
        "/a/%2e%2e/%2e%2e/marker.txt",
        "/..%2fmarker.txt",
        "/a%2f..%2f..%2fmarker.txt",
        "/%2f..%2fmarker.txt",
        "/%2F%2E%2E%2Fmarker.txt",
        "/marker.txt%00",
        "/%00/../marker.txt",
        "/a/%00%2e%2e/%2e%2e/marker.txt",
        "/%c0%ae%c0%ae/marker.txt",
        "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "/%c0%2e%c0%2e/marker.txt",
        "/%e0%80%ae%e0%80%ae/marker.txt",
        "/%c0%af../marker.txt",
        "/..%c0%afmarker.txt",
        "/..\\marker.txt",
        "/a\\..\\..\\marker.txt",
        "/..%5cmarker.txt",
        "/a/..%5c..%5cmarker.txt",
        "/%5c..%5cmarker.txt",
        "//../marker.txt",
        "/./.././marker.txt",
        "/a/b/c/ok.txt/../../../../../marker.txt",
    ] {
        assert_refused(&srv, target);
    }
    // Listings of what would be above the root show nothing of it.
    for target in ["/../", "/%2e%2e/", "/a/../../", "/%c0%ae%c0%ae/"] {
        let r = fetch(&srv, target);
        assert!(
            !r.body_str().contains("marker.txt") && !r.body_str().contains("out/"),
            "GET {target} listed a folder outside the root:\n{}",
            r.describe()
        );
    }
    let r = srv.get("/a/b/c/ok.txt");
    assert_status(&r, 200);
    assert_eq!(r.body, b"ok\n");
}

#[test]
fn symlinks_escaping_at_any_depth_are_not_followed() {
    let dir = setup("fs-symlinks");
    let marker = dir.join("marker.txt");
    let out = dir.join("out");
    // File and folder links at depth 0, 1 and 3, relative and absolute.
    for (at, up) in [
        ("www", "../"),
        ("www/a", "../../"),
        ("www/a/b/c", "../../../../"),
    ] {
        symlink(
            format!("{up}marker.txt"),
            dir.join(&format!("{at}/rel-file")),
        )
        .unwrap();
        symlink(&marker, dir.join(&format!("{at}/abs-file"))).unwrap();
        symlink(format!("{up}out"), dir.join(&format!("{at}/rel-dir"))).unwrap();
        symlink(&out, dir.join(&format!("{at}/abs-dir"))).unwrap();
    }
    // A link inside the root to a folder inside, then climbing out of it.
    symlink("a/b", dir.join("www/inner")).unwrap();
    symlink("../../../out", dir.join("www/a/b/up3")).unwrap();
    // Links inside the root pointing inside.
    symlink("a/b/c/ok.txt", dir.join("www/in-file")).unwrap();
    symlink("a/b/c", dir.join("www/in-dir")).unwrap();
    let srv = Server::start(dir, CONFIG);
    for base in ["", "/a", "/a/b/c"] {
        for leaf in [
            "rel-file",
            "abs-file",
            "rel-dir/marker.txt",
            "abs-dir/marker.txt",
            "rel-dir/deep/marker.txt",
            "abs-dir/deep/marker.txt",
            "rel-dir/",
            "abs-dir/",
        ] {
            assert_refused(&srv, &format!("{base}/{leaf}"));
        }
    }
    for target in [
        "/inner/up3/marker.txt",
        "/a/b/up3/marker.txt",
        "/inner/up3/",
    ] {
        assert_refused(&srv, target);
    }
    // The listing of a folder holding escaping links does not follow them.
    let r = fetch(&srv, "/a/b/c/");
    assert_status(&r, 200);
    // Links that stay inside: the server refuses them too or serves the
    // target; either way nothing else. (This server resolves beneath the
    // root with RESOLVE_BENEATH, which follows links that stay inside.)
    for (target, want) in [("/in-file", &b"ok\n"[..]), ("/in-dir/ok.txt", &b"ok\n"[..])] {
        let r = fetch(&srv, target);
        assert!(
            (r.status == 200 && r.body == want) || matches!(r.status, 403 | 404),
            "GET {target}:\n{}",
            r.describe()
        );
    }
}

#[test]
fn fifo_is_refused_fast_while_others_are_served() {
    let dir = setup("fs-fifo");
    for p in ["www/fifo", "www/a/fifo.html", "www/store/fifo"] {
        let st = Command::new("mkfifo").arg(dir.join(p)).status().unwrap();
        assert!(st.success());
    }
    let srv = Server::start(dir, CONFIG);
    // Opening a FIFO without O_NONBLOCK waits for a writer, which never
    // comes: a loop that did so would answer nobody again. So the bounds
    // here are generous (a loaded machine is slow by milliseconds, a
    // blocked loop forever), and a GET timed before the FIFOs are asked
    // for shows what this machine takes right now.
    let calm = Instant::now();
    assert_status(&srv.get("/a/b/c/ok.txt"), 200);
    let calm = calm.elapsed();
    // Several FIFO requests in flight at once, on open connections.
    let mut held: Vec<Conn> = Vec::new();
    for target in ["/fifo", "/a/fifo.html", "/store/fifo"] {
        let mut c = srv.connect(0);
        c.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        c.send(format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        held.push(c);
    }
    let start = Instant::now();
    let mut other = srv.connect(0);
    other
        .stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    other.send(b"GET /a/b/c/ok.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = other.read_response();
    assert_status(&r, 200);
    let took = start.elapsed();
    assert!(
        took < calm * 20 + Duration::from_secs(1),
        "another client waited {took:?} ({calm:?} before the FIFOs)"
    );
    for mut c in held {
        let r = c.read_response();
        assert_status(&r, 403);
    }
}

#[test]
fn file_truncated_while_sent_ends_the_connection() {
    let dir = setup("fs-truncate");
    let data = XorShift::new(11).bytes(32 << 20);
    let path = dir.write("www/big.bin", &data);
    let srv = Server::start(dir, CONFIG);
    let mut c = srv.connect(0);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    // Read the head and a little of the body, then cut the file.
    while find(c.buffered(), b"\r\n\r\n").is_none() {
        assert!(c.fill().unwrap() > 0);
    }
    let head_len = find(c.buffered(), b"\r\n\r\n").unwrap() + 4;
    assert!(c.buffered().starts_with(b"HTTP/1.1 200 "));
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(4096).unwrap();
    drop(f);
    let start = Instant::now();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut total = c.buffered().len() - head_len;
    loop {
        let before = c.buffered().len();
        match c.fill() {
            Ok(0) => break,
            Ok(_) => total += c.buffered().len() - before,
            Err(e) if is_reset(&e) => break,
            Err(e) => panic!(
                "the connection hung after {total} bytes ({:?}): {e}",
                start.elapsed()
            ),
        }
    }
    assert!(total < data.len(), "all of a truncated file was sent?");
    assert!(start.elapsed() < Duration::from_secs(4));
    // The server goes on, and now sends the short file whole.
    let r = srv.get("/big.bin");
    assert_status(&r, 200);
    assert_eq!(r.body, &data[..4096]);
}

#[test]
fn folder_deleted_around_its_listing() {
    let dir = setup("fs-rmdir");
    for i in 0..200 {
        dir.write(&format!("www/list/file-{i:03}.txt"), "x");
    }
    let root = dir.join("www/list");
    let srv = Server::start(dir, CONFIG);
    let r = srv.get("/list/");
    assert_status(&r, 200);
    assert!(r.body_str().contains("file-199.txt"));
    // Deleted just before: not found (or an error), never a stale listing
    // of files that are gone... and the server lives.
    fs::remove_dir_all(&root).unwrap();
    let r = srv.get("/list/");
    assert!(matches!(r.status, 404 | 500), "{}", r.describe());
    // Deleted while being listed, again and again.
    for round in 0..10 {
        for i in 0..200 {
            fs::write(root.join(format!("f{i}")), "x").unwrap_or_else(|_| {
                fs::create_dir_all(&root).unwrap();
                fs::write(root.join(format!("f{i}")), "x").unwrap();
            });
        }
        let victim = root.clone();
        let t = thread::spawn(move || {
            let _ = fs::remove_dir_all(&victim);
        });
        let r = srv.get("/list/");
        assert!(
            matches!(r.status, 200 | 404 | 500),
            "round {round}: {}",
            r.describe()
        );
        t.join().unwrap();
    }
    let r = srv.get("/a/b/c/ok.txt");
    assert_status(&r, 200);
}

/// What lies in the store, in the root and in the test folder: names only.
fn listings(srv: &Server) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        dir_names(&srv.dir.join("www/store")),
        dir_names(&srv.dir.join("www")),
        dir_names(srv.dir.path()),
    )
}

#[track_caller]
fn assert_stayed_inside(
    srv: &Server,
    what: &str,
    before: &(Vec<String>, Vec<String>, Vec<String>),
    r: &Response,
) {
    assert!(
        r.status < 500 || r.status == 507,
        "{what}: a bad name is the client's fault:\n{}",
        r.describe()
    );
    let after = listings(srv);
    assert_eq!(after.1, before.1, "{what}: the root changed");
    assert_eq!(after.2, before.2, "{what}: the test folder changed");
    for name in &after.0 {
        assert!(
            !name.is_empty()
                && name.len() <= 255
                && name != "."
                && name != ".."
                && !name.contains('/'),
            "{what}: stored as {name:?}"
        );
        let real = fs::canonicalize(srv.dir.join("www/store").join(name)).unwrap();
        assert!(
            real.starts_with(srv.dir.join("www/store")),
            "{what}: {real:?}"
        );
    }
    if r.status == 201 {
        let loc = r.must_header("location");
        assert!(loc.contains("/store/"), "{what}: Location {loc:?}");
    }
}

#[test]
fn upload_names_never_leave_the_store() {
    let srv = Server::start(setup("fs-upload-names"), CONFIG);
    let long = "n".repeat(300);
    const B: &str = "fsattackBoundary42";
    // Through the request path of a raw PUT.
    for target in [
        "/store/../escaped-1",
        "/store/%2e%2e/escaped-2",
        "/store/..%2fescaped-3",
        "/store/..%2F..%2Fescaped-4",
        "/store/a%2fb",
        "/store/%00",
        "/store/x%00.txt",
        "/store/.",
        "/store/..",
        "/store/%2e",
        "/store/%2e%2e",
        "/store/",
        "/store//",
        &format!("/store/{long}"),
        "/store/..%5c..%5cescaped-5",
        "/store/%c0%ae%c0%ae/escaped-6",
    ] {
        let before = listings(&srv);
        let mut c = srv.connect(0);
        let req = format!(
            "PUT {target} HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nConnection: close\r\n\r\nescape?"
        );
        let r = c.send_while_reading(req.into_bytes());
        assert_stayed_inside(&srv, &format!("PUT {target}"), &before, &r);
    }
    // Through a multipart file name.
    for name in [
        "../escaped-7",
        "../../escaped-8",
        "a/../../escaped-9",
        "/tmp/escaped-10",
        "sub/dir/file",
        "x\0y",
        "\0",
        "..%2fescaped-11",
        "%2e%2e%2fescaped-12",
        ".",
        "..",
        "",
        "...",
        "..\\..\\escaped-13",
        long.as_str(),
        &format!("{long}.txt"),
    ] {
        let before = listings(&srv);
        let body = multipart(B, &[Part::file("f", name, b"escape?")]);
        let mut req = format!(
            "POST /store/ HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary={B}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        let r = srv.connect(0).send_while_reading(req);
        assert_stayed_inside(&srv, &format!("multipart filename {name:?}"), &before, &r);
    }
    assert!(
        dir_names(std::path::Path::new("/tmp"))
            .iter()
            .all(|n| !n.starts_with("escaped-"))
    );
    assert_status(&srv.get("/index.html"), 200);
}
