//! A counter shared by every process that maps the same file: one `u64` in
//! a `MAP_SHARED` mapping, read and changed only with atomic operations.
//! The session store counts its stored sessions in one so that
//! `session_max` bounds them over all workers. Also an anonymous shared
//! mapping of words ([`anonymous_words`]), made before the workers are
//! forked so that they all see it: the `limit_conn`/`limit_req` table and
//! the status counters of every worker ([`SharedWords`]).

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use super::cvt;

/// The mapped counter. Unmapped on drop.
pub struct SharedCounter {
    ptr: *mut libc::c_void,
}

const LEN: usize = std::mem::size_of::<u64>();

impl SharedCounter {
    /// Maps the first 8 bytes of `path` (created 0600, grown to 8 bytes when
    /// shorter; never followed through a symlink).
    pub fn open(path: &Path) -> io::Result<SharedCounter> {
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        if meta.len() < LEN as u64 {
            f.set_len(LEN as u64)?;
        }
        // SAFETY: a fresh shared mapping of LEN bytes of an open regular
        // file at least LEN bytes long; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // The mapping outlives the descriptor, which closes here.
        Ok(SharedCounter { ptr })
    }

    /// The counter.
    pub fn get(&self) -> &AtomicU64 {
        // SAFETY: `ptr` is a page-aligned (so 8-aligned) mapping of at least
        // 8 bytes that stays valid until `drop`; AtomicU64 has the layout of
        // u64, and every process touches it only through atomic operations.
        unsafe { &*self.ptr.cast::<AtomicU64>() }
    }
}

impl Drop for SharedCounter {
    fn drop(&mut self) {
        // SAFETY: `ptr`/LEN is the mapping made in `open`, unmapped once.
        let _ = cvt!(unsafe { libc::munmap(self.ptr, LEN) });
    }
}

/// `n` zeroed words in a fresh anonymous `MAP_SHARED` mapping, unmapped on
/// drop. A process forked while it is mapped shares it with its parent and
/// siblings (each unmaps its own view as it ends). Pages are given by the
/// kernel as they are first touched, so a large, mostly idle table costs
/// little.
pub struct SharedWords {
    ptr: *mut AtomicU64,
    n: usize,
}

impl SharedWords {
    /// Maps `n` words (`n` > 0).
    pub fn new(n: usize) -> io::Result<SharedWords> {
        let len = n
            .checked_mul(std::mem::size_of::<AtomicU64>())
            .filter(|&l| l > 0)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a fresh anonymous shared mapping; the kernel picks the
        // address; no file descriptor is involved.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedWords {
            ptr: ptr.cast::<AtomicU64>(),
            n,
        })
    }

    /// The words.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` is a page-aligned mapping of `n` zeroed (so valid)
        // AtomicU64s, mapped until `drop`; every process touches it only
        // through atomic operations.
        unsafe { std::slice::from_raw_parts(self.ptr, self.n) }
    }

    /// The words for the life of the process: never unmapped.
    pub fn leak(self) -> &'static [AtomicU64] {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: as in `words`; the mapping is never unmapped now, since
        // `drop` will not run.
        unsafe { std::slice::from_raw_parts(this.ptr, this.n) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        let len = self.n * std::mem::size_of::<AtomicU64>();
        // SAFETY: `ptr`/`len` is the mapping made in `new`, unmapped once.
        let _ = cvt!(unsafe { libc::munmap(self.ptr.cast::<libc::c_void>(), len) });
    }
}

/// `n` zeroed words in a fresh anonymous `MAP_SHARED` mapping, kept for the
/// life of the process (a forked child inherits it and shares it with its
/// parent and siblings): the `limit_conn`/`limit_req` table.
pub fn anonymous_words(n: usize) -> io::Result<&'static [AtomicU64]> {
    SharedWords::new(n).map(SharedWords::leak)
}

/// Milliseconds of `CLOCK_MONOTONIC`: one clock for every process of the
/// machine (an `Instant` cannot be shared between processes).
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec for the call; CLOCK_MONOTONIC is
    // always supported on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(nanos / 1_000_000)
}

/// Whether process `pid` still exists (a zombie counts).
pub fn process_exists(pid: libc::pid_t) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 takes no pointers and sends nothing.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn two_mappings_of_one_file_share_the_count() {
        let p = std::env::temp_dir().join(format!("ls-shared-{}", std::process::id()));
        let _ = fs::remove_file(&p);
        let a = SharedCounter::open(&p).unwrap();
        let b = SharedCounter::open(&p).unwrap();
        a.get().store(5, Ordering::SeqCst);
        b.get().fetch_add(2, Ordering::SeqCst);
        assert_eq!(a.get().load(Ordering::SeqCst), 7);
        drop(a);
        drop(b);
        // The value is in the file.
        assert_eq!(
            SharedCounter::open(&p)
                .unwrap()
                .get()
                .load(Ordering::SeqCst),
            7
        );
        fs::remove_file(&p).unwrap();
    }

    #[test]
    fn an_anonymous_mapping_is_shared_with_a_forked_child() {
        let words = anonymous_words(4).unwrap();
        words[1].store(3, Ordering::SeqCst);
        match crate::sys::fork().unwrap() {
            crate::sys::Forked::Child => {
                words[1].fetch_add(4, Ordering::SeqCst);
                // SAFETY: the forked copy of the test process leaves at
                // once, running nothing of the harness's.
                unsafe { libc::_exit(0) };
            }
            crate::sys::Forked::Parent(pid) => {
                assert!(process_exists(pid) || words[1].load(Ordering::SeqCst) == 7);
                while !crate::sys::reap_pid(pid) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
        assert_eq!(words[1].load(Ordering::SeqCst), 7);
        assert!(monotonic_ms() > 0);
    }
}
