//! Where this process stands in a NATS cluster: which node it is connected to, and whether each
//! replicated JetStream stream it uses (the store's bucket, the event stream) has a leader and a
//! quorum of current replicas, naming the replicas that are lost. Looked up every
//! [`INTERVAL`] by a task the server owns (one stream-info request per stream), never on the
//! request path; shown as metrics, in `/readyz`'s body (which it never fails: DESIGN section 5),
//! and logged when it changes, so the on-call engineer reads which node went and when it is back.

use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, stream::ClusterInfo};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Time between two looks.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// A replica the leader has not heard from for this long is lost, even if it was current when
/// last heard (a stream without writes leaves a killed replica "current"): the leader hears from
/// live ones about every second.
const SILENT: Duration = Duration::from_secs(5);
/// How long one stream-info request may take: a stream without a leader does not answer.
const TRY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the last look found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// The server (node name) the connection is on; none while disconnected.
    pub server: Option<String>,
    /// Each replicated stream, in the order given.
    pub streams: Vec<StreamView>,
}

/// One stream's replication.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamView {
    /// The stream's name (`KV_edge`, `EVENTS`).
    pub stream: String,
    /// The node leading it; none during an election or while it cannot be read.
    pub leader: Option<String>,
    /// Whether a majority of its replicas (leader included) is current: writes can commit.
    pub quorum: bool,
    /// Its replicas, leader included, by node name.
    pub replicas: Vec<Replica>,
    /// Replicas offline or behind: the nodes lost.
    pub lost: Vec<String>,
    /// Why it could not be read (no leader answered, NATS down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A replica of a stream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Replica {
    /// The node's server name.
    pub server: String,
    /// Whether it is online and up to date with the leader.
    pub current: bool,
}

impl StreamView {
    /// From a stream's info: its cluster part (none on a server without clustering, which is
    /// then the only replica), or why it could not be read.
    pub fn from_info(stream: &str, info: Result<Option<ClusterInfo>, String>) -> StreamView {
        let cluster = match info {
            Err(e) => {
                return StreamView {
                    stream: stream.to_owned(),
                    leader: None,
                    quorum: false,
                    replicas: Vec::new(),
                    lost: Vec::new(),
                    error: Some(e),
                };
            }
            Ok(c) => c.unwrap_or_default(),
        };
        let leader = cluster.leader.filter(|l| !l.is_empty());
        let mut replicas: Vec<Replica> = leader
            .iter()
            .map(|l| Replica {
                server: l.clone(),
                current: true,
            })
            .collect();
        for p in &cluster.replicas {
            replicas.push(Replica {
                server: p.name.clone(),
                current: p.current && !p.offline && p.active < SILENT,
            });
        }
        let current = replicas.iter().filter(|r| r.current).count();
        // One replica (a single server, or a stream of one copy): the server that answered
        // holds it. Otherwise a leader and a majority of current replicas.
        let quorum =
            cluster.replicas.is_empty() || (leader.is_some() && current * 2 > replicas.len());
        let lost = replicas
            .iter()
            .filter(|r| !r.current)
            .map(|r| r.server.clone())
            .collect();
        replicas.sort();
        StreamView {
            stream: stream.to_owned(),
            leader,
            quorum,
            replicas,
            lost,
            error: None,
        }
    }
}

/// The last look, shared with the readiness report.
#[derive(Debug, Default)]
pub struct ClusterView(Mutex<Snapshot>);

impl ClusterView {
    /// A copy of the last look.
    pub fn snapshot(&self) -> Snapshot {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Stores a look; returns the one it replaces.
    fn replace(&self, next: Snapshot) -> Snapshot {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::replace(&mut *guard, next)
    }
}

async fn look(js: &jetstream::Context, stream: &str) -> StreamView {
    // One stream-info request (answered by the stream's leader).
    let info = match tokio::time::timeout(TRY_TIMEOUT, js.get_stream(stream)).await {
        Ok(Ok(s)) => Ok(s.cached_info().cluster.clone()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer (no leader, or the server is lost)".to_owned()),
    };
    StreamView::from_info(stream, info)
}

/// Sets the metrics of a look and logs what changed since `before`.
fn report(before: &Snapshot, now: &Snapshot) {
    use metrics::gauge;
    if before.server != now.server {
        if let Some(old) = &before.server {
            gauge!("edge_nats_connected_server", "server" => old.clone()).set(0.0);
        }
        if let Some(new) = &now.server {
            gauge!("edge_nats_connected_server", "server" => new.clone()).set(1.0);
        }
    }
    for s in &now.streams {
        gauge!("edge_store_quorum", "stream" => s.stream.clone())
            .set(f64::from(u8::from(s.quorum)));
        let was = before.streams.iter().find(|b| b.stream == s.stream);
        for r in &s.replicas {
            gauge!("edge_store_replica_current", "stream" => s.stream.clone(), "server" => r.server.clone())
                .set(f64::from(u8::from(r.current)));
        }
        // A replica no longer listed by a stream that was read (it moved) is not current; while
        // the stream cannot be read (an election), each replica keeps what was last known.
        for r in was.iter().flat_map(|w| &w.replicas) {
            if s.error.is_none() && !s.replicas.iter().any(|n| n.server == r.server) {
                gauge!("edge_store_replica_current", "stream" => s.stream.clone(), "server" => r.server.clone())
                    .set(0.0);
            }
        }
        let changed =
            was.is_none_or(|w| w.quorum != s.quorum || w.lost != s.lost || w.leader != s.leader);
        if !changed {
            continue;
        }
        let leader = s.leader.as_deref().unwrap_or("none");
        let lost = s.lost.join(",");
        match (&s.error, s.quorum) {
            (Some(e), _) => {
                tracing::warn!(stream = %s.stream, error = %e, "NATS stream unreadable: no quorum known")
            }
            (None, false) => {
                tracing::warn!(stream = %s.stream, leader, lost, "NATS stream without a quorum: its writes wait")
            }
            (None, true) if !s.lost.is_empty() => {
                tracing::warn!(stream = %s.stream, leader, lost, "NATS stream lost a replica; a quorum holds")
            }
            (None, true) => {
                tracing::info!(stream = %s.stream, leader, "NATS stream fully replicated")
            }
        }
    }
}

/// Looks every [`INTERVAL`] until `stop`: the connected server, and each of `streams`.
pub async fn run(
    client: async_nats::Client,
    streams: Vec<String>,
    view: std::sync::Arc<ClusterView>,
    stop: CancellationToken,
) {
    let js = jetstream::ContextBuilder::new()
        .timeout(TRY_TIMEOUT)
        .build(client.clone());
    loop {
        let connected = super::connected(&client);
        let server = connected
            .then(|| client.server_info().server_name)
            .filter(|n| !n.is_empty());
        let mut now = Snapshot {
            server,
            streams: Vec::with_capacity(streams.len()),
        };
        for s in &streams {
            now.streams.push(if connected {
                look(&js, s).await
            } else {
                StreamView::from_info(s, Err("NATS disconnected".to_owned()))
            });
        }
        let before = view.replace(now.clone());
        report(&before, &now);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use async_nats::jetstream::stream::PeerInfo;

    fn peer(name: &str, current: bool, offline: bool) -> PeerInfo {
        PeerInfo {
            name: name.into(),
            current,
            offline,
            active: Duration::from_millis(300),
            ..Default::default()
        }
    }

    fn cluster(leader: Option<&str>, replicas: Vec<PeerInfo>) -> ClusterInfo {
        ClusterInfo {
            leader: leader.map(str::to_owned),
            replicas,
            ..Default::default()
        }
    }

    #[test]
    fn three_current_replicas_have_a_quorum_and_lose_nothing() {
        let v = StreamView::from_info(
            "KV_edge",
            Ok(Some(cluster(
                Some("n0"),
                vec![peer("n1", true, false), peer("n2", true, false)],
            ))),
        );
        assert!(v.quorum);
        assert!(v.lost.is_empty());
        assert_eq!(v.leader.as_deref(), Some("n0"));
        assert_eq!(v.replicas.len(), 3);
    }

    #[test]
    fn one_node_lost_names_it_and_keeps_the_quorum() {
        let v = StreamView::from_info(
            "KV_edge",
            Ok(Some(cluster(
                Some("n0"),
                vec![peer("n1", false, true), peer("n2", true, false)],
            ))),
        );
        assert!(v.quorum);
        assert_eq!(v.lost, vec!["n1".to_owned()]);
        assert!(v.replicas.contains(&Replica {
            server: "n1".into(),
            current: false
        }));
    }

    #[test]
    fn a_replica_silent_for_long_is_lost_though_it_says_current() {
        let mut silent = peer("n2", true, false);
        silent.active = Duration::from_secs(9);
        let v = StreamView::from_info(
            "EDGE_EVENTS",
            Ok(Some(cluster(
                Some("n1"),
                vec![peer("n0", true, false), silent],
            ))),
        );
        assert!(v.quorum);
        assert_eq!(v.lost, vec!["n2".to_owned()]);
    }

    #[test]
    fn two_nodes_lost_or_no_leader_is_no_quorum() {
        let two = StreamView::from_info(
            "KV_edge",
            Ok(Some(cluster(
                Some("n0"),
                vec![peer("n1", false, true), peer("n2", false, false)],
            ))),
        );
        assert!(!two.quorum);
        assert_eq!(two.lost.len(), 2);
        let election = StreamView::from_info(
            "KV_edge",
            Ok(Some(cluster(
                None,
                vec![peer("n1", true, false), peer("n2", true, false)],
            ))),
        );
        assert!(!election.quorum);
        let unread = StreamView::from_info("KV_edge", Err("timed out".into()));
        assert!(!unread.quorum);
        assert_eq!(unread.error.as_deref(), Some("timed out"));
    }

    #[test]
    fn a_single_server_is_its_own_quorum() {
        let plain = StreamView::from_info("KV_edge", Ok(None));
        assert!(plain.quorum && plain.lost.is_empty());
        let named = StreamView::from_info("KV_edge", Ok(Some(cluster(Some("solo"), vec![]))));
        assert!(named.quorum);
        assert_eq!(
            named.replicas,
            vec![Replica {
                server: "solo".into(),
                current: true
            }]
        );
    }

    #[tokio::test]
    async fn a_lost_connection_reports_every_stream_without_quorum() {
        let view = std::sync::Arc::new(ClusterView::default());
        let before = view.replace(Snapshot {
            server: Some("n1".into()),
            streams: vec![StreamView::from_info(
                "KV_edge",
                Err("NATS disconnected".into()),
            )],
        });
        assert_eq!(before, Snapshot::default());
        let now = view.snapshot();
        report(&before, &now);
        assert!(!now.streams[0].quorum);
    }
}
