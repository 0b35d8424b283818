//! incident.io (`/webhooks/incidentio`): Standard Webhooks signatures (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature`; 300 s window; every `v1,` entry tried).
//!
//! Published as `ce-type` = the body's `event_type` (e.g. `public_alert.alert_created_v1`), `ce-id`
//! = `webhook-id` (the same on incident.io's retries). Routing: for alert events the payload sits
//! under the key named by `event_type`, and its `alert_source_id` is the identifier.

use super::error::IngestError;
use super::event::Signal;
use super::payload::{self, Incoming, JSON, Outcome};
use super::verify;
use crate::domain::identifiers;
use serde_json::Value;

const PROVIDER: &str = "incidentio";
const FORWARD: [&str; 2] = ["webhook-id", "webhook-timestamp"];

/// `POST /webhooks/incidentio`.
pub fn accept(secrets: &[&str], inc: &Incoming<'_>) -> Result<Outcome, IngestError> {
    verify::standard_webhooks(secrets, inc.headers, inc.body, inc.now_unix)?;
    payload::require_content_type(inc, JSON)?;
    let id = payload::required_header(inc, verify::STANDARD_ID)?;
    let body: Value = payload::json(PROVIDER, inc.body)?;
    let event_type = payload::str_at(&body, "/event_type")
        .ok_or_else(|| IngestError::malformed(PROVIDER, "no `event_type`"))?;
    Ok(Outcome::Publish(Signal {
        event_type: event_type.to_owned(),
        id: payload::checked_id(PROVIDER, id)?,
        content_type: JSON,
        forward: payload::forward(inc, &FORWARD),
        routes: identifiers::incidentio(&body),
    }))
}
