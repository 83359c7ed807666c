//! A streaming `multipart/form-data` parser (RFC 7578, RFC 2046 §5.1).
//!
//! The body (already de-chunked) is fed in pieces of any size; the parser
//! reports each part to a `PartSink`: `start` with its names, `data` any
//! number of times, `end`. Part data is found with one `memmem` search per
//! piece for the delimiter `CRLF "--" boundary` and handed to the sink as a
//! slice of the caller's piece, never copied, except for a piece's tail that
//! could be the start of a delimiter: those few bytes (fewer than the
//! delimiter) are held back in `carry` and decided with the next piece.
//! Part headers are collected in a fixed 8 KiB buffer and parsed once their
//! blank line has arrived; their syntax, and that of the Content-Type's
//! parameters, are the `head` module's.
//!
//! Invariants: the sink sees the same events, with the same data, however
//! the body is split (only the number of `data` calls may differ); data is
//! never empty, passed exactly once and never contains delimiter bytes; the
//! delimiter's only CR is its first byte (bchars exclude CR), so at most one
//! suffix of a piece can be a delimiter prefix. Errors are final.
#![deny(clippy::indexing_slicing)]

use std::convert::Infallible;

use arrayvec::ArrayVec;
use memchr::{memchr, memmem, memrchr};

use self::head::{Params, ends_with_blank_line, parse_part_head, unquote_in_place};
use super::bytes::trim_ows;

mod head;

const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// Longest boundary (RFC 2046 §5.1.1).
const MAX_BOUNDARY: usize = 70;
/// The delimiter is CRLF, "--", then the boundary.
const MAX_DELIMITER: usize = 4 + MAX_BOUNDARY;
/// Most bytes of one part's header block, its blank line included.
pub const MAX_PART_HEAD: usize = 8192;

/// Receives the parts of a multipart body as they are found.
pub trait PartSink {
    /// What the sink fails with (a write error, a size limit...).
    type Error;
    /// A new part begins; names borrowed for the call (already unquoted;
    /// `filename` may be empty).
    fn start(&mut self, part: &PartInfo<'_>) -> Result<(), Self::Error>;
    /// The next bytes of the current part's content (never empty).
    fn data(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
    /// The current part is complete.
    fn end(&mut self) -> Result<(), Self::Error>;
}

/// What a part's headers say about it (RFC 7578 §4.2, §4.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartInfo<'a> {
    /// The `name` parameter of `Content-Disposition: form-data`.
    pub name: Option<&'a [u8]>,
    /// The `filename` parameter, as sent (a browser sends a base name; the
    /// caller must still refuse `/`, `..` and the like).
    pub filename: Option<&'a [u8]>,
    /// The `Content-Type` field value, trimmed of OWS.
    pub content_type: Option<&'a [u8]>,
}

/// Why a multipart body was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultipartError<E> {
    /// The Content-Type is not `multipart/form-data` with a boundary.
    NoBoundary,
    /// The boundary parameter is malformed, or a delimiter in the body is
    /// followed by something other than `--` or padding and CRLF.
    BadBoundary,
    /// A part's header block is over `MAX_PART_HEAD` bytes.
    HeadersTooLarge,
    /// A part's header block is malformed.
    BadHeaders,
    /// The body ended before the close delimiter.
    Truncated,
    /// The sink failed.
    Sink(E),
}

impl<E> MultipartError<E> {
    /// The status code to answer with: 400 for a malformed body. A sink
    /// error is the caller's to map (413, 507...); 500 is only its fallback.
    pub fn status(&self) -> u16 {
        match self {
            MultipartError::NoBoundary
            | MultipartError::BadBoundary
            | MultipartError::HeadersTooLarge
            | MultipartError::BadHeaders
            | MultipartError::Truncated => 400,
            MultipartError::Sink(_) => 500,
        }
    }
}

/// A protocol error as any sink's error type.
fn widen<E>(e: MultipartError<Infallible>) -> MultipartError<E> {
    match e {
        MultipartError::NoBoundary => MultipartError::NoBoundary,
        MultipartError::BadBoundary => MultipartError::BadBoundary,
        MultipartError::HeadersTooLarge => MultipartError::HeadersTooLarge,
        MultipartError::BadHeaders => MultipartError::BadHeaders,
        MultipartError::Truncated => MultipartError::Truncated,
        MultipartError::Sink(never) => match never {},
    }
}

/// The error to repeat on later calls: a sink error is reported once, after
/// which the body can no longer be read to its end.
fn narrow<E>(e: &MultipartError<E>) -> MultipartError<Infallible> {
    match e {
        MultipartError::NoBoundary => MultipartError::NoBoundary,
        MultipartError::BadBoundary => MultipartError::BadBoundary,
        MultipartError::HeadersTooLarge => MultipartError::HeadersTooLarge,
        MultipartError::BadHeaders => MultipartError::BadHeaders,
        MultipartError::Truncated | MultipartError::Sink(_) => MultipartError::Truncated,
    }
}

/// The rest of a delimiter line, after `CRLF "--" boundary` (RFC 2046 §5.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// Right after the boundary.
    Start,
    /// After one `-` of a close delimiter.
    Dash,
    /// In transport padding (SP/HTAB).
    Padding,
    /// After CR; LF must follow.
    Lf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the first delimiter: bytes are discarded.
    Preamble,
    /// In the rest of a delimiter line.
    Delimiter(Line),
    /// Collecting a part's header block.
    Headers,
    /// In a part's content.
    Data,
    /// After the close delimiter: the epilogue is discarded.
    Done,
    /// An error was returned; it is returned again.
    Failed(MultipartError<Infallible>),
}

/// A streaming parser for one `multipart/form-data` body.
#[derive(Clone, Debug)]
pub struct Multipart {
    /// `CRLF "--" boundary`.
    delimiter: ArrayVec<u8, MAX_DELIMITER>,
    finder: memmem::Finder<'static>,
    state: State,
    /// Bytes held back because they may start a delimiter: always a proper
    /// prefix of it.
    carry: ArrayVec<u8, MAX_DELIMITER>,
    /// The header block of the part being started.
    head: ArrayVec<u8, MAX_PART_HEAD>,
}

impl Multipart {
    /// From a Content-Type value: `multipart/form-data; boundary=...`
    /// (case-insensitive type and parameter name; boundary quoted or token;
    /// 1..=70 bchars per RFC 2046 §5.1.1) else NoBoundary/BadBoundary.
    pub fn new(content_type: &[u8]) -> Result<Multipart, MultipartError<Infallible>> {
        let semi = memchr(b';', content_type).unwrap_or(content_type.len());
        let media = trim_ows(content_type.get(..semi).unwrap_or_default());
        if !media.eq_ignore_ascii_case(b"multipart/form-data") {
            return Err(MultipartError::NoBoundary);
        }
        let mut params = Params::new(content_type, semi);
        let mut boundary = None;
        while let Some(p) = params
            .next_param()
            .map_err(|_| MultipartError::BadBoundary)?
        {
            if p.name.eq_ignore_ascii_case(b"boundary") {
                if boundary.is_some() {
                    return Err(MultipartError::BadBoundary);
                }
                // A quoted boundary is used as written: `\` is not a bchar,
                // so a quoted-pair makes it invalid anyway.
                boundary = content_type.get(p.value);
            }
        }
        let boundary = boundary.ok_or(MultipartError::NoBoundary)?;
        if !is_boundary(boundary) {
            return Err(MultipartError::BadBoundary);
        }
        let mut delimiter = ArrayVec::new();
        delimiter
            .try_extend_from_slice(b"\r\n--")
            .and_then(|()| delimiter.try_extend_from_slice(boundary))
            .map_err(|_| MultipartError::BadBoundary)?;
        let finder = memmem::Finder::new(delimiter.as_slice()).into_owned();
        let mut carry = ArrayVec::new();
        // The first delimiter may open the body without its CRLF (RFC 2046
        // §5.1.1: the CRLF belongs to the delimiter, and there is no line
        // before it). Pretending the body starts with CRLF finds it there
        // like anywhere else; before the first delimiter it is discarded.
        carry
            .try_extend_from_slice(b"\r\n")
            .map_err(|_| MultipartError::BadBoundary)?;
        Ok(Multipart {
            delimiter,
            finder,
            state: State::Preamble,
            carry,
            head: ArrayVec::new(),
        })
    }

    /// Feed the next piece of the (decoded) body; calls the sink as parts are found.
    pub fn feed<S: PartSink>(
        &mut self,
        piece: &[u8],
        sink: &mut S,
    ) -> Result<(), MultipartError<S::Error>> {
        let r = self.feed_inner(piece, sink);
        if let Err(e) = &r {
            self.state = State::Failed(narrow(e));
        }
        r
    }

    /// The body ended: Ok only if the close delimiter `--B--` was seen (else
    /// Truncated). The sink is not called: a complete body has already been
    /// delivered, and bytes still held back belong to an unfinished part.
    pub fn finish<S: PartSink>(&mut self, _sink: &mut S) -> Result<(), MultipartError<S::Error>> {
        match self.state {
            State::Done => Ok(()),
            State::Failed(e) => Err(widen(e)),
            _ => {
                self.state = State::Failed(MultipartError::Truncated);
                Err(MultipartError::Truncated)
            }
        }
    }

    /// Whether the close delimiter has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn feed_inner<S: PartSink>(
        &mut self,
        piece: &[u8],
        sink: &mut S,
    ) -> Result<(), MultipartError<S::Error>> {
        let mut at = 0;
        while let Some(rest) = piece.get(at..).filter(|r| !r.is_empty()) {
            at += match self.state {
                State::Preamble | State::Data => self.content(rest, sink)?,
                State::Delimiter(line) => {
                    self.delimiter_line(line, rest)?;
                    1
                }
                State::Headers => self.headers(rest, sink)?,
                // RFC 2046 §5.1.1: the epilogue is to be ignored.
                State::Done => return Ok(()),
                State::Failed(e) => return Err(widen(e)),
            };
        }
        match self.state {
            State::Failed(e) => Err(widen(e)),
            _ => Ok(()),
        }
    }

    /// Scans part content (or the preamble) in `rest` for the delimiter;
    /// returns how many bytes of `rest` were used (at least one).
    fn content<S: PartSink>(
        &mut self,
        rest: &[u8],
        sink: &mut S,
    ) -> Result<usize, MultipartError<S::Error>> {
        let emit = self.state == State::Data;
        if !self.carry.is_empty() {
            let wanted = self.delimiter.get(self.carry.len()..).unwrap_or_default();
            let n = wanted.len().min(rest.len());
            let next = rest.get(..n).unwrap_or_default();
            if wanted.starts_with(next) {
                if n == wanted.len() {
                    self.carry.clear();
                    self.delimiter_found(sink)?;
                } else {
                    // Still only a prefix, and `rest` is used up.
                    self.hold(next)?;
                }
                return Ok(n);
            }
            // Not a delimiter after all: the held-back bytes were content. No
            // delimiter can start inside them, as their only CR is the first.
            if emit {
                sink.data(&self.carry).map_err(MultipartError::Sink)?;
            }
            self.carry.clear();
        }
        match self.finder.find(rest) {
            Some(k) => {
                if emit && k > 0 {
                    sink.data(rest.get(..k).unwrap_or_default())
                        .map_err(MultipartError::Sink)?;
                }
                self.delimiter_found(sink)?;
                Ok(k + self.delimiter.len())
            }
            None => {
                // The only suffix that can start a delimiter starts at the
                // last CR among the final delimiter.len() - 1 bytes.
                let from = rest.len().saturating_sub(self.delimiter.len() - 1);
                let keep = rest
                    .get(from..)
                    .and_then(|tail| memrchr(CR, tail))
                    .map(|j| from + j)
                    .filter(|&j| {
                        rest.get(j..)
                            .is_some_and(|tail| self.delimiter.starts_with(tail))
                    })
                    .unwrap_or(rest.len());
                let (data, tail) = rest.split_at_checked(keep).unwrap_or((rest, &[]));
                if emit && !data.is_empty() {
                    sink.data(data).map_err(MultipartError::Sink)?;
                }
                self.hold(tail)?;
                Ok(rest.len())
            }
        }
    }

    /// Adds bytes to the carry, which always stays shorter than the delimiter.
    fn hold<E>(&mut self, bytes: &[u8]) -> Result<(), MultipartError<E>> {
        // Cannot fail (the carry is a proper prefix of a delimiter that fits
        // the same capacity), but an error is safer than a panic.
        self.carry
            .try_extend_from_slice(bytes)
            .map_err(|_| MultipartError::BadBoundary)
    }

    /// A whole delimiter has been read: the current part (if any) ends.
    fn delimiter_found<S: PartSink>(
        &mut self,
        sink: &mut S,
    ) -> Result<(), MultipartError<S::Error>> {
        if self.state == State::Data {
            sink.end().map_err(MultipartError::Sink)?;
        }
        self.state = State::Delimiter(Line::Start);
        Ok(())
    }

    /// One byte (the first of `rest`) of the rest of a delimiter line:
    /// `"--"` closes the body, else `*(SP / HTAB) CRLF` (or LF) starts a part.
    fn delimiter_line<E>(&mut self, line: Line, rest: &[u8]) -> Result<(), MultipartError<E>> {
        let b = rest.first().copied().unwrap_or_default();
        let ws = b == b' ' || b == b'\t';
        self.state = match line {
            Line::Start if b == b'-' => State::Delimiter(Line::Dash),
            Line::Dash if b == b'-' => State::Done,
            Line::Start | Line::Padding if ws => State::Delimiter(Line::Padding),
            Line::Start | Line::Padding if b == CR => State::Delimiter(Line::Lf),
            Line::Start | Line::Padding | Line::Lf if b == LF => {
                self.head.clear();
                State::Headers
            }
            _ => return Err(MultipartError::BadBoundary),
        };
        Ok(())
    }

    /// Collects header bytes up to the next line end; once the blank line is
    /// in, parses the block and starts the part. Returns the bytes used.
    fn headers<S: PartSink>(
        &mut self,
        rest: &[u8],
        sink: &mut S,
    ) -> Result<usize, MultipartError<S::Error>> {
        let n = memchr(LF, rest).map_or(rest.len(), |i| i + 1);
        let line = rest.get(..n).unwrap_or_default();
        self.head
            .try_extend_from_slice(line)
            .map_err(|_| MultipartError::HeadersTooLarge)?;
        if line.last() == Some(&LF) && ends_with_blank_line(&self.head) {
            self.start_part(sink)?;
        }
        Ok(n)
    }

    /// Parses the complete header block and calls `sink.start`.
    fn start_part<S: PartSink>(&mut self, sink: &mut S) -> Result<(), MultipartError<S::Error>> {
        let fields = parse_part_head(&self.head).map_err(|_| MultipartError::BadHeaders)?;
        let name = fields.name.map(|v| unquote_in_place(&mut self.head, v));
        let filename = fields.filename.map(|v| unquote_in_place(&mut self.head, v));
        let info = PartInfo {
            name: name.and_then(|r| self.head.get(r)),
            filename: filename.and_then(|r| self.head.get(r)),
            content_type: fields.content_type.and_then(|r| self.head.get(r)),
        };
        sink.start(&info).map_err(MultipartError::Sink)?;
        self.state = State::Data;
        Ok(())
    }
}

/// RFC 2046 §5.1.1: `boundary := 0*69<bchars> bcharsnospace`.
fn is_boundary(b: &[u8]) -> bool {
    let bchar = |c: &u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(c);
    (1..=MAX_BOUNDARY).contains(&b.len()) && b.iter().all(bchar) && b.last() != Some(&b' ')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::xorshift;
    use MultipartError::*;

    /// One sink event; consecutive data calls are merged, so that events do
    /// not depend on how the body was split.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Start(Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>),
        Data(Vec<u8>),
        End,
    }

    /// Records events; fails the `fail_start`-th `start` (1-based) if set.
    #[derive(Default)]
    struct Rec {
        events: Vec<Ev>,
        starts: usize,
        fail_start: Option<usize>,
    }

    impl PartSink for Rec {
        type Error = &'static str;
        fn start(&mut self, p: &PartInfo<'_>) -> Result<(), &'static str> {
            self.starts += 1;
            if self.fail_start == Some(self.starts) {
                return Err("start refused");
            }
            let own = |s: Option<&[u8]>| s.map(<[u8]>::to_vec);
            self.events
                .push(Ev::Start(own(p.name), own(p.filename), own(p.content_type)));
            Ok(())
        }
        fn data(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
            assert!(!bytes.is_empty(), "empty data call");
            match self.events.last_mut() {
                Some(Ev::Data(v)) => v.extend_from_slice(bytes),
                Some(Ev::Start(..)) => self.events.push(Ev::Data(bytes.to_vec())),
                other => panic!("data after {other:?}"),
            }
            Ok(())
        }
        fn end(&mut self) -> Result<(), &'static str> {
            assert!(
                matches!(self.events.last(), Some(Ev::Start(..) | Ev::Data(_))),
                "end without start"
            );
            self.events.push(Ev::End);
            Ok(())
        }
    }

    type Outcome = (Vec<Ev>, Result<(), MultipartError<&'static str>>);

    const CT: &[u8] = b"multipart/form-data; boundary=B";

    /// Feeds `body` in pieces ending at each of `cuts` (ascending), then finishes.
    fn run_with(ct: &[u8], body: &[u8], cuts: &[usize], mut rec: Rec) -> Outcome {
        let mut m = Multipart::new(ct).unwrap();
        let mut from = 0;
        for &to in cuts.iter().chain([body.len()].iter()) {
            let to = to.clamp(from, body.len());
            if let Err(e) = m.feed(&body[from..to], &mut rec) {
                // Errors are final.
                assert!(m.feed(b"x", &mut rec).is_err());
                return (rec.events, Err(e));
            }
            from = to;
        }
        let r = m.finish(&mut rec);
        assert_eq!(r.is_ok(), m.is_done());
        (rec.events, r)
    }

    fn run(ct: &[u8], body: &[u8], cuts: &[usize]) -> Outcome {
        run_with(ct, body, cuts, Rec::default())
    }

    fn start(name: Option<&[u8]>, filename: Option<&[u8]>, ct: Option<&[u8]>) -> Ev {
        Ev::Start(
            name.map(<[u8]>::to_vec),
            filename.map(<[u8]>::to_vec),
            ct.map(<[u8]>::to_vec),
        )
    }

    fn data(d: &[u8]) -> Ev {
        Ev::Data(d.to_vec())
    }

    const BOUNDARY: &[u8] = b"----WebKitFormBoundary7MA4YWxkTrZu0gW";

    /// A body of three parts (a text field, a text file and a binary file
    /// full of delimiter near-misses), and the events it must give.
    fn three_parts() -> (Vec<u8>, Vec<u8>, Vec<Ev>) {
        let b = BOUNDARY;
        let mut ct = b"multipart/form-data; boundary=".to_vec();
        ct.extend_from_slice(b);
        let mut bin: Vec<u8> = (0..=255u8).collect();
        for near in [&b"\r\n--"[..], b"\r\n-", b"\r\n", b"\r", b"\r\r\n-"] {
            bin.extend_from_slice(near);
            bin.push(b'x');
        }
        // The boundary without CRLF, after LF only, after CR only, and with
        // its CRLF but one byte different.
        for lead in [&b""[..], b"--", b"\n--", b"\r--", b"\r\n-", b"\r\n\r--"] {
            bin.extend_from_slice(lead);
            bin.extend_from_slice(b);
            bin.extend_from_slice(b"--");
        }
        bin.extend_from_slice(b"\r\n--");
        bin.extend_from_slice(&b[..b.len() - 1]);
        bin.push(b'X');
        // End on a delimiter prefix, just before the real delimiter.
        bin.extend_from_slice(b"\r\n--");
        bin.extend_from_slice(&b[..5]);
        bin.push(b'\r');

        let mut body = Vec::new();
        let delim = |body: &mut Vec<u8>, first: bool| {
            if !first {
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"--");
            body.extend_from_slice(b);
        };
        delim(&mut body, true);
        body.extend_from_slice(
            b"\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello world",
        );
        delim(&mut body, false);
        body.extend_from_slice(
            b"\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\n\
              Content-Type: text/plain\r\n\r\nline1\r\nline2\r\n",
        );
        delim(&mut body, false);
        body.extend_from_slice(
            b"\r\ncontent-disposition: form-data; name=\"bin\"; filename=\"x \\\"q\\\".bin\"\r\n\
              Content-Type: application/octet-stream\r\n\r\n",
        );
        body.extend_from_slice(&bin);
        delim(&mut body, false);
        body.extend_from_slice(b"--\r\n");

        let events = vec![
            start(Some(b"title"), None, None),
            data(b"hello world"),
            Ev::End,
            start(Some(b"doc"), Some(b"a.txt"), Some(b"text/plain")),
            data(b"line1\r\nline2\r\n"),
            Ev::End,
            start(
                Some(b"bin"),
                Some(b"x \"q\".bin"),
                Some(b"application/octet-stream"),
            ),
            Ev::Data(bin),
            Ev::End,
        ];
        (ct, body, events)
    }

    #[test]
    fn three_parts_whole() {
        let (ct, body, events) = three_parts();
        assert_eq!(run(&ct, &body, &[]), (events, Ok(())));
    }

    #[test]
    fn three_parts_split_at_every_position_and_byte_at_a_time() {
        let (ct, body, events) = three_parts();
        let want = (events, Ok(()));
        for cut in 0..=body.len() {
            assert_eq!(run(&ct, &body, &[cut]), want, "cut at {cut}");
        }
        let bytes: Vec<usize> = (1..body.len()).collect();
        assert_eq!(run(&ct, &body, &bytes), want, "byte at a time");
        let mut s = 7u64;
        for _ in 0..500 {
            let mut cuts: Vec<usize> = (0..(xorshift(&mut s) % 12))
                .map(|_| (xorshift(&mut s) as usize) % (body.len() + 1))
                .collect();
            cuts.sort_unstable();
            assert_eq!(run(&ct, &body, &cuts), want, "cuts {cuts:?}");
        }
    }

    #[test]
    fn data_in_the_middle_of_a_piece_is_not_copied() {
        /// Records where each data slice lies.
        struct Spans(Vec<(usize, usize)>);
        impl PartSink for Spans {
            type Error = Infallible;
            fn start(&mut self, _: &PartInfo<'_>) -> Result<(), Infallible> {
                Ok(())
            }
            fn data(&mut self, bytes: &[u8]) -> Result<(), Infallible> {
                self.0.push((bytes.as_ptr() as usize, bytes.len()));
                Ok(())
            }
            fn end(&mut self) -> Result<(), Infallible> {
                Ok(())
            }
        }
        let (ct, body, events) = three_parts();
        let mut m = Multipart::new(&ct).unwrap();
        let mut spans = Spans(Vec::new());
        m.feed(&body, &mut spans).unwrap();
        assert!(m.is_done());
        // One call per part, each borrowed from the piece.
        assert_eq!(spans.0.len(), 3);
        let lens: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                Ev::Data(d) => Some(d.len()),
                _ => None,
            })
            .collect();
        let base = body.as_ptr() as usize;
        for ((ptr, len), want) in spans.0.iter().zip(lens) {
            assert_eq!(*len, want);
            assert!(*ptr >= base && ptr + len <= base + body.len());
        }
    }

    /// Name, body, the events it must give, and the result of feed/finish.
    type Case = (
        &'static str,
        &'static [u8],
        &'static [E],
        Result<(), MultipartError<&'static str>>,
    );

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        ("one field", b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--B--",
            &[S(Some(b"a"), None, None), D(b"x"), End], Ok(())),
        ("preamble and epilogue",
            b"This is a preamble.\r\n--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--B--\r\nepilogue\r\n--B\r\nignored",
            &[S(Some(b"a"), None, None), D(b"x"), End], Ok(())),
        ("preamble with false delimiters", b"x--B\r\n\n--B\r\n\r--B\r\n--\r\n--B\r\n\r\ny\r\n--B--",
            &[S(None, None, None), D(b"y"), End], Ok(())),
        ("preamble starting with CRLF", b"\r\n--B\r\n\r\ny\r\n--B--", &[S(None, None, None), D(b"y"), End], Ok(())),
        ("no parts", b"--B--", &[], Ok(())),
        ("empty part", b"--B\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n--B--",
            &[S(Some(b"e"), None, None), End], Ok(())),
        ("part without headers", b"--B\r\n\r\nd\r\n--B--", &[S(None, None, None), D(b"d"), End], Ok(())),
        ("two parts", b"--B\r\n\r\n1\r\n--B\r\n\r\n2\r\n--B--\r\n",
            &[S(None, None, None), D(b"1"), End, S(None, None, None), D(b"2"), End], Ok(())),
        ("content holding CRLF, dashes and B", b"--B\r\n\r\n\r\n-\r\n--\r\n-B--B\r\n--b\r\n\r\n--B--",
            &[S(None, None, None), D(b"\r\n-\r\n--\r\n-B--B\r\n--b\r\n"), End], Ok(())),
        ("LF header lines", b"--B\nContent-Disposition: form-data; name=a\nContent-Type: t/p\n\nx\r\n--B--",
            &[S(Some(b"a"), None, Some(b"t/p")), D(b"x"), End], Ok(())),
        ("transport padding", b"--B \t\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--B\t\r\n\r\ny\r\n--B-- \r\n",
            &[S(Some(b"a"), None, None), D(b"x"), End, S(None, None, None), D(b"y"), End], Ok(())),
        ("padding then LF", b"--B \n\r\nx\r\n--B--", &[S(None, None, None), D(b"x"), End], Ok(())),
        ("close delimiter then junk", b"--B\r\n\r\nx\r\n--B--junk\r\n--B\r\nmore", &[S(None, None, None), D(b"x"), End], Ok(())),
        ("empty filename", b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--B--",
            &[S(Some(b"f"), Some(b""), Some(b"application/octet-stream")), End], Ok(())),
        ("escapes in quoted values", b"--B\r\nContent-Disposition: form-data; name=\"a\\\\b\"; filename=\"q\\\"\\\\c\\d.txt\"\r\n\r\n\r\n--B--",
            &[S(Some(b"a\\b"), Some(b"q\"\\c\\d.txt"), None), End], Ok(())),
        ("quoted value with ; and =", b"--B\r\nContent-Disposition: form-data; name=\"a;b=c\"\r\n\r\n\r\n--B--",
            &[S(Some(b"a;b=c"), None, None), End], Ok(())),
        ("token values", b"--B\r\nContent-Disposition: form-data;name=n;filename=f.txt\r\n\r\n\r\n--B--",
            &[S(Some(b"n"), Some(b"f.txt"), None), End], Ok(())),
        ("case-insensitive names, filename* ignored",
            b"--B\r\ncontent-DISPOSITION: Form-Data; NAME=\"n\"; FileName*=UTF-8''%C3%A9.txt; FILENAME=\"e.txt\"\r\ncontent-type: text/plain\r\n\r\n\r\n--B--",
            &[S(Some(b"n"), Some(b"e.txt"), Some(b"text/plain")), End], Ok(())),
        ("BWS and empty parameters", b"--B\r\nContent-Disposition:form-data ;; name = \"n\" ;\r\n\r\n\r\n--B--",
            &[S(Some(b"n"), None, None), End], Ok(())),
        ("other fields ignored, type trimmed",
            b"--B\r\nX-A: 1\r\nContent-Transfer-Encoding: binary\r\nContent-Type: \t text/plain; charset=utf-8 \r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--B--",
            &[S(Some(b"a"), None, Some(b"text/plain; charset=utf-8")), End], Ok(())),
        ("obs-text in filename", b"--B\r\nContent-Disposition: form-data; name=a; filename=\"\xc3\xa9.txt\"\r\n\r\n\r\n--B--",
            &[S(Some(b"a"), Some(b"\xc3\xa9.txt"), None), End], Ok(())),
        // Truncated bodies.
        ("empty body", b"", &[], Err(Truncated)),
        ("only a preamble", b"just text\r\n", &[], Err(Truncated)),
        ("no close delimiter", b"--B\r\n\r\nx\r\n--B\r\n\r\ny", &[S(None, None, None), D(b"x"), End, S(None, None, None), D(b"y")], Err(Truncated)),
        ("content ends without delimiter", b"--B\r\n\r\nx\r\n", &[S(None, None, None), D(b"x")], Err(Truncated)),
        ("half a close delimiter", b"--B\r\n\r\nx\r\n--B-", &[S(None, None, None), D(b"x"), End], Err(Truncated)),
        ("delimiter line without line end", b"--B\r\n\r\nx\r\n--B  ", &[S(None, None, None), D(b"x"), End], Err(Truncated)),
        ("headers never end", b"--B\r\nContent-Disposition: form-data; name=a\r\n", &[], Err(Truncated)),
        // Malformed delimiter lines.
        ("longer boundary", b"--BB\r\n\r\nx\r\n--B--", &[], Err(BadBoundary)),
        ("longer boundary in content", b"--B\r\n\r\nx\r\n--BB\r\n", &[S(None, None, None), D(b"x"), End], Err(BadBoundary)),
        ("single dash", b"--B-x", &[], Err(BadBoundary)),
        ("padding then junk", b"--B x\r\n", &[], Err(BadBoundary)),
        ("CR then junk", b"--B\rx", &[], Err(BadBoundary)),
        ("padding before close", b"--B\r\n\r\nx\r\n--B --", &[S(None, None, None), D(b"x"), End], Err(BadBoundary)),
        // Malformed headers.
        ("obs-fold", b"--B\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("no colon", b"--B\r\nContent-Disposition form-data\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("SP before colon", b"--B\r\nContent-Type : a/b\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("bare CR in a field", b"--B\r\nContent-Type: a\rb\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("control in a value", b"--B\r\nContent-Type: a\x01b\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("not form-data", b"--B\r\nContent-Disposition: attachment; name=a\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("parameter without value", b"--B\r\nContent-Disposition: form-data; name\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("parameter with empty value", b"--B\r\nContent-Disposition: form-data; name=\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("unterminated quote", b"--B\r\nContent-Disposition: form-data; name=\"a\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("text after quote", b"--B\r\nContent-Disposition: form-data; name=\"a\"b\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("duplicate name", b"--B\r\nContent-Disposition: form-data; name=a; NAME=b\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("two dispositions", b"--B\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("two content types", b"--B\r\nContent-Type: a/b\r\nContent-Type: a/b\r\n\r\n\r\n--B--", &[], Err(BadHeaders)),
        ("second part bad", b"--B\r\n\r\nx\r\n--B\r\nbad\r\n\r\n\r\n--B--", &[S(None, None, None), D(b"x"), End], Err(BadHeaders)),
    ];

    /// An expected event, in a form a `const` can hold.
    #[derive(Debug)]
    enum E {
        S(
            Option<&'static [u8]>,
            Option<&'static [u8]>,
            Option<&'static [u8]>,
        ),
        D(&'static [u8]),
        End,
    }
    use E::{D, End, S};

    fn expected(events: &[E]) -> Vec<Ev> {
        events
            .iter()
            .map(|e| match *e {
                S(n, f, c) => start(n, f, c),
                D(d) => data(d),
                E::End => Ev::End,
            })
            .collect()
    }

    #[test]
    fn table() {
        for (name, body, events, result) in CASES {
            assert_eq!(run(CT, body, &[]), (expected(events), *result), "{name}");
        }
    }

    #[test]
    fn table_split_anywhere_equals_whole() {
        for (name, body, _, _) in CASES {
            let whole = run(CT, body, &[]);
            let bytes: Vec<usize> = (1..body.len()).collect();
            assert_eq!(run(CT, body, &bytes), whole, "{name}: byte at a time");
            for cut in 0..=body.len() {
                assert_eq!(run(CT, body, &[cut]), whole, "{name}: cut at {cut}");
            }
        }
    }

    #[test]
    fn every_proper_prefix_of_a_valid_body_is_truncated() {
        for (name, body, _, result) in CASES {
            if result.is_err() {
                continue;
            }
            // The close delimiter ends with the first "--" after "\r\n--B".
            let mut virt = b"\r\n".to_vec();
            virt.extend_from_slice(body);
            let mut close = 0;
            for i in 0..virt.len() {
                if virt[i..].starts_with(b"\r\n--B--") {
                    close = i + 7 - 2;
                    break;
                }
            }
            for end in 0..close {
                let got = run(CT, &body[..end], &[]);
                assert_eq!(got.1, Err(Truncated), "{name}: prefix of {end}");
            }
        }
    }

    #[test]
    fn quoted_boundary() {
        let ct = b"Multipart/Form-Data; charset=utf-8; BOUNDARY=\"a b:c?'()+_,-./=\"";
        let body = b"--a b:c?'()+_,-./=\r\n\r\nx\r\n--a b:c?'()+_,-./=--";
        let want = (vec![start(None, None, None), data(b"x"), Ev::End], Ok(()));
        assert_eq!(run(ct, body, &[]), want);
        let bytes: Vec<usize> = (1..body.len()).collect();
        assert_eq!(run(ct, body, &bytes), want);
    }

    #[test]
    fn boundary_parameter() {
        let b70 = [b'x'; 70];
        let mut ct70 = b"multipart/form-data; boundary=".to_vec();
        ct70.extend_from_slice(&b70);
        let mut ct71 = ct70.clone();
        ct71.push(b'x');
        type Want<'a> = Result<&'a [u8], MultipartError<Infallible>>;
        let cases: &[(&[u8], Want)] = &[
            (b"multipart/form-data; boundary=abc", Ok(b"abc")),
            (b"MULTIPART/form-DATA;BOUNDARY=abc", Ok(b"abc")),
            (
                b" multipart/form-data ; charset=utf-8 ; boundary = abc ;",
                Ok(b"abc"),
            ),
            (b"multipart/form-data; boundary=\"a b\"", Ok(b"a b")),
            (b"multipart/form-data; boundary=\"=?:\"", Ok(b"=?:")),
            (b"multipart/form-data; boundary=0", Ok(b"0")),
            (&ct70, Ok(&b70)),
            (b"multipart/form-data", Err(NoBoundary)),
            (b"multipart/form-data;", Err(NoBoundary)),
            (b"multipart/form-data; charset=utf-8", Err(NoBoundary)),
            (b"multipart/mixed; boundary=abc", Err(NoBoundary)),
            (b"text/plain; boundary=abc", Err(NoBoundary)),
            (b"multipart/form-datax; boundary=abc", Err(NoBoundary)),
            (b"", Err(NoBoundary)),
            (&ct71, Err(BadBoundary)),
            (b"multipart/form-data; boundary=", Err(BadBoundary)),
            (b"multipart/form-data; boundary=\"\"", Err(BadBoundary)),
            (b"multipart/form-data; boundary=\"abc \"", Err(BadBoundary)),
            (b"multipart/form-data; boundary=a!b", Err(BadBoundary)),
            (
                b"multipart/form-data; boundary=\"a\\\"b\"",
                Err(BadBoundary),
            ),
            (b"multipart/form-data; boundary=\"a\rb\"", Err(BadBoundary)),
            (b"multipart/form-data; boundary=\"abc", Err(BadBoundary)),
            (b"multipart/form-data; boundary", Err(BadBoundary)),
            (b"multipart/form-data; boundary=a\"b\"", Err(BadBoundary)),
            (b"multipart/form-data; boundary=a b", Err(BadBoundary)),
            (
                b"multipart/form-data; boundary=abc; boundary=abc",
                Err(BadBoundary),
            ),
            (b"multipart/form-data; boundary=abc, x", Err(BadBoundary)),
        ];
        for (ct, want) in cases {
            let got = Multipart::new(ct).map(|m| {
                assert_eq!(&m.delimiter[..4], b"\r\n--");
                m.delimiter[4..].to_vec()
            });
            assert_eq!(
                got,
                want.map(<[u8]>::to_vec),
                "{:?}",
                String::from_utf8_lossy(ct)
            );
        }
    }

    /// A body whose single part's header block is exactly `len` bytes.
    fn head_of(len: usize) -> Vec<u8> {
        let mut body = b"--B\r\nX: ".to_vec();
        body.extend(std::iter::repeat_n(b'v', len - 7));
        body.extend_from_slice(b"\r\n\r\nx\r\n--B--");
        body
    }

    #[test]
    fn part_header_limit() {
        let ok = (vec![start(None, None, None), data(b"x"), Ev::End], Ok(()));
        assert_eq!(run(CT, &head_of(MAX_PART_HEAD), &[]), ok);
        let too_big = (Vec::new(), Err(HeadersTooLarge));
        assert_eq!(run(CT, &head_of(MAX_PART_HEAD + 1), &[]), too_big);
        let body = head_of(MAX_PART_HEAD + 1);
        let bytes: Vec<usize> = (1..body.len()).collect();
        assert_eq!(run(CT, &body, &bytes), too_big);
        // The limit is per part.
        let mut two = head_of(MAX_PART_HEAD);
        two.truncate(two.len() - 2);
        two.extend_from_slice(&head_of(MAX_PART_HEAD)[3..]);
        assert_eq!(run(CT, &two, &[]).1, Ok(()));
    }

    #[test]
    fn sink_errors_stop_the_parser() {
        let body = b"--B\r\n\r\nx\r\n--B\r\n\r\ny\r\n--B--";
        let rec = Rec {
            fail_start: Some(2),
            ..Rec::default()
        };
        let want = (
            vec![start(None, None, None), data(b"x"), Ev::End],
            Err(Sink("start refused")),
        );
        assert_eq!(run_with(CT, body, &[], rec), want);
        let rec = Rec {
            fail_start: Some(2),
            ..Rec::default()
        };
        let bytes: Vec<usize> = (1..body.len()).collect();
        assert_eq!(run_with(CT, body, &bytes, rec), want);
        // Later calls report that the body was not read to its end.
        let mut m = Multipart::new(CT).unwrap();
        let mut rec = Rec {
            fail_start: Some(1),
            ..Rec::default()
        };
        assert_eq!(m.feed(body, &mut rec), Err(Sink("start refused")));
        assert_eq!(m.feed(b"", &mut rec), Err(Truncated));
        assert_eq!(m.finish(&mut rec), Err(Truncated));
    }

    #[test]
    fn statuses() {
        for e in [
            MultipartError::<()>::NoBoundary,
            BadBoundary,
            HeadersTooLarge,
            BadHeaders,
            Truncated,
        ] {
            assert_eq!(e.status(), 400, "{e:?}");
        }
        assert_eq!(Sink(()).status(), 500);
    }

    /// A random body: a mutated table case, multipart-looking pieces glued
    /// together, or random bytes.
    fn random_body(s: &mut u64) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"\r\n",
            b"\n",
            b"\r",
            b"-",
            b"--",
            b"B",
            b"\r\n--B",
            b"\r\n--B--",
            b"--B\r\n",
            b" ",
            b"\t",
            b"Content-Disposition: form-data; name=\"a\"",
            b"Content-Type: x",
            b"; filename=",
            b"\"",
            b"\\",
            b";",
            b"=",
            b":",
            b"x",
            b"\0",
            b"\xff",
        ];
        let mut v = Vec::new();
        match xorshift(s) % 3 {
            0 => {
                v.extend_from_slice(CASES[(xorshift(s) as usize) % CASES.len()].1);
                crate::testkit::mutate(s, &mut v, PIECES);
            }
            1 => {
                for _ in 0..(xorshift(s) % 24) {
                    v.extend_from_slice(PIECES[(xorshift(s) as usize) % PIECES.len()]);
                }
            }
            _ => {
                for _ in 0..(xorshift(s) % 64) {
                    v.push(match xorshift(s) % 4 {
                        0 => b'\r',
                        1 => b'\n',
                        2 => b'-',
                        _ => (xorshift(s) % 256) as u8,
                    });
                }
            }
        }
        v
    }

    #[test]
    fn fuzz_whole_equals_split() {
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut ok = 0;
        for i in 0..20_000 {
            let body = random_body(&mut s);
            let whole = run(CT, &body, &[]);
            ok += usize::from(whole.1.is_ok());
            let mut cuts: Vec<usize> = (0..(xorshift(&mut s) % 6))
                .map(|_| (xorshift(&mut s) as usize) % (body.len() + 1))
                .collect();
            cuts.sort_unstable();
            assert_eq!(
                run(CT, &body, &cuts),
                whole,
                "case {i}: {body:?} cut at {cuts:?}"
            );
            let bytes: Vec<usize> = (1..body.len()).collect();
            assert_eq!(
                run(CT, &body, &bytes),
                whole,
                "case {i}: {body:?} byte at a time"
            );
        }
        assert!(ok > 1000, "{ok}");
    }

    #[test]
    fn fuzz_content_type_never_panics() {
        let mut s = 0x1234_5678_9ABC_DEF1u64;
        const PIECES: &[&[u8]] = &[
            b"multipart/form-data",
            b";",
            b" ",
            b"boundary",
            b"=",
            b"\"",
            b"\\",
            b"abc",
            b"\t",
            b"x",
            b",",
            b"\r",
            b"\xff",
        ];
        for _ in 0..20_000 {
            let mut ct = Vec::new();
            for _ in 0..(xorshift(&mut s) % 10) {
                ct.extend_from_slice(PIECES[(xorshift(&mut s) as usize) % PIECES.len()]);
            }
            if let Ok(m) = Multipart::new(&ct) {
                assert!(m.delimiter.len() > 4 && m.delimiter.len() <= MAX_DELIMITER);
            }
        }
    }
}
