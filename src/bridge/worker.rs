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

mod attempt;

use super::allow::AllowList;
use super::deliver::Agents;
use super::fair::Fair;
use super::lifecycle::{Lifecycle, RunRef};
use super::plan::{Decision, Plan, Planner};
use crate::bus::consumer::{self, BRIDGE, LoopOptions};
use crate::bus::{Bus, Delivery, Disposition, Health};
use crate::settings::bridge::BridgeSettings;
use crate::tenancy::Tenancy;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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

/// A delivery in flight: dropping it gives the slot back ([`Bridge::release`]).
struct Slot {
    bridge: Bridge,
    run_id: String,
    team: String,
    /// The delivery ran to its end: the next one may start. A delivery that did not (a panic, or
    /// a task dropped by a runtime that shuts down) starts none: a spawn there would be dropped at
    /// once too, and give its slot back by starting the next, and so on down the stack.
    ended: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.bridge.release(&self.run_id, &self.team, self.ended);
    }
}

struct Job {
    delivery: Delivery,
    plan: Box<Plan>,
}

#[derive(Default)]
struct Sched {
    fair: Fair<String, Job>,
    limits: HashMap<String, usize>,
    /// Run ids waiting or in flight here: a second copy of one of their messages (redelivered
    /// after `ack_wait` while the first waited in the pull buffer or the recorder) is released,
    /// not delivered a second time.
    held: HashSet<String>,
}

struct Inner {
    tenancy: Tenancy,
    bus: Bus,
    /// Transitions published on RUNS, signed, for the recorder.
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
        let allow = AllowList::new(&b.allowed_patterns(
            &settings.kube.namespace,
            settings.provision.namespace_per_team,
        ))?;
        let agents = Agents::new(
            b.connect_timeout,
            b.service_token.as_ref().map(|t| t.expose().to_owned()),
            b.result_limit,
        );
        let token_key = b.token_key(settings.admin.token.expose());
        let store = tenancy.store().clone();
        let lifecycle =
            Lifecycle::new(store, bus.clone(), super::lifecycle::record_key(&token_key));
        Ok(Bridge {
            inner: Arc::new(Inner {
                token_key,
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
            let jobs = s.fair.drain_waiting();
            for job in &jobs {
                s.held.remove(&job.plan.doc.run_id);
            }
            jobs
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
        // A run new to the bridge needs no record: the common case, read from no database (the
        // bridge writes none either; the recorder does, from RUNS). Redelivered runs, replays and
        // runs published long after their event read theirs, one read per chunk
        // (`Checked::needs_record`).
        let mut checked = Vec::with_capacity(deliveries.len());
        let mut again = Vec::new();
        for d in deliveries {
            let c = Planner::check(&d);
            if let Ok(c) = &c
                && c.needs_record(&d)
            {
                again.push(c.doc.run_id.clone());
            }
            checked.push((d, c));
        }
        let found = if again.is_empty() {
            Ok(std::collections::HashMap::new())
        } else {
            // A slow database must not let these messages' `ack_wait` run out meanwhile.
            let subjects: Vec<_> = checked
                .iter()
                .filter_map(|(d, _)| d.ack_subject())
                .collect();
            let read = async {
                let mut conn = inner.tenancy.store().pool().acquire().await?;
                crate::store::runs::states(&mut conn, &again).await
            };
            tokio::pin!(read);
            let mut tick = attempt::keepalive_ticks();
            loop {
                tokio::select! {
                    r = &mut read => break r,
                    _ = tick.tick() => consumer::in_progress_all(&inner.bus, subjects.clone()).await,
                }
            }
        };
        let earlier = match found {
            Ok(found) => found,
            Err(e) => {
                // A redelivered run is not delivered again before its record says it may be.
                tracing::warn!(error = %e, runs = checked.len(), "run records not readable; retrying");
                for (d, _) in checked {
                    let delay = crate::bus::nak_delay(d.delivered());
                    d.settle(&inner.bus, Disposition::Nak(delay)).await;
                }
                return;
            }
        };
        let planner = Planner {
            tenancy: &inner.tenancy,
            bus: &inner.bus,
            settings: &inner.settings,
            allow: &inner.allow,
        };
        let planned: Vec<(Delivery, Decision)> = checked
            .into_iter()
            .map(|(d, c)| {
                let decision = match c {
                    Ok(c) => {
                        // Cloned, not taken: two messages of one run in a chunk both see it.
                        let found = earlier.get(&c.doc.run_id).cloned();
                        planner.plan(&d, c, found)
                    }
                    Err(decision) => decision,
                };
                (d, decision)
            })
            .collect();
        for (d, decision) in planned {
            match decision {
                Decision::Settle(disposition) => {
                    d.settle(&inner.bus, disposition).await;
                }
                Decision::Fail {
                    record,
                    row,
                    reason,
                    detail,
                } => {
                    let mut run = RunRef::from(&*record);
                    run.delivery = d.delivered();
                    self.fail_and_dead_letter(&run, Some(&row), d, reason, detail)
                        .await;
                }
                Decision::Queue(plan) => {
                    let team = format!("{}/{}", plan.doc.org_id, plan.doc.team_id);
                    let second = {
                        let mut s = self.lock();
                        if s.held.insert(plan.doc.run_id.clone()) {
                            s.limits.insert(team.clone(), plan.max_concurrent);
                            s.fair.push(team, Job { delivery: d, plan });
                            None
                        } else {
                            Some(d)
                        }
                    };
                    match second {
                        Some(d) => d.release_duplicate().await,
                        None => self.pump(),
                    }
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
                let Sched { fair, limits, .. } = &mut *s;
                let default = self.inner.settings.max_concurrent_agents;
                fair.next(self.inner.settings.concurrency, |team| {
                    limits.get(team).copied().unwrap_or(default)
                })
            };
            let Some((team, job)) = next else {
                return;
            };
            let slot = Slot {
                bridge: self.clone(),
                run_id: job.plan.doc.run_id.clone(),
                team,
                ended: false,
            };
            tokio::spawn(async move {
                // The slot is given back when the delivery ends, however it ends (a panic or the
                // runtime dropping the task included: the run is not left "held" forever).
                let mut slot = slot;
                slot.bridge.execute(job).await;
                slot.ended = true;
            });
        }
    }

    /// Gives a delivery's slot back: the run is no longer held, its team has one fewer in flight.
    fn release(&self, run_id: &str, team: &str, start_next: bool) {
        {
            let mut s = self.lock();
            s.held.remove(run_id);
            let _ = s.fair.done(&team.to_owned());
            if s.fair.team_in_flight(&team.to_owned()) == 0 {
                s.limits.remove(team);
            }
        }
        self.inner.freed.notify_waiters();
        if start_next {
            self.pump();
        }
        self.gauges();
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

    async fn sweep_loop(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.inner.settings.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let held = |run_id: &str| self.lock().held.contains(run_id);
            if let Err(e) = super::lifecycle::sweep(&self.inner.lifecycle, held).await {
                tracing::warn!(error = %e, "run sweep failed; retrying at the next tick");
            }
        }
    }
}
