//! The command line. Every `serve` flag also reads an environment variable (`EDGE_*`, or the
//! standard `OTEL_*` ones); both override the TOML file given with `--config`, which overrides the
//! embedded defaults. The `serve` options are declared once, in `cli/settings.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod settings;
pub use settings::ServeArgs;

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
    /// Game content tooling.
    #[command(subcommand)]
    Content(ContentCommand),
    /// Print the NATS users and permissions of the edges and each worker group (a nats-server
    /// `authorization` block), made from the service descriptors.
    NatsAuth(NatsAuthArgs),
}

/// `edge nats-auth`
#[derive(Debug, Args)]
pub struct NatsAuthArgs {
    /// A worker group and the services its workers host, `NAME=svc,svc` (its NATS user is
    /// `worker-NAME`). Repeat for each group.
    #[arg(long = "worker-group", value_name = "NAME=SERVICES")]
    pub worker_groups: Vec<String>,
    /// Another subject a role may publish, `ROLE=SUBJECT` (`edge` or a group's name), e.g. the
    /// NATS endpoint of a model outside `svc.>`. Repeat as needed.
    #[arg(long = "publish", value_name = "ROLE=SUBJECT")]
    pub publish: Vec<String>,
    /// A file defining the password variables, included before they are used (`include "FILE"`,
    /// relative to the output's own directory), e.g. `secrets/auth.conf`. Without it, define
    /// them in nats-server's environment.
    #[arg(long, value_name = "FILE")]
    pub passwords_include: Option<String>,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Subject overrides, the store's bucket and the event stream, as for `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
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

/// `edge content ...`
#[derive(Debug, Subcommand)]
pub enum ContentCommand {
    /// Check a content pack offline as the server would load it (no store, NATS or listener):
    /// every problem as `file:line: message` and exit 1, or a one-line summary and exit 0.
    Check(ContentCheckArgs),
}

/// `edge content check`
#[derive(Debug, Args)]
pub struct ContentCheckArgs {
    /// The pack: a directory laid out as handlers/data/ (`handlers/data` itself checks the
    /// shipped content).
    pub dir: PathBuf,
    /// extend (the pack merged over the shipped content by id) or replace (the pack is the
    /// whole content).
    #[arg(long, default_value = "extend")]
    pub mode: handlers::content::PackMode,
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
