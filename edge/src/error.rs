//! The one mapping from a [`Status`] to HTTP: Connect's code table, a JSON body with no internals,
//! and `Retry-After` where the status says when to retry.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use handlers::{Code, Hint, Status};
use http::{HeaderValue, StatusCode, header};

/// A boxed error for startup failures, shown to the operator as is.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connect's code-to-HTTP table (DESIGN section 4). Exhaustive: a new code must be placed here.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Aborted => StatusCode::CONFLICT,
        Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// The HTTP status of a [`Status`]: its hint if it has one, else the code table.
pub fn http_for(status: &Status) -> StatusCode {
    match status.hint() {
        Some(Hint::PayloadTooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
        Some(Hint::BadGateway) => StatusCode::BAD_GATEWAY,
        Some(Hint::Unprocessable) => StatusCode::UNPROCESSABLE_ENTITY,
        None => http_status(status.code()),
    }
}

/// A status from its code and the HTTP status it was answered with: keeps the plain-HTTP
/// refinements (413, 422, 502) a code alone cannot carry.
pub fn status_with_http(code: Code, http: u16, message: impl Into<String>) -> Status {
    match (code, http) {
        (Code::ResourceExhausted, 413) => Status::payload_too_large(message),
        (Code::InvalidArgument, 422) => Status::unprocessable(message),
        (Code::Unavailable, 502) => Status::bad_gateway(message),
        _ => Status::new(code, message),
    }
}

/// The code for an HTTP status, for upstreams that answer with numbers only (Connect's table).
pub fn code_for_http(status: u16) -> Code {
    match status {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        408 | 504 => Code::DeadlineExceeded,
        409 => Code::Aborted,
        413 | 429 => Code::ResourceExhausted,
        499 => Code::Canceled,
        501 => Code::Unimplemented,
        502 | 503 => Code::Unavailable,
        500 => Code::Internal,
        _ => Code::Unknown,
    }
}

/// The Connect error body, written straight into one buffer (a `json!` value cost six
/// allocations: its map, keys and strings): codes are plain ASCII, the message is escaped.
pub fn error_json(code: Code, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + code.as_str().len() + message.len() + message.len() / 4);
    out.extend_from_slice(br#"{"code":""#);
    out.extend_from_slice(code.as_str().as_bytes());
    out.extend_from_slice(br#"","message":"#);
    if serde_json::to_writer(&mut out, message).is_err() {
        return br#"{"code":"internal"}"#.to_vec();
    }
    out.push(b'}');
    out
}

/// The OpenAI error type for a code.
fn openai_error_type(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            "invalid_request_error"
        }
        Code::Unauthenticated => "authentication_error",
        Code::PermissionDenied => "permission_error",
        Code::NotFound => "not_found_error",
        Code::ResourceExhausted => "rate_limit_error",
        Code::DeadlineExceeded => "timeout_error",
        Code::Canceled
        | Code::Unknown
        | Code::AlreadyExists
        | Code::Aborted
        | Code::Unimplemented
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss => "api_error",
    }
}

/// The error body of the OpenAI-compatible endpoints: OpenAI's `{"error": {...}}` with the
/// Connect code in `code`.
pub fn openai_error_json(status: &Status) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"error": {
        "message": status.message(),
        "type": openai_error_type(status.code()),
        "param": null,
        "code": status.code().as_str(),
    }}))
    .unwrap_or_else(|_| br#"{"error":{"code":"internal"}}"#.to_vec())
}

/// Marks a response as the error `0`, so a layer above can answer it in another shape (the
/// OpenAI-compatible endpoints) without parsing the body.
#[derive(Debug, Clone)]
pub struct ErrorStatus(pub Status);

/// An HTTP response for a status.
pub fn status_response(status: &Status) -> Response {
    with_status(http_for(status), status)
}

/// [`status_response`] for a status the caller is done with: it becomes the response's mark
/// without a copy of its message.
pub fn into_response(status: Status) -> Response {
    into_response_with(http_for(&status), status)
}

/// A Connect error body under an explicit HTTP status (413 and 415 are plain HTTP in Connect).
pub fn with_status(http: StatusCode, status: &Status) -> Response {
    into_response_with(http, status.clone())
}

fn into_response_with(http: StatusCode, status: Status) -> Response {
    let mut res = Response::new(Body::from(error_json(status.code(), status.message())));
    *res.status_mut() = http;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let retry = status.retry_after().or(match status.code() {
        Code::Unavailable | Code::ResourceExhausted => Some(std::time::Duration::from_secs(1)),
        _ => None,
    });
    if let Some(after) = retry {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    if status.code() == Code::Unauthenticated {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res.extensions_mut().insert(ErrorStatus(status));
    res
}

/// Lets handlers return `Result<_, ApiError>`.
#[derive(Debug)]
pub struct ApiError(pub Status);

impl From<Status> for ApiError {
    fn from(s: Status) -> Self {
        ApiError(s)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        into_response(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_table() {
        let expect = [
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::Aborted, 409),
            (Code::AlreadyExists, 409),
            (Code::FailedPrecondition, 400),
            (Code::ResourceExhausted, 429),
            (Code::Canceled, 499),
            (Code::Unimplemented, 501),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
        ];
        for (code, http) in expect {
            assert_eq!(http_status(code).as_u16(), http, "{code}");
        }
        for code in Code::ALL {
            assert!(http_status(code).as_u16() >= 400);
        }
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn error_bodies_are_json_with_the_message_escaped() {
        for message in ["plain", "a \"quoted\" \\ path\n\u{1}", "ünïcödé ✓", ""] {
            for code in Code::ALL {
                let body: serde_json::Value =
                    serde_json::from_slice(&error_json(code, message)).unwrap();
                assert_eq!(
                    body,
                    serde_json::json!({"code": code.as_str(), "message": message})
                );
            }
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let s = Status::unavailable("x", std::time::Duration::from_millis(1500));
        let res = status_response(&s);
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
    }
}
