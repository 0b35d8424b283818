//! Test harness: real databases (a SQLite file per test, a fresh PostgreSQL database per test), real
//! nats-server processes, and the real app served in-process on port 0.

/// Runs each named `async fn(DbKind)` test against SQLite and PostgreSQL, as `<module>::sqlite::<name>`
/// and `<module>::postgres::<name>`.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name($crate::support::DbKind::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name($crate::support::DbKind::Postgres).await })*
        }
    };
}

pub mod app;
pub mod cluster;
pub mod db;
pub mod fake_kube;
pub mod nats;
pub mod process;

pub use app::TestApp;
pub use db::{DbKind, TestDb};
pub use nats::NatsServer;

/// Polls `check` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
