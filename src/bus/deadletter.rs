//! Dead letters: what could not be processed, copied to `ifox.deadletter.<stage>.<reason>` with the
//! original body and headers plus why, from where, and after how many attempts. The one format of
//! every stage (router, provisioner, bridge): the envelope is built here (pure) and published by
//! [`Bus::dead_letter`] with a PubAck, which the consumer toolkit waits for before it terminates the
//! original (see [`super::consumer`]).
//!
//! Headers added: `Ifox-DL-Reason`, `Ifox-DL-Detail`, `Ifox-DL-Stage`, `Ifox-DL-Subject` (the
//! original subject), `Ifox-DL-Stream`, `Ifox-DL-Stream-Seq`, `Ifox-DL-Attempts`, `Ifox-DL-Time`.
//! The original `Nats-Msg-Id` is replaced by `dl:<stage>:<stream>:<seq>`, so a dead letter written
//! twice (a crash before the TERM) is stored once. A failure with no stored original (a timer's
//! finding; `stream_seq` 0) gets `dl:<stage>:<subject>:<reason>`.

use super::{Bus, PublishError};
use async_nats::HeaderMap;
use bytes::Bytes;

use crate::domain::headers::NATS_MSG_ID;
pub use crate::domain::headers::dead_letter::{
    ATTEMPTS, DETAIL, PREFIX, REASON, STAGE, STREAM, STREAM_SEQ, SUBJECT, TIME,
};

/// Where a message came from.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub stage: &'a str,
    pub subject: &'a str,
    pub stream: &'a str,
    pub stream_seq: u64,
    pub attempts: u64,
}

/// Subject and headers of the dead letter of a message with `headers`.
pub fn envelope(
    origin: &Origin<'_>,
    reason: &str,
    detail: &str,
    headers: Option<&HeaderMap>,
) -> (String, HeaderMap) {
    let mut out = HeaderMap::new();
    if let Some(headers) = headers {
        for (name, values) in headers.iter() {
            let name: &str = name.as_ref();
            let lower = name.to_ascii_lowercase();
            if lower.eq_ignore_ascii_case(NATS_MSG_ID) || lower.starts_with(PREFIX) {
                continue;
            }
            for v in values {
                out.append(name, v.as_str());
            }
        }
    }
    let detail: String = detail
        .chars()
        .filter(|c| !c.is_control())
        .take(512)
        .collect();
    // A message with no stored original (stream_seq 0: a failure found by a timer, not a
    // delivery) is named by its subject and reason, so a timer finding it again stores it once.
    let id = match origin.stream_seq {
        0 => format!("dl:{}:{}:{reason}", origin.stage, origin.subject),
        seq => format!("dl:{}:{}:{seq}", origin.stage, origin.stream),
    };
    out.insert(NATS_MSG_ID, id);
    out.insert(REASON, reason);
    out.insert(DETAIL, detail.as_str());
    out.insert(STAGE, origin.stage);
    out.insert(SUBJECT, origin.subject);
    out.insert(STREAM, origin.stream);
    out.insert(STREAM_SEQ, origin.stream_seq.to_string().as_str());
    out.insert(ATTEMPTS, origin.attempts.to_string().as_str());
    out.insert(
        TIME,
        humantime::format_rfc3339_millis(std::time::SystemTime::now())
            .to_string()
            .as_str(),
    );
    (format!("ifox.deadletter.{}.{reason}", origin.stage), out)
}

/// Counter of dead letters by stage and reason.
pub const DEAD_LETTERS: &str = "ifox_dead_letters_total";

impl Bus {
    /// Copies a message to DEADLETTER and waits for the PubAck. Only then may its original be
    /// terminated: a failure here leaves the original to be retried.
    pub async fn dead_letter(
        &self,
        origin: &Origin<'_>,
        reason: &str,
        detail: &str,
        headers: Option<&HeaderMap>,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        let (subject, headers) = envelope(origin, reason, detail, headers);
        self.publish(subject, headers, payload).await?;
        tracing::warn!(
            stage = origin.stage,
            reason,
            detail,
            subject = origin.subject,
            stream_seq = origin.stream_seq,
            attempts = origin.attempts,
            "dead-lettered"
        );
        metrics::counter!(DEAD_LETTERS, "stage" => origin.stage.to_owned(), "reason" => reason.to_owned())
            .increment(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_keeps_the_original_headers_and_names_reason_origin_and_attempts() {
        let mut h = HeaderMap::new();
        h.insert("ce-id", "ev1");
        h.insert("Nats-Msg-Id", "github:ev1");
        let origin = Origin {
            stage: "router",
            subject: "ifox.events.github.issues",
            stream: "EVENTS",
            stream_seq: 42,
            attempts: 3,
        };
        let (subject, out) = envelope(&origin, "no_route", "no team claims\nacme/x", Some(&h));
        assert_eq!(subject, "ifox.deadletter.router.no_route");
        assert_eq!(out.get("ce-id").map(|v| v.as_str()), Some("ev1"));
        assert_eq!(
            out.get("Nats-Msg-Id").map(|v| v.as_str()),
            Some("dl:router:EVENTS:42")
        );
        assert_eq!(
            out.get(SUBJECT).map(|v| v.as_str()),
            Some("ifox.events.github.issues")
        );
        assert_eq!(out.get(STREAM_SEQ).map(|v| v.as_str()), Some("42"));
        assert_eq!(out.get(ATTEMPTS).map(|v| v.as_str()), Some("3"));
        assert_eq!(
            out.get("Ifox-DL-Detail").map(|v| v.as_str()),
            Some("no team claimsacme/x")
        );
    }
}
