use super::*;
use crate::kit::status::Code;
use std::time::Duration;

async fn service() -> (tempfile::TempDir, AuthService) {
    let (dir, store) = crate::kit::testing::temp_store();
    let svc = AuthService::new(store, AuthConfig::default())
        .await
        .unwrap();
    (dir, svc)
}

fn as_player(id: &str) -> Context {
    crate::kit::testing::player(id)
}

async fn refresh(svc: &AuthService, token: String) -> Result<RefreshResponse, Status> {
    svc.refresh(
        Context::default(),
        RefreshRequest {
            refresh_token: token,
        },
    )
    .await
}

#[tokio::test]
async fn expired_refresh_tokens_and_sessions_are_pruned_live_ones_kept() {
    let (_dir, store) = crate::kit::testing::temp_store();
    let short = AuthService::new(
        Arc::clone(&store),
        AuthConfig {
            refresh_ttl: Duration::from_millis(300),
            ..AuthConfig::default()
        },
    )
    .await
    .unwrap();
    let long = AuthService::new(Arc::clone(&store), AuthConfig::default())
        .await
        .unwrap();
    let creds = || LoginRequest {
        username: "carol".into(),
        password: "s3cret-pass".into(),
        device_token: String::new(),
    };
    long.register(
        Context::default(),
        RegisterRequest {
            username: "carol".into(),
            password: "s3cret-pass".into(),
        },
    )
    .await
    .unwrap();
    let expired = short.login(Context::default(), creds()).await.unwrap();
    // A short session refreshed by the long-lived service lives as long as its new token.
    let extended = short.login(Context::default(), creds()).await.unwrap();
    let extended = refresh(&long, extended.refresh_token).await.unwrap();
    let live = long.login(Context::default(), creds()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let count = |prefix| {
        let store = Arc::clone(&store);
        async move { store.list(prefix, None, 100).await.unwrap().entries.len() }
    };
    let (tokens, sessions) = (count(REFRESH_PREFIX).await, count(SESSION_PREFIX).await);

    // The expired login's token and session go, and the extended session's spent first token;
    // the extended session and the live ones stay.
    // And the expired session's entry in its player's list of sessions.
    assert_eq!(prune_expired(store.as_ref(), || false).await.unwrap(), 4);
    assert_eq!(count(REFRESH_PREFIX).await, tokens - 2);
    assert_eq!(count(SESSION_PREFIX).await, sessions - 1);
    refresh(&long, extended.refresh_token).await.unwrap();
    // The live token still rotates; the pruned one is unknown now.
    let rotated = refresh(&long, live.refresh_token.clone()).await.unwrap();
    assert!(!rotated.refresh_token.is_empty());
    let gone = refresh(&long, expired.refresh_token).await.unwrap_err();
    assert_eq!(gone.message(), "invalid refresh token");
    // A spent token that has not expired is kept, so its reuse is still caught.
    assert_eq!(prune_expired(store.as_ref(), || false).await.unwrap(), 0);
    let reuse = refresh(&long, live.refresh_token).await.unwrap_err();
    assert!(reuse.message().contains("already used"), "{reuse:?}");
}

#[tokio::test]
async fn register_login_refresh_rotation_and_reuse() {
    let (_d, svc) = service().await;
    let reg = svc
        .register(
            Context::default(),
            RegisterRequest {
                username: "Alice".into(),
                password: "s3cret-pass".into(),
            },
        )
        .await
        .unwrap();
    let dup = svc
        .register(
            Context::default(),
            RegisterRequest {
                username: "alice".into(),
                password: "other-pass".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);

    let wrong = svc
        .login(
            Context::default(),
            LoginRequest {
                username: "alice".into(),
                password: "nope-nope".into(),
                device_token: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let unknown = svc
        .login(
            Context::default(),
            LoginRequest {
                username: "bob".into(),
                password: "s3cret-pass".into(),
                device_token: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        unknown.message(),
        wrong.message(),
        "no username enumeration"
    );

    let login = svc
        .login(
            Context::default(),
            LoginRequest {
                username: "ALICE".into(),
                password: "s3cret-pass".into(),
                device_token: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(login.player_id, reg.player_id);
    assert_eq!(
        svc.authenticate(&login.access_token).unwrap().0,
        Principal::Player {
            player_id: reg.player_id.clone()
        }
    );

    let r1 = svc
        .refresh(
            Context::default(),
            RefreshRequest {
                refresh_token: login.refresh_token.clone(),
            },
        )
        .await
        .unwrap();
    assert_ne!(r1.refresh_token, login.refresh_token);
    // Reusing the spent token fails and revokes the session, so the rotated one dies too.
    let reuse = svc
        .refresh(
            Context::default(),
            RefreshRequest {
                refresh_token: login.refresh_token.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Code::Unauthenticated);
    let after = svc
        .refresh(
            Context::default(),
            RefreshRequest {
                refresh_token: r1.refresh_token.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::Unauthenticated);
    let intro = svc
        .introspect(
            as_player(&reg.player_id),
            IntrospectRequest {
                token: r1.access_token,
            },
        )
        .await
        .unwrap();
    assert!(
        !intro.active,
        "tokens of a revoked session introspect inactive"
    );
}

#[tokio::test]
async fn login_attempts_are_limited_per_account() {
    let (_dir, store) = crate::kit::testing::temp_store();
    let config = AuthConfig {
        login_failures_per_account: 3,
        ..AuthConfig::default()
    };
    let svc = AuthService::new(store, config).await.unwrap();
    let attempt = |u: &str| LoginRequest {
        username: u.into(),
        password: "guess-guess".into(),
        device_token: String::new(),
    };
    for _ in 0..3 {
        let e = svc
            .login(Context::default(), attempt("victim"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let e = svc
        .login(Context::default(), attempt("VICTIM"))
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::ResourceExhausted,
        "case-insensitive, like usernames"
    );
    assert!(e.retry_after().is_some());
    let e = svc
        .login(Context::default(), attempt("someone-else"))
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::Unauthenticated,
        "other accounts are unaffected"
    );
}

#[tokio::test]
async fn logout_revokes_and_only_for_the_owner() {
    let (_d, svc) = service().await;
    let reg = svc
        .register(
            Context::default(),
            RegisterRequest {
                username: "carol".into(),
                password: "password1".into(),
            },
        )
        .await
        .unwrap();
    let login = svc
        .login(
            Context::default(),
            LoginRequest {
                username: "carol".into(),
                password: "password1".into(),
                device_token: String::new(),
            },
        )
        .await
        .unwrap();
    let other = svc
        .logout(
            as_player("ffffffffffffffffffffffffffffffff"),
            LogoutRequest {
                refresh_token: login.refresh_token.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    svc.logout(
        as_player(&reg.player_id),
        LogoutRequest {
            refresh_token: login.refresh_token.clone(),
        },
    )
    .await
    .unwrap();
    let refresh = svc
        .refresh(
            Context::default(),
            RefreshRequest {
                refresh_token: login.refresh_token,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refresh.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn bad_input_is_rejected_clearly() {
    let (_d, svc) = service().await;
    for (u, p) in [
        ("ab", "password1"),
        ("a b c", "password1"),
        ("alice", "short"),
        ("al.ce", "password1"),
    ] {
        let e = svc
            .register(
                Context::default(),
                RegisterRequest {
                    username: u.into(),
                    password: p.into(),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{u}/{p}");
        assert!(!e.message().contains(p) || p.len() < 3);
    }
    let e = svc
        .refresh(
            Context::default(),
            RefreshRequest {
                refresh_token: "x".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // Fields left empty are named, not taken for a wrong guess.
    let e = refresh(&svc, String::new()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("refreshToken is required"), "{e:?}");
    let e = svc
        .logout(as_player("p"), LogoutRequest::default())
        .await
        .unwrap_err();
    assert!(e.message().contains("refreshToken is required"), "{e:?}");
    for (u, p, field) in [("", "password1", "username"), ("alice", "", "password")] {
        let login = LoginRequest {
            username: u.into(),
            password: p.into(),
            device_token: String::new(),
        };
        let e = svc.login(Context::default(), login).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(e.message(), format!("{field} is required"));
    }
}

async fn sign_up(svc: &AuthService, username: &str) -> String {
    svc.register(
        Context::default(),
        RegisterRequest {
            username: username.into(),
            password: "s3cret-pass".into(),
        },
    )
    .await
    .unwrap()
    .player_id
}

async fn log_in_from(svc: &AuthService, username: &str, addr: &str) -> LoginResponse {
    let ctx = Context {
        client_addr: Some(addr.parse().unwrap()),
        ..Context::default()
    };
    let login = LoginRequest {
        username: username.into(),
        password: "s3cret-pass".into(),
        device_token: String::new(),
    };
    svc.login(ctx, login).await.unwrap()
}

fn operator() -> Context {
    crate::kit::testing::service("console:alice")
}

#[tokio::test]
async fn operators_find_a_player_by_username_or_id_and_players_cannot() {
    let (_dir, svc) = service().await;
    let id = sign_up(&svc, "Wren_Tallow").await;
    let find = |ctx: Context, query: &str| {
        svc.find_player(
            ctx,
            FindPlayerRequest {
                query: query.into(),
            },
        )
    };
    for query in ["Wren_Tallow", "wren_tallow", " WREN_TALLOW ", id.as_str()] {
        let account = find(operator(), query).await.unwrap().account.unwrap();
        assert_eq!(account.player_id, id, "{query}");
        assert_eq!(account.username, "Wren_Tallow");
        assert!(account.created_at_ms > 0);
    }
    for query in ["nobody", "0123456789abcdef0123456789abcdef", "<script>"] {
        let e = find(operator(), query).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{query}");
    }
    let e = find(operator(), "  ").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // A player, even asking about themself, is refused; so is no principal.
    let e = find(as_player(&id), "wren_tallow").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = find(Context::default(), "wren_tallow").await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn operators_list_a_players_sessions_and_only_theirs() {
    let (_dir, svc) = service().await;
    let wren = sign_up(&svc, "wren").await;
    let bram = sign_up(&svc, "bram").await;
    let first = log_in_from(&svc, "wren", "203.0.113.7").await;
    let second = log_in_from(&svc, "wren", "198.51.100.9").await;
    log_in_from(&svc, "bram", "192.0.2.1").await;
    let list = |ctx: Context, player: &str, limit: u32, cursor: &str| {
        svc.list_sessions(
            ctx,
            ListSessionsRequest {
                limit,
                cursor: cursor.into(),
                player_id: player.into(),
            },
        )
    };
    let all = list(operator(), &wren, 0, "").await.unwrap();
    assert_eq!(all.sessions.len(), 2);
    assert!(all.next_cursor.is_empty());
    let addresses: Vec<&str> = all
        .sessions
        .iter()
        .map(|s| s.client_address.as_str())
        .collect();
    assert!(addresses.contains(&"203.0.113.7") && addresses.contains(&"198.51.100.9"));
    assert!(all.sessions.iter().all(|s| !s.ended
        && s.created_at_ms > 0
        && s.refreshed_at_ms >= s.created_at_ms
        && s.expires_at_ms > s.created_at_ms));
    // A refresh moves `refreshed_at_ms` and keeps the session listed once.
    tokio::time::sleep(Duration::from_millis(5)).await;
    refresh(&svc, first.refresh_token).await.unwrap();
    let after = list(operator(), &wren, 0, "").await.unwrap();
    assert_eq!(after.sessions.len(), 2);
    assert!(
        after
            .sessions
            .iter()
            .any(|s| s.refreshed_at_ms > s.created_at_ms)
    );
    // Pages: one at a time, the cursor leads to the other.
    let one = list(operator(), &wren, 1, "").await.unwrap();
    assert_eq!(one.sessions.len(), 1);
    let two = list(operator(), &wren, 1, &one.next_cursor).await.unwrap();
    assert_eq!(two.sessions.len(), 1);
    assert_ne!(one.sessions[0].session_id, two.sessions[0].session_id);
    let bram_sessions = list(operator(), &bram, 0, "").await.unwrap();
    assert_eq!(bram_sessions.sessions.len(), 1);
    assert_eq!(bram_sessions.sessions[0].client_address, "192.0.2.1");
    // Players never list sessions, not even their own; bad inputs are named.
    let e = list(as_player(&wren), &wren, 0, "").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = list(as_player(&wren), "", 0, "").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    for (player, limit, cursor) in [
        ("", 0, ""),
        ("not-an-id", 0, ""),
        (wren.as_str(), 101, ""),
        (wren.as_str(), 0, "../auth.users"),
    ] {
        let e = list(operator(), player, limit, cursor).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{player} {limit} {cursor}");
    }
    drop(second);
}

#[tokio::test]
async fn ending_a_session_refuses_its_tokens_at_once_and_only_that_players() {
    let (_dir, svc) = service().await;
    let wren = sign_up(&svc, "wren").await;
    let bram = sign_up(&svc, "bram").await;
    let stolen = log_in_from(&svc, "wren", "203.0.113.7").await;
    let kept = log_in_from(&svc, "wren", "198.51.100.9").await;
    let brams = log_in_from(&svc, "bram", "192.0.2.1").await;
    let (_, sid) = svc.authenticate(&stolen.access_token).unwrap();
    let (_, bram_sid) = svc.authenticate(&brams.access_token).unwrap();
    let end = |ctx: Context, player: &str, sid: &str| {
        svc.end_session(
            ctx,
            EndSessionRequest {
                session_id: sid.into(),
                player_id: player.into(),
            },
        )
    };
    // Bram's session named as Wren's is unknown; players cannot end sessions this way.
    let e = end(operator(), &wren, &bram_sid.0).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = end(as_player(&wren), &wren, &sid.0).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    for bad in ["", "x", "../auth.users.wren"] {
        let e = end(operator(), &wren, bad).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}");
    }
    svc.authenticate(&brams.access_token).unwrap();
    svc.authenticate(&stolen.access_token).unwrap();

    let ended = end(operator(), &wren, &sid.0).await.unwrap();
    let session = ended.session.unwrap();
    assert!(session.ended);
    assert_eq!(session.client_address, "203.0.113.7");
    // As a logout: its access token at once, its refresh token too; the other session lives.
    let e = svc.authenticate(&stolen.access_token).unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = refresh(&svc, stolen.refresh_token).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    svc.authenticate(&kept.access_token).unwrap();
    svc.authenticate(&brams.access_token).unwrap();
    // Again: nothing changes, same answer.
    let again = end(operator(), &wren, &sid.0).await.unwrap();
    assert_eq!(again.session.unwrap(), session);
    let listed = svc
        .list_sessions(
            operator(),
            ListSessionsRequest {
                player_id: wren,
                ..ListSessionsRequest::default()
            },
        )
        .await
        .unwrap();
    let ended: Vec<bool> = listed.sessions.iter().map(|s| s.ended).collect();
    assert_eq!(ended.iter().filter(|e| **e).count(), 1, "{ended:?}");
    drop(bram);
}

#[tokio::test]
async fn accounts_and_sessions_from_before_the_indexes_are_indexed_once_by_the_janitor() {
    let (_dir, svc) = service().await;
    let id = sign_up(&svc, "old_timer").await;
    log_in_from(&svc, "old_timer", "203.0.113.7").await;
    // As an older version left them: the account and its session, no index entries.
    let store = Arc::clone(&svc.store);
    store
        .delete(&format!("auth.players.{id}"), None)
        .await
        .unwrap();
    let entries = store
        .list(&format!("{}{id}.", admin::PLAYER_SESSIONS_PREFIX), None, 10)
        .await
        .unwrap()
        .entries;
    assert_eq!(entries.len(), 1);
    store.delete(&entries[0].0, None).await.unwrap();
    let find = || svc.find_player(operator(), FindPlayerRequest { query: id.clone() });
    let sessions = || {
        svc.list_sessions(
            operator(),
            ListSessionsRequest {
                limit: 0,
                cursor: String::new(),
                player_id: id.clone(),
            },
        )
    };
    assert_eq!(find().await.unwrap_err().code(), Code::NotFound);
    assert!(sessions().await.unwrap().sessions.is_empty());

    prune_expired(store.as_ref(), || false).await.unwrap();
    assert_eq!(find().await.unwrap().account.unwrap().username, "old_timer");
    assert_eq!(sessions().await.unwrap().sessions.len(), 1);
    // Once per store: a second pass finds the marker and writes nothing.
    store
        .delete(&format!("auth.players.{id}"), None)
        .await
        .unwrap();
    prune_expired(store.as_ref(), || false).await.unwrap();
    assert_eq!(find().await.unwrap_err().code(), Code::NotFound);
}
