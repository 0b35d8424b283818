//! Issue 13, finding 5, played as the attacker: two orgs' senders number their deliveries alike
//! (`msg-1`), and two orgs' direct publishers reuse a `ce-id` without `ce-time`. Neither may suppress
//! the other's event or run: the dedup key and the run id carry the event's tenant scope and source.

use crate::both_databases;
use crate::ingest_fixtures::{GENERIC, SOURCE, Stack, Webhook};
use crate::router_fixtures::drained;
use crate::support::DbKind;
use crate::support::app::ADMIN_TOKEN;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

both_databases!(
    a_second_orgs_delivery_with_the_same_id_is_stored_not_answered_duplicate,
    two_orgs_direct_events_with_one_ce_id_and_no_ce_time_each_make_their_own_run,
);

async fn a_second_orgs_delivery_with_the_same_id_is_stored_not_answered_duplicate(db: DbKind) {
    let stack = Stack::start_on(db, &[]).await;
    let provider = format!("generic/{SOURCE}");
    for org in ["alpha", "beta"] {
        stack.org_with_secrets(org, &provider, &[GENERIC]).await;
    }
    let body = serde_json::to_vec(&json!({"type": "deploy.failed"})).unwrap();
    let mut seqs = Vec::new();
    for org in ["alpha", "beta"] {
        let path = format!("/webhooks/orgs/{org}/generic/{SOURCE}");
        let a = stack
            .send(&Webhook::standard(&path, GENERIC, "msg-1", body.clone()))
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["status"], "accepted", "{org}: {}", a.body);
        seqs.push(a.body["seq"].as_u64().unwrap());
    }
    // The global URL is a scope of its own too.
    let a = stack.send(&Webhook::generic("msg-1")).await;
    assert_eq!(a.body["status"], "accepted", "{}", a.body);
    assert_eq!(stack.stored().await, 3, "each scope's msg-1 is stored");
    // The provider's own retry, in the same scope, is still collapsed.
    let path = format!("/webhooks/orgs/beta/generic/{SOURCE}");
    let again = stack
        .send(&Webhook::standard(&path, GENERIC, "msg-1", body))
        .await;
    assert_eq!(again.body["status"], "duplicate", "{}", again.body);
    assert_eq!(again.body["seq"].as_u64(), Some(seqs[1]));
}

/// Org `org` with team `ops` claiming service `checkout`.
async fn tenant(stack: &Stack, org: &str) {
    stack.app.org(org).await;
    stack.app.node(org, "ops", None, "team").await;
    let a = stack
        .app
        .put(
            &format!("/api/v1/admin/orgs/{org}/nodes/ops/config"),
            ADMIN_TOKEN,
            json!({"routing": {"service_names": ["checkout"]}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

async fn runs_of(stack: &Stack, org: &str) -> Vec<Value> {
    let a = stack
        .app
        .get(&format!("/api/v1/admin/orgs/{org}/runs"), ADMIN_TOKEN)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["runs"].as_array().cloned().unwrap_or_default()
}

async fn two_orgs_direct_events_with_one_ce_id_and_no_ce_time_each_make_their_own_run(db: DbKind) {
    let stack = Stack::start_on(db, &[]).await;
    tenant(&stack, "alpha").await;
    tenant(&stack, "beta").await;
    let before = std::time::SystemTime::now();
    for org in ["alpha", "beta"] {
        // Each publisher picks its own Nats-Msg-Id; both reuse ce-id `ev-1` and send no ce-time.
        let mut h = async_nats::HeaderMap::new();
        h.insert("ce-specversion", "1.0");
        h.insert("ce-id", "ev-1");
        h.insert("ce-source", "alerts");
        h.insert("ce-type", "fired");
        h.insert("Nats-Msg-Id", format!("{org}-ev-1").as_str());
        h.insert("ifox-org", org);
        h.insert("ifox-route-service_names", "checkout");
        stack
            .js
            .publish_with_headers("ifox.events.alerts.fired", h, "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    drained(&stack.js, WAIT).await;
    let mut ids = Vec::new();
    for org in ["alpha", "beta"] {
        let runs = crate::support::eventually(&format!("a run of {org}"), WAIT, || async {
            Some(runs_of(&stack, org).await).filter(|r| !r.is_empty())
        })
        .await;
        assert_eq!(runs.len(), 1, "{org}: {runs:?}");
        assert_eq!(runs[0]["event_id"], "ev-1");
        let id = uuid::Uuid::parse_str(runs[0]["run_id"].as_str().unwrap()).unwrap();
        // The run id's time prefix is the stream's timestamp, not 0.
        let b = id.as_bytes();
        let ms = u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]);
        let since = before
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(
            ms + 1_000 >= since,
            "run {id} of {org} is not stamped with the stream's time"
        );
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
}
