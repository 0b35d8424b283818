//! The built `ifox` binary as child processes (`ifox serve --roles …`, `ifox agent-echo`), each
//! logging to its own file of a [`LogDir`], killed with SIGKILL on drop and restartable with the
//! same arguments and environment (a crashed pod that Kubernetes starts again).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A folder for the logs of a test's processes. Removed when the test passes; kept (and its path
/// printed) when the test panics, so a failure can be read afterwards.
pub struct LogDir(Option<tempfile::TempDir>);

impl LogDir {
    pub fn new(prefix: &str) -> LogDir {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("log dir");
        LogDir(Some(dir))
    }

    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("the log dir lives").path()
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            eprintln!("logs kept in {}", dir.keep().display());
        }
    }
}

/// `ifox <args>` with `env`, no settings file and no `RUST_LOG` of the test's environment.
fn command<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ifox"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        // Plain text, so the log can be searched.
        .env("NO_COLOR", "1")
        .env("IFOX_CONFIG", "/nonexistent/ifox.toml")
        .envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// Runs `ifox <args>` with `env` to its end (a command such as `streams apply`); panics unless it
/// exits 0, with its stderr.
pub async fn run_once(args: &[&str], env: &[(String, String)]) -> std::process::Output {
    let output = tokio::process::Command::from(command(args, env))
        .output()
        .await
        .expect("run the ifox binary");
    assert!(
        output.status.success(),
        "ifox {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub struct IfoxProcess {
    pub name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl IfoxProcess {
    /// Starts `ifox <args>` with `env` (and no settings file), appending its output to
    /// `<logs>/<name>.log`.
    pub fn spawn(name: &str, args: &[&str], env: &[(String, String)], logs: &LogDir) -> Self {
        let mut process = IfoxProcess {
            name: name.to_owned(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env.to_vec(),
            log: logs.path().join(format!("{name}.log")),
            child: None,
        };
        process.start();
        process
    }

    /// (Re)starts the process with its arguments and environment.
    pub fn start(&mut self) {
        let log = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .map(Stdio::from)
                .expect("open the process log")
        };
        let child = command(&self.args, &self.env)
            .stdout(log())
            .stderr(log())
            .spawn()
            .expect("start the ifox binary");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no acks, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The warnings and errors of its log (text format), grouped by level, target and message
    /// (spans and fields left out), the most frequent first.
    pub fn warnings(&self) -> Vec<(String, usize)> {
        let mut counts: std::collections::HashMap<String, usize> = Default::default();
        for line in self.log().lines() {
            let Some(level) = [" ERROR ", " WARN "].into_iter().find(|l| line.contains(l)) else {
                continue;
            };
            // After the level: `[span{fields}: ]target: message fields`.
            let after = line.split_once(level).map_or(line, |(_, rest)| rest);
            let from_target = after.find("ifox::").map_or(after, |i| &after[i..]);
            let message: Vec<&str> = from_target
                .split(' ')
                .take_while(|word| !word.contains('='))
                .collect();
            *counts
                .entry(format!("{} {}", level.trim(), message.join(" ")))
                .or_default() += 1;
        }
        let mut grouped: Vec<(String, usize)> = counts.into_iter().collect();
        grouped.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        grouped
    }

    /// Waits until `url` answers 2xx; panics after `deadline`, or at once when the process ended.
    pub async fn ready(&mut self, url: &str, deadline: Duration) {
        let client = reqwest::Client::new();
        let what = format!("{} ready at {url}", self.name);
        super::eventually(&what, deadline, || {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("{} exited with {status}:\n{}", self.name, self.log());
            }
            let request = client.get(url).send();
            async move { request.await.ok()?.status().is_success().then_some(()) }
        })
        .await;
    }
}

impl Drop for IfoxProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
