use super::*;

const DEDICATED: &str = "http://agent-dedicated-*.incidentfox.svc.cluster.local:8080";
const SHARED: &str = "http://incidentfox-agent.incidentfox.svc.cluster.local:8080";

fn production() -> AllowList {
    AllowList::new(&[DEDICATED, SHARED]).unwrap()
}

fn kind(list: &AllowList, url: &str) -> &'static str {
    match list.check(url) {
        Ok(_) => "allowed",
        Err(e) => e.label(),
    }
}

#[test]
fn the_default_patterns_admit_the_shared_and_dedicated_services() {
    let list = production();
    for url in [
        "http://agent-dedicated-acme-payments.incidentfox.svc.cluster.local:8080",
        "http://agent-dedicated-x.incidentfox.svc.cluster.local:8080/",
        "http://agent-dedicated-x.incidentfox.svc.cluster.local:8080/investigate",
        "http://AGENT-DEDICATED-X.IncidentFox.svc.cluster.local:8080",
        "http://agent-dedicated-x.incidentfox.svc.cluster.local.:8080",
        "http://incidentfox-agent.incidentfox.svc.cluster.local:8080/v1/runs",
    ] {
        assert_eq!(kind(&list, url), "allowed", "{url}");
    }
}

#[test]
fn hostile_urls_are_refused_with_their_reason() {
    let list = production();
    for (url, want) in [
        ("http://169.254.169.254/latest/meta-data/", "link_local"),
        ("http://[fe80::1]:8080/", "link_local"),
        ("http://[::1]:8080", "loopback"),
        ("http://[::ffff:127.0.0.1]:8080", "loopback"),
        ("http://127.0.0.1:8080", "loopback"),
        ("http://127.1:8080", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://localhost:8080", "loopback"),
        ("http://LOCALHOST.:8080", "loopback"),
        ("http://%6c%6fcalhost:8080", "loopback"),
        ("http://api.localhost:8080", "loopback"),
        ("http://0.0.0.0:8080", "unspecified"),
        ("http://0:8080", "unspecified"),
        ("http://[::]:8080", "unspecified"),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "metadata",
        ),
        ("http://[fd00:ec2::254]/", "metadata"),
        (
            "http://user@agent-dedicated-x.incidentfox.svc.cluster.local:8080",
            "userinfo",
        ),
        (
            "http://u:p@agent-dedicated-x.incidentfox.svc.cluster.local:8080",
            "userinfo",
        ),
        (
            "http://@agent-dedicated-x.incidentfox.svc.cluster.local:8080",
            "userinfo",
        ),
        (
            "http://agent-dedicated-x.incidentfox.svc.cluster.local.evil.com:8080",
            "no_match",
        ),
        (
            "http://agent-dedicated-a.b.incidentfox.svc.cluster.local:8080",
            "no_match",
        ),
        (
            "http://agent-dedicated-.incidentfox.svc.cluster.local:8080",
            "no_match",
        ),
        (
            "http://agent-dedicated-x.incidentfox.svc.cluster.local:8081",
            "no_match",
        ),
        (
            "http://agent-dedicated-x.incidentfox.svc.cluster.local",
            "no_match",
        ),
        (
            "https://agent-dedicated-x.incidentfox.svc.cluster.local:8080",
            "no_match",
        ),
        (
            "http://evil.com/agent-dedicated-x.incidentfox.svc.cluster.local:8080",
            "no_match",
        ),
        (
            "http://evil.com#@agent-dedicated-x.incidentfox.svc.cluster.local:8080",
            "query",
        ),
        // An allowed host with a query: the bridge's own path would become part of it.
        (
            "http://agent-dedicated-x.incidentfox.svc.cluster.local:8080/x?y=",
            "query",
        ),
        (
            "http://agent-dedicated-x.incidentfox.svc.cluster.local:8080#frag",
            "query",
        ),
        ("http://10.0.0.7:8080", "no_match"),
        ("file:///etc/passwd", "scheme"),
        (
            "gopher://agent-dedicated-x.incidentfox.svc.cluster.local:8080",
            "scheme",
        ),
        ("not a url", "unparsable"),
        ("http://", "unparsable"),
        ("", "unparsable"),
    ] {
        assert_eq!(kind(&list, url), want, "{url}");
    }
}

#[test]
fn a_pattern_that_names_a_restricted_host_literally_allows_it_and_only_it() {
    let list = AllowList::new(&["http://127.0.0.1:*", "http://localhost:9000/agents"]).unwrap();
    assert_eq!(kind(&list, "http://127.0.0.1:41234/investigate"), "allowed");
    assert_eq!(
        kind(&list, "http://127.1:80/"),
        "allowed",
        "same host, normalised"
    );
    assert_eq!(kind(&list, "http://2130706433:5/"), "allowed");
    assert_eq!(kind(&list, "http://127.0.0.2:8080/"), "loopback");
    assert_eq!(kind(&list, "http://[::1]:8080/"), "loopback");
    assert_eq!(kind(&list, "http://localhost:9000/agents/a"), "allowed");
    assert_eq!(kind(&list, "http://localhost:9000/agents"), "allowed");
    assert_eq!(kind(&list, "http://localhost:9000/agentsx"), "no_match");
    assert_eq!(kind(&list, "http://localhost:9001/agents"), "no_match");
    assert_eq!(kind(&list, "http://169.254.169.254/"), "link_local");
}

#[test]
fn a_wildcard_never_matches_an_address_or_a_dot() {
    let list = AllowList::new(&["http://*:8080", "http://*.svc:*"]).unwrap();
    assert_eq!(kind(&list, "http://agent:8080"), "allowed");
    assert_eq!(kind(&list, "http://a.b:8080"), "no_match");
    assert_eq!(kind(&list, "http://10.0.0.1:8080"), "no_match");
    assert_eq!(kind(&list, "http://[2001:db8::1]:8080"), "no_match");
    assert_eq!(kind(&list, "http://x.svc:1"), "allowed");
    assert_eq!(kind(&list, "http://x.y.svc:1"), "no_match");
    assert_eq!(kind(&list, "http://localhost:8080"), "loopback");
}

#[test]
fn bad_patterns_are_refused_at_start() {
    for p in [
        "agent:8080",
        "ftp://x",
        "http://x:port",
        "http://u@x",
        "http://[::1",
        "http://a_b*.c",
    ] {
        assert!(
            matches!(AllowList::new(&[p]), Err(AllowError::Pattern { .. })),
            "{p}"
        );
    }
    assert!(AllowList::new(&["https://[::1]:*", "HTTP://Agent.Example:80/x/"]).is_ok());
}

#[test]
fn nothing_is_allowed_without_patterns() {
    let list = AllowList::default();
    assert_eq!(kind(&list, SHARED), "no_match");
}

#[test]
fn restricted_addresses_are_known_to_callers_that_resolve() {
    for ip in [
        "127.0.0.1",
        "169.254.169.254",
        "::1",
        "fe80::2",
        "0.0.0.0",
        "::ffff:169.254.1.1",
    ] {
        assert!(is_restricted_ip(ip.parse().unwrap()), "{ip}");
    }
    for ip in ["10.0.0.1", "192.168.1.1", "2001:db8::1", "8.8.8.8"] {
        assert!(!is_restricted_ip(ip.parse().unwrap()), "{ip}");
    }
}
