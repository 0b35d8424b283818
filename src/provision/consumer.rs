//! The provisioner's side of NATS: its durable consumer on PROVISION
//! (`streams/consumers/PROVISION.provisioner.json`) on the consumer toolkit of
//! [`crate::bus::consumer`], the nudge the API publishes, and dead letters of passes run by timers.
//!
//! Ack after the pass converged; NAK with a delay while a Deployment becomes available (the pass
//! says how long) or when the cluster or the database is unavailable (the toolkit's `nak_delay`);
//! on a permanent failure, a dead letter on `ifox.deadletter.provisioner.<reason>` in the one
//! dead-letter format (stored before the TERM).

use super::reconcile::Outcome;
use super::worker::Worker;
use crate::bus::consumer::{self, LoopOptions, PROVISIONER};
use crate::bus::deadletter::Origin;
use crate::bus::{Bus, Delivery, Disposition, Health, nak_delay};
use crate::domain::{NodeId, OrgId, headers};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub const STREAM: &str = PROVISIONER.stream;

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

/// The body of a nudge (also of a timer's dead letter, so replaying it nudges the team again).
fn nudge_body(org: &OrgId, team: &NodeId, run_id: Option<&str>) -> bytes::Bytes {
    serde_json::json!({"org_id": org, "team_id": team, "run_id": run_id})
        .to_string()
        .into()
}

impl Worker {
    /// Consumes nudges one at a time until `shutdown`.
    pub(super) async fn consume(&self, bus: Bus, health: Health, shutdown: CancellationToken) {
        let config = match PROVISIONER.config(0) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "provisioner consumer definition refused");
                return;
            }
        };
        let handler = |deliveries: Vec<Delivery>| self.handle(&bus, deliveries);
        consumer::run(
            bus.clone(),
            PROVISIONER,
            config,
            LoopOptions::SEQUENTIAL,
            health,
            shutdown,
            handler,
        )
        .await;
    }

    async fn handle(&self, bus: &Bus, deliveries: Vec<Delivery>) {
        for d in deliveries {
            let disposition = self.disposition(&d).await;
            d.settle(bus, disposition).await;
        }
    }

    async fn disposition(&self, d: &Delivery) -> Disposition {
        let Some((org, team)) = parse_subject(d.subject()) else {
            return Disposition::DeadLetter {
                reason: "bad_subject",
                detail: "not ifox.provision.<org>.<team>".to_owned(),
            };
        };
        let span = tracing::info_span!("reconcile", %org, %team, stream_seq = d.stream_seq());
        match self
            .reconciler
            .reconcile_team(&org, &team)
            .instrument(span)
            .await
        {
            Ok(Outcome::Done) => Disposition::Ack,
            Ok(Outcome::Wait(delay)) => Disposition::Nak(delay),
            Ok(Outcome::Failed(e)) => Disposition::DeadLetter {
                reason: e.reason(),
                detail: e.to_string(),
            },
            Err(e) => {
                let delay = nak_delay(d.delivered());
                tracing::warn!(%org, %team, error = %e, retry_in = ?delay, "provisioning pass failed; will retry");
                Disposition::Nak(delay)
            }
        }
    }

    /// The dead letter of a pass run by a timer (tick, resync): there is no delivery to terminate,
    /// so it names the team's nudge subject and carries a nudge body (replaying it nudges again).
    pub(super) async fn dead_letter_pass(
        &self,
        bus: &Bus,
        org: &OrgId,
        team: &NodeId,
        reason: &'static str,
        detail: &str,
    ) {
        let subject = subject(org, team);
        let origin = Origin {
            stage: PROVISIONER.stage,
            subject: &subject,
            stream: STREAM,
            stream_seq: 0,
            attempts: 1,
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(headers::CONTENT_TYPE, "application/json");
        let body = nudge_body(org, team, None);
        if let Err(e) = bus
            .dead_letter(&origin, reason, detail, Some(&headers), body)
            .await
        {
            tracing::error!(error = %e, %subject, reason, "cannot dead-letter a failed provisioning run");
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
    headers.insert(headers::NATS_MSG_ID, run_id);
    bus.publish(
        subject(org, team),
        headers,
        nudge_body(org, team, Some(run_id)),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_consumer_file_filters_the_provision_subjects_without_a_delivery_limit() {
        let c = PROVISIONER.config(0).unwrap();
        assert_eq!(c.durable_name.as_deref(), Some("provisioner"));
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
