//! Validators and content negotiation for static files: the `ETag` a file
//! gets (nginx's strong `"<mtime hex>-<size hex>"`), `If-None-Match`
//! (RFC 9110 §13.1.2, weak comparison), `If-Modified-Since` (§13.1.3),
//! `If-Range` (§13.1.5, strong comparison) and which precompressed sibling
//! `Accept-Encoding` (§12.5.3) chooses among those a route enables
//! (`brotli_static`, `zstd_static`, `gzip_static`).

use arrayvec::ArrayString;

use super::bytes::{list_elements, trim_ows};
use super::date::parse_http_date;
use super::response::hex_into;

/// A file's entity tag, from what `fstat` says of it, and the coding of
/// the precompressed sibling it was sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ETag {
    pub mtime: i64,
    pub size: u64,
    /// `None` for the file itself.
    pub coding: Option<Coding>,
}

/// `"` + 16 + `-` + 16 + `-zstd` + `"`.
pub type ETagText = ArrayString<48>;

impl ETag {
    /// The quoted tag as sent, e.g. `"5f1c2a3b-1a4"` (nginx's format; the
    /// mtime is printed as its two's complement, as nginx's cast does). A
    /// precompressed sibling's tag ends in `-` and its coding
    /// (`"5f1c2a3b-9c-br"`), so two representations never share a tag even
    /// when their files have the same size and mtime (and a tag with two
    /// dashes is never a plain file's).
    pub fn text(self) -> ETagText {
        let mut bytes = arrayvec::ArrayVec::<u8, 48>::new();
        let _ = bytes.try_push(b'"');
        hex_into(self.mtime as u64, &mut bytes);
        let _ = bytes.try_push(b'-');
        hex_into(self.size, &mut bytes);
        if let Some(c) = self.coding {
            let _ = bytes.try_push(b'-');
            let _ = bytes.try_extend_from_slice(c.name().as_bytes());
        }
        let _ = bytes.try_push(b'"');
        let mut s = ETagText::new();
        // Only ASCII was written, and 48 bytes hold the longest form.
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = s.try_push_str(text);
        }
        s
    }
}

/// One entity-tag at the start of `s` (after OWS): whether it is weak, its
/// opaque-tag with the quotes, and the rest. `None` if `s` does not start
/// with one (RFC 9110 §8.8.3).
fn entity_tag(s: &[u8]) -> Option<(bool, &[u8], &[u8])> {
    let (weak, s) = match s.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if s.first() != Some(&b'"') {
        return None;
    }
    // etagc may hold a comma: find the closing quote, not the next comma.
    let close = s.iter().skip(1).position(|&b| b == b'"')? + 2;
    let (tag, rest) = s.split_at_checked(close)?;
    Some((weak, tag, rest))
}

/// `If-None-Match` against the current tag: true when `*` or any listed tag
/// matches by weak comparison (the answer is then 304 for GET/HEAD). A
/// malformed list matches nothing from the point it breaks.
pub fn none_match(value: &[u8], etag: ETag) -> bool {
    let value = trim_ows(value);
    if value == b"*" {
        return true;
    }
    let current = etag.text();
    let mut rest = value;
    loop {
        rest = trim_ows(rest);
        while let Some(r) = rest.strip_prefix(b",") {
            rest = trim_ows(r);
        }
        if rest.is_empty() {
            return false;
        }
        let Some((_weak, tag, r)) = entity_tag(rest) else {
            return false;
        };
        if tag == current.as_bytes() {
            return true;
        }
        rest = r;
    }
}

/// `If-Modified-Since`: true when the file is not newer than the date (the
/// answer is then 304). An unparsable date is ignored (§13.1.3).
pub fn not_modified_since(value: &[u8], mtime: i64) -> bool {
    parse_http_date(trim_ows(value)).is_some_and(|since| mtime <= since)
}

/// `If-Range`: true when the validator given is the current one, so the
/// range may be served. An entity-tag matches by strong comparison (a weak
/// one never does); a date must equal `Last-Modified` exactly (§13.1.5).
pub fn if_range_matches(value: &[u8], etag: ETag) -> bool {
    let value = trim_ows(value);
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        return match entity_tag(value) {
            Some((false, tag, rest)) => rest.is_empty() && tag == etag.text().as_bytes(),
            _ => false,
        };
    }
    parse_http_date(value) == Some(etag.mtime)
}

/// A qvalue in thousandths (`q=0.5` → 500); `None` when malformed.
fn qvalue(s: &[u8]) -> Option<u16> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (s.get(..i)?, s.get(i + 1..)?),
        None => (s, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// A content coding a precompressed sibling file may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Br,
    Zstd,
    Gzip,
}

impl Coding {
    /// Every coding, in the order that wins a tie of q-values (CONFIG.md:
    /// br, then zstd, then gzip).
    pub const ALL: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// The coding's name in `Accept-Encoding` and `Content-Encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The suffix of the sibling file (`FILE.br`, `FILE.zst`, `FILE.gz`).
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Br => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }

    /// Whether `token` names this coding (case-insensitive; `x-gzip` is
    /// gzip, RFC 9110 §8.4.1.3).
    fn named(self, token: &[u8]) -> bool {
        token.eq_ignore_ascii_case(self.name().as_bytes())
            || (self == Coding::Gzip && token.eq_ignore_ascii_case(b"x-gzip"))
    }
}

/// The codings a route serves precompressed siblings for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enabled {
    pub br: bool,
    pub zstd: bool,
    pub gzip: bool,
}

impl Enabled {
    /// Whether `c` is enabled.
    pub fn has(self, c: Coding) -> bool {
        match c {
            Coding::Br => self.br,
            Coding::Zstd => self.zstd,
            Coding::Gzip => self.gzip,
        }
    }

    /// Whether any coding is enabled (the route's file answers say
    /// `Vary: Accept-Encoding`).
    pub fn any(self) -> bool {
        self.br || self.zstd || self.gzip
    }
}

/// The codings to try, best first: the sibling of the first one that
/// exists is sent, the file itself when none does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Preference {
    order: [Option<Coding>; 3],
}

impl Preference {
    /// The codings in the order to try.
    pub fn iter(self) -> impl Iterator<Item = Coding> {
        self.order.into_iter().flatten()
    }
}

/// Which of the `enabled` codings an `Accept-Encoding` value accepts, best
/// first (RFC 9110 §12.5.3): each coding's q-value is the highest given for
/// its name, else that of `*`, else it is not acceptable; `q=0` refuses it
/// (even beside `*`); a malformed qvalue counts as 0. Higher q first; ties
/// in CONFIG.md's order (br, zstd, gzip). Identity is never listed: it is
/// what is left when no sibling of these exists.
pub fn negotiate(value: &[u8], enabled: Enabled) -> Preference {
    if !enabled.any() {
        return Preference::default();
    }
    let mut named: [Option<u16>; 3] = [None; 3];
    let mut star: Option<u16> = None;
    for elem in list_elements(value).filter(|e| !e.is_empty()) {
        let mut parts = elem.split(|&b| b == b';');
        let coding = trim_ows(parts.next().unwrap_or(&[]));
        let mut q = 1000;
        for p in parts {
            let p = trim_ows(p);
            if let Some((k, v)) = p.split_at_checked(2)
                && k.eq_ignore_ascii_case(b"q=")
            {
                q = qvalue(v).unwrap_or(0);
            }
        }
        if coding == b"*" {
            star = Some(star.map_or(q, |s| s.max(q)));
        }
        for (slot, c) in named.iter_mut().zip(Coding::ALL) {
            if c.named(coding) {
                *slot = Some(slot.map_or(q, |s| s.max(q)));
            }
        }
    }
    let mut ranked: arrayvec::ArrayVec<(u16, usize, Coding), 3> = arrayvec::ArrayVec::new();
    for (i, (q, c)) in named.into_iter().zip(Coding::ALL).enumerate() {
        if let Some(q) = q.or(star).filter(|&q| q > 0)
            && enabled.has(c)
        {
            ranked.push((q, i, c));
        }
    }
    // Highest q first, then the tie order (the index in `Coding::ALL`).
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut p = Preference::default();
    for (slot, (_, _, c)) in p.order.iter_mut().zip(ranked) {
        *slot = Some(c);
    }
    p
}

/// Whether an `Accept-Encoding` value accepts gzip (RFC 9110 §12.5.3):
/// `gzip` (or `x-gzip`) with q > 0, or, when gzip is not named, `*` with
/// q > 0. `gzip;q=0` refuses it even beside `*`; a malformed qvalue counts
/// as 0.
pub fn accepts_gzip(value: &[u8]) -> bool {
    let gzip = Enabled {
        gzip: true,
        ..Enabled::default()
    };
    negotiate(value, gzip).iter().next() == Some(Coding::Gzip)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: ETag = ETag {
        mtime: 0x5f1c_2a3b,
        size: 0x1a4,
        coding: None,
    };
    /// Sat, 25 Jul 2020 12:48:59 GMT
    const MTIME_DATE: &str = "Sat, 25 Jul 2020 12:48:59 GMT";

    #[test]
    fn etag_text() {
        assert_eq!(TAG.text().as_str(), "\"5f1c2a3b-1a4\"");
        assert_eq!(
            ETag {
                mtime: 0,
                size: 0,
                coding: None
            }
            .text()
            .as_str(),
            "\"0-0\""
        );
        let max = ETag {
            mtime: -1,
            size: u64::MAX,
            coding: None,
        };
        assert_eq!(max.text().as_str(), "\"ffffffffffffffff-ffffffffffffffff\"");
        let longest = ETag {
            coding: Some(Coding::Zstd),
            ..max
        };
        assert_eq!(
            longest.text().as_str(),
            "\"ffffffffffffffff-ffffffffffffffff-zstd\""
        );
        for (c, text) in [
            (Coding::Br, "\"5f1c2a3b-1a4-br\""),
            (Coding::Zstd, "\"5f1c2a3b-1a4-zstd\""),
            (Coding::Gzip, "\"5f1c2a3b-1a4-gzip\""),
        ] {
            let tag = ETag {
                coding: Some(c),
                ..TAG
            };
            assert_eq!(tag.text().as_str(), text);
            // Each representation's tag is its own: none matches another's.
            assert!(!none_match(TAG.text().as_bytes(), tag));
            assert!(!if_range_matches(TAG.text().as_bytes(), tag));
            assert!(if_range_matches(text.as_bytes(), tag));
            assert!(!if_range_matches(text.as_bytes(), TAG));
        }
    }

    #[test]
    fn if_none_match_table() {
        let cases: &[(&str, bool)] = &[
            ("\"5f1c2a3b-1a4\"", true),
            ("W/\"5f1c2a3b-1a4\"", true),
            ("*", true),
            (" * ", true),
            ("\"x\", \"5f1c2a3b-1a4\"", true),
            ("\"a,b\", W/\"5f1c2a3b-1a4\"", true),
            (",,\"5f1c2a3b-1a4\",", true),
            ("\"5f1c2a3b-1a5\"", false),
            ("\"5f1c2a3b-1a4", false),
            ("5f1c2a3b-1a4", false),
            ("w/\"5f1c2a3b-1a4\"", false),
            ("\"x\" junk \"5f1c2a3b-1a4\"", false),
            ("", false),
            ("**", false),
        ];
        for (v, want) in cases {
            assert_eq!(none_match(v.as_bytes(), TAG), *want, "{v:?}");
        }
    }

    #[test]
    fn if_modified_since_table() {
        let cases: &[(&str, bool)] = &[
            (MTIME_DATE, true),
            ("Sat, 25 Jul 2020 12:49:00 GMT", true),
            ("Sat, 25 Jul 2020 12:48:58 GMT", false),
            ("Saturday, 25-Jul-20 12:48:59 GMT", true),
            ("Sat Jul 25 12:48:59 2020", true),
            ("yesterday", false),
            ("", false),
        ];
        for (v, want) in cases {
            assert_eq!(not_modified_since(v.as_bytes(), TAG.mtime), *want, "{v:?}");
        }
    }

    #[test]
    fn if_range_table() {
        let cases: &[(&str, bool)] = &[
            ("\"5f1c2a3b-1a4\"", true),
            (MTIME_DATE, true),
            ("W/\"5f1c2a3b-1a4\"", false),
            ("\"5f1c2a3b-1a5\"", false),
            ("\"5f1c2a3b-1a4\", \"x\"", false),
            ("Sat, 25 Jul 2020 12:49:00 GMT", false),
            ("Sat, 25 Jul 2020 12:48:58 GMT", false),
            ("*", false),
            ("", false),
        ];
        for (v, want) in cases {
            assert_eq!(if_range_matches(v.as_bytes(), TAG), *want, "{v:?}");
        }
    }

    #[test]
    fn accept_encoding_table() {
        let cases: &[(&str, bool)] = &[
            ("gzip", true),
            ("GZIP", true),
            ("x-gzip", true),
            ("gzip, deflate, br", true),
            ("br;q=1.0, gzip;q=0.8", true),
            ("gzip;q=0.001", true),
            ("gzip ; q=1", true),
            ("*", true),
            ("*;q=0.5", true),
            ("identity, *;q=0.1", true),
            ("gzip;q=0", false),
            ("gzip;q=0.000", false),
            ("gzip;q=0, *", false),
            ("*;q=0", false),
            ("gzip;q=2", false),
            ("gzip;q=1.5", false),
            ("gzip;q=0.5555", false),
            ("gzipx", false),
            ("deflate, br", false),
            ("identity", false),
            ("", false),
            ("gzip;q=0, gzip", true),
        ];
        for (v, want) in cases {
            assert_eq!(accepts_gzip(v.as_bytes()), *want, "{v:?}");
        }
    }

    #[test]
    fn negotiation_table() {
        use Coding::*;
        let all = Enabled {
            br: true,
            zstd: true,
            gzip: true,
        };
        let only = |br, zstd, gzip| Enabled { br, zstd, gzip };
        let cases: &[(&str, Enabled, &[Coding])] = &[
            // Ties (all q=1) go br, zstd, gzip, whatever the order written.
            ("gzip, zstd, br", all, &[Br, Zstd, Gzip]),
            ("br, gzip", all, &[Br, Gzip]),
            ("gzip, zstd", all, &[Zstd, Gzip]),
            ("gzip", all, &[Gzip]),
            ("x-gzip", all, &[Gzip]),
            ("BR, GZip", all, &[Br, Gzip]),
            // Higher q wins over the tie order.
            ("br;q=0.5, gzip", all, &[Gzip, Br]),
            ("br;q=0.5, zstd;q=0.8, gzip;q=0.9", all, &[Gzip, Zstd, Br]),
            ("br;q=0.9, zstd;q=0.9, gzip;q=1", all, &[Gzip, Br, Zstd]),
            ("gzip;q=0.001, zstd;q=0.002", all, &[Zstd, Gzip]),
            // q=0 refuses, even beside `*`.
            ("br;q=0, gzip", all, &[Gzip]),
            ("br;q=0, *", all, &[Zstd, Gzip]),
            ("*;q=0", all, &[]),
            ("*;q=0, zstd", all, &[Zstd]),
            ("gzip;q=0, br;q=0, zstd;q=0", all, &[]),
            ("br;q=0.000", all, &[]),
            // `*` stands for codings not named, with its q.
            ("*", all, &[Br, Zstd, Gzip]),
            ("*;q=0.5, gzip", all, &[Gzip, Br, Zstd]),
            ("gzip;q=0.2, *;q=0.5", all, &[Br, Zstd, Gzip]),
            // The highest of repeated names counts.
            ("gzip;q=0, gzip", all, &[Gzip]),
            ("br;q=0.1, br;q=0.9, gzip;q=0.5", all, &[Br, Gzip]),
            // Malformed qvalues count as 0.
            ("br;q=2, gzip", all, &[Gzip]),
            ("br;q=0.5555, zstd;q=x", all, &[]),
            ("br ; q=0.5 , gzip ; q=0.4", all, &[Br, Gzip]),
            // Identity and unknown codings are never listed.
            ("identity, deflate", all, &[]),
            ("", all, &[]),
            ("brotli, zst, gz", all, &[]),
            // Only the enabled codings.
            ("br, zstd, gzip", only(false, false, true), &[Gzip]),
            ("br, zstd, gzip", only(true, false, false), &[Br]),
            ("br;q=0.1, zstd;q=0.5", only(true, false, true), &[Br]),
            ("br, zstd, gzip", only(false, false, false), &[]),
            ("*", only(false, true, true), &[Zstd, Gzip]),
        ];
        for (v, enabled, want) in cases {
            let got: Vec<Coding> = negotiate(v.as_bytes(), *enabled).iter().collect();
            assert_eq!(got, *want, "{v:?} {enabled:?}");
        }
    }

    #[test]
    fn coding_names_and_suffixes() {
        assert_eq!(
            Coding::ALL.map(|c| (c.name(), c.suffix())),
            [("br", ".br"), ("zstd", ".zst"), ("gzip", ".gz")]
        );
    }

    #[test]
    fn qvalues() {
        assert_eq!(qvalue(b"1"), Some(1000));
        assert_eq!(qvalue(b"1.000"), Some(1000));
        assert_eq!(qvalue(b"0.5"), Some(500));
        assert_eq!(qvalue(b"0.05"), Some(50));
        assert_eq!(qvalue(b"0"), Some(0));
        assert_eq!(qvalue(b"0."), Some(0));
        assert_eq!(qvalue(b"1.001"), None);
        assert_eq!(qvalue(b".5"), None);
        assert_eq!(qvalue(b""), None);
    }
}
