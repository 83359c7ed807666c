//! The response head writer: status line and fields into a fixed buffer.
//!
//! A head is built in a caller-owned `ArrayVec<u8, MAX_HEAD_OUT>` (no
//! allocation). Writes that do not fit set a flag instead of failing one by
//! one, so a handler writes its fields straight through and checks once, at
//! `finish`. Field values are sanitised: CR, LF and NUL are dropped so that
//! nothing taken from a request or a file name can inject a field or end the
//! head early (RFC 9110 §5.5).

use arrayvec::ArrayVec;
use memchr::memchr3;

use super::Version;
use super::bytes::is_tchar;
use super::date::format_http_date;
use super::status::reason;

/// Capacity of a response head.
pub const MAX_HEAD_OUT: usize = 4096;

/// The buffer a response head is written into.
pub type HeadBuf = ArrayVec<u8, MAX_HEAD_OUT>;

/// The head did not fit in `MAX_HEAD_OUT` bytes (a server bug or an absurd
/// configuration, never the client's fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadTooLarge;

impl HeadTooLarge {
    /// The status to answer with instead: 500.
    pub fn status(self) -> u16 {
        500
    }
}

/// Writes one response head into a `HeadBuf`.
#[derive(Debug)]
pub struct HeadWriter<'b> {
    buf: &'b mut HeadBuf,
    /// Something did not fit; `finish` reports it.
    overflow: bool,
}

/// The decimal digits of `v`, written into the end of `tmp`.
fn decimal(mut v: u64, tmp: &mut [u8; 20]) -> &[u8] {
    let mut n = 0;
    // u64::MAX has 20 digits, so the loop always ends by `break`.
    for slot in tmp.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
        if v == 0 {
            break;
        }
    }
    tmp.get(tmp.len() - n..).unwrap_or(&[])
}

impl<'b> HeadWriter<'b> {
    /// Clears `buf` and writes `HTTP/1.1 CODE REASON\r\n`, `Date: ...\r\n`
    /// and `Server: <SERVER_NAME>\r\n`.
    ///
    /// The status line always says `HTTP/1.1`, whatever `version` the request
    /// had: a server sends its own highest minor version in the major version
    /// of the request (RFC 9110 §6.2, RFC 9112 §2.3), and an HTTP/1.0 client
    /// reads a 1.1 response. `version` is kept for callers that will need it
    /// (it already decides framing and `Connection` elsewhere).
    pub fn new(buf: &'b mut HeadBuf, version: Version, code: u16, date: &[u8; 29]) -> Self {
        Self::start(buf, version, code, date, true)
    }

    /// As [`HeadWriter::new`]; with `tokens` off (`server_tokens off`)
    /// the `Server` header is `localserver`, without the version.
    pub fn start(
        buf: &'b mut HeadBuf,
        version: Version,
        code: u16,
        date: &[u8; 29],
        tokens: bool,
    ) -> Self {
        let _ = version;
        buf.clear();
        let mut w = HeadWriter {
            buf,
            overflow: false,
        };
        let mut tmp = [0u8; 20];
        w.put(b"HTTP/1.1 ");
        w.put(decimal(u64::from(code), &mut tmp));
        w.put(b" ");
        w.put(reason(code).as_bytes());
        w.put(b"\r\nDate: ");
        w.put(date);
        w.put(b"\r\nServer: ");
        w.put(if tokens {
            crate::SERVER_NAME.as_bytes()
        } else {
            crate::SERVER_PRODUCT.as_bytes()
        });
        w.put(b"\r\n");
        w
    }

    /// Appends `bytes` whole, or records the overflow (`ArrayVec` refuses the
    /// whole slice, so a head is never cut inside a field).
    fn put(&mut self, bytes: &[u8]) {
        if !self.overflow && self.buf.try_extend_from_slice(bytes).is_err() {
            self.overflow = true;
        }
    }

    /// Writes `Name: `; bytes that are not `tchar` (RFC 9110 §5.1) are dropped
    /// from the name so that it can neither contain a colon nor break the line.
    fn name(&mut self, name: &str) {
        let name = name.as_bytes();
        if name.iter().all(|&b| is_tchar(b)) {
            self.put(name);
        } else {
            for &b in name.iter().filter(|&&b| is_tchar(b)) {
                self.put(&[b]);
            }
        }
        self.put(b": ");
    }

    /// `Name: value\r\n`; CR, LF and NUL bytes in `value` are dropped
    /// (header injection).
    pub fn header(&mut self, name: &str, value: &[u8]) {
        self.name(name);
        let mut rest = value;
        while let Some(i) = memchr3(b'\r', b'\n', 0, rest) {
            let (clean, tail) = rest.split_at_checked(i).unwrap_or((rest, &[]));
            self.put(clean);
            rest = tail.get(1..).unwrap_or(&[]);
        }
        self.put(rest);
        self.put(b"\r\n");
    }

    /// A whole field line the caller vouches for (a constant such as
    /// `b"Accept-Ranges: bytes\r\n"`): no checks, one copy.
    pub fn line(&mut self, line: &'static [u8]) {
        self.put(line);
    }

    /// `ETag: "<mtime hex>-<size hex>"\r\n` (nginx's form), written in place.
    pub fn header_etag(&mut self, mtime: i64, size: u64) {
        let mut tmp = arrayvec::ArrayVec::<u8, 48>::new();
        let _ = tmp.try_extend_from_slice(b"ETag: \"");
        hex_into(mtime as u64, &mut tmp);
        let _ = tmp.try_push(b'-');
        hex_into(size, &mut tmp);
        let _ = tmp.try_extend_from_slice(b"\"\r\n");
        self.put(&tmp);
    }

    /// `Name: <decimal>\r\n` without allocating.
    pub fn header_u64(&mut self, name: &str, v: u64) {
        let mut tmp = [0u8; 20];
        self.name(name);
        self.put(decimal(v, &mut tmp));
        self.put(b"\r\n");
    }

    /// `Name: <IMF-fixdate>\r\n` from seconds since the epoch
    /// (`Last-Modified`, `Expires`...).
    pub fn header_date(&mut self, name: &str, unix_secs: i64) {
        self.name(name);
        self.put(&format_http_date(unix_secs));
        self.put(b"\r\n");
    }

    /// Writes the final CRLF and returns the head length; `Err(HeadTooLarge)`
    /// if anything did not fit.
    pub fn finish(mut self) -> Result<usize, HeadTooLarge> {
        self.put(b"\r\n");
        if self.overflow {
            Err(HeadTooLarge)
        } else {
            Ok(self.buf.len())
        }
    }
}

/// Appends `v` in lowercase hex, without leading zeros (`0` for zero).
pub(crate) fn hex_into<const N: usize>(v: u64, out: &mut arrayvec::ArrayVec<u8, N>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = if v == 0 {
        1
    } else {
        16 - v.leading_zeros() / 4
    };
    for i in (0..digits).rev() {
        let d = ((v >> (i * 4)) & 0xf) as usize;
        let _ = out.try_push(DIGITS.get(d).copied().unwrap_or(b'0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; 29] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn text(buf: &HeadBuf) -> String {
        String::from_utf8(buf.to_vec()).unwrap()
    }

    #[test]
    fn status_line_date_server_and_fields() {
        let mut buf = HeadBuf::new();
        let mut w = HeadWriter::new(&mut buf, Version::Http11, 200, DATE);
        w.header("Content-Type", b"text/html");
        w.header_u64("Content-Length", 1234);
        w.header_u64("X-Zero", 0);
        w.header_u64("X-Max", u64::MAX);
        w.header_date("Last-Modified", 0);
        let n = w.finish().unwrap();
        let want = format!(
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: {}\r\n\
             Content-Type: text/html\r\nContent-Length: 1234\r\nX-Zero: 0\r\n\
             X-Max: 18446744073709551615\r\nLast-Modified: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n",
            crate::SERVER_NAME
        );
        assert_eq!(text(&buf), want);
        assert_eq!(n, want.len());
    }

    #[test]
    fn an_http_1_0_request_gets_an_http_1_1_status_line() {
        let mut buf = HeadBuf::new();
        let w = HeadWriter::new(&mut buf, Version::Http10, 404, DATE);
        w.finish().unwrap();
        assert!(text(&buf).starts_with("HTTP/1.1 404 Not Found\r\n"));
    }

    #[test]
    fn the_buffer_is_cleared_first() {
        let mut buf = HeadBuf::new();
        buf.try_extend_from_slice(b"garbage").unwrap();
        HeadWriter::new(&mut buf, Version::Http11, 599, DATE)
            .finish()
            .unwrap();
        assert!(text(&buf).starts_with("HTTP/1.1 599 Unknown\r\n"));
    }

    #[test]
    fn injection_bytes_are_dropped() {
        let mut buf = HeadBuf::new();
        let mut w = HeadWriter::new(&mut buf, Version::Http11, 302, DATE);
        w.header("Location", b"/a\r\nSet-Cookie: x=1\r\n\r\n<html>\0b");
        w.header("Bad Name:\r\n", b"v");
        w.finish().unwrap();
        let t = text(&buf);
        assert!(
            t.contains("\r\nLocation: /aSet-Cookie: x=1<html>b\r\n"),
            "{t}"
        );
        assert!(t.contains("\r\nBadName: v\r\n"), "{t}");
        assert!(t.ends_with("\r\n\r\n"));
        assert_eq!(t.matches("\r\n\r\n").count(), 1);
    }

    #[test]
    fn overflow_is_reported_at_finish() {
        let mut buf = HeadBuf::new();
        let mut w = HeadWriter::new(&mut buf, Version::Http11, 200, DATE);
        let big = vec![b'x'; MAX_HEAD_OUT];
        w.header("X-Big", &big);
        w.header("X-Small", b"y");
        assert_eq!(w.finish(), Err(HeadTooLarge));
        assert_eq!(HeadTooLarge.status(), 500);

        // Exactly full is fine.
        let mut buf = HeadBuf::new();
        let base = HeadWriter::new(&mut buf, Version::Http11, 200, DATE)
            .finish()
            .unwrap();
        let fill = MAX_HEAD_OUT - base - "X: \r\n".len();
        let mut buf = HeadBuf::new();
        let mut w = HeadWriter::new(&mut buf, Version::Http11, 200, DATE);
        w.header("X", &vec![b'v'; fill]);
        assert_eq!(w.finish(), Ok(MAX_HEAD_OUT));
        let mut buf = HeadBuf::new();
        let mut w = HeadWriter::new(&mut buf, Version::Http11, 200, DATE);
        w.header("X", &vec![b'v'; fill + 1]);
        assert_eq!(w.finish(), Err(HeadTooLarge));
    }

    #[test]
    fn decimal_digits() {
        let mut tmp = [0u8; 20];
        for v in [0, 1, 9, 10, 99, 100, 12345, u64::MAX / 3, u64::MAX] {
            assert_eq!(decimal(v, &mut tmp), v.to_string().as_bytes());
        }
    }
}
