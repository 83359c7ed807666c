//! Why a request is refused: the error answers that handlers (and a body
//! being received) end in, each with its status, in place of bare `u16`s.

use std::io;

/// An error answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the request or its body is malformed.
    BadRequest,
    /// 403: the resource exists but is not served (permissions, a FIFO,
    /// a device, a script inside an upload folder).
    Forbidden,
    /// 404: nothing there, or a path that would lead outside the root.
    NotFound,
    /// 409: a folder is in the way of a file.
    Conflict,
    /// 413: the body is over the route's `client_max_body_size`.
    TooLarge,
    /// 500: anything else.
    Internal,
    /// 502: a CGI's interpreter cannot be found.
    BadGateway,
    /// 507: the disk or quota is full (RFC 4918 §11.5).
    NoSpace,
}

impl Refusal {
    /// The status that answers it.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadRequest => 400,
            Refusal::Forbidden => 403,
            Refusal::NotFound => 404,
            Refusal::Conflict => 409,
            Refusal::TooLarge => 413,
            Refusal::Internal => 500,
            Refusal::BadGateway => 502,
            Refusal::NoSpace => 507,
        }
    }

    /// An error opening or reading a path.
    pub fn of_lookup(e: &io::Error) -> Refusal {
        match e.raw_os_error() {
            // EXDEV: openat2(RESOLVE_BENEATH) refused an escape; ELOOP: the
            // fallback walk met a symlink. Neither reveals what lies outside.
            Some(libc::ENOENT | libc::ENOTDIR | libc::EXDEV | libc::ELOOP | libc::ENAMETOOLONG) => {
                Refusal::NotFound
            }
            // ENXIO/ENODEV: open(2) of a socket or of a device without a driver.
            Some(libc::EACCES | libc::EPERM | libc::ENXIO | libc::ENODEV) => Refusal::Forbidden,
            _ => Refusal::Internal,
        }
    }

    /// An error storing a body: a full disk or quota (or a file over the
    /// file system's size limit) is 507, a folder in the way 409, a
    /// read-only or forbidden folder 403, anything else 500 (as nginx's
    /// dav module sorts them).
    pub fn of_write(e: &io::Error) -> Refusal {
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => Refusal::NoSpace,
            Some(libc::EISDIR) => Refusal::Conflict,
            Some(libc::EACCES | libc::EPERM | libc::EROFS) => Refusal::Forbidden,
            _ => Refusal::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errno(e: i32) -> io::Error {
        io::Error::from_raw_os_error(e)
    }

    #[test]
    fn lookup_errors() {
        let cases = [
            (libc::ENOENT, 404),
            (libc::ENOTDIR, 404),
            (libc::EXDEV, 404),
            (libc::ELOOP, 404),
            (libc::ENAMETOOLONG, 404),
            (libc::EACCES, 403),
            (libc::EPERM, 403),
            (libc::ENXIO, 403),
            (libc::EMFILE, 500),
            (libc::EIO, 500),
        ];
        for (e, want) in cases {
            assert_eq!(Refusal::of_lookup(&errno(e)).status(), want, "{e}");
        }
    }

    #[test]
    fn write_errors() {
        let cases = [
            (libc::ENOSPC, 507),
            (libc::EDQUOT, 507),
            (libc::EFBIG, 507),
            (libc::EISDIR, 409),
            (libc::EACCES, 403),
            (libc::EROFS, 403),
            (libc::EIO, 500),
            (libc::ENOENT, 500),
        ];
        for (e, want) in cases {
            assert_eq!(Refusal::of_write(&errno(e)).status(), want, "{e}");
        }
    }
}
