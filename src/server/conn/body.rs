//! The `Body` and `Cgi` states: a request body streams from the socket
//! through the connection's ring buffer (or, for a plain upload, through a
//! pipe with `splice`, never entering user space) into its sink, while a
//! CGI's output streams from its stdout pipe to the client. Each turn still
//! does at most one socket read, one socket write and one pipe read.

use crate::http::cgi::parse_head as parse_cgi_head;
use crate::sys::{self, ErrorKind, classify};

use super::super::cgi::{OutFraming, Stdin};
use super::super::inbound::{Feed, Sink};
use super::super::transport::Transport;
use super::exchange::{self, NotStarted, spawn, write_cgi_head};
use super::{Conn, Env, ReadOutcome, State, Step, WriteOutcome, ms};

/// Most bytes one `splice` moves: one pipe's worth (64 KiB by default).
const SPLICE_CHUNK: usize = 64 * 1024;
/// Room kept in the output buffer for a chunk's size line and CRLFs.
const CHUNK_FRAME: usize = 16 + 4;

impl<T: Transport> Conn<T> {
    /// Receive the body; pass on a CGI's output meanwhile.
    pub(super) fn step_body(&mut self, env: &mut Env<'_>, reads: &mut u8, writes: &mut u8) -> Step {
        // Output first: a `100 Continue`, or what a CGI already said.
        let out_step = self.pump_output(env, writes);
        if matches!(out_step, Some(Step::Close | Step::Continue)) || self.state != State::Body {
            return out_step.unwrap_or(Step::Continue);
        }
        match self.feed_buffered(env) {
            Some(step) => return step,
            None if self.sink_blocked() => return out_step.unwrap_or(Step::Wait),
            None => {}
        }
        let step = if self.splice_ready(env) {
            self.splice_in(env, reads)
        } else {
            match self.read_in(&mut env.shared.pool, reads) {
                ReadOutcome::Got => {
                    self.deadline = env.now + ms(env.config.client_body_timeout);
                    self.clamp_deadline_to_cgi();
                    Step::Continue
                }
                ReadOutcome::Wait => {
                    self.drop_empty_inbuf(&mut env.shared.pool);
                    Step::Wait
                }
                ReadOutcome::Budget => Step::Budget,
                ReadOutcome::Closed => {
                    self.flush_interim();
                    Step::Close
                }
            }
        };
        match (step, out_step) {
            (Step::Wait, Some(Step::Budget)) => Step::Budget,
            (s, _) => s,
        }
    }

    /// The client ended its side before the body was all in: the body can
    /// never complete and the connection closes, but a `100 Continue` that a
    /// short write left half-sent is finished first, so the client never
    /// reads a cut head (found by the fuzzer). Best effort: it stops at the
    /// first write that takes nothing; each turn of the loop sends a byte
    /// at least, so it ends within the buffer's length.
    fn flush_interim(&mut self) {
        if self.cur.cgi.is_some() {
            return; // a script's answer: cut short like any the client left
        }
        while let Some(out) = self.out.as_mut().filter(|b| !b.is_empty()) {
            match self
                .io
                .writev(&[std::io::IoSlice::new(out.readable())], false)
            {
                Ok(n) if n > 0 => out.consume(n),
                _ => break,
            }
        }
    }

    /// Pass a CGI's output on; the request body (if any) is all in. The
    /// socket is still read (into the input buffer, kept for the next
    /// request) so that a client who leaves is noticed and its script
    /// killed, as nginx does for an upstream.
    pub(super) fn step_cgi(&mut self, env: &mut Env<'_>, reads: &mut u8, writes: &mut u8) -> Step {
        let out = self.pump_output(env, writes).unwrap_or(Step::Wait);
        if !matches!(out, Step::Wait | Step::Budget) || self.state != State::Cgi {
            return out;
        }
        let room = self.inbuf.as_ref().is_none_or(|b| !b.is_full());
        if !room {
            return out;
        }
        match self.read_in(&mut env.shared.pool, reads) {
            ReadOutcome::Closed => Step::Close,
            ReadOutcome::Got => Step::Continue,
            ReadOutcome::Budget => Step::Budget,
            ReadOutcome::Wait => {
                self.drop_empty_inbuf(&mut env.shared.pool);
                out
            }
        }
    }

    /// Whether the sink cannot take bytes until its pipe drains.
    fn sink_blocked(&self) -> bool {
        let stdin_pipe = self
            .cur
            .inbound
            .as_ref()
            .is_some_and(|i| matches!(i.sink, Sink::CgiStdin(Some(_))));
        stdin_pipe && self.cur.cgi.as_ref().is_some_and(|c| !c.stdin_ready)
    }

    /// Feed what the input buffer holds into the sink. `Some(step)` when the
    /// body completed or failed (the state changed), `None` to read more.
    fn feed_buffered(&mut self, env: &mut Env<'_>) -> Option<Step> {
        while !self.sink_blocked() {
            let (Some(buf), Some(inbound)) = (self.inbuf.as_mut(), self.cur.inbound.as_mut())
            else {
                break;
            };
            let (used, feed) = inbound.feed(buf.readable());
            buf.consume(used);
            match feed {
                Feed::Done => return Some(self.body_done(env)),
                Feed::Fail(status) => {
                    self.reply_error(env, status.status());
                    return Some(Step::Continue);
                }
                Feed::Blocked => {
                    if let Some(c) = self.cur.cgi.as_mut() {
                        c.stdin_ready = false;
                    }
                }
                Feed::NeedMore if buf.is_empty() => break,
                // The other half of a wrapped ring: go round once more.
                Feed::NeedMore => {}
            }
        }
        // A Content-Length of 0 (or a body that ended exactly here).
        if self.cur.inbound.as_ref().is_some_and(|i| i.is_complete()) {
            return Some(self.body_done(env));
        }
        self.drop_empty_inbuf(&mut env.shared.pool);
        None
    }

    /// A plain upload with nothing buffered goes socket → pipe → file.
    fn splice_ready(&self, env: &Env<'_>) -> bool {
        env.shared.splice
            && self.inbuf.as_ref().is_none_or(|b| b.is_empty())
            && self.io.can_splice()
            && self.cur.inbound.as_ref().is_some_and(|i| {
                i.remaining().is_some_and(|n| n > 0)
                    && matches!(&i.sink, Sink::Upload(u) if u.raw_file().is_some())
            })
    }

    /// One `splice` from the connection into a pipe, then from the pipe
    /// into the upload's file: the body never enters user space.
    fn splice_in(&mut self, env: &mut Env<'_>, reads: &mut u8) -> Step {
        if !self.readable {
            return Step::Wait;
        }
        if *reads == 0 {
            return Step::Budget;
        }
        *reads -= 1;
        if env.shared.splice_pipe.is_none() {
            match sys::pipe().and_then(|(r, w)| {
                r.set_nonblocking()?;
                w.set_nonblocking()?;
                Ok((r, w))
            }) {
                Ok(p) => env.shared.splice_pipe = Some(p),
                Err(_) => {
                    self.reply_error(env, 500);
                    return Step::Continue;
                }
            }
        }
        let (Some((pr, pw)), Some(inbound)) =
            (env.shared.splice_pipe.as_ref(), self.cur.inbound.as_mut())
        else {
            return Step::Close;
        };
        let want = usize::try_from(inbound.remaining().unwrap_or(0))
            .unwrap_or(usize::MAX)
            .min(SPLICE_CHUNK);
        let n = match self.io.splice_to(pw, want) {
            Ok(0) => return Step::Close, // the client went away mid-body
            Ok(n) => n,
            Err(e) => match classify(&e) {
                ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Step::Wait;
                }
                ErrorKind::Interrupted => return Step::Continue,
                _ => return Step::Close,
            },
        };
        // A short splice is no sign the socket is drained (TCP hands over
        // what one pass found): readiness is cleared only by EAGAIN.
        if let Err(status) = inbound.take_spliced(pr, n) {
            // Bytes of this body are still in the pipe: it must never carry
            // them into another connection's upload.
            env.shared.splice_pipe = None;
            self.reply_error(env, status.status());
            return Step::Continue;
        }
        self.deadline = env.now + ms(env.config.client_body_timeout);
        if inbound.is_complete() {
            return self.body_done(env);
        }
        Step::Continue
    }

    /// The whole body is in: finish the upload, or let the CGI run.
    fn body_done(&mut self, env: &mut Env<'_>) -> Step {
        let Some(inbound) = self.cur.inbound.take() else {
            return Step::Close;
        };
        let Some(x) = self.cur.exchange else {
            return Step::Close;
        };
        let decoded = inbound.decoded;
        match inbound.sink {
            Sink::Upload(sink) => {
                let info = self.info(env);
                let p = exchange::finish_upload(env, x, info, sink);
                self.cur.exchange = None;
                self.install(env, p);
            }
            // Dropping our end of the pipe is the script's EOF.
            Sink::CgiStdin(pipe) => {
                drop(pipe);
                self.state = State::Cgi;
            }
            Sink::Spool(file, mut plan) => {
                plan.set_content_length(decoded);
                let cgi = match file.rewind() {
                    Ok(()) => spawn(env, &plan, Stdin::File(&file)),
                    Err(_) => Err(NotStarted::Failed),
                };
                match cgi {
                    Ok(cgi) => {
                        self.cur.cgi = Some(Box::new(cgi));
                        self.state = State::Cgi;
                    }
                    Err(e) => self.reply_error(env, e.status()),
                }
            }
        }
        if self.state == State::Cgi {
            self.deadline = self.cur.cgi.as_ref().map_or(env.now, |c| c.deadline);
        }
        self.drop_empty_inbuf(&mut env.shared.pool);
        Step::Continue
    }

    /// Move output along: parse the CGI's header block, frame its body into
    /// the output buffer, write the output buffer, read more from the CGI.
    /// `None` when there is nothing to do at all (no CGI, nothing pending).
    fn pump_output(&mut self, env: &mut Env<'_>, writes: &mut u8) -> Option<Step> {
        let mut progressed = false;
        let mut budget_left_over = false;
        let mut cgi_reads = 1u8;
        loop {
            if self.cur.cgi.is_some() {
                if let Some(step) = self.cgi_frame(env) {
                    return Some(step);
                }
                if self.cgi_finished() {
                    return Some(self.finish_exchange(env));
                }
            }
            let pending = self.out.as_ref().is_some_and(|b| !b.is_empty());
            if pending && self.writable {
                if *writes == 0 {
                    budget_left_over = true;
                } else {
                    *writes -= 1;
                    match self.write_out(env) {
                        WriteOutcome::Closed => return Some(Step::Close),
                        WriteOutcome::Partial => {
                            self.deadline = env.now + ms(env.config.send_timeout);
                            self.clamp_deadline_to_cgi();
                        }
                        // A file body is only ever sent in `Send`, never
                        // beside a request body or CGI output.
                        WriteOutcome::Deferred(_) => {
                            debug_assert!(false, "a file body beside CGI output");
                            return Some(Step::Close);
                        }
                        WriteOutcome::Done => {
                            // Nothing left to send: the clock that runs is
                            // the body's (while it comes) or the script's.
                            let alive = self.cur.cgi.as_ref().filter(|c| !c.eof);
                            self.deadline = match alive {
                                _ if self.state == State::Body => {
                                    env.now + ms(env.config.client_body_timeout)
                                }
                                Some(c) => c.deadline,
                                None => env.now + ms(env.config.send_timeout),
                            };
                            self.clamp_deadline_to_cgi();
                        }
                    }
                    progressed = true;
                    continue;
                }
            }
            let Some(cgi) = self.cur.cgi.as_mut() else {
                break;
            };
            let room = cgi.buf.as_ref().is_none_or(|b| !b.is_full());
            if cgi.eof || !cgi.stdout_ready || !room {
                break;
            }
            if cgi_reads == 0 {
                budget_left_over = true;
                break;
            }
            cgi_reads -= 1;
            match cgi.read_output(&mut env.shared.pool) {
                Ok(true) => progressed = true,
                Ok(false) => break,
                Err(_) => {
                    cgi.eof = true;
                    progressed = true;
                }
            }
        }
        if budget_left_over {
            Some(Step::Budget)
        } else if progressed || self.cur.cgi.is_some() {
            Some(Step::Wait)
        } else {
            None
        }
    }

    /// Parse the CGI's header block once it is complete, and frame buffered
    /// body bytes into the output buffer. `Some(step)` when the exchange
    /// changed course (502).
    fn cgi_frame(&mut self, env: &mut Env<'_>) -> Option<Step> {
        let x = self.cur.exchange?;
        let cgi = self.cur.cgi.as_mut()?;
        if cgi.framing == OutFraming::Pending {
            let buf = cgi.buf.as_mut();
            let outcome = match buf {
                Some(b) if !b.is_empty() => {
                    b.make_contiguous();
                    match parse_cgi_head(b.readable()) {
                        Ok(Some((head, used))) => {
                            let (framing, close) = write_cgi_head(env, x, &head, cgi.location);
                            Some(Ok((framing, close, used, head.status)))
                        }
                        Ok(None) if b.is_full() || cgi.eof => Some(Err(())),
                        Ok(None) => None,
                        Err(_) => Some(Err(())),
                    }
                }
                _ if cgi.eof => Some(Err(())),
                _ => None,
            };
            match outcome {
                None => return None,
                // RFC 3875 §6: no valid header block → the gateway failed.
                Some(Err(())) => {
                    self.reply_error(env, 502);
                    return Some(Step::Continue);
                }
                Some(Ok((framing, close, used, status))) => {
                    if let Some(b) = cgi.buf.as_mut() {
                        b.consume(used);
                    }
                    cgi.framing = framing;
                    self.cur.ending.close |= close;
                    let out = self.out.get_or_insert_with(|| env.shared.pool.get());
                    out.push(&env.shared.heads.scratch);
                    self.count_head(Some(status), env.shared.heads.scratch.len());
                }
            }
        }
        self.frame_cgi_body(env);
        None
    }

    /// Copy buffered CGI body bytes into the output buffer, framed.
    fn frame_cgi_body(&mut self, env: &mut Env<'_>) {
        let Some(cgi) = self.cur.cgi.as_mut() else {
            return;
        };
        while let Some(src) = cgi.buf.as_mut().filter(|b| !b.is_empty()) {
            let out = self.out.get_or_insert_with(|| env.shared.pool.get());
            let data = src.readable();
            let n = match cgi.framing {
                OutFraming::Pending => return,
                OutFraming::Drop => data.len(),
                OutFraming::Close => out.push(data),
                OutFraming::Length(left) => {
                    // Bytes past the declared length are dropped.
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    let pushed = out.push(data.get(..take).unwrap_or(&[]));
                    cgi.framing = OutFraming::Length(left - pushed as u64);
                    if pushed == take { data.len() } else { pushed }
                }
                OutFraming::Chunked => {
                    let room = out.free().saturating_sub(CHUNK_FRAME);
                    let take = room.min(data.len());
                    if take == 0 {
                        break;
                    }
                    let mut line = arrayvec::ArrayString::<20>::new();
                    let _ = std::fmt::Write::write_fmt(&mut line, format_args!("{take:x}\r\n"));
                    out.push(line.as_bytes());
                    out.push(data.get(..take).unwrap_or(&[]));
                    out.push(b"\r\n");
                    take
                }
            };
            if n == 0 {
                break;
            }
            src.consume(n);
        }
        if cgi.eof && cgi.buf.as_ref().is_none_or(|b| b.is_empty()) {
            if let Some(b) = cgi.buf.take() {
                env.shared.pool.put(b);
            }
            match cgi.framing {
                OutFraming::Chunked => {
                    let out = self.out.get_or_insert_with(|| env.shared.pool.get());
                    if out.free() >= 5 {
                        out.push(b"0\r\n\r\n");
                        cgi.framing = OutFraming::Drop;
                    }
                }
                // The script said more than it sent: the only honest end is
                // to close (the client sees a short body).
                OutFraming::Length(left) if left > 0 => {
                    self.cur.ending.close = true;
                    cgi.framing = OutFraming::Drop;
                }
                OutFraming::Close => {
                    self.cur.ending.close = true;
                    cgi.framing = OutFraming::Drop;
                }
                _ => {}
            }
        }
    }

    /// The script's output has all been framed and written.
    fn cgi_finished(&self) -> bool {
        let Some(cgi) = self.cur.cgi.as_ref() else {
            return false;
        };
        let done_framing = matches!(cgi.framing, OutFraming::Drop | OutFraming::Length(0));
        cgi.eof
            && done_framing
            && cgi.buf.as_ref().is_none_or(|b| b.is_empty())
            && self.out.as_ref().is_none_or(|b| b.is_empty())
            && self.state == State::Cgi
    }
}
