//! Prometheus metrics, served as text on the admin listener's `/metrics`. Every label value comes
//! from a bounded set: routes and methods from the descriptors (any other path is "other"), codes
//! from fixed tables, refusal reasons from the code. No client can grow the number of series.
//! Gauges that are already state elsewhere (requests in flight, open streams, NATS) are read at
//! scrape time instead of being updated per request.

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use handlers::Code;
use metrics::{
    Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
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
        "edge_stream_tickets_total",
        "Stream tickets presented at /v1/events, by outcome (opened, spent_remembered, spent_in_store, expired, logged_out, forged, unavailable)"
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
        "edge_nats_connected_server",
        "1 for the NATS server (node name) the connection is on, 0 for one it left"
    );
    describe_gauge!(
        "edge_store_quorum",
        "1 while a replicated JetStream stream (the store's bucket, the event stream) has a leader and a majority of current replicas, 0 otherwise; looked up every 2 s"
    );
    describe_gauge!(
        "edge_store_replica_current",
        "Per stream and node: 1 while the replica is online and current, 0 while it is lost or behind"
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
    describe_gauge!(
        "edge_worker_in_flight",
        "Requests and streams a worker is serving now (refused past edge_worker_capacity)"
    );
    describe_gauge!(
        "edge_worker_capacity",
        "How many requests and streams a worker serves at once"
    );
    describe_counter!(
        "edge_trace_spans_dropped_total",
        "Trace spans dropped: the export queue was full, or the collector failed"
    );
    describe_counter!(
        "edge_log_lines_dropped_total",
        "Log lines dropped because the log writer could not keep up (stdout blocked)"
    );
    describe_counter!(
        "edge_content_fallback_total",
        "Content text served in English because the reader's locale lacks it, by locale and kind"
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

/// Fixed routes besides the Connect methods; anything else is "other".
const FIXED_ROUTES: [&str; 5] = [
    "/v1/chat/completions",
    "/v1/events",
    "/healthz",
    "/readyz",
    "other",
];

/// The status codes this server sends; others are labelled too, just without a cached handle.
const STATUSES: [(u16, &str); 20] = [
    (200, "200"),
    (204, "204"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (408, "408"),
    (409, "409"),
    (413, "413"),
    (415, "415"),
    (422, "422"),
    (429, "429"),
    (431, "431"),
    (499, "499"),
    (500, "500"),
    (501, "501"),
    (502, "502"),
    (503, "503"),
    (504, "504"),
];

/// Router targets ([`crate::router::Endpoint::kind`]).
const TARGETS: [&str; 3] = ["local", "nats", "unimplemented"];

/// Connect codes plus "ok".
const CODES: usize = Code::ALL.len() + 1;

/// Metric handles, looked up in the registry once per label set and then reused: the lookup
/// (a key built and hashed per call) was a few percent of the edge's CPU under load.
struct Handles {
    /// Flat method index of each service's first method.
    base: Vec<usize>,
    methods: usize,
    http_count: Slots<Counter>,
    http_time: Slots<Histogram>,
    call_count: Slots<Counter>,
    call_time: Slots<Histogram>,
    worker_count: Slots<Counter>,
    worker_time: Slots<Histogram>,
}

static HANDLES: LazyLock<Handles> = LazyLock::new(|| {
    let mut base = Vec::with_capacity(proto::SERVICES.len());
    let mut methods = 0;
    for s in proto::SERVICES {
        base.push(methods);
        methods += s.methods.len();
    }
    let routes = methods + FIXED_ROUTES.len();
    let services = proto::SERVICES.len();
    Handles {
        base,
        methods,
        http_count: Slots::new(routes * STATUSES.len()),
        http_time: Slots::new(routes),
        call_count: Slots::new(methods * TARGETS.len() * CODES),
        call_time: Slots::new(services * TARGETS.len()),
        worker_count: Slots::new(methods * CODES),
        worker_time: Slots::new(services),
    }
});

/// Lazily filled handle slots.
struct Slots<T>(Box<[OnceLock<T>]>);

impl<T> Slots<T> {
    fn new(n: usize) -> Self {
        Slots((0..n).map(|_| OnceLock::new()).collect())
    }

    fn get(&self, i: usize, make: impl FnOnce() -> T) -> Option<&T> {
        self.0.get(i).map(|slot| slot.get_or_init(make))
    }
}

impl Handles {
    fn method(&self, m: &MethodDesc) -> usize {
        self.base.get(m.service_index).copied().unwrap_or(0) + m.index
    }

    /// The route label and its slot: a Connect method's path, one of the fixed routes, or
    /// "other" (404s and probes of random paths must not each make a series).
    fn route(&self, path: &str) -> (&'static str, usize) {
        if let Some(m) = proto::method_by_path(path) {
            return (m.path, self.method(m));
        }
        let i = FIXED_ROUTES
            .iter()
            .position(|r| *r == path)
            .unwrap_or(FIXED_ROUTES.len() - 1);
        (FIXED_ROUTES[i], self.methods + i)
    }
}

fn code_index(code: Option<Code>) -> usize {
    code.map_or(CODES - 1, |c| c as usize)
}

fn code_label(code: Option<Code>) -> &'static str {
    code.map_or("ok", Code::as_str)
}

/// The route label of a request path.
pub fn route_label(path: &str) -> &'static str {
    HANDLES.route(path).0
}

/// One answered HTTP request.
pub fn http_request(path: &str, status: u16, elapsed: Duration) {
    let h = &*HANDLES;
    let (route, r) = h.route(path);
    match STATUSES.iter().position(|(n, _)| *n == status) {
        Some(i) => {
            if let Some(c) = h.http_count.get(r * STATUSES.len() + i, || {
                counter!("edge_http_requests_total", "route" => route, "status" => STATUSES[i].1)
            }) {
                c.increment(1);
            }
        }
        None => {
            counter!("edge_http_requests_total", "route" => route, "status" => status.to_string())
                .increment(1)
        }
    }
    if let Some(t) = h.http_time.get(
        r,
        || histogram!("edge_http_request_duration_seconds", "route" => route),
    ) {
        t.record(elapsed.as_secs_f64());
    }
}

/// One call through the service router.
pub fn call(
    method: &'static MethodDesc,
    target: &'static str,
    code: Option<Code>,
    elapsed: Duration,
) {
    let h = &*HANDLES;
    let service = service_name(method);
    let Some(t) = TARGETS.iter().position(|x| *x == target) else {
        return;
    };
    let slot = (h.method(method) * TARGETS.len() + t) * CODES + code_index(code);
    if let Some(c) = h.call_count.get(slot, || {
        counter!(
            "edge_calls_total",
            "service" => service,
            "method" => method.name,
            "target" => target,
            "code" => code_label(code)
        )
    }) {
        c.increment(1);
    }
    if let Some(d) = h.call_time.get(
        method.service_index * TARGETS.len() + t,
        || histogram!("edge_call_duration_seconds", "service" => service, "target" => target),
    ) {
        d.record(elapsed.as_secs_f64());
    }
}

/// One request a worker served.
pub fn worker_request(method: &'static MethodDesc, code: Option<Code>, elapsed: Duration) {
    let h = &*HANDLES;
    let service = service_name(method);
    if let Some(c) = h
        .worker_count
        .get(h.method(method) * CODES + code_index(code), || {
            counter!(
                "edge_worker_requests_total",
                "service" => service,
                "method" => method.name,
                "code" => code_label(code)
            )
        })
    {
        c.increment(1);
    }
    if let Some(d) = h.worker_time.get(
        method.service_index,
        || histogram!("edge_worker_request_duration_seconds", "service" => service),
    ) {
        d.record(elapsed.as_secs_f64());
    }
}

/// A worker's slots taken (+1) or given back (-1).
pub fn worker_in_flight(delta: f64) {
    gauge!("edge_worker_in_flight").increment(delta);
}

/// A worker's capacity, set at start.
pub fn worker_capacity(slots: usize) {
    gauge!("edge_worker_capacity").set(slots as f64);
}

/// Spans dropped: the export queue was full, or the collector refused or did not answer.
pub fn trace_spans_dropped(n: u64) {
    counter!("edge_trace_spans_dropped_total").increment(n);
}

/// A request or connection refused by a limit.
pub fn refused(reason: &'static str) {
    counter!("edge_refused_total", "reason" => reason).increment(1);
}

/// A stream ticket's outcome at `GET /v1/events` (a fixed set: see the auth layer).
pub fn stream_ticket(outcome: &'static str) {
    counter!("edge_stream_tickets_total", "outcome" => outcome).increment(1);
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

/// Sets a counter kept elsewhere (read at scrape time) to its running total.
pub fn set_total(name: &'static str, value: u64) {
    counter!(name).absolute(value);
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

#[cfg(test)]
mod tests {
    /// The metric names this file writes.
    fn exported() -> std::collections::BTreeSet<String> {
        let src = include_str!("stats.rs");
        src.split('"')
            .filter(|t| {
                t.starts_with("edge_") && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
            .map(str::to_owned)
            .collect()
    }

    /// `edge_...` names in `text`, histogram series suffixes removed.
    fn referenced(text: &str) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for (i, _) in text.match_indices("edge_") {
            if i > 0 && text.as_bytes()[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            out.insert(base.to_owned());
        }
        out
    }

    #[test]
    fn the_dashboard_and_alerts_use_only_metrics_the_edge_exports() {
        let exported = exported();
        assert!(
            exported.contains("edge_http_requests_total"),
            "{exported:?}"
        );
        for (file, text) in [
            (
                "alerts.yml",
                include_str!("../../terraform/observability/alerts.yml"),
            ),
            (
                "dashboard.json",
                include_str!("../../terraform/observability/dashboard.json"),
            ),
        ] {
            let used = referenced(text);
            assert!(used.len() >= 8, "{file}: {used:?}");
            for name in used {
                assert!(
                    exported.contains(&name),
                    "{file} uses {name}, which the edge does not export"
                );
            }
        }
    }

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
    fn every_label_set_has_its_own_slot() {
        let h = &*HANDLES;
        let mut seen = std::collections::HashSet::new();
        for s in proto::SERVICES {
            for m in s.methods {
                assert!(seen.insert(h.method(m)), "{}", m.path);
            }
        }
        assert_eq!(seen.len(), h.methods);
        assert_eq!(h.route("/readyz"), ("/readyz", h.methods + 3));
        assert_eq!(h.route("/x"), ("other", h.methods + 4));
        assert_eq!(code_index(None), CODES - 1);
        assert!(Code::ALL.iter().all(|c| code_index(Some(*c)) < CODES - 1));
    }
}
