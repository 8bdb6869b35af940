//! End-to-end: gzip request and response bodies through the real binary, and what must never be
//! compressed or inflated without bound.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::io::{Read as _, Write as _};

use edge_e2e::sse::Sse;
use edge_e2e::{Edge, scenarios};
use http::Method;
use serde_json::json;

const PUT: &str = rpc::state::PUT.path;
const GET: &str = rpc::state::GET.path;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn header<'a>(r: &'a edge_e2e::Response, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn gzip_requests_are_inflated_within_the_body_limit() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let me = scenarios::login(&c, "zipper").await;
    let auth = format!("Bearer {}", me.access);
    let send = |ct: &'static str, enc: &'static str, body: Vec<u8>| {
        let c = c.clone();
        let auth = auth.clone();
        async move {
            c.request(
                Method::POST,
                PUT,
                &[
                    ("content-type", ct),
                    ("content-encoding", enc),
                    ("authorization", &auth),
                ],
                body,
            )
            .await
        }
    };
    // JSON and protobuf bodies, gzip-compressed.
    let json_body = br#"{"key":"save.zipped","value":{"hp":10}}"#;
    let r = send("application/json", "gzip", gzip(json_body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let get = c
        .call(GET, Some(&me.access), json!({"key": "save.zipped"}))
        .await;
    assert_eq!(get.json()["entry"]["value"], json!({"hp": 10}));
    let proto = prost::Message::encode_to_vec(&proto::aicore::state::v1::PutRequest {
        key: "save.proto".into(),
        value: Some(pbjson_types::Value::from(7.0)),
        ..Default::default()
    });
    let r = send("application/proto", "gzip", gzip(&proto)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A bomb: 64 MiB of JSON whitespace in about 64 KiB, under the 256 KiB body limit as sent.
    let mut bomb = b"{\"key\":\"save.bomb\",\"value\":".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 64 << 20));
    bomb.extend_from_slice(b"1}");
    let packed = gzip(&bomb);
    assert!(packed.len() < 256 * 1024, "{}", packed.len());
    let r = send("application/json", "gzip", packed).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["code"], "resource_exhausted");
    assert!(r.text().contains("inflated"), "{}", r.text());
    assert!(
        edge.rss_kib() < 200 * 1024,
        "inflating stopped at the limit"
    );

    // Not gzip at all: 400; an encoding the edge does not take: 501 naming the ones it does.
    let r = send("application/json", "gzip", json_body.to_vec()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], "invalid_argument");
    let r = send("application/json", "br", json_body.to_vec()).await;
    assert_eq!(r.status, 501, "{}", r.text());
    assert_eq!(header(&r, "accept-encoding"), Some("gzip, identity"));
    // The server is fine afterwards.
    let r = send("application/json", "identity", json_body.to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn large_replies_are_compressed_small_ones_and_streams_never() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let me = scenarios::login(&c, "reader").await;
    let auth = format!("Bearer {}", me.access);
    let names: Vec<String> = (0..400).map(|i| format!("lantern-{i}")).collect();
    let r = c
        .call(
            PUT,
            Some(&me.access),
            json!({"key": "save.big", "value": {"inventory": names}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    c.call(
        PUT,
        Some(&me.access),
        json!({"key": "save.small", "value": 1}),
    )
    .await;
    let get = |key: &'static str, accept: &'static str| {
        let c = c.clone();
        let auth = auth.clone();
        async move {
            c.request(
                Method::POST,
                GET,
                &[
                    ("content-type", "application/json"),
                    ("accept-encoding", accept),
                    ("authorization", &auth),
                ],
                format!(r#"{{"key":"{key}"}}"#),
            )
            .await
        }
    };
    let plain = get("save.big", "identity").await;
    assert_eq!(plain.status, 200);
    assert_eq!(header(&plain, "content-encoding"), None);
    let packed = get("save.big", "gzip, deflate, br").await;
    assert_eq!(header(&packed, "content-encoding"), Some("gzip"));
    assert_eq!(header(&packed, "vary"), Some("accept-encoding"));
    assert!(packed.body.len() * 3 < plain.body.len(), "it pays");
    assert_eq!(gunzip(&packed.body), plain.body.to_vec());
    // Small replies go out as they are.
    let small = get("save.small", "gzip").await;
    assert_eq!(small.status, 200);
    assert_eq!(header(&small, "content-encoding"), None);
    // q=0 refuses gzip.
    let refused = get("save.big", "gzip;q=0").await;
    assert_eq!(header(&refused, "content-encoding"), None);

    // The description is large and compresses.
    let doc = c
        .request(
            Method::GET,
            "/openapi.json",
            &[("accept-encoding", "gzip")],
            "",
        )
        .await;
    assert_eq!(header(&doc, "content-encoding"), Some("gzip"));
    let inflated: serde_json::Value = serde_json::from_slice(&gunzip(&doc.body)).unwrap();
    assert_eq!(inflated["openapi"], "3.1.0");

    // SSE is never compressed, whatever the client accepts.
    let topic = format!("player.{}", me.player_id);
    let mut s = Sse::get(
        &c,
        &format!("/v1/events?topics={topic}"),
        Some(&me.access),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(s.status, 200);
    assert_eq!(s.headers.get("content-encoding"), None);
    let first = s.next().await.unwrap();
    assert_eq!(first.event.as_deref(), Some("subscribed"));
}
