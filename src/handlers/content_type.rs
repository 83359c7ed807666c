//! The `Content-Type` of a served file: the `types` table looked up by the
//! file name's extension, with `; charset=utf-8` appended to textual types.
//! Common textual types map to `&'static` strings, so a static GET of an
//! HTML, CSS or JS file allocates nothing here.

use std::borrow::Cow;

use crate::config::MimeTypes;

/// The extension of the last segment of `name` (nginx: the text after the
/// last `.` that follows the last `/`), or `None` when there is no dot.
fn extension(name: &str) -> Option<&str> {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.rfind('.').and_then(|i| file.get(i + 1..))
}

/// The full `Content-Type` for a file called `name` (a path or a bare name).
pub(super) fn content_type<'c>(types: &'c MimeTypes, name: &str) -> Cow<'c, str> {
    // `lookup` matches case-insensitively, as nginx does.
    let ty = match extension(name) {
        Some(ext) if !ext.is_empty() => types.lookup(ext),
        _ => types.default_type.as_str(),
    };
    with_charset(ty)
}

/// Whether a type is text that the client should decode as UTF-8.
fn wants_charset(ty: &str) -> bool {
    let base = ty.split(';').next().unwrap_or(ty).trim();
    let textual = base
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("text/"))
        || [
            "application/javascript",
            "application/json",
            "image/svg+xml",
        ]
        .iter()
        .any(|t| base.eq_ignore_ascii_case(t));
    textual && !has_charset(ty)
}

/// Whether the type's parameters already name a charset.
fn has_charset(ty: &str) -> bool {
    ty.split(';').skip(1).any(|p| {
        p.trim_start()
            .get(..8)
            .is_some_and(|n| n.eq_ignore_ascii_case("charset="))
    })
}

/// `ty` with `; charset=utf-8` appended when it is textual and has none.
pub(super) fn with_charset(ty: &str) -> Cow<'_, str> {
    if !wants_charset(ty) {
        return Cow::Borrowed(ty);
    }
    let fixed = match ty {
        "text/html" => "text/html; charset=utf-8",
        "text/plain" => "text/plain; charset=utf-8",
        "text/css" => "text/css; charset=utf-8",
        "text/javascript" => "text/javascript; charset=utf-8",
        "text/xml" => "text/xml; charset=utf-8",
        "text/markdown" => "text/markdown; charset=utf-8",
        "text/csv" => "text/csv; charset=utf-8",
        "application/javascript" => "application/javascript; charset=utf-8",
        "application/json" => "application/json; charset=utf-8",
        "image/svg+xml" => "image/svg+xml; charset=utf-8",
        _ => return Cow::Owned(format!("{ty}; charset=utf-8")),
    };
    Cow::Borrowed(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_of_last_segment() {
        assert_eq!(extension("/a/b.html"), Some("html"));
        assert_eq!(extension("/a.d/b"), None);
        assert_eq!(extension("x.tar.gz"), Some("gz"));
        assert_eq!(extension("/a/.bashrc"), Some("bashrc"));
        assert_eq!(extension("/a/b."), Some(""));
    }

    #[test]
    fn charset_rules() {
        let cases = [
            ("text/html", "text/html; charset=utf-8"),
            ("text/x-rust", "text/x-rust; charset=utf-8"),
            (
                "application/javascript",
                "application/javascript; charset=utf-8",
            ),
            ("application/json", "application/json; charset=utf-8"),
            ("image/svg+xml", "image/svg+xml; charset=utf-8"),
            ("image/png", "image/png"),
            ("application/octet-stream", "application/octet-stream"),
            (
                "text/html; charset=iso-8859-1",
                "text/html; charset=iso-8859-1",
            ),
            ("text/plain;Charset=utf-8", "text/plain;Charset=utf-8"),
        ];
        for (ty, want) in cases {
            assert_eq!(with_charset(ty), want, "{ty}");
        }
    }
}
