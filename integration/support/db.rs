//! One database per test. PostgreSQL comes from `IFOX_TEST_POSTGRES_URL` (a superuser URL of a running
//! server; `just test` starts a throwaway cluster and sets it). Without it, PostgreSQL tests fail —
//! loudly, so a CI run can never pass having skipped them.

use sqlx::Executor;
use sqlx::postgres::PgPoolOptions;

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
