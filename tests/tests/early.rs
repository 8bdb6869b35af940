//! End-to-end: answers the edge gives before reading a request's body reach libcurl 7.x clients
//! over HTTP/2, with the curl binary from Debian's package (7.88 resets on `RST_STREAM` after
//! the response and reports no response at all, exit 92, unless the body was read first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::path::Path;
use std::process::Command;

use edge_e2e::sse::Sse;
use edge_e2e::{Edge, scenarios};

const GET: &str = rpc::state::GET.path;

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    content_type: &'static str,
    token: Option<String>,
    extra: Vec<&'static str>,
    body_len: usize,
    want: u16,
}

/// The installed curl is one with the defect (7.x): a curl without it would pass these tests
/// whether or not the edge reads the body first, so on another curl they would prove nothing.
fn require_curl_7() {
    let out = Command::new("curl")
        .arg("--version")
        .output()
        .expect("curl (Debian's curl package) runs");
    let version = String::from_utf8_lossy(&out.stdout);
    let first = version.lines().next().unwrap_or("");
    assert!(
        first.starts_with("curl 7."),
        "these tests need curl 7.x (Debian 12's 7.88), whose HTTP/2 client drops an early answer \
         the edge must not cut short; found {first:?}"
    );
}

/// Runs curl once: (exit code, HTTP status as curl saw it, stderr).
fn curl(edge: &Edge, case: &Case, http2: bool, body: &Path) -> (i32, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(if http2 { "--http2" } else { "--http1.1" })
        .args(["--cacert", edge.ca().to_str().unwrap()])
        .args(["-X", case.method])
        .args(["-H", &format!("content-type: {}", case.content_type)])
        .args(["--data-binary", &format!("@{}", body.display())]);
    if let Some(t) = &case.token {
        cmd.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    for h in &case.extra {
        cmd.args(["-H", h]);
    }
    cmd.arg(format!(
        "https://localhost:{}{}",
        edge.https.port(),
        case.path
    ));
    let out = cmd.output().expect("curl (Debian's curl package) runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(edge: &Edge, cases: &[Case]) {
    let dir = tempfile::tempdir().unwrap();
    for case in cases {
        let body = dir.path().join(case.name);
        let mut bytes = br#"{"key":"save.slot1","pad":""#.to_vec();
        bytes.resize(case.body_len.saturating_sub(2), b'x');
        bytes.extend_from_slice(br#""}"#);
        std::fs::write(&body, &bytes).unwrap();
        // The failure was in most tries, not all: every try must see the status.
        for attempt in 0..8 {
            let (code, status, err) = curl(edge, case, true, &body);
            assert_eq!(
                (code, status.as_str()),
                (0, case.want.to_string().as_str()),
                "{} over HTTP/2, try {attempt}: curl exit {code}, {err}",
                case.name
            );
        }
        let (code, status, err) = curl(edge, case, false, &body);
        assert_eq!(
            (code, status.as_str()),
            (0, case.want.to_string().as_str()),
            "{} over HTTP/1.1: {err}",
            case.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn early_refusals_reach_curl_over_http2() {
    require_curl_7();
    let edge = Edge::start(&["--max-body-bytes", "4096"]);
    let c = edge.client();
    let me = scenarios::login(&c, "curly").await;
    let token = Some(me.access.clone());
    let case = |name, method, path, ct, token: &Option<String>, body_len, want| Case {
        name,
        method,
        path,
        content_type: ct,
        token: token.clone(),
        extra: Vec::new(),
        body_len,
        want,
    };
    let cases = [
        case(
            "unauthenticated",
            "POST",
            GET,
            "application/json",
            &None,
            2000,
            401,
        ),
        case(
            "forbidden",
            "POST",
            rpc::router::LIST_ROUTES.path,
            "application/json",
            &token,
            2000,
            403,
        ),
        case(
            "no route",
            "POST",
            "/nope",
            "application/json",
            &token,
            2000,
            404,
        ),
        case(
            "wrong method",
            "PUT",
            GET,
            "application/json",
            &token,
            2000,
            405,
        ),
        // Over the 4 KiB limit but within reason: read and dropped, then 413.
        case(
            "too large",
            "POST",
            GET,
            "application/json",
            &token,
            12_000,
            413,
        ),
        case("media type", "POST", GET, "text/plain", &token, 2000, 415),
    ];
    tokio::task::spawn_blocking(move || check(&edge, &cases))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn shed_and_limited_reach_curl_over_http2() {
    require_curl_7();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tight.toml");
    std::fs::write(
        &config,
        "[rate_limit.general]\nper_minute = 1\nburst = 2\n[streams]\nmax_concurrent = 1\n",
    )
    .unwrap();
    let edge = Edge::start(&["--config", config.to_str().unwrap()]);
    let c = edge.client();
    let me = scenarios::login(&c, "curly").await;
    // The one open stream the server allows, and the player's general quota spent.
    let topic = format!("player.{}", me.player_id);
    let mut held = Sse::get(
        &c,
        &format!("/v1/events?topics={topic}"),
        Some(&me.access),
        &[],
    )
    .await;
    assert_eq!(held.status, 200);
    assert!(held.next().await.is_some());
    while c
        .call(GET, Some(&me.access), serde_json::json!({}))
        .await
        .status
        != 429
    {}
    let token = Some(me.access.clone());
    let cases = [
        Case {
            name: "rate limited",
            method: "POST",
            path: GET,
            content_type: "application/json",
            token: token.clone(),
            extra: Vec::new(),
            body_len: 2000,
            want: 429,
        },
        Case {
            name: "no stream slot",
            method: "POST",
            path: rpc::llm::INFER_STREAM.path,
            content_type: "application/json",
            token,
            extra: vec!["accept: text/event-stream"],
            body_len: 2000,
            want: 503,
        },
    ];
    tokio::task::spawn_blocking(move || check(&edge, &cases))
        .await
        .unwrap();
    drop(held);
}
