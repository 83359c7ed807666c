//! Leaks and load over time (issue 7): valgrind over a scripted session of
//! every kind of request, and `siege -b -c 255` three times in a row with the
//! server's RSS and descriptor count read before and after each run, with and
//! without `Connection: close`, against the shipped `localserver.conf`.
//!
//! In the default suite each siege run is a count, not a time: 30 requests
//! from each of the 255 clients with keep-alive (7,650), 16 with
//! `Connection: close` (4,080 connections), about 2 s each in a debug
//! build: enough for a descriptor kept per 1,000 connections or 256 bytes
//! per request to show. Valgrind watches one scripted session.
//! `LOCALSERVER_SOAK=1` makes the runs the issue's 60 s and the sessions
//! 20 (about 7 minutes for the file). Both need the tools: `siege` and
//! `valgrind` (Debian packages; `.ci/run` installs them). Without them the
//! tests are skipped through the harness's `skip`: a message on the real
//! stderr, and a failure in CI (`CI` set).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// One heavy test at a time: they measure the server, not each other.
static HEAVY: Mutex<()> = Mutex::new(());

/// Whether `tool` is on PATH; if not, `test` is skipped through the
/// harness (a message on the real stderr; a failure in CI).
fn have(test: &str, tool: &str) -> bool {
    if which(tool).is_some() {
        return true;
    }
    skip(
        test,
        &format!("{tool} is not installed (.ci/run installs it)"),
    );
    false
}

const SITE: &str = "
error_log stderr error;
session_store sessions;
server {
    listen 127.0.0.1:$P0;
    root www;
    error_page 404 /errors/404.html;
    location /files/ { autoindex on; }
    location /up/ {
        upload_store store;
        allowed_methods GET HEAD POST PUT DELETE;
        client_max_body_size 4m;
    }
    location /cgi/ {
        cgi .sh /bin/sh;
        allowed_methods GET HEAD POST;
        session on;
    }
    location = /old { return 301 /; }
}
";

fn site_dir(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("www/index.html", "<h1>home</h1>\n");
    dir.write("www/errors/404.html", "<h1>gone</h1>\n");
    dir.write("www/files/a.txt", "a\n");
    dir.write("www/files/b.txt", "bb\n");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    dir.write("www/big.bin", &big);
    dir.mkdir("store");
    dir.write_script(
        "www/cgi/echo.sh",
        "#!/bin/sh\nbody=$(cat)\nprintf 'Content-Type: text/plain\\r\\nX-Session: seen=1\\r\\n\\r\\n'\necho \"len=${#body} sid=$SESSION_ID\"\n",
    );
    dir
}

/// The whole exchange on a fresh connection (requests that close).
fn exchange(port: u16, req: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn status_of(out: &[u8]) -> u16 {
    std::str::from_utf8(out.get(9..12).unwrap_or(b"000"))
        .unwrap_or("0")
        .parse()
        .unwrap_or(0)
}

/// Every kind of request the server handles, each checked.
fn scripted_session(port: u16) {
    let get = |path: &str| {
        exchange(
            port,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };
    assert_eq!(status_of(&get("/")), 200);
    assert_eq!(status_of(&get("/big.bin")), 200);
    assert_eq!(status_of(&get("/files/")), 200);
    assert_eq!(status_of(&get("/nope")), 404);
    assert_eq!(status_of(&get("/old")), 301);
    assert_eq!(status_of(&get("/../etc/passwd")), 400);
    let r = exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-3\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&r), 206);
    assert_eq!(status_of(&exchange(port, b"GARBAGE\r\n\r\n")), 400);
    // Keep-alive pipeline.
    let r = exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD /big.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /files/a.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.windows(9).filter(|w| w == b"HTTP/1.1 ").count(), 3);
    // Uploads: raw PUT, chunked POST, multipart, then GET and DELETE.
    let body = vec![b'x'; 100_000];
    let mut put =
        b"PUT /up/raw.bin HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
            .to_vec();
    put.extend_from_slice(&body);
    assert_eq!(status_of(&exchange(port, &put)), 201);
    let r = exchange(
        port,
        b"POST /up/chunked.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert!(
        matches!(status_of(&r), 200 | 201 | 204),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let part = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"m.txt\"\r\nContent-Type: text/plain\r\n\r\nmultipart body\r\n--XyZ--\r\n";
    let r = exchange(
        port,
        format!(
            "POST /up/ HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{part}",
            part.len()
        )
        .as_bytes(),
    );
    assert!(
        matches!(status_of(&r), 200 | 201 | 204 | 303),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert_eq!(status_of(&get("/up/raw.bin")), 200);
    let r = exchange(
        port,
        b"DELETE /up/raw.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(
        matches!(status_of(&r), 200 | 204),
        "{}",
        String::from_utf8_lossy(&r)
    );
    // Too large → 413.
    let r = exchange(
        port,
        b"PUT /up/huge HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&r), 413);
    // CGI with a body and a session, then one whose client leaves early.
    let r = exchange(
        port,
        b"POST /cgi/echo.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert_eq!(status_of(&r), 200, "{}", String::from_utf8_lossy(&r));
    assert!(String::from_utf8_lossy(&r).contains("len=3"));
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"POST /cgi/echo.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nab")
        .unwrap();
    drop(s);
    // A connection that sends half a head and leaves.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    drop(s);
    thread::sleep(Duration::from_millis(300));
}

/// The valgrind child, killed if the test fails before it stops it.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_port(port: u16, child: &mut Child) {
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the server exited at start: {st}");
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

#[test]
fn valgrind_finds_no_leak_over_a_scripted_session() {
    if !have("valgrind_finds_no_leak_over_a_scripted_session", "valgrind") {
        return;
    }
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let dir = site_dir("soak-valgrind");
    let (text, ports) = expand_config(SITE, dir.path());
    let conf = dir.write("test.conf", text);
    let log = dir.join("valgrind.log");
    let child = Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
            "--child-silent-after-fork=yes",
        ])
        .arg(format!("--log-file={}", log.display()))
        .arg(env!("CARGO_BIN_EXE_localserver"))
        .arg("-c")
        .arg(&conf)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Reaped(child);
    let child = &mut guard.0;
    wait_port(ports[0], child);
    let rounds = if soak() { 20 } else { 1 };
    for _ in 0..rounds {
        scripted_session(ports[0]);
    }
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "valgrind did not finish");
        thread::sleep(Duration::from_millis(50));
    };
    let report = std::fs::read_to_string(&log).unwrap();
    let summary: Vec<&str> = report
        .lines()
        .filter(|l| {
            l.contains("lost:") || l.contains("ERROR SUMMARY") || l.contains("in use at exit")
        })
        .collect();
    eprintln!(
        "valgrind, {rounds} scripted sessions:\n{}",
        summary.join("\n")
    );
    assert!(
        report.contains("definitely lost: 0 bytes")
            || report.contains("All heap blocks were freed"),
        "{report}"
    );
    assert!(
        report.contains("indirectly lost: 0 bytes")
            || report.contains("All heap blocks were freed"),
        "{report}"
    );
    assert!(report.contains("ERROR SUMMARY: 0 errors"), "{report}");
    assert_eq!(status.code(), Some(0), "{report}");
}

/// VmRSS (KiB) and open descriptors of `pid`.
fn rss_and_fds(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

/// Descriptors once the load's connections are gone (bounded wait).
fn settled_fds(pid: u32, want: usize) -> usize {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, fds) = rss_and_fds(pid);
        if fds <= want || Instant::now() > end {
            return fds;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// How long one siege run lasts.
#[derive(Clone, Copy)]
enum Length {
    /// `-t NS`: the issue's 60 s runs (`LOCALSERVER_SOAK=1`).
    Secs(u64),
    /// `-r N`: N requests from each of the 255 clients. Siege's timed runs
    /// now and then hang at their end (JoeDog/siege#4, #66: "are you
    /// running it with a timed run?"), which costs a short default run
    /// its whole time-out; counted runs end when the last client is done.
    Reps(u64),
}

impl Length {
    fn args(self) -> [String; 2] {
        match self {
            Length::Secs(s) => ["-t".into(), format!("{s}S")],
            Length::Reps(n) => ["-r".into(), n.to_string()],
        }
    }

    /// A bound on the run, hang included.
    fn limit(self) -> u64 {
        match self {
            Length::Secs(s) => s + 30,
            Length::Reps(_) => 60,
        }
    }

    fn describe(self) -> String {
        match self {
            Length::Secs(s) => format!("{s} s"),
            Length::Reps(n) => format!("255 × {n} requests"),
        }
    }
}

/// One `siege -b -c 255` run: (availability %, transactions, failed).
fn siege(dir: &TempDir, port: u16, length: Length, close: bool) -> (f64, u64, u64) {
    let rc = dir.write(
        "siegerc",
        format!(
            "verbose = false\nquiet = true\njson_output = true\nshow-logfile = false\nlogging = false\n\
             protocol = HTTP/1.1\nconnection = {}\nparser = false\naccept-encoding = identity\n\
             limit = 255\nfailures = 1000000\nbenchmark = true\n",
            if close { "close" } else { "keep-alive" }
        ),
    );
    // siege 4.0.7 now and then hangs at the end of a timed run
    // (JoeDog/siege#4): bounded, and tried again.
    for _ in 0..3 {
        let out = Command::new("timeout")
            .args(["-k", "5", &length.limit().to_string(), "siege"])
            .arg("-R")
            .arg(&rc)
            .args(["-b", "-c", "255"])
            .args(length.args())
            .arg(format!("http://127.0.0.1:{port}/index.html"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let num = |key: &str| -> Option<f64> {
            let at = text.find(&format!("\"{key}\""))?;
            let rest = text.get(at + key.len() + 2..)?;
            let rest = rest.trim_start_matches([':', ' ', '\t']);
            let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
            rest.get(..end)?.trim().parse().ok()
        };
        if let (Some(a), Some(t), Some(f)) = (
            num("availability"),
            num("transactions"),
            num("failed_transactions"),
        ) {
            return (a, t as u64, f as u64);
        }
        eprintln!(
            "siege gave no summary (status {}): {text:.300}; again",
            out.status
        );
    }
    panic!("siege gave no summary three times");
}

fn siege_three_runs(test: &str, name: &str, close: bool) {
    if !have(test, "siege") {
        return;
    }
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    // The issue's figure is against the default configuration: the shipped
    // localserver.conf and www/ (sessions on, CGI routes, error pages).
    let srv = start_shipped_site(name);
    // About 2 s each in a debug build: 7,650 keep-alive requests, or 4,080
    // connections (a connection costs about twice a request).
    let length = match (soak(), close) {
        (true, _) => Length::Secs(60),
        (false, false) => Length::Reps(30),
        (false, true) => Length::Reps(16),
    };
    let pid = srv.pid();
    // Warm-up, so the open-file cache and buffer pool are in place.
    for _ in 0..20 {
        assert_status(&srv.get("/index.html"), 200);
    }
    let (rss0, fds0) = rss_and_fds(pid);
    let mut rows = Vec::new();
    for run in 1..=3 {
        let began = Instant::now();
        let (avail, trans, failed) = siege(&srv.dir, srv.port(0), length, close);
        let took = began.elapsed().as_secs_f64();
        let fds = settled_fds(pid, fds0);
        let (rss, _) = rss_and_fds(pid);
        rows.push(format!(
            "run {run}: {} in {took:.1} s, {trans} transactions, availability {avail:.2} %, failed {failed}, RSS {rss} KiB, fds {fds}",
            length.describe()
        ));
        assert_eq!(failed, 0, "{}", rows.join("\n"));
        assert!(avail >= 100.0, "{}", rows.join("\n"));
        assert!(trans > 0);
        // At most the baseline (a warm-up connection or a cached file may
        // have closed meanwhile; never one more).
        assert!(
            fds <= fds0,
            "descriptors not back after run {run} (baseline {fds0}): {}",
            rows.join("\n")
        );
    }
    let (rss3, _) = rss_and_fds(pid);
    eprintln!(
        "siege -b -c 255 ({}), before: RSS {rss0} KiB, fds {fds0}\n{}",
        if close {
            "Connection: close"
        } else {
            "keep-alive"
        },
        rows.join("\n")
    );
    // Flat: the buffer pool and slots of 255 connections, not growth per run.
    let after_first: u64 = rows
        .first()
        .and_then(|r| r.split("RSS ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        rss3 <= after_first + 1024,
        "RSS grew from {after_first} KiB after run 1 to {rss3} KiB after run 3"
    );
    assert!(srv.get("/index.html").status == 200);
}

#[test]
fn siege_keep_alive_three_runs_full_availability_flat_rss_and_fds() {
    siege_three_runs(
        "siege_keep_alive_three_runs_full_availability_flat_rss_and_fds",
        "soak-siege-ka",
        false,
    );
}

#[test]
fn siege_connection_close_three_runs_full_availability_flat_rss_and_fds() {
    siege_three_runs(
        "siege_connection_close_three_runs_full_availability_flat_rss_and_fds",
        "soak-siege-close",
        true,
    );
}
