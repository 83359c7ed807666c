//! Whole-configuration tests: every invalid case of CONFIG.md with its
//! line, inheritance, implicit locations, merging of repeatable directives,
//! include, defaults, and a seeded fuzz loop over lexer + parser.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::http::Method;

const DIR: &str = "/nowhere/conf";

fn parse(text: &str) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
    parse_str(text, "t.conf", Path::new(DIR))
}

fn ok(text: &str) -> Config {
    match parse(text) {
        Ok((c, _)) => c,
        Err(e) => panic!("unexpected errors {e:?} for {text:?}"),
    }
}

fn errors(text: &str) -> Vec<(String, u32)> {
    match parse(text) {
        Ok(_) => panic!("expected errors for {text:?}"),
        Err(e) => e.into_iter().map(|e| (e.message, e.line)).collect(),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A fresh folder under the system temp folder.
fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "localserver-config-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn invalid_cases_with_lines() {
    let cases: &[(&str, &str, &str, u32)] = &[
        // (name, text, message, line)
        (
            "same listen twice in one server",
            "server {\n listen 8080;\n listen 0.0.0.0:8080;\n}",
            "duplicate listen 0.0.0.0:8080",
            3,
        ),
        (
            "common server name",
            "server {\n listen 80;\n server_name a.test b.test;\n}\nserver {\n listen 80;\n server_name B.test;\n}",
            "conflicting server name \"b.test\" on 0.0.0.0:80",
            7,
        ),
        (
            "two default servers",
            "server { listen 80 default_server; server_name a; }\nserver { listen 80 default_server; server_name b; }",
            "duplicate default server for 0.0.0.0:80",
            2,
        ),
        (
            "unknown directive",
            "server {\n  rot /x;\n}",
            "unknown directive \"rot\"",
            2,
        ),
        (
            "listen at top level",
            "listen 80;",
            "\"listen\" directive is not allowed here",
            1,
        ),
        (
            "server_name in location",
            "server {\n location / {\n  server_name x;\n }\n}",
            "\"server_name\" directive is not allowed here",
            3,
        ),
        (
            "nested location",
            "server {\n location /a {\n  location /a/b { }\n }\n}",
            "\"location\" directive is not allowed here",
            3,
        ),
        (
            "alias outside a location",
            "server {\n alias /x;\n}",
            "\"alias\" directive is not allowed here",
            2,
        ),
        (
            "top-level directive in server",
            "server {\n worker_processes 2;\n}",
            "\"worker_processes\" directive is not allowed here",
            2,
        ),
        (
            "server inside server",
            "server {\n server { }\n}",
            "\"server\" directive is not allowed here",
            2,
        ),
        (
            "session_timeout in location",
            "server { location / {\nsession_timeout 1m; } }",
            "\"session_timeout\" directive is not allowed here",
            2,
        ),
        (
            "too few arguments",
            "server {\n listen;\n}",
            "invalid number of arguments in \"listen\" directive",
            2,
        ),
        (
            "too many arguments",
            "\nroot /a /b;",
            "invalid number of arguments in \"root\" directive",
            2,
        ),
        (
            "missing semicolon merges lines",
            "server {\n root /a\n index x;\n}",
            "invalid number of arguments in \"root\" directive",
            2,
        ),
        (
            "cgi wants two",
            "cgi .py;",
            "invalid number of arguments in \"cgi\" directive",
            1,
        ),
        (
            "block without braces",
            "server;",
            "directive \"server\" has no opening \"{\"",
            1,
        ),
        (
            "simple directive with braces",
            "root /x { }",
            "directive \"root\" is not terminated by \";\"",
            1,
        ),
        (
            "duplicate directive",
            "server {\n root /a;\n root /b;\n}",
            "\"root\" directive is duplicate",
            3,
        ),
        (
            "duplicate top-level",
            "keepalive_timeout 5;\nkeepalive_timeout 6;",
            "\"keepalive_timeout\" directive is duplicate",
            2,
        ),
        (
            "root then alias",
            "server { location /a {\n root /x;\n alias /y;\n} }",
            "\"alias\" directive is duplicate, \"root\" directive was specified earlier",
            3,
        ),
        (
            "alias then root",
            "server { location /a {\n alias /y;\n root /x;\n} }",
            "\"root\" directive is duplicate, \"alias\" directive was specified earlier",
            3,
        ),
        (
            "duplicate location",
            "server {\n location /x { }\n location /y { }\n location /x { }\n}",
            "duplicate location \"/x\"",
            4,
        ),
        (
            "duplicate exact location",
            "server {\n location = /x { }\n location = /x { }\n}",
            "duplicate location \"/x\"",
            3,
        ),
        (
            "bad location modifier",
            "server {\n location ~ \\.php$ { }\n}",
            "invalid location modifier \"~\"",
            2,
        ),
        (
            "location prefix without slash",
            "server {\n location img { }\n}",
            "invalid value \"img\" in \"location\" directive, a prefix must start with \"/\"",
            2,
        ),
        (
            "bad size suffix",
            "client_max_body_size 10x;",
            "invalid value \"10x\" in \"client_max_body_size\" directive",
            1,
        ),
        (
            "size overflow",
            "server {\n client_max_body_size 99999999999999g;\n}",
            "invalid value \"99999999999999g\" in \"client_max_body_size\" directive",
            2,
        ),
        (
            "bad duration",
            "keepalive_timeout 5y;",
            "invalid value \"5y\" in \"keepalive_timeout\" directive",
            1,
        ),
        (
            "duration overflow",
            "send_timeout 999999999999999999d;",
            "invalid value \"999999999999999999d\" in \"send_timeout\" directive",
            1,
        ),
        (
            "bad expires",
            "expires soon;",
            "invalid value \"soon\" in \"expires\" directive",
            1,
        ),
        (
            "port zero",
            "server {\n listen 0;\n}",
            "invalid value \"0\" in \"listen\" directive, invalid port",
            2,
        ),
        (
            "port too big",
            "server {\n listen 127.0.0.1:65536;\n}",
            "invalid value \"127.0.0.1:65536\" in \"listen\" directive, invalid port",
            2,
        ),
        (
            "listen host name",
            "server { listen example.com:80; }",
            "invalid value \"example.com:80\" in \"listen\" directive, invalid address",
            1,
        ),
        (
            "listen unknown parameter",
            "server { listen 80 ssl; }",
            "invalid parameter \"ssl\" in \"listen\" directive",
            1,
        ),
        (
            "return code out of range",
            "return 600;",
            "invalid value \"600\" in \"return\" directive, it must be a status code from 100 to 599",
            1,
        ),
        (
            "return code not a number",
            "return abc;",
            "invalid value \"abc\" in \"return\" directive, it must be a status code from 100 to 599",
            1,
        ),
        (
            "redirect without URL",
            "server { location /old {\n return 301;\n} }",
            "\"return\" directive with code 301 needs a URL",
            2,
        ),
        (
            "error_page code too low",
            "error_page 200 /e.html;",
            "invalid value \"200\" in \"error_page\" directive, it must be a status code from 300 to 599",
            1,
        ),
        (
            "error_page code too high",
            "error_page 404 600 /e.html;",
            "invalid value \"600\" in \"error_page\" directive, it must be a status code from 300 to 599",
            1,
        ),
        (
            "internal with an argument",
            "server {\n location /p/ {\n  internal on;\n }\n}",
            "invalid number of arguments in \"internal\" directive",
            3,
        ),
        (
            "internal in a server",
            "server {\n internal;\n}",
            "\"internal\" directive is not allowed here",
            2,
        ),
        (
            "internal twice",
            "server { location /p/ {\n internal;\n internal;\n} }",
            "\"internal\" directive is duplicate",
            3,
        ),
        (
            "try_files with one argument",
            "server {\n try_files $uri;\n}",
            "invalid number of arguments in \"try_files\" directive",
            2,
        ),
        (
            "try_files at top level",
            "try_files $uri =404;",
            "\"try_files\" directive is not allowed here",
            1,
        ),
        (
            "try_files bad code",
            "server { location / {\n try_files $uri =abc;\n} }",
            "invalid value \"=abc\" in \"try_files\" directive, it must be =CODE from 100 to 599",
            2,
        ),
        (
            "try_files code too high",
            "server {\n try_files $uri =600;\n}",
            "invalid value \"=600\" in \"try_files\" directive, it must be =CODE from 100 to 599",
            2,
        ),
        (
            "try_files unknown variable",
            "server {\n\n try_files $uri $request_uri =404;\n}",
            "invalid value \"$request_uri\" in \"try_files\" directive, \"$uri\" is the only variable",
            3,
        ),
        (
            "try_files variable glued to a name",
            "server {\n try_files $uri $uri_x =404;\n}",
            "invalid value \"$uri_x\" in \"try_files\" directive, \"$uri\" is the only variable",
            2,
        ),
        (
            "try_files relative file",
            "server {\n try_files index.html =404;\n}",
            "invalid value \"index.html\" in \"try_files\" directive, it must start with \"/\" or \"$uri\"",
            2,
        ),
        (
            "try_files relative fallback",
            "server {\n try_files $uri index.html;\n}",
            "invalid value \"index.html\" in \"try_files\" directive, it must start with \"/\" or \"$uri\"",
            2,
        ),
        (
            "error_page bad =CODE",
            "server {\n error_page 404 =abc /e.html;\n}",
            "invalid value \"=abc\" in \"error_page\" directive, it must be \"=\" or \"=CODE\" from 200 to 599",
            2,
        ),
        (
            "error_page =CODE too low",
            "error_page 404 =100 /e.html;",
            "invalid value \"=100\" in \"error_page\" directive, it must be \"=\" or \"=CODE\" from 200 to 599",
            1,
        ),
        (
            "error_page =CODE without a code",
            "error_page =200 /e.html;",
            "invalid number of arguments in \"error_page\" directive",
            1,
        ),
        (
            "error_page = as the URI",
            "error_page 404 =;",
            "invalid value \"=\" in \"error_page\" directive",
            1,
        ),
        (
            "error_page = not before the URI",
            "error_page 404 =200 500 /e.html;",
            "invalid value \"=200\" in \"error_page\" directive, it must be a status code from 300 to 599",
            1,
        ),
        (
            "unknown method",
            "server { location / {\n allowed_methods GET FETCH;\n} }",
            "invalid method \"FETCH\"",
            2,
        ),
        (
            "bad flag",
            "autoindex yes;",
            "invalid value \"yes\" in \"autoindex\" directive, it must be \"on\" or \"off\"",
            1,
        ),
        (
            "bad session flag",
            "server {\n session 1;\n}",
            "invalid value \"1\" in \"session\" directive, it must be \"on\" or \"off\"",
            2,
        ),
        (
            "cgi extension without dot",
            "cgi py /usr/bin/python3;",
            "invalid value \"py\" in \"cgi\" directive, the extension must start with \".\"",
            1,
        ),
        (
            "bad error_log level",
            "error_log stderr loud;",
            "invalid value \"loud\" in \"error_log\" directive, it must be debug, info, notice, warn, error or crit",
            1,
        ),
        (
            "bad status",
            "server {\n location /s { status json; }\n}",
            "invalid value \"json\" in \"status\" directive, it must be \"on\", \"off\" or \"prometheus\"",
            2,
        ),
        (
            "bad worker_processes",
            "worker_processes many;",
            "invalid value \"many\" in \"worker_processes\" directive, it must be a number of at least 1 or \"auto\"",
            1,
        ),
        (
            "worker_connections zero",
            "worker_connections 0;",
            "invalid value \"0\" in \"worker_connections\" directive",
            1,
        ),
        (
            "negative count",
            "cgi_max -1;",
            "invalid value \"-1\" in \"cgi_max\" directive",
            1,
        ),
        (
            "session_max zero",
            "session_max 0;",
            "invalid value \"0\" in \"session_max\" directive",
            1,
        ),
        (
            "session_max negative",
            "\nsession_max -5;",
            "invalid value \"-5\" in \"session_max\" directive",
            2,
        ),
        (
            "session_max with a unit",
            "session_max 10k;",
            "invalid value \"10k\" in \"session_max\" directive",
            1,
        ),
        (
            "session_max not a number",
            "session_max lots;",
            "invalid value \"lots\" in \"session_max\" directive",
            1,
        ),
        (
            "session_max past u64",
            "session_max 18446744073709551616;",
            "invalid value \"18446744073709551616\" in \"session_max\" directive",
            1,
        ),
        (
            "session_max without a value",
            "session_max;",
            "invalid number of arguments in \"session_max\" directive",
            1,
        ),
        (
            "session_max with two values",
            "session_max 1 2;",
            "invalid number of arguments in \"session_max\" directive",
            1,
        ),
        (
            "session_max twice",
            "session_max 10;\nsession_max 20;",
            "\"session_max\" directive is duplicate",
            2,
        ),
        (
            "session_max in server",
            "server {\n session_max 10;\n}",
            "\"session_max\" directive is not allowed here",
            2,
        ),
        (
            "header injection",
            "add_header X-A \"a\r\nSet-Cookie: x\";",
            "invalid value \"a\r\nSet-Cookie: x\" in \"add_header\" directive, a header value may not hold CR, LF or NUL",
            1,
        ),
        (
            "bad header name",
            "add_header \"X A\" b;",
            "invalid value \"X A\" in \"add_header\" directive, it must be a header field name",
            1,
        ),
        (
            "add_header third argument other than always",
            "add_header X-A b sometimes;",
            "invalid value \"sometimes\" in \"add_header\" directive",
            1,
        ),
        (
            "bad server name wildcard",
            "server {\n server_name a*b.test;\n}",
            "invalid server name or wildcard \"a*b.test\"",
            2,
        ),
        (
            "access_log format",
            "access_log /x main;",
            "unknown log format \"main\"",
            1,
        ),
        (
            "log_format unknown variable",
            "log_format j '$status $nope';",
            "unknown \"nope\" variable in \"log_format\"",
            1,
        ),
        (
            "log_format duplicate name",
            "log_format j '$status';\nlog_format j '$uri';",
            "duplicate \"log_format\" name \"j\"",
            2,
        ),
        (
            "log_format bad escape",
            "log_format j escape=xml '$status';",
            "unknown log format escaping \"xml\"",
            1,
        ),
        (
            "log_format in a server",
            "server {\n log_format j '$status';\n}",
            "\"log_format\" directive is not allowed here",
            2,
        ),
        (
            "access_log off with a format",
            "log_format j '$status';\nserver {\n access_log off j;\n}",
            "invalid value \"j\" in \"access_log\" directive, \"off\" takes no format",
            3,
        ),
        (
            "types entry without extension",
            "types {\n text/html;\n}",
            "invalid number of arguments in \"types\" directive",
            2,
        ),
        ("unexpected close", "server { }\n}", "unexpected \"}\"", 2),
        (
            "missing close",
            "server {\n listen 80;\n",
            "unexpected end of file, expecting \"}\"",
            3,
        ),
        (
            "missing semicolon at end",
            "server { }\nroot /x",
            "unexpected end of file, expecting \";\" or \"}\"",
            2,
        ),
        (
            "unterminated quote",
            "server {\n root \"/x;\n}\n",
            "unterminated quoted string",
            2,
        ),
    ];
    for (name, text, message, line) in cases {
        let got = errors(text);
        assert!(
            got.iter().any(|(m, l)| m == message && l == line),
            "{name}: want ({message:?}, {line}), got {got:?}"
        );
        let e = parse(text).unwrap_err();
        assert!(e.iter().all(|e| e.file == "t.conf"), "{name}");
    }
}

#[test]
fn all_errors_reported_in_order() {
    let text = "\
worker_processes nope;
server {
    listen 80;
    listen 80;
    bogus on;
    location /a {
        allowed_methods GET BREW;
        alias /a;
        root /b;
    }
    location /a { }
    client_max_body_size 1q;
}
server {
    listen 80 default_server;
    listen 81 default_server;
}
server {
    listen 81 default_server;
}
";
    let got = errors(text);
    let want: Vec<(String, u32)> = [
        ("invalid value \"nope\" in \"worker_processes\" directive, it must be a number of at least 1 or \"auto\"", 1),
        ("unknown directive \"bogus\"", 5),
        ("invalid method \"BREW\"", 7),
        ("\"root\" directive is duplicate, \"alias\" directive was specified earlier", 9),
        ("duplicate location \"/a\"", 11),
        ("invalid value \"1q\" in \"client_max_body_size\" directive", 12),
        ("duplicate listen 0.0.0.0:80", 4),
        ("duplicate default server for 0.0.0.0:81", 19),
    ]
    .iter()
    .map(|(m, l)| (m.to_string(), *l))
    .collect();
    assert_eq!(got, want);
    // ConfigError's Display is the tail of the `[emerg]` line.
    let e = parse(text).unwrap_err();
    assert_eq!(e[1].to_string(), "unknown directive \"bogus\" in t.conf:5");
}

#[test]
fn syntax_and_meaning_errors_together() {
    let got = errors("server {\n rot x;\n}\n}\nkeepalive_timeout x;");
    assert_eq!(
        got,
        vec![
            ("unexpected \"}\"".to_string(), 4),
            ("unknown directive \"rot\"".to_string(), 2),
            (
                "invalid value \"x\" in \"keepalive_timeout\" directive".to_string(),
                5
            ),
        ]
    );
}

#[test]
fn defaults() {
    let c = ok("server { }");
    assert_eq!(c.file, "t.conf");
    assert_eq!(c.error_log, LogTarget::Stderr);
    assert_eq!(c.error_log_level, Level::Warn);
    assert_eq!(c.keepalive_timeout, Duration::from_secs(75));
    assert_eq!(c.keepalive_requests, 10_000);
    assert_eq!(c.client_header_timeout, Duration::from_secs(60));
    assert_eq!(c.client_body_timeout, Duration::from_secs(60));
    assert_eq!(c.send_timeout, Duration::from_secs(60));
    assert_eq!(c.cgi_timeout, Duration::from_secs(30));
    assert_eq!(c.worker_processes, 1);
    assert_eq!(c.worker_connections, 16_384);
    assert_eq!(c.cgi_max, 64);
    assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(c.user, None);
    assert_eq!(c.session_store, Path::new(DIR).join("sessions"));
    assert_eq!(c.session_max, 100_000);
    assert_eq!(c.types.lookup("html"), "text/html");
    assert_eq!(c.types.default_type, "application/octet-stream");
    let s = &c.servers[0];
    assert_eq!(
        s.listen,
        vec![Listen {
            addr: addr("0.0.0.0:80"),
            default_server: false,
            proxy_protocol: false,
            line: 1
        }]
    );
    assert_eq!(s.names, vec![String::new()]);
    assert_eq!(s.access_log.target, LogTarget::Off);
    assert!(!s.session);
    assert_eq!(s.session_timeout, Duration::from_secs(1800));
    assert_eq!(s.locations.len(), 1);
    let l = &s.locations[0];
    assert_eq!((l.prefix.as_str(), l.exact, l.implicit), ("/", false, true));
    assert_eq!(l.methods, MethodSet::get_head());
    assert_eq!(l.root, None);
    assert_eq!(l.alias, None);
    assert_eq!(l.index, vec!["index.html".to_string()]);
    assert!(!l.autoindex);
    assert_eq!(l.ret, None);
    assert!(l.error_pages.is_empty());
    assert_eq!(l.client_max_body_size, 1 << 20);
    assert!(l.cgi.is_empty());
    assert_eq!(l.upload_store, None);
    assert!(!l.gzip_static);
    assert!(!l.brotli_static);
    assert!(!l.zstd_static);
    assert_eq!(l.max_ranges, None);
    assert!(l.add_headers.is_empty());
    assert_eq!(l.expires, None);
    assert_eq!(l.status, StatusPage::Off);
    assert!(!l.session);
    assert!(!l.internal);
    assert!(l.try_files.is_empty());

    // No server at all is not an error here; the server refuses to run
    // without a listener.
    assert!(ok("").servers.is_empty());
}

#[test]
fn top_level_values() {
    let c = ok("
        error_log logs/error.log debug;
        keepalive_timeout 1m30s;
        keepalive_requests 5;
        client_header_timeout 500ms;
        client_body_timeout 2m;
        send_timeout 1h;
        cgi_timeout 10;
        worker_processes auto;
        worker_connections 100;
        cgi_max 0;
        shutdown_timeout 1d;
        user www-data;
        session_store /var/lib/ls;
        session_max 300;
    ");
    assert_eq!(
        c.error_log,
        LogTarget::File(PathBuf::from("/nowhere/conf/logs/error.log"))
    );
    assert_eq!(c.error_log_level, Level::Debug);
    assert_eq!(c.keepalive_timeout, Duration::from_secs(90));
    assert_eq!(c.keepalive_requests, 5);
    assert_eq!(c.client_header_timeout, Duration::from_millis(500));
    assert_eq!(c.client_body_timeout, Duration::from_secs(120));
    assert_eq!(c.send_timeout, Duration::from_secs(3600));
    assert_eq!(c.cgi_timeout, Duration::from_secs(10));
    assert_eq!(c.worker_processes, 0);
    assert_eq!(c.worker_connections, 100);
    assert_eq!(c.cgi_max, 0);
    assert_eq!(c.shutdown_timeout, Duration::from_secs(86_400));
    assert_eq!(c.user.as_deref(), Some("www-data"));
    assert_eq!(c.session_store, PathBuf::from("/var/lib/ls"));
    assert_eq!(c.session_max, 300);
    assert_eq!(ok("session_max 1;").session_max, 1);
    assert_eq!(ok("worker_processes 4;").worker_processes, 4);
    assert_eq!(ok("error_log stderr;").error_log, LogTarget::Stderr);
}

#[test]
fn log_formats_and_location_access_logs() {
    let c = ok(
        "log_format j escape=json '{\"s\":$status,' '\"u\":\"$uri\"}';\n\
                server { access_log a.log; location /api/ { access_log b.log j; } }",
    );
    let s = &c.servers[0];
    assert_eq!(s.access_log.format, None, "combined");
    let api = s.locations.iter().find(|l| l.prefix == "/api/").unwrap();
    let f = api.access_log.format.as_ref().unwrap();
    assert_eq!(f.name, "j");
    assert_eq!(f.escape, crate::config::log_format::Escape::Json);
    assert_eq!(f.items.len(), 5, "{:?}", f.items);
    // The implicit `location /` inherits the server's.
    let root = s.locations.iter().find(|l| l.prefix == "/").unwrap();
    assert_eq!(root.access_log, s.access_log);
}

#[test]
fn server_tokens_is_inherited_and_overridden() {
    let c = ok("server_tokens off; server { location /a/ { server_tokens on; } }");
    let s = &c.servers[0];
    let a = s.locations.iter().find(|l| l.prefix == "/a/").unwrap();
    let root = s.locations.iter().find(|l| l.prefix == "/").unwrap();
    assert!(a.server_tokens);
    assert!(!root.server_tokens);
    assert!(
        ok("server { }").servers[0].locations[0].server_tokens,
        "on by default"
    );
}

#[test]
fn access_rules_first_match_wins() {
    use crate::config::{AccessRule, Net, access_allows};
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert_eq!(Net::parse("10.1.2.3/8"), Some(Net::V4(0x0a00_0000, 8)));
    assert_eq!(Net::parse("all"), Some(Net::All));
    assert_eq!(Net::parse("::1"), Some(Net::V6(1, 128)));
    for bad in ["10.0.0.0/33", "::/129", "10.0.0", "x", "10.0.0.0/", ""] {
        assert_eq!(Net::parse(bad), None, "{bad}");
    }
    let rule = |allow, s: &str| AccessRule {
        allow,
        net: Net::parse(s).unwrap(),
    };
    let rules = [
        rule(false, "192.168.1.1"),
        rule(true, "192.168.1.0/24"),
        rule(true, "2001:db8::/32"),
        rule(true, "127.0.0.1"),
        rule(false, "all"),
    ];
    for (addr, want) in [
        ("192.168.1.1", false),
        ("192.168.1.2", true),
        ("192.168.2.1", false),
        ("2001:db8::5", true),
        ("2001:db9::5", false),
        ("127.0.0.1", true),
        // A v4 client of a [::] listener is its IPv4 address.
        ("::ffff:127.0.0.1", true),
        ("::1", false),
    ] {
        assert_eq!(access_allows(&rules, ip(addr)), want, "{addr}");
    }
    assert!(access_allows(&[], ip("10.0.0.1")), "no rules: everyone");
    // A location's own rules replace its server's.
    let c = ok("server { deny all; location /open/ { allow all; } }");
    let s = &c.servers[0];
    let open = s.locations.iter().find(|l| l.prefix == "/open/").unwrap();
    let root = s.locations.iter().find(|l| l.prefix == "/").unwrap();
    assert_eq!(open.access, [rule(true, "all")]);
    assert_eq!(root.access, [rule(false, "all")]);
    assert_eq!(
        errors("server { allow 10.0.0.0/40; }")[0].0,
        "invalid value \"10.0.0.0/40\" in \"allow\" directive"
    );
}

#[test]
fn real_ip_settings_are_inherited_and_checked() {
    let c = ok("set_real_ip_from 10.0.0.0/8; server { } \
                server { set_real_ip_from ::1; real_ip_header X-Forwarded-For; }");
    assert_eq!(
        c.servers[0].real_ip_from,
        [crate::config::Net::V4(0x0a00_0000, 8)]
    );
    assert_eq!(c.servers[0].real_ip_header, "x-real-ip");
    assert_eq!(c.servers[1].real_ip_from, [crate::config::Net::V6(1, 128)]);
    assert_eq!(c.servers[1].real_ip_header, "x-forwarded-for");
    for (text, message) in [
        (
            "set_real_ip_from all;",
            "invalid value \"all\" in \"set_real_ip_from\" directive",
        ),
        (
            "set_real_ip_from 10.0.0.0/99;",
            "invalid value \"10.0.0.0/99\" in \"set_real_ip_from\" directive",
        ),
        (
            "real_ip_header \"a b\";",
            "invalid value \"a b\" in \"real_ip_header\" directive, it must be a header field name",
        ),
    ] {
        assert_eq!(errors(text), vec![(message.to_string(), 1)], "{text}");
    }
}

#[test]
fn access_log_forms() {
    let cases: &[(&str, LogTarget)] = &[
        ("off", LogTarget::Off),
        ("stdout", LogTarget::Stdout),
        ("stderr", LogTarget::Stderr),
        (
            "access.log",
            LogTarget::File(PathBuf::from("/nowhere/conf/access.log")),
        ),
        (
            "/var/log/a.log combined",
            LogTarget::File(PathBuf::from("/var/log/a.log")),
        ),
    ];
    for (arg, want) in cases {
        let c = ok(&format!("server {{ access_log {arg}; }}"));
        assert_eq!(&c.servers[0].access_log.target, want, "{arg}");
    }
    // Top level is the default for servers.
    let c = ok("access_log stdout; server { } server { access_log off; }");
    assert_eq!(c.servers[0].access_log.target, LogTarget::Stdout);
    assert_eq!(c.servers[1].access_log.target, LogTarget::Off);
}

#[test]
fn inheritance_top_server_location() {
    let c = ok("
        root /top;
        autoindex on;
        client_max_body_size 0;
        session on;
        session_timeout 5m;
        index a.html;
        allowed_methods GET POST;
        expires 1h;
        server {
            root /srv;
            client_max_body_size 10k;
            location /inherit { }
            location /own {
                root /own;
                autoindex off;
                client_max_body_size 2m;
                session off;
                index b.html c.html;
                allowed_methods DELETE;
                expires off;
                gzip_static on;
                upload_store /up;
                status on;
                return 204;
            }
            location /alias { alias /al; }
        }
        server { }
    ");
    let s = &c.servers[0];
    assert!(s.session);
    assert_eq!(s.session_timeout, Duration::from_secs(300));
    let l = s.find_location("/inherit/x");
    assert_eq!(l.root, Some(PathBuf::from("/srv")));
    assert!(l.autoindex);
    assert_eq!(l.client_max_body_size, 10 * 1024);
    assert!(l.session);
    assert_eq!(l.index, vec!["a.html".to_string()]);
    assert_eq!(l.methods, MethodSet::get_head().with(Method::Post));
    assert_eq!(l.expires, Some(Duration::from_secs(3600)));
    let l = s.find_location("/own");
    assert_eq!(l.root, Some(PathBuf::from("/own")));
    assert!(!l.autoindex);
    assert_eq!(l.client_max_body_size, 2 << 20);
    assert!(!l.session);
    assert_eq!(l.index, vec!["b.html".to_string(), "c.html".to_string()]);
    assert_eq!(l.methods, MethodSet::EMPTY.with(Method::Delete));
    assert!(!l.methods.contains(Method::Get));
    assert_eq!(l.expires, None);
    assert!(l.gzip_static);
    assert_eq!(l.upload_store, Some(PathBuf::from("/up")));
    assert_eq!(l.status, StatusPage::Text);
    assert_eq!(
        l.ret,
        Some(Return {
            code: 204,
            text: None
        })
    );
    let l = s.find_location("/alias/x");
    assert_eq!(l.alias, Some(PathBuf::from("/al")));
    assert_eq!(l.root, None, "alias and root are exclusive");
    // The implicit location carries the server level.
    let l = s.find_location("/elsewhere");
    assert!(l.implicit);
    assert_eq!(l.root, Some(PathBuf::from("/srv")));
    assert_eq!(l.client_max_body_size, 10 * 1024);
    // A server with nothing of its own gets the top level.
    let l = c.servers[1].find_location("/");
    assert_eq!(l.root, Some(PathBuf::from("/top")));
    assert_eq!(l.client_max_body_size, 0);
    assert!(c.servers[1].session);
}

#[test]
fn directives_after_server_still_inherit() {
    // As nginx merges after reading the whole block, order does not matter.
    let c = ok("server { } root /late;");
    assert_eq!(c.servers[0].locations[0].root, Some(PathBuf::from("/late")));
}

#[test]
fn index_lines_add_up_in_one_block() {
    let c = ok("server { index a.html; index b.html c.html; location /x { index x.html; } }");
    let s = &c.servers[0];
    assert_eq!(
        s.find_location("/").index,
        vec!["a.html", "b.html", "c.html"]
    );
    assert_eq!(s.find_location("/x").index, vec!["x.html"]);
}

#[test]
fn repeatable_merging() {
    let c = ok("
        add_header X-Top 1;
        error_page 500 /top500.html;
        server {
            add_header X-Server 2;
            error_page 404 /s404.html;
            error_page 403 502 /s40x.html;
            cgi .py python3;
            cgi .sh /bin/sh;
            location /app {
                add_header X-Loc 3 always;
                error_page 404 /app404.html;
                cgi .py ./venv/bin/python;
                cgi .rb ruby;
            }
        }
    ");
    let s = &c.servers[0];
    let app = s.find_location("/app");
    assert_eq!(
        app.add_headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str(), h.always))
            .collect::<Vec<_>>(),
        vec![
            ("X-Top", "1", false),
            ("X-Server", "2", false),
            ("X-Loc", "3", true)
        ]
    );
    assert_eq!(
        app.error_pages,
        vec![
            (500, ErrorPage::original("/top500.html")),
            (404, ErrorPage::original("/app404.html")),
            (403, ErrorPage::original("/s40x.html")),
            (502, ErrorPage::original("/s40x.html")),
        ]
    );
    assert_eq!(
        app.cgi,
        vec![
            (
                ".py".to_string(),
                PathBuf::from("/nowhere/conf/./venv/bin/python")
            ),
            (".sh".to_string(), PathBuf::from("/bin/sh")),
            (".rb".to_string(), PathBuf::from("ruby")),
        ]
    );
    let root = s.find_location("/");
    assert!(root.implicit);
    assert_eq!(root.add_headers.len(), 2);
    assert_eq!(root.error_pages.len(), 4);
    assert_eq!(
        root.error_pages[1],
        (404, ErrorPage::original("/s404.html"))
    );
    assert_eq!(root.cgi.len(), 2);
    assert_eq!(root.cgi[0].1, PathBuf::from("python3"));
}

#[test]
fn return_forms() {
    let cases: &[(&str, u16, Option<&str>)] = &[
        (
            "return 301 https://example.com/;",
            301,
            Some("https://example.com/"),
        ),
        ("return 302 /new;", 302, Some("/new")),
        ("return 303 /x;", 303, Some("/x")),
        ("return 307 /x;", 307, Some("/x")),
        ("return 308 /x;", 308, Some("/x")),
        ("return 403;", 403, None),
        ("return 200 \"hello world\";", 200, Some("hello world")),
        ("return 100;", 100, None),
        ("return 599 x;", 599, Some("x")),
        (
            "return https://example.com;",
            302,
            Some("https://example.com"),
        ),
    ];
    for (d, code, text) in cases {
        let c = ok(&format!("server {{ location / {{ {d} }} }}"));
        let r = c.servers[0].locations[0].ret.clone().unwrap();
        assert_eq!((r.code, r.text.as_deref()), (*code, *text), "{d}");
    }
    for bad in [
        "return 99;",
        "return 1000;",
        "return 301 \"\";",
        "return 302;",
    ] {
        assert!(
            parse(&format!("server {{ location / {{ {bad} }} }}")).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn listen_and_names() {
    let c = ok("
        server {
            listen 8080;
            listen 127.0.0.1:8081 default_server;
            listen localhost:8082;
            listen *:8083;
            listen [::1]:8084;
            server_name Example.COM. www.example.com \"\";
            server_name more.test;
        }
    ");
    let s = &c.servers[0];
    let got: Vec<(String, bool)> = s
        .listen
        .iter()
        .map(|l| (l.addr.to_string(), l.default_server))
        .collect();
    assert_eq!(
        got,
        vec![
            ("0.0.0.0:8080".to_string(), false),
            ("127.0.0.1:8081".to_string(), true),
            ("127.0.0.1:8082".to_string(), false),
            ("0.0.0.0:8083".to_string(), false),
            ("[::1]:8084".to_string(), false),
        ]
    );
    assert_eq!(s.listen[1].line, 4);
    assert_eq!(
        s.names,
        vec!["example.com", "www.example.com", "", "more.test"]
    );
}

#[test]
fn listen_proxy_protocol_flags_in_any_order() {
    let c = ok("
        server {
            listen 8080 proxy_protocol;
            listen 127.0.0.1:8081 proxy_protocol default_server;
            listen 127.0.0.1:8082 default proxy_protocol;
            listen 8083;
            real_ip_header proxy_protocol;
            set_real_ip_from 127.0.0.1;
        }
        server { listen 8080 proxy_protocol default_server; listen 8083; server_name b; }
    ");
    let s = &c.servers[0];
    let got: Vec<(String, bool, bool)> = s
        .listen
        .iter()
        .map(|l| (l.addr.to_string(), l.default_server, l.proxy_protocol))
        .collect();
    assert_eq!(
        got,
        vec![
            ("0.0.0.0:8080".to_string(), false, true),
            ("127.0.0.1:8081".to_string(), true, true),
            ("127.0.0.1:8082".to_string(), true, true),
            ("0.0.0.0:8083".to_string(), false, false),
        ]
    );
    assert_eq!(s.real_ip_header, "proxy_protocol");
    let specs: Vec<(String, bool, usize)> = c
        .listeners()
        .iter()
        .map(|l| (l.addr.to_string(), l.proxy_protocol, l.default))
        .collect();
    assert_eq!(
        specs,
        vec![
            ("0.0.0.0:8080".to_string(), true, 1),
            ("127.0.0.1:8081".to_string(), true, 0),
            ("127.0.0.1:8082".to_string(), true, 0),
            ("0.0.0.0:8083".to_string(), false, 0),
        ]
    );
}

#[test]
fn listen_proxy_protocol_must_agree_across_an_address() {
    // The flag is the listening socket's: a server that does not say it
    // cannot share the address with one that does.
    assert_eq!(
        errors(
            "server {\n listen 8080 proxy_protocol;\n}\n\
             server {\n listen 8080;\n server_name b;\n}\n\
             server {\n listen 0.0.0.0:8080 proxy_protocol;\n server_name c;\n}\n\
             server {\n listen 127.0.0.1:8080;\n server_name d;\n}"
        ),
        vec![(
            "conflicting \"proxy_protocol\" on 0.0.0.0:8080: every listen of an address \
             has it, or none does"
                .to_string(),
            5
        )]
    );
    assert_eq!(
        errors("server { listen 8080; }\nserver { listen 8080 default_server proxy_protocol; }"),
        vec![(
            "conflicting \"proxy_protocol\" on 0.0.0.0:8080: every listen of an address \
             has it, or none does"
                .to_string(),
            2
        )]
    );
    for (text, message) in [
        (
            "server { listen 80 proxy; }",
            "invalid parameter \"proxy\" in \"listen\" directive",
        ),
        (
            "server { listen 80 proxy_protocol ssl; }",
            "invalid parameter \"ssl\" in \"listen\" directive",
        ),
        (
            "server { listen 80 default_server proxy_protocol x; }",
            "invalid number of arguments in \"listen\" directive",
        ),
        (
            "server { listen proxy_protocol; }",
            "invalid value \"proxy_protocol\" in \"listen\" directive, invalid address",
        ),
    ] {
        assert_eq!(errors(text), vec![(message.to_string(), 1)], "{text}");
    }
}

#[test]
fn same_port_different_addresses_is_fine() {
    let (c, w) = parse(
        "server { listen 127.0.0.1:80; } server { listen 0.0.0.0:80; } server { listen [::]:80; }",
    )
    .unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.listeners().len(), 3);
}

#[test]
fn names_shared_across_addresses_is_fine() {
    assert!(
        parse("server { listen 80; server_name a; } server { listen 81; server_name a; }").is_ok()
    );
}

#[test]
fn methods() {
    let c = ok(
        "server { location / { allowed_methods get POST PUT DELETE OPTIONS PATCH TRACE CONNECT; } }",
    );
    let m = c.servers[0].locations[0].methods;
    for k in Method::KNOWN {
        assert!(m.contains(k), "{k:?}");
    }
    let c = ok("server { location / { allowed_methods POST; } }");
    assert!(!c.servers[0].locations[0].methods.contains(Method::Get));
}

#[test]
fn quoted_arguments() {
    let c = ok("server { root \"/srv/my site\"; add_header X-Msg 'a; b {c}'; }");
    let l = &c.servers[0].locations[0];
    assert_eq!(l.root, Some(PathBuf::from("/srv/my site")));
    assert_eq!(l.add_headers[0].value, "a; b {c}");
}

#[test]
fn relative_paths_resolve_against_the_file_folder() {
    let c = ok("
        session_store state;
        server {
            root www;
            location /up { upload_store uploads; }
            location /a { alias ../assets; }
        }
    ");
    assert_eq!(c.session_store, PathBuf::from("/nowhere/conf/state"));
    let s = &c.servers[0];
    assert_eq!(
        s.find_location("/").root,
        Some(PathBuf::from("/nowhere/conf/www"))
    );
    assert_eq!(
        s.find_location("/up").upload_store,
        Some(PathBuf::from("/nowhere/conf/uploads"))
    );
    assert_eq!(
        s.find_location("/a").alias,
        Some(PathBuf::from("/nowhere/conf/../assets"))
    );
}

#[test]
fn missing_folders_are_warnings() {
    let d = temp_dir("warn");
    std::fs::create_dir(d.join("www")).unwrap();
    let text = "server {\n root www;\n location /u { upload_store missing; }\n location /a { alias /nonexistent-ls-dir; }\n}";
    let (_, w) = parse_str(text, "w.conf", &d).unwrap();
    assert_eq!(
        w,
        vec![
            format!(
                "\"upload_store\" folder \"{}\" does not exist in w.conf:3",
                d.join("missing").display()
            ),
            "\"alias\" folder \"/nonexistent-ls-dir\" does not exist in w.conf:4".to_string(),
        ]
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn types_block() {
    let c = ok("types {\n text/html html;\n image/png PNG;\n}\ndefault_type text/plain;");
    assert_eq!(c.types.lookup("html"), "text/html");
    assert_eq!(c.types.lookup("png"), "image/png");
    assert_eq!(
        c.types.lookup("css"),
        "text/plain",
        "the block replaces the built-in table"
    );
    assert_eq!(c.types.default_type, "text/plain");
    // Without a block, default_type changes only the fallback.
    let c = ok("default_type text/plain;");
    assert_eq!(c.types.lookup("css"), "text/css");
    assert_eq!(c.types.lookup("zzz"), "text/plain");
    // Two blocks add up; a repeated extension takes the later type, with a warning.
    let (c, w) = parse("types { a/a x; }\ntypes {\n b/b x y; }").unwrap();
    assert_eq!(c.types.lookup("x"), "b/b");
    assert_eq!(c.types.lookup("y"), "b/b");
    assert_eq!(
        w,
        vec![
            "duplicate extension \"x\", content type: \"b/b\", previous content type: \"a/a\" in t.conf:3"
        ]
    );
    assert_eq!(
        errors("server { types { } }")[0].0,
        "\"types\" directive is not allowed here"
    );
}

#[test]
fn include_glob_and_errors() {
    let d = temp_dir("include");
    std::fs::create_dir(d.join("conf.d")).unwrap();
    std::fs::create_dir(d.join("conf.d/sub")).unwrap();
    std::fs::write(
        d.join("conf.d/b.conf"),
        "server {\n  listen 8082;\n  root html;\n}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("conf.d/a.conf"),
        "server {\n  listen 8081;\n  include sub/loc.inc;\n}\n",
    )
    .unwrap();
    std::fs::write(d.join("conf.d/sub/loc.inc"), "location /x { root here; }\n").unwrap();
    std::fs::write(d.join("conf.d/.hidden.conf"), "bogus;\n").unwrap();
    std::fs::write(d.join("conf.d/c.txt"), "bogus;\n").unwrap();
    std::fs::write(d.join("mime.types"), "types { text/x-special spc; }\n").unwrap();
    std::fs::write(
        d.join("main.conf"),
        "include mime.types;\ninclude conf.d/*.conf;\ninclude none/*.conf;\n",
    )
    .unwrap();
    let (c, _) = load(&d.join("main.conf"), "main.conf").unwrap();
    assert_eq!(c.file, "main.conf");
    assert_eq!(c.types.lookup("spc"), "text/x-special");
    assert_eq!(c.servers.len(), 2);
    // Sorted: a.conf before b.conf.
    assert_eq!(c.servers[0].listen[0].addr.port(), 8081);
    assert_eq!(c.servers[1].listen[0].addr.port(), 8082);
    // Paths in an included file resolve against that file's folder.
    assert_eq!(
        c.servers[0].find_location("/x").root,
        Some(d.join("conf.d/sub/here"))
    );
    assert_eq!(
        c.servers[1].find_location("/").root,
        Some(d.join("conf.d/html"))
    );

    // An error inside an included file names that file and its line.
    std::fs::write(
        d.join("conf.d/sub/loc.inc"),
        "\n\nlocation /x { rooot here; }\n",
    )
    .unwrap();
    let e = load(&d.join("main.conf"), "main.conf").unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].message, "unknown directive \"rooot\"");
    assert_eq!(
        e[0].file,
        d.join("conf.d/a.conf")
            .parent()
            .unwrap()
            .join("sub/loc.inc")
            .display()
            .to_string()
    );
    assert_eq!(e[0].line, 3);

    // A named file that is missing is an error at the include line.
    std::fs::write(d.join("bad.conf"), "server { }\n\ninclude nothere.conf;\n").unwrap();
    let e = load(&d.join("bad.conf"), "bad.conf").unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].message.starts_with(&format!(
            "open() \"{}\" failed (",
            d.join("nothere.conf").display()
        )),
        "{e:?}"
    );
    assert_eq!((e[0].file.as_str(), e[0].line), ("bad.conf", 3));

    // A file that includes itself stops at once, even twice per level.
    std::fs::write(
        d.join("loop.conf"),
        "include loop.conf;\ninclude loop.conf;\n",
    )
    .unwrap();
    let e = load(&d.join("loop.conf"), "loop.conf").unwrap_err();
    let cycle = format!(
        "include cycle: \"{}\" is already being read",
        d.join("loop.conf").display()
    );
    assert_eq!(e.len(), 4, "{e:?}");
    assert!(e.iter().all(|e| e.message == cycle), "{e:?}");
    // Deep but finite nesting is refused past the limit.
    for i in 0..20 {
        std::fs::write(
            d.join(format!("n{i}.conf")),
            format!("include n{}.conf;\n", i + 1),
        )
        .unwrap();
    }
    std::fs::write(d.join("n20.conf"), "").unwrap();
    let e = load(&d.join("n0.conf"), "n0.conf").unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].message.contains("nested too deep"), "{e:?}");

    // Syntax error inside an included file.
    std::fs::write(d.join("conf.d/sub/loc.inc"), "location /x {\n").unwrap();
    let e = load(&d.join("main.conf"), "main.conf").unwrap_err();
    assert_eq!(e[0].message, "unexpected end of file, expecting \"}\"");
    assert!(e[0].file.ends_with("loc.inc"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn load_missing_file_and_relative_path() {
    let e = load(Path::new("/nonexistent-ls/x.conf"), "x.conf").unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].message
            .starts_with("open() \"/nonexistent-ls/x.conf\" failed (")
    );
    assert_eq!(e[0].file, "x.conf");

    // A relative path's folder is made absolute with the current folder.
    let d = temp_dir("rel");
    std::fs::write(d.join("r.conf"), "server { root www; }").unwrap();
    let cwd = std::env::current_dir().unwrap();
    let rel = pathdiff(&d.join("r.conf"), &cwd);
    let (c, _) = load(&rel, "r.conf").unwrap();
    let root = c.servers[0].locations[0].root.clone().unwrap();
    assert!(root.is_absolute(), "{root:?}");
    assert!(root.ends_with("www"));
    std::fs::remove_dir_all(&d).unwrap();
}

/// `to` relative to `from` (both absolute), with `..` as needed.
fn pathdiff(to: &Path, from: &Path) -> PathBuf {
    let t: Vec<_> = to.components().collect();
    let f: Vec<_> = from.components().collect();
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

#[test]
fn builtin_default_config() {
    let c = builtin_default(Path::new("/home/me/site"));
    assert_eq!(c.file, "(built-in default)");
    assert_eq!(c.servers.len(), 1);
    let s = &c.servers[0];
    assert_eq!(s.listen[0].addr, addr("127.0.0.1:8080"));
    let l = s.find_location("/index.html");
    assert!(l.implicit);
    assert_eq!(l.root, Some(PathBuf::from("/home/me/site/www")));
    assert_eq!(l.methods, MethodSet::get_head());
    assert_eq!(c.session_store, PathBuf::from("/home/me/site/sessions"));
    let ls = c.listeners();
    assert_eq!(ls.len(), 1);
    assert_eq!(ls[0].select(&c, Some(b"anything")), 0);
}

#[test]
fn comments_and_layout() {
    let c = ok("# a comment\nserver { # trailing\n  listen 9000; # port\n  # root /no;\n}\n");
    assert_eq!(c.servers[0].listen[0].addr.port(), 9000);
    assert_eq!(c.servers[0].locations[0].root, None);
}

#[test]
fn fuzz_lexer_and_parser_never_panic() {
    let seeds: &[&str] = &[
        "server { listen 127.0.0.1:8080 default_server; server_name a.test *.b.test; root /srv; \
         location = /x { return 301 /y; } location /img/ { alias /data/img; autoindex on; } }",
        "error_log stderr info; keepalive_timeout 1m30s; types { text/html html; } default_type a/b;",
        "server { location /up { allowed_methods GET POST DELETE; upload_store /tmp; \
         client_max_body_size 10m; cgi .py python3; add_header X-A \"b c\"; error_page 404 500 /e.html; \
         expires 1h; gzip_static on; status on; session on; index a b; } }",
        "# c\nserver {\n listen [::1]:81;\n listen 82;\n}\nserver { listen 82; }\n'q\\'x' \"y\\\"\";",
    ];
    let alphabet: &[u8] = b" \t\n;{}#\"'\\abcdefgloinrstuvx0123456789./*=:[]-_~\xc3\xa9";
    let mut rng = crate::testkit::Rng::new(0x9E37_79B9_7F4A_7C15);
    let (mut oks, mut errs) = (0, 0);
    for round in 0..4000 {
        let bytes: Vec<u8> = if round % 4 == 0 {
            // Pure random from the interesting alphabet.
            let len = rng.below(200);
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        } else {
            // Mutations of a valid seed.
            let mut b = seeds[rng.below(seeds.len())].as_bytes().to_vec();
            for _ in 0..1 + rng.below(8) {
                let pos = rng.below(b.len() + 1);
                match rng.below(4) {
                    0 if pos < b.len() => {
                        b.remove(pos);
                    }
                    1 if pos < b.len() => b[pos] = alphabet[rng.below(alphabet.len())],
                    2 => b.insert(pos, alphabet[rng.below(alphabet.len())]),
                    _ => {
                        // Duplicate a slice, to nest and repeat blocks.
                        let end = (pos + rng.below(40)).min(b.len());
                        let piece = b[pos..end].to_vec();
                        b.splice(pos..pos, piece);
                    }
                }
            }
            b
        };
        let text = String::from_utf8_lossy(&bytes);
        // Includes off: mutated input must not read arbitrary files.
        let r1 = build::build(&text, "f.conf", Path::new("/nonexistent-ls-fuzz"), false);
        let r2 = build::build(&text, "f.conf", Path::new("/nonexistent-ls-fuzz"), false);
        // Stable: the same input gives the same verdict and messages.
        match (r1, r2) {
            (Ok((c1, w1)), Ok((c2, w2))) => {
                oks += 1;
                assert_eq!(w1, w2);
                assert_eq!(c1.servers.len(), c2.servers.len());
                for s in &c1.servers {
                    let _ = s.find_location("/a/b");
                }
                for l in c1.listeners() {
                    let _ = l.select(&c1, Some(b"a.test"));
                }
            }
            (Err(e1), Err(e2)) => {
                errs += 1;
                assert_eq!(e1, e2);
                assert!(!e1.is_empty());
            }
            _ => panic!("unstable result for {text:?}"),
        }
    }
    // Both sides are exercised: mutations still parse now and then.
    assert!(oks > 50 && errs > 50, "ok {oks}, err {errs}");
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let text = "a{".repeat(100_000);
    let e = build::build(&text, "f.conf", Path::new("/x"), false).unwrap_err();
    assert!(e.iter().any(|e| e.message == "blocks nested too deep"));
}

#[test]
fn session_scopes_tell_server_blocks_apart_but_not_their_ports() {
    let c = ok("server { listen 1; server_name a.test; }\n\
                server { listen 1; server_name b.test; }\n\
                server { listen 2; }\n\
                server { listen 3; }\n");
    let scopes: Vec<&str> = c.servers.iter().map(|s| s.session_scope.as_str()).collect();
    assert_eq!(scopes, ["a.test#0", "b.test#0", "#0", "#1"]);
    let moved = ok("server { listen 7; server_name a.test; }\n");
    assert_eq!(moved.servers[0].session_scope, "a.test#0");
}

#[test]
fn internal_try_files_and_error_page_status() {
    let c = ok("server {
        try_files $uri $uri/ /index.html;
        error_page 404 =200 /a.html;
        error_page 403 500 = /b.html;
        error_page 502 /c.html;
        location /p/ { internal; error_page 404 =410 /d.html; }
        location /api/ { try_files $uri =404; }
        location /x/ { }
    }");
    let s = &c.servers[0];
    let p = s.find_location("/p/a");
    assert!(p.internal);
    assert_eq!(
        p.try_files,
        vec![
            TryFile::File("$uri".into()),
            TryFile::File("$uri/".into()),
            TryFile::Redirect("/index.html".into()),
        ]
    );
    let page = |uri: &str, status| ErrorPage {
        uri: uri.into(),
        status,
    };
    assert_eq!(
        p.error_pages,
        vec![
            (404, page("/d.html", ErrorStatus::Set(410))),
            (403, page("/b.html", ErrorStatus::Target)),
            (500, page("/b.html", ErrorStatus::Target)),
            (502, page("/c.html", ErrorStatus::Original)),
        ]
    );
    let api = s.find_location("/api/v");
    assert!(!api.internal);
    assert_eq!(
        api.try_files,
        vec![TryFile::File("$uri".into()), TryFile::Status(404)]
    );
    // The server's try_files is the default of its locations; `internal`
    // is a location's own.
    let x = s.find_location("/x/");
    assert_eq!(x.try_files.len(), 3);
    assert!(!x.internal);
    assert!(!s.find_location("/").internal);
}

#[test]
fn precompressed_siblings_and_max_ranges_flow_down_and_are_checked() {
    let c = ok("
        brotli_static on;
        max_ranges 4;
        server {
            zstd_static on;
            location /a { }
            location /b { brotli_static off; zstd_static off; gzip_static on; max_ranges 0; }
        }
        server { location /c { max_ranges 18446744073709551615; } }
    ");
    let l = c.servers[0].find_location("/a");
    assert!(l.brotli_static && l.zstd_static && !l.gzip_static);
    assert_eq!(l.max_ranges, Some(4));
    let l = c.servers[0].find_location("/b");
    assert!(!l.brotli_static && !l.zstd_static && l.gzip_static);
    assert_eq!(l.max_ranges, Some(0));
    let l = c.servers[1].find_location("/c");
    assert!(l.brotli_static && !l.zstd_static);
    assert_eq!(l.max_ranges, Some(u64::MAX));
    let bad = [
        (
            "server {\n  brotli_static yes;\n}",
            "invalid value \"yes\" in \"brotli_static\" directive, it must be \"on\" or \"off\"",
            2,
        ),
        (
            "zstd_static;",
            "invalid number of arguments in \"zstd_static\" directive",
            1,
        ),
        (
            "\nzstd_static on off;",
            "invalid number of arguments in \"zstd_static\" directive",
            2,
        ),
        (
            "server { location / {\n max_ranges -1; } }",
            "invalid value \"-1\" in \"max_ranges\" directive",
            2,
        ),
        (
            "max_ranges many;",
            "invalid value \"many\" in \"max_ranges\" directive",
            1,
        ),
        (
            "max_ranges 99999999999999999999;",
            "invalid value \"99999999999999999999\" in \"max_ranges\" directive",
            1,
        ),
        (
            "max_ranges 1;\nmax_ranges 2;",
            "\"max_ranges\" directive is duplicate",
            2,
        ),
        (
            "server { brotli_static on; brotli_static off; }",
            "\"brotli_static\" directive is duplicate",
            1,
        ),
    ];
    for (text, message, line) in bad {
        assert_eq!(errors(text), vec![(message.to_string(), line)], "{text:?}");
    }
}

#[test]
fn limit_directives_inherit_and_are_checked() {
    let c = ok(
        "limit_rate 1m;\nlimit_req_status 429;\nserver {\n listen 80;\n limit_rate_after 2m;\n limit_conn 3;\n\
                location /a/ { limit_rate 500k; limit_req 600r/m burst=5 nodelay; limit_conn_status 444; }\n\
                location /b/ { limit_req 1r/s; }\n}\n",
    );
    let s = &c.servers[0];
    let a = s.find_location("/a/x");
    assert_eq!((a.limit_rate, a.limit_rate_after), (500 << 10, 2 << 20));
    assert_eq!(a.limit_conn, Some(3));
    assert_eq!(
        a.limit_req,
        Some(LimitReq {
            rate: 10_000,
            burst: 5,
            nodelay: true
        })
    );
    assert_eq!((a.limit_conn_status, a.limit_req_status), (444, 429));
    let b = s.find_location("/b/x");
    assert_eq!((b.limit_rate, b.limit_conn_status), (1 << 20, 503));
    assert_eq!(
        b.limit_req.map(|r| (r.rate, r.burst, r.nodelay)),
        Some((1000, 0, false))
    );
    let root = s.find_location("/");
    assert_eq!((root.limit_rate, root.limit_req), (1 << 20, None));
    // Misuse, each at its line.
    let got = errors(
        "limit_conn 2;\nserver {\n listen 80;\n limit_req 5r/s burst=2 burst=3 x;\n limit_rate 1q;\n\
         limit_conn_status 99;\n location / { limit_req 0r/s; limit_conn 1; limit_conn 2; }\n}\n",
    );
    let lines: Vec<u32> = got.iter().map(|(_, l)| *l).collect();
    assert_eq!(lines, [1, 4, 5, 6, 7, 7], "{got:?}");
}

#[test]
fn status_takes_on_off_or_prometheus_and_is_inherited() {
    let c = ok(
        "server { status prometheus; location /a/ { } location /b/ { status off; } \
                location /c/ { status on; } }",
    );
    let s = &c.servers[0];
    let by = |p: &str| s.locations.iter().find(|l| l.prefix == p).unwrap().status;
    assert_eq!(by("/a/"), StatusPage::Prometheus);
    assert_eq!(by("/b/"), StatusPage::Off);
    assert_eq!(by("/c/"), StatusPage::Text);
}
