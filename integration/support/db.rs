//! One database per test. PostgreSQL comes from `IFOX_TEST_POSTGRES_URL` (a superuser URL of a running
//! server; `just test` starts a throwaway cluster and sets it). Without it, PostgreSQL tests fail —
//! loudly, so a CI run can never pass having skipped them.

use sqlx::Executor;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Another handle on an existing database (a second app on the same data); owns nothing.
    pub fn shared(url: &str) -> TestDb {
        TestDb {
            url: url.to_owned(),
            _dir: None,
        }
    }

    pub async fn new(kind: DbKind) -> TestDb {
        match kind {
            DbKind::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("ifox.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                }
            }
            DbKind::Postgres => {
                let admin = std::env::var("IFOX_TEST_POSTGRES_URL").expect(
                    "IFOX_TEST_POSTGRES_URL is not set: PostgreSQL tests need a server (run `just test`, which starts one)",
                );
                let name = format!("ifox_t_{}", uuid::Uuid::new_v4().simple());
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin)
                    .await
                    .expect("connect to PostgreSQL");
                pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create test database");
                pool.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                let (base, query) = match admin.split_once('?') {
                    Some((_, q)) => (base.split('?').next().unwrap_or(base), format!("?{q}")),
                    None => (base, String::new()),
                };
                TestDb {
                    url: format!("{base}/{name}{query}"),
                    _dir: None,
                }
            }
        }
    }
}

/// Makes the database refuse every process for `outage`, then gives it back: PostgreSQL refuses
/// connections to the test's database and drops the open ones; SQLite is locked exclusively (longer
/// than the 10 s busy timeout, writers fail).
pub async fn outage(kind: DbKind, db_url: &str, outage: Duration) {
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
