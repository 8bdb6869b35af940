use super::*;
use crate::kit::status::Code;

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
    assert_eq!(prune_expired(store.as_ref(), || false).await.unwrap(), 3);
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
