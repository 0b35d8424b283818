//! Settings: defaults, the environment over the file, errors naming their key, webhook secrets from
//! the environment, the ingest body limit, secrets kept out of debug output.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_load_without_file_or_environment() {
    let s = Settings::load_from(Some(Path::new("/nonexistent/ifox.toml")), env(&[])).unwrap();
    assert_eq!(s.http.listen, "127.0.0.1:8080");
    assert_eq!(s.log.format, LogFormat::Auto);
}

#[test]
fn environment_overrides_the_file_and_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ifox.toml");
    std::fs::write(
        &file,
        "[http]\nlisten = \"0.0.0.0:9000\"\n[log]\nformat = \"text\"\n",
    )
    .unwrap();
    let s = Settings::load_from(
        Some(&file),
        env(&[
            ("IFOX__LOG__FORMAT", "json"),
            ("IFOX__ADMIN__TOKEN", "s3cret"),
            ("OTHER", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(s.http.listen, "0.0.0.0:9000");
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.admin.token.expose(), "s3cret");
}

#[test]
fn a_bad_value_names_its_key() {
    let err = Settings::load_from(None, env(&[("IFOX__HTTP__LISTEN", "nowhere")])).unwrap_err();
    assert!(err.to_string().contains("http.listen"), "{err}");
    let err = Settings::load_from(None, env(&[("IFOX__LOG__FORMAT", "xml")])).unwrap_err();
    assert!(err.to_string().contains("format"), "{err}");
    let err = Settings::load_from(None, env(&[("IFOX__HTTP__LISTNE", "x")])).unwrap_err();
    assert!(err.to_string().contains("listne"), "{err}");
    let err = Settings::load_from(None, env(&[("IFOX__DATABASE__URL", "mysql://x")])).unwrap_err();
    assert!(err.to_string().contains("database.url"), "{err}");
}

#[test]
fn webhook_secrets_come_from_the_environment_as_comma_separated_lists() {
    let s = Settings::load_from(
        None,
        env(&[
            ("IFOX__INGEST__SECRETS__SLACK", "old-slack, new-slack"),
            ("IFOX__INGEST__SECRETS__GENERIC__ACME_ALERTS", "whsec_abc"),
        ]),
    )
    .unwrap();
    assert_eq!(s.ingest.secrets.slack.exposed(), ["old-slack", "new-slack"]);
    assert_eq!(
        s.ingest.secrets.generic["acme_alerts"].exposed(),
        ["whsec_abc"]
    );
    assert!(s.ingest.secrets.github.is_empty());
    let printed = format!("{s:?}");
    assert!(
        !printed.contains("old-slack") && !printed.contains("whsec_abc"),
        "{printed}"
    );
}

#[test]
fn an_ingest_body_limit_above_the_nats_payload_is_refused() {
    let err =
        Settings::load_from(None, env(&[("IFOX__INGEST__BODY_LIMIT", "2097152")])).unwrap_err();
    assert!(err.to_string().contains("ingest.body_limit"), "{err}");
    let err = Settings::load_from(
        None,
        env(&[("IFOX__INGEST__SECRETS__GENERIC__GITHUB", "whsec_x")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("generic"), "{err}");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let s = Settings::load_from(
        None,
        env(&[
            ("IFOX__ADMIN__TOKEN", "hunter2"),
            ("IFOX__DATABASE__URL", "postgres://u:pw9@h/db"),
        ]),
    )
    .unwrap();
    let printed = format!("{s:?}");
    assert!(
        !printed.contains("hunter2") && !printed.contains("pw9"),
        "{printed}"
    );
}

#[test]
fn nats_url_takes_a_comma_separated_list_or_a_toml_list() {
    let s = Settings::load_from(
        None,
        env(&[("IFOX__NATS__URL", "nats://a:4222, tls://b:4223,c:4224")]),
    )
    .unwrap();
    assert_eq!(
        s.nats.url,
        ["nats://a:4222", "tls://b:4223", "c:4224"].map(String::from)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ifox.toml");
    std::fs::write(&file, "[nats]\nurl = [\"nats://x:1\", \"wss://y\"]\n").unwrap();
    let s = Settings::load_from(Some(&file), env(&[])).unwrap();
    assert_eq!(s.nats.url, ["nats://x:1", "wss://y"].map(String::from));
}

#[test]
fn a_bad_nats_url_entry_is_named_in_the_error() {
    for (list, bad, why) in [
        ("nats://a:4222,http://b:4222", "http://b:4222", "scheme"),
        ("nats://a:4222,nats://b:99999", "nats://b:99999", "port"),
        ("nats://a:4222,nats://b:0", "nats://b:0", "port 0"),
        ("nats://:4222", "nats://:4222", ""),
        ("nats://u:pw@a:4222", "nats://u:pw@a:4222", "credentials"),
        ("nats://a:4222/x", "nats://a:4222/x", "path"),
    ] {
        let err = Settings::load_from(None, env(&[("IFOX__NATS__URL", list)])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("nats.url") && text.contains(bad) && text.contains(why),
            "{list}: {text}"
        );
    }
    let err = Settings::load_from(None, env(&[("IFOX__NATS__URL", " , ")])).unwrap_err();
    assert!(err.to_string().contains("at least one server"), "{err}");
}

#[test]
fn nats_credentials_are_secrets_and_one_method_at_most() {
    let s = Settings::load_from(
        None,
        env(&[
            ("IFOX__NATS__USER", "router"),
            ("IFOX__NATS__PASSWORD", "pw-router-77"),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.nats.auth().unwrap(),
        NatsAuth::UserPassword {
            user: "router",
            password: "pw-router-77"
        }
    );
    assert!(!format!("{s:?}").contains("pw-router-77"));
    let s = Settings::load_from(None, env(&[("IFOX__NATS__TOKEN", "tok-s3cret")])).unwrap();
    assert_eq!(s.nats.auth().unwrap(), NatsAuth::Token("tok-s3cret"));
    let seed = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";
    let s = Settings::load_from(None, env(&[("IFOX__NATS__NKEY_SEED", seed)])).unwrap();
    assert_eq!(s.nats.auth().unwrap(), NatsAuth::NKey(seed));
    let printed = format!("{s:?}");
    assert!(
        !printed.contains(seed) && !printed.contains("tok-s3cret"),
        "{printed}"
    );
    // no credentials at all is fine (a NATS without authentication)
    let s = Settings::load_from(None, env(&[])).unwrap();
    assert_eq!(s.nats.auth().unwrap(), NatsAuth::None);

    for (pairs, key) in [
        (
            &[("IFOX__NATS__TOKEN", "t"), ("IFOX__NATS__NKEY_SEED", seed)][..],
            "token, nkey_seed",
        ),
        (
            &[
                ("IFOX__NATS__USER", "u"),
                ("IFOX__NATS__PASSWORD", "p"),
                ("IFOX__NATS__TOKEN", "t"),
            ][..],
            "user/password, token",
        ),
        (&[("IFOX__NATS__USER", "u")][..], "nats.password"),
        (&[("IFOX__NATS__PASSWORD", "p")][..], "nats.user"),
        (&[("IFOX__NATS__NKEY_SEED", "UABC")][..], "nats.nkey_seed"),
        // the environment parser would turn these into a number and a boolean
        (&[("IFOX__NATS__TOKEN", "0123")][..], "token"),
        (&[("IFOX__NATS__PASSWORD", "true")][..], "password"),
    ] {
        let err = Settings::load_from(None, env(pairs)).unwrap_err();
        assert!(err.to_string().contains(key), "{pairs:?}: {err}");
    }
}

#[test]
fn nats_files_must_exist_and_a_client_certificate_needs_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let ca = ca.to_str().unwrap();
    let s = Settings::load_from(
        None,
        env(&[
            ("IFOX__NATS__TLS_CA_FILE", ca),
            ("IFOX__NATS__TLS_REQUIRED", "true"),
            ("IFOX__NATS__CREDS_FILE", ca),
        ]),
    )
    .unwrap();
    assert!(s.nats.tls_required);
    assert_eq!(s.nats.auth().unwrap(), NatsAuth::CredsFile(Path::new(ca)));
    for (pairs, key) in [
        (
            &[("IFOX__NATS__TLS_CA_FILE", "/nonexistent/ca.pem")][..],
            "nats.tls_ca_file",
        ),
        (
            &[("IFOX__NATS__CREDS_FILE", "/nonexistent/x.creds")][..],
            "nats.creds_file",
        ),
        (
            &[("IFOX__NATS__TLS_CERT_FILE", ca)][..],
            "nats.tls_key_file",
        ),
        (
            &[("IFOX__NATS__CREDS_FILE", ca), ("IFOX__NATS__TOKEN", "t")][..],
            "token, creds_file",
        ),
    ] {
        let err = Settings::load_from(None, env(pairs)).unwrap_err();
        assert!(err.to_string().contains(key), "{pairs:?}: {err}");
    }
}

#[test]
fn the_listener_limits_have_defaults_and_bad_ones_name_their_key() {
    let s = Settings::load_from(Some(Path::new("/nonexistent/ifox.toml")), env(&[])).unwrap();
    assert_eq!(s.http.header_read_timeout, Duration::from_secs(30));
    assert_eq!(s.http.body_timeout, Duration::from_secs(30));
    assert_eq!(s.http.max_connections, 1024);
    assert_eq!(s.http.max_requests_per_connection, 1000);
    assert_eq!(s.http.metrics_addr(), None);
    assert_eq!(s.ingest.org_secrets_ttl, Duration::from_secs(30));
    let s =
        Settings::load_from(None, env(&[("IFOX__HTTP__METRICS_LISTEN", "0.0.0.0:9090")])).unwrap();
    assert_eq!(s.http.metrics_addr(), Some("0.0.0.0:9090".parse().unwrap()));
    for (key, value, named) in [
        (
            "IFOX__HTTP__METRICS_LISTEN",
            "nowhere",
            "http.metrics_listen",
        ),
        (
            "IFOX__HTTP__METRICS_LISTEN",
            "127.0.0.1:8080",
            "http.metrics_listen",
        ),
        (
            "IFOX__HTTP__HEADER_READ_TIMEOUT",
            "0s",
            "http.header_read_timeout",
        ),
        ("IFOX__HTTP__BODY_TIMEOUT", "0s", "http.body_timeout"),
        ("IFOX__HTTP__MAX_CONNECTIONS", "0", "http.max_connections"),
        (
            "IFOX__HTTP__MAX_REQUESTS_PER_CONNECTION",
            "0",
            "http.max_requests_per_connection",
        ),
        (
            "IFOX__INGEST__ORG_SECRETS_TTL",
            "0s",
            "ingest.org_secrets_ttl",
        ),
        (
            "IFOX__INGEST__ORG_SECRETS_CACHE_SIZE",
            "0",
            "ingest.org_secrets_cache_size",
        ),
    ] {
        let err = Settings::load_from(None, env(&[(key, value)])).unwrap_err();
        assert!(err.to_string().contains(named), "{key}={value}: {err}");
    }
}

#[test]
fn limits_have_defaults_and_the_environment_overrides_them() {
    let s = Settings::load_from(Some(Path::new("/nonexistent/ifox.toml")), env(&[])).unwrap();
    assert_eq!(s.limits, Limits::default());
    let s = Settings::load_from(
        Some(Path::new("/nonexistent/ifox.toml")),
        env(&[
            ("IFOX__LIMITS__NODES_PER_ORG", "7"),
            ("IFOX__LIMITS__REPLAY_SPAN", "2h"),
        ]),
    )
    .unwrap();
    assert_eq!(s.limits.nodes_per_org, 7);
    assert_eq!(s.limits.replay_span, Duration::from_secs(7200));
}

#[test]
fn a_limit_past_its_ceiling_is_refused_naming_its_key() {
    let err = Settings::load_from(
        Some(Path::new("/nonexistent/ifox.toml")),
        env(&[("IFOX__LIMITS__CONFIG_DEPTH", "500")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("limits.config_depth"), "{err}");
}

/// A bridge, admin or router process whose signing key would derive from an empty secret (a key
/// anyone can compute from the source) refuses to start, naming the key to set; either secret
/// suffices, and the replay key, when set, is what the router and `ifox replay` use.
#[test]
fn roles_refuse_signing_keys_derived_from_an_empty_secret() {
    let load = |pairs: &[(&str, &str)]| {
        Settings::load_from(Some(Path::new("/nonexistent/ifox.toml")), env(pairs)).unwrap()
    };
    let none = load(&[]);
    let err = none
        .check_signing_keys(true, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bridge.run_token_key"), "{err}");
    let err = none
        .check_signing_keys(false, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("router.replay_key"), "{err}");
    assert!(
        none.check_signing_keys(false, false).is_ok(),
        "ingest, provisioner"
    );
    let admin = load(&[("IFOX__ADMIN__TOKEN", "a")]);
    assert!(admin.check_signing_keys(true, true).is_ok());
    let keys = load(&[
        ("IFOX__BRIDGE__RUN_TOKEN_KEY", "r"),
        ("IFOX__ROUTER__REPLAY_KEY", "p"),
    ]);
    assert!(keys.check_signing_keys(true, true).is_ok());
    assert_eq!(
        keys.router.replay_key(""),
        crate::domain::replay_sig::key("p")
    );
    assert_eq!(
        admin.router.replay_key("a"),
        crate::domain::replay_sig::key("a")
    );
    assert!(
        !format!("{keys:?}").contains("\"p\""),
        "the key is redacted"
    );
}
