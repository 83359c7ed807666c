//! A running CGI script as the loop sees it: its pid, our non-blocking ends
//! of its stdin and stdout pipes (watched through [`PipeWatch`]: in the
//! server, the epoll instance of the sockets, under the connection's
//! [`Token`]s), a buffer of its output, and where that output stands.
//!
//! The script's stderr is the server's error log descriptor; its CPU time
//! is limited to `cgi_timeout` (see `cpu_seconds`). Children are
//! reaped through `SIGCHLD` on the signalfd (see `reactor`), which kills the
//! rest of its process group when it exits; a script still running when its
//! `CgiProc` is dropped (client left, `cgi_timeout`, or its answer ended
//! while it ran on) is killed with its whole process group.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use crate::handlers::cgi::CgiPlan;
use crate::sys::{self, Command, Epoll, File, Interest, Pipe};

use super::buffer::{Buf, BufPool};
use super::timer::Millis;
use super::token::{ConnId, Token};

/// Running scripts: pid → the connection that owns it.
#[derive(Default)]
pub struct CgiTable {
    pub running: HashMap<libc::pid_t, ConnId>,
    /// How many of them the status board counts (brought up to date once
    /// a turn, `Shared::publish_cgi`).
    pub published: usize,
}

/// Where a script's pipes are watched for readiness: the loop's epoll
/// instance in the server. Readiness comes back to the connection through
/// `Conn::cgi_event`, from the loop's events or from whoever else drives it.
pub trait PipeWatch {
    /// Report `pipe`'s readiness for `interest` under `token`.
    fn watch(&self, pipe: &Pipe, token: Token, interest: Interest) -> io::Result<()>;
}

impl PipeWatch for Epoll {
    fn watch(&self, pipe: &Pipe, token: Token, interest: Interest) -> io::Result<()> {
        self.add(pipe.as_raw_fd(), token.encode(), interest)
    }
}

/// What the script's stdin is.
pub enum Stdin<'a> {
    /// Nothing: an empty pipe, closed at once (EOF).
    Empty,
    /// A pipe we write the body into.
    Pipe,
    /// A spooled body (already rewound).
    File(&'a File),
}

/// How the script's body reaches the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFraming {
    /// Not decided yet (header block not complete).
    Pending,
    /// The script gave `Content-Length`: this many bytes still to pass.
    Length(u64),
    /// HTTP/1.1 without a length: chunked.
    Chunked,
    /// HTTP/1.0 without a length: the end is marked by closing.
    Close,
    /// HEAD: the body is read and dropped.
    Drop,
}

/// One running script.
pub struct CgiProc {
    pub pid: libc::pid_t,
    /// Our end of its stdin while the body streams in (taken by the body sink).
    pub stdin: Option<Pipe>,
    pub stdout: Pipe,
    pub stdout_ready: bool,
    pub stdin_ready: bool,
    /// Output read but not yet passed on.
    pub buf: Option<Buf>,
    pub framing: OutFraming,
    /// The script closed its stdout.
    pub eof: bool,
    /// When it is killed (`cgi_timeout`).
    pub deadline: Millis,
    /// [`crate::handlers::CgiPlan::location`]: whose `add_header`s apply.
    pub location: usize,
    /// [`crate::handlers::cgi::CgiPlan::kept`]: for an `X-Accel-Redirect`.
    pub kept: crate::handlers::internal::Kept,
}

impl CgiProc {
    /// Start `plan` with the given stdin, stderr to `stderr`, pipes
    /// watched by `pipes` under the tokens of connection `owner`, to be
    /// killed at `deadline`; `timeout` (`cgi_timeout`) also bounds its CPU
    /// time.
    pub fn spawn(
        plan: &CgiPlan,
        stdin: Stdin<'_>,
        stderr: RawFd,
        pipes: &dyn PipeWatch,
        owner: ConnId,
        deadline: Millis,
        timeout: Duration,
    ) -> io::Result<CgiProc> {
        let (out_r, out_w) = sys::pipe()?;
        let (child_in, ours_in, keep_file): (Option<Pipe>, Option<Pipe>, Option<RawFd>) =
            match stdin {
                Stdin::Empty => {
                    let (r, _w) = sys::pipe()?; // write end dropped: EOF at once
                    (Some(r), None, None)
                }
                Stdin::Pipe => {
                    let (r, w) = sys::pipe()?;
                    (Some(r), Some(w), None)
                }
                Stdin::File(f) => (None, None, Some(f.as_raw_fd())),
            };
        let stdin_fd = match (&child_in, keep_file) {
            (Some(p), _) => p.as_raw_fd(),
            (None, Some(fd)) => fd,
            (None, None) => return Err(io::Error::from_raw_os_error(libc::EBADF)),
        };
        let pid = sys::spawn(&Command {
            program: &plan.program,
            argv: &plan.argv,
            envp: &plan.envp,
            cwd: &plan.cwd,
            stdin: stdin_fd,
            stdout: out_w.as_raw_fd(),
            stderr,
            cpu_seconds: Some(cpu_seconds(timeout)),
        })?;
        drop(child_in);
        drop(out_w);
        out_r.set_nonblocking()?;
        if let Some(w) = &ours_in {
            w.set_nonblocking()?;
        }
        pipes.watch(&out_r, Token::CgiStdout(owner), Interest::Read)?;
        if let Some(w) = &ours_in {
            pipes.watch(w, Token::CgiStdin(owner), Interest::Write)?;
        }
        Ok(CgiProc {
            pid,
            stdin: ours_in,
            stdout: out_r,
            // Edge-triggered: adding a pipe that already has output
            // reports it, so nothing is missed by starting unready.
            stdout_ready: false,
            stdin_ready: true,
            buf: None,
            framing: OutFraming::Pending,
            eof: false,
            deadline,
            location: plan.location,
            kept: plan.kept.clone(),
        })
    }

    /// One read of the script's output into its buffer: `Ok(true)` if bytes
    /// arrived or EOF was seen, `Ok(false)` when nothing could be read.
    pub fn read_output(&mut self, pool: &mut BufPool) -> io::Result<bool> {
        let buf = self.buf.get_or_insert_with(|| pool.get());
        let space = buf.writable();
        let want = space.len();
        if want == 0 {
            return Ok(false);
        }
        match self.stdout.read(space) {
            Ok(0) => {
                self.eof = true;
                self.stdout_ready = false;
                Ok(true)
            }
            // A short read does not clear readiness here: the script may
            // have written its last bytes and exited in one edge, and the
            // end of file is only seen by reading on until it shows.
            Ok(n) => {
                buf.commit(n);
                Ok(true)
            }
            Err(e) => match sys::classify(&e) {
                sys::ErrorKind::WouldBlock => {
                    self.stdout_ready = false;
                    Ok(false)
                }
                sys::ErrorKind::Interrupted => Ok(false),
                _ => Err(e),
            },
        }
    }

    /// Whether the script's header block was answered to the client.
    pub fn has_answered(&self) -> bool {
        self.framing != OutFraming::Pending
    }

    /// Give the output buffer back.
    pub fn release(&mut self, pool: &mut BufPool) {
        if let Some(b) = self.buf.take() {
            pool.put(b);
        }
    }
}

/// `RLIMIT_CPU` for a script of `cgi_timeout`: whole seconds rounded up, at
/// least one. A single-threaded script cannot use more CPU than wall time,
/// so only one that escaped the timeout's kill (`setsid`) or runs several
/// threads meets it; the kernel then kills it (`SIGKILL`).
fn cpu_seconds(timeout: Duration) -> u64 {
    let whole = timeout.as_secs();
    let up = whole.saturating_add(u64::from(timeout.subsec_nanos() > 0));
    up.max(1)
}

impl Drop for CgiProc {
    fn drop(&mut self) {
        // The client left, the script ran too long, or its answer is
        // complete (EOF) while it runs on after closing its stdout: it and
        // anything it started (same process group) go now. Only while it is
        // unreaped: a reaped pid may already belong to someone else (and
        // its group was killed when it was reaped). Reaped via SIGCHLD.
        if sys::child_unreaped(self.pid) {
            sys::kill_group(self.pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_limit_is_the_timeout_in_whole_seconds_rounded_up() {
        for (timeout, want) in [
            (Duration::ZERO, 1),
            (Duration::from_millis(1), 1),
            (Duration::from_millis(999), 1),
            (Duration::from_secs(1), 1),
            (Duration::from_millis(1001), 2),
            (Duration::from_millis(2500), 3),
            (Duration::from_secs(30), 30),
            (Duration::MAX, u64::MAX),
        ] {
            assert_eq!(cpu_seconds(timeout), want, "{timeout:?}");
        }
    }
}
