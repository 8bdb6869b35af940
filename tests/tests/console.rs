//! End-to-end: the operators' console on the admin listener, through the real binary with a
//! plain HTTP client (what a browser sends: form posts, cookies, Origin): who may log in, and
//! that every change needs the session, its CSRF token and this listener's own Origin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use edge_e2e::Edge;
use edge_e2e::console_http::{Answer, log_in, origin, send};
use serde_json::json;

#[tokio::test]
async fn a_console_key_made_with_edge_keys_logs_in_and_revoking_it_ends_the_session() {
    let edge = Edge::start(&[]);
    // Nothing can log in yet: the page says how to make a key and shows no form.
    let a = send(&edge, "GET", "/console/login", None, None, &[]).await;
    assert_eq!(a.status, 200);
    assert!(
        a.body
            .contains("edge keys create --name alice --scope console"),
        "{}",
        a.body
    );
    assert!(!a.body.contains(r#"name="credential""#));
    let o = origin(&edge);
    let a = send(
        &edge,
        "POST",
        "/console/login",
        None,
        Some(&o),
        &[("credential", "anything")],
    )
    .await;
    assert_eq!(a.status, 401);
    assert!(a.header("set-cookie").is_none());

    let alice = edge.service_key("alice", "console");
    let a = send(&edge, "GET", "/console/login", None, None, &[]).await;
    assert!(a.body.contains(r#"name="credential""#), "{}", a.body);
    // A key for the game's methods is not a console login, however wide.
    let game = edge.service_key("game", "*");
    let a = send(
        &edge,
        "POST",
        "/console/login",
        None,
        Some(&o),
        &[("credential", &game)],
    )
    .await;
    assert_eq!(a.status, 401);
    // And a console key opens no method of the API.
    let r = edge
        .client()
        .call(
            proto::rpc::events::REPLAY.path,
            Some(&alice),
            json!({"topic": "world"}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);

    let session = log_in(&edge, &alice).await;
    let a = send(&edge, "GET", "/console", Some(&session), None, &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let csp = a.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    // Not no-referrer: under it browsers send `Origin: null` on the page's own posts.
    assert_eq!(a.header("referrer-policy"), Some("same-origin"));
    assert!(!a.body.contains("<script"), "no script on the pages");
    for text in [
        "Overview",
        "Replica",
        "alice",
        "payment",
        "Open streams",
        "redb",
    ] {
        assert!(a.body.contains(text), "{text}: {}", a.body);
    }
    let css = send(&edge, "GET", "/console/assets/console.css", None, None, &[]).await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));

    // Revoked like any key: the next page asks for a login again.
    let (status, body) = edge
        .admin_raw(
            "POST /admin/keys/alice/revoke HTTP/1.1\r\nhost: localhost\r\nx-edge-admin: 1",
            "",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let a = send(&edge, "GET", "/console", Some(&session), None, &[]).await;
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/console/login"));
}

/// `POST /console/keys` with `form`.
async fn post_keys(
    edge: &Edge,
    cookie: Option<&str>,
    origin: Option<&str>,
    form: Vec<(&'static str, String)>,
) -> Answer {
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send(edge, "POST", "/console/keys", cookie, origin, &form).await
}

#[tokio::test]
async fn console_changes_need_the_session_its_csrf_token_and_this_origin() {
    let token = "first-login-admin-token";
    let edge = Edge::start(&["--admin-token", token]);
    let o = origin(&edge);
    // Without a session: sent to the login page; the bearer routes keep their bearer.
    let a = send(&edge, "GET", "/console", None, None, &[]).await;
    assert_eq!(a.status, 303);
    let a = send(&edge, "GET", "/console/keys", Some("forged"), None, &[]).await;
    assert_eq!(a.status, 303);
    let a = send(&edge, "GET", "/admin/keys", None, None, &[]).await;
    assert_eq!(a.status, 401);
    // Login CSRF: a login form posted from another page, or with no Origin, is refused.
    for bad in [Some("http://attacker.example"), Some("null"), None] {
        let a = send(
            &edge,
            "POST",
            "/console/login",
            None,
            bad,
            &[("credential", token)],
        )
        .await;
        assert_eq!(a.status, 403, "{bad:?}");
        assert!(a.header("set-cookie").is_none());
    }
    let session = log_in(&edge, token).await;
    let page = send(&edge, "GET", "/console/keys", Some(&session), None, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("admin-token"), "the operator is named");
    let csrf = page.field("csrf");

    let create = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("name", "ops-bot".to_owned()),
            ("scopes", "console, time".to_owned()),
        ]
    };
    let post = |cookie, origin, form| post_keys(&edge, cookie, origin, form);
    // Missing or forged token, another Origin, no Origin, no session: all refused, nothing made.
    let mut missing = create("");
    missing.remove(0);
    for (cookie, origin, form) in [
        (Some(session.as_str()), Some(o.as_str()), missing),
        (Some(&session), Some(&o), create("forged-token")),
        (
            Some(&session),
            Some("http://attacker.example"),
            create(&csrf),
        ),
        (Some(&session), None, create(&csrf)),
        (None, Some(&o), create(&csrf)),
        (Some("forged-session"), Some(&o), create(&csrf)),
    ] {
        let a = post(cookie, origin, form).await;
        assert_eq!(a.status, 403, "{}", a.body);
    }
    let head =
        format!("GET /admin/keys HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}");
    let (status, body) = edge.admin_raw(&head, "").await;
    assert_eq!(status, 200);
    assert!(!body.contains("ops-bot"), "{body}");

    // The real form: the secret is shown once, on the answer, and never again.
    let a = post(Some(&session), Some(&o), create(&csrf)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let at = a.body.find("edge_").expect("the secret");
    let secret: String = a.body[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let page = send(&edge, "GET", "/console/keys", Some(&session), None, &[]).await;
    assert!(page.body.contains("ops-bot"));
    assert!(!page.body.contains(&secret));
    // The audit names who did it, on the overview (from the store).
    let page = send(&edge, "GET", "/console", Some(&session), None, &[]).await;
    for text in [
        "Recent changes",
        "console:admin-token",
        "admin.key_created",
        "ops-bot",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    // Bad input is said plainly.
    let mut bad = create(&csrf);
    bad[2].1 = "nosuchservice".into();
    bad[1].1 = "other".into();
    let a = post(Some(&session), Some(&o), bad).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("no service"), "{}", a.body);

    // The new key logs in elsewhere; revoking it from the console ends that session.
    let bot = log_in(&edge, &secret).await;
    let a = send(
        &edge,
        "POST",
        "/console/keys/revoke",
        Some(&session),
        Some(&o),
        &[("csrf", &csrf), ("name", "ops-bot")],
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let a = send(&edge, "GET", "/console", Some(&bot), None, &[]).await;
    assert_eq!(a.status, 303);
    let page = send(&edge, "GET", "/console/keys", Some(&session), None, &[]).await;
    assert!(page.body.contains("revoked"), "{}", page.body);

    // Logout: the cookie is cleared and the old session id is refused, for pages and posts.
    let a = send(
        &edge,
        "POST",
        "/console/logout",
        Some(&session),
        Some(&o),
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(a.status, 403);
    let a = send(
        &edge,
        "POST",
        "/console/logout",
        Some(&session),
        Some(&o),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(a.status, 303);
    assert!(a.header("set-cookie").unwrap().contains("Max-Age=0"));
    let a = send(&edge, "GET", "/console", Some(&session), None, &[]).await;
    assert_eq!(a.status, 303);
    let a = post(Some(&session), Some(&o), create(&csrf)).await;
    assert_eq!(a.status, 403);
}

#[tokio::test]
async fn idle_sessions_end_and_logins_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.toml");
    std::fs::write(
        &file,
        "[console]\nidle_timeout = \"1s\"\nmax_age = \"1h\"\nlogins_per_minute = 3\n",
    )
    .unwrap();
    let token = "rate-limited-admin-token";
    let edge = Edge::start(&["--config", file.to_str().unwrap(), "--admin-token", token]);
    let session = log_in(&edge, token).await;
    let a = send(&edge, "GET", "/console", Some(&session), None, &[]).await;
    assert_eq!(a.status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let a = send(&edge, "GET", "/console", Some(&session), None, &[]).await;
    assert_eq!(a.status, 303, "idle past the timeout");

    // Three attempts a minute, good or bad: the fourth is refused before it is checked.
    let o = origin(&edge);
    let mut statuses = Vec::new();
    for credential in ["wrong-1", "wrong-2", token] {
        let a = send(
            &edge,
            "POST",
            "/console/login",
            None,
            Some(&o),
            &[("credential", credential)],
        )
        .await;
        statuses.push(a.status);
    }
    assert_eq!(statuses, [401, 401, 429]);
    assert!(!edge.logs().contains(token), "secrets are never logged");
}

#[tokio::test]
async fn the_audit_is_recorded_and_its_topic_is_closed_to_players_and_keys() {
    let edge = Edge::start(&[]);
    // `edge keys` against the running edge goes through /admin/keys: audited as admin-api.
    let wide = edge.service_key("everything", "*");
    let (status, body) = edge
        .admin_raw(
            "POST /admin/keys/everything/revoke HTTP/1.1\r\nhost: localhost\r\nx-edge-admin: 1",
            "",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let game = edge.service_key("game", "*");
    let c = edge.client();
    let player = edge_e2e::scenarios::login(&c, "mallory").await;
    let replay = proto::rpc::events::REPLAY.path;
    let publish = proto::rpc::events::PUBLISH.path;
    // No player or key, however wide its scopes, reads or forges the live feed.
    for token in [&player.access, &game] {
        for topic in ["admin.audit", "Admin.audit"] {
            let r = c.call(replay, Some(token), json!({"topic": topic})).await;
            assert_eq!(r.status, 403, "{topic}: {:?}", r.body);
            let r = c
                .call(
                    publish,
                    Some(token),
                    json!({"topic": topic, "type": "admin.key_created", "payload": {"who": "forged"}}),
                )
                .await;
            assert_eq!(r.status, 403, "{topic}: {:?}", r.body);
        }
    }
    assert_eq!(
        c.call(replay, Some(&wide), json!({"topic": "admin.audit"}))
            .await
            .status,
        401,
        "revoked"
    );
    // The console shows who changed what.
    let key = edge.service_key("alice", "console");
    let session = log_in(&edge, &key).await;
    let page = send(&edge, "GET", "/console", Some(&session), None, &[]).await;
    for text in ["admin-api", "admin.key_revoked", "everything", "alice"] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    // The Audit page shows the record before and after: the revocation's time appears only after.
    let page = send(&edge, "GET", "/console/audit", Some(&session), None, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let revoked = page
        .body
        .find("admin.key_revoked · everything")
        .expect("the revocation");
    let entry = &page.body[revoked..];
    let entry = &entry[..entry.find("</section>").unwrap()];
    let (before, after) = entry
        .split_once("<td>")
        .unwrap()
        .1
        .split_once("</td>")
        .unwrap();
    assert!(before.contains("&quot;revoked_ms&quot;: null"), "{entry}");
    assert!(!after.contains("&quot;revoked_ms&quot;: null"), "{entry}");
    assert!(entry.contains("admin-api"));
}

#[tokio::test]
async fn workers_have_no_console() {
    let nats = edge_e2e::nats::Nats::start("");
    let worker = Edge::start_worker(&["--nats", &nats.url(), "--services", "state"]);
    for path in ["/console", "/console/login"] {
        let a = send(&worker, "GET", path, None, None, &[]).await;
        assert_eq!(a.status, 404, "{path}: {}", a.body);
    }
}

/// A real browser: log in with the admin token, see the Overview, create a key and see its secret
/// once; at 1280x800 and on a narrow window. These pages run no script (only the Events
/// page loads one, from the console's own assets); the test types and clicks through the
/// DevTools protocol.
#[tokio::test]
async fn a_browser_logs_in_sees_the_overview_and_creates_a_key() {
    let token = "browser-admin-token";
    let edge = Edge::start(&["--admin-token", token]);
    let base = format!("http://{}", edge.admin);
    tokio::task::spawn_blocking(move || {
        for (i, (w, h)) in [(1280, 800), (390, 844)].into_iter().enumerate() {
            let mut b = edge_e2e::browser::Browser::start(w, h);
            b.goto(&format!("{base}/console"));
            b.wait_for("location.pathname === '/console/login' && document.querySelector('#credential')");
            let label = b.eval("document.querySelector('label[for=credential]').innerText");
            assert_eq!(label, "Console key or admin token");
            b.eval(&format!(
                "document.querySelector('#credential').value = '{token}'; \
                 document.querySelector('form').requestSubmit(); true"
            ));
            b.wait_for("location.pathname === '/console' && document.querySelector('h1')");
            assert_eq!(b.eval("document.querySelector('h1').innerText"), "Overview");
            assert_eq!(b.eval("document.querySelectorAll('h1').length"), 1);
            // The README's picture, made only when asked (see README, "The console").
            if let (0, Some(path)) = (i, std::env::var_os("CONSOLE_SCREENSHOT")) {
                std::fs::write(path, b.screenshot()).unwrap();
            }
            let text = b.eval("document.body.innerText").as_str().unwrap().to_owned();
            for want in ["Replica", "Version", "Services", "payment", "admin-token"] {
                assert!(text.contains(want), "{want}: {text}");
            }
            // Nothing overflows the window but the tables, which scroll in their own box.
            let overflow = b.eval("document.documentElement.scrollWidth <= window.innerWidth");
            assert_eq!(overflow, true, "{w}x{h}");
            // The cookie is out of a script's reach.
            assert_eq!(b.eval("document.cookie"), "");

            b.eval("document.querySelector('a[href=\"/console/keys\"]').click(); true");
            b.wait_for("location.pathname === '/console/keys' && document.querySelector('#name')");
            let name = format!("browser-{i}");
            b.eval(&format!(
                "document.querySelector('#name').value = '{name}'; \
                 document.querySelector('#scopes').value = 'console'; \
                 document.querySelector('form[action=\"/console/keys\"]').requestSubmit(); true"
            ));
            b.wait_for("document.querySelector('.secret')");
            let secret = b.eval("document.querySelector('.secret').innerText");
            assert!(secret.as_str().unwrap().starts_with("edge_"), "{secret}");
            // Shown once: the list, opened again, has the key and not its secret.
            b.goto(&format!("{base}/console/keys"));
            b.wait_for(&format!("document.body.innerText.includes('{name}')"));
            assert_eq!(b.eval("!!document.querySelector('.secret')"), false);
            // Keyboard: the first control a Tab reaches is a link or control with a name.
            b.eval("document.activeElement && document.activeElement.blur(); true");
            let focusable = b.eval(
                "[...document.querySelectorAll('a[href], button, input:not([type=hidden])')]\
                 .every(e => (e.innerText || e.getAttribute('aria-label') || (e.id && document.querySelector('label[for=' + e.id + ']'))))",
            );
            assert_eq!(focusable, true, "every control has a name");

            // A form whose CSRF token was tampered with is refused, and makes no key.
            b.eval(
                "document.querySelector('#name').value = 'forged-key'; \
                 document.querySelector('#scopes').value = 'console'; \
                 document.querySelector('form[action=\"/console/keys\"] input[name=csrf]').value = 'forged'; \
                 document.querySelector('form[action=\"/console/keys\"]').requestSubmit(); true",
            );
            b.wait_for("document.body.innerText.includes('does not match your session')");
            b.goto(&format!("{base}/console/keys"));
            b.wait_for(&format!("document.body.innerText.includes('{name}')"));
            assert_eq!(
                b.eval("document.body.innerText.includes('forged-key')"),
                false
            );
            // After logout the console is closed again: every page leads to the login.
            b.eval("document.querySelector('form.logout').requestSubmit(); true");
            b.wait_for("location.pathname === '/console/login' && document.querySelector('#credential')");
            b.goto(&format!("{base}/console/keys"));
            b.wait_for("location.pathname === '/console/login' && document.querySelector('#credential')");
        }
    })
    .await
    .unwrap();
}
