//! The `openai` provider: any OpenAI-compatible `/chat/completions` endpoint (vLLM, Ollama,
//! llama.cpp server, OpenAI), always called with `stream: true` and parsed from its SSE. Upstream
//! failures map to Connect codes; the upstream's own error text is logged, not shown to clients
//! (it can name hosts, keys or internal models), except for 400-class validation messages, which
//! the caller needs to fix their request.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Eventsource as _;
use futures_util::StreamExt as _;
use proto::aicore::llm::v1::{ChatMessage, InferRequest, Usage};
use proto::aicore::models::v1::Model;
use serde_json::{Value, json};

use super::{Piece, Pieces, Provider};
use crate::kit::context::Context;
use crate::kit::status::{Code, Status};

/// How the provider talks to upstreams.
#[derive(Clone, Default)]
pub struct OpenAiOptions {
    /// API keys by origin (`https://api.openai.com`): a key is only ever sent to its own origin.
    pub api_keys: HashMap<String, String>,
    /// Connecting to the upstream.
    pub connect_timeout: Duration,
    /// The whole upstream call, first byte to last.
    pub request_timeout: Duration,
    /// From sending the request to the first token.
    pub first_token_timeout: Duration,
}

impl std::fmt::Debug for OpenAiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiOptions")
            .field("api_keys", &self.api_keys.keys().collect::<Vec<_>>())
            .field("request_timeout", &self.request_timeout)
            .field("first_token_timeout", &self.first_token_timeout)
            .finish()
    }
}

/// The provider.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    client: reqwest::Client,
    options: OpenAiOptions,
}

/// `scheme://host[:port]` of a URL, lowercased: the key a credential is filed under.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    if host.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{host}").to_ascii_lowercase())
}

impl OpenAiProvider {
    /// A provider with its own connection pool.
    pub fn new(options: OpenAiOptions) -> Result<Self, Status> {
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(Status::internal)?;
        Ok(OpenAiProvider { client, options })
    }
}

/// The messages a model served over HTTP gets for `req`: the caller's, with the grounding rendered
/// (the world the grammar model would speak from, its lore under a "Lore" heading) as a system
/// message after the caller's own instructions.
pub fn prompt(req: &InferRequest) -> Vec<ChatMessage> {
    let mut messages = req.messages.clone();
    if let Some(g) = req
        .grounding
        .as_ref()
        .filter(|g| !super::grounded::is_empty(g))
    {
        let at = messages.iter().take_while(|m| m.role == "system").count();
        messages.insert(
            at,
            ChatMessage {
                role: "system".into(),
                content: super::grounded::render(g),
            },
        );
    }
    messages
}

fn unavailable(msg: impl Into<String>) -> Status {
    Status::unavailable(msg, Duration::from_secs(1))
}

/// The upstream's HTTP error as the caller should see it.
fn map_status(model: &str, status: u16, body: &str, retry_after: Option<Duration>) -> Status {
    let upstream_message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    tracing::warn!(model, status, upstream = %upstream_message.chars().take(500).collect::<String>(), "model provider error");
    let short: String = upstream_message.chars().take(300).collect();
    match status {
        400 | 413 | 422 => {
            Status::invalid_argument(format!("model {model:?} rejected the request: {short}"))
        }
        401 | 403 => Status::internal(format!(
            "model provider for {model:?} refused the edge's credentials (HTTP {status})"
        )),
        404 => Status::not_found(format!(
            "the provider of {model:?} does not serve that model"
        )),
        408 | 504 => Status::deadline_exceeded(format!("model {model:?} timed out upstream")),
        429 => Status::new(
            Code::ResourceExhausted,
            format!("model {model:?} is over its provider's rate limit"),
        )
        .with_retry_after(retry_after.unwrap_or(Duration::from_secs(1))),
        500..=599 => unavailable(format!(
            "model {model:?} is unavailable (its provider answered HTTP {status})"
        )),
        _ => Status::internal(format!(
            "model provider for {model:?} answered HTTP {status}"
        )),
    }
}

/// One parsed chunk: its text, its finish reason, its usage.
type Chunk = (Option<String>, Option<String>, Option<Usage>);

fn parse_chunk(data: &str) -> Result<Chunk, String> {
    let v: Value = serde_json::from_str(data).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(err) = v.get("error") {
        return Err(format!("error in stream: {err}"));
    }
    let choice = v.pointer("/choices/0");
    let text = choice
        .and_then(|c| c.pointer("/delta/content"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let finish = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let usage = v.get("usage").filter(|u| u.is_object()).map(|u| {
        let n = |k: &str| {
            u.get(k)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0)
        };
        Usage {
            prompt_tokens: n("prompt_tokens"),
            completion_tokens: n("completion_tokens"),
            total_tokens: n("total_tokens"),
        }
    });
    Ok((text, finish, usage))
}

#[async_trait]
impl Provider for OpenAiProvider {
    async fn start(
        &self,
        model: &Model,
        req: &InferRequest,
        _ctx: &Context,
    ) -> Result<Pieces, Status> {
        let name = model.name.clone();
        let url = format!("{}/chat/completions", model.endpoint.trim_end_matches('/'));
        let upstream_model = if model.upstream_model.is_empty() {
            &model.name
        } else {
            &model.upstream_model
        };
        let messages: Vec<serde_json::Value> = prompt(req)
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
        let mut body = json!({
            "model": upstream_model,
            "messages": messages,
            "max_tokens": super::max_tokens(req),
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(s) = req.seed {
            body["seed"] = json!(s);
        }
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        let mut request = self
            .client
            .post(&url)
            .timeout(self.options.request_timeout)
            .header("accept", "text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        let key = origin(&url).and_then(|o| self.options.api_keys.get(&o));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let ttft = self.options.first_token_timeout;
        let too_slow = || {
            Status::deadline_exceeded(format!(
                "model {name:?} sent no token within {} ms",
                ttft.as_millis()
            ))
        };
        let sent = tokio::time::Instant::now();
        let response = match tokio::time::timeout(ttft, request.send()).await {
            Err(_) => return Err(too_slow()),
            Ok(Err(e)) if e.is_timeout() => return Err(too_slow()),
            Ok(Err(e)) => {
                tracing::warn!(model = %name, error = %e, "model provider unreachable");
                return Err(unavailable(format!("model {name:?} is unreachable")));
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = tokio::time::timeout(Duration::from_secs(5), response.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            // Some upstreams quote the credential they refused: never pass it on.
            let body = match key {
                Some(k) if !k.is_empty() => body.replace(k.as_str(), "[redacted]"),
                _ => body,
            };
            return Err(map_status(&name, status, &body, retry_after));
        }

        let events = response.bytes_stream().eventsource();
        // State: the event stream, the finish reason and usage seen so far, whether any token has
        // come (the first-token timeout applies until then), and whether the end was sent.
        struct S<E> {
            events: E,
            finish: Option<String>,
            usage: Option<Usage>,
            got_token: bool,
            done: bool,
        }
        let first_deadline = sent + ttft;
        let state = S {
            events: Box::pin(events),
            finish: None,
            usage: None,
            got_token: false,
            done: false,
        };
        let name2 = name.clone();
        let pieces = futures_util::stream::unfold(state, move |mut s| {
            let name = name2.clone();
            async move {
                if s.done {
                    return None;
                }
                loop {
                    let next = if s.got_token {
                        s.events.next().await
                    } else {
                        match tokio::time::timeout_at(first_deadline, s.events.next()).await {
                            Ok(n) => n,
                            Err(_) => {
                                s.done = true;
                                let e = Status::deadline_exceeded(format!(
                                    "model {name:?} sent no token within {} ms",
                                    ttft.as_millis()
                                ));
                                return Some((Err(e), s));
                            }
                        }
                    };
                    let end = |s: &mut S<_>| Piece::End {
                        finish: s.finish.take().unwrap_or_else(|| "stop".into()),
                        usage: s.usage.take(),
                    };
                    match next {
                        Some(Ok(ev)) if ev.data.trim() == "[DONE]" => {
                            s.done = true;
                            let p = end(&mut s);
                            return Some((Ok(p), s));
                        }
                        Some(Ok(ev)) if ev.data.trim().is_empty() => {}
                        Some(Ok(ev)) => match parse_chunk(&ev.data) {
                            Ok((text, finish, usage)) => {
                                if finish.is_some() {
                                    s.finish = finish;
                                }
                                if usage.is_some() {
                                    s.usage = usage;
                                }
                                if let Some(t) = text {
                                    s.got_token = true;
                                    return Some((Ok(Piece::Text(t)), s));
                                }
                            }
                            Err(why) => {
                                tracing::warn!(model = %name, %why, "bad chunk from model provider");
                                s.done = true;
                                let e = unavailable(format!("model {name:?} failed mid-stream"));
                                return Some((Err(e), s));
                            }
                        },
                        // Some servers close without `[DONE]` after the finishing chunk.
                        None if s.finish.is_some() => {
                            s.done = true;
                            let p = end(&mut s);
                            return Some((Ok(p), s));
                        }
                        None => {
                            s.done = true;
                            return Some((
                                Err(unavailable(format!(
                                    "model {name:?}'s stream ended before it finished"
                                ))),
                                s,
                            ));
                        }
                        Some(Err(e)) => {
                            tracing::warn!(model = %name, error = %e, "model provider stream broke");
                            s.done = true;
                            let timed_out = matches!(&e, eventsource_stream::EventStreamError::Transport(t) if t.is_timeout());
                            let e = if timed_out {
                                Status::deadline_exceeded(format!(
                                    "model {name:?} did not finish within the request timeout"
                                ))
                            } else {
                                unavailable(format!("model {name:?}'s stream broke off"))
                            };
                            return Some((Err(e), s));
                        }
                    }
                }
            }
        });
        Ok(Box::pin(pieces))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://API.openai.com/v1/chat/completions").as_deref(),
            Some("https://api.openai.com")
        );
        assert_eq!(
            origin("http://vllm:8000/v1").as_deref(),
            Some("http://vllm:8000")
        );
        assert_eq!(origin("nope"), None);
    }

    #[test]
    fn chunks() {
        let (t, f, u) = parse_chunk(
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
        )
        .unwrap();
        assert_eq!((t.as_deref(), f, u), (Some("Hi"), None, None));
        let (t, f, _) =
            parse_chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#)
                .unwrap();
        assert_eq!((t, f.as_deref()), (None, Some("length")));
        let (_, _, u) = parse_chunk(
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
        )
        .unwrap();
        assert_eq!(u.unwrap().total_tokens, 7);
        assert!(parse_chunk(r#"{"error":{"message":"boom"}}"#).is_err());
        assert!(parse_chunk("garbage").is_err());
    }

    #[test]
    fn upstream_errors_map_to_codes_without_leaking() {
        let s = map_status("m", 401, r#"{"error":{"message":"bad key sk-123"}}"#, None);
        assert_eq!(s.code(), Code::Internal);
        let s = map_status("m", 429, "", Some(Duration::from_secs(7)));
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(s.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(map_status("m", 503, "", None).code(), Code::Unavailable);
        assert_eq!(map_status("m", 404, "", None).code(), Code::NotFound);
        let s = map_status("m", 400, r#"{"error":{"message":"too long"}}"#, None);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("too long"));
    }
}
