//! The Players page's changes: each shown first (the record before and after, and the form that
//! applies it with a fresh idempotency key), then applied through the services.

use handlers::Status;
use maud::Markup;
use proto::aicore::auth::v1::AuthServiceClient;
use proto::aicore::auth::v1::{EndSessionRequest, ListSessionsRequest, LoginSession};
use proto::aicore::payment::v1::PaymentServiceClient;
use proto::aicore::payment::v1::{
    CreditRequest, GetBalanceRequest, ListTransactionsRequest, RefundRequest, Transaction,
    TransactionKind,
};
use proto::aicore::quest::v1::QuestServiceClient;
use proto::aicore::state::v1::StateServiceClient;
use proto::aicore::state::v1::{Entry, GetRequest, PutRequest};
use serde::Deserialize;
use serde_json::json;

use super::Console;
use super::calls::ConsoleCalls;
use super::calls::{Act, as_json};
use super::players_view as view;
use super::session::Session;

/// Pages of the ledger or of the sessions searched for the one an action names.
const SEARCH_PAGES: usize = 10;
/// Longest credit reason.
const MAX_REASON: usize = 200;

pub(super) fn auth(c: &Console) -> AuthServiceClient<ConsoleCalls> {
    AuthServiceClient(ConsoleCalls(c.state.clone()))
}
pub(super) fn payment(c: &Console) -> PaymentServiceClient<ConsoleCalls> {
    PaymentServiceClient(ConsoleCalls(c.state.clone()))
}
pub(super) fn quest(c: &Console) -> QuestServiceClient<ConsoleCalls> {
    QuestServiceClient(ConsoleCalls(c.state.clone()))
}
pub(super) fn state(c: &Console) -> StateServiceClient<ConsoleCalls> {
    StateServiceClient(ConsoleCalls(c.state.clone()))
}

/// Every action's form: which action, on whom, and its own fields. `confirm` is "yes" on the
/// confirming post; `key` is the idempotency key that form was made with.
#[derive(Deserialize, Default)]
pub(super) struct ActForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) action: String,
    #[serde(default)]
    pub(super) player: String,
    #[serde(default)]
    pub(super) confirm: String,
    #[serde(default)]
    pub(super) key: String,
    #[serde(default)]
    pub(super) transaction: String,
    #[serde(default)]
    pub(super) amount: String,
    #[serde(default)]
    pub(super) reason: String,
    #[serde(default)]
    pub(super) session: String,
    #[serde(default)]
    pub(super) state_key: String,
    #[serde(default)]
    pub(super) version: String,
    #[serde(default)]
    pub(super) value: String,
}

/// What a confirmed change did, for the answer and the audit.
pub(super) struct Done {
    pub(super) action: &'static str,
    pub(super) target: String,
    pub(super) before: serde_json::Value,
    pub(super) after: serde_json::Value,
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
pub(super) async fn preview(
    c: &Console,
    session: &Session,
    form: &ActForm,
) -> Result<Markup, Status> {
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
pub(super) async fn apply(c: &Console, session: &Session, form: &ActForm) -> Result<Done, Status> {
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
