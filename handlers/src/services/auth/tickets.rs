//! Stream tickets, for browsers: `EventSource` cannot send an `Authorization` header, so a player
//! trades their access token for a ticket that opens one stream from a URL. A ticket is a signed
//! token (its own audience: never an access token, nor one a ticket) that names the player,
//! expires within a minute, and is spent on first use: the use is recorded in the store, which
//! every replica shares, so it cannot open a second stream anywhere. It is bound to the login
//! session it was asked for in: after a logout it opens nothing. Issuing writes nothing, so
//! asking for tickets in a loop fills no store; only redeeming (opening a stream) does.
//!
//! Store layout: `auth.tickets.spent.<jti>`: until when (Unix ms) the spent ticket would have
//! been valid; pruned after that with the other expired auth records.

use std::time::Duration;

use bytes::Bytes;
use proto::aicore::auth::v1::IssueStreamTicketResponse;

use super::AuthService;
use crate::kit::context::{Context, Principal, SessionId};
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

pub(super) const SPENT_PREFIX: &str = "auth.tickets.spent.";

/// Spent ticket ids a process remembers (about 100 bytes each): more than a minute of tickets at
/// any rate a replica serves, so a replay within a ticket's life is answered from memory.
pub(super) const SPENT_CACHE: usize = 100_000;

/// The longest a ticket may live: it travels in a URL.
pub const MAX_TICKET_TTL: Duration = Duration::from_secs(60);

impl AuthService {
    /// A ticket for the calling player.
    pub(super) fn ticket_for(&self, ctx: &Context) -> Result<IssueStreamTicketResponse, Status> {
        let player = match &ctx.principal {
            Some(Principal::Player { player_id }) => player_id,
            Some(Principal::Service { .. }) => {
                return Err(Status::permission_denied(
                    "stream tickets are for players' browsers; a service sends its key",
                ));
            }
            None => return Err(Status::unauthenticated("log in first")),
        };
        // Only an access token proves a session; a ticket cannot buy another.
        let Some(SessionId(sid)) = &ctx.session else {
            return Err(Status::unauthenticated(
                "stream tickets are issued for an access token; send yours",
            ));
        };
        let ttl = self.config.stream_ticket_ttl.min(MAX_TICKET_TTL);
        let signed = self.keys.issue_ticket(player, sid, ttl)?;
        Ok(IssueStreamTicketResponse {
            ticket: signed.ticket,
            expires_at_ms: i64::try_from(signed.claims.exp)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        })
    }

    /// Spends `ticket`: the player it speaks for, once. A second use, here or on any replica
    /// sharing the store, is refused, as are expired, forged and malformed tickets. The refusal
    /// says why ([`Refusal`]): only guesses count against the caller's address as bad
    /// credentials, and replays of a spent ticket have a count of their own at the edge. A spent
    /// ticket this process has seen is refused from memory, before any store read or write. A
    /// ticket whose session was logged out is refused before it is spent.
    pub async fn redeem_ticket(
        &self,
        ticket: &str,
    ) -> Result<(Principal, SessionId), TicketRefused> {
        let claims = self.keys.verify_ticket(ticket).map_err(|status| {
            let why = if status.message().contains("expired") {
                Refusal::Expired
            } else {
                Refusal::Forged
            };
            TicketRefused { status, why }
        })?;
        let spent = |why| TicketRefused {
            status: Status::unauthenticated(
                "this stream ticket was already used; ask for a new one",
            ),
            why,
        };
        // Signed by us and seen spent: no store read or write for a replay.
        if self.spent_tickets.get(&claims.jti).is_some() {
            return Err(spent(Refusal::Spent { remembered: true }));
        }
        let logged_out = || TicketRefused {
            status: Status::unauthenticated("this session was logged out; log in again"),
            why: Refusal::LoggedOut,
        };
        if claims.sid.is_empty() || self.is_revoked(&claims.sid) {
            return Err(logged_out());
        }
        // The store, not this process's view: a logout on another replica may not have
        // reached it yet, and a stream outlives an access token's request by far.
        match self.active_session_player(&claims.sid).await {
            // The session's own player only: a ticket never names another player's session.
            Ok(Some(player)) if player == claims.sub => {}
            Ok(_) => return Err(logged_out()),
            Err(status) => {
                return Err(TicketRefused {
                    status,
                    why: Refusal::Unavailable,
                });
            }
        }
        // Kept well past any replica's view of the ticket's end, whatever their clocks say.
        let until_ms = (claims.exp + MAX_TICKET_TTL.as_secs()) * 1000;
        let key = format!("{SPENT_PREFIX}{}", claims.jti);
        let value = Bytes::from(until_ms.to_string());
        match self.store.put(&key, value, Some(0)).await {
            Ok(_) => {
                self.spent_tickets.insert(claims.jti, ());
                Ok((
                    Principal::Player {
                        player_id: claims.sub,
                    },
                    SessionId(claims.sid.into()),
                ))
            }
            Err(StoreError::Conflict { .. }) => {
                self.spent_tickets.insert(claims.jti, ());
                Err(spent(Refusal::Spent { remembered: false }))
            }
            Err(e) => Err(TicketRefused {
                status: e.into(),
                why: Refusal::Unavailable,
            }),
        }
    }
}

/// Why a ticket opened nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a ticket this server signed (or malformed): a guess.
    Forged,
    /// Signed here, past its life (a browser reconnecting late).
    Expired,
    /// Its session was logged out.
    LoggedOut,
    /// Used already; `remembered`: this process knew it without asking the store.
    Spent {
        /// Answered from memory (no store read or write).
        remembered: bool,
    },
    /// The store failed.
    Unavailable,
}

/// A ticket refused: the answer, and why.
#[derive(Debug)]
pub struct TicketRefused {
    /// The answer.
    pub status: Status,
    /// Why.
    pub why: Refusal,
}

impl TicketRefused {
    /// Whether the ticket was one this server signed (spent, expired, logged out), or the store
    /// failed: not a guess, so not counted against the caller's address as a bad credential.
    pub fn genuine(&self) -> bool {
        self.why != Refusal::Forged
    }
}

/// Deletes spent-ticket records past their ticket's life. Returns how many were removed.
pub(super) async fn prune_spent(
    store: &dyn Store,
    stop: &(impl Fn() -> bool + Send + Sync),
) -> Result<usize, StoreError> {
    let now = crate::kit::clock::now_ms();
    crate::kit::store::prune_prefix(
        store,
        SPENT_PREFIX,
        |v| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .is_none_or(|until| until <= now)
        },
        stop,
    )
    .await
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use proto::aicore::auth::v1::{
        AuthServiceHandler as _, LoginRequest, LogoutRequest, RegisterRequest,
    };

    use super::*;
    use crate::kit::status::Code;
    use crate::services::auth::AuthConfig;

    async fn service(ttl: Duration) -> (tempfile::TempDir, Arc<dyn Store>, AuthService) {
        let (dir, store) = crate::kit::testing::temp_store();
        let config = AuthConfig {
            stream_ticket_ttl: ttl,
            hash_concurrency: 1,
            ..AuthConfig::default()
        };
        let auth = AuthService::new(Arc::clone(&store), config).await.unwrap();
        (dir, store, auth)
    }

    /// A player logged in: the context an access token gives, and the refresh token.
    pub(in crate::services::auth) async fn logged_in(
        auth: &AuthService,
        name: &str,
    ) -> (Context, String) {
        let password = "s3cret-pass".to_owned();
        let reg = RegisterRequest {
            username: name.into(),
            password: password.clone(),
        };
        // A second login of the same player is a second session.
        let _ = auth.register(Context::default(), reg).await;
        let login = LoginRequest {
            username: name.into(),
            password,
            device_token: String::new(),
        };
        let login = auth.login(Context::default(), login).await.unwrap();
        let (principal, session) = auth.authenticate(&login.access_token).unwrap();
        let ctx = Context {
            principal: Some(principal),
            session: Some(session),
            ..Context::default()
        };
        (ctx, login.refresh_token)
    }

    fn player_of(ctx: &Context) -> &str {
        match &ctx.principal {
            Some(Principal::Player { player_id }) => player_id,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_ticket_opens_once_for_its_player_and_session() {
        let (_dir, store, auth) = service(Duration::from_secs(30)).await;
        let (ctx, _) = logged_in(&auth, "alice").await;
        let t = auth.ticket_for(&ctx).unwrap();
        let now = crate::kit::clock::now_ms() / 1000;
        assert!((now + 29..=now + 31).contains(&(t.expires_at_ms as u64 / 1000)));
        let (principal, session) = auth.redeem_ticket(&t.ticket).await.unwrap();
        assert_eq!(Some(&principal), ctx.principal.as_ref());
        assert_eq!(Some(&session), ctx.session.as_ref(), "bound to its session");
        let again = auth.redeem_ticket(&t.ticket).await.unwrap_err();
        assert!(again.genuine(), "a spent ticket is no guess");
        assert_eq!(again.why, Refusal::Spent { remembered: true });
        let again = again.status;
        assert_eq!(again.code(), Code::Unauthenticated);
        assert!(again.message().contains("already used"));
        assert!(!again.message().contains(&t.ticket), "never echoed");
        // Another replica on the same store refuses it too.
        let other = AuthService::new(Arc::clone(&store), AuthConfig::default())
            .await
            .unwrap();
        let there = other.redeem_ticket(&t.ticket).await.unwrap_err();
        assert_eq!(
            there.why,
            Refusal::Spent { remembered: false },
            "asked the store"
        );
        // Then each remembers it: a replay reads and writes nothing (the record could be gone).
        store
            .delete(
                &format!(
                    "{SPENT_PREFIX}{}",
                    auth.keys.verify_ticket(&t.ticket).unwrap().jti
                ),
                None,
            )
            .await
            .unwrap();
        for replica in [&auth, &other] {
            let again = replica.redeem_ticket(&t.ticket).await.unwrap_err();
            assert_eq!(again.why, Refusal::Spent { remembered: true });
        }
        // A fresh ticket works on the other replica.
        let t2 = auth.ticket_for(&ctx).unwrap();
        assert!(other.redeem_ticket(&t2.ticket).await.is_ok());
    }

    #[tokio::test]
    async fn a_logout_recalls_the_tickets_of_its_session_only() {
        let (_dir, store, auth) = service(Duration::from_secs(30)).await;
        let (phone, phone_refresh) = logged_in(&auth, "bob").await;
        let (laptop, _) = logged_in(&auth, "bob").await;
        assert_eq!(player_of(&phone), player_of(&laptop));
        let from_phone = auth.ticket_for(&phone).unwrap();
        let from_laptop = auth.ticket_for(&laptop).unwrap();
        // Another replica issues one too, before the logout.
        let other = AuthService::new(Arc::clone(&store), AuthConfig::default())
            .await
            .unwrap();
        let from_phone_elsewhere = auth.ticket_for(&phone).unwrap();
        let logout = LogoutRequest {
            refresh_token: phone_refresh,
        };
        auth.logout(phone.clone(), logout).await.unwrap();
        let refused = auth.redeem_ticket(&from_phone.ticket).await.unwrap_err();
        assert!(refused.genuine(), "no guess");
        assert_eq!(refused.status.code(), Code::Unauthenticated);
        assert!(refused.status.message().contains("logged out"));
        // The other replica has not synced yet: the store still says no.
        let phone_sid = &phone.session.as_ref().unwrap().0;
        assert!(!other.is_revoked(phone_sid));
        let refused = other
            .redeem_ticket(&from_phone_elsewhere.ticket)
            .await
            .unwrap_err();
        assert!(refused.status.message().contains("logged out"));
        // The player's other session is untouched.
        auth.redeem_ticket(&from_laptop.ticket).await.unwrap();
        // Open streams are told (here at once, elsewhere after a sync): `watch::tests`.
    }

    #[tokio::test]
    async fn services_strangers_and_sessionless_callers_get_no_ticket() {
        let (_dir, _store, auth) = service(Duration::from_secs(30)).await;
        let svc = Context {
            principal: Some(Principal::Service {
                name: "gs".into(),
                scopes: Arc::from(vec!["*".to_owned()]),
            }),
            ..Context::default()
        };
        assert_eq!(
            auth.ticket_for(&svc).unwrap_err().code(),
            Code::PermissionDenied
        );
        assert_eq!(
            auth.ticket_for(&Context::default()).unwrap_err().code(),
            Code::Unauthenticated
        );
        // A player principal without a proven session (a ticket's stream) buys no ticket.
        let (mut ctx, _) = logged_in(&auth, "carol").await;
        let carols = ctx.session.take().unwrap();
        // A ticket naming carol's live session for another player opens nothing.
        let crossed = auth
            .keys
            .issue_ticket("p1", &carols.0, Duration::from_secs(30))
            .unwrap();
        let refused = auth.redeem_ticket(&crossed.ticket).await.unwrap_err();
        assert_eq!(refused.status.code(), Code::Unauthenticated);
        let own = auth
            .keys
            .issue_ticket(player_of(&ctx), &carols.0, Duration::from_secs(30))
            .unwrap();
        auth.redeem_ticket(&own.ticket).await.unwrap();
        assert_eq!(
            auth.ticket_for(&ctx).unwrap_err().code(),
            Code::Unauthenticated
        );
        // An access token is no ticket, and trying one is counted as a guess.
        let access = auth.keys.issue("p1", "s1").unwrap();
        assert!(!auth.redeem_ticket(&access).await.unwrap_err().genuine());
        // A ticket signed without a session (an older server's) opens nothing.
        let unbound = auth
            .keys
            .issue_ticket("p1", "", Duration::from_secs(30))
            .unwrap();
        let refused = auth.redeem_ticket(&unbound.ticket).await.unwrap_err();
        assert_eq!(refused.status.code(), Code::Unauthenticated);
        // A session nobody logged in to opens nothing either.
        let made_up = auth
            .keys
            .issue_ticket("p1", "0123abcd", Duration::from_secs(30))
            .unwrap();
        assert!(auth.redeem_ticket(&made_up.ticket).await.is_err());
    }

    #[tokio::test]
    async fn expired_tickets_are_refused_and_spent_records_pruned() {
        let (_dir, store, auth) = service(Duration::from_secs(1)).await;
        let (ctx, _) = logged_in(&auth, "dave").await;
        let t = auth.ticket_for(&ctx).unwrap();
        auth.redeem_ticket(&t.ticket).await.unwrap();
        let late = auth.ticket_for(&ctx).unwrap();
        // 1 s of life and 1 s of leeway, in whole seconds.
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let e = auth.redeem_ticket(&late.ticket).await.unwrap_err();
        assert!(e.genuine());
        assert_eq!(e.why, Refusal::Expired);
        assert!(
            e.status.message().contains("expired"),
            "{}",
            e.status.message()
        );
        // The spent record outlives the ticket (by the longest a ticket may live), then goes.
        assert_eq!(prune_spent(store.as_ref(), &|| false).await.unwrap(), 0);
        store
            .put(&format!("{SPENT_PREFIX}old"), Bytes::from("1"), None)
            .await
            .unwrap();
        let pruned = prune_spent(store.as_ref(), &|| false).await.unwrap();
        assert_eq!(pruned, 1, "only the long-past one");
    }
}
