//! `ifox runs list|show`: run records for operators, read from the database the settings name (the
//! same records as `GET /api/v1/admin/orgs/{org}/runs…`).

use crate::domain::OrgId;
use crate::settings::Settings;
use crate::store::Store;
use crate::store::run_lifecycle::{self, Filter, RunRecord};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The newest runs of an org (all orgs when omitted), one line each.
    List {
        #[arg(long)]
        org: Option<OrgId>,
        #[arg(long)]
        team: Option<String>,
        /// queued, delivering, running, completed, failed or timeout.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// One run with its transitions, as JSON.
    Show { run_id: String },
}

fn when(ms: Option<i64>) -> String {
    ms.map(|ms| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
        humantime::format_rfc3339_seconds(t).to_string()
    })
    .unwrap_or_else(|| "-".to_owned())
}

fn line(r: &RunRecord) -> String {
    let outcome = match (&r.result_text, &r.error) {
        (_, Some(e)) => format!("error: {e}"),
        (Some(t), None) => t.chars().take(80).collect::<String>().replace('\n', " "),
        _ => String::new(),
    };
    format!(
        "{}  {:<10} {}/{}  {}  {} {}  {}",
        when(Some(r.created_at)),
        r.status,
        r.org_id,
        r.team_id,
        r.run_id,
        r.source,
        r.event_type,
        outcome
    )
}

pub async fn run(settings: &Settings, cmd: RunsCommand) -> anyhow::Result<()> {
    let store = Store::connect(settings.database.url.expose(), 2).await?;
    store.migrate().await?;
    let mut conn = store.pool().acquire().await?;
    match cmd {
        RunsCommand::List {
            org,
            team,
            status,
            source,
            limit,
            json,
        } => {
            if let Some(s) = &status {
                anyhow::ensure!(
                    run_lifecycle::STATUSES.contains(&s.as_str()),
                    "--status must be one of {}",
                    run_lifecycle::STATUSES.join(", ")
                );
            }
            anyhow::ensure!((1..=1000).contains(&limit), "--limit must be 1 to 1000");
            let orgs: Vec<String> = match org {
                Some(o) => vec![o.to_string()],
                None => sqlx::query_as::<_, (String,)>("SELECT DISTINCT org_id FROM runs")
                    .fetch_all(&mut *conn)
                    .await?
                    .into_iter()
                    .map(|(o,)| o)
                    .collect(),
            };
            let mut all = Vec::new();
            for org in &orgs {
                let filter = Filter {
                    org,
                    team: team.as_deref(),
                    status: status.as_deref(),
                    source: source.as_deref(),
                    limit,
                    ..Filter::default()
                };
                all.extend(run_lifecycle::list(&mut conn, &filter).await?);
            }
            all.sort_by(|a, b| (b.created_at, &b.run_id).cmp(&(a.created_at, &a.run_id)));
            all.truncate(limit as usize);
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                eprintln!("no runs");
            } else {
                for r in &all {
                    println!("{}", line(r));
                }
            }
        }
        RunsCommand::Show { run_id } => {
            let run = run_lifecycle::get(&mut conn, &run_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no run {run_id}"))?;
            let transitions = run_lifecycle::transitions(&mut conn, &run_id).await?;
            let mut out = serde_json::to_value(&run)?;
            out["transitions"] = serde_json::to_value(transitions)?;
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(())
}
