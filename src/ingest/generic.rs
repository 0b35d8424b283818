//! Generic senders (`/webhooks/generic/{source}`): Standard Webhooks signatures with the source's
//! own secrets, a JSON body.
//!
//! Published on `ifox.events.<source>.<type>` with `ce-source` = the source name, `ce-type` = the
//! body's `type` field (the Standard Webhooks payload convention) or `webhook` when there is none,
//! `ce-id` = `webhook-id`. ifox does not know the payload's shape, so the sender names its routing
//! identifiers itself in `ifox-route-<kind>` request headers (e.g. `ifox-route-service_names:
//! checkout`), copied to the event when `<kind>` is a known identifier kind. `ifox-org` is never taken
//! from the request; only the org-scoped URL sets it.

use super::error::IngestError;
use super::event::Signal;
use super::payload::{self, Incoming, JSON, Outcome};
use super::verify;
use crate::domain::headers::{self, header_safe};
use crate::domain::routing::{Identifier, IdentifierKind};
use serde_json::Value;

const PROVIDER: &str = "generic";
const FORWARD: [&str; 2] = ["webhook-id", "webhook-timestamp"];

/// `POST /webhooks/generic/{source}`.
pub fn accept(secrets: &[&str], inc: &Incoming<'_>) -> Result<Outcome, IngestError> {
    verify::standard_webhooks(secrets, inc.headers, inc.body, inc.now_unix)?;
    payload::require_content_type(inc, JSON)?;
    let id = payload::required_header(inc, verify::STANDARD_ID)?;
    let body: Value = payload::json(PROVIDER, inc.body)?;
    let event_type = payload::str_at(&body, "/type").unwrap_or("webhook");
    let routes = IdentifierKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let value = payload::header(inc, &headers::route_header(kind))?;
            // Kept as sent (it may list several, comma-separated); the router splits and normalises.
            header_safe(value).then(|| Identifier {
                kind,
                value: value.to_owned(),
            })
        })
        .collect();
    Ok(Outcome::Publish(Signal {
        event_type: event_type.to_owned(),
        id: payload::checked_id(PROVIDER, id)?,
        content_type: JSON,
        forward: payload::forward(inc, &FORWARD),
        routes,
    }))
}
