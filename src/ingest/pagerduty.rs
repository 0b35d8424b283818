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
use crate::domain::routing::IdentifierKind;
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
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    service: Option<Service>,
}

#[derive(Deserialize)]
struct Service {
    id: Option<String>,
}

/// `POST /webhooks/pagerduty`.
pub fn accept(secrets: &[&str], inc: &Incoming<'_>) -> Result<Outcome, IngestError> {
    verify::pagerduty(secrets, inc.headers, inc.body)?;
    payload::require_content_type(inc, JSON)?;
    let Body { event } = payload::json(PROVIDER, inc.body)?;
    if event.event_type == "pagey.ping" {
        return Ok(Outcome::Reply(json!({ "status": "pong" })));
    }
    if !super::event::header_safe(&event.event_type) {
        return Err(IngestError::malformed(
            PROVIDER,
            "`event.event_type` is empty or not printable",
        ));
    }
    let routes = event
        .data
        .and_then(|d| d.service)
        .and_then(|s| s.id)
        .filter(|id| super::event::header_safe(id))
        .map(|id| vec![(IdentifierKind::PagerdutyServiceIds, id)])
        .unwrap_or_default();
    Ok(Outcome::Publish(Signal {
        id: payload::checked_id(PROVIDER, &event.id)?,
        event_type: event.event_type,
        content_type: JSON,
        forward: payload::forward(inc, &FORWARD),
        routes,
    }))
}
