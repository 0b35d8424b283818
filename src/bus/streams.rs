//! The streams of DESIGN.md, declared in `streams/*.json` (JetStream API JSON, one file per stream;
//! the same files work with `nats stream add --config`), and their idempotent application.
//!
//! The files are embedded in the binary, so a deployed process needs nothing beside it; `ifox streams
//! apply --dir` reads a folder instead. Applying is create-or-update, never delete-and-recreate: a
//! stream holding data is only ever updated in place, and a change NATS cannot make in place (storage
//! type, retention) is refused by the server and reported, not forced.
//!
//! Drift is judged on the keys a file sets: a key the file leaves out keeps whatever the server has
//! (its default, or an operator's change), and an update sends the live config with the file's keys
//! laid over it.

use async_nats::jetstream;
use serde_json::{Map, Value, json};
use std::fmt;
use std::path::{Path, PathBuf};

const EMBEDDED: [(&str, &str); 5] = [
    (
        "streams/events.json",
        include_str!("../../streams/events.json"),
    ),
    (
        "streams/agent_runs.json",
        include_str!("../../streams/agent_runs.json"),
    ),
    (
        "streams/provision.json",
        include_str!("../../streams/provision.json"),
    ),
    (
        "streams/deadletter.json",
        include_str!("../../streams/deadletter.json"),
    ),
    ("streams/runs.json", include_str!("../../streams/runs.json")),
];

/// JetStream's error code for "stream not found".
const STREAM_NOT_FOUND: u64 = 10059;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} is not JSON: {source}")]
    Parse {
        origin: String,
        source: serde_json::Error,
    },
    #[error("{origin}: {problem}")]
    Invalid { origin: String, problem: String },
    #[error("stream {stream}: the JetStream API did not answer: {source}")]
    Request {
        stream: String,
        source: jetstream::context::RequestError,
    },
    #[error("stream {stream}: NATS refused the config: {description} (code {code})")]
    Refused {
        stream: String,
        code: u64,
        description: String,
    },
}

impl StreamError {
    /// Worth retrying without anybody changing a file.
    pub fn is_transient(&self) -> bool {
        matches!(self, StreamError::Request { .. })
    }
}

/// One stream's desired config, as written in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    origin: String,
    config: Map<String, Value>,
}

impl StreamSpec {
    /// Parses one file's text; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<StreamSpec, StreamError> {
        let invalid = |problem: &str| StreamError::Invalid {
            origin: origin.to_owned(),
            problem: problem.to_owned(),
        };
        let value: Value = serde_json::from_str(text).map_err(|source| StreamError::Parse {
            origin: origin.to_owned(),
            source,
        })?;
        let Value::Object(config) = value else {
            return Err(invalid("must be a JSON object"));
        };
        let name = config
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("needs a string `name`"))?;
        let bad_char = |c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\');
        if name.is_empty() || name.chars().any(bad_char) {
            return Err(invalid(
                "`name` must not be empty nor hold spaces, '.', '*', '>', '/' or '\\'",
            ));
        }
        let subjects = config.get("subjects").and_then(Value::as_array);
        if !subjects.is_some_and(|s| !s.is_empty() && s.iter().all(Value::is_string)) {
            return Err(invalid("needs a non-empty list of `subjects`"));
        }
        Ok(StreamSpec {
            origin: origin.to_owned(),
            config,
        })
    }

    /// The files of `streams/` built into the binary.
    pub fn embedded() -> Result<Vec<StreamSpec>, StreamError> {
        EMBEDDED
            .iter()
            .map(|(origin, text)| StreamSpec::parse(origin, text))
            .collect()
    }

    /// Every `*.json` file of `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Vec<StreamSpec>, StreamError> {
        let read_err = |source| StreamError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).map_err(|source| StreamError::Read {
                    path: path.clone(),
                    source,
                })?;
                StreamSpec::parse(&path.display().to_string(), &text)
            })
            .collect()
    }

    /// Replaces `num_replicas` (0 keeps the file's value): one set of files for a single server
    /// and for an R3 cluster.
    pub fn with_replicas(mut self, replicas: u8) -> StreamSpec {
        if replicas > 0 {
            self.config.insert("num_replicas".into(), json!(replicas));
        }
        self
    }

    pub fn name(&self) -> &str {
        self.config
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn config(&self) -> &Map<String, Value> {
        &self.config
    }
}

/// One field where the server differs from the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    pub field: String,
    /// `null` when the server's config has no such field (an older server drops fields it does not know).
    pub live: Value,
    pub desired: Value,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Create,
    Update { changes: Vec<Change> },
    None,
}

/// What apply did (or, from [`plan`], would do) to one stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StreamOutcome {
    pub stream: String,
    #[serde(flatten)]
    pub action: Action,
    /// False in a plan (`ifox streams diff`).
    pub applied: bool,
}

impl StreamOutcome {
    pub fn name(&self) -> &str {
        &self.stream
    }
    pub fn changed(&self) -> bool {
        self.action != Action::None
    }
}

impl fmt::Display for StreamOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.action, self.applied) {
            (Action::None, _) => write!(f, "{}: in sync", self.stream),
            (Action::Create, true) => write!(f, "{}: created", self.stream),
            (Action::Create, false) => write!(f, "{}: missing", self.stream),
            (Action::Update { changes }, applied) => {
                write!(
                    f,
                    "{}: {}",
                    self.stream,
                    if applied { "updated" } else { "differs" }
                )?;
                for c in changes {
                    write!(f, "\n  {}: {} -> {}", c.field, c.live, c.desired)?;
                }
                Ok(())
            }
        }
    }
}

/// Compares every spec with the server; changes nothing.
pub async fn plan(
    js: &jetstream::Context,
    specs: &[StreamSpec],
) -> Result<Vec<StreamOutcome>, StreamError> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let action = match live_config(js, spec.name()).await? {
            None => Action::Create,
            Some(live) => match changes(&live, spec.config()) {
                c if c.is_empty() => Action::None,
                changes => Action::Update { changes },
            },
        };
        out.push(StreamOutcome {
            stream: spec.name().to_owned(),
            action,
            applied: false,
        });
    }
    Ok(out)
}

/// Creates missing streams and updates drifted ones; streams in sync are not touched.
pub async fn apply(
    js: &jetstream::Context,
    specs: &[StreamSpec],
) -> Result<Vec<StreamOutcome>, StreamError> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let name = spec.name();
        let action = match live_config(js, name).await? {
            None => {
                api(
                    js,
                    name,
                    &format!("STREAM.CREATE.{name}"),
                    &Value::Object(spec.config().clone()),
                )
                .await?;
                Action::Create
            }
            Some(live) => {
                let changes = changes(&live, spec.config());
                if changes.is_empty() {
                    Action::None
                } else {
                    let mut merged = live;
                    merged.extend(spec.config().clone());
                    api(
                        js,
                        name,
                        &format!("STREAM.UPDATE.{name}"),
                        &Value::Object(merged),
                    )
                    .await?;
                    Action::Update { changes }
                }
            }
        };
        out.push(StreamOutcome {
            stream: name.to_owned(),
            action,
            applied: true,
        });
    }
    Ok(out)
}

/// The fields the file sets whose live value differs.
fn changes(live: &Map<String, Value>, desired: &Map<String, Value>) -> Vec<Change> {
    desired
        .iter()
        .filter(|(field, want)| live.get(*field) != Some(*want))
        .map(|(field, want)| Change {
            field: field.clone(),
            live: live.get(field).cloned().unwrap_or(Value::Null),
            desired: want.clone(),
        })
        .collect()
}

/// The server's config of `name`, or `None` when there is no such stream.
async fn live_config(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<Map<String, Value>>, StreamError> {
    match api(js, name, &format!("STREAM.INFO.{name}"), &json!({})).await {
        Ok(response) => match response.get("config") {
            Some(Value::Object(config)) => Ok(Some(config.clone())),
            _ => Err(StreamError::Refused {
                stream: name.to_owned(),
                code: 0,
                description: "no config in STREAM.INFO".into(),
            }),
        },
        Err(StreamError::Refused {
            code: STREAM_NOT_FOUND,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One JetStream API request; an `error` in the answer becomes [`StreamError::Refused`].
async fn api(
    js: &jetstream::Context,
    stream: &str,
    subject: &str,
    body: &Value,
) -> Result<Value, StreamError> {
    let response: Value = js
        .request(subject.to_owned(), body)
        .await
        .map_err(|source| StreamError::Request {
            stream: stream.to_owned(),
            source,
        })?;
    if let Some(error) = response.get("error") {
        return Err(StreamError::Refused {
            stream: stream.to_owned(),
            code: error.get("err_code").and_then(Value::as_u64).unwrap_or(0),
            description: error
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_owned(),
        });
    }
    Ok(response)
}

#[cfg(test)]
#[path = "streams_tests.rs"]
mod tests;
