//! Distributed traces: the spans the edge opens for a request, a router call, a NATS request and
//! a worker's handling, linked by W3C `traceparent` (a client's own is honoured; the edge passes
//! its current span on to workers over NATS). Exported over OTLP when configured (see
//! `ops::telemetry`); off by default, and then these helpers cost one relaxed load each.
//!
//! Spans use the target `otel` at INFO and go to the exporter only (`otel=off` is added to the
//! log filter): the access log line and a request's error line carry its `trace_id` instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

static ENABLED: AtomicBool = AtomicBool::new(false);
static TRUST_CLIENTS: AtomicBool = AtomicBool::new(false);
static SAMPLING: std::sync::OnceLock<Sampling> = std::sync::OnceLock::new();

/// Which traces are recorded, decided once where a trace enters the process (a request, or a
/// worker's request), before any span exists: an unsampled request then costs nothing but this
/// decision, and its `traceparent` passes on unchanged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Follow the caller's sampled flag when there is a caller.
    pub parent_based: bool,
    /// The share of new traces recorded, 0 to 1.
    pub ratio: f64,
}

/// Marks tracing as on (by `ops::telemetry` once the exporter is installed).
pub fn enable(sampling: Sampling) {
    let _ = SAMPLING.set(sampling);
    ENABLED.store(true, Ordering::Release);
}

/// Whether HTTP clients' sampled flags count (`otel.trust_client_sampled`). Off by default: a
/// public client that sets it on every request would otherwise choose what tracing costs.
pub fn trust_clients(trust: bool) {
    TRUST_CLIENTS.store(trust, Ordering::Relaxed);
}

/// Whether a trace that enters with `traceparent` is recorded; the parent's flag counts only
/// from a `trusted` caller (a worker's caller over NATS always is).
fn sampled(traceparent: Option<&str>, trusted: bool) -> bool {
    let Some(s) = SAMPLING.get() else {
        return false;
    };
    if s.parent_based
        && trusted
        && let Some(flags) = traceparent.and_then(parent_flags)
    {
        return flags & 1 == 1;
    }
    s.ratio >= 1.0 || (s.ratio > 0.0 && rand::random::<f64>() < s.ratio)
}

/// A well-formed `traceparent` (W3C Trace Context, lowercase hex): its trace id, parent id and
/// flags. Version 00 is exactly `00-<32 hex>-<16 hex>-<2 hex>`. A higher version (01-fe) is read
/// as the spec asks: its first four fields, and anything after them only past a `-`. Version ff,
/// all-zero ids and anything else are no parent, so they are never passed on.
fn parent_fields(tp: &str) -> Option<(&str, &str, u8)> {
    let lower_hex = |x: &str| x.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let tp = tp.trim();
    let version = tp.get(..2)?;
    if !lower_hex(version) || version == "ff" {
        return None;
    }
    let fixed = match tp.len() {
        55 => tp,
        n if n > 55 && version != "00" && tp.as_bytes()[55] == b'-' => tp.get(..55)?,
        _ => return None,
    };
    let b = fixed.as_bytes();
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let (trace, parent, flags) = (fixed.get(3..35)?, fixed.get(36..52)?, fixed.get(53..55)?);
    let nonzero = |x: &str| x.bytes().any(|b| b != b'0');
    let well_formed = [trace, parent, flags].into_iter().all(lower_hex);
    if !(well_formed && nonzero(trace) && nonzero(parent)) {
        return None;
    }
    Some((trace, parent, u8::from_str_radix(flags, 16).ok()?))
}

/// The flags of a well-formed `traceparent` (see [`parent_fields`]).
fn parent_flags(tp: &str) -> Option<u8> {
    parent_fields(tp).map(|(_, _, flags)| flags)
}

/// An HTTP client's `traceparent`, to pass on to the services it calls: dropped unless
/// well-formed, always passed on as version 00 (the version this side speaks, as the spec
/// asks), and with its sampled flag cleared unless clients are trusted, so a worker does not
/// record what the edge chose not to.
pub fn client_traceparent(headers: &http::HeaderMap) -> Option<String> {
    let tp = headers.get("traceparent")?.to_str().ok()?;
    let (trace, parent, flags) = parent_fields(tp)?;
    let flags = if TRUST_CLIENTS.load(Ordering::Relaxed) {
        flags
    } else {
        flags & !1
    };
    Some(format!("00-{trace}-{parent}-{flags:02x}"))
}

/// Whether the current span is one of ours (a recorded trace is in progress here).
fn in_trace() -> bool {
    Span::current()
        .metadata()
        .is_some_and(|m| m.target() == TARGET)
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The target every exported span uses.
pub const TARGET: &str = "otel";

struct One<'a>(&'a str);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// Makes `span` a child of `traceparent` (a client's or a caller's), if it parses; else it starts
/// a trace of its own.
pub fn adopt(span: &Span, traceparent: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    if let Some(tp) = traceparent {
        let parent = TraceContextPropagator::new().extract(&One(tp));
        if parent.span().span_context().is_valid() {
            // Only fails once the span has started, and it has not.
            let _ = span.set_parent(parent);
        }
    }
}

/// The trace id of `span`, for a log line (empty while tracing is off).
pub fn trace_id(span: &Span) -> String {
    if span.is_disabled() || !enabled() {
        return String::new();
    }
    span.context().span().span_context().trace_id().to_string()
}

/// The current span as a `traceparent`, for a request that leaves the process; None while
/// tracing is off (the caller's own `traceparent`, if any, is passed on unchanged then).
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let cx = Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The span of one HTTP request, named by its route (a Connect path or a fixed path; never the
/// raw path of an unknown request), looked up only when the request is sampled.
pub fn request_span(
    method: &http::Method,
    route: impl FnOnce() -> &'static str,
    traceparent: Option<&str>,
) -> Span {
    if !enabled() || !sampled(traceparent, TRUST_CLIENTS.load(Ordering::Relaxed)) {
        return Span::none();
    }
    let route = route();
    // The edge decided to record this request (a client's flag counts only if trusted), so the
    // parent says "sampled", or the SDK (parent-based inside the process) would drop it; and in
    // version 00, the one this side speaks, whatever version the client sent.
    let parent = traceparent
        .and_then(parent_fields)
        .map(|(trace, parent, _)| format!("00-{trace}-{parent}-01"));
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = route,
        otel.kind = "server",
        http.request.method = method.as_str(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    adopt(&span, parent.as_deref());
    span
}

/// Records a response status on a request span (5xx marks it an error).
pub fn record_status(span: &Span, status: u16) {
    if span.is_disabled() {
        return;
    }
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
}

/// The span of one call through the router: the method, and whether it runs here or on NATS.
pub fn call_span(
    method: &'static proto::MethodDesc,
    target: &'static str,
    caller: Option<&str>,
) -> Span {
    if !enabled() || !in_trace() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        "call",
        otel.name = method.path.trim_start_matches('/'),
        otel.kind = if target == "nats" { "client" } else { "internal" },
        rpc.system = "connect_rpc",
        rpc.service = method.service_desc().full_name,
        rpc.method = method.name,
        edge.target = target,
        edge.caller = caller.unwrap_or(""),
        edge.code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Records a call's outcome on its span.
pub fn record_code(span: &Span, code: Option<handlers::Code>) {
    if span.is_disabled() {
        return;
    }
    match code {
        None => span.record("edge.code", "ok"),
        Some(c) => {
            span.record("edge.code", c.as_str());
            span.record("otel.status_code", "error")
        }
    };
}

/// The span of a worker serving one request from NATS, a child of the caller's span.
pub fn worker_span(method: &'static proto::MethodDesc, traceparent: Option<&str>) -> Span {
    if !enabled() || !sampled(traceparent, true) {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        "serve",
        otel.name = method.path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "connect_rpc",
        rpc.service = method.service_desc().full_name,
        rpc.method = method.name,
        edge.code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    adopt(&span, traceparent);
    span
}

/// The span of authenticating one request (a child of its request span): which credential it
/// carried and what came of it.
pub fn auth_span() -> Span {
    if !enabled() || !in_trace() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        "authenticate",
        otel.name = "authenticate",
        edge.auth.credential = tracing::field::Empty,
        edge.auth.principal = tracing::field::Empty,
        edge.code = tracing::field::Empty,
    )
}

/// Records the credential a request carried: `none`, `access_token`, `service_key`, `ticket`.
pub fn record_credential(span: &Span, kind: &'static str) {
    if !span.is_disabled() {
        span.record("edge.auth.credential", kind);
    }
}

/// Records who a request was authenticated as (`player`, or `service:<key name>`; never a
/// player's id), or why not.
pub fn record_auth(span: &Span, outcome: Result<Option<&handlers::Principal>, handlers::Code>) {
    if span.is_disabled() {
        return;
    }
    match outcome {
        Ok(None) => span.record("edge.code", "ok"),
        Ok(Some(handlers::Principal::Player { .. })) => {
            span.record("edge.auth.principal", "player");
            span.record("edge.code", "ok")
        }
        Ok(Some(handlers::Principal::Service { name, .. })) => {
            span.record("edge.auth.principal", format!("service:{name}").as_str());
            span.record("edge.code", "ok")
        }
        Err(code) => span.record("edge.code", code.as_str()),
    };
}

/// The span of a Server-Sent Events stream, ended with how the stream ended.
pub fn stream_span() -> Span {
    if !enabled() || !in_trace() {
        return Span::none();
    }
    tracing::info_span!(target: TARGET, "stream", edge.stream.end = tracing::field::Empty)
}

/// Records how a stream ended: `end`, `error:<code>`, `client_gone`, `shutdown`, `max_duration`.
pub fn record_stream_end(span: &Span, how: &str) {
    if !span.is_disabled() {
        span.record("edge.stream.end", how);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_flags() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(parent_flags(tp), Some(1));
        assert_eq!(parent_flags(&tp.replace("-01", "-00")), Some(0));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-xyz-00f067aa0ba902b7-01",
            // Version ff, bad versions, upper case, signs; extra fields only past version 00.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01extra",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "01-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{e9}",
            "\u{e9}0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parent_flags(bad), None, "{bad}");
        }
        // A higher version: its first four fields, and more only after a dash.
        let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(parent_flags(v1), Some(1));
        assert_eq!(parent_flags(&format!("{v1}-what-comes-later")), Some(1));
        assert_eq!(
            parent_fields(&format!("fe{}-x", &v1[2..])),
            Some(("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1))
        );
    }

    #[test]
    fn a_clients_sampled_flag_is_cleared_unless_trusted() {
        let mut h = http::HeaderMap::new();
        assert_eq!(client_traceparent(&h), None);
        h.insert("traceparent", "garbage".parse().unwrap());
        assert_eq!(client_traceparent(&h), None, "malformed: dropped");
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        h.insert("traceparent", tp.parse().unwrap());
        // The only test that touches the flag, so no other test sees it change.
        assert_eq!(
            client_traceparent(&h).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
        );
        // A higher version is passed on as version 00, without what it added.
        let later = "03-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-more";
        h.insert("traceparent", later.parse().unwrap());
        assert_eq!(
            client_traceparent(&h).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")
        );
        trust_clients(true);
        assert_eq!(
            client_traceparent(&h).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03")
        );
        h.insert("traceparent", tp.parse().unwrap());
        assert_eq!(client_traceparent(&h).as_deref(), Some(tp));
        trust_clients(false);
    }

    proptest::proptest! {
        /// Whatever a client sends, parsing never panics, and what is passed on is version 00
        /// with the same ids, and parses again to the same fields.
        #[test]
        fn any_traceparent_parses_or_is_dropped(
            tp in proptest::prop_oneof![
                ".{0,80}",
                "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.{0,20})?",
            ]
        ) {
            if let Some((trace, parent, flags)) = parent_fields(&tp) {
                let again = format!("00-{trace}-{parent}-{flags:02x}");
                proptest::prop_assert_eq!(parent_fields(&again), Some((trace, parent, flags)));
                proptest::prop_assert!(!tp.starts_with("ff"));
            }
        }
    }
}
