//! The access log: one line per response in nginx's `combined` format,
//!
//! ```text
//! $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
//! ```
//!
//! byte for byte, values escaped as `ngx_http_log_escape` does (`"`, `\`,
//! bytes below 0x20 and from 0x7f as `\xHH`), `-` for a value that is
//! absent or empty.
//!
//! A line is built in two halves. At head time, while the request's bytes
//! are still in the connection's input buffer, the few bounded fields the
//! line needs (user, request line, referer, user agent) are escaped into a
//! `Pending` taken from a pool; the connection keeps it until the exchange
//! ends, then the address, time, status and byte count are added and the
//! line goes into its log's buffer. An idle connection holds no `Pending`,
//! and a server without an access log never makes one.
//!
//! Each distinct target has one buffer of `BUF_CAP` bytes, written when a
//! line would not fit, by the loop at most `FLUSH_MS` after a line was
//! added, before the logs are reopened (`SIGUSR1`) and at stop. A regular
//! file append does not block; standard output or error that is a pipe or
//! a terminal is written through a non-blocking description of its own, and
//! when it is full lines wait in the buffer, then are dropped and counted
//! in the error log, so the loop never waits for a reader.

use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

use std::sync::Arc;

use crate::config::log_format::{Escape, Item, LogFormat, Var};
use crate::config::{AccessLog, Config, LogTarget};
use crate::http::Request;
use crate::http::bytes::within;
use crate::http::date::format_log_time;

use super::log::Log;
use super::timer::Millis;

/// Bytes a log's buffer holds before it is written.
pub const BUF_CAP: usize = 64 * 1024;
/// A line is written at most this long after it was added.
pub const FLUSH_MS: Millis = 1_000;
/// Spare `Pending`s kept for reuse (beyond it they are freed).
const SPARE_KEEP: usize = 1024;
/// A spare whose text grew past this is freed rather than kept.
const SPARE_TEXT_MAX: usize = 8 * 1024;
/// Bytes a line may take beyond its escaped fields: address (45), time
/// (26), status, a `u64` byte count, dashes, quotes and separators.
const LINE_OVERHEAD: usize = 128;

/// nginx's escape set (`ngx_http_log_escape`): control bytes, `"`, `\`,
/// DEL and every byte from 0x80.
const fn needs_escape(b: u8) -> bool {
    b < 0x20 || b >= 0x7f || b == b'"' || b == b'\\'
}

const ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = needs_escape(i as u8);
        i += 1;
    }
    t
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Append `v` to `out` escaped, or `-` when it is empty.
pub fn push_escaped(out: &mut Vec<u8>, v: &[u8]) {
    if v.is_empty() {
        out.push(b'-');
        return;
    }
    let mut rest = v;
    while let Some(i) = rest.iter().position(|&b| ESCAPE[usize::from(b)]) {
        let (plain, tail) = rest.split_at(i);
        out.extend_from_slice(plain);
        let Some((&b, tail)) = tail.split_first() else {
            break;
        };
        out.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]);
        rest = tail;
    }
    out.extend_from_slice(rest);
}

/// The user name of an `Authorization: Basic` value (nginx's
/// `$remote_user`, taken whether or not the route checks it), escaped
/// into `out`; `-` when there is none, it does not decode, or it is empty.
fn push_basic_user(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let start = out.len();
    let decoded = decode_basic_user(value.unwrap_or(&[]), |b| push_escaped_byte(out, b));
    if !decoded || out.len() == start {
        out.truncate(start);
        out.push(b'-');
    }
}

/// Decode `Basic <base64 of user:password>`, handing each byte of the user
/// to `emit`; `false` unless it decodes and holds a `:` (as nginx requires).
fn decode_basic_user(v: &[u8], mut emit: impl FnMut(u8)) -> bool {
    let Some(scheme) = v.get(..6) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return false;
    }
    let b64 = v.get(6..).unwrap_or(&[]);
    let b64 = &b64[b64.iter().take_while(|&&c| c == b' ').count()..];
    // Trailing padding (and only that) may be left off, as in nginx.
    let b64 = b64
        .iter()
        .rposition(|&c| c != b'=')
        .map_or(&b64[..0], |i| &b64[..=i]);
    if b64.is_empty() || b64.len() % 4 == 1 {
        return false;
    }
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in b64 {
        let Some(d) = b64_digit(c) else {
            return false;
        };
        acc = (acc << 6) | u32::from(d);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = (acc >> bits) as u8;
            acc &= (1 << bits) - 1;
            if byte == b':' {
                return true;
            }
            emit(byte);
        }
    }
    false
}

fn push_escaped_byte(out: &mut Vec<u8>, b: u8) {
    if ESCAPE[usize::from(b)] {
        out.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]);
    } else {
        out.push(b);
    }
}

fn b64_digit(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

/// What a line knows of its request and connection besides the head.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meta<'a> {
    /// `$server_name`: the answering server's first name.
    pub server_name: &'a str,
    /// `$server_port`.
    pub port: u16,
    /// Bytes of the request head (for `$request_length`).
    pub head_len: usize,
    /// When the request's first byte was read (for `$request_time`).
    pub began: Millis,
    /// `$connection`: the connection's serial number.
    pub serial: u64,
    /// `$connection_requests`: this request's rank on its connection.
    pub nth: u32,
    /// `$remote_addr` when it is not the connection's (a trusted proxy
    /// named the client).
    pub client: Option<IpAddr>,
}

/// What is kept of a request from its head to the end of its exchange.
#[derive(Debug, Default)]
pub struct Pending {
    /// Index of the log the line goes to.
    log: usize,
    /// The response's status (0 until a reply is decided).
    pub status: u16,
    /// Head bytes queued for the client (a `100 Continue` included).
    pub head: u64,
    /// Bytes written to the client during this exchange.
    pub sent: u64,
    /// The escaped user, request line, referer and user agent, one after
    /// the other, ending at these offsets.
    user_end: usize,
    request_end: usize,
    referer_end: usize,
    text: Vec<u8>,
    /// A `log_format` (`None`: `combined`, which uses the three ends above).
    format: Option<Arc<LogFormat>>,
    /// With a format: where each value kept from the head ends in `text`,
    /// in the order of the format's head variables, then of its
    /// `$sent_http_*` ones once the answer's head is known.
    ends: Vec<u32>,
    /// The answer's headers are in `ends` (`$sent_http_*`).
    noted: bool,
    began: Millis,
    serial: u64,
    nth: u32,
    request_length: u64,
    /// The client a trusted proxy named (else the connection's address).
    client: Option<IpAddr>,
}

impl Pending {
    /// `$body_bytes_sent`: what was sent beyond the head.
    pub fn body_bytes(&self) -> u64 {
        self.sent.saturating_sub(self.head)
    }
}

/// One access log target and its buffer.
struct Sink {
    target: LogTarget,
    file: Option<std::fs::File>,
    buf: Vec<u8>,
    /// Lines lost since the last report (output full, or a write error).
    dropped: u64,
    /// The last write error since the last report.
    error: Option<io::Error>,
}

/// Every access log of the configuration. A server's log is found by its
/// target, so a connection still on the configuration of before a reload
/// (`SIGHUP`) logs where that configuration said; a target a reload drops
/// stays open (its lines in flight still land), one it adds is opened.
#[derive(Default)]
pub struct AccessLogs {
    sinks: Vec<Sink>,
    /// Some server of the current configuration logs.
    on: bool,
    /// Boxed because a connection holds one as an `Option<Box<_>>` (8
    /// bytes in every `Conn`, logging or not); pooling the boxes keeps the
    /// allocation out of the request path.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Pending>>,
    /// `$time_local` and `$time_iso8601` of `time_secs`.
    time_secs: Option<i64>,
    time_text: [u8; 26],
    iso_text: [u8; 25],
    /// When the buffers are next written (`None` while they are empty).
    flush_at: Option<Millis>,
}

impl AccessLogs {
    /// Open the access log of every server (one buffer per distinct
    /// target). A file that cannot be opened is reported and its lines
    /// are dropped until a reopen succeeds.
    pub fn open(config: &Config, log: &Log) -> AccessLogs {
        let mut logs = AccessLogs::default();
        logs.reconfigure(config, log);
        logs
    }

    /// Open the targets of `config` not open yet (at start and on reload).
    pub fn reconfigure(&mut self, config: &Config, log: &Log) {
        self.on = false;
        let logs = config.servers.iter().flat_map(|s| {
            std::iter::once(&s.access_log).chain(s.locations.iter().map(|l| &l.access_log))
        });
        for access in logs {
            let target = &access.target;
            if *target == LogTarget::Off {
                continue;
            }
            self.on = true;
            if self.find(target).is_some() {
                continue;
            }
            let file = match open_target(target) {
                Ok(f) => Some(f),
                Err(e) => {
                    log.error(format_args!(
                        "could not open access log {} ({e})",
                        describe(target)
                    ));
                    None
                }
            };
            self.sinks.push(Sink {
                target: target.clone(),
                file,
                buf: Vec::with_capacity(BUF_CAP),
                dropped: 0,
                error: None,
            });
        }
    }

    /// Whether any server logs at all (when not, nothing else here runs).
    #[inline]
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// The sink of `target` (compared as bytes: cheaper than `Path`'s
    /// component-wise equality, and the paths come from one parser).
    fn find(&self, target: &LogTarget) -> Option<usize> {
        self.sinks.iter().position(|s| match (&s.target, target) {
            (LogTarget::File(a), LogTarget::File(b)) => a.as_os_str() == b.as_os_str(),
            (a, b) => a == b,
        })
    }

    /// Start the line of a parsed request whose route's `access_log` is
    /// `log`; `None` when it is `off`.
    pub fn begin(
        &mut self,
        log: &AccessLog,
        req: &Request<'_>,
        meta: &Meta<'_>,
    ) -> Option<Box<Pending>> {
        let mut p = self.take(&log.target)?;
        p.client = meta.client;
        if let Some(format) = &log.format {
            p.began = meta.began;
            p.serial = meta.serial;
            p.nth = meta.nth;
            p.request_length =
                (meta.head_len as u64).saturating_add(req.content_length.unwrap_or(0));
            keep_head_values(&mut p, format, Head::Parsed(req), meta);
            p.format = Some(Arc::clone(format));
            return Some(p);
        }
        push_basic_user(&mut p.text, req.header("authorization"));
        p.user_end = p.text.len();
        push_escaped(&mut p.text, req.request_line());
        p.request_end = p.text.len();
        push_escaped(&mut p.text, req.header("referer").unwrap_or(&[]));
        p.referer_end = p.text.len();
        push_escaped(&mut p.text, req.header("user-agent").unwrap_or(&[]));
        Some(p)
    }

    /// Start the line of a head that failed before a request existed:
    /// nginx logs as `$request` the bytes it got, from the first that is
    /// not an empty line up to a line end; the fields are unknown (`-`).
    pub fn begin_raw(
        &mut self,
        log: &AccessLog,
        bytes: &[u8],
        meta: &Meta<'_>,
    ) -> Option<Box<Pending>> {
        let mut p = self.take(&log.target)?;
        let start = bytes
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(bytes.len());
        let rest = bytes.get(start..).unwrap_or(&[]);
        let end = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
        let line = rest.get(..end).unwrap_or(&[]);
        if let Some(format) = &log.format {
            p.began = meta.began;
            p.serial = meta.serial;
            p.nth = meta.nth;
            p.request_length = bytes.len() as u64;
            keep_head_values(&mut p, format, Head::Raw(line), meta);
            p.format = Some(Arc::clone(format));
            return Some(p);
        }
        p.text.push(b'-');
        p.user_end = p.text.len();
        push_escaped(&mut p.text, line);
        p.request_end = p.text.len();
        p.text.push(b'-');
        p.referer_end = p.text.len();
        p.text.push(b'-');
        Some(p)
    }

    fn take(&mut self, target: &LogTarget) -> Option<Box<Pending>> {
        if *target == LogTarget::Off {
            return None;
        }
        let log = self.find(target)?;
        let mut p = self.spare.pop().unwrap_or_default();
        p.log = log;
        p.status = 0;
        p.head = 0;
        p.sent = 0;
        p.text.clear();
        p.format = None;
        p.ends.clear();
        p.noted = false;
        p.began = 0;
        p.serial = 0;
        p.nth = 0;
        p.request_length = 0;
        p.client = None;
        Some(p)
    }

    /// The answer's head was queued: a format with `$sent_http_*` keeps
    /// their values from it (the first final head only).
    pub fn note_head(&self, p: &mut Pending, head: &[u8]) {
        let Some(format) = p.format.as_ref().filter(|f| f.wants_sent_headers()) else {
            return;
        };
        if p.noted {
            return;
        }
        p.noted = true;
        let format = Arc::clone(format);
        for item in &format.items {
            if let Item::Var(Var::SentHttp(name)) = item {
                push_value(&mut p.text, header_value(head, name), format.escape);
                p.ends.push(u32::try_from(p.text.len()).unwrap_or(u32::MAX));
            }
        }
    }

    /// Give back a `Pending` whose line will not be written.
    pub fn recycle(&mut self, p: Box<Pending>) {
        // One huge head (a long URI, a 414) must not pin its capacity.
        if self.spare.len() < SPARE_KEEP && p.text.capacity() <= SPARE_TEXT_MAX {
            self.spare.push(p);
        }
    }

    /// Complete the line of an exchange that ended and add it to its log.
    pub fn finish(&mut self, p: Box<Pending>, peer: IpAddr, unix_now: i64, now: Millis) {
        let peer = p.client.unwrap_or(peer);
        if self.time_secs != Some(unix_now) {
            let offset = crate::sys::utc_offset(unix_now);
            self.time_text = format_log_time(unix_now, offset);
            self.iso_text = crate::http::date::format_iso8601(unix_now, offset);
            self.time_secs = Some(unix_now);
        }
        if let Some(sink) = self.sinks.get_mut(p.log) {
            let want = p.text.len() + LINE_OVERHEAD;
            if !sink.buf.is_empty() && sink.buf.len() + want > BUF_CAP {
                sink.flush();
            }
            if !sink.buf.is_empty() && sink.buf.len() + want > BUF_CAP {
                // The reader is not keeping up: lose the line, not the loop.
                sink.dropped += 1;
            } else {
                match p.format.as_deref() {
                    Some(format) => {
                        let at = End {
                            peer,
                            now,
                            time_local: &self.time_text,
                            iso: &self.iso_text,
                        };
                        write_custom(&mut sink.buf, &p, format, &at);
                    }
                    None => write_line(&mut sink.buf, &p, peer, &self.time_text),
                }
                if self.flush_at.is_none() {
                    self.flush_at = Some(now + FLUSH_MS);
                }
            }
        }
        self.recycle(p);
    }

    /// When the loop must next call `tick`.
    pub fn next_flush(&self) -> Option<Millis> {
        self.flush_at
    }

    /// Write the buffers if their time has come, and report losses.
    pub fn tick(&mut self, now: Millis, log: &Log) {
        if self.flush_at.is_some_and(|t| t <= now) {
            self.flush_all(log);
            if self.sinks.iter().any(|s| !s.buf.is_empty()) {
                self.flush_at = Some(now + FLUSH_MS);
            }
        }
    }

    /// Write every buffer now (the loop's timer, a reopen, the stop).
    pub fn flush_all(&mut self, log: &Log) {
        for sink in &mut self.sinks {
            sink.flush();
            sink.report(log);
        }
        self.flush_at = None;
    }

    /// `SIGUSR1`: write what is buffered to the files as they are, then
    /// open each file log by its name again (logrotate has moved the old
    /// one). Standard output and error are kept. A file that cannot be
    /// opened keeps its old descriptor.
    pub fn reopen(&mut self, log: &Log) {
        self.flush_all(log);
        for sink in &mut self.sinks {
            if !matches!(sink.target, LogTarget::File(_)) {
                continue;
            }
            match open_target(&sink.target) {
                Ok(f) => sink.file = Some(f),
                Err(e) => log.error(format_args!(
                    "could not reopen access log {} ({e})",
                    describe(&sink.target)
                )),
            }
        }
    }
}

impl Sink {
    /// Write as much of the buffer as the target takes now.
    fn flush(&mut self) {
        let mut done = 0;
        while let Some(rest) = self.buf.get(done..).filter(|r| !r.is_empty()) {
            let Some(mut file) = self.file.as_ref() else {
                self.lose(done, None);
                return;
            };
            match file.write(rest) {
                Ok(0) => {
                    self.lose(done, Some(io::ErrorKind::WriteZero.into()));
                    return;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A full pipe: the rest waits for the next flush.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.lose(done, Some(e));
                    return;
                }
            }
        }
        self.buf.drain(..done);
    }

    /// Drop the buffer from `from` on, counting its lines.
    fn lose(&mut self, from: usize, error: Option<io::Error>) {
        let rest = self.buf.get(from..).unwrap_or(&[]);
        self.dropped += memchr::memchr_iter(b'\n', rest).count() as u64;
        self.buf.clear();
        if error.is_some() {
            self.error = error;
        }
    }

    fn report(&mut self, log: &Log) {
        if let Some(e) = self.error.take() {
            log.error(format_args!(
                "write() to access log {} failed ({e})",
                describe(&self.target)
            ));
        }
        if self.dropped > 0 {
            log.warn(format_args!(
                "{} access log lines to {} dropped",
                self.dropped,
                describe(&self.target)
            ));
            self.dropped = 0;
        }
    }
}

/// The whole line, from the halves kept in `p` and what the end added.
fn write_line(out: &mut Vec<u8>, p: &Pending, peer: IpAddr, time: &[u8; 26]) {
    let text = p.text.as_slice();
    let user = within(text, ..p.user_end);
    let request = within(text, p.user_end..p.request_end);
    let referer = within(text, p.request_end..p.referer_end);
    let agent = within(text, p.referer_end..);
    push_ip(out, peer);
    out.extend_from_slice(b" - ");
    out.extend_from_slice(user);
    out.extend_from_slice(b" [");
    out.extend_from_slice(time);
    out.extend_from_slice(b"] \"");
    out.extend_from_slice(request);
    out.extend_from_slice(b"\" ");
    push_u64(out, u64::from(p.status));
    out.push(b' ');
    push_u64(out, p.body_bytes());
    out.extend_from_slice(b" \"");
    out.extend_from_slice(referer);
    out.extend_from_slice(b"\" \"");
    out.extend_from_slice(agent);
    out.extend_from_slice(b"\"\n");
}

/// What a line has of its request's head.
#[derive(Clone, Copy)]
enum Head<'a, 'r> {
    Parsed(&'a Request<'r>),
    /// A head that did not parse: the bytes of its first line.
    Raw(&'a [u8]),
}

/// Keep, escaped, the values of `format`'s head variables (of a head that
/// did not parse, only `$request`, the lengths and the server's are known).
fn keep_head_values(p: &mut Pending, format: &LogFormat, head: Head<'_, '_>, meta: &Meta<'_>) {
    let req = match head {
        Head::Parsed(r) => Some(r),
        Head::Raw(_) => None,
    };
    let esc = format.escape;
    for item in &format.items {
        let Item::Var(v) = item else { continue };
        if !v.from_head() {
            continue;
        }
        let text = &mut p.text;
        match (v, req) {
            (Var::RemoteUser, Some(r)) if esc == Escape::Default => {
                push_basic_user(text, r.header("authorization"));
            }
            (Var::RemoteUser, Some(r)) => {
                // Raw bytes: `push_value` escapes them as the format says.
                let mut user = Vec::new();
                let auth = r.header("authorization").unwrap_or(&[]);
                if decode_basic_user(auth, |b| user.push(b)) {
                    push_value(text, &user, esc);
                } else {
                    push_value(text, &[], esc);
                }
            }
            (Var::Request, Some(r)) => push_value(text, r.request_line(), esc),
            (Var::Request, None) => match head {
                Head::Raw(line) => push_value(text, line, esc),
                Head::Parsed(_) => push_value(text, &[], esc),
            },
            (Var::RequestMethod, Some(r)) => push_value(text, r.method_raw, esc),
            (Var::Uri, Some(r)) => {
                let mut room = vec![0u8; r.path.len()];
                match crate::http::path::normalize(r.path, &mut room) {
                    Ok(path) => push_value(text, path.as_bytes(), esc),
                    Err(_) => push_value(text, r.path, esc),
                }
            }
            (Var::Args, Some(r)) => push_value(text, r.query.unwrap_or(&[]), esc),
            (Var::Http(name), Some(r)) => push_value(text, r.header(name).unwrap_or(&[]), esc),
            (Var::Host, Some(r)) => match r.host {
                Some(h) => push_value(text, &h.to_ascii_lowercase(), esc),
                None => push_value(text, meta.server_name.as_bytes(), esc),
            },
            (Var::ServerName, _) => push_value(text, meta.server_name.as_bytes(), esc),
            (Var::ServerPort, _) if meta.port != 0 => push_u64(text, u64::from(meta.port)),
            (Var::RequestLength, _) => push_u64(text, p.request_length),
            _ => push_value(text, &[], esc),
        }
        p.ends.push(u32::try_from(p.text.len()).unwrap_or(u32::MAX));
    }
}

/// Append a variable's value escaped as `esc` says (an empty value is `-`,
/// or nothing in JSON).
fn push_value(out: &mut Vec<u8>, v: &[u8], esc: Escape) {
    match esc {
        Escape::Default => push_escaped(out, v),
        Escape::None if v.is_empty() => out.push(b'-'),
        Escape::None => out.extend_from_slice(v),
        Escape::Json => push_json(out, v),
    }
}

/// JSON string content: `"` and `\` escaped, the usual control escapes,
/// other control bytes and every byte that is not part of valid UTF-8 as
/// `\u00HH`, so any value makes a line a JSON parser reads.
fn push_json(out: &mut Vec<u8>, v: &[u8]) {
    // Most values need nothing: one scan, one copy.
    if !v.iter().any(|&b| ESCAPE[usize::from(b)]) {
        out.extend_from_slice(v);
        return;
    }
    for chunk in v.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                0..0x20 | 0x7f => push_u00(out, b),
                _ => out.push(b),
            }
        }
        for &b in chunk.invalid() {
            push_u00(out, b);
        }
    }
}

fn push_u00(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(b"\\u00");
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 0xf)]);
}

/// The value of header `name` (lowercase) in a response head, or empty.
fn header_value<'h>(head: &'h [u8], name: &str) -> &'h [u8] {
    let mut lines = head.split(|&b| b == b'\n');
    lines.next(); // the status line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(colon) = memchr::memchr(b':', line) {
            let (n, rest) = line.split_at(colon);
            if n.eq_ignore_ascii_case(name.as_bytes()) {
                return crate::http::bytes::trim_ows(rest.get(1..).unwrap_or(&[]));
            }
        }
    }
    &[]
}

/// What a line's end knows.
struct End<'a> {
    peer: IpAddr,
    now: Millis,
    time_local: &'a [u8; 26],
    iso: &'a [u8; 25],
}

/// A line in a `log_format`: literals as they are, head values as kept,
/// the rest rendered now.
fn write_custom(out: &mut Vec<u8>, p: &Pending, format: &LogFormat, at: &End<'_>) {
    let text = p.text.as_slice();
    let mut kept = 0usize;
    let mut sent = format.head_vars;
    let segment = |k: usize| -> Option<&[u8]> {
        let start = if k == 0 {
            0
        } else {
            *p.ends.get(k - 1)? as usize
        };
        let end = *p.ends.get(k)? as usize;
        text.get(start..end)
    };
    for item in &format.items {
        match item {
            Item::Lit(b) => out.extend_from_slice(b),
            Item::Var(v) if v.from_head() => {
                out.extend_from_slice(segment(kept).unwrap_or(b"-"));
                kept += 1;
            }
            Item::Var(Var::SentHttp(_)) => {
                match segment(sent).filter(|_| p.noted) {
                    Some(s) => out.extend_from_slice(s),
                    None => push_value(out, &[], format.escape),
                }
                sent += 1;
            }
            Item::Var(v) => write_end_var(out, v, p, at),
        }
    }
    out.push(b'\n');
}

/// A variable known only when the answer ends.
fn write_end_var(out: &mut Vec<u8>, v: &Var, p: &Pending, at: &End<'_>) {
    match v {
        Var::RemoteAddr => push_ip(out, at.peer),
        Var::TimeLocal => out.extend_from_slice(at.time_local),
        Var::TimeIso8601 => out.extend_from_slice(at.iso),
        Var::Msec => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            push_millis(out, u64::try_from(ms).unwrap_or(u64::MAX));
        }
        Var::Status => push_u64(out, u64::from(p.status)),
        Var::BodyBytesSent => push_u64(out, p.body_bytes()),
        Var::BytesSent => push_u64(out, p.sent),
        Var::RequestTime => push_millis(out, at.now.saturating_sub(p.began)),
        Var::Connection => push_u64(out, p.serial),
        Var::ConnectionRequests => push_u64(out, u64::from(p.nth)),
        Var::Pid => push_u64(out, u64::from(std::process::id())),
        // Head variables and `$sent_http_*` are written by the caller.
        _ => out.push(b'-'),
    }
}

/// Milliseconds as seconds with three decimals, as nginx prints
/// `$request_time` and `$msec` (`0.003`, `1700000000.123`).
fn push_millis(out: &mut Vec<u8>, ms: u64) {
    push_u64(out, ms / 1000);
    out.push(b'.');
    let frac = ms % 1000;
    out.push(b'0' + (frac / 100) as u8);
    out.push(b'0' + (frac / 10 % 10) as u8);
    out.push(b'0' + (frac % 10) as u8);
}

/// The address as nginx prints it; IPv4 by hand, as `Display` goes
/// through the formatting machinery and cost a tenth of a request.
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_u64(out, u64::from(octet));
            }
        }
        // Writing to a Vec cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or(&[]));
}

/// Open a target for appending. Standard output or error that is a pipe,
/// FIFO or terminal gets a non-blocking description of its own (opened
/// through `/proc/self/fd`), so the loop never waits on it and the flags of
/// the description shared with the parent stay as they were; a socket,
/// which cannot be reopened so, is set non-blocking itself.
fn open_target(target: &LogTarget) -> io::Result<std::fs::File> {
    let (fd, owned) = match target {
        LogTarget::File(p) => {
            return std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(p);
        }
        LogTarget::Stdout => (1, io::stdout().as_fd().try_clone_to_owned()?),
        LogTarget::Stderr => (2, io::stderr().as_fd().try_clone_to_owned()?),
        LogTarget::Off => return Err(io::ErrorKind::InvalidInput.into()),
    };
    let file = std::fs::File::from(owned);
    // Appending to a regular file does not block.
    if file.metadata()?.file_type().is_file() {
        return Ok(file);
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{fd}"))
    {
        Ok(own) => Ok(own),
        Err(_) => {
            use std::os::fd::AsRawFd;
            crate::sys::set_nonblocking(file.as_raw_fd(), true)?;
            Ok(file)
        }
    }
}

/// A target for messages.
fn describe(target: &LogTarget) -> String {
    match target {
        LogTarget::File(p) => format!("\"{}\"", p.display()),
        LogTarget::Stdout => "stdout".into(),
        LogTarget::Stderr => "stderr".into(),
        LogTarget::Off => "off".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escaping_makes_valid_string_content() {
        let mut out = Vec::new();
        push_json(&mut out, b"a\"b\\c\n\t\x01\x7f\xff\xc3\xa9");
        assert_eq!(out, b"a\\\"b\\\\c\\n\\t\\u0001\\u007F\\u00FF\xc3\xa9");
        let mut empty = Vec::new();
        push_value(&mut empty, b"", Escape::Json);
        assert!(empty.is_empty(), "an absent value is empty in JSON");
        push_value(&mut empty, b"", Escape::None);
        assert_eq!(empty, b"-");
    }

    #[test]
    fn sent_header_values_are_found_in_a_head() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag:  \"x\" \r\n\r\n";
        assert_eq!(header_value(head, "content-type"), b"text/plain");
        assert_eq!(header_value(head, "etag"), b"\"x\"");
        assert_eq!(header_value(head, "server"), b"");
    }

    #[test]
    fn millis_print_as_nginx_does() {
        for (ms, want) in [
            (0, "0.000"),
            (3, "0.003"),
            (1234, "1.234"),
            (60_010, "60.010"),
        ] {
            let mut out = Vec::new();
            push_millis(&mut out, ms);
            assert_eq!(out, want.as_bytes());
        }
    }

    #[test]
    fn a_json_remote_user_is_escaped_once() {
        use crate::config::log_format::{LogFormat, compile};
        let format = LogFormat::new("j", Escape::Json, compile("$remote_user").unwrap());
        let head = b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YSJiOnB3\r\n\r\n";
        let Ok(Parse::Complete(req, _)) = parse_head(head, &mut ParseState::default()) else {
            panic!("unparsed");
        };
        let mut p = Pending::default();
        keep_head_values(&mut p, &format, Head::Parsed(&req), &Meta::default());
        // The user `a"b`: JSON's `\"`, not the default escape's `\x22` escaped again.
        assert_eq!(p.text, b"a\\\"b");
    }

    /// An access log in `combined` to `target`.
    fn plain(target: LogTarget) -> AccessLog {
        AccessLog {
            target,
            format: None,
        }
    }
    use crate::http::{Parse, ParseState, parse_head};

    fn escaped(v: &[u8]) -> String {
        let mut out = Vec::new();
        push_escaped(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escape_table_matches_the_predicate() {
        for b in 0..=255u8 {
            let want = !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\';
            assert_eq!(ESCAPE[usize::from(b)], want, "byte {b:#04x}");
        }
    }

    #[test]
    fn escaping_as_nginx_does() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("empty is a dash", b"", "-"),
            ("plain", b"curl/8.5.0", "curl/8.5.0"),
            ("quote", b"say \"hi\"", "say \\x22hi\\x22"),
            ("backslash", b"a\\b", "a\\x5Cb"),
            ("control bytes", b"\x01\t\x1f", "\\x01\\x09\\x1F"),
            ("DEL and high bytes", b"\x7f\x80\xff", "\\x7F\\x80\\xFF"),
            ("utf-8 is escaped too", "é".as_bytes(), "\\xC3\\xA9"),
            ("space and tilde stay", b" ~", " ~"),
        ];
        for &(name, input, want) in cases {
            assert_eq!(escaped(input), want, "{name}");
        }
    }

    #[test]
    fn basic_auth_user() {
        let user = |v: Option<&[u8]>| {
            let mut out = Vec::new();
            push_basic_user(&mut out, v);
            String::from_utf8(out).unwrap()
        };
        // "ada:secret", "ada:", ":pw", "nocolon", "a\"b:x"
        assert_eq!(user(Some(b"Basic YWRhOnNlY3JldA==")), "ada");
        assert_eq!(user(Some(b"basic   YWRhOnNlY3JldA")), "ada");
        assert_eq!(user(Some(b"Basic YWRhOg==")), "ada");
        assert_eq!(user(Some(b"Basic OnB3")), "-");
        assert_eq!(user(Some(b"Basic bm9jb2xvbg==")), "-");
        assert_eq!(user(Some(b"Basic YSJiOng=")), "a\\x22b");
        assert_eq!(user(Some(b"Basic !!!!")), "-");
        assert_eq!(user(Some(b"Bearer abc")), "-");
        assert_eq!(user(Some(b"Basic ")), "-");
        assert_eq!(user(None), "-");
    }

    #[test]
    fn addresses() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "::1",
            "::ffff:1.2.3.4",
            "2001:db8::1",
        ] {
            let mut out = Vec::new();
            push_ip(&mut out, ip.parse().unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), ip);
        }
    }

    #[test]
    fn numbers() {
        for v in [0, 7, 10, 404, 1_048_576, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }

    fn logs_for_test() -> AccessLogs {
        AccessLogs {
            on: true,
            sinks: vec![Sink {
                target: LogTarget::Stdout,
                file: None,
                buf: Vec::new(),
                dropped: 0,
                error: None,
            }],
            ..AccessLogs::default()
        }
    }

    #[test]
    fn a_whole_line() {
        let mut logs = logs_for_test();
        let head = b"GET /a?b=\"c\" HTTP/1.1\r\nHost: h\r\nUser-Agent: x\ty\xff\r\n\
                     Referer: http://r/\r\n\r\n";
        let Ok(Parse::Complete(req, _)) = parse_head(head, &mut ParseState::default()) else {
            panic!("head does not parse")
        };
        assert!(
            logs.begin(&plain(LogTarget::Off), &req, &Meta::default())
                .is_none()
        );
        assert!(
            logs.begin(&plain(LogTarget::Stderr), &req, &Meta::default())
                .is_none(),
            "not open"
        );
        let mut p = logs
            .begin(&plain(LogTarget::Stdout), &req, &Meta::default())
            .unwrap();
        p.status = 200;
        p.head = 100;
        p.sent = 142;
        let mut out = Vec::new();
        write_line(
            &mut out,
            &p,
            IpAddr::from([10, 0, 0, 1]),
            b"26/Nov/2026:00:14:34 +0000",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "10.0.0.1 - - [26/Nov/2026:00:14:34 +0000] \"GET /a?b=\\x22c\\x22 HTTP/1.1\" \
             200 42 \"http://r/\" \"x\\x09y\\xFF\"\n"
        );
        logs.finish(p, IpAddr::from([10, 0, 0, 1]), 0, 5);
        assert_eq!(logs.next_flush(), Some(5 + FLUSH_MS));
        assert_eq!(logs.spare.len(), 1, "the Pending went back to the pool");
    }

    #[test]
    fn a_raw_line_for_a_bad_head() {
        let mut logs = logs_for_test();
        let mut p = logs
            .begin_raw(
                &plain(LogTarget::Stdout),
                b"\r\n\x16\x03\x01 junk\r\nmore",
                &Meta::default(),
            )
            .unwrap();
        p.status = 400;
        let mut out = Vec::new();
        write_line(
            &mut out,
            &p,
            "::1".parse().unwrap(),
            b"01/Jan/1970:00:00:00 +0000",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "::1 - - [01/Jan/1970:00:00:00 +0000] \"\\x16\\x03\\x01 junk\" 400 0 \"-\" \"-\"\n"
        );
    }

    #[test]
    fn a_full_buffer_without_output_drops_and_counts() {
        let mut logs = logs_for_test();
        let head = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let Ok(Parse::Complete(req, _)) = parse_head(head, &mut ParseState::default()) else {
            panic!("head does not parse")
        };
        let lines = BUF_CAP / 60 + 10;
        for _ in 0..lines {
            let p = logs
                .begin(&plain(LogTarget::Stdout), &req, &Meta::default())
                .unwrap();
            logs.finish(p, IpAddr::from([127, 0, 0, 1]), 0, 0);
        }
        let sink = &logs.sinks[0];
        // No descriptor: a flush loses the buffer, and every line is counted.
        assert!(sink.buf.len() <= BUF_CAP);
        let buffered = memchr::memchr_iter(b'\n', &sink.buf).count() as u64;
        assert_eq!(buffered + sink.dropped, lines as u64);
        assert!(sink.dropped > 0);
    }
}
