//! Operations: the probes ([`health`]), the admin listener and its guard ([`admin`],
//! [`admin_guard`]), the background janitor ([`janitor`]), logs ([`telemetry`]), `edge keys`
//! ([`keys`]), `edge certs ca|issue` ([`certs`]), the operators' console ([`console`]) and its audit ([`audit`]) and `edge healthcheck` ([`healthcheck`]). The top of the process with the server:
//! ops may import anything below, and nothing below imports ops.

pub mod admin;
pub mod admin_guard;
pub mod audit;
pub mod certs;
pub mod console;
pub mod health;
pub mod healthcheck;
pub mod janitor;
pub mod keys;
pub mod otel;
pub mod telemetry;
