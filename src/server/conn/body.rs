//! The `Body` state: a request body streams from the socket through the
//! connection's ring buffer (or, for a plain upload, through a pipe with
//! `splice`, never entering user space) into its sink, while a CGI's output
//! already flows to the client (`cgi`). Each turn still does at most one
//! socket read, one socket write and one pipe read.

use crate::sys::{self, ErrorKind, classify};

use super::super::cgi::Stdin;
use super::super::inbound::{Feed, Sink};
use super::super::transport::Transport;
use super::cgi::{NotStarted, spawn};
use super::exchange;
use super::{Conn, Env, ReadOutcome, State, Step, ms};

/// Most bytes one `splice` moves: one pipe's worth (64 KiB by default).
const SPLICE_CHUNK: usize = 64 * 1024;

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
        // The Body state always has both (`begin` sets them together).
        let (Some(inbound), Some(x)) = (self.cur.inbound.take(), self.cur.exchange) else {
            debug_assert!(false, "a body completed outside an exchange");
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
}
