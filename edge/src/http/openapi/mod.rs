//! The OpenAPI 3.1 description of the public listener, derived from the descriptors: one
//! operation per method (Connect unary with JSON or protobuf, SSE for streaming methods), the
//! chat and event endpoints, and the probes. Access rules become security requirements, comments
//! in the .proto files become descriptions, and every operation lists the Connect error statuses.
//! Built once; served at `GET /openapi.json` and written by `edge openapi`.

mod events;
mod schema;

use std::sync::LazyLock;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use handlers::{Code, Status};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use proto::{Access, MethodDesc};
use serde_json::{Map, Value, json};

use crate::error::{http_status, status_response};
use crate::http::encoding;
use schema::{Schemas, comment};

/// The error statuses a call can answer with: Connect's code table plus the plain-HTTP
/// refinements (413, 415, 422, 502), each with the codes that map to it.
fn error_statuses() -> Vec<(u16, Vec<&'static str>)> {
    let mut by_status: std::collections::BTreeMap<u16, Vec<&'static str>> = Default::default();
    for code in Code::ALL {
        by_status
            .entry(http_status(code).as_u16())
            .or_default()
            .push(code.as_str());
    }
    by_status.entry(406).or_default().push("invalid_argument");
    by_status.entry(413).or_default().push("resource_exhausted");
    by_status.entry(415).or_default().push("invalid_argument");
    by_status.entry(422).or_default().push("invalid_argument");
    by_status.entry(502).or_default().push("unavailable");
    by_status.into_iter().collect()
}

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Client Closed Request")
}

/// `components.responses`: one Connect error response per status, and their OpenAI-shaped twins.
fn error_responses() -> Map<String, Value> {
    let mut out = Map::new();
    for (status, codes) in error_statuses() {
        let mut headers = json!({ "x-request-id": { "$ref": "#/components/headers/RequestId" } });
        if matches!(status, 429 | 503) {
            headers["Retry-After"] = json!({ "$ref": "#/components/headers/RetryAfter" });
        }
        let schema = json!({ "allOf": [
            { "$ref": "#/components/schemas/ConnectError" },
            { "properties": { "code": { "enum": codes } } }
        ]});
        let doc = format!("{} (`{}`).", reason(status), codes.join("`, `"));
        out.insert(
            format!("Error{status}"),
            json!({ "description": doc, "headers": headers,
                    "content": { "application/json": { "schema": schema } } }),
        );
        out.insert(
            format!("ChatError{status}"),
            json!({ "description": doc, "headers": headers, "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/OpenAiError" } } } }),
        );
    }
    out
}

/// The error responses of an operation: every status of the table; 406 (no `Accept:
/// text/event-stream`) only for streams.
fn errors(prefix: &str, stream: bool) -> impl Iterator<Item = (String, Value)> + '_ {
    let statuses = error_statuses().into_iter();
    statuses
        .filter(move |(s, _)| stream || *s != 406)
        .map(move |(status, _)| {
            (
                status.to_string(),
                json!({ "$ref": format!("#/components/responses/{prefix}{status}") }),
            )
        })
}

/// One Server-Sent Event, as schemathesis and OpenAPI 3.2's `itemSchema` read an event stream's
/// schema: `event` (absent means `message`) says which `data` follows.
pub(crate) fn sse_event(kinds: &[(&str, Value)]) -> Value {
    let one_of: Vec<Value> = kinds
        .iter()
        .map(|(event, data)| {
            json!({ "type": "object", "required": ["data"], "properties": {
                "event": { "const": event }, "data": data,
                "id": { "type": "string" }, "retry": { "type": "integer" } } })
        })
        .collect();
    json!({ "oneOf": one_of })
}

/// An event's `data`: JSON of `schema`.
pub(crate) fn json_data(schema: Value) -> Value {
    json!({ "type": "string", "contentMediaType": "application/json", "contentSchema": schema })
}

fn security(m: &MethodDesc) -> Value {
    match m.access {
        Access::Public => json!([]),
        Access::Player => json!([{ "accessToken": [] }, { "serviceKey": [] }]),
        Access::Service => json!([{ "serviceKey": [] }]),
        Access::Admin => json!([{ "serviceKey": [format!("{}.{}", m.service, m.name)] }]),
    }
}

fn access_note(m: &MethodDesc) -> String {
    match m.access {
        Access::Public => "No token needed.".into(),
        Access::Player => "A player's access token, or a service key.".into(),
        Access::Service => "Service keys only.".into(),
        Access::Admin => format!(
            "Service keys holding the `{}.{}` scope only.",
            m.service, m.name
        ),
    }
}

fn param(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

fn operation(
    schemas: &mut Schemas,
    pool: &prost_reflect::DescriptorPool,
    m: &'static MethodDesc,
) -> Result<Value, String> {
    let input = pool
        .get_message_by_name(m.input_type)
        .ok_or_else(|| format!("{} missing from the descriptors", m.input_type))?;
    let output = pool
        .get_message_by_name(m.output_type)
        .ok_or_else(|| format!("{} missing from the descriptors", m.output_type))?;
    let method = pool
        .get_service_by_name(m.service_desc().full_name)
        .and_then(|s| s.methods().find(|x| x.name() == m.name));
    let doc = method.and_then(|d| comment(&d.parent_file(), d.path()));
    let mut description = doc.clone().unwrap_or_default();
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(&access_note(m));
    let mut params = vec![param("ConnectTimeoutMs"), param("ConnectProtocolVersion")];
    if m.mutates {
        params.push(param("IdempotencyKey"));
        description.push_str(
            " Changes state: send an `Idempotency-Key` so a retry is answered, not applied twice.",
        );
    }
    let body = schemas.message(&input);
    let reply = schemas.message(&output);
    let ok = if m.server_streaming {
        params.push(param("AcceptEventStream"));
        json!({
            "description": format!(
                "A stream of Server-Sent Events: each `data:` is one `{}` in JSON; the stream ends \
                 with `event: end`, or with `event: error` carrying a Connect error. Comments \
                 (`: ping`) keep idle connections open. The schema describes one event.",
                m.output_type
            ),
            "headers": { "x-request-id": { "$ref": "#/components/headers/RequestId" } },
            "content": { "text/event-stream": { "schema": sse_event(&[
                ("message", json_data(typed(m, reply))),
                ("end", json_data(json!({ "type": "object" }))),
                ("error", json_data(json!({ "$ref": "#/components/schemas/ConnectError" }))),
            ]) } }
        })
    } else {
        json!({
            "description": "OK",
            "headers": { "x-request-id": { "$ref": "#/components/headers/RequestId" } },
            "content": { "application/json": { "schema": reply } }
        })
    };
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    responses.extend(errors("Error", m.server_streaming));
    // The JSON form only: `application/proto` (the same call, described by the .proto files) is
    // in the introduction, because client generators warn on it and skip it anyway.
    let content = json!({ "application/json": { "schema": body } });
    let summary = doc
        .as_deref()
        .and_then(|d| d.split(['\n', '.']).next())
        .filter(|s| !s.is_empty())
        .unwrap_or(m.name);
    Ok(json!({
        "post": {
            "operationId": format!("{}.{}", m.service, m.name),
            "tags": [m.service],
            "summary": summary,
            "description": description,
            "security": security(m),
            "parameters": params,
            "requestBody": { "required": true, "content": content },
            "responses": responses,
            "x-access": m.access.as_str(),
        }
    }))
}

/// A stream of bus events: a backend type's payload is its declared message (`BackendEvent`).
fn typed(m: &MethodDesc, reply: Value) -> Value {
    if m.output_type == events::EVENT {
        json!({ "anyOf": [
            { "$ref": format!("#/components/schemas/{}", events::BACKEND_EVENT) },
            reply,
        ] })
    } else {
        reply
    }
}

/// The whole document, as JSON.
pub fn document() -> Result<Value, String> {
    let pool = schema::pool()?;
    let mut schemas = Schemas::new();
    let mut paths = Map::new();
    let mut tags = Vec::new();
    for service in proto::SERVICES {
        tags.push(json!({ "name": service.short, "description": service.doc.trim() }));
        for m in service.methods {
            paths.insert(m.path.to_owned(), operation(&mut schemas, &pool, m)?);
        }
    }
    for (path, item) in extra::paths() {
        paths.insert(path, item);
    }
    let typed = events::components(&mut schemas, &pool)?;
    let mut components = schemas.into_components();
    components.extend(typed);
    events::annotate_envelope(&mut components);
    components.extend(extra::schemas());
    Ok(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Edge",
            "version": env!("CARGO_PKG_VERSION"),
            "description": extra::INTRO,
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": error_responses(),
            "parameters": extra::parameters(),
            "headers": extra::headers(),
            "securitySchemes": extra::security_schemes(),
        },
    }))
}

mod extra;

/// The document, and its gzip form (it is large and served whole, so compressed once).
static DOCUMENT: LazyLock<Result<(Bytes, Bytes), String>> = LazyLock::new(|| {
    let doc = document()?;
    let plain = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
    let packed = encoding::gzip(&plain).ok_or("the document does not compress")?;
    Ok((Bytes::from(plain), Bytes::from(packed)))
});

/// The document's bytes, built on first use.
pub fn bytes() -> Result<Bytes, String> {
    DOCUMENT
        .as_ref()
        .map(|(plain, _)| plain.clone())
        .map_err(Clone::clone)
}

/// `GET /openapi.json`: public, cacheable, the same bytes every time (gzip if accepted).
pub async fn serve(headers: HeaderMap) -> Response {
    match DOCUMENT.as_ref() {
        Ok((plain, packed)) => {
            let gzip = encoding::accepts_gzip(&headers);
            let mut res = Response::new(Body::from(if gzip { packed } else { plain }.clone()));
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            if gzip {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document does not build");
            status_response(&Status::internal("the API description is unavailable"))
        }
    }
}

#[cfg(test)]
mod tests;
