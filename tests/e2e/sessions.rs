//! Sessions and cookies (CONFIG.md "Sessions and cookies"): the cookie a
//! first visit gets, the same session afterwards, forged, altered and
//! expired ids, a CGI counter per session, sessions across a restart, a
//! flood of cookie-less requests that writes nothing and evicts nobody,
//! `session_max` refusing new stored sessions, sessions per server block,
//! rotation, the server owning the `SID` cookie, and the store's hygiene.

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
    assert_eq!(sid.len(), 72, "id, issue time and MAC in hex: {set}");
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
        "SID=000000000000000000000000000000000000000000000000000000000000000000000000",
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
/// written, `.<hex>.<pid>.tmp`, the key and the counter are not).
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

/// The session file of a `SID=...` pair: named by its first 32 digits.
fn file_of(store: &Path, sid: &str) -> std::path::PathBuf {
    store.join(&sid.trim_start_matches("SID=")[..32])
}

/// Cookie-less GETs pipelined `BATCH` at a time, each of which must be a
/// 200 with a new session's cookie. Returns the last session's `SID=...`.
fn flood(srv: &Server, n: usize) -> String {
    const BATCH: usize = 500;
    let batch = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(BATCH);
    let mut last = String::new();
    let mut sent = 0;
    let mut c = srv.connect(0);
    while sent < n {
        c.send(&batch);
        for _ in 0..BATCH {
            let r = c.read_response();
            assert_status(&r, 200);
            assert_eq!(r.body, b"home\n");
            let sid = sid_of(&r);
            assert_ne!(sid, last, "every cookie-less request gets its own id");
            last = sid;
        }
        sent += BATCH;
    }
    last
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A flood of cookie-less requests, each of which gets a session, writes
/// nothing to the store, keeps nothing in memory, and signs nobody out: a
/// session that holds a value before it is still there, values and all,
/// with `session_max` 1. Every id the flood was given is still recognised
/// afterwards (no second cookie for nothing). `LOCALSERVER_SOAK=1` sends
/// 100,000 instead of 3,000.
#[test]
fn a_flood_of_cookie_less_requests_writes_nothing_and_evicts_nobody() {
    let n = if soak() { 100_000 } else { 3_000 };
    let conf = config("sessions", "30m").replace(
        "session_store sessions;",
        "session_store sessions;\nsession_max 1;",
    );
    let srv = Server::start(site("sess-flood"), &conf);
    let store = srv.dir.join("sessions");
    let first = srv.get("/cgi/count.py");
    let signed_in = sid_of(&first);
    assert_eq!(session_files(&store), 1);
    let rss_before = rss_kib(srv.pid());

    let start = std::time::Instant::now();
    let last = flood(&srv, n);
    let took = start.elapsed();
    let rss_after = rss_kib(srv.pid());
    assert_eq!(session_files(&store), 1, "the flood wrote session files");
    assert!(file_of(&store, &signed_in).exists());
    // The stored session is intact: its counter goes on from 1.
    let r = get_with(&srv, "/cgi/count.py", Some(&signed_in));
    assert!(r.header("Set-Cookie").is_none(), "{}", r.describe());
    assert!(r.body_str().ends_with("visits=2\n"), "{}", r.describe());
    // The flood's own ids are still known, without a file.
    let r = get_with(&srv, "/", Some(&last));
    assert!(r.header("Set-Cookie").is_none(), "{}", r.describe());
    eprintln!("{n} requests in {took:?}: RSS {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after <= rss_before + 2 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}

/// `session_max` bounds the sessions with values: past it a new session's
/// first value is refused (the answer is otherwise unchanged, the error log
/// says so), and no stored session is evicted; one that loses its values
/// makes room again.
#[test]
fn session_max_refuses_a_new_stored_session_and_evicts_none() {
    const FORGET: &str = "import os\nprint(\"Content-Type: text/plain\")\nprint(\"X-Session: visits=\")\nprint()\nprint(\"forgot\")\n";
    let conf = config("sessions", "30m").replace(
        "session_store sessions;",
        "session_store sessions;\nsession_max 2;\nerror_log logs/error.log warn;",
    );
    let dir = site("sess-max");
    dir.write("www/cgi/forget.py", FORGET);
    dir.mkdir("logs");
    let srv = Server::start(dir, &conf);
    let store = srv.dir.join("sessions");
    let a = sid_of(&srv.get("/cgi/count.py"));
    let b = sid_of(&srv.get("/cgi/count.py"));
    assert_eq!(session_files(&store), 2);
    // The third is answered, but its value is not kept.
    let third = srv.get("/cgi/count.py");
    assert_status(&third, 200);
    assert!(third.body_str().ends_with("visits=1\n"));
    let c = sid_of(&third);
    let r = get_with(&srv, "/cgi/count.py", Some(&c));
    assert!(r.body_str().ends_with("visits=1\n"), "{}", r.describe());
    assert!(r.header("Set-Cookie").is_none(), "its id is still valid");
    assert_eq!(session_files(&store), 2);
    let log = std::fs::read_to_string(srv.dir.join("logs/error.log")).unwrap();
    assert!(log.contains("session_max (2)"), "{log}");
    // The first two are intact.
    for sid in [&a, &b] {
        let r = get_with(&srv, "/cgi/count.py", Some(sid));
        assert!(r.body_str().ends_with("visits=2\n"), "{}", r.describe());
    }
    // a forgets its value: c may store now.
    get_with(&srv, "/cgi/forget.py", Some(&a));
    assert_eq!(session_files(&store), 1);
    let r = get_with(&srv, "/cgi/count.py", Some(&c));
    assert!(r.body_str().ends_with("visits=1\n"));
    let r = get_with(&srv, "/cgi/count.py", Some(&c));
    assert!(r.body_str().ends_with("visits=2\n"), "{}", r.describe());
}

/// A session belongs to the server block that issued it: the same id sent
/// to another server (another `server_name` on the same port) is unknown
/// there, and its values never show.
#[test]
fn a_session_belongs_to_the_server_that_issued_it() {
    let conf = r#"
session_store sessions;
server {
    listen 127.0.0.1:$P0;
    server_name other.test;
    root www;
    session on;
    location /cgi/ { cgi .py python3; }
}
server {
    listen 127.0.0.1:$P0;
    server_name sec.test;
    root www;
    session on;
    location /cgi/ { cgi .py python3; }
}
"#;
    let srv = Server::start(site("sess-vhost"), conf);
    let ask = |host: &str, cookie: &str| {
        srv.raw(&format!(
            "GET /cgi/count.py HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ))
    };
    let first = srv.get_host(0, "other.test", "/cgi/count.py");
    let sid = sid_of(&first);
    assert!(ask("other.test", &sid).body_str().ends_with("visits=2\n"));
    let r = ask("sec.test", &sid);
    assert!(r.body_str().ends_with("visits=1\n"), "{}", r.describe());
    assert_ne!(sid_of(&r), sid, "another server's id is unknown");
    // And the first server's session is untouched.
    assert!(ask("other.test", &sid).body_str().ends_with("visits=3\n"));
}

/// Any single changed digit of a valid id (id, issue time or MAC) makes
/// it unknown: a fresh session, and the values never show.
#[test]
fn an_altered_id_is_never_recognised() {
    let srv = Server::start(site("sess-mac"), &config("sessions", "30m"));
    let sid = sid_of(&srv.get("/cgi/count.py"));
    let hex = sid.trim_start_matches("SID=").to_string();
    for i in [0, 31, 32, 39, 40, 71] {
        let mut b = hex.clone().into_bytes();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        let forged = format!("SID={}", String::from_utf8(b).unwrap());
        let r = get_with(&srv, "/cgi/count.py", Some(&forged));
        assert!(
            r.body_str().ends_with("visits=1\n"),
            "digit {i}: {}",
            r.describe()
        );
        assert_ne!(sid_of(&r), forged);
    }
    // The real one still counts on.
    let r = get_with(&srv, "/cgi/count.py", Some(&sid));
    assert!(r.body_str().ends_with("visits=2\n"), "{}", r.describe());
}

/// When a request carries several `SID` cookies, any valid one is used: a
/// planted bad one cannot force a new session on every request.
#[test]
fn any_valid_sid_among_several_is_used() {
    let srv = Server::start(site("sess-several"), &config("sessions", "30m"));
    let sid = sid_of(&srv.get("/cgi/count.py"));
    let planted = format!("SID={}", "0".repeat(72));
    let r = get_with(&srv, "/cgi/count.py", Some(&format!("{planted}; {sid}")));
    assert!(r.header("Set-Cookie").is_none(), "{}", r.describe());
    assert!(r.body_str().ends_with("visits=2\n"), "{}", r.describe());
}

/// `X-Session-Rotate: 1` moves the values to a new id, sent on that answer;
/// the old id is unknown from then on. The demo's login does it.
#[test]
fn rotation_moves_the_values_to_a_new_id() {
    const LOGIN: &str = "import os\nprint(\"Content-Type: text/plain\")\nprint(\"X-Session-Rotate: 1\")\nprint(\"X-Session: user=ada\")\nprint()\nprint(\"visits=%s\" % os.environ.get(\"SESSION_visits\", \"\"))\n";
    let dir = site("sess-rotate");
    dir.write("www/cgi/login.py", LOGIN);
    let srv = Server::start(dir, &config("sessions", "30m"));
    let store = srv.dir.join("sessions");
    let old = sid_of(&srv.get("/cgi/count.py"));
    get_with(&srv, "/cgi/count.py", Some(&old));
    let r = get_with(&srv, "/cgi/login.py", Some(&old));
    assert_status(&r, 200);
    assert!(r.header("X-Session-Rotate").is_none());
    let new = sid_of(&r);
    assert_ne!(new, old);
    // The new id has the values, old and new.
    let r = get_with(&srv, "/cgi/count.py", Some(&new));
    assert!(r.header("Set-Cookie").is_none(), "{}", r.describe());
    assert!(r.body_str().ends_with("visits=3\n"), "{}", r.describe());
    assert!(
        std::fs::read_to_string(file_of(&store, &new))
            .unwrap()
            .contains("user=ada")
    );
    // The old one is unknown: a fresh session, without the values.
    let r = get_with(&srv, "/cgi/count.py", Some(&old));
    assert!(r.body_str().ends_with("visits=1\n"), "{}", r.describe());
    assert_ne!(sid_of(&r), old);
}

/// The shipped login rotates the id at sign-in (session fixation).
#[test]
fn the_demo_login_rotates_the_id() {
    let srv = start_shipped_site("sess-demo-login");
    let planted = sid_of(&srv.get("/"));
    let body = "name=Ada";
    let r = srv.raw(&format!(
        "POST /cgi-bin/login.py HTTP/1.1\r\nHost: localhost\r\nCookie: {planted}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert_status(&r, 303);
    let signed_in = sid_of(&r);
    assert_ne!(signed_in, planted);
    let who = |sid: &str| get_with(&srv, "/cgi-bin/whoami.py", Some(sid)).body_str();
    assert!(
        who(&signed_in).contains("\"user\": \"Ada\""),
        "{}",
        who(&signed_in)
    );
    assert!(
        who(&planted).contains("\"user\": null"),
        "{}",
        who(&planted)
    );
}

/// The server owns the `SID` cookie: a script's `Set-Cookie: SID=...` is
/// dropped, its other cookies pass.
#[test]
fn a_script_cannot_set_the_sid_cookie() {
    const SETS: &str = "print(\"Content-Type: text/plain\")\nprint(\"Set-Cookie: SID=attacker; Path=/\")\nprint(\"Set-Cookie: theme=dark; Path=/\")\nprint(\"Set-Cookie:  SID =x\")\nprint()\nprint(\"ok\")\n";
    let dir = site("sess-owncookie");
    dir.write("www/cgi/sets.py", SETS);
    let srv = Server::start(dir, &config("sessions", "30m"));
    let sid = sid_of(&srv.get("/"));
    let r = get_with(&srv, "/cgi/sets.py", Some(&sid));
    assert_status(&r, 200);
    let cookies = r.headers_named("Set-Cookie");
    assert_eq!(cookies, vec!["theme=dark; Path=/"], "{}", r.describe());
    // On a new session, only the server's own SID cookie.
    let r = srv.get("/cgi/sets.py");
    let cookies = r.headers_named("Set-Cookie");
    assert_eq!(cookies.len(), 2, "{}", r.describe());
    assert!(
        cookies
            .iter()
            .filter(|c| c.starts_with("SID="))
            .all(|c| c.len() > 72)
    );
}

/// The store is made 0700 with its key 0600, a store others can read is
/// warned about, and files the server did not make are left alone.
#[test]
fn the_store_is_private_and_leaves_foreign_files_alone() {
    let dir = site("sess-hygiene");
    dir.write("sessions-open/README", "mine\n");
    dir.write(
        &format!("sessions-open/{}", "ab".repeat(16)),
        "not a session\n",
    );
    dir.write("sessions-open/.deadbeef.1.tmp", "");
    std::fs::set_permissions(
        dir.join("sessions-open"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let srv = Server::start(
        dir,
        &config("sessions", "1s")
            .replace("session_store sessions;", "session_store sessions-open;"),
    );
    let fresh = Server::start(site("sess-hygiene-2"), &config("sessions", "30m"));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let store = fresh.dir.join("sessions");
    assert_eq!(mode(&store), 0o700);
    assert_eq!(mode(&store.join("sid.key")), 0o600);
    assert!(
        srv.stderr().contains("sessions-open has mode 755"),
        "{}",
        srv.stderr()
    );
    // Sessions come and expire; the foreign files stay.
    let sid = sid_of(&srv.get("/cgi/count.py"));
    let open = srv.dir.join("sessions-open");
    assert_eq!(mode(&file_of(&open, &sid)), 0o600);
    let t = unix_secs();
    while unix_secs() < t + 2 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = get_with(&srv, "/cgi/count.py", Some(&sid));
    for name in ["README", &"ab".repeat(16), ".deadbeef.1.tmp"] {
        assert!(open.join(name).exists(), "{name} was removed");
    }
}

/// A `session_store` inside a served folder would publish the sessions
/// and the key: refused at start, naming the line.
#[test]
fn a_session_store_under_a_root_is_refused() {
    let dir = site("sess-underroot");
    dir.write(
        "inside.conf",
        "session_store www/sessions;\nserver {\n    listen 127.0.0.1:1;\n    root www;\n    session on;\n}\n",
    );
    let out = run_cli(
        &["-t", "-c", "inside.conf"],
        dir.path(),
        Duration::from_secs(10),
    );
    assert!(!out.status.success(), "{}", out.stderr);
    assert!(out.stderr.contains("inside.conf:1"), "{}", out.stderr);
    assert!(out.stderr.contains("session_store"), "{}", out.stderr);
    // The default store (beside the config) under a root: the root's line.
    dir.write(
        "default.conf",
        "server {\n    listen 127.0.0.1:1;\n    root .;\n    session on;\n}\n",
    );
    let out = run_cli(
        &["-t", "-c", "default.conf"],
        dir.path(),
        Duration::from_secs(10),
    );
    assert!(!out.status.success(), "{}", out.stderr);
    assert!(out.stderr.contains("default.conf:3"), "{}", out.stderr);
    // Without sessions, nothing to refuse.
    dir.write(
        "nosession.conf",
        "server {\n    listen 127.0.0.1:1;\n    root .;\n}\n",
    );
    let out = run_cli(
        &["-t", "-c", "nosession.conf"],
        dir.path(),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", out.stderr);
}
