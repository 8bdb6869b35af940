//! What crosses NATS besides the protobuf body: the call's context one way, the error the other.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::header::HeaderName;
use handlers::{Code, Context, Principal, Status};

/// Milliseconds left before the caller's deadline (relative, so clocks need not agree).
pub const DEADLINE_MS: &str = "Edge-Deadline-Ms";
/// The request id.
pub const REQUEST_ID: &str = "X-Request-Id";
/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// The client's language preference, so a worker answers in the player's language too.
pub const ACCEPT_LANGUAGE: &str = "Accept-Language";
/// The authenticated principal, as the edge verified it. Believed only under a signature one of
/// the responder's keys verifies ([`super::signing`]), on a subject the sender's NATS user may
/// publish ([`super::permissions`]).
pub const PRINCIPAL: &str = "Edge-Principal";
/// A player principal's login session (a worker issuing a stream ticket binds it to it). Sent
/// only with [`PRINCIPAL`], signed as it is.
pub const SESSION: &str = "Edge-Session";
/// The client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// The client's address, for per-address limits in the worker.
pub const CLIENT_ADDR: &str = "Edge-Client-Addr";
/// For a call between services: the services on the way, outermost first, the caller last
/// (comma-separated short names). The callee derives the caller's principal and scopes from the
/// descriptors, never from the sender's word.
pub const CALL_CHAIN: &str = "Edge-Call-Chain";
/// For a call between services: whom its costs are charged to (the chain's origin: a player, or
/// the service key that started it), encoded as [`PRINCIPAL`] is. Sent only with
/// [`CALL_CHAIN`]; it names a payer, never grants anything.
pub const ORIGIN: &str = "Edge-Origin";
/// The Connect code of an error reply.
pub const CONNECT_CODE: &str = "Connect-Code";
/// When to retry, for `unavailable` and `resource_exhausted` replies.
pub const RETRY_AFTER_MS: &str = "Edge-Retry-After-Ms";
/// The NATS micro-service error headers.
pub const SERVICE_ERROR: &str = "Nats-Service-Error";
/// The NATS micro-service error code header (the HTTP status here).
pub const SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";

/// A header name without the validation and copy that async-nats does for every `&str` name (on
/// every insert and every lookup): these run for each call on both sides.
pub fn name(n: &'static str) -> HeaderName {
    HeaderName::from_static(n)
}

/// `player <id>` or `service <name> <scope,scope>`.
pub fn encode_principal(p: &Principal) -> String {
    match p {
        Principal::Player { player_id } => format!("player {player_id}"),
        Principal::Service { name, scopes } => format!("service {name} {}", scopes.join(",")),
    }
}

/// The inverse of [`encode_principal`].
pub fn decode_principal(s: &str) -> Option<Principal> {
    let mut parts = s.split(' ');
    match (parts.next()?, parts.next()?) {
        ("player", id) if !id.is_empty() => Some(Principal::Player {
            player_id: id.to_owned(),
        }),
        ("service", name) if !name.is_empty() => Some(Principal::Service {
            name: name.to_owned(),
            scopes: parts
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }),
        _ => None,
    }
}

/// Inserts `value` unless NATS cannot carry it (a CR or LF would end the header line):
/// values from HTTP never have one, but a header is never worth a panic.
fn put(h: &mut HeaderMap, n: &'static str, value: &str) {
    match value.parse::<async_nats::HeaderValue>() {
        Ok(v) => h.insert(name(n), v),
        Err(_) => tracing::warn!(header = n, "a header value with a line break was not sent"),
    }
}

/// The headers of a request sent with `timeout` left.
pub fn request_headers(ctx: &Context, timeout: Duration) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(name(DEADLINE_MS), timeout.as_millis().to_string());
    if !ctx.request_id.is_empty() {
        put(&mut h, REQUEST_ID, &ctx.request_id);
    }
    // With tracing on, the current span (the router's call) is the worker's parent; else the
    // caller's own traceparent passes through.
    let traceparent = crate::trace::current_traceparent().or_else(|| ctx.traceparent.clone());
    if let Some(tp) = &traceparent {
        put(&mut h, TRACEPARENT, tp);
    }
    if !ctx.chain.is_empty() {
        put(&mut h, CALL_CHAIN, &ctx.chain.join(","));
        if let Some(origin) = &ctx.origin {
            put(&mut h, ORIGIN, &encode_principal(origin));
        }
    } else if let Some(p) = &ctx.principal {
        put(&mut h, PRINCIPAL, &encode_principal(p));
        if let (Principal::Player { .. }, Some(s)) = (p, &ctx.session) {
            put(&mut h, SESSION, &s.0);
        }
    }
    if let Some(k) = &ctx.idempotency_key {
        put(&mut h, IDEMPOTENCY_KEY, k);
    }
    if let Some(a) = ctx.client_addr {
        h.insert(name(CLIENT_ADDR), a.to_string());
    }
    if let Some(l) = &ctx.accept_language {
        put(&mut h, ACCEPT_LANGUAGE, l);
    }
    h
}

fn get<'a>(h: &'a HeaderMap, n: &'static str) -> Option<&'a str> {
    h.get(name(n)).map(|v| v.as_str()).filter(|v| !v.is_empty())
}

/// The context of a request received at `received`; `max` bounds a missing or huge deadline.
pub fn context_from(h: Option<&HeaderMap>, received: Instant, max: Duration) -> Context {
    let Some(h) = h else {
        return Context {
            deadline: Some(received + max),
            ..Context::default()
        };
    };
    let budget = get(h, DEADLINE_MS)
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(max, |ms| Duration::from_millis(ms).min(max));
    // A call between services names its chain; its principal is the caller's, by the
    // descriptors. A name no service has is kept as a chain that `calls::admit` refuses.
    let chain: Vec<&'static str> = get(h, CALL_CHAIN)
        .map(|c| {
            c.split(',')
                .map(|s| proto::ServiceDesc::by_short(s).map_or("?", |d| d.short))
                .collect()
        })
        .unwrap_or_default();
    let principal = match chain.last() {
        Some(caller) => {
            proto::ServiceDesc::by_short(caller).map(handlers::kit::calls::principal_of)
        }
        None => get(h, PRINCIPAL).and_then(decode_principal),
    };
    let session = match principal {
        Some(Principal::Player { .. }) if chain.is_empty() => {
            get(h, SESSION).map(|s| handlers::SessionId(s.into()))
        }
        _ => None,
    };
    // Only a chain has an origin: a client's own call is charged to its principal.
    let origin = if chain.is_empty() {
        None
    } else {
        get(h, ORIGIN).and_then(decode_principal)
    };
    Context {
        session,
        origin,
        chain,
        principal,
        deadline: Some(received + budget),
        request_id: get(h, REQUEST_ID).unwrap_or("").to_owned(),
        idempotency_key: get(h, IDEMPOTENCY_KEY).map(str::to_owned),
        traceparent: get(h, TRACEPARENT).map(str::to_owned),
        client_addr: get(h, CLIENT_ADDR).and_then(|a| a.parse().ok()),
        accept_language: get(h, ACCEPT_LANGUAGE).and_then(handlers::kit::context::accept_language),
    }
}

/// The error of a reply, if it is one. Understands both our Connect-Code header and bare NATS
/// micro-service errors (whose code is read as an HTTP status), so legacy workers map too.
pub fn status_from_reply(h: Option<&HeaderMap>) -> Option<Status> {
    let h = h?;
    let numeric = get(h, SERVICE_ERROR_CODE);
    let connect = get(h, CONNECT_CODE).and_then(Code::parse);
    if numeric.is_none() && connect.is_none() {
        return None;
    }
    let code = connect.unwrap_or_else(|| {
        crate::error::code_for_http(numeric.and_then(|n| n.parse().ok()).unwrap_or(500))
    });
    let message = get(h, SERVICE_ERROR).unwrap_or("the worker failed the call");
    let http = numeric.and_then(|n| n.parse().ok()).unwrap_or(0);
    let mut status = crate::error::status_with_http(code, http, message);
    if let Some(ms) = get(h, RETRY_AFTER_MS).and_then(|v| v.parse::<u64>().ok()) {
        status = status.with_retry_after(Duration::from_millis(ms));
    }
    Some(status)
}

/// The NATS micro-service error and extra headers that carry `status` back to the edge.
pub fn error_reply(status: &Status) -> (async_nats::service::error::Error, HeaderMap) {
    let mut h = HeaderMap::new();
    h.insert(name(CONNECT_CODE), status.code().as_str());
    if let Some(after) = status.retry_after() {
        h.insert(name(RETRY_AFTER_MS), after.as_millis().to_string());
    }
    let error = async_nats::service::error::Error {
        status: status.message().to_owned(),
        code: usize::from(crate::error::http_for(status).as_u16()),
    };
    (error, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_round_trip() {
        for p in [
            Principal::Player {
                player_id: "0123456789abcdef0123456789abcdef".into(),
            },
            Principal::Service {
                name: "gameserver".into(),
                scopes: vec!["*".into(), "time.SetScale".into()].into(),
            },
            Principal::Service {
                name: "tool".into(),
                scopes: vec![].into(),
            },
        ] {
            assert_eq!(decode_principal(&encode_principal(&p)), Some(p));
        }
        assert_eq!(decode_principal("admin x"), None);
        assert_eq!(decode_principal(""), None);
    }

    #[test]
    fn context_crosses_with_a_bounded_deadline() {
        let ctx = Context {
            principal: Some(Principal::Player {
                player_id: "p".into(),
            }),
            request_id: "r1".into(),
            idempotency_key: Some("k".into()),
            traceparent: Some("00-aa-bb-01".into()),
            deadline: None,
            client_addr: Some("2001:db8::7".parse().unwrap()),
            chain: Vec::new(),
            session: Some(handlers::SessionId("s1".into())),
            // Not sent without a chain: a client's own call is charged to its principal.
            origin: Some(Principal::Player {
                player_id: "q".into(),
            }),
            accept_language: Some("de-CH, de;q=0.9".into()),
        };
        let h = request_headers(&ctx, Duration::from_millis(1500));
        assert!(h.get(ORIGIN).is_none());
        let now = Instant::now();
        let back = context_from(Some(&h), now, Duration::from_secs(60));
        assert_eq!(back.principal, ctx.principal);
        assert_eq!(back.session, ctx.session);
        assert_eq!(back.request_id, "r1");
        assert_eq!(back.idempotency_key.as_deref(), Some("k"));
        assert_eq!(back.client_addr, ctx.client_addr);
        // A worker answers in the player's language too.
        assert_eq!(back.accept_language, ctx.accept_language);
        assert_eq!(back.deadline, Some(now + Duration::from_millis(1500)));
        let capped = context_from(Some(&h), now, Duration::from_secs(1));
        assert_eq!(capped.deadline, Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn a_call_between_services_carries_its_chain_and_never_its_principal() {
        let ctx = Context {
            // What the sender claims is ignored: the callee derives it from the descriptors.
            principal: Some(Principal::Service {
                name: "svc:weather".into(),
                scopes: vec!["*".into()].into(),
            }),
            chain: vec!["npc", "weather"],
            session: Some(handlers::SessionId("s1".into())),
            origin: Some(Principal::Player {
                player_id: "p".into(),
            }),
            ..Context::default()
        };
        let h = request_headers(&ctx, Duration::from_secs(1));
        assert!(h.get(PRINCIPAL).is_none());
        assert!(h.get(SESSION).is_none());
        let back = context_from(Some(&h), Instant::now(), Duration::from_secs(60));
        assert_eq!(back.chain, vec!["npc", "weather"]);
        // The payer travels with the chain, so a worker's model call is charged to the player.
        assert_eq!(back.origin, ctx.origin);
        assert_eq!(back.payer(), ctx.origin.as_ref());
        assert_eq!(
            back.principal,
            Some(Principal::Service {
                name: "svc:weather".into(),
                scopes: vec![
                    "events.Publish".into(),
                    "time.Now".into(),
                    "world.GetRegion".into(),
                    "world.ListRegions".into()
                ]
                .into(),
            })
        );
        // A forged chain naming no service keeps a marker that admit refuses.
        let mut forged = HeaderMap::new();
        forged.insert(CALL_CHAIN, "weather,root");
        let back = context_from(Some(&forged), Instant::now(), Duration::from_secs(60));
        assert_eq!(back.chain, vec!["weather", "?"]);
        assert_eq!(back.principal, None);
        let now = &proto::aicore::time::v1::TIME_SERVICE.methods[0];
        assert_eq!(
            handlers::kit::calls::admit(&back, now).unwrap_err().code(),
            handlers::Code::PermissionDenied
        );
    }

    #[test]
    fn errors_round_trip_and_legacy_codes_map() {
        let s = Status::unavailable("busy", Duration::from_millis(2500));
        let (err, mut h) = error_reply(&s);
        h.insert(SERVICE_ERROR, err.status.as_str());
        h.insert(SERVICE_ERROR_CODE, err.code.to_string().as_str());
        assert_eq!(status_from_reply(Some(&h)), Some(s));
        for s in [
            Status::unprocessable("key reused"),
            Status::payload_too_large("big"),
            Status::bad_gateway("garbled"),
        ] {
            let (err, mut h) = error_reply(&s);
            h.insert(SERVICE_ERROR, err.status.as_str());
            h.insert(SERVICE_ERROR_CODE, err.code.to_string().as_str());
            assert_eq!(status_from_reply(Some(&h)), Some(s));
        }
        let mut legacy = HeaderMap::new();
        legacy.insert(SERVICE_ERROR_CODE, "409");
        legacy.insert(SERVICE_ERROR, "conflict");
        let s = status_from_reply(Some(&legacy)).unwrap();
        assert_eq!(s.code(), Code::Aborted);
        assert_eq!(s.message(), "conflict");
        assert_eq!(status_from_reply(Some(&HeaderMap::new())), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_headers_give_a_bounded_context(
                values in proptest::collection::vec(".{0,80}", 7),
            ) {
                let names = [DEADLINE_MS, REQUEST_ID, TRACEPARENT, CALL_CHAIN, PRINCIPAL, IDEMPOTENCY_KEY, CLIENT_ADDR];
                let mut h = HeaderMap::new();
                for (n, v) in names.iter().zip(&values) {
                    put(&mut h, n, v);
                }
                let now = Instant::now();
                let ctx = context_from(Some(&h), now, Duration::from_secs(30));
                prop_assert!(ctx.deadline.unwrap() <= now + Duration::from_secs(30));
                let _ = decode_principal(&values[4]);
                let _ = status_from_reply(Some(&h));
            }

            #[test]
            fn any_context_goes_out_without_a_panic(
                text in proptest::collection::vec("(.|\r|\n){0,40}", 4),
            ) {
                let ctx = Context {
                    request_id: text[0].clone(),
                    traceparent: Some(text[1].clone()),
                    idempotency_key: Some(text[2].clone()),
                    principal: Some(Principal::Player { player_id: text[3].clone() }),
                    ..Context::default()
                };
                let _ = request_headers(&ctx, Duration::from_secs(1));
            }

            #[test]
            fn principals_round_trip(
                id in "[A-Za-z0-9_.:-]{1,40}",
                scopes in proptest::collection::vec("[A-Za-z0-9_.*]{1,20}", 0..5),
                player in any::<bool>(),
            ) {
                let p = if player {
                    Principal::Player { player_id: id }
                } else {
                    Principal::Service { name: id, scopes: scopes.into() }
                };
                prop_assert_eq!(decode_principal(&encode_principal(&p)), Some(p));
            }

            #[test]
            fn a_context_crosses_nats_intact(
                request_id in "[!-~]{1,64}",
                key in proptest::option::of("[!-~]{1,255}"),
                traceparent in proptest::option::of("00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]"),
                addr in proptest::option::of(any::<std::net::IpAddr>()),
                ms in 1u64..30_000,
            ) {
                let ctx = Context {
                    request_id: request_id.clone(),
                    idempotency_key: key.clone(),
                    traceparent: traceparent.clone(),
                    client_addr: addr,
                    principal: Some(Principal::Player { player_id: "p1".into() }),
                    ..Context::default()
                };
                let h = request_headers(&ctx, Duration::from_millis(ms));
                let now = Instant::now();
                let back = context_from(Some(&h), now, Duration::from_secs(60));
                prop_assert_eq!(back.request_id, request_id);
                prop_assert_eq!(back.idempotency_key, key);
                prop_assert_eq!(back.traceparent, traceparent);
                prop_assert_eq!(back.client_addr, addr);
                prop_assert_eq!(back.deadline, Some(now + Duration::from_millis(ms)));
                prop_assert_eq!(back.principal, ctx.principal);
            }
        }
    }
}
