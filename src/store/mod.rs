//! Database access with sqlx's `Any` driver: one code path for SQLite and PostgreSQL, the backend
//! chosen by the URL. SQL here is the common dialect of both (`$n` placeholders in order, `ON CONFLICT`,
//! recursive CTEs); migrations live per backend in `migrations/<backend>/` and are embedded.
//! Statements built at run time with many parameters take their placeholders from [`marks`].
//!
//! Each submodule owns one table or aggregate and exposes plain functions over a connection, so the
//! caller decides the transaction; rows are mapped with the helpers of `row`. All of ifox's SQL lives
//! here. Nothing here decides policy (that is `tenancy` and the roles), and nothing here uses a role
//! module: rows hold `domain` types.

pub mod audit;
pub mod claims;
pub mod deployments;
pub mod history;
pub mod nodes;
pub mod provision_runs;
mod row;
pub mod run_lifecycle;
pub mod runs;
pub mod tokens;
pub mod webhook_secrets;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;

pub use sqlx::AnyConnection as Conn;
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A uniqueness rule of the database refused the write (a concurrent writer won).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Query(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The pool and which backend it talks to.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: crate::domain::Secret,
}

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static MIGRATE_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Self::connect_with(url, max_connections, true).await
    }

    /// `ping_on_acquire`: check each connection before handing it out (a stale one after a
    /// database restart is replaced instead of failing the caller's query). Hot paths that retry on
    /// their own turn it off to save a round trip per query.
    async fn connect_with(
        url: &str,
        max_connections: u32,
        ping_on_acquire: bool,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let options = AnyConnectOptions::from_str(url).map_err(StoreError::Connect)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .test_before_acquire(ping_on_acquire)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; the busy timeout makes writers
                        // queue instead of failing; foreign keys are off by default in SQLite.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000;").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Store {
            pool,
            backend,
            url: crate::domain::Secret::new(url),
        })
    }

    /// A second, independent pool on the same database, for a task that runs on its own runtime and
    /// retries failed batches itself (so no ping per acquire).
    /// An in-memory SQLite database exists once per connection pool, so it is shared, not reopened.
    pub async fn reconnect(&self, max_connections: u32) -> Result<Store, StoreError> {
        let url = self.url.expose();
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Ok(self.clone());
        }
        Store::connect_with(url, max_connections, false).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => MIGRATE_SQLITE.run(&self.pool).await?,
            Backend::Postgres => MIGRATE_POSTGRES.run(&self.pool).await?,
        }
        Ok(())
    }

    /// A write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`), so two
    /// writers queue on the busy timeout instead of deadlocking on a lock upgrade.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// `SELECT 1`: what `/readyz` asks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// The text of a statement built at run time, once per process: `name` and `n` (a list length)
/// name its shape. Batch statements keep one text per shape, so they stay in each connection's
/// prepared-statement cache (preparing a fresh 400-parameter statement per batch cost the router an
/// eighth of its SQL time).
pub(crate) fn cached_sql(
    name: &'static str,
    n: usize,
    build: impl FnOnce() -> String,
) -> std::sync::Arc<str> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Texts = HashMap<(&'static str, usize), Arc<str>>;
    static BUILT: OnceLock<Mutex<Texts>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    built
        .entry((name, n))
        .or_insert_with(|| Arc::from(build()))
        .clone()
}

/// A query built at run time on the `Any` driver.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Runs a multi-statement call that opens its own transaction (`BEGIN IMMEDIATE; …; COMMIT`) and
/// returns its rows; on any error it rolls back, so no transaction stays open on `conn`.
pub(crate) async fn fetch_all_or_rollback(
    conn: &mut Conn,
    q: AnyQuery<'_>,
) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
    match q.fetch_all(&mut *conn).await {
        Ok(rows) => Ok(rows),
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e.into())
        }
    }
}

/// `count` bind placeholders starting at position `first` (1-based), for statements built at run
/// time: `$n` on PostgreSQL, `?` on SQLite. (SQLite resolves a named `$n` by a linear search per
/// bind, which makes statements with thousands of parameters quadratic.)
pub(crate) fn marks(conn: &Conn, first: usize, count: usize) -> Vec<String> {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        vec!["?".to_owned(); count]
    } else {
        (first..first + count).map(|i| format!("${i}")).collect()
    }
}
