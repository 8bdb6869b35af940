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
use proto::aicore::auth::v1::{
    Account, AuthServiceClient, EndSessionRequest, FindPlayerRequest, ListSessionsRequest,
    LoginSession,
};
use proto::aicore::payment::v1::{
    CreditRequest, GetBalanceRequest, GetInventoryRequest, ListTransactionsRequest,
    PaymentServiceClient, RefundRequest, Transaction, TransactionKind,
};
use proto::aicore::quest::v1::{GetLogRequest, GetProgressionRequest, QuestServiceClient};
use proto::aicore::state::v1::{Entry, GetRequest, ListRequest, PutRequest, StateServiceClient};
use serde::Deserialize;
use serde_json::json;

use super::calls::{Act, ConsoleCalls, as_json};
use super::players_view as view;
use super::session::Session;
use super::{Console, Shared, html, pages};

/// Ledger entries the page shows (the newest).
const LEDGER: u32 = 50;
/// State keys the page shows.
const STATE_KEYS: u32 = 100;
/// Pages of the ledger or of the sessions searched for the one an action names.
const SEARCH_PAGES: usize = 10;
/// Longest credit reason.
const MAX_REASON: usize = 200;

fn auth(c: &Console) -> AuthServiceClient<ConsoleCalls> {
    AuthServiceClient(ConsoleCalls(c.state.clone()))
}
fn payment(c: &Console) -> PaymentServiceClient<ConsoleCalls> {
    PaymentServiceClient(ConsoleCalls(c.state.clone()))
}
fn quest(c: &Console) -> QuestServiceClient<ConsoleCalls> {
    QuestServiceClient(ConsoleCalls(c.state.clone()))
}
fn state(c: &Console) -> StateServiceClient<ConsoleCalls> {
    StateServiceClient(ConsoleCalls(c.state.clone()))
}

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

/// Every action's form: which action, on whom, and its own fields. `confirm` is "yes" on the
/// confirming post; `key` is the idempotency key that form was made with.
#[derive(Deserialize, Default)]
pub(super) struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    player: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    transaction: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    session: String,
    #[serde(default)]
    state_key: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    value: String,
}

/// What a confirmed change did, for the answer and the audit.
struct Done {
    action: &'static str,
    target: String,
    before: serde_json::Value,
    after: serde_json::Value,
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
        return match preview(&c, &session, &form).await {
            Ok(body) => answer(&c, &session, StatusCode::OK, title, body),
            Err(status) => refused_on(&c, &session, title, &form, &status),
        };
    }
    if uuid::Uuid::try_parse(&form.key).is_err() {
        let status = Status::invalid_argument("this form has no idempotency key; open it again");
        return refused_on(&c, &session, title, &form, &status);
    }
    let done = match apply(&c, &session, &form).await {
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

fn credit_amount(form: &ActForm) -> Result<i64, Status> {
    match form.amount.trim().parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Status::invalid_argument(
            "amount must be a whole number of minor units above 0 (100 = 1 crown)",
        )),
    }
}

fn credit_reason(form: &ActForm) -> Result<String, Status> {
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(Status::invalid_argument(format!(
            "reason is required: 1 to {MAX_REASON} characters, kept in the player's ledger"
        )));
    }
    Ok(reason.to_owned())
}

/// The transaction `id` of the player's ledger, searched from the newest.
async fn find_transaction(
    c: &Console,
    op: &str,
    player: &str,
    id: &str,
) -> Result<Transaction, Status> {
    let mut cursor = String::new();
    for _ in 0..SEARCH_PAGES {
        let page = payment(c)
            .list_transactions(
                Act::read(op),
                ListTransactionsRequest {
                    limit: 100,
                    cursor,
                    player_id: player.to_owned(),
                },
            )
            .await?;
        if let Some(t) = page.transactions.into_iter().find(|t| t.id == id) {
            return Ok(t);
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    Err(Status::not_found(
        "this player's ledger has no such transaction",
    ))
}

/// The session `sid` of the player, from their list.
async fn find_session(
    c: &Console,
    op: &str,
    player: &str,
    sid: &str,
) -> Result<LoginSession, Status> {
    let mut cursor = String::new();
    for _ in 0..SEARCH_PAGES {
        let page = auth(c)
            .list_sessions(
                Act::read(op),
                ListSessionsRequest {
                    limit: 100,
                    cursor,
                    player_id: player.to_owned(),
                },
            )
            .await?;
        if let Some(s) = page.sessions.into_iter().find(|s| s.session_id == sid) {
            return Ok(s);
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    Err(Status::not_found("this player has no such session"))
}

async fn state_entry(c: &Console, op: &str, player: &str, key: &str) -> Result<Entry, Status> {
    let got = state(c)
        .get(
            Act::read(op),
            GetRequest {
                key: key.to_owned(),
                player_id: player.to_owned(),
            },
        )
        .await?;
    Ok(got.entry.unwrap_or_default())
}

fn new_value(form: &ActForm) -> Result<pbjson_types::Value, Status> {
    serde_json::from_str(&form.value)
        .map_err(|e| Status::invalid_argument(format!("the new value is not JSON: {e}")))
}

fn shown_version(form: &ActForm) -> Result<u64, Status> {
    form.version
        .parse()
        .map_err(|_| Status::invalid_argument("version is not one the page showed"))
}

/// The confirmation page of an action: the record as it is, as it would be, and the form that
/// applies it (with its idempotency key).
async fn preview(c: &Console, session: &Session, form: &ActForm) -> Result<Markup, Status> {
    let (op, player) = (session.operator.as_str(), form.player.as_str());
    let key = uuid::Uuid::new_v4().to_string();
    let confirm = view::Confirm {
        csrf: &session.csrf,
        form_key: &key,
        player,
    };
    match form.action.as_str() {
        "credit" => {
            let amount = credit_amount(form)?;
            let reason = credit_reason(form)?;
            let balance = payment(c)
                .get_balance(
                    Act::read(op),
                    GetBalanceRequest {
                        player_id: player.to_owned(),
                    },
                )
                .await?
                .balance;
            let before = json!({ "balance": balance });
            let after = json!({ "balance": balance.saturating_add(amount), "credit": amount, "reason": reason });
            Ok(view::confirm(
                &confirm,
                "credit",
                &[("amount", &amount.to_string()), ("reason", &reason)],
                &before,
                &after,
                "Credit",
            ))
        }
        "refund" => {
            let t = find_transaction(c, op, player, &form.transaction).await?;
            if t.kind() != TransactionKind::Purchase {
                return Err(Status::failed_precondition(
                    "only a purchase can be refunded",
                ));
            }
            let balance = payment(c)
                .get_balance(
                    Act::read(op),
                    GetBalanceRequest {
                        player_id: player.to_owned(),
                    },
                )
                .await?
                .balance;
            let before = json!({ "balance": balance, "transaction": as_json(&t) });
            let after = json!({ "balance": balance.saturating_sub(t.amount), "refunds": t.id, "items": "taken back out of the inventory" });
            Ok(view::confirm(
                &confirm,
                "refund",
                &[("transaction", &t.id)],
                &before,
                &after,
                "Refund",
            ))
        }
        "end-session" => {
            let s = find_session(c, op, player, &form.session).await?;
            let before = as_json(&s);
            let after = as_json(&LoginSession {
                ended: true,
                ..s.clone()
            });
            Ok(view::confirm(
                &confirm,
                "end-session",
                &[("session", &s.session_id)],
                &before,
                &after,
                "End session",
            ))
        }
        "state" => {
            let value = new_value(form)?;
            let version = shown_version(form)?;
            let entry = state_entry(c, op, player, &form.state_key).await?;
            if entry.version != version {
                return Err(Status::aborted(format!(
                    "it is at version {} now",
                    entry.version
                )));
            }
            let before = as_json(&entry);
            let after = as_json(&Entry {
                value: Some(value),
                version: version + 1,
                ..entry.clone()
            });
            let fields = [
                ("state_key", entry.key.as_str()),
                ("version", &form.version),
                ("value", &form.value),
            ];
            Ok(view::confirm(
                &confirm, "state", &fields, &before, &after, "Save",
            ))
        }
        _ => Err(Status::invalid_argument("no such action")),
    }
}

/// Applies a confirmed action through the services.
async fn apply(c: &Console, session: &Session, form: &ActForm) -> Result<Done, Status> {
    let (op, player) = (session.operator.as_str(), form.player.clone());
    let change = Act::change(op, &form.key);
    match form.action.as_str() {
        "credit" => {
            let (amount, reason) = (credit_amount(form)?, credit_reason(form)?);
            let before = payment(c)
                .get_balance(
                    Act::read(op),
                    GetBalanceRequest {
                        player_id: player.clone(),
                    },
                )
                .await?;
            let req = CreditRequest {
                player_id: player.clone(),
                amount,
                reason,
            };
            let done = payment(c).credit(change, req).await?;
            Ok(Done {
                action: "console.player_credited",
                target: format!("player:{player}"),
                before: json!({ "balance": before.balance }),
                after: json!({ "balance": done.balance, "transaction": done.transaction.as_ref().map(as_json) }),
            })
        }
        "refund" => {
            let t = find_transaction(c, op, &player, &form.transaction).await?;
            let before = payment(c)
                .get_balance(
                    Act::read(op),
                    GetBalanceRequest {
                        player_id: player.clone(),
                    },
                )
                .await?;
            let req = RefundRequest {
                transaction_id: t.id.clone(),
                player_id: player.clone(),
            };
            let done = payment(c).refund(change, req).await?;
            Ok(Done {
                action: "console.purchase_refunded",
                target: format!("player:{player}"),
                before: json!({ "balance": before.balance, "transaction": as_json(&t) }),
                after: json!({ "balance": done.balance, "transaction": done.transaction.as_ref().map(as_json) }),
            })
        }
        "end-session" => {
            let s = find_session(c, op, &player, &form.session).await?;
            let req = EndSessionRequest {
                session_id: s.session_id.clone(),
                player_id: player.clone(),
            };
            let done = auth(c).end_session(change, req).await?;
            Ok(Done {
                action: "console.session_ended",
                target: format!("player:{player}"),
                before: as_json(&s),
                after: done.session.as_ref().map(as_json).unwrap_or_default(),
            })
        }
        "state" => {
            let value = new_value(form)?;
            let version = shown_version(form)?;
            let before = state_entry(c, op, &player, &form.state_key).await?;
            let req = PutRequest {
                key: form.state_key.clone(),
                value: Some(value.clone()),
                expected_version: Some(version),
                player_id: player.clone(),
            };
            let put = state(c).put(change, req).await?;
            let after = Entry {
                key: form.state_key.clone(),
                value: Some(value),
                version: put.version,
            };
            Ok(Done {
                action: "console.state_changed",
                target: format!("player:{player}"),
                before: as_json(&before),
                after: as_json(&after),
            })
        }
        _ => Err(Status::invalid_argument("no such action")),
    }
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
