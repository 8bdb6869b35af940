//! Early answers that every HTTP/2 client sees, as a Layer + Service. When the edge answers
//! before it has read a request's body (a 401 without a token, 403, 404, 405, 413, 415, 429,
//! 503), hyper ends the stream with the response and then `RST_STREAM(NO_ERROR)` for the unread
//! body. RFC 9113 allows that, but libcurl 7.x (Debian 12's curl 7.88, and the builds game engines
//! and launchers ship) then reports no response at all. So, before such an answer goes out, the
//! rest of a small body is read and thrown away, bounded in bytes and in time; past either
//! bound, the stream is reset as before. At most so many drains run at once (they outlive the
//! admission slot of their request): past that, a stream is reset at once, so a flood of bodiless
//! HEADERS frames holds nothing. HTTP/1.1 is left as it was (hyper reads or closes).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::{Version, header};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt as _;
use proto::BoxFuture;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

/// The longest an early answer waits for the rest of a body.
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Adds [`Drain`] around a service.
#[derive(Debug, Clone)]
pub struct DrainLayer {
    budget: u64,
    slots: Arc<Semaphore>,
}

impl DrainLayer {
    /// Drains at most `budget` bytes of an unread body (a declared larger body is reset at once),
    /// at most `concurrent` at a time.
    pub fn layer(budget: u64, concurrent: usize) -> Self {
        DrainLayer {
            budget,
            slots: Arc::new(Semaphore::new(concurrent)),
        }
    }
}

impl<S> Layer<S> for DrainLayer {
    type Service = Drain<S>;
    fn layer(&self, inner: S) -> Drain<S> {
        Drain {
            inner,
            budget: self.budget,
            slots: Arc::clone(&self.slots),
        }
    }
}

/// The middleware.
#[derive(Debug, Clone)]
pub struct Drain<S> {
    inner: S,
    budget: u64,
    slots: Arc<Semaphore>,
}

/// The request body, shared between the handler and the layer: what the handler leaves unread
/// stays here for the layer to drain.
#[derive(Default)]
struct Slot {
    body: Option<Body>,
    ended: bool,
}

struct Tracked(Arc<Mutex<Slot>>);

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.ended {
            return Poll::Ready(None);
        }
        // Taken by the layer after the answer went out: an error, never a silent end.
        let Some(body) = slot.body.as_mut() else {
            return Poll::Ready(Some(Err(axum::Error::new(
                "the request was already answered",
            ))));
        };
        let polled = Pin::new(body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            slot.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .map(|s| s.ended || s.body.as_ref().is_none_or(|b| b.is_end_stream()))
            .unwrap_or(true)
    }

    fn size_hint(&self) -> SizeHint {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &slot.body {
            Some(b) if !slot.ended => b.size_hint(),
            _ => SizeHint::with_exact(0),
        }
    }
}

/// Reads and drops what is left of `body`, up to `budget` bytes and [`DRAIN_TIME`]; whether it
/// reached the end.
async fn drain(mut body: Body, budget: u64) -> bool {
    let read = async {
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > budget {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, read)
        .await
        .unwrap_or(false)
}

impl<S> Service<Request> for Drain<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<S::Future, BoxFuture<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        use futures_util::future::Either;
        // HTTP/1.1 and bodiless requests (most GETs) pass untouched, at no cost.
        if req.version() != Version::HTTP_2 || req.body().is_end_stream() {
            return Either::Left(self.inner.call(req));
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let (parts, body) = req.into_parts();
        let slot = Arc::new(Mutex::new(Slot {
            body: Some(body),
            ended: false,
        }));
        let req = Request::from_parts(parts, Body::new(Tracked(Arc::clone(&slot))));
        let fut = self.inner.call(req);
        // A body declared larger than the budget is not waited for: it is reset, as before.
        let budget = if declared.is_some_and(|n| n > self.budget) {
            0
        } else {
            self.budget
        };
        let slots = Arc::clone(&self.slots);
        Either::Right(Box::pin(async move {
            let res = fut.await?;
            let left = {
                let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
                if s.ended { None } else { s.body.take() }
            };
            if let Some(body) = left
                && budget > 0
                && !body.is_end_stream()
            {
                // No free slot: reset at once, as before this layer existed.
                let drained = match slots.try_acquire() {
                    Ok(_permit) => drain(body, budget).await,
                    Err(_) => false,
                };
                if !drained {
                    tracing::debug!("an early answer's request body was not drained; resetting");
                }
            }
            Ok(res)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use tower::ServiceExt as _;

    fn h2_post(body: Body) -> Request {
        let mut req = Request::post("/x").body(body).unwrap();
        *req.version_mut() = Version::HTTP_2;
        req
    }

    /// A body of `chunks` chunks of 1 KiB, counting how many were read.
    fn counted(chunks: usize) -> (Body, Arc<std::sync::atomic::AtomicUsize>) {
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let r = Arc::clone(&read);
        let stream = futures_util::stream::iter((0..chunks).map(move |_| {
            r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![0u8; 1024])))
        }));
        (Body::new(StreamBody::new(stream)), read)
    }

    #[tokio::test]
    async fn an_early_answer_waits_for_the_rest_of_a_small_body() {
        let early = tower::service_fn(|_req: Request| async {
            Ok::<_, std::convert::Infallible>(
                Response::builder().status(401).body(Body::empty()).unwrap(),
            )
        });
        let (body, read) = counted(8);
        let res = DrainLayer::layer(64 * 1024, 8)
            .layer(early)
            .oneshot(h2_post(body))
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(
            read.load(std::sync::atomic::Ordering::SeqCst),
            8,
            "all drained"
        );

        // Past the budget it stops (and hyper resets the stream, as before).
        let (body, read) = counted(100);
        DrainLayer::layer(4 * 1024, 8)
            .layer(early)
            .oneshot(h2_post(body))
            .await
            .unwrap();
        assert!(read.load(std::sync::atomic::Ordering::SeqCst) <= 6);
    }

    #[tokio::test]
    async fn with_every_drain_slot_taken_the_stream_is_reset_at_once() {
        let early = tower::service_fn(|_req: Request| async {
            Ok::<_, std::convert::Infallible>(
                Response::builder().status(503).body(Body::empty()).unwrap(),
            )
        });
        let layer = DrainLayer::layer(64 * 1024, 1);
        let _held = layer.slots.try_acquire().unwrap();
        let (body, read) = counted(8);
        layer.layer(early).oneshot(h2_post(body)).await.unwrap();
        assert_eq!(
            read.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "nothing drained"
        );
    }

    #[tokio::test]
    async fn a_handler_that_reads_its_body_sees_all_of_it() {
        let echo = tower::service_fn(|req: Request| async move {
            let n = req.into_body().collect().await.unwrap().to_bytes().len();
            Ok::<_, std::convert::Infallible>(Response::new(Body::from(n.to_string())))
        });
        let (body, _) = counted(3);
        let res = DrainLayer::layer(1024, 8)
            .layer(echo)
            .oneshot(h2_post(body))
            .await
            .unwrap();
        let text = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&text[..], b"3072");
    }
}
