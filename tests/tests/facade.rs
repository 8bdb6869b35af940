//! End-to-end: the four services that make the others one system (orchestration, router,
//! capability, bodybroker), through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::time::{Duration, Instant};

use edge_e2e::nats::Nats;
use edge_e2e::{Edge, eventually, scenarios};
use serde_json::{Value, json};

const BOOTSTRAP: &str = rpc::bodybroker::BOOTSTRAP.path;
const INGEST: &str = rpc::bodybroker::INGEST_GAME_EVENT.path;
const RUN: &str = rpc::orchestration::RUN.path;
const GET_RUN: &str = rpc::orchestration::GET_RUN.path;
const WORKFLOWS: &str = rpc::orchestration::LIST_WORKFLOWS.path;
const CREDIT: &str = rpc::payment::CREDIT.path;
const BALANCE: &str = rpc::payment::GET_BALANCE.path;
const LEDGER: &str = rpc::payment::LIST_TRANSACTIONS.path;
const ACCEPT: &str = rpc::quest::ACCEPT.path;
const LOG: &str = rpc::quest::GET_LOG.path;
const LIST_WORKERS: &str = rpc::capability::LIST.path;
const PURCHASE: &str = rpc::payment::PURCHASE.path;
const INVENTORY: &str = rpc::payment::GET_INVENTORY.path;

fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

async fn balance(c: &edge_e2e::Client, token: &str) -> i64 {
    int(&c.call(BALANCE, Some(token), json!({})).await.json()["balance"])
}

async fn fund(c: &edge_e2e::Client, bank: &str, player: &str, amount: i64, key: &str) {
    let r = c
        .call_with(
            CREDIT,
            Some(bank),
            &[("idempotency-key", key)],
            json!({"playerId": player, "amount": amount, "reason": "Starting purse"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn ledger(c: &edge_e2e::Client, token: &str) -> Vec<Value> {
    c.call(LEDGER, Some(token), json!({"limit": 100}))
        .await
        .json()["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn the_route_table_is_live_and_resolves_paths() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let me = scenarios::login(&c, "cartographer").await;
    // The table shows the deployment: for service keys, not players.
    let r = c
        .call(rpc::router::LIST_ROUTES.path, Some(&me.access), json!({}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let ops = edge.service_key("ops", "router");
    let routes = c
        .call(rpc::router::LIST_ROUTES.path, Some(&ops), json!({}))
        .await
        .json();
    let admin = edge.admin_json("/admin/routes").await;
    let (ours, theirs) = (
        routes["routes"].as_array().unwrap(),
        admin["routes"].as_array().unwrap(),
    );
    assert_eq!(ours.len(), 22);
    assert_eq!(ours.len(), theirs.len());
    for (r, a) in ours.iter().zip(theirs) {
        assert_eq!(r["service"], a["service"]);
        assert_eq!(r["target"], a["target"]);
        assert_eq!(r["healthy"], a["healthy"]);
    }
    let r = c
        .call(
            rpc::router::RESOLVE.path,
            Some(&ops),
            json!({"path": "payment/Purchase"}),
        )
        .await
        .json();
    assert_eq!(r["route"]["target"], "local");
    assert_eq!(r["method"]["path"], PURCHASE);
    assert_eq!(r["method"]["subject"], "svc.payment.v1.purchase");
    assert_eq!(r["method"]["mutates"], true);
    let r = c
        .call(
            rpc::router::RESOLVE.path,
            Some(&ops),
            json!({"path": "/aicore.nope.v1.NopeService/Nope"}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "not_found");
}

#[tokio::test]
async fn bootstrap_equals_the_individual_calls_and_degrades_a_stopped_worker() {
    let nats = Nats::start("");
    let edge = Edge::start(&["--nats", &nats.url(), "--remote", "weather"]);
    let mut worker = Edge::start_worker(&["--nats", &nats.url(), "--services", "weather"]);
    let c = edge.client();
    let me = scenarios::login(&c, "wayfarer").await;
    c.call(
        ACCEPT,
        Some(&me.access),
        json!({"questId": "lanterns-on-the-mill-road"}),
    )
    .await;

    let region = json!({"regionId": "hearthvale"});
    let mut whole = json!(null);
    eventually(Duration::from_secs(20), "a whole bundle", async || {
        whole = c
            .call(BOOTSTRAP, Some(&me.access), region.clone())
            .await
            .json();
        whole["degraded"].as_array().is_none_or(Vec::is_empty) && whole["weather"].is_object()
    })
    .await;
    let settings = c
        .call(rpc::settings::GET.path, Some(&me.access), json!({}))
        .await
        .json();
    assert_eq!(whole["settings"], settings["settings"]);
    let log = c.call(LOG, Some(&me.access), json!({})).await.json();
    assert_eq!(whole["activeQuests"], log["quests"]);
    let got = c
        .call(
            rpc::world::GET_REGION.path,
            Some(&me.access),
            region.clone(),
        )
        .await
        .json();
    assert_eq!(whole["region"], got["region"]);
    let weather = c
        .call(rpc::weather::CURRENT.path, Some(&me.access), region.clone())
        .await
        .json();
    assert_eq!(
        whole["weather"]["condition"],
        weather["weather"]["condition"]
    );
    assert!(whole["time"]["gameTimeMs"].is_string() || whole["time"]["gameTimeMs"].is_number());

    // The weather worker stops: the bundle still comes, in time, with weather named degraded.
    worker.signal("KILL");
    worker.wait_exit(Duration::from_secs(5));
    let started = Instant::now();
    let r = c
        .call_with(
            BOOTSTRAP,
            Some(&me.access),
            &[("connect-timeout-ms", "2000")],
            region.clone(),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let degraded = r.json();
    assert_eq!(degraded["degraded"], json!(["weather"]));
    assert!(degraded["weather"].is_null());
    assert_eq!(degraded["region"], whole["region"]);
    // A client's own mistake is not a degraded part: it keeps its code.
    let r = c
        .call(BOOTSTRAP, Some(&me.access), json!({"regionId": "atlantis"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test]
async fn an_ingested_event_advances_a_quest_once_though_sent_twice() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "gleaner").await;
    let game = edge.service_key("game-server", "bodybroker");
    let quest = "lanterns-on-the-mill-road";
    c.call(ACCEPT, Some(&me.access), json!({"questId": quest}))
        .await;

    let event = json!({"event": {
        "id": "match-7/kill-0042",
        "type": "item_collected",
        "playerId": me.player_id,
        "regionId": "hearthvale",
        "payload": {"item": "cut-wick", "count": 2},
    }});
    for _ in 0..2 {
        let r = c.call(INGEST, Some(&game), event.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["deliveredTo"], json!(["quest", "events"]));
    }
    let log = c.call(LOG, Some(&me.access), json!({})).await.json();
    let progress = &log["quests"][0]["objectives"]["collect-cut-wicks"];
    assert_eq!(progress, 2, "{log}");
    let replay = c
        .call(
            rpc::events::REPLAY.path,
            Some(&me.access),
            json!({"topic": format!("player.{}", me.player_id)}),
        )
        .await
        .json();
    let collected: Vec<_> = replay["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "game.item_collected")
        .collect();
    assert_eq!(collected.len(), 1, "{replay}");
    // One level: the game's fields beside the envelope's, no payload.payload.
    let published = &collected[0]["payload"];
    assert_eq!(published["item"], "cut-wick", "{published}");
    assert_eq!(published["playerId"], me.player_id.as_str(), "{published}");
    assert!(published.get("payload").is_none(), "{published}");

    // The same id under an Idempotency-Key-less retry with another body: refused, not applied.
    let mut changed = event.clone();
    changed["event"]["payload"]["count"] = json!(1);
    let r = c.call(INGEST, Some(&game), changed).await;
    assert_eq!(r.status, 422, "{}", r.text());
    let log = c.call(LOG, Some(&me.access), json!({})).await.json();
    assert_eq!(
        log["quests"][0]["objectives"]["collect-cut-wicks"], 2,
        "{log}"
    );

    // Entering a region moves the player's entity there.
    let enter = json!({"event": {
        "id": "match-7/enter-1",
        "type": "region_entered",
        "playerId": me.player_id,
        "regionId": "hearthvale",
        "payload": {"x": 2500.0, "y": 10.0, "z": 400.0},
    }});
    let r = c.call(INGEST, Some(&game), enter).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deliveredTo"], json!(["quest", "world", "events"]));
    let found = c
        .call(
            rpc::world::QUERY_ENTITIES.path,
            Some(&me.access),
            json!({"regionId": "hearthvale", "kind": "player"}),
        )
        .await
        .json();
    assert_eq!(
        found["entities"][0]["id"],
        format!("player-{}", me.player_id)
    );
    // A downstream error keeps its code: a position outside the region is world's 400.
    let outside = json!({"event": {
        "id": "match-7/enter-2",
        "type": "region_entered",
        "playerId": me.player_id,
        "regionId": "hearthvale",
        "payload": {"x": 1.0, "y": 10.0, "z": 400.0},
    }});
    let r = c.call(INGEST, Some(&game), outside).await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Players cannot ingest; unknown types and missing ids are refused.
    let r = c.call(INGEST, Some(&me.access), event.clone()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let mut unknown = event.clone();
    unknown["event"]["type"] = json!("dragon_tamed");
    assert_eq!(c.call(INGEST, Some(&game), unknown).await.status, 400);
    let mut anonymous = event;
    anonymous["event"]["id"] = json!("");
    assert_eq!(c.call(INGEST, Some(&game), anonymous).await.status, 400);
}

#[tokio::test]
async fn a_workflow_whose_second_step_fails_refunds_the_first_exactly_once() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "expeditioner").await;
    let bank = edge.service_key("bank", "payment.Credit,orchestration");
    fund(&c, &bank, &me.player_id, 5_000, "purse-1").await;

    let listed = c.call(WORKFLOWS, Some(&me.access), json!({})).await.json();
    let names: Vec<_> = listed["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            json!("buy_item"),
            json!("grant_reward"),
            json!("start_expedition")
        ]
    );

    // A level 1 player cannot take the-briar-mark: the kit is refunded.
    let run = json!({"workflow": "start_expedition", "input": {"quest": "the-briar-mark", "kit": "climbing_rope"}});
    let r = c
        .call_with(
            RUN,
            Some(&me.access),
            &[("idempotency-key", "exp-1")],
            run.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let done = r.json()["run"].clone();
    assert_eq!(done["status"], "RUN_STATUS_COMPENSATED", "{done}");
    assert_eq!(done["steps"][0]["status"], "RUN_STATUS_COMPENSATED");
    assert_eq!(done["steps"][0]["compensated"], true);
    assert_eq!(done["steps"][1]["status"], "RUN_STATUS_FAILED");
    assert_eq!(done["steps"][1]["code"], "failed_precondition");
    assert!(done["steps"][2]["status"].is_null(), "not reached: {done}");
    assert_eq!(balance(&c, &me.access).await, 5_000);
    let kinds: Vec<_> = ledger(&c, &me.access)
        .await
        .iter()
        .map(|t| t["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            json!("TRANSACTION_KIND_CREDIT"),
            json!("TRANSACTION_KIND_PURCHASE"),
            json!("TRANSACTION_KIND_REVERSAL")
        ]
    );

    // The same key is the same run, and does nothing new.
    let again = c
        .call_with(RUN, Some(&me.access), &[("idempotency-key", "exp-1")], run)
        .await
        .json();
    assert_eq!(again["run"]["id"], done["id"]);
    assert_eq!(ledger(&c, &me.access).await.len(), 3);

    // A purchase that succeeds lands in the inventory and is announced; GetRun shows each step's
    // outcome.
    let r = c
        .call_with(
            RUN,
            Some(&me.access),
            &[("idempotency-key", "buy-1")],
            json!({"workflow": "buy_item", "input": {"sku": "lantern_oil", "quantity": 4}}),
        )
        .await;
    let bought = r.json()["run"].clone();
    assert_eq!(bought["status"], "RUN_STATUS_SUCCEEDED", "{bought}");
    assert_eq!(balance(&c, &me.access).await, 4_900);
    let id = bought["id"].as_str().unwrap();
    let got = c
        .call(GET_RUN, Some(&me.access), json!({"runId": id}))
        .await
        .json();
    assert_eq!(
        got["run"]["steps"][0]["output"]["transaction"]["id"],
        bought["steps"][0]["output"]["transaction"]["id"]
    );
    let inventory = c.call(INVENTORY, Some(&me.access), json!({})).await.json();
    assert_eq!(
        inventory["inventory"]["items"],
        json!([{"sku": "lantern_oil", "name": "Flask of Lantern Oil", "quantity": 4,
            "description": "Pressed rapeseed, clarified, with a pinch of Ashfen bog-myrtle so it burns steady and sweet; each flask filled by Maud Feverfew's own hand. Burns for two hours of game time in any lantern."}]),
        "{inventory}"
    );
    // Attacker's steps: the player can neither add to nor take from the inventory themself, nor
    // read another's; and a record under the state service's `trusted/` namespace (any case)
    // stays the services' to write.
    let r = c
        .call_with(
            rpc::payment::GRANT.path,
            Some(&me.access),
            &[("idempotency-key", "free-sword")],
            json!({"playerId": me.player_id, "items": [{"sku": "legendary_sword", "quantity": 1}], "reason": "mine"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = c
        .call_with(
            rpc::payment::CONSUME.path,
            Some(&me.access),
            &[("idempotency-key", "drop")],
            json!({"playerId": me.player_id, "sku": "lantern_oil", "quantity": 4, "reason": "x"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    for key in [
        format!("trusted/pack/{id}"),
        "Trusted/pack/forged".to_owned(),
    ] {
        let r = c
            .call(
                rpc::state::PUT.path,
                Some(&me.access),
                json!({"key": key, "value": {"sku": "dragon_egg", "quantity": 99}}),
            )
            .await;
        assert_eq!(r.status, 403, "{key}: {}", r.text());
        let r = c
            .call(
                rpc::state::DELETE.path,
                Some(&me.access),
                json!({"key": key}),
            )
            .await;
        assert_eq!(r.status, 403, "{key}: {}", r.text());
    }

    // Another player cannot see the run; a player cannot run a service workflow.
    let other = scenarios::login(&c, "stranger").await;
    let r = c
        .call(GET_RUN, Some(&other.access), json!({"runId": id}))
        .await;
    assert_eq!(r.status, 404);
    let r = c
        .call(
            INVENTORY,
            Some(&other.access),
            json!({"playerId": me.player_id}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = c
        .call_with(
            RUN,
            Some(&me.access),
            &[("idempotency-key", "greedy")],
            json!({"workflow": "grant_reward", "input": {"amount": 1000000, "reason": "because"}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // A key scoped to orchestration alone cannot mint money through grant_reward; one whose
    // scopes cover every step can.
    let grant = json!({"workflow": "grant_reward", "playerId": me.player_id,
        "input": {"amount": 250, "reason": "Won the Harvest Moon archery contest"}});
    let narrow = edge.service_key("narrow", "orchestration");
    let r = c
        .call_with(
            RUN,
            Some(&narrow),
            &[("idempotency-key", "g-1")],
            grant.clone(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let rewards = edge.service_key("rewards", "orchestration,payment.Grant,events");
    let r = c
        .call_with(RUN, Some(&rewards), &[("idempotency-key", "g-1")], grant)
        .await;
    assert_eq!(
        r.json()["run"]["status"],
        "RUN_STATUS_SUCCEEDED",
        "{}",
        r.text()
    );
    assert_eq!(balance(&c, &me.access).await, 5_150);
    // Without an Idempotency-Key there is no run (a retry could not find it).
    let r = c
        .call(
            RUN,
            Some(&me.access),
            json!({"workflow": "buy_item", "input": {"sku": "lantern_oil", "quantity": 1}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = c
        .call_with(
            RUN,
            Some(&me.access),
            &[("idempotency-key", "bad-input")],
            json!({"workflow": "buy_item", "input": {"sku": "lantern_oil", "quantity": 999}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn a_run_killed_between_steps_resumes_at_start_and_compensates_once() {
    // The purchase applies, but its reply is held back: the process dies with the step in flight.
    let delay = format!("{PURCHASE}=20s");
    let edge = Edge::start(&["--rate-limit", "false", "--fault-delay-reply", &delay]);
    let c = edge.client();
    let me = scenarios::login(&c, "survivor").await;
    let bank = edge.service_key("bank", "payment.Credit");
    fund(&c, &bank, &me.player_id, 2_000, "purse-1").await;
    let r = c
        .call_with(
            RUN,
            Some(&me.access),
            &[("idempotency-key", "exp-crash"), ("connect-timeout-ms", "1500")],
            json!({"workflow": "start_expedition", "input": {"quest": "the-briar-mark", "kit": "climbing_rope"}}),
        )
        .await;
    // The call ends at its deadline, the run still going.
    assert!(matches!(r.status.as_u16(), 200 | 504), "{}", r.text());
    let token = me.access.clone();
    eventually(
        Duration::from_secs(10),
        "the purchase applied",
        async || balance(&c, &token).await == 1_100,
    )
    .await;
    let edge = edge.restart_with(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login_again(&c, "survivor").await;
    let mut run = json!(null);
    eventually(Duration::from_secs(30), "the resumed run compensated", async || {
        let runs = c
            .call_with(
                RUN,
                Some(&me.access),
                &[("idempotency-key", "exp-crash")],
                json!({"workflow": "start_expedition", "input": {"quest": "the-briar-mark", "kit": "climbing_rope"}}),
            )
            .await
            .json();
        let id = runs["run"]["id"].as_str().unwrap_or_default().to_owned();
        run = c.call(GET_RUN, Some(&me.access), json!({"runId": id})).await.json()["run"].clone();
        run["status"] == "RUN_STATUS_COMPENSATED"
    })
    .await;
    assert_eq!(run["steps"][0]["compensated"], true, "{run}");
    assert_eq!(balance(&c, &me.access).await, 2_000);
    let kinds: Vec<_> = ledger(&c, &me.access)
        .await
        .iter()
        .map(|t| t["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            json!("TRANSACTION_KIND_CREDIT"),
            json!("TRANSACTION_KIND_PURCHASE"),
            json!("TRANSACTION_KIND_REVERSAL")
        ]
    );
    assert!(
        edge.logs().contains("resuming an unfinished run"),
        "{}",
        edge.logs()
    );
}

#[tokio::test]
async fn a_worker_registers_itself_and_leaves_the_list_when_its_lease_lapses() {
    let nats = Nats::start("");
    let edge = Edge::start(&[
        "--nats",
        &nats.url(),
        "--remote",
        "npc",
        "--capability-lease",
        "2s",
    ]);
    let mut worker = Edge::start_worker(&[
        "--nats",
        &nats.url(),
        "--services",
        "npc",
        "--worker-id",
        "npc-worker-1",
    ]);
    let c = edge.client();
    let ops = edge.service_key("ops", "capability");
    let list = async |c: &edge_e2e::Client| -> Vec<(String, String)> {
        let r = c
            .call(LIST_WORKERS, Some(&ops), json!({"service": "npc"}))
            .await
            .json();
        r["workers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|w| {
                (
                    w["id"].as_str().unwrap().to_owned(),
                    w["source"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    eventually(
        Duration::from_secs(20),
        "the worker registered and discovered",
        async || {
            let l = list(&c).await;
            l.contains(&("npc-worker-1".into(), "registered".into()))
                && l.iter().any(|(_, s)| s == "discovered")
        },
    )
    .await;
    // A worker serves no HTTPS: its container health check probes the admin listener.
    let admin = worker.admin.to_string();
    let (code, _, err) = edge_e2e::run_edge(&["healthcheck", "--admin", "--addr", &admin]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = edge_e2e::run_edge(&["healthcheck", "--addr", &admin, "--timeout", "1s"]);
    assert_eq!(code, 1, "TLS against the plain admin listener fails");
    // Killed: no deregistration, no heartbeat. The lease lapses and discovery stops finding it.
    worker.signal("KILL");
    worker.wait_exit(Duration::from_secs(5));
    eventually(
        Duration::from_secs(20),
        "the worker left the list",
        async || list(&c).await.is_empty(),
    )
    .await;
    // Another principal cannot register under a live worker's id; players cannot at all.
    let owner = edge.service_key("pool-a", "capability");
    let intruder = edge.service_key("pool-b", "capability");
    let register = json!({"worker": {"id": "npc-worker-2", "services": ["npc"]}});
    let r = c
        .call(
            rpc::capability::REGISTER.path,
            Some(&owner),
            register.clone(),
        )
        .await;
    assert_eq!(r.json()["leaseSeconds"], 2, "{}", r.text());
    let r = c
        .call(rpc::capability::REGISTER.path, Some(&intruder), register)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let me = scenarios::login(&c, "curious").await;
    let r = c
        .call(
            rpc::capability::REGISTER.path,
            Some(&me.access),
            json!({"worker": {"id": "x", "services": ["npc"]}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
}

#[tokio::test]
async fn on_jetstream_another_replica_takes_over_a_dead_replicas_run_and_shares_the_registry() {
    let nats = Nats::start("");
    let url = nats.url();
    let delay = format!("{PURCHASE}=20s");
    let shared = [
        "--nats",
        url.as_str(),
        "--store",
        "jetstream",
        "--orchestration-lease",
        "2s",
    ];
    let mut with_fault: Vec<&str> = shared.to_vec();
    with_fault.extend([
        "--rate-limit",
        "false",
        "--fault-delay-reply",
        delay.as_str(),
    ]);
    let a = Edge::start(&with_fault);
    let mut plain: Vec<&str> = shared.to_vec();
    plain.extend(["--rate-limit", "false"]);
    let b = Edge::start(&plain);
    let (ca, cb) = (a.client(), b.client());
    let bank = edge_e2e::jetstream_service_key(&url, "bank", "payment.Credit,capability");
    let me = scenarios::login(&ca, "relay-runner").await;
    fund(&ca, &bank, &me.player_id, 1_000, "purse-1").await;

    // The registry is the store's: registered on one replica, listed on the other.
    let r = ca
        .call(
            rpc::capability::REGISTER.path,
            Some(&bank),
            json!({"worker": {"id": "llm-pool-1", "services": ["llm"]}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = cb
        .call(LIST_WORKERS, Some(&bank), json!({"service": "llm"}))
        .await
        .json();
    assert_eq!(listed["workers"][0]["id"], "llm-pool-1", "{listed}");

    // Replica A starts a run and dies with its first step in flight.
    let run = json!({"workflow": "start_expedition", "input": {"quest": "the-briar-mark", "kit": "traveller_rations"}});
    let r = ca
        .call_with(
            RUN,
            Some(&me.access),
            &[
                ("idempotency-key", "relay-1"),
                ("connect-timeout-ms", "1500"),
            ],
            run,
        )
        .await;
    assert!(matches!(r.status.as_u16(), 200 | 504), "{}", r.text());
    let token = me.access.clone();
    eventually(
        Duration::from_secs(10),
        "the purchase applied",
        async || balance(&cb, &token).await == 960,
    )
    .await;
    drop(a);
    // B takes the run over once A's lease lapses, finishes it and undoes the purchase once.
    eventually(
        Duration::from_secs(30),
        "replica B compensated the run",
        async || balance(&cb, &token).await == 1_000,
    )
    .await;
    let kinds: Vec<_> = ledger(&cb, &me.access)
        .await
        .iter()
        .map(|t| t["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            json!("TRANSACTION_KIND_CREDIT"),
            json!("TRANSACTION_KIND_PURCHASE"),
            json!("TRANSACTION_KIND_REVERSAL")
        ]
    );
    assert!(
        b.logs().contains("resuming an unfinished run"),
        "{}",
        b.logs()
    );
}
