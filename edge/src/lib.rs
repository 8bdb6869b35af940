//! Edge: the HTTPS/SSE front door of the game's AI backend. `app(state)` builds the HTTP
//! application (tests call it without a socket); `http::server` runs it behind TLS with a
//! graceful drain; `worker` runs the same services for NATS.
//!
//! Where things live, top to bottom (a module imports only its own level or below; the
//! `layout` test checks it and that no import circle forms):
//! - the composition root: `main.rs`, `cli.rs`, `config.rs` (composes each module's section),
//!   `state.rs` (what requests share), `stack.rs` (the middleware order), `worker.rs`, and
//!   [`ops`] (probes, admin, janitor, telemetry, keys) and [`http::server`];
//! - [`http`]: the protocol adapters (Connect, chat, events, SSE) and TLS;
//! - [`layers`] (the middleware) and [`router`] (the service router, its local and NATS
//!   endpoints, idempotency and the token meter), and [`store`];
//! - [`nats`]: the connection, wire headers and their signatures, NATS users per role, streams,
//!   the prober, the responder;
//! - shared by all: [`error`] (status to HTTP), [`stats`] (metric names), [`trace`] (spans),
//!   [`log_lines`] (the log lines' buffer and writer), [`private_files`];
//! - below the crate: `handlers` (the services) and `proto` (the descriptors).

pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod layers;
pub mod log_lines;
pub mod nats;
pub mod ops;
pub mod private_files;
pub mod router;
pub mod stack;
pub mod state;
pub mod stats;
pub mod store;
pub mod trace;
pub mod worker;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use config::Config;
pub use router::ServiceRouter;
pub use state::AppState;

use crate::http::{chat, connect, events};
use crate::ops::health;

pub use error::BoxError;

/// The public HTTP application: one route per method of the descriptors, the middleware stack,
/// and the probes (outside the stack, so shedding or auth never fails a probe).
pub fn app(state: AppState) -> Router {
    let mut api = Router::new();
    for service in proto::SERVICES {
        for method in service.methods {
            api = api.route(
                method.path,
                post(move |s, req| connect::unary(s, method, req)),
            );
        }
    }
    let api = api
        .route("/v1/events", get(events::get))
        // Public and unauthenticated (not a method), but behind the stack: logged, CORS, shed.
        .route("/openapi.json", get(crate::http::openapi::serve))
        .fallback(connect::not_found)
        .method_not_allowed_fallback(connect::method_not_allowed)
        .with_state(state.clone());
    let openai = Router::new()
        .route("/v1/chat/completions", post(chat::completions))
        .method_not_allowed_fallback(connect::method_not_allowed)
        .with_state(state.clone());
    let probes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(Arc::clone(&state.health));
    stack::build(&state, api, openai).merge(probes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::http::{Request, StatusCode};
    use axum::body::Body;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    async fn state() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let state = AppState::open(config).await.unwrap();
        (dir, state)
    }

    async fn call(
        app: &Router,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, ::http::HeaderMap, serde_json::Value) {
        let mut req = Request::post(path).header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = app
            .clone()
            .oneshot(req.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn app_serves_without_a_socket() {
        let (_dir, state) = state().await;
        let app = app(state);
        let (status, headers, body) =
            call(&app, "/aicore.state.v1.StateService/Get", None, "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "unauthenticated");
        assert!(
            headers.contains_key("x-request-id"),
            "every answer carries a request id"
        );

        let (status, _, _) = call(
            &app,
            "/aicore.auth.v1.AuthService/Register",
            None,
            r#"{"username":"zed","password":"password-1"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (_, _, login) = call(
            &app,
            "/aicore.auth.v1.AuthService/Login",
            None,
            r#"{"username":"zed","password":"password-1"}"#,
        )
        .await;
        let token = login["accessToken"].as_str().unwrap();
        let (status, _, body) = call(
            &app,
            "/aicore.router.v1.RouterService/ListRoutes",
            Some(token),
            "{}",
        )
        .await;
        // Every service answers (none is 501); the route table is for service keys.
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["code"], "permission_denied");
        let (status, _, body) = call(
            &app,
            "/aicore.state.v1.StateService/Get",
            Some(token),
            r#"{"key":"nothing"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "not_found");
    }

    #[tokio::test]
    async fn an_in_process_principal_is_held_to_the_access_rules() {
        use crate::layers::auth::InProcess;
        let (_dir, state) = state().await;
        let app = app(state);
        let send = |scopes: &[&str], path: &str| {
            let mut req = Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"key":"k","playerId":"0123456789abcdef0123456789abcdef"}"#,
                ))
                .unwrap();
            req.extensions_mut()
                .insert(InProcess(handlers::Principal::Service {
                    name: "console".into(),
                    scopes: scopes
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect::<Vec<_>>()
                        .into(),
                }));
            app.clone().oneshot(req)
        };
        let get = "/aicore.state.v1.StateService/Get";
        let res = send(&["state"], get).await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "admitted: the key is absent"
        );
        let res = send(&["kb"], get).await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "its scopes still apply"
        );
        let res = send(&["*"], "/aicore.time.v1.TimeService/SetScale")
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "admin methods need their own scope"
        );
    }

    #[tokio::test]
    async fn probes_follow_draining() {
        let (_dir, state) = state().await;
        state.health.set_tls_loaded();
        let app = app(state.clone());
        let get = |p: &'static str| Request::get(p).body(Body::empty()).unwrap();
        assert_eq!(
            app.clone().oneshot(get("/readyz")).await.unwrap().status(),
            StatusCode::OK
        );
        state.health.start_draining();
        assert_eq!(
            app.clone().oneshot(get("/readyz")).await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            app.clone().oneshot(get("/healthz")).await.unwrap().status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_wrong_http_method_says_which_to_use() {
        let (_dir, state) = state().await;
        let app = app(state);
        for (method, path, allow, hint) in [
            (
                "GET",
                "/aicore.state.v1.StateService/Get",
                "POST",
                "application/proto",
            ),
            ("PUT", "/v1/chat/completions", "POST", "POST"),
            ("POST", "/v1/events", "GET,HEAD", "use GET"),
        ] {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(res.headers()["allow"], allow, "{method} {path}");
            let body = res.into_body().collect().await.unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            // OpenAI's shape on its path, Connect's elsewhere.
            let message = body["message"]
                .as_str()
                .or(body["error"]["message"].as_str());
            assert!(message.unwrap().contains(hint), "{body}");
        }
    }
}
