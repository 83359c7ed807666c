//! Status codes other than 200: `return`, 405/501/505, malformed requests
//! (400/414/431, each followed by a close), 404 with built-in and custom
//! pages (HTTP.md "Lines and fields", "Host", "Responses"; CONFIG.md routes).

use std::time::Duration;

use crate::common::*;

const CLOSE_WITHIN: Duration = Duration::from_secs(3);

fn site() -> Server {
    let dir = TempDir::new("errors");
    dir.write("www/index.html", "home\n");
    dir.write("www/page.html", "page\n");
    dir.write("www/err/404.html", "<h1>custom not found</h1>\n");
    dir.write("www/err/403.html", "<h1>custom forbidden</h1>\n");
    dir.mkdir("www/closed");
    dir.mkdir("www/locked");
    Server::start(
        dir,
        r#"
server {
    listen 127.0.0.1:$P0;
    root www;

    location = /old { return 301 /new-place; }
    location = /temp { return 302 http://example.test/elsewhere?x=1; }
    location = /see { return 303 /other; }
    location = /tmp307 { return 307 /again; }
    location = /perm308 { return 308 /moved; }
    location = /hello { return 200 "hello, text"; }
    location = /teapot { return 418; }
    location /ro/ { allowed_methods GET; }
    location /rw/ { allowed_methods GET POST DELETE; }
    location /locked/ { error_page 403 /err/403.html; }
}

server {
    listen 127.0.0.1:$P1;
    root www;
    error_page 404 /err/404.html;
    error_page 403 /err/missing-403.html;
}
"#,
    )
}

fn get(srv: &Server, path: &str) -> Response {
    srv.get(path)
}

// ---- return ---------------------------------------------------------------

#[test]
fn return_301_with_location() {
    let srv = site();
    let r = get(&srv, "/old");
    assert_status(&r, 301);
    assert_eq!(r.must_header("location"), "/new-place");
    assert_date_and_server(&r);
    assert_eq!(
        r.must_header("content-length"),
        r.body.len().to_string(),
        "Content-Length must frame the body"
    );
}

#[test]
fn return_302_with_absolute_url() {
    let srv = site();
    let r = get(&srv, "/temp");
    assert_status(&r, 302);
    assert_eq!(
        r.must_header("location"),
        "http://example.test/elsewhere?x=1"
    );
}

#[test]
fn return_303_307_308_carry_location() {
    let srv = site();
    for (path, code, loc) in [
        ("/see", 303, "/other"),
        ("/tmp307", 307, "/again"),
        ("/perm308", 308, "/moved"),
    ] {
        let r = get(&srv, path);
        assert_status(&r, code);
        assert_eq!(r.must_header("location"), loc, "{path}");
    }
}

#[test]
fn return_is_exact_match_only() {
    let srv = site();
    // `location = /old` does not match /old/x or /older.
    assert_status(&get(&srv, "/old/x"), 404);
    assert_status(&get(&srv, "/older"), 404);
}

#[test]
fn return_200_with_text_body() {
    let srv = site();
    let r = get(&srv, "/hello");
    assert_status(&r, 200);
    assert_eq!(r.body, b"hello, text");
    assert_content_type(&r, &["text/plain", "text/plain; charset=utf-8"]);
    assert_eq!(r.must_header("content-length"), "11");
}

#[test]
fn return_other_code_without_text() {
    let srv = site();
    let r = get(&srv, "/teapot");
    assert_eq!(r.status, 418, "{}", r.describe());
}

#[test]
fn return_applies_whatever_the_method() {
    // Order of decisions: location → return → method. A POST to a return
    // route gets the redirect, not 405.
    let srv = site();
    let r =
        srv.raw("POST /old HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_status(&r, 301);
    assert_eq!(r.must_header("location"), "/new-place");
}

// ---- methods ----------------------------------------------------------------

fn allow_set(r: &Response) -> Vec<String> {
    let mut v: Vec<String> = r
        .must_header("allow")
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn method_not_allowed_405_with_allow() {
    let srv = site();
    for req in [
        "DELETE / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "POST /ro/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "PUT /page.html HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ] {
        let r = srv.raw(req);
        assert_status(&r, 405);
        assert_eq!(allow_set(&r), ["GET", "HEAD"], "{req:?}");
        assert_date_and_server(&r);
    }
}

#[test]
fn allow_lists_the_route_methods() {
    let srv = site();
    let r =
        srv.raw("PUT /rw/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_status(&r, 405);
    assert_eq!(allow_set(&r), ["DELETE", "GET", "HEAD", "POST"]);
}

#[test]
fn head_is_allowed_where_get_is() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(b"HEAD /page.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = c.read_head_response();
    assert_status(&r, 200);
}

#[test]
fn unknown_method_501() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(b"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 501);
    assert_date_and_server(&r);
    c.expect_closed(CLOSE_WITHIN);
}

#[test]
fn methods_are_case_sensitive() {
    // HTTP.md rule 12: `get` is not GET, it is an unknown method.
    let srv = site();
    let mut c = srv.connect(0);
    c.send(b"get / HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 501);
    c.expect_closed(CLOSE_WITHIN);
}

#[test]
fn http2_version_505() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 505);
    c.expect_closed(CLOSE_WITHIN);
}

#[test]
fn http12_is_served_as_11() {
    let srv = site();
    let r = srv.raw("GET /page.html HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_status(&r, 200);
    assert_eq!(r.body, b"page\n");
}

// ---- 400 and friends, each followed by a close ------------------------------

/// Send `req` on a fresh connection; expect `status` then EOF.
#[track_caller]
fn expect_error_then_close(srv: &Server, req: &[u8], status: u16) {
    let mut c = srv.connect(0);
    c.send(req);
    let r = c.read_response();
    assert!(
        r.status == status,
        "request {:?}: expected {status}, got:\n{}",
        String::from_utf8_lossy(req),
        r.describe()
    );
    assert_status(&r, status);
    assert_date_and_server(&r);
    c.expect_closed(CLOSE_WITHIN);
}

#[test]
fn bad_request_missing_host_on_11() {
    let srv = site();
    expect_error_then_close(&srv, b"GET / HTTP/1.1\r\n\r\n", 400);
}

#[test]
fn bad_request_two_hosts_or_invalid_host() {
    let srv = site();
    for req in [
        &b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: user@h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h/x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h:port\r\n\r\n",
    ] {
        expect_error_then_close(&srv, req, 400);
    }
}

#[test]
fn bad_request_bare_cr() {
    let srv = site();
    expect_error_then_close(&srv, b"GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", 400);
    expect_error_then_close(&srv, b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400);
}

#[test]
fn bad_request_obs_fold() {
    let srv = site();
    expect_error_then_close(
        &srv,
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n  continued\r\n\r\n",
        400,
    );
    expect_error_then_close(
        &srv,
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tcontinued\r\n\r\n",
        400,
    );
}

#[test]
fn bad_request_space_before_colon() {
    let srv = site();
    expect_error_then_close(
        &srv,
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo : bar\r\n\r\n",
        400,
    );
    expect_error_then_close(&srv, b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
}

#[test]
fn bad_request_transfer_encoding_with_content_length() {
    let srv = site();
    expect_error_then_close(
        &srv,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    expect_error_then_close(
        &srv,
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn bad_request_content_length_syntax() {
    let srv = site();
    for cl in [
        "+5",
        "-1",
        "0x5",
        "1 0",
        "",
        "99999999999999999999999",
        "5, 6",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: {cl}\r\n\r\nhello");
        expect_error_then_close(&srv, req.as_bytes(), 400);
    }
}

#[test]
fn bad_request_line_syntax() {
    let srv = site();
    for req in [
        &b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET /\tHTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.11\r\nHost: a\r\n\r\n",
        b"GET / http/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1\r\nHost: a\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        expect_error_then_close(&srv, req, 400);
    }
}

#[test]
fn bad_request_field_syntax() {
    let srv = site();
    for req in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nBad(Name): x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Nul: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nno-colon-here\r\n\r\n",
    ] {
        expect_error_then_close(&srv, req, 400);
    }
}

#[test]
fn bad_request_transfer_encoding_in_http10() {
    let srv = site();
    expect_error_then_close(
        &srv,
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn unknown_transfer_coding_501() {
    let srv = site();
    expect_error_then_close(
        &srv,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
}

#[test]
fn request_line_too_long_414() {
    let srv = site();
    let req = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9 * 1024));
    expect_error_then_close(&srv, req.as_bytes(), 414);
}

#[test]
fn head_too_large_431() {
    let srv = site();
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..20 {
        req.push_str(&format!("X-Filler-{i}: {}\r\n", "v".repeat(1000)));
    }
    req.push_str("\r\n");
    expect_error_then_close(&srv, req.as_bytes(), 431);
}

#[test]
fn too_many_fields_431() {
    let srv = site();
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..150 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    expect_error_then_close(&srv, req.as_bytes(), 431);
}

#[test]
fn empty_lines_before_request_line_are_ignored() {
    // RFC 9112 §2.2.
    let srv = site();
    let r = srv.raw("\r\n\r\nGET /page.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_status(&r, 200);
    assert_eq!(r.body, b"page\n");
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    // HTTP.md rule 8: a bare LF ending a head line is accepted.
    let srv = site();
    let r = srv.raw("GET /page.html HTTP/1.1\nHost: a\nConnection: close\n\n");
    assert_status(&r, 200);
    assert_eq!(r.body, b"page\n");
}

#[test]
fn server_survives_bad_requests() {
    let srv = site();
    expect_error_then_close(&srv, b"\x00\x01\x02 garbage\r\n\r\n", 400);
    let r = srv.get("/page.html");
    assert_status(&r, 200);
    assert_eq!(r.body, b"page\n");
}

// ---- 404 / 403 pages --------------------------------------------------------

#[test]
fn not_found_builtin_page() {
    let srv = site();
    let r = get(&srv, "/no/such/file.html");
    assert_status(&r, 404);
    assert_content_type(&r, &["text/html; charset=utf-8", "text/html"]);
    assert!(
        contains(&r.body, b"404"),
        "built-in page should say 404:\n{}",
        r.describe()
    );
    assert_eq!(r.must_header("content-length"), r.body.len().to_string());
    assert_date_and_server(&r);
}

#[test]
fn not_found_custom_error_page() {
    let srv = site();
    let r = srv.get_host(1, "localhost", "/no/such/file.html");
    assert_status(&r, 404);
    assert_eq!(r.body, b"<h1>custom not found</h1>\n");
    assert_content_type(&r, &["text/html; charset=utf-8", "text/html"]);
    assert_eq!(r.must_header("content-length"), r.body.len().to_string());
}

#[test]
fn custom_error_page_keeps_the_connection_usable() {
    let srv = site();
    let mut c = srv.connect(1);
    c.send(b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\nGET /page.html HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 404);
    assert_eq!(r.body, b"<h1>custom not found</h1>\n");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"page\n");
}

#[test]
fn error_page_with_missing_file_sends_builtin_page() {
    let srv = site();
    // Server 1 says `error_page 403 /err/missing-403.html`, which does not exist.
    let reference = get(&srv, "/closed/"); // server 0: built-in 403
    assert_status(&reference, 403);
    let r = srv.get_host(1, "localhost", "/closed/");
    assert_status(&r, 403);
    assert_eq!(
        r.body_str(),
        reference.body_str(),
        "a missing error_page target must give the built-in page"
    );
}

#[test]
fn error_page_in_a_location() {
    let srv = site();
    let r = get(&srv, "/locked/");
    assert_status(&r, 403);
    assert_eq!(r.body, b"<h1>custom forbidden</h1>\n");
    // Elsewhere on the same server the built-in page is used.
    let r = get(&srv, "/closed/");
    assert_status(&r, 403);
    assert!(!contains(&r.body, b"custom forbidden"));
}

#[test]
fn builtin_pages_differ_by_status() {
    let srv = site();
    let nf = get(&srv, "/nope");
    let fb = get(&srv, "/closed/");
    assert_status(&nf, 404);
    assert_status(&fb, 403);
    assert_ne!(nf.body, fb.body);
    assert!(contains(&fb.body, b"403"));
}
