//! Structured logs: JSON lines by default, to stdout, through a bounded non-blocking writer. A
//! request thread formats its line and hands it to a writer thread; when that buffer is full (stdout
//! blocked), lines are dropped and counted rather than stalling requests.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use serde::{Deserialize, Serialize};

/// Lines buffered for the writer thread before new ones are dropped.
const BUFFERED_LINES: usize = 64 * 1024;

/// Installs the global subscriber. Keep the guard until exit: dropping it flushes what is buffered.
pub fn init(log: &LogConfig) -> Result<WorkerGuard, crate::error::BoxError> {
    let filter = EnvFilter::try_new(&log.filter)
        .map_err(|e| format!("invalid log filter {:?}: {e}", log.filter))?;
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("edge-log")
        .finish(std::io::stdout());
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
    Ok(guard)
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
