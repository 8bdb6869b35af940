//! Benchmark: world QueryEntities over a region holding 10,000 entities, with a box covering about
//! 1% of it, against a bare axum+rustls server sending the very same answer bytes (recorded from
//! the edge) for the same request bytes, JSON and protobuf, in the same run, 64 connections each,
//! ABBA rounds after a warm-up, servers on one core and the load generator on the other. Also how
//! many entity records a query reads against how many it answers.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench world`.
//! `BENCH_SECS`, `BENCH_ROUNDS`, `BENCH_ENTITIES` (default 10000) adjust it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use bytes::Bytes;
use edge_e2e::bench::{
    Side, answering_bare, compare, pin, pinned_edge, record_answer, settings, state_get, verdict,
    warm_up,
};
use edge_e2e::load::Shape;
use http::Method;
use prost::Message as _;
use proto::aicore::world::v1 as world;
use proto::rpc;
use serde_json::json;

const UPSERT: &str = rpc::world::UPSERT_ENTITY.path;
const QUERY: &str = rpc::world::QUERY_ENTITIES.path;

#[tokio::main]
async fn main() {
    let (warmup, measure, rounds) = settings();
    let entities: usize = std::env::var("BENCH_ENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let cpus = pin();
    let tmp = tempfile::tempdir().unwrap();
    let (edge, c) = pinned_edge(tmp.path(), cpus);
    let gs = edge.service_key("gs", "world");

    // Hearthvale is 2000 m x 2000 m: spread the entities over it (a fixed pseudo-random layout).
    let started = std::time::Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 2_000_000) as f64 / 1000.0
    };
    let points: Vec<(f64, f64)> = (0..entities).map(|_| (next(), next())).collect();
    let mut tasks = Vec::new();
    for chunk in points
        .chunks(entities.div_ceil(32))
        .map(<[_]>::to_vec)
        .enumerate()
    {
        let (c, gs) = (c.clone(), gs.clone());
        tasks.push(tokio::spawn(async move {
            let (i0, pts) = chunk;
            for (j, (px, pz)) in pts.into_iter().enumerate() {
                let id = format!("e{}-{j}", i0);
                let kind = ["npc", "item", "player"][j % 3];
                let r = c
                    .call(
                        UPSERT,
                        Some(&gs),
                        json!({"entity": {"id": id, "regionId": "hearthvale", "kind": kind,
                            "position": {"x": 2000.0 + px, "y": 10.0, "z": pz}}}),
                    )
                    .await;
                assert_eq!(r.status, 200, "{}", r.text());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "\nworld benchmark: {entities} entities in hearthvale (filled in {:.0} s); 64 connections, HTTP/1.1 over TLS, {}s x {rounds} rounds",
        started.elapsed().as_secs_f64(),
        measure.as_secs()
    );

    let get = state_get(&c).await;
    let token = get.headers[1].1.clone();
    // 200 m x 200 m: 1% of the region's area.
    let body = json!({"regionId": "hearthvale", "limit": 500,
        "within": {"min": {"x": 2900.0, "y": 0.0, "z": 900.0}, "max": {"x": 3100.0, "y": 100.0, "z": 1100.0}}});
    let query = Shape {
        method: Method::POST,
        path: QUERY.into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), token.clone()),
        ],
        body: Bytes::from(body.to_string()),
    };
    // With the game server's key: `scanned` is for services only.
    let one = c.call(QUERY, Some(&gs), body).await.json();
    let answered = one["entities"].as_array().map_or(0, Vec::len);
    let scanned = one["scanned"].as_u64().unwrap_or(0);
    println!(
        "one query answers {answered} entities and reads {scanned} records ({:.1}x the answer; the region holds {entities})",
        scanned as f64 / answered.max(1) as f64
    );
    // The baseline: a bare server sending the very bytes of the edge's answer (recorded once),
    // for the same request bytes, so the ratio is what the edge adds to writing them out.
    let (bare_proc, bare) = answering_bare(env!("CARGO_BIN_EXE_bare-hello"), tmp.path(), cpus);
    let base_pids = [bare_proc.0.id()];
    let pids = [edge.pid()];
    let (query_base, json_bytes) = record_answer(&c, &bare, &query).await;
    warm_up(&[(&bare, &query_base), (&c, &query)]).await;
    let r = compare(
        &format!("world QueryEntities (1% box), JSON, vs bare sending its {json_bytes} bytes"),
        Side {
            client: &bare,
            shape: &query_base,
            pids: &base_pids,
        },
        Side {
            client: &c,
            shape: &query,
            pids: &pids,
        },
        rounds,
        warmup,
        measure,
    )
    .await;
    // The same in Connect's binary protobuf encoding (what a game client would send).
    let proto_shape = |s: &Shape, body: Vec<u8>| Shape {
        headers: s
            .headers
            .iter()
            .map(|(k, v)| {
                if k == "content-type" {
                    (k.clone(), "application/proto".to_owned())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect(),
        body: Bytes::from(body),
        ..s.clone()
    };
    let v = |x, y, z| Some(world::Vec3 { x, y, z });
    let query_bin = proto_shape(
        &query,
        world::QueryEntitiesRequest {
            region_id: "hearthvale".into(),
            within: Some(world::Box {
                min: v(2900.0, 0.0, 900.0),
                max: v(3100.0, 100.0, 1100.0),
            }),
            kind: String::new(),
            limit: 500,
            page_token: String::new(),
        }
        .encode_to_vec(),
    );
    let (query_bin_base, proto_bytes) = record_answer(&c, &bare, &query_bin).await;
    warm_up(&[(&bare, &query_bin_base), (&c, &query_bin)]).await;
    let p = compare(
        &format!("world QueryEntities (1% box), protobuf, vs bare sending its {proto_bytes} bytes"),
        Side {
            client: &bare,
            shape: &query_bin_base,
            pids: &base_pids,
        },
        Side {
            client: &c,
            shape: &query_bin,
            pids: &pids,
        },
        rounds,
        warmup,
        measure,
    )
    .await;
    let x = |c: Option<f64>| c.map_or("n/a".to_owned(), |c| format!("{c:.2}x"));
    for (name, bytes, r) in [("JSON", json_bytes, r), ("protobuf", proto_bytes, p)] {
        println!(
            "QueryEntities over {entities} entities, {name} ({bytes} bytes): {:.2}x the req/s of a bare server sending the same bytes (worst round {:.2}x), {} its CPU per request (worst {}); goal >= 0.50x: {}",
            r.rps,
            r.worst_rps,
            x(r.cpu),
            x(r.worst_cpu),
            verdict(r.rps >= 0.50)
        );
    }
    println!("one query reads {scanned} entity copies for {answered} answered");
}
