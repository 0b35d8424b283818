//! Slack: the Events API (`/webhooks/slack/events`, JSON) and interactivity
//! (`/webhooks/slack/interactions`, a form whose `payload` field is JSON). Both are signed with the
//! app's signing secret (`v0=` HMAC over `v0:{timestamp}:{body}`, 300 s window).
//!
//! Events: `url_verification` is answered with its challenge and not published; `event_callback` is
//! published as `ce-type` = the inner `event.type` (e.g. `app_mention`), `ce-id` = `event_id` (the
//! same on Slack's retries). Interactions: `ce-type` = `interaction.<payload.type>`, `ce-id` =
//! `trigger_id` (else the body digest). Routing: [`identifiers::slack`] (channel and workspace).

use super::error::IngestError;
use super::event::Signal;
use super::payload::{self, FORM, Incoming, JSON, Outcome};
use super::verify;
use crate::domain::identifiers;
use serde_json::{Value, json};

const PROVIDER: &str = "slack";
const FORWARD: [&str; 2] = ["x-slack-retry-num", "x-slack-retry-reason"];

/// `POST /webhooks/slack/events`.
pub fn events(secrets: &[&str], inc: &Incoming<'_>) -> Result<Outcome, IngestError> {
    verify::slack(secrets, inc.headers, inc.body, inc.now_unix)?;
    payload::require_content_type(inc, JSON)?;
    let body: Value = payload::json(PROVIDER, inc.body)?;
    let kind = payload::str_at(&body, "/type")
        .ok_or_else(|| IngestError::malformed(PROVIDER, "no `type`"))?;
    if kind == "url_verification" {
        let challenge = body
            .get("challenge")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Ok(Outcome::Reply(json!({ "challenge": challenge })));
    }
    let event_type = match kind {
        "event_callback" => payload::str_at(&body, "/event/type").ok_or_else(|| {
            IngestError::malformed(PROVIDER, "an event_callback without `event.type`")
        })?,
        other => other,
    };
    let id = match body.get("event_id").and_then(Value::as_str) {
        Some(id) => payload::checked_id(PROVIDER, id)?,
        None => payload::digest_id(inc.body),
    };
    Ok(Outcome::Publish(Signal {
        routes: identifiers::slack(&body),
        event_type: event_type.to_owned(),
        id,
        content_type: JSON,
        forward: payload::forward(inc, &FORWARD),
    }))
}

/// `POST /webhooks/slack/interactions`.
pub fn interactions(secrets: &[&str], inc: &Incoming<'_>) -> Result<Outcome, IngestError> {
    verify::slack(secrets, inc.headers, inc.body, inc.now_unix)?;
    payload::require_content_type(inc, FORM)?;
    let field = form_urlencoded::parse(inc.body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v)
        .ok_or_else(|| IngestError::malformed(PROVIDER, "no `payload` form field"))?;
    let body: Value = payload::json(PROVIDER, field.as_bytes())?;
    let kind = payload::str_at(&body, "/type")
        .ok_or_else(|| IngestError::malformed(PROVIDER, "no `payload.type`"))?;
    let id = match body.get("trigger_id").and_then(Value::as_str) {
        Some(id) => payload::checked_id(PROVIDER, id)?,
        None => payload::digest_id(inc.body),
    };
    Ok(Outcome::Publish(Signal {
        routes: identifiers::slack(&body),
        event_type: format!("interaction.{kind}"),
        id,
        content_type: FORM,
        forward: payload::forward(inc, &FORWARD),
    }))
}
