//! One measured slice: drive an operation from `CONCURRENCY` tasks, and what a slice records
//! (operations, latencies, CPU per part, machine idle).

use crate::{AnyResult, CONCURRENCY, common, target::Ifox};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latencies in microseconds and the number of operations done in `secs`.
#[derive(Default)]
pub struct Run {
    pub ops: u64,
    pub micros: Vec<u64>,
    secs: f64,
    /// CPU seconds used meanwhile by this process (the clients), by ifox and by nats-server.
    cpu: [f64; 3],
    /// Machine idle and total clock ticks meanwhile.
    ticks: (u64, u64),
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    /// Percentile `p` in milliseconds; `micros` must be sorted.
    pub fn pct(&self, p: f64) -> f64 {
        let i = ((self.micros.len() as f64 - 1.0) * p).round() as usize;
        self.micros.get(i).copied().unwrap_or(0) as f64 / 1000.0
    }
    /// CPU microseconds per operation: this process (the clients), ifox, nats-server.
    fn cpu_per_op(&self) -> [f64; 3] {
        self.cpu.map(|s| s * 1e6 / self.ops.max(1) as f64)
    }
    /// CPU µs per operation by part, and the machine's idle share. `separate`: ifox ran as its own
    /// process (else its CPU is in the clients' process, and for raw there is no ifox).
    pub fn cpu_text(&self, separate: bool) -> String {
        let c = self.cpu_per_op();
        let parts = if separate {
            format!("client {:.0} + ifox {:.0}", c[0], c[1])
        } else {
            format!("this process {:.0}", c[0])
        };
        format!(
            "CPU µs: {parts} + nats-server {:.0}; {:.0} % idle",
            c[2],
            self.idle_pct()
        )
    }

    /// The share of the machine's CPU time that was idle, in percent.
    fn idle_pct(&self) -> f64 {
        100.0 * self.ticks.0 as f64 / self.ticks.1.max(1) as f64
    }
    pub fn add(&mut self, other: Run) {
        self.ops += other.ops;
        self.secs += other.secs;
        for (sum, part) in self.cpu.iter_mut().zip(other.cpu) {
            *sum += part;
        }
        self.ticks.0 += other.ticks.0;
        self.ticks.1 += other.ticks.1;
        self.micros.extend(other.micros);
    }
}

/// Runs `op(n)` from `CONCURRENCY` tasks until `secs` pass; `n` comes from `counter` (unique).
pub async fn drive<F, Fut>(
    secs: f64,
    op: &Arc<F>,
    counter: &Arc<AtomicU64>,
    (nats, ifox): (&common::Nats, &Ifox),
) -> AnyResult<Run>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = AnyResult<()>> + Send,
{
    let cpu_now = || {
        [
            common::own_cpu_seconds(),
            ifox.cpu_seconds().unwrap_or(0.0),
            nats.cpu_seconds(),
        ]
    };
    let cpu = cpu_now();
    let ticks = common::machine_ticks();
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (op, counter) = (op.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut micros = Vec::new();
            while Instant::now() < end {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                op(n).await?;
                micros.push(t.elapsed().as_micros() as u64);
            }
            AnyResult::Ok(micros)
        }));
    }
    let mut micros = Vec::new();
    for t in tasks {
        micros.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Run {
        ops: micros.len() as u64,
        micros,
        secs,
        cpu: {
            let now = cpu_now();
            [now[0] - cpu[0], now[1] - cpu[1], now[2] - cpu[2]]
        },
        ticks: {
            let now = common::machine_ticks();
            (now.0 - ticks.0, now.1 - ticks.1)
        },
    })
}
