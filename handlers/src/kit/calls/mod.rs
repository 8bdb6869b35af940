//! Calls between services (DESIGN section 8). A service gets a [`Caller`] bound to its own name
//! and wraps it in the generated typed clients (`PaymentServiceClient<Caller>`, ...). Each call
//! goes through the same router as a client's call, in-process or over NATS, through a
//! [`Route`] the edge connects at start; here is what makes it a call *between services*:
//!
//! - the callee sees a service principal naming the caller, whose scopes are exactly the
//!   methods the caller declares in its .proto (`option (aicore.options.v1.calls)`); a call to
//!   anything else is refused with `permission_denied`;
//! - the caller's deadline (or a bounded default), request id, traceparent and client address
//!   travel with the call, and a mutating call carries the idempotency key its caller derived;
//! - the services on the way travel too ([`Context::chain`]), so a cycle is refused at once
//!   rather than hanging until a deadline (the build also refuses a cyclic declaration);
//! - the callee's status reaches the caller unchanged.
//!
//! Kit: may import `proto` and the kit (context, status, late binding); never a service.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::{BoxFuture, Encoded, MethodDesc, ServiceDesc};

use crate::kit::context::{Context, Principal, authorize};
use crate::kit::late_bound::LateBound;
use crate::kit::status::Status;

/// The longest chain of calls between services; deeper is refused.
pub const MAX_DEPTH: usize = 8;

/// A call's budget when its caller has no deadline (a background task).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(10);

/// Where calls between services go: the edge's router.
pub trait Route: Send + Sync + 'static {
    /// Routes one call whose body is protobuf.
    fn call(
        &self,
        ctx: Context,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Encoded<Status>, Status>>;
}

/// The late-bound route every service's [`Caller`] shares: the router is built from the
/// services, so it is connected after them.
#[derive(Clone, Default, Debug)]
pub struct Calls {
    route: LateBound<dyn Route>,
}

impl Calls {
    /// Not connected yet: calls fail with `unavailable` until [`Calls::connect`].
    pub fn new() -> Self {
        Calls::default()
    }

    /// Connects the route; `false` if one was connected already.
    pub fn connect(&self, route: Arc<dyn Route>) -> bool {
        self.route.connect(route)
    }

    /// A caller acting as `service`.
    pub fn from(&self, service: &'static ServiceDesc) -> Caller {
        Caller {
            service,
            principal: principal_of(service),
            calls: self.clone(),
        }
    }
}

/// The principal a call from `service` carries: the service, scoped to what it declares.
pub fn principal_of(service: &ServiceDesc) -> Principal {
    principal_ref(service).clone()
}

/// Every service's principal, made once: a call's checks read it rather than build it.
static PRINCIPALS: std::sync::LazyLock<Vec<Principal>> = std::sync::LazyLock::new(|| {
    proto::SERVICES
        .iter()
        .map(|service| Principal::Service {
            name: format!("svc:{}", service.short),
            scopes: service.calls.iter().map(|c| (*c).to_owned()).collect(),
        })
        .collect()
});

fn principal_ref(service: &ServiceDesc) -> &'static Principal {
    &PRINCIPALS[service.index]
}

/// What a handler passes with a call: the context of the call it is serving, and the
/// idempotency key of this call, if it mutates.
#[derive(Debug, Clone)]
pub struct Outgoing {
    parent: Context,
    idempotency_key: Option<String>,
    for_player: Option<String>,
}

impl Outgoing {
    /// This call's idempotency key, derived from what caused it (e.g. the quest completion),
    /// so a retry of the caller never applies the call twice.
    pub fn idempotent(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// This call acts for `player_id` (one the handler checked with [`Context::player`]): what it
    /// costs is charged to that player, not to the service key that asked. A player's own chain
    /// is charged to them whatever this says.
    pub fn for_player(mut self, player_id: impl Into<String>) -> Self {
        self.for_player = Some(player_id.into());
        self
    }
}

impl Context {
    /// The context for a call this handler makes to another service.
    pub fn outgoing(&self) -> Outgoing {
        Outgoing {
            parent: self.clone(),
            idempotency_key: None,
            for_player: None,
        }
    }
}

/// Checks a call arriving from another service: the chain is short, has no cycle, and the
/// caller declared the method. The NATS responder runs it on what arrives; [`Caller`] on what
/// it sends.
pub fn admit(ctx: &Context, method: &'static MethodDesc) -> Result<(), Status> {
    let Some(caller) = ctx.chain.last() else {
        return Ok(());
    };
    if ctx.chain.len() > MAX_DEPTH {
        return Err(Status::failed_precondition(format!(
            "calls between services nest deeper than {MAX_DEPTH}: {}",
            ctx.chain.join(" -> ")
        )));
    }
    if ctx.chain.contains(&method.service) {
        return Err(Status::failed_precondition(format!(
            "call cycle refused: {} -> {}.{}",
            ctx.chain.join(" -> "),
            method.service,
            method.name
        )));
    }
    let desc = ServiceDesc::by_short(caller)
        .ok_or_else(|| Status::permission_denied(format!("unknown calling service {caller:?}")))?;
    if !desc.declares(method) {
        return Err(Status::permission_denied(format!(
            "service {caller} does not declare calling {}.{} in its .proto",
            method.service, method.name
        )));
    }
    authorize(Some(principal_ref(desc)), method)
}

/// Calls other services as one service. Cheap to clone.
#[derive(Clone)]
pub struct Caller {
    service: &'static ServiceDesc,
    principal: Principal,
    calls: Calls,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("service", &self.service.short)
            .finish()
    }
}

impl Caller {
    /// The context the callee sees.
    pub fn context(&self, out: Outgoing, method: &'static MethodDesc) -> Result<Context, Status> {
        let Outgoing {
            parent,
            idempotency_key,
            for_player,
        } = out;
        // Cost follows the origin: a chain keeps the payer it started with; a client's call
        // starts one with its caller, or with the player a service key's call acts for.
        let origin = match (parent.origin, parent.principal) {
            (Some(origin @ Principal::Player { .. }), _) => Some(origin),
            (_, Some(Principal::Player { player_id })) if parent.chain.is_empty() => {
                Some(Principal::Player { player_id })
            }
            (origin, principal) => for_player
                .map(|player_id| Principal::Player { player_id })
                .or(origin)
                .or(principal.filter(|_| parent.chain.is_empty())),
        };
        let mut chain = parent.chain;
        chain.push(self.service.short);
        let ctx = Context {
            principal: Some(self.principal.clone()),
            deadline: Some(
                parent
                    .deadline
                    .unwrap_or_else(|| Instant::now() + DEFAULT_BUDGET),
            ),
            request_id: parent.request_id,
            idempotency_key,
            traceparent: parent.traceparent,
            client_addr: parent.client_addr,
            chain,
            // The callee sees a service, never the player's session.
            session: None,
            origin,
            accept_language: parent.accept_language,
        };
        admit(&ctx, method)?;
        if ctx.deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Status::deadline_exceeded(format!(
                "no time left to call {}.{}",
                method.service, method.name
            )));
        }
        Ok(ctx)
    }

    fn route(&self) -> Result<Arc<dyn Route>, Status> {
        self.calls.route.get().ok_or_else(|| {
            Status::unavailable(
                "calls between services are not connected yet",
                Duration::from_secs(1),
            )
        })
    }
}

impl proto::Transport for Caller {
    type Context = Outgoing;
    type Error = Status;

    fn unary(
        &self,
        out: Outgoing,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Bytes, Status>> {
        let routed = self
            .context(out, method)
            .and_then(|ctx| Ok(self.route()?.call(ctx, method, body)));
        Box::pin(async move {
            match routed?.await? {
                Encoded::Unary(bytes) => Ok(bytes),
                Encoded::Stream(_) => Err(Status::internal(format!(
                    "{} answered a unary call with a stream",
                    method.path
                ))),
            }
        })
    }

    fn stream(
        &self,
        out: Outgoing,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<proto::ByteStream<Status>, Status>> {
        let routed = self
            .context(out, method)
            .and_then(|ctx| Ok(self.route()?.call(ctx, method, body)));
        Box::pin(async move {
            match routed?.await? {
                Encoded::Stream(stream) => Ok(stream),
                Encoded::Unary(_) => Err(Status::internal(format!(
                    "{} answered a streaming call with one message",
                    method.path
                ))),
            }
        })
    }
}

#[cfg(test)]
pub mod fake;
#[cfg(test)]
mod tests;
