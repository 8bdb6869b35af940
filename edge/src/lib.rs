//! Edge: the HTTPS/SSE front door of the game's AI backend. `app(state)` builds the HTTP
//! application (tests call it without a socket); `server` runs it behind TLS with a graceful drain.

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connect;
pub mod error;
pub mod health;
pub mod healthcheck;
pub mod router;
pub mod server;
pub mod stack;
pub mod telemetry;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use handlers::Deps;
use handlers::auth::{AuthConfig, AuthService};
use handlers::store::{RedbStore, Store};

pub use config::Config;
pub use router::ServiceRouter;

/// A boxed error for startup failures, shown to the operator as is.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What every request handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The service router.
    pub router: ServiceRouter,
    /// Token verification.
    pub auth: Arc<AuthService>,
    /// Readiness.
    pub health: Arc<health::Health>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the store in the data directory and builds the services.
    pub async fn open(config: Config) -> Result<AppState, BoxError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            format!(
                "cannot create data directory {}: {e}",
                config.data_dir.display()
            )
        })?;
        let path = config.data_dir.join("edge.redb");
        let store: Arc<dyn Store> = Arc::new(
            RedbStore::open(&path)
                .map_err(|e| format!("cannot open store {}: {e}", path.display()))?,
        );
        AppState::with_store(config, store).await
    }

    /// Builds the services over an existing store.
    pub async fn with_store(config: Config, store: Arc<dyn Store>) -> Result<AppState, BoxError> {
        let auth_config = AuthConfig {
            access_ttl: config.auth.access_token_ttl,
            refresh_ttl: config.auth.refresh_token_ttl,
            ..AuthConfig::default()
        };
        let auth = Arc::new(
            AuthService::new(Arc::clone(&store), auth_config)
                .await
                .map_err(|e| format!("cannot load token signing keys: {e}"))?,
        );
        let deps = Deps {
            store: Arc::clone(&store),
            auth: Arc::clone(&auth),
        };
        let router = ServiceRouter::new(handlers::local_services(&deps));
        Ok(AppState {
            config: Arc::new(config),
            router,
            auth,
            health: Arc::new(health::Health::new(store)),
        })
    }
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
    let api = api.fallback(connect::not_found).with_state(state.clone());
    let probes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(Arc::clone(&state.health));
    stack::build(&state, api).merge(probes)
}
