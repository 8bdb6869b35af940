//! End-to-end: the content players see (quests, lore, localized text, story, narrative), through
//! the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use edge_e2e::{Edge, scenarios};
use proto::rpc;
use serde_json::{Value, json};

const AVAILABLE: &str = rpc::quest::LIST_AVAILABLE.path;
const ACCEPT: &str = rpc::quest::ACCEPT.path;
const PROGRESS: &str = rpc::quest::PROGRESS.path;
const COMPLETE: &str = rpc::quest::COMPLETE.path;
const LOG: &str = rpc::quest::GET_LOG.path;
const GET_QUEST: &str = rpc::quest::GET_QUEST.path;
const PROGRESSION: &str = rpc::quest::GET_PROGRESSION.path;
const BALANCE: &str = rpc::payment::GET_BALANCE.path;
const LEDGER: &str = rpc::payment::LIST_TRANSACTIONS.path;
const REPLAY: &str = rpc::events::REPLAY.path;

/// A number that proto3 JSON leaves out when it is 0.
fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn ids(v: &Value) -> Vec<String> {
    v["quests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_quest_from_accept_to_reward_pays_once_and_says_so_once() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "questor").await;
    let game = edge.service_key("game-server", "quest");

    let listing = c.call(AVAILABLE, Some(&me.access), json!({})).await.json();
    let open = ids(&listing);
    for starter in [
        "lanterns-on-the-mill-road",
        "herring-and-hearsay",
        "reeds-for-the-thatch",
    ] {
        assert!(open.contains(&starter.to_owned()), "{open:?}");
    }
    assert!(!open.contains(&"drill-in-the-guard-yard".to_owned()));
    // What comes next is listed locked, with why: the chain's next quest and the level 5 chain.
    let locked = |id: &str| {
        listing["locked"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["quest"]["id"] == id)
            .map(|l| l["locks"].clone())
    };
    assert_eq!(
        locked("drill-in-the-guard-yard"),
        Some(json!([
            {"reason": "LOCK_REASON_PREREQUISITE", "quests": ["lanterns-on-the-mill-road"]},
            {"reason": "LOCK_REASON_LEVEL", "level": 2},
        ])),
        "{listing}"
    );
    assert_eq!(
        locked("before-the-first-snow"),
        Some(json!([{"reason": "LOCK_REASON_LEVEL", "level": 5}]))
    );
    assert_eq!(locked("sheaves-gone-missing"), None, "two steps away");
    let start = c.call(PROGRESSION, Some(&me.access), json!({})).await;
    assert_eq!(start.status, 200, "{}", start.text());
    let start = &start.json()["progression"];
    assert_eq!(
        (n(&start["level"]), n(&start["experience"])),
        (1, 0),
        "{start}"
    );
    assert_eq!(n(&start["nextLevelExperience"]), 100);
    assert_eq!(start["levels"].as_array().unwrap().len(), 12);

    let quest = "lanterns-on-the-mill-road";
    let r = c
        .call(ACCEPT, Some(&me.access), json!({"questId": quest}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["progress"]["status"], "QUEST_STATUS_ACTIVE");

    // Players cannot report progress; the game server can, for the player.
    let r = c
        .call(
            PROGRESS,
            Some(&me.access),
            json!({"questId": quest, "objectiveId": "light-lanterns", "amount": 6}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // Parallel reports add up exactly, and clamp at the target.
    let mut calls = Vec::new();
    for (objective, n) in [("light-lanterns", 6), ("collect-cut-wicks", 9)] {
        for _ in 0..n {
            let (c, game, player) = (c.clone(), game.clone(), me.player_id.clone());
            calls.push(tokio::spawn(async move {
                c.call(
                    PROGRESS,
                    Some(&game),
                    json!({"questId": quest, "objectiveId": objective, "amount": 1, "playerId": player}),
                )
                .await
                .status
            }));
        }
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    // Six reports of a target of 6 reach 6; nine of a target of 3 stop at 3.
    let log = c.call(LOG, Some(&me.access), json!({})).await.json();
    let objectives = &log["quests"][0]["objectives"];
    assert_eq!(objectives["light-lanterns"], 6, "{log}");
    assert_eq!(
        objectives["collect-cut-wicks"], 3,
        "clamped at the target: {log}"
    );
    // The log draws from itself: title, and each objective's line, count and target, in order.
    let drawn = &log["quests"][0]["quest"];
    assert_eq!(drawn["title"], "Lanterns on the Mill Road", "{log}");
    let lines: Vec<(String, u64, u64)> = drawn["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["description"].as_str().unwrap().to_owned(),
                n(&o["count"]),
                n(&o["targetCount"]),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("Relight the lanterns along the Mill Road".to_owned(), 6, 6),
            (
                "Gather the cut wicks left at the foot of the lantern posts".to_owned(),
                3,
                3
            ),
        ]
    );

    // Completed, and repeated with the same key and with another: one credit, one event.
    let mut answered = Vec::new();
    for key in ["complete-1", "complete-1", "complete-2"] {
        let r = c
            .call_with(
                COMPLETE,
                Some(&me.access),
                &[("idempotency-key", key)],
                json!({"questId": quest}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = r.json();
        assert_eq!(r["reward"]["currency"], "250");
        // 120 experience: level 2, gained once however often it is asked.
        assert_eq!(n(&r["levelsGained"]), 1, "{r}");
        assert_eq!(n(&r["progression"]["level"]), 2, "{r}");
        answered.push(r);
    }
    let balance = c.call(BALANCE, Some(&me.access), json!({})).await.json();
    assert_eq!(balance["balance"], "250");
    let ledger = c
        .call(LEDGER, Some(&me.access), json!({"limit": 10}))
        .await
        .json();
    assert_eq!(ledger["transactions"].as_array().unwrap().len(), 1);
    let topic = format!("player.{}", me.player_id);
    let events = c
        .call(REPLAY, Some(&me.access), json!({"topic": topic}))
        .await
        .json();
    let all = events["events"].as_array().cloned().unwrap_or_default();
    // The reward's items arrived in the inventory, which payment announces on its own.
    let inventory: Vec<_> = all
        .iter()
        .filter(|e| e["type"] == "payment.inventory_changed")
        .collect();
    assert_eq!(inventory.len(), 1, "{all:?}");
    assert_eq!(inventory[0]["publisher"]["service"], "payment");
    let events: Vec<_> = all
        .iter()
        .filter(|e| e["type"] != "payment.inventory_changed")
        .cloned()
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["type"], "quest.completed");
    assert_eq!(events[0]["payloadType"], "aicore.quest.v1.QuestCompleted");
    // One shape per fact: the event's reward is Complete's, `"currency":"250"` both ways.
    assert_eq!(events[0]["payload"]["reward"], answered[0]["reward"]);
    assert_eq!(events[0]["payload"]["reward"]["currency"], "250");
    assert_eq!(
        events[0]["payload"]["reward"]["items"],
        json!(["lantern_oil"])
    );
    assert_eq!(
        events[0]["payload"]["level"],
        answered[0]["progression"]["level"]
    );
    assert_eq!(events[1]["type"], "player.leveled");
    assert_eq!(events[1]["payloadType"], "aicore.quest.v1.PlayerLeveled");
    assert_eq!(
        events[1]["payload"],
        json!({"oldLevel": 1, "newLevel": 2, "questId": quest})
    );
    // The stream's `data:` is the same envelope JSON as Replay's, byte for byte in meaning.
    let mut stream = edge_e2e::sse::Sse::post(
        &c,
        rpc::events::SUBSCRIBE.path,
        Some(&me.access),
        json!({"topics": [topic], "after": {topic.clone(): "0"}}),
    )
    .await;
    assert_eq!(stream.status, 200);
    let mut streamed = Vec::new();
    while streamed.len() < all.len() {
        let e = stream
            .next_within(std::time::Duration::from_secs(10))
            .await
            .expect("the retained events");
        if e.comment || e.event.is_some() {
            continue;
        }
        let j = e.json();
        if j["type"] != "edge.subscribed" {
            streamed.push(j);
        }
    }
    assert_eq!(streamed, all);
    assert_eq!(events[1]["publisher"]["service"], "quest");
    // A player cannot forge one on their own topic: the quest service's event types are its own.
    let r = c
        .call(
            rpc::events::PUBLISH.path,
            Some(&me.access),
            json!({"topic": topic, "type": "quest.completed", "payload": {"items": ["legendary_sword"]}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // Nor level themselves up: `player.` facts are the backend's.
    let r = c
        .call(
            rpc::events::PUBLISH.path,
            Some(&me.access),
            json!({"topic": topic, "type": "player.leveled", "payload": {"oldLevel": 2, "newLevel": 10}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let now = c
        .call(PROGRESSION, Some(&me.access), json!({}))
        .await
        .json();
    let now = &now["progression"];
    assert_eq!(
        (
            n(&now["level"]),
            n(&now["experience"]),
            n(&now["levelExperience"])
        ),
        (2, 120, 100),
        "{now}"
    );
    assert_eq!(n(&now["nextLevelExperience"]), 250);

    // The log has it with game and wall-clock times (each under its own name); the next in the
    // chain is open (level 2 at 120 xp).
    let log = c.call(LOG, Some(&me.access), json!({})).await.json();
    let entry = &log["quests"][0];
    assert_eq!(entry["status"], "QUEST_STATUS_COMPLETED");
    let ms = |v: &Value| v.as_str().unwrap().parse::<i64>().unwrap();
    assert!(ms(&entry["completedGameTimeMs"]) > 0, "{entry}");
    let wall = ms(&entry["completedAtMs"]);
    let published = ms(&events[0]["publishedAtMs"]);
    assert!(
        (published - 60_000..=published).contains(&wall),
        "wall clock: {entry}"
    );
    let open = ids(&c.call(AVAILABLE, Some(&me.access), json!({})).await.json());
    assert!(
        open.contains(&"drill-in-the-guard-yard".to_owned()),
        "{open:?}"
    );
    assert!(!open.contains(&quest.to_owned()));
    let next = c
        .call(
            GET_QUEST,
            Some(&me.access),
            json!({"questId": "drill-in-the-guard-yard"}),
        )
        .await
        .json();
    assert_eq!(next["available"], true, "{next}");
    assert_eq!(next["progress"]["status"], "QUEST_STATUS_NOT_ACCEPTED");
    assert_eq!(
        next["progress"]["quest"]["title"],
        "Drill in the Guard Yard"
    );
    let r = c
        .call(
            GET_QUEST,
            Some(&me.access),
            json!({"questId": "no-such-quest"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // Another player's quests are not mine to touch, nor to read.
    let other = scenarios::login(&c, "bystander").await;
    let r = c
        .call(
            COMPLETE,
            Some(&other.access),
            json!({"questId": quest, "playerId": me.player_id}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    for (path, body) in [
        (PROGRESSION, json!({"playerId": me.player_id})),
        (LOG, json!({"playerId": me.player_id})),
        (
            GET_QUEST,
            json!({"questId": quest, "playerId": me.player_id}),
        ),
    ] {
        let r = c.call(path, Some(&other.access), body).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
    let theirs = c
        .call(PROGRESSION, Some(&other.access), json!({}))
        .await
        .json();
    assert_eq!(n(&theirs["progression"]["experience"]), 0, "{theirs}");
}

#[tokio::test]
async fn a_region_is_described_from_its_weather_and_a_storm_shows() {
    const DESCRIBE: &str = rpc::narrative::DESCRIBE.path;
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "reader").await;
    let ops = edge.service_key("ops", "weather.Override,weather");
    let ask = json!({"regionId": "ashfen", "perspective": "second_person", "maxWords": 60});
    let a = c.call(DESCRIBE, Some(&me.access), ask.clone()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let a = a.json();
    let text = a["text"].as_str().unwrap();
    assert!(text.split_whitespace().count() <= 60, "{text}");
    assert!(text.contains("You ") || text.contains("you "), "{text}");
    // The moment: a season of the game calendar, as time says it, and Ashfen's own features.
    let season = a["season"].as_str().unwrap();
    assert!(
        ["spring", "summer", "autumn", "winter"].contains(&season),
        "{a}"
    );
    let lower = text.to_lowercase();
    assert!(
        [
            "abbey",
            "saint wren",
            "reed island",
            "reed-folk",
            "lantern-light"
        ]
        .iter()
        .any(|w| lower.contains(w)),
        "{text}"
    );
    assert_eq!(
        c.call(DESCRIBE, Some(&me.access), ask.clone()).await.json(),
        a,
        "the same inputs read the same"
    );

    let r = c
        .call(
            rpc::weather::OVERRIDE.path,
            Some(&ops),
            json!({"regionId": "ashfen", "condition": "CONDITION_STORM", "durationMinutes": 120}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let storm = c.call(DESCRIBE, Some(&me.access), ask).await.json();
    assert_eq!(storm["condition"], "CONDITION_STORM");
    let lower = storm["text"].as_str().unwrap().to_lowercase();
    assert!(
        ["storm", "thunder", "lightning"]
            .iter()
            .any(|w| lower.contains(w)),
        "{lower}"
    );

    let r = c
        .call(DESCRIBE, Some(&me.access), json!({"regionId": "atlantis"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["code"], "not_found");
    let r = c
        .call(
            DESCRIBE,
            Some(&me.access),
            json!({"regionId": "ashfen", "perspective": "sideways"}),
        )
        .await;
    assert_eq!(r.status, 400);
    // Attacker's step: a player cannot change the sky (Override is an operator's admin method).
    let r = c
        .call(
            rpc::weather::OVERRIDE.path,
            Some(&me.access),
            json!({"regionId": "ashfen", "condition": "CONDITION_CLEAR", "durationMinutes": 120}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
}

#[tokio::test]
async fn messages_in_the_player_s_language_and_translations_that_repeat() {
    const LOCALIZE: &str = rpc::language::LOCALIZE.path;
    const LOCALES: &str = rpc::language::LIST_LOCALES.path;
    const TRANSLATE: &str = rpc::language::TRANSLATE.path;
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "polyglot").await;

    let l = c.call(LOCALES, Some(&me.access), json!({})).await.json();
    assert_eq!(l["locales"], json!(["en", "de", "fr", "pl", "ja"]));
    assert_eq!(l["defaultLocale"], "en");

    let say = |locale: &'static str, n: f64| {
        let (c, token) = (c.clone(), me.access.clone());
        async move {
            c.call(
                LOCALIZE,
                Some(&token),
                json!({"messageId": "items-received", "locale": locale, "args": {"count": n}}),
            )
            .await
            .json()
        }
    };
    let two = say("pl-PL", 2.0).await;
    assert_eq!(two["locale"], "pl");
    let five = say("pl-PL", 5.0).await;
    assert_ne!(two["text"], five["text"], "few and many differ");
    assert_eq!(
        say("pt-BR", 5.0).await["locale"],
        "en",
        "an unknown locale falls back"
    );
    // With no locale: the request's Accept-Language, until the player's settings choose one.
    let level_up = json!({"messageId": "level-up", "args": {"level": 3}});
    let r = c
        .call_with(
            LOCALIZE,
            Some(&me.access),
            &[("accept-language", "de-CH, de;q=0.9, en;q=0.5")],
            level_up.clone(),
        )
        .await
        .json();
    assert_eq!(
        (r["locale"].as_str(), r["messageId"].as_str()),
        (Some("de"), Some("level-up")),
        "{r}"
    );
    let r = c
        .call_with(
            rpc::settings::UPDATE.path,
            Some(&me.access),
            &[("idempotency-key", "lang-pl")],
            json!({"patch": {"language": "pl-PL"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c
        .call_with(
            LOCALIZE,
            Some(&me.access),
            &[("accept-language", "de")],
            level_up,
        )
        .await
        .json();
    assert_eq!(r["locale"], "pl", "the settings win: {r}");
    let r = c
        .call(
            LOCALIZE,
            Some(&me.access),
            json!({"messageId": "quest-accepted", "locale": "de"}),
        )
        .await;
    assert_eq!(r.status, 400, "a missing argument: {}", r.text());
    let r = c
        .call(
            LOCALIZE,
            Some(&me.access),
            json!({"messageId": "nope", "locale": "de"}),
        )
        .await;
    assert_eq!(r.status, 404);

    // The built-in grammar model cannot translate (it would answer English as French), and none
    // other is configured: a clear error naming the setting, not English passed off as French.
    let ask = json!({"text": "The bell tolls under the fen.", "sourceLocale": "en", "targetLocale": "fr"});
    let a = c.call(TRANSLATE, Some(&me.access), ask.clone()).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.json()["code"], "failed_precondition");
    let why = a.json()["message"].as_str().unwrap().to_owned();
    assert!(
        why.contains("no active model can translate") && why.contains("capabilities"),
        "{why}"
    );
    // Attacker's step: no player makes the model read an unbounded text on the game's account.
    let long = "fen ".repeat(600);
    let r = c
        .call(
            TRANSLATE,
            Some(&me.access),
            json!({"text": long, "sourceLocale": "en", "targetLocale": "de"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn lore_is_searchable_and_edits_show_at_once() {
    const SEARCH: &str = rpc::kb::SEARCH.path;
    const UPSERT: &str = rpc::kb::UPSERT.path;
    const DELETE: &str = rpc::kb::DELETE.path;
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "scholar").await;
    let writer = edge.service_key("lorekeeper", "kb");

    let r = c
        .call(
            SEARCH,
            Some(&me.access),
            json!({"query": "drowned abbey bell", "limit": 3}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let hits = r.json()["hits"].as_array().cloned().unwrap_or_default();
    assert!(!hits.is_empty() && hits.len() <= 3, "{hits:?}");
    assert!(hits[0]["snippet"].as_str().unwrap().len() > 20);
    // Accents fold: "eloi" finds Saint-Éloi.
    let r = c
        .call(SEARCH, Some(&me.access), json!({"query": "eloi"}))
        .await
        .json();
    assert!(r["hits"].as_array().is_some_and(|h| !h.is_empty()), "{r}");

    let doc = json!({"document": {"id": "the-ninth-bell", "title": "The Ninth Bell",
        "body": "Nobody in Ashfen will say who rang the ninth bell.", "tags": ["ashfen"]}});
    let r = c.call(UPSERT, Some(&me.access), doc.clone()).await;
    assert_eq!(r.status, 403, "players do not write lore");
    let r = c.call(UPSERT, Some(&writer), doc).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let found = c
        .call(
            SEARCH,
            Some(&me.access),
            json!({"query": "ninth", "tags": ["ashfen"]}),
        )
        .await
        .json();
    assert_eq!(found["hits"][0]["title"], "The Ninth Bell");
    let r = c
        .call(DELETE, Some(&writer), json!({"id": "the-ninth-bell"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let gone = c
        .call(SEARCH, Some(&me.access), json!({"query": "ninth"}))
        .await
        .json();
    let ids: Vec<&str> = gone["hits"]
        .as_array()
        .map(|h| h.iter().filter_map(|x| x["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(!ids.contains(&"the-ninth-bell"), "{gone}");
}

#[tokio::test]
async fn a_story_advances_by_compare_and_set_and_narrates_the_same_twice() {
    const GET_ARC: &str = rpc::story::GET_ARC.path;
    const ADVANCE: &str = rpc::story::ADVANCE_ARC.path;
    const NARRATE: &str = rpc::story::NARRATE.path;
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "wanderer").await;
    let arc = "the-drowned-bell";

    let r = c
        .call(GET_ARC, Some(&me.access), json!({"arcId": arc}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json()["arc"].clone();
    assert_eq!(a["beatId"], "bell-in-the-fog");
    assert!(a.get("version").is_none() || a["version"] == "0", "{a}");
    let choices = a["choices"].as_array().unwrap().clone();
    assert!(choices.contains(&json!("find-the-ferrywoman")), "{a}");

    let step = |choice: &'static str, expected: &'static str| {
        let (c, token) = (c.clone(), me.access.clone());
        async move {
            c.call(
                ADVANCE,
                Some(&token),
                json!({"arcId": arc, "choice": choice, "expectedVersion": expected}),
            )
            .await
        }
    };
    let r = step("find-the-ferrywoman", "0").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let moved = r.json()["arc"].clone();
    assert_eq!(moved["beatId"], "the-ferry-landing");
    assert_eq!(moved["beats"].as_array().unwrap().len(), 2);
    // Stale: 409.
    let r = step("pole-to-the-tower", "0").await;
    assert_eq!(r.status, 409, "{}", r.text());
    let v = moved["version"].as_str().unwrap().to_owned();
    // Gated by a quest the player has not done: refused, and the options say why.
    let gate = moved["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "speak-the-true-name")
        .cloned()
        .unwrap();
    assert!(
        gate.get("available").is_none() || gate["available"] == false,
        "{gate}"
    );
    assert!(
        gate["requirement"]
            .as_str()
            .unwrap()
            .contains("Bell of Saint Wren"),
        "{gate}"
    );
    let r = c
        .call(
            ADVANCE,
            Some(&me.access),
            json!({"arcId": arc, "choice": "speak-the-true-name", "expectedVersion": v}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], "failed_precondition");
    let r = c
        .call(
            ADVANCE,
            Some(&me.access),
            json!({"arcId": arc, "choice": "fly-away", "expectedVersion": v}),
        )
        .await;
    assert_eq!(r.json()["code"], "invalid_argument");

    // Narration streams from the model through the router; the same inputs, the same text.
    let narrate = || async {
        let s = edge_e2e::sse::Sse::post(
            &c,
            NARRATE,
            Some(&me.access),
            json!({"cue": "the punt scrapes the jetty", "maxTokens": 60}),
        )
        .await;
        assert_eq!(s.status, 200);
        s.collect().await
    };
    let first = narrate().await;
    let text = edge_e2e::sse::deltas(&first);
    assert!(text.split_whitespace().count() > 5, "{text:?}");
    let second = narrate().await;
    let again = edge_e2e::sse::deltas(&second);
    assert_eq!(text, again);
    // Another player's arc is not theirs to move.
    let other = scenarios::login(&c, "intruder").await;
    let r = c
        .call(
            ADVANCE,
            Some(&other.access),
            json!({"arcId": arc, "choice": "pole-to-the-tower", "playerId": me.player_id}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
}

#[tokio::test]
async fn narration_from_a_worker_stops_when_the_player_leaves() {
    use std::time::Duration;
    const NARRATE: &str = rpc::story::NARRATE.path;
    let nats = edge_e2e::nats::Nats::start("");
    let url = nats.url();
    let _worker = Edge::start_worker(&[
        "--nats",
        &url,
        "--services",
        "llm",
        "--grammar-token-interval",
        "100ms",
    ]);
    let edge = Edge::start(&["--rate-limit", "false", "--nats", &url, "--remote", "llm"]);
    let c = edge.client();
    let me = scenarios::login(&c, "listener").await;
    let spy = nats.client().await;
    let mut inbox = spy.subscribe("_INBOX.>").await.unwrap();
    spy.flush().await.unwrap();

    // The story service runs here; its model call streams from the worker.
    let mut s = None;
    edge_e2e::eventually(Duration::from_secs(10), "the worker answers", async || {
        let attempt = edge_e2e::sse::Sse::post(
            &c,
            NARRATE,
            Some(&me.access),
            json!({"arcId": "the-green-comet", "maxTokens": 1000}),
        )
        .await;
        let ok = attempt.status == 200;
        if ok {
            s = Some(attempt);
        }
        ok
    })
    .await;
    let mut s = s.unwrap();
    for _ in 0..3 {
        assert!(s.next().await.is_some(), "narration flows");
    }
    drop(s);
    // The edge tells the worker, which stops publishing tokens (one may be in flight).
    let (cancelled, after_cancel) =
        edge_e2e::nats::messages_after_cancel(&mut inbox, Duration::from_secs(3)).await;
    assert!(cancelled, "the edge published a cancel");
    assert!(after_cancel <= 1, "{after_cancel} tokens after the cancel");
    // Attacker's step: narrating another player's arc is refused before any model call.
    let other = scenarios::login(&c, "eavesdropper").await;
    let theirs = edge_e2e::sse::Sse::post(
        &c,
        NARRATE,
        Some(&other.access),
        json!({"arcId": "the-green-comet", "playerId": me.player_id}),
    )
    .await;
    assert_eq!(theirs.status, 403);
}
