//! Structured logs: JSON lines by default, to stdout, through a bounded non-blocking writer
//! ([`crate::log_lines`]). A request thread formats its line into a shared buffer that a writer
//! thread writes out in batches; when that buffer is full (stdout blocked), lines are dropped and
//! counted rather than stalling requests. The access log's line skips tracing and is formatted by
//! its layer straight into that buffer (`layers::access_log`), in the same JSON as this writes.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::ops::otel::OtelConfig;

use serde::{Deserialize, Serialize};

/// Flushes the logs (and exports the last spans) when dropped: hold it until `main` returns.
#[must_use = "the logs are flushed when this is dropped"]
pub struct FlushOnDrop(Option<SdkTracerProvider>);

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "the last spans were not exported");
        }
        flush();
    }
}

/// Writes out every buffered line (once: later lines are not written).
fn flush() {
    if let Some(sink) = crate::log_lines::get() {
        sink.close();
    }
}

/// Exits the process now, after writing out the buffered log lines (a forced exit that skips
/// the orderly return from `main`).
pub fn exit_now(code: i32) -> ! {
    flush();
    std::process::exit(code)
}

/// Log lines dropped because the writer could not keep up.
pub fn dropped_lines() -> u64 {
    crate::log_lines::get().map_or(0, crate::log_lines::Sink::dropped)
}

/// Installs the global subscriber: the log lines, and the span exporter when `otel` names an
/// endpoint.
pub fn init(log: &LogConfig, otel: &OtelConfig) -> Result<FlushOnDrop, crate::error::BoxError> {
    EnvFilter::try_new(&log.filter)
        .map_err(|e| format!("invalid log filter {:?}: {e}", log.filter))?;
    let provider = crate::ops::otel::provider(otel)?;
    // The trace spans (target `otel`) are the exporter's alone: formatting them for log lines
    // would cost more than the spans themselves (lines that need the trace id write it).
    let filter = EnvFilter::try_new(format!("{},{}=off", log.filter, crate::trace::TARGET))
        .map_err(|e| format!("invalid log filter {:?}: {e}", log.filter))?;
    // One write(2) per batch of lines, not one per line, and no wake-up of a writer thread per
    // line: under load those were most of what the access log cost a request.
    let sink =
        crate::log_lines::install().map_err(|e| format!("cannot start the log writer: {e}"))?;
    let lines = tracing_subscriber::fmt::layer().with_writer(crate::log_lines::Lines(sink));
    let lines = match log.format {
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => lines.boxed(),
    };
    let exported = provider.as_ref().map(|p| {
        // Busy/idle timing would read the clock on every poll of every traced future, and
        // source locations and thread names add attributes no one reads in async code.
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("edge"))
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_filter(Targets::new().with_target(crate::trace::TARGET, tracing::Level::INFO))
    });
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(exported)
        .try_init()
        .map_err(|e| format!("cannot install logger: {e}"))?;
    crate::trace::trust_clients(otel.trust_client_sampled);
    if provider.is_some() {
        crate::trace::enable(otel.sampling()?);
    }
    crate::log_lines::set_json(log.format == LogFormat::Json);
    Ok(FlushOnDrop(provider))
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable.
    Text,
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// json or text.
    pub format: LogFormat,
    /// An env-filter directive.
    pub filter: String,
    /// One line per request. Off by default: the load balancer's access logs already record every
    /// request, and server errors (5xx) are always logged here.
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Json,
            // async_nats reports each failed reconnect at info; the edge says it once itself.
            filter: "info,async_nats=warn".into(),
            access: false,
        }
    }
}
