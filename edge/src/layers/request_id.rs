//! `X-Request-Id` on every request and its response, as one Layer + Service: the client's id when
//! it sent a sane one (1 to 128 visible ASCII characters), else a fresh UUID. Everything inside
//! (logs, handlers, NATS headers) reads the request's header; no extension is stored.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use http::{HeaderName, HeaderValue, Response};
use tower::{Layer, Service};

/// The header.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-supplied id kept.
pub const MAX_LEN: usize = 128;

/// Adds [`SetRequestId`] around a service.
#[derive(Debug, Clone, Copy)]
pub struct RequestIdLayer;

impl RequestIdLayer {
    /// The layer.
    pub fn layer() -> Self {
        RequestIdLayer
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = SetRequestId<S>;
    fn layer(&self, inner: S) -> SetRequestId<S> {
        SetRequestId { inner }
    }
}

/// The middleware.
#[derive(Debug, Clone)]
pub struct SetRequestId<S> {
    inner: S,
}

fn acceptable(v: &HeaderValue) -> bool {
    (1..=MAX_LEN).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
}

/// A random UUID, written straight into the header value.
fn fresh() -> Option<HeaderValue> {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(id).ok()
}

impl<S, B> Service<Request> for SetRequestId<S>
where
    S: Service<Request, Response = Response<B>>,
    S::Future: Unpin,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = WithRequestId<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let id = match req.headers().get(&REQUEST_ID) {
            Some(v) if acceptable(v) => Some(v.clone()),
            _ => fresh(),
        };
        if let Some(id) = &id {
            req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
        }
        WithRequestId {
            inner: self.inner.call(req),
            id,
        }
    }
}

/// The response future: copies the id onto the response, unless a handler set one.
pub struct WithRequestId<F> {
    inner: F,
    id: Option<HeaderValue>,
}

impl<F, B, E> Future for WithRequestId<F>
where
    F: Future<Output = Result<Response<B>, E>> + Unpin,
{
    type Output = Result<Response<B>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut res = match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(Ok(res)) => res,
            other => return other,
        };
        if let Some(id) = this.id.take() {
            res.headers_mut().entry(&REQUEST_ID).or_insert(id);
        }
        Poll::Ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    use axum::body::Body;
    use tower::ServiceExt as _;

    type Reply = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    /// Answers with the request id it saw in a `seen` header.
    fn echo(req: Request) -> Reply {
        let seen = req.headers().get(&REQUEST_ID).cloned();
        Box::pin(async move {
            let mut res = Response::new(Body::empty());
            if let Some(v) = seen {
                res.headers_mut().insert("seen", v);
            }
            Ok(res)
        })
    }

    #[tokio::test]
    async fn ids_are_kept_or_made_and_reach_both_sides() {
        let svc = RequestIdLayer::layer().layer(tower::service_fn(echo));
        let res = svc
            .clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let id = res.headers()[&REQUEST_ID].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_eq!(
            res.headers()["seen"],
            id.as_str(),
            "the handler saw the same id"
        );

        let res = svc
            .clone()
            .oneshot(
                Request::get("/")
                    .header("x-request-id", "client-7")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.headers()[&REQUEST_ID], "client-7");
        assert_eq!(res.headers()["seen"], "client-7");

        let long = "x".repeat(MAX_LEN + 1);
        for bad in [long.as_str(), "has space"] {
            let res = svc
                .clone()
                .oneshot(
                    Request::get("/")
                        .header("x-request-id", bad)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let id = res.headers()[&REQUEST_ID].to_str().unwrap();
            assert_eq!(id.len(), 36, "{bad:?} replaced by a fresh id, got {id}");
        }
    }
}
