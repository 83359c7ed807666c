//! The whole state machine driven over an in-memory transport.

use super::*;
use crate::config;
use crate::fuzzing::Lent;
use crate::server::transport::MemTransport;
use std::path::PathBuf;

struct World {
    lent: Lent,
    dir: PathBuf,
    /// Plain upload bodies are spliced ([`Env::splice`]), as the loop does.
    splice: bool,
}

impl std::ops::Deref for World {
    type Target = Lent;
    fn deref(&self) -> &Lent {
        &self.lent
    }
}

impl std::ops::DerefMut for World {
    fn deref_mut(&mut self) -> &mut Lent {
        &mut self.lent
    }
}

impl World {
    fn new(name: &str, extra: &str) -> World {
        let dir = std::env::temp_dir().join(format!("ls-conn-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("www/sub")).unwrap();
        std::fs::write(dir.join("www/index.html"), b"<h1>home</h1>").unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.join("www/big.bin"), &big).unwrap();
        let text = format!(
            "keepalive_timeout 5s; client_header_timeout 2s; keepalive_requests 100;\n\
                 server {{ listen 127.0.0.1:8080; root {}; {extra} }}\n",
            dir.join("www").display()
        );
        let (config, _) = config::parse_str(&text, "test.conf", &dir).unwrap();
        World {
            lent: Lent::new(config).unwrap(),
            dir,
            splice: false,
        }
    }

    fn conn(&self) -> Conn<MemTransport> {
        let mut c = Conn::new(
            MemTransport::default(),
            0,
            std::net::SocketAddr::from(([127, 0, 0, 1], 40000)),
            self.now + 2_000,
        );
        c.writable = true;
        c
    }

    /// Feed `bytes` and drive until the connection waits or closes. No
    /// epoll watches a CGI's pipes here: like a loop whose every turn
    /// reported them, each drive may try them (a try that finds nothing
    /// clears their readiness again).
    fn run(&mut self, c: &mut Conn<MemTransport>, bytes: &[u8]) -> Drive {
        if !bytes.is_empty() {
            c.io.feed(bytes);
            c.readable = true;
        }
        for _ in 0..10_000 {
            c.cgi_event(true, true);
            let splice = self.splice;
            let mut env = self.lent.env();
            env.shared.splice = splice;
            match c.drive(&mut env) {
                Drive::Again => continue,
                d => {
                    if d == Drive::Wait
                        && c.writable
                        && c.state() == State::Send
                        && !c.waits_for_disk()
                        && !c.sleeping()
                    {
                        continue;
                    }
                    return d;
                }
            }
        }
        panic!("connection never settled");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Split a byte stream into responses (heads + Content-Length bodies).
fn responses(out: &[u8]) -> Vec<(u16, String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut rest = out;
    while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).to_string();
        let status: u16 = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |n| n.trim().parse().unwrap());
        let body_end = (end + 4 + len).min(rest.len());
        v.push((status, head, rest[end + 4..body_end].to_vec()));
        rest = &rest[body_end..];
    }
    v
}

#[test]
fn get_then_idle_holds_no_buffer() {
    let mut w = World::new("get", "");
    let mut c = w.conn();
    let d = w.run(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(d, Drive::Wait);
    let r = responses(&c.io.output);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, 200);
    assert_eq!(r[0].2, b"<h1>home</h1>");
    assert_eq!(c.state(), State::Idle);
    assert!(
        !c.holds_buffers(),
        "an idle keep-alive connection holds no buffer"
    );
    assert_eq!(w.shared.pool.out, 0);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut w = World::new("pipe", "");
    let mut c = w.conn();
    let d = w.run(
            &mut c,
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
        );
    assert_eq!(d, Drive::Wait);
    let out = String::from_utf8_lossy(&c.io.output).to_string();
    let a = out.find("200 OK").unwrap();
    let b = out[a + 1..].find("200 OK").unwrap() + a + 1;
    let nf = out.find(" 404 ").unwrap();
    assert!(a < b && b < nf, "{out}");
    assert_eq!(
        out.matches("<h1>home</h1>").count(),
        1,
        "HEAD sends no body"
    );
    assert!(!c.holds_buffers());
}

#[test]
fn request_split_at_every_byte_gives_the_same_answer() {
    let req = b"GET /index.html HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    let mut w = World::new("split", "");
    let mut whole = w.conn();
    w.run(&mut whole, req);
    for cut in 1..req.len() {
        let mut c = w.conn();
        assert_eq!(w.run(&mut c, &req[..cut]), Drive::Wait);
        assert!(
            c.io.output.is_empty(),
            "no answer before the head ends (cut {cut})"
        );
        w.run(&mut c, &req[cut..]);
        assert_eq!(c.io.output, whole.io.output, "cut at {cut}");
    }
}

#[test]
fn short_writes_deliver_every_byte() {
    let mut w = World::new("short", "");
    let mut c = w.conn();
    c.io.write_limit = Some(777);
    let mut d = w.run(&mut c, b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    // The transport never blocks, so "Wait" only happens once done; a
    // real socket would clear `writable` on a short write and wait.
    for _ in 0..1000 {
        if c.state() == State::Idle {
            break;
        }
        c.writable = true;
        d = w.run(&mut c, b"");
    }
    assert_eq!(d, Drive::Wait);
    let r = responses(&c.io.output);
    let want: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].2, want);
}

#[test]
fn bad_head_gets_400_then_lingers() {
    let mut w = World::new("bad", "");
    let mut c = w.conn();
    let d = w.run(&mut c, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n");
    assert_eq!(d, Drive::Wait);
    let r = responses(&c.io.output);
    assert_eq!(r[0].0, 400);
    assert!(r[0].1.contains("Connection: close"));
    assert_eq!(c.state(), State::Linger);
    assert!(c.io.shut, "write side shut down");
    c.io.eof = true;
    c.readable = true;
    assert_eq!(w.run(&mut c, b""), Drive::Close);
    assert_eq!(w.shared.pool.out, 0, "every buffer back in the pool");
}

#[test]
fn unread_body_is_discarded_not_parsed() {
    let mut w = World::new("discard", "");
    let mut c = w.conn();
    w.run(
            &mut c,
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\nGET /evil HTTP/1.1\r\nX: y\r\n\r\n",
        );
    w.run(&mut c, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = responses(&c.io.output);
    assert_eq!(r.iter().map(|r| r.0).collect::<Vec<_>>(), vec![200, 404]);
}

#[test]
fn slow_head_times_out_with_408() {
    let mut w = World::new("slow", "");
    let mut c = w.conn();
    assert_eq!(w.run(&mut c, b"GET / HT"), Drive::Wait);
    w.now += 2_001;
    assert!(c.deadline <= w.now);
    let d = c.on_timeout(&mut w.env());
    assert_eq!(d, Drive::Wait);
    assert_eq!(responses(&c.io.output)[0].0, 408);
    assert_eq!(c.state(), State::Linger);
}

#[test]
fn lingering_reads_a_bounded_amount() {
    // A client that goes on sending after its error reply: the lingering
    // close drops at most LINGER_MAX_BYTES, then closes (tests/abuse.rs).
    let mut w = World::new("linger-cap", "");
    let mut c = w.conn();
    w.run(&mut c, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n");
    assert_eq!(c.state(), State::Linger);
    let chunk = vec![b'z'; 1 << 20];
    for _ in 0..(super::LINGER_MAX_BYTES >> 20) + 4 {
        c.io.feed(&chunk);
    }
    c.readable = true;
    c.peer_hup = true; // keep reading after short reads
    let mut closed = false;
    for _ in 0..100_000 {
        if c.drive(&mut w.env()) == Drive::Close {
            closed = true;
            break;
        }
    }
    assert!(closed, "still lingering");
    let left: usize = c.io.input.iter().map(Vec::len).sum();
    assert!(left >= 3 << 20, "it read all but {left} bytes");
}

#[test]
fn a_silent_new_connection_is_closed_without_a_408() {
    let mut w = World::new("silent", "");
    let mut c = w.conn();
    assert_eq!(w.run(&mut c, b""), Drive::Wait);
    w.now += 2_001;
    assert!(c.deadline <= w.now);
    assert_eq!(c.on_timeout(&mut w.env()), Drive::Close);
    assert!(c.io.output.is_empty(), "{:?}", c.io.output);
    assert!(!c.holds_buffers());
}

#[test]
fn http10_closes_and_keep_alive_10_stays() {
    let mut w = World::new("h10", "");
    let mut c = w.conn();
    assert_eq!(w.run(&mut c, b"GET / HTTP/1.0\r\n\r\n"), Drive::Close);
    let mut c = w.conn();
    assert_eq!(
        w.run(&mut c, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        Drive::Wait
    );
    let r = responses(&c.io.output);
    assert!(r[0].1.contains("Connection: keep-alive"), "{}", r[0].1);
}

#[test]
fn keepalive_requests_limit_closes() {
    let mut w = World::new("limit", "");
    w.config.keepalive_requests = 2;
    let mut c = w.conn();
    assert_eq!(
        w.run(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        Drive::Wait
    );
    assert_eq!(
        w.run(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        Drive::Close
    );
    let r = responses(&c.io.output);
    assert!(r[1].1.contains("Connection: close"));
}

#[test]
fn oversized_head_gets_431() {
    let mut w = World::new("big", "");
    let mut c = w.conn();
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..400 {
        req.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(40)).as_bytes());
    }
    w.run(&mut c, &req);
    assert_eq!(responses(&c.io.output)[0].0, 431);
}

/// Drive until the output holds a complete answer with `needle`, letting a
/// CGI child run in real time (no epoll here: `run` reports its pipes ready).
fn run_until(w: &mut World, c: &mut Conn<MemTransport>, needle: &[u8]) -> Drive {
    let mut d = Drive::Wait;
    for _ in 0..500 {
        d = w.run(c, b"");
        let found = c.io.output.windows(needle.len()).any(|x| x == needle);
        let settled = matches!(c.state(), State::Idle | State::Linger);
        if d == Drive::Close || (found && settled) {
            return d;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    d
}

fn upload_world(name: &str) -> World {
    let w = World::new(
        name,
        "location /up/ { upload_store up; allowed_methods GET PUT POST DELETE; \
         client_max_body_size 64; }",
    );
    std::fs::create_dir_all(w.dir.join("up")).unwrap();
    w
}

fn stored(w: &World) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(w.dir.join("up"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn chunked_put_is_stored_whole_and_the_connection_stays_in_step() {
    let mut w = upload_world("chunked-put");
    let mut c = w.conn();
    let req = b"PUT /up/a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    // One byte at a time: the decoder and the state machine resume anywhere.
    for b in req.iter() {
        w.run(&mut c, std::slice::from_ref(b));
    }
    let r = responses(&c.io.output);
    assert_eq!(
        r.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![201, 404],
        "{r:?}"
    );
    assert!(r[0].1.contains("Location: /up/a.txt"));
    assert_eq!(
        std::fs::read(w.dir.join("up/a.txt")).unwrap(),
        b"hello, world"
    );
    assert_eq!(stored(&w), vec!["a.txt"]);
}

#[test]
fn chunked_body_over_the_limit_is_413_and_leaves_nothing() {
    let mut w = upload_world("chunked-413");
    let mut c = w.conn();
    let mut req =
        b"PUT /up/big.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..10 {
        req.extend_from_slice(b"10\r\n0123456789abcdef\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    w.run(&mut c, &req);
    let r = responses(&c.io.output);
    assert_eq!(r[0].0, 413);
    assert!(r[0].1.contains("Connection: close"));
    assert!(stored(&w).is_empty(), "{:?}", stored(&w));
}

#[test]
fn malformed_chunk_is_400_and_closes() {
    let mut w = upload_world("chunked-400");
    let mut c = w.conn();
    w.run(
        &mut c,
        b"PUT /up/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\na\r\n0\r\n\r\n",
    );
    let r = responses(&c.io.output);
    assert_eq!(r[0].0, 400);
    assert_eq!(c.state(), State::Linger);
    assert!(stored(&w).is_empty());
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let mut w = upload_world("expect");
    let mut c = w.conn();
    w.run(
        &mut c,
        b"PUT /up/e.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(c.io.output, b"HTTP/1.1 100 Continue\r\n\r\n");
    w.run(&mut c, b"data");
    let out = String::from_utf8_lossy(&c.io.output).to_string();
    assert!(out.contains("\r\n\r\nHTTP/1.1 201 "), "{out}");
    // ...but not when the answer is already known (rule 20).
    let mut c = w.conn();
    w.run(
        &mut c,
        b"PUT /up/e.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\nExpect: 100-continue\r\n\r\n",
    );
    assert!(c.io.output.starts_with(b"HTTP/1.1 413 "));
}

#[test]
fn client_gone_mid_upload_leaves_nothing() {
    let mut w = upload_world("gone");
    let mut c = w.conn();
    w.run(
        &mut c,
        b"PUT /up/g.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nhalf",
    );
    assert_eq!(c.state(), State::Body);
    assert_eq!(stored(&w).len(), 1, "the temporary file exists meanwhile");
    c.io.eof = true;
    c.readable = true;
    assert_eq!(w.run(&mut c, b""), Drive::Close);
    drop(c);
    assert!(stored(&w).is_empty(), "{:?}", stored(&w));
    assert_eq!(w.shared.pool.out, 0);
}

#[test]
fn a_spliced_upload_is_stored_whole_and_the_connection_stays_in_step() {
    let mut w = World::new(
        "splice",
        "location /up/ { upload_store up; allowed_methods GET PUT; \
         client_max_body_size 1m; }",
    );
    std::fs::create_dir_all(w.dir.join("up")).unwrap();
    w.splice = true;
    let mut c = w.conn();
    c.io.splice = true;
    // More than one splice's worth (and more than a pipe holds).
    let body: Vec<u8> = (0..150_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut req = format!(
        "PUT /up/s.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    // The head and the body's first bytes arrive together: those are read
    // into the buffer and written; the rest, with nothing buffered, is
    // spliced, and the next request behind it is left to be read.
    req.extend_from_slice(&body[..1000]);
    w.run(&mut c, &req);
    assert_eq!(c.state(), State::Body);
    let mut tail = body[1000..].to_vec();
    tail.extend_from_slice(b"GET /up/s.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    for part in tail.chunks(70_000) {
        w.run(&mut c, part);
    }
    assert_eq!(c.io.spliced, body.len() - 1000);
    let r = responses(&c.io.output);
    assert_eq!(
        r.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![201, 200],
        "{r:?}"
    );
    assert_eq!(r[1].2, body);
    assert_eq!(std::fs::read(w.dir.join("up/s.bin")).unwrap(), body);
    assert_eq!(stored(&w), vec!["s.bin"]);
    assert_eq!(c.state(), State::Idle);
    // The loop's pipe is left empty for the next upload.
    let (r, _) = w.shared.splice_pipe.as_ref().unwrap();
    assert!(r.read(&mut [0u8; 1]).is_err(), "bytes left in the pipe");
}

#[test]
fn a_spliced_upload_cut_short_leaves_nothing() {
    let mut w = upload_world("splice-gone");
    w.splice = true;
    let mut c = w.conn();
    c.io.splice = true;
    w.run(
        &mut c,
        b"PUT /up/g.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n",
    );
    w.run(&mut c, b"half");
    assert_eq!(c.io.spliced, 4);
    assert_eq!(c.state(), State::Body);
    c.io.eof = true;
    c.readable = true;
    assert_eq!(w.run(&mut c, b""), Drive::Close);
    drop(c);
    assert!(stored(&w).is_empty(), "{:?}", stored(&w));
}

/// The body of a chunked response (the script's writes may arrive as any
/// number of chunks).
fn dechunk(response: &str) -> String {
    let mut body = String::new();
    let mut rest = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size, 16).unwrap();
        if n == 0 {
            break;
        }
        body.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    body
}

#[test]
fn cgi_gets_the_body_and_its_output_is_chunked() {
    let mut w = World::new(
        "cgi",
        "location /cgi/ { cgi .sh /bin/sh; allowed_methods GET POST; }",
    );
    std::fs::create_dir_all(w.dir.join("www/cgi")).unwrap();
    std::fs::write(
        w.dir.join("www/cgi/echo.sh"),
        "printf 'Content-Type: text/plain\\r\\n\\r\\n'; printf 'len=%s ' \"$CONTENT_LENGTH\"; cat\n",
    )
    .unwrap();
    let mut c = w.conn();
    w.run(
        &mut c,
        b"POST /cgi/echo.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    );
    run_until(&mut w, &mut c, b"0\r\n\r\n");
    let out = String::from_utf8_lossy(&c.io.output).to_string();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Transfer-Encoding: chunked"), "{out}");
    assert_eq!(dechunk(&out), "len=5 hello", "{out}");
    assert!(out.ends_with("0\r\n\r\n"), "{out}");
    assert_eq!(c.state(), State::Idle);
    // A chunked body reaches the script de-chunked, with CONTENT_LENGTH.
    let mut c = w.conn();
    w.run(
        &mut c,
        b"POST /cgi/echo.sh HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    let out = String::from_utf8_lossy(&c.io.output).to_string();
    assert!(
        out.starts_with("HTTP/1.1 400 "),
        "TE in HTTP/1.0 is refused: {out}"
    );
    let mut c = w.conn();
    w.run(
        &mut c,
        b"POST /cgi/echo.sh HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    run_until(&mut w, &mut c, b"0\r\n\r\n");
    let out = String::from_utf8_lossy(&c.io.output).to_string();
    assert_eq!(dechunk(&out), "len=5 abcde", "{out}");
}

#[test]
fn cgi_without_headers_is_502() {
    let mut w = World::new("cgi502", "location /cgi/ { cgi .sh /bin/sh; }");
    std::fs::create_dir_all(w.dir.join("www/cgi")).unwrap();
    std::fs::write(w.dir.join("www/cgi/fail.sh"), "exit 3\n").unwrap();
    let mut c = w.conn();
    w.run(&mut c, b"GET /cgi/fail.sh HTTP/1.1\r\nHost: x\r\n\r\n");
    run_until(&mut w, &mut c, b" 502 ");
    assert!(
        c.io.output.starts_with(b"HTTP/1.1 502 "),
        "{}",
        String::from_utf8_lossy(&c.io.output)
    );
}

#[test]
fn nagle_stays_on_for_a_one_shot_reply_and_goes_off_for_anything_more() {
    let mut w = World::new("nagle", "");
    // Connection: close, small file: one write, nothing in flight before it.
    let mut c = w.conn();
    let d = w.run(
        &mut c,
        b"GET /index.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(d, Drive::Close);
    assert_eq!(responses(&c.io.output)[0].0, 200);
    assert!(!c.io.nodelay, "a one-shot reply must not cost a setsockopt");

    // Keep-alive: the first reply is one-shot, the second is not.
    let mut c = w.conn();
    w.run(&mut c, b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(!c.io.nodelay);
    w.run(&mut c, b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(responses(&c.io.output).len(), 2);
    assert!(
        c.io.nodelay,
        "a second reply may follow unacknowledged bytes"
    );

    // A file body goes out after the head: Nagle off before the first write.
    let mut c = w.conn();
    w.run(
        &mut c,
        b"GET /big.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(responses(&c.io.output)[0].2.len(), 100_000);
    assert!(c.io.nodelay);

    // A short write leaves the rest to follow unacknowledged bytes.
    let mut c = w.conn();
    c.io.write_limit = Some(40);
    let mut d = w.run(
        &mut c,
        b"GET /index.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..100 {
        if d == Drive::Close {
            break;
        }
        c.writable = true;
        d = w.run(&mut c, b"");
    }
    assert_eq!(d, Drive::Close);
    assert_eq!(responses(&c.io.output)[0].2, b"<h1>home</h1>");
    assert!(c.io.nodelay);
}

#[test]
fn cgi_output_that_wraps_the_ring_is_written_whole() {
    // Short writes leave bytes in the output ring while the script's next
    // bytes are framed behind them, so the ring wraps; both segments must
    // go out (once only the first did, and the rest was lost).
    let mut w = World::new("cgiwrap", "location /cgi/ { cgi .sh /bin/sh; }");
    std::fs::create_dir_all(w.dir.join("www/cgi")).unwrap();
    std::fs::write(
        w.dir.join("www/cgi/seq.sh"),
        "printf 'Content-Type: text/plain\\r\\n\\r\\n'; seq 1 40000\n",
    )
    .unwrap();
    let mut c = w.conn();
    c.io.write_limit = Some(7001);
    w.run(&mut c, b"GET /cgi/seq.sh HTTP/1.1\r\nHost: x\r\n\r\n");
    for _ in 0..5000 {
        c.writable = true;
        w.run(&mut c, b"");
        if c.io.output.ends_with(b"\r\n0\r\n\r\n") && c.state() == State::Idle {
            break;
        }
        if c.state() != State::Idle {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    let out = String::from_utf8_lossy(&c.io.output).to_string();
    let want: String = (1..=40000).map(|i| format!("{i}\n")).collect();
    let got = dechunk(&out);
    assert_eq!(got.len(), want.len(), "bytes lost or doubled");
    assert!(got == want, "the output differs from the script's");
}

#[test]
fn a_client_leaving_mid_body_never_gets_a_cut_100_continue() {
    // Found by tests/fuzz.rs: a short write left half of `100 Continue`
    // unsent, then the client's end of stream closed the connection.
    let mut w = upload_world("cut-continue");
    let mut c = w.conn();
    c.io.write_limit = Some(18);
    c.io.feed(
        b"PUT /up/e.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    );
    c.io.eof = true;
    c.readable = true;
    let mut d = Drive::Again;
    c.writable = true;
    for _ in 0..100 {
        // The socket stays unwritable after the short write (no new edge);
        // EPOLLIN|EPOLLRDHUP say the end of stream.
        c.readable = true;
        c.peer_hup = true;
        d = c.drive(&mut w.env());
        if d == Drive::Close {
            break;
        }
    }
    assert_eq!(d, Drive::Close);
    assert_eq!(c.io.output, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(stored(&w).is_empty(), "{:?}", stored(&w));
}

#[test]
fn file_bytes_wait_for_the_next_turn_once_its_budget_is_spent() {
    let mut w = World::new("budget", "");
    let mut c = w.conn();
    let want: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // A turn whose budget other downloads have spent: the head goes out,
    // no file byte does, and the connection asks to be driven again.
    w.shared.sendfile_left = 0;
    c.io.feed(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    c.readable = true;
    assert_eq!(c.drive(&mut w.env()), Drive::Again);
    let r = responses(&c.io.output);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, 200);
    assert!(r[0].2.is_empty(), "{} file bytes sent", r[0].2.len());
    assert!(c.writable, "the socket is still ready");
    assert_eq!(c.state(), State::Send);
    // The next turn has 30,000 bytes: that much is sent, and the budget is
    // left at 0 for the connections after this one.
    w.shared.sendfile_left = 30_000;
    assert_eq!(c.drive(&mut w.env()), Drive::Again);
    assert_eq!(w.shared.sendfile_left, 0);
    assert_eq!(responses(&c.io.output)[0].2, want[..30_000]);
    assert_eq!(c.drive(&mut w.env()), Drive::Again);
    assert_eq!(responses(&c.io.output)[0].2.len(), 30_000);
    // Later turns finish it, byte for byte.
    w.shared.sendfile_left = usize::MAX;
    assert_eq!(w.run(&mut c, b""), Drive::Wait);
    let r = responses(&c.io.output);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].2, want);
    assert_eq!(c.state(), State::Idle);
}

// ---------------------------------------------------------------------------
// Cold files: a file body whose next pages are on disk steps aside, starts
// their read-ahead and is tried again on its timer.
// ---------------------------------------------------------------------------

const MIB: u64 = 1 << 20;

/// `len` bytes that differ from one 512 KiB chunk to the next.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 / 7 % 253) as u8).collect()
}

/// A world with `www/cold.bin` of `len` bytes.
fn cold_world(name: &str, extra: &str, len: usize) -> (World, Vec<u8>) {
    let w = World::new(name, extra);
    let bytes = pattern(len);
    std::fs::write(w.dir.join("www/cold.bin"), &bytes).unwrap();
    (w, bytes)
}

/// The loop's timer: at the connection's deadline, `on_timeout`, then
/// driving until it waits again.
fn fire(w: &mut World, c: &mut Conn<MemTransport>) -> Drive {
    w.now = w.now.max(c.deadline);
    match c.on_timeout(&mut w.env()) {
        Drive::Close => Drive::Close,
        _ if c.waits_for_disk() => Drive::Wait,
        _ => w.run(c, b""),
    }
}

const GET_COLD: &[u8] = b"GET /cold.bin HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn a_file_on_disk_waits_on_its_timer_then_goes_out_whole() {
    let len = 7 * MIB as usize + 123;
    let (mut w, want) = cold_world("cold-resume", "", len);
    let mut c = w.conn();
    c.io.cold = 9;
    w.shared.sendfile_left = MIB as usize;
    let t0 = w.now;
    assert_eq!(w.run(&mut c, GET_COLD), Drive::Wait);
    // The head went out; not one file byte did, and the turn's budget is
    // untouched: the connection waits on its timer alone (Wait, not Again).
    let r = responses(&c.io.output);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, 200);
    assert!(r[0].2.is_empty());
    assert_eq!(w.shared.sendfile_left, MIB as usize);
    assert!(c.waits_for_disk());
    assert_eq!(c.state(), State::Send);
    assert_eq!(c.phase(), Phase::Writing);
    assert_eq!(c.deadline, t0 + RETRY_MIN_MS);
    // This window and the next were asked for at once.
    assert_eq!(c.io.read_aheads, [(0, 2 * MIB), (2 * MIB, 2 * MIB)]);
    assert_eq!(w.shared.board.own(Field::Deferred), 1);
    assert_eq!(c.io.probes, 1);

    // An event before the timer (the socket, a pipelined request): nothing
    // is looked at again.
    c.readable = true;
    assert_eq!(c.drive(&mut w.env()), Drive::Wait);
    assert_eq!(c.io.probes, 1);

    // More tries find the chunk missing: each waits twice as long as the
    // one before, up to RETRY_MAX_MS; the eighth asks for the chunk again.
    // It is all one deferred read.
    let mut delays = Vec::new();
    for _ in 0..8 {
        assert_eq!(fire(&mut w, &mut c), Drive::Wait);
        delays.push(c.deadline - w.now);
    }
    assert_eq!(delays, [4, 8, 16, 16, 16, 16, 16, 16]);
    assert_eq!(RETRY_MAX_MS, 16);
    assert_eq!(c.io.probes, 9);
    assert_eq!(c.io.read_aheads[2..], [(0, SENDFILE_CHUNK as u64)]);
    assert_eq!(w.shared.board.own(Field::Deferred), 1);
    assert_eq!(responses(&c.io.output)[0].2.len(), 0);

    // In memory now: the rest goes, one probe per chunk, and the disk is
    // asked for the next window each time the sending enters one.
    w.shared.sendfile_left = usize::MAX;
    assert_eq!(fire(&mut w, &mut c), Drive::Wait);
    assert_eq!(c.state(), State::Idle);
    let r = responses(&c.io.output);
    assert_eq!(r.len(), 1);
    assert!(r[0].2 == want, "the body differs from the file");
    assert_eq!(
        c.io.read_aheads[3..],
        [(4 * MIB, 2 * MIB), (6 * MIB, MIB + 123)]
    );
    assert_eq!(c.io.probes as usize, 9 + len.div_ceil(SENDFILE_CHUNK));
    assert_eq!(w.shared.board.own(Field::Deferred), 1);
    assert!(!c.holds_buffers());
    assert_eq!(w.shared.pool.out, 0);
}

#[test]
fn a_try_in_a_turn_whose_budget_is_spent_goes_on_next_turn() {
    // The timer fires in a turn whose file budget other downloads spent:
    // no probe, no byte; the connection must come back next turn like any
    // other (it once sat until send_timeout, taken for a waiting one).
    let (mut w, want) = cold_world("cold-budget", "", 2 * MIB as usize);
    let mut c = w.conn();
    c.io.cold = 1;
    assert_eq!(w.run(&mut c, GET_COLD), Drive::Wait);
    assert!(c.waits_for_disk());
    w.now = c.deadline;
    w.shared.sendfile_left = 0;
    assert_eq!(c.on_timeout(&mut w.env()), Drive::Again);
    assert!(!c.waits_for_disk());
    assert_eq!(c.io.probes, 1);
    w.shared.sendfile_left = usize::MAX;
    assert_eq!(c.drive(&mut w.env()), Drive::Again);
    assert_eq!(c.io.probes, 2);
    assert_eq!(w.run(&mut c, b""), Drive::Wait);
    assert!(responses(&c.io.output)[0].2 == want);
    assert_eq!(c.state(), State::Idle);
}

#[test]
fn a_warm_file_costs_one_probe_per_chunk_and_no_read_ahead() {
    let len = 3 * MIB as usize;
    let (mut w, want) = cold_world("cold-warm", "", len);
    let mut c = w.conn();
    assert_eq!(w.run(&mut c, GET_COLD), Drive::Wait);
    assert!(responses(&c.io.output)[0].2 == want);
    assert_eq!(c.io.probes as usize, len / SENDFILE_CHUNK);
    assert!(c.io.read_aheads.is_empty());
    assert_eq!(w.shared.board.own(Field::Deferred), 0);
}

#[test]
fn a_filesystem_that_cannot_tell_costs_one_probe_per_file() {
    // tmpfs answers EOPNOTSUPP to RWF_NOWAIT: sent as before, probed once.
    let (mut w, want) = cold_world("cold-tmpfs", "", 3 * MIB as usize);
    let mut c = w.conn();
    c.io.no_probe = true;
    assert_eq!(w.run(&mut c, GET_COLD), Drive::Wait);
    assert!(responses(&c.io.output)[0].2 == want);
    assert_eq!(c.io.probes, 1);
    assert!(c.io.read_aheads.is_empty());
}

#[test]
fn a_client_gone_while_its_pages_are_read_costs_nothing_more() {
    let (mut w, _) = cold_world("cold-gone", "", 3 * MIB as usize);
    let mut c = w.conn();
    c.io.cold = u32::MAX;
    assert_eq!(w.run(&mut c, GET_COLD), Drive::Wait);
    let sent = c.io.output.len();
    // A half-close (the peer's FIN, the connection still whole) is not a
    // leaving: it still gets its answer later.
    c.peer_hup = true;
    c.readable = true;
    assert_eq!(c.drive(&mut w.env()), Drive::Wait);
    assert!(c.waits_for_disk());
    // The client resets the connection (it closed with unread bytes): the
    // event that says so closes it, before its timer, with no probe and no
    // byte more.
    c.io.reset = true;
    assert_eq!(c.drive(&mut w.env()), Drive::Close);
    assert_eq!(c.io.probes, 1);
    assert_eq!(c.io.read_aheads.len(), 2);
    assert_eq!(c.io.output.len(), sent);
    assert!(!c.holds_buffers());
    assert!(
        !c.waits_for_disk(),
        "the file is let go with the connection"
    );
    assert_eq!(w.shared.pool.out, 0);
}

#[test]
fn a_file_that_shrinks_while_its_pages_are_read_closes() {
    let (mut w, _) = cold_world("cold-shrink", "", 2 * MIB as usize);
    let mut c = w.conn();
    c.io.cold = 1;
    assert_eq!(w.run(&mut c, GET_COLD), Drive::Wait);
    let head = c.io.output.len();
    std::fs::File::options()
        .write(true)
        .open(w.dir.join("www/cold.bin"))
        .unwrap()
        .set_len(0)
        .unwrap();
    // The promised length cannot be kept: the only honest end is to close.
    assert_eq!(fire(&mut w, &mut c), Drive::Close);
    assert_eq!(c.io.output.len(), head);
    assert_eq!(w.shared.pool.out, 0);
}

#[test]
fn a_file_replaced_while_its_pages_are_read_is_sent_as_it_was() {
    let (mut w, want) = cold_world("cold-replace", "", 2 * MIB as usize);
    let mut c = w.conn();
    c.io.cold = 1;
    assert_eq!(w.run(&mut c, GET_COLD), Drive::Wait);
    // A new file renamed over it: the open descriptor still reads the old one.
    std::fs::write(w.dir.join("www/new.bin"), b"new").unwrap();
    std::fs::rename(w.dir.join("www/new.bin"), w.dir.join("www/cold.bin")).unwrap();
    assert_eq!(fire(&mut w, &mut c), Drive::Wait);
    assert!(responses(&c.io.output)[0].2 == want);
    assert_eq!(c.state(), State::Idle);
}

#[test]
fn ranges_and_gzip_siblings_wait_for_their_pages_too() {
    let (mut w, want) = cold_world("cold-range", "gzip_static on;", 3 * MIB as usize);
    let gz = pattern(MIB as usize + 5);
    std::fs::write(w.dir.join("www/cold.bin.gz"), &gz).unwrap();
    let mut c = w.conn();
    // A range: read-ahead starts where it starts and stops where it ends.
    c.io.cold = 1;
    let range = b"GET /cold.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=1000000-2999999\r\n\r\n";
    assert_eq!(w.run(&mut c, range), Drive::Wait);
    assert!(c.waits_for_disk());
    assert_eq!(c.io.read_aheads, [(1_000_000, 2_000_000)]);
    assert_eq!(fire(&mut w, &mut c), Drive::Wait);
    let r = responses(&c.io.output);
    assert_eq!(r[0].0, 206);
    assert!(r[0].2 == want[1_000_000..3_000_000]);
    // The `.gz` sibling is a file body like any other.
    c.io.output.clear();
    c.io.read_aheads.clear();
    c.io.cold = 1;
    let gzip = b"GET /cold.bin HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n";
    assert_eq!(w.run(&mut c, gzip), Drive::Wait);
    assert!(c.waits_for_disk());
    assert_eq!(c.io.read_aheads, [(0, MIB + 5)]);
    assert_eq!(fire(&mut w, &mut c), Drive::Wait);
    let r = responses(&c.io.output);
    assert!(r[0].1.contains("Content-Encoding: gzip"), "{}", r[0].1);
    assert!(r[0].2 == gz);
    assert_eq!(w.shared.board.own(Field::Deferred), 2);
}

#[test]
fn an_upload_served_back_waits_for_its_pages_too() {
    let mut w = World::new(
        "cold-upload",
        "location /up/ { upload_store up; allowed_methods GET PUT; client_max_body_size 1m; }",
    );
    std::fs::create_dir_all(w.dir.join("up")).unwrap();
    let mut c = w.conn();
    // Over the open-file cache's 16 KiB of kept bytes: sent from the file.
    let body = pattern(100_000);
    let mut put = b"PUT /up/u.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".to_vec();
    put.extend_from_slice(&body);
    w.run(&mut c, &put);
    assert_eq!(responses(&c.io.output)[0].0, 201);
    c.io.output.clear();
    c.io.cold = 1;
    assert_eq!(
        w.run(&mut c, b"GET /up/u.bin HTTP/1.1\r\nHost: x\r\n\r\n"),
        Drive::Wait
    );
    assert!(c.waits_for_disk());
    assert_eq!(c.io.read_aheads, [(0, 100_000)]);
    assert_eq!(fire(&mut w, &mut c), Drive::Wait);
    assert!(responses(&c.io.output)[0].2 == body);
    assert_eq!(c.state(), State::Idle);
}

#[test]
fn pages_never_read_are_sent_anyway_after_send_timeout() {
    // A disk that never delivers (or pages evicted as fast as they are
    // read): after about send_timeout the body goes as it did before the
    // probe existed, rather than never.
    let (mut w, want) = cold_world("cold-never", "", MIB as usize);
    w.config.send_timeout = std::time::Duration::from_secs(1);
    let mut c = w.conn();
    c.io.cold = u32::MAX;
    let t0 = w.now;
    assert_eq!(w.run(&mut c, GET_COLD), Drive::Wait);
    let mut tries = 0;
    while c.waits_for_disk() {
        tries += 1;
        assert!(tries < 200, "still waiting after {tries} tries");
        fire(&mut w, &mut c);
    }
    assert!(w.now - t0 >= 900, "gave up after {} ms", w.now - t0);
    assert!(responses(&c.io.output)[0].2 == want);
    assert_eq!(c.state(), State::Idle);
    assert_eq!(w.shared.board.own(Field::Deferred), 1);
}

#[test]
fn a_file_longer_than_one_sendfile_call_is_corked_until_its_last_byte() {
    let mut w = World::new("cork", "");
    let size = 3 * super::SENDFILE_CHUNK + 123;
    let huge: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(w.dir.join("www/huge.bin"), &huge).unwrap();
    let mut c = w.conn();
    assert_eq!(
        w.run(&mut c, b"GET /huge.bin HTTP/1.1\r\nHost: a\r\n\r\n"),
        Drive::Wait
    );
    let r = responses(&c.io.output);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].2, huge);
    // Corked after the head (which went out with MSG_MORE), before the
    // first file byte; uncorked after the last, so the tail leaves at once.
    let total = c.io.output.len();
    assert_eq!(c.io.corks, [(true, total - size), (false, total)]);

    // A file that one call sends whole is not corked: no setsockopt.
    let mut c = w.conn();
    w.run(&mut c, b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(responses(&c.io.output)[0].2.len(), 100_000);
    assert!(c.io.corks.is_empty(), "{:?}", c.io.corks);
}

#[test]
fn a_large_body_caps_its_unsent_queue_only_while_another_is_being_sent() {
    let mut w = World::new("lowat", "");
    let size = 2 * super::SENDFILE_CHUNK + 7;
    std::fs::write(w.dir.join("www/huge.bin"), vec![7u8; size]).unwrap();
    let get = b"GET /huge.bin HTTP/1.1\r\nHost: a\r\n\r\n";
    // Alone: the kernel's deep queue, no setsockopt; counted while it
    // streamed, not after.
    let mut c = w.conn();
    w.run(&mut c, get);
    assert!(c.io.lowats.is_empty(), "{:?}", c.io.lowats);
    assert_eq!(w.lent.shared.streams, 0);
    // Another body is going: this one is capped.
    w.lent.shared.streams = 1;
    w.run(&mut c, get);
    assert_eq!(c.io.lowats, [crate::sys::socket::NOTSENT_LOWAT]);
    assert_eq!(w.lent.shared.streams, 1);
    // Alone again on the same connection: the cap is lifted once.
    w.lent.shared.streams = 0;
    w.run(&mut c, get);
    w.run(&mut c, get);
    assert_eq!(c.io.lowats, [crate::sys::socket::NOTSENT_LOWAT, 0]);
    assert_eq!(responses(&c.io.output).len(), 4);
    assert_eq!(w.lent.shared.streams, 0);
}

#[test]
fn a_lone_very_large_body_is_not_corked_but_one_beside_others_is() {
    let mut w = World::new("cork-alone", "");
    let size = super::CORK_ALONE_MAX + 1;
    let f = std::fs::File::create(w.dir.join("www/huge.bin")).unwrap();
    f.set_len(size as u64).unwrap();
    let get = b"GET /huge.bin HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut c = w.conn();
    w.run(&mut c, get);
    assert_eq!(responses(&c.io.output)[0].2.len(), size);
    assert!(c.io.corks.is_empty(), "{:?}", c.io.corks);
    assert_eq!(
        w.lent.shared.streams, 0,
        "counted while it was sent, not after"
    );
    // Beside another large body it is corked (and capped), as a smaller one is.
    w.lent.shared.streams = 1;
    let mut c = w.conn();
    w.run(&mut c, get);
    let total = c.io.output.len();
    assert_eq!(c.io.corks, [(true, total - size), (false, total)]);
    assert_eq!(w.lent.shared.streams, 1);
}

/// The parts of a multipart body whose head is `head`: each part's bytes
/// after its blank line, split on the boundary the head names.
fn multipart_parts(head: &str, body: &[u8]) -> Vec<Vec<u8>> {
    let b = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: multipart/byteranges; boundary="))
        .unwrap();
    let delim = format!("\r\n--{b}");
    let mut at = Vec::new();
    let mut i = 0;
    while let Some(p) = memchr::memmem::find(&body[i..], delim.as_bytes()) {
        at.push(i + p);
        i += p + delim.len();
    }
    assert_eq!(at[0], 0);
    assert_eq!(&body[at[at.len() - 1] + delim.len()..], b"--\r\n");
    at.windows(2)
        .map(|w| {
            let part = &body[w[0] + delim.len()..w[1]];
            let start = memchr::memmem::find(part, b"\r\n\r\n").unwrap() + 4;
            part[start..].to_vec()
        })
        .collect()
}

#[test]
fn a_multipart_body_sends_every_range_with_sendfile_corked_to_its_end() {
    let (mut w, want) = cold_world("multipart", "", 3 * MIB as usize);
    let get = b"GET /cold.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-99,1000000-2999999\r\n\r\n";
    let mut c = w.conn();
    // The first range's pages are on disk: it waits for them like any
    // file body (read-ahead of that range alone), then all goes out.
    c.io.cold = 1;
    assert_eq!(w.run(&mut c, get), Drive::Wait);
    assert!(c.waits_for_disk());
    assert_eq!(c.io.read_aheads, [(0, 100)]);
    assert_eq!(fire(&mut w, &mut c), Drive::Wait);
    let r = responses(&c.io.output);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, 206);
    assert_eq!(r[0].2.len(), c.io.output.len() - r[0].1.len() - 4);
    let parts = multipart_parts(&r[0].1, &r[0].2);
    assert_eq!(parts.len(), 2);
    assert!(parts[0] == want[..100]);
    assert!(parts[1] == want[1_000_000..3_000_000]);
    // Every range came through the page probe (sendfile), one probe per
    // chunk: two for the first (the cold try and the one that sent), four
    // 512 KiB chunks for the second.
    assert_eq!(c.io.probes, 2 + 4);
    // Corked before the head, uncorked after the close-delimiter only.
    let total = c.io.output.len();
    assert_eq!(c.io.corks, [(true, 0), (false, total)]);
    assert_eq!(w.lent.shared.streams, 0);
    assert_eq!(c.state(), State::Idle);

    // Short writes, a small file (bytes from the cache) and a request
    // pipelined behind: every byte arrives, in step.
    std::fs::write(w.dir.join("www/small.txt"), &want[..5000]).unwrap();
    let mut c = w.conn();
    c.io.write_limit = Some(7);
    let two = b"GET /small.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=-10,0-9,100-199\r\n\r\n\
                GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,3-4\r\n\r\n";
    w.run(&mut c, two);
    // As `short_writes_deliver_every_byte`: a real socket would wait for
    // room after each short write.
    for _ in 0..5000 {
        if c.state() == State::Idle && c.io.input.is_empty() {
            break;
        }
        c.writable = true;
        w.run(&mut c, b"");
    }
    let r = responses(&c.io.output);
    assert_eq!(r.len(), 2);
    let small = multipart_parts(&r[0].1, &r[0].2);
    assert_eq!(small, [&want[..10], &want[100..200], &want[4990..5000]]);
    let big = multipart_parts(&r[1].1, &r[1].2);
    let big_file: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(big, [&big_file[..2], &big_file[3..5]]);
    assert_eq!(w.lent.shared.streams, 0);

    // HEAD: the head alone, nothing corked.
    let mut c = w.conn();
    let head = b"HEAD /cold.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,5-6\r\n\r\n";
    assert_eq!(w.run(&mut c, head), Drive::Wait);
    assert!(c.io.output.ends_with(b"\r\n\r\n"));
    assert!(c.io.corks.is_empty());
}

#[test]
fn a_multipart_body_yields_to_the_others_when_the_turn_budget_is_spent() {
    let (mut w, want) = cold_world("multipart-budget", "", 2 * MIB as usize);
    // 300 ranges: more segments than one write step sends.
    let spec: Vec<String> = (0..300)
        .map(|i| format!("{}-{}", i * 5000, i * 5000 + 9))
        .collect();
    let get = format!(
        "GET /cold.bin HTTP/1.1\r\nHost: x\r\nRange: bytes={}\r\n\r\n",
        spec.join(",")
    );
    let mut c = w.conn();
    c.io.feed(get.as_bytes());
    c.readable = true;
    let mut turns = 0;
    loop {
        turns += 1;
        assert!(turns < 1000);
        let d = c.drive(&mut w.lent.env());
        if d != Drive::Again {
            break;
        }
    }
    // One write step per turn, at most 64 segments each: 601 segments.
    assert!(turns >= 601 / 64, "{turns} turns");
    let r = responses(&c.io.output);
    let parts = multipart_parts(&r[0].1, &r[0].2);
    assert_eq!(parts.len(), 300);
    for (i, p) in parts.iter().enumerate() {
        assert!(p[..] == want[i * 5000..i * 5000 + 10], "part {i}");
    }
}

// ---------------------------------------------------------------------------
// limit_rate: a throttled connection sleeps on its timer, off the pending
// list, and its bytes follow nginx's arithmetic (simulated time here).
// ---------------------------------------------------------------------------

/// Fire the timer until the answer is out; the simulated milliseconds it
/// took and the number of wake-ups.
fn paced_to_the_end(w: &mut World, c: &mut Conn<MemTransport>, t0: Millis) -> (Millis, u32) {
    let mut wakes = 0;
    while c.state() == State::Send {
        assert!(c.sleeping(), "a throttled connection waits on its timer");
        let before = c.io.output.len();
        // An event before the timer writes nothing.
        c.writable = true;
        assert_eq!(c.drive(&mut w.env()), Drive::Wait);
        assert_eq!(c.io.output.len(), before);
        assert!(c.deadline > w.now);
        assert_ne!(fire(w, c), Drive::Again);
        wakes += 1;
        assert!(wakes < 1000, "too many wake-ups");
    }
    (w.now - t0, wakes)
}

#[test]
fn limit_rate_paces_an_in_memory_body_one_second_ahead() {
    // 100,000 bytes at 20,000 B/s, one second's worth at once: the last
    // byte may go 4 s (and the head's bytes) after the start.
    let mut w = World::new("pace-mem", "limit_rate 20000;");
    let mut c = w.conn();
    let t0 = w.now;
    assert_eq!(
        w.run(&mut c, b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"),
        Drive::Wait
    );
    assert_eq!(
        c.io.output.len(),
        20_000,
        "one second's worth, head included"
    );
    let (took, wakes) = paced_to_the_end(&mut w, &mut c, t0);
    assert!((4_000..4_200).contains(&took), "{took} ms");
    // A wake-up sends a quantum (half a second's worth), not a packet.
    assert!(wakes <= 10, "{wakes} wake-ups");
    let r = responses(&c.io.output);
    assert_eq!(r[0].0, 200);
    assert_eq!(r[0].2.len(), 100_000);
    assert!(c.pace.is_none(), "the next request starts unpaced");
}

#[test]
fn a_paced_answer_whose_client_hung_up_closes_at_once() {
    // A clean close (FIN) as well as a reset: the `limit_conn` slot and the
    // descriptor are not held until the next quantum's write fails.
    let mut w = World::new("pace-hup", "limit_rate 20000;");
    let mut c = w.conn();
    assert_eq!(
        w.run(&mut c, b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"),
        Drive::Wait
    );
    assert!(c.sleeping());
    c.peer_hup = true;
    c.readable = true;
    assert_eq!(c.drive(&mut w.env()), Drive::Close);
}

#[test]
fn limit_rate_after_sends_a_file_body_at_full_speed_first() {
    let len = 3 * MIB as usize;
    let (mut w, want) = cold_world("pace-file", "limit_rate 1m; limit_rate_after 512k;", len);
    let mut c = w.conn();
    let t0 = w.now;
    assert_eq!(w.run(&mut c, GET_COLD), Drive::Wait);
    // 512 KiB, then one second's worth (1 MiB) at once.
    assert_eq!(c.io.output.len() as u64, 3 * MIB / 2);
    let (took, _) = paced_to_the_end(&mut w, &mut c, t0);
    // The rest (1.5 MiB and the head) at 1 MiB/s after the first second.
    assert!((1_500..1_700).contains(&took), "{took} ms");
    let r = responses(&c.io.output);
    assert_eq!(r[0].0, 200);
    assert!(r[0].2 == want, "the body differs");
}

/// A server behind a PROXY protocol sender (127.0.0.1, the test's peer,
/// is trusted) whose `/in/` lets only 192.0.2.0/24 in: 404 says the
/// header's client counted, 403 that the socket's did.
const BEHIND_PROXY: &str = "set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;
    location /in/ { allow 192.0.2.0/24; deny all; }";

/// A connection of a `listen ... proxy_protocol`.
fn proxied_conn(w: &World) -> Conn<MemTransport> {
    let mut c = w.conn();
    c.await_proxy_header();
    c
}

fn statuses(out: &[u8]) -> Vec<u16> {
    responses(out).iter().map(|r| r.0).collect()
}

#[test]
fn proxy_header_then_pipelined_requests_in_one_read() {
    let mut w = World::new("pp-one", BEHIND_PROXY);
    let mut c = proxied_conn(&w);
    assert_eq!(c.state(), State::Proxy);
    let d = w.run(
        &mut c,
        b"PROXY TCP4 192.0.2.9 127.0.0.1 5000 8080\r\n\
          GET /in/x HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(d, Drive::Wait);
    assert_eq!(statuses(&c.io.output), [404, 200]);
    assert_eq!(c.state(), State::Idle);
    assert!(!c.holds_buffers());
    // Once per connection: a later "header" is a request line, and a bad one.
    w.run(&mut c, b"PROXY TCP4 192.0.2.9 127.0.0.1 5000 8080\r\n\r\n");
    assert_eq!(statuses(&c.io.output), [404, 200, 400]);
}

#[test]
fn proxy_header_split_at_every_byte_gives_the_same_answer() {
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[198, 51, 100, 7, 127, 0, 0, 1, 0x13, 0x88, 0x1f, 0x90]);
    for header in [
        &b"PROXY TCP4 192.0.2.9 127.0.0.1 5000 8080\r\n"[..],
        &v2[..],
    ] {
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(b"GET /in/x HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut w = World::new("pp-split", BEHIND_PROXY);
        // v1 names a client that `/in/` lets in (404), v2 one it does not.
        let want = if header == v2.as_slice() { 403 } else { 404 };
        for cut in 1..bytes.len() {
            let mut c = proxied_conn(&w);
            assert_eq!(w.run(&mut c, &bytes[..cut]), Drive::Wait, "cut {cut}");
            assert!(c.io.output.is_empty(), "cut {cut}");
            assert_eq!(w.run(&mut c, &bytes[cut..]), Drive::Wait, "cut {cut}");
            assert_eq!(statuses(&c.io.output), [want], "cut at {cut}");
        }
        // One byte per read.
        let mut c = proxied_conn(&w);
        for b in &bytes {
            assert_eq!(w.run(&mut c, &[*b]), Drive::Wait);
        }
        assert_eq!(statuses(&c.io.output), [want]);
    }
}

#[test]
fn without_real_ip_header_proxy_protocol_the_socket_is_the_client() {
    // The header is read (and taken off) but names no one: nginx's rule.
    let mut w = World::new(
        "pp-untrusted",
        "set_real_ip_from 127.0.0.1; location /in/ { allow 192.0.2.0/24; deny all; }",
    );
    let mut c = proxied_conn(&w);
    w.run(
        &mut c,
        b"PROXY TCP4 192.0.2.9 127.0.0.1 5000 8080\r\nGET /in/x HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(statuses(&c.io.output), [403]);
}

#[test]
fn a_broken_or_missing_proxy_header_closes_without_an_answer() {
    let mut w = World::new("pp-broken", BEHIND_PROXY);
    for bytes in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"PROXY TCP4 192.0.2.9 127.0.0.1 70000 8080\r\nGET / HTTP/1.1\r\n\r\n",
        b"PROXY TCP4 ::1 127.0.0.1 1 2\r\n",
        &[b'P'; 200][..],
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff",
    ] {
        let mut c = proxied_conn(&w);
        assert_eq!(w.run(&mut c, bytes), Drive::Close, "{bytes:?}");
        assert!(c.io.output.is_empty());
        assert!(!c.holds_buffers());
    }
    assert_eq!(w.shared.pool.out, 0);
}

#[test]
fn a_proxy_header_cut_short_or_late_closes_without_an_answer() {
    let mut w = World::new("pp-short", BEHIND_PROXY);
    // The client closes mid-header.
    let mut c = proxied_conn(&w);
    assert_eq!(w.run(&mut c, b"PROXY TCP4 192.0.2.9 "), Drive::Wait);
    assert_eq!(c.phase(), Phase::Reading);
    c.io.eof = true;
    c.peer_hup = true;
    c.readable = true;
    assert_eq!(w.run(&mut c, b""), Drive::Close);
    assert!(c.io.output.is_empty());
    // Too slow: the first head's deadline ends it, with no 408.
    let mut c = proxied_conn(&w);
    assert_eq!(w.run(&mut c, b"\r\n\r\n\0\r\nQUIT\n\x21"), Drive::Wait);
    w.now = c.deadline;
    assert_eq!(c.on_timeout(&mut w.env()), Drive::Close);
    assert!(c.io.output.is_empty());
    // Silent: waiting, without a buffer, until the same deadline.
    let mut c = proxied_conn(&w);
    assert_eq!(w.run(&mut c, b""), Drive::Wait);
    assert_eq!(c.phase(), Phase::Waiting);
    assert!(!c.holds_buffers());
    assert_eq!(c.on_timeout(&mut w.env()), Drive::Close);
    assert_eq!(w.shared.pool.out, 0);
}

#[test]
fn the_head_after_a_proxy_header_keeps_the_first_deadline() {
    // Header and head share one client_header_timeout, as in nginx: a
    // header that took most of it leaves the head only the rest.
    let mut w = World::new("pp-deadline", BEHIND_PROXY);
    let mut c = proxied_conn(&w);
    let deadline = c.deadline;
    w.now += 1_500;
    assert_eq!(w.run(&mut c, b"PROXY UNKNOWN\r\nGET / HT"), Drive::Wait);
    assert_eq!((c.state(), c.deadline), (State::Head, deadline));
    w.now = deadline;
    assert_eq!(c.on_timeout(&mut w.env()), Drive::Wait);
    assert_eq!(statuses(&c.io.output), [408]);
}
