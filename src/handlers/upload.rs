//! Uploads into an `upload_store` folder and DELETE.
//! (Interface fixed; the implementation is to be written.)

use super::{Ctx, Reply};
use crate::sys::File;

/// Where an upload's decoded body bytes go. Files are written under a
/// temporary hidden name and renamed into place by `finish`; dropping an
/// unfinished sink removes every temporary file (client gone, limit hit).
#[derive(Debug)]
pub struct UploadSink {
    _private: (),
}

impl UploadSink {
    /// Take the next decoded body bytes. `Err(status)` aborts the upload:
    /// 507 when the disk is full, 400 for a malformed multipart body, 500
    /// for another I/O error.
    pub fn write(&mut self, data: &[u8]) -> Result<(), u16> {
        let _ = data;
        Err(500)
    }

    /// For a raw (not multipart) upload: the file being written, so the
    /// server may `splice` socket → pipe → file without copying.
    pub fn raw_file(&self) -> Option<&File> {
        None
    }

    /// Account for `n` bytes the server spliced into `raw_file()`.
    pub fn spliced(&mut self, n: u64) {
        let _ = n;
    }

    /// The body is complete: rename into place and answer (201 + Location
    /// for a new file, 204 when one was replaced; multipart: 201 with the
    /// Location of the first file and every stored name in the body).
    pub fn finish<'c>(self, ctx: &mut Ctx<'c>) -> Reply<'c> {
        super::error_reply(ctx, 500)
    }
}
