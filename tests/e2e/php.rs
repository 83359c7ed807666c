//! PHP through `php-cgi`, a third-party CGI host that refuses to run a
//! script unless `SCRIPT_FILENAME` and `REDIRECT_STATUS` are right: forms
//! posted URL-encoded, multipart and chunked, a query string, an index
//! page, and the shipped `www/php` pages. Skipped with a message on the
//! real stderr where php-cgi is not installed, and failed in CI (`.ci/run`
//! installs it).

use crate::common::*;

/// Echoes what PHP parsed, as plain text.
const FORM_PHP: &str = r#"<?php
header('Content-Type: text/plain; charset=utf-8');
header('X-Php-Test: yes');
echo "method=", $_SERVER['REQUEST_METHOD'], "\n";
foreach ($_GET as $k => $v) echo "get:$k=$v\n";
foreach ($_POST as $k => $v) echo "post:$k=$v\n";
foreach ($_FILES as $k => $f) {
    echo "file:$k=", $f['name'], " size=", $f['size'], " error=", $f['error'],
         " md5=", $f['error'] === 0 ? md5_file($f['tmp_name']) : '-', "\n";
}
"#;

const INDEX_PHP: &str = "<?php echo 'index.php ran: ', 6 * 7, \"\\n\";\n";

/// Whether php-cgi is there; if not, the test is skipped through
/// `common::skip` (said on the real stderr; a failure in CI).
fn php_cgi_or_skip(test: &str) -> bool {
    if which("php-cgi").is_none() {
        skip(test, "php-cgi is not installed (apt-get install php-cgi)");
        return false;
    }
    true
}

fn php_site() -> Server {
    let dir = TempDir::new("php");
    dir.write("www/php/form.php", FORM_PHP);
    dir.write("www/php/index.php", INDEX_PHP);
    Server::start(
        dir,
        "server {
    listen 127.0.0.1:$P0;
    server_name localhost;
    root www;
    location /php/ {
        cgi .php php-cgi;
        allowed_methods GET HEAD POST;
        index index.php;
    }
}",
    )
}

#[track_caller]
fn assert_lines(r: &Response, lines: &[&str]) {
    assert_status(r, 200);
    let body = r.body_str();
    for l in lines {
        assert!(
            body.lines().any(|got| got == *l),
            "PHP output lacks {l:?}:\n{}",
            r.describe()
        );
    }
}

#[test]
fn form_post_echoes_the_submitted_values() {
    if !php_cgi_or_skip("form_post_echoes_the_submitted_values") {
        return;
    }
    let srv = php_site();
    let body = "name=Ada+Lovelace&lang=r%C3%BCst&empty=&sym=a%26b%3Dc";
    let r = srv.raw(&format!(
        "POST /php/form.php HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert_lines(
        &r,
        &[
            "method=POST",
            "post:name=Ada Lovelace",
            "post:lang=rüst",
            "post:empty=",
            "post:sym=a&b=c",
        ],
    );
    assert_content_type(&r, &["text/plain; charset=utf-8"]);
    assert_eq!(r.must_header("x-php-test"), "yes");
    assert_date_and_server(&r);
}

#[test]
fn get_with_a_query_string() {
    if !php_cgi_or_skip("get_with_a_query_string") {
        return;
    }
    let srv = php_site();
    let r = srv.get("/php/form.php?q=hello+world&n=42");
    assert_lines(&r, &["method=GET", "get:q=hello world", "get:n=42"]);
}

#[test]
fn multipart_and_chunked_posts() {
    if !php_cgi_or_skip("multipart_and_chunked_posts") {
        return;
    }
    let srv = php_site();
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let boundary = "phpTestBoundary123";
    let body = multipart(
        boundary,
        &[
            Part::field("title", "with a file"),
            Part::file("upload", "bytes.bin", &data),
        ],
    );
    let md5 = md5_hex(&data);
    // With a length...
    let mut c = srv.connect(0);
    let mut req = format!(
        "POST /php/form.php HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let r = c.send_while_reading(req);
    let file_line = format!("file:upload=bytes.bin size=10000 error=0 md5={md5}");
    assert_lines(&r, &["method=POST", "post:title=with a file", &file_line]);
    // ...and chunked: PHP reads CONTENT_LENGTH bytes, so the server must
    // have decoded the body first and set it.
    let mut req = format!(
        "POST /php/form.php HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    req.extend(chunked(&body, &[1000, 7, 3000]));
    let r = c.send_while_reading(req);
    assert_lines(&r, &["method=POST", "post:title=with a file", &file_line]);
}

#[test]
fn folder_runs_its_index_php() {
    if !php_cgi_or_skip("folder_runs_its_index_php") {
        return;
    }
    let srv = php_site();
    let r = srv.get("/php/");
    assert_status(&r, 200);
    assert_eq!(r.body_str(), "index.php ran: 42\n", "{}", r.describe());
}

#[test]
fn shipped_php_pages() {
    if !php_cgi_or_skip("shipped_php_pages") {
        return;
    }
    let srv = start_shipped_site("shipped-php");
    let r = srv.get("/php/?q=zebra");
    assert_status(&r, 200);
    let page = r.body_str();
    assert!(!page.contains("<?php"), "the PHP source was sent");
    assert!(page.contains("zebra"), "{}", r.describe());
    let body = "name=Grace+Hopper&lang=COBOL&comment=first+line%0Asecond";
    let r = srv.raw(&format!(
        "POST /php/form.php HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert_status(&r, 200);
    let page = r.body_str();
    assert!(!page.contains("<?php"), "the PHP source was sent");
    for want in ["Grace Hopper", "COBOL", "first line<br />\nsecond"] {
        assert!(page.contains(want), "the page lacks {want:?}:\n{page}");
    }
}

/// MD5 (RFC 1321), enough to check what PHP's md5_file says.
fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0) = (
        0x6745_2301u32,
        0xefcd_ab89u32,
        0x98ba_dcfeu32,
        0x1032_5476u32,
    );
    for block in msg.chunks_exact(64) {
        let m: Vec<u32> = block
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn md5_helper_matches_rfc1321() {
    assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        md5_hex(b"The quick brown fox jumps over the lazy dog"),
        "9e107d9d372bb6826bd81d3542a419d6"
    );
}
