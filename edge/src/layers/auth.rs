//! Authentication as a Layer + Service pair: resolves the method from the path, verifies the bearer
//! token in-process, checks the method's access rule from the protos, and hands the principal on in
//! the request's extensions. Handlers never see a token.
//!
//! Bad credentials are counted per client address (an IPv6 /64): past the quota, that address
//! gets 429 for anything but a valid access token, so guessing tokens or key prefixes (each a
//! store read) stops early, while players behind the same address with valid tokens go on.
//! Replays of spent stream tickets (genuine, so no bad credential) have a count of their own per
//! address: past it, that address's tickets get 429 before their signature is checked.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use futures_util::future::{Either, Ready, ready};
use handlers::kit::api_keys::ApiKeys;
use handlers::kit::context::authorize;
use handlers::kit::leaky_bucket::LeakyBuckets;
use handlers::services::auth::guard::address_key;
use handlers::services::auth::{AuthService, Refusal};
use handlers::{Principal, SessionId, Status};
use proto::{Access, BoxFuture, MethodDesc};
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::error::status_response;

/// A principal that code in this process (the console's API explorer) gives a request it builds
/// itself: used instead of a bearer token, then checked like any other. No request from the
/// network can carry it (extensions are not on the wire).
#[derive(Debug, Clone)]
pub struct InProcess(pub Principal);

/// Adds [`Authenticate`] around a service.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<AuthService>,
    keys: Arc<ApiKeys>,
    counts: PerAddress,
}

/// What the layer counts per client address (`None`: not limited).
#[derive(Clone, Default)]
pub struct PerAddress {
    /// 401s.
    pub bad: Option<Arc<LeakyBuckets<IpAddr>>>,
    /// Replays of spent stream tickets.
    pub spent_tickets: Option<Arc<LeakyBuckets<IpAddr>>>,
}

impl AuthLayer {
    /// Verifies access tokens with `auth`'s signing keys and service keys with `keys`; `counts`
    /// limits 401s and spent-ticket replays per address.
    pub fn layer(auth: Arc<AuthService>, keys: Arc<ApiKeys>, counts: PerAddress) -> Self {
        AuthLayer { auth, keys, counts }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            auth: Arc::clone(&self.auth),
            keys: Arc::clone(&self.keys),
            bad: self.counts.bad.clone(),
            spent_tickets: self.counts.spent_tickets.clone(),
        }
    }
}

/// The middleware.
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    auth: Arc<AuthService>,
    keys: Arc<ApiKeys>,
    bad: Option<Arc<LeakyBuckets<IpAddr>>>,
    spent_tickets: Option<Arc<LeakyBuckets<IpAddr>>>,
}

/// The answer to an address past its quota of spent-ticket replays.
fn too_many_spent(wait: std::time::Duration) -> Status {
    crate::stats::refused("spent_tickets");
    Status::new(
        handlers::Code::ResourceExhausted,
        "too many spent stream tickets from your address; retry later with a new ticket",
    )
    .with_retry_after(wait.max(std::time::Duration::from_secs(1)))
}

/// A ticket's outcome, for `edge_stream_tickets_total`.
fn ticket_outcome(why: Option<Refusal>) -> &'static str {
    match why {
        None => "opened",
        Some(Refusal::Spent { remembered: true }) => "spent_remembered",
        Some(Refusal::Spent { remembered: false }) => "spent_in_store",
        Some(Refusal::Expired) => "expired",
        Some(Refusal::LoggedOut) => "logged_out",
        Some(Refusal::Forged) => "forged",
        Some(Refusal::Unavailable) => "unavailable",
    }
}

/// The answer to an address past its quota of bad credentials.
fn too_many_bad(wait: std::time::Duration) -> Status {
    crate::stats::refused("bad_credentials");
    Status::new(
        handlers::Code::ResourceExhausted,
        "too many requests with bad credentials from your address; retry later",
    )
    .with_retry_after(wait.max(std::time::Duration::from_secs(1)))
}

/// Counts a 401 against `addr`.
fn count_bad(bad: Option<&LeakyBuckets<IpAddr>>, addr: Option<IpAddr>, status: &Status) {
    if status.code() == handlers::Code::Unauthenticated
        && let (Some(bad), Some(addr)) = (bad, addr)
    {
        bad.add(&addr);
    }
}

/// What a request's bearer token turned out to be.
enum Credential {
    None,
    /// An access token: its player and login session.
    Verified(Principal, SessionId),
    Key(String),
    /// A browser's stream ticket (`GET /v1/events?ticket=`): spent in the store.
    Ticket(String),
    Refused(Status),
}

impl Credential {
    /// What it was, for the trace.
    fn kind(&self) -> &'static str {
        match self {
            Credential::None => "none",
            Credential::Verified(..) | Credential::Refused(_) => "access_token",
            Credential::Key(_) => "service_key",
            Credential::Ticket(_) => "ticket",
        }
    }
}

/// A stream ticket in the query of `GET /v1/events` (the only path that takes one: `EventSource`
/// cannot send headers). Tickets are URL-safe, so the value is taken as it is.
fn ticket(req: &Request, m: &MethodDesc) -> Option<String> {
    if req.method() != http::Method::GET || m.path != crate::router::SUBSCRIBE_METHOD {
        return None;
    }
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("ticket="))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The bearer token of a request, if it carries one.
fn bearer(req: &Request) -> Option<&str> {
    let value = req
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Authorizes `principal` for `m` and hands it, its login session and the method on to the
/// layers inside; the authentication `span` ends here, before the inner service runs.
fn admit(
    req: &mut Request,
    principal: Option<Principal>,
    session: Option<SessionId>,
    m: &'static MethodDesc,
    span: tracing::Span,
) -> Result<(), Status> {
    let allowed = authorize(principal.as_ref(), m);
    crate::trace::record_auth(
        &span,
        allowed
            .as_ref()
            .map(|()| principal.as_ref())
            .map_err(Status::code),
    );
    drop(span);
    allowed?;
    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    if let Some(s) = session {
        req.extensions_mut().insert(s);
    }
    // Layers inside (rate limits) need the method too; spare them the lookup.
    req.extensions_mut().insert(m);
    Ok(())
}

/// The response future: the inner service's (most requests), a refusal ready at once, or the
/// boxed wait of a ticket's or a service key's store read before the inner call.
pub type AuthFuture<F, E> =
    Either<Either<F, Ready<Result<Response, E>>>, BoxFuture<Result<Response, E>>>;

fn refuse<F, E>(status: Status) -> AuthFuture<F, E> {
    Either::Left(Either::Right(ready(Ok(crate::error::into_response(
        status,
    )))))
}

fn pass<F, E>(inner: F) -> AuthFuture<F, E> {
    Either::Left(Either::Left(inner))
}

impl<S> Service<Request> for Authenticate<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // Only calls of methods (and their aliases) are checked; anything else passes on (404/405).
        let method = crate::router::route_method(req.method(), req.uri().path());
        let Some(m) = method else {
            return pass(self.inner.call(req));
        };
        // Ends before the inner service is called: it times authentication alone.
        let span = crate::trace::auth_span();
        if let Some(InProcess(p)) = req.extensions_mut().remove::<InProcess>() {
            crate::trace::record_credential(&span, "in_process");
            return match admit(&mut req, Some(p), None, m, span) {
                Ok(()) => pass(self.inner.call(req)),
                Err(status) => refuse(status),
            };
        }
        // Public methods ignore credentials entirely: a stale token must not block login.
        let credential =
            span.in_scope(
                || match bearer(&req).filter(|_| m.access != Access::Public) {
                    None => ticket(&req, m).map_or(Credential::None, Credential::Ticket),
                    // Service keys need a store read (usually cached); access tokens are checked in place.
                    Some(t) if t.starts_with(handlers::kit::api_keys::KEY_PREFIX) => {
                        Credential::Key(t.to_owned())
                    }
                    Some(t) => match self.auth.authenticate(t) {
                        Ok((p, session)) => Credential::Verified(p, session),
                        Err(status) => Credential::Refused(status),
                    },
                },
            );
        crate::trace::record_credential(&span, credential.kind());
        let addr = req
            .extensions()
            .get::<crate::layers::client_addr::ClientAddr>()
            .map(|a| address_key(a.0));
        // Past its quota an address keeps only what it can prove at no cost: a valid token.
        if !matches!(credential, Credential::Verified(..)) && m.access != Access::Public {
            let blocked = match (&self.bad, addr) {
                (Some(bad), Some(a)) => bad.full(&a),
                _ => None,
            };
            if let Some(wait) = blocked {
                crate::trace::record_auth(&span, Err(handlers::Code::ResourceExhausted));
                return refuse(too_many_bad(wait));
            }
        }
        let (principal, session) = match credential {
            Credential::None => (None, None),
            Credential::Verified(p, session) => (Some(p), Some(session)),
            Credential::Refused(status) => {
                crate::trace::record_auth(&span, Err(status.code()));
                count_bad(self.bad.as_deref(), addr, &status);
                return refuse(status);
            }
            // A ticket is spent with a store write; the same shape as a key's read below.
            Credential::Ticket(ticket) => {
                // Past its spent-ticket replays, an address's tickets wait: before any work.
                let blocked = match (&self.spent_tickets, addr) {
                    (Some(spent), Some(a)) => spent.full(&a),
                    _ => None,
                };
                if let Some(wait) = blocked {
                    crate::trace::record_auth(&span, Err(handlers::Code::ResourceExhausted));
                    return refuse(too_many_spent(wait));
                }
                let auth = Arc::clone(&self.auth);
                let bad = self.bad.clone();
                let spent_tickets = self.spent_tickets.clone();
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                return Either::Right(Box::pin(async move {
                    let redeemed = auth.redeem_ticket(&ticket).instrument(span.clone()).await;
                    crate::stats::stream_ticket(ticket_outcome(
                        redeemed.as_ref().err().map(|r| r.why),
                    ));
                    let (principal, session) = match redeemed {
                        Ok(redeemed) => redeemed,
                        // A spent or expired ticket is a browser reconnecting, not a guess; a
                        // spent one counts as a replay, a forged one as a bad credential.
                        Err(refused) => {
                            crate::trace::record_auth(&span, Err(refused.status.code()));
                            match refused.why {
                                Refusal::Forged => {
                                    count_bad(bad.as_deref(), addr, &refused.status);
                                }
                                Refusal::Spent { .. } => {
                                    if let (Some(spent), Some(a)) = (&spent_tickets, addr) {
                                        spent.add(&a);
                                    }
                                }
                                Refusal::Expired | Refusal::LoggedOut | Refusal::Unavailable => {}
                            }
                            return Ok(status_response(&refused.status));
                        }
                    };
                    match admit(&mut req, Some(principal), Some(session), m, span) {
                        Ok(()) => inner.call(req).await,
                        Err(status) => Ok(status_response(&status)),
                    }
                }));
            }
            // Service keys may need a store read: with tickets, the only paths that wait before
            // calling inner, so the only ones that take the ready instance and leave a clone.
            Credential::Key(key) => {
                let keys = Arc::clone(&self.keys);
                let bad = self.bad.clone();
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                return Either::Right(Box::pin(async move {
                    let principal = match keys.verify(&key).instrument(span.clone()).await {
                        Ok(p) => p,
                        Err(status) => {
                            crate::trace::record_auth(&span, Err(status.code()));
                            count_bad(bad.as_deref(), addr, &status);
                            return Ok(status_response(&status));
                        }
                    };
                    match admit(&mut req, Some(principal), None, m, span) {
                        Ok(()) => inner.call(req).await,
                        Err(status) => Ok(status_response(&status)),
                    }
                }));
            }
        };
        match admit(&mut req, principal, session, m, span) {
            Ok(()) => pass(self.inner.call(req)),
            Err(status) => {
                count_bad(self.bad.as_deref(), addr, &status);
                refuse(status)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(path: &str) -> &'static MethodDesc {
        proto::method_by_path(path).unwrap()
    }

    #[test]
    fn access_rules() {
        let player = Principal::Player {
            player_id: "p".into(),
        };
        let get = method("/aicore.state.v1.StateService/Get");
        let login = method("/aicore.auth.v1.AuthService/Login");
        let credit = method("/aicore.payment.v1.PaymentService/Credit");
        let set_scale = method("/aicore.time.v1.TimeService/SetScale");
        assert!(authorize(None, login).is_ok());
        assert_eq!(
            authorize(None, get).unwrap_err().code(),
            handlers::Code::Unauthenticated
        );
        assert!(authorize(Some(&player), get).is_ok());
        assert_eq!(
            authorize(Some(&player), credit).unwrap_err().code(),
            handlers::Code::PermissionDenied
        );
        let all = Principal::Service {
            name: "gs".into(),
            scopes: vec!["*".into()].into(),
        };
        assert!(authorize(Some(&all), credit).is_ok());
        let refused = authorize(Some(&all), set_scale).unwrap_err();
        assert!(
            refused.message().contains("needs scope time.SetScale"),
            "admin methods need an explicit scope, and the refusal names it: {}",
            refused.message()
        );
        let admin = Principal::Service {
            name: "ops".into(),
            scopes: vec!["time.SetScale".into()].into(),
        };
        assert!(authorize(Some(&admin), set_scale).is_ok());
        let refused = authorize(Some(&admin), credit).unwrap_err();
        assert!(
            refused
                .message()
                .contains("needs scope payment, payment.Credit or *"),
            "{}",
            refused.message()
        );
    }
}
