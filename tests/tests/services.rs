//! End-to-end: calls between services (in the edge, on a worker, both ways), and the world,
//! time and weather services through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use edge_e2e::nats::Nats;
use edge_e2e::{Edge, scenarios};
use futures_util::StreamExt as _;
use serde_json::json;

const CURRENT: &str = rpc::weather::CURRENT.path;
const FORECAST: &str = rpc::weather::FORECAST.path;
const UPSERT: &str = rpc::world::UPSERT_ENTITY.path;
const QUERY: &str = rpc::world::QUERY_ENTITIES.path;
const NOW: &str = rpc::time::NOW.path;
const SET_SCALE: &str = rpc::time::SET_SCALE.path;
const SCHEDULE: &str = rpc::time::SCHEDULE.path;
const REPLAY: &str = rpc::events::REPLAY.path;

/// Calls `path` until it stops answering 503 (a responder still registering), at most 10 s.
async fn settled(
    c: &edge_e2e::Client,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: serde_json::Value,
) -> edge_e2e::Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.call_with(path, token, extra, body.clone()).await;
        if r.status != 503 || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Watches the requests on `subject` (a plain subscription sees every one, answering none).
async fn watch(nats: &Nats, subject: &str) -> async_nats::Subscriber {
    let client = nats.client().await;
    let sub = client.subscribe(subject.to_owned()).await.unwrap();
    client.flush().await.unwrap();
    sub
}

fn header<'a>(h: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    h?.get(name).map(|v| v.as_str())
}

/// The seam, one way or the other: weather calls world.GetRegion and time.Now wherever they are.
async fn weather_reaches_world(edge: &Edge, nats: &Nats) {
    let c = edge.client();
    let token = scenarios::login(&c, "seam").await.access;
    let mut seen = watch(nats, "svc.world.v1.get_region").await;

    // A downstream not_found keeps its code and message.
    let r = settled(
        &c,
        CURRENT,
        Some(&token),
        &[("connect-timeout-ms", "4000")],
        json!({"regionId": "atlantis"}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["code"], "not_found");
    assert_eq!(r.json()["message"], "no region \"atlantis\"");

    // The deadline, request id and chain reached the callee.
    let msg = tokio::time::timeout(Duration::from_secs(5), seen.next())
        .await
        .expect("world.GetRegion crossed NATS")
        .unwrap();
    let h = msg.headers.as_ref();
    let budget: u64 = header(h, "Edge-Deadline-Ms").unwrap().parse().unwrap();
    assert!(
        (1000..=4000).contains(&budget),
        "the client's 4 s budget, less what was spent: {budget}"
    );
    assert_eq!(header(h, "Edge-Call-Chain"), Some("weather"));
    assert!(header(h, "X-Request-Id").is_some_and(|id| !id.is_empty()));
    assert!(
        header(h, "Edge-Principal").is_none(),
        "the caller is derived, never claimed"
    );

    // And a real answer, from the chain of calls.
    let r = c
        .call(CURRENT, Some(&token), json!({"regionId": "greyspire"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let w = &r.json()["weather"];
    assert_eq!(w["regionId"], "greyspire");
    assert!(w["condition"].as_str().unwrap().starts_with("CONDITION_"));
}

#[tokio::test]
async fn a_service_on_a_worker_calls_a_service_in_the_edge() {
    let nats = Nats::start("");
    let url = nats.url();
    let _worker = Edge::start_worker(&["--nats", &url, "--services", "weather"]);
    let edge = Edge::start(&["--nats", &url, "--remote", "weather"]);
    weather_reaches_world(&edge, &nats).await;
    let routes = edge.admin_json("/admin/routes").await;
    let weather = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "weather")
        .unwrap()
        .clone();
    assert_eq!(weather["target"], "nats");
    assert_eq!(
        weather["calls"],
        json!([
            "events.Publish",
            "time.Now",
            "world.GetRegion",
            "world.ListRegions"
        ])
    );
}

#[tokio::test]
async fn a_service_in_the_edge_calls_a_service_on_a_worker() {
    let nats = Nats::start("");
    let url = nats.url();
    let _worker = Edge::start_worker(&["--nats", &url, "--services", "world,time"]);
    let edge = Edge::start(&["--nats", &url, "--remote", "world,time"]);
    weather_reaches_world(&edge, &nats).await;
}

#[tokio::test]
async fn what_arrives_over_nats_is_checked_where_it_arrives() {
    let nats = Nats::start("");
    let url = nats.url();
    let edge = Edge::start(&["--nats", &url]);
    let client = nats.client().await;
    let ask = |subject: &'static str, chain: &'static str| {
        let client = client.clone();
        async move {
            let mut h = HeaderMap::new();
            h.insert("Edge-Call-Chain", chain);
            h.insert("Edge-Deadline-Ms", "2000");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                // Signed as a worker signs its calls: what is checked here is the chain.
                let mut h = h.clone();
                edge_e2e::nats::sign(subject, &mut h);
                let reply = client.request_with_headers(subject, h, Bytes::new()).await;
                match reply {
                    Ok(m) => return m,
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("no reply on {subject}: {e}"),
                }
            }
        }
    };
    // weather never declared calling payment: refused, whatever it claims.
    let m = ask("svc.payment.v1.get_balance", "weather").await;
    assert_eq!(
        header(m.headers.as_ref(), "Connect-Code"),
        Some("permission_denied")
    );
    // A cycle: world calling, through weather, back into world.
    let m = ask("svc.world.v1.get_region", "world,weather").await;
    assert_eq!(
        header(m.headers.as_ref(), "Connect-Code"),
        Some("failed_precondition")
    );
    // Declared and acyclic: answered (an empty region id is the callee's invalid_argument).
    let m = ask("svc.time.v1.now", "weather").await;
    assert_eq!(header(m.headers.as_ref(), "Connect-Code"), None, "{m:?}");
    drop(edge);
}

#[tokio::test]
async fn every_service_is_local_in_a_plain_edge_and_the_graph_is_shown() {
    let edge = Edge::start(&[]);
    let routes = edge.admin_json("/admin/routes").await;
    let routes = routes["routes"].as_array().unwrap();
    for svc in ["world", "time", "weather", "events", "payment"] {
        let r = routes.iter().find(|r| r["service"] == svc).unwrap();
        assert_eq!(r["target"], "local", "{svc}");
    }
    let time = routes.iter().find(|r| r["service"] == "time").unwrap();
    let callers = time["calledBy"].as_array().unwrap();
    assert!(callers.contains(&json!("weather")), "{callers:?}");
}

#[tokio::test]
async fn world_entities_over_https_with_events_on_the_region_topic() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let key = edge.service_key("gs", "world,events");
    let player = scenarios::login(&c, "wanderer").await.access;
    let regions = c
        .call(rpc::world::LIST_REGIONS.path, Some(&player), json!({}))
        .await;
    assert_eq!(regions.status, 200);
    assert!(regions.json()["regions"].as_array().unwrap().len() >= 8);

    let wolf = json!({"entity": {"id": "wolf-7", "regionId": "thornwood", "kind": "npc",
        "position": {"x": 2500.0, "y": 40.0, "z": 2500.0}, "attributes": {"pack": "grey"}},
        "expectedVersion": "0"});
    let r = c.call(UPSERT, Some(&key), wolf.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let version = r.json()["entity"]["version"].as_str().unwrap().to_owned();
    // A player may not move the world.
    assert_eq!(
        c.call(UPSERT, Some(&player), wolf.clone()).await.status,
        403
    );
    // Stale CAS: 409, and the entity is unchanged.
    let r = c.call(UPSERT, Some(&key), wolf).await;
    assert_eq!(r.status, 409);
    let q = c
        .call(
            QUERY,
            Some(&player),
            json!({"regionId": "thornwood", "within": {"min": {"x": 2400, "y": 0, "z": 2400},
                "max": {"x": 2500, "y": 100, "z": 2500}}}),
        )
        .await;
    assert_eq!(q.status, 200, "{}", q.text());
    let found = q.json()["entities"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["version"], version.as_str());

    let events = c
        .call(REPLAY, Some(&key), json!({"topic": "world.thornwood"}))
        .await;
    // Corvin Ashdown's body, placed from npc content on the region's first read, is news too.
    let events: Vec<serde_json::Value> = events.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["payload"]["id"] != "npc-corvin-ashdown")
        .cloned()
        .collect();
    assert_eq!(events.len(), 1, "one event for one change: {events:?}");
    assert_eq!(events[0]["type"], "world.entity.upserted");
    assert_eq!(events[0]["payload"]["id"], "wolf-7");
}

/// An int64 as the proto3 JSON mapping writes it: a string, absent when 0.
fn int64(v: &serde_json::Value) -> i64 {
    match v {
        serde_json::Value::Null => 0,
        serde_json::Value::String(s) => s.parse().unwrap(),
        other => panic!("not an int64: {other}"),
    }
}

async fn game_now(c: &edge_e2e::Client, token: &str) -> i64 {
    let r = c.call(NOW, Some(token), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    int64(&r.json()["gameTimeMs"])
}

async fn replayed(c: &edge_e2e::Client, key: &str, topic: &str) -> Vec<serde_json::Value> {
    let r = c
        .call(REPLAY, Some(key), json!({"topic": topic, "limit": 1000}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // An empty list is absent in the proto3 JSON mapping.
    r.json()["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_scheduled_event_fires_once_across_a_kill_and_a_restart() {
    let edge = Edge::start(&[]);
    let admin = edge.service_key("ops", "time.SetScale,time,events");
    let c = edge.client();
    let r = c.call(SET_SCALE, Some(&admin), json!({"scale": 1.0})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let now = game_now(&c, &admin).await;
    let r = c
        .call(
            SCHEDULE,
            Some(&admin),
            json!({"fireAtGameTimeMs": (now + 2500).to_string(), "topic": "world.hearthvale",
                "type": "festival.begins", "payload": {"festival": "Harvest Moon"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Killed before it is due; it falls due while the process is down.
    edge.signal("KILL");
    let mut edge = edge;
    edge.wait_exit(Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let edge = edge.restart();
    let c = edge.client();
    let deadline = Instant::now() + Duration::from_secs(10);
    while replayed(&c, &admin, "world.hearthvale").await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the due event fired at start: {}",
            edge.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = replayed(&c, &admin, "world.hearthvale").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "festival.begins");
    assert_eq!(events[0]["payload"]["festival"], "Harvest Moon");
    let left = c
        .call(rpc::time::LIST_SCHEDULED.path, Some(&admin), json!({}))
        .await;
    assert_eq!(
        left.json()["events"],
        serde_json::Value::Null,
        "and it is recorded as fired"
    );
}

#[tokio::test]
async fn two_replicas_on_jetstream_fire_each_event_once() {
    let nats = Nats::start("");
    let url = nats.url();
    let a = Edge::start(&["--nats", &url, "--store", "jetstream"]);
    let b = Edge::start(&["--nats", &url, "--store", "jetstream"]);
    let key = edge_e2e::jetstream_service_key(&url, "ops", "time.SetScale,time,events");
    let (ca, cb) = (a.client(), b.client());
    let r = ca.call(SET_SCALE, Some(&key), json!({"scale": 1.0})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let now = game_now(&cb, &key).await;
    // Scheduled through both replicas in turn, so each one's scheduler has events of its own to
    // fire; the test then checks that both fired (each in its log), not only that none doubled.
    for i in 0..12 {
        let via = if i % 2 == 0 { &ca } else { &cb };
        let r = via
            .call(
                SCHEDULE,
                Some(&key),
                json!({"fireAtGameTimeMs": (now + 500 + i * 50).to_string(),
                    "topic": "world.saltmere", "payload": {"bell": i}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events = replayed(&ca, &key, "world.saltmere").await;
        if events.len() >= 12 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = replayed(&cb, &key, "world.saltmere").await;
    let mut bells: Vec<i64> = events
        .iter()
        .map(|e| e["payload"]["bell"].as_f64().unwrap() as i64)
        .collect();
    bells.sort_unstable();
    assert_eq!(bells, (0..12).collect::<Vec<_>>(), "each once, none twice");
    for (name, edge) in [("a", &a), ("b", &b)] {
        assert!(
            edge.logs().contains("scheduled event fired"),
            "replica {name}'s scheduler fired nothing: the test would pass with one scheduler"
        );
    }
}

#[tokio::test]
async fn the_forecast_is_what_current_says_through_the_binary() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let admin = edge.service_key("ops", "time.SetScale,time,weather");
    // Frozen clock: the forecast's first hour is checked by moving the clock there.
    let r = c.call(SET_SCALE, Some(&admin), json!({"scale": 0.0})).await;
    assert_eq!(r.status, 200);
    let f = c
        .call(
            FORECAST,
            Some(&admin),
            json!({"regionId": "dunmar", "hours": 3}),
        )
        .await;
    assert_eq!(f.status, 200, "{}", f.text());
    let first = f.json()["hourly"][0].clone();
    let at = int64(&first["gameTimeMs"]);
    let now = game_now(&c, &admin).await;
    // Run the clock at 1000x until that hour has come.
    c.call(SET_SCALE, Some(&admin), json!({"scale": 1000.0}))
        .await;
    tokio::time::sleep(Duration::from_millis(((at - now) / 1000 + 20) as u64)).await;
    c.call(SET_SCALE, Some(&admin), json!({"scale": 0.0})).await;
    let cur = c
        .call(CURRENT, Some(&admin), json!({"regionId": "dunmar"}))
        .await
        .json()["weather"]
        .clone();
    let cur_at = int64(&cur["gameTimeMs"]);
    assert!(
        cur_at >= at && cur_at < at + 3_600_000,
        "{cur_at} in the hour of {at}"
    );
    for field in ["condition", "temperatureC", "windMps", "precipitation"] {
        assert_eq!(cur[field], first[field], "{field}");
    }
}

#[tokio::test]
async fn npcs_perceive_and_decide_through_the_binary() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let gs = edge.service_key("gs", "npc");
    let player = scenarios::login(&c, "villager").await.access;
    let perceive = json!({"npcId": "brenna-hale", "stimuli": [
        {"kind": "threat", "intensity": 1.0, "sourceId": "wolf-7"},
        {"kind": "threat", "intensity": 1.0, "sourceId": "wolf-8"}]});
    // Players watch NPCs; only the game server tells them what happened.
    assert_eq!(
        c.call(rpc::npc::PERCEIVE.path, Some(&player), perceive.clone())
            .await
            .status,
        403
    );
    let r = c.call(rpc::npc::PERCEIVE.path, Some(&gs), perceive).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["npc"]["needs"]["safety"], 1.0);
    let d = c
        .call(
            rpc::npc::DECIDE.path,
            Some(&gs),
            json!({"npcId": "brenna-hale"}),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text());
    assert_eq!(d.json()["action"], "flee");
    let seen = c
        .call(
            rpc::npc::GET_NPC.path,
            Some(&player),
            json!({"npcId": "brenna-hale"}),
        )
        .await;
    assert_eq!(seen.json()["npc"]["currentAction"], "flee");
    assert_eq!(seen.json()["npc"]["name"], "Brenna Hale");
    // The region hears both changes players can see: her mood into "hostile", then her flight;
    // what ListNpcs shows, never her needs.
    let replay = c
        .call(
            rpc::events::REPLAY.path,
            Some(&player),
            json!({"topic": "world.hearthvale", "limit": 1000}),
        )
        .await
        .json();
    let changes: Vec<serde_json::Value> = replay["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "npc.changed")
        .cloned()
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    for e in &changes {
        assert_eq!(e["payloadType"], "aicore.npc.v1.NpcChanged");
        assert_eq!(e["publisher"]["service"], "npc");
        assert_eq!(e["payload"]["npc"]["id"], "brenna-hale");
        assert!(e["payload"]["npc"].get("needs").is_none());
    }
    assert_eq!(changes[0]["payload"]["previousMoodLabel"], "neutral");
    assert_eq!(changes[0]["payload"]["npc"]["moodLabel"], "hostile");
    assert_eq!(changes[1]["payload"]["currentAction"], "flee");
    let bad = c
        .call(
            rpc::npc::DECIDE.path,
            Some(&gs),
            json!({"npcId": "brenna-hale", "candidateActions": ["juggle"]}),
        )
        .await;
    assert_eq!(bad.status, 400);
    let nobody = c
        .call(
            rpc::npc::GET_NPC.path,
            Some(&player),
            json!({"npcId": "nobody"}),
        )
        .await;
    assert_eq!(nobody.status, 404);
}

#[tokio::test]
async fn players_find_greet_and_talk_to_npcs_through_the_binary() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "wayfarer").await;
    let gs = edge.service_key("gs", "world,bodybroker");
    // ListNpcs: Brenna stands in Hearthvale, with a public description and a mood.
    let list = c
        .call(
            rpc::npc::LIST_NPCS.path,
            Some(&me.access),
            json!({"regionId": "hearthvale"}),
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text());
    let npcs = list.json()["npcs"].as_array().unwrap().clone();
    let brenna = npcs.iter().find(|n| n["id"] == "brenna-hale").unwrap();
    assert_eq!(brenna["moodLabel"], "neutral", "{brenna}");
    assert!(
        brenna["description"]
            .as_str()
            .unwrap()
            .contains("Hearth watch")
    );
    // Her body is a world entity a player's box query finds, and a game server cannot remove.
    let found = c
        .call(
            QUERY,
            Some(&me.access),
            json!({"regionId": "hearthvale", "kind": "npc",
                   "within": {"min": {"x": 2900, "y": -20, "z": 800}, "max": {"x": 3100, "y": 320, "z": 1000}}}),
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.text());
    assert!(found.text().contains("npc-brenna-hale"), "{}", found.text());
    let removed = c
        .call_with(
            rpc::world::REMOVE_ENTITY.path,
            Some(&gs),
            &[("idempotency-key", "rm-brenna")],
            json!({"regionId": "hearthvale", "entityId": "npc-brenna-hale"}),
        )
        .await;
    assert_eq!(
        removed.json()["code"],
        "failed_precondition",
        "{}",
        removed.text()
    );
    // A greeting moves her mood once per key; a game server's npc_greeted does too.
    let greet = || {
        c.call_with(
            rpc::npc::INTERACT.path,
            Some(&me.access),
            &[("idempotency-key", "hello-1")],
            json!({"npcId": "brenna-hale", "kind": "INTERACTION_KIND_GREET"}),
        )
    };
    let first = greet().await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        greet().await.json()["effect"]["moodDelta"],
        first.json()["effect"]["moodDelta"]
    );
    let event = json!({"event": {"id": "greet-1", "type": "npc_greeted", "playerId": me.player_id,
        "regionId": "hearthvale", "payload": {"npc": "brenna-hale"}}});
    let r = c
        .call(rpc::bodybroker::INGEST_GAME_EVENT.path, Some(&gs), event)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deliveredTo"], json!(["npc", "events"]));
    // Talk streams her answer from the built-in model, and says what lore she spoke from.
    let s = edge_e2e::sse::Sse::post(
        &c,
        rpc::npc::TALK.path,
        Some(&me.access),
        json!({"npcId": "brenna-hale", "text": "Who keeps putting out the Mill Road lanterns?"}),
    )
    .await;
    assert_eq!(s.status, 200);
    let events = s.collect().await;
    // The built-in model speaks from her own world: her name, nothing of another game's.
    let said = edge_e2e::sse::deltas(&events);
    assert!(said.contains("Brenna Hale"), "{said}");
    for wrong in ["old mill", "sunken chapel", "dragon", "blacksmith"] {
        assert!(!said.to_lowercase().contains(wrong), "{wrong} in {said}");
    }
    // And the narrator of the Ashfen arc knows no mill and no dragon.
    let s = edge_e2e::sse::Sse::post(
        &c,
        rpc::story::NARRATE.path,
        Some(&me.access),
        json!({"arcId": "the-drowned-bell", "cue": "the punt scrapes the jetty"}),
    )
    .await;
    assert_eq!(s.status, 200);
    let narrated = s.collect().await;
    let told = edge_e2e::sse::deltas(&narrated);
    assert!(told.contains("Ashfen Marsh"), "{told}");
    assert!(!told.contains('['), "nothing was left out: {told}");
    // Its last event lists the lore it was grounded in: Ashfen's, as the library holds it.
    let end = narrated
        .iter()
        .rfind(|e| e.event.is_none() && !e.comment)
        .unwrap()
        .json();
    let used = end["documents"].as_array().cloned().unwrap_or_default();
    assert!(!used.is_empty(), "{end}");
    let mut sources = String::new();
    for id in &used {
        let d = c
            .call(rpc::kb::GET.path, Some(&me.access), json!({"id": id}))
            .await
            .json();
        assert!(
            d["document"]["tags"]
                .as_array()
                .unwrap()
                .contains(&json!("ashfen")),
            "{d}"
        );
        sources.push_str(&d["document"]["body"].as_str().unwrap().to_lowercase());
    }
    // Nothing the world does not say: a word of the list only where a document used says it.
    for wrong in ["mill", "dragon", "greywood", "the crown"] {
        assert!(
            !told.to_lowercase().contains(wrong) || sources.contains(wrong),
            "{wrong} in {told}"
        );
    }
    let last = events
        .iter()
        .rfind(|e| e.event.is_none() && !e.comment)
        .unwrap()
        .json();
    assert_eq!(last["loreUsed"][0], "brenna-hale", "{last}");
    let long = edge_e2e::sse::Sse::post(
        &c,
        rpc::npc::TALK.path,
        Some(&me.access),
        json!({"npcId": "brenna-hale", "text": "a".repeat(301)}),
    )
    .await;
    assert_eq!(long.status, 400);
}

#[tokio::test]
async fn perf_adapts_a_players_device_and_keeps_it_across_a_restart() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let player = scenarios::login(&c, "gamer").await.access;
    let device = json!({"model": "Fabrikam Handheld", "gpu": "Steam Deck APU",
        "gpuMemoryMb": 1024, "cpuCores": 4, "memoryMb": 16384,
        "displayWidth": 1280, "displayHeight": 800, "refreshRateHz": 60});
    let r = c
        .call(
            rpc::perf::RECOMMEND.path,
            Some(&player),
            json!({"device": device}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tier"], "TIER_MEDIUM");
    let mut last = json!(null);
    for _ in 0..3 {
        last = c
            .call(
                rpc::perf::REPORT_FRAME_STATS.path,
                Some(&player),
                json!({"device": device, "averageFrameMs": 24.0, "p95FrameMs": 31.0, "sampleCount": 600}),
            )
            .await
            .json();
    }
    assert_eq!(last["adjusted"], true, "{last}");
    assert_eq!(last["renderScalePercent"], 90);
    let edge = edge.restart();
    let c = edge.client();
    let r = c
        .call(
            rpc::perf::RECOMMEND.path,
            Some(&player),
            json!({"device": device}),
        )
        .await;
    assert_eq!(r.json()["renderScalePercent"], 90, "{}", r.text());
}

#[tokio::test]
async fn players_and_broad_keys_cannot_touch_what_is_not_theirs() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let player = scenarios::login(&c, "mallory").await;
    let victim = scenarios::login(&c, "alice").await;
    let broad = edge.service_key("gs", "*");
    let device = json!({"model": "Pocket", "gpu": "Adreno 610"});
    let service_only = [
        (
            UPSERT,
            json!({"entity": {"id": "x", "regionId": "hearthvale", "kind": "item",
            "position": {"x": 2500.0, "y": 0.0, "z": 100.0}}}),
        ),
        (
            rpc::world::REMOVE_ENTITY.path,
            json!({"regionId": "hearthvale", "entityId": "x"}),
        ),
        (
            SCHEDULE,
            json!({"fireAtGameTimeMs": "1", "topic": "world.hearthvale"}),
        ),
        (
            rpc::time::CANCEL.path,
            json!({"id": "00000000000000000001-0000000000000000"}),
        ),
        (
            rpc::npc::PERCEIVE.path,
            json!({"npcId": "brenna-hale", "stimuli": [{"kind": "gift", "intensity": 1.0}]}),
        ),
        (rpc::npc::DECIDE.path, json!({"npcId": "brenna-hale"})),
    ];
    let admin_only = [
        (SET_SCALE, json!({"scale": 1000.0})),
        (
            rpc::weather::OVERRIDE.path,
            json!({"regionId": "hearthvale", "condition": "CONDITION_STORM", "durationMinutes": 60}),
        ),
        (
            rpc::perf::SET_OVERRIDE.path,
            json!({"deviceModel": "Pocket", "tier": "TIER_ULTRA"}),
        ),
    ];
    for (path, body) in service_only.iter().chain(&admin_only) {
        let r = c.call(path, Some(&player.access), body.clone()).await;
        assert_eq!(r.status, 403, "a player on {path}: {}", r.text());
        assert_eq!(r.json()["code"], "permission_denied");
    }
    // A key for everything still needs each admin method by name.
    for (path, body) in &admin_only {
        let r = c.call(path, Some(&broad), body.clone()).await;
        assert_eq!(r.status, 403, "a broad key on {path}: {}", r.text());
    }
    // A player reports frame stats only for themself.
    let r = c
        .call(
            rpc::perf::REPORT_FRAME_STATS.path,
            Some(&player.access),
            json!({"device": device, "averageFrameMs": 50.0, "p95FrameMs": 90.0, "playerId": victim.player_id}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // Nothing changed for anyone.
    let now = c.call(NOW, Some(&player.access), json!({})).await.json();
    assert_eq!(now["scale"], 12.0, "the shipped scale, unchanged");
}

#[tokio::test]
async fn world_queries_read_only_covering_cells_on_jetstream_too() {
    let nats = Nats::start("");
    let url = nats.url();
    let edge = Edge::start(&["--nats", &url, "--store", "jetstream"]);
    let c = edge.client();
    let gs = edge_e2e::jetstream_service_key(&url, "gs", "world");
    let mut expected = Vec::new();
    for i in 0..120 {
        let (x, z) = (
            2000.0 + f64::from(i % 12) * 160.0,
            f64::from(i / 12) * 190.0,
        );
        let id = format!("stone-{i:03}");
        let r = c
            .call(
                UPSERT,
                Some(&gs),
                json!({"entity": {"id": id, "regionId": "hearthvale", "kind": "item",
                    "position": {"x": x, "y": 5.0, "z": z}}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        if (2300.0..=2700.0).contains(&x) && (300.0..=700.0).contains(&z) {
            expected.push(id);
        }
    }
    let r = c
        .call(
            QUERY,
            Some(&gs),
            json!({"regionId": "hearthvale", "within": {"min": {"x": 2300, "y": 0, "z": 300},
                "max": {"x": 2700, "y": 10, "z": 700}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got: Vec<String> = r.json()["entities"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected);
    let scanned = r.json()["scanned"].as_u64().unwrap_or(0);
    assert!(
        scanned < 40,
        "read {scanned} of 120 records for {} answers",
        expected.len()
    );
}
