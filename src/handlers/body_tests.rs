//! Tests of `decide` for what takes a body or changes files: DELETE, raw
//! uploads, CGI plans. Real folder trees under the temporary folder,
//! configurations parsed from text, requests parsed from bytes.

use std::net::SocketAddr;
use std::os::unix::fs::symlink;

use super::cgi::CgiPlan;
use super::tests::{Got, Site, owned};
use super::upload::UploadSink;
use super::*;
use crate::http::{Parse, ParseState, parse_head};

/// What `decide` decided, owned.
#[derive(Debug)]
enum Out {
    Reply(Got),
    Upload(UploadSink),
    Cgi(CgiPlan),
}

/// The connection every test request arrives on.
fn conn() -> ConnInfo {
    ConnInfo {
        peer: SocketAddr::from(([192, 0, 2, 7], 54321)),
        local: SocketAddr::from(([127, 0, 0, 1], 8080)),
    }
}

/// Dispatch the head `raw` (request line and fields, without the blank line).
fn act_raw(cfg: &Config, raw: &str) -> Out {
    let raw = format!("{raw}\r\n\r\n");
    let Ok(Parse::Complete(req, _)) = parse_head(raw.as_bytes(), &mut ParseState::default()) else {
        panic!("unparsed: {raw:?}");
    };
    let mut roots = RootCache::default();
    let mut ctx = Ctx::for_tests(cfg, &mut roots, conn());
    match decide(&mut ctx, &req).action {
        Action::Reply(r) => Out::Reply(owned(r)),
        Action::Upload(s) => Out::Upload(s),
        Action::Cgi(p) => Out::Cgi(p),
    }
}

/// Dispatch `METHOD TARGET` with `Host: test` and the `extra` field lines.
fn act(cfg: &Config, method: &str, target: &str, extra: &str) -> Out {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: test");
    for line in extra.lines() {
        raw.push_str("\r\n");
        raw.push_str(line);
    }
    act_raw(cfg, &raw)
}

fn reply(cfg: &Config, method: &str, target: &str, extra: &str) -> Got {
    match act(cfg, method, target, extra) {
        Out::Reply(g) => g,
        other => panic!("{method} {target}: {other:?}"),
    }
}

fn upload(cfg: &Config, method: &str, target: &str, extra: &str) -> UploadSink {
    match act(cfg, method, target, extra) {
        Out::Upload(s) => s,
        other => panic!("{method} {target}: {other:?}"),
    }
}

fn cgi(cfg: &Config, method: &str, target: &str, extra: &str) -> CgiPlan {
    match act(cfg, method, target, extra) {
        Out::Cgi(p) => p,
        other => panic!("{method} {target}: {other:?}"),
    }
}

fn finish(cfg: &Config, sink: UploadSink) -> Got {
    let mut roots = RootCache::default();
    let mut ctx = Ctx::for_tests(cfg, &mut roots, conn());
    owned(sink.finish(&mut ctx))
}

/// The names in a folder, sorted.
fn names(s: &Site, rel: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.path(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn env(plan: &CgiPlan, name: &str) -> Option<String> {
    plan.env(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

const UPLOADS: &str = "server {\n listen 127.0.0.1:8080;\n root @/www;\n\
     location /up { upload_store @/store; allowed_methods GET POST PUT DELETE; }\n\
     location /rw { allowed_methods GET DELETE; }\n}\n";

#[test]
fn delete_file_folder_missing() {
    let s = Site::new("delete");
    s.file("www/rw/a.txt", "a")
        .file("www/rw/b.txt", "b")
        .mkdir("www/rw/sub")
        .file("www/keep.txt", "k")
        .file("store/x.txt", "x");
    let cfg = s.config(UPLOADS);
    let r = reply(&cfg, "DELETE", "/rw/a.txt", "");
    assert_eq!((r.status, r.len), (204, 0));
    assert!(!s.path("www/rw/a.txt").exists());
    assert_eq!(reply(&cfg, "DELETE", "/rw/a.txt", "").status, 404);
    assert_eq!(reply(&cfg, "DELETE", "/rw/sub", "").status, 403);
    assert_eq!(reply(&cfg, "DELETE", "/rw/sub/", "").status, 403);
    assert_eq!(reply(&cfg, "DELETE", "/rw/", "").status, 403);
    assert_eq!(reply(&cfg, "DELETE", "/rw", "").status, 403);
    assert!(s.path("www/rw/sub").is_dir());
    // A file asked for as a folder is not there.
    assert_eq!(reply(&cfg, "DELETE", "/rw/b.txt/", "").status, 404);
    assert!(s.path("www/rw/b.txt").exists());
    // An upload route deletes from its folder, not from the root.
    assert_eq!(reply(&cfg, "DELETE", "/up/x.txt", "").status, 204);
    assert!(!s.path("store/x.txt").exists());
    assert_eq!(reply(&cfg, "DELETE", "/up/", "").status, 403);
    assert!(s.path("store").is_dir());
    // A route that does not allow DELETE.
    let r = reply(&cfg, "DELETE", "/keep.txt", "");
    assert_eq!((r.status, r.allow), (405, Some(vec!["GET", "HEAD"])));
    assert!(s.path("www/keep.txt").exists());
}

#[test]
fn delete_never_leaves_the_root() {
    let s = Site::new("delete-out");
    s.mkdir("www/rw").file("www/keep.txt", "k");
    symlink("../../secret.txt", s.path("www/rw/link")).unwrap();
    symlink("../..", s.path("www/rw/up")).unwrap();
    let cfg = s.config(UPLOADS);
    for target in [
        "/rw/../../secret.txt",
        "/rw/%2e%2e/%2e%2e/secret.txt",
        "/rw/..%2f..%2fsecret.txt",
        "/rw/up/secret.txt",
        "/rw/up/www/keep.txt",
        "/up/../../secret.txt",
    ] {
        let r = reply(&cfg, "DELETE", target, "");
        assert!([400, 404].contains(&r.status), "{target}: {}", r.status);
    }
    // A symlink that leads out is not followed, and not reported either.
    assert_eq!(reply(&cfg, "DELETE", "/rw/link", "").status, 404);
    assert!(s.path("secret.txt").exists());
    assert!(s.path("www/keep.txt").exists());
}

#[test]
fn raw_put_creates_then_replaces() {
    let s = Site::new("put");
    s.mkdir("store");
    let cfg = s.config(UPLOADS);
    let mut sink = upload(&cfg, "PUT", "/up/new.txt", "Content-Length: 11");
    sink.write(b"hello ").unwrap();
    // The body is invisible under its name until finished.
    assert!(!s.path("store/new.txt").exists());
    let part = names(&s, "store");
    assert_eq!(part.len(), 1);
    assert!(part[0].starts_with(".upload-") && part[0].ends_with(".part"));
    sink.write(b"world").unwrap();
    assert_eq!(sink.bytes(), 11);
    let r = finish(&cfg, sink);
    assert_eq!(r.status, 201);
    assert_eq!(r.location.as_deref(), Some("/up/new.txt"));
    assert_eq!(r.text(), "new.txt\n");
    assert_eq!(r.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(
        std::fs::read(s.path("store/new.txt")).unwrap(),
        b"hello world"
    );
    assert_eq!(names(&s, "store"), vec!["new.txt"]);
    // Replaced: 204, new content, still nothing else.
    let mut sink = upload(&cfg, "PUT", "/up/new.txt", "Content-Length: 3");
    sink.write(b"new").unwrap();
    let r = finish(&cfg, sink);
    assert_eq!((r.status, r.len, r.location), (204, 0, None));
    assert_eq!(std::fs::read(s.path("store/new.txt")).unwrap(), b"new");
    assert_eq!(names(&s, "store"), vec!["new.txt"]);
    // And it is served back from the folder.
    assert_eq!(reply(&cfg, "GET", "/up/new.txt", "").body, b"new");
}

#[test]
fn raw_post_names_and_splice() {
    let s = Site::new("post");
    s.mkdir("store/dir");
    let cfg = s.config(UPLOADS);
    // POST PREFIX/NAME stores too; the server may splice into the file.
    let mut sink = upload(&cfg, "POST", "/up/caf%C3%A9%20x.txt", "Content-Length: 4");
    sink.raw_file().unwrap().write_all(b"data").unwrap();
    sink.spliced(4);
    assert_eq!(sink.bytes(), 4);
    let r = finish(&cfg, sink);
    assert_eq!(r.status, 201);
    assert_eq!(r.location.as_deref(), Some("/up/caf%C3%A9%20x.txt"));
    assert_eq!(std::fs::read(s.path("store/café x.txt")).unwrap(), b"data");
    // An empty body makes an empty file.
    let r = finish(&cfg, upload(&cfg, "PUT", "/up/empty", ""));
    assert_eq!(r.status, 201);
    assert_eq!(std::fs::read(s.path("store/empty")).unwrap(), b"");
    // No name, a folder, a hidden name, a folder in the way.
    for (method, target, want) in [
        ("POST", "/up", 400),
        ("POST", "/up/", 400),
        ("PUT", "/up/", 400),
        ("PUT", "/up/a/b.txt", 400),
        ("PUT", "/up/.hidden", 400),
        ("PUT", "/up/a%5Cb", 400),
        ("PUT", "/up/dir", 409),
        // Normalised to `/x`: another route, which refuses PUT.
        ("PUT", "/up/%2e%2e/x", 405),
        ("PUT", "/up/..%2fx", 400),
    ] {
        let r = reply(&cfg, method, target, "Content-Length: 1");
        assert_eq!(r.status, want, "{method} {target}");
    }
    let mut left = names(&s, "store");
    left.retain(|n| n.starts_with('.'));
    assert!(left.is_empty(), "{left:?}");
    // The route's other methods.
    let r = reply(&cfg, "PATCH", "/up/x", "");
    assert_eq!(r.status, 405);
}

#[test]
fn unfinished_uploads_leave_nothing() {
    let s = Site::new("drop");
    s.file("store/old.txt", "old");
    let cfg = s.config(UPLOADS);
    let mut sink = upload(&cfg, "PUT", "/up/old.txt", "Content-Length: 100");
    sink.write(b"half").unwrap();
    assert_eq!(names(&s, "store").len(), 2);
    drop(sink);
    assert_eq!(names(&s, "store"), vec!["old.txt"]);
    assert_eq!(std::fs::read(s.path("store/old.txt")).unwrap(), b"old");
    // A failed finish (a folder appeared in the way) leaves nothing either.
    let mut sink = upload(&cfg, "PUT", "/up/late", "Content-Length: 1");
    sink.write(b"x").unwrap();
    std::fs::create_dir(s.path("store/late")).unwrap();
    let r = finish(&cfg, sink);
    assert_eq!(r.status, 409);
    assert_eq!(names(&s, "store"), vec!["late", "old.txt"]);
}

#[test]
fn upload_folder_is_never_run() {
    let s = Site::new("never-cgi");
    s.file("store/x.py", "print('pwned')")
        .file("www/cgi/ok.py", "print('ok')")
        .file("www/cgi/files/evil.py", "print('pwned')");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n\
         location /up { upload_store @/store; cgi .py /bin/sh; allowed_methods GET POST; }\n\
         location /cgi { cgi .py /bin/sh; allowed_methods GET POST; }\n\
         location /cgi/files { upload_store @/www/cgi/files; allowed_methods GET POST; }\n}\n",
    );
    let r = reply(&cfg, "GET", "/up/x.py", "");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"print('pwned')"[..]));
    assert!(matches!(
        act(&cfg, "POST", "/up/x.py", "Content-Length: 1"),
        Out::Upload(_)
    ));
    // Through the upload route the file is a file.
    assert_eq!(reply(&cfg, "GET", "/cgi/files/evil.py", "").status, 200);
    // A route whose root holds the upload folder runs nothing from it
    // (the path is reached with a prefix that routes to /cgi).
    let cfg2 = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n\
         location /cgi { cgi .py /bin/sh; allowed_methods GET POST; }\n\
         location /store { upload_store @/www/cgi/files; }\n}\n",
    );
    assert_eq!(reply(&cfg2, "GET", "/cgi/files/evil.py", "").status, 403);
    assert!(matches!(act(&cfg2, "GET", "/cgi/ok.py", ""), Out::Cgi(_)));
}

const CGI: &str = "server {\n listen 127.0.0.1:8080;\n server_name example.org;\n root @/www;\n\
     location /cgi { cgi .py /bin/sh; cgi .sh sh; allowed_methods GET POST DELETE; }\n\
     location /run { alias @/scripts; cgi .sh /bin/sh; }\n\
     location /nointerp { cgi .py /nonexistent/python; cgi .x no-such-interpreter-here; }\n}\n";

#[test]
fn cgi_script_lookup() {
    let s = Site::new("cgi-lookup");
    s.file("www/cgi/env.py", "")
        .file("www/cgi/t.sh", "")
        .file("www/cgi/readme.txt", "read me")
        .file("www/cgi/dir.py/inner.py", "")
        .file("www/nointerp/a.py", "")
        .file("www/nointerp/a.x", "")
        .file("scripts/t.sh", "");
    let ok = std::process::Command::new("mkfifo")
        .arg(s.path("www/cgi/fifo.py"))
        .status()
        .unwrap();
    assert!(ok.success());
    let cfg = s.config(CGI);
    let p = cgi(&cfg, "GET", "/cgi/env.py", "");
    let file = s.path("www/cgi/env.py");
    assert_eq!(p.program.to_str().unwrap(), "/bin/sh");
    assert_eq!(p.argv[0], p.program);
    assert_eq!(p.argv[1].to_str().unwrap(), file.to_str().unwrap());
    assert_eq!(p.cwd.to_str().unwrap(), s.path("www/cgi").to_str().unwrap());
    assert_eq!(env(&p, "PATH_INFO").as_deref(), Some(""));
    assert_eq!(env(&p, "PATH_TRANSLATED"), None);
    // PATH_INFO: the rest of the path after the script, decoded.
    let p = cgi(&cfg, "GET", "/cgi/env.py/a/b%20c/", "");
    assert_eq!(env(&p, "SCRIPT_NAME").as_deref(), Some("/cgi/env.py"));
    assert_eq!(env(&p, "PATH_INFO").as_deref(), Some("/a/b c/"));
    // A folder named like a script is walked through.
    let p = cgi(&cfg, "GET", "/cgi/dir.py/inner.py/x", "");
    assert_eq!(
        env(&p, "SCRIPT_NAME").as_deref(),
        Some("/cgi/dir.py/inner.py")
    );
    assert_eq!(env(&p, "PATH_INFO").as_deref(), Some("/x"));
    // Missing → 404, not a regular file → 403.
    assert_eq!(reply(&cfg, "GET", "/cgi/nope.py", "").status, 404);
    assert_eq!(reply(&cfg, "POST", "/cgi/nope.py/x", "").status, 404);
    assert_eq!(reply(&cfg, "GET", "/cgi/fifo.py", "").status, 403);
    assert_eq!(reply(&cfg, "GET", "/cgi/dir.py", "").status, 403);
    // Not a script: served as a file.
    let r = reply(&cfg, "GET", "/cgi/readme.txt", "");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"read me"[..]));
    // The script decides what DELETE means.
    assert!(matches!(
        act(&cfg, "DELETE", "/cgi/env.py", ""),
        Out::Cgi(_)
    ));
    assert!(s.path("www/cgi/env.py").exists());
    // A bare interpreter name is found in PATH.
    let p = cgi(&cfg, "GET", "/cgi/t.sh", "");
    let prog = std::path::PathBuf::from(p.program.to_str().unwrap());
    assert!(prog.is_absolute() && prog.ends_with("sh"), "{prog:?}");
    // alias routes.
    let p = cgi(&cfg, "GET", "/run/t.sh/x", "");
    let scripts = s.path("scripts");
    assert_eq!(
        env(&p, "SCRIPT_FILENAME").as_deref(),
        scripts.join("t.sh").to_str()
    );
    assert_eq!(env(&p, "DOCUMENT_ROOT").as_deref(), scripts.to_str());
    assert_eq!(env(&p, "SCRIPT_NAME").as_deref(), Some("/run/t.sh"));
    // A folder whose first index is a script runs it; its source is never served.
    let cfg_index = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n\
         location /cgi { cgi .py /bin/sh; index index.html index.py; }\n}\n",
    );
    s.file("www/cgi/app/index.py", "secret source")
        .file("www/cgi/site/index.html", "home")
        .file("www/cgi/site/index.py", "");
    let p = cgi(&cfg_index, "GET", "/cgi/app/?q=1", "");
    assert_eq!(env(&p, "SCRIPT_NAME").as_deref(), Some("/cgi/app/index.py"));
    assert_eq!(env(&p, "REQUEST_URI").as_deref(), Some("/cgi/app/?q=1"));
    assert_eq!(reply(&cfg_index, "GET", "/cgi/site/", "").body, b"home");
    // An interpreter that cannot be found: 502.
    assert_eq!(reply(&cfg, "GET", "/nointerp/a.py", "").status, 502);
    assert_eq!(reply(&cfg, "GET", "/nointerp/a.x", "").status, 502);
}

#[test]
fn cgi_environment() {
    let s = Site::new("cgi-env");
    s.file("www/cgi/env.py", "");
    let cfg = s.config(CGI);
    let extra = "Content-Length: 5\nContent-Type: text/plain\nX-A: 1\nx-a: 2\n\
                 Cookie: a=1\nCookie: b=2\nProxy: http://evil:1\nX_Under: u\n\
                 User-Agent: t/1.0";
    let mut p = cgi(&cfg, "POST", "/cgi/env.py/p%20i?x=1&y=%20", extra);
    let www = s.path("www");
    let (translated, script) = (www.join("p i"), www.join("cgi/env.py"));
    let want = [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", crate::SERVER_NAME),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "test"),
        ("SERVER_PORT", "8080"),
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/cgi/env.py/p%20i?x=1&y=%20"),
        ("QUERY_STRING", "x=1&y=%20"),
        ("SCRIPT_NAME", "/cgi/env.py"),
        ("PATH_INFO", "/p i"),
        ("PATH_TRANSLATED", translated.to_str().unwrap()),
        ("SCRIPT_FILENAME", script.to_str().unwrap()),
        ("DOCUMENT_ROOT", www.to_str().unwrap()),
        ("REMOTE_ADDR", "192.0.2.7"),
        ("REMOTE_PORT", "54321"),
        ("CONTENT_LENGTH", "5"),
        ("CONTENT_TYPE", "text/plain"),
        ("REDIRECT_STATUS", "200"),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HTTP_HOST", "test"),
        ("HTTP_X_A", "1, 2"),
        ("HTTP_COOKIE", "a=1; b=2"),
        ("HTTP_USER_AGENT", "t/1.0"),
    ];
    for (k, v) in want {
        assert_eq!(env(&p, k).as_deref(), Some(v), "{k}");
    }
    for k in [
        "HTTP_PROXY",
        "HTTP_CONTENT_LENGTH",
        "HTTP_CONTENT_TYPE",
        "HTTP_X_UNDER",
    ] {
        assert_eq!(env(&p, k), None, "{k}");
    }
    // Every entry is NAME=value, each name once.
    let mut keys: Vec<&[u8]> = p
        .envp
        .iter()
        .map(|e| e.as_bytes().split(|&b| b == b'=').next().unwrap())
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
    assert_eq!(n, want.len());
    // set_content_length replaces the declared length.
    p.set_content_length(42);
    assert_eq!(env(&p, "CONTENT_LENGTH").as_deref(), Some("42"));
    assert_eq!(p.envp.len(), n);
    assert!(p.set_env("SESSION_ID", b"abc"));
    assert_eq!(p.envp.len(), n + 1);
    assert!(!p.set_env("A=B", b"x"));
    assert!(!p.set_env("A", b"x\0"));

    // A chunked body: no length yet, until the server knows it.
    let mut p = cgi(&cfg, "POST", "/cgi/env.py", "Transfer-Encoding: chunked");
    assert_eq!(env(&p, "CONTENT_LENGTH"), None);
    assert_eq!(env(&p, "HTTP_TRANSFER_ENCODING"), None);
    p.set_content_length(7);
    assert_eq!(env(&p, "CONTENT_LENGTH").as_deref(), Some("7"));

    // HTTP/1.0 without Host: the first server_name.
    let Out::Cgi(p) = act_raw(&cfg, "GET /cgi/env.py HTTP/1.0") else {
        panic!()
    };
    assert_eq!(env(&p, "SERVER_PROTOCOL").as_deref(), Some("HTTP/1.0"));
    assert_eq!(env(&p, "SERVER_NAME").as_deref(), Some("example.org"));
    assert_eq!(env(&p, "QUERY_STRING").as_deref(), Some(""));
    assert_eq!(env(&p, "CONTENT_TYPE"), None);
}

/// A multipart/form-data body with boundary `XyZ`: `(name, filename, content)`.
fn form(parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, filename, content) in parts {
        b.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"");
        b.extend_from_slice(name.as_bytes());
        b.push(b'"');
        if let Some(f) = filename {
            b.extend_from_slice(b"; filename=\"");
            b.extend_from_slice(f.as_bytes());
            b.push(b'"');
        }
        b.extend_from_slice(b"\r\nContent-Type: application/octet-stream\r\n\r\n");
        b.extend_from_slice(content.as_bytes());
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"--XyZ--\r\n");
    b
}

const FORM: &str = "Content-Type: multipart/form-data; boundary=XyZ";

#[test]
fn multipart_stores_every_file_part() {
    let s = Site::new("multipart");
    s.file("store/b.txt", "old b");
    let cfg = s.config(UPLOADS);
    let body = form(&[
        ("f1", Some("a b.txt"), "first\r\nfile"),
        ("field", None, "just a field"),
        ("empty", Some(""), ""),
        ("f2", Some("C:\\Users\\me\\b.txt"), "second"),
    ]);
    // Fed one byte at a time: the parts arrive in pieces.
    let mut sink = upload(&cfg, "POST", "/up", FORM);
    assert!(sink.raw_file().is_none());
    for byte in &body {
        sink.write(std::slice::from_ref(byte)).unwrap();
    }
    assert_eq!(sink.bytes(), body.len() as u64);
    // Nothing is visible before the end.
    assert_eq!(
        names(&s, "store")
            .iter()
            .filter(|n| !n.starts_with('.'))
            .count(),
        1
    );
    let r = finish(&cfg, sink);
    assert_eq!(r.status, 201);
    assert_eq!(r.location.as_deref(), Some("/up/a%20b.txt"));
    assert_eq!(r.text(), "a b.txt\nb.txt\n");
    assert_eq!(r.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(names(&s, "store"), vec!["a b.txt", "b.txt"]);
    assert_eq!(
        std::fs::read(s.path("store/a b.txt")).unwrap(),
        b"first\r\nfile"
    );
    assert_eq!(std::fs::read(s.path("store/b.txt")).unwrap(), b"second");
}

#[test]
fn multipart_names_stay_in_the_folder() {
    let s = Site::new("multipart-names");
    s.mkdir("store");
    let cfg = s.config(UPLOADS);
    let body = form(&[
        ("a", Some("../../secret.txt"), "1"),
        ("b", Some(".hidden"), "2"),
        ("c", Some("..."), "3"),
        ("d", Some("twice"), "old"),
        ("e", Some("twice"), "new"),
    ]);
    // Any path of the route: the files land in its folder.
    let mut sink = upload(&cfg, "POST", "/up/ignored", FORM);
    sink.write(&body).unwrap();
    let r = finish(&cfg, sink);
    assert_eq!(r.status, 201);
    let listed: Vec<String> = r.text().lines().map(str::to_string).collect();
    assert_eq!(listed[..2], ["secret.txt", "hidden"]);
    assert!(listed[2].starts_with("upload-"), "{listed:?}");
    assert_eq!(listed[3], "twice");
    assert_eq!(listed.len(), 4);
    assert_eq!(std::fs::read(s.path("secret.txt")).unwrap(), b"TOP SECRET");
    assert_eq!(std::fs::read(s.path("store/secret.txt")).unwrap(), b"1");
    assert_eq!(std::fs::read(s.path("store/twice")).unwrap(), b"new");
    let mut want = listed.clone();
    want.sort();
    assert_eq!(names(&s, "store"), want);
}

#[test]
fn multipart_failures_store_nothing() {
    let s = Site::new("multipart-fail");
    s.mkdir("store/dir");
    let cfg = s.config(UPLOADS);
    let body = form(&[("a", Some("a.txt"), "aaa"), ("b", Some("b.txt"), "bbb")]);
    // Truncated: the close delimiter never came.
    let mut sink = upload(&cfg, "POST", "/up", FORM);
    sink.write(&body[..body.len() - 9]).unwrap();
    let r = finish(&cfg, sink);
    assert_eq!(r.status, 400);
    assert_eq!(names(&s, "store"), vec!["dir"]);
    // Dropped halfway through the second file (client gone, limit hit).
    let mut sink = upload(&cfg, "POST", "/up", FORM);
    sink.write(&body[..body.len() - 15]).unwrap();
    assert!(names(&s, "store").len() > 1);
    drop(sink);
    assert_eq!(names(&s, "store"), vec!["dir"]);
    // Malformed in the middle: refused at once.
    let mut sink = upload(&cfg, "POST", "/up", FORM);
    let bad = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"x\"\r\n\r\nx\r\n--XyZjunk";
    assert_eq!(sink.write(bad), Err(Refusal::BadRequest));
    drop(sink);
    assert_eq!(names(&s, "store"), vec!["dir"]);
    // Only fields, no file: 400.
    let mut sink = upload(&cfg, "POST", "/up", FORM);
    sink.write(&form(&[("f", None, "v"), ("e", Some(""), "")]))
        .unwrap();
    assert_eq!(finish(&cfg, sink).status, 400);
    // A folder in the way of one file: 409, and the other is not stored.
    let mut sink = upload(&cfg, "POST", "/up", FORM);
    sink.write(&form(&[("a", Some("a.txt"), "a"), ("d", Some("dir"), "d")]))
        .unwrap();
    assert_eq!(finish(&cfg, sink).status, 409);
    assert_eq!(names(&s, "store"), vec!["dir"]);
    // No boundary, or a bad one: 400 before the body.
    for ct in [
        "Content-Type: multipart/form-data",
        "Content-Type: multipart/form-data; boundary=\"\"",
    ] {
        assert_eq!(reply(&cfg, "POST", "/up", ct).status, 400, "{ct}");
    }
    // PUT with a multipart type stores the body as it is.
    let mut sink = upload(&cfg, "PUT", "/up/raw.bin", FORM);
    sink.write(&body).unwrap();
    assert_eq!(finish(&cfg, sink).status, 201);
    assert_eq!(std::fs::read(s.path("store/raw.bin")).unwrap(), body);
}

#[test]
fn an_upload_in_progress_is_not_there_for_clients() {
    let s = Site::new("hidden-part");
    s.mkdir("store");
    let cfg = s.config(UPLOADS);
    let mut sink = upload(&cfg, "PUT", "/up/new.txt", "Content-Length: 6");
    sink.write(b"hel").unwrap();
    let part = names(&s, "store");
    assert_eq!(part.len(), 1);
    let url = format!("/up/{}", part[0]);
    for method in ["GET", "HEAD", "DELETE"] {
        assert_eq!(reply(&cfg, method, &url, "").status, 404, "{method}");
    }
    // The same file reached through another route's root: hidden too.
    s.mkdir("www/rw");
    let elsewhere = s.path("www/rw").join(&part[0]);
    std::fs::rename(s.path("store").join(&part[0]), &elsewhere).unwrap();
    let other = format!("/rw/{}", part[0]);
    assert_eq!(reply(&cfg, "GET", &other, "").status, 404);
    assert_eq!(reply(&cfg, "DELETE", &other, "").status, 404);
    assert!(elsewhere.exists());
    std::fs::rename(&elsewhere, s.path("store").join(&part[0])).unwrap();
    sink.write(b"lo!").unwrap();
    assert_eq!(finish(&cfg, sink).status, 201);
    assert_eq!(std::fs::read(s.path("store/new.txt")).unwrap(), b"hello!");
}

#[test]
fn files_of_an_upload_folder_are_sandboxed() {
    let s = Site::new("sandboxed");
    s.file("store/x.html", "<script>1</script>");
    s.file("store/sub/a.txt", "a");
    s.file("www/x.html", "<p>site</p>");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n\
         location /up/ { upload_store @/store; autoindex on; add_header X-Mine yes; }\n}\n",
    );
    let sandbox = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        extra
            .iter()
            .chain(&[
                ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", "sandbox"),
            ])
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    for target in ["/up/x.html", "/up/", "/up/sub/"] {
        let r = reply(&cfg, "GET", target, "");
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.headers, sandbox(&[("X-Mine", "yes")]), "{target}");
    }
    let r = reply(&cfg, "GET", "/up/x.html", "Range: bytes=0-1");
    assert_eq!((r.status, r.headers), (206, sandbox(&[("X-Mine", "yes")])));
    let r = reply(&cfg, "GET", "/x.html", "");
    assert_eq!((r.status, r.headers), (200, vec![]));
}

#[test]
fn leftovers_of_a_crash_are_removed_and_nothing_else() {
    let s = Site::new("leftovers");
    let leftover = ".upload-00000000deadbeef.part";
    s.file(&format!("store/{leftover}"), "half");
    s.file(&format!("other/{leftover}"), "half");
    s.file(".upload-00000000deadbeef.part", "not a store");
    s.file("store/.upload-x.part", "mine");
    s.file("store/a.txt", "mine");
    s.mkdir("store/.upload-0000000000000000.part");
    let cfg = s.config(
        "server {\n listen 127.0.0.1:8080;\n root @/www;\n\
         location /a/ { upload_store @/store; }\n location /b/ { upload_store @/store; }\n\
         location /c/ { upload_store @/other; }\n location /d/ { upload_store @/missing; }\n}\n",
    );
    assert_eq!(upload::remove_leftovers(&cfg), Vec::<String>::new());
    assert_eq!(
        names(&s, "store"),
        vec![".upload-0000000000000000.part", ".upload-x.part", "a.txt"]
    );
    assert!(names(&s, "other").is_empty());
    assert!(s.path(leftover).exists());
}
