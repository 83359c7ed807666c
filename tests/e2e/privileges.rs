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
use std::path::Path;
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
