//! End-to-end: the console's Players page, through the real binary: an operator finds a player,
//! refunds a purchase (once, however often the form is sent), credits, ends a stolen session (its
//! token refused at once), edits a state key (a stale version refused); what a player wrote is
//! shown escaped; and the admin lookups behind it are closed to players and to keys without
//! their own scope. Then the same in a real browser.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use edge_e2e::console_http::{encode, log_in, origin, send};
use edge_e2e::{Edge, scenarios};
use proto::rpc;
use serde_json::{Value, json};

const HOSTILE: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=1\">";

async fn api(edge: &Edge, path: &str, token: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let extra: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    let r = edge
        .client()
        .call_with(path, Some(token), &extra, body)
        .await;
    let status = r.status.as_u16();
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (status, body)
}

/// A service key made through `/admin/keys` with the admin token.
async fn key_for(edge: &Edge, admin_token: &str, name: &str, scopes: &str) -> String {
    let head = format!(
        "POST /admin/keys HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {admin_token}\r\ncontent-type: application/json",
        edge.admin
    );
    let body = json!({"name": name, "scopes": [scopes]}).to_string();
    let (status, body) = edge.admin_raw(&head, &body).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["key"].as_str().unwrap().to_owned()
}

/// A player with 1000 credited by the game, a purchase of 300 (its id), a hostile state key
/// and a hostile ledger reason.
async fn shopper(edge: &Edge, admin_token: &str, name: &str) -> (scenarios::Session, String) {
    let me = scenarios::login(&edge.client(), name).await;
    let game = key_for(edge, admin_token, &format!("game-{name}"), "payment").await;
    let credit = json!({"playerId": me.player_id, "amount": 1000, "reason": HOSTILE});
    let (s, b) = api(
        edge,
        rpc::payment::CREDIT.path,
        &game,
        Some("start"),
        credit,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let buy = json!({"sku": "minor_healing_draught", "quantity": 2});
    let (s, b) = api(
        edge,
        rpc::payment::PURCHASE.path,
        &me.access,
        Some("buy-1"),
        buy,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let purchase = b["transaction"]["id"].as_str().unwrap().to_owned();
    let put = json!({"key": "journal", "value": {"note": HOSTILE}});
    let (s, b) = api(edge, rpc::state::PUT.path, &me.access, None, put).await;
    assert_eq!(s, 200, "{b}");
    (me, purchase)
}

async fn balance(edge: &Edge, token: &str) -> i64 {
    let (s, b) = api(edge, rpc::payment::GET_BALANCE.path, token, None, json!({})).await;
    assert_eq!(s, 200, "{b}");
    b["balance"].as_str().unwrap_or("0").parse().unwrap()
}

#[tokio::test]
async fn an_operator_finds_a_player_refunds_once_credits_ends_a_session_and_edits_state() {
    let token = "players-admin-token";
    let edge = Edge::start(&["--admin-token", token]);
    // A name that would be markup cannot be registered at all.
    let r = edge
        .client()
        .call(
            rpc::auth::REGISTER.path,
            None,
            json!({"username": "<script>alert(1)</script>", "password": "correct-horse"}),
        )
        .await;
    assert_eq!(r.status, 400);
    let (me, purchase) = shopper(&edge, token, "wren").await;
    let second = scenarios::login_again(&edge.client(), "wren").await;
    let cookie = log_in(&edge, token).await;
    let o = origin(&edge);
    let get = |path: String| {
        let (edge, cookie) = (&edge, cookie.clone());
        async move { send(edge, "GET", &path, Some(&cookie), None, &[]).await }
    };

    // Found by name (any case) or id; the page shows every part, player text escaped.
    let page = get("/console/players?q=WREN".into()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for want in [
        me.player_id.as_str(),
        &purchase,
        "7.00 crowns (700)",
        "Minor Healing Draught",
        "journal",
        "Sessions",
        "Level",
    ] {
        assert!(page.body.contains(want), "{want}: {}", page.body);
    }
    assert!(
        !page.body.contains("<script>window") && !page.body.contains("<img src=x"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("&lt;script&gt;window.__xss=1&lt;/script&gt;")
    );
    let by_id = get(format!("/console/players?q={}", me.player_id)).await;
    assert!(by_id.body.contains("7.00 crowns (700)"));
    let none = get("/console/players?q=nobody-here".into()).await;
    assert_eq!(none.status, 404);
    assert!(
        none.body.contains("no player has that username or id"),
        "{}",
        none.body
    );
    let csrf = page.field("csrf");
    let post = |form: Vec<(&'static str, String)>| {
        let (edge, cookie, o) = (&edge, cookie.clone(), o.clone());
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(
                edge,
                "POST",
                "/console/players/act",
                Some(&cookie),
                Some(&o),
                &form,
            )
            .await
        }
    };
    let base = |action: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("action", action.to_owned()),
            ("player", me.player_id.clone()),
        ]
    };

    // Refund: the first post shows before and after and changes nothing.
    let mut refund = base("refund");
    refund.push(("transaction", purchase.clone()));
    let preview = post(refund.clone()).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.body.contains("Confirm: Refund"), "{}", preview.body);
    assert_eq!(balance(&edge, &second.access).await, 700);
    let mut confirm = refund.clone();
    confirm.push(("key", preview.field("key")));
    confirm.push(("confirm", "yes".into()));
    let done = post(confirm.clone()).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Done."), "{}", done.body);
    // The same form again (a double click, a reload): applied once.
    let again = post(confirm).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("sent before"), "{}", again.body);
    assert_eq!(balance(&edge, &second.access).await, 1000);
    let (_, ledger) = api(
        &edge,
        rpc::payment::LIST_TRANSACTIONS.path,
        &second.access,
        None,
        json!({}),
    )
    .await;
    let refunds = ledger["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "TRANSACTION_KIND_REFUND")
        .count();
    assert_eq!(refunds, 1, "{ledger}");
    let page = get(format!("/console/players?q={}", me.player_id)).await;
    assert!(page.body.contains("10.00 crowns (1000)") && page.body.contains("refunded"));
    // A forged form (no CSRF token, another Origin) is refused before anything is read.
    let forged = send(
        &edge,
        "POST",
        "/console/players/act",
        Some(&cookie),
        Some("http://evil.example"),
        &[("action", "refund")],
    )
    .await;
    assert_eq!(forged.status, 403);

    // Credit with a reason; bad amounts are named.
    let mut credit = base("credit");
    credit.extend([
        ("amount", "250".to_owned()),
        (
            "reason",
            "Lantern oil lost in the Mill Road flood".to_owned(),
        ),
    ]);
    let preview = post(credit.clone()).await;
    assert!(preview.body.contains("Confirm: Credit"), "{}", preview.body);
    credit.extend([("key", preview.field("key")), ("confirm", "yes".into())]);
    assert_eq!(post(credit).await.status, 200);
    assert_eq!(balance(&edge, &second.access).await, 1250);
    let mut bad = base("credit");
    bad.extend([("amount", "-5".to_owned()), ("reason", "x".to_owned())]);
    let refused = post(bad).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("amount must be"), "{}", refused.body);

    // End the first session: its token is refused at once; the second lives.
    let sessions = page.fields("session");
    assert_eq!(sessions.len(), 2, "{}", page.body);
    // Newest first: the first login is the last.
    let mut end = base("end-session");
    end.push(("session", sessions[1].clone()));
    let preview = post(end.clone()).await;
    assert!(
        preview.body.contains("Confirm: End session"),
        "{}",
        preview.body
    );
    assert_eq!(balance(&edge, &me.access).await, 1250);
    end.extend([("key", preview.field("key")), ("confirm", "yes".into())]);
    let done = post(end).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let (status, _) = api(
        &edge,
        rpc::payment::GET_BALANCE.path,
        &me.access,
        None,
        json!({}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(balance(&edge, &second.access).await, 1250);

    // State: an edit made against the version shown, after the player wrote a newer one, is
    // refused.
    let version = |edge: &Edge, token: String| {
        let edge = edge.client();
        async move {
            let r = edge
                .call(
                    rpc::state::GET.path,
                    Some(&token),
                    json!({"key": "journal"}),
                )
                .await;
            r.json()["entry"]["version"].as_str().unwrap().to_owned()
        }
    };
    let shown = version(&edge, second.access.clone()).await;
    let mut edit = base("state");
    edit.extend([
        ("state_key", "journal".to_owned()),
        ("version", shown.clone()),
        ("value", r#"{"note": "cleared by support"}"#.to_owned()),
    ]);
    let preview = post(edit.clone()).await;
    assert!(preview.body.contains("Confirm: Save"), "{}", preview.body);
    let confirm: Vec<_> = edit
        .iter()
        .cloned()
        .chain([("key", preview.field("key")), ("confirm", "yes".to_owned())])
        .collect();
    let put = json!({"key": "journal", "value": {"note": "the player's own"}});
    let (s, _) = api(&edge, rpc::state::PUT.path, &second.access, None, put).await;
    assert_eq!(s, 200);
    let stale = post(confirm).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(
        stale
            .body
            .contains(&format!("changed since version {shown}")),
        "{}",
        stale.body
    );
    let stale_preview = post(edit.clone()).await;
    assert_eq!(stale_preview.status, 409);
    // Against the version shown now, it is saved.
    edit[4].1 = version(&edge, second.access.clone()).await;
    let preview = post(edit.clone()).await;
    edit.extend([("key", preview.field("key")), ("confirm", "yes".into())]);
    assert_eq!(post(edit).await.status, 200);
    let (_, got) = api(
        &edge,
        rpc::state::GET.path,
        &second.access,
        None,
        json!({"key": "journal"}),
    )
    .await;
    assert_eq!(
        got["entry"]["value"],
        json!({"note": "cleared by support"}),
        "{got}"
    );

    // Every change is in the audit once, under the operator's name.
    let audit = get("/console/audit".into()).await;
    for (action, times) in [
        ("console.purchase_refunded", 1),
        ("console.player_credited", 1),
        ("console.session_ended", 1),
        ("console.state_changed", 1),
    ] {
        assert_eq!(
            audit.body.matches(action).count(),
            times,
            "{action}: {}",
            audit.body
        );
    }
    assert!(audit.body.contains("console:admin-token"));
}

#[tokio::test]
async fn the_admin_lookups_are_closed_to_players_and_to_keys_without_their_own_scope() {
    let edge = Edge::start(&[]);
    let me = scenarios::login(&edge.client(), "bram").await;
    let find = rpc::auth::FIND_PLAYER.path;
    let list = rpc::auth::LIST_SESSIONS.path;
    let end = rpc::auth::END_SESSION.path;
    let mine = json!({"playerId": me.player_id});
    for (path, body) in [
        (find, json!({"query": "bram"})),
        (list, mine.clone()),
        (
            end,
            json!({"playerId": me.player_id, "sessionId": "0123456789abcdef0123456789abcdef"}),
        ),
    ] {
        let (s, b) = api(&edge, path, &me.access, Some("k1"), body.clone()).await;
        assert_eq!(s, 403, "a player: {path} {b}");
        let r = edge.client().call(path, None, body).await;
        assert_eq!(r.status, 401, "{path}");
    }
    for scopes in ["*", "auth", "console"] {
        let key = edge.service_key(&format!("k-{}", encode(scopes).replace('%', "")), scopes);
        let (s, b) = api(&edge, find, &key, None, json!({"query": "bram"})).await;
        assert_eq!(s, 403, "{scopes}: {b}");
        let (s, _) = api(&edge, list, &key, None, mine.clone()).await;
        assert_eq!(s, 403, "{scopes}");
    }
    // Named exactly, a method opens to a support tool, and only that method.
    let desk = edge.service_key("support-desk", "auth.FindPlayer");
    let (s, b) = api(&edge, find, &desk, None, json!({"query": me.player_id})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["account"]["username"], "bram");
    assert!(b["account"].get("passwordHash").is_none(), "{b}");
    let (s, _) = api(&edge, list, &desk, None, mine).await;
    assert_eq!(s, 403);
}

/// A real browser: log in, find the player the test made, refund a purchase and see the ledger
/// change, end a session; nothing a player wrote runs; labels, one h1, keyboard; at 1280x800
/// and 390x844.
#[tokio::test]
async fn a_browser_finds_a_player_refunds_and_ends_a_session() {
    let token = "players-browser-token";
    let edge = Edge::start(&["--admin-token", token]);
    let (me, purchase) = shopper(&edge, token, "tamsin").await;
    let base = format!("http://{}", edge.admin);
    let id = me.player_id.clone();
    tokio::task::spawn_blocking(move || {
        let mut b = edge_e2e::browser::Browser::start(1280, 800);
        b.goto(&format!("{base}/console/login"));
        b.wait_for("document.querySelector('#credential')");
        b.eval(&format!(
            "document.querySelector('#credential').value = '{token}'; \
             document.querySelector('form').requestSubmit(); true"
        ));
        b.wait_for("location.pathname === '/console'");
        b.eval("document.querySelector('a[href=\"/console/players\"]').click(); true");
        b.wait_for("location.pathname === '/console/players' && document.querySelector('#q')");
        b.eval(
            "document.querySelector('#q').value = 'tamsin'; \
             document.querySelector('form.search').requestSubmit(); true",
        );
        b.wait_for("document.querySelector('#ledger')");
        assert_eq!(b.eval("document.querySelector('#balance').innerText"), "7.00 crowns (700)");
        // What the player wrote is text, never markup or script.
        assert_eq!(b.eval("typeof window.__xss"), "undefined");
        assert_eq!(b.eval("document.querySelectorAll('script, img').length"), 0);
        assert!(b.eval("document.body.innerText").as_str().unwrap().contains("<script>window.__xss=1</script>"));
        let checks = |b: &mut edge_e2e::browser::Browser, size: &str| {
            assert_eq!(b.eval("document.querySelectorAll('h1').length"), 1, "{size}");
            let unnamed = b.eval(
                "[...document.querySelectorAll('a[href], button, input:not([type=hidden]), textarea, summary')]\
                 .filter(e => !(e.textContent.trim() || e.getAttribute('aria-label') || (e.id && document.querySelector('label[for=\"' + e.id + '\"]'))))\
                 .map(e => e.outerHTML)",
            );
            assert_eq!(unnamed, json!([]), "every control has a name ({size})");
            let reachable = b.eval(
                "[...document.querySelectorAll('a[href], button, input:not([type=hidden]), textarea, summary')]\
                 .every(e => e.tabIndex >= 0)",
            );
            assert_eq!(reachable, true, "every control is in the tab order ({size})");
            let fits = b.eval("document.documentElement.scrollWidth <= window.innerWidth");
            assert_eq!(fits, true, "nothing overflows but the tables ({size})");
        };
        checks(&mut b, "1280x800");

        // Refund: confirm, then see the ledger change.
        b.eval(&format!(
            "document.querySelector('button[aria-label=\"Refund transaction {purchase}\"]').click(); true"
        ));
        b.wait_for("document.querySelector('#confirm')");
        assert!(b.eval("document.querySelector('#before').innerText").as_str().unwrap().contains("700"));
        b.eval("document.querySelector('#confirm button').click(); true");
        b.wait_for("document.body.innerText.includes('Done.')");
        b.eval("document.querySelector('main a').click(); true");
        b.wait_for("document.querySelector('#ledger')");
        assert_eq!(b.eval("document.querySelector('#balance').innerText"), "10.00 crowns (1000)");
        assert!(b.eval("document.querySelector('#ledger').innerText").as_str().unwrap().contains("refund"));

        // End the player's session.
        b.eval("document.querySelector('#session-list button').click(); true");
        b.wait_for("document.querySelector('#confirm')");
        b.eval("document.querySelector('#confirm button').click(); true");
        b.wait_for("document.body.innerText.includes('Done.')");
        b.eval("document.querySelector('main a').click(); true");
        b.wait_for("document.querySelector('#session-list')");
        assert!(b.eval("document.querySelector('#session-list').innerText").as_str().unwrap().contains("ended"));

        // A narrow window: the same page, nothing overflowing.
        drop(b);
        let mut b = edge_e2e::browser::Browser::start(390, 844);
        b.goto(&format!("{base}/console/login"));
        b.wait_for("document.querySelector('#credential')");
        b.eval(&format!(
            "document.querySelector('#credential').value = '{token}'; \
             document.querySelector('form').requestSubmit(); true"
        ));
        b.wait_for("location.pathname === '/console'");
        b.goto(&format!("{base}/console/players?q={id}"));
        b.wait_for("document.querySelector('#ledger')");
        assert_eq!(b.eval("typeof window.__xss"), "undefined");
        checks(&mut b, "390x844");
    })
    .await
    .unwrap();
    let (status, _) = api(
        &edge,
        rpc::payment::GET_BALANCE.path,
        &me.access,
        None,
        json!({}),
    )
    .await;
    assert_eq!(status, 401, "the ended session's token is refused");
}
