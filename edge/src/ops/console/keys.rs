//! The Keys page: service keys listed, created (the secret shown once, on the answer to the post,
//! never in a URL) and revoked. The same store and checks as `/admin/keys` and `edge keys`.

use axum::extract::State;
use axum::response::{IntoResponse as _, Redirect, Response};
use handlers::kit::api_keys::KeyInfo;
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;

use super::session::Session;
use super::{Console, Shared, html, pages};

pub(super) fn when(ms: u64) -> String {
    // Unix milliseconds as UTC, to the second: operators compare it with logs.
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 as (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn body(session: &Session, keys: &[KeyInfo], created: Option<(&KeyInfo, &str)>) -> Markup {
    html! {
        @if let Some((info, secret)) = created {
            section aria-labelledby="created" {
                h2 #created { "Key " (info.name) " created" }
                p { "Copy it now: it is shown once and never stored." }
                p.secret { (secret) }
            }
        }
        h2 { "Create a key" }
        form method="post" action="/console/keys" {
            (pages::csrf_field(&session.csrf))
            p {
                label for="name" { "Name (letters, digits, - or _)" }
                input #name type="text" name="name" required maxlength="64" pattern="[A-Za-z0-9_-]+";
            }
            p {
                label for="scopes" { "Scopes, comma-separated (console, *, a service, or service.Method)" }
                input #scopes type="text" name="scopes" required;
            }
            button type="submit" { "Create key" }
        }
        h2 { "Keys" }
        @if keys.is_empty() {
            p { "No keys yet." }
        } @else {
            div.scroll {
                table {
                    thead {
                        tr { th scope="col" { "Name" } th scope="col" { "Prefix" } th scope="col" { "Scopes" } th scope="col" { "Created" } th scope="col" { "State" } }
                    }
                    tbody {
                        @for k in keys {
                            tr {
                                th scope="row" { (k.name) }
                                td { code { (k.prefix) } }
                                td { (k.scopes.join(", ")) }
                                td { (when(k.created_ms)) }
                                td {
                                    @if let Some(at) = k.revoked_ms {
                                        "revoked " (when(at))
                                    } @else {
                                        form method="post" action="/console/keys/revoke" {
                                            (pages::csrf_field(&session.csrf))
                                            input type="hidden" name="name" value=(k.name);
                                            button type="submit" aria-label={ "Revoke " (k.name) } { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn render(c: &Console, session: &Session, created: Option<(&KeyInfo, &str)>) -> Response {
    let frame = c.frame(session, "keys");
    match c.state.keys.list().await {
        Ok(mut keys) => {
            keys.sort_by(|a, b| a.name.cmp(&b.name));
            html(
                StatusCode::OK,
                pages::page(&frame, "Keys", body(session, &keys, created)),
            )
        }
        Err(status) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::message(&frame, "Keys", &super::shown(&status)),
        ),
    }
}

fn failed(c: &Console, session: &Session, status: &handlers::Status) -> Response {
    html(
        crate::error::http_for(status),
        pages::message(&c.frame(session, "keys"), "Keys", &super::shown(status)),
    )
}

/// `GET /console/keys`
pub(super) async fn page(State(c): Shared, headers: HeaderMap) -> Response {
    match c.viewer(&headers).await {
        Ok(session) => render(&c, &session, None).await,
        Err(res) => res,
    }
}

#[derive(Deserialize)]
pub(super) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: String,
}

/// `POST /console/keys`
pub(super) async fn create(
    State(c): Shared,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CreateForm>,
) -> Response {
    let session = match c.actor(&headers, &form.csrf).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let scopes: Vec<String> = form
        .scopes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    match c.state.keys.create(form.name.trim(), &scopes).await {
        Ok((info, key)) => {
            let who = format!("console:{}", session.operator);
            let (store, events) = (c.state.store(), c.state.events());
            if let Err(e) =
                crate::ops::keys::audit_created(&store, Some(&events), &who, &info).await
            {
                return failed(&c, &session, &e);
            }
            render(&c, &session, Some((&info, &key))).await
        }
        Err(status) => failed(&c, &session, &status),
    }
}

#[derive(Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /console/keys/revoke`
pub(super) async fn revoke(
    State(c): Shared,
    headers: HeaderMap,
    axum::Form(form): axum::Form<RevokeForm>,
) -> Response {
    let session = match c.actor(&headers, &form.csrf).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let before = crate::ops::keys::find(&c.state.keys, &form.name).await;
    match c.state.keys.revoke(&form.name).await {
        Ok(info) => {
            let who = format!("console:{}", session.operator);
            let (store, events) = (c.state.store(), c.state.events());
            let audit = crate::ops::keys::audit_revoked(
                &store,
                Some(&events),
                &who,
                before.as_ref(),
                &info,
            );
            if let Err(e) = audit.await {
                return failed(&c, &session, &e);
            }
            Redirect::to("/console/keys").into_response()
        }
        Err(status) => failed(&c, &session, &status),
    }
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn times_are_utc() {
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(1_796_688_000_000), "2026-12-08 00:00:00 UTC");
    }
}
