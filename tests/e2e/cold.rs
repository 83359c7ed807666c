//! A cold file on a slow disk never stalls the loop (README "Cold files"):
//! the server runs in a cgroup v1 `blkio` group that throttles reads of the
//! test folder's disk to 32 MB/s, a 64 MiB file is evicted from the page
//! cache, and while one client downloads it (2 s at that speed) a fresh
//! client fetches a small file every 50 ms, and another fetches three cold
//! 4 KiB files. Before `sendfile` learned to wait for its pages, the loop
//! read the big file inside `sendfile` and most of the fresh fetches
//! waited 100-250 ms for it; before the open-file cache learned to keep a
//! small file's bytes only if they were in memory, each cold 4 KiB file
//! held everyone up while it was read.
//!
//! Needs root and `/sys/fs/cgroup/blkio`; elsewhere it says so (and fails
//! when `CI` is set). The group is removed afterwards, on failure too.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::http_features::status_numbers;

const BLKIO: &str = "/sys/fs/cgroup/blkio";
/// The throttled disk's speed. 64 MiB then takes 2.1 s: long enough for
/// forty fresh fetches, short enough for the suite.
const BPS: u64 = 32_000_000;
const FILE_LEN: usize = 64 << 20;
/// A fresh fetch slower than this counts as held up (unless the machine is
/// that slow when idle: the bound is then five times its idle p90); the
/// test fails when those fetches add up to a tenth of the download's time.
/// With the loop stalled in `sendfile`: 10 of 12 fetches, 1.6 s in all
/// (median 201 ms); with cold small files read on the loop: 3 of 22, 1.1 s
/// in all; as it is: none of 43-46 (median 0.5 ms, slowest 3-8 ms).
const SLOW: Duration = Duration::from_millis(50);

/// A blkio cgroup, removed on drop (its tasks moved back to the root
/// group first, should any be left).
struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    fn create(name: &str) -> std::io::Result<Cgroup> {
        let path = Path::new(BLKIO).join(name);
        fs::create_dir(&path)?;
        Ok(Cgroup { path })
    }

    fn set(&self, file: &str, value: &str) -> std::io::Result<()> {
        fs::write(self.path.join(file), value)
    }

    fn add(&self, pid: u32) {
        fs::write(self.path.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let procs = fs::read_to_string(self.path.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let _ = fs::write(Path::new(BLKIO).join("cgroup.procs"), pid);
        }
        // A task that just left may take a moment to be gone from the group.
        for _ in 0..50 {
            if fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("could not remove the cgroup {}", self.path.display());
    }
}

/// A folder removed on drop (for the cold file when the test folder is on
/// tmpfs, whose pages are never on disk).
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `MAJ:MIN` of the disk holding `dir` (the whole disk for a partition,
/// which blk-throttle refuses), or why there is none.
fn disk_of(dir: &Path) -> Result<String, String> {
    let dev = fs::metadata(dir).map_err(|e| e.to_string())?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if major == 0 || !sys.exists() {
        return Err(format!(
            "{} is on no block device ({major}:{minor}: tmpfs, overlay?)",
            dir.display()
        ));
    }
    let disk = if sys.join("partition").exists() {
        sys.join("..")
    } else {
        sys
    };
    let dev = fs::read_to_string(disk.join("dev")).map_err(|e| e.to_string())?;
    Ok(dev.trim().to_string())
}

/// Where the cold file can live: the test folder if it is on a disk, else
/// a folder under /var/tmp (usually on one when /tmp is tmpfs).
fn disk_folder(dir: &TempDir) -> Result<(PathBuf, Option<Folder>, String), String> {
    if let Ok(dev) = disk_of(dir.path()) {
        return Ok((dir.join("www"), None, dev));
    }
    let alt = PathBuf::from(format!("/var/tmp/localserver-cold-{}", std::process::id()));
    fs::create_dir_all(&alt).map_err(|e| e.to_string())?;
    let guard = Folder(alt.clone());
    let dev = disk_of(&alt)?;
    Ok((alt, Some(guard), dev))
}

/// Write `bytes` to `path`, flush them to the disk and drop them from the
/// page cache (`fincore` would now show 0 pages).
fn write_cold(path: &Path, bytes: &[u8]) {
    let mut f = fs::File::create(path).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    // SAFETY: posix_fadvise takes no pointers; `f` is open.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(r, 0, "posix_fadvise(DONTNEED)");
}

/// One fresh connection, one small GET: how long until the whole answer.
fn fetch_small(port: u16, want: &[u8]) -> Duration {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let elapsed = t.elapsed();
    assert!(got.starts_with(b"HTTP/1.1 200 "), "{got:?}");
    assert!(got.ends_with(want), "the small file's bytes");
    elapsed
}

/// `GET path` on a fresh connection, read to the end: the body.
fn get_body(port: u16, path: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let end = find(&got, b"\r\n\r\n").expect("a head") + 4;
    assert!(got.starts_with(b"HTTP/1.1 200 "), "{got:?}");
    got.split_off(end)
}

/// `GET path` of the big file on a fresh connection, read to the end: the body.
fn download(port: u16, path: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut got = Vec::with_capacity(FILE_LEN + 4096);
    s.read_to_end(&mut got).unwrap();
    let end = find(&got, b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8_lossy(&got[..end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {FILE_LEN}\r\n")),
        "{head}"
    );
    got.split_off(end)
}

#[test]
fn a_cold_download_on_a_slow_disk_never_holds_up_a_fresh_client() {
    const TEST: &str = "a_cold_download_on_a_slow_disk_never_holds_up_a_fresh_client";
    // SAFETY: geteuid takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return skip(TEST, "not root: cannot make a blkio cgroup");
    }
    if !Path::new(BLKIO)
        .join("blkio.throttle.read_bps_device")
        .exists()
    {
        return skip(
            TEST,
            "no cgroup v1 blkio controller at /sys/fs/cgroup/blkio",
        );
    }
    let dir = TempDir::new("cold");
    let (www, _folder, dev) = match disk_folder(&dir) {
        Ok(found) => found,
        Err(why) => return skip(TEST, &why),
    };
    fs::create_dir_all(&www).unwrap();
    let small = b"small and warm\n".repeat(40);
    fs::write(www.join("small.txt"), &small).unwrap();
    let big = XorShift::new(0x5eed_c01d).bytes(FILE_LEN);

    let name = format!("localserver-cold-{}", std::process::id());
    let cgroup = match Cgroup::create(&name) {
        Ok(c) => c,
        Err(e) => return skip(TEST, &format!("cannot create {BLKIO}/{name}: {e}")),
    };
    if let Err(e) = cgroup.set("blkio.throttle.read_bps_device", &format!("{dev} {BPS}")) {
        return skip(TEST, &format!("cannot throttle {dev}: {e}"));
    }
    let config = format!(
        "error_log $DIR/error.log info;\n\
         server {{ listen 127.0.0.1:$P0; root {};\n\
           location = /status {{ status on; }} }}\n",
        www.display()
    );
    // Declared after the cgroup, so dropped (stopped) before it is removed.
    let srv = Server::start(dir, &config);
    // The server reads no file before it is asked: moving it in now is
    // the same as starting it there.
    cgroup.add(srv.pid());
    let port = srv.port(0);

    // The fresh client's time on this machine as it is now, with nothing
    // else going on: a loaded machine moves the bound, not the verdict.
    let mut idle: Vec<Duration> = (0..20).map(|_| fetch_small(port, &small)).collect();
    idle.sort();
    let bound = SLOW.max(idle[idle.len() * 9 / 10] * 5);

    let smalls: Vec<Vec<u8>> = (0..3).map(|i| XorShift::new(77 + i).bytes(4096)).collect();
    for (i, bytes) in smalls.iter().enumerate() {
        write_cold(&www.join(format!("cold{i}.bin")), bytes);
    }
    write_cold(&www.join("big.bin"), &big);
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let done = Arc::clone(&done);
        let small = small.clone();
        thread::spawn(move || {
            let mut times = Vec::new();
            while !done.load(Ordering::Relaxed) {
                times.push(fetch_small(port, &small));
                thread::sleep(Duration::from_millis(50));
            }
            times
        })
    };
    // Cold small files, one every 400 ms from 200 ms in: each waits for
    // the disk, none may make the others wait.
    let cold_fetcher = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut got = Vec::new();
            for i in 0..3 {
                thread::sleep(Duration::from_millis(if i == 0 { 200 } else { 400 }));
                if done.load(Ordering::Relaxed) {
                    break;
                }
                got.push(get_body(port, &format!("/cold{i}.bin")));
            }
            got
        })
    };
    let t = Instant::now();
    let body = download(port, "/big.bin");
    let took = t.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut times = prober.join().unwrap();
    times.sort();
    let colds = cold_fetcher.join().unwrap();

    assert!(body == big, "the download differs from the file");
    assert_eq!(
        colds.len(),
        3,
        "the cold small files came after the download"
    );
    assert!(colds == smalls, "a cold small file differs");
    // The throttle held (else nothing here was tested): 64 MiB at 32 MB/s
    // is 2.1 s; and the download still ran at about the disk's speed.
    let disk_time = Duration::from_secs_f64(FILE_LEN as f64 / BPS as f64);
    assert!(
        took > disk_time * 7 / 10,
        "64 MiB in {took:?}: the disk was not throttled"
    );
    assert!(
        took < disk_time * 2,
        "64 MiB in {took:?}: the disk can do it in {disk_time:?}"
    );
    // A stall shows as one slow fetch however long it lasts (the fetcher
    // waits in it): what counts is the time spent in slow fetches.
    let slow: Vec<Duration> = times.iter().copied().filter(|&d| d > bound).collect();
    let held: Duration = slow.iter().sum();
    let show = format!(
        "{} fetches during the {took:?} download, {} over {bound:?} ({held:?} in all); \
         median {:?}, slowest {:?}; idle median {:?}",
        times.len(),
        slow.len(),
        times[times.len() / 2],
        times[times.len() - 1],
        idle[idle.len() / 2]
    );
    assert!(held < took / 10, "{show}");
    assert!(times.len() >= 15, "{show}");

    // The wait was counted and said.
    let status = status_page(port);
    assert!(status[7] > 0, "no deferred read counted: {status:?}");
    let log = fs::read_to_string(srv.dir.join("error.log")).unwrap();
    let said = log
        .lines()
        .filter(|l| l.contains("[info]") && l.contains("file read deferred"))
        .count();
    // One line per body that waited: the big file's, and the cold small
    // files' (each waits, unless its page came in with another's).
    assert!((2..=4).contains(&said), "{said} lines:\n{log}");
}

/// The numbers of the status page.
fn status_page(port: u16) -> [u64; 8] {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let end = find(&got, b"\r\n\r\n").expect("a head") + 4;
    status_numbers(&String::from_utf8_lossy(&got[end..]))
}
