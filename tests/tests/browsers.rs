//! End-to-end: what browsers need (CORS), through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use edge_e2e::{Edge, scenarios};
use http::Method;
use proto::rpc;

const GET: &str = rpc::state::GET.path;
const PLAY: &str = "https://play.example.com";

fn header<'a>(r: &'a edge_e2e::client::Response, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn listed_origins_get_cors_and_preflights_need_no_token() {
    let edge = Edge::start(&["--cors-origins", PLAY]);
    let c = edge.client();
    let preflight = |origin: &'static str| {
        let c = c.clone();
        async move {
            c.request(
                Method::OPTIONS,
                GET,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization,content-type,idempotency-key",
                    ),
                ],
                "",
            )
            .await
        }
    };
    // Answered before authentication: no token, yet 200 with the grant.
    let r = preflight(PLAY).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PLAY));
    let allowed = header(&r, "access-control-allow-headers").unwrap_or_default();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert!(header(&r, "access-control-allow-credentials").is_none());
    // Another origin gets no grant, so its browser refuses the call.
    let r = preflight("https://evil.example").await;
    assert!(header(&r, "access-control-allow-origin").is_none());

    // Real answers, errors included, carry the grant and expose what clients read.
    let r = c
        .request(
            Method::POST,
            GET,
            &[("origin", PLAY), ("content-type", "application/json")],
            r#"{"key":"save.slot1"}"#,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PLAY));
    let exposed = header(&r, "access-control-expose-headers").unwrap_or_default();
    for h in ["retry-after", "x-request-id", "ratelimit"] {
        assert!(exposed.contains(h), "{exposed}");
    }
    let me = scenarios::login(&c, "webgl").await;
    let bearer = format!("Bearer {}", me.access);
    let r = c
        .request(
            Method::POST,
            GET,
            &[
                ("origin", PLAY),
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            r#"{"key":"nothing"}"#,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PLAY));
}

#[tokio::test]
async fn without_configured_origins_there_is_no_cors() {
    let edge = Edge::start(&[]);
    let r = edge
        .client()
        .request(
            Method::OPTIONS,
            GET,
            &[("origin", PLAY), ("access-control-request-method", "POST")],
            "",
        )
        .await;
    assert!(
        header(&r, "access-control-allow-origin").is_none(),
        "{:?}",
        r.headers
    );
    // A bad origin in the configuration is refused at start.
    let (code, _, err) =
        edge_e2e::run_edge(&["config", "check", "--cors-origins", "play.example.com"]);
    assert_eq!(code, 1);
    assert!(err.contains("not an origin"), "{err}");
}

#[tokio::test]
async fn whole_numbers_come_back_as_integers() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let me = scenarios::login(&c, "typed-client").await;
    let r = c
        .call(
            rpc::state::PUT.path,
            Some(&me.access),
            serde_json::json!({"key": "save.slot2", "value": {"hp": 10, "speed": 2.5, "pos": [0, -3]}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c
        .call(
            GET,
            Some(&me.access),
            serde_json::json!({"key": "save.slot2"}),
        )
        .await;
    let text = r.text();
    assert!(text.contains(r#""hp":10"#), "{text}");
    assert!(text.contains(r#""speed":2.5"#), "{text}");
    assert!(text.contains(r#""pos":[0,-3]"#), "{text}");
    assert!(!text.contains("10.0"), "{text}");
}
