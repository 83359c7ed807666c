//! Path normalisation (HTTP.md rule 28): percent-decode once, then remove
//! dot-segments (RFC 3986 §5.2.4) and merge repeated slashes (as nginx's
//! `merge_slashes`).
//!
//! Invariants of a successful result: it starts with `/`, is valid UTF-8,
//! contains no `.` or `..` segment, no empty segment (except that a trailing
//! `/` is kept), no NUL or other control byte, and every `/` in it was a `/`
//! in the request (an encoded `%2F` is refused, never turned into a
//! separator). A path that would climb above `/` is refused, so joining the
//! result under a root can never leave it.

use memchr::memrchr;

use super::bytes::{hex_val, is_target_byte};

/// Why a path was refused; every case is answered with 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// The path does not start with `/`.
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// `%2F`: an encoded slash would change the path's structure.
    EncodedSlash,
    /// A decoded control byte (`%00`..`%1F`, `%7F`).
    ControlByte,
    /// A raw byte that cannot appear in a request-target (space, control,
    /// non-ASCII).
    BadByte,
    /// The decoded bytes are not UTF-8 (this includes overlong forms such as
    /// `%C0%AE`, which some decoders once took for `.`).
    NotUtf8,
    /// `..` would climb above `/`.
    AboveRoot,
    /// The output buffer is shorter than the input.
    OutputTooSmall,
}

impl PathError {
    /// The status code to answer with: 400.
    pub fn status(self) -> u16 {
        400
    }
}

/// Decodes one segment (no `/` in `seg`) into the start of `dst`; returns the
/// decoded length and whether any byte is non-ASCII.
fn decode_segment(seg: &[u8], dst: &mut [u8]) -> Result<(usize, bool), PathError> {
    let mut n = 0;
    let mut non_ascii = false;
    let mut it = seg.iter();
    while let Some(&b) = it.next() {
        let c = if b == b'%' {
            let (Some(&h), Some(&l)) = (it.next(), it.next()) else {
                return Err(PathError::BadEscape);
            };
            let (Some(h), Some(l)) = (hex_val(h), hex_val(l)) else {
                return Err(PathError::BadEscape);
            };
            (h << 4) | l
        } else if is_target_byte(b) {
            b
        } else {
            return Err(PathError::BadByte);
        };
        if c == b'/' {
            return Err(PathError::EncodedSlash);
        }
        if c < 0x20 || c == 0x7F {
            return Err(PathError::ControlByte);
        }
        non_ascii |= c >= 0x80;
        *dst.get_mut(n).ok_or(PathError::OutputTooSmall)? = c;
        n += 1;
    }
    Ok((n, non_ascii))
}

/// Normalises the still-encoded request path `raw` (which starts with `/`)
/// into `out`, which must hold at least `raw.len()` bytes (decoding and
/// dot-removal never grow a path), and returns the result as a `str`
/// borrowed from `out`.
///
/// `/a/./b` → `/a/b`, `//a///b` → `/a/b`, `/a/b/..` → `/a/`, `/a/b/.` →
/// `/a/b/`, `/a/%2e%2e/b` → `/b`, `/..` → `AboveRoot`, `/a%2Fb` →
/// `EncodedSlash`.
pub fn normalize<'o>(raw: &[u8], out: &'o mut [u8]) -> Result<&'o str, PathError> {
    let Some((b'/', rest)) = raw.split_first() else {
        return Err(PathError::NotAbsolute);
    };
    if out.len() < raw.len() {
        return Err(PathError::OutputTooSmall);
    }
    *out.first_mut().ok_or(PathError::OutputTooSmall)? = b'/';
    // out[..w] is the path so far; it always ends with '/' between segments.
    let mut w = 1;
    let mut segs = rest.split(|&b| b == b'/').peekable();
    while let Some(seg) = segs.next() {
        let last = segs.peek().is_none();
        let dst = out.get_mut(w..).ok_or(PathError::OutputTooSmall)?;
        let (n, non_ascii) = decode_segment(seg, dst)?;
        let decoded = crate::http::bytes::within(dst, ..n);
        // UTF-8 never encodes '/' inside a multi-byte sequence, so checking
        // segment by segment is checking the whole decoded path, including
        // segments that a later `..` removes.
        if non_ascii && std::str::from_utf8(decoded).is_err() {
            return Err(PathError::NotUtf8);
        }
        match decoded {
            // RFC 3986 §5.2.4 step 2B, and merge_slashes for empty segments.
            // Either way the '/' already written stays as the trailing slash.
            b"" | b"." => {}
            // Step 2C: drop the last output segment, never above the root.
            b".." => {
                if w <= 1 {
                    return Err(PathError::AboveRoot);
                }
                let before = crate::http::bytes::within(out, ..w - 1);
                w = memrchr(b'/', before).map_or(1, |i| i + 1);
            }
            _ => {
                w += n;
                if !last {
                    // A '/' followed this segment in `raw`, so there is room.
                    *out.get_mut(w).ok_or(PathError::OutputTooSmall)? = b'/';
                    w += 1;
                }
            }
        }
    }
    let path = out.get(..w).ok_or(PathError::OutputTooSmall)?;
    std::str::from_utf8(path).map_err(|_| PathError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::xorshift;

    fn norm(raw: &[u8]) -> Result<String, PathError> {
        let mut out = vec![0u8; raw.len()];
        normalize(raw, &mut out).map(str::to_owned)
    }

    #[test]
    fn table() {
        use PathError::*;
        let cases: &[(&str, &[u8], Result<&str, PathError>)] = &[
            ("root", b"/", Ok("/")),
            ("plain", b"/a/b.html", Ok("/a/b.html")),
            ("trailing slash kept", b"/a/b/", Ok("/a/b/")),
            ("dot", b"/./", Ok("/")),
            ("dot alone", b"/.", Ok("/")),
            ("dot in middle", b"/a/./b", Ok("/a/b")),
            ("trailing dot", b"/a/b/.", Ok("/a/b/")),
            ("trailing dotdot", b"/a/..", Ok("/")),
            ("dotdot keeps slash", b"/a/b/..", Ok("/a/")),
            ("dotdot then slash", b"/a/b/../", Ok("/a/")),
            ("dotdot middle", b"/a/b/../c", Ok("/a/c")),
            ("merge slashes", b"//a///b", Ok("/a/b")),
            ("merge slashes trailing", b"/a//", Ok("/a/")),
            ("only slashes", b"////", Ok("/")),
            ("dotdot after merge", b"/a//..//b", Ok("/b")),
            ("three dots is a name", b"/.../a", Ok("/.../a")),
            ("dot prefix is a name", b"/.a/..b/b..", Ok("/.a/..b/b..")),
            ("decoded", b"/a%20b/%41", Ok("/a b/A")),
            ("decoded percent once", b"/%2541", Ok("/%41")),
            ("utf8", b"/caf%C3%A9", Ok("/caf\u{e9}")),
            ("encoded dots", b"/a/%2e%2e/b", Ok("/b")),
            ("mixed encoded dots", b"/a/.%2E/b", Ok("/b")),
            ("encoded dot", b"/a/%2e/b", Ok("/a/b")),
            ("rule 28 above root", b"/../a", Err(AboveRoot)),
            ("rule 28 above root later", b"/a/../../b", Err(AboveRoot)),
            ("rule 28 dotdot alone", b"/..", Err(AboveRoot)),
            ("rule 28 encoded dotdot", b"/%2e%2e/", Err(AboveRoot)),
            (
                "rule 28 encoded dotdot upper",
                b"/%2E%2E/etc",
                Err(AboveRoot),
            ),
            ("rule 28 encoded slash", b"/%2E%2E%2Fetc", Err(EncodedSlash)),
            ("rule 28 encoded slash lower", b"/a%2fb", Err(EncodedSlash)),
            ("rule 28 nul", b"/a%00b", Err(ControlByte)),
            ("control", b"/a%0Ab", Err(ControlByte)),
            ("del", b"/a%7F", Err(ControlByte)),
            ("overlong dot", b"/%c0%ae%c0%ae/etc", Err(NotUtf8)),
            ("overlong slash", b"/a%c0%afb", Err(NotUtf8)),
            ("bad utf8 removed later", b"/%ff/..", Err(NotUtf8)),
            ("truncated utf8", b"/caf%C3", Err(NotUtf8)),
            ("bad escape", b"/a%zz", Err(BadEscape)),
            ("short escape", b"/a%4", Err(BadEscape)),
            ("bare percent", b"/a%", Err(BadEscape)),
            ("raw space", b"/a b", Err(BadByte)),
            ("raw nul", b"/a\0b", Err(BadByte)),
            ("raw non-ascii", b"/caf\xc3\xa9", Err(BadByte)),
            ("relative", b"a/b", Err(NotAbsolute)),
            ("empty", b"", Err(NotAbsolute)),
            ("star", b"*", Err(NotAbsolute)),
        ];
        for (name, raw, want) in cases {
            let got = norm(raw);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{name}");
            if let Err(e) = got {
                assert_eq!(e.status(), 400);
            }
        }
    }

    #[test]
    fn a_short_output_buffer_is_an_error_not_a_panic() {
        let mut out = [0u8; 2];
        assert_eq!(normalize(b"/abc", &mut out), Err(PathError::OutputTooSmall));
        let mut out = [0u8; 4];
        assert_eq!(normalize(b"/abc", &mut out), Ok("/abc"));
    }

    /// The properties every accepted path has, whatever the input.
    fn check_invariants(raw: &[u8], got: &str) {
        let ctx = String::from_utf8_lossy(raw);
        assert!(got.starts_with('/'), "{ctx} -> {got}");
        assert!(got.len() <= raw.len(), "{ctx} -> {got}");
        assert!(!got.contains("//"), "{ctx} -> {got}");
        for seg in got.split('/') {
            assert!(seg != "." && seg != "..", "{ctx} -> {got}");
        }
        assert!(
            !got.bytes().any(|b| b < 0x20 || b == 0x7F),
            "{ctx} -> {got}"
        );
        // Normalising again (after re-encoding '%') changes nothing.
        if got.bytes().all(|b| b.is_ascii_graphic()) {
            let again: Vec<u8> = got
                .bytes()
                .flat_map(|b| if b == b'%' { b"%25".to_vec() } else { vec![b] })
                .collect();
            assert_eq!(norm(&again).as_deref(), Ok(got), "{ctx}");
        }
    }

    /// A plain model of the same rules: a stack of decoded segments.
    fn model(raw: &[u8]) -> Option<String> {
        let rest = raw.strip_prefix(b"/")?;
        let mut stack: Vec<String> = Vec::new();
        let mut trailing = true;
        for seg in rest.split(|&b| b == b'/') {
            let mut dec = Vec::new();
            let mut i = 0;
            while i < seg.len() {
                if seg[i] == b'%' {
                    let hex = std::str::from_utf8(seg.get(i + 1..i + 3)?).ok()?;
                    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return None;
                    }
                    dec.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 3;
                } else if (0x21..0x7F).contains(&seg[i]) {
                    dec.push(seg[i]);
                    i += 1;
                } else {
                    return None;
                }
            }
            if dec.iter().any(|&c| c == b'/' || c < 0x20 || c == 0x7F) {
                return None;
            }
            let dec = String::from_utf8(dec).ok()?;
            trailing = true;
            match dec.as_str() {
                "" | "." => {}
                ".." => {
                    stack.pop()?;
                }
                _ => {
                    stack.push(dec);
                    trailing = false;
                }
            }
        }
        let mut out = String::from("/");
        out.push_str(&stack.join("/"));
        if trailing && !stack.is_empty() {
            out.push('/');
        }
        Some(out)
    }

    #[test]
    fn fuzz_random_and_mutated_paths() {
        let pieces: [&[u8]; 14] = [
            b"/", b"//", b".", b"..", b"%2e", b"%2E%2e", b"%2f", b"%00", b"a", b"%c3%a9",
            b"%c0%ae", b"%", b"%4", b"b.c",
        ];
        let mut s = 0x1234_5678_9ABC_DEF1;
        for i in 0..20_000 {
            let mut raw = vec![b'/'];
            let n = xorshift(&mut s) % 12;
            for _ in 0..n {
                if i % 4 == 0 {
                    raw.push((xorshift(&mut s) % 256) as u8);
                } else {
                    raw.extend_from_slice(pieces[(xorshift(&mut s) as usize) % pieces.len()]);
                }
            }
            let got = norm(&raw);
            assert_eq!(
                got.clone().ok(),
                model(&raw),
                "{}",
                String::from_utf8_lossy(&raw)
            );
            if let Ok(got) = got {
                check_invariants(&raw, &got);
            }
        }
    }
}
