//! The whole middleware stack, in one place. Outermost first; each layer says why it sits there.

use axum::Router;
use tower::ServiceBuilder;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::layers::access_log::AccessLogLayer;
use crate::layers::admission::AdmissionLayer;
use crate::layers::auth::{AuthLayer, PerAddress};
use crate::layers::client_addr::{ClientAddrLayer, TrustedProxies};
use crate::layers::drain::DrainLayer;
use crate::layers::openai_errors::OpenAiErrorsLayer;
use crate::layers::panic::CatchPanicLayer;
use crate::layers::ratelimit::RateLimitLayer;
use crate::layers::request_id::RequestIdLayer;
use crate::state::AppState;

/// Wraps the API routes (not the probes) in every layer; the OpenAI-compatible routes (`openai`)
/// also answer every error in OpenAI's shape.
pub fn build(state: &AppState, api: Router, openai: Router) -> Router {
    let access_log = state.config.log.access;
    // Validated when the config was loaded.
    let trusted = TrustedProxies::parse(&state.config.http.trusted_proxies).unwrap_or_default();
    let cors = crate::layers::cors::layer(&state.config.http.cors_origins)
        .ok()
        .flatten();
    // A body somewhat over the limit is still read before its 413; a larger one is reset.
    let drain_budget = (state.config.http.max_body_bytes as u64).saturating_mul(4);
    // One `layer` call: axum boxes the stack once per route, and clones that box on every call,
    // so each extra `layer`/`route_layer` would add a level that is cloned again at every level.
    let layers = ServiceBuilder::new()
        // Outermost: whichever layer answers before the body is read (401, 429, 503, ...),
        // the rest of a small HTTP/2 body is read first, so libcurl 7.x clients see the answer.
        .layer(DrainLayer::layer(
            drain_budget,
            state.config.http.max_in_flight,
        ))
        // Before anything logs: the token never reaches a log line or a trace.
        .layer(SetSensitiveRequestHeadersLayer::new([
            http::header::AUTHORIZATION,
            http::header::COOKIE,
        ]))
        // Outermost after that: every log line and every response, errors included, carry the id.
        .layer(RequestIdLayer::layer())
        // Before anything keys on the client: the address behind trusted proxies only.
        .layer(ClientAddrLayer::layer(trusted))
        // Logs and counts (metrics) the final status of everything below, shed and panicked included.
        .layer(AccessLogLayer::layer(access_log))
        // Browsers: preflights answered before admission, authentication and rate limiting (they
        // carry no token); every response below, errors included, readable by the page.
        .option_layer(cors)
        // A panicking handler becomes a 500 for that request, not a dropped connection.
        .layer(CatchPanicLayer::layer())
        // The global in-flight limit and the per-service bulkheads, innermost of the outer
        // layers so a refusal is logged; it sheds at once (503 + Retry-After), never queues,
        // and runs before authentication so a flood is refused before any token work.
        .layer(AdmissionLayer::layer(state.admission.clone()))
        // Only calls of methods (by the descriptors) are checked; other paths pass on to their
        // 404/405. Rate limiting is inside authentication because its key is the principal.
        .layer(AuthLayer::layer(
            state.auth.clone(),
            state.keys.clone(),
            if state.config.rate_limit.enabled {
                PerAddress {
                    bad: Some(state.bad_credentials.clone()),
                    spent_tickets: Some(state.spent_tickets.clone()),
                }
            } else {
                PerAddress::default()
            },
        ))
        .option_layer(
            state
                .config
                .rate_limit
                .enabled
                .then(|| RateLimitLayer::layer(state.limits.clone())),
        );
    // Outside every layer that answers errors (panics, shedding, auth, limits), so an OpenAI SDK
    // reads all of them in the shape it knows; only on its routes, so no other path pays for it.
    // The clone shares the layers' state (the drain's slots).
    let openai = openai
        .layer(layers.clone())
        .layer(OpenAiErrorsLayer::layer("/v1/chat/"));
    api.layer(layers).merge(openai)
}
