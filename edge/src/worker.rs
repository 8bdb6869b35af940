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
    let _flush_logs_on_exit = crate::ops::telemetry::init(&config.log)?;
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
    let responder = Responder::start(
        client,
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
