//! A transport in memory, for the unit tests and the fuzzer: compiled only
//! for them (`cfg(test)` or the `testkit` feature), never into the server.

use std::io::{self, IoSlice};

use super::Transport;
use crate::sys::{File, Pipe, Residency};

/// An in-memory transport for tests and the fuzzer: reads come from queued
/// chunks (then `EAGAIN`, or end of stream once `eof` is set), writes go to
/// `output`, at most `write_limit` bytes per call (short writes on demand).
/// File pages are in memory unless `cold` says otherwise. With `splice`
/// set, queued bytes can also be spliced: written into the given pipe.
#[derive(Debug, Default)]
pub struct MemTransport {
    pub input: std::collections::VecDeque<Vec<u8>>,
    pub eof: bool,
    pub output: Vec<u8>,
    pub write_limit: Option<usize>,
    pub shut: bool,
    /// `set_nodelay` was called.
    pub nodelay: bool,
    /// The peer reset the connection: every write fails (`ECONNRESET`).
    pub reset: bool,
    /// The next `cold` probes answer "on disk".
    pub cold: u32,
    /// Every probe answers "cannot say" (a filesystem such as tmpfs).
    pub no_probe: bool,
    /// Probes made.
    pub probes: u32,
    /// The read-aheads asked for: (offset, length).
    pub read_aheads: Vec<(u64, u64)>,
    /// Each `set_cork`: the state asked for, and how many bytes had been
    /// written when it was.
    pub corks: Vec<(bool, usize)>,
    /// Each `set_notsent_lowat`, in order.
    pub lowats: Vec<i32>,
    /// `splice_to` is offered, as a socket offers it.
    pub splice: bool,
    /// Bytes moved by `splice_to`.
    pub spliced: usize,
}

impl MemTransport {
    /// Queue bytes for the connection to read.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.push_back(bytes.to_vec());
    }

    fn room(&self, want: usize) -> usize {
        self.write_limit.map_or(want, |l| l.min(want))
    }
}

fn would_block() -> io::Error {
    io::Error::from_raw_os_error(libc::EAGAIN)
}

impl Transport for MemTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(mut chunk) = self.input.pop_front() else {
            return if self.eof { Ok(0) } else { Err(would_block()) };
        };
        let n = chunk.len().min(buf.len());
        let rest = chunk.split_off(n);
        if let Some(dst) = buf.get_mut(..n) {
            dst.copy_from_slice(&chunk);
        }
        if !rest.is_empty() {
            self.input.push_front(rest);
        }
        Ok(n)
    }

    fn writev(&mut self, bufs: &[IoSlice<'_>], _more: bool) -> io::Result<usize> {
        if self.reset {
            return Err(io::Error::from_raw_os_error(libc::ECONNRESET));
        }
        if self.shut {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut left = self.room(total);
        if left == 0 && total > 0 {
            return Err(would_block());
        }
        let mut n = 0;
        for b in bufs {
            let take = left.min(b.len());
            self.output.extend_from_slice(b.get(..take).unwrap_or(&[]));
            left -= take;
            n += take;
        }
        Ok(n)
    }

    fn sendfile(&mut self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
        if self.reset {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        let count = self.room(count);
        if count == 0 {
            return Err(would_block());
        }
        let mut buf = vec![0u8; count];
        let n = file.read_at(&mut buf, *offset)?;
        self.output.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        *offset += n as u64;
        Ok(n)
    }

    fn can_splice(&self) -> bool {
        self.splice
    }

    /// Like `read`, into the pipe: a chunk the pipe cannot take whole is
    /// left queued for the next call.
    fn splice_to(&mut self, pipe: &Pipe, len: usize) -> io::Result<usize> {
        let Some(mut chunk) = self.input.pop_front() else {
            return if self.eof { Ok(0) } else { Err(would_block()) };
        };
        let want = chunk.len().min(len);
        let n = match pipe.write(chunk.get(..want).unwrap_or(&[])) {
            Ok(n) => n,
            Err(e) => {
                self.input.push_front(chunk);
                return Err(e);
            }
        };
        let rest = chunk.split_off(n);
        if !rest.is_empty() {
            self.input.push_front(rest);
        }
        self.spliced += n;
        Ok(n)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shut = true;
        Ok(())
    }
    fn set_nodelay(&mut self) -> io::Result<()> {
        self.nodelay = true;
        Ok(())
    }
    fn file_ready(&mut self, _file: &File, _offset: u64, _len: usize) -> Residency {
        self.probes += 1;
        if self.no_probe {
            Residency::Unknown
        } else if self.cold > 0 {
            self.cold -= 1;
            Residency::OnDisk
        } else {
            Residency::InMemory
        }
    }
    fn read_ahead(&mut self, _file: &File, offset: u64, len: u64) {
        self.read_aheads.push((offset, len));
    }
    fn set_cork(&mut self, on: bool) -> io::Result<()> {
        self.corks.push((on, self.output.len()));
        Ok(())
    }
    fn set_notsent_lowat(&mut self, bytes: i32) -> io::Result<()> {
        self.lowats.push(bytes);
        Ok(())
    }
}
