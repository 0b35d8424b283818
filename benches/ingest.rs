//! `just bench-ingest`: the ingest figure of issue 3.
//!
//! In one run, on one nats-server (file store, its own temp folder), in `BENCH_ROUNDS` (default 4)
//! interleaved rounds sharing `BENCH_SECS` (default 12) per side:
//! 1. **ingest**: ifox (role `ingest` only) receives signed 8 KB GitHub-style webhooks over HTTP/1.1
//!    keep-alive from 64 concurrent clients; each answer comes after the PubAck. The client is a
//!    minimal HTTP/1.1 writer/reader (as `wrk` is; the request is built once per connection), so the
//!    load generator takes as little as possible of the CPU ifox needs. ifox runs inside this process
//!    (with the binary's allocator, sharing the runtime with the clients), or with
//!    `BENCH_IFOX=process` as `ifox serve --roles ingest`, its own process;
//! 2. **raw**: 64 concurrent async-nats publish-with-PubAck of the same message (subject, CloudEvents
//!    headers with a unique `Nats-Msg-Id`, payload), as a direct publisher following the contract
//!    sends it.
//!
//! EVENTS is purged after each slice (and the server given time to delete the blocks), so every slice
//! starts from an empty, quiet stream; rounds alternate which side goes first. Prints throughput
//! of both, their ratio (target ≥ 0.6; pooled, and per round) and p50/p99 latency (target p99 < 10 ms
//! for ingest); then, to explain a result, the CPU time per event of each part (this process, ifox
//! when it is a process of its own, nats-server), the machine's idle share (a side that leaves the
//! CPU idle is bound by waiting, not by CPU), and ifox's own mean wait for the PubAck (from its
//! `/metrics`). `BENCH_VERBOSE=1` prints every round. Client, ifox and nats-server share the machine,
//! so only ratios of one run mean anything, and load from other processes shows up as rounds that
//! disagree.

mod common;

use async_nats::jetstream;
use ifox::app::{App, Role};
use ifox::domain::routing::IdentifierKind;
use ifox::ingest::event::{Signal, envelope};
use ifox::settings::Settings;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

// The allocator of the `ifox` binary (src/main.rs), since the app runs inside this process.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 64;
const BODY_BYTES: usize = 8 * 1024;
const SECRET: &str = "bench-github-secret";

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A GitHub `issues` payload padded to 8 KB.
fn payload() -> Vec<u8> {
    let head = r#"{"action":"opened","repository":{"full_name":"acme/checkout","owner":{"login":"acme"}},"issue":{"number":7,"title":"checkout is down","body":""#;
    let tail = r#""}}"#;
    let pad = BODY_BYTES - head.len() - tail.len();
    format!("{head}{}{tail}", "x".repeat(pad)).into_bytes()
}

/// Latencies in microseconds and the number of operations done in `secs`.
#[derive(Default)]
struct Run {
    ops: u64,
    micros: Vec<u64>,
    secs: f64,
    /// CPU seconds used meanwhile by this process (the clients), by ifox and by nats-server.
    cpu: [f64; 3],
    /// Machine idle and total clock ticks meanwhile.
    ticks: (u64, u64),
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    /// Percentile `p` in milliseconds; `micros` must be sorted.
    fn pct(&self, p: f64) -> f64 {
        let i = ((self.micros.len() as f64 - 1.0) * p).round() as usize;
        self.micros.get(i).copied().unwrap_or(0) as f64 / 1000.0
    }
    /// CPU microseconds per operation: this process (the clients), ifox, nats-server.
    fn cpu_per_op(&self) -> [f64; 3] {
        self.cpu.map(|s| s * 1e6 / self.ops.max(1) as f64)
    }
    /// CPU µs per operation by part, and the machine's idle share. `separate`: ifox ran as its own
    /// process (else its CPU is in the clients' process, and for raw there is no ifox).
    fn cpu_text(&self, separate: bool) -> String {
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
    fn add(&mut self, other: Run) {
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
async fn drive<F, Fut>(
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

/// A minimal HTTP/1.1 keep-alive client connection (what `wrk` does): the load generator shares the
/// machine with the app and nats-server, so it must cost as little as possible. The request is built
/// once per connection; each request only rewrites the digits of its delivery id.
struct Conn {
    stream: tokio::net::TcpStream,
    request: Vec<u8>,
    /// Where the 20 digits of the delivery id sit in `request`.
    id_at: usize,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str, signature: &str, body: &[u8]) -> AnyResult<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let head = format!(
            "POST /webhooks/github HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             x-github-event: issues\r\nx-hub-signature-256: {signature}\r\n\
             content-length: {}\r\nx-github-delivery: bench-",
            body.len()
        );
        let id_at = head.len();
        let mut request = head.into_bytes();
        request.extend_from_slice(b"00000000000000000000\r\n\r\n");
        request.extend_from_slice(body);
        Ok(Conn {
            stream,
            request,
            id_at,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends request `n` (one write) and reads the whole answer; returns its status.
    async fn exchange(&mut self, mut n: u64) -> AnyResult<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for digit in self.request[self.id_at..self.id_at + 20].iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.stream.write_all(&self.request).await?;
        self.buf.clear();
        let mut chunk = [0u8; 2048];
        loop {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = &self.buf[..end];
            let status = std::str::from_utf8(head.get(9..12).ok_or("bad status line")?)?.parse()?;
            let length: usize = head
                .split(|&b| b == b'\n')
                .find_map(|line| {
                    let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
                    name.eq_ignore_ascii_case(b"content-length")
                        .then(|| std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok())?
                })
                .ok_or("no content-length")?;
            while self.buf.len() < end + 4 + length {
                let n = self.stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
    }
}

/// Where ifox runs. By default inside this process (role `ingest`, the binary's allocator, sharing
/// the runtime with the clients); `BENCH_IFOX=process` runs `ifox serve --roles ingest`, the binary of
/// this profile, as its own process, which splits the CPU per event into client, ifox and nats-server.
enum Ifox {
    InProcess {
        port: u16,
        shutdown: tokio_util::sync::CancellationToken,
        served: tokio::task::JoinHandle<Result<(), ifox::app::AppError>>,
        _db: tempfile::TempDir,
    },
    Process {
        child: KillOnDrop,
        port: u16,
        _db: tempfile::TempDir,
    },
}

impl Ifox {
    async fn start(nats_url: &str) -> AnyResult<Ifox> {
        let db = tempfile::tempdir()?;
        let database = format!("sqlite://{}?mode=rwc", db.path().join("ifox.db").display());
        if std::env::var("BENCH_IFOX").as_deref() == Ok("process") {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let child = std::process::Command::new(env!("CARGO_BIN_EXE_ifox"))
                .args(["serve", "--roles", "ingest"])
                .env("IFOX__DATABASE__URL", database)
                .env("IFOX__HTTP__LISTEN", format!("127.0.0.1:{port}"))
                .env("IFOX__NATS__URL", nats_url)
                .env("IFOX__INGEST__SECRETS__GITHUB", SECRET)
                .env("IFOX_CONFIG", "/nonexistent/ifox.toml")
                .stdout(std::process::Stdio::null())
                .spawn()?;
            return Ok(Ifox::Process {
                child: KillOnDrop(child),
                port,
                _db: db,
            });
        }
        let env = [
            ("IFOX__DATABASE__URL", database),
            ("IFOX__HTTP__LISTEN", "127.0.0.1:0".to_owned()),
            ("IFOX__NATS__URL", nats_url.to_owned()),
            ("IFOX__INGEST__SECRETS__GITHUB", SECRET.to_owned()),
        ];
        let env = env.into_iter().map(|(k, v)| (k.to_owned(), v));
        let settings =
            Settings::load_from(Some(std::path::Path::new("/nonexistent/ifox.toml")), env)?;
        let app = App::build(settings, [Role::Ingest].into_iter().collect()).await?;
        let port = app.port();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let served = tokio::spawn(app.run(shutdown.clone()));
        Ok(Ifox::InProcess {
            port,
            shutdown,
            served,
            _db: db,
        })
    }

    fn port(&self) -> u16 {
        match self {
            Ifox::InProcess { port, .. } | Ifox::Process { port, .. } => *port,
        }
    }

    /// CPU seconds of its own process; `None` inside this one (counted with the clients).
    fn cpu_seconds(&self) -> Option<f64> {
        match self {
            Ifox::InProcess { .. } => None,
            Ifox::Process { child, .. } => Some(common::cpu_seconds_of(child.0.id())),
        }
    }

    /// Graceful stop: cancel, or SIGTERM to the process; either must end cleanly.
    async fn stop(self) -> AnyResult<()> {
        match self {
            Ifox::InProcess {
                shutdown, served, ..
            } => {
                shutdown.cancel();
                served.await??;
            }
            Ifox::Process { mut child, .. } => {
                let pid = child.0.id().to_string();
                std::process::Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()?;
                let status = child.0.wait()?;
                if !status.success() {
                    return Err(format!("ifox exited with {status}").into());
                }
            }
        }
        Ok(())
    }
}

/// The ifox process, killed if the bench ends early.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Empties EVENTS, then lets the server finish deleting the purged blocks (and the kernel freeing
/// them) before the next slice, so neither side pays for the other's cleanup.
async fn purge(js: &jetstream::Context) -> AnyResult<()> {
    js.get_stream("EVENTS").await?.purge().await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Ok(())
}

#[tokio::main]
async fn main() -> AnyResult<()> {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12.0);
    let nats = common::start_nats().await;
    let app = Ifox::start(&nats.url).await?;
    let port = app.port();
    let separate = app.cpu_seconds().is_some();

    let js = jetstream::new(async_nats::connect(&nats.url).await?);
    let ready = Instant::now();
    while js.get_stream("EVENTS").await.is_err() {
        if ready.elapsed() > Duration::from_secs(10) {
            return Err("the app did not create EVENTS".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let body = bytes::Bytes::from(payload());
    let signature = ifox::ingest::verify::sign_github(SECRET, &body);
    let addr = format!("127.0.0.1:{port}");
    let webhook = {
        // Connections are taken and put back, so each of the 64 tasks keeps one.
        let pool = Arc::new(std::sync::Mutex::new(Vec::<Conn>::new()));
        let (addr, body, signature) = (addr.clone(), body.clone(), signature.clone());
        move |n: u64| {
            let (pool, addr, body, signature) =
                (pool.clone(), addr.clone(), body.clone(), signature.clone());
            async move {
                let conn = pool.lock().map_err(|_| "pool poisoned")?.pop();
                let mut conn = match conn {
                    Some(c) => c,
                    None => Conn::open(&addr, &signature, &body).await?,
                };
                let status = conn.exchange(n).await?;
                if status != 200 {
                    return Err(format!("ingest answered {status}").into());
                }
                pool.lock().map_err(|_| "pool poisoned")?.push(conn);
                AnyResult::Ok(())
            }
        }
    };
    let raw = {
        let (js, body) = (js.clone(), body.clone());
        move |n: u64| {
            let (js, body) = (js.clone(), body.clone());
            async move {
                // The very message ingest would publish (subject, CloudEvents headers, payload), as a
                // direct publisher following the contract sends it.
                let signal = Signal {
                    event_type: "issues".into(),
                    id: format!("raw-{n}"),
                    content_type: "application/json",
                    forward: vec![("x-github-event", "issues".into())],
                    routes: vec![(IdentifierKind::GithubRepos, "acme/checkout".into())],
                };
                let e = envelope("github", None, &signal, (None, None), SystemTime::now());
                js.publish_with_headers(e.subject, e.headers, body)
                    .await?
                    .await?;
                AnyResult::Ok(())
            }
        }
    };

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4usize)
        .max(1);
    let slice = secs / rounds as f64;
    println!(
        "ingest bench: {CONCURRENCY} concurrent, {BODY_BYTES}-byte body, {rounds} rounds of \
         {slice:.1} s ingest then {slice:.1} s raw"
    );
    let (webhook, raw, counter) = (
        Arc::new(webhook),
        Arc::new(raw),
        Arc::new(AtomicU64::new(0)),
    );
    drive(2.0, &webhook, &counter, (&nats, &app)).await?; // warm-up: connections, buffers, caches
    drive(1.0, &raw, &counter, (&nats, &app)).await?;
    purge(&js).await?;
    // Interleaved rounds: a burst of load from elsewhere on the machine hits both sides alike.
    let (mut ingest, mut direct, mut ratios) = (Run::default(), Run::default(), Vec::new());
    for round in 0..rounds {
        // Alternate which side goes first, so an order effect cancels out.
        let (i, r) = if round % 2 == 0 {
            let i = drive(slice, &webhook, &counter, (&nats, &app)).await?;
            purge(&js).await?;
            (i, drive(slice, &raw, &counter, (&nats, &app)).await?)
        } else {
            let r = drive(slice, &raw, &counter, (&nats, &app)).await?;
            purge(&js).await?;
            (drive(slice, &webhook, &counter, (&nats, &app)).await?, r)
        };
        purge(&js).await?;
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            println!(
                "  round {round}: ingest {:.0}/s ({}), raw {:.0}/s ({})",
                i.rate(),
                i.cpu_text(separate),
                r.rate(),
                r.cpu_text(false)
            );
        }
        ratios.push(i.rate() / r.rate());
        ingest.add(i);
        direct.add(r);
    }
    ingest.micros.sort_unstable();
    direct.micros.sort_unstable();
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];

    let ratio = ingest.rate() / direct.rate();
    println!(
        "ingest (HTTP -> verify -> PubAck): {:>9.0} req/s   p50 {:.2} ms   p99 {:.2} ms   ({} requests)",
        ingest.rate(),
        ingest.pct(0.50),
        ingest.pct(0.99),
        ingest.ops
    );
    println!(
        "raw JetStream publish + PubAck:    {:>9.0} msg/s   p50 {:.2} ms   p99 {:.2} ms   ({} messages)",
        direct.rate(),
        direct.pct(0.50),
        direct.pct(0.99),
        direct.ops
    );
    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "CPU per event and machine idle: ingest {}; raw {}",
        ingest.cpu_text(separate),
        direct.cpu_text(false)
    );
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!(
        "ratio ingest/raw: {ratio:.2} (target >= 0.60: {}); per round, in order: {}; median {median:.2}",
        verdict(ratio >= 0.6),
        each.join(", ")
    );
    println!(
        "ingest p99: {:.2} ms (target < 10 ms: {})",
        ingest.pct(0.99),
        verdict(ingest.pct(0.99) < 10.0)
    );

    // ifox's own view: how much of a request's time was the wait for the PubAck.
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let (sum, count) = (
        value("ifox_ingest_publish_seconds_sum"),
        value("ifox_ingest_publish_seconds_count"),
    );
    println!(
        "ifox's publish wait (send to PubAck), mean over the whole run incl. warm-up: {:.2} ms",
        1000.0 * sum / count.max(1.0)
    );
    app.stop().await
}
