//! End-to-end over a real nats-server: remote routes, `edge worker`, the error table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_e2e::nats::Nats;
use edge_e2e::{Edge, scenarios};
use futures_util::StreamExt as _;
use serde_json::json;

const PUT: &str = rpc::state::PUT.path;
const GET: &str = rpc::state::GET.path;

async fn token(edge: &Edge, user: &str) -> String {
    scenarios::login(&edge.client(), user).await.access
}

fn edge_with_remote(nats: &Nats, remote: &str, extra: &[&str]) -> Edge {
    let url = nats.url();
    let mut args = vec!["--nats", url.as_str(), "--remote", remote];
    args.extend_from_slice(extra);
    Edge::start(&args)
}

/// A service's route, once the responder prober has pinged it.
async fn route(edge: &Edge, service: &str) -> serde_json::Value {
    for _ in 0..50 {
        let routes = edge.admin_json("/admin/routes").await;
        let r = routes["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == service)
            .unwrap()
            .clone();
        if r["responders"] != -1 {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the prober never pinged {service}");
}

fn worker(nats: &Nats, services: &str) -> Edge {
    Edge::start_worker(&["--nats", &nats.url(), "--services", services])
}

#[tokio::test]
async fn calls_pass_through_a_worker_like_local() {
    let nats = Nats::start("");
    let _worker = worker(&nats, "state,settings");
    let edge = edge_with_remote(&nats, "state,settings", &[]);
    let access = token(&edge, "remote1").await;
    let c = edge.client();

    // The same calls as the in-process suite, through the worker: JSON transcoded once each way,
    // protobuf passed through, worker errors mapped to the same HTTP answers.
    scenarios::state_round_trips_and_cas(&c, &access).await;
    scenarios::settings_validated_and_versioned(&c, &access).await;
    let r = c.call(GET, Some(&access), json!({"key": "missing"})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "not_found");
    let r = c.call(GET, Some(&access), json!({"key": "bad key"})).await;
    assert_eq!(r.status, 400);
    let r = c
        .call(
            PUT,
            Some(&access),
            json!({"key": "save.a", "value": {"hp": 3}}),
        )
        .await;
    assert_eq!(r.status, 200);

    // The principal crosses NATS: another player cannot read this one's state.
    let other = token(&edge, "remote2").await;
    assert_eq!(
        c.call(GET, Some(&other), json!({"key": "save.a"}))
            .await
            .status,
        404
    );
    // The worker is a NATS micro service: $SRV.PING and $SRV.INFO answer.
    let nc = nats.client().await;
    let ping = nc.request("$SRV.PING.state", Bytes::new()).await.unwrap();
    let ping: serde_json::Value = serde_json::from_slice(&ping.payload).unwrap();
    assert_eq!(ping["name"], "state");
    let info = nc.request("$SRV.INFO.state", Bytes::new()).await.unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.payload).unwrap();
    let subjects: Vec<_> = info["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        subjects.contains(&"svc.state.v1.get".to_owned()),
        "{subjects:?}"
    );
    assert!(
        info["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["queue_group"] == "state"),
        "{info}"
    );

    // The route table says where each service goes and whether workers answer.
    let readyz = c.get("/readyz").await.json();
    assert_eq!(readyz["nats"], "connected");
    let state = route(&edge, "state").await;
    assert_eq!(state["target"], "nats");
    assert_eq!(state["responders"], 1, "{state}");
    assert_eq!(state["healthy"], true);
    assert_eq!(state["methods"][0]["subject"], "svc.state.v1.get");
}

#[tokio::test]
async fn the_error_table() {
    let nats = Nats::start("max_payload: 2048");
    let edge = edge_with_remote(
        &nats,
        "state",
        &[
            "--nats-request-timeout",
            "1s",
            "--subject",
            "settings=legacy.settings",
        ],
    );
    let access = token(&edge, "errors").await;
    let c = edge.client();

    // The route table shows the missing workers.
    let state = route(&edge, "state").await;
    assert_eq!(
        (state["responders"].as_i64(), state["healthy"].as_bool()),
        (Some(0), Some(false)),
        "{state}"
    );

    // No responders: 503 at once, with Retry-After, not after the request timeout.
    let t = Instant::now();
    let r = c.call(GET, Some(&access), json!({"key": "k"})).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["code"], "unavailable");
    assert!(r.headers.contains_key("retry-after"));
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "no-responders took {:?}",
        t.elapsed()
    );

    // Payload over the server's max_payload: 413 before publishing. A listener on the subject
    // (it would receive the request had it been sent) hears nothing.
    let spy = nats.client().await;
    let mut heard = spy.subscribe("svc.state.v1.put").await.unwrap();
    spy.flush().await.unwrap();
    let big = "x".repeat(4000);
    let r = c
        .call(PUT, Some(&access), json!({"key": "k", "value": big}))
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "resource_exhausted", "{}", r.text());
    assert!(
        tokio::time::timeout(Duration::from_millis(500), heard.next())
            .await
            .is_err(),
        "nothing was published"
    );

    // A worker that never answers: 504 after the NATS request timeout.
    let nc = nats.client().await;
    let mut silent = nc
        .queue_subscribe("svc.state.v1.get", "state".into())
        .await
        .unwrap();
    nc.flush().await.unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(m) = silent.next().await {
            held.push(m);
        }
    });
    let t = Instant::now();
    let r = c.call(GET, Some(&access), json!({"key": "k"})).await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert_eq!(r.json()["code"], "deadline_exceeded");
    assert!(
        t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    hold.abort();

    // A reply that does not decode: 502, clearly worded.
    let mut garbage = nc.subscribe("svc.state.v1.delete").await.unwrap();
    let nc2 = nc.clone();
    let responder = tokio::spawn(async move {
        while let Some(m) = garbage.next().await {
            if let Some(reply) = m.reply {
                let _ = nc2
                    .publish(reply, Bytes::from_static(&[0xff, 0xff, 0xff]))
                    .await;
            }
        }
    });
    nc.flush().await.unwrap();
    let r = c
        .call(rpc::state::DELETE.path, Some(&access), json!({"key": "k"}))
        .await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("not a valid")
    );
    responder.abort();

    // A legacy worker on an overridden subject, answering with bare NATS micro-service errors.
    drop(edge);
    let edge = edge_with_remote(
        &nats,
        "settings",
        &["--subject", "settings=legacy.settings"],
    );
    let access = token(&edge, "legacy").await;
    let mut legacy = nc.subscribe("legacy.settings.get").await.unwrap();
    let nc3 = nc.clone();
    let responder = tokio::spawn(async move {
        while let Some(m) = legacy.next().await {
            if let Some(reply) = m.reply {
                let mut h = async_nats::HeaderMap::new();
                h.insert("Nats-Service-Error-Code", "403");
                h.insert("Nats-Service-Error", "legacy says no");
                let _ = nc3.publish_with_headers(reply, h, Bytes::new()).await;
            }
        }
    });
    nc.flush().await.unwrap();
    let r = edge
        .client()
        .call(rpc::settings::GET.path, Some(&access), json!({}))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "permission_denied");
    assert_eq!(r.json()["message"], "legacy says no");
    responder.abort();
}

#[tokio::test]
async fn two_workers_share_a_queue_group() {
    let nats = Nats::start("");
    let _w1 = worker(&nats, "settings");
    let _w2 = worker(&nats, "settings");
    let edge = edge_with_remote(&nats, "settings", &[]);
    let access = token(&edge, "shared").await;
    let c = edge.client();
    for _ in 0..40 {
        let r = c
            .call(rpc::settings::GET.path, Some(&access), json!({}))
            .await;
        assert_eq!(r.status, 200);
    }
    // Each instance reports its own stats on $SRV.STATS.settings: both took a share.
    let nc = nats.client().await;
    let inbox = nc.new_inbox();
    let mut replies = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply("$SRV.STATS.settings", inbox, Bytes::new())
        .await
        .unwrap();
    nc.flush().await.unwrap();
    let mut counts = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), replies.next()).await {
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let n: u64 = v["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["num_requests"].as_u64().unwrap_or(0))
            .sum();
        counts.push(n);
    }
    assert_eq!(counts.len(), 2, "two instances answer: {counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), 40);
    assert!(
        counts.iter().all(|&n| n > 0),
        "both workers served: {counts:?}"
    );
}

#[tokio::test]
async fn nats_outage_and_recovery() {
    let mut nats = Nats::start("");
    let _worker = worker(&nats, "state");
    let edge = edge_with_remote(&nats, "state", &["--rate-limit", "false"]);
    let access = token(&edge, "outage").await;
    let c = edge.client();
    assert_eq!(
        c.call(PUT, Some(&access), json!({"key": "k", "value": 1}))
            .await
            .status,
        200
    );

    // Load on a remote and a local route while NATS dies: every answer comes back in bounded
    // time; remote calls fail clean (503, or 504 for one caught mid-flight), local ones succeed.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for i in 0..6 {
        let (c, access, stop) = (c.clone(), access.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let (path, body) = if i % 2 == 0 {
                    (GET, json!({"key": "k"}))
                } else {
                    (rpc::settings::GET.path, json!({}))
                };
                let r = tokio::time::timeout(
                    Duration::from_secs(10),
                    c.call(path, Some(&access), body),
                )
                .await
                .expect("no hang");
                seen.push((i % 2 == 0, r.status.as_u16(), t.elapsed()));
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut remote_failures = 0;
    for t in load {
        for (remote, status, took) in t.await.unwrap() {
            if remote {
                assert!(matches!(status, 200 | 503 | 504), "remote: {status}");
                remote_failures += usize::from(status != 200);
            } else {
                assert_eq!(status, 200, "local routes are unaffected");
            }
            assert!(took < Duration::from_secs(3), "answered in {took:?}");
        }
    }
    assert!(remote_failures > 0);
    for _ in 0..10 {
        let t = Instant::now();
        let r = c.call(GET, Some(&access), json!({"key": "k"})).await;
        assert_eq!(r.status, 503, "{:?}", r.body);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    let r = c
        .call(
            rpc::auth::LOGIN.path,
            None,
            json!({"username": "outage", "password": "correct-horse"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let ready = c.get("/readyz").await;
    assert_eq!(ready.status, 200, "a NATS outage does not fail readiness");
    assert_eq!(ready.json()["nats"], "disconnected");

    // Back within seconds, without restarting the edge or the worker.
    nats.restart();
    let start = Instant::now();
    loop {
        let r = c.call(GET, Some(&access), json!({"key": "k"})).await;
        if r.status == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no recovery: {} {:?}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(c.get("/readyz").await.json()["nats"], "connected");
}

#[tokio::test]
async fn sigterm_to_a_worker_loses_nothing() {
    let nats = Nats::start("");
    let mut w1 = worker(&nats, "state");
    let edge = edge_with_remote(&nats, "state", &["--rate-limit", "false"]);
    let access = token(&edge, "drainer").await;
    let c = edge.client();

    // Writers keep going while the worker is told to stop.
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let c = c.clone();
        let access = access.clone();
        let written = std::sync::Arc::clone(&written);
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..80 {
                let key = format!("k{t}x{i}");
                let r = c
                    .call(
                        PUT,
                        Some(&access),
                        json!({"key": key, "value": i, "expectedVersion": "0"}),
                    )
                    .await;
                if r.status == 200 {
                    written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                results.push((key, r.status.as_u16()));
            }
            results
        }));
    }
    edge_e2e::eventually(Duration::from_secs(10), "writes are landing", async || {
        written.load(std::sync::atomic::Ordering::Relaxed) >= 8
    })
    .await;
    w1.signal("TERM");
    let (status, w1) = tokio::task::spawn_blocking(move || {
        let s = w1.wait_exit(Duration::from_secs(10));
        (s, w1)
    })
    .await
    .unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "worker exits 0 after draining: {}",
        w1.logs()
    );

    let mut acknowledged = Vec::new();
    let mut failed = Vec::new();
    for t in tasks {
        for (key, code) in t.await.unwrap() {
            // Each answer is a success or a clean, retryable error; never a hang or a 500.
            assert!(matches!(code, 200 | 503 | 504), "{key}: {code}");
            if code == 200 {
                acknowledged.push(key)
            } else {
                failed.push(key)
            }
        }
    }
    assert!(
        !acknowledged.is_empty() && !failed.is_empty(),
        "the signal landed mid-run"
    );

    // The same worker, restarted on its data: every acknowledged write is there, whole.
    let _w1 = w1.restart();
    for key in &acknowledged {
        let r = c.call(GET, Some(&access), json!({"key": key})).await;
        assert_eq!(r.status, 200, "{key} was acknowledged but is missing");
        let i: f64 = key.rsplit('x').next().unwrap().parse().unwrap();
        assert_eq!(r.json()["entry"]["value"].as_f64(), Some(i));
    }
    // A failed write either happened whole or not at all: retrying it creates it or finds it.
    for key in &failed {
        let r = c
            .call(
                PUT,
                Some(&access),
                json!({"key": key, "value": 0, "expectedVersion": "0"}),
            )
            .await;
        assert!(
            matches!(r.status.as_u16(), 200 | 409),
            "{key}: {}",
            r.status
        );
    }
}

#[tokio::test]
async fn replicas_and_workers_share_the_jetstream_store() {
    let nats = Nats::start("");
    let url = nats.url();
    let _worker = Edge::start_worker(&[
        "--nats",
        &url,
        "--services",
        "auth,state,settings",
        "--store",
        "jetstream",
    ]);
    // Replica A sends auth, state and settings to the worker; replica B serves them in-process.
    let a = Edge::start(&[
        "--nats",
        &url,
        "--store",
        "jetstream",
        "--remote",
        "auth,state,settings",
    ]);
    let b = Edge::start(&["--nats", &url, "--store", "jetstream"]);
    let (ca, cb) = (a.client(), b.client());

    // The same end-to-end calls as the local suite, through the worker.
    let r = ca
        .call(
            rpc::auth::REGISTER.path,
            None,
            json!({"username": "shared", "password": "correct-horse"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let dup = ca
        .call(
            rpc::auth::REGISTER.path,
            None,
            json!({"username": "shared", "password": "correct-horse"}),
        )
        .await;
    assert_eq!(dup.status, 409);
    let login = ca
        .call(
            rpc::auth::LOGIN.path,
            None,
            json!({"username": "shared", "password": "correct-horse"}),
        )
        .await
        .json();
    let access = login["accessToken"].as_str().unwrap().to_owned();
    let refresh = login["refreshToken"].as_str().unwrap().to_owned();
    let r = ca
        .call(
            PUT,
            Some(&access),
            json!({"key": "k", "value": {"gold": 7}, "expectedVersion": "0"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let version = r.json()["version"].as_str().unwrap().to_owned();
    assert_eq!(
        ca.call(
            PUT,
            Some(&access),
            json!({"key": "k", "value": 1, "expectedVersion": "0"})
        )
        .await
        .status,
        409
    );

    // Replica B verifies A's token (signing keys live in the shared store) and sees the state.
    let r = cb.call(GET, Some(&access), json!({"key": "k"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["entry"]["version"], version.as_str());
    assert_eq!(r.json()["entry"]["value"]["gold"].as_f64(), Some(7.0));
    // A refresh token rotated on B is spent for A too.
    let r = cb
        .call(
            rpc::auth::REFRESH.path,
            None,
            json!({"refreshToken": refresh}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = ca
        .call(
            rpc::auth::REFRESH.path,
            None,
            json!({"refreshToken": refresh}),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        cb.get("/readyz").await.json()["store"]["backend"],
        "jetstream"
    );
    // Replica A's auth calls really went over NATS: to the worker, or to replica B, which also
    // answers for the services it hosts. Every responder's stats, summed.
    let client = nats.client().await;
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply("$SRV.STATS.auth", inbox, Bytes::new())
        .await
        .unwrap();
    let mut all = Vec::new();
    while let Ok(Some(m)) =
        tokio::time::timeout(std::time::Duration::from_millis(700), replies.next()).await
    {
        all.push(serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap());
    }
    assert_eq!(all.len(), 2, "the worker and replica B answer for auth");
    let stats = serde_json::Value::Array(all.clone());
    let served: u64 = all
        .iter()
        .flat_map(|s| s["endpoints"].as_array().unwrap().iter())
        .map(|e| e["num_requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(served, 4, "register x2, login, refresh: {stats}");

    // A service key made with the CLI straight into the JetStream store works on every replica.
    let key = edge_e2e::jetstream_service_key(&url, "gs", "payment");
    let player = login["playerId"].as_str().unwrap();
    let credit = json!({"playerId": player, "amount": 50, "reason": "shared"});
    let paid = |c: &edge_e2e::Client, token: String, body: serde_json::Value| {
        let c = c.clone();
        async move {
            let auth = format!("Bearer {token}");
            c.request(
                http::Method::POST,
                rpc::payment::CREDIT.path,
                &[
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                    ("idempotency-key", "shared-credit"),
                ],
                serde_json::to_vec(&body).unwrap(),
            )
            .await
        }
    };
    let first = paid(&ca, key.clone(), credit.clone()).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    // The retry lands on the other replica: the idempotency record is shared, one credit.
    let again = paid(&cb, key.clone(), credit).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["transaction"], first.json()["transaction"]);
    // The reused refresh token above revoked that session everywhere: log in anew.
    let fresh = cb
        .call(
            rpc::auth::LOGIN.path,
            None,
            json!({"username": "shared", "password": "correct-horse"}),
        )
        .await
        .json();
    let balance = cb
        .call(
            rpc::payment::GET_BALANCE.path,
            fresh["accessToken"].as_str(),
            json!({}),
        )
        .await;
    assert_eq!(balance.json()["balance"], "50", "{:?}", balance.body);
}

#[tokio::test]
async fn nats_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let (code, _, err) = edge_e2e::run_edge(&["certs", "dev", "--out", certs.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (ca, cert, key) = (
        certs.join("ca.pem"),
        certs.join("cert.pem"),
        certs.join("key.pem"),
    );
    // The server demands a client certificate signed by the CA.
    let nats = Nats::start(&format!(
        "tls {{ cert_file: {:?}, key_file: {:?}, ca_file: {:?}, verify: true }}",
        cert.display().to_string(),
        key.display().to_string(),
        ca.display().to_string()
    ));
    let url = format!("tls://localhost:{}", nats.port);
    let tls = [
        "--nats-ca",
        ca.to_str().unwrap(),
        "--nats-cert",
        cert.to_str().unwrap(),
        "--nats-key",
        key.to_str().unwrap(),
    ];
    let mut wargs = vec!["--nats", url.as_str(), "--services", "state"];
    wargs.extend(tls);
    let _worker = Edge::start_worker(&wargs);
    let mut eargs = vec!["--nats", url.as_str(), "--remote", "state"];
    eargs.extend(tls);
    let edge = Edge::start(&eargs);
    let access = token(&edge, "tls").await;
    let r = edge
        .client()
        .call(PUT, Some(&access), json!({"key": "k", "value": 1}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        edge.client().get("/readyz").await.json()["nats"],
        "connected"
    );

    // Without a client certificate the server refuses the connection: remote calls answer 503.
    let bare = Edge::start(&[
        "--nats",
        &url,
        "--remote",
        "state",
        "--nats-ca",
        ca.to_str().unwrap(),
    ]);
    let access = token(&bare, "tls2").await;
    let r = bare
        .client()
        .call(GET, Some(&access), json!({"key": "k"}))
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(
        bare.client().get("/readyz").await.json()["nats"],
        "disconnected"
    );
}
