//! Request bodies (HTTP.md "Framing" rules 1-7, 19, 20; CONFIG.md "Request
//! bodies and uploads"): `Content-Length` and chunked bodies reach an
//! upload store and a CGI's stdin, `client_max_body_size` is enforced on
//! the decoded size (413 from the head when the length is known),
//! malformed framing is 400 and close, `Expect: 100-continue`,
//! `client_body_timeout`, and pipelining after a body.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::*;

/// Echoes its stdin after a first line `cl=CONTENT_LENGTH len=N`.
const ECHO_PY: &str = r#"import os, sys
body = sys.stdin.buffer.read()
head = ("cl=%s len=%d\n" % (os.environ.get("CONTENT_LENGTH", "-"), len(body))).encode()
out = head + body
sys.stdout.buffer.write(b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % len(out) + out)
"#;

/// Leaves a file named RAN beside itself, then answers.
const MARK_PY: &str = r#"import sys
open("RAN", "w").write("ran")
sys.stdin.buffer.read()
sys.stdout.write("Content-Type: text/plain\r\n\r\nran\n")
"#;

/// Reads its stdin, then waits (for a body that never ends).
const STDIN_WAIT_PY: &str = r#"import sys, time
sys.stdin.buffer.read()
time.sleep(20)
sys.stdout.write("Content-Type: text/plain\r\n\r\nlate\n")
"#;

/// A body limit of 100 bytes everywhere; `/up/` stores uploads in
/// `site/store`, `/cgi-bin/` runs Python scripts.
fn body_site_with(extra_top: &str) -> Server {
    let dir = TempDir::new("bodies");
    dir.write("site/www/index.html", "index\n");
    dir.write_script("site/www/cgi-bin/echo.py", ECHO_PY);
    dir.write_script("site/www/cgi-bin/mark.py", MARK_PY);
    dir.write_script("site/www/cgi-bin/stdin_wait.py", STDIN_WAIT_PY);
    dir.mkdir("site/store");
    let config = format!(
        "{extra_top}
server {{
    listen 127.0.0.1:$P0;
    server_name localhost;
    root site/www;
    client_max_body_size 100;
    location /up/ {{
        upload_store site/store;
        allowed_methods GET HEAD POST PUT DELETE;
    }}
    location /cgi-bin/ {{
        cgi .py {};
        allowed_methods GET HEAD POST;
    }}
}}
",
        python3()
    );
    Server::start(dir, &config)
}

fn body_site() -> Server {
    body_site_with("")
}

fn store(srv: &Server) -> PathBuf {
    srv.dir.join("site/store")
}

fn marker(srv: &Server) -> PathBuf {
    srv.dir.join("site/www/cgi-bin/RAN")
}

fn bytes_of(head: &str, body: &[u8]) -> Vec<u8> {
    let mut v = head.as_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// The echo script's answer: `cl=.. len=..` line, then the bytes.
#[track_caller]
fn assert_echo(r: &Response, cl: usize, body: &[u8]) {
    assert_status(r, 200);
    let want_head = format!("cl={cl} len={}\n", body.len());
    assert!(
        r.body.starts_with(want_head.as_bytes()),
        "expected {want_head:?} first:\n{}",
        r.describe()
    );
    assert!(
        r.body[want_head.len()..] == *body,
        "the CGI got other bytes"
    );
}

/// The next answer is `status` and the connection then closes.
#[track_caller]
fn assert_status_then_close(c: &mut Conn, bytes: Vec<u8>, status: u16) {
    let r = c
        .send_while_trying_to_read(bytes)
        .unwrap_or_else(|| panic!("closed without answering {status}"));
    assert_status(&r, status);
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn content_length_body_at_the_limit_is_stored_and_piped() {
    let srv = body_site();
    let body: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
    let mut c = srv.connect(0);
    let r = c.send_while_reading(bytes_of(
        "PUT /up/cl.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n",
        &body,
    ));
    assert_status(&r, 201);
    assert_eq!(fs::read(store(&srv).join("cl.bin")).unwrap(), body);

    let r = c.send_while_reading(bytes_of(
        "POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n",
        &body,
    ));
    assert_echo(&r, 100, &body);
    assert_date_and_server(&r);
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    // Sizes with leading zeros and upper-case hex, extensions (ignored), a
    // trailer section whose Content-Length changes nothing (rule 6), then a
    // pipelined request that must be answered normally.
    let srv = body_site();
    let chunked_body = b"000A;name=value;quoted=\"a;b\"\r\n0123456789\r\n\
                         1b;ext\r\nabcdefghijklmnopqrstuvwxyz!\r\n\
                         1\r\n\n\r\n\
                         0;last=yes\r\nX-Trailer: one\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n";
    let decoded = b"0123456789abcdefghijklmnopqrstuvwxyz!\n";
    let mut c = srv.connect(0);
    let mut bytes = bytes_of(
        "PUT /up/chunked.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunked_body,
    );
    bytes.extend_from_slice(b"GET /up/chunked.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    bytes.extend_from_slice(
        b"POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: Chunked\r\n\r\n",
    );
    bytes.extend_from_slice(chunked_body);
    bytes.extend_from_slice(
        b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    c.send(&bytes);
    let r = c.read_response();
    assert_status(&r, 201);
    assert_eq!(fs::read(store(&srv).join("chunked.txt")).unwrap(), decoded);
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, decoded);
    // CONTENT_LENGTH is the decoded size (CONFIG.md "CGI").
    assert_echo(&c.read_response(), decoded.len(), decoded);
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"index\n");
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn chunked_body_at_the_limit_is_accepted() {
    let srv = body_site();
    let body = vec![b'c'; 100];
    let mut c = srv.connect(0);
    let mut bytes =
        b"PUT /up/exact.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    bytes.extend(chunked(&body, &[1, 49, 50]));
    assert_status(&c.send_while_reading(bytes), 201);
    assert_eq!(fs::read(store(&srv).join("exact.txt")).unwrap(), body);
    let mut bytes =
        b"POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    bytes.extend(chunked(&body, &[99, 1]));
    assert_echo(&c.send_while_reading(bytes), 100, &body);
}

#[test]
fn content_length_over_the_limit_is_413_from_the_head() {
    // 413 is sent as soon as the head is read, without waiting for a body
    // that is never sent; then the connection closes (rule 19).
    let srv = body_site();
    for target in ["/up/big.txt", "/cgi-bin/mark.py"] {
        let mut c = srv.connect(0);
        c.send(
            format!(
                "{} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 101\r\n\r\n",
                if target.starts_with("/up") {
                    "PUT"
                } else {
                    "POST"
                }
            )
            .as_bytes(),
        );
        c.stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let r = c.read_response();
        assert_status(&r, 413);
        assert_date_and_server(&r);
        c.expect_closed(Duration::from_secs(3));
    }
    // With a body that looks like requests: never parsed as one.
    let mut c = srv.connect(0);
    let smuggled = "GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(4);
    let bytes = bytes_of(
        &format!(
            "PUT /up/big2.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            smuggled.len()
        ),
        smuggled.as_bytes(),
    );
    assert_status_then_close(&mut c, bytes, 413);
    assert!(dir_names(&store(&srv)).is_empty());
    assert!(!marker(&srv).exists(), "the CGI ran for a refused body");
}

#[test]
fn chunked_body_over_the_limit_is_413() {
    let srv = body_site();
    let mut c = srv.connect(0);
    let mut bytes =
        b"PUT /up/over.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    bytes.extend(chunked(&[b'o'; 101], &[50, 51]));
    assert_status_then_close(&mut c, bytes, 413);
    // Far over, and still arriving: answered without reading it all.
    let mut c = srv.connect(0);
    let mut bytes =
        b"PUT /up/over2.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    bytes.extend(chunked(&vec![b'p'; 4 * 1024 * 1024], &[8192]));
    assert_status_then_close(&mut c, bytes, 413);
    // To a CGI: decoded before the script starts, so it never runs.
    let mut c = srv.connect(0);
    let mut bytes =
        b"POST /cgi-bin/mark.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    bytes.extend(chunked(&[b'q'; 101], &[100, 1]));
    assert_status_then_close(&mut c, bytes, 413);
    assert!(
        wait_until(Duration::from_secs(2), || dir_names(&store(&srv))
            .is_empty()),
        "left in the store: {:?}",
        dir_names(&store(&srv))
    );
    assert!(!marker(&srv).exists(), "the CGI ran for a refused body");
}

#[test]
fn malformed_chunked_bodies_are_400_and_close() {
    // HTTP.md rule 5.
    let srv = body_site();
    let cases: &[(&str, &[u8])] = &[
        ("0x prefix", b"0x1\r\nA\r\n0\r\n\r\n"),
        ("plus sign", b"+1\r\nA\r\n0\r\n\r\n"),
        ("leading space", b" 1\r\nA\r\n0\r\n\r\n"),
        ("empty size", b"\r\nA\r\n0\r\n\r\n"),
        ("not hex", b"zz\r\nA\r\n0\r\n\r\n"),
        ("overflow", b"10000000000000000\r\nA\r\n0\r\n\r\n"),
        ("data not followed by CRLF", b"5\r\nhelloXX\r\n0\r\n\r\n"),
        ("data longer than its size", b"3\r\nhello\r\n0\r\n\r\n"),
    ];
    for (what, body) in cases {
        let mut c = srv.connect(0);
        let bytes = bytes_of(
            "PUT /up/bad.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
            body,
        );
        let r = c
            .send_while_trying_to_read(bytes)
            .unwrap_or_else(|| panic!("{what}: closed without an answer"));
        assert!(
            r.status == 400,
            "{what}: expected 400, got:\n{}",
            r.describe()
        );
        assert_status(&r, 400);
        c.expect_closed(Duration::from_secs(3));
    }
    // The same on the way to a CGI.
    let mut c = srv.connect(0);
    let bytes = bytes_of(
        "POST /cgi-bin/mark.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
    );
    assert_status_then_close(&mut c, bytes, 400);
    assert!(
        wait_until(Duration::from_secs(2), || dir_names(&store(&srv))
            .is_empty()),
        "left in the store: {:?}",
        dir_names(&store(&srv))
    );
    assert!(!marker(&srv).exists());
}

#[test]
fn transfer_encoding_with_content_length_is_400() {
    // HTTP.md rule 1, on routes that do read bodies.
    let srv = body_site();
    for (head, name) in [
        (
            "PUT /up/te-cl.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "PUT",
        ),
        (
            "POST /cgi-bin/mark.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n",
            "POST",
        ),
    ] {
        let mut c = srv.connect(0);
        let r = c
            .send_while_trying_to_read(bytes_of(head, b"5\r\nhello\r\n0\r\n\r\n"))
            .unwrap_or_else(|| panic!("{name}: closed without an answer"));
        assert_status(&r, 400);
        c.expect_closed(Duration::from_secs(3));
    }
    assert!(dir_names(&store(&srv)).is_empty());
    assert!(!marker(&srv).exists());
}

#[test]
fn post_without_length_has_an_empty_body() {
    // HTTP.md rule 7: no Content-Length and no Transfer-Encoding is an
    // empty body; the next bytes are the next request.
    let srv = body_site();
    let mut c = srv.connect(0);
    c.send(
        b"POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    let r = c.read_response();
    assert_status(&r, 200);
    assert!(
        r.body.ends_with(b" len=0\n"),
        "the CGI saw a body:\n{}",
        r.describe()
    );
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"index\n");
}

/// Read what arrives within `d` (for "nothing yet" checks).
fn read_for(c: &mut Conn, d: Duration) -> Vec<u8> {
    c.stream.set_read_timeout(Some(d)).unwrap();
    let _ = c.fill();
    c.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.buffered().to_vec()
}

#[test]
fn expect_100_continue_then_the_answer() {
    // HTTP.md rule 20.
    let srv = body_site();
    for (head, body) in [
        (
            "PUT /up/expect.txt HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            &b"hello"[..],
        ),
        (
            "POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
            &b"abc"[..],
        ),
    ] {
        let mut c = srv.connect(0);
        c.send(head.as_bytes());
        c.stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let interim = c.read_response();
        assert_eq!(
            interim.status_line,
            "HTTP/1.1 100 Continue",
            "{}",
            interim.describe()
        );
        // Nothing more until the body is sent.
        assert!(
            read_for(&mut c, Duration::from_millis(300)).is_empty(),
            "answered before the body was sent"
        );
        c.send(body);
        let r = c.read_response();
        if head.starts_with("PUT") {
            assert_status(&r, 201);
            assert_eq!(fs::read(store(&srv).join("expect.txt")).unwrap(), b"hello");
        } else {
            assert_echo(&r, 3, b"abc");
        }
    }
}

#[test]
fn expect_100_continue_with_a_known_final_status_gets_it_at_once() {
    // 413, 405 and 404 are known from the head: sent instead of 100.
    let srv = body_site();
    for (head, status) in [
        (
            "PUT /up/x.txt HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n",
            413,
        ),
        (
            "POST /index.html HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            405,
        ),
        (
            "POST /cgi-bin/missing.py HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            404,
        ),
    ] {
        let mut c = srv.connect(0);
        c.send(head.as_bytes());
        c.stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let r = c.read_response();
        assert_status(&r, status);
        // Answered before the body was read: the connection closes (rule 19),
        // or (for an answer that is not an error of framing) it may stay open
        // to read and discard the body; either way no 100 came first.
        if status == 413 {
            c.expect_closed(Duration::from_secs(3));
        }
    }
    assert!(dir_names(&store(&srv)).is_empty());
}

#[test]
fn expect_is_ignored_for_http10() {
    let srv = body_site();
    let mut c = srv.connect(0);
    c.send(b"PUT /up/old.txt HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let early = read_for(&mut c, Duration::from_millis(500));
    assert!(
        early.is_empty(),
        "an HTTP/1.0 client got {:?} before sending its body",
        String::from_utf8_lossy(&early)
    );
    c.send(b"hello");
    let r = c.read_response();
    assert_code(&r, 201);
    assert_eq!(fs::read(store(&srv).join("old.txt")).unwrap(), b"hello");
}

#[test]
fn stalled_upload_body_gets_408_or_close() {
    let srv = body_site_with("client_body_timeout 1s;");
    let mut c = srv.connect(0);
    c.send(
        b"PUT /up/stalled.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789",
    );
    let start = Instant::now();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    if let Some(r) = c.try_read_response() {
        assert_status(&r, 408);
        c.expect_closed(Duration::from_secs(3));
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}, expected about 1 s"
    );
    assert!(
        wait_until(Duration::from_secs(2), || dir_names(&store(&srv))
            .is_empty()),
        "left in the store: {:?}",
        dir_names(&store(&srv))
    );
}

#[test]
fn stalled_cgi_body_gets_408_or_close_and_the_script_is_killed() {
    let srv = body_site_with("client_body_timeout 1s;");
    let script = srv.dir.join("site/www/cgi-bin/stdin_wait.py");
    let script = script.to_str().unwrap().to_string();
    let _reaper = Reaper(script.clone());
    let mut c = srv.connect(0);
    c.send(b"POST /cgi-bin/stdin_wait.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789");
    let start = Instant::now();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    if let Some(r) = c.try_read_response() {
        assert_status(&r, 408);
        c.expect_closed(Duration::from_secs(3));
    }
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "closed after {:?}, expected about 1 s",
        start.elapsed()
    );
    assert_no_process(&script, Duration::from_secs(3));
    assert_no_children(&srv, Duration::from_secs(2));
}

#[test]
fn requests_pipelined_after_bodies_are_answered() {
    let srv = body_site();
    let mut c = srv.connect(0);
    let mut bytes = Vec::new();
    bytes.extend_from_slice(
        b"PUT /up/pipe.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\npipe body\r\n",
    );
    bytes.extend_from_slice(b"GET /up/pipe.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    bytes.extend_from_slice(
        b"POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nGET ",
    );
    bytes.extend_from_slice(b"DELETE /up/pipe.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    bytes.extend_from_slice(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
    c.send(&bytes);
    assert_status(&c.read_response(), 201);
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"pipe body\r\n");
    assert_echo(&c.read_response(), 4, b"GET ");
    assert_status(&c.read_response(), 204);
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"index\n");
    c.expect_open_and_quiet(Duration::from_millis(300));
}
