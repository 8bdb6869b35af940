//! The one mapping from a [`Status`] to HTTP: Connect's code table, a JSON body with no internals,
//! and `Retry-After` where the status says when to retry.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use handlers::{Code, Status};
use http::{HeaderValue, StatusCode, header};

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

/// The Connect error body.
pub fn error_json(code: Code, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "code": code.as_str(), "message": message }))
        .unwrap_or_else(|_| br#"{"code":"internal"}"#.to_vec())
}

/// An HTTP response for a status.
pub fn status_response(status: &Status) -> Response {
    with_status(http_status(status.code()), status)
}

/// A Connect error body under an explicit HTTP status (413 and 415 are plain HTTP in Connect).
pub fn with_status(http: StatusCode, status: &Status) -> Response {
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
        status_response(&self.0)
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
    fn retry_after_is_whole_seconds_rounded_up() {
        let s = Status::unavailable("x", std::time::Duration::from_millis(1500));
        let res = status_response(&s);
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
    }
}
