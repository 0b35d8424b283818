//! The REST side of the fake Kubernetes API server: the handlers of `GET`, `PATCH` (server-side
//! apply) and `DELETE` over the in-memory objects, label selectors, and the faults the test asked
//! for (see the module above for the protocol it speaks).

use super::*;

pub(super) fn merge(target: &mut Value, patch: &Value) {
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

pub(super) fn set_available(obj: &mut Value, available: bool) {
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

pub(super) async fn list_namespaces(
    State(db): State<Db>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_inner(db, String::new(), "namespaces".to_owned(), q).await
}

pub(super) async fn one_namespace(
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

pub(super) async fn list(
    State(db): State<Db>,
    Path((_v, ns, plural)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_inner(db, ns, plural, q).await
}

pub(super) async fn list_group(
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

pub(super) async fn one(
    State(db): State<Db>,
    method: Method,
    headers: HeaderMap,
    Path((_v, ns, plural, name)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    one_inner(db, method, headers, (ns, plural, name), q, body).await
}

pub(super) async fn one_group(
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
