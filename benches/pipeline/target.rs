//! Where ifox runs during the bench: inside this process (`App::build` with the chosen roles), or
//! as `ifox serve --roles …`, the binary of this profile, as a process of its own; and the tenancy
//! the webhooks land on (org `acme`, `BENCH_TEAMS` teams each claiming one GitHub repo), written
//! through the admin API as an operator would.

use crate::{AnyResult, common};
use ifox::app::{App, Role};
use ifox::settings::Settings;
use serde_json::json;
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "bench-admin-token";
pub const SECRET: &str = "bench-github-secret";

/// The settings every ifox of the bench shares (one database, one nats-server, one agent).
#[derive(Clone)]
pub struct Shared {
    pub database: String,
    pub nats: String,
    pub agent: String,
}

impl Shared {
    fn env(&self, listen: &str) -> Vec<(String, String)> {
        [
            ("IFOX__DATABASE__URL", self.database.as_str()),
            ("IFOX__HTTP__LISTEN", listen),
            ("IFOX__NATS__URL", &self.nats),
            ("IFOX__ADMIN__TOKEN", ADMIN_TOKEN),
            ("IFOX__INGEST__SECRETS__GITHUB", SECRET),
            ("IFOX__BRIDGE__SHARED_URL", &self.agent),
            ("IFOX__BRIDGE__ALLOWED_URL_PATTERNS", "http://127.0.0.1:*"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

enum Kind {
    InProcess {
        shutdown: tokio_util::sync::CancellationToken,
        served: tokio::task::JoinHandle<Result<(), ifox::app::AppError>>,
    },
    /// Killed if the bench ends early (`kill_on_drop`).
    Process(tokio::process::Child),
}

/// One running ifox.
pub struct Ifox {
    kind: Kind,
    pub port: u16,
}

impl Ifox {
    /// Starts `roles`; as a process of its own when `process`. Returns once `/readyz` answers 200.
    pub async fn start(shared: &Shared, roles: &[Role], process: bool) -> AnyResult<Ifox> {
        let ifox = if process {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ifox"))
                .args(["serve", "--roles", &names.join(",")])
                .envs(shared.env(&format!("127.0.0.1:{port}")))
                .env("IFOX_CONFIG", "/nonexistent/ifox.toml")
                .env("RUST_LOG", "error")
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            Ifox {
                kind: Kind::Process(child),
                port,
            }
        } else {
            let config = Some(std::path::Path::new("/nonexistent/ifox.toml"));
            let settings = Settings::load_from(config, shared.env("127.0.0.1:0"))?;
            let app = App::build(settings, roles.iter().copied().collect()).await?;
            let port = app.port();
            let shutdown = tokio_util::sync::CancellationToken::new();
            let served = tokio::spawn(app.run(shutdown.clone()));
            Ifox {
                kind: Kind::InProcess { shutdown, served },
                port,
            }
        };
        let ready = format!("http://127.0.0.1:{}/readyz", ifox.port);
        let since = Instant::now();
        loop {
            if reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(ifox);
            }
            if since.elapsed() > Duration::from_secs(20) {
                return Err(format!("ifox ({roles:?}) not ready after 20 s").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn pid(&self) -> Option<u32> {
        match &self.kind {
            Kind::Process(child) => child.id(),
            Kind::InProcess { .. } => None,
        }
    }

    /// CPU seconds of its own process; `None` inside this one (counted with the clients).
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.pid().map(common::cpu_seconds_of_tree)
    }

    /// Peak resident memory (VmHWM) of its process, MiB; inside this one, this whole process's
    /// (clients, echo agent and raw chain included: an upper bound).
    pub fn peak_rss_mib(&self) -> f64 {
        match self.pid() {
            Some(pid) => common::peak_rss_mib_of(&pid.to_string()),
            None => common::peak_rss_mib(),
        }
    }

    /// The sum and count of a Prometheus histogram on its `/metrics` (over every label set).
    pub async fn histogram(&self, name: &str) -> AnyResult<(f64, f64)> {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let metrics = reqwest::get(url).await?.text().await?;
        let value = |suffix: &str| -> f64 {
            let series = format!("{name}{suffix}");
            metrics
                .lines()
                .filter(|l| l.split(['{', ' ']).next() == Some(series.as_str()))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Ok((value("_sum"), value("_count")))
    }

    /// Graceful stop: cancel, or SIGTERM to the process; either must end cleanly.
    pub async fn stop(self) -> AnyResult<()> {
        match self.kind {
            Kind::InProcess { shutdown, served } => {
                shutdown.cancel();
                served.await??;
            }
            Kind::Process(mut child) => {
                let pid = child.id().ok_or("ifox already ended")?.to_string();
                std::process::Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()?;
                let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
                if !status.success() {
                    return Err(format!("ifox exited with {status}").into());
                }
            }
        }
        Ok(())
    }
}

/// Org `acme` and `teams` teams `team-<i>`, each claiming GitHub repo `acme/team-<i>` (default
/// config: the shared agent, protocol `investigate`, 5 deliveries in flight per team).
pub async fn tenancy(admin: &Ifox, teams: usize) -> AnyResult<()> {
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}/api/v1/admin/orgs", admin.port);
    let call = |req: reqwest::RequestBuilder, body: serde_json::Value| async move {
        let res = req.bearer_auth(ADMIN_TOKEN).json(&body).send().await?;
        if !res.status().is_success() {
            let status = res.status();
            return Err(format!("admin API answered {status}: {}", res.text().await?).into());
        }
        AnyResult::Ok(())
    };
    call(
        client.post(&base),
        json!({"org_id": "acme", "name": "acme"}),
    )
    .await?;
    for i in 0..teams {
        let team = format!("team-{i}");
        let node = json!({"node_id": team, "parent_id": null, "node_type": "team", "name": team});
        call(client.post(format!("{base}/acme/nodes")), node).await?;
        let config = json!({"routing": {"github_repos": [format!("acme/{team}")]}});
        call(
            client.put(format!("{base}/acme/nodes/{team}/config")),
            config,
        )
        .await?;
    }
    Ok(())
}
