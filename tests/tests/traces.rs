//! End-to-end: OpenTelemetry traces. A test OTLP/HTTP receiver decodes what the edge and a
//! worker export; one request that crosses edge -> NATS -> worker -> a service back in the edge
//! is one trace, under the client's own traceparent, with the right parent/child links.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use edge_e2e::nats::Nats;
use edge_e2e::{Edge, eventually, scenarios};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use serde_json::json;

const BOOTSTRAP: &str = rpc::bodybroker::BOOTSTRAP.path;

#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace: String,
    id: String,
    parent: String,
    attrs: HashMap<String, String>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

/// A collector on a free loopback port: every span it receives.
async fn collector() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&spans);
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: bytes::Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut out = sink.lock().unwrap();
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .as_ref()
                        .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                        .map(|a| text(&a.value))
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            out.push(Span {
                                service: service.clone(),
                                name: s.name,
                                trace: hex(&s.trace_id),
                                id: hex(&s.span_id),
                                parent: hex(&s.parent_span_id),
                                attrs: s
                                    .attributes
                                    .iter()
                                    .map(|a| (a.key.clone(), text(&a.value)))
                                    .collect(),
                            });
                        }
                    }
                }
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

/// A Bootstrap (the facade on a worker, which calls back into the edge) under `traceparent`,
/// once the worker answers.
async fn bootstrap(c: &edge_e2e::Client, access: &str, traceparent: &str) {
    eventually(Duration::from_secs(20), "the facade answers", async || {
        c.call_with(
            BOOTSTRAP,
            Some(access),
            &[("traceparent", traceparent)],
            json!({"regionId": "hearthvale"}),
        )
        .await
        .status
            == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_request_across_nats_and_a_worker_is_one_trace() {
    let (url, spans) = collector().await;
    let nats = Nats::start("");
    let otel = ["--otel-endpoint", url.as_str()];
    let _worker = Edge::start_worker(
        &[
            &["--nats", &nats.url(), "--services", "bodybroker"][..],
            &otel[..],
        ]
        .concat(),
    );
    let edge = Edge::start(
        &[
            &[
                "--nats",
                &nats.url(),
                "--remote",
                "bodybroker",
                "--access-log",
                "true",
            ][..],
            &otel[..],
        ]
        .concat(),
    );
    let c = edge.client();
    let me = scenarios::login(&c, "traveller").await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    bootstrap(&c, &me.access, &format!("00-{trace}-{client_span}-01")).await;

    // Exported in batches of at most half a second.
    let mut mine = Vec::new();
    eventually(
        Duration::from_secs(15),
        "the worker's and the edge's spans arrive",
        async || {
            mine = spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.trace == trace)
                .cloned()
                .collect();
            mine.iter().any(|s| {
                s.service == "edge-worker" && s.name.ends_with("settings.v1.SettingsService/Get")
            }) && mine.iter().any(|s| {
                s.service == "edge"
                    && s.name.ends_with("settings.v1.SettingsService/Get")
                    && !s.parent.is_empty()
                    && mine
                        .iter()
                        .any(|p| p.id == s.parent && p.service == "edge-worker")
            }) && mine
                .iter()
                // The request span ends last, after its answer: it may come in a later batch.
                .any(|s| s.service == "edge" && s.name == BOOTSTRAP)
                // So does the worker's serving span, after its own calls' spans.
                && mine.iter().any(|s| {
                    s.service == "edge-worker"
                        && s.attrs.get("rpc.method").is_some_and(|m| m == "Bootstrap")
                })
                && mine.iter().any(|s| s.name == "authenticate")
        },
    )
    .await;
    let by_id: HashMap<&str, &Span> = mine.iter().map(|s| (s.id.as_str(), s)).collect();
    let show = || format!("{mine:#?}");

    // The edge's request span is the client's span's child, named by its route.
    let request = mine
        .iter()
        .find(|s| s.service == "edge" && s.name == BOOTSTRAP)
        .unwrap_or_else(|| panic!("the request span: {}", show()));
    assert_eq!(request.parent, client_span, "{}", show());
    assert_eq!(request.attrs["http.response.status_code"], "200");
    assert_eq!(request.attrs["http.request.method"], "POST");
    // Its router call goes to NATS...
    let call = mine
        .iter()
        .find(|s| {
            s.service == "edge"
                && s.parent == request.id
                && s.attrs.get("edge.target").is_some_and(|t| t == "nats")
        })
        .unwrap_or_else(|| panic!("the edge's call to the worker: {}", show()));
    assert_eq!(call.attrs["rpc.method"], "Bootstrap");
    // ...where the worker serves it as that call's child...
    let serve = mine
        .iter()
        .find(|s| s.service == "edge-worker" && s.parent == call.id)
        .unwrap_or_else(|| panic!("the worker's span: {}", show()));
    assert_eq!(serve.attrs["rpc.method"], "Bootstrap");
    // ...and its call of another service (settings, hosted by the edge) comes back to the edge,
    // which serves it as the worker's call's child, all in the one trace.
    let worker_call = mine
        .iter()
        .find(|s| {
            s.service == "edge-worker"
                && s.attrs.get("rpc.method").is_some_and(|m| m == "Get")
                && s.attrs
                    .get("rpc.service")
                    .is_some_and(|m| m.contains("Settings"))
                && by_id
                    .get(s.parent.as_str())
                    .is_some_and(|p| p.id == serve.id)
        })
        .unwrap_or_else(|| panic!("the worker's call of settings: {}", show()));
    assert_eq!(worker_call.attrs["edge.caller"], "bodybroker");
    let edge_serve = mine
        .iter()
        .find(|s| s.service == "edge" && s.parent == worker_call.id)
        .unwrap_or_else(|| panic!("the edge serving the worker's call: {}", show()));
    assert!(
        edge_serve.name.ends_with("SettingsService/Get"),
        "{}",
        show()
    );
    assert!(mine.iter().all(|s| s.trace == trace));

    // Authentication has a span of its own, the request's child: the credential, who it proved
    // to be (never a player's id) and the outcome.
    let auth = mine
        .iter()
        .find(|s| s.name == "authenticate" && s.parent == request.id)
        .unwrap_or_else(|| panic!("the authentication span: {}", show()));
    assert_eq!(auth.attrs["edge.auth.credential"], "access_token");
    assert_eq!(auth.attrs["edge.auth.principal"], "player");
    assert_eq!(auth.attrs["edge.code"], "ok");
    assert!(
        mine.iter()
            .all(|s| s.attrs.values().all(|v| !v.contains(&me.player_id))),
        "a player id in a span: {}",
        show()
    );

    // A public client's "not sampled" does not hide its request: the edge's sampler decides.
    let hidden = "9bf92f3577b34da6a3ce929d0e0e4736";
    bootstrap(&c, &me.access, &format!("00-{hidden}-{client_span}-00")).await;
    eventually(
        Duration::from_secs(15),
        "an unsampled public trace is recorded by the edge and the worker",
        async || {
            let all = spans.lock().unwrap();
            all.iter()
                .any(|s| s.trace == hidden && s.service == "edge" && s.name == BOOTSTRAP)
                && all
                    .iter()
                    .any(|s| s.trace == hidden && s.service == "edge-worker")
        },
    )
    .await;

    // Log lines inside the request carry its trace id (the access log's, here).
    let logs = edge.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains(BOOTSTRAP) && l.contains(trace) && l.contains("\"status\":200")),
        "{logs}"
    );
}

/// The edge faces the public: by default a client's sampled flag neither records a trace the
/// edge's sampler would not (a client setting it on every request would choose what tracing
/// costs) nor reaches a worker. `--otel-trust-client-sampled true` restores parent-based
/// sampling for clients that can be trusted.
#[tokio::test(flavor = "multi_thread")]
async fn a_clients_sampled_flag_counts_only_when_trusted() {
    let (url, spans) = collector().await;
    let nats = Nats::start("");
    let otel = ["--otel-endpoint", url.as_str()];
    // The worker follows its callers' flags (parent-based, its default).
    let _worker = Edge::start_worker(
        &[
            &["--nats", &nats.url(), "--services", "bodybroker"][..],
            &otel[..],
        ]
        .concat(),
    );
    let edge_args = |trust: &'static str| {
        Edge::start(
            &[
                &[
                    "--nats",
                    &nats.url(),
                    "--remote",
                    "bodybroker",
                    "--otel-sampler",
                    "parentbased_always_off",
                    "--otel-trust-client-sampled",
                    trust,
                ][..],
                &otel[..],
            ]
            .concat(),
        )
    };
    let public = edge_args("false");
    let trusting = edge_args("true");
    let span = "00f067aa0ba902b7";
    let call = async |edge: &Edge, trace: &str, flags: &str| {
        let c = edge.client();
        // One player per call: each edge keeps its own accounts.
        let me = scenarios::login(&c, &format!("traveller{}", &trace[..8])).await;
        bootstrap(&c, &me.access, &format!("00-{trace}-{span}-{flags}")).await;
    };
    let of = |trace: &str| -> Vec<Span> {
        spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace == trace)
            .cloned()
            .collect()
    };

    // Trusted: the client's flag decides, and the worker follows it.
    let trusted = "6bf92f3577b34da6a3ce929d0e0e4736";
    call(&trusting, trusted, "01").await;
    eventually(
        Duration::from_secs(15),
        "the trusted trace is exported by the edge and the worker",
        async || {
            let got = of(trusted);
            got.iter()
                .any(|s| s.service == "edge" && s.name == BOOTSTRAP)
                && got.iter().any(|s| s.service == "edge-worker")
        },
    )
    .await;

    // Public: the same flag records nothing, at the edge or at the worker it reaches.
    let forced = "7bf92f3577b34da6a3ce929d0e0e4736";
    call(&public, forced, "01").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        of(forced).is_empty(),
        "a public client's sampled flag was followed: {:#?}",
        of(forced)
    );
    // A trusted client's unsampled flag is followed too.
    let unsampled = "8bf92f3577b34da6a3ce929d0e0e4736";
    call(&trusting, unsampled, "00").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(of(unsampled).is_empty(), "{:#?}", of(unsampled));
}
