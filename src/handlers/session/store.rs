//! The server-side session store (CONFIG.md "Sessions and cookies",
//! `session_timeout`, `session_store`, `session_max`).
//!
//! Ids. A session id (`Sid`) is 128 random bits (its `Id`, from
//! `getrandom`) and the second it was issued, signed with HMAC-SHA256 under
//! a key kept in the store (`sid.key`, 32 random bytes, mode 0600, made once
//! by whichever process needs it first) and the scope of the `server` block
//! that issued it. The cookie value is 72 lowercase hex digits: the id (32),
//! the issue time (8), the first 128 bits of the MAC (32). Only that exact
//! spelling with a MAC that checks out under this server's scope names a
//! session: a forged, garbled or other server's id is unknown, found without
//! touching the disk.
//!
//! Cost. Issuing a session writes nothing and keeps nothing: the id proves
//! itself. A session gets a file only when a value is stored in it, and
//! loses it when its last value is removed. A session without a file lives
//! until `issued + timeout`; one with a file until `last_used + timeout`.
//! So a flood of cookie-less requests costs a `getrandom` and a MAC each,
//! and nothing on disk or in memory.
//!
//! Time. Every method takes `now` (unix seconds), so the clock is injected
//! and the tests control it.
//!
//! Files. One file per stored session in the store directory (created 0700
//! if missing), named by the hex id, mode 0600, at most 1 MiB (larger files
//! are not sessions). It is always replaced whole: written to
//! `.<hex>.<pid>.tmp`, then renamed over `<hex>`, so a reader (this process
//! after a restart, or another worker) sees the old or the new file, never a
//! mix. There is no fsync: after a power cut a session may be lost, which
//! costs a log-in, not a corrupt store. The format:
//!
//! ```text
//! localserver-session 1
//! last_used 1700000000
//! key=value
//! ```
//!
//! one `key=value` line per value in key order, with `%`, LF, CR and `=`
//! written as `%25`, `%0A`, `%0D`, `%3D` in keys and values. A file whose
//! third line is `revoked` is a tombstone: the id was destroyed or rotated
//! away and stays unknown until it would have expired. A file that does not
//! parse is not the server's and is left alone (neither used nor removed),
//! as is every name in the directory that is not a 32-digit id, the key, the
//! counter or one of our temporaries.
//!
//! Writes. Storing or removing a value writes the file at once
//! (write-through), so a restart or another worker sees it. A use only moves
//! `last_used` in memory; it reaches the file when it is `timeout / 4` ahead
//! of the file's copy, on a value change, when the session leaves the memory
//! cache, and at `flush`. After a crash (no `flush`) a session may expire up
//! to `timeout / 4` early.
//!
//! Sharing. Before a cached session is used, its file is `stat`ed: if the
//! file is gone (its values removed, or it expired, by another worker) the
//! session has no values; if its inode, size or mtime changed since this
//! process read or wrote it, it is read again. Writes are last-writer-wins:
//! two workers changing one session in the same instant can lose one change.
//!
//! Bounds. Stored sessions: at most `max_stored` (`session_max`) over every
//! process sharing the directory, counted in `stored.count`, a shared
//! mapping (`sys::shared`), recounted by each process when it opens the
//! store. When it is full, storing a first value in a session is refused
//! (`SetError::Full`); no live stored session is ever evicted to make room.
//! Tombstones: at most `max_stored` per process (past that an id that was
//! destroyed is simply forgotten; it holds no values either way). Memory: at
//! most `max_memory` stored sessions cached, the least recently used leaving
//! the cache first (their files stay). The directory is scanned once, at
//! `open`, to index the files (expired ones are removed then).
//!
//! Errors. Nothing here panics. A failing disk makes `set` fail (the
//! server then answers without storing); a failed background write
//! (`last_used` only) is retried at the next use.

#![deny(clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrayvec::ArrayString;

use super::hmac::{Hmac, equal_ct};
use crate::http::bytes::hex_val;
use crate::sys::random_bytes;
use crate::sys::shared::SharedCounter;

/// Longest key, in bytes; keys are `[A-Za-z0-9_]{1,64}`.
pub const MAX_KEY_LEN: usize = 64;
/// Longest value, in bytes of UTF-8.
pub const MAX_VALUE_LEN: usize = 4096;
/// Most values one session holds.
pub const MAX_KEYS: usize = 64;
/// Largest session file read; a bigger one is not a session. The largest
/// valid file (64 keys of 64 bytes, 64 values of 4096 bytes all escaped to 3
/// bytes) is about 790 KiB.
pub const MAX_FILE_LEN: u64 = 1 << 20;
/// Default bound on sessions cached in memory (lowered to `session_max`
/// when that is smaller).
pub const DEFAULT_MAX_MEMORY: usize = 10_000;
/// Most expired files one `sweep` removes, so that a flood expiring all at
/// once is cleared over several loop turns instead of stalling one.
pub const SWEEP_BATCH: usize = 1024;
/// Length of a session cookie value: id, issue time, MAC, in hex.
pub const SID_HEX_LEN: usize = 2 * (16 + 4 + MAC_LEN);
/// The key file, in the store.
pub const KEY_FILE: &str = "sid.key";
/// The shared count of stored sessions, in the store.
pub const COUNT_FILE: &str = "stored.count";

/// Bytes of the MAC kept in the id.
const MAC_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// First line of every session file: the format and its version.
const MAGIC: &[u8] = b"localserver-session 1";
/// Third line of a tombstone.
const REVOKED: &[u8] = b"revoked";
/// What the MAC covers before the scope: the purpose and version.
const MAC_DOMAIN: &[u8] = b"localserver SID 1\0";
/// A temporary file this old is left over from a crash between write and
/// rename (a live one exists for microseconds) and is removed at `open`.
const STALE_TMP: Duration = Duration::from_secs(60);

/// The random part of a session id: its file name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id([u8; 16]);

impl Id {
    /// 32 lowercase hex digits: the file name.
    fn to_hex(self) -> ArrayString<32> {
        let mut out = ArrayString::new();
        push_hex(&mut out, &self.0);
        out
    }

    /// Exactly 32 lowercase hex digits, else `None`.
    fn parse_hex(s: &[u8]) -> Option<Id> {
        let mut b = [0u8; 16];
        parse_hex_into(s, &mut b).then_some(Id(b))
    }
}

/// A session: its id and when it was issued. What a request carries from
/// `get`/`issue` to its answer; the cookie value is made by
/// `SessionStore::cookie`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sid {
    id: Id,
    issued: u32,
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({} @{})", self.id.to_hex(), self.issued)
    }
}

fn push_hex<const N: usize>(out: &mut ArrayString<N>, bytes: &[u8]) {
    for &b in bytes {
        for n in [b >> 4, b & 0x0F] {
            let _ = out.try_push(char::from(hex_digit(n)));
        }
    }
}

/// Parses `2 * out.len()` lowercase hex digits into `out`.
fn parse_hex_into(s: &[u8], out: &mut [u8]) -> bool {
    if s.len() != 2 * out.len() {
        return false;
    }
    for (dst, digits) in out.iter_mut().zip(s.chunks_exact(2)) {
        let &[hi, lo] = digits else { return false };
        let (Some(hi), Some(lo)) = (lower_hex_val(hi), lower_hex_val(lo)) else {
            return false;
        };
        *dst = (hi << 4) | lo;
    }
    true
}

fn hex_digit(n: u8) -> u8 {
    match n {
        0..=9 => b'0' + n,
        _ => b'a' + (n & 0x0F) - 10,
    }
}

/// One id has one spelling: uppercase digits are not accepted.
fn lower_hex_val(b: u8) -> Option<u8> {
    if b.is_ascii_uppercase() {
        None
    } else {
        hex_val(b)
    }
}

/// `[A-Za-z0-9_]{1,64}`.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// UTF-8 (guaranteed by `&str`) without NUL, at most 4096 bytes. The empty
/// value is valid: setting it removes the key.
pub fn valid_value(value: &str) -> bool {
    value.len() <= MAX_VALUE_LEN && !value.contains('\0')
}

/// Why a value was not stored.
#[derive(Debug, PartialEq, Eq)]
pub enum SetError {
    /// Invalid key or value, too many keys, or a destroyed session.
    Invalid,
    /// `session_max` stored sessions exist: a new one is refused.
    Full,
    /// The disk refused the write.
    Io,
}

/// What identifies one version of a session file without reading it. Every
/// write is a new inode renamed into place, so a change by another worker
/// shows as a new inode, size or mtime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            ino: m.ino(),
            len: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }
}

/// The contents of a session file.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    last_used: i64,
    /// A tombstone (then `values` is empty).
    revoked: bool,
    values: BTreeMap<String, String>,
}

/// Appends `s` with `%`, LF, CR and `=` percent-escaped.
fn escape_into(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            b'\n' => out.extend_from_slice(b"%0A"),
            b'\r' => out.extend_from_slice(b"%0D"),
            b'=' => out.extend_from_slice(b"%3D"),
            _ => out.push(b),
        }
    }
}

/// The inverse of `escape_into`; `None` on a bad escape, a raw CR or
/// invalid UTF-8.
fn unescape(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = s.iter();
    while let Some(&b) = i.next() {
        match b {
            b'%' => {
                let hi = hex_val(*i.next()?)?;
                let lo = hex_val(*i.next()?)?;
                out.push((hi << 4) | lo);
            }
            b'\r' => return None,
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

fn encode(last_used: i64, revoked: bool, values: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + values.len() * 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(format!("\nlast_used {last_used}\n").as_bytes());
    if revoked {
        out.extend_from_slice(REVOKED);
        out.push(b'\n');
        return out;
    }
    for (k, v) in values {
        escape_into(&mut out, k);
        out.push(b'=');
        escape_into(&mut out, v);
        out.push(b'\n');
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Record> {
    // Every line ends in LF, the last one included.
    let body = bytes.strip_suffix(b"\n")?;
    let mut lines = body.split(|&b| b == b'\n').peekable();
    if lines.next()? != MAGIC {
        return None;
    }
    let t = lines.next()?.strip_prefix(b"last_used ")?;
    let last_used = std::str::from_utf8(t).ok()?.parse::<i64>().ok()?;
    if lines.peek() == Some(&REVOKED) {
        lines.next();
        return lines.next().is_none().then(|| Record {
            last_used,
            revoked: true,
            values: BTreeMap::new(),
        });
    }
    let mut values = BTreeMap::new();
    for line in lines {
        let eq = memchr::memchr(b'=', line)?;
        let key = unescape(line.get(..eq)?)?;
        let value = unescape(line.get(eq + 1..)?)?;
        // A stored value is never empty: setting "" removes the key.
        if !valid_key(&key) || value.is_empty() || !valid_value(&value) || values.len() >= MAX_KEYS
        {
            return None;
        }
        if values.insert(key, value).is_some() {
            return None;
        }
    }
    Some(Record {
        last_used,
        revoked: false,
        values,
    })
}

/// Reads and parses a session file. `Ok(None)`: it exists but is not a
/// session file (too big, not a regular file, not in our format).
fn read_record(path: &Path) -> io::Result<Option<(Record, Stamp)>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    // The stamp and the bytes come from the same open file, so they match
    // even if another worker renames a new version into place meanwhile.
    let meta = f.metadata()?;
    if !meta.is_file() || meta.len() > MAX_FILE_LEN {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // `take` bounds the read even if the file grew after `metadata`.
    f.take(MAX_FILE_LEN + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE_LEN {
        return Ok(None);
    }
    Ok(decode(&buf).map(|r| (r, Stamp::of(&meta))))
}

/// Replaces the file of `id` in `dir` whole (temporary + rename) and returns
/// the stamp of the new file.
fn write_record(
    dir: &Path,
    id: Id,
    last_used: i64,
    revoked: bool,
    values: &BTreeMap<String, String>,
) -> io::Result<Stamp> {
    let hex = id.to_hex();
    let tmp = dir.join(format!(".{hex}.{}.tmp", std::process::id()));
    let bytes = encode(last_used, revoked, values);
    let attempt = || -> io::Result<Stamp> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        let meta = f.metadata()?;
        drop(f);
        // rename(2) keeps the inode and its mtime: the stamp taken above is
        // the one a later stat of `<hex>` sees.
        fs::rename(&tmp, dir.join(hex.as_str()))?;
        Ok(Stamp::of(&meta))
    };
    let mut r = attempt();
    if matches!(&r, Err(e) if is_gone(e)) {
        // The directory was removed under us: make it again, once.
        create_dir(dir)?;
        r = attempt();
    }
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// An error that says the file is not there (the directory included).
fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn create_dir(dir: &Path) -> io::Result<()> {
    // Sessions hold user data: the directory is private to the server user.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// One of our temporaries: `.<32 hex>.<pid>.tmp` (a session file) or
/// `.sid.key.<pid>.tmp` (the key).
fn is_tmp_name(name: &[u8]) -> bool {
    let Some(mid) = name
        .strip_prefix(b".")
        .and_then(|n| n.strip_suffix(b".tmp"))
    else {
        return false;
    };
    let Some(dot) = memchr::memrchr(b'.', mid) else {
        return false;
    };
    let (stem, pid) = (
        mid.get(..dot).unwrap_or(b""),
        mid.get(dot + 1..).unwrap_or(b""),
    );
    !pid.is_empty()
        && pid.iter().all(u8::is_ascii_digit)
        && (Id::parse_hex(stem).is_some() || stem == KEY_FILE.as_bytes())
}

/// The store's MAC key: read from `dir/sid.key`, or made there (32 random
/// bytes, 0600) when missing. Two processes making it at once agree: the
/// file is linked into place only if absent, and both read what won.
fn load_key(dir: &Path) -> io::Result<[u8; KEY_LEN]> {
    let path = dir.join(KEY_FILE);
    let read = || -> io::Result<[u8; KEY_LEN]> {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)?;
        if !f.metadata()?.is_file() {
            return Err(io::Error::other(format!(
                "{KEY_FILE} is not a regular file"
            )));
        }
        let mut key = [0u8; KEY_LEN];
        let mut extra = [0u8; 1];
        f.read_exact(&mut key)?;
        if f.read(&mut extra)? != 0 {
            return Err(io::Error::other(format!(
                "{KEY_FILE} is not {KEY_LEN} bytes"
            )));
        }
        Ok(key)
    };
    match read() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        r => return r,
    }
    let mut key = [0u8; KEY_LEN];
    random_bytes(&mut key)?;
    let tmp = dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
    let made = (|| -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(&key)?;
        drop(f);
        match fs::hard_link(&tmp, &path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    })();
    let _ = fs::remove_file(&tmp);
    made?;
    read()
}

/// The count of stored sessions: shared through `stored.count` when it can
/// be mapped, else this process's own.
enum Count {
    Shared(SharedCounter),
    Local(AtomicU64),
}

impl Count {
    fn get(&self) -> &AtomicU64 {
        match self {
            Count::Shared(c) => c.get(),
            Count::Local(c) => c,
        }
    }

    /// Takes one slot if fewer than `max` are taken.
    fn reserve(&self, max: usize) -> bool {
        let max = max as u64;
        self.get()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self) {
        let _ = self
            .get()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(1))
            });
    }
}

/// A stored session cached in memory.
struct Session {
    values: BTreeMap<String, String>,
    /// The last use known to this process.
    last_used: i64,
    /// `last_used` as written in the file.
    saved_last_used: i64,
    /// The file version these values came from (or were written to).
    stamp: Stamp,
    /// Position in the memory LRU order (key of `SessionStore::lru`).
    tick: u64,
}

/// A file this process knows of.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Known {
    last_used: i64,
    tomb: bool,
}

/// What the disk says of an id.
enum Found {
    /// A stored session, now in the cache.
    Stored,
    /// No file: a session without values (or never issued).
    Absent,
    /// A tombstone, or a file that is not ours.
    Unknown,
}

/// The session store of one worker. See the module documentation.
pub struct SessionStore {
    dir: PathBuf,
    mac: Hmac,
    timeout: i64,
    /// How far `last_used` may run ahead of the file before it is written.
    write_every: i64,
    max_memory: usize,
    max_stored: usize,
    count: Count,
    /// The store's mode when it lets others than its owner in.
    loose: Option<u32>,
    /// The cache. Invariant: every key is also in `disk`, as stored.
    mem: HashMap<Id, Session>,
    /// Cached sessions by last use: `tick` → id, oldest first.
    lru: BTreeMap<u64, Id>,
    tick: u64,
    /// Every file this worker knows of (stored sessions and tombstones).
    disk: HashMap<Id, Known>,
    /// The same, ordered by last use, oldest (and so expired) first.
    by_age: BTreeSet<(i64, Id)>,
    /// Tombstones in `disk`.
    tombs: usize,
    /// Bytes from the kernel's CSPRNG not handed out yet (the tail of
    /// `random`): one `getrandom` per 64 ids, not one per cookie-less
    /// request.
    random: [u8; RANDOM_POOL],
    random_left: usize,
}

/// Bytes of randomness fetched at once for new ids.
const RANDOM_POOL: usize = 1024;

impl SessionStore {
    /// Opens (creating if missing, 0700) the store in `dir`, reads or makes
    /// its key, and indexes its files: expired sessions and tombstones and
    /// stale temporaries of ours are removed; everything else that is not
    /// ours is left alone. `timeout_secs` is the longest of the servers',
    /// `max_stored` is `session_max`; both are taken as at least 1, and
    /// `max_memory` as at most `max_stored`.
    pub fn open(
        dir: &Path,
        timeout_secs: i64,
        max_memory: usize,
        max_stored: usize,
        now: i64,
    ) -> io::Result<SessionStore> {
        create_dir(dir)?;
        let meta = fs::metadata(dir)?;
        if !meta.is_dir() {
            return Err(io::Error::other("not a directory"));
        }
        let mode = meta.mode() & 0o777;
        let key = load_key(dir)?;
        let count = match SharedCounter::open(&dir.join(COUNT_FILE)) {
            Ok(c) => Count::Shared(c),
            Err(_) => Count::Local(AtomicU64::new(0)),
        };
        let timeout = timeout_secs.max(1);
        let max_stored = max_stored.max(1);
        let mut store = SessionStore {
            dir: dir.to_path_buf(),
            mac: Hmac::new(&key),
            timeout,
            write_every: (timeout / 4).max(1),
            max_memory: max_memory.clamp(1, max_stored),
            max_stored,
            count,
            loose: (mode & 0o077 != 0).then_some(mode),
            mem: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            disk: HashMap::new(),
            by_age: BTreeSet::new(),
            tombs: 0,
            random: [0; RANDOM_POOL],
            random_left: 0,
        };
        let mut stored = 0u64;
        for entry in fs::read_dir(dir)? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let path = entry.path();
            if let Some(id) = Id::parse_hex(name.as_bytes()) {
                match read_record(&path) {
                    Ok(Some((rec, _))) if store.expired(rec.last_used, now) => {
                        let _ = fs::remove_file(&path);
                    }
                    Ok(Some((rec, _))) if rec.revoked => store.index_tomb(id, rec.last_used),
                    // Written by an older version for a session without values.
                    Ok(Some((rec, _))) if rec.values.is_empty() => {
                        let _ = fs::remove_file(&path);
                    }
                    Ok(Some((rec, _))) => {
                        store.index(id, rec.last_used);
                        stored += 1;
                    }
                    // Not ours, vanished meanwhile, or unreadable.
                    _ => {}
                }
            } else if is_tmp_name(name.as_bytes()) {
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TMP));
                if stale {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        store.count.get().store(stored, Ordering::Release);
        Ok(store)
    }

    /// The store directory's mode, when it lets others than its owner in
    /// (the caller warns).
    pub fn loose_mode(&self) -> Option<u32> {
        self.loose
    }

    /// A new session: no file, nothing kept. Fails only if randomness does.
    pub fn issue(&mut self, now: i64) -> io::Result<Sid> {
        Ok(Sid {
            id: self.random_id()?,
            issued: u32::try_from(now.max(0)).unwrap_or(u32::MAX),
        })
    }

    /// 128 fresh bits from the kernel's CSPRNG (through the pool); each
    /// byte is handed out once, then overwritten.
    fn random_id(&mut self) -> io::Result<Id> {
        if self.random_left < 16 {
            random_bytes(&mut self.random)?;
            self.random_left = RANDOM_POOL;
        }
        let start = RANDOM_POOL - self.random_left;
        let mut id = [0u8; 16];
        if let Some(src) = self.random.get_mut(start..start + 16) {
            id.copy_from_slice(src);
            src.fill(0);
        }
        self.random_left -= 16;
        Ok(Id(id))
    }

    /// The cookie value of `sid` for the server block `scope`.
    pub fn cookie(&self, sid: &Sid, scope: &[u8]) -> ArrayString<SID_HEX_LEN> {
        let mut out = ArrayString::new();
        push_hex(&mut out, &sid.id.0);
        push_hex(&mut out, &sid.issued.to_be_bytes());
        push_hex(&mut out, self.tag(sid, scope).get(..MAC_LEN).unwrap_or(&[]));
        out
    }

    fn tag(&self, sid: &Sid, scope: &[u8]) -> [u8; 32] {
        let scope_len = u32::try_from(scope.len()).unwrap_or(u32::MAX).to_be_bytes();
        self.mac.mac(&[
            MAC_DOMAIN,
            &scope_len,
            scope,
            &sid.id.0,
            &sid.issued.to_be_bytes(),
        ])
    }

    /// The session `value` names if its MAC checks out for `scope`, without
    /// looking at the disk.
    fn verify(&self, value: &[u8], scope: &[u8]) -> Option<Sid> {
        let (id, rest) = (value.get(..32)?, value.get(32..)?);
        let (issued, mac) = (rest.get(..8)?, rest.get(8..)?);
        let id = Id::parse_hex(id)?;
        let mut t = [0u8; 4];
        let mut m = [0u8; MAC_LEN];
        if !parse_hex_into(issued, &mut t) || !parse_hex_into(mac, &mut m) {
            return None;
        }
        let sid = Sid {
            id,
            issued: u32::from_be_bytes(t),
        };
        let tag = self.tag(&sid, scope);
        equal_ct(tag.get(..MAC_LEN)?, &m).then_some(sid)
    }

    /// The first live session among the `SID` cookie values given, for the
    /// server block `scope` whose `session_timeout` is `timeout` seconds;
    /// touches its last use. A value that is malformed, forged, another
    /// server's, destroyed or expired is skipped (an expired stored session
    /// is removed, file included).
    pub fn get<'a>(
        &mut self,
        values: impl IntoIterator<Item = &'a [u8]>,
        scope: &[u8],
        timeout: i64,
        now: i64,
    ) -> Option<Sid> {
        let timeout = timeout.max(1);
        for value in values {
            if let Some(sid) = self.verify(value, scope)
                && self.is_live(&sid, timeout, now)
            {
                return Some(sid);
            }
        }
        None
    }

    /// Whether `sid` (MAC checked) is live; touches it if stored.
    fn is_live(&mut self, sid: &Sid, timeout: i64, now: i64) -> bool {
        match self.find(sid.id) {
            Found::Stored => {
                let last_used = self.mem.get(&sid.id).map_or(i64::MIN, |s| s.last_used);
                if last_used.saturating_add(timeout) <= now {
                    self.remove(sid.id);
                    return false;
                }
                self.touch(sid.id, now);
                true
            }
            Found::Absent => i64::from(sid.issued).saturating_add(timeout) > now,
            Found::Unknown => false,
        }
    }

    /// The session's values in key order, as of the last `get` or `set`
    /// (empty for a session without values).
    pub fn values(&self, sid: &Sid) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.mem
            .get(&sid.id)
            .into_iter()
            .flat_map(|s| s.values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// One value, as `values` sees it.
    pub fn value(&self, sid: &Sid, key: &str) -> Option<&str> {
        self.mem.get(&sid.id)?.values.get(key).map(String::as_str)
    }

    /// Sets `key` to `value`, or removes it if `value` is empty, and writes
    /// the file (made for the first value, removed with the last); this is a
    /// use of the session. Nothing changes on error.
    pub fn set(&mut self, sid: &Sid, key: &str, value: &str, now: i64) -> Result<(), SetError> {
        if !valid_key(key) || !valid_value(value) {
            return Err(SetError::Invalid);
        }
        match self.find(sid.id) {
            Found::Unknown => Err(SetError::Invalid),
            Found::Absent if value.is_empty() => Ok(()),
            Found::Absent => {
                if !self.count.reserve(self.max_stored) {
                    return Err(SetError::Full);
                }
                let mut values = BTreeMap::new();
                values.insert(key.to_owned(), value.to_owned());
                match write_record(&self.dir, sid.id, now, false, &values) {
                    Ok(stamp) => {
                        self.index(sid.id, now);
                        self.cache(
                            sid.id,
                            Session {
                                values,
                                last_used: now,
                                saved_last_used: now,
                                stamp,
                                tick: 0,
                            },
                        );
                        Ok(())
                    }
                    Err(_) => {
                        self.count.release();
                        Err(SetError::Io)
                    }
                }
            }
            Found::Stored => self.change(sid.id, key, value, now),
        }
    }

    /// `set` on a cached stored session.
    fn change(&mut self, id: Id, key: &str, value: &str, now: i64) -> Result<(), SetError> {
        let Some(s) = self.mem.get_mut(&id) else {
            return Err(SetError::Invalid);
        };
        let old = match s.values.get(key) {
            Some(v) if v == value => return Ok(()),
            None if value.is_empty() => return Ok(()),
            None if s.values.len() >= MAX_KEYS => return Err(SetError::Invalid),
            old => old.cloned(),
        };
        if value.is_empty() {
            s.values.remove(key);
        } else {
            s.values.insert(key.to_owned(), value.to_owned());
        }
        s.last_used = s.last_used.max(now);
        if s.values.is_empty() {
            // The last value gone: the session keeps its id, without a file.
            self.remove(id);
            return Ok(());
        }
        if self.save(id).is_ok() {
            return Ok(());
        }
        // Memory stays what the file says.
        if let Some(s) = self.mem.get_mut(&id) {
            match old {
                Some(v) => s.values.insert(key.to_owned(), v),
                None => s.values.remove(key),
            };
        }
        Err(SetError::Io)
    }

    /// Moves the session's values to a new id and revokes the old one (a
    /// tombstone when the client `presented` it; a session issued on this
    /// very request was never seen, so needs none). On error nothing
    /// changed.
    pub fn rotate(&mut self, sid: &Sid, presented: bool, now: i64) -> io::Result<Sid> {
        let new = self.issue(now)?;
        if let Found::Stored = self.find(sid.id) {
            let Some(old) = self.mem.get(&sid.id) else {
                return Err(io::ErrorKind::NotFound.into());
            };
            let values = old.values.clone();
            let stamp = write_record(&self.dir, new.id, now, false, &values)?;
            // The stored count moves with the values.
            self.forget(sid.id);
            self.index(new.id, now);
            self.cache(
                new.id,
                Session {
                    values,
                    last_used: now,
                    saved_last_used: now,
                    stamp,
                    tick: 0,
                },
            );
            if !presented || !self.bury(sid.id, now) {
                let _ = fs::remove_file(self.path(sid.id));
            }
        } else if presented {
            self.bury(sid.id, now);
        }
        Ok(new)
    }

    /// Ends the session: its values are removed and, when the client
    /// `presented` its id, the id stays unknown until it would have expired.
    pub fn destroy(&mut self, sid: &Sid, presented: bool, now: i64) {
        if let Found::Stored = self.find(sid.id) {
            self.remove(sid.id);
        }
        if presented {
            self.bury(sid.id, now);
        }
    }

    /// Writes a tombstone for `id` (replacing its file, if any). `false`
    /// when the tombstones are at their bound or the write failed.
    fn bury(&mut self, id: Id, now: i64) -> bool {
        if self.tombs >= self.max_stored {
            return false;
        }
        if write_record(&self.dir, id, now, true, &BTreeMap::new()).is_err() {
            return false;
        }
        self.index_tomb(id, now);
        true
    }

    /// Removes expired sessions and tombstones, from memory and disk, at
    /// most `SWEEP_BATCH` per call. Before removing a stored session, its
    /// file is checked: another worker may have used it since. Call every
    /// few seconds.
    pub fn sweep(&mut self, now: i64) {
        for _ in 0..SWEEP_BATCH {
            let Some(&(last_used, id)) = self.by_age.first() else {
                return;
            };
            if !self.expired(last_used, now) {
                return;
            }
            let tomb = self.disk.get(&id).is_some_and(|k| k.tomb);
            let fresh = if tomb {
                None
            } else if self.mem.contains_key(&id) {
                self.refresh(id)
                    .then(|| self.mem.get(&id).map(|s| s.last_used))
                    .flatten()
            } else {
                match read_record(&self.path(id)) {
                    Ok(Some((rec, _))) if !rec.revoked => Some(rec.last_used.max(last_used)),
                    _ => None,
                }
            };
            match fresh {
                // Moves back in `by_age`, so the loop makes progress.
                Some(t) if !self.expired(t, now) => self.index(id, t),
                _ => self.remove(id),
            }
        }
    }

    /// Writes every `last_used` not yet on disk (at a clean stop).
    pub fn flush(&mut self) {
        let pending: Vec<Id> = self
            .mem
            .iter()
            .filter(|(_, s)| s.last_used > s.saved_last_used)
            .map(|(id, _)| *id)
            .collect();
        for id in pending {
            self.write_pending(id);
        }
    }

    /// Stored sessions cached in memory.
    pub fn len_memory(&self) -> usize {
        self.mem.len()
    }

    /// Files this worker knows of: stored sessions and tombstones.
    pub fn len_disk(&self) -> usize {
        self.disk.len()
    }

    /// Stored sessions over every process sharing the store.
    pub fn stored(&self) -> u64 {
        self.count.get().load(Ordering::Acquire)
    }

    fn path(&self, id: Id) -> PathBuf {
        self.dir.join(id.to_hex().as_str())
    }

    fn expired(&self, last_used: i64, now: i64) -> bool {
        last_used.saturating_add(self.timeout) <= now
    }

    /// Brings what the disk says of `id` into the cache.
    fn find(&mut self, id: Id) -> Found {
        if self.mem.contains_key(&id) {
            if self.refresh(id) {
                return Found::Stored;
            }
            // Changed under us: gone (values removed) or revoked.
            self.forget(id);
        }
        match read_record(&self.path(id)) {
            Ok(Some((rec, _))) if rec.revoked => {
                self.index_tomb(id, rec.last_used);
                Found::Unknown
            }
            Ok(Some((rec, _))) if rec.values.is_empty() => Found::Unknown,
            Ok(Some((rec, stamp))) => {
                let known = self.disk.get(&id).map_or(i64::MIN, |k| k.last_used);
                let last_used = rec.last_used.max(known);
                self.index(id, last_used);
                self.cache(
                    id,
                    Session {
                        values: rec.values,
                        last_used,
                        saved_last_used: rec.last_used,
                        stamp,
                        tick: 0,
                    },
                );
                Found::Stored
            }
            Ok(None) => Found::Unknown,
            Err(e) if is_gone(&e) => {
                self.forget(id);
                Found::Absent
            }
            // Unreadable: serves no better than unknown.
            Err(_) => Found::Unknown,
        }
    }

    /// Brings a cached session up to date with its file. `false` if the file
    /// is gone, revoked or not a session. When the file cannot be checked
    /// (an I/O error other than absence), the cached copy is used.
    fn refresh(&mut self, id: Id) -> bool {
        let path = self.path(id);
        let Some(s) = self.mem.get_mut(&id) else {
            return false;
        };
        match fs::symlink_metadata(&path) {
            Ok(m) if Stamp::of(&m) == s.stamp => return true,
            Ok(_) => {}
            Err(e) => return !is_gone(&e),
        }
        let last_used = match read_record(&path) {
            Ok(Some((rec, stamp))) if !rec.revoked && !rec.values.is_empty() => {
                s.values = rec.values;
                s.last_used = s.last_used.max(rec.last_used);
                s.saved_last_used = rec.last_used;
                s.stamp = stamp;
                s.last_used
            }
            Ok(_) => return false,
            Err(e) => return !is_gone(&e),
        };
        self.index(id, last_used);
        true
    }

    /// Marks a cached session used at `now`; writes `last_used` once it is
    /// `write_every` ahead of the file.
    fn touch(&mut self, id: Id, now: i64) {
        self.tick += 1;
        let Some(s) = self.mem.get_mut(&id) else {
            return;
        };
        self.lru.remove(&s.tick);
        s.tick = self.tick;
        self.lru.insert(s.tick, id);
        s.last_used = s.last_used.max(now);
        let last_used = s.last_used;
        let due = last_used.saturating_sub(s.saved_last_used) >= self.write_every;
        self.index(id, last_used);
        if due {
            // On failure the write is retried at the next use.
            let _ = self.save(id);
        }
    }

    /// Writes a cached session to its file.
    fn save(&mut self, id: Id) -> io::Result<()> {
        let Some(s) = self.mem.get_mut(&id) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        s.stamp = write_record(&self.dir, id, s.last_used, false, &s.values)?;
        s.saved_last_used = s.last_used;
        Ok(())
    }

    /// Writes a cached session's `last_used` if the file lags, after taking
    /// in whatever another worker wrote meanwhile.
    fn write_pending(&mut self, id: Id) {
        let lags = self
            .mem
            .get(&id)
            .is_some_and(|s| s.last_used > s.saved_last_used);
        if !lags {
            return;
        }
        if self.refresh(id) {
            let _ = self.save(id);
        } else {
            self.forget(id);
        }
    }

    /// Puts a session in the cache (its file exists and is indexed), first
    /// evicting the least recently used ones beyond `max_memory`.
    fn cache(&mut self, id: Id, mut session: Session) {
        while self.mem.len() >= self.max_memory {
            let Some((_, old)) = self.lru.pop_first() else {
                break;
            };
            self.write_pending(old);
            if let Some(s) = self.mem.remove(&old) {
                self.lru.remove(&s.tick);
            }
        }
        self.tick += 1;
        session.tick = self.tick;
        self.lru.insert(self.tick, id);
        self.mem.insert(id, session);
    }

    /// Records that `id` has a stored session file, last used at `last_used`.
    fn index(&mut self, id: Id, last_used: i64) {
        self.index_known(
            id,
            Known {
                last_used,
                tomb: false,
            },
        );
    }

    /// Records that `id` has a tombstone, written at `last_used`.
    fn index_tomb(&mut self, id: Id, last_used: i64) {
        if let Some(s) = self.mem.remove(&id) {
            self.lru.remove(&s.tick);
        }
        self.index_known(
            id,
            Known {
                last_used,
                tomb: true,
            },
        );
    }

    fn index_known(&mut self, id: Id, known: Known) {
        if let Some(old) = self.disk.insert(id, known) {
            self.by_age.remove(&(old.last_used, id));
            self.tombs = self.tombs.saturating_sub(usize::from(old.tomb));
        }
        self.tombs += usize::from(known.tomb);
        self.by_age.insert((known.last_used, id));
    }

    /// Drops a file from memory and the index, keeping it on disk. Returns
    /// what the index said of it.
    fn forget(&mut self, id: Id) -> Option<Known> {
        if let Some(s) = self.mem.remove(&id) {
            self.lru.remove(&s.tick);
        }
        let known = self.disk.remove(&id)?;
        self.by_age.remove(&(known.last_used, id));
        self.tombs = self.tombs.saturating_sub(usize::from(known.tomb));
        Some(known)
    }

    /// Drops a file from memory, the index and the disk; a stored session
    /// that this call unlinked leaves the stored count.
    fn remove(&mut self, id: Id) {
        let known = self.forget(id);
        let unlinked = fs::remove_file(self.path(id)).is_ok();
        if unlinked && known.is_some_and(|k| !k.tomb) {
            self.count.release();
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::xorshift;

    const T: i64 = 1_000; // timeout
    const T0: i64 = 1_700_000_000;
    const A: &[u8] = b"a.test|127.0.0.1:80";
    const B: &[u8] = b"b.test|127.0.0.1:80";

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let d = std::env::temp_dir().join(format!("ls-session-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            TempDir(d)
        }

        /// Session file names in the directory (not the key or counter), sorted.
        fn files(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != KEY_FILE && n != COUNT_FILE)
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            // A test may have replaced the directory by a file.
            let _ = fs::remove_dir_all(&self.0).or_else(|_| fs::remove_file(&self.0));
        }
    }

    fn open(d: &TempDir, max_memory: usize, max_stored: usize, now: i64) -> SessionStore {
        SessionStore::open(&d.0, T, max_memory, max_stored, now).unwrap()
    }

    /// `get` of one cookie value for server A.
    fn get(s: &mut SessionStore, cookie: &str, now: i64) -> Option<Sid> {
        s.get([cookie.as_bytes()], A, T, now)
    }

    /// A new session of server A holding `n=v`, and its cookie.
    fn stored(s: &mut SessionStore, v: &str, now: i64) -> (Sid, String) {
        let sid = s.issue(now).unwrap();
        s.set(&sid, "n", v, now).unwrap();
        (sid, s.cookie(&sid, A).to_string())
    }

    fn vals(s: &SessionStore, sid: &Sid) -> Vec<(String, String)> {
        s.values(sid)
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cookie_round_trip_and_rejects() {
        let d = TempDir::new("cookie");
        let mut s = open(&d, 10, 10, T0);
        let sid = s.issue(T0).unwrap();
        let c = s.cookie(&sid, A);
        assert_eq!(c.len(), SID_HEX_LEN);
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(get(&mut s, &c, T0 + 1), Some(sid));
        assert_ne!(s.issue(T0).unwrap(), sid);
        // Every single changed digit is refused, and so is every other spelling.
        for i in 0..c.len() {
            let mut bad = c.as_bytes().to_vec();
            bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
            assert_eq!(s.get([&bad[..]], A, T, T0), None, "digit {i}");
        }
        let upper = c.to_ascii_uppercase();
        let cases: &[&[u8]] = &[
            b"",
            b"abc",
            upper.as_bytes(),
            &c.as_bytes()[..71],
            &c.as_bytes()[..32],
            b"../../../../../../../../etc/passwd......................................",
        ];
        for b in cases {
            assert_eq!(
                s.get([*b], A, T, T0),
                None,
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        assert!(d.files().is_empty());
    }

    #[test]
    fn ids_are_distinct_across_pool_refills() {
        let d = TempDir::new("pool");
        let mut s = open(&d, 10, 10, T0);
        let ids: std::collections::HashSet<Id> = (0..3 * RANDOM_POOL / 16 + 5)
            .map(|_| s.issue(T0).unwrap().id)
            .collect();
        assert_eq!(ids.len(), 3 * RANDOM_POOL / 16 + 5);
        assert!(!ids.contains(&Id([0; 16])));
    }

    #[test]
    fn a_session_belongs_to_its_server() {
        let d = TempDir::new("scope");
        let mut s = open(&d, 10, 10, T0);
        let (sid, ca) = stored(&mut s, "x", T0);
        assert_eq!(s.get([ca.as_bytes()], B, T, T0), None);
        // The same id signed for B would be B's; A's cookie says nothing to B.
        assert_ne!(s.cookie(&sid, B).as_str(), ca);
        assert_eq!(s.get([ca.as_bytes()], A, T, T0), Some(sid));
    }

    #[test]
    fn any_valid_cookie_among_several_is_used() {
        let d = TempDir::new("several");
        let mut s = open(&d, 10, 10, T0);
        let (sid, c) = stored(&mut s, "x", T0);
        let forged = "0".repeat(SID_HEX_LEN);
        let got = s.get([forged.as_bytes(), b"junk", c.as_bytes()], A, T, T0);
        assert_eq!(got, Some(sid));
    }

    #[test]
    fn issuing_writes_nothing_and_is_recognised_after_a_restart() {
        let d = TempDir::new("issue");
        let mut s = open(&d, 10, 10, T0);
        let cookies: Vec<String> = (0..1000)
            .map(|_| {
                let sid = s.issue(T0).unwrap();
                s.cookie(&sid, A).to_string()
            })
            .collect();
        assert!(d.files().is_empty());
        assert_eq!((s.len_memory(), s.len_disk(), s.stored()), (0, 0, 0));
        drop(s);
        // Another process (a worker, or after a restart) knows them all.
        let mut s = open(&d, 10, 10, T0);
        for c in &cookies {
            assert!(get(&mut s, c, T0 + T - 1).is_some());
        }
        assert!(d.files().is_empty());
        // A store with another key does not.
        let other = TempDir::new("issue-other");
        let mut o = open(&other, 10, 10, T0);
        assert_eq!(get(&mut o, &cookies[0], T0), None);
    }

    #[test]
    fn key_is_private_and_made_once() {
        let d = TempDir::new("key");
        let s = open(&d, 10, 10, T0);
        let key = fs::read(d.0.join(KEY_FILE)).unwrap();
        assert_eq!(key.len(), KEY_LEN);
        let meta = fs::metadata(d.0.join(KEY_FILE)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&d.0).unwrap().mode() & 0o777, 0o700);
        assert_eq!(s.loose_mode(), None);
        drop(s);
        let _s = open(&d, 10, 10, T0);
        assert_eq!(fs::read(d.0.join(KEY_FILE)).unwrap(), key);
        // A damaged key refuses the store rather than signing with garbage.
        fs::write(d.0.join(KEY_FILE), b"short").unwrap();
        assert!(SessionStore::open(&d.0, T, 1, 1, T0).is_err());
    }

    #[test]
    fn a_store_others_can_read_is_reported() {
        let d = TempDir::new("loose");
        fs::create_dir_all(&d.0).unwrap();
        fs::set_permissions(&d.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let s = open(&d, 10, 10, T0);
        assert_eq!(s.loose_mode(), Some(0o755));
    }

    #[test]
    fn rfc_4231_backs_the_mac() {
        // The MAC is HMAC-SHA256 over a fixed layout: recompute one by hand.
        let d = TempDir::new("mac");
        let mut s = open(&d, 10, 10, T0);
        let key = fs::read(d.0.join(KEY_FILE)).unwrap();
        let sid = s.issue(T0).unwrap();
        let c = s.cookie(&sid, A);
        let mut msg = MAC_DOMAIN.to_vec();
        msg.extend_from_slice(&(A.len() as u32).to_be_bytes());
        msg.extend_from_slice(A);
        msg.extend_from_slice(&sid.id.0);
        msg.extend_from_slice(&(T0 as u32).to_be_bytes());
        let tag = Hmac::new(&key).mac(&[&msg]);
        let hex: String = tag[..MAC_LEN].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&c[40..], hex);
        assert_eq!(&c[..32], sid.id.to_hex().as_str());
        assert_eq!(&c[32..40], format!("{:08x}", T0 as u32));
    }

    #[test]
    fn file_format_round_trip_and_corruption() {
        let mut values = BTreeMap::new();
        values.insert("a".to_owned(), "x=y%z\nw\r".to_owned());
        values.insert("name".to_owned(), "Zoé".to_owned());
        let bytes = encode(T0, false, &values);
        assert_eq!(
            bytes,
            b"localserver-session 1\nlast_used 1700000000\na=x%3Dy%25z%0Aw%0D\nname=Zo\xC3\xA9\n"
        );
        assert_eq!(
            decode(&bytes),
            Some(Record {
                last_used: T0,
                revoked: false,
                values: values.clone()
            })
        );
        let tomb = encode(-5, true, &values);
        assert_eq!(tomb, b"localserver-session 1\nlast_used -5\nrevoked\n");
        assert_eq!(
            decode(&tomb),
            Some(Record {
                last_used: -5,
                revoked: true,
                values: BTreeMap::new()
            })
        );
        let bad: &[&[u8]] = &[
            b"",
            b"localserver-session 1\nlast_used 1\na=b",
            b"localserver-session 2\nlast_used 1\n",
            b"localserver-session 1\nlast_used x\n",
            b"localserver-session 1\nlast_used  1\n",
            b"localserver-session 1\n",
            b"localserver-session 1\nlast_used 1\na\n",
            b"localserver-session 1\nlast_used 1\na=\n",
            b"localserver-session 1\nlast_used 1\nb-c=1\n",
            b"localserver-session 1\nlast_used 1\na=%\n",
            b"localserver-session 1\nlast_used 1\na=%4\n",
            b"localserver-session 1\nlast_used 1\na=%zz\n",
            b"localserver-session 1\nlast_used 1\na=%00\n",
            b"localserver-session 1\nlast_used 1\na=%FF\n",
            b"localserver-session 1\nlast_used 1\na=x\ry\n",
            b"localserver-session 1\nlast_used 1\na=1\na=2\n",
            b"localserver-session 1\nlast_used 1\n\n",
            b"localserver-session 1\nlast_used 1\nrevoked\na=1\n",
            b"localserver-session 1\nlast_used 1\na=1\nrevoked\n",
        ];
        for b in bad {
            assert_eq!(decode(b), None, "{:?}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn fuzz_decode_never_panics() {
        let good = b"localserver-session 1\nlast_used 1700000000\na=1%3D\nb_2=two\n";
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            let mut input = good.to_vec();
            for _ in 0..1 + xorshift(&mut s) % 4 {
                let i = (xorshift(&mut s) as usize) % (input.len() + 1);
                match xorshift(&mut s) % 3 {
                    0 if i < input.len() => input[i] = xorshift(&mut s) as u8,
                    1 if i < input.len() => {
                        input.remove(i);
                    }
                    _ => input.insert(i, xorshift(&mut s) as u8),
                }
            }
            if let Some(rec) = decode(&input) {
                // Whatever decodes re-encodes to something that decodes the same.
                assert_eq!(
                    decode(&encode(rec.last_used, rec.revoked, &rec.values)),
                    Some(rec)
                );
            }
        }
    }

    #[test]
    fn first_value_makes_the_file_and_the_last_removes_it() {
        let d = TempDir::new("firstlast");
        let mut s = open(&d, 10, 10, T0);
        let sid = s.issue(T0).unwrap();
        let c = s.cookie(&sid, A).to_string();
        assert_eq!(s.set(&sid, "gone", "", T0), Ok(()));
        assert!(d.files().is_empty());
        s.set(&sid, "user", "ada", T0).unwrap();
        let hex = sid.id.to_hex().to_string();
        assert_eq!(d.files(), vec![hex.clone()]);
        let text = fs::read_to_string(d.0.join(&hex)).unwrap();
        assert_eq!(
            text,
            format!("localserver-session 1\nlast_used {T0}\nuser=ada\n")
        );
        assert_eq!(fs::metadata(d.0.join(&hex)).unwrap().mode() & 0o777, 0o600);
        assert_eq!(s.stored(), 1);
        assert_eq!(s.set(&sid, "user", "", T0 + 1), Ok(()));
        assert!(d.files().is_empty());
        assert_eq!((s.stored(), s.len_memory(), s.len_disk()), (0, 0, 0));
        // Still the client's session, without values.
        assert_eq!(get(&mut s, &c, T0 + 2), Some(sid));
        assert_eq!(vals(&s, &sid), vec![]);
    }

    #[test]
    fn expiry_with_injected_clock() {
        let d = TempDir::new("expiry");
        let mut s = open(&d, 100, 100, T0);
        // Without values: `timeout` after it was issued.
        let bare = s.issue(T0).unwrap();
        let cb = s.cookie(&bare, A).to_string();
        assert_eq!(get(&mut s, &cb, T0 + T - 1), Some(bare));
        assert_eq!(get(&mut s, &cb, T0 + T), None);
        // With values: `timeout` after its last use; the file goes too.
        let (sid, c) = stored(&mut s, "1", T0);
        assert_eq!(get(&mut s, &c, T0 + T - 1), Some(sid));
        assert_eq!(get(&mut s, &c, T0 + T - 1 + T), None);
        assert!(d.files().is_empty());
        assert_eq!((s.len_memory(), s.len_disk(), s.stored()), (0, 0, 0));
        // A server with a shorter timeout sees it expire sooner.
        let (sid, c) = stored(&mut s, "2", T0);
        assert_eq!(s.get([c.as_bytes()], A, 10, T0 + 9), Some(sid));
        assert_eq!(s.get([c.as_bytes()], A, 10, T0 + 9 + 10), None);
    }

    #[test]
    fn use_extends_life() {
        let d = TempDir::new("extend");
        let mut s = open(&d, 100, 100, T0);
        let (sid, c) = stored(&mut s, "1", T0);
        // Used every 0.9 timeout for 10 timeouts: alive throughout.
        for i in 1..=11 {
            assert_eq!(get(&mut s, &c, T0 + i * 9 * T / 10), Some(sid), "{i}");
        }
        assert_eq!(get(&mut s, &c, T0 + 11 * 9 * T / 10 + T), None);
    }

    #[test]
    fn last_used_reaches_the_file_at_most_every_quarter_timeout() {
        let d = TempDir::new("lazywrite");
        let mut s = open(&d, 100, 100, T0);
        let (sid, c) = stored(&mut s, "1", T0);
        let path = d.0.join(sid.id.to_hex().as_str());
        let on_disk = || decode(&fs::read(&path).unwrap()).unwrap().last_used;
        get(&mut s, &c, T0 + T / 4 - 1).unwrap();
        assert_eq!(on_disk(), T0);
        get(&mut s, &c, T0 + T / 4).unwrap();
        assert_eq!(on_disk(), T0 + T / 4);
        get(&mut s, &c, T0 + T / 4 + 5).unwrap();
        assert_eq!(on_disk(), T0 + T / 4);
        s.flush();
        assert_eq!(on_disk(), T0 + T / 4 + 5);
    }

    #[test]
    fn values_set_remove_invalid() {
        let d = TempDir::new("values");
        let mut s = open(&d, 100, 100, T0);
        let sid = s.issue(T0).unwrap();
        for (k, v) in [
            ("user", "zoé"),
            ("count", "1"),
            ("count", "2"),
            ("odd", "a=b%c\nd\re"),
        ] {
            assert_eq!(s.set(&sid, k, v, T0), Ok(()));
        }
        assert_eq!(
            vals(&s, &sid),
            kv(&[("count", "2"), ("odd", "a=b%c\nd\re"), ("user", "zoé")])
        );
        assert_eq!(s.value(&sid, "user"), Some("zoé"));
        assert_eq!(s.set(&sid, "odd", "", T0), Ok(()));
        assert_eq!(s.set(&sid, "never", "", T0), Ok(()));
        assert_eq!(vals(&s, &sid), kv(&[("count", "2"), ("user", "zoé")]));

        let long_key = "k".repeat(65);
        let long_value = "v".repeat(4097);
        let invalid: &[(&str, &str)] = &[
            ("", "x"),
            ("a-b", "x"),
            ("a b", "x"),
            ("a=b", "x"),
            ("é", "x"),
            (&long_key, "x"),
            ("k", "nul\0byte"),
            ("k", &long_value),
        ];
        for (k, v) in invalid {
            assert_eq!(s.set(&sid, k, v, T0), Err(SetError::Invalid), "{k:?}");
        }
        assert_eq!(s.set(&sid, &"k".repeat(64), &"v".repeat(4096), T0), Ok(()));
        assert_eq!(s.set(&sid, &"k".repeat(64), "", T0), Ok(()));
        // A session holds at most MAX_KEYS keys; replacing one is still fine.
        for i in 2..MAX_KEYS {
            assert_eq!(s.set(&sid, &format!("k{i}"), "x", T0), Ok(()), "{i}");
        }
        assert_eq!(s.values(&sid).count(), MAX_KEYS);
        assert_eq!(s.set(&sid, "one_more", "x", T0), Err(SetError::Invalid));
        assert_eq!(s.set(&sid, "k2", "y", T0), Ok(()));
    }

    #[test]
    fn session_max_refuses_new_stored_sessions_and_evicts_none() {
        let d = TempDir::new("full");
        // Two workers on one store, session_max 3 over both.
        let mut a = open(&d, 10, 3, T0);
        let mut b = open(&d, 10, 3, T0);
        let (s1, c1) = stored(&mut a, "1", T0);
        let (_, c2) = stored(&mut b, "2", T0);
        let (_, c3) = stored(&mut a, "3", T0);
        let fourth = b.issue(T0).unwrap();
        assert_eq!(b.set(&fourth, "n", "4", T0), Err(SetError::Full));
        assert_eq!(a.stored(), 3);
        assert_eq!(d.files().len(), 3);
        // A flood of cookie-less sessions changes nothing either.
        for _ in 0..2000 {
            let _ = a.issue(T0).unwrap();
        }
        for c in [&c1, &c2, &c3] {
            assert!(get(&mut b, c, T0 + 1).is_some());
        }
        // A stored session takes more values while full.
        assert_eq!(a.set(&s1, "more", "x", T0 + 1), Ok(()));
        // One emptied makes room.
        assert_eq!(a.set(&s1, "n", "", T0 + 1), Ok(()));
        assert_eq!(a.set(&s1, "more", "", T0 + 1), Ok(()));
        assert_eq!(b.stored(), 2);
        assert_eq!(b.set(&fourth, "n", "4", T0 + 1), Ok(()));
        assert_eq!(a.stored(), 3);
        // A restart recounts from the files.
        drop((a, b));
        let s = open(&d, 10, 3, T0 + 2);
        assert_eq!(s.stored(), 3);
    }

    #[test]
    fn rotate_moves_values_and_revokes_the_old_id() {
        let d = TempDir::new("rotate");
        let mut s = open(&d, 10, 10, T0);
        let mut w = open(&d, 10, 10, T0);
        let (old, c_old) = stored(&mut s, "ada", T0);
        assert!(get(&mut w, &c_old, T0).is_some());
        let new = s.rotate(&old, true, T0 + 1).unwrap();
        assert_ne!(new, old);
        let c_new = s.cookie(&new, A).to_string();
        assert_eq!(vals(&s, &new), kv(&[("n", "ada")]));
        // The old id is unknown to every worker, the new one has the values.
        assert_eq!(get(&mut s, &c_old, T0 + 2), None);
        assert_eq!(get(&mut w, &c_old, T0 + 2), None);
        assert_eq!(get(&mut w, &c_new, T0 + 2), Some(new));
        assert_eq!(vals(&w, &new), kv(&[("n", "ada")]));
        assert_eq!(s.stored(), 1);
        // Until it would have expired: then the tombstone is swept.
        assert_eq!(get(&mut s, &c_new, T0 + T / 2), Some(new));
        assert_eq!(get(&mut s, &c_old, T0 + 1 + T - 1), None);
        s.sweep(T0 + 1 + T);
        assert_eq!(d.files(), vec![new.id.to_hex().to_string()]);

        // A session without values, presented by the client: revoked too.
        let bare = s.issue(T0 + 10).unwrap();
        let cb = s.cookie(&bare, A).to_string();
        let n2 = s.rotate(&bare, true, T0 + 10).unwrap();
        assert_eq!(get(&mut s, &cb, T0 + 11), None);
        let c2 = s.cookie(&n2, A).to_string();
        assert_eq!(get(&mut s, &c2, T0 + 11), Some(n2));
        // Issued on this very request: nothing to revoke, no file.
        let fresh = s.issue(T0 + 12).unwrap();
        let before = d.files().len();
        s.rotate(&fresh, false, T0 + 12).unwrap();
        assert_eq!(d.files().len(), before);
    }

    #[test]
    fn destroy_revokes_a_presented_id() {
        let d = TempDir::new("destroy");
        let mut s = open(&d, 10, 10, T0);
        let (sid, c) = stored(&mut s, "x", T0);
        s.destroy(&sid, true, T0 + 1);
        assert_eq!(get(&mut s, &c, T0 + 2), None);
        assert_eq!(s.stored(), 0);
        assert_eq!(s.len_memory(), 0);
        s.destroy(&sid, true, T0 + 3); // twice is harmless
        s.sweep(T0 + 3 + T);
        assert!(d.files().is_empty());
        assert_eq!(s.len_disk(), 0);
    }

    #[test]
    fn memory_bound_is_lru_and_disk_keeps_the_rest() {
        let d = TempDir::new("lru");
        let mut s = open(&d, 10, 100, T0);
        let made: Vec<(Sid, String)> = (0..50).map(|i| stored(&mut s, "v", T0 + i)).collect();
        assert_eq!(s.len_memory(), 10);
        assert_eq!(s.len_disk(), 50);
        for (sid, _) in &made[40..] {
            assert!(s.mem.contains_key(&sid.id));
        }
        for (sid, c) in &made {
            assert_eq!(get(&mut s, c, T0 + 60), Some(*sid));
            assert_eq!(s.value(sid, "n"), Some("v"));
            assert!(s.len_memory() <= 10);
        }
        assert_eq!(d.files().len(), 50);
    }

    #[test]
    fn memory_eviction_writes_pending_last_used() {
        let d = TempDir::new("evictwrite");
        let mut s = open(&d, 1, 100, T0);
        let (a, ca) = stored(&mut s, "a", T0);
        get(&mut s, &ca, T0 + 5).unwrap();
        stored(&mut s, "b", T0 + 6); // evicts a from memory
        let text = fs::read(d.0.join(a.id.to_hex().as_str())).unwrap();
        assert_eq!(decode(&text).unwrap().last_used, T0 + 5);
        // Values set on an evicted session are added to its file, not over it.
        s.set(&a, "m", "2", T0 + 7).unwrap();
        assert_eq!(vals(&s, &a), kv(&[("m", "2"), ("n", "a")]));
    }

    #[test]
    fn open_keeps_what_is_not_ours_and_cleans_our_leftovers() {
        let d = TempDir::new("openclean");
        let mut s = open(&d, 10, 100, T0);
        let (_, c) = stored(&mut s, "1", T0);
        drop(s);
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        let old_tmp = d.0.join(format!(".{}.12.tmp", "ab".repeat(16)));
        fs::File::create(&old_tmp)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let fresh_tmp = d.0.join(format!(".{}.13.tmp", "cd".repeat(16)));
        fs::write(&fresh_tmp, b"").unwrap();
        let foreign_tmp = d.0.join(".deadbeef.1.tmp");
        fs::File::create(&foreign_tmp)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let foreign_hex = d.0.join("ef".repeat(16));
        fs::write(&foreign_hex, b"not a session").unwrap();
        fs::write(d.0.join("README"), b"x").unwrap();
        let mut s = open(&d, 10, 100, T0 + 20);
        assert!(!old_tmp.exists());
        for kept in [&fresh_tmp, &foreign_tmp, &foreign_hex, &d.0.join("README")] {
            assert!(kept.exists(), "{}", kept.display());
        }
        assert_eq!(s.stored(), 1);
        assert!(get(&mut s, &c, T0 + 20).is_some());
        // Expiry and sweeping leave them alone too.
        s.sweep(T0 + 10 * T);
        assert!(foreign_hex.exists() && foreign_tmp.exists());
        let _ = open(&d, 10, 100, T0 + 10 * T);
        assert!(foreign_hex.exists() && foreign_tmp.exists());
    }

    #[test]
    fn sweep_removes_expired_only_and_is_batched() {
        let d = TempDir::new("sweep");
        let mut s = open(&d, 3, 10_000, T0);
        let old: Vec<(Sid, String)> = (0..5).map(|_| stored(&mut s, "o", T0)).collect();
        let young: Vec<(Sid, String)> = (0..5).map(|_| stored(&mut s, "y", T0 + T / 2)).collect();
        get(&mut s, &old[0].1, T0 + T / 2).unwrap();
        s.sweep(T0 + T - 1);
        assert_eq!(s.len_disk(), 10);
        s.sweep(T0 + T);
        assert_eq!(s.len_disk(), 6);
        assert_eq!(d.files().len(), 6);
        assert_eq!(s.stored(), 6);
        for (sid, c) in young.iter().chain(&old[..1]) {
            assert_eq!(get(&mut s, c, T0 + T), Some(*sid));
        }
        s.sweep(T0 + 10 * T);
        assert_eq!((s.len_disk(), s.len_memory(), s.stored()), (0, 0, 0));

        for _ in 0..SWEEP_BATCH + 10 {
            stored(&mut s, "b", T0);
        }
        s.sweep(T0 + T);
        assert_eq!(s.len_disk(), 10);
        s.sweep(T0 + T);
        assert_eq!(s.len_disk(), 0);
    }

    #[test]
    fn two_workers_share_one_directory() {
        let d = TempDir::new("shared");
        let mut a = open(&d, 10, 100, T0);
        let mut b = open(&d, 10, 100, T0);
        let (sid, c) = stored(&mut a, "0", T0);
        assert_eq!(get(&mut b, &c, T0 + 1), Some(sid));
        for i in 0..10 {
            let v = i.to_string();
            a.set(&sid, "n", &v, T0 + 2).unwrap();
            assert_eq!(get(&mut b, &c, T0 + 2), Some(sid));
            assert_eq!(b.value(&sid, "n"), Some(v.as_str()), "{i}");
            let w = format!("b{i}");
            b.set(&sid, "m", &w, T0 + 3).unwrap();
            assert_eq!(get(&mut a, &c, T0 + 3), Some(sid));
            assert_eq!(vals(&a, &sid), kv(&[("m", &w), ("n", &v)]), "{i}");
        }
        // Destroyed by one (log-out): gone for the other too.
        b.destroy(&sid, true, T0 + 6);
        assert_eq!(get(&mut a, &c, T0 + 6), None);
        assert_eq!(a.len_memory(), 0);
    }

    #[test]
    fn sweep_spares_a_session_another_worker_used() {
        let d = TempDir::new("sharedsweep");
        let mut a = open(&d, 10, 100, T0);
        let mut b = open(&d, 10, 100, T0);
        let (sid, c) = stored(&mut a, "x", T0);
        for t in (0..=2 * T).step_by((T / 4) as usize) {
            assert_eq!(get(&mut b, &c, T0 + t), Some(sid));
        }
        a.sweep(T0 + 2 * T);
        assert!(d.0.join(sid.id.to_hex().as_str()).exists());
        assert_eq!(get(&mut a, &c, T0 + 2 * T), Some(sid));
    }

    #[test]
    fn failing_disk_makes_set_fail_without_panic() {
        let d = TempDir::new("faildisk");
        let mut s = open(&d, 10, 10, T0);
        let (sid, _) = stored(&mut s, "x", T0);
        fs::remove_dir_all(&d.0).unwrap();
        fs::write(&d.0, b"not a directory").unwrap();
        let bare = s.issue(T0).unwrap();
        assert_eq!(s.set(&bare, "a", "b", T0), Err(SetError::Io));
        assert!(s.set(&sid, "a", "b", T0).is_err());
        s.sweep(T0 + 5 * T);
        s.flush();
        assert!(s.stored() <= 1);
        fs::remove_file(&d.0).unwrap();
        assert!(SessionStore::open(&d.0.join("x/y"), T, 1, 1, T0).is_ok());
    }

    #[test]
    fn oversized_file_is_not_a_session() {
        let d = TempDir::new("oversized");
        let mut s = open(&d, 10, 10, T0);
        let sid = s.issue(T0).unwrap();
        let c = s.cookie(&sid, A).to_string();
        let mut big = encode(T0, false, &BTreeMap::new());
        big.resize(MAX_FILE_LEN as usize + 10, b'a');
        fs::write(d.0.join(sid.id.to_hex().as_str()), &big).unwrap();
        assert_eq!(get(&mut s, &c, T0), None);
        let s2 = open(&d, 10, 10, T0);
        assert_eq!(s2.len_disk(), 0);
        assert!(d.0.join(sid.id.to_hex().as_str()).exists());
    }

    #[test]
    fn temporary_names() {
        let hex = "ab".repeat(16);
        assert!(is_tmp_name(format!(".{hex}.123.tmp").as_bytes()));
        assert!(is_tmp_name(b".sid.key.9.tmp"));
        for bad in [
            ".deadbeef.1.tmp",
            ".x.1.tmp",
            "..1.tmp",
            ".sid.key..tmp",
            "sid.key",
        ] {
            assert!(!is_tmp_name(bad.as_bytes()), "{bad}");
        }
        assert!(!is_tmp_name(format!(".{hex}.12a.tmp").as_bytes()));
    }
}
