//! Sessions and cookies (CONFIG.md "Sessions and cookies"): the cookie a
//! first visit gets, the same session afterwards, forged and expired ids,
//! a CGI counter per session, sessions across a restart, and a flood of
//! cookie-less requests that passes `session_max` and evicts the oldest.

use crate::common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const COUNTER: &str = r#"import os
n = int(os.environ.get("SESSION_visits", "0")) + 1
print("Content-Type: text/plain")
print("X-Session: visits=%d" % n)
print()
print("sid=%s visits=%d" % (os.environ.get("SESSION_ID", ""), n))
"#;

fn config(store: &str, timeout: &str) -> String {
    format!(
        r#"
session_store {store};
server {{
    listen 127.0.0.1:$P0;
    root www;
    session on;
    session_timeout {timeout};
    location /cgi/ {{ cgi .py python3; }}
    location /plain/ {{ session off; }}
}}
"#
    )
}

fn site(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("www/index.html", "home\n");
    dir.write("www/plain/index.html", "no session here\n");
    dir.write("www/cgi/count.py", COUNTER);
    dir
}

fn get_with(srv: &Server, path: &str, cookie: Option<&str>) -> Response {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    srv.raw(&format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{cookie}Connection: close\r\n\r\n"
    ))
}

/// The `SID=...` pair of a `Set-Cookie` header.
fn sid_of(r: &Response) -> String {
    let set = r.must_header("Set-Cookie");
    set.split(';').next().unwrap().trim().to_string()
}

#[test]
fn first_visit_gets_a_session_cookie_with_the_right_attributes() {
    let srv = Server::start(site("sess-cookie"), &config("sessions", "30m"));
    let r = srv.get("/");
    assert_status(&r, 200);
    let set = r.must_header("Set-Cookie");
    let sid = set.strip_prefix("SID=").unwrap().split(';').next().unwrap();
    assert_eq!(sid.len(), 32, "128 bits in hex: {set}");
    assert!(sid.bytes().all(|b| b.is_ascii_hexdigit()), "{set}");
    for attr in ["Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(
            set.split("; ").any(|a| a == attr),
            "{attr} missing in {set}"
        );
    }
    // Two first visits never share an id.
    assert_ne!(sid_of(&srv.get("/")), format!("SID={sid}"));
    // A route with `session off` sets nothing.
    assert!(srv.get("/plain/").header("Set-Cookie").is_none());
}

#[test]
fn a_valid_sid_is_kept_and_gets_no_new_cookie() {
    let srv = Server::start(site("sess-keep"), &config("sessions", "30m"));
    let sid = sid_of(&srv.get("/"));
    for _ in 0..3 {
        let r = get_with(&srv, "/", Some(&format!("theme=dark; {sid}; x=1")));
        assert_status(&r, 200);
        assert!(r.header("Set-Cookie").is_none(), "{}", r.describe());
    }
}

#[test]
fn forged_malformed_and_expired_sids_get_a_fresh_session() {
    let srv = Server::start(site("sess-forged"), &config("sessions", "1s"));
    for forged in [
        "SID=00000000000000000000000000000000",
        "SID=nothex",
        "SID=",
        "SID=\"0123\"",
        "SID=ABCDEFABCDEFABCDEFABCDEFABCDEFAB",
    ] {
        let r = get_with(&srv, "/", Some(forged));
        let fresh = sid_of(&r);
        assert_ne!(fresh, forged, "a forged id is never adopted");
    }
    let sid = sid_of(&srv.get("/"));
    assert!(
        get_with(&srv, "/", Some(&sid))
            .header("Set-Cookie")
            .is_none()
    );
    // Last use is kept in whole seconds, and the server read its clock
    // before this does: from the next second on, the 1 s timeout has passed.
    let touched = unix_secs();
    while unix_secs() <= touched {
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = get_with(&srv, "/", Some(&sid));
    assert_ne!(sid_of(&r), sid, "an expired session is replaced");
}

#[test]
fn cgi_counter_counts_per_session() {
    let srv = Server::start(site("sess-count"), &config("sessions", "30m"));
    let first = srv.get("/cgi/count.py");
    assert_status(&first, 200);
    let a = sid_of(&first);
    assert!(
        first.body_str().ends_with("visits=1\n"),
        "{}",
        first.describe()
    );
    assert!(
        first.header("X-Session").is_none(),
        "session headers stay inside"
    );
    for n in 2..=4 {
        let r = get_with(&srv, "/cgi/count.py", Some(&a));
        assert!(
            r.body_str().ends_with(&format!("visits={n}\n")),
            "{}",
            r.describe()
        );
        assert!(r.body_str().contains(a.trim_start_matches("SID=")));
    }
    // Another visitor starts at 1; the first is not disturbed.
    let other = srv.get("/cgi/count.py");
    assert!(
        other.body_str().ends_with("visits=1\n"),
        "{}",
        other.describe()
    );
    let r = get_with(&srv, "/cgi/count.py", Some(&a));
    assert!(r.body_str().ends_with("visits=5\n"), "{}", r.describe());
}

#[test]
fn sessions_survive_a_restart() {
    let store = std::env::temp_dir().join(format!("ls-sess-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let conf = config(store.to_str().unwrap(), "30m");
    let sid;
    {
        let mut srv = Server::start(site("sess-restart-1"), &conf);
        sid = sid_of(&srv.get("/cgi/count.py"));
        get_with(&srv, "/cgi/count.py", Some(&sid));
        let st = Command::new("kill")
            .args(["-TERM", &srv.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let exit = srv
            .wait_exit(Duration::from_secs(5))
            .expect("stops on SIGTERM");
        assert!(exit.success(), "{exit}");
    }
    let srv = Server::start(site("sess-restart-2"), &conf);
    let r = get_with(&srv, "/cgi/count.py", Some(&sid));
    assert!(r.header("Set-Cookie").is_none(), "{}", r.describe());
    assert!(r.body_str().ends_with("visits=3\n"), "{}", r.describe());
    drop(srv);
    let _ = std::fs::remove_dir_all(&store);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Session files in the store: names of 32 hex digits (a temporary being
/// written, `.<hex>.<pid>.tmp`, is not one).
fn session_files(store: &Path) -> usize {
    std::fs::read_dir(store)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.as_encoded_bytes();
            name.len() == 32 && name.iter().all(u8::is_ascii_hexdigit)
        })
        .count()
}

/// Cookie-less GETs pipelined `BATCH` at a time, 5,000 per connection
/// (`keepalive_requests` is 10,000), each of which must be a 200 with a new
/// session's cookie, for as long as `more` (told the requests answered so
/// far, after each batch) says. Returns the last session's `SID=...`.
fn flood(srv: &Server, mut more: impl FnMut(usize) -> bool) -> String {
    const BATCH: usize = 500;
    const PER_CONN: usize = 5_000;
    let batch = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(BATCH);
    let mut last = String::new();
    let mut sent = 0;
    loop {
        let mut c = srv.connect(0);
        for _ in 0..PER_CONN / BATCH {
            c.send(&batch);
            for _ in 0..BATCH {
                let r = c.read_response();
                assert_status(&r, 200);
                assert_eq!(r.body, b"home\n");
                last = sid_of(&r);
            }
            sent += BATCH;
            if !more(sent) {
                return last;
            }
        }
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A flood of cookie-less requests, each of which makes a session, passes
/// `session_max` many times over: the store never holds more files than
/// the cap, the oldest session really goes (its cookie is unknown
/// afterwards), the newest stays, and memory stays bounded. The default
/// run has a cap of 300 (the cache is cut to it too) and ten times as many
/// requests; `LOCALSERVER_SOAK=1` sends 100,000 with a cap of 20,000, past
/// both the cache's 10,000 and the cap.
#[test]
fn a_flood_of_cookie_less_requests_passes_session_max_and_evicts_the_oldest() {
    let (cap, n, count_every) = if soak() {
        (20_000, 100_000, 5_000)
    } else {
        (300, 3_000, 500)
    };
    let conf = config("sessions", "30m").replace(
        "session_store sessions;",
        &format!("session_store sessions;\nsession_max {cap};"),
    );
    let srv = Server::start(site("sess-flood"), &conf);
    let store = srv.dir.join("sessions");
    let first = sid_of(&srv.get("/"));
    let first_second = unix_secs();
    assert_eq!(session_files(&store), 1);

    let start = std::time::Instant::now();
    let mut most = 0;
    let mut rss_full = 0;
    // Last use has a one-second resolution and ties go by id, so the first
    // session is only sure to be the oldest of the store once `cap`
    // sessions were made in a later second: requests sent after this test
    // saw the clock move on.
    let mut sent_in_a_later_second = None;
    let mut total = 0;
    let last = flood(&srv, |sent| {
        total = sent;
        if sent % count_every == 0 {
            let files = session_files(&store);
            most = most.max(files);
            assert!(
                files <= cap,
                "{files} session files after {sent} requests, session_max {cap}"
            );
        }
        // The store (and the cache) are full after the first `cap`
        // sessions: what the server holds from then on is its working set.
        if rss_full == 0 && sent >= 2 * cap {
            rss_full = rss_kib(srv.pid());
        }
        if sent_in_a_later_second.is_none() && unix_secs() > first_second {
            sent_in_a_later_second = Some(sent);
        }
        let later = sent_in_a_later_second.map_or(0, |s| sent - s);
        sent < n || later <= cap
    });
    let took = start.elapsed();
    let rss_end = rss_kib(srv.pid());
    assert_eq!(most, cap, "the store never filled up to session_max");
    assert_eq!(session_files(&store), cap);

    // The newest is still known: no new cookie. (Checked first: the
    // session the check below makes evicts one of those last used in the
    // current second, which may be this one.)
    let r = get_with(&srv, "/", Some(&last));
    assert_status(&r, 200);
    assert!(r.header("Set-Cookie").is_none(), "{}", r.describe());
    assert!(store.join(last.trim_start_matches("SID=")).exists());
    // The oldest is gone, its file included: its cookie gets a new one.
    assert!(
        !store.join(first.trim_start_matches("SID=")).exists(),
        "{first} still has its file"
    );
    let r = get_with(&srv, "/", Some(&first));
    assert_status(&r, 200);
    assert_ne!(sid_of(&r), first, "the oldest session is still known");
    assert_eq!(session_files(&store), cap);

    eprintln!(
        "{total} requests in {took:?}, session_max {cap}: RSS {rss_full} KiB once full, {rss_end} KiB at the end"
    );
    // Each request made a session and evicted one: growth past the point
    // where the store was full would be a leak per request (1 KiB each is
    // megabytes here).
    assert!(
        rss_end <= rss_full + 2 * 1024,
        "RSS grew from {rss_full} KiB (store full) to {rss_end} KiB"
    );
}
