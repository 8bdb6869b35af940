//! The effective configuration: embedded defaults, under a TOML file, under `EDGE_*` variables and
//! flags (clap gives those two their order).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::events::EventsConfig;
use crate::http::sse::StreamsConfig;
use crate::http::tls::TlsConfig;
use crate::http::{HttpConfig, ShutdownConfig};
use crate::layers::admission::BulkheadsConfig;
use crate::layers::client_addr::TrustedProxies;
use crate::layers::ratelimit::RateLimitConfig;
use crate::nats::{NatsConfig, RoutesConfig};
use crate::ops::admin_guard::Secret;
use crate::ops::telemetry::LogConfig;
use crate::router::idempotency::IdempotencyConfig;
use crate::router::llm::LlmConfig;
use crate::store::{StoreBackend, StoreConfig};

/// Everything `serve` needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTPS listen address.
    pub listen: SocketAddr,
    /// Admin listen address (loopback by default).
    pub admin_listen: SocketAddr,
    /// Token the admin listener requires, if set. Never printed (like `llm.api_keys`), so a
    /// printed config copied into a file never carries a placeholder for it.
    #[serde(skip_serializing)]
    pub admin_token: Option<Secret>,
    /// Data directory: the embedded store and development certificates.
    pub data_dir: PathBuf,
    /// TLS.
    pub tls: TlsConfig,
    /// HTTP limits and timeouts.
    pub http: HttpConfig,
    /// Drain and shutdown.
    pub shutdown: ShutdownConfig,
    /// Tokens and login limits.
    pub auth: handlers::services::auth::AuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// Trace export (OTLP); off without an endpoint.
    pub otel: crate::ops::otel::OtelConfig,
    /// The NATS connection (for remote services, workers and the JetStream store).
    pub nats: NatsConfig,
    /// Which services go to NATS, and on which subjects.
    pub routes: RoutesConfig,
    /// Where state lives.
    pub store: StoreConfig,
    /// Per-class rate limits.
    pub rate_limit: RateLimitConfig,
    /// Idempotency-Key records.
    pub idempotency: IdempotencyConfig,
    /// The operators' console on the admin listener: sessions and logins.
    pub console: crate::ops::console::settings::ConsoleConfig,
    /// Per-service concurrency limits and priorities.
    pub bulkheads: BulkheadsConfig,
    /// SSE streams: heartbeat, limits.
    pub streams: StreamsConfig,
    /// LLM providers and configured models.
    pub llm: LlmConfig,
    /// The event bus's retention and JetStream stream.
    pub events: EventsConfig,
    /// Game content that services load from data files.
    pub content: handlers::content::ContentPaths,
    /// Per-player state quotas.
    pub state: StateConfig,
    /// How the game clock starts, the first time any replica reads it.
    pub time: handlers::services::time::ClockSettings,
    /// The weather's seed.
    pub weather: handlers::services::weather::WeatherSettings,
    /// Fault drills (off by default).
    pub faults: crate::router::faults::FaultsConfig,
    /// The worker registry's leases.
    pub capability: handlers::services::capability::CapabilitySettings,
    /// The workflow engine's run leases.
    pub orchestration: handlers::services::orchestration::OrchestrationSettings,
}

/// `[state]`: what one player may keep in the state service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// Largest value, as stored JSON, in bytes (413 over it).
    pub max_value_bytes: usize,
    /// Most keys per player (429 `resource_exhausted` over it).
    pub max_keys_per_player: u64,
    /// Most bytes (keys and values) per player (429 `resource_exhausted` over it).
    pub max_bytes_per_player: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        let d = handlers::services::state::StateLimits::default();
        StateConfig {
            max_value_bytes: d.max_value_bytes,
            max_keys_per_player: d.max_keys,
            max_bytes_per_player: d.max_bytes,
        }
    }
}

impl StateConfig {
    /// The handlers' limits.
    pub fn limits(&self) -> handlers::services::state::StateLimits {
        handlers::services::state::StateLimits {
            max_value_bytes: self.max_value_bytes,
            max_keys: self.max_keys_per_player,
            max_bytes: self.max_bytes_per_player,
        }
    }
}

/// A subject prefix: dot-separated tokens, no wildcards or spaces.
fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '*' | '>'))
        })
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9901)),
            admin_token: None,
            console: crate::ops::console::settings::ConsoleConfig::default(),
            data_dir: PathBuf::from("./data"),
            tls: TlsConfig::default(),
            http: HttpConfig::default(),
            shutdown: ShutdownConfig::default(),
            auth: handlers::services::auth::AuthConfig::default(),
            log: LogConfig::default(),
            otel: crate::ops::otel::OtelConfig::default(),
            nats: NatsConfig::default(),
            routes: RoutesConfig::default(),
            store: StoreConfig::default(),
            rate_limit: RateLimitConfig::default(),
            idempotency: IdempotencyConfig::default(),
            bulkheads: BulkheadsConfig::default(),
            streams: StreamsConfig::default(),
            llm: LlmConfig::default(),
            events: EventsConfig::default(),
            content: handlers::content::ContentPaths::default(),
            state: StateConfig::default(),
            time: handlers::services::time::ClockSettings::default(),
            weather: handlers::services::weather::WeatherSettings::default(),
            faults: crate::router::faults::FaultsConfig::default(),
            capability: handlers::services::capability::CapabilitySettings::default(),
            orchestration: handlers::services::orchestration::OrchestrationSettings::default(),
        }
    }
}

/// A configuration that cannot be used, said plainly.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// The file's settings over the defaults (`Config::load` in `cli/settings.rs` lays the
    /// command line over them).
    pub(crate) fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Checks ranges and consistency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return bad("tls.cert and tls.key must be set together".into());
        }
        if let Err(e) = self.otel.validate() {
            return bad(e);
        }
        let console = &self.console;
        if console.idle_timeout < Duration::from_secs(1) || console.max_age < console.idle_timeout {
            return bad("console.idle_timeout must be at least 1s and console.max_age at least the idle timeout".into());
        }
        if console.logins_per_minute == 0 {
            return bad("console.logins_per_minute must be at least 1".into());
        }
        if console.audit_retention < Duration::from_secs(24 * 60 * 60) {
            return bad("console.audit_retention must be at least 1d".into());
        }
        for p in [&self.tls.cert, &self.tls.key].into_iter().flatten() {
            if !p.is_file() {
                return bad(format!("TLS file {} does not exist", p.display()));
            }
        }
        self.time.validate().map_err(ConfigError::Invalid)?;
        self.faults.validate().map_err(ConfigError::Invalid)?;
        self.capability.validate().map_err(ConfigError::Invalid)?;
        crate::layers::cors::layer(&self.http.cors_origins).map_err(ConfigError::Invalid)?;
        self.orchestration
            .validate()
            .map_err(ConfigError::Invalid)?;
        if !(1..=64 * 1024 * 1024).contains(&self.http.max_body_bytes) {
            return bad("http.max_body_bytes must be 1 byte to 64 MiB".into());
        }
        if self.http.max_in_flight == 0 || self.http.max_connections == 0 {
            return bad("http.max_in_flight and http.max_connections must be at least 1".into());
        }
        if !(8..=1024).contains(&self.http.max_headers)
            || !(8 * 1024..=1024 * 1024).contains(&self.http.max_header_bytes)
        {
            return bad(
                "http.max_headers must be 8 to 1024 and http.max_header_bytes 8 KiB to 1 MiB"
                    .into(),
            );
        }
        self.bulkheads.validate().map_err(ConfigError::Invalid)?;
        if self.http.request_timeout.is_zero() || self.http.idle_timeout.is_zero() {
            return bad("timeouts must be above zero".into());
        }
        if self.shutdown.drain_delay >= self.shutdown.timeout {
            return bad(format!(
                "shutdown.drain_delay ({}) must be shorter than shutdown.timeout ({}) to leave time to finish requests",
                humantime::format_duration(self.shutdown.drain_delay),
                humantime::format_duration(self.shutdown.timeout)
            ));
        }
        if self.auth.access_ttl < Duration::from_secs(1)
            || self.auth.refresh_ttl < self.auth.access_ttl
        {
            return bad(
                "auth.access_token_ttl must be at least 1s and at most auth.refresh_token_ttl"
                    .into(),
            );
        }
        if !(Duration::from_secs(1)..=handlers::services::auth::MAX_TICKET_TTL)
            .contains(&self.auth.stream_ticket_ttl)
        {
            return bad(
                "auth.stream_ticket_ttl must be 1s to 1m: a ticket travels in a URL".into(),
            );
        }
        if self.state.max_value_bytes == 0
            || self.state.max_keys_per_player == 0
            || self.state.max_bytes_per_player == 0
        {
            return bad("state.max_* must be at least 1".into());
        }
        if self.auth.login_failures_per_address == 0
            || self.auth.login_failures_per_account == 0
            || self.auth.login_failures_per_device == 0
        {
            return bad("auth.login_failures_per_* must be at least 1".into());
        }
        if self.listen == self.admin_listen && self.listen.port() != 0 {
            return bad("listen and admin_listen must differ".into());
        }
        TrustedProxies::parse(&self.http.trusted_proxies).map_err(ConfigError::Invalid)?;
        self.rate_limit.validate().map_err(ConfigError::Invalid)?;
        self.streams.validate().map_err(ConfigError::Invalid)?;
        self.events.validate().map_err(ConfigError::Invalid)?;
        self.llm.validate().map_err(ConfigError::Invalid)?;
        if self.idempotency.retention < Duration::from_secs(60)
            || self.idempotency.prune_every.is_zero()
        {
            return bad(
                "idempotency.retention must be at least 1m and idempotency.prune_every above zero"
                    .into(),
            );
        }
        self.validate_nats()
    }

    /// Checks the NATS and routing settings (shared with `edge worker`).
    pub fn validate_nats(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        for svc in self.routes.remote.iter().chain(self.routes.subjects.keys()) {
            if proto::ServiceDesc::by_short(svc).is_none() {
                let known: Vec<_> = proto::SERVICES.iter().map(|s| s.short).collect();
                return bad(format!(
                    "unknown service {svc:?}; known: {}",
                    known.join(", ")
                ));
            }
        }
        for (svc, prefix) in &self.routes.subjects {
            if !valid_prefix(prefix) {
                return bad(format!(
                    "routes.subjects.{svc} = {prefix:?} is not a subject prefix (dot-separated tokens, no wildcards); on the command line use svc=prefix"
                ));
            }
        }
        if self.store.backend == StoreBackend::Jetstream && self.nats.url.is_none() {
            return bad(
                "store.backend = jetstream needs a NATS URL (--nats / EDGE_NATS_URL)".into(),
            );
        }
        if let Some(urls) = &self.nats.url {
            urls.servers().map_err(ConfigError::Invalid)?;
        }
        let bucket_ok = |b: &str| {
            !b.is_empty()
                && b.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !bucket_ok(&self.store.bucket) || !(1..=5).contains(&self.store.replicas) {
            return bad(
                "store.bucket must be letters, digits, '_' or '-', and store.replicas 1 to 5"
                    .into(),
            );
        }
        if !self.routes.remote.is_empty() && self.nats.url.is_none() {
            return bad(format!(
                "services {} are routed to NATS but no NATS URL is set (--nats / EDGE_NATS_URL)",
                self.routes.remote.join(",")
            ));
        }
        if self.nats.url.is_some()
            && (self.nats.request_timeout.is_zero()
                || self.nats.request_timeout >= self.http.request_timeout)
        {
            return bad(format!(
                "nats.request_timeout ({}) must be above zero and below http.request_timeout ({}) so the edge answers 504 before the client gives up",
                humantime::format_duration(self.nats.request_timeout),
                humantime::format_duration(self.http.request_timeout)
            ));
        }
        if self.nats.cert.is_some() != self.nats.key.is_some() {
            return bad("nats.cert and nats.key must be set together".into());
        }
        if let Some(user) = &self.nats.user
            && !crate::nats::valid_user(user)
        {
            return bad(format!(
                "nats.user {user:?} must be 1 to 64 letters, digits, '-' or '_' (it names the user's inboxes)"
            ));
        }
        if self.nats.password.is_some() && self.nats.user.is_none() {
            return bad("nats.password needs nats.user (--nats-user / EDGE_NATS_USER)".into());
        }
        crate::nats::signing::SigningKeys::parse(&self.nats.signing_keys)
            .map_err(ConfigError::Invalid)?;
        for p in [
            &self.nats.ca,
            &self.nats.cert,
            &self.nats.key,
            &self.nats.credentials,
        ]
        .into_iter()
        .flatten()
        {
            if !p.is_file() {
                return bad(format!("NATS file {} does not exist", p.display()));
            }
        }
        Ok(())
    }

    /// The configuration as TOML, for `edge config check` and the admin page. Holds no secrets.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// What a deployment must agree with (ports, probe paths, timeouts in seconds), for
    /// `edge config defaults --json`: the Terraform checks read it, so a timing changed here
    /// fails them until the load balancer and task settings follow.
    pub fn deployment_facts(&self) -> serde_json::Value {
        let s = |d: Duration| d.as_secs_f64();
        serde_json::json!({
            "listen_port": self.listen.port(),
            "admin_port": self.admin_listen.port(),
            "probes": {
                "liveness_path": "/healthz",
                "readiness_path": "/readyz",
                "served_on": "listen_port and admin_port",
            },
            "healthcheck_command": ["edge", "healthcheck"],
            "keep_alive_timeout_s": s(self.http.idle_timeout),
            "header_read_timeout_s": s(self.http.idle_timeout),
            "request_timeout_s": s(self.http.request_timeout),
            "tls_handshake_timeout_s": s(self.tls.handshake_timeout),
            "drain_delay_s": s(self.shutdown.drain_delay),
            "shutdown_timeout_s": s(self.shutdown.timeout),
            "sse_heartbeat_s": s(self.streams.heartbeat),
            "env": {
                "drain_delay": "EDGE_DRAIN_DELAY",
                "shutdown_timeout": "EDGE_SHUTDOWN_TIMEOUT",
                "idle_timeout": "EDGE_IDLE_TIMEOUT",
                "sse_heartbeat": "EDGE_SSE_HEARTBEAT",
                "listen": "EDGE_LISTEN",
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ServeArgs;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = Config::default();
        c.validate().unwrap();
        let text = c.to_toml().unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn the_deployment_facts_are_the_defaults_the_server_runs_with() {
        let c = Config::default();
        let f = c.deployment_facts();
        assert_eq!(f["listen_port"], c.listen.port());
        assert_eq!(f["probes"]["readiness_path"], "/readyz");
        let secs = |k: &str| f[k].as_f64().unwrap();
        // The order the load balancer's settings are chosen by.
        assert!(secs("sse_heartbeat_s") < secs("keep_alive_timeout_s"));
        assert!(secs("drain_delay_s") < secs("shutdown_timeout_s"));
    }

    #[test]
    fn access_log_is_off_by_default() {
        assert!(!Config::default().log.access);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1000\"\n[shutdown]\ndrain_delay = \"2s\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.listen.port(), 1000);
        assert_eq!(c.shutdown.drain_delay, Duration::from_secs(2));
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:2000".parse().unwrap()),
            ..ServeArgs::default()
        };
        assert_eq!(Config::load(&args).unwrap().listen.port(), 2000);
    }

    #[test]
    fn routes_and_subjects() {
        let args = ServeArgs {
            nats: Some("nats://127.0.0.1:4222".into()),
            remote: Some(vec!["llm".into(), "state".into()]),
            subjects: Some(vec!["llm=svc.ai.llm.v1".into()]),
            ..ServeArgs::default()
        };
        let c = Config::load(&args).unwrap();
        let infer = proto::method_by_path("/aicore.llm.v1.LlmService/Infer").unwrap();
        assert_eq!(c.routes.subject(infer), "svc.ai.llm.v1.infer");
        let get = proto::method_by_path("/aicore.payment.v1.PaymentService/GetBalance").unwrap();
        assert_eq!(c.routes.subject(get), "svc.payment.v1.get_balance");
        let no_url = ServeArgs {
            remote: Some(vec!["llm".into()]),
            ..ServeArgs::default()
        };
        assert!(
            Config::load(&no_url)
                .unwrap_err()
                .to_string()
                .contains("NATS URL")
        );
        let unknown = ServeArgs {
            nats: args.nats.clone(),
            remote: Some(vec!["nope".into()]),
            ..ServeArgs::default()
        };
        assert!(
            Config::load(&unknown)
                .unwrap_err()
                .to_string()
                .contains("unknown service")
        );
        let wild = ServeArgs {
            subjects: Some(vec!["llm=svc.*".into()]),
            ..ServeArgs::default()
        };
        assert!(Config::load(&wild).is_err());
    }

    #[test]
    fn errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, "listn = \"x\"\n").unwrap();
        let err = Config::load(&ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
        let err = Config::load(&ServeArgs {
            config: Some(dir.path().join("missing.toml")),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("missing.toml"), "{err}");
        let args = ServeArgs {
            drain_delay: Some(Duration::from_secs(60)),
            ..ServeArgs::default()
        };
        assert!(
            Config::load(&args)
                .unwrap_err()
                .to_string()
                .contains("drain_delay")
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_text_parses_or_is_refused(text in "[ -~\n]{0,400}") {
                if let Ok(c) = toml::from_str::<Config>(&text) {
                    let _ = c.validate();
                }
            }

            #[test]
            fn any_key_and_value_parse_or_are_refused(
                section in "(http|auth|log|streams|rate_limit|events|nats|store|state)",
                key in "[a-z_]{1,24}",
                value in "(\"[ -~&&[^\"\\\\]]{0,20}\"|-?[0-9]{1,20}|true|false|\\[\\])",
            ) {
                let text = format!("[{section}]\n{key} = {value}\n");
                if let Ok(c) = toml::from_str::<Config>(&text) {
                    let _ = c.validate();
                }
            }

            #[test]
            fn settings_round_trip(
                body in 1usize..64 << 20,
                secs in 1u64..3600,
                in_flight in 1usize..100_000,
                ticket in 1u64..=60,
                origins in proptest::collection::vec("https://[a-z]{1,12}\\.example\\.com", 0..3),
            ) {
                let mut c = Config::default();
                c.http.max_body_bytes = body;
                c.http.request_timeout = Duration::from_secs(secs);
                c.http.max_in_flight = in_flight;
                c.http.cors_origins = origins;
                c.auth.stream_ticket_ttl = Duration::from_secs(ticket);
                let back: Config = toml::from_str(&c.to_toml().unwrap()).unwrap();
                prop_assert_eq!(back, c);
            }
        }
    }
}
