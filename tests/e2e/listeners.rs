//! Listeners that cannot be bound (CONFIG.md: "an address that cannot be
//! bound ... The server logs it and runs with what works; it exits 1 only if
//! no listener at all could be bound"). Three servers, each on its own
//! address with its own content; one address is held by the test, in turn
//! the first, the middle and the last. The bind error is logged and the two
//! other addresses answer with their own server's page: in one process, with
//! `worker_processes 2`, and after a reload (`SIGHUP`) to such a
//! configuration in either. When every address is taken, the server exits 1
//! and a reload keeps the configuration in use.
//!
//! A taken port is held by a `TcpListener` the test bound on `127.0.0.1:0`
//! and is written into the configuration literally; the ports that must work
//! are the harness's `$Pn`.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// How the server runs.
#[derive(Clone, Copy, Debug)]
enum Procs {
    /// One process (`server::run`, `reactor::bind_all`).
    Single,
    /// A master and two workers (`master::bind_sets`).
    Workers,
}

impl Procs {
    /// The top-level directives that select it.
    fn top(self) -> &'static str {
        match self {
            Procs::Single => "",
            Procs::Workers => "worker_processes 2;",
        }
    }
}

/// Which of the three listeners is taken, in turn.
const TAKEN: [usize; 3] = [0, 1, 2];

/// Requests per working address: with workers, several, so that (SO_REUSEPORT
/// spreads connections by their ports) both workers are asked.
const GETS: usize = 4;

/// How long an answer to a small static GET may take before it counts as
/// never coming (a listener the loop does not watch: the kernel accepts the
/// connection and nobody reads it). Generous for a loaded 2-core machine.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a reload may take to be logged.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// A port held by the test, so the server cannot bind it.
fn take_port() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// Three servers; server `i` listens on `127.0.0.1:{ports[i]}` (a number or
/// a `$Pn`) and serves `{site}{i}/index.html`. The log says `notice`s too,
/// so a reload can be waited for.
fn three_servers(procs: Procs, site: &str, ports: [&str; 3]) -> String {
    let mut conf = format!("{}\nerror_log stderr notice;\n", procs.top());
    for (i, port) in ports.iter().enumerate() {
        conf += &format!("server {{ listen 127.0.0.1:{port}; root {site}{i}; }}\n");
    }
    conf
}

/// The page server `i` of `site` serves.
fn page(site: &str, i: usize) -> String {
    format!("{site} server {i}\n")
}

/// A folder holding the pages of `site` for the three servers.
fn site_dir(dir: &TempDir, site: &str) {
    for i in 0..3 {
        dir.write(&format!("{site}{i}/index.html"), page(site, i));
    }
}

/// `ports` with `$Pn` for every listener but `taken`, which gets `port`:
/// the text for `three_servers`, and for each listener the harness port
/// index it got (`None` for the taken one).
fn placeholders(taken: usize, port: u16) -> ([String; 3], [Option<usize>; 3]) {
    let mut text: [String; 3] = Default::default();
    let mut index = [None; 3];
    let mut next = 0;
    for i in 0..3 {
        if i == taken {
            text[i] = port.to_string();
        } else {
            text[i] = format!("$P{next}");
            index[i] = Some(next);
            next += 1;
        }
    }
    (text, index)
}

/// `GET /` with `Connection: close` on `port`: the status line and the body
/// (checked against `Content-Length`, with nothing after it), or why no
/// complete answer came within `ANSWER_TIMEOUT`.
fn get(port: u16) -> Result<(String, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(ANSWER_TIMEOUT)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut got = Vec::new();
    if let Err(e) = s.read_to_end(&mut got) {
        return Err(format!(
            "no complete answer within {ANSWER_TIMEOUT:?} ({e}); received {:?}",
            String::from_utf8_lossy(&got)
        ));
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(format!("no complete head: {text:?}"));
    };
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_string();
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().to_string());
    if length != Some(body.len().to_string()) {
        return Err(format!(
            "Content-Length {length:?} but {} body bytes: {text:?}",
            body.len()
        ));
    }
    Ok((status, body.to_string()))
}

/// Assert that `port` answers `GET /` with 200 and `want`, `GETS` times.
#[track_caller]
fn assert_serves(case: &str, srv: &Server, port: u16, want: &str) {
    for n in 0..GETS {
        match get(port) {
            Ok((status, body)) => {
                assert_eq!(status, "HTTP/1.1 200 OK", "{case}: port {port}, GET {n}");
                assert_eq!(body, want, "{case}: port {port}, GET {n}");
            }
            Err(e) => panic!(
                "{case}: port {port}, GET {n}: {e}\nserver stderr:\n{}",
                srv.stderr()
            ),
        }
    }
}

/// Assert that the server logged that it could not bind `port`.
#[track_caller]
fn assert_bind_error_logged(case: &str, stderr: &str, port: u16) {
    let line = format!("bind() to 127.0.0.1:{port} failed");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(&line) && l.contains("[error]")),
        "{case}: no \"{line}\" error in the log:\n{stderr}"
    );
}

/// Start three servers with listener `taken` held by the test: the bind error
/// is logged and the other two serve their own pages.
fn start_with_one_taken(procs: Procs) {
    for taken in TAKEN {
        let case = format!("{procs:?}, listener {taken} of 0..3 taken");
        let dir = TempDir::new("listeners-taken");
        site_dir(&dir, "site");
        let (_held, port) = take_port();
        let (text, index) = placeholders(taken, port);
        let conf = three_servers(procs, "site", [&text[0], &text[1], &text[2]]);
        let srv = Server::start(dir, &conf);
        for (i, p) in index.iter().enumerate() {
            if let Some(p) = p {
                assert_serves(&case, &srv, srv.port(*p), &page("site", i));
            }
        }
        assert_bind_error_logged(&case, &srv.stderr(), port);
    }
}

#[test]
fn single_process_serves_on_the_listeners_that_bound() {
    start_with_one_taken(Procs::Single);
}

#[test]
fn workers_serve_on_the_listeners_that_bound() {
    start_with_one_taken(Procs::Workers);
}

/// Send `SIGHUP` and wait until the log holds `what` (the reload's last line,
/// or its failure's) once more than before.
fn reload(srv: &Server, what: &str) {
    let before = srv.stderr().matches(what).count();
    kill(srv.pid(), "HUP");
    assert!(
        eventually(RELOAD_TIMEOUT, || srv.stderr().matches(what).count()
            > before),
        "no {what:?} logged within {RELOAD_TIMEOUT:?} of SIGHUP:\n{}",
        srv.stderr()
    );
}

/// Assert that `port` comes to answer `want` (the old configuration's
/// workers may still take a connection or two while they retire, and answer
/// with the old page; a connection nobody answers fails at once).
#[track_caller]
fn assert_comes_to_serve(case: &str, srv: &Server, port: u16, want: &str) {
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    loop {
        match get(port) {
            Ok((_, body)) if body == want => break,
            Ok((status, body)) => {
                assert!(
                    Instant::now() < deadline,
                    "{case}: port {port} still answers {status:?} {body:?} {RELOAD_TIMEOUT:?} after the reload, not {want:?}\nserver stderr:\n{}",
                    srv.stderr()
                );
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{case}: port {port}: {e}\nserver stderr:\n{}", srv.stderr()),
        }
    }
    assert_serves(case, srv, port, want);
}

/// Start three servers on `$P0..$P2`, then reload to a configuration whose
/// listener `taken` is held by the test and whose pages are new: the bind
/// error is logged and the other two addresses serve the new pages.
fn reload_with_one_taken(procs: Procs) {
    for taken in TAKEN {
        let case = format!("{procs:?}, reload, listener {taken} of 0..3 taken");
        let dir = TempDir::new("listeners-reload");
        site_dir(&dir, "old");
        site_dir(&dir, "new");
        let srv = Server::start(dir, &three_servers(procs, "old", ["$P0", "$P1", "$P2"]));
        for i in 0..3 {
            assert_serves(&case, &srv, srv.port(i), &page("old", i));
        }
        let (_held, port) = take_port();
        let ports: Vec<String> = (0..3)
            .map(|i| {
                if i == taken {
                    port.to_string()
                } else {
                    srv.port(i).to_string()
                }
            })
            .collect();
        let conf = three_servers(procs, "new", [&ports[0], &ports[1], &ports[2]]);
        std::fs::write(&srv.conf, conf).unwrap();
        reload(&srv, "configuration reloaded");
        assert_bind_error_logged(&case, &srv.stderr(), port);
        for i in (0..3).filter(|&i| i != taken) {
            assert_comes_to_serve(&case, &srv, srv.port(i), &page("new", i));
        }
    }
}

#[test]
fn single_process_reload_serves_on_the_listeners_that_bound() {
    reload_with_one_taken(Procs::Single);
}

#[test]
fn workers_reload_serves_on_the_listeners_that_bound() {
    reload_with_one_taken(Procs::Workers);
}

#[test]
fn nothing_bindable_exits_1() {
    for procs in [Procs::Single, Procs::Workers] {
        let case = format!("{procs:?}, every listener taken");
        let dir = TempDir::new("listeners-none");
        site_dir(&dir, "site");
        let held = [take_port(), take_port(), take_port()];
        let ports = held.each_ref().map(|(_, p)| p.to_string());
        dir.write(
            "test.conf",
            three_servers(procs, "site", [&ports[0], &ports[1], &ports[2]]),
        );
        let out = run_cli(&["-c", "test.conf"], dir.path(), Duration::from_secs(10));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{case}: stderr:\n{}",
            out.stderr
        );
        for (_, port) in &held {
            assert_bind_error_logged(&case, &out.stderr, *port);
        }
        assert!(
            out.stderr.contains("no listener could be bound"),
            "{case}: {}",
            out.stderr
        );
    }
}

#[test]
fn reload_with_nothing_bindable_keeps_the_configuration_in_use() {
    for procs in [Procs::Single, Procs::Workers] {
        let case = format!("{procs:?}, reload, every listener taken");
        let dir = TempDir::new("listeners-reload-none");
        site_dir(&dir, "old");
        site_dir(&dir, "new");
        let srv = Server::start(dir, &three_servers(procs, "old", ["$P0", "$P1", "$P2"]));
        let held = [take_port(), take_port(), take_port()];
        let ports = held.each_ref().map(|(_, p)| p.to_string());
        std::fs::write(
            &srv.conf,
            three_servers(procs, "new", [&ports[0], &ports[1], &ports[2]]),
        )
        .unwrap();
        reload(&srv, "reload failed");
        for (_, port) in &held {
            assert_bind_error_logged(&case, &srv.stderr(), *port);
        }
        for i in 0..3 {
            assert_serves(&case, &srv, srv.port(i), &page("old", i));
        }
    }
}
