//! Three nats-servers routed together on loopback, with JetStream, for the cluster suite
//! (`tests/tests/cluster.rs`): the settings terraform renders (modules/nats_cluster), less TLS
//! and users. Every node is killed on drop, whatever the test's outcome.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        let child = Command::new("nats-server")
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
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, r)| format!("\"nats://127.0.0.1:{r}\""))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, route)) in ports.iter().enumerate() {
            let name = format!("n{i}");
            let conf = dir.path().join(format!("{name}.conf"));
            // As terraform renders it (modules/nats_cluster), less TLS and users.
            std::fs::write(
                &conf,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{port}\n\
                     cluster {{ name: edge-test\n listen: 127.0.0.1:{route}\n no_advertise: true\n routes: [{}] }}\n\
                     jetstream {{ store_dir: {:?} }}\nlame_duck_duration: \"30s\"\nlame_duck_grace_period: \"10s\"\n",
                    routes.join(", "),
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

    /// The node leading `stream` (its server name), asked through any node that answers.
    pub async fn leader(&self, stream: &str) -> String {
        let start = Instant::now();
        loop {
            for n in self.nodes.iter().filter(|n| n.child.is_some()) {
                let Ok(Ok(client)) = tokio::time::timeout(
                    Duration::from_secs(2),
                    async_nats::connect(format!("nats://127.0.0.1:{}", n.port)),
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
