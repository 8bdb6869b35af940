//! The Connect protocol's unary form: `POST /<package>.<Service>/<Method>` with `application/json`
//! or `application/proto`, `Connect-Timeout-Ms` as the deadline, errors as Connect JSON.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt as _;
use handlers::{Context, Principal, Status};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use proto::{Codec, Encoded, MethodDesc};
use tower::ServiceExt as _;

use crate::error::{status_response, with_status};
use crate::http::{Api, encoding};
use crate::router::Call;

/// The request's codec, from `Content-Type` (parameters such as charset are ignored).
fn codec(headers: &HeaderMap) -> Option<Codec> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = ct.split(';').next()?.trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Some(Codec::Json)
    } else if essence.eq_ignore_ascii_case("application/proto") {
        Some(Codec::Proto)
    } else {
        None
    }
}

/// `Connect-Timeout-Ms`: a positive integer of at most 10 digits, per the protocol (Connect
/// clients leave the header out rather than send 0).
fn timeout(headers: &HeaderMap) -> Result<Option<Duration>, Status> {
    let Some(v) = headers.get(&TIMEOUT_MS) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("");
    match s.parse::<u64>() {
        Ok(ms) if ms > 0 && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(Duration::from_millis(ms)))
        }
        _ => Err(Status::invalid_argument(
            "Connect-Timeout-Ms must be a positive integer of 1 to 10 digits",
        )),
    }
}

// Looked up on every call: named once, not parsed from a string each time.
static TIMEOUT_MS: HeaderName = HeaderName::from_static("connect-timeout-ms");
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

fn header_str(headers: &HeaderMap, name: &HeaderName, max: usize) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= max)
        .map(str::to_owned)
}

/// Serves one unary call of `method`.
pub async fn unary(
    State(state): State<Api>,
    method: &'static MethodDesc,
    req: Request,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let Some(codec) = codec(&parts.headers) else {
        let mut res = with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &Status::invalid_argument("Content-Type must be application/json or application/proto"),
        );
        res.headers_mut().insert(
            "accept-post",
            HeaderValue::from_static("application/json, application/proto"),
        );
        return res;
    };
    let encoding = match encoding::request_encoding(&parts.headers, method.server_streaming) {
        Ok(e) => e,
        Err(status) => {
            let mut res = status_response(&status);
            res.headers_mut().insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("gzip, identity"),
            );
            return res;
        }
    };
    // A stream holds its slot from here to its last event; refused at once when full.
    let stream_permit = if method.server_streaming {
        if !crate::http::sse::wants_sse(&parts.headers) {
            return with_status(
                StatusCode::NOT_ACCEPTABLE,
                &Status::invalid_argument(format!(
                    "{} is a streaming method; call it with Accept: text/event-stream",
                    method.path
                )),
            );
        }
        if codec != Codec::Json {
            return with_status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &Status::invalid_argument(
                    "a streaming call's body is application/json (its events are JSON)",
                ),
            );
        }
        match state.streams.admit_request(&parts) {
            Ok(p) => Some(p),
            Err(status) => return status_response(&status),
        }
    } else {
        None
    };
    // LLM calls may take as long as the model providers are allowed to.
    let cap = if method.service == "llm" {
        state.http.request_timeout.max(state.llm_timeout)
    } else {
        state.http.request_timeout
    };
    let budget = match timeout(&parts.headers) {
        Ok(Some(t)) => t.min(cap),
        Ok(None) => cap,
        Err(status) => return status_response(&status),
    };
    let deadline = Instant::now() + budget;

    let limit = state.http.max_body_bytes;
    let too_large = || {
        status_response(&Status::payload_too_large(format!(
            "request body is larger than {limit} bytes"
        )))
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let body: Bytes =
        match crate::router::by_deadline(deadline, Limited::new(body, limit).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
            Ok(Err(_)) => {
                return status_response(&Status::new(
                    handlers::Code::Canceled,
                    "the request body was cut off",
                ));
            }
            Err(_) => {
                return status_response(&Status::deadline_exceeded(
                    "the request body did not arrive in time",
                ));
            }
        };
    let body = match encoding::decode(body, encoding, limit) {
        Ok(b) => b,
        Err(status) => return status_response(&status),
    };

    let idempotency_key = match parts.headers.get(&IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if crate::router::idempotency::valid_key(k) => Some(k.to_owned()),
            _ => {
                return status_response(&Status::invalid_argument(format!(
                    "Idempotency-Key must be 1 to {} visible ASCII characters",
                    crate::router::idempotency::MAX_KEY_LEN
                )));
            }
        },
    };
    let ctx = Context {
        principal: parts.extensions.remove::<Principal>(),
        // A stream lives until its maximum duration; the body deadline above still applied.
        deadline: Some(match stream_permit {
            Some(_) => Instant::now() + state.streams.config.max_duration,
            None => deadline,
        }),
        request_id: header_str(
            &parts.headers,
            &crate::layers::request_id::REQUEST_ID,
            crate::layers::request_id::MAX_LEN,
        )
        .unwrap_or_default(),
        idempotency_key,
        traceparent: crate::trace::client_traceparent(&parts.headers),
        client_addr: parts
            .extensions
            .get::<crate::layers::client_addr::ClientAddr>()
            .map(|a| a.0),
        chain: Vec::new(),
        session: parts.extensions.get::<handlers::SessionId>().cloned(),
        // A client's own call: its principal pays.
        origin: None,
        accept_language: parts
            .headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(handlers::kit::context::accept_language),
    };
    // Event subscriptions carry their position in every message's id.
    let stream_permit = match stream_permit {
        Some(permit) if method.service == "events" => {
            return match proto::codec::decode(Codec::Json, &body) {
                Ok(req) => {
                    crate::http::events::serve(&state, permit, ctx, &parts.headers, None, req).await
                }
                Err(e) => status_response(&Status::from(e)),
            };
        }
        other => other,
    };
    let call = Call {
        method,
        codec,
        body,
        ctx,
    };
    match state.calls.clone().oneshot(call).await {
        Ok(Encoded::Unary(_)) if stream_permit.is_some() => status_response(&Status::internal(
            format!("{} returned one message to a streaming call", method.path),
        )),
        Ok(Encoded::Unary(bytes)) => encoding::reply(
            &parts.headers,
            HeaderValue::from_static(codec.content_type()),
            bytes,
        ),
        Ok(Encoded::Stream(stream)) => match stream_permit {
            Some(permit) => {
                let frames =
                    stream.map(|m| m.map(|data| crate::http::sse::frame(None, None, &data)));
                crate::http::sse::respond(
                    &state.streams,
                    permit,
                    Box::pin(frames),
                    crate::http::sse::Shape::connect(),
                )
                .await
            }
            None => status_response(&Status::internal(format!(
                "{} returned a stream to a unary call",
                method.path
            ))),
        },
        Err(status) => crate::error::into_response(status),
    }
}

/// Any path that is not a known route.
pub async fn not_found(req: Request) -> Response {
    crate::error::into_response(Status::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    )))
}

/// A known path called with a method it does not take: 405 with `Allow` (set by the router) and
/// a body that says what to send instead.
pub async fn method_not_allowed(req: Request) -> Response {
    let path = req.uri().path();
    let how = match path {
        "/v1/events" | "/openapi.json" => "GET",
        "/v1/chat/completions" => "POST with Content-Type: application/json",
        _ => "POST with Content-Type: application/json or application/proto",
    };
    crate::error::with_status(
        http::StatusCode::METHOD_NOT_ALLOWED,
        &Status::invalid_argument(format!("{path} does not take {}; use {how}", req.method())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(codec(&h), None);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(codec(&h), Some(Codec::Json));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/proto"),
        );
        assert_eq!(codec(&h), Some(Codec::Proto));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(codec(&h), None);
    }

    #[test]
    fn timeouts() {
        let mut h = HeaderMap::new();
        assert_eq!(timeout(&h).unwrap(), None);
        h.insert("connect-timeout-ms", HeaderValue::from_static("1500"));
        assert_eq!(timeout(&h).unwrap(), Some(Duration::from_millis(1500)));
        for bad in ["", "-1", "1.5", "12345678901", "abc", "0", "000", "+5"] {
            h.insert("connect-timeout-ms", HeaderValue::from_static(bad));
            assert!(timeout(&h).is_err(), "{bad:?}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_timeout_header_parses_or_is_refused(raw in proptest::collection::vec(any::<u8>(), 0..16)) {
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_bytes(&raw) {
                    h.insert("connect-timeout-ms", v);
                    let _ = timeout(&h);
                }
            }

            #[test]
            fn positive_timeouts_round_trip(ms in 1u64..=9_999_999_999) {
                let mut h = HeaderMap::new();
                h.insert("connect-timeout-ms", HeaderValue::from(ms));
                prop_assert_eq!(timeout(&h).unwrap(), Some(Duration::from_millis(ms)));
            }

            #[test]
            fn idempotency_keys_are_visible_ascii_up_to_255(key in ".{0,300}") {
                let ok = crate::router::idempotency::valid_key(&key);
                prop_assert_eq!(
                    ok,
                    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
                );
                // A valid key crosses a header unchanged.
                if ok {
                    let v = HeaderValue::from_str(&key).unwrap();
                    prop_assert_eq!(v.to_str().unwrap(), key.as_str());
                }
            }
        }
    }
}
