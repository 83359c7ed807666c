//! The chunked transfer coding decoder (RFC 9112 §7.1): resumable and zero-copy.
//!
//! `ChunkedDecoder::decode` is handed whatever body bytes have arrived and
//! returns how many it consumed plus the chunk data found among them, as a
//! sub-slice of the input (never copied). Everything that is not data (the
//! size line, its extensions, the CRLF after the data, the trailer section)
//! is read one byte at a time through a state machine, so the decoder keeps
//! all partial state in itself (size accumulator, extension and trailer byte
//! counters) and never re-scans or needs input back.
//!
//! Invariants: the result depends only on the bytes, never on how they were
//! split across calls; every byte is consumed exactly once; one call never
//! returns data from two chunks; bytes after the final CRLF of the trailer
//! section are never consumed (they are the next request, HTTP.md rule 18).
//! Errors are final: once one is returned, every later call returns it again.
#![deny(clippy::indexing_slicing)]

use super::bytes::{hex_val, is_field_value_byte, is_tchar};

const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// Most hex digits accepted in one chunk-size, leading zeros included. The
/// value itself overflows at 17 significant digits; this bounds a line of
/// endless zeros, which would otherwise be read forever without the body
/// ever growing (and so without any body size limit noticing).
const MAX_SIZE_DIGITS: usize = 64;

/// Why a chunked body was refused (HTTP.md rules 5 and 6): all are 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// The chunk-size is not `1*HEXDIG` (empty, `0x`, `+`, a leading SP...).
    BadSize,
    /// The chunk-size does not fit in a u64, or has more than 64 digits.
    Overflow,
    /// The chunk-ext does not follow RFC 9112 §7.1.1.
    BadExtension,
    /// The chunk-ext of one line is over `ChunkedDecoder::MAX_EXTENSION` bytes.
    ExtensionTooLong,
    /// A chunk line not ended by CRLF (or a bare LF), or chunk data not
    /// followed by exactly CRLF.
    MissingCrlf,
    /// The trailer section is over `ChunkedDecoder::MAX_TRAILERS` bytes.
    TrailerTooLarge,
    /// A trailer line that is not `name: value` (or is an obs-fold).
    BadTrailer,
}

impl ChunkError {
    /// The status code this error is answered with (then close, rule 19).
    pub fn status(self) -> u16 {
        match self {
            ChunkError::BadSize
            | ChunkError::Overflow
            | ChunkError::BadExtension
            | ChunkError::ExtensionTooLong
            | ChunkError::MissingCrlf
            | ChunkError::TrailerTooLarge
            | ChunkError::BadTrailer => 400,
        }
    }
}

/// Where in `chunk-ext` (RFC 9112 §7.1.1) the decoder is:
/// `*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ext {
    /// BWS after the size or after an extension: only BWS or `;` may follow.
    Bws,
    /// After `;`: BWS, then a name.
    Semi,
    /// In a chunk-ext-name.
    Name,
    /// BWS after a name: `=`, `;` or more BWS.
    NameBws,
    /// After `=`: BWS, then a value.
    Eq,
    /// In a token value.
    Token,
    /// In a quoted-string value.
    Quoted,
    /// After a backslash inside a quoted-string.
    Escape,
    /// After the closing quote of a value: `;`, BWS or the line end.
    Closed,
}

impl Ext {
    /// Whether a line may end in this state (the grammar has no trailing BWS).
    fn may_end(self) -> bool {
        matches!(self, Ext::Name | Ext::Token | Ext::Closed)
    }

    /// The state after byte `b`, which is not CR or LF.
    fn next(self, b: u8) -> Option<Ext> {
        let ws = b == b' ' || b == b'\t';
        Some(match self {
            Ext::Bws | Ext::Closed if ws => Ext::Bws,
            Ext::Bws | Ext::Closed | Ext::Name | Ext::NameBws | Ext::Token if b == b';' => {
                Ext::Semi
            }
            Ext::Semi if ws => Ext::Semi,
            Ext::Semi | Ext::Name if is_tchar(b) => Ext::Name,
            Ext::Name | Ext::NameBws if ws => Ext::NameBws,
            Ext::Name | Ext::NameBws if b == b'=' => Ext::Eq,
            Ext::Eq if ws => Ext::Eq,
            Ext::Eq if b == b'"' => Ext::Quoted,
            Ext::Eq | Ext::Token if is_tchar(b) => Ext::Token,
            Ext::Token if ws => Ext::Bws,
            Ext::Quoted if b == b'"' => Ext::Closed,
            Ext::Quoted if b == b'\\' => Ext::Escape,
            // qdtext: HTAB / SP / VCHAR except DQUOTE and backslash / obs-text.
            Ext::Quoted if is_field_value_byte(b) => Ext::Quoted,
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            Ext::Escape if is_field_value_byte(b) => Ext::Quoted,
            _ => return None,
        })
    }
}

/// Where in the trailer section (RFC 9112 §7.1.2) the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trailer {
    /// At the start of a line: a field name or the final empty line.
    LineStart,
    /// In a field name.
    Name,
    /// In a field value.
    Value,
    /// A CR ended a field line; LF must follow.
    ValueLf,
    /// A CR started the final empty line; LF must follow.
    FinalLf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the first digit of a chunk-size.
    SizeStart,
    /// In the chunk-size digits.
    Size,
    /// In the chunk-ext after the size.
    Ext(Ext),
    /// A CR ended the chunk line; LF must follow.
    LineLf,
    /// In the chunk data (`size` bytes still to come).
    Data,
    /// The chunk data ended: CRLF or LF must follow.
    DataEnd,
    /// A CR followed the chunk data; LF must follow.
    DataLf,
    /// After the last-chunk, in the trailer section.
    Trailer(Trailer),
    /// The final CRLF has been read.
    Done,
    /// An error was returned; it is returned again.
    Failed(ChunkError),
}

/// A resumable decoder for one chunked message body.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk-size read so far; in `Data`, the bytes of the chunk still to come.
    size: u64,
    /// Hex digits of the current chunk-size, leading zeros included.
    digits: usize,
    /// Bytes of chunk-ext on the current line.
    ext_len: usize,
    /// Bytes of the trailer section so far.
    trailer_len: usize,
    /// Data bytes returned so far.
    decoded: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// Most bytes of chunk-ext accepted on one chunk line (rule 6).
    pub const MAX_EXTENSION: usize = 1024;
    /// Most bytes accepted in the trailer section, its final CRLF included (rule 6).
    pub const MAX_TRAILERS: usize = 8192;

    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            size: 0,
            digits: 0,
            ext_len: 0,
            trailer_len: 0,
            decoded: 0,
        }
    }

    /// Decode from `input`: returns how many input bytes were consumed and the
    /// body data found (a sub-slice of `input`, possibly empty). Call again with
    /// the unconsumed rest; `consumed == 0 && data.is_empty()` means more input
    /// is needed, or, if `is_done()`, that the body has ended. Never returns
    /// data past the end of the chunk it is in, and never consumes a byte
    /// after the end of the body.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, &'a [u8]), ChunkError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Data => {
                    let rest = input.get(pos..).unwrap_or_default();
                    // A size beyond usize is larger than any input: take it all.
                    let n = usize::try_from(self.size).map_or(rest.len(), |s| s.min(rest.len()));
                    let (data, _) = rest.split_at_checked(n).unwrap_or((rest, &[]));
                    // data.len() ≤ size: the subtraction cannot underflow.
                    let n64 = data.len() as u64;
                    self.size -= n64;
                    self.decoded = self.decoded.saturating_add(n64);
                    if self.size == 0 {
                        self.state = State::DataEnd;
                    }
                    return Ok((pos + data.len(), data));
                }
                State::Done => return Ok((pos, &[])),
                State::Failed(e) => return Err(e),
                _ => {
                    let Some(&b) = input.get(pos) else {
                        return Ok((pos, &[]));
                    };
                    if let Err(e) = self.step(b) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                    pos += 1;
                }
            }
        }
    }

    /// Whether the last-chunk and the trailer section's final CRLF have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Data bytes returned so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Advances over one byte that is not chunk data.
    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        self.state = match self.state {
            State::SizeStart => {
                let d = hex_val(b).ok_or(ChunkError::BadSize)?;
                self.size = u64::from(d);
                self.digits = 1;
                State::Size
            }
            State::Size => match hex_val(b) {
                Some(d) => {
                    self.digits += 1;
                    if self.digits > MAX_SIZE_DIGITS {
                        return Err(ChunkError::Overflow);
                    }
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(d)))
                        .ok_or(ChunkError::Overflow)?;
                    State::Size
                }
                None => match b {
                    CR => State::LineLf,
                    LF => self.line_end(),
                    b';' | b' ' | b'\t' => {
                        self.ext_len = 0;
                        self.ext(Ext::Closed, b)?
                    }
                    _ => return Err(ChunkError::BadSize),
                },
            },
            State::Ext(e) => self.ext(e, b)?,
            State::LineLf if b == LF => self.line_end(),
            State::LineLf => return Err(ChunkError::MissingCrlf),
            // HTTP.md rule 5: chunk data is followed by CRLF, not by a bare
            // LF. This is not a line end that RFC 9112 §2.2 lets a recipient
            // relax but a fixed part of `chunk`; a peer that skips two bytes
            // there and one that accepts a lone LF would frame the rest of
            // the body differently (a request smuggling vector).
            State::DataEnd if b == CR => State::DataLf,
            State::DataLf if b == LF => State::SizeStart,
            State::DataEnd | State::DataLf => return Err(ChunkError::MissingCrlf),
            State::Trailer(t) => self.trailer(t, b)?,
            // `decode` handles these without calling `step`.
            s @ (State::Data | State::Done | State::Failed(_)) => s,
        };
        Ok(())
    }

    /// The state after the chunk line has ended.
    fn line_end(&mut self) -> State {
        if self.size == 0 {
            // RFC 9112 §7.1: the last-chunk; the trailer section follows.
            self.trailer_len = 0;
            State::Trailer(Trailer::LineStart)
        } else {
            State::Data
        }
    }

    /// Advances over one byte of the chunk-ext (or its line end).
    fn ext(&mut self, e: Ext, b: u8) -> Result<State, ChunkError> {
        match b {
            CR | LF if !e.may_end() => Err(ChunkError::BadExtension),
            CR => Ok(State::LineLf),
            LF => Ok(self.line_end()),
            _ => {
                self.ext_len += 1;
                if self.ext_len > Self::MAX_EXTENSION {
                    return Err(ChunkError::ExtensionTooLong);
                }
                e.next(b).map(State::Ext).ok_or(ChunkError::BadExtension)
            }
        }
    }

    /// Advances over one byte of the trailer section; the fields are
    /// discarded (rule 6: nothing in a trailer changes framing or routing).
    fn trailer(&mut self, t: Trailer, b: u8) -> Result<State, ChunkError> {
        self.trailer_len += 1;
        if self.trailer_len > Self::MAX_TRAILERS {
            return Err(ChunkError::TrailerTooLarge);
        }
        let next = match t {
            Trailer::LineStart if b == CR => Trailer::FinalLf,
            Trailer::LineStart if b == LF => return Ok(State::Done),
            // A line starting with SP/HTAB is an obs-fold (RFC 9112 §5.2) or
            // a name with leading whitespace: both refused, as in the head.
            Trailer::LineStart | Trailer::Name if is_tchar(b) => Trailer::Name,
            Trailer::Name if b == b':' => Trailer::Value,
            Trailer::Value if b == CR => Trailer::ValueLf,
            Trailer::Value | Trailer::ValueLf if b == LF => Trailer::LineStart,
            Trailer::Value if is_field_value_byte(b) => Trailer::Value,
            Trailer::FinalLf if b == LF => return Ok(State::Done),
            _ => return Err(ChunkError::BadTrailer),
        };
        Ok(State::Trailer(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::xorshift;
    use ChunkError::*;

    /// What a case must give.
    #[derive(Debug)]
    enum Want {
        /// The body ends with this data, leaving this many bytes unconsumed.
        Done(&'static [u8], usize),
        /// All input consumed, more needed; this data so far.
        Partial(&'static [u8]),
        /// This error (after whatever data came before it).
        Fail(ChunkError),
    }
    use Want::{Done, Fail, Partial};

    #[rustfmt::skip]
    const CASES: &[(&str, &[u8], Want)] = &[
        // Valid bodies.
        ("empty body", b"0\r\n\r\n", Done(b"", 0)),
        ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", Done(b"hello", 0)),
        ("two chunks", b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", Done(b"abcde", 0)),
        ("hex sizes either case", b"a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", Done(b"01234567890123456789", 0)),
        ("leading zeros", b"0000a\r\n0123456789\r\n000\r\n\r\n", Done(b"0123456789", 0)),
        ("data holds CRLF and NUL", b"4\r\n\r\n\0\n\r\n0\r\n\r\n", Done(b"\r\n\0\n", 0)),
        ("bare LF line ends", b"3\nabc\r\n0\n\n", Done(b"abc", 0)),
        ("mixed line ends", b"3\r\nabc\r\n0\n\r\n", Done(b"abc", 0)),
        ("next request left unconsumed", b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", Done(b"x", 16)),
        ("pipelined garbage left unconsumed", b"0\r\n\r\n0\r\n\r\n", Done(b"", 5)),
        // Rule 6: extensions, ignored.
        ("ext name", b"1;a\r\nx\r\n0\r\n\r\n", Done(b"x", 0)),
        ("ext name=token", b"1;a=b\r\nx\r\n0\r\n\r\n", Done(b"x", 0)),
        ("ext quoted", b"1;a=\"b c;d\\\"e\"\r\nx\r\n0\r\n\r\n", Done(b"x", 0)),
        ("ext empty quoted", b"1;a=\"\"\r\nx\r\n0\r\n\r\n", Done(b"x", 0)),
        ("ext several", b"1;a;b=c;d=\"e\"\r\nx\r\n0\r\n\r\n", Done(b"x", 0)),
        ("ext BWS everywhere", b"1 \t; a \t= \"b\" ; c\t=\td\r\nx\r\n0\r\n\r\n", Done(b"x", 0)),
        ("ext on last chunk", b"1\r\nx\r\n0;end=1\r\n\r\n", Done(b"x", 0)),
        ("ext quoted obs-text", b"1;a=\"\xe9\"\r\nx\r\n0\r\n\r\n", Done(b"x", 0)),
        ("ext token punctuation", b"1;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nx\r\n0\r\n\r\n", Done(b"x", 0)),
        // Rule 6: trailers, discarded.
        ("one trailer", b"1\r\nx\r\n0\r\nX-T: v\r\n\r\n", Done(b"x", 0)),
        ("trailers", b"1\r\nx\r\n0\r\nA: 1\r\nB:\r\nc-d:\t e f \r\n\r\n", Done(b"x", 0)),
        ("trailer bare LF", b"1\r\nx\r\n0\nA: 1\n\n", Done(b"x", 0)),
        ("trailer framing fields are only discarded", b"0\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n", Done(b"", 0)),
        // Incomplete bodies.
        ("nothing", b"", Partial(b"")),
        ("size only", b"5", Partial(b"")),
        ("size line", b"5\r\n", Partial(b"")),
        ("part of the data", b"5\r\nhel", Partial(b"hel")),
        ("data without CRLF", b"5\r\nhello", Partial(b"hello")),
        ("no last chunk", b"5\r\nhello\r\n", Partial(b"hello")),
        ("no final CRLF", b"0\r\n", Partial(b"")),
        ("in a trailer", b"0\r\nA: b\r\n", Partial(b"")),
        ("final CR", b"0\r\n\r", Partial(b"")),
        ("huge chunk", b"ffffffffffffffff\r\nab", Partial(b"ab")),
        // Rule 5: chunk-size.
        ("rule 5 0x", b"0x1\r\nx\r\n0\r\n\r\n", Fail(BadSize)),
        ("rule 5 plus", b"+1\r\nx\r\n0\r\n\r\n", Fail(BadSize)),
        ("rule 5 minus", b"-1\r\nx\r\n0\r\n\r\n", Fail(BadSize)),
        ("rule 5 leading SP", b" 1\r\nx\r\n0\r\n\r\n", Fail(BadSize)),
        ("rule 5 leading HTAB", b"\t1\r\nx\r\n0\r\n\r\n", Fail(BadSize)),
        ("rule 5 empty size", b"\r\nx\r\n0\r\n\r\n", Fail(BadSize)),
        ("rule 5 empty size LF", b"\nx\r\n0\r\n\r\n", Fail(BadSize)),
        ("rule 5 ext without size", b";a\r\nx\r\n0\r\n\r\n", Fail(BadSize)),
        ("rule 5 non-hex", b"g\r\n", Fail(BadSize)),
        ("rule 5 non-hex after digit", b"1g\r\nx\r\n0\r\n\r\n", Fail(BadSize)),
        ("rule 5 comma", b"1,1\r\nx\r\n", Fail(BadSize)),
        ("rule 5 16 digits fit", b"ffffffffffffffff\r\n", Partial(b"")),
        ("rule 5 17 digits", b"10000000000000000\r\nx\r\n0\r\n\r\n", Fail(Overflow)),
        ("rule 5 17 digits of f", b"fffffffffffffffff\r\n", Fail(Overflow)),
        ("rule 5 64 digits with leading zeros", b"0000000000000000000000000000000000000000000000000000000000000001\r\nx\r\n0\r\n\r\n", Done(b"x", 0)),
        ("rule 5 65 digits", b"00000000000000000000000000000000000000000000000000000000000000001\r\n", Fail(Overflow)),
        ("rule 5 second chunk bad", b"1\r\nx\r\n0x1\r\ny\r\n0\r\n\r\n", Fail(BadSize)),
        // Rule 5: CRLF after data and lines.
        ("rule 5 data not followed by CRLF", b"1\r\nab\r\n0\r\n\r\n", Fail(MissingCrlf)),
        ("rule 5 data longer than size", b"2\r\nabc\r\n0\r\n\r\n", Fail(MissingCrlf)),
        ("rule 5 data shorter than size takes the CRLF", b"3\r\nab\r\nX", Fail(MissingCrlf)),
        ("rule 5 data then CR X", b"1\r\na\rX0\r\n\r\n", Fail(MissingCrlf)),
        ("rule 5 data then CR CR", b"1\r\na\r\r\n0\r\n\r\n", Fail(MissingCrlf)),
        ("rule 5 data then bare LF", b"5\r\nhello\n0\r\n\r\n", Fail(MissingCrlf)),
        ("rule 5 data then LF, all lines LF", b"3\nabc\n0\n\n", Fail(MissingCrlf)),
        ("bare CR after size", b"1\rx\r\n0\r\n\r\n", Fail(MissingCrlf)),
        ("CR CR after size", b"1\r\r\nx\r\n0\r\n\r\n", Fail(MissingCrlf)),
        ("bare CR after ext", b"1;a\rx\r\n", Fail(MissingCrlf)),
        // Rule 6: malformed extensions.
        ("ext trailing SP", b"1 \r\nx\r\n0\r\n\r\n", Fail(BadExtension)),
        ("ext trailing SP after value", b"1;a=b \r\nx\r\n", Fail(BadExtension)),
        ("ext trailing SP after name", b"1;a \r\nx\r\n", Fail(BadExtension)),
        ("ext SP then garbage", b"1 x\r\n", Fail(BadExtension)),
        ("ext empty", b"1;\r\nx\r\n", Fail(BadExtension)),
        ("ext empty name", b"1;=b\r\nx\r\n", Fail(BadExtension)),
        ("ext empty value", b"1;a=\r\nx\r\n", Fail(BadExtension)),
        ("ext two semicolons", b"1;;a\r\nx\r\n", Fail(BadExtension)),
        ("ext non-token name", b"1;a@b\r\nx\r\n", Fail(BadExtension)),
        ("ext non-token value", b"1;a=b@c\r\nx\r\n", Fail(BadExtension)),
        ("ext unterminated quote", b"1;a=\"b\r\nx\r\n", Fail(BadExtension)),
        ("ext text after quote", b"1;a=\"b\"c\r\nx\r\n", Fail(BadExtension)),
        ("ext control in quote", b"1;a=\"\x01\"\r\nx\r\n", Fail(BadExtension)),
        ("ext escaped control", b"1;a=\"\\\x01\"\r\nx\r\n", Fail(BadExtension)),
        ("ext escaped CR", b"1;a=\"\\\r\"\r\nx\r\n", Fail(BadExtension)),
        ("ext NUL", b"1;a\0\r\nx\r\n", Fail(BadExtension)),
        ("ext double equals", b"1;a==b\r\nx\r\n", Fail(BadExtension)),
        // Rule 6: malformed trailers.
        ("trailer without colon", b"0\r\nX\r\n\r\n", Fail(BadTrailer)),
        ("trailer SP before colon", b"0\r\nX : v\r\n\r\n", Fail(BadTrailer)),
        ("trailer empty name", b"0\r\n: v\r\n\r\n", Fail(BadTrailer)),
        ("trailer non-token name", b"0\r\nX(y): v\r\n\r\n", Fail(BadTrailer)),
        ("trailer obs-fold", b"0\r\nX: a\r\n b\r\n\r\n", Fail(BadTrailer)),
        ("trailer leading HTAB", b"0\r\n\tX: a\r\n\r\n", Fail(BadTrailer)),
        ("trailer control in value", b"0\r\nX: a\x01\r\n\r\n", Fail(BadTrailer)),
        ("trailer bare CR in value", b"0\r\nX: a\rb\r\n\r\n", Fail(BadTrailer)),
        ("trailer CR CR LF", b"0\r\nX: a\r\r\n\r\n", Fail(BadTrailer)),
        ("final CR then X", b"0\r\n\rX", Fail(BadTrailer)),
        ("data instead of trailers", b"0\r\nabc\r\n\r\n", Fail(BadTrailer)),
    ];

    /// What feeding an input gives, however it was split.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        data: Vec<u8>,
        /// `Ok(Some(consumed))` once done, `Ok(None)` if more is needed.
        result: Result<Option<usize>, ChunkError>,
    }

    /// Feeds `input` in pieces ending at each of `cuts` (ascending), as a
    /// connection would: unconsumed bytes are handed back with the next piece.
    fn run(input: &[u8], cuts: &[usize]) -> Outcome {
        let mut dec = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut consumed = 0;
        let mut from = 0;
        for &to in cuts.iter().chain([input.len()].iter()) {
            let to = to.clamp(from, input.len());
            pending.extend_from_slice(&input[from..to]);
            from = to;
            loop {
                match dec.decode(&pending) {
                    Ok((n, d)) => {
                        assert!(n <= pending.len());
                        if !d.is_empty() {
                            // Zero-copy: the data is the input just before `n`.
                            assert_eq!(d.as_ptr(), pending[n - d.len()..].as_ptr());
                        }
                        data.extend_from_slice(d);
                        let idle = n == 0 && d.is_empty();
                        pending.drain(..n);
                        consumed += n;
                        if idle {
                            break;
                        }
                    }
                    Err(e) => {
                        // Errors are final.
                        assert_eq!(dec.decode(&pending), Err(e));
                        return Outcome {
                            data,
                            result: Err(e),
                        };
                    }
                }
            }
        }
        assert_eq!(dec.decoded(), data.len() as u64);
        let result = Ok(dec.is_done().then_some(consumed));
        Outcome { data, result }
    }

    fn want_outcome(input: &[u8], w: &Want) -> Outcome {
        match *w {
            Done(d, left) => Outcome {
                data: d.to_vec(),
                result: Ok(Some(input.len() - left)),
            },
            Partial(d) => Outcome {
                data: d.to_vec(),
                result: Ok(None),
            },
            Fail(e) => Outcome {
                data: Vec::new(),
                result: Err(e),
            },
        }
    }

    #[test]
    fn table() {
        for (name, input, want) in CASES {
            let got = run(input, &[]);
            let want = want_outcome(input, want);
            // The data before an error is not part of the expectation.
            let got = match got.result {
                Err(e) => Outcome {
                    data: Vec::new(),
                    result: Err(e),
                },
                _ => got,
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn byte_at_a_time_and_every_two_piece_split_equal_whole() {
        for (name, input, _) in CASES {
            let whole = run(input, &[]);
            let bytes: Vec<usize> = (1..input.len()).collect();
            assert_eq!(run(input, &bytes), whole, "{name}: byte at a time");
            for cut in 0..=input.len() {
                assert_eq!(run(input, &[cut]), whole, "{name}: cut at {cut}");
            }
        }
    }

    #[test]
    fn every_proper_prefix_of_a_valid_body_is_partial() {
        for (name, input, want) in CASES {
            let Done(_, left) = want else { continue };
            for end in 0..input.len() - left {
                let got = run(&input[..end], &[]);
                assert_eq!(got.result, Ok(None), "{name}: prefix of {end}");
            }
        }
    }

    #[test]
    fn one_call_never_returns_data_from_two_chunks() {
        let mut dec = ChunkedDecoder::new();
        let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
        let mut at = 0;
        let mut pieces = Vec::new();
        loop {
            let (n, d) = dec.decode(&input[at..]).unwrap();
            if n == 0 && d.is_empty() {
                break;
            }
            pieces.push(d.to_vec());
            at += n;
        }
        assert!(dec.is_done());
        assert_eq!(&input[at..], b"NEXT");
        let data: Vec<&[u8]> = pieces
            .iter()
            .map(|p| &p[..])
            .filter(|p| !p.is_empty())
            .collect();
        assert_eq!(data, vec![&b"abc"[..], b"de"]);
        assert_eq!(dec.decoded(), 5);
        // Done is final and consumes nothing more.
        assert_eq!(dec.decode(b"1\r\nx"), Ok((0, &b""[..])));
    }

    #[test]
    fn extension_limit() {
        let line = |ext_len: usize| {
            let mut v = b"1;".to_vec();
            v.extend(std::iter::repeat_n(b'a', ext_len - 1));
            v.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
            v
        };
        let max = ChunkedDecoder::MAX_EXTENSION;
        assert_eq!(run(&line(max), &[]).result, Ok(Some(max + 11)));
        assert_eq!(run(&line(max + 1), &[]).result, Err(ExtensionTooLong));
        // The limit is per line, not per body.
        let mut two = line(max);
        two.truncate(two.len() - 5);
        two.extend_from_slice(&line(max));
        assert_eq!(run(&two, &[]).data, b"xx");
        assert!(matches!(run(&two, &[]).result, Ok(Some(_))));
        // Quoted values count too, and the limit wins over a late syntax error.
        let mut q = b"1;a=\"".to_vec();
        q.extend(std::iter::repeat_n(b'q', max));
        q.extend_from_slice(b"\"@\r\n");
        assert_eq!(run(&q, &[]).result, Err(ExtensionTooLong));
    }

    #[test]
    fn trailer_limit() {
        let body = |section_len: usize| {
            // "X: " + value + CRLF + CRLF
            let mut v = b"0\r\nX: ".to_vec();
            v.extend(std::iter::repeat_n(b'v', section_len - 7));
            v.extend_from_slice(b"\r\n\r\n");
            v
        };
        let max = ChunkedDecoder::MAX_TRAILERS;
        assert_eq!(run(&body(max), &[]).result, Ok(Some(max + 3)));
        assert_eq!(run(&body(max + 1), &[]).result, Err(TrailerTooLarge));
        // Many small lines count together.
        let mut many = b"0\r\n".to_vec();
        for _ in 0..(max / 6 + 1) {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(run(&many, &[]).result, Err(TrailerTooLarge));
    }

    #[test]
    fn all_errors_are_400() {
        for e in [
            BadSize,
            Overflow,
            BadExtension,
            ExtensionTooLong,
            MissingCrlf,
            TrailerTooLarge,
            BadTrailer,
        ] {
            assert_eq!(e.status(), 400, "{e:?}");
        }
    }

    /// A random input: a mutated table case, chunked-looking pieces glued
    /// together, or random bytes.
    fn random_input(s: &mut u64) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"0",
            b"1",
            b"5",
            b"a",
            b"F",
            b"ffffffffffffffff",
            b"x",
            b"\r\n",
            b"\n",
            b"\r",
            b";",
            b"=",
            b"\"",
            b"\\",
            b" ",
            b"\t",
            b"a=b",
            b"hello",
            b"X: v",
            b":",
            b"\0",
            b"\xff",
            b"0\r\n\r\n",
            b"3\r\nabc\r\n",
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
                    v.push((xorshift(s) % 256) as u8);
                }
            }
        }
        v
    }

    #[test]
    fn fuzz_whole_equals_split() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        // How often each outcome came up: the inputs must reach all three.
        let mut seen = [0usize; 3];
        for i in 0..20_000 {
            let input = random_input(&mut s);
            let whole = run(&input, &[]);
            seen[match whole.result {
                Ok(Some(_)) => 0,
                Ok(None) => 1,
                Err(_) => 2,
            }] += 1;
            let mut cuts: Vec<usize> = (0..(xorshift(&mut s) % 6))
                .map(|_| (xorshift(&mut s) as usize) % (input.len() + 1))
                .collect();
            cuts.sort_unstable();
            assert_eq!(
                run(&input, &cuts),
                whole,
                "case {i}: {input:?} cut at {cuts:?}"
            );
            let bytes: Vec<usize> = (1..input.len()).collect();
            assert_eq!(
                run(&input, &bytes),
                whole,
                "case {i}: {input:?} byte at a time"
            );
        }
    }
}
