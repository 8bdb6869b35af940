//! End-to-end: browser streams. A player trades their token for a single-use stream ticket and
//! opens `GET /v1/events?...&ticket=` from a plain `EventSource`, in a real headless Chromium
//! (Debian's `chromium-headless-shell`) on a page served by the test, and without one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::routing::{get, post};
use edge_e2e::sse::Sse;
use edge_e2e::{Edge, scenarios, tool};
use serde_json::{Value, json};

const TICKET: &str = rpc::auth::ISSUE_STREAM_TICKET.path;
const GET: &str = rpc::state::GET.path;

async fn ticket(c: &edge_e2e::Client, token: &str) -> String {
    let r = c.call(TICKET, Some(token), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["ticket"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn tickets_open_one_stream_of_their_own_player_once() {
    let edge = Edge::start(&["--access-log", "true"]);
    let c = edge.client();
    let alice = scenarios::login(&c, "alice").await;
    let bob = scenarios::login(&c, "bob").await;
    let own = format!("/v1/events?topics=player.{}", alice.player_id);

    let t = ticket(&c, &alice.access).await;
    let mut s = Sse::get(&c, &format!("{own}&ticket={t}"), None, &[]).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.next().await.unwrap().event.as_deref(), Some("subscribed"));
    // Spent: a second use is refused, also while the first stream is open.
    let again = Sse::get(&c, &format!("{own}&ticket={t}"), None, &[]).await;
    assert_eq!(again.status, 401);
    let body = again.text().await;
    assert!(body.contains("already used"), "{body}");
    assert!(!body.contains(&t), "the ticket is never echoed");
    drop(s);

    // A ticket speaks for its player only: not for another player's topic.
    let t = ticket(&c, &alice.access).await;
    let theirs = format!("/v1/events?topics=player.{}&ticket={t}", bob.player_id);
    assert_eq!(Sse::get(&c, &theirs, None, &[]).await.status, 403);
    // Only the event stream takes one: a method call with a ticket is unauthenticated.
    let t = ticket(&c, &alice.access).await;
    let r = c
        .call(
            &format!("{GET}?ticket={t}"),
            None,
            json!({"key": "save.slot1"}),
        )
        .await;
    assert_eq!(r.status, 401);
    // Nor is a ticket an access token, nor an access token a ticket.
    assert_eq!(c.call(GET, Some(&t), json!({"key": "k"})).await.status, 401);
    let forged = format!("{own}&ticket={}", alice.access);
    assert_eq!(Sse::get(&c, &forged, None, &[]).await.status, 401);
    // Services send their key; tickets are for players' browsers.
    let key = edge.service_key("gs", "*");
    assert_eq!(c.call(TICKET, Some(&key), json!({})).await.status, 403);
    assert_eq!(c.call(TICKET, None, json!({})).await.status, 401);

    // Nothing of a ticket reaches the logs or the metrics.
    let logs = edge.logs();
    assert!(logs.contains("/v1/events"), "the access log ran");
    assert!(!logs.contains(&t) && !logs.contains("ticket="), "{logs}");
    let metrics = edge.admin_text("/metrics").await;
    assert!(!metrics.contains("ticket="));
}

const LOGOUT: &str = rpc::auth::LOGOUT.path;
const PUBLISH: &str = rpc::events::PUBLISH.path;

/// The next message of `s` that is not a heartbeat, within a few seconds.
async fn next_message(s: &mut Sse) -> edge_e2e::sse::Event {
    loop {
        let e = s
            .next_within(Duration::from_secs(5))
            .await
            .expect("a message");
        if e.event.is_some() || !e.data.is_empty() {
            return e;
        }
    }
}

#[tokio::test]
async fn a_logout_recalls_its_sessions_tickets_and_ends_its_streams() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    // One player, two devices: two login sessions.
    let phone = scenarios::login(&c, "erin").await;
    let laptop = scenarios::login_again(&c, "erin").await;
    let own = format!("/v1/events?topics=player.{}", phone.player_id);
    let open = |path: String, token: Option<String>| {
        let c = c.clone();
        async move {
            let mut s = Sse::get(&c, &path, token.as_deref(), &[]).await;
            assert_eq!(s.status, 200);
            assert_eq!(
                next_message(&mut s).await.event.as_deref(),
                Some("subscribed")
            );
            s
        }
    };
    let mut by_token = open(own.clone(), Some(phone.access.clone())).await;
    let t = ticket(&c, &phone.access).await;
    let mut by_ticket = open(format!("{own}&ticket={t}"), None).await;
    let mut other_device = open(own.clone(), Some(laptop.access.clone())).await;
    let unspent = ticket(&c, &phone.access).await;

    let r = c
        .call(
            LOGOUT,
            Some(&phone.access),
            json!({"refreshToken": phone.refresh}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Both streams of the phone's session end with an error saying why.
    for s in [&mut by_token, &mut by_ticket] {
        let e = next_message(s).await;
        assert_eq!(e.event.as_deref(), Some("error"), "{e:?}");
        assert_eq!(e.json()["code"], "unauthenticated");
        assert!(e.data.contains("logged out"), "{}", e.data);
        assert!(
            s.next_within(Duration::from_secs(5)).await.is_none(),
            "ended"
        );
    }
    // A ticket issued before the logout opens nothing, and is no guess.
    let late = Sse::get(&c, &format!("{own}&ticket={unspent}"), None, &[]).await;
    assert_eq!(late.status, 401);
    assert!(late.text().await.contains("logged out"));
    // The laptop's session is untouched: its stream still delivers, and it gets tickets.
    let r = c
        .call(
            PUBLISH,
            Some(&laptop.access),
            json!({"topic": format!("player.{}", laptop.player_id), "type": "note", "payload": {"n": 1}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = next_message(&mut other_device).await;
    assert!(e.data.contains("\"note\""), "{e:?}");
    let t = ticket(&c, &laptop.access).await;
    let _s = open(format!("{own}&ticket={t}"), None).await;
}

/// The page the browser runs: everything an `EventSource` client does, reported back to the test.
const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>Edge tickets</title><script>
const EDGE = "__EDGE__", TOKEN = "__TOKEN__", TOPIC = "__TOPIC__", EXPIRE_WAIT = __WAIT__;
const report = (o) => fetch("/report", { method: "POST", body: JSON.stringify(o) });
async function call(path, body) {
  const r = await fetch(EDGE + path, { method: "POST", body: JSON.stringify(body),
    headers: { "content-type": "application/json", "authorization": "Bearer " + TOKEN } });
  return { status: r.status, body: await r.json() };
}
async function ticket() {
  const r = await call("__TICKET_PATH__", {});
  if (r.status !== 200) throw new Error("ticket: " + r.status);
  return r.body.ticket;
}
function url(t, last) {
  let u = EDGE + "/v1/events?topics=" + TOPIC + "&ticket=" + t;
  return last ? u + "&lastEventId=" + encodeURIComponent(last) : u;
}
function open(u) {
  const es = new EventSource(u), q = [];
  let wake = null;
  const push = (e) => { q.push(e); if (wake) { wake(); wake = null; } };
  es.addEventListener("subscribed", (e) => push({ type: "subscribed", id: e.lastEventId }));
  es.onmessage = (e) => push({ type: "message", id: e.lastEventId, data: JSON.parse(e.data) });
  es.onerror = () => push({ type: "error", state: es.readyState });
  es.expect = async (type) => {
    while (!q.length) {
      await Promise.race([new Promise((r) => { wake = r; }),
        new Promise((_, no) => setTimeout(() => no(new Error("no " + type + " in 10 s")), 10000))]);
    }
    const e = q.shift();
    if (e.type !== type) throw new Error("expected " + type + ", got " + JSON.stringify(e));
    return e;
  };
  return es;
}
async function publish(n) {
  const r = await call("__PUBLISH_PATH__",
    { topic: TOPIC, type: "lantern.lit", payload: { lantern: n } });
  if (r.status !== 200) throw new Error("publish: " + r.status);
}
async function main() {
  const first = await ticket();
  let es = open(url(first));
  await es.expect("subscribed");
  await publish(1);
  await publish(2);
  const a = await es.expect("message"), b = await es.expect("message");
  es.close();
  await publish(3);  // while away
  es = open(url(await ticket(), b.id));  // a new ticket; the position in the query
  await es.expect("subscribed");
  const c = await es.expect("message");
  es.close();
  const spent = open(url(first));  // the first ticket again
  const failed = await spent.expect("error");
  spent.close();
  const spentRes = await fetch(url(first));
  const late = await ticket();
  await new Promise((r) => setTimeout(r, EXPIRE_WAIT));
  const expiredRes = await fetch(url(late));
  await report({ ok: true, lanterns: [a, b, c].map((e) => e.data.payload.lantern),
    resumedFrom: b.id, spentState: failed.state, spentStatus: spentRes.status,
    spentBody: await spentRes.json(), expiredStatus: expiredRes.status,
    expiredBody: await expiredRes.json(), tickets: [first, late] });
}
main().catch((e) => report({ ok: false, error: String((e && e.stack) || e) }));
</script>"#;

/// Serves the page (set once the edge is up, before the browser asks) at `/`, and sends what the
/// page POSTs to `/report`.
async fn page_server(
    page: std::sync::Arc<std::sync::OnceLock<String>>,
) -> (SocketAddr, tokio::sync::mpsc::Receiver<Value>) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let app = axum::Router::new()
        .route(
            "/",
            get(move || {
                let page = page.get().cloned().unwrap_or_default();
                async move { axum::response::Html(page) }
            }),
        )
        .route(
            "/report",
            post(move |body: String| {
                let tx = tx.clone();
                async move {
                    let _ = tx
                        .send(serde_json::from_str(&body).unwrap_or(Value::Null))
                        .await;
                    ""
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

/// Chromium in a process group of its own: killing only the first process left its helpers
/// running, and they wrote a new profile directory after the test had removed its own.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_headless_chromium_eventsource_streams_with_tickets() {
    let chromium = tool("chromium-headless-shell");
    // The page's origin is only known once its server listens; the edge allows exactly it.
    let page = std::sync::Arc::new(std::sync::OnceLock::new());
    let (addr, mut reports) = page_server(std::sync::Arc::clone(&page)).await;
    let origin = format!("http://{addr}");
    let edge = Edge::start(&[
        "--cors-origins",
        &origin,
        "--stream-ticket-ttl",
        "2s",
        "--access-log",
        "true",
    ]);
    let c = edge.client();
    let me = scenarios::login(&c, "webplayer").await;
    let text = PAGE
        .replace(
            "__EDGE__",
            &format!("https://localhost:{}", edge.https.port()),
        )
        .replace("__TOKEN__", &me.access)
        .replace("__TOPIC__", &format!("player.{}", me.player_id))
        .replace("__WAIT__", "5000")
        .replace("__TICKET_PATH__", TICKET)
        .replace("__PUBLISH_PATH__", PUBLISH);
    page.set(text).unwrap();

    let profile = tempfile::tempdir().unwrap();
    let _browser = Browser(
        Command::new(chromium)
            .args([
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                // The edge's development certificate; the page itself is plain loopback HTTP.
                "--ignore-certificate-errors",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("{origin}/"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium-headless-shell starts"),
    );
    let report = tokio::time::timeout(Duration::from_secs(60), reports.recv())
        .await
        .expect("the page reports within a minute")
        .unwrap();
    assert_eq!(report["ok"], true, "{report:#}\n{}", edge.logs());
    // Published events arrived, and the one published while away after resuming.
    assert_eq!(report["lanterns"], json!([1, 2, 3]), "{report:#}");
    // EventSource.CLOSED: a spent ticket fails the stream for good; fetch shows why.
    assert_eq!(report["spentState"], 2, "{report:#}");
    assert_eq!(report["spentStatus"], 401);
    assert!(
        report["spentBody"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{report:#}"
    );
    assert_eq!(report["expiredStatus"], 401);
    assert!(
        report["expiredBody"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{report:#}"
    );
    let logs = edge.logs();
    for t in report["tickets"].as_array().unwrap() {
        assert!(
            !logs.contains(t.as_str().unwrap()),
            "a ticket reached the log"
        );
    }
}
