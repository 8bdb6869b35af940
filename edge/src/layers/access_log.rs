//! One log event per request (method, path, status, latency, request id) and its metrics, as a
//! Layer + Service.
//! Cheaper than a span per request at INFO: the per-request span is DEBUG (enable it with
//! `--log edge=debug,info` to tie handler logs to request ids). Server errors (5xx) are always
//! logged, even with the access log off.

use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use http::HeaderValue;
use proto::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument as _;

/// Adds [`AccessLog`] around a service.
#[derive(Debug, Clone, Copy)]
pub struct AccessLogLayer {
    every_request: bool,
}

impl AccessLogLayer {
    /// `every_request`: log successes too, not only server errors.
    pub fn layer(every_request: bool) -> Self {
        AccessLogLayer { every_request }
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AccessLog {
            inner,
            every_request: self.every_request,
        }
    }
}

/// The middleware.
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
    every_request: bool,
}

impl<S, B> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = http::Response<B>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<B>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let start = Instant::now();
        let method = req.method().clone();
        // Clones of shared buffers, not copies: most requests never log them.
        let uri = req.uri().clone();
        let id = req
            .headers()
            .get(&crate::layers::request_id::REQUEST_ID)
            .cloned();
        let id_str = move |id: &Option<HeaderValue>| -> String {
            id.as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let span = if crate::trace::enabled() {
            // Named by its route, never the raw path; a client's traceparent is its parent.
            crate::trace::request_span(
                &method,
                || crate::stats::route_label(uri.path()),
                req.headers()
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok()),
            )
        } else {
            tracing::debug_span!("request", method = %method, path = %uri.path(), request_id = %id_str(&id))
        };
        // The whole request runs in its span, the access log line included.
        let fut = span.in_scope(|| self.inner.call(req));
        let every_request = self.every_request;
        let outer = span.clone();
        Box::pin(async move {
            let result = fut.await;
            if let Ok(res) = &result {
                let status = res.status().as_u16();
                let elapsed = start.elapsed();
                let path = uri.path();
                crate::stats::http_request(path, status, elapsed);
                crate::trace::record_status(&span, status);
                let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                if status >= 500 {
                    let trace_id = crate::trace::trace_id(&span);
                    tracing::warn!(%method, %path, status, latency_us, request_id = %id_str(&id), trace_id, "request failed");
                } else if every_request {
                    let trace_id = crate::trace::trace_id(&span);
                    tracing::info!(%method, %path, status, latency_us, request_id = %id_str(&id), trace_id, "request");
                }
            }
            result
        }
        .instrument(outer))
    }
}
