//! Child processes: `spawn` (fork + execve) for CGI scripts, `fork` for
//! worker processes, and the signalling and reaping of children.
//! `spawn` builds every pointer array and limit before `fork`; the child
//! only makes async-signal-safe calls, each a single system call (`prctl`,
//! `getppid`, `fcntl`, `dup2`, `chdir`, `setpgid`, `sigprocmask`, `signal`,
//! `setrlimit`, `close_range` or `close`, `execve`, `_exit`).

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use super::cvt;

/// What a child is started with.
pub struct Command<'a> {
    /// The program to execute (a path; no PATH lookup here).
    pub program: &'a CString,
    pub argv: &'a [CString],
    pub envp: &'a [CString],
    /// Working folder of the child.
    pub cwd: &'a CString,
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// `RLIMIT_CPU` of the child in seconds (soft and hard: the kernel
    /// sends `SIGKILL` when it is used up); `None` leaves it as inherited.
    pub cpu_seconds: Option<u64>,
}

/// `fork` + `execve`. The child gets `stdin`/`stdout`/`stderr` as fds 0-2
/// and no other descriptor (CONFIG.md "CGI": not even one the server itself
/// inherited without `CLOEXEC`), runs in `cwd`, in a process group of its
/// own (so a timeout can kill its grandchildren too), with every signal
/// unblocked and at its default disposition, under `cpu_seconds` of CPU
/// time, and is killed (`SIGKILL`) when this process dies, however it dies.
/// Returns the child's pid.
pub fn spawn(cmd: &Command<'_>) -> io::Result<libc::pid_t> {
    let mut argv: Vec<*const libc::c_char> = cmd.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = cmd.envp.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let fds = [cmd.stdin, cmd.stdout, cmd.stderr];
    // Before the fork: the descriptors to close if the kernel has no
    // close_range (before 5.9), and the CPU limit, never above the hard
    // limit this process has (raising it would fail without privilege).
    let open_max = get_rlimit(libc::RLIMIT_NOFILE).map_or(1024, |l| {
        libc::c_int::try_from(l.rlim_cur).unwrap_or(libc::c_int::MAX)
    });
    let cpu = cmd.cpu_seconds.map(|secs| {
        let secs = libc::rlim_t::try_from(secs).unwrap_or(libc::RLIM_INFINITY);
        let hard = get_rlimit(libc::RLIMIT_CPU).map_or(libc::RLIM_INFINITY, |l| l.rlim_max);
        let n = secs.min(hard);
        libc::rlimit {
            rlim_cur: n,
            rlim_max: n,
        }
    });
    // SAFETY: getpid cannot fail and takes no arguments.
    let parent = unsafe { libc::getpid() };
    // SAFETY: fork has no preconditions; the child below only makes
    // async-signal-safe calls on data prepared before the fork.
    let pid = cvt!(unsafe { libc::fork() })?;
    if pid == 0 {
        // SAFETY: in the child; every call is async-signal-safe and every
        // pointer refers to memory built before fork (argv, envp, cwd).
        unsafe {
            // Its own process group keeps the child out of a kill aimed at
            // the server's, so a server killed with SIGKILL (no chance to
            // kill its scripts) would orphan it: the kernel kills it instead
            // when its parent dies (the thread that forked it: the server
            // has only one). There is no change of credentials here
            // (one would clear the setting; `user` took effect before the
            // loop started), and a set-user-ID interpreter would clear it at
            // execve. The parent may have died before the setting was in
            // place: then the child was reparented and leaves at once.
            if set_parent_death_signal(libc::SIGKILL).is_err() {
                libc::_exit(126);
            }
            if libc::getppid() != parent {
                libc::_exit(126);
            }
            // Move the descriptors out of 0..2 first so no dup2 overwrites
            // one that a later dup2 still needs.
            let mut moved = [0 as libc::c_int; 3];
            for (i, &fd) in fds.iter().enumerate() {
                moved[i] = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
                if moved[i] < 0 {
                    libc::_exit(126);
                }
            }
            for (i, &fd) in moved.iter().enumerate() {
                if libc::dup2(fd, i as libc::c_int) < 0 {
                    libc::_exit(126);
                }
            }
            libc::setpgid(0, 0);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            for sig in 1..32 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            if libc::chdir(cmd.cwd.as_ptr()) < 0 {
                libc::_exit(126);
            }
            // A script that burns CPU stops even if it escaped the group
            // kill (setsid) or outlives a server killed with SIGKILL.
            if let Some(lim) = &cpu
                && libc::setrlimit(libc::RLIMIT_CPU, lim) < 0
            {
                libc::_exit(126);
            }
            // Everything above 2 goes, CLOEXEC or not (the moved copies
            // above included). Without close_range, close each possible
            // descriptor: reading /proc/self/fd would allocate.
            let all = libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                0 as libc::c_uint,
            );
            if all < 0 {
                for fd in 3..open_max {
                    libc::close(fd);
                }
            }
            libc::execve(cmd.program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    // Also from the parent, so the group exists before anyone may signal
    // it (the classic race with the child's own setpgid); EACCES after the
    // child's exec is harmless.
    // SAFETY: setpgid takes no pointers.
    unsafe { libc::setpgid(pid, pid) };
    Ok(pid)
}

/// `kill(-pid, sig)`: the child's whole process group (it leads one of its
/// own, see `spawn`). A group id cannot be reused while the group has a
/// member, so this never reaches an unrelated process.
pub fn kill_group(pid: libc::pid_t, sig: libc::c_int) {
    if pid <= 0 {
        return;
    }
    // SAFETY: kill takes no pointers; a vanished group gets ESRCH.
    unsafe { libc::kill(-pid, sig) };
}

/// The type of `getrlimit`'s first argument: glibc has an enum of its own.
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

/// `getrlimit(resource)`, `None` if it fails.
fn get_rlimit(resource: Resource) -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit.
    cvt!(unsafe { libc::getrlimit(resource, &mut lim) }).ok()?;
    Some(lim)
}

/// Reap one exited child without blocking: `Some((pid, status))`, or `None`
/// when no child has exited.
pub fn reap() -> Option<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    // SAFETY: `status` is a live int.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// End a forked copy of a test process at once, running nothing of the
/// harness's (no destructors, no exit handlers).
#[cfg(test)]
pub fn exit_forked_test(code: libc::c_int) -> ! {
    // SAFETY: _exit takes no pointers and never returns.
    unsafe { libc::_exit(code) }
}

/// A child that has exited, left unreaped (`waitid` with `WNOWAIT`): while
/// it stays a zombie its pid, and so its process group id, cannot be reused,
/// so its group may still be signalled safely. `None` when none has exited.
pub fn exited_child() -> Option<libc::pid_t> {
    // SAFETY: siginfo_t is plain old data; all-zero is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a live siginfo_t.
    let r = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
    if r < 0 {
        return None;
    }
    // SAFETY: waitid filled `info` (si_pid stays 0 when no child exited).
    let pid = unsafe { info.si_pid() };
    (pid > 0).then_some(pid)
}

/// Reap the child `pid` without blocking; whether it was reaped.
pub fn reap_pid(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: `status` is a live int.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
}

/// Whether `pid` is our child and not reaped yet (running, or a zombie):
/// then its process group id is still ours to signal.
pub fn child_unreaped(pid: libc::pid_t) -> bool {
    let Ok(id) = libc::id_t::try_from(pid) else {
        return false;
    };
    // SAFETY: siginfo_t is plain old data; all-zero is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a live siginfo_t; WNOWAIT leaves the child as it is.
    unsafe { libc::waitid(libc::P_PID, id, &mut info, flags) == 0 }
}

/// What `fork` returned on this side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forked {
    /// In the new process.
    Child,
    /// In the parent; the child's pid.
    Parent(libc::pid_t),
}

/// `fork(2)` of the whole (single-threaded) process, for worker processes:
/// the child goes on with a copy of everything, descriptors included.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: fork has no preconditions; the server has one thread, so the
    // child's copy of every lock and allocator state is consistent.
    let pid = cvt!(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
}

/// `kill(pid, sig)` of one process (never a group: `pid` must be > 0).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) {
    if pid <= 0 {
        return;
    }
    // SAFETY: kill takes no pointers; a vanished process gets ESRCH.
    unsafe { libc::kill(pid, sig) };
}

/// Ask the kernel to send `sig` to this process when its parent dies
/// (`PR_SET_PDEATHSIG`), so a worker never outlives its master nor a CGI
/// script its server. Async-signal-safe (one system call), for `spawn`'s
/// child.
pub fn set_parent_death_signal(sig: libc::c_int) -> io::Result<()> {
    let sig = libc::c_ulong::try_from(sig).unwrap_or(0);
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number, no pointers.
    cvt!(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::sys::pipe::pipe;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    #[test]
    fn spawn_runs_a_child_with_pipes_and_cwd() {
        let (in_r, in_w) = pipe().unwrap();
        let (out_r, out_w) = pipe().unwrap();
        let prog = c("/bin/sh");
        let argv = [c("sh"), c("-c"), c("read x; echo \"$x $(pwd) $FOO\"")];
        let envp = [c("FOO=bar"), c("PATH=/usr/bin:/bin")];
        let cwd = c("/tmp");
        let pid = spawn(&Command {
            program: &prog,
            argv: &argv,
            envp: &envp,
            cwd: &cwd,
            stdin: in_r.as_raw_fd(),
            stdout: out_w.as_raw_fd(),
            stderr: 2,
            cpu_seconds: None,
        })
        .unwrap();
        drop((in_r, out_w));
        in_w.write(b"hello\n").unwrap();
        drop(in_w);
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = out_r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(String::from_utf8_lossy(&got), "hello /tmp bar\n");
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        assert_eq!(libc::WEXITSTATUS(status), 0);
    }
}
