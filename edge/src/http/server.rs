//! The HTTPS server: accept, TLS handshake (bounded), HTTP/1.1 or HTTP/2 by ALPN, and the drain on
//! SIGTERM: readiness 503 at once, keep serving for the drain delay, stop accepting, let in-flight
//! requests finish, exit 0 within the shutdown timeout. Every task it spawns is tracked and awaited.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::config::Config;
use crate::error::BoxError;
use crate::http::linger::Lingering;
use crate::http::tls;
use crate::layers::client_addr::PeerAddr;
use crate::nats::responder::{Limits, Responder};
use crate::ops::admin;
use crate::state::AppState;

// HTTP/2 flood limits, set here rather than left to hyper's and h2's defaults (which have
// changed between releases); README (Operations, the fault drills) and SECURITY.md (27) say what
// they give, and tests/tests/floods.rs checks it frame by frame.

/// Streams the client resets before the server has accepted them, at once (rapid reset,
/// CVE-2023-44487). The server accepts each stream as soon as its frames are read, so these
/// pile up only within one burst of frames: a client cancelling its own requests stays far
/// below. The 21st closes the connection: GOAWAY `ENHANCE_YOUR_CALM`, "too_many_resets".
const H2_MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams the server resets because the client broke the protocol on them (a bad frame on a
/// stream, a stream over `http.max_concurrent_streams`: "MadeYouReset"), over the connection's
/// life. A conforming client causes none, so 100 is generous (hyper's default is 1024). The
/// 101st: GOAWAY `ENHANCE_YOUR_CALM`, "too_many_internal_resets".
const H2_MAX_LOCAL_ERROR_RESETS: usize = 100;
/// The largest frame read: the protocol's minimum, 16 KiB. With `http.max_header_bytes` it bounds
/// a header block's CONTINUATION frames (CVE-2024-27316): h2 allows max(5, 1.25 x
/// max_header_bytes / 16 KiB) of them, 5 at the default 32 KiB, and at the next one closes the
/// connection: GOAWAY `ENHANCE_YOUR_CALM`, "too_many_continuations".
const H2_MAX_FRAME_SIZE: u32 = 16 * 1024;

/// Per-connection settings.
#[derive(Debug, Clone)]
struct ConnOpts {
    handshake_timeout: Duration,
    idle_timeout: Duration,
    max_concurrent_streams: u32,
    max_headers: usize,
    max_header_bytes: usize,
    /// One permit per open client connection.
    connections: Arc<tokio::sync::Semaphore>,
}

/// SIGTERM and SIGINT, as a stream of names.
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn new() -> Result<Self, BoxError> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Loads TLS, opens the store, binds both listeners and serves until a signal has drained it.
pub async fn run(config: Config) -> Result<(), BoxError> {
    let (cert, key) = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => {
            let (dev, created) = tls::ensure_dev_certs(&config.data_dir)?;
            if created {
                tracing::info!(ca = %dev.ca.display(), "generated a development certificate; trust this CA in clients (never use it in production)");
            } else {
                tracing::info!(ca = %dev.ca.display(), "using the development certificate");
            }
            (dev.cert, dev.key)
        }
    };
    let resolver = tls::CertResolver::new(tls::load_certified_key(&cert, &key)?);
    let tls_config = tls::server_config(Arc::clone(&resolver))?;
    crate::stats::install();
    let state = AppState::open(config.clone()).await?;
    state.health.set_tls_loaded();

    // Who signs and verifies what crosses NATS (said once when nobody does).
    let keys = crate::nats::signing::SigningKeys::parse(&state.config.nats.signing_keys)?;
    if state.nats.is_some() {
        crate::nats::signing::warn_if_unsigned(keys.as_deref());
    }
    // Workers' services call the ones hosted here over NATS; without this they find no one.
    let responder = match (&state.nats, state.config.nats.serve_local) {
        (Some(client), true) => Some(
            Responder::start(
                client.clone(),
                keys,
                &state.local_services(),
                &state.config.routes,
                Limits {
                    max_concurrency: state.config.nats.serve_max_concurrency,
                    max_deadline: state.config.http.request_timeout,
                    max_stream: state.config.streams.max_duration,
                },
            )
            .await?,
        ),
        _ => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| crate::ops::admin::bind_error(config.admin_listen, &e))?;
    // So `edge keys` on this data directory asks this edge (which holds its redb file),
    // whatever flags it is given. Recorded before "listening" is logged, so whoever waits
    // for that line (a script, the tests) finds it.
    if config.store.backend == crate::store::StoreBackend::Redb
        && let Err(e) =
            crate::store::record_admin_address(&config.data_dir, admin_listener.local_addr()?)
    {
        tracing::warn!(error = %e, "cannot record the admin address; `edge keys` will not find this edge");
    }
    tracing::info!(
        https = %listener.local_addr()?,
        admin = %admin_listener.local_addr()?,
        data_dir = %config.data_dir.display(),
        "listening"
    );
    let signals = Signals::new()?;
    serve(
        listener,
        admin_listener,
        TlsAcceptor::from(tls_config),
        state,
        signals,
        (resolver, cert, key),
        responder,
    )
    .await
}

async fn serve(
    listener: TcpListener,
    admin_listener: TcpListener,
    acceptor: TlsAcceptor,
    state: AppState,
    mut signals: Signals,
    (resolver, cert, key): (
        Arc<tls::CertResolver>,
        std::path::PathBuf,
        std::path::PathBuf,
    ),
    responder: Option<Responder>,
) -> Result<(), BoxError> {
    let config = Arc::clone(&state.config);
    let opts = Arc::new(ConnOpts {
        handshake_timeout: config.tls.handshake_timeout,
        idle_timeout: config.http.idle_timeout,
        max_concurrent_streams: config.http.max_concurrent_streams,
        max_headers: config.http.max_headers,
        max_header_bytes: config.http.max_header_bytes,
        connections: Arc::new(tokio::sync::Semaphore::new(config.http.max_connections)),
    });
    let tracker = TaskTracker::new();
    let graceful = GracefulShutdown::new();
    let stop_background = CancellationToken::new();
    let admin_app = admin::app(state.clone(), admin_listener.local_addr()?.port());
    let stop = stop_background.clone();
    let recorded =
        (config.store.backend == crate::store::StoreBackend::Redb).then(|| config.data_dir.clone());
    tracker.spawn(async move {
        let serve =
            axum::serve(admin_listener, admin_app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "admin listener failed");
        }
        // Closed: `edge keys` must not send its token to this address any more.
        if let Some(dir) = recorded {
            crate::store::forget_admin_address(&dir);
        }
    });
    tracker.spawn(crate::stats::upkeep(stop_background.clone()));
    tracker.spawn(tls::reload(
        resolver,
        cert,
        key,
        config.tls.reload_interval,
        stop_background.clone(),
    ));
    tracker.spawn(crate::ops::janitor::run(
        state.store(),
        config.idempotency.prune_every,
        stop_background.clone(),
    ));
    tracker.spawn(crate::ops::audit::keep_for(
        state.store(),
        config.console.audit_retention,
        stop_background.clone(),
    ));
    tracker.spawn(crate::ops::janitor::sync_revoked(
        Arc::clone(&state.auth),
        std::time::Duration::from_secs(1),
        stop_background.clone(),
    ));
    tracker.spawn(crate::layers::ratelimit::prune(
        Arc::clone(&state.limits),
        config.rate_limit.prune_every,
        stop_background.clone(),
    ));
    state.watch_cluster(&tracker, stop_background.clone());
    if let Some(client) = &state.nats {
        tracker.spawn(crate::nats::probe::run(
            client.clone(),
            state.probes.clone(),
            stop_background.clone(),
        ));
    }
    if let Some(world) = state.world_janitor() {
        tracker
            .spawn(world.run_janitor(std::time::Duration::from_secs(5), stop_background.clone()));
    }
    if let Some(library) = state.kb_library() {
        tracker.spawn(library.follow(stop_background.clone()));
    }
    if let Some(scheduler) = state.time_scheduler() {
        tracker.spawn(scheduler.run(stop_background.clone()));
    }
    if let Some(weather) = state.weather_herald() {
        tracker.spawn(weather.run_herald(stop_background.clone()));
    }
    if let Some(engine) = state.orchestration() {
        tracker.spawn(engine.resume(stop_background.clone()));
    }
    if let (Some(client), Some(found)) = (&state.nats, &state.discovered) {
        tracker.spawn(crate::nats::discovery::run(
            client.clone(),
            Arc::clone(found),
            crate::nats::probe::INTERVAL,
            stop_background.clone(),
        ));
    }
    let app = crate::app(state.clone());

    // Serve until the first signal.
    let first = accept_until(
        &listener,
        &acceptor,
        &app,
        &opts,
        &graceful,
        &tracker,
        signals.next(),
    )
    .await;
    let started = Instant::now();
    state.health.start_draining();
    tracing::info!(
        signal = first,
        drain_delay_ms = config.shutdown.drain_delay.as_millis() as u64,
        "draining: readiness is 503; still serving while the load balancer deregisters"
    );

    // Keep serving through the drain delay; a second signal forces an exit.
    let delay = tokio::time::sleep(config.shutdown.drain_delay);
    let forced = tokio::select! {
        _ = accept_until(&listener, &acceptor, &app, &opts, &graceful, &tracker, delay) => false,
        _ = signals.next() => true,
    };
    if forced {
        tracing::warn!("second signal: exiting without finishing in-flight requests");
        crate::ops::telemetry::exit_now(1);
    }

    // Stop accepting, let in-flight requests finish, within what is left of the timeout.
    drop(listener);
    stop_background.cancel();
    // Open streams get a final "reconnect" event and end, so the drain finishes in time.
    state.api.streams.close();
    let remaining = config.shutdown.timeout.saturating_sub(started.elapsed());
    tracing::info!(
        remaining_ms = remaining.as_millis() as u64,
        "stopped accepting; finishing in-flight requests"
    );
    tracker.close();
    let finish = async {
        let nats_requests = async {
            if let Some(responder) = responder {
                responder.drain(remaining).await;
            }
        };
        tokio::join!(graceful.shutdown(), tracker.wait(), nats_requests);
    };
    tokio::select! {
        r = tokio::time::timeout(remaining, finish) => {
            if r.is_err() {
                tracing::warn!("shutdown timeout reached; closing the remaining connections");
            } else {
                tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "drained; exiting");
            }
        }
        _ = signals.next() => {
            tracing::warn!("second signal: exiting without finishing in-flight requests");
            crate::ops::telemetry::exit_now(1);
        }
    }
    if let Some(nats) = &state.nats {
        // Replies are all in; flush what is buffered and close cleanly.
        let _ = tokio::time::timeout(Duration::from_secs(2), nats.drain()).await;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn accept_until<F: Future>(
    listener: &TcpListener,
    acceptor: &TlsAcceptor,
    app: &Router,
    opts: &Arc<ConnOpts>,
    graceful: &GracefulShutdown,
    tracker: &TaskTracker,
    until: F,
) -> F::Output {
    let mut until = std::pin::pin!(until);
    loop {
        tokio::select! {
            out = &mut until => return out,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // Over the cap the connection is closed at once: a reset the client (or the
                    // load balancer) retries elsewhere beats a socket that waits in the backlog.
                    let Ok(slot) = Arc::clone(&opts.connections).try_acquire_owned() else {
                        crate::stats::refused("connection_cap");
                        tracing::debug!(peer = %peer, "connection cap reached; closing");
                        drop(tcp);
                        continue;
                    };
                    let conn = connection(tcp, peer, acceptor.clone(), app.clone(), Arc::clone(opts), graceful.watcher());
                    tracker.spawn(async move {
                        crate::stats::connections_open(1.0);
                        conn.await;
                        crate::stats::connections_open(-1.0);
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    opts: Arc<ConnOpts>,
    watcher: Watcher,
) {
    let _ = tcp.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + opts.handshake_timeout;
    // A TLS connection starts with a handshake record (0x16); an HTTP request with its method's
    // capital letter. Plain HTTP gets a plain answer, not a failed handshake curl shows as
    // "Received HTTP/0.9 when not allowed".
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
        Ok(Ok(1)) if first[0].is_ascii_uppercase() => {
            crate::stats::tls_handshake_failed("plain_http");
            answer_plain_http(tcp, deadline).await;
            return;
        }
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return,
        Err(_) => {
            crate::stats::tls_handshake_failed("timeout");
            return;
        }
    }
    let tls = match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            crate::stats::tls_handshake_failed("error");
            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            crate::stats::tls_handshake_failed("timeout");
            tracing::debug!(peer = %peer, "TLS handshake timed out");
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let max_header_bytes = opts.max_header_bytes;
    let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(PeerAddr(peer));
        let app = app.clone();
        async move {
            // hyper bounds its read buffer, not the header block itself: count it here, for
            // HTTP/1.1 and HTTP/2 alike, before anything looks at the headers.
            let size: usize = req
                .headers()
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum();
            if size > max_header_bytes {
                return Ok(crate::error::with_status(
                    http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    &handlers::Status::invalid_argument(format!(
                        "request headers are larger than {max_header_bytes} bytes"
                    )),
                ));
            }
            app.oneshot(req.map(Body::new)).await
        }
    });
    let io = TokioIo::new(Lingering::new(tls));
    let result = if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(20)))
            .keep_alive_timeout(Duration::from_secs(20))
            .max_concurrent_streams(opts.max_concurrent_streams)
            .max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX))
            .max_frame_size(H2_MAX_FRAME_SIZE)
            .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESETS)
            .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS);
        watcher.watch(builder.serve_connection(io, service)).await
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Bounds both the wait for headers and the idle time between requests, so it must stay
        // above the load balancer's idle timeout (else it sees sporadic 502s).
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(opts.idle_timeout)
            // The read buffer holds the request line and header block; the exact header limit
            // (431) is checked per request below.
            .max_buf_size(opts.max_header_bytes + 16 * 1024)
            .max_headers(opts.max_headers);
        watcher.watch(builder.serve_connection(io, service)).await
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}

/// Tells a plain-HTTP client this port speaks HTTPS (400, then close). Reads what it sent for a
/// moment first, so closing with unread bytes does not reset the connection under the answer.
async fn answer_plain_http(mut tcp: TcpStream, deadline: tokio::time::Instant) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    const BODY: &str = "This port speaks HTTPS: use https:// (plain HTTP is not served).\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let exchange = async {
        let mut buf = [0u8; 4096];
        let _ = tcp.read(&mut buf).await?;
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await?;
        // Until the client closes, up to 64 KiB.
        let mut left = 64 * 1024usize;
        while left > 0 {
            match tcp.read(&mut buf).await? {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
        Ok::<(), std::io::Error>(())
    };
    // Within the handshake's deadline, like any other connection that is not TLS yet.
    let until = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
    let _ = tokio::time::timeout_at(until, exchange).await;
}
