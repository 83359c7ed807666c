//! The only module that writes `unsafe`: thin, safe wrappers over the Linux
//! system calls the server needs. Every descriptor is created `CLOEXEC` and
//! owned by an `OwnedFd` newtype whose `Drop` closes it; every wrapper returns
//! `io::Result`, turning `-1` into `io::Error::last_os_error()`.
//!
//! Errors are sorted for the reactor in one place, [`classify`].

use std::io;

pub mod epoll;
pub mod file;
pub mod pipe;
pub mod process;
pub mod random;
pub mod shared;
pub mod signal;
pub mod socket;
pub mod time;
pub mod user;

pub use epoll::{Epoll, Event, Events, Interest};
pub use file::{Dir, DirEntry, File, FileKind, Meta, Residency};
pub use pipe::{Pipe, pipe, set_nonblocking, splice};
pub use process::{
    Command, Forked, child_unreaped, exited_child, fork, kill, kill_group, reap, reap_pid,
    set_parent_death_signal, spawn,
};
pub use random::random_bytes;
pub use signal::{SignalFd, ignore_sigpipe, raise_nofile_limit};
pub use socket::{Listener, Socket, connect_small_window};
pub use time::utc_offset;
pub use user::{drop_privileges, is_root, lookup_user};

/// Turn a C-style return value into `io::Result`: `-1` becomes the thread's
/// `errno`.
macro_rules! cvt {
    ($e:expr) => {{
        let r = $e;
        if r == -1 {
            Err(::std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }};
}
pub(crate) use cvt;

/// What the reactor should do about an I/O error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `EAGAIN`/`EWOULDBLOCK`: not ready; wait for the next edge.
    WouldBlock,
    /// `EINTR`: try again at once.
    Interrupted,
    /// The peer went away (`EPIPE`, `ECONNRESET`, `ENOTCONN`, ...): close quietly.
    PeerGone,
    /// The process or system is out of descriptors (`EMFILE`, `ENFILE`).
    NoDescriptors,
    /// Anything else: log it and close.
    Other,
}

/// Sort an I/O error into what the reactor does about it.
pub fn classify(e: &io::Error) -> ErrorKind {
    match e.raw_os_error() {
        Some(libc::EAGAIN) => ErrorKind::WouldBlock,
        Some(libc::EINTR) => ErrorKind::Interrupted,
        Some(
            libc::EPIPE
            | libc::ECONNRESET
            | libc::ENOTCONN
            | libc::ECONNABORTED
            | libc::ETIMEDOUT
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH,
        ) => ErrorKind::PeerGone,
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            ErrorKind::NoDescriptors
        }
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_sorts_errno() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(classify(&e(libc::EAGAIN)), ErrorKind::WouldBlock);
        assert_eq!(classify(&e(libc::EINTR)), ErrorKind::Interrupted);
        assert_eq!(classify(&e(libc::EPIPE)), ErrorKind::PeerGone);
        assert_eq!(classify(&e(libc::ECONNRESET)), ErrorKind::PeerGone);
        assert_eq!(classify(&e(libc::EMFILE)), ErrorKind::NoDescriptors);
        assert_eq!(classify(&e(libc::EBADF)), ErrorKind::Other);
    }
}
