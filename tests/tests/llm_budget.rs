//! The LLM budget follows the chain: a model call made by a service for a client (Translate,
//! Narrate) is charged to the client's token bucket, or to the player a service key acts for; and
//! the daily spend caps live in the store, so no replica, worker or restart starts them afresh.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use edge_e2e::{Edge, scenarios, sse::Sse};
use proto::rpc;
use serde_json::{Value, json};

const INFER: &str = rpc::llm::INFER.path;
const TRANSLATE: &str = rpc::language::TRANSLATE.path;
const NARRATE: &str = rpc::story::NARRATE.path;

fn config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path.to_str().unwrap().to_owned())
}

fn translate(n: usize) -> Value {
    // A new text each time: a cached translation costs no model call.
    json!({"text": format!("The lantern {n} gutters by the fen."), "sourceLocale": "en", "targetLocale": "fr"})
}

#[tokio::test]
async fn calls_between_services_are_charged_to_whoever_started_the_chain() {
    // Almost no refill: the burst is each payer's whole budget here. The request-count limits
    // are high so only the token bucket can refuse. Translate needs a model that declares it
    // can: the built-in generator, declared so for this test.
    let (_dir, file) = config(
        "[rate_limit]\nllm_tokens_per_minute = 1\nllm_token_burst = 8192\n[rate_limit.llm]\nper_minute = 1000\nburst = 1000\n[[llm.models]]\nname = \"polyglot\"\nprovider = \"grammar\"\ncapabilities = [\"chat\", \"translate\"]\n",
    );
    let edge = Edge::start(&["--config", &file]);
    let c = edge.client();
    let me = scenarios::login(&c, "talker").await;
    let other = scenarios::login(&c, "listener").await;
    // Attacker's step: spend the bucket on direct calls...
    let r = c
        .call(
            INFER,
            Some(&me.access),
            json!({"messages": [{"role": "user", "content": "hi"}], "maxTokens": 8100}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c
        .call(
            INFER,
            Some(&me.access),
            json!({"messages": [{"role": "user", "content": "hi"}], "maxTokens": 200}),
        )
        .await;
    assert_eq!(r.status, 429);
    // ...then reach the model through a service: the same empty bucket refuses it.
    for n in 0..5 {
        let r = c.call(TRANSLATE, Some(&me.access), translate(n)).await;
        assert_eq!(r.status, 429, "Translate {n}: {}", r.text());
        assert_eq!(r.json()["code"], "resource_exhausted");
    }
    let s = Sse::post(
        &c,
        NARRATE,
        Some(&me.access),
        json!({"cue": "the punt scrapes the jetty", "maxTokens": 200}),
    )
    .await;
    assert_eq!(s.status, 429, "Narrate pays from the player's bucket too");
    // Another player's bucket is theirs: the same calls go through.
    let r = c.call(TRANSLATE, Some(&other.access), translate(0)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A game server narrating for a player pays from that player's bucket, not its own key's.
    let key = edge.service_key("narrator", "story");
    let s = Sse::post(
        &c,
        NARRATE,
        Some(&key),
        json!({"playerId": me.player_id, "cue": "a bell", "maxTokens": 200}),
    )
    .await;
    assert_eq!(s.status, 429, "charged to the player it acts for");
    let s = Sse::post(
        &c,
        NARRATE,
        Some(&key),
        json!({"playerId": other.player_id, "cue": "a bell", "maxTokens": 200}),
    )
    .await;
    assert_eq!(s.status, 200);
    let events = s.collect().await;
    assert!(!edge_e2e::sse::deltas(&events).is_empty());
}

#[tokio::test]
async fn daily_spend_caps_hold_across_calls_services_and_restarts() {
    // A paid model (the built-in generator, priced, declared able to translate so that Translate
    // reaches it), and a cap of 600 units a player a day: a call reserves its worst case (prompt +
    // maxTokens at 1000 units per 1000 tokens).
    let (_dir, file) = config(
        "[rate_limit]\nenabled = false\n[llm.spend]\nper_payer_daily = 600\ntotal_daily = 100000\n[[llm.models]]\nname = \"paid\"\nprovider = \"grammar\"\ninput_cost_per_1k = 1000\noutput_cost_per_1k = 1000\ntasks = [\"translation\"]\ncapabilities = [\"chat\", \"translate\"]\ndefault = true\n",
    );
    let edge = Edge::start(&["--config", &file]);
    let c = edge.client();
    let me = scenarios::login(&c, "big-spender").await;
    let ask = |max: u32| json!({"model": "paid", "messages": [{"role": "user", "content": "hi"}], "maxTokens": max});
    // Translations go to the paid model while the day's budget lasts.
    let r = c
        .call(
            TRANSLATE,
            Some(&me.access),
            json!({"text": "A bell.", "sourceLocale": "en", "targetLocale": "de"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "paid");
    let r = c.call(INFER, Some(&me.access), ask(300)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // What a call did not use comes back, so calls go on until what is left of the day is less
    // than one call's worst case; that call is refused, and says why.
    let mut refused = None;
    for _ in 0..60 {
        let r = c.call(INFER, Some(&me.access), ask(300)).await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = refused.expect("the cap refuses within sixty calls");
    assert_eq!(r.json()["code"], "resource_exhausted");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("daily LLM spend cap"),
        "{}",
        r.text()
    );
    assert!(r.headers.contains_key("retry-after"));
    // Spend what is left of the day in calls of one token each (six units at most).
    let mut drained = false;
    for _ in 0..100 {
        let r = c.call(INFER, Some(&me.access), ask(1)).await;
        if r.status == 429 {
            drained = true;
            break;
        }
    }
    assert!(drained, "small calls use up the day");
    // Through a service, the same cap: the paid model is refused to this player now, and the
    // translation does not fall back to the free built-in model, which cannot translate.
    let r = c
        .call(
            TRANSLATE,
            Some(&me.access),
            json!({"text": "The fen is quiet tonight.", "sourceLocale": "en", "targetLocale": "de"}),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("daily LLM spend cap"),
        "{}",
        r.text()
    );
    // The totals live in the store: a restarted edge remembers them.
    let edge = edge.restart();
    let c = edge.client();
    let me = scenarios::login_again(&c, "big-spender").await;
    let r = c.call(INFER, Some(&me.access), ask(300)).await;
    assert_eq!(r.status, 429, "{}", r.text());
    // Another player has a day of their own.
    let other = scenarios::login(&c, "thrifty").await;
    let r = c.call(INFER, Some(&other.access), ask(300)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}
