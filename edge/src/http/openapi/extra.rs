//! The parts of the description that are not methods of the descriptors: the OpenAI-compatible
//! chat endpoint, the event bus, the probes, and the shared schemas, parameters and headers.

use serde_json::{Map, Value, json};

use super::{json_data, sse_event};

pub const INTRO: &str = "\
The HTTPS front door of the game's backend. Each method of the 22 services is a Connect unary \
call: `POST /aicore.<service>.v1.<Name>Service/<Method>` with a JSON body (proto3 JSON mapping: \
lowerCamelCase names, 64-bit integers as strings, enums by name), as described here. Every unary \
method also takes the same message as protobuf (`Content-Type: application/proto`, answered in \
kind): the .proto files describe that form, so it is left out of this document. Streaming \
methods answer with Server-Sent Events when called with `Accept: text/event-stream`. Errors are \
Connect error JSON (`{\"code\":\"not_found\",\"message\":\"...\"}`) under the HTTP status of \
Connect's code table; `429` and `503` carry `Retry-After`. Bodies may be sent gzip-compressed \
(`Content-Encoding: gzip`); responses are compressed when the client accepts it.";

fn errors() -> Map<String, Value> {
    let mut out = Map::new();
    for status in [400, 401, 403, 404, 413, 415, 429, 500, 502, 503, 504] {
        out.insert(
            status.to_string(),
            json!({ "$ref": format!("#/components/responses/ChatError{status}") }),
        );
    }
    out
}

fn connect_errors(statuses: &[u16]) -> Map<String, Value> {
    statuses
        .iter()
        .map(|s| {
            (
                s.to_string(),
                json!({ "$ref": format!("#/components/responses/Error{s}") }),
            )
        })
        .collect()
}

/// The paths beside the methods.
pub fn paths() -> Vec<(String, Value)> {
    let mut chat_responses = errors();
    chat_responses.insert(
        "200".into(),
        json!({
            "description": "The completion; with `\"stream\": true`, Server-Sent Events of \
                `chat.completion.chunk` objects ending with `data: [DONE]`.",
            "content": {
                "application/json": { "schema": { "$ref": "#/components/schemas/ChatCompletion" } },
                "text/event-stream": { "schema": sse_event(&[
                    ("message", json!({ "anyOf": [
                        { "const": "[DONE]" },
                        json_data(json!({ "$ref": "#/components/schemas/ChatCompletionChunk" })),
                    ] })),
                    ("error", json_data(json!({ "$ref": "#/components/schemas/OpenAiError" }))),
                ]) }
            }
        }),
    );
    let envelope = json!({ "$ref": "#/components/schemas/aicore.events.v1.Event" });
    let event = json_data(envelope.clone());
    // A backend type's payload is its declared message; any other type's is free-form.
    let message = json_data(json!({ "anyOf": [
        { "$ref": "#/components/schemas/BackendEvent" },
        envelope,
    ] }));
    let mut events_responses = connect_errors(&[400, 401, 403, 429, 500, 503]);
    events_responses.insert(
        "200".into(),
        json!({
            "description": "Server-Sent Events. The first is `event: subscribed`; each event's \
                `id:` is a cursor for every subscribed topic, so reconnecting with \
                `Last-Event-ID` resumes exactly where the client left off; `event: gap` says \
                events asked for are no longer retained. Each `data:` is one \
                `aicore.events.v1.Event` in JSON, as Replay answers it; a backend event's \
                `payloadType` names its payload's message (see `BackendEvent`).",
            "content": { "text/event-stream": { "schema": sse_event(&[
                ("message", message),
                ("subscribed", event.clone()),
                ("gap", event),
                ("error", json_data(json!({ "$ref": "#/components/schemas/ConnectError" }))),
            ]) } }
        }),
    );
    vec![
        (
            "/v1/chat/completions".into(),
            json!({ "post": {
                "operationId": "chat.completions",
                "tags": ["chat"],
                "summary": "OpenAI-compatible chat completions",
                "description": "The OpenAI Chat Completions API over the llm service: point an \
                    OpenAI SDK's base URL at `https://<host>/v1`. Errors are OpenAI-shaped.",
                "security": [{ "accessToken": [] }, { "serviceKey": [] }],
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/ChatCompletionRequest" } } } },
                "responses": chat_responses,
            } }),
        ),
        (
            "/v1/events".into(),
            json!({ "get": {
                "operationId": "events.stream",
                "tags": ["events"],
                "summary": "Subscribe to topics over Server-Sent Events",
                "description": "The event bus for `EventSource` and curl. A player may read \
                    their own topic (`player.<id>`) and public topics. A browser's \
                    `EventSource` cannot send `Authorization`: it authenticates with a stream \
                    ticket from `AuthService/IssueStreamTicket` in the `ticket` parameter \
                    instead (single use, short-lived), and after a reconnect with a new ticket \
                    passes the last event's id as `lastEventId`.",
                "security": [{ "accessToken": [] }, { "serviceKey": [] }, { "streamTicket": [] }],
                "parameters": [
                    { "name": "topics", "in": "query", "required": true,
                      "description": "Comma-separated topics (the parameter may also repeat).",
                      "schema": { "type": "string" } },
                    { "name": "lastEventId", "in": "query", "required": false,
                      "description": "Stands in for the `Last-Event-ID` header (which wins).",
                      "schema": { "type": "string" } },
                    { "name": "Last-Event-ID", "in": "header", "required": false,
                      "description": "The `id:` of the last event received, to resume.",
                      "schema": { "type": "string" } }
                ],
                "responses": events_responses,
            } }),
        ),
        (
            "/healthz".into(),
            json!({ "get": {
                "operationId": "probe.healthz", "tags": ["probes"],
                "summary": "Liveness: answers while the process serves",
                "security": [],
                "responses": { "200": { "description": "Alive.", "content": {
                    "application/json": { "schema": { "type": "object",
                        "properties": { "status": { "const": "ok" } } } } } } }
            } }),
        ),
        (
            "/readyz".into(),
            json!({ "get": {
                "operationId": "probe.readyz", "tags": ["probes"],
                "summary": "Readiness: certificate loaded, store open, not draining",
                "security": [],
                "responses": {
                    "200": { "description": "Ready.", "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Readiness" } } } },
                    "503": { "description": "Not ready (draining, or the store is down).",
                        "content": { "application/json": {
                            "schema": { "$ref": "#/components/schemas/Readiness" } } } }
                }
            } }),
        ),
        (
            "/openapi.json".into(),
            json!({ "get": {
                "operationId": "openapi", "tags": ["probes"],
                "summary": "This document",
                "security": [],
                "responses": { "200": { "description": "OpenAPI 3.1.",
                    "content": { "application/json": { "schema": { "type": "object" } } } } }
            } }),
        ),
    ]
}

/// Schemas that do not come from the descriptors.
pub fn schemas() -> Map<String, Value> {
    let usage = json!({ "type": "object", "properties": {
        "prompt_tokens": { "type": "integer" },
        "completion_tokens": { "type": "integer" },
        "total_tokens": { "type": "integer" } } });
    let mut m = Map::new();
    // A named schema, not one inline per operation: a generated client gets one enum type for the
    // header instead of one per method. `enum`, not `const`: openapi-python-client drops
    // operations whose parameter schema is a `const`.
    m.insert(
        "ConnectProtocolVersion".into(),
        json!({ "type": "string", "enum": ["1"] }),
    );
    m.insert(
        "ConnectError".into(),
        json!({
            "type": "object", "required": ["code"],
            "description": "A Connect error. `message` is for people; never parse it.",
            "properties": {
                "code": { "type": "string", "enum": handlers::Code::ALL.map(|c| c.as_str()) },
                "message": { "type": "string" },
                "details": { "type": "array", "items": { "type": "object" } }
            }
        }),
    );
    m.insert(
        "OpenAiError".into(),
        json!({
            "type": "object", "required": ["error"],
            "properties": { "error": { "type": "object", "properties": {
                "message": { "type": "string" }, "type": { "type": "string" },
                "param": { "type": ["string", "null"] }, "code": { "type": ["string", "null"] } } } }
        }),
    );
    m.insert(
        "ChatCompletionRequest".into(),
        json!({
            "type": "object", "required": ["messages"],
            "properties": {
                "model": { "type": "string", "description": "A model name or alias; empty for the default." },
                "messages": { "type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["role"],
                    "properties": {
                        "role": { "enum": ["system", "developer", "user", "assistant"] },
                        "content": { "anyOf": [ { "type": "string" }, { "type": "null" },
                            { "type": "array", "items": { "type": "object", "required": ["type", "text"],
                                "properties": { "type": { "const": "text" }, "text": { "type": "string" } } } } ] }
                    } } },
                "stream": { "type": "boolean" },
                "max_tokens": { "type": "integer", "minimum": 0, "maximum": u32::MAX },
                "max_completion_tokens": { "type": "integer", "minimum": 0, "maximum": u32::MAX },
                "temperature": { "type": "number" },
                "seed": { "type": "integer", "minimum": 0 },
                "stop": { "anyOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] },
                "n": { "const": 1 },
                "stream_options": { "type": "object", "properties": { "include_usage": { "type": "boolean" } } }
            }
        }),
    );
    m.insert(
        "ChatCompletion".into(),
        json!({
            "type": "object",
            "properties": {
                "id": { "type": "string" }, "object": { "const": "chat.completion" },
                "created": { "type": "integer" }, "model": { "type": "string" },
                "choices": { "type": "array", "items": { "type": "object", "properties": {
                    "index": { "type": "integer" },
                    "message": { "type": "object", "properties": {
                        "role": { "const": "assistant" }, "content": { "type": "string" } } },
                    "finish_reason": { "type": "string" } } } },
                "usage": usage
            }
        }),
    );
    m.insert(
        "ChatCompletionChunk".into(),
        json!({
            "type": "object",
            "properties": {
                "id": { "type": "string" }, "object": { "const": "chat.completion.chunk" },
                "created": { "type": "integer" }, "model": { "type": "string" },
                "choices": { "type": "array", "items": { "type": "object", "properties": {
                    "index": { "type": "integer" },
                    "delta": { "type": "object", "properties": {
                        "role": { "const": "assistant" }, "content": { "type": "string" } } },
                    "finish_reason": { "type": ["string", "null"] } } } },
                "usage": usage
            }
        }),
    );
    m.insert(
        "Readiness".into(),
        json!({
            "type": "object",
            "properties": {
                "status": { "enum": ["ready", "not_ready"] },
                "draining": { "type": "boolean" },
                "tls": { "enum": ["not_served", "loaded", "missing"] },
                "store": { "type": "object", "properties": {
                    "backend": { "type": "string" }, "status": { "enum": ["ok", "unavailable"] } } },
                "nats": { "enum": ["not_configured", "connected", "disconnected"] }
            }
        }),
    );
    m
}

/// Request headers shared by the methods.
pub fn parameters() -> Value {
    json!({
        "ConnectTimeoutMs": { "name": "Connect-Timeout-Ms", "in": "header", "required": false,
            "description": "The call's deadline in milliseconds (capped by the server's own).",
            "schema": { "type": "string", "pattern": "^[1-9][0-9]{0,9}$" } },
        "ConnectProtocolVersion": { "name": "Connect-Protocol-Version", "in": "header",
            "required": false,
            "description": "The Connect protocol's version, as Connect clients send it.",
            "schema": { "$ref": "#/components/schemas/ConnectProtocolVersion" } },
        "IdempotencyKey": { "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "1 to 255 visible ASCII characters. A repeat with the same key and body \
                gets the first answer; with another body, 422.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255,
                "pattern": "^[!-~]+$" } },
        "AcceptEventStream": { "name": "Accept", "in": "header", "required": true,
            "schema": { "type": "string", "enum": ["text/event-stream"] } }
    })
}

/// Response headers shared by the methods.
pub fn headers() -> Value {
    json!({
        "RequestId": { "description": "The request's id (the client's `x-request-id` when valid); \
            every log line of the request carries it.", "schema": { "type": "string" } },
        "RetryAfter": { "description": "Seconds to wait before retrying.",
            "schema": { "type": "integer", "minimum": 1 } }
    })
}

/// How callers authenticate.
pub fn security_schemes() -> Value {
    json!({
        "accessToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "A player's access token from `AuthService/Login` (15 minutes; renew \
                with `AuthService/Refresh`)." },
        "streamTicket": { "type": "apiKey", "in": "query", "name": "ticket",
            "description": "A stream ticket from `AuthService/IssueStreamTicket`: opens one \
                stream, once, within its lifetime (30 s by default, at most a minute)." },
        "serviceKey": { "type": "http", "scheme": "bearer",
            "description": "A service key `edge_<prefix>_<secret>` (`edge keys create`). For \
                admin methods the key must hold the listed scope." }
    })
}
