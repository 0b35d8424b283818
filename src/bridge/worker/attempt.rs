//! One delivery attempt of the bridge: `delivering` recorded, the run token minted, the agent
//! called in the team's protocol (in-progress acks while it lasts), the outcome recorded and the
//! message settled (see the parent module's doc for the outcomes).

use super::{Bridge, Job};
use crate::bridge::deliver::{Call, Delivered};
use crate::bridge::lifecycle::RunRef;
use crate::bridge::plan::{Plan, Planner, remaining};
use crate::bridge::prompt::Prompt;
use crate::bus::{Delivery, Disposition, nak_delay};
use crate::domain::run_token::{self, RunClaims};
use crate::domain::{NodeId, OrgId, now_ms};
use crate::settings::bridge::Protocol;
use crate::store::run_lifecycle::Change;
use serde_json::json;
use std::time::Duration;
use tracing::Instrument;

use super::KEEPALIVE;

/// How long an agent's answer is kept while its outcome cannot be stored on RUNS: the NATS outage
/// budget the README states.
const OUTCOME_RETRY_BUDGET: Duration = Duration::from_secs(3600);

impl Bridge {
    pub(super) async fn execute(&self, job: Job) {
        let Job { delivery, mut plan } = job;
        let span = tracing::info_span!(
            "delivery",
            run_id = %plan.doc.run_id,
            event_id = %plan.doc.event_id,
            org = %plan.doc.org_id,
            team = %plan.doc.team_id,
            trace_id = plan.traceparent.as_deref().and_then(|t| t.split('-').nth(1)).unwrap_or(""),
        );
        crate::telemetry::trace::parent_on(&span, plan.traceparent.as_deref());
        // With spans exported, the agent is called with this delivery's context (its spans are
        // then children of the delivery in the event's trace).
        if let Some(tp) = crate::telemetry::trace::outgoing(&span) {
            plan.traceparent = Some(tp);
        }
        let started = std::time::Instant::now();
        let outcome = self.deliver(&delivery, &plan).instrument(span).await;
        // Per team (bounded labels): latency, agent time (the cost measure) and outcomes.
        let (org, team) = crate::telemetry::team_labels(&plan.doc.org_id, &plan.doc.team_id);
        metrics::histogram!("ifox_bridge_delivery_seconds", "org" => org.clone(), "team" => team.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("ifox_bridge_deliveries_total", "outcome" => outcome.0, "org" => org, "team" => team)
            .increment(1);
        match outcome.1 {
            Settle::Now(disposition) => {
                delivery.settle(&self.inner.bus, disposition).await;
            }
            Settle::Fail(reason, detail) => {
                let run = run_ref(&plan, delivery.delivered());
                self.fail_and_dead_letter(&run, None, delivery, reason, detail)
                    .await
            }
        }
    }

    async fn deliver(&self, d: &Delivery, plan: &Plan) -> (&'static str, Settle) {
        let inner = &self.inner;
        let run = run_ref(plan, d.delivered());
        let now = now_ms();
        let deadline = plan
            .record
            .deadline_at
            .unwrap_or(now + plan.timeout.as_millis() as i64);
        let Some(left) = remaining(deadline, now) else {
            return self
                .finish(
                    d,
                    &run,
                    "timeout",
                    None,
                    Some("no outcome within the run's timeout"),
                )
                .await;
        };
        let detail = plan.mode_change.as_deref();
        let change = Change {
            to: "delivering",
            detail,
            deadline_at: Some(deadline),
            attempt: true,
            delivered_to: Some(&plan.url),
            protocol: Some(plan.protocol.as_str()),
            ..Change::default()
        };
        // Stored on RUNS (with the run's record, for a recorder that has not made it yet) before
        // the agent is called. Kept alive from here on: a slow RUNS or EVENTS read must not let
        // the message's ack_wait run out and hand it to another replica while this one goes on to
        // call the agent.
        let row = crate::bridge::plan::row_of(&plan.doc, d);
        match keep_alive(d, inner.lifecycle.advance_with(&run, change, Some(&row))).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, "delivering not stored; retrying");
                return (
                    "runs_unavailable",
                    Settle::Now(Disposition::Nak(nak_delay(d.delivered()))),
                );
            }
        }
        if let Some(change) = &plan.mode_change {
            tracing::info!(change = %change, "the team's runtime changed while its run waited");
        }
        let (Ok(org), Ok(team)) = (
            OrgId::parse(&plan.doc.org_id),
            NodeId::parse(&plan.doc.team_id),
        ) else {
            return (
                "invalid",
                Settle::Fail("invalid_run", "invalid org or team id".into()),
            );
        };
        let token = run_token::mint(
            &inner.token_key,
            &RunClaims {
                org,
                team,
                run_id: plan.doc.run_id.clone(),
                expires_unix: deadline.div_euclid(1000) + 1,
            },
        );
        let planner = Planner {
            tenancy: &inner.tenancy,
            bus: &inner.bus,
            settings: &inner.settings,
            allow: &inner.allow,
        };
        let (prompt, event) = keep_alive(d, planner.material(&plan.doc)).await;
        let body = self.body(plan, &prompt, event, &token, deadline);
        let call = Call {
            base: &plan.url,
            run_id: &plan.doc.run_id,
            traceparent: plan.traceparent.as_deref(),
            body: &body,
            deadline: left,
        };
        let exchange = async {
            match plan.protocol {
                Protocol::Ifox => inner.agents.submit(&call).await,
                Protocol::Investigate => {
                    inner
                        .agents
                        .investigate(&call, || async {
                            let running = Change {
                                to: "running",
                                ..Change::default()
                            };
                            // Not waited for: written before the outcome, which is.
                            inner.lifecycle.advance_later(&run, running).await;
                        })
                        .await
                }
            }
        };
        let delivered = keep_alive(d, exchange).await;
        match delivered {
            Delivered::Finished {
                success,
                text,
                error,
            } => {
                let status = if success { "completed" } else { "failed" };
                let change = Change {
                    to: status,
                    result_text: text.as_deref(),
                    error: error.as_deref(),
                    ..Change::default()
                };
                self.record(d, &run, change, status).await
            }
            Delivered::Accepted => {
                let change = Change {
                    to: "running",
                    detail: Some("accepted by the agent"),
                    ..Change::default()
                };
                self.record(d, &run, change, "accepted").await
            }
            Delivered::Timeout => {
                self.finish(
                    d,
                    &run,
                    "timeout",
                    None,
                    Some("no outcome within the run's timeout"),
                )
                .await
            }
            Delivered::Retry { after, why } => {
                // Attempts are the agent calls the record counts (this one included), or the
                // message's deliveries when more: the record may lag RUNS (the recorder behind): the message's deliveries bound
                // the attempts from below, so a lagging record never buys extra calls.
                let attempts =
                    (u64::try_from(plan.record.attempts).unwrap_or(0) + 1).max(d.delivered());
                if attempts >= inner.settings.max_attempts {
                    let detail = format!("gave up after {attempts} attempts: {why}");
                    return ("exhausted", Settle::Fail("agent_unavailable", detail));
                }
                let delay = after.unwrap_or_else(|| nak_delay(attempts));
                tracing::warn!(attempt = attempts, retry_in = ?delay, why = %why, "agent unavailable; will retry");
                ("retry", Settle::Now(Disposition::Nak(delay)))
            }
            Delivered::Refused { why } => ("refused", Settle::Fail("agent_refused", why)),
        }
    }

    /// The request body of `plan`'s protocol.
    fn body(
        &self,
        plan: &Plan,
        prompt: &Prompt,
        event: Option<serde_json::Value>,
        token: &str,
        deadline_ms: i64,
    ) -> serde_json::Value {
        match plan.protocol {
            Protocol::Investigate => json!({
                "prompt": prompt.text,
                "team_token": token,
                "thread_id": prompt.thread_id,
                "tenant_id": plan.doc.org_id,
                "team_id": plan.doc.team_id,
            }),
            Protocol::Ifox => {
                let base = self.inner.settings.public_url.trim_end_matches('/');
                let at = std::time::UNIX_EPOCH + Duration::from_millis(deadline_ms.max(0) as u64);
                json!({
                    "run": plan.document,
                    "prompt": prompt.text,
                    "thread_id": prompt.thread_id,
                    "event": event,
                    "run_token": token,
                    "status_url": format!("{base}/api/v1/runs/{}/status", plan.doc.run_id),
                    "config_url": format!("{base}/api/v1/config/me/effective"),
                    "deadline": humantime::format_rfc3339_millis(at).to_string(),
                })
            }
        }
    }

    /// Records the outcome of an agent call (or of no call: a timeout), see [`Bridge::write_kept`].
    async fn record(
        &self,
        d: &Delivery,
        run: &RunRef,
        change: Change<'_>,
        label: &'static str,
    ) -> (&'static str, Settle) {
        match self.write_kept(d, run, &change, None).await {
            Ok(()) => (label, Settle::Now(Disposition::Ack)),
            // The agent's answer is lost with this NAK; the redelivery carries the same
            // Idempotency-Key, so an agent that keeps answers can give it again.
            Err(()) => (
                "runs_unavailable",
                Settle::Now(Disposition::Nak(nak_delay(1))),
            ),
        }
    }

    /// Stores a final transition on RUNS, not giving it up while RUNS is away: the publication is
    /// retried (0.5 s doubling to 30 s) while the message is kept alive, for up to
    /// [`OUTCOME_RETRY_BUDGET`], so an outage during an agent call does not make a second one.
    /// `Err` past that (the caller NAKs: the run is delivered again, same Idempotency-Key). The
    /// recorder applies it with the guard: a run that another writer finished first (the sweeper,
    /// an agent's report) keeps that outcome (`ifox_recorder_transitions_refused_total`).
    async fn write_kept(
        &self,
        d: &Delivery,
        run: &RunRef,
        change: &Change<'_>,
        row: Option<&crate::store::runs::RunRow>,
    ) -> Result<(), ()> {
        let started = std::time::Instant::now();
        let mut tries = 0u64;
        keep_alive(d, async {
            loop {
                tries += 1;
                // Published with the same Nats-Msg-Id every time: one that RUNS stored although
                // its PubAck was lost is collapsed by the duplicate window, not stored twice.
                let e = match self.inner.lifecycle.advance_with(run, change.clone(), row).await {
                    Ok(_) => return Ok(()),
                    Err(e) => e,
                };
                if started.elapsed() >= OUTCOME_RETRY_BUDGET {
                    tracing::error!(error = %e, waited = ?started.elapsed(), status = change.to, "outcome not recorded within the budget; the run will be delivered again");
                    return Err(());
                }
                let pause = nak_delay(tries);
                tracing::warn!(error = %e, status = change.to, attempt = tries, retry_in = ?pause, "outcome not recorded; keeping it and retrying");
                metrics::counter!("ifox_bridge_outcome_retries_total").increment(1);
                tokio::time::sleep(pause).await;
            }
        })
        .await
    }

    async fn finish(
        &self,
        d: &Delivery,
        run: &RunRef,
        status: &'static str,
        error: Option<&str>,
        detail: Option<&str>,
    ) -> (&'static str, Settle) {
        let change = Change {
            to: status,
            error,
            detail,
            ..Change::default()
        };
        self.record(d, run, change, status).await
    }

    /// `row`: the run's record, when this is its first transition (a failure without a call).
    pub(super) async fn fail_and_dead_letter(
        &self,
        run: &RunRef,
        row: Option<&crate::store::runs::RunRow>,
        d: Delivery,
        reason: &'static str,
        detail: String,
    ) {
        let change = Change {
            to: "failed",
            error: Some(&detail),
            detail: Some(reason),
            ..Change::default()
        };
        // Kept like an agent's answer (a refusal or the last failed attempt follows an agent
        // call): a RUNS outage here must not make another call.
        if self.write_kept(&d, run, &change, row).await.is_err() {
            let delay = nak_delay(d.delivered());
            d.settle(&self.inner.bus, Disposition::Nak(delay)).await;
            return;
        }
        // The dead letter is retried by `settle` itself while the message is kept alive.
        d.settle(&self.inner.bus, Disposition::DeadLetter { reason, detail })
            .await;
    }
}

enum Settle {
    Now(Disposition),
    /// Record `failed`, then dead-letter with this reason and detail.
    Fail(&'static str, String),
}

fn run_ref(plan: &Plan, delivery: u64) -> RunRef {
    RunRef {
        delivery,
        run_id: plan.doc.run_id.clone(),
        event_id: plan.doc.event_id.clone(),
        org_id: plan.doc.org_id.clone(),
        team_id: plan.doc.team_id.clone(),
        traceparent: plan.traceparent.clone(),
    }
}

/// The ticks of an in-progress ack every [`KEEPALIVE`], the first one [`KEEPALIVE`] from now. Not
/// `interval` and a first `tick().await`: that first tick, although due at once, waits for the timer
/// driver's next millisecond — up to a millisecond (often more on a busy runtime) added to every
/// step it guards on a delivery's path (the bench measured +2 ms at the p50 for two such steps).
pub(super) fn keepalive_ticks() -> tokio::time::Interval {
    tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE)
}

/// Runs `exchange` while sending in-progress acks for `d` every [`KEEPALIVE`].
async fn keep_alive<T, F: std::future::Future<Output = T>>(d: &Delivery, exchange: F) -> T {
    tokio::pin!(exchange);
    let mut tick = keepalive_ticks();
    loop {
        tokio::select! {
            out = &mut exchange => return out,
            _ = tick.tick() => {
                if let Err(e) = d.in_progress().await {
                    tracing::debug!(error = %e, "in-progress ack not sent");
                }
            }
        }
    }
}
