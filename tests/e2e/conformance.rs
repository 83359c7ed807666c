//! HTTP.md, rule by rule: one test per numbered rule (`rule_NN_...`), each
//! sending every variant the rule lists over a raw socket and asserting the
//! status this project chose among those the rule allows, and whether the
//! connection is closed (`expect_closed`) or stays open (a following request
//! on it is answered). Other files test the same behaviour in more depth;
//! this one is the one-stop proof that each rule holds.
//!
//! Invariants: every test starts its own server from `site()` (short
//! timeouts, so the whole file runs in seconds); nothing sleeps to wait for
//! the server except where a rule is about time (21).

use std::os::unix::fs::symlink;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

const CLOSE_WITHIN: Duration = Duration::from_secs(3);

const INDEX: &[u8] = b"index\n";
const TEN: &[u8] = b"0123456789";
/// In a file outside the root: must never be sent.
const OUTSIDE_MARKER: &str = "OUTSIDE-ROOT-MARKER";

/// Echoes its stdin once it has all of it (no Content-Length: chunked to
/// 1.1, close-delimited to 1.0). The `x` keeps trailing newlines from being
/// stripped by `$(...)`.
const CAT_SH: &str =
    "b=$(cat; echo x)\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s' \"${b%x}\"\n";
/// A body of unknown length, written in two pieces.
const NOLEN_SH: &str =
    "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nprintf 'part one\\n'\nprintf 'part two\\n'\n";

fn site() -> Server {
    let dir = TempDir::new("conformance");
    dir.write("www/index.html", INDEX);
    dir.write("www/ten.txt", TEN);
    dir.write("www/dir/index.html", "dir index\n");
    dir.write("www/cgi-bin/cat.sh", CAT_SH);
    dir.write("www/cgi-bin/nolen.sh", NOLEN_SH);
    dir.write("vh/index.html", "virtual host\n");
    dir.write("outside.txt", OUTSIDE_MARKER);
    dir.mkdir("outside-dir");
    dir.write("outside-dir/f.txt", OUTSIDE_MARKER);
    dir.mkdir("store");
    Server::start(
        dir,
        r#"
client_header_timeout 1s;
client_body_timeout 2s;
keepalive_timeout 5s;
server {
    listen 127.0.0.1:$P0;
    server_name localhost;
    root www;
    client_max_body_size 100;
    location = /moved { return 301 /index.html; }
    location = /found { return 302 /index.html; }
    location = /see { return 303 /index.html; }
    location = /tmp { return 307 /index.html; }
    location = /perm { return 308 /index.html; }
    location /cgi-bin/ { cgi .sh /bin/sh; allowed_methods GET HEAD POST; }
    location /up/ { upload_store store; allowed_methods GET HEAD POST PUT DELETE; }
}
server {
    listen 127.0.0.1:$P0;
    server_name vh.test;
    root vh;
}
"#,
    )
}

fn bytes(head: &str, body: &[u8]) -> Vec<u8> {
    let mut v = head.as_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// Send `req` on a new connection: the answer is `status`, then the
/// connection closes without anything more.
#[track_caller]
fn closes_with(srv: &Server, req: &[u8], status: u16) -> Response {
    let mut c = srv.connect(0);
    let r = c
        .send_while_trying_to_read(req.to_vec())
        .unwrap_or_else(|| {
            panic!(
                "closed without answering {status} to {:?}",
                String::from_utf8_lossy(req)
            )
        });
    assert!(
        r.status == status && r.version.starts_with("HTTP/1."),
        "expected {status} for {:?}, got:\n{}",
        String::from_utf8_lossy(req),
        r.describe()
    );
    if r.version == "HTTP/1.1" {
        assert_status(&r, status);
    }
    c.expect_closed(CLOSE_WITHIN);
    r
}

/// The next request on `c` is answered (the connection stayed open and its
/// framing is intact).
#[track_caller]
fn still_answers(c: &mut Conn) {
    c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, INDEX, "{}", r.describe());
}

/// Send `req` on a new connection: the answer is `status`, and the
/// connection stays open for a next request. Returns the answer.
#[track_caller]
fn stays_open_with(srv: &Server, req: &[u8], status: u16) -> Response {
    let mut c = srv.connect(0);
    c.send(req);
    let r = c.read_response_to(req);
    assert_status(&r, status);
    still_answers(&mut c);
    r
}

/// A 400 and a close for a GET whose head has `field` as one of its lines.
#[track_caller]
fn field_is_400(srv: &Server, field: &str) {
    let req = format!("GET /index.html HTTP/1.1\r\nHost: localhost\r\n{field}\r\n\r\n");
    closes_with(srv, req.as_bytes(), 400);
}

// ---- Framing (request smuggling) --------------------------------------------

#[test]
fn rule_01_te_and_cl_together() {
    let srv = site();
    for head in [
        "POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        "POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        closes_with(&srv, &bytes(head, b"5\r\nhello\r\n0\r\n\r\n"), 400);
    }
}

#[test]
fn rule_02_transfer_encoding_other_than_chunked() {
    let srv = site();
    let send = |te_lines: &str, status: u16| {
        let head = format!("POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: localhost\r\n{te_lines}\r\n");
        closes_with(&srv, &bytes(&head, b"5\r\nhello\r\n0\r\n\r\n"), status);
    };
    // A well-formed list naming another coding: 501.
    for te in ["gzip", "identity", "gzip, chunked", "chunkedx"] {
        send(&format!("Transfer-Encoding: {te}\r\n"), 501);
    }
    // A malformed one: 400.
    for te in ["chunked, chunked", ",chunked", ""] {
        send(&format!("Transfer-Encoding: {te}\r\n"), 400);
    }
    send(
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        400,
    );
    // Exactly one `chunked`, in any case, is the valid framing.
    let mut c = srv.connect(0);
    let r = c.send_while_reading(bytes(
        "POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: ChUnKeD\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
    ));
    assert_status(&r, 200);
    assert_eq!(r.body, b"hello");
    still_answers(&mut c);
}

#[test]
fn rule_03_transfer_encoding_in_http10() {
    let srv = site();
    for te in ["chunked", "gzip"] {
        let head = format!("POST /cgi-bin/cat.sh HTTP/1.0\r\nTransfer-Encoding: {te}\r\n\r\n");
        closes_with(&srv, &bytes(&head, b"5\r\nhello\r\n0\r\n\r\n"), 400);
    }
    // Also with keep-alive asked for.
    closes_with(
        &srv,
        b"POST /cgi-bin/cat.sh HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn rule_04_content_length_syntax_and_repeats() {
    let srv = site();
    let post = |cls: &[&str]| {
        let mut head = String::from("POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: localhost\r\n");
        for cl in cls {
            head.push_str(&format!("Content-Length: {cl}\r\n"));
        }
        head.push_str("\r\n");
        bytes(&head, b"hello")
    };
    for cl in [
        "+5",
        "-1",
        "0x5",
        "1 0",
        "",
        "5a",
        "18446744073709551616",
        "99999999999999999999999",
    ] {
        closes_with(&srv, &post(&[cl]), 400);
    }
    // Two differing values, as two fields or as a list.
    closes_with(&srv, &post(&["5", "6"]), 400);
    closes_with(&srv, &post(&["5, 6"]), 400);
    closes_with(&srv, &post(&["5,"]), 400);
    // The largest u64 is a number: too large for the limit, not malformed.
    closes_with(&srv, &post(&["18446744073709551615"]), 413);
    // Identical repeats are accepted (RFC 9110 §8.6), as fields or a list.
    for cls in [&["5", "5"][..], &["5, 5"][..], &["5"][..]] {
        let mut c = srv.connect(0);
        let r = c.send_while_reading(post(cls));
        assert_status(&r, 200);
        assert_eq!(r.body, b"hello", "{cls:?}");
        still_answers(&mut c);
    }
}

#[test]
fn rule_05_chunk_size_syntax() {
    let srv = site();
    let post = |body: &str| {
        bytes(
            "POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
            body.as_bytes(),
        )
    };
    let too_many_digits = format!("{}1\r\nh\r\n0\r\n\r\n", "0".repeat(100));
    for body in [
        "0x1\r\nh\r\n0\r\n\r\n",
        "+1\r\nh\r\n0\r\n\r\n",
        " 1\r\nh\r\n0\r\n\r\n",
        "\r\nh\r\n0\r\n\r\n",
        "g\r\nh\r\n0\r\n\r\n",
        "10000000000000000\r\nh\r\n0\r\n\r\n",
        too_many_digits.as_str(),
        // Chunk data not followed by CRLF.
        "5\r\nhelloXX\r\n0\r\n\r\n",
        "5\r\nhello0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
    ] {
        closes_with(&srv, &post(body), 400);
    }
    // Leading zeros within the bound are still a size.
    let mut c = srv.connect(0);
    let r = c.send_while_reading(post("0005\r\nhello\r\n0\r\n\r\n"));
    assert_status(&r, 200);
    assert_eq!(r.body, b"hello");
    still_answers(&mut c);
}

#[test]
fn rule_06_chunk_extensions_and_trailers_are_ignored_but_bounded() {
    let srv = site();
    let head =
        "POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
    // Extensions and trailers change nothing: not the body, not the
    // framing (a Content-Length or a Transfer-Encoding trailer), not the
    // routing (a Host trailer).
    let mut c = srv.connect(0);
    let r = c.send_while_reading(bytes(
        head,
        b"5;a=b;c=\"d;e\"\r\nhello\r\n3 ; x\r\n!!!\r\n0;last=1\r\n\
          Content-Length: 100\r\nTransfer-Encoding: gzip\r\nHost: vh.test\r\nX-T: y\r\n\r\n",
    ));
    assert_status(&r, 200);
    assert_eq!(r.body, b"hello!!!");
    still_answers(&mut c);

    // Bounded: an extension or a trailer section without end is refused.
    let long_ext = format!("5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(64 * 1024));
    closes_with(&srv, &bytes(head, long_ext.as_bytes()), 400);
    let long_trailer = format!("5\r\nhello\r\n0\r\nX-T: {}\r\n\r\n", "a".repeat(64 * 1024));
    closes_with(&srv, &bytes(head, long_trailer.as_bytes()), 400);
    let many_trailers = format!("5\r\nhello\r\n0\r\n{}\r\n", "X-T: 1\r\n".repeat(5000));
    closes_with(&srv, &bytes(head, many_trailers.as_bytes()), 400);
}

#[test]
fn rule_07_no_length_means_empty_body() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(
        b"POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /ten.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"", "the CGI saw a body");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, TEN);
    still_answers(&mut c);
    // The same for an upload, and for an HTTP/1.0 keep-alive PUT.
    let mut c = srv.connect(0);
    c.send(
        b"PUT /up/empty.txt HTTP/1.1\r\nHost: localhost\r\n\r\n\
          PUT /up/empty10.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\
          GET /ten.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_status(&c.read_response(), 201);
    assert_code(&c.read_response(), 201);
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, TEN);
    for f in ["store/empty.txt", "store/empty10.txt"] {
        assert_eq!(std::fs::read(srv.dir.join(f)).unwrap(), b"", "{f}");
    }
}

// ---- Lines and fields --------------------------------------------------------

#[test]
fn rule_08_bare_cr_is_400_bare_lf_is_accepted() {
    let srv = site();
    for req in [
        &b"GET /index.html HTTP/1.1\rHost: localhost\r\n\r\n"[..],
        b"GET /index.html HTTP/1.1\r\nHost: local\rhost\r\n\r\n",
        b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\r\n\r\n",
        b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nX\rA: b\r\n\r\n",
        b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\r\n",
        b"GET /index.html\r HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        closes_with(&srv, req, 400);
    }
    // Bare LF line ends, everywhere or mixed with CRLF.
    for req in [
        &b"GET /index.html HTTP/1.1\nHost: localhost\n\n"[..],
        b"GET /index.html HTTP/1.1\r\nHost: localhost\nX-A: b\r\n\n",
    ] {
        let r = stays_open_with(&srv, req, 200);
        assert_eq!(r.body, INDEX);
    }
}

#[test]
fn rule_09_obs_fold_is_400() {
    let srv = site();
    for req in [
        "GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n c\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n\tc\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: localhost\r\n X-A: b\r\n\r\n",
        "GET /index.html HTTP/1.1\r\n Host: localhost\r\n\r\n",
    ] {
        closes_with(&srv, req.as_bytes(), 400);
    }
}

#[test]
fn rule_10_field_name_and_value_syntax() {
    let srv = site();
    for field in [
        "X-A : b",
        "X-A\t: b",
        ": b",
        "X(A): b",
        "X A: b",
        "X\"A: b",
        "X-\u{e9}: b",
        "X-A: b\0c",
        "X-A b",
    ] {
        field_is_400(&srv, field);
    }
    closes_with(
        &srv,
        b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-A: b\rc\r\n\r\n",
        400,
    );
    // Tokens with every allowed special, and OWS around the value, are fine.
    stays_open_with(
        &srv,
        b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nX!#$%&'*+-.^_`|~9: \t v a \t\r\n\r\n",
        200,
    );
}

#[test]
fn rule_11_request_line_separators() {
    let srv = site();
    for line in [
        "GET  /index.html HTTP/1.1",
        "GET /index.html  HTTP/1.1",
        "GET\t/index.html HTTP/1.1",
        "GET /index.html\tHTTP/1.1",
        "GET /index.html HTTP/1.1 ",
        " GET /index.html HTTP/1.1",
        "GET /index.html",
        "GET /index.html HTTP/1.1 extra",
    ] {
        let req = format!("{line}\r\nHost: localhost\r\n\r\n");
        closes_with(&srv, req.as_bytes(), 400);
    }
    // Empty lines before a request line are ignored (RFC 9112 §2.2).
    for req in [
        &b"\r\nGET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        b"\r\n\r\n\nGET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        stays_open_with(&srv, req, 200);
    }
    // Also between pipelined requests.
    let mut c = srv.connect(0);
    c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n\r\n\r\nGET /ten.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(c.read_response().body, INDEX);
    assert_eq!(c.read_response().body, TEN);
}

#[test]
fn rule_12_methods_are_case_sensitive_unknown_is_501() {
    let srv = site();
    for m in ["get", "Get", "FOO", "BREW", "PROPFIND"] {
        let req = format!("{m} /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
        closes_with(&srv, req.as_bytes(), 501);
    }
    // A known method not allowed here is 405, not 501.
    let r = stays_open_with(
        &srv,
        b"DELETE /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n",
        405,
    );
    r.must_header("allow");
}

#[test]
fn rule_13_versions() {
    let srv = site();
    // 1.1 and 1.2 (served as 1.1): persistent.
    for v in ["HTTP/1.1", "HTTP/1.2", "HTTP/1.9"] {
        let req = format!("GET /index.html {v}\r\nHost: localhost\r\n\r\n");
        let r = stays_open_with(&srv, req.as_bytes(), 200);
        assert_eq!(r.body, INDEX);
    }
    // 1.0: served, then closed.
    let r = closes_with(&srv, b"GET /index.html HTTP/1.0\r\n\r\n", 200);
    assert_eq!(r.body, INDEX);
    // Major version other than 1: 505.
    for v in ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/9.9"] {
        let req = format!("GET /index.html {v}\r\nHost: localhost\r\n\r\n");
        closes_with(&srv, req.as_bytes(), 505);
    }
    // Malformed.
    for v in [
        "HTTP/1.11",
        "http/1.1",
        "HTTP/1",
        "HTTP/1.",
        "HTTP/11.1",
        "HTTP/1.x",
        "HTTPS/1.1",
        "HTTP 1.1",
    ] {
        let req = format!("GET /index.html {v}\r\nHost: localhost\r\n\r\n");
        closes_with(&srv, req.as_bytes(), 400);
    }
}

#[test]
fn rule_14_line_and_head_limits() {
    let srv = site();
    // Request line over 8 KiB: 414.
    let long_target = format!("/{}", "a".repeat(9 * 1024));
    let req = format!("GET {long_target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    closes_with(&srv, req.as_bytes(), 414);
    // A request line just under 8 KiB is not refused for its length.
    let target = format!("/{}", "a".repeat(8 * 1024 - 40));
    let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stays_open_with(&srv, req.as_bytes(), 404);
    // Head over 16 KiB: 431.
    // Twenty fields of 1 KiB: within the field count, over the size.
    let mut big = String::from("GET /index.html HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..20 {
        big.push_str(&format!("X-Pad{i}: {}\r\n", "a".repeat(1000)));
    }
    big.push_str("\r\n");
    assert!(big.len() > 16 * 1024);
    let one_field = format!(
        "GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "b".repeat(17 * 1024)
    );
    for req in [&big, &one_field] {
        closes_with(&srv, req.as_bytes(), 431);
    }
    // More than 100 fields: 431. Exactly 100 is fine.
    let fields = |n: usize| {
        let mut s = String::from("GET /index.html HTTP/1.1\r\nHost: localhost\r\n");
        for i in 1..n {
            s.push_str(&format!("X-F{i}: v\r\n"));
        }
        s.push_str("\r\n");
        s
    };
    closes_with(&srv, fields(101).as_bytes(), 431);
    stays_open_with(&srv, fields(100).as_bytes(), 200);
}

#[test]
fn rule_15_request_targets() {
    let srv = site();
    // origin-form with a query.
    let r = stays_open_with(
        &srv,
        b"GET /index.html?a=1&b=%20 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        200,
    );
    assert_eq!(r.body, INDEX);
    // absolute-form: its authority wins over Host.
    let r = stays_open_with(
        &srv,
        b"GET http://vh.test/index.html HTTP/1.1\r\nHost: localhost\r\n\r\n",
        200,
    );
    assert_eq!(r.body, b"virtual host\n");
    let r = stays_open_with(
        &srv,
        b"GET http://localhost:8080/ten.txt?x HTTP/1.1\r\nHost: vh.test\r\n\r\n",
        200,
    );
    assert_eq!(r.body, TEN);
    // `*` only with OPTIONS.
    let mut c = srv.connect(0);
    c.send(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response();
    assert!(
        !matches!(r.status, 400 | 404 | 501),
        "OPTIONS * refused:\n{}",
        r.describe()
    );
    for m in ["GET", "HEAD", "POST", "DELETE"] {
        let req = format!("{m} * HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
        closes_with(&srv, req.as_bytes(), 400);
    }
    // Control bytes, raw non-ASCII, bad escapes, other forms.
    for target in [
        &b"/a\x01b"[..],
        b"/a\x7fb",
        b"/a\x00b",
        b"/caf\xc3\xa9",
        b"/a\xffb",
        b"/a%zz",
        b"/a%4",
        b"/a%",
        b"/a%g0",
        b"index.html",
        b"vh.test:80",
        b"",
    ] {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\n\r\n");
        closes_with(&srv, &req, 400);
    }
}

// ---- Host ----------------------------------------------------------------------

#[test]
fn rule_16_host() {
    let srv = site();
    for head in [
        "GET /index.html HTTP/1.1\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: localhost\r\nHost: vh.test\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost:\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: \r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: user@localhost\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: localhost/x\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: localhost:abc\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: localhost:99999\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: localhost:\u{20}80\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: a b\r\n\r\n",
    ] {
        closes_with(&srv, head.as_bytes(), 400);
    }
    // Virtual hosts match on the lowercased name without port and dot.
    for host in [
        "vh.test",
        "VH.Test",
        "vh.test:8080",
        "vh.test.",
        "VH.TEST.:80",
    ] {
        let req = format!("GET /index.html HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let r = stays_open_with(&srv, req.as_bytes(), 200);
        assert_eq!(r.body, b"virtual host\n", "Host: {host}");
    }
    // HTTP/1.0 needs no Host.
    let r = closes_with(&srv, b"GET /index.html HTTP/1.0\r\n\r\n", 200);
    assert_eq!(r.body, INDEX);
}

// ---- Connections -------------------------------------------------------------

#[test]
fn rule_17_persistence_by_version() {
    let srv = site();
    // HTTP/1.1: persistent by default, closed by Connection: close.
    let mut c = srv.connect(0);
    for _ in 0..3 {
        still_answers(&mut c);
    }
    let r = closes_with(
        &srv,
        b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        200,
    );
    assert!(r.connection_has("close"), "{}", r.describe());
    closes_with(
        &srv,
        b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive, CLOSE\r\n\r\n",
        200,
    );
    // HTTP/1.0: closed by default, persistent with keep-alive (and then the
    // answer says so).
    closes_with(&srv, b"GET /index.html HTTP/1.0\r\n\r\n", 200);
    let mut c = srv.connect(0);
    for _ in 0..2 {
        c.send(b"GET /index.html HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        let r = c.read_response();
        assert_code(&r, 200);
        assert!(r.connection_has("keep-alive"), "{}", r.describe());
    }
    still_answers(&mut c);
}

#[test]
fn rule_18_pipelining_in_order_and_nothing_after_close() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(
        b"GET /ten.txt HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /missing HTTP/1.1\r\nHost: localhost\r\n\r\n\
          HEAD /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /index.html HTTP/1.1\r\nHost: vh.test\r\n\r\n\
          GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n\
          GET /ten.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, TEN);
    assert_status(&c.read_response(), 404);
    let r = c.read_head_response();
    assert_status(&r, 200);
    assert_eq!(r.must_header("content-length"), "6");
    assert_eq!(c.read_response().body, b"virtual host\n");
    let r = c.read_response();
    assert_eq!(r.body, INDEX);
    assert!(r.connection_has("close"));
    c.expect_closed(CLOSE_WITHIN);
}

#[test]
fn rule_19_errors_and_early_answers_close() {
    let srv = site();
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "a".repeat(17000)
    );
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        (
            b"PUT /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n".to_vec(),
            413,
        ),
        (long.into_bytes(), 414),
        (huge.into_bytes(), 431),
        (b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 501),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(), 505),
    ];
    for (req, status) in cases {
        // A valid request pipelined after the error is never answered.
        let mut all = req;
        all.extend_from_slice(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
        closes_with(&srv, &all, status);
    }
    // 408 (an incomplete head).
    let mut c = srv.connect(0);
    c.send(b"GET /index.html HTTP/1.1\r\nHost: loc");
    assert_status(&c.read_response(), 408);
    c.expect_closed(CLOSE_WITHIN);

    // Answers sent before the body was read close the connection: the
    // body, which here looks like a request, is never parsed as one. That
    // is a 413 from the head, a chunked body nobody takes, a declared body
    // too large to drop (over 1 MiB), and an answer sent instead of 100.
    let smuggled = b"GET /ten.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let chunk = format!("{:x}\r\n", smuggled.len());
    let mut chunked = chunk.into_bytes();
    chunked.extend_from_slice(smuggled);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    for (head, body, status) in [
        (
            "PUT /up/big HTTP/1.1\r\nHost: localhost\r\nContent-Length: 101\r\n\r\n".to_string(),
            &smuggled[..],
            413,
        ),
        (
            "POST /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_string(),
            &chunked[..],
            405,
        ),
        (
            "POST /moved HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_string(),
            &chunked[..],
            301,
        ),
        (
            format!(
                "POST /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
                2 << 20
            ),
            &smuggled[..],
            405,
        ),
        (
            format!(
                "POST /index.html HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
                smuggled.len()
            ),
            &smuggled[..],
            405,
        ),
    ] {
        let r = closes_with(&srv, &bytes(&head, body), status);
        assert!(r.connection_has("close"), "{}", r.describe());
    }
    // A small declared body nobody takes is read and dropped *before* the
    // answer (as nginx discards it), so the answer is not "sent before the
    // body was read" and the connection goes on in step: no answer while
    // the body is incomplete, then the answer, then the next request.
    for (head, status) in [
        ("POST /index.html HTTP/1.1\r\nHost: localhost\r\n", 405),
        (
            "POST /cgi-bin/missing.sh HTTP/1.1\r\nHost: localhost\r\n",
            404,
        ),
        ("POST /moved HTTP/1.1\r\nHost: localhost\r\n", 301),
    ] {
        let mut c = srv.connect(0);
        let head = format!("{head}Content-Length: {}\r\n\r\n", smuggled.len());
        c.send(&bytes(&head, &smuggled[..10]));
        assert!(
            read_for(&mut c, Duration::from_millis(200)).is_empty(),
            "{status} answered before its body was read"
        );
        c.send(&smuggled[10..]);
        assert_status(&c.read_response(), status);
        still_answers(&mut c);
    }
}

/// What arrives within `d`.
fn read_for(c: &mut Conn, d: Duration) -> Vec<u8> {
    c.stream.set_read_timeout(Some(d)).unwrap();
    let _ = c.fill();
    c.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.buffered().to_vec()
}

#[test]
fn rule_20_expect_100_continue() {
    let srv = site();
    // 100 Continue first, nothing else until the body is sent; then the
    // answer, and the connection goes on.
    for (head, body, status) in [
        (
            "POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            &b"hello"[..],
            200,
        ),
        (
            "PUT /up/e.txt HTTP/1.1\r\nHost: localhost\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
            b"abc",
            201,
        ),
        (
            "POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"2\r\nhi\r\n0\r\n\r\n",
            200,
        ),
    ] {
        let mut c = srv.connect(0);
        c.send(head.as_bytes());
        let interim = c.read_response();
        assert_eq!(interim.status_line, "HTTP/1.1 100 Continue");
        assert!(
            interim.body.is_empty(),
            "bytes after the 100 head: {:?}",
            interim.body_str()
        );
        assert!(
            read_for(&mut c, Duration::from_millis(300)).is_empty(),
            "answered before the body was sent"
        );
        c.send(body);
        let r = c.read_response();
        assert_status(&r, status);
        if status == 200 {
            assert!(r.body == b"hello" || r.body == b"hi", "{}", r.describe());
        }
        still_answers(&mut c);
    }
    // A final status already known from the head is sent instead of 100.
    for (head, status) in [
        (
            "PUT /up/x HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n",
            413,
        ),
        (
            "POST /cgi-bin/missing.sh HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            404,
        ),
        (
            "POST /index.html HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            405,
        ),
    ] {
        let mut c = srv.connect(0);
        c.send(head.as_bytes());
        let r = c.read_response();
        assert_status(&r, status);
        c.expect_closed(CLOSE_WITHIN);
    }
    // Ignored for HTTP/1.0: no 100, the body is simply read.
    let mut c = srv.connect(0);
    c.send(b"POST /cgi-bin/cat.sh HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert!(
        read_for(&mut c, Duration::from_millis(300)).is_empty(),
        "an HTTP/1.0 client got an interim answer"
    );
    c.send(b"hello");
    let r = c.read_response();
    assert_code(&r, 200);
    assert_eq!(r.body, b"hello");
}

#[test]
fn rule_21_header_timeout_is_total() {
    // One byte every 300 ms of a head that never ends. A timeout restarted
    // by each byte would never fire while they come (20 s of them), so a
    // 408 well before then shows the timeout counts from the first byte;
    // how soon after the 1 s mark a loaded machine answers is not the
    // point, the bound is generous. The clock starts before the connection
    // exists, so the server's own clock cannot have started earlier.
    let srv = site();
    let start = Instant::now();
    let mut c = srv.connect(0);
    let mut writer = c.stream.try_clone().unwrap();
    // Stopped once the answer is in: the server lingers after its 408,
    // reading what still comes, for up to 5 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let trickle = thread::spawn(move || {
        use std::io::Write;
        for b in b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa" {
            if stopped.load(std::sync::atomic::Ordering::Relaxed)
                || writer.write_all(&[*b]).is_err()
            {
                return;
            }
            thread::sleep(Duration::from_millis(300));
        }
    });
    c.stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let r = c.read_response();
    let took = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_status(&r, 408);
    assert!(
        took >= Duration::from_millis(900) && took <= Duration::from_secs(6),
        "408 after {took:?}, client_header_timeout is 1s"
    );
    c.expect_closed(CLOSE_WITHIN);
    let _ = trickle.join();
}

// ---- Responses ---------------------------------------------------------------

#[track_caller]
fn assert_framed(r: &Response) {
    assert_date_and_server(r);
    let te = r.header("transfer-encoding");
    let cl = r.header("content-length");
    assert!(
        te.is_some() != cl.is_some(),
        "exactly one of Content-Length and Transfer-Encoding:\n{}",
        r.describe()
    );
    if let Some(cl) = cl {
        assert_eq!(cl, r.body.len().to_string(), "{}", r.describe());
    }
}

#[test]
fn rule_22_every_response_is_dated_named_and_framed() {
    let srv = site();
    let mut c = srv.connect(0);
    for (req, status) in [
        ("GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n", 200),
        ("GET /missing HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
        ("GET /moved HTTP/1.1\r\nHost: localhost\r\n\r\n", 301),
        ("GET /dir HTTP/1.1\r\nHost: localhost\r\n\r\n", 301),
        (
            "GET /cgi-bin/nolen.sh HTTP/1.1\r\nHost: localhost\r\n\r\n",
            200,
        ),
        (
            "DELETE /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n",
            405,
        ),
        (
            "GET /ten.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=2-3\r\n\r\n",
            206,
        ),
    ] {
        c.send(req.as_bytes());
        let r = c.read_response();
        assert_status(&r, status);
        assert_framed(&r);
    }
    // Chunked towards 1.1 when the length is unknown.
    c.send(b"GET /cgi-bin/nolen.sh HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, b"part one\npart two\n");
    // 1xx, 204 and 304 carry no body: the next pipelined answer follows
    // right after their heads.
    let etag = {
        c.send(b"GET /ten.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
        c.read_response().must_header("etag").to_string()
    };
    c.send(b"PUT /up/d.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\r\nx");
    assert_status(&c.read_response(), 201);
    let req = format!(
        "DELETE /up/d.txt HTTP/1.1\r\nHost: localhost\r\n\r\n\
         GET /ten.txt HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: {etag}\r\n\r\n\
         GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"
    );
    c.send(req.as_bytes());
    for status in [204, 304] {
        let r = c.read_head_response();
        assert_status(&r, status);
        assert_date_and_server(&r);
        assert!(r.header("transfer-encoding").is_none(), "{}", r.describe());
        if status == 204 {
            assert!(r.header("content-length").is_none(), "{}", r.describe());
        }
    }
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, INDEX, "a 204 or 304 carried body bytes");
    // Towards 1.0, an unknown length is delimited by the close.
    let r = closes_with(&srv, b"GET /cgi-bin/nolen.sh HTTP/1.0\r\n\r\n", 200);
    assert!(r.header("content-length").is_none());
    assert!(r.header("transfer-encoding").is_none());
    assert_eq!(r.body, b"part one\npart two\n");
}

/// The headers of `r` other than `Date`, in order.
fn headers_but_date(r: &Response) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .cloned()
        .collect()
}

#[test]
fn rule_23_head_gets_get_headers_and_no_body() {
    let srv = site();
    let mut c = srv.connect(0);
    for (path, extra) in [
        ("/index.html", ""),
        ("/ten.txt", "Range: bytes=1-2\r\n"),
        ("/ten.txt", "Range: bytes=50-\r\n"),
        ("/missing", ""),
        ("/moved", ""),
        ("/dir", ""),
        ("/dir/", ""),
        ("/cgi-bin/nolen.sh", ""),
    ] {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n").as_bytes());
        let get = c.read_response();
        // HEAD, then a GET pipelined behind it: any body byte after the
        // HEAD answer would break the second answer.
        c.send(
            format!(
                "HEAD {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n\
                 GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"
            )
            .as_bytes(),
        );
        let head = c.read_head_response();
        assert_eq!(head.status_line, get.status_line, "{path}");
        if path.starts_with("/cgi-bin/") {
            // A CGI's length is unknown to both; GET is chunked, HEAD has
            // no body to frame.
            assert_eq!(head.header("content-type"), get.header("content-type"));
        } else {
            assert_eq!(headers_but_date(&head), headers_but_date(&get), "{path}");
        }
        let next = c.read_response();
        assert_eq!(next.body, INDEX, "HEAD {path} was answered with a body");
    }
}

#[test]
fn rule_24_allow_and_location() {
    let srv = site();
    let mut c = srv.connect(0);
    for req in [
        "DELETE /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "PUT /ten.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
        "DELETE /cgi-bin/nolen.sh HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        c.send(req.as_bytes());
        let r = c.read_response();
        assert_status(&r, 405);
        let allow = r.must_header("allow");
        assert!(allow.contains("GET"), "Allow: {allow}");
    }
    for (path, status) in [
        ("/moved", 301),
        ("/found", 302),
        ("/see", 303),
        ("/tmp", 307),
        ("/perm", 308),
    ] {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        let r = c.read_response();
        assert_status(&r, status);
        assert_eq!(r.must_header("location"), "/index.html");
    }
    c.send(b"GET /dir?q=1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 301);
    let loc = r.must_header("location");
    assert!(loc.ends_with("/dir/?q=1"), "Location: {loc}");
}

#[test]
fn rule_25_no_chunked_towards_http10() {
    let srv = site();
    for req in [
        &b"GET /cgi-bin/nolen.sh HTTP/1.0\r\n\r\n"[..],
        b"GET /cgi-bin/nolen.sh HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"GET /cgi-bin/nolen.sh HTTP/1.0\r\nHost: localhost\r\nTE: chunked\r\n\r\n",
    ] {
        let r = closes_with(&srv, req, 200);
        assert!(r.header("transfer-encoding").is_none(), "{}", r.describe());
        assert!(r.header("content-length").is_none(), "{}", r.describe());
        assert!(!r.connection_has("keep-alive"), "{}", r.describe());
        assert_eq!(r.body, b"part one\npart two\n");
    }
    // The same script towards 1.1 is chunked, on a persistent connection.
    let r = stays_open_with(
        &srv,
        b"GET /cgi-bin/nolen.sh HTTP/1.1\r\nHost: localhost\r\n\r\n",
        200,
    );
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
}

#[test]
fn rule_26_ranges() {
    let srv = site();
    let mut c = srv.connect(0);
    let mut get = |range: &str| {
        c.send(
            format!("GET /ten.txt HTTP/1.1\r\nHost: localhost\r\nRange: {range}\r\n\r\n")
                .as_bytes(),
        );
        c.read_response()
    };
    for (range, body, cr) in [
        ("bytes=2-5", &b"2345"[..], "bytes 2-5/10"),
        ("bytes=7-", b"789", "bytes 7-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
        ("bytes=8-100", b"89", "bytes 8-9/10"),
        ("bytes=0-0", b"0", "bytes 0-0/10"),
    ] {
        let r = get(range);
        assert_status(&r, 206);
        assert_eq!(r.body, body, "{range}");
        assert_eq!(r.must_header("content-range"), cr, "{range}");
    }
    for range in ["bytes=10-", "bytes=20-30", "bytes=-0"] {
        let r = get(range);
        assert_status(&r, 416);
        assert_eq!(r.must_header("content-range"), "bytes */10", "{range}");
    }
    for range in ["bytes=x-y", "bytes=5-2", "lines=1-2", "bytes=", "bytes 1-2"] {
        let r = get(range);
        assert_status(&r, 200);
        assert_eq!(r.body, TEN, "{range}");
    }
    // Several ranges: overlapping ones merged (never a byte twice), so the
    // answer holds no more of the file than the file; disjoint ones in a
    // multipart/byteranges 206, with only the part heads on top.
    for range in ["bytes=0-,0-,0-,0-", "bytes=0-9,0-9", "bytes=0-4,5-9"] {
        let r = get(range);
        assert_status(&r, 206);
        assert_eq!(r.must_header("content-range"), "bytes 0-9/10", "{range}");
        assert_eq!(r.body, TEN, "{range}");
    }
    let r = get("bytes=0-1,3-4");
    assert_status(&r, 206);
    let b = r
        .must_header("content-type")
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap()
        .to_string();
    let t = "text/plain; charset=utf-8";
    let want = format!(
        "\r\n--{b}\r\nContent-Type: {t}\r\nContent-Range: bytes 0-1/10\r\n\r\n01\
         \r\n--{b}\r\nContent-Type: {t}\r\nContent-Range: bytes 3-4/10\r\n\r\n34\
         \r\n--{b}--\r\n"
    );
    assert_eq!(r.body_str(), want);
    assert_eq!(r.must_header("content-length"), want.len().to_string());
    // HEAD gets the headers GET would get.
    c.send(b"HEAD /ten.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=2-5\r\n\r\n");
    let r = c.read_head_response();
    assert_status(&r, 206);
    assert_eq!(r.must_header("content-range"), "bytes 2-5/10");
    assert_eq!(r.must_header("content-length"), "4");
    still_answers(&mut c);
}

#[test]
fn rule_27_conditionals() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(b"GET /ten.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response();
    let etag = r.must_header("etag").to_string();
    let lm = r.must_header("last-modified").to_string();
    for cond in [
        format!("If-None-Match: {etag}"),
        format!("If-None-Match: \"nope\", {etag}"),
        "If-None-Match: *".to_string(),
        format!("If-Modified-Since: {lm}"),
        "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT".to_string(),
    ] {
        for m in ["GET", "HEAD"] {
            c.send(
                format!("{m} /ten.txt HTTP/1.1\r\nHost: localhost\r\n{cond}\r\n\r\n").as_bytes(),
            );
            let r = c.read_head_response();
            assert_status(&r, 304);
            assert_eq!(r.must_header("etag"), etag, "{cond}");
        }
    }
    for cond in [
        "If-None-Match: \"nope\"".to_string(),
        "If-Modified-Since: Mon, 01 Jan 1990 00:00:00 GMT".to_string(),
        // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
        format!("If-None-Match: \"nope\"\r\nIf-Modified-Since: {lm}"),
    ] {
        c.send(format!("GET /ten.txt HTTP/1.1\r\nHost: localhost\r\n{cond}\r\n\r\n").as_bytes());
        let r = c.read_response();
        assert_status(&r, 200);
        assert_eq!(r.body, TEN, "{cond}");
    }
    still_answers(&mut c);
}

// ---- Paths ---------------------------------------------------------------------

#[track_caller]
fn refused(srv: &Server, target: &str, allowed: &[u16]) {
    let mut c = srv.connect(0);
    let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    c.send(req.as_bytes());
    let r = c.read_response();
    assert!(
        allowed.contains(&r.status),
        "{target}: expected one of {allowed:?}, got:\n{}",
        r.describe()
    );
    assert!(
        !contains(&r.body, OUTSIDE_MARKER.as_bytes()),
        "{target} leaked a file outside the root"
    );
    if r.status == 400 {
        c.expect_closed(CLOSE_WITHIN);
    } else {
        still_answers(&mut c);
    }
}

#[test]
fn rule_28_paths_decode_once_and_never_climb() {
    let srv = site();
    for target in [
        "/../outside.txt",
        "/dir/../../outside.txt",
        "/%2e%2e/outside.txt",
        "/%2E%2E/outside.txt",
        "/.%2e/outside.txt",
        "/dir/%2e%2e/%2e%2e/outside.txt",
        "/..%2foutside.txt",
        "/dir/..%2F..%2Foutside.txt",
        "/%252e%252e/outside.txt",
        "http://localhost/../outside.txt",
    ] {
        refused(&srv, target, &[400, 404]);
    }
    // %2F and %00 are never a separator or a terminator.
    for target in [
        "/dir%2Findex.html",
        "/index.html%00",
        "/index.html%00.txt",
        "/dir/index.html%00/x",
    ] {
        refused(&srv, target, &[400, 404]);
    }
    // Dot-segments that stay inside are resolved.
    for target in [
        "/dir/../index.html",
        "/./index.html",
        "/dir/%2e%2e/index.html",
        "/%69ndex.html",
    ] {
        let r = stays_open_with(
            &srv,
            format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
            200,
        );
        assert_eq!(r.body, INDEX, "{target}");
    }
}

#[test]
fn rule_29_symlinks_out_of_the_root_are_not_followed() {
    let dir = TempDir::new("conformance-symlinks");
    dir.write("www/index.html", INDEX);
    dir.write("www/inside.txt", "inside\n");
    dir.write("outside.txt", OUTSIDE_MARKER);
    dir.write("outside-dir/f.txt", OUTSIDE_MARKER);
    symlink(dir.join("outside.txt"), dir.join("www/abs-link.txt")).unwrap();
    symlink("../outside.txt", dir.join("www/rel-link.txt")).unwrap();
    symlink(dir.join("outside-dir"), dir.join("www/out-dir")).unwrap();
    symlink("/etc/passwd", dir.join("www/passwd")).unwrap();
    symlink("inside.txt", dir.join("www/in-link.txt")).unwrap();
    let srv = Server::start(
        dir,
        "server { listen 127.0.0.1:$P0; server_name localhost; root www; autoindex on; }",
    );
    for target in [
        "/abs-link.txt",
        "/rel-link.txt",
        "/out-dir/f.txt",
        "/out-dir/",
        "/passwd",
    ] {
        refused(&srv, target, &[403, 404]);
    }
    // A symlink that stays inside is not the rule's business; the server
    // still answers after all of the above.
    let r = srv.get("/index.html");
    assert_status(&r, 200);
    let r = srv.get("/passwd");
    assert!(!r.body_str().contains("root:"), "{}", r.describe());
}

#[test]
fn rule_30_fifo_device_socket_403() {
    let dir = TempDir::new("conformance-special");
    dir.write("www/index.html", INDEX);
    let st = Command::new("mkfifo")
        .arg(dir.join("www/pipe.html"))
        .status()
        .expect("mkfifo");
    assert!(st.success());
    let _sock = std::os::unix::net::UnixListener::bind(dir.join("www/sock.html")).unwrap();
    // A device needs root (mknod); that case is skipped otherwise (the
    // others still run).
    let mknod = Command::new("mknod")
        .arg(dir.join("www/zero.html"))
        .args(["c", "1", "5"])
        .output();
    let have_device = match mknod {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            skip(
                "rule_30_fifo_device_socket_403 (its device case)",
                &format!(
                    "mknod failed here: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            false
        }
        Err(e) => {
            skip(
                "rule_30_fifo_device_socket_403 (its device case)",
                &format!("cannot run mknod: {e}"),
            );
            false
        }
    };
    let srv = Server::start(
        dir,
        "server { listen 127.0.0.1:$P0; server_name localhost; root www; }",
    );
    let mut targets = vec!["/pipe.html", "/sock.html"];
    if have_device {
        targets.push("/zero.html");
    }
    for target in targets {
        // A request for the special file is in flight while another
        // connection is served: the loop never stalls.
        let mut c = srv.connect(0);
        let start = Instant::now();
        c.send(format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        let other = srv.get("/index.html");
        assert_status(&other, 200);
        let r = c.read_response();
        assert_status(&r, 403);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{target} took {:?}",
            start.elapsed()
        );
        still_answers(&mut c);
        // HEAD too.
        c.send(format!("HEAD {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        assert_status(&c.read_head_response(), 403);
    }
}
