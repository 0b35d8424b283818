//! The `bridge` role: its durable consumer on AGENT_RUNS (`streams/consumers/AGENT_RUNS.bridge.json`,
//! on the toolkit of [`crate::bus::consumer`]), the fair scheduler of deliveries, and the sweeper.
//!
//! Each message is planned ([`super::plan`]) and, when it is a run to deliver, queued per team in
//! [`super::fair::Fair`]: at most `max_concurrent_agents` deliveries of a team and
//! `bridge.concurrency` of the process are in flight, teams taking turns, so a team that floods the
//! shared pool delays another team's run by at most one free slot. Waiting messages stay un-acked in
//! JetStream (an in-progress ack every 10 s keeps them), so a crash loses nothing: they are
//! redelivered. Above `bridge.max_waiting` held messages the consumer stops pulling.
//!
//! A delivery: `delivering` (attempt counted, the deadline set at the first one) → the agent call
//! (in-progress acks while it lasts) → the outcome recorded → the message settled:
//! completed / failed (the agent said so) / timeout → ack; accepted (`ifox` protocol) → `running`,
//! ack; retryable → NAK with the agent's `Retry-After` or the toolkit's delay, until
//! `bridge.max_attempts`, then `failed` and a dead letter `agent_unavailable`; refused → `failed`
//! and a dead letter `agent_refused`.

use super::allow::AllowList;
use super::deliver::{Agents, Call, Delivered};
use super::fair::Fair;
use super::lifecycle::{Lifecycle, RunRef};
use super::plan::{Decision, Plan, Planner, remaining};
use super::prompt::Prompt;
use crate::bus::consumer::{self, BRIDGE, LoopOptions};
use crate::bus::{Bus, Delivery, Disposition, Health, nak_delay};
use crate::domain::run_token::{self, RunClaims};
use crate::domain::{NodeId, OrgId, now_ms};
use crate::settings::bridge::{BridgeSettings, Protocol};
use crate::store::run_lifecycle::{self, Change};
use crate::tenancy::Tenancy;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a stopping bridge waits for its deliveries in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// How often held messages get an in-progress ack (the consumer's `ack_wait` is 30 s).
const KEEPALIVE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("bridge.allowed_url_patterns: {0}")]
    Patterns(#[from] super::allow::AllowError),
    #[error(transparent)]
    Consumer(#[from] consumer::ConsumerError),
}

struct Job {
    delivery: Delivery,
    plan: Box<Plan>,
}

#[derive(Default)]
struct Sched {
    fair: Fair<String, Job>,
    limits: HashMap<String, usize>,
}

struct Inner {
    tenancy: Tenancy,
    bus: Bus,
    lifecycle: Lifecycle,
    agents: Agents,
    settings: BridgeSettings,
    allow: AllowList,
    token_key: Vec<u8>,
    sched: Mutex<Sched>,
    /// Fired whenever a slot frees (the pull waits on it above `max_waiting`).
    freed: Notify,
}

/// The role; cheap to clone.
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

impl Bridge {
    pub fn new(
        settings: &crate::settings::Settings,
        tenancy: Tenancy,
        bus: Bus,
    ) -> Result<Bridge, BridgeError> {
        let b = &settings.bridge;
        let allow = AllowList::new(&b.allowed_patterns(&settings.kube.namespace))?;
        let agents = Agents::new(
            b.connect_timeout,
            b.service_token.as_ref().map(|t| t.expose().to_owned()),
            b.result_limit,
        );
        let lifecycle = Lifecycle::new(tenancy.store().clone(), Some(bus.clone()));
        Ok(Bridge {
            inner: Arc::new(Inner {
                token_key: b.token_key(settings.admin.token.expose()),
                tenancy,
                bus,
                lifecycle,
                agents,
                settings: b.clone(),
                allow,
                sched: Mutex::new(Sched::default()),
                freed: Notify::new(),
            }),
        })
    }

    /// Consumes AGENT_RUNS until `shutdown`, with the keepalive of held messages and the sweeper.
    pub async fn run(self, health: Health, shutdown: CancellationToken) -> Result<(), BridgeError> {
        let config = BRIDGE.config(0)?;
        let keepalive = tokio::spawn(self.clone().keepalive(shutdown.clone()));
        let sweeper = tokio::spawn(self.clone().sweep_loop(shutdown.clone()));
        let depth = tokio::spawn(consumer::watch_depth(
            self.inner.bus.clone(),
            BRIDGE,
            Duration::from_secs(5),
            shutdown.clone(),
        ));
        let options = LoopOptions {
            batch: 256,
            concurrency: 4,
            chunk: 64,
        };
        let handler = |deliveries: Vec<Delivery>| self.admit(deliveries);
        consumer::run(
            self.inner.bus.clone(),
            BRIDGE,
            config,
            options,
            health,
            shutdown.clone(),
            handler,
        )
        .await;
        // Held messages are dropped with the scheduler: the delivery guard NAKs them, so another
        // replica takes them at once. Deliveries in flight get a while to finish and record their
        // outcome; one still running after that is redelivered (same Idempotency-Key).
        let held: Vec<Job> = {
            let mut s = self.lock();
            s.fair.drain_waiting()
        };
        drop(held);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            loop {
                let freed = self.inner.freed.notified();
                if self.lock().fair.in_flight() == 0 {
                    return;
                }
                freed.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                in_flight = self.lock().fair.in_flight(),
                "deliveries still in flight at shutdown; they will be redelivered"
            );
        }
        for task in [keepalive, sweeper, depth] {
            let _ = task.await;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sched> {
        self.inner.sched.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn admit(&self, deliveries: Vec<Delivery>) {
        let inner = &self.inner;
        // Planning reads the run record and the event: done for the whole chunk at once, so a
        // flood's backlog is admitted quickly and a later run of another team is not stuck behind
        // it in the pull, only (fairly) in the queue.
        let planned = futures::future::join_all(deliveries.into_iter().map(|d| async move {
            let planner = Planner {
                tenancy: &inner.tenancy,
                bus: &inner.bus,
                settings: &inner.settings,
                allow: &inner.allow,
            };
            let decision = planner.plan(&d).await;
            (d, decision)
        }))
        .await;
        for (d, decision) in planned {
            match decision {
                Decision::Settle(disposition) => {
                    d.settle(&inner.bus, disposition).await;
                }
                Decision::Fail {
                    record,
                    reason,
                    detail,
                } => {
                    let run = RunRef::from(&*record);
                    self.fail_and_dead_letter(&run, d, reason, detail).await;
                }
                Decision::Queue(plan) => {
                    let team = format!("{}/{}", plan.doc.org_id, plan.doc.team_id);
                    {
                        let mut s = self.lock();
                        s.limits.insert(team.clone(), plan.max_concurrent);
                        s.fair.push(team, Job { delivery: d, plan });
                    }
                    self.pump();
                }
            }
        }
        // Backpressure: above `max_waiting` held messages the pull waits for a free slot.
        loop {
            let freed = inner.freed.notified();
            if self.lock().fair.waiting() < inner.settings.max_waiting {
                break;
            }
            freed.await;
        }
        self.gauges();
    }

    fn gauges(&self) {
        let s = self.lock();
        metrics::gauge!("ifox_bridge_waiting").set(s.fair.waiting() as f64);
        metrics::gauge!("ifox_bridge_in_flight").set(s.fair.in_flight() as f64);
    }

    /// Starts every delivery that has a slot.
    fn pump(&self) {
        loop {
            let next = {
                let mut s = self.lock();
                let Sched { fair, limits } = &mut *s;
                let default = self.inner.settings.max_concurrent_agents;
                fair.next(self.inner.settings.concurrency, |team| {
                    limits.get(team).copied().unwrap_or(default)
                })
            };
            let Some((team, job)) = next else {
                return;
            };
            let this = self.clone();
            tokio::spawn(async move {
                this.execute(job).await;
                {
                    let mut s = this.lock();
                    let _ = s.fair.done(&team);
                    if s.fair.team_in_flight(&team) == 0 {
                        s.limits.remove(&team);
                    }
                }
                this.inner.freed.notify_waiters();
                this.pump();
                this.gauges();
            });
        }
    }

    async fn keepalive(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(KEEPALIVE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let subjects: Vec<_> = self
                .lock()
                .fair
                .iter_waiting()
                .filter_map(|(_, job)| job.delivery.ack_subject())
                .collect();
            consumer::in_progress_all(&self.inner.bus, subjects).await;
        }
    }

    async fn execute(&self, job: Job) {
        let Job { delivery, plan } = job;
        let span = tracing::info_span!(
            "delivery",
            run_id = %plan.doc.run_id,
            event_id = %plan.doc.event_id,
            org = %plan.doc.org_id,
            team = %plan.doc.team_id,
            trace_id = plan.traceparent.as_deref().and_then(|t| t.split('-').nth(1)).unwrap_or(""),
        );
        let started = std::time::Instant::now();
        let outcome = self.deliver(&delivery, &plan).instrument(span).await;
        metrics::histogram!("ifox_bridge_delivery_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("ifox_bridge_deliveries_total", "outcome" => outcome.0).increment(1);
        match outcome.1 {
            Settle::Now(disposition) => {
                delivery.settle(&self.inner.bus, disposition).await;
            }
            Settle::Fail(reason, detail) => {
                self.fail_and_dead_letter(&run_ref(&plan), delivery, reason, detail)
                    .await
            }
        }
    }

    async fn deliver(&self, d: &Delivery, plan: &Plan) -> (&'static str, Settle) {
        let inner = &self.inner;
        let run = run_ref(plan);
        let now = now_ms();
        let deadline = plan
            .record
            .deadline_at
            .unwrap_or(now + plan.timeout.as_millis() as i64);
        let Some(left) = remaining(deadline, now) else {
            return self
                .finish(
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
        match inner.lifecycle.advance(&run, change).await {
            Ok(true) => {}
            // Finished meanwhile (the sweeper, an agent's report, another bridge).
            Ok(false) => return ("finished", Settle::Now(Disposition::Ack)),
            Err(e) => {
                tracing::warn!(error = %e, "run record not updated; retrying");
                return (
                    "database",
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
        let (prompt, event) = planner.material(&plan.doc).await;
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
                            if let Err(e) = inner.lifecycle.advance(&run, running).await {
                                tracing::warn!(error = %e, "running not recorded");
                            }
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
                self.record(&run, change, status).await
            }
            Delivered::Accepted => {
                let change = Change {
                    to: "running",
                    detail: Some("accepted by the agent"),
                    ..Change::default()
                };
                self.record(&run, change, "accepted").await
            }
            Delivered::Timeout => {
                self.finish(
                    &run,
                    "timeout",
                    None,
                    Some("no outcome within the run's timeout"),
                )
                .await
            }
            Delivered::Retry { after, why } => {
                if d.delivered() >= inner.settings.max_attempts {
                    let detail = format!("gave up after {} attempts: {why}", d.delivered());
                    return ("exhausted", Settle::Fail("agent_unavailable", detail));
                }
                let delay = after.unwrap_or_else(|| nak_delay(d.delivered()));
                tracing::warn!(attempt = d.delivered(), retry_in = ?delay, why = %why, "agent unavailable; will retry");
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

    async fn record(
        &self,
        run: &RunRef,
        change: Change<'_>,
        label: &'static str,
    ) -> (&'static str, Settle) {
        match self.inner.lifecycle.advance(run, change).await {
            Ok(_) => (label, Settle::Now(Disposition::Ack)),
            // The agent's answer is lost with this NAK; the redelivery carries the same
            // Idempotency-Key, so an agent that keeps answers can give it again.
            Err(e) => {
                tracing::warn!(error = %e, "outcome not recorded; retrying the run");
                ("database", Settle::Now(Disposition::Nak(nak_delay(1))))
            }
        }
    }

    async fn finish(
        &self,
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
        self.record(run, change, status).await
    }

    async fn fail_and_dead_letter(
        &self,
        run: &RunRef,
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
        if let Err(e) = self.inner.lifecycle.advance(run, change).await {
            tracing::warn!(error = %e, "failure not recorded; retrying the run");
            let delay = nak_delay(d.delivered());
            d.settle(&self.inner.bus, Disposition::Nak(delay)).await;
            return;
        }
        d.settle(&self.inner.bus, Disposition::DeadLetter { reason, detail })
            .await;
    }

    async fn sweep_loop(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.inner.settings.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = sweep(&self.inner.lifecycle).await {
                tracing::warn!(error = %e, "run sweep failed; retrying at the next tick");
            }
        }
    }
}

enum Settle {
    Now(Disposition),
    /// Record `failed`, then dead-letter with this reason and detail.
    Fail(&'static str, String),
}

fn run_ref(plan: &Plan) -> RunRef {
    RunRef {
        run_id: plan.doc.run_id.clone(),
        event_id: plan.doc.event_id.clone(),
        org_id: plan.doc.org_id.clone(),
        team_id: plan.doc.team_id.clone(),
        traceparent: plan.traceparent.clone(),
    }
}

/// Runs `exchange` while sending in-progress acks for `d` every [`KEEPALIVE`].
async fn keep_alive<F: std::future::Future<Output = Delivered>>(
    d: &Delivery,
    exchange: F,
) -> Delivered {
    tokio::pin!(exchange);
    let mut tick = tokio::time::interval(KEEPALIVE);
    tick.tick().await;
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

/// Moves runs past their deadline to `timeout`; how many it moved.
pub async fn sweep(lifecycle: &Lifecycle) -> Result<usize, crate::store::StoreError> {
    let overdue = {
        let mut conn = lifecycle.store().pool().acquire().await?;
        run_lifecycle::overdue(&mut conn, now_ms(), 500).await?
    };
    let mut moved = 0;
    for r in overdue {
        let run = RunRef::from(&r);
        let change = Change {
            to: "timeout",
            detail: Some("swept: no outcome before the deadline"),
            ..Change::default()
        };
        if lifecycle.advance(&run, change).await? {
            tracing::info!(run_id = %r.run_id, org = %r.org_id, team = %r.team_id, "run timed out");
            moved += 1;
        }
    }
    Ok(moved)
}
