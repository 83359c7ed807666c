//! Sessions and cookies (CONFIG.md "Sessions and cookies"): the cookie a
//! first visit gets, the same session afterwards, forged and expired ids,
//! a CGI counter per session, sessions across a restart, and a flood of
//! cookie-less requests that leaves memory bounded.


use crate::common::*;
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
    std::thread::sleep(Duration::from_millis(2200));
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

/// 100,000 cookie-less requests (each makes a session) over keep-alive
/// connections: memory stays bounded by the store's limits.
#[test]
fn a_flood_of_cookie_less_requests_leaves_rss_bounded() {
    let srv = Server::start(site("sess-flood"), &config("sessions", "30m"));
    let req = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    // keepalive_requests is 10,000: a new connection every 5,000 requests.
    let run = |n: usize| {
        for _ in 0..n / 5_000 {
            let mut c = srv.connect(0);
            for _ in 0..5_000 {
                c.send(req);
                let r = c.read_response();
                assert_eq!(r.status, 200);
            }
        }
    };
    run(20_000);
    let after_warmup = rss_kib(srv.pid());
    for _ in 0..4 {
        run(20_000);
    }
    let after = rss_kib(srv.pid());
    eprintln!("RSS after 20,000 requests: {after_warmup} KiB; after 100,000: {after} KiB");
    // The memory cache holds at most 10,000 sessions: growth past the
    // warm-up must stay small (it would be tens of MiB if unbounded).
    assert!(
        after <= after_warmup + 8 * 1024,
        "RSS grew from {after_warmup} KiB to {after} KiB"
    );
}
