//! Processes and privileges (CONFIG.md `user`, `error_log`, `access_log`,
//! `SIGUSR1`, "CGI"): with `user`, the logs in a folder only root may write
//! still get what workers and CGI scripts write, before and after a
//! logrotate-style rename and `SIGUSR1`; a CGI script inherits no
//! descriptor but 0-2, not even one the server itself inherited; its CPU
//! time is bounded by `cgi_timeout`; `user root` is warned about.
//!
//! The `user` tests need root (CI runs as root) and skip otherwise.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const LIMIT: Duration = Duration::from_secs(10);

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}

// ---------------------------------------------------------------------------
// What a CGI script inherits
// ---------------------------------------------------------------------------

/// A server started by hand with extra descriptors open (not `CLOEXEC`),
/// as a careless parent would leave them; killed with its group on drop.
struct Launched {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Launched {
    /// Start on `config` (with `$DIR` and `$P0`) with `extra` descriptors
    /// open on `/dev/null`, and wait until it listens.
    fn start(dir: TempDir, config: &str, extra: &'static [i32]) -> Launched {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let (text, ports) = expand_config(config, dir.path());
        let conf = dir.write("test.conf", &text);
        // Opened CLOEXEC by std; only the dup2 copies reach the server.
        let null = fs::File::open("/dev/null").unwrap();
        let raw = null.as_raw_fd();
        let mut cmd = Command::new(BIN);
        cmd.arg("-c")
            .arg(&conf)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("server.stderr")).unwrap());
        dies_with_test(&mut cmd);
        // SAFETY: runs between fork and exec; dup2 is async-signal-safe
        // and `raw` stays open in the parent until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in extra {
                    if libc::dup2(raw, fd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("cannot start the localserver binary");
        drop(null);
        let mut l = Launched {
            child,
            port: ports[0],
            _dir: dir,
        };
        let pid = l.child.id();
        let up = eventually(START_TIMEOUT, || listening_ports(pid).contains(&l.port));
        if !up {
            let _ = l.child.try_wait();
            panic!(
                "localserver did not start; stderr: {}",
                read(&l._dir.join("server.stderr"))
            );
        }
        for &fd in extra {
            assert!(
                Path::new(&format!("/proc/{pid}/fd/{fd}")).exists(),
                "the server did not inherit fd {fd}"
            );
        }
        l
    }

    fn get(&self, path: &str) -> Response {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let mut c = Conn::connect(self.port);
        c.send(req.as_bytes());
        c.read_response_to(req.as_bytes())
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lists the descriptors it was started with (`ls` opens one more for the
/// listing itself: the lowest free one).
const FDS_SH: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
exec ls -1 /proc/self/fd
";

#[test]
fn a_cgi_script_inherits_no_descriptor_the_server_inherited() {
    for top in ["", "worker_processes 2;"] {
        let dir = TempDir::new("priv-fds");
        dir.write_script("www/cgi/fds.sh", FDS_SH);
        let srv = Launched::start(
            dir,
            &format!(
                "{top}\nserver {{ listen 127.0.0.1:$P0; root www;\n\
                 location /cgi/ {{ cgi .sh /bin/sh; }} }}"
            ),
            &[10, 251],
        );
        let r = srv.get("/cgi/fds.sh");
        assert_status(&r, 200);
        let fds: BTreeSet<u32> = r
            .body_str()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        // 0-2, and 3: `ls`'s own handle on /proc/self/fd.
        assert_eq!(fds, BTreeSet::from([0, 1, 2, 3]), "{top}");
    }
}

// ---------------------------------------------------------------------------
// CPU time
// ---------------------------------------------------------------------------

/// Prints its `Max cpu time` line of /proc/self/limits.
const LIMITS_SH: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
grep 'Max cpu time' /proc/self/limits
";

/// Starts a busy loop in a session of its own (out of reach of the
/// process-group kill), writes its pid to `spin.pid`, and answers at once.
const SPIN_SH: &str = "#!/bin/sh
setsid sh -c 'echo $$ > spin.pid.tmp && mv spin.pid.tmp spin.pid && while :; do :; done' \
    </dev/null >/dev/null 2>&1 &
# The server kills this script's process group when it ends: wait until the
# spinner is out of it (its pid file is written after setsid).
while [ ! -e spin.pid ]; do sleep 0.05; done
printf 'Content-Type: text/plain\\r\\n\\r\\nspinning\\n'
";

/// Whether `pid` is gone or a zombie.
fn dead(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn cgi_timeout_bounds_a_scripts_cpu_time_even_out_of_its_group() {
    const TEST: &str = "cgi_timeout_bounds_a_scripts_cpu_time_even_out_of_its_group";
    // Rounded up to whole seconds.
    let dir = TempDir::new("priv-cpu");
    dir.write_script("www/cgi/limits.sh", LIMITS_SH);
    let srv = Server::start(
        dir,
        "cgi_timeout 2500ms;\nserver { listen 127.0.0.1:$P0; root www;\n\
         location /cgi/ { cgi .sh /bin/sh; } }",
    );
    let r = srv.get("/cgi/limits.sh");
    assert_status(&r, 200);
    let words: Vec<String> = r
        .body_str()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        words,
        ["Max", "cpu", "time", "3", "3", "seconds"],
        "{}",
        r.body_str()
    );
    drop(srv);

    // A script that escapes the kill of its process group with setsid and
    // spins: with `cgi_timeout 1s` it is killed after a second of CPU.
    if which("setsid").is_none() {
        skip(TEST, "no setsid(1)");
        return;
    }
    let dir = TempDir::new("priv-spin");
    dir.write_script("www/cgi/spin.sh", SPIN_SH);
    let pid_file = dir.join("www/cgi/spin.pid");
    let srv = Server::start(
        dir,
        "cgi_timeout 1s;\nserver { listen 127.0.0.1:$P0; root www;\n\
         location /cgi/ { cgi .sh /bin/sh; } }",
    );
    let r = srv.get("/cgi/spin.sh");
    assert_status(&r, 200);
    assert!(
        eventually(LIMIT, || pid_file.exists()),
        "the spinner did not start"
    );
    let pid: u32 = read(&pid_file).trim().parse().unwrap();
    // Killed by the test if the limit does not do it.
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            if !dead(self.0) {
                send_signal(self.0, "KILL");
            }
        }
    }
    let _kill = Kill(pid);
    let started = Instant::now();
    // One second of CPU; generous for a loaded machine.
    let stopped = eventually(Duration::from_secs(20), || dead(pid));
    assert!(
        stopped,
        "the escaped spinner {pid} still runs after {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Logs with `user`
// ---------------------------------------------------------------------------

/// Writes `cgi-stderr QUERY` to its stderr (the error log), answers `ok`.
const ERR_SH: &str = "#!/bin/sh
echo \"cgi-stderr $QUERY_STRING\" >&2
printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
";

/// A folder made directly in a system folder every user can traverse
/// (`/tmp`, else `/dev/shm`), owned by root, mode 0755 (so `nobody` may read
/// it but not create anything in it), removed on drop. The test's own
/// temporary folder will not do: its parents need not be traversable by
/// `nobody`.
struct SharedDir(PathBuf);

impl SharedDir {
    /// `None` when no such system folder is traversable by everyone.
    fn new(name: &str) -> Option<SharedDir> {
        use std::os::unix::fs::PermissionsExt;
        let base = ["/tmp", "/dev/shm"].into_iter().find(|b| {
            fs::metadata(b).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 != 0)
        })?;
        let path = Path::new(base).join(format!(
            "localserver-test-{}-priv-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        Some(SharedDir(path))
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// Create the folder `rel` (mode 0755, owned by root).
    fn mkdir(&self, rel: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.0.join(rel);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// Write `rel` with `mode` (its folder must exist).
    fn write(&self, rel: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.0.join(rel);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Whether the `user nobody` tests can run here; says why not otherwise.
fn nobody_setup(test: &str, name: &str) -> Option<(u32, SharedDir)> {
    if !is_root() {
        skip(test, "not root: `user` has nothing to drop");
        return None;
    }
    let Some(nobody) = nobody_uid() else {
        skip(test, "no user named nobody");
        return None;
    };
    let Some(shared) = SharedDir::new(name) else {
        skip(
            test,
            "neither /tmp nor /dev/shm can be traversed by every user",
        );
        return None;
    };
    Some((nobody, shared))
}

/// A `user nobody` site (with `top` at the top level) whose CGI lives in
/// `shared/www` and whose logs go to `shared/logs`, a folder only root may
/// write in.
fn logging_site(name: &str, shared: &SharedDir, top: &str) -> Server {
    shared.mkdir("www/cgi");
    shared.mkdir("logs");
    shared.write("www/cgi/err.sh", ERR_SH, 0o755);
    let config = format!(
        "user nobody;
{top}
error_log {logs}/error.log info;
server {{
    listen 127.0.0.1:$P0;
    root {www};
    access_log {logs}/access.log;
    location /cgi/ {{ cgi .sh /bin/sh; }}
}}
",
        logs = shared.join("logs").display(),
        www = shared.join("www").display(),
    );
    Server::start(TempDir::new(name), &config)
}

/// Run `err.sh?MARK` on a new connection: 200 `ok`.
#[track_caller]
fn run_err(srv: &Server, mark: &str) {
    let r = srv.get(&format!("/cgi/err.sh?{mark}"));
    assert_status(&r, 200);
    assert_eq!(r.body_str(), "ok\n");
}

/// Wait until `path` holds `needle`.
#[track_caller]
fn wait_for_text(path: &Path, needle: &str) {
    let ok = eventually(LIMIT, || read(path).contains(needle));
    assert!(
        ok,
        "{} never got {needle:?}; it holds {:?}",
        path.display(),
        read(path)
    );
}

/// Wait until `path` holds `n` lines that contain `needle`.
#[track_caller]
fn wait_for_count(path: &Path, needle: &str, n: usize) {
    let count = || read(path).lines().filter(|l| l.contains(needle)).count();
    let ok = eventually(LIMIT, || count() >= n);
    assert!(
        ok,
        "{} has {} of {n} lines with {needle:?}: {:?}",
        path.display(),
        count(),
        read(path)
    );
}

/// Rename the logs as logrotate does (`error.log` → `error.log.1`).
fn rotate(shared: &SharedDir) {
    for name in ["error.log", "access.log"] {
        let from = shared.join(&format!("logs/{name}"));
        fs::rename(&from, shared.join(&format!("logs/{name}.1"))).unwrap();
    }
}

#[test]
fn workers_with_user_log_to_files_root_created_and_reopen_them() {
    const TEST: &str = "workers_with_user_log_to_files_root_created_and_reopen_them";
    let Some((nobody, shared)) = nobody_setup(TEST, "logs-workers") else {
        return;
    };
    let srv = logging_site("priv-logs-workers", &shared, "worker_processes 2;");
    let (err, acc) = (
        shared.join("logs/error.log"),
        shared.join("logs/access.log"),
    );
    let (err1, acc1) = (
        shared.join("logs/error.log.1"),
        shared.join("logs/access.log.1"),
    );
    // Many connections, so that both workers serve some: what a worker's
    // script writes to stderr, and each request's line, reach the files.
    for i in 0..8 {
        run_err(&srv, &format!("before-{i}"));
    }
    for i in 0..8 {
        wait_for_text(&err, &format!("cgi-stderr before-{i}\n"));
        wait_for_text(&acc, &format!("GET /cgi/err.sh?before-{i} "));
    }
    assert!(
        !srv.stderr().contains("could not"),
        "stderr: {}",
        srv.stderr()
    );

    // logrotate: rename, then SIGUSR1 to the master. It creates the new
    // files as root and hands them to nobody; then each worker (the
    // notice goes to the old file) opens them again by name.
    rotate(&shared);
    kill(srv.pid(), "USR1");
    wait_for_count(&err1, "(SIGUSR1) received, reopening logs", 3);
    for path in [&err, &acc] {
        let meta = fs::metadata(path).unwrap();
        assert_eq!(meta.uid(), nobody, "{} is not nobody's", path.display());
    }
    for i in 0..8 {
        run_err(&srv, &format!("after-{i}"));
    }
    for i in 0..8 {
        wait_for_text(&err, &format!("cgi-stderr after-{i}\n"));
        wait_for_text(&acc, &format!("GET /cgi/err.sh?after-{i} "));
    }
    assert!(!read(&err1).contains("after-"), "{:?}", read(&err1));
    assert!(!read(&acc1).contains("after-"), "{:?}", read(&acc1));
    assert!(
        !read(&err).contains("could not") && !read(&err1).contains("could not"),
        "{:?} {:?}",
        read(&err1),
        read(&err)
    );
}

#[test]
fn one_process_with_user_logs_to_files_root_created_and_says_why_a_reopen_fails() {
    const TEST: &str =
        "one_process_with_user_logs_to_files_root_created_and_says_why_a_reopen_fails";
    let Some((nobody, shared)) = nobody_setup(TEST, "logs-single") else {
        return;
    };
    let srv = logging_site("priv-logs-single", &shared, "");
    assert_eq!(uid_of(srv.pid()), nobody);
    let (err, acc) = (
        shared.join("logs/error.log"),
        shared.join("logs/access.log"),
    );
    let (err1, acc1) = (
        shared.join("logs/error.log.1"),
        shared.join("logs/access.log.1"),
    );
    run_err(&srv, "before");
    wait_for_text(&err, "cgi-stderr before\n");
    // The access log is opened after the privileges are dropped: the file
    // must have been created for nobody before.
    wait_for_text(&acc, "GET /cgi/err.sh?before ");

    // Renamed away: nobody may not create a file in `logs`. Logging goes
    // on to the old files, and the error says why and what to do.
    rotate(&shared);
    kill(srv.pid(), "USR1");
    wait_for_text(&err1, "could not reopen error log");
    let old = read(&err1);
    assert!(
        old.contains("Permission denied") && old.contains("create MODE USER GROUP"),
        "{old:?}"
    );
    assert!(
        srv.stderr().contains("could not reopen error log"),
        "{}",
        srv.stderr()
    );
    run_err(&srv, "still-old");
    wait_for_text(&err1, "cgi-stderr still-old\n");
    wait_for_text(&acc1, "GET /cgi/err.sh?still-old ");

    // What logrotate's `create 0644 nobody nogroup` does: new files for
    // nobody, then the signal. Now they are opened again.
    for path in [&err, &acc] {
        fs::write(path, "").unwrap();
        std::os::unix::fs::chown(path, Some(nobody), None).unwrap();
    }
    kill(srv.pid(), "USR1");
    wait_for_count(&err1, "(SIGUSR1) received, reopening logs", 2);
    run_err(&srv, "after");
    wait_for_text(&err, "cgi-stderr after\n");
    wait_for_text(&acc, "GET /cgi/err.sh?after ");
    assert!(!read(&err1).contains("after\n"), "{:?}", read(&err1));
}

#[test]
fn user_root_is_warned_about() {
    const TEST: &str = "user_root_is_warned_about";
    if !is_root() {
        skip(TEST, "not root: `user root` is not looked up");
        return;
    }
    for top in ["", "worker_processes 2;"] {
        let dir = TempDir::new("priv-user-root");
        dir.write("www/index.html", "hi\n");
        let srv = Server::start(
            dir,
            &format!(
                "user root;\n{top}\nerror_log error.log info;\n\
                 server {{ listen 127.0.0.1:$P0; root www; }}"
            ),
        );
        assert_status(&srv.get("/index.html"), 200);
        let log = srv.dir.join("error.log");
        wait_for_text(&log, "[warn]");
        let text = read(&log);
        assert!(
            text.contains("\"user root\" is root") && text.contains("keeps running as root"),
            "{top}: {text:?}"
        );
    }
}
