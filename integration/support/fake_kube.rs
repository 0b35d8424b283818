//! A fake Kubernetes API server (axum, in-memory objects) speaking the REST protocol of the kinds the
//! provisioner manages, reached through a real `kube::Client`:
//! - `GET` one object (404 `Status` when missing) or a list with `labelSelector` (equality terms);
//! - `PATCH` with `Content-Type: application/apply-patch+yaml` and `fieldManager` (server-side apply,
//!   simplified: the applied fields replace the previous ones, server fields are kept);
//!   `resourceVersion` changes only when the object really changed, `metadata.generation` when its
//!   spec did; Deployments get an `Available` status unless [`FakeKube::hold_availability`];
//! - `DELETE` (404 when missing); deleting a Namespace deletes every object in it;
//! - the cluster-scoped `namespaces` (`/api/v1/namespaces[/{name}]`) besides the namespaced kinds;
//! - faults: the next N requests answer a given status ([`FakeKube::fail_next`]), a delay on every
//!   request, a kind whose applies are rejected with 422 ([`FakeKube::reject_kind`]);
//! - counters of mutating requests received and of real changes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[path = "fake_kube_rest.rs"]
mod rest;
use rest::{merge, set_available};

type Key = (String, String, String); // plural, namespace ("" when cluster-scoped), name

#[derive(Default)]
struct Inner {
    objects: BTreeMap<Key, Value>,
    next_rv: u64,
    mutating: u64,
    changes: u64,
    fail_next: Vec<u16>,
    delay: Duration,
    reject: HashMap<String, String>,
    hold: bool,
    managers: Vec<String>,
    require_namespaces: bool,
}

#[derive(Clone)]
pub struct FakeKube {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
    _task: Arc<tokio::task::JoinHandle<()>>,
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

impl FakeKube {
    pub async fn start() -> FakeKube {
        let inner = Arc::new(Mutex::new(Inner {
            next_rv: 1,
            ..Default::default()
        }));
        use rest::{list, list_group, list_namespaces, one, one_group, one_namespace};
        let app = Router::new()
            .route("/api/{version}/namespaces", get(list_namespaces))
            .route(
                "/api/{version}/namespaces/{name}",
                get(one_namespace)
                    .patch(one_namespace)
                    .delete(one_namespace),
            )
            .route("/api/{version}/namespaces/{ns}/{plural}", get(list))
            .route(
                "/api/{version}/namespaces/{ns}/{plural}/{name}",
                get(one).patch(one).delete(one),
            )
            .route(
                "/apis/{group}/{version}/namespaces/{ns}/{plural}",
                get(list_group),
            )
            .route(
                "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}",
                get(one_group).patch(one_group).delete(one_group),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeKube {
            inner,
            url,
            _task: Arc::new(task),
        }
    }

    /// Mutating requests received (PATCH, DELETE), including refused ones.
    pub fn mutating_requests(&self) -> u64 {
        self.inner.lock().unwrap().mutating
    }
    /// Requests that really changed an object.
    pub fn changes(&self) -> u64 {
        self.inner.lock().unwrap().changes
    }
    /// The next `n` requests (any method) answer `code`.
    pub fn fail_next(&self, n: usize, code: u16) {
        self.inner
            .lock()
            .unwrap()
            .fail_next
            .extend(std::iter::repeat_n(code, n));
    }
    /// Forgets the failures still queued by [`FakeKube::fail_next`].
    pub fn clear_failures(&self) {
        self.inner.lock().unwrap().fail_next.clear();
    }
    pub fn set_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }
    /// Applies of `plural` answer 422 with `message`.
    pub fn reject_kind(&self, plural: &str, message: &str) {
        self.inner
            .lock()
            .unwrap()
            .reject
            .insert(plural.to_owned(), message.to_owned());
    }
    /// While true, Deployments report `Available=False`.
    pub fn hold_availability(&self, hold: bool) {
        let mut inner = self.inner.lock().unwrap();
        inner.hold = hold;
        for ((plural, _, _), obj) in inner.objects.iter_mut() {
            if plural == "deployments" {
                set_available(obj, !hold);
            }
        }
    }
    /// While true, an apply into a namespace that does not exist answers 404, as a real API server
    /// does (`namespaces "x" not found`). The platform namespace must then be created first.
    pub fn require_namespaces(&self, on: bool) {
        self.inner.lock().unwrap().require_namespaces = on;
    }
    /// Field managers seen on applies.
    pub fn field_managers(&self) -> Vec<String> {
        self.inner.lock().unwrap().managers.clone()
    }
    pub fn get(&self, plural: &str, name: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        inner
            .objects
            .iter()
            .find(|((p, _, n), _)| p == plural && n == name)
            .map(|(_, v)| v.clone())
    }
    /// The object of that kind, namespace (`""` for a Namespace) and name.
    pub fn get_in(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (plural.to_owned(), namespace.to_owned(), name.to_owned());
        self.inner.lock().unwrap().objects.get(&key).cloned()
    }
    /// `(plural, namespace, name)` of every stored object.
    pub fn keys(&self) -> Vec<(String, String, String)> {
        self.inner.lock().unwrap().objects.keys().cloned().collect()
    }
    /// `(plural, name)` of every stored object.
    pub fn names(&self) -> Vec<(String, String)> {
        let inner = self.inner.lock().unwrap();
        inner
            .objects
            .keys()
            .map(|(p, _, n)| (p.clone(), n.clone()))
            .collect()
    }
    /// Someone else's edit (`kubectl edit`): a JSON merge of `patch` into the object, new resourceVersion.
    pub fn edit(&self, plural: &str, name: &str, patch: Value) {
        let mut inner = self.inner.lock().unwrap();
        inner.next_rv += 1;
        let rv = inner.next_rv.to_string();
        let obj = inner
            .objects
            .iter_mut()
            .find(|((p, _, n), _)| p == plural && n == name)
            .map(|(_, v)| v)
            .unwrap();
        merge(obj, &patch);
        obj["metadata"]["resourceVersion"] = json!(rv);
    }
    /// Someone else's delete (`kubectl delete`).
    pub fn remove(&self, plural: &str, name: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .objects
            .retain(|(p, _, n), _| !(p == plural && n == name));
    }
    /// Someone else's create, as is.
    pub fn insert(&self, plural: &str, namespace: &str, obj: Value) {
        let mut inner = self.inner.lock().unwrap();
        let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
        inner
            .objects
            .insert((plural.to_owned(), namespace.to_owned(), name), obj);
    }
}
