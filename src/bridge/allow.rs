//! The SSRF guard's decision: may the bridge call this agent URL? Pure; the bridge asks before
//! every delivery and fails a refused run with reason `url_not_allowed`.
//!
//! A URL is allowed only when, in this order: it parses (WHATWG rules of the `url` crate, so
//! `http://2130706433/`, `http://0x7f.1/` and `http://%6c%6fcalhost/` are read as the hosts a
//! resolver would see, and hosts are lowercased); its scheme is `http` or `https`; it carries no
//! userinfo (not even an empty `@`); its host is not loopback, link-local, unspecified or a cloud
//! metadata name — unless a pattern names that host literally; it has no query or fragment (the
//! bridge appends its paths to a base URL; a `?` would turn them into a query of another path);
//! and it matches a pattern.
//!
//! Patterns (`bridge.allowed_url_patterns`): `scheme://host[:port][/path]`. In the host, `*` matches
//! one or more DNS-label characters (`[a-z0-9-]`) and never a `.`, so
//! `http://agent-dedicated-*.incidentfox.svc.cluster.local:8080` admits exactly one label there.
//! The port is a number, `*` (any), or absent (the scheme's default). The path is a prefix matched
//! on segment boundaries (`/api` admits `/api` and `/api/x`, not `/apix`). A trailing dot on a URL's
//! host (`localhost.`) names the same host and is dropped before any check.
//!
//! What this does not do: resolve names. A name that resolves to a loopback or metadata address is
//! caught only by keeping patterns to names the operator controls (cluster service names).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowError {
    #[error("invalid URL pattern {pattern:?}: {reason}")]
    Pattern {
        pattern: String,
        reason: &'static str,
    },
    #[error("the URL does not parse: {0}")]
    Unparsable(String),
    #[error("scheme {0:?} is not http or https")]
    Scheme(String),
    #[error("the URL carries userinfo")]
    Userinfo,
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL carries a query or a fragment; an agent URL is a base URL")]
    Query,
    #[error("{kind} host {host} is refused unless a pattern names it")]
    Restricted { host: String, kind: HostKind },
    #[error("no allowed URL pattern matches")]
    NoMatch,
}

impl AllowError {
    /// A metric label for the refusal.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Pattern { .. } => "bad_pattern",
            Self::Unparsable(_) => "unparsable",
            Self::Scheme(_) => "scheme",
            Self::Userinfo => "userinfo",
            Self::NoHost => "no_host",
            Self::Query => "query",
            Self::Restricted { kind, .. } => kind.label(),
            Self::NoMatch => "no_match",
        }
    }
}

/// Hosts refused unless a pattern names them literally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    Loopback,
    LinkLocal,
    Unspecified,
    Metadata,
}

impl HostKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::LinkLocal => "link_local",
            Self::Unspecified => "unspecified",
            Self::Metadata => "metadata",
        }
    }
}

impl std::fmt::Display for HostKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Names of cloud metadata services (GCP, AWS, Azure/Alibaba use the link-local address).
const METADATA_NAMES: [&str; 5] = [
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternHost {
    /// No `*`: compared as a parsed host (so `127.1` and `127.0.0.1` are the same).
    Exact(Host<String>),
    /// With `*`: a lowercase glob over a DNS name.
    Glob(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    scheme: String,
    host: PatternHost,
    /// None: any port.
    port: Option<u16>,
    path: String,
}

/// The allowed URL patterns, parsed once.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    patterns: Vec<Pattern>,
}

impl AllowList {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, AllowError> {
        let patterns = patterns
            .iter()
            .map(|p| parse_pattern(p.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// The URL, parsed, when the bridge may call it; else why not.
    pub fn check(&self, raw: &str) -> Result<Url, AllowError> {
        let url = Url::parse(raw.trim()).map_err(|e| AllowError::Unparsable(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AllowError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() || authority(raw).contains('@') {
            return Err(AllowError::Userinfo);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(AllowError::Query);
        }
        let host = normal_host(url.host().ok_or(AllowError::NoHost)?);
        let named = self
            .patterns
            .iter()
            .any(|p| p.host == PatternHost::Exact(host.clone()));
        if let Some(kind) = restricted(&host)
            && !named
        {
            return Err(AllowError::Restricted {
                host: host.to_string(),
                kind,
            });
        }
        let port = url.port_or_known_default();
        let hit = self.patterns.iter().any(|p| {
            p.scheme == url.scheme()
                && p.port.is_none_or(|want| Some(want) == port)
                && host_matches(&p.host, &host)
                && path_matches(&p.path, url.path())
        });
        if hit {
            Ok(url)
        } else {
            Err(AllowError::NoMatch)
        }
    }
}

/// The authority part of a raw URL (between `//` and the first `/`, `\`, `?` or `#`).
fn authority(raw: &str) -> &str {
    let after = raw.split_once("//").map_or(raw, |(_, a)| a);
    after
        .split(['/', '\\', '?', '#'])
        .next()
        .unwrap_or_default()
}

fn normal_host(host: Host<&str>) -> Host<String> {
    match host {
        Host::Domain(d) => Host::Domain(d.strip_suffix('.').unwrap_or(d).to_owned()),
        Host::Ipv4(a) => Host::Ipv4(a),
        Host::Ipv6(a) => Host::Ipv6(a),
    }
}

fn restricted(host: &Host<String>) -> Option<HostKind> {
    match host {
        Host::Domain(d) => {
            if d == "localhost" || d.ends_with(".localhost") {
                Some(HostKind::Loopback)
            } else if METADATA_NAMES.contains(&d.as_str()) {
                Some(HostKind::Metadata)
            } else {
                None
            }
        }
        Host::Ipv4(a) => v4_kind(*a),
        Host::Ipv6(a) => v6_kind(*a),
    }
}

fn v4_kind(a: Ipv4Addr) -> Option<HostKind> {
    if a.is_loopback() {
        Some(HostKind::Loopback)
    } else if a.is_link_local() {
        Some(HostKind::LinkLocal)
    } else if a.octets()[0] == 0 || a.is_broadcast() || a.is_multicast() {
        // 0.0.0.0/8 reaches the local host on Linux; broadcast and multicast are never an agent.
        Some(HostKind::Unspecified)
    } else {
        None
    }
}

fn v6_kind(a: Ipv6Addr) -> Option<HostKind> {
    if let Some(v4) = a.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    let first = a.segments()[0];
    if a.is_loopback() {
        Some(HostKind::Loopback)
    } else if first & 0xffc0 == 0xfe80 {
        Some(HostKind::LinkLocal)
    } else if a.is_unspecified() || a.is_multicast() {
        Some(HostKind::Unspecified)
    } else if a == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some(HostKind::Metadata) // AWS IMDS over IPv6
    } else {
        None
    }
}

fn host_matches(pattern: &PatternHost, host: &Host<String>) -> bool {
    match (pattern, host) {
        (PatternHost::Exact(p), h) => p == h,
        (PatternHost::Glob(g), Host::Domain(d)) => glob(g.as_bytes(), d.as_bytes()),
        (PatternHost::Glob(_), _) => false,
    }
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// `*` matches one or more label characters; everything else matches itself.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (1..=s.len())
            .take_while(|&n| is_label_char(s[n - 1]))
            .any(|n| glob(rest, &s[n..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

fn path_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn parse_pattern(raw: &str) -> Result<Pattern, AllowError> {
    let bad = |reason| AllowError::Pattern {
        pattern: raw.to_owned(),
        reason,
    };
    let (scheme, rest) = raw.trim().split_once("://").ok_or(bad("no scheme://"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(bad("scheme must be http or https")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(bad("userinfo is not allowed"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']').ok_or(bad("unclosed ["))?;
        (format!("[{inside}]"), after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    let port = match port {
        None => Some(default_port),
        Some("*") => None,
        Some(p) => Some(p.parse().map_err(|_| bad("port must be a number or *"))?),
    };
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let host = if host.contains('*') {
        let ok = host
            .bytes()
            .all(|b| is_label_char(b) || b == b'.' || b == b'*');
        if !ok {
            return Err(bad("a wildcard host may hold only [a-z0-9-.*]"));
        }
        PatternHost::Glob(host.to_owned())
    } else {
        let parsed = Host::parse(host).map_err(|_| bad("the host does not parse"))?;
        PatternHost::Exact(normal_host(match &parsed {
            Host::Domain(d) => Host::Domain(d.as_str()),
            Host::Ipv4(a) => Host::Ipv4(*a),
            Host::Ipv6(a) => Host::Ipv6(*a),
        }))
    };
    Ok(Pattern {
        scheme,
        host,
        port,
        path: path.to_owned(),
    })
}

/// Whether an address is one the guard refuses by default (for callers that hold an address).
pub fn is_restricted_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => v4_kind(a).is_some(),
        IpAddr::V6(a) => v6_kind(a).is_some(),
    }
}

#[cfg(test)]
#[path = "allow_tests.rs"]
mod tests;
