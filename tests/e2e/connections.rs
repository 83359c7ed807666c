//! Connection semantics: keep-alive, pipelining, HTTP/1.0, `Connection:
//! close`, unread bodies, timeouts, and many clients on the one thread
//! (HTTP.md "Connections").

use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

fn site_with(extra_top: &str) -> Server {
    let dir = TempDir::new("conn");
    dir.write("www/a.txt", "AAAA\n");
    dir.write("www/b.txt", "BBBBBBBB\n");
    dir.write("www/c.txt", "CCCCCCCCCCCC\n");
    dir.write("www/index.html", "index\n");
    let config = format!(
        "{extra_top}\nserver {{\n    listen 127.0.0.1:$P0;\n    root www;\n    location = /redirect {{ return 302 /a.txt; }}\n}}\n"
    );
    Server::start(dir, &config)
}

fn site() -> Server {
    site_with("")
}

#[test]
fn keepalive_sequential_requests_on_one_connection() {
    let srv = site();
    let mut c = srv.connect(0);
    for (path, want) in [
        ("/a.txt", &b"AAAA\n"[..]),
        ("/b.txt", b"BBBBBBBB\n"),
        ("/missing", b""),
        ("/c.txt", b"CCCCCCCCCCCC\n"),
        ("/redirect", b""),
        ("/a.txt", b"AAAA\n"),
    ] {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        let r = c.read_response();
        match path {
            "/missing" => assert_status(&r, 404),
            "/redirect" => assert_status(&r, 302),
            _ => {
                assert_status(&r, 200);
                assert_eq!(r.body, want, "{path}");
            }
        }
        assert!(!r.connection_has("close"), "{path}: {}", r.describe());
    }
    // Still open and quiet.
    c.expect_open_and_quiet(Duration::from_millis(300));
}

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(
        b"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /b.txt HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /c.txt HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    for want in [&b"AAAA\n"[..], b"BBBBBBBB\n", b"CCCCCCCCCCCC\n"] {
        let r = c.read_response();
        assert_status(&r, 200);
        assert_eq!(r.body, want);
    }
    c.expect_open_and_quiet(Duration::from_millis(300));
}

#[test]
fn pipelined_mixed_statuses_and_head() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(
        b"GET /missing HTTP/1.1\r\nHost: a\r\n\r\n\
          HEAD /b.txt HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /redirect HTTP/1.1\r\nHost: a\r\n\r\n\
          DELETE /a.txt HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /c.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_status(&c.read_response(), 404);
    let h = c.read_head_response();
    assert_status(&h, 200);
    assert_eq!(h.must_header("content-length"), "9");
    let r = c.read_response();
    assert_status(&r, 302);
    assert_eq!(r.must_header("location"), "/a.txt");
    assert_status(&c.read_response(), 405);
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"CCCCCCCCCCCC\n");
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn many_pipelined_requests() {
    let srv = site();
    let mut c = srv.connect(0);
    let mut batch = Vec::new();
    for _ in 0..200 {
        batch.extend_from_slice(b"GET /b.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    }
    c.send(&batch);
    for i in 0..200 {
        let r = c.read_response();
        assert_status(&r, 200);
        assert_eq!(r.body, b"BBBBBBBB\n", "response {i}");
    }
}

#[test]
fn request_split_across_writes() {
    let srv = site();
    let mut c = srv.connect(0);
    let req = b"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n";
    for piece in req.chunks(7) {
        c.send(piece);
        thread::sleep(Duration::from_millis(20));
    }
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"AAAA\n");
    // A second request whose head ends together with the start of a third.
    c.send(b"GET /b.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /c.t");
    let r = c.read_response();
    assert_eq!(r.body, b"BBBBBBBB\n");
    thread::sleep(Duration::from_millis(50));
    c.send(b"xt HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.body, b"CCCCCCCCCCCC\n");
}

#[test]
fn connection_close_closes_after_the_response() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"AAAA\n");
    assert!(r.connection_has("close"), "{}", r.describe());
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn nothing_is_read_after_a_connection_close_request() {
    // HTTP.md rule 18: a request pipelined after `Connection: close` is not answered.
    let srv = site();
    let mut c = srv.connect(0);
    c.send(
        b"GET /a.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n\
          GET /b.txt HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(r.body, b"AAAA\n");
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn connection_header_tokens_are_case_insensitive() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn http10_closes_by_default() {
    let srv = site();
    let mut c = srv.connect(0);
    c.send(b"GET /a.txt HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_code(&r, 200);
    assert_eq!(r.body, b"AAAA\n");
    assert!(!r.connection_has("keep-alive"), "{}", r.describe());
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn http10_keepalive_stays_open() {
    let srv = site();
    let mut c = srv.connect(0);
    for (path, want) in [("/a.txt", &b"AAAA\n"[..]), ("/b.txt", b"BBBBBBBB\n")] {
        c.send(format!("GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes());
        let r = c.read_response();
        assert_code(&r, 200);
        assert_eq!(r.body, want);
        assert!(
            r.connection_has("keep-alive"),
            "HTTP/1.0 keep-alive answer must say Connection: keep-alive:\n{}",
            r.describe()
        );
        assert_eq!(r.must_header("content-length"), want.len().to_string());
    }
    // The next plain 1.0 request closes.
    c.send(b"GET /c.txt HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.body, b"CCCCCCCCCCCC\n");
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn http10_error_pages_are_framed() {
    // No chunked framing towards 1.0 (HTTP.md rule 25).
    let srv = site();
    let mut c = srv.connect(0);
    c.send(b"GET /missing HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_code(&r, 404);
    assert!(r.header("transfer-encoding").is_none(), "{}", r.describe());
    c.expect_closed(Duration::from_secs(3));
}

/// Send `first` (a GET with a body) and `second` in one write. The body must
/// never be parsed as a request: either the server discards it and answers
/// `second`, or it closes after the first answer. Never a 400.
fn body_then_pipelined(body: &str) {
    let srv = site();
    let mut c = srv.connect(0);
    let req = format!(
        "GET /a.txt HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}\
         GET /b.txt HTTP/1.1\r\nHost: a\r\n\r\n",
        body.len()
    );
    c.send(req.as_bytes());
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"AAAA\n");
    match c.try_read_response() {
        None => {} // closed after the first answer: allowed
        Some(r) => {
            assert_status(&r, 200);
            assert_eq!(
                r.body,
                b"BBBBBBBB\n",
                "the body was parsed as a request:\n{}",
                r.describe()
            );
            // And nothing else came from the body.
            c.send(b"GET /c.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
            let r = c.read_response();
            assert_eq!(r.body, b"CCCCCCCCCCCC\n", "{}", r.describe());
            c.expect_closed(Duration::from_secs(3));
        }
    }
}

#[test]
fn get_body_garbage_is_not_a_request() {
    body_then_pipelined("this is not a request line at all\r\n\r\n");
}

#[test]
fn get_body_that_looks_like_a_request_is_not_a_request() {
    body_then_pipelined("GET /c.txt HTTP/1.1\r\nHost: a\r\n\r\n");
}

#[test]
fn get_body_arriving_later_is_not_a_request() {
    // The head first, the body in a later segment.
    let srv = site();
    let mut c = srv.connect(0);
    let body = "GET /c.txt HTTP/1.1\r\nHost: a\r\n\r\n";
    c.send(
        format!(
            "GET /a.txt HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    thread::sleep(Duration::from_millis(100));
    if c.try_send(body.as_bytes()).is_err() {
        // Closed already: allowed, but the answer must be there.
        assert_eq!(c.read_response().body, b"AAAA\n");
        return;
    }
    let _ = c.try_send(b"GET /b.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.body, b"AAAA\n");
    if let Some(r) = c.try_read_response() {
        assert_eq!(
            r.body,
            b"BBBBBBBB\n",
            "the body was parsed as a request:\n{}",
            r.describe()
        );
    }
}

#[test]
fn slow_head_gets_408_and_close() {
    let srv = site_with("client_header_timeout 1s;");
    let mut c = srv.connect(0);
    let start = Instant::now();
    c.stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // One byte every 200 ms: the trickle must not reset the timer (rule 21).
    // Stop trickling as soon as anything comes back (or the write fails).
    let head = b"GET /a.txt HTTP/1.1\r\nHost: a\r\nX-Slow: yes\r\nX-More: trickle\r\n";
    for &b in head {
        if c.try_send(&[b]).is_err() {
            break;
        }
        match c.fill() {
            Ok(_) => break,
            Err(e) if is_timeout(&e) => {}
            Err(e) if is_reset(&e) => break,
            Err(e) => panic!("read failed: {e}"),
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "the whole head trickled in for {:?} without a 408",
        start.elapsed()
    );
    c.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let r = c.read_response();
    let elapsed = start.elapsed();
    assert_status(&r, 408);
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_secs(3),
        "408 after {elapsed:?}, expected about 1 s"
    );
    c.expect_closed(Duration::from_secs(3));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn silent_client_gets_closed_by_header_timeout() {
    // A connection that sends a partial head and then nothing.
    let srv = site_with("client_header_timeout 1s;");
    let mut c = srv.connect(0);
    let start = Instant::now();
    c.send(b"GET /a.txt HTTP/1.1\r\n");
    let r = c.try_read_response();
    if let Some(r) = r {
        assert_status(&r, 408);
        c.expect_closed(Duration::from_secs(3));
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_secs(3),
        "closed after {elapsed:?}, expected about 1 s"
    );
}

#[test]
fn keepalive_timeout_closes_an_idle_connection() {
    let srv = site_with("keepalive_timeout 1s;");
    let mut c = srv.connect(0);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 200);
    let start = Instant::now();
    c.expect_closed(Duration::from_secs(4));
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_secs(3),
        "idle connection closed after {elapsed:?}, expected about 1 s"
    );
}

#[test]
fn keepalive_timeout_is_reset_by_each_request() {
    let srv = site_with("keepalive_timeout 1s;");
    let mut c = srv.connect(0);
    for _ in 0..4 {
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(c.read_response().body, b"AAAA\n");
        thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn keepalive_requests_limits_a_connection() {
    let srv = site_with("keepalive_requests 3;");
    let mut c = srv.connect(0);
    for i in 1..=3 {
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = c.read_response();
        assert_status(&r, 200);
        if i == 3 {
            assert!(r.connection_has("close"), "{}", r.describe());
        }
    }
    c.expect_closed(Duration::from_secs(3));
}

#[test]
fn many_clients_at_once() {
    let srv = site();
    let mut conns: Vec<Conn> = (0..200).map(|_| srv.connect(0)).collect();
    for c in &mut conns {
        c.send(b"GET /c.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    }
    for c in &mut conns {
        let r = c.read_response();
        assert_status(&r, 200);
        assert_eq!(r.body, b"CCCCCCCCCCCC\n");
    }
}

#[test]
fn many_clients_from_threads() {
    let srv = site();
    let port = srv.port(0);
    let handles: Vec<_> = (0..16)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Conn::connect(port);
                for _ in 0..50 {
                    c.send(b"GET /b.txt HTTP/1.1\r\nHost: a\r\n\r\n");
                    let r = c.read_response();
                    assert_eq!(r.status, 200);
                    assert_eq!(r.body, b"BBBBBBBB\n");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn a_slow_client_does_not_block_others() {
    let srv = site();
    let mut slow = srv.connect(0);
    slow.send(b"GET /a.txt HTTP/1.1\r\nHo");
    let r = srv.get("/b.txt");
    assert_status(&r, 200);
    assert_eq!(r.body, b"BBBBBBBB\n");
    slow.send(b"st: a\r\n\r\n");
    assert_eq!(slow.read_response().body, b"AAAA\n");
}

#[test]
fn client_that_never_reads_does_not_block_others() {
    // One client asks for a lot and never reads; the loop must go on.
    let dir = TempDir::new("no-reader");
    dir.write("www/big.bin", vec![b'x'; 8 * 1024 * 1024]);
    dir.write("www/a.txt", "AAAA\n");
    let srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root www; }");
    let mut stuck = srv.connect(0);
    let mut batch = Vec::new();
    for _ in 0..8 {
        batch.extend_from_slice(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    }
    stuck.send(&batch);
    thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let r = srv.get("/a.txt");
    assert_status(&r, 200);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn client_disconnect_mid_response_does_not_kill_the_server() {
    let dir = TempDir::new("disconnect");
    dir.write("www/big.bin", vec![b'y'; 8 * 1024 * 1024]);
    dir.write("www/a.txt", "AAAA\n");
    let mut srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root www; }");
    for _ in 0..5 {
        let mut c = srv.connect(0);
        c.send(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
        let _ = c.fill();
        drop(c); // reset with unread data: the server sees EPIPE/ECONNRESET
    }
    let r = srv.get("/a.txt");
    assert_status(&r, 200);
    assert!(srv.is_running());
}

/// CPU time (user + system) of a process so far, from /proc/PID/stat, in
/// clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn worker_connections_limit_pauses_accepting_without_spinning() {
    // At the limit, accepting pauses until a connection closes, and the loop
    // does not spin on the full backlog (issue 2, CONFIG.md).
    let srv = site_with("worker_connections 4;");
    let mut served = Vec::new();
    let mut stalled = None;
    for _ in 0..8 {
        let mut c = srv.connect(0);
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n");
        c.stream
            .set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        match c.fill() {
            Ok(n) if n > 0 => {
                c.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                assert_eq!(c.read_response().body, b"AAAA\n");
                served.push(c);
            }
            Err(e) if is_timeout(&e) => {
                c.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                stalled = Some(c);
                break;
            }
            other => panic!("unexpected read result {other:?}"),
        }
    }
    assert!(
        !served.is_empty() && served.len() <= 4,
        "{} connections served with worker_connections 4",
        served.len()
    );
    let mut stalled = stalled.expect("no connection was held back at the limit");

    // Held at the limit for a second: the server must be (nearly) idle.
    let before = cpu_ticks(srv.pid());
    thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(srv.pid()) - before;
    assert!(
        used < 30,
        "server used {used} ticks of CPU in 1 s while paused"
    );

    // One closes: the waiting one is accepted and answered.
    drop(served.pop());
    let start = Instant::now();
    let r = stalled.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"AAAA\n");
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn send_timeout_drops_a_client_that_stops_reading() {
    const LEN: usize = 48 * 1024 * 1024;
    let dir = TempDir::new("send-timeout");
    dir.write("www/big.bin", vec![0u8; LEN]);
    let srv = Server::start(
        dir,
        "send_timeout 1s;\nserver { listen 127.0.0.1:$P0; root www; }",
    );
    let mut c = srv.connect(0);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    // Read nothing for well over send_timeout: the socket buffers fill up
    // and the server's writes stop making progress.
    thread::sleep(Duration::from_millis(2500));
    let start = Instant::now();
    let mut total = 0usize;
    c.stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        use std::io::Read;
        match c.stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if is_reset(&e) => break,
            Err(e) if is_timeout(&e) => panic!(
                "connection still open after {total} bytes; send_timeout 1s should have closed it"
            ),
            Err(e) => panic!("read failed: {e}"),
        }
        assert!(start.elapsed() < Duration::from_secs(10), "still reading");
    }
    assert!(
        total < LEN,
        "all {total} bytes arrived: the server waited for a client that did not read"
    );
}

#[test]
fn stalled_discarded_body_is_timed_out() {
    // A GET whose declared body never fully arrives: the server either answers
    // first and closes (HTTP.md rule 19), or waits client_body_timeout and
    // answers 408; in both cases the connection is closed within ~3 s.
    let srv = site_with("client_body_timeout 1s;");
    let mut c = srv.connect(0);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789");
    let start = Instant::now();
    while let Some(r) = c.try_read_response() {
        assert!(
            matches!(r.status, 200 | 408),
            "unexpected answer:\n{}",
            r.describe()
        );
        assert!(start.elapsed() < Duration::from_secs(3));
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        start.elapsed()
    );
}
