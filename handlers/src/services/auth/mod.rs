//! `aicore.auth.v1.AuthService`: accounts, logins, rotating refresh tokens, revocation.
//!
//! Store layout (all JSON):
//! - `auth.users.<username>`: the account (argon2id hash, player id)
//! - `auth.sessions.<sid>`: one login session, revocable as a whole, alive until its newest
//!   refresh token expires
//! - `auth.refresh.<sha256(token)>`: one refresh token of a session; spent once used
//! - `auth.players.<player_id>`, `auth.player_sessions.<player_id>.<sid>`: indexes for the
//!   operators' lookups (see `admin`)
//! - `auth.signing.*`: token signing keys (see `tokens`)
//! - `auth.tickets.spent.*`: stream tickets already used (see `tickets`)
//! - `apikey.*`: service API keys (see `keys`)
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

mod admin;
mod config;
pub mod guard;
mod passwords;
mod prune;
mod tickets;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use proto::aicore::auth::v1::{
    AuthServiceHandler, EndSessionRequest, EndSessionResponse, FindPlayerRequest,
    FindPlayerResponse, IntrospectRequest, IntrospectResponse, IssueStreamTicketRequest,
    IssueStreamTicketResponse, ListSessionsRequest, ListSessionsResponse, LoginRequest,
    LoginResponse, LogoutRequest, LogoutResponse, RefreshRequest, RefreshResponse, RegisterRequest,
    RegisterResponse,
};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use config::AuthConfig;
pub use passwords::Passwords;
pub use prune::prune_expired;
pub use tickets::{MAX_TICKET_TTL, Refusal, TicketRefused};
pub use watch::SessionWatch;

use crate::kit::context::{Context, Principal, SessionId};
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};
use crate::kit::tokens::TokenKeys;

#[derive(Serialize, Deserialize)]
struct UserRecord {
    player_id: String,
    username: String,
    password_hash: String,
    created_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    player_id: String,
    revoked: bool,
    created_ms: u64,
    /// When its newest refresh token expires: after that the session is dead and pruned. Zero
    /// on records written before this field existed; those are never pruned.
    #[serde(default)]
    expires_ms: u64,
    /// When it last refreshed its tokens (zero: never, or written before this field existed).
    #[serde(default)]
    refreshed_ms: u64,
    /// The client address of the login, for operators ending a stolen session.
    #[serde(default)]
    client: String,
}

#[derive(Serialize, Deserialize)]
struct RefreshRecord {
    player_id: String,
    sid: String,
    expires_ms: u64,
    spent: bool,
}

/// Verified tokens kept, so each is checked for its signature once rather than per request.
const VERIFIED_CACHE: usize = 50_000;

/// The auth service; also what the edge verifies access tokens with.
pub struct AuthService {
    store: Arc<dyn Store>,
    keys: TokenKeys,
    /// token -> (player id, session, expiry in Unix seconds). Ed25519 verification is the
    /// costliest step of a request; a player sends the same token for its whole lifetime.
    verified: quick_cache::sync::Cache<Arc<str>, (Arc<str>, Arc<str>, u64)>,
    /// Sessions revoked while access tokens issued in them may still be alive: session id ->
    /// until when (Unix ms). Mirrors `auth.revoked.*` in the store, refreshed by
    /// [`AuthService::sync_revoked`]; the revoking process adds at once.
    revoked: std::sync::RwLock<HashMap<String, u64>>,
    /// Its epoch grows after a sync gap that may have missed logouts (see `watch`).
    revocations: tokio::sync::watch::Sender<watch::Epoch>,
    /// Open streams' watches by session, woken when theirs joins `revoked` (here or, after a
    /// sync, on another replica).
    watchers: watch::Watchers,
    /// Ids of stream tickets this process saw spent (it spent them, or the store said so): a
    /// replay is answered from here with no store read or write. Bounded; one that fell out is
    /// asked of the store again, which still refuses it.
    spent_tickets: quick_cache::sync::Cache<String, ()>,
    /// When the revoked set was last read whole from the store (Unix ms).
    synced_ms: std::sync::atomic::AtomicU64,
    /// Failed logins, and device tokens.
    guard: guard::LoginGuard,
    passwords: Passwords,
    config: AuthConfig,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn json<T: Serialize>(v: &T) -> Result<Bytes, Status> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(Status::internal)
}

fn parse<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(b).map_err(Status::internal)
}

const SESSION_PREFIX: &str = "auth.sessions.";
const USERS_PREFIX: &str = "auth.users.";
/// `auth.revoked.<sid>`: until when (Unix ms) access tokens of a revoked session must be refused.
const REVOKED_PREFIX: &str = "auth.revoked.";
const REFRESH_PREFIX: &str = "auth.refresh.";

fn refresh_key(token: &str) -> String {
    format!("{REFRESH_PREFIX}{:x}", Sha256::digest(token.as_bytes()))
}

fn validate_username(u: &str) -> Result<String, Status> {
    let ok_chars = u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if (3..=32).contains(&u.len()) && ok_chars {
        Ok(u.to_ascii_lowercase())
    } else {
        Err(Status::invalid_argument(
            "username must be 3 to 32 characters of letters, digits, '_' or '-'",
        ))
    }
}

fn validate_password(p: &str) -> Result<(), Status> {
    let n = p.chars().count();
    if (8..=128).contains(&n) {
        Ok(())
    } else {
        Err(Status::invalid_argument(
            "password must be 8 to 128 characters",
        ))
    }
}

/// Refresh tokens are 32 random bytes, base64url: 43 characters.
fn plausible_refresh_token(t: &str) -> bool {
    t.len() == 43
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

struct Issued {
    access_token: String,
    refresh_token: String,
    expires_in_seconds: u32,
}

impl AuthService {
    /// Loads (or creates) the signing keys and prepares the password hasher.
    pub async fn new(store: Arc<dyn Store>, config: AuthConfig) -> Result<Self, StoreError> {
        let keys = TokenKeys::load_or_create(store.as_ref(), config.access_ttl).await?;
        let passwords = Passwords::new(config.hash_concurrency).map_err(StoreError::Backend)?;
        let guard = guard::LoginGuard::open(store.as_ref(), config.login_limits()).await?;
        Ok(AuthService {
            store,
            keys,
            passwords,
            verified: quick_cache::sync::Cache::new(VERIFIED_CACHE),
            spent_tickets: quick_cache::sync::Cache::new(tickets::SPENT_CACHE),
            revoked: std::sync::RwLock::new(HashMap::new()),
            revocations: tokio::sync::watch::Sender::new(0),
            watchers: watch::Watchers::default(),
            synced_ms: std::sync::atomic::AtomicU64::new(crate::kit::clock::now_ms()),
            guard,
            config,
        })
    }

    /// Verifies an access token into the principal it speaks for and its login session (no
    /// I/O).
    pub fn authenticate(&self, token: &str) -> Result<(Principal, SessionId), Status> {
        let now = crate::kit::clock::now_ms() / 1000;
        if let Some((player, sid, exp)) = self.verified.get(token) {
            if now <= exp + crate::kit::tokens::LEEWAY_SECS {
                self.check_not_revoked(&sid)?;
                let player_id = player.to_string();
                return Ok((Principal::Player { player_id }, SessionId(sid)));
            }
            self.verified.remove(token);
        }
        let claims = self.keys.verify(token)?;
        self.check_not_revoked(&claims.sid)?;
        let sid: Arc<str> = Arc::from(claims.sid.as_str());
        self.verified.insert(
            Arc::from(token),
            (Arc::from(claims.sub.as_str()), Arc::clone(&sid), claims.exp),
        );
        let player_id = claims.sub;
        Ok((Principal::Player { player_id }, SessionId(sid)))
    }

    /// Whether session `sid` was logged out (as this process knows: at once for its own
    /// logouts, after the next sync for other replicas').
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(sid)
    }

    /// How long a revoked entry lives: as long as the session's access tokens could.
    fn revoked_for_ms(&self) -> u64 {
        u64::try_from(self.config.access_ttl.as_millis()).unwrap_or(u64::MAX / 2)
            + crate::kit::tokens::LEEWAY_SECS * 1000
    }

    async fn issue(&self, player_id: &str, sid: &str) -> Result<Issued, Status> {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let refresh_token = URL_SAFE_NO_PAD.encode(raw);
        let record = RefreshRecord {
            player_id: player_id.into(),
            sid: sid.into(),
            expires_ms: self.refresh_expiry(),
            spent: false,
        };
        self.store
            .put(&refresh_key(&refresh_token), json(&record)?, Some(0))
            .await?;
        Ok(Issued {
            access_token: self.keys.issue(player_id, sid)?,
            refresh_token,
            expires_in_seconds: u32::try_from(self.keys.ttl().as_secs()).unwrap_or(u32::MAX),
        })
    }

    fn check_not_revoked(&self, sid: &str) -> Result<(), Status> {
        if self.is_revoked(sid) {
            return Err(Status::unauthenticated(
                "this session was logged out; log in again",
            ));
        }
        Ok(())
    }

    async fn revoke_session(&self, sid: &str) -> Result<(), Status> {
        // Access tokens of the session are refused from now on, here at once, elsewhere after
        // the next sync. Recorded before the session itself, so a crash in between leaves the
        // tokens refused rather than alive.
        let until = crate::kit::clock::now_ms() + self.revoked_for_ms();
        self.store
            .put(
                &format!("{REVOKED_PREFIX}{sid}"),
                Bytes::from(until.to_string()),
                None,
            )
            .await?;
        self.revoked
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sid.to_owned(), until);
        self.tell_watchers([sid]);
        // Revocation must win over concurrent writes: `update_session` retries on conflict.
        self.update_session(sid, |s| !std::mem::replace(&mut s.revoked, true))
            .await
    }

    /// Reloads the revoked-session set from the store (other replicas' logouts and reuse
    /// revocations), dropping entries whose tokens have all expired.
    pub async fn sync_revoked(&self) -> Result<(), StoreError> {
        let now = crate::kit::clock::now_ms();
        let mut fresh = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .list(REVOKED_PREFIX, after.as_deref(), 1000)
                .await?;
            for (key, v) in &page.entries {
                let until = std::str::from_utf8(&v.value)
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(u64::MAX);
                if let Some(sid) = key.strip_prefix(REVOKED_PREFIX)
                    && until > now
                {
                    fresh.insert(sid.to_owned(), until);
                }
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        let news: Vec<String> = fresh
            .keys()
            .filter(|sid| !revoked.contains_key(*sid))
            .cloned()
            .collect();
        // Keep what this process added since the listing began.
        revoked.retain(|sid, until| *until > now && !fresh.contains_key(sid));
        revoked.extend(fresh);
        drop(revoked);
        // Entries written since the last whole read are all still there unless that was more
        // than their lifetime ago (half of it, for clocks that disagree): else open streams
        // must ask the store about their sessions.
        let last = self
            .synced_ms
            .swap(now, std::sync::atomic::Ordering::Relaxed);
        if now.saturating_sub(last) > self.revoked_for_ms() / 2 {
            self.revocations.send_modify(|epoch| *epoch += 1);
        }
        self.tell_watchers(news.iter().map(String::as_str));
        Ok(())
    }

    /// When a refresh token issued now expires.
    fn refresh_expiry(&self) -> u64 {
        crate::kit::clock::now_ms()
            .saturating_add(u64::try_from(self.config.refresh_ttl.as_millis()).unwrap_or(u64::MAX))
    }

    /// Keeps the session alive as long as the refresh token about to be issued. Done before the
    /// token is written, so a crash in between leaves a longer-lived session, never a token whose
    /// session was pruned under it.
    async fn extend_session(&self, player_id: &str, sid: &str) -> Result<(), Status> {
        let until = self.refresh_expiry();
        let now = crate::kit::clock::now_ms();
        admin::index_session(self.store.as_ref(), player_id, sid, until).await?;
        self.update_session(sid, |s| {
            let extend = !s.revoked && s.expires_ms < until;
            if extend {
                s.expires_ms = until;
                s.refreshed_ms = now;
            }
            extend
        })
        .await
    }

    /// Read, change (if `change` says it changed something), compare-and-set; retried a few
    /// times on concurrent writes. A missing session is left alone.
    async fn update_session(
        &self,
        sid: &str,
        change: impl Fn(&mut SessionRecord) -> bool,
    ) -> Result<(), Status> {
        let key = format!("{SESSION_PREFIX}{sid}");
        for _ in 0..5 {
            let Some(v) = self.store.get(&key).await? else {
                return Ok(());
            };
            let mut session: SessionRecord = parse(&v.value)?;
            if !change(&mut session) {
                return Ok(());
            }
            match self.store.put(&key, json(&session)?, Some(v.version)).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::aborted("session changed concurrently; try again"))
    }

    async fn session_active(&self, sid: &str) -> Result<bool, Status> {
        Ok(self.active_session_player(sid).await?.is_some())
    }

    /// The player of session `sid`, unless it was logged out (or never was).
    async fn active_session_player(&self, sid: &str) -> Result<Option<String>, Status> {
        match self.store.get(&format!("{SESSION_PREFIX}{sid}")).await? {
            Some(v) => {
                let session = parse::<SessionRecord>(&v.value)?;
                Ok((!session.revoked).then_some(session.player_id))
            }
            None => Ok(None),
        }
    }
}

impl AuthServiceHandler for AuthService {
    type Context = Context;
    type Error = Status;

    async fn register(
        &self,
        ctx: Context,
        req: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        let username = validate_username(&req.username)?;
        validate_password(&req.password)?;
        let key = format!("auth.users.{username}");
        if self.store.get(&key).await?.is_some() {
            return Err(Status::already_exists("username is taken"));
        }
        let password_hash = self.passwords.hash(ctx.client_addr, req.password).await?;
        let player_id = uuid::Uuid::new_v4().simple().to_string();
        let record = UserRecord {
            player_id: player_id.clone(),
            username: req.username,
            password_hash,
            created_ms: crate::kit::clock::now_ms(),
        };
        match self.store.put(&key, json(&record)?, Some(0)).await {
            Ok(_) => {
                admin::index_account(self.store.as_ref(), &player_id, &username).await?;
                Ok(RegisterResponse { player_id })
            }
            Err(StoreError::Conflict { .. }) => Err(Status::already_exists("username is taken")),
            Err(e) => Err(e.into()),
        }
    }

    async fn login(&self, ctx: Context, req: LoginRequest) -> Result<LoginResponse, Status> {
        let bad = || Status::unauthenticated("invalid username or password");
        // A form sent empty is a client's mistake, not a guess: said as such, and not counted.
        for (field, value) in [("username", &req.username), ("password", &req.password)] {
            if value.is_empty() {
                return Err(Status::invalid_argument(format!("{field} is required")));
            }
        }
        let Ok(username) = validate_username(&req.username) else {
            return Err(bad());
        };
        if req.password.is_empty() || req.password.len() > 512 {
            return Err(bad());
        }
        let attempt = self
            .guard
            .admit(&username, ctx.client_addr, &req.device_token)?;
        let user = match self.store.get(&format!("auth.users.{username}")).await? {
            Some(v) => Some(parse::<UserRecord>(&v.value)?),
            None => None,
        };
        let phc = user.as_ref().map(|u| u.password_hash.clone());
        if !self
            .passwords
            .verify(ctx.client_addr, req.password, phc)
            .await?
        {
            self.guard.failed(&attempt);
            return Err(bad());
        }
        self.guard.succeeded(&attempt);
        let user = user.ok_or_else(bad)?;
        let sid = uuid::Uuid::new_v4().simple().to_string();
        let session = SessionRecord {
            player_id: user.player_id.clone(),
            revoked: false,
            created_ms: crate::kit::clock::now_ms(),
            expires_ms: self.refresh_expiry(),
            refreshed_ms: 0,
            client: ctx.client_addr.map(|a| a.to_string()).unwrap_or_default(),
        };
        // Indexed first, so no session is ever missing from its player's list.
        let store = self.store.as_ref();
        admin::index_account(store, &user.player_id, &username).await?;
        admin::index_session(store, &user.player_id, &sid, session.expires_ms).await?;
        store
            .put(&format!("{SESSION_PREFIX}{sid}"), json(&session)?, Some(0))
            .await?;
        let issued = self.issue(&user.player_id, &sid).await?;
        Ok(LoginResponse {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            expires_in_seconds: issued.expires_in_seconds,
            player_id: user.player_id,
            token_type: "Bearer".into(),
            device_token: self.guard.issue(&username),
        })
    }

    async fn refresh(&self, _ctx: Context, req: RefreshRequest) -> Result<RefreshResponse, Status> {
        let bad = || Status::unauthenticated("invalid refresh token");
        if req.refresh_token.is_empty() {
            return Err(Status::invalid_argument(
                "refreshToken is required: the one Login or the last Refresh gave",
            ));
        }
        if !plausible_refresh_token(&req.refresh_token) {
            return Err(bad());
        }
        let key = refresh_key(&req.refresh_token);
        let Some(v) = self.store.get(&key).await? else {
            return Err(bad());
        };
        let mut record: RefreshRecord = parse(&v.value)?;
        if record.expires_ms <= crate::kit::clock::now_ms() {
            return Err(Status::unauthenticated(
                "refresh token expired; log in again",
            ));
        }
        if !self.session_active(&record.sid).await? {
            return Err(Status::unauthenticated("session revoked; log in again"));
        }
        let reuse = || Status::unauthenticated("refresh token already used; session revoked");
        if record.spent {
            // A spent token presented again means it leaked: end the whole session (OAuth BCP).
            tracing::warn!(player = %record.player_id, "refresh token reuse; revoking the session");
            self.revoke_session(&record.sid).await?;
            return Err(reuse());
        }
        record.spent = true;
        match self.store.put(&key, json(&record)?, Some(v.version)).await {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {
                tracing::warn!(player = %record.player_id, "concurrent refresh; revoking the session");
                self.revoke_session(&record.sid).await?;
                return Err(reuse());
            }
            Err(e) => return Err(e.into()),
        }
        self.extend_session(&record.player_id, &record.sid).await?;
        let issued = self.issue(&record.player_id, &record.sid).await?;
        Ok(RefreshResponse {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            expires_in_seconds: issued.expires_in_seconds,
            player_id: record.player_id,
            token_type: "Bearer".into(),
        })
    }

    async fn logout(&self, ctx: Context, req: LogoutRequest) -> Result<LogoutResponse, Status> {
        if req.refresh_token.is_empty() {
            return Err(Status::invalid_argument(
                "refreshToken is required: the one Login or Refresh gave this session",
            ));
        }
        if !plausible_refresh_token(&req.refresh_token) {
            return Err(Status::invalid_argument(
                "refreshToken is not a refresh token",
            ));
        }
        let Some(v) = self.store.get(&refresh_key(&req.refresh_token)).await? else {
            return Err(Status::not_found("unknown refresh token"));
        };
        let record: RefreshRecord = parse(&v.value)?;
        ctx.player(&record.player_id)?;
        self.revoke_session(&record.sid).await?;
        Ok(LogoutResponse {})
    }

    async fn issue_stream_ticket(
        &self,
        ctx: Context,
        _req: IssueStreamTicketRequest,
    ) -> Result<IssueStreamTicketResponse, Status> {
        self.ticket_for(&ctx)
    }

    async fn find_player(
        &self,
        ctx: Context,
        req: FindPlayerRequest,
    ) -> Result<FindPlayerResponse, Status> {
        self.find_player_admin(ctx, req).await
    }

    async fn list_sessions(
        &self,
        ctx: Context,
        req: ListSessionsRequest,
    ) -> Result<ListSessionsResponse, Status> {
        self.list_sessions_admin(ctx, req).await
    }

    async fn end_session(
        &self,
        ctx: Context,
        req: EndSessionRequest,
    ) -> Result<EndSessionResponse, Status> {
        self.end_session_admin(ctx, req).await
    }

    async fn introspect(
        &self,
        _ctx: Context,
        req: IntrospectRequest,
    ) -> Result<IntrospectResponse, Status> {
        if req.token.is_empty() {
            return Err(Status::invalid_argument("token is required"));
        }
        let Ok(claims) = self.keys.verify(&req.token) else {
            return Ok(IntrospectResponse::default());
        };
        let active = self.session_active(&claims.sid).await?;
        Ok(IntrospectResponse {
            active,
            player_id: claims.sub,
            issued_at_ms: i64::try_from(claims.iat)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
            expires_at_ms: i64::try_from(claims.exp)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
            key_id: self.keys.kid().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests;
