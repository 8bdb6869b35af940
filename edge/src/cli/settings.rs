//! The `serve` options, each declared once: one row gives its flag and environment variable (the
//! clap attributes), its help, and the `Config` field it sets, whose serde name is its TOML key
//! (the path itself, but for `auth.access_ttl` and `auth.refresh_ttl`: `[auth] access_token_ttl`
//! and `refresh_token_ttl`).
//! The `settings!` macro below turns the rows into [`ServeArgs`], into the help's "[default: X]"
//! (read from `Config::default()`, so the help cannot drift from the real default), and into the
//! code that lays the given options over the file. Before it, each setting was written in three
//! or four places, and the help's defaults were copied by hand.
//!
//! A flag has no clap default, only its help shows one: a clap default would always win over the
//! file. The order is defaults < the `--config` file < `EDGE_*` variables < flags (clap puts a
//! flag over its variable).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use clap::Args;
use humantime::parse_duration as duration;

use crate::config::{Config, ConfigError};
use crate::nats::Password;
use crate::nats::signing::KeyList;
use crate::ops::admin_guard::Secret;
use crate::ops::telemetry::LogFormat;
use crate::router::faults;
use crate::store::StoreBackend;
use handlers::content::PackMode;

/// Declares `ServeArgs`. Each row after `config` is a doc comment (the help, by clap's rules),
/// the clap attributes, then `pub name: T => how` where `how` is one of:
///
/// - `set(a.b)` or `set(a.b, f)`: `config.a.b = v` (or `f(v)`); the help shows the default of
///   `a.b`, followed by `+ "text"` if given;
/// - `some(a.b)` or `some(a.b, f)`: `config.a.b = Some(v)` (or `Some(f(v))`);
/// - `with(|config, v| ...)`: anything else.
///
/// After `some` or `with`, a string is the help's default, for what is no plain value.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $Args:ident {
            $(#[doc = $config_doc:literal])*
            #[arg($($config_arg:tt)*)]
            pub config: Option<PathBuf>,
            $(
                $(#[doc = $doc:literal])*
                #[arg($($arg:tt)*)]
                pub $name:ident: $ty:ty
                    => $how:ident $target:tt $(+ $note:literal)? $($text:literal)?;
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $Args {
            $(#[doc = $config_doc])*
            #[arg($($config_arg)*)]
            pub config: Option<PathBuf>,
            $(
                $(#[doc = $doc])*
                #[arg(
                    $($arg)*,
                    help = help(&[$($doc),*], default_text!($how $target $(+ $note)? $($text)?))
                )]
                pub $name: Option<$ty>,
            )*
        }

        impl $Args {
            /// Sets every option that was given on `config`.
            fn apply_to(&self, config: &mut Config) {
                $(
                    if let Some(v) = &self.$name {
                        apply!(config, v.clone(), $how $target);
                    }
                )*
            }
        }
    };
}

/// The help's default text of one row.
macro_rules! default_text {
    (set($($field:ident).+ $(, $map:expr)?) $(+ $note:literal)?) => {
        Some(show(&defaults().$($field).+) $(+ $note)?)
    };
    ($how:ident $target:tt $text:literal) => {
        Some(String::from($text))
    };
    ($how:ident $target:tt) => {
        None
    };
}

/// Sets one given option on `config`.
macro_rules! apply {
    ($config:ident, $v:expr, set($($field:ident).+)) => {
        $config.$($field).+ = $v
    };
    ($config:ident, $v:expr, set($($field:ident).+, $map:expr)) => {
        $config.$($field).+ = convert($v, $map)
    };
    ($config:ident, $v:expr, some($($field:ident).+)) => {
        $config.$($field).+ = Some($v)
    };
    ($config:ident, $v:expr, some($($field:ident).+, $map:expr)) => {
        $config.$($field).+ = Some(convert($v, $map))
    };
    ($config:ident, $v:expr, with($f:expr)) => {
        with($config, $v, $f)
    };
}

settings! {
    /// Options of `serve`. Unset options fall back to the TOML file, then to the defaults.
    #[derive(Debug, Args, Default, Clone)]
    pub struct ServeArgs {
        /// TOML configuration file.
        #[arg(long, env = "EDGE_CONFIG")]
        pub config: Option<PathBuf>,

        /// HTTPS listen address.
        #[arg(long, env = "EDGE_LISTEN")]
        pub listen: SocketAddr => set(listen);
        /// Admin listen address (metrics, route table, config).
        #[arg(long, env = "EDGE_ADMIN_LISTEN")]
        pub admin_listen: SocketAddr => set(admin_listen);
        /// A token the admin listener requires (`Authorization: Bearer <token>`) on everything but
        /// its probes; `edge keys` sends it too.
        #[arg(long, env = "EDGE_ADMIN_TOKEN", hide_env_values = true)]
        pub admin_token: String => some(admin_token, Secret::new) "none, loopback only";
        /// Data directory (store, development certificates).
        #[arg(long, env = "EDGE_DATA_DIR")]
        pub data_dir: PathBuf => set(data_dir);
        /// PEM certificate chain. Without it, a development certificate is made under the data dir.
        #[arg(long, env = "EDGE_TLS_CERT", requires = "tls_key")]
        pub tls_cert: PathBuf => some(tls.cert);
        /// PEM private key of the certificate.
        #[arg(long, env = "EDGE_TLS_KEY", requires = "tls_cert")]
        pub tls_key: PathBuf => some(tls.key);
        /// How often the certificate files are checked for changes; SIGHUP reloads at once.
        #[arg(long, env = "EDGE_TLS_RELOAD_INTERVAL", value_parser = duration)]
        pub tls_reload_interval: Duration => set(tls.reload_interval);
        /// Largest request body in bytes.
        #[arg(long, env = "EDGE_MAX_BODY_BYTES")]
        pub max_body_bytes: usize => set(http.max_body_bytes);
        /// Longest a unary call may take, and the cap on Connect-Timeout-Ms.
        #[arg(long, env = "EDGE_REQUEST_TIMEOUT", value_parser = duration)]
        pub request_timeout: Duration => set(http.request_timeout);
        /// Idle keep-alive and header-read timeout; keep it above the load balancer's idle timeout.
        #[arg(long, env = "EDGE_IDLE_TIMEOUT", value_parser = duration)]
        pub idle_timeout: Duration => set(http.idle_timeout);
        /// Requests served at once before new ones are shed with 503.
        #[arg(long, env = "EDGE_MAX_IN_FLIGHT")]
        pub max_in_flight: usize => set(http.max_in_flight);
        /// Open client connections; more are closed at once.
        #[arg(long, env = "EDGE_MAX_CONNECTIONS")]
        pub max_connections: usize => set(http.max_connections);
        /// On SIGTERM, keep serving (readiness 503) this long so the load balancer stops sending.
        #[arg(long, env = "EDGE_DRAIN_DELAY", value_parser = duration)]
        pub drain_delay: Duration => set(shutdown.drain_delay);
        /// Exit within this long of SIGTERM, drain delay included.
        #[arg(long, env = "EDGE_SHUTDOWN_TIMEOUT", value_parser = duration)]
        pub shutdown_timeout: Duration => set(shutdown.timeout);
        /// Access token lifetime.
        #[arg(long, env = "EDGE_ACCESS_TOKEN_TTL", value_parser = duration)]
        pub access_token_ttl: Duration => set(auth.access_ttl);
        /// Refresh token lifetime.
        #[arg(long, env = "EDGE_REFRESH_TOKEN_TTL", value_parser = duration)]
        pub refresh_token_ttl: Duration => set(auth.refresh_ttl);
        /// Lifetime of a browser's stream ticket, 1s to 1m.
        #[arg(long, env = "EDGE_STREAM_TICKET_TTL", value_parser = duration)]
        pub stream_ticket_ttl: Duration => set(auth.stream_ticket_ttl);
        /// OTLP/HTTP collector for trace spans, e.g. `http://localhost:4318`.
        #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
        pub otel_endpoint: String => some(otel.endpoint) "none, no spans exported";
        /// `service.name` of the spans.
        #[arg(long, env = "OTEL_SERVICE_NAME")]
        pub otel_service_name: String
            => set(otel.service_name) + "; edge-worker for `edge worker`";
        /// Sampler: always_on, always_off, traceidratio, parentbased_always_on,
        /// parentbased_always_off, parentbased_traceidratio.
        #[arg(long, env = "OTEL_TRACES_SAMPLER")]
        pub otel_sampler: String => set(otel.sampler);
        /// The sampler's ratio, 0 to 1.
        #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG")]
        pub otel_sampler_arg: f64 => set(otel.sampler_arg);
        /// Let an HTTP client's traceparent sampled flag decide whether its request is traced
        /// (true/false); its trace id is kept either way.
        #[arg(long, env = "EDGE_OTEL_TRUST_CLIENT_SAMPLED")]
        pub otel_trust_client_sampled: bool
            => set(otel.trust_client_sampled) + ": the edge faces the public";
        /// Log format: json or text.
        #[arg(long, env = "EDGE_LOG_FORMAT")]
        pub log_format: LogFormat => set(log.format);
        /// Log filter, e.g. "info" or "edge=debug,info".
        #[arg(long, env = "EDGE_LOG")]
        pub log: String => set(log.filter);
        /// Log every request (true/false); 5xx answers are always logged.
        #[arg(long, env = "EDGE_ACCESS_LOG")]
        pub access_log: bool => set(log.access);
        /// NATS server URL(s), comma-separated: every node of a cluster, e.g.
        /// `nats://a:4222,nats://b:4222,nats://c:4222`.
        #[arg(long, env = "EDGE_NATS_URL")]
        pub nats: String => some(nats.url, |v: String| crate::nats::NatsUrls::parse(&v));
        /// How long a NATS request waits for a reply.
        #[arg(long, env = "EDGE_NATS_REQUEST_TIMEOUT", value_parser = duration)]
        pub nats_request_timeout: Duration => set(nats.request_timeout);
        /// CA (PEM) that signed the NATS server's certificate; requires TLS to NATS.
        #[arg(long, env = "EDGE_NATS_CA")]
        pub nats_ca: PathBuf => some(nats.ca);
        /// Client certificate (PEM) for mutual TLS to NATS.
        #[arg(long, env = "EDGE_NATS_CERT", requires = "nats_key")]
        pub nats_cert: PathBuf => some(nats.cert);
        /// Client key (PEM) for mutual TLS to NATS.
        #[arg(long, env = "EDGE_NATS_KEY", requires = "nats_cert")]
        pub nats_key: PathBuf => some(nats.key);
        /// NATS credentials file (JWT and nkey).
        #[arg(long, env = "EDGE_NATS_CREDENTIALS")]
        pub nats_credentials: PathBuf => some(nats.credentials);
        /// NATS user name, as `edge nats-auth` names them (`edge`, `worker-<group>`); its replies
        /// arrive on `_INBOX.<user>.>`.
        #[arg(long, env = "EDGE_NATS_USER")]
        pub nats_user: String => some(nats.user) "none";
        /// The NATS user's password.
        #[arg(long, env = "EDGE_NATS_PASSWORD", hide_env_values = true)]
        pub nats_password: String => some(nats.password, Password::new) "none";
        /// Keys that sign requests over NATS and verify those answered, `id:base64-secret` (32+
        /// random bytes), comma-separated: the first signs, any verifies. Give every edge and
        /// worker the same list.
        #[arg(long, env = "EDGE_NATS_SIGNING_KEYS", hide_env_values = true, value_delimiter = ',')]
        pub nats_signing_keys: Vec<String>
            => with(|c, v| c.nats.signing_keys = KeyList::new(non_empty(v))) "none, unsigned";
        /// With NATS, also answer in queue groups for the services this edge hosts, so a worker's
        /// call to one of them finds a responder.
        #[arg(long, env = "EDGE_SERVE_LOCAL")]
        pub serve_local: bool => set(nats.serve_local);
        /// Services served by remote workers over NATS, e.g. `llm,story`.
        #[arg(long, env = "EDGE_REMOTE", value_delimiter = ',')]
        pub remote: Vec<String> => with(|c, v| c.routes.remote = non_empty(v));
        /// Peers whose X-Forwarded-For is believed, as CIDRs (the load balancer's subnets), e.g.
        /// `10.0.0.0/16`.
        #[arg(long, env = "EDGE_TRUSTED_PROXIES", value_delimiter = ',')]
        pub trusted_proxies: Vec<String> => set(http.trusted_proxies);
        /// Browser origins allowed to call the API (CORS), comma-separated, e.g.
        /// `https://play.example.com`; `*` for any.
        #[arg(long, env = "EDGE_CORS_ORIGINS", value_delimiter = ',')]
        pub cors_origins: Vec<String> => set(http.cors_origins, non_empty);
        /// Rate limiting on or off; quotas are set in the config file's [rate_limit].
        #[arg(long, env = "EDGE_RATE_LIMIT")]
        pub rate_limit: bool => set(rate_limit.enabled);
        /// API keys for OpenAI-compatible model providers, `origin=key,...`, e.g.
        /// `https://api.openai.com=sk-...`; a key is sent only to its origin.
        #[arg(long, env = "EDGE_LLM_API_KEYS", hide_env_values = true)]
        pub llm_api_keys: String => with(|c, v| c.llm.add_api_keys(&v)) "none";
        /// Pause between the built-in grammar model's tokens.
        #[arg(long, env = "EDGE_GRAMMAR_TOKEN_INTERVAL", value_parser = duration)]
        pub grammar_token_interval: Duration => set(llm.grammar_token_interval);
        /// Fault drill: hold back a method's replies after its handler finished, `PATH=DURATION`,
        /// comma-separated, e.g. `/aicore.payment.v1.PaymentService/Purchase=300ms`; logged at
        /// start.
        #[arg(long, env = "EDGE_FAULT_DELAY_REPLY", value_delimiter = ',',
              value_parser = faults::parse_delay)]
        pub fault_delay_reply: Vec<(String, Duration)> => set(faults.delay_reply, delays);
        /// Fault drill: fail a method's calls with a status code before its handler runs,
        /// `PATH=CODE`, comma-separated, e.g.
        /// `/aicore.weather.v1.WeatherService/Current=unavailable`; logged at start.
        #[arg(long, env = "EDGE_FAULT_FAIL", value_delimiter = ',',
              value_parser = faults::parse_fail)]
        pub fault_fail: Vec<(String, String)> => set(faults.fail, BTreeMap::from_iter);
        /// Worker registrations lapse unless they heartbeat within this long.
        #[arg(long, env = "EDGE_CAPABILITY_LEASE", value_parser = duration)]
        pub capability_lease: Duration => set(capability.lease);
        /// A replica driving a workflow run owns it this long without writing it; then another
        /// takes over.
        #[arg(long, env = "EDGE_ORCHESTRATION_LEASE", value_parser = duration)]
        pub orchestration_lease: Duration => set(orchestration.lease);
        /// SSE heartbeat: a comment after this much silence.
        #[arg(long, env = "EDGE_SSE_HEARTBEAT", value_parser = duration)]
        pub sse_heartbeat: Duration => set(streams.heartbeat);
        /// Open SSE streams allowed in this process; over it, 503.
        #[arg(long, env = "EDGE_MAX_STREAMS")]
        pub max_streams: usize => set(streams.max_concurrent);
        /// A price catalog of your own (TOML, as handlers/data/payment/catalog.toml).
        #[arg(long, env = "EDGE_PRICE_CATALOG")]
        pub price_catalog: PathBuf => some(content.price_catalog) "the shipped one";
        /// A content pack: a directory laid out as handlers/data/ (quest/quests.toml,
        /// language/<locale>.ftl, ...), merged over the shipped content by id or replacing it.
        #[arg(long, env = "EDGE_CONTENT_PACK")]
        pub content_pack: PathBuf => some(content.pack) "none";
        /// How the content pack is used: extend (each of its files merged over the shipped one
        /// by id) or replace (it is the whole content).
        #[arg(long, env = "EDGE_CONTENT_MODE")]
        pub content_mode: PackMode => set(content.mode);
        /// How long a response is kept for repeats of its Idempotency-Key.
        #[arg(long, env = "EDGE_IDEMPOTENCY_RETENTION", value_parser = duration)]
        pub idempotency_retention: Duration => set(idempotency.retention);
        /// Store backend: redb (one machine) or jetstream (shared through NATS).
        #[arg(long, env = "EDGE_STORE")]
        pub store: StoreBackend => set(store.backend);
        /// JetStream key-value bucket for the jetstream store.
        #[arg(long, env = "EDGE_STORE_BUCKET")]
        pub store_bucket: String => set(store.bucket);
        /// JetStream replicas of the bucket and the event stream when this process creates them:
        /// 3 on a three-node cluster.
        #[arg(long, env = "EDGE_STORE_REPLICAS")]
        pub store_replicas: usize => set(store.replicas);
        /// Subject prefix overrides, e.g. `llm=svc.ai.llm.v1` (comma-separated).
        #[arg(long = "subject", env = "EDGE_SUBJECTS", value_delimiter = ',')]
        pub subjects: Vec<String> => with(add_subjects);
    }
}

impl Config {
    /// Defaults, then the file named by `args.config`, then every option set in `args`.
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        let mut config = match &args.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        args.apply_to(&mut config);
        config.validate()?;
        Ok(config)
    }
}

/// The defaults the help shows, made once.
fn defaults() -> &'static Config {
    static DEFAULTS: LazyLock<Config> = LazyLock::new(Config::default);
    &DEFAULTS
}

/// A row's help as clap makes it from a one-paragraph doc comment (lines trimmed and joined, one
/// trailing period dropped), with " [default: X]" after it.
fn help(doc: &[&str], default: Option<String>) -> String {
    let lines: Vec<&str> = doc
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let text = lines.join(" ");
    let text = match text.strip_suffix('.') {
        Some(t) if !t.ends_with('.') => t,
        _ => &text,
    };
    match default {
        Some(d) => format!("{text} [default: {d}]"),
        None => text.to_owned(),
    }
}

/// `f(v)`, with the closure's argument typed by `v` (a closure alone would not infer it).
fn convert<T, U>(v: T, f: impl FnOnce(T) -> U) -> U {
    f(v)
}

/// `f(config, v)`, typed as `convert` is.
fn with<T>(config: &mut Config, v: T, f: impl FnOnce(&mut Config, T)) {
    f(config, v)
}

/// A list without empty items: an empty variable (`EDGE_REMOTE=`) means none.
fn non_empty(v: Vec<String>) -> Vec<String> {
    v.into_iter().filter(|s| !s.is_empty()).collect()
}

/// `--fault-delay-reply` pairs as the config keeps them.
fn delays(v: Vec<(String, Duration)>) -> BTreeMap<String, humantime_serde::Serde<Duration>> {
    v.into_iter().map(|(p, d)| (p, d.into())).collect()
}

/// `--subject svc=prefix`: a pair without `=` is kept with an empty prefix, so validation
/// reports it.
fn add_subjects(config: &mut Config, pairs: Vec<String>) {
    for pair in pairs {
        let (svc, prefix) = match pair.split_once('=') {
            Some((svc, prefix)) => (svc.trim().to_owned(), prefix.trim().to_owned()),
            None => (pair, String::new()),
        };
        config.routes.subjects.insert(svc, prefix);
    }
}

/// How a default reads in the help.
trait Show {
    fn show(&self) -> String;
}

fn show(v: &impl Show) -> String {
    v.show()
}

macro_rules! show_as_displayed {
    ($($t:ty),*) => {
        $(impl Show for $t {
            fn show(&self) -> String {
                self.to_string()
            }
        })*
    };
}

show_as_displayed!(SocketAddr, usize, u32, u64, f64, bool, String);

impl Show for PathBuf {
    fn show(&self) -> String {
        self.display().to_string()
    }
}

/// As it is written in the config file.
macro_rules! show_as_serialized {
    ($($t:ty),*) => {
        $(impl Show for $t {
            fn show(&self) -> String {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(s)) => s,
                    other => format!("{other:?}"),
                }
            }
        })*
    };
}

show_as_serialized!(LogFormat, StoreBackend, PackMode);

/// In the largest unit that divides it ("75s", "15m", "24h"), days only past one ("30days").
impl Show for Duration {
    fn show(&self) -> String {
        const DAY: u64 = 24 * 3600;
        let s = self.as_secs();
        if self.subsec_nanos() != 0 || s == 0 {
            humantime::format_duration(*self).to_string()
        } else if s > DAY && s.is_multiple_of(DAY) {
            format!("{}days", s / DAY)
        } else if s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        }
    }
}

/// Empty lists read "none".
impl Show for Vec<String> {
    fn show(&self) -> String {
        if self.is_empty() {
            "none".into()
        } else {
            self.join(",")
        }
    }
}

impl<V: Show> Show for BTreeMap<String, V> {
    fn show(&self) -> String {
        if self.is_empty() {
            return "none".into();
        }
        let pairs: Vec<_> = self
            .iter()
            .map(|(k, v)| format!("{k}={}", v.show()))
            .collect();
        pairs.join(",")
    }
}

impl Show for humantime_serde::Serde<Duration> {
    fn show(&self) -> String {
        (**self).show()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_help_always_wrote_them() {
        let s = |secs| Duration::from_secs(secs).show();
        assert_eq!(s(0), "0s");
        assert_eq!(s(75), "75s");
        assert_eq!(s(15 * 60), "15m");
        assert_eq!(s(24 * 3600), "24h");
        assert_eq!(s(30 * 24 * 3600), "30days");
        assert_eq!(Duration::from_millis(300).show(), "300ms");
    }

    #[test]
    fn help_follows_clap_doc_rules() {
        assert_eq!(help(&[" Size.", ""], None), "Size");
        assert_eq!(
            help(&[" Two", " lines."], Some("1".into())),
            "Two lines [default: 1]"
        );
        assert_eq!(help(&[" Wait..."], None), "Wait...");
    }

    #[test]
    fn given_options_win_over_the_file_and_others_keep_it() {
        let mut c = Config::default();
        c.http.max_in_flight = 7;
        let args = ServeArgs {
            listen: Some("127.0.0.1:1".parse().unwrap()),
            access_token_ttl: Some(Duration::from_secs(60)),
            cors_origins: Some(vec![String::new(), "https://a.example".into()]),
            subjects: Some(vec!["llm=svc.llm".into(), "bad".into()]),
            admin_token: Some("t".into()),
            ..ServeArgs::default()
        };
        args.apply_to(&mut c);
        assert_eq!(c.listen.port(), 1);
        assert_eq!(c.http.max_in_flight, 7);
        assert_eq!(c.auth.access_ttl, Duration::from_secs(60));
        assert_eq!(c.http.cors_origins, ["https://a.example"]);
        assert_eq!(c.routes.subjects["llm"], "svc.llm");
        assert_eq!(c.routes.subjects["bad"], "");
        assert!(c.admin_token.is_some());
    }
}
