//! Benchmark: bodybroker Bootstrap (five calls fanned out in-process: settings, quest log,
//! region, weather, time) against the foundation benchmark's state Get on the same edge, in the
//! same run, 64 connections each, ABBA rounds after a warm-up, the server on one core and the
//! load generator on the other.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench bootstrap`.
//! `BENCH_SECS` and `BENCH_ROUNDS` adjust it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use bytes::Bytes;
use edge_e2e::bench::{Side, compare, pin, pinned_edge, settings, state_get, verdict, warm_up};
use edge_e2e::load::Shape;
use serde_json::json;

const BOOTSTRAP: &str = "/aicore.bodybroker.v1.BodyBrokerService/Bootstrap";

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
            "/aicore.settings.v1.SettingsService/Update",
            Some(&bearer),
            json!({"patch": {"masterVolume": 60, "fieldOfView": 95}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for quest in ["lanterns-on-the-mill-road", "herring-and-hearsay"] {
        let r = c
            .call(
                "/aicore.quest.v1.QuestService/Accept",
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
    println!(
        "Bootstrap: {:.2}x state Get's req/s ({:.2}x its CPU per request), goal >= 0.50x: {}; p99 {:.2} ms, goal < 5 ms: {}",
        r.rps,
        r.cpu.unwrap_or(f64::NAN),
        verdict(r.rps >= 0.50),
        r.p99_ms,
        verdict(r.p99_ms < 5.0)
    );
}
