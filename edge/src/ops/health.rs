//! Probes. `/healthz` is liveness: it answers while the process serves and never looks at a
//! dependency (a load balancer that kills healthy tasks over a dependency outage makes it worse).
//! `/readyz` is this process's readiness: certificate loaded, store open, not draining.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use handlers::kit::store::Store;
use http::StatusCode;
use serde_json::json;

/// Readiness inputs.
pub struct Health {
    draining: AtomicBool,
    tls_loaded: AtomicBool,
    /// False on a worker, which serves no TLS.
    tls_served: AtomicBool,
    store: Arc<dyn Store>,
    nats: Option<async_nats::Client>,
    /// The node this process is on and the replicated streams' quorum (`nats::quorum`).
    cluster: Arc<crate::nats::quorum::ClusterView>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl Health {
    /// Ready once TLS is marked loaded, while the store answers and until draining starts.
    /// NATS, if given, is reported but never fails readiness: when every target is unhealthy the
    /// ALB sends to all of them anyway, so remote routes fail per request (503) instead.
    pub fn new(store: Arc<dyn Store>, nats: Option<async_nats::Client>) -> Self {
        Health {
            draining: AtomicBool::new(false),
            tls_loaded: AtomicBool::new(false),
            tls_served: AtomicBool::new(true),
            store,
            nats,
            cluster: Arc::default(),
        }
    }

    /// What the cluster watch (`nats::quorum::run`) updates and the report shows.
    pub fn cluster(&self) -> Arc<crate::nats::quorum::ClusterView> {
        Arc::clone(&self.cluster)
    }

    /// Readiness turns 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether a drain has started.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The server certificate is in place.
    pub fn set_tls_loaded(&self) {
        self.tls_loaded.store(true, Ordering::SeqCst);
    }

    /// This process serves no TLS (a worker): readiness does not wait for a certificate.
    pub fn set_tls_not_served(&self) {
        self.tls_served.store(false, Ordering::SeqCst);
    }

    /// (ready, JSON report)
    pub async fn readiness(&self) -> (bool, serde_json::Value) {
        let draining = self.is_draining();
        let served = self.tls_served.load(Ordering::SeqCst);
        let tls = self.tls_loaded.load(Ordering::SeqCst);
        let store = self.store.check().await;
        let ready = !draining && (tls || !served) && store.is_ok();
        let mut report = json!({
            "status": if ready { "ready" } else { "not_ready" },
            "draining": draining,
            "tls": match (served, tls) {
                (false, _) => "not_served",
                (true, true) => "loaded",
                (true, false) => "missing",
            },
            "store": match &store {
                Ok(()) => json!({ "backend": self.store.backend(), "status": "ok" }),
                Err(_) => json!({ "backend": self.store.backend(), "status": "unavailable" }),
            },
            "nats": match &self.nats {
                None => "not_configured",
                Some(c) if crate::nats::connected(c) => "connected",
                Some(_) => "disconnected",
            },
        });
        // Reported, never a reason to be unready: which node this process is on, and whether
        // the store's and the event log's streams have a quorum (and which nodes are lost).
        if self.nats.is_some() {
            report["cluster"] = json!(self.cluster.snapshot());
        }
        if let Err(e) = store {
            tracing::warn!(error = %e, "readiness: store check failed");
        }
        (ready, report)
    }
}

/// `GET /healthz`
pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`
pub async fn readyz(State(health): State<Arc<Health>>) -> Response {
    let (ready, report) = health.readiness().await;
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}
