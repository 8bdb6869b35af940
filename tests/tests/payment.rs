//! End-to-end: service API keys, Idempotency-Key and the payment ledger, through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::collections::HashSet;

use edge_e2e::{Edge, Response, run_edge, scenarios};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const CREDIT: &str = rpc::payment::CREDIT.path;
const PURCHASE: &str = rpc::payment::PURCHASE.path;
const BALANCE: &str = rpc::payment::GET_BALANCE.path;
const LIST: &str = rpc::payment::LIST_TRANSACTIONS.path;
const PUT: &str = rpc::state::PUT.path;
const INVENTORY: &str = rpc::payment::GET_INVENTORY.path;
const GRANT: &str = rpc::payment::GRANT.path;
const CONSUME: &str = rpc::payment::CONSUME.path;

async fn call(edge: &Edge, path: &str, token: &str, key: Option<&str>, body: Value) -> Response {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    edge.client()
        .request(
            Method::POST,
            path,
            &headers,
            serde_json::to_vec(&body).unwrap(),
        )
        .await
}

async fn balance(edge: &Edge, token: &str) -> i64 {
    let r = call(edge, BALANCE, token, None, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.json()["balance"]
        .as_str()
        .map_or(0, |s| s.parse().unwrap())
}

async fn ledger_sum(edge: &Edge, token: &str) -> (usize, i64) {
    let r = call(edge, LIST, token, None, json!({"limit": 100})).await;
    assert_eq!(r.status, StatusCode::OK);
    let txs = r.json()["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sum = txs
        .iter()
        .map(|t| t["amount"].as_str().unwrap().parse::<i64>().unwrap())
        .sum();
    (txs.len(), sum)
}

#[tokio::test]
async fn payments_happen_exactly_once() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "buyer").await;
    let game = edge.service_key("game-server", "payment");

    // Credit is for services: the player's token cannot, the key can (acting for the player).
    let grant = json!({"playerId": me.player_id, "amount": 1000, "reason": "starter pack"});
    let r = call(&edge, CREDIT, &me.access, Some("grant-1"), grant.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&edge, CREDIT, &game, Some("grant-1"), grant.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["balance"], "1000");

    // Mutations need a key. Prices are the shipped catalog's: 2 x 150.
    let buy = json!({"sku": "minor_healing_draught", "quantity": 2});
    let r = call(&edge, PURCHASE, &me.access, None, buy.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );

    // 20 identical purchases at once: one charge. The others either wait their turn (409
    // aborted while the first runs) or get the first's answer.
    let attempts = futures_util::future::join_all((0..20).map(|_| {
        call(
            &edge,
            PURCHASE,
            &me.access,
            Some("buy-sword-1"),
            buy.clone(),
        )
    }))
    .await;
    let mut ids = HashSet::new();
    for r in &attempts {
        match r.status {
            StatusCode::OK => {
                ids.insert(r.json()["transaction"]["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => assert_eq!(r.json()["code"], "aborted"),
            other => panic!("unexpected {other}: {:?}", r.body),
        }
    }
    assert_eq!(ids.len(), 1, "one transaction");
    let retry = call(
        &edge,
        PURCHASE,
        &me.access,
        Some("buy-sword-1"),
        buy.clone(),
    )
    .await;
    assert_eq!(retry.status, StatusCode::OK);
    assert!(ids.contains(retry.json()["transaction"]["id"].as_str().unwrap()));
    assert_eq!(balance(&edge, &me.access).await, 700);

    // The same key with a different body: 422, nothing charged.
    let r = call(
        &edge,
        PURCHASE,
        &me.access,
        Some("buy-sword-1"),
        json!({"sku": "minor_healing_draught", "quantity": 3}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["code"], "invalid_argument");

    // Never below zero.
    let r = call(
        &edge,
        PURCHASE,
        &me.access,
        Some("buy-castle"),
        json!({"sku": "legendary_sword"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["code"], "failed_precondition");

    assert_eq!(balance(&edge, &me.access).await, 700);
    assert_eq!(
        ledger_sum(&edge, &me.access).await,
        (2, 700),
        "balance = sum of the ledger"
    );
}

/// (sku, quantity) of what the player holds, and (used, capacity).
async fn inventory(edge: &Edge, token: &str) -> (Vec<(String, u64)>, (u64, u64)) {
    let r = call(edge, INVENTORY, token, None, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let inv = r.json()["inventory"].clone();
    let items = inv["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            (
                i["sku"].as_str().unwrap().to_owned(),
                i["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    let n = |k: &str| inv[k].as_u64().unwrap_or(0);
    (items, (n("used"), n("capacity")))
}

#[tokio::test]
async fn the_inventory_moves_with_the_money_and_is_announced() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "hoarder").await;
    let game = edge.service_key("game-server", "payment");
    let seed = json!({"playerId": me.player_id, "amount": 20_000, "reason": "starter pack"});
    let r = call(&edge, CREDIT, &game, Some("seed"), seed).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // A purchase and its retry: one charge, one set of goods.
    let oil = json!({"sku": "lantern_oil", "quantity": 40});
    for _ in 0..2 {
        let r = call(&edge, PURCHASE, &me.access, Some("oil"), oil.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    assert_eq!(balance(&edge, &me.access).await, 19_000);
    let (items, room) = inventory(&edge, &me.access).await;
    assert_eq!(items, [("lantern_oil".to_owned(), 40)]);
    assert_eq!(room, (40, 60));
    // More than fits: refused, nothing charged.
    let r = call(
        &edge,
        PURCHASE,
        &me.access,
        Some("rations"),
        json!({"sku": "traveller_rations", "quantity": 21}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], "failed_precondition");
    assert_eq!(balance(&edge, &me.access).await, 19_000);
    // A stash expansion makes room.
    let r = call(
        &edge,
        PURCHASE,
        &me.access,
        Some("stash"),
        json!({"sku": "stash_expansion"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(inventory(&edge, &me.access).await.1, (40, 80));

    // A game server grants and uses up items; the player may do neither.
    let reward = json!({"playerId": me.player_id, "currency": 500,
        "items": [{"sku": "minor_healing_draught", "quantity": 2}], "reason": "Quest reward"});
    let r = call(&edge, GRANT, &me.access, Some("reward"), reward.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&edge, GRANT, &game, Some("reward"), reward).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["balance"], "14500");
    let gift = json!({"playerId": me.player_id, "sku": "minor_healing_draught", "quantity": 3, "reason": "gift:maud-feverfew"});
    let r = call(&edge, CONSUME, &game, Some("gift"), gift.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["code"], "failed_precondition");
    let r = call(&edge, CONSUME, &me.access, Some("gift"), gift).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another player cannot read it.
    let other = scenarios::login(&c, "snoop").await;
    let r = call(
        &edge,
        INVENTORY,
        &other.access,
        None,
        json!({"playerId": me.player_id}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Each change is on the player's topic, published by payment.
    let topic = format!("player.{}", me.player_id);
    let r = c
        .call(
            rpc::events::REPLAY.path,
            Some(&me.access),
            json!({"topic": topic}),
        )
        .await;
    let events = r.json()["events"].as_array().cloned().unwrap_or_default();
    let changes: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "payment.inventory_changed")
        .collect();
    assert_eq!(changes.len(), 3, "{events:?}");
    assert_eq!(
        changes[0]["payload"]["changes"],
        json!([{"sku": "lantern_oil", "quantity": 40}])
    );
    assert_eq!(
        changes[0]["payloadType"],
        "aicore.payment.v1.InventoryChanged"
    );
    assert_eq!(
        changes[0]["publisher"],
        json!({"kind": "PUBLISHER_KIND_SERVICE", "service": "payment"})
    );
}

#[tokio::test]
async fn a_reply_too_late_is_a_504_and_the_retry_charges_once() {
    // The purchase's work is done at once, but its reply is held back 2.5 s: a client giving it
    // 1 s gets a 504 although it was charged. Its retry with the same key must not charge again.
    let edge = Edge::start(&[
        "--rate-limit",
        "false",
        "--fault-delay-reply",
        &format!("{PURCHASE}=2500ms"),
    ]);
    assert!(
        edge.logs().contains("fault drill"),
        "a drill in force is logged"
    );
    let c = edge.client();
    let me = scenarios::login(&c, "late").await;
    let game = edge.service_key("game-server", "payment");
    let grant = json!({"playerId": me.player_id, "amount": 1000, "reason": "starter pack"});
    let r = call(&edge, CREDIT, &game, Some("grant-late"), grant).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let oil = json!({"sku": "lantern_oil", "quantity": 4});
    let auth = format!("Bearer {}", me.access);
    let started = std::time::Instant::now();
    let r = c
        .request(
            Method::POST,
            PURCHASE,
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
                ("idempotency-key", "buy-oil"),
                ("connect-timeout-ms", "1000"),
            ],
            serde_json::to_vec(&oil).unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", r.body);
    assert_eq!(r.json()["code"], "deadline_exceeded");
    assert!(started.elapsed() < std::time::Duration::from_millis(2400));
    assert_eq!(
        balance(&edge, &me.access).await,
        900,
        "charged, answered late"
    );

    // The retry (no short deadline) gets the purchase, and the ledger still holds one charge.
    let first = call(&edge, PURCHASE, &me.access, Some("buy-oil"), oil.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let again = call(&edge, PURCHASE, &me.access, Some("buy-oil"), oil).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(first.json(), again.json());
    assert_eq!(balance(&edge, &me.access).await, 900);
    assert_eq!(ledger_sum(&edge, &me.access).await, (2, 900));
}

#[tokio::test]
async fn service_keys_scopes_and_revocation() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "scoped").await;
    let state_only = edge.service_key("state-tool", "state");
    let put = json!({"playerId": me.player_id, "key": "k", "value": 1});
    assert_eq!(
        call(&edge, PUT, &state_only, None, put.clone())
            .await
            .status,
        StatusCode::OK
    );
    let r = call(
        &edge,
        BALANCE,
        &state_only,
        None,
        json!({"playerId": me.player_id}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "outside the key's scopes");

    // Admin methods need an explicit method scope, even for `*`.
    let all = edge.service_key("everything", "*");
    let set_scale = rpc::time::SET_SCALE.path;
    let r = call(&edge, set_scale, &all, None, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ops = edge.service_key("ops", "time.SetScale");
    let r = call(&edge, set_scale, &ops, None, json!({"scale": 12.0})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // A wrong secret with a real prefix, and garbage, are both plain 401s.
    let mut wrong = state_only.clone();
    wrong.replace_range(20..24, "AAAA");
    for bad in [wrong.as_str(), "edge_nope"] {
        let r = call(&edge, PUT, bad, None, put.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.json()["message"], "invalid API key");
    }

    // Listing shows names and prefixes, never secrets; revocation applies at once here.
    let admin = edge.admin.to_string();
    let data = edge.data_dir.to_str().unwrap().to_owned();
    let (code, out, err) = run_edge(&[
        "keys",
        "list",
        "--data-dir",
        &data,
        "--admin-listen",
        &admin,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("state-tool") && out.contains("ops"), "{out}");
    assert!(!out.contains(&state_only[18..]), "no secret in the listing");
    let (code, _, err) = run_edge(&[
        "keys",
        "revoke",
        "--data-dir",
        &data,
        "--admin-listen",
        &admin,
        "--name",
        "state-tool",
    ]);
    assert_eq!(code, 0, "{err}");
    let r = call(&edge, PUT, &state_only, None, put).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["message"], "this API key was revoked");
    assert!(
        !edge.logs().contains(&state_only[18..]),
        "no secret in the logs"
    );
}

#[test]
fn keys_on_a_stopped_edge_s_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // `edge keys <args> --data-dir <data>`: the store is opened directly (no edge runs).
    let keys = |args: &[&str]| {
        let mut all = vec!["keys"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--data-dir", data]);
        run_edge(&all)
    };
    let (code, out, err) = keys(&["create", "--name", "gs", "--scope", "payment,state"]);
    assert_eq!(code, 0, "{err}");
    let key = out.lines().last().unwrap();
    assert!(
        key.starts_with("edge_") && key.len() == 5 + 12 + 1 + 43,
        "{out}"
    );
    let (code, _, err) = keys(&["create", "--name", "gs", "--scope", "payment"]);
    assert_eq!(code, 1);
    assert!(err.contains("exists"), "{err}");
    let (code, _, err) = keys(&["create", "--name", "x", "--scope", "paymnt"]);
    assert_eq!(code, 1);
    assert!(err.contains("no service"), "{err}");
    let (code, out, _) = keys(&["revoke", "--name", "gs"]);
    assert_eq!(code, 0);
    assert!(out.contains("revoked"));
    let (_, out, _) = keys(&["list"]);
    assert!(
        out.contains("gs") && out.contains("revoked") && out.contains("payment,state"),
        "{out}"
    );
}
