//! Issue 13, finding 1, played as the attacker: a tenant claims identifiers inside another tenant's
//! namespace (a channel of a Slack workspace, a repo of a GitHub owner another org claims) and hopes to
//! receive that tenant's events, or to make them ambiguous. Real HTTP, real nats-server, both databases.

use crate::ingest_fixtures::{GITHUB, SLACK, Stack, Webhook, now};
use crate::router_fixtures::{drained, header, json_of, last_on, stream_count};
use crate::support::DbKind;
use crate::support::app::ADMIN_TOKEN;
use async_nats::jetstream;
use ifox::ingest::verify;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// A signed Slack `app_mention` from `workspace`, `channel`, on the global URL.
fn slack_from(event_id: &str, workspace: &str, channel: &str) -> Webhook {
    let ts = now();
    let body = json!({"type": "event_callback", "team_id": workspace, "event_id": event_id,
        "event_time": ts, "event": {"type": "app_mention", "channel": channel, "text": "db leak"}});
    let body = serde_json::to_vec(&body).unwrap();
    let sig = verify::sign_slack(SLACK, ts, &body);
    Webhook {
        path: "/webhooks/slack/events".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    }
    .header("x-slack-request-timestamp", &ts.to_string())
    .header("x-slack-signature", &sig)
}

/// A signed GitHub `issues` delivery for `full_name` (owner login taken from it).
fn github_from(delivery: &str, full_name: &str) -> Webhook {
    let owner = full_name.split('/').next().unwrap();
    let body = json!({"action": "opened", "repository": {"full_name": full_name, "owner": {"login": owner}},
        "issue": {"number": 1, "title": "secret incident"}});
    let body = serde_json::to_vec(&body).unwrap();
    let sig = verify::sign_github(GITHUB, &body);
    Webhook {
        path: "/webhooks/github".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    }
    .header("x-github-event", "issues")
    .header("x-github-delivery", delivery)
    .header("x-hub-signature-256", &sig)
}

/// Orgs `a` (team `ops`) and `b` (team `inc`); returns A's team token and A's org admin token.
async fn two_orgs(stack: &Stack) -> (String, String) {
    let app = &stack.app;
    for (org, team) in [("a", "ops"), ("b", "inc")] {
        app.org(org).await;
        app.node(org, team, None, "team").await;
    }
    let (team_a, _) = app.team_token("a", "ops").await;
    let (admin_a, _) = app.org_token("a").await;
    (team_a, admin_a)
}

async fn claim(stack: &Stack, token: &str, org: &str, team: &str, routing: Value) -> (u16, Value) {
    let a = stack
        .app
        .put(
            &format!("/api/v1/admin/orgs/{org}/nodes/{team}/config"),
            token,
            json!({ "routing": routing }),
        )
        .await;
    (a.status.as_u16(), a.body)
}

/// The attacker first tries its team token (refused once `routing` is platform-owned), then its org
/// admin token: a hostile org's admin is the stronger attacker.
async fn attacker_claims(stack: &Stack, team_a: &str, admin_a: &str, routing: Value) {
    let a = stack
        .app
        .patch(
            "/api/v1/config/me",
            team_a,
            json!({ "routing": routing.clone() }),
        )
        .await;
    assert!(
        a.status == 200 || (a.status == 403 && a.reason() == "platform_owned_key"),
        "{} {}",
        a.status,
        a.body
    );
    let (status, body) = claim(stack, admin_a, "a", "ops", routing).await;
    assert_eq!(
        status, 200,
        "a channel id is not namespaced, the claim itself is accepted: {body}"
    );
}

/// A's org admin claims `routing` and is refused with 409 `claim_conflict`, told "another tenant"
/// without learning which org (org `b` is invisible to A).
async fn refused_unnamed(stack: &Stack, admin_a: &str, routing: Value) {
    let (s, body) = claim(stack, admin_a, "a", "ops", routing).await;
    assert_eq!(
        (s, body["reason"].as_str()),
        (409, Some("claim_conflict")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("another tenant"), "{body}");
    assert!(
        body.get("org").is_none() && !message.contains("org b"),
        "{body}"
    );
}

async fn nothing_on(js: &jetstream::Context, subject: &str) {
    drained(js, WAIT).await;
    let stream = js.get_stream("AGENT_RUNS").await.unwrap();
    assert!(
        stream
            .get_last_raw_message_by_subject(subject)
            .await
            .is_err(),
        "an event reached {subject}"
    );
}

/// B's team `inc` claims `b_routing` (global admin); the attacker in org A claims `a_routing`; a
/// signed Slack event from `workspace`/`channel` is sent. It must reach B's team and never A's: the
/// claim it matched is returned.
async fn b_gets_its_slack_event(
    stack: &Stack,
    (team_a, admin_a): (&str, &str),
    b_routing: Value,
    a_routing: Value,
    (event, workspace, channel): (&str, &str, &str),
) -> Value {
    let (s, b) = claim(stack, ADMIN_TOKEN, "b", "inc", b_routing).await;
    assert_eq!(s, 200, "{b}");
    attacker_claims(stack, team_a, admin_a, a_routing).await;
    let a = stack.send(&slack_from(event, workspace, channel)).await;
    assert!(a.status.is_success(), "{}", a.body);
    let msg = last_on(&stack.js, "AGENT_RUNS", "ifox.agent.shared.b.inc", WAIT).await;
    nothing_on(&stack.js, "ifox.agent.shared.a.ops").await;
    json_of(&msg)["matched"].clone()
}

async fn a_channel_claim_cannot_take_the_events_of_another_orgs_workspace(kind: DbKind) {
    let stack = Stack::start_on(kind, &[]).await;
    let (team_a, admin_a) = two_orgs(&stack).await;
    // T1 is B's: the org is decided first, A's channel claim never competes; B's workspace claim wins.
    let matched = b_gets_its_slack_event(
        &stack,
        (&team_a, &admin_a),
        json!({"slack_workspace_ids": ["T1"]}),
        json!({"slack_channel_ids": ["C1"]}),
        ("Ev1", "T1", "C1"),
    )
    .await;
    assert_eq!(
        matched,
        json!({"kind": "slack_workspace_ids", "value": "T1"})
    );

    // Workspace T1 is B's, so claiming it from A is refused and names no foreign org to A.
    refused_unnamed(&stack, &admin_a, json!({"slack_workspace_ids": ["T1"]})).await;

    // An org with a workspace of its own (T2) gets no event of an unclaimed workspace T9 through a
    // channel claim: it dead-letters as no_route.
    let (s, body) = claim(
        &stack,
        &admin_a,
        "a",
        "ops",
        json!({"slack_workspace_ids": ["T2"], "slack_channel_ids": ["C9"]}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let a = stack.send(&slack_from("Ev2", "T9", "C9")).await;
    assert!(a.status.is_success(), "{}", a.body);
    let dl = last_on(
        &stack.js,
        "DEADLETTER",
        "ifox.deadletter.router.no_route",
        WAIT,
    )
    .await;
    assert_eq!(header(&dl, "Ifox-DL-Reason").as_deref(), Some("no_route"));
    assert_eq!(stream_count(&stack.js, "AGENT_RUNS").await, 1);
    nothing_on(&stack.js, "ifox.agent.shared.a.ops").await;
}

async fn a_repo_claim_cannot_take_the_events_of_another_orgs_github_owner(kind: DbKind) {
    let stack = Stack::start_on(kind, &[]).await;
    let (team_a, admin_a) = two_orgs(&stack).await;
    // A squats a repo of owner `globex` before anyone claims the owner.
    attacker_claims(
        &stack,
        &team_a,
        &admin_a,
        json!({"github_repos": ["globex/web"]}),
    )
    .await;
    let (s, b) = claim(
        &stack,
        ADMIN_TOKEN,
        "b",
        "inc",
        json!({"github_owners": ["Globex"]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    let a = stack.send(&github_from("gh-1", "Globex/Web")).await;
    assert!(a.status.is_success(), "{}", a.body);
    let msg = last_on(&stack.js, "AGENT_RUNS", "ifox.agent.shared.b.inc", WAIT).await;
    assert_eq!(
        json_of(&msg)["matched"],
        json!({"kind": "github_owners", "value": "globex"})
    );
    nothing_on(&stack.js, "ifox.agent.shared.a.ops").await;

    // Now that `globex` is B's, a new repo claim in its namespace is refused (409), unnamed for A...
    refused_unnamed(&stack, &admin_a, json!({"github_repos": ["globex/api"]})).await;
    // ...and named for the global admin, who sees every org.
    let (s, body) = claim(
        &stack,
        ADMIN_TOKEN,
        "a",
        "ops",
        json!({"github_repos": ["globex/api"]}),
    )
    .await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["org"], "b", "{body}");
    // The owner claim is unique across all orgs.
    let (s, body) = claim(
        &stack,
        ADMIN_TOKEN,
        "a",
        "ops",
        json!({"github_owners": ["globex"]}),
    )
    .await;
    assert_eq!(
        (s, body["reason"].as_str()),
        (409, Some("claim_conflict")),
        "{body}"
    );
}

async fn a_shared_channel_claim_does_not_make_the_owners_events_ambiguous(kind: DbKind) {
    let stack = Stack::start_on(kind, &[]).await;
    let (team_a, admin_a) = two_orgs(&stack).await;
    let matched = b_gets_its_slack_event(
        &stack,
        (&team_a, &admin_a),
        json!({"slack_workspace_ids": ["T1"], "slack_channel_ids": ["C1"]}),
        json!({"slack_channel_ids": ["C1"]}),
        ("Ev3", "T1", "C1"),
    )
    .await;
    assert_eq!(matched, json!({"kind": "slack_channel_ids", "value": "C1"}));
    assert_eq!(
        stream_count(&stack.js, "DEADLETTER").await,
        0,
        "no ambiguous_route"
    );
}

/// The converse of the repo squatter: B routes `initech/api`; A's org admin claims the owner
/// `initech`, which would take every `initech/*` event, B's included. Refused (409, unnamed); B's
/// events stay B's. Only the global admin may make that claim (deciding who owns the owner).
async fn an_owner_claim_cannot_take_the_repos_another_org_routes(kind: DbKind) {
    let stack = Stack::start_on(kind, &[]).await;
    let (_, admin_a) = two_orgs(&stack).await;
    let (b_admin, _) = stack.app.org_token("b").await;
    let (s, body) = claim(
        &stack,
        &b_admin,
        "b",
        "inc",
        json!({"github_repos": ["initech/api"]}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    refused_unnamed(&stack, &admin_a, json!({"github_owners": ["Initech"]})).await;
    let a = stack.send(&github_from("gh-i1", "initech/api")).await;
    assert!(a.status.is_success(), "{}", a.body);
    let msg = last_on(&stack.js, "AGENT_RUNS", "ifox.agent.shared.b.inc", WAIT).await;
    assert_eq!(
        json_of(&msg)["matched"],
        json!({"kind": "github_repos", "value": "initech/api"})
    );
    nothing_on(&stack.js, "ifox.agent.shared.a.ops").await;
    // B, which holds repos inside it, rewrites its own config freely; an owner whose repos no other
    // org routes is claimed as before.
    let (s, body) = claim(
        &stack,
        &b_admin,
        "b",
        "inc",
        json!({"github_repos": ["initech/api", "initech/web"]}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = claim(
        &stack,
        &admin_a,
        "a",
        "ops",
        json!({"github_owners": ["hooli"]}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    // The global admin decides: the claim is made (and then takes the owner's events).
    let (s, body) = claim(
        &stack,
        ADMIN_TOKEN,
        "a",
        "ops",
        json!({"github_owners": ["initech"]}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
}

crate::both_databases!(
    an_owner_claim_cannot_take_the_repos_another_org_routes,
    a_channel_claim_cannot_take_the_events_of_another_orgs_workspace,
    a_repo_claim_cannot_take_the_events_of_another_orgs_github_owner,
    a_shared_channel_claim_does_not_make_the_owners_events_ambiguous,
);
