//! Logs (CONFIG.md `access_log`, `error_log`, `SIGUSR1`): the access log's
//! lines in nginx's `combined` format byte for byte (only the time is
//! matched by pattern), where they go, when they are written, reopening
//! after logrotate's rename, and error log level filtering.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

const LIMIT: Duration = Duration::from_secs(5);

/// A folder with `www/hello.txt` (`hello`, 5 bytes).
fn site(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("www/hello.txt", "hello");
    dir
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}

/// Wait until `path` holds at least `n` lines; returns them.
#[track_caller]
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let mut text = String::new();
    let ok = wait_until(LIMIT, || {
        text = read(path);
        text.lines().count() >= n
    });
    assert!(ok, "{} has not {n} lines: {text:?}", path.display());
    text.lines().map(str::to_string).collect()
}

fn signal(srv: &Server, sig: &str) {
    kill(srv.pid(), sig);
}

/// Stop with SIGTERM and wait for the exit (the buffers are written at stop).
fn stop(mut srv: Server) -> Server {
    signal(&srv, "TERM");
    let st = srv
        .wait_exit(LIMIT)
        .expect("server still running after SIGTERM");
    assert_eq!(st.code(), Some(0));
    srv
}

/// `26/Nov/2026:00:14:34 +0000`: nginx's `$time_local`.
fn is_time_local(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 26
        && b.iter().enumerate().all(|(i, &c)| match i {
            2 | 6 => c == b'/',
            3 => c.is_ascii_uppercase(),
            4 | 5 => c.is_ascii_lowercase(),
            11 | 14 | 17 => c == b':',
            20 => c == b' ',
            21 => c == b'+' || c == b'-',
            _ => c.is_ascii_digit(),
        })
        && [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .contains(&&s[3..6])
}

/// Split a line at its `[time]`; assert the time's form and return what
/// surrounds it with the time replaced by `TIME`.
#[track_caller]
fn without_time(line: &str) -> String {
    let open = line.find(" [").expect("no [time] in the line") + 2;
    let close = open + 26;
    assert!(is_time_local(&line[open..close]), "time in {line:?}");
    assert_eq!(&line[close..close + 1], "]", "{line:?}");
    format!("{}TIME{}", &line[..open], &line[close..])
}

#[test]
fn a_known_request_is_logged_in_combined_format() {
    let srv = Server::start(
        site("log-combined"),
        "server { listen 127.0.0.1:$P0; root www; access_log access.log; }",
    );
    let r = srv.raw(
        "GET /hello.txt?x=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.5.0\r\n\
         Referer: http://example.com/from\r\nConnection: close\r\n\r\n",
    );
    assert_status(&r, 200);
    let lines = wait_lines(&srv.dir.join("access.log"), 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        without_time(&lines[0]),
        "127.0.0.1 - - [TIME] \"GET /hello.txt?x=1 HTTP/1.1\" 200 5 \
         \"http://example.com/from\" \"curl/8.5.0\""
    );
}

#[test]
fn head_404_and_basic_auth_user_lines() {
    let srv = Server::start(
        site("log-head-404"),
        "server { listen 127.0.0.1:$P0; root www; access_log access.log; }",
    );
    let mut c = srv.connect(0);
    let head = "HEAD /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n";
    c.send(head.as_bytes());
    let r = c.read_response_to(head.as_bytes());
    assert_status(&r, 200);
    assert_eq!(r.header("Content-Length"), Some("5"));
    c.send(b"GET /missing HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YWRhOnNlY3JldA==\r\n\r\n");
    let missing = c.read_response();
    assert_status(&missing, 404);
    assert!(!missing.body.is_empty());
    let lines = wait_lines(&srv.dir.join("access.log"), 2);
    assert_eq!(
        lines.iter().map(|l| without_time(l)).collect::<Vec<_>>(),
        [
            // HEAD: the head only, no body bytes.
            "127.0.0.1 - - [TIME] \"HEAD /hello.txt HTTP/1.1\" 200 0 \"-\" \"-\"".to_string(),
            // $remote_user from Basic credentials (ada:secret), as nginx.
            format!(
                "127.0.0.1 - ada [TIME] \"GET /missing HTTP/1.1\" 404 {} \"-\" \"-\"",
                missing.body.len()
            ),
        ]
    );
}

#[test]
fn quotes_and_control_bytes_are_escaped() {
    let srv = Server::start(
        site("log-escape"),
        "server { listen 127.0.0.1:$P0; root www; access_log access.log; }",
    );
    let mut c = srv.connect(0);
    // HTAB and obs-text are valid in a field value; `"` and `\` are VCHARs.
    c.send(
        b"GET /hello.txt HTTP/1.1\r\nHost: a\r\nUser-Agent: say \"hi\"\t\\ \xff\r\n\
          Referer: \x80x\r\nConnection: close\r\n\r\n",
    );
    assert_status(&c.read_response(), 200);
    let lines = wait_lines(&srv.dir.join("access.log"), 1);
    assert_eq!(
        without_time(&lines[0]),
        "127.0.0.1 - - [TIME] \"GET /hello.txt HTTP/1.1\" 200 5 \"\\x80x\" \
         \"say \\x22hi\\x22\\x09\\x5C \\xFF\""
    );
}

#[test]
fn a_bad_request_is_logged_with_the_bytes_received_and_a_silent_idle_close_is_not() {
    let srv = Server::start(
        site("log-400"),
        "client_header_timeout 1s;\n\
         server { listen 127.0.0.1:$P0; root www; access_log access.log; }",
    );
    // A connection that sends nothing and times out: no request, no line
    // (nginx closes it without logging).
    let mut idle = srv.connect(0);
    let start = Instant::now();
    while idle.try_read_response().is_some() && start.elapsed() < LIMIT {}
    // Garbage that is no request line: 400, logged with what came.
    let mut c = srv.connect(0);
    c.send(b"\x16\x03\x01\x02 hello\"\r\nX: y\r\n\r\n");
    let r = c.read_response();
    assert_status(&r, 400);
    // A request after both, to know the earlier lines had their chance.
    assert_status(&srv.get("/hello.txt"), 200);
    let srv = stop(srv);
    let text = read(&srv.dir.join("access.log"));
    let lines: Vec<String> = text.lines().map(without_time).collect();
    assert_eq!(
        lines,
        [
            format!(
                "127.0.0.1 - - [TIME] \"\\x16\\x03\\x01\\x02 hello\\x22\" 400 {} \"-\" \"-\"",
                r.body.len()
            ),
            "127.0.0.1 - - [TIME] \"GET /hello.txt HTTP/1.1\" 200 5 \"-\" \"-\"".to_string(),
        ]
    );
}

#[test]
fn lines_are_written_within_a_second_without_more_traffic() {
    let srv = Server::start(
        site("log-timer"),
        "server { listen 127.0.0.1:$P0; root www; access_log access.log; }",
    );
    let path = srv.dir.join("access.log");
    let mut c = srv.connect(0);
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_status(&c.read_response(), 200);
    let sent = Instant::now();
    // The connection stays open and idle: only the loop's timer writes.
    let ok = wait_until(Duration::from_millis(1_500), || {
        read(&path).lines().count() == 1
    });
    assert!(
        ok,
        "no line {:?} after the response: {:?}",
        sent.elapsed(),
        read(&path)
    );
}

#[test]
fn lines_buffered_at_stop_are_written() {
    let srv = Server::start(
        site("log-stop"),
        "server { listen 127.0.0.1:$P0; root www; access_log access.log; }",
    );
    for _ in 0..3 {
        assert_status(&srv.get("/hello.txt"), 200);
    }
    // Well within the flush timer's second.
    let srv = stop(srv);
    assert_eq!(read(&srv.dir.join("access.log")).lines().count(), 3);
}

#[test]
fn each_server_logs_to_its_own_file_and_off_turns_it_off() {
    let srv = Server::start(
        site("log-servers"),
        "access_log top.log;\n\
         server { listen 127.0.0.1:$P0; root www; access_log a.log; }\n\
         server { listen 127.0.0.1:$P1; root www; access_log b.log; }\n\
         server { listen 127.0.0.1:$P2; root www; }\n\
         server { listen 127.0.0.1:$P3; root www; access_log off; }",
    );
    for (i, path) in ["/hello.txt", "/a", "/b", "/c"].iter().enumerate() {
        let r = srv.get_host(i, "localhost", path);
        assert!(r.status == 200 || r.status == 404, "{}", r.describe());
    }
    let srv = stop(srv);
    let lines = |f: &str| -> Vec<String> {
        read(&srv.dir.join(f))
            .lines()
            .map(|l| {
                let q = l.find('"').unwrap();
                l[q..].to_string()
            })
            .collect()
    };
    assert_eq!(
        lines("a.log"),
        ["\"GET /hello.txt HTTP/1.1\" 200 5 \"-\" \"-\""]
    );
    assert_eq!(lines("b.log").len(), 1);
    assert!(lines("b.log")[0].starts_with("\"GET /a HTTP/1.1\" 404 "));
    // The server without its own access_log inherits the top level's; the
    // one with `off` writes nowhere.
    assert_eq!(lines("top.log").len(), 1, "{:?}", lines("top.log"));
    assert!(lines("top.log")[0].starts_with("\"GET /b HTTP/1.1\" 404 "));
    let all = [
        read(&srv.dir.join("a.log")),
        read(&srv.dir.join("b.log")),
        read(&srv.dir.join("top.log")),
    ];
    assert!(all.iter().all(|t| !t.contains("GET /c ")), "{all:?}");
}

#[test]
fn sigusr1_reopens_the_logs_after_a_rename() {
    let srv = Server::start(
        site("log-reopen"),
        "error_log error.log notice;\n\
         server { listen 127.0.0.1:$P0; root www; access_log access.log; }",
    );
    let dir = srv.dir.path().to_path_buf();
    assert_status(&srv.get("/hello.txt?before"), 200);
    // logrotate: move the files away, then signal; the line still in the
    // buffer belongs to the old file.
    fs::rename(dir.join("access.log"), dir.join("access.log.1")).unwrap();
    fs::rename(dir.join("error.log"), dir.join("error.log.1")).unwrap();
    signal(&srv, "USR1");
    assert!(
        wait_until(LIMIT, || dir.join("access.log").exists()
            && dir.join("error.log").exists()),
        "the logs were not opened again"
    );
    assert_status(&srv.get("/hello.txt?after"), 200);
    let srv = stop(srv);
    let old = read(&dir.join("access.log.1"));
    let new = read(&srv.dir.join("access.log"));
    assert_eq!(old.lines().count(), 1, "old: {old:?}");
    assert!(old.contains("GET /hello.txt?before "), "old: {old:?}");
    assert_eq!(new.lines().count(), 1, "new: {new:?}");
    assert!(new.contains("GET /hello.txt?after "), "new: {new:?}");
    // The error log: the notice about the signal went to the old file,
    // what came after it to the new one.
    let old_err = read(&dir.join("error.log.1"));
    let new_err = read(&dir.join("error.log"));
    assert!(
        old_err.contains("[notice]") && old_err.contains("reopening logs"),
        "{old_err:?}"
    );
    assert!(!new_err.contains("reopening logs"), "{new_err:?}");
    assert!(
        new_err.contains("[notice]") && new_err.contains("exiting"),
        "{new_err:?}"
    );
}

/// A server whose second listener cannot be bound (an `[error]` at start)
/// with `error_log error.log LEVEL`; it is sent SIGUSR1 (a `[notice]`)
/// and its error log returned once the signal was handled.
fn error_log_at(level: &str) -> String {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let srv = Server::start(
        site(&format!("log-level-{level}")),
        &format!(
            "error_log error.log {level};\n\
             server {{ listen 127.0.0.1:$P0; listen 127.0.0.1:{port}; root www;\n\
                       access_log access.log; }}"
        ),
    );
    let dir = srv.dir.path().to_path_buf();
    fs::rename(dir.join("access.log"), dir.join("access.log.1")).unwrap();
    signal(&srv, "USR1");
    // The new access log shows the signal was handled.
    assert!(wait_until(LIMIT, || dir.join("access.log").exists()));
    let text = read(&dir.join("error.log"));
    drop(taken);
    text
}

#[test]
fn error_log_levels_are_honoured() {
    let notice = error_log_at("notice");
    assert!(
        notice.contains("[error]") && notice.contains("bind()"),
        "{notice:?}"
    );
    assert!(
        notice.contains("[notice]") && notice.contains("reopening logs"),
        "{notice:?}"
    );
    let error = error_log_at("error");
    assert!(
        error.contains("[error]") && error.contains("bind()"),
        "{error:?}"
    );
    assert!(!error.contains("[notice]"), "{error:?}");
    let crit = error_log_at("crit");
    assert_eq!(crit, "", "nothing reaches crit");
}

/// The fields of a JSON object line, each `key=value` with the value as
/// Python's `ascii()` prints it (so control and non-ASCII characters are
/// visible): a real JSON parser reads the line, or the test fails.
fn json_fields(line: &str) -> std::collections::BTreeMap<String, String> {
    let out = run_with_input(
        "python3",
        &[
            "-c",
            "import json,sys\n\
             d=json.loads(sys.stdin.buffer.read())\n\
             for k,v in d.items(): print(k+'='+(ascii(v) if isinstance(v,str) else str(v)))",
        ],
        line.as_bytes(),
    );
    assert!(
        out.status.success(),
        "not JSON: {line:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const JSON_FORMAT: &str = "log_format j escape=json '{\"addr\":\"$remote_addr\",\"user\":\"$remote_user\",' \
    '\"local\":\"$time_local\",\"iso\":\"$time_iso8601\",\"msec\":\"$msec\",' \
    '\"request\":\"$request\",\"method\":\"$request_method\",\"uri\":\"$uri\",\"args\":\"$args\",' \
    '\"status\":$status,\"body\":$body_bytes_sent,\"bytes\":$bytes_sent,\"length\":$request_length,' \
    '\"time\":\"$request_time\",\"agent\":\"$http_user_agent\",\"ctype\":\"$sent_http_content_type\",' \
    '\"host\":\"$host\",\"name\":\"$server_name\",\"port\":\"$server_port\",' \
    '\"conn\":\"$connection\",\"nth\":$connection_requests,\"pid\":$pid}';";

#[test]
fn every_log_format_variable_in_a_json_line() {
    let conf = format!(
        "{JSON_FORMAT}\nserver {{ listen 127.0.0.1:$P0; server_name example.test; root www; \
         access_log access.log j; }}"
    );
    let srv = Server::start(site("log-json"), &conf);
    let mut c = srv.connect(0);
    // A user agent with a quote, a backslash and a byte that is not UTF-8
    // (control bytes cannot stand in a field: they come with a bad head,
    // below).
    let head: &[u8] = b"GET /x/../hello.txt?q=1&r=%22 HTTP/1.1\r\nHost: LocalHost:99\r\n\
        Authorization: Basic YWRhOnNlY3JldA==\r\nUser-Agent: a\"b\\c\xff\xc3\xa9\r\n\r\n";
    c.send(head);
    assert_status(&c.read_response(), 200);
    c.send(b"GET /missing HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_status(&c.read_response(), 404);
    // Not a request: logged (400) with the bytes received, control bytes
    // and all.
    let bad = srv.raw("\x16\x03\x01\x7f\"x\r\n\r\n");
    assert_status(&bad, 400);
    let lines = wait_lines(&srv.dir.join("access.log"), 3);
    let f = json_fields(&lines[0]);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("<absent>");
    assert_eq!(get("addr"), "'127.0.0.1'");
    assert_eq!(get("user"), "'ada'");
    assert!(
        is_time_local(get("local").trim_matches('\'')),
        "{}",
        get("local")
    );
    let iso = get("iso").trim_matches('\'');
    assert!(
        iso.len() == 25 && iso.as_bytes()[10] == b'T' && iso.as_bytes()[22] == b':',
        "{iso}"
    );
    let msec = get("msec").trim_matches('\'');
    let (secs, frac) = msec.split_once('.').unwrap();
    assert!(secs.len() >= 10 && frac.len() == 3, "{msec}");
    assert_eq!(get("request"), "'GET /x/../hello.txt?q=1&r=%22 HTTP/1.1'");
    assert_eq!(get("method"), "'GET'");
    assert_eq!(get("uri"), "'/hello.txt'", "normalised, as nginx's $uri");
    assert_eq!(get("args"), "'q=1&r=%22'");
    assert_eq!(get("status"), "200");
    assert_eq!(get("body"), "5");
    let bytes: u64 = get("bytes").parse().unwrap();
    assert!(bytes > 5 + 100, "head and body: {bytes}");
    assert_eq!(get("length"), head.len().to_string());
    let t = get("time").trim_matches('\'');
    assert!(t.len() == 5 && t.as_bytes()[1] == b'.', "{t}");
    // Quote and backslash escaped, 0xff (not UTF-8) as \u00ff, é passed
    // as UTF-8.
    assert_eq!(get("agent"), "'a\"b\\\\c\\xff\\xe9'");
    assert_eq!(get("ctype"), "'text/plain; charset=utf-8'");
    assert_eq!(get("host"), "'localhost'");
    assert_eq!(get("name"), "'example.test'");
    assert_eq!(get("port"), format!("'{}'", srv.port(0)));
    assert_eq!(get("nth"), "1");
    assert_eq!(get("pid"), srv.pid().to_string());
    let g = json_fields(&lines[1]);
    assert_eq!(g["status"], "404");
    assert_eq!(g["nth"], "2");
    assert_eq!(g["conn"], f["conn"], "one connection");
    assert_eq!(g["user"], "''", "absent in JSON: empty");
    assert_eq!(g["args"], "''");
    let b = json_fields(&lines[2]);
    assert_eq!(b["status"], "400");
    assert_eq!(b["request"], "'\\x16\\x03\\x01\\x7f\"x'");
    assert_eq!(b["uri"], "''");
}

#[test]
fn default_and_none_escaping_and_a_location_log_replacing_its_servers() {
    let conf = "log_format d '$request_method $uri \"$http_x_test\" $status $args';\n\
                log_format n escape=none '$request_method \"$http_x_test\"';\n\
                server { listen 127.0.0.1:$P0; root www; access_log all.log d;\n\
                  location /raw/ { access_log raw.log n; } }";
    let dir = site("log-escapes");
    dir.write("www/raw/r.txt", "r");
    let srv = Server::start(dir, conf);
    let mut c = srv.connect(0);
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: a\r\nX-Test: q\"\xff\r\n\r\n");
    assert_status(&c.read_response(), 200);
    c.send(b"GET /raw/r.txt HTTP/1.1\r\nHost: a\r\nX-Test: q\"\r\n\r\n");
    assert_status(&c.read_response(), 200);
    let all = wait_lines(&srv.dir.join("all.log"), 1);
    assert_eq!(all, ["GET /hello.txt \"q\\x22\\xFF\" 200 -"]);
    let raw = wait_lines(&srv.dir.join("raw.log"), 1);
    assert_eq!(raw, ["GET \"q\"\""]);
    // The location's log replaced the server's: one line each.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(read(&srv.dir.join("all.log")).lines().count(), 1);
}

#[test]
fn request_time_runs_from_the_first_byte_to_the_last_sent() {
    let srv = Server::start(
        site("log-time"),
        "log_format t '$request_time';\n\
         server { listen 127.0.0.1:$P0; root www; access_log t.log t; }",
    );
    let mut c = srv.connect(0);
    c.send(b"GET /hello.txt HTTP/1.1\r\n");
    std::thread::sleep(Duration::from_millis(400));
    c.send(b"Host: a\r\n\r\n");
    assert_status(&c.read_response(), 200);
    // A second request on the same connection starts its own clock.
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_status(&c.read_response(), 200);
    let lines = wait_lines(&srv.dir.join("t.log"), 2);
    let t: Vec<f64> = lines.iter().map(|l| l.parse().unwrap()).collect();
    assert!((0.4..3.0).contains(&t[0]), "{lines:?}");
    assert!(t[1] < 0.2, "{lines:?}");
    assert!(
        lines.iter().all(|l| l.len() == 5),
        "three decimals: {lines:?}"
    );
}

#[test]
fn tools_request_times_finds_the_slowest_request_in_a_timed_log() {
    let srv = Server::start(
        site("log-tools"),
        "log_format timed '$remote_addr - $remote_user [$time_local] \"$request\" \
         $status $body_bytes_sent $request_time';\n\
         server { listen 127.0.0.1:$P0; root www; access_log t.log timed; }",
    );
    for _ in 0..3 {
        assert_status(&srv.get("/hello.txt?fast"), 200);
    }
    let mut c = srv.connect(0);
    c.send(b"GET /hello.txt?slow HTTP/1.1\r\n");
    std::thread::sleep(Duration::from_millis(300));
    c.send(b"Host: a\r\n\r\n");
    assert_status(&c.read_response(), 200);
    let log = srv.dir.join("t.log");
    wait_lines(&log, 4);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/request-times.py");
    let out = std::process::Command::new(script)
        .args(["--top", "2"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("4 requests (0 lines skipped)\n"), "{text}");
    let slowest: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("slowest"))
        .skip(1)
        .take(2)
        .collect();
    assert!(
        slowest[0].ends_with("GET /hello.txt?slow HTTP/1.1"),
        "{text}"
    );
    assert!(
        slowest[1].ends_with("GET /hello.txt?fast HTTP/1.1"),
        "{text}"
    );
    assert!(text.contains("histogram (ms):"), "{text}");
    let uris = std::process::Command::new(script)
        .args(["--uris", "--top", "5"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uris.stdout),
        "/hello.txt?slow\n/hello.txt?fast\n"
    );
}

#[test]
fn a_trusted_proxys_client_is_logged_and_checked_by_allow_deny() {
    let srv = Server::start(
        site("log-real-ip"),
        "set_real_ip_from 127.0.0.0/8;\n\
         server { listen 127.0.0.1:$P0; root www; access_log access.log;\n\
           location /inside/ { allow 10.0.0.0/8; deny all; } }",
    );
    let mut c = srv.connect(0);
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: a\r\nX-Real-IP: 192.0.2.44\r\n\r\n");
    assert_status(&c.read_response(), 200);
    // allow/deny see the named client, not the proxy.
    c.send(b"GET /inside/x HTTP/1.1\r\nHost: a\r\nX-Real-IP: 192.0.2.44\r\n\r\n");
    assert_status(&c.read_response(), 403);
    c.send(b"GET /inside/x HTTP/1.1\r\nHost: a\r\nX-Real-IP: 10.9.9.9\r\n\r\n");
    assert_status(&c.read_response(), 404);
    // No field: the connection's own address.
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_status(&c.read_response(), 200);
    let lines = wait_lines(&srv.dir.join("access.log"), 4);
    let addrs: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(addrs, ["192.0.2.44", "192.0.2.44", "10.9.9.9", "127.0.0.1"]);
}
