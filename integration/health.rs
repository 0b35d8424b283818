//! `/healthz`, `/readyz` and `/metrics`: up, ready only with a reachable database, scrapeable.

use crate::support::DbKind;
use crate::support::app::TestApp;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn health_and_readiness_answer_and_metrics_are_exposed() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    let a = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (a.status, a.body["database"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let r = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.state.tenancy.store().pool().close().await;
    let a = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("database_unavailable")
        )
    );
}
