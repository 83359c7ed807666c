//! What users upload cannot attack the site (CONFIG.md "Serving what users
//! uploaded", issue 14 items 5-7): files served from an `upload_store` carry
//! `nosniff` and `Content-Security-Policy: sandbox` (ordinary files do not),
//! an upload in progress cannot be read or deleted under its temporary name
//! and completes all the same, a crash's leftovers are removed at start, and
//! a FIFO under a root is refused from its `stat` without ever being opened
//! (an open would wake its blocked writer).
//!
//! Layout of each test folder: `test.conf`, `site/www` (root), `site/store`
//! (the store).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::common::*;

const CONFIG: &str = "
server {
    listen 127.0.0.1:$P0;
    server_name localhost;
    root site/www;
    index index.html;
    location /uploads/ {
        upload_store site/store;
        allowed_methods GET HEAD POST PUT DELETE;
        autoindex on;
    }
    location /gz/ {
        gzip_static on;
    }
    location /listed/ {
        autoindex on;
    }
}
";

fn site(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("site/www/index.html", "index\n");
    dir.write("site/www/page.html", "<p>page</p>\n");
    dir.mkdir("site/store");
    dir
}

fn store(srv: &Server) -> PathBuf {
    srv.dir.join("site/store")
}

fn put(srv: &Server, path: &str, body: &[u8]) -> Response {
    let mut c = srv.connect(0);
    let mut bytes = format!(
        "PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    c.send_while_reading(bytes)
}

fn request(srv: &Server, method: &str, path: &str, extra: &str) -> Response {
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n");
    let mut c = srv.connect(0);
    c.send(req.as_bytes());
    c.read_response_to(req.as_bytes())
}

#[track_caller]
fn assert_sandboxed(r: &Response, what: &str) {
    assert_eq!(
        r.headers_named("x-content-type-options"),
        vec!["nosniff"],
        "{what}:\n{}",
        r.describe()
    );
    assert_eq!(
        r.headers_named("content-security-policy"),
        vec!["sandbox"],
        "{what}:\n{}",
        r.describe()
    );
}

#[track_caller]
fn assert_not_sandboxed(r: &Response, what: &str) {
    assert!(
        r.header("x-content-type-options").is_none()
            && r.header("content-security-policy").is_none(),
        "{what}: an ordinary file got the upload headers:\n{}",
        r.describe()
    );
}

#[test]
fn uploaded_files_are_served_sandboxed_and_site_files_are_not() {
    let srv = Server::start(site("upsafe-sandbox"), CONFIG);
    let page = b"<script>document.cookie</script>\n";
    assert_status(&put(&srv, "/uploads/x.html", page), 201);

    let r = request(&srv, "GET", "/uploads/x.html", "");
    assert_status(&r, 200);
    assert_eq!(r.body, page);
    assert_sandboxed(&r, "GET of an upload");
    let etag = r.must_header("etag").to_string();

    let r = request(&srv, "HEAD", "/uploads/x.html", "");
    assert_status(&r, 200);
    assert!(r.body.is_empty());
    assert_sandboxed(&r, "HEAD of an upload");

    let r = request(&srv, "GET", "/uploads/x.html", "Range: bytes=0-7\r\n");
    assert_status(&r, 206);
    assert_eq!(r.body, &page[..8]);
    assert_sandboxed(&r, "206 of an upload");

    let r = request(
        &srv,
        "GET",
        "/uploads/x.html",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_status(&r, 304);
    assert!(r.body.is_empty());
    assert_sandboxed(&r, "304 of an upload");

    let r = request(&srv, "GET", "/uploads/", "");
    assert_status(&r, 200);
    assert!(r.body_str().contains("x.html"), "{}", r.describe());
    assert_sandboxed(&r, "listing of the upload folder");

    // The site's own files: untouched.
    for path in ["/page.html", "/", "/index.html"] {
        let r = request(&srv, "GET", path, "");
        assert_status(&r, 200);
        assert_not_sandboxed(&r, path);
    }
}

/// The temporary names in the store.
fn part_files(store: &Path) -> Vec<String> {
    dir_names(store)
        .into_iter()
        .filter(|n| n.starts_with(".upload-") && n.ends_with(".part"))
        .collect()
}

#[test]
fn an_upload_in_progress_is_invisible_and_still_completes() {
    let srv = Server::start(site("upsafe-part"), CONFIG);
    let body: Vec<u8> = XorShift::new(14).bytes(64 * 1024);
    let (first, second) = body.split_at(20_000);
    let mut up = srv.connect(0);
    up.send(
        format!(
            "PUT /uploads/big.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    up.send(first);
    let mut parts = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            parts = part_files(&store(&srv));
            parts.len() == 1
        }),
        "no temporary file appeared: {:?}",
        dir_names(&store(&srv))
    );
    let part = &parts[0];
    // Let the first bytes land in it: reading it would show them.
    let on_disk = store(&srv).join(part);
    assert!(
        wait_until(Duration::from_secs(10), || fs::metadata(&on_disk)
            .is_ok_and(|m| m.len() == first.len() as u64)),
        "the first part never reached the file"
    );

    let url = format!("/uploads/{part}");
    for method in ["GET", "HEAD", "DELETE"] {
        let r = request(&srv, method, &url, "");
        assert_status(&r, 404);
        if method != "HEAD" {
            assert!(
                !r.body
                    .windows(first.len().min(64))
                    .any(|w| w == &first[..64]),
                "{method} showed the upload's bytes"
            );
        }
    }
    // Never in a listing either.
    let r = request(&srv, "GET", "/uploads/", "");
    assert_status(&r, 200);
    assert!(!r.body_str().contains(".upload-"), "{}", r.describe());
    assert!(
        on_disk.exists(),
        "the DELETE removed the upload in progress"
    );

    up.send(second);
    let r = up.read_response();
    assert_status(&r, 201);
    assert_eq!(fs::read(store(&srv).join("big.bin")).unwrap(), body);
    assert!(part_files(&store(&srv)).is_empty());
    let r = request(&srv, "GET", "/uploads/big.bin", "");
    assert_status(&r, 200);
    assert_eq!(r.body, body);
}

#[test]
fn temporary_files_left_by_a_crash_are_removed_at_start() {
    let dir = site("upsafe-leftovers");
    let leftover = ".upload-0123456789abcdef.part";
    dir.write(&format!("site/store/{leftover}"), "half an upload");
    // Near misses are the users' own files: kept.
    let kept = [
        ".upload-0123456789ABCDEF.part",
        ".upload-0123.part",
        ".upload-0123456789abcdef.part.txt",
        "upload-0123456789abcdef.part",
        "keep.txt",
    ];
    for name in kept {
        dir.write(&format!("site/store/{name}"), "mine");
    }
    // A leftover-looking name in the site's own root is not an upload's.
    dir.write(&format!("site/www/{leftover}"), "site file");
    let srv = Server::start(dir, CONFIG);
    assert!(
        !store(&srv).join(leftover).exists(),
        "the leftover is still there: {:?}",
        dir_names(&store(&srv))
    );
    for name in kept {
        assert!(store(&srv).join(name).exists(), "{name} was removed");
    }
    assert!(srv.dir.join("site/www").join(leftover).exists());
    // The server serves on.
    assert_status(&put(&srv, "/uploads/after.txt", b"after"), 201);
}

/// A FIFO at `path` with a writer blocked in `open(2)` until some reader
/// opens it: the receiver hears when the writer's open returned.
fn fifo_with_blocked_writer(path: &Path) -> (mpsc::Receiver<()>, thread::JoinHandle<()>) {
    let st = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    let writer = thread::spawn(move || {
        // Blocks until a reader opens the FIFO.
        let f = fs::OpenOptions::new().write(true).open(&p);
        let _ = tx.send(());
        drop(f);
    });
    (rx, writer)
}

#[test]
fn a_fifo_is_refused_from_its_stat_and_never_opened() {
    let dir = site("upsafe-fifo");
    dir.mkdir("site/www/gz");
    dir.mkdir("site/www/listed/sub");
    dir.write("site/www/gz/a.txt", "plain");
    // The FIFOs: a file asked for, a `gzip_static` sibling, an index file.
    let fifos = [
        dir.join("site/www/pipe"),
        dir.join("site/www/gz/a.txt.gz"),
        dir.join("site/www/listed/sub/index.html"),
    ];
    let mut writers: Vec<_> = fifos.iter().map(|p| fifo_with_blocked_writer(p)).collect();
    let srv = Server::start(dir, CONFIG);

    let r = request(&srv, "GET", "/pipe", "");
    assert_status(&r, 403);
    let r = request(&srv, "HEAD", "/pipe", "");
    assert_status(&r, 403);
    // The sibling is not a regular file: the plain one is sent.
    let r = request(&srv, "GET", "/gz/a.txt", "Accept-Encoding: gzip\r\n");
    assert_status(&r, 200);
    assert_eq!(r.body, b"plain");
    assert!(r.header("content-encoding").is_none(), "{}", r.describe());
    // A FIFO named like the index is no index: the listing.
    let r = request(&srv, "GET", "/listed/sub/", "");
    assert_status(&r, 200);
    assert!(r.body_str().contains("index.html"), "{}", r.describe());

    // An open by the server would have woken every writer at once; a
    // thread that is woken runs within microseconds: a second is generous.
    thread::sleep(Duration::from_secs(1));
    for ((rx, _), path) in writers.iter().zip(&fifos) {
        assert!(
            rx.try_recv().is_err(),
            "the server opened {}: its writer woke up",
            path.display()
        );
    }
    // Release the writers: our own reader's open wakes each.
    for ((rx, writer), path) in writers.drain(..).zip(&fifos) {
        let reader = fs::File::open(path).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        writer.join().unwrap();
        drop(reader);
    }
}
