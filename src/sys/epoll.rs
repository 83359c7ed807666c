//! Edge-triggered epoll. Each descriptor is registered once for everything it
//! may ever want (`Interest`), with a `u64` token the reactor chooses
//! (slot + generation); readiness is then remembered by the reactor, never
//! re-armed with `EPOLL_CTL_MOD` on the hot path.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// What a registration waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Readable only (listeners, signalfd, pipes we read).
    Read,
    /// Writable only (pipes we write).
    Write,
    /// Both, plus peer half-close (client sockets).
    ReadWrite,
}

impl Interest {
    fn bits(self) -> u32 {
        let et = libc::EPOLLET as u32;
        match self {
            Interest::Read => libc::EPOLLIN as u32 | et,
            Interest::Write => libc::EPOLLOUT as u32 | et,
            Interest::ReadWrite => (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP) as u32 | et,
        }
    }
}

/// An epoll instance.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

/// One readiness report.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// The token given at registration.
    pub token: u64,
    flags: u32,
}

impl Event {
    /// Data (or EOF, or an error) can be read.
    pub fn readable(&self) -> bool {
        self.flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) as u32
            != 0
    }
    /// The peer closed (its writing side, or the whole connection): a
    /// short read is then no sign that nothing more is pending, since the
    /// end of stream still has to be read.
    pub fn hangup(&self) -> bool {
        self.flags & (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) as u32 != 0
    }

    /// The descriptor can take more bytes (or has failed: a write will tell).
    pub fn writable(&self) -> bool {
        self.flags & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
    }
}

/// A reusable array of events for [`Epoll::wait`].
pub struct Events {
    buf: Vec<libc::epoll_event>,
    len: usize,
}

impl Events {
    /// Room for `cap` events per wait.
    pub fn with_capacity(cap: usize) -> Events {
        Events {
            buf: vec![libc::epoll_event { events: 0, u64: 0 }; cap.max(1)],
            len: 0,
        }
    }

    /// Number of events of the last wait.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last wait returned no event.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Event `i` of the last wait.
    pub fn get(&self, i: usize) -> Option<Event> {
        if i >= self.len {
            return None;
        }
        self.buf.get(i).map(|e| {
            let flags = e.events;
            let token = e.u64;
            Event { token, flags }
        })
    }

    /// The events of the last wait.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.buf.iter().take(self.len).map(|e| {
            // Copy out of the (packed on x86_64) struct before use.
            let flags = e.events;
            let token = e.u64;
            Event { token, flags }
        })
    }
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a
        // fresh descriptor that we own from here on.
        let fd = cvt!(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// Register `fd` once, edge-triggered, with `token`.
    pub fn add(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    /// Change the token or interest of a registered descriptor.
    pub fn modify(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    /// Remove a descriptor (closing it does the same; this is for listeners
    /// that stay open while accepting is paused).
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `ev` is a valid epoll_event (ignored for DEL on modern kernels).
        cvt!(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) })?;
        Ok(())
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: interest.bits(),
            u64: token,
        };
        // SAFETY: `ev` lives across the call; the kernel copies it.
        cvt!(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Wait up to `timeout_ms` (-1: forever, 0: poll) and fill `events`.
    /// `EINTR` is reported as zero events.
    pub fn wait(&self, events: &mut Events, timeout_ms: i32) -> io::Result<usize> {
        let cap = i32::try_from(events.buf.len()).unwrap_or(i32::MAX);
        // SAFETY: the buffer holds `cap` initialised epoll_event entries and
        // outlives the call; the kernel writes at most `cap` of them.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.buf.as_mut_ptr(),
                cap,
                timeout_ms,
            )
        };
        match cvt!(n) {
            Ok(n) => {
                events.len = usize::try_from(n).unwrap_or(0);
                Ok(events.len)
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                events.len = 0;
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
}
