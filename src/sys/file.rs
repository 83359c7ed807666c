//! Files and folders under a document root. Everything is opened relative
//! to a root directory descriptor with `openat2(RESOLVE_BENEATH)`, so neither
//! `..` nor a symlink can lead outside the root (HTTP.md rules 28-29); files
//! are opened `O_NONBLOCK` so a FIFO never stalls the loop (rule 30).
//! Where `openat2` is missing (old kernels, seccomp), the fallback walks the
//! path one component at a time with `O_NOFOLLOW`: no symlink is followed.
//!
//! A file to be served is found with `O_PATH` and `fstat`ed before anything
//! opens it for reading ([`Dir::open_regular`]): `open(2)` of a FIFO wakes a
//! writer blocked on it, of a device runs its driver, and neither may happen
//! because a client asked for a URL (HTTP.md rule 30).

use std::ffi::{CStr, CString};
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::cvt;

/// An open directory used as the anchor of lookups beneath it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

/// An open regular file (or anything `open` gave; check `meta().kind`).
#[derive(Debug)]
pub struct File {
    fd: OwnedFd,
}

/// What kind of thing a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    /// FIFO, socket, device, symlink: never served.
    Other,
}

/// The parts of `struct stat` the server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub kind: FileKind,
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Inode, for ETags.
    pub ino: u64,
}

/// What [`Dir::open_regular`] found.
#[derive(Debug)]
pub enum Opened {
    /// A regular file, open for reading, and its metadata.
    File(File, Meta),
    /// Anything else (folder, FIFO, socket, device), never opened for
    /// reading: only its metadata.
    Not(Meta),
}

/// How the name of an upload in progress starts ([`Dir::create_temp`]).
const TEMP_PREFIX: &[u8] = b".upload-";
/// How it ends.
const TEMP_SUFFIX: &[u8] = b".part";
/// Hex digits between the two.
const TEMP_HEX: usize = 16;

/// Whether `name` (one path component) is the name [`Dir::create_temp`]
/// gives an upload in progress: `.upload-` + 16 lowercase hex digits +
/// `.part`, exactly.
pub fn is_temp_name(name: &[u8]) -> bool {
    name.len() == TEMP_PREFIX.len() + TEMP_HEX + TEMP_SUFFIX.len()
        && name.starts_with(TEMP_PREFIX)
        && name.ends_with(TEMP_SUFFIX)
        && name
            .get(TEMP_PREFIX.len()..TEMP_PREFIX.len() + TEMP_HEX)
            .is_some_and(|hex| hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub meta: Meta,
}

fn meta_of(st: &libc::stat) -> Meta {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::Regular,
        libc::S_IFDIR => FileKind::Directory,
        _ => FileKind::Other,
    };
    Meta {
        kind,
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime: st.st_mtime,
        ino: st.st_ino,
    }
}

fn fstat_fd(fd: RawFd) -> io::Result<Meta> {
    // SAFETY: all-zero `stat` is valid plain data.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `st` is a live, writable stat buffer.
    cvt!(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(meta_of(&st))
}

fn cstring(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `struct open_how` of openat2(2) (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// How many times `openat2` is tried when it answers EAGAIN.
const OPENAT2_TRIES: u32 = 8;

/// `openat2(dir, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`,
/// falling back to a component walk that follows no symlink.
fn open_beneath(dir: RawFd, rel: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    let rel = if rel.is_empty() { &b"."[..] } else { rel };
    let path = cstring(rel)?;
    // openat2 refuses O_PATH combined with flags other than O_CLOEXEC,
    // O_DIRECTORY and O_NOFOLLOW (EINVAL), so O_NOCTTY only goes with real opens.
    let extra = if flags & libc::O_PATH != 0 {
        libc::O_CLOEXEC
    } else {
        libc::O_CLOEXEC | libc::O_NOCTTY
    };
    let how = OpenHow {
        flags: (flags | extra) as u64,
        mode: 0,
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    // EAGAIN: the kernel saw a rename or mount somewhere in the system while
    // it resolved a `..` (openat2(2)); the answer is "try again", not an
    // error of the request. A few tries, then the walk, which takes no
    // such shortcut.
    let mut tries = 0;
    let r = loop {
        // SAFETY: `path` is NUL-terminated and `how` is a live open_how of the size passed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                std::ptr::from_ref(&how),
                mem::size_of::<OpenHow>(),
            )
        };
        tries += 1;
        if r != -1
            || io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN)
            || tries == OPENAT2_TRIES
        {
            break r;
        }
    };
    match cvt!(r) {
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => open_walk(dir, rel, flags),
        Ok(fd) => {
            let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
            // SAFETY: openat2 returned a fresh descriptor that only we own.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
            open_walk(dir, rel, flags)
        }
        Err(e) => Err(e),
    }
}

/// How files to be served are opened: read-only, and non-blocking so that
/// nothing ever stalls the loop (HTTP.md rule 30).
const READ: libc::c_int = libc::O_RDONLY | libc::O_NONBLOCK;

/// Open the file an `O_PATH` descriptor names for reading, through its
/// `/proc/self/fd` link: the same inode, whatever its name names now.
/// Fails where `/proc` is not mounted.
fn reopen(path: &OwnedFd) -> io::Result<OwnedFd> {
    use std::fmt::Write as _;
    let mut name = arrayvec::ArrayString::<32>::new();
    write!(name, "/proc/self/fd/{}\0", path.as_raw_fd())
        .map_err(|_| io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
    let c = CStr::from_bytes_with_nul(name.as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is NUL-terminated; open returns a new descriptor or -1.
    let fd = cvt!(unsafe { libc::open(c.as_ptr(), READ | libc::O_CLOEXEC | libc::O_NOCTTY) })?;
    // SAFETY: a fresh descriptor that only we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; openat returns a new descriptor or -1.
    let fd = cvt!(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NOFOLLOW,
        )
    })?;
    // SAFETY: a fresh descriptor that only we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The fallback of [`open_beneath`]: every component opened with
/// `O_NOFOLLOW`, `..` refused outright.
fn open_walk(dir: RawFd, rel: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    let mut parts = rel
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .peekable();
    let mut cur: Option<OwnedFd> = None;
    while let Some(part) = parts.next() {
        if part == b".." {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        let at = cur.as_ref().map_or(dir, AsRawFd::as_raw_fd);
        let name = cstring(part)?;
        let last = parts.peek().is_none();
        let f = if last {
            flags
        } else {
            libc::O_PATH | libc::O_DIRECTORY
        };
        cur = Some(openat(at, &name, f)?);
    }
    match cur {
        Some(fd) => Ok(fd),
        None => openat(dir, c".", flags),
    }
}

impl Dir {
    /// Open a folder as a lookup anchor (`O_PATH | O_DIRECTORY`); follows
    /// symlinks in the configured path itself, as nginx does for `root`.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let p = cstring(path.as_os_str().as_bytes())?;
        // SAFETY: `p` is NUL-terminated; open returns a new descriptor or -1.
        let fd = cvt!(unsafe {
            libc::open(
                p.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: a fresh descriptor that only we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Dir { fd })
    }

    /// Open `rel` (relative, `/`-separated, already normalised) beneath this
    /// folder for reading, non-blocking, whatever it is: tests only, the
    /// server opens through [`Dir::open_regular`]. Escaping the folder by
    /// `..` or a symlink fails with `EXDEV` (or `ELOOP` in the fallback).
    #[cfg(test)]
    pub fn open_file(&self, rel: &[u8]) -> io::Result<File> {
        let fd = open_beneath(self.fd.as_raw_fd(), rel, READ)?;
        Ok(File { fd })
    }

    /// Find `rel` beneath this folder (as [`Dir::stat`] does: `O_PATH`,
    /// which opens nothing) and open it for reading only when `fstat` says
    /// it is a regular file. The open goes through the `O_PATH` descriptor
    /// itself (`/proc/self/fd/N`), so it reaches the very inode that was
    /// checked, even if the name was replaced in between. Without `/proc`,
    /// the name is resolved again and the file kept only if it is still a
    /// regular file; there, a FIFO swapped in between the two lookups is
    /// opened (non-blocking) before it is refused.
    pub fn open_regular(&self, rel: &[u8]) -> io::Result<Opened> {
        let path = open_beneath(self.fd.as_raw_fd(), rel, libc::O_PATH)?;
        let meta = fstat_fd(path.as_raw_fd())?;
        if meta.kind != FileKind::Regular {
            return Ok(Opened::Not(meta));
        }
        if let Ok(fd) = reopen(&path) {
            return Ok(Opened::File(File { fd }, meta));
        }
        let fd = open_beneath(self.fd.as_raw_fd(), rel, READ)?;
        let now = fstat_fd(fd.as_raw_fd())?;
        Ok(match now.kind {
            FileKind::Regular => Opened::File(File { fd }, now),
            _ => Opened::Not(now),
        })
    }

    /// Metadata of `rel` beneath this folder without opening it for reading
    /// (used to test a folder for its index file and for trailing slashes).
    pub fn stat(&self, rel: &[u8]) -> io::Result<Meta> {
        let fd = open_beneath(self.fd.as_raw_fd(), rel, libc::O_PATH)?;
        fstat_fd(fd.as_raw_fd())
    }

    /// Create a new, empty file with a random hidden name in the folder
    /// `rel` beneath this one (`O_EXCL`, mode 0644), for an upload in
    /// progress. Returns the file and its name.
    pub fn create_temp(&self, rel: &[u8]) -> io::Result<(File, String)> {
        let parent = open_beneath(self.fd.as_raw_fd(), rel, libc::O_PATH | libc::O_DIRECTORY)?;
        for _ in 0..8 {
            let mut r = [0u8; 8];
            super::random::random_bytes(&mut r)?;
            // The shape `is_temp_name` recognises.
            let name = format!(".upload-{:016x}.part", u64::from_ne_bytes(r));
            debug_assert!(is_temp_name(name.as_bytes()));
            let c = cstring(name.as_bytes())?;
            // SAFETY: `c` is NUL-terminated; the mode argument is passed with O_CREAT.
            let fd = unsafe {
                libc::openat(
                    parent.as_raw_fd(),
                    c.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_CLOEXEC
                        | libc::O_NOFOLLOW,
                    0o644 as libc::c_uint,
                )
            };
            match cvt!(fd) {
                Ok(fd) => {
                    // SAFETY: a fresh descriptor that only we own.
                    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                    return Ok((File { fd }, name));
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::from_raw_os_error(libc::EEXIST))
    }

    /// Rename `from` to `to`, both names in the folder `rel` beneath this
    /// one (single components), replacing `to` if it exists.
    pub fn rename(&self, rel: &[u8], from: &[u8], to: &[u8]) -> io::Result<()> {
        let parent = open_beneath(self.fd.as_raw_fd(), rel, libc::O_PATH | libc::O_DIRECTORY)?;
        let (f, t) = (cstring(from)?, cstring(to)?);
        let p = parent.as_raw_fd();
        // SAFETY: both names are NUL-terminated; both are resolved in `p`.
        cvt!(unsafe { libc::renameat(p, f.as_ptr(), p, t.as_ptr()) })?;
        Ok(())
    }

    /// Remove the file `rel` beneath this folder: its parent is opened
    /// beneath the anchor, then the last component is unlinked there. A
    /// folder fails with `EISDIR`.
    pub fn unlink(&self, rel: &[u8]) -> io::Result<()> {
        let rel = rel.strip_suffix(b"/").unwrap_or(rel);
        let (dir, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (rel.get(..i).unwrap_or(b""), rel.get(i + 1..).unwrap_or(b"")),
            None => (&b""[..], rel),
        };
        if name.is_empty() || name == b"." || name == b".." {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        let parent = open_beneath(self.fd.as_raw_fd(), dir, libc::O_PATH | libc::O_DIRECTORY)?;
        let c = cstring(name)?;
        // SAFETY: `c` is NUL-terminated and resolved in the open parent.
        cvt!(unsafe { libc::unlinkat(parent.as_raw_fd(), c.as_ptr(), 0) })?;
        Ok(())
    }

    /// List the folder `rel` beneath this one: every entry but `.` and `..`
    /// with its metadata. Entries that are symlinks leading out of the listed
    /// folder, or that vanish while listed, are left out.
    pub fn list(&self, rel: &[u8]) -> io::Result<Vec<DirEntry>> {
        let fd = open_beneath(
            self.fd.as_raw_fd(),
            rel,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK,
        )?;
        let raw = IntoRawFd::into_raw_fd(fd);
        // SAFETY: `raw` is an open directory descriptor whose ownership passes
        // to the DIR stream (closedir closes it).
        let dirp = unsafe { libc::fdopendir(raw) };
        if dirp.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so the descriptor is still ours to close.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
            return Err(e);
        }
        let stream = DirStream(dirp);
        let mut out = Vec::new();
        loop {
            // SAFETY: `stream.0` is a live DIR*; readdir returns NULL at the end.
            let ent = unsafe { libc::readdir(stream.0) };
            if ent.is_null() {
                break;
            }
            // SAFETY: d_name of a live dirent is a NUL-terminated array.
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            // SAFETY: `stream.0` is live; dirfd gives its descriptor without transferring it.
            let dfd = unsafe { libc::dirfd(stream.0) };
            if let Ok(meta) = stat_entry(dfd, name) {
                out.push(DirEntry {
                    name: bytes.to_vec(),
                    meta,
                });
            }
        }
        Ok(out)
    }
}

/// Metadata of one listed entry; a symlink is described by what it points
/// to, and only if that stays beneath the listed folder.
fn stat_entry(dfd: RawFd, name: &CStr) -> io::Result<Meta> {
    // SAFETY: all-zero `stat` is valid plain data.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `st` writable.
    cvt!(unsafe { libc::fstatat(dfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Ok(meta_of(&st));
    }
    let fd = open_beneath(dfd, name.to_bytes(), libc::O_PATH)?;
    fstat_fd(fd.as_raw_fd())
}

struct DirStream(*mut libc::DIR);

impl Drop for DirStream {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful fdopendir and is closed once.
        unsafe { libc::closedir(self.0) };
    }
}

impl File {
    /// `fstat(2)`.
    pub fn meta(&self) -> io::Result<Meta> {
        fstat_fd(self.fd.as_raw_fd())
    }

    /// An unnamed temporary file in `dir` (`O_TMPFILE`): it vanishes with
    /// its last descriptor, so nothing is ever left behind.
    pub fn temporary(dir: &Path) -> io::Result<File> {
        let p = cstring(dir.as_os_str().as_bytes())?;
        // SAFETY: `p` is NUL-terminated; O_TMPFILE requires the mode argument.
        let fd = cvt!(unsafe {
            libc::open(
                p.as_ptr(),
                libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        })?;
        // SAFETY: a fresh descriptor that only we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(File { fd })
    }

    /// Write all of `buf` at the file offset (regular files: the disk may
    /// be touched from the loop, as nginx does without aio).
    pub fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            // SAFETY: `buf` is a valid readable region of `buf.len()` bytes.
            let r = unsafe { libc::write(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
            match cvt!(r) {
                Ok(0) => return Err(io::Error::from_raw_os_error(libc::ENOSPC)),
                Ok(n) => buf = buf.get(usize::try_from(n).unwrap_or(0)..).unwrap_or(&[]),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Move the file offset back to 0 (a spooled body about to become a
    /// CGI's stdin).
    pub fn rewind(&self) -> io::Result<()> {
        // SAFETY: lseek takes no pointers.
        cvt!(unsafe { libc::lseek(self.fd.as_raw_fd(), 0, libc::SEEK_SET) })?;
        Ok(())
    }

    /// `pread(2)` at `offset` (small files are copied into the response
    /// buffer so head and body leave in one `writev`).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        // SAFETY: `buf` is a valid writable region of `buf.len()` bytes.
        let n = cvt!(unsafe {
            libc::pread(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), off)
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// `preadv2(RWF_NOWAIT)` into `buf` at `offset`: what is in memory from
    /// there on, `EAGAIN` when the first page is not (or still being read),
    /// `EOPNOTSUPP` where the filesystem cannot tell.
    fn pread_nowait(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // preadv2(2) takes the offset as two longs, low then high; on 64-bit
        // the kernel shifts the high half out entirely, so passing it is
        // harmless there and needed on 32-bit.
        let low = offset as libc::c_ulong;
        let high = (offset >> 32) as libc::c_ulong;
        // SAFETY: `iov` describes the live, writable `buf`; the call writes
        // at most `buf.len()` bytes into it.
        let n = cvt!(unsafe {
            libc::syscall(
                libc::SYS_preadv2,
                self.fd.as_raw_fd(),
                std::ptr::from_ref(&iov),
                1 as libc::c_int,
                low,
                high,
                libc::RWF_NOWAIT,
            )
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Whether the byte at `offset` can be read without waiting for the
    /// disk: a one-byte `preadv2(RWF_NOWAIT)` into a stack buffer. The
    /// kernel answers `EAGAIN` when its page is not in the page cache or
    /// is still being read (a page under I/O is locked), which `cachestat(2)`
    /// and `mincore(2)` cannot tell from a page that is ready. A page found
    /// missing also starts the kernel's own read-ahead around it.
    pub fn residency(&self, offset: u64) -> Residency {
        match self.pread_nowait(&mut [0u8; 1], offset) {
            // 0 is the end of the file (it shrank): in memory as far as the
            // send goes, which will find the end itself.
            Ok(_) => Residency::InMemory,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Residency::OnDisk,
            // EOPNOTSUPP: the filesystem does not take RWF_NOWAIT (tmpfs on
            // 6.x, FUSE, NFS) or the kernel predates it (before 4.14); ENOSYS:
            // no preadv2 (before 4.6); anything else (EIO) the send will meet.
            Err(_) => Residency::Unknown,
        }
    }

    /// Read into `buf` at `offset` only what is in memory: fewer bytes, or
    /// `EAGAIN`, rather than wait for the disk (and the miss starts the
    /// kernel's read-ahead). Where the filesystem cannot tell, a plain
    /// `pread`.
    pub fn read_resident(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self.pread_nowait(buf, offset) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS)) => {
                self.read_at(buf, offset)
            }
            r => r,
        }
    }

    /// Start reading `len` bytes from `offset` into the page cache without
    /// waiting for them (`posix_fadvise(POSIX_FADV_WILLNEED)`: the kernel
    /// queues the reads and returns).
    pub fn will_need(&self, offset: u64, len: u64) -> io::Result<()> {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        let len = libc::off_t::try_from(len).unwrap_or(libc::off_t::MAX);
        // SAFETY: posix_fadvise takes no pointers.
        let r = unsafe {
            libc::posix_fadvise(self.fd.as_raw_fd(), off, len, libc::POSIX_FADV_WILLNEED)
        };
        // posix_fadvise returns the error number instead of setting errno.
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    }
}

#[cfg(test)]
impl File {
    /// Write the file's pages back and drop them from the page cache
    /// (`fsync`, `POSIX_FADV_DONTNEED`), as a cold file is. `DONTNEED` may
    /// skip a page it cannot drop at that moment: callers check.
    pub fn evict(&self) -> io::Result<()> {
        // SAFETY: fsync and posix_fadvise take no pointers.
        cvt!(unsafe { libc::fsync(self.fd.as_raw_fd()) })?;
        // SAFETY: as above.
        let r =
            unsafe { libc::posix_fadvise(self.fd.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    }
}

/// What a `RWF_NOWAIT` read says of a page of a file ([`File::residency`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residency {
    /// In the page cache and read: sending it will not wait for the disk.
    InMemory,
    /// Not in memory yet: sending it now would wait for the disk.
    OnDisk,
    /// The filesystem or kernel cannot say: probing it again is pointless.
    Unknown,
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmpdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ls-sys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root/sub")).unwrap();
        std::fs::write(d.join("root/a.txt"), b"hello").unwrap();
        std::fs::write(d.join("secret"), b"no").unwrap();
        d
    }

    #[test]
    fn opens_beneath_and_refuses_escapes() {
        let d = tmpdir("beneath");
        symlink("../secret", d.join("root/out")).unwrap();
        symlink("a.txt", d.join("root/in")).unwrap();
        let root = Dir::open(&d.join("root")).unwrap();
        let f = root.open_file(b"a.txt").unwrap();
        let m = f.meta().unwrap();
        assert_eq!((m.kind, m.size), (FileKind::Regular, 5));
        let mut buf = [0u8; 8];
        assert_eq!(f.read_at(&mut buf, 1).unwrap(), 4);
        assert_eq!(&buf[..4], b"ello");
        assert!(root.open_file(b"../secret").is_err());
        assert!(root.open_file(b"out").is_err());
        assert!(root.open_file(b"in").is_ok());
        assert_eq!(root.stat(b"sub").unwrap().kind, FileKind::Directory);
        assert_eq!(root.stat(b"").unwrap().kind, FileKind::Directory);
        assert!(root.open_file(b"nope").is_err());
        let mut names: Vec<_> = root
            .list(b"")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![b"a.txt".to_vec(), b"in".to_vec(), b"sub".to_vec()]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn temp_names() {
        let cases: &[(&[u8], bool)] = &[
            (b".upload-0123456789abcdef.part", true),
            (b".upload-ffffffffffffffff.part", true),
            (b".upload-0123456789ABCDEF.part", false),
            (b".upload-0123456789abcde.part", false),
            (b".upload-0123456789abcdef0.part", false),
            (b".upload-0123456789abcdeg.part", false),
            (b".upload-0123456789abcdef.part.txt", false),
            (b"upload-0123456789abcdef.part", false),
            (b".upload-0123456789abcdef.parts", false),
            (b"", false),
        ];
        for (name, want) in cases {
            assert_eq!(
                is_temp_name(name),
                *want,
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn open_regular_never_opens_a_fifo() {
        let d = tmpdir("fifo");
        let fifo = d.join("root/pipe");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is NUL-terminated.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let p = fifo.clone();
        // Blocked in open(2) until a reader opens the FIFO.
        let writer = std::thread::spawn(move || {
            let f = std::fs::OpenOptions::new().write(true).open(&p);
            tx.send(()).unwrap();
            drop(f);
        });
        let root = Dir::open(&d.join("root")).unwrap();
        for _ in 0..3 {
            match root.open_regular(b"pipe").unwrap() {
                Opened::Not(m) => assert_eq!(m.kind, FileKind::Other),
                Opened::File(..) => panic!("a FIFO opened as a file"),
            }
        }
        assert!(matches!(
            root.open_regular(b"sub").unwrap(),
            Opened::Not(Meta {
                kind: FileKind::Directory,
                ..
            })
        ));
        let Opened::File(f, m) = root.open_regular(b"a.txt").unwrap() else {
            panic!("a.txt not opened");
        };
        assert_eq!((m.kind, m.size), (FileKind::Regular, 5));
        assert_eq!(f.meta().unwrap().ino, m.ino);
        let mut buf = [0u8; 5];
        assert_eq!(f.read_at(&mut buf, 0).unwrap(), 5);
        assert_eq!(&buf, b"hello");
        assert!(root.open_regular(b"../secret").is_err());
        // A wakened writer runs within microseconds.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "the FIFO was opened");
        let reader = std::fs::File::open(&fifo).unwrap();
        rx.recv().unwrap();
        writer.join().unwrap();
        drop(reader);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn temp_rename_unlink_beneath() {
        let d = tmpdir("temp");
        let root = Dir::open(&d.join("root")).unwrap();
        let (f, name) = root.create_temp(b"sub").unwrap();
        assert!(name.starts_with(".upload-"));
        f.write_all(b"data").unwrap();
        root.rename(b"sub", name.as_bytes(), b"x.txt").unwrap();
        assert_eq!(std::fs::read(d.join("root/sub/x.txt")).unwrap(), b"data");
        assert!(root.create_temp(b"../..").is_err());
        assert_eq!(
            root.unlink(b"sub").unwrap_err().raw_os_error(),
            Some(libc::EISDIR)
        );
        assert!(root.unlink(b"../secret").is_err());
        assert!(d.join("secret").exists());
        root.unlink(b"sub/x.txt").unwrap();
        assert!(!d.join("root/sub/x.txt").exists());
        let t = File::temporary(&d).unwrap();
        t.write_all(b"spool").unwrap();
        t.rewind().unwrap();
        let mut b = [0u8; 5];
        assert_eq!(t.read_at(&mut b, 0).unwrap(), 5);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn walk_fallback_follows_no_symlink() {
        let d = tmpdir("walk");
        symlink("a.txt", d.join("root/in")).unwrap();
        let root = Dir::open(&d.join("root")).unwrap();
        let raw = root.fd.as_raw_fd();
        assert!(open_walk(raw, b"a.txt", libc::O_RDONLY).is_ok());
        assert!(open_walk(raw, b"sub/../a.txt", libc::O_RDONLY).is_err());
        assert!(open_walk(raw, b"in", libc::O_RDONLY).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_rename_elsewhere_never_turns_a_lookup_into_eagain() {
        // openat2 answers EAGAIN when any rename happens while it resolves
        // a `..`; under concurrent uploads that became 500s.
        let d = tmpdir("eagain");
        symlink("../..", d.join("root/up")).unwrap();
        symlink("..", d.join("root/sub/back")).unwrap();
        let dir = Dir::open(&d.join("root")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        std::fs::create_dir_all(d.join("churn")).unwrap();
        let churners: Vec<_> = (0..2)
            .map(|i| {
                let stop = stop.clone();
                let (a, b) = (d.join(format!("churn/a{i}")), d.join(format!("churn/b{i}")));
                std::thread::spawn(move || {
                    std::fs::write(&a, b"x").unwrap();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = std::fs::rename(&a, &b);
                        let _ = std::fs::rename(&b, &a);
                    }
                })
            })
            .collect();
        // Unfixed, about 4 lookups in 100,000 failed so here: 2 s of them.
        let (mut eagain, mut opens) = (0, 0);
        let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < end {
            for rel in [&b"up/secret"[..], b"sub/back/a.txt"] {
                opens += 1;
                if let Err(e) = dir.open_file(rel)
                    && e.raw_os_error() == Some(libc::EAGAIN)
                {
                    eagain += 1;
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in churners {
            c.join().unwrap();
        }
        eprintln!("{opens} lookups under renames, {eagain} EAGAIN");
        assert_eq!(eagain, 0);
        let mut buf = [0u8; 5];
        let f = dir.open_file(b"sub/back/a.txt").unwrap();
        assert_eq!(f.read_at(&mut buf, 0).unwrap(), 5);
        assert_eq!(&buf, b"hello");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn residency_tells_pages_on_disk_and_will_need_brings_them() {
        let d = tmpdir("residency");
        let len = 4u64 << 20;
        let path = d.join("root/cold.bin");
        std::fs::write(&path, vec![7u8; len as usize]).unwrap();
        let root = Dir::open(&d.join("root")).unwrap();
        let f = root.open_file(b"cold.bin").unwrap();
        // Just written: in memory. Past the end: nothing to wait for.
        let first = f.residency(len - 1);
        assert_eq!(f.residency(len + 10), first);
        if first == Residency::Unknown {
            eprintln!(
                "residency: {} cannot be probed (tmpfs?): skipped",
                d.display()
            );
            let _ = std::fs::remove_dir_all(&d);
            return;
        }
        assert_eq!(first, Residency::InMemory);
        // DONTNEED skips a page it cannot drop at that moment (1 run in 6
        // here): again. Asked only once per eviction, as a miss starts the
        // page's reading.
        let on_disk = (0..50).any(|_| {
            f.evict().unwrap();
            let r = f.residency(len - 1);
            if r != Residency::OnDisk {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r == Residency::OnDisk
        });
        assert!(on_disk, "the last page never left the page cache");
        let mut buf = [0u8; 16];
        let e = f.read_resident(&mut buf, 8192).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
        f.will_need(0, len).unwrap();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while f.residency(len - 1) != Residency::InMemory {
            assert!(std::time::Instant::now() < end, "never read in");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(f.read_resident(&mut buf, 8192).unwrap(), 16);
        assert_eq!(buf, [7u8; 16]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_tmpfs_page_is_never_on_disk() {
        // tmpfs answers EOPNOTSUPP to RWF_NOWAIT here (Linux 6.18); should
        // a kernel learn it, its pages are in memory all the same.
        let Ok(dir) = Dir::open(Path::new("/dev/shm")) else {
            eprintln!("no /dev/shm: skipped");
            return;
        };
        let name = format!("ls-residency-{}", std::process::id());
        std::fs::write(Path::new("/dev/shm").join(&name), b"shm").unwrap();
        let f = dir.open_file(name.as_bytes()).unwrap();
        assert_ne!(f.residency(0), Residency::OnDisk);
        let mut buf = [0u8; 8];
        assert_eq!(f.read_resident(&mut buf, 0).unwrap(), 3);
        assert_eq!(&buf[..3], b"shm");
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(&name));
    }
}
