//! The admin listener (loopback by default): Prometheus metrics, the route table, the effective
//! config, service API keys, probes, and the operators' console (`/console`, not on workers). Anyone who can reach it administers this edge: keep it on loopback.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::ops::health;
use crate::state::AppState;

/// The route table, derived from the descriptors and the router's endpoints.
pub fn routes_json(state: &AppState) -> Value {
    let routes: Vec<Value> = proto::SERVICES
        .iter()
        .map(|s| {
            let endpoint = state.router.endpoint(s.index);
            json!({
                "service": s.short,
                "fullName": s.full_name,
                "target": endpoint.map_or("none", |e| e.kind()),
                "healthy": endpoint.is_some_and(|e| e.healthy()),
                "responders": endpoint.and_then(|e| e.responders()),
                "subjectPrefix": state.config.routes.prefix(s),
                "doc": s.doc,
                // The dependency graph, from each service's `calls` option.
                "calls": s.calls,
                "calledBy": s.called_by().map(|c| c.short).collect::<Vec<_>>(),
                "methods": s.methods.iter().map(|m| json!({
                    "name": m.name,
                    "path": m.path,
                    "input": m.input_type,
                    "output": m.output_type,
                    "serverStreaming": m.server_streaming,
                    "access": m.access.as_str(),
                    "mutates": m.mutates,
                    "subject": state.config.routes.subject(m),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "routes": routes })
}

async fn routes(State(state): State<AppState>) -> Response {
    Json(routes_json(&state)).into_response()
}

async fn config(State(state): State<AppState>) -> Response {
    match state.config.to_toml() {
        Ok(text) => ([(http::header::CONTENT_TYPE, "application/toml")], text).into_response(),
        Err(e) => crate::error::status_response(&handlers::Status::internal(e)),
    }
}

/// Why the admin listener could not bind, with the likely fix when the port is taken (an edge
/// and a worker on one host both default to 127.0.0.1:9901).
pub fn bind_error(addr: std::net::SocketAddr, e: &std::io::Error) -> String {
    let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
        "; is another edge or worker running here? give this one its own --admin-listen"
    } else {
        ""
    };
    format!("cannot listen on {addr} (admin): {e}{hint}")
}

/// Prometheus text. Gauges that are state elsewhere are read now rather than kept per request.
pub async fn metrics(State(state): State<AppState>) -> Response {
    use crate::stats::{set_gauge, set_service_gauge};
    set_gauge(
        "edge_requests_in_flight",
        state.admission.in_flight() as f64,
    );
    set_gauge("edge_sse_streams_open", state.api.streams.open() as f64);
    crate::stats::set_total(
        "edge_log_lines_dropped_total",
        super::telemetry::dropped_lines(),
    );
    if let Some(client) = &state.nats {
        set_gauge(
            "edge_nats_connected",
            f64::from(u8::from(crate::nats::connected(client))),
        );
    }
    for s in proto::SERVICES {
        if let Some(n) = state.router.endpoint(s.index).and_then(|e| e.responders()) {
            set_service_gauge("edge_nats_responders", s.short, n as f64);
        }
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::stats::render(),
    )
        .into_response()
}

/// A worker's admin router: probes and metrics.
pub fn worker_app(state: AppState) -> Router {
    let probes = probes(&state);
    let guard = crate::ops::admin_guard::AdminGuardLayer::layer(state.config.admin_token.as_ref());
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(probes)
        // Outermost: nothing on this listener answers a rebound host or a cross-origin form.
        .layer(guard)
}

fn probes(state: &AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state.health.clone())
}

/// The admin router, for the listener bound to `port` (the console's cookie carries it).
pub fn app(state: AppState, port: u16) -> Router {
    let probes = probes(&state);
    let console = crate::ops::console::app(state.clone(), port);
    Router::new()
        .route("/admin/routes", get(routes))
        .route("/admin/config", get(config))
        .route("/metrics", get(metrics))
        .route(
            "/admin/keys",
            get(crate::ops::keys::admin_list).post(crate::ops::keys::admin_create),
        )
        .route(
            "/admin/keys/{name}/revoke",
            axum::routing::post(crate::ops::keys::admin_revoke),
        )
        .with_state(state.clone())
        .merge(probes)
        .merge(console)
        // Outermost: nothing on this listener answers a rebound host or a cross-origin form.
        .layer(crate::ops::admin_guard::AdminGuardLayer::layer(
            state.config.admin_token.as_ref(),
        ))
}
