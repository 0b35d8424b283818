//! The admin and team HTTP API over [`crate::tenancy`]. Handlers authenticate
//! ([`crate::http::extract::Auth`]), turn the principal into a scope (which answers 404 for what the
//! caller cannot see, 403 for what it sees but may not do), call the service, and render. Paths are
//! listed in the README.

mod config;
mod me;
// The body of `POST …/route/explain`, for the property tests of `props/explain.rs`.
#[doc(hidden)]
pub use me::ExplainRequest;
mod nodes;
pub mod runs;
pub use nodes::node_json as nodes_json;
mod tokens;

use crate::http::AppState;
use axum::Router;
use axum::routing::{delete, get, post};

pub fn routes() -> Router<AppState> {
    let a = "/api/v1/admin";
    Router::new()
        .route(
            &format!("{a}/orgs"),
            post(nodes::create_org).get(nodes::list_orgs),
        )
        .route(
            &format!("{a}/orgs/{{org}}"),
            get(nodes::get_org).delete(nodes::delete_org),
        )
        .route(
            &format!("{a}/orgs/{{org}}/nodes"),
            post(nodes::create_node).get(nodes::list_nodes),
        )
        .route(
            &format!("{a}/orgs/{{org}}/nodes/{{node}}"),
            get(nodes::get_node)
                .patch(nodes::change_node)
                .delete(nodes::delete_node),
        )
        .route(
            &format!("{a}/orgs/{{org}}/nodes/{{node}}/config"),
            get(config::get_config)
                .put(config::put_config)
                .patch(config::patch_config),
        )
        .route(
            &format!("{a}/orgs/{{org}}/nodes/{{node}}/config/history"),
            get(config::config_history),
        )
        .route(
            &format!("{a}/orgs/{{org}}/nodes/{{node}}/config/rollback"),
            post(config::rollback),
        )
        .route(
            &format!("{a}/orgs/{{org}}/nodes/{{node}}/effective"),
            get(config::effective),
        )
        .route(
            &format!("{a}/orgs/{{org}}/nodes/{{node}}/locks"),
            get(config::get_locks).put(config::put_locks),
        )
        .route(&format!("{a}/orgs/{{org}}/claims"), get(nodes::claims))
        .route(&format!("{a}/orgs/{{org}}/audit"), get(nodes::audit))
        .route(
            &format!("{a}/orgs/{{org}}/tokens"),
            post(tokens::issue_org).get(tokens::list_org),
        )
        .route(
            &format!("{a}/orgs/{{org}}/tokens/{{token}}"),
            delete(tokens::revoke_org),
        )
        .route(
            &format!("{a}/orgs/{{org}}/teams/{{team}}/tokens"),
            post(tokens::issue_team).get(tokens::list_team),
        )
        .route(
            &format!("{a}/orgs/{{org}}/teams/{{team}}/tokens/{{token}}"),
            delete(tokens::revoke_team),
        )
        .route(&format!("{a}/route/lookup"), post(me::route_lookup))
        .route(&format!("{a}/route/explain"), post(me::route_explain))
        .route(
            "/api/v1/config/me",
            get(me::get_config).patch(me::patch_config),
        )
        .route("/api/v1/config/me/effective", get(me::effective))
        .route("/api/v1/config/me/runs", get(runs::list_mine))
        .route(&format!("{a}/orgs/{{org}}/runs"), get(runs::list))
        .route(&format!("{a}/orgs/{{org}}/runs/{{run}}"), get(runs::show))
        .route(
            &format!("{a}/orgs/{{org}}/runs/by-event/{{event}}"),
            get(runs::by_event),
        )
        .route("/api/v1/runs/{run}/status", post(runs::report))
}
