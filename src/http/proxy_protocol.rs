//! The PROXY protocol header a proxy puts before the first byte of a
//! connection (`listen ... proxy_protocol`; HAProxy's proxy-protocol.txt):
//! version 1, one text line, and version 2, binary. A pure function over
//! the bytes received so far: [`Header::Partial`] until the header is
//! whole, then [`Header::Complete`] with its length (the bytes after it are
//! the start of the HTTP request) and the client's address, or
//! [`Header::Broken`] as soon as the bytes cannot be a header.
//!
//! Invariants: a header is decided within [`V1_MAX`] bytes (version 1) or
//! [`V2_MAX`] (version 2), so the caller never holds more than that before
//! an answer; the same bytes fed in any number of pieces give the same
//! answer (each call looks at the whole prefix, which is at most `V2_MAX`).
//! Where the header names no TCP client (v1 `UNKNOWN`, v2 `LOCAL`, a UNIX
//! or unspecified family, a datagram transport) the address is `None`: the
//! socket's own address stays the client's, as the protocol says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Most bytes of a version 1 header, CRLF included (proxy-protocol.txt §2.1:
/// "a receiver may ... reject ... after 107 characters without a CRLF").
pub const V1_MAX: usize = 107;
/// Most bytes of a whole version 2 header: its 16 fixed bytes, the
/// addresses and any TLVs. The protocol allows 16 + 65,535; senders put
/// 28 or 52 bytes of addresses plus a few short TLVs (HAProxy's SSL and
/// unique-id ones, a cloud's endpoint id), far below this. nginx's own
/// bound is the first read into its 1 KiB header buffer; 4 KiB leaves room
/// for TLV-heavy senders and is a quarter of a connection's input buffer.
pub const V2_MAX: usize = 4096;

/// Version 1 starts with this (`PROXY` and one space).
const V1_SIG: &[u8] = b"PROXY ";
/// Version 2's 12-byte signature (§2.2).
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 2's fixed part: signature, version and command, family and
/// transport, length of what follows.
const V2_FIXED: usize = 16;

/// What the bytes received so far amount to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// A header may still come: read more.
    Partial,
    /// A whole header of this many bytes; the client it names, if any.
    Complete(usize, Option<SocketAddr>),
    /// Not a PROXY protocol header.
    Broken(Broken),
}

/// Why the bytes are not a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// Neither signature: no header at all (a plain HTTP request, say).
    Signature,
    /// Longer than [`V1_MAX`] or [`V2_MAX`].
    TooLong,
    /// v1: the line ends in a bare LF.
    LineEnd,
    /// v1: not `TCP4`, `TCP6` nor `UNKNOWN`, or not exactly four fields
    /// after it, one space apart.
    Fields,
    /// v1: an address that is not one of the stated family.
    Address,
    /// v1: a port that is not 1 to 5 digits up to 65535.
    Port,
    /// v2: a version other than 2.
    Version,
    /// v2: a command other than LOCAL and PROXY.
    Command,
    /// v2: an address family or transport the protocol does not define.
    Family,
    /// v2: a length too short for the addresses of its family.
    Short,
    /// The connection ended before the header did (told by the caller,
    /// which alone knows).
    Truncated,
}

impl Broken {
    /// What went wrong, for the error log.
    pub fn reason(self) -> &'static str {
        match self {
            Broken::Signature => "no PROXY protocol signature",
            Broken::TooLong => "header too long",
            Broken::LineEnd => "v1 line not ended by CRLF",
            Broken::Fields => "v1 fields malformed",
            Broken::Address => "v1 address invalid for its family",
            Broken::Port => "v1 port invalid",
            Broken::Version => "v2 version not 2",
            Broken::Command => "v2 command unknown",
            Broken::Family => "v2 family or transport unknown",
            Broken::Short => "v2 length too short for its addresses",
            Broken::Truncated => "truncated: the connection ended",
        }
    }
}

/// The header at the start of `b` (the bytes received so far).
pub fn parse(b: &[u8]) -> Header {
    match b.first() {
        None => Header::Partial,
        Some(b'P') => v1(b),
        Some(b'\r') => v2(b),
        Some(_) => Header::Broken(Broken::Signature),
    }
}

/// Whether `b` so far agrees with the first bytes of `sig`.
fn starts_like(b: &[u8], sig: &[u8]) -> bool {
    let n = b.len().min(sig.len());
    b.get(..n) == sig.get(..n)
}

/// `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN ...\r\n`.
fn v1(b: &[u8]) -> Header {
    if !starts_like(b, V1_SIG) {
        return Header::Broken(Broken::Signature);
    }
    let window = b.get(..b.len().min(V1_MAX)).unwrap_or(b);
    let Some(lf) = memchr::memchr(b'\n', window) else {
        return if b.len() >= V1_MAX {
            Header::Broken(Broken::TooLong)
        } else {
            Header::Partial
        };
    };
    let Some(line) = window.get(..lf).and_then(|l| l.strip_suffix(b"\r")) else {
        return Header::Broken(Broken::LineEnd);
    };
    // The signature is whole: the LF comes after it.
    let Some(rest) = line.strip_prefix(V1_SIG) else {
        return Header::Broken(Broken::Signature);
    };
    match v1_fields(rest) {
        Ok(addr) => Header::Complete(lf + 1, addr),
        Err(e) => Header::Broken(e),
    }
}

/// The fields after `PROXY `, CRLF taken off.
fn v1_fields(rest: &[u8]) -> Result<Option<SocketAddr>, Broken> {
    let mut fields = rest.split(|&c| c == b' ');
    let v6 = match fields.next() {
        Some(b"TCP4") => false,
        Some(b"TCP6") => true,
        // §2.1: whatever follows UNKNOWN up to the CRLF is ignored.
        Some(b"UNKNOWN") => return Ok(None),
        _ => return Err(Broken::Fields),
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(Broken::Fields);
    };
    let src = v1_addr(src, v6).ok_or(Broken::Address)?;
    v1_addr(dst, v6).ok_or(Broken::Address)?;
    let sport = v1_port(sport).ok_or(Broken::Port)?;
    v1_port(dport).ok_or(Broken::Port)?;
    Ok(Some(SocketAddr::new(src, sport)))
}

/// An address of the stated family, in its usual text form.
fn v1_addr(s: &[u8], v6: bool) -> Option<IpAddr> {
    let s = std::str::from_utf8(s).ok()?;
    if v6 {
        s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// A port: 1 to 5 decimal digits, at most 65535 (no sign, no space).
fn v1_port(s: &[u8]) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = s.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok()
}

/// The binary header: signature, version and command, family and
/// transport, a big-endian length, then that many bytes (addresses first,
/// then TLVs, which are skipped).
fn v2(b: &[u8]) -> Header {
    if !starts_like(b, V2_SIG) {
        return Header::Broken(Broken::Signature);
    }
    let Some(&[ver_cmd, fam, hi, lo]) = b.get(V2_SIG.len()..V2_FIXED) else {
        return Header::Partial;
    };
    if ver_cmd >> 4 != 2 {
        return Header::Broken(Broken::Version);
    }
    // §2.2: 0 is LOCAL, 1 PROXY; "receivers must drop connections
    // presenting unexpected values here".
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Header::Broken(Broken::Command),
    };
    let (family, transport) = (fam >> 4, fam & 0x0f);
    if family > 3 || transport > 2 {
        return Header::Broken(Broken::Family);
    }
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let total = V2_FIXED + len;
    if total > V2_MAX {
        return Header::Broken(Broken::TooLong);
    }
    let Some(body) = b.get(V2_FIXED..total) else {
        return Header::Partial;
    };
    if local {
        // A health check of the proxy itself: the socket is the client.
        return Header::Complete(total, None);
    }
    // Family 1 is AF_INET, 2 AF_INET6; transport 1 is STREAM.
    let addr = match (family, transport) {
        (1, 1) => {
            let Some(&[a, b2, c, d, _, _, _, _, p1, p2, _, _]) = body.get(..12) else {
                return Header::Broken(Broken::Short);
            };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(a, b2, c, d)),
                u16::from_be_bytes([p1, p2]),
            ))
        }
        (2, 1) => {
            let (Some(src), Some(&[p1, p2, _, _])) = (body.get(..16), body.get(32..36)) else {
                return Header::Broken(Broken::Short);
            };
            let mut ip = [0u8; 16];
            ip.copy_from_slice(src);
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(ip)),
                u16::from_be_bytes([p1, p2]),
            ))
        }
        // UNSPEC, AF_UNIX, or a datagram: no TCP client to name.
        _ => None,
    };
    Header::Complete(total, addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    /// A v2 header: version/command byte, family byte, then `body`.
    fn v2h(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = V2_SIG.to_vec();
        v.push(ver_cmd);
        v.push(fam);
        v.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn inet(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut v = src.to_vec();
        v.extend_from_slice(&dst);
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v
    }

    fn inet6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
        let mut v = src.octets().to_vec();
        v.extend_from_slice(&dst.octets());
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v
    }

    /// Every whole header of the tables below, and its answer.
    fn complete_cases() -> Vec<(&'static str, Vec<u8>, Header)> {
        let tcp4 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n".to_vec();
        let tcp6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n".to_vec();
        let mut tlvs = inet([203, 0, 113, 7], [10, 0, 0, 1], 4000, 80);
        // PP2_TYPE_ALPN "h2", PP2_TYPE_AUTHORITY "example.com", PP2_TYPE_NOOP.
        tlvs.extend_from_slice(b"\x01\x00\x02h2\x02\x00\x0bexample.com\x04\x00\x00");
        let mut unix = vec![b'/'; 216];
        unix[1] = b'x';
        let v6max = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        // §2.1's worst case is exactly the bound.
        let longest_v1 = format!("PROXY UNKNOWN {v6max} {v6max} 65535 65535\r\n");
        assert_eq!(longest_v1.len(), V1_MAX);
        let longest_tcp6 = format!("PROXY TCP6 {v6max} {v6max} 65535 65535\r\n");
        let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);
        vec![
            (
                "v1 tcp4",
                tcp4.clone(),
                Header::Complete(tcp4.len(), addr("192.0.2.1:56324")),
            ),
            (
                "v1 tcp6",
                tcp6.clone(),
                Header::Complete(tcp6.len(), addr("[2001:db8::1]:65535")),
            ),
            (
                "v1 tcp6 mapped",
                b"PROXY TCP6 ::ffff:192.0.2.9 ::1 1 2\r\n".to_vec(),
                Header::Complete(37, addr("[::ffff:192.0.2.9]:1")),
            ),
            (
                "v1 unknown",
                b"PROXY UNKNOWN\r\n".to_vec(),
                Header::Complete(15, None),
            ),
            (
                "v1 unknown with fields",
                b"PROXY UNKNOWN ffff:f::1 ffff::2 1 2\r\n".to_vec(),
                Header::Complete(37, None),
            ),
            (
                "v1 longest",
                longest_v1.into_bytes(),
                Header::Complete(V1_MAX, None),
            ),
            (
                "v1 longest tcp6",
                longest_tcp6.into_bytes(),
                Header::Complete(104, addr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")),
            ),
            (
                "v1 port zero, leading zeros",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 00080 0\r\n".to_vec(),
                Header::Complete(36, addr("1.2.3.4:80")),
            ),
            (
                "v2 tcp4",
                v2h(
                    0x21,
                    0x11,
                    &inet([192, 0, 2, 1], [192, 0, 2, 2], 56324, 443),
                ),
                Header::Complete(28, addr("192.0.2.1:56324")),
            ),
            (
                "v2 tcp6",
                v2h(0x21, 0x21, &inet6(v6, Ipv6Addr::LOCALHOST, 1234, 80)),
                Header::Complete(52, addr("[2001:db8::7]:1234")),
            ),
            (
                "v2 tcp4 with tlvs",
                v2h(0x21, 0x11, &tlvs),
                Header::Complete(16 + tlvs.len(), addr("203.0.113.7:4000")),
            ),
            ("v2 local", v2h(0x20, 0x00, b""), Header::Complete(16, None)),
            (
                "v2 local with addresses",
                v2h(0x20, 0x11, &inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)),
                Header::Complete(28, None),
            ),
            // LOCAL may carry anything, even too few bytes for its family.
            (
                "v2 local short",
                v2h(0x20, 0x11, b"ab"),
                Header::Complete(18, None),
            ),
            (
                "v2 unspec",
                v2h(0x21, 0x00, b""),
                Header::Complete(16, None),
            ),
            (
                "v2 unix",
                v2h(0x21, 0x31, &unix),
                Header::Complete(16 + 216, None),
            ),
            (
                "v2 udp4",
                v2h(0x21, 0x12, &inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)),
                Header::Complete(28, None),
            ),
            (
                "v2 largest",
                v2h(0x21, 0x11, &[7u8; V2_MAX - 16]),
                Header::Complete(V2_MAX, addr("7.7.7.7:1799")),
            ),
        ]
    }

    #[test]
    fn whole_headers() {
        for (name, bytes, want) in complete_cases() {
            assert_eq!(parse(&bytes), want, "{name}");
            // What follows is the request's, and left alone.
            let mut more = bytes.clone();
            more.extend_from_slice(b"GET / HTTP/1.1\r\n\r\nPROXY TCP4 x\r\n");
            assert_eq!(parse(&more), want, "{name} with a request after it");
        }
    }

    #[test]
    fn every_prefix_is_partial_and_one_byte_at_a_time_agrees() {
        for (name, bytes, want) in complete_cases() {
            for n in 0..bytes.len() {
                assert_eq!(parse(&bytes[..n]), Header::Partial, "{name}: {n} bytes");
            }
            // Fed as a connection gets it, one byte per read.
            let mut got = Vec::new();
            let mut answer = Header::Partial;
            for &b in &bytes {
                got.push(b);
                answer = parse(&got);
                if answer != Header::Partial {
                    break;
                }
            }
            assert_eq!((answer, got.len()), (want, bytes.len()), "{name}");
        }
    }

    #[test]
    fn broken_headers() {
        let long = format!("PROXY TCP4 1.2.3.4 5.6.7.8 1 2{}\r\n", " ".repeat(80));
        let cases: Vec<(&str, Vec<u8>, Broken)> = vec![
            (
                "plain http",
                b"GET / HTTP/1.1\r\n".to_vec(),
                Broken::Signature,
            ),
            (
                "lower case",
                b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
                Broken::Signature,
            ),
            (
                "no space after PROXY",
                b"PROXYTCP4 1.2.3.4\r\n".to_vec(),
                Broken::Signature,
            ),
            ("PROXY alone", b"PROXY\r\n".to_vec(), Broken::Signature),
            (
                "bare LF",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".to_vec(),
                Broken::LineEnd,
            ),
            (
                "CR inside",
                b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n".to_vec(),
                Broken::Fields,
            ),
            (
                "no CRLF in 107 bytes",
                [&b"PROXY UNKNOWN "[..], &[b'x'; 93]].concat(),
                Broken::TooLong,
            ),
            ("112-byte line", long.into_bytes(), Broken::TooLong),
            (
                "108-byte line",
                [&b"PROXY UNKNOWN "[..], &[b'x'; 92], b"\r\n"].concat(),
                Broken::TooLong,
            ),
            (
                "tcp5",
                b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
                Broken::Fields,
            ),
            (
                "unknown glued",
                b"PROXY UNKNOWNX\r\n".to_vec(),
                Broken::Fields,
            ),
            ("empty", b"PROXY \r\n".to_vec(), Broken::Fields),
            (
                "too few fields",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".to_vec(),
                Broken::Fields,
            ),
            (
                "too many fields",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n".to_vec(),
                Broken::Fields,
            ),
            (
                "two spaces",
                b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
                Broken::Fields,
            ),
            (
                "CR in a field",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n".to_vec(),
                Broken::Port,
            ),
            (
                "trailing space",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n".to_vec(),
                Broken::Fields,
            ),
            (
                "v6 address in tcp4",
                b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n".to_vec(),
                Broken::Address,
            ),
            (
                "v4 address in tcp6",
                b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n".to_vec(),
                Broken::Address,
            ),
            (
                "v4 destination in tcp6",
                b"PROXY TCP6 ::1 1.2.3.4 1 2\r\n".to_vec(),
                Broken::Address,
            ),
            (
                "octal-looking",
                b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
                Broken::Address,
            ),
            (
                "bracketed v6",
                b"PROXY TCP6 [::1] ::2 1 2\r\n".to_vec(),
                Broken::Address,
            ),
            (
                "host name",
                b"PROXY TCP4 localhost 5.6.7.8 1 2\r\n".to_vec(),
                Broken::Address,
            ),
            (
                "port too big",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n".to_vec(),
                Broken::Port,
            ),
            (
                "port six digits",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 000080 2\r\n".to_vec(),
                Broken::Port,
            ),
            (
                "port signed",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n".to_vec(),
                Broken::Port,
            ),
            (
                "port hex",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 0x50\r\n".to_vec(),
                Broken::Port,
            ),
            (
                "port garbage",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 8a\r\n".to_vec(),
                Broken::Port,
            ),
            (
                "port empty",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n".to_vec(),
                Broken::Port,
            ),
            (
                "v2 bad signature",
                b"\r\n\r\n\0\r\nQUIZ\n\x21\x11\0\x0c".to_vec(),
                Broken::Signature,
            ),
            ("v2 signature cut", b"\r\nGET".to_vec(), Broken::Signature),
            ("v2 version 1", v2h(0x11, 0x11, &[0; 12]), Broken::Version),
            ("v2 version 3", v2h(0x31, 0x11, &[0; 12]), Broken::Version),
            ("v2 command 2", v2h(0x22, 0x11, &[0; 12]), Broken::Command),
            ("v2 command 15", v2h(0x2f, 0x11, &[0; 12]), Broken::Command),
            ("v2 family 4", v2h(0x21, 0x41, &[0; 12]), Broken::Family),
            ("v2 transport 3", v2h(0x21, 0x13, &[0; 12]), Broken::Family),
            ("v2 tcp4 short", v2h(0x21, 0x11, &[0; 11]), Broken::Short),
            ("v2 tcp6 short", v2h(0x21, 0x21, &[0; 35]), Broken::Short),
            (
                "v2 one byte too long",
                v2h(0x21, 0x11, &[0; V2_MAX - 15]),
                Broken::TooLong,
            ),
            // Refused as soon as the length is known: nothing more is read.
            (
                "v2 longest length",
                {
                    let mut v = V2_SIG.to_vec();
                    v.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
                    v
                },
                Broken::TooLong,
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(parse(&bytes), Header::Broken(want), "{name}");
            // Told no later than a whole prefix could say it, and never
            // taken back: every longer prefix says the same or is partial
            // before it.
            let first = (0..=bytes.len())
                .find(|&n| parse(&bytes[..n]) != Header::Partial)
                .unwrap();
            for n in first..=bytes.len() {
                assert_eq!(
                    parse(&bytes[..n]),
                    Header::Broken(want),
                    "{name}: {n} bytes"
                );
            }
        }
    }

    #[test]
    fn a_broken_start_is_told_at_once() {
        // The bytes of a plain request are refused at their first byte,
        // so a client that is not a proxy is not kept waiting for a timeout.
        assert_eq!(parse(b"G"), Header::Broken(Broken::Signature));
        assert_eq!(parse(b"PROXZ"), Header::Broken(Broken::Signature));
        assert_eq!(parse(b"\r\n\r\n\x01"), Header::Broken(Broken::Signature));
        assert_eq!(parse(b"PROX"), Header::Partial);
        assert_eq!(parse(b"\r\n\r\n\0\r\nQUI"), Header::Partial);
        // v2 says what is wrong as soon as its fixed part is in.
        assert_eq!(parse(&v2h(0x21, 0x11, &[0; 12])[..16]), Header::Partial);
        assert_eq!(
            parse(&v2h(0x31, 0x11, &[0; 12])[..16]),
            Header::Broken(Broken::Version)
        );
    }

    #[test]
    fn every_reason_is_said() {
        for b in [
            Broken::Signature,
            Broken::TooLong,
            Broken::LineEnd,
            Broken::Fields,
            Broken::Address,
            Broken::Port,
            Broken::Version,
            Broken::Command,
            Broken::Family,
            Broken::Short,
            Broken::Truncated,
        ] {
            assert!(!b.reason().is_empty(), "{b:?}");
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic_and_agree_piecewise() {
        let seeds: Vec<Vec<u8>> = complete_cases().into_iter().map(|(_, b, _)| b).collect();
        let pieces: &[&[u8]] = &[b"\r\n", b" ", b"\0", b"\xff", b"PROXY ", b"::", b".", b"9"];
        let mut state = 0x5EED_FACE_B00C_0001_u64;
        for i in 0..20_000 {
            let mut v = if i % 5 == 0 {
                let len = crate::testkit::below(&mut state, 200);
                (0..len)
                    .map(|_| crate::testkit::xorshift(&mut state) as u8)
                    .collect()
            } else {
                seeds[crate::testkit::below(&mut state, seeds.len())].clone()
            };
            crate::testkit::mutate(&mut state, &mut v, pieces);
            let whole = parse(&v);
            match whole {
                Header::Complete(n, _) => assert!(n <= v.len() && n <= V2_MAX, "{v:?}"),
                Header::Partial => assert!(v.len() < V2_MAX, "{v:?}"),
                Header::Broken(_) => {}
            }
            // The first answer that is not Partial, fed byte by byte, is
            // the whole input's (it never depends on bytes after it).
            let first = (0..=v.len())
                .map(|n| parse(&v[..n]))
                .find(|h| *h != Header::Partial);
            if let Some(h) = first {
                assert_eq!(h, whole, "{v:?}");
            }
        }
    }
}
