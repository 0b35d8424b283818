//! The IO of `ifox status`: what NATS and the database say, each read on its own so that one being
//! down still leaves the other's part (and names the missing one in `unavailable`).

use super::{
    ConsumerStatus, DeadLetterCount, DedicatedTeam, Peer, ProvisionRun, Status, StreamStatus,
};
use crate::bus::{Bus, StreamSpec};
use crate::domain::runtime::Mode;
use crate::settings::Settings;
use crate::store::{Store, deployments, provision_runs};
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use futures::TryStreamExt;
use std::collections::{BTreeMap, HashMap};

/// The dead-letter stream and its subjects (`ifox.deadletter.<stage>.<reason>`).
const DEADLETTER: &str = "DEADLETTER";

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{0}")]
    Nats(String),
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
}

fn nats_err(e: impl std::fmt::Display) -> StatusError {
    StatusError::Nats(e.to_string())
}

/// Reads everything and assesses it.
pub async fn gather(settings: &Settings) -> Status {
    let mut status = Status::default();
    match Bus::connect(&settings.nats).await {
        Ok(bus) => {
            if let Err(e) = nats_part(&bus, &mut status).await {
                status.unavailable.push(format!("nats: {e}"));
            }
        }
        Err(e) => status.unavailable.push(format!("nats: {e}")),
    }
    if let Err(e) = db_part(settings, &mut status).await {
        status.unavailable.push(e.to_string());
    }
    super::assess(status)
}

async fn nats_part(bus: &Bus, status: &mut Status) -> Result<(), StatusError> {
    let js = bus.jetstream();
    let specs = StreamSpec::embedded().map_err(nats_err)?;
    for spec in &specs {
        let name = spec.name().to_owned();
        let mut stream = match js.get_stream(&name).await {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
            {
                status.streams.push(StreamStatus {
                    name,
                    ..StreamStatus::default()
                });
                continue;
            }
            Err(e) => return Err(nats_err(e)),
        };
        let info = stream.info().await.map_err(nats_err)?.clone();
        let cluster = info.cluster.as_ref();
        status.streams.push(StreamStatus {
            name: name.clone(),
            present: true,
            messages: info.state.messages,
            bytes: info.state.bytes,
            last_seq: info.state.last_sequence,
            replicas: info.config.num_replicas,
            leader: cluster.and_then(|c| c.leader.clone()),
            peers: cluster
                .map(|c| {
                    c.replicas
                        .iter()
                        .map(|p| Peer {
                            name: p.name.clone(),
                            current: p.current,
                            offline: p.offline,
                            lag: p.lag.unwrap_or(0),
                            active_ms: p.active.as_millis() as u64,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
        let consumers: Vec<_> = stream.consumers().try_collect().await.map_err(nats_err)?;
        for c in consumers {
            status.consumers.push(ConsumerStatus {
                stream: name.clone(),
                name: c.name.clone(),
                pending: c.num_pending,
                ack_pending: c.num_ack_pending as u64,
                redelivered: c.num_redelivered as u64,
                ack_floor_seq: c.ack_floor.stream_sequence,
                ack_floor_lag: info
                    .state
                    .last_sequence
                    .saturating_sub(c.ack_floor.stream_sequence),
            });
        }
        if name == DEADLETTER {
            status.dead_letters = dead_letters(&stream).await?;
        }
    }
    status
        .consumers
        .sort_by(|a, b| (&a.stream, &a.name).cmp(&(&b.stream, &b.name)));
    Ok(())
}

/// Counts by stage and reason from the stream's per-subject counts: exact, and as cheap as the
/// number of distinct subjects (stages × reasons), however many dead letters there are.
async fn dead_letters(
    stream: &async_nats::jetstream::stream::Stream,
) -> Result<Vec<DeadLetterCount>, StatusError> {
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects("ifox.deadletter.>")
        .await
        .map_err(nats_err)?
        .try_collect()
        .await
        .map_err(nats_err)?;
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (subject, n) in subjects {
        let (stage, reason) = super::dead_letter_key(&subject).unwrap_or(("unknown", "unknown"));
        *counts
            .entry((stage.to_owned(), reason.to_owned()))
            .or_default() += n as u64;
    }
    Ok(counts
        .into_iter()
        .map(|((stage, reason), count)| DeadLetterCount {
            stage,
            reason,
            count,
        })
        .collect())
}

async fn db_part(settings: &Settings, status: &mut Status) -> Result<(), StatusError> {
    let store = Store::connect(settings.database.url.expose(), 1).await?;
    let mut conn = store
        .pool()
        .acquire()
        .await
        .map_err(crate::store::StoreError::from)?;
    let runs = provision_runs::current(&mut conn).await?;
    let run_status: HashMap<&str, &str> = runs
        .iter()
        .map(|r| (r.run_id.as_str(), r.status.as_str()))
        .collect();
    status.provision_runs_not_succeeded = runs
        .iter()
        .filter(|r| r.status != "succeeded")
        .map(|r| ProvisionRun {
            run_id: r.run_id.clone(),
            org: r.org_id.clone(),
            team: r.team_id.clone(),
            kind: r.kind.clone(),
            status: r.status.clone(),
            error: r.error.clone(),
            updated_at: r.updated_at,
        })
        .collect();
    status.dedicated_teams = deployments::list(&mut conn)
        .await?
        .into_iter()
        .filter(|d| d.mode == Mode::Dedicated)
        .map(|d| {
            let run = run_status
                .get(d.run_id.as_str())
                .copied()
                .unwrap_or("unknown");
            DedicatedTeam {
                org: d.org.to_string(),
                team: d.team.to_string(),
                replicas: d.spec.as_ref().map(|s| i64::from(s.replicas)).unwrap_or(0),
                run_status: run.to_owned(),
                url_set: d.url_set,
                available: run == "succeeded" && d.url_set,
            }
        })
        .collect();
    Ok(())
}
