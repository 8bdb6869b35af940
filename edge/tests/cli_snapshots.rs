//! What the command line shows, pinned: the help of the main commands and the output of
//! `edge config check` must equal the files in `tests/snapshots/`, byte for byte, so a change to
//! a flag, its help or its default shows up in review. After a change you mean, rewrite them
//! with `UPDATE_SNAPSHOTS=1 cargo test -p edge --test cli_snapshots` and read the diff.
//!
//! Each run has an empty environment (no `EDGE_*` or `OTEL_*` variable leaks in) and a fresh
//! temporary directory with no config file, and names only relative paths, so nothing depends
//! on the machine and nothing needs normalizing. The README's list of `serve` flags is checked
//! against the command too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory as _;

fn snapshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// Runs `edge args...` in `dir` with only `env` set; returns (exit code, stdout, stderr).
fn edge(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edge"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

/// Compares `actual` with the snapshot `name`, or rewrites it under `UPDATE_SNAPSHOTS=1`.
fn check(name: &str, actual: &str, failures: &mut Vec<String>) {
    let path = snapshots().join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected == actual {
        return;
    }
    let mut diff = String::new();
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            diff = format!("first difference at line {}:\n- {e}\n+ {a}", i + 1);
            break;
        }
    }
    if diff.is_empty() {
        diff = format!(
            "one ends early: {} lines expected, {} got",
            expected.lines().count(),
            actual.lines().count()
        );
    }
    failures.push(format!("{} differs; {diff}", path.display()));
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is meant, rewrite the snapshots with \
         `UPDATE_SNAPSHOTS=1 cargo test -p edge --test cli_snapshots` and review `git diff`.",
        failures.join("\n\n")
    );
}

#[test]
fn help_is_as_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, args) in [
        ("help.txt", &["--help"][..]),
        ("serve-help.txt", &["serve", "--help"]),
        ("worker-help.txt", &["worker", "--help"]),
        ("keys-create-help.txt", &["keys", "create", "--help"]),
        ("healthcheck-help.txt", &["healthcheck", "--help"]),
        ("config-check-help.txt", &["config", "check", "--help"]),
        ("nats-auth-help.txt", &["nats-auth", "--help"]),
    ] {
        let (code, out, err) = edge(dir.path(), args, &[]);
        assert_eq!((code, err.as_str()), (0, ""), "edge {args:?}");
        check(name, &out, &mut failures);
    }
    report(failures);
}

#[test]
fn secrets_in_the_environment_stay_out_of_the_help() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("EDGE_ADMIN_TOKEN", "s3cret-token"),
        ("EDGE_LLM_API_KEYS", "https://api.example.com=s3cret-key"),
        ("EDGE_NATS_PASSWORD", "s3cret-password"),
        ("EDGE_NATS_SIGNING_KEYS", "k1:s3cret-signing-key"),
    ];
    let (_, out, _) = edge(dir.path(), &["serve", "--help"], &env);
    assert!(!out.contains("s3cret"), "{out}");
    assert!(out.contains("[env: EDGE_ADMIN_TOKEN]\n"), "{out}");
    assert!(out.contains("[env: EDGE_LLM_API_KEYS]\n"), "{out}");
    assert!(out.contains("[env: EDGE_NATS_PASSWORD]\n"), "{out}");
    assert!(out.contains("[env: EDGE_NATS_SIGNING_KEYS]\n"), "{out}");
}

#[test]
fn config_check_prints_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = edge(dir.path(), &["config", "check"], &[]);
    assert_eq!((code, err.as_str()), (0, ""));
    let mut failures = Vec::new();
    check("config-check.toml", &out, &mut failures);
    report(failures);
}

/// Every `serve` flag given once, over a file and variables: pins the field each one sets and
/// the order file < variable < flag.
#[test]
fn config_check_lays_flags_over_variables_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("edge.toml"),
        "listen = \"127.0.0.1:7000\"\nadmin_listen = \"127.0.0.1:7001\"\n\
         [auth]\naccess_token_ttl = \"10m\"\nlogin_failures_per_address = 3\n\
         [http]\nmax_in_flight = 5\n",
    )
    .unwrap();
    for f in [
        "cert.pem",
        "key.pem",
        "ca.pem",
        "nats-cert.pem",
        "nats-key.pem",
        "nats.creds",
    ] {
        std::fs::write(d.join(f), "").unwrap();
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../handlers/data/payment");
    std::fs::copy(shipped.join("catalog.toml"), d.join("catalog.toml")).unwrap();
    // A content pack that changes nothing: the shipped content laid over itself.
    let pack = d.join("pack/payment");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::copy(shipped.join("catalog.toml"), pack.join("catalog.toml")).unwrap();
    let env = [
        ("EDGE_LISTEN", "127.0.0.1:7100"),
        ("EDGE_ADMIN_LISTEN", "127.0.0.1:7101"),
        ("EDGE_MAX_IN_FLIGHT", "6"),
        ("OTEL_SERVICE_NAME", "from-env"),
        ("EDGE_SSE_HEARTBEAT", "9s"),
    ];
    let args = [
        "config",
        "check",
        "--config=edge.toml",
        "--admin-listen=127.0.0.1:7201",
        "--admin-token=t",
        "--data-dir=elsewhere",
        "--tls-cert=cert.pem",
        "--tls-key=key.pem",
        "--tls-reload-interval=11s",
        "--max-body-bytes=1000",
        "--request-timeout=40s",
        "--idle-timeout=80s",
        "--max-in-flight=7",
        "--max-connections=99",
        "--drain-delay=2s",
        "--shutdown-timeout=31s",
        "--access-token-ttl=20m",
        "--refresh-token-ttl=40days",
        "--stream-ticket-ttl=45s",
        "--otel-endpoint=http://localhost:4318",
        "--otel-sampler=always_off",
        "--otel-sampler-arg=0.5",
        "--otel-trust-client-sampled=true",
        "--log-format=text",
        "--log=debug",
        "--access-log=true",
        "--nats=nats://127.0.0.1:4222",
        "--nats-request-timeout=5s",
        "--nats-ca=ca.pem",
        "--nats-cert=nats-cert.pem",
        "--nats-key=nats-key.pem",
        "--nats-credentials=nats.creds",
        "--nats-user=edge",
        "--nats-password=nats-s3cret",
        "--nats-signing-keys=k2:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=,k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "--serve-local=false",
        "--remote=llm,,story",
        "--trusted-proxies=10.0.0.0/16",
        "--cors-origins=https://a.example.com,https://b.example.com",
        "--rate-limit=false",
        "--llm-api-keys=https://api.openai.com=sk-x",
        "--grammar-token-interval=5ms",
        "--fault-delay-reply=/aicore.payment.v1.PaymentService/Purchase=300ms",
        "--fault-fail=/aicore.weather.v1.WeatherService/Current=unavailable",
        "--capability-lease=40s",
        "--orchestration-lease=50s",
        "--max-streams=7",
        "--price-catalog=catalog.toml",
        "--content-pack=pack",
        "--content-mode=extend",
        "--idempotency-retention=2h",
        "--store=jetstream",
        "--store-bucket=b1",
        "--store-replicas=3",
        "--subject=llm=svc.ai.llm.v1",
    ];
    let serve = edge::cli::Cli::command();
    let serve = serve.find_subcommand("serve").unwrap();
    for arg in serve.get_arguments() {
        let flag = arg.get_long().unwrap_or_default();
        let given = args.iter().any(|a| a.starts_with(&format!("--{flag}=")))
            || env
                .iter()
                .any(|(k, _)| arg.get_env().is_some_and(|e| e == *k));
        assert!(given || flag == "help", "set --{flag} here too");
    }
    let (code, out, err) = edge(d, &args, &env);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        !out.contains("sk-x") && !out.contains("admin_token"),
        "{out}"
    );
    assert!(
        !out.contains("nats-s3cret")
            && !out.contains("QUJDREVG")
            && !out.contains("password")
            && !out.contains("signing_keys"),
        "{out}"
    );
    let mut failures = Vec::new();
    check("config-check-layered.toml", &out, &mut failures);
    report(failures);
}

#[test]
fn config_check_refuses_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = edge(dir.path(), &["config", "check", "--drain-delay=60s"], &[]);
    assert_eq!((code, out.as_str()), (1, ""));
    let mut failures = Vec::new();
    check("config-check-error.txt", &err, &mut failures);
    report(failures);
}

/// The README's list of `serve` flags: from the paragraph's first words to the sentence after it.
fn readme_flags_paragraph() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    // One line, so rewrapping the README moves no anchor.
    let text = std::fs::read_to_string(readme).unwrap();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let start = text
        .find("`serve` flags, each also an environment variable")
        .expect("the README's paragraph on serve flags");
    let len = text[start..]
        .find("`edge --help` lists them with defaults")
        .expect("the list's end: \"`edge --help` lists them with defaults\"");
    text[start..start + len].to_owned()
}

/// `--name` words in `text`.
fn flags_in(text: &str) -> Vec<String> {
    text.match_indices("--")
        .map(|(at, _)| {
            text[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                .collect::<String>()
        })
        .filter(|f| !f.is_empty())
        .collect()
}

/// Upper-case words in backticks (`EDGE_LISTEN`), but not the prefix `EDGE_` alone.
fn env_names_in(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.len() > 1
                && !w.ends_with('_')
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_names_every_serve_flag_and_no_other() {
    let paragraph = readme_flags_paragraph();
    let named = flags_in(&paragraph);
    let serve = edge::cli::Cli::command();
    let serve = serve.find_subcommand("serve").unwrap();
    let mut flags = Vec::new();
    let mut problems = Vec::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" {
            continue;
        }
        flags.push(long.to_owned());
        if !named.iter().any(|n| n == long) {
            problems.push(format!("--{long} is not in the README's list"));
        }
        // The README says the others are `EDGE_` + the flag in capitals.
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        let usual = format!("EDGE_{}", long.to_uppercase().replace('-', "_"));
        if let Some(env) = env.filter(|e| *e != usual)
            && !paragraph.contains(&format!("`{env}`"))
        {
            problems.push(format!(
                "--{long} reads {env}, which the README does not say"
            ));
        }
    }
    for n in &named {
        if !flags.contains(n) {
            problems.push(format!(
                "the README names --{n}, which `edge serve` does not have"
            ));
        }
    }
    let envs: Vec<String> = serve
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    for e in env_names_in(&paragraph) {
        if !envs.contains(&e) {
            problems.push(format!("the README names {e}, which no serve flag reads"));
        }
    }
    assert!(problems.is_empty(), "README.md:\n{}", problems.join("\n"));
}

/// Every `--flag` and `[section] key` the docs name anywhere (README, SECURITY, terraform's
/// README) exists: a flag of some `edge` command, a key of the effective configuration that
/// `edge config check` prints. (The serve flags' list is checked both ways above.)
#[test]
fn every_flag_and_setting_the_docs_name_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs: String = ["README.md", "SECURITY.md", "terraform/README.md"]
        .iter()
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    // Every long flag of every command.
    fn walk(c: &clap::Command, out: &mut std::collections::BTreeSet<String>) {
        for a in c.get_arguments() {
            if let Some(l) = a.get_long() {
                out.insert(l.to_owned());
            }
        }
        for s in c.get_subcommands() {
            walk(s, out);
        }
    }
    let mut flags = std::collections::BTreeSet::new();
    walk(&edge::cli::Cli::command(), &mut flags);
    // Flags of other tools the docs show in commands.
    let others = ["bench", "release", "manifest-path", "test"];
    let mut problems = Vec::new();
    for piece in docs.split("`--").skip(1) {
        let name: String = piece
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        if !name.is_empty() && !flags.contains(&name) && !others.contains(&name.as_str()) {
            problems.push(format!("--{name} is no flag of any edge command"));
        }
    }
    // A setting exists when the configuration file may name it: `edge config check` refuses an
    // unknown section or key by name ("unknown field"), and only complains of the value's type
    // (a deliberate `[]`) for a known one.
    let dir = tempfile::tempdir().unwrap();
    // Tables of content files, not of the configuration (catalog.toml's [inventory], tiers.toml's
    // [adapt]).
    let content_tables = ["inventory", "adapt"];
    let mut seen = std::collections::BTreeSet::new();
    for piece in docs.split("`[").skip(1) {
        let Some((section, rest)) = piece.split_once(']') else {
            continue;
        };
        let key: String = rest
            .strip_prefix(' ')
            .unwrap_or_default()
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let valid = !section.is_empty()
            && section
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
        if !valid || content_tables.contains(&section) || !seen.insert((section, key.clone())) {
            continue;
        }
        let file = dir.path().join("probe.toml");
        let body = if key.is_empty() {
            format!("[{section}]\n")
        } else {
            format!("[{section}]\n{key} = []\n")
        };
        std::fs::write(&file, body).unwrap();
        let (_, out, err) = edge(
            dir.path(),
            &["config", "check", "--config", file.to_str().unwrap()],
            &[],
        );
        if format!("{out}{err}").contains("unknown field") {
            problems.push(format!(
                "[{section}] {key} is no setting of the configuration file"
            ));
        }
    }
    assert!(problems.is_empty(), "the docs:\n{}", problems.join("\n"));
}
