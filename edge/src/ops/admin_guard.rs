//! What keeps a web page in the operator's browser out of the admin listener: a page can send
//! simple requests to `http://127.0.0.1:9901`, and through DNS rebinding even read answers under
//! its own host name. So the admin listener answers only requests whose `Host` is loopback or an
//! IP literal (a rebound name is neither), takes a POST only with a JSON body or the
//! `x-edge-admin` header (neither can be sent cross-origin without a CORS preflight, which this
//! listener never grants), and, when an admin token is configured, only requests that carry it.
//! Probes stay open: they reveal nothing and the container's health check must reach them.
//! The console (`/console`) gets only the `Host` check here: a browser sends no bearer header
//! and posts forms, so the console checks its own session cookie, CSRF token and `Origin`.

use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse as _, Response};
use futures_util::future::{Either, Ready, ready};
use http::{HeaderMap, Method, StatusCode, header};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tower::{Layer, Service};

/// The header a script may send instead of a JSON content type on a POST.
pub const ADMIN_HEADER: &str = "x-edge-admin";

/// A secret from the config: never printed (Debug shows no value; the config skips it).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret itself, to send.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Adds [`AdminGuard`] around the admin router.
#[derive(Debug, Clone)]
pub struct AdminGuardLayer {
    /// SHA-256 of the admin token, if one is configured (compared in constant time).
    token: Option<[u8; 32]>,
}

impl AdminGuardLayer {
    /// The layer; `token` is the optional admin token.
    pub fn layer(token: Option<&Secret>) -> Self {
        AdminGuardLayer {
            token: token.map(|t| Sha256::digest(t.expose().as_bytes()).into()),
        }
    }
}

impl<S> Layer<S> for AdminGuardLayer {
    type Service = AdminGuard<S>;
    fn layer(&self, inner: S) -> AdminGuard<S> {
        AdminGuard {
            inner,
            token: self.token,
        }
    }
}

/// The middleware.
#[derive(Debug, Clone)]
pub struct AdminGuard<S> {
    inner: S,
    token: Option<[u8; 32]>,
}

/// Whether `host` (a Host header value) names this machine's loopback or an IP literal.
fn host_allowed(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6]:port or [v6]
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.starts_with(':') => {
                return v6.parse::<std::net::Ipv6Addr>().is_ok() && port_ok(port);
            }
            _ => return false,
        },
        None => host,
    };
    let (name, port) = match name.rsplit_once(':') {
        Some((n, p)) => (n, p),
        None => (name, ""),
    };
    let port = if port.is_empty() {
        String::new()
    } else {
        format!(":{port}")
    };
    (name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok())
        && port_ok(&port)
}

fn port_ok(port: &str) -> bool {
    port.is_empty() || port[1..].parse::<u16>().is_ok()
}

/// Whether `path` is the console's, which guards itself (see the module doc).
fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// Why a request is refused, if it is.
fn refusal(
    token: Option<&[u8; 32]>,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
) -> Option<(StatusCode, &'static str)> {
    // HTTP/2 carries the host as the URI's authority.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(http::uri::Authority::as_str));
    let path = uri.path();
    if !host.is_some_and(host_allowed) {
        return Some((
            StatusCode::MISDIRECTED_REQUEST,
            "the admin listener answers only Host: localhost or an IP address",
        ));
    }
    if matches!(path, "/healthz" | "/readyz") || is_console(path) {
        return None;
    }
    if let Some(want) = token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(|t| Sha256::digest(t.as_bytes()));
        if !given.is_some_and(|g| bool::from(g.as_slice().ct_eq(want))) {
            return Some((
                StatusCode::UNAUTHORIZED,
                "the admin listener needs Authorization: Bearer <admin token>",
            ));
        }
    }
    if method != Method::GET && method != Method::HEAD {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|c| {
                c.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json && !headers.contains_key(ADMIN_HEADER) {
            return Some((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "admin changes need Content-Type: application/json or an x-edge-admin header",
            ));
        }
    }
    None
}

impl<S> Service<Request> for AdminGuard<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match refusal(self.token.as_ref(), req.method(), req.uri(), req.headers()) {
            None => Either::Left(self.inner.call(req)),
            Some((status, message)) => {
                tracing::warn!(path = req.uri().path(), %status, "admin request refused");
                let body = serde_json::json!({"code": "permission_denied", "message": message});
                Either::Right(ready(Ok((status, axum::Json(body)).into_response())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(path: &str) -> http::Uri {
        path.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hosts() {
        for ok in [
            "localhost",
            "LOCALHOST:9901",
            "127.0.0.1",
            "127.0.0.1:9901",
            "10.0.1.5:9901",
            "[::1]",
            "[::1]:9901",
        ] {
            assert!(host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9901",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "[::1]x",
            "127.0.0.1:99999",
            "",
        ] {
            assert!(!host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn posts_need_json_or_the_header_and_the_token_when_set() {
        let token: [u8; 32] = Sha256::digest(b"s3cret").into();
        let get = Method::GET;
        let post = Method::POST;
        let local = headers(&[("host", "127.0.0.1:9901")]);
        assert!(refusal(None, &get, &uri("/admin/keys"), &local).is_none());
        assert_eq!(
            refusal(None, &post, &uri("/admin/keys/x/revoke"), &local).map(|r| r.0),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        let form = headers(&[("host", "localhost"), ("content-type", "text/plain")]);
        assert!(refusal(None, &post, &uri("/admin/keys"), &form).is_some());
        let json = headers(&[
            ("host", "localhost"),
            ("content-type", "application/json; charset=utf-8"),
        ]);
        assert!(refusal(None, &post, &uri("/admin/keys"), &json).is_none());
        let marked = headers(&[("host", "localhost"), (ADMIN_HEADER, "1")]);
        assert!(refusal(None, &post, &uri("/admin/keys/x/revoke"), &marked).is_none());
        let rebound = headers(&[
            ("host", "attacker.example:9901"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(
            refusal(None, &post, &uri("/admin/keys"), &rebound).map(|r| r.0),
            Some(StatusCode::MISDIRECTED_REQUEST)
        );
        assert!(
            refusal(None, &get, &uri("/healthz"), &headers(&[])).is_some(),
            "no Host"
        );

        assert_eq!(
            refusal(Some(&token), &get, &uri("/admin/config"), &local).map(|r| r.0),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert!(refusal(Some(&token), &get, &uri("/readyz"), &local).is_none());
        let wrong = headers(&[("host", "localhost"), ("authorization", "Bearer nope")]);
        assert!(refusal(Some(&token), &get, &uri("/metrics"), &wrong).is_some());
        let right = headers(&[("host", "localhost"), ("authorization", "Bearer s3cret")]);
        assert!(refusal(Some(&token), &get, &uri("/metrics"), &right).is_none());
    }

    #[test]
    fn the_console_guards_itself_but_not_against_rebinding() {
        let token: [u8; 32] = Sha256::digest(b"s3cret").into();
        let form = headers(&[
            ("host", "127.0.0.1:9901"),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        assert!(refusal(Some(&token), &Method::POST, &uri("/console/login"), &form).is_none());
        assert!(refusal(Some(&token), &Method::GET, &uri("/console"), &form).is_none());
        let rebound = headers(&[("host", "attacker.example")]);
        assert!(refusal(None, &Method::GET, &uri("/console"), &rebound).is_some());
        // Only the console's own paths: not a prefix that merely looks like it.
        assert!(refusal(Some(&token), &Method::GET, &uri("/consoles"), &form).is_some());
        assert!(refusal(Some(&token), &Method::GET, &uri("/admin/console"), &form).is_some());
    }
}
