//! The `return CODE [URL|TEXT]` directive: a redirect with `Location`, or a
//! fixed answer. Decided right after the location, before the method check
//! (CONFIG.md, "Order of decisions").

use std::borrow::Cow;

use super::{Body, Ctx, Reply, encode, error_page};
use crate::config::{Location, Return};

/// `Content-Type` of a `return` text.
const TEXT: &str = "text/plain; charset=utf-8";

/// Whether `code` is a redirect that carries `Location` (HTTP.md rule 24).
fn is_redirect(code: u16) -> bool {
    matches!(code, 301 | 302 | 303 | 307 | 308)
}

/// The reply for the route's `return`.
pub(super) fn reply<'c>(ctx: &mut Ctx<'c>, ret: &'c Return, loc: &'c Location) -> Reply<'c> {
    let code = ret.code;
    let mut r = if is_redirect(code) {
        // The built-in page gives clients that ignore `Location` a body, as
        // nginx does.
        let mut r = error_page::builtin(code);
        r.location = ret.text.as_deref().map(encode::url);
        r
    } else {
        match ret.text.as_deref() {
            // 1xx, 204 and 304 never carry a body (HTTP.md rule 22).
            Some(text) if code >= 200 && code != 204 && code != 304 => {
                let mut r = Reply::status(code);
                r.content_type = Some(Cow::Borrowed(TEXT));
                // `Body` has no lifetime, so the text is copied.
                r.body = Body::Bytes(text.as_bytes().to_vec());
                r
            }
            // nginx: `return 404;` without text sends the error page.
            None if code >= 400 => return error_page::reply(ctx, code, loc),
            _ => Reply::status(code),
        }
    };
    r.headers = &loc.add_headers;
    r.close = error_page::closes(code);
    r
}
