//! Claims and tokens against both databases, through the service: uniqueness decided by the database
//! (also under concurrent writers), token lifecycle, hashes only.

use crate::support::DbKind;
use crate::tenancy_store::{acme, id, node, org, tenancy};
use ifox::domain::NodeType;
use ifox::domain::routing::{Identifier, IdentifierKind, RouteOutcome};
use ifox::domain::token::Principal;
use ifox::tenancy::scope::cli_scope;
use ifox::tenancy::{ConfigWrite, TenancyError};
use serde_json::json;

async fn a_claim_held_by_another_team_is_refused_and_nothing_is_written(kind: DbKind) {
    let (t, _db) = tenancy(kind).await;
    acme(&t).await;
    let s = cli_scope(&org("acme"));
    t.write_config(
        &s,
        &id("payments"),
        ConfigWrite::Patch(json!({"routing": {"github_repos": ["Acme/Pay"]}})),
        None,
    )
    .await
    .unwrap();
    let err = t
        .write_config(
            &s,
            &id("search"),
            ConfigWrite::Patch(json!({"x": 1, "routing": {"github_repos": [" acme/pay "]}})),
            None,
        )
        .await;
    match err {
        Err(TenancyError::ClaimConflict { identifier, team }) => {
            assert_eq!(
                (identifier.value.as_str(), team.as_str()),
                ("acme/pay", "payments")
            );
        }
        other => panic!("expected a claim conflict, got {other:?}"),
    }
    assert_eq!(
        t.get_config(&s, &id("search")).await.unwrap(),
        (json!({}), 1)
    );
    // another org may claim the same repo; the lookup then needs a hint
    t.create_org("test", &org("globex"), "Globex")
        .await
        .unwrap();
    node(&t, "globex", "g", None, NodeType::Team).await;
    t.write_config(
        &cli_scope(&org("globex")),
        &id("g"),
        ConfigWrite::Patch(json!({"routing": {"github_repos": ["acme/pay"]}})),
        None,
    )
    .await
    .unwrap();
    let ids = [Identifier::new(IdentifierKind::GithubRepos, "ACME/PAY")];
    assert!(matches!(
        t.catalog().route(&ids, &[]),
        RouteOutcome::Ambiguous { .. }
    ));
    assert!(
        matches!(t.catalog().route(&ids, &[org("globex")]), RouteOutcome::Found { team_id, .. } if team_id == id("g"))
    );
}

async fn concurrent_writers_claiming_one_identifier_cannot_both_win(kind: DbKind) {
    let (t, _db) = tenancy(kind).await;
    t.create_org("test", &org("acme"), "Acme").await.unwrap();
    let teams: Vec<String> = (0..8).map(|i| format!("team-{i}")).collect();
    for team in &teams {
        node(&t, "acme", team, None, NodeType::Team).await;
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(teams.len()));
    let tasks: Vec<_> = teams
        .iter()
        .map(|team| {
            let (t, barrier, team) = (t.clone(), barrier.clone(), id(team));
            tokio::spawn(async move {
                barrier.wait().await;
                let patch = json!({"routing": {"pagerduty_service_ids": ["PSVC1"]}});
                t.write_config(
                    &cli_scope(&org("acme")),
                    &team,
                    ConfigWrite::Patch(patch),
                    None,
                )
                .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(TenancyError::ClaimConflict { .. }) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one writer owns the identifier");
    let claims = t.list_claims(&cli_scope(&org("acme"))).await.unwrap();
    assert_eq!(claims.len(), 1);
}

async fn tokens_authenticate_until_revoked_and_only_hashes_are_stored(kind: DbKind) {
    let (t, _db) = tenancy(kind).await;
    acme(&t).await;
    let s = cli_scope(&org("acme"));
    let issued = t
        .issue_token(&s, Some(&id("payments")), Some("ci".into()), None)
        .await
        .unwrap();
    assert!(issued.token.starts_with("acme.payments."));
    let p = t.authenticate(Some(&issued.token)).await.unwrap();
    assert_eq!(
        p,
        Principal::Team {
            org: org("acme"),
            team: id("payments"),
            token_id: issued.view.token_id.clone()
        }
    );
    let listed = t.list_tokens(&s, Some(&id("payments"))).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "last use is recorded");
    let stored: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM tokens")
        .fetch_all(t.store().pool())
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|(h,)| !h.contains(&issued.token) && h.len() == 64)
    );
    let org_token = t.issue_token(&s, None, None, None).await.unwrap();
    assert!(matches!(
        t.authenticate(Some(&org_token.token)).await.unwrap(),
        Principal::OrgAdmin { .. }
    ));
    t.revoke_token(&s, Some(&id("payments")), &issued.view.token_id)
        .await
        .unwrap();
    let err = t.authenticate(Some(&issued.token)).await;
    assert!(
        matches!(
            err,
            Err(TenancyError::Unauthorized {
                reason: "token_revoked"
            })
        ),
        "{err:?}"
    );
    let forged = format!("acme.payments.{}", "A".repeat(43));
    assert!(matches!(
        t.authenticate(Some(&forged)).await,
        Err(TenancyError::Unauthorized {
            reason: "invalid_token"
        })
    ));
    let audit = t.audit_log(&s, 100).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "token.revoke" && e.actor == "cli")
    );
    assert!(
        audit
            .iter()
            .all(|e| !e.detail.to_string().contains(&issued.token))
    );
}

crate::both_databases!(
    a_claim_held_by_another_team_is_refused_and_nothing_is_written,
    concurrent_writers_claiming_one_identifier_cannot_both_win,
    tokens_authenticate_until_revoked_and_only_hashes_are_stored,
);
