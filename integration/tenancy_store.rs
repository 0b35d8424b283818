//! The tenancy rules against both databases, through the service (no HTTP): the same story on SQLite
//! and PostgreSQL.

use crate::support::{DbKind, TestDb};
use ifox::domain::routing::{Identifier, IdentifierKind, RouteOutcome};
use ifox::domain::{NodeId, NodeType, OrgId};
use ifox::store::Store;
use ifox::tenancy::scope::cli_scope;
use ifox::tenancy::{ConfigWrite, NewNode, NodeChange, Tenancy, TenancyError};
use serde_json::json;

pub(crate) fn org(s: &str) -> OrgId {
    OrgId::parse(s).unwrap()
}
pub(crate) fn id(s: &str) -> NodeId {
    NodeId::parse(s).unwrap()
}

pub(crate) async fn tenancy(kind: DbKind) -> (Tenancy, TestDb) {
    let db = TestDb::new(kind).await;
    let store = Store::connect(&db.url, 10).await.unwrap();
    store.migrate().await.unwrap();
    (Tenancy::open(store, None).await.unwrap(), db)
}

pub(crate) async fn node(t: &Tenancy, o: &str, n: &str, parent: Option<&str>, node_type: NodeType) {
    let new = NewNode {
        node_id: id(n),
        parent_id: parent.map(id),
        node_type,
        name: None,
    };
    t.create_node(&cli_scope(&org(o)), new).await.unwrap();
}

/// acme → platform (unit) → payments (team), search (team)
pub(crate) async fn acme(t: &Tenancy) {
    t.create_org("test", &org("acme"), "Acme").await.unwrap();
    node(t, "acme", "platform", None, NodeType::Unit).await;
    node(t, "acme", "payments", Some("platform"), NodeType::Team).await;
    node(t, "acme", "search", Some("platform"), NodeType::Team).await;
}

async fn tree_moves_refuse_cycles_and_renames_stick(kind: DbKind) {
    let (t, _db) = tenancy(kind).await;
    acme(&t).await;
    let s = cli_scope(&org("acme"));
    node(&t, "acme", "infra", Some("platform"), NodeType::Unit).await;
    let err = t
        .change_node(
            &s,
            &id("platform"),
            NodeChange {
                parent_id: Some(id("infra")),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(
            err,
            Err(TenancyError::Invalid {
                reason: "cycle",
                ..
            })
        ),
        "{err:?}"
    );
    let err = t
        .change_node(
            &s,
            &id("infra"),
            NodeChange {
                parent_id: Some(id("payments")),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(
            err,
            Err(TenancyError::Invalid {
                reason: "parent_is_team",
                ..
            })
        ),
        "{err:?}"
    );
    let moved = t
        .change_node(
            &s,
            &id("search"),
            NodeChange {
                parent_id: Some(id("infra")),
                name: Some("Search".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (moved.parent_id, moved.name.as_str()),
        (Some(id("infra")), "Search")
    );
    let all = t.list_nodes(&s).await.unwrap();
    assert_eq!(all.len(), 5);
    let err = t
        .create_node(
            &s,
            NewNode {
                node_id: id("payments"),
                parent_id: None,
                node_type: NodeType::Team,
                name: None,
            },
        )
        .await;
    assert!(
        matches!(err, Err(TenancyError::AlreadyExists { .. })),
        "{err:?}"
    );
}

async fn delete_is_refused_while_children_or_claims_exist_unless_cascading(kind: DbKind) {
    let (t, _db) = tenancy(kind).await;
    acme(&t).await;
    let s = cli_scope(&org("acme"));
    t.write_config(
        &s,
        &id("payments"),
        ConfigWrite::Patch(json!({"routing": {"slack_channel_ids": ["C1"]}})),
        None,
    )
    .await
    .unwrap();
    let err = t.delete_node(&s, &id("platform"), false).await;
    assert!(
        matches!(
            err,
            Err(TenancyError::HasDependents {
                reason: "has_children",
                ..
            })
        ),
        "{err:?}"
    );
    let err = t.delete_node(&s, &id("payments"), false).await;
    assert!(
        matches!(
            err,
            Err(TenancyError::HasDependents {
                reason: "has_claims",
                ..
            })
        ),
        "{err:?}"
    );
    let (token, _) = {
        let i = t
            .issue_token(&s, Some(&id("payments")), None, None)
            .await
            .unwrap();
        (i.token, i.view.token_id)
    };
    let deleted = t.delete_node(&s, &id("platform"), true).await.unwrap();
    assert_eq!(deleted.len(), 3);
    assert_eq!(t.list_nodes(&s).await.unwrap().len(), 1);
    assert!(t.list_claims(&s).await.unwrap().is_empty());
    assert_eq!(
        t.catalog().route(
            &[Identifier::new(IdentifierKind::SlackChannelIds, "C1")],
            &[]
        ),
        RouteOutcome::NotFound
    );
    let err = t.authenticate(Some(&token)).await;
    assert!(
        matches!(
            err,
            Err(TenancyError::Unauthorized {
                reason: "token_revoked"
            })
        ),
        "{err:?}"
    );
}

async fn config_writes_keep_history_and_roll_back(kind: DbKind) {
    let (t, _db) = tenancy(kind).await;
    acme(&t).await;
    let s = cli_scope(&org("acme"));
    let (c, v) = t
        .write_config(
            &s,
            &id("payments"),
            ConfigWrite::Patch(json!({"a": 1, "b": {"c": 2}})),
            None,
        )
        .await
        .unwrap();
    assert_eq!((c, v), (json!({"a": 1, "b": {"c": 2}}), 2));
    let (c, v) = t
        .write_config(
            &s,
            &id("payments"),
            ConfigWrite::Patch(json!({"a": null, "b": {"d": 3}})),
            None,
        )
        .await
        .unwrap();
    assert_eq!((c, v), (json!({"b": {"c": 2, "d": 3}}), 3));
    let (c, v) = t
        .write_config(
            &s,
            &id("payments"),
            ConfigWrite::Replace(json!({"z": true})),
            None,
        )
        .await
        .unwrap();
    assert_eq!((c, v), (json!({"z": true}), 4));
    let unchanged = t
        .write_config(
            &s,
            &id("payments"),
            ConfigWrite::Patch(json!({"z": true})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        unchanged.1, 4,
        "a write that changes nothing keeps the version"
    );
    let (c, v) = t
        .write_config(&s, &id("payments"), ConfigWrite::Rollback(2), None)
        .await
        .unwrap();
    assert_eq!((c, v), (json!({"a": 1, "b": {"c": 2}}), 5));
    let history = t.config_history(&s, &id("payments")).await.unwrap();
    assert_eq!(
        history.iter().map(|h| h.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(history[2].diff, json!({"a": null, "b": {"d": 3}}));
    assert!(history.iter().skip(1).all(|h| h.actor == "cli"));
    let err = t
        .write_config(
            &s,
            &id("payments"),
            ConfigWrite::Patch(json!({"x": 1})),
            Some(4),
        )
        .await;
    assert!(
        matches!(err, Err(TenancyError::VersionMismatch { current: 5, .. })),
        "{err:?}"
    );
    let err = t
        .write_config(&s, &id("payments"), ConfigWrite::Rollback(99), None)
        .await;
    assert!(matches!(err, Err(TenancyError::NotFound { .. })), "{err:?}");
}

async fn effective_config_merges_down_the_tree_and_matches_the_database(kind: DbKind) {
    let (t, _db) = tenancy(kind).await;
    acme(&t).await;
    let s = cli_scope(&org("acme"));
    t.write_config(
        &s,
        &id("acme"),
        ConfigWrite::Patch(json!({"llm": {"model": "m1", "t": 0}, "tools": ["a"]})),
        None,
    )
    .await
    .unwrap();
    t.write_config(
        &s,
        &id("platform"),
        ConfigWrite::Patch(json!({"llm": {"model": "m2"}})),
        None,
    )
    .await
    .unwrap();
    t.write_config(
        &s,
        &id("payments"),
        ConfigWrite::Patch(json!({"tools": ["b"]})),
        None,
    )
    .await
    .unwrap();
    let (eff, sources) = t.effective(&s, &id("payments"), true).unwrap();
    assert_eq!(
        eff.config,
        json!({"llm": {"model": "m2", "t": 0}, "tools": ["b"]})
    );
    assert_eq!(eff.version, "2.2.2");
    let sources = sources.unwrap();
    assert_eq!(
        (
            sources["/llm/model"].as_str(),
            sources["/llm/t"].as_str(),
            sources["/tools"].as_str()
        ),
        ("platform", "acme", "payments")
    );
    let from_db = t.effective_from_db(&s, &id("payments")).await.unwrap();
    assert_eq!(&from_db, eff.as_ref());
    // a change higher up reaches the cached effective config of the team below
    t.write_config(
        &s,
        &id("platform"),
        ConfigWrite::Patch(json!({"llm": {"model": "m3"}})),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        t.effective(&s, &id("payments"), false).unwrap().0.config["llm"]["model"],
        "m3"
    );
}

async fn a_locked_path_cannot_be_changed_below_the_lock(kind: DbKind) {
    let (t, _db) = tenancy(kind).await;
    acme(&t).await;
    let s = cli_scope(&org("acme"));
    t.set_locks(&s, &id("platform"), vec!["/llm/model".into()])
        .await
        .unwrap();
    let err = t
        .write_config(
            &s,
            &id("payments"),
            ConfigWrite::Patch(json!({"llm": {"model": "cheap"}})),
            None,
        )
        .await;
    match err {
        Err(TenancyError::Locked { path, locked_by }) => assert_eq!(
            (path.as_str(), locked_by.as_str()),
            ("/llm/model", "platform")
        ),
        other => panic!("expected a lock refusal, got {other:?}"),
    }
    assert_eq!(
        t.get_config(&s, &id("payments")).await.unwrap(),
        (json!({}), 1),
        "nothing written"
    );
    t.write_config(
        &s,
        &id("payments"),
        ConfigWrite::Patch(json!({"llm": {"temperature": 1}})),
        None,
    )
    .await
    .unwrap();
    t.write_config(
        &s,
        &id("platform"),
        ConfigWrite::Patch(json!({"llm": {"model": "m"}})),
        None,
    )
    .await
    .unwrap();
    let err = t.set_locks(&s, &id("payments"), vec!["/x".into()]).await;
    assert!(
        matches!(
            err,
            Err(TenancyError::Invalid {
                reason: "team_cannot_lock",
                ..
            })
        ),
        "{err:?}"
    );
}

crate::both_databases!(
    tree_moves_refuse_cycles_and_renames_stick,
    delete_is_refused_while_children_or_claims_exist_unless_cascading,
    config_writes_keep_history_and_roll_back,
    effective_config_merges_down_the_tree_and_matches_the_database,
    a_locked_path_cannot_be_changed_below_the_lock,
);
