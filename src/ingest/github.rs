//! GitHub (`/webhooks/github`): `X-Hub-Signature-256` HMAC over the body (no timestamp; replays
//! collapse on `X-GitHub-Delivery`). The hook's content type must be `application/json`.
//!
//! `ping` (sent when a hook is created) is answered 200 and not published. Everything else is
//! published as `ce-type` = `X-GitHub-Event` (the `action` stays in the body), `ce-id` =
//! `X-GitHub-Delivery`. Routing: [`identifiers::Github`] (`repository.full_name` and its owner, lowercased).

use super::error::IngestError;
use super::event::Signal;
use super::payload::{self, Incoming, JSON, Outcome};
use super::verify;
use crate::domain::identifiers;
use serde_json::json;

const PROVIDER: &str = "github";
const FORWARD: [&str; 5] = [
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-type",
    "x-github-hook-installation-target-id",
];

/// `POST /webhooks/github`.
pub fn accept(secrets: &[&str], inc: &Incoming<'_>) -> Result<Outcome, IngestError> {
    verify::github(secrets, inc.headers, inc.body)?;
    payload::require_content_type(inc, JSON)?;
    let event = payload::required_header(inc, "x-github-event")?;
    let delivery = payload::required_header(inc, "x-github-delivery")?;
    // Only what routing reads; the rest of the payload is skipped, not built.
    let body: identifiers::Github = payload::json(PROVIDER, inc.body)?;
    if event == "ping" {
        return Ok(Outcome::Reply(json!({ "status": "pong" })));
    }
    Ok(Outcome::Publish(Signal {
        event_type: event.to_owned(),
        id: payload::checked_id(PROVIDER, delivery)?,
        content_type: JSON,
        forward: payload::forward(inc, &FORWARD),
        routes: body.identifiers(),
    }))
}
