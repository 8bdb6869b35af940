//! The service router: a tower `Service` from a [`Call`] to a [`Reply`] or a [`Status`]. Each
//! service of the catalog has one endpoint: in-process, or remote over NATS ([`nats`]). Adapters
//! never know which. Around it sit the idempotency records ([`idempotency`]) and the LLM token
//! meter ([`quota`]), put together in one function ([`stack`]); [`llm`] builds the model
//! providers. The router may import NATS and the
//! shared modules; never the layers, the adapters, `ops` or the composition root.

pub mod calls;
pub mod faults;
pub mod idempotency;
pub mod llm;
pub mod nats;
pub mod quota;
pub mod stack;
pub mod table;

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use handlers::{Context, LocalService, Status};
use proto::{BoxFuture, Codec, Encoded, MethodDesc, SERVICES};

/// One call of one method.
#[derive(Debug)]
pub struct Call {
    /// The method, from the descriptors.
    pub method: &'static MethodDesc,
    /// How `body` is encoded, and how the reply must be.
    pub codec: Codec,
    /// The request message as the client sent it.
    pub body: Bytes,
    /// Principal, deadline, ids.
    pub ctx: Context,
}

/// The reply: one message, or a stream of them.
pub type Reply = Encoded<Status>;

/// Where a service's calls go.
pub trait Endpoint: Send + Sync + 'static {
    /// Serves one call.
    fn call(&self, call: Call) -> BoxFuture<Result<Reply, Status>>;
    /// "local", "nats" or "unimplemented", for the route table.
    fn kind(&self) -> &'static str;
    /// Whether it can serve now, for the route table.
    fn healthy(&self) -> bool {
        true
    }
    /// Remote instances answering, if this endpoint can know (-1: not known yet).
    fn responders(&self) -> Option<i64> {
        None
    }
    /// Whether it ends calls at their deadline itself (else the router does).
    fn enforces_deadline(&self) -> bool {
        false
    }
    /// The in-process service behind it, if it is local.
    fn local(&self) -> Option<&LocalService> {
        None
    }
}

/// An in-process handler.
pub struct Local(pub LocalService);

impl Endpoint for Local {
    fn call(&self, call: Call) -> BoxFuture<Result<Reply, Status>> {
        // The store and event log retry within the call's deadline (a lost NATS node).
        let deadline = call.ctx.deadline;
        let fut = self.0.call(call.ctx, call.method, call.codec, call.body);
        Box::pin(handlers::kit::retry::within(deadline, fut))
    }
    fn kind(&self) -> &'static str {
        "local"
    }
    fn local(&self) -> Option<&LocalService> {
        Some(&self.0)
    }
}

/// A service of the catalog that nothing serves yet: says so honestly.
pub struct Unimplemented;

impl Endpoint for Unimplemented {
    fn call(&self, call: Call) -> BoxFuture<Result<Reply, Status>> {
        let path = call.method.path;
        Box::pin(async move {
            Err(Status::unimplemented(format!(
                "{path} is not implemented yet"
            )))
        })
    }
    fn kind(&self) -> &'static str {
        "unimplemented"
    }
    fn healthy(&self) -> bool {
        false
    }
}

/// The route table: one endpoint per service of [`SERVICES`], by index.
#[derive(Clone)]
pub struct ServiceRouter {
    endpoints: Arc<[Arc<dyn Endpoint>]>,
}

impl std::fmt::Debug for ServiceRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRouter")
            .field("routes", &self.endpoints.len())
            .finish()
    }
}

impl ServiceRouter {
    /// Routes each service to its local handler if there is one, else to [`Unimplemented`].
    pub fn new(local: Vec<LocalService>) -> Self {
        let mut endpoints: Vec<Arc<dyn Endpoint>> = SERVICES
            .iter()
            .map(|_| Arc::new(Unimplemented) as Arc<dyn Endpoint>)
            .collect();
        for svc in local {
            let i = svc.descriptor().index;
            endpoints[i] = Arc::new(Local(svc));
        }
        ServiceRouter {
            endpoints: endpoints.into(),
        }
    }

    /// Replaces the endpoint of service `short` (e.g. to send it to NATS).
    pub fn with_endpoint(self, short: &str, endpoint: Arc<dyn Endpoint>) -> Option<Self> {
        let desc = proto::ServiceDesc::by_short(short)?;
        let mut endpoints: Vec<_> = self.endpoints.iter().cloned().collect();
        endpoints[desc.index] = endpoint;
        Some(ServiceRouter {
            endpoints: endpoints.into(),
        })
    }

    /// The services it serves in-process.
    pub fn local_services(&self) -> Vec<LocalService> {
        self.endpoints
            .iter()
            .filter_map(|e| e.local().cloned())
            .collect()
    }

    /// A handle that does not keep the router (and so its services) alive.
    pub fn downgrade(&self) -> WeakRouter {
        WeakRouter(Arc::downgrade(&self.endpoints))
    }

    /// The endpoint of a service, for the route table.
    pub fn endpoint(&self, service_index: usize) -> Option<&Arc<dyn Endpoint>> {
        self.endpoints.get(service_index)
    }
}

/// A [`ServiceRouter`] held weakly.
#[derive(Clone)]
pub struct WeakRouter(std::sync::Weak<[Arc<dyn Endpoint>]>);

impl WeakRouter {
    /// The router, unless it is gone.
    pub fn upgrade(&self) -> Option<ServiceRouter> {
        self.0
            .upgrade()
            .map(|endpoints| ServiceRouter { endpoints })
    }
}

impl tower::Service<Call> for ServiceRouter {
    type Response = Reply;
    type Error = Status;
    type Future = BoxFuture<Result<Reply, Status>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let Some(endpoint) = self.endpoints.get(call.method.service_index).cloned() else {
            let path = call.method.path;
            return Box::pin(async move { Err(Status::not_found(format!("no route for {path}"))) });
        };
        let method = call.method;
        // Streams manage their own lifetime; a unary call ends at its deadline.
        let deadline = call
            .ctx
            .deadline
            .filter(|_| !endpoint.enforces_deadline() && !method.server_streaming);
        let target = endpoint.kind();
        let span = crate::trace::call_span(method, target, call.ctx.chain.last().copied());
        // Created inside the span, so a NATS request carries it as the worker's parent.
        let fut = span.in_scope(|| endpoint.call(call));
        Box::pin(tracing::Instrument::instrument(
            async move {
                let start = std::time::Instant::now();
                let result = match deadline {
                    Some(deadline) => match by_deadline(deadline, fut).await {
                        Ok(result) => result,
                        Err(_) => Err(Status::deadline_exceeded(
                            "the call did not finish before its deadline",
                        )),
                    },
                    None => fut.await,
                };
                let code = result.as_ref().err().map(Status::code);
                crate::stats::call(method, target, code, start.elapsed());
                crate::trace::record_code(&tracing::Span::current(), code);
                result
            },
            span,
        ))
    }
}

/// `fut`, given up at `deadline`. A future ready at its first poll (a request body that came
/// with its headers, most local calls) never builds a timer: one fewer thing per request.
pub async fn by_deadline<F: std::future::Future>(
    deadline: std::time::Instant,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut fut = std::pin::pin!(fut);
    if let Some(out) = futures_util::FutureExt::now_or_never(&mut fut) {
        return Ok(out);
    }
    tokio::time::timeout_at(deadline.into(), fut).await
}

/// The method a request calls, from the descriptors: a Connect path (POST), or an alias that
/// follows a method's rules (`POST /v1/chat/completions` is llm InferStream, `GET /v1/events` is
/// events Subscribe). Authentication, rate limits and bulkheads key on it.
pub fn route_method(method: &http::Method, path: &str) -> Option<&'static MethodDesc> {
    match (method.as_str(), path) {
        ("POST", "/v1/chat/completions") => proto::method_by_path(CHAT_METHOD),
        ("GET", "/v1/events") => proto::method_by_path(SUBSCRIBE_METHOD),
        ("POST", _) => proto::method_by_path(path),
        _ => None,
    }
}

/// The method behind `/v1/chat/completions`.
pub const CHAT_METHOD: &str = "/aicore.llm.v1.LlmService/InferStream";
/// The method behind `/v1/events`.
pub const SUBSCRIBE_METHOD: &str = "/aicore.events.v1.EventBusService/Subscribe";
