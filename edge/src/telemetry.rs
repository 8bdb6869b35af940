//! Structured logs: JSON lines by default, to stdout.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Call once, from main.
pub fn init(log: &LogConfig) -> Result<(), crate::BoxError> {
    let filter = EnvFilter::try_new(&log.filter)
        .map_err(|e| format!("invalid log filter {:?}: {e}", log.filter))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    }
    .map_err(|e| format!("cannot install logger: {e}").into())
}
