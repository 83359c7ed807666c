//! `listen ... proxy_protocol` (CONFIG.md "More directives"): a connection
//! starts with a PROXY protocol header, v1 (text) or v2 (binary); its
//! client becomes `$remote_addr`, the address `allow`/`deny` and the
//! limits see, and CGI's `REMOTE_ADDR`, under `set_real_ip_from` +
//! `real_ip_header proxy_protocol` only (nginx's rule). A header that is
//! missing, malformed, oversized, cut short or too slow closes the
//! connection without an answer, and (but the slow one) leaves one
//! escaped `broken header` line in the error log.
//!
//! The test is the proxy: it writes the header itself, from 127.0.0.1
//! (or `::1`), then the request.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

const LIMIT: Duration = Duration::from_secs(5);

const CLOSE: &[u8] = b"GET /hello.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
const KEEP: &[u8] = b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n";

/// What the access log says of each request.
const FORMAT: &str = "log_format a '$remote_addr \"$request\" $status';";

/// A site with `www/hello.txt` (`hello`) and `www/in/x.txt`.
fn site(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("www/hello.txt", "hello");
    dir.write("www/in/x.txt", "in");
    dir.write("www/out/x.txt", "out");
    dir
}

/// A server on `$P0` behind a trusted PROXY protocol sender (127.0.0.1),
/// with `extra` in its block and `top` above it, its access log in
/// `access.log`.
fn behind_proxy(name: &str, top: &str, extra: &str) -> Server {
    Server::start(
        site(name),
        &format!(
            "{FORMAT}\n{top}\n\
             server {{ listen 127.0.0.1:$P0 proxy_protocol; root www; access_log access.log a;\n\
               set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;\n{extra} }}"
        ),
    )
}

fn v1(proto: &str, src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    format!("PROXY {proto} {src} {dst} {sport} {dport}\r\n").into_bytes()
}

const V2_SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// A v2 header: version and command, family and transport, then `body`.
fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut v = V2_SIG.to_vec();
    v.extend_from_slice(&[ver_cmd, fam]);
    v.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// v2 PROXY over TCP/IPv4 from `src:sport`, then `tlvs`.
fn v2_tcp4(src: [u8; 4], sport: u16, tlvs: &[u8]) -> Vec<u8> {
    let mut body = src.to_vec();
    body.extend_from_slice(&[127, 0, 0, 1]);
    body.extend_from_slice(&sport.to_be_bytes());
    body.extend_from_slice(&8080u16.to_be_bytes());
    body.extend_from_slice(tlvs);
    v2(0x21, 0x11, &body)
}

/// v2 PROXY over TCP/IPv6 from `src:sport`.
fn v2_tcp6(src: std::net::Ipv6Addr, sport: u16) -> Vec<u8> {
    let mut body = src.octets().to_vec();
    body.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    body.extend_from_slice(&sport.to_be_bytes());
    body.extend_from_slice(&8080u16.to_be_bytes());
    v2(0x21, 0x21, &body)
}

fn with(header: &[u8], request: &[u8]) -> Vec<u8> {
    [header, request].concat()
}

/// Send `bytes` on a new connection to `$P{i}` and read the answer.
fn ask(srv: &Server, i: usize, bytes: &[u8]) -> Response {
    let mut c = srv.connect(i);
    c.send(bytes);
    c.read_response()
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}

/// The first `n` lines of the access log, once it has them.
#[track_caller]
fn log_lines(srv: &Server, n: usize) -> Vec<String> {
    let path = srv.dir.join("access.log");
    let mut text = String::new();
    let ok = wait_until(LIMIT, || {
        text = read(&path);
        text.lines().count() >= n
    });
    assert!(ok, "access.log has not {n} lines: {text:?}");
    text.lines().map(str::to_string).collect()
}

/// The error-log lines (stderr) that say `needle`, once there are `n`.
#[track_caller]
fn error_lines(srv: &Server, needle: &str, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let ok = wait_until(LIMIT, || {
        lines = srv
            .stderr()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect();
        lines.len() >= n
    });
    assert!(
        ok,
        "not {n} error-log lines with {needle:?}; stderr:\n{}",
        srv.stderr()
    );
    lines
}

/// The connection is closed with nothing sent.
#[track_caller]
fn refused(srv: &Server, bytes: &[u8]) {
    let mut c = srv.connect(0);
    c.send(bytes);
    c.expect_closed(LIMIT);
}

#[test]
fn v1_tcp4_tcp6_and_unknown_headers() {
    let srv = behind_proxy("pp-v1", "", "");
    for header in [
        v1("TCP4", "192.0.2.10", "127.0.0.1", 50000, 8080),
        v1("TCP6", "2001:db8::7", "::1", 65535, 8080),
        b"PROXY UNKNOWN\r\n".to_vec(),
        b"PROXY UNKNOWN 2001:db8::1 2001:db8::2 1 2\r\n".to_vec(),
    ] {
        let r = ask(&srv, 0, &with(&header, CLOSE));
        assert_status(&r, 200);
        assert_eq!(r.body, b"hello");
    }
    assert_eq!(
        log_lines(&srv, 4),
        [
            "192.0.2.10 \"GET /hello.txt HTTP/1.1\" 200",
            "2001:db8::7 \"GET /hello.txt HTTP/1.1\" 200",
            // UNKNOWN names no one: the socket's address.
            "127.0.0.1 \"GET /hello.txt HTTP/1.1\" 200",
            "127.0.0.1 \"GET /hello.txt HTTP/1.1\" 200",
        ]
    );
}

#[test]
fn v2_tcp4_tcp6_local_and_tlvs() {
    let srv = behind_proxy("pp-v2", "", "");
    // PP2_TYPE_ALPN "http/1.1", PP2_TYPE_AUTHORITY "example.com",
    // PP2_TYPE_UNIQUE_ID of 64 bytes, PP2_TYPE_NOOP.
    let mut tlvs = b"\x01\x00\x08http/1.1\x02\x00\x0bexample.com\x05\x00\x40".to_vec();
    tlvs.extend_from_slice(&[0xab; 64]);
    tlvs.extend_from_slice(b"\x04\x00\x00");
    let six: std::net::Ipv6Addr = "2001:db8::9".parse().unwrap();
    let mut unix = vec![0u8; 216];
    unix[..9].copy_from_slice(b"/run/sock");
    for header in [
        v2_tcp4([198, 51, 100, 3], 4000, b""),
        v2_tcp4([198, 51, 100, 4], 4001, &tlvs),
        v2_tcp6(six, 443),
        // LOCAL: the proxy's own connection (a health check).
        v2(0x20, 0x00, b""),
        // AF_UNIX over STREAM: no TCP client to name.
        v2(0x21, 0x31, &unix),
    ] {
        let r = ask(&srv, 0, &with(&header, CLOSE));
        assert_status(&r, 200);
        assert_eq!(r.body, b"hello");
    }
    assert_eq!(
        log_lines(&srv, 5),
        [
            "198.51.100.3 \"GET /hello.txt HTTP/1.1\" 200",
            "198.51.100.4 \"GET /hello.txt HTTP/1.1\" 200",
            "2001:db8::9 \"GET /hello.txt HTTP/1.1\" 200",
            "127.0.0.1 \"GET /hello.txt HTTP/1.1\" 200",
            "127.0.0.1 \"GET /hello.txt HTTP/1.1\" 200",
        ]
    );
}

#[test]
fn a_header_split_over_writes_then_keep_alive_and_pipelined_requests() {
    let srv = behind_proxy("pp-split", "", "");
    // The header in three writes, the last with the request's start.
    let header = v1("TCP4", "192.0.2.21", "127.0.0.1", 1111, 8080);
    let mut c = srv.connect(0);
    c.send(&header[..5]);
    thread::sleep(Duration::from_millis(50));
    c.send(&header[5..20]);
    thread::sleep(Duration::from_millis(50));
    c.send(&with(&header[20..], &KEEP[..10]));
    thread::sleep(Duration::from_millis(50));
    c.send(&KEEP[10..]);
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"hello");
    // The next request on the connection carries no header...
    c.send(KEEP);
    assert_status(&c.read_response(), 200);
    // ...and one that looks like a header is a (bad) request.
    c.send(&with(&header, b"\r\n"));
    assert_status(&c.read_response(), 400);
    drop(c);
    // v2, one byte per write.
    let header = v2_tcp4([192, 0, 2, 22], 2222, b"\x04\x00\x01z");
    let mut c = srv.connect(0);
    for b in &header {
        c.send(&[*b]);
        thread::sleep(Duration::from_millis(2));
    }
    c.send(CLOSE);
    assert_status(&c.read_response(), 200);
    // Header and two pipelined requests in one write.
    let mut c = srv.connect(0);
    c.send(&[&v2_tcp4([192, 0, 2, 23], 3333, b"")[..], KEEP, CLOSE].concat());
    let (a, b) = (c.read_response(), c.read_response());
    assert_eq!((a.status, &a.body[..], b.status), (200, &b"hello"[..], 200));
    c.expect_closed(LIMIT);
    let addrs: Vec<String> = log_lines(&srv, 6)
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        addrs,
        [
            "192.0.2.21",
            "192.0.2.21",
            // A head that does not parse reaches no server, so no
            // `real_ip_header`: the socket's address, as in nginx.
            "127.0.0.1",
            "192.0.2.22",
            "192.0.2.23",
            "192.0.2.23"
        ]
    );
}

#[test]
fn malformed_headers_close_without_an_answer_and_are_logged() {
    let srv = behind_proxy("pp-malformed", "", "");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad v2 signature",
            [
                &b"\r\n\r\n\0\r\nQUIZ\n\x21\x11\x00\x0c"[..],
                &[1; 12],
                CLOSE,
            ]
            .concat(),
            "(no PROXY protocol signature)",
        ),
        (
            "bad v1 protocol",
            with(&v1("TCP5", "192.0.2.1", "127.0.0.1", 1, 2), CLOSE),
            "(v1 fields malformed)",
        ),
        (
            "v1 field missing",
            with(b"PROXY TCP4 192.0.2.1 127.0.0.1 1\r\n", CLOSE),
            "(v1 fields malformed)",
        ),
        (
            "v6 address in TCP4",
            with(&v1("TCP4", "2001:db8::1", "127.0.0.1", 1, 2), CLOSE),
            "(v1 address invalid for its family)",
        ),
        (
            "v4 address in TCP6",
            with(&v1("TCP6", "192.0.2.1", "::1", 1, 2), CLOSE),
            "(v1 address invalid for its family)",
        ),
        (
            "port out of range",
            with(b"PROXY TCP4 192.0.2.1 127.0.0.1 65536 80\r\n", CLOSE),
            "(v1 port invalid)",
        ),
        (
            "port with garbage",
            with(b"PROXY TCP4 192.0.2.1 127.0.0.1 +80 80\r\n", CLOSE),
            "(v1 port invalid)",
        ),
        (
            "missing CR",
            with(b"PROXY TCP4 192.0.2.1 127.0.0.1 1 80\n", CLOSE),
            "(v1 line not ended by CRLF)",
        ),
        (
            "v2 version 1",
            with(&v2(0x11, 0x11, &[1; 12]), CLOSE),
            "(v2 version not 2)",
        ),
        (
            "v2 unknown command",
            with(&v2(0x23, 0x11, &[1; 12]), CLOSE),
            "(v2 command unknown)",
        ),
        (
            "v2 addresses cut",
            with(&v2(0x21, 0x11, &[1; 8]), CLOSE),
            "(v2 length too short for its addresses)",
        ),
    ];
    for (name, bytes, _) in &cases {
        let mut c = srv.connect(0);
        c.send(bytes);
        c.expect_closed(LIMIT);
        assert!(c.buffered().is_empty(), "{name}");
    }
    let lines = error_lines(&srv, "broken header: ", cases.len());
    assert_eq!(lines.len(), cases.len(), "{lines:#?}");
    for ((name, _, reason), line) in cases.iter().zip(&lines) {
        assert!(
            line.contains("[error]")
                && line.contains(reason)
                && line.ends_with(&format!(
                    " while reading PROXY protocol, client: 127.0.0.1, server: 127.0.0.1:{}",
                    srv.port(0)
                )),
            "{name}: {line}"
        );
    }
    // What arrived is shown, escaped.
    assert!(
        lines[1].contains(
            "broken header: \"PROXY TCP5 192.0.2.1 127.0.0.1 1 2\\x0D\\x0AGET /hello.txt"
        ),
        "{}",
        lines[1]
    );
    assert!(lines[8].contains("\"\\x0D\\x0A\\x0D\\x0A\\x00\\x0D\\x0AQUIT\\x0A\\x11"));
    assert!(log_lines_now(&srv).is_empty(), "nothing was a request");
}

/// The access log as it is (for "nothing was logged").
fn log_lines_now(srv: &Server) -> Vec<String> {
    // Lines are flushed within a second; give them the chance.
    thread::sleep(Duration::from_millis(1200));
    read(&srv.dir.join("access.log"))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn control_bytes_never_reach_the_error_log() {
    let srv = behind_proxy("pp-escape", "", "");
    refused(
        &srv,
        b"PROXY TCP4 192.0.2.1\x1b[31m\x07\x00\"\\ 127.0.0.1 1 2\r\n\xff\xfe",
    );
    let line = &error_lines(&srv, "broken header: ", 1)[0];
    assert!(
        line.contains("\"PROXY TCP4 192.0.2.1\\x1B[31m\\x07\\x00\\x22\\x5C 127.0.0.1 1 2\\x0D\\x0A\\xFF\\xFE\""),
        "{line}"
    );
    assert!(
        !srv.stderr()
            .bytes()
            .any(|b| (b < 0x20 && b != b'\n') || b >= 0x7f),
        "{:?}",
        srv.stderr()
    );
}

#[test]
fn plain_http_without_a_header_is_closed_and_logged() {
    let srv = behind_proxy("pp-plain", "", "");
    let mut c = srv.connect(0);
    c.send(CLOSE);
    c.expect_closed(LIMIT);
    let line = &error_lines(&srv, "broken header: ", 1)[0];
    assert!(
        line.contains("broken header: \"GET /hello.txt HTTP/1.1\\x0D\\x0AHost: a\\x0D\\x0A")
            && line.contains("(no PROXY protocol signature)"),
        "{line}"
    );
    // A listener without proxy_protocol still answers it (the same server
    // on another address).
    let srv = Server::start(
        site("pp-plain-other"),
        "server { listen 127.0.0.1:$P0 proxy_protocol; listen 127.0.0.1:$P1; root www; }",
    );
    assert_status(&ask(&srv, 1, CLOSE), 200);
    refused(&srv, CLOSE);
}

#[test]
fn a_truncated_header_then_eof_is_closed_and_logged() {
    let srv = behind_proxy("pp-truncated", "", "");
    for part in [
        &b"PROXY TCP4 192.0.2.1 12"[..],
        &v2_tcp4([192, 0, 2, 1], 1, b"")[..20],
        &V2_SIG[..7],
    ] {
        let mut c = srv.connect(0);
        c.send(part);
        c.shutdown_write();
        c.expect_closed(LIMIT);
    }
    let lines = error_lines(&srv, "broken header: ", 3);
    assert!(
        lines[0].contains("broken header: \"PROXY TCP4 192.0.2.1 12\" (truncated"),
        "{}",
        lines[0]
    );
    for l in &lines {
        assert!(l.contains("(truncated: the connection ended)"), "{l}");
    }
    // Nothing at all and gone (a health check's connect): not news.
    let c = srv.connect(0);
    c.shutdown_write();
    let mut c = c;
    c.expect_closed(LIMIT);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(error_lines(&srv, "broken header: ", 3).len(), 3);
}

#[test]
fn a_slow_header_is_closed_at_client_header_timeout_a_quick_one_served() {
    let srv = behind_proxy(
        "pp-slow",
        "client_header_timeout 1s; error_log stderr info;",
        "",
    );
    // Trickled at 10 bytes a second: 4 s for the header, but the
    // connection's first deadline (1 s after accept) ends it.
    let header = v1("TCP4", "192.0.2.31", "127.0.0.1", 1, 8080);
    let start = Instant::now();
    let mut c = srv.connect(0);
    let mut sent = 0;
    for b in &header {
        if c.try_send(&[*b]).is_err() || start.elapsed() > Duration::from_secs(6) {
            break;
        }
        sent += 1;
        thread::sleep(Duration::from_millis(100));
    }
    c.expect_closed(LIMIT);
    let took = start.elapsed();
    assert!(sent < header.len(), "the whole header went out");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    let line = &error_lines(&srv, "client timed out while reading PROXY protocol", 1)[0];
    assert!(line.contains("after \"PROXY TCP"), "{line}");
    // Trickled within the second: served.
    let mut c = srv.connect(0);
    for piece in header.chunks(8) {
        c.send(piece);
        thread::sleep(Duration::from_millis(40));
    }
    c.send(CLOSE);
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(
        log_lines(&srv, 1)[0],
        "192.0.2.31 \"GET /hello.txt HTTP/1.1\" 200"
    );
}

#[test]
fn oversized_headers_are_closed_and_logged() {
    let srv = behind_proxy("pp-oversized", "", "");
    // v1: no CRLF within 107 bytes (what follows never matters).
    refused(&srv, &[&b"PROXY UNKNOWN "[..], &[b'x'; 200]].concat());
    // A 108-byte line: its LF one byte past the bound.
    let line = [&b"PROXY TCP6 "[..], &[b'f'; 95], b"\r\n", CLOSE].concat();
    refused(&srv, &line);
    // v2: a length past the 4 KiB bound is refused at its 16th byte.
    let mut c = srv.connect(0);
    c.send(&v2(0x21, 0x11, &[7; 4096 - 16 + 1])[..16]);
    c.expect_closed(LIMIT);
    let lines = error_lines(&srv, "broken header: ", 3);
    for l in &lines {
        assert!(l.contains("(header too long)"), "{lines:#?}");
    }
    // What is shown is bounded: 128 bytes and "...".
    assert!(
        lines[0].contains(&format!("{}...\" (header too long)", "x".repeat(20))),
        "{}",
        lines[0]
    );
    // Exactly at the bound: served.
    let r = ask(&srv, 0, &with(&v2(0x21, 0x11, &[7; 4096 - 16]), CLOSE));
    assert_status(&r, 200);
    assert_eq!(
        log_lines(&srv, 1)[0],
        "7.7.7.7 \"GET /hello.txt HTTP/1.1\" 200"
    );
}

#[test]
fn only_a_trusted_proxy_with_real_ip_header_proxy_protocol_names_the_client() {
    let srv = Server::start(
        site("pp-trust"),
        &format!(
            "{FORMAT}\n\
             server {{ listen 127.0.0.1:$P0 proxy_protocol; root www; access_log access.log a;\n\
               set_real_ip_from 127.0.0.0/8; real_ip_header proxy_protocol; }}\n\
             server {{ listen 127.0.0.1:$P1 proxy_protocol; root www; access_log access.log a;\n\
               set_real_ip_from 10.0.0.0/8; real_ip_header proxy_protocol; }}\n\
             server {{ listen 127.0.0.1:$P2 proxy_protocol; root www; access_log access.log a;\n\
               set_real_ip_from 127.0.0.1; }}\n\
             server {{ listen 127.0.0.1:$P3 proxy_protocol; root www; access_log access.log a;\n\
               real_ip_header proxy_protocol; }}"
        ),
    );
    let header = v1("TCP4", "203.0.113.50", "127.0.0.1", 1, 8080);
    for i in 0..4 {
        assert_status(&ask(&srv, i, &with(&header, CLOSE)), 200);
        // One at a time, so the lines come in order.
        log_lines(&srv, i + 1);
    }
    let addrs: Vec<String> = log_lines(&srv, 4)
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    // Trusted: the header's. Not trusted, no real_ip_header proxy_protocol,
    // no set_real_ip_from: the socket's (nginx).
    assert_eq!(
        addrs,
        ["203.0.113.50", "127.0.0.1", "127.0.0.1", "127.0.0.1"]
    );
    // A trusted proxy's X-Real-IP is not read instead.
    let r = ask(
        &srv,
        0,
        &with(
            b"PROXY UNKNOWN\r\n",
            b"GET /hello.txt HTTP/1.1\r\nHost: a\r\nX-Real-IP: 198.51.100.1\r\nConnection: close\r\n\r\n",
        ),
    );
    assert_status(&r, 200);
    assert!(log_lines(&srv, 5)[4].starts_with("127.0.0.1 "));
}

#[test]
fn allow_and_deny_see_the_named_client() {
    let srv = Server::start(
        site("pp-access"),
        "server { listen 127.0.0.1:$P0 proxy_protocol; root www;\n\
           set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;\n\
           location /in/ { allow 192.0.2.0/24; deny all; }\n\
           location /out/ { deny 127.0.0.1; allow all; } }\n\
         server { listen 127.0.0.1:$P1 proxy_protocol; root www;\n\
           location /in/ { allow 192.0.2.0/24; deny all; }\n\
           location /out/ { deny 127.0.0.1; allow all; } }",
    );
    let get = |i: usize, header: &[u8], path: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        ask(&srv, i, &with(header, req.as_bytes())).status
    };
    let inside = v1("TCP4", "192.0.2.5", "127.0.0.1", 1, 8080);
    let outside = v2_tcp4([203, 0, 113, 5], 1, b"");
    // The proxy (127.0.0.1) is not let into /in/ but the client it names is...
    assert_eq!(get(0, &inside, "/in/x.txt"), 200);
    assert_eq!(get(0, &outside, "/in/x.txt"), 403);
    // ...and the proxy is kept out of /out/, not the client it names.
    assert_eq!(get(0, &inside, "/out/x.txt"), 200);
    assert_eq!(get(0, b"PROXY UNKNOWN\r\n", "/out/x.txt"), 403);
    // Without real_ip_header proxy_protocol, the proxy's address decides.
    assert_eq!(get(1, &inside, "/in/x.txt"), 403);
    assert_eq!(get(1, &inside, "/out/x.txt"), 403);
}

#[test]
fn limits_count_the_named_client() {
    let dir = site("pp-limits");
    dir.write("www/big/big.bin", vec![b'z'; 1 << 20]);
    let srv = Server::start(
        dir,
        "server { listen 127.0.0.1:$P0 proxy_protocol; root www;\n\
           set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;\n\
           location /req/ { alias www/; limit_req 1r/m nodelay; limit_req_status 429; }\n\
           location /big/ { limit_rate 32k; limit_conn 1; } }",
    );
    let a = v1("TCP4", "192.0.2.1", "127.0.0.1", 1, 8080);
    let b = v1("TCP4", "192.0.2.2", "127.0.0.1", 1, 8080);
    let get = |header: &[u8], path: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        ask(&srv, 0, &with(header, req.as_bytes())).status
    };
    // One request a minute per client: the proxy's address is shared by
    // all, the clients' are not.
    assert_eq!(get(&a, "/req/hello.txt"), 200);
    assert_eq!(get(&b, "/req/hello.txt"), 200);
    assert_eq!(get(&a, "/req/hello.txt"), 429);
    // One download at a time per client: a's holds its count for 30 s.
    let mut slow = srv.connect(0);
    slow.send(&with(&a, b"GET /big/big.bin HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_status(&slow.read_head_response(), 200);
    let mut other = srv.connect(0);
    other.send(&with(&b, b"GET /big/big.bin HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_status(&other.read_head_response(), 200);
    assert_eq!(get(&a, "/big/big.bin"), 503);
}

#[test]
fn cgi_remote_addr_is_the_named_client() {
    let dir = site("pp-cgi");
    dir.write_script(
        "www/cgi/addr.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s %s\\n' \"$REMOTE_ADDR\" \"$REMOTE_PORT\"\n",
    );
    let srv = Server::start(
        dir,
        "server { listen 127.0.0.1:$P0 proxy_protocol; root www;\n\
           set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;\n\
           location /cgi/ { cgi .sh /bin/sh; } }\n\
         server { listen 127.0.0.1:$P1 proxy_protocol; root www;\n\
           location /cgi/ { cgi .sh /bin/sh; } }",
    );
    let req: &[u8] = b"GET /cgi/addr.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    // nginx's realip takes the header's port too.
    let r = ask(
        &srv,
        0,
        &with(&v1("TCP4", "192.0.2.44", "127.0.0.1", 4711, 80), req),
    );
    assert_status(&r, 200);
    assert_eq!(r.body_str(), "192.0.2.44 4711\n");
    let r = ask(
        &srv,
        0,
        &with(&v2_tcp6("2001:db8::44".parse().unwrap(), 4712), req),
    );
    assert_eq!(r.body_str(), "2001:db8::44 4712\n");
    let r = ask(&srv, 0, &with(&v2_tcp4([192, 0, 2, 45], 4713, b""), req));
    assert_eq!(r.body_str(), "192.0.2.45 4713\n");
    // Untrusted: the socket's address.
    let r = ask(
        &srv,
        1,
        &with(&v1("TCP4", "192.0.2.44", "127.0.0.1", 4711, 80), req),
    );
    assert!(r.body_str().starts_with("127.0.0.1 "), "{}", r.body_str());
    assert_ne!(r.body_str(), "127.0.0.1 4711\n");
}

#[test]
fn an_ipv6_socket_with_a_v2_tcp4_header() {
    if !has_ipv6("an_ipv6_socket_with_a_v2_tcp4_header") {
        return;
    }
    let srv = Server::start(
        site("pp-ipv6"),
        &format!(
            "{FORMAT}\n\
             server {{ listen [::1]:$P0 proxy_protocol; root www; access_log access.log a;\n\
               set_real_ip_from ::1; real_ip_header proxy_protocol;\n\
               location /in/ {{ allow 192.0.2.0/24; deny all; }} }}"
        ),
    );
    let mut c = Conn::connect_to("::1", srv.port(0));
    c.send(&with(
        &v2_tcp4([192, 0, 2, 66], 5000, b""),
        b"GET /in/x.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ));
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"in");
    // Untrusted without the header: ::1 is not let in.
    let mut c = Conn::connect_to("::1", srv.port(0));
    c.send(&with(
        &v2(0x20, 0x00, b""),
        b"GET /in/x.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ));
    assert_status(&c.read_response(), 403);
    assert_eq!(
        log_lines(&srv, 2),
        [
            "192.0.2.66 \"GET /in/x.txt HTTP/1.1\" 200",
            "::1 \"GET /in/x.txt HTTP/1.1\" 403"
        ]
    );
}

#[test]
fn test_flag_rejects_a_proxy_protocol_mix_on_one_address() {
    let dir = TempDir::new("pp-cli");
    let conf = dir.write(
        "mix.conf",
        "server {\n    listen 127.0.0.1:8081 proxy_protocol default_server;\n}\n\
         server {\n    server_name b;\n    listen 127.0.0.1:8081;\n}\n",
    );
    let conf = conf.to_str().unwrap();
    let out = run_cli(&["-t", "-c", conf], dir.path(), LIMIT);
    assert!(
        out.stderr.lines().any(|l| l
            == format!(
                "localserver: [emerg] conflicting \"proxy_protocol\" on 127.0.0.1:8081: every \
                 listen of an address has it, or none does in {conf}:6"
            )),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.status.code(), Some(1));
    // Agreeing, in either order of the flags, with real_ip_header.
    let conf = dir.write(
        "ok.conf",
        "set_real_ip_from 127.0.0.1;\nreal_ip_header proxy_protocol;\n\
         server {\n    listen 127.0.0.1:8081 default_server proxy_protocol;\n}\n\
         server {\n    server_name b;\n    listen 127.0.0.1:8081 proxy_protocol;\n}\n",
    );
    let out = run_cli(&["-t", "-c", conf.to_str().unwrap()], dir.path(), LIMIT);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", out.stderr);
}
