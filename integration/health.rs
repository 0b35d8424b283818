//! `/healthz`, `/readyz` and `/metrics`: up, ready only with a reachable database, scrapeable.

use crate::support::app::TestApp;
use crate::support::{DbKind, NatsServer, eventually};
use reqwest::{Method, StatusCode};
use std::time::Duration;

#[tokio::test]
async fn health_and_readiness_answer_and_metrics_are_exposed() {
    let nats = NatsServer::start().await;
    let app = TestApp::spawn_with(DbKind::Sqlite, &[("IFOX__NATS__URL", &nats.url())]).await;
    let a = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    // Ready once the consumers of every role consume.
    let a = eventually("ready", Duration::from_secs(20), || async {
        let a = app.request(Method::GET, "/readyz", None, None).await;
        (a.status == StatusCode::OK).then_some(a)
    })
    .await;
    assert_eq!(
        (a.body["database"].as_str(), a.body["nats"].as_str()),
        (Some("ok"), Some("ok"))
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
