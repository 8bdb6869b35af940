//! `POST /v1/chat/completions`, OpenAI-compatible, so existing OpenAI client libraries work against
//! the edge unchanged: the request becomes an `llm` Infer or InferStream call through the router
//! (local or NATS, metered and authorized like the Connect path), and the answer is a
//! `chat.completion`, or `chat.completion.chunk` events ending with `data: [DONE]`. Errors use
//! OpenAI's `{"error": {...}}` shape with the Connect code in `code`.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt as _;
use handlers::{Context, Principal, Status};
use http::HeaderValue;
use http_body_util::{BodyExt as _, Limited};
use prost::Message as _;
use proto::aicore::llm::v1::{ChatMessage, InferRequest, InferResponse, InferStreamResponse};
use proto::{Codec, Encoded, MethodDesc};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::http::sse::{Shape, frame};
use crate::http::{Api, encoding};
use crate::router::Call;

/// The method whose access rules, rate limits and bulkhead `/v1/chat/completions` follows.
pub fn method() -> Option<&'static MethodDesc> {
    proto::method_by_path(crate::router::CHAT_METHOD)
}

fn infer_method(streaming: bool) -> Option<&'static MethodDesc> {
    proto::method_by_path(if streaming {
        "/aicore.llm.v1.LlmService/InferStream"
    } else {
        "/aicore.llm.v1.LlmService/Infer"
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Value>),
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: Option<Content>,
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    seed: Option<u64>,
    stop: Option<Stop>,
    n: Option<u32>,
    stream_options: Option<StreamOptions>,
}

fn error_body(status: &Status) -> Vec<u8> {
    crate::error::openai_error_json(status)
}

fn error_response(status: &Status) -> Response {
    let mut res = crate::error::status_response(status);
    *res.body_mut() = Body::from(error_body(status));
    res
}

fn error_frame(status: &Status) -> Bytes {
    frame(None, Some("error"), &error_body(status))
}

fn to_infer(req: ChatRequest) -> Result<InferRequest, Status> {
    if req.n.is_some_and(|n| n != 1) {
        return Err(Status::invalid_argument("n must be 1"));
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "developer" => "system".to_owned(),
            "system" | "user" | "assistant" => m.role,
            other => {
                return Err(Status::invalid_argument(format!(
                    "messages[{i}].role {other:?} is not supported (system, developer, user, assistant)"
                )));
            }
        };
        let content = match m.content {
            None => String::new(),
            Some(Content::Text(t)) => t,
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for p in parts {
                    match (
                        p.get("type").and_then(Value::as_str),
                        p.get("text").and_then(Value::as_str),
                    ) {
                        (Some("text"), Some(t)) => text.push_str(t),
                        _ => {
                            return Err(Status::invalid_argument(format!(
                                "messages[{i}].content: only text parts are supported"
                            )));
                        }
                    }
                }
                text
            }
        };
        messages.push(ChatMessage { role, content });
    }
    Ok(InferRequest {
        model: req.model,
        messages,
        max_tokens: req.max_completion_tokens.or(req.max_tokens).unwrap_or(0),
        temperature: req.temperature,
        seed: req.seed,
        stop: match req.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        },
        task: String::new(),
        // The OpenAI shape has no grounding: the built-in model says it has no world to speak of.
        grounding: None,
        // A chat completion: any model that chats.
        capability: proto::aicore::models::v1::Capability::Chat as i32,
    })
}

fn usage_json(u: Option<proto::aicore::llm::v1::Usage>) -> Value {
    let u = u.unwrap_or_default();
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    })
}

/// Serves `POST /v1/chat/completions`.
pub async fn completions(State(state): State<Api>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let content_encoding = match encoding::request_encoding(&parts.headers, false) {
        Ok(e) => e,
        Err(status) => {
            let mut res = error_response(&status);
            res.headers_mut().insert(
                http::header::ACCEPT_ENCODING,
                HeaderValue::from_static("gzip, identity"),
            );
            return res;
        }
    };
    let limit = state.http.max_body_bytes;
    let body = match tokio::time::timeout(
        state.http.request_timeout,
        Limited::new(body, limit).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return error_response(&Status::payload_too_large(format!(
                "request body is larger than {limit} bytes or was cut off"
            )));
        }
        Err(_) => {
            return error_response(&Status::deadline_exceeded(
                "the request body did not arrive in time",
            ));
        }
    };
    let body = match encoding::decode(body, content_encoding, limit) {
        Ok(b) => b,
        Err(status) => return error_response(&status),
    };
    let chat: ChatRequest = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return error_response(&Status::invalid_argument(format!(
                "the body is not a chat completion request: {e}"
            )));
        }
    };
    let streaming = chat.stream;
    let include_usage = chat
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let infer = match to_infer(chat) {
        Ok(r) => r,
        Err(status) => return error_response(&status),
    };
    let Some(method) = infer_method(streaming) else {
        return error_response(&Status::internal(
            "llm methods missing from the descriptors",
        ));
    };
    let permit = if streaming {
        match state.streams.admit_request(&parts) {
            Ok(p) => Some(p),
            Err(status) => return error_response(&status),
        }
    } else {
        None
    };
    let budget = if streaming {
        state.streams.config.max_duration
    } else {
        state.llm_timeout
    };
    let ctx = Context {
        principal: parts.extensions.get::<Principal>().cloned(),
        deadline: Some(Instant::now() + budget),
        request_id: parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        idempotency_key: None,
        client_addr: parts
            .extensions
            .get::<crate::layers::client_addr::ClientAddr>()
            .map(|a| a.0),
        traceparent: crate::trace::client_traceparent(&parts.headers),
        chain: Vec::new(),
        session: parts.extensions.get::<handlers::SessionId>().cloned(),
        // A client's own call: its principal pays.
        origin: None,
        accept_language: parts
            .headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(handlers::kit::context::accept_language),
    };
    let call = Call {
        method,
        codec: Codec::Proto,
        body: Bytes::from(infer.encode_to_vec()),
        ctx,
    };
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = handlers::kit::clock::now_ms() / 1000;
    let reply = match tokio::time::timeout(budget, state.calls.clone().oneshot(call)).await {
        Ok(r) => r,
        Err(_) => Err(Status::deadline_exceeded(
            "the model did not answer in time",
        )),
    };
    match (reply, permit) {
        (Ok(Encoded::Unary(bytes)), None) => {
            let r = match InferResponse::decode(bytes.as_ref()) {
                Ok(r) => r,
                Err(e) => return error_response(&Status::internal(e)),
            };
            let out = json!({
                "id": id,
                "object": "chat.completion",
                "created": created,
                "model": r.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": r.text},
                    "finish_reason": r.finish_reason,
                }],
                "usage": usage_json(r.usage),
            });
            encoding::reply(
                &parts.headers,
                HeaderValue::from_static("application/json"),
                Bytes::from(out.to_string()),
            )
        }
        (Ok(Encoded::Stream(stream)), Some(permit)) => {
            let mut first = true;
            let frames = stream.map(move |item| {
                let bytes = item?;
                let m = InferStreamResponse::decode(bytes.as_ref()).map_err(Status::internal)?;
                let chunk = |delta: Value, finish: Value, usage: Option<Value>| {
                    let mut c = json!({
                        "id": id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": m.model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    });
                    if let Some(u) = usage {
                        c["choices"] = json!([]);
                        c["usage"] = u;
                    }
                    frame(None, None, c.to_string().as_bytes())
                };
                let mut out = Vec::new();
                if !m.delta.is_empty() || first {
                    let delta = if std::mem::take(&mut first) {
                        json!({"role": "assistant", "content": m.delta})
                    } else {
                        json!({"content": m.delta})
                    };
                    out.extend_from_slice(&chunk(delta, Value::Null, None));
                }
                if !m.finish_reason.is_empty() {
                    out.extend_from_slice(&chunk(json!({}), json!(m.finish_reason), None));
                    if include_usage {
                        out.extend_from_slice(&chunk(
                            json!({}),
                            Value::Null,
                            Some(usage_json(m.usage)),
                        ));
                    }
                }
                Ok(Bytes::from(out))
            });
            let shape = Shape {
                end: Some(frame(None, None, b"[DONE]")),
                error: error_frame,
                error_response,
                gap_limit: true,
            };
            crate::http::sse::respond(&state.streams, permit, Box::pin(frames), shape).await
        }
        (Ok(_), _) => error_response(&Status::internal(
            "the llm service answered in the wrong form",
        )),
        (Err(status), _) => error_response(&status),
    }
}
