//! How the console calls services: as a service principal of its own, `console:<operator>`,
//! through what a service key's HTTP call passes: the method's access rule and its scopes, the
//! in-flight limits and bulkheads, the rate limits (the operator's own budget), the idempotency
//! records, the token meter and the router, local or over NATS. It never reads a service's
//! records in the store: an operator can do nothing a key with [`SCOPES`] could not.

use std::time::Instant;

use bytes::Bytes;
use handlers::kit::context::authorize;
use handlers::{Context, Principal, Status};
use proto::{BoxFuture, Codec, Encoded, MethodDesc};
use tower::ServiceExt as _;

use crate::router::Call;
use crate::state::AppState;

/// The methods the console may call: the admin lookups by name (a `*` scope would not reach
/// them), and what the Players page reads and changes. Acting for a player is naming them in
/// `playerId`, as a service key does.
pub const SCOPES: &[&str] = &[
    "auth.FindPlayer",
    "auth.ListSessions",
    "auth.EndSession",
    "payment.GetBalance",
    "payment.ListTransactions",
    "payment.GetInventory",
    "payment.Credit",
    "payment.Refund",
    "state.List",
    "state.Get",
    "state.Put",
    "quest.GetLog",
    "quest.GetProgression",
];

/// The principal an operator's calls carry.
pub fn principal(operator: &str) -> Principal {
    Principal::Service {
        name: format!("console:{operator}"),
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// What one call carries: who asked, and a mutation's idempotency key (made by the page that
/// confirms it, so a form sent twice applies once).
#[derive(Debug, Clone)]
pub struct Act {
    /// The operator, as logged in.
    pub operator: String,
    /// For a mutating call.
    pub idempotency_key: Option<String>,
}

impl Act {
    /// A read by `operator`.
    pub fn read(operator: &str) -> Act {
        Act {
            operator: operator.to_owned(),
            idempotency_key: None,
        }
    }

    /// A change by `operator`, applied once per `key`.
    pub fn change(operator: &str, key: &str) -> Act {
        Act {
            operator: operator.to_owned(),
            idempotency_key: Some(key.to_owned()),
        }
    }
}

/// The transport of the console's typed clients (`AuthServiceClient(ConsoleCalls)`, ...).
#[derive(Clone)]
pub struct ConsoleCalls(pub AppState);

impl ConsoleCalls {
    async fn call(
        &self,
        act: Act,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> Result<Bytes, Status> {
        let state = &self.0;
        let principal = principal(&act.operator);
        authorize(Some(&principal), method)?;
        // Held until the answer: the console's calls count against the same capacity.
        let _permit = state.admission.try_admit(Some(method.service_index))?;
        if state.config.rate_limit.enabled {
            state.limits.admit(method, &principal)?;
        }
        let ctx = Context {
            principal: Some(principal),
            deadline: Some(Instant::now() + state.config.http.request_timeout),
            request_id: uuid::Uuid::new_v4().simple().to_string(),
            idempotency_key: act.idempotency_key,
            ..Context::default()
        };
        let call = Call {
            method,
            codec: Codec::Proto,
            body,
            ctx,
        };
        match state.api.calls.clone().oneshot(call).await? {
            Encoded::Unary(bytes) => Ok(bytes),
            Encoded::Stream(_) => Err(Status::internal(format!(
                "{} answered with a stream",
                method.path
            ))),
        }
    }
}

impl proto::Transport for ConsoleCalls {
    type Context = Act;
    type Error = Status;

    fn unary(
        &self,
        act: Act,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Bytes, Status>> {
        let this = self.clone();
        Box::pin(async move { this.call(act, method, body).await })
    }

    fn stream(
        &self,
        _act: Act,
        method: &'static MethodDesc,
        _body: Bytes,
    ) -> BoxFuture<Result<proto::ByteStream<Status>, Status>> {
        let path = method.path;
        Box::pin(async move {
            Err(Status::unimplemented(format!(
                "the console makes no streaming calls ({path})"
            )))
        })
    }
}

/// A message as the API's JSON shows it, for the audit's before and after.
pub fn as_json<M: serde::Serialize>(message: &M) -> serde_json::Value {
    serde_json::to_value(message).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_scope_is_a_method_and_the_admin_lookups_are_covered() {
        for scope in SCOPES {
            handlers::kit::api_keys::validate_scope(scope).unwrap_or_else(|e| panic!("{e:?}"));
            let (svc, name) = scope.split_once('.').unwrap_or_default();
            assert!(
                proto::SERVICES
                    .iter()
                    .any(|s| s.short == svc && s.methods.iter().any(|m| m.name == name)),
                "{scope}"
            );
        }
        let p = principal("alice");
        assert_eq!(p.describe(), "service:console:alice");
        for path in [
            "/aicore.auth.v1.AuthService/FindPlayer",
            "/aicore.payment.v1.PaymentService/Refund",
        ] {
            let m = proto::method_by_path(path).unwrap();
            assert!(authorize(Some(&p), m).is_ok(), "{path}");
        }
        // Nothing beyond its list: not another admin switch, not a player's own method.
        for path in [
            "/aicore.time.v1.TimeService/SetScale",
            "/aicore.payment.v1.PaymentService/Grant",
            "/aicore.state.v1.StateService/Delete",
        ] {
            let m = proto::method_by_path(path).unwrap();
            assert!(authorize(Some(&p), m).is_err(), "{path}");
        }
    }
}
