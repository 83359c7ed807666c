//! The connection fuzzer (`localserver::fuzzing`) for a while: valid
//! requests mutated and fed to the whole state machine in memory, with
//! random read splits, short writes, early EOF and timer expiries.
//!
//! `LOCALSERVER_FUZZ_SECS` sets how long (default 5, about 7,000 cases in a
//! debug build, so the default `cargo test` stays short; 600 with
//! `LOCALSERVER_SOAK=1`),
//! `LOCALSERVER_FUZZ_SEED` the seed (default: from the clock, printed), and
//! `LOCALSERVER_FUZZ_CASES` a limit on the number of cases (1 replays just
//! the case a failure printed).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use localserver::fuzzing;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v}: not a number"),
    }
}

#[test]
fn fuzz_the_connection_state_machine() {
    // LOCALSERVER_SOAK=1 (the long versions of issue 7's tests): 10 minutes.
    let soak = std::env::var_os("LOCALSERVER_SOAK").is_some_and(|v| !v.is_empty() && v != "0");
    let secs = env_u64("LOCALSERVER_FUZZ_SECS").unwrap_or(if soak { 600 } else { 5 });
    let seed = env_u64("LOCALSERVER_FUZZ_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let max_cases = env_u64("LOCALSERVER_FUZZ_CASES").unwrap_or(u64::MAX);
    let dir = std::env::temp_dir().join(format!("ls-fuzz-{}", std::process::id()));
    println!("fuzz: seed {seed} (LOCALSERVER_FUZZ_SEED), {secs}s (LOCALSERVER_FUZZ_SECS)");
    let summary = fuzzing::run(seed, Duration::from_secs(secs), max_cases, &dir)
        .unwrap_or_else(|e| panic!("cannot set up the fuzz world in {}: {e}", dir.display()));
    let secs = summary.elapsed.as_secs_f64();
    println!(
        "fuzz: {} cases in {secs:.1}s, {:.0} cases/s",
        summary.cases,
        summary.cases as f64 / secs.max(1e-9)
    );
    let c = summary.classes;
    println!(
        "fuzz: responses 1xx {} 2xx {} 3xx {} 4xx {} 5xx {}; cases without one {}",
        c[1], c[2], c[3], c[4], c[5], c[0]
    );
    if let Some((case, what)) = summary.failure {
        panic!(
            "fuzz case {} of the run from seed {seed} failed: {}",
            summary.cases,
            fuzzing::describe(&case, &what)
        );
    }
}
