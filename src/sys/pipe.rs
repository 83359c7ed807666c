//! Pipes: `pipe2(O_CLOEXEC)` pairs owned by [`Pipe`], `O_NONBLOCK` for any
//! descriptor, and `splice(2)` between a pipe and a socket or file. The
//! server's ends of a CGI pipe are made non-blocking, the child's stay
//! blocking (it is given them as fds 0-2 by `process::spawn`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// One end of a pipe.
#[derive(Debug)]
pub struct Pipe {
    fd: OwnedFd,
}

/// `pipe2(O_CLOEXEC)`: (read end, write end), both blocking.
pub fn pipe() -> io::Result<(Pipe, Pipe)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    cvt!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors are fresh and owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((Pipe { fd: r }, Pipe { fd: w }))
}

/// Set or clear `O_NONBLOCK` on any descriptor.
pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer.
    let flags = cvt!(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL with an int argument.
    cvt!(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) })?;
    Ok(())
}

impl Pipe {
    /// Make this end non-blocking (the server's ends).
    pub fn set_nonblocking(&self) -> io::Result<()> {
        set_nonblocking(self.fd.as_raw_fd(), true)
    }

    /// `read(2)`.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.fd.as_raw_fd();
        // SAFETY: `buf` is a valid writable region of `buf.len()` bytes.
        let n = cvt!(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// `write(2)`.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: `buf` is a valid readable region of `buf.len()` bytes.
        let n = cvt!(unsafe { libc::write(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

impl AsRawFd for Pipe {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// `splice(2)` up to `len` bytes from `from` to `to` (one must be a pipe),
/// non-blocking on the pipe side and moving pages where it can.
pub fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: null offsets mean "use and advance the file offsets"; the
    // descriptors are open for the duration of the call.
    let n = cvt!(unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    })?;
    Ok(usize::try_from(n).unwrap_or(0))
}
