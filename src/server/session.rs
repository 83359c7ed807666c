//! The server-side session store (CONFIG.md "Sessions and cookies",
//! `session_timeout`, `session_store`).
//!
//! Ids. A session id (`Sid`) is 128 bits from `getrandom`, written as 32
//! lowercase hex digits in the `SID` cookie and as the session's file name.
//! Only that exact spelling parses: a forged or garbled cookie simply names
//! no session, and the caller creates a new one.
//!
//! Time. Every method takes `now` (unix seconds), so the clock is injected
//! and the tests control it. A session expires after `timeout` seconds
//! without use: it is dead once `last_used + timeout <= now`.
//!
//! Files. One file per session in the store directory (created 0700 if
//! missing), named by the hex id, mode 0600, at most 1 MiB (larger files are
//! ignored as corrupt). It is always replaced whole: written to
//! `.<hex>.<pid>.tmp`, then renamed over `<hex>`, so a reader (this process
//! after a restart, or another worker) sees the old or the new file, never a
//! mix. The pid keeps two workers writing the same session from sharing a
//! temporary. There is no fsync: after a power cut a session may be lost,
//! which costs a log-in, not a corrupt store. The format:
//!
//! ```text
//! localserver-session 1
//! last_used 1700000000
//! key=value
//! ```
//!
//! one `key=value` line per value in key order, with `%`, LF, CR and `=`
//! written as `%25`, `%0A`, `%0D`, `%3D` in keys and values. Anything else
//! (wrong first line, bad escape, invalid key or value, duplicate key) makes
//! the whole file corrupt: it is treated as no session and removed.
//!
//! Writes. Creating a session and changing a value write the file at once
//! (write-through), so a restart or another worker sees them. A use only
//! moves `last_used` in memory; it reaches the file when it is `timeout / 4`
//! ahead of the file's copy, on a value change, when the session leaves the
//! memory cache, and at `flush`. So a busy session costs one write per
//! `timeout / 4`, not one per request; after a crash (no `flush`) a session
//! may expire up to `timeout / 4` early.
//!
//! Sharing. Before a cached session is used, its file is `stat`ed: if the
//! file is gone (destroyed or evicted by another worker) the session is gone;
//! if its inode, size or mtime changed since this process read or wrote it,
//! it is read again (values from the file, `last_used` the later of both).
//! Writes are last-writer-wins: two workers changing one session in the same
//! instant can lose one change. Each worker bounds what it knows of; the
//! directory holds at most `workers × max_disk` files.
//!
//! Bounds. Disk: at most `max_disk` files (the configuration's
//! `session_max`); before a creation would pass it, the session used
//! longest ago is removed. All sessions share one timeout, so ordering by
//! `last_used` puts every expired session before every live one: expired
//! files go first, then the oldest live ones. Memory: at most `max_memory`
//! sessions cached, the least recently used leaving the cache first (its
//! file stays). Every cached session has a file, so the cache never holds
//! more than `max_disk` either; `open` lowers `max_memory` to `max_disk` to
//! say so, and so that a small `session_max` makes a small cache. A flood
//! of cookie-less requests therefore costs at most `min(max_memory,
//! max_disk)` cached sessions and `max_disk` files, one write and at most
//! one unlink per request. The directory is scanned once, at `open`, to
//! index the files (expired and corrupt ones are removed then).
//!
//! Errors. Nothing here panics. A failing disk makes `create` return the
//! error (the server then answers without a session); a failed background
//! write (`last_used` only) is retried at the next use.

#![deny(clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrayvec::ArrayString;

use crate::http::bytes::hex_val;
use crate::sys::random_bytes;

/// Longest key, in bytes; keys are `[A-Za-z0-9_]{1,64}`.
pub const MAX_KEY_LEN: usize = 64;
/// Longest value, in bytes of UTF-8.
pub const MAX_VALUE_LEN: usize = 4096;
/// Most values one session holds.
pub const MAX_KEYS: usize = 64;
/// Largest session file read; a bigger one is corrupt. The largest valid file
/// (64 keys of 64 bytes, 64 values of 4096 bytes all escaped to 3 bytes)
/// is about 790 KiB.
pub const MAX_FILE_LEN: u64 = 1 << 20;
/// Default bound on sessions cached in memory (lowered to the bound on
/// files when that is smaller). The bound on files is `session_max`
/// (`config::DEFAULT_SESSION_MAX` by default).
pub const DEFAULT_MAX_MEMORY: usize = 10_000;
/// Most expired sessions one `sweep` removes, so that a flood expiring all at
/// once is cleared over several loop turns instead of stalling one.
pub const SWEEP_BATCH: usize = 1024;

/// First line of every session file: the format and its version.
const MAGIC: &[u8] = b"localserver-session 1";
/// A temporary file this old is left over from a crash between write and
/// rename (a live one exists for microseconds) and is removed at `open`.
const STALE_TMP: Duration = Duration::from_secs(60);

/// A session id: 128 random bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; 16]);

impl Sid {
    /// A fresh id from the kernel's CSPRNG.
    fn random() -> io::Result<Sid> {
        let mut b = [0u8; 16];
        random_bytes(&mut b)?;
        Ok(Sid(b))
    }

    /// The id as 32 lowercase hex digits (cookie value and file name).
    pub fn to_hex(&self) -> ArrayString<32> {
        let mut out = [0u8; 32];
        for (digits, b) in out.chunks_exact_mut(2).zip(self.0) {
            if let [hi, lo] = digits {
                *hi = hex_digit(b >> 4);
                *lo = hex_digit(b & 0x0F);
            }
        }
        // Hex digits are ASCII, so this never fails.
        ArrayString::from_byte_string(&out).unwrap_or_default()
    }

    /// The id spelled by exactly 32 lowercase hex digits, else `None`.
    pub fn parse_hex(s: &[u8]) -> Option<Sid> {
        if s.len() != 32 {
            return None;
        }
        let mut b = [0u8; 16];
        for (dst, digits) in b.iter_mut().zip(s.chunks_exact(2)) {
            let &[hi, lo] = digits else { return None };
            *dst = (lower_hex_val(hi)? << 4) | lower_hex_val(lo)?;
        }
        Some(Sid(b))
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.to_hex())
    }
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

fn encode(last_used: i64, values: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + values.len() * 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(format!("\nlast_used {last_used}\n").as_bytes());
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
    let mut lines = body.split(|&b| b == b'\n');
    if lines.next()? != MAGIC {
        return None;
    }
    let t = lines.next()?.strip_prefix(b"last_used ")?;
    let last_used = std::str::from_utf8(t).ok()?.parse::<i64>().ok()?;
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
    Some(Record { last_used, values })
}

/// Reads and parses a session file. `Ok(None)`: it exists but is not a valid
/// session (too big, not a regular file, corrupt).
fn read_record(path: &Path) -> io::Result<Option<(Record, Stamp)>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
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

/// Replaces the file of `sid` in `dir` whole (temporary + rename) and returns
/// the stamp of the new file.
fn write_record(
    dir: &Path,
    sid: &Sid,
    last_used: i64,
    values: &BTreeMap<String, String>,
) -> io::Result<Stamp> {
    let hex = sid.to_hex();
    let tmp = dir.join(format!(".{hex}.{}.tmp", std::process::id()));
    let bytes = encode(last_used, values);
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

/// A `.<hex>.<pid>.tmp` name.
fn is_tmp_name(name: &[u8]) -> bool {
    name.starts_with(b".") && name.ends_with(b".tmp")
}

/// A session cached in memory.
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

/// The session store of one worker. See the module documentation.
pub struct SessionStore {
    dir: PathBuf,
    timeout: i64,
    /// How far `last_used` may run ahead of the file before it is written.
    write_every: i64,
    max_memory: usize,
    max_disk: usize,
    /// The cache. Invariant: every key is also in `disk`.
    mem: HashMap<Sid, Session>,
    /// Cached sessions by last use: `tick` → id, oldest first.
    lru: BTreeMap<u64, Sid>,
    tick: u64,
    /// Every session file this worker knows of, with its best known last use.
    disk: HashMap<Sid, i64>,
    /// The same, ordered by last use, oldest (and so expired) first.
    by_age: BTreeSet<(i64, Sid)>,
}

impl SessionStore {
    /// Opens (creating if missing) the store in `dir` and indexes its files:
    /// expired, corrupt and stale temporary files are removed, and the
    /// oldest files beyond `max_disk`. `timeout_secs`, `max_memory` and
    /// `max_disk` are taken as at least 1, and `max_memory` as at most
    /// `max_disk` (the cache only holds sessions that have a file).
    pub fn open(
        dir: &Path,
        timeout_secs: i64,
        max_memory: usize,
        max_disk: usize,
        now: i64,
    ) -> io::Result<SessionStore> {
        create_dir(dir)?;
        let timeout = timeout_secs.max(1);
        let max_disk = max_disk.max(1);
        let mut store = SessionStore {
            dir: dir.to_path_buf(),
            timeout,
            write_every: (timeout / 4).max(1),
            max_memory: max_memory.clamp(1, max_disk),
            max_disk,
            mem: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            disk: HashMap::new(),
            by_age: BTreeSet::new(),
        };
        for entry in fs::read_dir(dir)? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let path = entry.path();
            if let Some(sid) = Sid::parse_hex(name.as_bytes()) {
                match read_record(&path) {
                    Ok(Some((rec, _))) if !store.expired(rec.last_used, now) => {
                        store.index(sid, rec.last_used);
                    }
                    Ok(_) => {
                        let _ = fs::remove_file(&path);
                    }
                    // Vanished meanwhile, or unreadable: nothing to index.
                    Err(_) => {}
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
        store.trim_disk(store.max_disk);
        Ok(store)
    }

    /// The live session named by a cookie value, touching its last use;
    /// `None` if the value is malformed, or names an unknown or expired
    /// session (an expired one is removed, file included).
    pub fn get(&mut self, cookie: &[u8], now: i64) -> Option<Sid> {
        let sid = Sid::parse_hex(cookie)?;
        self.load(&sid, now).then_some(sid)
    }

    /// A new empty session, written to disk at once. Makes room first if
    /// `max_disk` files exist. Fails only if randomness or the disk does.
    pub fn create(&mut self, now: i64) -> io::Result<Sid> {
        let mut sid = Sid::random()?;
        // 2^-128 per try; the loop only guards against a broken generator.
        let mut tries = 0;
        while self.disk.contains_key(&sid) {
            tries += 1;
            if tries > 3 {
                return Err(io::Error::other("getrandom keeps repeating itself"));
            }
            sid = Sid::random()?;
        }
        self.trim_disk(self.max_disk - 1);
        let values = BTreeMap::new();
        let stamp = write_record(&self.dir, &sid, now, &values)?;
        self.index(sid, now);
        self.cache(
            sid,
            Session {
                values,
                last_used: now,
                saved_last_used: now,
                stamp,
                tick: 0,
            },
        );
        Ok(sid)
    }

    /// The session's values in key order, as of the last `get` or `set`
    /// (empty if the session is not cached: call `get` first).
    pub fn values(&self, sid: &Sid) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.mem
            .get(sid)
            .into_iter()
            .flat_map(|s| s.values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// One value, as `values` sees it.
    pub fn value(&self, sid: &Sid, key: &str) -> Option<&str> {
        self.mem.get(sid)?.values.get(key).map(String::as_str)
    }

    /// Sets `key` to `value`, or removes it if `value` is empty, and writes
    /// the file; this is a use of the session. `false` (and nothing changed)
    /// if the key or value is invalid, the session already holds `MAX_KEYS`
    /// other keys, the session is gone or expired, or the write failed.
    pub fn set(&mut self, sid: &Sid, key: &str, value: &str, now: i64) -> bool {
        if !valid_key(key) || !valid_value(value) || !self.load(sid, now) {
            return false;
        }
        let Some(s) = self.mem.get_mut(sid) else {
            return false;
        };
        let old = match s.values.get(key) {
            Some(v) if v == value => return true,
            None if value.is_empty() => return true,
            None if s.values.len() >= MAX_KEYS => return false,
            old => old.cloned(),
        };
        if value.is_empty() {
            s.values.remove(key);
        } else {
            s.values.insert(key.to_owned(), value.to_owned());
        }
        if self.save(sid).is_ok() {
            return true;
        }
        // Memory stays what the file says.
        if let Some(s) = self.mem.get_mut(sid) {
            match old {
                Some(v) => s.values.insert(key.to_owned(), v),
                None => s.values.remove(key),
            };
        }
        false
    }

    /// Removes the session, from memory and disk.
    pub fn destroy(&mut self, sid: &Sid) {
        self.remove(sid);
    }

    /// Removes expired sessions, from memory and disk, at most `SWEEP_BATCH`
    /// per call. Before removing one, its file is checked: another worker may
    /// have used it since. Call every few seconds.
    pub fn sweep(&mut self, now: i64) {
        for _ in 0..SWEEP_BATCH {
            let Some(&(last_used, sid)) = self.by_age.first() else {
                return;
            };
            if !self.expired(last_used, now) {
                return;
            }
            let fresh = if self.mem.contains_key(&sid) {
                self.refresh(&sid)
                    .then(|| self.mem.get(&sid).map(|s| s.last_used))
                    .flatten()
            } else {
                match read_record(&self.path(&sid)) {
                    Ok(Some((rec, _))) => Some(rec.last_used.max(last_used)),
                    _ => None,
                }
            };
            match fresh {
                // Moves back in `by_age`, so the loop makes progress.
                Some(t) if !self.expired(t, now) => self.index(sid, t),
                _ => self.remove(&sid),
            }
        }
    }

    /// Writes every `last_used` not yet on disk (at a clean stop).
    pub fn flush(&mut self) {
        let pending: Vec<Sid> = self
            .mem
            .iter()
            .filter(|(_, s)| s.last_used > s.saved_last_used)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in pending {
            self.write_pending(&sid);
        }
    }

    /// Sessions cached in memory.
    pub fn len_memory(&self) -> usize {
        self.mem.len()
    }

    /// Session files this worker knows of.
    pub fn len_disk(&self) -> usize {
        self.disk.len()
    }

    fn path(&self, sid: &Sid) -> PathBuf {
        self.dir.join(sid.to_hex().as_str())
    }

    fn expired(&self, last_used: i64, now: i64) -> bool {
        last_used.saturating_add(self.timeout) <= now
    }

    /// Makes `sid` live in the cache and touches it: `false` if it is gone,
    /// corrupt or expired (then removed).
    fn load(&mut self, sid: &Sid, now: i64) -> bool {
        if self.mem.contains_key(sid) {
            if !self.refresh(sid) {
                self.remove(sid);
                return false;
            }
        } else {
            match read_record(&self.path(sid)) {
                Ok(Some((rec, stamp))) => {
                    // Known to this worker or not (another worker made it).
                    let last_used = rec
                        .last_used
                        .max(self.disk.get(sid).copied().unwrap_or(i64::MIN));
                    self.index(*sid, last_used);
                    self.cache(
                        *sid,
                        Session {
                            values: rec.values,
                            last_used,
                            saved_last_used: rec.last_used,
                            stamp,
                            tick: 0,
                        },
                    );
                }
                Ok(None) => {
                    self.remove(sid);
                    return false;
                }
                Err(_) => {
                    // Gone (or unreadable, which serves no better).
                    self.forget(sid);
                    return false;
                }
            }
        }
        let last_used = self.mem.get(sid).map_or(i64::MIN, |s| s.last_used);
        if self.expired(last_used, now) {
            self.remove(sid);
            return false;
        }
        self.touch(sid, now);
        true
    }

    /// Brings a cached session up to date with its file. `false` if the file
    /// is gone or corrupt. When the file cannot be checked (an I/O error
    /// other than absence), the cached copy is used.
    fn refresh(&mut self, sid: &Sid) -> bool {
        let path = self.path(sid);
        let Some(s) = self.mem.get_mut(sid) else {
            return false;
        };
        match fs::symlink_metadata(&path) {
            Ok(m) if Stamp::of(&m) == s.stamp => return true,
            Ok(_) => {}
            Err(e) => return !is_gone(&e),
        }
        let last_used = match read_record(&path) {
            Ok(Some((rec, stamp))) => {
                s.values = rec.values;
                s.last_used = s.last_used.max(rec.last_used);
                s.saved_last_used = rec.last_used;
                s.stamp = stamp;
                s.last_used
            }
            Ok(None) => return false,
            Err(e) => return !is_gone(&e),
        };
        self.index(*sid, last_used);
        true
    }

    /// Marks a cached session used at `now`; writes `last_used` once it is
    /// `write_every` ahead of the file.
    fn touch(&mut self, sid: &Sid, now: i64) {
        self.tick += 1;
        let Some(s) = self.mem.get_mut(sid) else {
            return;
        };
        self.lru.remove(&s.tick);
        s.tick = self.tick;
        self.lru.insert(s.tick, *sid);
        s.last_used = s.last_used.max(now);
        let last_used = s.last_used;
        let due = last_used.saturating_sub(s.saved_last_used) >= self.write_every;
        self.index(*sid, last_used);
        if due {
            // On failure the write is retried at the next use.
            let _ = self.save(sid);
        }
    }

    /// Writes a cached session to its file.
    fn save(&mut self, sid: &Sid) -> io::Result<()> {
        let Some(s) = self.mem.get_mut(sid) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        s.stamp = write_record(&self.dir, sid, s.last_used, &s.values)?;
        s.saved_last_used = s.last_used;
        Ok(())
    }

    /// Writes a cached session's `last_used` if the file lags, after taking
    /// in whatever another worker wrote meanwhile.
    fn write_pending(&mut self, sid: &Sid) {
        let lags = self
            .mem
            .get(sid)
            .is_some_and(|s| s.last_used > s.saved_last_used);
        if !lags {
            return;
        }
        if self.refresh(sid) {
            let _ = self.save(sid);
        } else {
            self.remove(sid);
        }
    }

    /// Puts a session in the cache (its file exists and is indexed), first
    /// evicting the least recently used ones beyond `max_memory`.
    fn cache(&mut self, sid: Sid, mut session: Session) {
        while self.mem.len() >= self.max_memory {
            let Some((_, old)) = self.lru.pop_first() else {
                break;
            };
            self.write_pending(&old);
            if let Some(s) = self.mem.remove(&old) {
                self.lru.remove(&s.tick);
            }
        }
        self.tick += 1;
        session.tick = self.tick;
        self.lru.insert(self.tick, sid);
        self.mem.insert(sid, session);
    }

    /// Records that `sid` has a file, last used at `last_used`.
    fn index(&mut self, sid: Sid, last_used: i64) {
        if let Some(old) = self.disk.insert(sid, last_used) {
            self.by_age.remove(&(old, sid));
        }
        self.by_age.insert((last_used, sid));
    }

    /// Removes the sessions used longest ago (expired ones are among them
    /// first) until at most `limit` files remain.
    fn trim_disk(&mut self, limit: usize) {
        while self.disk.len() > limit {
            let Some(&(_, sid)) = self.by_age.first() else {
                break;
            };
            self.remove(&sid);
        }
    }

    /// Drops a session from memory and the index, keeping its file.
    fn forget(&mut self, sid: &Sid) {
        if let Some(s) = self.mem.remove(sid) {
            self.lru.remove(&s.tick);
        }
        if let Some(t) = self.disk.remove(sid) {
            self.by_age.remove(&(t, *sid));
        }
    }

    /// Drops a session from memory, the index and the disk. A file that
    /// cannot be removed is forgotten all the same: the bound is on what
    /// this worker tracks, and a disk refusing unlinks refuses writes too.
    fn remove(&mut self, sid: &Sid) {
        self.forget(sid);
        let _ = fs::remove_file(self.path(sid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::xorshift;

    const T: i64 = 1_000; // timeout
    const T0: i64 = 1_700_000_000;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let d = std::env::temp_dir().join(format!("ls-session-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            TempDir(d)
        }

        /// File names in the directory, sorted.
        fn files(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
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

    fn open(d: &TempDir, max_memory: usize, max_disk: usize, now: i64) -> SessionStore {
        SessionStore::open(&d.0, T, max_memory, max_disk, now).unwrap()
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
    fn sid_hex_round_trip_and_rejects() {
        let sid = Sid::random().unwrap();
        let hex = sid.to_hex();
        assert_eq!(hex.len(), 32);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(Sid::parse_hex(hex.as_bytes()), Some(sid));
        assert_eq!(format!("{sid}"), hex.as_str());
        assert_ne!(Sid::random().unwrap(), sid);

        let fixed = Sid([
            0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xff, 0x10, 0x20, 0x30, 0x40,
            0x50, 0x60,
        ]);
        assert_eq!(fixed.to_hex().as_str(), "000123456789abcdefff102030405060");
        let bad: &[&[u8]] = &[
            b"",
            b"0",
            b"000123456789abcdefff10203040506",
            b"000123456789abcdefff1020304050600",
            b"000123456789ABCDEFFF102030405060",
            b"000123456789abcdefff10203040506g",
            b"000123456789abcdefff10203040506 ",
            b"+00123456789abcdefff102030405060",
            b"../../../../../../../etc/passwd..",
            &[0xFF; 32],
        ];
        for b in bad {
            assert_eq!(Sid::parse_hex(b), None, "{:?}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn file_format_round_trip_and_corruption() {
        let mut values = BTreeMap::new();
        values.insert("a".to_owned(), "x=y%z\nw\r".to_owned());
        values.insert("name".to_owned(), "Zoé".to_owned());
        let bytes = encode(T0, &values);
        assert_eq!(
            bytes,
            b"localserver-session 1\nlast_used 1700000000\na=x%3Dy%25z%0Aw%0D\nname=Zo\xC3\xA9\n"
        );
        assert_eq!(
            decode(&bytes),
            Some(Record {
                last_used: T0,
                values: values.clone()
            })
        );
        assert_eq!(
            decode(&encode(-5, &BTreeMap::new())),
            Some(Record {
                last_used: -5,
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
                assert_eq!(decode(&encode(rec.last_used, &rec.values)), Some(rec));
            }
        }
    }

    #[test]
    fn create_get_round_trip() {
        let d = TempDir::new("roundtrip");
        let mut s = open(&d, 100, 100, T0);
        let sid = s.create(T0).unwrap();
        let hex = sid.to_hex();
        assert_eq!(s.get(hex.as_bytes(), T0 + 1), Some(sid));
        assert_eq!(s.len_memory(), 1);
        assert_eq!(s.len_disk(), 1);
        assert_eq!(d.files(), vec![hex.to_string()]);
        assert_eq!(vals(&s, &sid), vec![]);
        let text = fs::read_to_string(d.0.join(hex.as_str())).unwrap();
        assert_eq!(text, format!("localserver-session 1\nlast_used {T0}\n"));
        let mode = fs::metadata(d.0.join(hex.as_str())).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn malformed_and_forged_ids_are_none() {
        let d = TempDir::new("forged");
        let mut s = open(&d, 100, 100, T0);
        let sid = s.create(T0).unwrap();
        let hex = sid.to_hex();
        let upper = hex.to_ascii_uppercase();
        let forged = Sid([7; 16]).to_hex();
        let cases: &[&[u8]] = &[
            b"",
            b"abc",
            upper.as_bytes(),
            forged.as_bytes(),
            &hex.as_bytes()[..31],
            b"../../../../../../../../etc/pass",
            b"................................",
        ];
        for c in cases {
            assert_eq!(s.get(c, T0), None, "{:?}", String::from_utf8_lossy(c));
        }
        // A file that is not a session is not one, and is removed.
        let junk = Sid([9; 16]).to_hex();
        fs::write(d.0.join(junk.as_str()), b"hello").unwrap();
        assert_eq!(s.get(junk.as_bytes(), T0), None);
        assert!(!d.0.join(junk.as_str()).exists());
        // The real one is untouched.
        assert_eq!(s.get(hex.as_bytes(), T0), Some(sid));
    }

    #[test]
    fn expiry_with_injected_clock() {
        let d = TempDir::new("expiry");
        let mut s = open(&d, 100, 100, T0);
        let sid = s.create(T0).unwrap();
        let hex = sid.to_hex();
        assert_eq!(s.get(hex.as_bytes(), T0 + T - 1), Some(sid));
        // Idle exactly `timeout` since the last use: gone, file included.
        assert_eq!(s.get(hex.as_bytes(), T0 + T - 1 + T), None);
        assert!(d.files().is_empty());
        assert_eq!((s.len_memory(), s.len_disk()), (0, 0));
        // And it stays gone.
        assert_eq!(s.get(hex.as_bytes(), T0), None);
    }

    #[test]
    fn use_extends_life() {
        let d = TempDir::new("extend");
        let mut s = open(&d, 100, 100, T0);
        let sid = s.create(T0).unwrap();
        let hex = sid.to_hex();
        // Used every 0.9 timeout for 10 timeouts: alive throughout.
        for i in 1..=11 {
            assert_eq!(s.get(hex.as_bytes(), T0 + i * 9 * T / 10), Some(sid), "{i}");
        }
        assert_eq!(s.get(hex.as_bytes(), T0 + 11 * 9 * T / 10 + T), None);
    }

    #[test]
    fn last_used_reaches_the_file_at_most_every_quarter_timeout() {
        let d = TempDir::new("lazywrite");
        let mut s = open(&d, 100, 100, T0);
        let sid = s.create(T0).unwrap();
        let hex = sid.to_hex();
        let path = d.0.join(hex.as_str());
        let on_disk = || decode(&fs::read(&path).unwrap()).unwrap().last_used;
        s.get(hex.as_bytes(), T0 + T / 4 - 1).unwrap();
        assert_eq!(on_disk(), T0);
        s.get(hex.as_bytes(), T0 + T / 4).unwrap();
        assert_eq!(on_disk(), T0 + T / 4);
        s.get(hex.as_bytes(), T0 + T / 4 + 5).unwrap();
        assert_eq!(on_disk(), T0 + T / 4);
        s.flush();
        assert_eq!(on_disk(), T0 + T / 4 + 5);
    }

    #[test]
    fn values_set_remove_invalid() {
        let d = TempDir::new("values");
        let mut s = open(&d, 100, 100, T0);
        let sid = s.create(T0).unwrap();
        assert!(s.set(&sid, "user", "zoé", T0));
        assert!(s.set(&sid, "count", "1", T0));
        assert!(s.set(&sid, "count", "2", T0));
        assert!(s.set(&sid, "odd", "a=b%c\nd\re", T0));
        assert_eq!(
            vals(&s, &sid),
            kv(&[("count", "2"), ("odd", "a=b%c\nd\re"), ("user", "zoé")])
        );
        assert_eq!(s.value(&sid, "user"), Some("zoé"));
        // Remove, and removing what is not there.
        assert!(s.set(&sid, "odd", "", T0));
        assert!(s.set(&sid, "never", "", T0));
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
            assert!(!s.set(&sid, k, v, T0), "{k:?}");
        }
        assert!(s.set(&sid, &"k".repeat(64), &"v".repeat(4096), T0));
        assert!(s.set(&sid, &"k".repeat(64), "", T0));
        // A session holds at most MAX_KEYS keys; replacing one is still fine.
        for i in 2..MAX_KEYS {
            assert!(s.set(&sid, &format!("k{i}"), "x", T0), "{i}");
        }
        assert_eq!(s.values(&sid).count(), MAX_KEYS);
        assert!(!s.set(&sid, "one_more", "x", T0));
        assert!(s.set(&sid, "k2", "y", T0));
        // Unknown or expired sessions take no values.
        assert!(!s.set(&Sid([1; 16]), "a", "b", T0));
        assert!(!s.set(&sid, "a", "b", T0 + T));
        assert_eq!(s.values(&sid).count(), 0);
    }

    #[test]
    fn persistence_across_restart() {
        let d = TempDir::new("restart");
        let mut s = open(&d, 100, 100, T0);
        let a = s.create(T0).unwrap();
        let b = s.create(T0).unwrap();
        assert!(s.set(&a, "user", "alice", T0 + 10));
        s.get(b.to_hex().as_bytes(), T0 + 20).unwrap();
        s.flush();
        drop(s);

        let mut s = open(&d, 100, 100, T0 + 30);
        assert_eq!(s.len_disk(), 2);
        assert_eq!(s.len_memory(), 0);
        assert_eq!(s.get(a.to_hex().as_bytes(), T0 + 30), Some(a));
        assert_eq!(vals(&s, &a), kv(&[("user", "alice")]));
        // b's last use (T0 + 20) was flushed, so it lives until T0 + 20 + T.
        assert_eq!(s.get(b.to_hex().as_bytes(), T0 + 20 + T - 1), Some(b));
        drop(s);

        // Opening after the timeout removes what expired.
        let s = open(&d, 100, 100, T0 + 30 + 2 * T);
        assert_eq!(s.len_disk(), 0);
        assert!(d.files().is_empty());
    }

    #[test]
    fn memory_bound_is_lru_and_disk_keeps_the_rest() {
        let d = TempDir::new("lru");
        let mut s = open(&d, 10, 100, T0);
        let sids: Vec<Sid> = (0..50).map(|i| s.create(T0 + i).unwrap()).collect();
        assert_eq!(s.len_memory(), 10);
        assert_eq!(s.len_disk(), 50);
        // The 10 most recent are the cached ones.
        for sid in &sids[40..] {
            assert!(s.mem.contains_key(sid));
        }
        // Using an old one brings it back and evicts the least recent (40).
        assert!(s.get(sids[0].to_hex().as_bytes(), T0 + 60).is_some());
        assert!(s.mem.contains_key(&sids[0]) && !s.mem.contains_key(&sids[40]));
        for sid in &sids {
            assert_eq!(s.get(sid.to_hex().as_bytes(), T0 + 60), Some(*sid));
            assert!(s.len_memory() <= 10);
        }
        assert_eq!(d.files().len(), 50);
    }

    #[test]
    fn memory_eviction_writes_pending_last_used() {
        let d = TempDir::new("evictwrite");
        let mut s = open(&d, 1, 100, T0);
        let a = s.create(T0).unwrap();
        s.get(a.to_hex().as_bytes(), T0 + 5).unwrap();
        s.create(T0 + 6).unwrap(); // evicts a from memory
        let text = fs::read(d.0.join(a.to_hex().as_str())).unwrap();
        assert_eq!(decode(&text).unwrap().last_used, T0 + 5);
    }

    #[test]
    fn disk_bound_evicts_expired_then_oldest() {
        let d = TempDir::new("diskbound");
        let mut s = open(&d, 5, 20, T0);
        // 100 creations, time running: never more than 20 files.
        let sids: Vec<Sid> = (0..100).map(|i| s.create(T0 + i).unwrap()).collect();
        assert_eq!(s.len_disk(), 20);
        assert_eq!(d.files().len(), 20);
        assert!(s.len_memory() <= 5);
        // The survivors are the 20 newest.
        for (i, sid) in sids.iter().enumerate() {
            assert_eq!(
                s.get(sid.to_hex().as_bytes(), T0 + 100).is_some(),
                i >= 80,
                "{i}"
            );
        }

        // Expired first: a is old but recently used, b is not, c is expired.
        let d = TempDir::new("diskorder");
        let mut s = open(&d, 10, 3, T0);
        let c = s.create(T0).unwrap();
        let a = s.create(T0 + 1).unwrap();
        let b = s.create(T0 + 2).unwrap();
        s.get(a.to_hex().as_bytes(), T0 + T).unwrap(); // c expired now
        let x = s.create(T0 + T + 1).unwrap();
        assert!(!d.0.join(c.to_hex().as_str()).exists());
        let y = s.create(T0 + T + 2).unwrap();
        // Then the oldest live one: b (used at T0 + 2), not a (T0 + T).
        assert!(!d.0.join(b.to_hex().as_str()).exists());
        for sid in [a, x, y] {
            assert_eq!(s.get(sid.to_hex().as_bytes(), T0 + T + 3), Some(sid));
        }
        assert_eq!(d.files().len(), 3);
    }

    #[test]
    fn cookieless_flood_stays_bounded() {
        let d = TempDir::new("flood");
        let mut s = open(&d, 10, 20, T0);
        for i in 0..2_000 {
            s.create(T0 + i / 100).unwrap();
            assert!(s.len_memory() <= 10 && s.len_disk() <= 20);
        }
        assert_eq!(d.files().len(), 20);
        assert!(s.lru.len() <= 10 && s.by_age.len() <= 20);
    }

    #[test]
    fn memory_bound_never_exceeds_the_disk_bound() {
        // A small session_max makes a small cache, even when the sessions
        // come from another worker (found by `get`, never created here, so
        // no creation trims this worker's index).
        let d = TempDir::new("memcap");
        let mut s = open(&d, 100, 3, T0);
        let mut maker = open(&d, 100, 100, T0);
        let sids: Vec<Sid> = (0..10).map(|i| maker.create(T0 + i).unwrap()).collect();
        for sid in &sids {
            assert_eq!(s.get(sid.to_hex().as_bytes(), T0 + 20), Some(*sid));
            assert!(s.len_memory() <= 3, "{} cached", s.len_memory());
        }
        // The next creation trims the index back to the bound.
        s.create(T0 + 21).unwrap();
        assert_eq!(s.len_disk(), 3);
        assert_eq!(d.files().len(), 3);
    }

    #[test]
    fn open_trims_to_max_disk_and_cleans_leftovers() {
        let d = TempDir::new("opentrim");
        let mut s = open(&d, 10, 100, T0);
        let sids: Vec<Sid> = (0..10).map(|i| s.create(T0 + i).unwrap()).collect();
        drop(s);
        // A leftover temporary, old and new; a foreign file is left alone.
        let old_tmp = d.0.join(".deadbeef.1.tmp");
        fs::File::create(&old_tmp)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        fs::write(d.0.join(".fresh.2.tmp"), b"").unwrap();
        fs::write(d.0.join("README"), b"x").unwrap();
        let mut s = open(&d, 10, 4, T0 + 20);
        assert_eq!(s.len_disk(), 4);
        assert!(!old_tmp.exists());
        assert!(d.0.join(".fresh.2.tmp").exists());
        assert!(d.0.join("README").exists());
        for (i, sid) in sids.iter().enumerate() {
            assert_eq!(s.get(sid.to_hex().as_bytes(), T0 + 20).is_some(), i >= 6);
        }
    }

    #[test]
    fn sweep_removes_expired_only() {
        let d = TempDir::new("sweep");
        let mut s = open(&d, 3, 100, T0);
        let old: Vec<Sid> = (0..5).map(|_| s.create(T0).unwrap()).collect();
        let young: Vec<Sid> = (0..5).map(|_| s.create(T0 + T / 2).unwrap()).collect();
        s.get(old[0].to_hex().as_bytes(), T0 + T / 2).unwrap();
        s.sweep(T0 + T - 1);
        assert_eq!(s.len_disk(), 10);
        s.sweep(T0 + T);
        assert_eq!(s.len_disk(), 6);
        assert_eq!(d.files().len(), 6);
        assert!(s.len_memory() <= 3);
        for sid in young.iter().chain(&old[..1]) {
            assert_eq!(s.get(sid.to_hex().as_bytes(), T0 + T), Some(*sid));
        }
        s.sweep(T0 + 10 * T);
        assert_eq!((s.len_disk(), s.len_memory()), (0, 0));
        assert!(d.files().is_empty());
    }

    #[test]
    fn sweep_is_batched() {
        let d = TempDir::new("sweepbatch");
        let mut s = open(&d, 10, 10_000, T0);
        for _ in 0..SWEEP_BATCH + 10 {
            s.create(T0).unwrap();
        }
        s.sweep(T0 + T);
        assert_eq!(s.len_disk(), 10);
        s.sweep(T0 + T);
        assert_eq!(s.len_disk(), 0);
    }

    #[test]
    fn writes_leave_no_temporaries() {
        let d = TempDir::new("notmp");
        let mut s = open(&d, 2, 5, T0);
        for i in 0..20 {
            let sid = s.create(T0 + i).unwrap();
            assert!(s.set(&sid, "n", &i.to_string(), T0 + i));
            s.get(sid.to_hex().as_bytes(), T0 + i + T / 2).unwrap();
        }
        s.flush();
        let files = d.files();
        assert_eq!(files.len(), 5);
        assert!(
            files.iter().all(|f| Sid::parse_hex(f.as_bytes()).is_some()),
            "{files:?}"
        );
    }

    #[test]
    fn destroy_removes_memory_and_file() {
        let d = TempDir::new("destroy");
        let mut s = open(&d, 10, 10, T0);
        let sid = s.create(T0).unwrap();
        s.destroy(&sid);
        assert!(d.files().is_empty());
        assert_eq!((s.len_memory(), s.len_disk()), (0, 0));
        assert_eq!(s.get(sid.to_hex().as_bytes(), T0), None);
        s.destroy(&sid); // twice is harmless
    }

    #[test]
    fn two_workers_share_one_directory() {
        let d = TempDir::new("shared");
        let mut a = open(&d, 10, 100, T0);
        let mut b = open(&d, 10, 100, T0);
        let sid = a.create(T0).unwrap();
        let hex = sid.to_hex();
        // Created by a, found by b.
        assert_eq!(b.get(hex.as_bytes(), T0 + 1), Some(sid));
        assert_eq!(b.len_disk(), 1);
        // Values set by one are seen by the other's next get, both ways,
        // while both keep the session cached.
        for i in 0..10 {
            let v = i.to_string();
            assert!(a.set(&sid, "n", &v, T0 + 2));
            assert_eq!(b.get(hex.as_bytes(), T0 + 2), Some(sid));
            assert_eq!(b.value(&sid, "n"), Some(v.as_str()), "{i}");
            let w = format!("b{i}");
            assert!(b.set(&sid, "m", &w, T0 + 3));
            assert_eq!(a.get(hex.as_bytes(), T0 + 3), Some(sid));
            assert_eq!(vals(&a, &sid), kv(&[("m", &w), ("n", &v)]), "{i}");
        }
        // A value set by one is not lost by the other's later write.
        assert!(a.set(&sid, "x", "1", T0 + 4));
        assert!(b.set(&sid, "y", "2", T0 + 4));
        assert_eq!(a.get(hex.as_bytes(), T0 + 5), Some(sid));
        assert_eq!(
            vals(&a, &sid),
            kv(&[("m", "b9"), ("n", "9"), ("x", "1"), ("y", "2")])
        );
        // Destroyed by one (log-out): gone for the other too.
        b.destroy(&sid);
        assert_eq!(a.get(hex.as_bytes(), T0 + 6), None);
        assert_eq!((a.len_memory(), a.len_disk()), (0, 0));
    }

    #[test]
    fn sweep_spares_a_session_another_worker_used() {
        let d = TempDir::new("sharedsweep");
        let mut a = open(&d, 10, 100, T0);
        let mut b = open(&d, 10, 100, T0);
        let sid = a.create(T0).unwrap();
        let hex = sid.to_hex();
        // b keeps using it and writes its last use every T/4.
        for t in (0..=2 * T).step_by((T / 4) as usize) {
            assert_eq!(b.get(hex.as_bytes(), T0 + t), Some(sid));
        }
        // a's own idea of it is 2T old, but the file says otherwise.
        a.sweep(T0 + 2 * T);
        assert!(d.0.join(hex.as_str()).exists());
        assert_eq!(a.get(hex.as_bytes(), T0 + 2 * T), Some(sid));
    }

    #[test]
    fn failing_disk_makes_create_fail_without_panic() {
        let d = TempDir::new("faildisk");
        let mut s = open(&d, 10, 10, T0);
        let sid = s.create(T0).unwrap();
        // Replace the directory by a plain file: every write now fails.
        fs::remove_dir_all(&d.0).unwrap();
        fs::write(&d.0, b"not a directory").unwrap();
        assert!(s.create(T0).is_err());
        assert!(!s.set(&sid, "a", "b", T0));
        assert_eq!(s.get(sid.to_hex().as_bytes(), T0), None);
        s.sweep(T0 + 5 * T);
        s.flush();
        assert_eq!(s.len_memory(), 0);
        fs::remove_file(&d.0).unwrap();
        // The directory comes back on the next write.
        assert!(s.create(T0).is_ok());
        assert!(SessionStore::open(&d.0.join("x/y"), T, 1, 1, T0).is_ok());
    }

    #[test]
    fn oversized_file_is_ignored() {
        let d = TempDir::new("oversized");
        let s = open(&d, 10, 10, T0);
        drop(s);
        let sid = Sid([3; 16]);
        let mut big = encode(T0, &BTreeMap::new());
        big.resize(MAX_FILE_LEN as usize + 10, b'a');
        fs::write(d.0.join(sid.to_hex().as_str()), &big).unwrap();
        let mut s = open(&d, 10, 10, T0);
        assert_eq!(s.len_disk(), 0);
        assert_eq!(s.get(sid.to_hex().as_bytes(), T0), None);
    }
}
