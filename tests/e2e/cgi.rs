//! CGI (CONFIG.md "CGI", RFC 3875): the environment, the body on stdin,
//! output headers (`Status`, `Location`, `Content-Length` or none), 502 for
//! broken scripts, `cgi_timeout` → 504 with the script killed, `cgi_max` →
//! 503, a client that leaves kills its script, slow scripts never block
//! other clients, and no zombie or leaked descriptor remains.
//!
//! Every test writes its own scripts into `www/cgi-bin` of its folder and
//! runs them with the real Python interpreter and `/bin/sh`.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// `NAME=value` lines of the environment, sorted, then `@cwd=`, `@argv0=`
/// and `@stdin=LENGTH`; with a Content-Length.
const ENV_PY: &str = r#"import os, sys
body = sys.stdin.buffer.read()
lines = ["%s=%s" % kv for kv in sorted(os.environ.items())]
lines.append("@cwd=" + os.getcwd())
lines.append("@argv0=" + sys.argv[0])
lines.append("@stdin=%d" % len(body))
out = ("\n".join(lines) + "\n").encode()
sys.stdout.buffer.write(b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(out) + out)
"#;

/// Its stdin back, with a Content-Length.
const ECHO_PY: &str = r#"import sys
body = sys.stdin.buffer.read()
sys.stdout.buffer.write(b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
"#;

/// `cl=CONTENT_LENGTH\n` then its stdin back.
const ECHO_CL_PY: &str = r#"import os, sys
body = sys.stdin.buffer.read()
out = ("cl=%s\n" % os.environ.get("CONTENT_LENGTH", "-")).encode() + body
sys.stdout.buffer.write(b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % len(out) + out)
"#;

/// Copies stdin to stdout as it arrives, without a Content-Length: output
/// starts long before the input ends.
const STREAM_ECHO_PY: &str = r#"import os, sys
out = sys.stdout.buffer
out.write(b"Content-Type: application/octet-stream\r\n\r\n")
out.flush()
while True:
    b = os.read(0, 16384)
    if not b:
        break
    out.write(b)
    out.flush()
"#;

/// A body in three flushed writes, without a Content-Length.
const NOLEN_PY: &str = r#"import sys
out = sys.stdout.buffer
out.write(b"Content-Type: text/plain\r\n\r\n")
for i in range(3):
    out.write(b"part %d\n" % i)
    out.flush()
"#;

/// `first`, a pause of a second, `second`.
const LATE_PY: &str = r#"import sys, time
out = sys.stdout.buffer
out.write(b"Content-Type: text/plain\n\nfirst\n")
out.flush()
time.sleep(2)
out.write(b"second\n")
"#;

const HELLO_PY: &str = r#"import sys
sys.stdout.write("Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n")
"#;

const TEAPOT_SH: &str = "#!/bin/sh
printf 'Status: 418 I'\"'\"'m a teapot\\r\\n'
printf 'Content-Type: text/plain\\r\\n'
printf 'X-Script: yes\\r\\n'
printf '\\r\\n'
printf 'short and stout\\n'
";

const REDIRECT_PY: &str = r#"import sys
sys.stdout.write("Location: http://example.com/elsewhere\r\n\r\n")
"#;

const FAIL_PY: &str = "import sys\nsys.stderr.write('failing on purpose\\n')\nsys.exit(1)\n";

/// Starts a header block, then dies before the blank line.
const HALF_HEAD_PY: &str = r#"import os, sys
sys.stdout.write("Content-Type: text/plain\r\nX-Half: yes\r\n")
sys.stdout.flush()
os._exit(3)
"#;

const BAD_HEAD_PY: &str = r#"import sys
sys.stdout.write("this is not a header line\r\n\r\nbody\n")
"#;

/// Writes its pid to `started-QUERY` in its folder, then sleeps QUERY
/// seconds and answers.
const SLEEP_PY: &str = r#"import os, sys, time
q = os.environ.get("QUERY_STRING", "1")
open("started-" + q, "w").write(str(os.getpid()))
time.sleep(float(q))
sys.stdout.write("Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nawake\n")
"#;

/// Writes its pid to `started-hold`, then answers only once a file named
/// `release` appears in its folder (or after a minute): a script that runs
/// for exactly as long as the test wants, however slow the machine.
const HOLD_PY: &str = r#"import os, sys, time
open("started-hold", "w").write(str(os.getpid()))
end = time.time() + 60
while not os.path.exists("release") and time.time() < end:
    time.sleep(0.01)
sys.stdout.write("Content-Type: text/plain\r\nContent-Length: 9\r\n\r\nreleased\n")
"#;

fn cgi_site_with(extra_top: &str) -> Server {
    let dir = TempDir::new("cgi");
    let py = python3();
    dir.write("www/static.txt", "static\n");
    dir.write("www/cgi-bin/readme.txt", "not a script\n");
    for (name, text) in [
        ("env.py", ENV_PY),
        ("echo.py", ECHO_PY),
        ("echo_cl.py", ECHO_CL_PY),
        ("stream_echo.py", STREAM_ECHO_PY),
        ("nolen.py", NOLEN_PY),
        ("late.py", LATE_PY),
        ("hello.py", HELLO_PY),
        ("teapot.sh", TEAPOT_SH),
        ("redirect.py", REDIRECT_PY),
        ("fail.py", FAIL_PY),
        ("half_head.py", HALF_HEAD_PY),
        ("bad_head.py", BAD_HEAD_PY),
        ("sleep.py", SLEEP_PY),
        ("hold.py", HOLD_PY),
        ("nointerp.bad", "whatever\n"),
    ] {
        dir.write_script(&format!("www/cgi-bin/{name}"), text);
    }
    // A shell script whose grandchild (a Python sleeper) carries the
    // script's folder in its command line.
    let group = format!(
        "#!/bin/sh\n{py} -c 'import time; time.sleep(20)' {}/www/cgi-bin/grandchild-marker &\nwait\n",
        dir.path().display()
    );
    dir.write_script("www/cgi-bin/group.sh", &group);
    let config = format!(
        "{extra_top}
server {{
    listen 127.0.0.1:$P0;
    server_name localhost;
    root www;
    client_max_body_size 8m;
    location /cgi-bin/ {{
        cgi .py {py};
        cgi .sh /bin/sh;
        cgi .bad /nonexistent/interpreter;
        allowed_methods GET HEAD POST;
    }}
}}
"
    );
    Server::start(dir, &config)
}

fn cgi_site() -> Server {
    cgi_site_with("")
}

fn script(srv: &Server, name: &str) -> String {
    srv.dir
        .join("www/cgi-bin")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn env_of(r: &Response) -> BTreeMap<String, String> {
    r.body_str()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[track_caller]
fn var<'a>(env: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    env.get(name)
        .unwrap_or_else(|| panic!("{name} is not in the CGI environment: {env:#?}"))
}

#[test]
fn environment_holds_the_rfc3875_variables() {
    let srv = cgi_site();
    let mut c = srv.connect(0);
    let client_port = c.stream.local_addr().unwrap().port();
    c.send(
        b"POST /cgi-bin/env.py/extra/path?x=1&y=%20z HTTP/1.1\r\n\
          Host: localhost\r\n\
          Content-Type: text/x-test; charset=utf-8\r\n\
          Content-Length: 5\r\n\
          X-Custom: custom value\r\n\
          Proxy: http://evil.example:8080/\r\n\
          Connection: close\r\n\r\nhello",
    );
    let r = c.read_response();
    assert_status(&r, 200);
    let env = env_of(&r);
    let root = srv.dir.join("www");
    let root = root.to_str().unwrap();
    let script = script(&srv, "env.py");

    assert_eq!(var(&env, "REQUEST_METHOD"), "POST");
    assert_eq!(var(&env, "QUERY_STRING"), "x=1&y=%20z");
    assert_eq!(var(&env, "CONTENT_LENGTH"), "5");
    assert_eq!(var(&env, "CONTENT_TYPE"), "text/x-test; charset=utf-8");
    assert_eq!(var(&env, "SCRIPT_NAME"), "/cgi-bin/env.py");
    assert_eq!(var(&env, "PATH_INFO"), "/extra/path");
    let translated = var(&env, "PATH_TRANSLATED");
    assert!(
        translated.starts_with('/') && translated.ends_with("/extra/path"),
        "PATH_TRANSLATED={translated:?}"
    );
    assert_eq!(var(&env, "SERVER_NAME"), "localhost");
    assert_eq!(var(&env, "SERVER_PORT"), srv.port(0).to_string());
    assert_eq!(var(&env, "SERVER_PROTOCOL"), "HTTP/1.1");
    assert!(
        var(&env, "SERVER_SOFTWARE").starts_with("localserver"),
        "SERVER_SOFTWARE={}",
        var(&env, "SERVER_SOFTWARE")
    );
    assert_eq!(var(&env, "GATEWAY_INTERFACE"), "CGI/1.1");
    assert_eq!(var(&env, "REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(var(&env, "REMOTE_PORT"), client_port.to_string());
    assert_eq!(var(&env, "SCRIPT_FILENAME"), script);
    assert_eq!(
        var(&env, "REQUEST_URI"),
        "/cgi-bin/env.py/extra/path?x=1&y=%20z"
    );
    assert_eq!(var(&env, "DOCUMENT_ROOT").trim_end_matches('/'), root);
    assert_eq!(var(&env, "REDIRECT_STATUS"), "200");
    assert_eq!(var(&env, "HTTP_HOST"), "localhost");
    assert_eq!(var(&env, "HTTP_X_CUSTOM"), "custom value");
    // httpoxy: a `Proxy:` header must never become HTTP_PROXY.
    assert!(
        !env.contains_key("HTTP_PROXY"),
        "HTTP_PROXY={:?} came from the request",
        env.get("HTTP_PROXY")
    );
    // The interpreter got the script's absolute path, ran in its folder,
    // and the body on stdin.
    assert_eq!(var(&env, "@argv0"), script);
    assert_eq!(
        var(&env, "@cwd"),
        srv.dir.join("www/cgi-bin").to_str().unwrap()
    );
    assert_eq!(var(&env, "@stdin"), "5");
}

#[test]
fn get_with_query_and_a_shell_script() {
    let srv = cgi_site();
    let r = srv.get("/cgi-bin/env.py?a=1&b=two");
    assert_status(&r, 200);
    let env = env_of(&r);
    assert_eq!(var(&env, "REQUEST_METHOD"), "GET");
    assert_eq!(var(&env, "QUERY_STRING"), "a=1&b=two");
    assert_eq!(var(&env, "@stdin"), "0");
    assert_eq!(env.get("PATH_INFO").map_or("", String::as_str), "");
    // /bin/sh runs .sh scripts.
    let r = srv.get("/cgi-bin/teapot.sh");
    assert_eq!(r.status, 418, "{}", r.describe());
    // A file of the route that is not a script is served as it is.
    let r = srv.get("/cgi-bin/readme.txt");
    assert_status(&r, 200);
    assert_eq!(r.body, b"not a script\n");
    // A missing script is 404, not 502.
    assert_status(&srv.get("/cgi-bin/missing.py"), 404);
    assert_no_children(&srv, Duration::from_secs(2));
}

#[test]
fn post_body_of_1_mib_reaches_stdin_exactly() {
    let srv = cgi_site();
    let data = XorShift::new(42).bytes(1024 * 1024);
    let mut c = srv.connect(0);
    let mut bytes = format!(
        "POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&data);
    let r = c.send_while_reading(bytes);
    assert_status(&r, 200);
    assert_eq!(r.must_header("content-length"), data.len().to_string());
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data, "the echo differs");
}

#[test]
fn script_writing_while_reading_a_1_mib_body_does_not_deadlock() {
    // The script's output fills its pipe long before its input ends: the
    // server must feed stdin and drain stdout at the same time.
    let srv = cgi_site();
    let data = XorShift::new(43).bytes(1024 * 1024);
    let mut c = srv.connect(0);
    let mut bytes = format!(
        "POST /cgi-bin/stream_echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&data);
    let r = c.send_while_reading(bytes);
    assert_status(&r, 200);
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data, "the echo differs");
}

#[test]
fn chunked_post_reaches_stdin_decoded_with_content_length() {
    let srv = cgi_site();
    let data = XorShift::new(44).bytes(300 * 1024);
    let mut c = srv.connect(0);
    let mut bytes =
        b"POST /cgi-bin/echo_cl.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    bytes.extend(chunked(&data, &[1, 4096, 65_536, 3, 100_000]));
    let r = c.send_while_reading(bytes);
    assert_status(&r, 200);
    let head = format!("cl={}\n", data.len());
    assert!(
        r.body.starts_with(head.as_bytes()),
        "CONTENT_LENGTH must be the decoded size {}:\n{}",
        data.len(),
        r.describe()
    );
    assert!(r.body[head.len()..] == data, "the decoded body differs");
}

#[test]
fn output_without_length_is_chunked_for_http11() {
    let srv = cgi_site();
    let mut c = srv.connect(0);
    c.send(b"GET /cgi-bin/nolen.py HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_date_and_server(&r);
    assert_eq!(
        r.header("transfer-encoding").map(str::to_ascii_lowercase),
        Some("chunked".to_string()),
        "{}",
        r.describe()
    );
    assert!(r.header("content-length").is_none());
    assert_eq!(r.body, b"part 0\npart 1\npart 2\n");
    assert_content_type(&r, &["text/plain"]);
    // The connection stays usable.
    c.send(b"GET /cgi-bin/hello.py HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"hello\n");
}

#[test]
fn output_without_length_is_close_delimited_for_http10() {
    // HTTP.md rule 25: never chunked towards HTTP/1.0.
    let srv = cgi_site();
    let mut c = srv.connect(0);
    c.send(b"GET /cgi-bin/nolen.py HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_code(&r, 200);
    assert!(
        r.header("transfer-encoding").is_none(),
        "chunked towards HTTP/1.0:\n{}",
        r.describe()
    );
    assert_eq!(r.body, b"part 0\npart 1\npart 2\n");
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn output_is_streamed_as_the_script_writes_it() {
    let srv = cgi_site();
    let mut c = srv.connect(0);
    let start = Instant::now();
    c.send(b"GET /cgi-bin/late.py HTTP/1.1\r\nHost: localhost\r\n\r\n");
    while !contains(c.buffered(), b"first\n") {
        match c.fill() {
            Ok(0) => panic!("closed before the first piece"),
            Ok(_) => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
    // Streamed: the first piece is here while the script still sleeps (a
    // held-back answer would bring both pieces at once). Relative, not an
    // absolute time, so a slow interpreter start on a loaded machine passes.
    assert!(
        !contains(c.buffered(), b"second\n"),
        "both pieces arrived together after {:?}: output was held back until the script ended",
        start.elapsed()
    );
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"first\nsecond\n");
}

#[test]
fn status_header_is_passed_on() {
    let srv = cgi_site();
    let r = srv.get("/cgi-bin/teapot.sh");
    assert_eq!(r.status, 418, "{}", r.describe());
    assert_eq!(r.version, "HTTP/1.1");
    assert_date_and_server(&r);
    assert_eq!(r.must_header("x-script"), "yes");
    assert!(
        r.header("status").is_none(),
        "the Status header was forwarded"
    );
    assert_eq!(r.body, b"short and stout\n");
}

#[test]
fn location_alone_is_302() {
    let srv = cgi_site();
    let r = srv.get("/cgi-bin/redirect.py");
    assert_status(&r, 302);
    assert_eq!(r.must_header("location"), "http://example.com/elsewhere");
}

#[test]
fn head_request_gets_no_body() {
    let srv = cgi_site();
    let mut c = srv.connect(0);
    c.send(b"HEAD /cgi-bin/hello.py HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_head_response();
    assert_status(&r, 200);
    c.send(b"HEAD /cgi-bin/nolen.py HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_head_response();
    assert_status(&r, 200);
    // No body bytes came with either: the next answer parses.
    c.send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"static\n");
}

#[test]
fn failing_scripts_get_502() {
    let srv = cgi_site();
    for (path, what) in [
        ("/cgi-bin/fail.py", "exit 1 without output"),
        ("/cgi-bin/half_head.py", "exit in the middle of the headers"),
        (
            "/cgi-bin/nointerp.bad",
            "an interpreter that does not exist",
        ),
        (
            "/cgi-bin/bad_head.py",
            "an output line that is not a header",
        ),
    ] {
        let mut c = srv.connect(0);
        c.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        let r = c
            .try_read_response()
            .unwrap_or_else(|| panic!("{what}: closed without an answer"));
        assert!(
            r.status == 502,
            "{what}: expected 502, got:\n{}",
            r.describe()
        );
        assert_status(&r, 502);
        assert!(
            r.header("x-half").is_none(),
            "{what}: half a header block was sent on"
        );
    }
    assert_status(&srv.get("/static.txt"), 200);
    assert_no_children(&srv, Duration::from_secs(2));
}

#[test]
fn timeout_is_504_and_the_script_is_killed() {
    let srv = cgi_site_with("cgi_timeout 1s;");
    let script = script(&srv, "sleep.py");
    let _reaper = Reaper(script.clone());
    let start = Instant::now();
    let mut c = srv.connect(0);
    c.send(b"GET /cgi-bin/sleep.py?15 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response();
    let elapsed = start.elapsed();
    assert_status(&r, 504);
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_secs(3),
        "504 after {elapsed:?}, expected about 1 s"
    );
    assert!(srv.dir.join("www/cgi-bin/started-15").exists());
    assert_no_process(&script, Duration::from_secs(2));
    assert_no_children(&srv, Duration::from_secs(2));
    // The connection (if the server kept it) and the server go on.
    if c.try_send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_ok()
        && let Some(r) = c.try_read_response()
    {
        assert_status(&r, 200);
    }
    assert_status(&srv.get("/cgi-bin/hello.py"), 200);
}

#[test]
fn timeout_kills_what_the_script_started_too() {
    // A shell script that waits for a child of its own: killing the shell
    // alone would leave the sleeper holding the output pipe.
    let srv = cgi_site_with("cgi_timeout 1s;");
    let needle = script(&srv, "grandchild-marker");
    let _reaper = Reaper(needle.clone());
    let start = Instant::now();
    let r = srv.get("/cgi-bin/group.sh");
    assert_status(&r, 504);
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_no_process(&needle, Duration::from_secs(2));
    assert_no_process(&script(&srv, "group.sh"), Duration::from_secs(2));
}

/// Send a request for `sleep.py?SECONDS` and wait until the script runs.
fn start_sleeper(srv: &Server, seconds: &str) -> Conn {
    let mut c = srv.connect(0);
    c.send(
        format!("GET /cgi-bin/sleep.py?{seconds} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    );
    let started = srv.dir.join(&format!("www/cgi-bin/started-{seconds}"));
    assert!(
        wait_until(Duration::from_secs(5), || started.exists()),
        "sleep.py?{seconds} did not start"
    );
    c
}

/// `n` static GETs on fresh connections, each answered in full; their
/// latencies, sorted.
fn static_gets(srv: &Server, n: usize) -> Vec<Duration> {
    let mut took: Vec<Duration> = (0..n)
        .map(|i| {
            let t = Instant::now();
            let r = srv.get("/static.txt");
            let took = t.elapsed();
            assert_status(&r, 200);
            assert_eq!(r.body, b"static\n", "static GET {i}");
            took
        })
        .collect();
    took.sort();
    took
}

#[test]
fn a_slow_script_does_not_block_other_clients() {
    // The script runs until the test releases it, so every static GET below
    // is answered while it runs, whatever the machine's load: a loop that
    // waited for the script would answer none of them (each read gives up
    // after the harness's IO_TIMEOUT). Their speed is compared with GETs
    // timed just before, on the same machine at the same moment.
    let srv = cgi_site();
    let _reaper = Reaper(script(&srv, "hold.py"));
    let calm = static_gets(&srv, 20);
    let mut slow = srv.connect(0);
    slow.send(b"GET /cgi-bin/hold.py HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(
        wait_until(Duration::from_secs(10), || srv
            .dir
            .join("www/cgi-bin/started-hold")
            .exists()),
        "hold.py did not start"
    );
    let held = static_gets(&srv, 20);
    assert!(
        !pids_with_cmdline(&script(&srv, "hold.py")).is_empty(),
        "hold.py ended before its release"
    );
    srv.dir.write("www/cgi-bin/release", "");
    let r = slow.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"released\n");
    // Medians: one GET descheduled by another process is not the loop; a
    // loop that a running script slows down slows them all.
    let (calm, held) = (calm[calm.len() / 2], held[held.len() / 2]);
    assert!(
        held <= calm * 10 + Duration::from_millis(30),
        "static GETs took {held:?} (median) while a CGI ran, {calm:?} before"
    );
}

#[test]
fn cgi_max_answers_503_past_the_limit() {
    let srv = cgi_site_with("cgi_max 1;");
    let _reaper = Reaper(script(&srv, "sleep.py"));
    let mut slow = start_sleeper(&srv, "1.5");
    let r = srv.get("/cgi-bin/hello.py");
    assert_status(&r, 503);
    // Static files are not limited.
    assert_status(&srv.get("/static.txt"), 200);
    assert_eq!(slow.read_response().body, b"awake\n");
    // The slot is free again once the script has ended.
    assert!(
        wait_until(Duration::from_secs(2), || srv
            .get("/cgi-bin/hello.py")
            .status
            == 200),
        "still 503 after the running script ended"
    );
    assert_no_children(&srv, Duration::from_secs(2));
}

#[test]
fn a_client_that_leaves_gets_its_script_killed() {
    let srv = cgi_site();
    let script = script(&srv, "sleep.py");
    let _reaper = Reaper(script.clone());
    let c = start_sleeper(&srv, "20");
    assert!(!pids_with_cmdline(&script).is_empty());
    drop(c);
    assert_no_process(&script, Duration::from_secs(3));
    assert_no_children(&srv, Duration::from_secs(2));
    assert_status(&srv.get("/cgi-bin/hello.py"), 200);
}

#[test]
fn many_cgi_requests_leave_no_zombie_and_no_descriptor() {
    let srv = cgi_site();
    // Warm up (log files, listeners, caches), then count.
    assert_status(&srv.get("/cgi-bin/hello.py"), 200);
    assert_no_children(&srv, Duration::from_secs(2));
    let fds_before = fd_count(srv.pid());

    let port = srv.port(0);
    let handles: Vec<_> = (0..20)
        .map(|t| {
            thread::spawn(move || {
                let mut c = Conn::connect(port);
                for i in 0..5u64 {
                    match (t + i) % 4 {
                        0 => {
                            c.send(b"GET /cgi-bin/hello.py HTTP/1.1\r\nHost: localhost\r\n\r\n");
                            assert_eq!(c.read_response().body, b"hello\n");
                        }
                        1 => {
                            let data = XorShift::new(t * 100 + i).bytes(64 * 1024);
                            let mut req = format!(
                                "POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
                                data.len()
                            )
                            .into_bytes();
                            req.extend_from_slice(&data);
                            let r = c.send_while_reading(req);
                            assert_eq!(r.status, 200);
                            assert!(r.body == data, "echo differs");
                        }
                        2 => {
                            c.send(b"GET /cgi-bin/nolen.py HTTP/1.1\r\nHost: localhost\r\n\r\n");
                            assert_eq!(c.read_response().body, b"part 0\npart 1\npart 2\n");
                        }
                        _ => {
                            c.send(b"GET /cgi-bin/fail.py HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
                            assert_eq!(c.read_response().status, 502);
                            c = Conn::connect(port);
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_no_children(&srv, Duration::from_secs(3));
    let pid = srv.pid();
    assert!(
        wait_until(Duration::from_secs(3), || fd_count(pid) <= fds_before),
        "descriptors: {fds_before} before, {} after 100 CGI requests",
        fd_count(pid)
    );
}

/// `add_header` goes on a script's answer as on every response of its
/// route (CONFIG.md), whatever the script's status, after its own headers.
#[test]
fn route_add_headers_go_on_script_answers() {
    let dir = TempDir::new("cgi-add-header");
    let py = python3();
    dir.write_script("www/cgi-bin/hello.py", HELLO_PY);
    dir.write_script("www/cgi-bin/teapot.sh", TEAPOT_SH);
    let srv = Server::start(
        dir,
        &format!(
            "server {{
    listen 127.0.0.1:$P0;
    root www;
    location /cgi-bin/ {{
        cgi .py {py};
        cgi .sh /bin/sh;
        add_header X-Frame-Options DENY;
        add_header X-Always yes always;
    }}
}}
"
        ),
    );
    for (path, status, body) in [
        ("/cgi-bin/hello.py", 200, &b"hello\n"[..]),
        ("/cgi-bin/teapot.sh", 418, &b"short and stout\n"[..]),
    ] {
        let r = srv.get(path);
        assert_eq!((r.status, &r.body[..]), (status, body), "{}", r.describe());
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("x-always"), Some("yes"), "{path}");
        if status == 418 {
            let at = |name: &str| r.headers.iter().position(|(n, _)| n == name).unwrap();
            assert!(at("X-Script") < at("X-Frame-Options"), "{}", r.describe());
        }
    }
}

#[test]
fn remote_addr_is_the_client_a_trusted_proxy_names() {
    let srv = cgi_site_with("set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;");
    let r = srv.raw(
        "GET /cgi-bin/env.py HTTP/1.1\r\nHost: localhost\r\n\
         X-Forwarded-For: 203.0.113.9, 198.51.100.7, 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_status(&r, 200);
    assert_eq!(var(&env_of(&r), "REMOTE_ADDR"), "198.51.100.7");
}
