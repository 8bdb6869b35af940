//! The Players page: find a player by username or id, and see (and, for support, change) what the
//! services hold for them: login sessions, state keys, balance and ledger, quests and progression,
//! inventory. Everything goes through [`calls`](super::calls) as the operator's own service
//! principal, never through the store. Every change is a two-step form: the first post shows the
//! record before and after and asks to confirm; the confirming form carries an idempotency key
//! made when it was shown, so sending it twice applies once. Every change is audited.

use axum::extract::{Query, State};
use axum::response::Response;
use bytes::Bytes;
use handlers::Status;
use handlers::kit::context::validate_player_id;
use handlers::kit::store::StoreError;
use http::{HeaderMap, StatusCode};
use maud::Markup;
use proto::aicore::auth::v1::{Account, FindPlayerRequest, ListSessionsRequest};
use proto::aicore::payment::v1::{GetBalanceRequest, GetInventoryRequest, ListTransactionsRequest};
use proto::aicore::quest::v1::{GetLogRequest, GetProgressionRequest};
use proto::aicore::state::v1::ListRequest;
use serde::Deserialize;

use super::calls::Act;
use super::players_actions::{self as actions, ActForm, auth, payment, quest, state};
use super::players_view as view;
use super::session::Session;
use super::{Console, Shared, html, pages};

/// Ledger entries the page shows (the newest).
const LEDGER: u32 = 50;
/// State keys the page shows.
const STATE_KEYS: u32 = 100;

#[derive(Deserialize)]
pub(super) struct Find {
    #[serde(default)]
    q: String,
}

fn answer(
    c: &Console,
    session: &Session,
    status: StatusCode,
    title: &str,
    body: Markup,
) -> Response {
    html(
        status,
        pages::page(&c.frame(session, "players"), title, body),
    )
}

fn refused(c: &Console, session: &Session, title: &str, status: &Status) -> Response {
    html(
        crate::error::http_for(status),
        pages::page(
            &c.frame(session, "players"),
            title,
            view::refusal(&super::shown(status), None),
        ),
    )
}

/// `GET /console/players[?q=<username or id>]`
pub(super) async fn page(
    State(c): Shared,
    headers: HeaderMap,
    Query(find): Query<Find>,
) -> Response {
    let session = match c.viewer(&headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let q = find.q.trim();
    if q.is_empty() {
        return answer(
            &c,
            &session,
            StatusCode::OK,
            "Players",
            view::search(q, None),
        );
    }
    let op = session.operator.as_str();
    let found = auth(&c)
        .find_player(
            Act::read(op),
            FindPlayerRequest {
                query: q.to_owned(),
            },
        )
        .await;
    let account = match found.map(|r| r.account.unwrap_or_default()) {
        Ok(a) => a,
        Err(status) => {
            let body = view::search(q, Some(&super::shown(&status)));
            return answer(
                &c,
                &session,
                crate::error::http_for(&status),
                "Players",
                body,
            );
        }
    };
    let body = player(&c, &session, &account).await;
    answer(&c, &session, StatusCode::OK, "Players", body)
}

/// Everything the page shows of one player, each part read on its own: a service that is down
/// or not served costs its section, not the page.
async fn player(c: &Console, session: &Session, account: &Account) -> Markup {
    let (op, id) = (session.operator.as_str(), account.player_id.clone());
    let (pay, qst, st, au) = (payment(c), quest(c), state(c), auth(c));
    let (sessions, balance, ledger, inventory, log, progression, keys) = tokio::join!(
        au.list_sessions(
            Act::read(op),
            ListSessionsRequest {
                player_id: id.clone(),
                ..Default::default()
            }
        ),
        pay.get_balance(
            Act::read(op),
            GetBalanceRequest {
                player_id: id.clone()
            }
        ),
        pay.list_transactions(
            Act::read(op),
            ListTransactionsRequest {
                limit: LEDGER,
                player_id: id.clone(),
                ..Default::default()
            }
        ),
        pay.get_inventory(
            Act::read(op),
            GetInventoryRequest {
                player_id: id.clone()
            }
        ),
        qst.get_log(
            Act::read(op),
            GetLogRequest {
                player_id: id.clone()
            }
        ),
        qst.get_progression(
            Act::read(op),
            GetProgressionRequest {
                player_id: id.clone()
            }
        ),
        st.list(
            Act::read(op),
            ListRequest {
                limit: STATE_KEYS,
                player_id: id.clone(),
                ..Default::default()
            }
        ),
    );
    let shown = |r: &Status| super::shown(r);
    view::player(&view::Player {
        csrf: &session.csrf,
        account,
        sessions: sessions.map(|r| r.sessions).map_err(|e| shown(&e)),
        balance: balance.map(|r| r.balance).map_err(|e| shown(&e)),
        ledger: ledger.map(|r| r.transactions).map_err(|e| shown(&e)),
        inventory: inventory
            .map(|r| r.inventory.unwrap_or_default())
            .map_err(|e| shown(&e)),
        quests: log.map(|r| r.quests).map_err(|e| shown(&e)),
        progression: progression
            .map(|r| r.progression.unwrap_or_default())
            .map_err(|e| shown(&e)),
        state: keys.map(|r| r.entries).map_err(|e| shown(&e)),
    })
}

/// `POST /console/players/act`: shows a change before and after (no `confirm`), or applies it.
pub(super) async fn act(
    State(c): Shared,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ActForm>,
) -> Response {
    let session = match c.actor(&headers, &form.csrf).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    if let Err(status) = validate_player_id(&form.player) {
        return refused(&c, &session, "Players", &status);
    }
    let title = view::title(&form.action);
    if form.confirm != "yes" {
        return match actions::preview(&c, &session, &form).await {
            Ok(body) => answer(&c, &session, StatusCode::OK, title, body),
            Err(status) => refused_on(&c, &session, title, &form, &status),
        };
    }
    if uuid::Uuid::try_parse(&form.key).is_err() {
        let status = Status::invalid_argument("this form has no idempotency key; open it again");
        return refused_on(&c, &session, title, &form, &status);
    }
    let done = match actions::apply(&c, &session, &form).await {
        Ok(done) => done,
        Err(status) => return refused_on(&c, &session, title, &form, &status),
    };
    // One audit entry per change, however often its form is sent: the first to mark the key.
    let first = audit_once(&c, &form.key).await;
    let repeat = match first {
        Ok(first) => !first,
        Err(status) => return refused(&c, &session, title, &status),
    };
    if !repeat {
        let who = format!("console:{}", session.operator);
        let entry = crate::ops::audit::Entry::now(
            &who,
            done.action,
            &done.target,
            done.before.clone(),
            done.after.clone(),
        );
        let (store, events) = (c.state.store(), c.state.events());
        if let Err(status) = crate::ops::audit::record(&store, Some(&events), &entry).await {
            return refused(&c, &session, title, &status);
        }
    }
    let body = view::done(&form.player, &done.before, &done.after, repeat);
    answer(&c, &session, StatusCode::OK, title, body)
}

/// `console.applied.<idempotency key>`: until when (Unix ms) a confirmed change is known as
/// audited.
const APPLIED_PREFIX: &str = "console.applied.";
/// How long that is: a confirming form sent again within it is audited once.
const APPLIED_FOR_MS: u64 = 30 * 24 * 3600 * 1000;

/// Whether the change confirmed with idempotency `key` is recorded for the first time (and marks
/// it): a form sent twice is applied once by the services and audited once here.
async fn audit_once(c: &Console, key: &str) -> Result<bool, Status> {
    let marker = format!("{APPLIED_PREFIX}{key}");
    let until = handlers::kit::clock::now_ms().saturating_add(APPLIED_FOR_MS);
    let value = Bytes::from(until.to_string());
    match c.state.store().put(&marker, value, Some(0)).await {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the audit markers of changes past [`APPLIED_FOR_MS`] (the janitor's pass).
pub async fn prune_applied(
    store: &dyn handlers::kit::store::Store,
    stop: impl Fn() -> bool + Send + Sync,
) -> Result<usize, StoreError> {
    let now = handlers::kit::clock::now_ms();
    let expired = |v: &[u8]| {
        std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
            .is_none_or(|until| until <= now)
    };
    handlers::kit::store::prune_prefix(store, APPLIED_PREFIX, expired, stop).await
}

/// A refusal, with a way back to the player.
fn refused_on(
    c: &Console,
    session: &Session,
    title: &str,
    form: &ActForm,
    status: &Status,
) -> Response {
    let text = match status.code() {
        // The state service's compare-and-set: say what to do, not only what happened.
        handlers::Code::Aborted if form.action == "state" => format!(
            "Not saved: this key changed since version {} was shown ({}). Open the player again \
             to see its current value, then edit that.",
            form.version,
            super::shown(status)
        ),
        _ => super::shown(status),
    };
    html(
        crate::error::http_for(status),
        pages::page(
            &c.frame(session, "players"),
            title,
            view::refusal(&text, Some(&form.player)),
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn audit_markers_past_their_time_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = handlers::kit::store::RedbStore::open(&dir.path().join("m.redb")).unwrap();
        let store: &dyn handlers::kit::store::Store = &store;
        let now = handlers::kit::clock::now_ms();
        for (key, until) in [("old", now - 1), ("fresh", now + APPLIED_FOR_MS)] {
            let value = Bytes::from(until.to_string());
            store
                .put(&format!("{APPLIED_PREFIX}{key}"), value, Some(0))
                .await
                .unwrap();
        }
        assert_eq!(prune_applied(store, || false).await.unwrap(), 1);
        let left = store.list(APPLIED_PREFIX, None, 10).await.unwrap();
        assert_eq!(left.entries.len(), 1);
        assert_eq!(left.entries[0].0, format!("{APPLIED_PREFIX}fresh"));
    }
}
