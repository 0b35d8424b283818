//! One measured slice: webhooks (or the raw chain's events) sent at a fixed rate, or by a bounded
//! number of clients as fast as they can, then drained until every one has reached the agent; and
//! what slices record (sends, webhook-to-agent latencies, rates, CPU per part, machine idle).

use crate::agent::Agent;
use crate::{AnyResult, common};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a slice may take to drain before its missing requests are reported as lost.
const DRAIN: Duration = Duration::from_secs(120);

/// How webhooks are sent.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Open loop: one send every 1/rate s, whatever the answers take.
    Rate(f64),
    /// Closed loop: this many clients, each sending the next as soon as the last was accepted.
    Clients(usize),
}

/// What one or more slices of one side recorded.
#[derive(Default)]
pub struct Slice {
    /// Webhooks accepted (answered 200 / PubAck).
    pub sent: u64,
    pub send_secs: f64,
    /// Requests that reached the agent, and from the first send to the last of them.
    pub received: u64,
    pub span_secs: f64,
    /// Webhook sent → its agent request, µs.
    pub micros: Vec<u64>,
    /// CPU seconds meanwhile: this process, ifox's process when it has one, nats-server.
    pub cpu: [f64; 3],
    /// Machine idle and total clock ticks meanwhile.
    pub ticks: (u64, u64),
    /// When each webhook was sent, and when its request reached the agent (for the breakdown).
    pub sends: HashMap<u64, Instant>,
    pub arrivals: HashMap<u64, Instant>,
}

impl Slice {
    pub fn accepted_rate(&self) -> f64 {
        self.sent as f64 / self.send_secs.max(1e-9)
    }
    pub fn agent_rate(&self) -> f64 {
        self.received as f64 / self.span_secs.max(1e-9)
    }
    /// Percentile `p` of the latency, ms.
    pub fn pct(&self, p: f64) -> f64 {
        let mut samples: Vec<f64> = self.micros.iter().map(|&u| u as f64 / 1000.0).collect();
        if samples.is_empty() {
            return f64::NAN;
        }
        samples.sort_by(f64::total_cmp);
        common::percentile(&samples, p)
    }
    /// CPU µs per webhook of part `i` (0 this process, 1 ifox's process, 2 nats-server).
    pub fn cpu_us(&self, i: usize) -> f64 {
        self.cpu[i] * 1e6 / self.received.max(1) as f64
    }
    pub fn idle_pct(&self) -> f64 {
        100.0 * self.ticks.0 as f64 / self.ticks.1.max(1) as f64
    }
    /// Adds another slice of the same side (rates stay weighted by time).
    pub fn add(&mut self, other: Slice) {
        self.sent += other.sent;
        self.send_secs += other.send_secs;
        self.received += other.received;
        self.span_secs += other.span_secs;
        self.micros.extend(other.micros);
        for (sum, part) in self.cpu.iter_mut().zip(other.cpu) {
            *sum += part;
        }
        self.ticks.0 += other.ticks.0;
        self.ticks.1 += other.ticks.1;
    }
}

/// Sends `op(n)` (`n` unique, from `counter`) at `pace` for `secs`, waits until every accepted
/// webhook's request has reached `agent`, and measures the whole (CPU from the first send to the
/// last request).
pub async fn slice<F, Fut>(
    pace: Pace,
    secs: f64,
    op: &Arc<F>,
    counter: &Arc<AtomicU64>,
    agent: &Agent,
    cpu: &dyn Fn() -> [f64; 3],
) -> AnyResult<Slice>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AnyResult<()>> + Send,
{
    let sends = Arc::new(Mutex::new(HashMap::new()));
    let send = {
        let (op, counter, sends) = (op.clone(), counter.clone(), sends.clone());
        move || {
            let (op, counter, sends) = (op.clone(), counter.clone(), sends.clone());
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let at = Instant::now();
                op(n).await?;
                sends.lock().map_err(|_| "poisoned")?.insert(n, at);
                AnyResult::Ok(())
            }
        }
    };
    let before = agent.arrived();
    let (cpu0, ticks0) = (cpu(), common::machine_ticks());
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    match pace {
        Pace::Rate(rate) => {
            for k in 0.. {
                let at = started + Duration::from_secs_f64(k as f64 / rate);
                if at >= end {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                tasks.spawn(send());
                while let Some(done) = tasks.try_join_next() {
                    done??;
                }
            }
        }
        Pace::Clients(clients) => {
            for _ in 0..clients {
                let send = send.clone();
                tasks.spawn(async move {
                    while Instant::now() < end {
                        send().await?;
                    }
                    AnyResult::Ok(())
                });
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let send_secs = started.elapsed().as_secs_f64();
    let sends = std::mem::take(&mut *sends.lock().map_err(|_| "poisoned")?);
    let sent = sends.len() as u64;
    let drained = Instant::now() + DRAIN;
    while agent.arrived() - before < sent && Instant::now() < drained {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (cpu1, ticks1) = (cpu(), common::machine_ticks());
    let arrivals: HashMap<u64, Instant> = agent
        .arrivals()
        .into_iter()
        .filter(|(n, _)| sends.contains_key(n))
        .collect();
    let micros = arrivals
        .iter()
        .map(|(n, at)| at.saturating_duration_since(sends[n]).as_micros() as u64)
        .collect();
    let last = arrivals.values().max().copied().unwrap_or(started);
    Ok(Slice {
        sent,
        send_secs,
        received: arrivals.len() as u64,
        span_secs: last.saturating_duration_since(started).as_secs_f64(),
        micros,
        cpu: [0, 1, 2].map(|i| cpu1[i] - cpu0[i]),
        ticks: (ticks1.0 - ticks0.0, ticks1.1 - ticks0.1),
        sends,
        arrivals,
    })
}
