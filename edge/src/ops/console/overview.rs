//! The Overview page: this replica's version and uptime, the store and NATS, open streams, and
//! every service with where it runs and the workers that serve it.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use handlers::services::capability::Discovery as _;
use http::{HeaderMap, StatusCode};
use maud::html;

use super::{Console, Shared, html, pages};

/// `1d 2h 3m 4s`, without the parts above the largest.
fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

/// Audit entries the overview shows.
const RECENT_AUDIT: usize = 10;

/// One service's row.
struct Row {
    name: &'static str,
    target: &'static str,
    healthy: bool,
    responders: Option<i64>,
    workers: Vec<String>,
}

fn rows(c: &Console) -> Vec<Row> {
    let found = c
        .state
        .discovered
        .as_ref()
        .map(|d| d.discovered())
        .unwrap_or_default();
    proto::SERVICES
        .iter()
        .map(|s| {
            let endpoint = c.state.router.endpoint(s.index);
            Row {
                name: s.short,
                target: endpoint.map_or("none", |e| e.kind()),
                healthy: endpoint.is_some_and(|e| e.healthy()),
                responders: endpoint.and_then(|e| e.responders()),
                workers: found
                    .iter()
                    .filter(|w| w.services.iter().any(|n| n == s.short || n == s.full_name))
                    .map(|w| w.id.clone())
                    .collect(),
            }
        })
        .collect()
}

/// `GET /console`
pub(super) async fn page(State(c): Shared, headers: HeaderMap) -> Response {
    let session = match c.viewer(&headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let c: &Arc<Console> = &c;
    let (ready, report) = c.state.health.readiness().await;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("unknown").to_owned();
    let store_backend = text(&report["store"]["backend"]);
    let store_status = text(&report["store"]["status"]);
    let nats = text(&report["nats"]);
    let rows = rows(c);
    let refused = c.refusals.windows(
        std::time::Instant::now(),
        &super::refusals::parse(&crate::stats::render()),
    );
    let audit = crate::ops::audit::recent(&c.state.store(), RECENT_AUDIT).await;
    let body = html! {
        h2 { "This replica" }
        dl {
            dt { "Version" } dd { (env!("CARGO_PKG_VERSION")) }
            dt { "Uptime" } dd { (uptime(c.started.elapsed().as_secs())) }
            dt { "Readiness" }
            dd {
                @if ready { span.ok { "ready" } } @else { span.bad { "not ready" } }
                @if c.state.health.is_draining() { " (draining)" }
            }
            dt { "Store" }
            dd {
                (store_backend) ": "
                @if store_status == "ok" { span.ok { "ok" } } @else { span.bad { (store_status) } }
            }
            dt { "NATS" }
            dd {
                @match nats.as_str() {
                    "connected" => span.ok { "connected" },
                    "disconnected" => span.bad { "disconnected" },
                    _ => "not configured",
                }
            }
            dt { "Open streams" } dd { (c.state.api.streams.open()) }
            dt { "Requests in flight" } dd { (c.state.admission.in_flight()) }
        }
        h2 { "Services" }
        div.scroll {
            table {
                caption.note { "Where each service runs; workers as NATS discovery last saw them." }
                thead {
                    tr { th scope="col" { "Service" } th scope="col" { "Runs" } th scope="col" { "Health" } th scope="col" { "Responders" } th scope="col" { "Workers" } }
                }
                tbody {
                    @for r in &rows {
                        tr {
                            th scope="row" { (r.name) }
                            td { (r.target) }
                            td {
                                @if r.healthy { span.ok { "healthy" } } @else { span.bad { "unhealthy" } }
                            }
                            td {
                                @match r.responders {
                                    Some(n) if n >= 0 => (n),
                                    Some(_) => "not known yet",
                                    None => "",
                                }
                            }
                            td {
                                @if r.workers.is_empty() { "" } @else { (r.workers.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Refusals" }
        @if refused.is_empty() {
            p { "Nothing refused by a limit in the last 15 minutes." }
        } @else {
            div.scroll {
                table {
                    caption.note { "Requests and connections this replica refused at once by a limit (edge_refused_total), by reason." }
                    thead {
                        tr {
                            th scope="col" { "Reason" }
                            @for m in super::refusals::WINDOWS { th scope="col" { "Last " (m) " min" } }
                        }
                    }
                    tbody {
                        @for (reason, counts) in &refused {
                            tr {
                                th scope="row" { (reason) }
                                @for n in counts { td { (n) } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Recent changes" }
        @match &audit {
            Err(_) => p.bad { "The audit could not be read from the store." },
            Ok(entries) if entries.is_empty() => p { "No operator has changed anything yet." },
            Ok(entries) => div.scroll {
                table {
                    caption.note { "The newest audit entries of every replica, from the store; live on admin.audit." }
                    thead {
                        tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Target" } }
                    }
                    tbody {
                        @for e in entries {
                            tr {
                                td { (super::keys::when(e.at_ms)) }
                                td { (e.who) }
                                td { (e.action) }
                                td { (e.target) }
                            }
                        }
                    }
                }
            },
        }
    };
    html(
        StatusCode::OK,
        pages::page(&c.frame(&session, "overview"), "Overview", body),
    )
}

#[cfg(test)]
mod tests {
    use super::uptime;

    #[test]
    fn uptimes_read_from_the_largest_part() {
        assert_eq!(uptime(5), "5s");
        assert_eq!(uptime(65), "1m 5s");
        assert_eq!(uptime(3_661), "1h 1m 1s");
        assert_eq!(uptime(90_061), "1d 1h 1m 1s");
    }
}
