//! The header syntax of `multipart/form-data`: a part's header block (its
//! field lines up to the blank line), the `name` and `filename` of its
//! Content-Disposition and its Content-Type (RFC 7578 §4.2, §4.4), and the
//! `; name=value` parameter cursor that also reads the body's `boundary`.
//!
//! Pure functions over bytes the scanner (`super`) has already collected:
//! results are ranges into those bytes, nothing is copied, and a quoted
//! value is unquoted in place. Any syntax error is [`Malformed`], which the
//! scanner reports as a bad part header or a bad boundary.
#![deny(clippy::indexing_slicing)]

use std::ops::Range;

use memchr::memchr;

use super::{CR, LF};
use crate::http::bytes::{is_field_value_byte, is_tchar, is_token, trim_ows};

/// Whether the header block ends with an empty line (CRLF or LF), which may
/// also be its only line.
pub(super) fn ends_with_blank_line(head: &[u8]) -> bool {
    let Some(before) = head.strip_suffix(b"\n") else {
        return false;
    };
    let before = before.strip_suffix(b"\r").unwrap_or(before);
    before.is_empty() || before.ends_with(b"\n")
}

/// The header block was malformed.
#[derive(Debug)]
pub(super) struct Malformed;

/// A parameter value: where it lies and whether it was a quoted-string (the
/// range is then inside the quotes, escapes still in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Value {
    range: Range<usize>,
    quoted: bool,
}

/// Where the fields a sink sees lie in a part's header block.
#[derive(Debug, Default)]
pub(super) struct PartFields {
    pub(super) name: Option<Value>,
    pub(super) filename: Option<Value>,
    pub(super) content_type: Option<Range<usize>>,
}

/// Parses a part's header block (field lines, then the blank line). Only
/// Content-Disposition and Content-Type mean something (RFC 7578 §4.2, §4.4,
/// §4.7: Content-Transfer-Encoding is deprecated and, like any other field,
/// ignored); each may appear once.
pub(super) fn parse_part_head(head: &[u8]) -> Result<PartFields, Malformed> {
    let mut fields = PartFields::default();
    let mut disposition = false;
    let mut start = 0;
    for raw in head.split_inclusive(|&b| b == LF) {
        let line_at = start;
        start += raw.len();
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        // A bare CR, or an obs-fold (RFC 9112 §5.2), as in a request head.
        if memchr(CR, line).is_some() || matches!(line.first(), Some(b' ' | b'\t')) {
            return Err(Malformed);
        }
        let colon = memchr(b':', line).ok_or(Malformed)?;
        let (name, value) = line.split_at_checked(colon).ok_or(Malformed)?;
        let value = value.get(1..).unwrap_or_default();
        if !is_token(name) || !value.iter().all(|&b| is_field_value_byte(b)) {
            return Err(Malformed);
        }
        let lead = value
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let value_at = line_at + colon + 1 + lead;
        let value = trim_ows(value);
        if name.eq_ignore_ascii_case(b"content-disposition") {
            if disposition {
                return Err(Malformed);
            }
            disposition = true;
            parse_disposition(value, value_at, &mut fields)?;
        } else if name.eq_ignore_ascii_case(b"content-type") {
            if fields.content_type.is_some() {
                return Err(Malformed);
            }
            fields.content_type = Some(value_at..value_at + value.len());
        }
    }
    Ok(fields)
}

/// `form-data *( OWS ";" OWS [ parameter ] )` (RFC 7578 §4.2, RFC 6266 §4.1),
/// recording `name` and `filename` (parameter names are case-insensitive;
/// `filename*` and unknown parameters are ignored, RFC 7578 §4.2).
fn parse_disposition(v: &[u8], at: usize, fields: &mut PartFields) -> Result<(), Malformed> {
    let semi = memchr(b';', v).unwrap_or(v.len());
    if !trim_ows(v.get(..semi).unwrap_or_default()).eq_ignore_ascii_case(b"form-data") {
        return Err(Malformed);
    }
    let mut params = Params::new(v, semi);
    while let Some(p) = params.next_param()? {
        let slot = if p.name.eq_ignore_ascii_case(b"name") {
            &mut fields.name
        } else if p.name.eq_ignore_ascii_case(b"filename") {
            &mut fields.filename
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(Malformed);
        }
        *slot = Some(Value {
            range: at + p.value.start..at + p.value.end,
            quoted: p.quoted,
        });
    }
    Ok(())
}

/// Removes the quoting of a quoted-string value in place and returns where
/// the result lies. Only `\"` and `\\` are escapes: browsers send other
/// backslashes literally (the HTML form encoding escapes `"` as `%22`, and
/// old ones send `C:\path\file`), so a lone `\` stays a `\`.
pub(super) fn unquote_in_place(buf: &mut [u8], v: Value) -> Range<usize> {
    let r = v.range;
    if !v.quoted {
        return r;
    }
    let Some(s) = buf.get_mut(r.clone()) else {
        return r;
    };
    let mut w = 0;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let byte = match (b, s.get(i + 1)) {
            (b'\\', Some(&e @ (b'"' | b'\\'))) => {
                i += 1;
                e
            }
            _ => b,
        };
        if let Some(slot) = s.get_mut(w) {
            *slot = byte;
        }
        w += 1;
        i += 1;
    }
    r.start..r.start + w
}

/// A `name=value` parameter; the value's range is relative to the scanned
/// slice.
#[derive(Debug)]
pub(super) struct Param<'a> {
    pub(super) name: &'a [u8],
    pub(super) value: Range<usize>,
    quoted: bool,
}

/// A cursor over `*( OWS ";" OWS [ name BWS "=" BWS value ] )` (RFC 9110
/// §5.6.6, with the whitespace around `=` that senders of form data use).
pub(super) struct Params<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Params<'a> {
    /// A cursor at `pos` of `s` (on the first `;`, or at the end).
    pub(super) fn new(s: &'a [u8], pos: usize) -> Self {
        Params { s, pos }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// `1*tchar` at the cursor, as a range.
    fn token(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then_some(start..self.pos)
    }

    /// A quoted-string at the cursor (which is on its DQUOTE): the range
    /// inside the quotes. qdtext and quoted-pair as in RFC 9110 §5.6.4,
    /// except that a `\` not before `"` or `\` is text (see `unquote_in_place`).
    fn quoted(&mut self) -> Result<Range<usize>, Malformed> {
        let start = self.pos + 1;
        let mut i = start;
        loop {
            match self.s.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(start..i);
                }
                Some(b'\\') if matches!(self.s.get(i + 1), Some(b'"' | b'\\')) => i += 2,
                Some(&b) if is_field_value_byte(b) => i += 1,
                _ => return Err(Malformed),
            }
        }
    }

    /// The next parameter, `None` at the end.
    pub(super) fn next_param(&mut self) -> Result<Option<Param<'a>>, Malformed> {
        // Empty parameters (`;;`, a trailing `;`) are allowed and skipped.
        loop {
            self.skip_ows();
            match self.peek() {
                None => return Ok(None),
                Some(b';') => self.pos += 1,
                Some(_) => return Err(Malformed),
            }
            self.skip_ows();
            match self.peek() {
                None => return Ok(None),
                Some(b';') => {}
                Some(_) => break,
            }
        }
        let name = self.token().ok_or(Malformed)?;
        self.skip_ows();
        if self.peek() != Some(b'=') {
            return Err(Malformed);
        }
        self.pos += 1;
        self.skip_ows();
        let (value, quoted) = if self.peek() == Some(b'"') {
            (self.quoted()?, true)
        } else {
            (self.token().ok_or(Malformed)?, false)
        };
        Ok(Some(Param {
            name: self.s.get(name).unwrap_or_default(),
            value,
            quoted,
        }))
    }
}
