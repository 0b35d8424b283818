//! deploy/nats/permissions.conf on a real nats-server: each role's app works with its own user
//! (router: consumes an event and publishes a run; ingest: stores a webhook; production's split of
//! api, router and bridge: a webhook reaches the agent in both protocols), without a single
//! permission violation in the server's log, and a user is refused outside its permissions.

use crate::bridge_fixtures::{Agent, bridge_env, finished, issue, team};
use crate::ingest_fixtures::{GITHUB, Stack, Webhook};
use crate::router_fixtures::{github_event, json_of, last_on, run_count, tenants};
use crate::support::{DbKind, NatsServer, TestApp, TestDb, eventually};
use async_nats::jetstream;
use ifox::app::Role;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(15);
const USERS: [&str; 7] = [
    "ingest",
    "router",
    "bridge",
    "provisioner",
    "admin",
    "api",
    "all",
];

fn password(user: &str) -> String {
    format!("pw-{user}-0a9f")
}

/// nats-server with the deployed users: nats.conf includes permissions.conf as deploy/nats does,
/// and every `$IFOX_NATS_<USER>_PASSWORD` is in the server's environment.
async fn server() -> NatsServer {
    let permissions = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nats/permissions.conf");
    let vars: Vec<(String, String)> = USERS
        .iter()
        .map(|u| {
            (
                format!("IFOX_NATS_{}_PASSWORD", u.to_uppercase()),
                password(u),
            )
        })
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    NatsServer::start_with_config("include ./permissions.conf\n", &[&permissions], &env).await
}

/// The settings of an app that connects as `user`.
fn as_user<'a>(nats: &'a str, user: &'a str, pw: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("IFOX__NATS__URL", nats),
        ("IFOX__NATS__USER", user),
        ("IFOX__NATS__PASSWORD", pw),
    ]
}

/// A client of `user`, with the server's errors (permission violations) on a channel.
async fn client(
    nats: &NatsServer,
    user: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password(user))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"));
    (client, rx)
}

fn no_violations(nats: &NatsServer) {
    let log = nats.log();
    assert!(
        log.contains("Server is ready"),
        "the server logs here: {log}"
    );
    let violations: Vec<&str> = log.lines().filter(|l| l.contains("Violation")).collect();
    assert!(violations.is_empty(), "{violations:#?}");
}

async fn streams_exist(js: &jetstream::Context) {
    eventually("the app to create the streams", WAIT, || async {
        js.get_stream("AGENT_RUNS").await.ok()?;
        js.get_stream("EVENTS").await.ok()
    })
    .await;
}

#[tokio::test]
async fn the_router_user_consumes_an_event_and_publishes_its_run() {
    let nats = server().await;
    let url = nats.url();
    let (admin_pw, router_pw) = (password("admin"), password("router"));
    let admin = TestApp::spawn_roles(
        TestDb::new(DbKind::Sqlite).await,
        &as_user(&url, "admin", &admin_pw),
        &[Role::Admin],
    )
    .await;
    tenants(&admin, &[("checkout", "github_repos", "acme/checkout")]).await;
    let router = TestApp::spawn_roles(
        TestDb::shared(&admin.db.url),
        &as_user(&url, "router", &router_pw),
        &[Role::Router],
    )
    .await;
    let (ops, _) = client(&nats, "all").await;
    let ops = jetstream::new(ops);
    streams_exist(&ops).await;
    // The event comes from a publisher with the ingest user, as a webhook pod publishes it.
    let (ingest, _) = client(&nats, "ingest").await;
    github_event(&jetstream::new(ingest), "perm-1", "acme/checkout", &[]).await;
    let run = last_on(&ops, "AGENT_RUNS", "ifox.agent.shared.acme.checkout", WAIT).await;
    let doc = json_of(&run);
    assert_eq!(
        (doc["team_id"].as_str(), doc["event_id"].as_str()),
        (Some("checkout"), Some("perm-1"))
    );
    // The router's work ends at AGENT_RUNS: no database write on its way (the bridge records runs).
    assert_eq!(run_count(&admin).await, 0);
    router.stop().await;
    admin.stop().await;
    no_violations(&nats);
}

#[tokio::test]
async fn the_ingest_user_stores_a_webhook() {
    let nats = server().await;
    let url = nats.url();
    let pw = password("ingest");
    let mut env = as_user(&url, "ingest", &pw);
    env.push(("IFOX__INGEST__SECRETS__GITHUB", GITHUB));
    let app = TestApp::spawn_roles(TestDb::new(DbKind::Sqlite).await, &env, &[Role::Ingest]).await;
    let (ops, _) = client(&nats, "all").await;
    let ops = jetstream::new(ops);
    streams_exist(&ops).await;
    let hook = Webhook::github("issues", "perm-delivery-1");
    let mut req = app.client.post(format!("{}{}", app.base, hook.path));
    for (name, value) in &hook.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let res = req.body(hook.body.clone()).send().await.expect("webhook");
    assert!(res.status().is_success(), "{}", res.status());
    let mut events = ops.get_stream("EVENTS").await.unwrap();
    assert_eq!(events.info().await.unwrap().state.messages, 1);
    let stored = events.get_raw_message(1).await.unwrap();
    assert_eq!(stored.subject.as_str(), "ifox.events.github.issues");
    app.stop().await;
    no_violations(&nats);
}

/// One Deployment of deploy/production: `roles` connecting as `user`, with the bridge's settings.
async fn deployment(
    shared: &[(String, String)],
    nats: &str,
    user: &str,
    db: TestDb,
    roles: &[Role],
) -> TestApp {
    let pw = password(user);
    let mut env: Vec<(&str, &str)> = shared
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend(as_user(nats, user, &pw));
    env.push(("IFOX__INGEST__SECRETS__GITHUB", GITHUB));
    TestApp::spawn_roles(db, &env, roles).await
}

#[tokio::test]
async fn productions_api_router_and_bridge_users_deliver_a_webhook_to_the_agent() {
    let agent = Agent::start(ifox::bridge::echo::EchoOptions::default()).await;
    let nats = server().await;
    let url = nats.url();
    let shared = bridge_env(&agent);
    let api = deployment(
        &shared,
        &url,
        "api",
        TestDb::new(DbKind::Sqlite).await,
        &[Role::Admin, Role::Ingest],
    )
    .await;
    let (ops, _) = client(&nats, "all").await;
    let stack = Stack {
        nats,
        app: api,
        js: jetstream::new(ops),
    };
    // The teams first: the other replicas load them at start (change notices reach only a replica
    // that has subscribed already).
    let teams = [
        ("perm-sse", serde_json::json!({})),
        ("perm-ifox", serde_json::json!({"agent_protocol": "ifox"})),
    ];
    for (name, config) in &teams {
        team(&stack, name, config.clone()).await;
    }
    let db = stack.app.db.url.clone();
    let router = deployment(
        &shared,
        &url,
        "router",
        TestDb::shared(&db),
        &[Role::Router],
    )
    .await;
    // Agents of the ifox protocol report to the admin API, which only the api Deployment serves.
    let mut bridge_env = shared.clone();
    bridge_env.push(("IFOX__BRIDGE__PUBLIC_URL".into(), stack.app.base.clone()));
    let bridge = deployment(
        &bridge_env,
        &url,
        "bridge",
        TestDb::shared(&db),
        &[Role::Bridge, Role::Recorder],
    )
    .await;
    streams_exist(&stack.js).await;
    for (name, _) in &teams {
        let a = stack.send(&issue(name, &format!("d-{name}"))).await;
        assert!(a.status.is_success(), "{name}: {} {}", a.status, a.body);
        let run = finished(&stack, &format!("d-{name}"), WAIT).await;
        assert_eq!(run["status"], "completed", "{name}: {run}");
    }
    assert_eq!(agent.requests().len(), 2);
    bridge.stop().await;
    router.stop().await;
    let Stack { nats, app, .. } = stack;
    app.stop().await;
    no_violations(&nats);
}

/// Publishes `subject` as `user` and returns the server's answer: the permission error.
async fn refused(nats: &NatsServer, user: &str, subject: &str) -> String {
    let (client, mut errors) = client(nats, user).await;
    client
        .publish(subject.to_owned(), "{}".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    tokio::time::timeout(WAIT, errors.recv())
        .await
        .unwrap_or_else(|_| panic!("{user} publishing {subject} was not refused"))
        .unwrap()
}

#[tokio::test]
async fn each_user_is_refused_outside_its_permissions() {
    let nats = server().await;
    for (user, subject) in [
        // a webhook pod cannot forge agent runs
        ("ingest", "ifox.agent.shared.acme.checkout"),
        // the bridge cannot inject events
        ("bridge", "ifox.events.github.issues"),
        // the router cannot delete a stream, although it may create and update them
        ("router", "$JS.API.STREAM.DELETE.EVENTS"),
        // nor request provisioning (admin's)
        ("router", "ifox.provision.acme.checkout"),
    ] {
        let error = refused(&nats, user, subject).await;
        assert!(
            error.contains(&format!(
                "Permissions Violation for Publish to \"{subject}\""
            )),
            "{user} on {subject}: {error}"
        );
    }
    // nats-server logs each refusal with its user (what docs/nats-permissions.md tells to look for)
    let log = nats.log();
    assert!(
        log.contains(
            "user:ingest\" - Publish Violation - Subject \"ifox.agent.shared.acme.checkout\""
        ),
        "{log}"
    );
    // and a user's password is its own
    let wrong =
        async_nats::ConnectOptions::with_user_and_password("ingest".into(), password("all"))
            .connect(nats.url())
            .await
            .expect_err("a wrong password is refused");
    assert_eq!(
        wrong.kind(),
        async_nats::ConnectErrorKind::AuthorizationViolation
    );
}
