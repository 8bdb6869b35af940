//! The HTTP side: the TLS listener and its graceful drain ([`server`], the top of the process),
//! certificates ([`tls`]), the lingering close of its connections ([`linger`]), and the protocol adapters that turn HTTP into service calls: Connect
//! unary ([`connect`]), OpenAI-compatible chat ([`chat`]), the event bus ([`events`]) and the SSE
//! framing they share ([`sse`]), and the API's description ([`openapi`]). Adapters may import the layers, the router, NATS and the shared
//! modules below; only `server` may import `ops` and the composition root. Each adapter's state is
//! [`Api`], taken from the app's state, so adapters never see the whole of it.

pub mod chat;
pub mod connect;
pub mod encoding;
pub mod events;
pub mod linger;
pub mod openapi;
pub mod server;
pub mod sse;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::router::stack::ClientCalls;

/// What the protocol adapters share.
#[derive(Clone)]
pub struct Api {
    /// Where calls go.
    pub calls: ClientCalls,
    /// Open SSE streams and their limits.
    pub streams: Arc<sse::Streams>,
    /// Body limit and the longest unary call.
    pub http: Arc<HttpConfig>,
    /// The longest LLM call (chat and the LLM service).
    pub llm_timeout: Duration,
}

/// HTTP limits and timeouts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest unary call; caps Connect-Timeout-Ms.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Idle keep-alive and header-read timeout (above the ALB's 60 s idle timeout).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Requests in flight before shedding.
    pub max_in_flight: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Open client connections; more are closed at once.
    pub max_connections: usize,
    /// Request header fields (HTTP/1.1); more get 431.
    pub max_headers: usize,
    /// Total size of a request's header block; larger gets 431 (HTTP/1.1) or a stream reset (HTTP/2).
    pub max_header_bytes: usize,
    /// Peers whose `X-Forwarded-For` is believed (the load balancer's subnets), as CIDRs.
    pub trusted_proxies: Vec<String>,
    /// Browser origins allowed to call the API (CORS), e.g. `https://play.example.com`; `*`
    /// allows any origin (never with credentials: the API uses bearer tokens, not cookies).
    /// None by default: browsers on other origins are refused.
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 256 * 1024,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            max_in_flight: 1024,
            max_concurrent_streams: 256,
            max_connections: 10_000,
            max_headers: 64,
            max_header_bytes: 32 * 1024,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
        }
    }
}

/// Drain and shutdown timing; see terraform/ for how these agree with the ALB and ECS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Keep serving this long after SIGTERM (readiness 503).
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Exit within this long of SIGTERM.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_delay: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}
