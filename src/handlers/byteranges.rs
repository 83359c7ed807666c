//! A `multipart/byteranges` body (RFC 9110 §14.6) over a file answer:
//! the part heads and the closing delimiter are written once, into one
//! buffer; the ranges stay where the file's bytes are (the open file, sent
//! with `sendfile` between the heads, or the open-file cache's bytes).
//! Nothing of the file is copied here.
//!
//! The boundary must not occur in what is sent (RFC 2046 §5.1.1). It is 32
//! hex digits from `getrandom`, drawn after the file was opened, and:
//! - for bytes in memory (a small file's, from the cache) every part is
//!   searched for it (`memmem`) and a new one drawn on a hit;
//! - for an open file the bytes are not read (that would copy the file
//!   through user space, and could wait for the disk): the file's contents
//!   were fixed before the boundary existed and cannot depend on it, so a
//!   part of N bytes holds it with a chance below N / 2^128. A delimiter
//!   can also never straddle a part and the delimiter after it: the
//!   delimiter starts with CR LF, which no boundary holds.
//!
//! Only the ranges' own bytes need the check: the heads are ours, and the
//! file type in them is checked too.

use std::rc::Rc;

use arrayvec::ArrayString;

use super::Body;
use crate::http::range;

/// Boundaries drawn before giving up on a multipart answer (then the whole
/// file is sent): a second draw is already a 2^-128 event per byte.
const TRIES: usize = 4;

/// One part: where its head ends in [`Parts::text`], and its range in the
/// source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub head_end: usize,
    pub start: u64,
    pub len: u64,
}

/// The body of a multipart 206: for each piece its head (the bytes of
/// `text` after the previous piece's head) then its range of `source`;
/// after the last piece, the rest of `text` (the close-delimiter).
#[derive(Debug)]
pub struct Parts {
    /// The whole representation: a `Body::File` or a `Body::Shared`.
    pub source: Body,
    /// Every part head in order, then the close-delimiter.
    pub text: Rc<[u8]>,
    pub pieces: Vec<Piece>,
    /// Body bytes in all (`Content-Length`).
    len: u64,
}

impl Parts {
    /// The number of body bytes: the heads, the ranges and the
    /// close-delimiter.
    pub fn content_length(&self) -> u64 {
        self.len
    }

    /// The body's bytes, as a client receives them (tests only: it reads
    /// the file).
    #[cfg(test)]
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut from = 0;
        for p in &self.pieces {
            out.extend_from_slice(&self.text[from..p.head_end]);
            from = p.head_end;
            match &self.source {
                Body::Shared { data, start, .. } => {
                    let s = start + p.start as usize;
                    out.extend_from_slice(&data[s..s + p.len as usize]);
                }
                Body::File { file, start, .. } => {
                    let mut buf = vec![0; p.len as usize];
                    let n = file.read_at(&mut buf, start + p.start).unwrap();
                    out.extend_from_slice(&buf[..n]);
                }
                other => panic!("not a file body: {other:?}"),
            }
        }
        out.extend_from_slice(&self.text[from..]);
        out
    }
}

/// A multipart body over `source` (a file answer of `source.len()` bytes)
/// for `ranges` (`(start, len)`, inside the file, as `range::parse` gives
/// them), with its boundary; each part says `content_type`. `random` draws
/// the boundaries. `Err` gives `source` back when no boundary could be had
/// (no randomness, or every draw found in the bytes): the caller sends the
/// whole file.
pub(super) fn build(
    source: Body,
    ranges: &[(u64, u64)],
    content_type: Option<&str>,
    mut random: impl FnMut() -> Option<[u8; 16]>,
) -> Result<(Body, ArrayString<32>), Body> {
    let total = source.len();
    let fits = |&(s, n): &(u64, u64)| n > 0 && s.checked_add(n).is_some_and(|e| e <= total);
    let file_body = matches!(source, Body::File { .. } | Body::Shared { .. });
    if !file_body || !ranges.iter().all(fits) {
        debug_assert!(false, "ranges {ranges:?} of a {total}-byte {source:?}");
        return Err(source);
    }
    let boundary = (0..TRIES)
        .map_while(|_| random().map(range::boundary))
        .find(|b| !clashes(&source, ranges, content_type, b));
    let Some(boundary) = boundary else {
        return Err(source);
    };
    let mut text = Vec::with_capacity(ranges.len() * 128);
    let mut pieces = Vec::with_capacity(ranges.len());
    let mut len = 0u64;
    for &(start, n) in ranges {
        range::part_head(
            &mut text,
            &boundary,
            content_type,
            (start, start + n - 1, total),
        );
        pieces.push(Piece {
            head_end: text.len(),
            start,
            len: n,
        });
        len += n;
    }
    range::closing(&mut text, &boundary);
    len += text.len() as u64;
    let parts = Parts {
        source,
        text: text.into(),
        pieces,
        len,
    };
    Ok((Body::Parts(Box::new(parts)), boundary))
}

/// Whether `boundary` occurs where it must not: in the file type the part
/// heads carry, or in a range's bytes when they are in memory (see the
/// module's note for a file's).
fn clashes(
    source: &Body,
    ranges: &[(u64, u64)],
    content_type: Option<&str>,
    boundary: &str,
) -> bool {
    let finder = memchr::memmem::Finder::new(boundary.as_bytes());
    if content_type.is_some_and(|t| finder.find(t.as_bytes()).is_some()) {
        return true;
    }
    let Body::Shared { data, start, .. } = source else {
        return false;
    };
    ranges.iter().any(|&(s, n)| {
        let from = usize::try_from(s).ok().and_then(|s| s.checked_add(*start));
        let to = from.and_then(|f| usize::try_from(n).ok().and_then(|n| f.checked_add(n)));
        match from.zip(to).and_then(|(f, t)| data.get(f..t)) {
            Some(bytes) => finder.find(bytes).is_some(),
            // Cannot happen (`build` checked the ranges): refuse the draw.
            None => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(bytes: &[u8]) -> Body {
        Body::Shared {
            data: bytes.into(),
            start: 0,
            len: bytes.len(),
        }
    }

    /// The draws of `seq`, in turn; `None` after them.
    fn draws(seq: &[[u8; 16]]) -> impl FnMut() -> Option<[u8; 16]> + '_ {
        let mut it = seq.iter();
        move || it.next().copied()
    }

    /// Split a multipart body on its boundary (as RFC 2046 reads it):
    /// each part's header lines and bytes.
    fn parse(body: &[u8], boundary: &str) -> Vec<(Vec<String>, Vec<u8>)> {
        let delim = format!("\r\n--{boundary}");
        let d = delim.as_bytes();
        let mut at: Vec<usize> = Vec::new();
        let mut i = 0;
        while let Some(p) = memchr::memmem::find(&body[i..], d) {
            at.push(i + p);
            i += p + d.len();
        }
        assert_eq!(at.first(), Some(&0), "starts with a delimiter");
        let last = *at.last().unwrap();
        assert_eq!(
            &body[last + d.len()..],
            b"--\r\n",
            "ends with the close-delimiter"
        );
        at.windows(2)
            .map(|w| {
                let part = &body[w[0] + d.len()..w[1]];
                let part = part.strip_prefix(b"\r\n").unwrap();
                let end = memchr::memmem::find(part, b"\r\n\r\n").unwrap();
                let head = String::from_utf8(part[..end].to_vec()).unwrap();
                let lines = head.split("\r\n").map(str::to_string).collect();
                (lines, part[end + 4..].to_vec())
            })
            .collect()
    }

    #[test]
    fn parts_hold_the_ranges_and_the_length_is_exact() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let ranges = [(0, 10), (20, 10), (990, 10)];
        let (body, b) = build(
            shared(&data),
            &ranges,
            Some("text/plain"),
            draws(&[[7; 16]]),
        )
        .unwrap();
        assert_eq!(b.as_str(), "07".repeat(16));
        let Body::Parts(p) = &body else {
            panic!("{body:?}")
        };
        let bytes = p.bytes();
        assert_eq!(body.len(), bytes.len() as u64);
        let parts = parse(&bytes, &b);
        assert_eq!(parts.len(), 3);
        for ((lines, got), (s, n)) in parts.iter().zip(ranges) {
            let (s, n) = (s as usize, n as usize);
            assert_eq!(got, &data[s..s + n]);
            assert_eq!(
                lines,
                &[
                    "Content-Type: text/plain".to_string(),
                    format!("Content-Range: bytes {s}-{}/1000", s + n - 1)
                ]
            );
        }
    }

    #[test]
    fn the_length_is_exact_for_every_shape() {
        let data = vec![b'x'; 5000];
        for ranges in [
            vec![(0u64, 1u64), (2, 1)],
            vec![(0, 100), (200, 4800)],
            vec![(4998, 1), (10, 10), (100, 1)],
            (0..100).map(|i| (i * 50, 10)).collect(),
        ] {
            for ct in [None, Some("application/octet-stream")] {
                let (body, b) = build(shared(&data), &ranges, ct, draws(&[[1; 16]])).unwrap();
                let Body::Parts(p) = &body else { panic!() };
                let bytes = p.bytes();
                assert_eq!(body.len(), bytes.len() as u64, "{ranges:?} {ct:?}");
                // The file's bytes plus the heads, never more.
                let ranged: u64 = ranges.iter().map(|r| r.1).sum();
                assert_eq!(body.len(), ranged + p.text.len() as u64);
                assert_eq!(parse(&bytes, &b).len(), ranges.len());
            }
        }
    }

    #[test]
    fn a_boundary_found_in_the_bytes_is_drawn_again() {
        let first = range::boundary([0x11; 16]);
        let second = range::boundary([0x22; 16]);
        let third = range::boundary([0x33; 16]);
        // The file holds the first two boundaries, one inside each range.
        let mut data = b"head ".to_vec();
        data.extend_from_slice(first.as_bytes());
        data.extend_from_slice(b" middle ");
        let mid = data.len() as u64;
        data.extend_from_slice(second.as_bytes());
        data.extend_from_slice(b" tail");
        let n = data.len() as u64;
        let ranges = [(0, 40), (mid - 2, n - mid + 2)];
        let seq = [[0x11; 16], [0x22; 16], [0x33; 16]];
        let (body, b) = build(shared(&data), &ranges, None, draws(&seq)).unwrap();
        assert_eq!(b, third);
        let Body::Parts(p) = &body else { panic!() };
        let bytes = p.bytes();
        // The boundary occurs only in the delimiters: once per part and once
        // in the close-delimiter.
        let hits = memchr::memmem::find_iter(&bytes, b.as_bytes()).count();
        assert_eq!(hits, ranges.len() + 1);
        let parts = parse(&bytes, &b);
        assert_eq!(parts[0].1, data[..40]);
        assert_eq!(parts[1].1, data[mid as usize - 2..]);
        // Every draw in the bytes, or no randomness: the file is given back.
        assert!(build(shared(&data), &ranges, None, draws(&seq[..2])).is_err());
        assert!(build(shared(&data), &ranges, None, || None).is_err());
        // In the file type the heads carry: drawn again too.
        let ct = format!("text/{first}");
        let (_, b) = build(
            shared(b"abcdefgh"),
            &[(0, 1), (4, 1)],
            Some(&ct),
            draws(&seq),
        )
        .unwrap();
        assert_eq!(b, second);
    }

    /// Random files and ranges: the boundary chosen is never inside the
    /// bytes sent but as a delimiter, however often the draws collide.
    #[test]
    fn the_boundary_is_never_inside_the_bytes_sent() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..300 {
            // A file made of the candidate boundaries and noise: draws
            // come from a pool of 3, so collisions are frequent.
            let pool: Vec<[u8; 16]> = (0..3).map(|i| [(next() % 4) as u8 + i; 16]).collect();
            let mut data = Vec::new();
            for _ in 0..(next() % 6) {
                let pick = pool[(next() % 3) as usize];
                data.extend_from_slice(range::boundary(pick).as_bytes());
                data.extend((0..next() % 40).map(|_| next() as u8));
            }
            data.extend((0..1 + next() % 40).map(|_| next() as u8));
            let len = data.len() as u64;
            let a = next() % len;
            let ranges = if a + 2 < len {
                vec![(0, a + 1), (a + 2, len - a - 2)]
            } else {
                vec![(0, 1)]
            };
            let mut k = 0;
            let draw = || {
                k += 1;
                Some(pool[(next() % 3) as usize]).filter(|_| k <= TRIES)
            };
            let Ok((body, b)) = build(shared(&data), &ranges, None, draw) else {
                continue;
            };
            let Body::Parts(p) = &body else { panic!() };
            let bytes = p.bytes();
            let hits = memchr::memmem::find_iter(&bytes, b.as_bytes()).count();
            assert_eq!(hits, ranges.len() + 1, "{data:?} {ranges:?}");
            for (part, (s, n)) in parse(&bytes, &b).iter().zip(&ranges) {
                assert_eq!(part.1, data[*s as usize..(s + n) as usize]);
            }
        }
    }
}
