//! The real app, in-process, on port 0, with an HTTP client and request helpers.

use super::{DbKind, TestDb};
use ifox::app::{App, Role};
use ifox::settings::Settings;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;
use tokio_util::sync::CancellationToken;

pub const ADMIN_TOKEN: &str = "test-global-admin-token";

pub struct TestApp {
    pub base: String,
    /// `http://127.0.0.1:<port>` of the `/metrics` listener, when `IFOX__HTTP__METRICS_LISTEN` is set.
    pub metrics_base: Option<String>,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub shutdown: CancellationToken,
    pub state: ifox::http::AppState,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// An answer: status, headers and JSON body (Null when empty or not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub async fn spawn(kind: DbKind) -> TestApp {
        Self::spawn_with(kind, &[]).await
    }

    /// Spawns with extra `IFOX__…` settings.
    pub async fn spawn_with(kind: DbKind, extra: &[(&str, &str)]) -> TestApp {
        let db = TestDb::new(kind).await;
        Self::spawn_on(db, extra).await
    }

    pub async fn spawn_on(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
        Self::spawn_roles(db, extra, &Role::ALL).await
    }

    /// Spawns only `roles` (e.g. an admin-only app beside a router process).
    pub async fn spawn_roles(db: TestDb, extra: &[(&str, &str)], roles: &[Role]) -> TestApp {
        let mut env: Vec<(String, String)> = vec![
            ("IFOX__DATABASE__URL".into(), db.url.clone()),
            ("IFOX__HTTP__LISTEN".into(), "127.0.0.1:0".into()),
            ("IFOX__ADMIN__TOKEN".into(), ADMIN_TOKEN.into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings =
            Settings::load_from(Some(std::path::Path::new("/nonexistent/ifox.toml")), env)
                .expect("settings");
        let roles: BTreeSet<Role> = roles.iter().copied().collect();
        let app = App::build(settings, roles).await.expect("build app");
        let base = format!("http://127.0.0.1:{}", app.port());
        let metrics_base = app
            .metrics_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        let state = app.state().clone();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let handle = tokio::spawn(async move {
            app.run(token).await.expect("app run");
        });
        TestApp {
            base,
            metrics_base,
            client: reqwest::Client::new(),
            db,
            shutdown,
            state,
            handle: Some(handle),
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.request(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.request(Method::POST, path, Some(token), Some(&body))
            .await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.request(Method::PUT, path, Some(token), Some(&body))
            .await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.request(Method::PATCH, path, Some(token), Some(&body))
            .await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    /// Creates an org and returns nothing; panics unless 201.
    pub async fn org(&self, org: &str) {
        let a = self
            .post(
                "/api/v1/admin/orgs",
                ADMIN_TOKEN,
                serde_json::json!({"org_id": org, "name": org}),
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::CREATED,
            "create org {org}: {}",
            a.body
        );
    }

    /// Creates a node; panics unless 201.
    pub async fn node(&self, org: &str, node: &str, parent: Option<&str>, node_type: &str) {
        let body = serde_json::json!({"node_id": node, "parent_id": parent, "node_type": node_type, "name": node});
        let a = self
            .post(
                &format!("/api/v1/admin/orgs/{org}/nodes"),
                ADMIN_TOKEN,
                body,
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::CREATED,
            "create node {node}: {}",
            a.body
        );
    }

    /// Issues a team token; returns (token, token_id).
    pub async fn team_token(&self, org: &str, team: &str) -> (String, String) {
        let a = self
            .post(
                &format!("/api/v1/admin/orgs/{org}/teams/{team}/tokens"),
                ADMIN_TOKEN,
                serde_json::json!({}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        (
            a.body["token"].as_str().unwrap().to_owned(),
            a.body["token_id"].as_str().unwrap().to_owned(),
        )
    }

    /// Issues an org admin token; returns (token, token_id).
    pub async fn org_token(&self, org: &str) -> (String, String) {
        let a = self
            .post(
                &format!("/api/v1/admin/orgs/{org}/tokens"),
                ADMIN_TOKEN,
                serde_json::json!({}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        (
            a.body["token"].as_str().unwrap().to_owned(),
            a.body["token_id"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
