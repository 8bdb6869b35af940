//! The call side's stack, built in one function as `crate::stack` builds the HTTP side: what a
//! call passes through after its protocol adapter (a client's call) or its caller (a call between
//! services), down to the router's endpoints. Read top to bottom, as a call goes.

use std::sync::Arc;

use handlers::kit::store::Store;

use super::ServiceRouter;
use super::calls::RouterRoute;
use super::faults::FaultsConfig;
use super::idempotency::{Idempotency, IdempotencyConfig, IdempotencyLayer, RecordLimits};
use super::quota::{TokenMeter, TokenQuota, TokenQuotaLayer};

/// Where the protocol adapters send a client's calls: the router behind the LLM token meter,
/// behind idempotency records.
pub type ClientCalls = Idempotency<TokenMeter<ServiceRouter>>;

/// What [`call_stack`] builds.
pub struct CallStack {
    /// The router, fault drills included: the route table reads it.
    pub router: ServiceRouter,
    /// Where a client's calls go: idempotency records, the token meter, the router.
    pub client: ClientCalls,
    /// Where calls between services go: idempotency records, the token meter, the router (held
    /// weakly: the router holds the services that hold this).
    pub between_services: RouterRoute,
}

/// Builds both call paths over `router`, each layer once.
pub fn call_stack(
    router: ServiceRouter,
    faults: &FaultsConfig,
    store: Arc<dyn Store>,
    idempotency: &IdempotencyConfig,
    tokens: Option<Arc<TokenQuota>>,
) -> CallStack {
    // Fault drills wrap the endpoints themselves, so a drill acts alike on a client's call and on
    // a service's, local or remote.
    let router = faults.apply(router);
    // Idempotency records sit first: a repeated key is answered from its record before anything
    // below is spent; one layer for both paths, so both keep one set of records and limits.
    let records = IdempotencyLayer::layer(
        store,
        idempotency.retention,
        RecordLimits {
            per_player: idempotency.max_records_per_player,
            per_key: idempotency.max_records_per_key,
        },
    );
    // The token meter sits on both paths, below the records (a repeat answered from its record
    // costs nothing): a model call is charged to whoever started its chain, whether a client
    // called llm or a service did on a client's behalf.
    let meter = TokenQuotaLayer::layer(tokens);
    let client = tower::ServiceBuilder::new()
        .layer(records.clone())
        .layer(meter.clone())
        .service(router.clone());
    let between_services = RouterRoute::new(&router, &records, &meter);
    CallStack {
        router,
        client,
        between_services,
    }
}
