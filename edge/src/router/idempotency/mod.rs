//! `Idempotency-Key` for every mutating method (the `mutates` option in the protos), local or
//! remote: the first call's outcome is stored and a repeat gets it back without running the
//! handler again; the same key with a different body is 422; a repeat while the first call runs
//! is 409 `aborted`. Records live in the shared store, so a retry that lands on another replica
//! sees them too.
//!
//! Keys are scoped to the caller and the method: one player's key never reveals another's
//! response. Calls without a principal (public methods such as Register) are not recorded: their
//! responses hold fresh credentials, which are not kept at rest.
//!
//! What is stored: success and the outcomes a retry would get again (invalid argument, failed
//! precondition, not found, ...). Transient failures (unavailable, deadline exceeded, aborted,
//! internal) release the key, so the client's retry runs the call again. A call whose client
//! vanished holds the key until its deadline (the lease); then a retry may run it again. Payments
//! are exactly once even then, because the payment ledger also keys on the Idempotency-Key.

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use handlers::kit::clock::now_ms;
use handlers::kit::leaky_bucket::LeakyBuckets;
use handlers::kit::store::{Store, StoreError};
use handlers::{Code, Principal, Status};
use proto::{BoxFuture, Codec, Encoded, MethodDesc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use crate::router::{Call, Reply};

/// Store key prefix of idempotency records.
const PREFIX: &str = "idem.";
/// Longest accepted key (as in the IETF draft's examples and Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;
/// Extra lease past the call's deadline, for the reply to be recorded.
const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// Whether `key` is acceptable as an `Idempotency-Key`: 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// SHA-256 of the request's protobuf encoding.
    fingerprint: String,
    /// While running: the end of the lease. Done: the end of retention.
    until_ms: u64,
    #[serde(default)]
    done: Option<Outcome>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    /// The reply, protobuf, base64.
    Ok(String),
    /// The status: Connect code, HTTP status, message.
    Err(String, u16, String),
}

/// Whether a failed call's outcome is what a retry would get again, so it is kept.
fn keeps(code: Code) -> bool {
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Unauthenticated => true,
        Code::Canceled
        | Code::Unknown
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss => false,
    }
}

/// What idempotency wraps: a service of calls shaped like the router.
pub trait CallService:
    tower::Service<Call, Response = Reply, Error = Status, Future = BoxFuture<Result<Reply, Status>>>
{
}

impl<T> CallService for T where
    T: tower::Service<
            Call,
            Response = Reply,
            Error = Status,
            Future = BoxFuture<Result<Reply, Status>>,
        >
{
}

/// Wraps the service router with idempotency records.
#[derive(Clone)]
pub struct IdempotencyLayer {
    store: Arc<dyn Store>,
    retention: Duration,
    budget: Arc<Budget>,
}

/// New records per principal: they stay a whole retention period, so each principal's share of
/// the store is bounded. A game server's key writes for many players, so keys get more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// New records per player per retention period (per process).
    pub per_player: u32,
    /// New records per service key per retention period (per process).
    pub per_key: u32,
}

struct Budget {
    players: LeakyBuckets<String>,
    keys: LeakyBuckets<String>,
}

impl Budget {
    fn of(&self, p: &Principal) -> &LeakyBuckets<String> {
        match p {
            Principal::Player { .. } => &self.players,
            Principal::Service { .. } => &self.keys,
        }
    }
}

impl IdempotencyLayer {
    /// Records in `store`, kept for `retention`, at most `limits` new ones per principal.
    pub fn layer(store: Arc<dyn Store>, retention: Duration, limits: RecordLimits) -> Self {
        IdempotencyLayer {
            store,
            retention,
            budget: Arc::new(Budget {
                players: LeakyBuckets::new(limits.per_player, retention),
                keys: LeakyBuckets::new(limits.per_key, retention),
            }),
        }
    }
}

impl<S> tower::Layer<S> for IdempotencyLayer {
    type Service = Idempotency<S>;
    fn layer(&self, inner: S) -> Idempotency<S> {
        Idempotency {
            inner,
            store: Arc::clone(&self.store),
            retention: self.retention,
            budget: Arc::clone(&self.budget),
        }
    }
}

/// The service of [`IdempotencyLayer`].
#[derive(Clone)]
pub struct Idempotency<S> {
    inner: S,
    store: Arc<dyn Store>,
    retention: Duration,
    budget: Arc<Budget>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Idempotency<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("inner", &self.inner)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl<S> tower::Service<Call> for Idempotency<S>
where
    S: CallService + Clone + Send + 'static,
{
    type Response = Reply;
    type Error = Status;
    type Future = BoxFuture<Result<Reply, Status>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        if !call.method.mutates || call.method.server_streaming || call.method.keys_itself {
            return self.inner.call(call);
        }
        let (Some(key), Some(principal)) = (&call.ctx.idempotency_key, &call.ctx.principal) else {
            return self.inner.call(call);
        };
        let record_key = record_key(principal, call.method, key);
        let run = Run {
            store: Arc::clone(&self.store),
            retention: self.retention,
            record_key,
            budget: Arc::clone(&self.budget),
            who: principal.clone(),
            // A call between services was caused by a client's call, which was charged.
            charged: call.ctx.chain.is_empty(),
        };
        // The clone is ready: the router's poll_ready is always ready (see router.rs).
        let inner = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, inner);
        // Its records' reads and writes retry within the call's deadline, as the handler's do.
        let deadline = call.ctx.deadline;
        Box::pin(handlers::kit::retry::within(
            deadline,
            run.call(inner, call),
        ))
    }
}

fn record_key(principal: &Principal, method: &MethodDesc, key: &str) -> String {
    let scope = format!("{}\n{}\n{key}", principal.describe(), method.path);
    format!("{PREFIX}{:x}", Sha256::digest(scope.as_bytes()))
}

struct Run {
    store: Arc<dyn Store>,
    retention: Duration,
    record_key: String,
    budget: Arc<Budget>,
    who: Principal,
    charged: bool,
}

impl Run {
    async fn call<S>(self, mut inner: S, call: Call) -> Result<Reply, Status>
    where
        S: CallService,
    {
        let method = call.method;
        let codec = call.codec;
        // Fingerprint and run on the protobuf form: JSON and protobuf clients of the same request
        // match, and the stored reply can be answered in either.
        let body = match codec {
            Codec::Proto => call.body.clone(),
            Codec::Json => Bytes::from((method.transcode.json_to_proto)(&call.body)?),
        };
        // Map entries sorted first: prost writes maps in hash order, so two encodings of one
        // request differ.
        let fingerprint = format!(
            "{:x}",
            Sha256::digest(proto::canonical::canonical(method.input_type, &body))
        );
        let lease_end = call.ctx.deadline.unwrap_or_else(Instant::now) + LEASE_MARGIN;
        let lease_ms = now_ms()
            + u64::try_from(
                lease_end
                    .saturating_duration_since(Instant::now())
                    .as_millis(),
            )
            .unwrap_or(u64::MAX / 2);

        let version = match self.claim(&fingerprint, lease_ms).await? {
            Claim::Replay(outcome) => return answer(outcome, method, codec),
            Claim::Owned(version) => version,
        };
        let result = inner
            .call(Call {
                codec: Codec::Proto,
                body,
                ..call
            })
            .await;
        let outcome = match &result {
            Ok(Encoded::Unary(bytes)) => Some(Outcome::Ok(STANDARD.encode(bytes))),
            Err(status) if keeps(status.code()) => Some(Outcome::Err(
                status.code().as_str().to_owned(),
                crate::error::http_for(status).as_u16(),
                status.message().to_owned(),
            )),
            _ => None,
        };
        self.finish(version, fingerprint, outcome).await;
        match result {
            Ok(Encoded::Unary(bytes)) => Ok(Encoded::Unary(to_codec(bytes, method, codec)?)),
            other => other,
        }
    }

    async fn claim(&self, fingerprint: &str, lease_ms: u64) -> Result<Claim, Status> {
        // Two rounds: a lost race means someone else claimed it; the second read says how.
        for _ in 0..2 {
            let now = now_ms();
            let (expected, existing) = match self.store.get(&self.record_key).await? {
                None => (0, None),
                Some(v) => {
                    let record: Record = serde_json::from_slice(&v.value).map_err(|e| {
                        Status::internal(format!("corrupt idempotency record: {e}"))
                    })?;
                    (v.version, Some(record).filter(|r| r.until_ms > now))
                }
            };
            if let Some(record) = existing {
                if record.fingerprint != fingerprint {
                    return Err(Status::unprocessable(
                        "this Idempotency-Key was already used with a different request body",
                    ));
                }
                return match record.done {
                    Some(outcome) => Ok(Claim::Replay(outcome)),
                    None => Err(Status::aborted(
                        "a request with this Idempotency-Key is still in progress; retry after it finishes",
                    )
                    .with_retry_after(Duration::from_secs(1))),
                };
            }
            let budget = self.budget.of(&self.who);
            let who = self.who.describe();
            if let Some(wait) = budget.full(&who).filter(|_| self.charged) {
                crate::stats::refused("idempotency_records");
                return Err(Status::new(
                    Code::ResourceExhausted,
                    "too many distinct Idempotency-Keys from this caller; reuse keys only for retries",
                )
                .with_retry_after(wait.max(Duration::from_secs(1))));
            }
            let record = Record {
                fingerprint: fingerprint.to_owned(),
                until_ms: lease_ms,
                done: None,
            };
            match self
                .store
                .put(&self.record_key, to_json(&record)?, Some(expected))
                .await
            {
                Ok(version) => {
                    if self.charged {
                        budget.add(&who);
                    }
                    return Ok(Claim::Owned(version));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::aborted(
            "a request with this Idempotency-Key is still in progress; retry after it finishes",
        )
        .with_retry_after(Duration::from_secs(1)))
    }

    /// Records the outcome, or releases the key when there is none to keep. A failure here is
    /// logged, not returned: the call itself happened and its answer must reach the client.
    async fn finish(&self, version: u64, fingerprint: String, outcome: Option<Outcome>) {
        let result = match outcome {
            Some(done) => {
                let retention_ms =
                    u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX / 2);
                let record = Record {
                    fingerprint,
                    until_ms: now_ms() + retention_ms,
                    done: Some(done),
                };
                match to_json(&record) {
                    Ok(bytes) => self
                        .store
                        .put(&self.record_key, bytes, Some(version))
                        .await
                        .map(drop),
                    Err(_) => Ok(()),
                }
            }
            None => self
                .store
                .delete(&self.record_key, Some(version))
                .await
                .map(drop),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "idempotency record not updated; the key stays leased until its deadline");
        }
    }
}

enum Claim {
    Replay(Outcome),
    Owned(u64),
}

fn to_json(record: &Record) -> Result<Bytes, Status> {
    serde_json::to_vec(record)
        .map(Bytes::from)
        .map_err(Status::internal)
}

fn to_codec(proto: Bytes, method: &MethodDesc, codec: Codec) -> Result<Bytes, Status> {
    match codec {
        Codec::Proto => Ok(proto),
        Codec::Json => Ok(Bytes::from((method.transcode.proto_to_json)(&proto)?)),
    }
}

fn answer(outcome: Outcome, method: &MethodDesc, codec: Codec) -> Result<Reply, Status> {
    match outcome {
        Outcome::Ok(b64) => {
            let proto = STANDARD
                .decode(b64)
                .map_err(|e| Status::internal(format!("corrupt idempotency record: {e}")))?;
            Ok(Encoded::Unary(to_codec(Bytes::from(proto), method, codec)?))
        }
        Outcome::Err(code, http, message) => {
            let code = Code::parse(&code).unwrap_or(Code::Unknown);
            Err(crate::error::status_with_http(code, http, message))
        }
    }
}

/// One pass over the records; returns how many were removed.
pub async fn prune_once(store: &dyn Store, stop: &CancellationToken) -> Result<usize, StoreError> {
    let now = now_ms();
    handlers::kit::store::prune_prefix(
        store,
        PREFIX,
        |v| serde_json::from_slice::<Record>(v).map_or(true, |r| r.until_ms <= now),
        || stop.is_cancelled(),
    )
    .await
}

#[cfg(test)]
mod tests;

/// Idempotency-Key records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// How long a recorded response is answered to repeats of its key.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// New records one player may make per retention period, per process; past it, 429.
    pub max_records_per_player: u32,
    /// New records one service key may make per retention period, per process (a game server
    /// writes for many players); past it, 429.
    pub max_records_per_key: u32,
    /// How often expired records (idempotency records, refresh tokens) are deleted.
    #[serde(with = "humantime_serde")]
    pub prune_every: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            retention: Duration::from_secs(24 * 3600),
            max_records_per_player: 20_000,
            max_records_per_key: 2_000_000,
            prune_every: Duration::from_secs(600),
        }
    }
}
