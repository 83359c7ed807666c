//! The shipped demo's dynamic parts: `localserver.conf`'s `/cgi-bin/`,
//! `/uploads/` routes with `www/cgi-bin` and `www/upload.html`, served from
//! a temporary copy (only the port changed) so uploads never touch the
//! working tree.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::common::*;

fn repo_file(rel: &str) -> Vec<u8> {
    fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

#[test]
fn env_scripts_answer() {
    let srv = start_shipped_site("shipped-cgi");
    let r = srv.get("/cgi-bin/env.py/extra/path?x=1");
    assert_status(&r, 200);
    assert_content_type(&r, &["text/plain; charset=utf-8"]);
    let body = r.body_str();
    for line in [
        "GATEWAY_INTERFACE=CGI/1.1",
        "PATH_INFO=/extra/path",
        "QUERY_STRING=x=1",
        "REQUEST_METHOD=GET",
        "SCRIPT_NAME=/cgi-bin/env.py",
        "# stdin length: 0",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "env.py lacks {line:?}:\n{body}"
        );
    }
    let r = srv.raw(
        "POST /cgi-bin/env.sh?y=2 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_status(&r, 200);
    let body = r.body_str();
    for line in [
        "QUERY_STRING=y=2",
        "REQUEST_METHOD=POST",
        "# stdin length: 5",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "env.sh lacks {line:?}:\n{body}"
        );
    }
}

#[test]
fn demo_scripts_behave_as_documented() {
    let srv = start_shipped_site("shipped-demo-scripts");
    let r = srv.get("/cgi-bin/status.sh");
    assert_eq!(r.status, 418, "{}", r.describe());
    assert_eq!(r.must_header("x-teapot"), "short and stout");
    let r = srv.get("/cgi-bin/fail.py");
    assert_status(&r, 502);
    let r = srv.get("/cgi-bin/chunked.py");
    assert_status(&r, 200);
    assert_eq!(
        r.header("transfer-encoding").map(str::to_ascii_lowercase),
        Some("chunked".to_string())
    );
    assert!(r.body_str().starts_with("piece 1 of 5\n") && r.body_str().ends_with("done\n"));
    let r = srv.get("/cgi-bin/slow.py?0.2");
    assert_status(&r, 200);
    assert!(r.body_str().starts_with("slept "));
    // The form handler, URL-encoded and multipart.
    let body = "name=Ada+Lovelace&lang=Rust&comment=hi";
    let r = srv.raw(&format!(
        "POST /cgi-bin/form.py HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert_status(&r, 200);
    assert!(
        r.body_str().contains("<td>Ada Lovelace</td>"),
        "{}",
        r.describe()
    );
    let mp = multipart(
        "formBoundary",
        &[
            Part::field("title", "T&amp"),
            Part::file("file", "notes.txt", b"some notes"),
        ],
    );
    let mut req = format!(
        "POST /cgi-bin/form.py HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=formBoundary\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        mp.len()
    )
    .into_bytes();
    req.extend_from_slice(&mp);
    let r = srv.connect(0).send_while_reading(req);
    assert_status(&r, 200);
    let page = r.body_str();
    assert!(page.contains("<td>T&amp;amp</td>"), "{page}");
    assert!(page.contains("<code>notes.txt</code>, 10 bytes"), "{page}");
    // GET shows the form.
    let r = srv.get("/cgi-bin/form.py");
    assert_status(&r, 200);
    assert!(r.body_str().contains("<form method=\"post\""));
}

#[test]
fn upload_page_answers() {
    let srv = start_shipped_site("shipped-upload-page");
    let r = srv.get("/upload.html");
    assert_status(&r, 200);
    assert_content_type(&r, &["text/html; charset=utf-8"]);
    assert_eq!(r.body, repo_file("www/upload.html"));
    let page = r.body_str();
    assert!(page.contains("action=\"/uploads/\""));
    assert!(page.contains("enctype=\"multipart/form-data\""));
    assert!(page.contains("/cgi-bin/upload_count.py"));
    // The index links to it.
    assert!(srv.get("/").body_str().contains("/upload.html"));
}

#[test]
fn upload_list_and_delete_through_the_shipped_routes() {
    let srv = start_shipped_site("shipped-uploads");
    let store = srv.dir.join("www/uploads");
    let before = dir_names(&store);
    let name = format!("site-test-{}.txt", srv.port(0));
    let content = b"uploaded through the shipped configuration\n";
    let body = multipart("siteBoundary", &[Part::file("file", &name, content)]);
    let mut req = format!(
        "POST /uploads/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=siteBoundary\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let r = srv.connect(0).send_while_reading(req);
    assert_status(&r, 201);
    assert!(
        r.must_header("location")
            .ends_with(&format!("/uploads/{name}"))
    );
    assert_eq!(fs::read(store.join(&name)).unwrap(), content);

    let r = srv.get(&format!("/uploads/{name}"));
    assert_status(&r, 200);
    assert_eq!(r.body, content);
    // The listing and the JSON counter see it.
    assert!(srv.get("/uploads/").body_str().contains(&name));
    let r = srv.get("/cgi-bin/upload_count.py");
    assert_status(&r, 200);
    assert_content_type(&r, &["application/json"]);
    assert!(
        r.body_str().contains(&format!("\"name\": \"{name}\"")),
        "{}",
        r.describe()
    );

    let r = srv.raw(&format!(
        "DELETE /uploads/{name} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ));
    assert_status(&r, 204);
    assert_status(&srv.get(&format!("/uploads/{name}")), 404);
    assert!(
        !srv.get("/cgi-bin/upload_count.py")
            .body_str()
            .contains(&name)
    );
    assert!(
        wait_until(Duration::from_secs(2), || dir_names(&store) == before),
        "the store is not back to {before:?}: {:?}",
        dir_names(&store)
    );
}

#[test]
fn php_sources_are_never_sent_even_without_php() {
    // Whatever happens to php-cgi, /php/ runs the page or fails; it never
    // answers with the source.
    let srv = start_shipped_site("shipped-php-source");
    for path in ["/php/", "/php/index.php", "/php/form.php"] {
        let r = srv.get(path);
        assert!(
            !r.body_str().contains("<?php"),
            "{path} sent the PHP source:\n{}",
            r.describe()
        );
    }
}
