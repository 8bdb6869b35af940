//! An SSE reader over the test client (events as they arrive, with their arrival times), and a
//! fake OpenAI-compatible upstream for the `openai` provider.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;

use crate::client::{Client, Conn};

/// One SSE message (or a comment).
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// `id:`.
    pub id: Option<String>,
    /// `event:` (None means "message").
    pub event: Option<String>,
    /// The `data:` lines joined with newlines.
    pub data: String,
    /// A `retry:` value.
    pub retry: Option<u64>,
    /// A comment-only block (`: ping`).
    pub comment: bool,
    /// When it arrived.
    pub at: Option<Instant>,
}

impl Event {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.data))
    }
}

/// An open response read incrementally.
pub struct Sse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    body: Incoming,
    buf: Vec<u8>,
    _conn: Option<Conn>,
}

impl Sse {
    /// POSTs `json` to `path` with `Accept: text/event-stream` on a new HTTP/1.1 connection.
    pub async fn post(c: &Client, path: &str, token: Option<&str>, json: serde_json::Value) -> Sse {
        let conn = c.connect(false).await.expect("connect");
        Sse::send(
            conn,
            Method::POST,
            path,
            token,
            Bytes::from(json.to_string()),
            &[],
        )
        .await
    }

    /// GETs `path` with `Accept: text/event-stream` and `extra` headers on a new connection.
    pub async fn get(c: &Client, path: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Sse {
        let conn = c.connect(false).await.expect("connect");
        Sse::send(conn, Method::GET, path, token, Bytes::new(), extra).await
    }

    /// Sends a request on `conn` (kept open with the response) and returns once headers arrive.
    pub async fn send(
        mut conn: Conn,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Bytes,
        extra: &[(&str, &str)],
    ) -> Sse {
        let mut req = Request::builder()
            .method(method)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream");
        req = match &conn {
            Conn::H1(_) => req.uri(path).header("host", "localhost"),
            Conn::H2(_) => req.uri(format!("https://localhost{path}")),
        };
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).expect("request");
        let res = match &mut conn {
            Conn::H1(s) => {
                s.ready().await.expect("ready");
                s.send_request(req).await.expect("send")
            }
            Conn::H2(s) => {
                s.ready().await.expect("ready");
                s.send_request(req).await.expect("send")
            }
        };
        let (parts, body) = res.into_parts();
        Sse {
            status: parts.status,
            headers: parts.headers,
            body,
            buf: Vec::new(),
            _conn: Some(conn),
        }
    }

    /// The next block (message or comment), or None when the body ends.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Some(parse(&String::from_utf8_lossy(&block)));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next block within `wait`; None on timeout or end.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Event> {
        tokio::time::timeout(wait, self.next()).await.ok().flatten()
    }

    /// Every remaining block, until the body ends.
    pub async fn collect(mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }

    /// The connection, for the next request once this response was read to its end.
    pub fn into_conn(mut self) -> Option<Conn> {
        self._conn.take()
    }

    /// The rest of the body as text (for non-SSE answers).
    pub async fn text(self) -> String {
        let mut buf = self.buf;
        let rest = self
            .body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        buf.extend_from_slice(&rest);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn parse(block: &str) -> Event {
    let mut e = Event {
        at: Some(Instant::now()),
        ..Event::default()
    };
    let mut data = Vec::new();
    let mut fields = 0;
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        fields += 1;
        let (k, v) = line.split_once(':').unwrap_or((line, ""));
        let v = v.strip_prefix(' ').unwrap_or(v);
        match k {
            "id" => e.id = Some(v.to_owned()),
            "event" => e.event = Some(v.to_owned()),
            "data" => data.push(v.to_owned()),
            "retry" => e.retry = v.parse().ok(),
            _ => {}
        }
    }
    e.comment = fields == 0;
    e.data = data.join("\n");
    e
}

/// The text of a Connect-path LLM stream: its deltas joined.
pub fn deltas(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.event.is_none() && !e.comment)
        .map(|e| e.json()["delta"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// What the fake upstream saw.
#[derive(Default, Debug)]
pub struct Seen {
    /// Authorization headers, by model.
    pub auth: HashMap<String, Option<String>>,
    /// Requests, by model.
    pub calls: HashMap<String, usize>,
}

/// A fake OpenAI-compatible server. The model name picks the behaviour:
/// `ok` ("Hello", " world", usage 3/2), `long` (300 tokens), `fail` (HTTP 500),
/// `broken` (two tokens, then the connection ends without `[DONE]`), `silent` (one token, 90 s
/// of silence, then the rest; `silent-<n>` is silent for n seconds), `slow` (nothing for 30 s).
pub struct FakeOpenAi {
    /// Its address.
    pub addr: SocketAddr,
    /// What it saw.
    pub seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn chunk(model: &str, content: Option<&str>, finish: Option<&str>) -> String {
    let delta = match content {
        Some(c) => serde_json::json!({"content": c}),
        None => serde_json::json!({}),
    };
    let c = serde_json::json!({"id":"x","object":"chat.completion.chunk","created":1,"model":model,
        "choices":[{"index":0,"delta":delta,"finish_reason":finish}]});
    format!("data: {c}\n\n")
}

impl FakeOpenAi {
    /// Starts it on a free loopback port.
    pub async fn start() -> FakeOpenAi {
        use axum::routing::post;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s2 = Arc::clone(&seen);
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(move |headers: HeaderMap, body: Bytes| {
                let seen = Arc::clone(&s2);
                async move {
                    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let model = req["model"].as_str().unwrap_or("").to_owned();
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    {
                        let mut s = seen.lock().expect("seen");
                        s.auth.insert(
                            model.clone(),
                            headers
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned),
                        );
                        *s.calls.entry(model.clone()).or_default() += 1;
                    }
                    fake_answer(model, auth).await
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOpenAi { addr, seen, task }
    }

    /// The base URL to register models with.
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

async fn fake_answer(model: String, auth: String) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let sse =
        |body: axum::body::Body| ([("content-type", "text/event-stream")], body).into_response();
    let m = model.clone();
    let stream = |parts: Vec<(Duration, String)>, end_cleanly: bool| {
        let s = futures_util::stream::unfold(
            (parts.into_iter(), end_cleanly),
            |(mut it, clean)| async move {
                match it.next() {
                    Some((wait, text)) => {
                        tokio::time::sleep(wait).await;
                        Some((Ok::<Bytes, std::io::Error>(Bytes::from(text)), (it, clean)))
                    }
                    None if clean => None,
                    None => Some((Err(std::io::Error::other("cut")), (it, true))),
                }
            },
        );
        axum::body::Body::from_stream(s)
    };
    let z = Duration::ZERO;
    let done = |m: &str| {
        vec![
            (z, chunk(m, None, Some("stop"))),
            (
                z,
                format!(
                    "data: {}\n\n",
                    serde_json::json!({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})
                ),
            ),
            (z, "data: [DONE]\n\n".to_owned()),
        ]
    };
    match model.as_str() {
        "ok" => {
            let mut p = vec![
                (z, chunk(&m, Some("Hello"), None)),
                (z, chunk(&m, Some(" world"), None)),
            ];
            p.extend(done(&m));
            sse(stream(p, true))
        }
        "long" => {
            let mut p: Vec<_> = (0..300)
                .map(|i| (z, chunk(&m, Some(&format!(" t{i}")), None)))
                .collect();
            p.extend(done(&m));
            sse(stream(p, true))
        }
        silent if silent.starts_with("silent") => {
            let secs = silent
                .strip_prefix("silent-")
                .and_then(|n| n.parse().ok())
                .unwrap_or(90);
            let mut p = vec![
                (z, chunk(&m, Some("Before"), None)),
                (Duration::from_secs(secs), chunk(&m, Some(" after"), None)),
            ];
            p.extend(done(&m));
            sse(stream(p, true))
        }
        "broken" => {
            let p = vec![
                (z, chunk(&m, Some("One"), None)),
                (z, chunk(&m, Some(" two"), None)),
                (Duration::from_millis(50), String::new()),
            ];
            sse(stream(p, false))
        }
        "slow" => {
            let p = vec![(Duration::from_secs(30), chunk(&m, Some("late"), None))];
            sse(stream(p, true))
        }
        // Upstreams that quote the credential they were sent, in a refusal and in a rejection.
        "quotes-key-401" | "quotes-key-400" => {
            let key = auth.trim_start_matches("Bearer ");
            let status = if m.ends_with("401") {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            let body = serde_json::json!({"error": {"message": format!("Incorrect API key provided: {key}")}});
            (status, body.to_string()).into_response()
        }
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"message":"upstream exploded at 10.1.2.3"}}"#,
        )
            .into_response(),
    }
}
