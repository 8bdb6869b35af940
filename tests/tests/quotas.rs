//! What a player can make the server store outside the state quota is bounded too: events on
//! their own topic (small payloads, the log's newest 1,000 a topic) and per-device performance
//! records (a few device models; a new one evicts the least recently reported). SECURITY.md 23.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use edge_e2e::{Edge, scenarios};
use proto::rpc;
use serde_json::json;

#[tokio::test]
async fn a_players_own_topic_and_device_records_are_bounded() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "hoarder").await;
    let topic = format!("player.{}", me.player_id);

    // Attacker's step: fill the own topic with large events. Over 4 KiB each is refused.
    let r = c
        .call(
            rpc::events::PUBLISH.path,
            Some(&me.access),
            json!({"topic": topic, "type": "note", "payload": {"text": "x".repeat(5000)}}),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["code"], "resource_exhausted");
    let r = c
        .call(
            rpc::events::PUBLISH.path,
            Some(&me.access),
            json!({"topic": topic, "type": "note", "payload": {"text": "x".repeat(3000)}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Attacker's step: a new device model with every report. The handheld adapted first is
    // forgotten once eight newer models were reported: its recommendation is the capability
    // tier's again (render scale 100, not the adapted 90).
    let device = |model: &str| {
        json!({"model": model, "gpu": "Steam Deck APU", "gpuMemoryMb": 1024, "cpuCores": 4,
            "memoryMb": 16384, "displayWidth": 1280, "displayHeight": 800, "refreshRateHz": 60})
    };
    let slow = |model: &str| json!({"device": device(model), "averageFrameMs": 24.0, "p95FrameMs": 31.0, "sampleCount": 600});
    for _ in 0..3 {
        let r = c
            .call(
                rpc::perf::REPORT_FRAME_STATS.path,
                Some(&me.access),
                slow("Fabrikam Handheld"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let scale = async |model: &str| {
        c.call(
            rpc::perf::RECOMMEND.path,
            Some(&me.access),
            json!({"device": device(model)}),
        )
        .await
        .json()["renderScalePercent"]
            .clone()
    };
    assert_eq!(scale("Fabrikam Handheld").await, 90);
    for n in 0..8 {
        let r = c
            .call(
                rpc::perf::REPORT_FRAME_STATS.path,
                Some(&me.access),
                slow(&format!("Forged Model {n}")),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(
        scale("Fabrikam Handheld").await,
        100,
        "the least recently reported model was evicted"
    );
    assert_eq!(
        scale("Forged Model 7").await,
        100,
        "one report adapts nothing yet"
    );
}
