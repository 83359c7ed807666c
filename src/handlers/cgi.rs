//! CGI: what to run for a request, with which environment, and how to read
//! the script's header block. Running it is the server's job.
//! (Interface fixed; the implementation is to be written.)

use std::ffi::CString;

/// Everything needed to start one CGI process, built before `fork`.
#[derive(Debug)]
pub struct CgiPlan {
    /// The interpreter (absolute path; a bare name is resolved through PATH).
    pub program: CString,
    /// `[interpreter, /abs/path/to/script]`.
    pub argv: Vec<CString>,
    /// `NAME=value` entries (CONFIG.md "CGI"); `CONTENT_LENGTH` included
    /// when the request has a declared length.
    pub envp: Vec<CString>,
    /// The script's folder (the child `chdir`s there).
    pub cwd: CString,
}

impl CgiPlan {
    /// Set (or replace) `CONTENT_LENGTH`, once a chunked body has been
    /// decoded into a temporary file and its size is known.
    pub fn set_content_length(&mut self, n: u64) {
        let _ = n;
    }
}

/// The header block of a CGI response (RFC 3875 §6).
#[derive(Debug, PartialEq, Eq)]
pub struct CgiHead<'a> {
    /// From `Status:`, else 302 with a `Location`, else 200.
    pub status: u16,
    pub content_type: Option<&'a [u8]>,
    pub location: Option<&'a [u8]>,
    pub content_length: Option<u64>,
    /// Every other header, passed on to the client as is.
    pub headers: arrayvec::ArrayVec<(&'a [u8], &'a [u8]), 64>,
}

/// Why a CGI header block is refused (→ 502).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadCgiHead(pub &'static str);

/// Parse the header block at the start of `buf`: `Ok(None)` until the blank
/// line arrives, then the head and the number of bytes it took.
pub fn parse_head(buf: &[u8]) -> Result<Option<(CgiHead<'_>, usize)>, BadCgiHead> {
    let _ = buf;
    Ok(None)
}
