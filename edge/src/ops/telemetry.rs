//! Structured logs: JSON lines by default, to stdout, through a bounded non-blocking writer. A
//! request thread formats its line and hands it to a writer thread; when that buffer is full (stdout
//! blocked), lines are dropped and counted rather than stalling requests.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::ops::otel::OtelConfig;

use serde::{Deserialize, Serialize};

/// Lines buffered for the writer thread before new ones are dropped.
const BUFFERED_LINES: usize = 64 * 1024;

/// Bytes of lines the writer thread gathers into one write.
const WRITE_BUFFER: usize = 64 * 1024;

/// The log writer's guard (dropping it flushes what is buffered) and its count of dropped lines.
static WRITER: std::sync::Mutex<Option<WorkerGuard>> = std::sync::Mutex::new(None);
static DROPPED: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

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
    drop(
        WRITER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(),
    );
}

/// Exits the process now, after writing out the buffered log lines (a forced exit that skips
/// the orderly return from `main`).
pub fn exit_now(code: i32) -> ! {
    flush();
    std::process::exit(code)
}

/// Log lines dropped because the writer could not keep up.
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
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
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("edge-log")
        // The writer thread takes every line waiting, then flushes: through a buffer that is one
        // write(2) per batch, not one per line (stdout alone flushes at every newline), which
        // under load was most of what the access log cost a request.
        .finish(std::io::BufWriter::with_capacity(
            WRITE_BUFFER,
            std::io::stdout(),
        ));
    let counter = writer.error_counter();
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
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
    let _ = DROPPED.set(counter);
    *WRITER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(guard);
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
