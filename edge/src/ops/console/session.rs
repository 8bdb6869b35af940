//! Who the operator is: sessions, their cookie, CSRF tokens and the login rate limit.
//!
//! Sessions live in this replica's memory (a restart or another replica asks for a new login):
//! the console shows one replica, and a session store shared by replicas would be one more thing
//! to protect. The browser holds only a random session id in an HttpOnly, SameSite=Strict cookie
//! whose name carries the admin listener's port (cookies ignore ports, and several edges may share
//! a host). Ids are kept as their SHA-256, so a memory dump lists no usable cookie.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::HeaderMap;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Most sessions kept at once; past it the oldest is ended (each login is rate limited anyway).
pub const MAX_SESSIONS: usize = 256;

/// An operator's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who logged in: a console key's name, or `admin-token`.
    pub operator: String,
    /// The token every form post of this session carries.
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// The sessions of this replica.
#[derive(Debug)]
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    max_age: Duration,
    logins: DefaultDirectRateLimiter,
    cookie: String,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Sessions for the admin listener on `port`, ended after `idle` without a request or
    /// `max_age` after the login; `logins_per_minute` login attempts (good or bad) a minute.
    pub fn new(port: u16, idle: Duration, max_age: Duration, logins_per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(logins_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Sessions {
            by_hash: Mutex::new(HashMap::new()),
            idle,
            max_age,
            logins: RateLimiter::direct(Quota::per_minute(per_minute)),
            cookie: format!("edge_console_{port}"),
        }
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// Whether one more login attempt may be checked now.
    pub fn login_allowed(&self) -> bool {
        self.logins.check().is_ok()
    }

    /// Starts a session for `operator`: (session id for the cookie, the session).
    pub fn start(&self, operator: &str) -> (String, Session) {
        self.start_at(operator, Instant::now())
    }

    fn start_at(&self, operator: &str, now: Instant) -> (String, Session) {
        let id = random_token();
        let session = Session {
            operator: operator.to_owned(),
            csrf: random_token(),
            created: now,
            last_seen: now,
        };
        if let Ok(mut map) = self.by_hash.lock() {
            map.retain(|_, s| self.live(s, now));
            while map.len() >= MAX_SESSIONS {
                let oldest = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k);
                match oldest {
                    Some(k) => map.remove(&k),
                    None => break,
                };
            }
            map.insert(hash(&id), session.clone());
        }
        (id, session)
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(s.last_seen) < self.idle
            && now.saturating_duration_since(s.created) < self.max_age
    }

    /// The live session of `id`, marked as seen now; an expired one is ended.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.get_at(id, Instant::now())
    }

    fn get_at(&self, id: &str, now: Instant) -> Option<Session> {
        let mut map = self.by_hash.lock().ok()?;
        let key = hash(id);
        let s = map.get_mut(&key)?;
        if !self.live(s, now) {
            map.remove(&key);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    /// Whether the session of `id` is live, without counting this as a request (a live tail
    /// watches its session with it: watching is not activity).
    pub fn is_live(&self, id: &str) -> bool {
        let now = Instant::now();
        self.by_hash
            .lock()
            .ok()
            .and_then(|map| map.get(&hash(id)).map(|s| self.live(s, now)))
            .unwrap_or(false)
    }

    /// Ends the session of `id` (logout).
    pub fn end(&self, id: &str) {
        if let Ok(mut map) = self.by_hash.lock() {
            map.remove(&hash(id));
        }
    }

    /// The session id the request's cookie carries, if any.
    pub fn id_from(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie)
            .map(|(_, value)| value.to_owned())
    }

    /// The `Set-Cookie` value that hands `id` to the browser. Not `Secure`: the admin listener is
    /// plain HTTP on loopback (or at the end of an SSH tunnel).
    pub fn set_cookie(&self, id: &str) -> String {
        format!(
            "{}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
            self.cookie,
            self.max_age.as_secs()
        )
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
            self.cookie
        )
    }
}

/// Whether `given` is the session's CSRF token (compared in constant time).
pub fn csrf_ok(session: &Session, given: &str) -> bool {
    !given.is_empty() && bool::from(session.csrf.as_bytes().ct_eq(given.as_bytes()))
}

/// Whether the request's `Origin` is this listener as the browser reached it (`http://` + its
/// `Host`). A form post from any other page, and a post without an Origin, is refused: browsers
/// send Origin on every POST.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(o), Some(h)) => o
            .strip_prefix("http://")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(h)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(9901, Duration::from_secs(60), Duration::from_secs(600), 3)
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_at_logout() {
        let s = sessions();
        let (id, session) = s.start("alice");
        assert_eq!(session.operator, "alice");
        let mut h = HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            format!("other=1; edge_console_9901={id}; edge_console_9902=nope")
                .parse()
                .unwrap(),
        );
        assert_eq!(s.id_from(&h).as_deref(), Some(id.as_str()));
        assert_eq!(s.get(&id).unwrap().csrf, session.csrf);
        assert!(s.get("forged").is_none());
        assert!(s.is_live(&id) && !s.is_live("forged"));
        s.end(&id);
        assert!(s.get(&id).is_none());
        assert!(!s.is_live(&id));
    }

    #[test]
    fn another_port_s_cookie_is_not_this_listener_s() {
        let s = sessions();
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, "edge_console_9902=x".parse().unwrap());
        assert!(s.id_from(&h).is_none());
    }

    #[test]
    fn idle_and_absolute_timeouts_end_a_session() {
        let s = sessions();
        let t0 = Instant::now();
        let (id, _) = s.start_at("alice", t0);
        assert!(s.get_at(&id, t0 + Duration::from_secs(59)).is_some());
        // Seen at 59 s: idle counts from there.
        assert!(s.get_at(&id, t0 + Duration::from_secs(118)).is_some());
        assert!(s.get_at(&id, t0 + Duration::from_secs(179)).is_none());
        assert!(
            s.get_at(&id, t0 + Duration::from_secs(10)).is_none(),
            "ended"
        );

        let (id, _) = s.start_at("bob", t0);
        for i in 1..=11 {
            assert!(s.get_at(&id, t0 + Duration::from_secs(50 * i)).is_some());
        }
        assert!(s.get_at(&id, t0 + Duration::from_secs(601)).is_none());
    }

    #[test]
    fn sessions_are_bounded() {
        let s = sessions();
        let (first, _) = s.start("first");
        for i in 0..MAX_SESSIONS {
            s.start(&format!("op{i}"));
        }
        assert!(s.get(&first).is_none(), "the oldest was ended");
        assert!(s.by_hash.lock().unwrap().len() <= MAX_SESSIONS);
    }

    #[test]
    fn csrf_and_origin() {
        let s = sessions();
        let (_, session) = s.start("alice");
        assert!(csrf_ok(&session, &session.csrf));
        assert!(!csrf_ok(&session, ""));
        assert!(!csrf_ok(&session, "forged"));
        let h = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(http::header::HOST, "127.0.0.1:9901".parse().unwrap());
            if let Some(o) = origin {
                h.insert(http::header::ORIGIN, o.parse().unwrap());
            }
            h
        };
        assert!(same_origin(&h(Some("http://127.0.0.1:9901"))));
        assert!(!same_origin(&h(Some("http://127.0.0.1:9902"))));
        assert!(!same_origin(&h(Some("https://evil.example"))));
        assert!(!same_origin(&h(Some("null"))));
        assert!(!same_origin(&h(None)));
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let s = sessions();
        let c = s.set_cookie("abc");
        assert!(c.starts_with("edge_console_9901=abc;"), "{c}");
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/console")
        );
        assert!(s.clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn logins_are_rate_limited() {
        let s = sessions();
        let allowed = (0..10).filter(|_| s.login_allowed()).count();
        assert_eq!(allowed, 3);
    }
}
