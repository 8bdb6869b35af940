//! `edge worker`: the same handlers, served over NATS. One NATS micro service per edge service
//! (so `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` answer and standard tooling lists them), its
//! endpoints in a queue group named after the service. On SIGTERM it stops taking requests,
//! finishes what it already received, flushes the replies and exits 0.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::service::ServiceExt as _;
use futures_util::StreamExt as _;
use handlers::{LocalService, Status};
use proto::{Codec, Encoded, MethodDesc};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::headers;
use crate::cli::WorkerArgs;
use crate::{AppState, BoxError, Config};

/// Runs a worker until SIGTERM/SIGINT.
pub async fn run(args: WorkerArgs) -> Result<(), BoxError> {
    let config = Config::load(&args.serve)?;
    let _flush_logs_on_exit = crate::telemetry::init(&config.log)?;
    if config.nats.url.is_none() {
        return Err("edge worker needs a NATS URL (--nats / EDGE_NATS_URL)".into());
    }
    crate::stats::install();
    let state = AppState::open(config.clone()).await?;
    state.health.set_tls_not_served();
    let client = state
        .nats
        .clone()
        .ok_or("edge worker needs a NATS connection")?;
    let local = handlers_by_name(&state, &args.services)?;
    // Probes and metrics, for container health checks and scrapes (no route table: a worker
    // routes nothing). Bound before joining any queue group, so a taken port fails the start.
    let admin = tokio::net::TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| crate::admin::bind_error(config.admin_listen, &e))?;

    let tracker = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(args.max_concurrency.max(1)));
    let max_deadline = config.http.request_timeout;
    // Tripped near the end of the shutdown timeout: open streams end with a "retry" error.
    let closing = tokio_util::sync::CancellationToken::new();
    let mut services = Vec::new();
    for svc in local {
        let desc = svc.descriptor();
        let service = client
            .service_builder()
            .description(desc.doc)
            .start(desc.short, env!("CARGO_PKG_VERSION"))
            .await
            .map_err(|e| format!("cannot register NATS service {}: {e}", desc.short))?;
        let group = service.group_with_queue_group(config.routes.prefix(desc), desc.short);
        for method in desc.methods {
            let endpoint = group.endpoint(method.snake).await.map_err(|e| {
                format!("cannot add endpoint {}: {e}", config.routes.subject(method))
            })?;
            tracker.spawn(serve_endpoint(
                endpoint,
                Endpoint {
                    svc: Arc::clone(&svc),
                    method,
                    permits: Arc::clone(&permits),
                    max_deadline,
                    client: client.clone(),
                    streams: tracker.clone(),
                    closing: closing.clone(),
                    max_stream: config.streams.max_duration,
                },
            ));
        }
        tracing::info!(service = desc.short, subjects = %format!("{}.*", config.routes.prefix(desc)), queue_group = desc.short, "serving over NATS");
        services.push(service);
    }
    let background = TaskTracker::new();
    let stop_background = tokio_util::sync::CancellationToken::new();
    let stop = stop_background.clone();
    let admin_app = crate::admin::worker_app(state.clone());
    tracing::info!(admin = %admin.local_addr()?, "admin listening");
    background.spawn(async move {
        let serve = axum::serve(admin, admin_app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    background.spawn(crate::stats::upkeep(stop_background.clone()));
    // The worker's own store (redb) holds what its services write, e.g. auth's refresh tokens.
    background.spawn(crate::janitor::run(
        state.store(),
        config.idempotency.prune_every,
        stop_background.clone(),
    ));
    tracing::info!(services = %args.services.join(","), "worker ready");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    state.health.start_draining();
    tracing::info!("draining: no new requests; finishing those received");
    // Stopping a service unsubscribes its endpoints; each endpoint stream still yields what was
    // already delivered, then ends, so queue-group peers take the rest.
    for service in services {
        let _ = service.stop().await;
    }
    tracker.close();
    let grace = config
        .shutdown
        .timeout
        .saturating_sub(Duration::from_secs(2));
    let close_streams = closing.clone();
    let stream_deadline = tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        close_streams.cancel();
    });
    if tokio::time::timeout(config.shutdown.timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout reached with requests still running");
    }
    stream_deadline.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
    stop_background.cancel();
    background.close();
    background.wait().await;
    tracing::info!("drained; exiting");
    Ok(())
}

fn handlers_by_name(state: &AppState, names: &[String]) -> Result<Vec<LocalService>, BoxError> {
    let all = state.local_services();
    names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|name| {
            all.iter()
                .find(|s| s.descriptor().short == name.as_str())
                .cloned()
                .ok_or_else(|| {
                    let have: Vec<_> = all.iter().map(|s| s.descriptor().short).collect();
                    format!(
                        "this build does not implement service {name:?}; implemented: {}",
                        have.join(", ")
                    )
                    .into()
                })
        })
        .collect()
}

/// What one endpoint's requests need.
struct Endpoint {
    svc: LocalService,
    method: &'static MethodDesc,
    permits: Arc<Semaphore>,
    max_deadline: Duration,
    client: async_nats::Client,
    /// Streams run as their own tasks here, so the drain waits for them.
    streams: TaskTracker,
    closing: tokio_util::sync::CancellationToken,
    max_stream: Duration,
}

/// Serves one endpoint. Its unary requests run concurrently inside this task rather than one
/// spawned task each: a spawn per request cost a cross-thread wake-up that showed as the worker's
/// largest cost in the NATS benchmark. Streams, long-lived, get a tracked task each. Past
/// `permits`, requests are refused at once (503 at the edge).
async fn serve_endpoint(mut endpoint: async_nats::service::endpoint::Endpoint, ep: Endpoint) {
    let mut inflight = futures_util::stream::FuturesUnordered::new();
    let mut open = true;
    while open || !inflight.is_empty() {
        tokio::select! {
            Some(()) = inflight.next(), if !inflight.is_empty() => {}
            next = endpoint.next(), if open => match next {
                None => open = false,
                Some(request) => {
                    let received = Instant::now();
                    let permit = match Arc::clone(&ep.permits).try_acquire_owned() {
                        Ok(permit) => permit,
                        Err(_) => {
                            crate::stats::refused("worker_capacity");
                            let (err, h) = headers::error_reply(&Status::unavailable("the worker is at capacity", Duration::from_secs(1)));
                            let _ = request.respond_with_headers(Err(err), h).await;
                            continue;
                        }
                    };
                    let h = request.message.headers.as_ref();
                    match (&request.message.reply, super::stream::is_stream_request(h)) {
                        (Some(reply), true) if ep.method.server_streaming => {
                            let ctx = headers::context_from(h, received, ep.max_stream);
                            let task = super::stream::serve(
                                ep.client.clone(),
                                Arc::clone(&ep.svc),
                                ep.method,
                                ctx,
                                request.message.payload.clone(),
                                reply.to_string(),
                                ep.closing.clone(),
                            );
                            ep.streams.spawn(async move {
                                task.await;
                                drop(permit);
                            });
                        }
                        (_, streaming) if streaming != ep.method.server_streaming => {
                            let (err, h) = headers::error_reply(&Status::invalid_argument(format!(
                                "{} is {}; this request asked for the other form",
                                ep.method.path,
                                if ep.method.server_streaming { "a streaming method" } else { "a unary method" }
                            )));
                            let _ = request.respond_with_headers(Err(err), h).await;
                        }
                        _ => inflight.push(handle(request, Arc::clone(&ep.svc), ep.method, received, ep.max_deadline, permit)),
                    }
                }
            },
        }
    }
}
async fn handle(
    request: async_nats::service::Request,
    svc: LocalService,
    method: &'static MethodDesc,
    received: Instant,
    max_deadline: Duration,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let ctx = headers::context_from(request.message.headers.as_ref(), received, max_deadline);
    let deadline = ctx.deadline;
    let call = svc.call(ctx, method, Codec::Proto, request.message.payload.clone());
    let result = match deadline {
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
    crate::stats::worker_request(
        method,
        result.as_ref().err().map(Status::code),
        received.elapsed(),
    );
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
