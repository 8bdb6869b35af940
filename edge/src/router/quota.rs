//! LLM calls metered by cost, not by count: a token bucket per principal (governor, GCRA) that a
//! call draws on for its prompt and its completion. A unary call reserves its prompt and its whole
//! `maxTokens` up front; a stream reserves its prompt and a first slice of completion, then
//! another slice each time it has used up the last, so a long stream pays for what it streams. A
//! call that cannot be paid for is refused at once (429 + Retry-After); a stream whose quota runs
//! out mid-way ends with an `event: error` (`resource_exhausted`), never a silent cut. Counters
//! are per replica, like every rate limit.
//!
//! It sits on both call paths (a Layer + Service over the router, see `stack.rs`), so the Connect
//! path, `/v1/chat/completions` and a call between services (`language.Translate` -> `llm`) pay
//! the same way, each from the bucket of whoever started the chain (`Context::payer`).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt as _;
use governor::clock::{Clock as _, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use handlers::{Code, Status};
use proto::aicore::llm::v1::InferRequest;
use proto::{BoxFuture, Encoded};
use tower::{Layer, Service};

use crate::router::{Call, Reply};

/// Completion tokens a stream reserves at a time.
const SLICE: u32 = 64;

type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// The token buckets.
pub struct TokenQuota {
    limiter: Limiter,
    clock: DefaultClock,
    burst: u32,
}

impl std::fmt::Debug for TokenQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenQuota")
            .field("keys", &self.limiter.len())
            .finish()
    }
}

impl TokenQuota {
    /// `per_minute` sustained, `burst` at once, per principal.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let one = NonZeroU32::MIN;
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(one))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(one));
        TokenQuota {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            burst,
        }
    }

    /// Takes `tokens` from `key`'s bucket, or says when there will be enough.
    pub fn take(&self, key: &String, tokens: u32) -> Result<(), Status> {
        let n = NonZeroU32::new(tokens).unwrap_or(NonZeroU32::MIN);
        let result = self.limiter.check_key_n(key, n);
        if !matches!(result, Ok(Ok(()))) {
            crate::stats::refused("llm_quota");
        }
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "LLM token quota exhausted ({tokens} tokens needed); retry in {secs} s"
                    ),
                )
                .with_retry_after(wait.max(Duration::from_millis(1))))
            }
            Err(_) => Err(Status::new(
                Code::ResourceExhausted,
                format!(
                    "this call needs {tokens} tokens, more than the quota's burst of {}; lower maxTokens or shorten the prompt",
                    self.burst
                ),
            )),
        }
    }

    /// Forgets principals whose bucket is full again.
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Adds [`TokenMeter`] around the router.
#[derive(Clone)]
pub struct TokenQuotaLayer {
    quota: Option<Arc<TokenQuota>>,
}

impl TokenQuotaLayer {
    /// Meters with `quota`; `None` passes everything (rate limiting off).
    pub fn layer(quota: Option<Arc<TokenQuota>>) -> Self {
        TokenQuotaLayer { quota }
    }
}

impl<S> Layer<S> for TokenQuotaLayer {
    type Service = TokenMeter<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TokenMeter {
            inner,
            quota: self.quota.clone(),
        }
    }
}

/// The middleware.
#[derive(Clone)]
pub struct TokenMeter<S> {
    inner: S,
    quota: Option<Arc<TokenQuota>>,
}

impl<S> std::fmt::Debug for TokenMeter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenMeter").finish_non_exhaustive()
    }
}

impl<S> Service<Call> for TokenMeter<S>
where
    S: Service<Call, Response = Reply, Error = Status, Future = BoxFuture<Result<Reply, Status>>>
        + Clone
        + Send
        + 'static,
{
    type Response = Reply;
    type Error = Status;
    type Future = BoxFuture<Result<Reply, Status>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (Some(quota), "llm") = (self.quota.clone(), call.method.service) else {
            // Already boxed: passed on as it is, not boxed again.
            return inner.call(call);
        };
        // Cost follows the origin: a call between services is charged to the player or key that
        // started its chain, never to the service that passes it on.
        let key = call
            .ctx
            .payer()
            .map_or_else(|| "anonymous".to_owned(), handlers::Principal::describe);
        Box::pin(async move {
            // An undecodable or invalid body is the handler's to reject, with its own message.
            let req = match proto::codec::decode::<InferRequest>(call.codec, &call.body) {
                Ok(req) if handlers::services::llm::validate(&req).is_ok() => req,
                _ => return inner.call(call).await,
            };
            let prompt = handlers::services::llm::estimate_prompt_tokens(&req);
            let completion = handlers::services::llm::max_tokens(&req);
            let streaming = call.method.server_streaming;
            let upfront = if streaming {
                completion.min(SLICE)
            } else {
                completion
            };
            quota.take(&key, prompt.saturating_add(upfront))?;
            match inner.call(call).await? {
                Encoded::Stream(stream) if streaming => {
                    Ok(Encoded::Stream(meter(stream, quota, key, upfront)))
                }
                other => Ok(other),
            }
        })
    }
}

/// Counts a stream's messages (about a token each) and reserves another slice whenever the last
/// is spent; ends the stream with `resource_exhausted` when the bucket is empty.
fn meter(
    stream: proto::BoxStream<Result<bytes::Bytes, Status>>,
    quota: Arc<TokenQuota>,
    key: String,
    reserved: u32,
) -> proto::BoxStream<Result<bytes::Bytes, Status>> {
    let mut used = 0u32;
    let mut reserved = reserved;
    let mut stopped = false;
    Box::pin(stream.scan((), move |(), item| {
        if stopped {
            return std::future::ready(None);
        }
        used = used.saturating_add(1);
        if used > reserved {
            match quota.take(&key, SLICE) {
                Ok(()) => reserved = reserved.saturating_add(SLICE),
                Err(status) => {
                    stopped = true;
                    return std::future::ready(Some(Err(Status::new(
                        Code::ResourceExhausted,
                        format!("{}; the stream was ended", status.message()),
                    ))));
                }
            }
        }
        std::future::ready(Some(item))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_over_the_burst_is_refused_without_retry() {
        let q = TokenQuota::new(600, 100);
        let k = "player:p".to_owned();
        let s = q.take(&k, 101).unwrap_err();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(s.retry_after().is_none());
        q.take(&k, 100).unwrap();
        let s = q.take(&k, 50).unwrap_err();
        assert!(s.retry_after().is_some());
        q.take(&"player:other".to_owned(), 100).unwrap();
    }

    #[tokio::test]
    async fn a_stream_pays_as_it_goes_and_ends_loudly() {
        // Burst 100: 64 up front, one more slice of 64 does not fit.
        let q = Arc::new(TokenQuota::new(1, 100));
        let key = "player:p".to_owned();
        q.take(&key, 64).unwrap();
        let items =
            futures_util::stream::iter((0..200).map(|i| Ok(bytes::Bytes::from(format!("{i}")))));
        let out: Vec<_> = meter(Box::pin(items), q, key, 64).collect().await;
        assert_eq!(out.len(), 65, "64 paid messages, then the error");
        assert_eq!(
            out[64].as_ref().unwrap_err().code(),
            Code::ResourceExhausted
        );
    }
}
