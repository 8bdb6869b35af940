//! End-to-end: LLM streams over SSE (Connect path and OpenAI-compatible), the stream rules one by
//! one, the openai provider against a fake upstream, streams over NATS, the token quota.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::time::{Duration, Instant};

use edge_e2e::nats::Nats;
use edge_e2e::sse::{FakeOpenAi, Sse, deltas};
use edge_e2e::{Edge, scenarios};
use futures_util::StreamExt as _;
use http::StatusCode;
use serde_json::json;

const STREAM: &str = rpc::llm::INFER_STREAM.path;
const INFER: &str = rpc::llm::INFER.path;
const CHAT: &str = "/v1/chat/completions";

fn ask(max_tokens: u32, seed: u64) -> serde_json::Value {
    json!({"messages": [{"role": "user", "content": "Where is the mill?"}], "maxTokens": max_tokens, "seed": seed.to_string()})
}

/// Writes a config file declaring models on the fake upstream, with its API key.
fn config_with(fake: &FakeOpenAi, extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.toml");
    let mut text = format!(
        "[llm]\nfirst_token_timeout = \"2s\"\n[llm.api_keys]\n\"http://{}\" = \"test-key\"\n",
        fake.addr
    );
    for (name, tasks) in [
        ("ok", "[]"),
        ("long", "[]"),
        ("silent-6", "[]"),
        ("broken", "[]"),
        ("slow", "[]"),
        ("fail", "[\"dialogue\"]"),
    ] {
        text.push_str(&format!(
            "[[llm.models]]\nname = \"{name}\"\nprovider = \"openai\"\nendpoint = \"{}\"\ntasks = {tasks}\n",
            fake.base()
        ));
    }
    text = format!("{extra}\n{text}");
    std::fs::write(&path, text).unwrap();
    (dir, path.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn grammar_streams_on_the_connect_path_and_as_openai_chat() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "streamer").await;

    let s = Sse::post(&c, STREAM, Some(&me.access), ask(40, 7)).await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.headers["content-type"], "text/event-stream");
    let events = s.collect().await;
    let last_data = &events[events.len() - 2];
    assert_eq!(last_data.json()["finishReason"], "stop");
    assert_eq!(events.last().unwrap().event.as_deref(), Some("end"));
    let text = deltas(&events);
    assert!(text.len() > 20, "{text}");

    // The same seed gives the same text, unary or streamed.
    let unary = c.call(INFER, Some(&me.access), ask(40, 7)).await;
    assert_eq!(unary.status, StatusCode::OK);
    assert_eq!(unary.json()["text"], text);
    assert_eq!(unary.json()["model"], "grammar");

    // OpenAI-compatible, streaming: chunks, a usage chunk, then [DONE].
    let s = Sse::post(
        &c,
        CHAT,
        Some(&me.access),
        json!({"model": "grammar", "messages": [{"role": "user", "content": "Where is the mill?"}],
               "seed": 7, "max_tokens": 40, "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK);
    let events = s.collect().await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<_> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, text);
    let usage = &chunks.last().unwrap()["usage"];
    assert!(usage["completion_tokens"].as_u64().unwrap() > 5);
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );

    // Non-streaming.
    let r = c
        .call(
            CHAT,
            Some(&me.access),
            json!({"model": "grammar", "messages": [{"role": "user", "content": "Where is the mill?"}], "seed": 7, "max_tokens": 40}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], text);
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 5);

    // Errors, OpenAI-shaped, before anything streams.
    let r = c
        .call(
            CHAT,
            Some(&me.access),
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
    let r = c
        .call(CHAT, Some(&me.access), json!({"messages": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The layers' errors too (authentication here), so an OpenAI SDK shows their message.
    let r = c.call(CHAT, None, json!({"messages": []})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json()["error"]["type"],
        "authentication_error",
        "{}",
        r.text()
    );
    assert_eq!(r.json()["error"]["message"], "missing bearer token");
    let r = c.call(CHAT, Some("nope"), json!({"messages": []})).await;
    assert_eq!(r.json()["error"]["code"], "unauthenticated", "{}", r.text());
    // A streaming method without Accept: text/event-stream says how to call it.
    let r = c.call(STREAM, Some(&me.access), ask(5, 1)).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("text/event-stream")
    );
    // Invalid requests are HTTP statuses, not streams.
    let s = Sse::post(
        &c,
        STREAM,
        Some(&me.access),
        json!({"messages": [], "maxTokens": 99999}),
    )
    .await;
    assert_eq!(s.status, StatusCode::BAD_REQUEST);
    assert!(s.text().await.contains("maxTokens"));
}

#[tokio::test]
async fn openai_provider_errors_fallback_and_keys() {
    let fake = FakeOpenAi::start().await;
    let (_dir, config) = config_with(&fake, "");
    let edge = Edge::start(&["--rate-limit", "false", "--config", &config]);
    let c = edge.client();
    let me = scenarios::login(&c, "openai-user").await;

    // A healthy upstream: its tokens and its usage; the key went to its origin.
    let s = Sse::post(
        &c,
        STREAM,
        Some(&me.access),
        json!({"model": "ok", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK);
    let events = s.collect().await;
    assert_eq!(deltas(&events), "Hello world");
    let fin = events[events.len() - 2].json();
    assert_eq!(fin["usage"]["totalTokens"], 5);
    assert_eq!(
        fake.seen.lock().unwrap().auth["ok"].as_deref(),
        Some("Bearer test-key")
    );

    // Failing before the first token: an HTTP status; the upstream's text is not shown.
    let s = Sse::post(
        &c,
        STREAM,
        Some(&me.access),
        json!({"model": "fail", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(s.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(s.headers.contains_key("retry-after"));
    let body = s.text().await;
    assert!(!body.contains("10.1.2.3"), "{body}");

    // Failing after it: an error event, never a silent end.
    let s = Sse::post(
        &c,
        STREAM,
        Some(&me.access),
        json!({"model": "broken", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK);
    let events = s.collect().await;
    assert_eq!(deltas(&events), "One two");
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    assert_eq!(last.json()["code"], "unavailable");

    // No first token within the time-to-first-token timeout: 504.
    let started = Instant::now();
    let s = Sse::post(
        &c,
        STREAM,
        Some(&me.access),
        json!({"model": "slow", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(s.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(10));

    // Routed by task: "fail" is made for dialogue, fails before its first token, and the
    // default (grammar) answers instead.
    let r = c
        .call(
            INFER,
            Some(&me.access),
            json!({"task": "dialogue", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["model"], "grammar");
    assert!(fake.seen.lock().unwrap().calls["fail"] >= 2);

    // The catalog lists the configured models beside the built-in one.
    let r = c
        .call(rpc::models::LIST.path, Some(&me.access), json!({}))
        .await;
    let names: Vec<String> = r.json()["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"grammar".to_owned()) && names.contains(&"ok".to_owned()),
        "{names:?}"
    );
    // Players cannot change it.
    let r = c
        .call(
            rpc::models::SET_DEFAULT.path,
            Some(&me.access),
            json!({"name": "ok"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        !edge.logs().contains("test-key"),
        "the API key never reaches a log"
    );
}

#[tokio::test]
async fn a_silent_upstream_is_kept_alive_by_heartbeats() {
    let fake = FakeOpenAi::start().await;
    let (_dir, config) = config_with(&fake, "");
    let edge = Edge::start(&[
        "--rate-limit",
        "false",
        "--config",
        &config,
        "--sse-heartbeat",
        "1s",
    ]);
    let c = edge.client();
    let me = scenarios::login(&c, "patient").await;
    let mut s = Sse::post(
        &c,
        STREAM,
        Some(&me.access),
        json!({"model": "silent-6", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK);
    let first = s.next().await.unwrap();
    assert_eq!(first.json()["delta"], "Before");
    let mut pings = 0;
    let mut longest = Duration::ZERO;
    let mut last = Instant::now();
    let mut rest = Vec::new();
    while let Some(e) = s.next().await {
        longest = longest.max(last.elapsed());
        last = Instant::now();
        if e.comment {
            pings += 1;
        } else {
            rest.push(e);
        }
    }
    // 6 s of upstream silence with a 1 s heartbeat: bytes at least every ~1 s, as 90 s of
    // silence with the default 15 s heartbeat keeps inside an ALB's 60 s idle timeout.
    assert!(pings >= 4, "{pings} heartbeats");
    assert!(
        longest < Duration::from_millis(1800),
        "longest silence {longest:?}"
    );
    assert_eq!(deltas(&rest), " after");
    assert_eq!(rest.last().unwrap().event.as_deref(), Some("end"));
}

#[tokio::test]
async fn open_streams_are_limited_and_sigterm_ends_them_with_a_reconnect() {
    let mut edge = Edge::start(&[
        "--rate-limit",
        "false",
        "--max-streams",
        "2",
        "--grammar-token-interval",
        "300ms",
        "--drain-delay",
        "1s",
        "--shutdown-timeout",
        "10s",
    ]);
    let c = edge.client();
    let me = scenarios::login(&c, "many").await;
    let mut a = Sse::post(&c, STREAM, Some(&me.access), ask(500, 1)).await;
    let mut b = Sse::post(&c, STREAM, Some(&me.access), ask(500, 2)).await;
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert!(a.next().await.is_some() && b.next().await.is_some());
    let started = Instant::now();
    let third = Sse::post(&c, STREAM, Some(&me.access), ask(5, 3)).await;
    assert_eq!(third.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(third.headers.contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once"
    );
    // A closed stream frees its slot.
    drop(b);
    edge_e2e::eventually(
        Duration::from_secs(5),
        "the closed stream is let go",
        async || edge.gauge("edge_sse_streams_open").await <= 1.0,
    )
    .await;
    let mut b = Sse::post(&c, STREAM, Some(&me.access), ask(500, 4)).await;
    assert_eq!(b.status, StatusCode::OK);
    assert!(b.next().await.is_some());

    // SIGTERM: after the drain delay, both streams end with a reconnect event, and the process
    // exits 0 well inside its shutdown timeout.
    edge.signal("TERM");
    for s in [&mut a, &mut b] {
        let mut last = None;
        while let Some(e) = s.next_within(Duration::from_secs(8)).await {
            last = Some(e);
        }
        let last = last.expect("a final event");
        assert_eq!(last.event.as_deref(), Some("error"), "{last:?}");
        assert_eq!(last.json()["code"], "unavailable");
        assert!(
            last.json()["message"]
                .as_str()
                .unwrap()
                .contains("reconnect")
        );
        assert_eq!(last.retry, Some(1000));
    }
    let status = edge.wait_exit(Duration::from_secs(10)).expect("exited");
    assert!(status.success());
}

#[tokio::test]
async fn llm_quota_is_by_cost_and_ends_a_stream_loudly() {
    let fake = FakeOpenAi::start().await;
    // Almost no refill: the burst is the whole budget of this test.
    let (_dir, config) = config_with(
        &fake,
        "[rate_limit]\nllm_tokens_per_minute = 1\nllm_token_burst = 8192\n[rate_limit.llm]\nper_minute = 1000\nburst = 1000\n",
    );
    let edge = Edge::start(&["--config", &config]);
    let c = edge.client();
    let me = scenarios::login(&c, "spender").await;
    let other = scenarios::login(&c, "saver").await;

    // A unary call reserves its whole maxTokens: 8100 + the prompt.
    let r = c
        .call(
            INFER,
            Some(&me.access),
            json!({"messages": [{"role": "user", "content": "hi"}], "maxTokens": 8100}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = c
        .call(
            INFER,
            Some(&me.access),
            json!({"messages": [{"role": "user", "content": "hi"}], "maxTokens": 200}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.json()["code"], "resource_exhausted");
    // Another player is unaffected.
    let r = c
        .call(
            INFER,
            Some(&other.access),
            json!({"messages": [{"role": "user", "content": "hi"}], "maxTokens": 8100}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // A stream pays as it goes: 64 tokens up front fit in what is left, the next slice does not.
    let s = Sse::post(
        &c,
        STREAM,
        Some(&other.access),
        json!({"model": "long", "messages": [{"role": "user", "content": "hi"}], "maxTokens": 300}),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK);
    let events = s.collect().await;
    let data: Vec<_> = events
        .iter()
        .filter(|e| e.event.is_none() && !e.comment)
        .collect();
    assert_eq!(data.len(), 64);
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    assert_eq!(last.json()["code"], "resource_exhausted");
}

#[tokio::test]
async fn streams_over_nats_and_a_disconnect_stops_the_worker() {
    let nats = Nats::start("");
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
    let me = scenarios::login(&c, "remote-streamer").await;
    let spy = nats.client().await;

    // The same text as a local grammar stream with the same seed, numbered end to end.
    let local = Edge::start(&["--rate-limit", "false"]);
    let lc = local.client();
    let lme = scenarios::login(&lc, "local-streamer").await;
    let expected = deltas(
        &Sse::post(&lc, STREAM, Some(&lme.access), ask(30, 9))
            .await
            .collect()
            .await,
    );
    let mut ok = false;
    for _ in 0..50 {
        let s = Sse::post(&c, STREAM, Some(&me.access), ask(30, 9)).await;
        if s.status == StatusCode::OK {
            let events = s.collect().await;
            assert_eq!(deltas(&events), expected);
            assert_eq!(events.last().unwrap().event.as_deref(), Some("end"));
            ok = true;
            break;
        }
        // The worker may still be registering.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "a stream over NATS completed");

    // A client that goes away: the edge tells the worker, which stops publishing.
    let mut inbox = spy.subscribe("_INBOX.>").await.unwrap();
    spy.flush().await.unwrap();
    let mut s = Sse::post(&c, STREAM, Some(&me.access), json!({"messages": [{"role": "user", "content": "Tell me everything."}], "maxTokens": 8000, "seed": "1"})).await;
    assert_eq!(s.status, StatusCode::OK);
    for _ in 0..3 {
        assert!(s.next().await.is_some());
    }
    drop(s);
    let (cancelled, after_cancel) =
        edge_e2e::nats::messages_after_cancel(&mut inbox, Duration::from_secs(3)).await;
    assert!(cancelled, "the edge published a cancel");
    assert!(
        after_cancel <= 1,
        "{after_cancel} messages after the cancel"
    );

    // A streaming call with no worker at all: 503 at once, before any event.
    drop(_worker);
    edge_e2e::eventually(Duration::from_secs(10), "no worker: 503", async || {
        let started = Instant::now();
        let s = Sse::post(&c, STREAM, Some(&me.access), ask(5, 1)).await;
        if s.status != StatusCode::SERVICE_UNAVAILABLE {
            // The worker is still on its way out.
            assert_eq!(s.status, StatusCode::OK);
            return false;
        }
        assert!(started.elapsed() < Duration::from_secs(2), "at once");
        true
    })
    .await;
}

#[tokio::test]
async fn five_hundred_concurrent_streams() {
    // One player opens all 500 here: raise the per-player cap (32) for this capacity test.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(&config, "[streams]\nmax_per_principal = 1000\n").unwrap();
    let edge = Edge::start(&[
        "--config",
        config.to_str().unwrap(),
        "--rate-limit",
        "false",
        "--grammar-token-interval",
        "50ms",
    ]);
    let c = edge.client();
    let me = scenarios::login(&c, "crowd").await;
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(c.connect(true).await.unwrap());
    }
    let mut tasks = Vec::new();
    for i in 0..500u64 {
        let conn = match &conns[(i % 4) as usize] {
            edge_e2e::client::Conn::H2(s) => edge_e2e::client::Conn::H2(s.clone()),
            edge_e2e::client::Conn::H1(_) => panic!("h2 expected"),
        };
        let token = me.access.clone();
        tasks.push(tokio::spawn(async move {
            let s = Sse::send(
                conn,
                http::Method::POST,
                STREAM,
                Some(&token),
                bytes::Bytes::from(ask(20, i).to_string()),
                &[],
            )
            .await;
            assert_eq!(s.status, StatusCode::OK);
            let events = s.collect().await;
            events.last().and_then(|e| e.event.clone())
        }));
    }
    let mut ended = 0;
    for t in tasks {
        if t.await.unwrap().as_deref() == Some("end") {
            ended += 1;
        }
    }
    assert_eq!(ended, 500);
}

#[tokio::test]
async fn a_gap_in_a_nats_stream_ends_it_loudly() {
    let nats = Nats::start("");
    let url = nats.url();
    let edge = Edge::start(&["--rate-limit", "false", "--nats", &url, "--remote", "llm"]);
    let c = edge.client();
    let me = scenarios::login(&c, "gap-victim").await;
    // The test is the worker: it numbers its messages 1, then 3.
    let worker = nats.client().await;
    let mut requests = worker
        .queue_subscribe("svc.llm.v1.infer_stream", "llm".into())
        .await
        .unwrap();
    worker.flush().await.unwrap();
    let fake = tokio::spawn(async move {
        let req = requests.next().await.unwrap();
        assert!(req.headers.as_ref().unwrap().get("Edge-Stream").is_some());
        let reply = req.reply.unwrap().to_string();
        let mut cancel = worker.subscribe(format!("{reply}.cancel")).await.unwrap();
        worker.flush().await.unwrap();
        for seq in ["1", "3"] {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Edge-Seq", seq);
            // An empty protobuf message is a valid (empty) InferStreamResponse.
            worker
                .publish_with_headers(reply.clone(), h, bytes::Bytes::new())
                .await
                .unwrap();
        }
        worker.flush().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), cancel.next())
            .await
            .is_ok_and(|m| m.is_some())
    });
    let s = Sse::post(&c, STREAM, Some(&me.access), ask(10, 1)).await;
    assert_eq!(s.status, StatusCode::OK);
    let events: Vec<_> = s
        .collect()
        .await
        .into_iter()
        .filter(|e| !e.comment)
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].event, None);
    assert_eq!(events[1].event.as_deref(), Some("error"));
    let err = events[1].json();
    assert_eq!(err["code"], "unavailable");
    assert!(
        err["message"].as_str().unwrap().contains("lost messages"),
        "{err}"
    );
    assert!(fake.await.unwrap(), "the worker was told to stop");
}

#[tokio::test]
async fn a_worker_sends_tokens_in_frames_and_the_edge_one_event_each() {
    let nats = Nats::start("");
    let url = nats.url();
    // No pacing: the generator has every token ready, as a fast model under load would.
    let _worker = Edge::start_worker(&["--nats", &url, "--services", "llm"]);
    let edge = Edge::start(&["--rate-limit", "false", "--nats", &url, "--remote", "llm"]);
    let c = edge.client();
    let me = scenarios::login(&c, "framed-streamer").await;
    let local = Edge::start(&["--rate-limit", "false"]);
    let lc = local.client();
    let lme = scenarios::login(&lc, "local-framed").await;
    let expected = deltas(
        &Sse::post(&lc, STREAM, Some(&lme.access), ask(300, 4))
            .await
            .collect()
            .await,
    );
    assert!(expected.len() >= 100, "a long reply: {}", expected.len());

    let spy = nats.client().await;
    let mut inbox = spy.subscribe("_INBOX.>").await.unwrap();
    spy.flush().await.unwrap();
    let mut events = Vec::new();
    for _ in 0..100 {
        let s = Sse::post(&c, STREAM, Some(&me.access), ask(300, 4)).await;
        if s.status == StatusCode::OK {
            events = s.collect().await;
            break;
        }
        // The worker may still be registering.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One SSE event per token, the same text as in-process.
    assert_eq!(deltas(&events), expected);
    assert_eq!(events.last().unwrap().event.as_deref(), Some("end"));

    // On the bus: numbered frames, far fewer than the tokens.
    let (mut messages, mut frames) = (0, 0);
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), inbox.next()).await {
        let Some(h) = m.headers.as_ref() else {
            continue;
        };
        if h.get("Edge-Seq").is_some() {
            messages += 1;
            frames += usize::from(h.get("Edge-Frame").is_some());
        }
    }
    assert!(frames >= 1, "the worker framed its tokens");
    assert!(
        messages * 4 <= expected.len(),
        "{messages} NATS messages for {} tokens",
        expected.len()
    );
}

#[tokio::test]
async fn the_edge_reads_a_frame_with_the_end_riding_on_it() {
    let nats = Nats::start("");
    let url = nats.url();
    let edge = Edge::start(&["--rate-limit", "false", "--nats", &url, "--remote", "llm"]);
    let c = edge.client();
    let me = scenarios::login(&c, "frame-reader").await;
    // The test is a version-2 worker: one frame of three (empty) messages that also ends the
    // stream, so the edge must hand on the items before the end.
    let worker = nats.client().await;
    let mut requests = worker
        .queue_subscribe("svc.llm.v1.infer_stream", "llm".into())
        .await
        .unwrap();
    worker.flush().await.unwrap();
    let fake = tokio::spawn(async move {
        let req = requests.next().await.unwrap();
        let asked = req
            .headers
            .as_ref()
            .unwrap()
            .get("Edge-Stream")
            .unwrap()
            .to_string();
        let reply = req.reply.unwrap().to_string();
        let mut h = async_nats::HeaderMap::new();
        h.insert("Edge-Seq", "1");
        h.insert("Edge-Frame", "1");
        h.insert("Edge-End", "ok");
        // Three length-delimited empty messages: a varint 0 each.
        worker
            .publish_with_headers(reply, h, bytes::Bytes::from_static(&[0, 0, 0]))
            .await
            .unwrap();
        worker.flush().await.unwrap();
        asked
    });
    let s = Sse::post(&c, STREAM, Some(&me.access), ask(10, 1)).await;
    assert_eq!(s.status, StatusCode::OK);
    let events: Vec<_> = s
        .collect()
        .await
        .into_iter()
        .filter(|e| !e.comment)
        .collect();
    assert_eq!(
        events.iter().filter(|e| e.event.is_none()).count(),
        3,
        "{events:?}"
    );
    assert_eq!(events.last().unwrap().event.as_deref(), Some("end"));
    assert_eq!(fake.await.unwrap(), "2", "the edge asks for frames");
}
