//! Benchmark: bodybroker Bootstrap (calls fanned out in-process: settings, quest log, region,
//! weather (which asks time too), time; six store reads) against the foundation benchmark's state
//! Get on the same edge (goal: at most 2.5x its CPU per request), in the
//! same run, 64 connections each, ABBA rounds after a warm-up, the server on one core and the
//! load generator on the other. Then Bootstrap against the five calls it replaces, each driven
//! alone: their CPU per request summed, and sessions per second.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench bootstrap`.
//! `BENCH_SECS` and `BENCH_ROUNDS` adjust it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use bytes::Bytes;
use edge_e2e::bench::{Side, compare, pin, pinned_edge, settings, state_get, verdict, warm_up};
use edge_e2e::load::Shape;
use proto::rpc;
use serde_json::json;

const BOOTSTRAP: &str = rpc::bodybroker::BOOTSTRAP.path;

#[tokio::main]
async fn main() {
    let (warmup, measure, rounds) = settings();
    let cpus = pin();
    let tmp = tempfile::tempdir().unwrap();
    let (edge, c) = pinned_edge(tmp.path(), cpus);
    let get = state_get(&c).await;
    let token = get.headers[1].1.clone();
    let bearer = token.trim_start_matches("Bearer ").to_owned();
    // A player in the middle of things: settings changed, two quests under way.
    let r = c
        .call(
            rpc::settings::UPDATE.path,
            Some(&bearer),
            json!({"patch": {"masterVolume": 60, "fieldOfView": 95}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for quest in ["lanterns-on-the-mill-road", "herring-and-hearsay"] {
        let r = c
            .call(
                rpc::quest::ACCEPT.path,
                Some(&bearer),
                json!({"questId": quest}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let body = json!({"regionId": "hearthvale"});
    let one = c.call(BOOTSTRAP, Some(&bearer), body.clone()).await.json();
    assert!(
        one["degraded"].as_array().is_none_or(Vec::is_empty),
        "{one}"
    );
    assert_eq!(
        one["activeQuests"].as_array().map(Vec::len),
        Some(2),
        "{one}"
    );
    let bootstrap = Shape {
        path: BOOTSTRAP.into(),
        body: Bytes::from(body.to_string()),
        ..get.clone()
    };
    println!(
        "\nbootstrap benchmark: one answer is {} bytes of JSON; 64 connections, HTTP/1.1 over TLS, {}s x {rounds} rounds",
        one.to_string().len(),
        measure.as_secs()
    );
    warm_up(&[(&c, &get), (&c, &bootstrap)]).await;
    let pids = [edge.pid()];
    let r = compare(
        "bodybroker Bootstrap",
        Side {
            client: &c,
            shape: &get,
            pids: &pids,
        },
        Side {
            client: &c,
            shape: &bootstrap,
            pids: &pids,
        },
        rounds,
        warmup,
        measure,
    )
    .await;
    let x = |c: Option<f64>| c.map_or("n/a".to_owned(), |c| format!("{c:.2}x"));
    println!(
        "Bootstrap: {} state Get's CPU per request (worst round {}), goal <= 2.50x: {}; {:.2}x its req/s (worst round {:.2}x); p99 {:.2} ms, goal < 5 ms: {}",
        x(r.cpu),
        x(r.worst_cpu),
        verdict(r.cpu.is_some_and(|c| c <= 2.5)),
        r.rps,
        r.worst_rps,
        r.p99_ms,
        verdict(r.p99_ms < 5.0)
    );
    against_the_five_calls(&c, &bootstrap, &pids, rounds, warmup, measure).await;
}

/// Bootstrap against what it replaces: a client making the five calls itself. Each is driven
/// alone (64 connections), in turn with Bootstrap in every round; the five's CPU per request
/// add up to a session's, and a session's time at full load is the sum of the five's 1/rate.
async fn against_the_five_calls(
    c: &edge_e2e::Client,
    bootstrap: &Shape,
    pids: &[u32],
    rounds: usize,
    warmup: std::time::Duration,
    measure: std::time::Duration,
) {
    let region = json!({"regionId": "hearthvale"});
    let five: Vec<(&str, Shape)> = [
        ("settings Get", rpc::settings::GET.path, json!({})),
        ("quest GetLog", rpc::quest::GET_LOG.path, json!({})),
        (
            "world GetRegion",
            rpc::world::GET_REGION.path,
            region.clone(),
        ),
        ("weather Current", rpc::weather::CURRENT.path, region),
        ("time Now", rpc::time::NOW.path, json!({})),
    ]
    .into_iter()
    .map(|(name, path, body)| {
        (
            name,
            Shape {
                path: path.into(),
                body: Bytes::from(body.to_string()),
                ..bootstrap.clone()
            },
        )
    })
    .collect();
    let secs = |d: Option<std::time::Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
    let (mut cpu_ratios, mut rate_ratios) = (Vec::new(), Vec::new());
    println!("\nBootstrap against the five calls it replaces, {rounds} rounds:");
    for round in 1..=rounds.max(1) {
        let b = edge_e2e::load::run_measuring(c, bootstrap, 64, warmup, measure, pids).await;
        assert_eq!(b.errors, 0, "Bootstrap failed");
        let (mut cpu, mut time) = (0.0, 0.0);
        let mut parts = Vec::new();
        for (name, shape) in &five {
            let s = edge_e2e::load::run_measuring(c, shape, 64, warmup, measure, pids).await;
            assert_eq!(s.errors, 0, "{name} failed");
            cpu += secs(s.cpu_per_req);
            time += 1.0 / s.rps;
            parts.push(format!("{name} {:.0}/s", s.rps));
        }
        let cpu_ratio = secs(b.cpu_per_req) / cpu;
        let rate_ratio = b.rps * time;
        println!(
            "  round {round}: Bootstrap {:.0}/s {:.1} us CPU | five calls {:.1} us CPU, {:.0} sessions/s ({}) | {cpu_ratio:.2}x the CPU, {rate_ratio:.2}x the sessions per second",
            b.rps,
            secs(b.cpu_per_req) * 1e6,
            cpu * 1e6,
            1.0 / time,
            parts.join(", ")
        );
        cpu_ratios.push(cpu_ratio);
        rate_ratios.push(rate_ratio);
    }
    println!(
        "Bootstrap vs the five calls a client would make: {:.2}x their CPU, {:.2}x the sessions per second (median of {} rounds; one round trip instead of five)",
        edge_e2e::bench::median(cpu_ratios),
        edge_e2e::bench::median(rate_ratios),
        rounds.max(1)
    );
}
