//! The command line: `-t` on good and bad configurations, `-v`, `-h`, the
//! shipped `localserver.conf`, and stopping on SIGTERM/SIGINT
//! (CONFIG.md "Command line").

use std::path::Path;
use std::time::Duration;

use crate::common::*;

const LIMIT: Duration = Duration::from_secs(10);

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn test_flag_on_a_good_config() {
    let dir = TempDir::new("cli-good");
    dir.mkdir("www");
    let (text, _) = expand_config(
        "# a good config\nserver {\n    listen 127.0.0.1:$P0;\n    root www;\n}\n",
        dir.path(),
    );
    let conf = dir.write("good.conf", text);
    let conf = conf.to_str().unwrap();
    let out = run_cli(&["-t", "-c", conf], dir.path(), LIMIT);
    assert!(
        out.stderr
            .lines()
            .any(|l| l == format!("localserver: configuration {conf} test is successful")),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", out.stderr);
}

#[test]
fn test_flag_names_the_file_as_given() {
    let dir = TempDir::new("cli-relative");
    dir.mkdir("conf.d");
    let (text, _) = expand_config("server { listen 127.0.0.1:$P0; root .; }\n", dir.path());
    dir.write("conf.d/site.conf", text);
    let out = run_cli(&["-c", "conf.d/site.conf", "-t"], dir.path(), LIMIT);
    assert!(
        out.stderr
            .contains("localserver: configuration conf.d/site.conf test is successful"),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn test_flag_accepts_a_missing_root() {
    // Not fatal (CONFIG.md): a root folder that does not exist.
    let dir = TempDir::new("cli-missing-root");
    let conf = dir.write(
        "c.conf",
        "server { listen 127.0.0.1:8080; root does/not/exist; }\n",
    );
    let out = run_cli(&["-t", "-c", conf.to_str().unwrap()], dir.path(), LIMIT);
    assert!(
        out.stderr.contains("test is successful"),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn two_unnamed_servers_on_one_address_only_warn() {
    // CONFIG.md: as in nginx, a warning and the first is used.
    let dir = TempDir::new("cli-unnamed");
    dir.write("one/index.html", "one\n");
    dir.write("two/index.html", "two\n");
    let (text, ports) = expand_config(
        "server { listen 127.0.0.1:$P0; root one; }\nserver { listen 127.0.0.1:$P0; root two; }\n",
        dir.path(),
    );
    let conf = dir.write("c.conf", text);
    let out = run_cli(&["-t", "-c", conf.to_str().unwrap()], dir.path(), LIMIT);
    assert!(
        out.stderr.contains("test is successful"),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.status.code(), Some(0));
    let srv = Server::start_with(dir, conf, ports);
    assert_eq!(srv.get("/").body, b"one\n");
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = TempDir::new("cli-no-file");
    let out = run_cli(&["-t", "-c", "nope.conf"], dir.path(), LIMIT);
    assert!(
        out.stderr.contains("localserver: [emerg]"),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn test_flag_reports_every_error_with_its_line() {
    let dir = TempDir::new("cli-bad");
    let conf = dir.write(
        "bad.conf",
        "# line 1\n\
         server {\n\
         \x20   bogus_directive on;\n\
         \x20   root www;\n\
         \x20   listen 127.0.0.1:99999;\n\
         }\n",
    );
    let conf = conf.to_str().unwrap();
    let out = run_cli(&["-t", "-c", conf], dir.path(), LIMIT);
    for line in [3, 5] {
        let suffix = format!(" in {conf}:{line}");
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("localserver: [emerg] ") && l.ends_with(&suffix)),
            "no `localserver: [emerg] ... in {conf}:{line}` line in stderr:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("test is successful"), "{}", out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", out.stderr);
}

#[test]
fn bad_config_refuses_to_start() {
    let dir = TempDir::new("cli-bad-start");
    let conf = dir.write("bad.conf", "server {\n    listen 127.0.0.1:0x50;\n}\n");
    let conf = conf.to_str().unwrap();
    let out = run_cli(&["-c", conf], dir.path(), LIMIT);
    assert!(
        out.stderr.lines().any(
            |l| l.starts_with("localserver: [emerg] ") && l.ends_with(&format!(" in {conf}:2"))
        ),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn test_flag_on_more_invalid_configs() {
    // Each case: the config, and the lines that must be reported (each
    // entry lists the lines any one of which will do).
    let cases: &[(&str, &[&[u32]])] = &[
        // wrong number of arguments
        ("server {\n    listen;\n}\n", &[&[2]]),
        // directive in the wrong block
        (
            "listen 127.0.0.1:8080;\nserver { listen 127.0.0.1:8081; }\n",
            &[&[1]],
        ),
        // bad size and bad duration
        (
            "keepalive_timeout 5x;\nserver {\n    listen 127.0.0.1:8082;\n    client_max_body_size 1q;\n}\n",
            &[&[1], &[4]],
        ),
        // same ADDR:PORT twice in one server
        (
            "server {\n    listen 127.0.0.1:8083;\n    listen 127.0.0.1:8083;\n}\n",
            &[&[3]],
        ),
        // two servers, same address, same name
        (
            "server {\n    listen 127.0.0.1:8084;\n    server_name a.test;\n}\nserver {\n    listen 127.0.0.1:8084;\n    server_name a.test;\n}\n",
            &[&[5, 6, 7]],
        ),
        // two default_server on one address
        (
            "server { listen 127.0.0.1:8085 default_server; }\nserver { listen 127.0.0.1:8085 default_server; }\n",
            &[&[2]],
        ),
        // the same location twice
        (
            "server {\n    listen 127.0.0.1:8086;\n    location /a { }\n    location /a { }\n}\n",
            &[&[4]],
        ),
        // bad status code and bad method
        (
            "server {\n    listen 127.0.0.1:8087;\n    location /r { return 1000 /x; }\n    location /m { allowed_methods GET FLY; }\n}\n",
            &[&[3], &[4]],
        ),
        // brotli_static, zstd_static and max_ranges misused
        (
            "brotli_static yes;\nserver {\n    listen 127.0.0.1:8089;\n    location /a { zstd_static; }\n    location /b {\n        max_ranges -2;\n    }\n}\n",
            &[&[1], &[4], &[6]],
        ),
        // unterminated block
        ("server {\n    listen 127.0.0.1:8088;\n", &[]),
    ];
    let dir = TempDir::new("cli-invalid");
    for (i, (text, lines)) in cases.iter().enumerate() {
        let conf = dir.write(&format!("case{i}.conf"), text);
        let conf = conf.to_str().unwrap();
        let out = run_cli(&["-t", "-c", conf], dir.path(), LIMIT);
        assert_eq!(
            out.status.code(),
            Some(1),
            "case {i} should fail:\n{text}\nstderr: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("localserver: [emerg] "),
            "case {i}: stderr: {}",
            out.stderr
        );
        for any_of in *lines {
            assert!(
                any_of
                    .iter()
                    .any(|line| out.stderr.contains(&format!(" in {conf}:{line}"))),
                "case {i}: none of lines {any_of:?} reported:\n{text}\nstderr: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn include_and_quotes_and_comments() {
    let dir = TempDir::new("cli-include");
    // `root "www"` stands in conf.d/site.conf, so it is conf.d/www: a
    // relative path is relative to the file that holds it (CONFIG.md).
    dir.write("conf.d/www/index.html", "included site\n");
    dir.write("www/index.html", "WRONG: relative to the main file\n");
    let (part, ports) = expand_config(
        "server {\n    listen 127.0.0.1:$P0; # comment after a directive\n    root \"www\";\n    location = '/q' { return 200 \"a;b # not a comment\"; }\n}\n",
        dir.path(),
    );
    dir.write("conf.d/site.conf", part);
    let conf = dir.write(
        "main.conf",
        "# main\nkeepalive_timeout 10s;\ninclude conf.d/*.conf;\n",
    );
    let out = run_cli(&["-t", "-c", conf.to_str().unwrap()], dir.path(), LIMIT);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", out.stderr);

    let srv = Server::start_with(dir, conf, ports);
    let r = srv.get("/");
    assert_status(&r, 200);
    assert_eq!(r.body, b"included site\n");
    let r = srv.get("/q");
    assert_status(&r, 200);
    assert_eq!(r.body, b"a;b # not a comment");
}

#[test]
fn version_flag() {
    let out = run_cli(&["-v"], repo_root(), LIMIT);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(env!("CARGO_PKG_VERSION")),
        "-v should print the version {}: {all:?}",
        env!("CARGO_PKG_VERSION")
    );
    assert!(all.contains("localserver"), "{all:?}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn help_flag() {
    let out = run_cli(&["-h"], repo_root(), LIMIT);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.to_lowercase().contains("usage"), "{all:?}");
    for flag in ["-c", "-t", "-v", "-h"] {
        assert!(all.contains(flag), "usage should mention {flag}: {all:?}");
    }
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn unknown_flag_is_an_error() {
    // Refused with exit code 1 and a message naming the flag, not merely
    // "not 0": a panic (101) or a signal (no code) is not an answer.
    let out = run_cli(&["--bogus-flag"], repo_root(), LIMIT);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("invalid option: \"--bogus-flag\""),
        "stderr: {}",
        out.stderr
    );
    assert!(out.stderr.contains("Usage:"), "stderr: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "stderr: {}", out.stderr);
}

#[test]
fn shipped_config_passes_the_test() {
    let out = run_cli(&["-t", "-c", "localserver.conf"], repo_root(), LIMIT);
    assert!(
        out.stderr
            .contains("localserver: configuration localserver.conf test is successful"),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", out.stderr);
}

#[test]
fn default_config_lookup_finds_the_shipped_file() {
    // Without -c, ./localserver.conf is read.
    let out = run_cli(&["-t"], repo_root(), LIMIT);
    assert!(
        out.stderr.contains("test is successful"),
        "stderr: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("localserver.conf"),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn built_in_default_without_a_config_file() {
    // In a folder without localserver.conf the built-in default is used.
    let dir = TempDir::new("cli-builtin");
    let out = run_cli(&["-t"], dir.path(), LIMIT);
    assert!(
        out.stderr.contains("test is successful"),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.status.code(), Some(0));
}

fn stop_with(signal: &str) {
    let dir = TempDir::new("signal");
    dir.write("www/index.html", "hi\n");
    let mut srv = Server::start(dir, "server { listen 127.0.0.1:$P0; root www; }");
    // An idle keep-alive connection must not hold the stop back.
    let mut c = srv.connect(0);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.read_response().body, b"hi\n");
    kill(srv.pid(), signal);
    let status = srv
        .wait_exit(Duration::from_secs(3))
        .unwrap_or_else(|| panic!("localserver still running 3 s after SIG{signal}"));
    assert_eq!(
        status.code(),
        Some(0),
        "SIG{signal} should stop the server cleanly (exit 0), got {status}"
    );
}

#[test]
fn sigterm_stops_the_server() {
    stop_with("TERM");
}

#[test]
fn sigint_stops_the_server() {
    stop_with("INT");
}

#[test]
fn unbindable_address_is_not_fatal_when_another_binds() {
    // CONFIG.md: an address that cannot be bound is logged; the server runs
    // with what works.
    let dir = TempDir::new("cli-partial-bind");
    dir.write("www/index.html", "partial\n");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let srv = Server::start(
        dir,
        &format!(
            "server {{ listen 127.0.0.1:$P0; root www; }}\nserver {{ listen 127.0.0.1:{busy_port}; root www; }}\n"
        ),
    );
    let r = srv.get("/");
    assert_status(&r, 200);
    assert_eq!(r.body, b"partial\n");
    drop(busy);
}

#[test]
fn nothing_bindable_exits_1() {
    let dir = TempDir::new("cli-no-bind");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let conf = dir.write(
        "c.conf",
        format!("server {{ listen 127.0.0.1:{busy_port}; root .; }}\n"),
    );
    let out = run_cli(&["-c", conf.to_str().unwrap()], dir.path(), LIMIT);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", out.stderr);
    drop(busy);
}

#[test]
fn every_example_configuration_passes_the_check() {
    // README's examples are real files: each must stay valid.
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for e in std::fs::read_dir(&examples).unwrap().flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "conf") {
            continue;
        }
        let out = run_cli(&["-t", "-c", path.to_str().unwrap()], &examples, LIMIT);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            out.stderr
        );
        assert!(out.stderr.contains("test is successful"), "{}", out.stderr);
        n += 1;
    }
    assert!(n >= 4, "examples found: {n}");
}
