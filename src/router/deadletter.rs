//! Dead letters: what could not be processed, copied to `ifox.deadletter.<stage>.<reason>` with the
//! original body and headers plus why, from where, and after how many attempts. Built here (pure),
//! published by the caller with a PubAck before the original is terminated.
//!
//! Headers added: `Ifox-DL-Reason`, `Ifox-DL-Detail`, `Ifox-DL-Stage`, `Ifox-DL-Subject` (the
//! original subject), `Ifox-DL-Stream`, `Ifox-DL-Stream-Seq`, `Ifox-DL-Attempts`, `Ifox-DL-Time`.
//! The original `Nats-Msg-Id` is replaced by `dl:<stage>:<stream>:<seq>`, so a dead letter written
//! twice (a crash before the TERM) is stored once.

use async_nats::HeaderMap;

pub const REASON: &str = "Ifox-DL-Reason";
pub const SUBJECT: &str = "Ifox-DL-Subject";
pub const STREAM_SEQ: &str = "Ifox-DL-Stream-Seq";
pub const ATTEMPTS: &str = "Ifox-DL-Attempts";

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
            if lower == "nats-msg-id" || lower.starts_with("ifox-dl-") {
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
    out.insert(
        "Nats-Msg-Id",
        format!(
            "dl:{}:{}:{}",
            origin.stage, origin.stream, origin.stream_seq
        ),
    );
    out.insert(REASON, reason);
    out.insert("Ifox-DL-Detail", detail.as_str());
    out.insert("Ifox-DL-Stage", origin.stage);
    out.insert(SUBJECT, origin.subject);
    out.insert("Ifox-DL-Stream", origin.stream);
    out.insert(STREAM_SEQ, origin.stream_seq.to_string().as_str());
    out.insert(ATTEMPTS, origin.attempts.to_string().as_str());
    out.insert(
        "Ifox-DL-Time",
        humantime::format_rfc3339_millis(std::time::SystemTime::now())
            .to_string()
            .as_str(),
    );
    (format!("ifox.deadletter.{}.{reason}", origin.stage), out)
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
