//! CGI scripts never outlive the process that started them: a script runs in
//! a process group of its own (so a timeout can kill what it started), which
//! also keeps it out of reach of a kill aimed at the server's group. The
//! child asks for `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`), so a
//! server killed with `SIGKILL` (no chance to clean up) takes its running
//! scripts with it: in one process, a killed worker, and a killed master
//! (whose workers stop on their own parent-death signal).

use crate::common::*;
use std::time::Duration;

/// A script that says it started and sleeps for half a minute (far longer
/// than the test waits for it to go).
const SLEEPER: &str = "import sys, time\n\
sys.stdout.write('Content-Type: text/plain\\r\\n\\r\\n')\n\
sys.stdout.flush()\n\
time.sleep(30)\n";

/// How long a killed process's script may take to go.
const GONE_WITHIN: Duration = Duration::from_secs(5);

/// Whom the test kills with `SIGKILL` while the script runs.
#[derive(Clone, Copy, Debug)]
enum Victim {
    /// The server, `worker_processes 1`: the script's parent.
    Single,
    /// With `worker_processes 2`, the worker that runs the script (its
    /// parent); the master lives on and replaces it.
    Worker,
    /// With `worker_processes 2`, the master (the script's grandparent).
    Master,
}

/// The parent of process `pid`, from `/proc/PID/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_running_script_dies_with_the_process_killed_under_it() {
    for victim in [Victim::Single, Victim::Worker, Victim::Master] {
        let dir = TempDir::new("orphans");
        dir.write_script("www/cgi-bin/orphan-sleeper.py", SLEEPER);
        let workers = match victim {
            Victim::Single => 1,
            Victim::Worker | Victim::Master => 2,
        };
        let conf = format!(
            "worker_processes {workers};\n\
             server {{ listen 127.0.0.1:$P0; root www; location /cgi-bin/ {{ cgi .py {}; }} }}\n",
            python3()
        );
        let srv = Server::start(dir, &conf);
        // The script's absolute path: unique to this test's folder.
        let script = srv
            .dir
            .join("www/cgi-bin/orphan-sleeper.py")
            .to_string_lossy()
            .into_owned();
        let _reaper = Reaper(script.clone());
        let mut c = srv.connect(0);
        c.send(b"GET /cgi-bin/orphan-sleeper.py HTTP/1.1\r\nHost: localhost\r\n\r\n");
        // The answer's head comes once the script runs (its body never).
        while find(c.buffered(), b"\r\n\r\n").is_none() {
            let n = c.fill().expect("reading the script's answer");
            assert!(
                n > 0,
                "{victim:?}: closed before the head: {:?}",
                c.buffered()
            );
        }
        assert!(
            c.buffered().starts_with(b"HTTP/1.1 200 "),
            "{victim:?}: {:?}",
            String::from_utf8_lossy(c.buffered())
        );
        let pids = pids_with_cmdline(&script);
        assert_eq!(pids.len(), 1, "{victim:?}: scripts running: {pids:?}");
        let parent = parent_of(pids[0]).expect("the script's parent");
        let target = match victim {
            Victim::Single | Victim::Master => srv.pid(),
            Victim::Worker => parent,
        };
        match victim {
            Victim::Single | Victim::Worker => assert_ne!(parent, 1, "{victim:?}"),
            Victim::Master => assert_eq!(parent_of(parent), Some(srv.pid()), "{victim:?}"),
        }
        kill(target, "KILL");
        assert_no_process(&script, GONE_WITHIN);
    }
}
