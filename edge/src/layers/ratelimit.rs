//! Rate limits (governor, GCRA), as a Layer + Service after authentication. Each method falls in a
//! class derived from the descriptors; each class has its own quota and key: the public auth
//! methods per client address (password guessing), LLM services per principal (they are costly),
//! everything else per principal (or per address before login). Over quota: 429 at once, never
//! queued, with `Retry-After`; limited routes carry the IETF `RateLimit-Policy`/`RateLimit` headers.
//! Counters live in this process's memory: each replica counts on its own.

use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use futures_util::future::{Either, Ready};
use governor::middleware::StateInformationMiddleware;
use governor::{
    Quota, RateLimiter, clock::Clock as _, clock::DefaultClock,
    state::keyed::DefaultKeyedStateStore,
};
use handlers::{Code, Principal, Status};
use http::HeaderValue;
use proto::{MethodDesc, RateClass};
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

use crate::error::status_response;
use crate::layers::client_addr::ClientAddr;

/// One class's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassQuota {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Requests allowed at once on top (burst).
    pub burst: u32,
}

/// `[rate_limit]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Off switch (for benchmarks of the bare path).
    pub enabled: bool,
    /// Public auth methods (register, login, refresh), per client address.
    pub auth: ClassQuota,
    /// LLM and story services, per principal.
    pub llm: ClassQuota,
    /// Everything else, per principal (per address before login).
    pub general: ClassQuota,
    /// Players' calls of methods that change state, per player.
    pub write: ClassQuota,
    /// Players' queries that examine many records (world QueryEntities), per player.
    pub query: ClassQuota,
    /// LLM tokens (prompt + completion) per principal per minute: LLM calls are metered by cost.
    pub llm_tokens_per_minute: u32,
    /// LLM tokens a principal may spend at once; at least one maximal call (8192 + its prompt).
    pub llm_token_burst: u32,
    /// Requests with bad credentials (401s) per client address before it gets 429 for anything
    /// but a valid token.
    pub bad_credentials: ClassQuota,
    /// Replays of spent stream tickets (a browser's `EventSource` reconnecting with its old URL
    /// spends one) per client address before the address gets 429 for tickets.
    pub spent_tickets: ClassQuota,
    /// Keys idle this long are forgotten (bounds memory).
    #[serde(with = "humantime_serde")]
    pub prune_every: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            // Generous per address: many players can share one carrier-grade NAT address.
            auth: ClassQuota {
                per_minute: 120,
                burst: 30,
            },
            llm: ClassQuota {
                per_minute: 120,
                burst: 20,
            },
            general: ClassQuota {
                per_minute: 6000,
                burst: 200,
            },
            write: ClassQuota {
                per_minute: 600,
                burst: 100,
            },
            // A page examines up to 1000 entities (about 1 ms of CPU): 10 a second per player.
            query: ClassQuota {
                per_minute: 600,
                burst: 60,
            },
            llm_tokens_per_minute: 100_000,
            llm_token_burst: 20_000,
            bad_credentials: ClassQuota {
                per_minute: 30,
                burst: 60,
            },
            // Generous: after a deploy every tab behind one NAT address reconnects at once.
            spent_tickets: ClassQuota {
                per_minute: 600,
                burst: 1000,
            },
            prune_every: Duration::from_secs(60),
        }
    }
}

impl RateLimitConfig {
    /// Rates and bursts above zero.
    pub fn validate(&self) -> Result<(), String> {
        for (name, q) in [
            ("auth", self.auth),
            ("llm", self.llm),
            ("general", self.general),
            ("write", self.write),
            ("query", self.query),
            ("bad_credentials", self.bad_credentials),
            ("spent_tickets", self.spent_tickets),
        ] {
            if q.per_minute == 0 || q.burst == 0 {
                return Err(format!(
                    "rate_limit.{name}: per_minute and burst must be at least 1"
                ));
            }
        }
        if self.llm_tokens_per_minute == 0
            || self.llm_token_burst < handlers::services::llm::MAX_MAX_TOKENS
        {
            return Err(format!(
                "rate_limit.llm_tokens_per_minute must be at least 1 and rate_limit.llm_token_burst at least {} (one call's maximum)",
                handlers::services::llm::MAX_MAX_TOKENS
            ));
        }
        Ok(())
    }
}

/// The classes, in the order of [`RateLimits::classes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Public auth methods.
    Auth = 0,
    /// LLM-backed services.
    Llm = 1,
    /// The rest.
    General = 2,
    /// Methods that change state (the `mutates` option), called by players: what fills the
    /// store, so it has a budget of its own below the general one.
    Write = 3,
    /// Queries that examine many records (the `RATE_CLASS_QUERY` option), called by players.
    Query = 4,
}

impl Class {
    /// The class of a method called by `principal`, from its descriptor. Service keys' writes
    /// and queries stay general: a game server writes and looks for many players.
    pub fn of(m: &MethodDesc, principal: Option<&Principal>) -> Class {
        let player = matches!(principal, Some(Principal::Player { .. }));
        match m.rate_class {
            RateClass::Auth => Class::Auth,
            RateClass::Llm => Class::Llm,
            RateClass::Query if player => Class::Query,
            RateClass::Query => Class::General,
            RateClass::Default if m.mutates && player => Class::Write,
            RateClass::Default => Class::General,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Class::Auth => "auth",
            Class::Llm => "llm",
            Class::General => "general",
            Class::Write => "write",
            Class::Query => "query",
        }
    }

    /// Its reason in `edge_refused_total`.
    fn metric_reason(self) -> &'static str {
        match self {
            Class::Auth => "rate_limit_auth",
            Class::Llm => "rate_limit_llm",
            Class::General => "rate_limit",
            Class::Write => "rate_limit_write",
            Class::Query => "rate_limit_query",
        }
    }
}

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

struct ClassLimiter {
    limiter: Limiter,
    policy: HeaderValue,
}

/// Every class's limiter.
pub struct RateLimits {
    classes: [ClassLimiter; 5],
    clock: DefaultClock,
    /// LLM token buckets (metered on the call path, see `quota`).
    pub tokens: Arc<crate::router::quota::TokenQuota>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("keys", &self.keys())
            .finish()
    }
}

fn limiter(class: Class, q: ClassQuota) -> ClassLimiter {
    let one = NonZeroU32::MIN;
    let quota = Quota::per_minute(NonZeroU32::new(q.per_minute).unwrap_or(one))
        .allow_burst(NonZeroU32::new(q.burst).unwrap_or(one));
    let policy = format!("\"{}\";q={};w=60", class.name(), q.per_minute);
    ClassLimiter {
        limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        policy: HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("\"default\"")),
    }
}

impl RateLimits {
    /// Limiters for the configured quotas.
    pub fn new(cfg: &RateLimitConfig) -> Self {
        RateLimits {
            classes: [
                limiter(Class::Auth, cfg.auth),
                limiter(Class::Llm, cfg.llm),
                limiter(Class::General, cfg.general),
                limiter(Class::Write, cfg.write),
                limiter(Class::Query, cfg.query),
            ],
            clock: DefaultClock::default(),
            tokens: Arc::new(crate::router::quota::TokenQuota::new(
                cfg.llm_tokens_per_minute,
                cfg.llm_token_burst,
            )),
        }
    }

    /// Keys currently tracked, across classes.
    pub fn keys(&self) -> usize {
        self.classes.iter().map(|c| c.limiter.len()).sum()
    }

    /// Forgets keys whose allowance is full again (nothing to remember).
    pub fn prune(&self) {
        for c in &self.classes {
            c.limiter.retain_recent();
            c.limiter.shrink_to_fit();
        }
        self.tokens.prune();
    }

    /// Checks one call of `m` that `principal` makes from inside the process (the operators'
    /// console), against the budget the layer would charge a request of theirs.
    pub fn admit(&self, m: &MethodDesc, principal: &Principal) -> Result<(), Status> {
        let class = Class::of(m, Some(principal));
        let key = match principal {
            Principal::Player { player_id } => format!("player:{player_id}"),
            p => p.describe(),
        };
        self.check(class, &key)
            .map(|_| ())
            .map_err(|(status, _)| status)
    }

    /// Checks one request; Ok carries the `RateLimit` header value.
    fn check(
        &self,
        class: Class,
        key: &String,
    ) -> Result<(HeaderValue, HeaderValue), (Status, HeaderValue)> {
        let c = &self.classes[class as usize];
        match c.limiter.check_key(key) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                // Formatted on the stack: the header value's copy is the only allocation.
                let mut buf = [0u8; 48];
                let mut w = &mut buf[..];
                let value = match write!(w, "\"{}\";r={remaining};t=0", class.name()) {
                    Ok(()) => {
                        let len = 48 - w.len();
                        HeaderValue::from_bytes(&buf[..len]).ok()
                    }
                    Err(_) => None,
                };
                Ok((
                    c.policy.clone(),
                    value.unwrap_or(HeaderValue::from_static("\"default\"")),
                ))
            }
            Err(not_until) => {
                crate::stats::refused(class.metric_reason());
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let status = Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "rate limit exceeded ({} requests); retry in {secs} s",
                        class.name()
                    ),
                )
                .with_retry_after(wait.max(Duration::from_millis(1)));
                Err((status, c.policy.clone()))
            }
        }
    }
}

/// Adds [`RateLimit`] around a service.
#[derive(Clone)]
pub struct RateLimitLayer {
    limits: Arc<RateLimits>,
}

impl RateLimitLayer {
    /// Enforces `limits`.
    pub fn layer(limits: Arc<RateLimits>) -> Self {
        RateLimitLayer { limits }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limits: Arc::clone(&self.limits),
        }
    }
}

/// The middleware.
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    limits: Arc<RateLimits>,
}

impl<S> Service<Request> for RateLimit<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + Unpin + 'static,
{
    type Response = Response;
    type Error = S::Error;
    // No box: the inner future with two headers to add, or a refusal already made.
    type Future = Either<WithRateLimit<S::Future>, Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // Set by the authentication layer outside this one for every Connect call.
        let Some(m) = req.extensions().get::<&'static MethodDesc>().copied() else {
            return Either::Left(WithRateLimit {
                inner: self.inner.call(req),
                headers: None,
            });
        };
        let principal = req.extensions().get::<Principal>();
        let class = Class::of(m, principal);
        // The key is written into this thread's buffer: the limiter looks it up by reference
        // and copies it only the first time it sees it.
        let checked = KEY.with_borrow_mut(|key| {
            key.clear();
            let _ = match (class, principal) {
                (Class::Auth, _) | (_, None) => match req.extensions().get::<ClientAddr>() {
                    Some(ClientAddr(ip)) => write!(key, "ip:{ip}"),
                    None => write!(key, "ip:unknown"),
                },
                (_, Some(Principal::Player { player_id })) => write!(key, "player:{player_id}"),
                (_, Some(p)) => write!(key, "{}", p.describe()),
            };
            self.limits.check(class, key)
        });
        match checked {
            Ok((policy, state)) => Either::Left(WithRateLimit {
                inner: self.inner.call(req),
                headers: Some((policy, state)),
            }),
            Err((status, policy)) => {
                let mut res = status_response(&status);
                res.headers_mut().insert("ratelimit-policy", policy);
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "\"{}\";r=0;t={}",
                    class.name(),
                    status.retry_after().map_or(1, |d| d.as_secs().max(1))
                )) {
                    res.headers_mut().insert("ratelimit", v);
                }
                Either::Right(futures_util::future::ready(Ok(res)))
            }
        }
    }
}

thread_local! {
    /// The key of the request being checked (see [`RateLimit::call`]).
    static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The inner answer with the `RateLimit` headers added.
pub struct WithRateLimit<F> {
    inner: F,
    headers: Option<(HeaderValue, HeaderValue)>,
}

impl<F, E> Future for WithRateLimit<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut res = match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(Ok(res)) => res,
            other => return other,
        };
        if let Some((policy, state)) = this.headers.take() {
            res.headers_mut().insert("ratelimit-policy", policy);
            res.headers_mut().insert("ratelimit", state);
        }
        Poll::Ready(Ok(res))
    }
}

/// Prunes idle keys every `every` until `stop` (owned by the server, which waits for it).
pub async fn prune(
    limits: Arc<RateLimits>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => limits.prune(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_come_from_the_descriptors() {
        let m = |p: &str| proto::method_by_path(p).unwrap();
        let player = Principal::Player {
            player_id: "p".into(),
        };
        let key = Principal::Service {
            name: "gs".into(),
            scopes: vec!["*".into()].into(),
        };
        let me = Some(&player);
        assert_eq!(
            Class::of(m("/aicore.auth.v1.AuthService/Login"), None),
            Class::Auth
        );
        assert_eq!(
            Class::of(m("/aicore.auth.v1.AuthService/Logout"), me),
            Class::Write
        );
        assert_eq!(
            Class::of(m("/aicore.llm.v1.LlmService/Infer"), me),
            Class::Llm
        );
        assert_eq!(
            Class::of(m("/aicore.story.v1.StoryService/Narrate"), me),
            Class::Llm
        );
        assert_eq!(
            Class::of(m("/aicore.state.v1.StateService/Get"), me),
            Class::General
        );
        assert_eq!(
            Class::of(m("/aicore.state.v1.StateService/Put"), me),
            Class::Write
        );
        assert_eq!(
            Class::of(m("/aicore.state.v1.StateService/Put"), Some(&key)),
            Class::General
        );
        assert_eq!(
            Class::of(m("/aicore.world.v1.WorldService/QueryEntities"), me),
            Class::Query
        );
        assert_eq!(
            Class::of(m("/aicore.world.v1.WorldService/QueryEntities"), Some(&key)),
            Class::General
        );
    }

    #[test]
    fn over_quota_is_refused_with_a_retry_time_and_keys_are_separate() {
        let cfg = RateLimitConfig {
            auth: ClassQuota {
                per_minute: 60,
                burst: 2,
            },
            ..RateLimitConfig::default()
        };
        let limits = RateLimits::new(&cfg);
        let (one, two) = ("ip:1".to_owned(), "ip:2".to_owned());
        assert!(limits.check(Class::Auth, &one).is_ok());
        assert!(limits.check(Class::Auth, &one).is_ok());
        let (status, _) = limits.check(Class::Auth, &one).unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.retry_after().unwrap() <= Duration::from_secs(1));
        assert!(
            limits.check(Class::Auth, &two).is_ok(),
            "another client is unaffected"
        );
        assert!(
            limits.check(Class::General, &one).is_ok(),
            "another class is unaffected"
        );
        assert_eq!(limits.keys(), 3);
    }
}
