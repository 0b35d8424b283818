//! Durability of the router: a router process killed mid-batch loses and duplicates nothing; a
//! database outage makes events wait (NAK with delay), then they flow. Both databases.

use crate::router_fixtures::*;
use crate::support::{DbKind, NatsServer, TestApp, TestDb, eventually};
use async_nats::jetstream;
use ifox::app::Role;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TEAMS: usize = 10;

async fn setup(kind: DbKind) -> (NatsServer, TestApp, jetstream::Context) {
    let nats = NatsServer::start().await;
    let db = TestDb::new(kind).await;
    let url = nats.url();
    let admin = TestApp::spawn_roles(db, &[("IFOX__NATS__URL", &url)], &[Role::Admin]).await;
    let claims: Vec<(String, String)> = (0..TEAMS)
        .map(|i| (format!("svc-{i}"), format!("acme/svc-{i}")))
        .collect();
    let claims: Vec<(&str, &str, &str)> = claims
        .iter()
        .map(|(t, r)| (t.as_str(), "github_repos", r.as_str()))
        .collect();
    tenants(&admin, &claims).await;
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    eventually("the streams", Duration::from_secs(10), || async {
        js.get_stream("EVENTS").await.ok()
    })
    .await;
    (nats, admin, js)
}

async fn preload(js: &jetstream::Context, n: usize, prefix: &str) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut acks = Vec::new();
        for &i in chunk {
            let mut h = async_nats::HeaderMap::new();
            h.insert("ce-id", format!("{prefix}-{i}").as_str());
            h.insert("ce-source", "github");
            h.insert("ce-type", "issues");
            h.insert("Nats-Msg-Id", format!("github:{prefix}-{i}").as_str());
            h.insert(
                "ifox-route-github_repos",
                format!("acme/svc-{}", i % TEAMS).as_str(),
            );
            acks.push(
                js.publish_with_headers("ifox.events.github.issues", h, "{}".into())
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
}

/// A router process, killed when dropped (also when a test fails half-way).
struct RouterProcess(Child);

impl RouterProcess {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn router_process(db_url: &str, nats_url: &str) -> RouterProcess {
    RouterProcess(spawn_router(db_url, nats_url))
}

fn spawn_router(db_url: &str, nats_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ifox"))
        .args(["serve", "--roles", "router"])
        .env("IFOX__DATABASE__URL", db_url)
        .env("IFOX__NATS__URL", nats_url)
        .env("IFOX__HTTP__LISTEN", "127.0.0.1:0")
        .env("IFOX__LOG__LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the router process")
}

async fn killing_the_router_mid_batch_dispatches_every_event_exactly_once(kind: DbKind) {
    const N: usize = 5_000;
    let (nats, admin, js) = setup(kind).await;
    preload(&js, N, "kill").await;
    let mut router = router_process(&admin.db.url, &nats.url());
    eventually(
        "the router to be part-way through",
        Duration::from_secs(60),
        || async { (run_count(&admin).await >= 300).then_some(()) },
    )
    .await;
    router.kill();
    let at_kill = run_count(&admin).await;
    assert!(
        at_kill < N as i64,
        "killed mid-batch ({at_kill} of {N} done)"
    );

    let mut router = router_process(&admin.db.url, &nats.url());
    // Deliveries the killed process held come back after the consumer's ack_wait (30 s).
    eventually(
        "every event to be dispatched",
        Duration::from_secs(150),
        || async {
            (run_count(&admin).await == N as i64
                && stream_count(&js, "AGENT_RUNS").await == N as u64)
                .then_some(())
        },
    )
    .await;
    drained(&js, Duration::from_secs(60)).await;
    router.kill();
    assert_eq!(run_count(&admin).await, N as i64, "one run per event");
    assert_eq!(
        stream_count(&js, "AGENT_RUNS").await,
        N as u64,
        "one AGENT_RUNS message per event"
    );
    assert_eq!(stream_count(&js, "DEADLETTER").await, 0);
}

/// Makes the database refuse the router for `outage`, then gives it back.
async fn outage(kind: DbKind, db_url: &str, outage: Duration) {
    match kind {
        DbKind::Postgres => {
            let admin_url = std::env::var("IFOX_TEST_POSTGRES_URL").unwrap();
            let name = db_url
                .rsplit('/')
                .next()
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&admin_url)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
            )))
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
                .bind(&name)
                .execute(&pool)
                .await
                .unwrap();
            tokio::time::sleep(outage).await;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
            )))
            .execute(&pool)
            .await
            .unwrap();
        }
        DbKind::Sqlite => {
            // An exclusive lock held longer than the busy timeout (10 s): writers fail, then succeed.
            use sqlx::Connection;
            let mut conn = sqlx::sqlite::SqliteConnection::connect(db_url)
                .await
                .unwrap();
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut conn)
                .await
                .unwrap();
            tokio::time::sleep(outage).await;
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
        }
    }
}

async fn events_wait_while_the_database_is_down_and_flow_when_it_returns(kind: DbKind) {
    const N: usize = 50;
    let (nats, admin, js) = setup(kind).await;
    let url = nats.url();
    let router = TestApp::spawn_roles(
        TestDb::shared(&admin.db.url),
        &[("IFOX__NATS__URL", &url)],
        &[Role::Router],
    )
    .await;
    let down_for = if kind == DbKind::Sqlite {
        Duration::from_secs(12)
    } else {
        Duration::from_secs(4)
    };
    let db_url = admin.db.url.clone();
    let down = tokio::spawn(async move { outage(kind, &db_url, down_for).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    preload(&js, N, "outage").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stream_count(&js, "AGENT_RUNS").await,
        0,
        "nothing dispatched while the database is down"
    );
    assert_eq!(
        stream_count(&js, "DEADLETTER").await,
        0,
        "a database outage is not a dead letter"
    );
    down.await.unwrap();
    eventually(
        "the waiting events to flow",
        Duration::from_secs(90),
        || async {
            (run_count(&router).await == N as i64
                && stream_count(&js, "AGENT_RUNS").await == N as u64)
                .then_some(())
        },
    )
    .await;
    assert_eq!(stream_count(&js, "DEADLETTER").await, 0);
}

crate::both_databases!(
    killing_the_router_mid_batch_dispatches_every_event_exactly_once,
    events_wait_while_the_database_is_down_and_flow_when_it_returns,
);

#[tokio::test]
async fn an_event_that_exhausts_its_deliveries_is_dead_lettered_from_the_advisory() {
    let (nats, admin, js) = setup(DbKind::Postgres).await;
    let url = nats.url();
    let extra = [
        ("IFOX__NATS__URL", url.as_str()),
        ("IFOX__ROUTER__MAX_DELIVER", "2"),
    ];
    let _router =
        TestApp::spawn_roles(TestDb::shared(&admin.db.url), &extra, &[Role::Router]).await;
    let db_url = admin.db.url.clone();
    // the database stays away longer than two deliveries take
    let down =
        tokio::spawn(
            async move { outage(DbKind::Postgres, &db_url, Duration::from_secs(20)).await },
        );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seq = github_event(&js, "doomed", "acme/svc-1", &[]).await;
    let dl = last_on(
        &js,
        "DEADLETTER",
        "ifox.deadletter.router.max_deliveries",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(header(&dl, "Ifox-DL-Stream-Seq"), Some(seq.to_string()));
    assert_eq!(header(&dl, "Ifox-DL-Attempts").as_deref(), Some("2"));
    assert_eq!(header(&dl, "ce-id").as_deref(), Some("doomed"));
    down.abort();
    // give the database back for the next tests of this cluster
    outage(DbKind::Postgres, &admin.db.url, Duration::from_millis(1)).await;
}
