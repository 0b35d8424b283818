//! `ifox dev send <provider>`: the first-event experience. Against a running local stack (`just
//! run`), it makes sure the dev org and team exist and claim the samples' identifiers (through the
//! admin API, so the running process sees them at once), posts a signed sample webhook exactly as the
//! provider would, and follows the run until the agent answered.

use crate::ingest::samples::{self, DEV_ORG, DEV_TEAM};
use crate::settings::Settings;
use anyhow::Context;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum DevCommand {
    /// Send a signed sample webhook (github, slack, pagerduty, incidentio) and follow its run.
    Send {
        provider: String,
        /// The ifox API (default: http://<http.listen>).
        #[arg(long)]
        url: Option<String>,
        /// How long to follow the run.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        wait: Duration,
    },
}

pub async fn run(settings: &Settings, cmd: DevCommand) -> anyhow::Result<()> {
    let DevCommand::Send {
        provider,
        url,
        wait,
    } = cmd;
    let base = url.unwrap_or_else(|| format!("http://{}", settings.http.listen));
    let base = base.trim_end_matches('/').to_owned();
    let token = settings.admin.token.expose().to_owned();
    anyhow::ensure!(
        !token.is_empty(),
        "no admin token: set IFOX__ADMIN__TOKEN (just run uses dev-admin-token)"
    );
    let secrets = &settings.ingest.secrets;
    let secret = match provider.as_str() {
        "github" => secrets.github.exposed(),
        "slack" => secrets.slack.exposed(),
        "pagerduty" => secrets.pagerduty.exposed(),
        "incidentio" => secrets.incidentio.exposed(),
        _ => vec![],
    }
    .first()
    .map(|s| s.to_string());
    let secret = match (secret, samples::PROVIDERS.contains(&provider.as_str())) {
        (Some(s), _) => s,
        (None, false) => anyhow::bail!(samples::SampleError::Unknown(provider)),
        (None, true) => anyhow::bail!(
            "no {provider} webhook secret: set IFOX__INGEST__SECRETS__{} (just run sets development secrets)",
            provider.to_uppercase()
        ),
    };
    let client = reqwest::Client::new();
    let api = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token)
    };
    // The dev tenant: created once, its claims refreshed every time (409 = already there).
    let created = api(reqwest::Method::POST, "/api/v1/admin/orgs")
        .json(&json!({"org_id": DEV_ORG, "name": "Development"}))
        .send()
        .await
        .with_context(|| format!("is ifox running at {base}? (just run)"))?;
    expect(created, &[200, 201, 409]).await?;
    let node = api(
        reqwest::Method::POST,
        &format!("/api/v1/admin/orgs/{DEV_ORG}/nodes"),
    )
    .json(&json!({"node_id": DEV_TEAM, "node_type": "team", "name": "Dev team"}))
    .send()
    .await?;
    expect(node, &[200, 201, 409]).await?;
    let config = api(
        reqwest::Method::PATCH,
        &format!("/api/v1/admin/orgs/{DEV_ORG}/nodes/{DEV_TEAM}/config"),
    )
    .json(&json!({"routing": samples::dev_claims()}))
    .send()
    .await?;
    expect(config, &[200]).await?;

    let id = format!("dev-{}", uuid::Uuid::new_v4().simple());
    let now = crate::domain::now_ms() / 1000;
    let sample = samples::sample(&provider, &secret, &id, now)?;
    let mut req = client.post(format!("{base}{}", sample.path));
    for (name, value) in &sample.headers {
        req = req.header(*name, value);
    }
    let answer = req.body(sample.body.clone()).send().await?;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    println!("webhook {} → {status} {body}", sample.path);
    anyhow::ensure!(status.is_success(), "the webhook was refused");

    let deadline = tokio::time::Instant::now() + wait;
    let mut last = String::new();
    loop {
        let runs: Value = api(
            reqwest::Method::GET,
            &format!(
                "/api/v1/admin/orgs/{DEV_ORG}/runs/by-event/{}",
                sample.event_id
            ),
        )
        .send()
        .await?
        .json()
        .await?;
        if let Some(run) = runs["runs"].as_array().and_then(|r| r.first()) {
            let status = run["status"].as_str().unwrap_or_default().to_owned();
            if status != last {
                println!("run {} is {status}", run["run_id"].as_str().unwrap_or("?"));
                last = status.clone();
            }
            if matches!(status.as_str(), "completed" | "failed" | "timeout") {
                if let Some(text) = run["result_text"].as_str() {
                    println!("agent: {text}");
                }
                if let Some(error) = run["error"].as_str() {
                    println!("error: {error}");
                }
                println!("see it with: ifox runs list --org {DEV_ORG}");
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "the run did not finish within {wait:?} (last status: {}); check `ifox runs list` and DEADLETTER",
                if last.is_empty() { "no run yet" } else { &last }
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn expect(res: reqwest::Response, ok: &[u16]) -> anyhow::Result<()> {
    let status = res.status().as_u16();
    if ok.contains(&status) {
        return Ok(());
    }
    let body = res.text().await.unwrap_or_default();
    anyhow::bail!("ifox answered {status}: {body}")
}
