//! `edge worker`: the same handlers, served over NATS (see [`crate::nats::responder`]), with the
//! admin listener for probes and metrics. On SIGTERM it stops taking requests, finishes what it
//! already received, flushes the replies and exits 0.

use handlers::LocalService;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::WorkerArgs;
use crate::config::Config;
use crate::error::BoxError;
use crate::nats::responder::{Limits, Responder};
use crate::state::AppState;

/// Runs a worker until SIGTERM/SIGINT.
pub async fn run(args: WorkerArgs) -> Result<(), BoxError> {
    let mut config = Config::load(&args.serve)?;
    let mut otel = config.otel.clone();
    if otel.service_name == crate::ops::otel::OtelConfig::default().service_name {
        otel.service_name = "edge-worker".into();
    }
    let _flush_logs_on_exit = crate::ops::telemetry::init(&config.log, &otel)?;
    if config.nats.url.is_none() {
        return Err("edge worker needs a NATS URL (--nats / EDGE_NATS_URL)".into());
    }
    let hosted: Vec<&str> = args
        .services
        .iter()
        .map(String::as_str)
        .filter(|n| !n.is_empty())
        .collect();
    if let Some(unknown) = hosted
        .iter()
        .find(|n| proto::ServiceDesc::by_short(n).is_none())
    {
        return Err(format!("there is no service {unknown:?}").into());
    }
    // What this worker does not host, its services reach over NATS (an edge or another worker),
    // so any placement gives the same answers.
    config.routes.remote = proto::SERVICES
        .iter()
        .filter(|s| !hosted.contains(&s.short))
        .map(|s| s.short.to_owned())
        .collect();
    crate::stats::install();
    let state = AppState::open(config.clone()).await?;
    state.health.set_tls_not_served();
    let client = state
        .nats
        .clone()
        .ok_or("edge worker needs a NATS connection")?;
    let local = handlers_by_name(&state, &hosted)?;
    // Probes and metrics, for container health checks and scrapes (no route table: a worker
    // routes nothing). Bound before joining any queue group, so a taken port fails the start.
    let admin = tokio::net::TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| crate::ops::admin::bind_error(config.admin_listen, &e))?;
    let keys = crate::nats::signing::SigningKeys::parse(&config.nats.signing_keys)?;
    crate::nats::signing::warn_if_unsigned(keys.as_deref());
    let responder = Responder::start(
        client,
        keys,
        &local,
        &config.routes,
        Limits {
            max_concurrency: args.max_concurrency,
            max_deadline: config.http.request_timeout,
            max_stream: config.streams.max_duration,
        },
    )
    .await?;

    let background = TaskTracker::new();
    let stop_background = CancellationToken::new();
    let stop = stop_background.clone();
    let admin_app = crate::ops::admin::worker_app(state.clone());
    tracing::info!(admin = %admin.local_addr()?, "admin listening");
    background.spawn(async move {
        let serve = axum::serve(admin, admin_app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    background.spawn(crate::stats::upkeep(stop_background.clone()));
    state.watch_cluster(&background, stop_background.clone());
    if let Some(world) = state.world_janitor() {
        background
            .spawn(world.run_janitor(std::time::Duration::from_secs(5), stop_background.clone()));
    }
    if let Some(library) = state.kb_library() {
        background.spawn(library.follow(stop_background.clone()));
    }
    if let Some(scheduler) = state.time_scheduler() {
        background.spawn(scheduler.run(stop_background.clone()));
    }
    if let Some(weather) = state.weather_herald() {
        background.spawn(weather.run_herald(stop_background.clone()));
    }
    if let Some(engine) = state.orchestration() {
        background.spawn(engine.resume(stop_background.clone()));
    }
    let id = worker_id(args.worker_id.as_deref())?;
    background.spawn(announce(
        state.clone(),
        id,
        hosted.iter().map(|s| (*s).to_owned()).collect(),
        stop_background.clone(),
    ));
    // The worker's own store (redb) holds what its services write, e.g. auth's refresh tokens.
    background.spawn(crate::ops::janitor::run(
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
    responder.drain(config.shutdown.timeout).await;
    stop_background.cancel();
    background.close();
    background.wait().await;
    tracing::info!("drained; exiting");
    Ok(())
}

fn handlers_by_name(state: &AppState, names: &[&str]) -> Result<Vec<LocalService>, BoxError> {
    let local = state.local_services();
    names
        .iter()
        .map(|name| {
            local
                .iter()
                .find(|s| s.descriptor().short == *name)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "this build does not implement service {name:?}; implemented: {}",
                        state.implemented().join(", ")
                    )
                    .into()
                })
        })
        .collect()
}

/// The worker's registry id: the one given, or `<host>-<pid>`.
fn worker_id(given: Option<&str>) -> Result<String, BoxError> {
    if let Some(id) = given {
        if !handlers::services::capability::valid_worker_id(id) {
            return Err(format!(
                "worker id {id:?} must be 1 to 64 lowercase letters, digits, '-' or '_'"
            )
            .into());
        }
        return Ok(id.to_owned());
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_else(|_| "worker".into())
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect::<String>();
    Ok(format!("{host}-{}", std::process::id()))
}

/// Registers this worker in the registry (capability, wherever it runs) and keeps its lease
/// alive until `stop`; then deregisters it. Failures are retried: a worker serves whether or
/// not the registry is reachable.
async fn announce(state: AppState, id: String, services: Vec<String>, stop: CancellationToken) {
    use proto::aicore::capability::v1::{
        DeregisterRequest, HeartbeatRequest, RegisterRequest, Worker,
    };
    let register = RegisterRequest {
        worker: Some(Worker {
            id: id.clone(),
            services,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Worker::default()
        }),
    };
    let mut lease: Option<std::time::Duration> = None;
    let mut warned = false;
    loop {
        let result = match lease {
            None => call::<_, proto::aicore::capability::v1::RegisterResponse>(
                &state, &id, "Register", &register,
            )
            .await
            .map(|r| r.lease_seconds),
            Some(_) => call::<_, proto::aicore::capability::v1::HeartbeatResponse>(
                &state,
                &id,
                "Heartbeat",
                &HeartbeatRequest {
                    worker_id: id.clone(),
                },
            )
            .await
            .map(|r| r.lease_seconds),
        };
        let wait = match result {
            Ok(seconds) => {
                if lease.is_none() || warned {
                    tracing::info!(worker = %id, lease_seconds = seconds, "registered in the worker registry");
                }
                warned = false;
                let l = std::time::Duration::from_secs(u64::from(seconds.max(1)));
                lease = Some(l);
                l / 3
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(worker = %id, code = e.code().as_str(), error = %e.message(), "worker registry unreachable; retrying");
                    warned = true;
                }
                // A lapsed or unknown registration is made again.
                if e.code() == handlers::Code::NotFound {
                    lease = None;
                }
                std::time::Duration::from_secs(2)
            }
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    if lease.is_some() {
        let _ = call::<_, proto::aicore::capability::v1::DeregisterResponse>(
            &state,
            &id,
            "Deregister",
            &DeregisterRequest {
                worker_id: id.clone(),
            },
        )
        .await;
    }
}

/// One capability call as this worker, through the router (over NATS to whoever hosts it).
async fn call<Q, R>(
    state: &AppState,
    id: &str,
    method: &str,
    req: &Q,
) -> Result<R, handlers::Status>
where
    Q: prost::Message,
    R: prost::Message + Default,
{
    let desc = proto::ServiceDesc::by_short("capability")
        .and_then(|s| s.methods.iter().find(|m| m.name == method))
        .ok_or_else(|| handlers::Status::internal(format!("no capability.{method}")))?;
    let ctx = handlers::Context {
        principal: Some(handlers::Principal::Service {
            name: format!("worker:{id}"),
            scopes: ["Register", "Heartbeat", "Deregister"]
                .iter()
                .map(|m| format!("capability.{m}"))
                .collect(),
        }),
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(5)),
        request_id: format!("worker-{id}-{}", method.to_ascii_lowercase()),
        ..handlers::Context::default()
    };
    let call = crate::router::Call {
        method: desc,
        codec: proto::Codec::Proto,
        body: bytes::Bytes::from(req.encode_to_vec()),
        ctx,
    };
    match tower::Service::call(&mut state.router.clone(), call).await? {
        proto::Encoded::Unary(bytes) => {
            R::decode(bytes).map_err(|e| handlers::Status::internal(e.to_string()))
        }
        proto::Encoded::Stream(_) => Err(handlers::Status::internal("a stream from capability")),
    }
}
