//! Creating or opening a stream at start, safe to race: any number of edges and workers start
//! at once on a new cluster. A lost race ("already in use"), a timeout while the cluster elects
//! its meta leader, or a new stream without a leader yet is retried with jittered pauses until
//! [`START_BUDGET`] runs out; a server without JetStream is said at once.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};

use crate::kit::retry::Retry;

/// How long a start waits for its streams.
pub const START_BUDGET: Duration = Duration::from_secs(60);
/// How long "JetStream is not enabled" is believed to be a cluster still electing its meta
/// leader.
const NOT_ENABLED_GRACE: Duration = Duration::from_secs(8);

/// Whether an error says the server has no JetStream (rather than not yet).
fn says_no_jetstream(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("not enabled")
        || t.contains("jetstream unavailable")
        || t.contains("no responders")
        || t.contains("does not exist")
}

/// Opens stream `config.name`, creating it if missing, and waits until it has a leader (calls to
/// a new replicated stream time out until it has one).
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<stream::Stream, String> {
    let started = Instant::now();
    let mut retry = Retry::until(None, START_BUDGET);
    loop {
        let error = match js.get_or_create_stream(config.clone()).await {
            Ok(s) => match s.get_info().await {
                // One server has no cluster info; a cluster's stream needs its leader.
                Ok(info) if info.cluster.as_ref().is_none_or(|c| c.leader.is_some()) => {
                    return Ok(s);
                }
                Ok(_) => "the stream has no leader yet".to_owned(),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        if says_no_jetstream(&error) && started.elapsed() > NOT_ENABLED_GRACE {
            return Err(error);
        }
        if retry.failed_tries() == 0 {
            tracing::info!(stream = %config.name, error = %error, "stream not ready; retrying");
        }
        if !retry.wait().await {
            return Err(format!("{error} (still, after {:?})", START_BUDGET));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_jetstream_ends_the_wait_early() {
        assert!(says_no_jetstream("jetstream not enabled for account"));
        assert!(says_no_jetstream("no responders"));
        assert!(says_no_jetstream("jetstream unavailable"));
        assert!(!says_no_jetstream("jetstream request timed out"));
        assert!(!says_no_jetstream(
            "stream name already in use with a different configuration"
        ));
    }
}
