//! `edge`: parse the command line, load config, init logs, run.

use std::process::ExitCode;

use clap::Parser as _;
use edge::cli::{CertsCommand, Cli, Command, ConfigCommand, ContentCommand, print_out};
use edge::config::Config;

// glibc malloc was a sixth of the edge's and the worker's CPU under load (many small,
// short-lived allocations across threads); mimalloc's thread-local free lists cost far less.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(&cli.serve).await,
        Some(Command::Serve(args)) => serve(&args).await,
        Some(Command::Config(ConfigCommand::Check(args))) => check(&args),
        Some(Command::Config(ConfigCommand::Defaults(args))) => defaults(args.json),
        Some(Command::Worker(args)) => edge::worker::run(args).await,
        Some(Command::Healthcheck(args)) => healthcheck(args).await,
        Some(Command::Keys(cmd)) => edge::ops::keys::run(cmd).await,
        Some(Command::Openapi(args)) => openapi(args.out.as_deref()),
        Some(Command::NatsAuth(args)) => nats_auth(&args),
        Some(Command::Content(ContentCommand::Check(args))) => content_check(&args),
        Some(Command::Certs(CertsCommand::Ca(a))) => {
            edge::ops::certs::write_ca(&a.out, &a.name, a.years).map(|ca| {
                println!(
                    "wrote {} and its key beside it (keep the key offline)",
                    ca.display()
                )
            })
        }
        Some(Command::Certs(CertsCommand::Issue(a))) => {
            edge::ops::certs::issue(&a.ca, &a.out, &a.names, a.client, a.days)
                .map(|i| println!("wrote {} and {}", i.cert.display(), i.key.display()))
        }
        Some(Command::Certs(CertsCommand::Dev(args))) => {
            edge::http::tls::write_dev_certs(&args.out, &args.sans)
                .map(|c| {
                    println!(
                        "wrote {}, {} and {}",
                        c.ca.display(),
                        c.cert.display(),
                        c.key.display()
                    )
                })
                .map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &edge::cli::ServeArgs) -> Result<(), edge::BoxError> {
    let config = Config::load(args)?;
    let _flush_logs_on_exit = edge::ops::telemetry::init(&config.log, &config.otel)?;
    edge::http::server::run(config).await
}

/// Prints the effective configuration, once it and every data file it names load.
fn check(args: &edge::cli::ServeArgs) -> Result<(), edge::BoxError> {
    let config = Config::load(args)?;
    handlers::content::GameContent::load(&config.content)?;
    print_out(config.to_toml()?)
}

/// Loads a content pack as the server would and runs every check: each problem on stderr as
/// `file:line: message`, or one line of what loaded on stdout.
fn content_check(args: &edge::cli::ContentCheckArgs) -> Result<(), edge::BoxError> {
    let paths = handlers::content::ContentPaths {
        pack: Some(args.dir.clone()),
        mode: args.mode,
        ..handlers::content::ContentPaths::default()
    };
    match handlers::content::GameContent::load(&paths) {
        Ok(content) => print_out(format!(
            "{}: content is sound ({}): {}\n",
            args.dir.display(),
            serde_json::to_value(args.mode)?
                .as_str()
                .unwrap_or_default(),
            content.summary()
        )),
        Err(problems) => {
            for p in &problems.0 {
                eprintln!("{p}");
            }
            Err(format!(
                "{} problem(s) in the content pack {}",
                problems.0.len(),
                args.dir.display()
            )
            .into())
        }
    }
}

/// Prints the embedded defaults (TOML), or the facts a deployment must agree with (JSON).
fn defaults(json: bool) -> Result<(), edge::BoxError> {
    let config = Config::default();
    if json {
        print_out(serde_json::to_string_pretty(&config.deployment_facts())? + "\n")
    } else {
        print_out(config.to_toml()?)
    }
}

async fn healthcheck(args: edge::cli::HealthcheckArgs) -> Result<(), edge::BoxError> {
    let addr = match args.addr {
        Some(addr) => addr,
        None => {
            let config = Config::load(&args.serve)?;
            let port = if args.admin {
                config.admin_listen.port()
            } else {
                config.listen.port()
            };
            std::net::SocketAddr::from(([127, 0, 0, 1], port))
        }
    };
    let status = if args.admin {
        edge::ops::healthcheck::probe_admin(addr, &args.path, args.timeout).await?
    } else {
        edge::ops::healthcheck::probe(addr, &args.path, args.timeout).await?
    };
    match status {
        200 => Ok(()),
        code => Err(format!("{} answered {code}", args.path).into()),
    }
}

/// Writes the OpenAPI description to `out`, or stdout.
fn openapi(out: Option<&std::path::Path>) -> Result<(), edge::BoxError> {
    let doc = edge::http::openapi::bytes()?;
    match out {
        Some(path) => std::fs::write(path, &doc)
            .map_err(|e| format!("cannot write {}: {e}", path.display()).into()),
        None => print_out([&doc[..], b"\n"].concat()),
    }
}

/// Prints (or writes) the NATS users and permissions of the edges and the worker groups.
fn nats_auth(args: &edge::cli::NatsAuthArgs) -> Result<(), edge::BoxError> {
    use edge::nats::permissions::{Group, Input, render};
    let config = Config::load(&args.serve)?;
    let groups = args
        .worker_groups
        .iter()
        .map(|g| Group::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    let extra_publish = args
        .publish
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(r, s)| (r.trim().to_owned(), s.trim().to_owned()))
                .ok_or_else(|| format!("--publish {p:?} is not ROLE=SUBJECT"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let text = render(&Input {
        groups,
        routes: &config.routes,
        bucket: &config.store.bucket,
        events_stream: &config.events.stream,
        events_prefix: &config.events.subject_prefix,
        extra_publish,
        passwords_include: args.passwords_include.as_deref(),
    })?;
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()).into()),
        None => print_out(text),
    }
}
