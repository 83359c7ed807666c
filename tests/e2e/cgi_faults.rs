//! CGI scripts that misbehave (issue 7): a script that ignores SIGTERM, one
//! that leaves a grandchild holding its stdout, one that writes 64 MiB to a
//! reader (1 GiB with `LOCALSERVER_SOAK=1`) and 1 GiB to a client that
//! stops reading, broken or oversized header blocks, no output at all, a
//! script that never reads a large body, and one that closes stdout but
//! keeps running. Each answer must end, every process
//! must go, and after each test the server has no child left and its
//! descriptor count is back at its baseline.
//!
//! Scripts are written by each test into `www/cgi-bin` of its folder; pid
//! files land next to them, so a test can check a given process is gone.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// `cgi_timeout` of most tests: short, so a hung script costs little.
const CGI_TIMEOUT: &str = "2s";

/// Ignores SIGTERM, writes its pid, sleeps.
const STUBBORN_PY: &str = r#"import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
open("stubborn.pid", "w").write(str(os.getpid()))
time.sleep(30)
"#;

/// Answers, leaves a grandchild that holds stdout open, and exits.
const ORPHAN_SH: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\nparent done\\n'
sleep 30 &
echo $! > orphan.pid
exit 0
";

/// Answers, closes its stdout, and keeps running.
// The pid file is written before stdout closes: the server may kill the
// script as soon as its answer is complete, before a later line would run.
const CLOSER_SH: &str = "#!/bin/sh
echo $$ > closer.pid
printf 'Content-Type: text/plain\\r\\n\\r\\nbye\\n'
exec >&-
sleep 30
";

/// 1 GiB of `x` (or as many MiB as the query string says) with a
/// Content-Length, recording in `progress` how many MiB it has written so
/// far.
const GIGABYTE_PY: &str = r#"import os, sys
mib = int(os.environ.get("QUERY_STRING") or 1024)
out = sys.stdout.buffer
out.write(b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % (mib << 20))
chunk = b"x" * (1 << 20)
open("gigabyte.pid", "w").write(str(os.getpid()))
for i in range(mib):
    out.write(chunk)
    out.flush()
    with open("progress.tmp", "w") as f:
        f.write(str(i + 1))
    os.rename("progress.tmp", "progress")
"#;

/// A broken header block chosen by the query string.
const BAD_HEADS_PY: &str = r#"import os, sys
cases = {
    "nocolon": b"Content-Type text/plain\r\n\r\nbody\n",
    "space_in_name": b"Content Type: text/plain\r\n\r\nbody\n",
    "space_before_colon": b"Content-Type : text/plain\r\n\r\nbody\n",
    "empty_name": b": x\r\nContent-Type: text/plain\r\n\r\nbody\n",
    "status_not_a_number": b"Status: abc\r\nContent-Type: text/plain\r\n\r\nbody\n",
    "status_out_of_range": b"Status: 1000 Big\r\nContent-Type: text/plain\r\n\r\nbody\n",
    "nul_in_value": b"X-A: a\x00b\r\nContent-Type: text/plain\r\n\r\nbody\n",
    "obs_fold": b"X-A: a\r\n b\r\nContent-Type: text/plain\r\n\r\nbody\n",
    "bad_length": b"Content-Type: text/plain\r\nContent-Length: abc\r\n\r\nbody\n",
    "negative_length": b"Content-Type: text/plain\r\nContent-Length: -5\r\n\r\nbody\n",
    "binary_line": b"\xff\xfe\x01\x02\r\n\r\nbody\n",
}
sys.stdout.buffer.write(cases[os.environ["QUERY_STRING"]])
"#;

/// A header block larger than any server limit, by one long field or by
/// many short ones, chosen by the query string.
const HUGE_HEAD_PY: &str = r#"import os, sys
out = sys.stdout.buffer
if os.environ["QUERY_STRING"] == "long":
    out.write(b"X-Big: " + b"a" * 70000 + b"\r\n")
else:
    for i in range(5000):
        out.write(b"X-Field-%d: value\r\n" % i)
out.write(b"Content-Type: text/plain\r\n\r\nbody\n")
"#;

/// Answers at once without reading its stdin.
const DEAF_PY: &str = r#"import sys
sys.stdout.write("Content-Type: text/plain\r\nContent-Length: 9\r\n\r\nignored!\n")
"#;

const HELLO_PY: &str = r#"import sys
sys.stdout.write("Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n")
"#;

fn site(extra_top: &str) -> Server {
    let dir = TempDir::new("cgi-faults");
    let py = python3();
    dir.write("www/static.txt", "static\n");
    for (name, text) in [
        ("stubborn.py", STUBBORN_PY),
        ("orphan.sh", ORPHAN_SH),
        ("closer.sh", CLOSER_SH),
        ("gigabyte.py", GIGABYTE_PY),
        ("bad_heads.py", BAD_HEADS_PY),
        ("huge_head.py", HUGE_HEAD_PY),
        ("deaf.py", DEAF_PY),
        ("hello.py", HELLO_PY),
        ("silent.sh", "#!/bin/sh\nexit 0\n"),
        (
            "silent_closed.sh",
            "#!/bin/sh\nexec >&-\nsleep 0.2\nexit 0\n",
        ),
    ] {
        dir.write_script(&format!("www/cgi-bin/{name}"), text);
    }
    let config = format!(
        "{extra_top}
server {{
    listen 127.0.0.1:$P0;
    server_name localhost;
    root www;
    client_max_body_size 32m;
    location /cgi-bin/ {{
        cgi .py {py};
        cgi .sh /bin/sh;
        allowed_methods GET HEAD POST;
    }}
}}
"
    );
    let srv = Server::start(dir, &config);
    // Warm up (listeners, log, caches) so the baseline holds what stays.
    assert_status(&srv.get("/cgi-bin/hello.py"), 200);
    assert_status(&srv.get("/static.txt"), 200);
    assert_no_children(&srv, Duration::from_secs(2));
    srv
}

fn short_site() -> Server {
    site(&format!("cgi_timeout {CGI_TIMEOUT};"))
}

/// Kills (by pid, from the pid files) whatever a failing test left behind.
struct PidFiles(Vec<std::path::PathBuf>);

impl Drop for PidFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            if let Some(pid) = read_pid(p)
                && alive(pid)
            {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

fn cgi_file(srv: &Server, name: &str) -> std::path::PathBuf {
    srv.dir.join("www/cgi-bin").join(name)
}

fn read_pid(p: &std::path::Path) -> Option<u32> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Whether `pid` runs (a zombie counts as gone: it holds nothing).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                .unwrap_or("?");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Wait for the pid file, then return the pid in it.
#[track_caller]
fn pid_from(path: &std::path::Path) -> u32 {
    let mut pid = None;
    assert!(
        wait_until(Duration::from_secs(5), || {
            pid = read_pid(path);
            pid.is_some()
        }),
        "{} never appeared",
        path.display()
    );
    pid.unwrap_or(0)
}

#[track_caller]
fn assert_gone(pid: u32, what: &str, limit: Duration) {
    assert!(
        wait_until(limit, || !alive(pid)),
        "{what} (pid {pid}) still runs {limit:?} later"
    );
}

/// No child of the server remains and its descriptors are back to `fds`.
#[track_caller]
fn assert_clean(srv: &Server, fds: usize) {
    assert_no_children(srv, Duration::from_secs(3));
    let pid = srv.pid();
    assert!(
        wait_until(Duration::from_secs(3), || fd_count(pid) <= fds),
        "server descriptors: {fds} at the start, {} now",
        fd_count(pid)
    );
    let r = srv.get("/static.txt");
    assert_status(&r, 200);
    assert_eq!(r.body, b"static\n");
}

/// Resident memory of a process, in KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Send `GET path`, read up to the end of the response head; returns the
/// stream, the head and the body bytes already received.
fn open_stream(srv: &Server, path: &str) -> (TcpStream, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", srv.port(0))).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "closed before the head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let rest = buf[end..].to_vec();
    (s, head, rest)
}

#[test]
fn script_ignoring_sigterm_is_killed_at_the_timeout() {
    let srv = short_site();
    let fds = fd_count(srv.pid());
    let pidfile = cgi_file(&srv, "stubborn.pid");
    let _guard = PidFiles(vec![pidfile.clone()]);
    let start = Instant::now();
    let r = srv.get("/cgi-bin/stubborn.py");
    assert_status(&r, 504);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(4),
        "504 after {took:?}, cgi_timeout is {CGI_TIMEOUT}"
    );
    assert_gone(
        pid_from(&pidfile),
        "the SIGTERM-ignoring script",
        Duration::from_secs(2),
    );
    assert_clean(&srv, fds);
}

#[test]
fn grandchild_holding_stdout_does_not_hold_the_answer() {
    let srv = short_site();
    let fds = fd_count(srv.pid());
    let pidfile = cgi_file(&srv, "orphan.pid");
    let _guard = PidFiles(vec![pidfile.clone()]);
    let start = Instant::now();
    let mut c = srv.connect(0);
    c.send(b"GET /cgi-bin/orphan.sh HTTP/1.1\r\nHost: localhost\r\n\r\n");
    // The whole answer (a chunked body with its last chunk) comes when the
    // script exits, not when the grandchild lets go or the timeout hits.
    let r = c.read_response();
    let took = start.elapsed();
    assert_status(&r, 200);
    assert_eq!(r.body, b"parent done\n");
    assert!(
        took < Duration::from_millis(1500),
        "the answer took {took:?}: it waited for the grandchild (cgi_timeout {CGI_TIMEOUT})"
    );
    assert_gone(pid_from(&pidfile), "the grandchild", Duration::from_secs(2));
    // The connection goes on.
    c.send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(c.read_response().body, b"static\n");
    drop(c);
    assert_clean(&srv, fds);
}

#[test]
fn script_closing_stdout_but_running_on_completes_the_answer() {
    let srv = short_site();
    let fds = fd_count(srv.pid());
    let pidfile = cgi_file(&srv, "closer.pid");
    let _guard = PidFiles(vec![pidfile.clone()]);
    let start = Instant::now();
    let mut c = srv.connect(0);
    c.send(b"GET /cgi-bin/closer.sh HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"bye\n");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "the answer took {:?}",
        start.elapsed()
    );
    c.send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(c.read_response().body, b"static\n");
    drop(c);
    // The script itself must not outlive its request for long (at the
    // latest it goes at cgi_timeout).
    assert_gone(pid_from(&pidfile), "the script", Duration::from_secs(3));
    assert_clean(&srv, fds);
}

/// 64 MiB by default: many times the socket's send buffer (a few MiB on
/// loopback) and the pipe's 64 KiB, and twice the memory bound below, so
/// a server that held the output instead of streaming it fails. 1 GiB
/// with `LOCALSERVER_SOAK=1`.
#[test]
fn gigabyte_of_output_streams_in_bounded_memory() {
    let mib: u64 = if soak() { 1024 } else { 64 };
    let srv = site("cgi_timeout 60s;");
    let pid = srv.pid();
    let fds = fd_count(pid);
    let _guard = PidFiles(vec![cgi_file(&srv, "gigabyte.pid")]);
    let rss_before = vm_rss_kib(pid);
    let start = Instant::now();
    let (mut s, head, first) = open_stream(&srv, &format!("/cgi-bin/gigabyte.py?{mib}"));
    let total: u64 = mib << 20;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {total}\r\n")),
        "{head}"
    );
    let mut got = first.len() as u64;
    let mut all_x = first.iter().all(|&b| b == b'x');
    let mut peak = rss_before;
    let mut next_sample = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    while got < total {
        let want = usize::try_from((total - got).min(buf.len() as u64)).unwrap();
        let n = s.read(&mut buf[..want]).unwrap_or_else(|e| {
            let script = read_pid(&cgi_file(&srv, "gigabyte.pid")).unwrap_or(0);
            panic!(
                "read failed after {got} bytes, {:?}: {e}; script alive: {}, progress {:?} MiB",
                start.elapsed(),
                alive(script),
                fs::read_to_string(cgi_file(&srv, "progress")).unwrap_or_default()
            )
        });
        assert!(n > 0, "closed after {got} of {total} bytes");
        // Spot-check the bytes (all of them would cost seconds in debug).
        all_x &= buf[0] == b'x' && buf[n - 1] == b'x';
        got += n as u64;
        if got >= next_sample {
            peak = peak.max(vm_rss_kib(pid));
            next_sample = got + (4 << 20);
        }
    }
    assert!(all_x, "the body is not the script's bytes");
    assert!(
        peak < rss_before + 32 * 1024,
        "server VmRSS grew from {rss_before} KiB to {peak} KiB while passing {mib} MiB"
    );
    // Keep-alive: the connection is still usable.
    s.write_all(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        rest.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    drop(s);
    assert_clean(&srv, fds);
}

#[test]
fn client_that_stops_reading_stops_the_script_until_the_timeout() {
    let srv = site(&format!("cgi_timeout {CGI_TIMEOUT}; send_timeout 1s;"));
    let pid = srv.pid();
    let fds = fd_count(pid);
    let pidfile = cgi_file(&srv, "gigabyte.pid");
    let _guard = PidFiles(vec![pidfile.clone()]);
    let rss_before = vm_rss_kib(pid);
    let start = Instant::now();
    let (mut s, head, _) = open_stream(&srv, "/cgi-bin/gigabyte.py");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let script = pid_from(&pidfile);
    // We read nothing more: the script must be held back (by the pipe, as
    // the server stops reading it), not copied into the server's memory.
    let progress = cgi_file(&srv, "progress");
    let mib = || {
        fs::read_to_string(&progress)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    thread::sleep(Duration::from_millis(1000));
    let stalled_at = mib();
    assert!(
        stalled_at < 128,
        "the script wrote {stalled_at} MiB to a client that reads nothing"
    );
    assert!(
        vm_rss_kib(pid) < rss_before + 32 * 1024,
        "server VmRSS grew from {rss_before} KiB to {} KiB",
        vm_rss_kib(pid)
    );
    // Then the timeout ends it: the script is killed and the connection
    // closed, before the whole body was sent.
    assert_gone(script, "the gigabyte script", Duration::from_secs(4));
    assert!(start.elapsed() < Duration::from_secs(5));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection did not close: {e} after {got} bytes"),
        }
    }
    assert!(got < 1 << 30, "the whole body came through anyway");
    drop(s);
    assert_clean(&srv, fds);
}

#[test]
fn invalid_header_lines_get_502() {
    let srv = short_site();
    let fds = fd_count(srv.pid());
    for case in [
        "nocolon",
        "space_in_name",
        "space_before_colon",
        "empty_name",
        "status_not_a_number",
        "status_out_of_range",
        "nul_in_value",
        "obs_fold",
        "bad_length",
        "negative_length",
        "binary_line",
    ] {
        let r = srv.get(&format!("/cgi-bin/bad_heads.py?{case}"));
        assert!(
            r.status == 502,
            "{case}: expected 502, got:\n{}",
            r.describe()
        );
        assert!(
            !contains(&r.body, b"body\n"),
            "{case}: the script's body was sent on"
        );
    }
    assert_clean(&srv, fds);
}

#[test]
fn no_output_at_all_gets_502() {
    let srv = short_site();
    let fds = fd_count(srv.pid());
    for path in ["/cgi-bin/silent.sh", "/cgi-bin/silent_closed.sh"] {
        let start = Instant::now();
        let mut c = srv.connect(0);
        c.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        let r = c
            .try_read_response()
            .unwrap_or_else(|| panic!("{path}: closed without an answer"));
        assert_status(&r, 502);
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{path}: took {:?}",
            start.elapsed()
        );
    }
    assert_clean(&srv, fds);
}

#[test]
fn header_block_over_the_limit_gets_502() {
    let srv = short_site();
    let fds = fd_count(srv.pid());
    for q in ["long", "many"] {
        let start = Instant::now();
        let r = srv.get(&format!("/cgi-bin/huge_head.py?{q}"));
        assert!(r.status == 502, "{q}: expected 502, got:\n{}", r.describe());
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{q}: took {:?}",
            start.elapsed()
        );
    }
    assert_clean(&srv, fds);
}

#[test]
fn script_that_never_reads_a_large_body_does_not_deadlock() {
    let srv = short_site();
    let fds = fd_count(srv.pid());
    let body = XorShift::new(7).bytes(8 << 20);
    for keep_alive in [true, false] {
        let start = Instant::now();
        let mut c = srv.connect(0);
        let mut req = format!(
            "POST /cgi-bin/deaf.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if keep_alive {
                ""
            } else {
                "Connection: close\r\n"
            }
        )
        .into_bytes();
        req.extend_from_slice(&body);
        let r = c.send_while_reading(req);
        assert_status(&r, 200);
        assert_eq!(r.body, b"ignored!\n");
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "the answer and the body took {:?}",
            start.elapsed()
        );
        // The connection either closes, or (having read the whole body)
        // serves the next request: the unread body is never a request.
        if c.try_send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .is_ok()
            && let Some(r) = c.try_read_response()
        {
            assert!(
                keep_alive || r.status != 200,
                "served after Connection: close"
            );
            assert_status(&r, 200);
            assert_eq!(r.body, b"static\n");
        }
    }
    assert_clean(&srv, fds);
}
