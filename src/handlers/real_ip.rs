//! The client's real address behind a trusted proxy (CONFIG.md
//! `set_real_ip_from`, `real_ip_header`): when the connection comes from a
//! trusted address, the field `real_ip_header` names the client, or with
//! `real_ip_header proxy_protocol` the connection's PROXY protocol header
//! does (nginx's realip: its port comes along; a connection without one,
//! or whose header named no client, keeps its own address). With
//! `X-Forwarded-For` (a comma-separated chain, one hop appended by each
//! proxy) the rightmost address that is not trusted is the client, as
//! nginx's `real_ip_recursive on`; every hop trusted leaves the leftmost.
//! A field that is missing or does not hold addresses leaves the
//! connection's address, as does an untrusted connection (so a client can
//! never name itself). The address found counts for the access log,
//! `allow`/`deny`, limits and `REMOTE_ADDR`.

use std::net::{IpAddr, SocketAddr};

use crate::config::Server;
use crate::http::Request;

/// Whether `ip` is one of the trusted proxies.
fn trusted(server: &Server, ip: IpAddr) -> bool {
    server.real_ip_from.iter().any(|n| n.contains(ip))
}

/// One address of a field: an IP, IPv6 possibly in brackets.
fn parse_ip(s: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(s).ok()?.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// The client of a request that came over `peer` (its port is kept: the
/// fields carry none), whose PROXY protocol header named `proxied`.
pub fn client(
    server: &Server,
    req: &Request<'_>,
    peer: SocketAddr,
    proxied: Option<SocketAddr>,
) -> SocketAddr {
    if server.real_ip_from.is_empty() || !trusted(server, peer.ip()) {
        return peer;
    }
    if server.real_ip_header == "proxy_protocol" {
        return proxied.unwrap_or(peer);
    }
    let name = server.real_ip_header.as_str();
    let found = if name == "x-forwarded-for" {
        // Every line of the field, in order, is one chain.
        let mut hops: Vec<&[u8]> = Vec::new();
        for h in req
            .headers()
            .filter(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
        {
            hops.extend(h.value.split(|&b| b == b','));
        }
        let mut chosen = None;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_ip(hop) else {
                // Garbage in the chain: trust none of it.
                return peer;
            };
            chosen = Some(ip);
            if !trusted(server, ip) {
                break;
            }
        }
        chosen
    } else {
        req.header(name).and_then(parse_ip)
    };
    found.map_or(peer, |ip| SocketAddr::new(ip, peer.port()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::http::{Parse, ParseState, parse_head};

    fn server(extra: &str) -> Server {
        let text = format!("server {{ listen 127.0.0.1:8080; {extra} }}");
        let (c, _) = config::parse_str(&text, "t.conf", std::path::Path::new("/")).unwrap();
        c.servers.into_iter().next().unwrap()
    }

    fn client_of(s: &Server, fields: &str, peer: &str) -> String {
        client_via(s, fields, peer, None)
    }

    /// The client of a request with `fields` over `peer`, whose PROXY
    /// protocol header named `proxied`; with the port when it is not the
    /// socket's (5000).
    fn client_via(s: &Server, fields: &str, peer: &str, proxied: Option<&str>) -> String {
        let raw = format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n");
        let Ok(Parse::Complete(req, _)) = parse_head(raw.as_bytes(), &mut ParseState::default())
        else {
            panic!("unparsed {raw:?}");
        };
        let peer = SocketAddr::new(peer.parse().unwrap(), 5000);
        let proxied = proxied.map(|p| p.parse().unwrap());
        let got = client(s, &req, peer, proxied);
        if got.port() == 5000 {
            got.ip().to_string()
        } else {
            got.to_string()
        }
    }

    #[test]
    fn x_real_ip_from_a_trusted_proxy_only() {
        let s = server("set_real_ip_from 10.0.0.0/8;");
        assert_eq!(
            client_of(&s, "X-Real-IP: 203.0.113.7\r\n", "10.1.1.1"),
            "203.0.113.7"
        );
        assert_eq!(
            client_of(&s, "X-Real-IP: 203.0.113.7\r\n", "192.0.2.1"),
            "192.0.2.1"
        );
        assert_eq!(
            client_of(&s, "X-Real-IP: nonsense\r\n", "10.1.1.1"),
            "10.1.1.1"
        );
        assert_eq!(client_of(&s, "", "10.1.1.1"), "10.1.1.1");
        assert_eq!(
            client_of(&s, "X-Real-IP: [2001:db8::1]\r\n", "10.1.1.1"),
            "2001:db8::1"
        );
        // No trusted proxy at all: the field is ignored.
        let none = server("");
        assert_eq!(
            client_of(&none, "X-Real-IP: 203.0.113.7\r\n", "10.1.1.1"),
            "10.1.1.1"
        );
    }

    #[test]
    fn x_forwarded_for_takes_the_rightmost_untrusted_hop() {
        let s = server(
            "set_real_ip_from 10.0.0.0/8; set_real_ip_from ::1; real_ip_header X-Forwarded-For;",
        );
        for (field, peer, want) in [
            ("1.1.1.1, 2.2.2.2, 10.0.0.2", "10.0.0.1", "2.2.2.2"),
            ("1.1.1.1", "10.0.0.1", "1.1.1.1"),
            // Every hop trusted: the leftmost.
            ("10.0.0.5, 10.0.0.6", "10.0.0.1", "10.0.0.5"),
            // A client's forged first hops do not matter.
            ("6.6.6.6, 3.3.3.3", "::1", "3.3.3.3"),
            // Garbage: the connection's address.
            ("1.1.1.1, x, 10.0.0.2", "10.0.0.1", "10.0.0.1"),
            // Untrusted connection: the field is not read.
            ("1.1.1.1", "192.0.2.9", "192.0.2.9"),
        ] {
            let fields = format!("X-Forwarded-For: {field}\r\n");
            assert_eq!(client_of(&s, &fields, peer), want, "{field} via {peer}");
        }
        // Two lines are one chain.
        let two = "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 4.4.4.4, 10.0.0.3\r\n";
        assert_eq!(client_of(&s, two, "10.0.0.1"), "4.4.4.4");
    }

    #[test]
    fn proxy_protocol_names_the_client_of_a_trusted_proxy_only() {
        let s = server("set_real_ip_from 10.0.0.0/8; real_ip_header proxy_protocol;");
        // Its port comes along, as nginx's realip takes it.
        assert_eq!(
            client_via(&s, "", "10.1.1.1", Some("203.0.113.7:4711")),
            "203.0.113.7:4711"
        );
        assert_eq!(
            client_via(&s, "", "10.1.1.1", Some("[2001:db8::9]:80")),
            "[2001:db8::9]:80"
        );
        // An untrusted connection keeps its own address.
        assert_eq!(
            client_via(&s, "", "192.0.2.1", Some("203.0.113.7:4711")),
            "192.0.2.1"
        );
        // A header that named no client (LOCAL, UNKNOWN): the socket's.
        assert_eq!(client_via(&s, "", "10.1.1.1", None), "10.1.1.1");
        // The fields are not read for it.
        assert_eq!(
            client_via(&s, "X-Real-IP: 198.51.100.1\r\n", "10.1.1.1", None),
            "10.1.1.1"
        );
        // Without `real_ip_header proxy_protocol` the header's address is
        // not the client's (nginx), even from a trusted proxy...
        let fields = server("set_real_ip_from 10.0.0.0/8;");
        assert_eq!(
            client_via(&fields, "", "10.1.1.1", Some("203.0.113.7:4711")),
            "10.1.1.1"
        );
        assert_eq!(
            client_via(
                &fields,
                "X-Real-IP: 198.51.100.1\r\n",
                "10.1.1.1",
                Some("203.0.113.7:4711")
            ),
            "198.51.100.1"
        );
        // ...nor without `set_real_ip_from`.
        let none = server("real_ip_header proxy_protocol;");
        assert_eq!(
            client_via(&none, "", "10.1.1.1", Some("203.0.113.7:4711")),
            "10.1.1.1"
        );
    }
}
