//! A std-only fuzzer for the whole connection state machine: valid requests
//! from a corpus, mutated, fed to a [`Conn`] over a [`MemTransport`] in
//! random read chunks, with short writes, early end of stream and timer
//! expiries thrown in; `tests/fuzz.rs` runs it. Test-only: compiled for the
//! crate's tests and with the `testkit` feature, never into the server.
//!
//! Every case is built from one seed (xorshift), and cases share nothing
//! but the configuration and the site's files, so a failing case is
//! reproduced alone from the seed it prints. After each case: no panic;
//! the output is a sequence of well-framed HTTP/1.1 responses, none after
//! one that said `Connection: close`; an idle connection holds no buffer;
//! every buffer goes back to the pool; no upload's temporary file is left;
//! the site's files are untouched and the upload store holds only files.
//! Some cases are a `listen ... proxy_protocol` connection: a PROXY
//! protocol header (maybe mutated, maybe split) comes first, and nothing
//! is answered unless it is a whole, valid one.
//!
//! CGI routes are left out: a script is a real child process whose pipes
//! are polled in real time, which would make a case slow and its outcome
//! depend on the scheduler rather than on the seed.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{self, Config, Level, ListenerSpec, LogTarget};
use crate::handlers::RootCache;
use crate::server::board::Board;
use crate::server::buffer::BufPool;
use crate::server::cgi::CgiTable;
use crate::server::conn::{Conn, Drive, Env, Phase, RETRY_MAX_MS, Shared, State};
use crate::server::log::Log;
use crate::server::timer::Millis;
use crate::server::transport::MemTransport;
use crate::sys::Epoll;
use crate::testkit::Rng;

/// The configuration every case runs under (`{DIR}` is the world's folder).
const CONFIG: &str = "keepalive_timeout 5s; client_header_timeout 2s; client_body_timeout 3s;
send_timeout 4s; keepalive_requests 20;
server {
    listen 127.0.0.1:8080; server_name localhost;
    set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;
    root {DIR}/www;
    error_page 404 /errors/404.html;
    add_header X-Fuzz yes;
    location / { index index.html; allowed_methods GET HEAD; gzip_static on; expires 1h;
                 brotli_static on; zstd_static on; max_ranges 8; }
    location /files/ { autoindex on; add_header X-Always 1 always; }
    location /up/ { upload_store {DIR}/up; allowed_methods GET HEAD POST PUT DELETE;
                    client_max_body_size 4k; autoindex on; }
    location = /old { return 301 /a.txt; }
    location /away/ { return 302 http://other.test/; }
}
server { listen 127.0.0.1:8080; server_name other.test; root {DIR}/www/files; }
";

/// The site: (path under the world's folder, contents).
fn site() -> Vec<(&'static str, Vec<u8>)> {
    let text: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let big: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    vec![
        ("www/index.html", b"<h1>home</h1>".to_vec()),
        ("www/a.txt", text),
        ("www/big.bin", big),
        ("www/style.css", b"body { color: red }".to_vec()),
        ("www/style.css.gz", b"\x1f\x8b not really gzip".to_vec()),
        ("www/style.css.br", b"not really brotli".to_vec()),
        ("www/errors/404.html", b"<h1>not here</h1>".to_vec()),
        ("www/files/one.txt", b"one".to_vec()),
        ("www/files/two words.txt", b"two".to_vec()),
    ]
}

/// What an event loop lends a connection for one `drive`, in memory: its
/// own [`Shared`] (with an epoll instance nobody waits on: CGI pipes are
/// tried at every drive; no sessions, no access log).
pub struct Lent {
    pub config: Config,
    pub specs: Vec<ListenerSpec>,
    /// The turn's `sendfile` budget there is unlimited unless a test sets
    /// it (the loop resets its own every turn); the error log is stderr,
    /// `crit` only (what a case provokes is not news).
    pub shared: Shared,
    /// The monotonic clock, moved by hand.
    pub now: Millis,
}

impl Lent {
    /// Everything fresh around `config`, the clock at 1 s.
    pub fn new(config: Config) -> io::Result<Lent> {
        let log = Log::open(&LogTarget::Stderr, Level::Crit);
        Ok(Lent {
            specs: config.listeners(),
            config,
            shared: Shared::new(Epoll::new()?, log, 8, Board::new()?),
            now: 1_000,
        })
    }

    /// The `Env` of one `drive` or `on_timeout`.
    pub fn env(&mut self) -> Env<'_> {
        Env {
            shared: &mut self.shared,
            config: &self.config,
            specs: &self.specs,
            now: self.now,
            unix_now: 1_700_000_000,
            id: crate::server::token::ConnId::default(),
            counted: Phase::Waiting,
        }
    }
}

/// The fuzzer's configuration and site on disk, and a [`Lent`] made fresh
/// for every case.
pub struct World {
    lent: Lent,
    dir: PathBuf,
    /// The site as written: (path, size), sorted.
    site: Vec<(PathBuf, u64)>,
    /// The case's `sendfile` budget, given afresh to every drive.
    turn_budget: usize,
    /// Every other drive finds the turn's budget spent by others.
    starve: bool,
    /// Drives so far in the case.
    turns: u64,
}

impl World {
    /// Write the site under `dir` (emptied first) and read the configuration.
    pub fn new(dir: &Path) -> io::Result<World> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("up"))?;
        for (path, bytes) in site() {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, bytes)?;
        }
        let text = CONFIG.replace("{DIR}", &dir.display().to_string());
        let (config, _) = config::parse_str(&text, "fuzz.conf", dir).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("fuzz.conf: {e:?}"))
        })?;
        let site = tree(&dir.join("www"))?;
        Ok(World {
            lent: Lent::new(config)?,
            dir: dir.to_path_buf(),
            site,
            turn_budget: usize::MAX,
            starve: false,
            turns: 0,
        })
    }

    /// The `Env` of one drive: a new turn of the loop, so a fresh budget.
    fn env(&mut self) -> Env<'_> {
        self.turns += 1;
        self.lent.shared.sendfile_left = if self.starve && self.turns.is_multiple_of(2) {
            0
        } else {
            self.turn_budget
        };
        self.lent.env()
    }

    /// Forget what the last case left: pool, caches, clock, uploads.
    fn reset(&mut self) -> io::Result<()> {
        self.lent.shared.pool = BufPool::new(8);
        self.lent.shared.site.roots = RootCache::default();
        self.lent.shared.cgi = CgiTable::default();
        self.lent.shared.board = Board::new()?;
        self.lent.now = 1_000;
        for e in std::fs::read_dir(self.dir.join("up"))? {
            let e = e?;
            if e.file_type()?.is_dir() {
                std::fs::remove_dir_all(e.path())?;
            } else {
                std::fs::remove_file(e.path())?;
            }
        }
        Ok(())
    }
}

/// Every file under `dir` with its size, sorted.
fn tree(dir: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let meta = std::fs::symlink_metadata(e.path())?;
            if meta.is_dir() {
                todo.push(e.path());
            }
            out.push((e.path(), meta.len()));
        }
    }
    out.sort();
    Ok(out)
}

/// The corpus: valid requests covering what the server does.
pub fn corpus() -> Vec<Vec<u8>> {
    let long = "a".repeat(6000);
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"m.txt\"\r\n\
                     Content-Type: text/plain\r\n\r\nmulti part\r\n--XyZ\r\n\
                     Content-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ--\r\n";
    let mut v: Vec<String> = vec![
        "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET /index.html?x=1&y=%20z HTTP/1.1\r\nHost: localhost\r\nUser-Agent: fuzz/1\r\nAccept: */*\r\n\r\n".into(),
        "HEAD /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=10-99\r\n\r\n".into(),
        "GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=-100\r\n\r\n".into(),
        "GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=39990-50000\r\n\r\n".into(),
        "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=5000-\r\n\r\n".into(),
        "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: *\r\n\r\n".into(),
        "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nIf-Modified-Since: Wed, 01 Jan 2098 00:00:00 GMT\r\n\r\n".into(),
        "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nIf-Range: \"x\"\r\nRange: bytes=0-0\r\n\r\n".into(),
        "GET /style.css HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: br, gzip;q=0.5\r\n\r\n".into(),
        "HEAD /style.css HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n".into(),
        "GET /style.css HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: zstd, gzip;q=0.5, br;q=0.9\r\nRange: bytes=0-1,4-\r\n\r\n".into(),
        "GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9,100-199,-5,30000-\r\n\r\n".into(),
        "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-0,2-2,4-4,1-1\r\n\r\n".into(),
        "HEAD /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=1-2,4-5\r\n\r\n".into(),
        "GET /files/ HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET /files HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET /old HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET /away/x HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: other.test:8080\r\n\r\n".into(),
        "GET /%61.txt HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET /files/two%20words.txt HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET /files/../a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET http://localhost/a.txt?q HTTP/1.1\r\nHost: ignored\r\n\r\n".into(),
        "GET / HTTP/1.0\r\n\r\n".into(),
        "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".into(),
        "OPTIONS /files/ HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Long: {long}\r\nCookie: a=b; c=d\r\n\r\n"),
        "POST /up/f.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\nhello world".into(),
        "PUT /up/c.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
         5;ext=1\r\nhello\r\n7;a=\"b c\"\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n".into(),
        "PUT /up/e.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\ndata".into(),
        "PUT /up/big.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n".into(),
        format!(
            "POST /up/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n\
             Content-Length: {}\r\n\r\n{multipart}",
            multipart.len()
        ),
        "DELETE /up/f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "GET /up/ HTTP/1.1\r\nHost: localhost\r\n\r\n".into(),
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nabcde".into(),
        "POST /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nxyz".into(),
    ];
    v.shrink_to_fit();
    v.into_iter().map(String::into_bytes).collect()
}

/// PROXY protocol headers a `proxy` case starts with (v1 and v2, each
/// form the server reads).
const PROXY_HEADERS: &[&[u8]] = &[
    b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 8080\r\n",
    b"PROXY TCP6 2001:db8::1 ::1 65535 8080\r\n",
    b"PROXY UNKNOWN\r\n",
    // v2 PROXY TCP4, with an ALPN TLV.
    b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x11\xc0\x00\x02\x01\x7f\x00\x00\x01\x9c\x40\x1f\x90\x01\x00\x02h2",
    // v2 LOCAL.
    b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00",
    // v2 PROXY TCP6.
    b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01\
      \0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x9c\x40\x1f\x90",
];

/// Bytes worth inserting: the ones framing and parsing hinge on.
const INTERESTING: &[u8] = b"\r\n\0 \t:%0123456789\xff;,=\"/.?#-";
/// Numbers that overflow or nearly overflow a length or a chunk size.
const HUGE: &[&[u8]] = &[
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999999",
    b"9223372036854775808",
    b"4294967296",
    b"ffffffffffffffff",
    b"10000000000000000",
    b"0",
    b"-1",
    b"+5",
];

/// One generated case: the bytes, how they arrive, and what else happens.
#[derive(Clone, Debug)]
pub struct Case {
    /// The seed the case was built from.
    pub seed: u64,
    /// The client's bytes.
    pub input: Vec<u8>,
    /// The read chunks: lengths adding up to `input.len()`.
    pub chunks: Vec<usize>,
    /// Most bytes one write takes (`None`: all).
    pub write_limit: Option<usize>,
    /// The client closes its side after this many chunks.
    pub eof_after: Option<usize>,
    /// After which chunks the connection's timer expires.
    pub timeouts: Vec<usize>,
    /// No mutation: a valid pipeline delivered whole, no timer, no early EOF.
    pub pristine: bool,
    /// The loop's `sendfile` budget for each drive (`None`: unlimited), as
    /// when other downloads share the turn.
    pub turn_budget: Option<usize>,
    /// The first `cold` probes of file pages find them on disk (a cold
    /// file: the connection steps aside and is tried again on its timer).
    pub cold: u32,
    /// Every other drive finds the turn's file budget spent by other
    /// connections (a retry timer may fire in such a turn).
    pub starve: bool,
    /// A `listen ... proxy_protocol` connection: `input` starts with the
    /// PROXY protocol header (maybe mutated).
    pub proxy: bool,
}

/// Build the case of `seed`.
pub fn generate(seed: u64, corpus: &[Vec<u8>]) -> Case {
    let mut rng = Rng::new(seed);
    let pick = |rng: &mut Rng| {
        corpus
            .get(rng.below(corpus.len()))
            .cloned()
            .unwrap_or_default()
    };
    let mut input = Vec::new();
    for _ in 0..rng.range(1, 4) {
        input.extend(pick(&mut rng));
    }
    let mutations = if rng.one_in(6) { 0 } else { rng.range(1, 5) };
    for _ in 0..mutations {
        mutate(&mut rng, &mut input, corpus);
    }
    let chunks = split(&mut rng, input.len());
    let write_limit = match rng.below(4) {
        0 => Some(rng.range(1, 64)),
        1 => Some(rng.range(1, 8192)),
        _ => None,
    };
    let eof_after = rng.one_in(4).then(|| rng.below(chunks.len() + 1));
    let mut timeouts = Vec::new();
    if rng.one_in(5) {
        for _ in 0..rng.range(1, 3) {
            timeouts.push(rng.below(chunks.len() + 1));
        }
    }
    let pristine = mutations == 0 && eof_after.is_none() && timeouts.is_empty();
    let turn_budget = rng.one_in(4).then(|| rng.range(1, 4096));
    let starve = rng.one_in(4);
    let cold = if rng.one_in(4) {
        u32::try_from(rng.range(1, 6)).unwrap_or(1)
    } else {
        0
    };
    // Drawn last, so that a case without a header is what its seed made
    // before headers existed. The header's own reads come first.
    let proxy = rng.one_in(5);
    let mut chunks = chunks;
    let mut pristine = pristine;
    if proxy {
        let mut header = PROXY_HEADERS[rng.below(PROXY_HEADERS.len())].to_vec();
        if rng.one_in(2) {
            mutate(&mut rng, &mut header, corpus);
            pristine = false;
        }
        let mut first = split(&mut rng, header.len());
        first.append(&mut chunks);
        chunks = first;
        header.append(&mut input);
        input = header;
    }
    Case {
        seed,
        input,
        chunks,
        write_limit,
        eof_after,
        timeouts,
        pristine,
        turn_budget,
        cold,
        starve,
        proxy,
    }
}

/// One random edit of `v`.
fn mutate(rng: &mut Rng, v: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let at = rng.below(v.len() + 1);
    match rng.below(9) {
        // A bit flipped.
        0 if at < v.len() => v[at] ^= 1 << rng.below(8),
        // An interesting byte inserted.
        1 => v.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
        // A few bytes deleted.
        2 if at < v.len() => {
            let end = (at + rng.range(1, 8)).min(v.len());
            v.drain(at..end);
        }
        // A line duplicated.
        3 => {
            let start = v[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let end = v[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(v.len(), |i| at + i + 1);
            let line = v[start..end].to_vec();
            v.splice(end..end, line);
        }
        // Spliced with another corpus entry.
        4 => {
            let other = &corpus[rng.below(corpus.len())];
            let from = rng.below(other.len() + 1);
            v.truncate(at);
            v.extend_from_slice(&other[from..]);
        }
        // Truncated.
        5 => v.truncate(at),
        // A number (a length, a chunk size, a range) made huge.
        6 => {
            let digits: Vec<usize> = (0..v.len()).filter(|&i| v[i].is_ascii_hexdigit()).collect();
            if let Some(&i) = digits.get(rng.below(digits.len())) {
                let mut j = i;
                while j < v.len() && v[j].is_ascii_hexdigit() {
                    j += 1;
                }
                let huge = HUGE[rng.below(HUGE.len())];
                v.splice(i..j, huge.iter().copied());
            }
        }
        // A random byte written.
        7 if at < v.len() => v[at] = rng.next_u64() as u8,
        // A header that changes framing or the connection inserted after a line end.
        _ => {
            const FIELDS: &[&[u8]] = &[
                b"Content-Length: 3\r\n",
                b"Transfer-Encoding: chunked\r\n",
                b"Connection: close\r\n",
                b"Expect: 100-continue\r\n",
                b"Range: bytes=0-1,5-9\r\n",
                b"Host: other.test\r\n",
            ];
            if let Some(i) = v[..at].iter().rposition(|&b| b == b'\n') {
                let f = FIELDS[rng.below(FIELDS.len())];
                v.splice(i + 1..i + 1, f.iter().copied());
            }
        }
    }
}

/// Read chunk sizes covering `len` bytes.
fn split(rng: &mut Rng, len: usize) -> Vec<usize> {
    let most = match rng.below(4) {
        0 => len.max(1),
        1 => 1,
        2 => rng.range(2, 20),
        _ => rng.range(20, 5000),
    };
    let mut chunks = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = rng.range(1, most).min(left);
        chunks.push(n);
        left -= n;
    }
    chunks
}

/// Most `drive` calls one case may take before it counts as a spin.
const MAX_DRIVES: usize = 200_000;

/// How a connection was left after driving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Left {
    Waiting,
    Closed,
}

/// Run `case` in `world`; `Err` says which invariant broke.
pub fn run_case(world: &mut World, case: &Case) -> Result<Vec<u16>, String> {
    world.reset().map_err(|e| format!("reset: {e}"))?;
    world.turn_budget = case.turn_budget.unwrap_or(usize::MAX);
    world.starve = case.starve;
    world.turns = 0;
    let mut c = Conn::new(
        MemTransport::default(),
        0,
        std::net::SocketAddr::from(([127, 0, 0, 1], 40000)),
        world.lent.now + 2_000,
    );
    c.writable = true;
    if case.proxy {
        c.await_proxy_header();
    }
    c.io.write_limit = case.write_limit;
    c.io.cold = case.cold;
    let mut drives = 0;
    let mut cut_short = false;
    let mut left = Left::Waiting;
    let mut pos = 0;
    for i in 0..=case.chunks.len() {
        if case.eof_after == Some(i) {
            c.io.eof = true;
            c.peer_hup = true;
            c.readable = true;
        }
        for _ in case.timeouts.iter().filter(|&&t| t == i) {
            world.lent.now = world.lent.now.max(c.deadline);
            cut_short |= !matches!(c.state(), State::Idle | State::Head | State::Proxy);
            if c.on_timeout(&mut world.env()) == Drive::Close {
                left = Left::Closed;
                break;
            }
            left = settle(world, &mut c, &mut drives)?;
            if left == Left::Closed {
                break;
            }
        }
        if left == Left::Closed {
            break;
        }
        if let Some(&n) = case.chunks.get(i) {
            c.io.feed(&case.input[pos..pos + n]);
            pos += n;
            c.readable = true;
        }
        left = settle(world, &mut c, &mut drives)?;
        if left == Left::Closed {
            break;
        }
    }
    if left == Left::Waiting {
        // The client goes away: everything must come to an end.
        c.io.eof = true;
        c.peer_hup = true;
        c.readable = true;
        left = settle(world, &mut c, &mut drives)?;
    }
    for _ in 0..3 {
        if left == Left::Closed {
            break;
        }
        // Only time is left to end it (a body or lingering read that waits).
        world.lent.now = world.lent.now.max(c.deadline);
        cut_short |= !matches!(
            c.state(),
            State::Idle | State::Head | State::Linger | State::Proxy
        );
        left = match c.on_timeout(&mut world.env()) {
            Drive::Close => Left::Closed,
            _ => settle(world, &mut c, &mut drives)?,
        };
    }
    if left != Left::Closed {
        return Err(format!(
            "still open in {:?} after EOF and timeouts",
            c.state()
        ));
    }
    if c.holds_buffers() {
        return Err("a closed connection holds a buffer".into());
    }
    let output = std::mem::take(&mut c.io.output);
    drop(c);
    if world.lent.shared.pool.out != 0 {
        return Err(format!(
            "{} buffer(s) never went back to the pool",
            world.lent.shared.pool.out
        ));
    }
    check_files(world)?;
    // Not one byte answers a connection whose header is not whole and valid.
    if case.proxy
        && !matches!(
            crate::http::proxy_protocol::parse(&case.input),
            crate::http::proxy_protocol::Header::Complete(..)
        )
        && !output.is_empty()
    {
        return Err(format!(
            "answered without a valid PROXY header: {}",
            escape(output.get(..output.len().min(200)).unwrap_or(&[]))
        ));
    }
    let head_possible = memchr::memmem::find(&case.input, b"HEAD").is_some();
    let statuses = check_output(&output, head_possible, cut_short).map_err(|e| {
        let shown = output.get(..output.len().min(600)).unwrap_or(&[]);
        format!("{e}\n  output ({} bytes): {}", output.len(), escape(shown))
    })?;
    if case.pristine
        && let Some(s) = statuses.iter().find(|&&s| s == 400 || s >= 500)
    {
        return Err(format!("a valid pipeline got a {s}"));
    }
    Ok(statuses)
}

/// Drive until the connection waits with nothing left to do, or closes.
/// The client reads everything at once: after a short write the socket is
/// writable again; a new read edge comes while input is queued.
fn settle(
    world: &mut World,
    c: &mut Conn<MemTransport>,
    drives: &mut usize,
) -> Result<Left, String> {
    let mut quiet = 0;
    loop {
        *drives += 1;
        if *drives > MAX_DRIVES {
            return Err(format!(
                "never settled: {MAX_DRIVES} drives, state {:?}",
                c.state()
            ));
        }
        let before = (c.io.output.len(), c.state(), c.io.input.len(), c.deadline);
        match c.drive(&mut world.env()) {
            Drive::Close => return Ok(Left::Closed),
            Drive::Again => continue,
            Drive::Wait => {}
        }
        if c.waits_for_disk() {
            // Waiting for the disk is waiting for the next try, never for a
            // timeout.
            if c.deadline > world.lent.now + RETRY_MAX_MS {
                return Err(format!(
                    "waits for its pages until {} at {}",
                    c.deadline, world.lent.now
                ));
            }
            // The loop's timer: at the deadline the pages are looked at again.
            world.lent.now = world.lent.now.max(c.deadline);
            match c.on_timeout(&mut world.env()) {
                Drive::Close => return Ok(Left::Closed),
                _ => continue,
            }
        }
        if c.is_idle() && c.holds_buffers() {
            return Err(format!("idle in {:?} but holding a buffer", c.state()));
        }
        let after = (c.io.output.len(), c.state(), c.io.input.len(), c.deadline);
        quiet = if before == after { quiet + 1 } else { 0 };
        if quiet >= 2 {
            return Ok(Left::Waiting);
        }
        c.writable = true;
        if !c.io.input.is_empty() || c.io.eof {
            c.readable = true;
        }
    }
}

/// The site's files are as written, and the upload store holds files only.
fn check_files(world: &World) -> Result<(), String> {
    let site = tree(&world.dir.join("www")).map_err(|e| format!("site: {e}"))?;
    if site != world.site {
        return Err(format!("the site changed: {site:?}"));
    }
    let top = tree(&world.dir).map_err(|e| format!("world: {e}"))?;
    for (path, _) in &top {
        let rel = path.strip_prefix(&world.dir).unwrap_or(path);
        let mut parts = rel.components();
        let first = parts
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        let depth = rel.components().count();
        match first.as_deref() {
            Some("www") => {}
            Some("up") if depth <= 2 => {
                let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
                if depth == 2 && name.as_deref().is_some_and(|n| n.starts_with('.')) {
                    return Err(format!("a temporary upload was left: {}", rel.display()));
                }
            }
            _ => {
                return Err(format!(
                    "written outside the site and store: {}",
                    rel.display()
                ));
            }
        }
    }
    Ok(())
}

/// Check that `out` is a sequence of well-framed HTTP/1.1 responses and
/// return their statuses. `head_possible`: a response may be to a HEAD
/// (no body whatever its length says); `cut_short`: the last response may
/// be incomplete (the connection timed out while sending it).
pub fn check_output(out: &[u8], head_possible: bool, cut_short: bool) -> Result<Vec<u16>, String> {
    let mut budget = 10_000;
    let mut statuses = Vec::new();
    parse_from(out, 0, head_possible, cut_short, &mut statuses, &mut budget)?;
    Ok(statuses)
}

/// One response head, parsed.
struct Head {
    status: u16,
    close: bool,
    length: Option<u64>,
    chunked: bool,
    end: usize,
}

fn parse_from(
    out: &[u8],
    pos: usize,
    head_possible: bool,
    cut_short: bool,
    statuses: &mut Vec<u16>,
    budget: &mut usize,
) -> Result<(), String> {
    if pos == out.len() {
        return Ok(());
    }
    *budget = budget.saturating_sub(1);
    if *budget == 0 {
        return Ok(());
    }
    let rest = &out[pos..];
    let Some(end) = memchr::memmem::find(rest, b"\r\n\r\n") else {
        return if cut_short {
            Ok(())
        } else {
            Err(format!("incomplete response head at byte {pos}"))
        };
    };
    let head = parse_head(&rest[..end + 2]).map_err(|e| format!("at byte {pos}: {e}"))?;
    let body_at = pos + end + 4;
    let head = Head {
        end: body_at,
        ..head
    };
    let mut lengths: Vec<Option<u64>> = Vec::new();
    if (100..200).contains(&head.status) {
        if head.close || head.length.is_some() {
            return Err(format!("at byte {pos}: a 1xx with framing or close"));
        }
        statuses.push(head.status);
        return parse_from(out, head.end, head_possible, cut_short, statuses, budget);
    }
    if head.status == 204 || head.status == 304 {
        lengths.push(Some(0));
    } else if head.chunked {
        lengths.push(chunked_len(&out[head.end..]));
        if head_possible {
            lengths.push(Some(0));
        }
    } else if let Some(n) = head.length {
        lengths.push(Some(n));
        if head_possible && n > 0 {
            lengths.push(Some(0));
        }
    } else if head.close {
        // Delimited by the close: the rest is the body.
        statuses.push(head.status);
        return Ok(());
    } else {
        return Err(format!("at byte {pos}: no length, no chunking, no close"));
    }
    let mut first_err = None;
    for len in lengths {
        let Some(len) = len else {
            if cut_short {
                statuses.push(head.status);
                return Ok(());
            }
            first_err.get_or_insert_with(|| format!("at byte {pos}: bad chunked body"));
            continue;
        };
        let next = usize::try_from(len)
            .ok()
            .and_then(|l| head.end.checked_add(l));
        let Some(next) = next.filter(|&n| n <= out.len()) else {
            if cut_short {
                statuses.push(head.status);
                return Ok(());
            }
            first_err.get_or_insert_with(|| {
                format!(
                    "at byte {pos}: body of {len} bytes, {} sent",
                    out.len() - head.end
                )
            });
            continue;
        };
        if head.close && next < out.len() {
            first_err.get_or_insert_with(|| {
                format!("at byte {next}: a response after one that said Connection: close")
            });
            continue;
        }
        let mark = statuses.len();
        statuses.push(head.status);
        match parse_from(out, next, head_possible, cut_short, statuses, budget) {
            Ok(()) => return Ok(()),
            Err(e) => {
                statuses.truncate(mark);
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_default())
}

/// The length of a chunked body at the start of `b`, or `None` when it is
/// malformed or incomplete.
fn chunked_len(b: &[u8]) -> Option<u64> {
    let mut pos = 0;
    loop {
        let line_end = pos + memchr::memmem::find(b.get(pos..)?, b"\r\n")?;
        let line = b.get(pos..line_end)?;
        let hex = line.split(|&c| c == b';').next()?;
        let size = u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let e = pos + memchr::memmem::find(b.get(pos..)?, b"\r\n")?;
                let empty = e == pos;
                pos = e + 2;
                if empty {
                    return Some(pos as u64);
                }
            }
        }
        pos = pos.checked_add(usize::try_from(size).ok()?)?;
        if b.get(pos..pos + 2)? != b"\r\n" {
            return None;
        }
        pos += 2;
    }
}

/// Parse a response head: its lines, each with its CRLF, without the
/// blank line.
fn parse_head(head: &[u8]) -> Result<Head, String> {
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    let mut lines = head.split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status_line = status_line
        .strip_suffix(b"\r")
        .ok_or("status line without CRLF")?;
    let status = match status_line {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            b'1',
            b' ',
            d1,
            d2,
            d3,
            b' ',
            reason @ ..,
        ] if [d1, d2, d3].iter().all(|d| d.is_ascii_digit())
            && reason
                .iter()
                .all(|&b| b == b'\t' || (b' '..0x7f).contains(&b)) =>
        {
            u16::from(d1 - b'0') * 100 + u16::from(d2 - b'0') * 10 + u16::from(d3 - b'0')
        }
        _ => {
            return Err(format!(
                "bad status line {}",
                escape(&status_line[..status_line.len().min(80)])
            ));
        }
    };
    if !(100..600).contains(&status) {
        return Err(format!("status {status} out of range"));
    }
    let mut h = Head {
        status,
        close: false,
        length: None,
        chunked: false,
        end: 0,
    };
    let (mut date, mut server) = (false, false);
    for line in lines {
        let line = line.strip_suffix(b"\r").ok_or("header line without CRLF")?;
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| format!("header line without a colon: {}", escape(line)))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| crate::http::bytes::is_tchar(b)) {
            return Err(format!("bad header name {}", escape(name)));
        }
        if value
            .iter()
            .any(|&b| b == b'\r' || b == b'\0' || b == b'\n')
        {
            return Err(format!("bad header value {}", escape(value)));
        }
        let value = value.trim_ascii();
        let name = name.to_ascii_lowercase();
        match name.as_slice() {
            b"content-length" => {
                if h.length.is_some() {
                    return Err("two Content-Length fields".into());
                }
                let n = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| format!("bad Content-Length {}", escape(value)))?;
                h.length = Some(n);
            }
            b"transfer-encoding" => {
                if !value.eq_ignore_ascii_case(b"chunked") {
                    return Err(format!("Transfer-Encoding {}", escape(value)));
                }
                h.chunked = true;
            }
            b"connection" => h.close |= value.eq_ignore_ascii_case(b"close"),
            b"date" => date = true,
            b"server" => server = true,
            _ => {}
        }
    }
    if h.chunked && h.length.is_some() {
        return Err("both Content-Length and chunked".into());
    }
    if status >= 200 && !(date && server) {
        return Err(format!("a {status} without Date or Server"));
    }
    Ok(h)
}

/// `bytes` as a Rust byte string literal.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::from("b\"");
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..0x7f => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    pub seed: u64,
    pub cases: u64,
    pub elapsed: Duration,
    /// Responses seen by class: 1xx to 5xx at 1 to 5, cases that got no
    /// response at all at 0 (how deep the cases reach).
    pub classes: [u64; 6],
    /// The first failure: the case and what broke (a panic's message).
    pub failure: Option<(Case, String)>,
}

/// Run cases from `seed` in a world under `dir` until `time` has passed,
/// `max_cases` have run, or one fails. Case `k` is built from the `k`th
/// xorshift of `seed` (case 0 from `seed` itself), so the seed a failure
/// prints reproduces it as the first case of a new run.
pub fn run(seed: u64, time: Duration, max_cases: u64, dir: &Path) -> io::Result<Summary> {
    let corpus = corpus();
    let mut world = World::new(dir)?;
    let start = Instant::now();
    let mut case_seed = if seed == 0 { 1 } else { seed };
    let mut cases = 0;
    let mut failure = None;
    let mut classes = [0; 6];
    while cases < max_cases && (cases == 0 || start.elapsed() < time) {
        let case = generate(case_seed, &corpus);
        let result = catch_unwind(AssertUnwindSafe(|| run_case(&mut world, &case)));
        cases += 1;
        let broke = match result {
            Ok(Ok(statuses)) => {
                if statuses.is_empty() {
                    classes[0] += 1;
                }
                for s in statuses {
                    classes[usize::from(s / 100).min(5)] += 1;
                }
                None
            }
            Ok(Err(e)) => Some(e),
            Err(p) => Some(format!(
                "panic: {}",
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            )),
        };
        if let Some(e) = broke {
            failure = Some((case, e));
            // A panic may leave the world half-changed: stop here.
            break;
        }
        crate::testkit::xorshift(&mut case_seed);
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(Summary {
        seed,
        cases,
        elapsed: start.elapsed(),
        classes,
        failure,
    })
}

/// A failure as a report: the seed to reproduce it and the case's bytes.
pub fn describe(case: &Case, what: &str) -> String {
    format!(
        "{what}\n  reproduce: LOCALSERVER_FUZZ_SEED={} cargo test --test fuzz\n  input: {}\n  \
         chunks: {:?}\n  write_limit: {:?}, eof after chunk {:?}, timeouts after chunks {:?}, \
         sendfile budget per drive {:?}, cold probes {}, starved every other drive: {}, \
         PROXY header first: {}",
        case.seed,
        escape(&case.input),
        case.chunks,
        case.write_limit,
        case.eof_after,
        case.timeouts,
        case.turn_budget,
        case.cold,
        case.starve,
        case.proxy
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_checker_knows_good_from_bad() {
        let ok = b"HTTP/1.1 200 OK\r\nDate: x\r\nServer: y\r\nContent-Length: 2\r\n\r\nhi\
                   HTTP/1.1 304 Not Modified\r\nDate: x\r\nServer: y\r\nContent-Length: 9\r\n\r\n\
                   HTTP/1.1 200 OK\r\nDate: x\r\nServer: y\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
        assert_eq!(check_output(ok, false, false), Ok(vec![200, 304, 200]));
        let head = b"HTTP/1.1 200 OK\r\nDate: x\r\nServer: y\r\nContent-Length: 2\r\n\r\n\
                     HTTP/1.1 404 Not Found\r\nDate: x\r\nServer: y\r\nContent-Length: 0\r\n\r\n";
        assert!(check_output(head, false, false).is_err());
        assert_eq!(check_output(head, true, false), Ok(vec![200, 404]));
        let after_close = b"HTTP/1.1 400 Bad Request\r\nDate: x\r\nServer: y\r\nContent-Length: 0\r\nConnection: close\r\n\r\n\
                            HTTP/1.1 200 OK\r\nDate: x\r\nServer: y\r\nContent-Length: 0\r\n\r\n";
        assert!(check_output(after_close, false, false).is_err());
        let short = b"HTTP/1.1 200 OK\r\nDate: x\r\nServer: y\r\nContent-Length: 5\r\n\r\nhi";
        assert!(check_output(short, false, false).is_err());
        assert!(check_output(short, false, true).is_ok());
        assert!(check_output(b"HTTP/1.1 20 OK\r\n\r\n", false, false).is_err());
        assert_eq!(escape(b"a\r\n\0\"\\"), "b\"a\\r\\n\\x00\\\"\\\\\"");
    }

    /// The client a complete header names.
    fn whole_client(h: crate::http::proxy_protocol::Header) -> Option<std::net::SocketAddr> {
        match h {
            crate::http::proxy_protocol::Header::Complete(_, c) => c,
            _ => None,
        }
    }

    #[test]
    fn the_corpus_is_served_without_complaint() {
        let dir = std::env::temp_dir().join(format!("ls-fuzz-unit-{}", std::process::id()));
        let mut world = World::new(&dir).unwrap();
        // Warm, then with the first pages of each case on disk; then
        // after each PROXY header.
        for h in PROXY_HEADERS {
            let whole = crate::http::proxy_protocol::parse(h);
            assert_eq!(
                whole,
                crate::http::proxy_protocol::Header::Complete(h.len(), whole_client(whole)),
                "{}",
                escape(h)
            );
        }
        let mut runs: Vec<(u32, &[u8])> = vec![(0, b""), (3, b"")];
        runs.extend(PROXY_HEADERS.iter().map(|h| (0, *h)));
        for (cold, header) in runs {
            for (i, input) in corpus().into_iter().enumerate() {
                let input = [header, &input].concat();
                let case = Case {
                    seed: i as u64,
                    chunks: vec![input.len()],
                    input,
                    write_limit: None,
                    eof_after: None,
                    timeouts: Vec::new(),
                    pristine: true,
                    turn_budget: None,
                    cold,
                    starve: false,
                    proxy: !header.is_empty(),
                };
                if let Err(e) = run_case(&mut world, &case) {
                    panic!("{}", describe(&case, &e));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
