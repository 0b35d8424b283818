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
