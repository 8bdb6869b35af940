//! Prometheus metrics, served as text on the admin listener's `/metrics`. Every label value comes
//! from a bounded set: routes and methods from the descriptors (any other path is "other"), codes
//! from fixed tables, refusal reasons from the code. No client can grow the number of series.
//! Gauges that are already state elsewhere (requests in flight, open streams, NATS) are read at
//! scrape time instead of being updated per request.

use std::sync::OnceLock;
use std::time::Duration;

use handlers::Code;
use metrics::{SharedString, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use proto::MethodDesc;
use tokio_util::sync::CancellationToken;

/// Seconds: 1 ms to 30 s. Streams are counted to their first byte, so 30 s is the unary ceiling.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (later calls return the same handle). None if another
/// recorder was installed first; metrics are then not collected, which is logged, not fatal.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics disabled: bad histogram buckets");
                    return None;
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "metrics disabled: a recorder is already installed");
                return None;
            }
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    describe_counter!(
        "edge_http_requests_total",
        "HTTP requests answered, by route (a Connect path, a fixed path or \"other\") and status"
    );
    describe_histogram!(
        "edge_http_request_duration_seconds",
        "Time from the request to the response head, by route (streams: until the stream opened)"
    );
    describe_counter!(
        "edge_calls_total",
        "Service calls through the router, by service, method, target (local or nats) and Connect code"
    );
    describe_histogram!(
        "edge_call_duration_seconds",
        "Time a service call took in the router, by service and target"
    );
    describe_counter!(
        "edge_refused_total",
        "Requests and connections refused at once by a limit, by reason"
    );
    describe_counter!(
        "edge_tls_handshake_failures_total",
        "TLS handshakes that failed or timed out"
    );
    describe_gauge!("edge_connections_open", "Client connections open now");
    describe_gauge!(
        "edge_requests_in_flight",
        "Requests admitted and not yet answered"
    );
    describe_gauge!(
        "edge_sse_streams_open",
        "Server-Sent Event streams open now"
    );
    describe_gauge!(
        "edge_nats_connected",
        "1 while the NATS connection is up, 0 while it is down (absent without NATS)"
    );
    describe_gauge!(
        "edge_nats_responders",
        "Workers that answered the last ping, per remote service (-1: not probed yet)"
    );
    describe_counter!(
        "edge_worker_requests_total",
        "Requests a worker served from NATS, by service, method and Connect code"
    );
    describe_histogram!(
        "edge_worker_request_duration_seconds",
        "Time a worker took to serve a request, by service"
    );
    describe_gauge!("edge_build_info", "The running build");
    gauge!("edge_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// The current metrics as Prometheus text (empty when metrics are disabled).
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// Drains histogram samples into their buckets now and then, so memory stays bounded when
/// nobody scrapes. Ends when `stop` is cancelled.
pub async fn upkeep(stop: CancellationToken) {
    let Some(handle) = install() else { return };
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

/// The route label of a request path: a Connect method's path, one of the fixed routes, or
/// "other" (404s and probes of random paths must not each make a series).
pub fn route_label(path: &str) -> &'static str {
    if let Some(m) = proto::method_by_path(path) {
        return m.path;
    }
    match path {
        "/v1/chat/completions" => "/v1/chat/completions",
        "/v1/events" => "/v1/events",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        _ => "other",
    }
}

/// One answered HTTP request.
pub fn http_request(path: &str, status: u16, elapsed: Duration) {
    let route = route_label(path);
    counter!("edge_http_requests_total", "route" => route, "status" => status_label(status))
        .increment(1);
    metrics::histogram!("edge_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
}

/// One call through the service router.
pub fn call(
    method: &'static MethodDesc,
    target: &'static str,
    code: Option<Code>,
    elapsed: Duration,
) {
    let service = service_name(method);
    counter!(
        "edge_calls_total",
        "service" => service,
        "method" => method.name,
        "target" => target,
        "code" => code.map_or("ok", Code::as_str)
    )
    .increment(1);
    metrics::histogram!("edge_call_duration_seconds", "service" => service, "target" => target)
        .record(elapsed.as_secs_f64());
}

/// One request a worker served.
pub fn worker_request(method: &'static MethodDesc, code: Option<Code>, elapsed: Duration) {
    let service = service_name(method);
    counter!(
        "edge_worker_requests_total",
        "service" => service,
        "method" => method.name,
        "code" => code.map_or("ok", Code::as_str)
    )
    .increment(1);
    metrics::histogram!("edge_worker_request_duration_seconds", "service" => service)
        .record(elapsed.as_secs_f64());
}

/// A request or connection refused by a limit.
pub fn refused(reason: &'static str) {
    counter!("edge_refused_total", "reason" => reason).increment(1);
}

/// A failed or timed-out TLS handshake.
pub fn tls_handshake_failed(reason: &'static str) {
    counter!("edge_tls_handshake_failures_total", "reason" => reason).increment(1);
}

/// A client connection opened (+1) or closed (-1).
pub fn connections_open(delta: f64) {
    gauge!("edge_connections_open").increment(delta);
}

/// Sets a gauge read at scrape time.
pub fn set_gauge(name: &'static str, value: f64) {
    gauge!(name).set(value);
}

/// Sets a per-service gauge read at scrape time.
pub fn set_service_gauge(name: &'static str, service: &'static str, value: f64) {
    gauge!(name, "service" => service).set(value);
}

fn service_name(method: &'static MethodDesc) -> &'static str {
    proto::SERVICES
        .get(method.service_index)
        .map_or("unknown", |s| s.short)
}

/// A status code as a label without allocating for the codes this server sends.
fn status_label(status: u16) -> SharedString {
    let known = match status {
        200 => "200",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        431 => "431",
        499 => "499",
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        other => return SharedString::from(other.to_string()),
    };
    SharedString::const_str(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_bounded() {
        assert_eq!(
            route_label("/aicore.state.v1.StateService/Get"),
            "/aicore.state.v1.StateService/Get"
        );
        assert_eq!(route_label("/v1/events"), "/v1/events");
        assert_eq!(route_label("/wp-admin/setup.php"), "other");
        assert_eq!(route_label("/aicore.state.v1.StateService/Nope"), "other");
    }

    #[test]
    fn status_labels_are_the_numbers() {
        assert_eq!(&*status_label(429), "429");
        assert_eq!(&*status_label(418), "418");
    }
}
