//! End-to-end: what a NATS client may do once it reaches the bus (SECURITY.md 24 and 25).
//!
//! - Layer 1, NATS users per role (`edge nats-auth`): a real nats-server runs the generated
//!   permissions; the edge and two worker groups serve calls through them, while a client holding
//!   one group's credentials can neither publish a method its services never declared calling
//!   nor listen in on another group's (or its own group's, outside the queue group) requests, nor
//!   read the edge's replies.
//! - Layer 2, signed principals: a raw NATS client (no permissions at all on this server) that
//!   names another player in `Edge-Principal` is refused, and so is one that alters a signed
//!   request, replays a stale one or signs with a key it guessed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use edge_e2e::nats::{Nats, SIGNING_KEYS, now_ms, sign, sign_at};
use edge_e2e::{Edge, run_edge, scenarios};
use prost::Message as _;
use proto::aicore::state::v1::{GetRequest, GetResponse};
use proto::rpc;
use serde_json::json;

const GET: &str = "svc.state.v1.get";

fn header<'a>(m: &'a async_nats::Message, name: &str) -> Option<&'a str> {
    m.headers.as_ref()?.get(name).map(|v| v.as_str())
}

/// A request as a raw client sends it, retried while the responder is still registering.
async fn ask(
    client: &async_nats::Client,
    subject: &str,
    h: HeaderMap,
    body: Bytes,
) -> async_nats::Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client
            .request_with_headers(subject.to_owned(), h.clone(), body.clone())
            .await
        {
            Ok(m) => return m,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no reply on {subject}: {e}"),
        }
    }
}

/// The headers of a player's `state.Get`, as an edge would send them.
fn as_player(player_id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Edge-Deadline-Ms", "2000");
    h.insert("X-Request-Id", "forged-1");
    h.insert("Edge-Principal", format!("player {player_id}").as_str());
    h
}

/// Asserts that `m` is a refusal naming `why`, carrying nothing of the player's state.
fn refused(m: &async_nats::Message, why: &str) {
    assert_eq!(header(m, "Connect-Code"), Some("unauthenticated"), "{m:?}");
    let message = header(m, "Nats-Service-Error").unwrap_or_default();
    assert!(message.contains(why), "{message}");
    assert!(!String::from_utf8_lossy(&m.payload).contains("gold"));
}

#[tokio::test]
async fn a_raw_nats_client_cannot_speak_for_a_player() {
    let nats = Nats::start("");
    let edge = Edge::start(&["--nats", &nats.url()]);
    let c = edge.client();
    let alice = scenarios::login(&c, "alice-signed").await;
    let r = c
        .call(
            rpc::state::PUT.path,
            Some(&alice.access),
            json!({"key": "purse", "value": "gold"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let raw = nats.client().await;
    let body = Bytes::from(
        GetRequest {
            key: "purse".into(),
            ..GetRequest::default()
        }
        .encode_to_vec(),
    );

    // Anyone on the bus naming alice, unsigned: refused, her purse unread.
    let m = ask(&raw, GET, as_player(&alice.player_id), body.clone()).await;
    refused(&m, "no Edge-Auth");
    let mut with_session = as_player(&alice.player_id);
    with_session.insert("Edge-Session", "any-session");
    refused(
        &ask(&raw, GET, with_session, body.clone()).await,
        "no Edge-Auth",
    );
    // A call between services carries no principal, but is signed all the same.
    let mut chain = HeaderMap::new();
    chain.insert("Edge-Call-Chain", "weather");
    chain.insert("Edge-Deadline-Ms", "2000");
    refused(
        &ask(&raw, "svc.time.v1.now", chain, Bytes::new()).await,
        "no Edge-Auth",
    );

    // A key guessed under the right id; a signed request turned to another player, or to
    // another subject; one replayed after its deadline.
    let mut guessed = as_player(&alice.player_id);
    sign_at(
        "e2e:Z3Vlc3NlZC1rZXktZ3Vlc3NlZC1rZXktZ3Vlc3NlZC1rZXk=",
        GET,
        &mut guessed,
        now_ms(),
    );
    refused(
        &ask(&raw, GET, guessed, body.clone()).await,
        "does not match",
    );
    let mut bob = as_player("0123456789abcdef0123456789abcdef");
    sign(GET, &mut bob);
    bob.insert(
        "Edge-Principal",
        format!("player {}", alice.player_id).as_str(),
    );
    refused(&ask(&raw, GET, bob, body.clone()).await, "does not match");
    let mut elsewhere = as_player(&alice.player_id);
    sign("svc.state.v1.list", &mut elsewhere);
    refused(
        &ask(&raw, GET, elsewhere, body.clone()).await,
        "does not match",
    );
    let mut stale = as_player(&alice.player_id);
    sign_at(SIGNING_KEYS, GET, &mut stale, now_ms() - 60_000);
    refused(&ask(&raw, GET, stale, body.clone()).await, "ago");

    // What an edge signs is answered (so the refusals above are the signature's doing).
    let mut signed = as_player(&alice.player_id);
    sign(GET, &mut signed);
    let m = ask(&raw, GET, signed, body).await;
    assert_eq!(header(&m, "Connect-Code"), None, "{m:?}");
    let got = GetResponse::decode(m.payload).unwrap();
    assert!(format!("{got:?}").contains("\"gold\""), "{got:?}");

    // Her own call over HTTPS still works, and the keys are printed nowhere.
    let r = c
        .call(
            rpc::state::GET.path,
            Some(&alice.access),
            json!({"key": "purse"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let secret = SIGNING_KEYS.split_once(':').unwrap().1;
    assert!(!edge.admin_text("/admin/config").await.contains(secret));
    assert!(!edge.logs().contains(secret));
    assert!(
        edge.logs()
            .contains("refused a NATS request that no edge signed")
    );
}

/// Waits for the server's error about `subject` on a user's connection.
async fn violation(errors: &mut tokio::sync::mpsc::UnboundedReceiver<String>, what: &str) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(until.into(), errors.recv()).await {
            Ok(Some(e)) if e.to_lowercase().contains(&what.to_lowercase()) => return,
            Ok(Some(_)) => {}
            _ => panic!("no permissions violation for {what}"),
        }
    }
}

#[tokio::test]
async fn nats_users_made_from_the_descriptors_hold_each_role_to_its_subjects() {
    let (code, block, err) = run_edge(&[
        "nats-auth",
        "--worker-group",
        "wx=weather",
        "--worker-group",
        "st=state",
    ]);
    assert_eq!(code, 0, "{err}");
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("nats.log");
    let nats = Nats::start(&format!(
        "log_file: {:?}\nNATS_PASSWORD_EDGE: \"pe\"\nNATS_PASSWORD_WORKER_WX: \"pw\"\n\
         NATS_PASSWORD_WORKER_ST: \"ps\"\n{block}",
        log.display().to_string()
    ));
    let url = nats.url();
    let user = |name: &'static str, password: &'static str| {
        [
            "--nats",
            url.as_str(),
            "--nats-user",
            name,
            "--nats-password",
            password,
            "--store",
            "jetstream",
        ]
    };
    let edge = Edge::start(&[&user("edge", "pe")[..], &["--remote", "weather,state"]].concat());
    let _wx =
        Edge::start_worker(&[&user("worker-wx", "pw")[..], &["--services", "weather"]].concat());
    let _st =
        Edge::start_worker(&[&user("worker-st", "ps")[..], &["--services", "state"]].concat());

    // Everyone serves through the permissions: auth and world on the edge, state and weather
    // (which calls world and time back on the edge) on the workers, the store on JetStream.
    let c = edge.client();
    let alice = scenarios::login(&c, "alice-perm").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = c
            .call(
                rpc::weather::CURRENT.path,
                Some(&alice.access),
                json!({"regionId": "greyspire"}),
            )
            .await;
        if r.status == 200 {
            break;
        }
        assert!(r.status == 503 && Instant::now() < deadline, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = c
        .call(
            rpc::state::PUT.path,
            Some(&alice.access),
            json!({"key": "purse", "value": "gold"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // No password, a wrong one: no connection at all.
    assert!(async_nats::connect(url.as_str()).await.is_err());
    let wrong = async_nats::ConnectOptions::new()
        .user_and_password("worker-wx".into(), "guess".into())
        .connect(url.as_str())
        .await;
    assert!(wrong.is_err());

    // The weather group's credentials, stolen.
    let (stolen, mut errors) = nats.client_as("worker-wx", "pw").await;
    // weather never declared calling state: the server drops the request.
    let mut h = as_player(&alice.player_id);
    sign(GET, &mut h);
    let r = stolen.request_with_headers(GET, h, Bytes::new()).await;
    assert!(r.is_err(), "{r:?}");
    violation(&mut errors, "publish to \"svc.state.v1.get\"").await;
    // Nor may it take state's requests, listen to its own subjects outside the queue group, or
    // read the edge's replies.
    let _a = stolen.queue_subscribe(GET, "state".into()).await.unwrap();
    violation(&mut errors, "subscription to \"svc.state.v1.get\"").await;
    let _b = stolen.subscribe("svc.weather.v1.current").await.unwrap();
    violation(&mut errors, "subscription to \"svc.weather.v1.current\"").await;
    let _c = stolen.subscribe("_INBOX.edge.>").await.unwrap();
    violation(&mut errors, "subscription to \"_INBOX.edge.>\"").await;
    // What weather declares it may publish, but a principal it cannot sign is refused there.
    let m = ask(
        &stolen,
        "svc.time.v1.now",
        as_player(&alice.player_id),
        Bytes::new(),
    )
    .await;
    assert_eq!(header(&m, "Connect-Code"), Some("unauthenticated"), "{m:?}");

    // The edge and workers themselves never hit a permission.
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("Violation"),
        "nats-server logs what it refused:\n{log}"
    );
    let provoked = [
        "svc.state.v1.get",
        "svc.weather.v1.current",
        "_INBOX.edge.>",
    ];
    for line in log.lines().filter(|l| l.contains("Violation")) {
        assert!(
            provoked.iter().any(|s| line.contains(&format!("\"{s}\""))),
            "a role needs a permission it lacks: {line}"
        );
    }
    let r = c
        .call(
            rpc::state::GET.path,
            Some(&alice.access),
            json!({"key": "purse"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}
