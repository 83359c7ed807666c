//! Signals as events: the signals the server handles are blocked and read
//! from a `signalfd` registered in the epoll loop, so a handler never runs
//! in the middle of the loop. `SIGPIPE` is ignored outright (sends also use
//! `MSG_NOSIGNAL`). Also the descriptor limit, raised at start.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// Ignore `SIGPIPE`: a client that vanishes is an `EPIPE`, not a death.
pub fn ignore_sigpipe() -> io::Result<()> {
    // SAFETY: SIG_IGN is a valid disposition for SIGPIPE.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raise the soft `RLIMIT_NOFILE` to the hard one; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit.
    cvt!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `want` is a live rlimit.
        if cvt!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) }).is_ok() {
            return Ok(want.rlim_cur);
        }
    }
    Ok(lim.rlim_cur)
}

/// A `signalfd` for a set of signals, which are blocked for the process so
/// they are only ever delivered through it.
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
}

fn sigset(signals: &[libc::c_int]) -> io::Result<libc::sigset_t> {
    // SAFETY: all-zero sigset_t is valid; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a live sigset_t.
    cvt!(unsafe { libc::sigemptyset(&mut set) })?;
    for &s in signals {
        // SAFETY: `set` is initialised; `s` is checked by the kernel.
        cvt!(unsafe { libc::sigaddset(&mut set, s) })?;
    }
    Ok(set)
}

impl SignalFd {
    /// Block `signals` and open a non-blocking, close-on-exec signalfd for them.
    pub fn new(signals: &[libc::c_int]) -> io::Result<SignalFd> {
        let set = sigset(signals)?;
        // SAFETY: `set` is a valid sigset_t; the old mask is not wanted.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        // SAFETY: -1 asks for a new descriptor; `set` is valid.
        let fd = cvt!(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
        // SAFETY: a fresh descriptor that only we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SignalFd { fd })
    }

    /// The next pending signal number, or `None` when none is pending.
    pub fn read(&self) -> io::Result<Option<i32>> {
        // SAFETY: all-zero signalfd_siginfo is valid plain data.
        let mut info: libc::signalfd_siginfo = unsafe { mem::zeroed() };
        let size = mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: `info` is a writable buffer of exactly `size` bytes.
        let r = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                std::ptr::addr_of_mut!(info).cast(),
                size,
            )
        };
        match cvt!(r) {
            Ok(n) if usize::try_from(n).ok() == Some(size) => {
                Ok(i32::try_from(info.ssi_signo).ok())
            }
            Ok(_) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signalfd_reports_a_raised_signal() {
        // SIGUSR2 is used by no other test.
        let sfd = SignalFd::new(&[libc::SIGUSR2]).unwrap();
        assert_eq!(sfd.read().unwrap(), None);
        // SAFETY: raise() targets this thread, which blocks SIGUSR2, so the
        // signal just stays pending for the signalfd.
        let r = unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(r, 0);
        assert_eq!(sfd.read().unwrap(), Some(libc::SIGUSR2));
        assert_eq!(sfd.read().unwrap(), None);
    }

    #[test]
    fn nofile_limit_is_at_least_the_soft_one() {
        assert!(raise_nofile_limit().unwrap() >= 64);
    }
}
