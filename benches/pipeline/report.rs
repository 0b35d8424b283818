//! The printed figures: the run's setup, per-slice lines (`BENCH_VERBOSE`), the comparison with
//! the raw chain, where the time goes, the bridge's CPU per delivery, peak RSS and the goals.

use crate::Knobs;
use crate::load::{Pace, Slice};
use crate::stages;

const SIDES: [&str; 2] = [
    "ifox (webhook -> agent request)",
    "raw chain (publish -> agent)",
];

fn pace_text(pace: Pace) -> String {
    match pace {
        Pace::Rate(r) => format!("at {r:.0}/s"),
        Pace::Clients(c) => format!("saturation ({c} clients)"),
    }
}

pub fn header(k: &Knobs) {
    let ifox = if k.process {
        "`ifox serve` process"
    } else {
        "this process"
    };
    println!(
        "pipeline: ifox in {ifox} (roles admin, ingest, router, bridge, recorder; SQLite), {} teams, \
         8 KB GitHub issue webhooks, echo agent in process answering at once (investigate)",
        k.teams
    );
    println!(
        "{} interleaved rounds per side of {:.0} s at {:.0}/s and {:.0} s of saturation \
         ({} clients); each slice drained to the agent",
        k.rounds, k.secs, k.rate, k.sat_secs, k.clients
    );
}

/// CPU µs per webhook by part, and the machine's idle share.
fn cpu_text(s: &Slice, separate: bool) -> String {
    let ifox = if separate {
        format!(" + ifox {:.0}", s.cpu_us(1))
    } else {
        String::new()
    };
    format!(
        "this process {:.0}{ifox} + nats-server {:.0} µs; {:.0} % idle",
        s.cpu_us(0),
        s.cpu_us(2),
        s.idle_pct()
    )
}

pub fn slice_line(round: usize, pace: Pace, side: usize, s: &Slice, process: bool) {
    println!(
        "  round {} {} {}: accepted {:.0}/s, agent {:.0}/s, p50 {:.2} ms, p99 {:.2} ms; CPU per webhook: {}",
        round + 1,
        pace_text(pace),
        ["ifox", "raw"][side],
        s.accepted_rate(),
        s.agent_rate(),
        s.pct(0.5),
        s.pct(0.99),
        cpu_text(s, process && side == 0)
    );
}

/// p50 / p99 of µs samples, in ms.
fn spread(samples: &[i64]) -> String {
    if samples.is_empty() {
        return "-".into();
    }
    let mut v: Vec<f64> = samples.iter().map(|&u| u as f64 / 1000.0).collect();
    v.sort_by(f64::total_cmp);
    let p = |q: f64| crate::common::percentile(&v, q);
    format!("{:>7.2} / {:>7.2}", p(0.5), p(0.99))
}

pub fn phase1(
    k: &Knobs,
    paces: &[(Pace, f64); 2],
    sides: &[[Slice; 2]; 2],
    segments: &[[Vec<Vec<i64>>; 2]; 2],
    delivery: (f64, f64),
    rss: f64,
) {
    println!();
    println!(
        "{:<44} {:>11} {:>11} {:>9} {:>9} {:>9}",
        "", "accepted/s", "agent req/s", "p50 ms", "p99 ms", "requests"
    );
    for (p, (pace, _)) in paces.iter().enumerate() {
        println!("{}", pace_text(*pace));
        for (side, s) in sides[p].iter().enumerate() {
            println!(
                "  {:<42} {:>11.0} {:>11.0} {:>9.2} {:>9.2} {:>9}",
                SIDES[side],
                s.accepted_rate(),
                s.agent_rate(),
                s.pct(0.5),
                s.pct(0.99),
                s.received
            );
        }
        let [i, r] = &sides[p];
        println!(
            "  {:<42} {:>11.2} {:>11.2} {:>9.2} {:>9.2}",
            "ratio ifox/raw",
            i.accepted_rate() / r.accepted_rate(),
            i.agent_rate() / r.agent_rate(),
            i.pct(0.5) / r.pct(0.5),
            i.pct(0.99) / r.pct(0.99)
        );
    }
    println!();
    println!("CPU per webhook and machine idle (from first send to last agent request):");
    for (p, (pace, _)) in paces.iter().enumerate() {
        let [i, r] = &sides[p];
        println!(
            "  {:<24} ifox: {}",
            pace_text(*pace),
            cpu_text(i, k.process)
        );
        println!("  {:<24} raw:  {}", "", cpu_text(r, false));
    }
    println!();
    println!("where the time goes, p50 / p99 ms per segment (JetStream store timestamps):");
    for (p, (pace, _)) in paces.iter().enumerate() {
        for (side, (points, last)) in [
            (stages::IFOX.as_slice(), stages::IFOX_LAST),
            (stages::RAW.as_slice(), stages::RAW_LAST),
        ]
        .into_iter()
        .enumerate()
        {
            println!("  {} {}:", pace_text(*pace), ["ifox", "raw chain"][side]);
            let labels = points.iter().map(|s| s.label).chain([last]);
            for (label, samples) in labels.zip(&segments[p][side]) {
                println!("    {label:<52} {}", spread(samples));
            }
        }
    }
    println!();
    let (sum, count) = delivery;
    println!(
        "bridge delivery (`delivering` -> outcome recorded, incl. the agent's answer), mean: {:.2} ms over {count:.0} deliveries",
        1000.0 * sum / count.max(1.0)
    );
    let whose = if k.process {
        "its process"
    } else {
        "this whole process: clients, echo agent and raw chain included"
    };
    println!("peak RSS of ifox (all roles): {rss:.0} MiB ({whose})");
}

pub fn phase2(
    k: &Knobs,
    sides: &[[Slice; 2]; 2],
    bridged: &[Slice],
    floors: &[Slice],
    idle_cpu: f64,
    // Peak RSS of the bridge, of the raw stage 3; the recorder's CPU per delivery (µs) and RSS.
    (rss, floor_rss, recorder_us, recorder_rss): (f64, f64, f64, f64),
    failures: u64,
) {
    println!();
    println!(
        "bridge as its own process (`ifox serve --roles bridge`; admin, ingest, router beside it), and the raw chain's stage 3 as its own process (the floor):"
    );
    println!(
        "  idle: {:.0} µs CPU per second (timers, heartbeats)",
        idle_cpu * 1e6
    );
    for (s, f) in bridged.iter().zip(floors) {
        println!(
            "  bridge    {:>5.0} deliveries/s: {:>7.1} µs CPU per delivery ({} deliveries); nats-server {:.0} µs; webhook -> agent p50 {:.2} ms, p99 {:.2} ms",
            s.agent_rate(),
            s.cpu_us(1),
            s.received,
            s.cpu_us(2),
            s.pct(0.5),
            s.pct(0.99)
        );
        println!(
            "  raw stage {:>5.0} deliveries/s: {:>7.1} µs CPU per delivery ({} deliveries); nats-server {:.0} µs",
            f.agent_rate(),
            f.cpu_us(1),
            f.received,
            f.cpu_us(2),
        );
        println!(
            "  bridge overhead: {:.1} µs CPU per delivery (bridge / raw stage {:.2})",
            s.cpu_us(1) - f.cpu_us(1),
            s.cpu_us(1) / f.cpu_us(1).max(1e-9)
        );
    }
    println!(
        "  run recorder (`ifox serve --roles recorder`, the runs table projected from RUNS): {recorder_us:.1} µs CPU per delivery over all of them (not part of the bridge's figure)"
    );
    println!(
        "  peak RSS: bridge process {rss:.0} MiB, run recorder {recorder_rss:.0} MiB, raw stage 3 {floor_rss:.0} MiB"
    );
    if failures > 0 {
        println!("raw chain: {failures} messages failed and were retried");
    }
    let verdict = |ok: bool| if ok { "PASS" } else { "MISSED" };
    let p50 = sides[0][0].pct(0.5);
    println!();
    println!(
        "goal webhook -> agent request p50 < 5 ms at {:.0}/s: {p50:.2} ms  {}",
        k.rate,
        verdict(p50 < 5.0)
    );
    for (i, label) in [format!("at {:.0}/s", k.rate), "at saturation".to_owned()]
        .iter()
        .enumerate()
    {
        let (Some(s), Some(f)) = (bridged.get(i), floors.get(i)) else {
            continue;
        };
        let over = s.cpu_us(1) - f.cpu_us(1);
        println!(
            "goal bridge overhead < 50 µs CPU per delivery ({label}): {over:.1} µs ({:.1} bridge - {:.1} raw stage)  {}",
            s.cpu_us(1),
            f.cpu_us(1),
            verdict(over < 50.0)
        );
    }
}
