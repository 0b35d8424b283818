//! Ingest fixtures: a real nats-server with the app wired to it (known secrets per provider), signed
//! webhook builders per provider, and reads of the EVENTS stream.

use crate::support::app::{ADMIN_TOKEN, Answer};
use crate::support::{DbKind, NatsServer, TestApp, eventually};
use async_nats::jetstream;
use ifox::ingest::event::valid_traceparent;
use ifox::ingest::verify;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

pub const SLACK: &str = "slack-signing-secret-1";
pub const GITHUB: &str = "github-webhook-secret-1";
pub const PAGERDUTY: &str = "pagerduty-webhook-secret-1";
pub const INCIDENTIO: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const GENERIC: &str = "whsec_dGhpcyBpcyBhbm90aGVyIGtleSBlbnRpcmVseQ==";
/// The generic source the stack knows.
pub const SOURCE: &str = "acme_alerts";

pub fn now() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(d.map(|d| d.as_secs()).unwrap_or(0)).unwrap_or(0)
}

/// A nats-server, the app (every role) with one secret per provider, and a JetStream client.
pub struct Stack {
    pub nats: NatsServer,
    pub app: TestApp,
    pub js: jetstream::Context,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(&[]).await
    }

    /// Starts with extra `IFOX__…` settings on SQLite; returns once the app has created EVENTS.
    pub async fn start_with(extra: &[(&str, &str)]) -> Stack {
        Self::start_on(DbKind::Sqlite, extra).await
    }

    /// As [`Stack::start_with`], on the given database.
    pub async fn start_on(db: DbKind, extra: &[(&str, &str)]) -> Stack {
        let nats = NatsServer::start().await;
        let url = nats.url();
        let generic_key = format!("IFOX__INGEST__SECRETS__GENERIC__{}", SOURCE.to_uppercase());
        // The rotated-out secret comes first: every secret of the list must be tried.
        let mut env: Vec<(&str, &str)> = vec![
            ("IFOX__NATS__URL", &url),
            (
                "IFOX__INGEST__SECRETS__SLACK",
                "old-slack-secret,slack-signing-secret-1",
            ),
            ("IFOX__INGEST__SECRETS__GITHUB", GITHUB),
            ("IFOX__INGEST__SECRETS__PAGERDUTY", PAGERDUTY),
            ("IFOX__INGEST__SECRETS__INCIDENTIO", INCIDENTIO),
            (&generic_key, GENERIC),
        ];
        env.extend_from_slice(extra);
        let app = TestApp::spawn_with(db, &env).await;
        let client = async_nats::connect(&url)
            .await
            .expect("connect to nats-server");
        let js = jetstream::new(client);
        eventually("the app to create EVENTS", Duration::from_secs(10), || {
            let js = js.clone();
            async move { js.get_stream("EVENTS").await.ok() }
        })
        .await;
        Stack { nats, app, js }
    }

    /// POSTs a webhook; the answer's body is parsed as JSON when it is.
    pub async fn send(&self, hook: &Webhook) -> Answer {
        let mut req = self
            .app
            .client
            .post(format!("{}{}", self.app.base, hook.path));
        for (name, value) in &hook.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let res = req
            .body(hook.body.clone())
            .send()
            .await
            .expect("send webhook");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("answer body");
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// The EVENTS message at `seq`.
    pub async fn event(&self, seq: u64) -> jetstream::message::StreamMessage {
        let stream = self.js.get_stream("EVENTS").await.expect("EVENTS");
        stream
            .get_raw_message(seq)
            .await
            .expect("message in EVENTS")
    }

    /// How many messages EVENTS holds.
    pub async fn stored(&self) -> u64 {
        let mut stream = self.js.get_stream("EVENTS").await.expect("EVENTS");
        stream.info().await.expect("EVENTS info").state.messages
    }

    /// Creates `org` and sets its secrets for `provider` (e.g. `github`, `generic/acme_alerts`).
    pub async fn org_with_secrets(&self, org: &str, provider: &str, secrets: &[&str]) {
        self.app.org(org).await;
        let path = format!("/api/v1/admin/orgs/{org}/webhook-secrets/{provider}");
        let a = self
            .app
            .put(&path, ADMIN_TOKEN, json!({ "secrets": secrets }))
            .await;
        assert_eq!(a.status, reqwest::StatusCode::NO_CONTENT, "{}", a.body);
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.app.base);
        self.app
            .client
            .get(url)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }
}

/// One webhook request: path, headers, raw body.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn hook(path: &str, content_type: &str, body: Vec<u8>) -> Webhook {
    Webhook {
        path: path.to_owned(),
        headers: vec![("content-type".into(), content_type.into())],
        body,
    }
}

impl Webhook {
    /// Sets (or replaces) a header.
    pub fn header(mut self, name: &str, value: &str) -> Webhook {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn without(mut self, name: &str) -> Webhook {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// The same request on the org-scoped URL.
    pub fn for_org(mut self, org: &str) -> Webhook {
        self.path = self
            .path
            .replacen("/webhooks/", &format!("/webhooks/orgs/{org}/"), 1);
        self
    }

    /// Slack Events API `event_callback` (an `app_mention` in `channel`), signed with `secret` at `ts`.
    pub fn slack_event_signed(event_id: &str, channel: &str, secret: &str, ts: i64) -> Webhook {
        let body = json!({
            "type": "event_callback", "team_id": "T0TEAM", "event_id": event_id, "event_time": ts,
            "event": {"type": "app_mention", "channel": channel, "user": "U1", "text": "<@U0BOT> help"}
        });
        let body = serde_json::to_vec_pretty(&body).expect("json");
        Webhook::slack_signed(
            hook("/webhooks/slack/events", "application/json", body),
            secret,
            ts,
        )
    }

    pub fn slack_event(event_id: &str, channel: &str) -> Webhook {
        Webhook::slack_event_signed(event_id, channel, SLACK, now())
    }

    fn slack_signed(self, secret: &str, ts: i64) -> Webhook {
        let sig = verify::sign_slack(secret, ts, &self.body);
        self.header("x-slack-request-timestamp", &ts.to_string())
            .header("x-slack-signature", &sig)
    }

    /// Slack interactivity: a `block_actions` form post.
    pub fn slack_interaction(trigger_id: &str) -> Webhook {
        let payload = json!({"type": "block_actions", "trigger_id": trigger_id,
            "team": {"id": "T0TEAM"}, "channel": {"id": "C0CHAN"}, "actions": [{"action_id": "ack"}]});
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        let h = hook(
            "/webhooks/slack/interactions",
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        );
        h.slack_signed(SLACK, now())
    }

    /// A GitHub `event` delivery for `Acme/Checkout`.
    pub fn github(event: &str, delivery: &str) -> Webhook {
        let body = json!({"action": "opened", "repository": {"full_name": "Acme/Checkout", "owner": {"login": "Acme"}},
            "issue": {"number": 7, "title": "checkout is down"}});
        Webhook::github_body(event, delivery, serde_json::to_vec(&body).expect("json"))
    }

    pub fn github_body(event: &str, delivery: &str, body: Vec<u8>) -> Webhook {
        let sig = verify::sign_github(GITHUB, &body);
        hook("/webhooks/github", "application/json", body)
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", &sig)
    }

    /// A PagerDuty V3 `incident.triggered` on service `PSVC001`, signed twice (rotation: an
    /// unknown secret first).
    pub fn pagerduty(event_id: &str) -> Webhook {
        let body = json!({"event": {"id": event_id, "event_type": "incident.triggered", "resource_type": "incident",
            "occurred_at": "2026-11-28T10:00:00Z", "data": {"id": "Q1", "type": "incident", "service": {"id": "PSVC001"}}}});
        let body = serde_json::to_vec(&body).expect("json");
        let sig = format!(
            "{},{}",
            verify::sign_pagerduty("retired", &body),
            verify::sign_pagerduty(PAGERDUTY, &body)
        );
        hook("/webhooks/pagerduty", "application/json", body)
            .header("x-pagerduty-signature", &sig)
            .header("x-webhook-id", "wh-sub-1")
    }

    /// An incident.io alert from alert source `01ALERTSRC`.
    pub fn incidentio(msg_id: &str) -> Webhook {
        let body = json!({"event_type": "public_alert.alert_created_v1",
            "public_alert.alert_created_v1": {"id": "01ALERT", "alert_source_id": "01ALERTSRC", "title": "DB down"}});
        Webhook::standard(
            "/webhooks/incidentio",
            INCIDENTIO,
            msg_id,
            serde_json::to_vec(&body).expect("json"),
        )
    }

    /// A Standard Webhooks delivery to the generic source.
    pub fn generic(msg_id: &str) -> Webhook {
        let body =
            serde_json::to_vec(&json!({"type": "deploy.failed", "data": {"service": "checkout"}}))
                .expect("json");
        Webhook::standard(
            &format!("/webhooks/generic/{SOURCE}"),
            GENERIC,
            msg_id,
            body,
        )
        .header("ifox-route-service_names", "checkout")
    }

    pub fn standard(path: &str, secret: &str, msg_id: &str, body: Vec<u8>) -> Webhook {
        let ts = now();
        let sig = verify::sign_standard(secret, msg_id, ts, &body).expect("sign");
        hook(path, "application/json", body)
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", &ts.to_string())
            .header("webhook-signature", &sig)
    }
}

/// A header of a stored message, as text.
pub fn header(msg: &jetstream::message::StreamMessage, name: &str) -> Option<String> {
    msg.headers.get(name).map(|v| v.as_str().to_owned())
}

/// Sends `hook`, expects 200 "accepted", and returns the stored message.
pub async fn stored(stack: &Stack, hook: &Webhook) -> jetstream::message::StreamMessage {
    let a = stack.send(hook).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["status"], "accepted", "{}", a.body);
    assert_eq!(a.body["stream"], "EVENTS");
    let msg = stack.event(a.body["seq"].as_u64().expect("seq")).await;
    assert_eq!(
        msg.payload.as_ref(),
        hook.body.as_slice(),
        "the body is stored byte for byte"
    );
    assert_eq!(header(&msg, "ce-specversion").as_deref(), Some("1.0"));
    assert!(header(&msg, "ce-time").is_some_and(|t| t.ends_with('Z')));
    assert!(header(&msg, "traceparent").is_some_and(|t| valid_traceparent(&t)));
    msg
}
