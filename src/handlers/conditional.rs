//! What a static file's 200 becomes once the request's preconditions and
//! `Range` are read (RFC 9110 §13.2.2 order: `If-None-Match`, else
//! `If-Modified-Since` → 304; then `Range`, unless `If-Range` names another
//! validator → 206, a multipart 206 (`byteranges`) or 416), with the
//! route's `expires` headers. `max_ranges 0` turns ranges off, as in nginx:
//! no `Accept-Ranges`, and `Range` is ignored.
//!
//! Only replies that carry an `ETag` are touched: those are regular files
//! answering a GET or HEAD (never listings, redirects, error pages, CGI or
//! uploads). HEAD gets the head GET would get (HTTP.md rules 23, 26).

use std::borrow::Cow;

use super::{Body, Ctx, Reply, byteranges, error_page};
use crate::config::Location;
use crate::http::Request;
use crate::http::range::{self, ContentRange, Range};
use crate::http::validators::{if_range_matches, none_match, not_modified_since};

/// Apply preconditions, `Range` and `expires` to a static reply `r`.
pub(super) fn finish<'c>(
    ctx: &mut Ctx<'c>,
    req: &Request<'_>,
    loc: &'c Location,
    mut r: Reply<'c>,
) -> Reply<'c> {
    let Some(etag) = r.etag.filter(|_| r.status == 200) else {
        return r;
    };
    if let Some(d) = loc.expires {
        let secs = d.as_secs();
        r.expires = Some((
            secs,
            ctx.now
                .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
        ));
    }
    // §13.1.3: If-Modified-Since is ignored when If-None-Match is present.
    let not_modified = match req.header("if-none-match") {
        Some(v) => none_match(v, etag),
        None => req
            .header("if-modified-since")
            .is_some_and(|v| not_modified_since(v, etag.mtime)),
    };
    if loc.max_ranges == Some(0) {
        r.accept_ranges = false;
    }
    if not_modified {
        // §15.4.5: no body; the validators and cache headers stay, as in
        // nginx's not_modified filter (which drops the type and ranges).
        r.status = 304;
        r.body = Body::Empty;
        r.content_type = None;
        r.accept_ranges = false;
        return r;
    }
    let Some(value) = req.header("range").filter(|_| r.accept_ranges) else {
        return r;
    };
    if req
        .header("if-range")
        .is_some_and(|v| !if_range_matches(v, etag))
    {
        return r;
    }
    let total = r.body.len();
    match range::parse(value, total, loc.max_ranges.unwrap_or(u64::MAX)) {
        Range::Whole => r,
        Range::Part { start, len } => {
            let Some(body) = std::mem::replace(&mut r.body, Body::Empty).slice(start, len) else {
                return error_page::reply(ctx, 500, loc);
            };
            r.body = body;
            r.status = 206;
            r.content_range = Some(ContentRange::Part {
                first: start,
                last: start + len - 1,
                len: total,
            });
            r
        }
        Range::Several(ranges) => {
            let source = std::mem::replace(&mut r.body, Body::Empty);
            let random = || {
                let mut b = [0u8; 16];
                crate::sys::random_bytes(&mut b).ok().map(|()| b)
            };
            match byteranges::build(source, &ranges, r.content_type.as_deref(), random) {
                Ok((body, boundary)) => {
                    r.body = body;
                    r.status = 206;
                    r.content_type = Some(Cow::Owned(range::multipart_type(&boundary)));
                }
                // No boundary to be had: the whole file (§14.2 allows it).
                Err(source) => r.body = source,
            }
            r
        }
        Range::Unsatisfiable => {
            let mut e = error_page::reply(ctx, 416, loc);
            e.content_range = Some(ContentRange::Unsatisfied { len: total });
            e
        }
    }
}
