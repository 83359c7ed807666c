//! `worker_processes N`: a master and N workers sharing the listeners
//! (SO_REUSEPORT sockets the master keeps), a dead worker replaced, sessions
//! valid on every worker, reload through new workers, stops that exit 0;
//! and `user NAME` (when the tests run as root, as CI does).

use crate::common::*;
use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

/// A CGI that says which process ran it (its parent: the worker) and under
/// which uid, and the session it saw.
const WHO: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"worker=$PPID uid=$(id -u) sid=$SESSION_ID\"\n";

fn site(name: &str, top: &str) -> Server {
    let dir = TempDir::new(name);
    dir.write("www/index.html", "hi\n");
    dir.write_script("www/cgi/who.sh", WHO);
    let config = format!(
        "{top}
session_store sessions;
server {{
    listen 127.0.0.1:$P0;
    root www;
    location /cgi/ {{ cgi .sh /bin/sh; session on; }}
}}
"
    );
    Server::start(dir, &config)
}

/// The pids whose parent is `pid`.
fn children(pid: u32) -> BTreeSet<u32> {
    children_of(pid).into_iter().map(|(p, _)| p).collect()
}

fn field<'a>(body: &'a str, name: &str) -> &'a str {
    body.split_whitespace()
        .find_map(|w| w.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .unwrap_or("")
}

fn who(srv: &Server, cookie: Option<&str>) -> Response {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    srv.raw(&format!(
        "GET /cgi/who.sh HTTP/1.1\r\nHost: a\r\n{cookie}Connection: close\r\n\r\n"
    ))
}

fn wait_for(limit: Duration, f: impl FnMut() -> bool) -> bool {
    eventually(limit, f)
}

fn signal(pid: u32, name: &str) {
    kill(pid, name);
}

/// Workers answering requests on new connections (many, so both get some).
fn answering_workers(srv: &Server, n: usize) -> BTreeSet<u32> {
    (0..n)
        .map(|_| {
            let r = who(srv, None);
            assert_status(&r, 200);
            field(&r.body_str(), "worker").parse().unwrap()
        })
        .collect()
}

#[test]
fn two_workers_both_serve_and_a_killed_one_is_replaced() {
    let mut srv = site("workers-two", "worker_processes 2;");
    let master = srv.pid();
    // The port accepts as soon as the master has bound it; the workers
    // come an instant later.
    assert!(wait_for(Duration::from_secs(5), || children(master).len() == 2));
    let kids = children(master);
    let seen = answering_workers(&srv, 40);
    assert_eq!(seen, kids, "both workers answer (and only they)");

    // Kill one; the master forks a replacement and nothing is refused.
    let victim = *kids.iter().next().unwrap();
    signal(victim, "KILL");
    for _ in 0..20 {
        assert_status(&srv.get("/"), 200);
    }
    assert!(
        wait_for(Duration::from_secs(5), || {
            let now = children(master);
            now.len() == 2 && !now.contains(&victim)
        }),
        "no replacement worker: {:?}\n{}",
        children(master),
        srv.stderr()
    );
    let after = children(master);
    assert!(
        wait_for(Duration::from_secs(5), || answering_workers(&srv, 20)
            == after),
        "the new worker does not answer"
    );
    assert!(
        srv.stderr()
            .contains(&format!("worker process {victim} exited"))
    );
    signal(master, "TERM");
    let st = srv
        .wait_exit(Duration::from_secs(5))
        .expect("master still running");
    assert_eq!(st.code(), Some(0));
    // The master exits only once it has reaped every worker, so none is
    // left the moment it is gone. (Asking for the master's children now
    // would find none whatever happened: a worker outliving its master is
    // re-parented, not the master's child any more.)
    let left = server_processes(&srv);
    assert!(
        left.is_empty(),
        "processes {left:?} of this server (its workers were {after:?}) outlived their master:\n{}",
        srv.stderr()
    );
}

/// The live processes of this test's server: a worker runs the master's
/// command line, which names the test's own configuration file (a zombie
/// has none).
fn server_processes(srv: &Server) -> Vec<u32> {
    pids_with_cmdline(&srv.conf.to_string_lossy())
}

#[test]
fn a_session_made_on_one_worker_is_valid_on_the_other() {
    let srv = site("workers-session", "worker_processes 2;");
    let first = who(&srv, None);
    assert_status(&first, 200);
    let set = first.must_header("Set-Cookie");
    let pair = set.split(';').next().unwrap().trim().to_string();
    let sid = pair.strip_prefix("SID=").unwrap().to_string();
    let mut workers = BTreeSet::new();
    for i in 0..200 {
        let r = who(&srv, Some(&pair));
        assert_status(&r, 200);
        assert!(
            r.header("Set-Cookie").is_none(),
            "request {i} got a new session: {:?}",
            r.header("Set-Cookie")
        );
        let body = r.body_str();
        assert_eq!(field(&body, "sid"), sid, "request {i}: {body}");
        workers.insert(field(&body, "worker").to_string());
    }
    assert_eq!(
        workers.len(),
        2,
        "both workers saw the session: {workers:?}"
    );
}

#[test]
fn sighup_starts_new_workers_with_the_new_config_and_sigquit_exits_0() {
    let dir = TempDir::new("workers-hup");
    dir.write("a/index.html", "site a\n");
    dir.write("b/index.html", "site b\n");
    let mut srv = Server::start(
        dir,
        "worker_processes 2; server { listen 127.0.0.1:$P0; root a; }",
    );
    let master = srv.pid();
    assert!(wait_for(Duration::from_secs(5), || children(master).len() == 2));
    let old = children(master);
    assert_eq!(srv.get("/").body, b"site a\n");
    std::fs::write(
        &srv.conf,
        format!(
            "worker_processes 2; server {{ listen 127.0.0.1:{}; root b; }}",
            srv.port(0)
        ),
    )
    .unwrap();
    signal(master, "HUP");
    // Every request is answered meanwhile, first by old workers, then new.
    let mut switched = false;
    for _ in 0..300 {
        let r = srv.get("/");
        assert_status(&r, 200);
        if r.body == b"site b\n" {
            switched = true;
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert!(switched, "the new configuration is never served");
    assert!(
        wait_for(Duration::from_secs(5), || {
            let now = children(master);
            now.len() == 2 && now.is_disjoint(&old)
        }),
        "old workers did not give way: before {old:?}, now {:?}",
        children(master)
    );
    for _ in 0..20 {
        assert_eq!(srv.get("/").body, b"site b\n");
    }
    // A broken configuration changes nothing.
    let current = children(master);
    std::fs::write(&srv.conf, "worker_processes 2; server { nonsense; }").unwrap();
    signal(master, "HUP");
    assert!(wait_for(Duration::from_secs(3), || srv
        .stderr()
        .contains("reload failed")));
    assert_eq!(children(master), current);
    assert_eq!(srv.get("/").body, b"site b\n");

    signal(master, "QUIT");
    let st = srv
        .wait_exit(Duration::from_secs(5))
        .expect("master still running");
    assert_eq!(st.code(), Some(0));
    let left = server_processes(&srv);
    assert!(left.is_empty(), "{left:?} outlived their master");
}

/// A folder for the files a `user nobody` server must reach, made directly
/// in a system folder every user can traverse (`/tmp`, else `/dev/shm`),
/// mode 0755, removed on drop. The test's own temporary folder will not do:
/// its parents (`TMPDIR` may be under `/root`) need not be traversable by
/// `nobody`, and a test never changes permissions outside its own folder.
struct SharedDir(std::path::PathBuf);

impl SharedDir {
    /// `None` when no such system folder is traversable by everyone.
    fn new(name: &str) -> Option<SharedDir> {
        use std::os::unix::fs::PermissionsExt;
        let base = ["/tmp", "/dev/shm"].into_iter().find(|b| {
            std::fs::metadata(b).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 != 0)
        })?;
        let path = std::path::Path::new(base)
            .join(format!("localserver-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Some(SharedDir(path))
    }

    /// Write `rel` (its folders 0755) with `mode`.
    fn write(&self, rel: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.0.join(rel);
        let mut dir = p.parent();
        while let Some(d) = dir.filter(|d| *d != self.0) {
            std::fs::create_dir_all(d).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
            dir = d.parent();
        }
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `user nobody` site (with `top` at the top level) whose document root
/// and CGI live in `shared`.
fn user_site(name: &str, shared: &SharedDir, top: &str) -> Server {
    shared.write("www/index.html", "hi\n", 0o644);
    shared.write("www/cgi/who.sh", WHO, 0o755);
    let config = format!(
        "user nobody;
{top}
server {{
    listen 127.0.0.1:$P0;
    root {}/www;
    location /cgi/ {{ cgi .sh /bin/sh; }}
}}
",
        shared.0.display()
    );
    Server::start(TempDir::new(name), &config)
}

#[test]
fn user_drops_root_after_binding_in_one_process_and_in_workers() {
    const TEST: &str = "user_drops_root_after_binding_in_one_process_and_in_workers";
    if !is_root() {
        skip(TEST, "not root: `user` has nothing to drop");
        return;
    }
    let nobody = nobody_uid().expect("a user named nobody");
    let Some(shared) = SharedDir::new("user") else {
        skip(
            TEST,
            "neither /tmp nor /dev/shm can be traversed by every user",
        );
        return;
    };
    // One process: it binds as root, then serves (and runs CGI) as nobody.
    let srv = user_site("user-single", &shared, "");
    assert_eq!(uid_of(srv.pid()), nobody);
    assert_status(&srv.get("/index.html"), 200);
    let r = who(&srv, None);
    assert_status(&r, 200);
    assert_eq!(field(&r.body_str(), "uid"), nobody.to_string());
    assert!(
        !srv.stderr().contains("running as root"),
        "{}",
        srv.stderr()
    );
    drop(srv);

    // Workers: the master stays root, each worker is nobody.
    let srv = user_site("user-workers", &shared, "worker_processes 2;");
    assert_eq!(uid_of(srv.pid()), 0);
    assert!(wait_for(Duration::from_secs(5), || children(srv.pid())
        .len()
        == 2));
    let kids = children(srv.pid());
    for k in kids {
        assert_eq!(uid_of(k), nobody, "worker {k}");
    }
    let r = who(&srv, None);
    assert_status(&r, 200);
    assert_eq!(field(&r.body_str(), "uid"), nobody.to_string());

    // Workers that dropped root still die with their master (a change of
    // credentials clears the parent-death signal; it is set after it).
    let master = srv.pid();
    let kids = children(master);
    kill(master, "KILL");
    assert!(
        wait_for(Duration::from_secs(3), || kids.iter().all(
            |k| !std::path::Path::new(&format!("/proc/{k}")).exists()
                || std::fs::read_to_string(format!("/proc/{k}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
        )),
        "workers {kids:?} outlived their killed master"
    );
}

#[test]
fn an_unknown_user_is_refused_at_start() {
    if !is_root() {
        skip(
            "an_unknown_user_is_refused_at_start",
            "not root: `user` is not looked up",
        );
        return;
    }
    let dir = TempDir::new("user-unknown");
    dir.write("www/index.html", "hi\n");
    let port = free_port();
    dir.write(
        "t.conf",
        format!("user no-such-user-here; server {{ listen 127.0.0.1:{port}; root www; }}"),
    );
    let out = run_cli(&["-c", "t.conf"], dir.path(), Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("no-such-user-here"), "{}", out.stderr);
}
