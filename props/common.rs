//! What the targets share: generators of hostile text, bytes, JSON and header maps, and one tenancy
//! catalog (SQLite in a temporary folder, built once through the real tenancy service) for the
//! properties that route events.

use ifox::domain::routing::IdentifierKind;
use ifox::domain::{NodeId, NodeType, OrgId};
use ifox::store::Store;
use ifox::tenancy::scope::cli_scope;
use ifox::tenancy::{Catalog, ConfigWrite, NewNode, Tenancy};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::sync::{Arc, OnceLock};

/// Text as a hostile caller sends it: mostly printable ASCII (so parsers get past their first
/// check), sometimes any Unicode, control characters and separators included.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[ -~]{0,24}",
        2 => "[a-z0-9./,:=_ -]{0,16}",
        1 => any::<String>(),
        1 => "[\\x00-\\x1f\\x7f,;=\"\\\\]{0,6}",
    ]
    .boxed()
}

/// Any bytes, up to `max`.
pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Object keys from a small alphabet, so generated documents share paths and collide.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "c", "0", "a/b", "~", "routing", "llm"])
            .prop_map(str::to_owned),
        1 => text(),
    ]
}

/// A JSON scalar, strings from [`text`].
pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9..1e9f64).prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ]
}

/// Any JSON document: nested up to 4 levels, up to 6 members per level.
pub fn json_value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

/// A JSON object (what every config and most webhook bodies are).
pub fn json_object() -> BoxedStrategy<Value> {
    prop::collection::vec((key(), json_value()), 0..6)
        .prop_map(|members| Value::Object(members.into_iter().collect()))
        .boxed()
}

/// `value` with the members `set` written at their JSON Pointer paths (objects made on the way),
/// so a generated body has the provider's shape with hostile values where the parser looks.
pub fn with_paths(mut value: Value, set: Vec<(&'static str, Value)>) -> Value {
    for (path, v) in set {
        let mut at = &mut value;
        for part in path.trim_start_matches('/').split('/') {
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            let Value::Object(map) = at else {
                unreachable!("made an object above")
            };
            at = map.entry(part.to_owned()).or_insert(Value::Null);
        }
        *at = v;
    }
    value
}

/// A header value's bytes as HTTP lets them through: any byte but control characters (tab allowed).
pub fn header_value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[ -~]{0,40}".prop_map(String::into_bytes),
        1 => prop::collection::vec(
            prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff],
            0..40
        ),
    ]
}

/// One of the values the fixture's teams claim (so generated events route), or any text.
pub fn identifier_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "acme/api", "Acme/API", "acme", "C1", "T1", "PSVC1", "src-1", "checkout", "globex/web",
            "C1,PSVC1", " C1 ", "",
        ])
        .prop_map(str::to_owned),
        1 => text(),
    ]
}

pub fn identifier_kind() -> impl Strategy<Value = IdentifierKind> {
    prop::sample::select(IdentifierKind::ALL.to_vec())
}

/// The fixture's tenancy: org `acme` (team `payments`: shared, claims a repo, its owner, a Slack
/// channel and workspace, a PagerDuty service, an incident.io alert source and `checkout`; team
/// `search`: dedicated) and org `globex` (team `ops` claims channel `C1` too, so `C1` alone is
/// ambiguous, and `checkout`).
pub fn catalog() -> &'static Arc<Catalog> {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(Fixture::build).tenancy.catalog()
}

struct Fixture {
    // Kept alive: the pool's tasks run on it and the database lives in the folder.
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    tenancy: Tenancy,
}

impl Fixture {
    fn build() -> Fixture {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("props.db").display()
        );
        let tenancy = runtime.block_on(async {
            let store = Store::connect(&url, 2).await.expect("sqlite");
            store.migrate().await.expect("migrations");
            let t = Tenancy::open(store, None).await.expect("tenancy");
            team(
                &t,
                "acme",
                "payments",
                json!({"routing": {
                "github_repos": ["acme/api"], "github_owners": ["acme"],
                "slack_channel_ids": ["C1"], "slack_workspace_ids": ["T1"],
                "pagerduty_service_ids": ["PSVC1"], "incidentio_alert_source_ids": ["src-1"],
                "service_names": ["checkout"]}}),
            )
            .await;
            team(
                &t,
                "acme",
                "search",
                json!({
                "agent_service_url": "http://agent-search.acme:8080",
                "routing": {"github_repos": ["acme/search"]}}),
            )
            .await;
            team(
                &t,
                "globex",
                "ops",
                json!({"routing": {
                "slack_channel_ids": ["C1"], "service_names": ["checkout"],
                "github_repos": ["globex/web"]}}),
            )
            .await;
            t
        });
        Fixture {
            _runtime: runtime,
            _dir: dir,
            tenancy,
        }
    }
}

async fn team(t: &Tenancy, org: &str, team: &str, config: Value) {
    let org = OrgId::parse(org).expect("org id");
    if !t.catalog().has_org(&org) {
        t.create_org("props", &org, org.as_str())
            .await
            .expect("org");
    }
    let scope = cli_scope(&org);
    let node = NodeId::parse(team).expect("team id");
    let new = NewNode {
        node_id: node.clone(),
        parent_id: None,
        node_type: NodeType::Team,
        name: None,
    };
    t.create_node(&scope, new).await.expect("team");
    t.write_config(&scope, &node, ConfigWrite::Patch(config), None)
        .await
        .expect("config");
}
