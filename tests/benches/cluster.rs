//! Benchmark (issue 35 item 4): what replication costs. State Put and Get, payment Purchase and
//! event Publish through an edge on a three-node cluster's store (JetStream, replicas 3), against
//! the same edge on one node's store (replicas 1), in the same run: the same nats-server binary,
//! users and JetStream settings (`edge_e2e::cluster`), both edges in-process (no worker), 16
//! connections each with a player of its own, rounds alternating which side goes first. Then the
//! same with one node of the cluster killed (not the one the edge is connected to, so the figures
//! are those of a store with two replicas of three left, not of a reconnect).
//!
//! A purchase is a real one each time (its own Idempotency-Key), followed, unmeasured, by the game
//! server consuming the item, so the player's 60 slots never fill.
//!
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench cluster`
//! (`BENCH_SECS`, default 5, and `BENCH_ROUNDS`, default 3).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_e2e::bench::median;
use edge_e2e::cluster::{Cluster, call, login_as};
use edge_e2e::{Client, Edge, scenarios};
use http::{Method, StatusCode};
use proto::rpc;
use serde_json::json;

const CONNS: usize = 16;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Put,
    Get,
    Purchase,
    Publish,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Put => "state Put",
            Op::Get => "state Get",
            Op::Purchase => "payment Purchase",
            Op::Publish => "events Publish",
        }
    }
}

/// One side: an edge on a store, its players and the game server's key.
struct Side {
    name: &'static str,
    client: Client,
    players: Vec<scenarios::Session>,
    game: String,
    edge: Edge,
}

/// What one measured run found.
struct Run {
    rps: f64,
    p99_ms: f64,
    errors: u64,
}

async fn side(name: &'static str, nodes: &Cluster, replicas: &str) -> Side {
    let urls = nodes.urls();
    let mut args = vec![
        "--nats",
        &urls,
        "--store",
        "jetstream",
        "--store-replicas",
        replicas,
        "--rate-limit",
        "false",
    ];
    let login = login_as("edge");
    args.extend(login.iter().map(String::as_str));
    let edge = Edge::start(&args);
    let client = edge.client();
    let game = nodes.service_key(&format!("bench-{name}"), "payment");
    let mut players = Vec::new();
    for i in 0..CONNS {
        let p = scenarios::login(&client, &format!("bench-{name}-{i}")).await;
        let grant = json!({"playerId": p.player_id, "amount": 1_000_000_000u64, "reason": "bench"});
        let r = call(
            &client,
            rpc::payment::CREDIT.path,
            &game,
            Some(&format!("credit-{name}-{i}")),
            grant,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        players.push(p);
    }
    Side {
        name,
        client,
        players,
        game,
        edge,
    }
}

/// `CONNS` closed-loop connections for `warmup` then `measure`, each its player's requests of
/// kind `op`, every request its own (keys, values, idempotency keys from `seq`).
async fn drive(s: &Side, op: Op, warmup: Duration, measure: Duration, seq: &Arc<AtomicU64>) -> Run {
    let start = Instant::now();
    let from = start + warmup;
    let end = from + measure;
    let mut tasks = Vec::new();
    for (i, p) in s.players.iter().enumerate() {
        let (client, seq) = (s.client.clone(), Arc::clone(seq));
        let (token, player, game, name) = (
            format!("Bearer {}", p.access),
            p.player_id.clone(),
            format!("Bearer {}", s.game),
            s.name,
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut conn = client.connect(false).await.unwrap();
            while Instant::now() < end {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let key = format!("{name}-{n}");
                let (path, body) = match op {
                    Op::Put => (
                        rpc::state::PUT.path,
                        json!({"key": format!("bench-{i}"), "value": n}),
                    ),
                    Op::Get => (rpc::state::GET.path, json!({"key": format!("bench-{i}")})),
                    Op::Purchase => (
                        rpc::payment::PURCHASE.path,
                        json!({"sku": "minor_healing_draught", "quantity": 1}),
                    ),
                    Op::Publish => (
                        rpc::events::PUBLISH.path,
                        json!({"topic": format!("player.{player}"), "type": "tick", "payload": {"n": n}}),
                    ),
                };
                let mut headers = vec![
                    ("content-type", "application/json"),
                    ("authorization", token.as_str()),
                ];
                if op == Op::Purchase {
                    headers.push(("idempotency-key", key.as_str()));
                }
                let t0 = Instant::now();
                let r = conn
                    .send(
                        Method::POST,
                        path,
                        &headers,
                        Bytes::from(serde_json::to_vec(&body).unwrap()),
                    )
                    .await;
                let took = t0.elapsed();
                let ok = match r {
                    Ok(r) => r.status == StatusCode::OK,
                    Err(_) => {
                        conn = client.connect(false).await.unwrap();
                        false
                    }
                };
                if t0 >= from {
                    if ok {
                        lat.push(took);
                    } else {
                        errors += 1;
                    }
                }
                if op == Op::Purchase && ok {
                    // The game server uses it up, unmeasured: the slots never fill.
                    let used = json!({"playerId": player, "sku": "minor_healing_draught", "quantity": 1, "reason": "drank"});
                    let consume_key = format!("use-{key}");
                    let h = [
                        ("content-type", "application/json"),
                        ("authorization", game.as_str()),
                        ("idempotency-key", consume_key.as_str()),
                    ];
                    // Sent again on a new connection if the server closed this one meanwhile.
                    for _ in 0..3 {
                        let r = conn
                            .send(
                                Method::POST,
                                rpc::payment::CONSUME.path,
                                &h,
                                Bytes::from(serde_json::to_vec(&used).unwrap()),
                            )
                            .await;
                        match r {
                            Ok(r) => {
                                assert_eq!(r.status, StatusCode::OK, "consume: {:?}", r.body);
                                break;
                            }
                            Err(_) => conn = client.connect(false).await.unwrap(),
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    lat.sort_unstable();
    let p99 = lat
        .get((lat.len() * 99 / 100).min(lat.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    Run {
        rps: lat.len() as f64 / measure.as_secs_f64(),
        p99_ms: p99.as_secs_f64() * 1e3,
        errors,
    }
}

/// Each op: single and cluster in turn for `rounds` rounds (the side that goes first
/// alternates), printing every round and the medians; returns the summary lines.
async fn phase(
    label: &str,
    single: &Side,
    three: &Side,
    rounds: usize,
    measure: Duration,
    seq: &Arc<AtomicU64>,
) -> Vec<String> {
    let warmup = Duration::from_secs(1);
    let mut summary = Vec::new();
    println!("\n{label}");
    for op in [Op::Put, Op::Get, Op::Purchase, Op::Publish] {
        let (mut ratios, mut p99_1, mut p99_3) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=rounds {
            let (a, b) = if round % 2 == 1 {
                let a = drive(single, op, warmup, measure, seq).await;
                (a, drive(three, op, warmup, measure, seq).await)
            } else {
                let b = drive(three, op, warmup, measure, seq).await;
                (drive(single, op, warmup, measure, seq).await, b)
            };
            println!(
                "  {:<16} round {round}: 1 node {:>6.0} req/s p99 {:>6.1} ms errors {} | 3 nodes {:>6.0} req/s p99 {:>6.1} ms errors {} | {:.2}x",
                op.name(),
                a.rps,
                a.p99_ms,
                a.errors,
                b.rps,
                b.p99_ms,
                b.errors,
                b.rps / a.rps
            );
            ratios.push(b.rps / a.rps);
            p99_1.push(a.p99_ms);
            p99_3.push(b.p99_ms);
        }
        let worst = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let line = format!(
            "{label}: {:<16} 3 nodes / 1 node {:.2}x req/s (worst round {worst:.2}x), p99 {:.1} ms vs {:.1} ms",
            op.name(),
            median(ratios),
            median(p99_3),
            median(p99_1),
        );
        println!("{line}");
        summary.push(line);
    }
    summary
}

#[tokio::main]
async fn main() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let measure = Duration::from_secs(env("BENCH_SECS", 5));
    let rounds = env("BENCH_ROUNDS", 3) as usize;
    let one = Cluster::single();
    let mut three = Cluster::start();
    let single = side("single", &one, "1").await;
    let cluster = side("cluster", &three, "3").await;
    println!(
        "\nCluster benchmark ({}): {CONNS} connections, HTTP/1.1 over TLS, {}s x {rounds} rounds; 1 node (replicas 1) against 3 nodes (replicas 3)",
        edge_e2e::cluster::nats_server_version(),
        measure.as_secs()
    );
    let seq = Arc::new(AtomicU64::new(0));
    let mut summary = phase("3 nodes up", &single, &cluster, rounds, measure, &seq).await;
    // A node down: one the edge is not on (its connection stays), the store's leader if that
    // is another, so the figures include a re-elected leader.
    let on = cluster
        .edge
        .admin_text("/metrics")
        .await
        .lines()
        .find(|l| l.starts_with("edge_nats_connected_server{") && l.ends_with(" 1"))
        .and_then(|l| l.split('"').nth(1).map(str::to_owned))
        .unwrap_or_default();
    let leader = three.leader("KV_edge").await;
    let victim = if leader != on {
        leader
    } else {
        ["n0", "n1", "n2"]
            .into_iter()
            .find(|n| *n != on)
            .unwrap()
            .to_owned()
    };
    three.node(&victim).kill();
    let new_leader = three.leader("KV_edge").await;
    println!("\n{victim} killed (the edge is on {on}; KV_edge now led by {new_leader})");
    summary.extend(phase("1 node of 3 down", &single, &cluster, rounds, measure, &seq).await);
    println!("\nSummary:");
    for l in summary {
        println!("  {l}");
    }
}
