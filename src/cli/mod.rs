//! The command line: `ifox serve`, `ifox migrate`, `ifox admin …` (operator tasks straight against
//! the database, recorded in the audit log with actor `cli`). Output of `admin` commands is JSON.

mod admin;
mod dev;
mod runs;
mod status;

pub use admin::AdminCommand;

use crate::app::{App, Role};
use crate::domain::OrgId;
use crate::settings::Settings;
use crate::store::Store;
use crate::tenancy::Tenancy;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ifox",
    version,
    about = "Multi-tenant orchestrator of an AI SRE platform"
)]
pub struct Cli {
    /// Settings file (TOML); defaults to ./ifox.toml when it exists. IFOX__SECTION__KEY variables win.
    #[arg(long, global = true, env = "IFOX_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the given roles (default: all) until SIGINT/SIGTERM.
    Serve {
        /// Comma-separated roles: admin, ingest, router (and any added since; see README).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<Role>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Operator tasks on the tenancy data.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The JetStream streams of `streams/` (built into the binary unless --dir is given).
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// Republish stored events or dead letters so the router processes them again.
    #[command(subcommand)]
    Replay(crate::router::replay::ReplayCommand),
    /// Routing tools for operators.
    #[command(subcommand)]
    Route(crate::router::explain::RouteCommand),
    /// Monthly cost estimate per team of an org (dedicated resources, share of the shared runtime).
    Cost {
        #[arg(long)]
        org: OrgId,
    },
    /// The reference agent: speaks `investigate` and the `ifox` protocol (docs/agent-protocol.md).
    AgentEcho(crate::bridge::echo::EchoArgs),
    /// Agent runs and their outcomes.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Health of the installation from NATS and the database: streams and replicas, consumers,
    /// dead letters, provisioning runs not succeeded, dedicated teams.
    Status {
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Development helpers for a local stack (`just run`).
    #[command(subcommand)]
    Dev(dev::DevCommand),
}

#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// Create missing streams and update drifted ones in place (never delete and recreate).
    Apply {
        /// Read the stream files from this folder instead of the built-in copies.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show how the server differs from the files; exits 1 when it does.
    Diff {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    let _telemetry = crate::telemetry::init(&settings.log, &settings.telemetry)?;
    match cli.command {
        Command::Serve { roles } => serve(settings, roles).await,
        Command::Migrate => {
            let store = Store::connect(settings.database.url.expose(), 1).await?;
            store.migrate().await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Streams(cmd) => streams(settings, cmd).await,
        Command::Replay(cmd) => {
            let bus = crate::bus::Bus::connect(&settings.nats).await?;
            let key = settings.router.replay_key(settings.admin.token.expose());
            let summary = crate::router::replay::run_cli(&bus, &key, &settings.limits, cmd).await?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::Route(crate::router::explain::RouteCommand::Explain {
            source,
            event_type,
            headers,
            payload,
        }) => {
            let headers =
                crate::router::explain::parse_headers(&headers).map_err(anyhow::Error::msg)?;
            let body = if payload.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                buf
            } else {
                std::fs::read(&payload).with_context(|| format!("reading {}", payload.display()))?
            };
            let store = Store::connect(settings.database.url.expose(), 2).await?;
            store.migrate().await?;
            let tenancy = Tenancy::open(store, None).await?;
            let out = crate::router::explain::explain(
                tenancy.catalog(),
                &source,
                &event_type,
                &headers,
                &body,
            );
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Cost { org } => {
            let store = Store::connect(settings.database.url.expose(), 2).await?;
            store.migrate().await?;
            let tenancy = Tenancy::open(store, None).await?;
            let scope = crate::tenancy::scope::cli_scope(&org);
            anyhow::ensure!(tenancy.catalog().has_org(&org), "org {org} not found");
            let report =
                crate::provision::api::org_report(&tenancy, &scope, &settings.provision).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Admin(cmd) => {
            let store = Store::connect(settings.database.url.expose(), 2).await?;
            store.migrate().await?;
            let tenancy = Tenancy::open(store, None)
                .await?
                .with_limits(settings.limits);
            let out = admin::admin(&tenancy, cmd).await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::AgentEcho(args) => {
            Ok(crate::bridge::echo::run_cli(args, wait_for_signal()).await?)
        }
        Command::Runs(cmd) => runs::run(&settings, cmd).await,
        Command::Dev(cmd) => dev::run(&settings, cmd).await,
        Command::Status { json } => {
            let status = status::gather(&settings).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status::render(&status));
            }
            Ok(())
        }
    }
}

async fn serve(settings: Settings, roles: Vec<Role>) -> anyhow::Result<()> {
    let roles: BTreeSet<Role> = if roles.is_empty() {
        Role::ALL.into_iter().collect()
    } else {
        roles.into_iter().collect()
    };
    let app = App::build(settings, roles).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; finishing in-flight work");
        signal.cancel();
    });
    app.run(shutdown).await.context("ifox serve")
}

async fn streams(settings: Settings, cmd: StreamsCommand) -> anyhow::Result<()> {
    use crate::bus::{Bus, StreamSpec, streams};
    let (StreamsCommand::Apply { dir } | StreamsCommand::Diff { dir }) = &cmd;
    let specs = match dir {
        Some(dir) => StreamSpec::load_dir(dir)?,
        None => StreamSpec::embedded()?,
    };
    let specs: Vec<_> = specs
        .into_iter()
        .map(|s| s.with_replicas(settings.nats.stream_replicas))
        .collect();
    let bus = Bus::connect(&settings.nats).await?;
    let outcomes = match cmd {
        StreamsCommand::Apply { .. } => streams::apply(bus.jetstream(), &specs).await?,
        StreamsCommand::Diff { .. } => streams::plan(bus.jetstream(), &specs).await?,
    };
    for o in &outcomes {
        println!("{o}");
    }
    let drifted = outcomes.iter().any(|o| o.changed() && !o.applied);
    anyhow::ensure!(
        !drifted,
        "the server differs from the stream files; run `ifox streams apply`"
    );
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} },
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler: only Ctrl-C stops the process");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
