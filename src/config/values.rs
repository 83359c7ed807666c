//! Value parsers for directive arguments: sizes, durations, numbers, flags,
//! `listen` addresses, server names, paths. Pure functions over `&str`;
//! `None`/`Err` means the argument is invalid and the caller names it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A non-empty run of ASCII digits as `u64` (no sign, no spaces); `None` on
/// anything else or overflow.
pub(crate) fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A size: bytes, or with `k`/`K`, `m`/`M`, `g`/`G` (powers of 1024, as nginx).
pub(crate) fn size(s: &str) -> Option<u64> {
    let (digits, unit) = if let Some(d) = s.strip_suffix(['k', 'K']) {
        (d, 1u64 << 10)
    } else if let Some(d) = s.strip_suffix(['m', 'M']) {
        (d, 1 << 20)
    } else if let Some(d) = s.strip_suffix(['g', 'G']) {
        (d, 1 << 30)
    } else {
        (s, 1)
    };
    number(digits)?.checked_mul(unit)
}

/// `limit_req`'s rate, `Nr/s` or `Nr/m`, in thousandths of a request per
/// second (nginx's unit: `600r/m` and `10r/s` are both 10000). At least
/// one thousandth, at most a million requests a second.
pub(crate) fn request_rate(s: &str) -> Option<u64> {
    let (digits, scale) = if let Some(d) = s.strip_suffix("r/s") {
        (d, 1)
    } else if let Some(d) = s.strip_suffix("r/m") {
        (d, 60)
    } else {
        return None;
    };
    let n = number(digits).filter(|&n| n <= 1_000_000)?;
    Some(n * 1000 / scale).filter(|&r| r > 0)
}

/// A duration: a bare number of seconds, or one or more `NUMBER UNIT` parts
/// with units `d`, `h`, `m`, `s`, `ms` from largest to smallest, each at
/// most once (nginx: `1m30s`, `1h30m`, `500ms`).
pub(crate) fn duration(s: &str) -> Option<Duration> {
    if let Some(n) = number(s) {
        return Some(Duration::from_secs(n));
    }
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut total_ms: u64 = 0;
    // The rank of the last unit seen; the next one must be smaller.
    let mut last_rank = u8::MAX;
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let n = number(s.get(start..i)?)?;
        let (rank, ms_per_unit, len) = match (b.get(i), b.get(i + 1)) {
            (Some(b'm'), Some(b's')) => (0, 1, 2),
            (Some(b's'), _) => (1, 1_000, 1),
            (Some(b'm'), _) => (2, 60_000, 1),
            (Some(b'h'), _) => (3, 3_600_000, 1),
            (Some(b'd'), _) => (4, 86_400_000, 1),
            _ => return None,
        };
        if rank >= last_rank {
            return None;
        }
        last_rank = rank;
        i += len;
        total_ms = total_ms.checked_add(n.checked_mul(ms_per_unit)?)?;
    }
    Some(Duration::from_millis(total_ms))
}

/// `on` or `off`, case-insensitively (nginx's flag slots use strcasecmp).
pub(crate) fn flag(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("on") {
        Some(true)
    } else if s.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}

/// A TCP port, 1..=65535.
pub(crate) fn port(s: &str) -> Option<u16> {
    number(s)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&p| p != 0)
}

/// The address part of `listen [ADDR:]PORT`.
///
/// `PORT` alone → `0.0.0.0:PORT`; ADDR is IPv4, `[IPv6]`, `localhost`
/// (→ 127.0.0.1) or `*` (→ 0.0.0.0). As in nginx an address without a port
/// listens on 80. Returns why it is wrong otherwise.
pub(crate) fn listen_addr(s: &str) -> Result<SocketAddr, &'static str> {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let p = port(s).ok_or("invalid port")?;
        return Ok(SocketAddr::new(any, p));
    }
    let (ip, port_str) = if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("invalid IPv6 address")?;
        let ip: Ipv6Addr = inside.parse().map_err(|_| "invalid IPv6 address")?;
        let port_str = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':').ok_or("invalid port")?)
        };
        (IpAddr::V6(ip), port_str)
    } else {
        let (host, port_str) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let ip = if host == "*" {
            any
        } else if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V4(host.parse().map_err(|_| "invalid address")?)
        };
        (ip, port_str)
    };
    let p = match port_str {
        None => 80,
        Some(p) => port(p).ok_or("invalid port")?,
    };
    Ok(SocketAddr::new(ip, p))
}

/// A `server_name` entry: lowercased, one trailing dot removed. Wildcards
/// are `*.rest`, `.rest` (the name and its subdomains) or `rest.*`; a `*`
/// anywhere else, or a regular expression (`~`), is refused.
pub(crate) fn server_name(s: &str) -> Option<String> {
    let mut name = s.to_ascii_lowercase();
    if name.len() > 1 && name.ends_with('.') {
        name.pop();
    }
    if name.starts_with('~') || name.contains(['/', ' ', '\t']) {
        return None;
    }
    let stars = name.matches('*').count();
    let ok = match stars {
        0 => !(name.starts_with('.') && name.len() == 1),
        1 => {
            (name.starts_with("*.") && name.len() > 2)
                || (name.ends_with(".*") && name.len() > 2 && !name.starts_with('.'))
        }
        _ => false,
    };
    ok.then_some(name)
}

/// A path argument made absolute against `dir` (the folder of the file that
/// holds it). Not canonicalised: the folder may not exist yet.
pub(crate) fn path(dir: &Path, s: &str) -> PathBuf {
    dir.join(s)
}

/// Whether `s` may be an HTTP header field name (RFC 9110 §5.1: a token).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `s` may be a header field value: no CR, LF or NUL (which would
/// let a configuration inject a header or split a response).
pub(crate) fn is_field_value(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_rates() {
        assert_eq!(request_rate("10r/s"), Some(10_000));
        assert_eq!(request_rate("600r/m"), Some(10_000));
        assert_eq!(request_rate("5r/s"), Some(5_000));
        assert_eq!(request_rate("1r/m"), Some(16));
        for bad in [
            "",
            "r/s",
            "10",
            "10r",
            "10r/h",
            "-1r/s",
            "0r/s",
            "0r/m",
            "1.5r/s",
            "2000000r/s",
        ] {
            assert_eq!(request_rate(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("123", Some(123)),
            ("1k", Some(1024)),
            ("1K", Some(1024)),
            ("2m", Some(2 << 20)),
            ("2M", Some(2 << 20)),
            ("3g", Some(3 << 30)),
            ("3G", Some(3 << 30)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("17179869184g", None),
            ("", None),
            ("k", None),
            ("1x", None),
            ("1kb", None),
            ("-1", None),
            ("+1", None),
            ("1.5m", None),
            (" 1", None),
        ];
        for (s, want) in cases {
            assert_eq!(size(s), *want, "{s:?}");
        }
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        let cases: &[(&str, Option<Duration>)] = &[
            ("0", Some(ms(0))),
            ("75", Some(ms(75_000))),
            ("75s", Some(ms(75_000))),
            ("500ms", Some(ms(500))),
            ("2m", Some(ms(120_000))),
            ("1h", Some(ms(3_600_000))),
            ("1d", Some(ms(86_400_000))),
            ("1m30s", Some(ms(90_000))),
            ("1h30m", Some(ms(5_400_000))),
            ("1d2h3m4s5ms", Some(ms(93_784_005))),
            ("30s1m", None),
            ("1m1m", None),
            ("1m30", None),
            ("", None),
            ("s", None),
            ("10x", None),
            ("10 s", None),
            ("-5s", None),
            ("1.5s", None),
            ("18446744073709551615", Some(Duration::from_secs(u64::MAX))),
            ("18446744073709551615d", None),
            ("99999999999999999999s", None),
        ];
        for (s, want) in cases {
            assert_eq!(duration(s), *want, "{s:?}");
        }
    }

    #[test]
    fn flags_and_ports() {
        assert_eq!(flag("on"), Some(true));
        assert_eq!(flag("OFF"), Some(false));
        assert_eq!(flag("yes"), None);
        assert_eq!(flag(""), None);
        assert_eq!(port("1"), Some(1));
        assert_eq!(port("65535"), Some(65535));
        assert_eq!(port("0"), None);
        assert_eq!(port("65536"), None);
        assert_eq!(port("80a"), None);
    }

    #[test]
    fn listen_forms() {
        let ok: &[(&str, &str)] = &[
            ("80", "0.0.0.0:80"),
            ("8080", "0.0.0.0:8080"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("localhost:81", "127.0.0.1:81"),
            ("LOCALHOST:81", "127.0.0.1:81"),
            ("*:82", "0.0.0.0:82"),
            ("[::1]:8080", "[::1]:8080"),
            ("[::]:80", "[::]:80"),
            ("127.0.0.1", "127.0.0.1:80"),
            ("localhost", "127.0.0.1:80"),
            ("[::1]", "[::1]:80"),
        ];
        for (s, want) in ok {
            assert_eq!(listen_addr(s).unwrap().to_string(), *want, "{s}");
        }
        for bad in [
            "0",
            "65536",
            "99999999999999999999",
            "1.2.3.4:0",
            "1.2.3.4:",
            "1.2.3:80",
            "example.com:80",
            "[::1:80",
            "[::1]80",
            "[zz]:80",
            "::1:80",
            ":80",
            "",
            "80x",
        ] {
            assert!(listen_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Example.COM", Some("example.com")),
            ("example.com.", Some("example.com")),
            ("", Some("")),
            ("*.example.com", Some("*.example.com")),
            ("www.example.*", Some("www.example.*")),
            (".example.com", Some(".example.com")),
            ("a*b.com", None),
            ("*", None),
            ("*.a.*", None),
            ("~^www", None),
            (".", None),
        ];
        for (s, want) in cases {
            assert_eq!(server_name(s).as_deref(), *want, "{s:?}");
        }
    }

    #[test]
    fn paths_and_headers() {
        assert_eq!(
            path(Path::new("/etc/ls"), "www"),
            PathBuf::from("/etc/ls/www")
        );
        assert_eq!(path(Path::new("/etc/ls"), "/srv"), PathBuf::from("/srv"));
        assert!(is_token("X-Frame-Options"));
        assert!(!is_token("Bad Name"));
        assert!(!is_token(""));
        assert!(is_field_value("a b; c"));
        assert!(!is_field_value("a\r\nX: y"));
    }
}
