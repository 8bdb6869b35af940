//! Benchmark: the cost of one call between services, in-process through the router (the typed
//! client, protobuf encode and decode, the call's checks, the idempotency layer and the router
//! with its metrics) against calling the handler directly, in a loop, alternating over rounds.
//! The call is world.GetRegion (a store read), made as weather, which declares it.
//! Run: `cargo bench -p edge --bench calls`. `BENCH_CALLS` (default 200000) per round.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use handlers::Context;
use proto::aicore::weather::v1::WEATHER_SERVICE;
use proto::aicore::world::v1::{
    GetRegionRequest, WORLD_SERVICE, WorldServiceClient, WorldServiceHandler as _,
};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u32 = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let config = edge::Config {
        data_dir: dir.path().to_owned(),
        ..edge::Config::default()
    };
    let state = edge::AppState::open(config).await.unwrap();
    let direct = handlers::services::world::WorldService::new(
        state.store(),
        Arc::new(
            <handlers::services::world::Regions as handlers::kit::content::Content>::embedded()
                .unwrap(),
        ),
        state.caller(WORLD_SERVICE),
    );
    let client = WorldServiceClient(state.caller(WEATHER_SERVICE));
    let req = || GetRegionRequest {
        region_id: "thornwood".into(),
    };
    let ctx = Context::default();

    let time_direct = async || {
        let t = Instant::now();
        for _ in 0..n {
            let r = direct.get_region(ctx.clone(), req()).await.unwrap();
            std::hint::black_box(r);
        }
        t.elapsed() / n
    };
    let time_routed = async || {
        let t = Instant::now();
        for _ in 0..n {
            let r = client.get_region(ctx.outgoing(), req()).await.unwrap();
            std::hint::black_box(r);
        }
        t.elapsed() / n
    };
    // Warm-up.
    time_direct().await;
    time_routed().await;
    println!(
        "\ncall between services, in-process: {n} calls per round, world.GetRegion as weather"
    );
    let mut added = Vec::new();
    for round in 1..=6 {
        let (d, r) = if round % 2 == 1 {
            let d = time_direct().await;
            (d, time_routed().await)
        } else {
            let r = time_routed().await;
            (time_direct().await, r)
        };
        let extra = r.saturating_sub(d);
        println!(
            "  round {round}: direct {:.2} us | through the router {:.2} us | added {:.2} us",
            us(d),
            us(r),
            us(extra)
        );
        added.push(extra);
    }
    added.sort();
    let median = (added[2] + added[3]) / 2;
    println!(
        "added per call (median of 6): {:.2} us; goal < 2 us: {}",
        us(median),
        if median < Duration::from_micros(2) {
            "met"
        } else {
            "MISSED"
        }
    );
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
