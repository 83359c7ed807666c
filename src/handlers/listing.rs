//! The `autoindex` page: an HTML5 listing of one folder. Folders come first,
//! then everything else, each sorted by name in byte order; names starting
//! with `.` are left out, as nginx does. Every name is HTML-escaped where it
//! is shown and percent-encoded (all but RFC 3986 unreserved bytes) in its
//! link, so any name, `a&b <c>.txt`, `x"y`, `%`, `#`, `?` or non-ASCII,
//! leads back to itself when clicked.

use std::fmt::Write;

use super::encode;
use crate::sys::{DirEntry, FileKind};

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Index of "#;

const STYLE: &str = r#"</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;max-width:60rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.35rem;font-weight:600;margin:0 0 1rem;padding-bottom:.5rem;border-bottom:1px solid #d0d7de;word-break:break-all}
table{width:100%;border-collapse:collapse}
th,td{padding:.3rem .75rem;text-align:left}
th{font-weight:600;border-bottom:1px solid #d0d7de}
td{border-bottom:1px solid #eef1f4}
tr:hover td{background:#f6f8fa}
td:first-child{word-break:break-all}
.m,.s{white-space:nowrap;font-variant-numeric:tabular-nums;color:#59636e}
.s{text-align:right}
a{color:#0969da;text-decoration:none}
a:hover{text-decoration:underline}
</style>
</head>
<body>
<h1>Index of "#;

const TABLE: &str = r#"</h1>
<table>
<thead><tr><th>Name</th><th class="m">Last modified</th><th class="s">Size</th></tr></thead>
<tbody>
"#;

const TAIL: &str = "</tbody>\n</table>\n</body>\n</html>\n";

/// The listing page of the folder at `path` (decoded, ending in `/`).
pub(super) fn render(path: &str, mut entries: Vec<DirEntry>) -> Vec<u8> {
    // Dot names hidden, as nginx does: this also keeps the temporary file
    // of an upload in progress (`.upload-*.part`) out of every listing.
    entries.retain(|e| !e.name.starts_with(b"."));
    // Folders first, then by name (byte order).
    entries.sort_by(|a, b| {
        let da = a.meta.kind != FileKind::Directory;
        let db = b.meta.kind != FileKind::Directory;
        da.cmp(&db).then_with(|| a.name.cmp(&b.name))
    });

    let mut out = String::with_capacity(1024 + entries.len() * 160);
    out.push_str(HEAD);
    encode::html(&mut out, path);
    out.push_str(STYLE);
    encode::html(&mut out, path);
    out.push_str(TABLE);
    if path != "/" {
        out.push_str(
            "<tr><td><a href=\"../\">../</a></td><td class=\"m\"></td><td class=\"s\">-</td></tr>\n",
        );
    }
    for e in &entries {
        let dir = e.meta.kind == FileKind::Directory;
        let name = String::from_utf8_lossy(&e.name);
        out.push_str("<tr><td><a href=\"");
        encode::href(&mut out, &e.name);
        if dir {
            out.push('/');
        }
        out.push_str("\">");
        encode::html(&mut out, &name);
        if dir {
            out.push('/');
        }
        out.push_str("</a></td><td class=\"m\">");
        push_time(&mut out, e.meta.mtime);
        out.push_str("</td><td class=\"s\"");
        if dir {
            out.push_str(">-");
        } else {
            let unit = if e.meta.size == 1 { "byte" } else { "bytes" };
            let _ = write!(out, " title=\"{} {unit}\">", e.meta.size);
            push_size(&mut out, e.meta.size);
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str(TAIL);
    out.into_bytes()
}

/// `YYYY-MM-DD HH:MM` in UTC.
fn push_time(out: &mut String, t: i64) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    );
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A size as nginx's `autoindex_exact_size off` shows it: bytes up to 9999,
/// then K, M or G rounded to the nearest unit.
fn push_size(out: &mut String, size: u64) {
    const K: u64 = 1024;
    let (unit, scale) = if size >= K * K * K {
        (K * K * K, "G")
    } else if size >= K * K {
        (K * K, "M")
    } else if size > 9999 {
        (K, "K")
    } else {
        let _ = write!(out, "{size}");
        return;
    };
    let mut n = size / unit;
    if size % unit >= unit / 2 {
        n += 1;
    }
    let _ = write!(out, "{n}{scale}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Meta;

    fn entry(name: &str, kind: FileKind, size: u64, mtime: i64) -> DirEntry {
        DirEntry {
            name: name.as_bytes().to_vec(),
            meta: Meta {
                kind,
                size,
                mtime,
                ino: 1,
            },
        }
    }

    #[test]
    fn dates() {
        let cases = [
            (0, "1970-01-01 00:00"),
            (951_782_400, "2000-02-29 00:00"),
            (1_795_642_200, "2026-11-25 21:30"),
            (-60, "1969-12-31 23:59"),
        ];
        for (t, want) in cases {
            let mut s = String::new();
            push_time(&mut s, t);
            assert_eq!(s, want, "{t}");
        }
    }

    #[test]
    fn sizes() {
        let cases = [
            (0, "0"),
            (9999, "9999"),
            (10_000, "10K"),
            (10_752, "11K"),
            (1024 * 1024, "1M"),
            (3 * 1024 * 1024 * 1024 + 1, "3G"),
        ];
        for (n, want) in cases {
            let mut s = String::new();
            push_size(&mut s, n);
            assert_eq!(s, want, "{n}");
        }
    }

    #[test]
    fn orders_escapes_and_links() {
        let page = render(
            "/a <b>/",
            vec![
                entry("b.txt", FileKind::Regular, 5, 0),
                entry("zdir", FileKind::Directory, 0, 0),
                entry("a&b <c>.txt", FileKind::Regular, 1, 0),
                entry("adir", FileKind::Directory, 0, 0),
                entry(".hidden", FileKind::Regular, 1, 0),
                entry("x\"y", FileKind::Regular, 1, 0),
            ],
        );
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains("<title>Index of /a &lt;b&gt;/</title>"));
        assert!(page.contains("<a href=\"../\">../</a>"));
        assert!(!page.contains("hidden"));
        let pos = |s: &str| page.find(s).unwrap();
        assert!(pos("href=\"adir/\">adir/<") < pos("href=\"zdir/\">zdir/<"));
        assert!(pos("zdir/") < pos("href=\"a%26b%20%3Cc%3E.txt\">a&amp;b &lt;c&gt;.txt<"));
        assert!(pos("a%26b") < pos("href=\"b.txt\""));
        assert!(pos("href=\"b.txt\"") < pos("href=\"x%22y\">x&quot;y<"));
        assert!(page.contains(">-</td>"));
        assert!(page.contains(" title=\"5 bytes\">5</td>"));
        let root = String::from_utf8(render("/", Vec::new())).unwrap();
        assert!(!root.contains("../"));
    }
}
