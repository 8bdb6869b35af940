//! The command line. Every `serve` flag also reads an `EDGE_*` environment variable; both override
//! the TOML file given with `--config`, which overrides the embedded defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Writes a command's output to stdout. A reader that stopped early (`edge openapi | head`) is
/// no error: Rust ignores SIGPIPE, so `println!` would panic there instead.
pub fn print_out(text: impl AsRef<[u8]>) -> Result<(), crate::BoxError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_ref()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Edge: the HTTPS/SSE front door of the game's AI backend.
#[derive(Debug, Parser)]
#[command(name = "edge", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `serve` (when no subcommand is given).
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the catalog over HTTPS (the default).
    Serve(ServeArgs),
    /// Serve services to the edge over NATS (queue groups, NATS micro services).
    Worker(WorkerArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Probe a running server's liveness (exit 0 healthy, 1 not): for container health checks.
    Healthcheck(HealthcheckArgs),
    /// Certificate tooling.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Service API keys for game servers and tools.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write the OpenAPI 3.1 description of the public API (the one served at /openapi.json).
    Openapi(OpenapiArgs),
}

/// `edge openapi`
#[derive(Debug, Args)]
pub struct OpenapiArgs {
    /// Write here instead of stdout.
    #[arg(long, env = "EDGE_OPENAPI_OUT")]
    pub out: Option<std::path::PathBuf>,
}

/// `edge keys ...`: on the configured store, or through the running edge that holds it.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once, alone on the last line of stdout.
    Create(KeysCreateArgs),
    /// List keys (names, prefixes, scopes; never secrets).
    List(KeysListArgs),
    /// Revoke a key by name.
    Revoke(KeysRevokeArgs),
}

/// `edge keys create`
#[derive(Debug, Args)]
pub struct KeysCreateArgs {
    /// A unique name, e.g. `game-server-eu`.
    #[arg(long, env = "EDGE_KEY_NAME")]
    pub name: String,
    /// What the key may call: `*` (every non-admin method), a service (`payment`) or a method
    /// (`payment.Credit`; admin methods need this form). Repeat or comma-separate.
    #[arg(
        long = "scope",
        env = "EDGE_KEY_SCOPES",
        value_delimiter = ',',
        required = true
    )]
    pub scopes: Vec<String>,
    /// Store and NATS options, as for `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// `edge keys list`
#[derive(Debug, Args)]
pub struct KeysListArgs {
    /// Store and NATS options, as for `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// `edge keys revoke`
#[derive(Debug, Args)]
pub struct KeysRevokeArgs {
    /// The key's name.
    #[arg(long, env = "EDGE_KEY_NAME")]
    pub name: String,
    /// Store and NATS options, as for `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// `edge config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (file, environment and flags merged) or a clear error.
    Check(Box<ServeArgs>),
    /// Print the embedded defaults: as TOML, or with `--json` the facts a deployment must agree
    /// with (ports, probe paths, keep-alive, drain and shutdown timeouts, SSE heartbeat).
    Defaults(DefaultsArgs),
}

/// `edge config defaults`
#[derive(Debug, Args)]
pub struct DefaultsArgs {
    /// The deployment facts as JSON, in seconds.
    #[arg(long)]
    pub json: bool,
}

/// `edge certs ...`
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a development CA and a server certificate signed by it (ca.pem, cert.pem, key.pem).
    Dev(CertsDevArgs),
    /// Write a private CA (ca.pem, ca-key.pem) for NATS or the load balancer's hop to the edge.
    Ca(CertsCaArgs),
    /// Issue a certificate signed by a private CA from `edge certs ca`.
    Issue(CertsIssueArgs),
}

/// `edge certs ca`
#[derive(Debug, Args)]
pub struct CertsCaArgs {
    /// Directory to write into (created if missing; existing files are never overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// The CA's common name, e.g. "Studio NATS CA".
    #[arg(long)]
    pub name: String,
    /// Years the CA is valid, 1 to 20.
    #[arg(long, default_value_t = 10)]
    pub years: u32,
}

/// `edge certs issue`
#[derive(Debug, Args)]
pub struct CertsIssueArgs {
    /// The directory holding ca.pem and ca-key.pem.
    #[arg(long)]
    pub ca: PathBuf,
    /// Directory to write `<name>.pem` and `<name>-key.pem` into.
    #[arg(long)]
    pub out: PathBuf,
    /// DNS names or IP addresses; the first is the common name. Repeat or comma-separate.
    #[arg(long = "name", value_delimiter = ',', required = true)]
    pub names: Vec<String>,
    /// Also for clients (a NATS node on its routes; mutual TLS).
    #[arg(long)]
    pub client: bool,
    /// Days it is valid, 1 to 825.
    #[arg(long, default_value_t = 397)]
    pub days: u32,
}

/// `edge certs dev`
#[derive(Debug, Args)]
pub struct CertsDevArgs {
    /// Directory to write into (created if missing).
    #[arg(long, env = "EDGE_CERTS_OUT", default_value = "certs/dev")]
    pub out: PathBuf,
    /// Extra DNS names or IP addresses for the server certificate (localhost, 127.0.0.1 and ::1
    /// are always included).
    #[arg(long = "san", env = "EDGE_CERTS_SAN", value_delimiter = ',')]
    pub sans: Vec<String>,
}

/// `edge healthcheck`
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The address to probe; by default the configured listen port on loopback.
    #[arg(long, env = "EDGE_HEALTHCHECK_ADDR")]
    pub addr: Option<SocketAddr>,
    /// Path to probe.
    #[arg(long, env = "EDGE_HEALTHCHECK_PATH", default_value = "/healthz")]
    pub path: String,
    /// Probe the admin listener (plain HTTP, the configured admin port on loopback) instead of
    /// HTTPS: for `edge worker`, which serves no HTTPS.
    #[arg(long, env = "EDGE_HEALTHCHECK_ADMIN")]
    pub admin: bool,
    /// Give up after this long.
    #[arg(long, env = "EDGE_HEALTHCHECK_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// The server's options, to find its port.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Options of `serve`. Unset options fall back to the TOML file, then to the defaults.
#[derive(Debug, Args, Default, Clone)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "EDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTPS listen address [default: 0.0.0.0:8443].
    #[arg(long, env = "EDGE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Admin listen address (metrics, route table, config) [default: 127.0.0.1:9901].
    #[arg(long, env = "EDGE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// A token the admin listener requires (`Authorization: Bearer <token>`) on everything but
    /// its probes; `edge keys` sends it too [default: none, loopback only].
    #[arg(long, env = "EDGE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Data directory (store, development certificates) [default: ./data].
    #[arg(long, env = "EDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PEM certificate chain. Without it, a development certificate is made under the data dir.
    #[arg(long, env = "EDGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long, env = "EDGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How often the certificate files are checked for changes; SIGHUP reloads at once
    /// [default: 10s].
    #[arg(long, env = "EDGE_TLS_RELOAD_INTERVAL", value_parser = humantime::parse_duration)]
    pub tls_reload_interval: Option<Duration>,
    /// Largest request body in bytes [default: 262144].
    #[arg(long, env = "EDGE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Longest a unary call may take, and the cap on Connect-Timeout-Ms [default: 30s].
    #[arg(long, env = "EDGE_REQUEST_TIMEOUT", value_parser = humantime::parse_duration)]
    pub request_timeout: Option<Duration>,
    /// Idle keep-alive and header-read timeout; keep it above the load balancer's idle timeout
    /// [default: 75s].
    #[arg(long, env = "EDGE_IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Requests served at once before new ones are shed with 503 [default: 1024].
    #[arg(long, env = "EDGE_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// Open client connections; more are closed at once [default: 10000].
    #[arg(long, env = "EDGE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// On SIGTERM, keep serving (readiness 503) this long so the load balancer stops sending
    /// [default: 5s].
    #[arg(long, env = "EDGE_DRAIN_DELAY", value_parser = humantime::parse_duration)]
    pub drain_delay: Option<Duration>,
    /// Exit within this long of SIGTERM, drain delay included [default: 30s].
    #[arg(long, env = "EDGE_SHUTDOWN_TIMEOUT", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Option<Duration>,
    /// Access token lifetime [default: 15m].
    #[arg(long, env = "EDGE_ACCESS_TOKEN_TTL", value_parser = humantime::parse_duration)]
    pub access_token_ttl: Option<Duration>,
    /// Refresh token lifetime [default: 30days].
    #[arg(long, env = "EDGE_REFRESH_TOKEN_TTL", value_parser = humantime::parse_duration)]
    pub refresh_token_ttl: Option<Duration>,
    /// Lifetime of a browser's stream ticket, 1s to 1m [default: 30s].
    #[arg(long, env = "EDGE_STREAM_TICKET_TTL", value_parser = humantime::parse_duration)]
    pub stream_ticket_ttl: Option<Duration>,
    /// OTLP/HTTP collector for trace spans, e.g. `http://localhost:4318` [default: none, no
    /// spans exported].
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_endpoint: Option<String>,
    /// `service.name` of the spans [default: edge; edge-worker for `edge worker`].
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,
    /// Sampler: always_on, always_off, traceidratio, parentbased_always_on,
    /// parentbased_always_off, parentbased_traceidratio [default: parentbased_always_on].
    #[arg(long, env = "OTEL_TRACES_SAMPLER")]
    pub otel_sampler: Option<String>,
    /// The sampler's ratio, 0 to 1 [default: 1].
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG")]
    pub otel_sampler_arg: Option<f64>,
    /// Let an HTTP client's traceparent sampled flag decide whether its request is traced
    /// (true/false); its trace id is kept either way [default: false: the edge faces the public].
    #[arg(long, env = "EDGE_OTEL_TRUST_CLIENT_SAMPLED")]
    pub otel_trust_client_sampled: Option<bool>,
    /// Log format: json or text [default: json].
    #[arg(long, env = "EDGE_LOG_FORMAT")]
    pub log_format: Option<crate::ops::telemetry::LogFormat>,
    /// Log filter, e.g. "info" or "edge=debug,info" [default: info,async_nats=warn].
    #[arg(long, env = "EDGE_LOG")]
    pub log: Option<String>,
    /// Log every request (true/false); 5xx answers are always logged [default: false].
    #[arg(long, env = "EDGE_ACCESS_LOG")]
    pub access_log: Option<bool>,
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "EDGE_NATS_URL")]
    pub nats: Option<String>,
    /// How long a NATS request waits for a reply [default: 20s].
    #[arg(long, env = "EDGE_NATS_REQUEST_TIMEOUT", value_parser = humantime::parse_duration)]
    pub nats_request_timeout: Option<Duration>,
    /// CA (PEM) that signed the NATS server's certificate; requires TLS to NATS.
    #[arg(long, env = "EDGE_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS to NATS.
    #[arg(long, env = "EDGE_NATS_CERT", requires = "nats_key")]
    pub nats_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS to NATS.
    #[arg(long, env = "EDGE_NATS_KEY", requires = "nats_cert")]
    pub nats_key: Option<PathBuf>,
    /// NATS credentials file (JWT and nkey).
    #[arg(long, env = "EDGE_NATS_CREDENTIALS")]
    pub nats_credentials: Option<PathBuf>,
    /// With NATS, also answer in queue groups for the services this edge hosts, so a worker's
    /// call to one of them finds a responder [default: true].
    #[arg(long, env = "EDGE_SERVE_LOCAL")]
    pub serve_local: Option<bool>,
    /// Services served by remote workers over NATS, e.g. `llm,story`.
    #[arg(long, env = "EDGE_REMOTE", value_delimiter = ',')]
    pub remote: Option<Vec<String>>,
    /// Peers whose X-Forwarded-For is believed, as CIDRs (the load balancer's subnets), e.g.
    /// `10.0.0.0/16` [default: none].
    #[arg(long, env = "EDGE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Browser origins allowed to call the API (CORS), comma-separated, e.g.
    /// `https://play.example.com`; `*` for any [default: none].
    #[arg(long, env = "EDGE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// Rate limiting on or off; quotas are set in the config file's [rate_limit] [default: true].
    #[arg(long, env = "EDGE_RATE_LIMIT")]
    pub rate_limit: Option<bool>,
    /// API keys for OpenAI-compatible model providers, `origin=key,...`, e.g.
    /// `https://api.openai.com=sk-...`; a key is sent only to its origin [default: none].
    #[arg(long, env = "EDGE_LLM_API_KEYS", hide_env_values = true)]
    pub llm_api_keys: Option<String>,
    /// Pause between the built-in grammar model's tokens [default: 0s].
    #[arg(long, env = "EDGE_GRAMMAR_TOKEN_INTERVAL", value_parser = humantime::parse_duration)]
    pub grammar_token_interval: Option<Duration>,
    /// Fault drill: hold back a method's replies after its handler finished, `PATH=DURATION`,
    /// comma-separated, e.g. `/aicore.payment.v1.PaymentService/Purchase=300ms`; logged at start
    /// [default: none].
    #[arg(long, env = "EDGE_FAULT_DELAY_REPLY", value_delimiter = ',',
          value_parser = crate::router::faults::parse_delay)]
    pub fault_delay_reply: Option<Vec<(String, Duration)>>,
    /// Fault drill: fail a method's calls with a status code before its handler runs,
    /// `PATH=CODE`, comma-separated, e.g. `/aicore.weather.v1.WeatherService/Current=unavailable`;
    /// logged at start [default: none].
    #[arg(long, env = "EDGE_FAULT_FAIL", value_delimiter = ',',
          value_parser = crate::router::faults::parse_fail)]
    pub fault_fail: Option<Vec<(String, String)>>,
    /// Worker registrations lapse unless they heartbeat within this long [default: 30s].
    #[arg(long, env = "EDGE_CAPABILITY_LEASE", value_parser = humantime::parse_duration)]
    pub capability_lease: Option<Duration>,
    /// A replica driving a workflow run owns it this long without writing it; then another
    /// takes over [default: 30s].
    #[arg(long, env = "EDGE_ORCHESTRATION_LEASE", value_parser = humantime::parse_duration)]
    pub orchestration_lease: Option<Duration>,
    /// SSE heartbeat: a comment after this much silence [default: 15s].
    #[arg(long, env = "EDGE_SSE_HEARTBEAT", value_parser = humantime::parse_duration)]
    pub sse_heartbeat: Option<Duration>,
    /// Open SSE streams allowed in this process; over it, 503 [default: 10000].
    #[arg(long, env = "EDGE_MAX_STREAMS")]
    pub max_streams: Option<usize>,
    /// A price catalog of your own (TOML, as handlers/data/payment/catalog.toml) [default: the
    /// shipped one].
    #[arg(long, env = "EDGE_PRICE_CATALOG")]
    pub price_catalog: Option<PathBuf>,
    /// How long a response is kept for repeats of its Idempotency-Key [default: 24h].
    #[arg(long, env = "EDGE_IDEMPOTENCY_RETENTION", value_parser = humantime::parse_duration)]
    pub idempotency_retention: Option<Duration>,
    /// Store backend: redb (one machine) or jetstream (shared through NATS) [default: redb].
    #[arg(long, env = "EDGE_STORE")]
    pub store: Option<crate::store::StoreBackend>,
    /// JetStream key-value bucket for the jetstream store [default: edge].
    #[arg(long, env = "EDGE_STORE_BUCKET")]
    pub store_bucket: Option<String>,
    /// Subject prefix overrides, e.g. `llm=svc.ai.llm.v1` (comma-separated).
    #[arg(long = "subject", env = "EDGE_SUBJECTS", value_delimiter = ',')]
    pub subjects: Option<Vec<String>>,
}

/// `edge worker`
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Services to serve, e.g. `state,settings`.
    #[arg(
        long,
        env = "EDGE_WORKER_SERVICES",
        value_delimiter = ',',
        required = true
    )]
    pub services: Vec<String>,
    /// This worker's id in the worker registry (capability List) [default: host name and process
    /// id].
    #[arg(long, env = "EDGE_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Requests handled at once; more are refused with `unavailable` so the edge answers 503.
    #[arg(long, env = "EDGE_WORKER_MAX_CONCURRENCY", default_value_t = 256)]
    pub max_concurrency: usize,
    /// Configuration, data directory, NATS and logging options, as for `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serve() {
        let cli = Cli::try_parse_from(["edge", "--listen", "127.0.0.1:1"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen, Some("127.0.0.1:1".parse().unwrap()));
        let cli = Cli::try_parse_from(["edge", "config", "check", "--drain-delay", "2s"]).unwrap();
        match cli.command {
            Some(Command::Config(ConfigCommand::Defaults(a))) => assert!(!a.json),
            Some(Command::Config(ConfigCommand::Check(a))) => {
                assert_eq!(a.drain_delay, Some(Duration::from_secs(2)))
            }
            other => panic!("{other:?}"),
        }
    }
}
