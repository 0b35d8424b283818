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

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn set_available(obj: &mut Value, available: bool) {
    let generation = obj["metadata"]["generation"].clone();
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    obj["status"] = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "availableReplicas": if available { replicas } else { 0 },
        "conditions": [{"type": "Available", "status": if available { "True" } else { "False" }}],
    });
}

fn selector_matches(obj: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        obj["metadata"]["labels"][k.trim()].as_str() == Some(v.trim())
    })
}

type Db = Arc<Mutex<Inner>>;

async fn pre(db: &Db, mutating: bool) -> Option<Response> {
    let (delay, fail) = {
        let mut inner = db.lock().unwrap();
        if mutating {
            inner.mutating += 1;
        }
        let fail = (!inner.fail_next.is_empty()).then(|| inner.fail_next.remove(0));
        (inner.delay, fail)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    fail.map(|code| status(code, "InternalError", &format!("injected {code}")))
}

async fn list_namespaces(
    State(db): State<Db>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_inner(db, String::new(), "namespaces".to_owned(), q).await
}

async fn one_namespace(
    State(db): State<Db>,
    method: Method,
    headers: HeaderMap,
    Path((_v, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let delete = method == Method::DELETE;
    let answer = one_inner(
        db.clone(),
        method,
        headers,
        (String::new(), "namespaces".to_owned(), name.clone()),
        q,
        body,
    )
    .await;
    if delete && answer.status().is_success() {
        // The namespace controller removes what was in it.
        db.lock()
            .unwrap()
            .objects
            .retain(|(_, ns, _), _| *ns != name);
    }
    answer
}

async fn list(
    State(db): State<Db>,
    Path((_v, ns, plural)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_inner(db, ns, plural, q).await
}

async fn list_group(
    State(db): State<Db>,
    Path((_g, _v, ns, plural)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_inner(db, ns, plural, q).await
}

async fn list_inner(db: Db, ns: String, plural: String, q: HashMap<String, String>) -> Response {
    if let Some(r) = pre(&db, false).await {
        return r;
    }
    let inner = db.lock().unwrap();
    let items: Vec<Value> = inner
        .objects
        .iter()
        .filter(|((p, n, _), o)| {
            *p == plural && *n == ns && selector_matches(o, q.get("labelSelector"))
        })
        .map(|(_, o)| o.clone())
        .collect();
    let rv = inner.next_rv.to_string();
    axum::Json(json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items}))
        .into_response()
}

async fn one(
    State(db): State<Db>,
    method: Method,
    headers: HeaderMap,
    Path((_v, ns, plural, name)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    one_inner(db, method, headers, (ns, plural, name), q, body).await
}

async fn one_group(
    State(db): State<Db>,
    method: Method,
    headers: HeaderMap,
    Path((_g, _v, ns, plural, name)): Path<(String, String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    one_inner(db, method, headers, (ns, plural, name), q, body).await
}

async fn one_inner(
    db: Db,
    method: Method,
    headers: HeaderMap,
    (ns, plural, name): (String, String, String),
    q: HashMap<String, String>,
    body: Bytes,
) -> Response {
    let mutating = method != Method::GET;
    if let Some(r) = pre(&db, mutating).await {
        return r;
    }
    let key = (plural.clone(), ns, name.clone());
    let mut inner = db.lock().unwrap();
    match method {
        Method::GET => match inner.objects.get(&key) {
            Some(o) => axum::Json(o.clone()).into_response(),
            None => status(404, "NotFound", &format!("{plural} \"{name}\" not found")),
        },
        Method::DELETE => match inner.objects.remove(&key) {
            Some(o) => {
                inner.changes += 1;
                axum::Json(o).into_response()
            }
            None => status(404, "NotFound", &format!("{plural} \"{name}\" not found")),
        },
        Method::PATCH => {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if ct != "application/apply-patch+yaml" {
                return status(
                    415,
                    "UnsupportedMediaType",
                    &format!("content type {ct} is not an apply patch"),
                );
            }
            let Some(manager) = q.get("fieldManager").cloned() else {
                return status(
                    400,
                    "BadRequest",
                    "fieldManager is required for apply patch",
                );
            };
            if let Some(msg) = inner.reject.get(&plural) {
                return status(422, "Invalid", msg);
            }
            let ns = &key.1;
            let ns_key = ("namespaces".to_owned(), String::new(), ns.clone());
            if inner.require_namespaces && !ns.is_empty() && !inner.objects.contains_key(&ns_key) {
                return status(404, "NotFound", &format!("namespaces \"{ns}\" not found"));
            }
            let Ok(applied) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "the body is not YAML/JSON");
            };
            inner.managers.push(manager.clone());
            let hold = inner.hold;
            let before = inner.objects.get(&key).cloned();
            let mut next = applied;
            let (generation, created) = match &before {
                Some(b) => {
                    let g = b["metadata"]["generation"].as_i64().unwrap_or(1);
                    let spec_changed = b.get("spec") != next.get("spec");
                    (
                        if spec_changed { g + 1 } else { g },
                        b["metadata"]["creationTimestamp"].clone(),
                    )
                }
                None => (1, json!("2026-01-01T00:00:00Z")),
            };
            next["metadata"]["generation"] = json!(generation);
            next["metadata"]["creationTimestamp"] = created;
            next["metadata"]["managedFields"] = json!([{"manager": manager, "operation": "Apply"}]);
            if plural == "deployments" {
                set_available(&mut next, !hold);
            }
            let strip = |o: &Value| {
                let mut o = o.clone();
                if let Some(m) = o["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                }
                o
            };
            let changed = before.as_ref().map(strip) != Some(strip(&next));
            let rv = if changed {
                inner.next_rv += 1;
                inner.changes += 1;
                inner.next_rv.to_string()
            } else {
                before.as_ref().unwrap()["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("1")
                    .to_owned()
            };
            next["metadata"]["resourceVersion"] = json!(rv);
            inner.objects.insert(key, next.clone());
            let code = if before.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            (code, axum::Json(next)).into_response()
        }
        _ => status(405, "MethodNotAllowed", "method not allowed"),
    }
}
