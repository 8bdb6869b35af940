//! CORS for browser clients (a WebGL build, a web dashboard) on the origins the operator lists:
//! tower-http's `CorsLayer`, configured once here. Preflights are answered by it, before
//! admission, authentication and rate limiting (a preflight carries no token); real responses,
//! errors included, get the headers a client needs to read.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Request headers a browser may send.
const ALLOW_HEADERS: [&str; 11] = [
    "authorization",
    "content-type",
    "accept",
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-content-encoding",
    "connect-accept-encoding",
    "idempotency-key",
    "last-event-id",
    "traceparent",
    "x-request-id",
];

/// Response headers a browser's script may read.
const EXPOSE_HEADERS: [&str; 7] = [
    "retry-after",
    "x-request-id",
    "ratelimit",
    "ratelimit-policy",
    "connect-content-encoding",
    "connect-accept-encoding",
    "content-encoding",
];

/// The layer for `origins`, or `None` when there are none (no CORS: browsers on other origins
/// are refused, as before). An origin is `scheme://host[:port]` or `*`.
pub fn layer(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow =
        if origins.iter().any(|o| o == "*") {
            if origins.len() > 1 {
                return Err("http.cors_origins: `*` stands alone".into());
            }
            // Never with credentials: the API authenticates with bearer tokens, not cookies.
            AllowOrigin::any()
        } else {
            let list = origins
            .iter()
            .map(|o| {
                let valid = (o.starts_with("https://") || o.starts_with("http://"))
                    && !o.ends_with('/')
                    && o.split("://").nth(1).is_some_and(|h| !h.is_empty() && !h.contains('/'));
                if !valid {
                    return Err(format!(
                        "http.cors_origins: {o:?} is not an origin like https://play.example.com"
                    ));
                }
                HeaderValue::from_str(o).map_err(|e| format!("http.cors_origins: {o:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
            AllowOrigin::list(list)
        };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(ALLOW_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSE_HEADERS.map(HeaderName::from_static))
            .max_age(Duration::from_secs(600)),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn origins_are_checked() {
        assert!(layer(&[]).unwrap().is_none());
        assert!(
            layer(&["https://play.example.com".into()])
                .unwrap()
                .is_some()
        );
        assert!(layer(&["*".into()]).unwrap().is_some());
        for bad in [
            "play.example.com",
            "https://play.example.com/",
            "https://",
            "ftp://x",
        ] {
            assert!(layer(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(layer(&["*".into(), "https://a.example".into()]).is_err());
    }
}
