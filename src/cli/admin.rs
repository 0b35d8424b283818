//! `ifox admin …`: operator tasks straight against the database (recorded in the audit log with
//! actor `cli`); the output is JSON.

use crate::domain::{NodeId, NodeType, OrgId};
use crate::tenancy::scope::cli_scope;
use crate::tenancy::{ConfigWrite, NewNode, Tenancy};
use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

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

fn read_json(arg: &str) -> anyhow::Result<Value> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => arg.to_owned(),
    };
    serde_json::from_str(&text).context("the patch is not JSON")
}

pub(super) async fn admin(t: &Tenancy, cmd: AdminCommand) -> anyhow::Result<Value> {
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
