//! Answering on NATS for services this process hosts: one NATS micro service per edge service
//! (so `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` answer and standard tooling lists them), its
//! endpoints in a queue group named after the service. `edge worker` runs one for the services it
//! is given; an edge with NATS runs one for the services it hosts, so a worker's call to them
//! finds responders. [`Responder::drain`] stops taking requests, finishes what was received and
//! flushes the replies. With signing keys, a request is answered only when an edge or a worker
//! signed it ([`super::signing`]); anything else is `unauthenticated` before any handler runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::service::ServiceExt as _;
use futures_util::StreamExt as _;
use handlers::{LocalService, Status};
use proto::{Codec, Encoded, MethodDesc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::RoutesConfig;
use super::headers;
use super::signing::SigningKeys;

/// How a responder bounds its work.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests handled at once, across its services; past it, 503 at once.
    pub max_concurrency: usize,
    /// The longest a unary request may run, whatever deadline it carries.
    pub max_deadline: Duration,
    /// The longest a stream may run.
    pub max_stream: Duration,
}

/// The NATS services of one process, and the tasks serving them.
pub struct Responder {
    services: Vec<async_nats::service::Service>,
    tracker: TaskTracker,
    /// Tripped near the end of the drain: open streams end with a "retry" error.
    closing: CancellationToken,
    /// Tripped in the drain while the connection is down: the endpoints stop waiting for
    /// requests (an unsubscribe only takes effect once the client is connected again).
    unreachable: CancellationToken,
    client: async_nats::Client,
}

impl Responder {
    /// Registers every service and starts serving its endpoints in queue groups; with `keys`,
    /// only signed requests are answered.
    pub async fn start(
        client: async_nats::Client,
        keys: Option<Arc<SigningKeys>>,
        local: &[LocalService],
        routes: &RoutesConfig,
        limits: Limits,
    ) -> Result<Responder, String> {
        let tracker = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(limits.max_concurrency.max(1)));
        crate::stats::worker_capacity(limits.max_concurrency.max(1));
        let closing = CancellationToken::new();
        let unreachable = CancellationToken::new();
        let mut services = Vec::new();
        for svc in local {
            let desc = svc.descriptor();
            let service = client
                .service_builder()
                .description(desc.doc)
                .start(desc.short, env!("CARGO_PKG_VERSION"))
                .await
                .map_err(|e| format!("cannot register NATS service {}: {e}", desc.short))?;
            let group = service.group_with_queue_group(routes.prefix(desc), desc.short);
            for method in desc.methods {
                let endpoint = group
                    .endpoint(method.snake)
                    .await
                    .map_err(|e| format!("cannot add endpoint {}: {e}", routes.subject(method)))?;
                tracker.spawn(serve_endpoint(
                    endpoint,
                    Endpoint {
                        svc: Arc::clone(svc),
                        method,
                        permits: Arc::clone(&permits),
                        max_deadline: limits.max_deadline,
                        client: client.clone(),
                        tasks: tracker.clone(),
                        closing: closing.clone(),
                        unreachable: unreachable.clone(),
                        max_stream: limits.max_stream,
                        keys: keys.clone(),
                    },
                ));
            }
            tracing::info!(service = desc.short, subjects = %format!("{}.*", routes.prefix(desc)), queue_group = desc.short, "serving over NATS");
            services.push(service);
        }
        Ok(Responder {
            services,
            tracker,
            closing,
            unreachable,
            client,
        })
    }

    /// Stops taking requests and finishes those received, within `timeout`; streams still open
    /// two seconds before it end with a "retry" error. Then flushes the replies.
    pub async fn drain(self, timeout: Duration) {
        // Stopping a service unsubscribes its endpoints; each endpoint stream still yields what
        // was already delivered, then ends, so queue-group peers take the rest.
        for service in self.services {
            if let Err(e) = service.stop().await {
                tracing::warn!(error = %e, "could not stop a NATS service; its subscriptions end with the connection");
            }
        }
        self.tracker.close();
        let grace = timeout.saturating_sub(Duration::from_secs(2));
        let close_streams = self.closing.clone();
        let stream_deadline = tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            close_streams.cancel();
        });
        let wait = self.tracker.wait();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(wait, deadline);
        let mut look = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                () = &mut wait => break,
                () = &mut deadline => {
                    tracing::warn!("shutdown timeout reached with NATS requests still running");
                    break;
                }
                _ = look.tick() => {
                    // Nothing more can arrive, and the unsubscribe would wait for a reconnect.
                    if !connected(&self.client) && !self.unreachable.is_cancelled() {
                        tracing::info!("NATS is unreachable; not waiting for more requests");
                        self.unreachable.cancel();
                    }
                }
            }
        }
        stream_deadline.abort();
        if connected(&self.client) {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.client.flush()).await;
        }
    }
}

fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

/// What one endpoint's requests need.
struct Endpoint {
    svc: LocalService,
    method: &'static MethodDesc,
    permits: Arc<Semaphore>,
    max_deadline: Duration,
    client: async_nats::Client,
    /// Every request runs as a task tracked here, so the drain waits for it.
    tasks: TaskTracker,
    closing: CancellationToken,
    unreachable: CancellationToken,
    max_stream: Duration,
    keys: Option<Arc<SigningKeys>>,
}

/// Serves one endpoint: each request is a task of its own (tracked, so the drain waits for it),
/// so the requests of one busy method use every core. Past `permits`, requests are refused at
/// once (503 at the edge).
async fn serve_endpoint(mut endpoint: async_nats::service::endpoint::Endpoint, ep: Endpoint) {
    loop {
        // What was delivered is still served; past that, an unreachable server sends nothing.
        let next = tokio::select! {
            biased;
            next = endpoint.next() => next,
            () = ep.unreachable.cancelled() => None,
        };
        let Some(request) = next else { break };
        let received = Instant::now();
        // Who the request speaks for is believed only when an edge or worker signed it;
        // anything else is refused before it takes a slot.
        if let Some(keys) = &ep.keys {
            let max = if ep.method.server_streaming {
                ep.max_stream
            } else {
                ep.max_deadline
            };
            if let Err(status) = keys.verify(
                request.message.subject.as_str(),
                request.message.headers.as_ref(),
                max,
            ) {
                crate::stats::refused("nats_unsigned");
                tracing::warn!(method = ep.method.path, reason = %status.message(), "refused a NATS request that no edge signed");
                refuse(request, ep.method, &status).await;
                continue;
            }
        }
        let permit = match Arc::clone(&ep.permits).try_acquire_owned() {
            Ok(permit) => Slot::new(permit),
            Err(_) => {
                crate::stats::refused("worker_capacity");
                refuse(
                    request,
                    ep.method,
                    &Status::unavailable("the worker is at capacity", Duration::from_secs(1)),
                )
                .await;
                continue;
            }
        };
        let h = request.message.headers.as_ref();
        match (&request.message.reply, super::stream::is_stream_request(h)) {
            (Some(reply), true) if ep.method.server_streaming => {
                let ctx = headers::context_from(h, received, ep.max_stream);
                if let Err(status) = handlers::kit::calls::admit(&ctx, ep.method) {
                    refuse(request, ep.method, &status).await;
                    continue;
                }
                let task = super::stream::serve(
                    ep.client.clone(),
                    Arc::clone(&ep.svc),
                    ep.method,
                    ctx,
                    request.message.payload.clone(),
                    super::stream::Reply {
                        subject: reply.to_string(),
                        version: super::stream::requested_version(h),
                    },
                    ep.closing.clone(),
                );
                ep.tasks.spawn(async move {
                    task.await;
                    drop(permit);
                });
            }
            (_, streaming) if streaming != ep.method.server_streaming => {
                let status = Status::invalid_argument(format!(
                    "{} is {}; this request asked for the other form",
                    ep.method.path,
                    if ep.method.server_streaming {
                        "a streaming method"
                    } else {
                        "a unary method"
                    }
                ));
                refuse(request, ep.method, &status).await;
            }
            _ => {
                // A child of the caller's span (its traceparent), when tracing is on.
                let span = crate::trace::worker_span(
                    ep.method,
                    h.and_then(|h| h.get(headers::TRACEPARENT))
                        .map(|v| v.as_str()),
                );
                ep.tasks.spawn(tracing::Instrument::instrument(
                    handle(
                        request,
                        Arc::clone(&ep.svc),
                        ep.method,
                        received,
                        ep.max_deadline,
                        permit,
                    ),
                    span,
                ));
            }
        }
    }
}

/// A worker's capacity slot, counted in `edge_worker_in_flight` while held (a request or a
/// stream): with `edge_worker_capacity`, how full the worker is before it refuses.
struct Slot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl Slot {
    fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Slot {
        crate::stats::worker_in_flight(1.0);
        Slot(permit)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        crate::stats::worker_in_flight(-1.0);
    }
}

/// Answers `request` with an error; a reply that cannot be sent is logged.
async fn refuse(request: async_nats::service::Request, method: &MethodDesc, status: &Status) {
    let (err, h) = headers::error_reply(status);
    if let Err(e) = request.respond_with_headers(Err(err), h).await {
        tracing::warn!(error = %e, method = method.path, "could not send a refusal");
    }
}

async fn handle(
    request: async_nats::service::Request,
    svc: LocalService,
    method: &'static MethodDesc,
    received: Instant,
    max_deadline: Duration,
    permit: Slot,
) {
    let ctx = headers::context_from(request.message.headers.as_ref(), received, max_deadline);
    let deadline = ctx.deadline;
    // A call from another service is checked here, where it arrives: declared, no cycle.
    let admitted = handlers::kit::calls::admit(&ctx, method);
    let call = svc.call(ctx, method, Codec::Proto, request.message.payload.clone());
    let result = match deadline {
        _ if admitted.is_err() => admitted.map(|()| Encoded::Unary(bytes::Bytes::new())),
        // Work whose caller has stopped waiting is not started; running work is bounded.
        Some(d) if d <= Instant::now() => Err(Status::deadline_exceeded(
            "the deadline passed before the worker started",
        )),
        Some(d) => tokio::time::timeout_at(d.into(), call)
            .await
            .unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(
                    "the worker did not finish before the deadline",
                ))
            }),
        None => call.await,
    };
    let code = result.as_ref().err().map(Status::code);
    crate::stats::worker_request(method, code, received.elapsed());
    crate::trace::record_code(&tracing::Span::current(), code);
    let sent = match result {
        Ok(Encoded::Unary(bytes)) => request.respond(Ok(bytes)).await,
        Ok(Encoded::Stream(_)) => {
            let (err, h) =
                headers::error_reply(&Status::internal("a unary method returned a stream"));
            request.respond_with_headers(Err(err), h).await
        }
        Err(status) => {
            let (err, h) = headers::error_reply(&status);
            request.respond_with_headers(Err(err), h).await
        }
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, method = method.path, "could not send a reply");
    }
    drop(permit);
}
