//! Credentials: whether the process runs as root, a user's ids from the
//! password database, and dropping root for good (`user NAME;`, once, after
//! the listeners are bound).

use std::io;

use super::cvt;

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid of user `name` (`getpwnam_r`).
pub fn lookup_user(name: &str) -> io::Result<(libc::uid_t, libc::gid_t)> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "user name holds a NUL"))?;
    // SAFETY: all-zero passwd is valid plain data, filled by getpwnam_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live memory of the stated size; the
    // strings getpwnam_r leaves in `buf` are not used after it returns.
    let r = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    if result.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("unknown user \"{name}\""),
        ));
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

/// Become `uid`/`gid` for good: supplementary groups cleared to `gid`,
/// then `setgid`, then `setuid` (in that order, or the later ones fail).
pub fn drop_privileges(uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
    // SAFETY: one gid read from a live local.
    cvt!(unsafe { libc::setgroups(1, &gid) })?;
    // SAFETY: plain id changes, no pointers.
    cvt!(unsafe { libc::setgid(gid) })?;
    // SAFETY: as above.
    cvt!(unsafe { libc::setuid(uid) })?;
    Ok(())
}
