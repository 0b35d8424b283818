//! PagerDuty webhooks V3 (`/webhooks/pagerduty`): `X-PagerDuty-Signature` holds one `v1=` HMAC per
//! active secret; any match passes. The body is one `{"event": {...}}` (not V2's `messages[]`).
//!
//! `pagey.ping` (the test event) is answered 200 and not published. Everything else is published as
//! `ce-type` = `event.event_type` (e.g. `incident.triggered`), `ce-id` = `event.id`. Routing:
//! `event.data.service.id`.

use super::error::IngestError;
use super::event::Signal;
use super::payload::{self, Incoming, JSON, Outcome};
use super::verify;
use crate::domain::headers::header_safe;
use crate::domain::identifiers::PagerdutyData;
use serde::Deserialize;
use serde_json::json;

const PROVIDER: &str = "pagerduty";
const FORWARD: [&str; 2] = ["x-webhook-id", "x-webhook-subscription"];

#[derive(Deserialize)]
struct Body {
    event: Event,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    event_type: String,
    data: Option<PagerdutyData>,
}

/// `POST /webhooks/pagerduty`.
pub fn accept(secrets: &[&str], inc: &Incoming<'_>) -> Result<Outcome, IngestError> {
    verify::pagerduty(secrets, inc.headers, inc.body)?;
    payload::require_content_type(inc, JSON)?;
    let Body { event } = payload::json(PROVIDER, inc.body)?;
    if event.event_type == "pagey.ping" {
        return Ok(Outcome::Reply(json!({ "status": "pong" })));
    }
    if !header_safe(&event.event_type) {
        return Err(IngestError::malformed(
            PROVIDER,
            "`event.event_type` is empty or not printable",
        ));
    }
    let routes = event.data.map(|d| d.identifiers()).unwrap_or_default();
    Ok(Outcome::Publish(Signal {
        id: payload::checked_id(PROVIDER, &event.id)?,
        event_type: event.event_type,
        content_type: JSON,
        forward: payload::forward(inc, &FORWARD),
        routes,
    }))
}
