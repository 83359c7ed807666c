//! Several ranges (`multipart/byteranges`, merging, `max_ranges`,
//! `If-Range`, HEAD) and precompressed siblings chosen by `Accept-Encoding`
//! q-values (`brotli_static`, `zstd_static`, `gzip_static`, one `Vary`),
//! against the real binary (HTTP.md rule 26, CONFIG.md "More directives").
//! Multipart answers are split on their boundary and checked byte for byte
//! against the file, by our raw client and by `curl -r`.

use std::process::Command;

use crate::common::*;

/// Beyond the open-file cache's in-memory limit: sent with sendfile.
const BIG_LEN: usize = 300_000;
/// Held in memory by the open-file cache: sent with writev.
const SMALL_LEN: usize = 1_000;
/// Several sendfile chunks and turns per part.
const HUGE_LEN: usize = 3 << 20;

const CONFIG: &str = "
server {
    listen 127.0.0.1:$P0;
    root $DIR/www;
    location /enc/ { brotli_static on; zstd_static on; gzip_static on; }
    location /gzonly/ { gzip_static on; }
    location /two/ { max_ranges 2; }
    location /none/ { max_ranges 0; }
}
";

fn data(len: usize, seed: u64) -> Vec<u8> {
    XorShift::new(seed).bytes(len)
}

fn site() -> Server {
    let dir = TempDir::new("ranges-encodings");
    dir.write("www/big.bin", data(BIG_LEN, 1));
    dir.write("www/small.txt", data(SMALL_LEN, 2));
    dir.write("www/huge.bin", data(HUGE_LEN, 3));
    dir.write("www/two/big.bin", data(BIG_LEN, 1));
    dir.write("www/none/small.txt", data(SMALL_LEN, 2));
    // Every sibling of app.js, each with its own bytes.
    dir.write("www/enc/app.js", "plain app.js\n");
    dir.write("www/enc/app.js.br", "BR bytes of app.js");
    dir.write("www/enc/app.js.zst", "ZSTD bytes of app.js!");
    dir.write("www/enc/app.js.gz", "GZIP bytes of app.js!!");
    // Only some siblings.
    dir.write("www/enc/gz.js", "plain gz.js\n");
    dir.write("www/enc/gz.js.gz", "GZIP bytes of gz.js");
    dir.write("www/enc/brzst.js", "plain brzst.js\n");
    dir.write("www/enc/brzst.js.br", "BR bytes of brzst.js");
    dir.write("www/enc/brzst.js.zst", "ZSTD bytes of brzst.js");
    dir.write("www/enc/none.js", "plain none.js\n");
    dir.mkdir("www/enc/sub");
    // Four files of one size and one mtime: only the coding tells their
    // tags apart.
    for name in ["same.js", "same.js.br", "same.js.zst", "same.js.gz"] {
        let p = dir.write(&format!("www/enc/{name}"), format!("{name:<12}"));
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000))
            .unwrap();
    }
    // A sibling alone, without the plain file.
    dir.write("www/enc/only.js.zst", "ZSTD bytes of only.js");
    // A large sibling: ranges of it go out with sendfile.
    dir.write("www/enc/big.css", data(BIG_LEN, 4));
    dir.write("www/enc/big.css.br", data(BIG_LEN / 2, 5));
    // gzip_static alone ignores br and zstd siblings.
    dir.write("www/gzonly/a.js", "plain a.js\n");
    dir.write("www/gzonly/a.js.br", "BR bytes of a.js");
    dir.write("www/gzonly/a.js.gz", "GZIP bytes of a.js");
    Server::start(dir, CONFIG)
}

fn get(srv: &Server, path: &str, extra: &str) -> Response {
    srv.raw(&format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"
    ))
}

fn head(srv: &Server, path: &str, extra: &str) -> Response {
    srv.raw(&format!(
        "HEAD {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"
    ))
}

fn range(r: &str) -> String {
    format!("Range: bytes={r}\r\n")
}

/// The boundary of a multipart answer, from its `Content-Type`.
fn boundary_of(r: &Response) -> String {
    let ct = r.must_header("Content-Type");
    let b = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("not multipart: {ct}"));
    assert!(!b.is_empty() && b.len() <= 70, "{b:?}");
    b.to_string()
}

/// One part of a multipart body: its header lines and its bytes.
#[derive(Debug)]
struct Part {
    headers: Vec<(String, String)>,
    bytes: Vec<u8>,
}

impl Part {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Split a multipart body as RFC 2046 §5.1.1 reads it: every delimiter is
/// CRLF "--" boundary (the first may lack the CRLF), the last is followed
/// by "--". Fails the test on anything else.
fn split_parts(body: &[u8], boundary: &str) -> Vec<Part> {
    let delim = format!("\r\n--{boundary}");
    let d = delim.as_bytes();
    let mut at = Vec::new();
    let mut i = 0;
    while let Some(p) = find(&body[i..], d) {
        at.push(i + p);
        i += p + d.len();
    }
    assert_eq!(at.first(), Some(&0), "body does not start with a delimiter");
    let last = *at.last().unwrap();
    assert_eq!(
        &body[last + d.len()..],
        b"--\r\n",
        "the close-delimiter ends the body"
    );
    at.windows(2)
        .map(|w| {
            let part = &body[w[0] + d.len()..w[1]];
            let part = part.strip_prefix(b"\r\n").expect("CRLF after a delimiter");
            let end = find(part, b"\r\n\r\n").expect("part head ends");
            let head = std::str::from_utf8(&part[..end]).unwrap();
            let headers = head
                .split("\r\n")
                .map(|l| {
                    let (n, v) = l.split_once(':').expect("a header line");
                    (n.to_string(), v.trim().to_string())
                })
                .collect();
            Part {
                headers,
                bytes: part[end + 4..].to_vec(),
            }
        })
        .collect()
}

/// Check a multipart answer against `file`: one part per `(first, last)`,
/// in order, each with `ctype`, its `Content-Range` and exactly its bytes;
/// `Content-Length` is the body's; the boundary is nowhere in the bytes sent
/// but in the delimiters.
fn check_multipart(r: &Response, file: &[u8], ctype: &str, want: &[(usize, usize)]) {
    assert_status(r, 206);
    assert!(r.header("Content-Range").is_none(), "{}", r.describe());
    assert_eq!(
        r.must_header("Content-Length"),
        r.body.len().to_string(),
        "Content-Length is exact"
    );
    let b = boundary_of(r);
    let parts = split_parts(&r.body, &b);
    assert_eq!(parts.len(), want.len(), "{}", r.describe());
    for (p, &(first, last)) in parts.iter().zip(want) {
        assert_eq!(p.header("Content-Type"), Some(ctype));
        assert_eq!(
            p.header("Content-Range").unwrap(),
            format!("bytes {first}-{last}/{}", file.len())
        );
        assert_eq!(p.headers.len(), 2, "{:?}", p.headers);
        assert!(p.bytes == file[first..=last], "part {first}-{last} differs");
        assert!(!contains(&p.bytes, b.as_bytes()));
    }
    // The file's bytes plus the part heads, never more (HTTP.md rule 26).
    let ranged: usize = want.iter().map(|(f, l)| l - f + 1).sum();
    let heads: usize = parts.len() * (2 + 2 + b.len() + 2) + 2 + 2 + b.len() + 2 + 2;
    assert!(r.body.len() > ranged + heads);
}

const OCTETS: &str = "application/octet-stream";
const TEXT: &str = "text/plain; charset=utf-8";

#[test]
fn multipart_answers_hold_each_range_byte_for_byte() {
    let srv = site();
    for (path, file, ctype) in [
        ("/big.bin", data(BIG_LEN, 1), OCTETS),
        ("/small.txt", data(SMALL_LEN, 2), TEXT),
    ] {
        let n = file.len();
        let cases: Vec<(String, Vec<(usize, usize)>)> = vec![
            ("0-9,20-29".into(), vec![(0, 9), (20, 29)]),
            // Sorted whatever the order asked; suffixes and open ends.
            (
                format!("-10,0-0,{}-", n - 100),
                vec![(0, 0), (n - 100, n - 1)],
            ),
            (
                "500-599,0-99,300-399".into(),
                vec![(0, 99), (300, 399), (500, 599)],
            ),
            // Clamped to the end.
            (
                format!("0-0,{}-{}", n - 5, n * 3),
                vec![(0, 0), (n - 5, n - 1)],
            ),
            // Unsatisfiable ones dropped.
            (
                format!("0-1,{n}-,5-6,{}-{}", n + 10, n + 20),
                vec![(0, 1), (5, 6)],
            ),
        ];
        for (spec, want) in cases {
            let r = get(&srv, path, &range(&spec));
            check_multipart(&r, &file, ctype, &want);
            assert_eq!(r.must_header("Accept-Ranges"), "bytes");
            assert!(r.header("ETag").is_some());
        }
        // Many parts.
        let spec: Vec<String> = (0..50)
            .map(|i| format!("{}-{}", i * 13, i * 13 + 5))
            .collect();
        let want: Vec<(usize, usize)> = (0..50).map(|i| (i * 13, i * 13 + 5)).collect();
        check_multipart(
            &get(&srv, path, &range(&spec.join(","))),
            &file,
            ctype,
            &want,
        );
    }
}

#[test]
fn large_parts_of_a_large_file_are_streamed_whole() {
    let srv = site();
    let file = data(HUGE_LEN, 3);
    let n = HUGE_LEN;
    let want = [(0, 1_200_000), (1_500_000, 1_500_010), (1_600_000, n - 1)];
    let spec = want
        .iter()
        .map(|(f, l)| format!("{f}-{l}"))
        .collect::<Vec<_>>()
        .join(",");
    check_multipart(&get(&srv, "/huge.bin", &range(&spec)), &file, OCTETS, &want);
    // On a kept-alive connection, pipelined with a plain GET behind it.
    let mut c = srv.connect(0);
    let req = format!("GET /huge.bin HTTP/1.1\r\nHost: x\r\n{}\r\n", range(&spec));
    c.send(format!("{req}GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    check_multipart(&c.read_response(), &file, OCTETS, &want);
    let r = c.read_response();
    assert_status(&r, 200);
    assert_eq!(r.body, data(SMALL_LEN, 2));
}

#[test]
fn curl_r_reads_the_parts() {
    let Some(curl) = which("curl") else {
        skip("curl_r_reads_the_parts", "curl is not installed");
        return;
    };
    let srv = site();
    let file = data(BIG_LEN, 1);
    let dir = TempDir::new("curl-r");
    let (hdrs, body) = (dir.join("headers"), dir.join("body"));
    let out = Command::new(curl)
        .args(["-sS", "--max-time", "10", "-r", "0-9,20-29", "-D"])
        .arg(&hdrs)
        .arg("-o")
        .arg(&body)
        .arg(format!("http://127.0.0.1:{}/big.bin", srv.port(0)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&hdrs).unwrap();
    assert!(head.starts_with("HTTP/1.1 206 "), "{head}");
    let r = Response {
        status_line: head.lines().next().unwrap().to_string(),
        version: "HTTP/1.1".into(),
        status: 206,
        headers: head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            .collect(),
        body: std::fs::read(&body).unwrap(),
    };
    check_multipart(&r, &file, OCTETS, &[(0, 9), (20, 29)]);
    // One range: curl gets a plain 206.
    let out = Command::new(which("curl").unwrap())
        .args(["-sS", "--max-time", "10", "-r", "100-199"])
        .arg(format!("http://127.0.0.1:{}/big.bin", srv.port(0)))
        .output()
        .unwrap();
    assert_eq!(out.stdout, file[100..200]);
}

#[test]
fn overlapping_or_touching_ranges_are_merged() {
    let srv = site();
    let file = data(BIG_LEN, 1);
    for (spec, first, last) in [
        ("0-49,25-74", 0, 74),
        ("10-19,0-99", 0, 99),
        ("0-9,10-19", 0, 19),
        ("5-5,5-5,5-5", 5, 5),
        ("0-9,30-39,20-29,10-19", 0, 39),
    ] {
        let r = get(&srv, "/big.bin", &range(spec));
        assert_status(&r, 206);
        assert_eq!(
            r.must_header("Content-Range"),
            format!("bytes {first}-{last}/{BIG_LEN}"),
            "{spec}"
        );
        assert_eq!(r.must_header("Content-Type"), OCTETS, "{spec}");
        assert_eq!(r.body, file[first..=last], "{spec}");
    }
    // Merged where they touch, kept apart where they do not.
    check_multipart(
        &get(&srv, "/big.bin", &range("0-9,10-19,21-29,25-40")),
        &file,
        OCTETS,
        &[(0, 19), (21, 40)],
    );
}

#[test]
fn max_ranges_sends_the_whole_file_past_its_limit() {
    let srv = site();
    let file = data(BIG_LEN, 1);
    let r = get(&srv, "/two/big.bin", &range("0-9,20-29,40-49"));
    assert_status(&r, 200);
    assert!(r.header("Content-Range").is_none());
    assert_eq!(r.must_header("Content-Length"), BIG_LEN.to_string());
    assert!(r.body == file);
    check_multipart(
        &get(&srv, "/two/big.bin", &range("0-9,20-29")),
        &file,
        OCTETS,
        &[(0, 9), (20, 29)],
    );
    // Counted as written, before merging (as nginx counts them).
    let r = get(&srv, "/two/big.bin", &range("0-9,5-14,10-19"));
    assert_status(&r, 200);
    // An unsatisfiable one does not count.
    let r = get(
        &srv,
        "/two/big.bin",
        &range(&format!("0-9,{BIG_LEN}-,20-29")),
    );
    check_multipart(&r, &file, OCTETS, &[(0, 9), (20, 29)]);
    // Without max_ranges, no limit.
    let spec: Vec<String> = (0..200).map(|i| format!("{}-{}", i * 3, i * 3)).collect();
    let r = get(&srv, "/big.bin", &range(&spec.join(",")));
    assert_eq!(split_parts(&r.body, &boundary_of(&r)).len(), 200);
    // max_ranges 0: no ranges at all, as nginx (no Accept-Ranges either).
    let small = data(SMALL_LEN, 2);
    for spec in ["0-9", "0-9,20-29", "5000-"] {
        let r = get(&srv, "/none/small.txt", &range(spec));
        assert_status(&r, 200);
        assert!(r.header("Accept-Ranges").is_none());
        assert_eq!(r.body, small);
    }
}

#[test]
fn unsatisfiable_ranges_alone_get_416() {
    let srv = site();
    for (path, n) in [("/big.bin", BIG_LEN), ("/small.txt", SMALL_LEN)] {
        let r = get(&srv, path, &range(&format!("{n}-,{}-{}", n + 1, n + 9)));
        assert_status(&r, 416);
        assert_eq!(r.must_header("Content-Range"), format!("bytes */{n}"));
        assert_eq!(r.must_header("Content-Length"), r.body.len().to_string());
    }
}

#[test]
fn if_range_applies_to_several_ranges() {
    let srv = site();
    let file = data(BIG_LEN, 1);
    let etag = get(&srv, "/big.bin", "").must_header("ETag").to_string();
    let lm = get(&srv, "/big.bin", "")
        .must_header("Last-Modified")
        .to_string();
    for validator in [etag.as_str(), lm.as_str()] {
        let r = get(
            &srv,
            "/big.bin",
            &format!("{}If-Range: {validator}\r\n", range("0-9,20-29")),
        );
        check_multipart(&r, &file, OCTETS, &[(0, 9), (20, 29)]);
    }
    for validator in [
        "\"other\"",
        &format!("W/{etag}"),
        "Sun, 09 Sep 2001 01:46:40 GMT",
    ] {
        let r = get(
            &srv,
            "/big.bin",
            &format!("{}If-Range: {validator}\r\n", range("0-9,20-29")),
        );
        assert_status(&r, 200);
        assert!(r.header("Content-Range").is_none());
        assert_eq!(r.must_header("Content-Type"), OCTETS);
        assert!(r.body == file, "{validator}: the whole file");
    }
}

/// The headers of an answer without those that change between two
/// requests: `Date`, and the multipart boundary.
fn stable_headers(r: &Response) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .map(|(n, v)| match v.split_once("; boundary=") {
            Some((t, b)) => {
                assert_eq!(b.len(), 32, "{v}");
                (n.clone(), format!("{t}; boundary=*"))
            }
            None => (n.clone(), v.clone()),
        })
        .collect()
}

#[test]
fn head_gets_the_headers_get_gets() {
    let srv = site();
    for (path, extra) in [
        ("/big.bin", range("0-9,20-29")),
        ("/small.txt", range("0-9,20-29,-5")),
        ("/big.bin", range("0-9,5-19")),
        ("/big.bin", range(&format!("{BIG_LEN}-"))),
        ("/two/big.bin", range("0-1,3-4,6-7")),
        ("/enc/app.js", "Accept-Encoding: zstd, gzip\r\n".to_string()),
        (
            "/enc/big.css",
            format!("Accept-Encoding: br\r\n{}", range("0-9,99-199")),
        ),
        ("/enc/none.js", "Accept-Encoding: br\r\n".to_string()),
    ] {
        let g = get(&srv, path, &extra);
        let h = head(&srv, path, &extra);
        assert_eq!(h.status, g.status, "{path} {extra}");
        assert_eq!(stable_headers(&h), stable_headers(&g), "{path} {extra}");
        assert!(h.body.is_empty());
    }
    // The boundary is drawn anew for each answer.
    let a = get(&srv, "/big.bin", &range("0-9,20-29"));
    let b = get(&srv, "/big.bin", &range("0-9,20-29"));
    assert_ne!(boundary_of(&a), boundary_of(&b));
}

// ---------------------------------------------------------------------------
// Precompressed siblings
// ---------------------------------------------------------------------------

#[test]
fn accept_encoding_chooses_among_the_siblings_that_exist() {
    let srv = site();
    // (path, Accept-Encoding, the coding sent or "" for the plain file, body)
    let cases: &[(&str, Option<&str>, &str, &str)] = &[
        (
            "/enc/app.js",
            Some("br, zstd, gzip"),
            "br",
            "BR bytes of app.js",
        ),
        (
            "/enc/app.js",
            Some("gzip, zstd, br"),
            "br",
            "BR bytes of app.js",
        ),
        (
            "/enc/app.js",
            Some("zstd, gzip"),
            "zstd",
            "ZSTD bytes of app.js!",
        ),
        (
            "/enc/app.js",
            Some("gzip"),
            "gzip",
            "GZIP bytes of app.js!!",
        ),
        (
            "/enc/app.js",
            Some("x-gzip"),
            "gzip",
            "GZIP bytes of app.js!!",
        ),
        ("/enc/app.js", Some("*"), "br", "BR bytes of app.js"),
        // Higher q wins over the tie order.
        (
            "/enc/app.js",
            Some("br;q=0.5, gzip;q=0.6"),
            "gzip",
            "GZIP bytes of app.js!!",
        ),
        (
            "/enc/app.js",
            Some("br;q=0.5, zstd;q=0.9, gzip;q=0.6"),
            "zstd",
            "ZSTD bytes of app.js!",
        ),
        (
            "/enc/app.js",
            Some("br;q=0.9, zstd;q=0.9, gzip;q=0.9"),
            "br",
            "BR bytes of app.js",
        ),
        (
            "/enc/app.js",
            Some("zstd;q=0.9, gzip;q=0.9"),
            "zstd",
            "ZSTD bytes of app.js!",
        ),
        // q=0 refuses, `*` covers the codings not named.
        (
            "/enc/app.js",
            Some("br;q=0, *"),
            "zstd",
            "ZSTD bytes of app.js!",
        ),
        (
            "/enc/app.js",
            Some("br;q=0, zstd;q=0, *"),
            "gzip",
            "GZIP bytes of app.js!!",
        ),
        ("/enc/app.js", Some("*;q=0"), "", "plain app.js\n"),
        ("/enc/app.js", Some("gzip;q=0"), "", "plain app.js\n"),
        ("/enc/app.js", Some("identity"), "", "plain app.js\n"),
        ("/enc/app.js", Some("deflate"), "", "plain app.js\n"),
        ("/enc/app.js", None, "", "plain app.js\n"),
        // The best sibling missing: the next best that exists.
        (
            "/enc/gz.js",
            Some("br, zstd, gzip"),
            "gzip",
            "GZIP bytes of gz.js",
        ),
        ("/enc/gz.js", Some("br, zstd"), "", "plain gz.js\n"),
        (
            "/enc/brzst.js",
            Some("gzip, zstd;q=0.5, br;q=0.4"),
            "zstd",
            "ZSTD bytes of brzst.js",
        ),
        ("/enc/brzst.js", Some("gzip"), "", "plain brzst.js\n"),
        (
            "/enc/none.js",
            Some("br, zstd, gzip"),
            "",
            "plain none.js\n",
        ),
        // A sibling without its plain file (as nginx's gzip_static).
        (
            "/enc/only.js",
            Some("zstd"),
            "zstd",
            "ZSTD bytes of only.js",
        ),
        // gzip_static alone: br is not served even when it exists.
        (
            "/gzonly/a.js",
            Some("br, gzip"),
            "gzip",
            "GZIP bytes of a.js",
        ),
        ("/gzonly/a.js", Some("br"), "", "plain a.js\n"),
    ];
    for &(path, ae, coding, body) in cases {
        let extra = ae.map_or(String::new(), |v| format!("Accept-Encoding: {v}\r\n"));
        let r = get(&srv, path, &extra);
        assert_status(&r, 200);
        assert_eq!(r.body_str(), body, "{path} {ae:?}");
        assert_eq!(r.must_header("Content-Length"), body.len().to_string());
        assert_eq!(
            r.must_header("Content-Type"),
            "text/javascript; charset=utf-8",
            "{path} {ae:?}: the plain file's type"
        );
        let etag = r.must_header("ETag");
        if coding.is_empty() {
            assert!(r.header("Content-Encoding").is_none(), "{path} {ae:?}");
            assert_eq!(etag.matches('-').count(), 1, "{etag}");
        } else {
            assert_eq!(
                r.headers_named("Content-Encoding"),
                [coding],
                "{path} {ae:?}"
            );
            assert!(etag.ends_with(&format!("-{coding}\"")), "{etag}");
        }
        assert_eq!(
            r.headers_named("Vary"),
            ["Accept-Encoding"],
            "{path} {ae:?}"
        );
    }
}

#[test]
fn each_representation_has_its_own_etag() {
    let srv = site();
    let tag = |ae: &str| {
        let r = get(&srv, "/enc/same.js", &format!("Accept-Encoding: {ae}\r\n"));
        assert_eq!(r.must_header("Content-Length"), "12");
        r.must_header("ETag").to_string()
    };
    let tags = [tag("br"), tag("zstd"), tag("gzip"), tag("identity")];
    for (i, a) in tags.iter().enumerate() {
        for b in &tags[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // A validator of one representation does not match another.
    let r = get(
        &srv,
        "/enc/same.js",
        &format!("Accept-Encoding: gzip\r\nIf-None-Match: {}\r\n", tags[0]),
    );
    assert_status(&r, 200);
    let r = get(
        &srv,
        "/enc/same.js",
        &format!("Accept-Encoding: br\r\nIf-None-Match: {}\r\n", tags[0]),
    );
    assert_status(&r, 304);
    assert_eq!(r.headers_named("Vary"), ["Accept-Encoding"]);
    assert_eq!(r.must_header("ETag"), tags[0]);
}

#[test]
fn ranges_apply_to_the_sibling_sent() {
    let srv = site();
    let br = data(BIG_LEN / 2, 5);
    let plain = data(BIG_LEN, 4);
    let r = get(
        &srv,
        "/enc/big.css",
        &format!("Accept-Encoding: br\r\n{}", range("0-99")),
    );
    assert_status(&r, 206);
    assert_eq!(r.must_header("Content-Encoding"), "br");
    assert_eq!(
        r.must_header("Content-Range"),
        format!("bytes 0-99/{}", br.len())
    );
    assert_eq!(r.body, br[..100]);
    let css = "text/css; charset=utf-8";
    let r = get(
        &srv,
        "/enc/big.css",
        &format!("Accept-Encoding: br\r\n{}", range("0-9,100000-100009,-3")),
    );
    assert_eq!(r.must_header("Content-Encoding"), "br");
    check_multipart(
        &r,
        &br,
        css,
        &[(0, 9), (100_000, 100_009), (br.len() - 3, br.len() - 1)],
    );
    // Past the sibling's end, inside the plain file's: 416 with its length.
    let r = get(
        &srv,
        "/enc/big.css",
        &format!(
            "Accept-Encoding: br\r\n{}",
            range(&format!("{}-", br.len()))
        ),
    );
    assert_status(&r, 416);
    assert_eq!(
        r.must_header("Content-Range"),
        format!("bytes */{}", br.len())
    );
    assert_eq!(r.headers_named("Vary"), ["Accept-Encoding"]);
    let r = get(&srv, "/enc/big.css", &range(&format!("{}-", br.len())));
    assert_status(&r, 206);
    assert_eq!(r.body, plain[br.len()..]);
}

#[test]
fn every_answer_of_the_route_has_one_vary() {
    let srv = site();
    let ae = "Accept-Encoding: br\r\n";
    let etag = get(&srv, "/enc/app.js", ae).must_header("ETag").to_string();
    for (path, extra, status) in [
        ("/enc/app.js", ae.to_string(), 200),
        ("/enc/app.js", String::new(), 200),
        ("/enc/app.js", format!("{ae}{}", range("0-1")), 206),
        ("/enc/big.css", format!("{ae}{}", range("0-1,5-6")), 206),
        ("/enc/app.js", format!("{ae}{}", range("900-")), 416),
        ("/enc/app.js", format!("{ae}If-None-Match: {etag}\r\n"), 304),
        ("/enc/missing.js", ae.to_string(), 404),
        ("/enc/sub", ae.to_string(), 301),
    ] {
        let r = get(&srv, path, &extra);
        assert_status(&r, status);
        assert_eq!(
            r.headers_named("Vary"),
            ["Accept-Encoding"],
            "{path} {extra}"
        );
        let h = head(&srv, path, &extra);
        assert_eq!(
            h.headers_named("Vary"),
            ["Accept-Encoding"],
            "HEAD {path} {extra}"
        );
    }
    // Outside such a route: none.
    assert!(get(&srv, "/small.txt", ae).header("Vary").is_none());
}
