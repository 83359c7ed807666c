//! A request body on its way in: raw bytes from the connection's buffer are
//! de-framed (`Content-Length` or chunked) and handed to their destination,
//! an upload, a CGI's stdin pipe, or a temporary file that becomes a CGI's
//! stdin once a chunked body is complete. The body never sits whole in
//! memory: at most one buffer of it at a time.
//!
//! `client_max_body_size` applies to the decoded size (CONFIG.md); a
//! declared length was already checked against it from the head.

use crate::handlers::Refusal;
use std::os::fd::AsRawFd;

use crate::handlers::cgi::CgiPlan;
use crate::handlers::upload::UploadSink;
use crate::http::bytes::within;
use crate::http::chunked::ChunkedDecoder;
use crate::sys::{self, ErrorKind, File, Pipe, classify};

/// How the body is delimited (RFC 9112 §6.3).
pub enum Framing {
    /// Bytes still to come.
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// Where decoded bytes go.
pub enum Sink {
    Upload(UploadSink),
    /// The running CGI's stdin; `None` once the script closed it (its
    /// reading end is gone: the rest of the body is read and dropped).
    CgiStdin(Option<Pipe>),
    /// A chunked body for a CGI, spooled to an unlinked temporary file so
    /// `CONTENT_LENGTH` can be set (CONFIG.md "CGI").
    Spool(File, Box<CgiPlan>),
}

/// What feeding bytes achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Every given byte was taken; more are needed.
    NeedMore,
    /// The body is complete (bytes after it are left unconsumed).
    Done,
    /// The sink cannot take more now (a full pipe): wait for it.
    Blocked,
    /// The body is refused with this status (400, 413, 500, 507).
    Fail(Refusal),
}

/// A body being received.
pub struct Inbound {
    pub framing: Framing,
    /// Largest decoded size allowed; 0 means no limit.
    pub limit: u64,
    /// Decoded bytes so far.
    pub decoded: u64,
    pub sink: Sink,
}

impl Inbound {
    /// A body framed as the request head said.
    pub fn new(chunked: bool, length: u64, limit: u64, sink: Sink) -> Inbound {
        let framing = if chunked {
            Framing::Chunked(ChunkedDecoder::new())
        } else {
            Framing::Length(length)
        };
        Inbound {
            framing,
            limit,
            decoded: 0,
            sink,
        }
    }

    /// Whether the whole body has been received.
    pub fn is_complete(&self) -> bool {
        match &self.framing {
            Framing::Length(left) => *left == 0,
            Framing::Chunked(d) => d.is_done(),
        }
    }

    /// Bytes still to come of a `Content-Length` body.
    pub fn remaining(&self) -> Option<u64> {
        match &self.framing {
            Framing::Length(left) => Some(*left),
            Framing::Chunked(_) => None,
        }
    }

    /// Push raw body bytes through the decoder into the sink. Returns how
    /// many bytes of `input` were used and what happened.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Feed) {
        let mut used = 0;
        loop {
            if self.is_complete() {
                return (used, Feed::Done);
            }
            let rest = within(input, used..);
            if rest.is_empty() {
                return (used, Feed::NeedMore);
            }
            let (raw, data) = match &mut self.framing {
                Framing::Length(left) => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(rest.len());
                    (n, within(rest, ..n))
                }
                Framing::Chunked(dec) => match dec.decode(rest) {
                    Ok(x) => x,
                    Err(_) => return (used, Feed::Fail(Refusal::BadRequest)),
                },
            };
            if raw == 0 && data.is_empty() {
                return (used, Feed::NeedMore);
            }
            let len = data.len() as u64;
            if self.limit > 0 && self.decoded + len > self.limit {
                return (used, Feed::Fail(Refusal::TooLarge));
            }
            let taken = match self.take(data) {
                Ok(n) => n,
                Err(status) => return (used, Feed::Fail(status)),
            };
            self.decoded += taken as u64;
            match &mut self.framing {
                // Only a pipe takes part of a piece, and pipes only get
                // Content-Length bodies, where raw bytes are data bytes.
                Framing::Length(left) => {
                    *left -= taken as u64;
                    used += taken;
                    if taken < data.len() {
                        return (used, Feed::Blocked);
                    }
                }
                Framing::Chunked(_) => used += raw,
            }
        }
    }

    /// Move the `n` bytes of a `Content-Length` body that a splice put in
    /// `pipe` on into the upload's file, and count them. On `Err` (the
    /// status to answer) some of them may still be in the pipe.
    pub fn take_spliced(&mut self, pipe: &Pipe, n: usize) -> Result<(), Refusal> {
        // Only an upload with a file of its own is ever spliced into.
        let Sink::Upload(sink) = &mut self.sink else {
            debug_assert!(false, "splice into a sink that is not an upload");
            return Err(Refusal::Internal);
        };
        let Some(file) = sink.raw_file() else {
            debug_assert!(false, "splice into an upload without a file");
            return Err(Refusal::Internal);
        };
        let mut moved = 0;
        while moved < n {
            match sys::splice(pipe.as_raw_fd(), file.as_raw_fd(), n - moved) {
                Ok(0) => return Err(Refusal::Internal),
                Ok(k) => moved += k,
                Err(e) if classify(&e) == ErrorKind::Interrupted => {}
                Err(e) => return Err(Refusal::of_write(&e)),
            }
        }
        sink.spliced(moved as u64);
        if let Framing::Length(left) = &mut self.framing {
            *left -= moved as u64;
        }
        self.decoded += moved as u64;
        Ok(())
    }

    /// Give `data` to the sink: how much it took.
    fn take(&mut self, data: &[u8]) -> Result<usize, Refusal> {
        if data.is_empty() {
            return Ok(0);
        }
        match &mut self.sink {
            Sink::Upload(s) => s.write(data).map(|()| data.len()),
            Sink::Spool(f, _) => f
                .write_all(data)
                .map(|()| data.len())
                .map_err(|e| Refusal::of_write(&e)),
            Sink::CgiStdin(None) => Ok(data.len()),
            Sink::CgiStdin(Some(p)) => match p.write(data) {
                Ok(n) => Ok(n),
                Err(e) => match classify(&e) {
                    ErrorKind::WouldBlock | ErrorKind::Interrupted => Ok(0),
                    // The script stopped reading: drop the rest of the body.
                    _ => {
                        self.sink = Sink::CgiStdin(None);
                        Ok(data.len())
                    }
                },
            },
        }
    }
}
