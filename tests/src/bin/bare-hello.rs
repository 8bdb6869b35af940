//! The benchmarks' baselines, with the same TLS and HTTP/1.1 settings as edge and nothing else:
//! - `bare-hello CERT KEY LISTEN` answers "hello";
//! - `bare-hello CERT KEY LISTEN NATS_URL` answers with one raw NATS request/reply to `bench.echo`;
//! - `bare-hello responder NATS_URL` is that trivial responder (echoes the payload);
//! - either server also takes `POST /sse/record` (a JSON array of strings) once, and then answers
//!   `POST /sse` (whatever its body: the benchmark sends the edge's request bytes) with those
//!   strings as SSE `data:` events and a final `event: end`: the streaming baseline;
//! - and `POST /answer/record` (any body, with its `content-type`), after which `GET` or `POST
//!   /answer` (whatever its body) answers those very bytes with that content type: the baseline
//!   of a big answer (the benchmark records the edge's own answer to the request it compares).
//!
//! It uses the edge's allocator (mimalloc), so the ratios compare the servers' work, not glibc's.
//!
//! Prints `listening <addr>` (or `responding`) once ready.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use futures_util::StreamExt as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::ServiceExt as _;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The NATS client (if relaying), the recorded SSE frames and the recorded answer.
#[derive(Clone)]
struct Shared {
    nats: Option<async_nats::Client>,
    recorded: Arc<std::sync::RwLock<Arc<Vec<Bytes>>>>,
    answer: Arc<std::sync::RwLock<Answer>>,
}

/// A recorded answer: its content type and body (both cheap to clone: shared, not copied).
#[derive(Clone, Default)]
struct Answer {
    content_type: Option<http::HeaderValue>,
    body: Bytes,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, mode, url] if mode == "responder" => responder(url, "bench.echo").await,
        [_, mode, url, subject] if mode == "responder" => responder(url, subject).await,
        [_, cert, key, listen] => serve(cert, key, listen, None).await,
        [_, cert, key, listen, url] => serve(cert, key, listen, Some(url)).await,
        _ => Err(
            "usage: bare-hello CERT KEY LISTEN [NATS_URL] | bare-hello responder NATS_URL [SUBJECT]".into(),
        ),
    }
}

async fn responder(url: &str, subject: &str) -> Result<(), BoxError> {
    let client = async_nats::connect(url).await?;
    let mut sub = client
        .queue_subscribe(subject.to_owned(), "bench".into())
        .await?;
    client.flush().await?;
    println!("responding");
    while let Some(msg) = sub.next().await {
        if let Some(reply) = msg.reply {
            client.publish(reply, msg.payload).await?;
        }
    }
    Ok(())
}

async fn via_nats(
    State(shared): State<Shared>,
    body: Bytes,
) -> Result<Bytes, axum::http::StatusCode> {
    match shared.nats {
        Some(c) => c
            .request("bench.echo", body)
            .await
            .map(|m| m.payload)
            .map_err(|_| axum::http::StatusCode::SERVICE_UNAVAILABLE),
        None => Ok(Bytes::from_static(b"hello")),
    }
}

async fn sse_record(State(shared): State<Shared>, body: Bytes) -> axum::http::StatusCode {
    let events: Vec<String> = serde_json::from_slice(&body).unwrap_or_default();
    let frames: Vec<Bytes> = events
        .into_iter()
        .map(|e| Bytes::from(format!("data: {e}\n\n")))
        .chain(std::iter::once(Bytes::from_static(
            b"event: end\ndata: {}\n\n",
        )))
        .collect();
    if let Ok(mut r) = shared.recorded.write() {
        *r = Arc::new(frames);
    }
    axum::http::StatusCode::NO_CONTENT
}

async fn answer_record(
    State(shared): State<Shared>,
    headers: http::HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    let recorded = Answer {
        content_type: headers.get(http::header::CONTENT_TYPE).cloned(),
        body,
    };
    if let Ok(mut a) = shared.answer.write() {
        *a = recorded;
    }
    axum::http::StatusCode::NO_CONTENT
}

/// The recorded answer; the request's body is read (as the edge reads it) and dropped.
async fn answer(State(shared): State<Shared>, _body: Bytes) -> axum::response::Response {
    let a = shared.answer.read().map(|a| a.clone()).unwrap_or_default();
    let mut res = axum::response::Response::new(Body::from(a.body));
    if let Some(ct) = a.content_type {
        res.headers_mut().insert(http::header::CONTENT_TYPE, ct);
    }
    res
}

async fn sse_echo(State(shared): State<Shared>) -> axum::response::Response {
    let recorded = shared
        .recorded
        .read()
        .map(|r| Arc::clone(&r))
        .unwrap_or_default();
    let frames =
        (0..recorded.len()).map(move |i| Ok::<_, std::convert::Infallible>(recorded[i].clone()));
    let mut res =
        axum::response::Response::new(Body::from_stream(futures_util::stream::iter(frames)));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    res
}

async fn serve(cert: &str, key: &str, listen: &str, nats: Option<&String>) -> Result<(), BoxError> {
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let client = match nats {
        Some(url) => Some(async_nats::connect(url.as_str()).await?),
        None => None,
    };
    let app = Router::new()
        .route("/hello", get(via_nats).post(via_nats))
        .route("/sse", axum::routing::post(sse_echo))
        .route("/sse/record", axum::routing::post(sse_record))
        .route("/answer", get(answer).post(answer))
        .route("/answer/record", axum::routing::post(answer_record))
        .with_state(Shared {
            nats: client,
            recorded: Arc::default(),
            answer: Arc::default(),
        });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening {}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(req.map(Body::new))
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}
