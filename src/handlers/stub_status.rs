//! `status on|prometheus;`: nginx's `stub_status` page, or the same
//! counters and a few more in Prometheus text format, from a snapshot of
//! the server's counters (summed over the workers) that the loop lends in
//! `Ctx::stats`.

use std::borrow::Cow;
use std::fmt::Write;

use super::{Body, Reply};
use crate::config::{Location, StatusPage};

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
    /// Running CGI processes.
    pub cgi: u64,
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

/// One metric of the Prometheus page: name, type, help, and its samples
/// (label set, value).
type Metric<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, u64)]);

/// The counters in the Prometheus text exposition format (version 0.0.4),
/// each with its `# HELP` and `# TYPE`. The names of nginx's figures are
/// those of nginx-prometheus-exporter with `localserver_` for `nginx_`,
/// except that every counter ends in `_total`, as Prometheus's own naming
/// rules ask (and its client library's parser reads the exporter's
/// `nginx_connections_accepted` as `..._accepted_total` anyway).
pub fn prometheus(s: &Stats) -> String {
    let metrics: [Metric<'_>; 11] = [
        (
            "localserver_connections_active",
            "gauge",
            "Open client connections.",
            &[("", s.active)],
        ),
        (
            "localserver_connections_reading",
            "gauge",
            "Connections receiving a request head or body.",
            &[("", s.reading)],
        ),
        (
            "localserver_connections_writing",
            "gauge",
            "Connections sending an answer or running the CGI that makes it.",
            &[("", s.writing)],
        ),
        (
            "localserver_connections_waiting",
            "gauge",
            "Idle keep-alive connections, and new ones that sent nothing yet.",
            &[("", s.waiting)],
        ),
        (
            "localserver_connections_accepted_total",
            "counter",
            "Client connections accepted.",
            &[("", s.accepted)],
        ),
        (
            "localserver_connections_handled_total",
            "counter",
            "Client connections handled.",
            &[("", s.handled)],
        ),
        (
            "localserver_http_requests_total",
            "counter",
            "Requests received.",
            &[("", s.requests)],
        ),
        (
            "localserver_deferred_reads_total",
            "counter",
            "Times an answer waited for its file's pages to be read from disk.",
            &[("", s.deferred)],
        ),
        (
            "localserver_limit_rejected_total",
            "counter",
            "Requests refused by limit_conn or limit_req.",
            &[
                ("{limit=\"conn\"}", s.limit_conn_rejected),
                ("{limit=\"req\"}", s.limit_req_rejected),
            ],
        ),
        (
            "localserver_limit_req_delayed_total",
            "counter",
            "Requests limit_req delayed within its burst.",
            &[("", s.limit_req_delayed)],
        ),
        (
            "localserver_cgi_processes",
            "gauge",
            "Running CGI processes.",
            &[("", s.cgi)],
        ),
    ];
    let mut t = String::with_capacity(1600);
    for (name, kind, help, samples) in metrics {
        // Writing to a String cannot fail.
        let _ = write!(t, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for (labels, v) in samples {
            let _ = writeln!(t, "{name}{labels} {v}");
        }
    }
    t
}

/// 200 with the route's page (`text/plain` status text, or the Prometheus
/// text format), and the route's `add_header`s.
pub(super) fn reply<'c>(stats: &Stats, loc: &'c Location) -> Reply<'c> {
    let mut r = Reply::status(200);
    let (kind, body) = if loc.status == StatusPage::Prometheus {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            prometheus(stats),
        )
    } else {
        ("text/plain", text(stats))
    };
    r.content_type = Some(Cow::Borrowed(kind));
    r.headers = &loc.add_headers;
    r.body = Body::Bytes(body.into_bytes());
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
            cgi: 2,
        };
        assert_eq!(
            text(&s),
            "Active connections: 3 \nserver accepts handled requests\n 10 10 25 \n\
             Reading: 0 Writing: 1 Waiting: 2 \nDeferred reads: 7 \n\
             Limited: conn 4 req 5 delayed 6 \n"
        );
    }

    #[test]
    fn the_prometheus_page_has_help_type_and_every_figure() {
        let s = Stats {
            accepted: 10,
            handled: 9,
            requests: 25,
            active: 3,
            reading: 1,
            writing: 1,
            waiting: 1,
            deferred: 7,
            limit_conn_rejected: 4,
            limit_req_rejected: 5,
            limit_req_delayed: 6,
            cgi: 2,
        };
        let page = prometheus(&s);
        for want in [
            "# HELP localserver_connections_active Open client connections.\n\
             # TYPE localserver_connections_active gauge\n\
             localserver_connections_active 3\n",
            "# TYPE localserver_connections_accepted_total counter\n\
             localserver_connections_accepted_total 10\n",
            "localserver_connections_handled_total 9\n",
            "# TYPE localserver_http_requests_total counter\nlocalserver_http_requests_total 25\n",
            "localserver_connections_reading 1\n",
            "localserver_deferred_reads_total 7\n",
            "localserver_limit_rejected_total{limit=\"conn\"} 4\n\
             localserver_limit_rejected_total{limit=\"req\"} 5\n",
            "localserver_limit_req_delayed_total 6\n",
            "# TYPE localserver_cgi_processes gauge\nlocalserver_cgi_processes 2\n",
        ] {
            assert!(page.contains(want), "{want:?} not in\n{page}");
        }
        // Every metric has one HELP and one TYPE, and every line ends.
        assert_eq!(page.matches("# HELP ").count(), 11);
        assert_eq!(page.matches("# TYPE ").count(), 11);
        assert!(page.ends_with('\n'));
    }
}
