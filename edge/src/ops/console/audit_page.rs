//! The Audit page: the newest changes operators made, with each record before and after, read
//! from the store (every replica's, since the store is shared).

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use maud::html;

use super::{Shared, html, pages};

/// Entries the page shows.
const SHOWN: usize = 100;

fn pretty(v: &serde_json::Value) -> String {
    if v.is_null() {
        return "(none)".to_owned();
    }
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// `GET /console/audit`
pub(super) async fn page(State(c): Shared, headers: HeaderMap) -> Response {
    let session = match c.viewer(&headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let frame = c.frame(&session, "audit");
    let entries = match crate::ops::audit::recent(&c.state.store(), SHOWN).await {
        Ok(e) => e,
        Err(status) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::message(&frame, "Audit", &super::shown(&status)),
            );
        }
    };
    let body = html! {
        p.note {
            "The newest " (SHOWN) " changes made from the console, through /admin/keys or with "
            code { "edge keys" } ", newest first. The same entries are fed live on "
            code { "admin.audit" } ", which no player or service key can read."
        }
        @if entries.is_empty() {
            p { "No operator has changed anything yet." }
        }
        @for e in &entries {
            section.entry {
                h2 { (e.action) " · " (e.target) }
                p { (super::keys::when(e.at_ms)) " by " strong { (e.who) } }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Before" } th scope="col" { "After" } } }
                        tbody { tr { td { pre { (pretty(&e.before)) } } td { pre { (pretty(&e.after)) } } } }
                    }
                }
            }
        }
    };
    html(StatusCode::OK, pages::page(&frame, "Audit", body))
}
