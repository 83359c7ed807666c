//! TCP listeners and connected sockets, non-blocking and close-on-exec from
//! birth (`SOCK_NONBLOCK | SOCK_CLOEXEC`, `accept4`). Sends use
//! `MSG_NOSIGNAL` so a vanished peer is an `EPIPE`, never a signal.

use std::io::{self, IoSlice};
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;
use super::file::File;

/// A listening TCP socket.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
}

/// A connected TCP socket.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
}

fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(ss).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(ss).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: libc::sockaddr_in = unsafe { std::ptr::read(std::ptr::from_ref(ss).cast()) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: libc::sockaddr_in6 = unsafe { std::ptr::read(std::ptr::from_ref(ss).cast()) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: we pass a pointer to a live c_int and its exact size.
    cvt!(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(&v).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// A blocking client connection whose receive buffer is set to `rcvbuf`
/// bytes before it connects, so the window it advertises stays that small
/// (the kernel's floor is about 2 KiB): the window-starved reader of
/// slowhttptest's slow-read attack, for tests and tools.
pub fn connect_small_window(addr: SocketAddr, rcvbuf: i32) -> io::Result<std::net::TcpStream> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the result is a new descriptor.
    let raw = cvt!(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, rcvbuf)?;
    let (ss, len) = to_sockaddr(&addr);
    // SAFETY: `ss` holds a valid sockaddr of `len` bytes.
    cvt!(unsafe { libc::connect(raw, std::ptr::from_ref(&ss).cast(), len) })?;
    Ok(std::net::TcpStream::from(fd))
}

/// `TCP_NOTSENT_LOWAT` of a connection sending a large file body while
/// another one is too (`Conn` decides): the socket counts as writable, and
/// `sendfile` queues more, only while fewer than this many bytes wait unsent
/// (the bytes in flight, up to the peer's window, do not count). Without it
/// the kernel queues up to the whole send buffer (4 MiB) beyond the window,
/// and that backlog is transmitted later from ACK processing, in softirq on
/// whichever CPU the ACK arrives: on loopback, the client's. Measured on
/// loopback (issue 13): wrk -c10 on a 10 MiB file, client CPU-bound, 1.22-
/// 1.45 GB/s without, 1.66-1.98 GB/s at 64-256 KiB; but a lone 1 GiB
/// download is 15-20 % slower with it (each time the unsent bytes fall
/// under the mark the server is woken, from the client's CPU), hence only
/// when bodies compete.
pub const NOTSENT_LOWAT: libc::c_int = 256 * 1024;

impl Listener {
    /// Create, configure (`SO_REUSEADDR`; `IPV6_V6ONLY` for IPv6 so `[::]`
    /// and `0.0.0.0` can both be bound), bind and listen.
    pub fn bind(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<Listener> {
        let family = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket(2) call; the result is a new descriptor.
        let raw = cvt!(unsafe {
            libc::socket(
                family,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if reuse_port {
            setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        if addr.is_ipv6() {
            setsockopt_int(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
        }
        let (ss, len) = to_sockaddr(&addr);
        // SAFETY: `ss` holds a valid sockaddr of `len` bytes.
        cvt!(unsafe { libc::bind(raw, std::ptr::from_ref(&ss).cast(), len) })?;
        // SAFETY: plain listen(2) on our socket.
        cvt!(unsafe { libc::listen(raw, backlog) })?;
        Ok(Listener { fd })
    }

    /// Accept one connection, non-blocking and close-on-exec, with its peer address.
    pub fn accept(&self) -> io::Result<(Socket, SocketAddr)> {
        // SAFETY: all-zero sockaddr_storage is valid.
        let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `ss`/`len` describe a writable buffer large enough for any address.
        let raw = cvt!(unsafe {
            libc::accept4(
                self.fd.as_raw_fd(),
                std::ptr::addr_of_mut!(ss).cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        })?;
        // SAFETY: accept4 returned a new descriptor that only we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = Socket { fd };
        let peer = from_sockaddr(&ss)
            .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
        Ok((sock, peer))
    }

    /// The bound address (tells the port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(self.fd.as_raw_fd())
    }
}

fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss`/`len` describe a writable buffer large enough for any address.
    cvt!(unsafe { libc::getsockname(fd, std::ptr::addr_of_mut!(ss).cast(), &mut len) })?;
    from_sockaddr(&ss).ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn to_usize(n: isize) -> usize {
    usize::try_from(n).unwrap_or(0)
}

impl Socket {
    /// Disable Nagle: responses are written whole, so nothing is gained by
    /// waiting for more.
    pub fn set_nodelay(&self) -> io::Result<()> {
        setsockopt_int(self.fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
    }

    /// `TCP_CORK`: while set, the kernel sends only full segments; clearing
    /// it sends what is queued at once.
    pub fn set_cork(&self, on: bool) -> io::Result<()> {
        setsockopt_int(
            self.fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            libc::c_int::from(on),
        )
    }

    /// `TCP_NOTSENT_LOWAT`: at most `bytes` unsent bytes queued; 0 goes
    /// back to the system's default (no limit unless the sysctl sets one).
    pub fn set_notsent_lowat(&self, bytes: libc::c_int) -> io::Result<()> {
        setsockopt_int(
            self.fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            bytes,
        )
    }

    /// The local address of the connection (for `SERVER_PORT` and logs).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(self.fd.as_raw_fd())
    }

    /// `recv(2)` into `buf`.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is a valid writable region of `buf.len()` bytes.
        let n = cvt!(unsafe {
            libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
        })?;
        Ok(to_usize(n))
    }

    /// `sendmsg(2)` of several slices with `MSG_NOSIGNAL` (and `MSG_MORE`
    /// when `more` says a body follows, so head and body share packets).
    pub fn writev(&self, bufs: &[IoSlice<'_>], more: bool) -> io::Result<usize> {
        // SAFETY: msghdr is plain old data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        // IoSlice is guaranteed ABI-compatible with iovec on Unix.
        msg.msg_iov = bufs.as_ptr().cast_mut().cast();
        msg.msg_iovlen = bufs.len().min(1024);
        let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
        // SAFETY: msg points at `msg_iovlen` valid iovecs that outlive the call.
        let n = cvt!(unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, flags) })?;
        Ok(to_usize(n))
    }

    /// `send(2)` of one slice with `MSG_NOSIGNAL`.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: `buf` is a valid readable region of `buf.len()` bytes.
        let n = cvt!(unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        })?;
        Ok(to_usize(n))
    }

    /// `sendfile(2)` up to `count` bytes of `file` from `*offset`, advancing it.
    /// Returns 0 at end of file (a file that shrank under us).
    pub fn sendfile(&self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
        let mut off = libc::off_t::try_from(*offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        // SAFETY: both descriptors are open; `off` is a live off_t.
        let n = cvt!(unsafe {
            libc::sendfile(self.fd.as_raw_fd(), file.as_raw_fd(), &mut off, count)
        })?;
        *offset = u64::try_from(off).unwrap_or(*offset);
        Ok(to_usize(n))
    }

    /// Half-close: no more bytes from us (lingering close starts here).
    pub fn shutdown_write(&self) -> io::Result<()> {
        // SAFETY: plain shutdown(2) on our socket.
        cvt!(unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn sockaddr_round_trip() {
        for a in ["127.0.0.1:8080", "[::1]:443", "0.0.0.0:1", "[fe80::1]:9"] {
            let addr: SocketAddr = a.parse().unwrap();
            let (ss, _) = to_sockaddr(&addr);
            assert_eq!(from_sockaddr(&ss), Some(addr));
        }
    }

    /// An `int` socket option, as the kernel reports it.
    fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut v: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v`/`len` describe a writable int.
        let r = unsafe {
            libc::getsockopt(fd, level, name, std::ptr::addr_of_mut!(v).cast(), &mut len)
        };
        assert_eq!(r, 0, "getsockopt: {}", io::Error::last_os_error());
        v
    }

    #[test]
    fn a_small_window_client_keeps_its_small_receive_buffer() {
        let l = Listener::bind("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let addr = l.local_addr().unwrap();
        let c = connect_small_window(addr, 64).unwrap();
        // The kernel doubles what is asked and rounds up to its floor.
        let rcv = getsockopt_int(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF);
        assert!(rcv <= 4608, "receive buffer {rcv}");
    }

    #[test]
    fn the_unsent_low_water_mark_is_set_and_cleared() {
        let l = Listener::bind("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let addr = l.local_addr().unwrap();
        let _c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = loop {
            match l.accept() {
                Ok(x) => break x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        let get = || getsockopt_int(s.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT);
        assert_eq!(get(), 0, "accepted sockets start without a mark of ours");
        s.set_notsent_lowat(NOTSENT_LOWAT).unwrap();
        assert_eq!(get(), NOTSENT_LOWAT);
        s.set_notsent_lowat(0).unwrap();
        assert_eq!(get(), 0);
    }

    #[test]
    fn listen_accept_read_write() {
        let l = Listener::bind("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let addr = l.local_addr().unwrap();
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let (s, peer) = loop {
            match l.accept() {
                Ok(x) => break x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(peer, c.local_addr().unwrap());
        s.set_nodelay().unwrap();
        c.write_all(b"ping").unwrap();
        let mut buf = [0u8; 8];
        let n = loop {
            match s.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..n], b"ping");
        let n = s
            .writev(&[IoSlice::new(b"po"), IoSlice::new(b"ng")], false)
            .unwrap();
        assert_eq!(n, 4);
        s.shutdown_write().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"pong");
    }
}
