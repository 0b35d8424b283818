use super::*;
use serde_json::json;

const RUN: &str = "0190a0b0-0000-8000-8000-000000000001";

fn ok_thread(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_THREAD_ID
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[test]
fn github_events_read_as_the_originals_prompts_and_sessions() {
    let pr = json!({"action": "opened", "repository": {"full_name": "Acme/Pay"},
        "pull_request": {"number": 42, "title": "Fix retries", "user": {"login": "ana"}}});
    let p = build("github", "pull_request", &pr, RUN);
    assert_eq!(
        p.text,
        "GitHub PR #42 opened in Acme/Pay by ana: Fix retries"
    );
    assert_eq!(p.thread_id, "github-acme-pay-pr-42");

    let issue = json!({"action": "closed", "repository": {"full_name": "acme/pay"},
        "issue": {"number": 7, "title": "Slow", "user": {"login": "bo"}}});
    let p = build("github", "issues", &issue, RUN);
    assert_eq!(p.text, "GitHub issue #7 closed in acme/pay by bo: Slow");
    assert_eq!(p.thread_id, "github-acme-pay-issue-7");

    let long = "x".repeat(300);
    let comment = json!({"action": "created", "repository": {"full_name": "acme/pay"},
        "issue": {"number": 9, "pull_request": {"url": "…"}},
        "comment": {"body": long, "user": {"login": "cy"}}});
    let p = build("github", "issue_comment", &comment, RUN);
    assert_eq!(
        p.text,
        format!(
            "GitHub comment on #9 in acme/pay by cy: {}",
            "x".repeat(200)
        )
    );
    assert_eq!(p.thread_id, "github-acme-pay-pr-9", "a comment on a PR");

    let push = json!({"ref": "refs/heads/main", "repository": {"full_name": "acme/pay"},
        "pusher": {"name": "dee"}, "commits": [{}, {}, {}]});
    let p = build("github", "push", &push, RUN);
    assert_eq!(
        p.text,
        "GitHub push to acme/pay on refs/heads/main by dee: 3 commit(s)"
    );
    assert_eq!(
        p.thread_id,
        format!("github-{RUN}"),
        "no PR or issue: the run id"
    );

    let other = json!({"action": "completed", "repository": {"full_name": "acme/pay"}});
    let p = build("github", "workflow_run", &other, RUN);
    assert_eq!(
        p.text,
        "GitHub workflow_run event in acme/pay (action: completed)"
    );
    let bare = build("github", "push", &json!({}), RUN);
    assert_eq!(
        bare.text,
        "GitHub push to unknown on  by unknown: 0 commit(s)"
    );
}

#[test]
fn pagerduty_v3_uses_the_incident_for_the_session() {
    let body = json!({"event": {"id": "01E", "event_type": "incident.triggered",
        "data": {"id": "PABC123", "title": "DB down", "urgency": "high"}}});
    let p = build("pagerduty", "incident.triggered", &body, RUN);
    assert_eq!(
        p.text,
        "PagerDuty incident.triggered: DB down (urgency: high)"
    );
    assert_eq!(p.thread_id, "pagerduty-pabc123");
}

#[test]
fn incidentio_alerts_and_incidents_read_as_the_original() {
    let et = "public_alert.alert_created_v1";
    let alert = json!({"event_type": et, et: {"id": "01ALERT", "alert_source_id": "S1",
        "title": "CPU high", "status": "firing", "priority": "P1"}});
    let p = build("incidentio", et, &alert, RUN);
    assert_eq!(
        p.text,
        "Incident.io public_alert.alert_created_v1: CPU high (status: firing, priority: P1)"
    );
    assert_eq!(p.thread_id, "incidentio-01alert");

    let et = "public_incident.incident_created_v2";
    let nested = json!({"event_type": et, et: {"incident": {"id": "01INC", "name": "Checkout down",
        "severity": {"name": "Major"}, "incident_status": {"name": "Investigating"}}}});
    let p = build("incidentio", et, &nested, RUN);
    assert_eq!(
        p.text,
        "Incident.io public_incident.incident_created_v2: [Major] Checkout down (status: Investigating)"
    );
    assert_eq!(p.thread_id, "incidentio-01inc");

    let top = json!({"event_type": "incident.updated", "incident": {"id": "I2", "name": "X"}});
    let p = build("incidentio", "incident.updated", &top, RUN);
    assert_eq!(
        p.text,
        "Incident.io incident.updated: [unknown] X (status: unknown)"
    );
    assert_eq!(p.thread_id, "incidentio-i2");
}

#[test]
fn slack_mentions_lose_the_bot_and_keep_other_people() {
    let body = json!({"authorizations": [{"user_id": "UBOT"}], "event": {"type": "app_mention",
        "text": "<@UBOT>  why is <@UALICE> seeing 500s?", "channel": "C0A4967KRBM",
        "ts": "1700000000.000100"}});
    let p = build("slack", "app_mention", &body, RUN);
    assert_eq!(p.text, "why is <@UALICE> seeing 500s?");
    assert_eq!(p.thread_id, "slack-c0a4967krbm-1700000000-000100");
    assert!(!p.empty_mention);

    // In a thread the thread's ts names the session; without authorizations every mention goes.
    let body = json!({"event": {"text": "<@U1|fox> look at <@U2>", "channel": "C1",
        "ts": "2.0", "thread_ts": "1.5"}});
    let p = build("slack", "app_mention", &body, RUN);
    assert_eq!(p.text, "look at");
    assert_eq!(p.thread_id, "slack-c1-1-5");
}

#[test]
fn an_empty_slack_mention_is_flagged_not_sent_as_nothing() {
    let body = json!({"authorizations": [{"user_id": "UBOT"}],
        "event": {"text": " <@UBOT> ", "channel": "C1", "ts": "1.2"}});
    let p = build("slack", "app_mention", &body, RUN);
    assert!(p.empty_mention);
    assert_eq!(p.text, EMPTY_MENTION_PROMPT);
}

#[test]
fn unknown_sources_get_a_bounded_generic_prompt_and_a_stable_or_run_session() {
    let big = json!({"id": "evt/1", "blob": "y".repeat(10_000)});
    let p = build("deploybot", "deploy.finished", &big, RUN);
    assert!(p.text.starts_with("deploybot deploy.finished event: {"));
    assert!(p.text.ends_with(" (truncated)"));
    assert!(p.text.chars().count() < GENERIC_PAYLOAD_CHARS + 100);
    assert_eq!(p.thread_id, "deploybot-evt-1");
    let p = build("deploybot", "x", &json!([1, 2]), RUN);
    assert_eq!(p.text, "deploybot x event: [1,2]");
    assert_eq!(p.thread_id, format!("deploybot-{RUN}"));
}

#[test]
fn every_output_is_bounded_whatever_the_payload() {
    let huge = "é".repeat(MAX_PROMPT_CHARS + 10);
    let body = json!({"event": {"text": huge, "channel": "C".repeat(400), "ts": "1.2"}});
    let p = build("slack", "app_mention", &body, RUN);
    assert_eq!(p.text.chars().count(), MAX_PROMPT_CHARS);
    assert!(ok_thread(&p.thread_id), "{}", p.thread_id);
    assert_eq!(p.thread_id.len(), MAX_THREAD_ID);

    // Two long ids that differ only at their end stay different after the cut.
    let a = thread_id(&format!("{}a", "x".repeat(200)));
    let b = thread_id(&format!("{}b", "x".repeat(200)));
    assert_ne!(a, b);
    assert!(ok_thread(&a) && ok_thread(&b));
    assert_eq!(thread_id("Slack_C1.ü"), "slack-c1--");

    for (source, body) in [
        (
            "github",
            json!({"repository": {"full_name": "a/b"}, "issue": {"number": "../x y"}}),
        ),
        ("pagerduty", json!({"event": {"data": {"id": "ÅÄÖ ⚠"}}})),
        ("slack", json!({"event": {"text": ""}})),
        ("other", json!(null)),
    ] {
        let p = build(source, "t", &body, RUN);
        assert!(ok_thread(&p.thread_id), "{source}: {}", p.thread_id);
        assert!(!p.text.is_empty());
    }
}

#[test]
fn source_defaults_and_the_http_timeout_rule() {
    assert_eq!(defaults("github").timeout, Duration::from_secs(180));
    assert_eq!(defaults("github").max_turns, 30);
    for s in ["slack", "pagerduty", "incidentio", "deploybot"] {
        assert_eq!(defaults(s).timeout, Duration::from_secs(300), "{s}");
        assert_eq!(defaults(s).max_turns, 50, "{s}");
    }
    assert_eq!(
        http_timeout(Duration::from_secs(10)),
        Duration::from_secs(60)
    );
    assert_eq!(
        http_timeout(Duration::from_secs(300)),
        Duration::from_secs(330)
    );
}
