//! The middleware, in the order `stack.rs` builds them, outermost first: early answers that
//! wait for a small unread body over HTTP/2 ([`drain`]), request ids ([`request_id`]), panics to 500 ([`panic`]), access logs ([`access_log`]), the client's address
//! ([`client_addr`]), load shedding and bulkheads ([`admission`]), authentication ([`auth`]) and
//! rate limits ([`ratelimit`]); outside all of them on the OpenAI-compatible routes only, OpenAI's
//! error shape ([`openai_errors`]). Each is a Layer + Service pair or small glue. Layers may import
//! the router (for the route of a request), NATS and the shared modules; never the adapters,
//! `ops` or the composition root.

pub mod access_log;
pub mod admission;
pub mod auth;
pub mod client_addr;
pub mod cors;
pub mod drain;
pub mod openai_errors;
pub mod panic;
pub mod ratelimit;
pub mod request_id;
