//! The provisioner's side of NATS: its durable consumer on PROVISION
//! (`streams/consumers/PROVISION.provisioner.json`, the same file `nats consumer add PROVISION
//! --config` takes), the nudge the API publishes, and dead letters.
//!
//! Ack after the pass converged; NAK with a delay while a Deployment becomes available or when the
//! cluster or the database is unavailable (the delay grows with each delivery, capped at 60 s); on a
//! permanent failure, dead-letter on `ifox.deadletter.provisioner.<reason>`, then TERM.

use super::reconcile::Outcome;
use super::worker::Worker;
use crate::bus::Bus;
use crate::domain::{NodeId, OrgId};
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::pull;
use futures::StreamExt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const STREAM: &str = "PROVISION";
pub const CONSUMER: &str = "provisioner";
const CONSUMER_FILE: &str = include_str!("../../streams/consumers/PROVISION.provisioner.json");
const CONSUMER_FILE_NAME: &str = "streams/consumers/PROVISION.provisioner.json";

/// The consumer definition from the committed file.
pub fn consumer_config() -> Result<pull::Config, String> {
    serde_json::from_str(CONSUMER_FILE).map_err(|e| format!("{CONSUMER_FILE_NAME}: {e}"))
}

/// The subject of a team's nudge.
pub fn subject(org: &OrgId, team: &NodeId) -> String {
    format!("ifox.provision.{org}.{team}")
}

fn parse_subject(subject: &str) -> Option<(OrgId, NodeId)> {
    let mut parts = subject.strip_prefix("ifox.provision.")?.split('.');
    let org = OrgId::parse(parts.next()?).ok()?;
    let team = NodeId::parse(parts.next()?).ok()?;
    parts.next().is_none().then_some((org, team))
}

impl Worker {
    pub(super) async fn consume(&self, bus: Bus, shutdown: CancellationToken) {
        let mut delay = Duration::from_millis(500);
        loop {
            match self.consume_once(&bus, &shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "provisioner consumer unavailable")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    async fn consume_once(&self, bus: &Bus, shutdown: &CancellationToken) -> Result<(), String> {
        let stream = bus
            .jetstream()
            .get_stream(STREAM)
            .await
            .map_err(|e| e.to_string())?;
        let config = consumer_config()?;
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| e.to_string())?
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = Box::pin(consumer.take_until(shutdown.clone().cancelled_owned()));
        while let Some(msg) = messages.next().await {
            let msg = msg.map_err(|e| e.to_string())?;
            let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
            let ack = match parse_subject(&msg.subject) {
                None => {
                    self.dead_letter(
                        bus,
                        &msg.subject,
                        "bad_subject",
                        "not ifox.provision.<org>.<team>",
                    )
                    .await;
                    AckKind::Term
                }
                Some((org, team)) => match self.reconciler.reconcile_team(&org, &team).await {
                    Ok(Outcome::Done) => AckKind::Ack,
                    Ok(Outcome::Wait(d)) => AckKind::Nak(Some(d)),
                    Ok(Outcome::Failed(e)) => {
                        self.dead_letter(bus, &msg.subject, e.reason(), &e.to_string())
                            .await;
                        AckKind::Term
                    }
                    Err(e) => {
                        let backoff = Duration::from_millis(500)
                            * 2u32.saturating_pow(delivered.min(7) as u32);
                        tracing::warn!(%org, %team, error = %e, retry_in = ?backoff, "provisioning pass failed; will retry");
                        AckKind::Nak(Some(backoff.min(Duration::from_secs(60))))
                    }
                },
            };
            if let Err(e) = msg.ack_with(ack).await {
                tracing::warn!(error = %e, "cannot ack a provisioning nudge; it will be redelivered");
            }
        }
        Ok(())
    }

    pub(super) async fn dead_letter(&self, bus: &Bus, subject: &str, reason: &str, error: &str) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("ifox-original-subject", subject);
        headers.insert("ifox-reason", reason);
        let body = serde_json::json!({"stage": "provisioner", "reason": reason, "subject": subject, "error": error});
        let to = format!("ifox.deadletter.provisioner.{reason}");
        if let Err(e) = bus.publish(to, headers, body.to_string().into()).await {
            tracing::error!(error = %e, %subject, "cannot dead-letter a failed provisioning run");
        }
    }
}

/// Publishes a nudge for a team (the API after admission). `Nats-Msg-Id` is the run id, so a retried
/// publish is one message.
pub async fn nudge(
    bus: &Bus,
    org: &OrgId,
    team: &NodeId,
    run_id: &str,
) -> Result<(), crate::bus::PublishError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", run_id);
    let body = serde_json::json!({"org_id": org, "team_id": team, "run_id": run_id});
    bus.publish(subject(org, team), headers, body.to_string().into())
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_consumer_file_parses_and_filters_the_provision_subjects() {
        let c = consumer_config().unwrap();
        assert_eq!(c.durable_name.as_deref(), Some(CONSUMER));
        assert_eq!(c.filter_subject, "ifox.provision.>");
        assert_eq!(c.max_deliver, -1);
    }

    #[test]
    fn nudge_subjects_round_trip_and_foreign_ones_are_refused() {
        let (org, team) = (OrgId::parse("acme").unwrap(), NodeId::parse("web").unwrap());
        assert_eq!(parse_subject(&subject(&org, &team)), Some((org, team)));
        assert_eq!(parse_subject("ifox.provision.acme"), None);
        assert_eq!(parse_subject("ifox.provision.acme.web.extra"), None);
        assert_eq!(parse_subject("ifox.provision.ACME.web"), None);
    }
}
