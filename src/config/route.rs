//! Request-time lookups over a built `Config`: listeners (servers grouped by
//! address), virtual host choice, and location choice. No allocation per
//! request: these compare bytes in place.

use std::net::SocketAddr;
use std::sync::OnceLock;

use super::build::default_location;
use super::{Config, Location, Server};

/// One listening address and the servers on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The address to bind.
    pub addr: SocketAddr,
    /// Indexes into `Config::servers`, in configuration order.
    pub servers: Vec<usize>,
    /// The server for a Host that no `server_name` matches.
    pub default: usize,
    /// Connections start with a PROXY protocol header (`listen ...
    /// proxy_protocol`; every `listen` of the address says the same).
    pub proxy_protocol: bool,
}

impl Config {
    /// Group servers by ADDR:PORT (order of first appearance); default = the
    /// one marked default_server, else the first.
    pub fn listeners(&self) -> Vec<ListenerSpec> {
        // (spec, whether its default was chosen by `default_server`)
        let mut out: Vec<(ListenerSpec, bool)> = Vec::new();
        for (si, server) in self.servers.iter().enumerate() {
            for l in &server.listen {
                match out.iter_mut().find(|(s, _)| s.addr == l.addr) {
                    Some((spec, marked)) => {
                        if !spec.servers.contains(&si) {
                            spec.servers.push(si);
                        }
                        // (Validation rejects a listen that disagrees.)
                        spec.proxy_protocol |= l.proxy_protocol;
                        if l.default_server && !*marked {
                            spec.default = si;
                            *marked = true;
                        }
                    }
                    None => out.push((
                        ListenerSpec {
                            addr: l.addr,
                            servers: vec![si],
                            default: si,
                            proxy_protocol: l.proxy_protocol,
                        },
                        l.default_server,
                    )),
                }
            }
        }
        out.into_iter().map(|(s, _)| s).collect()
    }
}

/// `host` ends with `.suffix` and has something before the dot.
fn ends_with_label(host: &[u8], suffix: &[u8]) -> bool {
    host.len() > suffix.len() + 1
        && host
            .get(host.len() - suffix.len() - 1..)
            .and_then(|t| t.split_first())
            .is_some_and(|(dot, rest)| *dot == b'.' && rest.eq_ignore_ascii_case(suffix))
}

/// `host` starts with `prefix.` and has something after the dot.
fn starts_with_label(host: &[u8], prefix: &[u8]) -> bool {
    host.len() > prefix.len() + 1
        && host.get(prefix.len()) == Some(&b'.')
        && host
            .get(..prefix.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

impl ListenerSpec {
    /// Virtual host choice: the server (index into config.servers) whose
    /// server_name equals `host` ASCII-case-insensitively (host given
    /// without port/trailing dot); `None` host matches a server named "";
    /// nginx-style wildcards `*.example.com` and `www.example.*` also match
    /// (exact names win over wildcards); otherwise the default server.
    ///
    /// As in nginx, among wildcards the longest leading one (`*.x.y`, or
    /// `.x.y` which also matches `x.y` itself) wins, then the longest
    /// trailing one (`www.x.*`); among equals the first server. One trailing
    /// dot on `host` is ignored here too.
    pub fn select(&self, config: &Config, host: Option<&[u8]>) -> usize {
        let host = host.map(|h| h.strip_suffix(b".").unwrap_or(h));
        // (server, matched length) of the best leading and trailing wildcard.
        let mut lead: Option<(usize, usize)> = None;
        let mut trail: Option<(usize, usize)> = None;
        for &si in &self.servers {
            let Some(server) = config.servers.get(si) else {
                continue;
            };
            for name in &server.names {
                let n = name.as_bytes();
                let Some(h) = host else {
                    if n.is_empty() {
                        return si;
                    }
                    continue;
                };
                if n.eq_ignore_ascii_case(h) {
                    return si;
                }
                let leading = if let Some(suffix) = n.strip_prefix(b"*.") {
                    ends_with_label(h, suffix).then_some(suffix.len())
                } else if let Some(suffix) = n.strip_prefix(b".") {
                    (h.eq_ignore_ascii_case(suffix) || ends_with_label(h, suffix))
                        .then_some(suffix.len())
                } else {
                    None
                };
                if let Some(len) = leading
                    && lead.is_none_or(|(_, best)| len > best)
                {
                    lead = Some((si, len));
                } else if let Some(prefix) = n.strip_suffix(b".*")
                    && starts_with_label(h, prefix)
                    && trail.is_none_or(|(_, best)| prefix.len() > best)
                {
                    trail = Some((si, prefix.len()));
                }
            }
        }
        lead.or(trail).map_or(self.default, |(si, _)| si)
    }
}

/// Whether prefix `p` matches `path` at a segment boundary.
fn prefix_matches(p: &str, path: &str) -> bool {
    match path.strip_prefix(p) {
        Some("") => true,
        Some(rest) => p.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

impl Server {
    /// Route: `location =` exact match first, else the longest prefix
    /// matching at a segment boundary (prefix P matches path if path == P, or
    /// path starts with P and (P ends with '/' or the next byte is '/')).
    ///
    /// Never fails: every built server has a `location /`; for a hand-built
    /// one without, a location with all defaults (no root) is returned.
    pub fn find_location(&self, path: &str) -> &Location {
        let mut best: Option<&Location> = None;
        for loc in &self.locations {
            if loc.exact {
                if loc.prefix == path {
                    return loc;
                }
            } else if prefix_matches(&loc.prefix, path)
                && best.is_none_or(|b| loc.prefix.len() > b.prefix.len())
            {
                best = Some(loc);
            }
        }
        best.unwrap_or_else(|| {
            static FALLBACK: OnceLock<Location> = OnceLock::new();
            FALLBACK.get_or_init(default_location)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    fn config(text: &str) -> Config {
        parse_str(text, "t.conf", Path::new("/nowhere")).unwrap().0
    }

    #[test]
    fn segment_boundary() {
        let cases: &[(&str, &str, bool)] = &[
            ("/img", "/img", true),
            ("/img", "/img/", true),
            ("/img", "/img/a.png", true),
            ("/img", "/imgx", false),
            ("/img", "/im", false),
            ("/img/", "/img/a", true),
            ("/img/", "/img", false),
            ("/", "/anything", true),
            ("/", "/", true),
            ("/a/b", "/a/b/c", true),
            ("/a/b", "/a/bc", false),
        ];
        for (p, path, want) in cases {
            assert_eq!(prefix_matches(p, path), *want, "{p} {path}");
        }
    }

    #[test]
    fn find_location_table() {
        let c = config(
            "server {
                location /img { }
                location /img/icons/ { }
                location = /img { }
                location /api { }
                location = /exact { }
            }",
        );
        let s = &c.servers[0];
        let cases: &[(&str, &str, bool, bool)] = &[
            // path, prefix, exact, implicit
            ("/img", "/img", true, false),
            ("/img/", "/img", false, false),
            ("/img/a.png", "/img", false, false),
            ("/imgx", "/", false, true),
            ("/img/icons/x.svg", "/img/icons/", false, false),
            ("/img/icons", "/img", false, false),
            ("/api/v1", "/api", false, false),
            ("/exact", "/exact", true, false),
            ("/exact/sub", "/", false, true),
            ("/", "/", false, true),
            ("", "/", false, true),
        ];
        for (path, prefix, exact, implicit) in cases {
            let l = s.find_location(path);
            assert_eq!(
                (l.prefix.as_str(), l.exact, l.implicit),
                (*prefix, *exact, *implicit),
                "{path}"
            );
        }
    }

    #[test]
    fn own_root_location_means_no_implicit() {
        let c = config("server { location / { autoindex on; } location = / { } }");
        let s = &c.servers[0];
        assert_eq!(s.locations.len(), 2);
        assert!(s.locations.iter().all(|l| !l.implicit));
        assert!(s.find_location("/x").autoindex);
        assert!(s.find_location("/").exact);
    }

    #[test]
    fn hand_built_server_without_locations() {
        let mut c = config("server { }");
        c.servers[0].locations.clear();
        let l = c.servers[0].find_location("/x");
        assert_eq!(l.prefix, "/");
        assert_eq!(l.root, None);
    }

    #[test]
    fn listeners_grouping() {
        let c = config(
            "server { listen 8080; server_name a; }
             server { listen 127.0.0.1:9090; listen 8080 default_server; server_name b; }
             server { listen 8080; server_name c; }
             server { listen 127.0.0.1:9090; server_name d; }",
        );
        let ls = c.listeners();
        assert_eq!(ls.len(), 2);
        assert_eq!(ls[0].addr.to_string(), "0.0.0.0:8080");
        assert_eq!(ls[0].servers, vec![0, 1, 2]);
        assert_eq!(ls[0].default, 1);
        assert_eq!(ls[1].addr.to_string(), "127.0.0.1:9090");
        assert_eq!(ls[1].servers, vec![1, 3]);
        assert_eq!(ls[1].default, 1);
    }

    #[test]
    fn vhost_selection() {
        let c = config(
            "server { listen 80; server_name default.test; }
             server { listen 80; server_name Example.COM www.example.com.; }
             server { listen 80; server_name *.example.com; }
             server { listen 80; server_name *.api.example.com; }
             server { listen 80; server_name www.example.*; }
             server { listen 80; server_name \"\" blank.test; }
             server { listen 80; server_name .org.test; }
             server { listen 80 default_server; server_name fallback.test; }",
        );
        let ls = c.listeners();
        assert_eq!(ls.len(), 1);
        let l = &ls[0];
        assert_eq!(l.default, 7);
        let cases: &[(Option<&str>, usize)] = &[
            (Some("example.com"), 1),
            (Some("EXAMPLE.com"), 1),
            (Some("example.com."), 1),
            (Some("www.example.com"), 1),
            (Some("a.example.com"), 2),
            (Some("x.api.example.com"), 3),
            (Some("api.example.com"), 2),
            (Some("www.example.org"), 4),
            (Some("WWW.example.net"), 4),
            (Some("www.example"), 7),
            (Some("default.test"), 0),
            (Some("nope.test"), 7),
            (Some(""), 5),
            (None, 5),
            (Some("blank.test"), 5),
            (Some("org.test"), 6),
            (Some("a.b.org.test"), 6),
            (Some("xorg.test"), 7),
            (Some(".example.com"), 7),
        ];
        for (host, want) in cases {
            assert_eq!(l.select(&c, host.map(str::as_bytes)), *want, "{host:?}");
        }
    }

    #[test]
    fn vhost_no_host_without_empty_name_goes_to_default() {
        let c = config(
            "server { listen 80; server_name a.test; }
             server { listen 80; server_name b.test; }",
        );
        let l = &c.listeners()[0];
        assert_eq!(l.default, 0);
        assert_eq!(l.select(&c, None), 0);
        assert_eq!(l.select(&c, Some(b"B.TEST")), 1);
    }

    #[test]
    fn unnamed_servers_first_wins() {
        let (c, warnings) = parse_str(
            "server { listen 80; }\nserver { listen 80; }",
            "t.conf",
            Path::new("/nowhere"),
        )
        .unwrap();
        assert_eq!(
            warnings,
            vec!["conflicting server name \"\" on 0.0.0.0:80, ignored in t.conf:2"]
        );
        let l = &c.listeners()[0];
        assert_eq!(l.select(&c, None), 0);
        assert_eq!(l.select(&c, Some(b"x")), 0);
    }
}
