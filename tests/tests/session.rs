//! End-to-end: one player's first session, played from the API alone through the real binary, as
//! a game client and a game server would (README: "A whole session"). Every step is a call a
//! client makes; nothing is read from the content files or the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use edge_e2e::sse::{Sse, deltas};
use edge_e2e::{Edge, scenarios};
use proto::rpc;
use serde_json::{Value, json};

/// A number that proto3 JSON leaves out when it is 0, or writes as a string when it is 64-bit.
fn n(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_i64().unwrap(),
        _ => 0,
    }
}

/// Events of `sub` until one matches `want`, within `wait`; the others seen meanwhile.
async fn wait_for(sub: &mut Sse, wait: Duration, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(e) = sub.next_within(left).await else {
            break;
        };
        if e.comment || e.data.is_empty() {
            continue;
        }
        let event = e.json();
        if want(&event) {
            return event;
        }
        seen.push(event["type"].clone());
    }
    panic!("no such event within {wait:?}; saw {seen:?}");
}

#[tokio::test]
async fn a_new_player_plays_a_first_session_from_the_api_alone() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let game = edge.service_key("game-server", "bodybroker");
    let ops = edge.service_key("ops", "weather.Override,time.SetScale");

    // Register and log in.
    let me = scenarios::login(&c, "first-timer").await;
    let token = Some(me.access.as_str());

    // Bootstrap with no region: a new player is in the start region, level 1, nothing held.
    let boot = c
        .call(rpc::bodybroker::BOOTSTRAP.path, token, json!({}))
        .await;
    assert_eq!(boot.status, 200, "{}", boot.text());
    let boot = boot.json();
    assert_eq!(boot["degraded"], Value::Null, "{boot}");
    assert_eq!(boot["region"]["id"], "hearthvale", "{boot}");
    let view = &boot["player"];
    assert_eq!(view["regionId"], "hearthvale");
    assert_eq!(view["placed"], Value::Null, "not placed yet: {view}");
    assert_eq!(n(&view["progression"]["level"]), 1, "{view}");
    assert_eq!(n(&view["progression"]["experience"]), 0);
    assert_eq!(n(&view["progression"]["nextLevelExperience"]), 100);
    assert_eq!(n(&view["balance"]), 0);
    assert!(n(&view["inventory"]["capacity"]) > 0, "{view}");
    assert_eq!(view["inventory"]["items"], Value::Null, "{view}");

    // Follow the region's topic and the player's own.
    let topics = format!("/v1/events?topics=world.hearthvale,player.{}", me.player_id);
    let mut sub = Sse::get(&c, &topics, token, &[]).await;
    assert_eq!(sub.status, 200);

    // Who is here? Brenna Hale, captain of the watch; talk to her (streamed).
    let npcs = c
        .call(
            rpc::npc::LIST_NPCS.path,
            token,
            json!({"regionId": "hearthvale"}),
        )
        .await
        .json();
    let names: Vec<&str> = npcs["npcs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Brenna Hale"), "{names:?}");
    let talk = Sse::post(
        &c,
        rpc::npc::TALK.path,
        token,
        json!({"npcId": "brenna-hale", "text": "Good evening, captain. Any work for me?"}),
    )
    .await;
    assert_eq!(talk.status, 200);
    let said = talk.collect().await;
    assert!(!deltas(&said).trim().is_empty(), "{said:?}");

    // The first quest: listed with its text, accepted, drawn in the log.
    let open = c
        .call(rpc::quest::LIST_AVAILABLE.path, token, json!({}))
        .await
        .json();
    let first = open["quests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == "lanterns-on-the-mill-road")
        .cloned()
        .unwrap_or_else(|| panic!("{open}"));
    assert_eq!(first["title"], "Lanterns on the Mill Road");
    let accepted = c
        .call_with(
            rpc::quest::ACCEPT.path,
            token,
            &[("idempotency-key", "accept-lanterns")],
            json!({"questId": "lanterns-on-the-mill-road"}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    let log = c
        .call(rpc::quest::GET_LOG.path, token, json!({}))
        .await
        .json();
    let objectives = log["quests"][0]["quest"]["objectives"].clone();
    assert_eq!(
        objectives[0]["description"], "Relight the lanterns along the Mill Road",
        "{log}"
    );
    assert_eq!(n(&objectives[0]["targetCount"]), 6);

    // The game server places the player and reports what they do; every objective moves.
    let ingest = |id: &str, kind: &str, payload: Value| {
        c.call(
            rpc::bodybroker::INGEST_GAME_EVENT.path,
            Some(&game),
            json!({"event": {"id": id, "type": kind, "playerId": me.player_id,
                             "regionId": "hearthvale", "payload": payload}}),
        )
    };
    for (id, kind, payload) in [
        (
            "enter-1",
            "region_entered",
            json!({"x": 3010.0, "y": 48.0, "z": 1870.0}),
        ),
        (
            "lamps-1",
            "object_interacted",
            json!({"object": "mill-road-lantern", "count": 4}),
        ),
        (
            "lamps-2",
            "object_interacted",
            json!({"object": "mill-road-lantern", "count": 2}),
        ),
        (
            "wicks-1",
            "item_collected",
            json!({"item": "cut-wick", "count": 3}),
        ),
    ] {
        let r = ingest(id, kind, payload).await;
        assert_eq!(r.status, 200, "{kind}: {}", r.text());
    }
    let log = c
        .call(rpc::quest::GET_LOG.path, token, json!({}))
        .await
        .json();
    let counts: Vec<i64> = log["quests"][0]["quest"]["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| n(&o["count"]))
        .collect();
    assert_eq!(counts, [6, 3], "{log}");

    // Complete it: paid, levelled up, told so on the player's topic.
    let done = c
        .call_with(
            rpc::quest::COMPLETE.path,
            token,
            &[("idempotency-key", "complete-lanterns")],
            json!({"questId": "lanterns-on-the-mill-road"}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(n(&done.json()["levelsGained"]), 1, "{}", done.text());
    let leveled = wait_for(&mut sub, Duration::from_secs(10), |e| {
        e["type"] == "player.leveled"
    })
    .await;
    assert_eq!(leveled["topic"], format!("player.{}", me.player_id));

    // The reward is in the inventory; the player's view says level 2 and where they stand.
    let view = c
        .call(rpc::bodybroker::GET_PLAYER.path, token, json!({}))
        .await
        .json();
    let player = &view["player"];
    assert_eq!(n(&player["progression"]["level"]), 2, "{view}");
    assert_eq!(player["placed"], true, "{view}");
    assert_eq!(n(&player["balance"]), 250);
    let held = |p: &Value, sku: &str| {
        p["inventory"]["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["sku"] == sku)
            .map_or(0, |i| n(&i["quantity"]))
    };
    assert_eq!(held(player, "lantern_oil"), 1, "{view}");

    // Buy a healing draught: the money goes, the draught arrives, in one step.
    let bought = c
        .call_with(
            rpc::payment::PURCHASE.path,
            token,
            &[("idempotency-key", "buy-draught")],
            json!({"sku": "minor_healing_draught", "quantity": 1}),
        )
        .await;
    assert_eq!(bought.status, 200, "{}", bought.text());
    let player = c
        .call(rpc::bodybroker::GET_PLAYER.path, token, json!({}))
        .await
        .json()["player"]
        .clone();
    assert_eq!(n(&player["balance"]), 100);
    assert_eq!(held(&player, "minor_healing_draught"), 1, "{player}");

    // The weather turns (an operator's storm) and the subscription hears it at once.
    let r = c
        .call(
            rpc::weather::OVERRIDE.path,
            Some(&ops),
            json!({"regionId": "hearthvale", "condition": "CONDITION_STORM", "durationMinutes": 60}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let storm = wait_for(&mut sub, Duration::from_secs(10), |e| {
        e["type"] == "weather.changed"
    })
    .await;
    assert_eq!(storm["payload"]["condition"], "CONDITION_STORM", "{storm}");

    // And the day moves on by itself: with the clock fast, the next part of the day arrives.
    let r = c
        .call(
            rpc::time::SET_SCALE.path,
            Some(&ops),
            json!({"scale": 1000.0}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let period = wait_for(&mut sub, Duration::from_secs(40), |e| {
        e["type"] == "time.period_began"
    })
    .await;
    assert_eq!(period["topic"], "world.hearthvale");

    // Attacker's steps: another player's view is not theirs to read, and no game server can
    // claim a talk with an NPC (talked_to is npc's to report).
    let other = scenarios::login(&c, "second-timer").await;
    let theirs = c
        .call(
            rpc::bodybroker::GET_PLAYER.path,
            Some(&other.access),
            json!({"playerId": me.player_id}),
        )
        .await;
    assert_eq!(theirs.status, 403, "{}", theirs.text());
    let forged = ingest("forged-1", "talked_to", json!({"npc": "brenna-hale"})).await;
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert!(forged.text().contains("talked_to"), "{}", forged.text());

    // Back from a restart of the client: Bootstrap with no region finds the player placed.
    let boot = c
        .call(rpc::bodybroker::BOOTSTRAP.path, token, json!({}))
        .await
        .json();
    assert_eq!(boot["player"]["placed"], true, "{boot}");
    assert_eq!(boot["region"]["id"], "hearthvale");
}
