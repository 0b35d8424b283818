//! Where ifox runs during the bench: in this process, or as `ifox serve --roles ingest`.

use crate::{AnyResult, SECRET, common};
use ifox::app::{App, Role};
use ifox::settings::Settings;

/// Where ifox runs. By default inside this process (role `ingest`, the binary's allocator, sharing
/// the runtime with the clients); `BENCH_IFOX=process` runs `ifox serve --roles ingest`, the binary of
/// this profile, as its own process, which splits the CPU per event into client, ifox and nats-server.
pub enum Ifox {
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
    pub async fn start(nats_url: &str) -> AnyResult<Ifox> {
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

    pub fn port(&self) -> u16 {
        match self {
            Ifox::InProcess { port, .. } | Ifox::Process { port, .. } => *port,
        }
    }

    /// CPU seconds of its own process; `None` inside this one (counted with the clients).
    pub fn cpu_seconds(&self) -> Option<f64> {
        match self {
            Ifox::InProcess { .. } => None,
            Ifox::Process { child, .. } => Some(common::cpu_seconds_of_tree(child.0.id())),
        }
    }

    /// ifox's own view from its `/metrics`: the mean wait from send to PubAck, in milliseconds.
    pub async fn mean_publish_wait_ms(&self) -> AnyResult<f64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.port());
        let metrics = reqwest::get(url).await?.text().await?;
        let value = |name: &str| -> f64 {
            metrics
                .lines()
                .filter(|l| l.starts_with(name))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let sum = value("ifox_ingest_publish_seconds_sum");
        let count = value("ifox_ingest_publish_seconds_count");
        Ok(1000.0 * sum / count.max(1.0))
    }

    /// Graceful stop: cancel, or SIGTERM to the process; either must end cleanly.
    pub async fn stop(self) -> AnyResult<()> {
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
pub struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
