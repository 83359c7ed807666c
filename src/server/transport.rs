//! The connection's view of its socket (and of the page cache behind the
//! files it sends, and the pipe an upload is spliced through): a small
//! trait, so the whole state machine can be driven in tests and by the
//! fuzzer without a socket or a slow disk. The connection never sees a
//! descriptor.

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

use crate::sys::{self, File, Pipe, Residency, Socket};

/// Byte I/O of one client connection.
pub trait Transport {
    /// Read into `buf`; `Ok(0)` is end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Write the slices in order; `more` says further bytes follow at once.
    fn writev(&mut self, bufs: &[IoSlice<'_>], more: bool) -> io::Result<usize>;
    /// Send `count` bytes of `file` from `*offset`, advancing it.
    fn sendfile(&mut self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize>;
    /// Shut down the writing side (lingering close).
    fn shutdown_write(&mut self) -> io::Result<()>;
    /// Turn Nagle's algorithm off (`TCP_NODELAY`).
    fn set_nodelay(&mut self) -> io::Result<()>;
    /// Send only full segments while `on` (`TCP_CORK`); clearing it sends
    /// what is held.
    fn set_cork(&mut self, on: bool) -> io::Result<()>;
    /// Cap the unsent bytes queued (`TCP_NOTSENT_LOWAT`); 0 lifts the cap.
    fn set_notsent_lowat(&mut self, bytes: i32) -> io::Result<()>;
    /// Whether [`Transport::splice_to`] moves bytes; where it does not, a
    /// body is read.
    fn can_splice(&self) -> bool {
        false
    }
    /// Move up to `len` bytes of the stream into `pipe` without copying
    /// them through user space (`splice`); `Ok(0)` is end of stream.
    fn splice_to(&mut self, pipe: &Pipe, len: usize) -> io::Result<usize> {
        let _ = (pipe, len);
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
    /// Whether `len` bytes of `file` from `offset` (`len` > 0) can be sent
    /// without waiting for the disk.
    fn file_ready(&mut self, file: &File, offset: u64, len: usize) -> Residency;
    /// Start reading `len` bytes of `file` from `offset` into memory, without
    /// waiting for them.
    fn read_ahead(&mut self, file: &File, offset: u64, len: u64);
}

impl Transport for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Socket::read(self, buf)
    }
    fn writev(&mut self, bufs: &[IoSlice<'_>], more: bool) -> io::Result<usize> {
        Socket::writev(self, bufs, more)
    }
    fn sendfile(&mut self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
        Socket::sendfile(self, file, offset, count)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        Socket::shutdown_write(self)
    }
    fn set_nodelay(&mut self) -> io::Result<()> {
        Socket::set_nodelay(self)
    }
    fn set_cork(&mut self, on: bool) -> io::Result<()> {
        Socket::set_cork(self, on)
    }
    fn set_notsent_lowat(&mut self, bytes: i32) -> io::Result<()> {
        Socket::set_notsent_lowat(self, bytes)
    }
    fn can_splice(&self) -> bool {
        true
    }
    fn splice_to(&mut self, pipe: &Pipe, len: usize) -> io::Result<usize> {
        sys::splice(self.as_raw_fd(), pipe.as_raw_fd(), len)
    }
    /// The last byte of the range is probed, one syscall (about 1.2 µs)
    /// per `sendfile` chunk of 512 KiB: read-ahead asks for a range in
    /// ascending order and the disk's queue serves it so, so when its last
    /// page is in, the pages before it are too. Measured: under four cold
    /// downloads at 100 MB/s no `sendfile` took over 2.4 ms (2,051 calls,
    /// strace), and in 13 runs no call at all took over 15 ms (`perf trace
    /// --duration 15`). Reading the whole chunk with `RWF_NOWAIT` would be
    /// exact but would copy what `sendfile` is there not to copy. (The
    /// first miss of a body can be read before the pages ahead of it in
    /// its chunk, which are asked for just after: `sendfile` may then wait
    /// for those, one chunk's worth of the disk's queue.)
    fn file_ready(&mut self, file: &File, offset: u64, len: usize) -> Residency {
        file.residency(offset.saturating_add(len.saturating_sub(1) as u64))
    }
    /// A probe of the range's first page first: a miss there starts the
    /// kernel's own read-ahead (sized from the pages before it, up to the
    /// disk's `read_ahead_kb`), which reads into large folios, and `fadvise`
    /// then fills only what it left out, page by page. Four cold 256 MiB
    /// downloads at 100 MB/s cost the loop 0.30-0.35 s of CPU this way
    /// (312 disk reads), against 0.67-0.90 s (756-1,234 reads) with
    /// `fadvise` alone: `force_page_cache_ra` allocates and inserts 4 KiB
    /// pages one by one (47 % of the server's CPU in `perf`).
    fn read_ahead(&mut self, file: &File, offset: u64, len: u64) {
        let _ = file.residency(offset);
        // Only a hint: if it fails, the probe before the send finds the
        // pages missing and the connection tries again later.
        let _ = file.will_need(offset, len);
    }
}

#[cfg(any(test, feature = "testkit"))]
mod mem;
#[cfg(any(test, feature = "testkit"))]
pub use mem::MemTransport;
