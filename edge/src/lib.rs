//! Edge: the HTTPS/SSE front door of the game's AI backend. `app(state)` builds the HTTP
//! application (tests call it without a socket); `server` runs it behind TLS with a graceful drain.

pub mod access_log;
pub mod admin;
pub mod admin_guard;
pub mod admission;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod connect;
pub mod error;
pub mod events;
pub mod health;
pub mod healthcheck;
pub mod idempotency;
pub mod janitor;
pub mod keys;
pub mod llm;
pub mod nats;
pub mod panic;
pub mod private_files;
pub mod quota;
pub mod ratelimit;
pub mod request_id;
pub mod router;
pub mod server;
pub mod sse;
pub mod stack;
pub mod stats;
pub mod telemetry;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use handlers::Deps;
use handlers::auth::{ApiKeys, AuthConfig, AuthService};
use handlers::store::{JetStreamStore, RedbStore, Store};

pub use config::Config;
pub use router::ServiceRouter;

/// A boxed error for startup failures, shown to the operator as is.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What every request handler shares: one `Arc`, so a request clones one pointer.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
pub struct Shared {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The service router (its route table).
    pub router: ServiceRouter,
    /// Where calls go: the router behind the LLM token meter, behind idempotency records.
    pub calls: idempotency::Idempotency<quota::TokenMeter<ServiceRouter>>,
    /// Open SSE streams and their limits.
    pub streams: Arc<sse::Streams>,
    /// Token verification.
    pub auth: Arc<AuthService>,
    /// Service API keys.
    pub keys: Arc<ApiKeys>,
    /// Readiness.
    pub health: Arc<health::Health>,
    /// The NATS connection, when one is configured.
    pub nats: Option<async_nats::Client>,
    /// In-flight limits and bulkheads.
    pub admission: Arc<admission::Admission>,
    /// Rate limiters (shared by every connection).
    pub limits: Arc<ratelimit::RateLimits>,
    /// 401s per client address (see auth.rs).
    pub bad_credentials: Arc<handlers::leaky::Leaky<std::net::IpAddr>>,
    /// Remote services and their responder counters, for the prober.
    pub probes: Vec<(&'static str, nats::probe::Responders)>,
    deps: Deps,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Connects to NATS (if configured), opens the configured store and builds the services.
    pub async fn open(config: Config) -> Result<AppState, BoxError> {
        let (store, nats) = open_store(&config).await.map_err(|e| e.to_string())?;
        AppState::build(config, store, nats).await
    }

    /// Builds the services over an existing store and NATS connection.
    pub async fn build(
        config: Config,
        store: Arc<dyn Store>,
        nats: Option<nats::Nats>,
    ) -> Result<AppState, BoxError> {
        let auth_config = AuthConfig {
            access_ttl: config.auth.access_token_ttl,
            refresh_ttl: config.auth.refresh_token_ttl,
            login_limits: handlers::auth::guard::LoginLimits {
                per_address: config.auth.login_failures_per_address,
                per_account: config.auth.login_failures_per_account,
                per_device: config.auth.login_failures_per_device,
            },
            ..AuthConfig::default()
        };
        let auth = Arc::new(
            AuthService::new(Arc::clone(&store), auth_config)
                .await
                .map_err(|e| format!("cannot load token signing keys: {e}"))?,
        );
        let events = events::open_log(&config, &store, nats.as_ref().map(|n| &n.client)).await?;
        let prices = handlers::payment::Catalog::load(config.content.price_catalog.as_deref())
            .map_err(|e| format!("price catalog: {e}"))?;
        let deps = Deps {
            store: Arc::clone(&store),
            events,
            prices: Arc::new(prices),
            state_limits: config.state.limits(),
            auth: Arc::clone(&auth),
            providers: llm::providers(
                &config.llm,
                nats.as_ref().map(|n| {
                    Arc::new(llm::NatsProvider::new(
                        n.clone(),
                        config.nats.request_timeout,
                    )) as Arc<dyn handlers::llm::Provider>
                }),
            )?,
        };
        llm::seed_catalog(
            &handlers::models::Catalog::new(Arc::clone(&store)),
            &config.llm,
        )
        .await?;
        let mut router = ServiceRouter::new(handlers::local_services(&deps));
        let mut probes = Vec::new();
        if let Some(client) = &nats {
            for short in &config.routes.remote {
                let desc = proto::ServiceDesc::by_short(short)
                    .ok_or_else(|| format!("unknown service {short}"))?;
                let endpoint = nats::endpoint::NatsEndpoint::new(
                    client.clone(),
                    desc,
                    &config.routes,
                    config.nats.request_timeout,
                );
                probes.push((desc.short, endpoint.responders()));
                router = router
                    .with_endpoint(short, Arc::new(endpoint))
                    .ok_or_else(|| format!("unknown service {short}"))?;
            }
        }
        let nats = nats.map(|n| n.client);
        let config_rate = config.rate_limit.clone();
        let admission = admission::Admission::new(config.http.max_in_flight, &config.bulkheads);
        let limits = Arc::new(ratelimit::RateLimits::new(&config_rate));
        let metered = tower::Layer::layer(
            &quota::TokenQuotaLayer::layer(
                config
                    .rate_limit
                    .enabled
                    .then(|| Arc::clone(&limits.tokens)),
            ),
            router.clone(),
        );
        Ok(AppState(Arc::new(Shared {
            health: Arc::new(health::Health::new(store, nats.clone())),
            calls: tower::Layer::layer(
                &idempotency::IdempotencyLayer::layer(
                    Arc::clone(&deps.store),
                    config.idempotency.retention,
                    idempotency::RecordLimits {
                        per_player: config.idempotency.max_records_per_player,
                        per_key: config.idempotency.max_records_per_key,
                    },
                ),
                metered,
            ),
            streams: Arc::new(sse::Streams::new(config.streams.clone())),
            config: Arc::new(config),
            router,
            auth,
            keys: Arc::new(ApiKeys::new(Arc::clone(&deps.store))),
            nats,
            limits,
            bad_credentials: Arc::new(handlers::leaky::Leaky::new(
                config_rate.bad_credentials.burst,
                std::time::Duration::from_secs_f64(
                    60.0 * f64::from(config_rate.bad_credentials.burst)
                        / f64::from(config_rate.bad_credentials.per_minute),
                ),
            )),
            admission,
            probes,
            deps,
        })))
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.deps.store)
    }

    /// The services this process implements (for `edge worker`).
    pub fn local_services(&self) -> Vec<handlers::LocalService> {
        handlers::local_services(&self.deps)
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The redb file is held by a running edge.
    #[error("cannot open store {0}: it is in use by another process (a running edge?)")]
    InUse(std::path::PathBuf),
    /// Anything else, said plainly.
    #[error("{0}")]
    Other(String),
}

/// Connects to NATS (if configured) and opens the configured store.
pub async fn open_store(
    config: &Config,
) -> Result<(Arc<dyn Store>, Option<nats::Nats>), OpenError> {
    let nats = match &config.nats.url {
        Some(_) => Some(
            nats::connect(&config.nats, "edge")
                .await
                .map_err(|e| OpenError::Other(e.to_string()))?,
        ),
        None => None,
    };
    let store: Arc<dyn Store> = match (config.store.backend, &nats) {
        (config::StoreBackend::Jetstream, Some(client)) => Arc::new(
            JetStreamStore::open(
                client.client.clone(),
                &config.store.bucket,
                config.store.replicas,
            )
            .await
            .map_err(|e| OpenError::Other(format!("cannot open the JetStream store: {e}")))?,
        ),
        (config::StoreBackend::Jetstream, None) => {
            return Err(OpenError::Other(
                "the jetstream store needs a NATS URL".into(),
            ));
        }
        (config::StoreBackend::Redb, _) => {
            private_files::create_dir(&config.data_dir).map_err(|e| {
                OpenError::Other(format!(
                    "cannot create data directory {}: {e}",
                    config.data_dir.display()
                ))
            })?;
            let path = config.data_dir.join("edge.redb");
            match RedbStore::open(&path) {
                Ok(store) => {
                    private_files::warn_if_loose(&[&config.data_dir, &path]);
                    Arc::new(store)
                }
                Err(handlers::store::StoreError::InUse) => return Err(OpenError::InUse(path)),
                Err(e) => {
                    return Err(OpenError::Other(format!(
                        "cannot open store {}: {e}",
                        path.display()
                    )));
                }
            }
        }
    };
    Ok((store, nats))
}

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
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/events", get(events::get))
        .fallback(connect::not_found)
        .with_state(state.clone());
    let probes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(Arc::clone(&state.health));
    stack::build(&state, api).merge(probes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::{Request, StatusCode};
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
    ) -> (StatusCode, http::HeaderMap, serde_json::Value) {
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
        let (status, _, body) =
            call(&app, "/aicore.npc.v1.NpcService/Decide", Some(token), "{}").await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(body["code"], "unimplemented");
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
}
