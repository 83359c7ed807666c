//! Random bytes from the kernel's CSPRNG (`getrandom(2)`): the session
//! keys and ids. Never blocks once the pool is initialised at boot.

use std::io;

use super::cvt;

/// Fill `buf` from the kernel's CSPRNG (`getrandom(2)`).
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = buf.get_mut(done..).unwrap_or(&mut []);
        // SAFETY: `rest` is a valid writable region of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match cvt!(n) {
            Ok(n) => done += usize::try_from(n).unwrap_or(0),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_are_not_all_zero() {
        let mut a = [0u8; 32];
        random_bytes(&mut a).unwrap();
        assert_ne!(a, [0u8; 32]);
    }
}
