//! The prompt text and the session id (`thread_id`) of a run, built from its event exactly as the
//! original orchestrator built them (REFERENCE.md, "The agent protocol the original's agents speak"),
//! so existing agent images see what they always saw. Also the per-source timeout and turn limit.
//! Pure: no IO, no clock.
//!
//! Bounds, whatever the payload: the prompt is at most [`MAX_PROMPT_CHARS`] characters (the
//! protocol's limit) and never empty; the thread id is at most [`MAX_THREAD_ID`] characters of
//! `[a-z0-9-]` (anything else becomes `-`; a longer id is cut and gets a hash suffix, so two long
//! ids that differ only at their end still differ).
//!
//! Empty Slack mention: the original answered "what would you like me to investigate?" in the
//! thread and never called the agent. ifox does not post to Slack, so [`Prompt::empty_mention`] is
//! set and the text is [`EMPTY_MENTION_PROMPT`]; the bridge decides (it may complete the run with
//! [`EMPTY_MENTION_REPLY`] without calling the agent). The flag exists so that choice is explicit.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The `investigate` protocol's prompt limit (characters).
pub const MAX_PROMPT_CHARS: usize = 500_000;
/// The `investigate` protocol's thread id limit (characters).
pub const MAX_THREAD_ID: usize = 128;
/// How much of an unknown source's payload (its JSON text, in characters) goes into the prompt.
pub const GENERIC_PAYLOAD_CHARS: usize = 4_000;
/// The prompt of a Slack mention with no text besides the bot's name.
pub const EMPTY_MENTION_PROMPT: &str = "(empty mention)";
/// What the original replied to an empty mention.
pub const EMPTY_MENTION_REPLY: &str = "what would you like me to investigate?";

/// What the agent is asked, and the session it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub thread_id: String,
    /// A Slack mention with nothing but the bot's name (see the module doc).
    pub empty_mention: bool,
}

/// The original's per-source run limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceDefaults {
    pub timeout: Duration,
    pub max_turns: u32,
}

/// Timeout and turn limit of a source: GitHub 180 s / 30, everything else (Slack, PagerDuty,
/// incident.io, other sources) 300 s / 50.
pub fn defaults(source: &str) -> SourceDefaults {
    match source {
        "github" => SourceDefaults {
            timeout: Duration::from_secs(180),
            max_turns: 30,
        },
        _ => SourceDefaults {
            timeout: Duration::from_secs(300),
            max_turns: 50,
        },
    }
}

/// The HTTP timeout of an `investigate` call: max(60 s, run timeout + 30 s), as the original, so
/// the agent's own timeout fires (and it answers with an `error` event) before the connection is cut.
pub fn http_timeout(run_timeout: Duration) -> Duration {
    (run_timeout + Duration::from_secs(30)).max(Duration::from_secs(60))
}

/// The prompt and thread id of an event. `run_id` is the fallback session id when the event names
/// nothing stable.
pub fn build(source: &str, event_type: &str, payload: &Value, run_id: &str) -> Prompt {
    let (text, thread, empty_mention) = match source {
        "slack" => slack(event_type, payload),
        "github" => (
            github_text(event_type, payload),
            github_thread(payload),
            false,
        ),
        "pagerduty" => pagerduty(payload),
        "incidentio" => incidentio(event_type, payload),
        _ => (generic_text(source, event_type, payload), None, false),
    };
    let thread = thread.unwrap_or_else(|| {
        let id = text_at(payload, "/id").filter(|_| !is_known(source));
        format!("{source}-{}", id.unwrap_or_else(|| run_id.to_owned()))
    });
    Prompt {
        text: bound_prompt(text),
        thread_id: thread_id(&thread),
        empty_mention,
    }
}

fn is_known(source: &str) -> bool {
    matches!(source, "slack" | "github" | "pagerduty" | "incidentio")
}

/// A value as the original's f-strings printed it: strings as they are, numbers and booleans in
/// JSON form; missing or null → `default`.
fn text_or(payload: &Value, pointer: &str, default: &str) -> String {
    text_at(payload, pointer).unwrap_or_else(|| default.to_owned())
}

fn text_at(payload: &Value, pointer: &str) -> Option<String> {
    match payload.pointer(pointer)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The first `n` characters of `s`.
pub(crate) fn first_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

fn slack(event_type: &str, p: &Value) -> (String, Option<String>, bool) {
    let channel = text_at(p, "/event/channel").or_else(|| text_at(p, "/channel/id"));
    let ts = [
        "/event/thread_ts",
        "/event/ts",
        "/message/thread_ts",
        "/message/ts",
    ]
    .iter()
    .find_map(|ptr| text_at(p, ptr));
    let thread = match (channel, ts) {
        (Some(c), Some(ts)) => Some(format!(
            "slack-{}-{}",
            c.to_lowercase(),
            ts.replace('.', "-")
        )),
        _ => None,
    };
    let Some(raw) = text_at(p, "/event/text") else {
        return (generic_text("slack", event_type, p), thread, false);
    };
    let bots: Vec<String> = p
        .pointer("/authorizations")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.get("user_id")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let text = strip_mentions(&raw, &bots);
    if text.is_empty() {
        (EMPTY_MENTION_PROMPT.to_owned(), thread, true)
    } else {
        (text, thread, false)
    }
}

/// Removes `<@U…>` mentions (also `<@U…|name>`) of the bot users in `bots`, or of every user when
/// the payload does not say who the bot is, and trims what is left.
fn strip_mentions(text: &str, bots: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('>') {
            Some(end) => {
                let id = after[..end].split('|').next().unwrap_or_default();
                let is_user = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
                let drop = is_user && (bots.is_empty() || bots.iter().any(|b| b == id));
                if !drop {
                    out.push_str(&rest[start..start + 2 + end + 1]);
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn github_text(event: &str, p: &Value) -> String {
    let repo = text_or(p, "/repository/full_name", "unknown");
    let action = text_or(p, "/action", "");
    match event {
        "push" => {
            let commits = p
                .pointer("/commits")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            format!(
                "GitHub push to {repo} on {} by {}: {commits} commit(s)",
                text_or(p, "/ref", ""),
                text_or(p, "/pusher/name", "unknown")
            )
        }
        "pull_request" => format!(
            "GitHub PR #{} {action} in {repo} by {}: {}",
            text_or(p, "/pull_request/number", ""),
            text_or(p, "/pull_request/user/login", "unknown"),
            text_or(p, "/pull_request/title", "")
        ),
        "issues" => format!(
            "GitHub issue #{} {action} in {repo} by {}: {}",
            text_or(p, "/issue/number", ""),
            text_or(p, "/issue/user/login", "unknown"),
            text_or(p, "/issue/title", "")
        ),
        "issue_comment" => format!(
            "GitHub comment on #{} in {repo} by {}: {}",
            text_or(p, "/issue/number", ""),
            text_or(p, "/comment/user/login", "unknown"),
            first_chars(&text_or(p, "/comment/body", ""), 200)
        ),
        other => format!("GitHub {other} event in {repo} (action: {action})"),
    }
}

/// `github-{owner}-{repo}-pr-{n}` for pull requests and comments on them (GitHub's issue API
/// marks a PR with `issue.pull_request`), `…-issue-{n}` for issues; None otherwise.
fn github_thread(p: &Value) -> Option<String> {
    let full = text_at(p, "/repository/full_name")?;
    let (owner, repo) = full.split_once('/')?;
    let base = format!("github-{owner}-{repo}");
    if let Some(n) = text_at(p, "/pull_request/number") {
        return Some(format!("{base}-pr-{n}"));
    }
    let n = text_at(p, "/issue/number")?;
    let kind = if p.pointer("/issue/pull_request").is_some() {
        "pr"
    } else {
        "issue"
    };
    Some(format!("{base}-{kind}-{n}"))
}

fn pagerduty(p: &Value) -> (String, Option<String>, bool) {
    let text = format!(
        "PagerDuty {}: {} (urgency: {})",
        text_or(p, "/event/event_type", ""),
        text_or(p, "/event/data/title", ""),
        text_or(p, "/event/data/urgency", "")
    );
    // The incident id: every event of one incident continues one session.
    let thread = text_at(p, "/event/data/id").map(|id| format!("pagerduty-{id}"));
    (text, thread, false)
}

fn incidentio(event_type: &str, p: &Value) -> (String, Option<String>, bool) {
    let inner = p.get(event_type).unwrap_or(&Value::Null);
    if event_type.starts_with("public_alert.") {
        let title = text_at(inner, "/title")
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| text_or(inner, "/name", ""));
        let priority = text_at(inner, "/priority")
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| text_or(inner, "/severity", "unknown"));
        let text = format!(
            "Incident.io {event_type}: {title} (status: {}, priority: {priority})",
            text_or(inner, "/status", "unknown")
        );
        let thread = text_at(inner, "/id").map(|id| format!("incidentio-{id}"));
        return (text, thread, false);
    }
    // Incidents: the original read a top-level `incident`; incident.io's v2 events put it under
    // the key named by `event_type`.
    let incident = p
        .get("incident")
        .or_else(|| inner.get("incident"))
        .unwrap_or(inner);
    let text = format!(
        "Incident.io {event_type}: [{}] {} (status: {})",
        text_or(incident, "/severity/name", "unknown"),
        text_or(incident, "/name", ""),
        text_or(incident, "/incident_status/name", "unknown")
    );
    let thread = text_at(incident, "/id").map(|id| format!("incidentio-{id}"));
    (text, thread, false)
}

/// Events of sources without a format (generic webhooks, events published directly to NATS): the
/// source, the type and the start of the payload's JSON.
fn generic_text(source: &str, event_type: &str, p: &Value) -> String {
    let json = p.to_string();
    let head = first_chars(&json, GENERIC_PAYLOAD_CHARS);
    let cut = if head.len() < json.len() {
        " (truncated)"
    } else {
        ""
    };
    format!("{source} {event_type} event: {head}{cut}")
}

fn bound_prompt(text: String) -> String {
    if text.trim().is_empty() {
        return "(no text)".to_owned();
    }
    match text.char_indices().nth(MAX_PROMPT_CHARS) {
        Some((i, _)) => text[..i].to_owned(),
        None => text,
    }
}

/// `raw` lowercased, every character outside `[a-z0-9-]` turned into `-`; above [`MAX_THREAD_ID`]
/// cut and suffixed with 12 hex digits of the SHA-256 of `raw`.
pub fn thread_id(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.len() <= MAX_THREAD_ID {
        return clean;
    }
    let digest = hex::encode(Sha256::digest(raw.as_bytes()));
    let keep = MAX_THREAD_ID - 13;
    format!("{}-{}", &clean[..keep], &digest[..12])
}

#[cfg(test)]
#[path = "prompt_tests.rs"]
mod tests;
