//! Structured logs: JSON lines by default, to stdout, through a bounded non-blocking writer. A
//! request thread formats its line and hands it to a writer thread; when that buffer is full (stdout
//! blocked), lines are dropped and counted rather than stalling requests.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use serde::{Deserialize, Serialize};

/// Lines buffered for the writer thread before new ones are dropped.
const BUFFERED_LINES: usize = 64 * 1024;

/// The log writer's guard (dropping it flushes what is buffered) and its count of dropped lines.
static WRITER: std::sync::Mutex<Option<WorkerGuard>> = std::sync::Mutex::new(None);
static DROPPED: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

/// Flushes the logs when dropped: hold it until `main` returns.
#[must_use = "the logs are flushed when this is dropped"]
pub struct FlushOnDrop(());

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
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

/// Installs the global subscriber.
pub fn init(log: &LogConfig) -> Result<FlushOnDrop, crate::error::BoxError> {
    let filter = EnvFilter::try_new(&log.filter)
        .map_err(|e| format!("invalid log filter {:?}: {e}", log.filter))?;
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("edge-log")
        .finish(std::io::stdout());
    let counter = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    }
    .map_err(|e| format!("cannot install logger: {e}"))?;
    let _ = DROPPED.set(counter);
    *WRITER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(guard);
    Ok(FlushOnDrop(()))
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
            filter: "info".into(),
            access: false,
        }
    }
}
