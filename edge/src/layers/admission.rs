//! Admission control: the global in-flight limit and a bulkhead per service, with priorities.
//!
//! A request takes a slot of the whole server and one of its service, or is refused at once with
//! 503 and Retry-After: nothing waits in a queue. Priorities reserve headroom: a `low` service
//! (NPC chatter, LLM calls) may fill only part of the global limit, `normal` more, and only `high`
//! services (auth, payment) all of it, so a flood of low-priority calls leaves room for logins
//! and payments. The bulkhead caps each service on its own, so one service's flood cannot take
//! every slot of its priority either.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use futures_util::future::{Either, Ready, ready};
use handlers::Status;
use proto::SERVICES;
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

use crate::error::status_response;

/// How much of the global limit a service may fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Up to 60% of the global limit.
    Low,
    /// Up to 85%.
    Normal,
    /// All of it.
    High,
}

impl Priority {
    fn share_percent(self) -> usize {
        match self {
            Priority::Low => 60,
            Priority::Normal => 85,
            Priority::High => 100,
        }
    }

    /// The built-in priority of a service: its `priority` option in the .proto (accounts and
    /// money first, bulk AI traffic last).
    fn default_for(service: &proto::ServiceDesc) -> Priority {
        match service.priority {
            proto::Priority::Low => Priority::Low,
            proto::Priority::Normal => Priority::Normal,
            proto::Priority::High => Priority::High,
        }
    }
}

/// One service's bulkhead settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkheadConfig {
    /// Requests of this service in flight at once (default: `bulkheads.default_limit`).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Its priority (default: the `priority` option of the service in its .proto: high for auth
    /// and payment, low for llm, npc, story, narrative, language and airouter, normal otherwise).
    #[serde(default)]
    pub priority: Option<Priority>,
}

/// `[bulkheads]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadsConfig {
    /// Per-service limit where none is set.
    pub default_limit: usize,
    /// Per-service overrides, by short name (`npc`, `payment`, ...).
    pub services: BTreeMap<String, BulkheadConfig>,
}

impl Default for BulkheadsConfig {
    fn default() -> Self {
        BulkheadsConfig {
            default_limit: 512,
            services: BTreeMap::new(),
        }
    }
}

impl BulkheadsConfig {
    /// Checks names and limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.default_limit == 0 {
            return Err("bulkheads.default_limit must be at least 1".into());
        }
        for (name, b) in &self.services {
            if proto::ServiceDesc::by_short(name).is_none() {
                return Err(format!("bulkheads.services.{name}: no such service"));
            }
            if b.limit == Some(0) {
                return Err(format!(
                    "bulkheads.services.{name}.limit must be at least 1"
                ));
            }
        }
        Ok(())
    }
}

struct Gauge {
    current: AtomicUsize,
    limit: usize,
}

impl Gauge {
    /// Takes a slot if fewer than `limit` are taken.
    fn try_take(&self, limit: usize) -> bool {
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }
    fn give(&self) {
        self.current.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The shared counters.
pub struct Admission {
    global: Gauge,
    /// Per priority, the part of the global limit it may fill.
    ceilings: [usize; 3],
    /// By service index.
    services: Vec<(Gauge, Priority)>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("in_flight", &self.global.current.load(Ordering::Relaxed))
            .field("limit", &self.global.limit)
            .finish_non_exhaustive()
    }
}

/// A taken slot; given back on drop.
pub struct Permit {
    admission: Arc<Admission>,
    service: Option<usize>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((gauge, _)) = self.service.and_then(|i| self.admission.services.get(i)) {
            gauge.give();
        }
        self.admission.global.give();
    }
}

impl Admission {
    /// Limits: `max_in_flight` for the server, the bulkheads per service.
    pub fn new(max_in_flight: usize, config: &BulkheadsConfig) -> Arc<Admission> {
        let ceiling = |p: Priority| (max_in_flight * p.share_percent() / 100).max(1);
        let services = SERVICES
            .iter()
            .map(|s| {
                let own = config.services.get(s.short);
                let limit = own.and_then(|b| b.limit).unwrap_or(config.default_limit);
                let priority = own
                    .and_then(|b| b.priority)
                    .unwrap_or_else(|| Priority::default_for(s));
                (
                    Gauge {
                        current: AtomicUsize::new(0),
                        limit,
                    },
                    priority,
                )
            })
            .collect();
        Arc::new(Admission {
            global: Gauge {
                current: AtomicUsize::new(0),
                limit: max_in_flight,
            },
            ceilings: [
                ceiling(Priority::Low),
                ceiling(Priority::Normal),
                ceiling(Priority::High),
            ],
            services,
        })
    }

    /// A slot for a call of service `service` (None: not a service call), or why not.
    pub fn try_admit(self: &Arc<Self>, service: Option<usize>) -> Result<Permit, Status> {
        let entry = service.and_then(|i| self.services.get(i));
        let priority = entry.map_or(Priority::Normal, |(_, p)| *p);
        let ceiling = self.ceilings[priority as usize];
        if !self.global.try_take(ceiling) {
            crate::stats::refused("capacity");
            return Err(Status::unavailable(
                "the server is at capacity; retry shortly",
                Duration::from_secs(1),
            ));
        }
        if let Some((gauge, _)) = entry
            && !gauge.try_take(gauge.limit)
        {
            self.global.give();
            crate::stats::refused("service_capacity");
            let name = service
                .and_then(|i| SERVICES.get(i))
                .map_or("", |s| s.short);
            return Err(Status::unavailable(
                format!("the {name} service is at capacity; retry shortly"),
                Duration::from_secs(1),
            ));
        }
        Ok(Permit {
            admission: Arc::clone(self),
            service,
        })
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.global.current.load(Ordering::Relaxed)
    }
}

/// Adds [`Admit`] around a service.
#[derive(Clone)]
pub struct AdmissionLayer {
    admission: Arc<Admission>,
}

impl AdmissionLayer {
    /// Admits by `admission`'s counters.
    pub fn layer(admission: Arc<Admission>) -> Self {
        AdmissionLayer { admission }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admit<S>;
    fn layer(&self, inner: S) -> Admit<S> {
        Admit {
            inner,
            admission: Arc::clone(&self.admission),
        }
    }
}

/// The middleware.
#[derive(Clone)]
pub struct Admit<S> {
    inner: S,
    admission: Arc<Admission>,
}

impl<S> Service<Request> for Admit<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Admitted<S::Future>, Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let service =
            crate::router::route_method(req.method(), req.uri().path()).map(|m| m.service_index);
        let permit = match self.admission.try_admit(service) {
            Ok(p) => p,
            Err(status) => return Either::Right(ready(Ok(status_response(&status)))),
        };
        // Called now, on the instance that was polled ready: no clone of the inner stack.
        Either::Left(Admitted {
            inner: self.inner.call(req),
            permit: Some(permit),
        })
    }
}

/// The response future of an admitted request: its slot is given back as soon as the answer is
/// ready (its body may still stream, as before).
pub struct Admitted<F> {
    inner: F,
    permit: Option<Permit>,
}

impl<F, E> Future for Admitted<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let res = ready!(Pin::new(&mut this.inner).poll(cx));
        drop(this.permit.take());
        Poll::Ready(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(short: &str) -> Option<usize> {
        proto::ServiceDesc::by_short(short).map(|s| s.index)
    }

    #[test]
    fn low_priority_floods_leave_room_for_high() {
        let a = Admission::new(100, &BulkheadsConfig::default());
        let npc: Vec<_> = std::iter::from_fn(|| a.try_admit(index("npc")).ok())
            .take(200)
            .collect();
        assert_eq!(npc.len(), 60, "low fills 60%");
        let state: Vec<_> = std::iter::from_fn(|| a.try_admit(index("state")).ok())
            .take(200)
            .collect();
        assert_eq!(state.len(), 25, "normal fills up to 85%");
        let auth: Vec<_> = std::iter::from_fn(|| a.try_admit(index("auth")).ok())
            .take(200)
            .collect();
        assert_eq!(auth.len(), 15, "high gets the rest");
        let err = a.try_admit(index("payment")).err().unwrap();
        assert_eq!(err.code(), handlers::Code::Unavailable);
        assert!(err.retry_after().is_some());
        drop(npc);
        assert_eq!(a.in_flight(), 40);
        assert!(a.try_admit(index("npc")).is_ok());
    }

    #[test]
    fn a_bulkhead_caps_one_service() {
        let mut config = BulkheadsConfig::default();
        config.services.insert(
            "npc".into(),
            BulkheadConfig {
                limit: Some(3),
                priority: None,
            },
        );
        let a = Admission::new(100, &config);
        let held: Vec<_> = (0..3).map(|_| a.try_admit(index("npc")).unwrap()).collect();
        let err = a.try_admit(index("npc")).err().unwrap();
        assert!(err.message().contains("npc"), "{}", err.message());
        assert_eq!(
            a.in_flight(),
            3,
            "a refused call gives its global slot back"
        );
        assert!(
            a.try_admit(index("state")).is_ok(),
            "other services are unaffected"
        );
        drop(held);
        assert_eq!(a.in_flight(), 0);
    }

    #[test]
    fn config_is_checked() {
        let mut c = BulkheadsConfig::default();
        assert!(c.validate().is_ok());
        c.services.insert(
            "nope".into(),
            BulkheadConfig {
                limit: None,
                priority: Some(Priority::High),
            },
        );
        assert!(c.validate().unwrap_err().contains("nope"));
    }
}
