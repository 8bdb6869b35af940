//! The Players page's markup. Everything a player controls (their username, state keys and
//! values, ledger reasons) is printed through maud, which escapes it: never `PreEscaped` here.

use maud::{Markup, html};
use proto::aicore::auth::v1::{Account, LoginSession};
use proto::aicore::payment::v1::{Inventory, Transaction, TransactionKind};
use proto::aicore::quest::v1::{Progression, QuestProgress, QuestStatus};
use proto::aicore::state::v1::Entry;

use super::keys::when;
use super::pages::csrf_field;

/// The heading of an action's pages.
pub fn title(action: &str) -> &'static str {
    match action {
        "credit" => "Credit a player",
        "refund" => "Refund a purchase",
        "end-session" => "End a session",
        "state" => "Change a state key",
        _ => "Players",
    }
}

/// Unix milliseconds as UTC; "never" for 0.
fn at(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) if ms > 0 => when(ms),
        _ => "never".to_owned(),
    }
}

/// Minor units as crowns (100 minor units = 1 crown), with the units themselves.
pub fn crowns(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02} crowns ({minor})", abs / 100, abs % 100)
}

fn pretty(v: &serde_json::Value) -> String {
    if v.is_null() {
        return "(none)".to_owned();
    }
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn back(player: &str) -> Markup {
    html! { p { a href={ "/console/players?q=" (player) } { "Back to the player" } } }
}

/// The search form, with what was asked and why it found nothing.
pub fn search(q: &str, error: Option<&str>) -> Markup {
    html! {
        form.search method="get" action="/console/players" role="search" {
            p {
                label for="q" { "Username or player id" }
                input #q type="search" name="q" value=(q) required maxlength="64" autocomplete="off";
            }
            button type="submit" { "Find" }
        }
        @if let Some(e) = error {
            p.error role="alert" { (e) }
        }
    }
}

/// One player's page; each part is what its service answered, or why it did not.
pub struct Player<'a> {
    pub csrf: &'a str,
    pub account: &'a Account,
    pub sessions: Result<Vec<LoginSession>, String>,
    pub balance: Result<i64, String>,
    pub ledger: Result<Vec<Transaction>, String>,
    pub inventory: Result<Inventory, String>,
    pub quests: Result<Vec<QuestProgress>, String>,
    pub progression: Result<Progression, String>,
    pub state: Result<Vec<Entry>, String>,
}

fn failed(why: &str) -> Markup {
    html! { p.error { "Not available: " (why) } }
}

/// The hidden fields every action's first form carries.
fn action_fields(csrf: &str, action: &str, player: &str) -> Markup {
    html! {
        (csrf_field(csrf))
        input type="hidden" name="action" value=(action);
        input type="hidden" name="player" value=(player);
    }
}

pub fn player(p: &Player<'_>) -> Markup {
    let a = p.account;
    let id = a.player_id.as_str();
    html! {
        (search(&a.username, None))
        section aria-labelledby="account" {
            h2 #account { "Account" }
            dl {
                dt { "Username" } dd { strong { (a.username) } }
                dt { "Player id" } dd { code { (id) } }
                dt { "Registered" } dd { (at(a.created_at_ms)) }
                @match &p.progression {
                    Ok(g) => {
                        dt { "Level" } dd { (g.level) " of " (g.max_level) }
                        dt { "Experience" } dd {
                            (g.experience)
                            @if g.next_level_experience > 0 { " (next level at " (g.next_level_experience) ")" }
                        }
                    }
                    Err(e) => { dt { "Level" } dd { (failed(e)) } }
                }
            }
        }
        (money(p, id))
        (inventory(&p.inventory))
        (quests(&p.quests))
        (sessions(p.csrf, id, &p.sessions))
        (state(p.csrf, id, &p.state))
    }
}

fn money(p: &Player<'_>, id: &str) -> Markup {
    let refunded: Vec<&str> = p.ledger.as_ref().map_or(Vec::new(), |l| {
        l.iter()
            .filter(|t| !t.refunds_transaction_id.is_empty())
            .map(|t| t.refunds_transaction_id.as_str())
            .collect()
    });
    html! {
        section aria-labelledby="money" {
            h2 #money { "Balance and ledger" }
            @match &p.balance {
                Ok(b) => p { "Balance: " strong #balance { (crowns(*b)) } },
                Err(e) => (failed(e)),
            }
            form method="post" action="/console/players/act" {
                (action_fields(p.csrf, "credit", id))
                p {
                    label for="credit-amount" { "Credit, in minor units (100 = 1 crown)" }
                    input #credit-amount type="number" name="amount" min="1" step="1" required;
                }
                p {
                    label for="credit-reason" { "Reason, kept in the player's ledger" }
                    input #credit-reason type="text" name="reason" required maxlength="200";
                }
                button type="submit" { "Review credit" }
            }
            h3 { "Ledger, newest first" }
            @match &p.ledger {
                Err(e) => (failed(e)),
                Ok(l) if l.is_empty() => p { "No transactions yet." },
                Ok(l) => div.scroll { table #ledger {
                    thead { tr {
                        th scope="col" { "When" } th scope="col" { "Kind" } th scope="col" { "Amount" }
                        th scope="col" { "Balance after" } th scope="col" { "Item" } th scope="col" { "Reason" }
                        th scope="col" { "Transaction" } th scope="col" { "Action" }
                    } }
                    tbody { @for t in l { tr {
                        td { (at(t.created_at_ms)) }
                        td { (kind(t)) }
                        td { (crowns(t.amount)) }
                        td { (crowns(t.balance_after)) }
                        td { (t.sku) @if t.quantity > 1 { " ×" (t.quantity) } }
                        td { (t.reason) }
                        td { code { (t.id) } }
                        td {
                            @if t.kind() == TransactionKind::Purchase && !refunded.contains(&t.id.as_str()) {
                                form method="post" action="/console/players/act" {
                                    (action_fields(p.csrf, "refund", id))
                                    input type="hidden" name="transaction" value=(t.id);
                                    button type="submit" aria-label={ "Refund transaction " (t.id) } { "Refund…" }
                                }
                            } @else if refunded.contains(&t.id.as_str()) {
                                "refunded"
                            }
                        }
                    } } }
                } },
            }
        }
    }
}

fn kind(t: &Transaction) -> &'static str {
    match t.kind() {
        TransactionKind::Credit => "credit",
        TransactionKind::Purchase => "purchase",
        TransactionKind::Refund => "refund",
        TransactionKind::Reversal => "reversal",
        TransactionKind::Grant => "grant",
        TransactionKind::Consume => "consumed",
        TransactionKind::Unspecified => "unknown",
    }
}

fn inventory(inv: &Result<Inventory, String>) -> Markup {
    html! {
        section aria-labelledby="inventory" {
            h2 #inventory { "Inventory" }
            @match inv {
                Err(e) => (failed(e)),
                Ok(inv) => {
                    p { (inv.used) " of " (inv.capacity) " slots filled" }
                    @if inv.items.is_empty() && inv.upgrades.is_empty() {
                        p { "Nothing held." }
                    } @else {
                        div.scroll { table {
                            thead { tr { th scope="col" { "Item" } th scope="col" { "Sku" } th scope="col" { "Units" } } }
                            tbody {
                                @for i in &inv.items { tr { td { (i.name) } td { code { (i.sku) } } td { (i.quantity) } } }
                                @for i in &inv.upgrades { tr { td { (i.name) " (upgrade)" } td { code { (i.sku) } } td { (i.quantity) } } }
                            }
                        } }
                    }
                }
            }
        }
    }
}

fn status(q: &QuestProgress) -> &'static str {
    match q.status() {
        QuestStatus::Active => "active",
        QuestStatus::Completed => "completed",
        QuestStatus::Abandoned => "abandoned",
        QuestStatus::NotAccepted => "not accepted",
        QuestStatus::Unspecified => "unknown",
    }
}

fn quests(log: &Result<Vec<QuestProgress>, String>) -> Markup {
    html! {
        section aria-labelledby="quests" {
            h2 #quests { "Quests" }
            @match log {
                Err(e) => (failed(e)),
                Ok(l) if l.is_empty() => p { "No quest taken yet." },
                Ok(l) => div.scroll { table {
                    thead { tr {
                        th scope="col" { "Quest" } th scope="col" { "Status" } th scope="col" { "Objectives" }
                        th scope="col" { "Accepted" } th scope="col" { "Completed" }
                    } }
                    tbody { @for q in l {
                        @let def = q.quest.clone().unwrap_or_default();
                        tr {
                            th scope="row" { (def.title) " " code { (q.quest_id) } }
                            td { (status(q)) }
                            td { ul.plain { @for o in &def.objectives {
                                li { (o.description) " " (o.count) "/" (o.target_count) }
                            } } }
                            td { (at(q.accepted_at_ms)) }
                            td { (at(q.completed_at_ms)) }
                        }
                    } }
                } },
            }
        }
    }
}

fn sessions(csrf: &str, id: &str, list: &Result<Vec<LoginSession>, String>) -> Markup {
    html! {
        section aria-labelledby="sessions" {
            h2 #sessions { "Sessions" }
            @match list {
                Err(e) => (failed(e)),
                Ok(l) if l.is_empty() => p { "No sessions." },
                Ok(l) => div.scroll { table #session-list {
                    thead { tr {
                        th scope="col" { "Session" } th scope="col" { "Logged in" } th scope="col" { "Last refreshed" }
                        th scope="col" { "Expires" } th scope="col" { "From" } th scope="col" { "State" }
                    } }
                    tbody { @for s in l { tr {
                        td { code { (s.session_id) } }
                        td { (at(s.created_at_ms)) }
                        td { (at(s.refreshed_at_ms)) }
                        td { (at(s.expires_at_ms)) }
                        td { (s.client_address) }
                        td {
                            @if s.ended { "ended" } @else {
                                form method="post" action="/console/players/act" {
                                    (action_fields(csrf, "end-session", id))
                                    input type="hidden" name="session" value=(s.session_id);
                                    button type="submit" aria-label={ "End session " (s.session_id) } { "End…" }
                                }
                            }
                        }
                    } } }
                } },
            }
        }
    }
}

fn state(csrf: &str, id: &str, entries: &Result<Vec<Entry>, String>) -> Markup {
    html! {
        section aria-labelledby="state" {
            h2 #state { "State keys" }
            @match entries {
                Err(e) => (failed(e)),
                Ok(l) if l.is_empty() => p { "No state keys." },
                Ok(l) => div.scroll { table #state-keys {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "Version" } th scope="col" { "Value" } } }
                    tbody { @for (i, e) in l.iter().enumerate() {
                        @let value = e.value.as_ref().map(super::calls::as_json).unwrap_or_default();
                        @let field = format!("state-value-{i}");
                        tr {
                            th scope="row" { code { (e.key) } }
                            td { (e.version) }
                            td {
                                pre { (pretty(&value)) }
                                details {
                                    summary { "Edit " (e.key) }
                                    form method="post" action="/console/players/act" {
                                        (action_fields(csrf, "state", id))
                                        input type="hidden" name="state_key" value=(e.key);
                                        input type="hidden" name="version" value=(e.version);
                                        p {
                                            label for=(field) { "New value (JSON), replacing version " (e.version) }
                                            textarea id=(field) name="value" rows="4" required {
                                                (serde_json::to_string(&value).unwrap_or_default())
                                            }
                                        }
                                        button type="submit" { "Review change" }
                                    }
                                }
                            }
                        }
                    } }
                } },
            }
        }
    }
}

/// What a confirming form carries.
pub struct Confirm<'a> {
    pub csrf: &'a str,
    /// The idempotency key of the change, made when this page was.
    pub form_key: &'a str,
    pub player: &'a str,
}

fn before_after(before: &serde_json::Value, after: &serde_json::Value) -> Markup {
    html! {
        div.scroll { table.compare {
            thead { tr { th scope="col" { "Before" } th scope="col" { "After" } } }
            tbody { tr { td { pre #before { (pretty(before)) } } td { pre #after { (pretty(after)) } } } }
        } }
    }
}

/// The confirmation step of a change: before and after, and the form that applies it.
pub fn confirm(
    c: &Confirm<'_>,
    action: &str,
    fields: &[(&str, &str)],
    before: &serde_json::Value,
    after: &serde_json::Value,
    verb: &str,
) -> Markup {
    html! {
        p { "Nothing has changed yet. Check the change, then confirm it; it is applied once and audited under your name." }
        (before_after(before, after))
        form #confirm method="post" action="/console/players/act" {
            (action_fields(c.csrf, action, c.player))
            input type="hidden" name="key" value=(c.form_key);
            input type="hidden" name="confirm" value="yes";
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" { "Confirm: " (verb) }
        }
        (back(c.player))
    }
}

/// The answer to a confirmed change.
pub fn done(
    player: &str,
    before: &serde_json::Value,
    after: &serde_json::Value,
    repeat: bool,
) -> Markup {
    html! {
        @if repeat {
            p.ok role="status" { "This form was sent before: the change was applied once, the first time. It stands as shown." }
        } @else {
            p.ok role="status" { "Done. The change is in the audit." }
        }
        (before_after(before, after))
        (back(player))
    }
}

/// A refusal, with a way back to the player when there is one.
pub fn refusal(text: &str, player: Option<&str>) -> Markup {
    html! {
        p.error role="alert" { (text) }
        @match player {
            Some(p) if !p.is_empty() => (back(p)),
            _ => p { a href="/console/players" { "Find a player" } },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_as_crowns() {
        assert_eq!(crowns(1250), "12.50 crowns (1250)");
        assert_eq!(crowns(-5), "-0.05 crowns (-5)");
        assert_eq!(crowns(0), "0.00 crowns (0)");
    }

    #[test]
    fn what_players_control_is_escaped() {
        let evil = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=1</script>";
        let entry = Entry {
            key: "profile".into(),
            value: serde_json::from_value(serde_json::json!({ "title": evil })).ok(),
            version: 3,
        };
        let out = state("tok", "0123456789abcdef0123456789abcdef", &Ok(vec![entry])).into_string();
        assert!(!out.contains("<script") && !out.contains("<img"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
        let account = Account {
            player_id: "0123456789abcdef0123456789abcdef".into(),
            username: evil.into(),
            created_at_ms: 1,
        };
        let page = player(&Player {
            csrf: "tok",
            account: &account,
            sessions: Ok(vec![]),
            balance: Ok(0),
            ledger: Ok(vec![Transaction {
                reason: evil.into(),
                ..Transaction::default()
            }]),
            inventory: Err(evil.into()),
            quests: Ok(vec![]),
            progression: Err(evil.into()),
            state: Ok(vec![]),
        })
        .into_string();
        assert!(
            !page.contains("<script") && !page.contains("<img"),
            "{page}"
        );
    }
}
