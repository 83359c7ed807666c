//! The demo site in a real browser: headless Chromium, driven by
//! `tests/browser/flow.mjs` (playwright-core), against the shipped
//! `localserver.conf` and a private copy of `www/` on a free port, so the
//! flow's uploads and sessions never touch the working tree. The flow signs
//! in, reloads, uploads and deletes a file, visits the 404 page and a
//! listing, signs out, and leaves its screenshots in
//! `target/browser-screenshots/`.
//!
//! Needs `node`, `tests/browser/node_modules/playwright-core`
//! (`npm ci --prefix tests/browser`) and `/usr/bin/chromium` (Debian package
//! `chromium`); `.ci/run` installs them. Without them the test is skipped
//! with a message, except when `CI` is set: there it fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Longer than the flow's own limit (120 s), so that its message, not ours,
/// says what hung.
const FLOW_LIMIT: Duration = Duration::from_secs(180);

/// What the flow must leave behind.
const SCREENSHOTS: &[&str] = &[
    "01-home.png",
    "02-signed-in.png",
    "03-uploaded.png",
    "04-deleted.png",
    "05-not-found.png",
    "06-listing.png",
    "07-account.png",
    "08-signed-out.png",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/browser-screenshots` (beside `target/tmp`, wherever the target
/// folder is).
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .join("browser-screenshots")
}

/// What is missing to run the flow, if anything.
fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    if which("node").is_none() {
        missing.push("`node` in PATH (Debian package nodejs)".to_string());
    }
    let pw = repo().join("tests/browser/node_modules/playwright-core/package.json");
    if !pw.is_file() {
        missing.push(format!(
            "{} (run `npm ci --prefix tests/browser`)",
            pw.parent().unwrap().display()
        ));
    }
    if !Path::new(CHROMIUM).is_file() {
        missing.push(format!("{CHROMIUM} (apt-get install chromium)"));
    }
    missing
}

/// Whether `bytes` look like a whole PNG: the signature, an IHDR chunk with
/// a non-zero size, and the IEND chunk at the end.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 33 + 12
        || !bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || &bytes[12..16] != b"IHDR"
        || &bytes[bytes.len() - 8..bytes.len() - 4] != b"IEND"
    {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w > 0 && h > 0).then_some((w, h))
}

#[test]
fn demo_site_in_headless_chromium() {
    let missing = missing_tools();
    if !missing.is_empty() {
        skip(
            "demo_site_in_headless_chromium",
            &format!("missing {}", missing.join("; ")),
        );
        return;
    }

    let srv = start_shipped_site("browser");
    let base = format!("http://127.0.0.1:{}", srv.port(0));
    let out = screenshot_dir();
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();

    // The flow's output goes to files (no pipe to fill up), shown on failure.
    let log_out = srv.dir.join("flow.stdout");
    let log_err = srv.dir.join("flow.stderr");
    let started = Instant::now();
    let _reaper = Reaper(srv.dir.path().display().to_string());
    // node and the Chromium it starts share a process group of their own,
    // so a timeout kills both, and both die with the test.
    let mut child = dies_with_test(
        Command::new("node")
            .arg(repo().join("tests/browser/flow.mjs"))
            .arg(&base)
            .arg(&out)
            .current_dir(repo())
            // Chromium's profile goes under the test's own folder (the flow
            // makes it in os.tmpdir()), where `_reaper` finds what is left.
            .env("TMPDIR", srv.dir.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log_out).unwrap())
            .stderr(fs::File::create(&log_err).unwrap()),
    )
    .spawn()
    .expect("start node");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > FLOW_LIMIT {
            // Playwright closes its browser on SIGTERM; then the group of
            // the child we started, by its PID.
            send_signal(child.id(), "TERM");
            wait_until(Duration::from_secs(5), || {
                child.try_wait().is_ok_and(|s| s.is_some())
            });
            kill_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = started.elapsed();
    let stdout = fs::read_to_string(&log_out).unwrap_or_default();
    let stderr = fs::read_to_string(&log_err).unwrap_or_default();
    let report = format!(
        "node tests/browser/flow.mjs {base} {}\n--- stdout\n{stdout}--- stderr\n{stderr}--- server log\n{}",
        out.display(),
        srv.stderr()
    );
    match status {
        None => panic!("the browser flow ran past {FLOW_LIMIT:?} and was killed\n{report}"),
        Some(s) if !s.success() => panic!("the browser flow failed ({s})\n{report}"),
        Some(_) => {}
    }

    for name in SCREENSHOTS {
        let path = out.join(name);
        let bytes = fs::read(&path)
            .unwrap_or_else(|e| panic!("no screenshot {}: {e}\n{report}", path.display()));
        assert!(
            png_size(&bytes).is_some(),
            "{} is not a complete PNG ({} bytes)",
            path.display(),
            bytes.len()
        );
    }
    // The flow deleted what it uploaded.
    let left: Vec<_> = fs::read_dir(srv.dir.join("www/uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "the flow left uploads behind: {left:?}");
    println!(
        "browser flow passed in {:.1} s; screenshots in {}:\n{stdout}",
        took.as_secs_f64(),
        out.display()
    );
}
