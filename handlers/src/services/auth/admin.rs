//! Operators' lookups (`ACCESS_ADMIN` in the .proto, so no player and no `*` or `auth` key ever
//! reaches them): an account by username or player id, a player's login sessions, and ending one
//! of them through the same revocation Logout uses.
//!
//! Two indexes make these reads rather than scans of every account or session:
//! - `auth.players.<player_id>`: the account's key (its lowercase username), written at
//!   registration, and at login for accounts made before the index existed
//! - `auth.player_sessions.<player_id>.<sid>`: until when the session can live (Unix ms), written
//!   at login and at each refresh, pruned with the sessions once past it
//!
//! A store written by an older version has accounts and sessions but no indexes: [`backfill`]
//! writes them once, from the janitor, so an upgrade needs no step of its own.

use bytes::Bytes;
use proto::aicore::auth::v1::{
    Account, EndSessionRequest, EndSessionResponse, FindPlayerRequest, FindPlayerResponse,
    ListSessionsRequest, ListSessionsResponse, LoginSession,
};

use super::{AuthService, SESSION_PREFIX, SessionRecord, UserRecord, parse};
use crate::kit::context::{Context, Principal, validate_player_id};
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

const PLAYERS_PREFIX: &str = "auth.players.";
pub(super) const PLAYER_SESSIONS_PREFIX: &str = "auth.player_sessions.";

/// Sessions listed when the request does not say; and the most it may ask for.
const DEFAULT_SESSIONS: u32 = 50;
const MAX_SESSIONS: u32 = 100;

/// Records that `player_id`'s account is `auth.users.<user_key>`. An existing entry is kept:
/// player ids are never reused.
pub(super) async fn index_account(
    store: &dyn Store,
    player_id: &str,
    user_key: &str,
) -> Result<(), Status> {
    let key = format!("{PLAYERS_PREFIX}{player_id}");
    match store
        .put(&key, Bytes::from(user_key.to_owned()), Some(0))
        .await
    {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Records that session `sid` of `player_id` may live until `until_ms`.
pub(super) async fn index_session(
    store: &dyn Store,
    player_id: &str,
    sid: &str,
    until_ms: u64,
) -> Result<(), Status> {
    store
        .put(
            &format!("{PLAYER_SESSIONS_PREFIX}{player_id}.{sid}"),
            Bytes::from(until_ms.to_string()),
            None,
        )
        .await?;
    Ok(())
}

/// Set once a store's accounts and sessions made before the indexes have been indexed.
const BACKFILLED: &str = "auth.index_backfilled";

/// Indexes every account, and every live session, that has no index entry yet, once per store
/// (the marker above): the janitor calls it until it has finished. Safe to race with another
/// replica and with logins: an account's entry is written only if absent, and a session's says
/// the same thing whoever writes it. Returns how many entries it wrote.
pub(super) async fn backfill(
    store: &dyn Store,
    stop: impl Fn() -> bool + Send + Sync,
) -> Result<usize, StoreError> {
    if store.get(BACKFILLED).await?.is_some() {
        return Ok(0);
    }
    let now = crate::kit::clock::now_ms();
    let mut written = 0;
    for prefix in [super::USERS_PREFIX, SESSION_PREFIX] {
        let mut after: Option<String> = None;
        loop {
            if stop() {
                return Ok(written);
            }
            let page = store
                .list(prefix, after.as_deref(), crate::kit::store::PRUNE_BATCH)
                .await?;
            for (key, v) in &page.entries {
                let id = &key[prefix.len()..];
                let (entry, value, expected) = if prefix == SESSION_PREFIX {
                    let Ok(s) = parse::<SessionRecord>(&v.value) else {
                        continue;
                    };
                    if s.revoked || (s.expires_ms != 0 && s.expires_ms <= now) {
                        continue;
                    }
                    // A session written before it had an expiry is never pruned; nor is its entry.
                    let until = if s.expires_ms == 0 {
                        u64::MAX
                    } else {
                        s.expires_ms
                    };
                    let entry = format!("{PLAYER_SESSIONS_PREFIX}{}.{id}", s.player_id);
                    (entry, until.to_string(), None)
                } else {
                    let Ok(u) = parse::<UserRecord>(&v.value) else {
                        continue;
                    };
                    (
                        format!("{PLAYERS_PREFIX}{}", u.player_id),
                        id.to_owned(),
                        Some(0),
                    )
                };
                match store.put(&entry, Bytes::from(value), expected).await {
                    Ok(_) => written += 1,
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    store
        .put(BACKFILLED, Bytes::from_static(b"1"), None)
        .await?;
    Ok(written)
}

/// Whether an index entry of the sessions is past its session's life.
pub(super) fn session_entry_expired(value: &[u8], now_ms: u64) -> bool {
    std::str::from_utf8(value)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .is_none_or(|until| until <= now_ms)
}

/// Session ids are 32 lowercase hex digits, as player ids are.
fn validate_session_id(sid: &str) -> Result<(), Status> {
    validate_player_id(sid).map_err(|_| Status::invalid_argument("sessionId is not a session id"))
}

fn millis(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn shown(sid: &str, s: &SessionRecord) -> LoginSession {
    LoginSession {
        session_id: sid.to_owned(),
        created_at_ms: millis(s.created_ms),
        refreshed_at_ms: millis(s.refreshed_ms.max(s.created_ms)),
        expires_at_ms: millis(s.expires_ms),
        ended: s.revoked,
        client_address: s.client.clone(),
    }
}

/// The access rule already keeps players out; this says so again where the data is.
fn operators_only(ctx: &Context) -> Result<(), Status> {
    match ctx.principal {
        Some(Principal::Service { .. }) => Ok(()),
        Some(Principal::Player { .. }) => Err(Status::permission_denied(
            "an operators' method: players cannot call it",
        )),
        None => Err(Status::unauthenticated("authentication required")),
    }
}

/// The player a method acts on: named by the operator.
fn operator_target(ctx: &Context, requested: &str) -> Result<String, Status> {
    operators_only(ctx)?;
    ctx.player(requested)
}

impl AuthService {
    pub(super) async fn find_player_admin(
        &self,
        ctx: Context,
        req: FindPlayerRequest,
    ) -> Result<FindPlayerResponse, Status> {
        operators_only(&ctx)?;
        let query = req.query.trim();
        if query.is_empty() {
            return Err(Status::invalid_argument(
                "query is required: a username or a player id",
            ));
        }
        let missing = || Status::not_found("no player has that username or id");
        let user_key = if validate_player_id(query).is_ok() {
            match self.store.get(&format!("{PLAYERS_PREFIX}{query}")).await? {
                Some(v) => String::from_utf8(v.value.to_vec()).map_err(Status::internal)?,
                // A 32-hex-digit username is possible too.
                None => query.to_ascii_lowercase(),
            }
        } else {
            super::validate_username(query).map_err(|_| missing())?
        };
        let Some(v) = self.store.get(&format!("auth.users.{user_key}")).await? else {
            return Err(missing());
        };
        let user: UserRecord = parse(&v.value)?;
        Ok(FindPlayerResponse {
            account: Some(Account {
                player_id: user.player_id,
                username: user.username,
                created_at_ms: millis(user.created_ms),
            }),
        })
    }

    pub(super) async fn list_sessions_admin(
        &self,
        ctx: Context,
        req: ListSessionsRequest,
    ) -> Result<ListSessionsResponse, Status> {
        let player_id = operator_target(&ctx, &req.player_id)?;
        let limit = match req.limit {
            0 => DEFAULT_SESSIONS,
            n if n <= MAX_SESSIONS => n,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "limit must be 1 to {MAX_SESSIONS} (0 means {DEFAULT_SESSIONS})"
                )));
            }
        };
        let prefix = format!("{PLAYER_SESSIONS_PREFIX}{player_id}.");
        let after = if req.cursor.is_empty() {
            None
        } else {
            validate_session_id(&req.cursor)
                .map_err(|_| Status::invalid_argument("cursor is not one this method gave"))?;
            Some(format!("{prefix}{}", req.cursor))
        };
        let page = self
            .store
            .list(&prefix, after.as_deref(), limit as usize)
            .await?;
        let mut sessions = Vec::with_capacity(page.entries.len());
        for (key, _) in &page.entries {
            let Some(sid) = key.strip_prefix(&prefix) else {
                continue;
            };
            // An entry whose session was pruned already waits for its own prune.
            if let Some(v) = self.store.get(&format!("{SESSION_PREFIX}{sid}")).await? {
                let record: SessionRecord = parse(&v.value)?;
                if record.player_id == player_id {
                    sessions.push(shown(sid, &record));
                }
            }
        }
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at_ms));
        let next_cursor = page
            .next_after
            .as_deref()
            .and_then(|k| k.strip_prefix(&prefix))
            .map(str::to_owned)
            .unwrap_or_default();
        Ok(ListSessionsResponse {
            sessions,
            next_cursor,
        })
    }

    pub(super) async fn end_session_admin(
        &self,
        ctx: Context,
        req: EndSessionRequest,
    ) -> Result<EndSessionResponse, Status> {
        let player_id = operator_target(&ctx, &req.player_id)?;
        if req.session_id.is_empty() {
            return Err(Status::invalid_argument("sessionId is required"));
        }
        validate_session_id(&req.session_id)?;
        let key = format!("{SESSION_PREFIX}{}", req.session_id);
        let missing = || Status::not_found("this player has no such session");
        let Some(v) = self.store.get(&key).await? else {
            return Err(missing());
        };
        let record: SessionRecord = parse(&v.value)?;
        // Another player's session is as unknown as one that never was.
        if record.player_id != player_id {
            return Err(missing());
        }
        if !record.revoked {
            self.revoke_session(&req.session_id).await?;
        }
        let after = match self.store.get(&key).await? {
            Some(v) => parse::<SessionRecord>(&v.value)?,
            None => SessionRecord {
                revoked: true,
                ..record
            },
        };
        Ok(EndSessionResponse {
            session: Some(shown(&req.session_id, &after)),
        })
    }
}
