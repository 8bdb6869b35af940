//! The OTLP trace exporter: configuration (the standard `OTEL_*` variables, flags, `[otel]` in
//! the file), the sampler, and a batch processor with a bounded queue that drops spans when the
//! collector cannot keep up, counting them (`edge_trace_spans_dropped_total`), and never makes a
//! request wait. Off unless an endpoint is configured.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    Sampler, SdkTracerProvider, Span, SpanData, SpanExporter, SpanProcessor,
};
use serde::{Deserialize, Serialize};

/// Tracing export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OtelConfig {
    /// The collector's OTLP/HTTP base URL (`/v1/traces` is added), e.g. `http://localhost:4318`.
    /// None: no spans leave the process.
    pub endpoint: Option<String>,
    /// `service.name` of the spans.
    pub service_name: String,
    /// `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`,
    /// `parentbased_always_off` or `parentbased_traceidratio` (OTEL_TRACES_SAMPLER's values).
    pub sampler: String,
    /// The ratio of the `traceidratio` samplers, 0 to 1.
    pub sampler_arg: f64,
    /// Spans waiting for export before new ones are dropped.
    pub queue: usize,
    /// Whether an HTTP client's `traceparent` sampled flag decides whether its request is
    /// recorded (with a `parentbased_*` sampler). Off by default: the edge faces the public, and a
    /// client setting the flag on every request would make each cost several times more. The
    /// client's trace id and parent span are kept either way; callers over NATS are trusted.
    pub trust_client_sampled: bool,
}

impl Default for OtelConfig {
    fn default() -> Self {
        OtelConfig {
            endpoint: None,
            service_name: "edge".into(),
            sampler: "parentbased_always_on".into(),
            sampler_arg: 1.0,
            queue: 4096,
            trust_client_sampled: false,
        }
    }
}

impl OtelConfig {
    /// The sampler it names, or why not.
    pub fn sampler(&self) -> Result<Sampler, String> {
        let ratio = self.sampler_arg;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(format!("otel.sampler_arg must be 0 to 1, not {ratio}"));
        }
        Ok(match self.sampler.as_str() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatioBased(ratio),
            "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            "parentbased_traceidratio" => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
            }
            other => {
                return Err(format!(
                    "otel.sampler {other:?} is not one of always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
                ));
            }
        })
    }

    /// The sampling decision it names, taken where a trace enters the process.
    pub fn sampling(&self) -> Result<crate::trace::Sampling, String> {
        let ratio = self.sampler_arg;
        self.sampler()?;
        let (parent_based, ratio) = match self.sampler.as_str() {
            "always_on" => (false, 1.0),
            "always_off" => (false, 0.0),
            "traceidratio" => (false, ratio),
            "parentbased_always_on" => (true, 1.0),
            "parentbased_always_off" => (true, 0.0),
            _ => (true, ratio),
        };
        Ok(crate::trace::Sampling {
            parent_based,
            ratio,
        })
    }

    /// Checks what can be checked before starting.
    pub fn validate(&self) -> Result<(), String> {
        self.sampler()?;
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(format!("otel.endpoint must be an http(s) URL, not {e:?}"));
        }
        if self.queue == 0 || self.service_name.is_empty() {
            return Err("otel.queue must be at least 1 and otel.service_name not empty".into());
        }
        Ok(())
    }
}

/// The tracer provider, when an endpoint is configured.
pub fn provider(config: &OtelConfig) -> Result<Option<SdkTracerProvider>, String> {
    let Some(endpoint) = &config.endpoint else {
        return Ok(None);
    };
    let base = endpoint.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(Duration::from_secs(5))
        .with_endpoint(url)
        .build()
        .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
    let processor = Bounded::new(exporter, config.queue, 512, Duration::from_millis(500))?;
    Ok(Some(
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            // The decision is taken where a trace enters (see `trace::Sampling`); the SDK
            // records what was decided and follows parents inside the process.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build(),
    ))
}

// Spans are nearly every message: boxing them would allocate once per span.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Span(SpanData),
    Flush(SyncSender<()>),
    Resource(Resource),
    Shutdown(SyncSender<()>),
}

/// A batch processor over a bounded queue: `on_end` never waits; a full queue drops the span and
/// counts it. One thread batches and exports (the exporter's HTTP client blocks it, not requests).
#[derive(Debug)]
struct Bounded {
    tx: SyncSender<Msg>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Bounded {
    fn new<E: SpanExporter + 'static>(
        exporter: E,
        queue: usize,
        batch: usize,
        delay: Duration,
    ) -> Result<Bounded, String> {
        let (tx, rx): (_, Receiver<Msg>) = sync_channel(queue);
        let thread = std::thread::Builder::new()
            .name("edge-otel".into())
            .spawn(move || export_loop(exporter, rx, batch, delay))
            .map_err(|e| format!("cannot start the span exporter: {e}"))?;
        Ok(Bounded {
            tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn ask(&self, msg: impl FnOnce(SyncSender<()>) -> Msg, within: Duration) -> OTelSdkResult {
        let (ack, done) = sync_channel(1);
        self.tx
            .send(msg(ack))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        done.recv_timeout(within)
            .map_err(|_| OTelSdkError::Timeout(within))
    }
}

fn export_loop<E: SpanExporter>(mut exporter: E, rx: Receiver<Msg>, batch: usize, delay: Duration) {
    // The exporter's own HTTP calls must not be traced.
    let _quiet = Context::enter_telemetry_suppressed_scope();
    let mut buf = Vec::with_capacity(batch);
    let mut due = Instant::now() + delay;
    let send = |buf: &mut Vec<SpanData>, exporter: &E| {
        if !buf.is_empty() {
            let n = buf.len() as u64;
            if futures_executor::block_on(exporter.export(std::mem::take(buf))).is_err() {
                crate::stats::trace_spans_dropped(n);
            }
        }
    };
    loop {
        match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
            Ok(Msg::Span(s)) => {
                buf.push(s);
                if buf.len() >= batch {
                    send(&mut buf, &exporter);
                    due = Instant::now() + delay;
                }
            }
            Ok(Msg::Flush(ack)) => {
                send(&mut buf, &exporter);
                let _ = ack.send(());
            }
            Ok(Msg::Resource(r)) => exporter.set_resource(&r),
            Ok(Msg::Shutdown(ack)) => {
                send(&mut buf, &exporter);
                let _ = exporter.shutdown();
                let _ = ack.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                send(&mut buf, &exporter);
                due = Instant::now() + delay;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl SpanProcessor for Bounded {
    fn on_start(&self, _: &mut Span, _: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Span(span))
        {
            crate::stats::trace_spans_dropped(1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Msg::Flush, Duration::from_secs(10))
    }

    fn shutdown_with_timeout(&self, within: Duration) -> OTelSdkResult {
        let result = self.ask(Msg::Shutdown, within);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        let _ = self.tx.send(Msg::Resource(resource.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samplers_by_their_standard_names() {
        let mut c = OtelConfig::default();
        assert!(c.validate().is_ok());
        for s in [
            "always_on",
            "always_off",
            "traceidratio",
            "parentbased_always_on",
            "parentbased_always_off",
            "parentbased_traceidratio",
        ] {
            c.sampler = s.into();
            assert!(c.sampler().is_ok(), "{s}");
        }
        c.sampler = "sometimes".into();
        assert!(c.validate().unwrap_err().contains("sometimes"));
        c.sampler = "traceidratio".into();
        c.sampler_arg = 1.5;
        assert!(c.validate().is_err());
        c.sampler_arg = 0.0;
        c.endpoint = Some("localhost:4318".into());
        assert!(c.validate().unwrap_err().contains("http"));
    }
}
