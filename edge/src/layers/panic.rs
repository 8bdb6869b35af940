//! A panicking handler becomes a 500 for its request, not a dropped connection, as a Layer +
//! Service. Unlike tower-http's `CatchPanic`, the response body keeps its type: that one boxes
//! every response body (and axum boxes it again on the way out), for every request, to cover
//! the rare panic.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use futures_util::FutureExt as _;
use futures_util::future::{CatchUnwind, Either, Map, Ready};
use handlers::Status;
use tower::{Layer, Service};

use crate::error::status_response;

/// Adds [`CatchPanic`] around a service.
#[derive(Debug, Clone, Copy)]
pub struct CatchPanicLayer;

impl CatchPanicLayer {
    /// The layer.
    pub fn layer() -> Self {
        CatchPanicLayer
    }
}

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;
    fn layer(&self, inner: S) -> CatchPanic<S> {
        CatchPanic { inner }
    }
}

/// The middleware.
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

type Caught<E> = Result<Result<Response, E>, Box<dyn Any + Send>>;

/// A panic's response; the panic's message (if it has one) goes to the log, not the client.
fn recover<E>(result: Caught<E>) -> Result<Response, E> {
    result.unwrap_or_else(|panic| Ok(panic_response(panic.as_ref())))
}

fn panic_response(panic: &(dyn Any + Send)) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a handler panicked");
    status_response(&Status::internal("a handler panicked"))
}

impl<S> Service<Request> for CatchPanic<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    #[allow(clippy::type_complexity)]
    type Future = Either<
        Map<
            CatchUnwind<AssertUnwindSafe<S::Future>>,
            fn(Caught<S::Error>) -> Result<Response, S::Error>,
        >,
        Ready<Result<Response, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(fut) => Either::Left(
                AssertUnwindSafe(fut)
                    .catch_unwind()
                    .map(recover::<S::Error> as fn(_) -> _),
            ),
            Err(panic) => Either::Right(futures_util::future::ready(Ok(panic_response(
                panic.as_ref(),
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn a_panic_is_a_500_and_the_next_request_is_served() {
        let svc = CatchPanicLayer::layer().layer(tower::service_fn(|req: Request| async move {
            if req.uri().path() == "/boom" {
                panic!("boom");
            }
            Ok::<_, std::convert::Infallible>(Response::new(Body::from("fine")))
        }));
        let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();
        let res = svc.clone().oneshot(get("/boom")).await.unwrap();
        assert_eq!(res.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        // Connect's `internal`, and nothing of the panic's message.
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["code"], "internal");
        assert!(!String::from_utf8_lossy(&body).contains("boom"), "{json}");
        let res = svc.oneshot(get("/ok")).await.unwrap();
        assert_eq!(res.status(), http::StatusCode::OK);
    }

    #[tokio::test]
    async fn a_panic_before_the_future_is_a_500_too() {
        #[derive(Clone)]
        struct PanicsInCall;
        impl Service<Request> for PanicsInCall {
            type Response = Response;
            type Error = std::convert::Infallible;
            type Future = Ready<Result<Response, Self::Error>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request) -> Self::Future {
                panic!("in call")
            }
        }
        let res = CatchPanicLayer::layer()
            .layer(PanicsInCall)
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    }
}
