//! OpenAI-compatible paths answer every error in OpenAI's `{"error": {...}}` shape, also those
//! of the layers below them (a bad token, a rate limit, shedding, a panic), so an OpenAI SDK
//! shows the message. Errors are recognised by their [`ErrorStatus`] mark, never by parsing a
//! body; other paths pass through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use http::Response;
use tower::{Layer, Service};

use crate::error::{ErrorStatus, openai_error_json};

/// Adds [`OpenAiErrors`] around a service, for paths starting with `prefix`.
#[derive(Debug, Clone, Copy)]
pub struct OpenAiErrorsLayer {
    prefix: &'static str,
}

impl OpenAiErrorsLayer {
    /// The layer, for paths under `prefix` (e.g. `/v1/chat/`).
    pub fn layer(prefix: &'static str) -> Self {
        OpenAiErrorsLayer { prefix }
    }
}

impl<S> Layer<S> for OpenAiErrorsLayer {
    type Service = OpenAiErrors<S>;
    fn layer(&self, inner: S) -> OpenAiErrors<S> {
        OpenAiErrors {
            inner,
            prefix: self.prefix,
        }
    }
}

/// The middleware.
#[derive(Debug, Clone)]
pub struct OpenAiErrors<S> {
    inner: S,
    prefix: &'static str,
}

impl<S> Service<Request> for OpenAiErrors<S>
where
    S: Service<Request, Response = Response<Body>>,
    S::Future: Unpin,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Reshaped<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        Reshaped {
            openai: req.uri().path().starts_with(self.prefix),
            inner: self.inner.call(req),
        }
    }
}

/// The inner response, an error's body rewritten on an OpenAI-compatible path.
pub struct Reshaped<F> {
    inner: F,
    openai: bool,
}

impl<F, E> Future for Reshaped<F>
where
    F: Future<Output = Result<Response<Body>, E>> + Unpin,
{
    type Output = Result<Response<Body>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let openai = self.openai;
        let mut res = match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(Ok(res)) => res,
            other => return other,
        };
        if openai && let Some(ErrorStatus(status)) = res.extensions_mut().remove::<ErrorStatus>() {
            res.headers_mut().remove(http::header::CONTENT_LENGTH);
            *res.body_mut() = Body::from(openai_error_json(&status));
        }
        Poll::Ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use handlers::Status;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    async fn answer(path: &str) -> (http::StatusCode, serde_json::Value) {
        let inner = tower::service_fn(|_req: Request| {
            std::future::ready(Ok::<_, Infallible>(crate::error::status_response(
                &Status::unauthenticated("missing bearer token"),
            )))
        });
        let svc = OpenAiErrorsLayer::layer("/v1/chat/").layer(inner);
        let req = Request::builder().uri(path).body(Body::empty()).unwrap();
        let res = svc.oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn errors_on_openai_paths_take_openai_s_shape_others_keep_connect_s() {
        let (status, body) = answer("/v1/chat/completions").await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["message"], "missing bearer token");
        assert_eq!(body["error"]["type"], "authentication_error");
        assert_eq!(body["error"]["code"], "unauthenticated");
        let (status, body) = answer("/aicore.state.v1.StateService/Get").await;
        assert_eq!(status, 401);
        assert_eq!(body["code"], "unauthenticated");
        assert_eq!(body["message"], "missing bearer token");
    }
}
