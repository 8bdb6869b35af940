//! The API explorer: any unary method of the descriptors (the same list `/admin/routes` and the
//! OpenAPI document are built from), its JSON request pre-filled from the OpenAPI schema, sent
//! through the public listener's whole stack in-process (admission, authentication and the
//! method's access rule, rate limits, the router's quotas and idempotency), as one of:
//! - the console's own service identity ([`console_principal`]);
//! - that identity acting for a player (the request's `playerId`, as a service key would);
//! - a key secret or access token the operator pastes: used for that one request as its
//!   `Authorization`, never stored, logged, audited or shown again.
//!
//! A call of a mutating method is audited (method, operator, identity, outcome).

use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::Response;
use handlers::kit::context::Principal;
use http::{HeaderMap, StatusCode, header};
use maud::{Markup, html};
use proto::{Access, MethodDesc};
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tower::ServiceExt as _;

use super::session::Session;
use super::{Console, Shared, html, pages};
use crate::layers::auth::InProcess;

/// Largest answer shown (a bigger one is cut, and says so).
const MAX_ANSWER: usize = 256 * 1024;
/// How deep the pre-filled example follows nested messages.
const EXAMPLE_DEPTH: usize = 3;

/// The principal the explorer acts as: `console:<operator>`, the name the Players page's calls
/// carry too (`calls::principal`), so each operator has a rate-limit budget of their own; its
/// scopes cover every method, admin methods included (an operator may do anything an admin key
/// may), where the Players page's cover only what that page does.
pub(super) fn console_principal(operator: &str) -> Principal {
    let mut scopes = vec!["*".to_owned()];
    for s in proto::SERVICES {
        for m in s.methods.iter().filter(|m| m.access == Access::Admin) {
            scopes.push(format!("{}.{}", m.service, m.name));
        }
    }
    Principal::Service {
        name: format!("console:{operator}"),
        scopes: scopes.into(),
    }
}

/// Who a call is sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Identity {
    Console,
    Player(String),
    /// The pasted secret: kept for this request only.
    Key(String),
}

impl Identity {
    /// What the audit and the page say of it: never the secret.
    fn label(&self) -> String {
        match self {
            Identity::Console => "console".to_owned(),
            Identity::Player(id) => format!("console for player {id}"),
            Identity::Key(_) => "a pasted key".to_owned(),
        }
    }
}

/// The OpenAPI document, parsed once.
static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    crate::http::openapi::bytes()
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
});

/// A request for `m` with every field at a plain value, from its OpenAPI schema; `playerId` is
/// left out (the page fills it when acting for a player).
pub(super) fn example(m: &MethodDesc) -> Value {
    let doc = &*DOCUMENT;
    let schema =
        &doc["paths"][m.path]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let mut v = skeleton(doc, schema, 0).unwrap_or_else(|| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.remove("playerId");
    }
    v
}

fn skeleton(doc: &Value, schema: &Value, depth: usize) -> Option<Value> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        if depth >= EXAMPLE_DEPTH {
            return None;
        }
        let name = r.rsplit('/').next()?;
        return skeleton(doc, doc["components"]["schemas"].get(name)?, depth + 1);
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return Some(first.clone());
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return skeleton(doc, first, depth);
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null")?,
        _ => return None,
    };
    Some(match ty {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if let Some(v) = skeleton(doc, s, depth) {
                        out.insert(k.clone(), v);
                    }
                }
            }
            Value::Object(out)
        }
        "array" => json!([]),
        "string" if schema.get("format").and_then(Value::as_str) == Some("int64") => json!("0"),
        "string" => json!(""),
        "integer" | "number" => json!(0),
        "boolean" => json!(false),
        _ => return None,
    })
}

/// Every unary method, by service.
fn methods() -> impl Iterator<Item = &'static MethodDesc> {
    proto::SERVICES.iter().flat_map(|s| s.methods.iter())
}

fn find(path: &str) -> Option<&'static MethodDesc> {
    methods().find(|m| m.path == path)
}

fn random_key() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Deserialize, Default)]
pub(super) struct Pick {
    #[serde(default)]
    method: String,
}

/// What the form posts.
#[derive(Deserialize, Default)]
pub(super) struct CallForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    player_id: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    idempotency_key: String,
}

/// What was sent and what came back, for the page.
struct Outcome {
    identity: String,
    status: u16,
    text: String,
}

/// `GET /console/explorer?method=…`
pub(super) async fn page(State(c): Shared, headers: HeaderMap, Query(p): Query<Pick>) -> Response {
    let session = match c.viewer(&headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let m = find(&p.method);
    if !p.method.is_empty() && m.is_none() {
        let body =
            html! { p.error role="alert" { "No method " code { (p.method) } "." } (picker(None)) };
        return html(
            StatusCode::NOT_FOUND,
            pages::page(&c.frame(&session, "explorer"), "API explorer", body),
        );
    }
    let body = m.map(|m| serde_json::to_string_pretty(&example(m)).unwrap_or_default());
    render(&c, &session, m, body.as_deref(), None, "console", "")
}

/// `POST /console/explorer`: one call.
pub(super) async fn call(
    State(c): Shared,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CallForm>,
) -> Response {
    let session = match c.actor(&headers, &form.csrf).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Some(m) = find(&form.method) else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message(
                &c.frame(&session, "explorer"),
                "API explorer",
                "No such method.",
            ),
        );
    };
    let identity = match form.identity.as_str() {
        "player" => Identity::Player(form.player_id.trim().to_owned()),
        "key" => Identity::Key(form.secret.trim().to_owned()),
        _ => Identity::Console,
    };
    let outcome = match prepare(m, &form.body, &identity) {
        Ok(body) => {
            send(
                &c,
                &session,
                m,
                body,
                &identity,
                form.idempotency_key.trim(),
            )
            .await
        }
        Err(why) => Outcome {
            identity: identity.label(),
            status: 400,
            text: why,
        },
    };
    let who = form.identity.as_str();
    render(
        &c,
        &session,
        Some(m),
        Some(&form.body),
        Some(&outcome),
        who,
        form.player_id.trim(),
    )
}

/// The body to send: the editor's JSON (an object), with `playerId` set when acting for one.
fn prepare(m: &MethodDesc, body: &str, identity: &Identity) -> Result<String, String> {
    if m.server_streaming {
        return Err(format!(
            "{} is a streaming method: tail its events on the Events page, or call it with an \
             SSE client (Accept: text/event-stream).",
            m.path
        ));
    }
    let text = if body.trim().is_empty() { "{}" } else { body };
    let mut v: Value =
        serde_json::from_str(text).map_err(|e| format!("the request is not JSON: {e}"))?;
    let Some(obj) = v.as_object_mut() else {
        return Err("the request is a JSON object ({ … })".to_owned());
    };
    match identity {
        Identity::Player(id) => {
            handlers::kit::context::validate_player_id(id)
                .map_err(|_| "a player id is 32 hex digits".to_owned())?;
            obj.insert("playerId".to_owned(), json!(id));
        }
        Identity::Key(secret) if secret.is_empty() => {
            return Err("paste a key secret (or an access token) to send as it".to_owned());
        }
        _ => {}
    }
    serde_json::to_string(&v).map_err(|e| e.to_string())
}

/// Sends one call through the public stack in-process and reads its answer.
async fn send(
    c: &Console,
    session: &Session,
    m: &'static MethodDesc,
    body: String,
    identity: &Identity,
    idempotency_key: &str,
) -> Outcome {
    let mut req = http::Request::post(m.path)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", format!("console-{}", random_key()));
    if m.mutates && !idempotency_key.is_empty() {
        req = req.header("idempotency-key", idempotency_key);
    }
    if let Identity::Key(secret) = identity {
        req = req.header(header::AUTHORIZATION, format!("Bearer {secret}"));
    }
    let mut req = match req.body(Body::from(body)) {
        Ok(r) => r,
        Err(_) => {
            return Outcome {
                identity: identity.label(),
                status: 400,
                text: "that key secret cannot be sent as a header".to_owned(),
            };
        }
    };
    if !matches!(identity, Identity::Key(_)) {
        req.extensions_mut()
            .insert(InProcess(console_principal(&session.operator)));
    }
    let res = match c.public.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = res.status().as_u16();
    let text = match axum::body::to_bytes(res.into_body(), MAX_ANSWER).await {
        Err(_) => format!("(the answer is larger than {MAX_ANSWER} bytes and is not shown)"),
        Ok(bytes) if bytes.is_empty() => "(no body)".to_owned(),
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
            Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
        },
    };
    tracing::info!(operator = %session.operator, method = m.path, identity = %identity.label(), status, "console api call");
    if m.mutates {
        let entry = crate::ops::audit::Entry::now(
            &format!("console:{}", session.operator),
            "admin.api_call",
            m.path,
            Value::Null,
            json!({ "as": identity.label(), "status": status }),
        );
        let (store, events) = (c.state.store(), c.state.events());
        if let Err(e) = crate::ops::audit::record(&store, Some(&events), &entry).await {
            tracing::warn!(error = %e.message(), "console api call made but not audited");
        }
    }
    Outcome {
        identity: identity.label(),
        status,
        text,
    }
}

fn picker(current: Option<&MethodDesc>) -> Markup {
    html! {
        form method="get" action="/console/explorer" {
            p {
                label for="method" { "Method" }
                select #method name="method" {
                    @for s in proto::SERVICES {
                        optgroup label=(s.short) {
                            @for m in s.methods.iter() {
                                option value=(m.path) selected[current.is_some_and(|c| c.path == m.path)] {
                                    (m.service) "." (m.name)
                                    @if m.server_streaming { " (stream)" }
                                }
                            }
                        }
                    }
                }
            }
            button type="submit" { "Open" }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn render(
    c: &Arc<Console>,
    session: &Session,
    m: Option<&'static MethodDesc>,
    body: Option<&str>,
    outcome: Option<&Outcome>,
    identity: &str,
    player_id: &str,
) -> Response {
    let checked =
        |v: &str| identity == v || (v == "console" && !matches!(identity, "player" | "key"));
    let markup = html! {
        p.note {
            "Calls go through the public API's whole stack in this process: its access rules, rate "
            "limits and quotas apply. A call that changes state is audited."
        }
        (picker(m))
        @if let Some(m) = m {
            h2 { code { (m.path) } }
            p.note {
                "Access: " (m.access.as_str())
                @if m.mutates { " · changes state (sent with the Idempotency-Key below)" }
                @if m.server_streaming { " · a stream: not sent from here" }
            }
            form method="post" action="/console/explorer" {
                (pages::csrf_field(&session.csrf))
                input type="hidden" name="method" value=(m.path);
                p {
                    label for="body" { "Request (JSON)" }
                    textarea #body name="body" rows="12" cols="80" spellcheck="false" { (body.unwrap_or("{}")) }
                }
                fieldset {
                    legend { "Send as" }
                    p {
                        input #as-console type="radio" name="identity" value="console" checked[checked("console")];
                        label.inline for="as-console" { "the console (service " code { "console" } ")" }
                    }
                    p {
                        input #as-player type="radio" name="identity" value="player" checked[checked("player")];
                        label.inline for="as-player" { "the console, for a player" }
                    }
                    p {
                        label for="player_id" { "Player id (32 hex digits)" }
                        input #player_id type="text" name="player_id" value=(player_id) spellcheck="false" autocomplete="off";
                    }
                    p {
                        input #as-key type="radio" name="identity" value="key" checked[checked("key")];
                        label.inline for="as-key" { "a key or token I paste (used once, never kept)" }
                    }
                    p {
                        label for="secret" { "Key secret or access token" }
                        input #secret type="password" name="secret" autocomplete="off";
                    }
                }
                @if m.mutates {
                    p {
                        label for="idempotency_key" { "Idempotency-Key (the same key applies the change once)" }
                        input #idempotency_key type="text" name="idempotency_key" value=(random_key()) spellcheck="false";
                    }
                }
                button type="submit" { "Send" }
            }
            @if let Some(o) = outcome {
                section aria-labelledby="answer" {
                    h2 #answer { "Answer: " (o.status) }
                    p.note { "Sent as " (o.identity) "." }
                    pre { code { (o.text) } }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        pages::page(&c.frame(session, "explorer"), "API explorer", markup),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn method(path: &str) -> &'static MethodDesc {
        find(path).unwrap()
    }

    #[test]
    fn examples_come_from_the_schema_without_the_player() {
        let put = method("/aicore.state.v1.StateService/Put");
        let v = example(put);
        let o = v.as_object().unwrap();
        assert!(!o.contains_key("playerId"), "{v}");
        assert!(o.contains_key("key"), "{v}");
        for m in methods() {
            assert!(example(m).is_object(), "{}", m.path);
        }
    }

    #[test]
    fn a_player_is_set_and_bad_input_is_refused() {
        let get = method("/aicore.state.v1.StateService/Get");
        let id = "0123456789abcdef0123456789abcdef".to_owned();
        let sent = prepare(
            get,
            r#"{"key":"k","playerId":"other"}"#,
            &Identity::Player(id.clone()),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(v["playerId"], json!(id), "the form's player wins");
        assert!(prepare(get, "{}", &Identity::Player("nope".into())).is_err());
        assert!(prepare(get, "[1]", &Identity::Console).is_err());
        assert!(prepare(get, "{", &Identity::Console).is_err());
        assert!(prepare(get, "{}", &Identity::Key(String::new())).is_err());
        assert_eq!(prepare(get, "  ", &Identity::Console).unwrap(), "{}");
    }

    #[test]
    fn the_secret_is_never_in_a_label() {
        let label = Identity::Key("ek_live_secret".into()).label();
        assert!(!label.contains("secret"), "{label}");
    }

    #[test]
    fn the_console_may_call_admin_methods() {
        let p = console_principal("alice");
        for m in methods() {
            assert!(
                handlers::kit::context::authorize(Some(&p), m).is_ok(),
                "{}",
                m.path
            );
        }
    }
}
