//! Shared harness for the end-to-end tests: each test gets its own temporary
//! folder, writes a configuration and files into it, starts the real
//! `localserver` binary on free ports, and talks raw HTTP over `TcpStream`.
//!
//! Invariants: nothing here sleeps for a fixed time to wait for the server (it
//! connects in a loop until the server answers); every test owns its ports and
//! its folder, so tests run in parallel threads; the server is killed (by the
//! PID of the `Child` we started) when the handle drops, and its stderr is
//! printed when a test fails.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_localserver");

/// How long a start-up may take before the test gives up.
pub const START_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a reader waits for stray bytes after a head that allows no body
/// on a connection that stays open: a server that wrongly sends one sends it
/// right behind the head.
pub const LEAK_WAIT: Duration = Duration::from_millis(50);

/// Default read/write timeout on test sockets: long enough for a loaded CI
/// machine, short enough that a server that never answers fails the test
/// instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Temporary folders
// ---------------------------------------------------------------------------

/// A fresh folder under the system temp dir, removed on drop (kept, and its
/// path printed, when the test failed and `LOCALSERVER_KEEP_TEST_FILES` is
/// set: some tests write 64 MiB).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "localserver-test-{}-{}-{}",
            std::process::id(),
            n,
            name
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        // Canonical, so paths written into configs have no symlink in them.
        let path = fs::canonicalize(&path).unwrap();
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self/rel`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// Write `contents` to `self/rel`, creating folders on the way.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, contents).unwrap();
        p
    }

    /// Create the folder `self/rel` (and its parents).
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.path.join(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() && std::env::var_os("LOCALSERVER_KEEP_TEST_FILES").is_some() {
            eprintln!("(test files kept in {})", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// Where test ports come from: below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 and up by default), so
/// no client socket on this machine and no `bind(…:0)` is ever given one of
/// them. Another process can hold one only by binding it by number.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port that nothing listened on a moment ago on either loopback, never
/// handed out before in this process. Nothing holds it for the caller:
/// `Server::start` checks that its own server process ends up listening on
/// it, and starts again on other ports when something else took it first.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<(XorShift, HashSet<u16>)>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let (rng, given) = given.get_or_insert_with(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = (u64::from(std::process::id()) << 32) ^ u64::from(nanos);
        (XorShift::new(seed), HashSet::new())
    });
    let span = u64::from(PORTS.end - PORTS.start);
    loop {
        let port = PORTS.start + u16::try_from(rng.next_u64() % span).unwrap();
        if given.contains(&port) || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        // ::1 may not exist here (no IPv6): only a port in use there counts.
        if let Err(e) = TcpListener::bind(("::1", port))
            && e.kind() == ErrorKind::AddrInUse
        {
            continue;
        }
        given.insert(port);
        return port;
    }
}

/// The TCP ports process `pid` listens on, from its own descriptors: the
/// socket inodes in `/proc/PID/fd`, looked up among the listeners.
pub fn listening_ports(pid: u32) -> HashSet<u16> {
    let inodes = socket_inodes(pid);
    listeners()
        .into_iter()
        .filter(|(_, inode)| inodes.contains(inode))
        .map(|(port, _)| port)
        .collect()
}

/// The inodes of the sockets process `pid` holds (`/proc/PID/fd` links
/// read `socket:[INODE]`).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            l.parse().ok()
        })
        .collect()
}

/// Every listening TCP socket of this network namespace (`/proc/net/tcp`
/// and `tcp6`): (port, inode).
fn listeners() -> Vec<(u16, u64)> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        // "sl local_address rem_address st ... uid timeout inode"; state
        // 0A is LISTEN; the port is the hex after the colon. After the load
        // tests the tables hold thousands of TIME_WAIT lines: a cheap look
        // for the state skips them before any parsing.
        for line in text.lines().skip(1).filter(|l| l.contains(" 0A ")) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let port = f[1]
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if let (Some(port), Ok(inode)) = (port, f[9].parse()) {
                out.push((port, inode));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Processes the tests start
// ---------------------------------------------------------------------------

/// Make `cmd` die with the test: the kernel sends it SIGKILL when the thread
/// that started it ends (`PR_SET_PDEATHSIG`: the test's thread, or the whole
/// test binary when it is killed), and it leads a process group of its own,
/// so that `kill_group` reaches what it started too.
pub fn dies_with_test(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls prctl and getppid, which are async-signal-safe and touch no
    // memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent died between fork and prctl: no signal will come.
            if libc::getppid() == 1 {
                return Err(io::Error::other("the test died while starting its child"));
            }
            Ok(())
        })
    }
}

/// SIGKILL the process group that `pid` leads (see `dies_with_test`).
pub fn kill_group(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill takes no pointers; a vanished group gets ESRCH.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

// ---------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------

/// A running `localserver`, stopped on drop with its whole process group.
pub struct Server {
    child: Child,
    /// The ports substituted for `$P0`, `$P1`, ... in the configuration.
    pub ports: Vec<u16>,
    pub conf: PathBuf,
    stderr_path: PathBuf,
    /// Last field so it is dropped (and removed) after the child is killed.
    pub dir: TempDir,
}

/// Substitute `$DIR` (the test folder) and `$P0`..`$P9` (free ports) in a
/// configuration text; returns the text and the ports used.
pub fn expand_config(text: &str, dir: &Path) -> (String, Vec<u16>) {
    let mut count = 0;
    for i in 0..10 {
        if text.contains(&format!("$P{i}")) {
            count = i + 1;
        }
    }
    let ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
    let mut out = text.replace("$DIR", dir.to_str().unwrap());
    for (i, p) in ports.iter().enumerate() {
        out = out.replace(&format!("$P{i}"), &p.to_string());
    }
    (out, ports)
}

/// Why a start did not come up.
enum StartFailure {
    /// One of our ports was taken by another process first: start again on
    /// other ports.
    PortTaken(String),
    Failed(String),
}

/// How many times `Server::start` tries fresh ports.
const START_ATTEMPTS: usize = 5;

impl Server {
    /// Write `config` (with `$DIR` and `$Pn` substituted) to `dir/test.conf`,
    /// start the server with `-c` on it and wait until it listens on every
    /// port; on other ports again if another process took one first.
    pub fn start(dir: TempDir, config: &str) -> Server {
        Self::launch(dir, START_ATTEMPTS, |dir| {
            let (text, ports) = expand_config(config, dir.path());
            let conf = dir.write("test.conf", &text);
            let mut cmd = Command::new(BIN);
            cmd.arg("-c").arg(&conf);
            (conf, ports, cmd)
        })
    }

    /// Start the server on an existing configuration file, waiting for
    /// `ports` (one attempt: the file's ports are the caller's).
    pub fn start_with(dir: TempDir, conf: PathBuf, ports: Vec<u16>) -> Server {
        Self::launch(dir, 1, |_| {
            let mut cmd = Command::new(BIN);
            cmd.arg("-c").arg(&conf);
            (conf.clone(), ports.clone(), cmd)
        })
    }

    /// Like `start`, but through `sh -c 'ulimit -n NOFILE; exec BIN -c CONF'`:
    /// the server runs with at most `nofile` descriptors (soft and hard, so
    /// it cannot raise them), under the shell's PID (`exec`).
    pub fn start_with_nofile(dir: TempDir, config: &str, nofile: u32) -> Server {
        Self::launch(dir, START_ATTEMPTS, |dir| {
            let (text, ports) = expand_config(config, dir.path());
            let conf = dir.write("test.conf", &text);
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(format!("ulimit -n {nofile} && exec \"$0\" -c \"$1\""))
                .arg(BIN)
                .arg(&conf);
            (conf, ports, cmd)
        })
    }

    /// Run what `prepare` makes (a command that ends up exec'ing the
    /// server, in `dir`, its stderr to `dir/server.stderr`) until the
    /// server listens on all its ports, at most `attempts` times.
    fn launch(
        dir: TempDir,
        attempts: usize,
        mut prepare: impl FnMut(&TempDir) -> (PathBuf, Vec<u16>, Command),
    ) -> Server {
        let stderr_path = dir.join("server.stderr");
        for attempt in 1..=attempts {
            let (conf, ports, mut cmd) = prepare(&dir);
            let stderr = fs::File::create(&stderr_path).unwrap();
            let mut child = dies_with_test(
                cmd.current_dir(dir.path())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(stderr),
            )
            .spawn()
            .expect("cannot start the localserver binary");
            match wait_listening(&mut child, &ports, &stderr_path) {
                Ok(()) => {
                    return Server {
                        child,
                        ports,
                        conf,
                        stderr_path,
                        dir,
                    };
                }
                Err(failure) => {
                    stop(&mut child);
                    let config = fs::read_to_string(&conf).unwrap_or_default();
                    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
                    match failure {
                        StartFailure::PortTaken(why) if attempt < attempts => {
                            let _ = io::stderr().write_all(
                                format!("(start again on other ports: {why})\n").as_bytes(),
                            );
                        }
                        StartFailure::PortTaken(why) | StartFailure::Failed(why) => {
                            panic!(
                                "localserver did not start: {why}; config:\n{config}\nstderr:\n{stderr}"
                            )
                        }
                    }
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The port substituted for `$P{i}`.
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// Whether the server process itself listens on `port` (after a
    /// reload, say), rather than anything else on this machine.
    pub fn listens_on(&self, port: u16) -> bool {
        listening_ports(self.pid()).contains(&port)
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Wait up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// A new connection to `$P{i}`.
    pub fn connect(&self, i: usize) -> Conn {
        Conn::connect(self.port(i))
    }

    /// Send one raw request on a new connection to `$P0`, read one response.
    pub fn raw(&self, request: &str) -> Response {
        self.raw_on(0, request)
    }

    /// Send one raw request on a new connection to `$P{i}`, read one response.
    pub fn raw_on(&self, i: usize, request: &str) -> Response {
        let mut c = self.connect(i);
        c.send(request.as_bytes());
        c.read_response_to(request.as_bytes())
    }

    /// `GET path` with `Host: localhost` and `Connection: close` on `$P0`.
    pub fn get(&self, path: &str) -> Response {
        self.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ))
    }

    /// `GET path` with the given Host on `$P{i}`.
    pub fn get_host(&self, i: usize, host: &str, path: &str) -> Response {
        self.raw_on(
            i,
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
    }
}

/// Wait until `child` itself listens on every one of `ports`, and nothing
/// else on this machine listens on them too (a `SO_REUSEPORT` server of
/// another test would share the connections). Polls every 10 ms.
fn wait_listening(
    child: &mut Child,
    ports: &[u16],
    stderr_path: &Path,
) -> Result<(), StartFailure> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let stderr = fs::read_to_string(stderr_path).unwrap_or_default();
        // The server's own words for a port it could not have (`bind() to
        // ADDR:PORT failed (...)`): another process was first.
        let taken = ports.iter().find(|p| {
            stderr
                .lines()
                .any(|l| l.contains("bind() to") && l.contains(&format!(":{p} failed")))
        });
        if let Some(p) = taken {
            return Err(StartFailure::PortTaken(format!(
                "port {p} could not be bound"
            )));
        }
        if let Some(status) = child.try_wait().unwrap() {
            return Err(StartFailure::Failed(format!(
                "it exited during start-up ({status})"
            )));
        }
        // One read of the tables: which of our ports the child listens on,
        // and whether another process listens on one of them too.
        let mine = socket_inodes(child.id());
        let on_ports: Vec<(u16, u64)> = listeners()
            .into_iter()
            .filter(|(p, _)| ports.contains(p))
            .collect();
        let own: HashSet<u16> = on_ports
            .iter()
            .filter(|(_, inode)| mine.contains(inode))
            .map(|&(p, _)| p)
            .collect();
        if ports.iter().all(|p| own.contains(p)) {
            return match on_ports.iter().find(|(_, inode)| !mine.contains(inode)) {
                Some((p, _)) => Err(StartFailure::PortTaken(format!(
                    "another process listens on port {p} too"
                ))),
                None => Ok(()),
            };
        }
        if Instant::now() > deadline {
            return Err(StartFailure::Failed(format!(
                "it did not listen on all of {ports:?} within {START_TIMEOUT:?} (it listens on {own:?})"
            )));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Stop a server: SIGTERM (a fast stop, in which it kills its CGI process
/// groups), up to a second to exit, then SIGKILL to its whole process group
/// (workers included). Reaps it.
fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        // Our unreaped child: its pid cannot have been reused.
        send_signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(1);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
    kill_group(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child);
        if thread::panicking() {
            eprintln!(
                "---- localserver stderr (pid {}) ----\n{}---- end of stderr ----",
                self.child.id(),
                self.stderr()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Running the binary as a command (-t, -v, -h)
// ---------------------------------------------------------------------------

/// What a finished command printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Run the binary with `args` in `cwd`, killing it if it runs longer than
/// `limit` (a `-t` that starts serving must fail the test, not hang it).
pub fn run_cli(args: &[&str], cwd: &Path, limit: Duration) -> Output {
    let tmp = TempDir::new("cli-out");
    let out_path = tmp.join("stdout");
    let err_path = tmp.join("stderr");
    let mut child = dies_with_test(
        Command::new(BIN)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap()),
    )
    .spawn()
    .expect("cannot start the localserver binary");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            stop(&mut child);
            panic!(
                "`localserver {}` still running after {:?}; stderr:\n{}",
                args.join(" "),
                limit,
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: String::from_utf8_lossy(&fs::read(&out_path).unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&err_path).unwrap()).into_owned(),
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP client
// ---------------------------------------------------------------------------

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// `HTTP/1.1 200 OK`, without CRLF.
    pub status_line: String,
    pub version: String,
    pub status: u16,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header with this name (case-insensitive).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The header's value, failing the test if it is absent.
    pub fn must_header(&self, name: &str) -> &str {
        match self.header(name) {
            Some(v) => v,
            None => panic!("response has no {name} header:\n{}", self.describe()),
        }
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the `Connection` header lists `token`.
    pub fn connection_has(&self, token: &str) -> bool {
        self.headers_named("connection")
            .iter()
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// Status line and headers, and the start of the body, for messages.
    pub fn describe(&self) -> String {
        let mut s = format!("{}\n", self.status_line);
        for (n, v) in &self.headers {
            let _ = writeln!(s, "{n}: {v}");
        }
        let shown = &self.body[..self.body.len().min(600)];
        let _ = write!(
            s,
            "\n{}{}",
            String::from_utf8_lossy(shown),
            if self.body.len() > 600 { "…" } else { "" }
        );
        s
    }
}

/// The reason phrases accepted for each status this suite checks: RFC 9110's,
/// and nginx's where it differs (the reason phrase is informational, RFC 9112
/// §4, and nginx is the reference where the RFCs leave a choice).
pub fn reasons(status: u16) -> &'static [&'static str] {
    match status {
        200 => &["OK"],
        301 => &["Moved Permanently"],
        302 => &["Found", "Moved Temporarily"],
        303 => &["See Other"],
        307 => &["Temporary Redirect"],
        308 => &["Permanent Redirect"],
        400 => &["Bad Request"],
        403 => &["Forbidden"],
        404 => &["Not Found"],
        405 => &["Method Not Allowed", "Not Allowed"],
        408 => &["Request Timeout", "Request Time-out"],
        413 => &[
            "Content Too Large",
            "Payload Too Large",
            "Request Entity Too Large",
        ],
        414 => &["URI Too Long", "Request-URI Too Large"],
        431 => &["Request Header Fields Too Large"],
        500 => &["Internal Server Error"],
        501 => &["Not Implemented"],
        505 => &["HTTP Version Not Supported", "HTTP Version not supported"],
        100 => &["Continue"],
        201 => &["Created"],
        204 => &["No Content"],
        206 => &["Partial Content"],
        304 => &["Not Modified"],
        416 => &["Range Not Satisfiable", "Requested Range Not Satisfiable"],
        502 => &["Bad Gateway"],
        503 => &["Service Unavailable", "Service Temporarily Unavailable"],
        504 => &["Gateway Timeout", "Gateway Time-out"],
        507 => &["Insufficient Storage"],
        _ => &[],
    }
}

/// Assert the whole status line: `HTTP/1.1 CODE REASON`, with one of the
/// accepted reason phrases.
#[track_caller]
pub fn assert_status(r: &Response, status: u16) {
    let ok = reasons(status)
        .iter()
        .any(|reason| r.status_line == format!("HTTP/1.1 {status} {reason}"));
    assert!(
        ok,
        "expected status line \"HTTP/1.1 {status} {}\", got:\n{}",
        reasons(status).join("\" or \""),
        r.describe()
    );
}

/// Assert the status code only (for answers to HTTP/1.0 requests, whose
/// status line may say HTTP/1.0 or HTTP/1.1).
#[track_caller]
pub fn assert_code(r: &Response, status: u16) {
    assert!(
        r.status == status && (r.version == "HTTP/1.1" || r.version == "HTTP/1.0"),
        "expected status {status}, got:\n{}",
        r.describe()
    );
}

/// A client connection with a buffer, so that pipelined responses can be read
/// one after the other.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(port: u16) -> Conn {
        Conn::connect_to("127.0.0.1", port)
    }

    /// A connection from and to another loopback address (`"::1"`).
    pub fn connect_to(host: &str, port: u16) -> Conn {
        let stream = TcpStream::connect((host, port))
            .unwrap_or_else(|e| panic!("cannot connect to {host} port {port}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Write all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write failed: {e}"));
    }

    /// Write what it can of `bytes`; the error if the peer is gone.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Bytes received but not yet consumed by a parsed response.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Read once more into the buffer; `Ok(0)` at EOF.
    pub fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn fill_or_fail(&mut self, what: &str) {
        match self.fill() {
            Ok(0) => panic!(
                "connection closed while reading {what}; received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(_) => {}
            Err(e) => panic!(
                "read failed while reading {what}: {e}; received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Read the response to a GET-like request.
    pub fn read_response(&mut self) -> Response {
        self.read_response_inner(false)
    }

    /// Read the response to a HEAD request (headers only, whatever they say).
    pub fn read_head_response(&mut self) -> Response {
        self.read_response_inner(true)
    }

    /// Read the response to `request` (a HEAD request gets no body).
    pub fn read_response_to(&mut self, request: &[u8]) -> Response {
        self.read_response_inner(request.starts_with(b"HEAD "))
    }

    /// The next response, or `None` if the server closed (EOF or reset)
    /// before sending any byte of one.
    pub fn try_read_response(&mut self) -> Option<Response> {
        while self.buf.is_empty() {
            match self.fill() {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if is_reset(&e) => return None,
                Err(e) => panic!("read failed while waiting for a response: {e}"),
            }
        }
        Some(self.read_response())
    }

    fn read_response_inner(&mut self, head_request: bool) -> Response {
        // The head.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            assert!(
                self.buf.len() < 64 * 1024,
                "response head longer than 64 KiB"
            );
            self.fill_or_fail("a response head");
        };
        let head: Vec<u8> = self.buf.drain(..head_end).collect();
        let head = String::from_utf8(head).expect("response head is not UTF-8");
        let mut lines = head[..head.len() - 4].split("\r\n");
        let status_line = lines.next().unwrap_or("").to_string();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        assert!(
            version.starts_with("HTTP/1."),
            "bad status line {status_line:?}"
        );
        let mut headers = Vec::new();
        for line in lines {
            let (n, v) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {line:?} in\n{head}"));
            assert!(
                !n.is_empty() && !n.contains(' ') && !n.contains('\t'),
                "bad header name {n:?} in\n{head}"
            );
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            status_line,
            version,
            status,
            headers,
            body: Vec::new(),
        };

        // The body (RFC 9112 §6.3).
        if head_request || status / 100 == 1 || status == 204 || status == 304 {
            let closing = status >= 200 && resp.connection_has("close");
            resp.body = self.read_after_bodiless_head(closing);
            return resp;
        }
        let te = resp
            .header("transfer-encoding")
            .map(str::to_ascii_lowercase);
        if let Some(te) = te {
            assert_eq!(te, "chunked", "unexpected Transfer-Encoding");
            resp.body = self.read_chunked();
        } else if let Some(cl) = resp.header("content-length") {
            let len: usize = cl
                .parse()
                .unwrap_or_else(|_| panic!("bad Content-Length {cl:?}"));
            resp.body = self.read_exact_body(len);
        } else {
            // Delimited by close.
            loop {
                match self.fill() {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => panic!("read failed in a close-delimited body: {e}"),
                }
            }
            resp.body = std::mem::take(&mut self.buf);
        }
        resp
    }

    /// What the server sends after a head that has no body (RFC 9112
    /// §6.3: HEAD, 1xx, 204, 304), so that `body.is_empty()` can fail: up to
    /// the end of the connection when the head said `Connection: close`,
    /// else what arrives within `LEAK_WAIT` when nothing is buffered yet. A
    /// following response (pipelined, or the final one after a 1xx) is left
    /// in the buffer; any other byte counts as a body the head did not allow.
    fn read_after_bodiless_head(&mut self, closing: bool) -> Vec<u8> {
        if closing {
            loop {
                match self.fill() {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if is_reset(&e) => break,
                    Err(e) => panic!("read failed after a bodiless head: {e}"),
                }
            }
        } else if self.buf.is_empty() {
            self.stream.set_read_timeout(Some(LEAK_WAIT)).unwrap();
            let r = self.fill();
            self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            match r {
                Ok(_) => {}
                Err(e) if is_timeout(&e) || is_reset(&e) => {}
                Err(e) => panic!("read failed after a bodiless head: {e}"),
            }
        }
        let leaked = find(&self.buf, b"HTTP/1.").unwrap_or(self.buf.len());
        self.buf.drain(..leaked).collect()
    }

    fn read_exact_body(&mut self, len: usize) -> Vec<u8> {
        if self.buf.len() >= len {
            return self.buf.drain(..len).collect();
        }
        let mut body = std::mem::take(&mut self.buf);
        body.reserve_exact(len - body.len());
        let mut chunk = vec![0u8; 256 * 1024];
        while body.len() < len {
            let want = (len - body.len()).min(chunk.len());
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => panic!("connection closed after {} of {len} body bytes", body.len()),
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed after {} of {len} body bytes: {e}", body.len()),
            }
        }
        body
    }

    fn read_line(&mut self) -> String {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return String::from_utf8_lossy(&line[..i]).into_owned();
            }
            self.fill_or_fail("a chunked body");
        }
    }

    fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line();
            let size_hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16)
                .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
            if size == 0 {
                // Trailers up to the empty line.
                while !self.read_line().is_empty() {}
                return body;
            }
            body.extend(self.read_exact_body(size));
            let crlf = self.read_exact_body(2);
            assert_eq!(crlf, b"\r\n", "chunk data not followed by CRLF");
        }
    }

    /// Assert that the server closes the connection within `limit` without
    /// sending anything more (EOF, or a reset, counts as closed).
    #[track_caller]
    pub fn expect_closed(&mut self, limit: Duration) {
        assert!(
            self.buf.is_empty(),
            "unexpected bytes after the response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let start = Instant::now();
        self.stream.set_read_timeout(Some(limit)).unwrap();
        let r = self.fill();
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match r {
            Ok(0) => {}
            Ok(_) => panic!(
                "expected the connection to close, got more bytes: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) if is_reset(&e) => {}
            Err(e) if is_timeout(&e) => panic!(
                "connection still open {:?} after the response",
                start.elapsed()
            ),
            Err(e) => panic!("read failed while expecting a close: {e}"),
        }
    }

    /// Assert that nothing arrives and the connection stays open for `d`.
    #[track_caller]
    pub fn expect_open_and_quiet(&mut self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let r = self.fill();
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match r {
            Err(e) if is_timeout(&e) => {}
            Ok(0) => panic!("connection closed, expected it to stay open"),
            Ok(_) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&self.buf)),
            Err(e) => panic!("read failed, expected the connection to stay open: {e}"),
        }
    }

    /// Close our writing side (the server sees EOF).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// The first position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Assert the response carries `Date` (IMF-fixdate) and `Server` headers.
#[track_caller]
pub fn assert_date_and_server(r: &Response) {
    let date = r.must_header("date");
    assert!(is_imf_fixdate(date), "Date is not an IMF-fixdate: {date:?}");
    let server = r.must_header("server");
    assert!(
        server.starts_with("localserver"),
        "Server header {server:?} does not name localserver"
    );
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7).
pub fn is_imf_fixdate(s: &str) -> bool {
    let b = s.as_bytes();
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 29
        && DAYS.contains(&&s[0..3])
        && &s[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && MONTHS.contains(&&s[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &s[25..] == " GMT"
}

/// Assert `Content-Type` equals `want` up to case and spaces around `;`.
#[track_caller]
pub fn assert_content_type(r: &Response, want: &[&str]) {
    let got = normalise_media_type(r.must_header("content-type"));
    assert!(
        want.iter().any(|w| normalise_media_type(w) == got),
        "Content-Type {got:?} is not one of {want:?}"
    );
}

fn normalise_media_type(s: &str) -> String {
    s.split(';')
        .map(|p| p.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(";")
}

// ---------------------------------------------------------------------------
// Deterministic bytes
// ---------------------------------------------------------------------------

/// A seeded xorshift64* generator, for test data that is the same every run.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `len` pseudo-random bytes (len a multiple of 8).
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        assert_eq!(len % 8, 0);
        let mut v = Vec::with_capacity(len);
        for _ in 0..len / 8 {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v
    }
}

/// 64-bit FNV-1a over 8-byte little-endian words (then the tail bytes), fast
/// enough in a debug build for tens of MiB.
pub fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h ^= u64::from_le_bytes(a);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    for &b in words.remainder() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------------------
// Request bodies: chunked and multipart encoders, writing while reading
// ---------------------------------------------------------------------------

/// `body` in chunked framing (RFC 9112 §7.1), cut into chunks of the given
/// sizes in turn (cycled; a size of 0 in `sizes` is skipped), then the last
/// chunk and an empty trailer section.
pub fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 8 + 16);
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(4096);
        i += 1;
        if size == 0 {
            continue;
        }
        let n = size.min(rest.len());
        let _ = write!(out, "{n:x}\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// One part of a `multipart/form-data` body.
pub struct Part<'a> {
    /// The form field name.
    pub name: &'a str,
    /// `Some` for a file part.
    pub filename: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub data: &'a [u8],
}

impl<'a> Part<'a> {
    pub fn field(name: &'a str, value: &'a str) -> Part<'a> {
        Part {
            name,
            filename: None,
            content_type: None,
            data: value.as_bytes(),
        }
    }

    pub fn file(name: &'a str, filename: &'a str, data: &'a [u8]) -> Part<'a> {
        Part {
            name,
            filename: Some(filename),
            content_type: Some("application/octet-stream"),
            data,
        }
    }
}

/// A `multipart/form-data` body (RFC 7578) with this boundary, as browsers
/// write it: CRLF line ends, no preamble, no epilogue after the close
/// delimiter's CRLF.
pub fn multipart(boundary: &str, parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        let _ = write!(
            out,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
            p.name
        );
        if let Some(f) = p.filename {
            let _ = write!(out, "; filename=\"{f}\"");
        }
        out.extend_from_slice(b"\r\n");
        if let Some(t) = p.content_type {
            let _ = write!(out, "Content-Type: {t}\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(p.data);
        out.extend_from_slice(b"\r\n");
    }
    let _ = write!(out, "--{boundary}--\r\n");
    out
}

impl Conn {
    /// Send `bytes` from another thread while this one reads the response:
    /// a server may answer (413, 507, a CGI echoing its stdin) before it has
    /// read the whole body, and a client that only reads after writing
    /// everything would then deadlock or lose the answer to a reset. Write
    /// errors (the server closed early) are ignored; the response decides.
    pub fn send_while_reading(&mut self, bytes: Vec<u8>) -> Response {
        let mut writer = self.stream.try_clone().expect("cannot clone the stream");
        let t = thread::spawn(move || {
            let _ = writer.write_all(&bytes);
        });
        let r = self.read_response();
        let _ = t.join();
        r
    }

    /// Like `send_while_reading`, but the server may also close without
    /// answering (`None`).
    pub fn send_while_trying_to_read(&mut self, bytes: Vec<u8>) -> Option<Response> {
        let mut writer = self.stream.try_clone().expect("cannot clone the stream");
        let t = thread::spawn(move || {
            let _ = writer.write_all(&bytes);
        });
        let r = self.try_read_response();
        let _ = t.join();
        r
    }
}

// ---------------------------------------------------------------------------
// Files and folders
// ---------------------------------------------------------------------------

impl TempDir {
    /// Write an executable script (mode 0755) to `self/rel`.
    pub fn write_script(&self, rel: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.write(rel, text);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
}

/// The names in a folder, hidden ones included, sorted; empty if it does
/// not exist.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Every path under `root` (relative), with its size (`None` for a
/// folder), skipping the subtrees in `skip`; symlinks are not followed.
pub fn tree_snapshot(
    root: &Path,
    skip: &[PathBuf],
) -> std::collections::BTreeMap<PathBuf, Option<u64>> {
    fn walk(
        root: &Path,
        dir: &Path,
        skip: &[PathBuf],
        out: &mut std::collections::BTreeMap<PathBuf, Option<u64>>,
    ) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            if skip.contains(&p) {
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    out.insert(rel, None);
                    walk(root, &p, skip, out);
                }
                Ok(m) => {
                    out.insert(rel, Some(m.len()));
                }
                Err(_) => {}
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(root, root, skip, &mut out);
    out
}

/// Poll `cond` every 20 ms until it holds or `limit` has passed; whether it
/// held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Copy a folder tree (files keep their permission bits).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        let dest = to.join(e.file_name());
        if t.is_dir() {
            copy_tree(&e.path(), &dest);
        } else if t.is_file() {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// The repository's `localserver.conf` and `www/`, copied into a temporary
/// folder and served on a free port instead of 8080 (nothing else changed),
/// so tests may upload and delete without touching the working tree.
pub fn start_shipped_site(name: &str) -> Server {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new(name);
    copy_tree(&repo.join("www"), &dir.join("www"));
    let conf = fs::read_to_string(repo.join("localserver.conf")).unwrap();
    assert!(
        conf.contains("127.0.0.1:8080"),
        "localserver.conf should listen on 127.0.0.1:8080"
    );
    Server::start(dir, &conf.replace("127.0.0.1:8080", "127.0.0.1:$P0"))
}

// ---------------------------------------------------------------------------
// Programs and processes (CGI)
// ---------------------------------------------------------------------------

/// The first executable called `name` in PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// The absolute path of the real Python 3 interpreter (what `python3` in
/// PATH runs, past any pyenv-style shim), so test configurations name a
/// program that starts fast and needs no environment.
pub fn python3() -> &'static str {
    static PY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is needed by the CGI tests");
        let p = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(
            p.starts_with('/'),
            "python3 did not say where it lives: {p:?}"
        );
        p
    })
}

/// Run `program ARGS` with `input` on its stdin; its whole output.
pub fn run_with_input(program: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(input)?;
            child.wait_with_output()
        })
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// Process ids (other than ours) whose command line contains `needle`.
/// Zombies have an empty command line and are not counted here.
pub fn pids_with_cmdline(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd: Vec<u8> = cmd
                .into_iter()
                .map(|b| if b == 0 { b' ' } else { b })
                .collect();
            if contains(&cmd, needle.as_bytes()) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// (pid, state letter) of every process whose parent is `ppid`.
pub fn children_of(ppid: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut f = stat[close + 1..].split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let parent = f.next().and_then(|s| s.parse::<u32>().ok());
        if parent == Some(ppid) {
            out.push((pid, state));
        }
    }
    out
}

/// Assert that within `limit` the server has no child process left (no
/// running script and no zombie).
#[track_caller]
pub fn assert_no_children(srv: &Server, limit: Duration) {
    let pid = srv.pid();
    if !wait_until(limit, || children_of(pid).is_empty()) {
        let kids = children_of(pid);
        let zombies = kids.iter().filter(|(_, s)| *s == 'Z').count();
        panic!(
            "server {pid} still has {} children ({zombies} zombies) after {limit:?}: {kids:?}",
            kids.len()
        );
    }
}

/// Assert that within `limit` no process runs with `needle` in its command
/// line (a CGI script that must have been killed).
#[track_caller]
pub fn assert_no_process(needle: &str, limit: Duration) {
    if !wait_until(limit, || pids_with_cmdline(needle).is_empty()) {
        panic!(
            "processes still running {limit:?} later with {needle:?} in their command line: {:?}",
            pids_with_cmdline(needle)
        );
    }
}

/// Open descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

/// On drop, SIGKILL every process (by its id) whose command line contains
/// the needle: scripts a test started through the server under its own
/// unique folder, so that a failing test leaves no sleeper behind.
pub struct Reaper(pub String);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in pids_with_cmdline(&self.0) {
            send_signal(pid, "KILL");
        }
    }
}

/// The number of signal `name` (`TERM`, `HUP`, ...).
fn signal_number(name: &str) -> libc::c_int {
    match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        _ => panic!("no signal named {name}"),
    }
}

/// Send signal `name` (`TERM`, `HUP`, ...) to process `pid`; whether it was
/// there to get it.
pub fn send_signal(pid: u32, name: &str) -> bool {
    let sig = signal_number(name);
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    assert!(pid > 0, "signal to pid {pid}");
    // SAFETY: kill takes no pointers; pid > 0 names one process.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Send signal `name` (`TERM`, `HUP`, ...) to process `pid`, which must
/// exist.
#[track_caller]
pub fn kill(pid: u32, name: &str) {
    assert!(send_signal(pid, name), "kill -{name} {pid} failed");
}

/// Poll `f` every 20 ms until it holds or `limit` passes; its last answer.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    f()
}

// ---------------------------------------------------------------------------
// Skipping a test whose prerequisite is missing
// ---------------------------------------------------------------------------

/// Whether the long versions of the tests run (`LOCALSERVER_SOAK` set to
/// anything but empty or `0`): soak runs, long fuzzing, floods.
pub fn soak() -> bool {
    std::env::var_os("LOCALSERVER_SOAK").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether this run is CI's (`CI` set to anything but `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A test cannot run here because `why` (a tool or a privilege is missing).
/// Outside CI it says so on the process's real stderr (libtest captures
/// `eprintln!` of a passing test, so a skip would go unseen) and the caller
/// returns; in CI a missing prerequisite is a failure: `.ci/run` installs
/// everything the suite needs, so a skip there means the set-up broke.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    assert!(
        !in_ci(),
        "{test}: {why}, and CI is set: .ci/run should have provided it"
    );
    let line = format!("SKIPPED {test}: {why}\n");
    // io::stderr() itself is not captured by libtest, only the print macros.
    let _ = io::stderr().write_all(line.as_bytes());
}

/// Whether this machine has an IPv6 loopback; when not, `test` is said
/// to be skipped (a failure in CI, whose machines have one).
pub fn has_ipv6(test: &str) -> bool {
    match TcpListener::bind(("::1", 0)) {
        Ok(_) => true,
        Err(e) => {
            skip(test, &format!("[::1] cannot be bound here ({e})"));
            false
        }
    }
}

/// The effective uid of process `pid` (from `/proc/PID/status`).
pub fn uid_of(pid: u32) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// The tests run as root (they can start a server with `user`).
pub fn is_root() -> bool {
    uid_of(std::process::id()) == 0
}

/// The uid of `nobody`, if the machine has one.
pub fn nobody_uid() -> Option<u32> {
    let out = Command::new("id").args(["-u", "nobody"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
