//! A counter shared by every process that maps the same file: one `u64` in
//! a `MAP_SHARED` mapping, read and changed only with atomic operations.
//! The session store counts its stored sessions in one so that
//! `session_max` bounds them over all workers.

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
}
