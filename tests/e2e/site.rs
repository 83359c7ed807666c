//! The shipped demo: `localserver.conf` and `www/` served together, on a
//! free port instead of 8080 (the config and the site are copied into a
//! temporary folder, with only the port changed).

use std::fs;
use std::path::Path;

use crate::common::*;

fn shipped_site() -> Server {
    start_shipped_site("shipped-site")
}

fn file(rel: &str) -> Vec<u8> {
    fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

#[test]
fn index_page() {
    let srv = shipped_site();
    let r = srv.get("/");
    assert_status(&r, 200);
    assert_content_type(&r, &["text/html; charset=utf-8"]);
    assert_eq!(r.body, file("www/index.html"));
    for link in ["/about.html", "/files/", "/docs/"] {
        assert!(r.body_str().contains(link), "index should link {link}");
    }
}

#[test]
fn about_page_stylesheet_and_images() {
    let srv = shipped_site();
    let r = srv.get("/about.html");
    assert_status(&r, 200);
    assert_eq!(r.body, file("www/about.html"));
    let css = srv.get("/style.css");
    assert_status(&css, 200);
    assert_content_type(&css, &["text/css; charset=utf-8"]);
    assert_eq!(css.body, file("www/style.css"));
    let png = srv.get("/img/logo.png");
    assert_status(&png, 200);
    assert_content_type(&png, &["image/png"]);
    assert!(png.body.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(png.body, file("www/img/logo.png"));
    let svg = srv.get("/img/logo.svg");
    assert_status(&svg, 200);
    assert_content_type(&svg, &["image/svg+xml", "image/svg+xml; charset=utf-8"]);
}

#[test]
fn files_folder_is_listed() {
    let srv = shipped_site();
    let r = srv.get("/files/");
    assert_status(&r, 200);
    let body = r.body_str();
    for name in [
        "readme.txt",
        "data.json",
        "hello.js",
        "logo-copy.png",
        "sub/",
    ] {
        assert!(body.contains(name), "listing lacks {name}:\n{body}");
    }
    assert!(body.find("sub/").unwrap() < body.find("data.json").unwrap());
    let r = srv.get("/files");
    assert_status(&r, 301);
}

#[test]
fn redirect_alias_and_custom_404() {
    let srv = shipped_site();
    let r = srv.get("/old");
    assert_status(&r, 301);
    assert_eq!(r.must_header("location"), "/");

    let r = srv.get("/docs/");
    assert_status(&r, 200);
    assert_eq!(r.body, file("www/manual/index.html"));
    let r = srv.get("/docs/config.html");
    assert_status(&r, 200);
    assert_eq!(r.body, file("www/manual/config.html"));

    let r = srv.get("/no-such-page");
    assert_status(&r, 404);
    assert_eq!(r.body, file("www/errors/404.html"));
}

#[test]
fn only_get_and_head() {
    let srv = shipped_site();
    let r = srv.raw("DELETE / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_status(&r, 405);
    assert!(r.must_header("allow").contains("GET"));
}

#[test]
fn second_virtual_server() {
    let srv = shipped_site();
    let r = srv.get_host(0, "static.localhost", "/");
    assert_status(&r, 200);
    assert_eq!(r.body, file("www/static-vhost/index.html"));
    let r = srv.get_host(0, "Static.Localhost:8080", "/");
    assert_eq!(r.body, file("www/static-vhost/index.html"));
    // Anything else is the default server.
    let r = srv.get_host(0, "example.test", "/");
    assert_eq!(r.body, file("www/index.html"));
}

#[test]
fn site_is_small() {
    fn size(p: &Path) -> u64 {
        let m = fs::symlink_metadata(p).unwrap();
        if m.is_dir() {
            fs::read_dir(p)
                .unwrap()
                .map(|e| size(&e.unwrap().path()))
                .sum()
        } else {
            m.len()
        }
    }
    let total = size(&Path::new(env!("CARGO_MANIFEST_DIR")).join("www"));
    assert!(
        total < 200 * 1024,
        "www/ is {total} bytes, keep it under 200 KiB"
    );
}
