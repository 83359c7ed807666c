//! Traffic control: `limit_rate` and `limit_rate_after` (timed, and the
//! server's CPU time read from `/proc/PID/stat` while it paces), a CGI's
//! `X-Accel-Limit-Rate`, `limit_conn` per client address (127.0.0.1 and
//! ::1 as two clients), `limit_req` with `burst` and `nodelay` (exact counts
//! of 200s and 503s, also over two workers), the statuses, the status
//! page's count of refusals, and `-t` on misused directives.

use crate::common::*;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// utime + stime of `pid` and of its children that are still running
/// (workers), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let ticks = |p: u32| -> u64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            return 0;
        };
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        // After comm: state(0) ppid(1) ... utime(11) stime(12).
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    // SAFETY: sysconf takes no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks(pid) as f64 / hz
}

/// A site with `big.bin` (`size` bytes of a pattern) under `/slow/` and
/// the `location` blocks of `locations`; `top` goes above the server.
fn site(name: &str, size: usize, top: &str, locations: &str) -> Server {
    let dir = TempDir::new(name);
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    dir.write("www/slow/big.bin", &data);
    dir.write("www/fast/big.bin", &data);
    dir.write("www/req/a.txt", "a\n");
    let config = format!(
        "{top}\nserver {{\n    listen 127.0.0.1:$P0;\n    root www;\n    location = /status {{ status on; }}\n{locations}\n}}\n"
    );
    Server::start(dir, &config)
}

fn expected(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

#[test]
fn limit_rate_paces_a_4_mib_file_at_1m_and_costs_no_cpu() {
    let srv = site(
        "limit-rate",
        4 * MIB,
        "",
        "    location /slow/ { limit_rate 1m; }",
    );
    let pid = srv.pid();
    // Warm: the file's pages in memory, the first connection's costs paid.
    assert_eq!(srv.get("/fast/big.bin").body.len(), 4 * MIB);
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let mut c = Conn::connect(srv.port(0));
    c.send(&get("/slow/big.bin"));
    let r = c.read_response();
    let took = t0.elapsed();
    let cpu = cpu_seconds(pid) - cpu0;
    assert_status(&r, 200);
    assert!(r.body == expected(4 * MIB), "the body differs");
    // nginx's arithmetic: 1 MiB at once, then 1 MiB a second: 3 s.
    assert!(
        took >= Duration::from_millis(2500) && took <= Duration::from_secs(8),
        "4 MiB at 1m took {took:?}"
    );
    assert!(cpu < 0.3, "the server used {cpu:.2} s of CPU while pacing");
    // Unpaced, the same file goes at once.
    let t0 = Instant::now();
    assert_eq!(srv.get("/fast/big.bin").body.len(), 4 * MIB);
    assert!(t0.elapsed() < Duration::from_millis(2000));
}

#[test]
fn limit_rate_after_sends_the_first_mib_at_once() {
    // 1 MiB at full speed, then 128 KiB/s with one second's worth at once:
    // 1.25 MiB takes 1 s; without limit_rate_after it would take 9 s.
    let size = MIB + 256 * 1024;
    let srv = site(
        "limit-rate-after",
        size,
        "",
        "    location /slow/ { limit_rate 128k; limit_rate_after 1m; }",
    );
    assert_eq!(srv.get("/fast/big.bin").body.len(), size);
    let t0 = Instant::now();
    let mut c = Conn::connect(srv.port(0));
    c.send(&get("/slow/big.bin"));
    while c.buffered().len() < MIB {
        assert!(c.fill().unwrap() > 0, "closed early");
    }
    let first = t0.elapsed();
    let r = c.read_response();
    let took = t0.elapsed();
    assert_status(&r, 200);
    assert!(r.body == expected(size), "the body differs");
    assert!(
        first < Duration::from_millis(700),
        "first MiB after {first:?}"
    );
    assert!(
        took >= Duration::from_millis(700) && took <= Duration::from_secs(5),
        "the whole body took {took:?}"
    );
}

#[test]
fn x_accel_limit_rate_paces_a_cgi_answer_and_is_not_passed_on() {
    let dir = TempDir::new("accel-limit-rate");
    // 192 KiB at 64 KiB/s, one second's worth at once: 2 s.
    dir.write_script(
        "www/cgi/slow.sh",
        "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\nX-Accel-Limit-Rate: 65536\\r\\n\\r\\n'\nhead -c 196608 /dev/zero\n",
    );
    dir.write_script(
        "www/cgi/fast.sh",
        "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nhead -c 196608 /dev/zero\n",
    );
    let srv = Server::start(
        dir,
        "server { listen 127.0.0.1:$P0; root www; location /cgi/ { cgi .sh /bin/sh; } }",
    );
    let t0 = Instant::now();
    let r = srv.get("/cgi/fast.sh");
    assert_status(&r, 200);
    assert_eq!(r.body.len(), 196_608);
    assert!(t0.elapsed() < Duration::from_millis(1500));
    assert_paced_192k_at_64k(&srv, "/cgi/slow.sh");
}

/// GET `path` answers 200 with 192 KiB at `X-Accel-Limit-Rate: 65536`,
/// which never reaches the client: one second's worth at once, then the
/// rest at 64 KiB/s, about 2 s in all.
#[track_caller]
fn assert_paced_192k_at_64k(srv: &Server, path: &str) {
    let t0 = Instant::now();
    let r = srv.get(path);
    let took = t0.elapsed();
    assert_status(&r, 200);
    assert_eq!(r.body.len(), 196_608);
    assert_eq!(r.header("x-accel-limit-rate"), None, "{}", r.describe());
    assert!(
        took >= Duration::from_millis(1700) && took <= Duration::from_secs(8),
        "192 KiB at 64 KiB/s took {took:?}"
    );
}

#[test]
fn x_accel_limit_rate_paces_an_x_accel_redirect_answer() {
    let dir = TempDir::new("accel-redirect-limit-rate");
    dir.write("www/files/data.bin", "z".repeat(196_608));
    dir.write_script(
        "www/cgi/get.sh",
        "#!/bin/sh\nprintf 'X-Accel-Redirect: /files/data.bin\\r\\nX-Accel-Limit-Rate: 65536\\r\\n\\r\\n'\n",
    );
    let srv = Server::start(
        dir,
        "server { listen 127.0.0.1:$P0; root www; location /cgi/ { cgi .sh /bin/sh; }\n\
           location /files/ { internal; } }",
    );
    assert_paced_192k_at_64k(&srv, "/cgi/get.sh");
}

#[test]
fn limit_conn_refuses_a_third_connection_of_one_address_only() {
    if !has_ipv6("limit_conn_refuses_a_third_connection_of_one_address_only") {
        return;
    }
    let dir = TempDir::new("limit-conn");
    let data: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    dir.write("www/a/big.bin", &data);
    dir.write("www/b/big.bin", &data);
    dir.write("www/a/small.txt", "small\n");
    let srv = Server::start(
        dir,
        "server {\n listen 127.0.0.1:$P0;\n listen [::1]:$P0;\n root www;\n limit_rate 32k;\n\
         location = /status { status on; }\n\
         location /a/ { limit_conn 2; }\n\
         location /b/ { limit_conn 2; limit_conn_status 429; }\n}\n",
    );
    let port = srv.port(0);
    // Two downloads of 1 MiB at 32 KiB/s hold two counts for 30 s.
    let mut one = Conn::connect(port);
    one.send(&get("/a/big.bin"));
    assert_status(&one.read_head_response(), 200);
    let mut two = Conn::connect(port);
    two.send(&get("/b/big.bin"));
    assert_status(&two.read_head_response(), 200);
    // The third from 127.0.0.1 is refused, on either route, each with
    // its status; its connection stays usable.
    let mut third = Conn::connect(port);
    third.send(&get("/a/big.bin"));
    assert_status(&third.read_response(), 503);
    third.send(&get("/b/big.bin"));
    assert_code(&third.read_response(), 429);
    // A route without limit_conn serves it meanwhile.
    third.send(&get("/status"));
    let status = third.read_response();
    assert_status(&status, 200);
    assert!(
        status
            .body_str()
            .contains("\nLimited: conn 2 req 0 delayed 0 \n"),
        "{}",
        status.body_str()
    );
    // Another address is another client.
    let mut v6 = Conn::connect_to("::1", port);
    v6.send(&get("/a/small.txt"));
    assert_status(&v6.read_response(), 200);
    // Closed mid-body, a download gives its count back...
    drop(one);
    let mut served = false;
    assert!(wait_until(Duration::from_secs(5), || {
        third.send(&get("/a/small.txt"));
        served = third.read_response().status == 200;
        served
    }));
    // ...and so does an answer finished on a kept-alive connection: the
    // same connection asks a route without a limit, then one with.
    third.send(&get("/status"));
    assert_status(&third.read_response(), 200);
    let mut fourth = Conn::connect(port);
    fourth.send(&get("/a/small.txt"));
    assert_status(&fourth.read_response(), 200);
    drop(two);
}

#[test]
fn limit_req_with_nodelay_answers_three_of_ten_pipelined_requests() {
    let srv = site(
        "limit-req-nodelay",
        16,
        "",
        "    location /req/ { limit_req 5r/s burst=2 nodelay; }",
    );
    let mut c = Conn::connect(srv.port(0));
    // Ten requests in one write: nginx's bucket takes the first, two more
    // within the burst, and refuses the rest (each 200 ms would let one
    // more through: they all arrive well within that).
    let burst: Vec<u8> = (0..10).flat_map(|_| get("/req/a.txt")).collect();
    let t0 = Instant::now();
    c.send(&burst);
    let codes: Vec<u16> = (0..10).map(|_| c.read_response().status).collect();
    assert!(
        t0.elapsed() < Duration::from_millis(200),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(codes, [200, 200, 200, 503, 503, 503, 503, 503, 503, 503]);
    c.send(&get("/status"));
    let body = c.read_response().body_str();
    assert!(
        body.contains("\nLimited: conn 0 req 7 delayed 0 \n"),
        "{body}"
    );
    // 600 ms later three requests' worth has leaked: the next passes.
    std::thread::sleep(Duration::from_millis(650));
    c.send(&get("/req/a.txt"));
    assert_status(&c.read_response(), 200);
}

/// Ten connections each send one request at once; their statuses, and how
/// long until the last answer.
fn ten_at_once(port: u16, path: &str) -> (Vec<u16>, Duration) {
    let mut conns: Vec<Conn> = (0..10).map(|_| Conn::connect(port)).collect();
    let t0 = Instant::now();
    for c in &mut conns {
        c.send(&get(path));
    }
    let mut codes: Vec<u16> = conns.iter_mut().map(|c| c.read_response().status).collect();
    codes.sort_unstable();
    (codes, t0.elapsed())
}

#[test]
fn limit_req_delays_the_burst_and_refuses_the_rest() {
    let srv = site(
        "limit-req-delay",
        16,
        "",
        "    location /req/ { limit_req 5r/s burst=2; }",
    );
    let (codes, took) = ten_at_once(srv.port(0), "/req/a.txt");
    assert_eq!(codes, [200, 200, 200, 503, 503, 503, 503, 503, 503, 503]);
    // The second waits 200 ms, the third 400 ms (on the timer).
    assert!(took >= Duration::from_millis(350), "took {took:?}");
    let status = srv.get("/status").body_str();
    assert!(
        status.contains("\nLimited: conn 0 req 7 delayed 2 \n"),
        "{status}"
    );
}

#[test]
fn limit_req_without_nodelay_paces_a_pipelined_client_without_refusing() {
    let srv = site(
        "limit-req-pipelined",
        16,
        "",
        "    location /req/ { limit_req 5r/s burst=2; }",
    );
    let pid = srv.pid();
    let cpu0 = cpu_seconds(pid);
    let mut c = Conn::connect(srv.port(0));
    let burst: Vec<u8> = (0..6).flat_map(|_| get("/req/a.txt")).collect();
    let t0 = Instant::now();
    c.send(&burst);
    let codes: Vec<u16> = (0..6).map(|_| c.read_response().status).collect();
    let took = t0.elapsed();
    // Each request after the first arrives as the one before is answered,
    // finds one request's worth in the bucket and waits 200 ms.
    assert_eq!(codes, [200; 6]);
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    assert!(took <= Duration::from_secs(5), "took {took:?}");
    assert!(cpu_seconds(pid) - cpu0 < 0.3, "the delays cost CPU");
}

#[test]
fn limit_req_counts_are_shared_by_two_workers() {
    let srv = site(
        "limit-req-workers",
        16,
        "worker_processes 2;",
        "    location /req/ { limit_req 5r/s burst=2 nodelay; }",
    );
    // SO_REUSEPORT spreads the ten connections over both workers; the
    // bucket is one.
    let (codes, _) = ten_at_once(srv.port(0), "/req/a.txt");
    assert_eq!(codes, [200, 200, 200, 503, 503, 503, 503, 503, 503, 503]);
    let status = srv.get("/status").body_str();
    assert!(
        status.contains("\nLimited: conn 0 req 7 delayed 0 \n"),
        "{status}"
    );
}

#[test]
fn limit_conn_counts_are_shared_by_two_workers() {
    let srv = site(
        "limit-conn-workers",
        MIB,
        "worker_processes 2;",
        "    location /slow/ { limit_rate 32k; limit_conn 3; limit_conn_status 429; }",
    );
    let port = srv.port(0);
    // Six connections at once, over both workers: three downloads, three 429s.
    let mut conns: Vec<Conn> = (0..6).map(|_| Conn::connect(port)).collect();
    for c in &mut conns {
        c.send(&get("/slow/big.bin"));
    }
    let mut codes: Vec<u16> = conns
        .iter_mut()
        .map(|c| c.read_head_response().status)
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, [200, 200, 200, 429, 429, 429]);
    // Every download closed: every count given back, whichever worker.
    drop(conns);
    assert!(wait_until(Duration::from_secs(5), || {
        let mut ok = 0;
        let mut cs: Vec<Conn> = (0..3).map(|_| Conn::connect(port)).collect();
        for c in &mut cs {
            c.send(&get("/slow/big.bin"));
            ok += usize::from(c.read_head_response().status == 200);
        }
        ok == 3
    }));
}

#[test]
fn misused_limit_directives_are_reported_with_file_and_line() {
    let cases = [
        (
            "limit_rate fast;",
            "invalid value \"fast\" in \"limit_rate\" directive",
        ),
        (
            "limit_rate_after -1;",
            "invalid value \"-1\" in \"limit_rate_after\" directive",
        ),
        (
            "limit_req 10r/h;",
            "invalid value \"10r/h\" in \"limit_req\" directive",
        ),
        (
            "limit_req 10r/s burst=x;",
            "invalid value \"burst=x\" in \"limit_req\" directive",
        ),
        (
            "limit_req 10r/s delay;",
            "invalid value \"delay\" in \"limit_req\" directive",
        ),
        (
            "limit_conn 0;",
            "invalid value \"0\" in \"limit_conn\" directive",
        ),
        (
            "limit_conn_status 200;",
            "invalid value \"200\" in \"limit_conn_status\" directive",
        ),
        (
            "limit_req_status 600;",
            "invalid value \"600\" in \"limit_req_status\" directive",
        ),
    ];
    for (line, message) in cases {
        let dir = TempDir::new("limit-conf");
        let text =
            format!("server {{\n    listen 127.0.0.1:8080;\n    root www;\n    {line}\n}}\n");
        let conf = dir.write("bad.conf", text);
        let conf = conf.to_str().unwrap();
        let out = run_cli(&["-t", "-c", conf], dir.path(), Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(1), "{line}: {}", out.stderr);
        assert!(
            out.stderr.contains(message) && out.stderr.contains(&format!("{conf}:4")),
            "{line}: {}",
            out.stderr
        );
    }
    // limit_conn and limit_req stand in server and location blocks only.
    let dir = TempDir::new("limit-conf-top");
    let conf = dir.write(
        "top.conf",
        "limit_conn 2;\nserver { listen 127.0.0.1:8080; root www; }\n",
    );
    let conf = conf.to_str().unwrap();
    let out = run_cli(&["-t", "-c", conf], dir.path(), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("{conf}:1")), "{}", out.stderr);
}

/// The pids whose parent is `pid` (a master's workers).
fn children(pid: u32) -> Vec<u32> {
    children_of(pid).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn limit_conn_counts_of_a_killed_worker_are_forgotten() {
    let srv = site(
        "limit-conn-killed",
        MIB,
        "worker_processes 2;",
        "    location /slow/ { limit_rate 32k; limit_conn 2; limit_conn_status 429; }",
    );
    let port = srv.port(0);
    let mut held: Vec<Conn> = (0..2).map(|_| Conn::connect(port)).collect();
    for c in &mut held {
        c.send(&get("/slow/big.bin"));
        assert_status(&c.read_head_response(), 200);
    }
    let mut third = Conn::connect(port);
    third.send(&get("/slow/big.bin"));
    assert_code(&third.read_head_response(), 429);
    drop(third);
    // Killed outright, the workers never give their counts back: the
    // master sweeps their columns when it reaps them.
    let workers = children(srv.pid());
    assert_eq!(workers.len(), 2, "{workers:?}");
    for w in workers {
        kill(w, "KILL");
    }
    drop(held);
    assert!(
        wait_until(Duration::from_secs(10), || {
            let fresh = children(srv.pid());
            fresh.len() == 2
        }),
        "no new workers"
    );
    assert!(wait_until(Duration::from_secs(10), || {
        let mut cs: Vec<Conn> = (0..2).map(|_| Conn::connect(port)).collect();
        cs.iter_mut().all(|c| {
            c.send(&get("/slow/big.bin"));
            c.read_head_response().status == 200
        })
    }));
}

#[test]
fn limit_conn_count_goes_when_send_timeout_closes_a_stalled_download() {
    let srv = site(
        "limit-conn-timeout",
        32 * MIB,
        "send_timeout 1s;",
        "    location /slow/ { limit_conn 1; }",
    );
    let port = srv.port(0);
    // A client that reads the head and stops: its download stalls on a
    // full socket, and send_timeout closes it.
    let mut stalled = Conn::connect(port);
    stalled.send(&get("/slow/big.bin"));
    assert_status(&stalled.read_head_response(), 200);
    let mut other = Conn::connect(port);
    other.send(&get("/slow/big.bin"));
    assert_status(&other.read_head_response(), 503);
    drop(other);
    assert!(wait_until(Duration::from_secs(10), || {
        let mut c = Conn::connect(port);
        c.send(&get("/req/a.txt"));
        assert_status(&c.read_response(), 200);
        c.send(&get("/slow/big.bin"));
        c.read_head_response().status == 200
    }));
    drop(stalled);
}
