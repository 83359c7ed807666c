//! `status on|prometheus` with several workers: every figure is the sum over
//! all of them (counts and gauges alike), a killed worker's connections
//! leave the gauges and its counts stay; the Prometheus page is read by the
//! reference parser (`prometheus_client`, Debian's python3-prometheus-client,
//! installed by tools/test), and counts CGI processes and limit refusals.

use crate::common::*;
use crate::http_features::status_numbers;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A Python 3 that has `prometheus_client` (Debian's package serves
/// /usr/bin/python3; a python3 earlier in PATH may lack it); `None`, said
/// as a skip of `test`, when there is none.
fn prometheus_python(test: &str) -> Option<&'static str> {
    let py = ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import prometheus_client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if py.is_none() {
        skip(
            test,
            "no python3 with prometheus_client (apt-get install python3-prometheus-client)",
        );
    }
    py
}

/// A Prometheus page as the reference parser reads it: the families
/// (name → (type, help)) and the samples (`name{labels}` → value). The
/// parser raises on anything malformed, and then the test fails.
struct Scrape {
    families: BTreeMap<String, (String, String)>,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    fn parse(py: &str, page: &str) -> Scrape {
        // (A raw string: Python's indentation must survive.)
        const SCRIPT: &str = r"import sys
from prometheus_client.parser import text_string_to_metric_families as parse
for f in parse(sys.stdin.read()):
    print('F', f.name, f.type, f.documentation, sep='\t')
    for s in f.samples:
        labels = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()))
        print('S', s.name + ('{' + labels + '}' if labels else ''), repr(s.value), sep='\t')
";
        let out = run_with_input(py, &["-c", SCRIPT], page.as_bytes());
        assert!(
            out.status.success(),
            "the Prometheus parser refused the page: {}\n{page}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut scrape = Scrape {
            families: BTreeMap::new(),
            samples: BTreeMap::new(),
        };
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["F", name, kind, help] => {
                    scrape
                        .families
                        .insert(name.to_string(), (kind.to_string(), help.to_string()));
                }
                ["S", name, value] => {
                    scrape
                        .samples
                        .insert(name.to_string(), value.parse().unwrap());
                }
                _ => panic!("{line:?}"),
            }
        }
        scrape
    }

    /// A sample's value, as a whole number.
    #[track_caller]
    fn get(&self, name: &str) -> u64 {
        let v = *self
            .samples
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.samples));
        assert!(v >= 0.0 && v.fract() == 0.0, "{name} = {v}");
        v as u64
    }
}

fn get_on(c: &mut Conn, path: &str) -> Response {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: m\r\n\r\n").as_bytes());
    c.read_response()
}

/// The pid in the access log line of the request with query `args`.
fn pid_of(log: &str, args: &str) -> Option<u32> {
    log.lines().find_map(|l| {
        let mut f = l.split(' ');
        let pid = f.next()?.parse().ok()?;
        (f.next()? == args).then_some(pid)
    })
}

#[test]
fn status_sums_every_figure_over_two_workers_in_both_formats() {
    let Some(py) = prometheus_python("status_sums_every_figure_over_two_workers_in_both_formats")
    else {
        return;
    };
    let dir = TempDir::new("metrics-workers");
    dir.write("www/a.txt", "aaaa");
    let srv = Server::start(
        dir,
        "worker_processes 2;\n\
         log_format w '$pid $args $connection';\n\
         server {\n\
             listen 127.0.0.1:$P0;\n\
             root www;\n\
             access_log access.log w;\n\
             location = /status { status on; }\n\
             location = /metrics { status prometheus; }\n\
         }\n",
    );
    let master = srv.pid();
    assert!(eventually(Duration::from_secs(5), || children_of(master)
        .len()
        == 2));
    let workers: BTreeSet<u32> = children_of(master).into_iter().map(|(p, _)| p).collect();
    let base = status_numbers(&srv.get("/status").body_str());

    // 30 connections of 3 requests each, the last one closing.
    for i in 0..30 {
        let mut c = srv.connect(0);
        for j in 0..3 {
            let close = if j == 2 { "Connection: close\r\n" } else { "" };
            c.send(format!("GET /a.txt?c{i}.{j} HTTP/1.1\r\nHost: m\r\n{close}\r\n").as_bytes());
            assert_status(&c.read_response(), 200);
        }
        c.expect_closed(Duration::from_secs(5));
    }
    // Idle keep-alive connections, until each worker holds at least two
    // (the kernel spreads them; the access log says which worker got which).
    let log_path = srv.dir.join("access.log");
    let mut idle = Vec::new();
    let held = |idle: &Vec<Conn>| -> BTreeMap<u32, usize> {
        let mut by_pid = BTreeMap::new();
        let ok = eventually(Duration::from_secs(5), || {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            by_pid.clear();
            (0..idle.len()).all(|i| {
                pid_of(&log, &format!("idle{i}"))
                    .map(|p| *by_pid.entry(p).or_insert(0) += 1)
                    .is_some()
            })
        });
        assert!(ok, "the access log lacks idle lines");
        by_pid
    };
    while idle.len() < 60 {
        let mut c = srv.connect(0);
        let r = get_on(&mut c, &format!("/a.txt?idle{}", idle.len()));
        assert_status(&r, 200);
        idle.push(c);
        if idle.len() >= 4 {
            let by_pid = held(&idle);
            if by_pid.len() == 2 && by_pid.values().all(|&n| n >= 2) {
                break;
            }
        }
    }
    let by_pid = held(&idle);
    assert_eq!(
        by_pid.keys().copied().collect::<BTreeSet<u32>>(),
        workers,
        "both workers hold idle connections"
    );
    let n = idle.len() as u64;
    // `$connection` numbers connections over both workers: the 30 got 30
    // numbers, each the same for its three requests.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let mut numbers: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    for line in log.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if let [_, args, conn] = f.as_slice()
            && let Some(i) = args.strip_prefix('c').and_then(|a| a.split('.').next())
        {
            numbers
                .entry(i.parse().unwrap())
                .or_default()
                .insert(conn.parse().unwrap());
        }
    }
    assert_eq!(numbers.len(), 30, "{log}");
    assert!(numbers.values().all(|c| c.len() == 1), "{numbers:?}");
    let distinct: BTreeSet<u64> = numbers.values().flatten().copied().collect();
    assert_eq!(distinct.len(), 30, "{numbers:?}");

    // The figures of both workers, from one of them: every idle connection
    // waits, the one asking writes.
    let mut s = srv.connect(0);
    let mut polls = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    let now = loop {
        polls += 1;
        let r = get_on(&mut s, "/status?s");
        assert_status(&r, 200);
        let now = status_numbers(&r.body_str());
        if now[0] == n + 1 || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let [
        active,
        accepts,
        handled,
        requests,
        reading,
        writing,
        waiting,
        deferred,
    ] = now;
    assert_eq!(active, n + 1, "{now:?}");
    assert_eq!((reading, writing, waiting), (0, 1, n), "{now:?}");
    // Since the base: the 30 connections, the idle ones and `s`.
    assert_eq!(accepts - base[1], 30 + n + 1, "{base:?} {now:?}");
    assert_eq!(handled, accepts);
    assert_eq!(requests - base[3], 90 + n + polls, "{base:?} {now:?}");
    assert_eq!(deferred, 0);

    // The same figures for Prometheus (one request later).
    let r = get_on(&mut s, "/metrics");
    assert_status(&r, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = Scrape::parse(py, &r.body_str());
    assert_eq!(m.get("localserver_connections_active"), n + 1);
    assert_eq!(m.get("localserver_connections_reading"), 0);
    assert_eq!(m.get("localserver_connections_writing"), 1);
    assert_eq!(m.get("localserver_connections_waiting"), n);
    assert_eq!(m.get("localserver_connections_accepted_total"), accepts);
    assert_eq!(m.get("localserver_connections_handled_total"), handled);
    assert_eq!(m.get("localserver_http_requests_total"), requests + 1);
    assert_eq!(m.get("localserver_cgi_processes"), 0);
    assert_eq!(m.get("localserver_limit_rejected_total{limit=conn}"), 0);

    // One worker killed: its connections leave the gauges (the master
    // zeroes its row), what it counted stays in the totals.
    // (The worker that answered `s` logs it within a second.)
    let mut s_pid = None;
    assert!(eventually(Duration::from_secs(5), || {
        s_pid = pid_of(&std::fs::read_to_string(&log_path).unwrap(), "s");
        s_pid.is_some()
    }));
    let victim = *workers.iter().next().unwrap();
    kill(victim, "KILL");
    let survivors = by_pid
        .iter()
        .filter(|&(&p, _)| p != victim)
        .map(|(_, &k)| k as u64)
        .sum::<u64>()
        + u64::from(s_pid.is_some_and(|p| p != victim));
    let mut last = [0; 8];
    let settled = eventually(Duration::from_secs(10), || {
        let r = srv.get("/status");
        if r.status != 200 {
            return false;
        }
        last = status_numbers(&r.body_str());
        last[0] == survivors + 1 && last[6] == survivors && last[5] == 1
    });
    assert!(
        settled,
        "after the kill, {survivors} idle connections and this one: {last:?}\n{}",
        srv.stderr()
    );
    assert!(last[1] > accepts && last[3] > requests, "{now:?} {last:?}");
}

/// A script that runs for a while before it answers.
const SLOW_CGI: &str = "#!/bin/sh\nsleep 2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow\\n'\n";

#[test]
fn prometheus_page_counts_cgi_processes_and_limit_refusals() {
    let Some(py) = prometheus_python("prometheus_page_counts_cgi_processes_and_limit_refusals")
    else {
        return;
    };
    let dir = TempDir::new("metrics-prom");
    dir.write("www/req/a.txt", "a");
    dir.write_script("www/cgi/slow.sh", SLOW_CGI);
    let srv = Server::start(
        dir,
        "server {\n\
             listen 127.0.0.1:$P0;\n\
             root www;\n\
             location /cgi/ { cgi .sh /bin/sh; }\n\
             location /req/ { limit_req 1r/m nodelay; limit_req_status 429; }\n\
             location = /metrics { status prometheus; add_header X-M m; }\n\
         }\n",
    );
    let first = srv.get("/metrics");
    assert_status(&first, 200);
    assert_eq!(first.headers_named("X-M"), ["m"]);
    let m = Scrape::parse(py, &first.body_str());
    // Every family has its HELP and TYPE, and is a gauge or a counter.
    let want: BTreeMap<&str, &str> = [
        ("localserver_connections_active", "gauge"),
        ("localserver_connections_reading", "gauge"),
        ("localserver_connections_writing", "gauge"),
        ("localserver_connections_waiting", "gauge"),
        ("localserver_connections_accepted", "counter"),
        ("localserver_connections_handled", "counter"),
        ("localserver_http_requests", "counter"),
        ("localserver_deferred_reads", "counter"),
        ("localserver_limit_rejected", "counter"),
        ("localserver_limit_req_delayed", "counter"),
        ("localserver_cgi_processes", "gauge"),
    ]
    .into_iter()
    .collect();
    let got: BTreeMap<&str, &str> = m
        .families
        .iter()
        .map(|(k, (t, _))| (k.as_str(), t.as_str()))
        .collect();
    assert_eq!(got, want);
    assert!(m.families.values().all(|(_, help)| !help.is_empty()));
    assert_eq!(m.get("localserver_connections_active"), 1);
    assert_eq!(m.get("localserver_connections_writing"), 1);

    // A running script, then two refusals of limit_req.
    let mut cgi = srv.connect(0);
    cgi.send(b"GET /cgi/slow.sh HTTP/1.1\r\nHost: m\r\n\r\n");
    let codes: Vec<u16> = (0..3).map(|_| srv.get("/req/a.txt").status).collect();
    assert_eq!(codes, [200, 429, 429]);
    let mut running = None;
    assert!(eventually(Duration::from_secs(2), || {
        let m = Scrape::parse(py, &srv.get("/metrics").body_str());
        let hit = m.get("localserver_cgi_processes") == 1;
        running = Some(m);
        hit
    }));
    let m = running.unwrap();
    assert_eq!(m.get("localserver_connections_writing"), 2);
    assert_eq!(m.get("localserver_limit_rejected_total{limit=req}"), 2);
    assert_eq!(m.get("localserver_limit_rejected_total{limit=conn}"), 0);
    assert_eq!(m.get("localserver_limit_req_delayed_total"), 0);
    assert_eq!(cgi.read_response().body_str(), "slow\n");
    // The script is gone: the gauge follows.
    assert!(eventually(Duration::from_secs(2), || {
        Scrape::parse(py, &srv.get("/metrics").body_str()).get("localserver_cgi_processes") == 0
    }));
    // HEAD: the head alone.
    let h = srv.raw("HEAD /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n");
    assert_status(&h, 200);
    assert!(h.body.is_empty());
}
