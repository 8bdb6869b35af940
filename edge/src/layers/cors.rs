//! CORS for browser clients (a WebGL build, a web dashboard) on the origins the operator lists,
//! as a Layer + Service. Preflights are answered here, before admission, authentication and rate
//! limiting (a preflight carries no token); real responses, errors included, get the headers a
//! client needs to read. It answers as tower-http's `CorsLayer` did, but every header value is
//! built once: that one rebuilt its `Vary` value, cloned its origin list and collected its headers
//! into a new map on every request (nine allocations a request, CORS or not).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method};
use tower::{Layer, Service};

/// Request headers a browser may send.
const ALLOW_HEADERS: [&str; 11] = [
    "authorization",
    "content-type",
    "accept",
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-content-encoding",
    "connect-accept-encoding",
    "idempotency-key",
    "last-event-id",
    "traceparent",
    "x-request-id",
];

/// Response headers a browser's script may read.
const EXPOSE_HEADERS: [&str; 7] = [
    "retry-after",
    "x-request-id",
    "ratelimit",
    "ratelimit-policy",
    "connect-content-encoding",
    "connect-accept-encoding",
    "content-encoding",
];

/// A preflight's answer may be cached this long (seconds).
const MAX_AGE: &str = "600";

/// What a cache must key on: the answer depends on these request headers.
static VARY_ON: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// The origins, and the headers every answer carries, built once.
#[derive(Debug)]
struct Policy {
    /// `None`: any origin (`*`).
    origins: Option<Vec<HeaderValue>>,
    expose: HeaderValue,
    /// A preflight's headers, without the origin's grant.
    preflight: HeaderMap,
}

impl Policy {
    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if it is granted.
    fn grant(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match &self.origins {
            None => Some(HeaderValue::from_static("*")),
            Some(list) => origin.and_then(|o| list.iter().find(|a| *a == o)).cloned(),
        }
    }
}

/// Adds [`Cors`] around a service.
#[derive(Debug, Clone)]
pub struct CorsLayer {
    policy: Arc<Policy>,
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;
    fn layer(&self, inner: S) -> Cors<S> {
        Cors {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// The middleware.
#[derive(Debug, Clone)]
pub struct Cors<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S> Service<Request> for Cors<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let grant = self.policy.grant(req.headers().get(ORIGIN));
        if req.method() == Method::OPTIONS {
            // Every OPTIONS is a preflight: the API has no OPTIONS method of its own.
            let mut res = Response::new(Body::empty());
            *res.headers_mut() = self.policy.preflight.clone();
            if let Some(grant) = grant {
                res.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, grant);
            }
            return CorsFuture::Preflight(Some(res));
        }
        CorsFuture::Call {
            inner: self.inner.call(req),
            grant,
            expose: self.policy.expose.clone(),
        }
    }
}

/// The response future: a preflight's ready answer, or the inner answer with the headers added.
pub enum CorsFuture<F> {
    /// Answered here.
    Preflight(Option<Response>),
    /// Answered inside.
    Call {
        /// The inner future.
        inner: F,
        /// The origin's grant, if any.
        grant: Option<HeaderValue>,
        /// The readable headers.
        expose: HeaderValue,
    },
}

impl<F, E> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            // Polled again after its answer: never ready again, like any finished future.
            CorsFuture::Preflight(res) => res.take().map_or(Poll::Pending, |r| Poll::Ready(Ok(r))),
            CorsFuture::Call {
                inner,
                grant,
                expose,
            } => {
                let mut res = match Pin::new(inner).poll(cx) {
                    Poll::Ready(Ok(res)) => res,
                    other => return other,
                };
                let headers = res.headers_mut();
                if let Some(grant) = grant.take() {
                    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, grant);
                    headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
                }
                headers.append(VARY, VARY_ON.clone());
                Poll::Ready(Ok(res))
            }
        }
    }
}

fn joined(names: &[&str]) -> Result<HeaderValue, String> {
    HeaderValue::from_str(&names.join(",")).map_err(|e| e.to_string())
}

/// The layer for `origins`, or `None` when there are none (no CORS: browsers on other origins
/// are refused, as before). An origin is `scheme://host[:port]` or `*`.
pub fn layer(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allowed = if origins.iter().any(|o| o == "*") {
        if origins.len() > 1 {
            return Err("http.cors_origins: `*` stands alone".into());
        }
        // Never with credentials: the API authenticates with bearer tokens, not cookies.
        None
    } else {
        let list = origins
            .iter()
            .map(|o| {
                let valid = (o.starts_with("https://") || o.starts_with("http://"))
                    && !o.ends_with('/')
                    && o.split("://")
                        .nth(1)
                        .is_some_and(|h| !h.is_empty() && !h.contains('/'));
                if !valid {
                    return Err(format!(
                        "http.cors_origins: {o:?} is not an origin like https://play.example.com"
                    ));
                }
                HeaderValue::from_str(o).map_err(|e| format!("http.cors_origins: {o:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Some(list)
    };
    let mut preflight = HeaderMap::new();
    preflight.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET,POST"),
    );
    preflight.insert(ACCESS_CONTROL_ALLOW_HEADERS, joined(&ALLOW_HEADERS)?);
    preflight.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    preflight.insert(VARY, VARY_ON.clone());
    Ok(Some(CorsLayer {
        policy: Arc::new(Policy {
            origins: allowed,
            expose: joined(&EXPOSE_HEADERS)?,
            preflight,
        }),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use http::HeaderName;

    #[test]
    fn origins_are_checked() {
        assert!(layer(&[]).unwrap().is_none());
        assert!(
            layer(&["https://play.example.com".into()])
                .unwrap()
                .is_some()
        );
        assert!(layer(&["*".into()]).unwrap().is_some());
        for bad in [
            "play.example.com",
            "https://play.example.com/",
            "https://",
            "ftp://x",
        ] {
            assert!(layer(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(layer(&["*".into(), "https://a.example".into()]).is_err());
    }

    async fn answer(origins: &[&str], method: Method, origin: Option<&str>) -> Response {
        use tower::ServiceExt as _;
        let origins: Vec<String> = origins.iter().map(|o| (*o).to_owned()).collect();
        let svc = layer(&origins)
            .unwrap()
            .unwrap()
            .layer(tower::service_fn(|_req: Request| {
                Box::pin(async {
                    let mut res = Response::new(Body::from("inner"));
                    res.headers_mut()
                        .insert(VARY, HeaderValue::from_static("accept-encoding"));
                    Ok::<_, std::convert::Infallible>(res)
                })
            }));
        let mut req = Request::builder().method(method).uri("/x");
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        svc.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    fn get(res: &Response, name: HeaderName) -> Option<&str> {
        res.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn listed_origins_are_granted_and_others_are_not() {
        let play = "https://play.example";
        let res = answer(&[play], Method::OPTIONS, Some(play)).await;
        assert_eq!(get(&res, ACCESS_CONTROL_ALLOW_ORIGIN), Some(play));
        assert_eq!(get(&res, ACCESS_CONTROL_ALLOW_METHODS), Some("GET,POST"));
        assert!(
            get(&res, ACCESS_CONTROL_ALLOW_HEADERS)
                .unwrap()
                .contains("authorization")
        );
        assert_eq!(get(&res, ACCESS_CONTROL_MAX_AGE), Some("600"));
        // Answered here: the inner service (which needs a token) never sees a preflight.
        let body = axum::body::to_bytes(res.into_body(), 100).await.unwrap();
        assert!(body.is_empty());

        let res = answer(&[play], Method::OPTIONS, Some("https://evil.example")).await;
        assert!(get(&res, ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

        let res = answer(&[play], Method::POST, Some(play)).await;
        assert_eq!(get(&res, ACCESS_CONTROL_ALLOW_ORIGIN), Some(play));
        assert!(
            get(&res, ACCESS_CONTROL_EXPOSE_HEADERS)
                .unwrap()
                .contains("retry-after")
        );
        // The inner answer's own Vary is kept, CORS's added beside it.
        let vary: Vec<_> = res.headers().get_all(VARY).iter().collect();
        assert_eq!(
            vary,
            [&HeaderValue::from_static("accept-encoding"), &VARY_ON]
        );

        for origin in [Some("https://evil.example"), None] {
            let res = answer(&[play], Method::POST, origin).await;
            assert!(
                get(&res, ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
                "{origin:?}"
            );
            assert!(get(&res, ACCESS_CONTROL_EXPOSE_HEADERS).is_none());
            assert_eq!(res.headers().get_all(VARY).iter().count(), 2);
        }
    }

    #[tokio::test]
    async fn a_star_grants_every_origin_without_credentials() {
        let res = answer(&["*"], Method::POST, Some("https://any.example")).await;
        assert_eq!(get(&res, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert!(
            res.headers()
                .get("access-control-allow-credentials")
                .is_none()
        );
        let res = answer(&["*"], Method::OPTIONS, None).await;
        assert_eq!(get(&res, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
    }
}
