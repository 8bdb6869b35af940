//! End-to-end: the event bus over SSE. Ids carry the whole position, Last-Event-ID resumes without
//! loss or repeats (on the same edge, after a restart, and on another edge sharing NATS), player
//! topics are private, and the events service works the same on a NATS worker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::time::Duration;

use edge_e2e::nats::Nats;
use edge_e2e::sse::{Event, Sse};
use edge_e2e::{Client, Edge, scenarios};
use http::StatusCode;
use serde_json::{Value, json};

const PUBLISH: &str = rpc::events::PUBLISH.path;
const REPLAY: &str = rpc::events::REPLAY.path;
const SUBSCRIBE: &str = rpc::events::SUBSCRIBE.path;

/// Publishes a `tick` with payload `{"n": n}`.
async fn try_publish(c: &Client, token: &str, topic: &str, n: u64) -> edge_e2e::Response {
    c.call(
        PUBLISH,
        Some(token),
        json!({"topic": topic, "type": "tick", "payload": {"n": n}}),
    )
    .await
}

/// Publishes and returns the event's sequence.
async fn publish(c: &Client, token: &str, topic: &str, n: u64) -> u64 {
    let r = try_publish(c, token, topic, n).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.json()["sequence"].as_str().unwrap().parse().unwrap()
}

/// The next message that is not a heartbeat.
async fn next(s: &mut Sse) -> Event {
    next_within(s, Duration::from_secs(10)).await
}

/// The next message that is not a heartbeat, within `limit`.
async fn next_within(s: &mut Sse, limit: Duration) -> Event {
    loop {
        let e = s
            .next_within(limit)
            .await
            .unwrap_or_else(|| panic!("an event within {limit:?}"));
        if !e.comment {
            return e;
        }
    }
}

/// (topic, sequence, payload n) of `count` events, checking each id moves that topic on.
async fn events(s: &mut Sse, count: usize) -> (Vec<(String, u64, u64)>, String) {
    let mut out = Vec::new();
    let mut id = String::new();
    for _ in 0..count {
        let e = next(s).await;
        assert_eq!(e.event, None, "{e:?}");
        let j = e.json();
        let topic = j["topic"].as_str().unwrap().to_owned();
        let seq: u64 = j["sequence"].as_str().unwrap().parse().unwrap();
        let now = e.id.clone().expect("every event has an id");
        assert!(
            now.split(',').any(|p| p == format!("{topic}:{seq}")),
            "{now} names {topic}:{seq}"
        );
        assert_eq!(j["type"], "tick");
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        out.push((topic, seq, j["payload"]["n"].as_f64().unwrap() as u64));
        id = now;
    }
    out.sort();
    (out, id)
}

/// Nothing but heartbeats for a moment.
async fn quiet(s: &mut Sse) {
    while let Some(e) = s.next_within(Duration::from_millis(300)).await {
        assert!(e.comment, "unexpected {e:?}");
    }
}

fn at(topic: &str, seqs: &[(u64, u64)]) -> Vec<(String, u64, u64)> {
    seqs.iter()
        .map(|&(s, n)| (topic.to_owned(), s, n))
        .collect()
}

#[tokio::test]
async fn subscribe_publish_and_resume_on_one_edge() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let game = edge.service_key("game", "events");
    let me = scenarios::login(&c, "listener").await;
    let other = scenarios::login(&c, "someone-else").await;
    let mine = format!("player.{}", me.player_id);
    let path = format!("/v1/events?topics=world,{mine}");

    // Errors before the first event are plain statuses.
    let status = |s: Sse| s.status;
    assert_eq!(
        status(Sse::get(&c, "/v1/events?topics=world", None, &[]).await),
        StatusCode::UNAUTHORIZED
    );
    let theirs = format!("/v1/events?topics=player.{}", other.player_id);
    assert_eq!(
        status(Sse::get(&c, &theirs, Some(&me.access), &[]).await),
        StatusCode::FORBIDDEN
    );
    let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
    let many = format!("/v1/events?topics={}", many.join(","));
    for bad in [
        "/v1/events",
        "/v1/events?topics=a..b",
        "/v1/events?topic=world",
        &many,
    ] {
        let s = Sse::get(&c, bad, Some(&me.access), &[]).await;
        assert_eq!(s.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(s.text().await.contains("invalid_argument"));
    }
    let s = Sse::get(
        &c,
        &path,
        Some(&me.access),
        &[("last-event-id", "nonsense")],
    )
    .await;
    assert_eq!(s.status, StatusCode::BAD_REQUEST);

    // A player may publish only on their own topic.
    let r = c
        .call(
            PUBLISH,
            Some(&me.access),
            json!({"topic": "world", "type": "tick"}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = c
        .call(
            PUBLISH,
            Some(&game),
            json!({"topic": "world", "type": "edge.gap"}),
        )
        .await;
    assert_eq!(r.status, 400);

    let mut s = Sse::get(&c, &path, Some(&me.access), &[]).await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.headers["content-type"], "text/event-stream");
    let first = next(&mut s).await;
    assert_eq!(first.event.as_deref(), Some("subscribed"));
    assert_eq!(
        first.id.as_deref(),
        Some(format!("{mine}:0,world:0").as_str())
    );

    for n in 1..=3 {
        assert_eq!(publish(&c, &game, "world", n).await, n);
    }
    assert_eq!(publish(&c, &me.access, &mine, 10).await, 1);
    let (got, last_id) = events(&mut s, 4).await;
    let mut want = at(&mine, &[(1, 10)]);
    want.extend(at("world", &[(1, 1), (2, 2), (3, 3)]));
    assert_eq!(got, want);
    assert_eq!(last_id, format!("{mine}:1,world:3"));
    drop(s);

    // While the client is away: two world events and one of its own.
    publish(&c, &game, "world", 4).await;
    publish(&c, &game, "world", 5).await;
    publish(&c, &game, &mine, 20).await;
    let mut s = Sse::get(&c, &path, Some(&me.access), &[("last-event-id", &last_id)]).await;
    let first = next(&mut s).await;
    assert_eq!(first.event.as_deref(), Some("subscribed"));
    assert_eq!(first.id.as_deref(), Some(last_id.as_str()));
    let (got, _) = events(&mut s, 3).await;
    let mut want = at(&mine, &[(2, 20)]);
    want.extend(at("world", &[(4, 4), (5, 5)]));
    assert_eq!(got, want, "exactly what was missed");
    quiet(&mut s).await;
    publish(&c, &game, "world", 6).await;
    let (got, id) = events(&mut s, 1).await;
    assert_eq!(got, at("world", &[(6, 6)]));
    assert_eq!(id, format!("{mine}:2,world:6"));
    drop(s);

    // The Connect path streams the same, with the same ids; `after` is the body's resume point.
    let mut s = Sse::post(
        &c,
        SUBSCRIBE,
        Some(&game),
        json!({"topics": ["world"], "after": {"world": "4"}}),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(next(&mut s).await.id.as_deref(), Some("world:4"));
    let (got, id) = events(&mut s, 2).await;
    assert_eq!(got, at("world", &[(5, 5), (6, 6)]));
    assert_eq!(id, "world:6");
    drop(s);

    let r = c
        .call(
            REPLAY,
            Some(&me.access),
            json!({"topic": "world", "afterSequence": "2", "limit": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let seqs: Vec<String> = r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seqs, ["3", "4"]);

    // The log is durable: after a hard restart the same id resumes with what came since.
    let resume_at = format!("{mine}:2,world:5");
    let edge = edge.restart();
    let c = edge.client();
    let mut s = Sse::get(
        &c,
        &path,
        Some(&me.access),
        &[("last-event-id", &resume_at)],
    )
    .await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(next(&mut s).await.event.as_deref(), Some("subscribed"));
    let (got, _) = events(&mut s, 1).await;
    assert_eq!(got, at("world", &[(6, 6)]));
    assert_eq!(publish(&c, &game, "world", 7).await, 7);
    let (got, _) = events(&mut s, 1).await;
    assert_eq!(got, at("world", &[(7, 7)]));
}

#[tokio::test]
async fn resume_on_another_edge_sharing_nats() {
    let nats = Nats::start("");
    let url = nats.url();
    let args = [
        "--nats",
        &url,
        "--store",
        "jetstream",
        "--rate-limit",
        "false",
    ];
    let a = Edge::start(&args);
    let b = Edge::start(&args);
    // A third replica sends the events service to a worker: the same bus, over NATS.
    let _worker = Edge::start_worker(&[
        "--nats",
        &url,
        "--services",
        "events",
        "--store",
        "jetstream",
    ]);
    let mut remote_args = args.to_vec();
    remote_args.extend(["--remote", "events"]);
    let r = Edge::start(&remote_args);
    let (ca, cb, cr) = (a.client(), b.client(), r.client());
    let game = edge_e2e::jetstream_service_key(&url, "game", "events");
    let me = scenarios::login(&ca, "roamer").await;
    let mine = format!("player.{}", me.player_id);
    let path = format!("/v1/events?topics=world,{mine}");

    // Events published on B reach a subscriber on A, and one on the worker-backed replica.
    let mut on_a = Sse::get(&ca, &path, Some(&me.access), &[]).await;
    assert_eq!(on_a.status, StatusCode::OK);
    let start = next(&mut on_a).await;
    assert_eq!(start.event.as_deref(), Some("subscribed"));
    let mut on_r = Sse::get(&cr, "/v1/events?topics=world", Some(&me.access), &[]).await;
    assert_eq!(on_r.status, StatusCode::OK, "{:?}", on_r.headers);
    assert_eq!(next(&mut on_r).await.event.as_deref(), Some("subscribed"));
    // A topic that never had an event starts above every number used so far, so its numbers
    // never go back; what matters is that they grow by one from there.
    let w1 = publish(&cb, &game, "world", 1).await;
    let w2 = publish(&cb, &game, "world", 2).await;
    assert_eq!(w2, w1 + 1);
    let p1 = publish(&ca, &me.access, &mine, 10).await;
    let (got, last_id) = events(&mut on_a, 3).await;
    let mut want = at(&mine, &[(p1, 10)]);
    want.extend(at("world", &[(w1, 1), (w2, 2)]));
    assert_eq!(got, want);
    let (got, _) = events(&mut on_r, 2).await;
    assert_eq!(got, at("world", &[(w1, 1), (w2, 2)]));
    drop(on_a);

    // Away from A; published on both replicas; resumed on B: exactly the missed ones, then live.
    publish(&ca, &game, "world", 3).await;
    publish(&cb, &game, "world", 4).await;
    publish(&cb, &me.access, &mine, 20).await;
    let mut on_b = Sse::get(&cb, &path, Some(&me.access), &[("last-event-id", &last_id)]).await;
    assert_eq!(on_b.status, StatusCode::OK);
    assert_eq!(next(&mut on_b).await.id.as_deref(), Some(last_id.as_str()));
    let (got, _) = events(&mut on_b, 3).await;
    let mut want = at(&mine, &[(p1 + 1, 20)]);
    want.extend(at("world", &[(w2 + 1, 3), (w2 + 2, 4)]));
    assert_eq!(got, want, "exactly what was missed");
    quiet(&mut on_b).await;
    publish(&ca, &game, "world", 5).await;
    let (got, _) = events(&mut on_b, 1).await;
    assert_eq!(got, at("world", &[(w2 + 3, 5)]));
    let (got, _) = events(&mut on_r, 3).await;
    assert_eq!(got, at("world", &[(w2 + 1, 3), (w2 + 2, 4), (w2 + 3, 5)]));

    // Publishers racing on every replica still get one number each, with no hole.
    let mut racers = Vec::new();
    for i in 0..30u64 {
        let c = [&ca, &cb, &cr][usize::try_from(i % 3).unwrap()].clone();
        let game = game.clone();
        racers.push(tokio::spawn(
            async move { publish(&c, &game, "race", i).await },
        ));
    }
    let mut seqs = Vec::new();
    for r in racers {
        seqs.push(r.await.unwrap());
    }
    seqs.sort_unstable();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + 30).collect::<Vec<_>>());
    let r = cr
        .call(
            REPLAY,
            Some(&game),
            json!({"topic": "race", "afterSequence": (first - 1).to_string(), "limit": 100}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let replayed: Vec<Value> = r.json()["events"].as_array().unwrap().clone();
    assert_eq!(replayed.len(), 30);
}

#[tokio::test]
async fn a_subscription_lives_through_a_nats_restart() {
    let mut nats = Nats::start("");
    let url = nats.url();
    let edge = Edge::start(&[
        "--nats",
        &url,
        "--store",
        "jetstream",
        "--rate-limit",
        "false",
    ]);
    let c = edge.client();
    let game = edge_e2e::jetstream_service_key(&url, "game", "events");
    let mut s = Sse::get(&c, "/v1/events?topics=world", Some(&game), &[]).await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(next(&mut s).await.event.as_deref(), Some("subscribed"));
    let w1 = publish(&c, &game, "world", 1).await;
    assert_eq!(events(&mut s, 1).await.0, at("world", &[(w1, 1)]));

    // NATS down: publishing fails cleanly, the subscription stays open on heartbeats.
    nats.kill();
    let r = try_publish(&c, &game, "world", 0).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert!(r.headers.contains_key("retry-after"));

    // NATS back: the first publish that succeeds and every later one arrive, in order.
    nats.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let w2 = loop {
        let r = try_publish(&c, &game, "world", 2).await;
        if r.status == 200 {
            break r.json()["sequence"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "NATS did not come back: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(w2, w1 + 1);
    let w3 = publish(&c, &game, "world", 3).await;
    assert_eq!(events(&mut s, 2).await.0, at("world", &[(w2, 2), (w3, 3)]));
}

#[tokio::test]
async fn a_remote_subscription_notices_a_dead_worker() {
    let nats = Nats::start("");
    let url = nats.url();
    let worker = Edge::start_worker(&[
        "--nats",
        &url,
        "--services",
        "events",
        "--store",
        "jetstream",
    ]);
    let edge = Edge::start(&[
        "--nats",
        &url,
        "--store",
        "jetstream",
        "--remote",
        "events",
        "--rate-limit",
        "false",
        "--sse-heartbeat",
        "2s",
    ]);
    let c = edge.client();
    let me = scenarios::login(&c, "watcher").await;
    let mine = format!("player.{}", me.player_id);
    let mut s = Sse::get(
        &c,
        &format!("/v1/events?topics={mine}"),
        Some(&me.access),
        &[],
    )
    .await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(next(&mut s).await.event.as_deref(), Some("subscribed"));

    // Quiet for longer than the edge tolerates silence from a worker: its heartbeats keep the
    // stream alive, and an event still arrives.
    let quiet_until = std::time::Instant::now() + Duration::from_secs(22);
    while let Some(e) = s
        .next_within(quiet_until.saturating_duration_since(std::time::Instant::now()))
        .await
    {
        assert!(e.comment, "only heartbeats while quiet: {e:?}");
    }
    let p = publish(&c, &me.access, &mine, 1).await;
    assert_eq!(events(&mut s, 1).await.0, at(&mine, &[(p, 1)]));

    // The worker dies without a word: the stream ends with an error, not a silent hang.
    drop(worker);
    let t = std::time::Instant::now();
    let end = next_within(&mut s, Duration::from_secs(40)).await;
    assert_eq!(end.event.as_deref(), Some("error"), "{end:?}");
    assert_eq!(end.json()["code"], "unavailable");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
}
