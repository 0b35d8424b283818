//! Publishing to a stream and waiting for the PubAck, within `nats.publish_timeout`.
//!
//! A publish is done only when the server has stored it (or recognised it as a duplicate of a
//! message within the stream's duplicate window): callers answer their own clients after that. Every
//! failure says whether the sender should retry later ([`PublishError::Unavailable`]) or never
//! ([`PublishError::TooLarge`]).

use super::Bus;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;

/// The server's PubAck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub stream: String,
    pub sequence: u64,
    /// The stream already held a message with this `Nats-Msg-Id`; nothing new was stored.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Not connected, no stream for the subject, or no PubAck in time: retry later. The message may
    /// still be stored after this (it left the client); its `Nats-Msg-Id` makes the retry a duplicate.
    #[error("NATS did not confirm the publish: {0}")]
    Unavailable(String),
    /// Larger than the server's `max_payload`: retrying cannot help.
    #[error("the message is larger than the NATS server accepts: {0}")]
    TooLarge(String),
}

impl Bus {
    /// Publishes `payload` with `headers` on `subject` and waits for the PubAck.
    pub async fn publish(
        &self,
        subject: String,
        headers: async_nats::HeaderMap,
        payload: Bytes,
    ) -> Result<Published, PublishError> {
        let message = PublishMessage::build().payload(payload).headers(headers);
        let attempt = async {
            let ack = self.js.send_publish(subject, message).await?;
            ack.await
        };
        // The context bounds the send and the ack separately; this bounds the sum.
        let ack = tokio::time::timeout(self.publish_timeout, attempt)
            .await
            .map_err(|_| {
                PublishError::Unavailable(format!("no PubAck within {:?}", self.publish_timeout))
            })?
            .map_err(|e| match e.kind() {
                PublishErrorKind::MaxPayloadExceeded => PublishError::TooLarge(e.to_string()),
                _ => PublishError::Unavailable(e.to_string()),
            })?;
        Ok(Published {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}
