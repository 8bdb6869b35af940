//! NATS: the connection and its `[nats]` and `[routes]` sections, the wire headers, the
//! signatures on requests, the NATS users per role (`edge nats-auth`), streams over NATS, the
//! responder prober, and the responder that answers for local services (`edge worker`, and an
//! edge for the services it hosts). The lowest level of the crate above the shared modules: it
//! imports only `error`, `stats` and the crates below.

pub mod discovery;
pub mod headers;
pub mod permissions;
pub mod probe;
pub mod quorum;
pub mod responder;
pub mod signing;
pub mod stream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{ConnectOptions, Event};

use crate::error::BoxError;
use serde::{Deserialize, Serialize};

/// A NATS connection and a view of whether it is up, updated from the client's events.
#[derive(Clone)]
pub struct Nats {
    /// The client.
    pub client: async_nats::Client,
    /// `true` while connected; in-flight requests watch it to fail at once on a disconnect rather
    /// than wait out their timeout.
    pub up: tokio::sync::watch::Receiver<bool>,
    /// The keys that sign this process's requests, when configured.
    pub keys: Option<Arc<signing::SigningKeys>>,
    /// What lets the connection's events name its server while this handle lives.
    _named: Arc<async_nats::Client>,
}

/// Connects in the background: the call returns at once and the client keeps (re)connecting by
/// itself, so an edge starts, and stays up, while NATS is down. Calls meanwhile fail fast (503).
pub async fn connect(cfg: &NatsConfig, name: &str) -> Result<Nats, BoxError> {
    let urls = cfg
        .url
        .as_ref()
        .ok_or("no NATS URL configured (--nats / EDGE_NATS_URL)")?;
    let servers = urls.servers()?;
    let keys = signing::SigningKeys::parse(&cfg.signing_keys)?;
    let (up_tx, up) = tokio::sync::watch::channel(false);
    let up_tx = Arc::new(up_tx);
    // While the server is away each reconnect attempt fails the same way: said once, at warn.
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Which node of a cluster the client is on, for the logs: the one lost, the one taken.
    // Held weakly by the client's own callback: a strong handle there would keep the connection
    // open after every user of it is gone.
    let client_cell: Arc<std::sync::OnceLock<std::sync::Weak<async_nats::Client>>> = Arc::default();
    let server = Arc::new(std::sync::Mutex::new(String::new()));
    let (cell, on) = (Arc::clone(&client_cell), Arc::clone(&server));
    let mut opts = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        // Short: a frozen server's kernel still accepts the connection, and then says nothing.
        .connection_timeout(Duration::from_secs(2))
        // A frozen server (SIGSTOP, a stalled VM) keeps its socket open: without pings the client
        // would wait on it for minutes. Pings unanswered for three intervals (4.5 s), and it moves
        // on to a survivor (tried in random order, the ones that failed least first).
        .ping_interval(PING_INTERVAL)
        // Spread out, so a fleet of edges and workers does not reconnect in lockstep.
        .reconnect_delay_callback(reconnect_delay)
        .event_callback(move |event| {
            let up_tx = Arc::clone(&up_tx);
            let failing = Arc::clone(&failing);
            let (cell, on) = (Arc::clone(&cell), Arc::clone(&on));
            async move {
                let name = cell
                    .get()
                    .and_then(std::sync::Weak::upgrade)
                    .map(|c| c.server_info().server_name);
                let mut on = on.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                use std::sync::atomic::Ordering::Relaxed;
                match event {
                    Event::Connected => {
                        up_tx.send_replace(true);
                        failing.store(false, Relaxed);
                        *on = name.unwrap_or_default();
                        tracing::info!(server = %on, "NATS connected");
                    }
                    Event::ServerError(e) => {
                        tracing::warn!(error = %e, "NATS server error");
                    }
                    Event::ClientError(e) if failing.swap(true, Relaxed) => {
                        tracing::debug!(error = %e, "NATS still unreachable");
                    }
                    Event::ClientError(e) => {
                        tracing::warn!(error = %e, "NATS unreachable; retrying (repeats logged at debug)");
                    }
                    Event::Disconnected => {
                        up_tx.send_replace(false);
                        tracing::warn!(server = %on, "NATS server lost; reconnecting to another");
                    }
                    Event::SlowConsumer(sid) => {
                        tracing::warn!(sid, "NATS slow consumer: messages dropped")
                    }
                    other => tracing::info!(event = %other, "NATS event"),
                }
            }
        });
    if let Some(ca) = &cfg.ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&cfg.cert, &cfg.key) {
        opts = opts
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    if let Some(user) = &cfg.user {
        // Replies come back on `_INBOX.<user>.>`, the only inboxes the user's NATS permissions
        // let it read (`edge nats-auth`), so no other role reads its replies.
        opts = opts
            .user_and_password(
                user.clone(),
                cfg.password
                    .as_ref()
                    .map(|p| p.expose().to_owned())
                    .unwrap_or_default(),
            )
            .custom_inbox_prefix(inbox_prefix(user));
    }
    if let Some(creds) = &cfg.credentials {
        opts = opts
            .credentials_file(creds)
            .await
            .map_err(|e| format!("cannot read NATS credentials {}: {e}", creds.display()))?;
    }
    let client = opts
        .connect(servers)
        .await
        .map_err(|e| format!("cannot connect to NATS at {urls}: {e}"))?;
    let named = Arc::new(client.clone());
    let _ = client_cell.set(Arc::downgrade(&named));
    Ok(Nats {
        client,
        up,
        keys,
        _named: named,
    })
}

/// How often the client pings its server: a server that misses two answers is given up.
const PING_INTERVAL: Duration = Duration::from_millis(1500);

/// The pause before reconnect attempt `attempts`: none for the first (another server of the
/// cluster is likely up), then doubling up to 4 s, each with up to half of it again at random.
pub fn reconnect_delay(attempts: usize) -> Duration {
    let base = match attempts {
        0 | 1 => return Duration::ZERO,
        n => Duration::from_millis(
            50u64.saturating_mul(1u64 << u32::try_from(n - 2).unwrap_or(31).min(10)),
        )
        .min(Duration::from_secs(4)),
    };
    let jitter = rand::random::<f64>() * 0.5;
    base + base.mul_f64(jitter)
}

/// The NATS servers: one URL, or the URLs of a cluster's nodes (any of which may be down at
/// start). In a flag or variable, comma-separated; in TOML, a string (which may also be
/// comma-separated) or an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsUrls(Vec<String>);

impl NatsUrls {
    /// Parses a comma-separated list; empty items are dropped.
    pub fn parse(text: &str) -> Self {
        NatsUrls(
            text.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The URLs as given.
    pub fn list(&self) -> &[String] {
        &self.0
    }

    /// The URLs as server addresses, or an error naming the one that is not a URL.
    pub fn servers(&self) -> Result<Vec<async_nats::ServerAddr>, String> {
        if self.0.is_empty() {
            return Err("the NATS URL list is empty".into());
        }
        self.0
            .iter()
            .map(|u| {
                u.parse::<async_nats::ServerAddr>()
                    .map_err(|e| format!("NATS URL {u:?} is not valid: {e}"))
            })
            .collect()
    }
}

impl std::fmt::Display for NatsUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl Serialize for NatsUrls {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // One URL stays a string, as it was before clusters.
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            all => all.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for NatsUrls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Form::deserialize(d)? {
            Form::One(text) => NatsUrls::parse(&text),
            Form::Many(list) => NatsUrls::parse(&list.join(",")),
        })
    }
}

/// Where a NATS user's replies arrive: `_INBOX.<user>`.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX.{user}")
}

/// A user name that is one subject token (it names the user's inboxes).
pub fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// A password from the config: never printed (Debug shows no value, the config skips it, and the
/// type has no `Serialize`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps `value`.
    pub fn new(value: String) -> Self {
        Password(value)
    }

    /// The password itself, to send.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Whether the client is connected now.
pub fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

/// The NATS connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL(s): every node of a cluster, so a start does not depend on one of them, e.g.
    /// `["nats://10.0.0.5:4222", "nats://10.0.1.5:4222"]` (or a comma-separated string). None:
    /// no NATS.
    pub url: Option<NatsUrls>,
    /// How long a request waits for a worker's reply; below `http.request_timeout` so the edge
    /// answers 504 itself rather than the client timing out.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// CA certificate (PEM) to verify the NATS server; setting it requires TLS.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    pub key: Option<PathBuf>,
    /// Credentials file (JWT + nkey) for NATS authentication.
    pub credentials: Option<PathBuf>,
    /// NATS user name (with `password`): `edge`, or `worker-<group>`, as `edge nats-auth` makes
    /// them. Its replies arrive on `_INBOX.<user>.>`.
    pub user: Option<String>,
    /// The user's password. Never printed.
    #[serde(skip_serializing)]
    pub password: Option<Password>,
    /// Keys that sign this process's requests and verify those it answers, `id:base64-secret`;
    /// the first signs, any verifies. The same list on every edge and worker. Never printed.
    #[serde(skip_serializing)]
    pub signing_keys: signing::KeyList,
    /// Also answer in queue groups for the services this edge hosts, so calls from services on
    /// workers reach them (DESIGN section 8).
    pub serve_local: bool,
    /// Requests the edge's responder handles at once; past it, 503 at once.
    pub serve_max_concurrency: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: None,
            request_timeout: Duration::from_secs(20),
            ca: None,
            cert: None,
            key: None,
            credentials: None,
            user: None,
            password: None,
            signing_keys: signing::KeyList::default(),
            serve_local: true,
            serve_max_concurrency: 256,
        }
    }
}

/// Routing of services to NATS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RoutesConfig {
    /// Services served by remote workers over NATS (short names, e.g. `llm`).
    pub remote: Vec<String>,
    /// Subject prefix per service, overriding `svc.<svc>.v1` (e.g. `llm = "svc.ai.llm.v1"` to reach
    /// legacy workers). A method's subject is `<prefix>.<method_snake_case>`.
    pub subjects: BTreeMap<String, String>,
}

impl RoutesConfig {
    /// The subject prefix of a service: the configured override or `svc.<svc>.<version>`.
    pub fn prefix(&self, service: &proto::ServiceDesc) -> String {
        match self.subjects.get(service.short) {
            Some(p) => p.clone(),
            None => {
                let version = service.package.rsplit('.').next().unwrap_or("v1");
                format!("svc.{}.{version}", service.short)
            }
        }
    }

    /// The NATS subject of a method.
    pub fn subject(&self, method: &proto::MethodDesc) -> String {
        format!("{}.{}", self.prefix(method.service_desc()), method.snake)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_cluster_is_a_list_of_urls_in_a_flag_a_string_or_an_array() {
        let flag = NatsUrls::parse("nats://a:4222, nats://b:4222,,nats://c:4222");
        assert_eq!(
            flag.list(),
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
        assert_eq!(flag.servers().unwrap().len(), 3);
        let toml_array: NatsConfig =
            toml::from_str("url = [\"nats://a:4222\", \"nats://b:4222\", \"nats://c:4222\"]")
                .unwrap();
        assert_eq!(toml_array.url.as_ref(), Some(&flag));
        let toml_string: NatsConfig =
            toml::from_str("url = \"nats://a:4222,nats://b:4222,nats://c:4222\"").unwrap();
        assert_eq!(toml_string.url.as_ref(), Some(&flag));
        // One URL still works and still prints as one string.
        let one: NatsConfig = toml::from_str("url = \"nats://127.0.0.1:4222\"").unwrap();
        assert_eq!(one.url.as_ref().unwrap().servers().unwrap().len(), 1);
        assert!(
            toml::to_string(&one)
                .unwrap()
                .contains("url = \"nats://127.0.0.1:4222\"")
        );
        let many = toml::to_string(&toml_array).unwrap();
        assert_eq!(
            toml::from_str::<NatsConfig>(&many).unwrap().url,
            toml_array.url
        );
        // A bad entry is named; an empty list is refused.
        let err = NatsUrls::parse("nats://a:4222,nats://b:x")
            .servers()
            .unwrap_err();
        assert!(err.contains("nats://b:x"), "{err}");
        assert!(NatsUrls::parse(" , ").servers().is_err());
    }

    #[test]
    fn reconnects_start_at_once_then_back_off_with_jitter_up_to_six_seconds() {
        assert_eq!(reconnect_delay(0), Duration::ZERO);
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        let second = reconnect_delay(2);
        assert!(second >= Duration::from_millis(50) && second <= Duration::from_millis(75));
        let late: Vec<Duration> = (0..50).map(|_| reconnect_delay(40)).collect();
        assert!(
            late.iter()
                .all(|d| *d >= Duration::from_secs(4) && *d <= Duration::from_secs(6))
        );
        // Jittered: a fleet does not retry in lockstep.
        assert!(late.iter().any(|d| *d != late[0]));
    }
}
