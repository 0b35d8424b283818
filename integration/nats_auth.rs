//! The NATS security settings against a real nats-server: a token, an NKey seed, TLS with the
//! installation's own CA (certificates made here with the `openssl` command), and `tls_required`
//! refusing a server without TLS. Users and passwords per role: `nats_permissions`.

use crate::support::NatsServer;
use ifox::bus::Bus;
use ifox::settings::Settings;
use std::path::Path;
use std::process::Command;

fn settings(pairs: &[(&str, &str)]) -> ifox::settings::NatsSettings {
    let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Settings::load_from(Some(Path::new("/nonexistent/ifox.toml")), env)
        .expect("settings")
        .nats
}

async fn connects(pairs: &[(&str, &str)]) -> Result<(), String> {
    match Bus::connect(&settings(pairs)).await {
        Ok(bus) if bus.is_connected() => Ok(()),
        Ok(_) => Err("not connected".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn a_token_authenticates_and_tls_required_refuses_a_plain_server() {
    let nats = NatsServer::start_with_config(
        "authorization { token: $IFOX_TEST_TOKEN }\n",
        &[],
        &[("IFOX_TEST_TOKEN", "tok-7f3a")],
    )
    .await;
    let url = nats.url();
    connects(&[("IFOX__NATS__URL", &url), ("IFOX__NATS__TOKEN", "tok-7f3a")])
        .await
        .expect("the right token");
    let err = connects(&[("IFOX__NATS__URL", &url), ("IFOX__NATS__TOKEN", "wrong")])
        .await
        .unwrap_err();
    assert!(err.contains("authorization violation"), "{err}");
    let err = connects(&[
        ("IFOX__NATS__URL", &url),
        ("IFOX__NATS__TOKEN", "tok-7f3a"),
        ("IFOX__NATS__TLS_REQUIRED", "true"),
    ])
    .await
    .unwrap_err();
    // the client insists on a TLS handshake, which the plain server answers with plain text
    assert!(err.contains("InvalidContentType"), "{err}");
}

#[tokio::test]
async fn an_nkey_seed_authenticates() {
    // The user key pair of the NATS documentation's NKey example.
    let public = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";
    let seed = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";
    let nats = NatsServer::start_with_config(
        &format!("authorization {{ users: [ {{ nkey: {public} }} ] }}\n"),
        &[],
        &[],
    )
    .await;
    let url = nats.url();
    connects(&[("IFOX__NATS__URL", &url), ("IFOX__NATS__NKEY_SEED", seed)])
        .await
        .expect("the seed of the configured key");
    let err = connects(&[("IFOX__NATS__URL", &url)]).await.unwrap_err();
    assert!(err.contains("authorization violation"), "{err}");
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=ifox test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    run(&ca);
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    run(&csr);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
}

#[tokio::test]
async fn tls_with_the_installations_ca_connects_and_an_unknown_ca_does_not() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let file = |name: &str| certs.path().join(name).display().to_string();
    let nats = NatsServer::start_with_config(
        &format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
            file("server.pem"),
            file("server.key")
        ),
        &[],
        &[],
    )
    .await;
    let tls_url = format!("tls://127.0.0.1:{}", nats.port);
    let ca = file("ca.pem");
    connects(&[
        ("IFOX__NATS__URL", &tls_url),
        ("IFOX__NATS__TLS_CA_FILE", &ca),
    ])
    .await
    .expect("TLS with the CA");
    // a nats:// URL to a server that requires TLS, with tls_required: TLS all the same
    connects(&[
        ("IFOX__NATS__URL", &nats.url()),
        ("IFOX__NATS__TLS_CA_FILE", &ca),
        ("IFOX__NATS__TLS_REQUIRED", "true"),
    ])
    .await
    .expect("TLS required and offered");
    // the system's roots do not know this CA
    let err = connects(&[("IFOX__NATS__URL", &tls_url)])
        .await
        .unwrap_err();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
