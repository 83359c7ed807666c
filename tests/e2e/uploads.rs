//! Uploads into an `upload_store` and DELETE (CONFIG.md "Request bodies and
//! uploads"): multipart and raw bodies land on disk byte for byte under a
//! name that never leaves the store, half-received or refused uploads leave
//! nothing behind, stored files are never run as CGI, and a full disk is 507.
//!
//! Layout of each test folder: `test.conf`, `site/www` (root), `site/store`
//! (the store), so a name that climbs out of the store would land in `site/`
//! or in the test folder, both of which are checked.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

const BOUNDARY: &str = "----localserverTestBoundary7MA4YWxkTrZu0gW";

fn store_site_with(extra_top: &str, extra_server: &str) -> Server {
    let dir = TempDir::new("uploads");
    dir.write("site/www/index.html", "index\n");
    dir.mkdir("site/store");
    let config = format!(
        "{extra_top}
server {{
    listen 127.0.0.1:$P0;
    server_name localhost;
    root site/www;
    client_max_body_size 64m;
    {extra_server}
    location /uploads/ {{
        upload_store site/store;
        allowed_methods GET HEAD POST PUT DELETE;
        autoindex on;
    }}
    # The same store, read-only.
    location /ro/ {{
        upload_store site/store;
    }}
    # The same store with a small limit.
    location /small/ {{
        upload_store site/store;
        allowed_methods GET HEAD POST PUT DELETE;
        client_max_body_size 1k;
    }}
}}
"
    );
    Server::start(dir, &config)
}

fn store_site() -> Server {
    store_site_with("", "")
}

fn store(srv: &Server) -> PathBuf {
    srv.dir.join("site/store")
}

/// Send one request (head + body) on a new connection and read the answer
/// while the body is being written.
fn request(srv: &Server, head: &str, body: &[u8]) -> Response {
    let mut c = srv.connect(0);
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    c.send_while_reading(bytes)
}

fn put(srv: &Server, path: &str, body: &[u8]) -> Response {
    request(
        srv,
        &format!(
            "PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ),
        body,
    )
}

fn post_multipart(srv: &Server, path: &str, body: &[u8]) -> Response {
    request(
        srv,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ),
        body,
    )
}

fn delete(srv: &Server, path: &str) -> Response {
    srv.raw(&format!(
        "DELETE {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ))
}

/// `Location` names `path` (absolute URL or absolute path).
#[track_caller]
fn assert_location(r: &Response, path: &str) {
    let loc = r.must_header("location");
    assert!(
        loc == path || (loc.starts_with("http://") && loc.ends_with(path)),
        "Location {loc:?} does not name {path}:\n{}",
        r.describe()
    );
}

/// File content full of near-misses of the multipart delimiter
/// `CRLF--BOUNDARY`, binary bytes, and an ending that looks like the start
/// of a delimiter.
fn tricky_content(seed: u64, random_len: usize) -> Vec<u8> {
    let b = BOUNDARY.as_bytes();
    let mut v = Vec::new();
    v.extend_from_slice(b"\x00\xff\xfe binary start\r\n");
    v.extend_from_slice(&XorShift::new(seed).bytes(random_len));
    v.extend_from_slice(b"\r\n--");
    v.extend_from_slice(&b[..b.len() - 1]); // the boundary but its last byte
    v.extend_from_slice(b"\r\n\r\n-\r\n--\r\n");
    v.extend_from_slice(b"X--");
    v.extend_from_slice(b); // the boundary without the CRLF before it
    v.extend_from_slice(b"\r\r\n--");
    v.extend_from_slice(&b[..b.len() / 2]);
    v.extend_from_slice(b"\r\n\x00--\r\n");
    v.extend_from_slice(&XorShift::new(seed + 1).bytes(4096));
    v.extend_from_slice(b"\r\n-"); // ends like a delimiter that never comes
    v
}

#[test]
fn multipart_two_files_and_a_field() {
    let srv = store_site();
    let a = tricky_content(11, 64 * 1024);
    let mut b = b"plain text\r\nsecond line\r\n--".to_vec();
    b.extend_from_slice(&BOUNDARY.as_bytes()[..10]);
    b.extend_from_slice(b"\r\n\r\nends with CRLF\r\n");
    let body = multipart(
        BOUNDARY,
        &[
            Part::file("first", "a.bin", &a),
            Part::field("note", "a text field, not a file"),
            Part::file("second", "b.txt", &b),
        ],
    );
    let r = post_multipart(&srv, "/uploads/", &body);
    assert_status(&r, 201);
    assert_date_and_server(&r);
    assert_location(&r, "/uploads/a.bin");
    let listed = r.body_str();
    assert!(
        listed.contains("a.bin") && listed.contains("b.txt"),
        "the answer must list every stored name:\n{}",
        r.describe()
    );
    // Both files, byte for byte, and nothing else (no field, no temp file).
    let st = store(&srv);
    assert_eq!(dir_names(&st), ["a.bin", "b.txt"]);
    assert!(fs::read(st.join("a.bin")).unwrap() == a, "a.bin differs");
    assert!(fs::read(st.join("b.txt")).unwrap() == b, "b.txt differs");
    // Served back from the store.
    let g = srv.get("/uploads/a.bin");
    assert_status(&g, 200);
    assert!(g.body == a, "GET /uploads/a.bin returned other bytes");
    assert_eq!(srv.get("/uploads/b.txt").body, b);
    // And listed.
    let l = srv.get("/uploads/");
    assert_status(&l, 200);
    assert!(l.body_str().contains("a.bin") && l.body_str().contains("b.txt"));
}

#[test]
fn multipart_three_files_arriving_in_small_pieces() {
    // Boundaries split across reads at every kind of position.
    let srv = store_site();
    let files: Vec<Vec<u8>> = (0..3).map(|i| tricky_content(100 + i, 1024)).collect();
    let body = multipart(
        BOUNDARY,
        &[
            Part::file("f", "one.bin", &files[0]),
            Part::file("f", "two.bin", &files[1]),
            Part::field("between", "x"),
            Part::file("f", "three.bin", &files[2]),
        ],
    );
    let mut c = srv.connect(0);
    c.send(
        format!(
            "POST /uploads/ HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: multipart/form-data; boundary=\"{BOUNDARY}\"\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let mut sent = 0;
    let mut step = 1;
    while sent < body.len() {
        let n = step.min(body.len() - sent);
        c.send(&body[sent..sent + n]);
        sent += n;
        step = step % 61 + 7; // 8, 15, 22, ... 68, then 9, 16, ...
        thread::sleep(Duration::from_millis(1));
    }
    let r = c.read_response();
    assert_status(&r, 201);
    assert_location(&r, "/uploads/one.bin");
    let st = store(&srv);
    assert_eq!(dir_names(&st), ["one.bin", "three.bin", "two.bin"]);
    for (name, want) in ["one.bin", "two.bin", "three.bin"].iter().zip(&files) {
        assert!(fs::read(st.join(name)).unwrap() == *want, "{name} differs");
    }
    // The connection is still usable.
    c.send(b"GET /uploads/two.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(c.read_response().body == files[1]);
}

#[test]
fn put_new_then_replace() {
    let srv = store_site();
    let r = put(&srv, "/uploads/p.txt", b"first version\n");
    assert_status(&r, 201);
    assert_date_and_server(&r);
    assert_location(&r, "/uploads/p.txt");
    assert_eq!(
        fs::read(store(&srv).join("p.txt")).unwrap(),
        b"first version\n"
    );

    let r = put(&srv, "/uploads/p.txt", b"second, longer version\n");
    assert_status(&r, 204);
    assert!(
        r.body.is_empty(),
        "bytes after a 204 head: {:?}",
        r.body_str()
    );
    assert_eq!(
        fs::read(store(&srv).join("p.txt")).unwrap(),
        b"second, longer version\n"
    );
    // Shorter again: no tail of the old content may remain.
    let r = put(&srv, "/uploads/p.txt", b"3rd\n");
    assert_status(&r, 204);
    let g = srv.get("/uploads/p.txt");
    assert_status(&g, 200);
    assert_eq!(g.body, b"3rd\n");
    assert_eq!(g.must_header("content-length"), "4");
    assert_eq!(dir_names(&store(&srv)), ["p.txt"]);
}

#[test]
fn raw_post_to_a_name_stores_the_body() {
    let srv = store_site();
    let data = XorShift::new(5).bytes(10_000);
    let r = request(
        &srv,
        &format!(
            "POST /uploads/raw.bin HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            data.len()
        ),
        &data,
    );
    assert_status(&r, 201);
    assert_location(&r, "/uploads/raw.bin");
    assert!(fs::read(store(&srv).join("raw.bin")).unwrap() == data);
    let h =
        srv.raw("HEAD /uploads/raw.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_status(&h, 200);
    assert_eq!(h.must_header("content-length"), "10000");
}

#[test]
fn delete_file_missing_and_folder() {
    let srv = store_site();
    assert_status(&put(&srv, "/uploads/d.txt", b"delete me"), 201);
    let r = delete(&srv, "/uploads/d.txt");
    assert_status(&r, 204);
    assert!(
        r.body.is_empty(),
        "bytes after a 204 head: {:?}",
        r.body_str()
    );
    assert_date_and_server(&r);
    assert!(!store(&srv).join("d.txt").exists());
    assert_status(&srv.get("/uploads/d.txt"), 404);
    assert_status(&delete(&srv, "/uploads/d.txt"), 404);
    assert_status(&delete(&srv, "/uploads/never-was.txt"), 404);

    // A folder: 403, with or without the slash, and it stays.
    fs::create_dir(store(&srv).join("sub")).unwrap();
    fs::write(store(&srv).join("sub/inner.txt"), "x").unwrap();
    assert_status(&delete(&srv, "/uploads/sub"), 403);
    assert_status(&delete(&srv, "/uploads/sub/"), 403);
    assert!(store(&srv).join("sub/inner.txt").exists());
    // The store itself.
    assert_status(&delete(&srv, "/uploads/"), 403);
    assert!(store(&srv).is_dir());

    // A route that does not allow DELETE: 405 with Allow, file kept.
    fs::write(store(&srv).join("kept.txt"), "kept").unwrap();
    let r = delete(&srv, "/ro/kept.txt");
    assert_status(&r, 405);
    assert!(r.header("allow").is_some(), "{}", r.describe());
    assert!(store(&srv).join("kept.txt").exists());
}

#[test]
fn delete_keeps_the_connection_usable() {
    let srv = store_site();
    assert_status(&put(&srv, "/uploads/k.txt", b"k"), 201);
    let mut c = srv.connect(0);
    c.send(
        b"DELETE /uploads/k.txt HTTP/1.1\r\nHost: localhost\r\n\r\n\
          DELETE /uploads/k.txt HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_status(&c.read_response(), 204);
    assert_status(&c.read_response(), 404);
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"index\n");
}

#[test]
fn names_never_leave_the_store() {
    let srv = store_site();
    let root = srv.dir.path().to_path_buf();
    let st = store(&srv);
    let skip = [st.clone(), srv.dir.join("server.stderr")];
    let before = tree_snapshot(&root, &skip);
    let tmp = std::env::temp_dir();
    let token = format!("esc{}x{}", std::process::id(), srv.port(0));
    let long = "L".repeat(300);

    // Multipart file names.
    let names = [
        format!("../../{token}-1.txt"),
        format!("../{token}-2.txt"),
        format!("..\\..\\{token}-3.txt"),
        format!("sub/dir/{token}-4.txt"),
        format!("{}/{token}-5.txt", tmp.display()),
        format!("/{token}-6.txt"),
        "..".to_string(),
        ".".to_string(),
        format!("{long}.txt"),
    ];
    for name in &names {
        let body = multipart(BOUNDARY, &[Part::file("f", name, b"escaped?")]);
        let r = post_multipart(&srv, "/uploads/", &body);
        assert!(
            r.status < 500,
            "file name {name:?}: a client's bad name is not a server error:\n{}",
            r.describe()
        );
        if r.status == 201 {
            let loc = r.must_header("location");
            assert!(
                loc.contains("/uploads/"),
                "file name {name:?} stored at {loc:?}"
            );
        }
    }
    // Raw PUT names.
    let targets = [
        format!("/uploads/..%2F{token}-7.txt"),
        format!("/uploads/%2e%2e/{token}-8.txt"),
        format!("/uploads/%2e%2e%2f%2e%2e%2f{token}-9.txt"),
        format!("/uploads/../{token}-10.txt"),
        format!("/uploads/..%5c{token}-11.txt"),
        format!("/uploads/{long}"),
        format!("/uploads/{token}%00.txt"),
    ];
    for t in &targets {
        let r = put(&srv, t, b"escaped?");
        assert!(
            r.status < 500,
            "PUT {t}: a client's bad name is not a server error:\n{}",
            r.describe()
        );
    }

    // Nothing appeared or changed outside the store...
    let after = tree_snapshot(&root, &skip);
    assert_eq!(before, after, "files outside the store changed");
    for dir in [tmp.as_path(), Path::new("/")] {
        let leaked: Vec<String> = dir_names(dir)
            .into_iter()
            .filter(|n| n.contains(&token))
            .collect();
        assert!(
            leaked.is_empty(),
            "written outside the store: {leaked:?} in {dir:?}"
        );
    }
    // ...and whatever was stored is inside it, with a legal name.
    for (path, _) in tree_snapshot(&st, &[]) {
        let real = fs::canonicalize(st.join(&path)).unwrap();
        assert!(real.starts_with(&st), "{path:?} resolves to {real:?}");
    }
    // The server is fine.
    assert_status(&srv.get("/index.html"), 200);
}

#[test]
fn interrupted_raw_upload_leaves_nothing() {
    let srv = store_site();
    let mut c = srv.connect(0);
    c.send(b"PUT /uploads/big.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10485760\r\n\r\n");
    let chunk = XorShift::new(9).bytes(256 * 1024);
    for _ in 0..12 {
        c.send(&chunk); // 3 MiB of the 10 MiB
    }
    // The upload is under way in the store (its temporary file is there)
    // before the client goes: otherwise an empty store below would prove
    // nothing.
    let st = store(&srv);
    assert!(
        wait_until(Duration::from_secs(10), || !dir_names(&st).is_empty()),
        "3 MiB of the upload sent, and nothing in the store"
    );
    drop(c);
    assert!(
        wait_until(Duration::from_secs(2), || dir_names(&st).is_empty()),
        "left in the store after the client went away: {:?}",
        dir_names(&st)
    );
    assert_status(&srv.get("/uploads/big.bin"), 404);
    assert_status(&srv.get("/index.html"), 200);
}

#[test]
fn interrupted_multipart_upload_leaves_nothing() {
    // The first file is complete, the second is cut off: an interrupted
    // upload leaves nothing behind, not even its finished parts.
    let srv = store_site();
    let big = XorShift::new(3).bytes(2 * 1024 * 1024);
    let body = multipart(
        BOUNDARY,
        &[
            Part::file("f", "whole.txt", b"complete first part"),
            Part::file("f", "cut.bin", &big),
        ],
    );
    let mut c = srv.connect(0);
    c.send(
        format!(
            "POST /uploads/ HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(&body[..body.len() / 2]);
    // The first file (complete) and the second (begun) are in the store
    // before the client goes: otherwise an empty store below would prove
    // nothing.
    let st = store(&srv);
    assert!(
        wait_until(Duration::from_secs(10), || dir_names(&st).len() >= 2),
        "half the multipart body sent, and the store holds only {:?}",
        dir_names(&st)
    );
    drop(c);
    assert!(
        wait_until(Duration::from_secs(2), || dir_names(&st).is_empty()),
        "left in the store after the client went away: {:?}",
        dir_names(&st)
    );
}

#[test]
fn too_big_upload_leaves_nothing() {
    let srv = store_site();
    let st = store(&srv);
    // Known length over the route's 1k: 413 from the head.
    let r = put(&srv, "/small/big.txt", &[b'x'; 1025]);
    assert_status(&r, 413);
    // Chunked, going over while it arrives.
    let mut c = srv.connect(0);
    let mut bytes =
        b"PUT /small/big2.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    bytes.extend(chunked(&[b'y'; 3000], &[600]));
    let r = c.send_while_reading(bytes);
    assert_status(&r, 413);
    // Multipart with a file over the limit.
    let body = multipart(BOUNDARY, &[Part::file("f", "big3.txt", &[b'z'; 2000])]);
    assert_status(&post_multipart(&srv, "/small/", &body), 413);
    assert!(
        wait_until(Duration::from_secs(2), || dir_names(&st).is_empty()),
        "left in the store: {:?}",
        dir_names(&st)
    );
    // The limit counts the decoded body: exactly 1k in chunks is fine.
    let mut c = srv.connect(0);
    let mut bytes =
        b"PUT /small/ok.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    bytes.extend(chunked(&[b'k'; 1024], &[100, 7, 300]));
    assert_status(&c.send_while_reading(bytes), 201);
    assert_eq!(fs::read(st.join("ok.txt")).unwrap(), vec![b'k'; 1024]);
}

#[test]
fn fifty_mib_raw_upload_arrives_intact() {
    let srv = store_site();
    let data = XorShift::new(0x5eed).bytes(50 * 1024 * 1024);
    let sum = checksum(&data);
    let start = Instant::now();
    let r = put(&srv, "/uploads/fifty.bin", &data);
    assert_status(&r, 201);
    let stored = fs::read(store(&srv).join("fifty.bin")).unwrap();
    assert_eq!(stored.len(), data.len());
    assert_eq!(checksum(&stored), sum, "stored bytes differ");
    let g = srv.get("/uploads/fifty.bin");
    assert_status(&g, 200);
    assert_eq!(checksum(&g.body), sum, "GET returned other bytes");
    eprintln!(
        "50 MiB upload round trip: checksum {sum:016x}, {:?}",
        start.elapsed()
    );
}

/// Raw upload bodies go socket → pipe → file through one pipe the whole
/// loop shares: eight uploads whose pieces arrive interleaved must each
/// land whole, with no byte of another in it.
#[test]
fn interleaved_raw_uploads_each_land_whole() {
    let srv = store_site();
    let bodies: Vec<Vec<u8>> = (0..8u64)
        .map(|i| XorShift::new(0x1000 + i).bytes(256 * 1024 + i as usize * 776))
        .collect();
    let mut conns: Vec<Conn> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut c = srv.connect(0);
            c.send(
                format!(
                    "PUT /uploads/mixed-{i}.bin HTTP/1.1\r\nHost: localhost\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                )
                .as_bytes(),
            );
            c
        })
        .collect();
    let piece = 10_000;
    let mut at = 0;
    while bodies.iter().any(|b| at < b.len()) {
        for (c, b) in conns.iter_mut().zip(&bodies) {
            if at < b.len() {
                c.send(&b[at..(at + piece).min(b.len())]);
            }
        }
        at += piece;
        thread::sleep(Duration::from_millis(1));
    }
    for (i, (c, b)) in conns.iter_mut().zip(&bodies).enumerate() {
        assert_status(&c.read_response(), 201);
        let stored = fs::read(store(&srv).join(format!("mixed-{i}.bin"))).unwrap();
        assert_eq!(stored.len(), b.len(), "upload {i}");
        assert!(stored == *b, "upload {i} holds other bytes");
    }
}

#[test]
fn five_mib_chunked_upload_arrives_intact() {
    let srv = store_site();
    let data = XorShift::new(0xc4u64).bytes(5 * 1024 * 1024);
    let mut c = srv.connect(0);
    let mut bytes = b"PUT /uploads/five-chunked.bin HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    bytes.extend(chunked(&data, &[1, 65_536, 4095, 300_000, 17, 8192]));
    let r = c.send_while_reading(bytes);
    assert_status(&r, 201);
    let stored = fs::read(store(&srv).join("five-chunked.bin")).unwrap();
    assert_eq!(stored.len(), data.len());
    assert_eq!(checksum(&stored), checksum(&data));
}

#[test]
fn uploaded_scripts_are_served_never_run() {
    // The store's route also has `cgi .py` and `cgi .sh` (inherited from
    // the server): files in an upload_store are never run as CGI.
    let srv = store_site_with("", &format!("cgi .py {}; cgi .sh /bin/sh;", python3()));
    let marker = srv.dir.join("site/RAN");
    let py = format!(
        "import sys\nopen({:?}, 'w').write('ran')\nsys.stdout.write('Content-Type: text/plain\\r\\n\\r\\nexecuted\\n')\n",
        marker.to_str().unwrap()
    );
    let sh = format!(
        "#!/bin/sh\necho ran > {:?}\nprintf 'Content-Type: text/plain\\r\\n\\r\\nexecuted\\n'\n",
        marker.to_str().unwrap()
    );
    assert_status(&put(&srv, "/uploads/evil.py", py.as_bytes()), 201);
    let body = multipart(BOUNDARY, &[Part::file("f", "evil2.py", py.as_bytes())]);
    assert_status(&post_multipart(&srv, "/uploads/", &body), 201);
    assert_status(&put(&srv, "/uploads/evil.sh", sh.as_bytes()), 201);
    // A raw POST to an existing .py name replaces it; it does not run it.
    let r = request(
        &srv,
        &format!(
            "POST /uploads/evil.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            py.len()
        ),
        py.as_bytes(),
    );
    assert_status(&r, 204);
    for name in ["evil.py", "evil2.py"] {
        let g = srv.get(&format!("/uploads/{name}"));
        assert_status(&g, 200);
        assert_eq!(g.body_str(), py, "{name} was not served as a file");
    }
    let g = srv.get("/uploads/evil.sh");
    assert_status(&g, 200);
    assert_eq!(g.body_str(), sh);
    thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists(), "an uploaded script was executed");
}

/// A tmpfs mounted on a folder, lazily unmounted on drop (the server may
/// still hold a descriptor beneath it).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        // The test folder's removal stopped at the mount point (the server,
        // and with it the TempDir, is dropped first): finish it.
        let keep = thread::panicking() && std::env::var_os("LOCALSERVER_KEEP_TEST_FILES").is_some();
        if let Some(parent) = self.0.parent().filter(|_| !keep) {
            let _ = fs::remove_dir_all(parent);
        }
    }
}

#[test]
fn full_disk_is_507_and_leaves_nothing() {
    let is_root = fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let dir = TempDir::new("full-disk");
    let small = dir.mkdir("small");
    if !is_root {
        skip(
            "full_disk_is_507_and_leaves_nothing",
            "not root, cannot mount a tmpfs",
        );
        return;
    }
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            skip(
                "full_disk_is_507_and_leaves_nothing",
                &format!(
                    "mount -t tmpfs failed here ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            return;
        }
        Err(e) => {
            skip(
                "full_disk_is_507_and_leaves_nothing",
                &format!("cannot run mount: {e}"),
            );
            return;
        }
    }
    let _mount = Mount(small.clone());
    fs::create_dir(small.join("store")).unwrap();
    dir.write("www/index.html", "index\n");
    let srv = Server::start(
        dir,
        "server {
    listen 127.0.0.1:$P0;
    root www;
    client_max_body_size 64m;
    location /full/ { upload_store small/store; allowed_methods GET PUT POST DELETE; }
}",
    );
    let st = srv.dir.join("small/store");
    let data = XorShift::new(77).bytes(2 * 1024 * 1024);
    let r = put(&srv, "/full/two-mib.bin", &data);
    assert_status(&r, 507);
    // Multipart too.
    let body = multipart(BOUNDARY, &[Part::file("f", "mp.bin", &data)]);
    assert_status(&post_multipart(&srv, "/full/", &body), 507);
    assert!(
        wait_until(Duration::from_secs(2), || dir_names(&st).is_empty()),
        "left on the full disk: {:?}",
        dir_names(&st)
    );
    // Space is back: a small upload works, and holds its own bytes (not
    // what the failed one left in the loop's splice pipe).
    assert_status(&put(&srv, "/full/small.txt", b"fits"), 201);
    assert_eq!(fs::read(st.join("small.txt")).unwrap(), b"fits");
    assert_status(&srv.get("/index.html"), 200);
    drop(srv);
}
