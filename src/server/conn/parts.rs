//! A `multipart/byteranges` body on the wire (`handlers::byteranges`): a
//! queue of segments, each sent as the connection sends any body. A part
//! head or the close-delimiter is an in-memory body (a slice of the shared
//! head text), a range of an open file a `FileBody` (sendfile, with its
//! page probe and read-ahead), a range of cached bytes an in-memory body.
//!
//! `write_out` sends the current segment; [`Conn::write_body`] moves on to
//! the next one within the same write step, until the turn's sendfile
//! budget or `SEGMENTS_PER_STEP` is spent. The socket stays corked from the
//! first segment to the last, so heads and small ranges leave in full
//! segments, and is uncorked once the close-delimiter is written.

use std::rc::Rc;

use crate::handlers::Body;
use crate::handlers::byteranges::{Parts, Piece};

use super::{Conn, Env, FileBody, OutBody, WriteOutcome};
use crate::server::transport::Transport;

/// Most segments (part heads and ranges) one write step sends: a request
/// with thousands of tiny ranges still yields to the other connections.
const SEGMENTS_PER_STEP: u32 = 64;

/// The segments of a multipart body still to send after the current one.
#[derive(Debug)]
pub(super) struct PartQueue {
    source: Body,
    text: Rc<[u8]>,
    pieces: Vec<Piece>,
    /// Segments handed out so far: `2k` is piece k's head (or the
    /// close-delimiter when k is past the pieces), `2k + 1` its range.
    next: usize,
}

impl PartQueue {
    pub(super) fn new(p: Parts) -> PartQueue {
        PartQueue {
            source: p.source,
            text: p.text,
            pieces: p.pieces,
            next: 0,
        }
    }

    /// The next segment, or `None` when the close-delimiter has been handed out.
    pub(super) fn next_segment(&mut self) -> Option<OutBody> {
        let k = self.next / 2;
        let head = self.next.is_multiple_of(2);
        if k > self.pieces.len() || (k == self.pieces.len() && !head) {
            return None;
        }
        self.next += 1;
        if head {
            let from = match k.checked_sub(1) {
                Some(prev) => self.pieces.get(prev).map_or(0, |p| p.head_end),
                None => 0,
            };
            let to = self.pieces.get(k).map_or(self.text.len(), |p| p.head_end);
            // Heads of a request's ranges: far below 4 GiB.
            debug_assert!(from <= to && u32::try_from(to).is_ok());
            return Some(OutBody::Shared {
                data: Rc::clone(&self.text),
                pos: u32::try_from(from).unwrap_or(u32::MAX),
                end: u32::try_from(to).unwrap_or(u32::MAX),
            });
        }
        let piece = self.pieces.get(k)?;
        Some(match &self.source {
            Body::File { file, start, .. } => {
                let off = start.saturating_add(piece.start);
                OutBody::File(FileBody {
                    file: Rc::clone(file),
                    off,
                    end: off.saturating_add(piece.len),
                    ahead: 0,
                    waits: 0,
                    parked: false,
                    probe: true,
                })
            }
            Body::Shared { data, start, .. } => {
                // The open-file cache holds only files far below 4 GiB.
                let from = (*start as u64).saturating_add(piece.start);
                let to = from.saturating_add(piece.len);
                debug_assert!(to <= data.len() as u64);
                OutBody::Shared {
                    data: Rc::clone(data),
                    pos: u32::try_from(from).unwrap_or(u32::MAX),
                    end: u32::try_from(to).unwrap_or(u32::MAX),
                }
            }
            other => {
                debug_assert!(false, "multipart over {other:?}");
                OutBody::None
            }
        })
    }
}

impl<T: Transport> Conn<T> {
    /// Install a multipart body: its queue, corked for the whole body, and
    /// the first segment (the first part's head), returned.
    pub(super) fn start_parts(&mut self, env: &mut Env<'_>, parts: Parts) -> OutBody {
        let mut queue = PartQueue::new(parts);
        let first = queue.next_segment().unwrap_or(OutBody::None);
        self.cur.parts = Some(Box::new(queue));
        self.tcp
            .begin_stream(&mut self.io, &mut env.shared.streams, true);
        first
    }

    /// One write step of the body: `write_out`, then for a multipart body
    /// the segments after it, while they go out whole and the step's
    /// budget lasts.
    pub(super) fn write_body(&mut self, env: &mut Env<'_>) -> WriteOutcome {
        let mut segments = 0;
        loop {
            let outcome = self.write_out(env);
            if !matches!(outcome, WriteOutcome::Done) {
                return outcome;
            }
            let Some(queue) = self.cur.parts.as_mut() else {
                return outcome;
            };
            match queue.next_segment() {
                Some(next) => self.body = next,
                None => {
                    self.cur.parts = None;
                    // As `write_out` does at the end of a file body.
                    self.tcp.end_stream(&mut self.io, &mut env.shared.streams);
                    return outcome;
                }
            }
            segments += 1;
            if segments >= SEGMENTS_PER_STEP || env.shared.sendfile_left == 0 {
                // Still writable: the connection comes back next turn.
                return WriteOutcome::Partial;
            }
        }
    }
}
