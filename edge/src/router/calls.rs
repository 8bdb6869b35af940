//! Calls between services enter the router here: [`handlers::kit::calls::Route`] over the same
//! [`ServiceRouter`] that serves HTTP, so a call is local or over NATS by the route table, with
//! the same codes, metrics and deadline handling as a client's; and behind the same
//! idempotency records, so a mutating call retried with its derived key applies once.

use bytes::Bytes;
use handlers::{Context, Status};
use proto::{BoxFuture, Codec, Encoded, MethodDesc};

use super::idempotency::{Idempotency, IdempotencyLayer};
use super::quota::{TokenMeter, TokenQuotaLayer};
use super::{Call, Reply, ServiceRouter, WeakRouter};

/// The route handed to the services. It holds the router weakly: the router holds the services.
pub struct RouterRoute(Idempotency<TokenMeter<WeakRouter>>);

impl RouterRoute {
    /// Routes through `router`, recording mutating calls' outcomes as `records` does and metering
    /// model calls as `meter` does.
    pub fn new(
        router: &ServiceRouter,
        records: &IdempotencyLayer,
        meter: &TokenQuotaLayer,
    ) -> Self {
        RouterRoute(
            tower::ServiceBuilder::new()
                .layer(records.clone())
                .layer(meter.clone())
                .service(router.downgrade()),
        )
    }
}

impl tower::Service<Call> for WeakRouter {
    type Response = Reply;
    type Error = Status;
    type Future = BoxFuture<Result<Reply, Status>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Status>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        match self.upgrade() {
            Some(mut router) => tower::Service::call(&mut router, call),
            None => Box::pin(async {
                Err(Status::unavailable(
                    "shutting down",
                    std::time::Duration::from_secs(1),
                ))
            }),
        }
    }
}

impl handlers::kit::calls::Route for RouterRoute {
    fn call(
        &self,
        ctx: Context,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Encoded<Status>, Status>> {
        tower::Service::call(
            &mut self.0.clone(),
            Call {
                method,
                codec: Codec::Proto,
                body,
                ctx,
            },
        )
    }
}
