//! Operating signals (CONFIG.md "Command line"): `SIGQUIT` drains and exits 0
//! within `shutdown_timeout`; `SIGHUP` reloads, keeping the old
//! configuration when the new one is broken, keeping listening sockets still
//! wanted, and never dropping a kept-alive connection.

use crate::common::*;
use std::io::Read;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

fn signal(srv: &Server, name: &str) {
    kill(srv.pid(), name);
}

fn refuses(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

const BIG: usize = 64 << 20;

fn big_site(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("www/index.html", "hi\n");
    let big: Vec<u8> = (0..BIG).map(|i| (i % 253) as u8).collect();
    dir.write("www/big.bin", &big);
    dir
}

#[test]
fn sigquit_finishes_a_64_mib_download_in_flight_then_exits_0() {
    let mut srv = Server::start(
        big_site("quit-download"),
        "server { listen 127.0.0.1:$P0; root www; }",
    );
    let mut idle = srv.connect(0);
    idle.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(idle.read_response().body, b"hi\n");

    let mut s = TcpStream::connect(("127.0.0.1", srv.port(0))).unwrap();
    use std::io::Write;
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    // Take the first bytes, so the response is surely in flight.
    let mut first = vec![0u8; 64 * 1024];
    let n = s.read(&mut first).unwrap();
    assert!(n > 0);
    signal(&srv, "QUIT");
    // Stops accepting at once.
    assert!(
        eventually(Duration::from_secs(2), || refuses(srv.port(0))),
        "still accepting after SIGQUIT"
    );
    // The idle keep-alive connection is closed, not kept waiting.
    idle.expect_closed(Duration::from_secs(2));
    // The download completes, byte for byte.
    thread::sleep(Duration::from_millis(300));
    let mut all = first[..n].to_vec();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.read_to_end(&mut all).unwrap();
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&all[..head_end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body = &all[head_end..];
    assert_eq!(body.len(), BIG, "the download was cut short");
    assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 253) as u8));
    let status = srv
        .wait_exit(Duration::from_secs(5))
        .expect("still running after the last response of a SIGQUIT drain");
    assert_eq!(status.code(), Some(0));
}

/// A graceful stop closes kept-alive connections between requests at once,
/// but answers a new connection whose first request had not arrived yet
/// when the signal came (as nginx does): its client cannot know the server
/// is stopping. A worker told to stop by a reload right after `accept` used
/// to drop such a connection without an answer.
/// The sockets among `pid`'s descriptors.
fn socket_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |rd| {
        rd.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count()
    })
}

#[test]
fn sigquit_answers_a_new_connection_and_closes_kept_alive_ones() {
    let dir = TempDir::new("quit-fresh");
    dir.write("www/index.html", "hi\n");
    let mut srv = Server::start(
        dir,
        "shutdown_timeout 10s; server { listen 127.0.0.1:$P0; root www; }",
    );
    let mut kept = srv.connect(0);
    kept.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(kept.read_response().body, b"hi\n");
    // Sockets only: the index file of the answer just read may still be
    // open (it is closed just after its last byte went, and a loaded
    // machine can run this first), and closing it would hide the accept.
    let before = socket_count(srv.pid());
    let mut fresh = srv.connect(0);
    assert!(
        wait_until(Duration::from_secs(5), || socket_count(srv.pid()) > before),
        "the server never accepted the new connection"
    );
    signal(&srv, "QUIT");
    kept.expect_closed(Duration::from_secs(5));
    fresh.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = fresh.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, b"hi\n");
    assert!(r.connection_has("close"), "{}", r.describe());
    fresh.expect_closed(Duration::from_secs(5));
    let status = srv
        .wait_exit(Duration::from_secs(5))
        .expect("still running after its last connection closed");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigquit_is_bounded_by_shutdown_timeout() {
    let mut srv = Server::start(
        big_site("quit-timeout"),
        "shutdown_timeout 1s; server { listen 127.0.0.1:$P0; root www; }",
    );
    // A client that asks for 64 MiB and never reads.
    let mut c = srv.connect(0);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    signal(&srv, "QUIT");
    let status = srv
        .wait_exit(Duration::from_secs(5))
        .expect("a stalled client held the graceful stop past shutdown_timeout");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "left after {took:?}, before shutdown_timeout"
    );
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sighup_with_a_broken_config_keeps_serving_the_old_one() {
    let dir = TempDir::new("hup-broken");
    dir.write("www/index.html", "old\n");
    let mut srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root www; }");
    let mut c = srv.connect(0);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.read_response().body, b"old\n");
    std::fs::write(
        &srv.conf,
        format!(
            "server {{ listen 127.0.0.1:{}; root www; bogus_directive on; }}",
            srv.port(0)
        ),
    )
    .unwrap();
    signal(&srv, "HUP");
    // Two lines, written one after the other: wait for the second too.
    assert!(
        eventually(Duration::from_secs(3), || {
            let err = srv.stderr();
            err.contains("bogus_directive") && err.contains("reload failed")
        }),
        "the reload's error is not logged: {}",
        srv.stderr()
    );
    // Both the old connection and new ones are served as before.
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.read_response().body, b"old\n");
    assert_eq!(srv.get("/").body, b"old\n");
    assert!(srv.is_running());
}

#[test]
fn sighup_adds_a_port_while_a_kept_alive_connection_keeps_working() {
    let dir = TempDir::new("hup-add");
    dir.write("a/index.html", "site a\n");
    dir.write("b/index.html", "site b\n");
    let mut srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root a; }");
    let new_port = free_port();
    let mut c = srv.connect(0);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().body, b"site a\n");
    assert!(refuses(new_port));
    std::fs::write(
        &srv.conf,
        format!(
            "server {{ listen 127.0.0.1:{}; root a; }}\nserver {{ listen 127.0.0.1:{new_port}; root b; }}\n",
            srv.port(0)
        ),
    )
    .unwrap();
    signal(&srv, "HUP");
    assert!(
        eventually(Duration::from_secs(3), || srv.listens_on(new_port)),
        "the new port is not served after SIGHUP: {}",
        srv.stderr()
    );
    let mut b = Conn::connect(new_port);
    b.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(b.read_response().body, b"site b\n");
    // The connection opened before the reload still gets answers.
    for _ in 0..3 {
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"site a\n");
    }
    assert!(srv.is_running());
}

#[test]
fn sighup_applies_the_new_config_to_kept_alive_and_new_connections() {
    let dir = TempDir::new("hup-change");
    dir.write("a/index.html", "site a\n");
    dir.write("b/index.html", "site b\n");
    let srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root a; }");
    let mut c = srv.connect(0);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().body, b"site a\n");
    std::fs::write(
        &srv.conf,
        format!("server {{ listen 127.0.0.1:{}; root b; }}", srv.port(0)),
    )
    .unwrap();
    signal(&srv, "HUP");
    assert!(
        eventually(Duration::from_secs(3), || srv.get("/").body == b"site b\n"),
        "new connections do not see the new root"
    );
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().body, b"site b\n");
}

#[test]
fn sighup_removing_a_port_stops_listening_on_it() {
    let dir = TempDir::new("hup-remove");
    dir.write("www/index.html", "hi\n");
    let srv = Server::start(
        dir,
        "server { listen 127.0.0.1:$P0; listen 127.0.0.1:$P1; root www; }",
    );
    let mut on_removed = srv.connect(1);
    on_removed.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(on_removed.read_response().body, b"hi\n");
    std::fs::write(
        &srv.conf,
        format!("server {{ listen 127.0.0.1:{}; root www; }}", srv.port(0)),
    )
    .unwrap();
    signal(&srv, "HUP");
    assert!(
        eventually(Duration::from_secs(3), || refuses(srv.port(1))),
        "the removed port still accepts"
    );
    // Its idle connection is closed; the kept port serves on.
    on_removed.expect_closed(Duration::from_secs(2));
    assert_eq!(srv.get("/").body, b"hi\n");
}
