//! End-to-end: the console's Events, Content and API-explorer pages through the real binary, with
//! a plain HTTP client (what a browser sends): a live tail sees a published event, is capped per
//! session and ends at logout and shutdown; the explorer calls as the console, for a player and
//! with a pasted secret that is never kept; payloads are shown escaped. In a real browser:
//! `console_pages_browser.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use edge_e2e::Edge;
use edge_e2e::console_http::{self, Answer, log_in, origin};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const PUBLISH: &str = proto::rpc::events::PUBLISH.path;
/// Runs only if a browser's script runs it: the stored-XSS probe.
const XSS: &str = r#"<img src=x onerror="window.__xss=1">"#;

fn head(edge: &Edge, method: &str, path: &str, cookie: Option<&str>, origin: bool) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", edge.admin);
    if let Some(c) = cookie {
        head.push_str(&format!(
            "cookie: edge_console_{}={c}\r\n",
            edge.admin.port()
        ));
    }
    if origin {
        head.push_str(&format!("origin: http://{}\r\n", edge.admin));
    }
    head
}

/// A browser-like request: `cookie` the session id, form posts with this listener's Origin.
async fn send(
    edge: &Edge,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> Answer {
    let o = (method == "POST").then(|| origin(edge));
    console_http::send(edge, method, path, cookie, o.as_deref(), form).await
}

/// An open live tail: the connection and what it has sent so far.
struct Tail {
    tcp: TcpStream,
    seen: String,
}

impl Tail {
    /// Opens a tail; `Err` is the status of a refusal.
    async fn open(edge: &Edge, cookie: Option<&str>, topic: &str) -> Result<Tail, (u16, String)> {
        let mut req = head(
            edge,
            "GET",
            &format!("/console/events/tail?topic={topic}"),
            cookie,
            false,
        );
        req.push_str("accept: text/event-stream\r\n\r\n");
        let mut tcp = TcpStream::connect(edge.admin).await.unwrap();
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut t = Tail {
            tcp,
            seen: String::new(),
        };
        t.until("\r\n\r\n").await;
        let status: u16 = t.seen.split(' ').nth(1).unwrap().parse().unwrap();
        if status != 200 {
            let _ = tokio::time::timeout(Duration::from_secs(2), t.read_more()).await;
            return Err((status, t.seen));
        }
        t.until("event: subscribed").await;
        Ok(t)
    }

    async fn read_more(&mut self) -> usize {
        let mut buf = [0u8; 4096];
        let n = self.tcp.read(&mut buf).await.unwrap_or(0);
        self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        n
    }

    /// Reads until `needle` has arrived (within 20 s).
    async fn until(&mut self, needle: &str) {
        let wait = tokio::time::timeout(Duration::from_secs(20), async {
            while !self.seen.contains(needle) {
                assert!(
                    self.read_more().await > 0,
                    "closed before {needle:?}: {}",
                    self.seen
                );
            }
        });
        wait.await
            .unwrap_or_else(|_| panic!("no {needle:?} in {}", self.seen));
    }
}

#[tokio::test]
async fn a_tail_sees_published_events_is_capped_and_ends_at_shutdown() {
    let mut edge = Edge::start(&["--drain-delay", "1s", "--shutdown-timeout", "10s"]);
    let game = edge.service_key("game", "*");
    let key = edge.service_key("alice", "console");
    let session = log_in(&edge, &key).await;
    let c = edge.client();
    let publish = |n: u32| json!({"topic": "world", "type": format!("weather.changed{n}"), "payload": {"note": XSS, "n": n}});
    for n in 1..=3 {
        let r = c.call(PUBLISH, Some(&game), publish(n)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    // Replay: the newest, and from a sequence on; a payload is shown as text.
    let page = send(
        &edge,
        "GET",
        "/console/events?topic=world",
        Some(&session),
        &[],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("weather.changed1") && page.body.contains("weather.changed3"));
    assert!(!page.body.contains("<img"), "escaped: {}", page.body);
    assert!(
        page.body.contains("&lt;img src=x onerror="),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"<script src="/console/assets/events.js" defer>"#)
    );
    let page = send(
        &edge,
        "GET",
        "/console/events?topic=world&after=2",
        Some(&session),
        &[],
    )
    .await;
    assert!(!page.body.contains("weather.changed2") && page.body.contains("weather.changed3"));
    // Bad input is refused with a reason; admin topics may be read here.
    let page = send(
        &edge,
        "GET",
        "/console/events?topic=a%20b",
        Some(&session),
        &[],
    )
    .await;
    assert_eq!(page.status, 400);
    let page = send(
        &edge,
        "GET",
        "/console/events?topic=world&after=-1",
        Some(&session),
        &[],
    )
    .await;
    assert_eq!(page.status, 400);
    let page = send(
        &edge,
        "GET",
        "/console/events?topic=admin.audit",
        Some(&session),
        &[],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("admin.key_created"), "{}", page.body);
    // The script is served from this origin, and the CSP allows no other.
    let js = send(&edge, "GET", "/console/assets/events.js", None, &[]).await;
    assert_eq!(js.status, 200);
    assert!(js.body.contains("textContent") && !js.body.contains("innerHTML"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );

    // No session, no tail; a player's token does not open one either.
    assert_eq!(Tail::open(&edge, None, "world").await.err().unwrap().0, 401);
    let player = edge_e2e::scenarios::login(&c, "pat").await;
    assert_eq!(
        Tail::open(&edge, Some(&player.access), "world")
            .await
            .err()
            .unwrap()
            .0,
        401
    );
    // Two tails per session; the third is refused.
    let mut a = Tail::open(&edge, Some(&session), "world").await.unwrap();
    let mut b = Tail::open(&edge, Some(&session), "admin.audit")
        .await
        .unwrap();
    let (status, text) = Tail::open(&edge, Some(&session), "world")
        .await
        .err()
        .unwrap();
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("live tails open"), "{text}");
    // Published now: arrives on the tail.
    let r = c.call(PUBLISH, Some(&game), publish(4)).await;
    assert_eq!(r.status, 200);
    a.until("weather.changed4").await;
    assert!(
        !a.seen.contains("weather.changed3"),
        "a tail starts at the head"
    );

    // A logout ends that session's tails.
    let other = log_in(&edge, &key).await;
    let page = send(
        &edge,
        "GET",
        "/console/events?topic=world",
        Some(&other),
        &[],
    )
    .await;
    let mut c3 = Tail::open(&edge, Some(&other), "world").await.unwrap();
    let out = send(
        &edge,
        "POST",
        "/console/logout",
        Some(&other),
        &[("csrf", &page.field("csrf"))],
    )
    .await;
    assert_eq!(out.status, 303);
    c3.until("event: error").await;
    assert!(c3.seen.contains("session ended"), "{}", c3.seen);

    // SIGTERM: the tails end with the edge's final word, and the edge exits.
    edge.signal("TERM");
    for t in [&mut a, &mut b] {
        t.until("event: error").await;
        assert!(t.seen.contains("shutting down"), "{}", t.seen);
    }
    assert!(
        edge.wait_exit(Duration::from_secs(15))
            .expect("exited")
            .success()
    );
}

#[tokio::test]
async fn the_explorer_calls_as_the_console_for_a_player_and_with_a_pasted_secret() {
    let edge = Edge::start(&[]);
    let key = edge.service_key("alice", "console");
    let game = edge.service_key("game", "*");
    let session = log_in(&edge, &key).await;
    let c = edge.client();
    let player = edge_e2e::scenarios::login(&c, "pat").await;
    let put = proto::rpc::state::PUT.path;
    let get = proto::rpc::state::GET.path;
    let replay = proto::rpc::events::REPLAY.path;

    // The method list and a form pre-filled from the schema.
    let page = send(
        &edge,
        "GET",
        &format!("/console/explorer?method={put}"),
        Some(&session),
        &[],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(r#"<textarea id="body" name="body""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("&quot;key&quot;"), "{}", page.body);
    assert!(
        page.body.contains(r#"name="idempotency_key""#),
        "a mutation carries a key"
    );
    let csrf = page.field("csrf");
    let missing = send(
        &edge,
        "GET",
        "/console/explorer?method=/nope",
        Some(&session),
        &[],
    )
    .await;
    assert_eq!(missing.status, 404);

    // As the console: a service method.
    let call = |method: &'static str,
                body: String,
                identity: &'static str,
                extra: Vec<(&'static str, String)>| {
        let csrf = csrf.clone();
        let session = session.clone();
        let edge = &edge;
        async move {
            let mut form = vec![
                ("csrf", csrf),
                ("method", method.to_owned()),
                ("body", body),
                ("identity", identity.to_owned()),
            ];
            form.extend(extra);
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(edge, "POST", "/console/explorer", Some(&session), &form).await
        }
    };
    let a = call(
        replay,
        json!({"topic": "world"}).to_string(),
        "console",
        vec![],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("Answer: 200") && a.body.contains("Sent as console"),
        "{}",
        a.body
    );

    // For a player: the console's identity with the player's id, as a service key would.
    let value = json!({"key": "console-note", "value": {"said": XSS}}).to_string();
    let extra = vec![
        ("player_id", player.player_id.clone()),
        ("idempotency_key", "k-1".to_owned()),
    ];
    let a = call(put, value.clone(), "player", extra.clone()).await;
    assert!(a.body.contains("Answer: 200"), "{}", a.body);
    assert!(
        a.body
            .contains(&format!("console for player {}", player.player_id))
    );
    assert!(!a.body.contains("<img"), "the echoed request is escaped");
    let r = c
        .call(get, Some(&player.access), json!({"key": "console-note"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["entry"]["value"]["said"], XSS, "{:?}", r.body);
    let bad = call(
        put,
        value,
        "player",
        vec![("player_id", "not-a-player".to_owned())],
    )
    .await;
    assert!(
        bad.body.contains("Answer: 400") && bad.body.contains("32 hex digits"),
        "{}",
        bad.body
    );

    // With a pasted secret: sent as that key, never kept or shown.
    let a = call(
        replay,
        json!({"topic": "world"}).to_string(),
        "key",
        vec![("secret", game.clone())],
    )
    .await;
    assert!(
        a.body.contains("Answer: 200") && a.body.contains("Sent as a pasted key"),
        "{}",
        a.body
    );
    assert!(!a.body.contains(&game), "the secret is not echoed");
    // A player's own token, pasted: its access rules apply.
    let a = call(
        proto::rpc::payment::CREDIT.path,
        json!({"amount": 5}).to_string(),
        "key",
        vec![
            ("secret", player.access.clone()),
            ("idempotency_key", "k-3".to_owned()),
        ],
    )
    .await;
    assert!(a.body.contains("Answer: 403"), "{}", a.body);
    let a = call(
        replay,
        "{}".to_owned(),
        "key",
        vec![("secret", "edge_forged".to_owned())],
    )
    .await;
    assert!(a.body.contains("Answer: 401"), "{}", a.body);
    let audit = send(&edge, "GET", "/console/audit", Some(&session), &[]).await;
    assert!(audit.body.contains("admin.api_call"), "{}", audit.body);
    assert!(audit.body.contains("a pasted key") && audit.body.contains("console:alice"));
    for secret in [&game, &player.access] {
        assert!(!audit.body.contains(secret.as_str()), "not in the audit");
        assert!(!edge.logs().contains(secret.as_str()), "not in the log");
    }

    // Without the session's token, from another page, or without a session: refused.
    let forged = send(
        &edge,
        "POST",
        "/console/explorer",
        Some(&session),
        &[("csrf", "x"), ("method", replay), ("body", "{}")],
    )
    .await;
    assert_eq!(forged.status, 403);
    let none = send(&edge, "GET", "/console/explorer", None, &[]).await;
    assert_eq!(none.status, 303);
    let r = c.get("/console/explorer").await;
    assert_eq!(r.status, 404, "not on the public listener");

    // The Content page: what is loaded, the canon, no findings.
    let page = send(&edge, "GET", "/console/content", Some(&session), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "Quests (",
        "Regions (",
        "Locales (",
        "Canon",
        "Names from another world",
        "None: the content check finds nothing",
    ] {
        assert!(page.body.contains(text), "{text}");
    }
}

/// The Content page runs the content check on the files as they are now: a catalog of the
/// operator's own, broken after the edge started, shows its finding with file and line.
#[tokio::test]
async fn the_content_page_shows_the_findings_of_files_changed_since_start() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.toml");
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../handlers/data/payment/catalog.toml"
    );
    std::fs::copy(shipped, &catalog).unwrap();
    let edge = Edge::start(&["--price-catalog", catalog.to_str().unwrap()]);
    let key = edge.service_key("alice", "console");
    let session = log_in(&edge, &key).await;
    let page = send(&edge, "GET", "/console/content", Some(&session), &[]).await;
    assert!(
        page.body.contains("None: the content check finds nothing"),
        "{}",
        page.body
    );
    std::fs::write(
        &catalog,
        "[inventory]\nbase_capacity = 20\n\n[[item]]\nsku = \"<b>Bad Sku</b>\"\n",
    )
    .unwrap();
    let page = send(&edge, "GET", "/console/content", Some(&session), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("finding(s)"), "{}", page.body);
    assert!(
        page.body.contains("catalog.toml:"),
        "file and line: {}",
        page.body
    );
    assert!(!page.body.contains("<b>Bad"), "escaped: {}", page.body);
}
