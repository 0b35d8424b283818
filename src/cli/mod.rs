//! The command line: `ifox serve`, `ifox migrate`, `ifox admin …` (operator tasks straight against
//! the database, recorded in the audit log with actor `cli`). Output of `admin` commands is JSON.

mod dev;
mod runs;
mod status;

use crate::app::{App, Role};
use crate::domain::{NodeId, NodeType, OrgId};
use crate::settings::Settings;
use crate::store::Store;
use crate::tenancy::scope::cli_scope;
use crate::tenancy::{ConfigWrite, NewNode, Tenancy};
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
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

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an org.
    CreateOrg {
        org: OrgId,
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a unit or a team.
    CreateNode {
        org: OrgId,
        node: NodeId,
        #[arg(long = "type", value_parser = parse_node_type)]
        node_type: NodeType,
        /// Parent node (default: the org root).
        #[arg(long)]
        parent: Option<NodeId>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Show an org's tree.
    Tree { org: OrgId },
    /// Show a node's raw config and version.
    ShowConfig { org: OrgId, node: NodeId },
    /// Apply a JSON merge patch (or, with --replace, set the whole config).
    SetConfig {
        org: OrgId,
        node: NodeId,
        /// The JSON patch; `@file.json` reads a file.
        json: String,
        #[arg(long)]
        replace: bool,
    },
    /// Show a node's effective config; --explain adds the node that set each leaf.
    Effective {
        org: OrgId,
        node: NodeId,
        #[arg(long)]
        explain: bool,
    },
    /// Lock config paths (JSON Pointers) for every node below an org or unit.
    Lock {
        org: OrgId,
        node: NodeId,
        paths: Vec<String>,
    },
    /// Issue a token: an org admin token, or with --team a team token. Shown once.
    IssueToken {
        org: OrgId,
        #[arg(long)]
        team: Option<NodeId>,
        #[arg(long)]
        name: Option<String>,
        /// e.g. 30d, 12h
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List tokens (metadata only).
    ListTokens {
        org: OrgId,
        #[arg(long)]
        team: Option<NodeId>,
    },
    /// Revoke a token by id.
    RevokeToken {
        org: OrgId,
        token_id: String,
        #[arg(long)]
        team: Option<NodeId>,
    },
    /// List an org's routing claims.
    Claims { org: OrgId },
}

fn parse_node_type(s: &str) -> Result<NodeType, String> {
    match NodeType::parse(s) {
        Some(t @ (NodeType::Unit | NodeType::Team)) => Ok(t),
        _ => Err("unit or team".into()),
    }
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
            let out = admin(&tenancy, cmd).await?;
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

fn read_json(arg: &str) -> anyhow::Result<Value> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => arg.to_owned(),
    };
    serde_json::from_str(&text).context("the patch is not JSON")
}

async fn admin(t: &Tenancy, cmd: AdminCommand) -> anyhow::Result<Value> {
    use AdminCommand as A;
    Ok(match cmd {
        A::CreateOrg { org, name } => {
            let row = t
                .create_org("cli", &org, &name.unwrap_or_else(|| org.to_string()))
                .await?;
            crate::admin::nodes_json(&row)
        }
        A::CreateNode {
            org,
            node,
            node_type,
            parent,
            name,
        } => {
            let row = t
                .create_node(
                    &cli_scope(&org),
                    NewNode {
                        node_id: node,
                        parent_id: parent,
                        node_type,
                        name,
                    },
                )
                .await?;
            crate::admin::nodes_json(&row)
        }
        A::Tree { org } => {
            let nodes = t.list_nodes(&cli_scope(&org)).await?;
            json!({"nodes": nodes.iter().map(crate::admin::nodes_json).collect::<Vec<_>>()})
        }
        A::ShowConfig { org, node } => {
            let (config, version) = t.get_config(&cli_scope(&org), &node).await?;
            json!({"config": config, "version": version})
        }
        A::SetConfig {
            org,
            node,
            json: arg,
            replace,
        } => {
            let body = read_json(&arg)?;
            let write = if replace {
                ConfigWrite::Replace(body)
            } else {
                ConfigWrite::Patch(body)
            };
            let (config, version) = t.write_config(&cli_scope(&org), &node, write, None).await?;
            json!({"config": config, "version": version})
        }
        A::Effective { org, node, explain } => {
            let (eff, sources) = t.effective(&cli_scope(&org), &node, explain)?;
            json!({"config": eff.config, "version": eff.version, "sources": sources})
        }
        A::Lock { org, node, paths } => {
            json!({"paths": t.set_locks(&cli_scope(&org), &node, paths).await?})
        }
        A::IssueToken {
            org,
            team,
            name,
            expires_in,
        } => {
            let exp = match expires_in {
                Some(d) => Some(
                    crate::domain::now_ms()
                        + i64::try_from(humantime::parse_duration(&d)?.as_millis())?,
                ),
                None => None,
            };
            json!(
                t.issue_token(&cli_scope(&org), team.as_ref(), name, exp)
                    .await?
            )
        }
        A::ListTokens { org, team } => {
            json!({"tokens": t.list_tokens(&cli_scope(&org), team.as_ref()).await?})
        }
        A::RevokeToken {
            org,
            token_id,
            team,
        } => {
            t.revoke_token(&cli_scope(&org), team.as_ref(), &token_id)
                .await?;
            json!({"revoked": token_id})
        }
        A::Claims { org } => json!({"claims": t.list_claims(&cli_scope(&org)).await?}),
    })
}
