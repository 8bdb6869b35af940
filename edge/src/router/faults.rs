//! Fault drills: replies of chosen methods held back after their handler finished, so a team can
//! watch what clients, retries and idempotency do when work succeeds but the answer is late
//! (the case a timeout cannot tell from a failure); and calls of chosen methods failed with a
//! status before their handler runs (a dependency down, a workflow step refused). Off unless configured; every drill in force
//! is logged at start as a warning, so none is left on unnoticed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use handlers::{LocalService, Status};
use proto::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Call, Endpoint, Reply, ServiceRouter};

/// Longest delay a drill may add.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// `[faults]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsConfig {
    /// Method path (`/aicore.payment.v1.PaymentService/Purchase`) to how long its replies are
    /// held back after the handler has finished.
    pub delay_reply: BTreeMap<String, humantime_serde::Serde<Duration>>,
    /// Method path to the status code (`unavailable`, `internal`, ...) its calls fail with
    /// before the handler runs.
    pub fail: BTreeMap<String, String>,
}

impl FaultsConfig {
    /// Checks that every method exists and every delay is at most a minute.
    pub fn validate(&self) -> Result<(), String> {
        for (path, d) in &self.delay_reply {
            if proto::method_by_path(path).is_none() {
                return Err(format!("faults.delay_reply: no method {path:?}"));
            }
            if **d > MAX_DELAY {
                return Err(format!(
                    "faults.delay_reply: {path} delay {} is over {}",
                    humantime::format_duration(**d),
                    humantime::format_duration(MAX_DELAY)
                ));
            }
        }
        for (path, code) in &self.fail {
            if proto::method_by_path(path).is_none() {
                return Err(format!("faults.fail: no method {path:?}"));
            }
            if handlers::Code::parse(code).is_none() {
                return Err(format!("faults.fail: {path}: no status code {code:?}"));
            }
        }
        Ok(())
    }

    /// `router` with the drills in force.
    pub fn apply(&self, mut router: ServiceRouter) -> ServiceRouter {
        let mut by_service: BTreeMap<usize, Drills> = BTreeMap::new();
        for (path, d) in &self.delay_reply {
            if let Some(m) = proto::method_by_path(path) {
                tracing::warn!(method = m.path, delay = %humantime::format_duration(**d), "fault drill: replies held back");
                by_service
                    .entry(m.service_index)
                    .or_default()
                    .delays
                    .push((m.path, **d));
            }
        }
        for (path, code) in &self.fail {
            if let (Some(m), Some(code)) =
                (proto::method_by_path(path), handlers::Code::parse(code))
            {
                tracing::warn!(
                    method = m.path,
                    code = code.as_str(),
                    "fault drill: calls fail"
                );
                by_service
                    .entry(m.service_index)
                    .or_default()
                    .fails
                    .push((m.path, code));
            }
        }
        for (index, drills) in by_service {
            let Some(inner) = router.endpoint(index).cloned() else {
                continue;
            };
            let short = proto::SERVICES[index].short;
            if let Some(r) = router.clone().with_endpoint(
                short,
                Arc::new(Drilled {
                    inner,
                    delays: drills.delays,
                    fails: drills.fails,
                }),
            ) {
                router = r;
            }
        }
        router
    }
}

/// One `--fault-delay-reply` entry, `PATH=DURATION`.
pub fn parse_delay(entry: &str) -> Result<(String, Duration), String> {
    let (path, d) = entry
        .split_once('=')
        .ok_or_else(|| format!("{entry:?} is not PATH=DURATION"))?;
    let d = humantime::parse_duration(d).map_err(|e| format!("{entry:?}: {e}"))?;
    Ok((path.to_owned(), d))
}

/// One `--fault-fail` entry, `PATH=CODE`.
pub fn parse_fail(entry: &str) -> Result<(String, String), String> {
    let (path, code) = entry
        .split_once('=')
        .ok_or_else(|| format!("{entry:?} is not PATH=CODE"))?;
    if handlers::Code::parse(code).is_none() {
        return Err(format!("{entry:?}: no status code {code:?}"));
    }
    Ok((path.to_owned(), code.to_owned()))
}

#[derive(Default)]
struct Drills {
    delays: Vec<(&'static str, Duration)>,
    fails: Vec<(&'static str, handlers::Code)>,
}

/// An endpoint whose calls of some methods fail, or whose replies come late.
struct Drilled {
    inner: Arc<dyn Endpoint>,
    delays: Vec<(&'static str, Duration)>,
    fails: Vec<(&'static str, handlers::Code)>,
}

impl Endpoint for Drilled {
    fn call(&self, call: Call) -> BoxFuture<Result<Reply, Status>> {
        if let Some((path, code)) = self.fails.iter().find(|(p, _)| *p == call.method.path) {
            let status = Status::new(*code, format!("fault drill: {path} fails"));
            return Box::pin(async move { Err(status) });
        }
        let delay = self
            .delays
            .iter()
            .find(|(p, _)| *p == call.method.path)
            .map(|(_, d)| *d);
        let fut = self.inner.call(call);
        Box::pin(async move {
            let reply = fut.await;
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            reply
        })
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn healthy(&self) -> bool {
        self.inner.healthy()
    }
    fn responders(&self) -> Option<i64> {
        self.inner.responders()
    }
    fn enforces_deadline(&self) -> bool {
        self.inner.enforces_deadline()
    }
    fn local(&self) -> Option<&LocalService> {
        self.inner.local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_parse_and_validate() {
        let purchase = "/aicore.payment.v1.PaymentService/Purchase";
        let f = |entry: &str| {
            let (path, d) = parse_delay(entry).unwrap();
            FaultsConfig {
                delay_reply: [(path, d.into())].into(),
                ..FaultsConfig::default()
            }
        };
        let ok = f(&format!("{purchase}=300ms"));
        ok.validate().unwrap();
        assert_eq!(*ok.delay_reply[purchase], Duration::from_millis(300));
        assert!(parse_delay("nope").is_err());
        assert!(parse_fail("/a/b=unavailable").is_ok());
        assert!(parse_fail("/a/b=sometimes").is_err());
        assert!(parse_delay("/a/b=soon").is_err());
        assert!(
            f("/no.Such/Method=1s")
                .validate()
                .unwrap_err()
                .contains("no method")
        );
        assert!(
            f(&format!("{purchase}=2m"))
                .validate()
                .unwrap_err()
                .contains("over")
        );
    }
}
