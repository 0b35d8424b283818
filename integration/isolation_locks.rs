//! Issue 13, finding 3, played as the attacker: an org locks `/security/pii_redaction`; a team replaces,
//! removes or retypes an ancestor of it (`{"security": false}`) so the effective config loses the locked
//! value. Each write answers 403 `locked_path` naming the path, and the effective value stays. Real HTTP,
//! both databases.

use crate::support::DbKind;
use crate::support::app::{ADMIN_TOKEN, TestApp};
use serde_json::json;

async fn a_team_cannot_drop_a_locked_value_through_an_ancestor(kind: DbKind) {
    let app = TestApp::spawn(kind).await;
    app.org("acme").await;
    app.node("acme", "web", None, "team").await;
    let a = app
        .patch(
            "/api/v1/admin/orgs/acme/nodes/acme/config",
            ADMIN_TOKEN,
            json!({"security": {"pii_redaction": true, "audit": "full"}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = app
        .put(
            "/api/v1/admin/orgs/acme/nodes/acme/locks",
            ADMIN_TOKEN,
            json!({"paths": ["/security/pii_redaction"]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (team, _) = app.team_token("acme", "web").await;
    // The team first holds a sibling of its own under `security`, so removing `security` changes it.
    let a = app
        .patch(
            "/api/v1/config/me",
            &team,
            json!({"security": {"audit": "off"}}),
        )
        .await;
    assert_eq!(
        a.status, 200,
        "a sibling of a locked path is the team's: {}",
        a.body
    );

    for attack in [
        json!({"security": false}),
        json!({"security": null}),
        json!({"security": "none"}),
        json!({"security": []}),
        json!({"security": {"pii_redaction": false}}),
        json!({"security": {"pii_redaction": {"enabled": false}}}),
    ] {
        let a = app.patch("/api/v1/config/me", &team, attack.clone()).await;
        assert_eq!(a.status, 403, "{attack}: {}", a.body);
        assert_eq!(a.reason(), "locked_path", "{attack}: {}", a.body);
        assert_eq!(a.body["path"], "/security/pii_redaction", "{attack}");
        let eff = app.get("/api/v1/config/me/effective", &team).await;
        assert_eq!(
            eff.body["config"]["security"]["pii_redaction"],
            json!(true),
            "{attack}: {}",
            eff.body
        );
    }
    // The org admin writing the team node is bound by the org's lock too.
    let a = app
        .patch(
            "/api/v1/admin/orgs/acme/nodes/web/config",
            ADMIN_TOKEN,
            json!({"security": 0}),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.reason()),
        (403, "locked_path"),
        "{}",
        a.body
    );
}

crate::both_databases!(a_team_cannot_drop_a_locked_value_through_an_ancestor);
