//! Nothing outside a root, ever: traversal with dots and escapes, NUL,
//! symlinks leading out, and special files (HTTP.md "Paths").

use std::os::unix::fs::symlink;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

/// A marker that only exists outside the served roots.
const SECRET: &str = "TOP-SECRET-do-not-serve";

/// Layout: `DIR/secret.txt` and `DIR/outside/secret.txt` (outside), `DIR/www`
/// (the root), `DIR/www/sub/ok.txt`, and `DIR/manual` (an alias target).
fn setup(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("secret.txt", format!("{SECRET}\n"));
    dir.write("outside/secret.txt", format!("{SECRET}\n"));
    dir.write("www/index.html", "index\n");
    dir.write("www/sub/ok.txt", "ok\n");
    dir.write("manual/page.txt", "manual\n");
    dir
}

const CONFIG: &str = r#"
server {
    listen 127.0.0.1:$P0;
    root www;
    location /docs/ { alias manual/; }
}
"#;

/// The response to `path` must be a refusal and must not leak the secret.
#[track_caller]
fn assert_refused(srv: &Server, path: &str) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let mut c = srv.connect(0);
    c.send(req.as_bytes());
    let r = c.read_response();
    assert!(
        matches!(r.status, 400 | 403 | 404),
        "GET {path}: expected 400, 403 or 404, got:\n{}",
        r.describe()
    );
    assert!(
        !contains(&r.body, SECRET.as_bytes()) && !contains(&r.body, b"root:x:0:0"),
        "GET {path} leaked a file outside the root:\n{}",
        r.describe()
    );
}

#[test]
fn dot_dot_cannot_climb_out() {
    let srv = Server::start(setup("dotdot"), CONFIG);
    for path in [
        "/../secret.txt",
        "/../../../../../../../../etc/passwd",
        "/../etc/passwd",
        "/sub/../../secret.txt",
        "/sub/../../outside/secret.txt",
        "/./../secret.txt",
        "/..",
        "/../",
        "/docs/../../secret.txt",
        "/docs/../secret.txt",
    ] {
        assert_refused(&srv, path);
    }
}

#[test]
fn percent_encoded_dots_cannot_climb_out() {
    let srv = Server::start(setup("pct-dots"), CONFIG);
    for path in [
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/docs/%2e%2e/%2e%2e/secret.txt",
        // Decoded once only: %252e is a literal "%2e" name, not "..".
        "/%252e%252e/secret.txt",
    ] {
        assert_refused(&srv, path);
    }
}

#[test]
fn encoded_slash_is_not_a_separator() {
    let srv = Server::start(setup("pct-slash"), CONFIG);
    for path in [
        "/a/..%2f..%2fsecret.txt",
        "/a/..%2f..%2f",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/sub%2fok.txt",
        "/sub%2F..%2F..%2Fsecret.txt",
        "/..%5csecret.txt",
    ] {
        assert_refused(&srv, path);
    }
}

#[test]
fn nul_is_not_a_terminator() {
    let srv = Server::start(setup("nul"), CONFIG);
    for path in [
        "/sub/ok.txt%00",
        "/sub/ok.txt%00.html",
        "/%00",
        "/index.html%00/x",
        "/%00../secret.txt",
    ] {
        assert_refused(&srv, path);
    }
}

#[test]
fn absolute_form_cannot_climb_out() {
    let srv = Server::start(setup("absform"), CONFIG);
    let r = srv.raw("GET http://a/../secret.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(matches!(r.status, 400 | 403 | 404), "{}", r.describe());
    assert!(!contains(&r.body, SECRET.as_bytes()));
}

#[test]
fn symlinks_leading_outside_are_not_followed() {
    let dir = setup("symlinks");
    // Relative and absolute links to a file outside, and to a folder outside.
    symlink("../secret.txt", dir.join("www/rel-link.txt")).unwrap();
    symlink(dir.join("secret.txt"), dir.join("www/abs-link.txt")).unwrap();
    symlink(dir.join("outside"), dir.join("www/outdir")).unwrap();
    symlink("../../outside", dir.join("www/sub/updir")).unwrap();
    symlink("/etc/passwd", dir.join("www/passwd")).unwrap();
    symlink("/etc", dir.join("www/etc")).unwrap();
    // A listing of the root must not open a way either.
    let srv = Server::start(
        dir,
        r#"
server {
    listen 127.0.0.1:$P0;
    root www;
    autoindex on;
}
"#,
    );
    for path in [
        "/rel-link.txt",
        "/abs-link.txt",
        "/outdir/secret.txt",
        "/outdir/",
        "/sub/updir/secret.txt",
        "/passwd",
        "/etc/passwd",
        "/etc/",
    ] {
        assert_refused(&srv, path);
    }
    // The server is still fine.
    let r = srv.get("/sub/ok.txt");
    assert_status(&r, 200);
    assert_eq!(r.body, b"ok\n");
}

#[test]
fn symlink_inside_the_root_may_be_served() {
    // Not required by the spec, but a link that stays inside the root must
    // never leak anything else: either the target's bytes or a refusal.
    let dir = setup("symlink-inside");
    symlink("sub/ok.txt", dir.join("www/inside-link.txt")).unwrap();
    let srv = Server::start(dir, CONFIG);
    let r = srv.get("/inside-link.txt");
    assert!(
        (r.status == 200 && r.body == b"ok\n") || matches!(r.status, 403 | 404),
        "{}",
        r.describe()
    );
}

#[test]
fn fifo_is_refused_quickly_and_the_server_goes_on() {
    let dir = setup("fifo");
    let st = Command::new("mkfifo")
        .arg(dir.join("www/pipe"))
        .status()
        .expect("mkfifo");
    assert!(st.success());
    let st = Command::new("mkfifo")
        .arg(dir.join("www/sub/pipe.html"))
        .status()
        .expect("mkfifo");
    assert!(st.success());
    let srv = Server::start(dir, CONFIG);

    for path in ["/pipe", "/sub/pipe.html"] {
        let start = Instant::now();
        let r = srv.get(path);
        assert_status(&r, 403);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "a FIFO took {:?} to refuse",
            start.elapsed()
        );
    }
    // The loop never stalled: others are still served, also while a FIFO
    // request is in flight on another connection.
    let mut c = srv.connect(0);
    c.send(b"GET /pipe HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = srv.get("/sub/ok.txt");
    assert_status(&r, 200);
    assert_eq!(r.body, b"ok\n");
    assert_status(&c.read_response(), 403);
}

#[test]
fn device_file_is_refused() {
    let dir = setup("device");
    // /dev/zero would never end; through a symlink it is outside the root
    // too, so either rule refuses it.
    symlink("/dev/zero", dir.join("www/zero")).unwrap();
    let srv = Server::start(dir, CONFIG);
    let start = Instant::now();
    let r = srv.get("/zero");
    assert!(matches!(r.status, 403 | 404), "{}", r.describe());
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn autoindex_does_not_list_outside() {
    let dir = setup("autoindex-out");
    let srv = Server::start(
        dir,
        r#"
server {
    listen 127.0.0.1:$P0;
    root www;
    autoindex on;
}
"#,
    );
    for path in ["/../", "/%2e%2e/", "/sub/../../"] {
        let r = srv.get(path);
        assert!(
            !r.body_str().contains("secret.txt") && !r.body_str().contains("outside"),
            "GET {path} listed a folder outside the root:\n{}",
            r.describe()
        );
    }
}
