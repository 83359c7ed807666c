//! `status on;`: nginx's `stub_status` page, from a snapshot of the
//! server's counters that the loop hands over in `Ctx::stats`.

use std::borrow::Cow;
use std::fmt::Write;

use super::{Body, Reply};
use crate::config::Location;

/// The server's counters, as `stub_status` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections handled (accepted and not dropped for lack of room).
    pub handled: u64,
    /// Request heads parsed.
    pub requests: u64,
    /// Open client connections.
    pub active: u64,
    /// Connections receiving a request head or body.
    pub reading: u64,
    /// Connections sending an answer (or running the CGI that makes it).
    pub writing: u64,
    /// Idle keep-alive connections (and new ones that sent nothing yet).
    pub waiting: u64,
    /// Times a connection stepped aside because the next pages of its file
    /// were on disk (one per wait, however many tries it took).
    pub deferred: u64,
    /// Requests refused by `limit_conn`, over all workers.
    pub limit_conn_rejected: u64,
    /// Requests refused by `limit_req`, over all workers.
    pub limit_req_rejected: u64,
    /// Requests `limit_req` delayed (within the burst), over all workers.
    pub limit_req_delayed: u64,
}

/// nginx's `stub_status` text, trailing spaces included, then lines of
/// localserver's own (deferred reads; `limit_conn`/`limit_req` refusals
/// and `limit_req` delays). They come last because the tools that read this page
/// (collectd, Telegraf, the Prometheus exporter) take nginx's four lines
/// by position and read no further.
pub fn text(s: &Stats) -> String {
    let mut t = String::with_capacity(180);
    // Writing to a String cannot fail.
    let _ = write!(
        t,
        "Active connections: {} \nserver accepts handled requests\n {} {} {} \n\
         Reading: {} Writing: {} Waiting: {} \nDeferred reads: {} \n\
         Limited: conn {} req {} delayed {} \n",
        s.active,
        s.accepted,
        s.handled,
        s.requests,
        s.reading,
        s.writing,
        s.waiting,
        s.deferred,
        s.limit_conn_rejected,
        s.limit_req_rejected,
        s.limit_req_delayed,
    );
    t
}

/// 200 `text/plain` with the status text, and the route's `add_header`s.
pub(super) fn reply<'c>(stats: &Stats, loc: &'c Location) -> Reply<'c> {
    let mut r = Reply::status(200);
    r.content_type = Some(Cow::Borrowed("text/plain"));
    r.headers = &loc.add_headers;
    r.body = Body::Bytes(text(stats).into_bytes());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_nginx_stub_status() {
        let s = Stats {
            accepted: 10,
            handled: 10,
            requests: 25,
            active: 3,
            reading: 0,
            writing: 1,
            waiting: 2,
            deferred: 7,
            limit_conn_rejected: 4,
            limit_req_rejected: 5,
            limit_req_delayed: 6,
        };
        assert_eq!(
            text(&s),
            "Active connections: 3 \nserver accepts handled requests\n 10 10 25 \n\
             Reading: 0 Writing: 1 Waiting: 2 \nDeferred reads: 7 \n\
             Limited: conn 4 req 5 delayed 6 \n"
        );
    }
}
