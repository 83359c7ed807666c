//! The MIME table: extension → type, the built-in table and its lookup.
//!
//! Invariant: `MimeTypes::by_ext` is sorted by extension and extensions are
//! lowercase, so `lookup` is a binary search that never allocates. No
//! `charset` here: the static handler adds `; charset=utf-8` to text types.

use std::cmp::Ordering;

use super::MimeTypes;

/// nginx's `default_type` default.
pub(crate) const DEFAULT_TYPE: &str = "application/octet-stream";

/// The built-in table (nginx's `mime.types`, trimmed to what the web uses,
/// with current types for JavaScript, fonts and images).
const BUILTIN: &[(&str, &[&str])] = &[
    ("text/html", &["html", "htm", "shtml"]),
    ("text/css", &["css"]),
    ("text/javascript", &["js", "mjs"]),
    ("text/plain", &["txt", "text", "log"]),
    ("text/xml", &["xml"]),
    ("text/csv", &["csv"]),
    ("text/markdown", &["md", "markdown"]),
    ("text/calendar", &["ics"]),
    ("application/json", &["json", "map"]),
    ("application/ld+json", &["jsonld"]),
    ("application/manifest+json", &["webmanifest"]),
    ("application/xhtml+xml", &["xhtml"]),
    ("application/rss+xml", &["rss"]),
    ("application/atom+xml", &["atom"]),
    ("application/wasm", &["wasm"]),
    ("application/pdf", &["pdf"]),
    ("application/zip", &["zip"]),
    ("application/gzip", &["gz", "tgz"]),
    ("application/x-tar", &["tar"]),
    ("application/x-bzip2", &["bz2"]),
    ("application/x-xz", &["xz"]),
    ("application/zstd", &["zst"]),
    ("application/x-7z-compressed", &["7z"]),
    ("application/vnd.rar", &["rar"]),
    ("application/rtf", &["rtf"]),
    ("application/msword", &["doc"]),
    ("application/vnd.ms-excel", &["xls"]),
    ("application/vnd.ms-powerpoint", &["ppt"]),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        &["docx"],
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &["xlsx"],
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        &["pptx"],
    ),
    ("application/vnd.oasis.opendocument.text", &["odt"]),
    ("application/epub+zip", &["epub"]),
    ("application/java-archive", &["jar"]),
    (
        "application/octet-stream",
        &["bin", "exe", "dll", "iso", "img", "dmg", "deb", "rpm"],
    ),
    ("image/png", &["png"]),
    ("image/jpeg", &["jpg", "jpeg"]),
    ("image/gif", &["gif"]),
    ("image/webp", &["webp"]),
    ("image/avif", &["avif"]),
    ("image/svg+xml", &["svg", "svgz"]),
    ("image/x-icon", &["ico"]),
    ("image/bmp", &["bmp"]),
    ("image/tiff", &["tif", "tiff"]),
    ("image/apng", &["apng"]),
    ("font/woff", &["woff"]),
    ("font/woff2", &["woff2"]),
    ("font/ttf", &["ttf"]),
    ("font/otf", &["otf"]),
    ("audio/mpeg", &["mp3"]),
    ("audio/ogg", &["ogg", "oga", "opus"]),
    ("audio/wav", &["wav"]),
    ("audio/flac", &["flac"]),
    ("audio/mp4", &["m4a"]),
    ("audio/aac", &["aac"]),
    ("audio/midi", &["mid", "midi"]),
    ("audio/webm", &["weba"]),
    ("video/mp4", &["mp4", "m4v"]),
    ("video/webm", &["webm"]),
    ("video/ogg", &["ogv"]),
    ("video/mpeg", &["mpeg", "mpg"]),
    ("video/quicktime", &["mov"]),
    ("video/x-msvideo", &["avi"]),
    ("video/x-matroska", &["mkv"]),
    ("video/mp2t", &["ts"]),
];

/// Compares a table extension (lowercase) with `ext` lowercased, without allocating.
fn cmp_lower(table: &str, ext: &str) -> Ordering {
    table
        .bytes()
        .cmp(ext.bytes().map(|b| b.to_ascii_lowercase()))
}

impl MimeTypes {
    /// The built-in table, with `application/octet-stream` for anything else.
    pub fn builtin() -> MimeTypes {
        MimeTypes::from_pairs(
            BUILTIN
                .iter()
                .flat_map(|(ty, exts)| exts.iter().map(move |e| (e.to_string(), ty.to_string()))),
            DEFAULT_TYPE,
        )
    }

    /// A table from `(extension, type)` pairs (extensions are lowercased; a
    /// later pair wins over an earlier one for the same extension).
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        default_type: &str,
    ) -> MimeTypes {
        let mut by_ext: Vec<(String, String)> = Vec::new();
        for (ext, ty) in pairs {
            let ext = ext.to_ascii_lowercase();
            match by_ext.binary_search_by(|(e, _)| e.as_str().cmp(&ext)) {
                Ok(i) => {
                    if let Some(slot) = by_ext.get_mut(i) {
                        slot.1 = ty;
                    }
                }
                Err(i) => by_ext.insert(i, (ext, ty)),
            }
        }
        MimeTypes {
            by_ext,
            default_type: default_type.to_string(),
        }
    }

    /// The type for extension `ext` (without its dot; one leading dot is
    /// tolerated), matched case-insensitively; `default_type` when unknown.
    pub fn lookup(&self, ext: &str) -> &str {
        let ext = ext.strip_prefix('.').unwrap_or(ext);
        match self.by_ext.binary_search_by(|(e, _)| cmp_lower(e, ext)) {
            Ok(i) => self.by_ext.get(i).map_or(&self.default_type, |(_, t)| t),
            Err(_) => &self.default_type,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_required_entries() {
        let m = MimeTypes::builtin();
        let cases: &[(&str, &str)] = &[
            ("html", "text/html"),
            ("htm", "text/html"),
            ("css", "text/css"),
            ("js", "text/javascript"),
            ("mjs", "text/javascript"),
            ("json", "application/json"),
            ("txt", "text/plain"),
            ("xml", "text/xml"),
            ("svg", "image/svg+xml"),
            ("png", "image/png"),
            ("jpg", "image/jpeg"),
            ("jpeg", "image/jpeg"),
            ("gif", "image/gif"),
            ("webp", "image/webp"),
            ("avif", "image/avif"),
            ("ico", "image/x-icon"),
            ("wasm", "application/wasm"),
            ("woff", "font/woff"),
            ("woff2", "font/woff2"),
            ("pdf", "application/pdf"),
            ("mp4", "video/mp4"),
            ("webm", "video/webm"),
            ("mp3", "audio/mpeg"),
            ("zip", "application/zip"),
            ("gz", "application/gzip"),
            ("tar", "application/x-tar"),
            ("csv", "text/csv"),
            ("md", "text/markdown"),
            ("ogg", "audio/ogg"),
            ("wav", "audio/wav"),
        ];
        for (ext, ty) in cases {
            assert_eq!(m.lookup(ext), *ty, "{ext}");
        }
    }

    #[test]
    fn case_insensitive_and_default() {
        let m = MimeTypes::builtin();
        assert_eq!(m.lookup("HTML"), "text/html");
        assert_eq!(m.lookup("Png"), "image/png");
        assert_eq!(m.lookup(".css"), "text/css");
        assert_eq!(m.lookup("nope"), DEFAULT_TYPE);
        assert_eq!(m.lookup(""), DEFAULT_TYPE);
        assert_eq!(m.lookup("ht"), DEFAULT_TYPE);
        assert_eq!(m.lookup("htmlx"), DEFAULT_TYPE);
    }

    #[test]
    fn table_sorted_lowercase_unique() {
        let m = MimeTypes::builtin();
        assert!(m.by_ext.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(m.by_ext.iter().all(|(e, _)| e == &e.to_ascii_lowercase()));
        for (e, t) in &m.by_ext {
            assert_eq!(m.lookup(e), t);
        }
    }

    #[test]
    fn from_pairs_later_wins() {
        let m = MimeTypes::from_pairs(
            [
                ("X".to_string(), "a/a".to_string()),
                ("x".to_string(), "b/b".to_string()),
            ],
            "text/plain",
        );
        assert_eq!(m.lookup("x"), "b/b");
        assert_eq!(m.lookup("y"), "text/plain");
    }
}
