//! The one status type every call ends with: a Connect code and a message safe to show clients.

use std::fmt;
use std::time::Duration;

use proto::CodecError;

use crate::kit::store::StoreError;

/// The Connect protocol's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The client went away.
    Canceled,
    /// An error with no better code.
    Unknown,
    /// Malformed body, failed validation.
    InvalidArgument,
    /// The deadline passed before the work finished.
    DeadlineExceeded,
    /// Unknown key, unknown method.
    NotFound,
    /// Duplicate create.
    AlreadyExists,
    /// Authenticated, but this action is not allowed.
    PermissionDenied,
    /// Rate limit, quota.
    ResourceExhausted,
    /// The current state forbids the action.
    FailedPrecondition,
    /// Compare-and-set version mismatch, concurrent conflict.
    Aborted,
    /// A value past the valid range.
    OutOfRange,
    /// The method is not served.
    Unimplemented,
    /// A bug. The message to the client says nothing internal.
    Internal,
    /// Try again later: no responders, shedding, draining.
    Unavailable,
    /// Unrecoverable data loss.
    DataLoss,
    /// Missing or bad credentials.
    Unauthenticated,
}

impl Code {
    /// Every code, for exhaustive tests of mappings.
    pub const ALL: [Code; 16] = [
        Code::Canceled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The wire name, e.g. `invalid_argument`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Canceled => "canceled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The few answers the protocol gives as plain HTTP rather than by code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hint {
    /// The request is larger than a limit on its way (HTTP 413).
    PayloadTooLarge,
    /// An upstream answered something that is not a valid reply (HTTP 502).
    BadGateway,
    /// A well-formed request the server will not process as sent, e.g. an `Idempotency-Key`
    /// reused with a different body (HTTP 422).
    Unprocessable,
}

/// A failed call: the code, a message for the client, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: String,
    retry_after: Option<Duration>,
    hint: Option<Hint>,
}

impl Status {
    /// A status with a client-safe message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
            retry_after: None,
            hint: None,
        }
    }

    /// Tells the client when to try again (becomes `Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// A plain-HTTP answer that refines the code, if any.
    pub fn hint(&self) -> Option<Hint> {
        self.hint
    }

    /// `resource_exhausted`, answered as 413: the request is over a size limit.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Status {
            hint: Some(Hint::PayloadTooLarge),
            ..Status::new(Code::ResourceExhausted, message)
        }
    }

    /// `unavailable`, answered as 502: an upstream's reply is not valid.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Status {
            hint: Some(Hint::BadGateway),
            ..Status::new(Code::Unavailable, message)
        }
    }

    /// `invalid_argument`, answered as 422: well-formed, but not processable as sent.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Status {
            hint: Some(Hint::Unprocessable),
            ..Status::new(Code::InvalidArgument, message)
        }
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The client-safe message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// When to retry, if said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// `invalid_argument`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Status::new(Code::InvalidArgument, message)
    }

    /// `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Status::new(Code::NotFound, message)
    }

    /// `already_exists`.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Status::new(Code::AlreadyExists, message)
    }

    /// `aborted`.
    pub fn aborted(message: impl Into<String>) -> Self {
        Status::new(Code::Aborted, message)
    }

    /// `permission_denied`.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Status::new(Code::PermissionDenied, message)
    }

    /// `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Status::new(Code::Unauthenticated, message)
    }

    /// `failed_precondition`.
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Status::new(Code::FailedPrecondition, message)
    }

    /// `unavailable`, with a retry hint.
    pub fn unavailable(message: impl Into<String>, retry_after: Duration) -> Self {
        Status::new(Code::Unavailable, message).with_retry_after(retry_after)
    }

    /// `unimplemented`.
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Status::new(Code::Unimplemented, message)
    }

    /// `deadline_exceeded`.
    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Status::new(Code::DeadlineExceeded, message)
    }

    /// `internal`: the cause is logged here and never reaches the client.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(cause = %cause, "internal error");
        Status::new(Code::Internal, "internal error")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Status {}

impl From<CodecError> for Status {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Decode { .. } => Status::invalid_argument(e.to_string()),
            CodecError::Encode { .. } => Status::internal(e),
            CodecError::UnknownMethod(path) => {
                Status::unimplemented(format!("method {path} is not implemented"))
            }
        }
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { current: Some(v) } => {
                Status::aborted(format!("version mismatch: current version is {v}"))
            }
            StoreError::Conflict { current: None } => {
                Status::aborted("version mismatch: the key does not exist")
            }
            StoreError::InvalidKey(msg) => Status::invalid_argument(msg),
            StoreError::Full => {
                tracing::error!("store is full: writes are refused until space is freed");
                Status::unavailable(
                    "storage is full; nothing was written",
                    Duration::from_secs(30),
                )
            }
            StoreError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "store unavailable");
                Status::unavailable("storage is unavailable", Duration::from_secs(1))
            }
            StoreError::InUse => Status::internal("the store is in use by another process"),
            StoreError::Backend(cause) => Status::internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_their_wire_names() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(code));
        }
        assert_eq!(Code::parse("nope"), None);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let s = Status::internal("redb: table 'kv' corrupted at page 17");
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal error");
    }

    #[test]
    fn store_errors_map_to_client_safe_statuses() {
        let s: Status = StoreError::Backend("/var/data/edge.redb: I/O error".into()).into();
        assert!(!s.message().contains("/var"));
        let s: Status = StoreError::Full.into();
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.retry_after().is_some());
        let s: Status = StoreError::Conflict { current: Some(7) }.into();
        assert_eq!(s.code(), Code::Aborted);
        assert!(s.message().contains('7'));
    }
}
