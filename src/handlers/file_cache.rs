//! An open-file cache, as nginx's `open_file_cache`: the descriptor and
//! `fstat` of files served recently, and the bytes of small ones, so a hot
//! static GET costs no `open`, `fstat` or `close`, and a small file leaves
//! with its head in one `writev`.
//!
//! Entries are keyed by anchor folder + path beneath it, exactly what
//! `Dir::open_file` was given, so the cache only memoises lookups that were
//! already checked to stay beneath the root. An entry is trusted for the
//! rest of the wall-clock second it was checked in; after that the path is
//! looked up again (`stat` beneath the anchor) and the entry dropped if the
//! file changed (inode, size or mtime), so a replaced file is served within a
//! second. The server's own writes (uploads, DELETE) clear the cache at once.

use std::collections::HashMap;
use std::rc::Rc;

use crate::sys::{File, Meta};

/// Most entries kept.
const MAX_ENTRIES: usize = 4096;
/// Files up to this size are kept in memory.
pub const SMALL_FILE: u64 = 16 * 1024;
/// Total bytes of small files kept in memory.
const MAX_BYTES: usize = 32 << 20;

/// One cached file.
#[derive(Clone, Debug)]
pub struct Cached {
    pub file: Rc<File>,
    pub meta: Meta,
    /// The whole file, when it is small.
    pub bytes: Option<Rc<[u8]>>,
}

struct Entry {
    cached: Cached,
    /// The wall-clock second it was last checked against the filesystem.
    checked: i64,
}

/// The cache.
#[derive(Default)]
pub struct FileCache {
    map: HashMap<Box<[u8]>, Entry>,
    /// Reused to build lookup keys without allocating.
    key: Vec<u8>,
    bytes: usize,
    /// The current wall-clock second.
    now: i64,
}

impl FileCache {
    /// Set the current second (once per loop turn).
    pub fn set_now(&mut self, now: i64) {
        self.now = now;
    }

    fn make_key(&mut self, base: &[u8], rel: &[u8]) {
        self.key.clear();
        self.key.extend_from_slice(base);
        // NUL cannot appear in a path: the pair is unambiguous.
        self.key.push(0);
        self.key.extend_from_slice(rel);
    }

    /// A fresh entry for `rel` beneath `base` (checked this second).
    pub fn fresh(&mut self, base: &[u8], rel: &[u8]) -> Option<Cached> {
        self.make_key(base, rel);
        let now = self.now;
        self.map
            .get(self.key.as_slice())
            .filter(|e| e.checked == now)
            .map(|e| e.cached.clone())
    }

    /// An entry that may be stale, for revalidation: if `current` (what the
    /// path names now) is the same file, the entry is refreshed and returned.
    pub fn revalidate(&mut self, base: &[u8], rel: &[u8], current: &Meta) -> Option<Cached> {
        self.make_key(base, rel);
        let now = self.now;
        let e = self.map.get_mut(self.key.as_slice())?;
        let m = &e.cached.meta;
        if m.ino == current.ino && m.size == current.size && m.mtime == current.mtime {
            e.checked = now;
            // Small, but on disk when it was opened: in memory by now?
            if e.cached.bytes.is_none()
                && let Ok(size) = usize::try_from(m.size)
                && m.size <= SMALL_FILE
                && self.bytes + size <= MAX_BYTES
            {
                e.cached.bytes = read_small(&e.cached.file, size);
                self.bytes += e.cached.bytes.as_ref().map_or(0, |b| b.len());
            }
            return Some(e.cached.clone());
        }
        if let Some(old) = self.map.remove(self.key.as_slice()) {
            self.bytes -= old.cached.bytes.map_or(0, |b| b.len());
        }
        None
    }

    /// Remember a file just opened; its bytes are read when it is small.
    pub fn insert(&mut self, base: &[u8], rel: &[u8], file: File, meta: Meta) -> Cached {
        let mut bytes = None;
        let small = usize::try_from(meta.size)
            .ok()
            .filter(|_| meta.size <= SMALL_FILE);
        if let Some(size) = small.filter(|n| self.bytes + n <= MAX_BYTES) {
            bytes = read_small(&file, size);
        }
        let cached = Cached {
            file: Rc::new(file),
            meta,
            bytes,
        };
        if self.map.len() >= MAX_ENTRIES {
            self.evict();
        }
        self.bytes += cached.bytes.as_ref().map_or(0, |b| b.len());
        self.make_key(base, rel);
        let key: Box<[u8]> = self.key.as_slice().into();
        if let Some(old) = self.map.insert(
            key,
            Entry {
                cached: cached.clone(),
                checked: self.now,
            },
        ) {
            self.bytes -= old.cached.bytes.map_or(0, |b| b.len());
        }
        cached
    }

    /// Make room: drop what was not used in the last minute, or everything.
    fn evict(&mut self) {
        let cutoff = self.now - 60;
        self.map.retain(|_, e| e.checked >= cutoff);
        if self.map.len() >= MAX_ENTRIES {
            self.map.clear();
        }
        self.bytes = self
            .map
            .values()
            .map(|e| e.cached.bytes.as_ref().map_or(0, |b| b.len()))
            .sum();
    }

    /// Forget everything (after the server itself changed files).
    pub fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The `size` bytes of a small file, if they are all in memory. Reading
/// them from the disk here would make the whole loop wait (behind the
/// read-ahead of every download on a busy disk: 0.2-0.7 s for a 4 KiB file
/// under four cold downloads at 100 MB/s); such a file is sent as a file
/// body instead, which waits for its pages aside, and its bytes are kept at
/// a later revalidation. A file that changes while read is kept by
/// descriptor only.
fn read_small(file: &File, size: usize) -> Option<Rc<[u8]>> {
    let mut buf = vec![0u8; size];
    (file.read_resident(&mut buf, 0).ok() == Some(size)).then(|| Rc::<[u8]>::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Dir;

    #[test]
    fn hit_within_the_second_revalidate_after_it() {
        let d = std::env::temp_dir().join(format!("ls-fcache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a.txt"), b"one").unwrap();
        let dir = Dir::open(&d).unwrap();
        let mut c = FileCache::default();
        c.set_now(100);
        assert!(c.fresh(b"/r", b"a.txt").is_none());
        let f = dir.open_file(b"a.txt").unwrap();
        let m = f.meta().unwrap();
        let got = c.insert(b"/r", b"a.txt", f, m);
        assert_eq!(got.bytes.as_deref(), Some(&b"one"[..]));
        assert!(c.fresh(b"/r", b"a.txt").is_some());
        assert!(
            c.fresh(b"/other", b"a.txt").is_none(),
            "keyed by anchor too"
        );
        c.set_now(101);
        assert!(c.fresh(b"/r", b"a.txt").is_none(), "stale after its second");
        assert!(c.revalidate(b"/r", b"a.txt", &m).is_some());
        assert!(c.fresh(b"/r", b"a.txt").is_some());
        // Replaced by rename: another inode, so the entry goes.
        std::fs::write(d.join("b.txt"), b"two!").unwrap();
        std::fs::rename(d.join("b.txt"), d.join("a.txt")).unwrap();
        c.set_now(102);
        let now = dir.stat(b"a.txt").unwrap();
        assert!(c.revalidate(b"/r", b"a.txt", &now).is_none());
        assert!(c.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_small_file_on_disk_is_not_read_on_the_loop() {
        let d = std::env::temp_dir().join(format!("ls-fcache-cold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("s.txt"), [5u8; 4000]).unwrap();
        let dir = Dir::open(&d).unwrap();
        let mut c = FileCache::default();
        c.set_now(100);
        // Opened while its page is on disk (DONTNEED may skip a page it
        // cannot drop at that moment: again): kept by descriptor only.
        let mut m = None;
        for _ in 0..50 {
            let f = dir.open_file(b"s.txt").unwrap();
            f.evict().unwrap();
            let meta = f.meta().unwrap();
            if c.insert(b"/r", b"s.txt", f, meta).bytes.is_none() {
                m = Some(meta);
                break;
            }
            c.clear();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let Some(m) = m else {
            let f = dir.open_file(b"s.txt").unwrap();
            let unknown = f.residency(0) == crate::sys::Residency::Unknown;
            assert!(unknown, "read from the disk on the loop, 50 times");
            eprintln!(
                "{}: the page cache cannot be probed here: skipped",
                d.display()
            );
            return;
        };
        assert_eq!(c.bytes, 0);
        // The miss started the page's reading.
        let other = dir.open_file(b"s.txt").unwrap();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while other.residency(3999) != crate::sys::Residency::InMemory {
            assert!(std::time::Instant::now() < end, "never read in");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // In memory now: the next revalidation keeps its bytes.
        c.set_now(101);
        let again = c.revalidate(b"/r", b"s.txt", &m).unwrap();
        assert_eq!(again.bytes.as_deref(), Some(&[5u8; 4000][..]));
        assert_eq!(c.bytes, 4000);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
